// The page: user data escaped wherever it lands, the chart library and the data inlined.
#include "orchestrator/report/html.h"

#include <gtest/gtest.h>

#include "orchestrator/report/report_data.h"
#include "tests/report/report_world.h"

namespace sweep::report {
namespace {

using json = nlohmann::json;

TEST(HtmlEscape, EscapesMarkupAndQuotes) {
  EXPECT_EQ(html_escape("<a href=\"x\">Tom & 'Jerry'</a>"),
            "&lt;a href=&quot;x&quot;&gt;Tom &amp; &#39;Jerry&#39;&lt;/a&gt;");
  EXPECT_EQ(html_escape("plain"), "plain");
}

TEST(JsonForScript, CannotCloseTheScriptElementAndReadsBackUnchanged) {
  const json data = {{"error", "</script><script>alert(1)</script>"},
                     {"amp", "a & b <!-- c"},
                     {"separator", "line\u2028next\u2029end"}};
  const std::string text = json_for_script(data);
  EXPECT_EQ(text.find('<'), std::string::npos);
  EXPECT_EQ(text.find('>'), std::string::npos);
  EXPECT_EQ(text.find('&'), std::string::npos);
  EXPECT_EQ(text.find("\xe2\x80\xa8"), std::string::npos);
  EXPECT_EQ(json::parse(text), data);
}

TEST(JsonForScript, InvalidUtf8IsReplacedNotRefused) {
  const json data = {{"prediction", std::string("ok \xff\xfe bytes")}};
  const std::string text = json_for_script(data);
  EXPECT_NE(text.find("ok "), std::string::npos);
  EXPECT_NO_THROW(json::parse(text));
}

TEST(ReportPage, InlinesEverythingAndEscapesTheSweepName) {
  auto w = testing::make_report_world();
  auto data = build_report_data(*w.store, w.sweep);
  ASSERT_TRUE(data.ok());
  (*data)["sweep"]["name"] = "<b>tiny</b>";
  const std::string page = render_report_html(*data);
  EXPECT_NE(page.find("<title>sweep report: &lt;b&gt;tiny&lt;/b&gt;</title>"), std::string::npos);
  // The job's param "note": "</script>" and the prediction's markup stay inside the JSON.
  EXPECT_EQ(page.find("<img src=x"), std::string::npos);
  EXPECT_NE(page.find("\\u003c/script\\u003e"), std::string::npos);
  // Nothing is fetched: no external script, stylesheet or image.
  EXPECT_EQ(page.find("<script src"), std::string::npos);
  EXPECT_EQ(page.find("<link"), std::string::npos);
  EXPECT_EQ(page.find("http://"), page.find("http://www.w3.org"));  // only SVG namespaces, if any
  EXPECT_NE(page.find("id=\"report-data\""), std::string::npos);
  EXPECT_EQ(page.find("@DATA@"), std::string::npos);
  EXPECT_EQ(page.find("@REPORT_JS@"), std::string::npos);
  if (chart_library_embedded()) {
    EXPECT_NE(page.find("Chart.js v"), std::string::npos);
  }
  // A written page never refreshes; a served one does.
  EXPECT_NE(page.find("{\"live\":false"), std::string::npos);
  PageOptions live;
  live.live = true;
  EXPECT_NE(render_report_html(*data, live).find("{\"live\":true"), std::string::npos);
}

}  // namespace
}  // namespace sweep::report
