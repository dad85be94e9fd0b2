// Helpers shared by the store_*.cpp files; not part of the store's contract.
#pragma once

#include <chrono>
#include <string>

#include "db/sqlite.h"
#include "db/store.h"

namespace sweep {
namespace store_internal {

inline double now_seconds() {
  using namespace std::chrono;
  return duration<double>(system_clock::now().time_since_epoch()).count();
}

// Schema version 6 (db/schema.cpp): eval_best and job_progress, kept up to date at ingestion.
constexpr int kDerivedSchema = 6;
// From version 7 job_progress carries each job's max_steps and eval_best whether the job is
// ranked (db/schema.cpp).
constexpr int kStatusIndexSchema = 7;

// The job columns in the order job_from_row reads them.
constexpr const char* kJobColumns =
    "id, sweep_id, hash, grid_index, params, lora_scale, state, attempt, pid, host, device, "
    "run_dir, created_at, started_at, finished_at, exit_code, error, events_offset, last_seq, info";

// Reads a row selected with kJobColumns; a state string this build does not know is an error.
Result<JobRecord> job_from_row(const Stmt& row);

// "job 12" for messages.
inline std::string job_label(int64_t job_id) { return "job " + std::to_string(job_id); }

// Runs a statement that must change exactly one job row; kNotFound naming the job otherwise.
Status run_job_update(Db& db, Stmt& stmt, int64_t job_id);

}  // namespace store_internal
}  // namespace sweep
