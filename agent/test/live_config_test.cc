#include "miglet/agent/live_config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>

#include <sstream>

#include "miglet/common/logging.h"

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

// The running client's side of update_config: what it was told, in order.
class RecordingClient : public StreamClient {
 public:
  void Start() override {}
  void Stop() override {}
  void SendEvent(commands::EventNotification) override {}
  void HeartbeatNow() override {}
  bool Flush(Duration) override { return true; }
  bool connected() const override { return true; }
  bool using_http() const override { return false; }
  size_t queued() const override { return 0; }
  void SetHeartbeatInterval(Duration interval) override { intervals.push_back(interval); }
  void SetRetryPolicy(const BackoffPolicy& policy) override { policies.push_back(policy); }
  std::vector<Duration> intervals;
  std::vector<BackoffPolicy> policies;
};

TEST(LiveConfigTest, TheRunningClientAndLoggerTakeTheNewValues) {
  std::ostringstream out;
  auto logger = std::make_shared<spdlog::logger>(
      "live", std::make_shared<spdlog::sinks::ostream_sink_mt>(out));
  auto before = spdlog::default_logger();
  spdlog::set_default_logger(logger);
  SetLogFormat(LogFormat::kText);
  spdlog::set_level(spdlog::level::info);
  AgentConfig c = Base();
  RecordingClient client;
  auto ack = ApplyUpdateConfig(Update({{"heartbeat.interval", "3s"},
                                       {"controller.retry.max_backoff", "20s"},
                                       {"logging.level", "debug"},
                                       {"logging.format", "json"}}),
                               &c, &client);
  EXPECT_TRUE(ack.success()) << ack.message();
  ASSERT_EQ(client.intervals.size(), 1u);
  EXPECT_EQ(client.intervals[0], std::chrono::seconds(3));
  ASSERT_EQ(client.policies.size(), 1u);
  EXPECT_EQ(client.policies[0].max, std::chrono::seconds(20));
  // The logger: debug lines now, as JSON.
  out.str("");
  spdlog::debug("after the update");
  const std::string line = out.str();
  EXPECT_EQ(line.rfind("{", 0), 0u) << line;
  EXPECT_THAT(line, HasSubstr("\"msg\":\"after the update\"")) << line;
  // A refused command tells the client nothing.
  ack = ApplyUpdateConfig(Update({{"heartbeat.interval", "5s"}, {"vm_id", "x"}}), &c, &client);
  EXPECT_FALSE(ack.success());
  EXPECT_EQ(client.intervals.size(), 1u);
  spdlog::set_default_logger(before);
  spdlog::set_level(spdlog::level::info);
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
