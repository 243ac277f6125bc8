#include "miglet/operator/kube/work_queue.h"

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace miglet::kube {

namespace {

class ItemExponentialRateLimiter final : public RateLimiter {
 public:
  ItemExponentialRateLimiter(Duration base, Duration max) : base_(base), max_(max) {}
  Duration When(const std::string& key) override {
    std::lock_guard l(mu_);
    const int exp = failures_[key]++;
    // base * 2^exp, without overflowing for large exp.
    const double d = static_cast<double>(base_.count()) * std::pow(2.0, std::min(exp, 62));
    if (d >= static_cast<double>(max_.count())) return max_;
    return Duration(static_cast<Duration::rep>(d));
  }
  void Forget(const std::string& key) override {
    std::lock_guard l(mu_);
    failures_.erase(key);
  }
  int NumRequeues(const std::string& key) override {
    std::lock_guard l(mu_);
    auto it = failures_.find(key);
    return it == failures_.end() ? 0 : it->second;
  }

 private:
  Duration base_, max_;
  std::mutex mu_;
  std::unordered_map<std::string, int> failures_;
};

// golang.org/x/time/rate semantics: each When() reserves a token; tokens refill at qps up to
// burst; a reservation taken while the bucket is empty waits for its token.
class BucketRateLimiter final : public RateLimiter {
 public:
  BucketRateLimiter(double qps, int burst, std::shared_ptr<Clock> clock)
      : qps_(qps), burst_(burst), clock_(std::move(clock)), tokens_(burst), last_(clock_->Now()) {}
  Duration When(const std::string&) override {
    std::lock_guard l(mu_);
    const MonoTime now = clock_->Now();
    if (now > last_) {
      tokens_ = std::min<double>(burst_, tokens_ + ToSeconds(now - last_) * qps_);
      last_ = now;
    }
    tokens_ -= 1.0;
    if (tokens_ >= 0) return Duration(0);
    return std::chrono::duration_cast<Duration>(std::chrono::duration<double>(-tokens_ / qps_));
  }
  void Forget(const std::string&) override {}
  int NumRequeues(const std::string&) override { return 0; }

 private:
  double qps_;
  int burst_;
  std::shared_ptr<Clock> clock_;
  std::mutex mu_;
  double tokens_;
  MonoTime last_;
};

class MaxOfRateLimiter final : public RateLimiter {
 public:
  explicit MaxOfRateLimiter(std::vector<std::unique_ptr<RateLimiter>> limiters)
      : limiters_(std::move(limiters)) {}
  Duration When(const std::string& key) override {
    Duration d(0);
    for (auto& l : limiters_) d = std::max(d, l->When(key));
    return d;
  }
  void Forget(const std::string& key) override {
    for (auto& l : limiters_) l->Forget(key);
  }
  int NumRequeues(const std::string& key) override {
    int n = 0;
    for (auto& l : limiters_) n = std::max(n, l->NumRequeues(key));
    return n;
  }

 private:
  std::vector<std::unique_ptr<RateLimiter>> limiters_;
};

class WorkQueueImpl final : public WorkQueue {
 public:
  WorkQueueImpl(std::shared_ptr<Clock> clock, std::unique_ptr<RateLimiter> limiter)
      : clock_(std::move(clock)), limiter_(std::move(limiter)) {}
  ~WorkQueueImpl() override { ShutDown(); }

  void Add(const std::string& key) override {
    std::lock_guard l(mu_);
    AddLocked(key);
  }

  void AddAfter(const std::string& key, Duration delay) override {
    std::lock_guard l(mu_);
    if (shutting_down_) return;
    if (delay <= Duration(0)) {
      AddLocked(key);
      return;
    }
    const MonoTime at = clock_->Now() + delay;
    // A key already waiting keeps the earlier of its two times.
    auto it = waiting_at_.find(key);
    if (it != waiting_at_.end()) {
      if (it->second <= at) return;
      waiting_.erase({it->second, key});
    }
    waiting_at_[key] = at;
    waiting_.insert({at, key});
    cv_.notify_all();
  }

  void AddRateLimited(const std::string& key) override { AddAfter(key, limiter_->When(key)); }
  void Forget(const std::string& key) override { limiter_->Forget(key); }
  int NumRequeues(const std::string& key) override { return limiter_->NumRequeues(key); }

  std::optional<std::string> Get() override {
    std::unique_lock l(mu_);
    while (true) {
      PromoteDueLocked();
      if (!queue_.empty()) return PopLocked();
      if (shutting_down_) return std::nullopt;
      // Add, AddAfter, Done and ShutDown notify; the clock wakes us when the first delayed key
      // is due (a fake clock when a test moves it there).
      const MonoTime due = waiting_.empty() ? MonoTime::max() : waiting_.begin()->first;
      clock_->WaitUntil(l, cv_, due, [&] {
        return !queue_.empty() || shutting_down_ ||
               (!waiting_.empty() && waiting_.begin()->first < due);
      });
    }
  }

  std::optional<std::string> TryGet() override {
    std::lock_guard l(mu_);
    PromoteDueLocked();
    if (queue_.empty()) return std::nullopt;
    return PopLocked();
  }

  void Done(const std::string& key) override {
    std::lock_guard l(mu_);
    processing_.erase(key);
    if (dirty_.count(key)) {
      queue_.push_back(key);
      cv_.notify_one();
    }
  }

  void ShutDown() override {
    std::lock_guard l(mu_);
    shutting_down_ = true;
    cv_.notify_all();
  }
  bool ShuttingDown() const override {
    std::lock_guard l(mu_);
    return shutting_down_;
  }
  size_t Len() const override {
    std::lock_guard l(mu_);
    return queue_.size();
  }
  size_t WaitingLen() const override {
    std::lock_guard l(mu_);
    return waiting_.size();
  }

 private:
  void AddLocked(const std::string& key) {
    if (shutting_down_) return;
    if (dirty_.count(key)) return;  // already queued: de-duplicated
    dirty_.insert(key);
    if (processing_.count(key)) return;  // queued again by Done()
    queue_.push_back(key);
    cv_.notify_one();
  }

  void PromoteDueLocked() {
    const MonoTime now = clock_->Now();
    while (!waiting_.empty() && waiting_.begin()->first <= now) {
      const std::string key = waiting_.begin()->second;
      waiting_.erase(waiting_.begin());
      waiting_at_.erase(key);
      AddLocked(key);
    }
  }

  std::string PopLocked() {
    std::string key = std::move(queue_.front());
    queue_.pop_front();
    processing_.insert(key);
    dirty_.erase(key);
    return key;
  }

  std::shared_ptr<Clock> clock_;
  std::unique_ptr<RateLimiter> limiter_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::string> queue_;
  std::unordered_set<std::string> dirty_;       // queued or to be queued after Done()
  std::unordered_set<std::string> processing_;  // handed to a worker, not Done() yet
  std::set<std::pair<MonoTime, std::string>> waiting_;
  std::unordered_map<std::string, MonoTime> waiting_at_;
  bool shutting_down_ = false;
};

class WorkerPoolImpl final : public WorkerPool {
 public:
  WorkerPoolImpl(WorkQueue& q, int n, std::function<ReconcileResult(const std::string&)> fn)
      : queue_(q), fn_(std::move(fn)) {
    for (int i = 0; i < n; ++i) threads_.emplace_back([this] { Loop(); });
  }
  ~WorkerPoolImpl() override {
    queue_.ShutDown();
    for (auto& t : threads_) t.join();
  }

 private:
  void Loop() {
    while (auto key = queue_.Get()) {
      ReconcileResult r = fn_(*key);
      if (!r.ok) {
        queue_.AddRateLimited(*key);
      } else {
        queue_.Forget(*key);
        if (r.requeue_after > Duration(0)) queue_.AddAfter(*key, r.requeue_after);
      }
      queue_.Done(*key);
    }
  }

  WorkQueue& queue_;
  std::function<ReconcileResult(const std::string&)> fn_;
  std::vector<std::thread> threads_;
};

}  // namespace

std::unique_ptr<RateLimiter> MakeItemExponentialRateLimiter(Duration base, Duration max) {
  return std::make_unique<ItemExponentialRateLimiter>(base, max);
}
std::unique_ptr<RateLimiter> MakeBucketRateLimiter(double qps, int burst,
                                                   std::shared_ptr<Clock> clock) {
  return std::make_unique<BucketRateLimiter>(qps, burst, std::move(clock));
}
std::unique_ptr<RateLimiter> MakeDefaultControllerRateLimiter(std::shared_ptr<Clock> clock) {
  std::vector<std::unique_ptr<RateLimiter>> v;
  v.push_back(
      MakeItemExponentialRateLimiter(std::chrono::milliseconds(5), std::chrono::seconds(1000)));
  v.push_back(MakeBucketRateLimiter(10, 100, std::move(clock)));
  return std::make_unique<MaxOfRateLimiter>(std::move(v));
}

std::unique_ptr<WorkQueue> MakeWorkQueue(std::shared_ptr<Clock> clock,
                                         std::unique_ptr<RateLimiter> limiter) {
  return std::make_unique<WorkQueueImpl>(std::move(clock), std::move(limiter));
}

std::unique_ptr<WorkerPool> RunWorkers(
    WorkQueue& queue, int workers, std::function<ReconcileResult(const std::string&)> reconcile) {
  return std::make_unique<WorkerPoolImpl>(queue, workers, std::move(reconcile));
}

}  // namespace miglet::kube
