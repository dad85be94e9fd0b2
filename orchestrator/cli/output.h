// Printing rows as an aligned table, CSV or JSON: every command that prints a table takes
// --format table|csv|json and goes through here.
#pragma once

#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "common/result.h"

namespace sweep {

enum class OutputFormat { kTable, kCsv, kJson };

// "table" | "csv" | "json"; a kUser error naming the flag otherwise.
Result<OutputFormat> parse_output_format(const std::string& text);

// One cell: a string, or null (printed empty in tables/CSV, null in JSON). `numeric` cells are
// written as JSON numbers and right-aligned in tables.
struct Cell {
  std::optional<std::string> text;
  bool numeric = false;
  static Cell null() { return Cell{}; }
  static Cell str(std::string s) { return Cell{std::move(s), false}; }
  static Cell num(std::string s) { return Cell{std::move(s), true}; }
  static Cell num(double v);
  static Cell num(long long v);
};

using Row = std::vector<Cell>;

// JSON: an array of objects keyed by column name. CSV: RFC 4180 quoting.
void print_rows(std::ostream& out, const std::vector<std::string>& columns,
                const std::vector<Row>& rows, OutputFormat format);

}  // namespace sweep
