// The miglet binary end to end: a real agent process with the fake GitHub runner, against the
// controller's agent hub on loopback.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>

#include "agent_process.h"
#include "await.h"
#include "exec_args.h"
#include "hub_harness.h"
#include "miglet/common/http.h"
#include "miglet/common/http_transport.h"
#include "miglet/operator/agent_hub_server.h"

namespace miglet {
namespace {

namespace fs = std::filesystem;
using miglet::testing::AgentProcess;
using miglet::testing::HubHarness;
using miglet::testing::ReadAll;
using miglet::testing::Signal;
using std::chrono::seconds;
using ::testing::HasSubstr;
using ::testing::Not;

class AgentLifecycleTest : public ::testing::Test, protected HubHarness {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("miglet-agent-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    StartHub(0);
  }
  void TearDown() override {
    agent_.reset();
    if (hub_) hub_->Shutdown();
    fs::remove_all(dir_);
  }

  std::string Yaml(const std::string& extra = "") {
    return "vm_id: vm-1\npool_id: pool-a\norg_id: acme\ncontroller:\n  grpc_endpoint: 127.0.0.1:" +
           std::to_string(hub_->grpc_port()) +
           "\n  retry:\n    initial_backoff: 200ms\n    max_backoff: 1s\n"
           "heartbeat:\n  interval: 500ms\nlogging:\n  format: text\n  level: debug\n"
           "metrics:\n  listen: 127.0.0.1:0\n" +
           extra;
  }

  void StartAgent(const std::string& extra = "") {
    agent_ = std::make_unique<AgentProcess>(dir_, Yaml(extra), MIGLET_FAKE_RUNNER_DIR);
    agent_->Start();
    ASSERT_TRUE(signal_.Await([&] { return State() == "ready"; })) << agent_->Log();
  }

  commands::Command Register(bool ephemeral) {
    commands::Command c;
    c.set_type("register_runner");
    (*c.mutable_string_params())["runner_url"] = "https://github.com/acme";
    (*c.mutable_string_params())["registration_token"] = "AAAA-SECRET-REG-TOKEN";
    c.add_string_array_params("self-hosted");
    c.add_string_array_params("linux");
    (*c.mutable_bool_params())["ephemeral"] = ephemeral;
    return c;
  }

  void RegisterAndListen(bool ephemeral) {
    auto r = Send(Register(ephemeral));
    ASSERT_TRUE(r.success) << r.message << "\n" << agent_->Log();
    ASSERT_TRUE(signal_.Await([&] { return State() == "idle"; })) << agent_->Log();
  }

  fs::path dir_;
  std::unique_ptr<AgentProcess> agent_;
};

TEST_F(AgentLifecycleTest, RegisterJobDrainShutdown) {
  StartAgent();
  ASSERT_TRUE(signal_.Await([&] { return HasEvent("vm_started"); }));
  RegisterAndListen(/*ephemeral=*/false);
  EXPECT_THAT(agent_->Invocations(),
              HasSubstr("config.sh --url https://github.com/acme --token AAAA-SECRET-REG-TOKEN "
                        "--labels self-hosted,linux --name vm-1 --unattended --replace\n"));
  ASSERT_TRUE(signal_.Await([&] { return HasEvent("runner_registered"); }));
  auto info = hub_->hub().GetAgent("vm-1");
  EXPECT_TRUE(info->runner.configured());
  EXPECT_EQ(info->runner.runner_name(), "vm-1");

  agent_->Runner("job build (ubuntu)");
  ASSERT_TRUE(signal_.Await([&] { return State() == "job_running"; }));
  ASSERT_TRUE(signal_.Await(
      [&] { return hub_->hub().GetAgent("vm-1")->current_job.job_id() == "build (ubuntu)"; }));
  EXPECT_EQ(hub_->hub().GetAgent("vm-1")->runner.state(), "running");
  ASSERT_TRUE(signal_.Await([&] { return HasEvent("job_started"); }));
  EXPECT_EQ(Events("job_started").at(0).data().at("job_id"), "build (ubuntu)");

  agent_->Runner("finish Succeeded");
  ASSERT_TRUE(signal_.Await([&] { return State() == "idle"; }));
  ASSERT_TRUE(signal_.Await([&] { return HasEvent("job_completed"); }));
  auto done = Events("job_completed").at(0);
  EXPECT_EQ(done.data().at("result"), "Succeeded");
  EXPECT_EQ(done.data().at("success"), "true");

  commands::Command drain;
  drain.set_type("drain");
  auto r = Send(drain);
  EXPECT_TRUE(r.success) << r.message;
  ASSERT_TRUE(signal_.Await([&] { return HasEvent("drained"); })) << agent_->Log();
  EXPECT_TRUE(signal_.Await([&] { return State() == "draining"; }));
  EXPECT_FALSE(agent_->RunnerAlive());

  commands::Command shutdown;
  shutdown.set_type("shutdown");
  (*shutdown.mutable_int_params())["grace_seconds"] = 5;
  r = Send(shutdown);
  EXPECT_TRUE(r.success) << r.message;
  ASSERT_TRUE(signal_.Await([&] { return agent_->ExitCode() >= 0; })) << agent_->Log();
  EXPECT_EQ(agent_->ExitCode(), 0);
  ASSERT_TRUE(signal_.Await([&] { return HasEvent("vm_shutting_down"); }));
  EXPECT_EQ(Events("vm_shutting_down").at(0).data().at("deregistered"), "yes");
  EXPECT_THAT(agent_->Invocations(), HasSubstr("config.sh remove --token AAAA-SECRET-REG-TOKEN"));
  // Events in the order they happened.
  const auto types = EventTypes();
  EXPECT_EQ(types, (std::vector<std::string>{"vm_started", "runner_registered", "job_started",
                                             "job_completed", "drained", "vm_shutting_down"}));
  // The token never reaches the agent's own log.
  EXPECT_THAT(agent_->Log(), Not(HasSubstr("AAAA-SECRET-REG-TOKEN")));
}

// What update_config and set_log_level set is visible from outside: the agent's /metrics shows
// the heartbeat interval and the log level in force (what a person checks after changing a pool).
TEST_F(AgentLifecycleTest, LiveConfigChangesShowInTheMetrics) {
  StartAgent();
  int port = 0;
  ASSERT_TRUE(signal_.Await([&] {
    // The agent logs "metrics on <address> (port <n>)". Parsed by hand: <regex> trips GCC 12's
    // -Wmaybe-uninitialized inside libstdc++ under the sanitizer build's -Werror.
    const std::string log = agent_->Log();
    const std::string marker = " (port ";
    for (auto at = log.find("metrics on "); at != std::string::npos;
         at = log.find("metrics on ", at + 1)) {
      auto p = log.find(marker, at);
      auto eol = log.find('\n', at);
      if (p == std::string::npos || (eol != std::string::npos && p > eol)) continue;
      port = std::atoi(log.c_str() + p + marker.size());
      if (port > 0) return true;
    }
    return false;
  })) << agent_->Log();
  auto http = MakeHttpTransport({.base_url = "http://127.0.0.1:" + std::to_string(port)});
  ASSERT_TRUE(http.ok()) << http.status();
  auto metrics = [&] {
    auto r = (*http)->Send({.target = "/metrics"});
    return r.ok() ? r->body : r.status().ToString();
  };
  std::string before = metrics();
  EXPECT_THAT(before, HasSubstr("\nmiglet_heartbeat_interval_seconds 0.5\n"));
  EXPECT_THAT(before, HasSubstr("\nmiglet_log_level{level=\"debug\"} 1\n"));
  EXPECT_THAT(before, HasSubstr("\nmiglet_log_level{level=\"warn\"} 0\n"));

  commands::Command update;
  update.set_type("update_config");
  (*update.mutable_string_params())["heartbeat.interval"] = "2s";
  auto r = Send(update);
  ASSERT_TRUE(r.success) << r.message;
  commands::Command level;
  level.set_type("set_log_level");
  (*level.mutable_string_params())["level"] = "warn";
  r = Send(level);
  ASSERT_TRUE(r.success) << r.message;
  // Both acks come after the change was applied on the agent's loop.
  std::string after = metrics();
  EXPECT_THAT(after, HasSubstr("\nmiglet_heartbeat_interval_seconds 2\n"));
  EXPECT_THAT(after, HasSubstr("\nmiglet_log_level{level=\"warn\"} 1\n"));
  EXPECT_THAT(after, HasSubstr("\nmiglet_log_level{level=\"debug\"} 0\n"));
}

TEST_F(AgentLifecycleTest, DrainNeverInterruptsARunningJob) {
  StartAgent();
  RegisterAndListen(/*ephemeral=*/false);
  agent_->Runner("job long");
  ASSERT_TRUE(signal_.Await([&] { return State() == "job_running"; }));
  commands::Command drain;
  drain.set_type("drain");
  auto r = Send(drain);
  EXPECT_TRUE(r.success);
  EXPECT_THAT(r.message, HasSubstr("job long finishes first"));
  ASSERT_TRUE(signal_.Await([&] { return State() == "draining"; }));
  EXPECT_TRUE(agent_->RunnerAlive());
  EXPECT_FALSE(HasEvent("drained"));
  // Shutdown without force is refused while the job runs.
  commands::Command shutdown;
  shutdown.set_type("shutdown");
  r = Send(shutdown);
  EXPECT_FALSE(r.success);
  EXPECT_THAT(r.message, HasSubstr("job long is running"));
  EXPECT_TRUE(agent_->RunnerAlive());
  agent_->Runner("finish Failed");
  ASSERT_TRUE(signal_.Await([&] { return HasEvent("drained"); })) << agent_->Log();
  ASSERT_TRUE(signal_.Await([&] { return HasEvent("job_completed"); }));
  EXPECT_EQ(Events("job_completed").at(0).data().at("success"), "false");
  EXPECT_FALSE(agent_->RunnerAlive());
}

TEST_F(AgentLifecycleTest, RunnerCrashIsReportedAndIsAnError) {
  StartAgent();
  RegisterAndListen(/*ephemeral=*/true);
  agent_->Runner("crash 3");
  ASSERT_TRUE(signal_.Await([&] { return HasEvent("runner_crashed"); })) << agent_->Log();
  EXPECT_EQ(Events("runner_crashed").at(0).data().at("exit_code"), "3");
  ASSERT_TRUE(signal_.Await([&] { return State() == "error"; }));
  EXPECT_EQ(agent_->ExitCode(), -1);  // the agent stays, so the controller can see and decide
}

TEST_F(AgentLifecycleTest, BadTokenFailsRegistrationWithTheRunnersReason) {
  StartAgent();
  auto c = Register(true);
  (*c.mutable_string_params())["registration_token"] = "bad-token";
  auto r = Send(c);
  EXPECT_FALSE(r.success);
  EXPECT_THAT(r.message, HasSubstr("config.sh exited with 1"));
  EXPECT_THAT(r.message, HasSubstr("404 (Not Found)"));
  ASSERT_TRUE(signal_.Await([&] { return State() == "ready"; }));  // the controller may retry
  // Registering twice is refused with the reason.
  RegisterAndListen(true);
  r = Send(Register(true));
  EXPECT_FALSE(r.success);
  EXPECT_THAT(r.message, HasSubstr("only be registered from ready"));
}

TEST_F(AgentLifecycleTest, EphemeralRunnerIsDrainedAfterItsJob) {
  StartAgent();
  RegisterAndListen(/*ephemeral=*/true);
  EXPECT_THAT(agent_->Invocations(), HasSubstr("--replace --ephemeral\n"));
  agent_->Runner("job once");
  ASSERT_TRUE(signal_.Await([&] { return State() == "job_running"; }));
  agent_->Runner("finish Succeeded");
  ASSERT_TRUE(signal_.Await([&] { return HasEvent("drained"); })) << agent_->Log();
  EXPECT_EQ(Events("drained").at(0).data().at("reason"), "ephemeral_job_done");
  // The state travels in heartbeats, the event in the outbox: either may land first.
  EXPECT_TRUE(signal_.Await([&] { return State() == "draining"; }));
  EXPECT_FALSE(HasEvent("runner_crashed"));
}

// An external machine stays when its runner is done: after an ephemeral runner's job, or a
// drain, the controller registers a new runner on it (a warm spare activated, the next job).
TEST_F(AgentLifecycleTest, TheSameMachineTakesANewRunnerAfterTheLastOneIsDone) {
  StartAgent();
  RegisterAndListen(/*ephemeral=*/true);
  agent_->Runner("job once");
  ASSERT_TRUE(signal_.Await([&] { return State() == "job_running"; }));
  agent_->Runner("finish Succeeded");
  ASSERT_TRUE(signal_.Await([&] { return HasEvent("drained"); })) << agent_->Log();
  ASSERT_TRUE(signal_.Await([&] { return State() == "draining" && !agent_->RunnerAlive(); }));
  // A new runner on the same machine.
  RegisterAndListen(/*ephemeral=*/true);
  EXPECT_EQ(Events("runner_registered").size(), 2u);
  EXPECT_TRUE(hub_->hub().GetAgent("vm-1")->runner.configured());
  agent_->Runner("job twice");
  ASSERT_TRUE(signal_.Await([&] { return State() == "job_running"; }));
  agent_->Runner("finish Succeeded");
  ASSERT_TRUE(signal_.Await([&] { return Events("drained").size() == 2; })) << agent_->Log();

  // A drained idle runner: the machine waits as a spare, then takes a new runner.
  ASSERT_TRUE(signal_.Await([&] { return !agent_->RunnerAlive(); }));
  RegisterAndListen(/*ephemeral=*/false);
  commands::Command drain;
  drain.set_type("drain");
  ASSERT_TRUE(Send(drain).success);
  ASSERT_TRUE(signal_.Await([&] { return Events("drained").size() == 3; })) << agent_->Log();
  ASSERT_TRUE(signal_.Await([&] { return !agent_->RunnerAlive(); }));
  RegisterAndListen(/*ephemeral=*/false);
  EXPECT_EQ(Events("runner_registered").size(), 4u);
  EXPECT_FALSE(HasEvent("runner_crashed"));
  // While a runner runs, a second registration is still refused.
  auto again = Send(Register(false));
  EXPECT_FALSE(again.success);
  EXPECT_THAT(again.message, HasSubstr("only be registered from ready"));
}

// A drain does not wait behind a registration that waits for its runner: it cuts it short.
TEST_F(AgentLifecycleTest, ADrainCutsAWaitingRegistrationShort) {
  StartAgent();
  fs::create_directories(dir_ / "runner" / "_fake");
  std::ofstream(dir_ / "runner" / "_fake" / "hold-listen") << "\n";  // run.sh will not listen
  auto pending = SendAsync(Register(false));
  ASSERT_TRUE(signal_.Await([&] {
    return State() == "registering_runner" && agent_->RunnerAlive();
  })) << agent_->Log();
  commands::Command drain;
  drain.set_type("drain");
  auto d = Send(drain);
  EXPECT_TRUE(d.success) << d.message;
  const auto reg = pending->Get();
  ASSERT_TRUE(reg.has_value());
  EXPECT_FALSE(reg->success);
  EXPECT_THAT(reg->message, HasSubstr("interrupted by a drain or shutdown"));
  EXPECT_TRUE(signal_.Await([&] { return State() == "draining" && !agent_->RunnerAlive(); }))
      << agent_->Log();
}

TEST_F(AgentLifecycleTest, ADrainCutsConfigShortWithoutWaitingForIt) {
  // config.sh hangs (GitHub unreachable) for longer than any test waits: the drain must not
  // queue behind the registration, and config.sh must not outlive it.
  StartAgent("runner:\n  register_timeout: 10m\n");
  fs::create_directories(dir_ / "runner" / "_fake");
  std::ofstream(dir_ / "runner" / "_fake" / "hold-config") << "\n";
  auto pending = SendAsync(Register(false));
  const auto pidfile = dir_ / "runner" / "_fake" / "config.pid";
  ASSERT_TRUE(signal_.Await([&] {
    return State() == "registering_runner" && fs::exists(pidfile) && !ReadAll(pidfile).empty();
  })) << agent_->Log();
  const int config_pid = std::atoi(ReadAll(pidfile).c_str());
  ASSERT_GT(config_pid, 0);
  commands::Command drain;
  drain.set_type("drain");
  auto d = Send(drain);
  EXPECT_TRUE(d.success) << d.message;
  EXPECT_THAT(d.message, HasSubstr("no runner was running"));
  const auto reg = pending->Get();
  ASSERT_TRUE(reg.has_value()) << "the drain was acked before the registration";
  EXPECT_FALSE(reg->success);
  EXPECT_THAT(reg->message, HasSubstr("before the runner started"));
  EXPECT_TRUE(signal_.Await([&] { return kill(config_pid, 0) != 0; })) << "config.sh still runs";
  EXPECT_TRUE(signal_.Await([&] { return State() == "draining"; })) << agent_->Log();
  EXPECT_FALSE(agent_->RunnerAlive());
  EXPECT_THAT(agent_->Invocations(), Not(HasSubstr("run.sh")));
}

TEST_F(AgentLifecycleTest, SigtermDuringAJobLetsItFinishThenShutsDown) {
  StartAgent("shutdown:\n  grace_period: 60s\n  force_after: 90s\n");
  RegisterAndListen(/*ephemeral=*/false);
  agent_->Runner("job deploy");
  ASSERT_TRUE(signal_.Await([&] { return State() == "job_running"; }));
  // SIGUSR1 is the agent's own wake-up for its signal thread at exit: from outside it is ignored
  // (neither kills the agent nor stops it from handling the SIGTERM after it).
  agent_->Kill(SIGUSR1);
  agent_->Kill(SIGTERM);
  ASSERT_TRUE(signal_.Await([&] { return State() == "draining"; })) << agent_->Log();
  EXPECT_TRUE(agent_->RunnerAlive());
  EXPECT_EQ(agent_->ExitCode(), -1);
  agent_->Runner("finish Succeeded");
  ASSERT_TRUE(signal_.Await([&] { return agent_->ExitCode() >= 0; }, seconds(60))) << agent_->Log();
  EXPECT_EQ(agent_->ExitCode(), 0);
  ASSERT_TRUE(signal_.Await([&] { return HasEvent("vm_shutting_down"); }));
  EXPECT_EQ(Events("vm_shutting_down").at(0).data().at("reason"), "SIGTERM");
  const auto types = EventTypes();
  EXPECT_EQ(types, (std::vector<std::string>{"vm_started", "runner_registered", "job_started",
                                             "job_completed", "drained", "vm_shutting_down"}));
  EXPECT_THAT(agent_->Invocations(), HasSubstr("config.sh remove --token"));
}

TEST_F(AgentLifecycleTest, ControllerGoneDuringAJob) {
  const int outage = std::getenv("MIGLET_TEST_OUTAGE_SECONDS")
                         ? std::atoi(std::getenv("MIGLET_TEST_OUTAGE_SECONDS"))
                         : 60;
  StartAgent();
  RegisterAndListen(/*ephemeral=*/false);
  agent_->Runner("job survive");
  ASSERT_TRUE(signal_.Await([&] { return State() == "job_running"; }));
  const int port = hub_->grpc_port();
  hub_->Shutdown();
  hub_.reset();
  // While the controller is away the job goes on, and finishes.
  const auto until = std::chrono::steady_clock::now() + seconds(outage);
  EXPECT_FALSE(signal_.Await([&] { return !agent_->RunnerAlive() || agent_->ExitCode() >= 0; },
                             std::chrono::duration_cast<std::chrono::milliseconds>(
                                 until - std::chrono::steady_clock::now())));
  agent_->Runner("finish Succeeded");
  {
    std::lock_guard l(mu_);
    events_.clear();
  }
  StartHub(port);
  ASSERT_TRUE(signal_.Await([&] { return HasEvent("job_completed"); }, seconds(60)))
      << agent_->Log();
  EXPECT_EQ(Events("job_completed").at(0).data().at("job_id"), "survive");
  ASSERT_TRUE(signal_.Await([&] { return State() == "idle"; }));
  EXPECT_TRUE(agent_->RunnerAlive());
  EXPECT_THAT(agent_->Log(), HasSubstr("reconnecting in"));
}

TEST_F(AgentLifecycleTest, JitConfigRunsTheRunnerWithoutConfigSh) {
  StartAgent();
  commands::Command c;
  c.set_type("register_runner");
  (*c.mutable_string_params())["jit_config"] = "eyJKSVQtU0VDUkVUIjoxfQ==";
  auto r = Send(c);
  ASSERT_TRUE(r.success) << r.message;
  ASSERT_TRUE(signal_.Await([&] { return State() == "idle"; }));
  EXPECT_EQ(agent_->Invocations(), "run.sh --jitconfig eyJKSVQtU0VDUkVUIjoxfQ==\n");
  EXPECT_THAT(agent_->Log(), Not(HasSubstr("eyJKSVQtU0VDUkVUIjoxfQ==")));
  EXPECT_THAT(agent_->Log(), HasSubstr("run.sh --jitconfig ***"));
}

TEST_F(AgentLifecycleTest, ForcedShutdownKillsARunnerThatIgnoresSigint) {
  StartAgent();
  RegisterAndListen(/*ephemeral=*/true);
  agent_->Runner("hang");
  agent_->Runner("job stuck");
  ASSERT_TRUE(signal_.Await([&] { return State() == "job_running"; }));
  commands::Command shutdown;
  shutdown.set_type("shutdown");
  (*shutdown.mutable_int_params())["grace_seconds"] = 1;
  (*shutdown.mutable_bool_params())["force"] = true;
  auto r = Send(shutdown);
  EXPECT_TRUE(r.success) << r.message;
  ASSERT_TRUE(signal_.Await([&] { return agent_->ExitCode() >= 0; })) << agent_->Log();
  EXPECT_EQ(agent_->ExitCode(), 0);
  EXPECT_FALSE(agent_->RunnerAlive());
  EXPECT_THAT(agent_->Log(), HasSubstr("killing it"));
  ASSERT_TRUE(signal_.Await([&] { return HasEvent("vm_shutting_down"); }));
  // An ephemeral runner is not deregistered by the agent (GitHub removes it after its job).
  EXPECT_EQ(Events("vm_shutting_down").at(0).data().at("deregistered"), "not needed");
}

TEST_F(AgentLifecycleTest, VmModeRunsThePowerOffCommandAfterShutdown) {
  const fs::path marker = dir_ / "powered-off";
  StartAgent("mode: vm\nshutdown:\n  command: \"echo bye > " + marker.string() + "\"\n");
  commands::Command shutdown;
  shutdown.set_type("shutdown");
  auto r = Send(shutdown);
  EXPECT_TRUE(r.success) << r.message;
  ASSERT_TRUE(signal_.Await([&] { return agent_->ExitCode() >= 0; })) << agent_->Log();
  EXPECT_EQ(agent_->ExitCode(), 0);
  EXPECT_EQ(ReadAll(marker), "bye\n");
  ASSERT_TRUE(signal_.Await([&] { return HasEvent("vm_shutting_down"); }));
}

// A field agent's config file runs the real miglet: the keys without meaning here are named
// once at start, and the bearer token of controller.auth.token_path reaches the controller on
// every request, the rotated one as soon as the file changes.
TEST(FieldConfigTest, AFieldAgentsFileRunsTheRealAgent) {
  const auto dir = fs::temp_directory_path() / ("miglet-fieldcfg-" + std::to_string(getpid()));
  fs::create_directories(dir / "runner");
  std::ofstream(dir / "token") << "field-token-1\n";
  std::mutex mu;
  std::vector<HttpRequest> seen;
  auto server = MakeHttpServer("127.0.0.1", 0, [&](const HttpRequest& r, HttpReply reply) {
    {
      std::lock_guard l(mu);
      seen.push_back(r);
    }
    reply(HttpResponse{200,
                       r.method == "GET" ? R"({"vm_id":"vm-field-1","commands":[]})"
                                         : R"({"status":"received","acknowledged":true})",
                       "application/json"});
  });
  auto port = server->Start();
  ASSERT_TRUE(port.ok()) << port.status();

  std::string yaml = ReadAll(fs::path(MIGLET_FIELD_FIXTURES) / "miglet.yaml");
  auto replace = [&](const std::string& from, const std::string& to) {
    const auto at = yaml.find(from);
    ASSERT_NE(at, std::string::npos) << from;
    yaml.replace(at, from.size(), to);
  };
  replace("/var/run/secrets/miglet/token", (dir / "token").string());
  replace("http://mig-controller.miglet-system:8080", "http://127.0.0.1:" + std::to_string(*port));
  replace("  grpc_endpoint: mig-controller.miglet-system:50051\n", "");  // HTTP only
  replace("dir: /home/runner", "dir: " + (dir / "runner").string());
  replace("listen: 0.0.0.0:9102", "listen: 127.0.0.1:0");
  std::ofstream(dir / "miglet.yaml") << yaml;

  const std::string check = std::string(MIGLET_AGENT_PATH) +
                            " --check-config --config=" + (dir / "miglet.yaml").string() + " > " +
                            (dir / "check").string() + " 2>&1";
  const int status = std::system(check.c_str());
  const std::string out = ReadAll(dir / "check");
  EXPECT_EQ(WEXITSTATUS(status), 0) << out;
  EXPECT_THAT(out, HasSubstr("    type: \"bearer\"  # " + (dir / "miglet.yaml").string() +
                             ":15"));  // a line less: no grpc_endpoint
  EXPECT_THAT(out, HasSubstr("  register_timeout: 5m  # " + (dir / "miglet.yaml").string()));
  EXPECT_THAT(out, HasSubstr("#   github.token_source ("));
  EXPECT_THAT(out, HasSubstr("#   storage.mongodb.uri ("));

  const std::string log = (dir / "miglet.log").string();
  const std::string cfg = "--config=" + (dir / "miglet.yaml").string();
  const testing::ExecArgs exec({MIGLET_AGENT_PATH, cfg}, {{"MIGLET_LOGGING_FORMAT", "text"}});
  const pid_t pid = fork();
  if (pid == 0) {
    int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, 1);
    dup2(fd, 2);
    exec.Exec();
    _exit(127);
  }
  Signal signal;
  auto bearer = [&](const std::string& token) {
    std::lock_guard l(mu);
    for (const auto& r : seen) {
      if (r.authorization == "Bearer " + token) return true;
    }
    return false;
  };
  EXPECT_TRUE(signal.Await([&] { return bearer("field-token-1"); })) << ReadAll(log);
  // Rotated: written whole under a new name and moved in place, as the kubelet does.
  std::ofstream(dir / "token.new") << "field-token-2\n";
  fs::rename(dir / "token.new", dir / "token");
  EXPECT_TRUE(signal.Await([&] { return bearer("field-token-2"); })) << ReadAll(log);
  {
    std::lock_guard l(mu);
    bool field_heartbeat = false;
    for (const auto& r : seen) {
      if (r.path == "/api/v1/vms/vm-field-1/heartbeat") {
        field_heartbeat =
            field_heartbeat || r.body.find(R"("runner_state":")") != std::string::npos;
      }
      EXPECT_FALSE(r.authorization.empty()) << r.method << " " << r.path;
    }
    EXPECT_TRUE(field_heartbeat);
  }
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
  server->Stop();
  const std::string logged = ReadAll(log);
  EXPECT_THAT(logged, HasSubstr("keys ignored (they have no meaning for miglet): "
                                "controller.retry.max_attempts ("));
  EXPECT_THAT(logged, HasSubstr("storage.mongodb.uri ("));
  EXPECT_THAT(logged, Not(HasSubstr("field-token")));
  fs::remove_all(dir);
}

// Bad configs: exit 2 with the key and the line.
struct BadConfig {
  std::string name, yaml, expect;
};

class BadConfigTest : public ::testing::TestWithParam<BadConfig> {};

TEST_P(BadConfigTest, IsRejectedWithAClearMessage) {
  const auto dir = fs::temp_directory_path() / ("miglet-badcfg-" + std::to_string(getpid()));
  fs::create_directories(dir);
  const auto cfg = dir / "bad.yaml";
  std::ofstream(cfg) << GetParam().yaml;
  const std::string cmd = std::string(MIGLET_AGENT_PATH) +
                          " --check-config --config=" + cfg.string() + " > " +
                          (dir / "out").string() + " 2>&1";
  const int status = std::system(cmd.c_str());
  const std::string out = ReadAll(dir / "out");
  fs::remove_all(dir);
  EXPECT_EQ(WEXITSTATUS(status), 2) << out;
  EXPECT_THAT(out, HasSubstr(GetParam().expect)) << out;
}

INSTANTIATE_TEST_SUITE_P(
    Agent, BadConfigTest,
    ::testing::Values(
        BadConfig{"UnknownKey", "vm_id: v\npool_id: p\ncontroler:\n  grpc_endpoint: a:1\n",
                  "bad.yaml:4: controler.grpc_endpoint: unknown key"},
        BadConfig{"MissingVmId", "pool_id: p\ncontroller:\n  grpc_endpoint: a:1\n",
                  "vm_id: is required"},
        BadConfig{"BadDuration",
                  "vm_id: v\npool_id: p\ncontroller:\n  grpc_endpoint: a:1\nheartbeat:\n  "
                  "interval: soon\n",
                  "bad.yaml:6: heartbeat.interval: invalid duration \"soon\""},
        BadConfig{"BadEndpoint", "vm_id: v\npool_id: p\ncontroller:\n  grpc_endpoint: nope\n",
                  "bad.yaml:4: controller.grpc_endpoint: \"nope\" is not host:port"},
        BadConfig{"BadMode",
                  "vm_id: v\npool_id: p\nmode: laptop\ncontroller:\n  grpc_endpoint: a:1\n",
                  "bad.yaml:3: mode: \"laptop\" is not sidecar or vm"},
        BadConfig{"BadYaml", "vm_id: [v\n", "bad.yaml:"},
        BadConfig{
            "BadLogLevel",
            "vm_id: v\npool_id: p\ncontroller:\n  grpc_endpoint: a:1\nlogging:\n  level: loud\n",
            "bad.yaml:6: logging.level: unknown log level"}),
    [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace miglet
