// The RunnerPool and RunnerVM CRDs (deploy/crds) as a person meets them through the real
// apiserver and kubectl: explain, printer columns, short names, defaults, CEL refusals that
// name the field, `kubectl scale` through the scale subresource, the samples.
#include <gmock/gmock.h>

#include "common.h"

namespace miglet::kube::testing {
namespace {

using ::testing::HasSubstr;

TestCluster& C() { return ClusterEnvironment::Cluster(); }
std::string NS() { return TestNamespace(); }

class CrdTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = C().InstallCrds();
    ASSERT_TRUE(s.ok()) << s;
    c_ = C().Client();
  }

  static Json Pool(const std::string& name, Json spec) {
    return {{"apiVersion", "miglet.dev/v1alpha1"},
            {"kind", "RunnerPool"},
            {"metadata", {{"name", name}}},
            {"spec", std::move(spec)}};
  }
  static Json Github(const std::string& url = "https://github.com/acme") {
    return {{"url", url}, {"tokenSecretRef", {{"name", "pat"}}}};
  }

  // The apiserver's refusal of `obj` (a RunnerPool or RunnerVM), or "" when it was accepted.
  std::string Refusal(const Resource& r, const Json& obj) {
    auto created = c_->Create(r, NS(), obj);
    if (created.ok()) return "";
    EXPECT_TRUE(IsInvalid(created.status())) << created.status();
    return std::string(created.status().message());
  }

  std::shared_ptr<KubeClient> c_;
};

TEST_F(CrdTest, KubectlExplainDescribesTheFields) {
  auto e = C().Sh("kubectl explain runnerpool.spec.scaleDown.drainTimeoutSeconds");
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_THAT(*e, HasSubstr("drainTimeoutSeconds <integer>"));
  EXPECT_THAT(*e, HasSubstr("terminationGracePeriodSeconds"));
  e = C().Sh("kubectl explain rvm.spec.desiredState");
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_THAT(*e, HasSubstr("Drained: finish the current job, take"));
  EXPECT_THAT(*e, HasSubstr("ENUM"));
  e = C().Sh("kubectl explain runnerpool.spec.github.url");
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_THAT(*e, HasSubstr("https://github.com/enterprises/ENTERPRISE"));
}

TEST_F(CrdTest, PrinterColumnsAndShortNames) {
  auto p = Pool("ci", {{"replicas", 2}, {"github", Github()}});
  ASSERT_TRUE(c_->Create(RunnerPools(), NS(), p).ok());
  ASSERT_TRUE(c_->Create(RunnerVMs(), NS(),
                         {{"apiVersion", "miglet.dev/v1alpha1"},
                          {"kind", "RunnerVM"},
                          {"metadata", {{"name", "ci-abcde"}}},
                          {"spec", {{"poolName", "ci"}}}})
                  .ok());
  auto rp = C().Sh("kubectl get rp -n " + NS());
  ASSERT_TRUE(rp.ok()) << rp.status();
  EXPECT_THAT(*rp, ::testing::ContainsRegex("^NAME +DESIRED +CURRENT +READY +IDLE +BUSY +AGE\n"));
  EXPECT_THAT(*rp, ::testing::ContainsRegex("\nci +2 "));
  auto rvm = C().Sh("kubectl get rvm -n " + NS());
  ASSERT_TRUE(rvm.ok()) << rvm.status();
  EXPECT_THAT(*rvm, ::testing::ContainsRegex("^NAME +POOL +PHASE +RUNNER +JOB +LAST-SEEN +AGE\n"));
  EXPECT_THAT(*rvm, ::testing::ContainsRegex("\nci-abcde +ci "));
  // The miglet category lists both.
  auto all = C().Sh("kubectl get miglet -n " + NS() + " -o name");
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_THAT(*all, HasSubstr("runnerpool.miglet.dev/ci"));
  EXPECT_THAT(*all, HasSubstr("runnervm.miglet.dev/ci-abcde"));
}

TEST_F(CrdTest, DefaultsAreFilledIn) {
  auto got = c_->Create(RunnerPools(), NS(), Pool("min", {{"github", Github()}}));
  ASSERT_TRUE(got.ok()) << got.status();
  const Json& s = (*got)["spec"];
  EXPECT_EQ(s["replicas"], 1);
  EXPECT_EQ(s["provider"], "pod");
  EXPECT_EQ(s["github"]["runnerGroup"], "Default");
  EXPECT_EQ(s["runner"]["labels"], Json({"self-hosted", "linux"}));
  EXPECT_EQ(s["runner"]["ephemeral"], true);
  EXPECT_EQ(s["runner"]["image"], "ghcr.io/actions/actions-runner:latest");
  EXPECT_EQ(s["agent"]["logLevel"], "info");
  EXPECT_EQ(s["agent"]["heartbeatInterval"], "15s");
  EXPECT_EQ(s["scaleDown"]["drainTimeoutSeconds"], 3600);
  auto vm = c_->Create(RunnerVMs(), NS(),
                       {{"apiVersion", "miglet.dev/v1alpha1"},
                        {"kind", "RunnerVM"},
                        {"metadata", {{"name", "min-x"}}},
                        {"spec", {{"poolName", "min"}}}});
  ASSERT_TRUE(vm.ok()) << vm.status();
  EXPECT_EQ((*vm)["spec"]["desiredState"], "Running");
}

TEST_F(CrdTest, BadObjectsAreRefusedNamingTheField) {
  struct Case {
    Json spec;
    std::string want;
  };
  const std::vector<Case> cases = {
      {{{"replicas", -1}, {"github", Github()}},
       "spec.replicas: Invalid value: -1: spec.replicas in body should be greater than or equal "
       "to 0"},
      {{{"github", Github("https://github.com/a/b/c")}},
       "spec.github.url: Invalid value: \"string\": must be a GitHub URL"},
      {{{"github", Github("github.com/acme")}}, "spec.github.url: Invalid value"},
      {{{"github", Github("https://github.com/enterprises/")}}, "spec.github.url: Invalid value"},
      {{{"github", {{"url", "https://github.com/acme"}}}},
       "spec.github: Invalid value: \"object\": exactly one of appSecretRef and tokenSecretRef "
       "must be set"},
      {{{"github",
         {{"url", "https://github.com/acme"},
          {"tokenSecretRef", {{"name", "a"}}},
          {"appSecretRef", {{"name", "b"}}}}}},
       "exactly one of appSecretRef and tokenSecretRef must be set"},
      {{{"github", Github("https://github.com/acme/app")},
        {"scaleDown", {{"drainTimeoutSeconds", -5}}}},
       "spec.scaleDown.drainTimeoutSeconds: Invalid value: -5"},
      {{{"github",
         {{"url", "https://github.com/acme/app"},
          {"tokenSecretRef", {{"name", "a"}}},
          {"runnerGroup", "gpu"}}}},
       "a repository's runners can only be in the Default runner group"},
      {{{"github", Github()}, {"provider", "vm"}}, "spec.provider: Unsupported value: \"vm\""},
      {{{"github", Github()}, {"runner", {{"labels", Json::array()}}}},
       "spec.runner.labels: Invalid value"},
      {{{"github", Github()}, {"agent", {{"heartbeatInterval", "often"}}}},
       "spec.agent.heartbeatInterval: Invalid value: \"often\""},
  };
  int i = 0;
  for (const auto& tc : cases) {
    const std::string why = Refusal(RunnerPools(), Pool("bad" + std::to_string(i++), tc.spec));
    EXPECT_THAT(why, HasSubstr(tc.want)) << tc.spec.dump();
  }
  // The same good spec is accepted: the refusals above are about their fields alone.
  EXPECT_EQ(
      Refusal(RunnerPools(),
              Pool("good", {{"github", Github("https://ghe.example.com:8443/enterprises/big")}})),
      "");
}

TEST_F(CrdTest, ImmutableFieldsStayPut) {
  ASSERT_TRUE(c_->Create(RunnerPools(), NS(), Pool("p", {{"github", Github()}})).ok());
  auto changed = c_->Patch(RunnerPools(), NS(), "p", PatchType::kMerge,
                           {{"spec", {{"provider", "external"}}}});
  ASSERT_FALSE(changed.ok());
  EXPECT_THAT(std::string(changed.status().message()),
              HasSubstr("spec.provider: Invalid value: \"string\": provider cannot be changed"));
  ASSERT_TRUE(c_->Create(RunnerVMs(), NS(),
                         {{"apiVersion", "miglet.dev/v1alpha1"},
                          {"kind", "RunnerVM"},
                          {"metadata", {{"name", "p-1"}}},
                          {"spec", {{"poolName", "p"}}}})
                  .ok());
  auto moved =
      c_->Patch(RunnerVMs(), NS(), "p-1", PatchType::kMerge, {{"spec", {{"poolName", "q"}}}});
  ASSERT_FALSE(moved.ok());
  EXPECT_THAT(std::string(moved.status().message()),
              HasSubstr("spec.poolName: Invalid value: \"string\": poolName cannot be changed"));
  auto bad_state = c_->Patch(RunnerVMs(), NS(), "p-1", PatchType::kMerge,
                             {{"spec", {{"desiredState", "Paused"}}}});
  EXPECT_THAT(std::string(bad_state.status().message()),
              HasSubstr("spec.desiredState: Unsupported value: \"Paused\""));
}

TEST_F(CrdTest, KubectlScaleGoesThroughTheScaleSubresource) {
  ASSERT_TRUE(
      c_->Create(RunnerPools(), NS(), Pool("web", {{"replicas", 1}, {"github", Github()}})).ok());
  ASSERT_TRUE(c_->Patch(RunnerPools(), NS(), "web", PatchType::kMerge,
                        {{"status", {{"replicas", 1}, {"selector", "miglet.dev/pool=web"}}}},
                        "status")
                  .ok());
  auto out = C().Sh("kubectl scale runnerpool/web --replicas=20 -n " + NS());
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_THAT(*out, HasSubstr("runnerpool.miglet.dev/web scaled"));
  auto p = c_->Get(RunnerPools(), NS(), "web");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ((*p)["spec"]["replicas"], 20);
  // What the HPA and KEDA read: autoscaling/v1 Scale with the selector from status.
  auto scale = c_->Get(RunnerPools(), NS(), "web", "scale");
  ASSERT_TRUE(scale.ok()) << scale.status();
  EXPECT_EQ((*scale)["spec"]["replicas"], 20);
  EXPECT_EQ((*scale)["status"]["selector"], "miglet.dev/pool=web");
  // A negative count is refused through /scale too.
  auto neg = C().Sh("kubectl scale runnerpool/web --replicas=-1 -n " + NS());
  EXPECT_FALSE(neg.ok());
}

TEST_F(CrdTest, TheSamplesAreValid) {
  auto out = C().Sh("kubectl apply --dry-run=server -n " + NS() + " -f " +
                    std::string(MIGLET_SOURCE_DIR) + "/deploy/samples");
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_THAT(*out, HasSubstr("runnerpool.miglet.dev/ci created (server dry run)"));
  EXPECT_THAT(*out, HasSubstr("runnerpool.miglet.dev/gpu created (server dry run)"));
}

}  // namespace
}  // namespace miglet::kube::testing

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  ::testing::AddGlobalTestEnvironment(new miglet::kube::testing::ClusterEnvironment(""));
  return RUN_ALL_TESTS();
}
