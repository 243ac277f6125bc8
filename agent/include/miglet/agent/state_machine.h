#pragma once

#include <functional>
#include <mutex>
#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace miglet {

// The agent's nine states (wire contract: Heartbeat.miglet_state).
enum class AgentState {
  kInitializing,
  kConnecting,
  kReady,
  kRegisteringRunner,
  kIdle,
  kJobRunning,
  kDraining,
  kShuttingDown,
  kError,
};

inline constexpr AgentState kAllAgentStates[] = {
    AgentState::kInitializing,      AgentState::kConnecting,   AgentState::kReady,
    AgentState::kRegisteringRunner, AgentState::kIdle,         AgentState::kJobRunning,
    AgentState::kDraining,          AgentState::kShuttingDown, AgentState::kError};

std::string_view AgentStateName(AgentState s);

// Every legal transition, in one place:
//   initializing -> connecting -> ready -> registering_runner -> idle <-> job_running
//   registering_runner -> ready          (registration failed; the controller may retry)
//   any but shutting_down -> draining    (drain, SIGTERM, shutdown)
//   draining -> shutting_down            (the job is done, or there was none)
//   any -> error                         (unrecoverable, e.g. the runner crashed)
bool IsLegalTransition(AgentState from, AgentState to);

// Thread-safe holder of the current state. An illegal transition is refused (and returned as
// FAILED_PRECONDITION for the caller to log), never silently applied.
class StateMachine {
 public:
  using Listener = std::function<void(AgentState from, AgentState to, const std::string& why)>;

  explicit StateMachine(AgentState initial = AgentState::kInitializing) : state_(initial) {}

  AgentState state() const;
  absl::Status Transition(AgentState to, const std::string& why);
  // Listeners run after the change, outside the lock, in registration order.
  void OnChange(Listener l);

 private:
  mutable std::mutex mu_;
  AgentState state_;
  std::vector<Listener> listeners_;
};

}  // namespace miglet
