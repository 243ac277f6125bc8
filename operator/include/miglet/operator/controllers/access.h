#pragma once

#include <functional>
#include <memory>
#include <optional>

#include "miglet/operator/agent_hub.h"
#include "miglet/operator/controllers/operator.h"
#include "miglet/operator/kube/access_review.h"

// Who may speak for an agent and who may use the operator endpoints and /metrics, decided by
// the apiserver (TokenReview, SubjectAccessReview) and the operator's RunnerVMs.
namespace miglet::controllers {

// The audience of the token a runner pod's agent sends (its projected service-account token).
inline constexpr char kAgentAudience[] = "miglet";

// An agent must send a token for audience `miglet` bound to the pod of the RunnerVM its
// vm_id names (Operator::AuthorizeAgent). Refusals other than "cannot ask the apiserver now"
// are recorded on the RunnerVM (Operator::AgentRefused). `op` returns null until the operator
// runs (then agents are answered UNAVAILABLE and retry).
AgentAuthorizer AgentTokenAuthorizer(std::shared_ptr<kube::AccessReviewer> reviewer,
                                     std::function<Operator*()> op);

// controller-runtime's secure metrics, for the operator endpoints and /metrics: a bearer token
// the apiserver authenticates (its own audience), whose user may do what the request does:
// the operator endpoints as RunnerVM permissions (ApiAttributes), anything else as the
// non-resource URL (RBAC `nonResourceURLs`: get on /metrics). (Not /api/v1/vms as a
// non-resource URL: Kubernetes' system:discovery role lets every authenticated user get
// /api/*.)
RequestAuthorizer DelegatedRequestAuthorizer(std::shared_ptr<kube::AccessReviewer> reviewer);

// The RunnerVM permission an operator endpoint needs: GET /api/v1/vms = list runnervms,
// GET /api/v1/vms/{id} = get runnervms {id}, POST /api/v1/vms/{id}/commands = create
// runnervms/commands {id} (group miglet.dev, every namespace). nullopt for other requests.
std::optional<kube::ResourceAttributes> ApiAttributes(const std::string& verb,
                                                      const std::string& path);

}  // namespace miglet::controllers
