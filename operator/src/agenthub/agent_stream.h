#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <deque>
#include <memory>
#include <mutex>

#include "agent_registry.h"
#include "miglet/commands/commands.grpc.pb.h"

namespace miglet {

// One agent's StreamCommands call: a callback reactor (no thread of its own) that is also the
// registry's AgentSession for that agent. Exactly one write in flight with a bounded queue
// behind it; Finish is called once; the object lives until OnDone and until the registry lets
// go of it (shared ownership, so a late Send from the registry is safe and simply refused).
class AgentStream final
    : public grpc::ServerBidiReactor<commands::MIGletMessage, commands::ControllerMessage>,
      public AgentSession,
      public std::enable_shared_from_this<AgentStream> {
 public:
  struct Options {
    size_t max_outbound_queue;
    double max_messages_per_second = 100;
    double message_burst = 2000;
    std::atomic<size_t>* open_streams = nullptr;  // decremented when the stream is done
    // Asked whether a connect's credentials may speak for its vm_id; null or empty: anyone.
    const AgentAuthorizer* authorize = nullptr;
    // A verified client certificate must name the connect's vm_id (its subject CN).
    bool client_cert_names_vm = true;
  };
  // Called when the stream closes itself with an error, so that the server can cancel it if
  // the status cannot be delivered within the finish grace.
  using FinishingHook = std::function<void(std::weak_ptr<AgentStream>)>;

  AgentStream(grpc::CallbackServerContext* ctx, AgentRegistry* registry, HubMetrics* metrics,
              Options options, FinishingHook on_finishing);

  // Takes a self-reference until OnDone and starts the first read.
  void Begin();

  // AgentSession
  bool Send(const commands::ControllerMessage& msg) override;
  void Close(const std::string& code, const std::string& message, int grpc_status_code) override;

  // Cancels the call if it has been finishing with an error for longer than `grace`.
  void CancelIfStuck(MonoTime now, Duration grace);
  // Closes the stream with DEADLINE_EXCEEDED if it has not sent connect within `timeout` of
  // its start. True when it is done with its handshake (connected, or closed).
  bool CloseIfNoConnect(MonoTime now, Duration timeout);
  // Ends a stream the server will not take (too many open) with `status`.
  void Refuse(grpc::Status status);

  // Reactions.
  void OnReadDone(bool ok) override;
  void OnWriteDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override;

 private:
  // False when the next read must wait (a connect whose credentials are being checked).
  bool Handle(const commands::MIGletMessage& msg);
  // The connect once its credentials are checked: attaches the agent, or refuses it.
  void FinishConnect(const commands::ConnectRequest& req, const absl::Status& auth);
  void ResumeReading();
  // Queues an ErrorNotification and ends the stream with `status` once it is written.
  void CloseWithError(const std::string& code, const std::string& message, grpc::Status status);
  void FinishAfterDrain(grpc::Status status);
  void FinishNow(grpc::Status status);
  bool StartNextReadLocked();

  grpc::CallbackServerContext* const ctx_;
  AgentRegistry* const registry_;
  HubMetrics* const metrics_;
  const Options options_;
  FinishingHook on_finishing_;

  commands::MIGletMessage in_;
  std::string vm_id_;  // set once connect is accepted
  std::atomic<bool> attached_{false};
  // 2 while a connect's credentials are checked: the check's answer and Handle's return each
  // take one; whichever comes last starts the next read.
  std::atomic<int> connect_steps_{0};
  const MonoTime started_ = std::chrono::steady_clock::now();
  // The message budget (reactions run one at a time per stream: no lock needed).
  double tokens_;
  MonoTime refilled_ = started_;

  std::mutex mu_;
  std::deque<commands::ControllerMessage> out_;
  bool writing_ = false;
  bool finish_requested_ = false;  // no more sends accepted
  bool finish_called_ = false;
  bool finish_after_drain_ = false;
  bool done_ = false;
  grpc::Status finish_status_;
  MonoTime finishing_since_{};
  std::shared_ptr<AgentStream> self_;
};

}  // namespace miglet
