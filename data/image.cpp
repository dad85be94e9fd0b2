#include "data/image.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <stdexcept>

#include <stb_image.h>  // compiled in stb_image_impl.cpp

#include "common/failure.h"

namespace sweep::data {
namespace {

struct FileCloser {
  void operator()(FILE* f) const { std::fclose(f); }
};
using FilePtr = std::unique_ptr<FILE, FileCloser>;

FilePtr open_file(const std::string& path, std::string* error) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) *error = std::strerror(errno);
  return FilePtr(f);
}

// stb_image 2.27 (Debian's libstb) writes past its Huffman tables when a JPEG's DHT segment
// declares more than 256 codes (fixed upstream in 2.28; found by fuzz/fuzz_image). Walks the
// JPEG's markers as stb does and refuses such a file before stb reads it; any other file passes.
// Leaves the file at its start.
bool jpeg_tables_fit(FILE* f, std::string* error) {
  std::rewind(f);
  bool fits = true;
  // SOI as stb_image reads it: 0xFF, any number of 0xFF fill bytes, then 0xD8 (a file starting
  // FF FF D8 slipped past a check of the first two bytes only; found by fuzz/fuzz_image).
  int soi = std::fgetc(f) == 0xFF ? std::fgetc(f) : EOF;
  while (soi == 0xFF) soi = std::fgetc(f);
  if (soi == 0xD8) {
    for (int c = std::fgetc(f); c != EOF && fits; c = std::fgetc(f)) {
      if (c != 0xFF) continue;  // entropy-coded data between markers
      int m = std::fgetc(f);
      while (m == 0xFF) m = std::fgetc(f);                               // fill bytes
      if (m == EOF || m == 0xD9) break;                                  // EOI
      if (m == 0x00 || m == 0x01 || (m >= 0xD0 && m <= 0xD7)) continue;  // no length field
      const int hi = std::fgetc(f), lo = std::fgetc(f);
      if (hi == EOF || lo == EOF) break;
      long left = ((hi << 8) | lo) - 2;
      if (m != 0xC4) {
        if (left > 0 && std::fseek(f, left, SEEK_CUR) != 0) break;
        continue;
      }
      while (left > 0 && fits) {  // DHT: tables of (class/id, 16 counts, the codes' values)
        if (std::fgetc(f) == EOF) break;
        int codes = 0;
        for (int i = 0; i < 16; ++i) codes += std::max(0, std::fgetc(f));
        if (codes > 256) fits = false;
        if (std::fseek(f, codes, SEEK_CUR) != 0) break;
        left -= 17 + codes;
      }
    }
  }
  std::rewind(f);
  if (!fits) *error = "corrupt JPEG (a Huffman table declares more than 256 codes)";
  return fits;
}

// stb_image reserves a PNG chunk's declared length before reading it, so a 75-byte file whose
// IDAT declares 2 GB allocates 2 GB (found by fuzz/fuzz_image). Refuses a chunk longer than what
// is left of the file; any other file passes. Leaves the file at its start.
bool png_chunks_fit(FILE* f, std::string* error) {
  std::rewind(f);
  unsigned char b[8];
  bool fits = true;
  if (std::fread(b, 1, 8, f) == 8 && std::memcmp(b, "\x89PNG\r\n\x1a\n", 8) == 0 &&
      std::fseek(f, 0, SEEK_END) == 0) {
    const long size = std::ftell(f);
    long at = 8;
    while (fits && at + 8 <= size && std::fseek(f, at, SEEK_SET) == 0 &&
           std::fread(b, 1, 8, f) == 8) {
      const long length = (long{b[0]} << 24) | (long{b[1]} << 16) | (long{b[2]} << 8) | b[3];
      if (length > size - at - 12) {
        *error = "truncated PNG (chunk " + std::string(reinterpret_cast<char*>(b + 4), 4) +
                 " declares " + std::to_string(length) + " bytes, the file has " +
                 std::to_string(std::max(0L, size - at - 12)) + " left)";
        fits = false;
      }
      at += 12 + length;
    }
  }
  std::rewind(f);
  return fits;
}

// Pillow's bicubic kernel (a = -0.5), support 2.
double bicubic(double x) {
  constexpr double a = -0.5;
  x = std::fabs(x);
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}

constexpr int kPrecisionBits = 32 - 8 - 2;

// One output pixel's source window and fixed-point weights (Pillow's precompute_coeffs and
// normalize_coeffs_8bpc), so results match PIL.Image.resize(BICUBIC) to the byte.
struct Coeffs {
  int ksize = 0;
  std::vector<int> xmin, xcount;
  std::vector<int32_t> k;  // [out_size * ksize]
};

Coeffs precompute(int in_size, int out_size) {
  const double scale = static_cast<double>(in_size) / out_size;
  const double filterscale = scale < 1.0 ? 1.0 : scale;
  const double support = 2.0 * filterscale;
  Coeffs c;
  c.ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
  c.xmin.resize(out_size);
  c.xcount.resize(out_size);
  c.k.assign(static_cast<size_t>(out_size) * c.ksize, 0);
  std::vector<double> w(c.ksize);
  for (int xx = 0; xx < out_size; ++xx) {
    const double center = (xx + 0.5) * scale;
    const double ss = 1.0 / filterscale;
    int xmin = static_cast<int>(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    int xmax = static_cast<int>(center + support + 0.5);
    if (xmax > in_size) xmax = in_size;
    xmax -= xmin;
    double ww = 0.0;
    for (int x = 0; x < xmax; ++x) {
      w[x] = bicubic((x + xmin - center + 0.5) * ss);
      ww += w[x];
    }
    for (int x = 0; x < xmax; ++x) {
      const double v = ww != 0.0 ? w[x] / ww : w[x];
      c.k[static_cast<size_t>(xx) * c.ksize + x] = static_cast<int32_t>(
          v < 0 ? -0.5 + v * (1 << kPrecisionBits) : 0.5 + v * (1 << kPrecisionBits));
    }
    c.xmin[xx] = xmin;
    c.xcount[xx] = xmax;
  }
  return c;
}

uint8_t clip8(int32_t v) {
  v >>= kPrecisionBits;
  return static_cast<uint8_t>(v < 0 ? 0 : v > 255 ? 255 : v);
}

Image resample_horizontal(const Image& in, int width) {
  const Coeffs c = precompute(in.width, width);
  Image out{width, in.height, std::vector<uint8_t>(static_cast<size_t>(width) * in.height * 3)};
  for (int y = 0; y < in.height; ++y) {
    const uint8_t* row = &in.rgb[static_cast<size_t>(y) * in.width * 3];
    for (int xx = 0; xx < width; ++xx) {
      const int32_t* k = &c.k[static_cast<size_t>(xx) * c.ksize];
      for (int ch = 0; ch < 3; ++ch) {
        int32_t ss = 1 << (kPrecisionBits - 1);
        for (int x = 0; x < c.xcount[xx]; ++x) ss += row[(x + c.xmin[xx]) * 3 + ch] * k[x];
        out.rgb[(static_cast<size_t>(y) * width + xx) * 3 + ch] = clip8(ss);
      }
    }
  }
  return out;
}

Image resample_vertical(const Image& in, int height) {
  const Coeffs c = precompute(in.height, height);
  Image out{in.width, height, std::vector<uint8_t>(static_cast<size_t>(in.width) * height * 3)};
  const size_t stride = static_cast<size_t>(in.width) * 3;
  for (int yy = 0; yy < height; ++yy) {
    const int32_t* k = &c.k[static_cast<size_t>(yy) * c.ksize];
    for (size_t i = 0; i < stride; ++i) {
      int32_t ss = 1 << (kPrecisionBits - 1);
      for (int y = 0; y < c.xcount[yy]; ++y) ss += in.rgb[(y + c.xmin[yy]) * stride + i] * k[y];
      out.rgb[yy * stride + i] = clip8(ss);
    }
  }
  return out;
}

// Width and height as a PNG's IHDR or a JPEG's SOF segment states them, before stb_image's own
// sanity limits (which would report a huge PNG as "unknown image type"). False for other formats
// or a header too short to hold them.
bool png_or_jpeg_size(FILE* f, int64_t* w, int64_t* h) {
  unsigned char b[24];
  const size_t n = std::fread(b, 1, sizeof b, f);
  auto be32 = [](const unsigned char* p) {
    return (int64_t{p[0]} << 24) | (int64_t{p[1]} << 16) | (int64_t{p[2]} << 8) | p[3];
  };
  static const unsigned char kPng[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (n == sizeof b && std::memcmp(b, kPng, 8) == 0 && std::memcmp(b + 12, "IHDR", 4) == 0) {
    *w = be32(b + 16);
    *h = be32(b + 20);
    return true;
  }
  if (n < 2 || b[0] != 0xFF || b[1] != 0xD8) return false;
  // JPEG: walk the marker segments up to the first start-of-frame.
  if (std::fseek(f, 2, SEEK_SET) != 0) return false;
  for (;;) {
    int c = std::fgetc(f);
    if (c != 0xFF) return false;
    while ((c = std::fgetc(f)) == 0xFF) {
    }
    if (c == EOF || c == 0xD9 || c == 0xDA) return false;  // end of image or scan: no frame
    if (c == 0x01 || (c >= 0xD0 && c <= 0xD7)) continue;   // markers without a length
    unsigned char seg[7];
    if (std::fread(seg, 1, 2, f) != 2) return false;
    const long length = (long{seg[0]} << 8) | seg[1];
    const bool frame = c >= 0xC0 && c <= 0xCF && c != 0xC4 && c != 0xC8 && c != 0xCC;
    if (frame) {
      if (std::fread(seg + 2, 1, 5, f) != 5) return false;
      *h = (int64_t{seg[3]} << 8) | seg[4];
      *w = (int64_t{seg[5]} << 8) | seg[6];
      return true;
    }
    if (length < 2 || std::fseek(f, length - 2, SEEK_CUR) != 0) return false;
  }
}

std::string too_large_message(int64_t w, int64_t h, int64_t max_pixels) {
  return "too large (" + std::to_string(w) + " x " + std::to_string(h) + " pixels, limit " +
         std::to_string(max_pixels) + ")";
}

// The header checks of read_image_header on an open file; leaves the file at its start.
bool check_header(FILE* f, int* w, int* h, std::string* error, int64_t max_pixels) {
  int64_t pw = 0, ph = 0;
  // pw * ph > max_pixels, without the product: a PNG's 32-bit sides overflow it.
  if (png_or_jpeg_size(f, &pw, &ph) && max_pixels > 0 && ph > 0 && pw > max_pixels / ph) {
    *w = static_cast<int>(std::min<int64_t>(pw, INT32_MAX));
    *h = static_cast<int>(std::min<int64_t>(ph, INT32_MAX));
    *error = too_large_message(pw, ph, max_pixels);
    return false;
  }
  std::rewind(f);
  int channels = 0;
  const int ok = stbi_info_from_file(f, w, h, &channels);
  std::rewind(f);
  if (!ok) {
    *error = std::string("not a decodable image: ") + stbi_failure_reason();
    return false;
  }
  // A BMP stored top-down has a negative height in its header, which stb_image's header reader
  // passes on while its loader decodes |height| rows: a 72-byte BMP of 3,559,424 x -86 passed the
  // limit and then decoded 306 million pixels (found by fuzz/fuzz_image).
  *w = std::abs(*w);
  *h = std::abs(*h);
  if (max_pixels > 0 && int64_t{*w} * *h > max_pixels) {
    *error = too_large_message(*w, *h, max_pixels);
    return false;
  }
  return true;
}

}  // namespace

std::string resolve_image_path(const std::string& folder, const std::string& image) {
  if (folder.empty() || (!image.empty() && image[0] == '/')) return image;
  return folder + "/" + image;
}

bool image_path_escapes_folder(const std::string& image) {
  if (image.empty() || image[0] == '/') return false;
  int depth = 0;
  size_t start = 0;
  while (start <= image.size()) {
    size_t end = image.find('/', start);
    if (end == std::string::npos) end = image.size();
    const std::string part = image.substr(start, end - start);
    if (part == "..") {
      if (--depth < 0) return true;
    } else if (!part.empty() && part != ".") {
      ++depth;
    }
    start = end + 1;
  }
  return false;
}

Image decode_image(const std::string& path, int64_t max_pixels) {
  std::string error;
  FilePtr f = open_file(path, &error);
  if (!f) fail(ErrorKind::kNotFound, path + ": cannot open the image: " + error);
  if (!jpeg_tables_fit(f.get(), &error) || !png_chunks_fit(f.get(), &error))
    fail(ErrorKind::kUser, path + ": cannot decode the image: " + error);
  Image img;
  // Under a limit the header must read, as check-data requires: the limit is only as good as the
  // header it is checked on.
  if (max_pixels > 0 && !check_header(f.get(), &img.width, &img.height, &error, max_pixels)) {
    const bool too_large = error.rfind("too large", 0) == 0;
    fail(ErrorKind::kUser, path + ": " + (too_large ? error : "cannot decode the image: " + error),
         too_large ? "shrink the image, or raise the pixel limit if it is meant to be this big"
                   : "PNG and JPEG are supported; a truncated or corrupt file must be replaced");
  }
  int channels = 0;
  stbi_uc* data = stbi_load_from_file(f.get(), &img.width, &img.height, &channels, 3);
  if (!data) {
    fail(ErrorKind::kUser, path + ": cannot decode the image: " + stbi_failure_reason() +
                               " (hint: PNG and JPEG are supported; a truncated or corrupt "
                               "file must be replaced)");
  }
  if (img.width <= 0 || img.height <= 0) {  // a PNM header of "0 0" (found by fuzz/fuzz_image)
    stbi_image_free(data);
    fail(ErrorKind::kUser, path + ": cannot decode the image: it has no pixels (" +
                               std::to_string(img.width) + " x " + std::to_string(img.height) +
                               ")");
  }
  img.rgb.assign(data, data + static_cast<size_t>(img.width) * img.height * 3);
  stbi_image_free(data);
  return img;
}

bool read_image_header(const std::string& path, int* w, int* h, std::string* error,
                       int64_t max_pixels) {
  FilePtr f = open_file(path, error);
  if (!f) return false;
  if (!jpeg_tables_fit(f.get(), error)) {
    *error = "not a decodable image: " + *error;
    return false;
  }
  return check_header(f.get(), w, h, error, max_pixels);
}

Image expand_to_square(const Image& img, std::array<uint8_t, 3> fill) {
  if (img.width == img.height) return img;
  const int side = std::max(img.width, img.height);
  Image out{side, side, std::vector<uint8_t>(static_cast<size_t>(side) * side * 3)};
  for (size_t i = 0; i < out.rgb.size(); i += 3) std::memcpy(&out.rgb[i], fill.data(), 3);
  const int left = img.width < side ? (side - img.width) / 2 : 0;
  const int top = img.height < side ? (side - img.height) / 2 : 0;
  for (int y = 0; y < img.height; ++y) {
    std::memcpy(&out.rgb[(static_cast<size_t>(y + top) * side + left) * 3],
                &img.rgb[static_cast<size_t>(y) * img.width * 3],
                static_cast<size_t>(img.width) * 3);
  }
  return out;
}

Image resize_bicubic(const Image& img, int width, int height) {
  if (img.width <= 0 || img.height <= 0 || width <= 0 || height <= 0) {
    fail(ErrorKind::kInternal, "resize_bicubic: empty image or target size");
  }
  // Pillow resamples horizontally first, then vertically, rounding to 8 bits in between.
  Image out = img.width != width ? resample_horizontal(img, width) : img;
  if (out.height != height) out = resample_vertical(out, height);
  return out;
}

Image center_crop(const Image& img, int size) {
  if (img.width < size || img.height < size) {
    fail(ErrorKind::kInternal, "center_crop: image " + std::to_string(img.width) + "x" +
                                   std::to_string(img.height) + " is smaller than " +
                                   std::to_string(size));
  }
  const int top = (img.height - size) / 2, left = (img.width - size) / 2;
  Image out{size, size, std::vector<uint8_t>(static_cast<size_t>(size) * size * 3)};
  for (int y = 0; y < size; ++y) {
    std::memcpy(&out.rgb[static_cast<size_t>(y) * size * 3],
                &img.rgb[(static_cast<size_t>(y + top) * img.width + left) * 3],
                static_cast<size_t>(size) * 3);
  }
  return out;
}

std::vector<float> clip_preprocess(const Image& img, int size, bool pad_to_square) {
  const Image squared = pad_to_square ? expand_to_square(img, kClipMeanColor) : Image{};
  const Image& src = pad_to_square ? squared : img;
  // Hugging Face's shortest-edge rule: the long edge becomes int(size * long / short).
  const bool wide = src.width > src.height;
  const int shorter = wide ? src.height : src.width, longer = wide ? src.width : src.height;
  const int new_long = static_cast<int>(static_cast<double>(int64_t{size} * longer) / shorter);
  const Image resized = resize_bicubic(src, wide ? new_long : size, wide ? size : new_long);
  const Image cropped = center_crop(resized, size);

  // rescale in float64 then cast to float32, normalise in float32, as numpy does there.
  const size_t plane = static_cast<size_t>(size) * size;
  std::vector<float> out(3 * plane);
  for (size_t p = 0; p < plane; ++p) {
    for (int ch = 0; ch < 3; ++ch) {
      const auto x = static_cast<float>(cropped.rgb[p * 3 + ch] * (1.0 / 255.0));
      out[ch * plane + p] = (x - kClipMean[ch]) / kClipStd[ch];
    }
  }
  return out;
}

}  // namespace sweep::data
