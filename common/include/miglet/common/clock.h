#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

namespace miglet {

using Duration = std::chrono::nanoseconds;
using MonoTime = std::chrono::steady_clock::time_point;
using WallTime = std::chrono::system_clock::time_point;

// Time goes through this interface so backoff, heartbeat and timeout logic can be tested by
// moving a fake clock instead of sleeping.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual MonoTime Now() const = 0;
  virtual WallTime WallNow() const = 0;
  // Blocks the calling thread for `d` of this clock's time (a fake clock returns when a test
  // has moved it far enough, or at once when it advances itself).
  virtual void SleepFor(Duration d) = 0;

  // The timer every loop waits on: blocks on the caller's `cv` (with `l` locked, as for
  // std::condition_variable::wait_until) until `pred()` holds or this clock reaches
  // `deadline` (MonoTime::max(): no deadline). Returns pred(). Whoever makes pred() true
  // notifies `cv` as usual; a fake clock that is moved past `deadline` notifies it too.
  virtual bool WaitUntil(std::unique_lock<std::mutex>& l, std::condition_variable& cv,
                         MonoTime deadline, const std::function<bool()>& pred) = 0;

  bool WaitFor(std::unique_lock<std::mutex>& l, std::condition_variable& cv, Duration d,
               const std::function<bool()>& pred) {
    return WaitUntil(l, cv, DeadlineAfter(d), pred);
  }
  // Now() + d, saturating instead of overflowing (d may be Duration::max()).
  MonoTime DeadlineAfter(Duration d) const {
    const MonoTime now = Now();
    if (d > MonoTime::max() - now) return MonoTime::max();
    return now + d;
  }

  int64_t UnixSeconds() const {
    return std::chrono::duration_cast<std::chrono::seconds>(WallNow().time_since_epoch()).count();
  }
};

class RealClock final : public Clock {
 public:
  MonoTime Now() const override { return std::chrono::steady_clock::now(); }
  WallTime WallNow() const override { return std::chrono::system_clock::now(); }
  void SleepFor(Duration d) override {
    if (d > Duration::zero()) std::this_thread::sleep_for(d);
  }
  bool WaitUntil(std::unique_lock<std::mutex>& l, std::condition_variable& cv, MonoTime deadline,
                 const std::function<bool()>& pred) override {
    if (deadline == MonoTime::max()) {
      cv.wait(l, pred);
      return true;
    }
    return cv.wait_until(l, deadline, pred);
  }
};

inline std::shared_ptr<Clock> MakeRealClock() { return std::make_shared<RealClock>(); }

inline double ToSeconds(Duration d) { return std::chrono::duration<double>(d).count(); }

}  // namespace miglet
