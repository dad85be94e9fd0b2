// Image decoding (data/image.h): the header reader and the full decoder on the input as a file,
// under check-data's default pixel limit (without one, a GIF header claiming 20,000 x 18,000
// pixels makes stb_image allocate and clear 1.5 GB), then the CLIP preprocessing of a decoded
// image of modest size (at most 256 pixels a side: a 2,565 x 3 BMP pads to a 2,565-pixel
// square, whose resize takes seconds under the sanitizers).
#include <algorithm>
#include <cstdint>
#include <exception>
#include <string>

#include "data/image.h"
#include "fuzz/memfile.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static sweep::fuzz::MemFile file;
  const std::string& path = file.set(data, size);
  int w = 0, h = 0;
  std::string error;
  (void)sweep::data::read_image_header(path, &w, &h, &error, sweep::data::kDefaultMaxImagePixels);
  try {
    sweep::data::Image img = sweep::data::decode_image(path, sweep::data::kDefaultMaxImagePixels);
    if (std::max(img.width, img.height) <= 256)  // preprocessing pads to a square first
      (void)sweep::data::clip_preprocess(img, 16, /*pad_to_square=*/true);
  } catch (const std::exception&) {
  }
  return 0;
}
