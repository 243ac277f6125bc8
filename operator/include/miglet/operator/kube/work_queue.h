#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "miglet/common/clock.h"

namespace miglet::kube {

// When to retry an item (client-go's workqueue.RateLimiter).
class RateLimiter {
 public:
  virtual ~RateLimiter() = default;
  // The delay before `key` may be processed again; counts as a requeue.
  virtual Duration When(const std::string& key) = 0;
  // `key` succeeded: its failure history is dropped.
  virtual void Forget(const std::string& key) = 0;
  virtual int NumRequeues(const std::string& key) = 0;
};

// Per item: base * 2^failures, capped (5 ms .. 1000 s for controllers).
std::unique_ptr<RateLimiter> MakeItemExponentialRateLimiter(Duration base, Duration max);
// Overall: a token bucket of `qps` with `burst` tokens (10 qps / 100 for controllers).
std::unique_ptr<RateLimiter> MakeBucketRateLimiter(double qps, int burst,
                                                   std::shared_ptr<Clock> clock);
// max(per-item exponential 5 ms..1000 s, bucket 10 qps / burst 100) — client-go's
// DefaultControllerRateLimiter.
std::unique_ptr<RateLimiter> MakeDefaultControllerRateLimiter(std::shared_ptr<Clock> clock);

// A de-duplicating, rate-limited queue of keys (client-go's workqueue semantics):
// - a key queued twice before it is taken is processed once;
// - a key is never handed to two workers at once: re-added while processing, it is queued
//   again when Done() is called;
// - AddAfter / AddRateLimited hold a key until the clock reaches its time.
class WorkQueue {
 public:
  virtual ~WorkQueue() = default;
  virtual void Add(const std::string& key) = 0;
  virtual void AddAfter(const std::string& key, Duration delay) = 0;
  virtual void AddRateLimited(const std::string& key) = 0;
  virtual void Forget(const std::string& key) = 0;
  virtual int NumRequeues(const std::string& key) = 0;
  // Blocks until a key is ready or the queue shuts down (nullopt).
  virtual std::optional<std::string> Get() = 0;
  // Does not block: a ready key (delayed keys whose time has come included) or nullopt.
  virtual std::optional<std::string> TryGet() = 0;
  virtual void Done(const std::string& key) = 0;
  virtual void ShutDown() = 0;
  virtual bool ShuttingDown() const = 0;
  virtual size_t Len() const = 0;         // ready keys
  virtual size_t WaitingLen() const = 0;  // keys held by AddAfter
};

std::unique_ptr<WorkQueue> MakeWorkQueue(std::shared_ptr<Clock> clock,
                                         std::unique_ptr<RateLimiter> limiter);

// Runs `reconcile` for each key on `workers` threads until the queue shuts down. An error
// requeues the key rate-limited; success Forgets it. Join with the returned object's reset.
class WorkerPool {
 public:
  virtual ~WorkerPool() = default;  // shuts the queue down and joins
};
struct ReconcileResult {
  bool ok = true;
  Duration requeue_after{0};  // > 0: process again after this delay
};
std::unique_ptr<WorkerPool> RunWorkers(
    WorkQueue& queue, int workers, std::function<ReconcileResult(const std::string&)> reconcile);

}  // namespace miglet::kube
