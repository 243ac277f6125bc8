#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>

#include "miglet/common/clock.h"

namespace miglet {

// One thread that runs posted tasks and due timers, one at a time, in order: the owner of
// whatever state only its tasks touch. Any thread may post; tasks must not block for long
// (they run everything else behind them late), and must never wait for a thread that waits
// for the loop.
class EventLoop {
 public:
  EventLoop(std::string name, std::shared_ptr<Clock> clock);
  ~EventLoop();  // Stop()
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  // Runs `fn` on the loop after everything posted before it. False once stopped (`fn` is
  // dropped).
  bool Post(std::function<void()> fn);
  // Runs `fn` on the loop once `delay` of the clock's time has passed. Returns the timer's id
  // (never 0), or 0 once stopped.
  uint64_t PostAfter(Duration delay, std::function<void()> fn);
  // Forgets a timer that has not run yet; a no-op for 0, for a timer that ran, and twice.
  void Cancel(uint64_t timer);
  // Runs `fn` on the loop and returns its result to the calling thread, which must not be the
  // loop's own. Throws std::runtime_error when the loop stops before `fn` ran.
  template <class F>
  auto Call(F fn) -> std::invoke_result_t<F> {
    using R = std::invoke_result_t<F>;
    if (OnLoopThread()) throw std::logic_error("EventLoop::Call from the loop's own thread");
    auto p = std::make_shared<std::promise<R>>();
    auto f = p->get_future();
    const bool posted = Post([p, fn = std::move(fn)]() mutable {
      try {
        if constexpr (std::is_void_v<R>) {
          fn();
          p->set_value();
        } else {
          p->set_value(fn());
        }
      } catch (...) {
        p->set_exception(std::current_exception());
      }
    });
    if (!posted) throw std::runtime_error(name_ + " has stopped");
    try {
      return f.get();
    } catch (const std::future_error&) {  // dropped unrun by Stop
      throw std::runtime_error(name_ + " stopped before the call ran");
    }
  }
  bool OnLoopThread() const { return std::this_thread::get_id() == thread_.get_id(); }
  // Lets the running task finish, drops queued tasks and timers, and joins the thread. Later
  // posts are refused. Not from the loop's own thread.
  void Stop();

 private:
  void Run();

  const std::string name_;
  const std::shared_ptr<Clock> clock_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;
  std::map<std::pair<MonoTime, uint64_t>, std::function<void()>> timers_;
  std::map<uint64_t, MonoTime> timer_due_;
  uint64_t next_timer_ = 1;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace miglet
