#include "miglet/agent/outbox.h"

#include <gtest/gtest.h>

namespace miglet {
namespace {

commands::MIGletMessage Event(const std::string& type) {
  commands::MIGletMessage m;
  m.mutable_event()->set_type(type);
  return m;
}
commands::MIGletMessage AckMsg(const std::string& id) {
  commands::MIGletMessage m;
  m.mutable_command_ack()->set_command_id(id);
  return m;
}

TEST(OutboxTest, KeepsOrderUntilWritten) {
  Outbox box(10);
  box.Push(Event("a"));
  box.Push(AckMsg("1"));
  box.Push(Event("b"));
  auto f = box.Front();
  ASSERT_TRUE(f);
  EXPECT_EQ(f->second->event().type(), "a");
  box.Written(f->first);
  EXPECT_EQ(box.Front()->second->command_ack().command_id(), "1");
  box.Written(box.Front()->first);
  EXPECT_EQ(box.Front()->second->event().type(), "b");
  EXPECT_EQ(box.size(), 1u);
}

TEST(OutboxTest, FrontStaysUntilItsWriteCompletes) {
  Outbox box(10);
  box.Push(Event("a"));
  auto f = box.Front();
  box.Push(Event("b"));
  EXPECT_EQ(box.Front()->first, f->first);  // a failed write leaves it first in line
}

TEST(OutboxTest, FullQueueDropsOldestAckBeforeAnyEvent) {
  Outbox box(3);
  EXPECT_EQ(box.Push(Event("e1")), 0u);
  EXPECT_EQ(box.Push(AckMsg("c1")), 0u);
  EXPECT_EQ(box.Push(Event("e2")), 0u);
  EXPECT_EQ(box.Push(Event("e3")), 1u);  // c1 goes: the controller will re-send it
  ASSERT_EQ(box.size(), 3u);
  std::vector<std::string> types;
  while (auto f = box.Front()) {
    types.push_back(f->second->event().type());
    box.Written(f->first);
  }
  EXPECT_EQ(types, (std::vector<std::string>{"e1", "e2", "e3"}));
}

TEST(OutboxTest, FullOfEventsDropsOldestEvent) {
  Outbox box(2);
  box.Push(Event("e1"));
  box.Push(Event("e2"));
  EXPECT_EQ(box.Push(Event("e3")), 1u);
  EXPECT_EQ(box.Front()->second->event().type(), "e2");
  EXPECT_EQ(box.size(), 2u);
}

TEST(OutboxTest, WrittenOfDroppedSeqIsNoOp) {
  Outbox box(1);
  box.Push(AckMsg("old"));
  auto seq = box.Front()->first;
  box.Push(Event("e"));
  box.Written(seq);
  EXPECT_EQ(box.size(), 1u);
}

}  // namespace
}  // namespace miglet
