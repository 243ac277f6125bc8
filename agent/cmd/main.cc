// miglet: flags, config, wiring and signals. Everything else lives in tested code.
#include <prometheus/registry.h>

#include <atomic>
#include <csignal>
#include <iostream>

#include <thread>

#include "miglet/agent/agent.h"
#include "miglet/agent/config.h"
#include "miglet/agent/install.h"
#include "miglet/common/duration.h"
#include "miglet/common/flags.h"
#include "miglet/common/http.h"
#include "miglet/common/logging.h"
#include "miglet/common/metrics_server.h"
#include "miglet/common/runtime.h"
#include "miglet/common/status.h"

namespace miglet {
namespace {

constexpr char kVersion[] = "0.1.0";

int Run(int argc, char** argv) {
  // Set by the bundle's launcher (hack/images/bundle.sh); not passed on to the runner.
  const char* bundle_env = std::getenv("MIGLET_BUNDLE_DIR");
  const std::string bundle_dir = bundle_env ? bundle_env : "";
  unsetenv("MIGLET_BUNDLE_DIR");
  std::string config_file;
  std::string install_dir;
  bool check_config = false;
  std::vector<std::function<absl::Status(AgentConfig*)>> overrides;
  FlagSet flags("miglet",
                "The miglet agent: keeps a command stream to mig-controller, heartbeats, and runs\n"
                "the controller's commands. Precedence: flags > MIGLET_* environment > --config\n"
                "file > defaults (MIGLET_CONTROLLER_GRPC_ENDPOINT sets controller.grpc_endpoint).");
  flags.String("config", "FILE", "YAML config file",
               [&](const std::string& v) { config_file = v; });
  flags.String("install", "DIR",
               "copy this self-contained miglet (its bundle: bin/, libexec/, lib/) into DIR and "
               "exit; the pod provider's init container runs it",
               [&](const std::string& v) { install_dir = v; });
  flags.Bool("check-config",
             "validate the config, print the effective values (secrets redacted), and exit",
             [&] { check_config = true; });
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
  str("runner-dir", "runner.dir", "where the GitHub Actions runner is unpacked (config.sh, run.sh)",
      &AgentConfig::runner_dir);
  str("mode", "mode", "sidecar (exit after shutdown) or vm (run shutdown.command)",
      &AgentConfig::mode);
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
  if (flags.Given("install")) {
    if (auto st = InstallBundle(bundle_dir, install_dir); !st.ok()) {
      std::cerr << "miglet: " << st.message() << "\n";
      return 1;
    }
    std::cout << "miglet " << kVersion << " installed in " << install_dir << "\n";
    return 0;
  }
  AgentConfig cfg;
  if (auto st = BindAgentConfig(config_file, &cfg); !st.ok()) {
    std::cerr << "miglet: config: " << st.message() << "\n";
    return 2;
  }
  for (auto& o : overrides) (void)o(&cfg);
  if (auto v = ValidateAgentConfig(cfg); !v.ok()) {
    std::cerr << "miglet: config: " << v.message() << "\n";
    return 2;
  }

  if (check_config) {
    std::cout << EffectiveConfigYaml(cfg);
    return 0;
  }

  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  // SIGUSR1 is the program's own "exiting" wake-up for the signal thread below.
  sigaddset(&sigs, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);

  TuneRuntimeForServing();
  InitHttpThreads(2);
  InitLogging("miglet", *ParseLogFormat(cfg.log_format), *ParseLogLevel(cfg.log_level));
  if (!cfg.ignored_keys.empty()) {
    // A field agent's file: what means nothing here is named once.
    std::string keys;
    for (const auto& k : cfg.ignored_keys) keys += (keys.empty() ? "" : ", ") + k;
    spdlog::warn("config: keys ignored (they have no meaning for miglet): {}", keys);
  }

  auto registry = std::make_shared<prometheus::Registry>();
  Agent agent(cfg, kVersion, MakeRealClock(), registry.get());
  std::unique_ptr<HttpServer> metrics_server;
  if (!cfg.metrics_listen.empty()) {
    auto m = StartMetricsServer(
        cfg.metrics_listen, registry,
        Probes{[] { return absl::OkStatus(); },
               [&agent] {
                 return agent.ready() ? absl::OkStatus()
                                      : absl::UnavailableError("not connected to the controller");
               }});
    if (!m.ok()) {
      spdlog::error("cannot serve metrics on {}: {}", cfg.metrics_listen, m.status().ToString());
      return 1;
    }
    metrics_server = std::move(m->first);
    spdlog::info("metrics on {} (port {})", cfg.metrics_listen, m->second);
  }
  agent.Start();
  spdlog::info("miglet {} started as {} in pool {} ({} mode)", kVersion, cfg.vm_id, cfg.pool_id,
               cfg.mode);

  // Signals: the first SIGTERM/SIGINT drains and shuts down gracefully; a second one exits.
  // The thread is joined before `agent` goes out of scope: once the agent has exited, main sets
  // `exiting` and wakes it with SIGUSR1, so a late SIGTERM can never reach a destroyed agent. A
  // SIGUSR1 from outside is ignored.
  std::atomic<bool> exiting{false};
  std::thread signals([&agent, &exiting, sigs] {
    auto next = [&]() -> int {  // the next SIGTERM/SIGINT, or 0 once main is exiting
      for (;;) {
        int sig = 0;
        sigwait(&sigs, &sig);
        if (sig != SIGUSR1) return sig;
        if (exiting.load()) return 0;
      }
    };
    const int first = next();
    if (first == 0) return;
    agent.BeginTermination(first == SIGTERM ? "SIGTERM" : "SIGINT");
    if (next() == 0) return;
    spdlog::warn("second signal: exiting now");
    std::_Exit(130);
  });

  const int code = agent.WaitForExit();
  spdlog::info("miglet exiting with {}", code);
  exiting.store(true);
  pthread_kill(signals.native_handle(), SIGUSR1);
  signals.join();
  if (metrics_server) metrics_server->Stop();
  return code;
}

}  // namespace
}  // namespace miglet

int main(int argc, char** argv) { return miglet::Run(argc, argv); }
