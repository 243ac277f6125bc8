#include "miglet/operator/github/credentials.h"

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "miglet/common/status.h"
#include "miglet/operator/kube/errors.h"

namespace miglet::github {

absl::StatusOr<Credentials> CredentialsFromSecret(const kube::Json& secret) {
  const auto& md = secret.contains("metadata") ? secret["metadata"] : kube::Json::object();
  const std::string name = md.value("namespace", "") + "/" + md.value("name", "");
  Credentials c;
  c.source = "Secret " + name;
  const kube::Json data =
      secret.contains("data") && secret["data"].is_object() ? secret["data"] : kube::Json::object();
  auto key = [&](const char* k) -> absl::StatusOr<std::string> {
    if (!data.contains(k)) return std::string();
    if (!data[k].is_string()) {
      return absl::InvalidArgumentError(c.source + ": key " + k + ": not a string");
    }
    std::string out;
    if (!absl::Base64Unescape(data[k].get<std::string>(), &out)) {
      return absl::InvalidArgumentError(c.source + ": key " + k + ": not valid base64");
    }
    return out;
  };
  auto number = [&](const char* k, int64_t* out) -> absl::Status {
    ASSIGN_OR_RETURN(std::string v, key(k));
    const std::string trimmed(absl::StripAsciiWhitespace(v));
    if (trimmed.empty()) return absl::OkStatus();
    if (!absl::SimpleAtoi(trimmed, out) || *out <= 0) {
      return absl::InvalidArgumentError(c.source + ": key " + k + ": \"" + trimmed +
                                        "\" is not a positive number");
    }
    return absl::OkStatus();
  };
  ASSIGN_OR_RETURN(std::string token, key(kTokenKey));
  c.token = std::string(absl::StripAsciiWhitespace(token));
  RETURN_IF_ERROR(number(kAppIdKey, &c.app_id));
  RETURN_IF_ERROR(number(kInstallationIdKey, &c.installation_id));
  ASSIGN_OR_RETURN(c.private_key_pem, key(kPrivateKeyKey));

  if (c.is_app()) {
    if (!c.token.empty()) {
      return absl::InvalidArgumentError(c.source + ": holds both " + kTokenKey + " and " +
                                        kAppIdKey + "; keep one");
    }
    if (c.private_key_pem.empty()) {
      return absl::InvalidArgumentError(c.source + ": key " + kPrivateKeyKey +
                                        ": missing (a GitHub App needs its private key)");
    }
    auto k = AppKey::Parse(c.private_key_pem, c.source + ": key " + kPrivateKeyKey);
    if (!k.ok()) return k.status();
  } else if (c.token.empty()) {
    if (!c.private_key_pem.empty() || c.installation_id != 0) {
      return absl::InvalidArgumentError(c.source + ": key " + kAppIdKey +
                                        ": missing (the Secret has other GitHub App keys)");
    }
    return absl::InvalidArgumentError(c.source + ": key " + kTokenKey + ": missing (give " +
                                      kTokenKey + ", or " + kAppIdKey + " and " + kPrivateKeyKey +
                                      ")");
  }
  return c;
}

absl::StatusOr<Credentials> LoadCredentials(kube::KubeClient& kube, const std::string& ns,
                                            const std::string& name) {
  auto s = kube::SecretsIn(kube, ns).Get(name);
  if (!s.ok()) {
    if (kube::IsNotFound(s.status())) {
      return absl::NotFoundError("GitHub credentials: Secret " + ns + "/" + name + " not found");
    }
    return Annotate(s.status(), "GitHub credentials: Secret " + ns + "/" + name);
  }
  return CredentialsFromSecret(*s);
}

}  // namespace miglet::github
