#pragma once

#include "absl/status/status.h"
#include "absl/status/statusor.h"

// Propagate a non-OK absl::Status to the caller.
#define MIGLET_STATUS_CONCAT_INNER(a, b) a##b
#define MIGLET_STATUS_CONCAT(a, b) MIGLET_STATUS_CONCAT_INNER(a, b)

#define RETURN_IF_ERROR(expr)                        \
  do {                                               \
    ::absl::Status _miglet_status = (expr);          \
    if (!_miglet_status.ok()) return _miglet_status; \
  } while (0)

#define ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                          \
  if (!tmp.ok()) return tmp.status();         \
  lhs = std::move(*tmp)

#define ASSIGN_OR_RETURN(lhs, expr) \
  ASSIGN_OR_RETURN_IMPL(MIGLET_STATUS_CONCAT(_miglet_statusor_, __LINE__), lhs, expr)

#include <string_view>

#include <string>

#include "absl/strings/cord.h"

namespace miglet {

// The same status (code and payloads) with `prefix: ` put before its message.
inline absl::Status Annotate(const absl::Status& s, std::string_view prefix) {
  if (s.ok()) return s;
  absl::Status out(s.code(), std::string(prefix) + ": " + std::string(s.message()));
  s.ForEachPayload([&](absl::string_view url, const absl::Cord& p) { out.SetPayload(url, p); });
  return out;
}

}  // namespace miglet
