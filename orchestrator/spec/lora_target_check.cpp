#include "orchestrator/spec/lora_target_check.h"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>

#include <nlohmann/json.hpp>

#include "common/failure.h"
#include "protocol/lora_targets.h"

namespace sweep {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

constexpr uint64_t kMaxHeaderBytes = 100ull << 20;  // the safetensors format's own limit

Status read_header(const std::string& path, std::map<std::string, std::vector<int64_t>>& out) {
  auto bad = [&](const std::string& why) {
    return make_error(ErrorKind::kUser, "base_model: " + path + ": " + why,
                      "base_model must hold the weights as safetensors (docs/model.md)");
  };
  std::ifstream in(path, std::ios::binary);
  if (!in) return bad("cannot be opened");
  unsigned char size_bytes[8];
  if (!in.read(reinterpret_cast<char*>(size_bytes), 8)) return bad("shorter than 8 bytes");
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | size_bytes[i];
  if (n == 0 || n > kMaxHeaderBytes)
    return bad("header length " + std::to_string(n) + " is not valid");
  std::string text(n, '\0');
  if (!in.read(text.data(), static_cast<std::streamsize>(n))) return bad("header is cut short");
  json header = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!header.is_object()) return bad("header is not a JSON object");
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") continue;
    if (!entry.is_object() || !entry.contains("shape") || !entry["shape"].is_array())
      return bad("tensor " + name + " has no shape");
    std::vector<int64_t> shape;
    for (const json& d : entry["shape"]) {
      if (!d.is_number_integer())
        return bad("tensor " + name + " has a shape that is not integers");
      shape.push_back(d.get<int64_t>());
    }
    out[name] = std::move(shape);
  }
  return ok_status();
}

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) out += (i ? ", " : "") + items[i];
  return out;
}

}  // namespace

Result<std::map<std::string, std::vector<int64_t>>> read_tensor_shapes(
    const std::string& model_dir) {
  std::map<std::string, std::vector<int64_t>> shapes;
  const fs::path dir(model_dir);
  const fs::path index = dir / "model.safetensors.index.json";
  if (fs::exists(dir / "model.safetensors")) {
    SWEEP_RETURN_IF_ERROR(read_header((dir / "model.safetensors").string(), shapes));
    return shapes;
  }
  std::ifstream in(index);
  if (!in) {
    return make_error(ErrorKind::kUser,
                      "base_model: " + model_dir +
                          " has neither model.safetensors nor model.safetensors.index.json",
                      "base_model must be a Hugging Face LLaVA directory (docs/model.md)");
  }
  json j = json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object())
    return make_error(ErrorKind::kUser, "base_model: " + index.string() + " has no weight_map");
  std::set<std::string> files;
  for (const auto& [name, file] : j["weight_map"].items())
    if (file.is_string()) files.insert(file.get<std::string>());
  for (const std::string& file : files)
    SWEEP_RETURN_IF_ERROR(read_header((dir / file).string(), shapes));
  return shapes;
}

Status check_lora_targets(const std::vector<ExpandedJob>& jobs,
                          const std::vector<std::string>& linear_paths) {
  // Jobs with the same targets resolve alike: one check (and one message) per distinct request.
  std::map<std::string, std::vector<std::string>> hashes;
  std::map<std::string, LoraTargetRequest> requests;
  for (const ExpandedJob& job : jobs) {
    if (job.is_duplicate() || job.params.value("mode", std::string("lora")) != "lora") continue;
    LoraTargetRequest r;
    const json targets = job.params.value("target_modules", json::array());
    if (targets.is_array())
      for (const json& t : targets)
        if (t.is_string()) r.target_modules.push_back(t.get<std::string>());
    r.vision_tower = job.params.value("lora_vision_tower", false);
    const std::string key = targets.dump() + (r.vision_tower ? "+vision" : "");
    requests[key] = r;
    hashes[key].push_back(job.hash);
  }
  for (const auto& [key, request] : requests) {
    // A structured binding cannot be captured before C++20 (clang refuses it): capture a reference.
    const LoraTargetRequest& r = request;
    auto resolved = capture([&] { return resolve_lora_targets(linear_paths, r); });
    if (resolved.ok()) continue;
    const std::vector<std::string>& h = hashes[key];
    const std::string jobs_text =
        h.size() == 1 ? "job " + h[0] : std::to_string(h.size()) + " jobs (" + join(h) + ")";
    Error e = resolved.error();
    e.message = jobs_text + ": " + e.message;
    return e;
  }
  return ok_status();
}

Status check_lora_targets(const SweepSpec& spec, const std::string& model_dir) {
  auto jobs = expand_grid(spec);
  if (!jobs.ok()) return jobs.error();
  auto shapes = read_tensor_shapes(model_dir);
  if (!shapes.ok()) return shapes.error();
  return check_lora_targets(*jobs, linear_paths_from_tensors(*shapes));
}

Status check_lora_targets_if_present(const SweepSpec& spec, const std::string& model_dir) {
  if (model_dir.empty() || !fs::exists(fs::path(model_dir) / "config.json")) return ok_status();
  return check_lora_targets(spec, model_dir);
}

}  // namespace sweep
