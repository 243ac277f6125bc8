// bench/channel: N simulated agents in this process against mig-controller in its own process.
// Prints figures; asserts nothing about time.
//
//   channel_bench --agents=1000,10000 --heartbeat-interval=10s --window=20s --runs=3
//   channel_bench --flood=1000000 [--flood-connections=8] [--forget-after=1m]
//   channel_bench --silent=20000 [--handshake-timeout=10s]
//
// Per run: time for all N to connect (connect -> connect_ack), heartbeats/s the controller
// ingested (its own counter), controller CPU seconds per 1,000 heartbeats, command round trip
// p50/p99 while all N are connected (HTTP POST ?wait -> agent ack -> answer), controller RSS
// per connected agent, controller threads. Medians over the runs at the end.
#include <arpa/inet.h>
#include <grpcpp/grpcpp.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <random>
#include <sstream>
#include <thread>

#include "../common/sim_agent.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "miglet/commands/commands.grpc.pb.h"
#include "miglet/common/duration.h"
#include "miglet/common/flags.h"
#include "miglet/common/http.h"
#include "miglet/common/runtime.h"

namespace miglet {
namespace {

using commands::ControllerMessage;
using commands::MIGletMessage;
using Clock = std::chrono::steady_clock;

struct ProcStats {
  double cpu_seconds = 0;
  long rss_kib = 0;
  int threads = 0;
};

ProcStats ReadProc(pid_t pid) {
  ProcStats s;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(stat, line);
  // Fields after the command name (which may contain spaces) start after the last ')'.
  auto rest = line.substr(line.rfind(')') + 2);
  std::vector<std::string> f = absl::StrSplit(rest, ' ');
  if (f.size() > 13) {
    const double hz = static_cast<double>(sysconf(_SC_CLK_TCK));
    s.cpu_seconds = (std::stod(f[11]) + std::stod(f[12])) / hz;
  }
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) s.rss_kib = std::stol(line.substr(6));
    if (line.rfind("Threads:", 0) == 0) s.threads = std::stoi(line.substr(8));
  }
  return s;
}

using bench::SimAgent;
using bench::SimShared;

struct Controller {
  pid_t pid = -1;
  int grpc_port = 0, http_port = 0, metrics_port = 0;
};

Controller StartController(const std::string& path, const std::string& info_file,
                           std::vector<std::string> extra = {}) {
  std::remove(info_file.c_str());
  Controller c;
  std::vector<std::string> args = {path,
                                   "--bind-address=127.0.0.1",
                                   "--grpc-port=0",
                                   "--http-port=0",
                                   "--metrics-port=0",
                                   "--health-probe-bind-address=127.0.0.1:0",
                                   "--controllers=off",
                                   "--log-level=warn",
                                   "--listen-info-file=" + info_file};
  args.insert(args.end(), extra.begin(), extra.end());
  c.pid = fork();
  if (c.pid == 0) {
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    perror("exec mig-controller");
    _exit(127);
  }
  // The controller writes the file atomically once it serves.
  for (int i = 0; i < 1000; ++i) {
    std::ifstream in(info_file);
    std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (!s.empty()) {
      sscanf(s.c_str(), "{\"grpc_port\":%d,\"http_port\":%d,\"metrics_port\":%d", &c.grpc_port,
             &c.http_port, &c.metrics_port);
      return c;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  std::cerr << "mig-controller did not start\n";
  exit(1);
}

double ScrapeCounter(HttpTransport& metrics, const std::string& name) {
  auto r = metrics.Do("GET", "/metrics", "");
  if (!r.ok()) return -1;
  std::istringstream in(r->body);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(name + " ", 0) == 0) return std::stod(line.substr(name.size() + 1));
  }
  return -1;
}

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return -1;
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

double Median(std::vector<double> v) { return Percentile(std::move(v), 0.5); }

struct RunResult {
  double connect_s, hb_per_s, cpu_per_1k_hb, rtt_p50_ms, rtt_p99_ms, rss_per_agent_kib;
  double cpu_per_s;
  double idle_cpu_per_s;
  double marginal_cpu_per_1k_hb;
  int threads;
  int failed;
  size_t rtt_samples;
};

RunResult RunOnce(const std::string& controller_path, int n, Duration hb_interval, Duration window,
                  int cmd_rate) {
  const std::string info = "/tmp/channel-bench-" + std::to_string(getpid()) + ".json";
  Controller ctl = StartController(controller_path, info);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const ProcStats base = ReadProc(ctl.pid);
  auto http =
      std::move(*MakeHttpTransport({.base_url = "http://127.0.0.1:" + std::to_string(ctl.http_port),
                                    .timeout = std::chrono::seconds(10)}));
  auto metrics = std::move(
      *MakeHttpTransport({.base_url = "http://127.0.0.1:" + std::to_string(ctl.metrics_port),
                          .timeout = std::chrono::seconds(10)}));

  SimShared shared;
  const std::string target = "127.0.0.1:" + std::to_string(ctl.grpc_port);
  std::vector<std::unique_ptr<SimAgent>> agents;
  agents.reserve(n);
  const auto t0 = Clock::now();
  constexpr int kInFlight = 200;  // connects in progress at once, like a rollout would
  for (int i = 0; i < n; ++i) {
    {
      std::unique_lock l(shared.mu);
      shared.cv.wait(l, [&] { return i - shared.connected - shared.failed < kInFlight; });
    }
    agents.push_back(std::make_unique<SimAgent>(
        bench::SimAgentOptions{.vm_id = "bench-vm-" + std::to_string(i)}, target, &shared));
    agents.back()->Begin();
  }
  {
    std::unique_lock l(shared.mu);
    shared.cv.wait(l, [&] { return shared.connected + shared.failed == n; });
  }
  const double connect_s = std::chrono::duration<double>(Clock::now() - t0).count();

  // Phase 0: all connected, nothing sent: the fixed cost of holding N streams (keepalive
  // pings, timers, the hub's once-a-second sweep).
  const ProcStats idle0 = ReadProc(ctl.pid);
  const auto i0 = Clock::now();
  std::this_thread::sleep_for(window / 2);
  const double idle_secs = std::chrono::duration<double>(Clock::now() - i0).count();
  const double idle_cpu_per_s = (ReadProc(ctl.pid).cpu_seconds - idle0.cpu_seconds) / idle_secs;

  // Heartbeats: each agent on its own phase within the interval.
  std::atomic<bool> stop{false};
  std::thread ticker([&] {
    const auto start = Clock::now();
    std::vector<Clock::time_point> due(n);
    std::mt19937 rng(42);
    std::uniform_real_distribution<double> phase(0, 1);
    for (int i = 0; i < n; ++i) {
      due[i] = start + std::chrono::duration_cast<Clock::duration>(hb_interval * phase(rng));
    }
    while (!stop) {
      const auto now = Clock::now();
      for (int i = 0; i < n; ++i) {
        if (due[i] <= now) {
          agents[i]->Heartbeat();
          due[i] += hb_interval;
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  });

  // Let one full heartbeat interval pass so every agent is in its steady state.
  std::this_thread::sleep_for(hb_interval);

  // Phase 1: heartbeats only, to price their ingest.
  const ProcStats before = ReadProc(ctl.pid);
  const double hb_before = ScrapeCounter(*metrics, "mig_controller_heartbeats_received_total");
  const auto h0 = Clock::now();
  std::this_thread::sleep_for(window);
  const double hb_secs = std::chrono::duration<double>(Clock::now() - h0).count();
  const ProcStats after = ReadProc(ctl.pid);
  const double hb_after = ScrapeCounter(*metrics, "mig_controller_heartbeats_received_total");

  // Phase 2: commands at `cmd_rate`/s to random agents, spread over 4 callers, heartbeats on.
  const auto w0 = Clock::now();
  std::mutex lat_mu;
  std::vector<double> latencies;
  std::vector<std::thread> callers;
  const int kCallers = 4;
  for (int c = 0; c < kCallers; ++c) {
    callers.emplace_back([&, c] {
      auto client = std::move(
          *MakeHttpTransport({.base_url = "http://127.0.0.1:" + std::to_string(ctl.http_port),
                              .timeout = std::chrono::seconds(10)}));
      std::mt19937 rng(c);
      const auto period = std::chrono::duration<double>(kCallers / static_cast<double>(cmd_rate));
      auto next = Clock::now();
      while (Clock::now() - w0 < window) {
        next += std::chrono::duration_cast<Clock::duration>(period);
        std::this_thread::sleep_until(next);
        const int i = static_cast<int>(rng() % static_cast<unsigned>(n));
        const auto s = Clock::now();
        auto r = client->Do("POST", "/api/v1/vms/" + agents[i]->vm_id() + "/commands?wait=5s",
                            R"({"type":"set_log_level","string_params":{"level":"info"}})");
        const double ms = std::chrono::duration<double, std::milli>(Clock::now() - s).count();
        if (r.ok() && r->status == 200) {
          std::lock_guard l(lat_mu);
          latencies.push_back(ms);
        }
      }
    });
  }
  for (auto& t : callers) t.join();
  const ProcStats end = ReadProc(ctl.pid);

  stop = true;
  ticker.join();
  RunResult r{};
  r.connect_s = connect_s;
  r.hb_per_s = (hb_after - hb_before) / hb_secs;
  const double cpu = after.cpu_seconds - before.cpu_seconds;
  r.cpu_per_s = cpu / hb_secs;
  r.cpu_per_1k_hb = (hb_after - hb_before) > 0 ? cpu / ((hb_after - hb_before) / 1000.0) : -1;
  r.idle_cpu_per_s = idle_cpu_per_s;
  // What heartbeats add on top of holding the streams.
  r.marginal_cpu_per_1k_hb = (hb_after - hb_before) > 0 ? (cpu - idle_cpu_per_s * hb_secs) /
                                                              ((hb_after - hb_before) / 1000.0)
                                                        : -1;
  r.rtt_p50_ms = Percentile(latencies, 0.5);
  r.rtt_p99_ms = Percentile(latencies, 0.99);
  r.rtt_samples = latencies.size();
  r.rss_per_agent_kib = static_cast<double>(end.rss_kib - base.rss_kib) / n;
  r.threads = end.threads;
  r.failed = shared.failed;

  for (auto& a : agents) a->Stop();
  for (auto& a : agents) {
    while (!a->done()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  kill(ctl.pid, SIGTERM);
  int status;
  waitpid(ctl.pid, &status, 0);
  std::remove(info.c_str());
  return r;
}

// ---------------------------------------------------------------------------- flood
// What a stranger can make the controller hold: `n` HTTP heartbeats, each for a vm_id never seen
// before, over `conns` keep-alive connections (a plain HTTP/1.1 client on a socket, one request
// at a time per connection). Then, with hub.forget_after set short, how much is held once the
// made-up agents are forgotten; twice, to see that nothing accumulates.

// One keep-alive connection; Post returns the status code, or -1 when the connection failed.
class RawHttp {
 public:
  explicit RawHttp(int port) : port_(port) {}
  ~RawHttp() {
    if (fd_ >= 0) close(fd_);
  }
  int Post(const std::string& path, const std::string& body) {
    for (int attempt = 0; attempt < 2; ++attempt) {
      if (fd_ < 0 && !Connect()) return -1;
      const std::string req = "POST " + path +
                              " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                              "Content-Length: " +
                              std::to_string(body.size()) + "\r\n\r\n" + body;
      if (WriteAll(req)) {
        const int code = ReadResponse();
        if (code > 0) return code;
      }
      close(fd_);  // the server closed a kept-alive connection: once more on a new one
      fd_ = -1;
      buf_.clear();
    }
    return -1;
  }

 private:
  bool Connect() {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port_));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      close(fd_);
      fd_ = -1;
      return false;
    }
    int one = 1;
    setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return true;
  }
  bool WriteAll(const std::string& s) {
    for (size_t off = 0; off < s.size();) {
      const ssize_t w = send(fd_, s.data() + off, s.size() - off, MSG_NOSIGNAL);
      if (w <= 0) return false;
      off += static_cast<size_t>(w);
    }
    return true;
  }
  bool Fill() {
    char tmp[4096];
    const ssize_t r = recv(fd_, tmp, sizeof tmp, 0);
    if (r <= 0) return false;
    buf_.append(tmp, static_cast<size_t>(r));
    return true;
  }
  int ReadResponse() {
    size_t end;
    while ((end = buf_.find("\r\n\r\n")) == std::string::npos) {
      if (!Fill()) return -1;
    }
    const std::string head = buf_.substr(0, end);
    int code = -1;
    if (head.size() > 12) code = std::atoi(head.c_str() + 9);  // "HTTP/1.1 200 ..."
    size_t length = 0;
    std::string lower = head;
    std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
    if (auto at = lower.find("content-length:"); at != std::string::npos) {
      length = std::strtoul(lower.c_str() + at + 15, nullptr, 10);
    }
    while (buf_.size() < end + 4 + length) {
      if (!Fill()) return -1;
    }
    buf_.erase(0, end + 4 + length);
    return code;
  }
  int port_;
  int fd_ = -1;
  std::string buf_;
};

double ScrapeGauge(HttpTransport& metrics, const std::string& name) {
  return ScrapeCounter(metrics, name);
}

int Flood(const std::string& controller_path, long n, int conns, Duration forget_after) {
  const std::string dir = "/tmp/channel-bench-flood-" + std::to_string(getpid());
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/controller.yaml")
      << "hub:\n  forget_after: " << FormatDuration(forget_after) << "\n"
      << "heartbeat:\n  timeout: "
      << FormatDuration(std::min<Duration>(forget_after, std::chrono::seconds(45))) << "\n";
  Controller ctl = StartController(controller_path, dir + "/info.json",
                                   {"--config=" + dir + "/controller.yaml"});
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  auto metrics = std::move(
      *MakeHttpTransport({.base_url = "http://127.0.0.1:" + std::to_string(ctl.metrics_port),
                          .timeout = std::chrono::seconds(10)}));
  const ProcStats base = ReadProc(ctl.pid);
  std::printf(
      "# flood: %ld HTTP heartbeats for made-up vm_ids over %d connections; "
      "hub.forget_after %s\n",
      n, conns, FormatDuration(forget_after).c_str());
  std::printf("controller before: RSS %.1f MiB, %d threads\n", base.rss_kib / 1024.0, base.threads);
  for (int round = 1; round <= 2; ++round) {
    std::printf("round %d:\n", round);
    std::atomic<long> next{0}, ok{0}, refused{0}, other{0};
    long reported = 0;
    const auto t0 = Clock::now();
    std::vector<std::thread> workers;
    for (int c = 0; c < conns; ++c) {
      workers.emplace_back([&] {
        RawHttp http(ctl.http_port);
        for (long i; (i = next++) < n;) {
          const int code = http.Post("/api/v1/vms/made-up-" + std::to_string(round) + "-" +
                                         std::to_string(i) + "/heartbeat",
                                     "{\"miglet_state\":\"idle\"}");
          (code == 200 ? ok : code == 429 ? refused : other)++;
        }
      });
    }
    // Progress every 10% (RSS as it goes).
    while (next < n) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      const long done = ok + refused + other;
      if (done >= reported + n / 10) {
        reported = done;
        const ProcStats p = ReadProc(ctl.pid);
        std::printf(
            "  %8ld sent: %ld taken, %ld refused (429), %ld other; RSS %.1f MiB; "
            "agents known %.0f\n",
            done, ok.load(), refused.load(), other.load(), p.rss_kib / 1024.0,
            ScrapeGauge(*metrics, "mig_controller_agents_known"));
        std::fflush(stdout);
      }
    }
    for (auto& t : workers) t.join();
    const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
    const ProcStats after = ReadProc(ctl.pid);
    std::printf("flood done in %.1f s (%.0f requests/s): %ld taken, %ld refused (429), %ld other\n",
                secs, n / secs, ok.load(), refused.load(), other.load());
    std::printf(
        "controller after the flood: RSS %.1f MiB (+%.1f), %d threads, CPU %.1f s, "
        "agents known %.0f\n",
        after.rss_kib / 1024.0, (after.rss_kib - base.rss_kib) / 1024.0, after.threads,
        after.cpu_seconds - base.cpu_seconds, ScrapeGauge(*metrics, "mig_controller_agents_known"));
    // Forgotten once silent for forget_after (the sweep runs every second).
    const auto deadline = Clock::now() + forget_after + std::chrono::seconds(30);
    double known = -1;
    while (Clock::now() < deadline) {
      known = ScrapeGauge(*metrics, "mig_controller_agents_known");
      if (known == 0) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
    const ProcStats forgotten = ReadProc(ctl.pid);
    std::printf("after forget_after: agents known %.0f, RSS %.1f MiB (+%.1f over the start)\n",
                known, forgotten.rss_kib / 1024.0, (forgotten.rss_kib - base.rss_kib) / 1024.0);
  }
  kill(ctl.pid, SIGTERM);
  waitpid(ctl.pid, nullptr, 0);
  std::filesystem::remove_all(dir);
  return 0;
}

// `n` TCP connections to the gRPC port that send nothing: the controller must close every one
// at its handshake timeout and give back what they held; twice, to see that nothing
// accumulates.
int Silent(const std::string& controller_path, int n, Duration handshake_timeout) {
  const std::string dir = "/tmp/channel-bench-silent-" + std::to_string(getpid());
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/controller.yaml")
      << "grpc:\n  handshake_timeout: " << FormatDuration(handshake_timeout) << "\n";
  Controller ctl = StartController(controller_path, dir + "/info.json",
                                   {"--config=" + dir + "/controller.yaml"});
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const ProcStats base = ReadProc(ctl.pid);
  std::printf(
      "# silent: %d TCP connections to the gRPC port that send nothing; "
      "grpc.handshake_timeout %s\n",
      n, FormatDuration(handshake_timeout).c_str());
  size_t all_closed = 0;
  for (int round = 1; round <= 2; ++round) {
    std::printf("round %d:\n", round);
    std::vector<pollfd> fds;
    const auto t0 = Clock::now();
    for (int i = 0; i < n; ++i) {
      const int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_port = htons(static_cast<uint16_t>(ctl.grpc_port));
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      if (fd < 0 ||
          (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 && errno != EINPROGRESS)) {
        std::printf("connection %d failed: %s\n", i, strerror(errno));
        if (fd >= 0) close(fd);
        break;
      }
      fds.push_back({fd, POLLIN | POLLRDHUP, 0});
    }
    const double open_s = std::chrono::duration<double>(Clock::now() - t0).count();
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    const ProcStats held = ReadProc(ctl.pid);
    std::printf(
        "opened %zu in %.1f s; controller RSS %.1f MiB (+%.1f, %.1f KiB each), %d threads\n",
        fds.size(), open_s, held.rss_kib / 1024.0, (held.rss_kib - base.rss_kib) / 1024.0,
        fds.empty() ? 0.0 : (held.rss_kib - base.rss_kib) / static_cast<double>(fds.size()),
        held.threads);
    // Closed by the server: a read returns 0 (after whatever the server sent first).
    size_t closed = 0;
    std::vector<bool> gone(fds.size(), false);
    const auto deadline = Clock::now() + handshake_timeout + std::chrono::seconds(60);
    double last_s = 0;
    while (closed < fds.size() && Clock::now() < deadline) {
      if (poll(fds.data(), fds.size(), 1000) <= 0) continue;
      for (size_t i = 0; i < fds.size(); ++i) {
        if (gone[i] || fds[i].revents == 0) continue;
        char buf[1024];
        ssize_t r;
        while ((r = recv(fds[i].fd, buf, sizeof buf, 0)) > 0) {
        }
        if (r == 0 || (r < 0 && errno != EAGAIN)) {
          gone[i] = true;
          fds[i].events = 0;
          ++closed;
          last_s = std::chrono::duration<double>(Clock::now() - t0).count();
        }
      }
    }
    std::this_thread::sleep_for(std::chrono::seconds(2));
    const ProcStats after = ReadProc(ctl.pid);
    std::printf(
        "closed by the controller: %zu of %zu, the last %.1f s after the first was opened\n",
        closed, fds.size(), last_s);
    std::printf("controller 2 s later: RSS %.1f MiB (+%.1f over the start), %d threads\n",
                after.rss_kib / 1024.0, (after.rss_kib - base.rss_kib) / 1024.0, after.threads);
    // The controller hands freed memory back every 30 s (hub memory_trim_interval).
    std::this_thread::sleep_for(std::chrono::seconds(31));
    const ProcStats trimmed = ReadProc(ctl.pid);
    std::printf("controller 33 s later: RSS %.1f MiB (+%.1f over the start), %d threads\n",
                trimmed.rss_kib / 1024.0, (trimmed.rss_kib - base.rss_kib) / 1024.0,
                trimmed.threads);
    for (auto& p : fds) close(p.fd);
    all_closed += closed == fds.size();
  }
  kill(ctl.pid, SIGTERM);
  waitpid(ctl.pid, nullptr, 0);
  std::filesystem::remove_all(dir);
  return all_closed == 2 ? 0 : 1;
}

int Main(int argc, char** argv) {
  TuneRuntimeForServing();
  InitHttpThreads(8);
  std::string controller = MIGLET_CONTROLLER_PATH;
  std::vector<int> sizes = {1000};
  Duration hb = std::chrono::seconds(10), window = std::chrono::seconds(20);
  int runs = 3, rate = 50;
  FlagSet flags("channel_bench",
                "Opens N simulated agents against a mig-controller process and prints figures.");
  flags.String("controller", "PATH", "mig-controller binary",
               [&](const std::string& v) { controller = v; });
  flags.Value("agents", "N[,N...]", "agent counts to run (default 1000)",
              [&](const std::string& v) {
                sizes.clear();
                for (auto p : absl::StrSplit(v, ',')) {
                  int n;
                  if (!absl::SimpleAtoi(p, &n) || n <= 0)
                    return absl::InvalidArgumentError("bad count");
                  sizes.push_back(n);
                }
                return absl::OkStatus();
              });
  flags.Value("heartbeat-interval", "DURATION", "per agent (default 10s)",
              [&](const std::string& v) {
                auto d = ParseDuration(v);
                if (!d.ok()) return d.status();
                hb = *d;
                return absl::OkStatus();
              });
  flags.Value("window", "DURATION", "measurement window (default 20s)", [&](const std::string& v) {
    auto d = ParseDuration(v);
    if (!d.ok()) return d.status();
    window = *d;
    return absl::OkStatus();
  });
  flags.Value(
      "runs", "K", "runs per size; medians are reported (default 3)", [&](const std::string& v) {
        return absl::SimpleAtoi(v, &runs) && runs > 0 ? absl::OkStatus()
                                                      : absl::InvalidArgumentError("bad count");
      });
  flags.Value("command-rate", "R", "commands per second during the window (default 50)",
              [&](const std::string& v) {
                return absl::SimpleAtoi(v, &rate) && rate > 0
                           ? absl::OkStatus()
                           : absl::InvalidArgumentError("bad rate");
              });
  long flood = 0;
  int flood_conns = 8;
  Duration forget_after = std::chrono::minutes(1);
  flags.Value("flood", "N",
              "instead of agents: N HTTP heartbeats for made-up vm_ids, then how much is held",
              [&](const std::string& v) {
                return absl::SimpleAtoi(v, &flood) && flood > 0
                           ? absl::OkStatus()
                           : absl::InvalidArgumentError("bad count");
              });
  flags.Value("flood-connections", "K", "connections the flood uses (default 8)",
              [&](const std::string& v) {
                return absl::SimpleAtoi(v, &flood_conns) && flood_conns > 0
                           ? absl::OkStatus()
                           : absl::InvalidArgumentError("bad count");
              });
  flags.Value("forget-after", "DURATION", "the controller's hub.forget_after for --flood (1m)",
              [&](const std::string& v) {
                auto d = ParseDuration(v);
                if (!d.ok()) return d.status();
                forget_after = *d;
                return absl::OkStatus();
              });
  int silent = 0;
  Duration handshake_timeout = std::chrono::seconds(10);
  flags.Value("silent", "N",
              "instead of agents: N TCP connections that send nothing, until the controller "
              "closes them",
              [&](const std::string& v) {
                return absl::SimpleAtoi(v, &silent) && silent > 0
                           ? absl::OkStatus()
                           : absl::InvalidArgumentError("bad count");
              });
  flags.Value("handshake-timeout", "DURATION", "the controller's for --silent (10s)",
              [&](const std::string& v) {
                auto d = ParseDuration(v);
                if (!d.ok()) return d.status();
                handshake_timeout = *d;
                return absl::OkStatus();
              });
  if (auto st = flags.Parse(argc, argv); !st.ok()) {
    std::cerr << "channel_bench: " << st.message() << "\n";
    return 2;
  }
  if (flags.help()) {
    std::cout << flags.Usage();
    return 0;
  }
  rlimit rl;
  getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = rl.rlim_max;
  setrlimit(RLIMIT_NOFILE, &rl);  // the controller inherits it
  signal(SIGPIPE, SIG_IGN);
  if (flood > 0) return Flood(controller, flood, flood_conns, forget_after);
  if (silent > 0) return Silent(controller, silent, handshake_timeout);

  char host[256] = {0};
  gethostname(host, sizeof(host) - 1);
  std::printf(
      "# channel_bench on %s: %ld cores, open-file limit %llu, heartbeat every %.0fs, "
      "window %.0fs, %d commands/s\n",
      host, sysconf(_SC_NPROCESSORS_ONLN), static_cast<unsigned long long>(rl.rlim_cur),
      ToSeconds(hb), ToSeconds(window), rate);
  std::printf("%-7s %-4s %9s %9s %11s %11s %9s %9s %10s %8s %10s %7s %6s\n", "agents", "run",
              "connect_s", "hb_per_s", "cpu_s/1k_hb", "marg/1k_hb", "idle_cpu", "cpu_s/s",
              "rtt_p50_ms", "rtt_p99", "KiB/agent", "threads", "failed");
  for (int n : sizes) {
    std::vector<RunResult> rs;
    for (int k = 0; k < runs; ++k) {
      rs.push_back(RunOnce(controller, n, hb, window, rate));
      const auto& r = rs.back();
      std::printf("%-7d %-4d %9.2f %9.0f %11.4f %11.4f %9.3f %9.3f %10.2f %8.2f %10.1f %7d %6d\n",
                  n, k + 1, r.connect_s, r.hb_per_s, r.cpu_per_1k_hb, r.marginal_cpu_per_1k_hb,
                  r.idle_cpu_per_s, r.cpu_per_s, r.rtt_p50_ms, r.rtt_p99_ms, r.rss_per_agent_kib,
                  r.threads, r.failed);
      std::fflush(stdout);
    }
    auto med = [&](auto f) {
      std::vector<double> v;
      for (const auto& r : rs) v.push_back(f(r));
      return Median(v);
    };
    std::printf(
        "%-7d %-4s %9.2f %9.0f %11.4f %11.4f %9.3f %9.3f %10.2f %8.2f %10.1f %7.0f %6.0f\n", n,
        "med", med([](auto& r) { return r.connect_s; }), med([](auto& r) { return r.hb_per_s; }),
        med([](auto& r) { return r.cpu_per_1k_hb; }),
        med([](auto& r) { return r.marginal_cpu_per_1k_hb; }),
        med([](auto& r) { return r.idle_cpu_per_s; }), med([](auto& r) { return r.cpu_per_s; }),
        med([](auto& r) { return r.rtt_p50_ms; }), med([](auto& r) { return r.rtt_p99_ms; }),
        med([](auto& r) { return r.rss_per_agent_kib; }),
        med([](auto& r) { return static_cast<double>(r.threads); }),
        med([](auto& r) { return static_cast<double>(r.failed); }));
    std::fflush(stdout);
  }
  return 0;
}

}  // namespace
}  // namespace miglet

int main(int argc, char** argv) { return miglet::Main(argc, argv); }
