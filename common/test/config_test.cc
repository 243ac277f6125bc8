#include "miglet/common/config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>

namespace miglet {
namespace {

using ::testing::HasSubstr;

constexpr char kYaml[] = R"(vm_id: vm-1
controller:
  grpc_endpoint: 127.0.0.1:50051
  retry:
    initial_backoff: 2s
heartbeat:
  interval: 10s
github:
  labels: [linux, x64]
)";

TEST(ConfigTest, FlattensNestedKeysWithLines) {
  auto f = ConfigFile::Parse(kYaml, "miglet.yaml");
  ASSERT_TRUE(f.ok()) << f.status();
  const auto* e = f->Find("controller.retry.initial_backoff");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->value, "2s");
  EXPECT_EQ(e->line, 5);
  const auto* labels = f->Find("github.labels");
  ASSERT_NE(labels, nullptr);
  EXPECT_TRUE(labels->is_list);
  EXPECT_EQ(labels->items, (std::vector<std::string>{"linux", "x64"}));
}

TEST(ConfigTest, BindsTypedValues) {
  auto f = ConfigFile::Parse(kYaml, "miglet.yaml");
  ASSERT_TRUE(f.ok());
  std::string vm, ep;
  Duration backoff{}, interval{};
  std::vector<std::string> labels;
  ConfigBinder b(&*f, "");
  b.String("vm_id", &vm)
      .String("controller.grpc_endpoint", &ep)
      .Dur("controller.retry.initial_backoff", &backoff)
      .Dur("heartbeat.interval", &interval)
      .List("github.labels", &labels);
  ASSERT_TRUE(b.Finish().ok()) << b.Finish();
  EXPECT_EQ(vm, "vm-1");
  EXPECT_EQ(backoff, std::chrono::seconds(2));
  EXPECT_EQ(interval, std::chrono::seconds(10));
  EXPECT_EQ(labels.size(), 2u);
}

TEST(ConfigTest, BadValueNamesKeyAndLine) {
  auto f = ConfigFile::Parse("heartbeat:\n  interval: soon\n", "m.yaml");
  ASSERT_TRUE(f.ok());
  Duration d{};
  ConfigBinder b(&*f, "");
  b.Dur("heartbeat.interval", &d);
  auto st = b.Finish();
  ASSERT_FALSE(st.ok());
  EXPECT_THAT(std::string(st.message()),
              HasSubstr("m.yaml:2: heartbeat.interval: invalid duration"));
}

TEST(ConfigTest, UnknownKeyIsAnError) {
  auto f = ConfigFile::Parse("grpc:\n  prot: 1\n", "c.yaml");
  ASSERT_TRUE(f.ok());
  int64_t port = 0;
  ConfigBinder b(&*f, "");
  b.Int("grpc.port", &port, 0, 65535);
  auto st = b.Finish();
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.message(), "c.yaml:2: grpc.prot: unknown key");
}

TEST(ConfigTest, OutOfRangeAndNotANumber) {
  auto f = ConfigFile::Parse("grpc:\n  port: 70000\nhttp:\n  port: x\n", "c.yaml");
  ASSERT_TRUE(f.ok());
  int64_t a = 0, b2 = 0;
  ConfigBinder b(&*f, "");
  b.Int("grpc.port", &a, 0, 65535).Int("http.port", &b2, 0, 65535);
  EXPECT_THAT(std::string(b.Finish().message()),
              HasSubstr("c.yaml:2: grpc.port: 70000 is out of range"));
}

TEST(ConfigTest, InvalidYamlNamesLine) {
  auto f = ConfigFile::Parse("a: 1\nb: [unclosed\n", "x.yaml");
  ASSERT_FALSE(f.ok());
  EXPECT_THAT(std::string(f.status().message()), HasSubstr("x.yaml:"));
  EXPECT_THAT(std::string(f.status().message()), HasSubstr("invalid YAML"));
}

TEST(ConfigTest, EnvironmentOverridesFile) {
  auto f = ConfigFile::Parse(kYaml, "miglet.yaml");
  ASSERT_TRUE(f.ok());
  setenv("MIGTEST_CONTROLLER_GRPC_ENDPOINT", "10.1.1.1:1", 1);
  setenv("MIGTEST_HEARTBEAT_INTERVAL", "nope", 1);
  std::string ep;
  Duration d{};
  ConfigBinder b(&*f, "MIGTEST_");
  b.String("controller.grpc_endpoint", &ep).Dur("heartbeat.interval", &d);
  auto st = b.Finish();
  unsetenv("MIGTEST_CONTROLLER_GRPC_ENDPOINT");
  unsetenv("MIGTEST_HEARTBEAT_INTERVAL");
  EXPECT_EQ(ep, "10.1.1.1:1");
  ASSERT_FALSE(st.ok());
  EXPECT_THAT(std::string(st.message()),
              HasSubstr("environment variable MIGTEST_HEARTBEAT_INTERVAL: heartbeat.interval"));
}

TEST(ConfigTest, DuplicateKeyIsAnError) {
  auto f = ConfigFile::Parse("a: 1\na: 2\n", "d.yaml");
  EXPECT_FALSE(f.ok());
}

}  // namespace
}  // namespace miglet
