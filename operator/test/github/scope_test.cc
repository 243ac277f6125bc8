#include "miglet/operator/github/scope.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace miglet::github {
namespace {

using ::testing::HasSubstr;

TEST(ScopeTest, GitHubDotCom) {
  auto s = ParseGitHubUrl("https://github.com/acme");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->kind, Scope::Kind::kOrganization);
  EXPECT_EQ(s->owner, "acme");
  EXPECT_EQ(s->api_base, "https://api.github.com");
  EXPECT_EQ(s->ApiPath(), "/orgs/acme");
  EXPECT_EQ(s->url, "https://github.com/acme");
  EXPECT_EQ(s->Describe(), "organization acme");

  s = ParseGitHubUrl("https://github.com/acme/app.web_2/");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->kind, Scope::Kind::kRepository);
  EXPECT_EQ(s->ApiPath(), "/repos/acme/app.web_2");
  EXPECT_EQ(s->url, "https://github.com/acme/app.web_2");
  EXPECT_EQ(s->Describe(), "repository acme/app.web_2");

  s = ParseGitHubUrl("https://github.com/enterprises/big-co");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->kind, Scope::Kind::kEnterprise);
  EXPECT_EQ(s->enterprise, "big-co");
  EXPECT_EQ(s->ApiPath(), "/enterprises/big-co");
  EXPECT_EQ(s->api_base, "https://api.github.com");
}

TEST(ScopeTest, EnterpriseServerAndGheCom) {
  auto s = ParseGitHubUrl("https://ghe.example.com/acme/app");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->api_base, "https://ghe.example.com/api/v3");
  EXPECT_EQ(s->url, "https://ghe.example.com/acme/app");

  s = ParseGitHubUrl("https://127.0.0.1:8443/enterprises/big");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->api_base, "https://127.0.0.1:8443/api/v3");
  EXPECT_EQ(s->kind, Scope::Kind::kEnterprise);

  s = ParseGitHubUrl("https://octo.ghe.com/acme");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->api_base, "https://api.octo.ghe.com");
}

TEST(ScopeTest, BadUrlsSayWhatIsAccepted) {
  for (const char* bad :
       {"github.com/acme", "https://github.com", "https://github.com/", "https://github.com/a/b/c",
        "https://github.com/ac%2Fme", "https://github.com/acme?x=1", "http://github.com/acme",
        "https://github.com/enterprises/", "https://github.com/acme/..", "ftp://github.com/acme"}) {
    auto s = ParseGitHubUrl(bad);
    ASSERT_FALSE(s.ok()) << bad;
    EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(std::string(s.status().message()), HasSubstr("want https://HOST/ORG")) << bad;
    EXPECT_THAT(std::string(s.status().message()), HasSubstr(bad)) << bad;
  }
}

}  // namespace
}  // namespace miglet::github
