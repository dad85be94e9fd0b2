// events.jsonl lines (protocol/events.h): parse_event on each line, a decoded event written back
// to JSON and decoded again, and EventTail over the whole input as a file.
#include <cstdint>
#include <exception>
#include <string>

#include "fuzz/memfile.h"
#include "protocol/events.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static sweep::fuzz::MemFile file;
  const std::string text(reinterpret_cast<const char*>(data), size);
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    auto event = sweep::parse_event(text.substr(start, end - start));
    if (event.ok()) {
      nlohmann::json again;
      sweep::to_json(again, *event);
      try {
        (void)sweep::decode_event(again);
      } catch (const std::exception&) {
      }
    }
    start = end + 1;
  }
  sweep::EventTail tail(file.set(data, size));
  std::vector<sweep::Error> errors;
  (void)tail.poll(&errors);
  return 0;
}
