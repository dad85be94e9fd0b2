#include "orchestrator/cli/warning_output.h"

#include <sstream>

namespace sweep {
namespace {

constexpr size_t kWidth = 100;

// `label` then `text`, word-wrapped at kWidth columns; continuation lines indented by four.
void print_wrapped(std::ostream& out, const std::string& label, const std::string& text) {
  std::istringstream words(text);
  std::string line = label, word;
  bool first = true;
  while (words >> word) {
    if (!first && line.size() + 1 + word.size() > kWidth) {
      out << line << "\n";
      line = "    " + word;
    } else {
      line += (first ? "" : " ") + word;
    }
    first = false;
  }
  out << line << "\n";
}

}  // namespace

void print_warnings_text(std::ostream& out, const std::vector<Warning>& warnings) {
  for (const Warning& w : warnings) {
    out << "warning[" << w.id << "]: " << w.message << "\n";
    print_wrapped(out, "  why: ", w.reason);
    print_wrapped(out, "  source: ", w.source);
  }
}

void print_warning_rows(std::ostream& out, const std::vector<Warning>& warnings,
                        OutputFormat format) {
  const std::vector<std::string> columns = {"id",     "jobs",   "message",
                                            "reason", "source", "job_hashes"};
  std::vector<Row> rows;
  for (const Warning& w : warnings) {
    std::string hashes;
    for (const std::string& h : w.job_hashes) hashes += (hashes.empty() ? "" : " ") + h;
    rows.push_back({Cell::str(w.id), Cell::num(static_cast<long long>(w.job_hashes.size())),
                    Cell::str(w.message), Cell::str(w.reason), Cell::str(w.source),
                    Cell::str(hashes)});
  }
  print_rows(out, columns, rows, format);
}

nlohmann::json warnings_to_json(const std::vector<Warning>& warnings) {
  nlohmann::json out = nlohmann::json::array();
  for (const Warning& w : warnings) out.push_back(warning_to_json(w));
  return out;
}

}  // namespace sweep
