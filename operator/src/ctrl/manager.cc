#include "miglet/operator/ctrl/manager.h"

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <atomic>
#include <map>
#include <mutex>

#include "miglet/operator/kube/errors.h"
#include "miglet/operator/kube/work_queue.h"
#include "spdlog/spdlog.h"

namespace miglet::ctrl {

Request Request::FromKey(const std::string& key) {
  const size_t slash = key.find('/');
  if (slash == std::string::npos) return {"", key};
  return {key.substr(0, slash), key.substr(slash + 1)};
}

namespace {

struct Metrics {
  explicit Metrics(prometheus::Registry& r)
      : reconciles(prometheus::BuildCounter()
                       .Name("mig_controller_reconcile_total")
                       .Help("Reconciles by controller and result (success, error, requeue_after)")
                       .Register(r)),
        errors(prometheus::BuildCounter()
                   .Name("mig_controller_reconcile_errors_total")
                   .Help("Reconciles that returned an error, by controller")
                   .Register(r)),
        duration(prometheus::BuildHistogram()
                     .Name("mig_controller_reconcile_duration_seconds")
                     .Help("Time spent in one reconcile, by controller")
                     .Register(r)),
        depth(prometheus::BuildGauge()
                  .Name("mig_controller_workqueue_depth")
                  .Help("Requests waiting in a controller's work queue")
                  .Register(r)),
        adds(prometheus::BuildCounter()
                 .Name("mig_controller_workqueue_adds_total")
                 .Help("Requests added to a controller's work queue")
                 .Register(r)),
        latency(prometheus::BuildHistogram()
                    .Name("mig_controller_workqueue_queue_duration_seconds")
                    .Help("Time a request waited in the work queue before its reconcile began")
                    .Register(r)) {}
  prometheus::Family<prometheus::Counter>& reconciles;
  prometheus::Family<prometheus::Counter>& errors;
  prometheus::Family<prometheus::Histogram>& duration;
  prometheus::Family<prometheus::Gauge>& depth;
  prometheus::Family<prometheus::Counter>& adds;
  prometheus::Family<prometheus::Histogram>& latency;
};

const prometheus::Histogram::BucketBoundaries kBuckets = {
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};

class Controller {
 public:
  Controller(ControllerOptions o, std::shared_ptr<Reconciler> r, std::shared_ptr<Clock> clock,
             Metrics* m)
      : opts_(std::move(o)),
        reconciler_(std::move(r)),
        clock_(clock),
        queue_(kube::MakeWorkQueue(clock, kube::MakeDefaultControllerRateLimiter(clock))),
        metrics_(m) {}

  const ControllerOptions& options() const { return opts_; }

  void Add(const std::string& key, Duration delay = Duration::zero()) {
    {
      std::lock_guard l(mu_);
      added_.emplace(key, clock_->Now() + delay);
    }
    if (delay > Duration::zero()) {
      queue_->AddAfter(key, delay);
    } else {
      queue_->Add(key);
    }
    if (metrics_) {
      metrics_->adds.Add({{"controller", opts_.name}}).Increment();
      metrics_->depth.Add({{"controller", opts_.name}}).Set(static_cast<double>(queue_->Len()));
    }
  }

  void Run() {
    std::lock_guard l(run_mu_);
    if (workers_ || stopped_) return;
    spdlog::info("controller {}: starting {} workers", opts_.name, opts_.workers);
    workers_ = kube::RunWorkers(*queue_, std::max(1, opts_.workers),
                                [this](const std::string& key) { return Process(key); });
  }

  void Stop() {
    std::lock_guard l(run_mu_);
    stopped_ = true;
    queue_->ShutDown();
    workers_.reset();  // joins: no reconcile runs after this
  }

 private:
  kube::ReconcileResult Process(const std::string& key) {
    MonoTime added{};
    {
      std::lock_guard l(mu_);
      if (auto it = added_.find(key); it != added_.end()) {
        added = it->second;
        added_.erase(it);
      }
    }
    const MonoTime start = clock_->Now();
    absl::StatusOr<Result> r;
    try {
      r = reconciler_->Reconcile(Request::FromKey(key));
    } catch (const std::exception& e) {
      // Nothing should throw here; if something does, it is an error like any other.
      r = absl::InternalError(std::string("reconcile threw: ") + e.what());
    }
    const double secs = ToSeconds(clock_->Now() - start);
    kube::ReconcileResult out;
    std::string result = "success";
    if (!r.ok()) {
      out.ok = false;
      result = "error";
      if (kube::IsConflict(r.status())) {
        // A write derived from an object that changed since it was read: expected now and then
        // (a cache a moment behind); the retry reads the new one.
        spdlog::debug("controller {}: reconcile {}: {}; retried", opts_.name, key,
                      r.status().ToString());
      } else {
        spdlog::warn("controller {}: reconcile {}: {}", opts_.name, key, r.status().ToString());
      }
    } else if (r->requeue_after > Duration::zero()) {
      out.requeue_after = r->requeue_after;
      result = "requeue_after";
    }
    if (metrics_) {
      const prometheus::Labels c = {{"controller", opts_.name}};
      metrics_->reconciles.Add({{"controller", opts_.name}, {"result", result}}).Increment();
      if (!r.ok()) metrics_->errors.Add(c).Increment();
      metrics_->duration.Add(c, kBuckets).Observe(secs);
      if (added != MonoTime{} && start > added) {
        metrics_->latency.Add(c, kBuckets).Observe(ToSeconds(start - added));
      }
      metrics_->depth.Add(c).Set(static_cast<double>(queue_->Len()));
    }
    return out;
  }

  ControllerOptions opts_;
  std::shared_ptr<Reconciler> reconciler_;
  std::shared_ptr<Clock> clock_;
  std::unique_ptr<kube::WorkQueue> queue_;
  Metrics* metrics_;
  std::mutex mu_;
  std::map<std::string, MonoTime> added_;  // when each queued key was first added
  std::mutex run_mu_;
  std::unique_ptr<kube::WorkerPool> workers_;
  bool stopped_ = false;
};

std::string InformerKey(const kube::Resource& r) { return r.group + "/" + r.resource; }

// The controlling owner of `obj` of kind `kind`, as a request in obj's namespace.
std::optional<Request> ControllerOwner(const kube::Json& obj, const std::string& kind) {
  if (!obj.contains("metadata")) return std::nullopt;
  const auto& md = obj["metadata"];
  if (!md.contains("ownerReferences") || !md["ownerReferences"].is_array()) return std::nullopt;
  for (const auto& ref : md["ownerReferences"]) {
    if (ref.value("controller", false) && ref.value("kind", "") == kind) {
      return Request{md.value("namespace", ""), ref.value("name", "")};
    }
  }
  return std::nullopt;
}

class ManagerImpl final : public Manager {
 public:
  explicit ManagerImpl(ManagerOptions o) : opts_(std::move(o)) {
    if (!opts_.clock) opts_.clock = MakeRealClock();
    if (opts_.registry) metrics_ = std::make_unique<Metrics>(*opts_.registry);
  }
  ~ManagerImpl() override { Stop(); }

  kube::Informer& Informer(const kube::Resource& r,
                           const std::string& label_selector = "") override {
    std::lock_guard l(mu_);
    auto& inf = informers_[InformerKey(r)];
    if (!inf) {
      inf = kube::MakeInformer(opts_.client, {.resource = r,
                                              .ns = opts_.ns,
                                              .label_selector = label_selector,
                                              .transform = kube::StripManagedFields,
                                              .clock = opts_.clock});
    }
    return *inf;
  }

  void AddController(ControllerOptions o, std::shared_ptr<Reconciler> r) override {
    auto c = std::make_shared<Controller>(o, std::move(r), opts_.clock, metrics_.get());
    Controller* raw = c.get();
    {
      std::lock_guard l(mu_);
      controllers_[o.name] = c;
    }
    auto enqueue = [raw](const kube::Json& obj) { raw->Add(kube::ObjectKey(obj)); };
    Informer(o.for_kind)
        .AddEventHandler(
            {enqueue, [enqueue](const kube::Json&, const kube::Json& n) { enqueue(n); }, enqueue});
    for (const auto& child : o.owns) {
      const std::string kind = o.for_kind.kind;
      auto owner = [raw, kind](const kube::Json& obj) {
        if (auto req = ControllerOwner(obj, kind)) raw->Add(req->Key());
      };
      Informer(child).AddEventHandler(
          {owner,
           [owner](const kube::Json& old_obj, const kube::Json& n) {
             owner(old_obj);  // an owner that was taken away hears of it too
             owner(n);
           },
           owner});
    }
  }

  void Enqueue(const std::string& controller, const Request& req) override {
    EnqueueAfter(controller, req, Duration::zero());
  }

  void EnqueueAfter(const std::string& controller, const Request& req, Duration delay) override {
    std::shared_ptr<Controller> c;
    {
      std::lock_guard l(mu_);
      auto it = controllers_.find(controller);
      if (it == controllers_.end()) return;
      c = it->second;
    }
    c->Add(req.Key(), delay);
  }

  absl::Status Start() override {
    std::vector<kube::Informer*> infs;
    {
      std::lock_guard l(mu_);
      for (auto& [k, inf] : informers_) infs.push_back(inf.get());
    }
    for (auto* inf : infs) inf->Start();
    for (auto* inf : infs) {
      if (!inf->WaitForSync(opts_.cache_sync_timeout)) {
        return absl::DeadlineExceededError("caches did not sync within " +
                                           std::to_string(ToSeconds(opts_.cache_sync_timeout)) +
                                           " s (is the apiserver reachable? the CRDs installed?)");
      }
    }
    synced_ = true;
    spdlog::info("manager: caches synced ({} informers)", infs.size());
    if (!opts_.leader_election) {
      leading_ = true;
      RunControllers();
      return absl::OkStatus();
    }
    kube::LeaderElectionConfig le = *opts_.leader_election;
    le.on_started_leading = [this] {
      spdlog::info("manager: leading ({})", opts_.leader_election->identity);
      leading_ = true;
      RunControllers();
      if (opts_.on_started_leading) opts_.on_started_leading();
    };
    le.on_stopped_leading = [this] {
      const bool was = leading_.exchange(false);
      StopControllers();
      if (was && !stopping_) {
        spdlog::error("manager: leadership lost; controllers stopped");
        if (opts_.on_lost_leadership) opts_.on_lost_leadership();
      }
    };
    elector_ = kube::MakeLeaderElector(opts_.client, le, opts_.clock);
    elector_->Start();
    return absl::OkStatus();
  }

  void Stop() override {
    stopping_ = true;
    StopControllers();
    if (elector_) {
      elector_->Stop();
      elector_.reset();
    }
    std::vector<kube::Informer*> infs;
    {
      std::lock_guard l(mu_);
      for (auto& [k, inf] : informers_) infs.push_back(inf.get());
    }
    for (auto* inf : infs) inf->Stop();
  }

  bool CachesSynced() const override { return synced_; }
  bool Leading() const override { return leading_; }

 private:
  std::vector<std::shared_ptr<Controller>> All() {
    std::lock_guard l(mu_);
    std::vector<std::shared_ptr<Controller>> out;
    for (auto& [n, c] : controllers_) out.push_back(c);
    return out;
  }
  void RunControllers() {
    for (auto& c : All()) c->Run();
  }
  void StopControllers() {
    for (auto& c : All()) c->Stop();
  }

  ManagerOptions opts_;
  std::unique_ptr<Metrics> metrics_;
  std::mutex mu_;
  std::map<std::string, std::unique_ptr<kube::Informer>> informers_;
  std::map<std::string, std::shared_ptr<Controller>> controllers_;
  std::unique_ptr<kube::LeaderElector> elector_;
  std::atomic<bool> synced_{false};
  std::atomic<bool> leading_{false};
  std::atomic<bool> stopping_{false};
};

}  // namespace

std::unique_ptr<Manager> MakeManager(ManagerOptions options) {
  return std::make_unique<ManagerImpl>(std::move(options));
}

}  // namespace miglet::ctrl
