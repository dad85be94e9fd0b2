#include "data/image.h"

#include <gtest/gtest.h>

#include <cmath>

#include "common/failure.h"
#include "tests/data/data_fixtures.h"

namespace sweep::data {
namespace {

using testing::gradient_image;
using testing::solid_image;
using testing::TempDir;

std::array<uint8_t, 3> pixel(const Image& img, int x, int y) {
  const uint8_t* p = &img.rgb[(static_cast<size_t>(y) * img.width + x) * 3];
  return {p[0], p[1], p[2]};
}

TEST(ExpandToSquare, WideImageIsCentredVerticallyOnTheMeanColour) {
  const Image img = solid_image(5, 2, {10, 20, 30});
  const Image sq = expand_to_square(img, kClipMeanColor);
  ASSERT_EQ(sq.width, 5);
  ASSERT_EQ(sq.height, 5);
  // Offset (5 - 2) / 2 = 1: rows 1 and 2 are the image, rows 0, 3, 4 the fill.
  for (int x = 0; x < 5; ++x) {
    EXPECT_EQ(pixel(sq, x, 0), (std::array<uint8_t, 3>{122, 116, 104}));
    EXPECT_EQ(pixel(sq, x, 1), (std::array<uint8_t, 3>{10, 20, 30}));
    EXPECT_EQ(pixel(sq, x, 2), (std::array<uint8_t, 3>{10, 20, 30}));
    EXPECT_EQ(pixel(sq, x, 3), (std::array<uint8_t, 3>{122, 116, 104}));
    EXPECT_EQ(pixel(sq, x, 4), (std::array<uint8_t, 3>{122, 116, 104}));
  }
}

TEST(ExpandToSquare, TallImageIsCentredHorizontallyAndKeepsItsPixels) {
  const Image img = gradient_image(3, 6);
  const Image sq = expand_to_square(img, {1, 2, 3});
  ASSERT_EQ(sq.width, 6);
  ASSERT_EQ(sq.height, 6);
  for (int y = 0; y < 6; ++y) {
    EXPECT_EQ(pixel(sq, 0, y), (std::array<uint8_t, 3>{1, 2, 3}));
    for (int x = 0; x < 3; ++x) EXPECT_EQ(pixel(sq, x + 1, y), pixel(img, x, y));
    EXPECT_EQ(pixel(sq, 4, y), (std::array<uint8_t, 3>{1, 2, 3}));
    EXPECT_EQ(pixel(sq, 5, y), (std::array<uint8_t, 3>{1, 2, 3}));
  }
  EXPECT_EQ(expand_to_square(solid_image(4, 4, {9, 9, 9}), {0, 0, 0}).rgb,
            solid_image(4, 4, {9, 9, 9}).rgb);
}

// Golden bytes from PIL.Image.resize(..., Image.BICUBIC) (Pillow 9.4) on the same gradient.
TEST(ResizeBicubic, ShrinkMatchesPillowToTheByte) {
  const std::vector<uint8_t> pil = {17, 22,  28,  88, 22,  90,  166, 22,  168, 238, 22,  165,
                                    17, 127, 89,  88, 127, 160, 166, 127, 161, 238, 127, 40,
                                    17, 232, 156, 88, 232, 175, 166, 232, 42,  238, 232, 78};
  const Image out = resize_bicubic(gradient_image(7, 5), 4, 3);
  EXPECT_EQ(out.width, 4);
  EXPECT_EQ(out.height, 3);
  EXPECT_EQ(out.rgb, pil);
}

TEST(ResizeBicubic, EnlargeMatchesPillowToTheByte) {
  const std::vector<uint8_t> pil = {
      0,   0,   0,   15,  0,   6,   55,  0,   30,  91,  0,   50,  127, 0,   71,  163, 0,   92,  199,
      0,   112, 240, 0,   136, 255, 0,   148, 0,   22,  9,   15,  22,  19,  55,  22,  43,  91,  22,
      63,  127, 22,  84,  163, 22,  105, 199, 22,  125, 240, 22,  149, 255, 22,  161, 0,   79,  31,
      15,  79,  43,  55,  79,  67,  91,  79,  87,  127, 79,  108, 163, 79,  129, 199, 79,  149, 240,
      79,  173, 255, 79,  185, 0,   128, 52,  15,  128, 65,  55,  128, 89,  91,  128, 109, 127, 128,
      130, 163, 128, 149, 199, 128, 172, 240, 128, 206, 255, 128, 223, 0,   176, 74,  15,  176, 86,
      55,  176, 110, 91,  176, 130, 127, 176, 151, 163, 176, 173, 199, 176, 191, 240, 176, 207, 255,
      176, 216, 0,   233, 98,  15,  233, 110, 55,  233, 134, 91,  233, 154, 127, 233, 175, 163, 233,
      208, 199, 233, 203, 240, 233, 111, 255, 233, 69,  0,   255, 111, 15,  255, 123, 55,  255, 147,
      91,  255, 167, 127, 255, 188, 163, 255, 227, 199, 255, 208, 240, 255, 53,  255, 255, 0};
  EXPECT_EQ(resize_bicubic(gradient_image(5, 4), 9, 7).rgb, pil);
}

TEST(ClipPreprocess, NormalisationValuesOfBlackAndWhite) {
  const std::vector<float> black = clip_preprocess(solid_image(4, 4, {0, 0, 0}), 2, true);
  const std::vector<float> white = clip_preprocess(solid_image(4, 4, {255, 255, 255}), 2, true);
  ASSERT_EQ(black.size(), 12u);
  // CLIP's well-known range: (0 - mean) / std and (1 - mean) / std per channel.
  const float lo[3] = {-1.7922625f, -1.7520971f, -1.4802198f};
  const float hi[3] = {1.9303363f, 2.0748838f, 2.1458970f};
  for (int ch = 0; ch < 3; ++ch) {
    for (int p = 0; p < 4; ++p) {
      EXPECT_NEAR(black[ch * 4 + p], lo[ch], 1e-6) << "channel " << ch;
      EXPECT_NEAR(white[ch * 4 + p], hi[ch], 1e-6) << "channel " << ch;
    }
  }
}

TEST(ClipPreprocess, PaddedAreaIsTheMeanColourAndOutputIsChannelMajor) {
  // A red 8x2 strip padded to 8x8: rows 3-4 red, the rest (122,116,104) ~ 0 after normalising.
  const std::vector<float> out = clip_preprocess(solid_image(8, 2, {255, 0, 0}), 8, true);
  ASSERT_EQ(out.size(), 3u * 64);
  const float pad_r = (122 / 255.0f - kClipMean[0]) / kClipStd[0];
  EXPECT_NEAR(out[0 * 64 + 0], pad_r, 1e-6);            // R, row 0
  EXPECT_NEAR(out[0 * 64 + 3 * 8], 1.9303363f, 1e-6);   // R, row 3: red
  EXPECT_NEAR(out[1 * 64 + 3 * 8], -1.7520971f, 1e-6);  // G, row 3
  EXPECT_NEAR(out[2 * 64 + 7 * 8 + 7], (104 / 255.0f - kClipMean[2]) / kClipStd[2], 1e-6);
  EXPECT_NEAR(pad_r, -0.0112545f, 1e-6);
}

TEST(ClipPreprocess, WithoutPaddingResizesShortestEdgeAndCentreCropsLikePillow) {
  // HF: 30x20 -> shortest edge 8 -> 12x8 (int(8 * 30 / 20)), crop left (12 - 8) / 2 = 2.
  const std::vector<uint8_t> pil = {
      50,  10,  105, 72,  10,  77,  94,  10,  170, 116, 10,  83,  138, 10,  101, 160, 10,  170,
      182, 10,  70,  204, 10,  128, 50,  43,  73,  72,  43,  166, 94,  43,  92,  116, 43,  95,
      138, 43,  169, 160, 43,  77,  182, 43,  121, 204, 43,  162, 50,  77,  167, 72,  77,  92,
      94,  77,  94,  116, 77,  170, 138, 77,  77,  160, 77,  120, 182, 77,  164, 204, 77,  69,
      50,  110, 92,  72,  110, 94,  94,  110, 171, 116, 110, 76,  138, 110, 120, 160, 110, 163,
      182, 110, 70,  204, 110, 146, 50,  144, 94,  72,  144, 170, 94,  144, 77,  116, 144, 120,
      138, 144, 164, 160, 144, 69,  182, 144, 146, 204, 144, 148, 50,  177, 171, 72,  177, 76,
      94,  177, 120, 116, 177, 163, 138, 177, 70,  160, 177, 146, 182, 177, 148, 204, 177, 73,
      50,  211, 78,  72,  211, 119, 94,  211, 163, 116, 211, 71,  138, 211, 145, 160, 211, 148,
      182, 211, 74,  204, 211, 167, 50,  244, 112, 72,  244, 170, 94,  244, 70,  116, 244, 139,
      138, 244, 157, 160, 244, 70,  182, 244, 163, 204, 244, 135};
  const Image resized = resize_bicubic(gradient_image(30, 20), 12, 8);
  EXPECT_EQ(center_crop(resized, 8).rgb, pil);
  const std::vector<float> out = clip_preprocess(gradient_image(30, 20), 8, false);
  ASSERT_EQ(out.size(), 3u * 64);
  for (int p = 0; p < 64; ++p) {
    for (int ch = 0; ch < 3; ++ch) {
      const float x = static_cast<float>(pil[p * 3 + ch] / 255.0);
      EXPECT_FLOAT_EQ(out[ch * 64 + p], (x - kClipMean[ch]) / kClipStd[ch]);
    }
  }
}

TEST(DecodeImage, PngRoundTripsExactlyAndJpegClosely) {
  TempDir dir;
  const Image img = gradient_image(17, 9);
  testing::write_png(dir / "a.png", img);
  testing::write_jpeg(dir / "a.jpg", solid_image(16, 16, {200, 100, 50}), 95);
  const Image png = decode_image(dir / "a.png");
  EXPECT_EQ(png.width, 17);
  EXPECT_EQ(png.height, 9);
  EXPECT_EQ(png.rgb, img.rgb);
  const Image jpg = decode_image(dir / "a.jpg");
  ASSERT_EQ(jpg.rgb.size(), 16u * 16 * 3);
  EXPECT_NEAR(jpg.rgb[0], 200, 3);
  EXPECT_NEAR(jpg.rgb[1], 100, 3);
  EXPECT_NEAR(jpg.rgb[2], 50, 3);
  int w = 0, h = 0;
  std::string error;
  EXPECT_TRUE(read_image_header(dir / "a.jpg", &w, &h, &error));
  EXPECT_EQ(w, 16);
  EXPECT_EQ(h, 16);
}

TEST(DecodeImage, ErrorsNameTheFileAndTheReason) {
  TempDir dir;
  testing::write_text(dir / "bad.png", "this is not an image");
  try {
    decode_image(dir / "bad.png");
    FAIL() << "expected a throw";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(dir / "bad.png" + ": cannot decode the image"),
              std::string::npos)
        << e.what();
  }
  try {
    decode_image(dir / "missing.png");
    FAIL() << "expected a throw";
  } catch (const std::runtime_error& e) {
    EXPECT_EQ(std::string(e.what()),
              dir / "missing.png" + ": cannot open the image: No such file or directory");
  }
  int w = 0, h = 0;
  std::string error;
  EXPECT_FALSE(read_image_header(dir / "bad.png", &w, &h, &error));
  EXPECT_EQ(error.rfind("not a decodable image", 0), 0u) << error;
}

// Found by fuzz/fuzz_image: a JPEG whose Huffman table declares 257 codes made stb_image 2.27
// write past its table (an out-of-bounds index under UBSan); it is refused before stb reads it.
TEST(DecodeImage, JpegWithAnOverfullHuffmanTableIsRefused) {
  TempDir dir;
  std::string jpeg = "\xff\xd8\xff\xc4";  // SOI, DHT
  const int codes = 257;
  const int length = 2 + 17 + codes;
  jpeg += static_cast<char>(length >> 8);
  jpeg += static_cast<char>(length & 0xff);
  jpeg += '\x00';                  // class 0 (DC), table 0
  jpeg += static_cast<char>(255);  // 255 codes of length 1
  jpeg += static_cast<char>(2);    // 2 codes of length 2
  jpeg += std::string(14, '\0');
  jpeg += std::string(codes, '\x01');
  jpeg += "\xff\xd9";  // EOI
  testing::write_text(dir / "overfull.jpg", jpeg);
  try {
    decode_image(dir / "overfull.jpg");
    FAIL() << "expected a throw";
  } catch (const std::runtime_error& e) {
    EXPECT_EQ(std::string(e.what()),
              dir / "overfull.jpg" +
                  ": cannot decode the image: corrupt JPEG (a Huffman table declares more than "
                  "256 codes)");
  }
  int w = 0, h = 0;
  std::string error;
  EXPECT_FALSE(read_image_header(dir / "overfull.jpg", &w, &h, &error));
  EXPECT_EQ(error,
            "not a decodable image: corrupt JPEG (a Huffman table declares more than 256 "
            "codes)");
  // The same file with fill bytes before SOI, which stb_image skips (found by fuzz/fuzz_image:
  // a check of the first two bytes let it through, and stb wrote past its table).
  testing::write_text(dir / "filled.jpg", "\xff\xff\xff" + jpeg.substr(1));
  try {
    decode_image(dir / "filled.jpg");
    FAIL() << "expected a throw";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("corrupt JPEG (a Huffman table declares more than 256"),
              std::string::npos)
        << e.what();
  }
  // A real JPEG's tables (4 of them, 12 to 162 codes each) still decode.
  testing::write_jpeg(dir / "fine.jpg", solid_image(8, 8, {10, 20, 30}), 90);
  EXPECT_EQ(decode_image(dir / "fine.jpg").width, 8);
}

// Found by fuzz/fuzz_image: stb_image reserved a PNG chunk's declared length before reading it,
// so a 42-byte file whose IDAT declares 2 GB allocated 2 GB; such a chunk is refused first.
TEST(DecodeImage, PngChunkLongerThanTheFileIsRefusedBeforeAllocating) {
  TempDir dir;
  std::string png = "\x89PNG\r\n\x1a\n";
  png +=
      std::string("\0\0\0\x0d", 4) + "IHDR" + std::string("\0\0\0\x02\0\0\0\x02\x08\x02\0\0\0", 13);
  png += std::string(4, '\0');                         // CRC (stb does not check it)
  png += std::string("\x7c\0\0\0", 4) + "IDAT" + "x";  // 2,080,374,784 bytes declared, 1 there
  testing::write_text(dir / "bomb.png", png);
  try {
    decode_image(dir / "bomb.png");
    FAIL() << "expected a throw";
  } catch (const std::runtime_error& e) {
    EXPECT_EQ(std::string(e.what()),
              dir / "bomb.png" +
                  ": cannot decode the image: truncated PNG (chunk IDAT declares 2080374784 "
                  "bytes, the file has 0 left)");
  }
}

// Found by fuzz/fuzz_image (a timeout): a 72-byte top-down BMP whose header says 3,559,424 x -86.
// stb_image's header reader passes the negative height on, so the product passed the pixel limit,
// while its loader decodes 86 rows: 306 million pixels (4 s and 0.9 GB in a release build).
TEST(DecodeImage, ATopDownBmpCountsItsRowsAgainstThePixelLimit) {
  TempDir dir;
  const std::string bmp(
      "\x42\x4d\x66\x00\x00\x00\x00\x00\x00\x00\x36\x00\x00\x00\x28\x00\x00\x00"
      "\x00\x50\x36\x00\xaa\xff\xff\xff\x01\x00\x18\x00\x00\x00\x00\x00\x00\xa9"
      "\x98\xed\xdc\xcb\x00\x22\x19\x00\x00\x00\x36\x00\x00\x00\x05\x00\x00\x00"
      "\x06\x00\x00\x00\x01\x00\x98\xed\xdc\xcb\x00\x22\x19\x00\x00\x0a\x66\x15",
      72);
  testing::write_text(dir / "wide.bmp", bmp);
  int w = 0, h = 0;
  std::string error;
  EXPECT_FALSE(read_image_header(dir / "wide.bmp", &w, &h, &error, kDefaultMaxImagePixels));
  EXPECT_EQ(error, "too large (3559424 x 86 pixels, limit 89478485)");
  EXPECT_EQ(h, 86);
  try {
    decode_image(dir / "wide.bmp", kDefaultMaxImagePixels);
    FAIL() << "expected a throw";
  } catch (const Failure& f) {
    EXPECT_EQ(f.kind(), ErrorKind::kUser);
    EXPECT_EQ(f.error().message, dir / "wide.bmp" + ": " + error);
  }
}

// Found by fuzz/fuzz_image: stb_image decodes a PNM whose header says 0 x 0 to an image without
// pixels, whose CLIP preprocessing then divided by zero.
TEST(DecodeImage, ImageWithoutPixelsIsRefused) {
  TempDir dir;
  testing::write_text(dir / "empty.ppm", "P6\n0 0\n255\n");
  try {
    decode_image(dir / "empty.ppm");
    FAIL() << "expected a throw";
  } catch (const std::runtime_error& e) {
    EXPECT_EQ(std::string(e.what()).rfind(dir / "empty.ppm" + ": cannot decode the image", 0), 0u)
        << e.what();
  }
}

}  // namespace
}  // namespace sweep::data
