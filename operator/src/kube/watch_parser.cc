#include "watch_parser.h"

#include "json_fields.h"
#include "miglet/operator/kube/errors.h"

namespace miglet::kube {

absl::StatusOr<WatchEvent> ParseWatchLine(const std::string& line) {
  auto j = Json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return absl::DataLossError("watch: a line is not a JSON object: " + line.substr(0, 200));
  }
  if (!j.contains("type") || !j["type"].is_string() || !j.contains("object") ||
      !j["object"].is_object()) {
    return absl::DataLossError("watch: an event without type or object: " + line.substr(0, 200));
  }
  const std::string type = j["type"].get<std::string>();
  WatchEvent ev;
  if (type == "ADDED") {
    ev.type = WatchEvent::Type::kAdded;
  } else if (type == "MODIFIED") {
    ev.type = WatchEvent::Type::kModified;
  } else if (type == "DELETED") {
    ev.type = WatchEvent::Type::kDeleted;
  } else if (type == "BOOKMARK") {
    ev.type = WatchEvent::Type::kBookmark;
  } else if (type == "ERROR") {
    ev.type = WatchEvent::Type::kError;
  } else {
    return absl::DataLossError("watch: unknown event type \"" + type + "\"");
  }
  ev.object = std::move(j["object"]);
  return ev;
}

absl::Status WatchErrorStatus(const WatchEvent& ev, const std::string& what) {
  const int code = IntField(ev.object, "code", 500);
  return StatusFromResponse(code, ev.object.dump(), "", what);
}

}  // namespace miglet::kube
