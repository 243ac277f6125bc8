// The command channel end to end over real loopback gRPC: the controller's agent hub and the
// agent's stream client, plus raw gRPC clients for the protocol's error paths.
#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <prometheus/registry.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <map>
#include <set>

#include "await.h"
#include "miglet/agent/command_dispatcher.h"
#include "miglet/agent/stream_client.h"
#include "miglet/commands/commands.grpc.pb.h"
#include "miglet/common/http.h"
#include "miglet/common/testing/metric_value.h"
#include "miglet/operator/agent_hub_server.h"

namespace miglet {
namespace {

using miglet::testing::MetricValue;

using miglet::testing::Signal;
using std::chrono::milliseconds;
using std::chrono::seconds;
using ::testing::HasSubstr;

// Handles commands and records every execution; can hold a command type until released.
class RecordingHandler : public CommandHandler {
 public:
  explicit RecordingHandler(Signal* signal) : signal_(signal) {}
  commands::CommandAck Handle(const commands::Command& cmd) override {
    {
      std::unique_lock l(mu_);
      cv_.wait(l, [&] { return !held_ || cmd.type() != "slow"; });
      executed_.push_back(cmd.id());
      ++count_[cmd.id()];
    }
    signal_->Notify();
    if (cmd.type() == "bogus") {
      return dispatcher_.Handle(cmd);  // no handlers: the dispatcher's unknown-type answer
    }
    return MakeAck(true, "ran " + cmd.type(), {{"n", std::to_string(executed())}});
  }
  void Hold(bool h) {
    {
      std::lock_guard l(mu_);
      held_ = h;
    }
    cv_.notify_all();
  }
  size_t executed() {
    std::lock_guard l(mu_);
    return executed_.size();
  }
  std::vector<std::string> order() {
    std::lock_guard l(mu_);
    return executed_;
  }
  std::map<std::string, int> counts() {
    std::lock_guard l(mu_);
    return count_;
  }

 private:
  Signal* signal_;
  CommandDispatcher dispatcher_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool held_ = false;
  std::vector<std::string> executed_;
  std::map<std::string, int> count_;
};

class ChannelTest : public ::testing::Test {
 protected:
  void StartHub(int grpc_port = 0, size_t max_outbound = 1024,
                const std::function<void(AgentHubServerOptions&)>& tweak = {}) {
    AgentHubServerOptions o;
    o.bind_address = "127.0.0.1";
    o.grpc_port = grpc_port;
    o.http_port = 0;
    o.max_outbound_queue = max_outbound;
    o.finish_grace = seconds(60);
    if (tweak) tweak(o);
    auto s = AgentHubServer::Start(o, MakeRealClock(), &hub_metrics_);
    ASSERT_TRUE(s.ok()) << s.status();
    hub_ = std::move(*s);
    hub_->hub().SetChangeHook([this](const AgentInfo&) { signal_.Notify(); });
    hub_->hub().SetEventHook([this](const commands::EventNotification& e) {
      {
        std::lock_guard l(mu_);
        events_.push_back(e);
      }
      signal_.Notify();
    });
  }

  StreamClientOptions AgentOptions(const std::string& vm) {
    StreamClientOptions o;
    o.vm_id = vm;
    o.pool_id = "pool-a";
    o.org_id = "acme";
    o.grpc_endpoint = "127.0.0.1:" + std::to_string(hub_->grpc_port());
    o.retry.initial = milliseconds(50);
    o.retry.max = milliseconds(200);
    o.heartbeat_interval = milliseconds(200);
    return o;
  }

  std::unique_ptr<StreamClient> StartAgent(StreamClientOptions o, CommandHandler* h,
                                           prometheus::Registry* metrics = nullptr) {
    auto c = StreamClient::Create(
        std::move(o), MakeRealClock(), h,
        [] {
          commands::Heartbeat hb;
          hb.set_miglet_state("ready");
          return hb;
        },
        metrics);
    c->Start();
    return c;
  }

  bool Connected(const std::string& vm) {
    auto a = hub_->hub().GetAgent(vm);
    return a && a->connected;
  }

  // Sends and records the outcome of each command, keyed by id.
  void Send(const std::string& vm, const std::string& id, const std::string& type) {
    commands::Command c;
    c.set_id(id);
    c.set_type(type);
    auto r = hub_->hub().SendCommand(vm, c, [this](const CommandResult& res) {
      {
        std::lock_guard l(mu_);
        results_[res.command_id].push_back(res);
      }
      signal_.Notify();
    });
    ASSERT_TRUE(r.ok()) << r.status();
  }
  size_t ResultCount() {
    std::lock_guard l(mu_);
    return results_.size();
  }

  void TearDown() override {
    if (hub_) hub_->Shutdown();
  }

  Signal signal_;
  prometheus::Registry hub_metrics_;
  std::unique_ptr<AgentHubServer> hub_;
  std::mutex mu_;
  std::vector<commands::EventNotification> events_;
  std::map<std::string, std::vector<CommandResult>> results_;
};

TEST_F(ChannelTest, ConnectGetsAckAndAgentStateArrives) {
  StartHub();
  RecordingHandler h(&signal_);
  prometheus::Registry agent_metrics;
  auto agent = StartAgent(AgentOptions("vm-1"), &h, &agent_metrics);
  ASSERT_TRUE(signal_.Await([&] { return Connected("vm-1"); }));
  ASSERT_TRUE(signal_.Await([&] { return hub_->hub().GetAgent("vm-1")->miglet_state == "ready"; }));
  auto info = hub_->hub().GetAgent("vm-1");
  EXPECT_EQ(info->pool_id, "pool-a");
  EXPECT_EQ(info->org_id, "acme");
  EXPECT_EQ(info->transport, "grpc");
  EXPECT_TRUE(agent->connected());
  EXPECT_EQ(MetricValue(agent_metrics, "miglet_stream_connected"), 1);
  ASSERT_TRUE(signal_.Await(
      [&] { return MetricValue(agent_metrics, "miglet_heartbeats_sent_total") >= 2; }));
  EXPECT_GT(MetricValue(agent_metrics, "miglet_last_heartbeat_timestamp_seconds"), 1.7e9);
  EXPECT_EQ(MetricValue(hub_metrics_, "mig_controller_agents_connected"), 1);
  agent->Stop();
  ASSERT_TRUE(signal_.Await([&] { return !Connected("vm-1"); }));
  EXPECT_EQ(MetricValue(hub_metrics_, "mig_controller_agents_connected"), 0);
}

TEST_F(ChannelTest, ThousandCommandsAckedInOrder) {
  StartHub();
  RecordingHandler h(&signal_);
  auto agent = StartAgent(AgentOptions("vm-1"), &h);
  ASSERT_TRUE(signal_.Await([&] { return Connected("vm-1"); }));
  std::vector<std::string> ids;
  for (int i = 0; i < 1000; ++i) {
    ids.push_back("c" + std::to_string(i));
    Send("vm-1", ids.back(), "update_config");
  }
  ASSERT_TRUE(signal_.Await([&] { return ResultCount() == 1000; })) << ResultCount();
  EXPECT_EQ(h.order(), ids);
  std::lock_guard l(mu_);
  for (const auto& id : ids) {
    ASSERT_EQ(results_[id].size(), 1u) << id;
    EXPECT_TRUE(results_[id][0].status.ok());
    EXPECT_TRUE(results_[id][0].success);
  }
  EXPECT_EQ(MetricValue(hub_metrics_, "mig_controller_command_acks_total",
                        {{"type", "update_config"}, {"result", "success"}}),
            1000);
}

TEST_F(ChannelTest, ControllerRestartLosesNoCommandAndNoEvent) {
  StartHub();
  const int port = hub_->grpc_port();
  RecordingHandler h(&signal_);
  auto agent = StartAgent(AgentOptions("vm-1"), &h);
  ASSERT_TRUE(signal_.Await([&] { return Connected("vm-1"); }));

  // Ten quick commands, then ten the agent is stuck on while the controller goes away.
  h.Hold(true);
  std::vector<std::pair<std::string, std::string>> cmds;
  for (int i = 0; i < 10; ++i) cmds.push_back({"fast-" + std::to_string(i), "drain"});
  for (int i = 0; i < 10; ++i) cmds.push_back({"slow-" + std::to_string(i), "slow"});
  for (const auto& [id, type] : cmds) Send("vm-1", id, type);
  ASSERT_TRUE(signal_.Await([&] { return ResultCount() == 10; }));

  hub_->Shutdown();
  hub_.reset();
  ASSERT_TRUE(signal_.Await([&] { return !agent->connected(); }));
  // While the controller is gone: the slow commands finish and events happen.
  h.Hold(false);
  for (int i = 0; i < 5; ++i) {
    commands::EventNotification ev;
    ev.set_type("job_completed");
    (*ev.mutable_data())["seq"] = std::to_string(i);
    agent->SendEvent(ev);
  }
  ASSERT_TRUE(signal_.Await([&] { return h.executed() == 20; }));
  // 10 acks + 5 events wait for the controller (the last ack is queued just after its run).
  EXPECT_TRUE(signal_.Await([&] { return agent->queued() == 15; })) << agent->queued();

  // A new controller on the same address re-derives the same commands (same ids).
  {
    std::lock_guard l(mu_);
    results_.clear();
    events_.clear();
  }
  StartHub(port);
  for (const auto& [id, type] : cmds) Send("vm-1", id, type);
  ASSERT_TRUE(signal_.Await([&] { return ResultCount() == cmds.size(); })) << ResultCount();
  ASSERT_TRUE(signal_.Await([&] {
    std::lock_guard l(mu_);
    return events_.size() >= 5;
  }));
  ASSERT_TRUE(agent->Flush(seconds(10)));

  for (const auto& [id, n] : h.counts()) EXPECT_EQ(n, 1) << id << " ran more than once";
  EXPECT_EQ(h.executed(), 20u);
  std::lock_guard l(mu_);
  for (const auto& [id, type] : cmds) {
    ASSERT_EQ(results_[id].size(), 1u) << id;
    EXPECT_TRUE(results_[id][0].success) << id;
  }
  std::vector<std::string> seqs;
  for (const auto& e : events_) {
    if (e.type() == "job_completed") seqs.push_back(e.data().at("seq"));
  }
  EXPECT_EQ(seqs, (std::vector<std::string>{"0", "1", "2", "3", "4"}));
}

TEST_F(ChannelTest, UnknownCommandTypeIsAckedWithReason) {
  StartHub();
  RecordingHandler h(&signal_);
  auto agent = StartAgent(AgentOptions("vm-1"), &h);
  ASSERT_TRUE(signal_.Await([&] { return Connected("vm-1"); }));
  Send("vm-1", "b1", "bogus");
  ASSERT_TRUE(signal_.Await([&] { return ResultCount() == 1; }));
  std::lock_guard l(mu_);
  EXPECT_TRUE(results_["b1"][0].status.ok());
  EXPECT_FALSE(results_["b1"][0].success);
  EXPECT_THAT(results_["b1"][0].message, HasSubstr("unknown command type \"bogus\""));
}

TEST_F(ChannelTest, ReSentCommandIsAckedAgainNotRunTwice) {
  StartHub();
  RecordingHandler h(&signal_);
  auto agent = StartAgent(AgentOptions("vm-1"), &h);
  ASSERT_TRUE(signal_.Await([&] { return Connected("vm-1"); }));
  Send("vm-1", "once", "drain");
  ASSERT_TRUE(signal_.Await([&] { return ResultCount() == 1; }));
  {
    std::lock_guard l(mu_);
    results_.clear();
  }
  Send("vm-1", "once", "drain");  // e.g. a new leader re-deriving it
  ASSERT_TRUE(signal_.Await([&] { return ResultCount() == 1; }));
  EXPECT_EQ(h.counts()["once"], 1);
  std::lock_guard l(mu_);
  EXPECT_TRUE(results_["once"][0].success);
  EXPECT_EQ(results_["once"][0].message, "ran drain");
}

// Raw streams for the protocol rules, with the generated sync client.
class RawStream {
 public:
  explicit RawStream(int port) {
    channel_ = grpc::CreateChannel("127.0.0.1:" + std::to_string(port),
                                   grpc::InsecureChannelCredentials());
    stub_ = commands::CommandService::NewStub(channel_);
    stream_ = stub_->StreamCommands(&ctx_);
  }
  bool Write(const commands::MIGletMessage& m) { return stream_->Write(m); }
  bool Read(commands::ControllerMessage* m) { return stream_->Read(m); }
  grpc::Status Finish() {
    commands::ControllerMessage m;
    while (stream_->Read(&m)) {
    }
    return stream_->Finish();
  }
  bool Connect(const std::string& vm) {
    commands::MIGletMessage m;
    m.mutable_connect()->set_vm_id(vm);
    m.mutable_connect()->set_pool_id("pool-a");
    commands::ControllerMessage ack;
    return Write(m) && Read(&ack) && ack.has_connect_ack() && ack.connect_ack().accepted();
  }

 private:
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<commands::CommandService::Stub> stub_;
  grpc::ClientContext ctx_;
  std::unique_ptr<grpc::ClientReaderWriter<commands::MIGletMessage, commands::ControllerMessage>>
      stream_;
};

TEST_F(ChannelTest, FirstMessageMustBeConnect) {
  StartHub();
  RawStream s(hub_->grpc_port());
  commands::MIGletMessage hb;
  hb.mutable_heartbeat()->set_vm_id("vm-x");
  ASSERT_TRUE(s.Write(hb));
  commands::ControllerMessage m;
  ASSERT_TRUE(s.Read(&m));
  ASSERT_TRUE(m.has_error());
  EXPECT_EQ(m.error().code(), "not_connected");
  auto st = s.Finish();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(st.error_message(), HasSubstr("first message"));
  EXPECT_FALSE(hub_->hub().GetAgent("vm-x").has_value());
}

TEST_F(ChannelTest, AStreamThatNeverSendsConnectIsClosedAfterTheHandshakeTimeout) {
  StartHub(0, 1024, [](AgentHubServerOptions& o) { o.handshake_timeout = seconds(1); });
  RawStream s(hub_->grpc_port());  // opens the stream, sends nothing
  commands::ControllerMessage m;
  ASSERT_TRUE(s.Read(&m));
  ASSERT_TRUE(m.has_error());
  EXPECT_EQ(m.error().code(), "handshake_timeout");
  auto st = s.Finish();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED) << st.error_message();
  EXPECT_THAT(st.error_message(), HasSubstr("no connect message within 1s"));
  EXPECT_EQ(MetricValue(hub_metrics_, "mig_controller_stream_errors_total",
                        {{"reason", "handshake_timeout"}}),
            1);
  // One that sends connect is served as usual.
  RawStream ok(hub_->grpc_port());
  ASSERT_TRUE(ok.Connect("vm-in-time"));
  EXPECT_TRUE(Connected("vm-in-time"));
}

TEST_F(ChannelTest, ASilentTcpConnectionIsClosedByTheServer) {
  StartHub(0, 1024, [](AgentHubServerOptions& o) { o.handshake_timeout = seconds(1); });
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(hub_->grpc_port()));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  timeval limit{60, 0};  // a failure deadline, not a timing expectation
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
  // The server may send its settings first; then it closes the connection.
  char buf[512];
  ssize_t r;
  while ((r = recv(fd, buf, sizeof buf, 0)) > 0) {
  }
  EXPECT_EQ(r, 0) << "the server did not close the connection (errno " << errno << ")";
  close(fd);
}

TEST_F(ChannelTest, StreamsBeyondTheMaximumAreRefused) {
  StartHub(0, 1024, [](AgentHubServerOptions& o) { o.max_streams = 2; });
  auto first = std::make_unique<RawStream>(hub_->grpc_port());
  ASSERT_TRUE(first->Connect("vm-1"));
  RawStream second(hub_->grpc_port());
  ASSERT_TRUE(second.Connect("vm-2"));
  RawStream third(hub_->grpc_port());
  auto st = third.Finish();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << st.error_message();
  EXPECT_THAT(st.error_message(), HasSubstr("holds 2 streams already"));
  EXPECT_EQ(MetricValue(hub_metrics_, "mig_controller_agent_requests_refused_total",
                        {{"reason", "too_many_streams"}}),
            1);
  // One goes: there is room again.
  first.reset();
  ASSERT_TRUE(signal_.Await([&] { return !Connected("vm-1"); }));
  bool connected = false;
  ASSERT_TRUE(signal_.Await([&] {
    RawStream again(hub_->grpc_port());
    connected = again.Connect("vm-3");
    return connected;
  }));
}

TEST_F(ChannelTest, AStreamThatFloodsIsClosedAndOnlyThatOne) {
  StartHub(0, 1024, [](AgentHubServerOptions& o) {
    o.max_messages_per_second = 10;
    o.message_burst = 20;
  });
  RawStream calm(hub_->grpc_port());
  ASSERT_TRUE(calm.Connect("vm-calm"));
  RawStream loud(hub_->grpc_port());
  ASSERT_TRUE(loud.Connect("vm-loud"));
  commands::MIGletMessage hb;
  hb.mutable_heartbeat()->set_miglet_state("idle");
  for (int i = 0; i < 200 && loud.Write(hb); ++i) {
  }
  commands::ControllerMessage m;
  bool told = false;
  while (loud.Read(&m)) told = told || (m.has_error() && m.error().code() == "rate_limited");
  EXPECT_TRUE(told);
  auto st = loud.Finish();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << st.error_message();
  EXPECT_THAT(st.error_message(), HasSubstr("messages per second"));
  ASSERT_TRUE(signal_.Await([&] { return !Connected("vm-loud"); }));
  EXPECT_TRUE(Connected("vm-calm"));
  Send("vm-calm", "still-works", "drain");
  ASSERT_TRUE(calm.Read(&m));
  EXPECT_EQ(m.command().id(), "still-works");
}

TEST_F(ChannelTest, ConnectWithoutPoolIdIsRefused) {
  StartHub();
  RawStream s(hub_->grpc_port());
  commands::MIGletMessage c;
  c.mutable_connect()->set_vm_id("vm-x");
  ASSERT_TRUE(s.Write(c));
  commands::ControllerMessage m;
  ASSERT_TRUE(s.Read(&m));
  ASSERT_TRUE(m.has_error());
  EXPECT_THAT(m.error().message(), HasSubstr("pool_id is required"));
  EXPECT_EQ(s.Finish().error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(ChannelTest, SecondStreamForSameVmReplacesFirst) {
  StartHub();
  RawStream first(hub_->grpc_port());
  ASSERT_TRUE(first.Connect("vm-1"));
  RawStream second(hub_->grpc_port());
  ASSERT_TRUE(second.Connect("vm-1"));
  commands::ControllerMessage m;
  ASSERT_TRUE(first.Read(&m));
  ASSERT_TRUE(m.has_error());
  EXPECT_EQ(m.error().code(), "replaced");
  EXPECT_EQ(first.Finish().error_code(), grpc::StatusCode::ABORTED);
  // Commands now go to the second stream, which stays open.
  Send("vm-1", "after", "drain");
  ASSERT_TRUE(second.Read(&m));
  ASSERT_TRUE(m.has_command());
  EXPECT_EQ(m.command().id(), "after");
  EXPECT_TRUE(Connected("vm-1"));
}

TEST_F(ChannelTest, OversizedMessageClosesOnlyThatStream) {
  StartHub();
  RecordingHandler h(&signal_);
  auto agent = StartAgent(AgentOptions("vm-ok"), &h);
  ASSERT_TRUE(signal_.Await([&] { return Connected("vm-ok"); }));
  RawStream big(hub_->grpc_port());
  ASSERT_TRUE(big.Connect("vm-big"));
  commands::MIGletMessage ev;
  ev.mutable_event()->set_type("error");
  (*ev.mutable_event()->mutable_data())["blob"] = std::string(2 << 20, 'x');
  big.Write(ev);
  auto st = big.Finish();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << st.error_message();
  ASSERT_TRUE(signal_.Await([&] { return !Connected("vm-big"); }));
  // The other agent is untouched.
  Send("vm-ok", "still-works", "drain");
  ASSERT_TRUE(signal_.Await([&] { return ResultCount() == 1; }));
  EXPECT_TRUE(Connected("vm-ok"));
}

TEST_F(ChannelTest, AgentThatStopsReadingIsDisconnected) {
  StartHub(0, /*max_outbound=*/8);
  RawStream lazy(hub_->grpc_port());
  ASSERT_TRUE(lazy.Connect("vm-lazy"));
  // Large commands fill the flow-control windows, then the bounded queue.
  bool refused = false;
  for (int i = 0; i < 200 && !refused; ++i) {
    commands::Command c;
    c.set_type("update_config");
    (*c.mutable_string_params())["blob"] = std::string(256 << 10, 'y');
    // Queued or refused (the queue full): either way the test reads the metric next.
    (void)hub_->hub().SendCommand("vm-lazy", c);
    refused = MetricValue(hub_metrics_, "mig_controller_stream_errors_total",
                          {{"reason", "slow_consumer"}}) > 0;
  }
  ASSERT_TRUE(refused);
  auto st = lazy.Finish();  // reading now drains what was sent, then the status
  EXPECT_EQ(st.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  ASSERT_TRUE(signal_.Await([&] { return !Connected("vm-lazy"); }));
}

TEST_F(ChannelTest, ReadyzAnswersFromTheControllersReadiness) {
  std::atomic<bool> synced{false};
  StartHub(0, 1024, [&](AgentHubServerOptions& o) {
    o.not_ready = [&]() -> std::string { return synced ? "" : "caches not synced"; };
  });
  auto http =
      MakeHttpTransport({.base_url = "http://127.0.0.1:" + std::to_string(hub_->http_port()),
                         .timeout = seconds(10)});
  ASSERT_TRUE(http.ok());
  auto r = (*http)->Do("GET", "/readyz", "");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 503);
  EXPECT_THAT(r->body, HasSubstr("caches not synced"));
  EXPECT_EQ((*http)->Do("GET", "/healthz", "")->status, 200) << "alive all the same";
  synced = true;
  r = (*http)->Do("GET", "/readyz", "");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 200) << r->body;
}

TEST_F(ChannelTest, HttpApiEventsHeartbeatsPollAndAck) {
  StartHub();
  auto http =
      MakeHttpTransport({.base_url = "http://127.0.0.1:" + std::to_string(hub_->http_port()),
                         .timeout = seconds(10)});
  ASSERT_TRUE(http.ok());
  auto& c = **http;
  auto r = c.Do("GET", "/health", "");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 200);

  r = c.Do("POST", "/api/v1/vms/vm-h/heartbeat",
           R"({"vm_id":"vm-h","pool_id":"pool-h","miglet_state":"idle",
               "runner_state":{"state":"idle","configured":true}})");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 200) << r->body;
  auto info = hub_->hub().GetAgent("vm-h");
  ASSERT_TRUE(info);
  EXPECT_TRUE(info->connected);
  EXPECT_EQ(info->transport, "http");
  EXPECT_EQ(info->miglet_state, "idle");
  EXPECT_TRUE(info->runner.configured());

  r = c.Do("POST", "/api/v1/vms/vm-h/events",
           R"({"type":"job_started","timestamp":1800000000,"pool_id":"pool-h",
               "metadata":{"job_id":"42","attempt":2}})");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 200) << r->body;
  {
    std::lock_guard l(mu_);
    ASSERT_EQ(events_.size(), 1u);
    EXPECT_EQ(events_[0].type(), "job_started");
    EXPECT_EQ(events_[0].vm_id(), "vm-h");
    EXPECT_EQ(events_[0].data().at("job_id"), "42");
    EXPECT_EQ(events_[0].data().at("attempt"), "2");
    EXPECT_EQ(events_[0].timestamp(), 1800000000);
  }

  Send("vm-h", "h1", "drain");
  r = c.Do("GET", "/api/v1/vms/vm-h/commands?ack=true", "");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 200);
  EXPECT_THAT(r->body, HasSubstr("\"id\":\"h1\""));
  EXPECT_THAT(r->body, HasSubstr("\"type\":\"drain\""));

  r = c.Do("POST", "/api/v1/vms/vm-h/commands/h1/ack", R"({"success":true,"message":"ok"})");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 200);
  ASSERT_TRUE(signal_.Await([&] { return ResultCount() == 1; }));
  r = c.Do("GET", "/api/v1/vms/vm-h/commands?ack=true", "");
  EXPECT_EQ(r->body, R"({"vm_id":"vm-h","commands":[]})");

  // Bad input gets a clear error.
  r = c.Do("POST", "/api/v1/vms/vm-h/heartbeat", "{not json");
  EXPECT_EQ(r->status, 400);
  EXPECT_THAT(r->body, HasSubstr("invalid JSON"));
  r = c.Do("POST", "/api/v1/vms/vm-h/events", R"({"metadata":{}})");
  EXPECT_EQ(r->status, 400);
  EXPECT_THAT(r->body, HasSubstr("type is required"));
  r = c.Do("POST", "/api/v1/vms/vm-h/commands/h1/ack", R"({"command_id":"other"})");
  EXPECT_EQ(r->status, 400);
  r = c.Do("GET", "/api/v2/nothing", "");
  EXPECT_EQ(r->status, 404);
}

TEST_F(ChannelTest, HttpCommandWithWaitReturnsTheAck) {
  StartHub();
  RecordingHandler h(&signal_);
  auto agent = StartAgent(AgentOptions("vm-1"), &h);
  ASSERT_TRUE(signal_.Await([&] { return Connected("vm-1"); }));
  auto http =
      MakeHttpTransport({.base_url = "http://127.0.0.1:" + std::to_string(hub_->http_port()),
                         .timeout = seconds(10)});
  auto r =
      (*http)->Do("POST", "/api/v1/vms/vm-1/commands?wait=10s", R"({"id":"w1","type":"drain"})");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 200) << r->body;
  EXPECT_THAT(r->body, HasSubstr("\"command_id\":\"w1\""));
  EXPECT_THAT(r->body, HasSubstr("\"success\":true"));
}

TEST_F(ChannelTest, AgentFallsBackToHttpWhenGrpcIsUnreachable) {
  StartHub();
  RecordingHandler h(&signal_);
  auto o = AgentOptions("vm-fb");
  o.grpc_endpoint = "127.0.0.1:1";  // nothing listens there
  o.http_endpoint = "http://127.0.0.1:" + std::to_string(hub_->http_port());
  o.fallback_after_failures = 2;
  o.http_poll_interval = milliseconds(100);
  prometheus::Registry agent_metrics;
  auto agent = StartAgent(o, &h, &agent_metrics);
  ASSERT_TRUE(signal_.Await([&] { return Connected("vm-fb"); }));
  EXPECT_EQ(hub_->hub().GetAgent("vm-fb")->transport, "http");
  EXPECT_TRUE(agent->using_http());
  EXPECT_EQ(MetricValue(agent_metrics, "miglet_http_fallback_active"), 1);
  EXPECT_GE(MetricValue(agent_metrics, "miglet_reconnects_total"), 2);
  commands::EventNotification ev;
  ev.set_type("runner_registered");
  agent->SendEvent(ev);
  Send("vm-fb", "over-http", "drain");
  ASSERT_TRUE(signal_.Await([&] { return ResultCount() == 1; }));
  ASSERT_TRUE(signal_.Await([&] {
    std::lock_guard l(mu_);
    return !events_.empty();
  }));
  std::lock_guard l(mu_);
  EXPECT_TRUE(results_["over-http"][0].success);
  EXPECT_EQ(events_[0].type(), "runner_registered");
  EXPECT_EQ(events_[0].pool_id(), "pool-a");
}

}  // namespace
}  // namespace miglet
