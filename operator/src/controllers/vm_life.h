#pragma once

#include <optional>
#include <string>

#include "miglet/operator/agent_hub.h"
#include "miglet/operator/api/v1alpha1.h"
#include "pool_plan.h"

namespace miglet::controllers {

// What the reconciler knows of a RunnerVM's Pod (pod provider).
struct PodView {
  bool exists = false;
  std::string phase;  // Pending, Running, Succeeded, Failed, Unknown
  bool deleting = false;
};

// Where a RunnerVM is in its life, from the hub's current view of its agent (never a change
// hook's snapshot: those can arrive out of order) and, for the pod provider, its Pod:
// - a Pod that failed, or vanished after it was made, is lost; one that succeeded is gone (the
//   agent exits 0 after shutdown);
// - an agent the hub marks lost is lost; one that disconnected after shutting down, or whose
//   VM is to shut down and was seen before, is gone;
// - connected: initializing/connecting/ready/registering_runner -> starting, idle -> idle,
//   job_running -> busy, draining with a job -> busy, draining without one, shutting_down and
//   error -> finished.
// `pod` is nullopt for the external provider.
VmLife DeriveLife(const api::RunnerVM& vm, const std::optional<AgentInfo>& agent,
                  const std::optional<PodView>& pod);

}  // namespace miglet::controllers
