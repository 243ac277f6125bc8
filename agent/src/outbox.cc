#include "miglet/agent/outbox.h"

#include <algorithm>

namespace miglet {

size_t Outbox::Push(commands::MIGletMessage msg) {
  size_t dropped = 0;
  if (capacity_ > 0 && items_.size() >= capacity_) {
    auto ack = std::find_if(items_.begin(), items_.end(),
                            [](const Item& i) { return i.msg.has_command_ack(); });
    items_.erase(ack != items_.end() ? ack : items_.begin());
    dropped = 1;
  }
  items_.push_back(Item{next_seq_++, std::move(msg)});
  return dropped;
}

std::optional<std::pair<uint64_t, const commands::MIGletMessage*>> Outbox::Front() const {
  if (items_.empty()) return std::nullopt;
  return std::make_pair(items_.front().seq, &items_.front().msg);
}

void Outbox::Written(uint64_t seq) {
  auto it = std::find_if(items_.begin(), items_.end(), [&](const Item& i) { return i.seq == seq; });
  if (it != items_.end()) items_.erase(it);
}

}  // namespace miglet
