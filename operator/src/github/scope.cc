#include "miglet/operator/github/scope.h"

#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "miglet/common/http_transport.h"

namespace miglet::github {

std::string Scope::ApiPath() const {
  switch (kind) {
    case Kind::kRepository:
      return "/repos/" + owner + "/" + repo;
    case Kind::kOrganization:
      return "/orgs/" + owner;
    case Kind::kEnterprise:
      return "/enterprises/" + enterprise;
  }
  return "";
}

std::string Scope::Describe() const {
  switch (kind) {
    case Kind::kRepository:
      return "repository " + owner + "/" + repo;
    case Kind::kOrganization:
      return "organization " + owner;
    case Kind::kEnterprise:
      return "enterprise " + enterprise;
  }
  return "";
}

namespace {

// GitHub logins and enterprise slugs: letters, digits and hyphens. Repository names add '.'
// and '_'. Checking them keeps anything that could change the request path out of it.
bool ValidName(const std::string& s, bool repo) {
  if (s.empty() || s.size() > 100 || s == "." || s == "..") return false;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-') continue;
    if (repo && (c == '.' || c == '_')) continue;
    return false;
  }
  return true;
}

}  // namespace

absl::StatusOr<Scope> ParseGitHubUrl(std::string_view url_in) {
  const std::string url(url_in);
  auto bad = [&](const std::string& why) {
    return absl::InvalidArgumentError(
        "GitHub URL \"" + url + "\": " + why +
        " (want https://HOST/ORG, https://HOST/ORG/REPO or https://HOST/enterprises/ENTERPRISE)");
  };
  auto u = ParseUrl(url);
  if (!u.ok()) return bad(std::string(u.status().message()));
  if (!u->query.empty() || url.find('#') != std::string::npos) {
    return bad("a query or fragment has no place here");
  }
  std::vector<std::string> parts;
  for (absl::string_view p : absl::StrSplit(u->path, '/', absl::SkipEmpty())) {
    parts.emplace_back(p);
  }
  Scope s;
  if (parts.size() == 2 && absl::AsciiStrToLower(parts[0]) == "enterprises") {
    s.kind = Scope::Kind::kEnterprise;
    s.enterprise = parts[1];
    if (!ValidName(s.enterprise, false))
      return bad("\"" + s.enterprise + "\" is not an enterprise slug");
  } else if (parts.size() == 1 && absl::AsciiStrToLower(parts[0]) == "enterprises") {
    return bad("no enterprise slug after /enterprises/");
  } else if (parts.size() == 1) {
    s.kind = Scope::Kind::kOrganization;
    s.owner = parts[0];
    if (!ValidName(s.owner, false)) return bad("\"" + s.owner + "\" is not an organization name");
  } else if (parts.size() == 2) {
    s.kind = Scope::Kind::kRepository;
    s.owner = parts[0];
    s.repo = parts[1];
    if (!ValidName(s.owner, false)) return bad("\"" + s.owner + "\" is not an owner name");
    if (!ValidName(s.repo, true)) return bad("\"" + s.repo + "\" is not a repository name");
  } else if (parts.empty()) {
    return bad("no organization, repository or enterprise in the path");
  } else {
    return bad("too many path segments");
  }
  std::string host = u->host;
  const std::string origin = u->Origin();
  if (host == "github.com" || host == "www.github.com") {
    if (u->scheme != "https") return bad("github.com is https only");
    s.api_base = "https://api.github.com";
    s.url = "https://github.com" + u->path;
  } else if (absl::EndsWith(host, ".ghe.com")) {
    // GHE.com: the API is on api.SUBDOMAIN.ghe.com.
    s.api_base = u->scheme + "://api." + host;
    s.url = origin + u->path;
  } else {
    // GitHub Enterprise Server: the API is under /api/v3 on the same host.
    s.api_base = origin + "/api/v3";
    s.url = origin + u->path;
  }
  while (!s.url.empty() && s.url.back() == '/') s.url.pop_back();
  return s;
}

}  // namespace miglet::github
