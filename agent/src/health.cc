#include "miglet/agent/health.h"

#include <sys/statvfs.h>

#include <fstream>
#include <sstream>

namespace miglet {

HealthSampler::HealthSampler(std::string disk_path, std::string proc_root)
    : disk_path_(std::move(disk_path)), proc_root_(std::move(proc_root)) {}

commands::VMHealth HealthSampler::Sample() {
  commands::VMHealth h;
  {
    std::ifstream stat(proc_root_ + "/stat");
    std::string cpu;
    uint64_t v[8] = {0};
    if (stat >> cpu && cpu == "cpu") {
      for (auto& x : v) stat >> x;
      // user nice system idle iowait irq softirq steal
      const uint64_t idle = v[3] + v[4];
      uint64_t total = 0;
      for (auto x : v) total += x;
      const uint64_t busy = total - idle;
      std::lock_guard l(mu_);
      if (last_total_ != 0 && total > last_total_) {
        h.set_cpu_usage_percent(100.0 * static_cast<double>(busy - last_busy_) /
                                static_cast<double>(total - last_total_));
      }
      last_busy_ = busy;
      last_total_ = total;
    }
  }
  {
    std::ifstream meminfo(proc_root_ + "/meminfo");
    std::string key;
    uint64_t value = 0, total = 0, available = 0;
    std::string unit;
    std::string line;
    while (std::getline(meminfo, line)) {
      std::istringstream in(line);
      in >> key >> value;
      if (key == "MemTotal:") total = value * 1024;
      if (key == "MemAvailable:") available = value * 1024;
    }
    if (total > 0) {
      h.set_memory_total_bytes(static_cast<int64_t>(total));
      h.set_memory_used_bytes(static_cast<int64_t>(total - available));
      h.set_memory_usage_percent(100.0 * static_cast<double>(total - available) /
                                 static_cast<double>(total));
    }
  }
  struct statvfs fs;
  if (statvfs(disk_path_.c_str(), &fs) == 0 && fs.f_blocks > 0) {
    const uint64_t total = static_cast<uint64_t>(fs.f_blocks) * fs.f_frsize;
    const uint64_t avail = static_cast<uint64_t>(fs.f_bavail) * fs.f_frsize;
    const uint64_t used = total - static_cast<uint64_t>(fs.f_bfree) * fs.f_frsize;
    h.set_disk_total_bytes(static_cast<int64_t>(total));
    h.set_disk_used_bytes(static_cast<int64_t>(used));
    // As df computes it: used / (used + available to unprivileged users).
    h.set_disk_usage_percent(100.0 * static_cast<double>(used) / static_cast<double>(used + avail));
  }
  return h;
}

}  // namespace miglet
