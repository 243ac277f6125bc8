#include "pool_plan.h"

#include <algorithm>

namespace miglet::controllers {

namespace {

bool Serving(const VmView& v) {
  return !v.deleting && v.desired == api::DesiredState::kRunning &&
         (v.life == VmLife::kStarting || v.life == VmLife::kIdle || v.life == VmLife::kBusy);
}

// Scale-down order: the cheapest to give up first (no runner yet, then an idle one, then a busy
// one), the newest first within each.
int Cost(VmLife l) {
  switch (l) {
    case VmLife::kStarting:
      return 0;
    case VmLife::kIdle:
      return 1;
    default:
      return 2;
  }
}

// Both providers give up runners in this order.
void SortForScaleDown(std::vector<const VmView*>& vms) {
  std::stable_sort(vms.begin(), vms.end(), [](const VmView* a, const VmView* b) {
    if (Cost(a->life) != Cost(b->life)) return Cost(a->life) < Cost(b->life);
    if (a->created != b->created) return a->created > b->created;  // newest first
    return a->name > b->name;
  });
}

const char* LifeName(VmLife l) {
  switch (l) {
    case VmLife::kStarting:
      return "starting";
    case VmLife::kIdle:
      return "idle";
    case VmLife::kBusy:
      return "busy";
    case VmLife::kFinished:
      return "finished";
    case VmLife::kLost:
      return "lost";
    case VmLife::kGone:
      return "gone";
  }
  return "?";
}

}  // namespace

PoolPlan PlanPodPool(const api::RunnerPoolSpec& spec, const std::vector<VmView>& vms,
                     WallTime now) {
  PoolPlan plan;
  std::vector<const VmView*> serving;
  for (const VmView& v : vms) {
    if (v.deleting) continue;  // its finalizer is deregistering it; it counts for nothing
    if (v.life == VmLife::kGone) {
      plan.remove.push_back(v.name);
      plan.reasons.push_back("remove " + v.name + ": its machine has stopped");
      continue;
    }
    if (v.life == VmLife::kLost) {
      if (spec.replace_policy == api::ReplacePolicy::kReplace) {
        plan.remove.push_back(v.name);
        plan.reasons.push_back("replace " + v.name + ": its agent is lost");
      } else if (v.desired == api::DesiredState::kRunning) {
        serving.push_back(&v);  // kept: it holds its place until it comes back
      }
      continue;
    }
    if (v.life == VmLife::kFinished) {
      if (v.desired != api::DesiredState::kShutdown) {
        plan.shutdown.push_back(v.name);
        plan.reasons.push_back("shut down " + v.name + ": its runner has finished");
      }
      continue;
    }
    switch (v.desired) {
      case api::DesiredState::kRunning:
        serving.push_back(&v);
        break;
      case api::DesiredState::kDrained:
        if (v.life != VmLife::kBusy) {
          plan.shutdown.push_back(v.name);
          plan.reasons.push_back("shut down " + v.name + ": drained (" + LifeName(v.life) + ")");
        } else if (v.drain_started &&
                   now - *v.drain_started >= std::chrono::seconds(spec.drain_timeout_seconds)) {
          plan.shutdown.push_back(v.name);
          plan.reasons.push_back("shut down " + v.name + ": its job outlasted the drain timeout (" +
                                 std::to_string(spec.drain_timeout_seconds) + "s)");
        }
        break;
      case api::DesiredState::kShutdown:
        break;  // waiting for its agent to stop
    }
  }
  const int want = spec.replicas;
  const int have = static_cast<int>(serving.size());
  if (have < want) {
    plan.create = want - have;
    plan.reasons.push_back("scale up: " + std::to_string(have) + " serving, " +
                           std::to_string(want) + " wanted");
  } else if (have > want) {
    SortForScaleDown(serving);
    for (int i = 0; i < have - want; ++i) {
      plan.drain.push_back(serving[i]->name);
      plan.reasons.push_back("scale down: drain " + serving[i]->name + " (" +
                             LifeName(serving[i]->life) + ")");
    }
  }
  return plan;
}

PoolPlan PlanExternalPool(const api::RunnerPoolSpec& spec, const std::vector<VmView>& vms,
                          WallTime now) {
  PoolPlan plan;
  std::vector<const VmView*> serving;
  std::vector<const VmView*> spares;
  for (const VmView& v : vms) {
    if (v.deleting) continue;
    if (v.life == VmLife::kLost) {
      plan.remove.push_back(v.name);
      plan.reasons.push_back("remove " + v.name +
                             ": its agent is lost (adopted again if it returns)");
      continue;
    }
    if (v.life == VmLife::kGone) continue;  // shut down on purpose; it may be restarted
    switch (v.desired) {
      case api::DesiredState::kRunning:
        // A finished runner is replaced on the same machine: it still serves.
        serving.push_back(&v);
        break;
      case api::DesiredState::kDrained:
        if (v.life != VmLife::kBusy) {
          spares.push_back(&v);  // no job: a warm spare
        } else if (v.drain_started &&
                   now - *v.drain_started >= std::chrono::seconds(spec.drain_timeout_seconds)) {
          plan.shutdown.push_back(v.name);
          plan.reasons.push_back("shut down " + v.name + ": its job outlasted the drain timeout");
        }
        break;
      case api::DesiredState::kShutdown:
        break;
    }
  }
  const int want = spec.replicas;
  const int have = static_cast<int>(serving.size());
  if (have < want) {
    std::stable_sort(spares.begin(), spares.end(), [](const VmView* a, const VmView* b) {
      if (a->created != b->created) return a->created < b->created;  // oldest first
      return a->name < b->name;
    });
    for (int i = 0; i < want - have && i < static_cast<int>(spares.size()); ++i) {
      plan.activate.push_back(spares[i]->name);
      plan.reasons.push_back("scale up: activate spare " + spares[i]->name);
    }
  } else if (have > want) {
    SortForScaleDown(serving);
    for (int i = 0; i < have - want; ++i) {
      plan.drain.push_back(serving[i]->name);
      plan.reasons.push_back("scale down: drain " + serving[i]->name + " (" +
                             LifeName(serving[i]->life) + "); the machine stays as a spare");
    }
  }
  return plan;
}

PoolCounts CountPool(const std::vector<VmView>& vms) {
  PoolCounts c;
  for (const VmView& v : vms) {
    if (v.deleting) continue;
    ++c.replicas;
    if (!Serving(v)) continue;
    ++c.serving;
    if (v.life == VmLife::kIdle) {
      ++c.ready;
      ++c.idle;
    } else if (v.life == VmLife::kBusy) {
      ++c.ready;
      ++c.busy;
    }
  }
  return c;
}

}  // namespace miglet::controllers
