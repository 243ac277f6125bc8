#include "miglet/commands/field_json.h"

#include <google/protobuf/util/json_util.h>

#include <cmath>
#include <ctime>
#include <nlohmann/json.hpp>

namespace miglet::fieldjson {

namespace {

using json = nlohmann::json;
using ojson = nlohmann::ordered_json;
namespace pbu = google::protobuf::util;

constexpr double kMiB = 1024.0 * 1024.0;
constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;

absl::Status Invalid(std::string_view what, std::string_view why) {
  return absl::InvalidArgumentError(std::string(what) + ": " + std::string(why));
}

absl::StatusOr<json> ParseObject(std::string_view body, std::string_view what) {
  if (body.empty()) return Invalid(what, "the request body is empty");
  json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Invalid(what, "invalid JSON");
  if (!j.is_object()) return Invalid(what, "the body must be a JSON object");
  return j;
}

// Whether `d` converts to int64 exactly (-2^63 <= d < 2^63, no fraction; false for NaN).
bool IntegralInt64(double d) {
  return d >= -9223372036854775808.0 && d < 9223372036854775808.0 && std::trunc(d) == d;
}

// A detail value as the proto's string maps keep it.
std::string ToText(const json& v) {
  switch (v.type()) {
    case json::value_t::string:
      return v.get<std::string>();
    case json::value_t::boolean:
      return v.get<bool>() ? "true" : "false";
    case json::value_t::number_integer:
      return std::to_string(v.get<int64_t>());
    case json::value_t::number_unsigned:
      return std::to_string(v.get<uint64_t>());
    case json::value_t::number_float: {
      const double d = v.get<double>();
      if (IntegralInt64(d)) return std::to_string(static_cast<int64_t>(d));
      return v.dump();
    }
    case json::value_t::null:
      return "";
    case json::value_t::array: {
      std::string out;
      for (const auto& e : v) out += (out.empty() ? "" : ",") + ToText(e);
      return out;
    }
    default:
      return v.dump();
  }
}

// An optional string key: absent or null is "", a number or boolean is its text, anything
// else is an error naming the key.
absl::StatusOr<std::string> Str(const json& obj, const char* key, std::string_view what) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return std::string();
  if (it->is_object() || it->is_array()) {
    return Invalid(what, std::string(key) + " must be a string");
  }
  return ToText(*it);
}

// Several optional string keys of `obj` into their fields; the first bad one is the error.
absl::Status Strs(const json& obj, std::initializer_list<std::pair<const char*, std::string*>> keys,
                  std::string_view what) {
  for (const auto& [key, out] : keys) {
    auto v = Str(obj, key, what);
    if (!v.ok()) return v.status();
    *out = std::move(*v);
  }
  return absl::OkStatus();
}

// A time: RFC 3339 (the field form) or unix seconds (the proto form). Absent or null is 0.
absl::StatusOr<int64_t> Time(const json& obj, const char* key, std::string_view what) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return int64_t{0};
  if (it->is_string()) {
    const std::string s = it->get<std::string>();
    if (s.empty()) return int64_t{0};
    // The proto JSON form writes int64 as a string of digits.
    if (s.find_first_not_of("0123456789") == std::string::npos && s.size() < 19) {
      return static_cast<int64_t>(std::stoll(s));
    }
    auto t = ParseRfc3339(s);
    if (!t.ok()) return Invalid(what, std::string(key) + ": " + std::string(t.status().message()));
    return *t;
  }
  if (it->is_number()) {
    const double d = it->get<double>();
    if (!IntegralInt64(std::trunc(d))) return Invalid(what, std::string(key) + " is out of range");
    return static_cast<int64_t>(d);
  }
  return Invalid(what, std::string(key) + " must be an RFC 3339 time (or unix seconds)");
}

absl::Status ProtoFromJson(const json& v, google::protobuf::Message* m, std::string_view what,
                           const char* key) {
  pbu::JsonParseOptions o;
  o.ignore_unknown_fields = true;
  auto st = pbu::JsonStringToMessage(v.dump(), m, o);
  if (!st.ok()) return Invalid(what, std::string(key) + ": " + st.ToString());
  return absl::OkStatus();
}

json ProtoToJson(const google::protobuf::Message& m) {
  pbu::JsonPrintOptions o;
  o.preserve_proto_field_names = true;
  o.always_print_primitive_fields = true;
  std::string out;
  (void)pbu::MessageToJsonString(m, &out, o);
  return json::parse(out, nullptr, false);
}

bool IsEventBaseKey(const std::string& k) {
  return k == "type" || k == "timestamp" || k == "vm_id" || k == "pool_id" || k == "org_id" ||
         k == "metadata" || k == "data";
}

std::vector<std::string> SplitLabels(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size() && !s.empty()) {
    size_t comma = s.find(',', start);
    if (comma == std::string::npos) comma = s.size();
    if (comma > start) out.push_back(s.substr(start, comma - start));
    start = comma + 1;
  }
  return out;
}

// A detail from `data` typed as the field agents type it.
ojson AsInt(const std::map<std::string, std::string>& d, const std::string& k) {
  auto it = d.find(k);
  if (it == d.end() || it->second.empty()) return 0;
  char* end = nullptr;
  const long long v = std::strtoll(it->second.c_str(), &end, 10);
  if (end != nullptr && *end == '\0') return static_cast<int64_t>(v);
  return it->second;  // not a number: kept as sent rather than lost
}
ojson AsNumber(const std::map<std::string, std::string>& d, const std::string& k) {
  auto it = d.find(k);
  if (it == d.end() || it->second.empty()) return 0;
  char* end = nullptr;
  const double v = std::strtod(it->second.c_str(), &end);
  if (end != nullptr && *end == '\0' && std::isfinite(v)) {
    if (IntegralInt64(v)) return static_cast<int64_t>(v);
    return v;
  }
  return it->second;
}
std::string AsStr(const std::map<std::string, std::string>& d, const std::string& k) {
  auto it = d.find(k);
  return it == d.end() ? std::string() : it->second;
}

ojson RegistrationFields(const Registration& r) {
  ojson o = ojson::object();
  o["registration_token"] = r.registration_token;
  o["runner_url"] = r.runner_url;
  o["runner_group"] = r.runner_group;
  o["labels"] = r.labels;
  o["expires_at"] = r.expires_at > 0 ? Rfc3339(r.expires_at) : "";
  if (!r.runner_name.empty()) o["runner_name"] = r.runner_name;
  return o;
}

}  // namespace

std::string Rfc3339(int64_t unix_seconds) {
  const std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

absl::StatusOr<int64_t> ParseRfc3339(std::string_view s) {
  auto bad = [&] {
    return absl::InvalidArgumentError("\"" + std::string(s.substr(0, 64)) +
                                      "\" is not an RFC 3339 time (2026-11-27T12:00:00Z)");
  };
  auto digits = [&](size_t at, size_t n, int* out) {
    if (at + n > s.size()) return false;
    int v = 0;
    for (size_t i = at; i < at + n; ++i) {
      if (s[i] < '0' || s[i] > '9') return false;
      v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
  };
  std::tm tm{};
  int year, mon, day, hour, min, sec;
  if (!digits(0, 4, &year) || s.size() < 20 || s[4] != '-' || !digits(5, 2, &mon) || s[7] != '-' ||
      !digits(8, 2, &day) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
      !digits(11, 2, &hour) || s[13] != ':' || !digits(14, 2, &min) || s[16] != ':' ||
      !digits(17, 2, &sec)) {
    return bad();
  }
  if (mon < 1 || mon > 12 || day < 1 || day > 31 || hour > 23 || min > 59 || sec > 60) {
    return bad();
  }
  size_t at = 19;
  if (at < s.size() && s[at] == '.') {
    ++at;
    const size_t start = at;
    while (at < s.size() && s[at] >= '0' && s[at] <= '9') ++at;
    if (at == start) return bad();
  }
  int64_t offset = 0;
  if (at < s.size() && (s[at] == 'Z' || s[at] == 'z')) {
    ++at;
  } else if (at < s.size() && (s[at] == '+' || s[at] == '-')) {
    int oh, om;
    if (!digits(at + 1, 2, &oh) || at + 3 >= s.size() || s[at + 3] != ':' ||
        !digits(at + 4, 2, &om) || oh > 23 || om > 59) {
      return bad();
    }
    offset = (s[at] == '+' ? 1 : -1) * (oh * 3600 + om * 60);
    at += 6;
  } else {
    return bad();  // RFC 3339 requires the offset
  }
  if (at != s.size()) return bad();
  tm.tm_year = year - 1900;
  tm.tm_mon = mon - 1;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = min;
  tm.tm_sec = sec;
  return static_cast<int64_t>(timegm(&tm)) - offset;
}

absl::StatusOr<commands::EventNotification> ParseEvent(std::string_view body) {
  constexpr std::string_view kWhat = "event";
  auto j = ParseObject(body, kWhat);
  if (!j.ok()) return j.status();
  commands::EventNotification ev;
  auto type = j->find("type");
  if (type == j->end() || !type->is_string() || type->get<std::string>().empty()) {
    return Invalid(kWhat, "type is required (a string)");
  }
  ev.set_type(type->get<std::string>());
  if (auto st = Strs(*j,
                     {{"vm_id", ev.mutable_vm_id()},
                      {"pool_id", ev.mutable_pool_id()},
                      {"org_id", ev.mutable_org_id()}},
                     kWhat);
      !st.ok()) {
    return st;
  }
  auto ts = Time(*j, "timestamp", kWhat);
  if (!ts.ok()) return ts.status();
  ev.set_timestamp(*ts);
  auto& data = *ev.mutable_data();
  for (const char* key : {"data", "metadata"}) {
    auto it = j->find(key);
    if (it == j->end() || it->is_null()) continue;
    if (!it->is_object()) return Invalid(kWhat, std::string(key) + " must be an object");
    for (const auto& [k, v] : it->items()) data.insert({k, ToText(v)});
  }
  for (const auto& [k, v] : j->items()) {
    if (!IsEventBaseKey(k)) data.insert({k, ToText(v)});
  }
  return ev;
}

absl::StatusOr<commands::Heartbeat> ParseHeartbeat(std::string_view body) {
  constexpr std::string_view kWhat = "heartbeat";
  auto j = ParseObject(body, kWhat);
  if (!j.ok()) return j.status();
  commands::Heartbeat hb;
  if (auto st = Strs(*j,
                     {{"vm_id", hb.mutable_vm_id()},
                      {"pool_id", hb.mutable_pool_id()},
                      {"org_id", hb.mutable_org_id()},
                      {"miglet_state", hb.mutable_miglet_state()}},
                     kWhat);
      !st.ok()) {
    return st;
  }
  auto ts = Time(*j, "timestamp", kWhat);
  if (!ts.ok()) return ts.status();
  hb.set_timestamp(*ts);

  if (auto it = j->find("runner_state"); it != j->end() && !it->is_null()) {
    if (it->is_string()) {
      std::string state = it->get<std::string>();
      if (state == "stopped") state = "offline";
      hb.mutable_runner_state()->set_state(state);
      hb.mutable_runner_state()->set_configured(state == "idle" || state == "running");
    } else if (it->is_object()) {
      if (auto st = ProtoFromJson(*it, hb.mutable_runner_state(), kWhat, "runner_state");
          !st.ok()) {
        return st;
      }
    } else {
      return Invalid(kWhat, "runner_state must be a string (idle, running, offline, stopped)");
    }
  }
  if (auto it = j->find("runner"); it != j->end() && !it->is_null()) {
    if (!it->is_object()) return Invalid(kWhat, "runner must be an object");
    commands::RunnerState r;
    if (auto st = ProtoFromJson(*it, &r, kWhat, "runner"); !st.ok()) return st;
    if (r.state().empty()) r.set_state(hb.runner_state().state());
    *hb.mutable_runner_state() = std::move(r);
  }

  if (auto it = j->find("health"); it != j->end() && !it->is_null()) {
    if (!it->is_object()) return Invalid(kWhat, "health must be an object");
    if (auto st = ProtoFromJson(*it, hb.mutable_health(), kWhat, "health"); !st.ok()) return st;
  } else if (auto vh = j->find("vm_health"); vh != j->end() && !vh->is_null()) {
    if (!vh->is_object()) return Invalid(kWhat, "vm_health must be an object");
    auto num = [&](const char* k) -> absl::StatusOr<double> {
      auto f = vh->find(k);
      if (f == vh->end() || f->is_null()) return 0.0;
      if (!f->is_number())
        return Invalid(kWhat, std::string("vm_health.") + k + " must be a number");
      return f->get<double>();
    };
    auto cpu = num("cpu_load"), mu = num("memory_used"), mt = num("memory_total"),
         du = num("disk_used"), dt = num("disk_total");
    for (const auto* v : {&cpu, &mu, &mt, &du, &dt}) {
      if (!v->ok()) return v->status();
    }
    auto* h = hb.mutable_health();
    h->set_cpu_usage_percent(*cpu);
    h->set_memory_used_bytes(static_cast<int64_t>(*mu * kMiB));
    h->set_memory_total_bytes(static_cast<int64_t>(*mt * kMiB));
    h->set_disk_used_bytes(static_cast<int64_t>(*du * kGiB));
    h->set_disk_total_bytes(static_cast<int64_t>(*dt * kGiB));
    if (*mt > 0) h->set_memory_usage_percent(100.0 * *mu / *mt);
    if (*dt > 0) h->set_disk_usage_percent(100.0 * *du / *dt);
  }

  if (auto it = j->find("current_job"); it != j->end() && !it->is_null()) {
    if (!it->is_object()) return Invalid(kWhat, "current_job must be an object");
    auto* job = hb.mutable_current_job();
    if (auto st = Strs(*it,
                       {{"job_id", job->mutable_job_id()},
                        {"run_id", job->mutable_run_id()},
                        {"repository", job->mutable_repository()},
                        {"branch", job->mutable_branch()},
                        {"commit", job->mutable_commit()},
                        {"status", job->mutable_status()}},
                       "heartbeat: current_job");
        !st.ok()) {
      return st;
    }
    auto started = Time(*it, "started_at", "heartbeat: current_job");
    if (!started.ok()) return started.status();
    job->set_started_at(*started);
    // A field agent names a job it runs without a status.
    if (job->status().empty() && !job->job_id().empty()) job->set_status("running");
  }
  return hb;
}

std::string EventAnswer(std::string_view vm_id, std::string_view status, std::string_view message,
                        const Registration* registration) {
  ojson o = ojson::object();
  o["status"] = status;
  o["vm_id"] = vm_id;
  o["message"] = message;
  o["acknowledged"] = true;
  if (registration != nullptr) o.update(RegistrationFields(*registration));
  return o.dump();
}

std::string RegistrationAnswer(const Registration& r) {
  ojson o = ojson::object();
  o["registration_token"] = r.registration_token;
  o["expires_at"] = r.expires_at > 0 ? Rfc3339(r.expires_at) : "";
  o["runner_url"] = r.runner_url;
  o["runner_group"] = r.runner_group;
  o["labels"] = r.labels;
  if (!r.runner_name.empty()) o["runner_name"] = r.runner_name;
  return o.dump();
}

absl::StatusOr<RegistrationRequest> ParseRegistrationRequest(std::string_view body) {
  constexpr std::string_view kWhat = "registration-token";
  RegistrationRequest r;
  if (body.empty()) return r;  // every key is optional
  auto j = ParseObject(body, kWhat);
  if (!j.ok()) return j.status();
  if (auto st = Strs(
          *j, {{"org_id", &r.org_id}, {"pool_id", &r.pool_id}, {"runner_group", &r.runner_group}},
          kWhat);
      !st.ok()) {
    return st;
  }
  if (auto it = j->find("labels"); it != j->end() && !it->is_null()) {
    if (!it->is_array()) return Invalid(kWhat, "labels must be an array of strings");
    for (const auto& l : *it) {
      if (!l.is_string()) return Invalid(kWhat, "labels must be an array of strings");
      r.labels.push_back(l.get<std::string>());
    }
  }
  return r;
}

std::string CommandsAnswer(std::string_view vm_id, const std::vector<commands::Command>& cmds) {
  ojson out = ojson::object();
  out["vm_id"] = vm_id;
  ojson list = ojson::array();
  for (const auto& c : cmds) {
    ojson params = ojson::object();
    // Proto maps have no order: sorted, so the same command is always the same bytes.
    for (const auto& [k, v] : std::map(c.string_params().begin(), c.string_params().end())) {
      params[k] = v;
    }
    for (const auto& [k, v] : std::map(c.int_params().begin(), c.int_params().end())) {
      params[k] = v;
    }
    for (const auto& [k, v] : std::map(c.bool_params().begin(), c.bool_params().end())) {
      params[k] = v;
    }
    if (c.string_array_params_size() > 0 || c.type() == "register_runner") {
      params["labels"] =
          std::vector<std::string>(c.string_array_params().begin(), c.string_array_params().end());
    }
    ojson e = ojson::object();
    e["id"] = c.id();
    e["type"] = c.type();
    e["parameters"] = std::move(params);
    e["created_at"] = Rfc3339(c.created_at());
    list.push_back(std::move(e));
  }
  out["commands"] = std::move(list);
  return out.dump();
}

std::string EventBody(const commands::EventNotification& ev) {
  const std::map<std::string, std::string> d(ev.data().begin(), ev.data().end());
  ojson o = ojson::object();
  o["type"] = ev.type();
  o["timestamp"] = Rfc3339(ev.timestamp());
  o["vm_id"] = ev.vm_id();
  o["pool_id"] = ev.pool_id();
  o["org_id"] = ev.org_id();
  const std::string& t = ev.type();
  if (t == "vm_started") {
    for (const char* k : {"machine_type", "region"}) o[k] = AsStr(d, k);
    for (const char* k : {"cpu", "memory", "disk"}) o[k] = AsInt(d, k);
    for (const char* k : {"version", "build_time"}) o[k] = AsStr(d, k);
  } else if (t == "runner_registered") {
    o["runner_url"] = AsStr(d, "runner_url");
    o["runner_id"] = AsInt(d, "runner_id");
    o["labels"] = SplitLabels(AsStr(d, "labels"));
    o["runner_group"] = AsStr(d, "runner_group");
  } else if (t == "job_started") {
    for (const char* k : {"job_id", "run_id", "repository", "branch", "commit"}) {
      o[k] = AsStr(d, k);
    }
  } else if (t == "job_completed") {
    o["job_id"] = AsStr(d, "job_id");
    o["run_id"] = AsStr(d, "run_id");
    o["success"] = AsStr(d, "success") == "true";
    o["exit_code"] = AsInt(d, "exit_code");
    o["duration"] = AsNumber(d, "duration");
  }
  o["metadata"] = d;
  return o.dump();
}

std::string HeartbeatBody(const commands::Heartbeat& hb) {
  ojson o = ojson::object();
  o["type"] = "heartbeat";
  o["timestamp"] = Rfc3339(hb.timestamp());
  o["vm_id"] = hb.vm_id();
  o["pool_id"] = hb.pool_id();
  o["org_id"] = hb.org_id();
  o["miglet_state"] = hb.miglet_state();
  const auto& h = hb.health();
  ojson vh = ojson::object();
  vh["cpu_load"] = h.cpu_usage_percent();
  vh["memory_used"] = static_cast<int64_t>(std::llround(h.memory_used_bytes() / kMiB));
  vh["memory_total"] = static_cast<int64_t>(std::llround(h.memory_total_bytes() / kMiB));
  vh["disk_used"] = std::round(h.disk_used_bytes() / kGiB * 100) / 100;
  vh["disk_total"] = std::round(h.disk_total_bytes() / kGiB * 100) / 100;
  o["vm_health"] = std::move(vh);
  o["runner_state"] = hb.runner_state().state().empty() ? "offline" : hb.runner_state().state();
  if (!hb.current_job().job_id().empty()) {
    const auto& j = hb.current_job();
    ojson job = ojson::object();
    job["job_id"] = j.job_id();
    job["run_id"] = j.run_id();
    job["repository"] = j.repository();
    job["started_at"] = Rfc3339(j.started_at());
    job["branch"] = j.branch();
    job["commit"] = j.commit();
    job["status"] = j.status();
    o["current_job"] = std::move(job);
  }
  // miglet's own, beside: the runner's name, labels and configuration, and exact health.
  o["runner"] = ojson::parse(ProtoToJson(hb.runner_state()).dump());
  o["health"] = ojson::parse(ProtoToJson(hb.health()).dump());
  return o.dump();
}

absl::StatusOr<std::vector<PolledCommand>> ParseCommandsAnswer(std::string_view body) {
  constexpr std::string_view kWhat = "commands";
  auto j = ParseObject(body, kWhat);
  if (!j.ok()) return j.status();
  auto list = j->find("commands");
  if (list == j->end() || list->is_null()) return std::vector<PolledCommand>{};
  if (!list->is_array()) return Invalid(kWhat, "commands must be an array");
  std::vector<PolledCommand> out;
  for (const auto& e : *list) {
    PolledCommand pc;
    auto parse = [&]() -> absl::StatusOr<commands::Command> {
      if (!e.is_object()) return Invalid("command", "not a JSON object");
      auto id = e.find("id");
      if (id == e.end() || !id->is_string() || id->get<std::string>().empty()) {
        return Invalid("command", "id is required (a string)");
      }
      pc.id = id->get<std::string>();
      commands::Command c;
      c.set_id(pc.id);
      auto type = e.find("type");
      if (type == e.end() || !type->is_string() || type->get<std::string>().empty()) {
        return Invalid("command " + pc.id, "type is required (a string)");
      }
      c.set_type(type->get<std::string>());
      auto created = Time(e, "created_at", "command " + pc.id);
      if (!created.ok()) return created.status();
      c.set_created_at(*created);
      auto params = e.find("parameters");
      if (params != e.end() && !params->is_null()) {
        if (!params->is_object())
          return Invalid("command " + pc.id, "parameters must be an object");
        for (const auto& [k, v] : params->items()) {
          const std::string where = "command " + pc.id + ": parameter " + k;
          switch (v.type()) {
            case json::value_t::string:
              (*c.mutable_string_params())[k] = v.get<std::string>();
              break;
            case json::value_t::boolean:
              (*c.mutable_bool_params())[k] = v.get<bool>();
              break;
            case json::value_t::number_integer:
              (*c.mutable_int_params())[k] = v.get<int64_t>();
              break;
            case json::value_t::number_unsigned:
              if (v.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) {
                return Invalid(where, "out of range");
              }
              (*c.mutable_int_params())[k] = static_cast<int64_t>(v.get<uint64_t>());
              break;
            case json::value_t::number_float: {
              const double d = v.get<double>();
              if (!IntegralInt64(d)) return Invalid(where, "must be a whole number");
              (*c.mutable_int_params())[k] = static_cast<int64_t>(d);
              break;
            }
            case json::value_t::null:
              break;
            case json::value_t::array:
              if (c.string_array_params_size() > 0) {
                return Invalid(where, "a command carries one array (labels)");
              }
              for (const auto& s : v) {
                if (!s.is_string()) return Invalid(where, "must be an array of strings");
                c.add_string_array_params(s.get<std::string>());
              }
              break;
            default:
              return Invalid(where, "an object is not a parameter value");
          }
        }
      }
      // The proto JSON form older controllers answered with.
      bool proto_form = false;
      for (const char* k : {"string_params", "int_params", "bool_params", "string_array_params"}) {
        proto_form = proto_form || e.contains(k);
      }
      if (proto_form) {
        json p = json::object();
        for (const char* k :
             {"string_params", "int_params", "bool_params", "string_array_params"}) {
          if (e.contains(k)) p[k] = e[k];
        }
        commands::Command typed;
        if (auto st = ProtoFromJson(p, &typed, "command " + pc.id, "parameters"); !st.ok()) {
          return st;
        }
        c.MergeFrom(typed);
      }
      return c;
    };
    pc.command = parse();
    out.push_back(std::move(pc));
  }
  return out;
}

std::optional<Registration> RegistrationInAnswer(std::string_view body) {
  json j = json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  auto tok = j.find("registration_token");
  if (tok == j.end() || !tok->is_string() || tok->get<std::string>().empty()) return std::nullopt;
  Registration r;
  r.registration_token = tok->get<std::string>();
  if (auto v = Str(j, "runner_url", ""); v.ok()) r.runner_url = *v;
  if (auto v = Str(j, "runner_group", ""); v.ok()) r.runner_group = *v;
  if (auto v = Str(j, "runner_name", ""); v.ok()) r.runner_name = *v;
  if (auto v = Time(j, "expires_at", ""); v.ok()) r.expires_at = *v;
  if (auto it = j.find("labels"); it != j.end() && it->is_array()) {
    for (const auto& l : *it) {
      if (l.is_string()) r.labels.push_back(l.get<std::string>());
    }
  }
  return r;
}

}  // namespace miglet::fieldjson
