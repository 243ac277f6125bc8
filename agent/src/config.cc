#include "miglet/agent/config.h"

#include <sys/stat.h>

#include <fstream>
#include <optional>
#include <sstream>

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
      .String("controller.auth.type", &c->auth_type)
      .String("controller.auth.token", &c->auth_token)
      .String("controller.auth.token_path", &c->auth_token_path)
      .Dur("controller.timeout", &c->controller_timeout)
      .String("github.org", &c->github_org)
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
  // A field agent's name for runner.register_timeout, used when that is not set.
  Duration field_register_timeout = c->register_timeout;
  b.Dur("github.registration_timeout", &field_register_timeout);
  for (const char* const* key = kIgnoredFieldKeys; *key != nullptr; ++key) b.Ignore(*key);
  RETURN_IF_ERROR(b.Finish());
  for (const auto& [key, where] : b.sources()) c->sources[key] = where;
  if (c->sources["runner.register_timeout"] == "default" &&
      c->sources["github.registration_timeout"] != "default") {
    c->register_timeout = field_register_timeout;
    c->sources["runner.register_timeout"] = c->sources["github.registration_timeout"];
  }
  if (c->org_id.empty() && !c->github_org.empty()) {
    c->org_id = c->github_org;
    c->sources["org_id"] = c->sources["github.org"];
  }
  c->ignored_keys = b.ignored();
  return absl::OkStatus();
}

const char* const kIgnoredFieldKeys[] = {
    "controller.retry.max_attempts",  // miglet retries with backoff, without end
    "github.token_source",            // the controller hands out registration tokens
    "logging.redact_secrets",         // miglet always redacts them
    "metrics.collection_interval",    // health is collected at each heartbeat
    "metrics.include_disk",
    "metrics.include_network",
    "storage.",  // storage.mongodb.*: miglet keeps no database
    nullptr,
};

absl::StatusOr<std::string> TokenFile::Get() {
  std::lock_guard l(mu_);
  struct stat st {};
  if (::stat(path_.c_str(), &st) == 0) {
    const int64_t mtime = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
    if (mtime != mtime_ns_ || st.st_size != size_) {
      std::ifstream in(path_, std::ios::binary);
      if (in) {
        std::stringstream ss;
        ss << in.rdbuf();
        std::string t = ss.str();
        const auto first = t.find_first_not_of(" \t\r\n");
        const auto last = t.find_last_not_of(" \t\r\n");
        token_ = first == std::string::npos ? "" : t.substr(first, last - first + 1);
        mtime_ns_ = mtime;
        size_ = st.st_size;
      }
    }
  }
  if (mtime_ns_ < 0) return absl::NotFoundError("cannot read the token file " + path_);
  return token_;
}

std::string EffectiveConfigYaml(const AgentConfig& c) {
  auto q = [](const std::string& v) { return "\"" + v + "\""; };
  auto d = [](Duration v) { return FormatDuration(v); };
  auto b = [](bool v) { return std::string(v ? "true" : "false"); };
  std::string labels;
  for (const auto& l : c.labels) labels += (labels.empty() ? "" : ", ") + q(l);
  // Every key, in the contract's order, with its value and where it came from.
  const std::vector<std::pair<std::string, std::string>> keys = {
      {"vm_id", q(c.vm_id)},
      {"pool_id", q(c.pool_id)},
      {"org_id", q(c.org_id)},
      {"mode", c.mode},
      {"controller.endpoint", q(c.controller_endpoint)},
      {"controller.grpc_endpoint", q(c.controller_grpc_endpoint)},
      {"controller.http_fallback", b(c.http_fallback)},
      {"controller.timeout", d(c.controller_timeout)},
      {"controller.tls.ca_file", q(c.tls_ca_file)},
      {"controller.tls.cert_file", q(c.tls_cert_file)},
      {"controller.tls.key_file", q(c.tls_key_file)},
      {"controller.tls.server_name", q(c.tls_server_name)},
      {"controller.auth.type", q(c.auth_type)},
      {"controller.auth.token", c.auth_token.empty() ? "\"\"" : "<redacted>"},
      {"controller.auth.token_path", q(c.auth_token_path)},
      {"controller.retry.initial_backoff", d(c.retry.initial)},
      {"controller.retry.max_backoff", d(c.retry.max)},
      {"controller.retry.reset_after", d(c.retry.reset_after)},
      {"heartbeat.interval", d(c.heartbeat_interval)},
      {"heartbeat.timeout", d(c.heartbeat_timeout)},
      {"github.org", q(c.github_org)},
      {"github.runner_group", q(c.runner_group)},
      {"github.labels", "[" + labels + "]"},
      {"runner.dir", q(c.runner_dir)},
      {"runner.register_timeout", d(c.register_timeout)},
      {"shutdown.grace_period", d(c.shutdown_grace)},
      {"shutdown.force_after", d(c.shutdown_force_after)},
      {"shutdown.command", q(c.shutdown_command)},
      {"logging.level", c.log_level},
      {"logging.format", c.log_format},
      {"metrics.listen", q(c.metrics_listen)},
  };
  std::string out;
  std::vector<std::string> open;  // the sections the last key was in
  for (const auto& [key, value] : keys) {
    std::vector<std::string> parts;
    for (size_t at = 0;;) {
      const size_t dot = key.find('.', at);
      parts.push_back(key.substr(at, dot == std::string::npos ? std::string::npos : dot - at));
      if (dot == std::string::npos) break;
      at = dot + 1;
    }
    size_t same = 0;
    while (same < open.size() && same + 1 < parts.size() && open[same] == parts[same]) ++same;
    open.resize(same);
    for (size_t i = same; i + 1 < parts.size(); ++i) {
      out += std::string(2 * i, ' ') + parts[i] + ":\n";
      open.push_back(parts[i]);
    }
    auto src = c.sources.find(key);
    out += std::string(2 * (parts.size() - 1), ' ') + parts.back() + ": " + value + "  # " +
           (src == c.sources.end() ? "default" : src->second) + "\n";
  }
  if (!c.ignored_keys.empty()) {
    out += "# ignored (no meaning for miglet):\n";
    for (const auto& k : c.ignored_keys) out += "#   " + k + "\n";
  }
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
  if (c.auth_type != "" && c.auth_type != "none" && c.auth_type != "bearer") {
    return bad("controller.auth.type", "\"" + c.auth_type + "\" is not bearer or none");
  }
  if (c.auth_type == "bearer" && c.auth_token.empty() && c.auth_token_path.empty()) {
    return bad("controller.auth.type",
               "bearer needs controller.auth.token_path (or controller.auth.token)");
  }
  if (!c.auth_token_path.empty() && c.auth_type != "none") {
    if (auto t = TokenFile(c.auth_token_path).Get(); !t.ok()) {
      return bad("controller.auth.token_path", "cannot read \"" + c.auth_token_path + "\"");
    }
  }
  if (c.controller_timeout <= Duration::zero()) {
    return bad("controller.timeout", "must be more than zero");
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
  o.http_timeout = c.controller_timeout;
  o.connect_timeout = c.controller_timeout;
  if (c.auth_type != "none") {
    if (!c.auth_token_path.empty()) {
      auto file = std::make_shared<TokenFile>(c.auth_token_path);
      o.bearer_token = [file] {
        auto t = file->Get();
        return t.ok() ? *t : std::string();
      };
    } else if (!c.auth_token.empty()) {
      o.bearer_token = [t = c.auth_token] { return t; };
    }
  }
  return o;
}

}  // namespace miglet
