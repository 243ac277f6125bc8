#include "miglet/operator/kube/work_queue.h"

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <future>
#include <mutex>
#include <set>
#include <vector>

#include "miglet/common/fake_clock.h"

namespace miglet::kube {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

TEST(RateLimiterTest, ItemExponentialDoublesFrom5msAndCapsAt1000s) {
  auto rl = MakeItemExponentialRateLimiter(milliseconds(5), seconds(1000));
  EXPECT_EQ(rl->When("a"), milliseconds(5));
  EXPECT_EQ(rl->When("a"), milliseconds(10));
  EXPECT_EQ(rl->When("a"), milliseconds(20));
  EXPECT_EQ(rl->When("b"), milliseconds(5));  // per item
  EXPECT_EQ(rl->NumRequeues("a"), 3);
  for (int i = 0; i < 100; ++i) rl->When("a");
  EXPECT_EQ(rl->When("a"), seconds(1000));
  rl->Forget("a");
  EXPECT_EQ(rl->NumRequeues("a"), 0);
  EXPECT_EQ(rl->When("a"), milliseconds(5));
}

TEST(RateLimiterTest, BucketAllowsBurstThenTenPerSecond) {
  auto clock = std::make_shared<FakeClock>();
  auto rl = MakeBucketRateLimiter(10, 100, clock);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(rl->When("k" + std::to_string(i)), Duration(0)) << i;
  EXPECT_EQ(rl->When("x"), milliseconds(100));
  EXPECT_EQ(rl->When("y"), milliseconds(200));
  clock->Advance(seconds(1));  // 10 tokens back, 2 were already promised
  EXPECT_EQ(rl->When("z"), Duration(0));
  clock->Advance(seconds(100));  // refills only up to the burst
  for (int i = 0; i < 100; ++i) EXPECT_EQ(rl->When("k"), Duration(0)) << i;
  EXPECT_GT(rl->When("k"), Duration(0));
}

TEST(RateLimiterTest, DefaultControllerLimiterIsTheMaxOfBoth) {
  auto clock = std::make_shared<FakeClock>();
  auto rl = MakeDefaultControllerRateLimiter(clock);
  // Per-item growth dominates while the bucket has tokens.
  EXPECT_EQ(rl->When("a"), milliseconds(5));
  EXPECT_EQ(rl->When("a"), milliseconds(10));
  for (int i = 0; i < 98; ++i) rl->When("other" + std::to_string(i));
  // The bucket is empty now: a fresh item waits for a token (100 ms), not 5 ms.
  EXPECT_EQ(rl->When("fresh"), milliseconds(100));
  EXPECT_EQ(rl->NumRequeues("a"), 2);
}

std::unique_ptr<WorkQueue> NewQueue(std::shared_ptr<FakeClock> clock) {
  return MakeWorkQueue(clock, MakeDefaultControllerRateLimiter(clock));
}

TEST(WorkQueueTest, DeduplicatesQueuedKeys) {
  auto clock = std::make_shared<FakeClock>();
  auto q = NewQueue(clock);
  q->Add("ns/a");
  q->Add("ns/b");
  q->Add("ns/a");
  EXPECT_EQ(q->Len(), 2u);
  EXPECT_EQ(q->TryGet(), "ns/a");
  EXPECT_EQ(q->TryGet(), "ns/b");
  EXPECT_EQ(q->TryGet(), std::nullopt);
}

TEST(WorkQueueTest, KeyAddedWhileProcessingIsQueuedOnceAfterDone) {
  auto clock = std::make_shared<FakeClock>();
  auto q = NewQueue(clock);
  q->Add("k");
  ASSERT_EQ(q->TryGet(), "k");
  q->Add("k");
  q->Add("k");
  // Never to two workers at once.
  EXPECT_EQ(q->TryGet(), std::nullopt);
  q->Done("k");
  EXPECT_EQ(q->TryGet(), "k");
  q->Done("k");
  EXPECT_EQ(q->TryGet(), std::nullopt);
}

TEST(WorkQueueTest, AddAfterWaitsForTheClock) {
  auto clock = std::make_shared<FakeClock>();
  auto q = NewQueue(clock);
  q->AddAfter("late", seconds(10));
  q->AddAfter("later", seconds(20));
  q->AddAfter("late", seconds(30));  // the earlier time wins
  EXPECT_EQ(q->WaitingLen(), 2u);
  EXPECT_EQ(q->TryGet(), std::nullopt);
  clock->Advance(seconds(10));
  EXPECT_EQ(q->TryGet(), "late");
  EXPECT_EQ(q->TryGet(), std::nullopt);
  clock->Advance(seconds(10));
  EXPECT_EQ(q->TryGet(), "later");
}

TEST(WorkQueueTest, AddRateLimitedBacksOffPerItemAndForgetResets) {
  auto clock = std::make_shared<FakeClock>();
  auto q = NewQueue(clock);
  q->AddRateLimited("k");  // 5 ms
  EXPECT_EQ(q->TryGet(), std::nullopt);
  clock->Advance(milliseconds(5));
  ASSERT_EQ(q->TryGet(), "k");
  q->Done("k");
  q->AddRateLimited("k");  // 10 ms
  clock->Advance(milliseconds(9));
  EXPECT_EQ(q->TryGet(), std::nullopt);
  clock->Advance(milliseconds(1));
  ASSERT_EQ(q->TryGet(), "k");
  q->Done("k");
  EXPECT_EQ(q->NumRequeues("k"), 2);
  q->Forget("k");
  EXPECT_EQ(q->NumRequeues("k"), 0);
  q->AddRateLimited("k");
  clock->Advance(milliseconds(5));
  EXPECT_EQ(q->TryGet(), "k");
}

// Get on a thread of its own. Shuts the queue down and joins on the way out, so that a failed
// assertion ends the test rather than the test binary.
class GetThread {
 public:
  explicit GetThread(WorkQueue& q) : q_(q), t_([this] { got_.set_value(q_.Get()); }) {}
  ~GetThread() {
    q_.ShutDown();
    t_.join();
  }
  std::future<std::optional<std::string>>& result() { return result_; }

 private:
  WorkQueue& q_;
  std::promise<std::optional<std::string>> got_;
  std::future<std::optional<std::string>> result_ = got_.get_future();
  std::thread t_;
};

TEST(WorkQueueTest, GetWaitsOnTheClockUntilADelayedKeyIsDue) {
  auto clock = std::make_shared<FakeClock>();
  auto q = NewQueue(clock);
  const MonoTime due = clock->Now() + seconds(5);
  q->AddAfter("late", seconds(5));
  GetThread get(*q);
  // Get parks on the fake clock until the key's time: nothing but the clock moves it.
  ASSERT_TRUE(clock->AwaitWaiterUntil(due));
  clock->Advance(seconds(5) - milliseconds(1));
  // Advance returns once the waiter has seen the new time: it went back to waiting.
  EXPECT_EQ(clock->waiters(), 1);
  EXPECT_EQ(get.result().wait_for(seconds(0)), std::future_status::timeout);
  clock->Advance(milliseconds(1));
  EXPECT_EQ(get.result().get(), "late");
}

TEST(WorkQueueTest, AnEarlierDelayedKeyWakesAWaitingGet) {
  auto clock = std::make_shared<FakeClock>();
  auto q = NewQueue(clock);
  const MonoTime start = clock->Now();
  q->AddAfter("hourly", std::chrono::hours(1));
  GetThread get(*q);
  ASSERT_TRUE(clock->AwaitWaiterUntil(start + std::chrono::hours(1)));
  // AddAfter notifies: Get looks again and now waits for the earlier key's time.
  q->AddAfter("soon", seconds(2));
  ASSERT_TRUE(clock->AwaitWaiterUntil(start + seconds(2)));
  clock->Advance(seconds(2));
  EXPECT_EQ(get.result().get(), "soon");
  EXPECT_EQ(q->WaitingLen(), 1u);
}

TEST(WorkQueueTest, FailingReconcileIsRetriedAfterEachBackoffStepOfTheClock) {
  auto clock = std::make_shared<FakeClock>();
  auto q = NewQueue(clock);
  std::mutex mu;
  int calls = 0;
  auto pool = RunWorkers(*q, 1, [&](const std::string&) {
    std::lock_guard l(mu);
    ++calls;
    return ReconcileResult{false, Duration(0)};
  });
  auto calls_now = [&] {
    std::lock_guard l(mu);
    return calls;
  };
  q->Add("k");
  // Per-item exponential from 5 ms: each retry waits for the clock to reach the next step.
  const std::vector<Duration> steps = {milliseconds(5), milliseconds(10), milliseconds(20),
                                       milliseconds(40), milliseconds(80)};
  for (size_t i = 0; i < steps.size(); ++i) {
    ASSERT_TRUE(clock->AwaitWaiterUntil(clock->Now() + steps[i])) << "step " << i;
    EXPECT_EQ(calls_now(), static_cast<int>(i) + 1);
    clock->Advance(steps[i] - milliseconds(1));
    EXPECT_EQ(calls_now(), static_cast<int>(i) + 1) << "retried before its time";
    // The worker leaves its wait now: it reconciles, fails and waits for the next step.
    clock->Advance(milliseconds(1));
  }
  ASSERT_TRUE(clock->AwaitWaiterUntil(clock->Now() + milliseconds(160)));
  EXPECT_EQ(calls_now(), 6);
  EXPECT_EQ(q->NumRequeues("k"), 6);
  pool.reset();
}

TEST(WorkQueueTest, ShutDownWakesGetAndRefusesNewKeys) {
  auto clock = std::make_shared<FakeClock>();
  auto q = NewQueue(clock);
  std::optional<std::string> got = "unset";
  std::thread t([&] { got = q->Get(); });
  q->ShutDown();
  t.join();
  EXPECT_EQ(got, std::nullopt);
  q->Add("x");
  EXPECT_EQ(q->Len(), 0u);
}

TEST(WorkQueueTest, WorkersProcessEveryKeyOneWorkerPerKeyAndRetryFailures) {
  auto clock = std::make_shared<FakeClock>();
  auto q = NewQueue(clock);
  std::mutex mu;
  std::condition_variable cv;
  std::map<std::string, int> calls;
  std::set<std::string> running;
  std::vector<std::string> overlaps;  // keys a worker got while another still had them
  int plain_done = 0;
  auto pool = RunWorkers(*q, 3, [&](const std::string& key) {
    std::unique_lock l(mu);
    if (!running.insert(key).second) overlaps.push_back(key);
    const int n = ++calls[key];
    if (key == "hot" && n == 1) {
      // Added again while its first reconcile runs, which then waits until the other workers
      // have done every other key: a queue that handed "hot" out again now would put it on a
      // second worker while this one still has it.
      q->Add("hot");
      cv.wait(l, [&] { return plain_done == 20; });
    }
    if (key.rfind("k", 0) == 0) ++plain_done;
    running.erase(key);
    cv.notify_all();
    // "flaky" fails twice before it succeeds.
    return ReconcileResult{key != "flaky" || n >= 3, Duration(0)};
  });
  q->Add("hot");
  for (int i = 0; i < 20; ++i) q->Add("k" + std::to_string(i));
  q->Add("flaky");
  // Once all three workers wait in Get, either everything is done or what is left (the
  // retries of "flaky") waits for the fake clock: move it a step.
  for (int round = 0;; ++round) {
    ASSERT_TRUE(clock->AwaitWaiters(3));
    {
      std::lock_guard l(mu);
      if (calls.size() == 22 && calls["flaky"] == 3 && calls["hot"] == 2) break;
      ASSERT_LT(round, 100) << "flaky " << calls["flaky"];
    }
    clock->Advance(milliseconds(50));
  }
  std::unique_lock l(mu);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(calls["k" + std::to_string(i)], 1);
  EXPECT_EQ(calls["flaky"], 3);
  EXPECT_EQ(calls["hot"], 2) << "added while processing: once more, after";
  EXPECT_TRUE(overlaps.empty()) << overlaps.front() << " ran on two workers at once";
  l.unlock();
  pool.reset();
  EXPECT_EQ(q->NumRequeues("flaky"), 0);  // forgotten after success
}

}  // namespace
}  // namespace miglet::kube
