#pragma once

#include <string>

namespace miglet::kube {

// A group/version/resource and what the client needs to build its URLs and apply bodies.
struct Resource {
  std::string group;  // "" for the core group
  std::string version;
  std::string resource;  // plural, lower case: "pods"
  std::string kind;
  bool namespaced = true;

  std::string ApiVersion() const { return group.empty() ? version : group + "/" + version; }
};

const Resource& Pods();
const Resource& Secrets();
const Resource& ConfigMaps();
const Resource& Namespaces();
const Resource& ServiceAccounts();
const Resource& Events();
const Resource& Leases();
const Resource& CustomResourceDefinitions();
const Resource& PodDisruptionBudgets();  // policy/v1
const Resource& RunnerPools();           // miglet.dev/v1alpha1
const Resource& RunnerVMs();             // miglet.dev/v1alpha1

}  // namespace miglet::kube
