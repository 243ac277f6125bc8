#include "miglet/operator/config.h"

#include <optional>

#include "absl/strings/numbers.h"
#include "miglet/common/config.h"
#include "miglet/common/duration.h"
#include "miglet/common/flags.h"
#include "miglet/common/logging.h"
#include "miglet/common/status.h"

namespace miglet::operator_config {

using C = ControllerConfig;

const std::vector<Setting>& Settings() {
  static const std::vector<Setting> kSettings = {
      // The agent hub.
      {"grpc.bind_address", "bind-address", "ADDR", "address the gRPC and HTTP ports bind",
       &C::bind_address},
      {"grpc.port", "grpc-port", "PORT", "gRPC port for agent streams (0 = any)", &C::grpc_port, 0,
       65535},
      {"grpc.tls.enabled", "grpc-tls", "BOOL",
       "serve gRPC over TLS: with cert_file and key_file, or, without them, a certificate from "
       "the controller's own CA (needs the controllers)",
       &C::tls_enabled},
      {"grpc.tls.cert_file", "tls-cert-file", "FILE", "gRPC serving certificate", &C::tls_cert},
      {"grpc.tls.key_file", "tls-key-file", "FILE", "its private key", &C::tls_key},
      {"grpc.tls.ca_file", "tls-ca-file", "FILE", "CA of agents' client certificates (mTLS)",
       &C::tls_ca},
      {"grpc.tls.ca_secret", "tls-ca-secret", "NAME",
       "without a certificate: the Secret (in the pod's namespace) holding the controller's own "
       "CA, made when missing",
       &C::tls_ca_secret},
      {"grpc.tls.dns_names", "tls-dns-names", "NAMES",
       "without a certificate: the names of the serving certificate (comma-separated; the host "
       "of --agent-endpoint is added)",
       &C::tls_dns_names},
      {"http.tls", "http-tls", "BOOL",
       "serve the HTTP API over TLS with the gRPC port's certificate (needs grpc.tls.enabled)",
       &C::http_tls},
      {"metrics.tls", "metrics-tls", "BOOL",
       "serve /metrics over TLS with the gRPC port's certificate (needs grpc.tls.enabled)",
       &C::metrics_tls},
      {"grpc.max_outbound_queue", "", "", "messages queued per agent stream",
       &C::max_outbound_queue, 1, 1 << 20},
      {"grpc.handshake_timeout", "", "",
       "a connection's handshake and a stream's connect message must come within this",
       &C::handshake_timeout},
      {"grpc.max_streams", "", "", "agent streams open at once; one more gets RESOURCE_EXHAUSTED",
       &C::max_streams, 1, 10000000},
      {"grpc.max_messages_per_second", "", "",
       "messages an agent may send per second on its stream (beyond: the stream is closed)",
       &C::max_messages_per_second, 1, 1000000},
      {"grpc.message_burst", "", "", "the burst above that rate (a reconnect's replay)",
       &C::message_burst, 1, 10000000},
      {"http.port", "http-port", "PORT", "HTTP JSON API port (0 = any, -1 = off)", &C::http_port,
       -1, 65535},
      {"heartbeat.timeout", "heartbeat-timeout", "DURATION", "silence after which an agent is lost",
       &C::heartbeat_timeout},
      {"commands.ack_timeout", "ack-timeout", "DURATION", "time a command may wait for its ack",
       &C::ack_timeout},
      {"hub.forget_after", "", "",
       "an agent with no stream, silent this long and with nothing pending, is forgotten",
       &C::forget_after},
      {"hub.max_agents_without_stream", "", "",
       "agents held without a gRPC stream (HTTP pollers); a new vm_id beyond it gets 429",
       &C::max_agents_without_stream, 1, 100000000},
      // Who may ask.
      {"auth.agents", "agent-auth", "none|token",
       "how agents prove who they are: token = their pod's projected service-account token "
       "(audience miglet), checked with TokenReview against the RunnerVM's pod",
       &C::agent_auth},
      {"auth.secure_api", "secure-api", "BOOL",
       "the HTTP API's operator endpoints (GET /api/v1/vms..., POST .../commands) need a bearer "
       "token allowed by SubjectAccessReview",
       &C::secure_api},
      // Metrics and probes.
      {"metrics.secure", "metrics-secure", "BOOL",
       "/metrics needs a bearer token allowed get on /metrics (TokenReview + SubjectAccessReview)",
       &C::metrics_secure},
      {"metrics.bind_address", "metrics-bind-address", "ADDR", "address of /metrics (\"0\" = off)",
       &C::metrics_bind_address},
      {"health.bind_address", "health-probe-bind-address", "ADDR",
       "address of /healthz and /readyz (\"0\" = off)", &C::health_probe_bind_address},
      // The Kubernetes controllers.
      {"kubernetes.controllers", "controllers", "auto|on|off",
       "run the RunnerPool/RunnerVM controllers; auto = on in a pod or with a kubeconfig",
       &C::controllers},
      {"kubernetes.kubeconfig", "kubeconfig", "FILE",
       "kubeconfig (default: in-cluster, $KUBECONFIG)", &C::kubeconfig},
      {"kubernetes.context", "context", "NAME", "kubeconfig context", &C::kube_context},
      {"kubernetes.namespace", "namespace", "NS", "watch one namespace (default: all)",
       &C::watch_namespace},
      {"leader_election.enabled", "leader-elect", "BOOL",
       "elect a leader among replicas (a Lease); only the leader serves agents", &C::leader_elect},
      {"leader_election.id", "leader-election-id", "NAME", "the Lease's name",
       &C::leader_election_id},
      {"leader_election.namespace", "leader-election-namespace", "NS",
       "the Lease's namespace (default: the pod's)", &C::leader_election_namespace},
      {"kubernetes.agent_endpoint", "agent-endpoint", "HOST:PORT",
       "the gRPC endpoint agents in runner pods dial (the controller's Service)",
       &C::agent_endpoint},
      {"github.ca_file", "github-ca-file", "FILE", "extra CA for GitHub (Enterprise Server)",
       &C::github_ca_file},
      {"kubernetes.status_refresh", "", "",
       "refresh of a RunnerVM's last-seen when nothing else changes", &C::status_refresh},
      {"github.sweep_interval", "", "", "how often each pool's offline runners are swept at GitHub",
       &C::github_sweep_interval},
      {"kubernetes.workers", "workers", "N", "reconcile workers per controller", &C::workers, 1,
       64},
      // Logs and tools.
      {"logging.level", "log-level", "LEVEL", "trace, debug, info, warn or error", &C::log_level},
      {"logging.format", "log-format", "FORMAT", "text or json", &C::log_format},
      {"", "listen-info-file", "FILE",
       "write the bound ports as JSON to FILE once serving (for tools and tests)",
       &C::listen_info_file},
  };
  return kSettings;
}

namespace {

std::string Show(const ControllerConfig& c, const Setting& s) {
  return std::visit(
      [&](auto member) -> std::string {
        const auto& v = c.*member;
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, std::string>) {
          return v.empty() ? "\"\"" : v;
        } else if constexpr (std::is_same_v<T, bool>) {
          return v ? "true" : "false";
        } else if constexpr (std::is_same_v<T, int64_t>) {
          return std::to_string(v);
        } else {
          return FormatDuration(v);
        }
      },
      s.field);
}

absl::Status SetFromString(ControllerConfig* c, const Setting& s, const std::string& v) {
  return std::visit(
      [&](auto member) -> absl::Status {
        auto& out = c->*member;
        using T = std::decay_t<decltype(out)>;
        if constexpr (std::is_same_v<T, std::string>) {
          out = v;
        } else if constexpr (std::is_same_v<T, bool>) {
          if (v == "true" || v == "1" || v.empty()) {
            out = true;
          } else if (v == "false" || v == "0") {
            out = false;
          } else {
            return absl::InvalidArgumentError("\"" + v + "\" is not true or false");
          }
        } else if constexpr (std::is_same_v<T, int64_t>) {
          int64_t n;
          if (!absl::SimpleAtoi(v, &n) || n < s.min || n > s.max) {
            return absl::InvalidArgumentError("\"" + v + "\" is not a number in [" +
                                              std::to_string(s.min) + ", " + std::to_string(s.max) +
                                              "]");
          }
          out = n;
        } else {
          ASSIGN_OR_RETURN(out, ParseDuration(v));
        }
        return absl::OkStatus();
      },
      s.field);
}

}  // namespace

absl::StatusOr<std::pair<std::string, int>> SplitBindAddress(const std::string& addr) {
  if (addr == "0") return std::pair<std::string, int>{"", -1};
  const size_t colon = addr.rfind(':');
  if (colon == std::string::npos) {
    return absl::InvalidArgumentError("\"" + addr + "\" is not HOST:PORT, :PORT or 0");
  }
  std::string host = addr.substr(0, colon);
  if (host.empty()) host = "0.0.0.0";
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  int port;
  if (!absl::SimpleAtoi(addr.substr(colon + 1), &port) || port < 0 || port > 65535) {
    return absl::InvalidArgumentError("\"" + addr + "\": bad port");
  }
  return std::pair<std::string, int>{host, port};
}

absl::StatusOr<Parsed> Parse(int argc, char** argv) {
  Parsed out;
  ControllerConfig& cfg = out.config;
  FlagSet flags("mig-controller",
                "The miglet controller: the RunnerPool and RunnerVM controllers, one gRPC command "
                "stream per\nmiglet agent, the agents' HTTP JSON API, Prometheus metrics and "
                "health probes.\nPrecedence: flags > MIG_CONTROLLER_* environment > --config "
                "file > defaults.");
  flags.String("config", "FILE", "YAML config file (its keys are listed in the README)",
               [&](const std::string& v) { cfg.config_file = v; });
  // Flags are collected first and applied last: they win over the file and the environment.
  std::vector<std::pair<const Setting*, std::string>> given;
  for (const Setting& s : Settings()) {
    if (s.flag.empty()) continue;
    const std::string help = s.help + " (default " + Show(ControllerConfig{}, s) + ")";
    if (std::holds_alternative<bool ControllerConfig::*>(s.field)) {
      flags.OptionalValue(s.flag, help, [&given, &s](const std::string& v) {
        given.emplace_back(&s, v);
        return absl::OkStatus();
      });
    } else {
      flags.Value(s.flag, s.value_name, help, [&given, &s](const std::string& v) {
        given.emplace_back(&s, v);
        return absl::OkStatus();
      });
    }
  }
  // A legacy flag: the metrics port on the bind address.
  std::optional<std::string> metrics_port;
  flags.Value("metrics-port", "PORT", "(older form) /metrics port; -1 = off",
              [&](const std::string& v) {
                metrics_port = v;
                return absl::OkStatus();
              });
  RETURN_IF_ERROR(flags.Parse(argc, argv));
  out.usage = flags.Usage();
  out.help = flags.help();
  out.version = flags.version();
  if (out.help || out.version) return out;

  std::optional<ConfigFile> file;
  if (!cfg.config_file.empty()) {
    auto f = ConfigFile::Load(cfg.config_file);
    if (!f.ok()) return Annotate(f.status(), "config");
    file = std::move(*f);
  }
  ConfigBinder b(file ? &*file : nullptr, "MIG_CONTROLLER_");
  for (const Setting& s : Settings()) {
    if (s.key.empty()) continue;
    std::visit(
        [&](auto member) {
          auto& f = cfg.*member;
          using T = std::decay_t<decltype(f)>;
          if constexpr (std::is_same_v<T, std::string>) {
            b.String(s.key, &f);
          } else if constexpr (std::is_same_v<T, bool>) {
            b.Bool(s.key, &f);
          } else if constexpr (std::is_same_v<T, int64_t>) {
            b.Int(s.key, &f, s.min, s.max);
          } else {
            b.Dur(s.key, &f);
          }
        },
        s.field);
  }
  // metrics.port: the older key, kept working.
  int64_t legacy_port = -2;
  b.Int("metrics.port", &legacy_port, -2, 65535);
  RETURN_IF_ERROR(b.Finish());
  if (legacy_port == -1) cfg.metrics_bind_address = "0";
  if (legacy_port >= 0) cfg.metrics_bind_address = ":" + std::to_string(legacy_port);
  for (const auto& [s, v] : given) {
    if (auto st = SetFromString(&cfg, *s, v); !st.ok()) {
      return absl::InvalidArgumentError("--" + s->flag + ": " + std::string(st.message()));
    }
  }
  if (metrics_port) {
    int64_t p;
    if (!absl::SimpleAtoi(*metrics_port, &p) || p < -1 || p > 65535) {
      return absl::InvalidArgumentError("--metrics-port: \"" + *metrics_port +
                                        "\" is not a number in [-1, 65535]");
    }
    cfg.metrics_bind_address = p < 0 ? "0" : ":" + std::to_string(p);
  }

  // Checks across settings, each naming where its value came from.
  auto where = [&](const std::string& key) {
    for (const auto& [s, v] : given) {
      if (s->key == key) return "--" + s->flag;
    }
    return b.Where(key);
  };
  if (cfg.tls_enabled && cfg.tls_cert.empty() != cfg.tls_key.empty()) {
    return absl::InvalidArgumentError(where("grpc.tls.enabled") +
                                      ": grpc.tls.cert_file and grpc.tls.key_file go together "
                                      "(neither: a certificate from the controller's own CA)");
  }
  for (const auto& [key, on] :
       {std::pair{"http.tls", cfg.http_tls}, std::pair{"metrics.tls", cfg.metrics_tls}}) {
    if (on && !cfg.tls_enabled) {
      return absl::InvalidArgumentError(where(key) + ": " + key +
                                        " serves the gRPC port's certificate: it needs "
                                        "grpc.tls.enabled");
    }
  }
  if (cfg.forget_after < cfg.heartbeat_timeout) {
    return absl::InvalidArgumentError(
        where("hub.forget_after") + ": hub.forget_after (" + FormatDuration(cfg.forget_after) +
        ") must be at least heartbeat.timeout (" + FormatDuration(cfg.heartbeat_timeout) +
        "): an agent is lost before it is forgotten");
  }
  if (auto l = ParseLogLevel(cfg.log_level); !l.ok()) {
    return absl::InvalidArgumentError(where("logging.level") +
                                      ": logging.level: " + std::string(l.status().message()));
  }
  if (auto f = ParseLogFormat(cfg.log_format); !f.ok()) {
    return absl::InvalidArgumentError(where("logging.format") +
                                      ": logging.format: " + std::string(f.status().message()));
  }
  if (cfg.agent_auth != "none" && cfg.agent_auth != "token") {
    return absl::InvalidArgumentError(where("auth.agents") + ": auth.agents: \"" + cfg.agent_auth +
                                      "\" is not none or token");
  }
  if (cfg.controllers != "auto" && cfg.controllers != "on" && cfg.controllers != "off") {
    return absl::InvalidArgumentError(where("kubernetes.controllers") +
                                      ": kubernetes.controllers: \"" + cfg.controllers +
                                      "\" is not auto, on or off");
  }
  for (const auto& [key, addr] :
       {std::pair{"metrics.bind_address", cfg.metrics_bind_address},
        std::pair{"health.bind_address", cfg.health_probe_bind_address}}) {
    if (auto a = SplitBindAddress(addr); !a.ok()) {
      return absl::InvalidArgumentError(where(key) + ": " + key + ": " +
                                        std::string(a.status().message()));
    }
  }
  return out;
}

}  // namespace miglet::operator_config
