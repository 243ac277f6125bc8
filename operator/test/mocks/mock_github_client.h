#pragma once

#include <gmock/gmock.h>

#include "miglet/operator/github/github_client.h"

namespace miglet::github::testing {

// For reconciler tests: a GitHubClient whose answers the test sets.
class MockGitHubClient : public GitHubClient {
 public:
  MOCK_METHOD(const Scope&, scope, (), (const, override));
  MOCK_METHOD(absl::StatusOr<RegistrationToken>, CreateRegistrationToken, (), (override));
  MOCK_METHOD(absl::StatusOr<RegistrationToken>, CreateRemoveToken, (), (override));
  MOCK_METHOD(absl::StatusOr<JitConfig>, GenerateJitConfig, (const JitConfigRequest&), (override));
  MOCK_METHOD(absl::StatusOr<int64_t>, RunnerGroupId, (const std::string&), (override));
  MOCK_METHOD(absl::StatusOr<std::vector<Runner>>, ListRunners, (const std::string&), (override));
  MOCK_METHOD(absl::StatusOr<Runner>, GetRunner, (int64_t), (override));
  MOCK_METHOD(absl::Status, DeleteRunner, (int64_t), (override));
};

}  // namespace miglet::github::testing
