#include "agent_registry.h"

#include <malloc.h>

#include <cstdio>

#include "absl/strings/str_format.h"
#include "miglet/common/status.h"

#include "spdlog/spdlog.h"

namespace miglet {

namespace {

constexpr int kGrpcAborted = 10;
constexpr int kGrpcUnavailable = 14;

bool SameRunner(const commands::RunnerState& a, const commands::RunnerState& b) {
  if (a.state() != b.state() || a.configured() != b.configured() ||
      a.runner_name() != b.runner_name() || a.labels_size() != b.labels_size()) {
    return false;
  }
  for (int i = 0; i < a.labels_size(); ++i) {
    if (a.labels(i) != b.labels(i)) return false;
  }
  return true;
}

bool SameJob(const commands::JobInfo& a, const commands::JobInfo& b) {
  return a.job_id() == b.job_id() && a.run_id() == b.run_id() && a.status() == b.status();
}

}  // namespace

AgentRegistry::AgentRegistry(HubOptions options, std::shared_ptr<Clock> clock, HubMetrics* metrics)
    : options_(std::move(options)),
      clock_(std::move(clock)),
      metrics_(metrics),
      rng_(std::random_device{}()) {}

absl::Status AgentRegistry::ValidateId(std::string_view field, std::string_view value) {
  const std::string f(field);
  if (value.empty()) return absl::InvalidArgumentError(f + " is required");
  if (value.size() > 253) {
    return absl::InvalidArgumentError(f + " must be at most 253 characters (got " +
                                      std::to_string(value.size()) + ")");
  }
  for (char c : value) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok) {
      return absl::InvalidArgumentError(
          f + " may hold only letters, digits, '.', '_' and '-' (found byte 0x" +
          absl::StrFormat("%02x", static_cast<unsigned char>(c)) + ")");
    }
  }
  return absl::OkStatus();
}

absl::Status AgentRegistry::ValidateConnect(const commands::ConnectRequest& req) {
  if (auto st = ValidateId("vm_id", req.vm_id()); !st.ok()) {
    return absl::InvalidArgumentError("connect: " + std::string(st.message()));
  }
  if (auto st = ValidateId("pool_id", req.pool_id()); !st.ok()) {
    return absl::InvalidArgumentError("connect: " + std::string(st.message()));
  }
  return absl::OkStatus();
}

AgentRegistry::Agent& AgentRegistry::GetOrCreateLocked(const std::string& vm_id) {
  auto [it, inserted] = agents_.try_emplace(vm_id);
  if (inserted) {
    it->second.info.vm_id = vm_id;
    // Silence is counted from here for an agent known before it ever spoke (a command queued
    // for it): not from the clock's epoch, which would forget it at once.
    it->second.last_seen = clock_->Now();
  }
  return it->second;
}

absl::StatusOr<AgentRegistry::Agent*> AgentRegistry::GetOrAdmitLocked(const std::string& vm_id) {
  auto it = agents_.find(vm_id);
  if (it != agents_.end()) return &it->second;
  if (agents_.size() - streams_ >= options_.max_agents_without_stream) {
    if (metrics_) metrics_->Refused("too_many_agents_without_stream");
    return absl::ResourceExhaustedError(
        "the hub already holds " + std::to_string(agents_.size() - streams_) +
        " agents without a stream (hub.max_agents_without_stream); vm_id " + vm_id +
        " is refused until silent ones are forgotten");
  }
  return &GetOrCreateLocked(vm_id);
}

std::string AgentRegistry::NewCommandIdLocked() {
  char buf[40];
  snprintf(buf, sizeof(buf), "cmd-%016llx", static_cast<unsigned long long>(rng_()));
  return buf;
}

void AgentRegistry::MarkDeliveredLocked(Pending& p, MonoTime now) {
  if (p.first_sent == MonoTime{}) p.first_sent = now;
  if (metrics_) metrics_->CommandSent(p.cmd.type());
}

void AgentRegistry::CompleteLocked(const std::string& vm_id, Agent& a,
                                   std::deque<Pending>::iterator p, bool success,
                                   std::string message, std::map<std::string, std::string> result,
                                   Deferred& d) {
  const MonoTime now = clock_->Now();
  const MonoTime sent = p->first_sent == MonoTime{} ? p->created : p->first_sent;
  CommandResult r;
  r.vm_id = vm_id;
  r.command_id = p->cmd.id();
  r.type = p->cmd.type();
  r.status = absl::OkStatus();
  r.success = success;
  r.message = std::move(message);
  r.result = std::move(result);
  r.latency = now - sent;
  if (metrics_) metrics_->CommandAck(r.type, success ? "success" : "failure", ToSeconds(r.latency));
  d.completions.emplace_back(std::move(p->done), std::move(r));
  a.pending.erase(p);
  SyncPendingLocked(a);
}

void AgentRegistry::CompleteByEffectLocked(const std::string& vm_id, Agent& a,
                                           const commands::EventNotification* ev,
                                           const commands::Heartbeat* hb, Deferred& d) {
  for (size_t i = 0; i < a.pending.size();) {
    auto p = a.pending.begin() + static_cast<std::ptrdiff_t>(i);
    if (!p->by_effect) {
      ++i;
      continue;
    }
    const std::string& type = p->cmd.type();
    std::optional<bool> done;  // success, when this report completes the command
    std::string why;
    if (ev != nullptr) {
      const std::string& t = ev->type();
      auto detail = [&](const char* k) {
        auto it = ev->data().find(k);
        return it == ev->data().end() ? std::string() : it->second;
      };
      const bool failed = t == "error" || t == "runner_crashed";
      if ((type == "register_runner" && t == "runner_registered") ||
          (type == "drain" && t == "drained") || (type == "shutdown" && t == "vm_shutting_down")) {
        done = true;
        why = "reported by the agent's " + t + " event";
      } else if (failed && (type == "register_runner" || type == "drain" || type == "shutdown")) {
        done = false;
        why = t + " event: " + (detail("message").empty() ? detail("reason") : detail("message"));
      }
    } else if (hb != nullptr) {
      const std::string& s = hb->miglet_state();
      const std::string& runner = hb->runner_state().state();
      if (type == "register_runner") {
        if (hb->runner_state().configured() && (runner == "idle" || runner == "running")) {
          done = true;
          why = "the agent's heartbeat shows its runner " + runner;
        }
      } else if (type == "drain") {
        if (s == "draining" || s == "shutting_down") done = true;
        why = "the agent's heartbeat shows it " + s;
      } else if (type == "shutdown") {
        if (s == "shutting_down") done = true;
        why = "the agent's heartbeat shows it " + s;
      } else {
        // Nothing else shows in a field agent's report: taken as applied once it has reported
        // again after polling the command.
        done = true;
        why = "the agent does not ack over HTTP: taken as applied at its next heartbeat";
      }
    }
    if (!done) {
      ++i;
      continue;
    }
    CompleteLocked(vm_id, a, p, *done, why, {}, d);  // erases it: i is the next one now
  }
}

bool AgentRegistry::NoteAcksLocked(Agent& a, bool acks) {
  if (a.info.acks_commands == acks) return false;
  a.info.acks_commands = acks;
  return true;
}

void AgentRegistry::SyncPendingLocked(Agent& a) {
  a.info.pending_commands = a.pending.size();
  a.info.pending_types.clear();
  for (const auto& p : a.pending) a.info.pending_types.push_back(p.cmd.type());
}

void AgentRegistry::UpdateConnectedGaugeLocked() {
  if (metrics_) metrics_->SetAgentsConnected(static_cast<double>(connected_));
}

void AgentRegistry::RunDeferred(Deferred& d) {
  if (d.changes.empty() && d.events.empty() && d.completions.empty()) return;  // the common case
  std::function<void(const AgentInfo&)> change_hook;
  std::function<void(const commands::EventNotification&)> event_hook;
  {
    std::lock_guard l(mu_);
    change_hook = change_hook_;
    event_hook = event_hook_;
  }
  if (change_hook) {
    for (const auto& c : d.changes) change_hook(c);
  }
  if (event_hook) {
    for (const auto& e : d.events) event_hook(e);
  }
  for (auto& [cb, result] : d.completions) {
    if (cb) cb(result);
  }
}

absl::StatusOr<std::string> AgentRegistry::SendCommand(const std::string& vm_id,
                                                       commands::Command cmd,
                                                       CommandCallback done) {
  if (vm_id.empty()) return absl::InvalidArgumentError("vm_id is required");
  if (cmd.type().empty()) return absl::InvalidArgumentError("command type is required");
  std::lock_guard l(mu_);
  Agent& a = GetOrCreateLocked(vm_id);
  if (cmd.id().empty()) {
    cmd.set_id(NewCommandIdLocked());
  } else {
    for (const auto& p : a.pending) {
      if (p.cmd.id() == cmd.id()) return cmd.id();  // already on its way
    }
  }
  if (a.pending.size() >= options_.max_pending_per_agent) {
    return absl::ResourceExhaustedError("agent " + vm_id + " already has " +
                                        std::to_string(a.pending.size()) +
                                        " unacknowledged commands");
  }
  const MonoTime now = clock_->Now();
  if (cmd.created_at() == 0) cmd.set_created_at(clock_->UnixSeconds());
  a.pending.push_back(Pending{std::move(cmd), std::move(done), now, {}});
  SyncPendingLocked(a);
  Pending& p = a.pending.back();
  if (a.session) {
    commands::ControllerMessage msg;
    *msg.mutable_command() = p.cmd;
    if (a.session->Send(msg)) MarkDeliveredLocked(p, now);
  }
  return p.cmd.id();
}

std::optional<AgentInfo> AgentRegistry::GetAgent(const std::string& vm_id) const {
  std::lock_guard l(mu_);
  auto it = agents_.find(vm_id);
  if (it == agents_.end()) return std::nullopt;
  return it->second.info;
}

std::vector<AgentInfo> AgentRegistry::ListAgents() const {
  std::lock_guard l(mu_);
  std::vector<AgentInfo> out;
  out.reserve(agents_.size());
  for (const auto& [_, a] : agents_) out.push_back(a.info);
  return out;
}

void AgentRegistry::SetChangeHook(std::function<void(const AgentInfo&)> hook) {
  std::lock_guard l(mu_);
  change_hook_ = std::move(hook);
}

void AgentRegistry::SetEventHook(std::function<void(const commands::EventNotification&)> hook) {
  std::lock_guard l(mu_);
  event_hook_ = std::move(hook);
}

size_t AgentRegistry::connected_count() const {
  std::lock_guard l(mu_);
  return connected_;
}

size_t AgentRegistry::known_count() const {
  std::lock_guard l(mu_);
  return agents_.size();
}

absl::Status AgentRegistry::Attach(const commands::ConnectRequest& req,
                                   std::shared_ptr<AgentSession> session) {
  auto valid = ValidateConnect(req);
  if (!valid.ok()) return valid;
  Deferred d;
  {
    std::lock_guard l(mu_);
    Agent& a = GetOrCreateLocked(req.vm_id());
    if (a.session && a.session != session) {
      spdlog::info("agent {}: a new stream replaces the open one", req.vm_id());
      if (metrics_) metrics_->StreamError("replaced");
      a.session->Close("replaced", "a newer stream for vm_id " + req.vm_id() + " replaced this one",
                       kGrpcAborted);
    }
    const MonoTime now = clock_->Now();
    if (!a.info.connected) ++connected_;
    if (!a.session) ++streams_;
    a.session = session;
    a.info.pool_id = req.pool_id();
    a.info.org_id = req.org_id();
    a.info.version = req.version();
    a.info.connected = true;
    a.info.transport = "grpc";
    a.info.acks_commands = true;
    a.info.lost = false;
    a.info.connected_at = clock_->WallNow();
    a.connected_mono = now;
    a.last_seen = now;
    UpdateConnectedGaugeLocked();

    commands::ControllerMessage ack;
    auto* ca = ack.mutable_connect_ack();
    ca->set_accepted(true);
    ca->set_message("welcome " + req.vm_id());
    ca->set_server_version(options_.server_version);
    if (session->Send(ack)) {
      // Everything unacked, in the order it was first sent: the agent dedups by id.
      for (auto& p : a.pending) {
        commands::ControllerMessage msg;
        *msg.mutable_command() = p.cmd;
        if (!session->Send(msg)) break;
        MarkDeliveredLocked(p, now);
        p.by_effect = false;  // acked on the stream
      }
    }
    d.changes.push_back(a.info);
  }
  RunDeferred(d);
  return absl::OkStatus();
}

void AgentRegistry::Detach(const std::string& vm_id, const AgentSession* session) {
  Deferred d;
  {
    std::lock_guard l(mu_);
    auto it = agents_.find(vm_id);
    if (it == agents_.end() || it->second.session.get() != session) return;
    Agent& a = it->second;
    a.session.reset();
    --streams_;
    if (a.info.connected) --connected_;
    a.info.connected = false;
    a.info.transport.clear();
    UpdateConnectedGaugeLocked();
    d.changes.push_back(a.info);
  }
  RunDeferred(d);
}

absl::Status AgentRegistry::OnHeartbeat(const std::string& vm_id, const commands::Heartbeat& hb,
                                        bool via_http, bool acks) {
  if (metrics_) metrics_->HeartbeatReceived();
  Deferred d;
  {
    std::lock_guard l(mu_);
    ASSIGN_OR_RETURN(Agent * ap, via_http ? GetOrAdmitLocked(vm_id) : &GetOrCreateLocked(vm_id));
    Agent& a = *ap;
    bool changed = false;
    if (via_http && !a.info.connected) {
      // An HTTP poller counts as connected while it keeps talking.
      ++connected_;
      a.info.connected = true;
      a.info.transport = "http";
      a.info.connected_at = clock_->WallNow();
      a.connected_mono = clock_->Now();
      UpdateConnectedGaugeLocked();
      changed = true;
    }
    if (a.info.pool_id.empty()) a.info.pool_id = hb.pool_id();
    if (a.info.org_id.empty()) a.info.org_id = hb.org_id();
    a.last_seen = clock_->Now();
    a.info.last_heartbeat = clock_->WallNow();
    ++a.info.heartbeats;
    if (a.info.lost) {
      a.info.lost = false;
      changed = true;
    }
    if (a.info.miglet_state != hb.miglet_state()) {
      a.info.miglet_state = hb.miglet_state();
      changed = true;
    }
    if (!SameRunner(a.info.runner, hb.runner_state())) {
      a.info.runner = hb.runner_state();
      changed = true;
    }
    if (!SameJob(a.info.current_job, hb.current_job())) {
      a.info.current_job = hb.current_job();
      changed = true;
    } else if (hb.has_current_job()) {
      a.info.current_job = hb.current_job();
    }
    a.info.health = hb.health();
    if (via_http && NoteAcksLocked(a, acks)) changed = true;
    CompleteByEffectLocked(vm_id, a, nullptr, &hb, d);
    if (changed) d.changes.push_back(a.info);
  }
  RunDeferred(d);
  return absl::OkStatus();
}

void AgentRegistry::OnAck(const std::string& vm_id, const commands::CommandAck& ack) {
  Deferred d;
  {
    std::lock_guard l(mu_);
    auto it = agents_.find(vm_id);
    if (it == agents_.end()) return;
    Agent& a = it->second;
    const MonoTime now = clock_->Now();
    a.last_seen = now;
    auto p = std::find_if(a.pending.begin(), a.pending.end(),
                          [&](const Pending& x) { return x.cmd.id() == ack.command_id(); });
    if (p == a.pending.end()) {
      // A re-ack of something already done (the agent re-acks re-sent commands).
      if (metrics_) metrics_->CommandAck("other", "duplicate", -1);
      return;
    }
    CompleteLocked(vm_id, a, p, ack.success(), ack.message(),
                   {ack.result().begin(), ack.result().end()}, d);
  }
  RunDeferred(d);
}

absl::Status AgentRegistry::OnEvent(const std::string& vm_id, commands::EventNotification ev,
                                    bool via_http, bool acks) {
  Deferred d;
  {
    std::lock_guard l(mu_);
    ASSIGN_OR_RETURN(Agent * ap, via_http ? GetOrAdmitLocked(vm_id) : &GetOrCreateLocked(vm_id));
    Agent& a = *ap;
    a.last_seen = clock_->Now();
    if (ev.vm_id().empty()) ev.set_vm_id(vm_id);
    if (ev.pool_id().empty()) ev.set_pool_id(a.info.pool_id);
    if (ev.org_id().empty()) ev.set_org_id(a.info.org_id);
    if (via_http && NoteAcksLocked(a, acks)) d.changes.push_back(a.info);
    CompleteByEffectLocked(vm_id, a, &ev, nullptr, d);
    d.events.push_back(std::move(ev));
  }
  RunDeferred(d);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<commands::Command>> AgentRegistry::PollCommands(const std::string& vm_id,
                                                                           bool acks) {
  Deferred d;
  std::vector<commands::Command> out;
  {
    std::lock_guard l(mu_);
    ASSIGN_OR_RETURN(Agent * ap, GetOrAdmitLocked(vm_id));
    Agent& a = *ap;
    const MonoTime now = clock_->Now();
    a.last_seen = now;
    if (!a.info.connected) {
      ++connected_;
      a.info.connected = true;
      a.info.transport = "http";
      a.info.connected_at = clock_->WallNow();
      a.connected_mono = now;
      UpdateConnectedGaugeLocked();
      d.changes.push_back(a.info);
    }
    if (NoteAcksLocked(a, acks)) d.changes.push_back(a.info);
    for (auto& p : a.pending) {
      // An agent that does not ack gets each command once: it cannot say it has one already.
      if (!acks && p.by_effect) continue;
      out.push_back(p.cmd);
      MarkDeliveredLocked(p, now);
      p.by_effect = !acks;
    }
  }
  RunDeferred(d);
  return out;
}

void AgentRegistry::Sweep() {
  Deferred d;
  size_t forgotten = 0;
  {
    std::lock_guard l(mu_);
    const MonoTime now = clock_->Now();
    for (auto& [vm_id, a] : agents_) {
      while (!a.pending.empty() && now - a.pending.front().created >= options_.ack_timeout) {
        // Commands time out in creation order, so the front is always the oldest.
        Pending& p = a.pending.front();
        CommandResult r;
        r.vm_id = vm_id;
        r.command_id = p.cmd.id();
        r.type = p.cmd.type();
        r.status = absl::DeadlineExceededError(
            "no ack from agent " + vm_id + " within " +
            std::to_string(static_cast<int>(ToSeconds(options_.ack_timeout))) + "s");
        if (metrics_) metrics_->CommandAck(r.type, "timeout", -1);
        d.completions.emplace_back(std::move(p.done), std::move(r));
        a.pending.pop_front();
        SyncPendingLocked(a);
      }
      if (now - a.last_seen < options_.heartbeat_timeout) continue;
      if (!a.info.connected) {
        // Its stream ended and it has not come back: as lost as a silent one.
        if (!a.info.lost && a.connected_mono != MonoTime{}) {
          a.info.lost = true;
          d.changes.push_back(a.info);
        }
        continue;
      }
      if (a.info.transport == "http") {
        // An HTTP poller has no connection to lose: silence is disconnection.
        --connected_;
        a.info.connected = false;
        a.info.transport.clear();
        a.info.lost = true;
        UpdateConnectedGaugeLocked();
        d.changes.push_back(a.info);
      } else if (!a.info.lost) {
        spdlog::warn("agent {}: no heartbeat for {:.0f}s, marking it lost", vm_id,
                     ToSeconds(now - a.last_seen));
        a.info.lost = true;
        d.changes.push_back(a.info);
      }
    }
    // Agents with no stream, silent for forget_after, with nothing pending: forgotten.
    for (auto it = agents_.begin(); it != agents_.end();) {
      const Agent& a = it->second;
      if (!a.session && !a.info.connected && a.pending.empty() &&
          now - a.last_seen >= options_.forget_after) {
        it = agents_.erase(it);
        ++forgotten;
      } else {
        ++it;
      }
    }
    if (forgotten > 0 && agents_.empty()) agents_.rehash(0);
    if (metrics_) metrics_->SetAgentsKnown(static_cast<double>(agents_.size()));
  }
  RunDeferred(d);
  // Many forgotten at once (a flood of made-up vm_ids gone quiet): give the memory back.
  if (forgotten >= 1024) malloc_trim(0);
}

void AgentRegistry::Shutdown() {
  Deferred d;
  {
    std::lock_guard l(mu_);
    for (auto& [vm_id, a] : agents_) {
      if (a.session) {
        a.session->Close("shutting_down", "the controller is shutting down", kGrpcUnavailable);
        a.session.reset();
      }
      for (auto& p : a.pending) {
        CommandResult r;
        r.vm_id = vm_id;
        r.command_id = p.cmd.id();
        r.type = p.cmd.type();
        r.status = absl::AbortedError("the agent hub stopped");
        d.completions.emplace_back(std::move(p.done), std::move(r));
      }
      a.pending.clear();
      SyncPendingLocked(a);
      a.info.connected = false;
    }
    connected_ = 0;
    streams_ = 0;
    UpdateConnectedGaugeLocked();
  }
  RunDeferred(d);
}

}  // namespace miglet
