// The GitHub client against the GitHub stand-in over real HTTPS: App and PAT flows, JIT configs
// and registration tokens that the fake runner really uses, pagination, retries, rate limits,
// token renewal. After every test, no token or JIT config the stand-in issued may appear in any
// log of the run.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>
#include <signal.h>
#include <unistd.h>

#include <fstream>

#include "miglet/common/testing/metric_value.h"
#include "miglet/operator/github/errors.h"
#include "miglet/operator/github/github_client.h"
#include "standin.h"

namespace miglet::github::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

class GitHubStandInTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("miglet-github-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    auto s = StandIn::Start(dir_ / "standin");
    ASSERT_TRUE(s.ok()) << s.status();
    standin_ = std::move(*s);
    metrics_ = MakeGitHubMetrics(registry_);
  }

  void TearDown() override {
    // No secret the stand-in issued in any log: ours, the stand-in's, the runners' output.
    if (standin_) {
      std::string logs = log_.str() + standin_->log();
      for (const auto& entry : fs::recursive_directory_iterator(dir_)) {
        // invocations.log is the fake runner's record of its own arguments (tokens included by
        // design, for the agent's tests); everything else is output a person would read.
        if (entry.is_regular_file() && entry.path().extension() == ".out") {
          logs += ReadAll(entry.path());
        }
      }
      const auto secrets = standin_->Secrets();
      EXPECT_FALSE(secrets.empty()) << "the stand-in's secrets could not be read";
      EXPECT_THAT(LeakedSecrets(secrets, logs), IsEmpty());
    }
    runners_.clear();
    standin_.reset();
    if (!HasFailure()) fs::remove_all(dir_);
  }

  static std::string ReadAll(const fs::path& p) {
    std::ifstream in(p);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

  std::unique_ptr<GitHubClient> Client(const std::string& path = "/acme", bool app = false,
                                       int64_t installation_id = kInstallationId,
                                       std::function<void(GitHubClientOptions&)> tweak = {}) {
    auto o = standin_->Options(path, app, installation_id);
    o.metrics = metrics_;
    if (tweak) tweak(o);
    auto c = MakeGitHubClient(o);
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() ? std::move(*c) : nullptr;
  }

  double Metric(const std::string& name, const std::map<std::string, std::string>& labels = {}) {
    return miglet::testing::MetricValue(registry_, name, labels);
  }

  RunnerProcess& Runner(const std::string& name, const std::string& script,
                        std::vector<std::string> args) {
    runners_.push_back(std::make_unique<RunnerProcess>(
        dir_ / ("runner-" + name), standin_->ca_file(), script, std::move(args)));
    return *runners_.back();
  }

  LogCapture log_;
  fs::path dir_;
  std::unique_ptr<StandIn> standin_;
  prometheus::Registry registry_;
  std::shared_ptr<GitHubMetrics> metrics_;
  std::vector<std::unique_ptr<RunnerProcess>> runners_;
};

TEST_F(GitHubStandInTest, PatFlowWithGitHubsHeaders) {
  auto c = Client("/acme/app");
  auto reg = c->CreateRegistrationToken();
  ASSERT_TRUE(reg.ok()) << reg.status();
  EXPECT_EQ(reg->token.size(), 29u);
  EXPECT_GT(reg->expires_at, std::chrono::system_clock::now());
  auto rm = c->CreateRemoveToken();
  ASSERT_TRUE(rm.ok()) << rm.status();
  EXPECT_NE(rm->token, reg->token);

  auto reqs = standin_->Requests("POST /repos/{owner}/{repo}/actions/runners/registration-token");
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0]["status"], 201);
  EXPECT_EQ(reqs[0]["accept"], "application/vnd.github+json");
  EXPECT_EQ(reqs[0]["api_version"], "2022-11-28");
  EXPECT_THAT(reqs[0]["user_agent"].get<std::string>(), HasSubstr("mig-controller/"));
  EXPECT_EQ(Metric("mig_controller_github_requests_total",
                   {{"call", "create_registration_token"}, {"code", "201"}}),
            1);
  EXPECT_EQ(Metric("mig_controller_github_rate_limit_remaining"), 4998);
}

TEST_F(GitHubStandInTest, AppLooksUpItsInstallationAndReusesOneToken) {
  auto c = Client("/acme", /*app=*/true, /*installation_id=*/0);
  for (int i = 0; i < 5; ++i) {
    auto t = c->CreateRegistrationToken();
    ASSERT_TRUE(t.ok()) << t.status();
  }
  ASSERT_TRUE(c->ListRunners().ok());
  Json st = standin_->State();
  EXPECT_EQ(st["installation_tokens_issued"], 1);
  EXPECT_EQ(standin_->Requests("GET /orgs/{org}/installation").size(), 1u);
  EXPECT_EQ(Metric("mig_controller_github_installation_token_renewals_total"), 1);

  // An App that is not installed on the account says so.
  auto other = Client("/elsewhere", /*app=*/true, /*installation_id=*/0);
  auto r = other->CreateRegistrationToken();
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(std::string(r.status().message()),
              HasSubstr("GitHub App 1 is not installed on organization elsewhere"));
}

TEST_F(GitHubStandInTest, JitRunnerRegistersGoesOnlineRunsOneJobAndIsGone) {
  auto c = Client("/acme", /*app=*/true);
  auto jit = c->GenerateJitConfig({.name = "vm-jit", .labels = {"linux", "miglet"}});
  ASSERT_TRUE(jit.ok()) << jit.status();
  EXPECT_EQ(jit->runner.name, "vm-jit");
  EXPECT_EQ(jit->runner.status, "offline");
  EXPECT_THAT(jit->runner.labels, ElementsAre("linux", "miglet"));

  auto& run = Runner("jit", "run.sh", {"--jitconfig", jit->encoded_jit_config});
  ASSERT_TRUE(Eventually([&] {
    auto r = c->GetRunner(jit->runner.id);
    return r.ok() && r->online();
  })) << run.Output();

  const std::string job = standin_->QueueJob("org:acme", "build", {"linux"});
  ASSERT_TRUE(Eventually([&] {
    return run.Output().find("Running job: build") != std::string::npos;
  })) << run.Output();
  auto busy = c->GetRunner(jit->runner.id);
  ASSERT_TRUE(busy.ok());
  EXPECT_TRUE(busy->busy);
  ASSERT_TRUE(standin_->Post("/_standin/jobs/" + job + "/finish", {{"result", "Succeeded"}}).ok());
  EXPECT_EQ(run.Wait(60), 0) << run.Output();
  EXPECT_THAT(run.Output(), HasSubstr("Job build completed with result: Succeeded"));
  EXPECT_THAT(run.Output(), HasSubstr("exiting because it is an ephemeral runner"));
  // GitHub removes an ephemeral runner after its job.
  EXPECT_TRUE(github::IsNotFound(c->GetRunner(jit->runner.id).status()));
  EXPECT_TRUE(standin_->RunnerNamed("vm-jit").is_null());

  // A JIT config registers one runner, once.
  auto& again = Runner("jit-again", "run.sh", {"--jitconfig", jit->encoded_jit_config});
  EXPECT_NE(again.Wait(60), 0);
}

TEST_F(GitHubStandInTest, RegistrationTokenRunnerIsListedAndRemoved) {
  auto c = Client("/acme/app");
  auto reg = c->CreateRegistrationToken();
  ASSERT_TRUE(reg.ok()) << reg.status();
  auto& config = Runner("a", "config.sh",
                        {"--url", standin_->url() + "/acme/app", "--token", reg->token, "--name",
                         "vm-a", "--labels", "gpu", "--unattended"});
  ASSERT_EQ(config.Wait(60), 0) << config.Output();
  auto& run = Runner("a", "run.sh", {});
  ASSERT_TRUE(Eventually([&] {
    auto l = c->ListRunners("vm-a");
    return l.ok() && l->size() == 1 && (*l)[0].online();
  })) << run.Output();
  auto listed = c->ListRunners("vm-a");
  ASSERT_TRUE(listed.ok());
  EXPECT_THAT((*listed)[0].labels, ElementsAre("self-hosted", "Linux", "X64", "gpu"));
  EXPECT_FALSE((*listed)[0].ephemeral);

  // The registration token was for one use.
  auto& reuse = Runner("b", "config.sh",
                       {"--url", standin_->url() + "/acme/app", "--token", reg->token, "--name",
                        "vm-b", "--unattended"});
  EXPECT_EQ(reuse.Wait(60), 1);
  EXPECT_THAT(reuse.Output(), HasSubstr("404 (Not Found)"));

  // Stop it, then deregister it with a remove token, as miglet's shutdown does.
  run.Signal(SIGINT);
  EXPECT_EQ(run.Wait(60), 0) << run.Output();
  auto rm = c->CreateRemoveToken();
  ASSERT_TRUE(rm.ok());
  auto& remove = Runner("a", "config.sh", {"remove", "--token", rm->token});
  EXPECT_EQ(remove.Wait(60), 0) << remove.Output();
  auto after = c->ListRunners("vm-a");
  ASSERT_TRUE(after.ok());
  EXPECT_THAT(*after, IsEmpty());
}

TEST_F(GitHubStandInTest, DeleteRemovesARunnerAndIsIdempotent) {
  auto c = Client("/acme");
  auto jit = c->GenerateJitConfig({.name = "vm-d", .labels = {"x"}});
  ASSERT_TRUE(jit.ok()) << jit.status();
  auto& run = Runner("d", "run.sh", {"--jitconfig", jit->encoded_jit_config});
  ASSERT_TRUE(Eventually([&] {
    auto r = c->GetRunner(jit->runner.id);
    return r.ok() && r->online();
  }));
  ASSERT_TRUE(c->DeleteRunner(jit->runner.id).ok());
  EXPECT_TRUE(github::IsNotFound(c->GetRunner(jit->runner.id).status()));
  EXPECT_NE(run.Wait(60), 0) << "run.sh lost its registration";  // as the real runner does
  EXPECT_TRUE(c->DeleteRunner(jit->runner.id).ok()) << "404 = already gone = success";
}

TEST_F(GitHubStandInTest, ListRunnersFollowsLinkPages) {
  auto c = Client("/acme");
  for (int i = 0; i < 150; ++i) {
    auto jit = c->GenerateJitConfig({.name = "vm-" + std::to_string(i), .labels = {"x"}});
    ASSERT_TRUE(jit.ok()) << jit.status();
  }
  auto all = c->ListRunners();
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_EQ(all->size(), 150u);
  auto pages = standin_->Requests("GET /orgs/{org}/actions/runners");
  ASSERT_EQ(pages.size(), 2u);
  auto one = c->ListRunners("vm-149");
  ASSERT_TRUE(one.ok());
  ASSERT_EQ(one->size(), 1u);
  EXPECT_EQ((*one)[0].name, "vm-149");
}

TEST_F(GitHubStandInTest, RunnerGroupByNameAndDuplicateNames) {
  auto group = standin_->Post("/_standin/runner-groups", {{"scope", "org:acme"}, {"name", "gpu"}});
  ASSERT_TRUE(group.ok()) << group.status();
  auto c = Client("/acme", /*app=*/true);
  auto id = c->RunnerGroupId("gpu");
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(*id, (*group)["id"].get<int64_t>());
  EXPECT_TRUE(github::IsNotFound(c->RunnerGroupId("nope").status()));

  auto first = c->GenerateJitConfig({.name = "vm-g", .runner_group_id = *id, .labels = {"gpu"}});
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->runner.runner_group_id, *id);
  auto dup = c->GenerateJitConfig(
      {.name = "vm-g", .runner_group_id = *id, .labels = {"gpu"}, .replace_offline = false});
  ASSERT_TRUE(IsRunnerNameTaken(dup.status())) << dup.status();
  EXPECT_THAT(std::string(dup.status().message()),
              HasSubstr("HTTP 409: Already exists - A runner with the name vm-g already exists."));
  // The first never came online: a leftover, replaced.
  auto replaced = c->GenerateJitConfig({.name = "vm-g", .runner_group_id = *id, .labels = {"gpu"}});
  ASSERT_TRUE(replaced.ok()) << replaced.status();
  EXPECT_NE(replaced->runner.id, first->runner.id);
}

TEST_F(GitHubStandInTest, ServerErrorsAreRetried) {
  auto c = Client("/acme");
  standin_->AddFault(
      {{"kind", "status"}, {"status", 502}, {"count", 2}, {"path", "registration-token"}});
  auto t = c->CreateRegistrationToken();
  ASSERT_TRUE(t.ok()) << t.status();
  auto reqs = standin_->Requests("POST /orgs/{org}/actions/runners/registration-token");
  ASSERT_EQ(reqs.size(), 3u);
  EXPECT_EQ(reqs[0]["status"], 502);
  EXPECT_EQ(reqs[1]["status"], 502);
  EXPECT_EQ(reqs[2]["status"], 201);
  EXPECT_EQ(Metric("mig_controller_github_requests_total",
                   {{"call", "create_registration_token"}, {"code", "502"}}),
            2);

  // A burst longer than the attempts: the error names the call, the scope and GitHub's answer.
  standin_->AddFault({{"kind", "status"}, {"status", 503}, {"count", 10}});
  auto e = c->ListRunners();
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(e.status().message()),
              HasSubstr("github list_runners (organization acme): HTTP 503: Service Unavailable"));
}

TEST_F(GitHubStandInTest, SecondaryRateLimitIsWaitedOut) {
  auto c = Client("/acme");
  standin_->AddFault({{"kind", "secondary_rate_limit"}, {"retry_after", 1}, {"status", 403}});
  auto t = c->CreateRegistrationToken();
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(Metric("mig_controller_github_rate_limited_total", {{"kind", "secondary"}}), 1);
  // Reported, with GitHub's Retry-After.
  EXPECT_THAT(log_.str(), HasSubstr("HTTP 403: secondary rate limit, GitHub asks to wait 1s "
                                    "(Retry-After)"));
  EXPECT_EQ(standin_->Requests("POST /orgs/{org}/actions/runners/registration-token").size(), 2u);
}

TEST_F(GitHubStandInTest, PrimaryRateLimitIsWaitedOutOrReported) {
  auto c = Client("/acme");
  standin_->AddFault({{"kind", "primary_rate_limit"}, {"reset_in", 1}});
  auto t = c->CreateRegistrationToken();
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(Metric("mig_controller_github_rate_limited_total", {{"kind", "primary"}}), 1);

  // A reset further away than the client waits inline: reported with when to come back, and
  // nothing more is sent until then.
  auto impatient = Client("/acme", false, kInstallationId,
                          [](GitHubClientOptions& o) { o.max_wait = std::chrono::seconds(1); });
  standin_->AddFault({{"kind", "primary_rate_limit"}, {"reset_in", 600}});
  auto r = impatient->CreateRegistrationToken();
  ASSERT_TRUE(IsRateLimited(r.status())) << r.status();
  EXPECT_GE(RetryAfter(r.status()), std::chrono::seconds(590));
  const size_t sent = standin_->State()["requests"].size();
  EXPECT_TRUE(IsRateLimited(impatient->ListRunners().status()));
  EXPECT_EQ(standin_->State()["requests"].size(), sent);
}

TEST_F(GitHubStandInTest, ExpiredInstallationTokenIsRenewedOnce) {
  auto c = Client("/acme", /*app=*/true);
  ASSERT_TRUE(c->ListRunners().ok());
  ASSERT_TRUE(standin_->Post("/_standin/faults", {{"kind", "expire_installation_tokens"}}).ok());
  auto l = c->ListRunners();
  ASSERT_TRUE(l.ok()) << l.status();
  EXPECT_EQ(standin_->State()["installation_tokens_issued"], 2);
  auto lists = standin_->Requests("GET /orgs/{org}/actions/runners");
  ASSERT_EQ(lists.size(), 3u);
  EXPECT_EQ(lists[1]["status"], 401);
  EXPECT_EQ(lists[2]["status"], 200);
}

TEST_F(GitHubStandInTest, SlowAnswerTimesOutAndIsRetried) {
  auto c = Client("/acme", false, kInstallationId,
                  [](GitHubClientOptions& o) { o.timeout = std::chrono::milliseconds(500); });
  standin_->AddFault({{"kind", "slow"}, {"delay_ms", 3000}, {"count", 1}});
  auto l = c->ListRunners();
  ASSERT_TRUE(l.ok()) << l.status();
  EXPECT_EQ(
      Metric("mig_controller_github_requests_total", {{"call", "list_runners"}, {"code", "error"}}),
      1);
  EXPECT_EQ(
      Metric("mig_controller_github_requests_total", {{"call", "list_runners"}, {"code", "200"}}),
      1);
}

TEST_F(GitHubStandInTest, BadCredentialsAndAnUntrustedServer) {
  auto bad = Client("/acme", false, kInstallationId,
                    [](GitHubClientOptions& o) { o.credentials.token = "ghp_not_a_real_token"; });
  auto r = bad->ListRunners();
  EXPECT_TRUE(IsBadCredentials(r.status())) << r.status();
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("HTTP 401: Bad credentials"));
  EXPECT_EQ(standin_->Requests("GET /orgs/{org}/actions/runners").size(), 1u);

  // Without the stand-in's CA, the server is not trusted: a TLS failure, never retried.
  auto untrusted =
      Client("/acme", false, kInstallationId, [](GitHubClientOptions& o) { o.tls = {}; });
  auto u = untrusted->ListRunners();
  ASSERT_FALSE(u.ok());
  EXPECT_EQ(GetTransportFailure(u.status()), TransportFailure::kTls) << u.status();
  EXPECT_THAT(std::string(u.status().message()), HasSubstr("certificate"));
  EXPECT_EQ(standin_->Requests("GET /orgs/{org}/actions/runners").size(), 1u);
}

}  // namespace
}  // namespace miglet::github::testing
