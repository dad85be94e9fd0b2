// `sweep check-data DATA.json --image-folder DIR [--model DIR] [--max-length N] [--show N]
// [--max-pixels N] [--format F]`: every problem of a LLaVA dataset before a LoRA run trains on it,
// and with
// --show the first N samples as the model sees them (docs/data.md).
#include <unistd.h>

#include <iostream>
#include <memory>

#include "common/failure.h"
#include "data/check_data.h"
#include "orchestrator/cli/commands.h"
#include "orchestrator/cli/output.h"

namespace sweep {
namespace {

struct CheckDataFlags {
  std::string data;
  data::CheckOptions check;
  std::string format = "table";
};

std::string problem_line(const data::DataProblem& p) {
  std::string line = p.error ? "error   " : "warning ";
  if (p.index >= 0) {
    line += "sample " + std::to_string(p.index) + (p.id.empty() ? "" : " (id " + p.id + ")") + " ";
  }
  line += p.kind + ": " + p.message;
  if (!p.hint.empty()) line += " (hint: " + p.hint + ")";
  return line;
}

void print_token_stats(const nlohmann::json& stats) {
  std::cout << "\ntokens (" << stats["tokenizer"].get<std::string>() << ", max length "
            << stats["max_length"] << ", " << stats["image_tokens"] << " tokens per image):\n";
  std::vector<Row> rows;
  for (const char* name : {"tokens", "supervised_tokens"}) {
    const nlohmann::json& s = stats[name];
    if (s.is_null()) continue;
    rows.push_back({Cell::str(name), Cell::num(s["min"].get<long long>()),
                    Cell::num(s["mean"].get<double>()), Cell::num(s["p50"].get<long long>()),
                    Cell::num(s["p95"].get<long long>()), Cell::num(s["max"].get<long long>())});
  }
  print_rows(std::cout, {"", "min", "mean", "p50", "p95", "max"}, rows, OutputFormat::kTable);
  std::cout << stats["samples"] << " samples tokenised: " << stats["truncated"] << " truncated, "
            << stats["zero_supervised"] << " with no supervised token, " << stats["mismatches"]
            << " tokenization mismatches\n";
  if (stats.contains("note")) std::cout << "note: " << stats["note"].get<std::string>() << "\n";
}

// Each shown sample: a header with its index, id and length, then its text with the supervised
// tokens marked (colour on a terminal, [brackets] otherwise).
void print_shown(const data::CheckReport& report) {
  const bool color = ::isatty(STDOUT_FILENO) == 1;
  for (const data::ShownSample& s : report.shown) {
    std::cout << "=== sample " << s.index << (s.id.empty() ? "" : " (id " + s.id + ")") << ": "
              << s.rendered.length << " positions, max_seq_len " << s.rendered.max_length
              << (s.rendered.truncated() ? " (truncated)" : "") << "; supervised tokens "
              << (color ? "in green" : "in [brackets]") << " ===\n"
              << data::format_rendered(s.rendered, color) << "\n";
  }
}

void print_table(const data::CheckReport& report) {
  print_shown(report);
  for (const data::DataProblem& p : report.problems) std::cout << problem_line(p) << "\n";
  if (!report.problems.empty()) {
    std::vector<Row> rows;
    for (const auto& [kind, count] : report.counts_by_kind) {
      bool error = false;
      for (const data::DataProblem& p : report.problems) {
        if (p.kind == kind && p.error) error = true;
      }
      rows.push_back({Cell::str(kind), Cell::str(error ? "error" : "warning"),
                      Cell::num(static_cast<long long>(count))});
    }
    std::cout << "\n";
    print_rows(std::cout, {"kind", "severity", "count"}, rows, OutputFormat::kTable);
  }
  if (!report.token_stats.is_null()) print_token_stats(report.token_stats);
  std::cout << "\n"
            << report.path << ": " << report.samples << " samples, " << report.errors()
            << " errors, " << report.warnings() << " warnings: " << (report.ok() ? "OK" : "FAILED")
            << "\n";
}

void print_csv(const data::CheckReport& report) {
  std::vector<Row> rows;
  for (const data::DataProblem& p : report.problems) {
    rows.push_back({Cell::str(p.error ? "error" : "warning"), Cell::str(p.kind),
                    p.index >= 0 ? Cell::num(static_cast<long long>(p.index)) : Cell::null(),
                    Cell::str(p.id), Cell::str(p.message), Cell::str(p.hint)});
  }
  print_rows(std::cout, {"severity", "kind", "index", "id", "message", "hint"}, rows,
             OutputFormat::kCsv);
}

void run_check_data(const CheckDataFlags& flags, CliContext& ctx) {
  Result<OutputFormat> format = parse_output_format(flags.format);
  if (!format) return ctx.fail(format.error());
  if (flags.check.show < 0) {
    return ctx.fail(make_error(ErrorKind::kUser,
                               "--show " + std::to_string(flags.check.show) + " is negative",
                               "give the number of samples to render, e.g. --show 3"));
  }
  if (flags.check.max_pixels < 0) {
    return ctx.fail(make_error(
        ErrorKind::kUser, "--max-pixels " + std::to_string(flags.check.max_pixels) + " is negative",
        "give a pixel count, e.g. --max-pixels 100000000 (0: no limit)"));
  }
  if (flags.check.show > 0 && flags.check.model_dir.empty()) {
    return ctx.fail(make_error(
        ErrorKind::kUser, "--show renders samples with the model's tokenizer and needs --model",
        "add --model DIR (the base model of the sweep)"));
  }
  Result<data::CheckReport> checked =
      capture([&] { return data::check_data(flags.data, flags.check); });
  if (!checked) return ctx.fail(checked.error());
  const data::CheckReport& report = *checked;
  switch (*format) {
    case OutputFormat::kJson:
      std::cout << report.to_json().dump(2) << "\n";
      break;
    case OutputFormat::kCsv:
      print_csv(report);
      break;
    case OutputFormat::kTable:
      print_table(report);
      break;
  }
  if (!report.ok()) {
    ctx.fail(make_error(ErrorKind::kUser,
                        flags.data + ": " + std::to_string(report.errors()) + " errors in " +
                            std::to_string(report.samples) + " samples",
                        "fix the samples listed above and run check-data again"));
  }
}

}  // namespace

void add_check_data_command(CLI::App& app, CliContext& ctx) {
  auto flags = std::make_shared<CheckDataFlags>();
  flags->check.max_length = 0;  // from the model's config unless --max-length is given
  CLI::App* cmd = app.add_subcommand(
      "check-data",
      "Validate a LLaVA dataset: fields, roles, <image> tokens, image files (each decoded\n"
      "whole); with --model also token lengths, truncation and label masking. Exit code 1\n"
      "when any error is found.");
  cmd->add_option("data", flags->data, "LLaVA JSON file (an array of samples)")
      ->required()
      ->type_name("DATA.json");
  cmd->add_option("--image-folder", flags->check.image_folder,
                  "folder the samples' relative \"image\" paths are under (absolute paths are\n"
                  "used as given)")
      ->required();
  cmd->add_option("--max-pixels", flags->check.max_pixels,
                  "refuse images whose header claims more pixels (default " +
                      std::to_string(data::kDefaultMaxImagePixels) + ", Pillow's limit; 0: none)");
  cmd->add_option("--model,--tokenizer", flags->check.model_dir,
                  "model directory (tokenizer.model, config.json): token statistics");
  cmd->add_option("--max-length", flags->check.max_length,
                  "model_max_length as in the sweep file (default 2048); truncation is at\n"
                  "min(this, the model's max_position_embeddings), as in training");
  cmd->add_option("--show", flags->check.show,
                  "render the first N samples as the model sees them (needs --model)");
  cmd->add_option("--threads", flags->check.threads,
                  "threads for images and tokens, and the most images decoded at once\n"
                  "(default: all cores)");
  cmd->add_option("--format", flags->format, "table|csv|json");
  cmd->callback([flags, &ctx] { run_check_data(*flags, ctx); });
}

}  // namespace sweep
