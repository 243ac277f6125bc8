#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "miglet/common/clock.h"
#include "nlohmann/json.hpp"

// miglet.dev/v1alpha1 as typed structs: what reconcilers work with instead of raw JSON. The CRD
// YAML (deploy/crds) is the one source of the schema; these mirror it, and decoding returns a
// Status naming the object and the field when an object does not fit (an object written before
// a schema change, say), never a crash. Defaults are the CRD's, for fields the apiserver has
// not defaulted.
namespace miglet::api {

using Json = nlohmann::json;

inline constexpr char kGroupVersion[] = "miglet.dev/v1alpha1";
inline constexpr char kFinalizer[] = "miglet.dev/finalizer";
inline constexpr char kPoolLabel[] = "miglet.dev/pool";  // on RunnerVMs and their Pods

struct OwnerReference {
  std::string api_version, kind, name, uid;
  bool controller = false;
};

struct ObjectMeta {
  std::string name;
  std::string ns;
  std::string uid;
  std::string resource_version;
  int64_t generation = 0;
  std::string creation_timestamp;  // RFC 3339, as the API gives it
  std::optional<std::string> deletion_timestamp;
  std::map<std::string, std::string> labels;
  std::map<std::string, std::string> annotations;
  std::vector<std::string> finalizers;
  std::vector<OwnerReference> owner_references;

  std::string Key() const { return ns.empty() ? name : ns + "/" + name; }
  bool HasFinalizer(const std::string& f) const;
  bool Deleting() const { return deletion_timestamp.has_value(); }
};

// metav1.Condition.
struct Condition {
  std::string type;
  std::string status;  // "True", "False", "Unknown"
  std::string reason;
  std::string message;
  std::string last_transition_time;  // RFC 3339
  int64_t observed_generation = 0;
};

// Sets `c` in `conds` by type, as apimachinery's meta.SetStatusCondition does: the transition
// time moves only when the status changes. Returns true when anything changed.
bool SetCondition(std::vector<Condition>& conds, Condition c, WallTime now);
const Condition* FindCondition(const std::vector<Condition>& conds, const std::string& type);

struct SecretRef {
  std::string name;
};

enum class Provider { kPod, kExternal };
enum class ReplacePolicy { kReplace, kKeep };

struct RunnerPoolSpec {
  int32_t replicas = 1;
  Provider provider = Provider::kPod;
  struct GitHub {
    std::string url;
    std::optional<SecretRef> app_secret;
    std::optional<SecretRef> token_secret;
    std::string runner_group = "Default";
  } github;
  struct Runner {
    std::vector<std::string> labels = {"self-hosted", "linux"};
    bool ephemeral = true;
    std::string work_folder = "_work";
    std::string image = "ghcr.io/actions/actions-runner:latest";
    Json resources = Json::object();
  } runner;
  struct Agent {
    std::string image = "ghcr.io/miglet/miglet-agent:0.1.0";
    std::string log_level = "info";
    std::string heartbeat_interval = "15s";
  } agent;
  struct Controller {
    std::string grpc_endpoint;
    std::optional<SecretRef> ca_secret;
  } controller;
  int64_t drain_timeout_seconds = 3600;
  ReplacePolicy replace_policy = ReplacePolicy::kReplace;
};

struct RunnerPoolStatus {
  int64_t observed_generation = 0;
  int32_t replicas = 0;
  int32_t ready_replicas = 0;
  int32_t idle_runners = 0;
  int32_t busy_runners = 0;
  std::string selector;
  std::vector<Condition> conditions;
};

struct RunnerPool {
  ObjectMeta meta;
  RunnerPoolSpec spec;
  RunnerPoolStatus status;
};

enum class DesiredState { kRunning, kDrained, kShutdown };
std::string_view DesiredStateName(DesiredState s);

struct RunnerVMSpec {
  std::string pool_name;
  DesiredState desired_state = DesiredState::kRunning;
  std::string log_level;  // "": the pool's
  std::map<std::string, std::string> config;
};

struct RunnerVMStatus {
  int64_t observed_generation = 0;
  std::string phase;
  struct Agent {
    bool connected = false;
    std::string version;
    std::string state;
    std::string transport;
    std::string last_seen;  // RFC 3339
    // Settings the agent has confirmed (by acking set_log_level / update_config).
    std::string log_level;
    std::string heartbeat_interval;
    std::map<std::string, std::string> config;
  } agent;
  struct Runner {
    std::string name;
    int64_t id = 0;
    std::vector<std::string> labels;
    bool ephemeral = false;
    std::string registered_at;
  } runner;
  struct Job {
    std::string id;
    std::string run_id;
    std::string repository;
    std::string started_at;
  } job;
  struct Health {
    double cpu_percent = 0;
    double memory_percent = 0;
    double disk_percent = 0;
  } health;
  struct LastCommand {
    std::string id;
    std::string type;
    bool success = false;
    std::string message;
    std::string time;
  } last_command;
  std::string pod_name;
  // register_runner commands sent (persisted before each is sent, so every one has its own id).
  int64_t registrations = 0;
  std::vector<Condition> conditions;
};

struct RunnerVM {
  ObjectMeta meta;
  RunnerVMSpec spec;
  RunnerVMStatus status;
};

// Decoding. Errors: INVALID_ARGUMENT "RunnerPool ns/name: spec.replicas: want an integer".
absl::StatusOr<RunnerPool> DecodeRunnerPool(const Json& obj);
absl::StatusOr<RunnerVM> DecodeRunnerVM(const Json& obj);

// The status as the /status subresource takes it ({"status": {...}} for a merge patch).
Json EncodeStatus(const RunnerPoolStatus& s);
Json EncodeStatus(const RunnerVMStatus& s);
// A RunnerVM object to create (spec only; metadata from `meta`).
Json EncodeRunnerVM(const RunnerVM& vm);

// RFC 3339 with seconds, UTC ("2026-11-27T13:00:00Z"), as Kubernetes writes times.
std::string FormatTime(WallTime t);

}  // namespace miglet::api
