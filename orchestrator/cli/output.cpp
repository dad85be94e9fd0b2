#include "orchestrator/cli/output.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include <nlohmann/json.hpp>

namespace sweep {

Result<OutputFormat> parse_output_format(const std::string& text) {
  if (text == "table") return OutputFormat::kTable;
  if (text == "csv") return OutputFormat::kCsv;
  if (text == "json") return OutputFormat::kJson;
  return make_error(ErrorKind::kUser, "--format '" + text + "' is not a known format",
                    "use table, csv or json");
}

Cell Cell::num(double v) {
  if (!std::isfinite(v)) return Cell::null();
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return Cell{std::string(buf), true};
}

Cell Cell::num(long long v) { return Cell{std::to_string(v), true}; }

namespace {

std::string csv_quote(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string q = "\"";
  for (char c : s) q += (c == '"') ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

void print_table(std::ostream& out, const std::vector<std::string>& columns,
                 const std::vector<Row>& rows) {
  std::vector<size_t> width(columns.size());
  for (size_t c = 0; c < columns.size(); ++c) width[c] = columns[c].size();
  for (const Row& r : rows)
    for (size_t c = 0; c < r.size() && c < width.size(); ++c)
      width[c] = std::max(width[c], r[c].text.value_or("").size());
  auto line = [&](const std::vector<std::string>& cells, const std::vector<bool>& right) {
    std::string s;
    for (size_t c = 0; c < cells.size(); ++c) {
      std::string pad(width[c] - std::min(width[c], cells[c].size()), ' ');
      s += right[c] ? pad + cells[c] : cells[c] + (c + 1 < cells.size() ? pad : "");
      if (c + 1 < cells.size()) s += "  ";
    }
    while (!s.empty() && s.back() == ' ') s.pop_back();
    out << s << "\n";
  };
  line(columns, std::vector<bool>(columns.size(), false));
  for (const Row& r : rows) {
    std::vector<std::string> cells;
    std::vector<bool> right;
    for (size_t c = 0; c < columns.size(); ++c) {
      cells.push_back(c < r.size() ? r[c].text.value_or("") : "");
      right.push_back(c < r.size() && r[c].numeric);
    }
    line(cells, right);
  }
}

}  // namespace

void print_rows(std::ostream& out, const std::vector<std::string>& columns,
                const std::vector<Row>& rows, OutputFormat format) {
  switch (format) {
    case OutputFormat::kTable:
      print_table(out, columns, rows);
      return;
    case OutputFormat::kCsv: {
      for (size_t c = 0; c < columns.size(); ++c) out << (c ? "," : "") << csv_quote(columns[c]);
      out << "\n";
      for (const Row& r : rows) {
        for (size_t c = 0; c < columns.size(); ++c)
          out << (c ? "," : "") << (c < r.size() ? csv_quote(r[c].text.value_or("")) : "");
        out << "\n";
      }
      return;
    }
    case OutputFormat::kJson: {
      nlohmann::json arr = nlohmann::json::array();
      for (const Row& r : rows) {
        nlohmann::json obj = nlohmann::json::object();
        for (size_t c = 0; c < columns.size(); ++c) {
          if (c >= r.size() || !r[c].text) {
            obj[columns[c]] = nullptr;
          } else if (r[c].numeric) {
            nlohmann::json n = nlohmann::json::parse(*r[c].text, nullptr, false);
            obj[columns[c]] = n.is_discarded() ? nlohmann::json(*r[c].text) : n;
          } else {
            obj[columns[c]] = *r[c].text;
          }
        }
        arr.push_back(std::move(obj));
      }
      out << arr.dump(2) << "\n";
      return;
    }
  }
}

}  // namespace sweep
