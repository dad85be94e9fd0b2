// elf_symbolic IN.so OUT.so: copies a 64-bit little-endian shared library and sets DF_SYMBOLIC in
// its DT_FLAGS, so that the library's references to symbols it defines itself bind to its own
// definitions. Used on libsentencepiece, which exports a bundled protobuf-lite 3.14 that must not
// mix with LibTorch's libprotobuf 3.21 (see worker/train/CMakeLists.txt). Build-time tool.
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>
#include <vector>

namespace {

template <typename T>
T read_at(const std::vector<char>& b, size_t off) {
  T v;
  std::memcpy(&v, b.data() + off, sizeof v);
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: elf_symbolic IN.so OUT.so\n";
    return 1;
  }
  std::ifstream in(argv[1], std::ios::binary);
  std::vector<char> b((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (b.size() < 64 ||
      std::memcmp(b.data(),
                  "\x7f"
                  "ELF",
                  4) != 0 ||
      b[4] != 2 || b[5] != 1) {
    std::cerr << "elf_symbolic: " << argv[1] << " is not a 64-bit little-endian ELF file\n";
    return 1;
  }
  const auto shoff = read_at<uint64_t>(b, 0x28);
  const auto shentsize = read_at<uint16_t>(b, 0x3A), shnum = read_at<uint16_t>(b, 0x3C);
  constexpr uint32_t kShtDynamic = 6;
  constexpr int64_t kDtFlags = 0x1e;
  constexpr uint64_t kDfSymbolic = 0x2;
  bool patched = false;
  for (uint16_t i = 0; i < shnum; ++i) {
    const size_t sh = shoff + size_t(i) * shentsize;
    if (read_at<uint32_t>(b, sh + 4) != kShtDynamic) continue;
    const auto off = read_at<uint64_t>(b, sh + 0x18), size = read_at<uint64_t>(b, sh + 0x20);
    for (uint64_t j = 0; j + 16 <= size; j += 16) {
      if (read_at<int64_t>(b, off + j) != kDtFlags) continue;
      const uint64_t flags = read_at<uint64_t>(b, off + j + 8) | kDfSymbolic;
      std::memcpy(b.data() + off + j + 8, &flags, sizeof flags);
      patched = true;
    }
  }
  if (!patched) {
    std::cerr << "elf_symbolic: " << argv[1] << " has no DT_FLAGS entry to patch\n";
    return 1;
  }
  std::ofstream out(argv[2], std::ios::binary | std::ios::trunc);
  out.write(b.data(), static_cast<std::streamsize>(b.size()));
  return out ? 0 : 1;
}
