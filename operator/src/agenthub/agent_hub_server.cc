#include "miglet/operator/agent_hub_server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_credentials_options.h>
#include <malloc.h>
#include <prometheus/registry.h>

#include <atomic>
#include <condition_variable>
#include <fstream>
#include <list>
#include <sstream>
#include <thread>

#include "agent_registry.h"
#include "agent_stream.h"
#include "http_api.h"
#include "miglet/common/http.h"
#include "miglet/common/tsan.h"
#include "spdlog/spdlog.h"

namespace miglet {

namespace {

absl::StatusOr<std::string> ReadFile(const std::string& path, const std::string& what) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError("cannot read " + what + " " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class CommandServiceImpl final : public commands::CommandService::CallbackService {
 public:
  using NewStreamHook = std::function<void(std::weak_ptr<AgentStream>)>;
  CommandServiceImpl(AgentRegistry* registry, HubMetrics* metrics, AgentStream::Options opts,
                     size_t max_streams, AgentStream::FinishingHook hook, NewStreamHook on_new)
      : registry_(registry),
        metrics_(metrics),
        opts_(opts),
        max_streams_(max_streams),
        hook_(std::move(hook)),
        on_new_(std::move(on_new)) {
    opts_.open_streams = &open_;
  }

  grpc::ServerBidiReactor<commands::MIGletMessage, commands::ControllerMessage>* StreamCommands(
      grpc::CallbackServerContext* ctx) override {
    auto stream = std::make_shared<AgentStream>(ctx, registry_, metrics_, opts_, hook_);
    if (++open_ > max_streams_) {
      if (metrics_) metrics_->Refused("too_many_streams");
      stream->Refuse(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                                  "the controller holds " + std::to_string(max_streams_) +
                                      " streams already; try again later"));
    } else {
      stream->Begin();
      on_new_(stream);
    }
    // gRPC calls the reactor back on its own threads, ordered after this return by its own
    // (uninstrumented) locks: AgentStream::OnCancel acquires this edge (common/tsan.h).
    MIGLET_TSAN_RELEASE(stream.get());
    return stream.get();
  }

 private:
  AgentRegistry* registry_;
  HubMetrics* metrics_;
  AgentStream::Options opts_;
  const size_t max_streams_;
  AgentStream::FinishingHook hook_;
  NewStreamHook on_new_;
  std::atomic<size_t> open_{0};
};

class AgentHubServerImpl final : public AgentHubServer {
 public:
  AgentHubServerImpl(AgentHubServerOptions options, std::shared_ptr<Clock> clock,
                     prometheus::Registry* metrics_registry)
      : options_(std::move(options)),
        clock_(std::move(clock)),
        metrics_(metrics_registry ? std::make_unique<HubMetrics>(*metrics_registry) : nullptr),
        registry_(options_.hub, clock_, metrics_.get()),
        http_api_(&registry_, clock_, options_.not_ready, options_.registration,
                  options_.authorize_agent, options_.authorize_request, metrics_.get()),
        service_(
            &registry_, metrics_.get(),
            AgentStream::Options{options_.max_outbound_queue, options_.max_messages_per_second,
                                 options_.message_burst, nullptr, &options_.authorize_agent,
                                 options_.tls_client_cert_names_vm},
            options_.max_streams,
            [this](std::weak_ptr<AgentStream> s) {
              std::lock_guard l(finishing_mu_);
              finishing_.push_back(std::move(s));
            },
            [this](std::weak_ptr<AgentStream> s) {
              std::lock_guard l(finishing_mu_);
              handshaking_.push_back(std::move(s));
            }) {}

  ~AgentHubServerImpl() override { Shutdown(); }

  absl::Status Init() {
    if (options_.http_tls && options_.tls_cert_file.empty()) {
      return absl::InvalidArgumentError("the HTTP API over TLS needs the TLS certificate files");
    }
    std::shared_ptr<grpc::ServerCredentials> creds = grpc::InsecureServerCredentials();
    if (!options_.tls_cert_file.empty() || !options_.tls_key_file.empty()) {
      // Read once here so that a missing or unreadable file is an error at start; gRPC's file
      // watcher then reads them again every tls_refresh_interval, so a certificate renewed on
      // disk (cert-manager, a Secret's volume) serves new connections without a restart.
      for (const auto& [file, what] : {std::pair{options_.tls_cert_file, "TLS certificate"},
                                       std::pair{options_.tls_key_file, "TLS key"},
                                       std::pair{options_.tls_ca_file, "TLS CA bundle"}}) {
        if (file.empty() && std::string(what) == "TLS CA bundle") continue;
        if (auto r = ReadFile(file, what); !r.ok()) return r.status();
      }
      const auto refresh = static_cast<unsigned int>(std::max<int64_t>(
          1,
          std::chrono::duration_cast<std::chrono::seconds>(options_.tls_refresh_interval).count()));
      auto provider = std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
          options_.tls_key_file, options_.tls_cert_file, options_.tls_ca_file, refresh);
      grpc::experimental::TlsServerCredentialsOptions tls(provider);
      tls.watch_identity_key_cert_pairs();
      if (!options_.tls_ca_file.empty()) {
        tls.watch_root_certs();
        tls.set_cert_request_type(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
      } else {
        tls.set_cert_request_type(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
      }
      creds = grpc::experimental::TlsServerCredentials(tls);
    }
    grpc::reflection::InitProtoReflectionServerBuilderPlugin();
    grpc::ServerBuilder builder;
    const std::string addr = options_.bind_address + ":" + std::to_string(options_.grpc_port);
    builder.AddListeningPort(addr, creds, &grpc_port_);
    builder.RegisterService(&service_);
    builder.SetMaxReceiveMessageSize(options_.max_receive_message_bytes);
    auto ms = [](Duration d) {
      return static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(d).count());
    };
    builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, ms(options_.keepalive_time));
    builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, ms(options_.keepalive_timeout));
    builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
    builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
    builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS,
                               ms(options_.min_client_ping_interval));
    // Agents send small messages: bandwidth-delay probing buys nothing and costs a PING round
    // trip after received data on every connection.
    builder.AddChannelArgument(GRPC_ARG_HTTP2_BDP_PROBE, 0);
    // A connection that never finishes its handshake (a silent TCP connection) is closed.
    builder.AddChannelArgument(GRPC_ARG_SERVER_HANDSHAKE_TIMEOUT_MS,
                               ms(options_.handshake_timeout));
    server_ = builder.BuildAndStart();
    if (!server_ || grpc_port_ == 0) {
      return absl::UnavailableError("cannot serve gRPC on " + addr +
                                    " (port in use, or bad address or TLS files)");
    }
    if (options_.http_port >= 0) {
      HttpServerTls https;
      if (options_.http_tls) https = {options_.tls_cert_file, options_.tls_key_file};
      http_ = MakeHttpServer(
          options_.bind_address, options_.http_port,
          [this](const HttpRequest& r, HttpReply reply) { http_api_.Handle(r, std::move(reply)); },
          https);
      auto port = http_->Start();
      if (!port.ok()) {
        server_->Shutdown();
        return port.status();
      }
      http_port_ = *port;
    }
    sweeper_ = std::thread([this] { SweepLoop(); });
    spdlog::info("agent hub serving gRPC on {}:{}{} and HTTP{} on {}", options_.bind_address,
                 grpc_port_, options_.tls_cert_file.empty() ? "" : " (TLS)",
                 options_.http_tls ? "S" : "",
                 http_port_ < 0 ? std::string("(off)")
                                : options_.bind_address + ":" + std::to_string(http_port_));
    return absl::OkStatus();
  }

  AgentHub& hub() override { return registry_; }
  int grpc_port() const override { return grpc_port_; }
  int http_port() const override { return http_port_; }

  void Shutdown() override {
    {
      std::lock_guard l(mu_);
      if (stopped_) return;
      stopped_ = true;
    }
    cv_.notify_all();
    if (sweeper_.joinable()) sweeper_.join();
    registry_.Shutdown();
    if (http_) http_->Stop();
    if (server_) {
      // Streams were finished above; give their statuses a moment, then cancel the rest.
      server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
      server_->Wait();
    }
    // Every reactor callback has returned (Wait); the streams' lists go under their lock all the
    // same, which is also the order TSan can see (gRPC's own is invisible to it).
    std::lock_guard l(finishing_mu_);
    finishing_.clear();
    handshaking_.clear();
  }

 private:
  void SweepLoop() {
    std::unique_lock l(mu_);
    auto last_trim = std::chrono::steady_clock::now();
    while (!stopped_) {
      // The hub's clock times the sweeps (a test moves a fake one to turn a silent agent lost);
      // the stuck-stream and trim timers below stay on the steady clock, as gRPC's own do.
      if (clock_->WaitFor(l, cv_, options_.sweep_interval, [this] { return stopped_; })) break;
      l.unlock();
      registry_.Sweep();
      http_api_.Tick();
      CancelStuckStreams();
      // Connections come and go on gRPC's threads, each with its own malloc arena: what a burst
      // of them freed (thousands of agents reconnecting, a flood of silent connections) stays
      // in those arenas unless it is handed back now and then.
      const auto now = std::chrono::steady_clock::now();
      if (now - last_trim >= options_.memory_trim_interval) {
        malloc_trim(0);
        last_trim = now;
      }
      l.lock();
    }
  }

  void CancelStuckStreams() {
    std::list<std::weak_ptr<AgentStream>> streams, handshaking;
    {
      std::lock_guard l(finishing_mu_);
      streams.swap(finishing_);
      handshaking.swap(handshaking_);
    }
    const auto now = std::chrono::steady_clock::now();
    // Streams that have not sent connect: closed once past the handshake timeout.
    for (auto it = handshaking.begin(); it != handshaking.end();) {
      auto s = it->lock();
      if (!s || s->CloseIfNoConnect(now, options_.handshake_timeout)) {
        it = handshaking.erase(it);
      } else {
        ++it;
      }
    }
    {
      std::lock_guard l(finishing_mu_);
      handshaking_.splice(handshaking_.end(), handshaking);
    }
    std::list<std::weak_ptr<AgentStream>> keep;
    for (auto& w : streams) {
      if (auto s = w.lock()) {
        s->CancelIfStuck(now, options_.finish_grace);
        keep.push_back(std::move(w));
      }
    }
    std::lock_guard l(finishing_mu_);
    finishing_.splice(finishing_.end(), keep);
  }

  const AgentHubServerOptions options_;
  const std::shared_ptr<Clock> clock_;
  std::unique_ptr<HubMetrics> metrics_;
  AgentRegistry registry_;
  AgentHttpApi http_api_;
  CommandServiceImpl service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<HttpServer> http_;
  int grpc_port_ = 0;
  int http_port_ = -1;

  std::mutex finishing_mu_;
  std::list<std::weak_ptr<AgentStream>> finishing_;
  std::list<std::weak_ptr<AgentStream>> handshaking_;  // streams that have not sent connect

  std::mutex mu_;
  std::condition_variable cv_;
  bool stopped_ = false;
  std::thread sweeper_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<AgentHubServer>> AgentHubServer::Start(
    AgentHubServerOptions options, std::shared_ptr<Clock> clock, prometheus::Registry* metrics) {
  auto s = std::make_unique<AgentHubServerImpl>(std::move(options), std::move(clock), metrics);
  if (auto st = s->Init(); !st.ok()) return st;
  return std::unique_ptr<AgentHubServer>(std::move(s));
}

}  // namespace miglet
