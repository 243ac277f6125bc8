#pragma once

#include <algorithm>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "miglet/common/clock.h"

namespace miglet {

// A clock that only moves when told to. Used by tests; thread-safe.
//
// SleepFor blocks until another thread has advanced the clock past the wake-up time. With
// set_auto_advance(true) a sleeper moves the clock forward itself and returns at once, so code
// that waits (backoff, rate limits) runs through simulated time; sleeps() records each wait.
//
// WaitUntil parks on the caller's own condition variable. Advance wakes every waiter (it locks
// the waiter's mutex, then notifies its condition variable, so a waiter about to park cannot
// miss the move) and returns once each has looked at the new time: it has returned from
// WaitUntil or is parked again. So after Advance a test may assert what did or did not happen
// by then, and a thread still in WaitUntil is certainly still waiting. auto_advance does not
// apply to WaitUntil: a loop waiting for its deadline or for work waits until a test moves the
// clock. A test waits for a thread to be parked (AwaitWaiterUntil, AwaitWaiters) first.
//
// Lock order: a waiter holds its own mutex and then takes the clock's; Advance never holds
// the clock's mutex while it takes a waiter's, and must not be called with a mutex held that a
// waiter needs. A waiter does not return while an Advance is still notifying it, so its mutex
// and condition variable may be destroyed once it has.
class FakeClock final : public Clock {
 public:
  FakeClock() : mono_(std::chrono::hours(1000)), wall_(std::chrono::seconds(1'800'000'000)) {}
  MonoTime Now() const override {
    std::lock_guard l(mu_);
    return mono_;
  }
  WallTime WallNow() const override {
    std::lock_guard l(mu_);
    return wall_;
  }
  void Advance(Duration d) {
    std::unique_lock l(mu_);
    AdvanceAndWake(l, d);
  }
  void SleepFor(Duration d) override {
    std::unique_lock l(mu_);
    sleeps_.push_back(d);
    if (d <= Duration::zero()) return;
    if (auto_advance_) {
      AdvanceAndWake(l, d);
      return;
    }
    const MonoTime until = mono_ + d;
    ++sleepers_;
    cv_.notify_all();
    cv_.wait(l, [&] { return mono_ >= until; });
    --sleepers_;
  }
  bool WaitUntil(std::unique_lock<std::mutex>& l, std::condition_variable& cv, MonoTime deadline,
                 const std::function<bool()>& pred) override {
    auto w = std::make_shared<Waiter>();
    w->mu = l.mutex();
    w->cv = &cv;
    w->deadline = deadline;
    {
      std::lock_guard g(mu_);
      waiters_.push_back(w);
    }
    while (!pred()) {
      {
        std::lock_guard g(mu_);
        if (mono_ >= deadline) break;
        w->parked = true;
        cv_.notify_all();  // Advance, AwaitWaiterUntil
      }
      cv.wait(l);
    }
    std::unique_lock g(mu_);
    waiters_.erase(std::find(waiters_.begin(), waiters_.end(), w));
    w->gone = true;
    cv_.notify_all();  // Advance
    if (w->notifying > 0) {
      // An Advance still holds a pointer to our mutex and condition variable and needs the
      // mutex: let it finish before our caller may destroy them.
      g.unlock();
      l.unlock();
      g.lock();
      cv_.wait(g, [&] { return w->notifying == 0; });
      g.unlock();
      l.lock();
    }
    return pred();
  }

  void set_auto_advance(bool on) {
    std::lock_guard l(mu_);
    auto_advance_ = on;
  }
  // Every SleepFor duration asked for, in order.
  std::vector<Duration> sleeps() const {
    std::lock_guard l(mu_);
    return sleeps_;
  }
  // Threads blocked in SleepFor right now (lets a test wait until a sleeper is parked).
  int sleepers() const {
    std::lock_guard l(mu_);
    return sleepers_;
  }
  // Threads parked in WaitUntil right now.
  int waiters() const {
    std::lock_guard l(mu_);
    return static_cast<int>(
        std::count_if(waiters_.begin(), waiters_.end(), [](const auto& w) { return w->parked; }));
  }
  // Blocks the test (for at most `timeout` of real time, a guard against a hang) until a thread
  // is parked in WaitUntil with exactly this deadline. False on timeout.
  bool AwaitWaiterUntil(MonoTime deadline,
                        std::chrono::milliseconds timeout = std::chrono::seconds(30)) const {
    std::unique_lock l(mu_);
    return cv_.wait_for(l, timeout, [&] {
      return std::any_of(waiters_.begin(), waiters_.end(),
                         [&](const auto& w) { return w->parked && w->deadline == deadline; });
    });
  }
  // Blocks likewise until at least `n` threads are parked in WaitUntil.
  bool AwaitWaiters(int n, std::chrono::milliseconds timeout = std::chrono::seconds(30)) const {
    std::unique_lock l(mu_);
    return cv_.wait_for(l, timeout, [&] {
      return std::count_if(waiters_.begin(), waiters_.end(),
                           [](const auto& w) { return w->parked; }) >= n;
    });
  }

 private:
  struct Waiter {
    std::mutex* mu = nullptr;
    std::condition_variable* cv = nullptr;
    MonoTime deadline;
    bool parked = false;  // checked its predicate and the time, and is waiting
    bool gone = false;    // returned from WaitUntil
    int notifying = 0;    // Advance calls that will still lock `mu`
  };

  // Moves the clock, wakes SleepFor's sleepers and every WaitUntil waiter, and waits until
  // each waiter has returned or parked again. `l` holds mu_ on entry and on return.
  void AdvanceAndWake(std::unique_lock<std::mutex>& l, Duration d) {
    mono_ += d;
    wall_ += std::chrono::duration_cast<WallTime::duration>(d);
    std::vector<std::shared_ptr<Waiter>> wake = waiters_;
    for (auto& w : wake) {
      ++w->notifying;
      w->parked = false;
    }
    l.unlock();
    cv_.notify_all();
    for (auto& w : wake) {
      std::lock_guard wl(*w->mu);
      w->cv->notify_all();
    }
    l.lock();
    for (auto& w : wake) --w->notifying;
    cv_.notify_all();
    cv_.wait(l, [&] {
      return std::all_of(wake.begin(), wake.end(),
                         [](const auto& w) { return w->gone || w->parked; });
    });
  }

  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  MonoTime mono_;
  WallTime wall_;
  bool auto_advance_ = false;
  int sleepers_ = 0;
  std::vector<Duration> sleeps_;
  std::vector<std::shared_ptr<Waiter>> waiters_;
};

}  // namespace miglet
