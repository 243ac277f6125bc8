#include "miglet/agent/agent.h"

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <sstream>
#include <utility>

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

// The runner's id at GitHub, from the .runner file config.sh writes ({"agentId": 12, ...},
// behind a UTF-8 byte order mark from the real runner); "" when there is none (a JIT runner
// keeps its configuration in memory).
std::string RunnerIdFromDir(const std::string& dir) {
  std::ifstream in(std::filesystem::path(dir) / ".runner", std::ios::binary);
  if (!in) return "";
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  if (text.rfind("\xEF\xBB\xBF", 0) == 0) text.erase(0, 3);
  google::protobuf::Struct s;
  google::protobuf::util::JsonParseOptions o;
  o.ignore_unknown_fields = true;
  if (!google::protobuf::util::JsonStringToMessage(text, &s, o).ok()) return "";
  auto it = s.fields().find("agentId");
  if (it == s.fields().end() || !it->second.has_number_value()) return "";
  const double id = it->second.number_value();
  if (id < 1 || id > 9e15) return "";
  return std::to_string(static_cast<int64_t>(id));
}
}  // namespace

Agent::Agent(AgentConfig config, std::string version, std::shared_ptr<Clock> clock,
             prometheus::Registry* metrics)
    : config_(std::move(config)),
      version_(std::move(version)),
      clock_(std::move(clock)),
      health_(config_.runner_dir),
      loop_("agent loop", clock_),
      ops_("runner config loop", clock_) {
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
  heartbeat_interval_gauge_ =
      &prometheus::BuildGauge()
           .Name("miglet_heartbeat_interval_seconds")
           .Help("The heartbeat interval in force (update_config changes it)")
           .Register(*metrics)
           .Add({});
  log_level_gauge_ =
      &prometheus::BuildGauge()
           .Name("miglet_log_level")
           .Help("1 for the log level in force (set_log_level changes it), 0 for the others")
           .Register(*metrics);
  ShowLiveConfig();
  sm_.OnChange([this](AgentState from, AgentState to, const std::string& why) {
    OnStateChange(from, to, why);
  });

  // The runner's reader thread only posts what it saw.
  runner_ = std::make_unique<RunnerSupervisor>(
      config_.runner_dir, RunnerSupervisor::Callbacks{
                              [this](const RunnerLine& l) { Do([this, l] { OnRunnerLine(l); }); },
                              [this](int code, bool requested) {
                                Do([this, code, requested] { OnRunnerExit(code, requested); });
                              }});

  // Commands run one at a time on the stream client's command thread, each as a task on the
  // loop; register_runner's ack comes once the runner listens (or the registration fails).
  dispatcher_.Register("register_runner", [this](const commands::Command& c) {
    auto done = std::make_shared<std::promise<commands::CommandAck>>();
    auto ack = done->get_future();
    OnLoop([&] {
      StartRegister(c, [done](commands::CommandAck a) { done->set_value(std::move(a)); });
      return commands::CommandAck();
    });
    try {
      return ack.get();
    } catch (const std::future_error&) {
      return MakeAck(false, "register_runner abandoned: the agent is stopping");
    }
  });
  dispatcher_.Register(
      "drain", [this](const commands::Command& c) { return OnLoop([&] { return Drain(c); }); });
  // A drain or shutdown does not wait behind a registration that waits for config.sh or for
  // its runner: on arrival it cuts that registration short (it fails, the runner is stopped),
  // then it runs in its turn.
  dispatcher_.OnArrival([this](const commands::Command& c) {
    if (c.type() == "drain" || c.type() == "shutdown") Do([this] { Preempt(); });
  });
  dispatcher_.Register("shutdown", [this](const commands::Command& c) {
    return OnLoop([&] { return Shutdown(c); });
  });
  dispatcher_.Register("update_config", [this](const commands::Command& c) {
    return OnLoop([&] {
      auto ack = ApplyUpdateConfig(c, &config_, client_.get());
      ShowLiveConfig();
      return ack;
    });
  });
  dispatcher_.Register("set_log_level", [this](const commands::Command& c) {
    return OnLoop([&] {
      auto ack = ApplySetLogLevel(c, &config_);
      ShowLiveConfig();
      return ack;
    });
  });

  StreamClientOptions o = ToStreamOptions(config_, version_);
  o.on_connection = [this](bool connected) {
    if (!connected) return;
    Do([this] {
      if (sm_.state() == AgentState::kConnecting) {
        SetState(AgentState::kReady, "connected to the controller");
      }
    });
  };
  client_ = StreamClient::Create(
      std::move(o), clock_, &dispatcher_, [this] { return BuildHeartbeat(); }, metrics);
}

void Agent::ShowLiveConfig() {
  heartbeat_interval_gauge_->Set(std::chrono::duration<double>(config_.heartbeat_interval).count());
  for (const char* level : {"trace", "debug", "info", "warn", "error"}) {
    log_level_gauge_->Add({{"level", level}}).Set(config_.log_level == level ? 1 : 0);
  }
}

Agent::~Agent() {
  // From here on the loop drops every task: nothing touches the runner or the client while they
  // go. A registration still waiting is answered first, so the command thread can finish.
  try {
    loop_.Call([this] {
      if (pending_) FailRegistration("the agent is stopping");
      stopping_ = true;
    });
  } catch (const std::exception&) {
  }
  if (client_) client_->Stop();
  runner_->CancelOneShot();
  ops_.Stop();
  runner_.reset();
  loop_.Stop();
}

commands::CommandAck Agent::OnLoop(std::function<commands::CommandAck()> fn) {
  return loop_.Call([this, &fn] {
    if (stopping_) return MakeAck(false, "the agent is stopping");
    auto ack = fn();
    Publish();
    return ack;
  });
}

void Agent::Do(std::function<void()> fn) {
  loop_.Post([this, fn = std::move(fn)] {
    if (stopping_) return;
    fn();
    Publish();
  });
}

void Agent::Start() {
  loop_.Call([this] { SetState(AgentState::kConnecting, "starting"); });
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
  Publish();
  if (client_) client_->HeartbeatNow();  // the controller hears of it at once
}

void Agent::Publish() {
  std::lock_guard l(view_mu_);
  view_.running = runner_running_;
  view_.listening = listening_;
  view_.job_running = job_running_;
  view_.registered = registered_;
  view_.name = registration_.name;
  view_.labels = registration_.labels;
  view_.job = job_;
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
  std::lock_guard l(view_mu_);
  auto* r = hb.mutable_runner_state();
  r->set_state(!view_.running || !view_.listening ? "offline"
                                                  : (view_.job_running ? "running" : "idle"));
  r->set_configured(view_.registered);
  r->set_runner_name(view_.name);
  for (const auto& label : view_.labels) r->add_labels(label);
  if (view_.job_running) *hb.mutable_current_job() = view_.job;
  return hb;
}

void Agent::StartRegister(const commands::Command& cmd, Reply reply) {
  AgentState s = sm_.state();
  if ((s == AgentState::kDraining || s == AgentState::kError) && !runner_running_) {
    // The last runner is over (drained, finished its one job, or crashed) and the machine
    // stays: it may carry a new one.
    registered_ = false;
    drain_reported_ = false;
    job_running_ = false;
    job_ = {};
    SetState(AgentState::kReady, "register_runner " + cmd.id() + ": a new runner");
    s = sm_.state();
  }
  if (s != AgentState::kReady) {
    return reply(MakeAck(false, "register_runner: the agent is " + std::string(AgentStateName(s)) +
                                    "; a runner can only be registered from ready, or after the "
                                    "last runner has stopped"));
  }
  if (runner_running_) {
    return reply(MakeAck(false, "register_runner: the last runner is still stopping"));
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
    return reply(MakeAck(false,
                         "register_runner needs string_params runner_url and "
                         "registration_token, or jit_config"));
  }
  const uint64_t id = next_registration_++;
  pending_ = Pending{id, cmd.id(), reg, std::move(reply)};
  SetState(AgentState::kRegisteringRunner, "register_runner " + cmd.id());
  runner_->ClearCancel();  // only a Preempt from now on cancels this registration's config.sh

  // config.sh runs on its own loop and may take minutes; this loop stays free for a drain.
  // A persistent runner configured here before (this machine carried one and stays) leaves
  // .runner behind, and config.sh refuses to configure over it: with a remove token, the old
  // configuration goes first (config.sh remove: at GitHub if it is still there, then here).
  // When that fails (its scope changed, its credentials are damaged), its files are deleted
  // here: the controller deregisters the old runner at GitHub by name, and a new one of the
  // same name replaces it (config.sh --replace).
  ops_.Post([this, id, reg, remove_token = StrParam(cmd, "remove_token"),
             timeout = config_.register_timeout, dir = std::filesystem::path(config_.runner_dir)] {
    if (reg.jit_config.empty() && !remove_token.empty() &&
        std::filesystem::exists(dir / ".runner")) {
      if (auto st = runner_->Remove(remove_token, kRemoveTimeout); !st.ok()) {
        spdlog::warn("config.sh remove failed ({}); deleting the old runner configuration here",
                     std::string(st.message()));
        std::error_code ec;
        for (const char* f : {".runner", ".credentials", ".credentials_rsaparams"}) {
          std::filesystem::remove(dir / f, ec);
        }
      }
    }
    absl::Status st = runner_->Configure(reg, timeout);
    Do([this, id, st] { OnConfigured(id, st); });
  });
}

void Agent::OnConfigured(uint64_t id, absl::Status st) {
  if (!pending_ || pending_->id != id) return;  // cut short while config.sh ran
  if (!st.ok()) return FailRegistration(std::string(st.message()));
  listening_ = false;
  registration_ = pending_->reg;
  if (auto s = runner_->Start(pending_->reg); !s.ok()) {
    return FailRegistration(std::string(s.message()));
  }
  runner_running_ = true;
  abandoned_runner_ = false;
  if (runner_->restarts() > 0) runner_restarts_->Increment();
  pending_->started = true;
  pending_->timer = loop_.PostAfter(config_.register_timeout, [this, id] {
    if (!stopping_) OnRegisterTimeout(id);
  });
}

void Agent::OnRegisterTimeout(uint64_t id) {
  if (!pending_ || pending_->id != id || !pending_->started) return;
  FailRegistration("the runner did not start listening for jobs within " +
                   std::to_string(static_cast<int>(ToSeconds(config_.register_timeout))) + "s");
}

void Agent::CompleteRegistration() {
  Pending p = std::move(*pending_);
  pending_.reset();
  loop_.Cancel(p.timer);
  registered_ = true;
  SetState(AgentState::kIdle, "the runner is listening for jobs");
  std::string labels;
  for (const auto& label : p.reg.labels) labels += (labels.empty() ? "" : ",") + label;
  // The keys the MIGlet agents in the field send as well (runner_url, runner_group, runner_id).
  std::map<std::string, std::string> data = {{"runner_name", p.reg.name},
                                             {"labels", labels},
                                             {"ephemeral", p.reg.ephemeral ? "true" : "false"},
                                             {"runner_url", p.reg.url},
                                             {"runner_group", p.reg.group}};
  if (auto id = RunnerIdFromDir(config_.runner_dir); !id.empty()) data["runner_id"] = id;
  Event("runner_registered", std::move(data));
  p.reply(MakeAck(true, "runner " + p.reg.name + " registered and listening for jobs",
                  {{"runner_name", p.reg.name}}));
}

void Agent::FailRegistration(const std::string& why) {
  Pending p = std::move(*pending_);
  pending_.reset();
  loop_.Cancel(p.timer);
  if (p.started && runner_running_) {
    // Its exit is this registration's, not a crash or a drained runner: OnRunnerExit knows.
    abandoned_runner_ = true;
    (void)runner_->Stop(Duration::zero(), /*force=*/false);  // SIGINT now
    ops_.Post([this] { (void)runner_->Stop(std::chrono::seconds(5), /*force=*/true); });
  }
  SetState(AgentState::kReady, "registration failed");
  Event("error", {{"reason", "register_failed"}, {"message", why}});
  p.reply(MakeAck(false, "register_runner failed: " + why));
}

void Agent::Preempt() {
  if (!pending_) return;
  if (!pending_->started) {
    runner_->CancelOneShot();  // config.sh (or the remove before it) is killed
    return FailRegistration("interrupted by a drain or shutdown before the runner started");
  }
  FailRegistration("interrupted by a drain or shutdown while waiting for the runner to listen");
}

commands::CommandAck Agent::Drain(const commands::Command& cmd) {
  const AgentState s = sm_.state();
  if (s == AgentState::kShuttingDown) return MakeAck(false, "drain: the agent is shutting down");
  if (s == AgentState::kDraining) return MakeAck(true, "already draining");
  // Every runner line read so far has been handled on this loop before this task: "busy" and
  // the SIGINT below see the same runner.
  SetState(AgentState::kDraining, "drain " + cmd.id());
  if (job_running_) {
    // Never interrupt a job: the runner is stopped when it reports the job finished.
    return MakeAck(true,
                   "draining: job " + job_.job_id() + " finishes first, then the runner stops");
  }
  if (runner_running_) {
    (void)runner_->Stop(Duration::zero(), /*force=*/false);  // SIGINT; exit reported later
    return MakeAck(true, "draining: the idle runner stops listening now");
  }
  drain_reported_ = true;
  Event("drained", {{"reason", "no_runner"}});
  return MakeAck(true, "drained: no runner was running");
}

commands::CommandAck Agent::Shutdown(const commands::Command& cmd) {
  const Duration grace = std::chrono::seconds(
      IntParam(cmd, "grace_seconds",
               std::chrono::duration_cast<std::chrono::seconds>(config_.shutdown_grace).count()));
  const bool force = BoolParam(cmd, "force", false);
  if (sm_.state() == AgentState::kShuttingDown) return MakeAck(true, "already shutting down");
  if (job_running_ && !force) {
    return MakeAck(false, "shutdown refused: job " + job_.job_id() +
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
  // The runner has exited; its exit is handled here (a drained runner is reported as such)
  // rather than after this shutdown, and the task the reader posted for it finds it done.
  if (runner_running_) OnRunnerExit(runner_->last_exit_code(), /*requested=*/true);
  std::string deregistered = "not needed";
  if (registered_ && !registration_.ephemeral && registration_.jit_config.empty()) {
    // An ephemeral runner removes itself after its job; a persistent one stays listed in
    // GitHub as offline unless it is removed.
    const std::string& token = remove_token.empty() ? registration_.token : remove_token;
    runner_->ClearCancel();
    if (auto st = runner_->Remove(token, kRemoveTimeout); !st.ok()) {
      spdlog::error("could not deregister the runner: {}", std::string(st.message()));
      Event("error", {{"reason", "deregister_failed"}, {"message", std::string(st.message())}});
      deregistered = "failed";
    } else {
      deregistered = "yes";
    }
  }
  shut_down_ = true;
  SetState(AgentState::kShuttingDown, reason);
  Event("vm_shutting_down", {{"reason", reason}, {"deregistered", deregistered}});
  RequestExit();
  return absl::OkStatus();
}

void Agent::RequestExit() {
  {
    std::lock_guard l(exit_mu_);
    exit_requested_ = true;
  }
  exit_cv_.notify_all();
}

void Agent::OnRunnerLine(const RunnerLine& line) {
  switch (line.kind) {
    case RunnerLine::Kind::kListening:
      listening_ = true;
      if (pending_ && pending_->started) CompleteRegistration();
      break;
    case RunnerLine::Kind::kJobStarted: {
      job_ = commands::JobInfo();
      job_.set_job_id(line.job_name);
      job_.set_status("running");
      job_.set_started_at(clock_->UnixSeconds());
      job_running_ = true;
      Publish();
      if (sm_.state() == AgentState::kIdle)
        SetState(AgentState::kJobRunning, "job " + line.job_name);
      // run_id, as the field's events carry it: the runner's output does not say it.
      Event("job_started", {{"job_id", line.job_name}, {"run_id", job_.run_id()}});
      client_->HeartbeatNow();
      break;
    }
    case RunnerLine::Kind::kJobCompleted: {
      const bool ok = JobResultIsSuccess(line.result);
      job_.set_status(ok ? "completed" : "failed");
      job_running_ = false;
      Publish();
      jobs_total_->Add({{"result", line.result}}).Increment();
      client_->HeartbeatNow();
      Event("job_completed", {{"job_id", line.job_name},
                              {"run_id", job_.run_id()},
                              {"result", line.result},
                              {"success", ok ? "true" : "false"},
                              {"duration", std::to_string(std::max<int64_t>(
                                               0, clock_->UnixSeconds() - job_.started_at()))}});
      if (sm_.state() == AgentState::kJobRunning) {
        SetState(AgentState::kIdle, "job " + line.job_name + " " + line.result);
      } else if (sm_.state() == AgentState::kDraining) {
        // The job is done: stop the runner before it takes another one.
        (void)runner_->Stop(Duration::zero(), /*force=*/false);
      }
      if (terminating_) ContinueTermination();
      break;
    }
    default:
      break;
  }
}

void Agent::OnRunnerExit(int code, bool requested) {
  if (!runner_running_) return;  // handled already, by FinishShutdown
  runner_running_ = false;
  listening_ = false;
  const bool was_busy = job_running_;
  job_running_ = false;
  const bool ephemeral_done =
      registration_.ephemeral && !job_.job_id().empty() && job_.status() != "running" && code == 0;
  const bool abandoned = std::exchange(abandoned_runner_, false);
  Publish();
  if (pending_ && pending_->started) {
    FailRegistration("the runner did not start listening for jobs (exit code " +
                     std::to_string(code) + ")");
    return;
  }
  if (terminating_) ContinueTermination();
  const AgentState s = sm_.state();
  if (s == AgentState::kShuttingDown || shut_down_) return;
  if (s == AgentState::kDraining || (!abandoned && (requested || ephemeral_done))) {
    if (s != AgentState::kDraining) {
      SetState(AgentState::kDraining, "the ephemeral runner finished its job");
    }
    if (!drain_reported_) {
      drain_reported_ = true;
      Event("drained", {{"reason", ephemeral_done && !requested ? "ephemeral_job_done" : "drain"},
                        {"exit_code", std::to_string(code)}});
    }
    // The runner is offline now: the controller hears of it at once, not at the next
    // heartbeat (a drained machine can take a new runner as soon as it knows).
    if (client_) client_->HeartbeatNow();
    return;
  }
  if (abandoned) return;  // the runner of a failed registration, stopped on purpose
  spdlog::error("the runner exited unexpectedly with {}", code);
  Event("runner_crashed",
        {{"exit_code", std::to_string(code)}, {"during_job", was_busy ? "true" : "false"}});
  SetState(AgentState::kError, "runner crashed with exit code " + std::to_string(code));
}

void Agent::BeginTermination(const std::string& why) {
  Do([this, why] { Terminate(why); });
}

void Agent::Terminate(const std::string& why) {
  if (terminating_ || shut_down_) return;
  terminating_ = true;
  termination_reason_ = why;
  spdlog::info("{}: draining, then shutting down within {:.0f}s", why,
               ToSeconds(config_.shutdown_grace));
  if (pending_) FailRegistration("interrupted by " + why);
  if (sm_.state() != AgentState::kDraining && sm_.state() != AgentState::kShuttingDown) {
    SetState(AgentState::kDraining, why);
  }
  if (!job_running_) return ContinueTermination();
  termination_timer_ = loop_.PostAfter(config_.shutdown_grace, [this] {
    if (stopping_ || termination_continued_) return;
    spdlog::warn("job {} still running after shutdown.grace_period", job_.job_id());
    ContinueTermination();
    Publish();
  });
}

void Agent::ContinueTermination() {
  if (termination_continued_ || shut_down_) return;
  termination_continued_ = true;
  loop_.Cancel(termination_timer_);
  // The runner gets what is left of force_after to stop by itself, then it is killed.
  const Duration stop_grace = std::max<Duration>(
      config_.shutdown_force_after - config_.shutdown_grace, std::chrono::seconds(1));
  if (auto st = FinishShutdown(stop_grace, /*force=*/true, termination_reason_); !st.ok()) {
    spdlog::error("shutdown: {}", std::string(st.message()));
    RequestExit();
  }
}

int Agent::WaitForExit() {
  {
    std::unique_lock l(exit_mu_);
    exit_cv_.wait(l, [&] { return exit_requested_; });
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
