#pragma once

#include <map>
#include <optional>
#include <string>

#include "miglet/common/clock.h"
#include "miglet/operator/agent_hub.h"
#include "miglet/operator/api/v1alpha1.h"

// The RunnerVM reconciler's decision, kept apart from I/O: the next command an agent should get,
// derived from the RunnerVM's desired state, its pool's agent settings and the hub's current
// view of the agent. Ids are deterministic (the object's uid, the generation that asked, the
// kind), so a restarted controller derives the same ids and the agent's dedup makes each
// command happen once.
namespace miglet::controllers {

struct VmCommand {
  enum class Kind { kNone, kRegister, kDrain, kShutdown, kSetLogLevel, kUpdateConfig };
  Kind kind = Kind::kNone;
  std::string id;
  bool force = false;  // shutdown: a job is cut short
  // A GitHub remove token goes with it: the shutdown of a persistent runner (config.sh remove),
  // or a persistent registration (a configuration the machine still holds is removed first).
  bool deregister = false;
  std::string level;                          // set_log_level
  std::map<std::string, std::string> config;  // update_config
  std::string why;                            // for the log and the Event
};

std::string_view VmCommandName(VmCommand::Kind k);  // the wire type: "register_runner", ...

// One command at a time (none while the agent has one unacked), most important first:
// - Shutdown: shut the agent down; a runner still in a job is drained first, and cut short
//   (force) only once the pool's drain timeout has passed since the drain began;
// - Drained: drain a runner that is registering, idle or busy;
// - Running: register a runner on a ready agent that has none (the reconciler fetches a fresh
//   JIT config for it), or on an external machine whose last runner is over. Each registration
//   has its own id (status.registrations + 1, persisted before the command goes out); after a
//   failed one the next waits 30 s;
// - then the pool's (or the VM's own) log level and heartbeat interval and the VM's config keys,
//   when they differ from what the agent has confirmed.
// Nothing for an agent that is not connected: commands need a live agent (a JIT config is not
// left waiting in a queue). Nothing either when the same command already failed (its id is the
// last command's, unsuccessful): the agent would only replay that answer; a spec change (a new
// generation) makes a new id.
VmCommand PlanVmCommand(const api::RunnerVM& vm, const api::RunnerPool& pool,
                        const std::optional<AgentInfo>& agent, WallTime now);

}  // namespace miglet::controllers
