#include "pod_builder.h"

namespace miglet::controllers {

api::Json BuildRunnerPod(const api::RunnerPool& pool, const api::RunnerVM& vm,
                         const PodDefaults& d) {
  using api::Json;
  const std::string endpoint = pool.spec.controller.grpc_endpoint.empty()
                                   ? d.controller_grpc_endpoint
                                   : pool.spec.controller.grpc_endpoint;
  const std::string port = std::to_string(d.metrics_port);
  Json env = Json::array({
      {{"name", "MIGLET_VM_ID"}, {"valueFrom", {{"fieldRef", {{"fieldPath", "metadata.name"}}}}}},
      {{"name", "MIGLET_POOL_ID"},
       {"valueFrom",
        {{"fieldRef",
          {{"fieldPath", std::string("metadata.labels['") + api::kPoolLabel + "']"}}}}}},
      {{"name", "MIGLET_MODE"}, {"value", "sidecar"}},
      {{"name", "MIGLET_CONTROLLER_GRPC_ENDPOINT"}, {"value", endpoint}},
      {{"name", "MIGLET_RUNNER_DIR"}, {"value", kRunnerDir}},
      {{"name", "MIGLET_METRICS_LISTEN"}, {"value", "0.0.0.0:" + port}},
      {{"name", "MIGLET_LOGGING_LEVEL"},
       {"value", vm.spec.log_level.empty() ? pool.spec.agent.log_level : vm.spec.log_level}},
      {{"name", "MIGLET_LOGGING_FORMAT"}, {"value", "json"}},
      {{"name", "MIGLET_HEARTBEAT_INTERVAL"}, {"value", pool.spec.agent.heartbeat_interval}},
      // A SIGTERM (pod deletion) drains: the job may take the whole drain timeout. After it
      // the agent stops the runner, and kills it half-way through the pod's margin, before
      // the kubelet's SIGKILL at drain timeout + margin. (The agent refuses a force_after
      // below the grace period: without it, every pool with a drain timeout over the agent's
      // default 60 s had agents that exited at start.)
      {{"name", "MIGLET_SHUTDOWN_GRACE_PERIOD"},
       {"value", std::to_string(pool.spec.drain_timeout_seconds) + "s"}},
      {{"name", "MIGLET_SHUTDOWN_FORCE_AFTER"},
       {"value",
        std::to_string(pool.spec.drain_timeout_seconds + d.termination_margin_seconds / 2) + "s"}},
  });
  // The agent proves it speaks for this pod's RunnerVM with the pod's own service-account
  // token, projected for audience miglet and rotated by the kubelet (the agent re-reads it).
  env.push_back({{"name", "MIGLET_CONTROLLER_AUTH_TYPE"}, {"value", "bearer"}});
  env.push_back({{"name", "MIGLET_CONTROLLER_AUTH_TOKEN_PATH"},
                 {"value", std::string(kTokenDir) + "/token"}});
  Json volumes = Json::array({{{"name", "miglet"}, {"emptyDir", Json::object()}},
                              {{"name", "miglet-token"},
                               {"projected",
                                {{"sources",
                                  {{{"serviceAccountToken",
                                     {{"audience", kTokenAudience},
                                      {"expirationSeconds", d.token_expiration_seconds},
                                      {"path", "token"}}}}}}}}}});
  Json mounts =
      Json::array({{{"name", "miglet"}, {"mountPath", kInstallDir}, {"readOnly", true}},
                   {{"name", "miglet-token"}, {"mountPath", kTokenDir}, {"readOnly", true}}});
  if (pool.spec.controller.ca_secret || !d.controller_ca_configmap.empty()) {
    if (pool.spec.controller.ca_secret) {
      volumes.push_back({{"name", "controller-ca"},
                         {"secret", {{"secretName", pool.spec.controller.ca_secret->name}}}});
    } else {
      volumes.push_back(
          {{"name", "controller-ca"}, {"configMap", {{"name", d.controller_ca_configmap}}}});
    }
    mounts.push_back({{"name", "controller-ca"},
                      {"mountPath", "/etc/miglet/controller-ca"},
                      {"readOnly", true}});
    env.push_back(
        {{"name", "MIGLET_CONTROLLER_TLS_CA_FILE"}, {"value", "/etc/miglet/controller-ca/ca.crt"}});
  }
  auto probe = [&](const char* path) {
    return Json{{"httpGet", {{"path", path}, {"port", "metrics"}}},
                {"periodSeconds", 10},
                {"failureThreshold", 6}};
  };
  Json runner = {{"name", "runner"},
                 {"image", pool.spec.runner.image},
                 {"command", {std::string(kInstallDir) + "/bin/miglet"}},
                 {"env", env},
                 {"ports", {{{"name", "metrics"}, {"containerPort", d.metrics_port}}}},
                 {"livenessProbe", probe("/healthz")},
                 {"readinessProbe", probe("/readyz")},
                 {"volumeMounts", mounts}};
  if (pool.spec.runner.resources.is_object() && !pool.spec.runner.resources.empty()) {
    runner["resources"] = pool.spec.runner.resources;
  }
  Json init = {{"name", "miglet-install"},
               {"image", pool.spec.agent.image},
               {"command", {"/opt/miglet/bin/miglet", "--install", kInstallDir}},
               {"volumeMounts", {{{"name", "miglet"}, {"mountPath", kInstallDir}}}}};
  Json labels = {{api::kPoolLabel, vm.spec.pool_name},
                 {kVmLabel, vm.meta.name},
                 {"app.kubernetes.io/name", "miglet-runner"},
                 {"app.kubernetes.io/instance", vm.spec.pool_name},
                 {"app.kubernetes.io/managed-by", "mig-controller"}};
  Json md = {{"name", vm.meta.name},
             {"namespace", vm.meta.ns},
             {"labels", labels},
             {"annotations",
              {{"prometheus.io/scrape", "true"},
               {"prometheus.io/port", port},
               {"prometheus.io/path", "/metrics"}}},
             {"ownerReferences",
              {{{"apiVersion", api::kGroupVersion},
                {"kind", "RunnerVM"},
                {"name", vm.meta.name},
                {"uid", vm.meta.uid},
                {"controller", true},
                {"blockOwnerDeletion", true}}}}};
  Json spec = {
      {"restartPolicy", "Never"},  // a failed runner pod is replaced, not restarted in place
      {"terminationGracePeriodSeconds",
       pool.spec.drain_timeout_seconds + d.termination_margin_seconds},
      {"initContainers", {init}},
      {"containers", {runner}},
      {"volumes", volumes}};
  return {{"apiVersion", "v1"}, {"kind", "Pod"}, {"metadata", md}, {"spec", spec}};
}

}  // namespace miglet::controllers
