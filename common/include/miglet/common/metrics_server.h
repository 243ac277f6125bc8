#pragma once

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "miglet/common/http.h"

namespace prometheus {
class Registry;
}

namespace miglet {

// /metrics (Prometheus text format), /healthz and /readyz on one port. A probe returns 200
// when its function says OK, else 503 with the reason.
struct Probes {
  std::function<absl::Status()> healthz;
  std::function<absl::Status()> readyz;
};

// Decides whether a request for /metrics is served: OK, or UNAUTHENTICATED (401),
// PERMISSION_DENIED (403), anything else (503); `done` is called once, on any thread.
using MetricsAuthorizer =
    std::function<void(const HttpRequest& request, std::function<void(absl::Status)> done)>;

// host:port, port 0 for any free one. Returns the server (Start() already called) and its port.
// `authorize` unset: /metrics is open. The probes are always open.
absl::StatusOr<std::pair<std::unique_ptr<HttpServer>, int>> StartMetricsServer(
    const std::string& listen, std::shared_ptr<prometheus::Registry> registry, Probes probes,
    MetricsAuthorizer authorize = {}, HttpServerTls tls = {});

}  // namespace miglet
