#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "miglet/operator/kube/kube_client.h"

namespace miglet::kube {

// One line of a watch response: {"type": "ADDED"|"MODIFIED"|"DELETED"|"BOOKMARK"|"ERROR",
// "object": {...}}. An ERROR event is returned as an event (its object is a metav1.Status);
// the caller turns it into a status with WatchErrorStatus.
absl::StatusOr<WatchEvent> ParseWatchLine(const std::string& line);

// The Status an ERROR event stands for (410 Expired → IsGone()).
absl::Status WatchErrorStatus(const WatchEvent& ev, const std::string& what);

}  // namespace miglet::kube
