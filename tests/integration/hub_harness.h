#pragma once

// The controller's agent hub on loopback for a test that drives agents: commands sent and their
// results awaited, the agent's state and the events it reported.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "await.h"
#include "miglet/operator/agent_hub_server.h"

namespace miglet::testing {

class HubHarness {
 protected:
  // gRPC on 127.0.0.1:`port` (0: any), no HTTP API.
  void StartHub(int port) {
    AgentHubServerOptions o;
    o.bind_address = "127.0.0.1";
    o.grpc_port = port;
    o.http_port = -1;
    auto s = AgentHubServer::Start(o, MakeRealClock(), nullptr);
    ASSERT_TRUE(s.ok()) << s.status();
    hub_ = std::move(*s);
    hub_->hub().SetChangeHook([this](const AgentInfo&) { signal_.Notify(); });
    hub_->hub().SetEventHook([this](const commands::EventNotification& e) {
      {
        std::lock_guard l(mu_);
        events_.push_back(e);
      }
      signal_.Notify();
    });
  }

  // The agent's miglet_state while it is connected, else "".
  std::string State(const std::string& vm = "vm-1") {
    auto a = hub_->hub().GetAgent(vm);
    return a && a->connected ? a->miglet_state : "";
  }

  // A command's result once it has one; filled by the hub's thread.
  struct PendingResult {
    std::mutex m;
    std::optional<CommandResult> result;
    std::optional<CommandResult> Get() {
      std::lock_guard l(m);
      return result;
    }
  };
  // Sends `c` without waiting; the result arrives in the returned PendingResult.
  std::shared_ptr<PendingResult> SendAsync(commands::Command c, const std::string& vm = "vm-1") {
    auto p = std::make_shared<PendingResult>();
    auto id = hub_->hub().SendCommand(vm, std::move(c), [this, p](const CommandResult& r) {
      {
        std::lock_guard l(p->m);
        p->result = r;
      }
      signal_.Notify();
    });
    EXPECT_TRUE(id.ok()) << id.status();
    return p;
  }
  // Sends `c` and waits (up to a minute) for its result.
  CommandResult Send(commands::Command c, const std::string& vm = "vm-1") {
    auto p = SendAsync(std::move(c), vm);
    EXPECT_TRUE(signal_.Await([&] { return p->Get().has_value(); }, std::chrono::seconds(60)));
    return p->Get().value_or(CommandResult{});
  }

  // The events of a type, in arrival order.
  std::vector<commands::EventNotification> Events(const std::string& type) {
    std::lock_guard l(mu_);
    std::vector<commands::EventNotification> out;
    for (const auto& e : events_) {
      if (e.type() == type) out.push_back(e);
    }
    return out;
  }
  bool HasEvent(const std::string& type) { return !Events(type).empty(); }
  std::vector<std::string> EventTypes() {
    std::lock_guard l(mu_);
    std::vector<std::string> out;
    for (const auto& e : events_) out.push_back(e.type());
    return out;
  }

  Signal signal_;
  std::unique_ptr<AgentHubServer> hub_;
  std::mutex mu_;
  std::vector<commands::EventNotification> events_;
};

}  // namespace miglet::testing
