// GitHubClient over the request layer (api.h): the runner endpoints of GitHub's REST API, as
// documented at docs.github.com/rest/actions/self-hosted-runners and .../self-hosted-runner-groups.
#include <map>
#include <mutex>

#include "absl/strings/ascii.h"
#include "api.h"
#include "miglet/common/status.h"
#include "miglet/operator/github/github_client.h"
#include "nlohmann/json.hpp"
#include "spdlog/spdlog.h"

namespace miglet::github {

namespace {

using Json = nlohmann::json;

absl::StatusOr<Json> ParseBody(const ClientResponse& r, const std::string& where) {
  auto j = Json::parse(r.body, nullptr, false);
  if (!j.is_object()) return absl::DataLossError(where + ": the answer is not a JSON object");
  return j;
}

// Fields read defensively: a null or a wrong type is read as absent, never thrown.
std::string Str(const Json& j, const char* k) {
  return j.contains(k) && j[k].is_string() ? j[k].get<std::string>() : std::string();
}
bool Bool(const Json& j, const char* k) {
  return j.contains(k) && j[k].is_boolean() && j[k].get<bool>();
}
int64_t Int(const Json& j, const char* k) {
  return j.contains(k) && j[k].is_number_integer() ? j[k].get<int64_t>() : 0;
}

absl::StatusOr<Runner> DecodeRunner(const Json& j, const std::string& where) {
  if (!j.is_object() || !j.contains("id") || !j["id"].is_number_integer() || !j.contains("name") ||
      !j["name"].is_string()) {
    return absl::DataLossError(where + ": a runner without id or name");
  }
  Runner r;
  r.id = j["id"].get<int64_t>();
  r.name = j["name"].get<std::string>();
  r.os = Str(j, "os");
  r.status = Str(j, "status");
  r.busy = Bool(j, "busy");
  r.ephemeral = Bool(j, "ephemeral");
  r.runner_group_id = Int(j, "runner_group_id");
  if (j.contains("labels") && j["labels"].is_array()) {
    for (const auto& l : j["labels"]) {
      if (l.is_object() && l.contains("name") && l["name"].is_string()) {
        r.labels.push_back(l["name"].get<std::string>());
      }
    }
  }
  return r;
}

class GitHubClientImpl final : public GitHubClient {
 public:
  GitHubClientImpl(std::shared_ptr<Api> api, std::unique_ptr<TokenSource> auth)
      : api_(std::move(api)), auth_(std::move(auth)) {}

  const Scope& scope() const override { return api_->scope(); }

  absl::StatusOr<RegistrationToken> CreateRegistrationToken() override {
    return TokenCall("create_registration_token", "/actions/runners/registration-token");
  }

  absl::StatusOr<RegistrationToken> CreateRemoveToken() override {
    return TokenCall("create_remove_token", "/actions/runners/remove-token");
  }

  absl::StatusOr<JitConfig> GenerateJitConfig(const JitConfigRequest& req) override {
    const std::string where = "github generate_jitconfig (" + scope().Describe() + ")";
    if (req.name.empty()) return absl::InvalidArgumentError(where + ": the runner needs a name");
    if (req.labels.empty()) {
      return absl::InvalidArgumentError(where + ": runner " + req.name +
                                        " needs at least one label");
    }
    Json body = {{"name", req.name},
                 {"runner_group_id", req.runner_group_id},
                 {"labels", req.labels},
                 {"work_folder", req.work_folder.empty() ? "_work" : req.work_folder}};
    auto r = JitCall(body);
    if (!r.ok() && github::IsNotFound(r.status())) {
      // The group may have been deleted (and made again under a new id): look it up afresh.
      std::lock_guard l(mu_);
      groups_.clear();
    }
    if (!r.ok() && IsRunnerNameTaken(r.status()) && req.replace_offline) {
      auto existing = ListRunners(req.name);
      if (!existing.ok()) return Annotate(existing.status(), where + ": looking up " + req.name);
      for (const Runner& old : *existing) {
        if (old.name != req.name) continue;
        // In use: never replaced. (One that comes online between this list and the delete is
        // deleted while idle, which GitHub allows; its runner then exits, as on any removal.)
        if (old.online() || old.busy) return r.status();
        spdlog::info("{}: replacing runner {} (id {}), which is offline and idle", where, old.name,
                     old.id);
        RETURN_IF_ERROR(DeleteRunner(old.id));
      }
      r = JitCall(body);
    }
    return r;
  }

  absl::StatusOr<int64_t> RunnerGroupId(const std::string& name) override {
    if (name.empty() || absl::AsciiStrToLower(name) == "default") return 1;
    const std::string where = "github list_runner_groups (" + scope().Describe() + ")";
    if (scope().kind == Scope::Kind::kRepository) {
      return absl::InvalidArgumentError(where + ": repository runners have only the default " +
                                        "group; runner group \"" + name + "\" needs an " +
                                        "organization or enterprise URL");
    }
    {
      std::lock_guard l(mu_);
      if (auto it = groups_.find(name); it != groups_.end()) return it->second;
    }
    std::string target = scope().ApiPath() + "/actions/runner-groups?per_page=100";
    std::map<std::string, int64_t> seen;
    while (!target.empty()) {
      auto r = api_->Call({.call = "list_runner_groups", .target = target}, *auth_);
      if (!r.ok()) return r.status();
      auto j = ParseBody(*r, where);
      if (!j.ok()) return j.status();
      if (j->contains("runner_groups") && (*j)["runner_groups"].is_array()) {
        for (const auto& g : (*j)["runner_groups"]) {
          if (g.is_object() && g.contains("id") && g["id"].is_number_integer() &&
              g.contains("name") && g["name"].is_string()) {
            seen[g["name"].get<std::string>()] = g["id"].get<int64_t>();
          }
        }
      }
      target = NextLink(r->headers.Get("link").value_or("")).value_or("");
    }
    std::lock_guard l(mu_);
    for (const auto& [n, id] : seen) groups_[n] = id;
    if (auto it = groups_.find(name); it != groups_.end()) return it->second;
    GitHubError e{.status = 404, .call = "list_runner_groups", .scope = scope().Describe()};
    e.message = "runner group \"" + name + "\" not found";
    return MakeStatus(e);
  }

  absl::StatusOr<std::vector<Runner>> ListRunners(const std::string& name) override {
    const std::string where = "github list_runners (" + scope().Describe() + ")";
    std::string target = scope().ApiPath() + "/actions/runners?per_page=100";
    if (!name.empty()) target += "&name=" + PercentEncode(name);
    std::vector<Runner> out;
    while (!target.empty()) {
      auto r = api_->Call({.call = "list_runners", .target = target}, *auth_);
      if (!r.ok()) return r.status();
      auto j = ParseBody(*r, where);
      if (!j.ok()) return j.status();
      if (!j->contains("runners") || !(*j)["runners"].is_array()) {
        return absl::DataLossError(where + ": the answer has no runners array");
      }
      for (const auto& item : (*j)["runners"]) {
        auto runner = DecodeRunner(item, where);
        if (!runner.ok()) return runner.status();
        // The name parameter is a filter GitHub applies; check it, as older servers ignore it.
        if (name.empty() || runner->name == name) out.push_back(std::move(*runner));
      }
      target = NextLink(r->headers.Get("link").value_or("")).value_or("");
    }
    return out;
  }

  absl::StatusOr<Runner> GetRunner(int64_t id) override {
    auto r = api_->Call({.call = "get_runner",
                         .target = scope().ApiPath() + "/actions/runners/" + std::to_string(id)},
                        *auth_);
    if (!r.ok()) return r.status();
    const std::string where = "github get_runner (" + scope().Describe() + ")";
    auto j = ParseBody(*r, where);
    if (!j.ok()) return j.status();
    return DecodeRunner(*j, where);
  }

  absl::Status DeleteRunner(int64_t id) override {
    auto r = api_->Call({.call = "delete_runner",
                         .method = "DELETE",
                         .target = scope().ApiPath() + "/actions/runners/" + std::to_string(id)},
                        *auth_);
    if (!r.ok() && github::IsNotFound(r.status()) &&
        GetGitHubError(r.status())->call == "delete_runner") {
      return absl::OkStatus();  // already gone
    }
    return r.status();
  }

 private:
  absl::StatusOr<RegistrationToken> TokenCall(const std::string& call, const std::string& path) {
    auto r =
        api_->Call({.call = call, .method = "POST", .target = scope().ApiPath() + path}, *auth_);
    if (!r.ok()) return r.status();
    const std::string where = "github " + call + " (" + scope().Describe() + ")";
    auto j = ParseBody(*r, where);
    if (!j.ok()) return j.status();
    if (!j->contains("token") || !(*j)["token"].is_string() || !j->contains("expires_at") ||
        !(*j)["expires_at"].is_string()) {
      return absl::DataLossError(where + ": the answer has no token or expires_at");
    }
    auto expires = ParseTimestamp((*j)["expires_at"].get<std::string>());
    if (!expires.ok()) return Annotate(expires.status(), where);
    return RegistrationToken{(*j)["token"].get<std::string>(), *expires};
  }

  absl::StatusOr<JitConfig> JitCall(const Json& body) {
    auto r = api_->Call({.call = "generate_jitconfig",
                         .method = "POST",
                         .target = scope().ApiPath() + "/actions/runners/generate-jitconfig",
                         .body = body.dump()},
                        *auth_);
    if (!r.ok()) return r.status();
    const std::string where = "github generate_jitconfig (" + scope().Describe() + ")";
    auto j = ParseBody(*r, where);
    if (!j.ok()) return j.status();
    if (!j->contains("encoded_jit_config") || !(*j)["encoded_jit_config"].is_string() ||
        !j->contains("runner")) {
      return absl::DataLossError(where + ": the answer has no runner or encoded_jit_config");
    }
    auto runner = DecodeRunner((*j)["runner"], where);
    if (!runner.ok()) return runner.status();
    return JitConfig{std::move(*runner), (*j)["encoded_jit_config"].get<std::string>()};
  }

  std::shared_ptr<Api> api_;
  std::unique_ptr<TokenSource> auth_;
  std::mutex mu_;
  std::map<std::string, int64_t> groups_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<GitHubClient>> MakeGitHubClient(GitHubClientOptions o) {
  auto scope = ParseGitHubUrl(o.url);
  if (!scope.ok()) return scope.status();
  const Credentials& c = o.credentials;
  const std::string src = c.source.empty() ? "GitHub credentials" : c.source;
  if (c.is_app() && !c.token.empty()) {
    return absl::InvalidArgumentError(src + ": holds both " + std::string(kTokenKey) + " and " +
                                      kAppIdKey + "; keep one");
  }
  if (!c.is_app() && c.token.empty()) {
    return absl::InvalidArgumentError(src + ": holds neither " + std::string(kTokenKey) + " nor " +
                                      kAppIdKey);
  }
  if (!o.clock) o.clock = MakeRealClock();
  if (!o.transport) {
    auto t = MakeHttpTransport({.base_url = scope->api_base, .tls = o.tls, .timeout = o.timeout});
    if (!t.ok()) return Annotate(t.status(), "GitHub API " + scope->api_base);
    o.transport = std::move(*t);
  }
  ApiConfig ac{.scope = *scope,
               .user_agent = o.user_agent,
               .max_attempts = std::max(1, o.max_attempts),
               .backoff = o.backoff,
               .max_wait = o.max_wait};
  auto api = std::make_shared<Api>(o.transport, std::move(ac), o.clock, o.metrics);
  std::unique_ptr<TokenSource> auth;
  if (c.is_app()) {
    auto key = AppKey::Parse(c.private_key_pem, src + " key " + kPrivateKeyKey);
    if (!key.ok()) return key.status();
    if (scope->kind == Scope::Kind::kEnterprise) {
      return absl::InvalidArgumentError(
          src + ": a GitHub App cannot manage the runners of " + scope->Describe() +
          "; use a personal access token (classic) with the manage_runners:enterprise scope");
    }
    auth = std::make_unique<InstallationTokenSource>(api, std::move(*key), c.app_id,
                                                     c.installation_id, o.token_renew_before);
  } else {
    auth = std::make_unique<StaticTokenSource>(c.token);
  }
  return std::unique_ptr<GitHubClient>(new GitHubClientImpl(std::move(api), std::move(auth)));
}

}  // namespace miglet::github
