#pragma once

#include "miglet/agent/config.h"
#include "miglet/agent/stream_client.h"

namespace miglet {

// update_config: applies the keys that can change while running (heartbeat.interval,
// logging.level, logging.format, controller.retry.*) and refuses the whole command, changing
// nothing, when any key cannot change live or has a bad value; the ack says which and why.
commands::CommandAck ApplyUpdateConfig(const commands::Command& cmd, AgentConfig* cfg,
                                       StreamClient* client);

// set_log_level: string_params["level"].
commands::CommandAck ApplySetLogLevel(const commands::Command& cmd, AgentConfig* cfg);

}  // namespace miglet
