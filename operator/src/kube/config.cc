#include "miglet/operator/kube/config.h"

#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/escaping.h"

namespace miglet::kube {

namespace {

absl::StatusOr<std::string> ReadFile(const std::string& path, const std::string& what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(what + ": cannot read " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string Resolve(const std::string& base_dir, const std::string& p) {
  if (p.empty() || p[0] == '/' || base_dir.empty()) return p;
  return (std::filesystem::path(base_dir) / p).string();
}

// Finds the entry named `name` in a kubeconfig list (clusters, users, contexts).
YAML::Node FindNamed(const YAML::Node& list, const std::string& name) {
  if (!list || !list.IsSequence()) return YAML::Node();
  for (const auto& item : list) {
    if (item["name"] && item["name"].as<std::string>() == name) return item;
  }
  return YAML::Node();
}

std::string Str(const YAML::Node& n, const char* key) {
  return n && n[key] && n[key].IsScalar() ? n[key].as<std::string>() : std::string();
}

// `<key>-data` (base64) or `<key>` (a file path relative to the kubeconfig).
absl::StatusOr<std::string> DataOrFile(const YAML::Node& n, const std::string& key,
                                       const std::string& base_dir, const std::string& where,
                                       std::string* source) {
  const std::string data = Str(n, (key + "-data").c_str());
  if (!data.empty()) {
    std::string out;
    if (!absl::Base64Unescape(data, &out)) {
      return absl::InvalidArgumentError(where + ": " + key + "-data is not valid base64");
    }
    if (source) *source = where + " " + key + "-data";
    return out;
  }
  const std::string file = Str(n, key.c_str());
  if (file.empty()) return std::string();
  const std::string path = Resolve(base_dir, file);
  if (source) *source = path;
  return ReadFile(path, where + ": " + key);
}

}  // namespace

absl::StatusOr<KubeConfig> ParseKubeconfig(const std::string& yaml_text,
                                           const std::string& base_dir, const std::string& source,
                                           const std::string& context) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(source + ": not valid YAML: " + e.what());
  }
  if (!root.IsMap()) return absl::InvalidArgumentError(source + ": not a kubeconfig (no mapping)");
  try {
    KubeConfig cfg;
    cfg.context = context.empty() ? Str(root, "current-context") : context;
    if (cfg.context.empty()) {
      return absl::InvalidArgumentError(source + ": no current-context and no context given");
    }
    YAML::Node ctx_entry = FindNamed(root["contexts"], cfg.context);
    if (!ctx_entry.IsMap()) {
      return absl::NotFoundError(source + ": context \"" + cfg.context + "\" not found");
    }
    YAML::Node ctx = ctx_entry["context"];
    const std::string cluster_name = Str(ctx, "cluster");
    const std::string user_name = Str(ctx, "user");
    if (!Str(ctx, "namespace").empty()) cfg.ns = Str(ctx, "namespace");

    YAML::Node cluster_entry = FindNamed(root["clusters"], cluster_name);
    if (!cluster_entry.IsMap()) {
      return absl::NotFoundError(source + ": cluster \"" + cluster_name + "\" (of context \"" +
                                 cfg.context + "\") not found");
    }
    YAML::Node cluster = cluster_entry["cluster"];
    const std::string cwhere = source + ": cluster \"" + cluster_name + "\"";
    cfg.server = Str(cluster, "server");
    if (cfg.server.empty()) return absl::InvalidArgumentError(cwhere + ": no server");
    while (!cfg.server.empty() && cfg.server.back() == '/') cfg.server.pop_back();
    cfg.insecure_skip_tls_verify = Str(cluster, "insecure-skip-tls-verify") == "true";
    cfg.tls_server_name = Str(cluster, "tls-server-name");
    auto ca = DataOrFile(cluster, "certificate-authority", base_dir, cwhere, &cfg.ca_source);
    if (!ca.ok()) return ca.status();
    cfg.ca_pem = *ca;

    if (!user_name.empty()) {
      YAML::Node user_entry = FindNamed(root["users"], user_name);
      if (!user_entry.IsMap()) {
        return absl::NotFoundError(source + ": user \"" + user_name + "\" (of context \"" +
                                   cfg.context + "\") not found");
      }
      YAML::Node user = user_entry["user"];
      const std::string uwhere = source + ": user \"" + user_name + "\"";
      auto cert = DataOrFile(user, "client-certificate", base_dir, uwhere, &cfg.client_cert_source);
      if (!cert.ok()) return cert.status();
      auto key = DataOrFile(user, "client-key", base_dir, uwhere, nullptr);
      if (!key.ok()) return key.status();
      cfg.client_cert_pem = *cert;
      cfg.client_key_pem = *key;
      if (cfg.client_cert_pem.empty() != cfg.client_key_pem.empty()) {
        return absl::InvalidArgumentError(uwhere +
                                          ": client-certificate and client-key go together");
      }
      cfg.token = Str(user, "token");
      if (!Str(user, "tokenFile").empty())
        cfg.token_file = Resolve(base_dir, Str(user, "tokenFile"));
      if (user["exec"] || user["auth-provider"]) {
        return absl::UnimplementedError(uwhere +
                                        ": exec and auth-provider credentials are not supported");
      }
    }
    return cfg;
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(source + ": " + e.what());
  }
}

absl::StatusOr<KubeConfig> LoadKubeconfig(const std::string& path, const std::string& context) {
  auto text = ReadFile(path, "kubeconfig");
  if (!text.ok()) return text.status();
  return ParseKubeconfig(*text, std::filesystem::path(path).parent_path().string(), path, context);
}

absl::StatusOr<KubeConfig> InClusterConfig(const std::string& sa_dir) {
  const char* host = std::getenv("KUBERNETES_SERVICE_HOST");
  const char* port = std::getenv("KUBERNETES_SERVICE_PORT");
  if (!host || !*host || !port || !*port) {
    return absl::FailedPreconditionError(
        "not in a cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be set");
  }
  KubeConfig cfg;
  std::string h = host;
  if (h.find(':') != std::string::npos) h = "[" + h + "]";  // IPv6
  cfg.server = "https://" + h + ":" + port;
  cfg.token_file = sa_dir + "/token";
  auto token = ReadFile(cfg.token_file, "service-account token");
  if (!token.ok()) return token.status();
  cfg.ca_source = sa_dir + "/ca.crt";
  auto ca = ReadFile(cfg.ca_source, "service-account CA");
  if (!ca.ok()) return ca.status();
  cfg.ca_pem = *ca;
  auto ns = ReadFile(sa_dir + "/namespace", "service-account namespace");
  if (ns.ok() && !ns->empty()) {
    cfg.ns = *ns;
    while (!cfg.ns.empty() && (cfg.ns.back() == '\n' || cfg.ns.back() == ' ')) cfg.ns.pop_back();
  }
  cfg.context = "in-cluster";
  return cfg;
}

absl::StatusOr<KubeConfig> DefaultConfig() {
  if (const char* kc = std::getenv("KUBECONFIG"); kc && *kc) {
    std::string first = kc;
    first = first.substr(0, first.find(':'));
    return LoadKubeconfig(first);
  }
  if (std::getenv("KUBERNETES_SERVICE_HOST")) return InClusterConfig();
  if (const char* home = std::getenv("HOME"))
    return LoadKubeconfig(std::string(home) + "/.kube/config");
  return absl::NotFoundError("no kubeconfig: set KUBECONFIG or run in a cluster");
}

}  // namespace miglet::kube
