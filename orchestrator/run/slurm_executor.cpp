#include "orchestrator/run/slurm_executor.h"

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>

#include <boost/process.hpp>

#include "common/failure.h"
#include "protocol/job_file.h"

namespace bp = boost::process;
namespace fs = std::filesystem;

namespace sweep {

namespace {

// squeue at most this often, however many jobs are polled.
constexpr double kRefreshS = 1.0;

std::string read_all(std::istream& in) {
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::string first_line(const std::string& text) {
  std::string line = text.substr(0, text.find('\n'));
  return line.empty() ? text : line;
}

}  // namespace

Result<CommandOutput> run_command(const std::vector<std::string>& argv) {
  if (argv.empty()) return make_error(ErrorKind::kInternal, "empty command");
  fs::path exe = argv[0].find('/') != std::string::npos
                     ? fs::path(argv[0])
                     : fs::path(bp::search_path(argv[0]).string());
  if (exe.empty() || ::access(exe.c_str(), X_OK) != 0) {
    return make_error(ErrorKind::kNotFound, argv[0] + " was not found in PATH",
                      "install Slurm's client commands (sbatch, squeue, scontrol, scancel) on "
                      "this host, or run with --executor local");
  }
  std::vector<std::string> args(argv.begin() + 1, argv.end());
  return capture([&] {
    bp::ipstream out, err;
    bp::child child(bp::exe = exe.string(), bp::args = args, bp::std_in<bp::null, bp::std_out> out,
                    bp::std_err > err);
    CommandOutput result;
    result.out = read_all(out);
    result.err = read_all(err);
    child.wait();
    result.exit_code = child.exit_code();
    return result;
  });
}

SlurmExecutor::SlurmExecutor(SlurmSpec slurm, int cpus) : slurm_(std::move(slurm)), cpus_(cpus) {}

std::string SlurmExecutor::id_of(const ProcessHandle& handle) {
  return handle.executor_id.empty() ? std::to_string(handle.pid) : handle.executor_id;
}

std::string SlurmExecutor::describe(const ProcessHandle& handle) const {
  return "Slurm job " + id_of(handle);
}

Result<ProcessHandle> SlurmExecutor::launch(const LaunchRequest& request) {
  if (request.argv.empty()) return make_error(ErrorKind::kInternal, "empty worker argv");
  fs::path script = request.stdout_path.empty()
                        ? fs::path(request.working_dir) / "worker.sh"
                        : fs::path(request.stdout_path).replace_extension(".sh");
  auto written = capture([&] { write_file_atomic(script.string(), slurm_batch_script(request)); });
  if (!written.ok()) return written.error();
  ::chmod(script.c_str(), 0755);
  auto argv = sbatch_argv(slurm_, cpus_, request, script.string());
  auto submitted = run_command(argv);
  if (!submitted.ok()) return submitted.error();
  if (submitted->exit_code != 0) {
    return make_error(ErrorKind::kIo,
                      "sbatch refused " + script.string() + ": " + first_line(submitted->err),
                      "check resources.partition, account, qos, mem, time_limit and sbatch_args "
                      "(docs/slurm.md)");
  }
  auto id = parse_sbatch_id(submitted->out);
  if (!id) {
    return make_error(ErrorKind::kIo, "sbatch printed no job id: " + first_line(submitted->out),
                      "check that sbatch supports --parsable");
  }
  queue_valid_ = false;  // the next poll sees the new job
  ProcessHandle handle;
  handle.pid = std::stoll(id->substr(0, id->find('_')));
  handle.child = false;
  handle.executor_id = *id;
  return handle;
}

void SlurmExecutor::refresh(bool force) {
  auto now = std::chrono::steady_clock::now();
  if (!force && queue_valid_ &&
      std::chrono::duration<double>(now - refreshed_at_).count() < kRefreshS) {
    return;
  }
  auto listed =
      run_command({"squeue", "--noheader", "--me", std::string("--format=") + kSqueueFormat});
  if (!listed.ok() || listed->exit_code != 0) return;  // slurmctld busy: keep the last snapshot
  queue_.clear();
  for (SqueueRow& row : parse_squeue(listed->out)) queue_[row.id] = std::move(row);
  refreshed_at_ = now;
  queue_valid_ = true;
}

std::optional<SlurmJobInfo> SlurmExecutor::final_info(const std::string& id) {
  auto shown = run_command({"scontrol", "show", "job", "-o", id});
  if (shown.ok() && shown->exit_code == 0) {
    if (auto info = parse_scontrol_job(shown->out)) return info;
  }
  // scontrol forgets a job MinJobAge after it ends; accounting, when there is one, does not.
  auto accounted = run_command({"sacct", "--noheader", "--parsable2", "--allocations",
                                "--jobs=" + id, "--format=JobID,State,ExitCode"});
  if (accounted.ok() && accounted->exit_code == 0) return parse_sacct_line(accounted->out);
  return std::nullopt;
}

PollResult SlurmExecutor::poll(const ProcessHandle& handle) {
  std::string id = id_of(handle);
  if (auto done = finished_.find(id); done != finished_.end()) return done->second;
  refresh();
  if (!queue_valid_) return PollResult{};  // cannot tell now: ask again at the next poll
  auto row = queue_.find(id);
  if (row != queue_.end() && slurm_state_active(row->second.state)) return PollResult{};
  auto info = final_info(id);
  if (!info) {
    PollResult gone = PollResult::vanished();
    gone.detail = "Slurm job " + id + " is unknown to squeue, scontrol and sacct";
    return finished_[id] = gone;
  }
  if (slurm_state_active(info->state)) return PollResult{};
  return finished_[id] = slurm_final_poll(id, *info, signalled_.count(id) > 0);
}

void SlurmExecutor::terminate(const ProcessHandle& handle) {
  std::string id = id_of(handle);
  signalled_.insert(id);
  refresh(true);
  auto row = queue_.find(id);
  if (row != queue_.end() && row->second.state == "PENDING") {
    (void)run_command({"scancel", id});  // nothing to checkpoint yet
    return;
  }
  // The worker checkpoints and exits on SIGTERM; the job then ends on its own.
  (void)run_command({"scancel", "--signal=TERM", "--full", id});
}

void SlurmExecutor::kill(const ProcessHandle& handle) {
  std::string id = id_of(handle);
  signalled_.insert(id);
  (void)run_command({"scancel", id});
  queue_valid_ = false;
}

bool SlurmExecutor::script_names(const std::string& script_path, const std::string& job_json) {
  auto cached = script_text_.find(script_path);
  if (cached == script_text_.end()) {
    std::ifstream in(script_path);
    cached = script_text_.emplace(script_path, read_all(in)).first;
  }
  return cached->second.find(job_json) != std::string::npos;
}

std::vector<int64_t> SlurmExecutor::find_workers(const std::string& job_json) {
  refresh();
  std::vector<int64_t> ids;
  for (const auto& [id, row] : queue_) {
    if (!slurm_state_active(row.state) || !script_names(row.command, job_json)) continue;
    auto cut = id.substr(0, id.find('_'));
    if (cut.empty() || cut.find_first_not_of("0123456789") != std::string::npos) continue;
    ids.push_back(std::stoll(cut));
  }
  return ids;
}

bool SlurmExecutor::alive(int64_t pid) {
  refresh();
  auto row = queue_.find(std::to_string(pid));
  return row != queue_.end() && slurm_state_active(row->second.state);
}

bool SlurmExecutor::still_running(const ProcessHandle& handle, const std::string& job_json) {
  refresh(true);
  auto row = queue_.find(id_of(handle));
  return row != queue_.end() && slurm_state_active(row->second.state) &&
         script_names(row->second.command, job_json);
}

}  // namespace sweep
