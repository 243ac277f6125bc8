#include "miglet/operator/api/v1alpha1.h"

#include <algorithm>
#include <ctime>

namespace miglet::api {

namespace {

// Reads fields of one object, remembering the first error with its path. Absent fields keep
// the default already in the target; present ones of the wrong type are errors.
class Reader {
 public:
  explicit Reader(std::string what) : what_(std::move(what)) {}

  const Json* At(const Json& obj, const std::string& path, const char* key) {
    if (!obj.is_object() || !obj.contains(key) || obj[key].is_null()) return nullptr;
    return &obj[key];
  }
  void Str(const Json& obj, const std::string& path, const char* key, std::string* out) {
    if (const Json* v = At(obj, path, key)) {
      if (v->is_string()) {
        *out = v->get<std::string>();
      } else {
        Fail(path + key, "want a string");
      }
    }
  }
  template <typename T>
  void Int(const Json& obj, const std::string& path, const char* key, T* out) {
    if (const Json* v = At(obj, path, key)) {
      if (v->is_number_integer()) {
        *out = v->get<T>();
      } else {
        Fail(path + key, "want an integer");
      }
    }
  }
  void Num(const Json& obj, const std::string& path, const char* key, double* out) {
    if (const Json* v = At(obj, path, key)) {
      if (v->is_number()) {
        *out = v->get<double>();
      } else {
        Fail(path + key, "want a number");
      }
    }
  }
  void Bool(const Json& obj, const std::string& path, const char* key, bool* out) {
    if (const Json* v = At(obj, path, key)) {
      if (v->is_boolean()) {
        *out = v->get<bool>();
      } else {
        Fail(path + key, "want true or false");
      }
    }
  }
  void Strings(const Json& obj, const std::string& path, const char* key,
               std::vector<std::string>* out) {
    if (const Json* v = At(obj, path, key)) {
      if (!v->is_array()) return Fail(path + key, "want a list of strings");
      out->clear();
      for (const auto& item : *v) {
        if (!item.is_string()) return Fail(path + key, "want a list of strings");
        out->push_back(item.get<std::string>());
      }
    }
  }
  void StringMap(const Json& obj, const std::string& path, const char* key,
                 std::map<std::string, std::string>* out) {
    if (const Json* v = At(obj, path, key)) {
      if (!v->is_object()) return Fail(path + key, "want a map of strings");
      for (const auto& [k, item] : v->items()) {
        if (!item.is_string()) return Fail(path + key + "." + k, "want a string");
        (*out)[k] = item.get<std::string>();
      }
    }
  }
  // The object at `key` (or an empty one when absent); an error when it is not an object.
  const Json& Obj(const Json& obj, const std::string& path, const char* key) {
    static const Json kEmpty = Json::object();
    const Json* v = At(obj, path, key);
    if (v == nullptr) return kEmpty;
    if (!v->is_object()) {
      Fail(path + key, "want an object");
      return kEmpty;
    }
    return *v;
  }
  std::optional<SecretRef> Ref(const Json& obj, const std::string& path, const char* key) {
    const Json* v = At(obj, path, key);
    if (v == nullptr) return std::nullopt;
    SecretRef r;
    Str(Obj(obj, path, key), path + key + ".", "name", &r.name);
    if (r.name.empty()) Fail(path + key + ".name", "required");
    return r;
  }
  template <typename E>
  void Enum(const Json& obj, const std::string& path, const char* key,
            std::initializer_list<std::pair<const char*, E>> values, E* out) {
    std::string s;
    Str(obj, path, key, &s);
    if (s.empty()) return;
    for (const auto& [name, e] : values) {
      if (s == name) {
        *out = e;
        return;
      }
    }
    Fail(path + key, "unknown value \"" + s + "\"");
  }
  void Conditions(const Json& obj, const std::string& path, std::vector<Condition>* out) {
    const Json* v = At(obj, path, "conditions");
    if (v == nullptr) return;
    if (!v->is_array()) return Fail(path + "conditions", "want a list");
    for (size_t i = 0; i < v->size(); ++i) {
      const std::string p = path + "conditions[" + std::to_string(i) + "].";
      Condition c;
      Str((*v)[i], p, "type", &c.type);
      Str((*v)[i], p, "status", &c.status);
      Str((*v)[i], p, "reason", &c.reason);
      Str((*v)[i], p, "message", &c.message);
      Str((*v)[i], p, "lastTransitionTime", &c.last_transition_time);
      Int((*v)[i], p, "observedGeneration", &c.observed_generation);
      out->push_back(std::move(c));
    }
  }
  void Fail(const std::string& field, const std::string& why) {
    if (error_.ok()) error_ = absl::InvalidArgumentError(what_ + ": " + field + ": " + why);
  }
  const absl::Status& error() const { return error_; }

 private:
  std::string what_;
  absl::Status error_;
};

ObjectMeta DecodeMeta(const Json& obj, Reader& r) {
  ObjectMeta m;
  const Json& md = r.Obj(obj, "", "metadata");
  r.Str(md, "metadata.", "name", &m.name);
  r.Str(md, "metadata.", "namespace", &m.ns);
  r.Str(md, "metadata.", "uid", &m.uid);
  r.Str(md, "metadata.", "resourceVersion", &m.resource_version);
  r.Int(md, "metadata.", "generation", &m.generation);
  r.Str(md, "metadata.", "creationTimestamp", &m.creation_timestamp);
  std::string deletion;
  r.Str(md, "metadata.", "deletionTimestamp", &deletion);
  if (!deletion.empty()) m.deletion_timestamp = deletion;
  r.StringMap(md, "metadata.", "labels", &m.labels);
  r.StringMap(md, "metadata.", "annotations", &m.annotations);
  r.Strings(md, "metadata.", "finalizers", &m.finalizers);
  if (md.contains("ownerReferences") && md["ownerReferences"].is_array()) {
    for (const auto& o : md["ownerReferences"]) {
      OwnerReference ref;
      r.Str(o, "metadata.ownerReferences.", "apiVersion", &ref.api_version);
      r.Str(o, "metadata.ownerReferences.", "kind", &ref.kind);
      r.Str(o, "metadata.ownerReferences.", "name", &ref.name);
      r.Str(o, "metadata.ownerReferences.", "uid", &ref.uid);
      r.Bool(o, "metadata.ownerReferences.", "controller", &ref.controller);
      m.owner_references.push_back(std::move(ref));
    }
  }
  return m;
}

std::string What(const char* kind, const Json& obj) {
  std::string ns, name;
  if (obj.is_object() && obj.contains("metadata") && obj["metadata"].is_object()) {
    const Json& md = obj["metadata"];
    if (md.contains("namespace") && md["namespace"].is_string()) ns = md["namespace"];
    if (md.contains("name") && md["name"].is_string()) name = md["name"];
  }
  return std::string(kind) + " " + (ns.empty() ? name : ns + "/" + name);
}

Json EncodeConditions(const std::vector<Condition>& conds) {
  Json out = Json::array();
  for (const auto& c : conds) {
    out.push_back({{"type", c.type},
                   {"status", c.status},
                   {"reason", c.reason},
                   {"message", c.message},
                   {"lastTransitionTime", c.last_transition_time},
                   {"observedGeneration", c.observed_generation}});
  }
  return out;
}

}  // namespace

bool ObjectMeta::HasFinalizer(const std::string& f) const {
  return std::find(finalizers.begin(), finalizers.end(), f) != finalizers.end();
}

std::string FormatTime(WallTime t) {
  const std::time_t s = std::chrono::system_clock::to_time_t(t);
  char buf[32];
  std::tm tm{};
  gmtime_r(&s, &tm);
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

bool SetCondition(std::vector<Condition>& conds, Condition c, WallTime now) {
  for (auto& existing : conds) {
    if (existing.type != c.type) continue;
    const bool status_changed = existing.status != c.status;
    const bool changed = status_changed || existing.reason != c.reason ||
                         existing.message != c.message ||
                         existing.observed_generation != c.observed_generation;
    c.last_transition_time = status_changed || existing.last_transition_time.empty()
                                 ? FormatTime(now)
                                 : existing.last_transition_time;
    existing = std::move(c);
    return changed;
  }
  c.last_transition_time = FormatTime(now);
  conds.push_back(std::move(c));
  return true;
}

const Condition* FindCondition(const std::vector<Condition>& conds, const std::string& type) {
  for (const auto& c : conds) {
    if (c.type == type) return &c;
  }
  return nullptr;
}

std::string_view DesiredStateName(DesiredState s) {
  switch (s) {
    case DesiredState::kRunning:
      return "Running";
    case DesiredState::kDrained:
      return "Drained";
    case DesiredState::kShutdown:
      return "Shutdown";
  }
  return "Running";
}

absl::StatusOr<RunnerPool> DecodeRunnerPool(const Json& obj) {
  Reader r(What("RunnerPool", obj));
  RunnerPool p;
  p.meta = DecodeMeta(obj, r);
  const Json& spec = r.Obj(obj, "", "spec");
  r.Int(spec, "spec.", "replicas", &p.spec.replicas);
  if (p.spec.replicas < 0) r.Fail("spec.replicas", "must not be negative");
  r.Enum(spec, "spec.", "provider",
         {std::pair{"pod", Provider::kPod}, std::pair{"external", Provider::kExternal}},
         &p.spec.provider);
  const Json& gh = r.Obj(spec, "spec.", "github");
  r.Str(gh, "spec.github.", "url", &p.spec.github.url);
  if (p.spec.github.url.empty()) r.Fail("spec.github.url", "required");
  p.spec.github.app_secret = r.Ref(gh, "spec.github.", "appSecretRef");
  p.spec.github.token_secret = r.Ref(gh, "spec.github.", "tokenSecretRef");
  if (p.spec.github.app_secret.has_value() == p.spec.github.token_secret.has_value()) {
    r.Fail("spec.github", "exactly one of appSecretRef and tokenSecretRef must be set");
  }
  r.Str(gh, "spec.github.", "runnerGroup", &p.spec.github.runner_group);
  const Json& runner = r.Obj(spec, "spec.", "runner");
  r.Strings(runner, "spec.runner.", "labels", &p.spec.runner.labels);
  r.Bool(runner, "spec.runner.", "ephemeral", &p.spec.runner.ephemeral);
  r.Str(runner, "spec.runner.", "workFolder", &p.spec.runner.work_folder);
  r.Str(runner, "spec.runner.", "image", &p.spec.runner.image);
  if (runner.contains("resources") && runner["resources"].is_object()) {
    p.spec.runner.resources = runner["resources"];
  }
  const Json& agent = r.Obj(spec, "spec.", "agent");
  r.Str(agent, "spec.agent.", "image", &p.spec.agent.image);
  r.Str(agent, "spec.agent.", "logLevel", &p.spec.agent.log_level);
  r.Str(agent, "spec.agent.", "heartbeatInterval", &p.spec.agent.heartbeat_interval);
  const Json& ctl = r.Obj(spec, "spec.", "controller");
  r.Str(ctl, "spec.controller.", "grpcEndpoint", &p.spec.controller.grpc_endpoint);
  p.spec.controller.ca_secret = r.Ref(ctl, "spec.controller.", "caSecretRef");
  r.Int(r.Obj(spec, "spec.", "scaleDown"), "spec.scaleDown.", "drainTimeoutSeconds",
        &p.spec.drain_timeout_seconds);
  if (p.spec.drain_timeout_seconds < 0) {
    r.Fail("spec.scaleDown.drainTimeoutSeconds", "must not be negative");
  }
  r.Enum(spec, "spec.", "replacePolicy",
         {std::pair{"Replace", ReplacePolicy::kReplace}, std::pair{"Keep", ReplacePolicy::kKeep}},
         &p.spec.replace_policy);

  const Json& st = r.Obj(obj, "", "status");
  r.Int(st, "status.", "observedGeneration", &p.status.observed_generation);
  r.Int(st, "status.", "replicas", &p.status.replicas);
  r.Int(st, "status.", "readyReplicas", &p.status.ready_replicas);
  r.Int(st, "status.", "idleRunners", &p.status.idle_runners);
  r.Int(st, "status.", "busyRunners", &p.status.busy_runners);
  r.Str(st, "status.", "selector", &p.status.selector);
  r.Conditions(st, "status.", &p.status.conditions);
  if (!r.error().ok()) return r.error();
  return p;
}

absl::StatusOr<RunnerVM> DecodeRunnerVM(const Json& obj) {
  Reader r(What("RunnerVM", obj));
  RunnerVM vm;
  vm.meta = DecodeMeta(obj, r);
  const Json& spec = r.Obj(obj, "", "spec");
  r.Str(spec, "spec.", "poolName", &vm.spec.pool_name);
  if (vm.spec.pool_name.empty()) r.Fail("spec.poolName", "required");
  r.Enum(
      spec, "spec.", "desiredState",
      {std::pair{"Running", DesiredState::kRunning}, std::pair{"Drained", DesiredState::kDrained},
       std::pair{"Shutdown", DesiredState::kShutdown}},
      &vm.spec.desired_state);
  r.Str(spec, "spec.", "logLevel", &vm.spec.log_level);
  r.StringMap(spec, "spec.", "config", &vm.spec.config);

  const Json& st = r.Obj(obj, "", "status");
  auto& s = vm.status;
  r.Int(st, "status.", "observedGeneration", &s.observed_generation);
  r.Str(st, "status.", "phase", &s.phase);
  const Json& agent = r.Obj(st, "status.", "agent");
  r.Bool(agent, "status.agent.", "connected", &s.agent.connected);
  r.Str(agent, "status.agent.", "version", &s.agent.version);
  r.Str(agent, "status.agent.", "state", &s.agent.state);
  r.Str(agent, "status.agent.", "transport", &s.agent.transport);
  r.Str(agent, "status.agent.", "lastSeen", &s.agent.last_seen);
  r.Str(agent, "status.agent.", "logLevel", &s.agent.log_level);
  r.Str(agent, "status.agent.", "heartbeatInterval", &s.agent.heartbeat_interval);
  r.StringMap(agent, "status.agent.", "config", &s.agent.config);
  const Json& runner = r.Obj(st, "status.", "runner");
  r.Str(runner, "status.runner.", "name", &s.runner.name);
  r.Int(runner, "status.runner.", "id", &s.runner.id);
  r.Strings(runner, "status.runner.", "labels", &s.runner.labels);
  r.Bool(runner, "status.runner.", "ephemeral", &s.runner.ephemeral);
  r.Str(runner, "status.runner.", "registeredAt", &s.runner.registered_at);
  const Json& job = r.Obj(st, "status.", "job");
  r.Str(job, "status.job.", "id", &s.job.id);
  r.Str(job, "status.job.", "runId", &s.job.run_id);
  r.Str(job, "status.job.", "repository", &s.job.repository);
  r.Str(job, "status.job.", "startedAt", &s.job.started_at);
  const Json& health = r.Obj(st, "status.", "health");
  r.Num(health, "status.health.", "cpuPercent", &s.health.cpu_percent);
  r.Num(health, "status.health.", "memoryPercent", &s.health.memory_percent);
  r.Num(health, "status.health.", "diskPercent", &s.health.disk_percent);
  const Json& cmd = r.Obj(st, "status.", "lastCommand");
  r.Str(cmd, "status.lastCommand.", "id", &s.last_command.id);
  r.Str(cmd, "status.lastCommand.", "type", &s.last_command.type);
  r.Bool(cmd, "status.lastCommand.", "success", &s.last_command.success);
  r.Str(cmd, "status.lastCommand.", "message", &s.last_command.message);
  r.Str(cmd, "status.lastCommand.", "time", &s.last_command.time);
  r.Str(st, "status.", "podName", &s.pod_name);
  r.Int(st, "status.", "registrations", &s.registrations);
  r.Conditions(st, "status.", &s.conditions);
  if (!r.error().ok()) return r.error();
  return vm;
}

Json EncodeStatus(const RunnerPoolStatus& s) {
  Json st = {{"observedGeneration", s.observed_generation},
             {"replicas", s.replicas},
             {"readyReplicas", s.ready_replicas},
             {"idleRunners", s.idle_runners},
             {"busyRunners", s.busy_runners},
             {"selector", s.selector},
             {"conditions", EncodeConditions(s.conditions)}};
  return {{"status", st}};
}

Json EncodeStatus(const RunnerVMStatus& s) {
  Json st = {{"observedGeneration", s.observed_generation}};
  if (!s.phase.empty()) st["phase"] = s.phase;  // an enum: "" is not one of its values
  st["agent"] = {{"connected", s.agent.connected},
                 {"version", s.agent.version},
                 {"state", s.agent.state},
                 {"transport", s.agent.transport}};
  if (!s.agent.last_seen.empty()) st["agent"]["lastSeen"] = s.agent.last_seen;
  if (!s.agent.log_level.empty()) st["agent"]["logLevel"] = s.agent.log_level;
  if (!s.agent.heartbeat_interval.empty()) {
    st["agent"]["heartbeatInterval"] = s.agent.heartbeat_interval;
  }
  if (!s.agent.config.empty()) st["agent"]["config"] = s.agent.config;
  st["runner"] = {{"name", s.runner.name},
                  {"id", s.runner.id},
                  {"labels", s.runner.labels},
                  {"ephemeral", s.runner.ephemeral}};
  if (!s.runner.registered_at.empty()) st["runner"]["registeredAt"] = s.runner.registered_at;
  st["job"] = {{"id", s.job.id}, {"runId", s.job.run_id}, {"repository", s.job.repository}};
  if (!s.job.started_at.empty()) st["job"]["startedAt"] = s.job.started_at;
  st["health"] = {{"cpuPercent", s.health.cpu_percent},
                  {"memoryPercent", s.health.memory_percent},
                  {"diskPercent", s.health.disk_percent}};
  if (!s.last_command.id.empty()) {
    st["lastCommand"] = {{"id", s.last_command.id},
                         {"type", s.last_command.type},
                         {"success", s.last_command.success},
                         {"message", s.last_command.message}};
    if (!s.last_command.time.empty()) st["lastCommand"]["time"] = s.last_command.time;
  }
  if (!s.pod_name.empty()) st["podName"] = s.pod_name;
  if (s.registrations > 0) st["registrations"] = s.registrations;
  st["conditions"] = EncodeConditions(s.conditions);
  return {{"status", st}};
}

Json EncodeRunnerVM(const RunnerVM& vm) {
  Json md = {{"name", vm.meta.name}};
  if (!vm.meta.ns.empty()) md["namespace"] = vm.meta.ns;
  if (!vm.meta.labels.empty()) md["labels"] = vm.meta.labels;
  if (!vm.meta.annotations.empty()) md["annotations"] = vm.meta.annotations;
  if (!vm.meta.finalizers.empty()) md["finalizers"] = vm.meta.finalizers;
  if (!vm.meta.owner_references.empty()) {
    Json refs = Json::array();
    for (const auto& o : vm.meta.owner_references) {
      refs.push_back({{"apiVersion", o.api_version},
                      {"kind", o.kind},
                      {"name", o.name},
                      {"uid", o.uid},
                      {"controller", o.controller},
                      {"blockOwnerDeletion", true}});
    }
    md["ownerReferences"] = refs;
  }
  Json spec = {{"poolName", vm.spec.pool_name},
               {"desiredState", std::string(DesiredStateName(vm.spec.desired_state))}};
  if (!vm.spec.log_level.empty()) spec["logLevel"] = vm.spec.log_level;
  if (!vm.spec.config.empty()) spec["config"] = vm.spec.config;
  return {{"apiVersion", kGroupVersion}, {"kind", "RunnerVM"}, {"metadata", md}, {"spec", spec}};
}

}  // namespace miglet::api
