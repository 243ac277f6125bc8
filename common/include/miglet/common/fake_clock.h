#pragma once

#include <condition_variable>
#include <mutex>
#include <vector>

#include "miglet/common/clock.h"

namespace miglet {

// A clock that only moves when told to. Used by tests; thread-safe.
//
// SleepFor blocks until another thread has advanced the clock past the wake-up time. With
// set_auto_advance(true) a sleeper moves the clock forward itself and returns at once, so code
// that waits (backoff, rate limits) runs through simulated time; sleeps() records each wait.
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
    {
      std::lock_guard l(mu_);
      AdvanceLocked(d);
    }
    cv_.notify_all();
  }
  void SleepFor(Duration d) override {
    std::unique_lock l(mu_);
    sleeps_.push_back(d);
    if (d <= Duration::zero()) return;
    if (auto_advance_) {
      AdvanceLocked(d);
      l.unlock();
      cv_.notify_all();
      return;
    }
    const MonoTime until = mono_ + d;
    ++sleepers_;
    cv_.notify_all();
    cv_.wait(l, [&] { return mono_ >= until; });
    --sleepers_;
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

 private:
  void AdvanceLocked(Duration d) {
    mono_ += d;
    wall_ += std::chrono::duration_cast<WallTime::duration>(d);
  }

  mutable std::mutex mu_;
  std::condition_variable cv_;
  MonoTime mono_;
  WallTime wall_;
  bool auto_advance_ = false;
  int sleepers_ = 0;
  std::vector<Duration> sleeps_;
};

}  // namespace miglet
