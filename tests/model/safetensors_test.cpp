// The safetensors reader and writer: round trips per dtype and one named error per malformed case.
#include "worker/model/safetensors.h"

#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace sweep::model {
namespace {

std::string temp_path(const std::string& name) {
  return ::testing::TempDir() + "st_" + std::to_string(::getpid()) + "_" + name + ".safetensors";
}

// Writes a raw file: u64 header length, header text, `data_bytes` bytes of data.
std::string write_raw(const std::string& name, const std::string& header, size_t data_bytes,
                      uint64_t declared_len = UINT64_MAX) {
  std::string path = temp_path(name);
  std::ofstream out(path, std::ios::binary);
  uint64_t n = declared_len == UINT64_MAX ? header.size() : declared_len;
  char len[8];
  for (int i = 0; i < 8; ++i) len[i] = char((n >> (8 * i)) & 0xff);
  out.write(len, 8);
  out << header;
  out << std::string(data_bytes, '\0');
  return path;
}

std::string error_of(const std::string& path) {
  try {
    SafetensorsFile f(path);
  } catch (const SafetensorsError& e) {
    return e.what();
  }
  return "no error";
}

TEST(Safetensors, RoundTripsEveryFloatDtypeWithMetadata) {
  std::vector<float> f32 = {1.5f, -2.25f, 3.0f, 0.0f, 7.0f, -1.0f};
  std::vector<uint16_t> f16 = {0x3c00, 0xc000, 0x7bff};   // 1, -2, 65504
  std::vector<uint16_t> bf16 = {0x3f80, 0xc040, 0x4049};  // 1, -3, 3.14
  std::vector<double> f64 = {3.141592653589793};
  std::vector<int64_t> i64 = {-5, 9};
  std::string path = temp_path("roundtrip");
  write_safetensors(path,
                    {{"a.f32", DType::kF32, {2, 3}, f32.data()},
                     {"b.f16", DType::kF16, {3}, f16.data()},
                     {"c.bf16", DType::kBF16, {3, 1}, bf16.data()},
                     {"d.f64", DType::kF64, {}, f64.data()},
                     {"e.i64", DType::kI64, {2}, i64.data()}},
                    {{"format", "pt"}});
  SafetensorsFile f(path);
  ASSERT_EQ(f.tensors().size(), 5u);
  EXPECT_EQ(f.metadata().at("format"), "pt");
  const auto& a = f.info("a.f32");
  EXPECT_EQ(a.dtype, DType::kF32);
  EXPECT_EQ(a.shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(std::memcmp(f.data(a), f32.data(), 24), 0);
  EXPECT_EQ(std::memcmp(f.data(f.info("b.f16")), f16.data(), 6), 0);
  EXPECT_EQ(f.info("c.bf16").dtype, DType::kBF16);
  EXPECT_EQ(std::memcmp(f.data(f.info("c.bf16")), bf16.data(), 6), 0);
  EXPECT_EQ(f.info("d.f64").shape.size(), 0u);
  EXPECT_EQ(std::memcmp(f.data(f.info("d.f64")), f64.data(), 8), 0);
  EXPECT_EQ(std::memcmp(f.data(f.info("e.i64")), i64.data(), 16), 0);
}

TEST(Safetensors, WriterAlignsDataToEightBytes) {
  float x = 1;
  for (const char* name : {"a", "ab", "abc", "abcdefg"}) {
    std::string path = temp_path(std::string("align_") + name);
    write_safetensors(path, {{name, DType::kF32, {1}, &x}});
    std::ifstream in(path, std::ios::binary);
    uint64_t n = 0;
    in.read(reinterpret_cast<char*>(&n), 8);
    EXPECT_EQ((8 + n) % 8, 0u) << name;
    SafetensorsFile f(path);  // the padding is valid JSON whitespace
    EXPECT_TRUE(f.contains(name));
  }
}

TEST(Safetensors, FileShorterThanLengthFieldIsTruncated) {
  std::string path = temp_path("short");
  std::ofstream(path, std::ios::binary) << "abc";
  std::string e = error_of(path);
  EXPECT_NE(e.find(path), std::string::npos) << e;
  EXPECT_NE(e.find("truncated"), std::string::npos) << e;
}

TEST(Safetensors, HeaderLengthPastEndOfFileIsRejectedWithoutAllocating) {
  std::string e = error_of(write_raw("lenpast", "{}", 0, /*declared_len=*/1000));
  EXPECT_NE(e.find("runs past the end of the file"), std::string::npos) << e;
  // A lying length of ~2^63 must not become an allocation.
  e = error_of(write_raw("lenhuge", "{}", 0, /*declared_len=*/(1ull << 63)));
  EXPECT_NE(e.find("exceeds the 100 MB limit"), std::string::npos) << e;
}

TEST(Safetensors, NonJsonHeaderIsNamed) {
  std::string e = error_of(write_raw("nonjson", "{not json", 0));
  EXPECT_NE(e.find("not valid JSON"), std::string::npos) << e;
}

TEST(Safetensors, NonObjectHeaderIsNamed) {
  std::string e = error_of(write_raw("array", "[1,2]", 0));
  EXPECT_NE(e.find("not a JSON object"), std::string::npos) << e;
}

TEST(Safetensors, UnknownDtypeNamesTensor) {
  std::string e = error_of(
      write_raw("dtype", R"({"w":{"dtype":"F8_E9","shape":[1],"data_offsets":[0,1]}})", 1));
  EXPECT_NE(e.find("tensor 'w'"), std::string::npos) << e;
  EXPECT_NE(e.find("unknown dtype \"F8_E9\""), std::string::npos) << e;
}

TEST(Safetensors, ByteCountMismatchNamesTensor) {
  std::string e = error_of(
      write_raw("bytes", R"({"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,12]}})", 12));
  EXPECT_NE(e.find("tensor 'w'"), std::string::npos) << e;
  EXPECT_NE(e.find("does not match dtype F32 and shape (16 expected)"), std::string::npos) << e;
}

TEST(Safetensors, OffsetsOutOfRangeNameTensor) {
  std::string e =
      error_of(write_raw("range", R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", 8));
  EXPECT_NE(e.find("tensor 'w'"), std::string::npos) << e;
  EXPECT_NE(e.find("out of range"), std::string::npos) << e;
}

TEST(Safetensors, OverlappingTensorsAreRejected) {
  std::string e = error_of(write_raw(
      "overlap",
      R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
      12));
  EXPECT_NE(e.find("tensor 'b'"), std::string::npos) << e;
  EXPECT_NE(e.find("overlaps"), std::string::npos) << e;
}

TEST(Safetensors, HoleBetweenTensorsIsRejected) {
  std::string e = error_of(write_raw(
      "hole",
      R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})",
      12));
  EXPECT_NE(e.find("tensor 'b'"), std::string::npos) << e;
  EXPECT_NE(e.find("hole of 4 bytes"), std::string::npos) << e;
}

TEST(Safetensors, TrailingUncoveredBytesAreRejected) {
  std::string e = error_of(
      write_raw("trailing", R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", 8));
  EXPECT_NE(e.find("4 bytes after the last tensor"), std::string::npos) << e;
}

TEST(Safetensors, OverflowingShapeIsRejected) {
  std::string e = error_of(write_raw(
      "overflow", R"({"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}})",
      4));
  EXPECT_NE(e.find("tensor 'w'"), std::string::npos) << e;
  EXPECT_NE(e.find("overflows"), std::string::npos) << e;
}

TEST(Safetensors, MissingFieldsAndBadMetadataAreNamed) {
  std::string e = error_of(write_raw("nofield", R"({"w":{"dtype":"F32","shape":[1]}})", 4));
  EXPECT_NE(e.find("tensor 'w': missing \"data_offsets\""), std::string::npos) << e;
  e = error_of(write_raw("meta", R"({"__metadata__":{"format":3}})", 0));
  EXPECT_NE(e.find("__metadata__ value of 'format' is not a string"), std::string::npos) << e;
  e = error_of(
      write_raw("negshape", R"({"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", 4));
  EXPECT_NE(e.find("not a non-negative integer"), std::string::npos) << e;
}

TEST(Safetensors, MissingFileIsNamed) {
  std::string e = error_of("/nonexistent/x.safetensors");
  EXPECT_NE(e.find("/nonexistent/x.safetensors: cannot open"), std::string::npos) << e;
}

}  // namespace
}  // namespace sweep::model
