#include "miglet/agent/command_dispatcher.h"

namespace miglet {

commands::CommandAck MakeAck(bool success, std::string message,
                             std::map<std::string, std::string> result) {
  commands::CommandAck a;
  a.set_success(success);
  a.set_message(std::move(message));
  a.mutable_result()->insert(result.begin(), result.end());
  return a;
}

commands::CommandAck CommandDispatcher::Handle(const commands::Command& cmd) {
  auto it = handlers_.find(cmd.type());
  if (it == handlers_.end()) {
    std::string known;
    for (const auto& [type, _] : handlers_) known += (known.empty() ? "" : ", ") + type;
    auto ack = MakeAck(
        false, "unknown command type \"" + cmd.type() + "\" (this agent supports: " + known + ")");
    ack.set_command_id(cmd.id());
    return ack;
  }
  auto ack = it->second(cmd);
  ack.set_command_id(cmd.id());
  return ack;
}

}  // namespace miglet
