#pragma once

// The GitHub stand-in (tests/github-standin) for one test: started in a directory of its own
// with an App (a fresh RSA key) installed on `acme` and a PAT, stopped when the test ends. Also a
// fake runner process, and a capture of this process's log lines, for the secrets scan.
#include <sys/types.h>

#include <filesystem>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "miglet/common/http_transport.h"
#include "miglet/operator/github/github_client.h"
#include "nlohmann/json.hpp"

namespace miglet::github::testing {

namespace fs = std::filesystem;
using Json = nlohmann::json;

inline constexpr char kTestPat[] = "ghp_standinTestPat0123456789abcdefABCDEF";
inline constexpr int64_t kAppId = 1;
inline constexpr int64_t kInstallationId = 4242;

class StandIn {
 public:
  // `extra_args` go to `github-standin serve` (e.g. "--session-idle 3s").
  static absl::StatusOr<std::unique_ptr<StandIn>> Start(const fs::path& dir,
                                                        const std::string& extra_args = "");
  ~StandIn();

  const std::string& url() const { return url_; }  // https://127.0.0.1:PORT (a GHES host)
  const std::string& ca_file() const { return ca_file_; }
  const std::string& ca_pem() const { return ca_pem_; }
  std::string log() const;

  // Client options for `path` on the stand-in ("/acme", "/acme/app", "/enterprises/big").
  GitHubClientOptions Options(const std::string& path, bool app,
                              int64_t installation_id = kInstallationId) const;

  // The test API.
  absl::StatusOr<Json> Get(const std::string& path);
  absl::StatusOr<Json> Post(const std::string& path, const Json& body);
  Json State();
  std::vector<std::string> Secrets();
  // Requests recorded for a route template ("POST /orgs/{org}/actions/runners/generate-jitconfig").
  std::vector<Json> Requests(const std::string& route);
  Json RunnerNamed(const std::string& name);  // null when there is none
  std::string QueueJob(const std::string& scope, const std::string& name,
                       const std::vector<std::string>& labels);
  void AddFault(const Json& fault);

 private:
  StandIn() = default;
  pid_t pid_ = -1;
  fs::path dir_;
  std::string url_, ca_file_, ca_pem_, app_key_pem_;
  std::unique_ptr<HttpTransport> http_;
};

// A fake runner script (config.sh / run.sh from tests/fake-runner) run in a runner directory of
// its own, in its own process group, trusting the stand-in's CA; output to a file.
class RunnerProcess {
 public:
  // Copies the fake runner into `dir` (once) and runs `script` with `args` there.
  RunnerProcess(const fs::path& dir, const std::string& ca_file, const std::string& script,
                std::vector<std::string> args);
  ~RunnerProcess();
  // Exit code, waiting up to `seconds`; -1 when still running.
  int Wait(int seconds);
  void Signal(int sig);
  std::string Output() const;

 private:
  fs::path dir_;
  fs::path out_;
  pid_t pid_ = -1;
  int code_ = -1;
};

// Everything this process logs through spdlog, from construction on.
class LogCapture {
 public:
  LogCapture();
  ~LogCapture();
  std::string str() const;

 private:
  std::shared_ptr<std::ostringstream> out_;
  std::shared_ptr<void> sink_;
};

// The secrets of `secrets` that appear in `text` (for "no token in any log" checks).
std::vector<std::string> LeakedSecrets(const std::vector<std::string>& secrets,
                                       const std::string& text);

// A fresh 2048-bit RSA private key, PEM (PKCS#8).
std::string NewRsaPrivateKeyPem();

// Waits for `cond`, checking every 20 ms; false after `seconds` (a failure deadline only).
bool Eventually(const std::function<bool()>& cond, int seconds = 60);

}  // namespace miglet::github::testing
