// Two processes contend for one Lease on a real apiserver.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <iostream>

#include "../exec_args.h"
#include "common.h"
#include "miglet/operator/kube/leader_elector.h"

namespace miglet::kube::testing {
namespace {

TestCluster& C() { return ClusterEnvironment::Cluster(); }
std::string NS() { return TestNamespace(); }

// A kube_lease_holder child and what it has printed so far.
class Contender {
 public:
  explicit Contender(const std::string& id) : id_(id) {
    const std::string ns = NS();  // made here, not in the child
    int fds[2];
    if (pipe(fds) != 0) abort();
    const ::miglet::testing::ExecArgs exec(
        {KUBE_LEASE_HOLDER, C().kubeconfig(), ns, "mig-controller", id});
    pid_ = fork();
    if (pid_ == 0) {
      dup2(fds[1], 1);
      close(fds[0]);
      close(fds[1]);
      exec.Exec();
      _exit(127);
    }
    close(fds[1]);
    fd_ = fds[0];
    fcntl(fd_, F_SETFL, O_NONBLOCK);
  }
  ~Contender() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    close(fd_);
  }
  std::string Output() {
    char buf[4096];
    ssize_t n;
    while ((n = read(fd_, buf, sizeof buf)) > 0) out_.append(buf, n);
    return out_;
  }
  bool Said(const std::string& what) {
    return Output().find(what + " " + id_) != std::string::npos;
  }
  void Kill(int sig) {
    kill(pid_, sig);
    int status = 0;
    waitpid(pid_, &status, 0);
    exit_status_ = status;
    pid_ = -1;
  }
  int exit_status() const { return exit_status_; }
  const std::string& id() const { return id_; }

 private:
  std::string id_;
  pid_t pid_ = -1;
  int fd_ = -1;
  std::string out_;
  int exit_status_ = -1;
};

std::string Holder(KubeClient& c, const std::string& lease = "mig-controller") {
  auto l = c.Get(Leases(), NS(), lease);
  if (!l.ok()) return "";
  return l->value("spec", Json::object()).value("holderIdentity", "");
}

TEST(LeaseTest, ExactlyOneLeadsAndTheOtherTakesOverWhenItDies) {
  auto c = C().Client();
  Contender a("replica-a"), b("replica-b");
  // One of them gets the lease (it did not exist).
  ASSERT_TRUE(Eventually([&] { return a.Said("LEADING") || b.Said("LEADING"); }));
  Contender& leader = a.Said("LEADING") ? a : b;
  Contender& follower = &leader == &a ? b : a;
  EXPECT_EQ(Holder(*c), leader.id());
  // The other keeps trying every 2 s and keeps failing: watch a few rounds of it.
  auto l0 = c->Get(Leases(), NS(), "mig-controller");
  ASSERT_TRUE(l0.ok());
  const std::string rv0 = ResourceVersionOf(*l0);
  ASSERT_TRUE(Eventually([&] {  // the leader has renewed at least twice since
    auto l = c->Get(Leases(), NS(), "mig-controller");
    return l.ok() && std::stoll(ResourceVersionOf(*l)) > std::stoll(rv0) + 1;
  }));
  EXPECT_FALSE(follower.Said("LEADING")) << follower.Output();
  EXPECT_EQ(Holder(*c), leader.id());
  auto lease = c->Get(Leases(), NS(), "mig-controller");
  EXPECT_EQ((*lease)["spec"]["leaseDurationSeconds"], 15);

  // A crash: no release, so the follower waits out the 15 s lease, then takes it.
  const auto killed_at = std::chrono::steady_clock::now();
  leader.Kill(SIGKILL);
  ASSERT_TRUE(Eventually([&] { return follower.Said("LEADING"); }, std::chrono::seconds(45)))
      << follower.Output();
  const double takeover =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - killed_at).count();
  EXPECT_EQ(Holder(*c), follower.id());
  lease = c->Get(Leases(), NS(), "mig-controller");
  EXPECT_EQ((*lease)["spec"]["leaseTransitions"], 1);
  std::cout << "takeover after SIGKILL of the leader: " << takeover
            << " s (lease 15 s, retry 2 s)\n";

  // A clean shutdown releases the lease: a new contender gets it without waiting it out.
  Contender d("replica-d");
  ASSERT_TRUE(Eventually([&] {  // d has looked at least once and found it held
    return !d.Said("LEADING") && Holder(*c) == follower.id();
  }));
  const auto stopped_at = std::chrono::steady_clock::now();
  follower.Kill(SIGTERM);
  EXPECT_TRUE(WIFEXITED(follower.exit_status()) && WEXITSTATUS(follower.exit_status()) == 0);
  EXPECT_TRUE(follower.Said("STOPPED")) << follower.Output();
  ASSERT_TRUE(Eventually([&] { return d.Said("LEADING"); }, std::chrono::seconds(45)));
  std::cout << "takeover after a clean shutdown: "
            << std::chrono::duration<double>(std::chrono::steady_clock::now() - stopped_at).count()
            << " s\n";
  EXPECT_EQ(Holder(*c), "replica-d");
}

TEST(LeaseTest, LosingTheLeaseIsSignalledAtOnce) {
  auto c = C().Client();
  std::atomic<int> started{0}, stopped{0};
  LeaderElectionConfig cfg;
  cfg.lease_namespace = NS();
  cfg.lease_name = "stolen";
  cfg.identity = "in-process";
  cfg.retry_period = std::chrono::milliseconds(200);
  cfg.on_started_leading = [&] { ++started; };
  cfg.on_stopped_leading = [&] { ++stopped; };
  auto e = MakeLeaderElector(c, cfg, MakeRealClock());
  e->Start();
  ASSERT_TRUE(Eventually([&] { return e->IsLeader(); }));
  EXPECT_EQ(started, 1);
  // Someone overwrites the holder (an operator with kubectl, a replica with a bad clock).
  auto l = c->Get(Leases(), NS(), "stolen");
  ASSERT_TRUE(l.ok());
  (*l)["spec"]["holderIdentity"] = "intruder";
  (*l)["spec"]["renewTime"] = "2030-01-01T00:00:00.000000Z";
  ASSERT_TRUE(c->Update(Leases(), NS(), *l).ok());
  ASSERT_TRUE(Eventually([&] { return stopped == 1; }));
  EXPECT_FALSE(e->IsLeader());
  EXPECT_EQ(e->Leader(), "intruder");
  e->Stop();
  EXPECT_EQ(stopped, 1);                        // not signalled twice
  EXPECT_EQ(Holder(*c, "stolen"), "intruder");  // not ours to release
}

}  // namespace
}  // namespace miglet::kube::testing

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  ::testing::AddGlobalTestEnvironment(new miglet::kube::testing::ClusterEnvironment(""));
  return RUN_ALL_TESTS();
}
