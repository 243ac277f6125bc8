#pragma once

#include <string>

#include "absl/status/statusor.h"

namespace miglet::kube {

// Where and how to reach the API server. PEM material is held in memory; `*_source` strings
// say where it came from so errors can name it.
struct KubeConfig {
  std::string server;  // "https://127.0.0.1:6443"
  std::string ca_pem;
  std::string ca_source;
  bool insecure_skip_tls_verify = false;
  std::string tls_server_name;
  std::string client_cert_pem;
  std::string client_key_pem;
  std::string client_cert_source;
  std::string token;       // a fixed bearer token
  std::string token_file;  // re-read whenever it changes (rotated service-account tokens)
  std::string ns = "default";
  std::string context;  // the kubeconfig context used, for messages
  // Bound on one request (watches excepted: they get their timeoutSeconds plus a margin). A
  // leader elector's client should use less than the renew deadline, so a hung renew cannot
  // keep a replica believing it leads after another has taken over.
  int request_timeout_seconds = 30;
};

// The current context (or `context`) of a kubeconfig. Relative file paths resolve against the
// kubeconfig's directory, like kubectl. Errors name the file and the missing/bad field.
absl::StatusOr<KubeConfig> LoadKubeconfig(const std::string& path, const std::string& context = "");
absl::StatusOr<KubeConfig> ParseKubeconfig(const std::string& yaml_text,
                                           const std::string& base_dir, const std::string& source,
                                           const std::string& context = "");

// In a pod: KUBERNETES_SERVICE_HOST/PORT, the service-account token (re-read when it
// rotates), CA and namespace under `sa_dir`.
absl::StatusOr<KubeConfig> InClusterConfig(
    const std::string& sa_dir = "/var/run/secrets/kubernetes.io/serviceaccount");

// $KUBECONFIG, else in-cluster, else ~/.kube/config.
absl::StatusOr<KubeConfig> DefaultConfig();

}  // namespace miglet::kube
