#include "miglet/agent/state_machine.h"

#include <gtest/gtest.h>

#include <iterator>
#include <map>
#include <set>

namespace miglet {
namespace {

using S = AgentState;

TEST(StateMachineTest, HappyPathOfTheContract) {
  StateMachine sm;
  std::vector<std::string> seen;
  sm.OnChange([&](S from, S to, const std::string&) {
    seen.push_back(std::string(AgentStateName(from)) + ">" + std::string(AgentStateName(to)));
  });
  for (S to : {S::kConnecting, S::kReady, S::kRegisteringRunner, S::kIdle, S::kJobRunning, S::kIdle,
               S::kJobRunning, S::kDraining, S::kShuttingDown}) {
    ASSERT_TRUE(sm.Transition(to, "test").ok()) << AgentStateName(to);
  }
  EXPECT_EQ(sm.state(), S::kShuttingDown);
  EXPECT_EQ(seen.front(), "initializing>connecting");
  EXPECT_EQ(seen.back(), "draining>shutting_down");
  EXPECT_EQ(seen.size(), 9u);
}

TEST(StateMachineTest, IllegalTransitionIsRefusedAndNothingChanges) {
  StateMachine sm;
  int changes = 0;
  sm.OnChange([&](S, S, const std::string&) { ++changes; });
  auto st = sm.Transition(S::kJobRunning, "job started before registration");
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(std::string(st.message()).find("initializing -> job_running"), std::string::npos);
  EXPECT_EQ(sm.state(), S::kInitializing);
  EXPECT_EQ(changes, 0);
}

TEST(StateMachineTest, TransitionTableMatchesTheContract) {
  // The contract's table, written out: from each state, exactly these; every other pair is
  // refused.
  const std::map<std::string, std::set<std::string>> legal = {
      {"initializing", {"connecting", "draining", "error"}},
      {"connecting", {"ready", "draining", "error"}},
      {"ready", {"registering_runner", "draining", "error"}},
      {"registering_runner", {"idle", "ready", "draining", "error"}},
      {"idle", {"job_running", "draining", "error"}},
      {"job_running", {"idle", "draining", "error"}},
      {"draining", {"shutting_down", "ready", "error"}},
      {"shutting_down", {"error"}},
      {"error", {"ready", "draining"}},
  };
  ASSERT_EQ(legal.size(), std::size(kAllAgentStates));
  for (S from : kAllAgentStates) {
    const auto& to_ok = legal.at(std::string(AgentStateName(from)));
    for (S to : kAllAgentStates) {
      EXPECT_EQ(IsLegalTransition(from, to), to_ok.count(std::string(AgentStateName(to))) == 1)
          << AgentStateName(from) << " -> " << AgentStateName(to);
    }
  }
}

TEST(StateMachineTest, NamesAreTheWireValues) {
  std::vector<std::string> names;
  for (S s : kAllAgentStates) names.emplace_back(AgentStateName(s));
  EXPECT_EQ(names, (std::vector<std::string>{"initializing", "connecting", "ready",
                                             "registering_runner", "idle", "job_running",
                                             "draining", "shutting_down", "error"}));
}

}  // namespace
}  // namespace miglet
