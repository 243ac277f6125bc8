#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "miglet/common/clock.h"
#include "miglet/common/http_transport.h"
#include "miglet/operator/agent_hub.h"
#include "miglet/operator/ctrl/manager.h"
#include "miglet/operator/github/github_client.h"
#include "miglet/operator/kube/access_review.h"
#include "miglet/operator/kube/kube_client.h"

namespace prometheus {
class Registry;
}

// mig-controller's operator: the RunnerPool and RunnerVM controllers on a ctrl::Manager, wired
// to the agent hub (commands out, the change hook in) and to GitHub (a client per pool, from
// the pool's credentials Secret).
namespace miglet::controllers {

// Makes the GitHub client of a pool from its URL and credentials (tests point it at the
// stand-in by adding a CA).
using GitHubClientFactory = std::function<absl::StatusOr<std::shared_ptr<github::GitHubClient>>(
    const github::GitHubClientOptions&)>;

struct OperatorOptions {
  std::shared_ptr<kube::KubeClient> kube;
  ctrl::Manager* manager = nullptr;  // the operator adds its controllers and informers to it
  AgentHub* hub = nullptr;
  std::shared_ptr<Clock> clock;
  prometheus::Registry* registry = nullptr;  // GitHub and runner metrics
  // The controller's gRPC endpoint for agents in pods (its Service), when a pool names none.
  std::string agent_endpoint;
  // Extra trust for GitHub (a GHES CA, or the tests' stand-in).
  TlsOptions github_tls;
  GitHubClientFactory github_factory;  // default: github::MakeGitHubClient
  // Status refresh of last-seen and health without another change (keeps API writes under
  // 1/s per 1,000 agents); and how often each pool's runners are swept at GitHub.
  Duration status_refresh = std::chrono::minutes(20);
  Duration sweep_interval = std::chrono::minutes(10);
  int workers = 4;
  // The controller's own CA (self-signed TLS): published in ConfigMap kCaConfigMap in each
  // namespace with runner pods, which trust it. Empty: none.
  std::string controller_ca_pem;
};

inline constexpr char kCaConfigMap[] = "miglet-controller-ca";

class Operator {
 public:
  virtual ~Operator() = default;
  // A runner registration for the agent of the RunnerVM named `vm_id`, for agents that
  // register their runner themselves (the hub's RegistrationSource). It counts as one of the
  // RunnerVM's registrations, like a register_runner command.
  virtual absl::StatusOr<std::optional<RunnerRegistration>> Registration(const std::string& vm_id,
                                                                         bool only_if_wanted) = 0;

  // Whether the user a TokenReview found may speak for the agent `vm_id`: the RunnerVM of that
  // name must exist (so no agent is adopted while agent auth is on), its pool must make pods,
  // and the token must be bound to that RunnerVM's pod (same namespace and name). OK, or
  // PERMISSION_DENIED saying whose token it is and whose it should be.
  virtual absl::Status AuthorizeAgent(const std::string& vm_id, const kube::UserInfo& user) = 0;
  // Whether a client certificate naming `vm_id` (verified by the hub) may speak for it: the
  // RunnerVM must exist and be in an external pool (a pod's agent proves itself with its
  // pod's token). OK or PERMISSION_DENIED.
  virtual absl::Status AuthorizeAgentByCertificate(const std::string& vm_id) = 0;
  // Records a refused agent (its credentials, or AuthorizeAgent's answer) as a Warning Event
  // AgentRefused on the RunnerVM `vm_id`, when there is one.
  virtual void AgentRefused(const std::string& vm_id, const absl::Status& why) = 0;
};

// Registers the controllers, their informers (RunnerPools, RunnerVMs, Pods) and the hub's
// hooks. Start the manager afterwards.
absl::StatusOr<std::unique_ptr<Operator>> MakeOperator(OperatorOptions options);

}  // namespace miglet::controllers
