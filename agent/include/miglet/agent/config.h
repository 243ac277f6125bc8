#pragma once

#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "miglet/agent/stream_client.h"
#include "miglet/common/logging.h"

namespace miglet {

// The agent's configuration: YAML keys of the wire contract, overridden by MIGLET_* environment
// variables (controller.grpc_endpoint <- MIGLET_CONTROLLER_GRPC_ENDPOINT), overridden by flags.
struct AgentConfig {
  std::string vm_id;
  std::string pool_id;
  std::string org_id;
  std::string controller_endpoint;       // controller.endpoint: the HTTP API, http://host:port
  std::string controller_grpc_endpoint;  // controller.grpc_endpoint: host:port
  bool http_fallback = true;
  std::string tls_ca_file, tls_cert_file, tls_key_file, tls_server_name;
  // The bearer token sent to the controller (Authorization: Bearer, on the stream and the HTTP
  // API): controller.auth.type bearer with controller.auth.token_path (a file, re-read when it
  // changes, as a field agent's config names it) or controller.auth.token (the token itself).
  std::string auth_type;  // "", "none" or "bearer"
  std::string auth_token;
  std::string auth_token_path;
  // controller.timeout: one HTTP request to the controller, and connect to connect_ack.
  Duration controller_timeout = std::chrono::seconds(10);
  std::string github_org;  // github.org: org_id when org_id is not set
  BackoffPolicy retry;
  Duration heartbeat_interval = std::chrono::seconds(15);
  Duration heartbeat_timeout = std::chrono::seconds(10);
  std::string runner_group;
  std::vector<std::string> labels;
  std::string runner_dir = "/home/runner";
  Duration shutdown_grace = std::chrono::seconds(30);
  Duration shutdown_force_after = std::chrono::seconds(60);
  std::string log_level = "info";
  std::string log_format = "json";
  std::string metrics_listen = "0.0.0.0:9102";
  // sidecar: exit after shutdown (the pod goes away); vm: run shutdown.command (power off).
  std::string mode = "sidecar";
  std::string shutdown_command = "systemctl poweroff";
  Duration register_timeout = std::chrono::minutes(2);

  // Where each key's value came from (file:line, environment variable, flag or default).
  std::map<std::string, std::string> sources;
  // Keys of a field agent's file that mean nothing here ("key (file:line)"): accepted, and
  // named in one warning at start.
  std::vector<std::string> ignored_keys;
};

// Reads `file` (empty: none) and the environment into `cfg`, then checks the result. Errors
// name the key and where its value came from.
absl::Status LoadAgentConfig(const std::string& file, AgentConfig* cfg);
// The same without the final validation, for callers that apply flags on top first.
absl::Status BindAgentConfig(const std::string& file, AgentConfig* cfg);
// The effective config as YAML, each value's source in a comment; secrets redacted.
std::string EffectiveConfigYaml(const AgentConfig& cfg);
// Checks required keys and cross-key rules (also after flags were applied).
absl::Status ValidateAgentConfig(const AgentConfig& cfg);
StreamClientOptions ToStreamOptions(const AgentConfig& cfg, const std::string& version);

// The keys of the MIGlet agents in the field that have no meaning here (see the wire
// contract): accepted with a warning.
extern const char* const kIgnoredFieldKeys[];

// The bearer token from a file, re-read whenever the file's modification time or size changes
// (a rotated Secret or projected token). Thread-safe.
class TokenFile {
 public:
  explicit TokenFile(std::string path) : path_(std::move(path)) {}
  // The token (trimmed of surrounding whitespace), or the last one read when the file cannot
  // be read now; NOT_FOUND when it never could.
  absl::StatusOr<std::string> Get();

 private:
  std::string path_;
  std::mutex mu_;
  int64_t mtime_ns_ = -1;
  int64_t size_ = -1;
  std::string token_;
};

}  // namespace miglet
