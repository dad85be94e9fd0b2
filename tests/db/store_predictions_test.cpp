// Kept predictions: written per evaluation, replaced on re-ingestion, read back by job and step.
#include <gtest/gtest.h>

#include "db/store.h"
#include "tests/db/store_test_util.h"

namespace sweep::testing {
namespace {

using StorePredictions = StoreWithJobs;

std::vector<PredictionRow> two_rows(const std::string& suffix) {
  return {{0, 0, 0, "000001", "What shape?\n<image>", "A circle.", "a circle" + suffix},
          {0, 0, 1, "000002", "What colour?", "Red.", "<b>red</b>" + suffix}};
}

TEST_F(StorePredictions, AreReadBackByStepAndSample) {
  ASSERT_TRUE(store_->add_predictions(ids_[0], 10, two_rows("")).ok());
  ASSERT_TRUE(store_->add_predictions(ids_[0], 20, two_rows("!")).ok());
  auto all = store_->predictions(ids_[0]);
  ASSERT_TRUE(all.ok()) << all.error().to_string();
  ASSERT_EQ(all->size(), 4u);
  EXPECT_EQ((*all)[0].step, 10);
  EXPECT_EQ((*all)[0].job_id, ids_[0]);
  EXPECT_EQ((*all)[3].step, 20);
  auto at20 = store_->predictions(ids_[0], 20);
  ASSERT_TRUE(at20.ok());
  ASSERT_EQ(at20->size(), 2u);
  EXPECT_EQ((*at20)[1].sample, 1);
  EXPECT_EQ((*at20)[1].sample_id, "000002");
  EXPECT_EQ((*at20)[1].reference, "Red.");
  EXPECT_EQ((*at20)[1].prediction, "<b>red</b>!");
  EXPECT_TRUE(store_->predictions(ids_[1])->empty());
}

TEST_F(StorePredictions, ReingestingReplacesInsteadOfAdding) {
  ASSERT_TRUE(store_->add_predictions(ids_[0], 10, two_rows("")).ok());
  ASSERT_TRUE(store_->add_predictions(ids_[0], 10, two_rows("?")).ok());
  EXPECT_EQ(count_rows(*store_, "predictions"), 2);
  EXPECT_EQ(store_->predictions(ids_[0], 10)->at(0).prediction, "a circle?");
  EXPECT_TRUE(store_->add_predictions(ids_[0], 30, {}).ok());
}

}  // namespace
}  // namespace sweep::testing
