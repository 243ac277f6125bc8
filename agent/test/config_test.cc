#include "miglet/agent/config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <sstream>

namespace miglet {
namespace {

using ::testing::HasSubstr;

std::string WriteTemp(const std::string& text) {
  char path[] = "/tmp/miglet-config-XXXXXX";
  int fd = mkstemp(path);
  close(fd);
  std::ofstream(path) << text;
  return path;
}

TEST(AgentConfigTest, LoadsContractKeys) {
  const auto path = WriteTemp(R"(vm_id: vm-1
pool_id: pool-a
org_id: acme
controller:
  endpoint: http://ctl:8080
  grpc_endpoint: ctl:50051
  retry:
    initial_backoff: 1s
    max_backoff: 10s
heartbeat:
  interval: 5s
github:
  labels: [linux, gpu]
logging:
  level: debug
  format: text
metrics:
  listen: 127.0.0.1:0
)");
  AgentConfig c;
  auto st = LoadAgentConfig(path, &c);
  ASSERT_TRUE(st.ok()) << st;
  EXPECT_EQ(c.vm_id, "vm-1");
  EXPECT_EQ(c.controller_grpc_endpoint, "ctl:50051");
  EXPECT_EQ(c.retry.initial, std::chrono::seconds(1));
  EXPECT_EQ(c.retry.max, std::chrono::seconds(10));
  EXPECT_EQ(c.heartbeat_interval, std::chrono::seconds(5));
  EXPECT_EQ(c.labels.size(), 2u);
  auto o = ToStreamOptions(c, "9.9.9");
  EXPECT_EQ(o.http_endpoint, "http://ctl:8080");
  EXPECT_EQ(o.version, "9.9.9");
  std::remove(path.c_str());
}

std::string ReadFixture(const std::string& name) {
  std::ifstream in(std::string(MIGLET_FIELD_FIXTURES) + "/" + name);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A field agent's file (every key the contract lists) loads: what has a meaning is mapped,
// the rest is listed as ignored, and --check-config's YAML shows every key's value and source.
TEST(AgentConfigTest, AFieldAgentsFileLoads) {
  const auto token = WriteTemp("  s3cret-token\n");
  std::string yaml = ReadFixture("miglet.yaml");
  const std::string placeholder = "/var/run/secrets/miglet/token";
  ASSERT_NE(yaml.find(placeholder), std::string::npos);
  yaml.replace(yaml.find(placeholder), placeholder.size(), token);
  const auto path = WriteTemp(yaml);
  AgentConfig c;
  auto st = LoadAgentConfig(path, &c);
  ASSERT_TRUE(st.ok()) << st;
  EXPECT_EQ(c.auth_type, "bearer");
  EXPECT_EQ(c.auth_token_path, token);
  EXPECT_EQ(c.controller_timeout, std::chrono::seconds(20));
  EXPECT_EQ(c.register_timeout, std::chrono::minutes(5));  // github.registration_timeout
  EXPECT_EQ(c.sources.at("runner.register_timeout"), path + ":28");
  EXPECT_EQ(c.org_id, "acme");
  EXPECT_THAT(c.labels, ::testing::ElementsAre("self-hosted", "linux"));
  EXPECT_THAT(
      c.ignored_keys,
      ::testing::ElementsAre(
          "controller.retry.max_attempts (" + path + ":21)",
          "github.token_source (" + path + ":27)", "logging.redact_secrets (" + path + ":41)",
          "metrics.collection_interval (" + path + ":44)", "metrics.include_disk (" + path + ":45)",
          "metrics.include_network (" + path + ":46)", "storage.mongodb.database (" + path + ":50)",
          "storage.mongodb.uri (" + path + ":49)"));
  auto o = ToStreamOptions(c, "1");
  ASSERT_TRUE(o.bearer_token);
  EXPECT_EQ(o.bearer_token(), "s3cret-token");
  EXPECT_EQ(o.http_timeout, std::chrono::seconds(20));
  // A rotated token is read again.
  std::ofstream(token) << "rotated-token-with-another-length";
  EXPECT_EQ(o.bearer_token(), "rotated-token-with-another-length");

  const std::string out = EffectiveConfigYaml(c);
  EXPECT_THAT(out, HasSubstr("vm_id: \"vm-field-1\"  # " + path + ":4\n"));
  EXPECT_THAT(out, HasSubstr("org_id: \"acme\"  # " + path + ":6\n"));
  EXPECT_THAT(out, HasSubstr("  timeout: 20s  # " + path + ":10\n"));
  EXPECT_THAT(out, HasSubstr("    type: \"bearer\"  # " + path + ":16\n"));
  EXPECT_THAT(out, HasSubstr("    token_path: \"" + token + "\"  # " + path + ":17\n"));
  EXPECT_THAT(out, HasSubstr("  dir: \"/home/runner\"  # " + path + ":34\n"));
  EXPECT_THAT(out, HasSubstr("  register_timeout: 5m  # " + path + ":28\n"));
  EXPECT_THAT(out, HasSubstr("  command: \"systemctl poweroff\"  # default\n"));
  EXPECT_THAT(out, HasSubstr("#   storage.mongodb.uri (" + path + ":49)\n"));
  EXPECT_THAT(out, ::testing::Not(HasSubstr("s3cret")));
  // Every line with a value names its source.
  std::stringstream lines(out);
  for (std::string line; std::getline(lines, line);) {
    if (line.empty() || line[0] == '#' || line.back() == ':') continue;
    EXPECT_THAT(line, HasSubstr("  # ")) << line;
  }
  std::remove(path.c_str());
  std::remove(token.c_str());
}

TEST(AgentConfigTest, AuthMistakesAreNamed) {
  const std::string base = "vm_id: v\npool_id: p\ncontroller:\n  grpc_endpoint: a:1\n  auth:\n";
  struct Case {
    std::string auth, expect;
  } cases[] = {
      {"    type: basic\n", ":6: controller.auth.type: \"basic\" is not bearer or none"},
      {"    type: bearer\n", "controller.auth.type: bearer needs controller.auth.token_path"},
      {"    type: bearer\n    token_path: /nonexistent/token\n",
       ":7: controller.auth.token_path: cannot read \"/nonexistent/token\""},
  };
  for (const auto& tc : cases) {
    const auto path = WriteTemp(base + tc.auth);
    AgentConfig c;
    auto st = LoadAgentConfig(path, &c);
    EXPECT_FALSE(st.ok()) << tc.auth;
    EXPECT_THAT(st.message(), HasSubstr(tc.expect));
    std::remove(path.c_str());
  }
  // An unknown key is still an error: only the field's known keys are ignored.
  const auto path = WriteTemp(base + "    kind: bearer\n");
  AgentConfig c;
  EXPECT_THAT(LoadAgentConfig(path, &c).message(), HasSubstr("controller.auth.kind: unknown key"));
  std::remove(path.c_str());
}

TEST(AgentConfigTest, MissingVmIdIsNamed) {
  const auto path = WriteTemp("pool_id: p\ncontroller:\n  grpc_endpoint: a:1\n");
  AgentConfig c;
  auto st = LoadAgentConfig(path, &c);
  ASSERT_FALSE(st.ok());
  EXPECT_THAT(std::string(st.message()), HasSubstr("vm_id: is required"));
  std::remove(path.c_str());
}

TEST(AgentConfigTest, BadEndpointNamesKeyAndLine) {
  const auto path = WriteTemp("vm_id: v\npool_id: p\ncontroller:\n  grpc_endpoint: nowhere\n");
  AgentConfig c;
  auto st = LoadAgentConfig(path, &c);
  ASSERT_FALSE(st.ok());
  EXPECT_THAT(std::string(st.message()), HasSubstr(":4: controller.grpc_endpoint"));
  std::remove(path.c_str());
}

TEST(AgentConfigTest, EnvironmentOverridesFile) {
  const auto path = WriteTemp("vm_id: v\npool_id: p\ncontroller:\n  grpc_endpoint: a:1\n");
  setenv("MIGLET_CONTROLLER_GRPC_ENDPOINT", "b:2", 1);
  AgentConfig c;
  auto st = LoadAgentConfig(path, &c);
  unsetenv("MIGLET_CONTROLLER_GRPC_ENDPOINT");
  ASSERT_TRUE(st.ok()) << st;
  EXPECT_EQ(c.controller_grpc_endpoint, "b:2");
  EXPECT_EQ(c.sources["controller.grpc_endpoint"],
            "environment variable MIGLET_CONTROLLER_GRPC_ENDPOINT");
  std::remove(path.c_str());
}

TEST(AgentConfigTest, RetryMaxBelowInitialIsRefused) {
  const auto path = WriteTemp(
      "vm_id: v\npool_id: p\ncontroller:\n  grpc_endpoint: a:1\n  retry:\n    initial_backoff: "
      "10s\n    max_backoff: 1s\n");
  AgentConfig c;
  auto st = LoadAgentConfig(path, &c);
  ASSERT_FALSE(st.ok());
  EXPECT_THAT(std::string(st.message()), HasSubstr(":7: controller.retry.max_backoff"));
  std::remove(path.c_str());
}

}  // namespace
}  // namespace miglet
