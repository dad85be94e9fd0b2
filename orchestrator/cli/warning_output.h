// Printing guidance warnings (orchestrator/spec/guidance.h), shared by `sweep lint` and
// `sweep plan`.
#pragma once

#include <ostream>
#include <vector>

#include "orchestrator/cli/output.h"
#include "orchestrator/spec/guidance.h"

namespace sweep {

// Each warning as "warning[ID]: MESSAGE", then "  why: REASON" and "  source: SOURCE", both
// wrapped at 100 columns.
void print_warnings_text(std::ostream& out, const std::vector<Warning>& warnings);

// One row per warning (id, jobs, message, reason, source, job_hashes) for table/csv/json.
void print_warning_rows(std::ostream& out, const std::vector<Warning>& warnings,
                        OutputFormat format);

// A JSON array of warning_to_json.
nlohmann::json warnings_to_json(const std::vector<Warning>& warnings);

}  // namespace sweep
