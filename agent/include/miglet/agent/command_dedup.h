#pragma once

#include <list>
#include <string>
#include <unordered_map>

#include "miglet/commands/commands.pb.h"

namespace miglet {

// Remembers which command ids were handled and what they were answered, so a command re-sent
// after a reconnect or a controller restart is acked again with its first result and never
// run twice. Keeps the last `capacity` finished ids. Not thread-safe.
class CommandDedup {
 public:
  enum class Seen { kNew, kInProgress, kDone };

  explicit CommandDedup(size_t capacity = 4096) : capacity_(capacity) {}

  // kNew marks the id in progress; kDone fills `*first_ack`.
  Seen Begin(const std::string& id, commands::CommandAck* first_ack);
  void Finish(const std::string& id, const commands::CommandAck& ack);
  size_t size() const { return done_.size(); }

 private:
  size_t capacity_;
  std::unordered_map<std::string, bool> in_progress_;
  std::list<std::string> order_;  // finished ids, oldest first
  std::unordered_map<std::string, std::pair<commands::CommandAck, std::list<std::string>::iterator>>
      done_;
};

}  // namespace miglet
