#include "orchestrator/run/prepare.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include <spdlog/spdlog.h>
#include <boost/process.hpp>
#include <nlohmann/json.hpp>

#include "common/failure.h"
#include "data/builtin.h"
#include "data/check_data.h"
#include "data/max_length.h"
#include "orchestrator/spec/lora_target_check.h"

namespace bp = boost::process;
namespace fs = std::filesystem;

namespace sweep {

namespace {

constexpr size_t kMaxReportedProblems = 20;

bool is_executable(const std::string& path) { return ::access(path.c_str(), X_OK) == 0; }

Result<std::string> resolve_data_ref(const std::string& ref, const char* key) {
  if (ref.empty()) return std::string();
  if (!data::is_builtin(ref)) return fs::absolute(ref).lexically_normal().string();
  Result<std::string> path = capture([&] { return data::resolve_builtin_data(ref); });
  if (!path) return with_context(path.error(), std::string("data.") + key);
  return path;
}

// `sweep-worker make-builtin tiny-llava` prints the model directory on its last stdout line.
Result<std::string> make_builtin_model(const std::string& ref, const std::string& exe_dir) {
  Result<std::string> cached = capture([&] { return data::builtin_model_dir(ref); });
  if (!cached) return with_context(cached.error(), "base_model");
  if (fs::exists(*cached + "/config.json")) return cached;  // made by an earlier run
  std::string worker = default_worker_path(exe_dir);
  if (!is_executable(worker)) {
    return make_error(ErrorKind::kNotFound,
                      "base_model " + ref + " is made by " + worker + ", which is missing",
                      "build sweep-worker (scripts/test.sh builds it) or set $SWEEP_WORKER");
  }
  std::string name = ref.substr(ref.find(':') + 1);
  bp::ipstream out;
  std::string line, last;
  bp::child child(worker, "make-builtin", name, bp::std_out > out);
  while (std::getline(out, line)) {
    if (!line.empty()) last = line;
  }
  child.wait();
  if (child.exit_code() != 0 || last.empty()) {
    return make_error(ErrorKind::kUser,
                      "making " + ref + " failed (`" + worker + " make-builtin " + name +
                          "` exited with code " + std::to_string(child.exit_code()) + ")",
                      "run that command by hand to see its log");
  }
  return last;
}

// Every error with its sample (at most kMaxReportedProblems), then how to fix each kind once.
std::string format_report(const data::CheckReport& report) {
  std::string text = report.path + ": " + std::to_string(report.errors()) + " error(s) in " +
                     std::to_string(report.samples) + " samples";
  size_t shown = 0;
  std::map<std::string, std::string> hints;
  for (const auto& p : report.problems) {
    if (!p.error) continue;
    if (!p.hint.empty()) hints.emplace(p.kind, p.hint);
    if (++shown > kMaxReportedProblems) continue;
    text += "\n  " + report.path +
            (p.index < 0 ? std::string()
                         : " sample " + std::to_string(p.index) +
                               (p.id.empty() ? "" : " (id " + p.id + ")")) +
            ": " + p.kind + ": " + p.message;
  }
  if (shown > kMaxReportedProblems) {
    text += "\n  ... and " + std::to_string(shown - kMaxReportedProblems) + " more";
  }
  for (const auto& [kind, hint] : hints) text += "\n  to fix " + kind + ": " + hint;
  return text;
}

// The data check of `sweep check-data --model`, at the maximum sequence length the jobs train
// with: a sample that would train on nothing (every label masked, the whole answer past the
// cut, the image cut) stops the run before any job starts.
// Images are decoded whole once per run (`decode_images`), not again for each length.
Status check_dataset(const std::string& path, const PreparedInputs& in, int64_t model_max_length,
                     const char* key, int max_image_pixels, bool decode_images) {
  if (path.empty()) return ok_status();
  data::CheckOptions opt;
  opt.image_folder = in.image_folder;
  opt.model_dir = in.base_model;
  opt.max_length = model_max_length;
  opt.decode_images = decode_images;
  if (max_image_pixels > 0) opt.max_pixels = max_image_pixels;
  auto report = capture([&] { return data::check_data(path, opt); });
  if (!report.ok()) return with_context(report.error(), std::string("data.") + key);
  if (report->ok()) return ok_status();
  return make_error(
      ErrorKind::kUser,
      std::string("data.") + key + " does not pass the data checks at model_max_length " +
          std::to_string(model_max_length) + ": " + format_report(*report),
      "no job was started; fix the samples above (or drop them) and run again; `sweep "
      "check-data " +
          path + " --image-folder " + in.image_folder + " --model " + in.base_model +
          " --max-length " + std::to_string(model_max_length) +
          " --show 3` shows samples as the model sees them");
}

// The distinct model_max_length values of the sweep's jobs (most sweeps have one).
Result<std::set<int64_t>> jobs_model_max_lengths(const SweepSpec& spec) {
  auto jobs = expand_grid(spec);
  if (!jobs.ok()) return jobs.error();
  std::set<int64_t> lengths;
  for (const ExpandedJob& job : *jobs) {
    if (job.is_duplicate()) continue;
    lengths.insert(job.params.value("model_max_length", data::kDefaultModelMaxLength));
  }
  return lengths;
}

}  // namespace

std::string default_worker_path(const std::string& exe_dir) {
  const char* env = std::getenv("SWEEP_WORKER");
  return env && *env ? std::string(env) : exe_dir + "/sweep-worker";
}

Result<std::vector<std::string>> resolve_worker_argv(const SweepSpec& spec,
                                                     const std::string& exe_dir) {
  std::vector<std::string> argv = spec.worker_command;
  if (argv.empty()) argv.push_back(default_worker_path(exe_dir));
  const std::string& exe = argv[0];
  bool found =
      exe.find('/') == std::string::npos ? !bp::search_path(exe).empty() : is_executable(exe);
  if (!found) {
    return make_error(
        ErrorKind::kNotFound, "worker program " + exe + " is missing or not executable",
        spec.worker_command.empty() ? "build sweep-worker beside sweep, or set $SWEEP_WORKER"
                                    : "fix `worker: {command: [...]}` in " + spec.source_path);
  }
  return argv;
}

Status check_model_dir(const std::string& dir) {
  std::string config = dir + "/config.json";
  std::ifstream in(config);
  if (!in) {
    return make_error(
        ErrorKind::kUser, "base_model: cannot read " + config,
        "base_model must be a directory with config.json, *.safetensors and tokenizer.model");
  }
  auto j = nlohmann::json::parse(in, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return make_error(ErrorKind::kUser, "base_model: " + config + " is not a JSON object");
  }
  return ok_status();
}

Result<PreparedInputs> prepare_inputs(const SweepSpec& spec, const std::string& exe_dir) {
  PreparedInputs in;
  auto train = resolve_data_ref(spec.data.train, "train");
  if (!train.ok()) return train.error();
  auto val = resolve_data_ref(spec.data.val, "val");
  if (!val.ok()) return val.error();
  auto images = resolve_data_ref(spec.data.image_folder, "image_folder");
  if (!images.ok()) return images.error();
  in.train_data = *train;
  in.val_data = *val;
  in.image_folder = *images;
  if (data::is_builtin(spec.base_model)) {
    auto dir = make_builtin_model(spec.base_model, exe_dir);
    if (!dir.ok()) return dir.error();
    in.base_model = *dir;
  } else {
    in.base_model = fs::absolute(spec.base_model).lexically_normal().string();
  }
  SWEEP_RETURN_IF_ERROR(check_model_dir(in.base_model));
  SWEEP_RETURN_IF_ERROR(check_lora_targets(spec, in.base_model));
  auto lengths = jobs_model_max_lengths(spec);
  if (!lengths.ok()) return lengths.error();
  auto max_positions = capture([&] { return data::read_max_position_embeddings(in.base_model); });
  if (!max_positions.ok()) return with_context(max_positions.error(), "base_model");
  const int pixels = spec.data.max_image_pixels;
  bool decode = true;
  for (int64_t length : *lengths) {
    const data::MaxLength resolved = data::resolve_max_length(length, *max_positions);
    if (resolved.clamped()) spdlog::warn("{}", resolved.notice());
    SWEEP_RETURN_IF_ERROR(check_dataset(in.train_data, in, length, "train", pixels, decode));
    SWEEP_RETURN_IF_ERROR(check_dataset(in.val_data, in, length, "val", pixels, decode));
    decode = false;
  }
  return in;
}

}  // namespace sweep
