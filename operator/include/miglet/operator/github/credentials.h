#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "miglet/operator/github/auth.h"
#include "miglet/operator/kube/kube_client.h"

namespace miglet::github {

// The credentials in a Secret (an object as the API returns it: base64 `data`). Keys, as
// actions-runner-controller names them: github_token; or github_app_id,
// github_app_private_key and optionally github_app_installation_id. Every error names the
// Secret and the key.
absl::StatusOr<Credentials> CredentialsFromSecret(const kube::Json& secret);

// Reads Secret `ns`/`name` and decodes it as above.
absl::StatusOr<Credentials> LoadCredentials(kube::KubeClient& kube, const std::string& ns,
                                            const std::string& name);

}  // namespace miglet::github
