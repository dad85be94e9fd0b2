// The page's parts, embedded at build time from orchestrator/report/assets/ and from the Debian
// package libjs-chart.js (/usr/share/javascript/chart.js/chart.min.js); see CMakeLists.txt.
#pragma once

#include <string_view>

namespace sweep::report::assets {

std::string_view report_html();
std::string_view report_css();
std::string_view report_js();
std::string_view chart_js();  // empty when libjs-chart.js was not installed at build time

}  // namespace sweep::report::assets
