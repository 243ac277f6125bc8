#include "miglet/operator/agent_hub_server.h"

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <mutex>
#include <vector>

#include "miglet/commands/commands.grpc.pb.h"
#include "miglet/common/fake_clock.h"

namespace miglet {
namespace {

using std::chrono::seconds;

// The hub's sweeper runs on the hub's clock: a test moves a fake one second by second and
// sees an agent that connected and then said nothing turn lost at the heartbeat timeout.
TEST(AgentHubServerTest, ASilentAgentTurnsLostAsTheClockDrivesTheSweeper) {
  auto clock = std::make_shared<FakeClock>();
  AgentHubServerOptions o;
  o.bind_address = "127.0.0.1";
  o.grpc_port = 0;
  o.http_port = -1;
  o.hub.heartbeat_timeout = seconds(10);
  o.sweep_interval = seconds(1);
  auto server = AgentHubServer::Start(o, clock, nullptr);
  ASSERT_TRUE(server.ok()) << server.status();
  AgentHub& hub = (*server)->hub();
  std::mutex mu;
  std::vector<AgentInfo> changes;
  hub.SetChangeHook([&](const AgentInfo& a) {
    std::lock_guard l(mu);
    changes.push_back(a);
  });

  auto stub = commands::CommandService::NewStub(grpc::CreateChannel(
      "127.0.0.1:" + std::to_string((*server)->grpc_port()), grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  auto stream = stub->StreamCommands(&ctx);
  commands::MIGletMessage connect;
  connect.mutable_connect()->set_vm_id("vm-1");
  connect.mutable_connect()->set_pool_id("pool-a");
  connect.mutable_connect()->set_version("1.0.0");
  ASSERT_TRUE(stream->Write(connect));
  commands::ControllerMessage ack;
  ASSERT_TRUE(stream->Read(&ack));
  ASSERT_TRUE(ack.has_connect_ack() && ack.connect_ack().accepted());
  ASSERT_TRUE(hub.GetAgent("vm-1")->connected);

  // From here the agent is silent. Each second the sweeper wakes, sweeps and parks again.
  MonoTime now = clock->Now();
  for (int silent = 0; silent < 10; ++silent) {
    ASSERT_TRUE(clock->AwaitWaiterUntil(now + seconds(1))) << silent << " s";
    EXPECT_FALSE(hub.GetAgent("vm-1")->lost) << "after " << silent << " s of silence";
    clock->Advance(seconds(1));
    now += seconds(1);
  }
  // The sweep that ran once 10 s had passed is done when the sweeper parks again.
  ASSERT_TRUE(clock->AwaitWaiterUntil(now + seconds(1)));
  EXPECT_TRUE(hub.GetAgent("vm-1")->lost);
  EXPECT_TRUE(hub.GetAgent("vm-1")->connected) << "lost, not disconnected: its stream is open";
  {
    std::lock_guard l(mu);
    ASSERT_FALSE(changes.empty());
    EXPECT_TRUE(changes.back().lost);
  }

  ctx.TryCancel();
  (void)stream->Finish();
  (*server)->Shutdown();
}

}  // namespace
}  // namespace miglet
