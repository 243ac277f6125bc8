#pragma once

#include <map>
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
  std::string auth_token;  // controller.auth.token (reserved: sent by a later version)
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

}  // namespace miglet
