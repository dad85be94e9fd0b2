// Parsing a sweep file: the top-level sections, paths, objective, resources and limits. The
// training-parameter sections are read by ParamReader against the parameter table.
#include "orchestrator/spec/sweep_spec.h"

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <regex>
#include <sstream>

#include "orchestrator/spec/closest_key.h"
#include "orchestrator/spec/param_reader.h"
#include "orchestrator/spec/slurm_resources.h"
#include "orchestrator/spec/sobol.h"
#include "orchestrator/spec/stopping_spec.h"
#include "orchestrator/spec/yaml_reader.h"

namespace sweep {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

const std::vector<std::string> kTopKeys = {"name",           "base_model",   "data",    "train",
                                           "grid",           "include",      "exclude", "objective",
                                           "resources",      "max_job_time", "retries", "worker",
                                           "early_stopping", "budget",       "search"};
const std::vector<std::string> kDataKeys = {"train", "val", "image_folder", "max_image_pixels"};
const std::vector<std::string> kMetrics = {"val_loss", "val_token_acc", "val_exact_match"};
const std::vector<std::string> kModes = {to_string(Objective::Mode::kMin),
                                         to_string(Objective::Mode::kMax)};
const std::vector<std::string> kResourceKeys = {
    "slots",     "threads_per_job", "gpus",          "jobs_per_gpu", "pack",       "executor",
    "partition", "gpus_per_job",    "cpus_per_job",  "mem",          "time_limit", "account",
    "qos",       "sbatch_args",     "max_submitted", "memory_gb"};
constexpr int kMaxPack = 64;
constexpr const char* kBuiltinPrefix = "builtin:";
const std::vector<std::string> kSearchKeys = {"type", "n_trials", "seed"};
const std::vector<std::string> kSearchTypes = {"grid", "random", "sobol"};
// More trials than this is a typo, as is a grid of more points (grid_expander.cpp: what a sweep
// file's jobs cost in time and memory).
constexpr int kMaxTrials = 10000;

std::string join_list(const std::vector<std::string>& items) {
  std::string s;
  for (size_t i = 0; i < items.size(); ++i) s += (i ? ", " : "") + items[i];
  return s;
}

// Reads one section at a time into `spec`; each method returns the first error found.
class SpecParser {
 public:
  SpecParser(const YamlReader& yaml, const YAML::Node& root, SweepSpec& spec)
      : yaml_(yaml), params_(yaml), root_(root), spec_(spec) {}

  Status parse() {
    SWEEP_RETURN_IF_ERROR(yaml_.check_mapping(root_, "", kTopKeys));
    SWEEP_RETURN_IF_ERROR(read_name());
    SWEEP_RETURN_IF_ERROR(read_base_model());
    SWEEP_RETURN_IF_ERROR(read_data());
    SWEEP_RETURN_IF_ERROR(read_search());
    SWEEP_RETURN_IF_ERROR(read_params());
    SWEEP_RETURN_IF_ERROR(read_objective());
    SWEEP_RETURN_IF_ERROR(read_resources());
    SWEEP_RETURN_IF_ERROR(read_limits());
    SWEEP_RETURN_IF_ERROR(read_early_stopping(yaml_, section("early_stopping"), spec_.objective,
                                              spec_.early_stopping));
    SWEEP_RETURN_IF_ERROR(read_budget(yaml_, section("budget"), spec_.budget));
    return read_worker();
  }

 private:
  Error missing(const YAML::Node& parent, const std::string& path, const std::string& example) {
    return yaml_.error_at(parent, "missing required key '" + path + "'", "e.g. " + example);
  }

  // A non-empty scalar as written (numbers included: `name: 2024` is the string "2024").
  Result<std::string> read_text(const YAML::Node& parent, const std::string& key,
                                const std::string& path, const std::string& example) {
    const YAML::Node node = parent[key];
    if (!node || node.IsNull()) return missing(parent, path, example);
    if (!node.IsScalar() || node.Scalar().empty())
      return yaml_.error_at(node, path + " = " + YamlReader::describe(node) + ": must be a string",
                            "e.g. " + example);
    return node.Scalar();
  }

  Result<int> read_int(const YAML::Node& node, const std::string& path, int min) {
    json v = YamlReader::to_json(node);
    const double d = v.is_number() ? v.get<double>() : std::nan("");
    // The range first (false for NaN): only a double inside it may be cast to an integer.
    const bool integral = d >= min && d <= 1e9 && (v.is_number_integer() || d == std::floor(d));
    if (!integral)
      return yaml_.error_at(node, path + " = " + YamlReader::describe(node) +
                                      ": must be an integer >= " + std::to_string(min));
    return static_cast<int>(d);
  }

  // "builtin:..." as written; other paths absolute, relative to the spec file's directory.
  std::string resolve_path(const std::string& text) {
    if (text.rfind(kBuiltinPrefix, 0) == 0) return text;
    fs::path p(text);
    const char* home = std::getenv("HOME");
    if (text.rfind("~/", 0) == 0 && home) p = fs::path(home) / text.substr(2);
    if (p.is_relative()) {
      fs::path dir = fs::path(yaml_.source()).parent_path();
      p = (dir.empty() ? fs::current_path() : fs::absolute(dir)) / p;
    }
    return p.lexically_normal().string();
  }

  Status read_name() {
    auto name = read_text(root_, "name", "name", "name: r_alpha");
    if (!name.ok()) return name.error();
    static const std::regex kName("[A-Za-z0-9_.-]+");
    if (!std::regex_match(*name, kName))
      return yaml_.error_at(root_["name"],
                            "name = " + *name + ": must use only letters, digits, _ . -",
                            "the name becomes a directory under runs/ and a key in the database");
    spec_.name = *name;
    return ok_status();
  }

  Status read_base_model() {
    auto model = read_text(root_, "base_model", "base_model", "base_model: builtin:tiny-llava");
    if (!model.ok()) return model.error();
    spec_.base_model = resolve_path(*model);
    return ok_status();
  }

  Status read_data() {
    const YAML::Node data = root_["data"];
    if (!data)
      return missing(root_, "data",
                     "data: {train: train.json, val: val.json, image_folder: images}");
    SWEEP_RETURN_IF_ERROR(yaml_.check_mapping(data, "data", kDataKeys));
    std::string* fields[] = {&spec_.data.train, &spec_.data.val, &spec_.data.image_folder};
    for (size_t i = 0; i < std::size(fields); ++i) {
      const std::string& key = kDataKeys[i];
      auto text = read_text(
          data, key, "data." + key,
          key + ": builtin:shapes/" + (key == "image_folder" ? "images" : "vqa_" + key + ".json"));
      if (!text.ok()) return text.error();
      *fields[i] = resolve_path(*text);
    }
    if (data["max_image_pixels"]) {
      auto pixels = read_int(data["max_image_pixels"], "data.max_image_pixels", 1);
      if (!pixels.ok()) return pixels.error();
      spec_.data.max_image_pixels = *pixels;
    }
    return ok_status();
  }

  // The section under `key`, or a null node when the file has none.
  YAML::Node section(const std::string& key) const {
    const YAML::Node node = root_[key];
    return node ? node : YAML::Node();
  }

  Status read_params() {
    auto train = params_.read_train(section("train"));
    if (!train.ok()) return train.error();
    spec_.train = std::move(*train);
    auto grid = params_.read_grid(section("grid"), spec_.train, spec_.search.sampled());
    if (!grid.ok()) return grid.error();
    spec_.grid = std::move(*grid);
    SWEEP_RETURN_IF_ERROR(check_search_space());
    auto include = params_.read_include(section("include"), spec_.grid);
    if (!include.ok()) return include.error();
    spec_.include = std::move(*include);
    auto exclude = params_.read_exclude(section("exclude"), spec_.grid);
    if (!exclude.ok()) return exclude.error();
    spec_.exclude = std::move(*exclude);
    return ok_status();
  }

  // `search: {type, n_trials, seed}`. Read before grid:, whose value forms depend on the type.
  Status read_search() {
    const YAML::Node node = root_["search"];
    if (!node || node.IsNull()) return ok_status();
    SWEEP_RETURN_IF_ERROR(yaml_.check_mapping(node, "search", kSearchKeys));
    const std::string example = "search: {type: sobol, n_trials: 16, seed: 0}";
    if (!node["type"] || node["type"].IsNull()) return missing(node, "search.type", example);
    std::string type;
    SWEEP_RETURN_IF_ERROR(read_choice(node["type"], "search.type", kSearchTypes, type));
    SearchSpec& search = spec_.search;
    search.type = type == "random"  ? SearchSpec::Type::kRandom
                  : type == "sobol" ? SearchSpec::Type::kSobol
                                    : SearchSpec::Type::kGrid;
    if (!search.sampled()) {
      for (const char* key : {"n_trials", "seed"}) {
        if (node[key])
          return yaml_.error_at(node[key].IsNull() ? node : node[key],
                                std::string("search.") + key +
                                    " is for type random or sobol; a grid takes every point",
                                "remove it, or set type: sobol (or random) to sample the grid");
      }
      return ok_status();
    }
    if (!node["n_trials"] || node["n_trials"].IsNull())
      return missing(node, "search.n_trials", example);
    auto n = read_int(node["n_trials"], "search.n_trials", 1);
    if (!n.ok()) return n.error();
    if (*n > kMaxTrials)
      return yaml_.error_at(node["n_trials"],
                            "search.n_trials = " + std::to_string(*n) + ": more than " +
                                std::to_string(kMaxTrials) + " trials",
                            "split the sweep into several files");
    search.n_trials = *n;
    if (const YAML::Node seed = node["seed"]) {
      json v = YamlReader::to_json(seed);
      if (!v.is_number_integer() || v.get<long long>() < 0)
        return yaml_.error_at(
            seed, "search.seed = " + YamlReader::describe(seed) + ": must be an integer >= 0",
            "e.g. seed: 1; the same seed draws the same trials");
      search.seed = v.get<long long>();
    }
    return ok_status();
  }

  // A random/sobol search needs something to sample, and a sobol one a dimension per key.
  Status check_search_space() {
    if (!spec_.search.sampled()) return ok_status();
    const std::string type = to_string(spec_.search.type);
    if (spec_.grid.empty())
      return yaml_.error_at(root_["search"]["type"],
                            "search type " + type + " needs keys to sample in grid:",
                            "e.g. grid:\n  learning_rate: {loguniform: [1.0e-4, 1.0e-2]}");
    if (spec_.search.type == SearchSpec::Type::kSobol &&
        spec_.grid.size() > static_cast<size_t>(kSobolMaxDimensions))
      return yaml_.error_at(root_["grid"],
                            "search type sobol takes at most " +
                                std::to_string(kSobolMaxDimensions) + " grid keys, this grid has " +
                                std::to_string(spec_.grid.size()),
                            "fix some keys in train:, or use type: random");
    return ok_status();
  }

  Status read_choice(const YAML::Node& node, const std::string& path,
                     const std::vector<std::string>& choices, std::string& out) {
    std::string value = node.IsScalar() ? node.Scalar() : YamlReader::describe(node);
    if (std::find(choices.begin(), choices.end(), value) != choices.end()) {
      out = value;
      return ok_status();
    }
    std::string near = closest_key(value, choices);
    return yaml_.error_at(node, path + " = " + value + ": must be one of " + join_list(choices),
                          near.empty() ? "" : "did you mean " + near + "?");
  }

  Status read_objective() {
    const YAML::Node node = root_["objective"];
    if (!node || node.IsNull()) return ok_status();
    SWEEP_RETURN_IF_ERROR(yaml_.check_mapping(node, "objective", {"metric", "mode"}));
    if (node["metric"])
      SWEEP_RETURN_IF_ERROR(
          read_choice(node["metric"], "objective.metric", kMetrics, spec_.objective.metric));
    spec_.objective.mode = default_objective_mode(spec_.objective.metric);
    if (node["mode"]) {
      std::string mode;
      SWEEP_RETURN_IF_ERROR(read_choice(node["mode"], "objective.mode", kModes, mode));
      spec_.objective.mode = *parse_objective_mode(mode);
    }
    return ok_status();
  }

  Status read_gpus(const YAML::Node& node) {
    std::vector<YAML::Node> items;
    if (node.IsSequence()) {
      for (const YAML::Node& e : node) items.push_back(e);
    } else if (node.IsScalar()) {
      items.push_back(node);
    }
    if (items.empty())
      return yaml_.error_at(node,
                            "resources.gpus = " + YamlReader::describe(node) +
                                ": must be a non-empty list of GPU indices",
                            "e.g. gpus: [0, 1]; leave gpus out to run on CPU slots");
    for (const YAML::Node& item : items) {
      auto gpu = read_int(item, "resources.gpus[]", 0);
      if (!gpu.ok()) return gpu.error();
      if (std::find(spec_.resources.gpus.begin(), spec_.resources.gpus.end(), *gpu) !=
          spec_.resources.gpus.end())
        return yaml_.error_at(item, "resources.gpus lists GPU " + std::to_string(*gpu) + " twice",
                              "use jobs_per_gpu to run several jobs on one GPU");
      spec_.resources.gpus.push_back(*gpu);
    }
    return ok_status();
  }

  Status read_resources() {
    const YAML::Node node = root_["resources"];
    if (!node || node.IsNull()) return ok_status();
    SWEEP_RETURN_IF_ERROR(yaml_.check_mapping(node, "resources", kResourceKeys));
    ResourceSpec& r = spec_.resources;
    if (node["gpus"]) SWEEP_RETURN_IF_ERROR(read_gpus(node["gpus"]));
    if (node["slots"] && r.uses_gpus())
      return yaml_.error_at(node["slots"], "resources.slots is for CPU runs, but gpus is set",
                            "with gpus, set jobs_per_gpu instead");
    if (node["jobs_per_gpu"] && !r.uses_gpus())
      return yaml_.error_at(node["jobs_per_gpu"], "resources.jobs_per_gpu needs resources.gpus",
                            "add gpus: [0, ...], or use slots for CPU runs");
    struct Field {
      const char* key;
      int* out;
    };
    for (Field f : {Field{"slots", &r.slots}, Field{"threads_per_job", &r.threads_per_job},
                    Field{"jobs_per_gpu", &r.jobs_per_gpu}}) {
      if (!node[f.key]) continue;
      auto v = read_int(node[f.key], std::string("resources.") + f.key, 1);
      if (!v.ok()) return v.error();
      *f.out = *v;
    }
    if (node["pack"]) {
      auto v = read_int(node["pack"], "resources.pack", 1);
      if (!v.ok()) return v.error();
      if (*v > kMaxPack)
        return yaml_.error_at(node["pack"],
                              "resources.pack = " + YamlReader::describe(node["pack"]) +
                                  ": must be an integer from 1 to " + std::to_string(kMaxPack),
                              "jobs that share one worker process; 1: each job alone");
      r.pack = *v;
    }
    if (node["memory_gb"]) {
      json v = YamlReader::to_json(node["memory_gb"]);
      if (!v.is_number() || !(v.get<double>() > 0))
        return yaml_.error_at(node["memory_gb"],
                              "resources.memory_gb = " + YamlReader::describe(node["memory_gb"]) +
                                  ": must be a number > 0",
                              "the memory one CPU slot may use, in GiB (sweep plan flags jobs "
                              "estimated to need more)");
      r.memory_gb = v.get<double>();
    }
    return read_slurm_resources(yaml_, node, r);
  }

  Result<double> read_duration(const YAML::Node& node) {
    const std::string text = node.IsScalar() ? node.Scalar() : "";
    const std::string hint =
        "seconds (e.g. 1800) or a string such as \"30m\", \"2h\", \"1h30m\"; 0: no limit";
    json v = YamlReader::to_json(node);
    if (v.is_number()) {
      if (!(v.get<double>() >= 0))
        return yaml_.error_at(node, "max_job_time = " + text + ": must be >= 0", hint);
      return v.get<double>();
    }
    static const std::regex kPart(R"(([0-9]+(?:\.[0-9]+)?)([smhd]))");
    static const std::regex kWhole(R"(([0-9]+(?:\.[0-9]+)?[smhd])+)");
    if (!std::regex_match(text, kWhole))
      return yaml_.error_at(
          node, "max_job_time = " + YamlReader::describe(node) + ": not a duration", hint);
    double seconds = 0;
    for (std::sregex_iterator it(text.begin(), text.end(), kPart), end; it != end; ++it) {
      const char unit = (*it)[2].str()[0];
      const double scale = unit == 's' ? 1 : unit == 'm' ? 60 : unit == 'h' ? 3600 : 86400;
      seconds += std::stod((*it)[1].str()) * scale;
    }
    return seconds;
  }

  Status read_limits() {
    if (const YAML::Node n = root_["retries"]) {
      auto v = read_int(n, "retries", 0);
      if (!v.ok()) return v.error();
      spec_.retries = *v;
    }
    if (const YAML::Node n = root_["max_job_time"]) {
      auto v = read_duration(n);
      if (!v.ok()) return v.error();
      spec_.max_job_time_s = *v;
    }
    return ok_status();
  }

  Status read_worker() {
    const YAML::Node node = root_["worker"];
    if (!node || node.IsNull()) return ok_status();
    SWEEP_RETURN_IF_ERROR(yaml_.check_mapping(node, "worker", {"command"}));
    const YAML::Node cmd = node["command"];
    const std::string hint = "command: [/path/to/sweep-worker] (the job file is appended)";
    if (!cmd || cmd.IsNull()) return missing(node, "worker.command", hint);
    std::vector<YAML::Node> items;
    if (cmd.IsSequence()) {
      for (const YAML::Node& e : cmd) items.push_back(e);
    } else if (cmd.IsScalar()) {
      items.push_back(cmd);
    }
    if (items.empty())
      return yaml_.error_at(cmd, "worker.command must be a non-empty list of strings", hint);
    for (const YAML::Node& item : items) {
      if (!item.IsScalar() || item.Scalar().empty())
        return yaml_.error_at(item,
                              "worker.command = " + YamlReader::describe(cmd) +
                                  ": every element must be a non-empty string",
                              hint);
      spec_.worker_command.push_back(item.Scalar());
    }
    return ok_status();
  }

  const YamlReader& yaml_;
  ParamReader params_;
  const YAML::Node root_;
  SweepSpec& spec_;
};

}  // namespace

std::string to_string(SearchSpec::Type type) {
  switch (type) {
    case SearchSpec::Type::kRandom:
      return "random";
    case SearchSpec::Type::kSobol:
      return "sobol";
    case SearchSpec::Type::kGrid:
      break;
  }
  return "grid";
}

int ResourceSpec::total_slots() const {
  if (executor == ExecutorKind::kSlurm) return slurm.max_submitted;
  return uses_gpus() ? static_cast<int>(gpus.size()) * jobs_per_gpu : slots;
}

Result<SweepSpec> parse_sweep_spec(const std::string& yaml_text, const std::string& source_name) {
  YamlReader yaml(source_name);
  auto root = yaml.load(yaml_text);
  if (!root.ok()) return root.error();
  if (!root->IsDefined() || root->IsNull())
    return yaml.error_at(YAML::Mark::null_mark(), "the sweep file is empty",
                         "see docs/sweep-file.md for the keys (name, base_model, data, grid, ...)");
  SWEEP_RETURN_IF_ERROR(yaml.check_duplicate_keys(*root));
  SweepSpec spec;
  spec.source_path = source_name;
  SWEEP_RETURN_IF_ERROR(SpecParser(yaml, *root, spec).parse());
  return spec;
}

Result<SweepSpec> load_sweep_spec(const std::string& path) {
  std::error_code ec;
  if (!fs::exists(path, ec))
    return make_error(ErrorKind::kNotFound, path + ": no such sweep file",
                      "give the path of a sweep file such as sweeps/r_alpha.yaml");
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  if (!in && !in.eof()) return make_error(ErrorKind::kIo, path + ": cannot read the sweep file");
  return parse_sweep_spec(text.str(), path);
}

}  // namespace sweep
