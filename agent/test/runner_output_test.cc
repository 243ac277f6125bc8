#include "miglet/agent/runner_output.h"

#include <gtest/gtest.h>

namespace miglet {
namespace {

using K = RunnerLine::Kind;

// Lines as the GitHub Actions runner (actions/runner, Runner.Listener) prints them.
TEST(RunnerOutputTest, ParsesTheRunnersLines) {
  EXPECT_EQ(ParseRunnerLine("√ Connected to GitHub").kind, K::kConnected);
  auto v = ParseRunnerLine("Current runner version: '2.321.0'");
  EXPECT_EQ(v.kind, K::kVersion);
  EXPECT_EQ(v.version, "2.321.0");
  EXPECT_EQ(ParseRunnerLine("2024-05-01 10:00:00Z: Listening for Jobs").kind, K::kListening);
  auto started = ParseRunnerLine("2024-05-01 10:01:02Z: Running job: build (ubuntu-latest, 3.12)");
  EXPECT_EQ(started.kind, K::kJobStarted);
  EXPECT_EQ(started.job_name, "build (ubuntu-latest, 3.12)");
  auto done = ParseRunnerLine(
      "2024-05-01 10:03:04Z: Job build (ubuntu-latest, 3.12) completed with result: Failed\r\n");
  EXPECT_EQ(done.kind, K::kJobCompleted);
  EXPECT_EQ(done.job_name, "build (ubuntu-latest, 3.12)");
  EXPECT_EQ(done.result, "Failed");
}

TEST(RunnerOutputTest, JobNamesMayContainTheMarkerWords) {
  auto done = ParseRunnerLine(
      "2024-05-01 10:03:04Z: Job Job completed with result: x completed with result: Succeeded");
  EXPECT_EQ(done.kind, K::kJobCompleted);
  EXPECT_EQ(done.job_name, "Job completed with result: x");
  EXPECT_EQ(done.result, "Succeeded");
}

TEST(RunnerOutputTest, OtherLinesAreIgnored) {
  for (const char* line :
       {"", "--------------------------------------------------------------------------------",
        "# Runner Registration", "√ Runner successfully added",
        "Running job:", "2024-05-01 10:00:00Z: Listening for Jobs later", "Exiting..."}) {
    EXPECT_EQ(ParseRunnerLine(line).kind, K::kOther) << line;
  }
}

TEST(RunnerOutputTest, SuccessResults) {
  EXPECT_TRUE(JobResultIsSuccess("Succeeded"));
  EXPECT_TRUE(JobResultIsSuccess("SucceededWithIssues"));
  for (const char* r : {"Failed", "Canceled", "Skipped", "Abandoned", ""}) {
    EXPECT_FALSE(JobResultIsSuccess(r)) << r;
  }
}

}  // namespace
}  // namespace miglet
