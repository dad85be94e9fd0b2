// A whole .safetensors file (worker/model/safetensors.h, the LibTorch-free reader): the header is
// validated, then every tensor's first and last byte is read from the map, which must hold them.
#include <cstdint>
#include <exception>

#include "fuzz/memfile.h"
#include "worker/model/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static sweep::fuzz::MemFile file;
  try {
    sweep::model::SafetensorsFile st(file.set(data, size));
    volatile uint8_t sum = 0;
    for (const auto& t : st.tensors()) {
      if (t.end > t.begin) {
        sum = sum + st.data(t)[0];
        sum = sum + st.data(t)[t.end - t.begin - 1];
      }
    }
    (void)sum;
  } catch (const std::exception&) {
  }
  return 0;
}
