#pragma once

#include <sys/types.h>

#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "miglet/agent/runner_output.h"
#include "miglet/common/clock.h"

namespace miglet {

// How to register the runner (from register_runner).
struct RunnerRegistration {
  std::string url;    // runner_url
  std::string token;  // registration_token
  std::string jit_config;
  std::string name;
  std::string group;
  std::vector<std::string> labels;
  bool ephemeral = true;
};

// Runs the GitHub Actions runner from a directory (config.sh, run.sh), reads its output, and
// reports what it sees. Secrets (tokens, JIT configs) never reach a log line.
class RunnerSupervisor {
 public:
  struct Callbacks {
    std::function<void(const RunnerLine&)> on_line;              // every recognised line
    std::function<void(int exit_code, bool requested)> on_exit;  // run.sh ended
  };

  RunnerSupervisor(std::string runner_dir, Callbacks callbacks);
  ~RunnerSupervisor();

  // config.sh --url --token [--runnergroup] [--labels] [--name] --unattended --replace
  // [--ephemeral]; waits for it (up to `timeout`). Skipped when a JIT config is given.
  absl::Status Configure(const RunnerRegistration& reg, Duration timeout);
  // run.sh, or run.sh --jitconfig <config>; returns once the process is started.
  absl::Status Start(const RunnerRegistration& reg);
  // Asks run.sh to stop (SIGINT to its process group) and waits up to `grace`; then SIGKILL
  // when `force`. OK once it has exited; DEADLINE_EXCEEDED when it is still running.
  absl::Status Stop(Duration grace, bool force);
  // config.sh remove --token <token>: deregisters a non-ephemeral runner.
  absl::Status Remove(const std::string& token, Duration timeout);

  // Kills the config.sh that Configure or Remove runs now (it returns CANCELLED), or makes
  // the next one return CANCELLED without starting. Any thread.
  void CancelOneShot();
  // Forgets a CancelOneShot that found nothing to cancel.
  void ClearCancel();

  int restarts() const;
  // run.sh's exit code, once Stop has returned OK (before on_exit may have been called).
  int last_exit_code() const;

 private:
  struct Result {
    int exit_code;
    std::string output;  // redacted
  };
  absl::StatusOr<Result> RunToCompletion(const std::vector<std::string>& args, Duration timeout,
                                         const std::vector<std::string>& secrets);
  void ReadLoop(int fd, pid_t pid);
  std::string Redact(std::string s) const;

  const std::string dir_;
  Callbacks callbacks_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  pid_t pid_ = -1;
  bool stop_requested_ = false;
  int starts_ = 0;
  int last_exit_code_ = 0;
  pid_t oneshot_pid_ = -1;  // config.sh run by RunToCompletion
  bool oneshot_cancelled_ = false;
  std::vector<std::string> secrets_;
  std::thread reader_;
};

}  // namespace miglet
