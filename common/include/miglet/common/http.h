#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "miglet/common/clock.h"
#include "miglet/common/http_transport.h"

// A small HTTP server interface of our own (the client side is http_transport.h). cpprestsdk
// sits behind it (it is in maintenance mode upstream), so it can be swapped without touching
// its users, and no cpprest exception escapes: failures come back as absl::Status.
namespace miglet {

struct HttpRequest {
  std::string method;  // GET, POST, ...
  std::string path;    // decoded path, no query
  std::map<std::string, std::string> query;
  std::string body;
  std::string authorization;  // the Authorization header, "" when none
};

struct HttpResponse {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
};

// Handlers reply exactly once, from any thread, possibly later (long polls, waits on acks).
using HttpReply = std::function<void(HttpResponse)>;
using HttpHandler = std::function<void(const HttpRequest&, HttpReply)>;

class HttpServer {
 public:
  virtual ~HttpServer() = default;
  // Starts listening; returns the bound port (useful when asked for port 0).
  virtual absl::StatusOr<int> Start() = 0;
  virtual void Stop() = 0;
};

// HTTPS from a certificate (chain) and key in PEM files, read again for each new connection, so
// a certificate renewed on disk is served without a restart. Empty: plain HTTP.
struct HttpServerTls {
  std::string cert_file;
  std::string key_file;
  bool enabled() const { return !cert_file.empty(); }
};

std::unique_ptr<HttpServer> MakeHttpServer(std::string host, int port, HttpHandler handler,
                                           HttpServerTls tls = {});

// Sizes the HTTP library's shared thread pool (cpprestsdk defaults to 40 threads). Call once,
// before any server or client is made; later calls do nothing.
void InitHttpThreads(size_t n);

// A JSON error body: {"error": {"code": code, "message": message}}.
HttpResponse JsonError(int status, std::string_view code, std::string_view message);

// The token of an `Authorization: Bearer <token>` header (or gRPC `authorization` metadata);
// "" for any other or none.
std::string BearerToken(std::string_view authorization);

// A request refused for who asks: its HTTP status (401 UNAUTHENTICATED, 403 PERMISSION_DENIED,
// 503 otherwise: they could not be checked now) and the reason it is counted under
// ("unauthenticated", "permission_denied", "auth_unavailable").
struct Refusal {
  int http_status;
  const char* reason;
};
Refusal RefusalOf(const absl::Status& st);

}  // namespace miglet
