// `sweep lint SPEC.yaml [--format table|csv|json] [--strict]`: the sweep file's guidance warnings
// (settings that usually make a LoRA fine-tune learn nothing or diverge; docs/sweep-file.md,
// "Warnings"). Exit 0 when the file is valid, warnings or not; 1 on a spec error, or on any
// warning with --strict.
#include <iostream>
#include <memory>

#include "common/failure.h"
#include "data/builtin.h"
#include "orchestrator/cli/commands.h"
#include "orchestrator/cli/warning_output.h"
#include "orchestrator/spec/guidance.h"
#include "orchestrator/spec/lora_target_check.h"
#include "orchestrator/spec/sweep_spec.h"

namespace sweep {
namespace {

struct LintFlags {
  std::string spec_path;
  std::string format = "table";
  bool strict = false;
};

size_t jobs_run(const std::vector<ExpandedJob>& jobs) {
  size_t n = 0;
  for (const ExpandedJob& job : jobs) n += job.is_duplicate() ? 0 : 1;
  return n;
}

void print_lint(const std::vector<Warning>& warnings, size_t jobs, OutputFormat format) {
  if (format == OutputFormat::kJson) {
    nlohmann::json out = {{"jobs", jobs}, {"warnings", warnings_to_json(warnings)}};
    std::cout << out.dump(2) << "\n";
    return;
  }
  if (format == OutputFormat::kCsv) return print_warning_rows(std::cout, warnings, format);
  print_warnings_text(std::cout, warnings);
  const std::string of_jobs = " (" + std::to_string(jobs) + (jobs == 1 ? " job)" : " jobs)");
  if (warnings.empty()) {
    std::cout << "no warnings" << of_jobs << "\n";
  } else {
    std::cout << warnings.size() << (warnings.size() == 1 ? " warning" : " warnings") << of_jobs
              << "; each is explained in docs/sweep-file.md, \"Warnings\"\n";
  }
}

void run_lint(const LintFlags& flags, CliContext& ctx) {
  auto format = parse_output_format(flags.format);
  if (!format.ok()) return ctx.fail(format.error());
  auto spec = load_sweep_spec(flags.spec_path);
  if (!spec.ok()) return ctx.fail(spec.error());
  auto jobs = expand_grid(*spec);
  if (!jobs.ok()) return ctx.fail(jobs.error());
  // The LoRA targets on the base model's tensor names, when its files are here already.
  std::string model_dir = spec->base_model;
  if (data::is_builtin(model_dir)) {
    auto dir = capture([&] { return data::builtin_model_dir(spec->base_model); });
    model_dir = dir.ok() ? *dir : "";
  }
  Status targets = check_lora_targets_if_present(*spec, model_dir);
  if (!targets.ok()) return ctx.fail(targets.error());
  const std::vector<Warning> warnings = guidance_warnings(*spec, *jobs);
  print_lint(warnings, jobs_run(*jobs), *format);
  if (flags.strict && !warnings.empty()) {
    ctx.fail(make_error(ErrorKind::kUser,
                        flags.spec_path + ": " + std::to_string(warnings.size()) +
                            (warnings.size() == 1 ? " warning" : " warnings") + " with --strict",
                        "change the settings named above, or run without --strict"));
  }
}

}  // namespace

void add_lint_command(CLI::App& app, CliContext& ctx) {
  auto flags = std::make_shared<LintFlags>();
  CLI::App* cmd = app.add_subcommand(
      "lint",
      "Warn about settings that usually make a LoRA fine-tune learn nothing or diverge (LoRA\n"
      "scale, learning rates, batch, evaluation); nothing is run. Exit 0 with warnings,\n"
      "1 on a spec error (or on any warning with --strict).");
  cmd->add_option("SPEC", flags->spec_path, "sweep file (YAML)")->required();
  cmd->add_option("--format", flags->format, "table, csv or json");
  cmd->add_flag("--strict", flags->strict, "exit 1 when there is any warning");
  cmd->callback([flags, &ctx] { run_lint(*flags, ctx); });
}

}  // namespace sweep
