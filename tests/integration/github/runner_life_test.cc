// A runner's whole life through the real miglet binary, with GitHub played by the stand-in:
// the controller side (the agent hub and the GitHub client, in this process) asks GitHub for
// the runner's credentials and sends register_runner; a job queued in the stand-in runs on the
// fake runner; drain and shutdown follow; GitHub is left with no runner. Also counts the GitHub
// calls one life costs.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include "../agent_process.h"
#include "../hub_harness.h"
#include "miglet/operator/agent_hub_server.h"
#include "miglet/operator/github/errors.h"
#include "standin.h"

namespace miglet::github::testing {
namespace {

using ::miglet::testing::AgentProcess;
using std::chrono::seconds;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

class RunnerLifeTest : public ::testing::Test, protected ::miglet::testing::HubHarness {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("miglet-life-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    auto s = StandIn::Start(dir_ / "standin");
    ASSERT_TRUE(s.ok()) << s.status();
    standin_ = std::move(*s);

    StartHub(0);

    auto c = MakeGitHubClient(standin_->Options("/acme", /*app=*/true));
    ASSERT_TRUE(c.ok()) << c.status();
    github_ = std::move(*c);

    const std::string yaml =
        "vm_id: vm-1\npool_id: pool-a\norg_id: acme\ncontroller:\n  grpc_endpoint: 127.0.0.1:" +
        std::to_string(hub_->grpc_port()) +
        "\n  retry:\n    initial_backoff: 200ms\n    max_backoff: 1s\n"
        "heartbeat:\n  interval: 500ms\nlogging:\n  format: text\n  level: debug\n"
        "metrics:\n  listen: 127.0.0.1:0\n";
    agent_ = std::make_unique<AgentProcess>(dir_ / "agent", yaml, MIGLET_FAKE_RUNNER_DIR,
                                            std::vector<std::pair<std::string, std::string>>{
                                                {"FAKE_RUNNER_CA_FILE", standin_->ca_file()}});
    agent_->Start();
    ASSERT_TRUE(signal_.Await([&] { return State() == "ready"; }, seconds(60))) << agent_->Log();
  }

  void TearDown() override {
    if (standin_) {
      std::string logs = log_.str() + standin_->log() + (agent_ ? agent_->Log() : "");
      const auto secrets = standin_->Secrets();
      EXPECT_FALSE(secrets.empty()) << "the stand-in's secrets could not be read";
      EXPECT_THAT(LeakedSecrets(secrets, logs), IsEmpty());
    }
    agent_.reset();
    if (hub_) hub_->Shutdown();
    standin_.reset();
    if (!HasFailure()) fs::remove_all(dir_);
  }

  // The GitHub API calls (not the runner's own) made so far, by route.
  size_t ApiCalls(const std::string& route) { return standin_->Requests(route).size(); }

  void RunAJob(const std::string& name) {
    const std::string job = standin_->QueueJob("org:acme", name, {"linux"});
    ASSERT_FALSE(job.empty());
    ASSERT_TRUE(signal_.Await([&] { return HasEvent("job_started"); }, seconds(60)))
        << agent_->Log();
    ASSERT_TRUE(signal_.Await([&] { return State() == "job_running"; }, seconds(60)));
    EXPECT_EQ(hub_->hub().GetAgent("vm-1")->current_job.job_id(), name);
    ASSERT_TRUE(
        standin_->Post("/_standin/jobs/" + job + "/finish", {{"result", "Succeeded"}}).ok());
    ASSERT_TRUE(signal_.Await([&] { return HasEvent("job_completed"); }, seconds(60)))
        << agent_->Log();
    // GitHub heard the result before the agent did.
    Json st = standin_->State();
    ASSERT_EQ(st["jobs"].size(), 1u);
    EXPECT_EQ(st["jobs"][0]["status"], "completed");
    EXPECT_EQ(st["jobs"][0]["result"], "Succeeded");
    EXPECT_EQ(st["jobs"][0]["runner_name"], "vm-1");
  }

  LogCapture log_;
  fs::path dir_;
  std::unique_ptr<StandIn> standin_;
  std::unique_ptr<GitHubClient> github_;
  std::unique_ptr<AgentProcess> agent_;
};

TEST_F(RunnerLifeTest, JitRunnerFromRegisterToNothingLeft) {
  // The controller side: one call to GitHub for the runner's credentials.
  auto jit = github_->GenerateJitConfig({.name = "vm-1", .labels = {"linux", "miglet"}});
  ASSERT_TRUE(jit.ok()) << jit.status();
  commands::Command reg;
  reg.set_type("register_runner");
  (*reg.mutable_string_params())["jit_config"] = jit->encoded_jit_config;
  auto r = Send(reg);
  ASSERT_TRUE(r.success) << r.message << "\n" << agent_->Log();
  ASSERT_TRUE(signal_.Await([&] { return State() == "idle"; }, seconds(60))) << agent_->Log();
  Json runner = standin_->RunnerNamed("vm-1");
  ASSERT_FALSE(runner.is_null());
  EXPECT_EQ(runner["status"], "online");
  EXPECT_EQ(runner["registered_by"], "jit");

  RunAJob("build");
  // The ephemeral runner exits after its job; GitHub removes it; the agent reports drained.
  ASSERT_TRUE(signal_.Await([&] { return HasEvent("drained"); }, seconds(60))) << agent_->Log();
  EXPECT_TRUE(standin_->RunnerNamed("vm-1").is_null());

  commands::Command shutdown;
  shutdown.set_type("shutdown");
  r = Send(shutdown);
  EXPECT_TRUE(r.success) << r.message;
  ASSERT_TRUE(signal_.Await([&] { return HasEvent("vm_shutting_down"); }, seconds(60)));
  EXPECT_TRUE(signal_.Await([&] { return agent_->ExitCode() >= 0; }, seconds(60)));
  EXPECT_EQ(agent_->ExitCode(), 0) << agent_->Log();

  // GitHub is left with no runner, and the life cost one call (no delete was needed: the
  // runner went away by itself). The App's installation token is amortized over every life.
  auto left = github_->ListRunners();
  ASSERT_TRUE(left.ok());
  EXPECT_THAT(*left, IsEmpty());
  EXPECT_EQ(ApiCalls("POST /orgs/{org}/actions/runners/generate-jitconfig"), 1u);
  EXPECT_EQ(ApiCalls("DELETE /orgs/{org}/actions/runners/{runner_id}"), 0u);
  EXPECT_THAT(EventTypes(),
              ::testing::IsSupersetOf({"vm_started", "runner_registered", "job_started",
                                       "job_completed", "drained", "vm_shutting_down"}));
}

TEST_F(RunnerLifeTest, PersistentRunnerDrainedShutDownAndDeregistered) {
  auto token = github_->CreateRegistrationToken();
  ASSERT_TRUE(token.ok()) << token.status();
  commands::Command reg;
  reg.set_type("register_runner");
  (*reg.mutable_string_params())["runner_url"] = github_->scope().url;
  (*reg.mutable_string_params())["registration_token"] = token->token;
  reg.add_string_array_params("linux");
  (*reg.mutable_bool_params())["ephemeral"] = false;
  auto r = Send(reg);
  ASSERT_TRUE(r.success) << r.message << "\n" << agent_->Log();
  ASSERT_TRUE(signal_.Await([&] { return State() == "idle"; }, seconds(60))) << agent_->Log();
  ASSERT_TRUE(Eventually([&] {
    auto l = github_->ListRunners("vm-1");
    return l.ok() && l->size() == 1 && (*l)[0].online();
  }));

  RunAJob("test");
  // A persistent runner stays registered after its job, until it is drained and shut down.
  EXPECT_FALSE(standin_->RunnerNamed("vm-1").is_null());
  commands::Command drain;
  drain.set_type("drain");
  r = Send(drain);
  EXPECT_TRUE(r.success) << r.message;
  ASSERT_TRUE(signal_.Await([&] { return HasEvent("drained"); }, seconds(60))) << agent_->Log();

  auto remove = github_->CreateRemoveToken();
  ASSERT_TRUE(remove.ok()) << remove.status();
  commands::Command shutdown;
  shutdown.set_type("shutdown");
  (*shutdown.mutable_string_params())["remove_token"] = remove->token;
  r = Send(shutdown);
  EXPECT_TRUE(r.success) << r.message << "\n" << agent_->Log();
  ASSERT_TRUE(signal_.Await([&] { return HasEvent("vm_shutting_down"); }, seconds(60)));
  EXPECT_TRUE(signal_.Await([&] { return agent_->ExitCode() >= 0; }, seconds(60)));
  EXPECT_THAT(agent_->Log(), Not(HasSubstr("deregister_failed")));

  auto left = github_->ListRunners();
  ASSERT_TRUE(left.ok());
  EXPECT_THAT(*left, IsEmpty());
}

}  // namespace
}  // namespace miglet::github::testing
