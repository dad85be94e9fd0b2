// `sweep query "SELECT ..."`: free read-only SQL over the results database (docs/database.md).
#include <cmath>
#include <cstdlib>
#include <iostream>

#include "db/store.h"
#include "orchestrator/cli/commands.h"
#include "orchestrator/cli/output.h"

namespace sweep {

namespace {

struct QueryOptions {
  std::string sql;
  std::string format = "table";
  double timeout_seconds = 10;
};

// SQLite prints non-finite reals as "Inf"/"-Inf"; JSON has no such numbers, so they stay text.
Cell to_cell(const std::optional<std::string>& text, bool numeric_column) {
  if (!text) return Cell::null();
  if (!numeric_column) return Cell::str(*text);
  char* end = nullptr;
  double v = std::strtod(text->c_str(), &end);
  bool finite_number = end && *end == '\0' && std::isfinite(v);
  return finite_number ? Cell::num(*text) : Cell::str(*text);
}

Status run_query(const CliContext& ctx, const QueryOptions& opts) {
  auto format = parse_output_format(opts.format);
  if (!format.ok()) return format.error();
  if (!std::isfinite(opts.timeout_seconds) || opts.timeout_seconds < 0) {
    return make_error(ErrorKind::kUser, "--timeout must be a number of seconds >= 0",
                      "pass --timeout 0 for no limit");
  }
  auto store = Store::open_readonly(ctx.db_path());
  if (!store.ok()) return store.error();
  auto result = (*store)->query_readonly(opts.sql, opts.timeout_seconds);
  if (!result.ok()) return result.error();
  std::vector<Row> rows;
  rows.reserve(result->rows.size());
  for (const auto& cells : result->rows) {
    Row row;
    for (size_t c = 0; c < cells.size(); ++c) {
      row.push_back(to_cell(cells[c], result->numeric_column[c]));
    }
    rows.push_back(std::move(row));
  }
  print_rows(std::cout, result->columns, rows, *format);
  return ok_status();
}

}  // namespace

void add_query_command(CLI::App& app, CliContext& ctx) {
  auto opts = std::make_shared<QueryOptions>();
  CLI::App* cmd = app.add_subcommand(
      "query", "Run one read-only SQL statement over the results database (docs/database.md)");
  cmd->add_option("sql", opts->sql, "a SELECT (or WITH ... SELECT, or a reporting PRAGMA)")
      ->required();
  cmd->add_option("--format", opts->format, "table, csv or json")->capture_default_str();
  cmd->add_option("--timeout", opts->timeout_seconds,
                  "stop the statement after SECONDS of running (0: no limit)")
      ->capture_default_str();
  cmd->callback([&ctx, opts] {
    Status status = run_query(ctx, *opts);
    if (!status.ok()) ctx.fail(status.error());
  });
}

}  // namespace sweep
