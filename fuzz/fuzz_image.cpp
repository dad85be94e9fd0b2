// Image decoding (data/image.h): the header reader under check-data's default pixel limit, the
// full decoder on the input as a file under a limit of 4 million pixels, then the CLIP
// preprocessing of a decoded image of modest size (at most 256 pixels a side: a 2,565 x 3 BMP
// pads to a 2,565-pixel square, whose resize takes seconds under the sanitizers).
// Without a limit a GIF header claiming 20,000 x 18,000 pixels makes stb_image allocate and clear
// 1.5 GB. Under the default limit a 332-byte BMP of 12,910,341 x 3 pixels, legal and decoded in a
// fraction of a second in a release build, took over 10 s under ASan (a fuzzer timeout, not a
// bug), so the decoder is fuzzed under a lower limit: the same code, smaller allocations.
#include <algorithm>
#include <cstdint>
#include <exception>
#include <string>

#include "data/image.h"
#include "fuzz/memfile.h"

constexpr int64_t kDecodeLimit = 4'000'000;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static sweep::fuzz::MemFile file;
  const std::string& path = file.set(data, size);
  int w = 0, h = 0;
  std::string error;
  (void)sweep::data::read_image_header(path, &w, &h, &error, sweep::data::kDefaultMaxImagePixels);
  try {
    sweep::data::Image img = sweep::data::decode_image(path, kDecodeLimit);
    if (std::max(img.width, img.height) <= 256)  // preprocessing pads to a square first
      (void)sweep::data::clip_preprocess(img, 16, /*pad_to_square=*/true);
  } catch (const std::exception&) {
  }
  return 0;
}
