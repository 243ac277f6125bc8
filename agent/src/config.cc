#include "miglet/agent/config.h"

#include <optional>

#include "miglet/common/config.h"
#include "miglet/common/duration.h"
#include "miglet/common/net.h"
#include "miglet/common/status.h"

namespace miglet {

absl::Status LoadAgentConfig(const std::string& file, AgentConfig* c) {
  RETURN_IF_ERROR(BindAgentConfig(file, c));
  return ValidateAgentConfig(*c);
}

absl::Status BindAgentConfig(const std::string& file, AgentConfig* c) {
  std::optional<ConfigFile> f;
  if (!file.empty()) {
    auto loaded = ConfigFile::Load(file);
    if (!loaded.ok()) return loaded.status();
    f = std::move(*loaded);
  }
  ConfigBinder b(f ? &*f : nullptr, "MIGLET_");
  b.String("vm_id", &c->vm_id)
      .String("pool_id", &c->pool_id)
      .String("org_id", &c->org_id)
      .String("controller.endpoint", &c->controller_endpoint)
      .String("controller.grpc_endpoint", &c->controller_grpc_endpoint)
      .Bool("controller.http_fallback", &c->http_fallback)
      .String("controller.tls.ca_file", &c->tls_ca_file)
      .String("controller.tls.cert_file", &c->tls_cert_file)
      .String("controller.tls.key_file", &c->tls_key_file)
      .String("controller.tls.server_name", &c->tls_server_name)
      .String("controller.auth.token", &c->auth_token)
      .Dur("controller.retry.initial_backoff", &c->retry.initial)
      .Dur("controller.retry.max_backoff", &c->retry.max)
      .Dur("controller.retry.reset_after", &c->retry.reset_after)
      .Dur("heartbeat.interval", &c->heartbeat_interval)
      .Dur("heartbeat.timeout", &c->heartbeat_timeout)
      .String("github.runner_group", &c->runner_group)
      .List("github.labels", &c->labels)
      .String("runner.dir", &c->runner_dir)
      .Dur("shutdown.grace_period", &c->shutdown_grace)
      .Dur("shutdown.force_after", &c->shutdown_force_after)
      .String("logging.level", &c->log_level)
      .String("logging.format", &c->log_format)
      .String("metrics.listen", &c->metrics_listen)
      .String("mode", &c->mode)
      .String("shutdown.command", &c->shutdown_command)
      .Dur("runner.register_timeout", &c->register_timeout);
  RETURN_IF_ERROR(b.Finish());
  for (const char* key : {"vm_id", "pool_id", "controller.endpoint", "controller.grpc_endpoint",
                          "controller.retry.initial_backoff", "controller.retry.max_backoff",
                          "heartbeat.interval", "logging.level", "logging.format", "metrics.listen",
                          "mode", "shutdown.grace_period", "shutdown.force_after"}) {
    c->sources[key] = b.Where(key);
  }
  return absl::OkStatus();
}

std::string EffectiveConfigYaml(const AgentConfig& c) {
  auto src = [&](const std::string& key) {
    auto it = c.sources.find(key);
    return it == c.sources.end() ? std::string() : "  # " + it->second;
  };
  auto q = [](const std::string& v) { return "\"" + v + "\""; };
  auto d = [](Duration v) { return FormatDuration(v); };
  std::string labels;
  for (const auto& l : c.labels) labels += (labels.empty() ? "" : ", ") + l;
  std::string out;
  out += "vm_id: " + q(c.vm_id) + src("vm_id") + "\n";
  out += "pool_id: " + q(c.pool_id) + src("pool_id") + "\n";
  out += "org_id: " + q(c.org_id) + "\n";
  out += "mode: " + c.mode + src("mode") + "\n";
  out += "controller:\n";
  out += "  endpoint: " + q(c.controller_endpoint) + src("controller.endpoint") + "\n";
  out +=
      "  grpc_endpoint: " + q(c.controller_grpc_endpoint) + src("controller.grpc_endpoint") + "\n";
  out += "  http_fallback: " + std::string(c.http_fallback ? "true" : "false") + "\n";
  out += "  tls:\n    ca_file: " + q(c.tls_ca_file) + "\n    cert_file: " + q(c.tls_cert_file) +
         "\n    key_file: " + q(c.tls_key_file) + "\n    server_name: " + q(c.tls_server_name) +
         "\n";
  out += "  auth:\n    token: " + std::string(c.auth_token.empty() ? "\"\"" : "<redacted>") + "\n";
  out += "  retry:\n    initial_backoff: " + d(c.retry.initial) +
         src("controller.retry.initial_backoff") + "\n    max_backoff: " + d(c.retry.max) +
         src("controller.retry.max_backoff") + "\n    reset_after: " + d(c.retry.reset_after) +
         "\n";
  out += "heartbeat:\n  interval: " + d(c.heartbeat_interval) + src("heartbeat.interval") +
         "\n  timeout: " + d(c.heartbeat_timeout) + "\n";
  out += "github:\n  runner_group: " + q(c.runner_group) + "\n  labels: [" + labels + "]\n";
  out += "runner:\n  dir: " + q(c.runner_dir) + "\n  register_timeout: " + d(c.register_timeout) +
         "\n";
  out += "shutdown:\n  grace_period: " + d(c.shutdown_grace) + src("shutdown.grace_period") +
         "\n  force_after: " + d(c.shutdown_force_after) + src("shutdown.force_after") +
         "\n  command: " + q(c.shutdown_command) + "\n";
  out += "logging:\n  level: " + c.log_level + src("logging.level") +
         "\n  format: " + c.log_format + src("logging.format") + "\n";
  out += "metrics:\n  listen: " + q(c.metrics_listen) + src("metrics.listen") + "\n";
  return out;
}

absl::Status ValidateAgentConfig(const AgentConfig& c) {
  auto where = [&](const std::string& key) {
    auto it = c.sources.find(key);
    return it == c.sources.end() ? std::string("config") : it->second;
  };
  auto bad = [&](const std::string& key, const std::string& what) {
    return absl::InvalidArgumentError(where(key) + ": " + key + ": " + what);
  };
  if (c.vm_id.empty()) return bad("vm_id", "is required (or set MIGLET_VM_ID)");
  if (c.pool_id.empty()) return bad("pool_id", "is required (or set MIGLET_POOL_ID)");
  if (c.controller_endpoint.empty() && c.controller_grpc_endpoint.empty()) {
    return bad("controller.grpc_endpoint",
               "one of controller.grpc_endpoint or "
               "controller.endpoint is required");
  }
  if (!c.controller_grpc_endpoint.empty()) {
    auto hp = SplitHostPort(c.controller_grpc_endpoint);
    if (!hp.ok() || hp->first.empty() || hp->second == 0) {
      return bad("controller.grpc_endpoint",
                 "\"" + c.controller_grpc_endpoint + "\" is not host:port");
    }
  }
  if (!c.controller_endpoint.empty() && c.controller_endpoint.rfind("http://", 0) != 0 &&
      c.controller_endpoint.rfind("https://", 0) != 0) {
    return bad("controller.endpoint",
               "\"" + c.controller_endpoint + "\" must start with http:// or https://");
  }
  if (c.retry.initial <= Duration::zero()) {
    return bad("controller.retry.initial_backoff", "must be more than zero");
  }
  if (c.retry.max < c.retry.initial) {
    return bad("controller.retry.max_backoff", "must not be less than initial_backoff");
  }
  if (c.heartbeat_interval < std::chrono::milliseconds(100)) {
    return bad("heartbeat.interval", "must be at least 100ms");
  }
  if (c.mode != "sidecar" && c.mode != "vm") {
    return bad("mode", "\"" + c.mode + "\" is not sidecar or vm");
  }
  if (c.shutdown_force_after < c.shutdown_grace) {
    return bad("shutdown.force_after", "must not be less than shutdown.grace_period");
  }
  if (auto l = ParseLogLevel(c.log_level); !l.ok()) {
    return bad("logging.level", std::string(l.status().message()));
  }
  if (auto fm = ParseLogFormat(c.log_format); !fm.ok()) {
    return bad("logging.format", std::string(fm.status().message()));
  }
  if (!c.metrics_listen.empty()) {
    if (auto hp = SplitHostPort(c.metrics_listen); !hp.ok()) {
      return bad("metrics.listen", std::string(hp.status().message()));
    }
  }
  return absl::OkStatus();
}

StreamClientOptions ToStreamOptions(const AgentConfig& c, const std::string& version) {
  StreamClientOptions o;
  o.vm_id = c.vm_id;
  o.pool_id = c.pool_id;
  o.org_id = c.org_id;
  o.version = version;
  o.grpc_endpoint = c.controller_grpc_endpoint;
  o.http_endpoint = c.controller_endpoint;
  o.http_fallback = c.http_fallback;
  o.retry = c.retry;
  o.heartbeat_interval = c.heartbeat_interval;
  o.tls_ca_file = c.tls_ca_file;
  o.tls_cert_file = c.tls_cert_file;
  o.tls_key_file = c.tls_key_file;
  o.tls_server_name = c.tls_server_name;
  return o;
}

}  // namespace miglet
