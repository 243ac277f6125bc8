#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <string>

namespace miglet::fuzz {

// The config loaders read a file by name: the input is written to one scratch file per process
// (in TMPDIR), rewritten for each run.
inline const std::string& WriteInput(const uint8_t* data, size_t size) {
  static const std::string path = [] {
    const char* dir = std::getenv("TMPDIR");
    return std::string(dir && *dir ? dir : "/tmp") + "/miglet-fuzz-" + std::to_string(getpid()) +
           ".yaml";
  }();
  std::ofstream(path, std::ios::binary | std::ios::trunc)
      .write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  return path;
}

}  // namespace miglet::fuzz
