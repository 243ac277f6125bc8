#include "miglet/operator/api/v1alpha1.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

namespace miglet::api {
namespace {

using ::testing::HasSubstr;

Json Minimal() {
  return Json::parse(R"({
    "apiVersion": "miglet.dev/v1alpha1", "kind": "RunnerPool",
    "metadata": {"name": "ci", "namespace": "team", "uid": "u-1", "generation": 3,
                 "resourceVersion": "42", "finalizers": ["miglet.dev/finalizer"]},
    "spec": {"github": {"url": "https://github.com/acme", "appSecretRef": {"name": "app"}}}
  })");
}

TEST(RunnerPoolDecodeTest, MinimalObjectGetsTheCrdDefaults) {
  auto p = DecodeRunnerPool(Minimal());
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->meta.Key(), "team/ci");
  EXPECT_EQ(p->meta.generation, 3);
  EXPECT_TRUE(p->meta.HasFinalizer(kFinalizer));
  EXPECT_FALSE(p->meta.Deleting());
  EXPECT_EQ(p->spec.replicas, 1);
  EXPECT_EQ(p->spec.provider, Provider::kPod);
  ASSERT_TRUE(p->spec.github.app_secret.has_value());
  EXPECT_EQ(p->spec.github.app_secret->name, "app");
  EXPECT_FALSE(p->spec.github.token_secret.has_value());
  EXPECT_EQ(p->spec.runner.labels, (std::vector<std::string>{"self-hosted", "linux"}));
  EXPECT_TRUE(p->spec.runner.ephemeral);
  EXPECT_EQ(p->spec.drain_timeout_seconds, 3600);
}

TEST(RunnerPoolDecodeTest, FullObjectAsTheApiserverReturnsIt) {
  Json j = Minimal();
  j["metadata"]["deletionTimestamp"] = "2026-11-27T13:00:00Z";
  j["spec"]["replicas"] = 20;
  j["spec"]["provider"] = "external";
  j["spec"]["runner"] = {
      {"labels", {"gpu"}}, {"ephemeral", false}, {"resources", {{"limits", {{"cpu", "2"}}}}}};
  j["spec"]["agent"] = {{"logLevel", "debug"}, {"heartbeatInterval", "5s"}};
  j["spec"]["scaleDown"] = {{"drainTimeoutSeconds", 60}};
  j["status"] = {{"replicas", 19},
                 {"readyReplicas", 18},
                 {"selector", "miglet.dev/pool=ci"},
                 {"conditions",
                  {{{"type", "Ready"},
                    {"status", "True"},
                    {"reason", "AllRegistered"},
                    {"message", "m"},
                    {"lastTransitionTime", "2026-11-27T12:00:00Z"},
                    {"observedGeneration", 3}}}}};
  auto p = DecodeRunnerPool(j);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_TRUE(p->meta.Deleting());
  EXPECT_EQ(p->spec.replicas, 20);
  EXPECT_EQ(p->spec.provider, Provider::kExternal);
  EXPECT_EQ(p->spec.runner.labels, std::vector<std::string>{"gpu"});
  EXPECT_FALSE(p->spec.runner.ephemeral);
  EXPECT_EQ(p->spec.runner.resources["limits"]["cpu"], "2");
  EXPECT_EQ(p->spec.agent.log_level, "debug");
  EXPECT_EQ(p->spec.drain_timeout_seconds, 60);
  EXPECT_EQ(p->status.ready_replicas, 18);
  ASSERT_NE(FindCondition(p->status.conditions, "Ready"), nullptr);
  EXPECT_EQ(FindCondition(p->status.conditions, "Ready")->reason, "AllRegistered");
}

TEST(RunnerPoolDecodeTest, ErrorsNameTheObjectAndTheField) {
  struct Case {
    std::function<void(Json&)> mutate;
    std::string want;
  };
  for (const auto& tc : std::vector<Case>{
           {[](Json& j) { j["spec"]["replicas"] = "3"; },
            "RunnerPool team/ci: spec.replicas: want an integer"},
           {[](Json& j) { j["spec"]["replicas"] = -2; },
            "RunnerPool team/ci: spec.replicas: must not be negative"},
           {[](Json& j) { j["spec"]["github"].erase("url"); },
            "RunnerPool team/ci: spec.github.url: required"},
           {[](Json& j) {
              j["spec"]["github"]["tokenSecretRef"] = {{"name", "pat"}};
            },
            "spec.github: exactly one of appSecretRef and tokenSecretRef"},
           {[](Json& j) { j["spec"]["provider"] = "vm"; },
            "RunnerPool team/ci: spec.provider: unknown value \"vm\""},
           {[](Json& j) {
              j["spec"]["runner"] = {{"labels", {1, 2}}};
            },
            "spec.runner.labels: want a list of strings"},
           {[](Json& j) {
              j["spec"]["github"]["appSecretRef"] = {{"name", ""}};
            },
            "spec.github.appSecretRef.name: required"},
           {[](Json& j) { j["spec"] = "x"; }, "RunnerPool team/ci: spec: want an object"},
       }) {
    Json j = Minimal();
    tc.mutate(j);
    auto p = DecodeRunnerPool(j);
    ASSERT_FALSE(p.ok()) << tc.want;
    EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(p.status().message()), HasSubstr(tc.want));
  }
}

TEST(RunnerVMTest, EncodeThenDecodeKeepsEverything) {
  RunnerVM vm;
  vm.meta.name = "ci-x1y2z";
  vm.meta.ns = "team";
  vm.meta.labels = {{kPoolLabel, "ci"}};
  vm.meta.finalizers = {kFinalizer};
  vm.meta.owner_references = {{"miglet.dev/v1alpha1", "RunnerPool", "ci", "u-1", true}};
  vm.spec.pool_name = "ci";
  vm.spec.desired_state = DesiredState::kDrained;
  vm.spec.config = {{"heartbeat.interval", "5s"}};
  auto back = DecodeRunnerVM(EncodeRunnerVM(vm));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->meta.Key(), "team/ci-x1y2z");
  EXPECT_EQ(back->meta.labels.at(kPoolLabel), "ci");
  EXPECT_TRUE(back->meta.HasFinalizer(kFinalizer));
  ASSERT_EQ(back->meta.owner_references.size(), 1u);
  EXPECT_TRUE(back->meta.owner_references[0].controller);
  EXPECT_EQ(back->meta.owner_references[0].uid, "u-1");
  EXPECT_EQ(back->spec.desired_state, DesiredState::kDrained);
  EXPECT_EQ(back->spec.config.at("heartbeat.interval"), "5s");

  RunnerVMStatus st;
  st.phase = "JobRunning";
  st.agent = {true,
              "0.1.0",
              "job_running",
              "grpc",
              "2026-11-27T13:00:00Z",
              "debug",
              "5s",
              {{"heartbeat.timeout", "20s"}}};
  st.runner = {"ci-x1y2z", 77, {"linux"}, true, "2026-11-27T12:59:00Z"};
  st.job = {"build", "9", "acme/app", "2026-11-27T12:59:30Z"};
  st.last_command = {"u-1.3.register", "register_runner", true, "registered",
                     "2026-11-27T12:59:00Z"};
  st.pod_name = "ci-x1y2z";
  SetCondition(st.conditions, {"AgentConnected", "True", "Connected", "over grpc"},
               WallTime(std::chrono::seconds(1'800'000'000)));
  Json obj = EncodeRunnerVM(vm);
  obj["status"] = EncodeStatus(st)["status"];
  auto decoded = DecodeRunnerVM(obj);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(decoded->status.phase, "JobRunning");
  EXPECT_EQ(decoded->status.runner.id, 77);
  EXPECT_EQ(decoded->status.job.repository, "acme/app");
  EXPECT_EQ(decoded->status.last_command.type, "register_runner");
  EXPECT_TRUE(decoded->status.agent.connected);
  EXPECT_EQ(decoded->status.agent.log_level, "debug");
  EXPECT_EQ(decoded->status.agent.config.at("heartbeat.timeout"), "20s");
  EXPECT_EQ(decoded->status.conditions.size(), 1u);
  EXPECT_EQ(EncodeStatus(decoded->status), EncodeStatus(st));
}

TEST(ConditionTest, TransitionTimeMovesOnlyWithTheStatus) {
  std::vector<Condition> conds;
  const WallTime t0(std::chrono::seconds(1'800'000'000));
  EXPECT_TRUE(SetCondition(conds, {"Ready", "False", "Scaling", "2 of 3"}, t0));
  EXPECT_EQ(conds[0].last_transition_time, "2027-01-15T08:00:00Z");
  // Same status, new message: changed, but the transition time stays.
  EXPECT_TRUE(
      SetCondition(conds, {"Ready", "False", "Scaling", "1 of 3"}, t0 + std::chrono::minutes(1)));
  EXPECT_EQ(conds[0].last_transition_time, "2027-01-15T08:00:00Z");
  // Nothing new: nothing changed (no write needed).
  EXPECT_FALSE(
      SetCondition(conds, {"Ready", "False", "Scaling", "1 of 3"}, t0 + std::chrono::minutes(2)));
  // A new status moves it.
  EXPECT_TRUE(SetCondition(conds, {"Ready", "True", "AllRegistered", "3 of 3"},
                           t0 + std::chrono::minutes(3)));
  EXPECT_EQ(conds[0].last_transition_time, "2027-01-15T08:03:00Z");
  EXPECT_EQ(conds.size(), 1u);
}

// The C++ defaults are the CRD's: read them from deploy/crds, the one source of the schema.
YAML::Node Schema(const std::string& file) {
  auto crd = YAML::LoadFile(std::string(MIGLET_SOURCE_DIR) + "/deploy/crds/" + file);
  return crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"];
}

TEST(CrdDefaultsTest, MatchTheStructs) {
  const YAML::Node s = Schema("miglet.dev_runnerpools.yaml")["properties"];
  const RunnerPoolSpec d;
  EXPECT_EQ(s["replicas"]["default"].as<int>(), d.replicas);
  EXPECT_EQ(s["provider"]["default"].as<std::string>(), "pod");
  EXPECT_EQ(d.provider, Provider::kPod);
  EXPECT_EQ(s["github"]["properties"]["runnerGroup"]["default"].as<std::string>(),
            d.github.runner_group);
  const YAML::Node r = s["runner"]["properties"];
  EXPECT_EQ(r["labels"]["default"].as<std::vector<std::string>>(), d.runner.labels);
  EXPECT_EQ(r["ephemeral"]["default"].as<bool>(), d.runner.ephemeral);
  EXPECT_EQ(r["workFolder"]["default"].as<std::string>(), d.runner.work_folder);
  EXPECT_EQ(r["image"]["default"].as<std::string>(), d.runner.image);
  const YAML::Node a = s["agent"]["properties"];
  EXPECT_EQ(a["image"]["default"].as<std::string>(), d.agent.image);
  EXPECT_EQ(a["logLevel"]["default"].as<std::string>(), d.agent.log_level);
  EXPECT_EQ(a["heartbeatInterval"]["default"].as<std::string>(), d.agent.heartbeat_interval);
  EXPECT_EQ(s["scaleDown"]["properties"]["drainTimeoutSeconds"]["default"].as<int64_t>(),
            d.drain_timeout_seconds);
  EXPECT_EQ(s["replacePolicy"]["default"].as<std::string>(), "Replace");
  EXPECT_EQ(d.replace_policy, ReplacePolicy::kReplace);
  const YAML::Node v = Schema("miglet.dev_runnervms.yaml")["properties"];
  EXPECT_EQ(v["desiredState"]["default"].as<std::string>(),
            std::string(DesiredStateName(RunnerVMSpec{}.desired_state)));
}

}  // namespace
}  // namespace miglet::api
