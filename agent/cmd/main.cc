// miglet: flags, config, wiring and signals. Everything else lives in tested code.
#include <prometheus/exposer.h>
#include <prometheus/registry.h>

#include <csignal>
#include <iostream>

#include "miglet/agent/command_dispatcher.h"
#include "miglet/agent/config.h"
#include "miglet/agent/live_config.h"
#include "miglet/agent/stream_client.h"
#include "miglet/common/duration.h"
#include "miglet/common/flags.h"
#include "miglet/common/http.h"
#include "miglet/common/logging.h"
#include "miglet/common/runtime.h"
#include "miglet/common/status.h"

namespace miglet {
namespace {

constexpr char kVersion[] = "0.1.0";

int Run(int argc, char** argv) {
  std::string config_file;
  std::vector<std::function<absl::Status(AgentConfig*)>> overrides;
  FlagSet flags("miglet",
                "The miglet agent: keeps a command stream to mig-controller, heartbeats, and runs\n"
                "the controller's commands. Precedence: flags > MIGLET_* environment > --config\n"
                "file > defaults (MIGLET_CONTROLLER_GRPC_ENDPOINT sets controller.grpc_endpoint).");
  flags.String("config", "FILE", "YAML config file",
               [&](const std::string& v) { config_file = v; });
  auto str = [&](const std::string& name, const std::string& key, const std::string& help,
                 std::string AgentConfig::*field) {
    flags.String(name, "VALUE", help, [&overrides, field, key](const std::string& v) {
      overrides.push_back([field, key, v](AgentConfig* c) {
        c->*field = v;
        c->sources[key] = "flag";
        return absl::OkStatus();
      });
    });
  };
  str("vm-id", "vm_id", "this runner machine's id (vm_id)", &AgentConfig::vm_id);
  str("pool-id", "pool_id", "the pool it belongs to (pool_id)", &AgentConfig::pool_id);
  str("org-id", "org_id", "the GitHub organisation (org_id)", &AgentConfig::org_id);
  str("controller-grpc", "controller.grpc_endpoint", "controller gRPC endpoint, host:port",
      &AgentConfig::controller_grpc_endpoint);
  str("controller-http", "controller.endpoint",
      "controller HTTP API, http://host:port (first contact and fallback)",
      &AgentConfig::controller_endpoint);
  str("metrics-listen", "metrics.listen", "address for /metrics (default 0.0.0.0:9102)",
      &AgentConfig::metrics_listen);
  str("log-level", "logging.level", "trace, debug, info, warn or error", &AgentConfig::log_level);
  str("log-format", "logging.format", "json or text", &AgentConfig::log_format);
  flags.Value("heartbeat-interval", "DURATION", "time between heartbeats (default 15s)",
              [&](const std::string& v) -> absl::Status {
                ASSIGN_OR_RETURN(Duration d, ParseDuration(v));
                overrides.push_back([d](AgentConfig* c) {
                  c->heartbeat_interval = d;
                  c->sources["heartbeat.interval"] = "flag";
                  return absl::OkStatus();
                });
                return absl::OkStatus();
              });

  if (auto st = flags.Parse(argc, argv); !st.ok()) {
    std::cerr << "miglet: " << st.message() << "\n";
    return 2;
  }
  if (flags.help()) {
    std::cout << flags.Usage();
    return 0;
  }
  if (flags.version()) {
    std::cout << "miglet " << kVersion << "\n";
    return 0;
  }
  AgentConfig cfg;
  absl::Status st = LoadAgentConfig(config_file, &cfg);
  // Flags may supply what the file lacks, so a failed validation is re-checked after them.
  if (!st.ok() && st.message().find("required") == absl::string_view::npos) {
    std::cerr << "miglet: config: " << st.message() << "\n";
    return 2;
  }
  for (auto& o : overrides) (void)o(&cfg);
  if (auto v = ValidateAgentConfig(cfg); !v.ok()) {
    std::cerr << "miglet: config: " << v.message() << "\n";
    return 2;
  }

  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);

  TuneRuntimeForServing();
  InitHttpThreads(2);
  InitLogging("miglet", *ParseLogFormat(cfg.log_format), *ParseLogLevel(cfg.log_level));

  auto registry = std::make_shared<prometheus::Registry>();
  std::unique_ptr<prometheus::Exposer> exposer;
  if (!cfg.metrics_listen.empty()) {
    try {
      exposer = std::make_unique<prometheus::Exposer>(cfg.metrics_listen);
      exposer->RegisterCollectable(registry);
      spdlog::info("metrics on {} (port {})", cfg.metrics_listen,
                   exposer->GetListeningPorts().at(0));
    } catch (const std::exception& e) {
      spdlog::error("cannot serve metrics on {}: {}", cfg.metrics_listen, e.what());
      return 1;
    }
  }

  std::unique_ptr<StreamClient> client;
  CommandDispatcher dispatcher;
  dispatcher.Register("set_log_level",
                      [&](const commands::Command& c) { return ApplySetLogLevel(c, &cfg); });
  dispatcher.Register("update_config", [&](const commands::Command& c) {
    return ApplyUpdateConfig(c, &cfg, client.get());
  });
  for (const char* type : {"register_runner", "drain", "shutdown"}) {
    dispatcher.Register(type, [type](const commands::Command&) {
      return MakeAck(false, std::string(type) +
                                " is not supported by this miglet build yet (runner supervision "
                                "is not built in)");
    });
  }
  client = StreamClient::Create(
      ToStreamOptions(cfg, kVersion), MakeRealClock(), &dispatcher,
      [] {
        commands::Heartbeat hb;
        hb.set_miglet_state("ready");
        hb.mutable_runner_state()->set_state("offline");
        return hb;
      },
      registry.get());
  client->Start();
  commands::EventNotification started;
  started.set_type("vm_started");
  (*started.mutable_data())["version"] = kVersion;
  client->SendEvent(started);
  spdlog::info("miglet {} started as {} in pool {}", kVersion, cfg.vm_id, cfg.pool_id);

  int sig = 0;
  sigwait(&sigs, &sig);
  spdlog::info("received {}, stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
  client->Flush(std::chrono::seconds(2));
  client->Stop();
  return 0;
}

}  // namespace
}  // namespace miglet

int main(int argc, char** argv) { return miglet::Run(argc, argv); }
