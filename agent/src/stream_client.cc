#include "miglet/agent/stream_client.h"

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>

#include <condition_variable>
#include <deque>
#include <fstream>
#include <sstream>
#include <thread>

#include "channel_metrics.h"
#include "miglet/agent/command_dedup.h"
#include "miglet/agent/outbox.h"
#include "miglet/commands/commands.grpc.pb.h"
#include "miglet/commands/field_json.h"
#include "miglet/common/http.h"
#include "spdlog/spdlog.h"

namespace miglet {

namespace {

namespace pbu = google::protobuf::util;
using commands::ControllerMessage;
using commands::MIGletMessage;

std::string ToJson(const google::protobuf::Message& m) {
  pbu::JsonPrintOptions o;
  o.preserve_proto_field_names = true;
  std::string out;
  (void)pbu::MessageToJsonString(m, &out, o);
  return out;
}

std::string ReadFileOrEmpty(const std::string& path) {
  if (path.empty()) return "";
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

int Ms(Duration d) {
  return static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(d).count());
}

class StreamClientImpl;

// One attempt at a stream. Lives until OnDone and until the run loop drops it. All its state
// is guarded by the owner's mutex (an agent has one stream; there is nothing to contend).
class Call final : public grpc::ClientBidiReactor<MIGletMessage, ControllerMessage> {
 public:
  enum class Kind { kNone, kConnect, kHeartbeat, kOutbox };

  Call(StreamClientImpl* owner, std::shared_ptr<grpc::Channel> channel, MIGletMessage connect)
      : owner_(owner),
        channel_(std::move(channel)),
        stub_(commands::CommandService::NewStub(channel_)) {
    cur_ = std::move(connect);
  }

  void Begin();
  void Cancel() { ctx_.TryCancel(); }
  // Under the owner's mutex: no more writes; half-close once the write in flight is done.
  // Returns true when the caller must call StartWritesDone() now (after unlocking).
  bool CloseLocked() {
    closing_ = true;
    if (writing_ || writes_done_ || read_done_) return false;
    writes_done_ = true;
    writing_ = true;  // the half-close is an operation in flight like a write
    return true;
  }

  void OnWriteDone(bool ok) override;
  void OnWritesDoneDone(bool ok) override;
  void OnReadDone(bool ok) override;
  void OnDone(const grpc::Status& s) override;

  // Under the owner's mutex: the next message to write, or null when a write is in flight or
  // nothing is waiting.
  const MIGletMessage* NextWriteLocked();

  bool established = false;
  bool done = false;
  MonoTime established_at{};
  grpc::Status status;
  bool heartbeat_pending = false;
  MIGletMessage heartbeat;
  std::string rejected;  // connect_ack accepted=false: its message

 private:
  StreamClientImpl* owner_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<commands::CommandService::Stub> stub_;
  grpc::ClientContext ctx_;
  ControllerMessage in_;
  MIGletMessage cur_;
  Kind cur_kind_ = Kind::kNone;
  uint64_t cur_seq_ = 0;
  // Writes and the half-close are started from other threads too (the run loop, PushOutbox),
  // so the call holds a hold (AddHold) until the stream's read side has ended and no write is
  // claimed: gRPC cannot finish the call (OnDone) between a thread claiming a write under the
  // owner's mutex and starting it.
  bool ReleaseHoldLocked() {
    if (!read_done_ || writing_ || hold_released_) return false;
    hold_released_ = true;
    return true;
  }
  bool writing_ = false;  // a write or the half-close is claimed or in flight
  bool closing_ = false;
  bool writes_done_ = false;
  bool read_done_ = false;
  bool hold_released_ = false;
};

class StreamClientImpl final : public StreamClient {
 public:
  StreamClientImpl(StreamClientOptions options, std::shared_ptr<Clock> clock,
                   CommandHandler* handler, HeartbeatSource heartbeat,
                   prometheus::Registry* metrics)
      : options_(std::move(options)),
        clock_(std::move(clock)),
        handler_(handler),
        heartbeat_source_(std::move(heartbeat)),
        metrics_(metrics),
        backoff_(options_.retry),
        outbox_(options_.max_outbound),
        heartbeat_interval_(options_.heartbeat_interval) {}

  ~StreamClientImpl() override { Stop(); }

  void Start() override {
    std::lock_guard l(mu_);
    if (started_) return;
    started_ = true;
    if (!options_.http_endpoint.empty()) {
      // An https endpoint is verified with the CA the stream uses (and the system's), and gets
      // the agent's client certificate when it has one.
      TlsOptions tls;
      if (!options_.tls_ca_file.empty()) {
        tls.ca_pem = ReadFileOrEmpty(options_.tls_ca_file);
        tls.ca_source = options_.tls_ca_file;
      }
      if (!options_.tls_cert_file.empty()) {
        tls.client_cert_pem = ReadFileOrEmpty(options_.tls_cert_file);
        tls.client_key_pem = ReadFileOrEmpty(options_.tls_key_file);
      }
      auto c = MakeHttpTransport(
          {.base_url = options_.http_endpoint, .tls = tls, .timeout = options_.http_timeout});
      if (c.ok()) {
        http_ = std::move(*c);
      } else {
        spdlog::error("HTTP fallback disabled: {}", c.status().ToString());
      }
    }
    exec_thread_ = std::thread([this] { ExecLoop(); });
    run_thread_ = std::thread([this] { RunLoop(); });
  }

  void Stop() override {
    {
      std::lock_guard l(mu_);
      if (!started_ || stopping_) return;
      stopping_ = true;
      // The run loop half-closes an established stream so that what was written reaches the
      // controller before the connection goes; anything else is cancelled.
      if (call_ && !call_->established) call_->Cancel();
    }
    cv_.notify_all();
    if (run_thread_.joinable()) run_thread_.join();
    if (exec_thread_.joinable()) exec_thread_.join();
  }

  void SendEvent(commands::EventNotification ev) override {
    if (ev.vm_id().empty()) ev.set_vm_id(options_.vm_id);
    if (ev.pool_id().empty()) ev.set_pool_id(options_.pool_id);
    if (ev.org_id().empty()) ev.set_org_id(options_.org_id);
    if (ev.timestamp() == 0) ev.set_timestamp(clock_->UnixSeconds());
    MIGletMessage m;
    *m.mutable_event() = std::move(ev);
    PushOutbox(std::move(m));
  }

  void HeartbeatNow() override {
    {
      std::lock_guard l(mu_);
      heartbeat_now_ = true;
    }
    cv_.notify_all();
  }

  bool Flush(Duration timeout) override {
    std::unique_lock l(mu_);
    // Commands still being handled count too: their acks are not queued yet.
    return cv_.wait_for(l, timeout, [&] {
      return outbox_.empty() && !outbox_in_flight_ && commands_.empty() && !executing_;
    });
  }

  bool connected() const override {
    std::lock_guard l(mu_);
    return call_ && call_->established && !call_->done;
  }
  bool using_http() const override {
    std::lock_guard l(mu_);
    return http_mode_;
  }
  size_t queued() const override {
    std::lock_guard l(mu_);
    return outbox_.size();
  }

  void SetHeartbeatInterval(Duration interval) override {
    {
      std::lock_guard l(mu_);
      heartbeat_interval_ = interval;
      heartbeat_now_ = true;  // re-arm the timer on the new interval
    }
    cv_.notify_all();
  }
  void SetRetryPolicy(const BackoffPolicy& policy) override {
    std::lock_guard l(mu_);
    backoff_.set_policy(policy);
  }

  // Called by Call, under mu_ unless noted.
  std::mutex& mu() { return mu_; }
  std::condition_variable& cv() { return cv_; }
  Outbox& outbox() { return outbox_; }
  void SetOutboxInFlightLocked(bool v) { outbox_in_flight_ = v; }
  ChannelMetrics& metrics() { return metrics_; }
  const StreamClientOptions& options() const { return options_; }
  void UpdateQueuedGaugeLocked() {
    metrics_.outbound_queued.Set(static_cast<double>(outbox_.size()));
  }
  // Not under mu_.
  void EnqueueCommand(const commands::Command& cmd) {
    metrics_.CommandReceived(cmd.type());
    handler_->Preempt(cmd);
    {
      std::lock_guard l(mu_);
      commands_.push_back(cmd);
    }
    cv_.notify_all();
  }

 private:
  void PushOutbox(MIGletMessage m) {
    std::shared_ptr<Call> call;
    const MIGletMessage* next = nullptr;
    {
      std::lock_guard l(mu_);
      if (outbox_.Push(std::move(m)) > 0) {
        metrics_.outbound_dropped.Increment();
        spdlog::error("outbound queue full ({} messages): dropped the oldest", outbox_.capacity());
      }
      UpdateQueuedGaugeLocked();
      if (call_) {
        call = call_;
        next = call_->NextWriteLocked();
      }
    }
    if (next) call->StartWrite(next);
    cv_.notify_all();  // the HTTP loop sends queued messages too
  }

  void ExecLoop() {
    for (;;) {
      commands::Command cmd;
      {
        std::unique_lock l(mu_);
        cv_.wait(l, [&] { return stopping_ || !commands_.empty(); });
        if (stopping_) return;
        cmd = std::move(commands_.front());
        commands_.pop_front();
        executing_ = true;
      }
      commands::CommandAck ack;
      switch (dedup_.Begin(cmd.id(), &ack)) {
        case CommandDedup::Seen::kInProgress: {
          std::lock_guard l(mu_);
          executing_ = false;
          continue;  // the first copy will be acked when it finishes
        }
        case CommandDedup::Seen::kDone:
          spdlog::debug("command {} ({}) seen before: acking its first result again", cmd.id(),
                        cmd.type());
          break;
        case CommandDedup::Seen::kNew:
          spdlog::info("command {} ({})", cmd.id(), cmd.type());
          try {
            ack = handler_->Handle(cmd);
          } catch (const std::exception& e) {
            ack = commands::CommandAck();
            ack.set_success(false);
            ack.set_message(std::string("command failed: ") + e.what());
          }
          ack.set_command_id(cmd.id());
          dedup_.Finish(cmd.id(), ack);
          break;
      }
      MIGletMessage m;
      *m.mutable_command_ack() = std::move(ack);
      PushOutbox(std::move(m));
      {
        std::lock_guard l(mu_);
        executing_ = false;
      }
      cv_.notify_all();
    }
  }

  std::shared_ptr<grpc::Channel> MakeChannel() {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, Ms(options_.keepalive_time));
    args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, Ms(options_.keepalive_timeout));
    args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
    args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
    // Each attempt gets a fresh channel, and our loop owns the backoff.
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    std::shared_ptr<grpc::ChannelCredentials> creds = grpc::InsecureChannelCredentials();
    if (!options_.tls_ca_file.empty()) {
      grpc::SslCredentialsOptions ssl;
      ssl.pem_root_certs = ReadFileOrEmpty(options_.tls_ca_file);
      ssl.pem_cert_chain = ReadFileOrEmpty(options_.tls_cert_file);
      ssl.pem_private_key = ReadFileOrEmpty(options_.tls_key_file);
      creds = grpc::SslCredentials(ssl);
      if (!options_.tls_server_name.empty()) {
        args.SetSslTargetNameOverride(options_.tls_server_name);
      }
    }
    return grpc::CreateCustomChannel(options_.grpc_endpoint, creds, args);
  }

  MIGletMessage BuildHeartbeat() {
    commands::Heartbeat hb = heartbeat_source_ ? heartbeat_source_() : commands::Heartbeat();
    hb.set_vm_id(options_.vm_id);
    hb.set_pool_id(options_.pool_id);
    hb.set_org_id(options_.org_id);
    hb.set_timestamp(clock_->UnixSeconds());
    MIGletMessage m;
    *m.mutable_heartbeat() = std::move(hb);
    return m;
  }

  struct Attempt {
    bool established = false;
    Duration healthy_for{};
    std::string why;
  };

  Attempt RunGrpcAttempt() {
    MIGletMessage connect;
    auto* c = connect.mutable_connect();
    c->set_vm_id(options_.vm_id);
    c->set_pool_id(options_.pool_id);
    c->set_org_id(options_.org_id);
    c->set_version(options_.version);
    auto call = std::make_shared<Call>(this, MakeChannel(), std::move(connect));
    const MonoTime connect_deadline = clock_->Now() + options_.connect_timeout;
    {
      std::lock_guard l(mu_);
      call_ = call;
    }
    call->Begin();

    std::unique_lock l(mu_);
    bool was_established = false;
    MonoTime next_heartbeat{};
    while (!call->done) {
      if (stopping_) {
        if (call->established) {
          const bool close_now = call->CloseLocked();
          if (close_now) {
            l.unlock();
            call->StartWritesDone();
            l.lock();
          }
          // The controller answers a half-close by finishing the stream. A bound on gRPC's
          // work, not a timer of ours: real time, so Stop never waits for a fake clock.
          if (!cv_.wait_for(l, std::chrono::seconds(5), [&] { return call->done; })) {
            call->Cancel();
          }
        } else {
          call->Cancel();
        }
        cv_.wait(l, [&] { return call->done; });
        break;
      }
      if (call->established && !was_established) {
        was_established = true;
        metrics_.connected.Set(1);
        spdlog::info("connected to controller {}", options_.grpc_endpoint);
        next_heartbeat = clock_->Now();  // tell the controller our state right away
        if (options_.on_connection) {
          l.unlock();
          options_.on_connection(true);
          l.lock();
        }
      }
      const MonoTime now = clock_->Now();
      if (!call->established && now >= connect_deadline) {
        call->Cancel();
        cv_.wait(l, [&] { return call->done; });
        break;
      }
      if (call->established && (heartbeat_now_ || now >= next_heartbeat)) {
        heartbeat_now_ = false;
        next_heartbeat = now + heartbeat_interval_;
        l.unlock();
        MIGletMessage hb = BuildHeartbeat();
        l.lock();
        if (call->done) break;
        if (call->heartbeat_pending) metrics_.heartbeat_failures.Increment();  // never written
        call->heartbeat = std::move(hb);
        call->heartbeat_pending = true;
        if (const MIGletMessage* next = call->NextWriteLocked()) {
          l.unlock();
          call->StartWrite(next);
          l.lock();
        }
        continue;
      }
      // Until the heartbeat is due (or, before connect_ack, the connect deadline), or until
      // something this loop acts on happens.
      const MonoTime wake = call->established ? next_heartbeat : connect_deadline;
      clock_->WaitUntil(l, cv_, wake, [&] {
        return call->done || stopping_ || call->established != was_established ||
               (call->established && heartbeat_now_);
      });
    }
    Attempt a;
    a.established = call->established;
    if (call->established) a.healthy_for = clock_->Now() - call->established_at;
    a.why = !call->rejected.empty() ? "connect refused: " + call->rejected
                                    : (call->established ? "" : "could not establish: ") +
                                          std::to_string(call->status.error_code()) + " " +
                                          call->status.error_message();
    call_.reset();
    outbox_in_flight_ = false;
    metrics_.connected.Set(0);
    if (was_established && options_.on_connection) {
      l.unlock();
      options_.on_connection(false);
      l.lock();
    }
    return a;
  }

  // Talks to the HTTP API until `max` has passed (when gRPC should be tried again) or Stop.
  void RunHttpSession(Duration max) {
    {
      std::lock_guard l(mu_);
      http_mode_ = true;
    }
    metrics_.http_fallback.Set(1);
    spdlog::warn("gRPC unavailable: using the HTTP API at {}", options_.http_endpoint);
    if (options_.on_connection) options_.on_connection(true);
    const std::string base = "/api/v1/vms/" + options_.vm_id;
    const MonoTime until = clock_->Now() + max;
    MonoTime next_hb = clock_->Now(), next_poll = clock_->Now();
    std::unique_lock l(mu_);
    while (!stopping_ && (options_.grpc_endpoint.empty() || clock_->Now() < until)) {
      const MonoTime now = clock_->Now();
      if (heartbeat_now_ || now >= next_hb) {
        heartbeat_now_ = false;
        next_hb = now + heartbeat_interval_;
        l.unlock();
        MIGletMessage hb = BuildHeartbeat();
        auto r =
            Http("POST", base + "/heartbeat?ack=true", fieldjson::HeartbeatBody(hb.heartbeat()));
        if (r.ok() && r->status / 100 == 2) {
          metrics_.heartbeats_sent.Increment();
          metrics_.last_heartbeat.Set(static_cast<double>(clock_->UnixSeconds()));
        } else {
          metrics_.heartbeat_failures.Increment();
        }
        l.lock();
        continue;
      }
      if (now >= next_poll) {
        next_poll = now + options_.http_poll_interval;
        l.unlock();
        PollHttpCommands(base);
        l.lock();
        continue;
      }
      if (auto front = outbox_.Front()) {
        const uint64_t seq = front->first;
        MIGletMessage m = *front->second;
        l.unlock();
        const bool sent = PostHttp(base, m);
        l.lock();
        if (sent) {
          outbox_.Written(seq);
          UpdateQueuedGaugeLocked();
          cv_.notify_all();
          continue;
        }
        // The controller is unreachable: wait for the next heartbeat tick before retrying.
        clock_->WaitUntil(l, cv_, next_hb, [&] { return stopping_ || heartbeat_now_; });
        continue;
      }
      const MonoTime wake = std::min({next_hb, next_poll, until});
      clock_->WaitUntil(l, cv_, wake,
                        [&] { return stopping_ || heartbeat_now_ || !outbox_.empty(); });
    }
    http_mode_ = false;
    metrics_.http_fallback.Set(0);
    l.unlock();
    if (options_.on_connection) options_.on_connection(false);
  }

  std::string BearerToken() const { return options_.bearer_token ? options_.bearer_token() : ""; }

  absl::StatusOr<ClientResponse> Http(const std::string& method, const std::string& target,
                                      std::string body) {
    ClientRequest req;
    req.method = method;
    req.target = target;
    req.body = std::move(body);
    if (const std::string t = BearerToken(); !t.empty()) {
      req.headers.Set("Authorization", "Bearer " + t);
    }
    return http_->Send(req);
  }

  // Every request carries ?ack=true: this agent acks each command it polls, so the controller
  // does not wait for a command's effect as it does for the MIGlet agents in the field.
  void PollHttpCommands(const std::string& base) {
    auto r = Http("GET", base + "/commands?ack=true", "");
    if (!r.ok() || r->status != 200) return;
    auto polled = fieldjson::ParseCommandsAnswer(r->body);
    if (!polled.ok()) {
      spdlog::warn("HTTP command poll: unreadable answer: {}", polled.status().ToString());
      return;
    }
    for (auto& p : *polled) {
      if (p.command.ok()) {
        EnqueueCommand(*p.command);
        continue;
      }
      // Never lost in silence: logged, counted, and acked as failed when it has an id (the
      // controller then knows at once rather than at its ack timeout).
      metrics_.commands_unreadable.Increment();
      spdlog::error("HTTP command poll: cannot read command {}: {}",
                    p.id.empty() ? "(no id)" : p.id, p.command.status().ToString());
      if (p.id.empty()) continue;
      MIGletMessage m;
      auto* ack = m.mutable_command_ack();
      ack->set_command_id(p.id);
      ack->set_success(false);
      ack->set_message("the agent cannot read this command: " +
                       std::string(p.command.status().message()));
      PushOutbox(std::move(m));
    }
  }

  bool PostHttp(const std::string& base, const MIGletMessage& m) {
    absl::StatusOr<ClientResponse> r;
    if (m.has_command_ack()) {
      r = Http("POST", base + "/commands/" + m.command_ack().command_id() + "/ack?ack=true",
               ToJson(m.command_ack()));
    } else if (m.has_event()) {
      r = Http("POST", base + "/events?ack=true", fieldjson::EventBody(m.event()));
    } else {
      return true;  // nothing else travels over HTTP
    }
    if (!r.ok()) return false;
    if (r->status / 100 == 4) {
      spdlog::error("controller refused a message over HTTP ({}): {}", r->status, r->body);
      return true;  // it will never be accepted: do not block the queue behind it
    }
    return r->status / 100 == 2;
  }

  void RunLoop() {
    int failures = 0;
    const bool can_http = http_ != nullptr && options_.http_fallback;
    while (true) {
      {
        std::lock_guard l(mu_);
        if (stopping_) return;
      }
      if (options_.grpc_endpoint.empty()) {
        if (!can_http) return;
        RunHttpSession(Duration::max() / 2);
        continue;
      }
      Attempt a = RunGrpcAttempt();
      Duration delay;
      {
        std::lock_guard l(mu_);
        if (stopping_) return;
        delay = backoff_.NextAfterStream(a.healthy_for);
      }
      failures = a.established ? 0 : failures + 1;
      metrics_.reconnects.Increment();
      metrics_.backoff_seconds.Set(ToSeconds(delay));
      spdlog::warn("stream to {} ended ({}); reconnecting in {:.1f}s", options_.grpc_endpoint,
                   a.why, ToSeconds(delay));
      if (can_http && failures >= options_.fallback_after_failures) {
        RunHttpSession(options_.http_retry_grpc_after);
        continue;
      }
      std::unique_lock l(mu_);
      clock_->WaitFor(l, cv_, delay, [&] { return stopping_; });
    }
  }

  const StreamClientOptions options_;
  const std::shared_ptr<Clock> clock_;
  CommandHandler* const handler_;
  HeartbeatSource heartbeat_source_;
  ChannelMetrics metrics_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  Backoff backoff_;
  Outbox outbox_;
  bool outbox_in_flight_ = false;
  std::deque<commands::Command> commands_;
  bool executing_ = false;  // the command thread is running a handler
  CommandDedup dedup_;      // used by the command thread only
  Duration heartbeat_interval_;
  bool heartbeat_now_ = false;
  bool started_ = false;
  bool stopping_ = false;
  bool http_mode_ = false;
  std::shared_ptr<Call> call_;
  std::unique_ptr<HttpTransport> http_;
  std::thread run_thread_;
  std::thread exec_thread_;

  friend class Call;
};

void Call::Begin() {
  {
    std::lock_guard l(owner_->mu());
    writing_ = true;
    cur_kind_ = Kind::kConnect;
  }
  if (const std::string t = owner_->BearerToken(); !t.empty()) {
    ctx_.AddMetadata("authorization", "Bearer " + t);
  }
  stub_->async()->StreamCommands(&ctx_, this);
  StartWrite(&cur_);
  StartRead(&in_);
  AddHold();
  StartCall();
}

const MIGletMessage* Call::NextWriteLocked() {
  if (writing_ || done || !established || closing_ || read_done_) return nullptr;
  if (heartbeat_pending) {
    heartbeat_pending = false;
    cur_ = heartbeat;
    cur_kind_ = Kind::kHeartbeat;
  } else if (auto front = owner_->outbox().Front()) {
    cur_ = *front->second;
    cur_seq_ = front->first;
    cur_kind_ = Kind::kOutbox;
    owner_->SetOutboxInFlightLocked(true);
  } else {
    return nullptr;
  }
  writing_ = true;
  return &cur_;
}

void Call::OnWriteDone(bool ok) {
  const MIGletMessage* next = nullptr;
  bool close_now = false;
  bool release = false;
  {
    std::lock_guard l(owner_->mu());
    writing_ = false;
    if (cur_kind_ == Kind::kOutbox) {
      owner_->SetOutboxInFlightLocked(false);
      if (ok) {
        owner_->outbox().Written(cur_seq_);
        owner_->UpdateQueuedGaugeLocked();
      }
    } else if (cur_kind_ == Kind::kHeartbeat) {
      if (ok) {
        owner_->metrics().heartbeats_sent.Increment();
        owner_->metrics().last_heartbeat.Set(static_cast<double>(owner_->clock_->UnixSeconds()));
      } else {
        owner_->metrics().heartbeat_failures.Increment();
      }
    }
    cur_kind_ = Kind::kNone;
    if (ok) next = NextWriteLocked();
    if (ok && !next && closing_ && !writes_done_) {
      writes_done_ = true;
      writing_ = true;
      close_now = true;
    }
    release = ReleaseHoldLocked();
  }
  owner_->cv().notify_all();
  if (next) StartWrite(next);
  if (close_now) StartWritesDone();
  if (release) RemoveHold();
}

void Call::OnWritesDoneDone(bool /*ok*/) {
  bool release;
  {
    std::lock_guard l(owner_->mu());
    writing_ = false;
    release = ReleaseHoldLocked();
  }
  if (release) RemoveHold();
}

void Call::OnReadDone(bool ok) {
  if (!ok) {
    // The stream is ending: no new write is claimed from now on, and once none is in flight
    // the hold goes, so that OnDone can follow.
    bool release;
    {
      std::lock_guard l(owner_->mu());
      read_done_ = true;
      release = ReleaseHoldLocked();
    }
    if (release) RemoveHold();
    return;
  }
  switch (in_.message_case()) {
    case ControllerMessage::kConnectAck: {
      if (!in_.connect_ack().accepted()) {
        {
          std::lock_guard l(owner_->mu());
          rejected = in_.connect_ack().message();
        }
        spdlog::warn("controller refused connect: {}", in_.connect_ack().message());
        Cancel();
        return;
      }
      const MIGletMessage* next = nullptr;
      {
        std::lock_guard l(owner_->mu());
        established = true;
        established_at = owner_->clock_->Now();
        next = NextWriteLocked();
      }
      owner_->cv().notify_all();
      if (next) StartWrite(next);
      break;
    }
    case ControllerMessage::kCommand:
      owner_->EnqueueCommand(in_.command());
      break;
    case ControllerMessage::kError:
      spdlog::warn("controller error {}: {}", in_.error().code(), in_.error().message());
      break;
    case ControllerMessage::MESSAGE_NOT_SET:
      break;
  }
  StartRead(&in_);
}

void Call::OnDone(const grpc::Status& s) {
  std::lock_guard l(owner_->mu());
  status = s;
  done = true;
  owner_->cv().notify_all();
}

}  // namespace

std::unique_ptr<StreamClient> StreamClient::Create(StreamClientOptions options,
                                                   std::shared_ptr<Clock> clock,
                                                   CommandHandler* handler,
                                                   HeartbeatSource heartbeat,
                                                   prometheus::Registry* metrics) {
  return std::make_unique<StreamClientImpl>(std::move(options), std::move(clock), handler,
                                            std::move(heartbeat), metrics);
}

}  // namespace miglet
