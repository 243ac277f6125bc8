#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "miglet/common/clock.h"
#include "miglet/common/http_transport.h"
#include "miglet/operator/github/auth.h"
#include "miglet/operator/github/scope.h"

namespace prometheus {
class Registry;
}

// The GitHub REST calls mig-controller makes for self-hosted runners, for one scope with one
// set of credentials. Reconcilers take the interface, so they can be tested with a mock.
namespace miglet::github {

struct RegistrationToken {
  std::string token;  // a secret: never logged
  WallTime expires_at;
};

struct Runner {
  int64_t id = 0;
  std::string name;
  std::string os;
  std::string status;  // "online" | "offline"
  bool busy = false;
  bool ephemeral = false;
  int64_t runner_group_id = 0;
  std::vector<std::string> labels;
  bool online() const { return status == "online"; }
};

struct JitConfigRequest {
  std::string name;
  int64_t runner_group_id = 1;
  std::vector<std::string> labels;  // at least one
  std::string work_folder = "_work";
  // A runner of the same name that is offline and idle is a leftover (an earlier attempt whose
  // answer was lost, a pod that died before its runner started): delete it and try again, as
  // config.sh --replace does. An online or busy one is never touched. With false, a retry of a
  // call whose answer was lost reports the name as taken by the runner that call made.
  bool replace_offline = true;
};

struct JitConfig {
  Runner runner;
  std::string encoded_jit_config;  // a secret: never logged
};

class GitHubClient {
 public:
  virtual ~GitHubClient() = default;
  virtual const Scope& scope() const = 0;

  virtual absl::StatusOr<RegistrationToken> CreateRegistrationToken() = 0;
  virtual absl::StatusOr<RegistrationToken> CreateRemoveToken() = 0;
  virtual absl::StatusOr<JitConfig> GenerateJitConfig(const JitConfigRequest& req) = 0;
  // The id of the runner group `name` ("" or "Default": 1). Cached. Repositories have only the
  // default group.
  virtual absl::StatusOr<int64_t> RunnerGroupId(const std::string& name) = 0;
  // Every page; `name` filters on the runner's exact name when non-empty.
  virtual absl::StatusOr<std::vector<Runner>> ListRunners(const std::string& name = "") = 0;
  virtual absl::StatusOr<Runner> GetRunner(int64_t id) = 0;  // NOT_FOUND when gone
  // OK when deleted or already gone; FAILED_PRECONDITION (IsRunnerBusy) during a job.
  virtual absl::Status DeleteRunner(int64_t id) = 0;
};

class GitHubMetrics;

struct GitHubClientOptions {
  std::string url;  // the scope's web URL (ParseGitHubUrl)
  Credentials credentials;
  TlsOptions tls;  // extra CA for a GHES host; client certificates are not used by GitHub
  Duration timeout = std::chrono::seconds(30);  // per request
  std::string user_agent = "mig-controller/0.1 (+https://miglet.dev)";
  // Retries of 5xx answers and failed connections.
  int max_attempts = 5;
  BackoffPolicy backoff{.initial = std::chrono::seconds(1),
                        .max = std::chrono::seconds(30),
                        .multiplier = 2,
                        .jitter = 0.2};
  // Rate limits asking for a longer wait than this are not waited out inline: the call fails
  // with RESOURCE_EXHAUSTED and RetryAfter() tells the caller when to come back.
  Duration max_wait = std::chrono::seconds(60);
  // An installation token is renewed this long before it expires.
  Duration token_renew_before = std::chrono::seconds(60);
  std::shared_ptr<Clock> clock;              // default: the real clock
  std::shared_ptr<GitHubMetrics> metrics;    // optional
  std::shared_ptr<HttpTransport> transport;  // optional (tests); default: made from url + tls
};

absl::StatusOr<std::unique_ptr<GitHubClient>> MakeGitHubClient(GitHubClientOptions options);

// The mig_controller_github_* metrics, registered on `registry`, shared by every client.
std::shared_ptr<GitHubMetrics> MakeGitHubMetrics(prometheus::Registry& registry);

}  // namespace miglet::github
