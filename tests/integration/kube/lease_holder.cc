// One contender for a Lease, as its own process: kube_lease_holder KUBECONFIG NAMESPACE NAME ID.
// Prints "LEADING <id>" / "STOPPED <id>" on stdout as leadership changes. SIGTERM is a clean
// shutdown (the lease is released); SIGKILL is a crash.
#include <signal.h>
#include <unistd.h>

#include <cstdio>

#include "miglet/operator/kube/leader_elector.h"

using namespace miglet::kube;

int main(int argc, char** argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: %s KUBECONFIG NAMESPACE NAME IDENTITY\n", argv[0]);
    return 2;
  }
  const std::string id = argv[4];
  auto cfg = LoadKubeconfig(argv[1]);
  if (!cfg.ok()) {
    fprintf(stderr, "%s\n", cfg.status().ToString().c_str());
    return 1;
  }
  cfg->request_timeout_seconds = 5;  // under the 10 s renew deadline
  auto client = MakeKubeClient(*cfg);
  if (!client.ok()) {
    fprintf(stderr, "%s\n", client.status().ToString().c_str());
    return 1;
  }
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);  // before the elector's thread inherits the mask

  LeaderElectionConfig le;
  le.lease_namespace = argv[2];
  le.lease_name = argv[3];
  le.identity = id;
  le.on_started_leading = [&] {
    printf("LEADING %s\n", id.c_str());
    fflush(stdout);
  };
  le.on_stopped_leading = [&] {
    printf("STOPPED %s\n", id.c_str());
    fflush(stdout);
  };
  auto elector = MakeLeaderElector(std::shared_ptr<KubeClient>(std::move(*client)), le,
                                   miglet::MakeRealClock());
  elector->Start();
  int sig = 0;
  sigwait(&set, &sig);
  elector->Stop();  // releases the lease if held
  return 0;
}
