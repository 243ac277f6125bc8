#include "miglet/operator/kube/access_review.h"

#include <openssl/evp.h>
#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/registry.h>

#include "absl/strings/escaping.h"
#include "absl/strings/str_split.h"
#include "spdlog/spdlog.h"

namespace miglet::kube {

namespace {

const Resource& TokenReviews() {
  static const Resource r{"authentication.k8s.io", "v1", "tokenreviews", "TokenReview", false};
  return r;
}

const Resource& SubjectAccessReviews() {
  static const Resource r{"authorization.k8s.io", "v1", "subjectaccessreviews",
                          "SubjectAccessReview", false};
  return r;
}

// The cache holds a digest of each token, never the token.
std::string Digest(const std::string& s) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(s.data(), s.size(), md, &len, EVP_sha256(), nullptr);
  return std::string(reinterpret_cast<char*>(md), len);
}

// The exp claim of a JWT (seconds since the epoch), 0 when the token is not one.
int64_t JwtExpiry(const std::string& token) {
  std::vector<absl::string_view> parts = absl::StrSplit(token, '.');
  if (parts.size() != 3) return 0;
  std::string payload;
  if (!absl::WebSafeBase64Unescape(parts[1], &payload)) return 0;
  const Json claims = Json::parse(payload, nullptr, /*allow_exceptions=*/false);
  if (!claims.is_object() || !claims.contains("exp") || !claims["exp"].is_number()) return 0;
  return claims["exp"].get<int64_t>();
}

}  // namespace

std::string UserInfo::Extra(const std::string& key) const {
  auto it = extra.find(key);
  return it == extra.end() || it->second.empty() ? std::string() : it->second.front();
}

std::pair<std::string, std::string> UserInfo::ServiceAccount() const {
  constexpr std::string_view kPrefix = "system:serviceaccount:";
  if (username.rfind(kPrefix, 0) != 0) return {};
  const std::string rest = username.substr(kPrefix.size());
  const auto colon = rest.find(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == rest.size()) return {};
  return {rest.substr(0, colon), rest.substr(colon + 1)};
}

// One answer: a user (authentication) or a decision (authorization), until `expires`.
struct AccessReviewer::Entry {
  absl::Status status;  // OK, UNAUTHENTICATED, PERMISSION_DENIED, UNAVAILABLE (not cached)
  UserInfo user;
  MonoTime expires{};
};

struct AccessReviewer::Metrics {
  prometheus::Family<prometheus::Counter>& reviews;
  prometheus::Family<prometheus::Counter>& hits;
  explicit Metrics(prometheus::Registry& r)
      : reviews(prometheus::BuildCounter()
                    .Name("mig_controller_access_reviews_total")
                    .Help("TokenReviews and SubjectAccessReviews sent to the apiserver, by kind "
                          "(token, access) and result (allowed, denied, error)")
                    .Register(r)),
        hits(prometheus::BuildCounter()
                 .Name("mig_controller_access_review_cache_hits_total")
                 .Help("Credentials and permissions answered from the cache, by kind")
                 .Register(r)) {
    for (const char* kind : {"token", "access"}) {
      for (const char* result : {"allowed", "denied", "error"}) {
        reviews.Add({{"kind", kind}, {"result", result}});
      }
      hits.Add({{"kind", kind}});
    }
  }
};

AccessReviewer::AccessReviewer(std::shared_ptr<KubeClient> client, std::shared_ptr<Clock> clock,
                               AccessReviewOptions options, prometheus::Registry* metrics)
    : client_(std::move(client)),
      clock_(std::move(clock)),
      options_(options),
      metrics_(metrics ? std::make_unique<Metrics>(*metrics) : nullptr) {
  for (int i = 0; i < std::max(1, options_.workers); ++i) workers_.emplace_back([this] { Work(); });
}

AccessReviewer::~AccessReviewer() {
  {
    std::lock_guard l(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : workers_) t.join();
  // Whoever still waits is answered.
  Entry gone{absl::UnavailableError("the controller is shutting down"), {}, {}};
  std::unordered_map<std::string, std::vector<std::function<void(const Entry&)>>> waiting;
  {
    std::lock_guard l(mu_);
    waiting.swap(waiting_);
  }
  for (auto& [key, callers] : waiting) {
    for (auto& c : callers) c(gone);
  }
}

AccessReviewer::Stats AccessReviewer::stats() const {
  std::lock_guard l(mu_);
  return stats_;
}

void AccessReviewer::Ask(const std::string& key, std::function<Entry()> review,
                         std::function<void(const Entry&)> answer) {
  std::shared_ptr<Entry> hit;
  {
    std::unique_lock l(mu_);
    const MonoTime now = clock_->Now();
    auto it = cache_.find(key);
    if (it != cache_.end() && it->second->expires > now) {
      hit = it->second;
      ++stats_.cache_hits;
    } else if (auto w = waiting_.find(key); w != waiting_.end()) {
      w->second.push_back(std::move(answer));  // the review in flight answers this one too
      ++stats_.cache_hits;
      return;
    } else if (stopping_ || queue_.size() >= options_.max_queue) {
      l.unlock();
      answer(Entry{absl::UnavailableError(stopping_ ? "the controller is shutting down"
                                                    : "too many reviews waiting"),
                   {},
                   {}});
      return;
    } else {
      waiting_[key].push_back(std::move(answer));
      queue_.emplace_back(key, std::move(review));
      l.unlock();
      cv_.notify_one();
      return;
    }
  }
  answer(*hit);
}

void AccessReviewer::Work() {
  std::unique_lock l(mu_);
  while (true) {
    cv_.wait(l, [this] { return stopping_ || !queue_.empty(); });
    if (stopping_) return;
    auto [key, review] = std::move(queue_.front());
    queue_.pop_front();
    l.unlock();
    auto entry = std::make_shared<Entry>(review());
    l.lock();
    if (entry->status.code() != absl::StatusCode::kUnavailable) {
      if (cache_.size() >= options_.max_cache_entries) {
        const MonoTime now = clock_->Now();
        for (auto it = cache_.begin(); it != cache_.end();) {
          it = it->second->expires <= now ? cache_.erase(it) : std::next(it);
        }
        if (cache_.size() >= options_.max_cache_entries) cache_.clear();
      }
      cache_[key] = entry;
    }
    auto callers = std::move(waiting_[key]);
    waiting_.erase(key);
    l.unlock();
    for (auto& c : callers) c(*entry);
    l.lock();
  }
}

void AccessReviewer::Authenticate(const std::string& token,
                                  const std::vector<std::string>& audiences, AuthnDone done) {
  if (token.empty()) {
    done(absl::UnauthenticatedError("no bearer token"));
    return;
  }
  std::string key = "t\n";
  for (const auto& a : audiences) key += a + "\n";
  key += Digest(token);
  auto answer = [done = std::move(done)](const Entry& e) {
    if (e.status.ok()) {
      done(e.user);
    } else {
      done(e.status);
    }
  };
  Ask(
      key, [this, token, audiences] { return ReviewToken(token, audiences); }, std::move(answer));
}

std::string ResourceAttributes::Describe() const {
  std::string out = verb + " " + resource + (group.empty() ? "" : "." + group);
  if (!subresource.empty()) out += "/" + subresource;
  if (!name.empty()) out += " " + name;
  if (!ns.empty()) out += " in " + ns;
  return out;
}

namespace {
std::string UserKey(const UserInfo& user) {
  std::string key = user.username + "\n" + user.uid + "\n";
  for (const auto& g : user.groups) key += g + ",";
  return key;
}
}  // namespace

void AccessReviewer::AuthorizeNonResource(const UserInfo& user, const std::string& verb,
                                          const std::string& path, AuthzDone done) {
  const Json attrs = {{"nonResourceAttributes", {{"path", path}, {"verb", verb}}}};
  Ask(
      "n\n" + UserKey(user) + "\n" + verb + "\n" + path,
      [this, user, attrs, what = verb + " " + path] { return ReviewAccess(user, attrs, what); },
      [done = std::move(done)](const Entry& e) { done(e.status); });
}

void AccessReviewer::AuthorizeResource(const UserInfo& user, const ResourceAttributes& a,
                                       AuthzDone done) {
  Json ra = {{"verb", a.verb}, {"group", a.group}, {"resource", a.resource}};
  if (!a.subresource.empty()) ra["subresource"] = a.subresource;
  if (!a.name.empty()) ra["name"] = a.name;
  if (!a.ns.empty()) ra["namespace"] = a.ns;
  const Json attrs = {{"resourceAttributes", ra}};
  Ask(
      "r\n" + UserKey(user) + "\n" + ra.dump(),
      [this, user, attrs, what = a.Describe()] { return ReviewAccess(user, attrs, what); },
      [done = std::move(done)](const Entry& e) { done(e.status); });
}

AccessReviewer::Entry AccessReviewer::ReviewToken(const std::string& token,
                                                  const std::vector<std::string>& audiences) {
  Json review = {{"apiVersion", "authentication.k8s.io/v1"},
                 {"kind", "TokenReview"},
                 {"spec", {{"token", token}}}};
  if (!audiences.empty()) review["spec"]["audiences"] = audiences;
  auto r = client_->Create(TokenReviews(), "", review);
  const MonoTime now = clock_->Now();
  Entry e;
  auto count = [&](const char* result) {
    if (metrics_) metrics_->reviews.Add({{"kind", "token"}, {"result", result}}).Increment();
  };
  {
    std::lock_guard l(mu_);
    ++stats_.token_reviews;
  }
  if (!r.ok()) {
    count("error");
    e.status = absl::UnavailableError("TokenReview failed: " + r.status().ToString());
    spdlog::warn("{}", std::string(e.status.message()));
    return e;
  }
  const Json st = r->value("status", Json::object());
  if (!st.value("authenticated", false)) {
    count("denied");
    const std::string why = st.value("error", std::string());
    e.status = absl::UnauthenticatedError(why.empty() ? "the token is not valid" : why);
    e.expires = now + options_.unauthenticated_ttl;
    return e;
  }
  count("allowed");
  const Json u = st.value("user", Json::object());
  e.user.username = u.value("username", std::string());
  e.user.uid = u.value("uid", std::string());
  if (u.contains("groups") && u["groups"].is_array()) {
    for (const auto& g : u["groups"]) {
      if (g.is_string()) e.user.groups.push_back(g.get<std::string>());
    }
  }
  if (u.contains("extra") && u["extra"].is_object()) {
    for (const auto& [k, vs] : u["extra"].items()) {
      if (!vs.is_array()) continue;
      for (const auto& v : vs) {
        if (v.is_string()) e.user.extra[k].push_back(v.get<std::string>());
      }
    }
  }
  e.expires = now + options_.authenticated_ttl;
  if (const int64_t exp = JwtExpiry(token); exp > 0) {
    const auto left = std::chrono::seconds(exp) - clock_->WallNow().time_since_epoch();
    if (left < options_.authenticated_ttl) e.expires = now + std::max(Duration::zero(), left);
  }
  return e;
}

AccessReviewer::Entry AccessReviewer::ReviewAccess(const UserInfo& user, const Json& attributes,
                                                   const std::string& what) {
  Json spec = attributes;
  spec["user"] = user.username;
  spec["groups"] = user.groups;
  if (!user.uid.empty()) spec["uid"] = user.uid;
  if (!user.extra.empty()) spec["extra"] = user.extra;
  Json review = {
      {"apiVersion", "authorization.k8s.io/v1"}, {"kind", "SubjectAccessReview"}, {"spec", spec}};
  auto r = client_->Create(SubjectAccessReviews(), "", review);
  const MonoTime now = clock_->Now();
  Entry e;
  auto count = [&](const char* result) {
    if (metrics_) metrics_->reviews.Add({{"kind", "access"}, {"result", result}}).Increment();
  };
  {
    std::lock_guard l(mu_);
    ++stats_.access_reviews;
  }
  if (!r.ok()) {
    count("error");
    e.status = absl::UnavailableError("SubjectAccessReview failed: " + r.status().ToString());
    spdlog::warn("{}", std::string(e.status.message()));
    return e;
  }
  const Json st = r->value("status", Json::object());
  if (st.value("allowed", false) && !st.value("denied", false)) {
    count("allowed");
    e.expires = now + options_.allowed_ttl;
    return e;
  }
  count("denied");
  std::string why = st.value("reason", std::string());
  if (why.empty()) why = st.value("evaluationError", std::string());
  e.status = absl::PermissionDeniedError(user.username + " may not " + what +
                                         (why.empty() ? "" : ": " + why));
  e.expires = now + options_.denied_ttl;
  return e;
}

}  // namespace miglet::kube
