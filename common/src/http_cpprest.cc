// cpprestsdk behind miglet's HttpServer/HttpClient interfaces. Every cpprest exception is
// caught here and becomes a Status or a 500 reply.
#include <cpprest/http_client.h>
#include <cpprest/http_listener.h>
#include <pplx/threadpool.h>

#include <mutex>

#include "miglet/common/http.h"
#include "miglet/common/net.h"
#include "spdlog/spdlog.h"

namespace miglet {

namespace http = web::http;
using web::http::experimental::listener::http_listener;

void InitHttpThreads(size_t n) {
  try {
    crossplat::threadpool::initialize_with_threads(n);
  } catch (const std::exception&) {
    // Already initialized: keep the existing pool.
  }
}

namespace {

// `s` with every byte that is not part of a well-formed UTF-8 sequence replaced by U+FFFD.
// Error messages quote what the client sent (a JSON parser's complaint about the body), and
// cpprest copies bytes through as they are: unchecked, the answer would not be valid JSON.
std::string ValidUtf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t n = c < 0x80                   ? 1
               : (c >= 0xC2 && c <= 0xDF) ? 2
               : (c >= 0xE0 && c <= 0xEF) ? 3
               : (c >= 0xF0 && c <= 0xF4) ? 4
                                          : 0;
    bool ok = n > 0 && i + n <= s.size();
    for (size_t k = 1; ok && k < n; ++k) {
      const auto d = static_cast<unsigned char>(s[i + k]);
      ok = (d & 0xC0) == 0x80;
      // No overlong forms, no surrogates, nothing above U+10FFFF.
      if (k == 1 && c == 0xE0) ok = ok && d >= 0xA0;
      if (k == 1 && c == 0xED) ok = ok && d < 0xA0;
      if (k == 1 && c == 0xF0) ok = ok && d >= 0x90;
      if (k == 1 && c == 0xF4) ok = ok && d < 0x90;
    }
    if (ok) {
      out.append(s.substr(i, n));
      i += n;
    } else {
      out += "\xEF\xBF\xBD";
      ++i;
    }
  }
  return out;
}

}  // namespace

HttpResponse JsonError(int status, std::string_view code, std::string_view message) {
  web::json::value err = web::json::value::object();
  err["code"] = web::json::value::string(ValidUtf8(code));
  err["message"] = web::json::value::string(ValidUtf8(message));
  web::json::value body = web::json::value::object();
  body["error"] = err;
  return HttpResponse{status, body.serialize(), "application/json"};
}

std::string BearerToken(std::string_view authorization) {
  constexpr std::string_view kBearer = "Bearer ";
  if (authorization.substr(0, kBearer.size()) != kBearer) return "";
  return std::string(authorization.substr(kBearer.size()));
}

Refusal RefusalOf(const absl::Status& st) {
  switch (st.code()) {
    case absl::StatusCode::kUnauthenticated:
      return {401, "unauthenticated"};
    case absl::StatusCode::kPermissionDenied:
      return {403, "permission_denied"};
    default:
      return {503, "auth_unavailable"};
  }
}

namespace {

// Port discovery diffs the process's listening sockets, so listeners open one at a time.
std::mutex& ListenMutex() {
  static std::mutex mu;
  return mu;
}

class CpprestHttpServer final : public HttpServer {
 public:
  CpprestHttpServer(std::string host, int port, HttpHandler handler, HttpServerTls tls)
      : host_(std::move(host)), port_(port), handler_(std::move(handler)), tls_(std::move(tls)) {}
  ~CpprestHttpServer() override { Stop(); }

  absl::StatusOr<int> Start() override {
    std::lock_guard l(ListenMutex());
    if (port_ == 0) {
      // cpprest keys its listeners by the URI asked for, so two on port 0 collide: ask for a
      // port that is free now instead.
      auto free = PickFreePort(host_);
      if (free.ok()) port_ = *free;
    }
    const auto before = ListeningTcpPorts();
    try {
      const std::string uri = std::string(tls_.enabled() ? "https://" : "http://") + host_ + ":" +
                              std::to_string(port_);
      web::http::experimental::listener::http_listener_config config;
      if (tls_.enabled()) {
        // cpprest makes a TLS context for each connection it accepts: the files are read then.
        config.set_ssl_context_callback([tls = tls_](boost::asio::ssl::context& ctx) {
          ctx.set_options(
              boost::asio::ssl::context::default_workarounds | boost::asio::ssl::context::no_sslv2 |
              boost::asio::ssl::context::no_sslv3 | boost::asio::ssl::context::no_tlsv1 |
              boost::asio::ssl::context::no_tlsv1_1);
          ctx.use_certificate_chain_file(tls.cert_file);
          ctx.use_private_key_file(tls.key_file, boost::asio::ssl::context::pem);
        });
      }
      listener_ = std::make_unique<http_listener>(uri, config);
      listener_->support([this](http::http_request req) { Dispatch(std::move(req)); });
      listener_->open().wait();
    } catch (const std::exception& e) {
      listener_.reset();
      return absl::UnavailableError("HTTP server cannot listen on " + host_ + ":" +
                                    std::to_string(port_) + ": " + e.what());
    }
    if (port_ != 0) return port_;
    std::vector<int> opened;
    for (int p : ListeningTcpPorts()) {
      if (!before.count(p)) opened.push_back(p);
    }
    if (opened.size() != 1) {
      return absl::InternalError("cannot tell which port the HTTP server was given");
    }
    port_ = opened[0];
    return port_;
  }

  void Stop() override {
    if (!listener_) return;
    try {
      listener_->close().wait();
    } catch (const std::exception& e) {
      spdlog::warn("closing HTTP listener: {}", e.what());
    }
    listener_.reset();
  }

 private:
  void Dispatch(http::http_request req) {
    HttpRequest r;
    try {
      r.method = req.method();
      r.path = web::uri::decode(req.relative_uri().path());
      for (auto& [k, v] : web::uri::split_query(req.relative_uri().query())) {
        r.query[web::uri::decode(k)] = web::uri::decode(v);
      }
      if (auto it = req.headers().find(http::header_names::authorization);
          it != req.headers().end()) {
        r.authorization = it->second;
      }
    } catch (const std::exception& e) {
      SafeReply(req, JsonError(400, "bad_request", e.what()));
      return;
    }
    req.extract_utf8string(true).then(
        [this, req, r = std::move(r)](pplx::task<std::string> body) mutable {
          try {
            r.body = body.get();
          } catch (const std::exception& e) {
            SafeReply(req, JsonError(400, "bad_request", std::string("reading body: ") + e.what()));
            return;
          }
          auto once = std::make_shared<std::once_flag>();
          try {
            handler_(r, [req, once](HttpResponse resp) mutable {
              std::call_once(*once, [&] { SafeReply(req, resp); });
            });
          } catch (const std::exception& e) {
            std::call_once(*once, [&] { SafeReply(req, JsonError(500, "internal", e.what())); });
          }
        });
  }

  static void SafeReply(http::http_request req, const HttpResponse& resp) {
    try {
      req.reply(static_cast<http::status_code>(resp.status), resp.body, resp.content_type)
          .then([](pplx::task<void> t) {
            try {
              t.get();
            } catch (const std::exception& e) {
              spdlog::debug("HTTP reply not delivered: {}", e.what());
            }
          });
    } catch (const std::exception& e) {
      spdlog::debug("HTTP reply failed: {}", e.what());
    }
  }

  std::string host_;
  int port_;
  HttpHandler handler_;
  HttpServerTls tls_;
  std::unique_ptr<http_listener> listener_;
};

}  // namespace

std::unique_ptr<HttpServer> MakeHttpServer(std::string host, int port, HttpHandler handler,
                                           HttpServerTls tls) {
  return std::make_unique<CpprestHttpServer>(std::move(host), port, std::move(handler),
                                             std::move(tls));
}

}  // namespace miglet
