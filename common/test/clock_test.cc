#include <gtest/gtest.h>

#include <future>
#include <thread>

#include "miglet/common/clock.h"
#include "miglet/common/fake_clock.h"

namespace miglet {
namespace {

using std::chrono::seconds;

TEST(ClockTest, DeadlineAfterSaturatesInsteadOfOverflowing) {
  FakeClock clock;
  EXPECT_EQ(clock.DeadlineAfter(Duration::max()), MonoTime::max());
  EXPECT_EQ(clock.DeadlineAfter(seconds(3)), clock.Now() + seconds(3));
}

TEST(ClockTest, RealClockWaitUntilReturnsThePredicate) {
  RealClock clock;
  std::mutex mu;
  std::condition_variable cv;
  std::unique_lock l(mu);
  // A deadline already reached: no waiting, the predicate's value.
  EXPECT_FALSE(clock.WaitUntil(l, cv, clock.Now(), [] { return false; }));
  // No deadline: until another thread makes the predicate true.
  bool ready = false;
  std::thread t([&] {
    std::lock_guard g(mu);
    ready = true;
    cv.notify_all();
  });
  EXPECT_TRUE(clock.WaitUntil(l, cv, MonoTime::max(), [&] { return ready; }));
  l.unlock();
  t.join();
}

// A waiter on a fake clock returns when the clock reaches its deadline (false) or when its
// predicate holds (true), and Advance returns only once the waiter has seen the new time.
struct Waiting {
  std::mutex mu;
  std::condition_variable cv;
  bool ready = false;
};

TEST(FakeClockTest, WaitForReturnsFalseOnlyOnceTheClockReachesTheDeadline) {
  FakeClock clock;
  Waiting w;
  auto result = std::async(std::launch::async, [&] {
    std::unique_lock l(w.mu);
    return clock.WaitFor(l, w.cv, seconds(5), [&] { return w.ready; });
  });
  ASSERT_TRUE(clock.AwaitWaiterUntil(clock.Now() + seconds(5)));
  clock.Advance(seconds(4));
  EXPECT_EQ(clock.waiters(), 1) << "woken by the move, it must wait on";
  EXPECT_EQ(result.wait_for(seconds(0)), std::future_status::timeout);
  clock.Advance(seconds(1));
  EXPECT_FALSE(result.get());
  EXPECT_EQ(clock.waiters(), 0);
}

TEST(FakeClockTest, WaitForReturnsTrueWhenNotifiedWithoutTheClockMoving) {
  FakeClock clock;
  const MonoTime start = clock.Now();
  Waiting w;
  auto result = std::async(std::launch::async, [&] {
    std::unique_lock l(w.mu);
    return clock.WaitFor(l, w.cv, seconds(5), [&] { return w.ready; });
  });
  ASSERT_TRUE(clock.AwaitWaiters(1));
  {
    std::lock_guard l(w.mu);
    w.ready = true;
  }
  w.cv.notify_all();
  EXPECT_TRUE(result.get());
  EXPECT_EQ(clock.Now(), start);
}

TEST(FakeClockTest, AdvanceWakesEveryWaiterOnItsOwnConditionVariable) {
  FakeClock clock;
  Waiting a, b;
  auto wait = [&](Waiting& w, Duration d) {
    return std::async(std::launch::async, [&clock, &w, d] {
      std::unique_lock l(w.mu);
      return clock.WaitFor(l, w.cv, d, [&] { return w.ready; });
    });
  };
  auto ra = wait(a, seconds(1));
  auto rb = wait(b, seconds(2));
  ASSERT_TRUE(clock.AwaitWaiters(2));
  clock.Advance(seconds(1));
  EXPECT_FALSE(ra.get());
  EXPECT_EQ(clock.waiters(), 1);
  clock.Advance(seconds(1));
  EXPECT_FALSE(rb.get());
}

}  // namespace
}  // namespace miglet
