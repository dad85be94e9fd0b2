// job.json (protocol/job_file.h): JobFile::read on the input as a file; an accepted job written
// back by to_json must read back to the same JSON.
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <string>

#include "fuzz/memfile.h"
#include "protocol/job_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static sweep::fuzz::MemFile file;
  sweep::JobFile job;
  try {
    job = sweep::JobFile::read(file.set(data, size));
  } catch (const std::exception&) {
    return 0;
  }
  const nlohmann::json first = job.to_json();
  sweep::JobFile again;
  try {
    again = sweep::JobFile::from_json(first);
  } catch (const std::exception&) {
    std::abort();  // a job the reader accepted must survive its own writer
  }
  if (again.to_json() != first) std::abort();
  return 0;
}
