#include "http_api.h"

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>

#include "absl/strings/str_split.h"
#include "miglet/commands/field_json.h"
#include "miglet/common/duration.h"
#include "spdlog/spdlog.h"

namespace miglet {

namespace {

namespace pbu = google::protobuf::util;
using google::protobuf::Struct;

std::string ToJson(const google::protobuf::Message& m) {
  pbu::JsonPrintOptions opts;
  opts.preserve_proto_field_names = true;
  opts.always_print_primitive_fields = true;
  std::string out;
  (void)pbu::MessageToJsonString(m, &out, opts);
  return out;
}

absl::Status FromJson(const std::string& body, google::protobuf::Message* m) {
  if (body.empty()) return absl::InvalidArgumentError("the request body is empty");
  pbu::JsonParseOptions opts;
  opts.ignore_unknown_fields = true;  // newer agents may send fields we do not know yet
  auto st = pbu::JsonStringToMessage(body, m, opts);
  if (!st.ok()) return absl::InvalidArgumentError("invalid JSON: " + st.ToString());
  return absl::OkStatus();
}

HttpResponse Json(int status, const google::protobuf::Message& m) {
  return HttpResponse{status, ToJson(m), "application/json"};
}

HttpResponse Ok() { return HttpResponse{200, "{\"ok\":true}", "application/json"}; }

HttpResponse Received(const std::string& vm_id, const std::string& message,
                      const fieldjson::Registration* registration = nullptr) {
  return HttpResponse{200, fieldjson::EventAnswer(vm_id, "received", message, registration),
                      "application/json"};
}

fieldjson::Registration ToField(const RunnerRegistration& r) {
  return {
      .registration_token = r.token,
      .expires_at =
          std::chrono::duration_cast<std::chrono::seconds>(r.expires_at.time_since_epoch()).count(),
      .runner_url = r.url,
      .runner_group = r.group,
      .labels = r.labels,
      .runner_name = r.name};
}

HttpResponse BadRequest(const absl::Status& st) {
  return JsonError(400, "bad_request", std::string(st.message()));
}

}  // namespace

std::string AgentInfoToJson(const AgentInfo& a) {
  Struct s;
  auto& f = *s.mutable_fields();
  f["vm_id"].set_string_value(a.vm_id);
  f["pool_id"].set_string_value(a.pool_id);
  f["org_id"].set_string_value(a.org_id);
  f["version"].set_string_value(a.version);
  f["connected"].set_bool_value(a.connected);
  f["transport"].set_string_value(a.transport);
  f["lost"].set_bool_value(a.lost);
  f["miglet_state"].set_string_value(a.miglet_state);
  f["pending_commands"].set_number_value(static_cast<double>(a.pending_commands));
  f["heartbeats"].set_number_value(static_cast<double>(a.heartbeats));
  f["acks_commands"].set_bool_value(a.acks_commands);
  f["last_heartbeat"].set_number_value(static_cast<double>(
      std::chrono::duration_cast<std::chrono::seconds>(a.last_heartbeat.time_since_epoch())
          .count()));
  f["connected_at"].set_number_value(static_cast<double>(
      std::chrono::duration_cast<std::chrono::seconds>(a.connected_at.time_since_epoch()).count()));
  std::string runner = ToJson(a.runner), job = ToJson(a.current_job), health = ToJson(a.health);
  (void)pbu::JsonStringToMessage(runner, f["runner"].mutable_struct_value());
  (void)pbu::JsonStringToMessage(job, f["current_job"].mutable_struct_value());
  (void)pbu::JsonStringToMessage(health, f["health"].mutable_struct_value());
  return ToJson(s);
}

AgentHttpApi::AgentHttpApi(AgentRegistry* registry, std::shared_ptr<Clock> clock,
                           std::function<std::string()> not_ready, RegistrationSource registration,
                           AgentAuthorizer authorize_agent, RequestAuthorizer authorize_request,
                           HubMetrics* metrics)
    : registry_(registry),
      clock_(std::move(clock)),
      not_ready_(std::move(not_ready)),
      registration_(std::move(registration)),
      authorize_agent_(std::move(authorize_agent)),
      authorize_request_(std::move(authorize_request)),
      metrics_(metrics) {}

void AgentHttpApi::Handle(const HttpRequest& req, HttpReply reply) {
  std::vector<std::string> parts = absl::StrSplit(req.path, '/', absl::SkipEmpty());
  const bool api = parts.size() >= 3 && parts[0] == "api" && parts[1] == "v1" && parts[2] == "vms";
  // The operator endpoints: every agent, one agent, queueing a command. The rest under
  // /api/v1/vms/{vm_id} is the agent's own.
  const bool for_operators =
      api &&
      (parts.size() <= 4 || (parts.size() == 5 && parts[4] == "commands" && req.method == "POST"));
  const bool for_agent = api && !for_operators;
  if (api && parts.size() >= 4) {
    if (auto st = AgentRegistry::ValidateId("vm_id", parts[3]); !st.ok()) {
      return reply(JsonError(400, "bad_request", std::string(st.message())));
    }
  }
  if ((for_operators && !authorize_request_) || (for_agent && !authorize_agent_) || !api) {
    Serve(req, parts, std::move(reply));
    return;
  }
  const std::string token = BearerToken(req.authorization);
  const std::string vm_id = for_agent ? parts[3] : "";
  auto shared =
      std::make_shared<std::pair<HttpRequest, std::vector<std::string>>>(req, std::move(parts));
  auto done = [this, shared, reply = std::move(reply), agent = for_agent](absl::Status st) mutable {
    const HttpRequest& req = shared->first;
    if (st.ok()) {
      Serve(req, shared->second, std::move(reply));
      return;
    }
    const Refusal r = RefusalOf(st);
    if (metrics_ && agent) metrics_->Refused(r.reason);
    spdlog::warn("HTTP {} {} refused ({}): {}", req.method, req.path, r.http_status,
                 std::string(st.message()));
    reply(JsonError(r.http_status, r.reason, std::string(st.message())));
  };
  if (for_agent) {
    authorize_agent_(vm_id, AgentCredentials{token, "http"}, std::move(done));
  } else {
    std::string verb = req.method;
    for (auto& c : verb) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    authorize_request_(token, verb, req.path, std::move(done));
  }
}

void AgentHttpApi::Serve(const HttpRequest& req, const std::vector<std::string>& parts,
                         HttpReply reply) {
  if (req.path == "/health" || req.path == "/healthz") {
    reply(HttpResponse{200, "{\"status\":\"ok\"}", "application/json"});
    return;
  }
  if (req.path == "/readyz") {
    // Answering at all means the listeners are up; the rest is the controller's to say.
    const std::string why = not_ready_ ? not_ready_() : "";
    if (why.empty()) {
      reply(HttpResponse{200, "{\"status\":\"ok\"}", "application/json"});
    } else {
      reply(JsonError(503, "not_ready", why));
    }
    return;
  }
  if (parts.size() < 3 || parts[0] != "api" || parts[1] != "v1" || parts[2] != "vms") {
    reply(JsonError(404, "not_found", "no such endpoint: " + req.path));
    return;
  }
  const bool get = req.method == "GET", post = req.method == "POST";
  if (parts.size() == 3 && get) {
    std::string out = "{\"items\":[";
    bool first = true;
    for (const auto& a : registry_->ListAgents()) {
      out += (first ? "" : ",") + AgentInfoToJson(a);
      first = false;
    }
    reply(HttpResponse{200, out + "]}", "application/json"});
    return;
  }
  if (parts.size() == 3) {  // POST /api/v1/vms read past the path's parts (found by fuzzing)
    reply(JsonError(405, "method_not_allowed", req.method + " " + req.path + " is not supported"));
    return;
  }
  const std::string& vm_id = parts[3];  // validated by Handle
  // A new vm_id the hub will not hold (too many agents without a stream): 429.
  auto refused = [&](const absl::Status& st) {
    return JsonError(429, "too_many_agents", std::string(st.message()));
  };
  if (parts.size() == 4 && get) {
    auto a = registry_->GetAgent(vm_id);
    if (!a) {
      reply(JsonError(404, "not_found", "no agent " + vm_id));
    } else {
      reply(HttpResponse{200, AgentInfoToJson(*a), "application/json"});
    }
    return;
  }
  // miglet's agent marks every request ?ack=true: it acks its commands. A poller without the
  // mark (a MIGlet agent in the field) does not.
  const auto ack_mark = req.query.find("ack");
  const bool acks =
      ack_mark != req.query.end() && (ack_mark->second == "true" || ack_mark->second == "1");
  if (parts.size() == 5 && parts[4] == "heartbeat" && post) {
    auto hb = fieldjson::ParseHeartbeat(req.body);
    if (!hb.ok()) return reply(BadRequest(hb.status()));
    if (auto st = registry_->OnHeartbeat(vm_id, *hb, /*via_http=*/true, acks); !st.ok()) {
      return reply(refused(st));
    }
    return reply(Received(vm_id, "heartbeat received"));
  }
  if (parts.size() == 5 && parts[4] == "events" && post) {
    auto ev = fieldjson::ParseEvent(req.body);
    if (!ev.ok()) return reply(BadRequest(ev.status()));
    const bool started = ev->type() == "vm_started";
    if (auto st = registry_->OnEvent(vm_id, std::move(*ev), /*via_http=*/true, acks); !st.ok()) {
      return reply(refused(st));
    }
    if (started && registration_) {
      // A machine that has just started may be handed its runner's registration at once: an
      // agent that only speaks HTTP registers with it (miglet's agent waits for its command).
      auto r = registration_(vm_id, /*only_if_wanted=*/true);
      if (!r.ok()) {
        spdlog::warn("agent {}: vm_started: no registration handed out: {}", vm_id,
                     r.status().ToString());
      } else if (r->has_value()) {
        const fieldjson::Registration f = ToField(**r);
        return reply(
            Received(vm_id, "event received; register the runner with the token given", &f));
      }
    }
    return reply(Received(vm_id, "event received"));
  }
  if (parts.size() == 5 && parts[4] == "registration-token" && post) {
    auto ask = fieldjson::ParseRegistrationRequest(req.body);
    if (!ask.ok()) return reply(BadRequest(ask.status()));
    if (!registration_) {
      return reply(JsonError(503, "unavailable",
                             "this controller hands out no registration tokens (no operator)"));
    }
    auto r = registration_(vm_id, /*only_if_wanted=*/false);
    if (!r.ok()) {
      int code = 502;
      std::string reason = "github_error";
      switch (r.status().code()) {
        case absl::StatusCode::kNotFound:
          code = 404;
          reason = "not_found";
          break;
        case absl::StatusCode::kFailedPrecondition:
          code = 409;
          reason = "conflict";
          break;
        default:
          break;
      }
      return reply(JsonError(code, reason, std::string(r.status().message())));
    }
    if (!r->has_value()) {
      return reply(JsonError(409, "conflict", "no registration for " + vm_id + " now"));
    }
    return reply(
        HttpResponse{200, fieldjson::RegistrationAnswer(ToField(**r)), "application/json"});
  }
  if (parts.size() == 5 && parts[4] == "commands" && get) {
    auto polled = registry_->PollCommands(vm_id, acks);
    if (!polled.ok()) return reply(refused(polled.status()));
    return reply(HttpResponse{200, fieldjson::CommandsAnswer(vm_id, *polled), "application/json"});
  }
  if (parts.size() == 5 && parts[4] == "commands" && post) {
    return PostCommand(vm_id, req, std::move(reply));
  }
  if (parts.size() == 7 && parts[4] == "commands" && parts[6] == "ack" && post) {
    commands::CommandAck ack;
    if (auto st = FromJson(req.body, &ack); !st.ok()) return reply(BadRequest(st));
    if (!ack.command_id().empty() && ack.command_id() != parts[5]) {
      return reply(JsonError(400, "bad_request",
                             "command_id in the body (" + ack.command_id() +
                                 ") differs from the path (" + parts[5] + ")"));
    }
    ack.set_command_id(parts[5]);
    registry_->OnAck(vm_id, ack);
    return reply(Ok());
  }
  reply(JsonError(405, "method_not_allowed", req.method + " " + req.path + " is not supported"));
}

void AgentHttpApi::PostCommand(const std::string& vm_id, const HttpRequest& req, HttpReply reply) {
  commands::Command cmd;
  if (auto st = FromJson(req.body, &cmd); !st.ok()) return reply(BadRequest(st));
  Duration wait{};
  if (auto it = req.query.find("wait"); it != req.query.end()) {
    auto d = ParseDuration(it->second);
    if (!d.ok())
      return reply(
          BadRequest(absl::InvalidArgumentError("wait: " + std::string(d.status().message()))));
    wait = *d;
  }
  CommandCallback done;
  if (wait > Duration::zero()) {
    done = [reply](const CommandResult& r) {
      if (!r.status.ok()) {
        reply(JsonError(504, "no_ack", std::string(r.status.message())));
        return;
      }
      commands::CommandAck ack;
      ack.set_command_id(r.command_id);
      ack.set_success(r.success);
      ack.set_message(r.message);
      ack.mutable_result()->insert(r.result.begin(), r.result.end());
      reply(Json(200, ack));
    };
  }
  auto id = registry_->SendCommand(vm_id, std::move(cmd), std::move(done));
  if (!id.ok()) {
    const int code = id.status().code() == absl::StatusCode::kResourceExhausted ? 429 : 400;
    return reply(JsonError(code, code == 429 ? "too_many_pending" : "bad_request",
                           std::string(id.status().message())));
  }
  if (wait > Duration::zero()) {
    std::lock_guard l(mu_);
    waits_.emplace(clock_->Now() + wait, reply);  // whichever answers first wins
    return;
  }
  reply(HttpResponse{202, "{\"id\":\"" + *id + "\"}", "application/json"});
}

void AgentHttpApi::Tick() {
  std::vector<HttpReply> expired;
  {
    std::lock_guard l(mu_);
    const MonoTime now = clock_->Now();
    while (!waits_.empty() && waits_.begin()->first <= now) {
      expired.push_back(std::move(waits_.begin()->second));
      waits_.erase(waits_.begin());
    }
  }
  for (auto& r : expired) r(JsonError(504, "no_ack", "no ack within the wait time"));
}

}  // namespace miglet
