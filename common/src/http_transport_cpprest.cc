// HttpTransport over cpprestsdk's client. Every cpprest/boost exception is caught in this file
// and becomes a TransportError; no cpprest type leaves it.
#include <cpprest/containerstream.h>
#include <cpprest/http_client.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <map>
#include <mutex>

#include "absl/strings/match.h"
#include "miglet/common/http_transport.h"

namespace miglet {

namespace http = web::http;
namespace client = web::http::client;
namespace ssl = boost::asio::ssl;

namespace {

void ConfigureTls(ssl::context& ctx, const TlsOptions& tls) {
  if (!tls.ca_pem.empty()) ctx.add_certificate_authority(boost::asio::buffer(tls.ca_pem));
  if (!tls.client_cert_pem.empty()) {
    ctx.use_certificate_chain(boost::asio::buffer(tls.client_cert_pem));
    ctx.use_private_key(boost::asio::buffer(tls.client_key_pem), ssl::context::pem);
  }
}

// What a failed TLS handshake was about, found by doing one ourselves with the same trust:
// cpprest only says "Error in SSL handshake". Bounded by `deadline`: a server that accepts and
// then stalls must not hold the caller's thread.
std::string DiagnoseTls(const UrlParts& url, const TlsOptions& tls,
                        std::chrono::milliseconds deadline = std::chrono::seconds(5)) {
  try {
    boost::asio::io_context io;
    ssl::context ctx(ssl::context::tls_client);
    ctx.set_verify_mode(ssl::verify_peer);
    ctx.set_default_verify_paths();
    ConfigureTls(ctx, tls);
    ssl::stream<boost::asio::ip::tcp::socket> stream(io, ctx);
    SSL_set_tlsext_host_name(stream.native_handle(), url.host.c_str());
    boost::asio::ip::tcp::resolver resolver(io);
    const auto endpoints = resolver.resolve(url.host, std::to_string(url.port));
    boost::system::error_code ec = boost::asio::error::would_block;
    bool done = false;
    boost::asio::async_connect(
        stream.next_layer(), endpoints, [&](const boost::system::error_code& e, const auto&) {
          if (e) {
            ec = e;
            done = true;
            return;
          }
          stream.async_handshake(ssl::stream_base::client, [&](const boost::system::error_code& h) {
            ec = h;
            done = true;
          });
        });
    io.run_for(deadline);
    if (!done)
      return "TLS diagnosis: no handshake within " + std::to_string(deadline.count()) + " ms";
    const long vr = SSL_get_verify_result(stream.native_handle());
    if (vr != X509_V_OK) {
      return std::string("the server's certificate failed verification against the CA from ") +
             (tls.ca_source.empty() ? "the system store" : tls.ca_source) + ": " +
             X509_verify_cert_error_string(vr);
    }
    if (ec) return "TLS handshake: " + ec.message();
    return "";
  } catch (const std::exception& e) {
    return std::string("TLS diagnosis: ") + e.what();
  }
}

// cpprest's asio client names the stage that failed in its message (report_error in
// http_client_asio.cpp), maps timer expiry to errc::timed_out, and passes the asio error's value
// on (its category is lost). This is the one place those are read; everything above works on
// the TransportFailure.
TransportFailure Classify(const http::http_exception& e) {
  const int value = e.error_code().value();
  if (e.error_code() == std::errc::timed_out) return TransportFailure::kTimeout;
  const std::string m = e.what();
  if (absl::StartsWith(m, "Error resolving address") ||
      absl::StartsWith(m, "Failed to resolve address") ||
      absl::StartsWith(m, "Failed to connect to any resolved endpoint")) {
    return TransportFailure::kConnect;
  }
  if (absl::StartsWith(m, "Error in SSL handshake")) {
    // An OpenSSL error (certificate, protocol) has a packed value far above any errno; a reset
    // or EOF during the handshake (a server restarting) has an errno-sized one, and no request
    // was sent: that is a failed connection, worth another try.
    return value > 4095 ? TransportFailure::kTls : TransportFailure::kConnect;
  }
  if (absl::StartsWith(m, "Failed to write request")) return TransportFailure::kSend;
  if (absl::StartsWith(m, "Request canceled by user")) return TransportFailure::kCancelled;
  return TransportFailure::kReceive;
}

HttpHeaders FromCpprest(const http::http_headers& h) {
  HttpHeaders out;
  for (const auto& [k, v] : h) out.Add(k, v);
  return out;
}

class CpprestBodyStream final : public HttpBodyStream {
 public:
  CpprestBodyStream(std::unique_ptr<client::http_client> c, http::http_response resp,
                    pplx::cancellation_token_source cts)
      : client_(std::move(c)),
        resp_(std::move(resp)),
        headers_(FromCpprest(resp_.headers())),
        body_(resp_.body()),
        cts_(std::move(cts)) {}
  ~CpprestBodyStream() override {
    Cancel();
    try {
      // Let cpprest finish tearing the connection down before its client goes.
      resp_.content_ready().wait();
    } catch (...) {
    }
  }

  int status() const override { return resp_.status_code(); }
  const HttpHeaders& headers() const override { return headers_; }

  absl::StatusOr<std::optional<std::string>> ReadLine() override {
    if (cancelled_) return TransportError(TransportFailure::kCancelled, "cancelled");
    try {
      concurrency::streams::container_buffer<std::string> buf;
      const size_t n = body_.read_line(buf).get();
      std::string line = std::move(buf.collection());
      if (n == 0 && line.empty() && body_.is_eof()) return std::optional<std::string>();
      if (!line.empty() && line.back() == '\r') line.pop_back();
      return std::optional<std::string>(std::move(line));
    } catch (const std::exception& e) {
      if (cancelled_) return TransportError(TransportFailure::kCancelled, "cancelled");
      return TransportError(TransportFailure::kReceive, std::string("stream broken: ") + e.what());
    }
  }

  absl::StatusOr<std::string> ReadAll() override {
    try {
      concurrency::streams::container_buffer<std::string> buf;
      body_.read_to_end(buf).get();
      return std::move(buf.collection());
    } catch (const std::exception& e) {
      if (cancelled_) return TransportError(TransportFailure::kCancelled, "cancelled");
      return TransportError(TransportFailure::kReceive, std::string("reading body: ") + e.what());
    }
  }

  void Cancel() override {
    cancelled_ = true;
    try {
      cts_.cancel();
    } catch (...) {
    }
  }

 private:
  std::unique_ptr<client::http_client> client_;
  http::http_response resp_;
  HttpHeaders headers_;
  concurrency::streams::istream body_;
  pplx::cancellation_token_source cts_;
  std::atomic<bool> cancelled_{false};
};

class CpprestTransport final : public HttpTransport {
 public:
  CpprestTransport(TransportOptions o, UrlParts base)
      : opts_(std::move(o)), base_(std::move(base)) {
    // A trailing slash on the prefix would double up with the target's leading one.
    while (!base_.path.empty() && base_.path.back() == '/') base_.path.pop_back();
  }

  absl::Status Init() {
    try {
      ssl::context ctx(ssl::context::tls_client);
      ConfigureTls(ctx, opts_.tls);
    } catch (const std::exception& e) {
      std::string which =
          opts_.tls.ca_source.empty() ? "" : " (CA from " + opts_.tls.ca_source + ")";
      return absl::InvalidArgumentError("TLS material for " + opts_.base_url + which + ": " +
                                        e.what());
    }
    return absl::OkStatus();
  }

  const std::string& base_url() const override { return opts_.base_url; }

  absl::StatusOr<ClientResponse> Send(const ClientRequest& req) override {
    auto target = Target(req.target);
    if (!target.ok()) return target.status();
    const Duration timeout = req.timeout.value_or(opts_.timeout);
    auto c = ClientFor(timeout);
    if (!c.ok()) return c.status();
    auto built = Build(req, *target);
    if (!built.ok()) return built.status();
    try {
      http::http_response resp = (*c)->request(*built).get();
      ClientResponse out;
      out.status = resp.status_code();
      out.headers = FromCpprest(resp.headers());
      out.body = resp.extract_utf8string(true).get();
      return out;
    } catch (const std::exception& e) {
      return Failure(e);
    }
  }

  absl::StatusOr<std::unique_ptr<HttpBodyStream>> Open(const ClientRequest& req) override {
    auto target = Target(req.target);
    if (!target.ok()) return target.status();
    // A client of its own: a long-lived stream gets its own timeout and connection.
    std::unique_ptr<client::http_client> c;
    try {
      c = std::make_unique<client::http_client>(base_.Origin(),
                                                Config(req.timeout.value_or(opts_.timeout)));
    } catch (const std::exception& e) {
      return absl::InvalidArgumentError(opts_.base_url + ": " + e.what());
    }
    auto built = Build(req, *target);
    if (!built.ok()) return built.status();
    pplx::cancellation_token_source cts;
    try {
      http::http_response resp = c->request(*built, cts.get_token()).get();
      return std::unique_ptr<HttpBodyStream>(
          new CpprestBodyStream(std::move(c), std::move(resp), std::move(cts)));
    } catch (const std::exception& e) {
      return Failure(e);
    }
  }

 private:
  // The path and query to request on the base origin.
  absl::StatusOr<std::string> Target(const std::string& t) const {
    if (absl::StartsWith(t, "/")) return base_.path + t;
    if (t.empty()) return base_.path.empty() ? std::string("/") : base_.path;
    auto u = ParseUrl(t);
    if (!u.ok()) return u.status();
    if (u->Origin() != base_.Origin()) {
      return absl::InvalidArgumentError("refusing to send a request for " + u->Origin() +
                                        " through the transport for " + base_.Origin());
    }
    return (u->path.empty() ? "/" : u->path) + (u->query.empty() ? "" : "?" + u->query);
  }

  // A bad target or header is the caller's error, not the network's: INVALID_ARGUMENT, never
  // retried.
  absl::StatusOr<http::http_request> Build(const ClientRequest& req,
                                           const std::string& target) const {
    try {
      http::http_request r(req.method);
      r.set_request_uri(target);
      std::string content_type = "application/json";
      for (const auto& [k, v] : req.headers.entries()) {
        if (absl::EqualsIgnoreCase(k, "Content-Type")) {
          content_type = v;
          continue;
        }
        r.headers().add(k, v);
      }
      if (!req.body.empty()) r.set_body(req.body, content_type);
      return r;
    } catch (const std::exception& e) {
      return absl::InvalidArgumentError(req.method + " " + target + ": " + e.what());
    }
  }

  client::http_client_config Config(Duration timeout) const {
    client::http_client_config c;
    c.set_timeout(std::chrono::duration_cast<std::chrono::microseconds>(timeout));
    c.set_validate_certificates(!opts_.tls.insecure_skip_verify);
    TlsOptions tls = opts_.tls;
    c.set_ssl_context_callback([tls](ssl::context& ctx) {
      try {
        ConfigureTls(ctx, tls);
      } catch (...) {
        // Checked in Init(); a failure here shows up as a handshake error.
      }
    });
    return c;
  }

  // One pooled client per timeout value (cpprest fixes the timeout per client). Callers use a
  // handful of values; past 16, one is dropped (requests in flight keep theirs alive).
  absl::StatusOr<std::shared_ptr<client::http_client>> ClientFor(Duration timeout) {
    std::lock_guard l(mu_);
    auto it = clients_.find(timeout.count());
    if (it != clients_.end()) return it->second;
    if (clients_.size() >= 16) clients_.erase(std::prev(clients_.end()));
    try {
      auto c = std::make_shared<client::http_client>(base_.Origin(), Config(timeout));
      clients_.emplace(timeout.count(), c);
      return c;
    } catch (const std::exception& e) {
      return absl::InvalidArgumentError(opts_.base_url + ": " + e.what());
    }
  }

  absl::Status Failure(const std::exception& e) const {
    const auto* he = dynamic_cast<const http::http_exception*>(&e);
    if (he == nullptr) {
      // Not cpprest's report of a failed exchange: a plain error, not a network failure.
      return absl::InternalError(std::string("HTTP client: ") + e.what());
    }
    const TransportFailure f = Classify(*he);
    std::string m = e.what();
    if (f == TransportFailure::kTls && !opts_.tls.insecure_skip_verify) {
      const std::string why = DiagnoseTls(base_, opts_.tls);
      if (!why.empty()) m += " (" + why + ")";
    }
    return TransportError(f, m);
  }

  TransportOptions opts_;
  UrlParts base_;
  std::mutex mu_;
  std::map<int64_t, std::shared_ptr<client::http_client>> clients_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<HttpTransport>> MakeHttpTransport(TransportOptions options) {
  auto base = ParseUrl(options.base_url);
  if (!base.ok()) return base.status();
  if (!base->query.empty()) {
    return absl::InvalidArgumentError("base URL \"" + options.base_url + "\" has a query");
  }
  auto t = std::make_unique<CpprestTransport>(std::move(options), std::move(*base));
  if (auto s = t->Init(); !s.ok()) return s;
  return std::unique_ptr<HttpTransport>(std::move(t));
}

}  // namespace miglet
