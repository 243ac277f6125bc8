// bench/operator: mig-controller as an operator on a real control plane (hack/cluster/up.sh in
// a directory of its own, torn down at the end) with the GitHub stand-in. Prints figures;
// asserts nothing about time.
//
//   operator_bench [--parts=latency,auth,scale-real,scale-sim,steady] [--scale-agents=100]
//                  [--auth-tokens=1000]
//                  [--scale-runs=3] [--vms=1000,10000] [--window=60s]
//                  [--heartbeat-interval=10s] [--status-refresh=20m] [--workers=4] [--keep=true]
//
// latency: the controller's client on the idle apiserver, 100 sequential GETs and PATCHes.
// auth: N distinct tokens through kube::AccessReviewer (TokenReview) at once, then ten times
//   more from its cache: reviews sent, time, CPU per 1,000.
// scale-real: an external pool, `--scale-agents` real miglet agents (each with the fake
//   runner, online against the stand-in) adopted as spares. Per run, `kubectl scale` 0 -> N
//   until the stand-in lists N runners online (listening for jobs), then N -> 0 until it lists
//   none; no job runs. Everything (apiserver, etcd, stand-in, N agents and N fake runners)
//   shares the machine's cores.
// scale-sim: the same with simulated agents (no runner processes): 0 -> N until the stand-in
//   has N runners and the pool reports N idle, N -> 0 until the stand-in has none. This is
//   the controller's own path: API writes, GitHub calls, commands.
// steady: per N in `--vms`, an external pool of N replicas and N agents simulated in this
//   process (bench/common/sim_agent.h, as bench/channel uses them), heartbeats every
//   `--heartbeat-interval` on random phases. Once every runner is registered and idle and the
//   controller's writes have settled, over `--window`: the controller's Kubernetes API writes
//   per second (its own mig_controller_kube_requests_total: create, update, patch, apply,
//   delete), heartbeats ingested, CPU, RSS and threads.
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <random>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "../../tests/integration/agent_process.h"
#include "../../tests/integration/github/standin.h"
#include "../../tests/integration/kube/cluster.h"
#include "../common/sim_agent.h"
#include "absl/strings/str_split.h"
#include "miglet/common/clock.h"
#include "miglet/common/duration.h"
#include "miglet/common/http_transport.h"
#include "miglet/operator/kube/access_review.h"
#include "miglet/operator/kube/resource.h"
#include "spdlog/spdlog.h"

namespace miglet {
namespace {

namespace fs = std::filesystem;
int g_argc = 0;
char** g_argv = nullptr;
using Json = nlohmann::json;
using SteadyClock = std::chrono::steady_clock;
using github::testing::StandIn;
using kube::testing::TestCluster;

double Since(SteadyClock::time_point t) {
  return std::chrono::duration<double>(SteadyClock::now() - t).count();
}

std::string Flag(int argc, char** argv, const std::string& name, const std::string& def) {
  const std::string prefix = "--" + name + "=";
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]).rfind(prefix, 0) == 0) return argv[i] + prefix.size();
    if (std::string(argv[i]) == "--help" || std::string(argv[i]) == "-h") {
      std::cout << "usage: operator_bench [--parts=latency,auth,scale-real,scale-sim,steady] "
                   "[--auth-tokens=1000] "
                   "[--scale-agents=100] "
                   "[--scale-runs=3]\n"
                   "                      [--vms=1000,10000] [--window=60s] "
                   "[--heartbeat-interval=10s] [--status-refresh=20m] [--registered=N]\n"
                   "                      [--keep=true: keep the logs in /tmp]\n";
      exit(0);
    }
  }
  return def;
}

Duration ParseDurationOrDie(const std::string& s) {
  auto d = ParseDuration(s);
  if (!d.ok()) {
    std::cerr << "bad duration " << s << ": " << d.status() << "\n";
    exit(2);
  }
  return *d;
}

struct ProcStats {
  double cpu_seconds = 0;
  long rss_kib = 0;
  int threads = 0;
};

ProcStats ReadProc(pid_t pid) {
  ProcStats s;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(stat, line);
  if (line.empty()) return s;
  auto rest = line.substr(line.rfind(')') + 2);
  std::vector<std::string> f = absl::StrSplit(rest, ' ');
  if (f.size() > 13) {
    const double hz = static_cast<double>(sysconf(_SC_CLK_TCK));
    s.cpu_seconds = (std::stod(f[11]) + std::stod(f[12])) / hz;
  }
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) s.rss_kib = std::stol(line.substr(6));
    if (line.rfind("Threads:", 0) == 0) s.threads = std::stoi(line.substr(8));
  }
  return s;
}

double Median(std::vector<double> v) {
  if (v.empty()) return -1;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// A mig-controller process with its log in `dir`.
class Controller {
 public:
  Controller(const fs::path& dir, const std::vector<std::string>& extra) : dir_(dir) {
    fs::create_directories(dir);
    const fs::path info = dir / "info.json";
    fs::remove(info);
    std::vector<std::string> args = {MIGLET_CONTROLLER_PATH,
                                     "--bind-address=127.0.0.1",
                                     "--grpc-port=0",
                                     "--http-port=-1",
                                     "--metrics-bind-address=127.0.0.1:0",
                                     "--health-probe-bind-address=127.0.0.1:0",
                                     "--listen-info-file=" + info.string()};
    args.insert(args.end(), extra.begin(), extra.end());
    pid_ = fork();
    if (pid_ == 0) {
      const int fd = open((dir / "controller.log").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      dup2(fd, 1);
      dup2(fd, 2);
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
    for (int i = 0; i < 3000 && grpc_port_ <= 0; ++i) {
      auto j = Json::parse(testing::ReadAll(info), nullptr, false);
      if (j.is_object()) {
        grpc_port_ = j.value("grpc_port", -1);
        metrics_port_ = j.value("metrics_port", -1);
      }
      if (grpc_port_ <= 0) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (grpc_port_ <= 0) {
      throw std::runtime_error("mig-controller did not start:\n" +
                               testing::ReadAll(dir / "controller.log"));
    }
    metrics_ = std::move(
        *MakeHttpTransport({.base_url = "http://127.0.0.1:" + std::to_string(metrics_port_),
                            .timeout = std::chrono::seconds(10)}));
  }
  ~Controller() {
    kill(pid_, SIGTERM);
    waitpid(pid_, nullptr, 0);
  }
  pid_t pid() const { return pid_; }
  int grpc_port() const { return grpc_port_; }

  // Sums a metric's series whose labels match all of `want` (label="value" substrings; a
  // value list "a|b" matches any).
  double Metric(const std::string& name, const std::map<std::string, std::string>& want = {}) {
    auto r = metrics_->Do("GET", "/metrics");
    if (!r.ok()) return -1;
    std::istringstream in(r->body);
    std::string line;
    double sum = 0;
    while (std::getline(in, line)) {
      if (line.rfind(name, 0) != 0) continue;
      const char next = line.size() > name.size() ? line[name.size()] : '\0';
      if (next != '{' && next != ' ') continue;
      bool match = true;
      for (const auto& [k, vs] : want) {
        bool any = false;
        for (const auto& v : absl::StrSplit(vs, '|')) {
          any = any || line.find(k + "=\"" + std::string(v) + "\"") != std::string::npos;
        }
        match = match && any;
      }
      if (match) sum += std::stod(line.substr(line.rfind(' ') + 1));
    }
    return sum;
  }
  // Mean latency of the controller's API requests of `verb` since the counts `since`.
  std::pair<double, double> LatencySums(const std::string& verb) {
    return {Metric("mig_controller_kube_request_duration_seconds_sum", {{"verb", verb}}),
            Metric("mig_controller_kube_request_duration_seconds_count", {{"verb", verb}})};
  }
  // Writes by "verb resource" (e.g. "patch runnervms/status").
  std::map<std::string, double> WritesBy() {
    std::map<std::string, double> out;
    auto r = metrics_->Do("GET", "/metrics");
    if (!r.ok()) return out;
    std::istringstream in(r->body);
    std::string line;
    const std::string name = "mig_controller_kube_requests_total{";
    auto label = [](const std::string& l, const std::string& k) {
      const auto at = l.find(k + "=\"");
      if (at == std::string::npos) return std::string();
      const auto from = at + k.size() + 2;
      return l.substr(from, l.find('"', from) - from);
    };
    while (std::getline(in, line)) {
      if (line.rfind(name, 0) != 0) continue;
      const std::string verb = label(line, "verb");
      if (verb == "get" || verb == "list" || verb == "watch") continue;
      out[verb + " " + label(line, "resource")] += std::stod(line.substr(line.rfind(' ') + 1));
    }
    return out;
  }
  double Writes() {
    return Metric("mig_controller_kube_requests_total",
                  {{"verb", "create|update|patch|apply|delete"}});
  }

 private:
  fs::path dir_;
  pid_t pid_ = -1;
  int grpc_port_ = -1, metrics_port_ = -1;
  std::unique_ptr<HttpTransport> metrics_;
};

struct Env {
  std::unique_ptr<TestCluster> cluster;
  std::shared_ptr<kube::KubeClient> client;
  std::unique_ptr<StandIn> standin;
  fs::path dir;
};

void MakePool(Env& env, const std::string& ns, const std::string& name, int replicas) {
  auto r = env.client->Create(
      kube::Namespaces(), "",
      {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", ns}}}});
  r = env.client->Create(kube::Secrets(), ns,
                         {{"apiVersion", "v1"},
                          {"kind", "Secret"},
                          {"metadata", {{"name", "gh"}}},
                          {"stringData", {{"github_token", github::testing::kTestPat}}}});
  if (!r.ok()) {
    throw std::runtime_error("secret: " + r.status().ToString());
  }
  r = env.client->Create(
      kube::RunnerPools(), ns,
      {{"apiVersion", "miglet.dev/v1alpha1"},
       {"kind", "RunnerPool"},
       {"metadata", {{"name", name}}},
       {"spec",
        {{"replicas", replicas},
         {"provider", "external"},
         {"github", {{"url", env.standin->url() + "/acme"}, {"tokenSecretRef", {{"name", "gh"}}}}},
         {"runner", {{"labels", {"self-hosted", "linux"}}}}}}});
  if (!r.ok()) {
    throw std::runtime_error("pool: " + r.status().ToString());
  }
}

// Runners at the stand-in, by status, read through its GitHub API as the controller reads it.
std::map<std::string, int> StandinRunners(github::GitHubClient& gh) {
  std::map<std::string, int> out;
  auto l = gh.ListRunners();
  if (!l.ok()) return {{"error", 1}};
  for (const auto& r : *l) ++out[r.status];
  out["total"] = static_cast<int>(l->size());
  return out;
}

bool WaitFor(const std::function<bool()>& cond, Duration limit,
             Duration every = std::chrono::milliseconds(20)) {
  const auto end = SteadyClock::now() + limit;
  while (SteadyClock::now() < end) {
    if (cond()) return true;
    std::this_thread::sleep_for(every);
  }
  return cond();
}

void Scale(Env& env, const std::string& ns, const std::string& pool, int n) {
  auto r = env.cluster->Sh("kubectl scale runnerpool/" + pool + " --replicas=" + std::to_string(n) +
                           " -n " + ns);
  if (!r.ok()) {
    throw std::runtime_error("kubectl scale: " + r.status().ToString());
  }
}

// ----------------------------------------------------------------------------- latency

// The client's own request latency on an idle apiserver: 100 sequential GETs and merge patches
// of one object.
void LatencyPart(Env& env) {
  std::vector<double> gets, patches;
  for (int i = 0; i < 100; ++i) {
    auto t = SteadyClock::now();
    auto g = env.client->Get(kube::Namespaces(), "", "default");
    gets.push_back(1000 * Since(t));
    t = SteadyClock::now();
    auto p = env.client->Patch(kube::Namespaces(), "", "default", kube::PatchType::kMerge,
                               {{"metadata", {{"labels", {{"bench", std::to_string(i)}}}}}});
    patches.push_back(1000 * Since(t));
    if (!g.ok() || !p.ok()) throw std::runtime_error("latency: a request failed");
  }
  std::printf(
      "latency (idle apiserver, one client, sequential): GET median %.2f ms, merge PATCH "
      "median %.2f ms\n\n",
      Median(gets), Median(patches));
}

// ----------------------------------------------------------------------------- auth

double CpuSeconds() {
  rusage u;
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

// What checking who asks costs the controller: `n` distinct service-account tokens (audience
// miglet, from the TokenRequest API) authenticated at once through kube::AccessReviewer, as n
// agents connecting together would be (each a TokenReview on the apiserver), then the same n
// again ten times (each agent reconnecting or polling over HTTP within the cache's 2 minutes:
// no TokenReview). CPU is this process's (the reviewer's side, which is the controller's).
void AuthPart(Env& env, int n) {
  const std::string ns = "bench-auth";
  (void)env.client->Create(
      kube::Namespaces(), "",
      {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", ns}}}});
  if (!kube::testing::Eventually(
          [&] { return env.client->Get(kube::ServiceAccounts(), ns, "default").ok(); })) {
    throw std::runtime_error("auth: no default ServiceAccount in " + ns);
  }
  const kube::Resource token_request{"", "v1", "serviceaccounts/default/token", "TokenRequest",
                                     true};
  std::vector<std::string> tokens;
  const auto tt = SteadyClock::now();
  for (int i = 0; i < n; ++i) {
    auto r =
        env.client->Create(token_request, ns,
                           {{"apiVersion", "authentication.k8s.io/v1"},
                            {"kind", "TokenRequest"},
                            {"spec", {{"audiences", {"miglet"}}, {"expirationSeconds", 3600}}}});
    if (!r.ok()) throw std::runtime_error("auth: TokenRequest: " + r.status().ToString());
    tokens.push_back((*r)["status"]["token"].get<std::string>());
  }
  const double issue_s = Since(tt);
  auto reviewer = std::make_shared<kube::AccessReviewer>(env.client, MakeRealClock());
  auto run = [&](int rounds) {
    std::mutex mu;
    std::condition_variable cv;
    int left = n * rounds, failed = 0;
    const double cpu0 = CpuSeconds();
    const auto t0 = SteadyClock::now();
    for (int r = 0; r < rounds; ++r) {
      for (const auto& tok : tokens) {
        reviewer->Authenticate(tok, {"miglet"}, [&](absl::StatusOr<kube::UserInfo> u) {
          std::lock_guard l(mu);
          if (!u.ok()) ++failed;
          if (--left == 0) cv.notify_all();
        });
      }
    }
    std::unique_lock l(mu);
    cv.wait(l, [&] { return left == 0; });
    if (failed) throw std::runtime_error("auth: " + std::to_string(failed) + " tokens refused");
    return std::make_pair(Since(t0), CpuSeconds() - cpu0);
  };
  const auto s0 = reviewer->stats();
  const auto [cold_s, cold_cpu] = run(1);
  const auto s1 = reviewer->stats();
  const auto [warm_s, warm_cpu] = run(10);
  const auto s2 = reviewer->stats();
  std::printf(
      "auth (%d distinct pod-less service-account tokens, audience miglet; %.1f s to issue):\n"
      "  first sight, all at once:  %llu TokenReviews in %.2f s (%.0f/s with 4 workers), "
      "controller CPU %.0f ms per 1,000\n"
      "  cached, %d x 10 again:      %llu TokenReviews, %.3f s, controller CPU %.1f ms per "
      "1,000\n\n",
      n, issue_s, static_cast<unsigned long long>(s1.token_reviews - s0.token_reviews), cold_s,
      n / cold_s, 1000 * 1000 * cold_cpu / n, n,
      static_cast<unsigned long long>(s2.token_reviews - s1.token_reviews), warm_s,
      1000 * 1000 * warm_cpu / (10.0 * n));
}

// The apiserver's request durations for RunnerVMs, by verb and subresource: (sum, count).
std::map<std::string, std::pair<double, double>> ApiserverSums(Env& env) {
  std::map<std::string, std::pair<double, double>> by;
  auto raw = env.cluster->Sh(
      "kubectl get --raw /metrics | grep -E "
      "'^apiserver_request_duration_seconds_(sum|count)\\{.*resource=\"runnervms\"' | "
      "grep -E 'verb=\"(PATCH|POST)\"'");
  if (!raw.ok()) return by;
  std::istringstream in(*raw);
  std::string line;
  while (std::getline(in, line)) {
    auto field = [&](const std::string& k) {
      auto a = line.find(k + "=\"");
      if (a == std::string::npos) return std::string();
      a += k.size() + 2;
      return line.substr(a, line.find('"', a) - a);
    };
    const std::string key = field("verb") + " runnervms" +
                            (field("subresource").empty() ? "" : "/" + field("subresource"));
    const double v = std::stod(line.substr(line.rfind(' ') + 1));
    (line.find("_sum{") != std::string::npos ? by[key].first : by[key].second) += v;
  }
  return by;
}

// ----------------------------------------------------------------------------- scale

// The fake runner's own floor: N `run.sh --jitconfig` started at once, with JIT configs made
// beforehand and no controller or agent in the way, until the stand-in lists all N online.
// What the real-agent scale-up cannot beat on this machine, whatever the controller does.
void RunnerFloor(Env& env, github::GitHubClient& gh, int n) {
  const fs::path dir = env.dir / "floor";
  std::vector<std::string> jit;
  const auto tj = SteadyClock::now();
  for (int i = 0; i < n; ++i) {
    char name[32];
    snprintf(name, sizeof name, "floor-%03d", i);
    fs::create_directories(dir / name);
    fs::copy_file(fs::path(MIGLET_FAKE_RUNNER_DIR) / "run.sh", dir / name / "run.sh",
                  fs::copy_options::overwrite_existing);
    auto j = gh.GenerateJitConfig({.name = name, .labels = {"self-hosted"}});
    if (!j.ok()) throw std::runtime_error("floor: " + j.status().ToString());
    jit.push_back(j->encoded_jit_config);
  }
  const double jit_s = Since(tj);
  auto online = [&] {
    auto l = gh.ListRunners();
    int c = 0;
    if (l.ok()) {
      for (const auto& r : *l) c += r.name.rfind("floor-", 0) == 0 && r.online();
    }
    return c;
  };
  std::vector<pid_t> pids;
  const auto t0 = SteadyClock::now();
  for (int i = 0; i < n; ++i) {
    char name[32];
    snprintf(name, sizeof name, "floor-%03d", i);
    const std::string script = (dir / name / "run.sh").string();
    const std::string log = (dir / name / "run.log").string();
    const pid_t pid = fork();
    if (pid == 0) {
      setpgid(0, 0);
      const int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      dup2(fd, 1);
      dup2(fd, 2);
      setenv("FAKE_RUNNER_CA_FILE", env.standin->ca_file().c_str(), 1);
      execl("/bin/bash", "bash", script.c_str(), "--jitconfig", jit[i].c_str(),
            static_cast<char*>(nullptr));
      _exit(127);
    }
    pids.push_back(pid);
  }
  const bool ok = WaitFor([&] { return online() == n; }, std::chrono::minutes(2),
                          std::chrono::milliseconds(20));
  const double online_s = Since(t0);
  // Stopped as miglet stops a runner: SIGINT, and SIGKILL for one that has not gone after 10 s
  // (one fake runner in some 300 was seen to stay up after its SIGINT, and go at a second;
  // miglet escalates the same way).
  for (pid_t p : pids) kill(-p, SIGINT);
  const auto give_up = SteadyClock::now() + std::chrono::seconds(10);
  for (pid_t p : pids) {
    while (waitpid(p, nullptr, WNOHANG) == 0) {
      if (SteadyClock::now() >= give_up) {
        kill(-p, SIGKILL);
        waitpid(p, nullptr, 0);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  if (auto l = gh.ListRunners(); l.ok()) {
    for (const auto& r : *l) {
      if (r.name.rfind("floor-", 0) == 0) (void)gh.DeleteRunner(r.id);
    }
  }
  if (!ok) throw std::runtime_error("floor: the fake runners did not all come online");
  std::printf(
      "fake-runner floor (N=%d): %d JIT configs in %.2f s beforehand; %d run.sh started at once, "
      "all online after %.2f s\n",
      n, n, jit_s, n, online_s);
}

void ScalePart(Env& env, int agents, int runs, bool sim) {
  const std::string ns = sim ? "bench-scale-sim" : "bench-scale";
  MakePool(env, ns, "ext", 0);
  Controller ctl(env.dir / (ns + "-controller"),
                 {"--kubeconfig=" + env.cluster->kubeconfig(), "--namespace=" + ns,
                  "--github-ca-file=" + env.standin->ca_file(), "--log-level=info",
                  "--workers=" + Flag(g_argc, g_argv, "workers", "4")});
  std::vector<std::unique_ptr<testing::AgentProcess>> machines;
  bench::SimShared shared;
  std::vector<std::unique_ptr<bench::SimAgent>> sims;
  // Simulated agents end their streams before they go (a reactor must outlive its RPC).
  struct EndSims {
    std::vector<std::unique_ptr<bench::SimAgent>>& sims;
    ~EndSims() {
      for (auto& a : sims) a->Stop();
      WaitFor(
          [&] {
            for (auto& a : sims) {
              if (!a->done()) return false;
            }
            return true;
          },
          std::chrono::seconds(30));
    }
  } end_sims{sims};
  std::atomic<bool> stop{false};
  std::thread ticker;
  for (int i = 0; i < agents; ++i) {
    char id[32];
    snprintf(id, sizeof id, "m%03d", i);
    if (sim) {
      sims.push_back(std::make_unique<bench::SimAgent>(
          bench::SimAgentOptions{
              .vm_id = id, .pool_id = "ext", .org_id = "acme", .registered = false},
          "127.0.0.1:" + std::to_string(ctl.grpc_port()), &shared));
      sims.back()->Begin();
      continue;
    }
    const std::string yaml =
        std::string("vm_id: ") + id +
        "\npool_id: ext\norg_id: acme\ncontroller:\n  grpc_endpoint: 127.0.0.1:" +
        std::to_string(ctl.grpc_port()) +
        "\n  retry:\n    initial_backoff: 200ms\n    max_backoff: 2s\n"
        "heartbeat:\n  interval: 10s\nlogging:\n  format: text\n  level: warn\n"
        "metrics:\n  listen: 127.0.0.1:0\n";
    machines.push_back(std::make_unique<testing::AgentProcess>(
        env.dir / "machines" / id, yaml, MIGLET_FAKE_RUNNER_DIR,
        std::vector<std::pair<std::string, std::string>>{
            {"FAKE_RUNNER_CA_FILE", env.standin->ca_file()}}));
    machines.back()->Start();
  }
  if (sim) {
    ticker = std::thread([&] {
      while (!stop) {
        for (int t = 0; t < 100 && !stop; ++t) {
          std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
        for (auto& a : sims) a->Heartbeat();
      }
    });
  }
  struct Stop {
    std::atomic<bool>& stop;
    std::thread& t;
    ~Stop() {
      stop = true;
      if (t.joinable()) t.join();
    }
  } stop_ticker{stop, ticker};
  auto pool_idle = [&] {
    auto p = env.client->Get(kube::RunnerPools(), ns, "ext");
    return p.ok() ? (*p)["status"].value("idleRunners", 0) : 0;
  };
  auto gh = std::move(*github::MakeGitHubClient(env.standin->Options("/acme", false)));
  // Every machine adopted as a spare: RunnerVMs with a connected agent in state ready.
  const bool adopted = WaitFor(
      [&] {
        auto l = env.client->List(kube::RunnerVMs(), ns);
        if (!l.ok() || static_cast<int>(l->items.size()) != agents) return false;
        for (const auto& vm : l->items) {
          // A spare: connected, no runner (ready; draining after a runner of its own went).
          const Json agent = vm.value("status", Json::object()).value("agent", Json::object());
          const std::string st = agent.value("state", "");
          if (!agent.value("connected", false) || (st != "ready" && st != "draining")) {
            return false;
          }
        }
        return true;
      },
      std::chrono::minutes(5), std::chrono::milliseconds(200));
  if (!adopted) {
    throw std::runtime_error("the machines were not all adopted as spares");
  }
  std::printf(sim ? "scale: %d simulated agents (bench/common/sim_agent.h) adopted\n"
                  : "scale: %d real miglet agents (fake runner online at the stand-in) adopted\n",
              agents);
  std::printf("%-4s %10s %10s %10s %11s %11s %15s\n", "run", "0->reg s",
              sim ? "0->idle s" : "0->online s", "N->0 s", "writes up", "writes down",
              "mean write ms");
  std::vector<double> ups, regs, downs;
  std::map<std::string, double> up_by;  // scale-up writes by verb and resource, all runs
  auto apiserver_before = ApiserverSums(env);
  for (int run = 1; run <= runs; ++run) {
    double w0 = ctl.Writes();
    auto by0 = ctl.WritesBy();
    const auto l0 = ctl.LatencySums("patch|create|delete");
    auto t0 = SteadyClock::now();
    Scale(env, ns, "ext", agents);
    // Real agents: their runners online at the stand-in (listening for jobs). Simulated ones
    // run no runner: registered at the stand-in, and idle as the controller sees them. Either
    // way, when the stand-in first lists all N (registered: each has its JIT config).
    double registered_s = -1;
    const bool up = WaitFor(
        [&] {
          auto r = StandinRunners(*gh);
          if (registered_s < 0 && r["total"] == agents) registered_s = Since(t0);
          return sim ? r["total"] == agents && pool_idle() == agents : r["online"] == agents;
        },
        std::chrono::minutes(5), std::chrono::milliseconds(20));
    const double up_s = Since(t0);
    double w1 = ctl.Writes();
    for (const auto& [k, v] : ctl.WritesBy()) up_by[k] += v - by0[k];
    t0 = SteadyClock::now();
    Scale(env, ns, "ext", 0);
    const bool down = WaitFor([&] { return StandinRunners(*gh)["total"] == 0; },
                              std::chrono::minutes(5), std::chrono::milliseconds(20));
    const double down_s = Since(t0);
    double w2 = ctl.Writes();
    if (!up || !down) {
      throw std::runtime_error("run " + std::to_string(run) + " did not converge (up " +
                               std::to_string(up) + ", down " + std::to_string(down) + ")");
    }
    ups.push_back(up_s);
    regs.push_back(registered_s);
    downs.push_back(down_s);
    const auto l1 = ctl.LatencySums("patch|create|delete");
    std::printf("%-4d %10.2f %10.2f %10.2f %11.0f %11.0f %15.1f\n", run, registered_s, up_s, down_s,
                w1 - w0, w2 - w1,
                1000 * (l1.first - l0.first) / std::max(1.0, l1.second - l0.second));
    std::fflush(stdout);
    // The machines are spares again (drained, ready for the next registration) before the
    // next run.
    WaitFor(
        [&] {
          auto l = env.client->List(kube::RunnerVMs(), ns);
          if (!l.ok()) return false;
          for (const auto& vm : l->items) {
            const std::string s = vm["status"]["agent"].value("state", "");
            if (s != "draining" && s != "ready") return false;
          }
          return true;
        },
        std::chrono::minutes(2), std::chrono::milliseconds(100));
  }
  std::printf("  scale-up writes per runner:");
  for (const auto& [k, v] : up_by) {
    if (v > 0) std::printf(" %s %.2f;", k.c_str(), v / (runs * agents));
  }
  std::printf("\n");
  for (const char* verb : {"get", "create", "patch", "delete"}) {
    const auto l = ctl.LatencySums(verb);
    std::printf("  controller's API %s: %.0f requests, mean %.1f ms\n", verb, l.second,
                1000 * l.first / std::max(1.0, l.second));
  }
  // Where a reconcile's time goes: GitHub calls, reconciles, waits in the work queue.
  for (const auto& [what, metric] : std::vector<std::pair<std::string, std::string>>{
           {"GitHub request", "mig_controller_github_request_duration_seconds"},
           {"reconcile", "mig_controller_reconcile_duration_seconds"},
           {"work-queue wait", "mig_controller_workqueue_queue_duration_seconds"}}) {
    const double sum = ctl.Metric(metric + "_sum"), n = ctl.Metric(metric + "_count");
    std::printf("  controller's %s: %.0f, mean %.1f ms\n", what.c_str(), n,
                1000 * sum / std::max(1.0, n));
  }
  // The apiserver's side of the same requests (this part's only).
  for (const auto& [k, sc] : ApiserverSums(env)) {
    const auto& before = apiserver_before[k];
    const double n = sc.second - before.second;
    std::printf("  apiserver %s: %.0f requests, mean %.1f ms\n", k.c_str(), n,
                1000 * (sc.first - before.first) / std::max(1.0, n));
  }
  std::printf(
      "scale medians (N=%d, %s): 0->N registered %.2f s, %s %.2f s; N->0 %.2f s (kubectl scale "
      "included)\n",
      agents, sim ? "simulated agents" : "real agents", Median(regs), sim ? "idle" : "online",
      Median(ups), Median(downs));
  if (!sim) RunnerFloor(env, *gh, agents);
  std::printf("\n");
}

// ----------------------------------------------------------------------------- steady

void SteadyPart(Env& env, int n, int registered, Duration window, Duration hb,
                const std::string& refresh) {
  // `registered` of the N machines carry a runner; the rest are warm spares.
  const int replicas = registered < 0 ? n : std::min(n, registered);
  const std::string ns = "bench-steady-" + std::to_string(n);
  MakePool(env, ns, "sim", replicas);
  const fs::path dir = env.dir / ("steady-" + std::to_string(n));
  fs::create_directories(dir);
  std::ofstream(dir / "controller.yaml") << "kubernetes:\n  status_refresh: " << refresh << "\n";
  Controller ctl(dir, {"--kubeconfig=" + env.cluster->kubeconfig(), "--namespace=" + ns,
                       "--github-ca-file=" + env.standin->ca_file(), "--log-level=warn",
                       "--config=" + (dir / "controller.yaml").string()});
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const ProcStats base = ReadProc(ctl.pid());

  bench::SimShared shared;
  const std::string target = "127.0.0.1:" + std::to_string(ctl.grpc_port());
  std::vector<std::unique_ptr<bench::SimAgent>> agents;
  agents.reserve(n);
  const auto t0 = SteadyClock::now();
  for (int i = 0; i < n; ++i) {
    {
      std::unique_lock l(shared.mu);
      shared.cv.wait(l, [&] { return i - shared.connected - shared.failed < 200; });
    }
    char id[32];
    snprintf(id, sizeof id, "sim-%05d", i);
    agents.push_back(std::make_unique<bench::SimAgent>(
        bench::SimAgentOptions{
            .vm_id = id, .pool_id = "sim", .org_id = "acme", .registered = false},
        target, &shared));
    agents.back()->Begin();
  }
  {
    std::unique_lock l(shared.mu);
    shared.cv.wait(l, [&] { return shared.connected + shared.failed == n; });
  }
  const double connect_s = Since(t0);

  std::atomic<bool> stop{false};
  std::thread ticker([&] {
    std::vector<SteadyClock::time_point> due(n);
    std::mt19937 rng(42);
    std::uniform_real_distribution<double> phase(0, ToSeconds(hb));
    const auto start = SteadyClock::now();
    for (int i = 0; i < n; ++i) {
      due[i] = start + std::chrono::duration_cast<SteadyClock::duration>(
                           std::chrono::duration<double>(phase(rng)));
    }
    while (!stop) {
      const auto now = SteadyClock::now();
      for (int i = 0; i < n; ++i) {
        if (due[i] <= now) {
          agents[i]->Heartbeat();
          due[i] += hb;
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  });

  // Every machine adopted, and `replicas` runners registered and idle (the pool's status says
  // so; the controller's mig_controller_runnervms counts the RunnerVMs).
  auto idle = [&] {
    auto p = env.client->Get(kube::RunnerPools(), ns, "sim");
    return p.ok() ? (*p)["status"].value("idleRunners", 0) : 0;
  };
  const bool all_idle = WaitFor(
      [&] {
        return idle() == replicas &&
               static_cast<int>(ctl.Metric("mig_controller_runnervms", {{"namespace", ns}})) == n;
      },
      std::chrono::minutes(40), std::chrono::seconds(1));
  const double registered_s = Since(t0);
  const double writes_to_register = ctl.Writes();
  const double conflicts = ctl.Metric("mig_controller_kube_requests_total", {{"code", "409"}});
  if (!all_idle) std::printf("N=%d: only %d of %d idle after 40 min\n", n, idle(), replicas);

  // Settled: no write for 10 s (at most 5 min).
  double last = ctl.Writes();
  auto quiet_since = SteadyClock::now();
  const auto settle_end = SteadyClock::now() + std::chrono::minutes(5);
  while (Since(quiet_since) < 10 && SteadyClock::now() < settle_end) {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    const double w = ctl.Writes();
    if (w != last) {
      last = w;
      quiet_since = SteadyClock::now();
    }
  }

  // The window.
  const double w0 = ctl.Writes();
  const double hb0 = ctl.Metric("mig_controller_heartbeats_received_total");
  const double gh0 = ctl.Metric("mig_controller_github_requests_total");
  const ProcStats p0 = ReadProc(ctl.pid());
  const auto tw = SteadyClock::now();
  std::this_thread::sleep_for(window);
  const double secs = Since(tw);
  const ProcStats p1 = ReadProc(ctl.pid());
  const double writes = ctl.Writes() - w0;
  const double hbs = ctl.Metric("mig_controller_heartbeats_received_total") - hb0;
  const double ghs = ctl.Metric("mig_controller_github_requests_total") - gh0;

  std::printf(
      "steady N=%d (%d with a runner, %d spares): connect %.1f s; all adopted, runners registered "
      "and idle after %.1f s (%.0f API writes, %.1f per RunnerVM, %.0f of them 409 "
      "conflicts)\n",
      n, replicas, n - replicas, connect_s, registered_s, writes_to_register,
      writes_to_register / n, conflicts);
  std::printf(
      "  window %.0f s: API writes %.0f = %.3f/s (%.3f/s per 1,000 agents); heartbeats %.0f/s; "
      "GitHub requests %.0f\n",
      secs, writes, writes / secs, writes / secs / (n / 1000.0), hbs / secs, ghs);
  const double amortized = n / ToSeconds(ParseDurationOrDie(refresh));
  std::printf(
      "  last-seen refresh (every %s per RunnerVM) adds %.3f writes/s on average (%.3f/s per "
      "1,000)\n",
      refresh.c_str(), amortized, amortized / (n / 1000.0));
  std::printf("  controller: CPU %.3f cores, RSS %.1f MiB (%.1f KiB per RunnerVM), %d threads\n\n",
              (p1.cpu_seconds - p0.cpu_seconds) / secs, p1.rss_kib / 1024.0,
              static_cast<double>(p1.rss_kib - base.rss_kib) / n, p1.threads);
  std::fflush(stdout);

  stop = true;
  ticker.join();
  for (auto& a : agents) a->Stop();
  WaitFor(
      [&] {
        for (auto& a : agents) {
          if (!a->done()) return false;
        }
        return true;
      },
      std::chrono::seconds(30));
}

}  // namespace
}  // namespace miglet

int main(int argc, char** argv) {
  using namespace miglet;
  spdlog::set_level(spdlog::level::warn);
  g_argc = argc;
  g_argv = argv;
  const std::string parts = Flag(argc, argv, "parts", "latency,auth,scale-real,scale-sim,steady");
  const int scale_agents = std::stoi(Flag(argc, argv, "scale-agents", "100"));
  const int scale_runs = std::stoi(Flag(argc, argv, "scale-runs", "3"));
  const std::string vms = Flag(argc, argv, "vms", "1000,10000");
  const Duration window = ParseDurationOrDie(Flag(argc, argv, "window", "60s"));
  const Duration hb = ParseDurationOrDie(Flag(argc, argv, "heartbeat-interval", "10s"));
  const std::string refresh = Flag(argc, argv, "status-refresh", "20m");
  // GitHub allows 5,000 API calls an hour per PAT (15,000 for Apps on Enterprise Cloud): more
  // JIT registrations than that in one go is not a thing a real fleet can do either.
  const int registered = std::stoi(Flag(argc, argv, "registered", "-1"));
  ParseDurationOrDie(refresh);

  Env env;
  env.dir = fs::temp_directory_path() / ("miglet-operator-bench-" + std::to_string(getpid()));
  fs::create_directories(env.dir);
  auto cluster = TestCluster::Start();
  if (!cluster.ok()) {
    std::cerr << "control plane: " << cluster.status() << "\n";
    return 1;
  }
  env.cluster = std::move(*cluster);
  if (auto s = env.cluster->InstallCrds(); !s.ok()) {
    std::cerr << "CRDs: " << s << "\n";
    return 1;
  }
  env.client = env.cluster->Client();
  auto standin = StandIn::Start(env.dir / "standin");
  if (!standin.ok()) {
    std::cerr << "stand-in: " << standin.status() << "\n";
    return 1;
  }
  env.standin = std::move(*standin);
  std::printf(
      "operator_bench: kube-apiserver + etcd (hack/cluster/up.sh), GitHub stand-in, "
      "mig-controller as a process; 2 shared cores\n\n");
  std::fflush(stdout);

  int rc = 0;
  try {
    if (parts.find("latency") != std::string::npos) LatencyPart(env);
    if (parts.find("auth") != std::string::npos) {
      AuthPart(env, std::stoi(Flag(argc, argv, "auth-tokens", "1000")));
    }
    if (parts.find("scale-sim") != std::string::npos) {
      ScalePart(env, scale_agents, scale_runs, /*sim=*/true);
    }
    if (parts.find("scale-real") != std::string::npos) {
      ScalePart(env, scale_agents, scale_runs, /*sim=*/false);
    }
    if (parts.find("steady") != std::string::npos) {
      for (const auto& v : absl::StrSplit(vms, ',')) {
        SteadyPart(env, std::stoi(std::string(v)), registered, window, hb, refresh);
      }
    }
  } catch (const std::exception& e) {
    std::cerr << "operator_bench: " << e.what() << " (logs kept in " << env.dir << ")\n";
    rc = 1;
  }
  env.standin.reset();
  env.cluster.reset();
  if (rc == 0 && Flag(argc, argv, "keep", "false") != "true") fs::remove_all(env.dir);
  return rc;
}
