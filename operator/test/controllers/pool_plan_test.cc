#include "pool_plan.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <random>

namespace miglet::controllers {
namespace {

using std::chrono::seconds;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;
using D = api::DesiredState;

const WallTime kNow(seconds(1'800'000'000));

api::RunnerPoolSpec Spec(int replicas, int64_t drain_timeout = 600) {
  api::RunnerPoolSpec s;
  s.replicas = replicas;
  s.drain_timeout_seconds = drain_timeout;
  return s;
}

// A VM created `age` seconds ago.
VmView Vm(const std::string& name, VmLife life, int age = 100, D desired = D::kRunning) {
  VmView v;
  v.name = name;
  v.life = life;
  v.created = kNow - seconds(age);
  v.desired = desired;
  return v;
}

TEST(PoolPlanTest, ScaleUpCreatesTheShortfall) {
  auto p = PlanPodPool(Spec(3), {}, kNow);
  EXPECT_EQ(p.create, 3);
  p = PlanPodPool(Spec(3), {Vm("a", VmLife::kIdle), Vm("b", VmLife::kStarting)}, kNow);
  EXPECT_EQ(p.create, 1);
  EXPECT_THAT(p.drain, IsEmpty());
}

TEST(PoolPlanTest, SteadyPoolPlansNothing) {
  auto p = PlanPodPool(
      Spec(3), {Vm("a", VmLife::kIdle), Vm("b", VmLife::kBusy), Vm("c", VmLife::kStarting)}, kNow);
  EXPECT_TRUE(p.empty());
}

TEST(PoolPlanTest, ScaleDownDrainsStartingThenIdleThenBusyNewestFirst) {
  const std::vector<VmView> vms = {
      Vm("busy-old", VmLife::kBusy, 500), Vm("busy-new", VmLife::kBusy, 10),
      Vm("idle-old", VmLife::kIdle, 400), Vm("idle-new", VmLife::kIdle, 20),
      Vm("starting", VmLife::kStarting, 5)};
  EXPECT_THAT(PlanPodPool(Spec(4), vms, kNow).drain, ElementsAre("starting"));
  EXPECT_THAT(PlanPodPool(Spec(2), vms, kNow).drain,
              ElementsAre("starting", "idle-new", "idle-old"));
  EXPECT_THAT(PlanPodPool(Spec(1), vms, kNow).drain,
              ElementsAre("starting", "idle-new", "idle-old", "busy-new"));
  auto zero = PlanPodPool(Spec(0), vms, kNow);
  EXPECT_EQ(zero.drain.size(), 5u);
  EXPECT_THAT(zero.shutdown, IsEmpty());  // draining first, always
  EXPECT_EQ(zero.create, 0);
}

TEST(PoolPlanTest, ABusyDrainedRunnerIsShutDownOnlyAfterItsJobOrTheTimeout) {
  VmView v = Vm("b", VmLife::kBusy, 1000, D::kDrained);
  v.drain_started = kNow - seconds(599);
  EXPECT_THAT(PlanPodPool(Spec(0, 600), {v}, kNow).shutdown, IsEmpty());
  v.drain_started = kNow - seconds(600);
  EXPECT_THAT(PlanPodPool(Spec(0, 600), {v}, kNow).shutdown, ElementsAre("b"));
  // The job ended before the timeout: shut down at once.
  v.drain_started = kNow - seconds(10);
  v.life = VmLife::kIdle;
  EXPECT_THAT(PlanPodPool(Spec(0, 600), {v}, kNow).shutdown, ElementsAre("b"));
  // No drain start known yet (the condition not written): busy waits.
  v.life = VmLife::kBusy;
  v.drain_started.reset();
  EXPECT_THAT(PlanPodPool(Spec(0, 600), {v}, kNow).shutdown, IsEmpty());
}

TEST(PoolPlanTest, FinishedEphemeralRunnersAreShutDownAndReplaced) {
  auto p = PlanPodPool(Spec(2), {Vm("done", VmLife::kFinished), Vm("b", VmLife::kBusy)}, kNow);
  EXPECT_THAT(p.shutdown, ElementsAre("done"));
  EXPECT_EQ(p.create, 1);
  // Once it is shutting down, it is not asked again, and still not counted.
  p = PlanPodPool(Spec(2),
                  {Vm("done", VmLife::kFinished, 100, D::kShutdown), Vm("b", VmLife::kBusy)}, kNow);
  EXPECT_THAT(p.shutdown, IsEmpty());
  EXPECT_EQ(p.create, 1);
}

TEST(PoolPlanTest, LostAndGoneMachines) {
  auto p = PlanPodPool(Spec(2),
                       {Vm("lost", VmLife::kLost), Vm("gone", VmLife::kGone, 100, D::kShutdown),
                        Vm("ok", VmLife::kIdle)},
                       kNow);
  EXPECT_THAT(p.remove, UnorderedElementsAre("lost", "gone"));
  EXPECT_EQ(p.create, 1);
  auto keep = Spec(2);
  keep.replace_policy = api::ReplacePolicy::kKeep;
  p = PlanPodPool(keep, {Vm("lost", VmLife::kLost), Vm("ok", VmLife::kIdle)}, kNow);
  EXPECT_THAT(p.remove, IsEmpty());
  EXPECT_EQ(p.create, 0);
}

TEST(PoolPlanTest, DeletingVmsCountForNothing) {
  VmView d = Vm("d", VmLife::kIdle);
  d.deleting = true;
  auto p = PlanPodPool(Spec(1), {d}, kNow);
  EXPECT_EQ(p.create, 1);
  EXPECT_THAT(p.remove, IsEmpty());
  EXPECT_EQ(CountPool({d}).replicas, 0);
}

TEST(PoolPlanTest, Counts) {
  const auto c =
      CountPool({Vm("a", VmLife::kIdle), Vm("b", VmLife::kBusy), Vm("c", VmLife::kStarting),
                 Vm("d", VmLife::kBusy, 1, D::kDrained), Vm("e", VmLife::kFinished)});
  EXPECT_EQ(c.replicas, 5);
  EXPECT_EQ(c.serving, 3);
  EXPECT_EQ(c.ready, 2);
  EXPECT_EQ(c.idle, 1);
  EXPECT_EQ(c.busy, 1);
}

// Random worlds: whatever the pool looks like, a plan never shuts down a busy runner before
// its drain timeout, never drains more than the surplus, and once applied (and the world has
// caught up) the next plan leaves exactly `replicas` serving.
TEST(PoolPlanTest, InvariantsOverRandomWorlds) {
  std::mt19937 rng(42);
  const VmLife lives[] = {VmLife::kStarting, VmLife::kIdle, VmLife::kBusy,
                          VmLife::kFinished, VmLife::kLost, VmLife::kGone};
  const D states[] = {D::kRunning, D::kRunning, D::kRunning, D::kDrained, D::kShutdown};
  for (int round = 0; round < 2000; ++round) {
    const auto spec = Spec(static_cast<int>(rng() % 8), 300);
    std::vector<VmView> vms;
    const int n = static_cast<int>(rng() % 10);
    for (int i = 0; i < n; ++i) {
      VmView v = Vm("vm" + std::to_string(i), lives[rng() % 6], static_cast<int>(rng() % 1000),
                    states[rng() % 5]);
      if (v.desired == D::kDrained && rng() % 2) v.drain_started = kNow - seconds(rng() % 600);
      v.deleting = rng() % 10 == 0;
      vms.push_back(v);
    }
    const PoolPlan p = PlanPodPool(spec, vms, kNow);
    const int serving = CountPool(vms).serving;
    // Lost machines kept in place do not serve in the counts, but hold their place (Replace
    // here, so none).
    for (const auto& name : p.shutdown) {
      const auto& v =
          *std::find_if(vms.begin(), vms.end(), [&](auto& x) { return x.name == name; });
      if (v.life == VmLife::kBusy) {
        ASSERT_TRUE(v.desired == D::kDrained && v.drain_started &&
                    kNow - *v.drain_started >= seconds(spec.drain_timeout_seconds))
            << "busy " << name << " shut down early";
      }
    }
    ASSERT_LE(static_cast<int>(p.drain.size()), std::max(0, serving - spec.replicas));
    ASSERT_EQ(serving + p.create - static_cast<int>(p.drain.size()), spec.replicas)
        << "round " << round;
    // Deterministic.
    const PoolPlan again = PlanPodPool(spec, vms, kNow);
    ASSERT_EQ(again.drain, p.drain);
    ASSERT_EQ(again.shutdown, p.shutdown);
    ASSERT_EQ(again.remove, p.remove);
    ASSERT_EQ(again.create, p.create);
  }
}

}  // namespace
}  // namespace miglet::controllers

namespace miglet::controllers {
namespace {

TEST(ExternalPoolPlanTest, SparesAreActivatedOldestFirstAndNothingIsCreated) {
  const std::vector<VmView> vms = {Vm("serving", VmLife::kIdle, 300),
                                   Vm("spare-new", VmLife::kStarting, 10, D::kDrained),
                                   Vm("spare-old", VmLife::kStarting, 900, D::kDrained),
                                   Vm("spare-mid", VmLife::kFinished, 500, D::kDrained)};
  auto p = PlanExternalPool(Spec(3), vms, kNow);
  EXPECT_EQ(p.create, 0);
  EXPECT_THAT(p.activate, ElementsAre("spare-old", "spare-mid"));
  // More wanted than machines: every spare, and no more.
  EXPECT_EQ(PlanExternalPool(Spec(10), vms, kNow).activate.size(), 3u);
  EXPECT_TRUE(PlanExternalPool(Spec(1), vms, kNow).empty());
}

TEST(ExternalPoolPlanTest, ScaleDownDrainsAndTheMachineStays) {
  const std::vector<VmView> vms = {Vm("busy", VmLife::kBusy, 300), Vm("idle", VmLife::kIdle, 200),
                                   Vm("done", VmLife::kFinished, 100)};
  auto p = PlanExternalPool(Spec(1), vms, kNow);
  EXPECT_THAT(p.drain, ElementsAre("idle", "done"));
  EXPECT_THAT(p.shutdown, IsEmpty());
  EXPECT_THAT(p.remove, IsEmpty());
  // A finished runner on a serving machine is replaced in place: nothing to do here.
  EXPECT_TRUE(PlanExternalPool(Spec(3), vms, kNow).empty());
  // A drained busy machine waits for its job (or the timeout).
  VmView b = Vm("b", VmLife::kBusy, 300, D::kDrained);
  b.drain_started = kNow - seconds(10);
  EXPECT_TRUE(PlanExternalPool(Spec(0, 600), {b}, kNow).empty());
  b.drain_started = kNow - seconds(600);
  EXPECT_THAT(PlanExternalPool(Spec(0, 600), {b}, kNow).shutdown, ElementsAre("b"));
}

TEST(ExternalPoolPlanTest, LostMachinesAreRemovedGoneOnesWait) {
  auto p = PlanExternalPool(
      Spec(2), {Vm("lost", VmLife::kLost), Vm("gone", VmLife::kGone, 1, D::kShutdown)}, kNow);
  EXPECT_THAT(p.remove, ElementsAre("lost"));
  EXPECT_EQ(p.create, 0);
}

}  // namespace
}  // namespace miglet::controllers
