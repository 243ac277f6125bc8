#pragma once

#include <cstdint>
#include <deque>
#include <optional>

#include "miglet/commands/commands.pb.h"

namespace miglet {

// Acks and events waiting to reach the controller. They survive reconnects and leave only
// once written, in order. Bounded: when full, the oldest ack goes first (the controller
// re-sends unacked commands and the agent re-acks them from its dedup cache, so an ack is
// recoverable); only when there is no ack to give up does the oldest event go. Not
// thread-safe; the stream client guards it.
class Outbox {
 public:
  explicit Outbox(size_t capacity) : capacity_(capacity) {}

  // Returns how many messages had to be dropped to make room (0 or 1).
  size_t Push(commands::MIGletMessage msg);
  // The next message to write and its sequence number; nullopt when empty.
  std::optional<std::pair<uint64_t, const commands::MIGletMessage*>> Front() const;
  // Drops the message with that sequence number once it has been written (a no-op when it
  // was dropped meanwhile).
  void Written(uint64_t seq);

  size_t size() const { return items_.size(); }
  bool empty() const { return items_.empty(); }
  size_t capacity() const { return capacity_; }

 private:
  struct Item {
    uint64_t seq;
    commands::MIGletMessage msg;
  };
  size_t capacity_;
  uint64_t next_seq_ = 1;
  std::deque<Item> items_;
};

}  // namespace miglet
