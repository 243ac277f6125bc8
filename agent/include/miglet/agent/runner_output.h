#pragma once

#include <string>
#include <string_view>

namespace miglet {

// One line of the GitHub Actions runner's console output, as far as the agent cares. The
// runner (actions/runner, Runner.Listener) prints, among other things:
//   √ Connected to GitHub
//   Current runner version: '2.321.0'
//   2024-05-01 10:00:00Z: Listening for Jobs
//   2024-05-01 10:01:02Z: Running job: build (ubuntu)
//   2024-05-01 10:03:04Z: Job build (ubuntu) completed with result: Succeeded
// Results are the runner's TaskResult names: Succeeded, SucceededWithIssues, Failed,
// Canceled, Skipped, Abandoned.
struct RunnerLine {
  enum class Kind { kOther, kConnected, kVersion, kListening, kJobStarted, kJobCompleted };
  Kind kind = Kind::kOther;
  std::string job_name;  // kJobStarted, kJobCompleted
  std::string result;    // kJobCompleted
  std::string version;   // kVersion
};

RunnerLine ParseRunnerLine(std::string_view line);

// Whether a job result counts as success for job_completed's `success`.
bool JobResultIsSuccess(std::string_view result);

}  // namespace miglet
