// mig-controller's config loader: the input is the YAML file given with --config, parsed with
// the controller's whole table (types, ranges, durations) and its cross-setting checks.
#include <cstdint>

#include "fuzz_file.h"
#include "miglet/operator/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string path = miglet::fuzz::WriteInput(data, size);
  std::string prog = "mig-controller", flag = "--config";
  char* argv[] = {prog.data(), flag.data(), path.data(), nullptr};
  auto parsed = miglet::operator_config::Parse(3, argv);
  if (parsed.ok()) {
    (void)miglet::operator_config::SplitBindAddress(parsed->config.metrics_bind_address);
  }
  return 0;
}
