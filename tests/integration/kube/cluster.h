#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "miglet/operator/kube/config.h"
#include "miglet/operator/kube/kube_client.h"

// A real control plane for one test process: hack/cluster/up.sh in a directory of its own,
// hack/cluster/down.sh when done.
namespace miglet::kube::testing {

class TestCluster {
 public:
  // `apiserver_args` go to MIGLET_APISERVER_ARGS (e.g. "--watch-cache=false").
  static absl::StatusOr<std::unique_ptr<TestCluster>> Start(const std::string& apiserver_args = "");
  // A control plane someone else started in `dir` (ctest's shared one) and stops: this
  // object never stops it.
  static absl::StatusOr<std::unique_ptr<TestCluster>> Attach(const std::string& dir);
  ~TestCluster();

  const std::string& dir() const { return dir_; }
  std::string kubeconfig() const { return dir_ + "/kubeconfig"; }
  KubeConfig Config() const;
  std::shared_ptr<KubeClient> Client() const;

  // Runs a shell command with KUBECONFIG, ETCDCTL_ENDPOINTS and the tools on PATH; returns
  // its stdout, or an error with its output when it exits non-zero.
  absl::StatusOr<std::string> Sh(const std::string& cmd) const;

  // SIGKILLs kube-apiserver and waits for it to be gone; StartAgain() runs up.sh again,
  // which restarts whatever is down, with the same ports and state.
  absl::Status KillApiserver();
  absl::Status StartAgain();
  // Applies deploy/crds (RunnerPool, RunnerVM) with kubectl and waits until they are served.
  absl::Status InstallCrds() const;
  // Compacts etcd at its current revision: every older resourceVersion is gone.
  absl::StatusOr<int64_t> CompactEtcd();

 private:
  TestCluster(std::string dir, std::string args, bool owned = true)
      : dir_(std::move(dir)), args_(std::move(args)), owned_(owned) {}
  std::string Env() const;
  std::string dir_;
  std::string args_;
  bool owned_;
};

// Waits for `cond` to hold, checking every 20 ms; false after `timeout` (a failure deadline,
// not a timing expectation).
bool Eventually(const std::function<bool()>& cond,
                std::chrono::milliseconds timeout = std::chrono::seconds(60));

// A TCP relay on 127.0.0.1:<port 0> to `target_port`, which the test can cut (close every
// connection and refuse new ones) and restore: a client that loses its server, while the server
// keeps serving everyone else.
class TcpRelay {
 public:
  explicit TcpRelay(int target_port);
  ~TcpRelay();
  int port() const { return port_; }
  void Cut();
  void Restore();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  int port_ = 0;
};

}  // namespace miglet::kube::testing
