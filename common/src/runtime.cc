#include "miglet/common/runtime.h"

#include "absl/synchronization/mutex.h"

namespace miglet {

void TuneRuntimeForServing() {
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
}

}  // namespace miglet
