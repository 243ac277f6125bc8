// The kube client against a real kube-apiserver (hack/cluster/up.sh): CRUD, subresources,
// conflicts, server-side apply, validation errors, watch order, events and credentials.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iostream>

#include "absl/strings/escaping.h"
#include "common.h"
#include "miglet/common/clock.h"
#include "miglet/operator/github/credentials.h"
#include "miglet/operator/kube/event_recorder.h"

namespace miglet::kube::testing {
namespace {

TestCluster& C() { return ClusterEnvironment::Cluster(); }
std::string NS() { return TestNamespace(); }

// The real CRDs (deploy/crds), as the controller serves them.
void InstallCrd(KubeClient& c) {
  auto s = C().InstallCrds();
  ASSERT_TRUE(s.ok()) << s;
  ASSERT_TRUE(Eventually([&] { return c.List(RunnerPools(), NS()).ok(); }));
}

Json Pool(const std::string& name, int replicas) {
  return {{"apiVersion", "miglet.dev/v1alpha1"},
          {"kind", "RunnerPool"},
          {"metadata", {{"name", name}, {"namespace", NS()}}},
          {"spec",
           {{"replicas", replicas},
            {"github", {{"url", "https://github.com/acme"}, {"tokenSecretRef", {{"name", "pat"}}}}},
            {"runner", {{"labels", {"linux"}}}}}}};
}

TEST(KubeClientTest, CustomResourceCrud) {
  auto c = C().Client();
  InstallCrd(*c);
  auto pools = RunnerPoolsIn(*c, NS());
  auto created = pools.Create(Pool("p1", 2));
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_FALSE(ResourceVersionOf(*created).empty());
  EXPECT_EQ((*created)["metadata"].value("generation", 0), 1);

  auto dup = pools.Create(Pool("p1", 2));
  EXPECT_TRUE(kube::IsAlreadyExists(dup.status())) << dup.status();

  auto got = pools.Get("p1");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ((*got)["spec"]["replicas"], 2);

  Json upd = *got;
  upd["spec"]["replicas"] = 3;
  auto updated = pools.Update(upd);
  ASSERT_TRUE(updated.ok()) << updated.status();
  EXPECT_EQ((*updated)["spec"]["replicas"], 3);
  EXPECT_EQ((*updated)["metadata"].value("generation", 0), 2);

  auto patched = pools.MergePatch("p1", {{"spec", {{"runner", {{"labels", {"linux", "x64"}}}}}}});
  ASSERT_TRUE(patched.ok()) << patched.status();
  EXPECT_EQ((*patched)["spec"]["runner"]["labels"], Json({"linux", "x64"}));
  EXPECT_EQ((*patched)["spec"]["replicas"], 3);  // a merge patch leaves the rest alone

  ASSERT_TRUE(pools.Create(Pool("p2", 0)).ok());
  auto list = pools.List();
  ASSERT_TRUE(list.ok()) << list.status();
  ASSERT_EQ(list->items.size(), 2u);
  EXPECT_EQ(list->items[0]["kind"], "RunnerPool");
  EXPECT_FALSE(list->resource_version.empty());

  ASSERT_TRUE(pools.Delete("p1").ok());
  auto gone = pools.Get("p1");
  EXPECT_TRUE(kube::IsNotFound(gone.status())) << gone.status();
  EXPECT_EQ(gone.status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(kube::IsNotFound(pools.Delete("p1")));
}

TEST(KubeClientTest, InvalidObjectGets422WithTheApiMessage) {
  auto c = C().Client();
  InstallCrd(*c);
  auto r = RunnerPoolsIn(*c, NS()).Create(Pool("bad", -1));
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(IsInvalid(r.status())) << r.status();
  auto e = GetKubeError(r.status());
  ASSERT_TRUE(e);
  EXPECT_EQ(e->code, 422);
  EXPECT_EQ(e->reason, "Invalid");
  // The API's own words: the field and the rule.
  EXPECT_NE(e->message.find("spec.replicas"), std::string::npos) << e->message;
  EXPECT_NE(e->message.find("greater than or equal to 0"), std::string::npos) << e->message;
  EXPECT_NE(r.status().message().find("spec.replicas"), std::string::npos);
}

TEST(KubeClientTest, StatusAndScaleSubresources) {
  auto c = C().Client();
  InstallCrd(*c);
  auto pools = RunnerPoolsIn(*c, NS());
  auto p = pools.Create(Pool("scaled", 1));
  ASSERT_TRUE(p.ok()) << p.status();

  // Status goes through /status only: a status change on the main resource is dropped...
  Json with_status = *p;
  with_status["status"] = {{"replicas", 7}};
  auto main_put = pools.Update(with_status);
  ASSERT_TRUE(main_put.ok()) << main_put.status();
  EXPECT_FALSE(main_put->contains("status") && (*main_put)["status"].contains("replicas"));
  // ...and /status does not touch the spec.
  Json st = *main_put;
  st["spec"]["replicas"] = 99;
  st["status"] = {{"replicas", 1}, {"readyReplicas", 1}, {"selector", "pool=scaled"}};
  auto status_put = pools.UpdateStatus(st);
  ASSERT_TRUE(status_put.ok()) << status_put.status();
  EXPECT_EQ((*status_put)["status"]["readyReplicas"], 1);
  EXPECT_EQ((*status_put)["spec"]["replicas"], 1);
  auto status_patch = pools.MergePatchStatus("scaled", {{"status", {{"readyReplicas", 0}}}});
  ASSERT_TRUE(status_patch.ok()) << status_patch.status();
  EXPECT_EQ((*status_patch)["status"]["readyReplicas"], 0);

  auto scale = pools.GetScale("scaled");
  ASSERT_TRUE(scale.ok()) << scale.status();
  EXPECT_EQ((*scale)["kind"], "Scale");
  EXPECT_EQ((*scale)["spec"]["replicas"], 1);
  EXPECT_EQ((*scale)["status"]["replicas"], 1);
  EXPECT_EQ((*scale)["status"]["selector"], "pool=scaled");

  auto rescaled = pools.SetReplicas("scaled", 5);
  ASSERT_TRUE(rescaled.ok()) << rescaled.status();
  EXPECT_EQ((*rescaled)["spec"]["replicas"], 5);
  auto after = pools.Get("scaled");
  ASSERT_TRUE(after.ok());
  EXPECT_EQ((*after)["spec"]["replicas"], 5);

  // Update through /scale, the way `kubectl scale` and the HPA do it.
  Json put_scale = *rescaled;
  put_scale["spec"]["replicas"] = 2;
  auto put = c->Update(RunnerPools(), NS(), put_scale, "scale");
  ASSERT_TRUE(put.ok()) << put.status();
  EXPECT_EQ((*pools.Get("scaled"))["spec"]["replicas"], 2);

  // A status merge patch that carries the resourceVersion it was derived from is refused when
  // the object changed since (the operator's status writes rely on this).
  const std::string rv = ResourceVersionOf(*pools.Get("scaled"));
  ASSERT_TRUE(pools.MergePatchStatus("scaled", {{"status", {{"readyReplicas", 1}}}}).ok());
  auto stale_patch = pools.MergePatchStatus(
      "scaled", {{"metadata", {{"resourceVersion", rv}}}, {"status", {{"readyReplicas", 3}}}});
  ASSERT_FALSE(stale_patch.ok());
  EXPECT_TRUE(IsConflict(stale_patch.status())) << stale_patch.status();
  auto fresh = pools.Get("scaled");
  ASSERT_TRUE(fresh.ok());
  EXPECT_EQ((*fresh)["status"]["readyReplicas"], 1);
  auto fresh_patch = pools.MergePatchStatus(
      "scaled", {{"metadata", {{"resourceVersion", ResourceVersionOf(*fresh)}}},
                 {"status", {{"readyReplicas", 0}}}});
  ASSERT_TRUE(fresh_patch.ok()) << fresh_patch.status();
  EXPECT_EQ((*fresh_patch)["status"]["readyReplicas"], 0);
}

TEST(KubeClientTest, StaleUpdateIsA409Conflict) {
  auto c = C().Client();
  auto secrets = SecretsIn(*c, NS());
  auto s = secrets.Create({{"apiVersion", "v1"},
                           {"kind", "Secret"},
                           {"metadata", {{"name", "creds"}}},
                           {"stringData", {{"token", "a"}}}});
  ASSERT_TRUE(s.ok()) << s.status();
  Json first = *s;
  first.erase("stringData");
  first["data"] = {{"token", absl::Base64Escape("b")}};
  ASSERT_TRUE(secrets.Update(first).ok());
  // The same resourceVersion again: someone else (we) wrote in between.
  Json stale = *s;
  stale.erase("stringData");
  stale["data"] = {{"token", absl::Base64Escape("c")}};
  auto r = secrets.Update(stale);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(IsConflict(r.status())) << r.status();
  EXPECT_EQ(GetKubeError(r.status())->code, 409);
  EXPECT_EQ(GetKubeError(r.status())->reason, "Conflict");
  EXPECT_NE(r.status().message().find("the object has been modified"), std::string::npos);
  auto now = secrets.Get("creds");
  ASSERT_TRUE(now.ok());
  EXPECT_EQ((*now)["data"]["token"], absl::Base64Escape("b"));

  // A delete with a stale precondition is refused the same way.
  DeleteOptions d;
  d.precondition_resource_version = ResourceVersionOf(*s);
  EXPECT_TRUE(IsConflict(secrets.Delete("creds", d)));
}

// The GitHub client's credentials, read from Secrets as the operator will (stringData becomes
// data on the server, so this is the API's own encoding).
TEST(KubeClientTest, GitHubCredentialsFromASecret) {
  auto c = C().Client();
  auto secrets = SecretsIn(*c, NS());
  auto key = C().Sh("openssl genrsa 2048 2>/dev/null");
  ASSERT_TRUE(key.ok()) << key.status();
  auto secret = [](const std::string& name, Json string_data) {
    return Json{{"apiVersion", "v1"},
                {"kind", "Secret"},
                {"metadata", {{"name", name}}},
                {"stringData", std::move(string_data)}};
  };
  ASSERT_TRUE(secrets.Create(secret("gh-pat", {{"github_token", "ghp_x"}})).ok());
  ASSERT_TRUE(secrets
                  .Create(secret("gh-app", {{"github_app_id", "123"},
                                            {"github_app_installation_id", "456"},
                                            {"github_app_private_key", *key}}))
                  .ok());
  ASSERT_TRUE(secrets
                  .Create(secret("gh-broken", {{"github_app_id", "123"},
                                               {"github_app_private_key", "not a key"}}))
                  .ok());

  auto pat = github::LoadCredentials(*c, NS(), "gh-pat");
  ASSERT_TRUE(pat.ok()) << pat.status();
  EXPECT_EQ(pat->token, "ghp_x");
  auto app = github::LoadCredentials(*c, NS(), "gh-app");
  ASSERT_TRUE(app.ok()) << app.status();
  EXPECT_EQ(app->app_id, 123);
  EXPECT_EQ(app->installation_id, 456);
  auto broken = github::LoadCredentials(*c, NS(), "gh-broken");
  ASSERT_FALSE(broken.ok());
  EXPECT_NE(broken.status().message().find(
                "Secret " + NS() + "/gh-broken: key github_app_private_key: not a PEM private key"),
            std::string::npos)
      << broken.status();
  auto missing = github::LoadCredentials(*c, NS(), "gh-none");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("Secret " + NS() + "/gh-none not found"),
            std::string::npos)
      << missing.status();
}

TEST(KubeClientTest, ServerSideApplyTwiceIsIdempotent) {
  auto c = C().Client();
  auto cms = ResourceClient(*c, ConfigMaps(), NS());
  const Json obj = ConfigMap(NS(), "applied", {{"a", "1"}, {"b", "2"}});
  ApplyOptions mine{"mig-controller", false};
  auto first = cms.Apply(obj, mine);
  ASSERT_TRUE(first.ok()) << first.status();
  auto second = cms.Apply(obj, mine);
  ASSERT_TRUE(second.ok()) << second.status();
  // Nothing changed, so nothing was written.
  EXPECT_EQ(ResourceVersionOf(*first), ResourceVersionOf(*second));
  EXPECT_EQ((*second)["data"], obj["data"]);
  bool managed = false;
  for (const auto& mf : (*second)["metadata"]["managedFields"]) {
    managed |= mf.value("manager", "") == "mig-controller" && mf.value("operation", "") == "Apply";
  }
  EXPECT_TRUE(managed);

  // Another manager claiming a field we own: 409 without force, taken over with it.
  const Json theirs = ConfigMap(NS(), "applied", {{"a", "other"}});
  auto conflict = cms.Apply(theirs, {"someone-else", false});
  EXPECT_TRUE(IsConflict(conflict.status())) << conflict.status();
  auto forced = cms.Apply(theirs, {"someone-else", true});
  ASSERT_TRUE(forced.ok()) << forced.status();
  EXPECT_EQ((*forced)["data"]["a"], "other");
  EXPECT_EQ((*forced)["data"]["b"], "2");
}

TEST(KubeClientTest, PodsSecretsAndPagination) {
  auto c = C().Client();
  auto pods = PodsIn(*c, NS());
  Json pod = {{"apiVersion", "v1"},
              {"kind", "Pod"},
              {"metadata", {{"name", "runner-0"}, {"labels", {{"pool", "a"}}}}},
              {"spec", {{"containers", {{{"name", "runner"}, {"image", "runner:latest"}}}}}}};
  auto created = pods.Create(pod);
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_EQ((*created)["status"]["phase"], "Pending");  // no scheduler here
  pod["metadata"]["name"] = "runner-1";
  pod["metadata"]["labels"]["pool"] = "b";
  ASSERT_TRUE(pods.Create(pod).ok());
  auto a = pods.List({.label_selector = "pool=a"});
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_EQ(a->items.size(), 1u);
  EXPECT_EQ(ObjectKey(a->items[0]), NS() + "/runner-0");

  // pods/status, written the way a kubelet would.
  auto st = pods.MergePatchStatus("runner-0", {{"status", {{"phase", "Running"}}}});
  ASSERT_TRUE(st.ok()) << st.status();
  EXPECT_EQ((*st)["status"]["phase"], "Running");

  auto secrets = SecretsIn(*c, NS());
  for (int i = 0; i < 7; ++i) {
    auto s = secrets.Create({{"apiVersion", "v1"},
                             {"kind", "Secret"},
                             {"metadata", {{"name", "s" + std::to_string(i)}}},
                             {"stringData", {{"k", std::to_string(i)}}}});
    ASSERT_TRUE(s.ok()) << s.status();
  }
  // Pages of 3: 3 + 3 + 1, linked by continue tokens.
  ListOptions o;
  o.limit = 3;
  std::vector<std::string> names;
  int pages = 0;
  while (true) {
    auto page = c->List(Secrets(), NS(), o);
    ASSERT_TRUE(page.ok()) << page.status();
    ++pages;
    EXPECT_LE(page->items.size(), 3u);
    for (const auto& s : page->items) names.push_back(s["metadata"]["name"]);
    if (page->continue_token.empty()) break;
    o.continue_token = page->continue_token;
  }
  EXPECT_EQ(pages, 3);
  EXPECT_EQ(names, (std::vector<std::string>{"s0", "s1", "s2", "s3", "s4", "s5", "s6"}));
  auto all = secrets.List({.limit = 2});
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->items.size(), 7u);
  auto decoded = secrets.Get("s4");
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ((*decoded)["data"]["k"], absl::Base64Escape("4"));

  ASSERT_TRUE(pods.Delete("runner-0", {.grace_period_seconds = 0}).ok());
  ASSERT_TRUE(secrets.Delete("s0").ok());
  EXPECT_TRUE(kube::IsNotFound(secrets.Get("s0").status()));
}

TEST(KubeClientTest, WatchDeliversEventsInOrder) {
  auto c = C().Client();
  const std::string ns = NS();
  auto list = c->List(ConfigMaps(), ns);
  ASSERT_TRUE(list.ok()) << list.status();
  auto w = c->Watch(ConfigMaps(), ns,
                    {.resource_version = list->resource_version, .timeout_seconds = 300});
  ASSERT_TRUE(w.ok()) << w.status();
  auto cms = ResourceClient(*c, ConfigMaps(), ns);
  ASSERT_TRUE(cms.Create(ConfigMap(ns, "w1", {{"v", "0"}})).ok());
  for (int i = 1; i <= 5; ++i) {
    ASSERT_TRUE(cms.MergePatch("w1", {{"data", {{"v", std::to_string(i)}}}}).ok());
  }
  ASSERT_TRUE(cms.Create(ConfigMap(ns, "w2", {})).ok());
  ASSERT_TRUE(cms.Delete("w1").ok());

  std::vector<std::string> seen;
  int64_t last_rv = std::stoll(list->resource_version);
  while (seen.size() < 8) {
    auto ev = (*w)->Next();
    ASSERT_TRUE(ev.ok()) << ev.status();
    ASSERT_TRUE(ev->has_value()) << "watch ended early";
    const WatchEvent& e = **ev;
    if (e.type == WatchEvent::Type::kBookmark) continue;
    // kube-controller-manager publishes kube-root-ca.crt into every new namespace, possibly
    // after our list: it is not one of ours.
    if (e.object["metadata"]["name"] == "kube-root-ca.crt") continue;
    const int64_t rv = std::stoll(ResourceVersionOf(e.object));
    EXPECT_GT(rv, last_rv);
    last_rv = rv;
    const char* t = e.type == WatchEvent::Type::kAdded      ? "ADDED"
                    : e.type == WatchEvent::Type::kModified ? "MODIFIED"
                    : e.type == WatchEvent::Type::kDeleted  ? "DELETED"
                                                            : "ERROR";
    std::string entry = std::string(t) + " " + e.object["metadata"]["name"].get<std::string>();
    if (e.type != WatchEvent::Type::kDeleted && e.object["metadata"]["name"] == "w1") {
      entry += " v=" + e.object["data"]["v"].get<std::string>();
    }
    seen.push_back(entry);
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"ADDED w1 v=0", "MODIFIED w1 v=1", "MODIFIED w1 v=2",
                                            "MODIFIED w1 v=3", "MODIFIED w1 v=4", "MODIFIED w1 v=5",
                                            "ADDED w2", "DELETED w1"}));
  (*w)->Cancel();
}

TEST(KubeClientTest, EventRecorderAggregatesRepeats) {
  auto c = C().Client();
  auto cms = ResourceClient(*c, ConfigMaps(), NS());
  auto obj = cms.Create(ConfigMap(NS(), "subject", {}));
  ASSERT_TRUE(obj.ok()) << obj.status();
  auto rec = MakeEventRecorder(c, "mig-controller", "test-host", MakeRealClock());
  ASSERT_TRUE(rec->Record(*obj, "Warning", "AgentLost", "no heartbeat for 45s").ok());
  ASSERT_TRUE(rec->Record(*obj, "Warning", "AgentLost", "no heartbeat for 45s").ok());
  ASSERT_TRUE(rec->Record(*obj, "Warning", "AgentLost", "no heartbeat for 45s").ok());
  ASSERT_TRUE(rec->Record(*obj, "Normal", "Registered", "runner registered").ok());

  auto events = c->ListAll(Events(), NS(), {.field_selector = "involvedObject.name=subject"});
  ASSERT_TRUE(events.ok()) << events.status();
  ASSERT_EQ(events->items.size(), 2u);
  std::map<std::string, Json> by_reason;
  for (auto& e : events->items) by_reason[e["reason"]] = e;
  EXPECT_EQ(by_reason["AgentLost"]["count"], 3);
  EXPECT_EQ(by_reason["AgentLost"]["type"], "Warning");
  EXPECT_EQ(by_reason["AgentLost"]["involvedObject"]["uid"], (*obj)["metadata"]["uid"]);
  EXPECT_EQ(by_reason["AgentLost"]["source"]["component"], "mig-controller");
  EXPECT_FALSE(by_reason["AgentLost"].value("lastTimestamp", "").empty());
  EXPECT_EQ(by_reason["Registered"]["count"], 1);
}

// ---------------------------------------------------------------- credentials

std::string WriteFile(const std::string& name, const std::string& content) {
  const std::string path = C().dir() + "/" + name;
  std::ofstream(path) << content;
  return path;
}

std::string TokenKubeconfig(const KubeConfig& admin, const std::string& token_line) {
  return "apiVersion: v1\nkind: Config\ncurrent-context: sa\n"
         "clusters:\n- name: local\n  cluster:\n    server: " +
         admin.server + "\n    certificate-authority-data: " + absl::Base64Escape(admin.ca_pem) +
         "\ncontexts:\n- name: sa\n  context: {cluster: local, user: sa, namespace: default}\n"
         "users:\n- name: sa\n  user:\n    " +
         token_line + "\n";
}

TEST(KubeCredentialsTest, ClientCertificateKubeconfig) {
  const KubeConfig cfg = C().Config();
  EXPECT_FALSE(cfg.client_cert_pem.empty());
  EXPECT_TRUE(cfg.token.empty());
  auto c = MakeKubeClient(cfg);
  ASSERT_TRUE(c.ok()) << c.status();
  auto ns = (*c)->Get(Namespaces(), "", "kube-system");
  ASSERT_TRUE(ns.ok()) << ns.status();
  EXPECT_EQ((*ns)["metadata"]["name"], "kube-system");
}

TEST(KubeCredentialsTest, ServiceAccountBearerToken) {
  auto admin = C().Client();
  ASSERT_TRUE(admin
                  ->Create(ServiceAccounts(), NS(),
                           {{"apiVersion", "v1"},
                            {"kind", "ServiceAccount"},
                            {"metadata", {{"name", "reader"}}}})
                  .ok());
  auto token = C().Sh("kubectl create token reader -n " + NS());
  ASSERT_TRUE(token.ok()) << token.status();
  std::string t = *token;
  while (!t.empty() && (t.back() == '\n' || t.back() == ' ')) t.pop_back();
  ASSERT_FALSE(t.empty());

  const std::string path =
      WriteFile("token.kubeconfig", TokenKubeconfig(C().Config(), "token: " + t));
  auto cfg = LoadKubeconfig(path);
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  EXPECT_EQ(cfg->token, t);
  EXPECT_TRUE(cfg->client_cert_pem.empty());
  auto c = MakeKubeClient(*cfg);
  ASSERT_TRUE(c.ok()) << c.status();
  // Authenticated as the service account, but RBAC has granted it nothing yet.
  auto denied = (*c)->List(ConfigMaps(), NS());
  ASSERT_FALSE(denied.ok());
  EXPECT_EQ(denied.status().code(), absl::StatusCode::kPermissionDenied) << denied.status();
  EXPECT_NE(denied.status().message().find("system:serviceaccount:" + NS() + ":reader"),
            std::string::npos)
      << denied.status();
  ASSERT_TRUE(C().Sh("kubectl create rolebinding reader --clusterrole=view --serviceaccount=" +
                     NS() + ":reader -n " + NS())
                  .ok());
  ASSERT_TRUE(Eventually([&] { return (*c)->List(ConfigMaps(), NS()).ok(); }));

  // A token that is not one: 401.
  auto bad_cfg = *cfg;
  bad_cfg.token = "not-a-token";
  auto bad = MakeKubeClient(bad_cfg);
  ASSERT_TRUE(bad.ok());
  auto unauth = (*bad)->List(ConfigMaps(), NS());
  EXPECT_EQ(unauth.status().code(), absl::StatusCode::kUnauthenticated) << unauth.status();

  // A token file is re-read when it changes (rotated projected tokens).
  const std::string token_file = WriteFile("sa-token", "not-a-token\n");
  auto file_cfg = *cfg;
  file_cfg.token.clear();
  file_cfg.token_file = token_file;
  auto rotating = MakeKubeClient(file_cfg);
  ASSERT_TRUE(rotating.ok());
  EXPECT_EQ((*rotating)->List(ConfigMaps(), NS()).status().code(),
            absl::StatusCode::kUnauthenticated);
  WriteFile("sa-token.new", t + "\n");
  std::filesystem::rename(token_file + ".new", token_file);  // like kubelet's atomic swap
  auto after = (*rotating)->List(ConfigMaps(), NS());
  EXPECT_TRUE(after.ok()) << after.status();
}

TEST(KubeCredentialsTest, WrongCaIsAClearError) {
  auto other_ca = C().Sh("cd " + C().dir() +
                         " && openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=other-ca"
                         " -keyout other-ca.key -out other-ca.crt 2>/dev/null && cat other-ca.crt");
  ASSERT_TRUE(other_ca.ok()) << other_ca.status();
  KubeConfig cfg = C().Config();
  cfg.ca_pem = *other_ca;
  cfg.ca_source = C().dir() + "/other-ca.crt";
  auto c = MakeKubeClient(cfg);
  ASSERT_TRUE(c.ok()) << c.status();
  auto r = (*c)->Get(Namespaces(), "", "default");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  const std::string msg(r.status().message());
  std::cout << "wrong-CA error: " << msg << "\n";
  // Names the server, that the certificate failed verification, and which CA was used.
  EXPECT_NE(msg.find(cfg.server), std::string::npos) << msg;
  EXPECT_NE(msg.find("certificate"), std::string::npos) << msg;
  EXPECT_NE(msg.find("other-ca.crt"), std::string::npos) << msg;
  EXPECT_NE(msg.find("unable to get local issuer certificate"), std::string::npos) << msg;

  // Material that is not PEM fails when the client is made, naming the field.
  KubeConfig broken = C().Config();
  broken.client_key_pem = "garbage";
  auto b = MakeKubeClient(broken);
  EXPECT_FALSE(b.ok());
}

}  // namespace
}  // namespace miglet::kube::testing

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  ::testing::AddGlobalTestEnvironment(new miglet::kube::testing::ClusterEnvironment(""));
  return RUN_ALL_TESTS();
}
