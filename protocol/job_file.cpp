#include "job_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "common/failure.h"

namespace sweep {

using json = nlohmann::json;

json JobFile::to_json() const {
  json j{
      {"schema", kSchema},
      {"sweep", sweep},
      {"job_id", job_id},
      {"attempt", attempt},
      {"run_dir", run_dir},
      {"base_model", base_model},
      {"data", {{"train", train_data}, {"val", val_data}, {"image_folder", image_folder}}},
      {"params", params},
      {"objective", {{"metric", objective_metric}, {"mode", objective_mode}}},
      {"threads", threads},
      {"device", device},
      {"resume", resume},
      {"heartbeat_seconds", heartbeat_seconds},
  };
  if (max_image_pixels > 0) j["data"]["max_image_pixels"] = max_image_pixels;
  if (!feature_cache.empty()) j["feature_cache"] = feature_cache;
  if (!eval_at_tokens.empty()) j["eval_at_tokens"] = eval_at_tokens;
  return j;
}

namespace {

template <typename T>
T required(const json& j, const char* key) {
  if (!j.contains(key)) fail(ErrorKind::kUser, std::string("missing key '") + key + "'");
  try {
    return j.at(key).get<T>();
  } catch (const json::exception&) {
    fail(ErrorKind::kUser, std::string("key '") + key + "' has the wrong type");
  }
}

template <typename T>
T optional_key(const json& j, const char* key, T fallback) {
  if (!j.contains(key) || j.at(key).is_null()) return fallback;
  try {
    return j.at(key).get<T>();
  } catch (const json::exception&) {
    fail(ErrorKind::kUser, std::string("key '") + key + "' has the wrong type");
  }
}

// An integer key in [lo, hi] (fallback when absent), checked as a 64-bit value before it is
// narrowed to int, so that 10^12 or 2^31 is reported as out of range rather than wrapped.
int int_key(const json& j, const char* key, int fallback, int64_t lo, int64_t hi) {
  if (!j.contains(key) || j.at(key).is_null()) return fallback;
  const json& v = j.at(key);
  const std::string range = "[" + std::to_string(lo) + ", " + std::to_string(hi) + "]";
  const std::string must = std::string("key '") + key + "' must be an integer in " + range;
  bool in_range = false;
  if (v.is_number_unsigned()) {
    uint64_t u = v.get<uint64_t>();
    in_range = u <= static_cast<uint64_t>(hi) && static_cast<int64_t>(u) >= lo;
  } else if (v.is_number_integer()) {
    int64_t n = v.get<int64_t>();
    in_range = n >= lo && n <= hi;
  }
  if (!in_range) fail(ErrorKind::kUser, must + ", not " + v.dump());
  return static_cast<int>(v.get<int64_t>());
}

}  // namespace

int max_job_threads() {
  return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

void check_threads_for_this_machine(const JobFile& job) {
  const int most = max_job_threads();
  if (job.threads >= 1 && job.threads <= most) return;
  fail(ErrorKind::kUser,
       "key 'threads' must be an integer in [1, " + std::to_string(most) +
           "] (1 to this machine's " + std::to_string(most) + " hardware threads), not " +
           std::to_string(job.threads),
       "lower resources.threads_per_job in the sweep file");
}

JobFile JobFile::from_json(const json& j) {
  if (!j.is_object()) fail(ErrorKind::kUser, "job file is not a JSON object");
  int schema = int_key(j, "schema", kSchema, 0, INT32_MAX);
  if (schema != kSchema)
    fail(ErrorKind::kUser, "job file schema " + std::to_string(schema) +
                               " is not supported (expected " + std::to_string(kSchema) + ")");
  JobFile f;
  f.sweep = optional_key<std::string>(j, "sweep", "");
  f.job_id = required<std::string>(j, "job_id");
  f.attempt = int_key(j, "attempt", 1, 1, INT32_MAX);
  f.run_dir = required<std::string>(j, "run_dir");
  f.base_model = required<std::string>(j, "base_model");
  json data = required<json>(j, "data");
  f.train_data = required<std::string>(data, "train");
  f.val_data = optional_key<std::string>(data, "val", "");
  f.image_folder = optional_key<std::string>(data, "image_folder", "");
  f.max_image_pixels = int_key(data, "max_image_pixels", 0, 0, INT32_MAX);
  f.params = required<json>(j, "params");
  if (!f.params.is_object()) {
    fail(ErrorKind::kUser,
         "key 'params' must be an object of training parameters, not " + f.params.dump());
  }
  json objective = optional_key<json>(j, "objective", json::object());
  f.objective_metric = optional_key<std::string>(objective, "metric", "val_loss");
  f.objective_mode = optional_key<std::string>(objective, "mode", "min");
  if (f.objective_mode != "min" && f.objective_mode != "max")
    fail(ErrorKind::kUser, "objective.mode must be min or max");
  f.threads = int_key(j, "threads", 1, 1, INT32_MAX);
  f.device = optional_key<std::string>(j, "device", "cpu");
  f.resume = optional_key<bool>(j, "resume", true);
  f.heartbeat_seconds = optional_key<double>(j, "heartbeat_seconds", 10.0);
  f.feature_cache = optional_key<std::string>(j, "feature_cache", "");
  f.eval_at_tokens = optional_key<std::vector<int64_t>>(j, "eval_at_tokens", {});
  if (!std::is_sorted(f.eval_at_tokens.begin(), f.eval_at_tokens.end()))
    fail(ErrorKind::kUser, "key 'eval_at_tokens' must be in ascending order");
  return f;
}

JobFile JobFile::read(const std::string& path) {
  std::ifstream in(path);
  if (!in) fail(ErrorKind::kNotFound, path + ": cannot open job file: " + std::strerror(errno));
  json j = json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) fail(ErrorKind::kUser, path + ": not valid JSON");
  try {
    return from_json(j);
  } catch (const Failure& f) {
    fail(f.kind(), path + ": " + f.error().message, f.error().hint);
  }
}

void JobFile::write(const std::string& path) const {
  write_file_atomic(path, to_json().dump(2) + "\n");
}

}  // namespace sweep
