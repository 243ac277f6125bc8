#include "miglet/agent/stream_client.h"

#include <gtest/gtest.h>
#include <prometheus/registry.h>

#include <vector>

#include "miglet/common/fake_clock.h"
#include "miglet/common/net.h"
#include "miglet/common/testing/metric_value.h"

namespace miglet {
namespace {

using miglet::testing::MetricValue;
using std::chrono::milliseconds;
using std::chrono::seconds;

class NoCommands : public CommandHandler {
 public:
  commands::CommandAck Handle(const commands::Command& cmd) override {
    commands::CommandAck ack;
    ack.set_command_id(cmd.id());
    return ack;
  }
};

// Nothing listens on the port, so every attempt fails at once; between attempts the client
// waits on its clock, and only the test moves that clock.
TEST(StreamClientTest, ReconnectsAfterEachBackoffStepOfTheClock) {
  auto port = PickFreePort("127.0.0.1");
  ASSERT_TRUE(port.ok()) << port.status();
  auto clock = std::make_shared<FakeClock>();
  StreamClientOptions o;
  o.vm_id = "vm-1";
  o.pool_id = "pool-a";
  o.grpc_endpoint = "127.0.0.1:" + std::to_string(*port);
  o.http_fallback = false;
  o.retry = BackoffPolicy{.initial = seconds(1),
                          .max = seconds(8),
                          .multiplier = 2.0,
                          .jitter = 0.0,
                          .reset_after = seconds(30)};
  prometheus::Registry reg;
  NoCommands handler;
  auto client = StreamClient::Create(o, clock, &handler, {}, &reg);
  client->Start();
  auto attempts = [&] { return MetricValue(reg, "miglet_reconnects_total"); };
  const std::vector<Duration> steps = {seconds(1), seconds(2), seconds(4), seconds(8), seconds(8)};
  for (size_t i = 0; i < steps.size(); ++i) {
    // The attempt failed and the client waits out exactly this step of the sequence.
    ASSERT_TRUE(clock->AwaitWaiterUntil(clock->Now() + steps[i])) << "step " << i;
    EXPECT_EQ(attempts(), static_cast<double>(i + 1));
    EXPECT_EQ(MetricValue(reg, "miglet_reconnect_backoff_seconds"), ToSeconds(steps[i]));
    clock->Advance(steps[i] - milliseconds(1));
    EXPECT_EQ(attempts(), static_cast<double>(i + 1)) << "reconnected before its time";
    clock->Advance(milliseconds(1));
  }
  ASSERT_TRUE(clock->AwaitWaiterUntil(clock->Now() + seconds(8)));
  EXPECT_EQ(attempts(), 6);
  EXPECT_FALSE(client->connected());
  client->Stop();
}

}  // namespace
}  // namespace miglet
