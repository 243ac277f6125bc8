#pragma once

#include <mutex>

#include "miglet/operator/agent_hub.h"

namespace miglet {

// An AgentHub that is not serving yet: mig-controller serves agents only while it leads, but
// its controllers are wired up at start. Until Set() gives it the running hub, commands are
// refused (UNAVAILABLE) and no agent is known; the hooks are kept and installed on Set().
class DeferredHub final : public AgentHub {
 public:
  void Set(AgentHub* hub) {
    std::lock_guard l(mu_);
    hub_ = hub;
    if (change_) hub_->SetChangeHook(change_);
    if (event_) hub_->SetEventHook(event_);
  }

  absl::StatusOr<std::string> SendCommand(const std::string& vm_id, commands::Command cmd,
                                          CommandCallback done) override {
    AgentHub* h = Get();
    if (h == nullptr) return absl::UnavailableError("not serving agents (not the leader)");
    return h->SendCommand(vm_id, std::move(cmd), std::move(done));
  }
  std::optional<AgentInfo> GetAgent(const std::string& vm_id) const override {
    AgentHub* h = Get();
    return h ? h->GetAgent(vm_id) : std::nullopt;
  }
  std::vector<AgentInfo> ListAgents() const override {
    AgentHub* h = Get();
    return h ? h->ListAgents() : std::vector<AgentInfo>{};
  }
  void SetChangeHook(std::function<void(const AgentInfo&)> hook) override {
    std::lock_guard l(mu_);
    change_ = std::move(hook);
    if (hub_) hub_->SetChangeHook(change_);
  }
  void SetEventHook(std::function<void(const commands::EventNotification&)> hook) override {
    std::lock_guard l(mu_);
    event_ = std::move(hook);
    if (hub_) hub_->SetEventHook(event_);
  }

 private:
  AgentHub* Get() const {
    std::lock_guard l(mu_);
    return hub_;
  }
  mutable std::mutex mu_;
  AgentHub* hub_ = nullptr;
  std::function<void(const AgentInfo&)> change_;
  std::function<void(const commands::EventNotification&)> event_;
};

}  // namespace miglet
