#include "miglet/agent/agent.h"

#include <cstdlib>
#include <filesystem>

#include "miglet/agent/live_config.h"
#include "spdlog/spdlog.h"

namespace miglet {

namespace {
constexpr auto kRemoveTimeout = std::chrono::seconds(60);

int64_t IntParam(const commands::Command& c, const std::string& k, int64_t def) {
  auto it = c.int_params().find(k);
  return it == c.int_params().end() ? def : it->second;
}
bool BoolParam(const commands::Command& c, const std::string& k, bool def) {
  auto it = c.bool_params().find(k);
  return it == c.bool_params().end() ? def : it->second;
}
std::string StrParam(const commands::Command& c, const std::string& k) {
  auto it = c.string_params().find(k);
  return it == c.string_params().end() ? "" : it->second;
}
}  // namespace

Agent::Agent(AgentConfig config, std::string version, std::shared_ptr<Clock> clock,
             prometheus::Registry* metrics)
    : config_(std::move(config)),
      version_(std::move(version)),
      clock_(std::move(clock)),
      health_(config_.runner_dir) {
  if (metrics == nullptr) {
    own_registry_ = std::make_shared<prometheus::Registry>();
    metrics = own_registry_.get();
  }
  state_gauge_ = &prometheus::BuildGauge()
                      .Name("miglet_state")
                      .Help("1 for the agent's current state, 0 for the others")
                      .Register(*metrics);
  for (AgentState s : kAllAgentStates) {
    state_gauge_->Add({{"state", std::string(AgentStateName(s))}})
        .Set(s == AgentState::kInitializing ? 1 : 0);
  }
  jobs_total_ = &prometheus::BuildCounter()
                     .Name("miglet_jobs_total")
                     .Help("Jobs the runner finished, by the runner's result")
                     .Register(*metrics);
  runner_restarts_ = &prometheus::BuildCounter()
                          .Name("miglet_runner_restarts_total")
                          .Help("Times the runner was started again after its first start")
                          .Register(*metrics)
                          .Add({});
  sm_.OnChange([this](AgentState from, AgentState to, const std::string& why) {
    OnStateChange(from, to, why);
  });

  runner_ = std::make_unique<RunnerSupervisor>(
      config_.runner_dir, RunnerSupervisor::Callbacks{
                              [this](const RunnerLine& l) { OnRunnerLine(l); },
                              [this](int code, bool requested) { OnRunnerExit(code, requested); }});

  dispatcher_.Register("register_runner",
                       [this](const commands::Command& c) { return Register(c); });
  dispatcher_.Register("drain", [this](const commands::Command& c) { return Drain(c); });
  // A drain or shutdown does not wait behind a registration that waits for its runner: it cuts
  // that wait short at once (the registration fails, the runner is stopped), then runs.
  dispatcher_.OnArrival([this](const commands::Command& c) {
    if (c.type() != "drain" && c.type() != "shutdown") return;
    {
      std::lock_guard l(mu_);
      preempted_ = true;
    }
    cv_.notify_all();
  });
  dispatcher_.Register("shutdown", [this](const commands::Command& c) { return Shutdown(c); });
  dispatcher_.Register("update_config", [this](const commands::Command& c) {
    return ApplyUpdateConfig(c, &config_, client_.get());
  });
  dispatcher_.Register("set_log_level", [this](const commands::Command& c) {
    return ApplySetLogLevel(c, &config_);
  });

  StreamClientOptions o = ToStreamOptions(config_, version_);
  o.on_connection = [this](bool connected) {
    if (connected && sm_.state() == AgentState::kConnecting) {
      SetState(AgentState::kReady, "connected to the controller");
    }
    cv_.notify_all();
  };
  client_ = StreamClient::Create(
      std::move(o), clock_, &dispatcher_, [this] { return BuildHeartbeat(); }, metrics);
}

Agent::~Agent() {
  if (terminator_.joinable()) terminator_.join();
  if (client_) client_->Stop();
  runner_.reset();
}

void Agent::Start() {
  SetState(AgentState::kConnecting, "starting");
  client_->Start();
  Event("vm_started", {{"version", version_}, {"mode", config_.mode}});
}

bool Agent::ready() const { return client_->connected() || client_->using_http(); }

void Agent::SetState(AgentState to, const std::string& why) {
  if (auto st = sm_.Transition(to, why); !st.ok()) spdlog::warn("{}", std::string(st.message()));
}

void Agent::OnStateChange(AgentState from, AgentState to, const std::string& why) {
  spdlog::info("state {} -> {} ({})", AgentStateName(from), AgentStateName(to), why);
  state_gauge_->Add({{"state", std::string(AgentStateName(from))}}).Set(0);
  state_gauge_->Add({{"state", std::string(AgentStateName(to))}}).Set(1);
  if (client_) client_->HeartbeatNow();  // the controller hears of it at once
  cv_.notify_all();
}

void Agent::Event(const std::string& type, std::map<std::string, std::string> data) {
  commands::EventNotification ev;
  ev.set_type(type);
  ev.mutable_data()->insert(data.begin(), data.end());
  client_->SendEvent(std::move(ev));
}

commands::Heartbeat Agent::BuildHeartbeat() {
  commands::Heartbeat hb;
  hb.set_miglet_state(std::string(AgentStateName(sm_.state())));
  *hb.mutable_health() = health_.Sample();
  std::lock_guard l(mu_);
  auto* r = hb.mutable_runner_state();
  const bool running = runner_->running();
  r->set_state(!running || !listening_ ? "offline" : (job_running_ ? "running" : "idle"));
  r->set_configured(registered_);
  r->set_runner_name(registration_.name);
  for (const auto& label : registration_.labels) r->add_labels(label);
  if (job_running_) *hb.mutable_current_job() = job_;
  return hb;
}

commands::CommandAck Agent::Register(const commands::Command& cmd) {
  AgentState s = sm_.state();
  if ((s == AgentState::kDraining || s == AgentState::kError) && !runner_->running()) {
    // The last runner is over (drained, finished its one job, or crashed) and the machine
    // stays: it may carry a new one.
    {
      std::lock_guard l(mu_);
      registered_ = false;
      drain_reported_ = false;
      job_running_ = false;
      job_ = {};
    }
    SetState(AgentState::kReady, "register_runner " + cmd.id() + ": a new runner");
    s = sm_.state();
  }
  if (s != AgentState::kReady) {
    return MakeAck(false, "register_runner: the agent is " + std::string(AgentStateName(s)) +
                              "; a runner can only be registered from ready, or after the last "
                              "runner has stopped");
  }
  RunnerRegistration reg;
  reg.url = StrParam(cmd, "runner_url");
  reg.token = StrParam(cmd, "registration_token");
  reg.jit_config = StrParam(cmd, "jit_config");
  reg.name = StrParam(cmd, "runner_name");
  reg.group = StrParam(cmd, "runner_group");
  if (reg.name.empty()) reg.name = config_.vm_id;
  if (reg.group.empty()) reg.group = config_.runner_group;
  reg.labels.assign(cmd.string_array_params().begin(), cmd.string_array_params().end());
  if (reg.labels.empty()) reg.labels = config_.labels;
  reg.ephemeral = BoolParam(cmd, "ephemeral", true);
  if (reg.jit_config.empty() && (reg.url.empty() || reg.token.empty())) {
    return MakeAck(false,
                   "register_runner needs string_params runner_url and registration_token, or "
                   "jit_config");
  }
  {
    std::lock_guard l(mu_);
    preempted_ = false;  // only what arrives from now on cuts this registration short
  }
  SetState(AgentState::kRegisteringRunner, "register_runner " + cmd.id());
  auto fail = [&](const std::string& why) {
    SetState(AgentState::kReady, "registration failed");
    Event("error", {{"reason", "register_failed"}, {"message", why}});
    return MakeAck(false, "register_runner failed: " + why);
  };
  // A persistent runner configured here before (this machine carried one and stays) leaves
  // .runner behind, and config.sh refuses to configure over it: with a remove token, the old
  // configuration goes first (config.sh remove: at GitHub if it is still there, then here).
  // When that fails (its scope changed, its credentials are damaged), its files are deleted
  // here: the controller deregisters the old runner at GitHub by name, and a new one of the
  // same name replaces it (config.sh --replace).
  const std::string remove_token = StrParam(cmd, "remove_token");
  const std::filesystem::path dir(config_.runner_dir);
  if (reg.jit_config.empty() && !remove_token.empty() && std::filesystem::exists(dir / ".runner")) {
    if (auto st = runner_->Remove(remove_token, kRemoveTimeout); !st.ok()) {
      spdlog::warn("config.sh remove failed ({}); deleting the old runner configuration here",
                   std::string(st.message()));
      std::error_code ec;
      for (const char* f : {".runner", ".credentials", ".credentials_rsaparams"}) {
        std::filesystem::remove(dir / f, ec);
      }
    }
  }
  if (auto st = runner_->Configure(reg, config_.register_timeout); !st.ok()) {
    return fail(std::string(st.message()));
  }
  {
    std::lock_guard l(mu_);
    listening_ = false;
    runner_exited_ = false;
    registration_ = reg;
  }
  // A drain or shutdown that arrived while config.sh ran: do not start the runner at all.
  bool preempted;
  {
    std::lock_guard l(mu_);
    preempted = preempted_;
  }
  if (preempted) return fail("interrupted by a drain or shutdown before the runner started");
  if (auto st = runner_->Start(reg); !st.ok()) return fail(std::string(st.message()));
  if (runner_->restarts() > 0) runner_restarts_->Increment();
  bool listening;
  {
    std::unique_lock l(mu_);
    cv_.wait_for(l, config_.register_timeout,
                 [&] { return listening_ || runner_exited_ || preempted_; });
    listening = listening_;
    preempted = preempted_ && !listening_;
  }
  if (preempted) {
    (void)runner_->Stop(std::chrono::seconds(5), /*force=*/true);
    return fail("interrupted by a drain or shutdown while waiting for the runner to listen");
  }
  if (!listening) {
    (void)runner_->Stop(std::chrono::seconds(5), /*force=*/true);
    return fail("the runner did not start listening for jobs (exit code " +
                std::to_string(runner_exit_code_) + ")");
  }
  {
    std::lock_guard l(mu_);
    registered_ = true;
  }
  SetState(AgentState::kIdle, "the runner is listening for jobs");
  std::string labels;
  for (const auto& label : reg.labels) labels += (labels.empty() ? "" : ",") + label;
  Event("runner_registered", {{"runner_name", reg.name},
                              {"labels", labels},
                              {"ephemeral", reg.ephemeral ? "true" : "false"}});
  return MakeAck(true, "runner " + reg.name + " registered and listening for jobs",
                 {{"runner_name", reg.name}});
}

commands::CommandAck Agent::Drain(const commands::Command& cmd) {
  const AgentState s = sm_.state();
  if (s == AgentState::kShuttingDown) return MakeAck(false, "drain: the agent is shutting down");
  if (s == AgentState::kDraining) return MakeAck(true, "already draining");
  std::string job;
  bool busy;
  {
    std::lock_guard l(mu_);
    busy = job_running_;
    job = job_.job_id();
  }
  SetState(AgentState::kDraining, "drain " + cmd.id());
  if (busy) {
    // Never interrupt a job: the runner is stopped when it reports the job finished.
    return MakeAck(true, "draining: job " + job + " finishes first, then the runner stops");
  }
  if (runner_->running()) {
    (void)runner_->Stop(std::chrono::seconds(0), /*force=*/false);  // SIGINT; exit reported later
    return MakeAck(true, "draining: the idle runner stops listening now");
  }
  {
    std::lock_guard l(mu_);
    drain_reported_ = true;
  }
  Event("drained", {{"reason", "no_runner"}});
  return MakeAck(true, "drained: no runner was running");
}

commands::CommandAck Agent::Shutdown(const commands::Command& cmd) {
  const Duration grace = std::chrono::seconds(
      IntParam(cmd, "grace_seconds",
               std::chrono::duration_cast<std::chrono::seconds>(config_.shutdown_grace).count()));
  const bool force = BoolParam(cmd, "force", false);
  if (sm_.state() == AgentState::kShuttingDown) return MakeAck(true, "already shutting down");
  std::string job;
  bool busy;
  {
    std::lock_guard l(mu_);
    busy = job_running_;
    job = job_.job_id();
  }
  if (busy && !force) {
    return MakeAck(false, "shutdown refused: job " + job +
                              " is running; drain first, or send force=true to cancel it");
  }
  const std::string remove_token = StrParam(cmd, "remove_token");
  if (auto st = FinishShutdown(grace, force, "shutdown " + cmd.id(), remove_token); !st.ok()) {
    return MakeAck(false, "shutdown failed: " + std::string(st.message()));
  }
  return MakeAck(true, "shutting down");
}

absl::Status Agent::FinishShutdown(Duration grace, bool force, const std::string& reason,
                                   const std::string& remove_token) {
  if (sm_.state() != AgentState::kDraining) SetState(AgentState::kDraining, reason);
  if (auto st = runner_->Stop(grace, force); !st.ok()) return st;
  RunnerRegistration reg;
  bool registered;
  {
    std::lock_guard l(mu_);
    reg = registration_;
    registered = registered_;
  }
  std::string deregistered = "not needed";
  if (registered && !reg.ephemeral && reg.jit_config.empty()) {
    // An ephemeral runner removes itself after its job; a persistent one stays listed in
    // GitHub as offline unless it is removed.
    const std::string& token = remove_token.empty() ? reg.token : remove_token;
    if (auto st = runner_->Remove(token, kRemoveTimeout); !st.ok()) {
      spdlog::error("could not deregister the runner: {}", std::string(st.message()));
      Event("error", {{"reason", "deregister_failed"}, {"message", std::string(st.message())}});
      deregistered = "failed";
    } else {
      deregistered = "yes";
    }
  }
  SetState(AgentState::kShuttingDown, reason);
  Event("vm_shutting_down", {{"reason", reason}, {"deregistered", deregistered}});
  {
    std::lock_guard l(mu_);
    exit_requested_ = true;
  }
  cv_.notify_all();
  return absl::OkStatus();
}

void Agent::OnRunnerLine(const RunnerLine& line) {
  switch (line.kind) {
    case RunnerLine::Kind::kListening: {
      std::lock_guard l(mu_);
      listening_ = true;
      break;
    }
    case RunnerLine::Kind::kJobStarted: {
      {
        std::lock_guard l(mu_);
        job_ = commands::JobInfo();
        job_.set_job_id(line.job_name);
        job_.set_status("running");
        job_.set_started_at(clock_->UnixSeconds());
        job_running_ = true;
      }
      if (sm_.state() == AgentState::kIdle)
        SetState(AgentState::kJobRunning, "job " + line.job_name);
      Event("job_started", {{"job_id", line.job_name}});
      client_->HeartbeatNow();
      break;
    }
    case RunnerLine::Kind::kJobCompleted: {
      const bool ok = JobResultIsSuccess(line.result);
      {
        std::lock_guard l(mu_);
        job_.set_status(ok ? "completed" : "failed");
        job_running_ = false;
      }
      jobs_total_->Add({{"result", line.result}}).Increment();
      client_->HeartbeatNow();
      Event(
          "job_completed",
          {{"job_id", line.job_name}, {"result", line.result}, {"success", ok ? "true" : "false"}});
      if (sm_.state() == AgentState::kJobRunning) {
        SetState(AgentState::kIdle, "job " + line.job_name + " " + line.result);
      } else if (sm_.state() == AgentState::kDraining) {
        // The job is done: stop the runner before it takes another one.
        (void)runner_->Stop(std::chrono::seconds(0), /*force=*/false);
      }
      break;
    }
    default:
      break;
  }
  cv_.notify_all();
}

void Agent::OnRunnerExit(int code, bool requested) {
  bool ephemeral_done, was_busy;
  {
    std::lock_guard l(mu_);
    runner_exited_ = true;
    runner_exit_code_ = code;
    listening_ = false;
    was_busy = job_running_;
    job_running_ = false;
    ephemeral_done = registration_.ephemeral && !job_.job_id().empty() &&
                     job_.status() != "running" && code == 0;
  }
  cv_.notify_all();
  const AgentState s = sm_.state();
  if (s == AgentState::kRegisteringRunner || s == AgentState::kShuttingDown) return;
  if (s == AgentState::kDraining || requested || ephemeral_done) {
    if (s != AgentState::kDraining) {
      SetState(AgentState::kDraining, "the ephemeral runner finished its job");
    }
    bool report;
    {
      std::lock_guard l(mu_);
      report = !drain_reported_;
      drain_reported_ = true;
    }
    if (report) {
      Event("drained", {{"reason", ephemeral_done && !requested ? "ephemeral_job_done" : "drain"},
                        {"exit_code", std::to_string(code)}});
    }
    // The runner is offline now: the controller hears of it at once, not at the next
    // heartbeat (a drained machine can take a new runner as soon as it knows).
    if (client_) client_->HeartbeatNow();
    return;
  }
  spdlog::error("the runner exited unexpectedly with {}", code);
  Event("runner_crashed",
        {{"exit_code", std::to_string(code)}, {"during_job", was_busy ? "true" : "false"}});
  SetState(AgentState::kError, "runner crashed with exit code " + std::to_string(code));
}

void Agent::BeginTermination(const std::string& why) {
  std::lock_guard l(mu_);
  if (terminating_ || exit_requested_) return;
  terminating_ = true;
  terminator_ = std::thread([this, why] { Terminate(why); });
}

void Agent::Terminate(std::string why) {
  spdlog::info("{}: draining, then shutting down within {:.0f}s", why,
               ToSeconds(config_.shutdown_grace));
  const auto deadline = std::chrono::steady_clock::now() + config_.shutdown_grace;
  if (sm_.state() != AgentState::kDraining && sm_.state() != AgentState::kShuttingDown) {
    SetState(AgentState::kDraining, why);
  }
  {
    std::unique_lock l(mu_);
    if (!cv_.wait_until(l, deadline, [&] { return !job_running_; })) {
      spdlog::warn("job {} still running after shutdown.grace_period", job_.job_id());
    }
  }
  // The runner gets what is left of force_after to stop by itself, then it is killed.
  const Duration stop_grace = std::max<Duration>(
      config_.shutdown_force_after - config_.shutdown_grace, std::chrono::seconds(1));
  if (auto st = FinishShutdown(stop_grace, /*force=*/true, why); !st.ok()) {
    spdlog::error("shutdown: {}", std::string(st.message()));
    std::lock_guard l(mu_);
    exit_requested_ = true;
    cv_.notify_all();
  }
}

int Agent::WaitForExit() {
  {
    std::unique_lock l(mu_);
    cv_.wait(l, [&] { return exit_requested_; });
  }
  // Deliver vm_shutting_down and the shutdown ack before going away.
  if (!client_->Flush(std::chrono::seconds(10))) {
    spdlog::warn("{} messages to the controller were not delivered before exit", client_->queued());
  }
  client_->Stop();
  if (config_.mode == "vm") {
    spdlog::info("powering off: {}", config_.shutdown_command);
    const int rc = std::system(config_.shutdown_command.c_str());
    if (rc != 0) {
      spdlog::error("shutdown.command exited with {}", rc);
      return 1;
    }
  }
  return 0;
}

}  // namespace miglet
