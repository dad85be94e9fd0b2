#include "orchestrator/spec/slurm_resources.h"

#include <algorithm>
#include <regex>

namespace sweep {

namespace {

using json = nlohmann::json;

const std::vector<std::string> kSlurmKeys = {"partition", "gpus_per_job", "cpus_per_job",
                                             "mem",       "time_limit",   "account",
                                             "qos",       "sbatch_args",  "max_submitted"};
const std::vector<std::string> kLocalKeys = {"slots", "gpus", "jobs_per_gpu"};
// The executor sets these itself: the batch script, its logs and its directory live in the run
// directory, and the job id is read from --parsable.
const std::vector<std::string> kReservedSbatchArgs = {
    "--parsable", "--output", "-o", "--error", "-e", "--chdir", "-D", "--wrap", "--array", "-a"};

Result<int> read_count(const YamlReader& yaml, const YAML::Node& node, const std::string& path,
                       int min) {
  json v = YamlReader::to_json(node);
  if (!v.is_number_integer() || v.get<long long>() < min || v.get<long long>() > 1000000)
    return yaml.error_at(node, path + " = " + YamlReader::describe(node) +
                                   ": must be an integer >= " + std::to_string(min));
  return static_cast<int>(v.get<long long>());
}

// A scalar string matching `pattern` (numbers count as their text: `mem: 4096`).
Result<std::string> read_word(const YamlReader& yaml, const YAML::Node& node,
                              const std::string& path, const std::regex& pattern,
                              const std::string& hint) {
  if (!node.IsScalar() || !std::regex_match(node.Scalar(), pattern))
    return yaml.error_at(node, path + " = " + YamlReader::describe(node) + ": " + hint);
  return node.Scalar();
}

Status read_sbatch_args(const YamlReader& yaml, const YAML::Node& node,
                        std::vector<std::string>& out) {
  const std::string hint = "a list of strings, one argv item each, e.g. [\"--constraint=a100\"]";
  if (!node.IsSequence())
    return yaml.error_at(
        node,
        "resources.sbatch_args = " + YamlReader::describe(node) + ": must be a list of strings",
        hint);
  for (const YAML::Node& item : node) {
    if (!item.IsScalar() || item.Scalar().empty())
      return yaml.error_at(
          item, "resources.sbatch_args[] = " + YamlReader::describe(item) + ": not a string", hint);
    const std::string& arg = item.Scalar();
    std::string flag = arg.substr(0, arg.find('='));
    if (std::find(kReservedSbatchArgs.begin(), kReservedSbatchArgs.end(), flag) !=
        kReservedSbatchArgs.end())
      return yaml.error_at(item, "resources.sbatch_args: " + flag + " is set by sweep itself",
                           "the batch script and its logs go to the job's run directory "
                           "(docs/slurm.md); remove it");
    out.push_back(arg);
  }
  return ok_status();
}

Status read_slurm_keys(const YamlReader& yaml, const YAML::Node& node, SlurmSpec& s) {
  static const std::regex kName(R"([A-Za-z0-9_.,:-]+)");
  const std::string name_hint = "must be a name of letters, digits, _ . , : -";
  struct Text {
    const char* key;
    std::string* out;
  };
  for (Text t :
       {Text{"partition", &s.partition}, Text{"account", &s.account}, Text{"qos", &s.qos}}) {
    if (!node[t.key]) continue;
    auto v = read_word(yaml, node[t.key], std::string("resources.") + t.key, kName, name_hint);
    if (!v.ok()) return v.error();
    *t.out = *v;
  }
  if (node["mem"]) {
    if (!node["mem"].IsScalar() || !is_slurm_memory(node["mem"].Scalar()))
      return yaml.error_at(
          node["mem"],
          "resources.mem = " + YamlReader::describe(node["mem"]) + ": not a Slurm memory size",
          "megabytes, or a number with K, M, G or T, e.g. mem: 32G");
    s.mem = node["mem"].Scalar();
  }
  if (node["time_limit"]) {
    if (!node["time_limit"].IsScalar() || !is_slurm_time(node["time_limit"].Scalar()))
      return yaml.error_at(node["time_limit"],
                           "resources.time_limit = " + YamlReader::describe(node["time_limit"]) +
                               ": not a Slurm time",
                           "quote it as Slurm writes it: \"04:00:00\" (HH:MM:SS), \"1-00:00:00\" "
                           "(D-HH:MM:SS) or minutes, e.g. 90");
    s.time_limit = node["time_limit"].Scalar();
  }
  struct Count {
    const char* key;
    int* out;
    int min;
  };
  for (Count c :
       {Count{"gpus_per_job", &s.gpus_per_job, 0}, Count{"cpus_per_job", &s.cpus_per_job, 1},
        Count{"max_submitted", &s.max_submitted, 1}}) {
    if (!node[c.key]) continue;
    auto v = read_count(yaml, node[c.key], std::string("resources.") + c.key, c.min);
    if (!v.ok()) return v.error();
    *c.out = *v;
  }
  if (node["sbatch_args"]) return read_sbatch_args(yaml, node["sbatch_args"], s.sbatch_args);
  return ok_status();
}

}  // namespace

std::string to_string(ExecutorKind kind) {
  return kind == ExecutorKind::kSlurm ? "slurm" : "local";
}

std::optional<ExecutorKind> parse_executor_kind(const std::string& text) {
  if (text == "local") return ExecutorKind::kLocal;
  if (text == "slurm") return ExecutorKind::kSlurm;
  return std::nullopt;
}

bool is_slurm_time(const std::string& text) {
  static const std::regex kTime(
      R"([0-9]+|[0-9]+:[0-9]{1,2}|[0-9]+:[0-9]{1,2}:[0-9]{1,2}|[0-9]+-[0-9]+(:[0-9]{1,2}){0,2})");
  return std::regex_match(text, kTime) && text != "0";
}

bool is_slurm_memory(const std::string& text) {
  static const std::regex kMem(R"([1-9][0-9]*[KMGT]?)");
  return std::regex_match(text, kMem);
}

Status read_slurm_resources(const YamlReader& yaml, const YAML::Node& node, ResourceSpec& out) {
  if (const YAML::Node e = node["executor"]) {
    auto kind = e.IsScalar() ? parse_executor_kind(e.Scalar()) : std::nullopt;
    if (!kind)
      return yaml.error_at(
          e, "resources.executor = " + YamlReader::describe(e) + ": must be one of local, slurm",
          "local: processes on this machine; slurm: one Slurm job per worker");
    out.executor = *kind;
  }
  if (out.executor == ExecutorKind::kSlurm) {
    for (const std::string& key : kLocalKeys) {
      if (node[key])
        return yaml.error_at(node[key], "resources." + key + " is for executor: local",
                             key == "gpus" || key == "jobs_per_gpu"
                                 ? "under Slurm, ask for GPUs with gpus_per_job"
                                 : "under Slurm, max_submitted bounds the jobs at once");
    }
    return read_slurm_keys(yaml, node, out.slurm);
  }
  for (const std::string& key : kSlurmKeys) {
    if (node[key])
      return yaml.error_at(node[key], "resources." + key + " is for executor: slurm",
                           "add `executor: slurm` to resources (docs/slurm.md)");
  }
  return ok_status();
}

}  // namespace sweep
