#include "miglet/agent/command_dedup.h"

#include <gtest/gtest.h>

namespace miglet {
namespace {

commands::CommandAck Ack(const std::string& id, const std::string& msg) {
  commands::CommandAck a;
  a.set_command_id(id);
  a.set_success(true);
  a.set_message(msg);
  return a;
}

TEST(CommandDedupTest, NewThenInProgressThenDoneWithFirstResult) {
  CommandDedup d;
  commands::CommandAck prior;
  EXPECT_EQ(d.Begin("c1", &prior), CommandDedup::Seen::kNew);
  EXPECT_EQ(d.Begin("c1", &prior), CommandDedup::Seen::kInProgress);
  d.Finish("c1", Ack("c1", "first"));
  EXPECT_EQ(d.Begin("c1", &prior), CommandDedup::Seen::kDone);
  EXPECT_EQ(prior.message(), "first");
  d.Finish("c1", Ack("c1", "second"));  // the first result stands
  EXPECT_EQ(d.Begin("c1", &prior), CommandDedup::Seen::kDone);
  EXPECT_EQ(prior.message(), "first");
}

TEST(CommandDedupTest, ForgetsOldestBeyondCapacity) {
  CommandDedup d(3);
  for (int i = 0; i < 4; ++i) {
    const std::string id = "c" + std::to_string(i);
    ASSERT_EQ(d.Begin(id, nullptr), CommandDedup::Seen::kNew);
    d.Finish(id, Ack(id, "ok"));
  }
  EXPECT_EQ(d.size(), 3u);
  EXPECT_EQ(d.Begin("c0", nullptr), CommandDedup::Seen::kNew);
  EXPECT_EQ(d.Begin("c3", nullptr), CommandDedup::Seen::kDone);
}

}  // namespace
}  // namespace miglet
