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
  registry_.OnHeartbeat("vm-1", hb);
  EXPECT_EQ(changes_.size(), 2u);
  for (int i = 0; i < 50; ++i) {
    hb.mutable_health()->set_cpu_usage_percent(i);  // health alone is not a change
    hb.set_timestamp(i);
    registry_.OnHeartbeat("vm-1", hb);
  }
  EXPECT_EQ(changes_.size(), 2u);
  EXPECT_EQ(registry_.GetAgent("vm-1")->health.cpu_usage_percent(), 49);
  EXPECT_EQ(registry_.GetAgent("vm-1")->heartbeats, 51u);
  hb.set_miglet_state("job_running");
  hb.mutable_current_job()->set_job_id("j1");
  hb.mutable_current_job()->set_status("running");
  registry_.OnHeartbeat("vm-1", hb);
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
  registry_.OnHeartbeat("vm-1", commands::Heartbeat());
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
  ASSERT_EQ(cmds.size(), 1u);
  EXPECT_EQ(cmds[0].id(), "c1");
  EXPECT_EQ(registry_.GetAgent("vm-h")->transport, "http");
  EXPECT_EQ(registry_.PollCommands("vm-h").size(), 1u);  // still unacked: polled again
  registry_.OnAck("vm-h", Ack("c1"));
  EXPECT_TRUE(registry_.PollCommands("vm-h").empty());
  clock_->Advance(seconds(46));
  registry_.Sweep();
  EXPECT_FALSE(registry_.GetAgent("vm-h")->connected);
}

TEST_F(AgentRegistryTest, EventsReachHookWithIdentityFilledIn) {
  std::vector<commands::EventNotification> events;
  registry_.SetEventHook([&](const commands::EventNotification& e) { events.push_back(e); });
  auto s = std::make_shared<FakeSession>();
  ASSERT_TRUE(registry_.Attach(Connect("vm-1", "pool-x"), s).ok());
  commands::EventNotification ev;
  ev.set_type("job_started");
  registry_.OnEvent("vm-1", ev);
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
