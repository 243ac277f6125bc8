#include "miglet/common/metrics_server.h"

#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include "miglet/common/net.h"

namespace miglet {

absl::StatusOr<std::pair<std::unique_ptr<HttpServer>, int>> StartMetricsServer(
    const std::string& listen, std::shared_ptr<prometheus::Registry> registry, Probes probes,
    MetricsAuthorizer authorize, HttpServerTls tls) {
  auto hp = SplitHostPort(listen);
  if (!hp.ok()) return hp.status();
  auto probe = [](const std::function<absl::Status()>& f, HttpReply& reply) {
    const absl::Status st = f ? f() : absl::OkStatus();
    if (st.ok()) {
      reply(HttpResponse{200, "ok\n", "text/plain"});
    } else {
      reply(HttpResponse{503, std::string(st.message()) + "\n", "text/plain"});
    }
  };
  auto server = MakeHttpServer(
      hp->first, hp->second,
      [registry, probes, probe, authorize](const HttpRequest& r, HttpReply reply) {
        if (r.path == "/metrics") {
          auto serve = [registry, reply](const absl::Status& st) {
            if (st.ok()) {
              prometheus::TextSerializer s;
              reply(HttpResponse{200, s.Serialize(registry->Collect()),
                                 "text/plain; version=0.0.4; charset=utf-8"});
              return;
            }
            reply(HttpResponse{RefusalOf(st).http_status, std::string(st.message()) + "\n",
                               "text/plain"});
          };
          if (authorize) {
            authorize(r, serve);
          } else {
            serve(absl::OkStatus());
          }
        } else if (r.path == "/healthz") {
          probe(probes.healthz, reply);
        } else if (r.path == "/readyz") {
          probe(probes.readyz, reply);
        } else {
          reply(HttpResponse{404, "not found: try /metrics, /healthz or /readyz\n", "text/plain"});
        }
      },
      std::move(tls));
  auto port = server->Start();
  if (!port.ok()) return port.status();
  return std::make_pair(std::move(server), *port);
}

}  // namespace miglet
