#pragma once

#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace miglet {

// A small command-line parser: --name=value, --name value, and --flag for booleans.
// Setters return a Status so a bad value names its flag.
class FlagSet {
 public:
  FlagSet(std::string program, std::string summary);

  void String(const std::string& name, const std::string& value_name, const std::string& help,
              std::function<void(const std::string&)> set);
  void Value(const std::string& name, const std::string& value_name, const std::string& help,
             std::function<absl::Status(const std::string&)> set);
  void Bool(const std::string& name, const std::string& help, std::function<void()> set);
  // A boolean that is given as --name (true) or --name=true|false; `set` gets "" for the
  // former.
  void OptionalValue(const std::string& name, const std::string& help,
                     std::function<absl::Status(const std::string&)> set);

  // Parses argv[1..]. Positional arguments are refused.
  absl::Status Parse(int argc, char** argv);
  std::string Usage() const;
  // True when the user asked for --help or --version; the caller prints and exits 0.
  bool help() const { return help_; }
  bool version() const { return version_; }
  // Whether a flag was given on the command line.
  bool Given(const std::string& name) const;

 private:
  struct Flag {
    std::string name, value_name, help;
    bool takes_value;
    std::function<absl::Status(const std::string&)> set;
    bool optional_value = false;
  };
  std::string program_, summary_;
  std::vector<Flag> flags_;
  std::vector<std::string> given_;
  bool help_ = false;
  bool version_ = false;
};

}  // namespace miglet
