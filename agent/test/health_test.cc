#include "miglet/agent/health.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

namespace miglet {
namespace {

TEST(HealthTest, ReadsProcFilesAndDisk) {
  const auto dir = std::filesystem::temp_directory_path() / ("health-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  auto write_stat = [&](int user, int idle) {
    std::ofstream(dir / "stat") << "cpu  " << user << " 0 0 " << idle
                                << " 0 0 0 0 0 0\ncpu0 1 2 3\n";
  };
  std::ofstream(dir / "meminfo") << "MemTotal:       1000 kB\nMemFree:         100 kB\n"
                                    "MemAvailable:    250 kB\n";
  write_stat(100, 900);
  HealthSampler h(dir.string(), dir.string());
  auto first = h.Sample();
  EXPECT_EQ(first.cpu_usage_percent(), 0);  // no previous sample yet
  EXPECT_EQ(first.memory_total_bytes(), 1000 * 1024);
  EXPECT_EQ(first.memory_used_bytes(), 750 * 1024);
  EXPECT_DOUBLE_EQ(first.memory_usage_percent(), 75.0);
  EXPECT_GT(first.disk_total_bytes(), 0);
  EXPECT_GT(first.disk_usage_percent(), 0);
  write_stat(130, 970);  // +30 busy, +70 idle
  EXPECT_DOUBLE_EQ(h.Sample().cpu_usage_percent(), 30.0);
  std::filesystem::remove_all(dir);
}

TEST(HealthTest, RealProcGivesPlausibleFigures) {
  HealthSampler h("/");
  h.Sample();
  auto s = h.Sample();
  EXPECT_GE(s.cpu_usage_percent(), 0);
  EXPECT_LE(s.cpu_usage_percent(), 100);
  EXPECT_GT(s.memory_total_bytes(), 0);
  EXPECT_LE(s.memory_used_bytes(), s.memory_total_bytes());
}

}  // namespace
}  // namespace miglet
