// The miglet binary under concurrent input: commands from two controller threads, runner lines
// (jobs, results, crashes) from a third, and the controller restarted between rounds. Built by
// `make tsan` too, where ThreadSanitizer watches the agent's threads while this runs; any report
// it prints makes the agent's log fail the last check.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <random>
#include <thread>

#include "agent_process.h"
#include "await.h"
#include "hub_harness.h"

namespace miglet {
namespace {

namespace fs = std::filesystem;
using miglet::testing::AgentProcess;
using miglet::testing::HubHarness;
using std::chrono::seconds;
using ::testing::HasSubstr;
using ::testing::Not;

int EnvInt(const char* name, int def) {
  const char* v = std::getenv(name);
  return v ? std::atoi(v) : def;
}

class AgentStressTest : public ::testing::Test, protected HubHarness {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("miglet-stress-" + std::to_string(getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    StartHub(0);
  }
  void TearDown() override {
    agent_.reset();
    if (hub_) hub_->Shutdown();
    fs::remove_all(dir_);
  }

  commands::Command Pick(std::mt19937& rng, int n) {
    commands::Command c;
    switch (rng() % 6) {
      case 0:
      case 1:
        c.set_type("register_runner");
        (*c.mutable_string_params())["runner_url"] = "https://github.com/acme";
        (*c.mutable_string_params())["registration_token"] = "STRESS-REG-TOKEN";
        (*c.mutable_string_params())["runner_name"] = "stress-" + std::to_string(n);
        (*c.mutable_bool_params())["ephemeral"] = rng() % 2 == 0;
        break;
      case 2:
        c.set_type("drain");
        break;
      case 3:
        c.set_type("set_log_level");
        (*c.mutable_string_params())["level"] = rng() % 2 ? "debug" : "info";
        break;
      case 4:
        c.set_type("update_config");
        (*c.mutable_string_params())["heartbeat.interval"] = rng() % 2 ? "300ms" : "700ms";
        break;
      default:
        c.set_type("no_such_command");  // acked with success=false, never dropped
        break;
    }
    return c;
  }

  fs::path dir_;
  std::unique_ptr<AgentProcess> agent_;
};

TEST_F(AgentStressTest, CommandsRunnerLinesAndRestartsAtOnce) {
  const int rounds = EnvInt("MIGLET_STRESS_ROUNDS", 4);
  const int per_thread = EnvInt("MIGLET_STRESS_COMMANDS", 25);
  agent_ = std::make_unique<AgentProcess>(
      dir_,
      "vm_id: vm-1\npool_id: pool-a\norg_id: acme\ncontroller:\n  grpc_endpoint: 127.0.0.1:" +
          std::to_string(hub_->grpc_port()) +
          "\n  retry:\n    initial_backoff: 100ms\n    max_backoff: 500ms\n"
          "heartbeat:\n  interval: 300ms\nlogging:\n  format: text\n  level: debug\n"
          "metrics:\n  listen: 127.0.0.1:0\nshutdown:\n  grace_period: 5s\n  force_after: 10s\n",
      MIGLET_FAKE_RUNNER_DIR);
  agent_->Start();
  std::atomic<int> sent{0}, answered{0}, registered{0}, lines{0};
  for (int round = 0; round < rounds; ++round) {
    ASSERT_TRUE(signal_.Await([&] { return !State().empty(); }, seconds(60)))
        << "round " << round << ": the agent did not connect\n"
        << agent_->Log();
    std::vector<std::thread> threads;
    std::atomic<int> senders{2};
    for (int t = 0; t < 2; ++t) {
      threads.emplace_back([&, t] {
        std::mt19937 rng(1000 * round + t);
        for (int i = 0; i < per_thread; ++i) {
          auto c = Pick(rng, i);
          const bool reg = c.type() == "register_runner";
          ++sent;
          auto r = Send(std::move(c));
          if (!r.command_id.empty() && r.status.ok()) ++answered;
          if (reg && r.success) ++registered;
        }
        --senders;
      });
    }
    threads.emplace_back([&] {
      std::mt19937 rng(7 + round);
      const char* kLines[] = {"job build", "finish Succeeded", "finish Failed",
                              "job test",  "finish Succeeded", "crash 3"};
      // Until both senders are done, and at least per_thread * 4 lines tried.
      for (int i = 0; senders.load() > 0 || i < per_thread * 4; ++i) {
        // crash is rarer than the rest: one pick in 24.
        const int k = rng() % 24 == 0 ? 5 : static_cast<int>(rng() % 5);
        if (agent_->TryRunner(kLines[k])) ++lines;
        // Pacing, not synchronisation: lines arrive among the commands rather than in a burst.
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
      }
    });
    for (auto& t : threads) t.join();
    ASSERT_EQ(agent_->ExitCode(), -1) << "the agent died in round " << round << "\n"
                                      << agent_->Log();
    // The controller goes away and comes back on the same port: the agent reconnects.
    const int port = hub_->grpc_port();
    hub_->Shutdown();
    hub_.reset();
    StartHub(port);
  }
  ASSERT_TRUE(signal_.Await([&] { return !State().empty(); }, seconds(60))) << agent_->Log();
  std::cout << rounds << " rounds: " << sent << " commands (" << registered
            << " registrations succeeded), " << lines << " runner lines, " << rounds
            << " controller restarts\n";
  EXPECT_EQ(answered.load(), sent.load()) << "a command got no ack";
  EXPECT_GT(registered.load(), 0) << "no registration ever succeeded: the test drove nothing";
  EXPECT_GT(lines.load(), 0);

  // Everything still answers: drain (a running job finishes first), then shut down.
  auto d = Send([] {
    commands::Command c;
    c.set_type("drain");
    return c;
  }());
  EXPECT_TRUE(d.success) << d.message;
  ASSERT_TRUE(signal_.Await(
      [&] {
        agent_->TryRunner("finish Succeeded");
        return State() == "draining" && !agent_->RunnerAlive();
      },
      seconds(60)))
      << State() << "\n"
      << agent_->Log();
  auto s = Send([] {
    commands::Command c;
    c.set_type("shutdown");
    return c;
  }());
  EXPECT_TRUE(s.success) << s.message << "\n" << agent_->Log();
  ASSERT_TRUE(signal_.Await([&] { return agent_->ExitCode() >= 0; }, seconds(60))) << agent_->Log();
  EXPECT_EQ(agent_->ExitCode(), 0) << agent_->Log();
  EXPECT_FALSE(agent_->RunnerAlive());
  const std::string log = agent_->Log();
  EXPECT_THAT(log, Not(HasSubstr("ThreadSanitizer")));
  EXPECT_THAT(log, Not(HasSubstr("AddressSanitizer")));
  EXPECT_THAT(log, Not(HasSubstr("runtime error:")));    // UBSan
  EXPECT_THAT(log, Not(HasSubstr("STRESS-REG-TOKEN")));  // never logged
}

}  // namespace
}  // namespace miglet
