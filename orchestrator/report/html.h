// The report page: one self-contained HTML file (the chart library, the stylesheet, the script and
// the data inlined; nothing is fetched), and the escaping every piece of user data goes through.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace sweep::report {

// Text for an HTML element or a quoted attribute: & < > " ' as character references.
std::string html_escape(const std::string& text);

// JSON for a <script type="application/json"> element: < > & and U+2028/U+2029 as \u escapes,
// so that no string inside (a job's parameters, an error message, a prediction) can close the
// element or start markup. JSON.parse reads it back unchanged.
std::string json_for_script(const nlohmann::json& data);

struct PageOptions {
  // Served by `sweep report --serve`: the page reloads its data from `data.json` every
  // `refresh_s` seconds. A written file never fetches anything.
  bool live = false;
  int refresh_s = 5;
};

// The whole page for `data` (report_data.h).
std::string render_report_html(const nlohmann::json& data, const PageOptions& options = {});

// True when the chart library was found at build time (libjs-chart.js); without it the page shows
// tables and heatmaps and says why the charts are missing.
bool chart_library_embedded();

}  // namespace sweep::report
