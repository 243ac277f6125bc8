// Informer initial list + sync time against a real kube-apiserver (hack/cluster/up.sh in a
// directory of its own, torn down at the end). Prints figures; asserts nothing.
//
//   kube_informer_bench [--objects=10000] [--runs=3] [--kubeconfig=PATH]
// With --kubeconfig the bench uses that cluster instead of starting one.
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "miglet/operator/kube/errors.h"
#include "miglet/operator/kube/informer.h"
#include "spdlog/spdlog.h"

using namespace miglet::kube;
using Clock = std::chrono::steady_clock;

namespace {

double Since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

long RssKb() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::atol(line.c_str() + 6);
  }
  return 0;
}

std::string Flag(int argc, char** argv, const std::string& name, const std::string& def) {
  const std::string prefix = "--" + name + "=";
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]).rfind(prefix, 0) == 0) return argv[i] + prefix.size();
  }
  return def;
}

}  // namespace

int main(int argc, char** argv) {
  spdlog::set_level(spdlog::level::warn);
  const int objects = std::stoi(Flag(argc, argv, "objects", "10000"));
  const int runs = std::stoi(Flag(argc, argv, "runs", "3"));
  std::string kubeconfig = Flag(argc, argv, "kubeconfig", "");
  std::string cluster_dir;
  const std::string env_prefix = [&] {
    if (!kubeconfig.empty()) return std::string();
    char tmpl[] = "/tmp/miglet-kube-bench-XXXXXX";
    if (!mkdtemp(tmpl)) abort();
    cluster_dir = tmpl;
    return "MIGLET_CLUSTER_DIR=" + cluster_dir + " ";
  }();
  if (!cluster_dir.empty()) {
    const auto t = Clock::now();
    const std::string up = env_prefix + MIGLET_SOURCE_DIR "/hack/cluster/up.sh >/dev/null";
    if (std::system(up.c_str()) != 0) {
      fprintf(stderr, "up.sh failed (logs in %s/logs)\n", cluster_dir.c_str());
      return 1;
    }
    printf("control plane up (up.sh, fresh state): %.1f s\n", Since(t));
    kubeconfig = cluster_dir + "/kubeconfig";
  }
  int rc = 0;
  [&] {
    auto cfg = LoadKubeconfig(kubeconfig);
    if (!cfg.ok()) {
      fprintf(stderr, "%s\n", cfg.status().ToString().c_str());
      rc = 1;
      return;
    }
    auto made = MakeKubeClient(*cfg);
    if (!made.ok()) {
      fprintf(stderr, "%s\n", made.status().ToString().c_str());
      rc = 1;
      return;
    }
    std::shared_ptr<KubeClient> client(std::move(*made));
    const std::string ns = "bench-informer";
    (void)client->Create(
        Namespaces(), "",
        {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", ns}}}});

    // Objects the size of a small controller object: ~600 bytes of data each.
    const std::string payload(512, 'x');
    std::atomic<int> next{0}, failed{0};
    const auto t_create = Clock::now();
    std::vector<std::thread> writers;
    for (int w = 0; w < 16; ++w) {
      writers.emplace_back([&] {
        for (int i; (i = next++) < objects;) {
          Json cm = {{"apiVersion", "v1"},
                     {"kind", "ConfigMap"},
                     {"metadata",
                      {{"name", "cm-" + std::to_string(i)},
                       {"namespace", ns},
                       {"labels", {{"app", "bench"}, {"shard", std::to_string(i % 16)}}}}},
                     {"data", {{"payload", payload}, {"index", std::to_string(i)}}}};
          auto r = client->Create(ConfigMaps(), ns, cm);
          if (!r.ok() && !miglet::kube::IsAlreadyExists(r.status())) ++failed;
        }
      });
    }
    for (auto& t : writers) t.join();
    const double create_s = Since(t_create);
    printf("created %d ConfigMaps in %.1f s (%.0f/s, 16 writers), %d failed\n", objects, create_s,
           objects / create_s, failed.load());

    for (int64_t page : {int64_t{500}, int64_t{0}}) {
      for (int run = 1; run <= runs; ++run) {
        const long rss0 = RssKb();
        const auto t_list = Clock::now();
        auto all = client->ListAll(ConfigMaps(), ns, {.limit = page});
        const double list_s = Since(t_list);
        if (!all.ok()) {
          fprintf(stderr, "list: %s\n", all.status().ToString().c_str());
          rc = 1;
          return;
        }
        const size_t listed = all->items.size();
        all->items.clear();

        std::atomic<int> adds{0};
        auto inf = MakeInformer(client, {.resource = ConfigMaps(), .ns = ns, .page_size = page});
        inf->AddEventHandler({[&](const Json&) { ++adds; }, nullptr, nullptr});
        const auto t_sync = Clock::now();
        inf->Start();
        if (!inf->WaitForSync(std::chrono::minutes(10))) {
          fprintf(stderr, "informer did not sync\n");
          rc = 1;
          return;
        }
        const double sync_s = Since(t_sync);
        const long rss1 = RssKb();
        printf(
            "page %-5s run %d: informer list+sync %zu objects in %.2f s (%.0f objects/s; "
            "handlers %d); plain ListAll %.2f s; RSS +%.1f MiB\n",
            page ? std::to_string(page).c_str() : "all", run, inf->ListKeys().size(), sync_s,
            inf->ListKeys().size() / sync_s, adds.load(), list_s, (rss1 - rss0) / 1024.0);
        (void)listed;
        inf->Stop();
      }
    }
  }();
  if (!cluster_dir.empty()) {
    const std::string down = env_prefix + MIGLET_SOURCE_DIR "/hack/cluster/down.sh >/dev/null";
    if (std::system(down.c_str()) != 0) fprintf(stderr, "down.sh failed\n");
  }
  return rc;
}
