#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/escaping.h"
#include "absl/strings/str_split.h"
#include "miglet/operator/github/auth.h"
#include "miglet/operator/github/credentials.h"
#include "nlohmann/json.hpp"
#include "test_keys.h"

namespace miglet::github {
namespace {

using ::testing::HasSubstr;
using testing::MakeTestKey;
using testing::VerifyRs256;

const testing::TestKey& Key() {
  static const testing::TestKey k = MakeTestKey();
  return k;
}

TEST(AppJwtTest, ClaimsAndSignatureVerifyWithOpenSsl) {
  auto key = AppKey::Parse(Key().private_pem, "test key");
  ASSERT_TRUE(key.ok()) << key.status();
  const WallTime now{std::chrono::seconds(1'800'000'000)};
  auto jwt = MakeAppJwt(*key, 12345, now);
  ASSERT_TRUE(jwt.ok()) << jwt.status();
  std::vector<std::string> parts = absl::StrSplit(*jwt, '.');
  ASSERT_EQ(parts.size(), 3u);
  for (const auto& p : parts) {
    EXPECT_EQ(p.find('='), std::string::npos) << "base64url without padding";
    EXPECT_EQ(p.find('+'), std::string::npos);
    EXPECT_EQ(p.find('/'), std::string::npos);
  }
  std::string header, claims, sig;
  ASSERT_TRUE(absl::WebSafeBase64Unescape(parts[0], &header));
  ASSERT_TRUE(absl::WebSafeBase64Unescape(parts[1], &claims));
  ASSERT_TRUE(absl::WebSafeBase64Unescape(parts[2], &sig));
  auto h = nlohmann::json::parse(header);
  EXPECT_EQ(h["alg"], "RS256");
  EXPECT_EQ(h["typ"], "JWT");
  auto c = nlohmann::json::parse(claims);
  EXPECT_EQ(c["iss"], "12345");
  EXPECT_EQ(c["iat"].get<int64_t>(), 1'800'000'000 - 60);  // 60 s in the past
  const int64_t exp = c["exp"].get<int64_t>();
  EXPECT_GT(exp, 1'800'000'000);
  EXPECT_LE(exp, 1'800'000'000 + 600);  // GitHub refuses more than 10 minutes
  EXPECT_TRUE(VerifyRs256(Key().public_pem, parts[0] + "." + parts[1], sig));
  // Another key's signature does not verify, nor does a tampered payload.
  EXPECT_FALSE(VerifyRs256(MakeTestKey(1024).public_pem, parts[0] + "." + parts[1], sig));
  EXPECT_FALSE(VerifyRs256(Key().public_pem, parts[0] + "." + parts[1] + "x", sig));
}

TEST(AppKeyTest, BadKeysAreNamed) {
  auto k = AppKey::Parse("hello", "Secret ci/gh key github_app_private_key");
  ASSERT_FALSE(k.ok());
  EXPECT_THAT(std::string(k.status().message()),
              HasSubstr("Secret ci/gh key github_app_private_key: not a PEM private key"));
  k = AppKey::Parse("-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n",
                    "src");
  ASSERT_FALSE(k.ok());
  EXPECT_THAT(std::string(k.status().message()), HasSubstr("src: cannot read the private key"));
}

nlohmann::json Secret(std::map<std::string, std::string> data) {
  nlohmann::json j = {{"metadata", {{"namespace", "ci"}, {"name", "gh"}}},
                      {"data", nlohmann::json::object()}};
  for (auto& [k, v] : data) j["data"][k] = absl::Base64Escape(v);
  return j;
}

TEST(CredentialsTest, PatAndApp) {
  auto c = CredentialsFromSecret(Secret({{"github_token", "ghp_abc\n"}}));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->token, "ghp_abc");
  EXPECT_FALSE(c->is_app());
  EXPECT_EQ(c->source, "Secret ci/gh");

  c = CredentialsFromSecret(Secret({{"github_app_id", "42"},
                                    {"github_app_installation_id", "4242"},
                                    {"github_app_private_key", Key().private_pem}}));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE(c->is_app());
  EXPECT_EQ(c->app_id, 42);
  EXPECT_EQ(c->installation_id, 4242);
}

TEST(CredentialsTest, ErrorsNameSecretAndKey) {
  struct Case {
    std::map<std::string, std::string> data;
    std::string want;
  };
  for (const auto& tc : std::vector<Case>{
           {{}, "Secret ci/gh: key github_token: missing"},
           {{{"github_app_id", "x1"}, {"github_app_private_key", "k"}},
            "Secret ci/gh: key github_app_id: \"x1\" is not a positive number"},
           {{{"github_app_id", "1"}}, "Secret ci/gh: key github_app_private_key: missing"},
           {{{"github_app_id", "1"}, {"github_app_private_key", "junk"}},
            "Secret ci/gh: key github_app_private_key: not a PEM private key"},
           {{{"github_app_private_key", "k"}}, "Secret ci/gh: key github_app_id: missing"},
           {{{"github_app_id", "1"}, {"github_token", "t"}, {"github_app_private_key", "k"}},
            "holds both github_token and github_app_id"},
       }) {
    auto c = CredentialsFromSecret(Secret(tc.data));
    ASSERT_FALSE(c.ok()) << tc.want;
    EXPECT_THAT(std::string(c.status().message()), HasSubstr(tc.want));
  }
  auto j = Secret({});
  j["data"]["github_token"] = "!!!not base64";
  auto c = CredentialsFromSecret(j);
  EXPECT_THAT(std::string(c.status().message()),
              HasSubstr("Secret ci/gh: key github_token: not valid base64"));
}

}  // namespace
}  // namespace miglet::github
