#include "miglet/agent/command_dedup.h"

namespace miglet {

CommandDedup::Seen CommandDedup::Begin(const std::string& id, commands::CommandAck* first_ack) {
  if (auto it = done_.find(id); it != done_.end()) {
    if (first_ack) *first_ack = it->second.first;
    return Seen::kDone;
  }
  if (in_progress_.count(id)) return Seen::kInProgress;
  in_progress_[id] = true;
  return Seen::kNew;
}

void CommandDedup::Finish(const std::string& id, const commands::CommandAck& ack) {
  in_progress_.erase(id);
  if (done_.count(id)) return;
  order_.push_back(id);
  done_.emplace(id, std::make_pair(ack, std::prev(order_.end())));
  while (done_.size() > capacity_) {
    done_.erase(order_.front());
    order_.pop_front();
  }
}

}  // namespace miglet
