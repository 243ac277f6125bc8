#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"

namespace miglet::github {

// What went wrong with a GitHub call, carried as a payload on the absl::Status the client
// returns (like kube::KubeError). Never holds a token or a JIT config.
struct GitHubError {
  enum class Kind {
    kOther,
    kPrimaryRateLimit,    // x-ratelimit-remaining: 0 until x-ratelimit-reset
    kSecondaryRateLimit,  // 403/429 with retry-after or GitHub's "secondary rate limit" message
    kRunnerNameTaken,     // generate-jitconfig: a runner with that name exists
    kRunnerBusy,          // delete: the runner is running a job
    kBadCredentials,      // 401
  };
  Kind kind = Kind::kOther;
  int status = 0;          // the HTTP status; 0 when the call never got an answer
  std::string call;        // "generate_jitconfig", "delete_runner", ...
  std::string scope;       // "organization acme"
  std::string message;     // GitHub's message (or the transport's)
  std::string request_id;  // x-github-request-id, for GitHub Support
  int64_t retry_after_seconds = 0;
};

inline constexpr char kGitHubErrorPayloadUrl[] = "type.miglet.dev/github.GitHubError";

// The Status for `e`: code from the HTTP status and kind, message "github <call> (<scope>):
// HTTP <status>: <message>", the error attached.
absl::Status MakeStatus(const GitHubError& e);
std::optional<GitHubError> GetGitHubError(const absl::Status& s);

// Call these qualified (github::IsNotFound): absl has an IsNotFound too.
bool IsNotFound(const absl::Status& s);
bool IsRunnerNameTaken(const absl::Status& s);
bool IsRunnerBusy(const absl::Status& s);
bool IsRateLimited(const absl::Status& s);  // primary or secondary
bool IsBadCredentials(const absl::Status& s);
// How long GitHub asked to wait before the next call (0 when it did not say).
std::chrono::seconds RetryAfter(const absl::Status& s);

}  // namespace miglet::github
