#pragma once

#include <mutex>

#include "miglet/common/clock.h"

namespace miglet {

// A clock that only moves when told to. Used by tests; thread-safe.
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
    std::lock_guard l(mu_);
    mono_ += d;
    wall_ += std::chrono::duration_cast<WallTime::duration>(d);
  }

 private:
  mutable std::mutex mu_;
  MonoTime mono_;
  WallTime wall_;
};

}  // namespace miglet
