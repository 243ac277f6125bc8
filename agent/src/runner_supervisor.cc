#include "miglet/agent/runner_supervisor.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <tuple>
#include <utility>

#include "spdlog/spdlog.h"

namespace miglet {

namespace {

// Starts `args` in `dir` in a new process group with stdout+stderr on a pipe. Returns the pid
// and the pipe's read end.
absl::StatusOr<std::pair<pid_t, int>> Spawn(const std::string& dir,
                                            const std::vector<std::string>& args) {
  if (access((dir + "/" + args[0]).c_str(), X_OK) != 0) {
    return absl::FailedPreconditionError("runner.dir " + dir + " has no executable " + args[0] +
                                         " (is the GitHub Actions runner unpacked there?)");
  }
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return absl::InternalError("pipe failed");
  // Everything the child needs is prepared before fork: after it, only async-signal-safe calls.
  std::vector<std::string> argv_s = args;
  argv_s[0] = dir + "/" + args[0];
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t pid = fork();
  if (pid < 0) {
    close(fds[0]);
    close(fds[1]);
    return absl::InternalError("fork failed");
  }
  if (pid == 0) {
    setpgid(0, 0);
    dup2(fds[1], 1);
    dup2(fds[1], 2);
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0) dup2(devnull, 0);
    if (chdir(dir.c_str()) != 0) _exit(126);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);  // the agent blocks signals; the runner must not
    // Dispositions too: an agent started with SIGINT ignored (e.g. from a shell's `&`) must not
    // hand that on, or the runner could never be asked to stop.
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGPIPE, SIG_DFL);
    execv(argv[0], argv.data());
    _exit(127);
  }
  setpgid(pid, pid);
  close(fds[1]);
  return std::make_pair(pid, fds[0]);
}

int ExitCode(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

}  // namespace

RunnerSupervisor::RunnerSupervisor(std::string runner_dir, Callbacks callbacks)
    : dir_(std::move(runner_dir)), callbacks_(std::move(callbacks)) {}

RunnerSupervisor::~RunnerSupervisor() {
  (void)Stop(std::chrono::seconds(5), /*force=*/true);
  if (reader_.joinable()) reader_.join();
}

std::string RunnerSupervisor::Redact(std::string s) const {
  for (const auto& secret : secrets_) {
    if (secret.empty()) continue;
    for (size_t pos = s.find(secret); pos != std::string::npos; pos = s.find(secret, pos)) {
      s.replace(pos, secret.size(), "***");
    }
  }
  return s;
}

absl::StatusOr<RunnerSupervisor::Result> RunnerSupervisor::RunToCompletion(
    const std::vector<std::string>& args, Duration timeout,
    const std::vector<std::string>& secrets) {
  {
    std::lock_guard l(mu_);
    for (const auto& s : secrets) secrets_.push_back(s);
  }
  pid_t pid;
  int fd;
  {
    std::lock_guard l(mu_);
    if (oneshot_cancelled_) {
      oneshot_cancelled_ = false;
      return absl::CancelledError(args[0] + " was not started: cancelled");
    }
    auto spawned = Spawn(dir_, args);
    if (!spawned.ok()) return spawned.status();
    std::tie(pid, fd) = *spawned;
    oneshot_pid_ = pid;
  }
  std::string output;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  bool timed_out = false;
  char buf[4096];
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      break;
    }
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
    const ssize_t n = read(fd, buf, sizeof(buf));
    if (n <= 0) break;
    output.append(buf, static_cast<size_t>(n));
  }
  if (timed_out) kill(-pid, SIGKILL);
  close(fd);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  std::string redacted;
  bool cancelled;
  {
    std::lock_guard l(mu_);
    redacted = Redact(output);
    oneshot_pid_ = -1;
    cancelled = std::exchange(oneshot_cancelled_, false);
  }
  if (cancelled) return absl::CancelledError(args[0] + " was cancelled");
  if (timed_out) {
    return absl::DeadlineExceededError(args[0] + " did not finish within " +
                                       std::to_string(static_cast<int>(ToSeconds(timeout))) +
                                       "s; output: " + redacted);
  }
  return Result{ExitCode(status), redacted};
}

absl::Status RunnerSupervisor::Configure(const RunnerRegistration& reg, Duration timeout) {
  if (!reg.jit_config.empty()) return absl::OkStatus();  // run.sh --jitconfig configures itself
  if (reg.url.empty() || reg.token.empty()) {
    return absl::InvalidArgumentError(
        "register_runner needs runner_url and registration_token, or jit_config");
  }
  std::vector<std::string> args = {"config.sh", "--url", reg.url, "--token", reg.token};
  if (!reg.group.empty()) args.insert(args.end(), {"--runnergroup", reg.group});
  if (!reg.labels.empty()) {
    std::string joined;
    for (const auto& l : reg.labels) joined += (joined.empty() ? "" : ",") + l;
    args.insert(args.end(), {"--labels", joined});
  }
  if (!reg.name.empty()) args.insert(args.end(), {"--name", reg.name});
  args.insert(args.end(), {"--unattended", "--replace"});
  if (reg.ephemeral) args.push_back("--ephemeral");
  spdlog::info("configuring the runner: config.sh --url {} --token *** {}", reg.url,
               reg.ephemeral ? "(ephemeral)" : "");
  auto r = RunToCompletion(args, timeout, {reg.token});
  if (!r.ok()) return r.status();
  if (r->exit_code != 0) {
    // The runner's own words, last lines first: they say why (bad token, no network, ...).
    std::string tail =
        r->output.size() > 600 ? r->output.substr(r->output.size() - 600) : r->output;
    return absl::FailedPreconditionError("config.sh exited with " + std::to_string(r->exit_code) +
                                         ": " + tail);
  }
  return absl::OkStatus();
}

absl::Status RunnerSupervisor::Start(const RunnerRegistration& reg) {
  std::vector<std::string> args = {"run.sh"};
  if (!reg.jit_config.empty()) args.insert(args.end(), {"--jitconfig", reg.jit_config});
  std::thread previous;
  {
    std::lock_guard l(mu_);
    if (pid_ > 0) return absl::FailedPreconditionError("the runner is already running");
    previous = std::move(reader_);
  }
  // The previous run's reader has reaped its runner (pid_ is -1); it may still be reporting the
  // exit, which must not wait for this lock, so it is joined outside it.
  if (previous.joinable()) previous.join();
  std::lock_guard l(mu_);
  if (pid_ > 0 || reader_.joinable()) {
    return absl::FailedPreconditionError("the runner is already running");
  }
  secrets_.push_back(reg.jit_config);
  secrets_.push_back(reg.token);
  auto spawned = Spawn(dir_, args);
  if (!spawned.ok()) return spawned.status();
  pid_ = spawned->first;
  stop_requested_ = false;
  ++starts_;
  spdlog::info("runner started: run.sh{} (pid {})",
               reg.jit_config.empty() ? "" : " --jitconfig ***", pid_);
  reader_ = std::thread([this, fd = spawned->second, pid = pid_] { ReadLoop(fd, pid); });
  return absl::OkStatus();
}

void RunnerSupervisor::ReadLoop(int fd, pid_t pid) {
  std::string pending;
  char buf[4096];
  auto emit = [&](const std::string& line) {
    std::string safe;
    {
      std::lock_guard l(mu_);
      safe = Redact(line);
    }
    spdlog::debug("runner: {}", safe);
    RunnerLine parsed = ParseRunnerLine(line);
    if (parsed.kind != RunnerLine::Kind::kOther && callbacks_.on_line) callbacks_.on_line(parsed);
  };
  for (;;) {
    const ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    pending.append(buf, static_cast<size_t>(n));
    for (size_t nl; (nl = pending.find('\n')) != std::string::npos;) {
      emit(pending.substr(0, nl));
      pending.erase(0, nl + 1);
    }
  }
  if (!pending.empty()) emit(pending);
  close(fd);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  bool requested;
  const int code = ExitCode(status);
  {
    std::lock_guard l(mu_);
    pid_ = -1;
    last_exit_code_ = code;
    requested = stop_requested_;
  }
  cv_.notify_all();
  spdlog::info("runner exited with {}{}", code, requested ? " (stop requested)" : "");
  if (callbacks_.on_exit) callbacks_.on_exit(code, requested);
}

absl::Status RunnerSupervisor::Stop(Duration grace, bool force) {
  std::unique_lock l(mu_);
  if (pid_ <= 0) return absl::OkStatus();
  stop_requested_ = true;
  const pid_t pid = pid_;
  kill(-pid, SIGINT);
  if (cv_.wait_for(l, grace, [&] { return pid_ <= 0; })) return absl::OkStatus();
  if (!force) {
    return absl::DeadlineExceededError("the runner did not stop within " +
                                       std::to_string(static_cast<int>(ToSeconds(grace))) + "s");
  }
  spdlog::warn("runner did not stop within {:.0f}s: killing it", ToSeconds(grace));
  kill(-pid, SIGKILL);
  cv_.wait_for(l, std::chrono::seconds(10), [&] { return pid_ <= 0; });
  return pid_ <= 0 ? absl::OkStatus() : absl::InternalError("the runner survived SIGKILL");
}

absl::Status RunnerSupervisor::Remove(const std::string& token, Duration timeout) {
  if (token.empty()) return absl::InvalidArgumentError("no token to deregister the runner with");
  auto r = RunToCompletion({"config.sh", "remove", "--token", token}, timeout, {token});
  if (!r.ok()) return r.status();
  if (r->exit_code != 0) {
    return absl::FailedPreconditionError("config.sh remove exited with " +
                                         std::to_string(r->exit_code) + ": " + r->output);
  }
  return absl::OkStatus();
}

void RunnerSupervisor::CancelOneShot() {
  std::lock_guard l(mu_);
  oneshot_cancelled_ = true;
  if (oneshot_pid_ > 0) kill(-oneshot_pid_, SIGKILL);
}

void RunnerSupervisor::ClearCancel() {
  std::lock_guard l(mu_);
  oneshot_cancelled_ = false;
}

int RunnerSupervisor::last_exit_code() const {
  std::lock_guard l(mu_);
  return last_exit_code_;
}

int RunnerSupervisor::restarts() const {
  std::lock_guard l(mu_);
  return starts_ > 0 ? starts_ - 1 : 0;
}

}  // namespace miglet
