#include "miglet/agent/event_loop.h"

namespace miglet {

EventLoop::EventLoop(std::string name, std::shared_ptr<Clock> clock)
    : name_(std::move(name)), clock_(std::move(clock)) {
  thread_ = std::thread([this] { Run(); });
}

EventLoop::~EventLoop() { Stop(); }

// Posts notify with the lock held: Stop (and so the destructor) takes the lock, so a thread
// still inside Post cannot find the condition variable destroyed under it (found by TSan: a
// SIGTERM handled while the agent was being destroyed).
bool EventLoop::Post(std::function<void()> fn) {
  std::lock_guard l(mu_);
  if (stopping_) return false;
  tasks_.push_back(std::move(fn));
  cv_.notify_one();
  return true;
}

uint64_t EventLoop::PostAfter(Duration delay, std::function<void()> fn) {
  uint64_t id;
  {
    std::lock_guard l(mu_);
    if (stopping_) return 0;
    id = next_timer_++;
    const MonoTime due = clock_->Now() + std::max(delay, Duration::zero());
    timers_.emplace(std::make_pair(due, id), std::move(fn));
    timer_due_[id] = due;
    cv_.notify_one();  // it may be due before the one the loop waits for
  }
  return id;
}

void EventLoop::Cancel(uint64_t timer) {
  std::lock_guard l(mu_);
  auto it = timer_due_.find(timer);
  if (it == timer_due_.end()) return;
  timers_.erase({it->second, timer});
  timer_due_.erase(it);
}

void EventLoop::Stop() {
  {
    std::lock_guard l(mu_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable() && !OnLoopThread()) thread_.join();
  std::lock_guard l(mu_);
  tasks_.clear();  // destroyed here, not on the loop: a Call waiting on one is told
  timers_.clear();
  timer_due_.clear();
}

void EventLoop::Run() {
  for (;;) {
    std::function<void()> fn;
    {
      std::unique_lock l(mu_);
      for (;;) {
        if (stopping_) return;
        // A timer that is due runs before the tasks queued behind it: what became due first,
        // and what a test that has moved a fake clock observes with its next posted task.
        if (!timers_.empty() && timers_.begin()->first.first <= clock_->Now()) {
          auto first = timers_.begin();
          fn = std::move(first->second);
          timer_due_.erase(first->first.second);
          timers_.erase(first);
          break;
        }
        if (!tasks_.empty()) {
          fn = std::move(tasks_.front());
          tasks_.pop_front();
          break;
        }
        if (timers_.empty()) {
          cv_.wait(l);
          continue;
        }
        const auto due = timers_.begin()->first;
        clock_->WaitUntil(l, cv_, due.first, [this, due] {
          return stopping_ || !tasks_.empty() || timers_.empty() || timers_.begin()->first < due;
        });
      }
    }
    fn();
  }
}

}  // namespace miglet
