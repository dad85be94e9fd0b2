#include "orchestrator/report/html.h"

#include "orchestrator/report/report_assets.h"

namespace sweep::report {

std::string html_escape(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string json_for_script(const nlohmann::json& data) {
  // Invalid UTF-8 in user data is replaced rather than refused: a report is still written.
  const std::string text = data.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  std::string out;
  out.reserve(text.size() + text.size() / 16);
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '<') {
      out += "\\u003c";
    } else if (c == '>') {
      out += "\\u003e";
    } else if (c == '&') {
      out += "\\u0026";
    } else if (c == '\xe2' && i + 2 < text.size() && text[i + 1] == '\x80' &&
               (text[i + 2] == '\xa8' || text[i + 2] == '\xa9')) {
      out += text[i + 2] == '\xa8' ? "\\u2028" : "\\u2029";  // line/paragraph separators
      i += 2;
    } else {
      out += c;
    }
  }
  return out;
}

namespace {

// Replaces the one occurrence of `marker` in `page` with `value`.
void fill(std::string& page, const std::string& marker, const std::string& value) {
  const size_t at = page.find(marker);
  if (at != std::string::npos) page.replace(at, marker.size(), value);
}

// A script's text may not contain "</script" (it would end the element early).
std::string script_text(std::string js) {
  for (size_t at = 0; (at = js.find("</script", at)) != std::string::npos; at += 2)
    js.replace(at, 2, "<\\/");
  return js;
}

}  // namespace

bool chart_library_embedded() { return assets::chart_js().size() > 0; }

std::string render_report_html(const nlohmann::json& data, const PageOptions& options) {
  std::string page(assets::report_html());
  const std::string name = data.value("/sweep/name"_json_pointer, std::string());
  fill(page, "@TITLE@", html_escape("sweep report: " + name));
  fill(page, "@CSS@", std::string(assets::report_css()));
  nlohmann::json config = {{"live", options.live}, {"refresh_s", options.refresh_s}};
  fill(page, "@CONFIG@", json_for_script(config));
  // The data goes last: it is the large part and must not be searched for markers.
  const std::string chart = script_text(std::string(assets::chart_js()));
  const std::string script = script_text(std::string(assets::report_js()));
  const size_t at_chart = page.find("@CHART_JS@");
  std::string tail = page.substr(at_chart + 10);
  page.resize(at_chart);
  page += chart;
  fill(tail, "@REPORT_JS@", script);
  const size_t at_data = tail.find("@DATA@");
  page += tail.substr(0, at_data);
  page += json_for_script(data);
  page += tail.substr(at_data + 6);
  return page;
}

}  // namespace sweep::report
