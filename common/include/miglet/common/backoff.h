#pragma once

#include <functional>
#include <random>

#include "miglet/common/clock.h"

namespace miglet {

struct BackoffPolicy {
  Duration initial = std::chrono::seconds(5);
  Duration max = std::chrono::seconds(30);
  double multiplier = 1.6;
  double jitter = 0.2;  // each delay is scaled by a factor drawn uniformly from [1-j, 1+j]
  // A stream that stayed healthy this long resets the sequence to `initial`.
  Duration reset_after = std::chrono::seconds(30);
};

// Exponential backoff with jitter. Not thread-safe; owned by one reconnect loop.
class Backoff {
 public:
  // `uniform01` returns values in [0, 1); injected so tests can pin the jitter.
  explicit Backoff(BackoffPolicy policy, std::function<double()> uniform01 = {});

  // The delay before the next attempt; advances the sequence.
  Duration Next();
  // The un-jittered delay Next() will be based on.
  Duration CurrentBase() const { return current_; }
  void Reset();
  // Called when a stream ends after having been healthy for `healthy_for`: resets the
  // sequence when that was long enough, then returns the delay before reconnecting.
  Duration NextAfterStream(Duration healthy_for);
  int attempts() const { return attempts_; }
  const BackoffPolicy& policy() const { return policy_; }
  void set_policy(const BackoffPolicy& p);

 private:
  BackoffPolicy policy_;
  std::function<double()> uniform01_;
  Duration current_;
  int attempts_ = 0;
};

}  // namespace miglet
