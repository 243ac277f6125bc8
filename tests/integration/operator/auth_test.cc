// Who may speak for an agent and who may use the operator endpoints and /metrics, decided by
// the real apiserver (TokenReview, SubjectAccessReview, RBAC) with tokens it issued: each
// refused case next to a valid agent (a real miglet process with its pod's token) that keeps
// working.
#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <prometheus/counter.h>
#include <prometheus/registry.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "../agent_process.h"
#include "../github/standin.h"
#include "../kube/common.h"
#include "miglet/commands/commands.grpc.pb.h"
#include "miglet/common/fake_clock.h"
#include "miglet/common/http_transport.h"
#include "miglet/common/metrics_server.h"
#include "miglet/common/pki.h"
#include "miglet/operator/agent_hub_server.h"
#include "miglet/operator/controllers/access.h"
#include "miglet/operator/controllers/operator.h"
#include "miglet/operator/controllers/serving_tls.h"
#include "miglet/operator/ctrl/manager.h"
#include "operator_fixture.h"

namespace miglet::kube::testing {
namespace {

using ::miglet::github::testing::StandIn;
using ::miglet::testing::AgentProcess;
using ::testing::HasSubstr;

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// What a stream got: the connect's answer, or the status it was closed with.
struct Connected {
  bool accepted = false;
  grpc::Status status;
};

class AuthTest : public OperatorFixture {
 protected:
  // The hub asks who speaks, as mig-controller with --agent-auth=token --secure-api does.
  void ConfigureHub(AgentHubServerOptions& ho) override {
    reviewer_ = std::make_shared<AccessReviewer>(client_, MakeRealClock(), AccessReviewOptions{},
                                                 metrics_.get());
    ho.authorize_agent =
        controllers::AgentTokenAuthorizer(reviewer_, [this] { return operator_.get(); });
    ho.authorize_request = controllers::DelegatedRequestAuthorizer(reviewer_);
  }

  void SetUp() override {
    OperatorFixture::SetUp();
    if (HasFatalFailure()) return;
    auto http =
        MakeHttpTransport({.base_url = "http://127.0.0.1:" + std::to_string(hub_->http_port()),
                           .timeout = std::chrono::seconds(10)});
    ASSERT_TRUE(http.ok()) << http.status();
    http_ = std::move(*http);
  }

  void TearDown() override {
    OperatorFixture::TearDown();
    for (const auto& name : cluster_objects_) (void)C().Sh("kubectl delete " + name);
  }

  // A pod pool of `replicas`: its RunnerVMs and their (Pending) pods' names.
  std::vector<std::string> PodPool(const std::string& name, int replicas) {
    Json pool = {
        {"apiVersion", "miglet.dev/v1alpha1"},
        {"kind", "RunnerPool"},
        {"metadata", {{"name", name}}},
        {"spec",
         {{"replicas", replicas},
          {"github", {{"url", standin_->url() + "/acme"}, {"tokenSecretRef", {{"name", "gh"}}}}},
          {"runner", {{"ephemeral", false}}}}}};
    EXPECT_TRUE(client_->Create(RunnerPools(), NS(), pool).ok());
    std::vector<std::string> names;
    EXPECT_TRUE(Eventually([&] {
      names.clear();
      auto l = client_->List(Pods(), NS(), {.label_selector = "miglet.dev/pool=" + name});
      if (!l.ok()) return false;
      for (const auto& p : l->items) names.push_back(p["metadata"]["name"]);
      return names.size() == static_cast<size_t>(replicas);
    }));
    std::sort(names.begin(), names.end());
    return names;
  }

  // A token the apiserver issues: for `sa`, bound to pod `pod` when given, for `audience`
  // ("" = the apiserver's own).
  std::string Token(const std::string& sa, const std::string& pod, const std::string& audience) {
    std::string cmd = "kubectl create token " + sa + " -n " + NS() + " --duration 10m";
    if (!pod.empty()) cmd += " --bound-object-kind Pod --bound-object-name " + pod;
    if (!audience.empty()) cmd += " --audience " + audience;
    auto t = C().Sh(cmd);
    EXPECT_TRUE(t.ok()) << t.status();
    return t.ok() ? Trim(*t) : "";
  }

  // `token` with its times moved an hour back, signed again with the cluster's service-account
  // key: the apiserver's own signature on a token that expired.
  std::string Expired(const std::string& token) {
    const auto script = dir_ / "expire.py";
    std::ofstream(script) << R"(import base64, json, subprocess, sys, time
def dec(s): return base64.urlsafe_b64decode(s + '=' * (-len(s) % 4))
def enc(b): return base64.urlsafe_b64encode(b).rstrip(b'=').decode()
h, p, _ = sys.argv[1].split('.')
claims = json.loads(dec(p))
now = int(time.time())
claims['iat'] = claims['nbf'] = now - 3600
claims['exp'] = now - 1800
signing = h + '.' + enc(json.dumps(claims).encode())
sig = subprocess.run(['openssl', 'dgst', '-sha256', '-sign', sys.argv[2]], input=signing.encode(),
                     capture_output=True, check=True).stdout
print(signing + '.' + enc(sig))
)";
    auto t = C().Sh("python3 " + script.string() + " '" + token + "' " + C().dir() + "/pki/sa.key");
    EXPECT_TRUE(t.ok()) << t.status();
    return t.ok() ? Trim(*t) : "";
  }

  // Opens a stream as `vm_id` with `token` (none when empty) and waits for the connect's answer.
  Connected Connect(const std::string& vm_id, const std::string& token) {
    auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(hub_->grpc_port()),
                                       grpc::InsecureChannelCredentials());
    auto stub = commands::CommandService::NewStub(channel);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    if (!token.empty()) ctx.AddMetadata("authorization", "Bearer " + token);
    auto stream = stub->StreamCommands(&ctx);
    commands::MIGletMessage m;
    m.mutable_connect()->set_vm_id(vm_id);
    m.mutable_connect()->set_pool_id("pods");
    m.mutable_connect()->set_version("test");
    Connected out;
    if (stream->Write(m)) {
      commands::ControllerMessage in;
      while (stream->Read(&in)) {
        if (in.has_connect_ack()) {
          out.accepted = in.connect_ack().accepted();
          ctx.TryCancel();
          break;
        }
      }
    }
    out.status = stream->Finish();
    return out;
  }

  // A real miglet agent for pod `pod`, sending the token in `token_file`.
  ::miglet::testing::AgentProcess& Agent(const std::string& pod,
                                         const std::filesystem::path& token_file) {
    return Machine(pod, "pods",
                   "  auth:\n    type: bearer\n    token_path: " + token_file.string() + "\n");
  }

  uint64_t Heartbeats(const std::string& vm_id) {
    auto a = hub_->hub().GetAgent(vm_id);
    return a && a->connected ? a->heartbeats : 0;
  }

  double Refused(const std::string& reason) {
    for (const auto& f : metrics_->Collect()) {
      if (f.name != "mig_controller_agent_requests_refused_total") continue;
      for (const auto& m : f.metric) {
        for (const auto& l : m.label) {
          if (l.name == "reason" && l.value == reason) return m.counter.value;
        }
      }
    }
    return -1;
  }

  std::vector<std::string> RefusedEvents(const std::string& vm) {
    std::vector<std::string> out;
    auto l = client_->List(
        Events(), NS(), {.field_selector = "involvedObject.name=" + vm + ",reason=AgentRefused"});
    if (l.ok()) {
      for (const auto& e : l->items) out.push_back(e.value("message", ""));
    }
    return out;
  }

  int Status(const std::string& method, const std::string& target, const std::string& token,
             const std::string& body = "") {
    ClientRequest r;
    r.method = method;
    r.target = target;
    r.body = body;
    if (!token.empty()) r.headers.Set("Authorization", "Bearer " + token);
    auto resp = http_->Send(r);
    return resp.ok() ? resp->status : -1;
  }

  // A ServiceAccount with the ClusterRole `rules` (YAML; none: allowed nothing), and a token
  // for it.
  std::string Account(const std::string& name, const std::string& rules) {
    EXPECT_TRUE(C().Sh("kubectl create serviceaccount " + name + " -n " + NS()).ok());
    if (!rules.empty()) {
      const std::string role = "miglet-auth-test-" + NS() + "-" + name;
      const std::string yaml =
          "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: " +
          role + "\nrules:\n" + rules +
          "---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\n"
          "metadata:\n  name: " +
          role +
          "\nroleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: ClusterRole\n  name: " +
          role + "\nsubjects:\n  - kind: ServiceAccount\n    name: " + name +
          "\n    namespace: " + NS() + "\n";
      std::ofstream(dir_ / (name + ".yaml")) << yaml;
      auto r = C().Sh("kubectl apply -f " + (dir_ / (name + ".yaml")).string());
      EXPECT_TRUE(r.ok()) << r.status();
      cluster_objects_.push_back("clusterrole " + role);
      cluster_objects_.push_back("clusterrolebinding " + role);
    }
    return Token(name, "", "");
  }

  std::shared_ptr<AccessReviewer> reviewer_;
  std::unique_ptr<HttpTransport> http_;
  std::vector<std::string> cluster_objects_;
};

// An agent speaks only for its own pod's RunnerVM: no credentials, a token for the wrong
// audience, an expired one and another pod's are each refused with their own code, a metric and
// an Event on the RunnerVM, while the real agent next to them keeps its stream.
TEST_F(AuthTest, OnlyThePodsOwnTokenSpeaksForItsRunnerVm) {
  const auto pods = PodPool("pods", 2);
  ASSERT_EQ(pods.size(), 2u);
  const std::string mine = pods[0], other = pods[1];
  const auto token_file = dir_ / "token";
  std::ofstream(token_file) << Token("default", mine, "miglet");
  Agent(mine, token_file);
  ASSERT_TRUE(Eventually([&] { return Heartbeats(mine) > 0; })) << agents_.back()->Log();

  const Connected none = Connect(mine, "");
  EXPECT_EQ(none.status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_THAT(none.status.error_message(), HasSubstr("no credentials"));

  const Connected audience = Connect(mine, Token("default", mine, ""));
  EXPECT_EQ(audience.status.error_code(), grpc::StatusCode::UNAUTHENTICATED)
      << audience.status.error_message();

  const Connected expired = Connect(mine, Expired(Token("default", mine, "miglet")));
  EXPECT_EQ(expired.status.error_code(), grpc::StatusCode::UNAUTHENTICATED)
      << expired.status.error_message();

  // The other pod's own token, for this pod's vm_id.
  const Connected theirs = Connect(mine, Token("default", other, "miglet"));
  EXPECT_EQ(theirs.status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(theirs.status.error_message(), HasSubstr(other));

  // A service-account token bound to no pod, and a vm_id with no RunnerVM.
  const Connected unbound = Connect(mine, Token("default", "", "miglet"));
  EXPECT_EQ(unbound.status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  const Connected stranger = Connect("vm-nobody", Token("default", mine, "miglet"));
  EXPECT_EQ(stranger.status.error_code(), grpc::StatusCode::PERMISSION_DENIED);

  // The same token, for its own pod, from another client: accepted (and it takes over the
  // agent's entry, as any reconnect does; the real agent reconnects after it).
  const Connected own = Connect(other, Token("default", other, "miglet"));
  EXPECT_TRUE(own.accepted) << own.status.error_message();

  EXPECT_GE(Refused("unauthenticated"), 3);
  EXPECT_GE(Refused("permission_denied"), 3);
  EXPECT_TRUE(Eventually([&] { return !RefusedEvents(mine).empty(); }));
  // The real agent kept its stream through all of it.
  const uint64_t before = Heartbeats(mine);
  EXPECT_TRUE(Eventually([&] { return Heartbeats(mine) > before + 1; })) << agents_.back()->Log();
  EXPECT_TRUE(hub_->hub().GetAgent(mine)->connected);
}

// The agents' HTTP API takes the same credentials as the stream, and its token is reviewed once
// however many requests carry it.
TEST_F(AuthTest, TheHttpApiTakesTheSameCredentialsAndReviewsATokenOnce) {
  const auto pods = PodPool("pods", 2);
  ASSERT_EQ(pods.size(), 2u);
  const std::string vm = "/api/v1/vms/" + pods[0];
  const std::string hb = R"({"type":"heartbeat","timestamp":"2026-12-08T12:00:00Z","vm_id":")" +
                         pods[0] +
                         R"(","pool_id":"pods","miglet_state":"ready","runner_state":"offline"})";
  EXPECT_EQ(Status("POST", vm + "/heartbeat", "", hb), 401);
  EXPECT_EQ(Status("POST", vm + "/heartbeat", "not-a-token", hb), 401);
  EXPECT_EQ(Status("POST", vm + "/heartbeat", Token("default", pods[1], "miglet"), hb), 403);
  EXPECT_EQ(Status("GET", vm + "/commands", Token("default", pods[1], "miglet")), 403);
  const std::string token = Token("default", pods[0], "miglet");
  const uint64_t reviews = reviewer_->stats().token_reviews;
  for (int i = 0; i < 200; ++i) {
    ASSERT_EQ(Status("POST", vm + "/heartbeat", token, hb), 200) << i;
  }
  EXPECT_EQ(Status("GET", vm + "/commands?ack=true", token), 200);
  EXPECT_EQ(reviewer_->stats().token_reviews, reviews + 1);
}

// The operator endpoints follow controller-runtime's secure metrics: a bearer token, and RBAC
// on the non-resource URL for what it asks; /metrics the same.
TEST_F(AuthTest, OperatorEndpointsAndMetricsNeedATokenWithRbac) {
  const std::string nobody = Account("nobody", "");
  const std::string view =
      "  - apiGroups: [miglet.dev]\n    resources: [runnervms]\n    verbs: [get, list]\n";
  const std::string viewer = Account("viewer", view);
  const std::string admin =
      Account("admin", view +
                           "  - apiGroups: [miglet.dev]\n    resources: [runnervms/commands]\n"
                           "    verbs: [create]\n");
  const std::string scraper =
      Account("scraper", "  - nonResourceURLs: [/metrics]\n    verbs: [get]\n");

  EXPECT_EQ(Status("GET", "/api/v1/vms", ""), 401);
  EXPECT_EQ(Status("GET", "/api/v1/vms", "made-up"), 401);
  EXPECT_EQ(Status("GET", "/api/v1/vms", nobody), 403);
  // RBAC's cache takes the new bindings in a moment.
  EXPECT_TRUE(Eventually([&] { return Status("GET", "/api/v1/vms", viewer) == 200; }));
  EXPECT_EQ(Status("GET", "/api/v1/vms/vm-x", viewer), 404);  // allowed: no such agent
  const std::string cmd = R"({"type":"set_log_level","string_params":{"level":"debug"}})";
  EXPECT_EQ(Status("POST", "/api/v1/vms/vm-x/commands", viewer, cmd), 403);
  EXPECT_TRUE(Eventually([&] {
    const int s = Status("POST", "/api/v1/vms/vm-x/commands", admin, cmd);
    return s != 401 && s != 403 && s > 0;
  }));
  // A token for the agents' audience is not one for the operator endpoints.
  EXPECT_EQ(Status("GET", "/api/v1/vms", Token("admin", "", "miglet")), 401);

  // /metrics, as mig-controller serves it with metrics.secure.
  auto authorize = controllers::DelegatedRequestAuthorizer(reviewer_);
  auto server =
      StartMetricsServer("127.0.0.1:0", metrics_, Probes{},
                         [authorize](const HttpRequest& r, std::function<void(absl::Status)> done) {
                           authorize(BearerToken(r.authorization), "get", r.path, std::move(done));
                         });
  ASSERT_TRUE(server.ok()) << server.status();
  auto m = MakeHttpTransport({.base_url = "http://127.0.0.1:" + std::to_string(server->second)});
  ASSERT_TRUE(m.ok());
  auto get = [&](const std::string& path, const std::string& token) {
    ClientRequest r;
    r.target = path;
    if (!token.empty()) r.headers.Set("Authorization", "Bearer " + token);
    auto resp = (*m)->Send(r);
    return resp.ok() ? std::make_pair(resp->status, resp->body) : std::make_pair(-1, std::string());
  };
  EXPECT_EQ(get("/metrics", "").first, 401);
  EXPECT_EQ(get("/metrics", nobody).first, 403);
  EXPECT_EQ(get("/metrics", viewer).first, 403);
  std::pair<int, std::string> scraped;
  EXPECT_TRUE(Eventually([&] { return (scraped = get("/metrics", scraper)).first == 200; }));
  EXPECT_THAT(scraped.second, HasSubstr("mig_controller_access_reviews_total"));
  EXPECT_EQ(get("/healthz", "").first, 200);  // probes stay open
  server->first->Stop();
}

// A client certificate (verified by the hub to name the vm_id) speaks for a RunnerVM of an
// external pool, not for a pod's, nor for a vm_id with no RunnerVM.
TEST_F(AuthTest, ACertificateSpeaksForAnExternalMachineOnly) {
  const auto pods = PodPool("pods", 1);
  ASSERT_EQ(pods.size(), 1u);
  ASSERT_TRUE(
      client_
          ->Create(
              RunnerPools(), NS(),
              {{"apiVersion", "miglet.dev/v1alpha1"},
               {"kind", "RunnerPool"},
               {"metadata", {{"name", "ext"}}},
               {"spec",
                {{"replicas", 0},
                 {"provider", "external"},
                 {"github",
                  {{"url", standin_->url() + "/acme"}, {"tokenSecretRef", {{"name", "gh"}}}}}}}})
          .ok());
  ASSERT_TRUE(client_
                  ->Create(RunnerVMs(), NS(),
                           {{"apiVersion", "miglet.dev/v1alpha1"},
                            {"kind", "RunnerVM"},
                            {"metadata", {{"name", "ext-1"}}},
                            {"spec", {{"poolName", "ext"}}}})
                  .ok());
  EXPECT_TRUE(Eventually([&] { return operator_->AuthorizeAgentByCertificate("ext-1").ok(); }));
  const absl::Status pod = operator_->AuthorizeAgentByCertificate(pods[0]);
  EXPECT_EQ(pod.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(pod.message(), HasSubstr("service-account token"));
  EXPECT_EQ(operator_->AuthorizeAgentByCertificate("vm-nobody").code(),
            absl::StatusCode::kPermissionDenied);
  // The authorizer takes the hub's word for the certificate and asks no TokenReview.
  auto authorize = controllers::AgentTokenAuthorizer(reviewer_, [this] { return operator_.get(); });
  const uint64_t reviews = reviewer_->stats().token_reviews;
  absl::Status got = absl::UnknownError("not answered");
  authorize("ext-1", AgentCredentials{.client_cert_name = "ext-1"},
            [&](absl::Status st) { got = st; });
  EXPECT_TRUE(got.ok()) << got;
  authorize(pods[0], AgentCredentials{.client_cert_name = pods[0]},
            [&](absl::Status st) { got = st; });
  EXPECT_EQ(got.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(reviewer_->stats().token_reviews, reviews);
}

// The controller as its own CA: two replicas share one CA (a Secret the first one makes), each
// serves a certificate for its names that an agent trusting the CA accepts, and a certificate
// is renewed once two thirds of its life are gone. A Secret that holds no CA is refused.
TEST(OwnCaTest, ReplicasShareOneCaAndTheServingCertificateIsRenewedInTime) {
  auto client = C().Client();
  const auto dir =
      std::filesystem::temp_directory_path() / ("miglet-own-ca-" + std::to_string(getpid()));
  std::filesystem::remove_all(dir);
  controllers::SelfSignedTlsOptions o;
  o.kube = client;
  o.clock = MakeRealClock();
  o.ns = NS();
  o.ca_secret = "own-ca";
  o.dns_names = {"controller.test"};
  o.ips = {"127.0.0.1"};
  o.dir = (dir / "a").string();
  auto a = controllers::SelfSignedTls::Start(o);
  ASSERT_TRUE(a.ok()) << a.status();
  o.dir = (dir / "b").string();
  auto b = controllers::SelfSignedTls::Start(o);
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ((*a)->ca_pem(), (*b)->ca_pem());
  auto secret = SecretsIn(*client, NS()).Get("own-ca");
  ASSERT_TRUE(secret.ok()) << secret.status();
  EXPECT_EQ(secret->value("type", ""), "kubernetes.io/tls");
  const std::string cert = ::miglet::testing::ReadAll((*a)->cert_file());
  EXPECT_TRUE(pki::Verify(cert, (*a)->ca_pem(), std::chrono::system_clock::now()).ok());
  EXPECT_EQ(::miglet::testing::ReadAll((*a)->ca_file()), (*a)->ca_pem());
  auto info = pki::ReadCertificate(cert);
  ASSERT_TRUE(info.ok());
  EXPECT_THAT(info->names.dns, ::testing::ElementsAre("controller.test"));

  // A hub serving replica b's certificate; a client trusting the CA connects to it by name.
  AgentHubServerOptions ho;
  ho.bind_address = "127.0.0.1";
  ho.grpc_port = 0;
  ho.http_port = -1;
  ho.tls_cert_file = (*b)->cert_file();
  ho.tls_key_file = (*b)->key_file();
  auto hub = AgentHubServer::Start(ho, MakeRealClock(), nullptr);
  ASSERT_TRUE(hub.ok()) << hub.status();
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = (*a)->ca_pem();
  grpc::ChannelArguments args;
  args.SetSslTargetNameOverride("controller.test");
  auto channel = grpc::CreateCustomChannel("127.0.0.1:" + std::to_string((*hub)->grpc_port()),
                                           grpc::SslCredentials(ssl), args);
  EXPECT_TRUE(
      channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(30)));
  (*hub)->Shutdown();

  // Renewal, on a clock the test moves.
  auto fake = std::make_shared<FakeClock>();
  o.clock = fake;
  o.dir = (dir / "c").string();
  auto c = controllers::SelfSignedTls::Start(o);
  ASSERT_TRUE(c.ok()) << c.status();
  const std::string first =
      pki::ReadCertificate(::miglet::testing::ReadAll((*c)->cert_file()))->serial;
  fake->Advance(std::chrono::hours(24 * 59));
  auto early = (*c)->RenewIfDue();
  ASSERT_TRUE(early.ok());
  EXPECT_FALSE(*early);
  fake->Advance(std::chrono::hours(24 * 2));  // 61 of 90 days
  auto due = (*c)->RenewIfDue();
  ASSERT_TRUE(due.ok()) << due.status();
  EXPECT_TRUE(*due);
  EXPECT_NE(pki::ReadCertificate(::miglet::testing::ReadAll((*c)->cert_file()))->serial, first);

  ASSERT_TRUE(SecretsIn(*client, NS())
                  .Create({{"apiVersion", "v1"},
                           {"kind", "Secret"},
                           {"metadata", {{"name", "not-a-ca"}}},
                           {"stringData", {{"tls.crt", "junk"}, {"tls.key", "junk"}}}})
                  .ok());
  o.ca_secret = "not-a-ca";
  o.dir = (dir / "d").string();
  auto bad = controllers::SelfSignedTls::Start(o);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(bad.status().message(), HasSubstr("not-a-ca"));
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace miglet::kube::testing

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  ::testing::AddGlobalTestEnvironment(new miglet::kube::testing::ClusterEnvironment(""));
  return RUN_ALL_TESTS();
}
