#pragma once

#include <string>

#include "absl/status/status.h"

namespace miglet {

// `miglet --install DIR`: copies the self-contained bundle this miglet runs from (bin/miglet,
// libexec/miglet, lib/ with its loader and libraries; see hack/images/bundle.sh) into DIR, so
// that another container or machine can run it from there: the pod provider's init container
// copies it from the agent image into the runner pod's shared volume. `bundle` is the bundle's
// root, which its launcher exports as MIGLET_BUNDLE_DIR; empty when miglet was not started
// through it. Files already in DIR are replaced; permissions are kept.
absl::Status InstallBundle(const std::string& bundle, const std::string& dir);

}  // namespace miglet
