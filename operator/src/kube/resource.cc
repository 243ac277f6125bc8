#include "miglet/operator/kube/resource.h"

namespace miglet::kube {

#define MIGLET_RESOURCE(fn, ...)          \
  const Resource& fn() {                  \
    static const Resource r{__VA_ARGS__}; \
    return r;                             \
  }

MIGLET_RESOURCE(Pods, "", "v1", "pods", "Pod", true)
MIGLET_RESOURCE(Secrets, "", "v1", "secrets", "Secret", true)
MIGLET_RESOURCE(ConfigMaps, "", "v1", "configmaps", "ConfigMap", true)
MIGLET_RESOURCE(Namespaces, "", "v1", "namespaces", "Namespace", false)
MIGLET_RESOURCE(ServiceAccounts, "", "v1", "serviceaccounts", "ServiceAccount", true)
MIGLET_RESOURCE(Events, "", "v1", "events", "Event", true)
MIGLET_RESOURCE(Leases, "coordination.k8s.io", "v1", "leases", "Lease", true)
MIGLET_RESOURCE(CustomResourceDefinitions, "apiextensions.k8s.io", "v1",
                "customresourcedefinitions", "CustomResourceDefinition", false)
MIGLET_RESOURCE(PodDisruptionBudgets, "policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget",
                true)
MIGLET_RESOURCE(RunnerPools, "miglet.dev", "v1alpha1", "runnerpools", "RunnerPool", true)
MIGLET_RESOURCE(RunnerVMs, "miglet.dev", "v1alpha1", "runnervms", "RunnerVM", true)

#undef MIGLET_RESOURCE

}  // namespace miglet::kube
