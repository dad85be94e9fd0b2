// `sweep`: the llava-sweep orchestrator. Parses the command line, runs one subcommand, and
// turns its outcome into an exit code: 0 success, 1 user error, 2 internal error.
#include <cstring>
#include <exception>
#include <iostream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "orchestrator/cli/commands.h"
#include "orchestrator/spec/closest_key.h"

namespace {

// The first word of the command line that is neither an option nor the value of --db/--runs,
// when it names no subcommand (`sweep leaderbord`); "" otherwise.
std::string unknown_subcommand(const CLI::App& app, int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const char* a = argv[i];
    if (!std::strcmp(a, "--db") || !std::strcmp(a, "--runs")) {
      ++i;
      continue;
    }
    if (a[0] == '-') continue;
    for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; }))
      if (sub->get_name() == a) return "";
    return a;
  }
  return "";
}

// "error: unknown command 'leaderbord'" with the nearest command, or the list of them.
int report_unknown_subcommand(const CLI::App& app, const std::string& word) {
  std::vector<std::string> names;
  for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; }))
    names.push_back(sub->get_name());
  std::string list;
  for (const std::string& n : names) list += (list.empty() ? "" : ", ") + n;
  std::cerr << "error: unknown command '" << word << "'\n";
  const std::string nearest = sweep::closest_key(word, names);
  if (!nearest.empty()) {
    std::cerr << "hint: did you mean `sweep " << nearest << "`? (the commands: " << list << ")\n";
  } else {
    std::cerr << "hint: the commands are " << list << "; `sweep --help` describes them\n";
  }
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  sweep::CliContext ctx;
  CLI::App app{
      "sweep: find the LoRA settings that make a LLaVA fine-tune work.\n"
      "Expands a grid of lora_r / lora_alpha / learning_rate / batch_size into jobs recorded in\n"
      "SQLite, runs one worker per GPU or CPU slot, and ranks the results."};
  app.require_subcommand(1);
  app.fallthrough();  // global flags may also follow the subcommand: `sweep jobs --db x.db`
  app.add_option("--db", ctx.db_flag, "results database (default: $SWEEP_DB or runs/sweep.db)");
  app.add_option("--runs", ctx.runs_flag, "run directories root (default: $SWEEP_RUNS or runs)");

  sweep::add_version_command(app, ctx);
  sweep::add_plan_command(app, ctx);
  sweep::add_lint_command(app, ctx);
  sweep::add_jobs_command(app, ctx);
  sweep::add_query_command(app, ctx);
  sweep::add_check_data_command(app, ctx);
  sweep::add_run_command(app, ctx);
  sweep::add_status_command(app, ctx);
  sweep::add_leaderboard_command(app, ctx);
  sweep::add_report_command(app, ctx);
  sweep::add_best_command(app, ctx);
  sweep::add_cancel_command(app, ctx);
  sweep::add_retry_command(app, ctx);
  sweep::add_merge_command(app, ctx);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const std::string unknown = unknown_subcommand(app, argc, argv);
    if (!unknown.empty() && app.get_subcommands().empty())
      return report_unknown_subcommand(app, unknown);
    int code = app.exit(e);
    return code == 0 ? 0 : 1;
  } catch (const std::exception& e) {
    std::cerr << "internal error: " << e.what() << "\n";
    return 2;
  }
  return ctx.exit_code;
}
