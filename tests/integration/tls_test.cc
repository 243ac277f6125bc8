// The command channel over TLS and mutual TLS, with certificates made by openssl for the test.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>

#include "await.h"
#include "miglet/agent/command_dispatcher.h"
#include "miglet/agent/stream_client.h"
#include "miglet/operator/agent_hub_server.h"

namespace miglet {
namespace {

namespace fs = std::filesystem;
using miglet::testing::Signal;

class NoCommands : public CommandHandler {
 public:
  commands::CommandAck Handle(const commands::Command&) override { return MakeAck(true, "ok"); }
};

class TlsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = fs::temp_directory_path() / ("miglet-tls-" + std::to_string(getpid()));
    fs::create_directories(dir_);
    const std::string d = dir_.string();
    // A CA, a server certificate for 127.0.0.1 / controller.test, and a client certificate.
    const std::string script =
        "set -e; cd " + d +
        "; openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 1 "
        "-subj /CN=miglet-test-ca >/dev/null 2>&1"
        "; openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr "
        "-subj /CN=controller.test >/dev/null 2>&1"
        "; printf 'subjectAltName=DNS:controller.test,IP:127.0.0.1\\n' > san.ext"
        "; openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial "
        "-out server.crt -days 1 -extfile san.ext >/dev/null 2>&1"
        "; openssl req -newkey rsa:2048 -nodes -keyout client.key -out client.csr "
        "-subj /CN=vm-tls >/dev/null 2>&1"
        "; openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial "
        "-out client.crt -days 1 >/dev/null 2>&1";
    ASSERT_EQ(std::system(("bash -c \"" + script + "\"").c_str()), 0) << "openssl failed";
  }
  static void TearDownTestSuite() { fs::remove_all(dir_); }

  void StartHub(bool require_client_cert) {
    AgentHubServerOptions o;
    o.bind_address = "127.0.0.1";
    o.grpc_port = 0;
    o.http_port = -1;
    o.tls_cert_file = (dir_ / "server.crt").string();
    o.tls_key_file = (dir_ / "server.key").string();
    if (require_client_cert) o.tls_ca_file = (dir_ / "ca.crt").string();
    auto s = AgentHubServer::Start(o, MakeRealClock(), nullptr);
    ASSERT_TRUE(s.ok()) << s.status();
    hub_ = std::move(*s);
    hub_->hub().SetChangeHook([this](const AgentInfo&) { signal_.Notify(); });
  }

  std::unique_ptr<StreamClient> Agent(bool with_client_cert) {
    StreamClientOptions o;
    o.vm_id = "vm-tls";
    o.pool_id = "pool";
    o.grpc_endpoint = "127.0.0.1:" + std::to_string(hub_->grpc_port());
    o.retry.initial = std::chrono::milliseconds(50);
    o.retry.max = std::chrono::milliseconds(100);
    o.heartbeat_interval = std::chrono::milliseconds(200);
    o.tls_ca_file = (dir_ / "ca.crt").string();
    o.tls_server_name = "controller.test";
    if (with_client_cert) {
      o.tls_cert_file = (dir_ / "client.crt").string();
      o.tls_key_file = (dir_ / "client.key").string();
    }
    auto c = StreamClient::Create(o, MakeRealClock(), &handler_, {}, nullptr);
    c->Start();
    return c;
  }

  bool Connected() {
    auto a = hub_->hub().GetAgent("vm-tls");
    return a && a->connected;
  }

  void TearDown() override {
    if (hub_) hub_->Shutdown();
  }

  static fs::path dir_;
  Signal signal_;
  NoCommands handler_;
  std::unique_ptr<AgentHubServer> hub_;
};
fs::path TlsTest::dir_;

TEST_F(TlsTest, AgentConnectsOverTls) {
  StartHub(/*require_client_cert=*/false);
  auto agent = Agent(/*with_client_cert=*/false);
  ASSERT_TRUE(signal_.Await([&] { return Connected(); }));
  agent->Stop();
}

TEST_F(TlsTest, MutualTlsAcceptsAClientCertificate) {
  StartHub(/*require_client_cert=*/true);
  auto agent = Agent(/*with_client_cert=*/true);
  ASSERT_TRUE(signal_.Await([&] { return Connected(); }));
  agent->Stop();
}

TEST_F(TlsTest, MutualTlsRefusesAnAgentWithoutCertificate) {
  StartHub(/*require_client_cert=*/true);
  auto agent = Agent(/*with_client_cert=*/false);
  // Several attempts fail; none gets through.
  EXPECT_FALSE(signal_.Await([&] { return Connected(); }, std::chrono::seconds(2)));
  EXPECT_FALSE(agent->connected());
  agent->Stop();
}

}  // namespace
}  // namespace miglet
