// The operator on the real control plane, with real miglet agents (the fake runner as the
// runner) and GitHub played by the stand-in: external pools scaled with kubectl, jobs that
// survive a scale-down, nothing left registered.
#include <gmock/gmock.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <set>

#include "../agent_process.h"
#include "../github/standin.h"
#include "../kube/common.h"
#include "miglet/common/http_transport.h"
#include "miglet/operator/agent_hub_server.h"
#include "miglet/operator/controllers/operator.h"
#include "miglet/operator/ctrl/manager.h"
#include "operator_fixture.h"

namespace miglet::kube::testing {
namespace {

using ::miglet::github::testing::StandIn;
using ::miglet::testing::AgentProcess;
using ::testing::HasSubstr;

class OperatorTest : public OperatorFixture {};

TEST_F(OperatorTest, ExternalPoolFollowsKubectlScaleAndNeverKillsAJob) {
  const std::vector<std::string> machines = {"m1", "m2", "m3", "m4", "m5"};
  ExternalPool("ext", 0);
  for (const auto& m : machines) Machine(m, "ext");
  // Adopted as RunnerVMs, spares with no runner.
  ASSERT_TRUE(Eventually([&] {
    for (const auto& m : machines) {
      if (Vm(m).is_null()) return false;
    }
    return true;
  })) << Logs();
  EXPECT_EQ(Vm("m1")["spec"]["desiredState"], "Drained");
  EXPECT_EQ(Vm("m1")["metadata"]["ownerReferences"][0]["name"], "ext");
  EXPECT_TRUE(StandinRunners().empty());
  auto desired = [&](const std::string& state) {
    int n = 0;
    for (const auto& m : machines) n += Vm(m)["spec"].value("desiredState", "") == state;
    return n;
  };

  // kubectl scale 0 -> 3 -> 5: as many machines get registered runners.
  for (int n : {3, 5}) {
    ASSERT_TRUE(Scale("ext", n).ok());
    ASSERT_TRUE(Eventually([&] { return StandinRunners("online").size() == size_t(n); }))
        << n << "\n"
        << Logs() << standin_->State().dump();
    ASSERT_TRUE(Eventually([&] {
      auto p = client_->Get(RunnerPools(), NS(), "ext");
      return p.ok() && (*p)["status"].value("readyReplicas", 0) == n;
    }));
    EXPECT_EQ(desired("Running"), n);
  }

  // A job on two runners, then scale 5 -> 1 -> 0 while they run: the idle ones go first, then
  // the busy ones are drained, and both jobs finish; neither is cut short.
  standin_->QueueJob("org:acme", "build-1", {"linux"});
  standin_->QueueJob("org:acme", "build-2", {"linux"});
  ASSERT_TRUE(Eventually([&] { return Jobs("running").size() == 2; })) << standin_->State().dump();
  ASSERT_TRUE(Scale("ext", 1).ok());
  ASSERT_TRUE(Eventually([&] { return desired("Drained") == 4; }));
  // The one left running is busy: idle runners were drained before it.
  std::string kept;
  for (const auto& m : machines) {
    if (Vm(m)["spec"].value("desiredState", "") == "Running") kept = m;
  }
  // The idle runners stop, then their drained machines deregister them: the two busy ones are
  // all that is left.
  ASSERT_TRUE(Eventually([&] {
    const auto all = StandinRunners();
    return all.size() == 2 && all[0].value("busy", false) && all[1].value("busy", false);
  })) << standin_->State().dump()
      << Logs();
  EXPECT_EQ(StandinRunners("online").size(), 2u);
  EXPECT_TRUE(StandinRunners().size() == 2 && (StandinRunners()[0]["name"] == "ext-" + kept ||
                                               StandinRunners()[1]["name"] == "ext-" + kept))
      << kept << " " << standin_->State().dump();
  ASSERT_TRUE(Scale("ext", 0).ok());
  ASSERT_TRUE(Eventually([&] { return desired("Drained") == 5; }));
  // Draining does not stop a job: both still run at GitHub.
  EXPECT_EQ(Jobs("running").size(), 2u);
  for (const auto& j : Jobs("running")) {
    ASSERT_TRUE(standin_
                    ->Post("/_standin/jobs/" + j["id"].get<std::string>() + "/finish",
                           {{"result", "Succeeded"}})
                    .ok());
  }
  ASSERT_TRUE(Eventually([&] { return Jobs("completed").size() == 2; }));
  for (const auto& j : Jobs("completed")) EXPECT_EQ(j["result"], "Succeeded");
  // Nothing is left registered; the machines stay as spares.
  ASSERT_TRUE(Eventually([&] { return StandinRunners().empty(); }))
      << standin_->State().dump() << Logs();
  for (const auto& m : machines) EXPECT_FALSE(Vm(m).is_null()) << m;

  // Spares come back into service, and go again: an idle runner's drain leaves nothing.
  ASSERT_TRUE(Scale("ext", 1).ok());
  ASSERT_TRUE(Eventually([&] { return StandinRunners("online").size() == 1; }))
      << standin_->State().dump() << Logs();
  ASSERT_TRUE(Scale("ext", 0).ok());
  ASSERT_TRUE(Eventually([&] { return StandinRunners().empty(); }))
      << standin_->State().dump() << Logs();
}

// A MIGlet agent from the field that speaks only HTTP (no gRPC, no acks) gets a runner and
// leaves nothing registered: adopted by its external pool, handed a registration in the answer
// to its vm_started once the pool wants it serving, registers the runner itself (config.sh, as
// it does), and is drained by a command it polls, done by the effect it reports.
TEST_F(OperatorTest, AFieldAgentOverHttpGetsARunnerAndLeavesNothingRegistered) {
  ExternalPool("field", 0, /*ephemeral=*/false);
  auto http =
      MakeHttpTransport({.base_url = "http://127.0.0.1:" + std::to_string(hub_->http_port()),
                         .timeout = std::chrono::seconds(10)});
  ASSERT_TRUE(http.ok()) << http.status();
  const std::string vm = "/api/v1/vms/vm-field-1";
  auto post = [&](const std::string& path, const std::string& body) {
    auto r = (*http)->Do("POST", vm + path, body);
    EXPECT_TRUE(r.ok() && r->status == 200) << path << ": " << (r.ok() ? r->body : "");
    return r.ok() ? r->body : std::string();
  };
  const std::string ids =
      R"("timestamp":"2026-11-27T12:00:00Z","vm_id":"vm-field-1","pool_id":"field","org_id":"acme")";
  auto heartbeat = [&](const std::string& state, const std::string& runner) {
    post("/heartbeat", R"({"type":"heartbeat",)" + ids + R"(,"miglet_state":")" + state +
                           R"(","runner_state":")" + runner +
                           R"(","vm_health":{"cpu_load":1,"memory_used":512,"memory_total":2048,)"
                           R"("disk_used":1,"disk_total":10}})");
  };
  const std::string started = R"({"type":"vm_started",)" + ids +
                              R"(,"machine_type":"e2-small","cpu":2,"memory":2048,"disk":10,)"
                              R"("version":"1.4.2","build_time":"2026-10-01T08:30:00Z"})";
  // Adopted as a spare while the pool has no replicas: no registration offered.
  EXPECT_THAT(post("/events", started), ::testing::Not(HasSubstr("registration_token")));
  ASSERT_TRUE(Eventually([&] {
    heartbeat("connecting", "offline");
    return !Vm("vm-field-1").is_null();
  }));
  EXPECT_EQ(Vm("vm-field-1")["spec"]["desiredState"], "Drained");

  // The pool wants it serving: its (re)started agent is answered with a registration.
  ASSERT_TRUE(Scale("field", 1).ok());
  ASSERT_TRUE(Eventually([&] {
    heartbeat("connecting", "offline");
    return Vm("vm-field-1")["spec"].value("desiredState", "") == "Running";
  }));
  // (Once the controller's cache has the RunnerVM serving: until then none is offered.)
  Json answer;
  ASSERT_TRUE(Eventually([&] {
    heartbeat("connecting", "offline");
    answer = Json::parse(post("/events", started));
    return answer.contains("registration_token");
  })) << answer.dump();
  EXPECT_EQ(answer["acknowledged"], true);
  EXPECT_EQ(answer["runner_url"], standin_->url() + "/acme");
  EXPECT_EQ(answer["labels"], Json({"self-hosted", "linux"}));
  EXPECT_EQ(Vm("vm-field-1")["status"].value("registrations", 0), 1);
  // The endpoint of its own hands one out too (another registration of the same machine).
  auto token = (*http)->Do("POST", vm + "/registration-token",
                           R"({"org_id":"acme","pool_id":"field","labels":["linux"]})");
  ASSERT_TRUE(token.ok());
  EXPECT_EQ(token->status, 200) << token->body;
  EXPECT_THAT(token->body, HasSubstr(R"("registration_token":")"));
  auto none = (*http)->Do("POST", "/api/v1/vms/vm-nobody/registration-token", "{}");
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->status, 404) << none->body;

  // It registers the runner itself, under a name of its own, and says so.
  const auto runner = dir_ / "field-runner";
  std::filesystem::create_directories(runner);
  for (const char* f : {"config.sh", "run.sh"}) {
    std::filesystem::copy_file(std::filesystem::path(MIGLET_FAKE_RUNNER_DIR) / f, runner / f);
  }
  const std::string config =
      "cd " + runner.string() + " && FAKE_RUNNER_CA_FILE=" + standin_->ca_file() +
      " ./config.sh --url " + answer["runner_url"].get<std::string>() + " --token " +
      answer["registration_token"].get<std::string>() +
      " --name field-host-1 --labels self-hosted,linux --unattended" + " > config.out 2>&1";
  ASSERT_EQ(std::system(config.c_str()), 0) << ::miglet::testing::ReadAll(runner / "config.out");
  ASSERT_EQ(StandinRunners().size(), 1u) << standin_->State().dump();
  const int64_t runner_id = StandinRunners()[0].value("id", int64_t{0});
  post("/events", R"({"type":"runner_registered",)" + ids + R"(,"runner_url":")" +
                      answer["runner_url"].get<std::string>() + R"(","runner_id":)" +
                      std::to_string(runner_id) +
                      R"(,"labels":["self-hosted","linux"],"runner_group":"default"})");
  heartbeat("idle", "idle");
  ASSERT_TRUE(Eventually([&] {
    heartbeat("idle", "idle");
    return Vm("vm-field-1")["status"]["runner"].value("id", int64_t{0}) == runner_id;
  })) << Vm("vm-field-1").dump();
  // No register_runner followed the registration it was handed.
  auto polled = (*http)->Do("GET", vm + "/commands", "");
  ASSERT_TRUE(polled.ok());
  EXPECT_THAT(polled->body, ::testing::Not(HasSubstr("register_runner")));

  // Scaled to 0: the drain it polls is done when its heartbeat shows it draining with the
  // runner stopped, and the controller then deregisters the runner by its id.
  ASSERT_TRUE(Scale("field", 0).ok());
  std::string drain_id, polls;
  ASSERT_TRUE(Eventually([&] {
    heartbeat("idle", "idle");
    auto r = (*http)->Do("GET", vm + "/commands", "");
    if (!r.ok()) return false;
    polls += r->body + "\n";
    const Json polled = Json::parse(r->body);
    for (const auto& c : polled["commands"]) {
      if (c["type"] == "drain") drain_id = c["id"].get<std::string>();
    }
    return !drain_id.empty();
  })) << polls
      << hub_->hub().GetAgent("vm-field-1")->pending_commands;
  ASSERT_TRUE(Eventually([&] {
    heartbeat("draining", "offline");
    return StandinRunners().empty();
  })) << standin_->State().dump()
      << Vm("vm-field-1").dump();
  // The drain's outcome reaches the status in a write of its own, which may come after the
  // deregistration (that follows the heartbeat, not the outcome).
  EXPECT_TRUE(Eventually([&] {
    const Json last = Vm("vm-field-1")["status"]["lastCommand"];
    return last.value("type", "") == "drain" && last.value("success", false);
  })) << Vm("vm-field-1").dump();
}

// A change of the pool's agent settings reaches agents that are already running, with nothing
// else changing (no scale, no new machine): the RunnerVMs' status shows what each agent
// reports after the controller sent it.
TEST_F(OperatorTest, APoolsAgentSettingsReachRunningAgents) {
  ExternalPool("live", 1);
  Machine("l1", "live");
  ASSERT_TRUE(Eventually([&] { return StandinRunners("online").size() == 1u; })) << Logs();
  ASSERT_TRUE(Eventually([&] {
    return Vm("l1")["status"]["agent"].value("logLevel", "") == "info";
  })) << Vm("l1").dump();
  ASSERT_TRUE(C().Sh("kubectl patch runnerpool/live -n " + NS() +
                     " --type=merge -p '{\"spec\":{\"agent\":{\"logLevel\":\"warn\","
                     "\"heartbeatInterval\":\"3s\"}}}'")
                  .ok());
  EXPECT_TRUE(Eventually([&] {
    const Json a = Vm("l1")["status"]["agent"];
    return a.value("logLevel", "") == "warn" && a.value("heartbeatInterval", "") == "3s";
  })) << Vm("l1").dump()
      << Logs();
}

TEST_F(OperatorTest, PodPoolMakesItsPodsAndReplacesLostOnes) {
  Json pool = {
      {"apiVersion", "miglet.dev/v1alpha1"},
      {"kind", "RunnerPool"},
      {"metadata", {{"name", "pods"}}},
      {"spec",
       {{"replicas", 2},
        {"github", {{"url", standin_->url() + "/acme"}, {"tokenSecretRef", {{"name", "gh"}}}}},
        {"scaleDown", {{"drainTimeoutSeconds", 900}}}}}};
  ASSERT_TRUE(client_->Create(RunnerPools(), NS(), pool).ok());
  auto pods = [&] {
    auto l = client_->List(Pods(), NS(), {.label_selector = "miglet.dev/pool=pods"});
    std::vector<Json> out;
    if (l.ok()) {
      for (auto& p : l->items) {
        if (!p["metadata"].contains("deletionTimestamp")) out.push_back(p);
      }
    }
    return out;
  };
  ASSERT_TRUE(Eventually([&] { return pods().size() == 2; })) << Logs();
  // The Pod as the pod provider builds it (no node runs it here: it stays Pending).
  const Json pod = pods()[0];
  const std::string name = pod["metadata"]["name"];
  EXPECT_EQ(pod["metadata"]["ownerReferences"][0]["kind"], "RunnerVM");
  EXPECT_EQ(pod["metadata"]["ownerReferences"][0]["name"], name);
  EXPECT_EQ(pod["spec"]["terminationGracePeriodSeconds"], 930);
  EXPECT_EQ(pod["spec"]["initContainers"][0]["command"][1], "--install");
  EXPECT_EQ(pod["spec"]["containers"][0]["image"], "ghcr.io/actions/actions-runner:latest");
  bool endpoint = false;
  for (const auto& e : pod["spec"]["containers"][0]["env"]) {
    if (e["name"] == "MIGLET_CONTROLLER_GRPC_ENDPOINT") {
      endpoint = e["value"] == "127.0.0.1:" + std::to_string(hub_->grpc_port());
    }
  }
  EXPECT_TRUE(endpoint);
  // Its RunnerVM names it, and waits for its agent.
  ASSERT_TRUE(Eventually([&] {
    const Json vm = Vm(name);
    if (!vm.is_object() || !vm.contains("status")) return false;
    return vm["status"].value("podName", "") == name &&
           vm["status"].value("phase", "") == "Pending";
  })) << Vm(name).dump();
  // Busy pods are protected from eviction; this one runs no job.
  ASSERT_TRUE(Eventually([&] {
    auto p = client_->Get(Pods(), NS(), name);
    return p.ok() && (*p)["metadata"]["labels"].value("miglet.dev/busy", "") == "false";
  }));
  auto pdb = client_->Get(PodDisruptionBudgets(), NS(), "pods-busy");
  ASSERT_TRUE(pdb.ok()) << pdb.status();
  EXPECT_EQ((*pdb)["spec"]["maxUnavailable"], 0);
  EXPECT_EQ((*pdb)["spec"]["selector"]["matchLabels"]["miglet.dev/busy"], "true");
  EXPECT_EQ((*pdb)["metadata"]["ownerReferences"][0]["name"], "pods");

  // A pod that fails (set through the API, as a kubelet would) is lost and replaced.
  ASSERT_TRUE(client_
                  ->Patch(Pods(), NS(), name, PatchType::kMerge,
                          {{"status", {{"phase", "Failed"}}}}, "status")
                  .ok());
  ASSERT_TRUE(Eventually([&] {
    auto p = pods();
    return p.size() == 2 && std::none_of(p.begin(), p.end(), [&](const Json& x) {
             return x["metadata"]["name"] == name;
           });
  })) << Logs();
  {
    const Json gone = Vm(name);  // read once: it may go between two reads
    EXPECT_TRUE(gone.is_null() || gone["metadata"].contains("deletionTimestamp")) << gone.dump();
  }
  // A pod that vanishes is replaced too.
  const std::string other = pods()[0]["metadata"]["name"];
  ASSERT_TRUE(client_->Delete(Pods(), NS(), other, {.grace_period_seconds = 0}).ok());
  ASSERT_TRUE(Eventually([&] {
    auto p = pods();
    return p.size() == 2 && std::none_of(p.begin(), p.end(), [&](const Json& x) {
             return x["metadata"]["name"] == other;
           });
  })) << Logs();
  // Events for a person's `kubectl describe`.
  auto events = client_->ListAll(Events(), NS());
  ASSERT_TRUE(events.ok());
  std::set<std::string> reasons;
  for (const auto& e : events->items) reasons.insert(e.value("reason", ""));
  EXPECT_TRUE(reasons.count("ScaledUp"));
  EXPECT_TRUE(reasons.count("PodCreated"));
  EXPECT_TRUE(reasons.count("AgentLost"));
}

// Persistent runners (spec.runner.ephemeral false, registered with config.sh) on machines that
// stay: scaled down, each is deregistered once its runner stops; scaled up again, the same
// machine registers a new one (its old configuration removed first).
TEST_F(OperatorTest, PersistentRunnersOnExternalMachinesComeAndGoWithNothingLeft) {
  const std::vector<std::string> machines = {"p1", "p2"};
  ExternalPool("pers", 0, /*ephemeral=*/false);
  for (const auto& m : machines) Machine(m, "pers");
  ASSERT_TRUE(Eventually([&] { return !Vm("p1").is_null() && !Vm("p2").is_null(); })) << Logs();
  for (int round = 1; round <= 2; ++round) {
    ASSERT_TRUE(Scale("pers", 2).ok());
    ASSERT_TRUE(Eventually([&] { return StandinRunners("online").size() == 2; }))
        << round << "\n"
        << Logs() << standin_->State().dump();
    for (const auto& r : StandinRunners()) {
      EXPECT_FALSE(r.value("ephemeral", true)) << r.dump();
      EXPECT_NE(r.value("registered_by", ""), "jit") << r.dump();
    }
    ASSERT_TRUE(Scale("pers", 0).ok());
    ASSERT_TRUE(Eventually([&] { return StandinRunners().empty(); }))
        << round << "\n"
        << Logs() << standin_->State().dump();
  }
  for (const auto& m : machines) EXPECT_EQ(Vm(m)["status"].value("registrations", 0), 2) << m;
}

TEST_F(OperatorTest, ARunnerVmDeletedWhileItsAgentIsDeadIsDeregisteredAnyway) {
  ExternalPool("ext", 1);
  auto& m = Machine("dead", "ext");
  ASSERT_TRUE(Eventually([&] { return StandinRunners("online").size() == 1; })) << Logs();
  // The machine dies: no agent, no runner process (its process group is killed too).
  m.Kill(SIGKILL);
  agents_.clear();
  ASSERT_TRUE(
      Eventually([&] { return StandinRunners("offline").size() == 1; }, std::chrono::seconds(90)))
      << standin_->State().dump();
  ASSERT_TRUE(client_->Delete(RunnerVMs(), NS(), "dead").ok());
  ASSERT_TRUE(Eventually([&] { return StandinRunners().empty(); })) << Logs();
  ASSERT_TRUE(Eventually([&] { return Vm("dead").is_null(); }));
}

}  // namespace
}  // namespace miglet::kube::testing

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  if (getenv("MIGLET_TEST_DEBUG")) spdlog::set_level(spdlog::level::debug);
  ::testing::AddGlobalTestEnvironment(new miglet::kube::testing::ClusterEnvironment(""));
  return RUN_ALL_TESTS();
}
