#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "absl/status/statusor.h"
#include "miglet/common/clock.h"
#include "miglet/operator/kube/kube_client.h"

namespace prometheus {
class Registry;
}

// Who is asking, as the apiserver says: TokenReview for a bearer token and SubjectAccessReview
// for what that user may do (the delegated authentication and authorization of Kubernetes'
// own servers and of controller-runtime's secure metrics). The answers are cached, so a token
// is reviewed once per TTL however often it is presented.
namespace miglet::kube {

// A TokenReview's status.user.
struct UserInfo {
  std::string username;
  std::string uid;
  std::vector<std::string> groups;
  std::map<std::string, std::vector<std::string>> extra;

  // The first value of an extra key ("" when absent), e.g.
  // "authentication.kubernetes.io/pod-name" of a pod-bound service-account token.
  std::string Extra(const std::string& key) const;
  // "ns" and "name" of "system:serviceaccount:ns:name"; empty when not a service account.
  std::pair<std::string, std::string> ServiceAccount() const;
};

inline constexpr char kPodNameExtra[] = "authentication.kubernetes.io/pod-name";
inline constexpr char kPodUidExtra[] = "authentication.kubernetes.io/pod-uid";

// What a request would do to a resource, as a SubjectAccessReview asks it ("" namespace: in
// every namespace).
struct ResourceAttributes {
  std::string verb;  // get, list, create, ...
  std::string group;
  std::string resource;
  std::string subresource;
  std::string name;
  std::string ns;

  std::string Describe() const;  // "create runnervms.miglet.dev/commands vm-1"
};

struct AccessReviewOptions {
  // How long an answer is kept. An authenticated token is kept no longer than its own expiry
  // (the JWT's exp, when it is one).
  Duration authenticated_ttl = std::chrono::minutes(2);
  Duration unauthenticated_ttl = std::chrono::seconds(10);
  Duration allowed_ttl = std::chrono::minutes(1);
  Duration denied_ttl = std::chrono::seconds(10);
  size_t max_cache_entries = 100000;
  // Threads that ask the apiserver (the callers never block on it).
  int workers = 4;
  // Reviews waiting for a worker; beyond it a review is answered UNAVAILABLE at once.
  size_t max_queue = 50000;
};

class AccessReviewer {
 public:
  using AuthnDone = std::function<void(absl::StatusOr<UserInfo>)>;
  using AuthzDone = std::function<void(absl::Status)>;

  // `client` needs create on tokenreviews and subjectaccessreviews (authentication.k8s.io,
  // authorization.k8s.io). `metrics` may be null.
  AccessReviewer(std::shared_ptr<KubeClient> client, std::shared_ptr<Clock> clock,
                 AccessReviewOptions options = {}, prometheus::Registry* metrics = nullptr);
  ~AccessReviewer();  // answers what is still queued with UNAVAILABLE, joins the workers

  // `done` is called once: at once (on this thread) from the cache, else from a worker.
  // UNAUTHENTICATED with the apiserver's reason when it does not take the token; UNAVAILABLE
  // when it could not be asked. `audiences` empty: the apiserver's own.
  void Authenticate(const std::string& token, const std::vector<std::string>& audiences,
                    AuthnDone done);
  // May `user` `verb` the non-resource URL `path` ("get" "/metrics")? OK, or
  // PERMISSION_DENIED naming the user, verb and path (and the authorizer's reason).
  void AuthorizeNonResource(const UserInfo& user, const std::string& verb, const std::string& path,
                            AuthzDone done);
  // May `user` `attrs.verb` the resource (a SubjectAccessReview's resourceAttributes)?
  void AuthorizeResource(const UserInfo& user, const ResourceAttributes& attrs, AuthzDone done);

  struct Stats {
    uint64_t token_reviews = 0;   // TokenReviews sent to the apiserver
    uint64_t access_reviews = 0;  // SubjectAccessReviews sent
    uint64_t cache_hits = 0;      // answers from the cache (or joined to a review in flight)
  };
  Stats stats() const;

 private:
  struct Entry;
  struct Metrics;
  void Ask(const std::string& key, std::function<Entry()> review,
           std::function<void(const Entry&)> answer);
  void Work();
  Entry ReviewToken(const std::string& token, const std::vector<std::string>& audiences);
  Entry ReviewAccess(const UserInfo& user, const Json& attributes, const std::string& what);

  const std::shared_ptr<KubeClient> client_;
  const std::shared_ptr<Clock> clock_;
  const AccessReviewOptions options_;
  std::unique_ptr<Metrics> metrics_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::unordered_map<std::string, std::shared_ptr<Entry>> cache_;
  // Reviews in flight, by key: the callers waiting for each.
  std::unordered_map<std::string, std::vector<std::function<void(const Entry&)>>> waiting_;
  std::deque<std::pair<std::string, std::function<Entry()>>> queue_;
  Stats stats_;
  std::vector<std::thread> workers_;
};

}  // namespace miglet::kube
