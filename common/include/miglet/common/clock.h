#pragma once

#include <chrono>
#include <memory>
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
};

inline std::shared_ptr<Clock> MakeRealClock() { return std::make_shared<RealClock>(); }

inline double ToSeconds(Duration d) { return std::chrono::duration<double>(d).count(); }

}  // namespace miglet
