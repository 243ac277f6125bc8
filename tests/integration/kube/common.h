#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <map>

#include "cluster.h"
#include "miglet/operator/kube/errors.h"
#include "miglet/operator/kube/kube_client.h"

namespace miglet::kube::testing {

// The control plane of a test binary. Under ctest, the cases (each a process of its own) share
// the one control plane the kube_shared_cluster_up fixture started (MIGLET_TEST_CLUSTER_DIR),
// as envtest's suites do, and each keeps to a namespace of its own (TestNamespace). Run by
// hand, the binary starts one for itself. A binary that needs apiserver flags of its own
// (`apiserver_args`) always starts its own.
class ClusterEnvironment : public ::testing::Environment {
 public:
  explicit ClusterEnvironment(std::string apiserver_args) : args_(std::move(apiserver_args)) {}
  void SetUp() override {
    const char* shared = std::getenv("MIGLET_TEST_CLUSTER_DIR");
    auto c = shared && *shared && args_.empty() ? TestCluster::Attach(shared)
                                                : TestCluster::Start(args_);
    ASSERT_TRUE(c.ok()) << c.status();
    cluster_ = std::move(*c);
    instance_ = this;
  }
  void TearDown() override { cluster_.reset(); }
  static TestCluster& Cluster() { return *instance_->cluster_; }

 private:
  std::string args_;
  std::unique_ptr<TestCluster> cluster_;
  static inline ClusterEnvironment* instance_ = nullptr;
};

inline Json ConfigMap(const std::string& ns, const std::string& name, const Json& data) {
  return {{"apiVersion", "v1"},
          {"kind", "ConfigMap"},
          {"metadata", {{"name", name}, {"namespace", ns}}},
          {"data", data}};
}

inline void CreateNamespace(KubeClient& c, const std::string& ns) {
  auto r = c.Create(Namespaces(), "",
                    {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", ns}}}});
  ASSERT_TRUE(r.ok() || kube::IsAlreadyExists(r.status())) << r.status();
}

// The running test case's own namespace, made on first use: "<test-name>-<pid>", lowercased
// and cut to fit a DNS label.
inline std::string TestNamespace() {
  static std::map<std::string, std::string> made;
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  const std::string key = std::string(info->test_suite_name()) + "." + info->name();
  if (auto it = made.find(key); it != made.end()) return it->second;
  std::string ns;
  for (char ch : std::string(info->name())) {
    if (std::isalnum(static_cast<unsigned char>(ch))) {
      ns += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    }
  }
  ns = ns.substr(0, 48) + "-" + std::to_string(getpid());
  CreateNamespace(*ClusterEnvironment::Cluster().Client(), ns);
  made[key] = ns;
  return ns;
}

}  // namespace miglet::kube::testing
