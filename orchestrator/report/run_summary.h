// What `sweep run` prints when a run ends: the top of the leaderboard with each job's gain over
// the base model, and the report page written beside the run directories.
#pragma once

#include <ostream>
#include <string>

#include "common/result.h"
#include "db/store.h"

namespace sweep::report {

// <runs>/<sweep>/report.html: where `sweep report` and the end of `sweep run` write the page.
std::string default_report_path(const std::string& runs_dir, const std::string& sweep_name);

// Builds the report of `sweep` and writes it to `path` (a temp file renamed into place, so a
// browser never reads half a page); creates the parent directory.
Status write_report(Store& store, const SweepRecord& sweep, const std::string& path);

// "top 3 by val_loss (min; base model 2.31):" and one line per job: rank, job, swept params,
// value beside the job's base-model score (step 0), gain over it, [not learning] when its
// learning check failed; then a line when no job beat the base. Empty when no job has an
// evaluation after step 0.
Result<std::string> leaderboard_top(Store& store, const SweepRecord& sweep, int top);

// The end of a finished run: leaderboard_top, then the report written to its default path and
// "report: PATH". A failure to report is printed as a warning; the run's outcome stands.
void print_run_report(Store& store, const std::string& sweep_name, const std::string& runs_dir,
                      std::ostream& out);

}  // namespace sweep::report
