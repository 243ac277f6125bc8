#pragma once

#include <cstdint>
#include <mutex>
#include <string>

#include "miglet/commands/commands.pb.h"

namespace miglet {

// VMHealth from /proc and statvfs: CPU use since the previous sample, memory in use
// (MemTotal - MemAvailable), and the disk holding runner.dir. `proc_root` is "/proc" except in
// tests, which hand in files of their own.
class HealthSampler {
 public:
  explicit HealthSampler(std::string disk_path, std::string proc_root = "/proc");
  commands::VMHealth Sample();

 private:
  std::string disk_path_, proc_root_;
  std::mutex mu_;
  uint64_t last_busy_ = 0, last_total_ = 0;
};

}  // namespace miglet
