#include "miglet/operator/kube/errors.h"

#include <cstdlib>

#include "absl/strings/cord.h"
#include "json_fields.h"
#include "nlohmann/json.hpp"

namespace miglet::kube {

namespace {

absl::StatusCode CodeFor(int http, const std::string& reason) {
  switch (http) {
    case 400:
      return absl::StatusCode::kInvalidArgument;
    case 401:
      return absl::StatusCode::kUnauthenticated;
    case 403:
      return absl::StatusCode::kPermissionDenied;
    case 404:
      return absl::StatusCode::kNotFound;
    case 409:
      return reason == "AlreadyExists" ? absl::StatusCode::kAlreadyExists
                                       : absl::StatusCode::kAborted;
    case 410:
      return absl::StatusCode::kOutOfRange;
    case 422:
      return absl::StatusCode::kInvalidArgument;
    case 429:
      return absl::StatusCode::kResourceExhausted;
    case 504:
      return absl::StatusCode::kDeadlineExceeded;
    default:
      if (http >= 500) return absl::StatusCode::kUnavailable;
      return absl::StatusCode::kUnknown;
  }
}

std::string DefaultReason(int http) {
  switch (http) {
    case 400:
      return "BadRequest";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "NotFound";
    case 405:
      return "MethodNotAllowed";
    case 409:
      return "Conflict";
    case 410:
      return "Gone";
    case 415:
      return "UnsupportedMediaType";
    case 422:
      return "Invalid";
    case 429:
      return "TooManyRequests";
    case 500:
      return "InternalError";
    case 503:
      return "ServiceUnavailable";
    case 504:
      return "Timeout";
    default:
      return "Unknown";
  }
}

}  // namespace

absl::Status StatusFromResponse(int http_status, const std::string& body,
                                const std::string& retry_after_header, const std::string& what) {
  KubeError e;
  e.code = http_status;
  auto j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  // Any JSON may come back (a proxy's, a webhook's): its fields' types are checked.
  if (StringField(j, "kind") == "Status") {
    e.reason = StringField(j, "reason");
    e.message = StringField(j, "message");
    e.code = IntField(j, "code", e.code);
    if (j.contains("details")) {
      e.retry_after_seconds = IntField(j["details"], "retryAfterSeconds", 0);
    }
  } else {
    e.message = body.size() > 512 ? body.substr(0, 512) + "..." : body;
  }
  if (e.reason.empty()) e.reason = DefaultReason(e.code);
  if (!retry_after_header.empty()) {
    const int ra = std::atoi(retry_after_header.c_str());
    if (ra > 0) e.retry_after_seconds = ra;
  }
  std::string msg = what + ": " + std::to_string(e.code) + " " + e.reason;
  if (!e.message.empty()) msg += ": " + e.message;
  absl::Status s(CodeFor(e.code, e.reason), msg);
  nlohmann::json p = {{"code", e.code},
                      {"reason", e.reason},
                      {"message", e.message},
                      {"retryAfterSeconds", e.retry_after_seconds}};
  // The message is the body cut at 512 bytes, which can split a UTF-8 character (or the body
  // was not UTF-8 at all): dump() would throw on it, so bad bytes become U+FFFD.
  s.SetPayload(kKubeErrorPayloadUrl,
               absl::Cord(p.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)));
  return s;
}

std::optional<KubeError> GetKubeError(const absl::Status& s) {
  auto p = s.GetPayload(kKubeErrorPayloadUrl);
  if (!p) return std::nullopt;
  auto j = nlohmann::json::parse(std::string(*p), nullptr, false);
  if (!j.is_object()) return std::nullopt;
  KubeError e;
  e.code = j.value("code", 0);
  e.reason = j.value("reason", "");
  e.message = j.value("message", "");
  e.retry_after_seconds = j.value("retryAfterSeconds", 0);
  return e;
}

namespace {
int HttpCode(const absl::Status& s) {
  auto e = GetKubeError(s);
  return e ? e->code : 0;
}
}  // namespace

bool IsNotFound(const absl::Status& s) { return HttpCode(s) == 404; }
bool IsAlreadyExists(const absl::Status& s) {
  auto e = GetKubeError(s);
  return e && e->code == 409 && e->reason == "AlreadyExists";
}
bool IsConflict(const absl::Status& s) {
  auto e = GetKubeError(s);
  return e && e->code == 409 && e->reason != "AlreadyExists";
}
bool IsGone(const absl::Status& s) { return HttpCode(s) == 410; }
bool IsInvalid(const absl::Status& s) { return HttpCode(s) == 422; }
bool IsTooManyRequests(const absl::Status& s) { return HttpCode(s) == 429; }
absl::Duration RetryAfter(const absl::Status& s) {
  auto e = GetKubeError(s);
  return e ? absl::Seconds(e->retry_after_seconds) : absl::ZeroDuration();
}

}  // namespace miglet::kube
