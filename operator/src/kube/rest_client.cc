// KubeClient over cpprestsdk. Every cpprest/boost exception is caught in this file and becomes
// an absl::Status; no cpprest type leaves it.
#include <cpprest/containerstream.h>
#include <cpprest/http_client.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/stat.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <fstream>
#include <mutex>
#include <sstream>

#include "miglet/operator/kube/errors.h"
#include "miglet/operator/kube/kube_client.h"
#include "watch_parser.h"

namespace miglet::kube {

namespace http = web::http;
namespace client = web::http::client;
namespace ssl = boost::asio::ssl;

std::string ObjectKey(const Json& obj) {
  const auto& md = obj.contains("metadata") ? obj["metadata"] : Json::object();
  const std::string ns = md.value("namespace", "");
  const std::string name = md.value("name", "");
  return ns.empty() ? name : ns + "/" + name;
}

std::string ResourceVersionOf(const Json& obj) {
  if (!obj.contains("metadata")) return "";
  return obj["metadata"].value("resourceVersion", "");
}

absl::StatusOr<ListResult> KubeClient::ListAll(const Resource& r, const std::string& ns,
                                               ListOptions opts) {
  ListResult all;
  while (true) {
    auto page = List(r, ns, opts);
    if (!page.ok()) return page.status();
    for (auto& item : page->items) all.items.push_back(std::move(item));
    all.resource_version = page->resource_version;
    if (page->continue_token.empty()) break;
    opts.continue_token = page->continue_token;
    // The continue token pins the snapshot; a resourceVersion must not be sent with it.
    opts.resource_version.clear();
  }
  return all;
}

namespace {

std::string Enc(const std::string& s) { return web::uri::encode_data_string(s); }

std::string Path(const Resource& r, const std::string& ns, const std::string& name,
                 const std::string& sub) {
  std::string p = r.group.empty() ? "/api/" + r.version : "/apis/" + r.group + "/" + r.version;
  if (r.namespaced && !ns.empty()) p += "/namespaces/" + Enc(ns);
  p += "/" + r.resource;
  if (!name.empty()) p += "/" + Enc(name);
  if (!sub.empty()) p += "/" + sub;
  return p;
}

std::string What(const std::string& method, const Resource& r, const std::string& ns,
                 const std::string& name, const std::string& sub) {
  std::string w = method + " " + r.resource;
  if (!sub.empty()) w += "/" + sub;
  if (!name.empty()) w += " " + (r.namespaced && !ns.empty() ? ns + "/" : "") + name;
  return w;
}

class Query {
 public:
  Query& Add(const std::string& k, const std::string& v) {
    if (v.empty()) return *this;
    q_ += (q_.empty() ? "?" : "&") + Enc(k) + "=" + Enc(v);
    return *this;
  }
  const std::string& str() const { return q_; }

 private:
  std::string q_;
};

std::string NameOf(const Json& obj) {
  if (!obj.is_object() || !obj.contains("metadata")) return "";
  return obj["metadata"].value("name", "");
}

struct RawResponse {
  int status = 0;
  std::string body;
  std::string retry_after;
};

// What a failed TLS handshake was about, found by doing one ourselves with the same CA: cpprest
// only says "handshake failed".
std::string DiagnoseTls(const KubeConfig& cfg) {
  try {
    web::uri u(cfg.server);
    boost::asio::io_context io;
    ssl::context ctx(ssl::context::tls_client);
    ctx.set_verify_mode(ssl::verify_peer);
    if (!cfg.ca_pem.empty()) {
      ctx.add_certificate_authority(boost::asio::buffer(cfg.ca_pem));
    } else {
      ctx.set_default_verify_paths();
    }
    ssl::stream<boost::asio::ip::tcp::socket> stream(io, ctx);
    boost::asio::ip::tcp::resolver resolver(io);
    boost::asio::connect(stream.next_layer(),
                         resolver.resolve(u.host(), std::to_string(u.port() ? u.port() : 443)));
    boost::system::error_code ec;
    stream.handshake(ssl::stream_base::client, ec);
    const long vr = SSL_get_verify_result(stream.native_handle());
    if (vr != X509_V_OK) {
      return std::string("the server's certificate failed verification against the CA from ") +
             (cfg.ca_source.empty() ? "the system store" : cfg.ca_source) + ": " +
             X509_verify_cert_error_string(vr);
    }
    if (ec) return "TLS handshake: " + ec.message();
    return "";
  } catch (const std::exception& e) {
    return std::string("TLS diagnosis: ") + e.what();
  }
}

class CpprestKubeClient;

class CpprestWatchStream final : public WatchStream {
 public:
  CpprestWatchStream(std::unique_ptr<client::http_client> c, http::http_response resp,
                     pplx::cancellation_token_source cts, std::string what)
      : client_(std::move(c)),
        resp_(std::move(resp)),
        body_(resp_.body()),
        cts_(std::move(cts)),
        what_(std::move(what)) {}
  ~CpprestWatchStream() override {
    Cancel();
    try {
      // Let cpprest finish tearing the connection down before the client goes.
      resp_.content_ready().wait();
    } catch (...) {
    }
  }

  absl::StatusOr<std::optional<WatchEvent>> Next() override {
    while (true) {
      if (cancelled_) return absl::CancelledError(what_ + ": cancelled");
      std::string line;
      try {
        concurrency::streams::container_buffer<std::string> buf;
        const size_t n = body_.read_line(buf).get();
        line = std::move(buf.collection());
        if (n == 0 && line.empty() && body_.is_eof()) return std::nullopt;
      } catch (const std::exception& e) {
        if (cancelled_) return absl::CancelledError(what_ + ": cancelled");
        return absl::UnavailableError(what_ + ": stream broken: " + e.what());
      }
      if (line.find_first_not_of(" \r\t") == std::string::npos) {
        if (body_.is_eof()) return std::nullopt;
        continue;
      }
      auto ev = ParseWatchLine(line);
      if (!ev.ok()) return ev.status();
      return std::optional<WatchEvent>(std::move(*ev));
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
  concurrency::streams::istream body_;
  pplx::cancellation_token_source cts_;
  std::string what_;
  std::atomic<bool> cancelled_{false};
};

class CpprestKubeClient final : public KubeClient {
 public:
  explicit CpprestKubeClient(KubeConfig cfg) : cfg_(std::move(cfg)) {}

  absl::Status Init() {
    // Load the PEMs once here, so a bad one is reported now and by name rather than as a
    // handshake failure on the first request.
    try {
      ssl::context ctx(ssl::context::tls_client);
      Configure(ctx);
    } catch (const std::exception& e) {
      return absl::InvalidArgumentError("kube client TLS setup (" + cfg_.context +
                                        "): " + e.what());
    }
    if (cfg_.server.rfind("https://", 0) != 0 && cfg_.server.rfind("http://", 0) != 0) {
      return absl::InvalidArgumentError("kube client: server \"" + cfg_.server +
                                        "\" is not an http(s) URL");
    }
    try {
      client_ = std::make_unique<client::http_client>(cfg_.server,
                                                      MakeConfig(cfg_.request_timeout_seconds));
    } catch (const std::exception& e) {
      return absl::InvalidArgumentError("kube client: server " + cfg_.server + ": " + e.what());
    }
    return absl::OkStatus();
  }

  absl::StatusOr<Json> Get(const Resource& r, const std::string& ns, const std::string& name,
                           const std::string& sub) override {
    return JsonCall("GET", Path(r, ns, name, sub), "", "", What("GET", r, ns, name, sub));
  }

  absl::StatusOr<ListResult> List(const Resource& r, const std::string& ns,
                                  const ListOptions& o) override {
    Query q;
    q.Add("labelSelector", o.label_selector)
        .Add("fieldSelector", o.field_selector)
        .Add("limit", o.limit > 0 ? std::to_string(o.limit) : "")
        .Add("continue", o.continue_token)
        .Add("resourceVersion", o.resource_version);
    auto j = JsonCall("GET", Path(r, ns, "", "") + q.str(), "", "", What("LIST", r, ns, "", ""));
    if (!j.ok()) return j.status();
    ListResult out;
    if (j->contains("metadata")) {
      out.resource_version = (*j)["metadata"].value("resourceVersion", "");
      out.continue_token = (*j)["metadata"].value("continue", "");
    }
    if (j->contains("items") && (*j)["items"].is_array()) {
      out.items.reserve((*j)["items"].size());
      for (auto& item : (*j)["items"]) {
        // Items of a list carry no apiVersion/kind; watch events do. Make them alike.
        if (!item.contains("kind")) item["kind"] = r.kind;
        if (!item.contains("apiVersion")) item["apiVersion"] = r.ApiVersion();
        out.items.push_back(std::move(item));
      }
    }
    return out;
  }

  absl::StatusOr<Json> Create(const Resource& r, const std::string& ns, const Json& obj) override {
    return JsonCall("POST", Path(r, ns, "", ""), obj.dump(), "application/json",
                    What("CREATE", r, ns, NameOf(obj), ""));
  }

  absl::StatusOr<Json> Update(const Resource& r, const std::string& ns, const Json& obj,
                              const std::string& sub) override {
    const std::string name = NameOf(obj);
    if (name.empty()) return absl::InvalidArgumentError("update: object has no metadata.name");
    return JsonCall("PUT", Path(r, ns, name, sub), obj.dump(), "application/json",
                    What("UPDATE", r, ns, name, sub));
  }

  absl::StatusOr<Json> Patch(const Resource& r, const std::string& ns, const std::string& name,
                             PatchType type, const Json& patch, const std::string& sub) override {
    const char* ct = type == PatchType::kMerge  ? "application/merge-patch+json"
                     : type == PatchType::kJson ? "application/json-patch+json"
                                                : "application/strategic-merge-patch+json";
    return JsonCall("PATCH", Path(r, ns, name, sub), patch.dump(), ct,
                    What("PATCH", r, ns, name, sub));
  }

  absl::StatusOr<Json> Apply(const Resource& r, const std::string& ns, const Json& obj,
                             const ApplyOptions& o, const std::string& sub) override {
    const std::string name = NameOf(obj);
    if (name.empty()) return absl::InvalidArgumentError("apply: object has no metadata.name");
    if (o.field_manager.empty())
      return absl::InvalidArgumentError("apply: field_manager is required");
    Query q;
    q.Add("fieldManager", o.field_manager).Add("force", o.force ? "true" : "");
    // JSON is YAML, so the apply body can be the JSON object as is.
    return JsonCall("PATCH", Path(r, ns, name, sub) + q.str(), obj.dump(),
                    "application/apply-patch+yaml", What("APPLY", r, ns, name, sub));
  }

  absl::Status Delete(const Resource& r, const std::string& ns, const std::string& name,
                      const DeleteOptions& o) override {
    Json body = {{"kind", "DeleteOptions"}, {"apiVersion", "v1"}};
    if (!o.propagation_policy.empty()) body["propagationPolicy"] = o.propagation_policy;
    if (!o.precondition_resource_version.empty()) {
      body["preconditions"] = {{"resourceVersion", o.precondition_resource_version}};
    }
    if (o.grace_period_seconds) body["gracePeriodSeconds"] = *o.grace_period_seconds;
    auto j = JsonCall("DELETE", Path(r, ns, name, ""), body.dump(), "application/json",
                      What("DELETE", r, ns, name, ""));
    return j.status();
  }

  absl::StatusOr<std::unique_ptr<WatchStream>> Watch(const Resource& r, const std::string& ns,
                                                     const WatchOptions& o) override {
    Query q;
    q.Add("watch", "true")
        .Add("labelSelector", o.label_selector)
        .Add("fieldSelector", o.field_selector)
        .Add("resourceVersion", o.resource_version)
        .Add("allowWatchBookmarks", o.allow_bookmarks ? "true" : "")
        .Add("timeoutSeconds", o.timeout_seconds > 0 ? std::to_string(o.timeout_seconds) : "");
    const std::string what = What("WATCH", r, ns, "", "") + " from rv " +
                             (o.resource_version.empty() ? "\"\"" : o.resource_version);
    // A client of its own: its timeout must outlast the server's timeoutSeconds.
    const int timeout = o.timeout_seconds > 0 ? o.timeout_seconds + 60 : 3600;
    std::unique_ptr<client::http_client> c;
    try {
      c = std::make_unique<client::http_client>(cfg_.server, MakeConfig(timeout));
    } catch (const std::exception& e) {
      return absl::InvalidArgumentError(what + ": " + e.what());
    }
    pplx::cancellation_token_source cts;
    http::http_response resp;
    try {
      http::http_request req(http::methods::GET);
      req.set_request_uri(Path(r, ns, "", "") + q.str());
      AddHeaders(req, "");
      resp = c->request(req, cts.get_token()).get();
    } catch (const std::exception& e) {
      return TransportError(what, e);
    }
    if (resp.status_code() != 200) {
      std::string body;
      try {
        body = resp.extract_utf8string(true).get();
      } catch (const std::exception&) {
      }
      return StatusFromResponse(resp.status_code(), body, RetryAfterHeader(resp), what);
    }
    return std::unique_ptr<WatchStream>(
        new CpprestWatchStream(std::move(c), std::move(resp), std::move(cts), what));
  }

 private:
  void Configure(ssl::context& ctx) const {
    if (!cfg_.ca_pem.empty()) ctx.add_certificate_authority(boost::asio::buffer(cfg_.ca_pem));
    if (!cfg_.client_cert_pem.empty()) {
      ctx.use_certificate_chain(boost::asio::buffer(cfg_.client_cert_pem));
      ctx.use_private_key(boost::asio::buffer(cfg_.client_key_pem), ssl::context::pem);
    }
  }

  client::http_client_config MakeConfig(int timeout_seconds) const {
    client::http_client_config c;
    c.set_timeout(std::chrono::seconds(timeout_seconds));
    c.set_validate_certificates(!cfg_.insecure_skip_tls_verify);
    KubeConfig cfg = cfg_;
    c.set_ssl_context_callback([cfg](ssl::context& ctx) {
      try {
        if (!cfg.ca_pem.empty()) ctx.add_certificate_authority(boost::asio::buffer(cfg.ca_pem));
        if (!cfg.client_cert_pem.empty()) {
          ctx.use_certificate_chain(boost::asio::buffer(cfg.client_cert_pem));
          ctx.use_private_key(boost::asio::buffer(cfg.client_key_pem), ssl::context::pem);
        }
      } catch (...) {
        // Checked in Init(); a failure here shows up as a handshake error.
      }
    });
    return c;
  }

  std::string Token() {
    if (cfg_.token_file.empty()) return cfg_.token;
    std::lock_guard l(token_mu_);
    struct stat st {};
    if (::stat(cfg_.token_file.c_str(), &st) == 0 &&
        (st.st_mtim.tv_sec != token_mtime_.tv_sec || st.st_mtim.tv_nsec != token_mtime_.tv_nsec ||
         st.st_size != token_size_ || token_cache_.empty())) {
      std::ifstream in(cfg_.token_file);
      std::stringstream ss;
      ss << in.rdbuf();
      std::string t = ss.str();
      while (!t.empty() && (t.back() == '\n' || t.back() == '\r' || t.back() == ' ')) t.pop_back();
      if (!t.empty()) {
        token_cache_ = t;
        token_mtime_ = st.st_mtim;
        token_size_ = st.st_size;
      }
    }
    return token_cache_.empty() ? cfg_.token : token_cache_;
  }

  void AddHeaders(http::http_request& req, const std::string& content_type) {
    req.headers().add("Accept", "application/json");
    req.headers().add("User-Agent", "mig-controller/0.1 (miglet kube client)");
    const std::string token = Token();
    if (!token.empty()) req.headers().add("Authorization", "Bearer " + token);
    if (!content_type.empty()) req.headers().set_content_type(content_type);
  }

  static std::string RetryAfterHeader(const http::http_response& resp) {
    auto it = resp.headers().find("Retry-After");
    return it == resp.headers().end() ? "" : it->second;
  }

  absl::Status TransportError(const std::string& what, const std::exception& e) const {
    std::string msg = e.what();
    std::string m = what + ": cannot reach " + cfg_.server + ": " + msg;
    std::string lower = msg;
    for (auto& ch : lower) ch = static_cast<char>(std::tolower(ch));
    if (lower.find("ssl") != std::string::npos || lower.find("handshake") != std::string::npos ||
        lower.find("certificate") != std::string::npos) {
      const std::string why = DiagnoseTls(cfg_);
      if (!why.empty()) m += " (" + why + ")";
      return absl::UnavailableError(m);
    }
    if (lower.find("timed out") != std::string::npos ||
        lower.find("timeout") != std::string::npos) {
      return absl::DeadlineExceededError(m);
    }
    return absl::UnavailableError(m);
  }

  absl::StatusOr<RawResponse> Do(const std::string& method, const std::string& path_and_query,
                                 const std::string& body, const std::string& content_type,
                                 const std::string& what) {
    // A pooled keep-alive connection the server has since closed (it restarted, or timed the
    // connection out) fails on first use. When the request cannot have reached the server
    // (writing it failed), or it is a read, try again on a fresh connection, like Go's
    // http.Transport does.
    for (int attempt = 0;; ++attempt) {
      RawResponse out;
      try {
        http::http_request req(method);
        req.set_request_uri(path_and_query);
        AddHeaders(req, content_type);
        if (!body.empty()) {
          req.set_body(body, content_type.empty() ? "application/json" : content_type);
        }
        http::http_response resp = client_->request(req).get();
        out.status = resp.status_code();
        out.retry_after = RetryAfterHeader(resp);
        out.body = resp.extract_utf8string(true).get();
        return out;
      } catch (const std::exception& e) {
        const std::string m = e.what();
        const bool not_sent = m.find("Failed to write request") != std::string::npos;
        if (attempt < 3 && (not_sent || method == "GET")) continue;
        return TransportError(what, e);
      }
    }
  }

  absl::StatusOr<Json> JsonCall(const std::string& method, const std::string& path,
                                const std::string& body, const std::string& content_type,
                                const std::string& what) {
    auto r = Do(method, path, body, content_type, what);
    if (!r.ok()) return r.status();
    if (r->status < 200 || r->status >= 300) {
      return StatusFromResponse(r->status, r->body, r->retry_after, what);
    }
    if (r->body.empty()) return Json::object();
    auto j = Json::parse(r->body, nullptr, false);
    if (j.is_discarded()) return absl::DataLossError(what + ": response is not JSON");
    return j;
  }

  KubeConfig cfg_;
  std::unique_ptr<client::http_client> client_;
  std::mutex token_mu_;
  std::string token_cache_;
  timespec token_mtime_{};
  off_t token_size_ = 0;
};

}  // namespace

absl::StatusOr<std::unique_ptr<KubeClient>> MakeKubeClient(const KubeConfig& config) {
  auto c = std::make_unique<CpprestKubeClient>(config);
  if (auto s = c->Init(); !s.ok()) return s;
  return std::unique_ptr<KubeClient>(std::move(c));
}

}  // namespace miglet::kube
