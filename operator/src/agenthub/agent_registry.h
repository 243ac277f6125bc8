#pragma once

#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "hub_metrics.h"
#include "miglet/operator/agent_hub.h"

namespace miglet {

// One live connection to an agent (a gRPC stream). Send never blocks: it queues or fails.
class AgentSession {
 public:
  virtual ~AgentSession() = default;
  // False when the session is closed or could not take the message (it then closes itself).
  virtual bool Send(const commands::ControllerMessage& msg) = 0;
  // Sends an ErrorNotification with `code`/`message`, then ends the stream with `status_code`.
  virtual void Close(const std::string& code, const std::string& message, int grpc_status_code) = 0;
};

// The hub's state: agents, their sessions and their pending commands. Transport-free and
// thread-safe, so handshake, dedup, ordering and timeout rules are unit-tested without gRPC.
// Lock order: the registry's mutex may be held while calling AgentSession::Send/Close;
// sessions never call back into the registry while holding their own lock. Hooks and command
// callbacks always run after the registry's mutex is released.
class AgentRegistry : public AgentHub {
 public:
  AgentRegistry(HubOptions options, std::shared_ptr<Clock> clock, HubMetrics* metrics);

  // AgentHub
  absl::StatusOr<std::string> SendCommand(const std::string& vm_id, commands::Command cmd,
                                          CommandCallback done = {}) override;
  std::optional<AgentInfo> GetAgent(const std::string& vm_id) const override;
  std::vector<AgentInfo> ListAgents() const override;
  void SetChangeHook(std::function<void(const AgentInfo&)> hook) override;
  void SetEventHook(std::function<void(const commands::EventNotification&)> hook) override;

  // Checks a connect request; OK means the stream may attach.
  static absl::Status ValidateConnect(const commands::ConnectRequest& req);
  // vm_id and pool_id: 1 to 253 characters of A-Z a-z 0-9 . _ - (what a RunnerVM or RunnerPool
  // name can be made of, and nothing a log line or a label could be confused by).
  static absl::Status ValidateId(std::string_view field, std::string_view value);

  // Makes `session` the agent's stream: an older stream for the same vm_id is closed, the
  // session gets connect_ack and then every pending command, in order.
  absl::Status Attach(const commands::ConnectRequest& req, std::shared_ptr<AgentSession> session);
  // The session ended. A no-op when a newer session has replaced it.
  void Detach(const std::string& vm_id, const AgentSession* session);

  // Over HTTP, an unknown vm_id is refused with RESOURCE_EXHAUSTED when
  // max_agents_without_stream agents are known without a stream already, and `acks` says
  // whether the client acks its commands (see PollCommands).
  absl::Status OnHeartbeat(const std::string& vm_id, const commands::Heartbeat& hb,
                           bool via_http = false, bool acks = true);
  void OnAck(const std::string& vm_id, const commands::CommandAck& ack);
  absl::Status OnEvent(const std::string& vm_id, commands::EventNotification ev,
                       bool via_http = false, bool acks = true);
  // HTTP polling: the agent's pending commands (all unacked ones; the agent dedups by id).
  // An agent that acks over HTTP (miglet) says so with `acks`. One that does not (the MIGlet
  // agents in the field) has each polled command done when its effect is reported: a
  // register_runner by runner_registered (or a heartbeat with a configured runner), a drain by
  // drained (or a draining heartbeat), a shutdown by vm_shutting_down (or a shutting_down
  // heartbeat), an error event failing any of these; anything else by the next heartbeat. Such
  // an agent is given each command once (it could not tell a repeat from a new one); the ack
  // timeout ends one whose effect never shows.
  absl::StatusOr<std::vector<commands::Command>> PollCommands(const std::string& vm_id,
                                                              bool acks = true);

  // Times out unacked commands, marks silent agents lost (and HTTP pollers gone), and forgets
  // agents with no stream that have been silent for forget_after with nothing pending. Called
  // every second by the hub's timer, and directly by tests with a fake clock.
  void Sweep();

  // Fails every pending command with ABORTED and closes every session (hub shutdown).
  void Shutdown();

  size_t connected_count() const;
  size_t known_count() const;  // agents in memory, with or without a stream

 private:
  struct Pending {
    commands::Command cmd;
    CommandCallback done;
    MonoTime created;
    MonoTime first_sent{};   // zero until delivered
    bool by_effect = false;  // polled by an agent that does not ack: see PollCommands
  };
  struct Agent {
    AgentInfo info;
    std::shared_ptr<AgentSession> session;
    MonoTime last_seen{};
    MonoTime connected_mono{};
    std::deque<Pending> pending;  // in send order
  };
  // Work to do once the lock is released.
  struct Deferred {
    std::vector<AgentInfo> changes;
    std::vector<std::pair<CommandCallback, CommandResult>> completions;
    std::vector<commands::EventNotification> events;
  };

  Agent& GetOrCreateLocked(const std::string& vm_id);
  // For HTTP: the agent, or RESOURCE_EXHAUSTED when it is new and no more stream-less agents
  // may be held.
  absl::StatusOr<Agent*> GetOrAdmitLocked(const std::string& vm_id);
  void MarkDeliveredLocked(Pending& p, MonoTime now);
  // Completes `p` (an iterator into a.pending) as acked with `success` and `message`.
  void CompleteLocked(const std::string& vm_id, Agent& a, std::deque<Pending>::iterator p,
                      bool success, std::string message, std::map<std::string, std::string> result,
                      Deferred& d);
  // The by-effect commands (see PollCommands) that `ev` or `hb` completes.
  void CompleteByEffectLocked(const std::string& vm_id, Agent& a,
                              const commands::EventNotification* ev, const commands::Heartbeat* hb,
                              Deferred& d);
  void UpdateConnectedGaugeLocked();
  // Notes whether an HTTP client acks its commands; true when that changed.
  static bool NoteAcksLocked(Agent& a, bool acks);
  // info.pending_commands and info.pending_types from a.pending.
  void SyncPendingLocked(Agent& a);
  void RunDeferred(Deferred& d);
  std::string NewCommandIdLocked();

  const HubOptions options_;
  const std::shared_ptr<Clock> clock_;
  HubMetrics* const metrics_;

  mutable std::mutex mu_;
  std::unordered_map<std::string, Agent> agents_;
  std::function<void(const AgentInfo&)> change_hook_;
  std::function<void(const commands::EventNotification&)> event_hook_;
  std::mt19937_64 rng_;
  size_t connected_ = 0;
  size_t streams_ = 0;  // agents with a gRPC session
};

}  // namespace miglet
