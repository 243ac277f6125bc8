#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace miglet::github {

// Where runners are registered: a repository, an organization or an enterprise, on github.com,
// on GHE.com (a dedicated SUBDOMAIN.ghe.com) or on a GitHub Enterprise Server host.
struct Scope {
  enum class Kind { kRepository, kOrganization, kEnterprise };
  Kind kind = Kind::kOrganization;
  std::string owner;       // the repository's owner, or the organization
  std::string repo;        // kRepository only
  std::string enterprise;  // kEnterprise only
  std::string url;         // the web URL, normalized: what the runner's config.sh --url takes
  std::string api_base;    // "https://api.github.com", "https://HOST/api/v3", ...

  // The REST path prefix of the scope's runner endpoints: "/repos/acme/app", "/orgs/acme",
  // "/enterprises/big".
  std::string ApiPath() const;
  // For messages: "repository acme/app", "organization acme", "enterprise big".
  std::string Describe() const;
};

// https://github.com/ORG, https://github.com/ORG/REPO, https://github.com/enterprises/ENT, the
// same on https://SUBDOMAIN.ghe.com (API https://api.SUBDOMAIN.ghe.com) or on a GitHub
// Enterprise Server host (API https://HOST[:PORT]/api/v3). A trailing slash is allowed; anything
// else is an error that says which forms are accepted.
absl::StatusOr<Scope> ParseGitHubUrl(std::string_view url);

}  // namespace miglet::github
