#include "orchestrator/report/downsample.h"

#include <cmath>
#include <limits>

#include <gtest/gtest.h>

namespace sweep::report {
namespace {

Curve ramp(size_t n) {
  Curve c;
  for (size_t i = 0; i < n; ++i) {
    c.x.push_back(static_cast<double>(i));
    c.y.push_back(static_cast<double>(2 * i));
  }
  return c;
}

TEST(Downsample, ACurveThatFitsIsUnchanged) {
  const Curve c = ramp(10);
  const Curve d = downsample(c, 10);
  EXPECT_EQ(d.x, c.x);
  EXPECT_EQ(d.y, c.y);
}

TEST(Downsample, KeepsEndsAndAveragesRunsBetween) {
  const Curve d = downsample(ramp(1002), 12);
  ASSERT_EQ(d.x.size(), 12u);
  EXPECT_EQ(d.x.front(), 0);
  EXPECT_EQ(d.x.back(), 1001);
  EXPECT_EQ(d.y.back(), 2002);
  for (size_t i = 1; i < d.x.size(); ++i) {
    EXPECT_GT(d.x[i], d.x[i - 1]);
    EXPECT_DOUBLE_EQ(d.y[i], 2 * d.x[i]);  // means of a line stay on it
  }
}

TEST(Downsample, NanIsLeftOutOfAMeanButARunOfNanStaysVisible) {
  Curve c = ramp(10);
  const double nan = std::numeric_limits<double>::quiet_NaN();
  c.y[1] = nan;  // run {1, 2}: mean of 4 only
  c.y[7] = c.y[8] = nan;
  const Curve d = downsample(c, 6);  // inner 8 points in 4 runs of 2
  ASSERT_EQ(d.y.size(), 6u);
  EXPECT_DOUBLE_EQ(d.y[1], 4);
  EXPECT_TRUE(std::isnan(d.y[4]));
}

}  // namespace
}  // namespace sweep::report
