#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "miglet/common/clock.h"

// A small HTTP interface of our own. cpprestsdk sits behind it (it is in maintenance mode
// upstream), so the transport can be swapped without touching its users, and no cpprest
// exception escapes: failures come back as absl::Status.
namespace miglet {

struct HttpRequest {
  std::string method;  // GET, POST, ...
  std::string path;    // decoded path, no query
  std::map<std::string, std::string> query;
  std::string body;
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

std::unique_ptr<HttpServer> MakeHttpServer(std::string host, int port, HttpHandler handler);

class HttpClient {
 public:
  virtual ~HttpClient() = default;
  // Any HTTP status is a successful exchange; transport failures are errors (UNAVAILABLE,
  // DEADLINE_EXCEEDED).
  virtual absl::StatusOr<HttpResponse> Do(std::string_view method, std::string_view path_and_query,
                                          std::string_view body) = 0;
};

// base_url like "http://127.0.0.1:8080".
absl::StatusOr<std::unique_ptr<HttpClient>> MakeHttpClient(std::string base_url, Duration timeout);

// Sizes the HTTP library's shared thread pool (cpprestsdk defaults to 40 threads). Call once,
// before any server or client is made; later calls do nothing.
void InitHttpThreads(size_t n);

// A JSON error body: {"error": {"code": code, "message": message}}.
HttpResponse JsonError(int status, std::string_view code, std::string_view message);

}  // namespace miglet
