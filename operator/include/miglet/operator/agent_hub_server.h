#pragma once

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "miglet/common/clock.h"
#include "miglet/operator/agent_hub.h"

namespace prometheus {
class Registry;
}

namespace miglet {

struct AgentHubServerOptions {
  std::string bind_address = "0.0.0.0";
  int grpc_port = 50051;  // 0 picks a free port
  int http_port = 8080;   // 0 picks a free port, -1 turns the HTTP API off
  HubOptions hub;

  // Outbound messages queued per stream behind the one write in flight. An agent that lets
  // the queue fill is disconnected with RESOURCE_EXHAUSTED.
  size_t max_outbound_queue = 1024;
  int max_receive_message_bytes = 1 << 20;
  // How long a stream closed with an error may take to deliver its status before it is
  // cancelled outright (a peer that stopped reading would otherwise hold it forever).
  Duration finish_grace = std::chrono::seconds(10);
  Duration sweep_interval = std::chrono::seconds(1);
  // How often freed memory is handed back to the system (malloc_trim).
  Duration memory_trim_interval = std::chrono::seconds(30);

  // A TCP connection must finish its handshake (TLS, HTTP/2 settings) within this long, and a
  // stream must send connect within it; otherwise it is closed (a stream: DEADLINE_EXCEEDED).
  Duration handshake_timeout = std::chrono::seconds(10);
  // Streams open at once; one more is refused with RESOURCE_EXHAUSTED.
  size_t max_streams = 20000;
  // Messages an agent may send on its stream: a token bucket of this rate and burst (the burst
  // covers an agent replaying its 1,000 queued acks and events after a reconnect). Beyond it
  // the stream is closed with RESOURCE_EXHAUSTED.
  double max_messages_per_second = 100;
  double message_burst = 2000;

  // Server keepalive: ping idle agents, and allow agents to ping us this often.
  Duration keepalive_time = std::chrono::seconds(30);
  Duration keepalive_timeout = std::chrono::seconds(10);
  Duration min_client_ping_interval = std::chrono::seconds(10);

  // Why the hub should not take agents yet ("" when it should): the HTTP API's /readyz answers
  // 503 with it. Unset: ready once serving.
  std::function<std::string()> not_ready;
  // Registrations for agents that register their runner themselves (the HTTP API's
  // registration-token endpoint and vm_started answers). Unset: that endpoint answers 503.
  RegistrationSource registration;

  // Unset: agents are taken at their word (any vm_id), the operator endpoints are open.
  AgentAuthorizer authorize_agent;
  RequestAuthorizer authorize_request;

  // TLS for the gRPC port: cert+key turn it on; a CA also requires client certificates.
  std::string tls_cert_file;
  std::string tls_key_file;
  std::string tls_ca_file;
  // How often those files are read again: a renewed certificate serves new connections (open
  // streams keep theirs).
  Duration tls_refresh_interval = std::chrono::seconds(60);
  // With client certificates: a certificate speaks only for the vm_id its subject CN names (a
  // connect as another is refused with PERMISSION_DENIED). Off: any verified certificate may
  // connect as any vm_id (one certificate shared by a fleet).
  bool tls_client_cert_names_vm = true;
  // The HTTP API over TLS too, with the same certificate files (read again for each new
  // connection). Needs tls_cert_file.
  bool http_tls = false;
};

// The agent hub served over gRPC (CommandService, one callback reactor per stream, no thread
// per stream) and the contract's HTTP JSON API, sharing one state.
class AgentHubServer {
 public:
  virtual ~AgentHubServer() = default;

  // Binds both ports and starts serving. `metrics` may be null.
  static absl::StatusOr<std::unique_ptr<AgentHubServer>> Start(AgentHubServerOptions options,
                                                               std::shared_ptr<Clock> clock,
                                                               prometheus::Registry* metrics);

  virtual AgentHub& hub() = 0;
  virtual int grpc_port() const = 0;
  virtual int http_port() const = 0;  // -1 when off
  // Closes every stream (agents see UNAVAILABLE and reconnect elsewhere), fails pending
  // commands with ABORTED, stops both servers. Idempotent.
  virtual void Shutdown() = 0;
};

}  // namespace miglet
