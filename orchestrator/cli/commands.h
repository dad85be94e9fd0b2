// Registration of the `sweep` subcommands. Each lives in cli/cmd_<name>.cpp, adds its
// subcommand and flags to the app, and reports failure through CliContext::fail.
#pragma once

#include <CLI/CLI.hpp>

#include "orchestrator/cli/context.h"

namespace sweep {

// One line per command; main.cpp calls each in the order they appear in `sweep --help`.
void add_version_command(CLI::App& app, CliContext& ctx);
void add_plan_command(CLI::App& app, CliContext& ctx);
void add_lint_command(CLI::App& app, CliContext& ctx);
void add_jobs_command(CLI::App& app, CliContext& ctx);
void add_query_command(CLI::App& app, CliContext& ctx);
void add_check_data_command(CLI::App& app, CliContext& ctx);
void add_run_command(CLI::App& app, CliContext& ctx);
void add_status_command(CLI::App& app, CliContext& ctx);
void add_leaderboard_command(CLI::App& app, CliContext& ctx);
void add_report_command(CLI::App& app, CliContext& ctx);
void add_best_command(CLI::App& app, CliContext& ctx);
void add_cancel_command(CLI::App& app, CliContext& ctx);
void add_retry_command(CLI::App& app, CliContext& ctx);
void add_merge_command(CLI::App& app, CliContext& ctx);

}  // namespace sweep
