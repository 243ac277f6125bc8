#include "miglet/agent/live_config.h"

#include "miglet/agent/command_dispatcher.h"
#include "miglet/common/duration.h"
#include "spdlog/spdlog.h"

namespace miglet {

commands::CommandAck ApplyUpdateConfig(const commands::Command& cmd, AgentConfig* cfg,
                                       StreamClient* client) {
  if (cmd.string_params().empty()) return MakeAck(false, "update_config: no keys given");
  AgentConfig next = *cfg;
  std::vector<std::string> refused;
  std::vector<std::string> applied;
  for (const auto& kv : cmd.string_params()) {
    // Not a structured binding: clang 14 cannot capture one in the lambda below.
    const std::string& key = kv.first;
    const std::string& value = kv.second;
    absl::Status st;
    auto dur = [&](Duration* out) {
      auto d = ParseDuration(value);
      if (!d.ok()) {
        st = d.status();
      } else {
        *out = *d;
      }
    };
    if (key == "heartbeat.interval") {
      dur(&next.heartbeat_interval);
    } else if (key == "controller.retry.initial_backoff") {
      dur(&next.retry.initial);
    } else if (key == "controller.retry.max_backoff") {
      dur(&next.retry.max);
    } else if (key == "controller.retry.reset_after") {
      dur(&next.retry.reset_after);
    } else if (key == "logging.level") {
      st = ParseLogLevel(value).status();
      next.log_level = value;
    } else if (key == "logging.format") {
      st = ParseLogFormat(value).status();
      next.log_format = value;
    } else {
      refused.push_back(key + ": cannot change while running (restart the agent with it)");
      continue;
    }
    if (!st.ok()) {
      refused.push_back(key + ": " + std::string(st.message()));
    } else {
      applied.push_back(key);
    }
  }
  if (refused.empty()) {
    next.sources.clear();  // values now come from the controller
    if (auto st = ValidateAgentConfig(next); !st.ok()) refused.push_back(std::string(st.message()));
  }
  if (!refused.empty()) {
    std::string msg = "update_config refused, nothing changed: ";
    for (size_t i = 0; i < refused.size(); ++i) msg += (i ? "; " : "") + refused[i];
    return MakeAck(false, msg);
  }
  next.sources = cfg->sources;
  *cfg = next;
  (void)SetLogLevel(cfg->log_level);
  SetLogFormat(*ParseLogFormat(cfg->log_format));
  if (client != nullptr) {
    client->SetHeartbeatInterval(cfg->heartbeat_interval);
    client->SetRetryPolicy(cfg->retry);
  }
  std::string msg = "applied: ";
  for (size_t i = 0; i < applied.size(); ++i) msg += (i ? ", " : "") + applied[i];
  spdlog::info("update_config {}", msg);
  return MakeAck(true, msg);
}

commands::CommandAck ApplySetLogLevel(const commands::Command& cmd, AgentConfig* cfg) {
  auto it = cmd.string_params().find("level");
  if (it == cmd.string_params().end()) {
    return MakeAck(false, "set_log_level: string_params.level is required");
  }
  if (auto st = SetLogLevel(it->second); !st.ok()) {
    return MakeAck(false, "set_log_level: " + std::string(st.message()));
  }
  cfg->log_level = it->second;
  spdlog::info("log level set to {}", it->second);
  return MakeAck(true, "log level is now " + it->second);
}

}  // namespace miglet
