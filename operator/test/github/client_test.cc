// The GitHub client over a fake transport and a fake clock: what it sends, how it retries, how
// it waits, how it renews.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <ctime>
#include <sstream>

#include "absl/strings/match.h"
#include "miglet/common/fake_clock.h"
#include "miglet/common/testing/fake_http_transport.h"
#include "miglet/operator/github/errors.h"
#include "miglet/operator/github/github_client.h"
#include "nlohmann/json.hpp"
#include "spdlog/sinks/ostream_sink.h"
#include "spdlog/spdlog.h"
#include "test_keys.h"

namespace miglet::github {
namespace {

using ::miglet::testing::FakeHttpTransport;
using ::miglet::testing::Respond;
using std::chrono::seconds;
using ::testing::HasSubstr;
using ::testing::Not;
using Json = nlohmann::json;
using Handler = FakeHttpTransport::Handler;

constexpr char kPat[] = "ghp_SECRETSECRETSECRET";

const testing::TestKey& Key() {
  static const testing::TestKey k = testing::MakeTestKey();
  return k;
}

struct Fixture {
  std::shared_ptr<FakeClock> clock = std::make_shared<FakeClock>();
  std::shared_ptr<FakeHttpTransport> transport;
  std::unique_ptr<GitHubClient> client;

  Fixture(Handler h, std::string url = "https://github.com/acme", bool app = false,
          int64_t installation_id = 4242) {
    clock->set_auto_advance(true);
    transport = std::make_shared<FakeHttpTransport>(std::move(h), "https://api.github.com");
    GitHubClientOptions o;
    o.url = std::move(url);
    if (app) {
      o.credentials.app_id = 7;
      o.credentials.installation_id = installation_id;
      o.credentials.private_key_pem = Key().private_pem;
    } else {
      o.credentials.token = kPat;
    }
    o.credentials.source = "Secret ci/gh";
    o.clock = clock;
    o.transport = transport;
    auto c = MakeGitHubClient(o);
    EXPECT_TRUE(c.ok()) << c.status();
    if (c.ok()) client = std::move(*c);
  }

  // Requests whose target contains `part`.
  int Count(const std::string& method, const std::string& part) const {
    int n = 0;
    for (const auto& r : transport->requests()) {
      if (r.method == method && absl::StrContains(r.target, part)) ++n;
    }
    return n;
  }
};

absl::StatusOr<ClientResponse> Ok(int status, Json body, HttpHeaders h = {}) {
  return Respond(status, body.dump(), std::move(h));
}

Json RunnerJson(int64_t id, const std::string& name, const std::string& status = "offline",
                bool busy = false) {
  return {{"id", id},
          {"name", name},
          {"os", "Linux"},
          {"status", status},
          {"busy", busy},
          {"ephemeral", true},
          {"runner_group_id", 1},
          {"labels", {{{"id", 1}, {"name", "linux"}, {"type", "custom"}}}}};
}

TEST(GitHubClientTest, RegistrationTokenWithGitHubsHeaders) {
  Fixture f([](const ClientRequest& r) {
    return Ok(201, {{"token", "LLBF3JGZDX3P5PMEXLND6TS6FCWO6"},
                    {"expires_at", "2020-01-22T12:13:35.123-08:00"}});
  });
  auto t = f.client->CreateRegistrationToken();
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->token, "LLBF3JGZDX3P5PMEXLND6TS6FCWO6");
  auto reqs = f.transport->requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].method, "POST");
  EXPECT_EQ(reqs[0].target, "/orgs/acme/actions/runners/registration-token");
  EXPECT_EQ(reqs[0].headers.Get("Accept"), "application/vnd.github+json");
  EXPECT_EQ(reqs[0].headers.Get("X-GitHub-Api-Version"), "2022-11-28");
  EXPECT_THAT(reqs[0].headers.Get("User-Agent").value_or(""), HasSubstr("mig-controller"));
  EXPECT_EQ(reqs[0].headers.Get("Authorization"), std::string("Bearer ") + kPat);

  auto r = f.client->CreateRemoveToken();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(f.transport->requests()[1].target, "/orgs/acme/actions/runners/remove-token");
}

TEST(GitHubClientTest, ListRunnersFollowsLinkPages) {
  Fixture f(
      [](const ClientRequest& r) {
        const std::string base = "https://api.github.com/repositories/9/actions/runners";
        if (absl::StrContains(r.target, "page=3")) {
          return Ok(200, {{"total_count", 5}, {"runners", {RunnerJson(5, "e")}}},
                    HttpHeaders{{"Link", "<" + base + "?per_page=2&page=1>; rel=\"first\""}});
        }
        if (absl::StrContains(r.target, "page=2")) {
          return Ok(200,
                    {{"total_count", 5}, {"runners", {RunnerJson(3, "c"), RunnerJson(4, "d")}}},
                    HttpHeaders{{"Link", "<" + base + "?per_page=2&page=3>; rel=\"next\", <" +
                                             base + "?per_page=2&page=3>; rel=\"last\""}});
        }
        return Ok(200, {{"total_count", 5}, {"runners", {RunnerJson(1, "a"), RunnerJson(2, "b")}}},
                  HttpHeaders{{"Link", "<" + base + "?per_page=2&page=2>; rel=\"next\", <" + base +
                                           "?per_page=2&page=3>; rel=\"last\""}});
      },
      "https://github.com/acme/app");
  auto runners = f.client->ListRunners();
  ASSERT_TRUE(runners.ok()) << runners.status();
  ASSERT_EQ(runners->size(), 5u);
  EXPECT_EQ((*runners)[4].name, "e");
  EXPECT_EQ((*runners)[0].labels, std::vector<std::string>{"linux"});
  auto reqs = f.transport->requests();
  ASSERT_EQ(reqs.size(), 3u);
  EXPECT_EQ(reqs[0].target, "/repos/acme/app/actions/runners?per_page=100");
  EXPECT_EQ(reqs[1].target,
            "https://api.github.com/repositories/9/actions/runners?per_page=2&page=2");

  // A name filter is sent encoded and checked on what comes back.
  Fixture g([](const ClientRequest& r) {
    return Ok(200, {{"total_count", 2}, {"runners", {RunnerJson(1, "vm a"), RunnerJson(2, "b")}}});
  });
  auto named = g.client->ListRunners("vm a");
  ASSERT_TRUE(named.ok());
  ASSERT_EQ(named->size(), 1u);
  EXPECT_EQ(g.transport->requests()[0].target,
            "/orgs/acme/actions/runners?per_page=100&name=vm%20a");
}

TEST(GitHubClientTest, ServerErrorsAndLostConnectionsAreRetriedWithBackoff) {
  int calls = 0;
  Fixture f([&](const ClientRequest&) -> absl::StatusOr<ClientResponse> {
    ++calls;
    if (calls == 1) return Respond(502, R"({"message":"Server Error"})");
    if (calls == 2) return TransportError(TransportFailure::kConnect, "refused");
    if (calls == 3) return Respond(503, "");
    return Ok(200, RunnerJson(9, "r"));
  });
  auto r = f.client->GetRunner(9);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(calls, 4);
  auto sleeps = f.clock->sleeps();
  ASSERT_EQ(sleeps.size(), 3u);
  // 1 s, 2 s, 4 s, each +-20%.
  EXPECT_GE(sleeps[0], std::chrono::milliseconds(800));
  EXPECT_LE(sleeps[0], std::chrono::milliseconds(1200));
  EXPECT_GE(sleeps[2], std::chrono::milliseconds(3200));
  EXPECT_LE(sleeps[2], std::chrono::milliseconds(4800));

  // Past max_attempts (5): the last error, naming the call and scope.
  Fixture g([](const ClientRequest&) { return Respond(500, R"({"message":"boom"})"); });
  auto e = g.client->GetRunner(9);
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(g.transport->count(), 5u);
  EXPECT_EQ(e.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(std::string(e.status().message()),
            "github get_runner (organization acme): HTTP 500: boom");

  // A 4xx is not retried.
  Fixture h([](const ClientRequest&) { return Respond(404, R"({"message":"Not Found"})"); });
  EXPECT_TRUE(github::IsNotFound(h.client->GetRunner(1).status()));
  EXPECT_EQ(h.transport->count(), 1u);
}

TEST(GitHubClientTest, SecondaryRateLimitIsWaitedOutAsRetryAfterSays) {
  int calls = 0;
  Fixture f([&](const ClientRequest&) -> absl::StatusOr<ClientResponse> {
    if (++calls == 1) {
      return Respond(403, R"({"message":"You have exceeded a secondary rate limit."})",
                     HttpHeaders{{"retry-after", "2"}});
    }
    return Ok(201, {{"token", "T"}, {"expires_at", "2026-11-27T13:00:00Z"}});
  });
  auto t = f.client->CreateRegistrationToken();
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(f.clock->sleeps(), std::vector<Duration>{seconds(2)});
}

TEST(GitHubClientTest, LongRateLimitIsReportedAndHoldsLaterCallsBack) {
  Fixture f([](const ClientRequest&) {
    return Respond(429, R"({"message":"You have exceeded a secondary rate limit."})",
                   HttpHeaders{{"retry-after", "3600"}});
  });
  auto t = f.client->CreateRegistrationToken();
  ASSERT_FALSE(t.ok());
  EXPECT_TRUE(IsRateLimited(t.status()));
  EXPECT_EQ(RetryAfter(t.status()), seconds(3600));
  EXPECT_EQ(f.transport->count(), 1u);
  // The next call is not sent while the limit lasts.
  auto l = f.client->ListRunners();
  EXPECT_TRUE(IsRateLimited(l.status()));
  EXPECT_GT(RetryAfter(l.status()), seconds(3500));
  EXPECT_EQ(f.transport->count(), 1u);
}

TEST(GitHubClientTest, PrimaryLimitExhaustedWaitsForTheReset) {
  const int64_t now = 1'800'000'000;
  int calls = 0;
  Fixture f([&](const ClientRequest&) {
    ++calls;
    // The first answer spends the last request of the window, which resets in 30 s.
    return Ok(200, {{"total_count", 0}, {"runners", Json::array()}},
              HttpHeaders{{"x-ratelimit-remaining", calls == 1 ? "0" : "4999"},
                          {"x-ratelimit-reset", std::to_string(now + 30)}});
  });
  ASSERT_TRUE(f.client->ListRunners().ok());
  EXPECT_TRUE(f.clock->sleeps().empty());
  ASSERT_TRUE(f.client->ListRunners().ok());
  EXPECT_EQ(f.clock->sleeps(), std::vector<Duration>{seconds(30)});
  EXPECT_EQ(calls, 2);
}

TEST(GitHubClientTest, AppInstallationTokenIsLookedUpCachedAndRenewedBeforeExpiry) {
  int tokens = 0;
  std::string jwt_seen;
  std::shared_ptr<FakeClock> clock;
  Fixture f(
      [&](const ClientRequest& r) -> absl::StatusOr<ClientResponse> {
        if (r.target == "/orgs/acme/installation") {
          jwt_seen = r.headers.Get("Authorization").value_or("");
          return Ok(200, {{"id", 4242}, {"app_id", 7}});
        }
        if (r.target == "/app/installations/4242/access_tokens") {
          ++tokens;
          // One hour from the fake clock's now.
          const int64_t exp = 1'800'000'000 + 3600;
          char buf[32];
          std::time_t t = exp;
          std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
          return Ok(201, {{"token", "ghs_token" + std::to_string(tokens)}, {"expires_at", buf}});
        }
        if (r.headers.Get("Authorization") != "Bearer ghs_token" + std::to_string(tokens)) {
          return Respond(401, R"({"message":"Bad credentials"})");
        }
        return Ok(201, {{"token", "REG"}, {"expires_at", "2030-01-01T00:00:00Z"}});
      },
      "https://github.com/acme", /*app=*/true, /*installation_id=*/0);
  ASSERT_TRUE(f.client->CreateRegistrationToken().ok());
  EXPECT_EQ(f.Count("GET", "/installation"), 1);
  EXPECT_EQ(tokens, 1);
  EXPECT_THAT(jwt_seen, HasSubstr("Bearer ey"));  // a JWT, not an installation token
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(f.client->CreateRegistrationToken().ok());
  EXPECT_EQ(tokens, 1);
  // 58 min later the token is still used; past 59 min (60 s before expiry) it is renewed.
  f.clock->Advance(std::chrono::minutes(58));
  ASSERT_TRUE(f.client->CreateRegistrationToken().ok());
  EXPECT_EQ(tokens, 1);
  f.clock->Advance(std::chrono::seconds(61));
  ASSERT_TRUE(f.client->CreateRegistrationToken().ok());
  EXPECT_EQ(tokens, 2);
  EXPECT_EQ(f.Count("GET", "/installation"), 1);  // the id is remembered
}

TEST(GitHubClientTest, A401RenewsTheInstallationTokenOnce) {
  int tokens = 0;
  bool revoke_all = false;
  Fixture f(
      [&](const ClientRequest& r) -> absl::StatusOr<ClientResponse> {
        if (absl::StrContains(r.target, "/access_tokens")) {
          ++tokens;
          return Ok(201, {{"token", "ghs_" + std::to_string(tokens)},
                          {"expires_at", "2030-01-01T00:00:00Z"}});
        }
        // GitHub revoked the first token early (or every token, when told).
        if (revoke_all || r.headers.Get("Authorization") == "Bearer ghs_1") {
          return Respond(401, R"({"message":"Bad credentials","status":"401"})");
        }
        return Ok(200, RunnerJson(1, "r"));
      },
      "https://github.com/acme", /*app=*/true);
  auto r = f.client->GetRunner(1);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(tokens, 2);
  // Still refused after one renewal: the error, not a loop.
  revoke_all = true;
  auto e = f.client->GetRunner(1);
  EXPECT_TRUE(IsBadCredentials(e.status()));
  EXPECT_EQ(tokens, 3);
  // A PAT cannot be renewed: one request, one 401.
  Fixture p([](const ClientRequest&) { return Respond(401, R"({"message":"Bad credentials"})"); });
  EXPECT_TRUE(IsBadCredentials(p.client->GetRunner(1).status()));
  EXPECT_EQ(p.transport->count(), 1u);
}

TEST(GitHubClientTest, JitConfigReplacesAnOfflineLeftoverButNeverAnOnlineRunner) {
  bool taken = true;
  std::string runner_status = "offline";
  Fixture f([&](const ClientRequest& r) -> absl::StatusOr<ClientResponse> {
    if (r.method == "POST" && absl::StrContains(r.target, "generate-jitconfig")) {
      auto body = Json::parse(r.body);
      EXPECT_EQ(body["name"], "vm-1");
      EXPECT_EQ(body["runner_group_id"], 3);
      EXPECT_EQ(body["labels"], Json::array({"linux", "gpu"}));
      EXPECT_EQ(body["work_folder"], "_work");
      if (taken) {
        return Respond(
            409, R"({"message":"Already exists - A runner with the name vm-1 already exists."})");
      }
      return Ok(201, {{"runner", RunnerJson(77, "vm-1")}, {"encoded_jit_config", "eyJjb25m"}});
    }
    if (r.method == "GET" && absl::StrContains(r.target, "name=vm-1")) {
      return Ok(200, {{"total_count", 1}, {"runners", {RunnerJson(70, "vm-1", runner_status)}}});
    }
    if (r.method == "DELETE" && absl::EndsWith(r.target, "/actions/runners/70")) {
      taken = false;
      return Respond(204);
    }
    return Respond(500, "unexpected " + r.method + " " + r.target);
  });
  JitConfigRequest req{.name = "vm-1", .runner_group_id = 3, .labels = {"linux", "gpu"}};
  runner_status = "online";
  auto busy = f.client->GenerateJitConfig(req);
  EXPECT_TRUE(IsRunnerNameTaken(busy.status())) << busy.status();
  EXPECT_EQ(f.Count("DELETE", "/actions/runners/"), 0);

  runner_status = "offline";
  auto jit = f.client->GenerateJitConfig(req);
  ASSERT_TRUE(jit.ok()) << jit.status();
  EXPECT_EQ(jit->runner.id, 77);
  EXPECT_EQ(jit->encoded_jit_config, "eyJjb25m");
  EXPECT_EQ(f.Count("DELETE", "/actions/runners/70"), 1);

  taken = true;
  req.replace_offline = false;
  EXPECT_TRUE(IsRunnerNameTaken(f.client->GenerateJitConfig(req).status()));

  EXPECT_EQ(f.client->GenerateJitConfig({.name = "x", .labels = {}}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(GitHubClientTest, DeleteTreatsGoneAsDoneAndReportsBusy) {
  Fixture f([](const ClientRequest& r) -> absl::StatusOr<ClientResponse> {
    if (absl::EndsWith(r.target, "/1")) return Respond(204);
    if (absl::EndsWith(r.target, "/2")) return Respond(404, R"({"message":"Not Found"})");
    return Respond(422, R"({"message":"Bad request - Runner \"r3\" is still running a job\""})");
  });
  EXPECT_TRUE(f.client->DeleteRunner(1).ok());
  EXPECT_TRUE(f.client->DeleteRunner(2).ok());
  auto busy = f.client->DeleteRunner(3);
  EXPECT_TRUE(IsRunnerBusy(busy));
  EXPECT_EQ(busy.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(f.transport->requests()[0].method, "DELETE");
  EXPECT_EQ(f.transport->requests()[0].target, "/orgs/acme/actions/runners/1");
}

TEST(GitHubClientTest, RunnerGroupsByNameArePagedAndCached) {
  Fixture f([](const ClientRequest& r) -> absl::StatusOr<ClientResponse> {
    if (absl::StrContains(r.target, "page=2")) {
      return Ok(200, {{"total_count", 3}, {"runner_groups", {{{"id", 9}, {"name", "gpu"}}}}});
    }
    return Ok(200,
              {{"total_count", 3},
               {"runner_groups", {{{"id", 1}, {"name", "Default"}}, {{"id", 4}, {"name", "arm"}}}}},
              HttpHeaders{{"link",
                           "<https://api.github.com/orgs/acme/actions/runner-groups?per_page=100&"
                           "page=2>; rel=\"next\""}});
  });
  EXPECT_EQ(*f.client->RunnerGroupId(""), 1);
  EXPECT_EQ(*f.client->RunnerGroupId("Default"), 1);
  EXPECT_EQ(f.transport->count(), 0u);
  EXPECT_EQ(*f.client->RunnerGroupId("gpu"), 9);
  EXPECT_EQ(f.transport->count(), 2u);
  EXPECT_EQ(*f.client->RunnerGroupId("arm"), 4);
  EXPECT_EQ(f.transport->count(), 2u);  // cached
  auto missing = f.client->RunnerGroupId("nope");
  EXPECT_TRUE(github::IsNotFound(missing.status()));
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr("runner group \"nope\""));

  Fixture repo([](const ClientRequest&) { return Respond(500); }, "https://github.com/a/b");
  EXPECT_EQ(*repo.client->RunnerGroupId("default"), 1);
  EXPECT_EQ(repo.client->RunnerGroupId("gpu").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(GitHubClientTest, BadSetupsFailWhenMade) {
  GitHubClientOptions o;
  o.url = "https://github.com/enterprises/big";
  o.credentials.app_id = 1;
  o.credentials.private_key_pem = Key().private_pem;
  o.credentials.source = "Secret ci/gh";
  auto c = MakeGitHubClient(o);
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(std::string(c.status().message()), HasSubstr("manage_runners:enterprise"));

  o.url = "https://github.com/acme";
  o.credentials = {};
  o.credentials.source = "Secret ci/gh";
  c = MakeGitHubClient(o);
  EXPECT_THAT(std::string(c.status().message()), HasSubstr("Secret ci/gh: holds neither"));

  o.url = "github.com/acme";
  o.credentials.token = "t";
  EXPECT_EQ(MakeGitHubClient(o).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(GitHubClientTest, AnAppThatIsNotInstalledNeverReadsAsRunnerGone) {
  // Every token request 404s (the App was uninstalled, or the installation id is stale).
  Fixture f(
      [](const ClientRequest& r) -> absl::StatusOr<ClientResponse> {
        if (absl::StrContains(r.target, "installation")) {
          return Respond(404, R"({"message":"Not Found"})");
        }
        return Respond(204);
      },
      "https://github.com/acme", /*app=*/true);
  auto del = f.client->DeleteRunner(5);
  EXPECT_FALSE(del.ok()) << "a delete that never reached GitHub must not count as done";
  EXPECT_TRUE(IsBadCredentials(del));
  auto get = f.client->GetRunner(5);
  EXPECT_FALSE(github::IsNotFound(get.status())) << get.status();
  EXPECT_EQ(f.Count("DELETE", "/actions/runners/"), 0);
}

TEST(GitHubClientTest, RateLimitResetIsReadAgainstGitHubsClock) {
  // GitHub's clock is 100 s behind ours; the window resets 30 s from GitHub's now.
  const int64_t ours = 1'800'000'000;
  const int64_t theirs = ours - 100;
  char date[64];
  std::time_t t = theirs;
  std::strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", std::gmtime(&t));
  int calls = 0;
  Fixture f([&](const ClientRequest&) {
    ++calls;
    return Ok(200, {{"total_count", 0}, {"runners", Json::array()}},
              HttpHeaders{{"Date", date},
                          {"x-ratelimit-remaining", calls == 1 ? "0" : "4999"},
                          {"x-ratelimit-reset", std::to_string(theirs + 30)}});
  });
  ASSERT_TRUE(f.client->ListRunners().ok());
  ASSERT_TRUE(f.client->ListRunners().ok());
  EXPECT_EQ(f.clock->sleeps(), std::vector<Duration>{seconds(30)});
}

TEST(GitHubClientTest, NoSecretInAnyLogLineOrError) {
  // Secrets in play: an App key, an installation token, a registration token, a JIT config.
  const std::string install_token = "ghs_INSTALLATIONTOKENSECRET0123456789ab";
  const std::string reg_token = "REGTOKENSECRETABCDEFGHIJKLMN";
  const std::string jit = "eyJKSVRDT05GSUdTRUNSRVQiOiJ4In0=";
  std::ostringstream logs;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(logs);
  spdlog::default_logger()->sinks().push_back(sink);
  int posts = 0;
  Fixture f(
      [&](const ClientRequest& r) -> absl::StatusOr<ClientResponse> {
        if (absl::StrContains(r.target, "/access_tokens")) {
          return Ok(201, {{"token", install_token}, {"expires_at", "2030-01-01T00:00:00Z"}});
        }
        if (absl::StrContains(r.target, "registration-token")) {
          return Ok(201, {{"token", reg_token}, {"expires_at", "2030-01-01T00:00:00Z"}});
        }
        if (absl::StrContains(r.target, "generate-jitconfig")) {
          if (++posts == 1) {
            return Ok(201, {{"runner", RunnerJson(1, "r")}, {"encoded_jit_config", jit}});
          }
          return Respond(
              409, R"({"message":"Already exists - A runner with the name r already exists."})");
        }
        if (r.method == "GET") return Respond(401, R"({"message":"Bad credentials"})");
        return Respond(503, "");
      },
      "https://github.com/acme", /*app=*/true);
  std::vector<absl::Status> errors;
  ASSERT_TRUE(f.client->CreateRegistrationToken().ok());
  ASSERT_TRUE(f.client->GenerateJitConfig({.name = "r", .labels = {"x"}}).ok());
  errors.push_back(f.client->GenerateJitConfig({.name = "r", .labels = {"x"}}).status());
  errors.push_back(f.client->ListRunners().status());
  errors.push_back(f.client->GetRunner(1).status());
  errors.push_back(f.client->DeleteRunner(1));
  errors.push_back(f.client->CreateRemoveToken().status());
  spdlog::default_logger()->sinks().pop_back();
  std::string text = logs.str();
  for (const auto& s : errors) {
    EXPECT_FALSE(s.ok());
    text += std::string(s.message()) + "\n";
  }
  EXPECT_THAT(text, HasSubstr("github list_runners (organization acme)"));  // the log was read
  for (const std::string& secret : {install_token, reg_token, jit, Key().private_pem}) {
    EXPECT_THAT(text, Not(HasSubstr(secret)));
  }
  EXPECT_THAT(text, Not(HasSubstr("BEGIN PRIVATE KEY")));
}

}  // namespace
}  // namespace miglet::github
