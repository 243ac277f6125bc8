#include "miglet/operator/controllers/access.h"

#include "absl/strings/str_split.h"

namespace miglet::controllers {

AgentAuthorizer AgentTokenAuthorizer(std::shared_ptr<kube::AccessReviewer> reviewer,
                                     std::function<Operator*()> op) {
  return [reviewer, op](const std::string& vm_id, const AgentCredentials& creds,
                        std::function<void(absl::Status)> done) {
    auto refuse = [op, vm_id, done](const absl::Status& st) {
      if (Operator* o = op()) o->AgentRefused(vm_id, st);
      done(st);
    };
    if (!creds.client_cert_name.empty()) {
      // The hub checked the certificate names this vm_id; the RunnerVM decides whether a
      // certificate is how its agent proves itself.
      Operator* o = op();
      if (o == nullptr) {
        done(absl::UnavailableError("the operator is not running yet"));
        return;
      }
      const absl::Status st = o->AuthorizeAgentByCertificate(vm_id);
      if (!st.ok()) o->AgentRefused(vm_id, st);
      done(st);
      return;
    }
    if (creds.bearer_token.empty()) {
      refuse(absl::UnauthenticatedError(
          "no credentials: an agent in a pod sends its projected service-account token "
          "(audience miglet) as a bearer token"));
      return;
    }
    reviewer->Authenticate(
        creds.bearer_token, {kAgentAudience},
        [op, vm_id, done, refuse](absl::StatusOr<kube::UserInfo> user) {
          if (!user.ok()) {
            if (user.status().code() == absl::StatusCode::kUnavailable) {
              done(user.status());  // not the agent's fault: it retries
            } else {
              refuse(absl::UnauthenticatedError("the token was not accepted: " +
                                                std::string(user.status().message())));
            }
            return;
          }
          Operator* o = op();
          if (o == nullptr) {
            done(absl::UnavailableError("the operator is not running yet"));
            return;
          }
          const absl::Status st = o->AuthorizeAgent(vm_id, *user);
          if (!st.ok()) o->AgentRefused(vm_id, st);
          done(st);
        });
  };
}

std::optional<kube::ResourceAttributes> ApiAttributes(const std::string& verb,
                                                      const std::string& path) {
  std::vector<std::string> parts = absl::StrSplit(path, '/', absl::SkipEmpty());
  if (parts.size() < 3 || parts[0] != "api" || parts[1] != "v1" || parts[2] != "vms") {
    return std::nullopt;
  }
  kube::ResourceAttributes a{.group = "miglet.dev", .resource = "runnervms"};
  if (parts.size() == 3 && verb == "get") {
    a.verb = "list";
  } else if (parts.size() == 4 && verb == "get") {
    a.verb = "get";
    a.name = parts[3];
  } else if (parts.size() == 5 && parts[4] == "commands" && verb == "post") {
    a.verb = "create";
    a.subresource = "commands";
    a.name = parts[3];
  } else {
    return std::nullopt;
  }
  return a;
}

RequestAuthorizer DelegatedRequestAuthorizer(std::shared_ptr<kube::AccessReviewer> reviewer) {
  return [reviewer](const std::string& token, const std::string& verb, const std::string& path,
                    std::function<void(absl::Status)> done) {
    if (token.empty()) {
      done(absl::UnauthenticatedError("a bearer token is needed (Authorization: Bearer ...)"));
      return;
    }
    kube::AccessReviewer* r = reviewer.get();  // the reviewer outlives its own callbacks
    const auto attrs = ApiAttributes(verb, path);
    r->Authenticate(token, {}, [r, verb, path, attrs, done](absl::StatusOr<kube::UserInfo> user) {
      if (!user.ok()) {
        done(user.status());
        return;
      }
      if (attrs) {
        r->AuthorizeResource(*user, *attrs, done);
      } else {
        r->AuthorizeNonResource(*user, verb, path, done);
      }
    });
  };
}

}  // namespace miglet::controllers
