#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>

namespace miglet::testing {

// Waits on a condition that hooks signal, instead of sleeping. Every hook that changes state
// the test looks at calls Notify().
class Signal {
 public:
  void Notify() {
    {
      std::lock_guard l(mu_);
      ++generation_;
    }
    cv_.notify_all();
  }
  // True once pred() holds; false after `timeout` (a generous bound, never a timing claim).
  // Re-checks at least every 50 ms so conditions outside the hooks' view are seen too.
  bool Await(const std::function<bool()>& pred,
             std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    std::unique_lock l(mu_);
    while (true) {
      l.unlock();
      if (pred()) return true;
      l.lock();
      if (std::chrono::steady_clock::now() >= deadline) return false;
      cv_.wait_for(l, std::chrono::milliseconds(50));
    }
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  uint64_t generation_ = 0;
};

}  // namespace miglet::testing
