// mig-controller: flags, wiring and signals. Everything else lives in tested code (the
// configuration table is operator/src/config.cc).
#include <arpa/inet.h>
#include <prometheus/registry.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <random>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "miglet/common/http.h"
#include "miglet/common/logging.h"
#include "miglet/common/metrics_server.h"
#include "miglet/common/net.h"
#include "miglet/common/runtime.h"
#include "miglet/common/status.h"
#include "miglet/operator/agent_hub_server.h"
#include "miglet/operator/config.h"
#include "miglet/operator/controllers/access.h"
#include "miglet/operator/controllers/operator.h"
#include "miglet/operator/controllers/serving_tls.h"
#include "miglet/operator/ctrl/manager.h"
#include "miglet/operator/deferred_hub.h"
#include "miglet/operator/kube/config.h"
#include "miglet/operator/kube/instrumented_client.h"
#include "spdlog/spdlog.h"

namespace miglet {
namespace {

constexpr char kVersion[] = "0.1.0";
using operator_config::ControllerConfig;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// controller-runtime's identity: the hostname (the pod's name) and something unique.
std::string Identity() {
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  std::mt19937_64 rng{std::random_device{}()};
  char suffix[17];
  std::snprintf(suffix, sizeof suffix, "%016llx", static_cast<unsigned long long>(rng()));
  return std::string(host) + "_" + suffix;
}

std::string LeaseNamespace(const ControllerConfig& c) {
  if (!c.leader_election_namespace.empty()) return c.leader_election_namespace;
  if (const char* ns = std::getenv("POD_NAMESPACE"); ns && *ns) return ns;
  const std::string sa = ReadFile("/var/run/secrets/kubernetes.io/serviceaccount/namespace");
  if (!sa.empty()) return sa;
  return c.watch_namespace.empty() ? "default" : c.watch_namespace;
}

bool WantControllers(const ControllerConfig& c) {
  if (c.controllers != "auto") return c.controllers == "on";
  return !c.kubeconfig.empty() || std::getenv("KUBECONFIG") != nullptr ||
         std::getenv("KUBERNETES_SERVICE_HOST") != nullptr;
}

int Run(int argc, char** argv) {
  auto parsed = operator_config::Parse(argc, argv);
  if (!parsed.ok()) {
    std::cerr << "mig-controller: " << parsed.status().message() << "\n";
    return 2;
  }
  if (parsed->help) {
    std::cout << parsed->usage;
    return 0;
  }
  if (parsed->version) {
    std::cout << "mig-controller " << kVersion << "\n";
    return 0;
  }
  const ControllerConfig cfg = parsed->config;

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
  // TokenReview and SubjectAccessReview, when any of agent auth, the secure API or secure
  // metrics is on (made with the Kubernetes client below).
  std::shared_ptr<kube::AccessReviewer> reviewer;
  std::mutex authorizer_mu;
  RequestAuthorizer request_authorizer;
  const bool any_auth = cfg.agent_auth != "none" || cfg.secure_api || cfg.metrics_secure;
  if (any_auth && !WantControllers(cfg)) {
    std::fprintf(stderr,
                 "mig-controller: auth.agents, auth.secure_api and metrics.secure ask the "
                 "Kubernetes API who is asking: they need the controllers (a kubeconfig or a "
                 "pod)\n");
    return 2;
  }
  const bool own_ca = cfg.tls_enabled && cfg.tls_cert.empty();
  if (own_ca && !WantControllers(cfg)) {
    std::fprintf(stderr,
                 "mig-controller: grpc.tls.enabled without grpc.tls.cert_file and "
                 "grpc.tls.key_file makes a certificate from the controller's own CA, kept in a "
                 "Secret: it needs the controllers (a kubeconfig or a pod), or give the files\n");
    return 2;
  }
  std::unique_ptr<controllers::SelfSignedTls> own_tls;
  // Where the controller's own serving certificate will be (written once the Kubernetes client
  // is up; servers that read their files per connection can be given the paths now).
  const std::string own_tls_dir =
      (std::filesystem::temp_directory_path() / ("mig-controller-tls-" + std::to_string(getpid())))
          .string();
  const HttpServerTls served_tls =
      !cfg.tls_enabled ? HttpServerTls{}
      : own_ca         ? HttpServerTls{own_tls_dir + "/tls.crt", own_tls_dir + "/tls.key"}
                       : HttpServerTls{cfg.tls_cert, cfg.tls_key};
  std::unique_ptr<HttpServer> metrics_server;
  int metrics_port = -1;
  const auto metrics_addr = *operator_config::SplitBindAddress(cfg.metrics_bind_address);
  if (metrics_addr.second >= 0) {
    MetricsAuthorizer authorize;
    if (cfg.metrics_secure) {
      authorize = [&](const HttpRequest& r, std::function<void(absl::Status)> done) {
        RequestAuthorizer a;
        {
          std::lock_guard l(authorizer_mu);
          a = request_authorizer;
        }
        if (!a) return done(absl::UnavailableError("the Kubernetes client is not ready yet"));
        a(BearerToken(r.authorization), "get", r.path, std::move(done));
      };
    }
    auto m = StartMetricsServer(metrics_addr.first + ":" + std::to_string(metrics_addr.second),
                                registry, Probes{}, std::move(authorize),
                                cfg.metrics_tls ? served_tls : HttpServerTls{});
    if (!m.ok()) {
      spdlog::error("cannot serve metrics on {}: {}", cfg.metrics_bind_address,
                    m.status().ToString());
      return 1;
    }
    metrics_server = std::move(m->first);
    metrics_port = m->second;
  }

  // The agent hub: served at once without controllers, and otherwise only while leading.
  AgentHubServerOptions opts;
  opts.bind_address = cfg.bind_address;
  opts.grpc_port = static_cast<int>(cfg.grpc_port);
  opts.http_port = static_cast<int>(cfg.http_port);
  opts.max_outbound_queue = static_cast<size_t>(cfg.max_outbound_queue);
  opts.handshake_timeout = cfg.handshake_timeout;
  opts.max_streams = static_cast<size_t>(cfg.max_streams);
  opts.max_messages_per_second = static_cast<double>(cfg.max_messages_per_second);
  opts.message_burst = static_cast<double>(cfg.message_burst);
  opts.hub.heartbeat_timeout = cfg.heartbeat_timeout;
  opts.hub.ack_timeout = cfg.ack_timeout;
  opts.hub.forget_after = cfg.forget_after;
  opts.hub.max_agents_without_stream = static_cast<size_t>(cfg.max_agents_without_stream);
  opts.hub.server_version = kVersion;
  opts.http_tls = cfg.http_tls;
  if (cfg.tls_enabled) {
    opts.tls_cert_file = cfg.tls_cert;
    opts.tls_key_file = cfg.tls_key;
    opts.tls_ca_file = cfg.tls_ca;
  }
  DeferredHub hub;
  std::mutex server_mu;
  std::unique_ptr<AgentHubServer> server;
  std::atomic<bool> serving{false};
  std::atomic<int> health_port{-1};
  auto write_info = [&] {
    if (cfg.listen_info_file.empty()) return;
    const std::string tmp = cfg.listen_info_file + ".tmp";
    std::lock_guard l(server_mu);
    std::ofstream(tmp) << "{\"grpc_port\":" << (server ? server->grpc_port() : -1)
                       << ",\"http_port\":" << (server ? server->http_port() : -1)
                       << ",\"metrics_port\":" << metrics_port
                       << ",\"health_port\":" << health_port.load() << ",\"pid\":" << getpid()
                       << "}\n";
    std::rename(tmp.c_str(), cfg.listen_info_file.c_str());
  };
  auto start_hub = [&]() -> absl::Status {
    {
      std::lock_guard l(server_mu);
      if (server) return absl::OkStatus();
      ASSIGN_OR_RETURN(server, AgentHubServer::Start(opts, MakeRealClock(), registry.get()));
      hub.Set(&server->hub());
    }
    serving = true;
    write_info();
    return absl::OkStatus();
  };

  std::unique_ptr<ctrl::Manager> manager;
  std::unique_ptr<controllers::Operator> op;
  std::atomic<bool> lost_leadership{false};

  // /healthz: the process is alive. /readyz: serving agents, caches synced and, with leader
  // election, leading (a follower is not ready, so the Service sends agents to the leader).
  // The agent hub's own /readyz (on its HTTP port) says the same.
  auto not_ready = [&]() -> std::string {
    if (!serving) return "not serving agents (not the leader)";
    if (manager && !manager->CachesSynced()) return "caches not synced";
    return "";
  };
  opts.not_ready = [&]() -> std::string {
    if (manager && !manager->CachesSynced()) return "caches not synced";
    return "";
  };
  // Registrations for agents that register their runner themselves, from the operator.
  opts.registration =
      [&](const std::string& vm_id,
          bool only_if_wanted) -> absl::StatusOr<std::optional<RunnerRegistration>> {
    if (!op) return absl::UnavailableError("the operator is not running (no Kubernetes config)");
    return op->Registration(vm_id, only_if_wanted);
  };
  std::unique_ptr<HttpServer> health;
  const auto health_addr = *operator_config::SplitBindAddress(cfg.health_probe_bind_address);
  if (health_addr.second >= 0) {
    health = MakeHttpServer(health_addr.first, health_addr.second,
                            [&](const HttpRequest& r, HttpReply reply) {
                              if (r.path == "/healthz") return reply({200, "ok\n", "text/plain"});
                              if (r.path != "/readyz")
                                return reply({404, "not found\n", "text/plain"});
                              const std::string why = not_ready();
                              if (why.empty()) return reply({200, "ok\n", "text/plain"});
                              reply({503, why + "\n", "text/plain"});
                            });
    auto p = health->Start();
    if (!p.ok()) {
      spdlog::error("cannot serve health probes on {}: {}", cfg.health_probe_bind_address,
                    p.status().ToString());
      return 1;
    }
    health_port = *p;
  }

  if (!WantControllers(cfg)) {
    spdlog::info(
        "controllers off (no Kubernetes config; --controllers=on to insist): serving "
        "the agent hub alone");
    if (auto s = start_hub(); !s.ok()) {
      spdlog::error("cannot start the agent hub: {}", s.ToString());
      return 1;
    }
    // Without controllers, agents' events are logged.
    hub.SetEventHook([](const commands::EventNotification& e) {
      std::string data;
      for (const auto& [k, v] : e.data()) data += (data.empty() ? "" : " ") + k + "=" + v;
      spdlog::info("agent {} event {} {}", e.vm_id(), e.type(), data);
    });
  } else {
    auto kcfg = cfg.kubeconfig.empty() ? kube::DefaultConfig()
                                       : kube::LoadKubeconfig(cfg.kubeconfig, cfg.kube_context);
    if (!kcfg.ok()) {
      spdlog::error("Kubernetes config: {}", kcfg.status().ToString());
      return 1;
    }
    auto client = kube::MakeKubeClient(*kcfg);
    if (!client.ok()) {
      spdlog::error("Kubernetes client: {}", client.status().ToString());
      return 1;
    }
    // Every API request is counted (mig_controller_kube_requests_total).
    std::shared_ptr<kube::KubeClient> kc = kube::InstrumentKubeClient(
        std::shared_ptr<kube::KubeClient>(std::move(*client)), *registry);
    if (any_auth) {
      reviewer = std::make_shared<kube::AccessReviewer>(
          kc, MakeRealClock(), kube::AccessReviewOptions{}, registry.get());
      {
        std::lock_guard l(authorizer_mu);
        request_authorizer = controllers::DelegatedRequestAuthorizer(reviewer);
      }
      if (cfg.secure_api) opts.authorize_request = request_authorizer;
      if (cfg.agent_auth == "token") {
        opts.authorize_agent =
            controllers::AgentTokenAuthorizer(reviewer, [&] { return op.get(); });
      }
      spdlog::info("who asks is checked with the apiserver: agents {}, operator API {}, metrics {}",
                   cfg.agent_auth == "token" ? "by pod token" : "not",
                   cfg.secure_api ? "yes" : "no", cfg.metrics_secure ? "yes" : "no");
    }
    if (own_ca) {
      controllers::SelfSignedTlsOptions so;
      so.kube = kc;
      so.clock = MakeRealClock();
      so.ns = LeaseNamespace(cfg);
      so.ca_secret = cfg.tls_ca_secret;
      for (absl::string_view n : absl::StrSplit(cfg.tls_dns_names, ',', absl::SkipWhitespace())) {
        so.dns_names.emplace_back(absl::StripAsciiWhitespace(n));
      }
      if (auto hp = SplitHostPort(cfg.agent_endpoint); hp.ok() && !hp->first.empty()) {
        in_addr a;
        if (inet_pton(AF_INET, hp->first.c_str(), &a) == 1) {
          so.ips.push_back(hp->first);
        } else if (std::find(so.dns_names.begin(), so.dns_names.end(), hp->first) ==
                   so.dns_names.end()) {
          so.dns_names.push_back(hp->first);
        }
      }
      so.dns_names.push_back("localhost");
      so.ips.push_back("127.0.0.1");
      so.dir = own_tls_dir;
      auto t = controllers::SelfSignedTls::Start(so);
      if (!t.ok()) {
        spdlog::error("TLS: {}", t.status().ToString());
        return 1;
      }
      own_tls = std::move(*t);
      opts.tls_cert_file = own_tls->cert_file();
      opts.tls_key_file = own_tls->key_file();
      spdlog::info("TLS: serving certificate for {} from the controller's own CA (Secret {}/{})",
                   absl::StrJoin(so.dns_names, ", "), so.ns, so.ca_secret);
    }
    ctrl::ManagerOptions mo;
    mo.client = kc;
    mo.ns = cfg.watch_namespace;
    mo.clock = MakeRealClock();
    mo.registry = registry.get();
    if (cfg.leader_elect) {
      kube::LeaderElectionConfig le;
      le.lease_namespace = LeaseNamespace(cfg);
      le.lease_name = cfg.leader_election_id;
      le.identity = Identity();
      mo.leader_election = le;
      mo.on_started_leading = [&] {
        if (auto s = start_hub(); !s.ok()) {
          spdlog::error("cannot start the agent hub: {}", s.ToString());
          kill(getpid(), SIGTERM);
        }
      };
      mo.on_lost_leadership = [&] {
        // controller-runtime's answer: exit, and let a fresh process start as a follower.
        lost_leadership = true;
        kill(getpid(), SIGTERM);
      };
      spdlog::info("leader election on Lease {}/{} as {}", le.lease_namespace, le.lease_name,
                   le.identity);
    }
    manager = ctrl::MakeManager(mo);
    controllers::OperatorOptions oo;
    oo.kube = kc;
    oo.manager = manager.get();
    oo.hub = &hub;
    oo.clock = MakeRealClock();
    oo.registry = registry.get();
    oo.agent_endpoint = cfg.agent_endpoint;
    oo.status_refresh = cfg.status_refresh;
    oo.sweep_interval = cfg.github_sweep_interval;
    oo.workers = static_cast<int>(cfg.workers);
    if (own_tls) oo.controller_ca_pem = own_tls->ca_pem();
    if (!cfg.github_ca_file.empty()) {
      oo.github_tls.ca_pem = ReadFile(cfg.github_ca_file);
      oo.github_tls.ca_source = cfg.github_ca_file;
      if (oo.github_tls.ca_pem.empty()) {
        spdlog::error("--github-ca-file {}: cannot read it", cfg.github_ca_file);
        return 1;
      }
    }
    auto made = controllers::MakeOperator(oo);
    if (!made.ok()) {
      spdlog::error("operator: {}", made.status().ToString());
      return 1;
    }
    op = std::move(*made);
    if (auto s = manager->Start(); !s.ok()) {
      spdlog::error("{}", s.ToString());
      return 1;
    }
    if (!cfg.leader_elect) {
      if (auto s = start_hub(); !s.ok()) {
        spdlog::error("cannot start the agent hub: {}", s.ToString());
        return 1;
      }
    }
  }
  write_info();
  spdlog::info("mig-controller {} started (metrics on port {}, probes on port {})", kVersion,
               metrics_port, health_port.load());

  // The self-signed serving certificate is renewed before it expires (the hub's file watcher
  // serves the new one to new connections).
  std::mutex renew_mu;
  std::condition_variable renew_cv;
  bool stopping = false;
  std::thread renewer;
  if (own_tls) {
    renewer = std::thread([&] {
      std::unique_lock l(renew_mu);
      while (!renew_cv.wait_for(l, std::chrono::hours(1), [&] { return stopping; })) {
        if (auto r = own_tls->RenewIfDue(); !r.ok()) {
          spdlog::error("TLS: renewing the serving certificate: {}", r.status().ToString());
        }
      }
    });
  }

  int sig = 0;
  sigwait(&sigs, &sig);
  {
    std::lock_guard l(renew_mu);
    stopping = true;
  }
  renew_cv.notify_all();
  if (renewer.joinable()) renewer.join();
  spdlog::info("{}, shutting down",
               lost_leadership ? "leadership lost" : (sig == SIGTERM ? "SIGTERM" : "SIGINT"));
  if (manager) manager->Stop();  // releases the Lease: another replica takes over at once
  {
    std::lock_guard l(server_mu);
    if (server) server->Shutdown();
  }
  if (health) health->Stop();
  if (metrics_server) metrics_server->Stop();
  return lost_leadership ? 1 : 0;
}

}  // namespace
}  // namespace miglet

int main(int argc, char** argv) { return miglet::Run(argc, argv); }
