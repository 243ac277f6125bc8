#include "vm_plan.h"

#include <ctime>

#include "miglet/operator/api/v1alpha1.h"

namespace miglet::controllers {

namespace {

std::string Id(const api::RunnerVM& vm, const std::string& rest) {
  return vm.meta.uid + ".g" + std::to_string(vm.meta.generation) + "." + rest;
}

constexpr Duration kRegisterRetry = std::chrono::seconds(30);

std::optional<WallTime> ParseTime(const std::string& s) {
  std::tm tm{};
  if (s.empty() || strptime(s.c_str(), "%Y-%m-%dT%H:%M:%SZ", &tm) == nullptr) return std::nullopt;
  return std::chrono::system_clock::from_time_t(timegm(&tm));
}

std::optional<WallTime> DrainStarted(const api::RunnerVM& vm) {
  const api::Condition* c = api::FindCondition(vm.status.conditions, "Draining");
  if (c == nullptr || c->status != "True") return std::nullopt;
  return ParseTime(c->last_transition_time);
}

}  // namespace

std::string_view VmCommandName(VmCommand::Kind k) {
  switch (k) {
    case VmCommand::Kind::kRegister:
      return "register_runner";
    case VmCommand::Kind::kDrain:
      return "drain";
    case VmCommand::Kind::kShutdown:
      return "shutdown";
    case VmCommand::Kind::kSetLogLevel:
      return "set_log_level";
    case VmCommand::Kind::kUpdateConfig:
      return "update_config";
    case VmCommand::Kind::kNone:
      break;
  }
  return "";
}

static VmCommand PlanOne(const api::RunnerVM& vm, const api::RunnerPool& pool,
                         const std::optional<AgentInfo>& agent, WallTime now) {
  VmCommand c;
  if (!agent || !agent->connected || agent->lost) return c;
  if (agent->pending_commands > 0) return c;  // one at a time: its ack comes first
  const std::string& s = agent->miglet_state;
  const bool busy = !agent->current_job.job_id().empty() || s == "job_running";
  if (s == "shutting_down") return c;

  switch (vm.spec.desired_state) {
    case api::DesiredState::kShutdown: {
      if (busy) {
        const auto started = DrainStarted(vm);
        const bool timed_out =
            started && now - *started >= std::chrono::seconds(pool.spec.drain_timeout_seconds);
        if (!timed_out) {
          if (s == "draining") return c;  // its job finishes first
          c.kind = VmCommand::Kind::kDrain;
          c.id = Id(vm, "drain");
          c.why = "shutdown asked while a job runs: drain first";
          return c;
        }
        c.force = true;
      }
      c.kind = VmCommand::Kind::kShutdown;
      c.deregister = !pool.spec.runner.ephemeral && agent->runner.configured();
      c.id = Id(vm, c.force ? "shutdown-force" : "shutdown");
      c.why = c.force ? "the job outlasted the drain timeout" : "shutdown asked";
      return c;
    }
    case api::DesiredState::kDrained:
      // A spare (ready, no runner) has nothing to drain: it stays ready.
      if (s == "registering_runner" || s == "idle" || s == "job_running" ||
          (s == "ready" && agent->runner.configured())) {
        c.kind = VmCommand::Kind::kDrain;
        c.id = Id(vm, "drain");
        c.why = "drain asked";
        return c;
      }
      break;
    case api::DesiredState::kRunning: {
      // An external machine whose runner is over (drained, finished its one job, crashed)
      // takes a new one; a pod never does (it is replaced).
      const bool runner_over = pool.spec.provider == api::Provider::kExternal &&
                               (s == "draining" || s == "error") && !busy &&
                               agent->runner.state() == "offline";
      if ((s == "ready" && !agent->runner.configured()) || runner_over) {
        // A failed registration is tried again after a pause (each try costs a GitHub call).
        const auto& last = vm.status.last_command;
        if (last.type == "register_runner" && !last.success) {
          const auto at = ParseTime(last.time);
          if (at && now - *at < kRegisterRetry) return c;
        }
        c.kind = VmCommand::Kind::kRegister;
        c.deregister = !pool.spec.runner.ephemeral;
        c.id = Id(vm, "register." + std::to_string(vm.status.registrations + 1));
        c.why = runner_over ? "the machine's last runner is over"
                            : "the agent is ready and has no runner";
        return c;
      }
      break;
    }
  }

  // Settings, once the runner side is settled; the ids carry the pool's generation, so going
  // back to an earlier value is a new command.
  const std::string pool_gen = "p" + std::to_string(pool.meta.generation);
  const std::string level =
      vm.spec.log_level.empty() ? pool.spec.agent.log_level : vm.spec.log_level;
  if (level != vm.status.agent.log_level) {
    c.kind = VmCommand::Kind::kSetLogLevel;
    c.level = level;
    c.id = Id(vm, pool_gen + ".log." + level);
    c.why = "log level " + level;
    return c;
  }
  std::map<std::string, std::string> want = vm.spec.config;
  want.emplace("heartbeat.interval", pool.spec.agent.heartbeat_interval);
  std::map<std::string, std::string> have = vm.status.agent.config;
  if (!vm.status.agent.heartbeat_interval.empty()) {
    have["heartbeat.interval"] = vm.status.agent.heartbeat_interval;
  }
  std::map<std::string, std::string> diff;
  for (const auto& [k, v] : want) {
    auto it = have.find(k);
    if (it == have.end() || it->second != v) diff[k] = v;
  }
  if (!diff.empty()) {
    c.kind = VmCommand::Kind::kUpdateConfig;
    c.config = std::move(diff);
    c.id = Id(vm, pool_gen + ".config");
    c.why = "agent settings differ from the pool's";
  }
  return c;
}

VmCommand PlanVmCommand(const api::RunnerVM& vm, const api::RunnerPool& pool,
                        const std::optional<AgentInfo>& agent, WallTime now) {
  VmCommand c = PlanOne(vm, pool, agent, now);
  if (c.kind != VmCommand::Kind::kNone && c.id == vm.status.last_command.id &&
      !vm.status.last_command.success) {
    return VmCommand{};  // it failed; asking again gets the same answer
  }
  return c;
}

}  // namespace miglet::controllers
