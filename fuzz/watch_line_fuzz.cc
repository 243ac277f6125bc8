// The kube client's watch stream: each line of the input is one line of a watch response, read
// as the watch stream and the informer read it: blank lines skipped, ParseWatchLine, an ERROR
// event turned into a Status (and its helpers asked about it), any other event's object keyed
// and versioned as the informer's cache does. A bad line ends the watch, as it does there.
#include <cstdint>
#include <string>
#include <string_view>

#include "miglet/operator/kube/errors.h"
#include "miglet/operator/kube/informer.h"
#include "miglet/operator/kube/kube_client.h"
#include "watch_parser.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace kube = miglet::kube;
  std::string_view rest(reinterpret_cast<const char*>(data), size);
  while (!rest.empty()) {
    const size_t nl = rest.find('\n');
    const std::string line(rest.substr(0, nl));
    rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
    if (line.find_first_not_of(" \r\t") == std::string::npos) continue;
    auto ev = kube::ParseWatchLine(line);
    if (!ev.ok()) return 0;
    if (ev->type == kube::WatchEvent::Type::kError) {
      const absl::Status st = kube::WatchErrorStatus(*ev, "watch runnervms");
      (void)kube::IsGone(st);
      (void)kube::IsTooManyRequests(st);
      (void)kube::RetryAfter(st);
      return 0;
    }
    (void)kube::ResourceVersionOf(ev->object);
    if (ev->type == kube::WatchEvent::Type::kBookmark) continue;
    kube::StripManagedFields(ev->object);
    (void)kube::ObjectKey(ev->object);
  }
  return 0;
}
