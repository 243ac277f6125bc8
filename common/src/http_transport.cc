// The transport's parts that do not depend on the HTTP library: headers, URL parsing, typed
// failures and the retry decorator.
#include "miglet/common/http_transport.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/cord.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace miglet {

namespace {

bool SameName(std::string_view a, std::string_view b) {
  return absl::EqualsIgnoreCase(absl::string_view(a.data(), a.size()),
                                absl::string_view(b.data(), b.size()));
}

constexpr char kFailurePayloadUrl[] = "type.miglet.dev/http.TransportFailure";

}  // namespace

HttpHeaders::HttpHeaders(std::initializer_list<std::pair<std::string, std::string>> init)
    : entries_(init) {}

void HttpHeaders::Add(std::string name, std::string value) {
  entries_.emplace_back(std::move(name), std::move(value));
}

void HttpHeaders::Set(std::string name, std::string value) {
  Remove(name);
  Add(std::move(name), std::move(value));
}

void HttpHeaders::Remove(std::string_view name) {
  entries_.erase(std::remove_if(entries_.begin(), entries_.end(),
                                [&](const auto& e) { return SameName(e.first, name); }),
                 entries_.end());
}

std::optional<std::string> HttpHeaders::Get(std::string_view name) const {
  for (const auto& [k, v] : entries_) {
    if (SameName(k, name)) return v;
  }
  return std::nullopt;
}

std::string_view TransportFailureName(TransportFailure f) {
  switch (f) {
    case TransportFailure::kConnect:
      return "connect";
    case TransportFailure::kTls:
      return "tls";
    case TransportFailure::kSend:
      return "send";
    case TransportFailure::kReceive:
      return "receive";
    case TransportFailure::kTimeout:
      return "timeout";
    case TransportFailure::kCancelled:
      return "cancelled";
  }
  return "unknown";
}

absl::Status TransportError(TransportFailure f, std::string_view msg) {
  const std::string message(msg);
  absl::Status s;
  switch (f) {
    case TransportFailure::kTimeout:
      s = absl::DeadlineExceededError(message);
      break;
    case TransportFailure::kCancelled:
      s = absl::CancelledError(message);
      break;
    default:
      s = absl::UnavailableError(message);
  }
  s.SetPayload(kFailurePayloadUrl, absl::Cord(std::string(TransportFailureName(f))));
  return s;
}

std::optional<TransportFailure> GetTransportFailure(const absl::Status& s) {
  auto p = s.GetPayload(kFailurePayloadUrl);
  if (!p) return std::nullopt;
  const std::string name(*p);
  for (auto f :
       {TransportFailure::kConnect, TransportFailure::kTls, TransportFailure::kSend,
        TransportFailure::kReceive, TransportFailure::kTimeout, TransportFailure::kCancelled}) {
    if (TransportFailureName(f) == name) return f;
  }
  return std::nullopt;
}

bool NeverReachedServer(TransportFailure f) {
  return f == TransportFailure::kConnect || f == TransportFailure::kTls ||
         f == TransportFailure::kSend;
}

absl::StatusOr<ClientResponse> HttpTransport::Do(std::string_view method, std::string_view target,
                                                 std::string_view body) {
  ClientRequest req;
  req.method = std::string(method);
  req.target = std::string(target);
  req.body = std::string(body);
  return Send(req);
}

bool ShouldRetry(const RetryPolicy& policy, std::string_view method, int attempt,
                 const absl::StatusOr<ClientResponse>& result) {
  if (attempt >= policy.max_attempts) return false;
  const bool idempotent = policy.idempotent_methods.count(std::string(method)) > 0;
  // A status like 502 or 504 may come after the server acted: repeated for idempotent methods
  // only.
  if (result.ok()) return idempotent && policy.retry_statuses.count(result->status) > 0;
  const auto failure = GetTransportFailure(result.status());
  if (!failure) return false;  // not a transport error (a bad request, say): never retried
  switch (*failure) {
    case TransportFailure::kCancelled:
    case TransportFailure::kTls:
      return false;
    default:
      break;
  }
  if (policy.retry_unsent && NeverReachedServer(*failure)) return true;
  return idempotent;
}

namespace {

class RetryingTransport final : public HttpTransport {
 public:
  RetryingTransport(std::unique_ptr<HttpTransport> inner, RetryPolicy policy,
                    std::shared_ptr<Clock> clock)
      : inner_(std::move(inner)), policy_(std::move(policy)), clock_(std::move(clock)) {}

  absl::StatusOr<ClientResponse> Send(const ClientRequest& req) override {
    std::optional<Backoff> backoff;  // made on the first retry: most requests never need one
    for (int attempt = 1;; ++attempt) {
      auto r = inner_->Send(req);
      if (!ShouldRetry(policy_, req.method, attempt, r)) return r;
      if (!backoff) backoff.emplace(policy_.backoff);
      clock_->SleepFor(backoff->Next());
    }
  }

  absl::StatusOr<std::unique_ptr<HttpBodyStream>> Open(const ClientRequest& req) override {
    std::optional<Backoff> backoff;
    for (int attempt = 1;; ++attempt) {
      auto r = inner_->Open(req);
      // A stream is retried only when it never opened; an opened one belongs to the caller.
      absl::StatusOr<ClientResponse> as_response =
          r.ok() ? absl::StatusOr<ClientResponse>(ClientResponse{.status = (*r)->status()})
                 : absl::StatusOr<ClientResponse>(r.status());
      if (r.ok() || !ShouldRetry(policy_, req.method, attempt, as_response)) return r;
      if (!backoff) backoff.emplace(policy_.backoff);
      clock_->SleepFor(backoff->Next());
    }
  }

  const std::string& base_url() const override { return inner_->base_url(); }

 private:
  std::unique_ptr<HttpTransport> inner_;
  RetryPolicy policy_;
  std::shared_ptr<Clock> clock_;
};

}  // namespace

std::unique_ptr<HttpTransport> MakeRetryingTransport(std::unique_ptr<HttpTransport> inner,
                                                     RetryPolicy policy,
                                                     std::shared_ptr<Clock> clock) {
  return std::make_unique<RetryingTransport>(std::move(inner), std::move(policy), std::move(clock));
}

std::string UrlParts::Origin() const {
  const bool default_port = (scheme == "https" && port == 443) || (scheme == "http" && port == 80);
  const std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  return scheme + "://" + h + (default_port ? "" : ":" + std::to_string(port));
}

absl::StatusOr<UrlParts> ParseUrl(std::string_view url) {
  const std::string u(url);
  auto bad = [&](const std::string& why) {
    return absl::InvalidArgumentError("URL \"" + u + "\": " + why);
  };
  UrlParts p;
  const size_t colon = u.find("://");
  if (colon == std::string::npos) return bad("no scheme (want https://HOST/...)");
  p.scheme = absl::AsciiStrToLower(u.substr(0, colon));
  if (p.scheme != "https" && p.scheme != "http") return bad("the scheme must be http or https");
  std::string rest = u.substr(colon + 3);
  const size_t frag = rest.find('#');
  if (frag != std::string::npos) rest.resize(frag);
  const size_t q = rest.find('?');
  if (q != std::string::npos) {
    p.query = rest.substr(q + 1);
    rest.resize(q);
  }
  const size_t slash = rest.find('/');
  std::string authority = rest.substr(0, slash);
  p.path = slash == std::string::npos ? "" : rest.substr(slash);
  if (authority.find('@') != std::string::npos) return bad("credentials in the URL are refused");
  std::string port_str;
  if (!authority.empty() && authority[0] == '[') {
    const size_t close = authority.find(']');
    if (close == std::string::npos) return bad("unterminated [IPv6] host");
    p.host = authority.substr(1, close - 1);
    const std::string after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') return bad("junk after the [IPv6] host");
      port_str = after.substr(1);
    }
  } else {
    const size_t c = authority.rfind(':');
    p.host = authority.substr(0, c);
    if (c != std::string::npos) port_str = authority.substr(c + 1);
  }
  if (p.host.empty()) return bad("no host");
  p.host = absl::AsciiStrToLower(p.host);
  if (!port_str.empty()) {
    if (!absl::SimpleAtoi(port_str, &p.port) || p.port <= 0 || p.port > 65535) {
      return bad("bad port \"" + port_str + "\"");
    }
  } else {
    p.port = p.scheme == "https" ? 443 : 80;
  }
  return p;
}

std::string PercentEncode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

}  // namespace miglet
