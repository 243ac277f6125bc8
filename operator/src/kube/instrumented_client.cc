#include "miglet/operator/kube/instrumented_client.h"

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/registry.h>

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
                      .Register(registry)) {}

  absl::StatusOr<Json> Get(const Resource& r, const std::string& ns, const std::string& name,
                           const std::string& sub) override {
    return Count("get", r, sub, inner_->Get(r, ns, name, sub));
  }
  absl::StatusOr<ListResult> List(const Resource& r, const std::string& ns,
                                  const ListOptions& opts) override {
    return Count("list", r, "", inner_->List(r, ns, opts));
  }
  absl::StatusOr<Json> Create(const Resource& r, const std::string& ns, const Json& obj) override {
    return Count("create", r, "", inner_->Create(r, ns, obj));
  }
  absl::StatusOr<Json> Update(const Resource& r, const std::string& ns, const Json& obj,
                              const std::string& sub) override {
    return Count("update", r, sub, inner_->Update(r, ns, obj, sub));
  }
  absl::StatusOr<Json> Patch(const Resource& r, const std::string& ns, const std::string& name,
                             PatchType type, const Json& patch, const std::string& sub) override {
    return Count("patch", r, sub, inner_->Patch(r, ns, name, type, patch, sub));
  }
  absl::StatusOr<Json> Apply(const Resource& r, const std::string& ns, const Json& obj,
                             const ApplyOptions& opts, const std::string& sub) override {
    return Count("apply", r, sub, inner_->Apply(r, ns, obj, opts, sub));
  }
  absl::Status Delete(const Resource& r, const std::string& ns, const std::string& name,
                      const DeleteOptions& opts) override {
    absl::Status s = inner_->Delete(r, ns, name, opts);
    Inc("delete", r, "", s);
    return s;
  }
  absl::StatusOr<std::unique_ptr<WatchStream>> Watch(const Resource& r, const std::string& ns,
                                                     const WatchOptions& opts) override {
    return Count("watch", r, "", inner_->Watch(r, ns, opts));
  }

 private:
  template <typename T>
  T Count(const char* verb, const Resource& r, const std::string& sub, T result) {
    Inc(verb, r, sub, result.status());
    return result;
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

  std::shared_ptr<KubeClient> inner_;
  prometheus::Family<prometheus::Counter>& requests_;
};

}  // namespace

std::unique_ptr<KubeClient> InstrumentKubeClient(std::shared_ptr<KubeClient> inner,
                                                 prometheus::Registry& registry) {
  return std::make_unique<InstrumentedClient>(std::move(inner), registry);
}

}  // namespace miglet::kube
