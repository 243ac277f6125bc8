#include "vm_status.h"

#include <gtest/gtest.h>

namespace miglet::controllers {
namespace {

using std::chrono::minutes;
using std::chrono::seconds;

const WallTime kNow(seconds(1'800'000'000));

api::RunnerVM Vm() {
  api::RunnerVM vm;
  vm.meta = {.name = "ci-a", .ns = "team", .uid = "u", .generation = 2};
  vm.spec.pool_name = "ci";
  return vm;
}

AgentInfo Agent(const std::string& state) {
  AgentInfo a;
  a.vm_id = "ci-a";
  a.connected = true;
  a.transport = "grpc";
  a.version = "0.1.0";
  a.miglet_state = state;
  a.last_heartbeat = kNow - seconds(3);
  a.health.set_cpu_usage_percent(12.5);
  return a;
}

api::RunnerVMStatus Derive(const api::RunnerVM& vm, const AgentInfo* a, VmLife life,
                           const CommandOutcome* o = nullptr, WallTime now = kNow) {
  return DeriveVmStatus({.vm = &vm, .agent = a, .outcome = o, .life = life, .now = now});
}

TEST(VmStatusTest, FromTheAgent) {
  auto a = Agent("job_running");
  a.runner.set_configured(true);
  a.runner.set_runner_name("ci-a");
  a.current_job.set_job_id("build");
  a.current_job.set_repository("acme/app");
  auto s = Derive(Vm(), &a, VmLife::kBusy);
  EXPECT_EQ(s.phase, "JobRunning");
  EXPECT_TRUE(s.agent.connected);
  EXPECT_EQ(s.agent.transport, "grpc");
  EXPECT_EQ(s.runner.name, "ci-a");
  EXPECT_EQ(s.job.id, "build");
  EXPECT_EQ(s.job.repository, "acme/app");
  EXPECT_EQ(s.agent.last_seen, api::FormatTime(kNow - seconds(3)));
  EXPECT_EQ(s.health.cpu_percent, 12.5);
  EXPECT_EQ(s.observed_generation, 2);
  EXPECT_EQ(api::FindCondition(s.conditions, "AgentConnected")->status, "True");
  EXPECT_EQ(api::FindCondition(s.conditions, "RunnerRegistered")->status, "True");
  EXPECT_EQ(api::FindCondition(s.conditions, "Draining")->status, "False");
  EXPECT_EQ(api::FindCondition(s.conditions, "AgentLost")->status, "False");
}

TEST(VmStatusTest, PhasesBeforeAndAfterTheAgent) {
  EXPECT_EQ(Derive(Vm(), nullptr, VmLife::kStarting).phase, "Pending");
  auto a = Agent("idle");
  a.lost = true;
  auto lost = Derive(Vm(), &a, VmLife::kLost);
  EXPECT_EQ(lost.phase, "Lost");
  EXPECT_FALSE(lost.agent.connected);
  EXPECT_EQ(api::FindCondition(lost.conditions, "AgentLost")->status, "True");
  auto vm = Vm();
  vm.meta.deletion_timestamp = "2026-11-27T13:00:00Z";
  EXPECT_EQ(Derive(vm, nullptr, VmLife::kStarting).phase, "Deleting");
  vm = Vm();
  vm.spec.desired_state = api::DesiredState::kDrained;
  auto d = Derive(vm, nullptr, VmLife::kStarting);
  EXPECT_EQ(api::FindCondition(d.conditions, "Draining")->reason, "DrainRequested");
}

TEST(VmStatusTest, HeartbeatsAloneMakeNoNewStatus) {
  auto vm = Vm();
  auto a = Agent("idle");
  vm.status = Derive(vm, &a, VmLife::kIdle);
  // A minute of heartbeats later: health and last-seen moved, nothing else did.
  a.last_heartbeat = kNow + minutes(1);
  a.health.set_cpu_usage_percent(80);
  auto later = Derive(vm, &a, VmLife::kIdle, nullptr, kNow + minutes(1));
  EXPECT_EQ(api::EncodeStatus(later), api::EncodeStatus(vm.status)) << "no write";
  // A state change carries the fresh last-seen and health along.
  a.miglet_state = "job_running";
  a.current_job.set_job_id("b");
  auto busy = Derive(vm, &a, VmLife::kBusy, nullptr, kNow + minutes(1));
  EXPECT_EQ(busy.agent.last_seen, api::FormatTime(kNow + minutes(1)));
  EXPECT_EQ(busy.health.cpu_percent, 80);
  // Past the refresh interval, last-seen is written by itself.
  a.miglet_state = "idle";
  a.current_job.clear_job_id();
  a.last_heartbeat = kNow + minutes(21);
  auto stale = Derive(vm, &a, VmLife::kIdle, nullptr, kNow + minutes(21));
  EXPECT_EQ(stale.agent.last_seen, api::FormatTime(kNow + minutes(21)));
}

TEST(VmStatusTest, RunnerIdRidesAlongWithTheNextWrite) {
  // Registration 3 was counted and named before GitHub was asked; GitHub then gave id 42.
  auto vm = Vm();
  auto a = Agent("ready");
  vm.status = Derive(vm, &a, VmLife::kStarting);
  vm.status.registrations = 3;
  vm.status.runner.name = "ci-ci-a";
  vm.status.runner.ephemeral = true;
  const LearntRunner learnt{3, "ci-ci-a", 42};
  auto derive = [&](const LearntRunner* l) {
    return DeriveVmStatus(
        {.vm = &vm, .agent = &a, .learnt_runner = l, .life = VmLife::kStarting, .now = kNow});
  };
  // Nothing else changed: the id alone makes no write.
  EXPECT_EQ(api::EncodeStatus(derive(&learnt)), api::EncodeStatus(vm.status));
  // The agent reports registering: the id goes with that write.
  a.miglet_state = "registering_runner";
  EXPECT_EQ(derive(&learnt).runner.id, 42);
  EXPECT_EQ(derive(nullptr).runner.id, 0);
  // An id learnt for another registration, or another name, is not this runner's.
  const LearntRunner older{2, "ci-ci-a", 41}, other{3, "ci-ci-b", 43};
  EXPECT_EQ(derive(&older).runner.id, 0);
  EXPECT_EQ(derive(&other).runner.id, 0);
}

TEST(VmStatusTest, ARunnerThatIsOverDoesNotComeBackFromTheAgentsReport) {
  auto vm = Vm();
  auto a = Agent("draining");
  a.runner.set_configured(true);  // the agent keeps its last runner's report until the next
  a.runner.set_runner_name("ci-ci-a");
  a.runner.set_state("offline");
  // The controller deregistered it and cleared it from the status: it stays cleared.
  EXPECT_TRUE(Derive(vm, &a, VmLife::kFinished).runner.name.empty());
  a.miglet_state = "error";
  EXPECT_TRUE(Derive(vm, &a, VmLife::kFinished).runner.name.empty());
  // While it runs, the agent's report is the runner.
  a.miglet_state = "idle";
  a.runner.set_state("idle");
  EXPECT_EQ(Derive(vm, &a, VmLife::kIdle).runner.name, "ci-ci-a");
}

TEST(VmStatusTest, CommandOutcomesAndConfirmedSettings) {
  auto a = Agent("idle");
  CommandOutcome o{"u.g2.p4.log.debug", "set_log_level", true, "log level debug", "debug", {}};
  auto s = Derive(Vm(), &a, VmLife::kIdle, &o);
  EXPECT_EQ(s.last_command.id, "u.g2.p4.log.debug");
  EXPECT_TRUE(s.last_command.success);
  EXPECT_EQ(s.agent.log_level, "debug");
  CommandOutcome c{"u.g2.p4.config",
                   "update_config",
                   true,
                   "",
                   "",
                   {{"heartbeat.interval", "5s"}, {"heartbeat.timeout", "20s"}}};
  s = Derive(Vm(), &a, VmLife::kIdle, &c);
  EXPECT_EQ(s.agent.heartbeat_interval, "5s");
  EXPECT_EQ(s.agent.config.at("heartbeat.timeout"), "20s");
  CommandOutcome f{"u.g2.p4.config",
                   "update_config",
                   false,
                   "heartbeat.interval: bad",
                   "",
                   {{"heartbeat.interval", "1ms"}}};
  s = Derive(Vm(), &a, VmLife::kIdle, &f);
  EXPECT_FALSE(s.last_command.success);
  EXPECT_EQ(s.agent.heartbeat_interval, "") << "a refused setting is not confirmed";
}

}  // namespace
}  // namespace miglet::controllers
