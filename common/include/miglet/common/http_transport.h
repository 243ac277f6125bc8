#pragma once

#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "miglet/common/backoff.h"
#include "miglet/common/clock.h"

// The one HTTP client transport of both programs: the Kubernetes client, the GitHub client and
// the agent's HTTP fallback all send through it. It carries headers both ways, speaks TLS with
// a given CA and client certificate, bounds each request by a timeout, and reports a failure as
// a typed TransportFailure, so that retry decisions are made on types rather than on the HTTP
// library's message strings. cpprestsdk sits behind it (see http_cpprest.cc); nothing of
// cpprest shows through this header.
namespace miglet {

// Header names compare case-insensitively, as HTTP says; order and repeats are kept.
class HttpHeaders {
 public:
  HttpHeaders() = default;
  HttpHeaders(std::initializer_list<std::pair<std::string, std::string>> init);

  void Add(std::string name, std::string value);
  // Replaces every header of that name.
  void Set(std::string name, std::string value);
  void Remove(std::string_view name);
  // The first value of `name`, if any.
  std::optional<std::string> Get(std::string_view name) const;
  bool Has(std::string_view name) const { return Get(name).has_value(); }
  const std::vector<std::pair<std::string, std::string>>& entries() const { return entries_; }

 private:
  std::vector<std::pair<std::string, std::string>> entries_;
};

struct TlsOptions {
  std::string ca_pem;           // trusted in addition to the system store; empty: system store only
  std::string ca_source;        // where ca_pem came from, named in errors ("/etc/ca.pem")
  std::string client_cert_pem;  // a client certificate (chain) and its key, for mutual TLS
  std::string client_key_pem;
  bool insecure_skip_verify = false;
};

struct TransportOptions {
  // scheme://host[:port][/path-prefix]. Request targets are relative to it: base
  // "https://ghe.example.com/api/v3" and target "/orgs/acme" reach .../api/v3/orgs/acme.
  std::string base_url;
  TlsOptions tls;
  // How long a request may wait for the server with nothing arriving (cpprest's timer restarts
  // whenever data comes in, so a steady trickle can last longer). Per request, unless the
  // request sets its own.
  Duration timeout = std::chrono::seconds(30);
};

struct ClientRequest {
  std::string method = "GET";
  // A path and query relative to the base URL ("/api/v1/pods?limit=5"), or an absolute URL on
  // the base URL's own origin (what a Link header gives). Another origin is refused, so a
  // credential header never leaves for a host the caller did not configure.
  std::string target;
  HttpHeaders headers;
  std::string body;  // sent with headers' Content-Type (application/json when none is set)
  std::optional<Duration> timeout;
};

struct ClientResponse {
  int status = 0;
  HttpHeaders headers;
  std::string body;
};

// How an exchange failed below HTTP. A status code from the server is not a failure.
enum class TransportFailure {
  kConnect,    // no connection: name resolution, refused, unreachable. Nothing was sent.
  kTls,        // the server's certificate or the TLS protocol failed. Nothing was sent. (A
               // connection reset during the handshake is kConnect.)
  kSend,       // the connection broke while the request was written: not received whole.
  kReceive,    // the request went out; the answer did not come back whole.
  kTimeout,    // no complete answer within the timeout.
  kCancelled,  // the caller cancelled (a watch being stopped).
};

std::string_view TransportFailureName(TransportFailure f);
// The failure carried by a transport error; nullopt for any other status.
std::optional<TransportFailure> GetTransportFailure(const absl::Status& s);
// True when the server cannot have acted on the request (connect, TLS, send failures).
bool NeverReachedServer(TransportFailure f);
// A transport error: UNAVAILABLE (DEADLINE_EXCEEDED for kTimeout, CANCELLED for kCancelled)
// with the failure attached.
absl::Status TransportError(TransportFailure f, std::string_view message);

// A response whose body is read as it arrives (watches, long polls).
class HttpBodyStream {
 public:
  virtual ~HttpBodyStream() = default;
  virtual int status() const = 0;
  virtual const HttpHeaders& headers() const = 0;
  // The next line without its line ending; nullopt at the end of the body. Blocks.
  virtual absl::StatusOr<std::optional<std::string>> ReadLine() = 0;
  // The rest of the body.
  virtual absl::StatusOr<std::string> ReadAll() = 0;
  // Ends the exchange from any thread; a blocked ReadLine returns CANCELLED.
  virtual void Cancel() = 0;
};

class HttpTransport {
 public:
  virtual ~HttpTransport() = default;
  // One exchange. Any HTTP status is a completed exchange; failures below HTTP are
  // TransportErrors. Thread-safe.
  virtual absl::StatusOr<ClientResponse> Send(const ClientRequest& req) = 0;
  // Sends and returns once the status line and headers are in; the body streams.
  virtual absl::StatusOr<std::unique_ptr<HttpBodyStream>> Open(const ClientRequest& req) = 0;
  // The base URL requests are relative to.
  virtual const std::string& base_url() const = 0;

  // Convenience: a request with a JSON body (when non-empty) and no other headers.
  absl::StatusOr<ClientResponse> Do(std::string_view method, std::string_view target,
                                    std::string_view body = "");
};

// Which failures are tried again, how often, and how long to wait in between.
struct RetryPolicy {
  int max_attempts = 1;  // 1: no retry
  // A request that never reached the server (connect, send) is safe to repeat whatever its
  // method. TLS failures are not retried: a certificate does not fix itself.
  bool retry_unsent = true;
  // Methods whose requests are repeated after any failure, even when the server may have seen
  // them (their effect does not compound).
  std::set<std::string> idempotent_methods = {"GET", "HEAD", "OPTIONS", "PUT", "DELETE"};
  // Answered statuses that are tried again (e.g. 502, 503, 504) for idempotent methods; none
  // by default.
  std::set<int> retry_statuses;
  // Delays between attempts; initial 0 retries at once.
  BackoffPolicy backoff{.initial = Duration::zero(),
                        .max = Duration::zero(),
                        .multiplier = 1,
                        .jitter = 0,
                        .reset_after = Duration::zero()};
};

// Whether attempt number `attempt` (1-based) of `method`, which ended in `result`, should be
// made again under `policy`. The decision alone, without I/O.
bool ShouldRetry(const RetryPolicy& policy, std::string_view method, int attempt,
                 const absl::StatusOr<ClientResponse>& result);

// A transport that sends through `inner` and retries per `policy`, waiting on `clock`.
std::unique_ptr<HttpTransport> MakeRetryingTransport(std::unique_ptr<HttpTransport> inner,
                                                     RetryPolicy policy,
                                                     std::shared_ptr<Clock> clock);

// The cpprestsdk transport. Fails when the base URL or the TLS material is bad (the PEM is
// loaded here, so a bad one is named now and not as a handshake failure later).
absl::StatusOr<std::unique_ptr<HttpTransport>> MakeHttpTransport(TransportOptions options);

// The parts of an absolute URL; an error names what is wrong with it.
struct UrlParts {
  std::string scheme;          // "https"
  std::string host;            // "api.github.com", "127.0.0.1", "::1" (no brackets)
  int port = 0;                // explicit or the scheme's default
  std::string path;            // "/api/v3" ("" when none)
  std::string query;           // without '?'
  std::string Origin() const;  // "https://host[:port]" (port only when not the default)
};
absl::StatusOr<UrlParts> ParseUrl(std::string_view url);

// Percent-encodes all but RFC 3986's unreserved characters: for a path segment or a query key
// or value.
std::string PercentEncode(std::string_view s);

}  // namespace miglet
