#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "miglet/common/clock.h"
#include "miglet/operator/kube/informer.h"
#include "miglet/operator/kube/kube_client.h"
#include "miglet/operator/kube/leader_elector.h"

namespace prometheus {
class Registry;
}

// A controller layer in the manner of controller-runtime: reconcilers behind work queues, fed
// by shared informers, run only while this replica leads.
namespace miglet::ctrl {

// What to reconcile: one object, by namespace and name.
struct Request {
  std::string ns;
  std::string name;
  std::string Key() const { return ns.empty() ? name : ns + "/" + name; }
  static Request FromKey(const std::string& key);
  bool operator==(const Request&) const = default;
};

struct Result {
  Duration requeue_after{};  // > 0: reconcile again after this long
};

// Level-triggered: each call re-reads the object and the world and converges them; it never
// trusts what an event said happened. An error requeues the request with per-item exponential
// backoff (5 ms .. 1000 s) under a 10 qps / 100 burst bucket.
class Reconciler {
 public:
  virtual ~Reconciler() = default;
  virtual absl::StatusOr<Result> Reconcile(const Request& req) = 0;
};

struct ControllerOptions {
  std::string name;         // "runnerpool": metric label, log prefix, Enqueue target
  kube::Resource for_kind;  // an event on one of these enqueues it
  // Child kinds: an event on a child enqueues its controlling owner of kind `for_kind` (the
  // ownerReference with controller: true), in the child's namespace.
  std::vector<kube::Resource> owns;
  int workers = 2;
};

struct ManagerOptions {
  std::shared_ptr<kube::KubeClient> client;
  std::string ns;  // the namespace watched; "" = all
  std::shared_ptr<Clock> clock;
  // With a value: controllers run only while this replica holds the Lease. Its callbacks are
  // the manager's; `on_lost_leadership` is told when leadership is lost (controller-runtime's
  // answer is to exit, so a restarted process starts clean as a follower).
  std::optional<kube::LeaderElectionConfig> leader_election;
  std::function<void()> on_started_leading;
  std::function<void()> on_lost_leadership;
  prometheus::Registry* registry = nullptr;  // mig_controller_reconcile_*, _workqueue_*
  Duration cache_sync_timeout = std::chrono::minutes(2);
};

class Manager {
 public:
  virtual ~Manager() = default;
  // Before Start: the shared informer of `r`, made on first use; that first call's
  // `label_selector` decides what it caches (controller-runtime's cache.Options.ByObject), so
  // an operator that wants only its own Pods asks for them before AddController does.
  // Cached objects carry no managedFields.
  virtual kube::Informer& Informer(const kube::Resource& r,
                                   const std::string& label_selector = "") = 0;
  // Before Start.
  virtual void AddController(ControllerOptions options, std::shared_ptr<Reconciler> r) = 0;
  // From anywhere (the agent hub's change hook, another reconciler): reconcile `req` on
  // controller `name`. Before the controllers run, the request waits in the queue.
  virtual void Enqueue(const std::string& controller, const Request& req) = 0;
  virtual void EnqueueAfter(const std::string& controller, const Request& req, Duration delay) = 0;
  // Starts the informers and waits for their caches, then runs the controllers (at once, or
  // once leading). Fails when the caches do not sync in time.
  virtual absl::Status Start() = 0;
  // Stops the controllers (no reconcile runs after it returns), the elector (releasing the
  // Lease) and the informers.
  virtual void Stop() = 0;
  virtual bool CachesSynced() const = 0;
  virtual bool Leading() const = 0;  // always true without leader election
  // Ready to serve: caches synced and leading (a follower reports not ready).
  virtual bool Ready() const { return CachesSynced() && Leading(); }
};

std::unique_ptr<Manager> MakeManager(ManagerOptions options);

}  // namespace miglet::ctrl
