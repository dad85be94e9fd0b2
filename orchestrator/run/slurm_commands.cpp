#include "orchestrator/run/slurm_commands.h"

#include <algorithm>
#include <filesystem>
#include <sstream>

namespace fs = std::filesystem;

namespace sweep {

namespace {

std::string quote(const std::string& text) {
  std::string out = "'";
  for (char c : text) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::string trim(const std::string& text) {
  auto b = text.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  auto e = text.find_last_not_of(" \t\r\n");
  return text.substr(b, e - b + 1);
}

// "CODE:SIGNAL" into the info; false when malformed.
bool parse_exit_code(const std::string& text, SlurmJobInfo& info) {
  auto colon = text.find(':');
  if (colon == std::string::npos) return false;
  try {
    info.exit_code = std::stoi(text.substr(0, colon));
    info.signal = std::stoi(text.substr(colon + 1));
  } catch (const std::exception&) {
    return false;
  }
  return true;
}

// The value of `key=` in scontrol's one-line output (keys separated by spaces).
std::optional<std::string> scontrol_value(const std::string& output, const std::string& key) {
  for (size_t at = output.find(key + "="); at != std::string::npos;
       at = output.find(key + "=", at + 1)) {
    if (at != 0 && output[at - 1] != ' ' && output[at - 1] != '\n') continue;
    size_t begin = at + key.size() + 1;
    size_t end = output.find_first_of(" \n", begin);
    return output.substr(begin, end == std::string::npos ? std::string::npos : end - begin);
  }
  return std::nullopt;
}

}  // namespace

std::string slurm_batch_script(const LaunchRequest& request) {
  std::ostringstream out;
  out << "#!/bin/bash\n"
      << "# Written by sweep: one worker of a sweep, submitted with sbatch (docs/slurm.md).\n"
      << "# The worker resumes from this run directory's checkpoints when run again.\n";
  for (const auto& [key, value] : request.env)
    out << "export " << key << "=" << quote(value) << "\n";
  if (!request.working_dir.empty()) out << "cd " << quote(request.working_dir) << " || exit 1\n";
  out << "exec";
  for (const std::string& arg : request.argv) out << " " << quote(arg);
  out << "\n";
  return out.str();
}

std::vector<std::string> sbatch_argv(const SlurmSpec& slurm, int cpus, const LaunchRequest& request,
                                     const std::string& script_path) {
  std::string name = fs::path(request.working_dir).filename().string();
  std::vector<std::string> argv = {
      "sbatch",
      "--parsable",
      "--job-name=sweep-" + (name.empty() ? "worker" : name),
      "--nodes=1",
      "--ntasks=1",
      "--cpus-per-task=" +
          std::to_string(slurm.cpus_per_job > 0 ? slurm.cpus_per_job : std::max(cpus, 1))};
  if (!request.working_dir.empty()) argv.push_back("--chdir=" + request.working_dir);
  if (!request.stdout_path.empty()) argv.push_back("--output=" + request.stdout_path);
  if (!request.stderr_path.empty()) argv.push_back("--error=" + request.stderr_path);
  if (!slurm.partition.empty()) argv.push_back("--partition=" + slurm.partition);
  if (!slurm.account.empty()) argv.push_back("--account=" + slurm.account);
  if (!slurm.qos.empty()) argv.push_back("--qos=" + slurm.qos);
  if (!slurm.mem.empty()) argv.push_back("--mem=" + slurm.mem);
  if (!slurm.time_limit.empty()) argv.push_back("--time=" + slurm.time_limit);
  if (slurm.gpus_per_job > 0) argv.push_back("--gres=gpu:" + std::to_string(slurm.gpus_per_job));
  argv.insert(argv.end(), slurm.sbatch_args.begin(), slurm.sbatch_args.end());
  argv.push_back(script_path);
  return argv;
}

std::optional<std::string> parse_sbatch_id(const std::string& output) {
  std::string line = trim(output);
  if (auto nl = line.rfind('\n'); nl != std::string::npos) line = trim(line.substr(nl + 1));
  line = line.substr(0, line.find(';'));
  if (line.empty() || line.find_first_not_of("0123456789_") != std::string::npos) {
    return std::nullopt;
  }
  return line;
}

std::vector<SqueueRow> parse_squeue(const std::string& output) {
  std::vector<SqueueRow> rows;
  std::istringstream in(output);
  std::string line;
  while (std::getline(in, line)) {
    line = trim(line);
    auto a = line.find('|');
    if (a == std::string::npos) continue;
    auto b = line.find('|', a + 1);
    SqueueRow row;
    row.id = line.substr(0, a);
    row.state = line.substr(a + 1, b == std::string::npos ? std::string::npos : b - a - 1);
    if (b != std::string::npos) row.command = line.substr(b + 1);
    if (!row.id.empty() && !row.state.empty()) rows.push_back(row);
  }
  return rows;
}

std::optional<SlurmJobInfo> parse_scontrol_job(const std::string& output) {
  auto state = scontrol_value(output, "JobState");
  if (!state || state->empty()) return std::nullopt;
  SlurmJobInfo info;
  info.state = *state;
  if (auto code = scontrol_value(output, "ExitCode")) parse_exit_code(*code, info);
  return info;
}

std::optional<SlurmJobInfo> parse_sacct_line(const std::string& output) {
  std::istringstream in(output);
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> fields;
    std::stringstream cells(trim(line));
    std::string cell;
    while (std::getline(cells, cell, '|')) fields.push_back(cell);
    if (fields.size() < 3 || fields[1].empty()) continue;
    SlurmJobInfo info;
    info.state = fields[1].substr(0, fields[1].find(' '));  // "CANCELLED by 0"
    parse_exit_code(fields[2], info);
    return info;
  }
  return std::nullopt;
}

bool slurm_state_active(const std::string& state) {
  static const std::vector<std::string> kActive = {
      "PENDING",   "RUNNING",      "SUSPENDED",    "COMPLETING", "CONFIGURING",
      "REQUEUED",  "REQUEUE_HOLD", "REQUEUE_FED",  "RESIZING",   "SIGNALING",
      "STAGE_OUT", "STOPPED",      "RESV_DEL_HOLD"};
  return std::find(kActive.begin(), kActive.end(), state) != kActive.end();
}

PollResult slurm_final_poll(const std::string& job_id, const SlurmJobInfo& info, bool by_us) {
  PollResult r;
  r.state = ProcessState::kExited;
  r.exit_code = info.signal > 0 ? 128 + info.signal : info.exit_code;
  r.detail = "Slurm job " + job_id + " " + info.state;
  const std::string& s = info.state;
  if (s == "TIMEOUT" || s == "PREEMPTED" || s == "NODE_FAIL" || s == "BOOT_FAIL" ||
      s == "DEADLINE") {
    r.cluster_end = ClusterEnd::kInterrupted;
  } else if (s == "OUT_OF_MEMORY") {
    r.cluster_end = ClusterEnd::kOutOfMemory;
  } else if (s == "CANCELLED" && !by_us) {
    r.cluster_end = ClusterEnd::kCancelled;
  }
  return r;
}

}  // namespace sweep
