#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "miglet/operator/kube/config.h"
#include "miglet/operator/kube/resource.h"
#include "nlohmann/json.hpp"

// A Kubernetes API client that behaves like client-go's dynamic client: any
// group/version/resource, objects as JSON. The HTTP library behind it (cpprestsdk) never shows
// through this interface.
namespace miglet::kube {

using Json = nlohmann::json;

struct ListOptions {
  std::string label_selector;
  std::string field_selector;
  int64_t limit = 0;             // page size; 0 = server default (everything)
  std::string continue_token;    // from the previous page
  std::string resource_version;  // "" = most recent (quorum read)
};

struct ListResult {
  std::vector<Json> items;
  std::string resource_version;  // the list's, to start a watch from
  std::string continue_token;    // non-empty when there are more pages
};

struct WatchOptions {
  std::string label_selector;
  std::string field_selector;
  std::string resource_version;
  bool allow_bookmarks = true;
  int timeout_seconds = 0;  // 0 = no timeoutSeconds parameter
};

struct WatchEvent {
  enum class Type { kAdded, kModified, kDeleted, kBookmark, kError };
  Type type = Type::kAdded;
  Json object;
};

// One open watch. Next() blocks until an event arrives, the server ends the stream (nullopt),
// the stream fails (error status), or Cancel() is called from another thread.
class WatchStream {
 public:
  virtual ~WatchStream() = default;
  virtual absl::StatusOr<std::optional<WatchEvent>> Next() = 0;
  virtual void Cancel() = 0;
};

enum class PatchType { kMerge, kJson, kStrategicMerge };

struct ApplyOptions {
  std::string field_manager;  // required by the API
  bool force = false;
};

struct DeleteOptions {
  std::string propagation_policy;             // "", "Foreground", "Background", "Orphan"
  std::string precondition_resource_version;  // delete only this version (409 otherwise)
  std::optional<int64_t> grace_period_seconds;
};

// Names an object: `ns` is ignored for cluster-scoped resources. `subresource` is "",
// "status" or "scale" (or any other the API serves).
class KubeClient {
 public:
  virtual ~KubeClient() = default;

  virtual absl::StatusOr<Json> Get(const Resource& r, const std::string& ns,
                                   const std::string& name,
                                   const std::string& subresource = "") = 0;
  // One page; follow ListResult::continue_token for the next (or use ListAll).
  virtual absl::StatusOr<ListResult> List(const Resource& r, const std::string& ns,
                                          const ListOptions& opts = {}) = 0;
  virtual absl::StatusOr<Json> Create(const Resource& r, const std::string& ns,
                                      const Json& obj) = 0;
  // PUT; the object's metadata.resourceVersion makes it conditional (409 when stale).
  virtual absl::StatusOr<Json> Update(const Resource& r, const std::string& ns, const Json& obj,
                                      const std::string& subresource = "") = 0;
  virtual absl::StatusOr<Json> Patch(const Resource& r, const std::string& ns,
                                     const std::string& name, PatchType type, const Json& patch,
                                     const std::string& subresource = "") = 0;
  // Server-side apply of `obj` (apiVersion, kind, metadata.name required).
  virtual absl::StatusOr<Json> Apply(const Resource& r, const std::string& ns, const Json& obj,
                                     const ApplyOptions& opts,
                                     const std::string& subresource = "") = 0;
  virtual absl::Status Delete(const Resource& r, const std::string& ns, const std::string& name,
                              const DeleteOptions& opts = {}) = 0;
  virtual absl::StatusOr<std::unique_ptr<WatchStream>> Watch(const Resource& r,
                                                             const std::string& ns,
                                                             const WatchOptions& opts) = 0;

  // Every page of a list, followed through `continue`.
  absl::StatusOr<ListResult> ListAll(const Resource& r, const std::string& ns,
                                     ListOptions opts = {});
};

// A client for the cluster `config` describes. Fails when the credentials cannot be loaded
// (a bad PEM, a missing file), not when the server is unreachable.
absl::StatusOr<std::unique_ptr<KubeClient>> MakeKubeClient(const KubeConfig& config);

// The typed side: one resource in one namespace, the calls the controller makes.
class ResourceClient {
 public:
  ResourceClient(KubeClient& client, Resource resource, std::string ns)
      : client_(client), resource_(std::move(resource)), ns_(std::move(ns)) {}

  absl::StatusOr<Json> Get(const std::string& name) { return client_.Get(resource_, ns_, name); }
  absl::StatusOr<ListResult> List(const ListOptions& o = {}) {
    return client_.ListAll(resource_, ns_, o);
  }
  absl::StatusOr<Json> Create(const Json& obj) { return client_.Create(resource_, ns_, obj); }
  absl::StatusOr<Json> Update(const Json& obj) { return client_.Update(resource_, ns_, obj); }
  absl::StatusOr<Json> UpdateStatus(const Json& obj) {
    return client_.Update(resource_, ns_, obj, "status");
  }
  absl::StatusOr<Json> MergePatch(const std::string& name, const Json& patch) {
    return client_.Patch(resource_, ns_, name, PatchType::kMerge, patch);
  }
  absl::StatusOr<Json> MergePatchStatus(const std::string& name, const Json& patch) {
    return client_.Patch(resource_, ns_, name, PatchType::kMerge, patch, "status");
  }
  absl::StatusOr<Json> Apply(const Json& obj, const ApplyOptions& o) {
    return client_.Apply(resource_, ns_, obj, o);
  }
  absl::StatusOr<Json> ApplyStatus(const Json& obj, const ApplyOptions& o) {
    return client_.Apply(resource_, ns_, obj, o, "status");
  }
  absl::Status Delete(const std::string& name, const DeleteOptions& o = {}) {
    return client_.Delete(resource_, ns_, name, o);
  }
  // autoscaling/v1 Scale of a resource with the scale subresource.
  absl::StatusOr<Json> GetScale(const std::string& name) {
    return client_.Get(resource_, ns_, name, "scale");
  }
  absl::StatusOr<Json> SetReplicas(const std::string& name, int64_t replicas) {
    return client_.Patch(resource_, ns_, name, PatchType::kMerge,
                         Json{{"spec", {{"replicas", replicas}}}}, "scale");
  }
  const Resource& resource() const { return resource_; }
  const std::string& ns() const { return ns_; }

 private:
  KubeClient& client_;
  Resource resource_;
  std::string ns_;
};

// Typed entry points for what the controller uses.
inline ResourceClient RunnerPoolsIn(KubeClient& c, std::string ns) {
  return ResourceClient(c, RunnerPools(), std::move(ns));
}
inline ResourceClient RunnerVMsIn(KubeClient& c, std::string ns) {
  return ResourceClient(c, RunnerVMs(), std::move(ns));
}
inline ResourceClient PodsIn(KubeClient& c, std::string ns) {
  return ResourceClient(c, Pods(), std::move(ns));
}
inline ResourceClient SecretsIn(KubeClient& c, std::string ns) {
  return ResourceClient(c, Secrets(), std::move(ns));
}
inline ResourceClient LeasesIn(KubeClient& c, std::string ns) {
  return ResourceClient(c, Leases(), std::move(ns));
}
inline ResourceClient EventsIn(KubeClient& c, std::string ns) {
  return ResourceClient(c, Events(), std::move(ns));
}

// "ns/name" (or "name" when cluster-scoped), the key caches and work queues use.
std::string ObjectKey(const Json& obj);
std::string ResourceVersionOf(const Json& obj);

}  // namespace miglet::kube
