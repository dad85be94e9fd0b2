#include "tests/shapes/png_check.h"

// Static: this test's private copy never clashes with the data layer's stb_image symbols.
#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#include <stb_image.h>
#pragma GCC diagnostic pop

namespace sweep::data::testing {

DecodedImage decode_png(const std::string& path) {
  DecodedImage out;
  unsigned char* data = stbi_load(path.c_str(), &out.width, &out.height, &out.channels, 3);
  if (!data) return out;
  out.pixels.assign(data, data + static_cast<size_t>(out.width) * out.height * 3);
  stbi_image_free(data);
  return out;
}

}  // namespace sweep::data::testing
