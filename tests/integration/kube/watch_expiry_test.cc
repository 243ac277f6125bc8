// 410 Gone for real: the apiserver runs with --watch-cache=false so watches go to etcd, and
// `etcdctl compact` makes every older resourceVersion expire (hack/cluster/README.md).
#include <iostream>
#include <mutex>
#include <set>

#include "common.h"
#include "miglet/operator/kube/informer.h"

namespace miglet::kube::testing {
namespace {

TestCluster& C() { return ClusterEnvironment::Cluster(); }

TEST(WatchExpiryTest, WatchFromACompactedResourceVersionGets410) {
  auto c = C().Client();
  auto cms = ResourceClient(*c, ConfigMaps(), "default");
  auto list = c->List(ConfigMaps(), "default");
  ASSERT_TRUE(list.ok()) << list.status();
  const std::string old_rv = list->resource_version;
  ASSERT_TRUE(cms.Create(ConfigMap("default", "a", {{"v", "1"}})).ok());
  ASSERT_TRUE(cms.MergePatch("a", {{"data", {{"v", "2"}}}}).ok());
  auto rev = C().CompactEtcd();
  ASSERT_TRUE(rev.ok()) << rev.status();
  ASSERT_GT(*rev, std::stoll(old_rv));

  // The apiserver may answer with an HTTP 410 or with a 200 whose first event is an ERROR.
  absl::Status result;
  auto w = c->Watch(ConfigMaps(), "default", {.resource_version = old_rv, .timeout_seconds = 60});
  if (!w.ok()) {
    result = w.status();
  } else {
    auto ev = (*w)->Next();
    ASSERT_TRUE(ev.ok()) << ev.status();
    ASSERT_TRUE(ev->has_value());
    ASSERT_EQ((*ev)->type, WatchEvent::Type::kError) << (*ev)->object.dump();
    result = absl::Status(absl::StatusCode::kUnknown, "");
    const int code = (*ev)->object.value("code", 0);
    EXPECT_EQ(code, 410) << (*ev)->object.dump();
    result = StatusFromResponse(code, (*ev)->object.dump(), "", "watch");
  }
  EXPECT_TRUE(IsGone(result)) << result;
  EXPECT_NE(result.message().find("too old"), std::string::npos) << result;
}

TEST(WatchExpiryTest, InformerRelistsAfterCompactionAndEndsEqualToAFreshList) {
  auto admin = C().Client();
  CreateNamespace(*admin, "compact");
  auto cms = ResourceClient(*admin, ConfigMaps(), "compact");
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(cms.Create(ConfigMap("compact", "o" + std::to_string(i), {{"v", "0"}})).ok());
  }
  // The informer reaches the apiserver through a relay the test can cut: it loses its watch
  // while everyone else keeps writing.
  KubeConfig cfg = C().Config();
  const int api_port = std::stoi(cfg.server.substr(cfg.server.rfind(':') + 1));
  TcpRelay relay(api_port);
  cfg.server = "https://127.0.0.1:" + std::to_string(relay.port());
  auto ic = MakeKubeClient(cfg);
  ASSERT_TRUE(ic.ok()) << ic.status();

  std::mutex mu;
  std::set<std::string> deleted_seen;
  auto inf = MakeInformer(std::shared_ptr<KubeClient>(std::move(*ic)),
                          {.resource = ConfigMaps(), .ns = "compact", .page_size = 5});
  inf->AddEventHandler({nullptr, nullptr, [&](const Json& o) {
                          std::lock_guard l(mu);
                          deleted_seen.insert(ObjectKey(o));
                        }});
  inf->Start();
  ASSERT_TRUE(inf->WaitForSync(std::chrono::seconds(60)));
  ASSERT_TRUE(Eventually([&] { return inf->Stats().watches >= 1; }));
  const std::string informer_rv = inf->LastResourceVersion();

  relay.Cut();
  ASSERT_TRUE(Eventually([&] { return inf->Stats().watch_failures >= 1; }));
  // While it is away: updates, deletes, creates, then a compaction past all of it.
  for (int i = 0; i < 20; i += 3) {
    ASSERT_TRUE(cms.MergePatch("o" + std::to_string(i), {{"data", {{"v", "moved"}}}}).ok());
  }
  for (int i = 1; i < 20; i += 4) ASSERT_TRUE(cms.Delete("o" + std::to_string(i)).ok());
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(cms.Create(ConfigMap("compact", "n" + std::to_string(i), {{"v", "new"}})).ok());
  }
  auto rev = C().CompactEtcd();
  ASSERT_TRUE(rev.ok()) << rev.status();
  ASSERT_GT(*rev, std::stoll(informer_rv));
  relay.Restore();

  // The watch from the informer's old resourceVersion is refused with 410; it re-lists.
  ASSERT_TRUE(Eventually([&] { return inf->Stats().expired >= 1 && inf->Stats().lists >= 2; }))
      << "expired=" << inf->Stats().expired << " lists=" << inf->Stats().lists;
  auto fresh = admin->ListAll(ConfigMaps(), "compact");
  ASSERT_TRUE(fresh.ok());
  ASSERT_TRUE(Eventually([&] {
    std::map<std::string, std::string> server, cache;
    for (const auto& o : fresh->items) server[ObjectKey(o)] = ResourceVersionOf(o);
    for (const auto& o : inf->List()) cache[ObjectKey(o)] = ResourceVersionOf(o);
    return server == cache;
  }));
  // The re-list told the handlers about the objects deleted while it was away.
  std::lock_guard l(mu);
  for (int i = 1; i < 20; i += 4) {
    EXPECT_EQ(deleted_seen.count("compact/o" + std::to_string(i)), 1u) << i;
  }
  EXPECT_EQ((*inf->Get("compact/o3"))["data"]["v"], "moved");
  EXPECT_TRUE(inf->Get("compact/n4").has_value());
  inf->Stop();
}

}  // namespace
}  // namespace miglet::kube::testing

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  ::testing::AddGlobalTestEnvironment(
      new miglet::kube::testing::ClusterEnvironment("--watch-cache=false"));
  return RUN_ALL_TESTS();
}
