#include <gtest/gtest.h>

#include "miglet/common/fake_clock.h"
#include "miglet/operator/kube/event_recorder.h"
#include "miglet/operator/kube/leader_elector.h"

namespace miglet::kube {
namespace {

using std::chrono::seconds;

LeaseRecord Held(const std::string& who, const std::string& renew, int transitions = 0) {
  return LeaseRecord{who, 15, "t0", renew, transitions};
}

TEST(LeaderElectionStateTest, NoLeaseMeansAcquireWithZeroTransitions) {
  FakeClock clock;
  LeaderElectionState s("me", seconds(15), seconds(10));
  s.Observe(std::nullopt, clock.Now());
  EXPECT_TRUE(s.CanAcquire(clock.Now()));
  LeaseRecord want = s.Desired("now");
  EXPECT_EQ(want.holder, "me");
  EXPECT_EQ(want.lease_duration_seconds, 15);
  EXPECT_EQ(want.lease_transitions, 0);
  EXPECT_EQ(want.acquire_time, "now");
}

TEST(LeaderElectionStateTest, OthersLeaseIsRespectedUntilItGoesUnrenewedForTheDuration) {
  FakeClock clock;
  LeaderElectionState s("me", seconds(15), seconds(10));
  s.Observe(Held("other", "r1"), clock.Now());
  EXPECT_FALSE(s.CanAcquire(clock.Now()));
  clock.Advance(seconds(10));
  s.Observe(Held("other", "r2"), clock.Now());  // renewed: the 15 s start again
  clock.Advance(seconds(14));
  s.Observe(Held("other", "r2"), clock.Now());  // unchanged
  EXPECT_FALSE(s.CanAcquire(clock.Now()));
  clock.Advance(seconds(1));
  s.Observe(Held("other", "r2"), clock.Now());
  EXPECT_TRUE(s.CanAcquire(clock.Now()));
  LeaseRecord want = s.Desired("t9");
  EXPECT_EQ(want.holder, "me");
  EXPECT_EQ(want.lease_transitions, 1);  // the holder changes
  EXPECT_EQ(want.acquire_time, "t9");
}

TEST(LeaderElectionStateTest, ReleasedLeaseCanBeTakenAtOnce) {
  FakeClock clock;
  LeaderElectionState s("me", seconds(15), seconds(10));
  s.Observe(Held("", "r1", 3), clock.Now());
  EXPECT_TRUE(s.CanAcquire(clock.Now()));
  EXPECT_EQ(s.Desired("t").lease_transitions, 4);
}

TEST(LeaderElectionStateTest, RenewKeepsAcquireTimeAndLeadershipEndsAtTheRenewDeadline) {
  FakeClock clock;
  LeaderElectionState s("me", seconds(15), seconds(10));
  s.Observe(std::nullopt, clock.Now());
  LeaseRecord first = s.Desired("t0");
  s.Renewed(first, clock.Now());
  EXPECT_TRUE(s.IsLeading(clock.Now()));
  clock.Advance(seconds(2));
  s.Observe(first, clock.Now());
  EXPECT_TRUE(s.CanAcquire(clock.Now()));
  LeaseRecord renew = s.Desired("t2");
  EXPECT_EQ(renew.acquire_time, "t0");
  EXPECT_EQ(renew.lease_transitions, 0);
  s.Renewed(renew, clock.Now());
  // Renewals fail from here on (the API is unreachable): leading until 10 s after the last
  // successful one, not a moment longer.
  clock.Advance(seconds(9));
  EXPECT_TRUE(s.IsLeading(clock.Now()));
  clock.Advance(seconds(1));
  EXPECT_FALSE(s.IsLeading(clock.Now()));
}

TEST(LeaderElectionStateTest, SeeingAnotherHolderEndsLeadershipImmediately) {
  FakeClock clock;
  LeaderElectionState s("me", seconds(15), seconds(10));
  s.Observe(std::nullopt, clock.Now());
  s.Renewed(s.Desired("t0"), clock.Now());
  ASSERT_TRUE(s.IsLeading(clock.Now()));
  s.Observe(Held("usurper", "t1", 1), clock.Now());
  EXPECT_FALSE(s.IsLeading(clock.Now()));
  EXPECT_FALSE(s.CanAcquire(clock.Now()));
}

TEST(TimeFormatTest, Rfc3339) {
  const WallTime t = WallTime(std::chrono::seconds(1'800'000'000)) + std::chrono::microseconds(42);
  EXPECT_EQ(FormatTime(t), "2027-01-15T08:00:00Z");
  EXPECT_EQ(FormatMicroTime(t), "2027-01-15T08:00:00.000042Z");
}

}  // namespace
}  // namespace miglet::kube
