#include "miglet/operator/github/errors.h"

#include "absl/strings/cord.h"
#include "nlohmann/json.hpp"

namespace miglet::github {

namespace {

absl::StatusCode CodeFor(const GitHubError& e) {
  using K = GitHubError::Kind;
  switch (e.kind) {
    case K::kPrimaryRateLimit:
    case K::kSecondaryRateLimit:
      return absl::StatusCode::kResourceExhausted;
    case K::kRunnerNameTaken:
      return absl::StatusCode::kAlreadyExists;
    case K::kRunnerBusy:
      return absl::StatusCode::kFailedPrecondition;
    case K::kBadCredentials:
      return absl::StatusCode::kUnauthenticated;
    case K::kOther:
      break;
  }
  switch (e.status) {
    case 0:
      return absl::StatusCode::kUnavailable;
    case 400:
    case 422:
      return absl::StatusCode::kInvalidArgument;
    case 401:
      return absl::StatusCode::kUnauthenticated;
    case 403:
      return absl::StatusCode::kPermissionDenied;
    case 404:
      return absl::StatusCode::kNotFound;
    case 409:
      return absl::StatusCode::kAborted;
    case 429:
      return absl::StatusCode::kResourceExhausted;
    default:
      return e.status >= 500 ? absl::StatusCode::kUnavailable : absl::StatusCode::kUnknown;
  }
}

}  // namespace

absl::Status MakeStatus(const GitHubError& e) {
  std::string msg = "github " + e.call + " (" + e.scope + ")";
  if (e.status > 0) msg += ": HTTP " + std::to_string(e.status);
  if (!e.message.empty()) msg += ": " + e.message;
  if (e.retry_after_seconds > 0) {
    msg += " (retry after " + std::to_string(e.retry_after_seconds) + "s)";
  }
  if (!e.request_id.empty()) msg += " [request " + e.request_id + "]";
  absl::Status s(CodeFor(e), msg);
  nlohmann::json p = {{"kind", static_cast<int>(e.kind)},
                      {"status", e.status},
                      {"call", e.call},
                      {"scope", e.scope},
                      {"message", e.message},
                      {"request_id", e.request_id},
                      {"retry_after", e.retry_after_seconds}};
  s.SetPayload(kGitHubErrorPayloadUrl, absl::Cord(p.dump()));
  return s;
}

std::optional<GitHubError> GetGitHubError(const absl::Status& s) {
  auto p = s.GetPayload(kGitHubErrorPayloadUrl);
  if (!p) return std::nullopt;
  auto j = nlohmann::json::parse(std::string(*p), nullptr, false);
  if (!j.is_object()) return std::nullopt;
  GitHubError e;
  e.kind = static_cast<GitHubError::Kind>(j.value("kind", 0));
  e.status = j.value("status", 0);
  e.call = j.value("call", "");
  e.scope = j.value("scope", "");
  e.message = j.value("message", "");
  e.request_id = j.value("request_id", "");
  e.retry_after_seconds = j.value("retry_after", int64_t{0});
  return e;
}

namespace {
bool KindIs(const absl::Status& s, GitHubError::Kind k) {
  auto e = GetGitHubError(s);
  return e && e->kind == k;
}
}  // namespace

bool IsNotFound(const absl::Status& s) {
  auto e = GetGitHubError(s);
  return e && e->status == 404;
}
bool IsRunnerNameTaken(const absl::Status& s) {
  return KindIs(s, GitHubError::Kind::kRunnerNameTaken);
}
bool IsRunnerBusy(const absl::Status& s) { return KindIs(s, GitHubError::Kind::kRunnerBusy); }
bool IsRateLimited(const absl::Status& s) {
  return KindIs(s, GitHubError::Kind::kPrimaryRateLimit) ||
         KindIs(s, GitHubError::Kind::kSecondaryRateLimit);
}
bool IsBadCredentials(const absl::Status& s) {
  return KindIs(s, GitHubError::Kind::kBadCredentials);
}
std::chrono::seconds RetryAfter(const absl::Status& s) {
  auto e = GetGitHubError(s);
  return std::chrono::seconds(e ? e->retry_after_seconds : 0);
}

}  // namespace miglet::github
