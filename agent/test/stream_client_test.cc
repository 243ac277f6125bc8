#include "miglet/agent/stream_client.h"

#include <gtest/gtest.h>
#include <prometheus/registry.h>

#include <condition_variable>
#include <mutex>
#include <optional>
#include <vector>

#include "miglet/common/fake_clock.h"
#include "miglet/common/http.h"
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

// A controller's HTTP API, canned: records what the agent sends and answers each command poll
// with `commands` once.
class CannedController {
 public:
  explicit CannedController(std::string commands) : commands_(std::move(commands)) {
    server_ = MakeHttpServer("127.0.0.1", 0, [this](const HttpRequest& r, HttpReply reply) {
      std::string answer = R"({"status":"received","acknowledged":true})";
      {
        std::lock_guard l(mu_);
        requests_.push_back(r);
        if (r.method == "GET" && r.path.ends_with("/commands")) {
          answer = polls_++ == 0 ? commands_ : R"({"vm_id":"vm-1","commands":[]})";
        }
      }
      cv_.notify_all();
      reply(HttpResponse{200, answer, "application/json"});
    });
    auto port = server_->Start();
    EXPECT_TRUE(port.ok()) << port.status();
    port_ = port.ok() ? *port : -1;
  }
  ~CannedController() { server_->Stop(); }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  // The first request for which pred holds, within a generous bound.
  std::optional<HttpRequest> Await(const std::function<bool(const HttpRequest&)>& pred) {
    std::unique_lock l(mu_);
    std::optional<HttpRequest> found;
    cv_.wait_for(l, seconds(30), [&] {
      for (const auto& r : requests_) {
        if (pred(r)) {
          found = r;
          return true;
        }
      }
      return false;
    });
    return found;
  }

 private:
  std::string commands_;
  std::unique_ptr<HttpServer> server_;
  int port_ = -1;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<HttpRequest> requests_;
  int polls_ = 0;
};

class Recording : public CommandHandler {
 public:
  commands::CommandAck Handle(const commands::Command& cmd) override {
    {
      std::lock_guard l(mu_);
      handled_.push_back(cmd);
    }
    commands::CommandAck ack;
    ack.set_command_id(cmd.id());
    ack.set_success(true);
    return ack;
  }
  std::vector<commands::Command> handled() {
    std::lock_guard l(mu_);
    return handled_;
  }

 private:
  std::mutex mu_;
  std::vector<commands::Command> handled_;
};

// A polled command the agent cannot read is never lost in silence: it is logged, counted and,
// having an id, acked as failed with the reason; the commands beside it run.
TEST(StreamClientTest, APolledCommandItCannotReadIsAckedAsFailed) {
  CannedController controller(
      R"({"vm_id":"vm-1","commands":[)"
      R"({"id":"c1","type":"drain","parameters":{"timeout_seconds":"soon"},"created_at":"noon"},)"
      R"({"type":"shutdown"},)"
      R"({"id":"c3","type":"set_log_level","parameters":{"level":"debug"},)"
      R"("created_at":"2026-11-27T12:00:00Z"}]})");
  StreamClientOptions o;
  o.vm_id = "vm-1";
  o.pool_id = "pool-a";
  o.http_endpoint = controller.url();  // no gRPC endpoint: HTTP only
  prometheus::Registry reg;
  Recording handler;
  auto client = StreamClient::Create(o, std::make_shared<FakeClock>(), &handler, {}, &reg);
  client->Start();
  auto failed = controller.Await([](const HttpRequest& r) {
    return r.method == "POST" && r.path == "/api/v1/vms/vm-1/commands/c1/ack";
  });
  ASSERT_TRUE(failed.has_value());
  // success is false: proto JSON leaves a false field out.
  EXPECT_EQ(failed->body.find(R"("success":true)"), std::string::npos) << failed->body;
  EXPECT_NE(failed->body.find("the agent cannot read this command"), std::string::npos)
      << failed->body;
  EXPECT_NE(failed->body.find("created_at"), std::string::npos) << failed->body;
  auto ran = controller.Await([](const HttpRequest& r) {
    return r.method == "POST" && r.path == "/api/v1/vms/vm-1/commands/c3/ack";
  });
  ASSERT_TRUE(ran.has_value());
  EXPECT_NE(ran->body.find(R"("success":true)"), std::string::npos) << ran->body;
  ASSERT_EQ(handler.handled().size(), 1u);
  EXPECT_EQ(handler.handled()[0].string_params().at("level"), "debug");
  EXPECT_EQ(handler.handled()[0].created_at(), 1795780800);
  // Both unreadable ones are counted; the one without an id cannot be acked.
  EXPECT_EQ(MetricValue(reg, "miglet_commands_unreadable_total"), 2);
  // It polled as an agent that acks, and spoke the field's JSON.
  auto poll = controller.Await([](const HttpRequest& r) { return r.method == "GET"; });
  ASSERT_TRUE(poll.has_value());
  EXPECT_EQ(poll->query.count("ack") ? poll->query.at("ack") : "", "true");
  auto hb = controller.Await([](const HttpRequest& r) { return r.path.ends_with("/heartbeat"); });
  ASSERT_TRUE(hb.has_value());
  EXPECT_NE(hb->body.find(R"("runner_state":")"), std::string::npos) << hb->body;
  EXPECT_NE(hb->body.find(R"("vm_health":{)"), std::string::npos) << hb->body;
  client->Stop();
}

}  // namespace
}  // namespace miglet
