#pragma once

#include <memory>

#include "miglet/operator/kube/kube_client.h"

namespace prometheus {
class Registry;
}

namespace miglet::kube {

// Wraps a client and counts every request it makes, as client-go's rest_client_requests_total
// does: mig_controller_kube_requests_total{verb, resource, code}. `verb` is the API verb (get,
// list, create, update, patch, apply, delete, watch); `resource` the plural, with its
// subresource ("runnervms/status"); `code` the HTTP status class of an answer ("2xx") or the
// failed status ("409"), "error" when no answer came. The write verbs are what the operator's
// "no API write per heartbeat" promise is measured by.
std::unique_ptr<KubeClient> InstrumentKubeClient(std::shared_ptr<KubeClient> inner,
                                                 prometheus::Registry& registry);

}  // namespace miglet::kube
