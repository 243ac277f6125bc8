// The controller layer (ctrl::Manager) on a real apiserver: reconciles fed by shared informers,
// owner requeue, retries with backoff, requeue-after, requests from outside, metrics, and
// controllers that run only on the replica holding the Lease.
#include <prometheus/registry.h>

#include <atomic>
#include <map>
#include <mutex>

#include "common.h"
#include "miglet/common/testing/metric_value.h"
#include "miglet/operator/ctrl/manager.h"

namespace miglet::kube::testing {
namespace {

TestCluster& C() { return ClusterEnvironment::Cluster(); }
std::string NS() { return TestNamespace(); }

// Counts reconciles per key; can be told to fail or to ask for a requeue.
class Recorder final : public ctrl::Reconciler {
 public:
  absl::StatusOr<ctrl::Result> Reconcile(const ctrl::Request& req) override {
    std::lock_guard l(mu_);
    const int n = ++count_[req.Key()];
    if (n <= fail_first_[req.Key()]) return absl::UnavailableError("told to fail");
    if (n == 1 && requeue_.count(req.Key())) return ctrl::Result{requeue_[req.Key()]};
    return ctrl::Result{};
  }
  int Count(const std::string& key) {
    std::lock_guard l(mu_);
    return count_[key];
  }
  int Total() {
    std::lock_guard l(mu_);
    int t = 0;
    for (auto& [k, n] : count_) t += n;
    return t;
  }
  void FailFirst(const std::string& key, int n) {
    std::lock_guard l(mu_);
    fail_first_[key] = n;
  }
  void RequeueFirst(const std::string& key, Duration d) {
    std::lock_guard l(mu_);
    requeue_[key] = d;
  }

 private:
  std::mutex mu_;
  std::map<std::string, int> count_;
  std::map<std::string, int> fail_first_;
  std::map<std::string, Duration> requeue_;
};

Json Pool(const std::string& name) {
  return {
      {"apiVersion", "miglet.dev/v1alpha1"},
      {"kind", "RunnerPool"},
      {"metadata", {{"name", name}}},
      {"spec",
       {{"github", {{"url", "https://github.com/acme"}, {"tokenSecretRef", {{"name", "p"}}}}}}}};
}

class ManagerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(C().InstallCrds().ok());
    client_ = C().Client();
  }

  std::unique_ptr<ctrl::Manager> Make(std::shared_ptr<Recorder> rec,
                                      std::optional<LeaderElectionConfig> le = std::nullopt,
                                      prometheus::Registry* reg = nullptr) {
    auto m = ctrl::MakeManager({.client = client_,
                                .ns = NS(),
                                .clock = MakeRealClock(),
                                .leader_election = std::move(le),
                                .registry = reg});
    m->AddController({.name = "pools", .for_kind = RunnerPools(), .owns = {RunnerVMs()}},
                     std::move(rec));
    return m;
  }

  std::string Key(const std::string& name) { return NS() + "/" + name; }

  std::shared_ptr<KubeClient> client_;
};

TEST_F(ManagerTest, ReconcilesObjectsAndTheirOwnersOnChildEvents) {
  auto rec = std::make_shared<Recorder>();
  prometheus::Registry reg;
  auto m = Make(rec, std::nullopt, &reg);
  auto p1 = client_->Create(RunnerPools(), NS(), Pool("p1"));
  ASSERT_TRUE(p1.ok()) << p1.status();
  ASSERT_TRUE(m->Start().ok());
  EXPECT_TRUE(m->Ready());
  // The object that existed before start is reconciled from the initial list.
  ASSERT_TRUE(Eventually([&] { return rec->Count(Key("p1")) >= 1; }));
  ASSERT_TRUE(client_->Create(RunnerPools(), NS(), Pool("p2")).ok());
  ASSERT_TRUE(Eventually([&] { return rec->Count(Key("p2")) >= 1; }));

  // A RunnerVM controlled by p1: its events reconcile p1.
  const int before = rec->Count(Key("p1"));
  Json vm = {{"apiVersion", "miglet.dev/v1alpha1"},
             {"kind", "RunnerVM"},
             {"metadata",
              {{"name", "p1-a"},
               {"ownerReferences",
                {{{"apiVersion", "miglet.dev/v1alpha1"},
                  {"kind", "RunnerPool"},
                  {"name", "p1"},
                  {"uid", (*p1)["metadata"]["uid"]},
                  {"controller", true}}}}}},
             {"spec", {{"poolName", "p1"}}}};
  ASSERT_TRUE(client_->Create(RunnerVMs(), NS(), vm).ok());
  ASSERT_TRUE(Eventually([&] { return rec->Count(Key("p1")) > before; }));
  EXPECT_EQ(rec->Count(NS() + "/p1-a"), 0) << "the child is not reconciled as a pool";
  const int after_create = rec->Count(Key("p1"));
  ASSERT_TRUE(client_
                  ->Patch(RunnerVMs(), NS(), "p1-a", PatchType::kMerge,
                          {{"spec", {{"desiredState", "Drained"}}}})
                  .ok());
  ASSERT_TRUE(Eventually([&] { return rec->Count(Key("p1")) > after_create; }));

  EXPECT_GE(miglet::testing::MetricValue(reg, "mig_controller_reconcile_total",
                                         {{"controller", "pools"}, {"result", "success"}}),
            4);
  EXPECT_GE(miglet::testing::MetricValue(reg, "mig_controller_workqueue_adds_total",
                                         {{"controller", "pools"}}),
            4);
  m->Stop();
}

TEST_F(ManagerTest, ErrorsAreRetriedWithBackoffAndRequeueAfterComesBack) {
  auto rec = std::make_shared<Recorder>();
  prometheus::Registry reg;
  rec->FailFirst(Key("flaky"), 3);
  rec->RequeueFirst(Key("later"), std::chrono::milliseconds(300));
  auto m = Make(rec, std::nullopt, &reg);
  ASSERT_TRUE(m->Start().ok());
  ASSERT_TRUE(client_->Create(RunnerPools(), NS(), Pool("flaky")).ok());
  ASSERT_TRUE(client_->Create(RunnerPools(), NS(), Pool("later")).ok());
  ASSERT_TRUE(Eventually([&] { return rec->Count(Key("flaky")) >= 4; }));
  ASSERT_TRUE(Eventually([&] { return rec->Count(Key("later")) >= 2; }));
  EXPECT_EQ(miglet::testing::MetricValue(reg, "mig_controller_reconcile_errors_total",
                                         {{"controller", "pools"}}),
            3);
  // From outside (the hub's change hook does this), even for an object the cache lacks.
  m->Enqueue("pools", {NS(), "ghost"});
  ASSERT_TRUE(Eventually([&] { return rec->Count(Key("ghost")) == 1; }));
  m->Stop();
}

TEST_F(ManagerTest, OnlyTheLeaderRunsControllers) {
  auto lease = [&](const std::string& id) {
    LeaderElectionConfig le;
    le.lease_namespace = NS();
    le.lease_name = "mig-controller";
    le.identity = id;
    return le;
  };
  auto rec_a = std::make_shared<Recorder>();
  auto rec_b = std::make_shared<Recorder>();
  ASSERT_TRUE(client_->Create(RunnerPools(), NS(), Pool("shared")).ok());
  auto a = Make(rec_a, lease("a"));
  ASSERT_TRUE(a->Start().ok());
  ASSERT_TRUE(Eventually([&] { return a->Leading(); }));
  auto b = Make(rec_b, lease("b"));
  ASSERT_TRUE(b->Start().ok());
  ASSERT_TRUE(Eventually([&] { return rec_a->Count(Key("shared")) >= 1; }));
  EXPECT_TRUE(a->Ready());
  EXPECT_TRUE(b->CachesSynced());
  EXPECT_FALSE(b->Leading());
  EXPECT_FALSE(b->Ready()) << "a follower reports not ready";
  EXPECT_EQ(rec_b->Count(Key("shared")), 0);

  // The leader stops and releases the Lease: the follower takes over and catches up on what
  // its cache already held.
  a->Stop();
  ASSERT_TRUE(Eventually([&] { return b->Leading(); }, std::chrono::seconds(30)));
  ASSERT_TRUE(Eventually([&] { return rec_b->Count(Key("shared")) >= 1; }));
  EXPECT_TRUE(b->Ready());
  b->Stop();
}

}  // namespace
}  // namespace miglet::kube::testing

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  ::testing::AddGlobalTestEnvironment(new miglet::kube::testing::ClusterEnvironment(""));
  return RUN_ALL_TESTS();
}
