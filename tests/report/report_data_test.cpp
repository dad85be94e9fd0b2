// The report's data: what each panel reads, from a recorded sweep.
#include "orchestrator/report/report_data.h"

#include <gtest/gtest.h>

#include "tests/report/report_world.h"

namespace sweep::report {
namespace {

using json = nlohmann::json;
using testing::make_report_world;

const json& job_of(const json& doc, int64_t id) {
  for (const json& j : doc["jobs"])
    if (j["id"] == id) return j;
  static const json none;
  return none;
}

TEST(ReportData, RanksJobsWithTheirGainOverTheBaseModel) {
  auto w = make_report_world();
  auto doc = build_report_data(*w.store, w.sweep);
  ASSERT_TRUE(doc.ok()) << doc.error().to_string();
  EXPECT_EQ((*doc)["sweep"]["objective"]["metric"], "val_loss");
  EXPECT_EQ((*doc)["base"]["val_loss"], 2.0);
  const json& best = job_of(*doc, w.ids[1]);
  EXPECT_EQ(best["rank"], 1);
  EXPECT_DOUBLE_EQ(best["objective"].get<double>(), 1.2);
  EXPECT_NEAR(best["gain"].get<double>(), 0.8, 1e-12);  // base 2.0 - best 1.2: lower is better
  EXPECT_EQ(best["base_objective"], 2.0);
  EXPECT_EQ(best["not_learning"], false);
  EXPECT_TRUE(best["learning_check"].is_null());
  EXPECT_EQ(best["best_step"], 40);
  EXPECT_EQ(best["checkpoint"], "/runs/ckpt-40-1");
  EXPECT_EQ(best["steps"], 40);
  EXPECT_EQ(best["tokens"], 32000);
  EXPECT_EQ(best["checkpoints"].size(), 2u);
  ASSERT_EQ(best["predictions"].size(), 2u);
  EXPECT_EQ(best["predictions"][0]["prediction"], "<img src=x onerror=alert(1)>");
  EXPECT_EQ(best["predictions"][1]["reference"], "Red.");
}

TEST(ReportData, KeepsFailedJobsWithTheirFirstErrorLine) {
  auto w = make_report_world();
  auto doc = build_report_data(*w.store, w.sweep);
  ASSERT_TRUE(doc.ok());
  EXPECT_EQ((*doc)["jobs"].size(), 4u);  // failed jobs are listed, not hidden
  const json& failed = job_of(*doc, w.ids[3]);
  EXPECT_EQ(failed["state"], "failed");
  EXPECT_TRUE(failed["rank"].is_null());
  EXPECT_EQ(failed["attempts"].size(), 1u);
  EXPECT_EQ(failed["attempts"][0]["exit_code"], 2);
  const json& summary = (*doc)["summary"];
  EXPECT_EQ(summary["states"]["succeeded"], 3);
  EXPECT_EQ(summary["states"]["failed"], 1);
  ASSERT_EQ(summary["failures"].size(), 1u);
  EXPECT_EQ(summary["failures"][0]["error"], "train: CUDA out of memory");
  EXPECT_EQ(summary["failures"][0]["exit_code"], 2);
}

TEST(ReportData, SweptKeysAreTheOnesThatDiffer) {
  auto w = make_report_world();
  auto doc = build_report_data(*w.store, w.sweep);
  ASSERT_TRUE(doc.ok());
  EXPECT_EQ((*doc)["swept_keys"], json({"learning_rate", "lora_alpha", "lora_r"}));
  EXPECT_EQ((*doc)["eval_metrics"], json({"val_exact_match", "val_loss"}));
  // What every job shares is written once; each job keeps its swept values.
  EXPECT_EQ((*doc)["fixed_params"], json({{"batch_size", 8}, {"note", "</script>"}}));
  EXPECT_EQ(job_of(*doc, w.ids[1])["params"],
            json({{"learning_rate", 0.0001}, {"lora_alpha", 16}, {"lora_r", 8}}));
}

TEST(ReportData, NumbersAreShortened) {
  auto w = make_report_world();
  ASSERT_TRUE(w.store->add_eval(w.ids[0], 1, 40, {{"val_loss", 1.0 / 3}}, {320, 32000}).ok());
  auto doc = build_report_data(*w.store, w.sweep);
  ASSERT_TRUE(doc.ok());
  const json& c = (*doc)["curves"][std::to_string(w.ids[0])]["val_loss"];
  EXPECT_EQ(c["y"].back().dump(), "0.333333");
  EXPECT_EQ(c["x"].back().dump(), "32000");  // whole numbers as integers
}

TEST(ReportData, CurvesRunOnTokensFromTheBaseModelAndAreThinned) {
  auto w = make_report_world(/*train_steps=*/500);
  ReportOptions o;
  o.max_points = 50;
  auto doc = build_report_data(*w.store, w.sweep, o);
  ASSERT_TRUE(doc.ok());
  EXPECT_EQ((*doc)["axis"], "tokens");
  const json& c = (*doc)["curves"][std::to_string(w.ids[0])];
  EXPECT_EQ(c["train_loss"]["x"].size(), 50u);
  EXPECT_EQ(c["train_loss"]["x"].back(), 400000);          // the last point is kept as it is
  EXPECT_EQ(c["val_loss"]["x"], json({0, 16000, 32000}));  // step 0 drawn at zero tokens
  EXPECT_EQ(c["val_loss"]["y"][0], 2.0);
  EXPECT_EQ((*doc)["limits"]["points_per_curve"], 50);
}

TEST(ReportData, ManyCurvesShareAPointBudget) {
  auto w = make_report_world(/*train_steps=*/500);
  ReportOptions o;
  o.total_points = 12 * 20;  // 4 jobs x 3 curves (the failed job has 2)
  o.min_points = 4;
  auto doc = build_report_data(*w.store, w.sweep, o);
  ASSERT_TRUE(doc.ok());
  EXPECT_LE((*doc)["curves"][std::to_string(w.ids[0])]["train_loss"]["x"].size(), 22u);
}

TEST(ReportData, FirstLineTrimsTheRest) {
  EXPECT_EQ(first_line("\n  boom: bad\nstack"), "boom: bad");
  EXPECT_EQ(first_line(""), "");
  EXPECT_EQ(first_line("one\r\n"), "one");
}

}  // namespace
}  // namespace sweep::report
