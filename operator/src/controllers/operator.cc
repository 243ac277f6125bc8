// The RunnerPool and RunnerVM reconcilers: the I/O around the pure decisions in pool_plan,
// vm_life, vm_plan, vm_status and pod_builder.
#include "miglet/operator/controllers/operator.h"

#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <system_error>
#include <thread>
#include <unordered_map>

#include "miglet/common/status.h"
#include "miglet/operator/api/v1alpha1.h"
#include "miglet/operator/github/credentials.h"
#include "miglet/operator/github/errors.h"
#include "miglet/operator/kube/errors.h"
#include "miglet/operator/kube/event_recorder.h"
#include "miglet/operator/kube/informer.h"
#include "pod_builder.h"
#include "pool_plan.h"
#include "spdlog/spdlog.h"
#include "vm_life.h"
#include "vm_plan.h"
#include "vm_status.h"

namespace miglet::controllers {

namespace {

using api::Json;
constexpr char kPoolController[] = "runnerpool";
// A pool hears of its RunnerVMs' and agents' changes this much later, so that a burst of them
// (a thousand machines registering at once) costs one pool reconcile, which reads every
// RunnerVM of the pool, per interval instead of one per change. Its own changes (kubectl
// scale) are never delayed.
constexpr Duration kPoolBatch = std::chrono::milliseconds(250);
constexpr char kVmController[] = "runnervm";
constexpr char kFieldManager[] = "mig-controller";

// Runs fn(0) .. fn(n-1), up to 16 at a time: a pool's writes to many RunnerVMs (a fleet
// adopted, 100 told to run or drain at once) go at the apiserver's pace, not at one round trip
// after another. The first error, once all have run.
absl::Status InParallel(size_t n, const std::function<absl::Status(size_t)>& fn) {
  constexpr size_t kInFlight = 16;
  std::atomic<size_t> next{0};
  std::mutex mu;
  absl::Status first;
  auto work = [&] {
    for (size_t i; (i = next++) < n;) {
      absl::Status s;
      try {
        s = fn(i);
      } catch (const std::exception& e) {  // as the manager treats a reconcile's
        s = absl::InternalError(std::string("exception: ") + e.what());
      }
      std::lock_guard l(mu);
      if (first.ok() && !s.ok()) first = std::move(s);
    }
  };
  std::vector<std::thread> helpers;
  for (size_t k = 1; k < std::min(n, kInFlight); ++k) {
    try {
      helpers.emplace_back(work);
    } catch (const std::system_error&) {
      break;  // no thread to be had: fewer at a time
    }
  }
  work();
  for (auto& t : helpers) t.join();
  return first;
}

std::string RandomSuffix() {
  static thread_local std::mt19937 rng{std::random_device{}()};
  static constexpr char kChars[] = "bcdfghjklmnpqrstvwxz2456789";  // as Kubernetes' generateName
  std::string s;
  for (int i = 0; i < 5; ++i) s += kChars[rng() % (sizeof kChars - 1)];
  return s;
}

// The runner's name at GitHub: the RunnerVM's name, under the pool's name, so the sweep can
// tell the pool's runners from others in the same scope.
std::string RunnerName(const api::RunnerPool& pool, const api::RunnerVM& vm) {
  const std::string prefix = pool.meta.name + "-";
  return vm.meta.name.rfind(prefix, 0) == 0 ? vm.meta.name : prefix + vm.meta.name;
}

std::optional<WallTime> ParseTime(const std::string& s) {
  std::tm tm{};
  if (s.empty() || strptime(s.c_str(), "%Y-%m-%dT%H:%M:%SZ", &tm) == nullptr) return std::nullopt;
  return std::chrono::system_clock::from_time_t(timegm(&tm));
}

// A JSON patch adding `f` to metadata.finalizers (made when absent).
Json AddFinalizerPatch(const api::ObjectMeta& m, const std::string& f) {
  if (m.finalizers.empty()) {
    return Json::array({{{"op", "add"}, {"path", "/metadata/finalizers"}, {"value", {f}}}});
  }
  return Json::array({{{"op", "add"}, {"path", "/metadata/finalizers/-"}, {"value", f}}});
}

// A JSON patch removing `f`, refused (409/422) if the list changed under us.
Json RemoveFinalizerPatch(const api::ObjectMeta& m, const std::string& f) {
  for (size_t i = 0; i < m.finalizers.size(); ++i) {
    if (m.finalizers[i] != f) continue;
    const std::string path = "/metadata/finalizers/" + std::to_string(i);
    return Json::array(
        {{{"op", "test"}, {"path", path}, {"value", f}}, {{"op", "remove"}, {"path", path}}});
  }
  return Json::array();
}

// Per-RunnerVM facts the controller holds until they are written (command outcomes, runner
// ids), by the RunnerVM's key.
template <typename T>
class Memo {
 public:
  void Set(const std::string& key, T o) {
    std::lock_guard l(mu_);
    map_[key] = std::move(o);
  }
  std::optional<T> Get(const std::string& key) {
    std::lock_guard l(mu_);
    auto it = map_.find(key);
    if (it == map_.end()) return std::nullopt;
    return it->second;
  }
  void Forget(const std::string& key) {
    std::lock_guard l(mu_);
    map_.erase(key);
  }

 private:
  std::mutex mu_;
  std::map<std::string, T> map_;
};

// What this controller last wrote to each RunnerVM, until its informer has caught up: a
// reconcile that runs between a write and the watch event that reports it reads the written
// object instead of the cache's older one (which a preconditioned write would only get a 409
// for). Matched by resourceVersion equality only, as the API conventions ask.
class Written {
 public:
  void Remember(const std::string& key, const std::string& before, Json after) {
    std::lock_guard l(mu_);
    map_[key] = {before, std::move(after)};
  }
  // `cached` itself, or the object written over it when `cached` is what the write replaced.
  Json Fresher(const std::string& key, Json cached) {
    std::lock_guard l(mu_);
    auto it = map_.find(key);
    if (it == map_.end()) return cached;
    const std::string rv = cached["metadata"].value("resourceVersion", "");
    if (!rv.empty() && rv == it->second.first) return it->second.second;
    map_.erase(it);  // the cache has seen our write, or something newer
    return cached;
  }
  // The informer's cache now holds `rv` for `key`: once that is not the version the write
  // replaced, the written copy is not needed any more (one object per RunnerVM otherwise stays
  // until its next reconcile).
  void Seen(const std::string& key, const std::string& rv) {
    std::lock_guard l(mu_);
    auto it = map_.find(key);
    if (it != map_.end() && rv != it->second.first) map_.erase(it);
  }
  void Forget(const std::string& key) {
    std::lock_guard l(mu_);
    map_.erase(key);
  }

 private:
  std::mutex mu_;
  std::map<std::string, std::pair<std::string, Json>> map_;
};

// RunnerVM name -> keys (ns/name), kept from the informer's events, for the hub's vm_id.
class NameIndex {
 public:
  void Put(const Json& obj) {
    std::lock_guard l(mu_);
    keys_[Name(obj)].insert(kube::ObjectKey(obj));
  }
  void Drop(const Json& obj) {
    std::lock_guard l(mu_);
    auto it = keys_.find(Name(obj));
    if (it == keys_.end()) return;
    it->second.erase(kube::ObjectKey(obj));
    if (it->second.empty()) keys_.erase(it);
  }
  std::vector<std::string> Keys(const std::string& name) {
    std::lock_guard l(mu_);
    auto it = keys_.find(name);
    if (it == keys_.end()) return {};
    return {it->second.begin(), it->second.end()};
  }
  kube::ResourceEventHandler Handler() {
    return {[this](const Json& o) { Put(o); }, [this](const Json&, const Json& o) { Put(o); },
            [this](const Json& o) { Drop(o); }};
  }

 private:
  static std::string Name(const Json& o) { return o["metadata"].value("name", ""); }
  std::mutex mu_;
  std::map<std::string, std::set<std::string>> keys_;
};

// A pool's GitHub client, made from its URL and credentials Secret, and remade when either
// changes.
class GitHubClients {
 public:
  GitHubClients(std::shared_ptr<kube::KubeClient> kube, TlsOptions tls, GitHubClientFactory make,
                std::shared_ptr<github::GitHubMetrics> metrics, std::shared_ptr<Clock> clock)
      : kube_(std::move(kube)),
        tls_(std::move(tls)),
        make_(std::move(make)),
        metrics_(std::move(metrics)),
        clock_(std::move(clock)) {}

  absl::StatusOr<std::shared_ptr<github::GitHubClient>> For(const api::RunnerPool& pool) {
    const auto& gh = pool.spec.github;
    const std::string secret = gh.app_secret ? gh.app_secret->name : gh.token_secret->name;
    auto obj = kube::SecretsIn(*kube_, pool.meta.ns).Get(secret);
    if (!obj.ok()) {
      if (kube::IsNotFound(obj.status())) {
        return absl::FailedPreconditionError("GitHub credentials: Secret " + pool.meta.ns + "/" +
                                             secret + " not found");
      }
      return obj.status();
    }
    const std::string fingerprint = gh.url + "|" + secret + "|" + kube::ResourceVersionOf(*obj) +
                                    "|" + (gh.app_secret ? "app" : "pat");
    {
      std::lock_guard l(mu_);
      auto it = clients_.find(pool.meta.Key());
      if (it != clients_.end() && it->second.first == fingerprint) return it->second.second;
    }
    ASSIGN_OR_RETURN(github::Credentials creds, github::CredentialsFromSecret(*obj));
    if (gh.app_secret && !creds.is_app()) {
      return absl::FailedPreconditionError(creds.source +
                                           ": spec.github.appSecretRef names it, "
                                           "but it holds no github_app_id");
    }
    if (gh.token_secret && creds.is_app()) {
      return absl::FailedPreconditionError(creds.source +
                                           ": spec.github.tokenSecretRef names "
                                           "it, but it holds a GitHub App");
    }
    github::GitHubClientOptions o;
    o.url = gh.url;
    o.credentials = std::move(creds);
    o.tls = tls_;
    o.metrics = metrics_;
    o.clock = clock_;
    ASSIGN_OR_RETURN(std::shared_ptr<github::GitHubClient> c, make_(o));
    std::lock_guard l(mu_);
    clients_[pool.meta.Key()] = {fingerprint, c};
    return c;
  }

 private:
  std::shared_ptr<kube::KubeClient> kube_;
  TlsOptions tls_;
  GitHubClientFactory make_;
  std::shared_ptr<github::GitHubMetrics> metrics_;
  std::shared_ptr<Clock> clock_;
  std::mutex mu_;
  std::map<std::string, std::pair<std::string, std::shared_ptr<github::GitHubClient>>> clients_;
};

class OperatorImpl;

class VmReconciler final : public ctrl::Reconciler {
 public:
  explicit VmReconciler(OperatorImpl* op) : op_(op) {}
  absl::StatusOr<ctrl::Result> Reconcile(const ctrl::Request& req) override;

 private:
  OperatorImpl* op_;
};

class PoolReconciler final : public ctrl::Reconciler {
 public:
  explicit PoolReconciler(OperatorImpl* op) : op_(op) {}
  absl::StatusOr<ctrl::Result> Reconcile(const ctrl::Request& req) override;

 private:
  OperatorImpl* op_;
};

class OperatorImpl final : public Operator {
 public:
  explicit OperatorImpl(OperatorOptions o) : o_(std::move(o)) {
    if (!o_.clock) o_.clock = MakeRealClock();
    if (!o_.github_factory) {
      o_.github_factory = [](const github::GitHubClientOptions& opts)
          -> absl::StatusOr<std::shared_ptr<github::GitHubClient>> {
        ASSIGN_OR_RETURN(auto c, github::MakeGitHubClient(opts));
        return std::shared_ptr<github::GitHubClient>(std::move(c));
      };
    }
    std::shared_ptr<github::GitHubMetrics> gm;
    if (o_.registry) gm = github::MakeGitHubMetrics(*o_.registry);
    github_ =
        std::make_unique<GitHubClients>(o_.kube, o_.github_tls, o_.github_factory, gm, o_.clock);
    events_ = kube::MakeEventRecorder(o_.kube, "mig-controller", "", o_.clock);
    if (o_.registry) {
      runners_ = &prometheus::BuildGauge()
                      .Name("mig_controller_pool_runners")
                      .Help("A pool's runners: desired, serving, ready, idle, busy, draining, lost")
                      .Register(*o_.registry);
      phases_ = &prometheus::BuildGauge()
                     .Name("mig_controller_runnervms")
                     .Help("RunnerVMs by pool and phase")
                     .Register(*o_.registry);
    }
  }

  // The pool's gauges. Phases no RunnerVM is in any more are removed.
  void RecordPool(const api::RunnerPool& pool, const std::map<std::string, double>& runners,
                  const std::map<std::string, double>& phases) {
    if (runners_ == nullptr) return;
    std::lock_guard l(metrics_mu_);
    for (const auto& [state, v] : runners) {
      runners_->Add({{"namespace", pool.meta.ns}, {"pool", pool.meta.name}, {"state", state}})
          .Set(v);
    }
    auto& shown = phase_series_[pool.meta.Key()];
    for (auto it = shown.begin(); it != shown.end();) {
      if (phases.count(*it)) {
        ++it;
        continue;
      }
      phases_->Remove(
          &phases_->Add({{"namespace", pool.meta.ns}, {"pool", pool.meta.name}, {"phase", *it}}));
      it = shown.erase(it);
    }
    for (const auto& [phase, v] : phases) {
      phases_->Add({{"namespace", pool.meta.ns}, {"pool", pool.meta.name}, {"phase", phase}})
          .Set(v);
      shown.insert(phase);
    }
  }

  absl::Status Init() {
    if (!o_.kube || !o_.manager || !o_.hub) {
      return absl::InvalidArgumentError("operator: kube client, manager and hub are required");
    }
    pools_ = &o_.manager->Informer(kube::RunnerPools());
    vms_ = &o_.manager->Informer(kube::RunnerVMs());
    // Only the runner pods this operator made (they carry the pool label).
    pods_ = &o_.manager->Informer(kube::Pods(), api::kPoolLabel);
    vms_->AddEventHandler(names_.Handler());
    // A RunnerVM's events reconcile it and its pool (by spec.poolName: adopted machines are
    // owned too, but the pool is found the same way).
    auto vm_changed = [this](const Json& obj) {
      const std::string ns = obj["metadata"].value("namespace", "");
      written_.Seen(kube::ObjectKey(obj), obj["metadata"].value("resourceVersion", ""));
      o_.manager->Enqueue(kVmController, ctrl::Request::FromKey(kube::ObjectKey(obj)));
      if (obj.contains("spec") && obj["spec"].contains("poolName")) {
        o_.manager->EnqueueAfter(kPoolController, {ns, obj["spec"].value("poolName", "")},
                                 kPoolBatch);
      }
    };
    vms_->AddEventHandler(
        {vm_changed, [vm_changed](const Json&, const Json& n) { vm_changed(n); }, vm_changed});
    // A change of a pool's spec (its agents' log level or heartbeat interval, say) reaches each
    // of its RunnerVMs, whose reconcile sends the agent what changed. Status-only updates leave
    // the generation alone and enqueue nothing.
    pools_->AddEventHandler(
        {nullptr,
         [this](const Json& old_obj, const Json& obj) {
           const auto& md = obj["metadata"];
           if (old_obj["metadata"].value("generation", 0) == md.value("generation", 0)) {
             return;
           }
           const std::string ns = md.value("namespace", "");
           const std::string name = md.value("name", "");
           for (const auto& vm : vms_->List()) {
             if (vm["metadata"].value("namespace", "") == ns && vm.contains("spec") &&
                 vm["spec"].value("poolName", "") == name) {
               o_.manager->Enqueue(kVmController, ctrl::Request::FromKey(kube::ObjectKey(vm)));
             }
           }
         },
         nullptr});
    o_.manager->AddController({.name = kPoolController,
                               .for_kind = kube::RunnerPools(),
                               .owns = {},
                               .workers = o_.workers},
                              std::make_shared<PoolReconciler>(this));
    o_.manager->AddController({.name = kVmController,
                               .for_kind = kube::RunnerVMs(),
                               .owns = {kube::Pods()},
                               .workers = o_.workers},
                              std::make_shared<VmReconciler>(this));
    // The hub's change hook is a trigger only: reconciles read the agent's current state from
    // the hub, never from the (possibly out-of-order) snapshot.
    o_.hub->SetChangeHook([this](const AgentInfo& a) { OnAgentChange(a.vm_id, a.pool_id); });
    o_.hub->SetEventHook([this](const commands::EventNotification& e) { OnAgentEvent(e); });
    return absl::OkStatus();
  }

  void OnAgentChange(const std::string& vm_id, const std::string& pool_id) {
    const auto keys = names_.Keys(vm_id);
    if (keys.empty()) {
      // An agent nobody made: its external pool adopts it. Only a trigger here (this runs on
      // the hub's thread, and a thousand machines may connect at once): the pool's reconcile
      // creates the RunnerVMs.
      if (vm_id.empty() || pool_id.empty()) return;
      for (const auto& obj : pools_->List()) {
        const auto& md = obj.value("metadata", Json::object());
        if (md.value("name", "") == pool_id) {
          o_.manager->EnqueueAfter(kPoolController, {md.value("namespace", ""), pool_id},
                                   kPoolBatch);
        }
      }
      return;
    }
    for (const auto& key : keys) {
      const auto req = ctrl::Request::FromKey(key);
      o_.manager->Enqueue(kVmController, req);
      if (auto obj = vms_->Get(key); obj && (*obj)["spec"].contains("poolName")) {
        o_.manager->EnqueueAfter(kPoolController, {req.ns, (*obj)["spec"].value("poolName", "")},
                                 kPoolBatch);
      }
    }
  }

  // An agent nobody made: adopted when its pool_id names an external pool (exactly one).
  void Adopt(const std::string& vm_id, const std::string& pool_id) {
    if (vm_id.empty() || pool_id.empty()) return;
    std::vector<api::RunnerPool> matches;
    for (const auto& obj : pools_->List()) {
      auto p = api::DecodeRunnerPool(obj);
      if (p.ok() && p->meta.name == pool_id && p->spec.provider == api::Provider::kExternal &&
          !p->meta.Deleting()) {
        matches.push_back(std::move(*p));
      }
    }
    if (matches.size() != 1) {
      if (matches.size() > 1) {
        spdlog::warn("agent {}: pool {} exists in {} namespaces; not adopted", vm_id, pool_id,
                     matches.size());
      }
      return;
    }
    const api::RunnerPool& pool = matches[0];
    api::RunnerVM vm;
    vm.meta.name = vm_id;
    vm.meta.ns = pool.meta.ns;
    vm.meta.labels = {{api::kPoolLabel, pool.meta.name}};
    vm.meta.finalizers = {api::kFinalizer};
    vm.meta.owner_references = {
        {api::kGroupVersion, "RunnerPool", pool.meta.name, pool.meta.uid, true}};
    vm.spec.pool_name = pool.meta.name;
    // A new machine starts as a spare: the pool decides whether it carries a runner.
    vm.spec.desired_state = api::DesiredState::kDrained;
    auto r = kube::RunnerVMsIn(*o_.kube, pool.meta.ns).Create(api::EncodeRunnerVM(vm));
    if (r.ok()) {
      spdlog::info("adopted agent {} into external pool {}", vm_id, pool.meta.Key());
      (void)events_->Record(*r, "Normal", "Adopted",
                            "agent " + vm_id + " connected with pool_id " + pool_id);
    } else if (!kube::IsAlreadyExists(r.status())) {
      spdlog::warn("adopting agent {}: {}", vm_id, r.status().ToString());
    }
  }

  std::optional<api::RunnerPool> Pool(const std::string& ns, const std::string& name) {
    auto obj = pools_->Get(ns + "/" + name);
    if (!obj) return std::nullopt;
    auto p = api::DecodeRunnerPool(*obj);
    if (!p.ok()) return std::nullopt;
    return *p;
  }

  std::vector<api::RunnerVM> VmsOf(const api::RunnerPool& pool) {
    std::vector<api::RunnerVM> out;
    for (const auto& obj : vms_->List()) {
      auto vm = api::DecodeRunnerVM(obj);
      if (vm.ok() && vm->meta.ns == pool.meta.ns && vm->spec.pool_name == pool.meta.name) {
        out.push_back(std::move(*vm));
      }
    }
    return out;
  }

  std::optional<PodView> PodOf(const api::RunnerPool& pool, const api::RunnerVM& vm) {
    if (pool.spec.provider != api::Provider::kPod) return std::nullopt;
    auto obj = pods_->Get(vm.meta.Key());
    PodView p;
    if (obj) {
      p.exists = true;
      p.phase = (*obj).value("status", Json::object()).value("phase", "");
      p.deleting = (*obj)["metadata"].contains("deletionTimestamp");
    }
    return p;
  }

  absl::Status EnsureBusyPdb(const api::RunnerPool& pool) {
    {
      std::lock_guard l(pdb_mu_);
      if (pdbs_.count(pool.meta.uid)) return absl::OkStatus();
    }
    const std::string name = pool.meta.name + "-busy";
    Json pdb = {{"apiVersion", "policy/v1"},
                {"kind", "PodDisruptionBudget"},
                {"metadata",
                 {{"name", name},
                  {"namespace", pool.meta.ns},
                  {"labels", {{api::kPoolLabel, pool.meta.name}}},
                  {"ownerReferences",
                   {{{"apiVersion", api::kGroupVersion},
                     {"kind", "RunnerPool"},
                     {"name", pool.meta.name},
                     {"uid", pool.meta.uid},
                     {"controller", true},
                     {"blockOwnerDeletion", true}}}}}},
                {"spec",
                 {{"maxUnavailable", 0},
                  {"selector",
                   {{"matchLabels", {{api::kPoolLabel, pool.meta.name}, {kBusyLabel, "true"}}}}}}}};
    auto r = o_.kube->Create(kube::PodDisruptionBudgets(), pool.meta.ns, pdb);
    if (!r.ok() && !kube::IsAlreadyExists(r.status())) return r.status();
    std::lock_guard l(pdb_mu_);
    pdbs_.insert(pool.meta.uid);
    return absl::OkStatus();
  }

  std::optional<AgentInfo> AgentOf(const api::RunnerVM& vm) {
    return o_.hub->GetAgent(vm.meta.name);
  }

  // ConfigMap kCaConfigMap in `ns` holds the controller's CA (made, or brought up to date, once
  // per namespace per process).
  absl::Status PublishCa(const std::string& ns) {
    {
      std::lock_guard l(published_mu_);
      if (published_ca_.count(ns)) return absl::OkStatus();
    }
    auto cms = kube::ResourceClient(*o_.kube, kube::ConfigMaps(), ns);
    const Json data = {{"ca.crt", o_.controller_ca_pem}};
    auto got = cms.Get(kCaConfigMap);
    if (got.ok()) {
      if (got->value("data", Json::object()) != data) {
        auto r = cms.MergePatch(kCaConfigMap, {{"data", data}});
        if (!r.ok()) return r.status();
      }
    } else if (kube::IsNotFound(got.status())) {
      auto r = cms.Create({{"apiVersion", "v1"},
                           {"kind", "ConfigMap"},
                           {"metadata",
                            {{"name", kCaConfigMap},
                             {"labels", {{"app.kubernetes.io/managed-by", "mig-controller"}}}}},
                           {"data", data}});
      if (!r.ok() && !kube::IsAlreadyExists(r.status())) return r.status();
    } else {
      return got.status();
    }
    std::lock_guard l(published_mu_);
    published_ca_.insert(ns);
    return absl::OkStatus();
  }

  void Event(const api::ObjectMeta& m, const char* kind, const std::string& type,
             const std::string& reason, const std::string& message) {
    Json obj = {{"apiVersion", api::kGroupVersion},
                {"kind", kind},
                {"metadata",
                 {{"name", m.name},
                  {"namespace", m.ns},
                  {"uid", m.uid},
                  {"resourceVersion", m.resource_version}}}};
    if (auto s = events_->Record(obj, type, reason, message); !s.ok()) {
      spdlog::debug("event {} on {}: {}", reason, m.Key(), s.ToString());
    }
  }

  absl::StatusOr<std::optional<RunnerRegistration>> Registration(const std::string& vm_id,
                                                                 bool only_if_wanted) override;
  // The cached RunnerVM the hub's vm_id names, and its key: NOT_FOUND, or FAILED_PRECONDITION
  // when RunnerVMs of that name exist in several namespaces.
  absl::StatusOr<std::pair<std::string, Json>> VmNamed(const std::string& vm_id);
  // That RunnerVM and its pool (if any), for deciding who may speak for it: any miss is
  // PERMISSION_DENIED.
  absl::StatusOr<std::pair<api::RunnerVM, std::optional<api::RunnerPool>>> AgentsVm(
      const std::string& vm_id);
  absl::Status AuthorizeAgent(const std::string& vm_id, const kube::UserInfo& user) override;
  absl::Status AuthorizeAgentByCertificate(const std::string& vm_id) override;
  void AgentRefused(const std::string& vm_id, const absl::Status& why) override;

  // A runner_registered event names the runner's id (the MIGlet agents in the field send it):
  // an agent that registered with a token handed out over HTTP has it kept like a JIT one's.
  void OnAgentEvent(const commands::EventNotification& ev) {
    if (ev.type() != "runner_registered") return;
    auto it = ev.data().find("runner_id");
    if (it == ev.data().end()) return;
    char* end = nullptr;
    const long long id = std::strtoll(it->second.c_str(), &end, 10);
    if (id <= 0 || end == nullptr || *end != '\0') return;
    for (const auto& key : names_.Keys(ev.vm_id())) {
      auto obj = vms_->Get(key);
      if (!obj) continue;
      auto vm = api::DecodeRunnerVM(written_.Fresher(key, std::move(*obj)));
      if (!vm.ok() || vm->status.runner.name.empty() || vm->status.runner.id > 0) continue;
      learnt_runners_.Set(key, {vm->status.registrations, vm->status.runner.name, id});
      o_.manager->Enqueue(kVmController, ctrl::Request::FromKey(key));
    }
  }

  OperatorOptions o_;
  kube::Informer* pools_ = nullptr;
  kube::Informer* vms_ = nullptr;
  kube::Informer* pods_ = nullptr;
  NameIndex names_;
  Memo<CommandOutcome> outcomes_;
  std::mutex published_mu_;
  std::set<std::string> published_ca_;  // namespaces whose CA ConfigMap is up to date
  std::mutex refused_mu_;
  std::unordered_map<std::string, MonoTime> refused_at_;  // the last AgentRefused Event
  Memo<LearntRunner> learnt_runners_;
  // Since when a drain or shutdown has waited for GitHub's busy runner to show at its agent.
  Memo<WallTime> held_since_;
  // When a registration was last handed out over HTTP: no register_runner follows it for
  // kHandedOutHold, while the agent registers with it.
  Memo<WallTime> handed_out_;
  Written written_;
  std::unique_ptr<GitHubClients> github_;
  std::unique_ptr<kube::EventRecorder> events_;
  prometheus::Family<prometheus::Gauge>* runners_ = nullptr;
  prometheus::Family<prometheus::Gauge>* phases_ = nullptr;
  std::mutex metrics_mu_;
  std::map<std::string, std::set<std::string>> phase_series_;  // pool key -> phases shown
  std::mutex pdb_mu_;
  std::set<std::string> pdbs_;  // pools (uid) whose busy PDB exists
  std::mutex sweep_mu_;
  std::map<std::string, MonoTime> last_sweep_;
};

// ------------------------------------------------------------------------------ RunnerVM

// Deletes a RunnerVM's runner at GitHub: by the id kept at registration, and any other of its
// name (a registration whose id was never kept). A busy runner is tried again later.
absl::Status DeregisterRunner(OperatorImpl& op, const api::RunnerPool& pool,
                              const api::RunnerVM& vm) {
  ASSIGN_OR_RETURN(auto gh, op.github_->For(pool));
  const std::string name = RunnerName(pool, vm);
  if (vm.status.runner.id > 0) RETURN_IF_ERROR(gh->DeleteRunner(vm.status.runner.id));
  ASSIGN_OR_RETURN(auto runners, gh->ListRunners(name));
  for (const auto& r : runners) RETURN_IF_ERROR(gh->DeleteRunner(r.id));
  op.Event(vm.meta, "RunnerVM", "Normal", "Deregistered",
           "runner " + name + " is no longer registered at GitHub");
  return absl::OkStatus();
}

// A RunnerVM's status is written with the resourceVersion it was derived from: a write
// derived from a cache that has not yet seen this controller's last write (a runner's id, the
// registration count) is refused with a conflict, and the reconcile runs again on fresh data,
// so nothing written is undone.
absl::Status WriteVmStatus(Written& written, kube::ResourceClient& vms, api::RunnerVM& vm,
                           const api::RunnerVMStatus& st) {
  Json patch = api::EncodeStatus(st);
  if (!vm.meta.resource_version.empty()) {
    patch["metadata"] = {{"resourceVersion", vm.meta.resource_version}};
  }
  ASSIGN_OR_RETURN(Json out, vms.MergePatchStatus(vm.meta.name, patch));
  kube::StripManagedFields(out);
  const std::string before = vm.meta.resource_version;
  vm.meta.resource_version = out["metadata"].value("resourceVersion", "");
  vm.status = st;
  written.Remember(vm.meta.Key(), before, std::move(out));
  return absl::OkStatus();
}

absl::StatusOr<std::pair<std::string, Json>> OperatorImpl::VmNamed(const std::string& vm_id) {
  const auto keys = names_.Keys(vm_id);
  if (keys.size() > 1) {
    return absl::FailedPreconditionError("RunnerVMs named " + vm_id + " exist in " +
                                         std::to_string(keys.size()) + " namespaces");
  }
  std::optional<Json> obj;
  if (!keys.empty()) obj = vms_->Get(keys.front());
  if (!obj) return absl::NotFoundError("no RunnerVM is named " + vm_id);
  return std::make_pair(keys.front(), std::move(*obj));
}

absl::StatusOr<std::pair<api::RunnerVM, std::optional<api::RunnerPool>>> OperatorImpl::AgentsVm(
    const std::string& vm_id) {
  auto named = VmNamed(vm_id);
  if (!named.ok()) {
    const bool missing = named.status().code() == absl::StatusCode::kNotFound;
    return absl::PermissionDeniedError(
        std::string(named.status().message()) +
        (missing ? " (with agent authentication on, agents are not adopted)" : ""));
  }
  ASSIGN_OR_RETURN(api::RunnerVM vm, api::DecodeRunnerVM(named->second));
  auto pool = Pool(vm.meta.ns, vm.spec.pool_name);
  return std::make_pair(std::move(vm), std::move(pool));
}

absl::Status OperatorImpl::AuthorizeAgent(const std::string& vm_id, const kube::UserInfo& user) {
  ASSIGN_OR_RETURN(auto found, AgentsVm(vm_id));
  const auto& [vm, pool] = found;
  if (pool && pool->spec.provider != api::Provider::kPod) {
    return absl::PermissionDeniedError("RunnerVM " + vm.meta.Key() + " is in external pool " +
                                       vm.spec.pool_name +
                                       ": its agent proves itself with its client certificate, "
                                       "not a service-account token");
  }
  const auto [sa_ns, sa_name] = user.ServiceAccount();
  const std::string pod = user.Extra(kube::kPodNameExtra);
  if (sa_ns.empty() || pod.empty()) {
    return absl::PermissionDeniedError(
        "the token of " + user.username + " is not bound to a pod; the agent of RunnerVM " +
        vm.meta.Key() + " must send its pod's projected service-account token (audience miglet)");
  }
  if (sa_ns != vm.meta.ns || pod != vm.meta.name) {
    return absl::PermissionDeniedError("the token is pod " + sa_ns + "/" + pod + "'s; RunnerVM " +
                                       vm.meta.Key() + " runs in pod " + vm.meta.Key());
  }
  return absl::OkStatus();
}

absl::Status OperatorImpl::AuthorizeAgentByCertificate(const std::string& vm_id) {
  ASSIGN_OR_RETURN(auto found, AgentsVm(vm_id));
  const auto& [vm, pool] = found;
  if (!pool || pool->spec.provider != api::Provider::kExternal) {
    return absl::PermissionDeniedError("RunnerVM " + vm.meta.Key() +
                                       " runs in a pod: its agent proves itself with its pod's "
                                       "service-account token, not a client certificate");
  }
  return absl::OkStatus();
}

void OperatorImpl::AgentRefused(const std::string& vm_id, const absl::Status& why) {
  {
    // One Event a minute per RunnerVM: an agent retrying with bad credentials (or a flood of
    // made-up connects) does not turn into an API write each.
    std::lock_guard l(refused_mu_);
    const MonoTime now = o_.clock->Now();
    auto [it, fresh] = refused_at_.try_emplace(vm_id, now);
    if (!fresh && now - it->second < std::chrono::minutes(1)) return;
    it->second = now;
    if (refused_at_.size() > 10000) refused_at_.clear();
  }
  auto named = VmNamed(vm_id);
  if (!named.ok()) return;
  auto vm = api::DecodeRunnerVM(named->second);
  if (!vm.ok()) return;
  Event(vm->meta, "RunnerVM", "Warning", "AgentRefused",
        "an agent connecting as " + vm_id + " was refused: " + std::string(why.message()));
}

constexpr Duration kHandedOutHold = std::chrono::seconds(60);

absl::StatusOr<std::optional<RunnerRegistration>> OperatorImpl::Registration(
    const std::string& vm_id, bool only_if_wanted) {
  ASSIGN_OR_RETURN(auto named, VmNamed(vm_id));
  const std::string key = named.first;
  ASSIGN_OR_RETURN(api::RunnerVM vm,
                   api::DecodeRunnerVM(written_.Fresher(key, std::move(named.second))));
  const auto pool = Pool(vm.meta.ns, vm.spec.pool_name);
  if (!pool) {
    return absl::FailedPreconditionError("RunnerVM " + vm.meta.Key() + ": pool " +
                                         vm.spec.pool_name + " not found");
  }
  if (vm.meta.Deleting() || vm.spec.desired_state != api::DesiredState::kRunning) {
    if (only_if_wanted) return std::nullopt;
    return absl::FailedPreconditionError("RunnerVM " + vm.meta.Key() +
                                         " is drained or shutting down: it takes no runner");
  }
  if (only_if_wanted) {
    // miglet's own agents take their runner by a register_runner command; an agent that has
    // a runner, or a register_runner on its way, is not handed another.
    const auto agent = AgentOf(vm);
    if (!agent || agent->acks_commands || agent->runner.configured()) return std::nullopt;
    const auto& types = agent->pending_types;
    if (std::find(types.begin(), types.end(), "register_runner") != types.end()) {
      return std::nullopt;
    }
  }
  ASSIGN_OR_RETURN(auto gh, github_->For(*pool));
  // Counted and named before GitHub is asked, as for a register_runner command: the finalizer
  // and the sweep find the runner whatever happens next.
  api::RunnerVMStatus counted = vm.status;
  ++counted.registrations;
  counted.runner = {};
  counted.runner.name = RunnerName(*pool, vm);
  counted.runner.ephemeral = pool->spec.runner.ephemeral;
  auto vms = kube::RunnerVMsIn(*o_.kube, vm.meta.ns);
  RETURN_IF_ERROR(WriteVmStatus(written_, vms, vm, counted));
  ASSIGN_OR_RETURN(auto token, gh->CreateRegistrationToken());
  handed_out_.Set(key, o_.clock->WallNow());
  spdlog::info("RunnerVM {}: registration {} handed out over HTTP for runner {}", vm.meta.Key(),
               counted.registrations, counted.runner.name);
  Event(vm.meta, "RunnerVM", "Normal", "RegistrationHandedOut",
        "a registration token for runner " + counted.runner.name + ", asked for over HTTP");
  return RunnerRegistration{.token = token.token,
                            .expires_at = token.expires_at,
                            .url = gh->scope().url,
                            .group = pool->spec.github.runner_group,
                            .labels = pool->spec.runner.labels,
                            .name = counted.runner.name};
}

absl::StatusOr<ctrl::Result> VmReconciler::Reconcile(const ctrl::Request& req) {
  OperatorImpl& op = *op_;
  auto obj = op.vms_->Get(req.Key());
  if (!obj) {
    op.outcomes_.Forget(req.Key());
    op.learnt_runners_.Forget(req.Key());
    op.handed_out_.Forget(req.Key());
    op.held_since_.Forget(req.Key());
    op.written_.Forget(req.Key());
    return ctrl::Result{};
  }
  ASSIGN_OR_RETURN(api::RunnerVM vm,
                   api::DecodeRunnerVM(op.written_.Fresher(req.Key(), std::move(*obj))));
  auto vms = kube::RunnerVMsIn(*op.o_.kube, vm.meta.ns);
  const auto pool = op.Pool(vm.meta.ns, vm.spec.pool_name);
  const auto agent = op.AgentOf(vm);
  const WallTime now = op.o_.clock->WallNow();

  if (vm.meta.Deleting()) {
    if (!vm.meta.HasFinalizer(api::kFinalizer)) return ctrl::Result{};
    // Stop the agent when it is there (an external machine is told to shut down), then make
    // sure GitHub keeps no runner of it, even when the agent is long gone.
    if (agent && agent->connected && agent->miglet_state != "shutting_down") {
      commands::Command c;
      c.set_id(vm.meta.uid + ".delete.shutdown");
      c.set_type("shutdown");
      (*c.mutable_bool_params())["force"] = true;
      (void)op.o_.hub->SendCommand(vm.meta.name, c);
    }
    // Its Pod goes with it now, not when the garbage collector gets to it.
    if (pool && pool->spec.provider == api::Provider::kPod) {
      if (auto pod = op.pods_->Get(req.Key());
          pod && !(*pod)["metadata"].contains("deletionTimestamp")) {
        auto s = kube::PodsIn(*op.o_.kube, vm.meta.ns).Delete(vm.meta.name);
        if (!s.ok() && !kube::IsNotFound(s)) return s;
      }
    }
    // Never sent a registration: GitHub has no runner of it.
    const bool never_registered = vm.status.registrations == 0 && vm.status.runner.id == 0;
    if (!never_registered) {
      if (!pool) {
        return absl::FailedPreconditionError("RunnerVM " + vm.meta.Key() + ": pool " +
                                             vm.spec.pool_name +
                                             " is gone; its runner cannot be deregistered");
      }
      RETURN_IF_ERROR(DeregisterRunner(op, *pool, vm));
    }
    auto patch = RemoveFinalizerPatch(vm.meta, api::kFinalizer);
    auto r = op.o_.kube->Patch(kube::RunnerVMs(), vm.meta.ns, vm.meta.name, kube::PatchType::kJson,
                               patch);
    if (!r.ok() && !kube::IsNotFound(r.status())) return r.status();
    op.outcomes_.Forget(req.Key());
    op.learnt_runners_.Forget(req.Key());
    return ctrl::Result{};
  }
  if (!vm.meta.HasFinalizer(api::kFinalizer)) {
    auto r = op.o_.kube->Patch(kube::RunnerVMs(), vm.meta.ns, vm.meta.name, kube::PatchType::kJson,
                               AddFinalizerPatch(vm.meta, api::kFinalizer));
    if (!r.ok()) return r.status();
    return ctrl::Result{};  // the update event brings us back
  }
  if (!pool) {
    spdlog::warn("RunnerVM {}: pool {} not found", vm.meta.Key(), vm.spec.pool_name);
    return ctrl::Result{std::chrono::seconds(30)};
  }

  // Pod provider: the machine is a Pod, made once.
  std::string pod_name;
  if (pool->spec.provider == api::Provider::kPod && vm.status.pod_name.empty() &&
      vm.spec.desired_state != api::DesiredState::kShutdown) {
    const auto pod = op.pods_->Get(vm.meta.Key());
    if (!pod) {
      // The controller's own CA, for agents that verify it (self-signed TLS), in the pod's
      // namespace first.
      const bool own_ca = !op.o_.controller_ca_pem.empty() && !pool->spec.controller.ca_secret;
      if (own_ca) {
        if (auto st = op.PublishCa(vm.meta.ns); !st.ok()) return st;
      }
      auto created = kube::PodsIn(*op.o_.kube, vm.meta.ns)
                         .Create(BuildRunnerPod(
                             *pool, vm,
                             {.controller_grpc_endpoint = op.o_.agent_endpoint,
                              .controller_ca_configmap = own_ca ? std::string(kCaConfigMap) : ""}));
      if (!created.ok() && !kube::IsAlreadyExists(created.status())) return created.status();
      op.Event(vm.meta, "RunnerVM", "Normal", "PodCreated", "pod " + vm.meta.name);
    }
    pod_name = vm.meta.name;
  }

  const VmLife life = DeriveLife(vm, agent, op.PodOf(*pool, vm));

  // A busy runner's Pod is protected from voluntary eviction (kubectl drain, the cluster
  // autoscaler): its miglet.dev/busy label follows the job, and the pool's PDB allows no
  // disruption of busy pods, while idle ones may go.
  if (pool->spec.provider == api::Provider::kPod) {
    if (auto pod = op.pods_->Get(vm.meta.Key())) {
      const std::string want = life == VmLife::kBusy ? "true" : "false";
      const auto& labels = (*pod)["metadata"].value("labels", Json::object());
      if (labels.value(kBusyLabel, "") != want) {
        auto r = kube::PodsIn(*op.o_.kube, vm.meta.ns)
                     .MergePatch(vm.meta.name, {{"metadata", {{"labels", {{kBusyLabel, want}}}}}});
        if (!r.ok() && !kube::IsNotFound(r.status())) return r.status();
      }
    }
  }

  // The next command. A registration handed out over HTTP a moment ago is not followed by a
  // register_runner while the agent registers with it.
  VmCommand cmd = PlanVmCommand(vm, *pool, agent, now);
  if (cmd.kind == VmCommand::Kind::kRegister) {
    if (auto at = op.handed_out_.Get(req.Key()); at && now - *at < kHandedOutHold) {
      return ctrl::Result{kHandedOutHold - (now - *at)};
    }
  }
  // A drain or shutdown stops a runner its agent calls idle. GitHub may have given it a job a
  // moment ago that the runner has not printed yet: stopping it now cancels that job. So GitHub
  // is asked first; while it reports the runner busy the command waits (2 s at a time) for the
  // agent to report the job, after which the drain waits for the job as for any busy runner.
  if ((cmd.kind == VmCommand::Kind::kDrain ||
       (cmd.kind == VmCommand::Kind::kShutdown && !cmd.force)) &&
      agent && agent->current_job.job_id().empty() && agent->miglet_state != "job_running" &&
      vm.status.runner.id > 0) {
    // Bounded: a busy flag that never shows at the agent holds the command 60 s at most.
    const WallTime since = op.held_since_.Get(req.Key()).value_or(now);
    auto gh = op.github_->For(*pool);
    if (gh.ok() && now - since < std::chrono::seconds(60)) {
      auto r = (*gh)->GetRunner(vm.status.runner.id);
      if (r.ok() && r->busy) {
        spdlog::info("RunnerVM {}: {} held: GitHub reports runner {} busy before its agent does",
                     vm.meta.Key(), VmCommandName(cmd.kind), vm.status.runner.id);
        op.held_since_.Set(req.Key(), since);
        return ctrl::Result{std::chrono::seconds(2)};
      }
    }
  }
  op.held_since_.Forget(req.Key());
  if (cmd.kind != VmCommand::Kind::kNone) {
    commands::Command c;
    c.set_id(cmd.id);
    c.set_type(std::string(VmCommandName(cmd.kind)));
    auto& sp = *c.mutable_string_params();
    switch (cmd.kind) {
      case VmCommand::Kind::kRegister: {
        ASSIGN_OR_RETURN(auto gh, op.github_->For(*pool));
        const std::string name = RunnerName(*pool, vm);
        // The count goes up, with the runner's name, before GitHub is asked: every
        // registration keeps its own command id, a reconcile from a stale cache is refused
        // here, before it costs a runner, and whatever happens next, the finalizer finds the
        // runner by its name. The runner of an earlier registration is over.
        api::RunnerVMStatus counted = vm.status;
        ++counted.registrations;
        counted.runner = {};
        counted.runner.name = name;
        counted.runner.ephemeral = pool->spec.runner.ephemeral;
        RETURN_IF_ERROR(WriteVmStatus(op.written_, vms, vm, counted));
        sp["runner_name"] = name;
        for (const auto& l : pool->spec.runner.labels) c.add_string_array_params(l);
        // An agent that does not ack (a MIGlet agent in the field, polling over HTTP) knows
        // registration tokens only.
        const bool jit = pool->spec.runner.ephemeral && (!agent || agent->acks_commands);
        if (jit) {
          // A leftover of the same name (an earlier try whose id was never kept) is replaced
          // by the client when it is offline and idle.
          ASSIGN_OR_RETURN(int64_t group, gh->RunnerGroupId(pool->spec.github.runner_group));
          ASSIGN_OR_RETURN(auto jit,
                           gh->GenerateJitConfig({.name = name,
                                                  .runner_group_id = group,
                                                  .labels = pool->spec.runner.labels,
                                                  .work_folder = pool->spec.runner.work_folder}));
          // The runner's id goes into the status with its next write (the agent reports
          // registering at once): it is not worth a write of its own on the way to the runner.
          op.learnt_runners_.Set(req.Key(), {vm.status.registrations, name, jit.runner.id});
          sp["jit_config"] = jit.encoded_jit_config;
        } else {
          ASSIGN_OR_RETURN(auto token, gh->CreateRegistrationToken());
          sp["registration_token"] = token.token;
          if (cmd.deregister) {
            // A machine that carried a persistent runner still holds its configuration, which
            // config.sh refuses to overwrite: the agent removes it first with this token.
            ASSIGN_OR_RETURN(auto remove, gh->CreateRemoveToken());
            sp["remove_token"] = remove.token;
          }
          sp["runner_url"] = gh->scope().url;
          sp["runner_group"] = pool->spec.github.runner_group;
          sp["expires_at"] = api::FormatTime(token.expires_at);
          (*c.mutable_bool_params())["ephemeral"] = pool->spec.runner.ephemeral;
        }
        break;
      }
      case VmCommand::Kind::kShutdown:
        (*c.mutable_bool_params())["force"] = cmd.force;
        if (cmd.deregister) {
          ASSIGN_OR_RETURN(auto gh, op.github_->For(*pool));
          ASSIGN_OR_RETURN(auto token, gh->CreateRemoveToken());
          sp["remove_token"] = token.token;
        }
        break;
      case VmCommand::Kind::kSetLogLevel:
        sp["level"] = cmd.level;
        break;
      case VmCommand::Kind::kUpdateConfig:
        for (const auto& [k, v] : cmd.config) sp[k] = v;
        break;
      default:
        break;
    }
    const std::string key = req.Key();
    OperatorImpl* opp = op_;
    const VmCommand planned = cmd;
    auto sent = op.o_.hub->SendCommand(
        vm.meta.name, std::move(c), [opp, key, planned](const CommandResult& r) {
          CommandOutcome o{r.command_id,
                           r.type,
                           r.status.ok() && r.success,
                           r.status.ok() ? r.message : std::string(r.status.message()),
                           planned.level,
                           planned.config};
          opp->outcomes_.Set(key, std::move(o));
          opp->o_.manager->Enqueue(kVmController, ctrl::Request::FromKey(key));
        });
    if (!sent.ok()) return sent.status();
    spdlog::info("RunnerVM {}: {} ({}): {}", vm.meta.Key(), VmCommandName(cmd.kind), cmd.id,
                 cmd.why);
    if (cmd.kind == VmCommand::Kind::kDrain || cmd.kind == VmCommand::Kind::kShutdown) {
      op.Event(vm.meta, "RunnerVM", "Normal", std::string(VmCommandName(cmd.kind)), cmd.why);
    }
  }

  // A drained machine keeps no runner at GitHub. Once its runner is over (stopped after a
  // drain, an ephemeral one that never got a job, any persistent one) or never started (the
  // agent's registration failed after GitHub made the runner), the runner the status names is
  // deregistered, by id or else by name. The status then names none, and the agent's report of
  // a runner that is over does not bring it back (DeriveVmStatus): this runs once, across
  // controller restarts too.
  auto learnt = op.learnt_runners_.Get(req.Key());
  if (learnt &&
      (vm.status.runner.id == learnt->id || learnt->registration != vm.status.registrations)) {
    op.learnt_runners_.Forget(req.Key());  // written, or of an earlier registration
    if (vm.status.runner.id != learnt->id) learnt.reset();
  }
  const bool no_runner_running = agent && agent->connected && agent->current_job.job_id().empty() &&
                                 agent->runner.state() == "offline" &&
                                 (agent->miglet_state == "draining" ||
                                  (agent->miglet_state == "ready" && !agent->runner.configured()));
  if (pool->spec.provider == api::Provider::kExternal &&
      vm.spec.desired_state == api::DesiredState::kDrained && !vm.status.runner.name.empty() &&
      no_runner_running) {
    ASSIGN_OR_RETURN(auto gh, op.github_->For(*pool));
    int64_t id = vm.status.runner.id;
    if (id == 0 && learnt) id = learnt->id;
    if (id > 0) {
      RETURN_IF_ERROR(gh->DeleteRunner(id));
    } else {
      ASSIGN_OR_RETURN(auto runners, gh->ListRunners(vm.status.runner.name));
      for (const auto& r : runners) RETURN_IF_ERROR(gh->DeleteRunner(r.id));
    }
    spdlog::info("RunnerVM {}: runner {} deregistered: the machine stays as a spare", vm.meta.Key(),
                 vm.status.runner.name);
    vm.status.runner = {};
    op.learnt_runners_.Forget(req.Key());
    learnt.reset();
  }

  // Status, written only when it differs.
  const auto outcome = op.outcomes_.Get(req.Key());
  VmStatusInputs in;
  in.vm = &vm;
  in.agent = agent ? &*agent : nullptr;
  in.outcome = outcome ? &*outcome : nullptr;
  in.learnt_runner = learnt ? &*learnt : nullptr;
  in.life = life;
  in.pod_name = pod_name;
  in.now = now;
  in.refresh = op.o_.status_refresh;
  api::RunnerVMStatus st = DeriveVmStatus(in);
  if (api::EncodeStatus(st) != api::EncodeStatus(vm.status)) {
    if (st.phase != vm.status.phase) {
      if (st.phase == "Lost") {
        op.Event(vm.meta, "RunnerVM", "Warning", "AgentLost", "no heartbeat within the timeout");
      } else if (st.phase == "Idle" && vm.status.phase == "Registering") {
        op.Event(vm.meta, "RunnerVM", "Normal", "Registered", "runner " + st.runner.name);
      }
    }
    auto w = WriteVmStatus(op.written_, vms, vm, st);
    if (!w.ok() && !kube::IsNotFound(w)) return w;
  }
  // Back when the refresh is due (last-seen), sooner after a failed registration (it is tried
  // again after a pause).
  if (!(agent && agent->connected)) return ctrl::Result{};
  const bool failed_register =
      st.last_command.type == "register_runner" && !st.last_command.success;
  return ctrl::Result{failed_register
                          ? std::min(op.o_.status_refresh, Duration(std::chrono::seconds(31)))
                          : op.o_.status_refresh};
}

// ------------------------------------------------------------------------------ RunnerPool

absl::StatusOr<ctrl::Result> PoolReconciler::Reconcile(const ctrl::Request& req) {
  OperatorImpl& op = *op_;
  auto obj = op.pools_->Get(req.Key());
  if (!obj) return ctrl::Result{};
  ASSIGN_OR_RETURN(api::RunnerPool pool, api::DecodeRunnerPool(*obj));
  auto vms_client = kube::RunnerVMsIn(*op.o_.kube, pool.meta.ns);
  auto vms = op.VmsOf(pool);
  const WallTime now = op.o_.clock->WallNow();

  if (pool.meta.Deleting()) {
    // The pool stays until its RunnerVMs have deregistered their runners (their finalizers
    // need its credentials).
    for (const auto& vm : vms) {
      if (!vm.meta.Deleting()) {
        auto s = vms_client.Delete(vm.meta.name);
        if (!s.ok() && !kube::IsNotFound(s)) return s;
      }
    }
    if (!vms.empty()) return ctrl::Result{std::chrono::seconds(5)};
    if (pool.meta.HasFinalizer(api::kFinalizer)) {
      auto r = op.o_.kube->Patch(kube::RunnerPools(), pool.meta.ns, pool.meta.name,
                                 kube::PatchType::kJson,
                                 RemoveFinalizerPatch(pool.meta, api::kFinalizer));
      if (!r.ok() && !kube::IsNotFound(r.status())) return r.status();
    }
    return ctrl::Result{};
  }
  if (!pool.meta.HasFinalizer(api::kFinalizer)) {
    auto r =
        op.o_.kube->Patch(kube::RunnerPools(), pool.meta.ns, pool.meta.name, kube::PatchType::kJson,
                          AddFinalizerPatch(pool.meta, api::kFinalizer));
    if (!r.ok()) return r.status();
    return ctrl::Result{};
  }

  // Pod pools: a PodDisruptionBudget that lets no busy runner pod be evicted.
  if (pool.spec.provider == api::Provider::kPod) RETURN_IF_ERROR(op.EnsureBusyPdb(pool));

  // External machines whose agents are connected but have no RunnerVM yet (they connected
  // before this pool was seen): adopted here, level-triggered.
  if (pool.spec.provider == api::Provider::kExternal) {
    std::vector<std::string> orphans;
    for (const auto& a : op.o_.hub->ListAgents()) {
      if (a.connected && a.pool_id == pool.meta.name && op.names_.Keys(a.vm_id).empty()) {
        orphans.push_back(a.vm_id);
      }
    }
    (void)InParallel(orphans.size(), [&](size_t i) {
      op.Adopt(orphans[i], pool.meta.name);
      return absl::OkStatus();
    });
  }

  std::vector<VmView> views;
  Duration next_timeout = Duration::max();
  for (const auto& vm : vms) {
    VmView v;
    v.name = vm.meta.name;
    v.created = ParseTime(vm.meta.creation_timestamp).value_or(now);
    v.desired = vm.spec.desired_state;
    v.deleting = vm.meta.Deleting();
    v.life = DeriveLife(vm, op.AgentOf(vm), op.PodOf(pool, vm));
    if (const auto* c = api::FindCondition(vm.status.conditions, "Draining");
        c && c->status == "True") {
      v.drain_started = ParseTime(c->last_transition_time);
      if (v.drain_started && v.life == VmLife::kBusy) {
        const Duration left =
            *v.drain_started + std::chrono::seconds(pool.spec.drain_timeout_seconds) - now;
        next_timeout = std::min(next_timeout, std::max(left, Duration(std::chrono::seconds(1))));
      }
    }
    views.push_back(std::move(v));
  }
  const PoolPlan plan = pool.spec.provider == api::Provider::kPod
                            ? PlanPodPool(pool.spec, views, now)
                            : PlanExternalPool(pool.spec, views, now);
  for (const auto& why : plan.reasons) spdlog::info("RunnerPool {}: {}", pool.meta.Key(), why);

  auto set_desired = [&](const std::string& name, api::DesiredState d) -> absl::Status {
    auto r = vms_client.MergePatch(
        name, {{"spec", {{"desiredState", std::string(api::DesiredStateName(d))}}}});
    if (!r.ok() && !kube::IsNotFound(r.status())) return r.status();
    return absl::OkStatus();
  };
  auto set_all = [&](const std::vector<std::string>& names, api::DesiredState d) {
    return InParallel(names.size(), [&](size_t i) { return set_desired(names[i], d); });
  };
  RETURN_IF_ERROR(set_all(plan.drain, api::DesiredState::kDrained));
  RETURN_IF_ERROR(set_all(plan.shutdown, api::DesiredState::kShutdown));
  RETURN_IF_ERROR(set_all(plan.activate, api::DesiredState::kRunning));
  RETURN_IF_ERROR(InParallel(plan.remove.size(), [&](size_t i) {
    auto s = vms_client.Delete(plan.remove[i]);
    return s.ok() || kube::IsNotFound(s) ? absl::OkStatus() : s;
  }));
  RETURN_IF_ERROR(InParallel(static_cast<size_t>(std::max(plan.create, 0)), [&](size_t) {
    api::RunnerVM vm;
    vm.meta.name = pool.meta.name + "-" + RandomSuffix();
    vm.meta.ns = pool.meta.ns;
    vm.meta.labels = {{api::kPoolLabel, pool.meta.name}};
    vm.meta.finalizers = {api::kFinalizer};
    vm.meta.owner_references = {
        {api::kGroupVersion, "RunnerPool", pool.meta.name, pool.meta.uid, true}};
    vm.spec.pool_name = pool.meta.name;
    auto r = vms_client.Create(api::EncodeRunnerVM(vm));
    return r.ok() || kube::IsAlreadyExists(r.status()) ? absl::OkStatus() : r.status();
  }));
  if (plan.create > 0) {
    op.Event(pool.meta, "RunnerPool", "Normal", "ScaledUp",
             "created " + std::to_string(plan.create) + " RunnerVMs");
  }
  if (!plan.drain.empty()) {
    std::string names;
    for (const auto& n : plan.drain) names += (names.empty() ? "" : ", ") + n;
    op.Event(pool.meta, "RunnerPool", "Normal", "ScalingDown", "draining " + names);
  }

  // Status.
  const PoolCounts counts = CountPool(views);
  api::RunnerPoolStatus st = pool.status;
  st.observed_generation = pool.meta.generation;
  st.replicas = counts.replicas;
  st.ready_replicas = counts.ready;
  st.idle_runners = counts.idle;
  st.busy_runners = counts.busy;
  st.selector = std::string(api::kPoolLabel) + "=" + pool.meta.name;
  const bool ready = counts.ready >= pool.spec.replicas && counts.serving == pool.spec.replicas;
  api::SetCondition(st.conditions,
                    {"Ready", ready ? "True" : "False", ready ? "AllReady" : "Scaling",
                     std::to_string(counts.ready) + " of " + std::to_string(pool.spec.replicas) +
                         " runners ready",
                     "", pool.meta.generation},
                    now);
  int draining = 0, lost = 0;
  for (const auto& v : views) {
    if (!v.deleting && v.desired != api::DesiredState::kRunning) ++draining;
    if (v.life == VmLife::kLost) ++lost;
  }
  api::SetCondition(
      st.conditions,
      {"ScalingDown", draining > 0 ? "True" : "False", draining > 0 ? "Draining" : "Steady",
       std::to_string(draining) + " runners draining or shutting down", "", pool.meta.generation},
      now);
  api::SetCondition(st.conditions,
                    {"Degraded", lost > 0 ? "True" : "False", lost > 0 ? "AgentsLost" : "Healthy",
                     std::to_string(lost) + " agents lost", "", pool.meta.generation},
                    now);
  std::map<std::string, double> phase_counts;
  for (const auto& vm : vms) phase_counts[vm.status.phase.empty() ? "Pending" : vm.status.phase]++;
  op.RecordPool(pool,
                {{"desired", pool.spec.replicas},
                 {"serving", counts.serving},
                 {"ready", counts.ready},
                 {"idle", counts.idle},
                 {"busy", counts.busy},
                 {"draining", draining},
                 {"lost", lost}},
                phase_counts);
  if (api::EncodeStatus(st) != api::EncodeStatus(pool.status)) {
    auto w = op.o_.kube->Patch(kube::RunnerPools(), pool.meta.ns, pool.meta.name,
                               kube::PatchType::kMerge, api::EncodeStatus(st), "status");
    if (!w.ok() && !kube::IsNotFound(w.status())) return w.status();
  }

  // The sweep: runners of this pool at GitHub that are offline and match no RunnerVM. Once at
  // start, then every sweep interval.
  bool sweep = false;
  {
    std::lock_guard l(op.sweep_mu_);
    auto it = op.last_sweep_.find(pool.meta.Key());
    const MonoTime mono = op.o_.clock->Now();
    if (it == op.last_sweep_.end() || mono - it->second >= op.o_.sweep_interval) {
      op.last_sweep_[pool.meta.Key()] = mono;
      sweep = true;
    }
  }
  if (sweep) {
    auto gh = op.github_->For(pool);
    if (gh.ok()) {
      std::set<std::string> known;
      for (const auto& vm : vms) known.insert(RunnerName(pool, vm));
      auto runners = (*gh)->ListRunners();
      if (runners.ok()) {
        for (const auto& r : *runners) {
          if (r.online() || r.busy || known.count(r.name)) continue;
          if (r.name.rfind(pool.meta.name + "-", 0) != 0) continue;
          auto s = (*gh)->DeleteRunner(r.id);
          spdlog::info("RunnerPool {}: swept offline runner {} (id {}): {}", pool.meta.Key(),
                       r.name, r.id, s.ok() ? "deleted" : s.ToString());
        }
      } else {
        spdlog::warn("RunnerPool {}: sweep: {}", pool.meta.Key(), runners.status().ToString());
      }
    } else {
      op.Event(pool.meta, "RunnerPool", "Warning", "GitHubCredentials",
               std::string(gh.status().message()));
    }
  }

  Duration again = op.o_.sweep_interval;
  if (next_timeout != Duration::max()) again = std::min(again, next_timeout);
  return ctrl::Result{again};
}

}  // namespace

absl::StatusOr<std::unique_ptr<Operator>> MakeOperator(OperatorOptions options) {
  auto op = std::make_unique<OperatorImpl>(std::move(options));
  RETURN_IF_ERROR(op->Init());
  return std::unique_ptr<Operator>(std::move(op));
}

}  // namespace miglet::controllers
