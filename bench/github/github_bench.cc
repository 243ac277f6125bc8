// What the GitHub client costs GitHub, in two parts.
//
// 1. Simulated (a fake clock and a transport that answers like GitHub, installation tokens
//    living an hour): R runners created per hour for H hours through one App client. Prints
//    installation-token renewals per hour (the goal: <= 2) and API calls per runner life.
// 2. Real (the GitHub stand-in over HTTPS, the fake runner as the runner): L lives that run a
//    job on an ephemeral JIT runner (GitHub removes the runner itself: no delete), and L lives
//    scaled down before any job (the runner must be deleted). Prints the GitHub API calls per
//    life as the stand-in counted them, and the latency of generate-jitconfig.
//
//   github_bench [--runners-per-hour=1000] [--hours=24] [--lives=20]
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "miglet/common/fake_clock.h"
#include "miglet/common/testing/fake_http_transport.h"
#include "miglet/operator/github/github_client.h"
#include "nlohmann/json.hpp"
#include "spdlog/spdlog.h"
#include "standin.h"

namespace miglet::github {
namespace {

using Json = nlohmann::json;

std::string Rfc3339(WallTime t) {
  std::time_t s = std::chrono::system_clock::to_time_t(t);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&s));
  return buf;
}

void Simulated(int per_hour, int hours) {
  auto clock = std::make_shared<FakeClock>();
  std::atomic<int> tokens{0};
  std::atomic<int> api_calls{0};
  int64_t next_id = 1;
  auto transport = std::make_shared<miglet::testing::FakeHttpTransport>(
      [&](const ClientRequest& r) -> absl::StatusOr<ClientResponse> {
        if (absl::StrContains(r.target, "/access_tokens")) {
          ++tokens;
          // GitHub's installation tokens expire after one hour.
          return miglet::testing::Respond(
              201, Json{{"token", "ghs_" + std::to_string(tokens.load())},
                        {"expires_at", Rfc3339(clock->WallNow() + std::chrono::hours(1))}}
                       .dump());
        }
        ++api_calls;
        if (absl::StrContains(r.target, "generate-jitconfig")) {
          auto body = Json::parse(r.body);
          return miglet::testing::Respond(
              201,
              Json{{"runner", {{"id", next_id++}, {"name", body["name"]}, {"status", "offline"}}},
                   {"encoded_jit_config", "x"}}
                  .dump());
        }
        return miglet::testing::Respond(204);
      });
  GitHubClientOptions o;
  o.url = "https://github.com/acme";
  o.credentials.app_id = 1;
  o.credentials.installation_id = 4242;
  o.credentials.private_key_pem = testing::NewRsaPrivateKeyPem();
  o.clock = clock;
  o.transport = transport;
  auto c = MakeGitHubClient(o);
  if (!c.ok()) {
    std::printf("simulated: %s\n", std::string(c.status().message()).c_str());
    return;
  }
  const int total = per_hour * hours;
  const Duration gap = std::chrono::duration_cast<Duration>(std::chrono::hours(1)) / per_hour;
  int deletes = 0;
  for (int i = 0; i < total; ++i) {
    auto jit = (*c)->GenerateJitConfig({.name = "vm-" + std::to_string(i), .labels = {"x"}});
    if (!jit.ok()) {
      std::printf("simulated: %s\n", std::string(jit.status().message()).c_str());
      return;
    }
    // One life in five is scaled down before it takes a job: its runner must be deleted.
    if (i % 5 == 4) {
      (void)(*c)->DeleteRunner(jit->runner.id);
      ++deletes;
    }
    clock->Advance(gap);
  }
  std::printf(
      "simulated: %d runners/h for %d h (1 in 5 deleted unused): installation tokens %d = %.2f "
      "renewals/h; API calls %d = %.2f per runner life (JIT in %d, delete out %d)\n",
      per_hour, hours, tokens.load(), static_cast<double>(tokens.load()) / hours, api_calls.load(),
      static_cast<double>(api_calls.load()) / total, total, deletes);
}

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * v.size()))];
}

void Real(int lives) {
  namespace fs = std::filesystem;
  const fs::path dir =
      fs::temp_directory_path() / ("miglet-github-bench-" + std::to_string(getpid()));
  fs::remove_all(dir);
  auto standin = testing::StandIn::Start(dir / "standin");
  if (!standin.ok()) {
    std::printf("real: %s\n", std::string(standin.status().message()).c_str());
    return;
  }
  auto& s = **standin;
  auto c = MakeGitHubClient(s.Options("/acme", /*app=*/true));
  if (!c.ok()) {
    std::printf("real: %s\n", std::string(c.status().message()).c_str());
    return;
  }
  auto count = [&](const std::string& route) { return s.Requests(route).size(); };
  std::vector<double> jit_ms;
  auto jit = [&](const std::string& name) -> absl::StatusOr<JitConfig> {
    const auto t0 = std::chrono::steady_clock::now();
    auto r = (*c)->GenerateJitConfig({.name = name, .labels = {"linux"}});
    jit_ms.push_back(
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    return r;
  };
  // Lives that run a job: JIT in; the ephemeral runner goes away by itself.
  const size_t calls0 = s.State()["requests"].size();
  int ok_jobs = 0;
  for (int i = 0; i < lives; ++i) {
    auto j = jit("job-" + std::to_string(i));
    if (!j.ok()) break;
    testing::RunnerProcess run(dir / ("r" + std::to_string(i)), s.ca_file(), "run.sh",
                               {"--jitconfig", j->encoded_jit_config});
    if (!testing::Eventually(
            [&] {
              return !s.RunnerNamed(j->runner.name).is_null() &&
                     s.RunnerNamed(j->runner.name)["status"] == "online";
            },
            30)) {
      break;
    }
    const std::string id = s.QueueJob("org:acme", "job", {"linux"});
    testing::Eventually([&] { return run.Output().find("Running job") != std::string::npos; }, 30);
    (void)s.Post("/_standin/jobs/" + id + "/finish", {{"result", "Succeeded"}});
    if (run.Wait(30) == 0 && s.RunnerNamed(j->runner.name).is_null()) ++ok_jobs;
  }
  const size_t job_calls = count("POST /orgs/{org}/actions/runners/generate-jitconfig") +
                           count("DELETE /orgs/{org}/actions/runners/{runner_id}");
  // Lives scaled down before any job: JIT in, delete out.
  for (int i = 0; i < lives; ++i) {
    auto j = jit("idle-" + std::to_string(i));
    if (j.ok()) (void)(*c)->DeleteRunner(j->runner.id);
  }
  const size_t all_calls = count("POST /orgs/{org}/actions/runners/generate-jitconfig") +
                           count("DELETE /orgs/{org}/actions/runners/{runner_id}");
  const Json st = s.State();
  size_t client_requests = 0;  // everything the client sent GitHub, tokens included
  for (size_t i = calls0; i < st["requests"].size(); ++i) {
    const std::string route = st["requests"][i].value("route", "");
    if (route.find("/_services/") == std::string::npos &&
        route != "POST /actions/runner-registration") {
      ++client_requests;
    }
  }
  std::printf(
      "real (stand-in over HTTPS): %d lives with a job (%d ran and left GitHub by themselves): "
      "%.2f API calls per life; %d lives scaled down unused: %.2f per life; installation "
      "tokens %d for all %d lives; generate-jitconfig p50 %.1f ms p99 %.1f ms; %zu API "
      "requests from the client in all\n",
      lives, ok_jobs, static_cast<double>(job_calls) / lives, lives,
      static_cast<double>(all_calls - job_calls) / lives,
      st["installation_tokens_issued"].get<int>(), 2 * lives, Percentile(jit_ms, 0.5),
      Percentile(jit_ms, 0.99), client_requests);
  fs::remove_all(dir);
}

int IntFlag(int argc, char** argv, const char* name, int def) {
  const std::string prefix = std::string("--") + name + "=";
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], prefix.c_str(), prefix.size()) == 0) {
      return std::atoi(argv[i] + prefix.size());
    }
  }
  return def;
}

}  // namespace
}  // namespace miglet::github

int main(int argc, char** argv) {
  spdlog::set_level(spdlog::level::warn);
  miglet::github::Simulated(miglet::github::IntFlag(argc, argv, "runners-per-hour", 1000),
                            miglet::github::IntFlag(argc, argv, "hours", 24));
  miglet::github::Real(miglet::github::IntFlag(argc, argv, "lives", 20));
  return 0;
}
