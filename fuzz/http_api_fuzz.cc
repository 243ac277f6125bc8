// The hub's HTTP JSON API as an agent (or a stranger) drives it: the input is one or more
// requests separated by a line "---", each a request line "METHOD /path?k=v&k=v" followed by
// the body. Every request goes through AgentHttpApi::Handle on a real AgentRegistry with a fake
// clock; every answer must be one reply with a known status and a JSON object body.
#include <google/protobuf/struct.pb.h>
#include <google/protobuf/stubs/logging.h>
#include <google/protobuf/util/json_util.h>
#include <prometheus/registry.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string_view>
#include <vector>

#include "agent_registry.h"
#include "http_api.h"
#include "miglet/common/fake_clock.h"
#include "spdlog/spdlog.h"

namespace miglet {
namespace {

// Fails the run, saying which answer broke which rule (for triage of a saved crash).
void Check(bool ok, const HttpResponse& r, const char* rule) {
  if (ok) return;
  std::fprintf(stderr, "http_api_fuzz: %s: status %d, body %s\n", rule, r.status, r.body.c_str());
  std::abort();
}

// The parts of `s` between separators (empty ones included).
std::vector<std::string_view> Split(std::string_view s, std::string_view sep) {
  std::vector<std::string_view> out;
  for (size_t at = 0;;) {
    const size_t next = s.find(sep, at);
    out.push_back(s.substr(at, next == std::string_view::npos ? next : next - at));
    if (next == std::string_view::npos) return out;
    at = next + sep.size();
  }
}

void CheckResponse(const HttpResponse& r) {
  switch (r.status) {
    case 200:
    case 202:
    case 400:
    case 404:
    case 405:
    case 429:
    case 503:
    case 504:
      break;
    default:
      Check(false, r, "an unexpected status");
  }
  google::protobuf::Struct s;
  Check(google::protobuf::util::JsonStringToMessage(r.body, &s).ok(), r,
        "the body is not a JSON object");
}

HttpRequest ToRequest(std::string_view text) {
  HttpRequest req;
  const size_t nl = text.find('\n');
  const std::string_view line = text.substr(0, nl);
  if (nl != std::string_view::npos) req.body = std::string(text.substr(nl + 1));
  const size_t sp = line.find(' ');
  req.method = std::string(line.substr(0, sp));
  if (sp == std::string_view::npos) return req;
  const std::string_view target = line.substr(sp + 1);
  const size_t q = target.find('?');
  req.path = std::string(target.substr(0, q));
  if (q != std::string_view::npos) {
    for (std::string_view kv : Split(target.substr(q + 1), "&")) {
      const size_t eq = kv.find('=');
      if (kv.empty()) continue;
      req.query.emplace(std::string(kv.substr(0, eq)),
                        eq == std::string_view::npos ? "" : std::string(kv.substr(eq + 1)));
    }
  }
  return req;
}

void Run(const uint8_t* data, size_t size) {
  auto clock = std::make_shared<FakeClock>();
  prometheus::Registry prom;
  HubMetrics metrics(prom);
  HubOptions opts;
  opts.ack_timeout = std::chrono::seconds(20);
  opts.max_pending_per_agent = 8;
  opts.max_agents_without_stream = 4;
  AgentRegistry registry(opts, clock, &metrics);
  registry.SetChangeHook([](const AgentInfo& a) { (void)AgentInfoToJson(a); });
  AgentHttpApi api(&registry, clock, [] { return std::string(); });

  const std::string_view input(reinterpret_cast<const char*>(data), size);
  for (std::string_view text : Split(input, "\n---\n")) {
    // As the HTTP server does: the first reply wins, later ones are dropped.
    auto answered = std::make_shared<bool>(false);
    api.Handle(ToRequest(text), [answered](HttpResponse r) {
      CheckResponse(r);
      *answered = true;
    });
    clock->Advance(std::chrono::seconds(1));
    api.Tick();
    registry.Sweep();
  }
  clock->Advance(std::chrono::minutes(1));
  api.Tick();
  registry.Sweep();
  registry.Shutdown();
}

}  // namespace
}  // namespace miglet

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const bool quiet = [] {
    spdlog::set_level(spdlog::level::off);
    google::protobuf::SetLogHandler(nullptr);
    return true;
  }();
  (void)quiet;
  miglet::Run(data, size);
  return 0;
}
