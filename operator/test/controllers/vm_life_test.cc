#include "vm_life.h"

#include <gtest/gtest.h>

namespace miglet::controllers {
namespace {

using D = api::DesiredState;

api::RunnerVM Vm(D desired = D::kRunning, bool seen = true, std::string pod = "p") {
  api::RunnerVM vm;
  vm.meta.name = "p";
  vm.spec.desired_state = desired;
  if (seen) vm.status.agent.last_seen = "2026-11-27T13:00:00Z";
  vm.status.pod_name = std::move(pod);
  return vm;
}

AgentInfo Agent(const std::string& state, bool connected = true, bool lost = false,
                const std::string& job = "") {
  AgentInfo a;
  a.vm_id = "p";
  a.connected = connected;
  a.lost = lost;
  a.miglet_state = state;
  a.current_job.set_job_id(job);
  return a;
}

PodView Pod(const std::string& phase, bool exists = true) { return {exists, phase, false}; }

TEST(VmLifeTest, FromTheAgentsState) {
  const auto pod = Pod("Running");
  EXPECT_EQ(DeriveLife(Vm(D::kRunning, false), std::nullopt, pod), VmLife::kStarting);
  for (const char* s : {"initializing", "connecting", "ready", "registering_runner"}) {
    EXPECT_EQ(DeriveLife(Vm(), Agent(s), pod), VmLife::kStarting) << s;
  }
  EXPECT_EQ(DeriveLife(Vm(), Agent("idle"), pod), VmLife::kIdle);
  EXPECT_EQ(DeriveLife(Vm(), Agent("job_running", true, false, "build"), pod), VmLife::kBusy);
  // Draining with its job still running is busy; without one the runner is done.
  EXPECT_EQ(DeriveLife(Vm(D::kDrained), Agent("draining", true, false, "build"), pod),
            VmLife::kBusy);
  EXPECT_EQ(DeriveLife(Vm(), Agent("draining"), pod), VmLife::kFinished);
  EXPECT_EQ(DeriveLife(Vm(), Agent("error"), pod), VmLife::kFinished);
  EXPECT_EQ(DeriveLife(Vm(D::kShutdown), Agent("shutting_down"), pod), VmLife::kFinished);
}

TEST(VmLifeTest, LostAndGone) {
  EXPECT_EQ(DeriveLife(Vm(), Agent("idle", true, /*lost=*/true), Pod("Running")), VmLife::kLost);
  EXPECT_EQ(DeriveLife(Vm(), Agent("idle", false, true), Pod("Running")), VmLife::kLost);
  // The agent said it is shutting down, then went: gone.
  EXPECT_EQ(DeriveLife(Vm(D::kShutdown), Agent("shutting_down", false), Pod("Running")),
            VmLife::kGone);
  EXPECT_EQ(DeriveLife(Vm(D::kShutdown), std::nullopt, std::nullopt), VmLife::kGone);
  // Never connected, and now to be shut down: nothing to wait for.
  EXPECT_EQ(DeriveLife(Vm(D::kShutdown, /*seen=*/false), std::nullopt, Pod("Pending")),
            VmLife::kGone);
  // Disconnected for a moment (a controller restart, a network blip): where it was.
  EXPECT_EQ(DeriveLife(Vm(), Agent("job_running", false, false, "b"), Pod("Running")),
            VmLife::kBusy);
  // Lost, then forgotten by the hub: still lost; without that status, unknown is starting.
  auto lost = Vm(D::kRunning, true, "");
  lost.status.phase = "Lost";
  EXPECT_EQ(DeriveLife(lost, std::nullopt, std::nullopt), VmLife::kLost);
  lost.status.phase = "Idle";
  EXPECT_EQ(DeriveLife(lost, std::nullopt, std::nullopt), VmLife::kStarting);
}

TEST(VmLifeTest, FromThePod) {
  EXPECT_EQ(DeriveLife(Vm(), Agent("idle"), Pod("Failed")), VmLife::kLost);
  EXPECT_EQ(DeriveLife(Vm(D::kShutdown), Agent("shutting_down"), Pod("Succeeded")), VmLife::kGone);
  EXPECT_EQ(DeriveLife(Vm(), Agent("idle"), Pod("", /*exists=*/false)), VmLife::kLost);
  EXPECT_EQ(DeriveLife(Vm(D::kShutdown), std::nullopt, Pod("", false)), VmLife::kGone);
  // Not made yet (no pod name in the status): starting, not lost.
  EXPECT_EQ(DeriveLife(Vm(D::kRunning, false, ""), std::nullopt, Pod("", false)),
            VmLife::kStarting);
}

}  // namespace
}  // namespace miglet::controllers
