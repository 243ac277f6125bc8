#pragma once

// The HTTP API's JSON, as the MIGlet agents deployed in the field send and expect it
// (../shared/design/wire-contract.md, "The JSON that agents in the field send and expect"):
// RFC 3339 timestamps, `metadata` and top-level detail keys on events, `runner_state` as a
// string and `vm_health` in MB/GB on heartbeats, and commands with one `parameters` object.
//
// Both sides use it: the controller reads what any agent sends (the field form, and the proto
// JSON form older miglet builds sent) and answers in the field form; the agent's HTTP fallback
// writes the field form, with what only miglet needs beside it under keys the field agents do
// not use (`runner`, `health`, `data`), never by changing a key they read.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "miglet/commands/commands.pb.h"

namespace miglet::fieldjson {

// "2026-11-27T12:00:00Z" for a unix time in seconds (UTC, no fraction).
std::string Rfc3339(int64_t unix_seconds);
// An RFC 3339 date-time ("2026-11-27T12:00:00Z", "...T12:00:00.5+01:00", lower-case t/z too)
// as unix seconds (fractions dropped). INVALID_ARGUMENT says what is wrong.
absl::StatusOr<int64_t> ParseRfc3339(std::string_view s);

// --- Controller side: what comes in -------------------------------------------------------

// An event body: the field form ({type, timestamp, vm_id, pool_id, org_id?, metadata?, plus
// top-level detail keys such as runner_url or job_id}) or the proto JSON form (`data`, unix
// `timestamp`). The details from `metadata`, `data` and the top level all go into `data`,
// as strings (an array as its elements joined by commas, an object as JSON).
absl::StatusOr<commands::EventNotification> ParseEvent(std::string_view body);

// A heartbeat body: the field form (`runner_state` a string, `vm_health` in MB/GB,
// RFC 3339 times) or the proto JSON form (`runner_state` an object, `health`). miglet's own
// `runner` object, sent beside the field's string, gives the runner's name, labels and
// whether it is configured. A field `runner_state` of "stopped" is "offline" here.
absl::StatusOr<commands::Heartbeat> ParseHeartbeat(std::string_view body);

// What the controller may hand an agent to register its runner (the answer to vm_started
// and to POST .../registration-token).
struct Registration {
  std::string registration_token;
  int64_t expires_at = 0;  // unix seconds; 0 when unknown
  std::string runner_url;
  std::string runner_group;
  std::vector<std::string> labels;
  // The runner name the controller expects; sent beside the field's keys when set.
  std::string runner_name;
};

// The answer to an event: {"status", "vm_id", "message", "acknowledged": true} and, when the
// controller wants the agent's runner registered, the registration fields beside them.
std::string EventAnswer(std::string_view vm_id, std::string_view status, std::string_view message,
                        const Registration* registration = nullptr);
// The answer to POST .../registration-token.
std::string RegistrationAnswer(const Registration& r);
// The registration-token request ({"org_id", "pool_id", "runner_group", "labels"}); every key
// is optional. INVALID_ARGUMENT for a body that is not a JSON object of those types.
struct RegistrationRequest {
  std::string org_id;
  std::string pool_id;
  std::string runner_group;
  std::vector<std::string> labels;
};
absl::StatusOr<RegistrationRequest> ParseRegistrationRequest(std::string_view body);

// The command poll's answer: {"vm_id", "commands": [{"id", "type", "parameters": {...},
// "created_at": RFC 3339}]}. `parameters` holds every typed map by its value's JSON type:
// string_params as strings, int_params as integers, bool_params as booleans, and
// string_array_params as the array `labels`.
std::string CommandsAnswer(std::string_view vm_id, const std::vector<commands::Command>& cmds);

// --- Agent side: what goes out and what comes back ----------------------------------------

// The field form of an event. `data` is sent as `metadata` (strings, as miglet keeps them) and
// the details the field agents put at the top level are put there as well, typed as they type
// them (for runner_registered: runner_url, runner_id, labels, runner_group; for job_started:
// job_id, run_id, repository, branch, commit; for job_completed: job_id, run_id, success,
// exit_code, duration; for vm_started: version and whatever machine details `data` has).
std::string EventBody(const commands::EventNotification& ev);
// The field form of a heartbeat, with miglet's `runner` object and proto-form `health` beside.
std::string HeartbeatBody(const commands::Heartbeat& hb);

// One element of a polled answer's `commands`: the command, or why it cannot be one. `id` is
// set whenever the element had a string id, so a command that cannot be read can still be
// acked as failed.
struct PolledCommand {
  std::string id;
  absl::StatusOr<commands::Command> command;
};
// The poll answer (field form; the proto form's typed maps are read as well). An answer that
// is not a JSON object with a `commands` array is an error; a bad element is a bad element.
absl::StatusOr<std::vector<PolledCommand>> ParseCommandsAnswer(std::string_view body);

// The registration fields of an event's answer, when it has a registration_token.
std::optional<Registration> RegistrationInAnswer(std::string_view body);

}  // namespace miglet::fieldjson
