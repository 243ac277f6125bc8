// The agent's reading of the GitHub runner's console output: every line of the input goes
// through ParseRunnerLine, as the supervisor feeds it the runner's stdout line by line.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "miglet/agent/runner_output.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view rest(reinterpret_cast<const char*>(data), size);
  while (!rest.empty()) {
    const size_t nl = rest.find('\n');
    const std::string_view line = rest.substr(0, nl);
    rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
    const miglet::RunnerLine r = miglet::ParseRunnerLine(line);
    using K = miglet::RunnerLine::Kind;
    // What it returns is taken from the line itself.
    if (r.kind == K::kJobStarted || r.kind == K::kJobCompleted) {
      if (r.job_name.empty() || line.find(r.job_name) == std::string_view::npos) std::abort();
    }
    if (r.kind == K::kJobCompleted) {
      (void)miglet::JobResultIsSuccess(r.result);
      if (line.find(r.result) == std::string_view::npos) std::abort();
    }
    if (r.kind == K::kVersion && line.find(r.version) == std::string_view::npos) std::abort();
  }
  return 0;
}
