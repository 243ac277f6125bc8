// Informers against a real kube-apiserver: sync and handlers, the apiserver killed and restarted
// mid-watch (on a control plane of its own), and (with --watch-cache=false, in
// kube_watch_expiry_test) 410 Gone after an etcd compaction.
#include <iostream>
#include <mutex>
#include <set>

#include "common.h"
#include "miglet/operator/kube/informer.h"

namespace miglet::kube::testing {
namespace {

TestCluster& C() { return ClusterEnvironment::Cluster(); }

// What the handlers saw, rebuilt into "key -> data.v" so it can be compared with the server.
struct Recorder {
  std::mutex mu;
  std::map<std::string, std::string> state;
  std::vector<std::string> log;
  int adds = 0, updates = 0, deletes = 0;

  ResourceEventHandler Handler() {
    return {[this](const Json& o) {
              std::lock_guard l(mu);
              ++adds;
              state[ObjectKey(o)] = V(o);
              log.push_back("add " + ObjectKey(o));
            },
            [this](const Json&, const Json& o) {
              std::lock_guard l(mu);
              ++updates;
              state[ObjectKey(o)] = V(o);
              log.push_back("update " + ObjectKey(o) + " " + V(o));
            },
            [this](const Json& o) {
              std::lock_guard l(mu);
              ++deletes;
              state.erase(ObjectKey(o));
              log.push_back("delete " + ObjectKey(o));
            }};
  }
  std::map<std::string, std::string> State() {
    std::lock_guard l(mu);
    auto out = state;
    out.erase(ns + "/kube-root-ca.crt");  // every namespace gets one
    return out;
  }
  std::string ns;
  static std::string V(const Json& o) {
    return o.contains("data") && o["data"].contains("v") ? o["data"]["v"].get<std::string>() : "";
  }
};

std::map<std::string, std::string> ServerState(KubeClient& c, const std::string& ns) {
  auto l = c.ListAll(ConfigMaps(), ns);
  EXPECT_TRUE(l.ok()) << l.status();
  std::map<std::string, std::string> out;
  if (!l.ok()) return out;
  for (const auto& o : l->items) {
    if (o["metadata"]["name"] == "kube-root-ca.crt") continue;
    out[ObjectKey(o)] = Recorder::V(o);
  }
  return out;
}

std::map<std::string, std::string> CacheState(Informer& inf) {
  std::map<std::string, std::string> out;
  for (const auto& o : inf.List()) {
    if (o["metadata"]["name"] == "kube-root-ca.crt") continue;
    out[ObjectKey(o)] = Recorder::V(o);
  }
  return out;
}

// Every object in the cache has the server's resourceVersion: the cache IS a fresh list.
bool CacheEqualsFreshList(KubeClient& c, Informer& inf, const std::string& ns) {
  auto l = c.ListAll(ConfigMaps(), ns);
  if (!l.ok()) return false;
  std::map<std::string, std::string> server, cache;
  for (const auto& o : l->items) server[ObjectKey(o)] = ResourceVersionOf(o);
  for (const auto& o : inf.List()) cache[ObjectKey(o)] = ResourceVersionOf(o);
  return server == cache;
}

TEST(InformerTest, SyncsThenFollowsChanges) {
  auto c = C().Client();
  const std::string ns = TestNamespace();
  auto cms = ResourceClient(*c, ConfigMaps(), ns);
  for (int i = 0; i < 30; ++i) {
    ASSERT_TRUE(cms.Create(ConfigMap(ns, "pre" + std::to_string(i), {{"v", "0"}})).ok());
  }
  Recorder rec;
  rec.ns = ns;
  auto inf = MakeInformer(c, {.resource = ConfigMaps(), .ns = ns, .page_size = 7});
  inf->AddEventHandler(rec.Handler());
  EXPECT_FALSE(inf->HasSynced());
  inf->Start();
  ASSERT_TRUE(inf->WaitForSync(std::chrono::seconds(60)));
  EXPECT_EQ(rec.State().size(), 30u);  // kube-root-ca.crt excluded
  EXPECT_EQ(rec.State(), ServerState(*c, ns));
  EXPECT_EQ(inf->Stats().lists, 1);

  ASSERT_TRUE(cms.MergePatch("pre3", {{"data", {{"v", "1"}}}}).ok());
  ASSERT_TRUE(cms.Delete("pre4").ok());
  ASSERT_TRUE(cms.Create(ConfigMap(ns, "new", {{"v", "9"}})).ok());
  auto want = ServerState(*c, ns);
  ASSERT_TRUE(Eventually([&] { return rec.State() == want; }));
  EXPECT_EQ(CacheState(*inf), want);
  auto got = inf->Get(ns + "/pre3");
  ASSERT_TRUE(got);
  EXPECT_EQ((*got)["data"]["v"], "1");
  EXPECT_FALSE(inf->Get(ns + "/pre4"));
  inf->Stop();  // returns: the open watch is cancelled
  EXPECT_EQ(inf->Stats().expired, 0);
}

TEST(InformerTest, ServerSideWatchTimeoutsRewatchWithoutRelisting) {
  auto c = C().Client();
  const std::string ns = TestNamespace();
  // A short timeoutSeconds: the apiserver ends the watch cleanly after 5-6 s, and the informer
  // must watch again from where it was, without a re-list. (The apiserver may send a bookmark
  // before the end; it does not always, so bookmarks are counted but not required here.)
  auto inf = MakeInformer(c, {.resource = ConfigMaps(),
                              .ns = ns,
                              .min_watch_timeout_seconds = 5,
                              .max_watch_timeout_seconds = 6});
  Recorder rec;
  rec.ns = ns;
  inf->AddEventHandler(rec.Handler());
  inf->Start();
  ASSERT_TRUE(inf->WaitForSync(std::chrono::seconds(60)));
  const std::string synced_rv = inf->LastResourceVersion();
  ASSERT_TRUE(Eventually([&] { return inf->Stats().watches >= 3; }))
      << "watches=" << inf->Stats().watches;
  EXPECT_GE(std::stoll(inf->LastResourceVersion()), std::stoll(synced_rv));
  EXPECT_EQ(inf->Stats().lists, 1);
  EXPECT_EQ(inf->Stats().watch_failures, 0);
  // Still following.
  ASSERT_TRUE(
      ResourceClient(*c, ConfigMaps(), ns).Create(ConfigMap(ns, "later", {{"v", "2"}})).ok());
  ASSERT_TRUE(Eventually([&] { return rec.State().count(ns + "/later") == 1; }));
  std::cout << "watches=" << inf->Stats().watches << " bookmarks=" << inf->Stats().bookmarks
            << "\n";
  inf->Stop();
}

TEST(InformerTest, ApiserverKilledMidWatchRecoversWithoutMissingUpdates) {
  // It kills the apiserver: a control plane of its own, not the shared one.
  auto own = TestCluster::Start();
  ASSERT_TRUE(own.ok()) << own.status();
  TestCluster& k = **own;
  auto c = k.Client();
  CreateNamespace(*c, "restart");
  auto cms = ResourceClient(*c, ConfigMaps(), "restart");
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(cms.Create(ConfigMap("restart", "o" + std::to_string(i), {{"v", "0"}})).ok());
  }
  Recorder rec;
  rec.ns = "restart";
  auto inf = MakeInformer(c, {.resource = ConfigMaps(), .ns = "restart"});
  inf->AddEventHandler(rec.Handler());
  inf->Start();
  ASSERT_TRUE(inf->WaitForSync(std::chrono::seconds(60)));
  ASSERT_TRUE(Eventually([&] { return inf->Stats().watches >= 1; }));

  ASSERT_TRUE(k.KillApiserver().ok());
  // The informer notices: its watch breaks and reconnecting fails while the apiserver is down.
  ASSERT_TRUE(Eventually([&] { return inf->Stats().watch_failures >= 1; }));
  ASSERT_TRUE(k.StartAgain().ok());
  // Changes made right after the restart, while the informer is still backing off or
  // reconnecting: updates, a delete and a create.
  for (int i = 0; i < 10; i += 2) {
    auto r = cms.MergePatch("o" + std::to_string(i), {{"data", {{"v", "after"}}}});
    ASSERT_TRUE(r.ok()) << r.status();
  }
  ASSERT_TRUE(cms.Delete("o9").ok());
  ASSERT_TRUE(cms.Create(ConfigMap("restart", "born-after", {{"v", "x"}})).ok());

  const auto want = ServerState(*c, "restart");
  ASSERT_TRUE(Eventually([&] { return rec.State() == want; }))
      << "handlers saw " << rec.State().size() << " objects";
  EXPECT_TRUE(CacheEqualsFreshList(*c, *inf, "restart"));
  EXPECT_GE(inf->Stats().watch_failures, 1);
  {
    std::lock_guard l(rec.mu);
    EXPECT_EQ(rec.state.count("restart/o9"), 0u);
    EXPECT_EQ(rec.state["restart/o4"], "after");
    EXPECT_EQ(rec.state["restart/born-after"], "x");
  }
  std::cout << "informer stats after the restart: lists=" << inf->Stats().lists
            << " watches=" << inf->Stats().watches << " expired=" << inf->Stats().expired
            << " watch_failures=" << inf->Stats().watch_failures << "\n";
  inf->Stop();
}

}  // namespace
}  // namespace miglet::kube::testing

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  ::testing::AddGlobalTestEnvironment(new miglet::kube::testing::ClusterEnvironment(""));
  return RUN_ALL_TESTS();
}
