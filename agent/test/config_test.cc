#include "miglet/agent/config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>

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
