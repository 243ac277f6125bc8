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

// host:port, port 0 for any free one. Returns the server (Start() already called) and its port.
absl::StatusOr<std::pair<std::unique_ptr<HttpServer>, int>> StartMetricsServer(
    const std::string& listen, std::shared_ptr<prometheus::Registry> registry, Probes probes);

}  // namespace miglet
