#pragma once

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "absl/status/statusor.h"
#include "miglet/common/clock.h"

// mig-controller's configuration: one declarative table (config.cc) gives every setting its
// YAML key, flag, environment variable (MIG_CONTROLLER_ + the key), type, default and help.
// Precedence: flags, then the environment, then the --config file, then the defaults. A bad
// value names its key and where it came from ("ctl.yaml:3: grpc.port: ...") and exits 2.
namespace miglet::operator_config {

struct ControllerConfig {
  std::string config_file;
  // The agent hub.
  std::string bind_address = "0.0.0.0";
  int64_t grpc_port = 50051;
  bool tls_enabled = false;
  std::string tls_cert, tls_key, tls_ca;
  // TLS on without a certificate: the controller's own CA, kept in this Secret (in the pod's
  // namespace), and the names its serving certificate is for (comma-separated).
  std::string tls_ca_secret = "mig-controller-ca";
  std::string tls_dns_names;
  // The HTTP API and /metrics over TLS too, with the gRPC port's certificate.
  bool http_tls = false;
  bool metrics_tls = false;
  int64_t http_port = 8080;
  int64_t max_outbound_queue = 1024;
  Duration handshake_timeout = std::chrono::seconds(10);
  int64_t max_streams = 20000;
  int64_t max_messages_per_second = 100;
  int64_t message_burst = 2000;
  Duration heartbeat_timeout = std::chrono::seconds(45);
  Duration ack_timeout = std::chrono::minutes(5);
  Duration forget_after = std::chrono::minutes(15);
  int64_t max_agents_without_stream = 50000;
  // Who may speak for an agent ("none", or "token": a pod's projected service-account token,
  // checked with TokenReview), and whether the operator endpoints and /metrics need a bearer
  // token allowed by SubjectAccessReview (controller-runtime's secure metrics).
  std::string agent_auth = "none";
  bool secure_api = false;
  bool metrics_secure = false;
  // Metrics and probes (kubebuilder's names). "0" turns one off.
  std::string metrics_bind_address = ":9090";
  std::string health_probe_bind_address = ":8081";
  // The Kubernetes controllers.
  std::string controllers = "auto";  // auto | on | off
  std::string kubeconfig;
  std::string kube_context;
  std::string watch_namespace;  // "" = all namespaces
  bool leader_elect = false;
  std::string leader_election_id = "mig-controller";
  std::string leader_election_namespace;  // "": the pod's namespace, else the watched one
  std::string agent_endpoint;             // host:port agents in pods dial (the Service)
  std::string github_ca_file;             // extra CA for GitHub Enterprise Server
  Duration status_refresh = std::chrono::minutes(20);
  Duration github_sweep_interval = std::chrono::minutes(10);
  int64_t workers = 4;
  // Logs and tools.
  std::string log_level = "info";
  std::string log_format = "text";
  std::string listen_info_file;
};

// One row of the table.
struct Setting {
  std::string key;   // YAML key; also the environment variable's name
  std::string flag;  // "" when there is no flag
  std::string value_name;
  std::string help;
  std::variant<std::string ControllerConfig::*, int64_t ControllerConfig::*,
               bool ControllerConfig::*, Duration ControllerConfig::*>
      field;
  int64_t min = 0, max = 0;  // for integers
};

const std::vector<Setting>& Settings();

struct Parsed {
  ControllerConfig config;
  bool help = false;     // --help: print `usage`, exit 0
  bool version = false;  // --version
  std::string usage;
};

// argv as main gets it. Errors are ready to print after "mig-controller: " (exit 2).
absl::StatusOr<Parsed> Parse(int argc, char** argv);

// "host:port" from a bind address (":9090" -> "0.0.0.0", 9090); port -1 when it is "0" (off).
absl::StatusOr<std::pair<std::string, int>> SplitBindAddress(const std::string& addr);

}  // namespace miglet::operator_config
