#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "miglet/common/clock.h"
#include "miglet/operator/kube/kube_client.h"

namespace miglet::kube {

struct LeaderElectionConfig {
  std::string lease_namespace;
  std::string lease_name;
  std::string identity;  // unique per replica (pod name + a random suffix)
  Duration lease_duration = std::chrono::seconds(15);
  Duration renew_deadline = std::chrono::seconds(10);
  Duration retry_period = std::chrono::seconds(2);
  // Called from the elector's thread. on_stopped_leading fires the moment leadership is lost
  // (or released); the caller must stop acting as leader right then.
  std::function<void()> on_started_leading;
  std::function<void()> on_stopped_leading;
  std::function<void(const std::string& identity)> on_new_leader;
  bool release_on_stop = true;
};

class LeaderElector {
 public:
  virtual ~LeaderElector() = default;
  // Starts the elector's thread: acquire, then renew until stopped or lost. After losing the
  // lease it goes back to trying to acquire it.
  virtual void Start() = 0;
  // Stops; when leading and release_on_stop, the lease is released (holder cleared) so another
  // replica takes over without waiting for it to expire.
  virtual void Stop() = 0;
  virtual bool IsLeader() const = 0;
  virtual std::string Leader() const = 0;  // the holder last observed
};

// `client` should have a request timeout (KubeConfig::request_timeout_seconds) shorter than
// the renew deadline.
std::unique_ptr<LeaderElector> MakeLeaderElector(std::shared_ptr<KubeClient> client,
                                                 LeaderElectionConfig config,
                                                 std::shared_ptr<Clock> clock);

// The lease record (coordination.k8s.io/v1 LeaseSpec) and the decision logic, separate from
// the API calls so it can be tested with a fake clock.
struct LeaseRecord {
  std::string holder;
  int lease_duration_seconds = 0;
  std::string acquire_time;  // RFC 3339 micro time
  std::string renew_time;
  int lease_transitions = 0;
};

class LeaderElectionState {
 public:
  LeaderElectionState(std::string identity, Duration lease_duration, Duration renew_deadline)
      : identity_(std::move(identity)),
        lease_duration_(lease_duration),
        renew_deadline_(renew_deadline) {}

  // What the elector saw on the server at `now` (nullopt: no Lease yet). Like client-go, a
  // lease held by someone else is considered live for lease_duration after its record last
  // changed as observed locally — clocks of different machines are never compared.
  void Observe(const std::optional<LeaseRecord>& record, MonoTime now);
  // May we write ourselves into the lease now?
  bool CanAcquire(MonoTime now) const;
  // The record to write to acquire or renew (keeps acquire_time/transitions when renewing).
  LeaseRecord Desired(const std::string& now_rfc3339) const;
  // Our write was accepted at `now`.
  void Renewed(const LeaseRecord& written, MonoTime now);
  // Leading, and the last successful renew is within renew_deadline of `now`.
  bool IsLeading(MonoTime now) const;
  bool WasLeading() const { return leading_; }
  // We stopped leading (lost or released).
  void Lost() { leading_ = false; }
  const std::optional<LeaseRecord>& observed() const { return observed_; }

 private:
  std::string identity_;
  Duration lease_duration_;
  Duration renew_deadline_;
  std::optional<LeaseRecord> observed_;
  MonoTime observed_time_{};
  MonoTime last_renew_{};
  bool leading_ = false;
};

}  // namespace miglet::kube
