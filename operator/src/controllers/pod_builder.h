#pragma once

#include <string>

#include "miglet/operator/api/v1alpha1.h"

// The pod provider's Pod for one RunnerVM, built from the pool (a pure function, unit-tested).
//
// The runner container runs the pool's runner image with miglet as its entrypoint, so miglet
// starts config.sh/run.sh inside the runner's own filesystem; an init container from the agent
// image installs a self-contained miglet (binary, its shared libraries and the loader) into an
// emptyDir first (`miglet --install DIR`, which the agent image provides). vm_id and pool_id
// come from the downward API; the controller endpoint and CA from the pool (or the
// controller's defaults); terminationGracePeriodSeconds is the pool's drain timeout plus a
// margin, so a deleted pod's SIGTERM lets the job finish and the agent deregister.
namespace miglet::controllers {

struct PodDefaults {
  std::string controller_grpc_endpoint;  // the controller's Service, host:port
  int metrics_port = 9102;
  // Added to the drain timeout: time for shutdown after the job (deregistration, flush).
  int64_t termination_margin_seconds = 30;
  // The projected token's lifetime (the kubelet renews it at 80%; the apiserver's minimum is
  // 600).
  int64_t token_expiration_seconds = 3600;
  // A ConfigMap (key ca.crt) in the pod's namespace with the CA the agent verifies the
  // controller with, when the pool names no caSecretRef. Empty: none.
  std::string controller_ca_configmap;
};

inline constexpr char kInstallDir[] = "/miglet";
inline constexpr char kRunnerDir[] = "/home/runner";
// Where the agent finds its projected service-account token, and the token's audience.
inline constexpr char kTokenDir[] = "/var/run/secrets/miglet";
inline constexpr char kTokenAudience[] = "miglet";
inline constexpr char kVmLabel[] = "miglet.dev/runnervm";
inline constexpr char kBusyLabel[] = "miglet.dev/busy";  // kept in step with the runner's job

api::Json BuildRunnerPod(const api::RunnerPool& pool, const api::RunnerVM& vm,
                         const PodDefaults& defaults);

}  // namespace miglet::controllers
