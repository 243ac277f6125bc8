#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "github_metrics.h"
#include "miglet/common/backoff.h"
#include "miglet/common/clock.h"
#include "miglet/common/http_transport.h"
#include "miglet/operator/github/auth.h"
#include "miglet/operator/github/errors.h"
#include "miglet/operator/github/scope.h"

// The request layer under the GitHub client: GitHub's headers, retries of 5xx answers and lost
// connections, rate limits waited out or reported, one token renewal on 401, metrics. The
// decisions are pure functions beside it, tested on their own.
namespace miglet::github {

inline constexpr char kApiVersion[] = "2022-11-28";

// What a non-2xx answer says about waiting.
struct RateLimitVerdict {
  enum class Kind { kNone, kPrimary, kSecondary };
  Kind kind = Kind::kNone;
  Duration wait{};
};

// GitHub's rules (docs: "Rate limits for the REST API"): a 403 or 429 with retry-after is a
// secondary limit: wait that long. With x-ratelimit-remaining 0: the primary limit, wait until
// x-ratelimit-reset. A 403/429 whose message names a secondary rate limit, without either
// header: wait at least a minute. Any other 403 is a permission error, not a limit.
RateLimitVerdict ClassifyRateLimit(int status, const HttpHeaders& headers,
                                   const std::string& message, WallTime now);

// The GitHubError for a non-2xx answer: GitHub's message and request id, and its kind (a taken
// runner name, a busy runner, bad credentials, a rate limit).
GitHubError ErrorFromResponse(const std::string& call, const std::string& scope,
                              const ClientResponse& r, WallTime now);

// The rel="next" URL of a Link header, if any.
std::optional<std::string> NextLink(const std::string& link_header);

// RFC 3339 ("2026-11-27T12:00:00Z", "2020-01-22T12:13:35.123-08:00").
absl::StatusOr<WallTime> ParseTimestamp(const std::string& s);

// The server's clock from an HTTP Date header ("Fri, 27 Nov 2026 14:00:00 GMT"). Rate-limit
// resets are GitHub's clock readings: a wait is worked out against GitHub's now, not ours.
std::optional<WallTime> ServerTime(const HttpHeaders& headers);

// The error of a call whose credentials could not be had (the installation token's renewal
// failed): the outer call's GitHubError, never the inner call's 404 (which would read as "the
// runner is gone"). An App that is not installed, or refused, is kBadCredentials; a rate limit
// stays one.
absl::Status CredentialsError(const std::string& call, const std::string& scope,
                              const absl::Status& inner);

struct ApiConfig {
  Scope scope;
  std::string user_agent;
  int max_attempts = 5;
  BackoffPolicy backoff;
  Duration max_wait = std::chrono::seconds(60);
};

class Api {
 public:
  Api(std::shared_ptr<HttpTransport> transport, ApiConfig config, std::shared_ptr<Clock> clock,
      std::shared_ptr<GitHubMetrics> metrics);

  struct Request {
    std::string call;  // the metric label and the name in errors
    std::string method = "GET";
    std::string target;  // a path under the API base, or an absolute URL from a Link header
    std::string body;
  };

  // Sends with a token from `auth`. A 2xx answer is returned; anything else, after the retries
  // it deserves, is a GitHubError status.
  absl::StatusOr<ClientResponse> Call(const Request& req, TokenSource& auth);

  const Scope& scope() const { return config_.scope; }
  Clock& clock() { return *clock_; }
  const std::shared_ptr<GitHubMetrics>& metrics() const { return metrics_; }

 private:
  // How long calls must hold off for a rate limit seen earlier (zero when they need not). On
  // the steady clock: a wall-clock step must not stretch or cut the wait.
  Duration BlockedFor(GitHubError::Kind* kind);
  void Block(Duration wait, GitHubError::Kind kind);
  absl::Status Fail(GitHubError e) const;

  std::shared_ptr<HttpTransport> transport_;
  ApiConfig config_;
  std::shared_ptr<Clock> clock_;
  std::shared_ptr<GitHubMetrics> metrics_;
  std::mutex mu_;
  MonoTime blocked_until_{};
  GitHubError::Kind blocked_kind_ = GitHubError::Kind::kOther;
};

// An App JWT minted for each request (GitHub's /app endpoints).
class AppJwtSource final : public TokenSource {
 public:
  AppJwtSource(AppKey key, int64_t app_id, std::shared_ptr<Clock> clock)
      : key_(std::move(key)), app_id_(app_id), clock_(std::move(clock)) {}
  absl::StatusOr<std::string> Token() override {
    return MakeAppJwt(key_, app_id_, clock_->WallNow());
  }
  bool Invalidate(const std::string&) override { return false; }

 private:
  AppKey key_;
  int64_t app_id_;
  std::shared_ptr<Clock> clock_;
};

// An installation token, cached and renewed `renew_before` its expiry; concurrent callers
// share one renewal (and its outcome). The installation id is looked up from the scope when
// not given.
class InstallationTokenSource final : public TokenSource {
 public:
  InstallationTokenSource(std::shared_ptr<Api> api, AppKey key, int64_t app_id,
                          int64_t installation_id, Duration renew_before);

  absl::StatusOr<std::string> Token() override;
  bool Invalidate(const std::string& token) override;

  int64_t renewals() const;
  // Callers parked waiting for another caller's renewal (for tests).
  int waiting() const;

 private:
  struct Fresh {
    std::string token;
    WallTime expires_at;
  };
  absl::StatusOr<Fresh> Renew();
  absl::StatusOr<int64_t> LookUpInstallation();
  bool UsableLocked(WallTime now) const;

  std::shared_ptr<Api> api_;
  AppJwtSource jwt_;
  const int64_t app_id_;
  const Duration renew_before_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  int64_t installation_id_;
  std::string token_;
  WallTime expires_at_{};
  bool renewing_ = false;
  int waiting_ = 0;
  uint64_t generation_ = 0;  // completed renewals (ok or not)
  absl::Status last_error_;
  int64_t renewals_ = 0;
};

}  // namespace miglet::github
