#pragma once

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "miglet/common/clock.h"
#include "miglet/operator/kube/kube_client.h"

namespace miglet::kube {

// core/v1 Events about an object. A repeat of the same (object, type, reason, message) within
// the aggregation window bumps count and lastTimestamp of the existing Event (a merge patch)
// instead of creating another one, like client-go's EventCorrelator.
class EventRecorder {
 public:
  virtual ~EventRecorder() = default;
  // `object` is the involved object (apiVersion, kind, metadata.{name,namespace,uid,
  // resourceVersion} are used). `type` is "Normal" or "Warning".
  virtual absl::Status Record(const Json& object, const std::string& type,
                              const std::string& reason, const std::string& message) = 0;
};

std::unique_ptr<EventRecorder> MakeEventRecorder(std::shared_ptr<KubeClient> client,
                                                 std::string component, std::string host,
                                                 std::shared_ptr<Clock> clock);

// RFC 3339 with seconds ("2026-11-27T01:02:03Z") and with microseconds (MicroTime).
std::string FormatTime(WallTime t);
std::string FormatMicroTime(WallTime t);

}  // namespace miglet::kube
