#include "orchestrator/report/run_summary.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "common/file_system.h"
#include "orchestrator/report/html.h"
#include "orchestrator/report/report_data.h"

namespace sweep::report {

namespace fs = std::filesystem;
using json = nlohmann::json;

std::string default_report_path(const std::string& runs_dir, const std::string& sweep_name) {
  return (fs::path(runs_dir) / sweep_name / "report.html").string();
}

Status write_report(Store& store, const SweepRecord& sweep, const std::string& path) {
  auto data = build_report_data(store, sweep);
  if (!data.ok()) return data.error();
  const std::string page = render_report_html(*data);
  return capture([&] {
    const fs::path target(path);
    if (target.has_parent_path()) create_directories(target.parent_path().string());
    write_file_atomic(path, page);
  });
}

namespace {

std::string number(const json& v) {
  if (!v.is_number()) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4g", v.get<double>());
  return buf;
}

std::string signed_number(const json& v) {
  if (!v.is_number()) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%+.4g", v.get<double>());
  return buf;
}

}  // namespace

Result<std::string> leaderboard_top(Store& store, const SweepRecord& sweep, int top) {
  ReportOptions options;
  options.total_points = 0;  // no curves are printed
  options.min_points = 2;
  auto data = build_report_data(store, sweep, options);
  if (!data.ok()) return data.error();
  std::vector<const json*> ranked;
  for (const json& j : (*data)["jobs"]) {
    if (j["rank"].is_number()) ranked.push_back(&j);
  }
  if (ranked.empty()) return std::string();
  std::sort(ranked.begin(), ranked.end(),
            [](const json* a, const json* b) { return (*a)["rank"] < (*b)["rank"]; });
  const json& objective = (*data)["sweep"]["objective"];
  const std::string metric = objective["metric"];
  const json base = (*data)["base"].value(metric, json());
  std::ostringstream out;
  out << "top " << std::min<size_t>(ranked.size(), static_cast<size_t>(top)) << " by " << metric
      << " (" << objective["mode"].get<std::string>() << "; base model " << number(base) << "):\n";
  for (size_t i = 0; i < ranked.size() && i < static_cast<size_t>(top); ++i) {
    const json& j = *ranked[i];
    out << "  " << j["rank"].get<int>() << ". " << j["hash"].get<std::string>().substr(0, 8);
    for (const json& key : (*data)["swept_keys"]) {
      out << " " << key.get<std::string>() << "="
          << j["params"].value(key.get<std::string>(), json()).dump();
    }
    out << "  " << metric << " " << number(j["objective"]) << " vs base "
        << number(j["base_objective"]) << " (gain " << signed_number(j["gain"]) << ")";
    if (j["state"] != "succeeded") out << " [" << j["state"].get<std::string>() << "]";
    if (j["not_learning"] == true) out << " [not learning]";
    out << "\n";
  }
  const bool any_gain = std::any_of(ranked.begin(), ranked.end(), [](const json* j) {
    return (*j)["gain"].is_number() && (*j)["gain"].get<double>() > 0;
  });
  if (!any_gain) {
    out << "no job beat the base model (step 0): `sweep best` refuses to pick one; see "
           "`sweep leaderboard` and `sweep status`\n";
  }
  return out.str();
}

void print_run_report(Store& store, const std::string& sweep_name, const std::string& runs_dir,
                      std::ostream& out) {
  auto sweep = store.resolve_sweep(sweep_name);
  if (!sweep.ok()) {
    out << "warning: no report: " << sweep.error().message << "\n";
    return;
  }
  auto top = leaderboard_top(store, *sweep, 3);
  if (top.ok()) out << *top;
  const std::string path = default_report_path(runs_dir, sweep_name);
  if (Status written = write_report(store, *sweep, path); !written.ok()) {
    out << "warning: no report: " << written.error().message << "\n";
    return;
  }
  out << "report: " << path << " (sweep report " << sweep_name << " --serve for a live one)\n";
}

}  // namespace sweep::report
