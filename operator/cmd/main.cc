// mig-controller: flags, config, wiring and signals. Everything else lives in tested code.
#include <prometheus/exposer.h>
#include <prometheus/registry.h>

#include <csignal>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <optional>

#include "absl/strings/numbers.h"
#include "miglet/common/config.h"
#include "miglet/common/duration.h"
#include "miglet/common/flags.h"
#include "miglet/common/http.h"
#include "miglet/common/logging.h"
#include "miglet/common/runtime.h"
#include "miglet/common/status.h"
#include "miglet/operator/agent_hub_server.h"

namespace miglet {
namespace {

constexpr char kVersion[] = "0.1.0";

struct ControllerConfig {
  std::string config_file;
  std::string bind_address = "0.0.0.0";
  int64_t grpc_port = 50051;
  bool tls_enabled = false;
  std::string tls_cert, tls_key, tls_ca;
  int64_t http_port = 8080;
  int64_t metrics_port = 9090;
  Duration heartbeat_timeout = std::chrono::seconds(45);
  Duration ack_timeout = std::chrono::minutes(5);
  int64_t max_outbound_queue = 1024;
  std::string log_level = "info";
  std::string log_format = "text";
  std::string listen_info_file;
};

absl::Status LoadConfigFile(ControllerConfig* c) {
  std::optional<ConfigFile> file;
  if (!c->config_file.empty()) {
    auto f = ConfigFile::Load(c->config_file);
    if (!f.ok()) return f.status();
    file = std::move(*f);
  }
  ConfigBinder b(file ? &*file : nullptr, "MIG_CONTROLLER_");
  b.String("grpc.bind_address", &c->bind_address)
      .Int("grpc.port", &c->grpc_port, 0, 65535)
      .Bool("grpc.tls.enabled", &c->tls_enabled)
      .String("grpc.tls.cert_file", &c->tls_cert)
      .String("grpc.tls.key_file", &c->tls_key)
      .String("grpc.tls.ca_file", &c->tls_ca)
      .Int("grpc.max_outbound_queue", &c->max_outbound_queue, 1, 1 << 20)
      .Int("http.port", &c->http_port, -1, 65535)
      .Int("metrics.port", &c->metrics_port, -1, 65535)
      .Dur("heartbeat.timeout", &c->heartbeat_timeout)
      .Dur("commands.ack_timeout", &c->ack_timeout)
      .String("logging.level", &c->log_level)
      .String("logging.format", &c->log_format);
  RETURN_IF_ERROR(b.Finish());
  if (c->tls_enabled && (c->tls_cert.empty() || c->tls_key.empty())) {
    return absl::InvalidArgumentError(b.Where("grpc.tls.enabled") +
                                      ": grpc.tls.enabled needs grpc.tls.cert_file and "
                                      "grpc.tls.key_file");
  }
  if (auto l = ParseLogLevel(c->log_level); !l.ok()) {
    return absl::InvalidArgumentError(b.Where("logging.level") +
                                      ": logging.level: " + std::string(l.status().message()));
  }
  if (auto f = ParseLogFormat(c->log_format); !f.ok()) {
    return absl::InvalidArgumentError(b.Where("logging.format") +
                                      ": logging.format: " + std::string(f.status().message()));
  }
  return absl::OkStatus();
}

absl::Status IntFlag(const std::string& v, int64_t* out, int64_t min, int64_t max) {
  int64_t n;
  if (!absl::SimpleAtoi(v, &n) || n < min || n > max) {
    return absl::InvalidArgumentError("\"" + v + "\" is not a number in [" + std::to_string(min) +
                                      ", " + std::to_string(max) + "]");
  }
  *out = n;
  return absl::OkStatus();
}

int Run(int argc, char** argv) {
  ControllerConfig cfg;
  // Flags win over the file and the environment, so parse them into overrides first.
  std::vector<std::function<absl::Status(ControllerConfig*)>> overrides;
  FlagSet flags("mig-controller",
                "The miglet controller: holds one gRPC command stream per miglet agent, serves\n"
                "the agents' HTTP JSON API, and exposes Prometheus metrics.\n"
                "Precedence: flags > MIG_CONTROLLER_* environment > --config file > defaults.");
  flags.String("config", "FILE", "YAML config file (keys: grpc.port, http.port, metrics.port, ...)",
               [&](const std::string& v) { cfg.config_file = v; });
  auto add_override = [&](const std::string& name, const std::string& vn, const std::string& help,
                          std::function<absl::Status(ControllerConfig*, const std::string&)> f) {
    flags.Value(name, vn, help, [&overrides, f](const std::string& v) {
      overrides.push_back([f, v](ControllerConfig* c) { return f(c, v); });
      return absl::OkStatus();
    });
  };
  add_override("bind-address", "ADDR", "address the gRPC and HTTP ports bind (default 0.0.0.0)",
               [](ControllerConfig* c, const std::string& v) {
                 c->bind_address = v;
                 return absl::OkStatus();
               });
  add_override("grpc-port", "PORT", "gRPC port for agent streams (default 50051; 0 = any)",
               [](ControllerConfig* c, const std::string& v) {
                 return IntFlag(v, &c->grpc_port, 0, 65535);
               });
  add_override("http-port", "PORT", "HTTP JSON API port (default 8080; 0 = any; -1 = off)",
               [](ControllerConfig* c, const std::string& v) {
                 return IntFlag(v, &c->http_port, -1, 65535);
               });
  add_override("metrics-port", "PORT", "Prometheus /metrics port (default 9090; 0 = any; -1 = off)",
               [](ControllerConfig* c, const std::string& v) {
                 return IntFlag(v, &c->metrics_port, -1, 65535);
               });
  add_override("heartbeat-timeout", "DURATION",
               "silence after which an agent is lost (default 45s)",
               [](ControllerConfig* c, const std::string& v) -> absl::Status {
                 ASSIGN_OR_RETURN(c->heartbeat_timeout, ParseDuration(v));
                 return absl::OkStatus();
               });
  add_override("ack-timeout", "DURATION", "time a command may wait for its ack (default 5m)",
               [](ControllerConfig* c, const std::string& v) -> absl::Status {
                 ASSIGN_OR_RETURN(c->ack_timeout, ParseDuration(v));
                 return absl::OkStatus();
               });
  add_override("log-level", "LEVEL", "trace, debug, info, warn or error (default info)",
               [](ControllerConfig* c, const std::string& v) {
                 c->log_level = v;
                 return ParseLogLevel(v).status();
               });
  add_override("log-format", "FORMAT", "text or json (default text)",
               [](ControllerConfig* c, const std::string& v) {
                 c->log_format = v;
                 return ParseLogFormat(v).status();
               });
  flags.String("listen-info-file", "FILE",
               "write the bound ports as JSON to FILE once serving (for tools and tests)",
               [&](const std::string& v) { cfg.listen_info_file = v; });

  if (auto st = flags.Parse(argc, argv); !st.ok()) {
    std::cerr << "mig-controller: " << st.message() << "\n";
    return 2;
  }
  if (flags.help()) {
    std::cout << flags.Usage();
    return 0;
  }
  if (flags.version()) {
    std::cout << "mig-controller " << kVersion << "\n";
    return 0;
  }
  if (auto st = LoadConfigFile(&cfg); !st.ok()) {
    std::cerr << "mig-controller: config: " << st.message() << "\n";
    return 2;
  }
  for (auto& o : overrides) {
    if (auto st = o(&cfg); !st.ok()) {
      std::cerr << "mig-controller: " << st.message() << "\n";
      return 2;
    }
  }

  // Signals are taken synchronously by the main thread; block them before any thread starts.
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);

  TuneRuntimeForServing();
  InitHttpThreads(4);
  InitLogging("mig-controller", *ParseLogFormat(cfg.log_format), *ParseLogLevel(cfg.log_level));

  auto registry = std::make_shared<prometheus::Registry>();
  std::unique_ptr<prometheus::Exposer> exposer;
  int metrics_port = -1;
  if (cfg.metrics_port >= 0) {
    try {
      exposer = std::make_unique<prometheus::Exposer>(cfg.bind_address + ":" +
                                                      std::to_string(cfg.metrics_port));
      exposer->RegisterCollectable(registry);
      metrics_port = exposer->GetListeningPorts().at(0);
    } catch (const std::exception& e) {
      spdlog::error("cannot serve metrics on port {}: {}", cfg.metrics_port, e.what());
      return 1;
    }
  }

  AgentHubServerOptions opts;
  opts.bind_address = cfg.bind_address;
  opts.grpc_port = static_cast<int>(cfg.grpc_port);
  opts.http_port = static_cast<int>(cfg.http_port);
  opts.max_outbound_queue = static_cast<size_t>(cfg.max_outbound_queue);
  opts.hub.heartbeat_timeout = cfg.heartbeat_timeout;
  opts.hub.ack_timeout = cfg.ack_timeout;
  opts.hub.server_version = kVersion;
  if (cfg.tls_enabled) {
    opts.tls_cert_file = cfg.tls_cert;
    opts.tls_key_file = cfg.tls_key;
    opts.tls_ca_file = cfg.tls_ca;
  }
  auto server = AgentHubServer::Start(opts, MakeRealClock(), registry.get());
  if (!server.ok()) {
    spdlog::error("cannot start the agent hub: {}", server.status().ToString());
    return 1;
  }
  // Until the Kubernetes controllers consume them, agents' events are logged.
  (*server)->hub().SetEventHook([](const commands::EventNotification& e) {
    std::string data;
    for (const auto& [k, v] : e.data()) data += (data.empty() ? "" : " ") + k + "=" + v;
    spdlog::info("agent {} event {} {}", e.vm_id(), e.type(), data);
  });
  if (!cfg.listen_info_file.empty()) {
    const std::string tmp = cfg.listen_info_file + ".tmp";
    std::ofstream(tmp) << "{\"grpc_port\":" << (*server)->grpc_port()
                       << ",\"http_port\":" << (*server)->http_port()
                       << ",\"metrics_port\":" << metrics_port << ",\"pid\":" << getpid() << "}\n";
    std::rename(tmp.c_str(), cfg.listen_info_file.c_str());
  }
  spdlog::info("mig-controller {} ready (metrics on port {})", kVersion, metrics_port);

  int sig = 0;
  sigwait(&sigs, &sig);
  spdlog::info("received {}, shutting down", sig == SIGTERM ? "SIGTERM" : "SIGINT");
  (*server)->Shutdown();
  return 0;
}

}  // namespace
}  // namespace miglet

int main(int argc, char** argv) { return miglet::Run(argc, argv); }
