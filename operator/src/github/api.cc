#include "api.h"

#include <cmath>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "miglet/common/status.h"
#include "nlohmann/json.hpp"
#include "spdlog/spdlog.h"

namespace miglet::github {

namespace {

bool Contains(const std::string& haystack, const char* needle) {
  return absl::AsciiStrToLower(haystack).find(needle) != std::string::npos;
}

int64_t Int(const std::optional<std::string>& v, int64_t def) {
  int64_t n;
  if (!v || !absl::SimpleAtoi(absl::StripAsciiWhitespace(*v), &n)) return def;
  return n;
}

int64_t UnixSeconds(WallTime t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

int64_t CeilSeconds(Duration d) {
  return static_cast<int64_t>(std::ceil(std::chrono::duration<double>(d).count()));
}

std::string Seconds(Duration d) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1fs", std::chrono::duration<double>(d).count());
  return buf;
}

}  // namespace

// Longer than any wait GitHub asks for; keeps a wild header from overflowing a Duration.
constexpr int64_t kMaxWaitSeconds = 24 * 3600;

RateLimitVerdict ClassifyRateLimit(int status, const HttpHeaders& headers,
                                   const std::string& message, WallTime now) {
  RateLimitVerdict v;
  if (status != 403 && status != 429) return v;
  const int64_t retry_after = std::min(Int(headers.Get("retry-after"), -1), kMaxWaitSeconds);
  if (retry_after >= 0) {
    v.kind = RateLimitVerdict::Kind::kSecondary;
    v.wait = std::chrono::seconds(retry_after);
    return v;
  }
  if (Int(headers.Get("x-ratelimit-remaining"), -1) == 0) {
    v.kind = RateLimitVerdict::Kind::kPrimary;
    const int64_t reset = Int(headers.Get("x-ratelimit-reset"), 0);
    v.wait =
        std::chrono::seconds(std::clamp<int64_t>(reset - UnixSeconds(now), 1, kMaxWaitSeconds));
    return v;
  }
  if (Contains(message, "secondary rate limit") || status == 429) {
    v.kind = RateLimitVerdict::Kind::kSecondary;
    v.wait = std::chrono::seconds(60);
  }
  return v;
}

GitHubError ErrorFromResponse(const std::string& call, const std::string& scope,
                              const ClientResponse& r, WallTime now) {
  GitHubError e;
  e.call = call;
  e.scope = scope;
  e.status = r.status;
  e.request_id = r.headers.Get("x-github-request-id").value_or("");
  auto j = nlohmann::json::parse(r.body, nullptr, false);
  if (j.is_object() && j.contains("message") && j["message"].is_string()) {
    e.message = j["message"].get<std::string>();
  } else if (!r.body.empty()) {
    e.message = r.body.size() > 256 ? r.body.substr(0, 256) + "..." : r.body;
  }
  const auto rl = ClassifyRateLimit(r.status, r.headers, e.message, now);
  if (rl.kind != RateLimitVerdict::Kind::kNone) {
    e.kind = rl.kind == RateLimitVerdict::Kind::kPrimary ? GitHubError::Kind::kPrimaryRateLimit
                                                         : GitHubError::Kind::kSecondaryRateLimit;
    e.retry_after_seconds = CeilSeconds(rl.wait);
  } else if (r.status == 401) {
    e.kind = GitHubError::Kind::kBadCredentials;
  } else if ((r.status == 409 || r.status == 422) && Contains(e.message, "already exists")) {
    // GitHub answers generate-jitconfig for a taken name with 409 "Already exists - A runner
    // with the name X already exists."; 422 with the same words is treated alike.
    e.kind = GitHubError::Kind::kRunnerNameTaken;
  } else if (r.status == 422 &&
             (Contains(e.message, "still running a job") || Contains(e.message, "is busy"))) {
    e.kind = GitHubError::Kind::kRunnerBusy;
  }
  return e;
}

std::optional<std::string> NextLink(const std::string& link_header) {
  // <https://api.github.com/...?page=2>; rel="next", <...>; rel="last"
  for (absl::string_view part : absl::StrSplit(link_header, ',')) {
    part = absl::StripAsciiWhitespace(part);
    const size_t open = part.find('<');
    const size_t close = part.find('>');
    if (open != 0 || close == absl::string_view::npos) continue;
    const absl::string_view url = part.substr(1, close - 1);
    for (absl::string_view param : absl::StrSplit(part.substr(close + 1), ';')) {
      param = absl::StripAsciiWhitespace(param);
      if (!absl::ConsumePrefix(&param, "rel=")) continue;
      param = absl::StripPrefix(absl::StripSuffix(param, "\""), "\"");
      for (absl::string_view rel : absl::StrSplit(param, ' ', absl::SkipEmpty())) {
        if (rel == "next") return std::string(url);
      }
    }
  }
  return std::nullopt;
}

absl::StatusOr<WallTime> ParseTimestamp(const std::string& s) {
  absl::Time t;
  std::string err;
  if (!absl::ParseTime(absl::RFC3339_full, s, &t, &err)) {
    return absl::InvalidArgumentError("timestamp \"" + s + "\": " + err);
  }
  return std::chrono::time_point_cast<WallTime::duration>(absl::ToChronoTime(t));
}

std::optional<WallTime> ServerTime(const HttpHeaders& headers) {
  auto date = headers.Get("date");
  if (!date) return std::nullopt;
  absl::Time t;
  std::string err;
  if (!absl::ParseTime("%a, %d %b %Y %H:%M:%S GMT", *date, absl::UTCTimeZone(), &t, &err)) {
    return std::nullopt;
  }
  return std::chrono::time_point_cast<WallTime::duration>(absl::ToChronoTime(t));
}

absl::Status CredentialsError(const std::string& call, const std::string& scope,
                              const absl::Status& inner) {
  const auto inner_error = GetGitHubError(inner);
  const auto failure = GetTransportFailure(inner);
  if (!inner_error && !failure) {
    // Not GitHub's answer (a key that cannot sign, an App asked for enterprise runners).
    return Annotate(inner, "github " + call + " (" + scope + "): credentials");
  }
  GitHubError e{.call = call, .scope = scope};
  e.message = "credentials: " + std::string(inner.message());
  if (inner_error) {
    switch (inner_error->kind) {
      case GitHubError::Kind::kPrimaryRateLimit:
      case GitHubError::Kind::kSecondaryRateLimit:
        e.kind = inner_error->kind;
        e.retry_after_seconds = inner_error->retry_after_seconds;
        break;
      default:
        if (inner_error->status == 401 || inner_error->status == 403 ||
            inner_error->status == 404) {
          e.kind = GitHubError::Kind::kBadCredentials;
        }
    }
  }
  absl::Status s = MakeStatus(e);
  if (failure) {
    absl::Status t = TransportError(*failure, std::string(s.message()));
    t.SetPayload(kGitHubErrorPayloadUrl, *s.GetPayload(kGitHubErrorPayloadUrl));
    s = t;
  }
  return s;
}

Api::Api(std::shared_ptr<HttpTransport> transport, ApiConfig config, std::shared_ptr<Clock> clock,
         std::shared_ptr<GitHubMetrics> metrics)
    : transport_(std::move(transport)),
      config_(std::move(config)),
      clock_(std::move(clock)),
      metrics_(std::move(metrics)) {}

Duration Api::BlockedFor(GitHubError::Kind* kind) {
  std::lock_guard l(mu_);
  const MonoTime now = clock_->Now();
  if (now >= blocked_until_) return Duration::zero();
  *kind = blocked_kind_;
  return blocked_until_ - now;
}

void Api::Block(Duration wait, GitHubError::Kind kind) {
  std::lock_guard l(mu_);
  const MonoTime until = clock_->Now() + wait;
  if (until > blocked_until_) {
    blocked_until_ = until;
    blocked_kind_ = kind;
  }
}

absl::Status Api::Fail(GitHubError e) const { return MakeStatus(e); }

absl::StatusOr<ClientResponse> Api::Call(const Request& req, TokenSource& auth) {
  const std::string scope = config_.scope.Describe();
  const std::string where = "github " + req.call + " (" + scope + ")";
  Backoff backoff(config_.backoff);
  bool renewed = false;
  for (int attempt = 1;; ++attempt) {
    // A rate limit seen earlier (by any call on this credential) holds every call back.
    GitHubError::Kind kind;
    if (const Duration wait = BlockedFor(&kind); wait > Duration::zero()) {
      if (wait > config_.max_wait) {
        GitHubError e{.kind = kind, .call = req.call, .scope = scope};
        e.message = "rate limited; not sent";
        e.retry_after_seconds = CeilSeconds(wait);
        return Fail(e);
      }
      spdlog::warn("{}: waiting {} for GitHub's {} rate limit", where, Seconds(wait),
                   kind == GitHubError::Kind::kPrimaryRateLimit ? "primary" : "secondary");
      clock_->SleepFor(wait);
    }

    auto token = auth.Token();
    if (!token.ok()) return CredentialsError(req.call, scope, token.status());
    ClientRequest r;
    r.method = req.method;
    r.target = req.target;
    r.body = req.body;
    r.headers.Add("Accept", "application/vnd.github+json");
    r.headers.Add("X-GitHub-Api-Version", kApiVersion);
    r.headers.Add("User-Agent", config_.user_agent);
    r.headers.Add("Authorization", "Bearer " + *token);
    if (!req.body.empty()) r.headers.Add("Content-Type", "application/json");

    const auto start = std::chrono::steady_clock::now();
    auto resp = transport_->Send(r);
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

    if (!resp.ok()) {
      if (metrics_) metrics_->Request(req.call, "error", secs);
      const auto failure = GetTransportFailure(resp.status());
      // Every call here is safe to repeat: a POST makes a new token or JIT config (a taken
      // runner name is handled by the caller), GET and DELETE are idempotent.
      const bool retryable =
          failure && *failure != TransportFailure::kTls && *failure != TransportFailure::kCancelled;
      if (retryable && attempt < config_.max_attempts) {
        const Duration d = backoff.Next();
        spdlog::warn("{}: {}; retrying in {} (attempt {} of {})", where,
                     std::string(resp.status().message()), Seconds(d), attempt + 1,
                     config_.max_attempts);
        clock_->SleepFor(d);
        continue;
      }
      GitHubError e{.call = req.call, .scope = scope};
      e.message = std::string(resp.status().message());
      absl::Status s = Fail(e);
      if (failure) {
        // Keep both: the GitHub error (call, scope) and the transport failure's type.
        absl::Status t = TransportError(*failure, std::string(s.message()));
        s.ForEachPayload([&](absl::string_view u, const absl::Cord& p) { t.SetPayload(u, p); });
        s = t;
      }
      return s;
    }

    if (metrics_) {
      metrics_->Request(req.call, std::to_string(resp->status), secs);
      if (auto rem = resp->headers.Get("x-ratelimit-remaining")) {
        metrics_->RateLimitRemaining(static_cast<double>(Int(rem, 0)));
      }
    }
    // GitHub's now, for its reset times; ours when it did not say.
    const WallTime now = ServerTime(resp->headers).value_or(clock_->WallNow());
    if (resp->status >= 200 && resp->status < 300) {
      // The last call of the window went through: hold the next ones until the reset.
      if (Int(resp->headers.Get("x-ratelimit-remaining"), -1) == 0) {
        const int64_t reset = Int(resp->headers.Get("x-ratelimit-reset"), 0);
        if (reset > UnixSeconds(now)) {
          Block(std::chrono::seconds(std::min(reset - UnixSeconds(now), kMaxWaitSeconds)),
                GitHubError::Kind::kPrimaryRateLimit);
        }
      }
      return std::move(*resp);
    }

    GitHubError e = ErrorFromResponse(req.call, scope, *resp, now);
    if (e.kind == GitHubError::Kind::kPrimaryRateLimit ||
        e.kind == GitHubError::Kind::kSecondaryRateLimit) {
      const bool primary = e.kind == GitHubError::Kind::kPrimaryRateLimit;
      if (metrics_) metrics_->RateLimited(primary ? "primary" : "secondary");
      Block(std::chrono::seconds(e.retry_after_seconds), e.kind);
      spdlog::warn("{}: HTTP {}: {} rate limit, GitHub asks to wait {}s{}", where, resp->status,
                   primary ? "primary" : "secondary", e.retry_after_seconds,
                   primary ? " (until x-ratelimit-reset)" : " (Retry-After)");
      if (attempt < config_.max_attempts &&
          std::chrono::seconds(e.retry_after_seconds) <= config_.max_wait) {
        continue;  // the wait happens at the top of the loop
      }
      return Fail(e);
    }
    if (resp->status == 401 && !renewed && auth.Invalidate(*token)) {
      renewed = true;
      spdlog::warn("{}: HTTP 401 ({}); renewing the installation token once", where, e.message);
      continue;
    }
    if (resp->status >= 500 && attempt < config_.max_attempts) {
      const Duration d = backoff.Next();
      spdlog::warn("{}: HTTP {}: {}; retrying in {} (attempt {} of {})", where, resp->status,
                   e.message, Seconds(d), attempt + 1, config_.max_attempts);
      clock_->SleepFor(d);
      continue;
    }
    return Fail(e);
  }
}

InstallationTokenSource::InstallationTokenSource(std::shared_ptr<Api> api, AppKey key,
                                                 int64_t app_id, int64_t installation_id,
                                                 Duration renew_before)
    : api_(api),
      jwt_(std::move(key), app_id, std::shared_ptr<Clock>(api, &api->clock())),
      app_id_(app_id),
      renew_before_(renew_before),
      installation_id_(installation_id) {}

bool InstallationTokenSource::UsableLocked(WallTime now) const {
  return !token_.empty() && now + renew_before_ < expires_at_;
}

absl::StatusOr<std::string> InstallationTokenSource::Token() {
  std::unique_lock l(mu_);
  while (true) {
    if (UsableLocked(api_->clock().WallNow())) return token_;
    if (!renewing_) break;
    // Another caller is renewing: share its outcome.
    const uint64_t gen = generation_;
    ++waiting_;
    cv_.wait(l, [&] { return generation_ != gen; });
    --waiting_;
    if (!last_error_.ok()) return last_error_;
    if (!token_.empty()) return token_;
  }
  renewing_ = true;
  l.unlock();
  auto fresh = Renew();
  l.lock();
  renewing_ = false;
  ++generation_;
  if (fresh.ok()) {
    token_ = fresh->token;
    expires_at_ = fresh->expires_at;
    last_error_ = absl::OkStatus();
    ++renewals_;
    if (api_->metrics()) api_->metrics()->InstallationTokenRenewed();
  } else {
    last_error_ = fresh.status();
  }
  cv_.notify_all();
  if (!fresh.ok()) return fresh.status();
  return token_;
}

bool InstallationTokenSource::Invalidate(const std::string& token) {
  std::lock_guard l(mu_);
  // Only the token that was refused: a renewal that already replaced it stands.
  if (token == token_) expires_at_ = WallTime{};
  return true;
}

int InstallationTokenSource::waiting() const {
  std::lock_guard l(mu_);
  return waiting_;
}

int64_t InstallationTokenSource::renewals() const {
  std::lock_guard l(mu_);
  return renewals_;
}

absl::StatusOr<int64_t> InstallationTokenSource::LookUpInstallation() {
  const Scope& s = api_->scope();
  std::string target;
  switch (s.kind) {
    case Scope::Kind::kRepository:
      target = "/repos/" + s.owner + "/" + s.repo + "/installation";
      break;
    case Scope::Kind::kOrganization:
      target = "/orgs/" + s.owner + "/installation";
      break;
    case Scope::Kind::kEnterprise:
      return absl::InvalidArgumentError(
          "a GitHub App cannot manage the runners of " + s.Describe() +
          "; use a personal access token (classic) with the manage_runners:enterprise scope");
  }
  auto r = api_->Call({.call = "get_installation", .method = "GET", .target = target}, jwt_);
  if (!r.ok()) {
    if (github::IsNotFound(r.status())) {
      return Annotate(r.status(), "GitHub App " + std::to_string(app_id_) +
                                      " is not installed on " + s.Describe());
    }
    return r.status();
  }
  auto j = nlohmann::json::parse(r->body, nullptr, false);
  if (!j.is_object() || !j.contains("id") || !j["id"].is_number_integer()) {
    return absl::DataLossError("github get_installation (" + s.Describe() +
                               "): answer without an id");
  }
  return j["id"].get<int64_t>();
}

absl::StatusOr<InstallationTokenSource::Fresh> InstallationTokenSource::Renew() {
  int64_t id;
  {
    std::lock_guard l(mu_);
    id = installation_id_;
  }
  if (id == 0) {
    auto found = LookUpInstallation();
    if (!found.ok()) return found.status();
    id = *found;
    std::lock_guard l(mu_);
    installation_id_ = id;
  }
  auto r = api_->Call({.call = "create_installation_token",
                       .method = "POST",
                       .target = "/app/installations/" + std::to_string(id) + "/access_tokens"},
                      jwt_);
  if (!r.ok()) return r.status();
  auto j = nlohmann::json::parse(r->body, nullptr, false);
  if (!j.is_object() || !j.contains("token") || !j["token"].is_string() ||
      !j.contains("expires_at") || !j["expires_at"].is_string()) {
    return absl::DataLossError("github create_installation_token (" + api_->scope().Describe() +
                               "): answer without token or expires_at");
  }
  auto expires = ParseTimestamp(j["expires_at"].get<std::string>());
  if (!expires.ok()) return Annotate(expires.status(), "github create_installation_token");
  spdlog::info("github: installation token for {} (installation {}) renewed; expires {}",
               api_->scope().Describe(), id, j["expires_at"].get<std::string>());
  return Fresh{j["token"].get<std::string>(), *expires};
}

}  // namespace miglet::github
