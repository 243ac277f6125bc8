#include "miglet/common/backoff.h"

#include <gtest/gtest.h>

namespace miglet {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

TEST(BackoffTest, GrowsByMultiplierUpToCapWithoutJitter) {
  Backoff b(BackoffPolicy{}, [] { return 0.5; });  // factor exactly 1.0
  EXPECT_EQ(b.Next(), seconds(5));
  EXPECT_EQ(b.Next(), milliseconds(8000));
  EXPECT_EQ(b.Next(), milliseconds(12800));
  EXPECT_EQ(b.Next(), milliseconds(20480));
  EXPECT_EQ(b.Next(), seconds(30));  // 32.768 s capped
  EXPECT_EQ(b.Next(), seconds(30));
  EXPECT_EQ(b.attempts(), 6);
}

TEST(BackoffTest, JitterStaysWithinTwentyPercent) {
  Backoff low(BackoffPolicy{}, [] { return 0.0; });
  EXPECT_EQ(low.Next(), seconds(4));
  Backoff high(BackoffPolicy{}, [] { return 0.999999999; });
  const auto d = high.Next();
  EXPECT_GT(d, milliseconds(5999));
  EXPECT_LT(d, milliseconds(6001));

  Backoff random{BackoffPolicy{}};
  for (int i = 0; i < 1000; ++i) {
    const auto base = random.CurrentBase();
    const auto d = random.Next();
    EXPECT_GE(d, base * 8 / 10) << "attempt " << i;
    EXPECT_LE(d, base * 12 / 10) << "attempt " << i;
    EXPECT_LE(d, seconds(36));
  }
}

TEST(BackoffTest, HealthyStreamResetsTheSequence) {
  Backoff b(BackoffPolicy{}, [] { return 0.5; });
  b.Next();
  b.Next();
  b.Next();
  // Short-lived stream: keep growing.
  EXPECT_EQ(b.NextAfterStream(seconds(29)), milliseconds(20480));
  // Healthy for the reset period: back to the start.
  EXPECT_EQ(b.NextAfterStream(seconds(30)), seconds(5));
  EXPECT_EQ(b.attempts(), 1);
}

TEST(BackoffTest, PolicyChangeClampsCurrentDelay) {
  Backoff b(BackoffPolicy{}, [] { return 0.5; });
  for (int i = 0; i < 6; ++i) b.Next();
  BackoffPolicy p;
  p.max = seconds(10);
  b.set_policy(p);
  EXPECT_EQ(b.Next(), seconds(10));
}

}  // namespace
}  // namespace miglet
