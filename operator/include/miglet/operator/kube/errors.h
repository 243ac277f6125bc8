#pragma once

#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace miglet::kube {

// What the API server said when a request failed (its metav1.Status), carried as a payload
// on the absl::Status the client returns.
struct KubeError {
  int code = 0;        // HTTP status: 404, 409, 410, 422, 429, ...
  std::string reason;  // NotFound, AlreadyExists, Conflict, Expired, Gone, Invalid, ...
  std::string message;
  int retry_after_seconds = 0;  // from Retry-After / details.retryAfterSeconds
};

inline constexpr char kKubeErrorPayloadUrl[] = "type.miglet.dev/kube.KubeError";

// Maps an HTTP status and the response body (a metav1.Status, or anything) to a Status with
// the KubeError payload attached. `what` prefixes the message ("GET pods/x").
absl::Status StatusFromResponse(int http_status, const std::string& body,
                                const std::string& retry_after_header, const std::string& what);

std::optional<KubeError> GetKubeError(const absl::Status& s);

// Call these qualified (kube::IsNotFound): absl has IsNotFound/IsAlreadyExists too, and an
// unqualified call on an absl::Status is ambiguous through argument-dependent lookup.
bool IsNotFound(const absl::Status& s);
bool IsAlreadyExists(const absl::Status& s);
bool IsConflict(const absl::Status& s);  // 409 other than AlreadyExists
bool IsGone(const absl::Status& s);      // 410 (Expired/Gone): re-list
bool IsInvalid(const absl::Status& s);   // 422
bool IsTooManyRequests(const absl::Status& s);
// Retry-After of a 429 (or 0).
absl::Duration RetryAfter(const absl::Status& s);

}  // namespace miglet::kube
