#pragma once

// A real miglet process for integration tests: its own config, a runner dir holding the fake
// runner's scripts, and a log file.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "exec_args.h"

namespace miglet::testing {

namespace fs = std::filesystem;

inline std::string ReadAll(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class AgentProcess {
 public:
  AgentProcess(const fs::path& dir, const std::string& yaml, const fs::path& fake_runner_dir,
               std::vector<std::pair<std::string, std::string>> env = {})
      : dir_(dir), env_(std::move(env)) {
    fs::create_directories(dir_ / "runner");
    for (const char* f : {"config.sh", "run.sh"}) {
      fs::copy_file(fake_runner_dir / f, dir_ / "runner" / f, fs::copy_options::overwrite_existing);
    }
    std::ofstream(dir_ / "miglet.yaml")
        << yaml << "runner:\n  dir: " << (dir_ / "runner").string() << "\n";
  }
  ~AgentProcess() {
    if (pid_ > 0 && !exited_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    // The runner is in its own process group; make sure no fake runner outlives the test.
    const auto pidfile = dir_ / "runner" / "_fake" / "run.pid";
    if (fs::exists(pidfile)) {
      const int rp = std::atoi(ReadAll(pidfile).c_str());
      if (rp > 0) kill(-rp, SIGKILL);
    }
  }

  void Start() {
    const std::string log = (dir_ / "miglet.log").string();
    const std::string cfg = "--config=" + (dir_ / "miglet.yaml").string();
    const ExecArgs exec({MIGLET_AGENT_PATH, cfg}, env_);
    pid_ = fork();
    if (pid_ == 0) {
      int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      dup2(fd, 1);
      dup2(fd, 2);
      exec.Exec();
      _exit(127);
    }
  }
  void Kill(int sig) { kill(pid_, sig); }
  // The exit code once the process has ended, or -1 while it runs.
  int ExitCode() {
    if (!exited_) {
      int status;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        exited_ = true;
        code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
    }
    return exited_ ? code_ : -1;
  }
  // Tells the fake runner what to do next (job NAME, finish RESULT, crash CODE, hang).
  void Runner(const std::string& line) {
    std::ofstream(dir_ / "runner" / "_fake" / "control") << line << "\n";
  }
  // The same, only when a runner reads the FIFO now; false when none does (never blocks: the
  // runner may be between lives).
  bool TryRunner(const std::string& line) {
    const int fd = open((dir_ / "runner" / "_fake" / "control").c_str(), O_WRONLY | O_NONBLOCK);
    if (fd < 0) return false;
    const std::string l = line + "\n";
    const bool ok = write(fd, l.data(), l.size()) == static_cast<ssize_t>(l.size());
    close(fd);
    return ok;
  }
  bool RunnerAlive() {
    const auto pidfile = dir_ / "runner" / "_fake" / "run.pid";
    if (!fs::exists(pidfile)) return false;
    const int rp = std::atoi(ReadAll(pidfile).c_str());
    return rp > 0 && kill(rp, 0) == 0;
  }
  std::string Log() { return ReadAll(dir_ / "miglet.log"); }
  std::string Invocations() { return ReadAll(dir_ / "runner" / "_fake" / "invocations.log"); }

 private:
  fs::path dir_;
  std::vector<std::pair<std::string, std::string>> env_;
  pid_t pid_ = -1;
  bool exited_ = false;
  int code_ = -1;
};

}  // namespace miglet::testing
