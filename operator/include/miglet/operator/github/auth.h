#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "miglet/common/clock.h"

// How mig-controller proves itself to GitHub: a personal access token, or a GitHub App (an RS256
// JWT signed with the App's private key, exchanged for an installation token).
namespace miglet::github {

// What a credentials Secret holds (actions-runner-controller's key names, so its Secrets work
// unchanged): either a PAT, or an App id + private key (+ installation id, looked up from the
// scope when absent).
struct Credentials {
  std::string token;            // github_token
  int64_t app_id = 0;           // github_app_id
  int64_t installation_id = 0;  // github_app_installation_id (0: look it up)
  std::string private_key_pem;  // github_app_private_key
  std::string source;           // "Secret ci/github-app", for messages

  bool is_app() const { return app_id != 0; }
};

inline constexpr char kTokenKey[] = "github_token";
inline constexpr char kAppIdKey[] = "github_app_id";
inline constexpr char kInstallationIdKey[] = "github_app_installation_id";
inline constexpr char kPrivateKeyKey[] = "github_app_private_key";

// An RSA private key in PEM (PKCS#1 as GitHub hands it out, or PKCS#8).
class AppKey {
 public:
  // `source` names where the PEM came from in the error ("Secret ci/app key
  // github_app_private_key").
  static absl::StatusOr<AppKey> Parse(const std::string& pem, const std::string& source);
  // RSASSA-PKCS1-v1_5 with SHA-256 over `data`.
  absl::StatusOr<std::string> SignRs256(const std::string& data) const;

 private:
  struct Impl;
  explicit AppKey(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<Impl> impl_;
};

// The App JWT GitHub asks for: header {"alg":"RS256","typ":"JWT"}, claims iat = now - 60 s (to
// allow for clock drift, as GitHub recommends), exp = now + 9 min (GitHub refuses more than
// 10), iss = the App id.
absl::StatusOr<std::string> MakeAppJwt(const AppKey& key, int64_t app_id, WallTime now);

// Supplies the bearer token for each request.
class TokenSource {
 public:
  virtual ~TokenSource() = default;
  virtual absl::StatusOr<std::string> Token() = 0;
  // `token` was refused with 401. Returns true when a different token can be had (the next
  // Token() gets it): an installation token is renewed, a PAT cannot be.
  virtual bool Invalidate(const std::string& token) = 0;
};

class StaticTokenSource final : public TokenSource {
 public:
  explicit StaticTokenSource(std::string token) : token_(std::move(token)) {}
  absl::StatusOr<std::string> Token() override { return token_; }
  bool Invalidate(const std::string&) override { return false; }

 private:
  std::string token_;
};

}  // namespace miglet::github
