#pragma once

#include <unistd.h>

#include <string>
#include <utility>
#include <vector>

namespace miglet::testing {

// A child process's arguments and environment (this process's, with `overrides`), made before
// fork. The test processes have threads (gRPC, cpprest): a child that allocates before exec
// (std::vector, std::string, setenv) can hang for ever on a malloc lock some other thread held
// at the fork, as an agent in CI once did, never writing a line. Between fork and execve a
// child makes only async-signal-safe calls (open, dup2, close, setpgid).
class ExecArgs {
 public:
  explicit ExecArgs(std::vector<std::string> args,
                    const std::vector<std::pair<std::string, std::string>>& overrides = {})
      : args_(std::move(args)) {
    for (char** e = environ; *e != nullptr; ++e) {
      const std::string kv = *e;
      const std::string key = kv.substr(0, kv.find('='));
      bool overridden = false;
      for (const auto& [k, v] : overrides) overridden = overridden || k == key;
      if (!overridden) env_.push_back(kv);
    }
    for (const auto& [k, v] : overrides) env_.push_back(k + "=" + v);
    for (auto& a : args_) argv_.push_back(a.data());
    argv_.push_back(nullptr);
    for (auto& kv : env_) envp_.push_back(kv.data());
    envp_.push_back(nullptr);
  }
  ExecArgs(const ExecArgs&) = delete;
  ExecArgs& operator=(const ExecArgs&) = delete;

  // In the child: replaces the process, or returns when exec failed.
  void Exec() const { execve(argv_[0], argv_.data(), envp_.data()); }

 private:
  std::vector<std::string> args_, env_;
  std::vector<char*> argv_, envp_;
};

}  // namespace miglet::testing
