#include "miglet/operator/kube/event_recorder.h"

#include <time.h>

#include <atomic>
#include <cstdio>
#include <mutex>
#include <unordered_map>

#include "miglet/operator/kube/errors.h"

namespace miglet::kube {

namespace {
std::string Format(WallTime t, bool micro) {
  const auto since = t.time_since_epoch();
  const auto secs = std::chrono::duration_cast<std::chrono::seconds>(since);
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(since - secs).count();
  const time_t tt = static_cast<time_t>(secs.count());
  struct tm tm {};
  gmtime_r(&tt, &tm);
  char buf[64];
  const size_t n = strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::string out(buf, n);
  if (micro) {
    char frac[32];  // ".%06lld" of any long long fits
    snprintf(frac, sizeof frac, ".%06lld", static_cast<long long>(us));
    out += frac;
  }
  return out + "Z";
}
}  // namespace

std::string FormatTime(WallTime t) { return Format(t, false); }
std::string FormatMicroTime(WallTime t) { return Format(t, true); }

namespace {

class EventRecorderImpl final : public EventRecorder {
 public:
  EventRecorderImpl(std::shared_ptr<KubeClient> client, std::string component, std::string host,
                    std::shared_ptr<Clock> clock)
      : client_(std::move(client)),
        component_(std::move(component)),
        host_(std::move(host)),
        clock_(std::move(clock)) {}

  absl::Status Record(const Json& object, const std::string& type, const std::string& reason,
                      const std::string& message) override {
    const Json md = object.value("metadata", Json::object());
    const std::string name = md.value("name", "");
    std::string ns = md.value("namespace", "");
    if (ns.empty()) ns = "default";  // events about cluster-scoped objects
    const std::string uid = md.value("uid", "");
    const std::string key = object.value("kind", "") + "|" + ns + "|" + name + "|" + uid + "|" +
                            type + "|" + reason + "|" + message;
    const std::string now = FormatTime(clock_->WallNow());

    std::lock_guard l(mu_);
    auto it = seen_.find(key);
    if (it != seen_.end()) {
      // A repeat: one Event, count and lastTimestamp moved (client-go's EventCorrelator).
      Json patch = {{"count", it->second.count + 1}, {"lastTimestamp", now}};
      auto r = client_->Patch(Events(), it->second.ns, it->second.name, PatchType::kMerge, patch);
      if (r.ok()) {
        ++it->second.count;
        return absl::OkStatus();
      }
      if (!kube::IsNotFound(r.status())) return r.status();
      seen_.erase(it);  // it was deleted (TTL): start a new one
    }
    char suffix[32];
    snprintf(suffix, sizeof suffix, ".%llx%04x",
             static_cast<unsigned long long>(clock_->WallNow().time_since_epoch().count()),
             static_cast<unsigned>(seq_++ & 0xffff));
    const std::string ev_name = (name.empty() ? "event" : name) + suffix;
    Json involved = {{"kind", object.value("kind", "")},
                     {"apiVersion", object.value("apiVersion", "")},
                     {"name", name}};
    if (!md.value("namespace", "").empty()) involved["namespace"] = md["namespace"];
    if (!uid.empty()) involved["uid"] = uid;
    if (!md.value("resourceVersion", "").empty()) {
      involved["resourceVersion"] = md["resourceVersion"];
    }
    Json ev = {{"apiVersion", "v1"},
               {"kind", "Event"},
               {"metadata", {{"name", ev_name}, {"namespace", ns}}},
               {"involvedObject", involved},
               {"reason", reason},
               {"message", message},
               {"type", type},
               {"source", {{"component", component_}, {"host", host_}}},
               {"reportingComponent", component_},
               {"reportingInstance", host_},
               {"firstTimestamp", now},
               {"lastTimestamp", now},
               {"count", 1}};
    auto r = client_->Create(Events(), ns, ev);
    if (!r.ok()) return r.status();
    if (seen_.size() >= 4096) seen_.clear();  // bounded; a forgotten repeat only costs an Event
    seen_[key] = Entry{ns, ev_name, 1};
    return absl::OkStatus();
  }

 private:
  struct Entry {
    std::string ns;
    std::string name;
    int count = 0;
  };
  std::shared_ptr<KubeClient> client_;
  std::string component_;
  std::string host_;
  std::shared_ptr<Clock> clock_;
  std::mutex mu_;
  std::unordered_map<std::string, Entry> seen_;
  unsigned seq_ = 0;
};

}  // namespace

std::unique_ptr<EventRecorder> MakeEventRecorder(std::shared_ptr<KubeClient> client,
                                                 std::string component, std::string host,
                                                 std::shared_ptr<Clock> clock) {
  return std::make_unique<EventRecorderImpl>(std::move(client), std::move(component),
                                             std::move(host), std::move(clock));
}

}  // namespace miglet::kube
