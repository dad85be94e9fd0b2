// Decodes the PNGs the generator writes, independently of the writer.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace sweep::data::testing {

struct DecodedImage {
  int width = 0, height = 0, channels = 0;
  std::vector<uint8_t> pixels;  // RGB, row-major; empty when decoding failed
};

// Full decode to RGB with stb_image; `channels` is what the file holds.
DecodedImage decode_png(const std::string& path);

}  // namespace sweep::data::testing
