#pragma once

#include <functional>
#include <map>
#include <string>

#include "miglet/agent/stream_client.h"

namespace miglet {

commands::CommandAck MakeAck(bool success, std::string message,
                             std::map<std::string, std::string> result = {});

// Routes commands to a handler per type. An unknown type is acked with success=false and a
// message that names it and lists what this agent does support.
class CommandDispatcher final : public CommandHandler {
 public:
  using Fn = std::function<commands::CommandAck(const commands::Command&)>;

  void Register(const std::string& type, Fn fn) { handlers_[type] = std::move(fn); }
  // Told of every command as it arrives (CommandHandler::Preempt); must not block.
  void OnArrival(std::function<void(const commands::Command&)> fn) { arrival_ = std::move(fn); }
  commands::CommandAck Handle(const commands::Command& cmd) override;
  void Preempt(const commands::Command& cmd) override {
    if (arrival_) arrival_(cmd);
  }

 private:
  std::map<std::string, Fn> handlers_;
  std::function<void(const commands::Command&)> arrival_;
};

}  // namespace miglet
