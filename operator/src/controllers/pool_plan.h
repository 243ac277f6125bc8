#pragma once

#include <optional>
#include <string>
#include <vector>

#include "miglet/common/clock.h"
#include "miglet/operator/api/v1alpha1.h"

// The pool reconciler's decision, kept apart from I/O: from the pool's spec and what is known of
// each of its RunnerVMs (the object, its agent, its pod) to the changes that converge them.
// Level-triggered: the same inputs always give the same plan, and applying a plan and planning
// again gives an empty one once the world has caught up.
namespace miglet::controllers {

// Where one RunnerVM is in its life, distilled by the reconciler from the object's status, the
// hub's view of its agent and (pod provider) its Pod.
enum class VmLife {
  kStarting,  // no agent yet, or an agent without a runner (ready, registering)
  kIdle,      // a registered runner listening for a job
  kBusy,      // a runner running a job
  kFinished,  // its runner is done for good: an ephemeral runner after its job, a crashed one
  kLost,      // the agent went silent, or its Pod failed or vanished
  kGone,      // the agent has shut down and its machine stopped: the object can go
};

struct VmView {
  std::string name;
  WallTime created{};
  api::DesiredState desired = api::DesiredState::kRunning;
  bool deleting = false;  // deletionTimestamp set: the finalizer is at work
  VmLife life = VmLife::kStarting;
  // When the drain began (the Draining condition's transition), for the drain timeout.
  std::optional<WallTime> drain_started;
};

struct PoolPlan {
  int create = 0;                     // new RunnerVMs to make (pod provider)
  std::vector<std::string> drain;     // spec.desiredState -> Drained
  std::vector<std::string> shutdown;  // spec.desiredState -> Shutdown
  std::vector<std::string> remove;    // delete the RunnerVM object
  std::vector<std::string> activate;  // external: spec.desiredState -> Running (a spare)
  // Why, for the reconciler's log and the pool's Events ("scale down: drain ci-x (idle)").
  std::vector<std::string> reasons;

  bool empty() const { return create == 0 && drain.empty() && shutdown.empty() && remove.empty(); }
};

// Counts for the pool's status.
struct PoolCounts {
  int32_t replicas = 0;  // RunnerVMs that exist and are not being deleted
  int32_t serving = 0;   // desired Running and not finished, lost or gone
  int32_t ready = 0;     // idle or busy runners among the serving
  int32_t idle = 0;
  int32_t busy = 0;
};

// The pod provider's plan:
// - a gone VM is removed; a lost one is removed too (the finalizer deregisters its runner) when
//   the pool replaces lost machines, and otherwise (Keep) holds its place;
// - a finished VM (an ephemeral runner after its job) is shut down: it no longer serves;
// - a drained VM is shut down once its runner is not busy, or when the drain timeout has run
//   out since the drain began; a busy runner is never shut down before that;
// - serving VMs (desired Running, starting/idle/busy) are kept at `replicas`: the shortfall is
//   created; a surplus is drained, starting ones first, then idle ones, then busy ones, the
//   newest first within each.
PoolPlan PlanPodPool(const api::RunnerPoolSpec& spec, const std::vector<VmView>& vms, WallTime now);

// The external provider's plan. Its machines are made elsewhere and adopted when their agents
// connect, so nothing is created; `replicas` of them carry a registered runner and the rest
// wait as warm spares (desired Drained, no runner):
// - serving below `replicas`: spares are activated (desired -> Running), the oldest first;
// - serving above: the surplus is drained as for pods (starting, idle, busy; newest first); a
//   drained machine keeps running as a spare once its job is over, only its runner goes;
// - a lost machine's RunnerVM is removed (its runner deregistered); it is adopted again if its
//   agent comes back. A finished runner on a serving machine is replaced on the same machine
//   (the RunnerVM reconciler registers a new one), so it is neither shut down nor removed.
PoolPlan PlanExternalPool(const api::RunnerPoolSpec& spec, const std::vector<VmView>& vms,
                          WallTime now);

PoolCounts CountPool(const std::vector<VmView>& vms);

}  // namespace miglet::controllers
