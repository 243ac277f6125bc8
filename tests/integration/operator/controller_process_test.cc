// The mig-controller binary on the real control plane, with real miglet agents and the GitHub
// stand-in: SIGKILLed in the middle of a scale-down and started again, it converges without any
// command running twice on an agent, without killing a job, and leaves nothing registered; two
// replicas with leader election, where only the leader serves agents and the other takes over.
#include <gmock/gmock.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <set>

#include "../agent_process.h"
#include "../exec_args.h"
#include "../github/standin.h"
#include "../kube/common.h"
#include "miglet/common/http_transport.h"
#include "miglet/common/net.h"

namespace miglet::kube::testing {
namespace {

using ::miglet::github::testing::StandIn;
using ::miglet::testing::AgentProcess;
using ::miglet::testing::ReadAll;

TestCluster& C() { return ClusterEnvironment::Cluster(); }
std::string NS() { return TestNamespace(); }

// A mig-controller process.
class ControllerProcess {
 public:
  ControllerProcess(const std::filesystem::path& dir, std::vector<std::string> args)
      : dir_(dir), info_(dir / "info.json") {
    std::filesystem::create_directories(dir);
    std::filesystem::remove(info_);
    args.insert(args.begin(), MIGLET_CONTROLLER_PATH);
    args.push_back("--listen-info-file=" + info_.string());
    const std::string log = (dir / "controller.log").string();
    const ::miglet::testing::ExecArgs exec(args);
    pid_ = fork();
    if (pid_ == 0) {
      const int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      dup2(fd, 1);
      dup2(fd, 2);
      exec.Exec();
      _exit(127);
    }
  }
  ~ControllerProcess() { Kill(SIGKILL); }
  void Kill(int sig) {
    if (pid_ <= 0) return;
    kill(pid_, sig);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  // The info file's field once written (-1 until then).
  int Info(const std::string& key) {
    auto j = Json::parse(ReadAll(info_), nullptr, false);
    return j.is_object() ? j.value(key, -1) : -1;
  }
  // /readyz's status code (0 when unreachable).
  int Ready() {
    const int port = Info("health_port");
    if (port <= 0) return 0;
    auto t = MakeHttpTransport({.base_url = "http://127.0.0.1:" + std::to_string(port),
                                .timeout = std::chrono::seconds(2)});
    if (!t.ok()) return 0;
    auto r = (*t)->Do("GET", "/readyz");
    return r.ok() ? r->status : 0;
  }
  std::string Log() { return ReadAll(dir_ / "controller.log"); }

 private:
  std::filesystem::path dir_, info_;
  pid_t pid_ = -1;
};

class ControllerProcessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("miglet-ctlproc-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    ASSERT_TRUE(C().InstallCrds().ok());
    client_ = C().Client();
    auto s = StandIn::Start(dir_ / "standin");
    ASSERT_TRUE(s.ok()) << s.status();
    standin_ = std::move(*s);
    ASSERT_TRUE(SecretsIn(*client_, NS())
                    .Create({{"apiVersion", "v1"},
                             {"kind", "Secret"},
                             {"metadata", {{"name", "gh"}}},
                             {"stringData", {{"github_token", github::testing::kTestPat}}}})
                    .ok());
    auto port = PickFreePort("127.0.0.1");
    ASSERT_TRUE(port.ok());
    grpc_port_ = *port;
  }

  void TearDown() override {
    agents_.clear();
    controllers_.clear();
    standin_.reset();
    if (!HasFailure()) std::filesystem::remove_all(dir_);
  }

  ControllerProcess& Controller(const std::string& name, bool leader_elect) {
    std::vector<std::string> args = {"--kubeconfig=" + C().kubeconfig(),
                                     "--namespace=" + NS(),
                                     "--bind-address=127.0.0.1",
                                     "--grpc-port=" + std::to_string(grpc_port_),
                                     "--http-port=-1",
                                     "--metrics-bind-address=127.0.0.1:0",
                                     "--health-probe-bind-address=127.0.0.1:0",
                                     "--github-ca-file=" + standin_->ca_file(),
                                     "--log-level=debug"};
    if (leader_elect) {
      args.push_back("--leader-elect");
      args.push_back("--leader-election-namespace=" + NS());
    }
    controllers_[name] = std::make_unique<ControllerProcess>(dir_ / name, args);
    return *controllers_[name];
  }

  AgentProcess& Machine(const std::string& vm_id) {
    const std::string yaml = "vm_id: " + vm_id +
                             "\npool_id: ext\norg_id: acme\ncontroller:\n  grpc_endpoint: "
                             "127.0.0.1:" +
                             std::to_string(grpc_port_) +
                             "\n  retry:\n    initial_backoff: 200ms\n    max_backoff: 1s\n"
                             "heartbeat:\n  interval: 1s\nlogging:\n  format: text\n"
                             "metrics:\n  listen: 127.0.0.1:0\n";
    agents_.push_back(
        std::make_unique<AgentProcess>(dir_ / vm_id, yaml, MIGLET_FAKE_RUNNER_DIR,
                                       std::vector<std::pair<std::string, std::string>>{
                                           {"FAKE_RUNNER_CA_FILE", standin_->ca_file()}}));
    agents_.back()->Start();
    return *agents_.back();
  }

  void ExternalPool(int replicas) {
    Json pool = {
        {"apiVersion", "miglet.dev/v1alpha1"},
        {"kind", "RunnerPool"},
        {"metadata", {{"name", "ext"}}},
        {"spec",
         {{"replicas", replicas},
          {"provider", "external"},
          {"github", {{"url", standin_->url() + "/acme"}, {"tokenSecretRef", {{"name", "gh"}}}}},
          {"runner", {{"labels", {"self-hosted", "linux"}}}}}}};
    auto r = client_->Create(RunnerPools(), NS(), pool);
    ASSERT_TRUE(r.ok()) << r.status();
  }

  size_t Runners(const std::string& status = "") {
    size_t n = 0;
    for (const auto& r : standin_->State().value("runners", Json::array())) {
      if (status.empty() || r.value("status", "") == status) ++n;
    }
    return n;
  }
  std::vector<Json> Jobs(const std::string& status) {
    std::vector<Json> out;
    for (const auto& j : standin_->State().value("jobs", Json::array())) {
      if (j.value("status", "") == status) out.push_back(j);
    }
    return out;
  }
  absl::Status Scale(int n) {
    return C()
        .Sh("kubectl scale runnerpool/ext --replicas=" + std::to_string(n) + " -n " + NS())
        .status();
  }
  std::string Logs() {
    std::string out;
    for (auto& [n, c] : controllers_) out += "--- " + n + "\n" + c->Log();
    for (auto& a : agents_) out += "--- agent\n" + a->Log();
    return out;
  }

  std::filesystem::path dir_;
  int grpc_port_ = 0;
  std::shared_ptr<KubeClient> client_;
  std::unique_ptr<StandIn> standin_;
  std::map<std::string, std::unique_ptr<ControllerProcess>> controllers_;
  std::vector<std::unique_ptr<AgentProcess>> agents_;
};

TEST_F(ControllerProcessTest, KilledMidScaleDownItConvergesWithNoCommandRunTwice) {
  ExternalPool(3);
  auto* ctl = &Controller("first", /*leader_elect=*/false);
  for (const char* m : {"m1", "m2", "m3"}) Machine(m);
  ASSERT_TRUE(Eventually([&] { return Runners("online") == 3; }, std::chrono::seconds(90)))
      << Logs();
  standin_->QueueJob("org:acme", "long-1", {"linux"});
  standin_->QueueJob("org:acme", "long-2", {"linux"});
  ASSERT_TRUE(Eventually([&] { return Jobs("running").size() == 2; }));

  // Scale to 0; the controller dies once the drains are under way.
  ASSERT_TRUE(Scale(0).ok());
  ASSERT_TRUE(Eventually([&] {
    auto l = client_->List(RunnerVMs(), NS());
    if (!l.ok()) return false;
    int drained = 0;
    for (const auto& vm : l->items) drained += vm["spec"].value("desiredState", "") == "Drained";
    return drained == 3;
  })) << Logs();
  ctl->Kill(SIGKILL);

  // The jobs keep running without a controller, and after a new one starts.
  EXPECT_EQ(Jobs("running").size(), 2u);
  ctl = &Controller("second", false);
  ASSERT_TRUE(Eventually([&] { return ctl->Ready() == 200; })) << ctl->Log();
  EXPECT_EQ(Jobs("running").size(), 2u);
  for (const auto& j : Jobs("running")) {
    ASSERT_TRUE(standin_
                    ->Post("/_standin/jobs/" + j["id"].get<std::string>() + "/finish",
                           {{"result", "Succeeded"}})
                    .ok());
  }
  ASSERT_TRUE(Eventually([&] { return Jobs("completed").size() == 2; }));
  for (const auto& j : Jobs("completed")) EXPECT_EQ(j["result"], "Succeeded") << j.dump();
  ASSERT_TRUE(Eventually([&] { return Runners() == 0; }, std::chrono::seconds(90)))
      << standin_->State().dump() << Logs();

  // No agent ran any command twice (a re-sent one is answered from the agent's memory), and
  // GitHub saw one JIT config per machine.
  // The agent logs "command <id> (<type>) ..." once per execution.
  for (auto& a : agents_) {
    const std::string log = a->Log();
    std::set<std::string> seen;
    for (size_t at = 0; (at = log.find("command ", at)) != std::string::npos;) {
      at += 8;
      const size_t end = log.find_first_of(" \t\n", at);
      if (end == std::string::npos || log.compare(end, 2, " (") != 0) continue;
      const std::string id = log.substr(at, end - at);
      EXPECT_TRUE(seen.insert(id).second) << "ran twice: " << id << "\n" << log;
    }
  }
  EXPECT_EQ(standin_->Requests("POST /orgs/{org}/actions/runners/generate-jitconfig").size(), 3u);
}

TEST_F(ControllerProcessTest, OnlyTheLeaderServesAgentsAndTheOtherTakesOver) {
  ExternalPool(1);
  auto& a = Controller("a", /*leader_elect=*/true);
  ASSERT_TRUE(Eventually([&] { return a.Ready() == 200; })) << a.Log();
  auto& b = Controller("b", true);
  ASSERT_TRUE(Eventually([&] { return b.Info("health_port") > 0; })) << b.Log();
  Machine("m1");
  ASSERT_TRUE(Eventually([&] { return Runners("online") == 1; }, std::chrono::seconds(90)))
      << Logs();
  // The follower is not ready and serves no agent (its gRPC port is not open).
  EXPECT_EQ(b.Ready(), 503);
  EXPECT_EQ(b.Info("grpc_port"), -1);
  EXPECT_EQ(a.Info("grpc_port"), grpc_port_);

  // The leader dies without releasing its Lease: the follower waits it out, takes over, opens
  // the same port, and the agent follows it.
  a.Kill(SIGKILL);
  ASSERT_TRUE(Eventually([&] { return b.Ready() == 200; }, std::chrono::seconds(60))) << b.Log();
  EXPECT_EQ(b.Info("grpc_port"), grpc_port_);
  ASSERT_TRUE(Eventually([&] {
    auto vm = client_->Get(RunnerVMs(), NS(), "m1");
    return vm.ok() && (*vm)["status"]["agent"].value("connected", false) &&
           b.Log().find("agent m1 connected") != std::string::npos;
  })) << Logs();
  // And it acts as the leader: scaling to 0 leaves no runner.
  ASSERT_TRUE(Scale(0).ok());
  ASSERT_TRUE(Eventually([&] { return Runners() == 0; }, std::chrono::seconds(60)))
      << standin_->State().dump() << Logs();
}

}  // namespace
}  // namespace miglet::kube::testing

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  ::testing::AddGlobalTestEnvironment(new miglet::kube::testing::ClusterEnvironment(""));
  return RUN_ALL_TESTS();
}
