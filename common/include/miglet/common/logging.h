#pragma once

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "spdlog/spdlog.h"

namespace miglet {

enum class LogFormat { kText, kJson };

absl::StatusOr<LogFormat> ParseLogFormat(std::string_view s);
// trace, debug, info, warn, error (also "warning", "critical", "off").
absl::StatusOr<spdlog::level::level_enum> ParseLogLevel(std::string_view s);

// Sets up the default logger on stderr. JSON lines are one object per line with ts, level,
// logger and msg (message escaped).
void InitLogging(std::string_view name, LogFormat format, spdlog::level::level_enum level);
absl::Status SetLogLevel(std::string_view level);
// Switches the default logger between text and JSON lines at run time.
void SetLogFormat(LogFormat format);

}  // namespace miglet
