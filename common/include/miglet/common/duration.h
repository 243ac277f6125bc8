#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "miglet/common/clock.h"

namespace miglet {

// "15s", "500ms", "1m30s", "2h"; a bare number means seconds.
absl::StatusOr<Duration> ParseDuration(std::string_view s);
std::string FormatDuration(Duration d);

}  // namespace miglet
