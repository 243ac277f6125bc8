#include "vm_life.h"

namespace miglet::controllers {

VmLife DeriveLife(const api::RunnerVM& vm, const std::optional<AgentInfo>& agent,
                  const std::optional<PodView>& pod) {
  const bool seen_before = !vm.status.agent.last_seen.empty() || !vm.status.agent.version.empty();
  if (pod) {
    if (pod->phase == "Succeeded") return VmLife::kGone;
    if (pod->phase == "Failed") return VmLife::kLost;
    // Made before (its name is in the status) and now missing: it vanished.
    if (!pod->exists && !vm.status.pod_name.empty()) {
      return vm.spec.desired_state == api::DesiredState::kShutdown ? VmLife::kGone : VmLife::kLost;
    }
  }
  if (!agent || !agent->connected) {
    if (agent && agent->miglet_state == "shutting_down") return VmLife::kGone;
    // To be shut down, and no agent to tell (it went, or never came): nothing to wait for.
    if (vm.spec.desired_state == api::DesiredState::kShutdown) return VmLife::kGone;
    if (agent && agent->lost) return VmLife::kLost;
    // Lost, then forgotten by the hub (hub.forget_after): still lost until it comes back.
    if (!agent && seen_before && vm.status.phase == "Lost") return VmLife::kLost;
    // Seen before and now disconnected: not lost until the heartbeat timeout says so (the hub
    // marks it), so it is still where it was last seen.
    if (seen_before && agent) {
      const std::string& s = agent->miglet_state;
      if (s == "job_running") return VmLife::kBusy;
      if (s == "idle") return VmLife::kIdle;
    }
    return VmLife::kStarting;
  }
  if (agent->lost) return VmLife::kLost;
  const std::string& s = agent->miglet_state;
  const bool job = !agent->current_job.job_id().empty();
  if (s == "idle") return VmLife::kIdle;
  if (s == "job_running") return VmLife::kBusy;
  if (s == "draining") return job ? VmLife::kBusy : VmLife::kFinished;
  if (s == "shutting_down" || s == "error") return VmLife::kFinished;
  return VmLife::kStarting;  // initializing, connecting, ready, registering_runner
}

}  // namespace miglet::controllers
