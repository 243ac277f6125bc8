// KubeClient over the common HttpTransport: paths, query strings, credentials and the API's
// error bodies are handled here; connections, TLS and typed transport failures there.
#include <sys/stat.h>

#include <fstream>
#include <mutex>
#include <sstream>

#include "absl/strings/escaping.h"
#include "json_fields.h"
#include "miglet/common/http_transport.h"
#include "miglet/common/status.h"
#include "miglet/operator/kube/errors.h"
#include "miglet/operator/kube/kube_client.h"
#include "watch_parser.h"

namespace miglet::kube {

// Both read objects from watch lines as they are: a field of the wrong type is taken as unset.
std::string ObjectKey(const Json& obj) {
  if (!obj.contains("metadata")) return "";
  const Json& md = obj["metadata"];
  const std::string ns = StringField(md, "namespace");
  const std::string name = StringField(md, "name");
  return ns.empty() ? name : ns + "/" + name;
}

std::string ResourceVersionOf(const Json& obj) {
  if (!obj.contains("metadata")) return "";
  return StringField(obj["metadata"], "resourceVersion");
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

std::string Enc(const std::string& s) { return PercentEncode(s); }

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

// A watch: the transport's streaming body, one JSON event per line.
class TransportWatchStream final : public WatchStream {
 public:
  TransportWatchStream(std::unique_ptr<HttpBodyStream> body, std::string what)
      : body_(std::move(body)), what_(std::move(what)) {}
  ~TransportWatchStream() override { Cancel(); }

  absl::StatusOr<std::optional<WatchEvent>> Next() override {
    while (true) {
      if (cancelled_) return absl::CancelledError(what_ + ": cancelled");
      auto line = body_->ReadLine();
      if (!line.ok()) {
        if (cancelled_ || line.status().code() == absl::StatusCode::kCancelled) {
          return absl::CancelledError(what_ + ": cancelled");
        }
        return Annotate(line.status(), what_);
      }
      if (!line->has_value()) return std::nullopt;
      if ((*line)->find_first_not_of(" \r\t") == std::string::npos) continue;
      auto ev = ParseWatchLine(**line);
      if (!ev.ok()) return ev.status();
      return std::optional<WatchEvent>(std::move(*ev));
    }
  }

  void Cancel() override {
    cancelled_ = true;
    body_->Cancel();
  }

 private:
  std::unique_ptr<HttpBodyStream> body_;
  std::string what_;
  std::atomic<bool> cancelled_{false};
};

class TransportKubeClient final : public KubeClient {
 public:
  explicit TransportKubeClient(KubeConfig cfg) : cfg_(std::move(cfg)) {}

  absl::Status Init() {
    if (cfg_.server.rfind("https://", 0) != 0 && cfg_.server.rfind("http://", 0) != 0) {
      return absl::InvalidArgumentError("kube client: server \"" + cfg_.server +
                                        "\" is not an http(s) URL");
    }
    // The PEMs are loaded here, so a bad one is reported now and by name rather than as a
    // handshake failure on the first request.
    TransportOptions o;
    o.base_url = cfg_.server;
    o.tls.ca_pem = cfg_.ca_pem;
    o.tls.ca_source = cfg_.ca_source;
    o.tls.client_cert_pem = cfg_.client_cert_pem;
    o.tls.client_key_pem = cfg_.client_key_pem;
    o.tls.insecure_skip_verify = cfg_.insecure_skip_tls_verify;
    o.timeout = std::chrono::seconds(cfg_.request_timeout_seconds);
    auto raw = MakeHttpTransport(o);
    if (!raw.ok()) return Annotate(raw.status(), "kube client (" + cfg_.context + ")");
    auto for_watches = MakeHttpTransport(o);
    if (!for_watches.ok()) return for_watches.status();
    watch_transport_ = std::move(*for_watches);
    // A pooled keep-alive connection the server has since closed (it restarted, or timed the
    // connection out) fails on first use. A request that cannot have reached the server, or a
    // read, is tried again at once on a fresh connection, like Go's http.Transport does.
    RetryPolicy retry;
    retry.max_attempts = 4;
    retry.retry_unsent = true;
    retry.idempotent_methods = {"GET"};
    transport_ = MakeRetryingTransport(std::move(*raw), retry, MakeRealClock());
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
    // Its timeout must outlast the server's timeoutSeconds.
    ClientRequest req;
    req.method = "GET";
    req.target = Path(r, ns, "", "") + q.str();
    req.headers = Headers("");
    req.timeout = std::chrono::seconds(o.timeout_seconds > 0 ? o.timeout_seconds + 60 : 3600);
    auto body = watch_transport_->Open(req);
    if (!body.ok()) return Unreachable(what, body.status());
    if ((*body)->status() != 200) {
      auto text = (*body)->ReadAll();
      return StatusFromResponse((*body)->status(), text.ok() ? *text : "",
                                (*body)->headers().Get("Retry-After").value_or(""), what);
    }
    return std::unique_ptr<WatchStream>(new TransportWatchStream(std::move(*body), what));
  }

 private:
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

  HttpHeaders Headers(const std::string& content_type) {
    HttpHeaders h{{"Accept", "application/json"},
                  {"User-Agent", "mig-controller/0.1 (miglet kube client)"}};
    const std::string token = Token();
    if (!token.empty()) h.Add("Authorization", "Bearer " + token);
    if (!content_type.empty()) h.Add("Content-Type", content_type);
    return h;
  }

  // A failure below HTTP, with which call and which server.
  absl::Status Unreachable(const std::string& what, const absl::Status& s) const {
    return Annotate(s, what + ": cannot reach " + cfg_.server);
  }

  absl::StatusOr<Json> JsonCall(const std::string& method, const std::string& path,
                                const std::string& body, const std::string& content_type,
                                const std::string& what) {
    ClientRequest req;
    req.method = method;
    req.target = path;
    req.headers =
        Headers(body.empty() ? "" : (content_type.empty() ? "application/json" : content_type));
    req.body = body;
    auto r = transport_->Send(req);
    if (!r.ok()) return Unreachable(what, r.status());
    if (r->status < 200 || r->status >= 300) {
      return StatusFromResponse(r->status, r->body, r->headers.Get("Retry-After").value_or(""),
                                what);
    }
    if (r->body.empty()) return Json::object();
    auto j = Json::parse(r->body, nullptr, false);
    if (j.is_discarded()) return absl::DataLossError(what + ": response is not JSON");
    return j;
  }

  KubeConfig cfg_;
  std::unique_ptr<HttpTransport> transport_;        // requests, with the retry policy
  std::unique_ptr<HttpTransport> watch_transport_;  // watches: the informer owns their retries
  std::mutex token_mu_;
  std::string token_cache_;
  timespec token_mtime_{};
  off_t token_size_ = 0;
};

}  // namespace

absl::StatusOr<std::unique_ptr<KubeClient>> MakeKubeClient(const KubeConfig& config) {
  auto c = std::make_unique<TransportKubeClient>(config);
  if (auto s = c->Init(); !s.ok()) return s;
  return std::unique_ptr<KubeClient>(std::move(c));
}

}  // namespace miglet::kube
