#include "vm_status.h"

#include <ctime>

namespace miglet::controllers {

namespace {

std::optional<WallTime> ParseTime(const std::string& s) {
  std::tm tm{};
  if (s.empty() || strptime(s.c_str(), "%Y-%m-%dT%H:%M:%SZ", &tm) == nullptr) return std::nullopt;
  return std::chrono::system_clock::from_time_t(timegm(&tm));
}

bool SameStatus(const api::RunnerVMStatus& a, const api::RunnerVMStatus& b) {
  return api::EncodeStatus(a) == api::EncodeStatus(b);
}

}  // namespace

std::string PhaseOf(const api::RunnerVM& vm, const AgentInfo* agent, VmLife life) {
  if (vm.meta.Deleting()) return "Deleting";
  if (life == VmLife::kLost) return "Lost";
  if (agent == nullptr || agent->miglet_state.empty()) return "Pending";
  static const std::map<std::string, std::string> kPhases = {{"initializing", "Initializing"},
                                                             {"connecting", "Connecting"},
                                                             {"ready", "Ready"},
                                                             {"registering_runner", "Registering"},
                                                             {"idle", "Idle"},
                                                             {"job_running", "JobRunning"},
                                                             {"draining", "Draining"},
                                                             {"shutting_down", "ShuttingDown"},
                                                             {"error", "Error"}};
  auto it = kPhases.find(agent->miglet_state);
  return it == kPhases.end() ? "Pending" : it->second;
}

api::RunnerVMStatus DeriveVmStatus(const VmStatusInputs& in) {
  const api::RunnerVM& vm = *in.vm;
  const AgentInfo* a = in.agent;
  api::RunnerVMStatus s = vm.status;  // what is not known anew stays as it was
  s.observed_generation = vm.meta.generation;
  s.phase = PhaseOf(vm, a, in.life);
  if (!in.pod_name.empty()) s.pod_name = in.pod_name;

  if (a != nullptr) {
    s.agent.connected = a->connected && !a->lost;
    if (!a->version.empty()) s.agent.version = a->version;
    s.agent.state = a->miglet_state;
    s.agent.transport = a->connected ? a->transport : "";
    // The runner as the agent reports it, while it is one: a runner that is over (stopped after
    // a drain, a job or a crash) stays as the status has it, so that once the controller has
    // deregistered it and cleared it there, the agent's stale report does not bring it back.
    const bool over =
        a->runner.state() == "offline" &&
        (a->miglet_state == "draining" || a->miglet_state == "error" || a->miglet_state == "ready");
    if (a->runner.configured() && !over) {
      if (!a->runner.runner_name().empty()) s.runner.name = a->runner.runner_name();
      s.runner.labels.assign(a->runner.labels().begin(), a->runner.labels().end());
    }
    const auto& job = a->current_job;
    s.job = {};
    if (!job.job_id().empty()) {
      s.job.id = job.job_id();
      s.job.run_id = job.run_id();
      s.job.repository = job.repository();
      if (job.started_at() > 0) {
        s.job.started_at = api::FormatTime(WallTime(std::chrono::seconds(job.started_at())));
      }
    }
  } else {
    s.agent.connected = false;
    s.agent.transport = "";
  }

  if (in.outcome != nullptr && !in.outcome->id.empty()) {
    const CommandOutcome& o = *in.outcome;
    if (o.id != s.last_command.id || o.success != s.last_command.success) {
      s.last_command = {o.id, o.type, o.success, o.message, api::FormatTime(in.now)};
      if (o.success && o.type == "set_log_level") s.agent.log_level = o.level;
      if (o.success && o.type == "update_config") {
        for (const auto& [k, v] : o.config) {
          if (k == "heartbeat.interval") {
            s.agent.heartbeat_interval = v;
          } else {
            s.agent.config[k] = v;
          }
        }
      }
    }
  }

  const bool connected = s.agent.connected;
  api::SetCondition(
      s.conditions,
      {"AgentConnected", connected ? "True" : "False",
       connected ? "Connected" : (a == nullptr ? "NeverConnected" : "Disconnected"),
       connected ? "over " + s.agent.transport : "no stream to the agent", "", vm.meta.generation},
      in.now);
  const bool registered = a != nullptr && a->runner.configured();
  api::SetCondition(
      s.conditions,
      {"RunnerRegistered", registered ? "True" : "False",
       registered ? "Registered" : "NotRegistered",
       registered ? "runner " + s.runner.name : "no runner registered", "", vm.meta.generation},
      in.now);
  const bool draining = vm.spec.desired_state != api::DesiredState::kRunning;
  api::SetCondition(
      s.conditions,
      {"Draining", draining ? "True" : "False",
       draining ? (vm.spec.desired_state == api::DesiredState::kShutdown ? "ShutdownRequested"
                                                                         : "DrainRequested")
                : "Serving",
       draining ? "takes no new job" : "takes jobs", "", vm.meta.generation},
      in.now);
  const bool lost = in.life == VmLife::kLost;
  api::SetCondition(
      s.conditions,
      {"AgentLost", lost ? "True" : "False", lost ? "HeartbeatsMissed" : "Heard",
       lost ? "no heartbeat within the timeout" : "heartbeats arrive", "", vm.meta.generation},
      in.now);

  // Last-seen and health ride along with a write that happens anyway, or refresh after
  // `refresh`: heartbeats by themselves make no API writes.
  const bool other_change = !SameStatus(s, vm.status);
  const auto old_seen = ParseTime(vm.status.agent.last_seen);
  const bool stale = !old_seen || in.now - *old_seen >= in.refresh;
  if (a != nullptr && a->last_heartbeat != WallTime{} && (other_change || stale)) {
    s.agent.last_seen = api::FormatTime(a->last_heartbeat);
    s.health = {a->health.cpu_usage_percent(), a->health.memory_usage_percent(),
                a->health.disk_usage_percent()};
  }
  // The runner's id from GitHub rides along too: the finalizer, the sweep and a re-registration
  // all find a runner by its name, written before GitHub was asked, so the id is not worth a
  // write of its own.
  if (in.learnt_runner != nullptr && (other_change || stale)) {
    const LearntRunner& r = *in.learnt_runner;
    if (s.registrations == r.registration && s.runner.name == r.name) s.runner.id = r.id;
  }
  return s;
}

}  // namespace miglet::controllers
