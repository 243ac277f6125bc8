#include "miglet/operator/kube/leader_elector.h"

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "miglet/operator/kube/errors.h"
#include "miglet/operator/kube/event_recorder.h"
#include "spdlog/spdlog.h"

namespace miglet::kube {

void LeaderElectionState::Observe(const std::optional<LeaseRecord>& record, MonoTime now) {
  const bool changed = record.has_value() != observed_.has_value() ||
                       (record && (record->holder != observed_->holder ||
                                   record->renew_time != observed_->renew_time ||
                                   record->lease_transitions != observed_->lease_transitions));
  if (changed) observed_time_ = now;
  observed_ = record;
  if (leading_ && (!record || record->holder != identity_)) leading_ = false;
}

bool LeaderElectionState::CanAcquire(MonoTime now) const {
  if (!observed_ || observed_->holder.empty() || observed_->holder == identity_) return true;
  const Duration d = observed_->lease_duration_seconds > 0
                         ? Duration(std::chrono::seconds(observed_->lease_duration_seconds))
                         : lease_duration_;
  return now >= observed_time_ + d;
}

LeaseRecord LeaderElectionState::Desired(const std::string& now) const {
  LeaseRecord r;
  r.holder = identity_;
  r.lease_duration_seconds =
      static_cast<int>(std::chrono::duration_cast<std::chrono::seconds>(lease_duration_).count());
  r.renew_time = now;
  if (observed_ && observed_->holder == identity_) {
    r.acquire_time = observed_->acquire_time.empty() ? now : observed_->acquire_time;
    r.lease_transitions = observed_->lease_transitions;
  } else {
    r.acquire_time = now;
    r.lease_transitions = observed_ ? observed_->lease_transitions + 1 : 0;
  }
  return r;
}

void LeaderElectionState::Renewed(const LeaseRecord& written, MonoTime now) {
  observed_ = written;
  observed_time_ = now;
  last_renew_ = now;
  leading_ = true;
}

bool LeaderElectionState::IsLeading(MonoTime now) const {
  return leading_ && now - last_renew_ < renew_deadline_;
}

namespace {

LeaseRecord RecordFrom(const Json& lease) {
  LeaseRecord r;
  const Json spec = lease.value("spec", Json::object());
  r.holder = spec.value("holderIdentity", "");
  r.lease_duration_seconds = spec.value("leaseDurationSeconds", 0);
  r.acquire_time = spec.value("acquireTime", "");
  r.renew_time = spec.value("renewTime", "");
  r.lease_transitions = spec.value("leaseTransitions", 0);
  return r;
}

Json SpecFrom(const LeaseRecord& r) {
  Json s = {{"holderIdentity", r.holder},
            {"leaseDurationSeconds", r.lease_duration_seconds},
            {"leaseTransitions", r.lease_transitions}};
  if (!r.acquire_time.empty()) s["acquireTime"] = r.acquire_time;
  if (!r.renew_time.empty()) s["renewTime"] = r.renew_time;
  return s;
}

class LeaderElectorImpl final : public LeaderElector {
 public:
  LeaderElectorImpl(std::shared_ptr<KubeClient> client, LeaderElectionConfig cfg,
                    std::shared_ptr<Clock> clock)
      : client_(std::move(client)),
        cfg_(std::move(cfg)),
        clock_(std::move(clock)),
        state_(cfg_.identity, cfg_.lease_duration, cfg_.renew_deadline) {}
  ~LeaderElectorImpl() override { Stop(); }

  void Start() override {
    if (thread_.joinable()) return;
    thread_ = std::thread([this] { Run(); });
  }

  void Stop() override {
    {
      std::lock_guard l(mu_);
      if (stopped_) return;
      stopped_ = true;
      cv_.notify_all();
    }
    if (thread_.joinable()) thread_.join();
  }

  bool IsLeader() const override { return leader_.load(); }
  std::string Leader() const override {
    std::lock_guard l(mu_);
    return observed_leader_;
  }

 private:
  bool Wait(Duration d) {
    std::unique_lock l(mu_);
    return !clock_->WaitFor(l, cv_, d, [this] { return stopped_; });
  }

  void Run() {
    while (true) {
      const bool ok = TryAcquireOrRenew();
      const MonoTime now = clock_->Now();
      if (ok && !leader_) {
        leader_ = true;
        spdlog::info("leader election: {} leads {}/{}", cfg_.identity, cfg_.lease_namespace,
                     cfg_.lease_name);
        if (cfg_.on_started_leading) cfg_.on_started_leading();
      } else if (leader_ && !state_.IsLeading(now)) {
        // Someone else holds it now, or we could not renew within the renew deadline.
        leader_ = false;
        state_.Lost();
        spdlog::warn("leader election: {} lost {}/{}", cfg_.identity, cfg_.lease_namespace,
                     cfg_.lease_name);
        if (cfg_.on_stopped_leading) cfg_.on_stopped_leading();
      }
      if (!Wait(cfg_.retry_period)) break;
    }
    if (leader_) {
      if (cfg_.release_on_stop) Release();
      leader_ = false;
      state_.Lost();
      if (cfg_.on_stopped_leading) cfg_.on_stopped_leading();
    }
  }

  void NoteLeader(const std::string& holder) {
    bool changed = false;
    {
      std::lock_guard l(mu_);
      if (holder != observed_leader_) {
        observed_leader_ = holder;
        changed = true;
      }
    }
    if (changed && cfg_.on_new_leader) cfg_.on_new_leader(holder);
  }

  bool TryAcquireOrRenew() {
    const std::string now_str = FormatMicroTime(clock_->WallNow());
    auto got = client_->Get(Leases(), cfg_.lease_namespace, cfg_.lease_name);
    if (!got.ok() && kube::IsNotFound(got.status())) {
      state_.Observe(std::nullopt, clock_->Now());
      const LeaseRecord want = state_.Desired(now_str);
      Json lease = {{"apiVersion", "coordination.k8s.io/v1"},
                    {"kind", "Lease"},
                    {"metadata", {{"name", cfg_.lease_name}, {"namespace", cfg_.lease_namespace}}},
                    {"spec", SpecFrom(want)}};
      auto created = client_->Create(Leases(), cfg_.lease_namespace, lease);
      if (!created.ok()) return false;
      state_.Renewed(want, clock_->Now());
      NoteLeader(want.holder);
      return true;
    }
    if (!got.ok()) {
      spdlog::debug("leader election: get lease: {}", got.status().ToString());
      return false;
    }
    const LeaseRecord rec = RecordFrom(*got);
    state_.Observe(rec, clock_->Now());
    NoteLeader(rec.holder);
    if (!state_.CanAcquire(clock_->Now())) return false;
    const LeaseRecord want = state_.Desired(now_str);
    Json lease = *got;
    lease["spec"] = SpecFrom(want);
    // PUT with the resourceVersion we read: if another replica wrote in between, 409 and we
    // try again next round.
    auto updated = client_->Update(Leases(), cfg_.lease_namespace, lease);
    if (!updated.ok()) return false;
    state_.Renewed(want, clock_->Now());
    NoteLeader(want.holder);
    return true;
  }

  void Release() {
    auto got = client_->Get(Leases(), cfg_.lease_namespace, cfg_.lease_name);
    if (!got.ok()) return;
    LeaseRecord rec = RecordFrom(*got);
    if (rec.holder != cfg_.identity) return;
    Json lease = *got;
    lease["spec"]["holderIdentity"] = "";
    lease["spec"]["leaseDurationSeconds"] = 1;
    lease["spec"]["renewTime"] = FormatMicroTime(clock_->WallNow());
    auto s = client_->Update(Leases(), cfg_.lease_namespace, lease);
    if (!s.ok()) spdlog::warn("leader election: release: {}", s.status().ToString());
  }

  std::shared_ptr<KubeClient> client_;
  LeaderElectionConfig cfg_;
  std::shared_ptr<Clock> clock_;
  LeaderElectionState state_;  // only the elector's thread touches it
  std::thread thread_;
  std::atomic<bool> leader_{false};
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopped_ = false;
  std::string observed_leader_;
};

}  // namespace

std::unique_ptr<LeaderElector> MakeLeaderElector(std::shared_ptr<KubeClient> client,
                                                 LeaderElectionConfig config,
                                                 std::shared_ptr<Clock> clock) {
  return std::make_unique<LeaderElectorImpl>(std::move(client), std::move(config),
                                             std::move(clock));
}

}  // namespace miglet::kube
