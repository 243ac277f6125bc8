// The agent's config loader: the input is the YAML file given with --config. Loading it, the
// checks, the effective-config dump and the stream options made from it must never crash.
#include <cstdint>

#include "fuzz_file.h"
#include "miglet/agent/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string& path = miglet::fuzz::WriteInput(data, size);
  miglet::AgentConfig cfg;
  if (!miglet::BindAgentConfig(path, &cfg).ok()) return 0;
  (void)miglet::ValidateAgentConfig(cfg);
  (void)miglet::EffectiveConfigYaml(cfg);
  (void)miglet::ToStreamOptions(cfg, "fuzz");
  return 0;
}
