#include "api.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "absl/strings/match.h"
#include "miglet/common/fake_clock.h"
#include "miglet/common/testing/fake_http_transport.h"
#include "miglet/operator/github/errors.h"
#include "nlohmann/json.hpp"
#include "test_keys.h"

namespace miglet::github {
namespace {

using std::chrono::seconds;
using ::testing::HasSubstr;

const WallTime kNow{seconds(1'800'000'000)};

ClientResponse Resp(int status, std::string body, HttpHeaders h = {}) {
  ClientResponse r;
  r.status = status;
  r.body = std::move(body);
  r.headers = std::move(h);
  return r;
}

TEST(RateLimitTest, SecondaryWithRetryAfter) {
  auto v = ClassifyRateLimit(403, HttpHeaders{{"Retry-After", "7"}},
                             "You have exceeded a secondary rate limit.", kNow);
  EXPECT_EQ(v.kind, RateLimitVerdict::Kind::kSecondary);
  EXPECT_EQ(v.wait, seconds(7));
  v = ClassifyRateLimit(429, HttpHeaders{{"retry-after", "2"}}, "", kNow);
  EXPECT_EQ(v.kind, RateLimitVerdict::Kind::kSecondary);
  EXPECT_EQ(v.wait, seconds(2));
}

TEST(RateLimitTest, PrimaryWaitsUntilReset) {
  auto v = ClassifyRateLimit(
      403, HttpHeaders{{"x-ratelimit-remaining", "0"}, {"x-ratelimit-reset", "1800000042"}},
      "API rate limit exceeded for installation ID 4242.", kNow);
  EXPECT_EQ(v.kind, RateLimitVerdict::Kind::kPrimary);
  EXPECT_EQ(v.wait, seconds(42));
  // A reset already past still waits a second rather than hammering.
  v = ClassifyRateLimit(
      429, HttpHeaders{{"x-ratelimit-remaining", "0"}, {"x-ratelimit-reset", "1700000000"}}, "",
      kNow);
  EXPECT_EQ(v.wait, seconds(1));
}

TEST(RateLimitTest, SecondaryByMessageWaitsAMinuteAndPermissionErrorsAreNotLimits) {
  auto v = ClassifyRateLimit(403, {}, "You have exceeded a secondary rate limit and ...", kNow);
  EXPECT_EQ(v.kind, RateLimitVerdict::Kind::kSecondary);
  EXPECT_EQ(v.wait, seconds(60));
  v = ClassifyRateLimit(403, HttpHeaders{{"x-ratelimit-remaining", "4999"}},
                        "Resource not accessible by integration", kNow);
  EXPECT_EQ(v.kind, RateLimitVerdict::Kind::kNone);
  EXPECT_EQ(ClassifyRateLimit(502, HttpHeaders{{"retry-after", "1"}}, "", kNow).kind,
            RateLimitVerdict::Kind::kNone);
}

TEST(ErrorMappingTest, KindsCodesAndMessages) {
  auto e = ErrorFromResponse(
      "generate_jitconfig", "organization acme",
      Resp(409, R"({"message":"Already exists - A runner with the name r-1 already exists."})",
           HttpHeaders{{"X-GitHub-Request-Id", "AB:CD"}}),
      kNow);
  EXPECT_EQ(e.kind, GitHubError::Kind::kRunnerNameTaken);
  absl::Status s = MakeStatus(e);
  EXPECT_TRUE(IsRunnerNameTaken(s));
  EXPECT_EQ(s.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(std::string(s.message()),
            "github generate_jitconfig (organization acme): HTTP 409: Already exists - A runner "
            "with the name r-1 already exists. [request AB:CD]");

  e = ErrorFromResponse("generate_jitconfig", "organization acme",
                        Resp(422, R"({"message":"A runner with the name r-1 already exists."})"),
                        kNow);
  EXPECT_TRUE(IsRunnerNameTaken(MakeStatus(e)));

  e = ErrorFromResponse(
      "delete_runner", "repository a/b",
      Resp(422, R"({"message":"Bad request - Runner \"r\" is still running a job\""})"), kNow);
  EXPECT_TRUE(IsRunnerBusy(MakeStatus(e)));
  EXPECT_EQ(MakeStatus(e).code(), absl::StatusCode::kFailedPrecondition);

  e = ErrorFromResponse("list_runners", "organization acme",
                        Resp(401, R"({"message":"Bad credentials","status":"401"})"), kNow);
  EXPECT_TRUE(IsBadCredentials(MakeStatus(e)));
  EXPECT_EQ(MakeStatus(e).code(), absl::StatusCode::kUnauthenticated);

  e = ErrorFromResponse("get_runner", "organization acme", Resp(404, R"({"message":"Not Found"})"),
                        kNow);
  EXPECT_TRUE(github::IsNotFound(MakeStatus(e)));

  e = ErrorFromResponse("list_runners", "organization acme",
                        Resp(403, R"({"message":"You have exceeded a secondary rate limit."})",
                             HttpHeaders{{"retry-after", "30"}}),
                        kNow);
  s = MakeStatus(e);
  EXPECT_TRUE(IsRateLimited(s));
  EXPECT_EQ(RetryAfter(s), seconds(30));
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(s.message()), HasSubstr("(retry after 30s)"));

  e = ErrorFromResponse("list_runners", "organization acme", Resp(503, "<html>down</html>"), kNow);
  EXPECT_EQ(MakeStatus(e).code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(e.message, "<html>down</html>");

  EXPECT_FALSE(GetGitHubError(absl::NotFoundError("x")).has_value());
  EXPECT_FALSE(github::IsNotFound(absl::NotFoundError("x")));
}

TEST(LinkTest, NextFromGitHubsLinkHeader) {
  EXPECT_EQ(NextLink("<https://api.github.com/organizations/1/actions/runners?per_page=100&page=2>;"
                     " rel=\"next\", <https://api.github.com/organizations/1/actions/runners?"
                     "per_page=100&page=5>; rel=\"last\""),
            "https://api.github.com/organizations/1/actions/runners?per_page=100&page=2");
  EXPECT_EQ(NextLink("<https://x/a?page=1>; rel=\"prev\", <https://x/a?page=3>; rel=\"next\", "
                     "<https://x/a?page=1>; rel=\"first\""),
            "https://x/a?page=3");
  EXPECT_FALSE(NextLink("<https://x/a?page=1>; rel=\"prev\", <https://x/a?page=1>; rel=\"first\"")
                   .has_value());
  EXPECT_FALSE(NextLink("").has_value());
  EXPECT_FALSE(NextLink("garbage; rel=\"next\"").has_value());
}

TEST(TimestampTest, Rfc3339WithOffsetAndFraction) {
  auto t = ParseTimestamp("2020-01-22T12:13:35.123-08:00");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(std::chrono::duration_cast<std::chrono::milliseconds>(t->time_since_epoch()).count(),
            1579724015123);
  t = ParseTimestamp("2026-11-27T13:00:00Z");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(std::chrono::duration_cast<std::chrono::seconds>(t->time_since_epoch()).count(),
            1795784400);
  EXPECT_FALSE(ParseTimestamp("yesterday").ok());
}

TEST(ServerTimeTest, FromTheDateHeader) {
  auto t = ServerTime(HttpHeaders{{"Date", "Fri, 27 Nov 2026 13:00:00 GMT"}});
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(std::chrono::duration_cast<seconds>(t->time_since_epoch()).count(), 1795784400);
  EXPECT_FALSE(ServerTime(HttpHeaders{{"Date", "yesterday"}}).has_value());
  EXPECT_FALSE(ServerTime({}).has_value());
}

TEST(CredentialsErrorTest, AnInnerNotFoundIsNeverTheOuterCallsNotFound) {
  // The installation token could not be had because the App is not installed (404).
  GitHubError inner{
      .status = 404, .call = "create_installation_token", .scope = "organization acme"};
  inner.message = "Not Found";
  absl::Status s = CredentialsError("delete_runner", "organization acme", MakeStatus(inner));
  EXPECT_FALSE(github::IsNotFound(s));
  EXPECT_TRUE(IsBadCredentials(s));
  EXPECT_EQ(GetGitHubError(s)->call, "delete_runner");
  EXPECT_THAT(std::string(s.message()), HasSubstr("credentials: github create_installation_token"));

  GitHubError limited{.kind = GitHubError::Kind::kSecondaryRateLimit, .status = 403};
  limited.retry_after_seconds = 30;
  s = CredentialsError("get_runner", "organization acme", MakeStatus(limited));
  EXPECT_TRUE(IsRateLimited(s));
  EXPECT_EQ(RetryAfter(s), seconds(30));

  s = CredentialsError("get_runner", "enterprise big",
                       absl::InvalidArgumentError("a GitHub App cannot manage ..."));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(GetGitHubError(s).has_value());

  s = CredentialsError("get_runner", "organization acme",
                       TransportError(TransportFailure::kConnect, "refused"));
  EXPECT_EQ(GetTransportFailure(s), TransportFailure::kConnect);
  EXPECT_FALSE(github::IsNotFound(s));
}

TEST(InstallationTokenSourceTest, HundredConcurrentCallersShareOneRenewal) {
  auto clock = std::make_shared<FakeClock>();
  std::shared_ptr<InstallationTokenSource> source;
  std::atomic<int> renewals{0};
  auto transport = std::make_shared<miglet::testing::FakeHttpTransport>(
      [&](const ClientRequest&) -> absl::StatusOr<ClientResponse> {
        ++renewals;
        // Hold the renewal until the 99 other callers are parked waiting for it (a deadline
        // only for a broken build, where they never park).
        const auto deadline = std::chrono::steady_clock::now() + seconds(20);
        while (source->waiting() < 99 && std::chrono::steady_clock::now() < deadline) {
          std::this_thread::yield();
        }
        EXPECT_EQ(source->waiting(), 99);
        return miglet::testing::Respond(
            201, R"({"token":"ghs_shared","expires_at":"2030-01-01T00:00:00Z"})");
      });
  Scope scope;
  scope.owner = "acme";
  auto api = std::make_shared<Api>(transport, ApiConfig{.scope = scope, .user_agent = "t"}, clock,
                                   nullptr);
  auto key = AppKey::Parse(testing::MakeTestKey().private_pem, "test");
  ASSERT_TRUE(key.ok());
  source = std::make_shared<InstallationTokenSource>(api, *key, 7, 4242, seconds(60));
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int i = 0; i < 100; ++i) {
    threads.emplace_back([&] {
      auto t = source->Token();
      if (t.ok() && *t == "ghs_shared") ++ok;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 100);
  EXPECT_EQ(renewals.load(), 1);
  EXPECT_EQ(source->renewals(), 1);
}

}  // namespace
}  // namespace miglet::github
