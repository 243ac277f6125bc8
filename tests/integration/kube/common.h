#pragma once

#include <gtest/gtest.h>

#include "cluster.h"
#include "miglet/operator/kube/errors.h"
#include "miglet/operator/kube/kube_client.h"

namespace miglet::kube::testing {

// One control plane per test process: ctest runs each test case in a process of its own, so
// every case gets a fresh cluster; running the binary by hand shares one across cases.
class ClusterEnvironment : public ::testing::Environment {
 public:
  explicit ClusterEnvironment(std::string apiserver_args) : args_(std::move(apiserver_args)) {}
  void SetUp() override {
    auto c = TestCluster::Start(args_);
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

}  // namespace miglet::kube::testing
