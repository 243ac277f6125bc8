#pragma once

#include <functional>
#include <memory>
#include <string>

#include "miglet/commands/commands.pb.h"
#include "miglet/common/backoff.h"
#include "miglet/common/clock.h"

namespace prometheus {
class Registry;
}

namespace miglet {

struct StreamClientOptions {
  std::string vm_id;
  std::string pool_id;
  std::string org_id;
  std::string version = "0.1.0";

  std::string grpc_endpoint;  // host:port; empty = HTTP only
  std::string http_endpoint;  // http://host:port; used when gRPC cannot be established
  bool http_fallback = true;
  int fallback_after_failures = 3;  // consecutive failed gRPC attempts before falling back
  Duration http_poll_interval = std::chrono::seconds(5);
  Duration http_retry_grpc_after = std::chrono::seconds(60);  // while on HTTP, retry gRPC
  Duration http_timeout = std::chrono::seconds(10);           // one HTTP request
  // The bearer token for the controller (Authorization: Bearer, on the stream's metadata and
  // every HTTP request), asked for at each connect and request so a rotated one is used; ""
  // or unset: none.
  std::function<std::string()> bearer_token;

  BackoffPolicy retry;
  Duration heartbeat_interval = std::chrono::seconds(15);
  Duration connect_timeout = std::chrono::seconds(10);  // connect -> connect_ack
  // Keepalive: a silently dead controller is noticed within time + timeout (< 45 s).
  Duration keepalive_time = std::chrono::seconds(20);
  Duration keepalive_timeout = std::chrono::seconds(10);
  size_t max_outbound = 1000;  // acks and events held while disconnected

  // TLS: a CA file turns TLS on; cert+key add a client certificate (mTLS).
  std::string tls_ca_file;
  std::string tls_cert_file;
  std::string tls_key_file;
  std::string tls_server_name;  // overrides the name checked in the server's certificate

  // Called (on a client thread, no lock held) when a stream is established or the HTTP
  // fallback starts talking (true), and when either ends (false).
  std::function<void(bool connected)> on_connection;
};

// Runs commands for the stream client; called on the client's single command thread, one
// command at a time, in arrival order. May block. Must return an ack for the same id.
class CommandHandler {
 public:
  virtual ~CommandHandler() = default;
  virtual commands::CommandAck Handle(const commands::Command& cmd) = 0;
  // Called as soon as a command arrives, before it waits its turn, on a receiving thread: must
  // not block. Lets a drain or shutdown cut short a command that is waiting (a
  // register_runner waiting for its runner to listen).
  virtual void Preempt(const commands::Command& cmd) {}
};

// Fills a heartbeat (state, runner, job, health); vm/pool/org and timestamp are set by the
// client.
using HeartbeatSource = std::function<commands::Heartbeat()>;

// The agent's end of the command channel: keeps one stream to the controller, reconnecting
// with backoff; queues acks and events while disconnected and sends them in order after
// reconnecting; de-duplicates commands by id; falls back to the HTTP API when gRPC cannot be
// established.
class StreamClient {
 public:
  virtual ~StreamClient() = default;

  static std::unique_ptr<StreamClient> Create(StreamClientOptions options,
                                              std::shared_ptr<Clock> clock, CommandHandler* handler,
                                              HeartbeatSource heartbeat,
                                              prometheus::Registry* metrics);

  virtual void Start() = 0;
  // Stops at once (the stream is cancelled). Call Flush first to deliver what is queued.
  virtual void Stop() = 0;

  // Queues an event (vm/pool/org and timestamp filled in when empty).
  virtual void SendEvent(commands::EventNotification event) = 0;
  // Sends a heartbeat now instead of at the next tick (e.g. on a state change).
  virtual void HeartbeatNow() = 0;
  // Waits until every queued ack and event has been written, or the timeout passes.
  virtual bool Flush(Duration timeout) = 0;

  virtual bool connected() const = 0;  // a stream is established (connect_ack received)
  virtual bool using_http() const = 0;
  virtual size_t queued() const = 0;

  // Live configuration changes (update_config).
  virtual void SetHeartbeatInterval(Duration interval) = 0;
  virtual void SetRetryPolicy(const BackoffPolicy& policy) = 0;
};

}  // namespace miglet
