#include "miglet/operator/kube/instrumented_client.h"

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <chrono>
#include <type_traits>

#include "miglet/operator/kube/errors.h"

namespace miglet::kube {
namespace {

class InstrumentedClient final : public KubeClient {
 public:
  InstrumentedClient(std::shared_ptr<KubeClient> inner, prometheus::Registry& registry)
      : inner_(std::move(inner)),
        requests_(prometheus::BuildCounter()
                      .Name("mig_controller_kube_requests_total")
                      .Help("Kubernetes API requests by verb, resource and result code")
                      .Register(registry)),
        durations_(prometheus::BuildHistogram()
                       .Name("mig_controller_kube_request_duration_seconds")
                       .Help("Kubernetes API request latency by verb (a watch: until it opened)")
                       .Register(registry)) {}

  absl::StatusOr<Json> Get(const Resource& r, const std::string& ns, const std::string& name,
                           const std::string& sub) override {
    return Timed("get", r, sub, [&] { return inner_->Get(r, ns, name, sub); });
  }
  absl::StatusOr<ListResult> List(const Resource& r, const std::string& ns,
                                  const ListOptions& opts) override {
    return Timed("list", r, "", [&] { return inner_->List(r, ns, opts); });
  }
  absl::StatusOr<Json> Create(const Resource& r, const std::string& ns, const Json& obj) override {
    return Timed("create", r, "", [&] { return inner_->Create(r, ns, obj); });
  }
  absl::StatusOr<Json> Update(const Resource& r, const std::string& ns, const Json& obj,
                              const std::string& sub) override {
    return Timed("update", r, sub, [&] { return inner_->Update(r, ns, obj, sub); });
  }
  absl::StatusOr<Json> Patch(const Resource& r, const std::string& ns, const std::string& name,
                             PatchType type, const Json& patch, const std::string& sub) override {
    return Timed("patch", r, sub, [&] { return inner_->Patch(r, ns, name, type, patch, sub); });
  }
  absl::StatusOr<Json> Apply(const Resource& r, const std::string& ns, const Json& obj,
                             const ApplyOptions& opts, const std::string& sub) override {
    return Timed("apply", r, sub, [&] { return inner_->Apply(r, ns, obj, opts, sub); });
  }
  absl::Status Delete(const Resource& r, const std::string& ns, const std::string& name,
                      const DeleteOptions& opts) override {
    const auto start = std::chrono::steady_clock::now();
    absl::Status s = inner_->Delete(r, ns, name, opts);
    durations_.Add({{"verb", "delete"}}, kBuckets)
        .Observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    Inc("delete", r, "", s);
    return s;
  }
  absl::StatusOr<std::unique_ptr<WatchStream>> Watch(const Resource& r, const std::string& ns,
                                                     const WatchOptions& opts) override {
    return Timed("watch", r, "", [&] { return inner_->Watch(r, ns, opts); });
  }

 private:
  template <typename T>
  T Count(const char* verb, const Resource& r, const std::string& sub, T result) {
    Inc(verb, r, sub, result.status());
    return result;
  }
  // Times `call` and counts its result.
  template <typename F>
  std::invoke_result_t<F> Timed(const char* verb, const Resource& r, const std::string& sub,
                                F call) {
    const auto start = std::chrono::steady_clock::now();
    auto result = call();
    durations_.Add({{"verb", verb}}, kBuckets)
        .Observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    return Count(verb, r, sub, std::move(result));
  }
  void Inc(const char* verb, const Resource& r, const std::string& sub, const absl::Status& s) {
    std::string code = "2xx";
    if (!s.ok()) {
      const auto e = GetKubeError(s);
      code = e && e->code > 0 ? std::to_string(e->code) : "error";
    }
    requests_
        .Add({{"verb", verb},
              {"resource", sub.empty() ? r.resource : r.resource + "/" + sub},
              {"code", code}})
        .Increment();
  }

  inline static const prometheus::Histogram::BucketBoundaries kBuckets = {
      0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
  std::shared_ptr<KubeClient> inner_;
  prometheus::Family<prometheus::Counter>& requests_;
  prometheus::Family<prometheus::Histogram>& durations_;
};

}  // namespace

std::unique_ptr<KubeClient> InstrumentKubeClient(std::shared_ptr<KubeClient> inner,
                                                 prometheus::Registry& registry) {
  return std::make_unique<InstrumentedClient>(std::move(inner), registry);
}

}  // namespace miglet::kube
