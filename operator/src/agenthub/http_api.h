#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "agent_registry.h"
#include "hub_metrics.h"
#include "miglet/common/http.h"

namespace miglet {

// The contract's HTTP JSON API over the same registry the gRPC streams use:
//   POST /api/v1/vms/{vm_id}/events              an event
//   POST /api/v1/vms/{vm_id}/heartbeat           a heartbeat
//   GET  /api/v1/vms/{vm_id}/commands            pending commands for that VM
//   POST /api/v1/vms/{vm_id}/commands/{id}/ack   an ack for a polled command
//   POST /api/v1/vms/{vm_id}/registration-token  a runner registration token for that VM
//   GET  /health (and /healthz, /readyz)
// in the JSON the MIGlet agents in the field send and expect (field_json.h); the proto JSON
// form earlier miglet builds sent is read as well. miglet's agent polls with ?ack=true: it
// acks each command; a poller without it has its commands done by their effect (see
// AgentRegistry::PollCommands).
// and, for operators and tools (miglet's own additions):
//   GET  /api/v1/vms                             every agent the hub knows
//   GET  /api/v1/vms/{vm_id}                     one agent
//   POST /api/v1/vms/{vm_id}/commands[?wait=10s] queue a command; with wait, answer with the
//                                                agent's ack (or 504 when none came in time)
class AgentHttpApi {
 public:
  // `not_ready` says why the hub should not take agents yet ("" when it should); /readyz
  // answers 503 with that reason.
  // `authorize_agent` checks the agents' requests (each names its vm_id), `authorize_request`
  // the operator endpoints; unset, those are open. `metrics` may be null.
  AgentHttpApi(AgentRegistry* registry, std::shared_ptr<Clock> clock,
               std::function<std::string()> not_ready = {}, RegistrationSource registration = {},
               AgentAuthorizer authorize_agent = {}, RequestAuthorizer authorize_request = {},
               HubMetrics* metrics = nullptr);

  // Checks who asks (401 without or with bad credentials, 403 when they are someone else's or
  // lack the permission, 503 when they cannot be checked now), then serves.
  void Handle(const HttpRequest& req, HttpReply reply);
  // Answers waits whose time is up. Called by the hub's timer.
  void Tick();

 private:
  // `parts`: the path's parts, split (and the vm_id in parts[3] validated) by Handle.
  void Serve(const HttpRequest& req, const std::vector<std::string>& parts, HttpReply reply);
  void PostCommand(const std::string& vm_id, const HttpRequest& req, HttpReply reply);

  AgentRegistry* registry_;
  std::shared_ptr<Clock> clock_;
  std::function<std::string()> not_ready_;
  RegistrationSource registration_;
  AgentAuthorizer authorize_agent_;
  RequestAuthorizer authorize_request_;
  HubMetrics* metrics_;
  std::mutex mu_;
  std::multimap<MonoTime, HttpReply> waits_;
};

// JSON for an agent, as the API shows it.
std::string AgentInfoToJson(const AgentInfo& info);

}  // namespace miglet
