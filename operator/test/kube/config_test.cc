#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "absl/strings/escaping.h"
#include "miglet/operator/kube/config.h"

namespace miglet::kube {
namespace {

std::string B64(const std::string& s) { return absl::Base64Escape(s); }

std::string Kubeconfig(const std::string& user_block, const std::string& cluster_extra = "") {
  return R"(apiVersion: v1
kind: Config
current-context: dev
clusters:
- name: other
  cluster:
    server: https://10.9.9.9:443
- name: local
  cluster:
    server: https://127.0.0.1:6443/
    certificate-authority-data: )" +
         B64("CA-PEM") + "\n" + cluster_extra + R"(
contexts:
- name: prod
  context: {cluster: other, user: u}
- name: dev
  context:
    cluster: local
    user: u
    namespace: team-a
users:
- name: u
  user:
)" + user_block;
}

TEST(KubeconfigTest, CurrentContextWithInlineClientCert) {
  auto cfg = ParseKubeconfig(Kubeconfig("    client-certificate-data: " + B64("CERT") +
                                        "\n    client-key-data: " + B64("KEY") + "\n"),
                             "/nowhere", "test.yaml");
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  EXPECT_EQ(cfg->server, "https://127.0.0.1:6443");  // trailing slash dropped
  EXPECT_EQ(cfg->ca_pem, "CA-PEM");
  EXPECT_EQ(cfg->client_cert_pem, "CERT");
  EXPECT_EQ(cfg->client_key_pem, "KEY");
  EXPECT_EQ(cfg->ns, "team-a");
  EXPECT_EQ(cfg->context, "dev");
  EXPECT_TRUE(cfg->token.empty());
}

TEST(KubeconfigTest, ExplicitContextAndToken) {
  auto cfg = ParseKubeconfig(Kubeconfig("    token: abc.def\n"), "", "test.yaml", "prod");
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  EXPECT_EQ(cfg->server, "https://10.9.9.9:443");
  EXPECT_EQ(cfg->token, "abc.def");
  EXPECT_EQ(cfg->ns, "default");
  EXPECT_TRUE(cfg->ca_pem.empty());
}

TEST(KubeconfigTest, FilePathsResolveAgainstTheKubeconfigDirectory) {
  const auto dir = std::filesystem::temp_directory_path() / ("kc-test-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir / "pki");
  std::ofstream(dir / "pki/ca.crt") << "CA-FROM-FILE";
  std::ofstream(dir / "pki/c.crt") << "CERT-FROM-FILE";
  std::ofstream(dir / "pki/c.key") << "KEY-FROM-FILE";
  std::ofstream(dir / "config") << R"(current-context: c
clusters: [{name: k, cluster: {server: "https://h:1", certificate-authority: pki/ca.crt}}]
contexts: [{name: c, context: {cluster: k, user: x}}]
users: [{name: x, user: {client-certificate: pki/c.crt, client-key: pki/c.key, tokenFile: tok}}]
)";
  auto cfg = LoadKubeconfig((dir / "config").string());
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  EXPECT_EQ(cfg->ca_pem, "CA-FROM-FILE");
  EXPECT_EQ(cfg->ca_source, (dir / "pki/ca.crt").string());
  EXPECT_EQ(cfg->client_cert_pem, "CERT-FROM-FILE");
  EXPECT_EQ(cfg->client_key_pem, "KEY-FROM-FILE");
  EXPECT_EQ(cfg->token_file, (dir / "tok").string());
  std::filesystem::remove_all(dir);
}

TEST(KubeconfigTest, ErrorsNameWhatIsWrong) {
  auto missing_ctx = ParseKubeconfig(Kubeconfig("    token: t\n"), "", "kc.yaml", "nope");
  EXPECT_FALSE(missing_ctx.ok());
  EXPECT_NE(missing_ctx.status().message().find("context \"nope\" not found"), std::string::npos)
      << missing_ctx.status();

  auto bad_b64 = ParseKubeconfig(
      Kubeconfig("    client-certificate-data: '!!!'\n    client-key-data: " + B64("K") + "\n"), "",
      "kc.yaml");
  EXPECT_FALSE(bad_b64.ok());
  EXPECT_NE(bad_b64.status().message().find("client-certificate-data is not valid base64"),
            std::string::npos)
      << bad_b64.status();

  auto cert_without_key =
      ParseKubeconfig(Kubeconfig("    client-certificate-data: " + B64("C") + "\n"), "", "kc.yaml");
  EXPECT_FALSE(cert_without_key.ok());

  auto missing_file = ParseKubeconfig(Kubeconfig("    client-certificate: /no/such.crt\n"
                                                 "    client-key: /no/such.key\n"),
                                      "", "kc.yaml");
  EXPECT_FALSE(missing_file.ok());
  EXPECT_NE(missing_file.status().message().find("/no/such.crt"), std::string::npos);

  auto not_yaml = ParseKubeconfig("{{{", "", "kc.yaml");
  EXPECT_FALSE(not_yaml.ok());
  EXPECT_NE(not_yaml.status().message().find("kc.yaml"), std::string::npos);
}

TEST(InClusterConfigTest, ReadsServiceAccountFilesAndEnvironment) {
  const auto dir = std::filesystem::temp_directory_path() / ("sa-test-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "token") << "tok-1\n";
  std::ofstream(dir / "ca.crt") << "SA-CA";
  std::ofstream(dir / "namespace") << "runners";
  unsetenv("KUBERNETES_SERVICE_HOST");
  EXPECT_FALSE(InClusterConfig(dir.string()).ok());
  setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1", 1);
  setenv("KUBERNETES_SERVICE_PORT", "443", 1);
  auto cfg = InClusterConfig(dir.string());
  unsetenv("KUBERNETES_SERVICE_HOST");
  unsetenv("KUBERNETES_SERVICE_PORT");
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  EXPECT_EQ(cfg->server, "https://10.0.0.1:443");
  EXPECT_EQ(cfg->ca_pem, "SA-CA");
  EXPECT_EQ(cfg->ns, "runners");
  EXPECT_EQ(cfg->token_file, (dir / "token").string());
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace miglet::kube
