#include "miglet/agent/event_loop.h"

#include "miglet/common/fake_clock.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <set>
#include <vector>

namespace miglet {
namespace {

TEST(EventLoopTest, RunsPostedTasksInOrderOnOneThread) {
  EventLoop loop("test", MakeRealClock());
  std::vector<int> seen;  // only the loop touches it
  std::set<std::thread::id> threads;
  for (int i = 0; i < 100; ++i) {
    loop.Post([&, i] {
      seen.push_back(i);
      threads.insert(std::this_thread::get_id());
    });
  }
  const auto got = loop.Call([&] { return seen; });
  ASSERT_EQ(got.size(), 100u);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(got[i], i);
  EXPECT_EQ(loop.Call([&] { return threads.size(); }), 1u);
  EXPECT_NE(loop.Call([] { return std::this_thread::get_id(); }), std::this_thread::get_id());
}

TEST(EventLoopTest, CallReturnsTheResultOrTheException) {
  EventLoop loop("test", MakeRealClock());
  EXPECT_EQ(loop.Call([] { return 42; }), 42);
  EXPECT_THROW(loop.Call([]() -> int { throw std::invalid_argument("bad"); }),
               std::invalid_argument);
  // From the loop itself a Call would wait for itself forever: it is refused.
  bool refused = loop.Call([&] {
    try {
      loop.Call([] {});
      return false;
    } catch (const std::logic_error&) {
      return true;
    }
  });
  EXPECT_TRUE(refused);
}

TEST(EventLoopTest, TimersRunByDueTimeAndCancelledOnesNever) {
  EventLoop loop("test", MakeRealClock());
  std::promise<void> done;
  std::vector<std::string> order;
  loop.PostAfter(std::chrono::milliseconds(200), [&] {
    order.push_back("late");
    done.set_value();
  });
  loop.PostAfter(Duration::zero(), [&] { order.push_back("due"); });
  const uint64_t cancelled =
      loop.PostAfter(std::chrono::milliseconds(1), [&] { order.push_back("cancelled"); });
  loop.Cancel(cancelled);
  loop.Cancel(cancelled);  // twice is harmless
  loop.Cancel(0);
  done.get_future().wait();
  EXPECT_EQ(loop.Call([&] { return order; }), (std::vector<std::string>{"due", "late"}));
}

TEST(EventLoopTest, ATimerRunsWhenItsClockReachesItsTimeAndNotBefore) {
  auto clock = std::make_shared<FakeClock>();
  EventLoop loop("test", clock);
  std::atomic<int> ran{0};
  const MonoTime start = clock->Now();
  loop.PostAfter(std::chrono::seconds(30), [&] { ran = 30; });
  loop.PostAfter(std::chrono::seconds(5), [&] { ran = 5; });
  ASSERT_TRUE(clock->AwaitWaiterUntil(start + std::chrono::seconds(5)));
  clock->Advance(std::chrono::milliseconds(4999));
  // Posted tasks still run at once while the timers wait.
  EXPECT_EQ(loop.Call([&] { return ran.load(); }), 0);
  ASSERT_TRUE(clock->AwaitWaiterUntil(start + std::chrono::seconds(5)));
  clock->Advance(std::chrono::milliseconds(1));
  EXPECT_EQ(loop.Call([&] { return ran.load(); }), 5);
  ASSERT_TRUE(clock->AwaitWaiterUntil(start + std::chrono::seconds(30)));
  clock->Advance(std::chrono::seconds(25));
  EXPECT_EQ(loop.Call([&] { return ran.load(); }), 30);
}

TEST(EventLoopTest, StopDropsWhatIsQueuedAndRefusesMore) {
  auto loop = std::make_unique<EventLoop>("test", MakeRealClock());
  std::promise<void> release;
  auto gate = release.get_future().share();
  std::atomic<bool> ran_after{false};
  std::promise<void> blocked;
  loop->Post([&] {
    blocked.set_value();
    gate.wait();
  });
  blocked.get_future().wait();  // the loop is inside the first task
  loop->Post([&] { ran_after = true; });
  loop->PostAfter(Duration::zero(), [&] { ran_after = true; });
  std::thread stopper([&] { loop->Stop(); });
  // Stop waits for the running task; release it once Stop has marked the loop stopping (a
  // Post refused says so).
  while (loop->Post([] {})) {
  }
  release.set_value();
  stopper.join();
  EXPECT_FALSE(ran_after);
  EXPECT_FALSE(loop->Post([] {}));
  EXPECT_EQ(loop->PostAfter(Duration::zero(), [] {}), 0u);
  EXPECT_THROW(loop->Call([] { return 1; }), std::runtime_error);
}

}  // namespace
}  // namespace miglet
