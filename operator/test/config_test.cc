#include "miglet/operator/config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <set>

namespace miglet::operator_config {
namespace {

using ::testing::HasSubstr;

absl::StatusOr<Parsed> ParseArgs(std::vector<std::string> args) {
  args.insert(args.begin(), "mig-controller");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  return Parse(static_cast<int>(argv.size()), argv.data());
}

std::string WriteConfig(const std::string& text) {
  char path[] = "/tmp/mig-controller-config-XXXXXX";
  const int fd = mkstemp(path);
  (void)!write(fd, text.data(), text.size());
  close(fd);
  return path;
}

TEST(ControllerConfigTest, TheTableIsConsistent) {
  std::set<std::string> keys, flags;
  for (const auto& s : Settings()) {
    if (!s.key.empty()) {
      EXPECT_TRUE(keys.insert(s.key).second) << "duplicate key " << s.key;
    }
    if (!s.flag.empty()) {
      EXPECT_TRUE(flags.insert(s.flag).second) << "duplicate flag " << s.flag;
    }
    EXPECT_FALSE(s.help.empty()) << s.key;
    EXPECT_FALSE(s.key.empty() && s.flag.empty());
  }
  // kubebuilder's flags are there.
  for (const char* f : {"kubeconfig", "namespace", "leader-elect", "metrics-bind-address",
                        "health-probe-bind-address"}) {
    EXPECT_TRUE(flags.count(f)) << f;
  }
}

TEST(ControllerConfigTest, Defaults) {
  auto p = ParseArgs({});
  ASSERT_TRUE(p.ok()) << p.status();
  const auto& c = p->config;
  EXPECT_EQ(c.grpc_port, 50051);
  EXPECT_EQ(c.metrics_bind_address, ":9090");
  EXPECT_EQ(c.health_probe_bind_address, ":8081");
  EXPECT_EQ(c.controllers, "auto");
  EXPECT_FALSE(c.leader_elect);
  EXPECT_EQ(c.status_refresh, std::chrono::minutes(20));
}

TEST(ControllerConfigTest, FlagsBeatTheEnvironmentWhichBeatsTheFile) {
  const std::string file = WriteConfig(
      "grpc:\n  port: 1111\nkubernetes:\n  namespace: from-file\n  workers: 3\n"
      "logging:\n  level: debug\n");
  setenv("MIG_CONTROLLER_KUBERNETES_NAMESPACE", "from-env", 1);
  auto p = ParseArgs({"--config=" + file, "--grpc-port=2222", "--leader-elect", "--workers", "8"});
  unsetenv("MIG_CONTROLLER_KUBERNETES_NAMESPACE");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->config.grpc_port, 2222);
  EXPECT_EQ(p->config.watch_namespace, "from-env");
  EXPECT_EQ(p->config.log_level, "debug");
  EXPECT_TRUE(p->config.leader_elect);
  EXPECT_EQ(p->config.workers, 8);
  auto q = ParseArgs({"--config=" + file, "--leader-elect=false", "--metrics-port=-1"});
  ASSERT_TRUE(q.ok()) << q.status();
  EXPECT_FALSE(q->config.leader_elect);
  EXPECT_EQ(q->config.metrics_bind_address, "0");
}

TEST(ControllerConfigTest, BadValuesNameTheKeyAndWhereItCameFrom) {
  const std::string file = WriteConfig("grpc:\n  port: 70000\n");
  auto p = ParseArgs({"--config=" + file});
  ASSERT_FALSE(p.ok());
  EXPECT_THAT(std::string(p.status().message()), HasSubstr(file + ":2: grpc.port"));
  const std::string unknown = WriteConfig("grpc:\n  prot: 1\n");
  p = ParseArgs({"--config=" + unknown});
  ASSERT_FALSE(p.ok());
  EXPECT_THAT(std::string(p.status().message()), HasSubstr("grpc.prot"));
  p = ParseArgs({"--workers=0"});
  EXPECT_THAT(std::string(p.status().message()),
              HasSubstr("--workers: \"0\" is not a number in [1, 64]"));
  p = ParseArgs({"--controllers=maybe"});
  EXPECT_THAT(std::string(p.status().message()),
              HasSubstr("--controllers: kubernetes.controllers: \"maybe\" is not auto, on or off"));
  p = ParseArgs({"--log-level=loud"});
  EXPECT_THAT(std::string(p.status().message()), HasSubstr("--log-level: logging.level"));
  p = ParseArgs({"--metrics-bind-address=nowhere"});
  EXPECT_THAT(std::string(p.status().message()), HasSubstr("metrics.bind_address"));
  p = ParseArgs({"--no-such-flag"});
  EXPECT_FALSE(p.ok());
}

TEST(ControllerConfigTest, AuthAndTlsSettingsAreCheckedTogether) {
  auto p = ParseArgs({"--agent-auth=maybe"});
  EXPECT_THAT(std::string(p.status().message()),
              HasSubstr("--agent-auth: auth.agents: \"maybe\" is not none or token"));
  p = ParseArgs({"--http-tls=true"});
  EXPECT_THAT(std::string(p.status().message()), HasSubstr("http.tls serves the gRPC port's"));
  p = ParseArgs({"--metrics-tls=true"});
  EXPECT_THAT(std::string(p.status().message()), HasSubstr("metrics.tls"));
  p = ParseArgs({"--grpc-tls=true", "--tls-cert-file=/c.pem"});
  EXPECT_THAT(std::string(p.status().message()), HasSubstr("go together"));
  // TLS without files (the controller's own CA) parses; whether the controllers run is main's.
  p = ParseArgs({"--grpc-tls=true", "--http-tls=true", "--agent-auth=token", "--secure-api=true",
                 "--metrics-secure=true", "--tls-dns-names=a.svc,b.svc"});
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_TRUE(p->config.tls_enabled && p->config.http_tls && p->config.secure_api &&
              p->config.metrics_secure);
  EXPECT_EQ(p->config.agent_auth, "token");
  EXPECT_EQ(p->config.tls_dns_names, "a.svc,b.svc");
  EXPECT_EQ(p->config.tls_ca_secret, "mig-controller-ca");
}

TEST(ControllerConfigTest, HelpListsEveryFlagWithItsDefault) {
  auto p = ParseArgs({"--help"});
  ASSERT_TRUE(p.ok());
  EXPECT_TRUE(p->help);
  for (const auto& s : Settings()) {
    if (!s.flag.empty()) {
      EXPECT_THAT(p->usage, HasSubstr("--" + s.flag)) << s.flag;
    }
  }
  EXPECT_THAT(p->usage, HasSubstr("(default :8081)"));
}

TEST(ControllerConfigTest, BindAddresses) {
  EXPECT_EQ(*SplitBindAddress(":9090"), (std::pair<std::string, int>{"0.0.0.0", 9090}));
  EXPECT_EQ(*SplitBindAddress("127.0.0.1:0"), (std::pair<std::string, int>{"127.0.0.1", 0}));
  EXPECT_EQ(SplitBindAddress("0")->second, -1);
  EXPECT_FALSE(SplitBindAddress("9090").ok());
}

}  // namespace
}  // namespace miglet::operator_config
