// LLaVA training data (data/llava_json.h): load_llava_json on the input as a file.
#include <cstdint>
#include <exception>

#include "data/llava_json.h"
#include "fuzz/memfile.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static sweep::fuzz::MemFile file;
  try {
    (void)sweep::data::load_llava_json(file.set(data, size));
  } catch (const std::exception&) {
  }
  return 0;
}
