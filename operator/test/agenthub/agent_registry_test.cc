#include "agent_registry.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <prometheus/registry.h>

#include "miglet/common/fake_clock.h"
#include "miglet/common/testing/metric_value.h"

namespace miglet {
namespace {

using miglet::testing::MetricValue;

using std::chrono::seconds;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Records what the registry sends; can be told to refuse (a full queue).
class FakeSession : public AgentSession {
 public:
  bool Send(const commands::ControllerMessage& msg) override {
    if (refuse) return false;
    sent.push_back(msg);
    return true;
  }
  void Close(const std::string& code, const std::string& message, int grpc_code) override {
    closed_code = code;
    closed_grpc = grpc_code;
  }
  std::vector<std::string> CommandIds() const {
    std::vector<std::string> ids;
    for (const auto& m : sent) {
      if (m.has_command()) ids.push_back(m.command().id());
    }
    return ids;
  }
  std::vector<commands::ControllerMessage> sent;
  bool refuse = false;
  std::string closed_code;
  int closed_grpc = 0;
};

commands::ConnectRequest Connect(const std::string& vm, const std::string& pool = "pool-a") {
  commands::ConnectRequest r;
  r.set_vm_id(vm);
  r.set_pool_id(pool);
  r.set_version("1.2.3");
  return r;
}

commands::Command Cmd(const std::string& type, const std::string& id = "") {
  commands::Command c;
  c.set_type(type);
  c.set_id(id);
  return c;
}

commands::CommandAck Ack(const std::string& id, bool ok = true) {
  commands::CommandAck a;
  a.set_command_id(id);
  a.set_success(ok);
  a.set_message(ok ? "done" : "refused");
  return a;
}

class AgentRegistryTest : public ::testing::Test {
 protected:
  AgentRegistryTest() : metrics_(prom_), registry_(HubOptions{}, clock_, &metrics_) {
    registry_.SetChangeHook([this](const AgentInfo& a) { changes_.push_back(a); });
  }
  std::shared_ptr<FakeClock> clock_ = std::make_shared<FakeClock>();
  prometheus::Registry prom_;
  HubMetrics metrics_;
  AgentRegistry registry_;
  std::vector<AgentInfo> changes_;
};

TEST_F(AgentRegistryTest, ConnectNeedsVmIdAndPoolId) {
  EXPECT_TRUE(AgentRegistry::ValidateConnect(Connect("vm-1")).ok());
  auto no_vm = AgentRegistry::ValidateConnect(Connect(""));
  EXPECT_EQ(no_vm.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(no_vm.message()), HasSubstr("vm_id"));
  auto no_pool = AgentRegistry::ValidateConnect(Connect("vm-1", ""));
  EXPECT_THAT(std::string(no_pool.message()), HasSubstr("pool_id"));
  auto s = std::make_shared<FakeSession>();
  EXPECT_FALSE(registry_.Attach(Connect("vm-1", ""), s).ok());
  EXPECT_TRUE(s->sent.empty());
  EXPECT_FALSE(registry_.GetAgent("vm-1").has_value());
}

TEST_F(AgentRegistryTest, AttachAcksThenResendsPendingInOrder) {
  auto a = registry_.SendCommand("vm-1", Cmd("drain", "c1"));
  auto b = registry_.SendCommand("vm-1", Cmd("set_log_level", "c2"));
  ASSERT_TRUE(a.ok() && b.ok());
  auto s = std::make_shared<FakeSession>();
  ASSERT_TRUE(registry_.Attach(Connect("vm-1"), s).ok());
  ASSERT_EQ(s->sent.size(), 3u);
  ASSERT_TRUE(s->sent[0].has_connect_ack());
  EXPECT_TRUE(s->sent[0].connect_ack().accepted());
  EXPECT_THAT(s->CommandIds(), ElementsAre("c1", "c2"));
  auto info = registry_.GetAgent("vm-1");
  EXPECT_TRUE(info->connected);
  EXPECT_EQ(info->transport, "grpc");
  EXPECT_EQ(info->version, "1.2.3");
  EXPECT_EQ(info->pending_commands, 2u);
  EXPECT_EQ(MetricValue(prom_, "mig_controller_agents_connected"), 1);
}

TEST_F(AgentRegistryTest, SendWhileConnectedGoesOutAtOnceWithUniqueIds) {
  auto s = std::make_shared<FakeSession>();
  ASSERT_TRUE(registry_.Attach(Connect("vm-1"), s).ok());
  std::set<std::string> ids;
  for (int i = 0; i < 100; ++i) {
    auto id = registry_.SendCommand("vm-1", Cmd("update_config"));
    ASSERT_TRUE(id.ok());
    ids.insert(*id);
  }
  EXPECT_EQ(ids.size(), 100u);
  EXPECT_EQ(s->CommandIds().size(), 100u);
  EXPECT_GT(s->sent.back().command().created_at(), 0);
  EXPECT_EQ(MetricValue(prom_, "mig_controller_commands_sent_total", {{"type", "update_config"}}),
            100);
}

TEST_F(AgentRegistryTest, SameIdIsQueuedOnce) {
  ASSERT_TRUE(registry_.SendCommand("vm-1", Cmd("drain", "same")).ok());
  auto again = registry_.SendCommand("vm-1", Cmd("drain", "same"));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, "same");
  EXPECT_EQ(registry_.GetAgent("vm-1")->pending_commands, 1u);
}

TEST_F(AgentRegistryTest, AckCompletesExactlyOnceWithLatency) {
  auto s = std::make_shared<FakeSession>();
  ASSERT_TRUE(registry_.Attach(Connect("vm-1"), s).ok());
  std::vector<CommandResult> results;
  auto id = registry_.SendCommand("vm-1", Cmd("drain"),
                                  [&](const CommandResult& r) { results.push_back(r); });
  ASSERT_TRUE(id.ok());
  clock_->Advance(std::chrono::milliseconds(250));
  registry_.OnAck("vm-1", Ack(*id));
  registry_.OnAck("vm-1", Ack(*id));  // a re-ack after a re-send
  ASSERT_EQ(results.size(), 1u);
  EXPECT_TRUE(results[0].status.ok());
  EXPECT_TRUE(results[0].success);
  EXPECT_EQ(results[0].type, "drain");
  EXPECT_EQ(results[0].latency, std::chrono::milliseconds(250));
  EXPECT_EQ(registry_.GetAgent("vm-1")->pending_commands, 0u);
  EXPECT_EQ(MetricValue(prom_, "mig_controller_command_acks_total",
                        {{"type", "drain"}, {"result", "success"}}),
            1);
  EXPECT_EQ(MetricValue(prom_, "mig_controller_command_acks_total",
                        {{"type", "other"}, {"result", "duplicate"}}),
            1);
  EXPECT_EQ(MetricValue(prom_, "mig_controller_command_ack_latency_seconds"), 1);
}

TEST_F(AgentRegistryTest, FailedAckIsStillAnAnswer) {
  auto s = std::make_shared<FakeSession>();
  ASSERT_TRUE(registry_.Attach(Connect("vm-1"), s).ok());
  std::optional<CommandResult> result;
  auto id =
      registry_.SendCommand("vm-1", Cmd("bogus"), [&](const CommandResult& r) { result = r; });
  registry_.OnAck("vm-1", Ack(*id, false));
  ASSERT_TRUE(result.has_value());
  EXPECT_TRUE(result->status.ok());
  EXPECT_FALSE(result->success);
  EXPECT_EQ(result->message, "refused");
}

TEST_F(AgentRegistryTest, NewStreamReplacesOldOne) {
  auto first = std::make_shared<FakeSession>();
  auto second = std::make_shared<FakeSession>();
  ASSERT_TRUE(registry_.Attach(Connect("vm-1"), first).ok());
  ASSERT_TRUE(registry_.Attach(Connect("vm-1"), second).ok());
  EXPECT_EQ(first->closed_code, "replaced");
  EXPECT_EQ(first->closed_grpc, 10);  // ABORTED
  EXPECT_TRUE(second->closed_code.empty());
  // The old stream ending later must not disconnect the new one.
  registry_.Detach("vm-1", first.get());
  EXPECT_TRUE(registry_.GetAgent("vm-1")->connected);
  EXPECT_EQ(registry_.connected_count(), 1u);
  auto id = registry_.SendCommand("vm-1", Cmd("drain"));
  EXPECT_THAT(second->CommandIds(), ElementsAre(*id));
  EXPECT_TRUE(first->CommandIds().empty());
  registry_.Detach("vm-1", second.get());
  EXPECT_FALSE(registry_.GetAgent("vm-1")->connected);
  EXPECT_EQ(MetricValue(prom_, "mig_controller_agents_connected"), 0);
  EXPECT_EQ(MetricValue(prom_, "mig_controller_stream_errors_total", {{"reason", "replaced"}}), 1);
}

TEST_F(AgentRegistryTest, ChangeHookFiresOnMeaningfulChangeOnly) {
  auto s = std::make_shared<FakeSession>();
  ASSERT_TRUE(registry_.Attach(Connect("vm-1"), s).ok());
  ASSERT_EQ(changes_.size(), 1u);  // connected
  commands::Heartbeat hb;
  hb.set_miglet_state("idle");
  hb.mutable_runner_state()->set_state("idle");
  (void)registry_.OnHeartbeat("vm-1", hb);
  EXPECT_EQ(changes_.size(), 2u);
  for (int i = 0; i < 50; ++i) {
    hb.mutable_health()->set_cpu_usage_percent(i);  // health alone is not a change
    hb.set_timestamp(i);
    (void)registry_.OnHeartbeat("vm-1", hb);
  }
  EXPECT_EQ(changes_.size(), 2u);
  EXPECT_EQ(registry_.GetAgent("vm-1")->health.cpu_usage_percent(), 49);
  EXPECT_EQ(registry_.GetAgent("vm-1")->heartbeats, 51u);
  hb.set_miglet_state("job_running");
  hb.mutable_current_job()->set_job_id("j1");
  hb.mutable_current_job()->set_status("running");
  (void)registry_.OnHeartbeat("vm-1", hb);
  ASSERT_EQ(changes_.size(), 3u);
  EXPECT_EQ(changes_.back().current_job.job_id(), "j1");
  EXPECT_EQ(MetricValue(prom_, "mig_controller_heartbeats_received_total"), 52);
}

TEST_F(AgentRegistryTest, UnackedCommandTimesOut) {
  std::optional<CommandResult> result;
  ASSERT_TRUE(
      registry_.SendCommand("vm-1", Cmd("drain", "c1"), [&](const CommandResult& r) { result = r; })
          .ok());
  clock_->Advance(std::chrono::minutes(5) - seconds(1));
  registry_.Sweep();
  EXPECT_FALSE(result.has_value());
  clock_->Advance(seconds(1));
  registry_.Sweep();
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(result->status.code(), absl::StatusCode::kDeadlineExceeded);
  ASSERT_TRUE(registry_.GetAgent("vm-1").has_value()) << "known for 5 min: not forgotten";
  EXPECT_EQ(registry_.GetAgent("vm-1")->pending_commands, 0u);
  EXPECT_EQ(MetricValue(prom_, "mig_controller_command_acks_total",
                        {{"type", "drain"}, {"result", "timeout"}}),
            1);
}

TEST_F(AgentRegistryTest, SilentAgentIsLostThenFound) {
  auto s = std::make_shared<FakeSession>();
  ASSERT_TRUE(registry_.Attach(Connect("vm-1"), s).ok());
  clock_->Advance(seconds(44));
  registry_.Sweep();
  EXPECT_FALSE(registry_.GetAgent("vm-1")->lost);
  clock_->Advance(seconds(1));
  registry_.Sweep();
  EXPECT_TRUE(registry_.GetAgent("vm-1")->lost);
  EXPECT_TRUE(changes_.back().lost);
  const size_t n = changes_.size();
  registry_.Sweep();  // no repeated change while still lost
  EXPECT_EQ(changes_.size(), n);
  (void)registry_.OnHeartbeat("vm-1", commands::Heartbeat());
  EXPECT_FALSE(registry_.GetAgent("vm-1")->lost);
  EXPECT_EQ(changes_.size(), n + 1);
}

TEST_F(AgentRegistryTest, PendingCommandsAreBounded) {
  HubOptions opts;
  opts.max_pending_per_agent = 3;
  AgentRegistry small(opts, clock_, nullptr);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(small.SendCommand("vm-1", Cmd("drain")).ok());
  auto over = small.SendCommand("vm-1", Cmd("drain"));
  EXPECT_EQ(over.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_FALSE(small.SendCommand("", Cmd("drain")).ok());
  EXPECT_FALSE(small.SendCommand("vm-1", Cmd("")).ok());
}

TEST_F(AgentRegistryTest, RefusedSendStaysPendingForTheNextStream) {
  auto s = std::make_shared<FakeSession>();
  ASSERT_TRUE(registry_.Attach(Connect("vm-1"), s).ok());
  s->refuse = true;
  auto id = registry_.SendCommand("vm-1", Cmd("drain"));
  ASSERT_TRUE(id.ok());
  registry_.Detach("vm-1", s.get());
  auto s2 = std::make_shared<FakeSession>();
  ASSERT_TRUE(registry_.Attach(Connect("vm-1"), s2).ok());
  EXPECT_THAT(s2->CommandIds(), ElementsAre(*id));
}

TEST_F(AgentRegistryTest, HttpPollerConnectsAndTimesOut) {
  ASSERT_TRUE(registry_.SendCommand("vm-h", Cmd("drain", "c1")).ok());
  auto cmds = registry_.PollCommands("vm-h");
  ASSERT_TRUE(cmds.ok());
  ASSERT_EQ(cmds->size(), 1u);
  EXPECT_EQ((*cmds)[0].id(), "c1");
  EXPECT_EQ(registry_.GetAgent("vm-h")->transport, "http");
  EXPECT_EQ(registry_.PollCommands("vm-h")->size(), 1u);  // still unacked: polled again
  registry_.OnAck("vm-h", Ack("c1"));
  EXPECT_TRUE(registry_.PollCommands("vm-h")->empty());
  clock_->Advance(seconds(46));
  registry_.Sweep();
  EXPECT_FALSE(registry_.GetAgent("vm-h")->connected);
}

TEST_F(AgentRegistryTest, AStreamThatEndsAndStaysAwayIsLost) {
  auto s = std::make_shared<FakeSession>();
  ASSERT_TRUE(registry_.Attach(Connect("vm-1"), s).ok());
  registry_.Detach("vm-1", s.get());
  clock_->Advance(seconds(44));
  registry_.Sweep();
  EXPECT_FALSE(registry_.GetAgent("vm-1")->lost) << "not yet: it may be reconnecting";
  clock_->Advance(seconds(1));
  registry_.Sweep();
  EXPECT_TRUE(registry_.GetAgent("vm-1")->lost);
  EXPECT_TRUE(changes_.back().lost);
  // An agent that never connected (a command queued for it) is not lost: it never was here.
  ASSERT_TRUE(registry_.SendCommand("vm-2", Cmd("drain", "c1")).ok());
  clock_->Advance(seconds(60));
  registry_.Sweep();
  EXPECT_FALSE(registry_.GetAgent("vm-2")->lost);
}

TEST_F(AgentRegistryTest, MadeUpVmIdsCannotGrowTheHubWithoutBound) {
  HubOptions opts;
  opts.max_agents_without_stream = 1000;
  opts.forget_after = std::chrono::minutes(15);
  AgentRegistry hub(opts, clock_, &metrics_);
  auto streamed = std::make_shared<FakeSession>();
  ASSERT_TRUE(hub.Attach(Connect("real"), streamed).ok());
  // 100,000 made-up vm_ids heartbeat, send events and poll over HTTP: 1,000 are held.
  int refused = 0;
  for (int i = 0; i < 100000; ++i) {
    const std::string id = "made-up-" + std::to_string(i);
    absl::Status st;
    switch (i % 3) {
      case 0:
        st = hub.OnHeartbeat(id, commands::Heartbeat(), /*via_http=*/true);
        break;
      case 1:
        st = hub.OnEvent(id, commands::EventNotification(), /*via_http=*/true);
        break;
      default:
        st = hub.PollCommands(id).status();
        break;
    }
    if (!st.ok()) {
      EXPECT_EQ(st.code(), absl::StatusCode::kResourceExhausted);
      ++refused;
    }
  }
  EXPECT_EQ(refused, 100000 - 1000);
  EXPECT_EQ(hub.known_count(), 1001u);
  EXPECT_EQ(MetricValue(prom_, "mig_controller_agent_requests_refused_total",
                        {{"reason", "too_many_agents_without_stream"}}),
            99000);
  // One already held keeps talking; the stream's agent is never refused.
  EXPECT_TRUE(hub.OnHeartbeat("made-up-0", commands::Heartbeat(), true).ok());
  EXPECT_TRUE(hub.OnHeartbeat("real", commands::Heartbeat()).ok());
  // Silent past forget_after: forgotten (the pollers were marked gone first), and room again.
  clock_->Advance(std::chrono::minutes(15));
  hub.Sweep();
  hub.Sweep();
  EXPECT_EQ(hub.known_count(), 1u) << "only the agent with a stream";
  EXPECT_TRUE(hub.GetAgent("real").has_value());
  EXPECT_FALSE(hub.GetAgent("made-up-1").has_value());
  EXPECT_EQ(MetricValue(prom_, "mig_controller_agents_known"), 1);
  EXPECT_TRUE(hub.OnHeartbeat("made-up-100001", commands::Heartbeat(), true).ok());
}

TEST_F(AgentRegistryTest, ForgetsOnlySilentAgentsWithNothingPending) {
  HubOptions opts;
  opts.forget_after = std::chrono::minutes(15);
  opts.ack_timeout = std::chrono::hours(1);
  AgentRegistry hub(opts, clock_, nullptr);
  auto s = std::make_shared<FakeSession>();
  ASSERT_TRUE(hub.Attach(Connect("gone"), s).ok());
  hub.Detach("gone", s.get());
  ASSERT_TRUE(hub.SendCommand("waiting", Cmd("drain", "c1")).ok());
  auto kept = std::make_shared<FakeSession>();
  ASSERT_TRUE(hub.Attach(Connect("silent-stream"), kept).ok());
  clock_->Advance(std::chrono::minutes(15) - seconds(1));
  hub.Sweep();
  EXPECT_EQ(hub.known_count(), 3u);
  clock_->Advance(seconds(1));
  hub.Sweep();
  EXPECT_FALSE(hub.GetAgent("gone").has_value());
  EXPECT_TRUE(hub.GetAgent("waiting").has_value()) << "a command is pending for it";
  EXPECT_TRUE(hub.GetAgent("silent-stream").has_value()) << "its stream is open";
}

TEST(AgentRegistryIdTest, VmAndPoolIdsAreCheckedForLengthAndCharacters) {
  EXPECT_TRUE(AgentRegistry::ValidateId("vm_id", "runner-01.zone_a").ok());
  EXPECT_TRUE(AgentRegistry::ValidateId("vm_id", std::string(253, 'a')).ok());
  auto st = AgentRegistry::ValidateId("vm_id", std::string(64 * 1024, 'a'));
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(st.message()), HasSubstr("vm_id must be at most 253 characters"));
  st = AgentRegistry::ValidateId("pool_id", "ci pool");
  EXPECT_THAT(std::string(st.message()), HasSubstr("pool_id may hold only"));
  EXPECT_THAT(std::string(st.message()), HasSubstr("0x20"));
  EXPECT_FALSE(AgentRegistry::ValidateId("vm_id", "a/b").ok());
  EXPECT_FALSE(AgentRegistry::ValidateId("vm_id", "").ok());
  commands::ConnectRequest c;
  c.set_vm_id(std::string(300, 'x'));
  c.set_pool_id("p");
  EXPECT_THAT(std::string(AgentRegistry::ValidateConnect(c).message()),
              HasSubstr("connect: vm_id must be at most 253"));
}

TEST_F(AgentRegistryTest, EventsReachHookWithIdentityFilledIn) {
  std::vector<commands::EventNotification> events;
  registry_.SetEventHook([&](const commands::EventNotification& e) { events.push_back(e); });
  auto s = std::make_shared<FakeSession>();
  ASSERT_TRUE(registry_.Attach(Connect("vm-1", "pool-x"), s).ok());
  commands::EventNotification ev;
  ev.set_type("job_started");
  (void)registry_.OnEvent("vm-1", ev);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].vm_id(), "vm-1");
  EXPECT_EQ(events[0].pool_id(), "pool-x");
}

TEST_F(AgentRegistryTest, ShutdownAbortsPendingAndClosesStreams) {
  auto s = std::make_shared<FakeSession>();
  ASSERT_TRUE(registry_.Attach(Connect("vm-1"), s).ok());
  std::optional<CommandResult> result;
  ASSERT_TRUE(
      registry_.SendCommand("vm-1", Cmd("drain"), [&](const CommandResult& r) { result = r; })
          .ok());
  registry_.Shutdown();
  EXPECT_EQ(s->closed_code, "shutting_down");
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(result->status.code(), absl::StatusCode::kAborted);
  EXPECT_EQ(registry_.connected_count(), 0u);
}

}  // namespace
}  // namespace miglet
