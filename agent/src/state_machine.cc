#include "miglet/agent/state_machine.h"

namespace miglet {

std::string_view AgentStateName(AgentState s) {
  switch (s) {
    case AgentState::kInitializing:
      return "initializing";
    case AgentState::kConnecting:
      return "connecting";
    case AgentState::kReady:
      return "ready";
    case AgentState::kRegisteringRunner:
      return "registering_runner";
    case AgentState::kIdle:
      return "idle";
    case AgentState::kJobRunning:
      return "job_running";
    case AgentState::kDraining:
      return "draining";
    case AgentState::kShuttingDown:
      return "shutting_down";
    case AgentState::kError:
      return "error";
  }
  return "unknown";
}

bool IsLegalTransition(AgentState from, AgentState to) {
  using S = AgentState;
  if (from == to) return false;
  if (to == S::kError) return true;
  if (to == S::kDraining) return from != S::kShuttingDown;
  switch (from) {
    case S::kInitializing:
      return to == S::kConnecting;
    case S::kConnecting:
      return to == S::kReady;
    case S::kReady:
      return to == S::kRegisteringRunner;
    case S::kRegisteringRunner:
      return to == S::kIdle || to == S::kReady;
    case S::kIdle:
      return to == S::kJobRunning;
    case S::kJobRunning:
      return to == S::kIdle;
    case S::kDraining:
      // ready: the drained runner has stopped and the controller registers a new one on the
      // same machine (an external machine after an ephemeral job, a warm spare activated).
      return to == S::kShuttingDown || to == S::kReady;
    case S::kShuttingDown:
      return false;
    case S::kError:
      return to == S::kReady;  // the crashed runner is gone; a new one may be registered
  }
  return false;
}

AgentState StateMachine::state() const {
  std::lock_guard l(mu_);
  return state_;
}

absl::Status StateMachine::Transition(AgentState to, const std::string& why) {
  AgentState from;
  std::vector<Listener> listeners;
  {
    std::lock_guard l(mu_);
    from = state_;
    if (!IsLegalTransition(from, to)) {
      return absl::FailedPreconditionError("illegal state transition " +
                                           std::string(AgentStateName(from)) + " -> " +
                                           std::string(AgentStateName(to)) + " (" + why + ")");
    }
    state_ = to;
    listeners = listeners_;
  }
  for (const auto& l : listeners) l(from, to, why);
  return absl::OkStatus();
}

void StateMachine::OnChange(Listener l) {
  std::lock_guard lk(mu_);
  listeners_.push_back(std::move(l));
}

}  // namespace miglet
