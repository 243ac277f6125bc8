#include "vm_plan.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace miglet::controllers {
namespace {

using D = api::DesiredState;
using K = VmCommand::Kind;
using std::chrono::seconds;

const WallTime kNow(seconds(1'800'000'000));

api::RunnerPool Pool(int64_t drain_timeout = 600) {
  api::RunnerPool p;
  p.meta.name = "ci";
  p.meta.generation = 4;
  p.spec.drain_timeout_seconds = drain_timeout;
  return p;
}

// A VM whose agent has confirmed the pool's default settings.
api::RunnerVM Vm(D desired = D::kRunning, int64_t generation = 2) {
  api::RunnerVM vm;
  vm.meta.name = "ci-a";
  vm.meta.uid = "uid-1";
  vm.meta.generation = generation;
  vm.spec.pool_name = "ci";
  vm.spec.desired_state = desired;
  vm.status.agent.log_level = "info";
  vm.status.agent.heartbeat_interval = "15s";
  return vm;
}

AgentInfo Agent(const std::string& state, bool configured = false, const std::string& job = "") {
  AgentInfo a;
  a.vm_id = "ci-a";
  a.connected = true;
  a.miglet_state = state;
  a.runner.set_configured(configured);
  a.current_job.set_job_id(job);
  return a;
}

TEST(VmPlanTest, RegistersARunnerOnAReadyAgent) {
  auto c = PlanVmCommand(Vm(), Pool(), Agent("ready"), kNow);
  EXPECT_EQ(c.kind, K::kRegister);
  EXPECT_EQ(c.id, "uid-1.g2.register.1");
  EXPECT_EQ(VmCommandName(c.kind), "register_runner");
  // Registered already, or registering: nothing.
  EXPECT_EQ(PlanVmCommand(Vm(), Pool(), Agent("idle", true), kNow).kind, K::kNone);
  EXPECT_EQ(PlanVmCommand(Vm(), Pool(), Agent("registering_runner"), kNow).kind, K::kNone);
}

TEST(VmPlanTest, AnExternalMachineTakesANewRunnerWhenTheLastIsOver) {
  auto pool = Pool();
  pool.spec.provider = api::Provider::kExternal;
  auto done = Agent("draining", true);
  done.runner.set_state("offline");
  auto vm = Vm();
  vm.status.registrations = 1;
  vm.status.last_command = {"uid-1.g2.register.1", "register_runner", true, "registered"};
  auto c = PlanVmCommand(vm, pool, done, kNow);
  EXPECT_EQ(c.kind, K::kRegister);
  EXPECT_EQ(c.id, "uid-1.g2.register.2") << "a new runner: a new id";
  EXPECT_FALSE(c.deregister) << "a JIT runner leaves no configuration behind";
  // A persistent runner's configuration is still on the machine: it is removed first.
  pool.spec.runner.ephemeral = false;
  EXPECT_TRUE(PlanVmCommand(vm, pool, done, kNow).deregister);
  pool.spec.runner.ephemeral = true;
  // A pod is replaced instead.
  EXPECT_EQ(PlanVmCommand(vm, Pool(), done, kNow).kind, K::kNone);
  // Still running its job, or its runner process still up: not yet.
  auto busy = Agent("draining", true, "build");
  busy.runner.set_state("running");
  EXPECT_EQ(PlanVmCommand(vm, pool, busy, kNow).kind, K::kNone);
}

TEST(VmPlanTest, EveryRegistrationHasItsOwnIdAndAFailureWaits) {
  auto vm = Vm();
  vm.status.registrations = 1;
  vm.status.last_command = {"uid-1.g2.register.1", "register_runner", false, "config.sh: 404",
                            api::FormatTime(kNow - seconds(29))};
  EXPECT_EQ(PlanVmCommand(vm, Pool(), Agent("ready"), kNow).kind, K::kNone) << "pausing";
  EXPECT_EQ(PlanVmCommand(vm, Pool(), Agent("ready"), kNow + seconds(1)).id, "uid-1.g2.register.2");
  vm.status.registrations = 7;
  vm.status.last_command.success = true;
  EXPECT_EQ(PlanVmCommand(vm, Pool(), Agent("ready"), kNow).id, "uid-1.g2.register.8");
}

TEST(VmPlanTest, NothingForAnAgentThatIsAwayOrBusyWithACommand) {
  EXPECT_EQ(PlanVmCommand(Vm(), Pool(), std::nullopt, kNow).kind, K::kNone);
  auto away = Agent("ready");
  away.connected = false;
  EXPECT_EQ(PlanVmCommand(Vm(), Pool(), away, kNow).kind, K::kNone);
  auto lost = Agent("ready");
  lost.lost = true;
  EXPECT_EQ(PlanVmCommand(Vm(), Pool(), lost, kNow).kind, K::kNone);
  auto pending = Agent("ready");
  pending.pending_commands = 1;
  EXPECT_EQ(PlanVmCommand(Vm(), Pool(), pending, kNow).kind, K::kNone);
}

TEST(VmPlanTest, DrainFromDesiredState) {
  for (const char* s : {"ready", "registering_runner", "idle", "job_running"}) {
    auto c = PlanVmCommand(Vm(D::kDrained, 3), Pool(), Agent(s, true), kNow);
    EXPECT_EQ(c.kind, K::kDrain) << s;
    EXPECT_EQ(c.id, "uid-1.g3.drain") << s;
  }
  EXPECT_EQ(PlanVmCommand(Vm(D::kDrained, 3), Pool(), Agent("draining", true, "b"), kNow).kind,
            K::kNone);
  // A spare with no runner is left alone.
  EXPECT_EQ(PlanVmCommand(Vm(D::kDrained, 3), Pool(), Agent("ready", false), kNow).kind, K::kNone);
}

TEST(VmPlanTest, ShutdownWaitsForAJobUntilTheDrainTimeout) {
  auto idle = PlanVmCommand(Vm(D::kShutdown, 5), Pool(), Agent("idle", true), kNow);
  EXPECT_EQ(idle.kind, K::kShutdown);
  EXPECT_FALSE(idle.force);
  EXPECT_EQ(idle.id, "uid-1.g5.shutdown");

  // Busy and never drained: drain first.
  auto vm = Vm(D::kShutdown, 5);
  auto busy = PlanVmCommand(vm, Pool(600), Agent("job_running", true, "build"), kNow);
  EXPECT_EQ(busy.kind, K::kDrain);
  // Draining, inside the timeout: wait.
  api::SetCondition(vm.status.conditions, {"Draining", "True", "ScaleDown", ""},
                    kNow - seconds(599));
  EXPECT_EQ(PlanVmCommand(vm, Pool(600), Agent("draining", true, "build"), kNow).kind, K::kNone);
  // Past it: shut down, cutting the job short.
  auto late = PlanVmCommand(vm, Pool(600), Agent("draining", true, "build"), kNow + seconds(1));
  EXPECT_EQ(late.kind, K::kShutdown);
  EXPECT_TRUE(late.force);
  EXPECT_EQ(late.id, "uid-1.g5.shutdown-force");
  // Nothing once it is shutting down.
  EXPECT_EQ(PlanVmCommand(vm, Pool(), Agent("shutting_down", true), kNow).kind, K::kNone);
}

TEST(VmPlanTest, PersistentRunnersAreDeregisteredOnShutdown) {
  auto pool = Pool();
  pool.spec.runner.ephemeral = false;
  EXPECT_TRUE(PlanVmCommand(Vm(D::kShutdown), pool, Agent("idle", true), kNow).deregister);
  EXPECT_FALSE(PlanVmCommand(Vm(D::kShutdown), Pool(), Agent("idle", true), kNow).deregister);
  EXPECT_FALSE(PlanVmCommand(Vm(D::kShutdown), pool, Agent("ready", false), kNow).deregister);
}

TEST(VmPlanTest, SettingsFollowThePoolAndTheVm) {
  auto pool = Pool();
  pool.spec.agent.log_level = "debug";
  auto c = PlanVmCommand(Vm(), pool, Agent("idle", true), kNow);
  EXPECT_EQ(c.kind, K::kSetLogLevel);
  EXPECT_EQ(c.level, "debug");
  EXPECT_EQ(c.id, "uid-1.g2.p4.log.debug");
  // The VM's own level wins.
  auto vm = Vm();
  vm.spec.log_level = "warn";
  EXPECT_EQ(PlanVmCommand(vm, pool, Agent("idle", true), kNow).level, "warn");

  pool = Pool();
  pool.spec.agent.heartbeat_interval = "5s";
  vm = Vm();
  vm.spec.config = {{"controller.retry.max_backoff", "10s"}};
  c = PlanVmCommand(vm, pool, Agent("idle", true), kNow);
  EXPECT_EQ(c.kind, K::kUpdateConfig);
  EXPECT_EQ(c.config, (std::map<std::string, std::string>{{"controller.retry.max_backoff", "10s"},
                                                          {"heartbeat.interval", "5s"}}));
  EXPECT_EQ(c.id, "uid-1.g2.p4.config");
  // Confirmed: nothing more.
  vm.status.agent.heartbeat_interval = "5s";
  vm.status.agent.config = {{"controller.retry.max_backoff", "10s"}};
  EXPECT_EQ(PlanVmCommand(vm, pool, Agent("idle", true), kNow).kind, K::kNone);
  // The runner side comes first: a ready agent is registered before its settings change.
  EXPECT_EQ(PlanVmCommand(Vm(), Pool(), Agent("ready"), kNow).kind, K::kRegister);
}

TEST(VmPlanTest, AFailedCommandIsNotRepeatedUnderTheSameId) {
  auto pool = Pool();
  pool.spec.agent.heartbeat_interval = "1ms";
  auto vm = Vm();
  vm.status.last_command = {"uid-1.g2.p4.config", "update_config", false,
                            "heartbeat.interval: too short"};
  EXPECT_EQ(PlanVmCommand(vm, pool, Agent("idle", true), kNow).kind, K::kNone);
  // A new pool generation is a new command.
  pool.meta.generation = 5;
  EXPECT_EQ(PlanVmCommand(vm, pool, Agent("idle", true), kNow).id, "uid-1.g2.p5.config");
}

}  // namespace
}  // namespace miglet::controllers
