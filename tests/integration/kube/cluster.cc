#include "cluster.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>
#include <vector>

namespace miglet::kube::testing {

namespace {
const std::string kSource = MIGLET_SOURCE_DIR;

std::string Quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

absl::StatusOr<std::string> Run(const std::string& cmd) {
  FILE* p = popen(("(" + cmd + ") 2>&1").c_str(), "r");
  if (!p) return absl::InternalError("popen failed: " + cmd);
  std::string out;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  const int rc = pclose(p);
  if (rc != 0) {
    return absl::InternalError("`" + cmd + "` exited " + std::to_string(rc) + ":\n" + out);
  }
  return out;
}
}  // namespace

bool Eventually(const std::function<bool()>& cond, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return cond();
}

absl::StatusOr<std::unique_ptr<TestCluster>> TestCluster::Start(const std::string& args) {
  // up.sh would build missing tools itself, but a cold build (11-20 min) inside a test only
  // runs into the test's timeout: say what to run instead.
  const char* tools_env = std::getenv("MIGLET_TOOLS_DIR");
  const std::string bin =
      (tools_env && *tools_env ? std::string(tools_env) : kSource + "/build/tools") + "/bin/";
  for (const char* tool : {"kube-apiserver", "kube-controller-manager", "etcd", "etcdctl"}) {
    if (access((bin + tool).c_str(), X_OK) != 0) {
      return absl::FailedPreconditionError(
          bin + tool + " is missing: build the control plane first with `make kube-tools` " +
          "(hack/cluster/build-tools.sh kube etcd)");
    }
  }
  char tmpl[] = "/tmp/miglet-kube-test-XXXXXX";
  if (!mkdtemp(tmpl)) return absl::InternalError("mkdtemp failed");
  std::unique_ptr<TestCluster> c(new TestCluster(tmpl, args));
  auto out = c->StartAgain();
  if (!out.ok()) return out;
  return c;
}

absl::StatusOr<std::unique_ptr<TestCluster>> TestCluster::Attach(const std::string& dir) {
  if (access((dir + "/kubeconfig").c_str(), R_OK) != 0) {
    return absl::FailedPreconditionError("no control plane in " + dir +
                                         " (no kubeconfig): ctest starts it with the "
                                         "kube_shared_cluster_up test");
  }
  return std::unique_ptr<TestCluster>(new TestCluster(dir, "", /*owned=*/false));
}

std::string TestCluster::Env() const {
  return "MIGLET_CLUSTER_DIR=" + Quote(dir_) + " MIGLET_APISERVER_ARGS=" + Quote(args_) + " ";
}

absl::Status TestCluster::StartAgain() {
  auto r = Run(Env() + kSource + "/hack/cluster/up.sh");
  return r.status();
}

TestCluster::~TestCluster() {
  if (!owned_) return;
  auto r = Run(Env() + kSource + "/hack/cluster/down.sh");
  if (!r.ok()) fprintf(stderr, "down.sh: %s\n", std::string(r.status().message()).c_str());
}

KubeConfig TestCluster::Config() const {
  auto cfg = LoadKubeconfig(kubeconfig());
  if (!cfg.ok()) {
    fprintf(stderr, "%s\n", cfg.status().ToString().c_str());
    abort();
  }
  return *cfg;
}

std::shared_ptr<KubeClient> TestCluster::Client() const {
  auto c = MakeKubeClient(Config());
  if (!c.ok()) {
    fprintf(stderr, "%s\n", c.status().ToString().c_str());
    abort();
  }
  return std::shared_ptr<KubeClient>(std::move(*c));
}

absl::StatusOr<std::string> TestCluster::Sh(const std::string& cmd) const {
  return Run("bash -c " + Quote("export " + Env() + "; source " + kSource +
                                "/hack/cluster/env.sh >/dev/null; " + cmd));
}

absl::Status TestCluster::InstallCrds() const {
  auto r =
      Sh("kubectl apply --server-side --force-conflicts -f " + Quote(kSource + "/deploy/crds") +
         " && kubectl wait --for=condition=Established --timeout=60s "
         "crd/runnerpools.miglet.dev crd/runnervms.miglet.dev");
  if (!r.ok()) return r.status();
  // Established is not yet published: the apiserver adds a new CRD's schema to its OpenAPI
  // documents (what `kubectl explain` reads) a moment later.
  const std::string explain =
      "kubectl explain runnerpools.spec >/dev/null && "
      "kubectl explain runnervms.spec >/dev/null";
  if (Eventually([&] { return Sh(explain).ok(); })) return absl::OkStatus();
  return Sh(explain).status();
}

absl::Status TestCluster::KillApiserver() {
  std::ifstream in(dir_ + "/run/kube-apiserver.pid");
  pid_t pid = 0;
  in >> pid;
  if (pid <= 0) return absl::NotFoundError("no kube-apiserver pid file");
  if (kill(pid, SIGKILL) != 0) return absl::InternalError("kill kube-apiserver failed");
  // It is not our child (setsid in up.sh): wait for /proc to forget it.
  if (!Eventually([&] { return kill(pid, 0) != 0; })) {
    return absl::DeadlineExceededError("kube-apiserver did not die");
  }
  return absl::OkStatus();
}

absl::StatusOr<int64_t> TestCluster::CompactEtcd() {
  auto st = Sh("etcdctl endpoint status -w json");
  if (!st.ok()) return st.status();
  const auto j = Json::parse(*st, nullptr, false);
  if (!j.is_array() || j.empty()) return absl::InternalError("etcdctl status: " + *st);
  const int64_t rev = j[0]["Status"]["header"]["revision"].get<int64_t>();
  auto c = Sh("etcdctl compact " + std::to_string(rev));
  if (!c.ok()) return c.status();
  return rev;
}

// ---------------------------------------------------------------- TcpRelay

struct TcpRelay::Impl {
  int target = 0;
  int listen_fd = -1;
  std::atomic<bool> cut{false};
  std::atomic<bool> stop{false};
  std::mutex mu;
  std::set<int> fds;
  std::vector<std::thread> threads;
  std::thread acceptor;

  void CloseAll() {
    std::lock_guard l(mu);
    for (int fd : fds) shutdown(fd, SHUT_RDWR);
  }

  void Pump(int a, int b) {
    std::array<char, 16384> buf;
    pollfd p[2] = {{a, POLLIN, 0}, {b, POLLIN, 0}};
    while (!stop) {
      if (poll(p, 2, 200) < 0) break;
      bool done = false;
      for (int i = 0; i < 2 && !done; ++i) {
        if (!(p[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
        const ssize_t n = read(p[i].fd, buf.data(), buf.size());
        if (n <= 0) {
          done = true;
          break;
        }
        ssize_t off = 0;
        while (off < n) {
          const ssize_t w = write(p[1 - i].fd, buf.data() + off, n - off);
          if (w <= 0) {
            done = true;
            break;
          }
          off += w;
        }
      }
      if (done) break;
    }
    std::lock_guard l(mu);
    fds.erase(a);
    fds.erase(b);
    close(a);
    close(b);
  }

  void Accept() {
    while (!stop) {
      pollfd p{listen_fd, POLLIN, 0};
      if (poll(&p, 1, 100) <= 0) continue;
      const int c = accept(listen_fd, nullptr, nullptr);
      if (c < 0) continue;
      if (cut) {
        close(c);
        continue;
      }
      const int s = socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in addr{};
      addr.sin_family = AF_INET;
      addr.sin_port = htons(target);
      addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      if (connect(s, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        close(s);
        close(c);
        continue;
      }
      std::lock_guard l(mu);
      fds.insert(c);
      fds.insert(s);
      threads.emplace_back([this, c, s] { Pump(c, s); });
    }
  }
};

TcpRelay::TcpRelay(int target_port) : impl_(std::make_unique<Impl>()) {
  impl_->target = target_port;
  impl_->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = 0;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(impl_->listen_fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  listen(impl_->listen_fd, 64);
  socklen_t len = sizeof addr;
  getsockname(impl_->listen_fd, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
  impl_->acceptor = std::thread([this] { impl_->Accept(); });
}

TcpRelay::~TcpRelay() {
  impl_->stop = true;
  impl_->CloseAll();
  impl_->acceptor.join();
  for (auto& t : impl_->threads) t.join();
  close(impl_->listen_fd);
}

void TcpRelay::Cut() {
  impl_->cut = true;
  impl_->CloseAll();
}

void TcpRelay::Restore() { impl_->cut = false; }

}  // namespace miglet::kube::testing
