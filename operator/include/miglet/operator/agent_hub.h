#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "miglet/commands/commands.pb.h"
#include "miglet/common/clock.h"

namespace miglet {

// What the controller knows about one agent, kept in memory (heartbeats never become API
// writes by themselves; the change hook decides what is worth writing).
struct AgentInfo {
  std::string vm_id;
  std::string pool_id;
  std::string org_id;
  std::string version;
  bool connected = false;
  std::string transport;  // "grpc" or "http" while connected
  bool lost = false;      // connected, but silent for longer than the heartbeat timeout
  WallTime connected_at{};
  WallTime last_heartbeat{};  // wall time of the last heartbeat received, zero if none
  std::string miglet_state;
  commands::RunnerState runner;
  commands::JobInfo current_job;
  commands::VMHealth health;
  size_t pending_commands = 0;
  std::vector<std::string> pending_types;  // their types, in send order
  uint64_t heartbeats = 0;
  // False for an agent that polls over HTTP without acking (the MIGlet agents in the field):
  // its commands are done when their effect is reported, and it registers its runner with a
  // registration token, never a JIT config.
  bool acks_commands = true;
};

// How a command ended. `status` is OK when the agent acked it (whatever `success` says),
// DEADLINE_EXCEEDED when no ack came within the ack timeout, ABORTED when the hub stopped.
struct CommandResult {
  std::string vm_id;
  std::string command_id;
  std::string type;
  absl::Status status;
  bool success = false;
  std::string message;
  std::map<std::string, std::string> result;
  Duration latency{};  // first delivery -> ack
};

using CommandCallback = std::function<void(const CommandResult&)>;

// What an agent that registers its runner itself is handed: the answer to the HTTP API's
// POST .../registration-token, and to a vm_started event when the controller wants the
// machine's runner registered (the MIGlet agents in the field that speak only HTTP).
struct RunnerRegistration {
  std::string token;
  WallTime expires_at{};
  std::string url;
  std::string group;
  std::vector<std::string> labels;
  std::string name;  // the runner name the controller expects (beside the field's keys)
};
// Asked for the agent `vm_id`. With `only_if_wanted`, nullopt unless the controller wants that
// machine's runner registered now; without, an error says why none is given (NOT_FOUND: no
// such RunnerVM; FAILED_PRECONDITION: it is not to run a runner; UNAVAILABLE: GitHub). It may
// call GitHub: it runs on an HTTP server thread, never on the hub's.
using RegistrationSource = std::function<absl::StatusOr<std::optional<RunnerRegistration>>(
    const std::string& vm_id, bool only_if_wanted)>;

// What an agent presents on its stream or HTTP request.
struct AgentCredentials {
  std::string bearer_token;  // gRPC metadata `authorization` / the HTTP header, "Bearer " cut
  std::string peer;          // for logs: "ipv4:10.0.0.7:41234"
  // The subject CN of the client certificate the TLS handshake verified ("" without mTLS). The
  // hub has already checked that it names the connect's vm_id (tls_client_cert_names_vm).
  std::string client_cert_name;
};
// Decides whether `creds` may speak for the agent `vm_id`: OK; UNAUTHENTICATED when they prove
// no one (none given, expired, wrong audience); PERMISSION_DENIED when they prove someone else
// (another pod's token). Asked once per stream (at connect) and once per HTTP request (the
// answers are cached by the implementation); `done` is called once, on any thread.
using AgentAuthorizer = std::function<void(const std::string& vm_id, const AgentCredentials& creds,
                                           std::function<void(absl::Status)> done)>;
// Decides whether the bearer of `token` may `verb` (lower-case HTTP method) the path `path` of
// the operator endpoints: OK, UNAUTHENTICATED or PERMISSION_DENIED; `done` as above.
using RequestAuthorizer =
    std::function<void(const std::string& token, const std::string& verb, const std::string& path,
                       std::function<void(absl::Status)> done)>;

struct HubOptions {
  // An agent silent for this long is marked lost (an HTTP poller: disconnected).
  Duration heartbeat_timeout = std::chrono::seconds(45);
  // A command not acked this long after it was queued fails with DEADLINE_EXCEEDED.
  Duration ack_timeout = std::chrono::minutes(5);
  size_t max_pending_per_agent = 4096;
  // An agent with no stream, silent this long and with no command pending, is forgotten (the
  // operator's RunnerVM stays the durable record; it comes back as new when it talks again).
  Duration forget_after = std::chrono::minutes(15);
  // At most this many agents known without a gRPC stream (HTTP pollers, and whatever made-up
  // vm_ids a stranger sends): a new vm_id over HTTP beyond it is refused until some are
  // forgotten.
  size_t max_agents_without_stream = 50000;
  std::string server_version = "0.1.0";
};

// The controller's side of the command channel: one stream (or HTTP poller) per agent.
class AgentHub {
 public:
  virtual ~AgentHub() = default;

  // Queues `cmd` for the agent and delivers it now if the agent is connected, otherwise when
  // it connects. An empty id gets a unique one; an id already pending for that agent is not
  // queued twice (so re-deriving commands after a restart is idempotent). `done` runs once,
  // on the ack or the timeout, on a hub thread: it must not block.
  virtual absl::StatusOr<std::string> SendCommand(const std::string& vm_id, commands::Command cmd,
                                                  CommandCallback done = {}) = 0;

  virtual std::optional<AgentInfo> GetAgent(const std::string& vm_id) const = 0;
  virtual std::vector<AgentInfo> ListAgents() const = 0;

  // Runs on meaningful change only: connect, disconnect, lost/found, miglet_state, runner
  // state, current job. Not on every heartbeat. Runs on a hub thread: must not block.
  virtual void SetChangeHook(std::function<void(const AgentInfo&)> hook) = 0;
  // Every event an agent sends. Same threading rule.
  virtual void SetEventHook(std::function<void(const commands::EventNotification&)> hook) = 0;
};

}  // namespace miglet
