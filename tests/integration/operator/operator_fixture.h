#pragma once

// The operator on the shared control plane with an in-process agent hub, the GitHub stand-in
// (a PAT Secret "gh" in the test's namespace) and real miglet agents: what the operator's
// integration tests share. Include it inside namespace miglet::kube::testing (anonymous) after
// the includes below.
#include <gtest/gtest.h>
#include <prometheus/registry.h>
#include <unistd.h>

#include <filesystem>

#include "../agent_process.h"
#include "../github/standin.h"
#include "../kube/common.h"
#include "miglet/operator/agent_hub_server.h"
#include "miglet/operator/controllers/operator.h"
#include "miglet/operator/ctrl/manager.h"

namespace miglet::kube::testing {

inline TestCluster& C() { return ClusterEnvironment::Cluster(); }
inline std::string NS() { return TestNamespace(); }

class OperatorFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("miglet-operator-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    ASSERT_TRUE(C().InstallCrds().ok());
    client_ = C().Client();
    // A runner killed with its machine goes offline at GitHub after a few seconds, not 30.
    auto s = github::testing::StandIn::Start(dir_ / "standin", "--session-idle 3s");
    ASSERT_TRUE(s.ok()) << s.status();
    standin_ = std::move(*s);
    ASSERT_TRUE(SecretsIn(*client_, NS())
                    .Create({{"apiVersion", "v1"},
                             {"kind", "Secret"},
                             {"metadata", {{"name", "gh"}}},
                             {"stringData", {{"github_token", github::testing::kTestPat}}}})
                    .ok());
    AgentHubServerOptions ho;
    ho.bind_address = "127.0.0.1";
    ho.grpc_port = 0;
    ho.http_port = 0;
    // Registrations for agents that register their runner themselves, from the operator.
    ho.registration =
        [this](const std::string& vm_id,
               bool only_if_wanted) -> absl::StatusOr<std::optional<RunnerRegistration>> {
      if (!operator_) return absl::UnavailableError("no operator yet");
      return operator_->Registration(vm_id, only_if_wanted);
    };
    ConfigureHub(ho);
    auto hub = AgentHubServer::Start(ho, MakeRealClock(), metrics_.get());
    ASSERT_TRUE(hub.ok()) << hub.status();
    hub_ = std::move(*hub);
    manager_ = ctrl::MakeManager({.client = client_, .ns = NS(), .clock = MakeRealClock()});
    controllers::OperatorOptions oo;
    oo.kube = client_;
    oo.manager = manager_.get();
    oo.hub = &hub_->hub();
    oo.agent_endpoint = "127.0.0.1:" + std::to_string(hub_->grpc_port());
    oo.github_tls.ca_pem = standin_->ca_pem();
    oo.github_tls.ca_source = standin_->ca_file();
    auto op = controllers::MakeOperator(oo);
    ASSERT_TRUE(op.ok()) << op.status();
    operator_ = std::move(*op);
    ASSERT_TRUE(manager_->Start().ok());
  }

  // What a test adds to the hub's options before it starts (its authorizers); `client_` is set.
  virtual void ConfigureHub(AgentHubServerOptions& options) {}

  void TearDown() override {
    agents_.clear();
    if (manager_) manager_->Stop();
    if (hub_) hub_->Shutdown();
    standin_.reset();
    if (!HasFailure()) std::filesystem::remove_all(dir_);
  }

  void ExternalPool(const std::string& name, int replicas, bool ephemeral = true) {
    Json pool = {
        {"apiVersion", "miglet.dev/v1alpha1"},
        {"kind", "RunnerPool"},
        {"metadata", {{"name", name}}},
        {"spec",
         {{"replicas", replicas},
          {"provider", "external"},
          {"github", {{"url", standin_->url() + "/acme"}, {"tokenSecretRef", {{"name", "gh"}}}}},
          {"runner", {{"labels", {"self-hosted", "linux"}}, {"ephemeral", ephemeral}}},
          {"scaleDown", {{"drainTimeoutSeconds", 600}}}}}};
    auto r = client_->Create(RunnerPools(), NS(), pool);
    ASSERT_TRUE(r.ok()) << r.status();
  }

  // A machine of an external pool: a miglet process (systemd would restart it; nothing here
  // needs that).
  // `controller` adds settings under the agent's controller key ("  auth:\n    type: ...\n").
  ::miglet::testing::AgentProcess& Machine(const std::string& vm_id, const std::string& pool,
                                           const std::string& controller = "") {
    const std::string yaml = "vm_id: " + vm_id + "\npool_id: " + pool +
                             "\norg_id: acme\ncontroller:\n  grpc_endpoint: 127.0.0.1:" +
                             std::to_string(hub_->grpc_port()) + "\n" + controller +
                             "  retry:\n    initial_backoff: 200ms\n    max_backoff: 1s\n"
                             "heartbeat:\n  interval: 1s\nlogging:\n  format: text\n"
                             "  level: debug\nmetrics:\n  listen: 127.0.0.1:0\n";
    agents_.push_back(std::make_unique<::miglet::testing::AgentProcess>(
        dir_ / vm_id, yaml, MIGLET_FAKE_RUNNER_DIR,
        std::vector<std::pair<std::string, std::string>>{
            {"FAKE_RUNNER_CA_FILE", standin_->ca_file()}}));
    agents_.back()->Start();
    return *agents_.back();
  }

  std::vector<Json> StandinRunners(const std::string& status = "") {
    std::vector<Json> out;
    Json st = standin_->State();
    for (const auto& r : st.value("runners", Json::array())) {
      if (status.empty() || r.value("status", "") == status) out.push_back(r);
    }
    return out;
  }
  std::vector<Json> Jobs(const std::string& status) {
    std::vector<Json> out;
    for (const auto& j : standin_->State().value("jobs", Json::array())) {
      if (j.value("status", "") == status) out.push_back(j);
    }
    return out;
  }
  Json Vm(const std::string& name) {
    auto r = client_->Get(RunnerVMs(), NS(), name);
    return r.ok() ? *r : Json();
  }
  absl::Status Scale(const std::string& pool, int n) {
    return C()
        .Sh("kubectl scale runnerpool/" + pool + " --replicas=" + std::to_string(n) + " -n " + NS())
        .status();
  }
  std::string Logs() {
    std::string out;
    for (auto& a : agents_) out += a->Log();
    return out;
  }

  std::filesystem::path dir_;
  std::shared_ptr<KubeClient> client_;
  std::unique_ptr<github::testing::StandIn> standin_;
  std::shared_ptr<prometheus::Registry> metrics_ = std::make_shared<prometheus::Registry>();
  std::unique_ptr<AgentHubServer> hub_;
  std::unique_ptr<ctrl::Manager> manager_;
  std::unique_ptr<controllers::Operator> operator_;
  std::vector<std::unique_ptr<::miglet::testing::AgentProcess>> agents_;
};

}  // namespace miglet::kube::testing
