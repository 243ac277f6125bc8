#include "miglet/common/backoff.h"

#include <algorithm>

namespace miglet {

namespace {
std::function<double()> DefaultUniform() {
  auto rng = std::make_shared<std::mt19937_64>(std::random_device{}());
  return [rng] { return std::uniform_real_distribution<double>(0.0, 1.0)(*rng); };
}
}  // namespace

Backoff::Backoff(BackoffPolicy policy, std::function<double()> uniform01)
    : policy_(policy),
      uniform01_(uniform01 ? std::move(uniform01) : DefaultUniform()),
      current_(policy.initial) {}

Duration Backoff::Next() {
  const Duration base = current_;
  const double factor = 1.0 + policy_.jitter * (2.0 * uniform01_() - 1.0);
  ++attempts_;
  const auto grown = std::chrono::duration_cast<Duration>(std::chrono::duration<double, std::nano>(
      static_cast<double>(current_.count()) * policy_.multiplier));
  current_ = std::min(grown, policy_.max);
  return std::chrono::duration_cast<Duration>(
      std::chrono::duration<double, std::nano>(static_cast<double>(base.count()) * factor));
}

void Backoff::Reset() {
  current_ = policy_.initial;
  attempts_ = 0;
}

Duration Backoff::NextAfterStream(Duration healthy_for) {
  if (healthy_for >= policy_.reset_after) Reset();
  return Next();
}

void Backoff::set_policy(const BackoffPolicy& p) {
  policy_ = p;
  current_ = std::clamp(current_, policy_.initial, policy_.max);
}

}  // namespace miglet
