#include "miglet/agent/live_config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace miglet {
namespace {

using ::testing::HasSubstr;

commands::Command Update(std::map<std::string, std::string> params) {
  commands::Command c;
  c.set_id("u1");
  c.set_type("update_config");
  c.mutable_string_params()->insert(params.begin(), params.end());
  return c;
}

AgentConfig Base() {
  AgentConfig c;
  c.vm_id = "v";
  c.pool_id = "p";
  c.controller_grpc_endpoint = "a:1";
  c.log_format = "text";
  return c;
}

TEST(LiveConfigTest, AppliesLiveKeys) {
  AgentConfig c = Base();
  auto ack = ApplyUpdateConfig(
      Update({{"heartbeat.interval", "3s"}, {"controller.retry.max_backoff", "20s"}}), &c, nullptr);
  EXPECT_TRUE(ack.success()) << ack.message();
  EXPECT_EQ(c.heartbeat_interval, std::chrono::seconds(3));
  EXPECT_EQ(c.retry.max, std::chrono::seconds(20));
}

TEST(LiveConfigTest, RefusesWholeCommandWhenAnyKeyCannotChange) {
  AgentConfig c = Base();
  auto ack =
      ApplyUpdateConfig(Update({{"heartbeat.interval", "3s"}, {"vm_id", "other"}}), &c, nullptr);
  EXPECT_FALSE(ack.success());
  EXPECT_THAT(ack.message(), HasSubstr("vm_id: cannot change while running"));
  EXPECT_EQ(c.heartbeat_interval, std::chrono::seconds(15));  // nothing changed
}

TEST(LiveConfigTest, RefusesBadValue) {
  AgentConfig c = Base();
  auto ack = ApplyUpdateConfig(Update({{"heartbeat.interval", "often"}}), &c, nullptr);
  EXPECT_FALSE(ack.success());
  EXPECT_THAT(ack.message(), HasSubstr("heartbeat.interval: invalid duration"));
  ack = ApplyUpdateConfig(Update({{"heartbeat.interval", "1ms"}}), &c, nullptr);
  EXPECT_FALSE(ack.success());
  EXPECT_THAT(ack.message(), HasSubstr("at least 100ms"));
  ack = ApplyUpdateConfig(Update({}), &c, nullptr);
  EXPECT_FALSE(ack.success());
}

TEST(LiveConfigTest, SetLogLevel) {
  AgentConfig c = Base();
  commands::Command cmd;
  cmd.set_type("set_log_level");
  (*cmd.mutable_string_params())["level"] = "debug";
  EXPECT_TRUE(ApplySetLogLevel(cmd, &c).success());
  EXPECT_EQ(spdlog::get_level(), spdlog::level::debug);
  (*cmd.mutable_string_params())["level"] = "loud";
  auto ack = ApplySetLogLevel(cmd, &c);
  EXPECT_FALSE(ack.success());
  EXPECT_THAT(ack.message(), HasSubstr("unknown log level"));
  EXPECT_EQ(c.log_level, "debug");
  spdlog::set_level(spdlog::level::info);
}

}  // namespace
}  // namespace miglet
