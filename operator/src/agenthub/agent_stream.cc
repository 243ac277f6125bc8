#include "agent_stream.h"

#include <algorithm>

#include "miglet/common/duration.h"
#include "miglet/common/http.h"
#include "miglet/common/tsan.h"
#include "spdlog/spdlog.h"

namespace miglet {

namespace {
commands::ControllerMessage ErrorMessage(const std::string& code, const std::string& message) {
  commands::ControllerMessage m;
  auto* e = m.mutable_error();
  e->set_code(code);
  e->set_message(message);
  e->set_timestamp(std::chrono::duration_cast<std::chrono::seconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count());
  return m;
}
}  // namespace

AgentStream::AgentStream(grpc::CallbackServerContext* ctx, AgentRegistry* registry,
                         HubMetrics* metrics, Options options, FinishingHook on_finishing)
    : ctx_(ctx),
      registry_(registry),
      metrics_(metrics),
      options_(options),
      on_finishing_(std::move(on_finishing)),
      tokens_(options.message_burst) {}

bool AgentStream::CloseIfNoConnect(MonoTime now, Duration timeout) {
  if (attached_) return true;
  {
    std::lock_guard l(mu_);
    if (finish_requested_) return true;
  }
  if (now - started_ < timeout) return false;
  if (metrics_) metrics_->StreamError("handshake_timeout");
  const std::string m =
      "no connect message within " +
      std::to_string(std::chrono::duration_cast<std::chrono::seconds>(timeout).count()) +
      "s of opening the stream";
  CloseWithError("handshake_timeout", m, grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, m));
  return true;
}

void AgentStream::Refuse(grpc::Status status) {
  self_ = shared_from_this();
  FinishNow(std::move(status));
}

void AgentStream::Begin() {
  self_ = shared_from_this();
  StartRead(&in_);
}

bool AgentStream::Send(const commands::ControllerMessage& msg) {
  const commands::ControllerMessage* to_write = nullptr;
  bool overflow = false;
  {
    std::lock_guard l(mu_);
    if (finish_requested_) return false;
    if (out_.size() >= options_.max_outbound_queue) {
      overflow = true;
    } else {
      out_.push_back(msg);
      if (!writing_) {
        writing_ = true;
        to_write = &out_.front();  // deque::push_back keeps references to elements valid
      }
    }
  }
  if (overflow) {
    spdlog::warn("agent {}: {} messages queued and none read; disconnecting", vm_id_,
                 options_.max_outbound_queue);
    if (metrics_) metrics_->StreamError("slow_consumer");
    FinishNow(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                           "the agent is not reading its stream: outbound queue full"));
    return false;
  }
  if (to_write) StartWrite(to_write);
  return true;
}

void AgentStream::Close(const std::string& code, const std::string& message, int grpc_status_code) {
  CloseWithError(code, message,
                 grpc::Status(static_cast<grpc::StatusCode>(grpc_status_code), message));
}

void AgentStream::CloseWithError(const std::string& code, const std::string& message,
                                 grpc::Status status) {
  const commands::ControllerMessage* to_write = nullptr;
  {
    std::lock_guard l(mu_);
    if (finish_requested_) return;
    // The error goes out even when the queue is full: it is the last message.
    out_.push_back(ErrorMessage(code, message));
    if (!writing_) {
      writing_ = true;
      to_write = &out_.front();
    }
  }
  if (to_write) StartWrite(to_write);
  FinishAfterDrain(std::move(status));
}

void AgentStream::FinishAfterDrain(grpc::Status status) {
  bool now = false;
  {
    std::lock_guard l(mu_);
    if (finish_requested_) return;
    finish_requested_ = true;
    finish_status_ = status;
    finishing_since_ = std::chrono::steady_clock::now();
    if (!writing_) {
      finish_called_ = true;
      now = true;
    } else {
      finish_after_drain_ = true;
    }
  }
  if (!status.ok() && on_finishing_) on_finishing_(weak_from_this());
  if (now) Finish(status);
}

void AgentStream::FinishNow(grpc::Status status) {
  {
    std::lock_guard l(mu_);
    if (finish_called_) return;
    finish_requested_ = true;
    finish_called_ = true;
    finish_status_ = status;
    finishing_since_ = std::chrono::steady_clock::now();
  }
  if (!status.ok() && on_finishing_) on_finishing_(weak_from_this());
  Finish(status);
}

void AgentStream::CancelIfStuck(MonoTime now, Duration grace) {
  {
    std::lock_guard l(mu_);
    if (done_ || !finish_requested_ || now - finishing_since_ < grace) return;
  }
  ctx_->TryCancel();
}

void AgentStream::OnWriteDone(bool ok) {
  const commands::ControllerMessage* next = nullptr;
  bool finish = false;
  grpc::Status status;
  {
    std::lock_guard l(mu_);
    out_.pop_front();
    if (!ok) {
      // The stream is broken; the read side will fail too and end the call.
      out_.clear();
      writing_ = false;
    } else if (!out_.empty()) {
      next = &out_.front();
    } else {
      writing_ = false;
    }
    if (!writing_ && finish_after_drain_ && !finish_called_) {
      finish_called_ = true;
      finish = true;
      status = finish_status_;
    }
  }
  if (next) StartWrite(next);
  if (finish) Finish(status);
}

void AgentStream::OnReadDone(bool ok) {
  if (!ok) {
    // The agent closed its side, the connection broke, or gRPC refused the message (over the
    // size limit): nothing more will be read.
    if (ctx_->IsCancelled() && metrics_) metrics_->StreamError("transport");
    FinishAfterDrain(grpc::Status::OK);
    return;
  }
  // The message budget: a token bucket, refilled by the time since the last message.
  const MonoTime now = std::chrono::steady_clock::now();
  tokens_ = std::min(options_.message_burst,
                     tokens_ + ToSeconds(now - refilled_) * options_.max_messages_per_second);
  refilled_ = now;
  if (tokens_ < 1) {
    if (metrics_) metrics_->StreamError("rate_limited");
    const std::string m =
        "more than " + std::to_string(static_cast<int>(options_.max_messages_per_second)) +
        " messages per second (burst " + std::to_string(static_cast<int>(options_.message_burst)) +
        ") on one stream";
    spdlog::warn("agent {}: {}; closing its stream", vm_id_.empty() ? "(not connected)" : vm_id_,
                 m);
    CloseWithError("rate_limited", m, grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, m));
    return;
  }
  tokens_ -= 1;
  if (Handle(in_)) ResumeReading();
}

void AgentStream::ResumeReading() {
  {
    std::lock_guard l(mu_);
    if (finish_requested_) return;
  }
  StartRead(&in_);
}

void AgentStream::FinishConnect(const commands::ConnectRequest& req, const absl::Status& auth) {
  if (!auth.ok()) {
    // UNAVAILABLE (not checked now): the agent retries after its backoff.
    const char* reason = RefusalOf(auth).reason;
    const auto code =
        auth.code() == absl::StatusCode::kUnauthenticated    ? grpc::StatusCode::UNAUTHENTICATED
        : auth.code() == absl::StatusCode::kPermissionDenied ? grpc::StatusCode::PERMISSION_DENIED
                                                             : grpc::StatusCode::UNAVAILABLE;
    if (metrics_) metrics_->Refused(reason);
    const std::string m = "connect as " + req.vm_id() + " refused: " + std::string(auth.message());
    spdlog::warn("agent {}: {} (peer {})", req.vm_id(), m, ctx_->peer());
    CloseWithError(reason, m, grpc::Status(code, m));
    return;
  }
  {
    std::lock_guard l(mu_);
    if (finish_requested_ || done_) return;  // the stream went while its credentials were checked
    vm_id_ = req.vm_id();
    attached_ = true;
  }
  if (auto st = registry_->Attach(req, shared_from_this()); !st.ok()) {
    attached_ = false;
    if (metrics_) metrics_->StreamError("handshake");
    const std::string m(st.message());
    CloseWithError("invalid_connect", m, grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, m));
    return;
  }
  bool gone;
  {
    std::lock_guard l(mu_);
    gone = done_;
  }
  // OnDone came between the check above and Attach: it may have detached before the attach.
  if (gone) {
    registry_->Detach(vm_id_, this);
    return;
  }
  spdlog::info("agent {} connected (pool {}, version {}, peer {})", vm_id_, req.pool_id(),
               req.version(), ctx_->peer());
}

bool AgentStream::Handle(const commands::MIGletMessage& msg) {
  using M = commands::MIGletMessage;
  if (!attached_ && msg.message_case() != M::kConnect) {
    if (metrics_) metrics_->StreamError("handshake");
    CloseWithError("not_connected", "the first message on a stream must be connect",
                   grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                "the first message on a stream must be connect"));
    return true;
  }
  switch (msg.message_case()) {
    case M::kConnect: {
      if (attached_) {
        if (metrics_) metrics_->StreamError("protocol");
        CloseWithError("protocol_error", "connect was sent twice on one stream",
                       grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                    "connect was sent twice on one stream"));
        return true;
      }
      if (auto st = AgentRegistry::ValidateConnect(msg.connect()); !st.ok()) {
        if (metrics_) metrics_->StreamError("handshake");
        const std::string m(st.message());
        CloseWithError("invalid_connect", m, grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, m));
        return true;
      }
      AgentCredentials creds;
      creds.peer = ctx_->peer();
      if (auto auth = ctx_->auth_context(); auth && auth->IsPeerAuthenticated()) {
        for (const auto& v : auth->FindPropertyValues("x509_common_name")) {
          creds.client_cert_name.assign(v.data(), v.size());
        }
      }
      if (options_.client_cert_names_vm && !creds.client_cert_name.empty() &&
          creds.client_cert_name != msg.connect().vm_id()) {
        FinishConnect(msg.connect(), absl::PermissionDeniedError(
                                         "the client certificate is " + creds.client_cert_name +
                                         "'s, not " + msg.connect().vm_id() + "'s"));
        return true;
      }
      if (options_.authorize == nullptr || !*options_.authorize) {
        FinishConnect(msg.connect(), absl::OkStatus());
        return true;
      }
      const auto& md = ctx_->client_metadata();
      if (auto it = md.find("authorization"); it != md.end()) {
        creds.bearer_token = BearerToken(std::string_view(it->second.data(), it->second.size()));
      }
      connect_steps_ = 2;
      auto self = shared_from_this();
      (*options_.authorize)(msg.connect().vm_id(), creds,
                            [self, req = msg.connect()](absl::Status st) {
                              self->FinishConnect(req, st);
                              if (--self->connect_steps_ == 0) self->ResumeReading();
                            });
      return --connect_steps_ == 0;
    }
    case M::kHeartbeat:
      (void)registry_->OnHeartbeat(vm_id_, msg.heartbeat());  // its entry exists: never refused
      return true;
    case M::kCommandAck:
      registry_->OnAck(vm_id_, msg.command_ack());
      return true;
    case M::kEvent:
      (void)registry_->OnEvent(vm_id_, msg.event());
      return true;
    case M::kError:
      spdlog::warn("agent {} reports error {}: {}", vm_id_, msg.error().code(),
                   msg.error().message());
      return true;
    case M::MESSAGE_NOT_SET:
      if (metrics_) metrics_->StreamError("protocol");
      CloseWithError("protocol_error", "empty or unknown message",
                     grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "empty or unknown message"));
      return true;
  }
  return true;
}

// gRPC calls OnCancel from inside libgrpc++ itself (the other reactions come through its header
// templates, which hack/sanitizers/tsan.supp names): the hand-off from StreamCommands is made
// visible to TSan here (common/tsan.h).
void AgentStream::OnCancel() {
  MIGLET_TSAN_ACQUIRE(this);
  FinishNow(grpc::Status::CANCELLED);
}

void AgentStream::OnDone() {
  {
    std::lock_guard l(mu_);
    done_ = true;
    out_.clear();
  }
  if (attached_) {
    registry_->Detach(vm_id_, this);
    spdlog::info("agent {} stream closed", vm_id_);
  }
  if (options_.open_streams) --*options_.open_streams;
  auto keep = std::move(self_);  // may destroy this at the end of scope
}

}  // namespace miglet
