#pragma once

#include <map>
#include <optional>
#include <string>

#include "miglet/operator/agent_hub.h"
#include "miglet/operator/api/v1alpha1.h"
#include "pool_plan.h"

// A RunnerVM's status from what the controller knows now (a pure function, unit-tested). The
// reconciler writes it only when it differs from the stored one, so heartbeats alone never
// become API writes: last-seen and health move only along with another change, or once
// `refresh` has passed since the last write of them.
namespace miglet::controllers {

// How the newest command the controller sent this agent ended.
struct CommandOutcome {
  std::string id;
  std::string type;
  bool success = false;
  std::string message;
  std::string level;                          // set_log_level's, when it succeeded
  std::map<std::string, std::string> config;  // update_config's, when it succeeded
};

// A runner's id, learnt from GitHub after the registration count and the runner's name were
// written: it rides along with the RunnerVM's next status write.
struct LearntRunner {
  int64_t registration = 0;  // the status.registrations it belongs to
  std::string name;
  int64_t id = 0;
};

struct VmStatusInputs {
  const api::RunnerVM* vm = nullptr;
  const AgentInfo* agent = nullptr;  // the hub's current view; null when it has none
  const CommandOutcome* outcome = nullptr;
  const LearntRunner* learnt_runner = nullptr;
  VmLife life = VmLife::kStarting;
  std::string pod_name;  // the Pod made for it (pod provider), or ""
  WallTime now{};
  Duration refresh = std::chrono::minutes(20);
};

api::RunnerVMStatus DeriveVmStatus(const VmStatusInputs& in);

// The phase shown in `kubectl get rvm`: the agent's state in CamelCase, Pending before any agent,
// Lost for a lost one, Deleting while the finalizer works.
std::string PhaseOf(const api::RunnerVM& vm, const AgentInfo* agent, VmLife life);

}  // namespace miglet::controllers
