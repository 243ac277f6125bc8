#include "pod_builder.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace miglet::controllers {
namespace {

using api::Json;

api::RunnerPool Pool() {
  api::RunnerPool p;
  p.meta = {.name = "ci", .ns = "team", .uid = "pool-uid"};
  p.spec.github.url = "https://github.com/acme";
  p.spec.runner.image = "ghcr.io/actions/actions-runner:2.321.0";
  p.spec.runner.resources = {{"limits", {{"cpu", "2"}}}};
  p.spec.agent.image = "registry.local/miglet-agent:0.1.0";
  p.spec.agent.heartbeat_interval = "10s";
  p.spec.drain_timeout_seconds = 1800;
  return p;
}

api::RunnerVM Vm() {
  api::RunnerVM vm;
  vm.meta = {.name = "ci-x7k2p", .ns = "team", .uid = "vm-uid"};
  vm.spec.pool_name = "ci";
  return vm;
}

std::string Env(const Json& c, const std::string& name) {
  for (const auto& e : c["env"]) {
    if (e["name"] == name) return e.contains("value") ? e["value"].get<std::string>() : e.dump();
  }
  return "<none>";
}

TEST(PodBuilderTest, TheRunnerPodAsThePodProviderMakesIt) {
  const Json pod =
      BuildRunnerPod(Pool(), Vm(), {.controller_grpc_endpoint = "mig-controller.miglet:50051"});
  const Json& md = pod["metadata"];
  EXPECT_EQ(md["name"], "ci-x7k2p");
  EXPECT_EQ(md["namespace"], "team");
  EXPECT_EQ(md["labels"]["miglet.dev/pool"], "ci");
  EXPECT_EQ(md["labels"]["miglet.dev/runnervm"], "ci-x7k2p");
  EXPECT_EQ(md["annotations"]["prometheus.io/port"], "9102");
  ASSERT_EQ(md["ownerReferences"].size(), 1u);
  EXPECT_EQ(md["ownerReferences"][0]["kind"], "RunnerVM");
  EXPECT_EQ(md["ownerReferences"][0]["uid"], "vm-uid");
  EXPECT_EQ(md["ownerReferences"][0]["controller"], true);

  const Json& spec = pod["spec"];
  EXPECT_EQ(spec["restartPolicy"], "Never");
  EXPECT_EQ(spec["terminationGracePeriodSeconds"], 1830);
  const Json& init = spec["initContainers"][0];
  EXPECT_EQ(init["image"], "registry.local/miglet-agent:0.1.0");
  EXPECT_EQ(init["command"], Json({"/opt/miglet/bin/miglet", "--install", "/miglet"}));
  const Json& runner = spec["containers"][0];
  EXPECT_EQ(runner["image"], "ghcr.io/actions/actions-runner:2.321.0");
  EXPECT_EQ(runner["command"], Json({"/miglet/bin/miglet"}));
  EXPECT_EQ(runner["resources"]["limits"]["cpu"], "2");
  EXPECT_EQ(runner["livenessProbe"]["httpGet"]["path"], "/healthz");
  EXPECT_EQ(runner["readinessProbe"]["httpGet"]["path"], "/readyz");
  EXPECT_THAT(Env(runner, "MIGLET_VM_ID"), ::testing::HasSubstr("metadata.name"));
  EXPECT_THAT(Env(runner, "MIGLET_POOL_ID"),
              ::testing::HasSubstr("metadata.labels['miglet.dev/pool']"));
  EXPECT_EQ(Env(runner, "MIGLET_CONTROLLER_GRPC_ENDPOINT"), "mig-controller.miglet:50051");
  EXPECT_EQ(Env(runner, "MIGLET_HEARTBEAT_INTERVAL"), "10s");
  EXPECT_EQ(Env(runner, "MIGLET_SHUTDOWN_GRACE_PERIOD"), "1800s");
  // Never below the grace period (the agent refuses that config), before the kubelet's kill.
  EXPECT_EQ(Env(runner, "MIGLET_SHUTDOWN_FORCE_AFTER"), "1815s");
  EXPECT_EQ(Env(runner, "MIGLET_RUNNER_DIR"), "/home/runner");
  EXPECT_EQ(Env(runner, "MIGLET_CONTROLLER_TLS_CA_FILE"), "<none>");
  EXPECT_EQ(runner["volumeMounts"][0]["mountPath"], "/miglet");
  EXPECT_EQ(runner["volumeMounts"][0]["readOnly"], true);
  // Its identity: the pod's own token for audience miglet, which the agent sends.
  EXPECT_EQ(Env(runner, "MIGLET_CONTROLLER_AUTH_TYPE"), "bearer");
  EXPECT_EQ(Env(runner, "MIGLET_CONTROLLER_AUTH_TOKEN_PATH"), "/var/run/secrets/miglet/token");
  EXPECT_EQ(runner["volumeMounts"][1]["mountPath"], "/var/run/secrets/miglet");
  EXPECT_EQ(runner["volumeMounts"][1]["readOnly"], true);
  const Json& token = spec["volumes"][1]["projected"]["sources"][0]["serviceAccountToken"];
  EXPECT_EQ(token["audience"], "miglet");
  EXPECT_EQ(token["path"], "token");
  EXPECT_EQ(token["expirationSeconds"], 3600);
}

TEST(PodBuilderTest, ThePoolsEndpointAndCaWinOverTheDefaults) {
  auto pool = Pool();
  pool.spec.controller.grpc_endpoint = "10.0.0.5:443";
  pool.spec.controller.ca_secret = api::SecretRef{"controller-ca"};
  auto vm = Vm();
  vm.spec.log_level = "debug";
  const Json pod = BuildRunnerPod(pool, vm, {.controller_grpc_endpoint = "default:50051"});
  const Json& runner = pod["spec"]["containers"][0];
  EXPECT_EQ(Env(runner, "MIGLET_CONTROLLER_GRPC_ENDPOINT"), "10.0.0.5:443");
  EXPECT_EQ(Env(runner, "MIGLET_CONTROLLER_TLS_CA_FILE"), "/etc/miglet/controller-ca/ca.crt");
  EXPECT_EQ(Env(runner, "MIGLET_LOGGING_LEVEL"), "debug");
  EXPECT_EQ(pod["spec"]["volumes"][2]["secret"]["secretName"], "controller-ca");
}

TEST(PodBuilderTest, TheControllersOwnCaIsMountedWhenThePoolNamesNone) {
  const Json pod = BuildRunnerPod(Pool(), Vm(),
                                  {.controller_grpc_endpoint = "miglet.miglet-system.svc:50051",
                                   .controller_ca_configmap = "miglet-controller-ca"});
  const Json& runner = pod["spec"]["containers"][0];
  EXPECT_EQ(Env(runner, "MIGLET_CONTROLLER_TLS_CA_FILE"), "/etc/miglet/controller-ca/ca.crt");
  EXPECT_EQ(pod["spec"]["volumes"][2]["configMap"]["name"], "miglet-controller-ca");
  EXPECT_EQ(runner["volumeMounts"][2]["mountPath"], "/etc/miglet/controller-ca");
  // The pool's own CA Secret wins.
  auto pool = Pool();
  pool.spec.controller.ca_secret = api::SecretRef{"ctl-tls"};
  const Json own = BuildRunnerPod(pool, Vm(), {.controller_ca_configmap = "miglet-controller-ca"});
  EXPECT_EQ(own["spec"]["volumes"][2]["secret"]["secretName"], "ctl-tls");
  EXPECT_FALSE(own["spec"]["volumes"][2].contains("configMap"));
}

}  // namespace
}  // namespace miglet::controllers
