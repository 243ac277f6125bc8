#include "miglet/agent/runner_output.h"

namespace miglet {

namespace {

// Drops a leading "YYYY-MM-DD HH:MM:SSZ: " timestamp if there is one.
std::string_view StripTimestamp(std::string_view s) {
  // 2024-05-01 10:00:00Z: is 22 characters.
  if (s.size() >= 22 && s[4] == '-' && s[7] == '-' && s[10] == ' ' && s[13] == ':' &&
      s[16] == ':' && s[19] == 'Z' && s[20] == ':' && s[21] == ' ') {
    return s.substr(22);
  }
  return s;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.back() == '\r' || s.back() == '\n' || s.back() == ' ')) {
    s.remove_suffix(1);
  }
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  return s;
}

}  // namespace

RunnerLine ParseRunnerLine(std::string_view raw) {
  RunnerLine out;
  std::string_view line = Trim(raw);
  if (line.find("Connected to GitHub") != std::string_view::npos) {
    out.kind = RunnerLine::Kind::kConnected;
    return out;
  }
  constexpr std::string_view kVersion = "Current runner version: '";
  if (line.rfind(kVersion, 0) == 0 && line.back() == '\'') {
    out.kind = RunnerLine::Kind::kVersion;
    out.version = std::string(line.substr(kVersion.size(), line.size() - kVersion.size() - 1));
    return out;
  }
  std::string_view msg = StripTimestamp(line);
  if (msg == "Listening for Jobs") {
    out.kind = RunnerLine::Kind::kListening;
    return out;
  }
  constexpr std::string_view kRunning = "Running job: ";
  if (msg.rfind(kRunning, 0) == 0 && msg.size() > kRunning.size()) {
    out.kind = RunnerLine::Kind::kJobStarted;
    out.job_name = std::string(msg.substr(kRunning.size()));
    return out;
  }
  constexpr std::string_view kJob = "Job ";
  constexpr std::string_view kCompleted = " completed with result: ";
  if (msg.rfind(kJob, 0) == 0) {
    const auto pos = msg.rfind(kCompleted);
    if (pos != std::string_view::npos && pos > kJob.size()) {
      out.kind = RunnerLine::Kind::kJobCompleted;
      out.job_name = std::string(msg.substr(kJob.size(), pos - kJob.size()));
      out.result = std::string(msg.substr(pos + kCompleted.size()));
      return out;
    }
  }
  return out;
}

bool JobResultIsSuccess(std::string_view result) {
  return result == "Succeeded" || result == "SucceededWithIssues";
}

}  // namespace miglet
