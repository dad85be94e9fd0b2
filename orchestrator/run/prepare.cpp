#include "orchestrator/run/prepare.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <boost/process.hpp>
#include <nlohmann/json.hpp>

#include "common/failure.h"
#include "data/builtin.h"
#include "data/check_data.h"

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

std::string format_report(const data::CheckReport& report) {
  std::string text = report.path + ": " + std::to_string(report.errors()) + " error(s) in " +
                     std::to_string(report.samples) + " samples";
  size_t shown = 0;
  for (const auto& p : report.problems) {
    if (!p.error) continue;
    if (++shown > kMaxReportedProblems) break;
    text += "\n  [" + std::to_string(p.index) + (p.id.empty() ? "" : " id " + p.id) + "] " +
            p.kind + ": " + p.message;
  }
  return text;
}

Status check_dataset(const std::string& path, const std::string& image_folder, const char* key) {
  if (path.empty()) return ok_status();
  data::CheckOptions opt;
  opt.image_folder = image_folder;
  data::CheckReport report = data::check_data(path, opt);
  if (report.ok()) return ok_status();
  return make_error(
      ErrorKind::kUser,
      std::string("data.") + key + " does not pass the data checks: " + format_report(report),
      "see `sweep check-data " + path + " --image-folder " + image_folder + "`");
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
  SWEEP_RETURN_IF_ERROR(check_dataset(in.train_data, in.image_folder, "train"));
  SWEEP_RETURN_IF_ERROR(check_dataset(in.val_data, in.image_folder, "val"));
  if (data::is_builtin(spec.base_model)) {
    auto dir = make_builtin_model(spec.base_model, exe_dir);
    if (!dir.ok()) return dir.error();
    in.base_model = *dir;
  } else {
    in.base_model = fs::absolute(spec.base_model).lexically_normal().string();
  }
  SWEEP_RETURN_IF_ERROR(check_model_dir(in.base_model));
  return in;
}

}  // namespace sweep
