// The command channel over TLS and mutual TLS, with certificates made by openssl for the test.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>

#include "await.h"
#include "miglet/agent/command_dispatcher.h"
#include "miglet/agent/stream_client.h"
#include "miglet/common/http_transport.h"
#include "miglet/common/pki.h"
#include "miglet/common/testing/served_certificate.h"
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

  // A hub serving `dir`'s server.crt and server.key (read again every second), requiring
  // client certificates signed by its ca.crt when asked; the HTTP API too with `http_tls`.
  void StartHubWith(const fs::path& dir, bool require_client_cert, bool http_tls = false) {
    AgentHubServerOptions o;
    o.bind_address = "127.0.0.1";
    o.grpc_port = 0;
    o.http_port = http_tls ? 0 : -1;
    o.http_tls = http_tls;
    o.tls_cert_file = (dir / "server.crt").string();
    o.tls_key_file = (dir / "server.key").string();
    if (require_client_cert) o.tls_ca_file = (dir / "ca.crt").string();
    o.tls_refresh_interval = std::chrono::seconds(1);
    auto s = AgentHubServer::Start(o, MakeRealClock(), nullptr);
    ASSERT_TRUE(s.ok()) << s.status();
    hub_ = std::move(*s);
    hub_->hub().SetChangeHook([this](const AgentInfo&) { signal_.Notify(); });
  }
  void StartHub(bool require_client_cert) { StartHubWith(dir_, require_client_cert); }

  // An agent `vm` that trusts `ca` and, when `cert` is given, presents it (and `key`).
  std::unique_ptr<StreamClient> AgentFor(const std::string& vm, const fs::path& ca,
                                         const fs::path& cert = {}, const fs::path& key = {}) {
    StreamClientOptions o;
    o.vm_id = vm;
    o.pool_id = "pool";
    o.grpc_endpoint = "127.0.0.1:" + std::to_string(hub_->grpc_port());
    o.retry.initial = std::chrono::milliseconds(50);
    o.retry.max = std::chrono::milliseconds(200);
    o.heartbeat_interval = std::chrono::milliseconds(500);
    o.tls_ca_file = ca.string();
    o.tls_server_name = "controller.test";
    o.tls_cert_file = cert.string();
    o.tls_key_file = key.string();
    auto c = StreamClient::Create(o, MakeRealClock(), &handler_, {}, nullptr);
    c->Start();
    return c;
  }
  std::unique_ptr<StreamClient> Agent(bool with_client_cert) {
    return with_client_cert
               ? AgentFor("vm-tls", dir_ / "ca.crt", dir_ / "client.crt", dir_ / "client.key")
               : AgentFor("vm-tls", dir_ / "ca.crt");
  }

  bool IsConnected(const std::string& vm) {
    auto a = hub_->hub().GetAgent(vm);
    return a && a->connected;
  }
  bool Connected() { return IsConnected("vm-tls"); }

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

// Certificates made with miglet's own pki (what the controller will use to be its own CA),
// written where the hub and the agents read them.
class TlsFilesTest : public TlsTest {
 protected:
  void SetUp() override {
    files_ = dir_ / ::testing::UnitTest::GetInstance()->current_test_info()->name();
    fs::create_directories(files_);
    ca_ = NewCa("miglet-test-ca");
    other_ca_ = NewCa("another-ca");
    Write("ca.crt", ca_.cert_pem);
    Write("other-ca.crt", other_ca_.cert_pem);
    ServerCert(pki::ValidFor(std::chrono::hours(1)));
  }

  static pki::Signer NewCa(const std::string& cn) {
    auto key = pki::NewKey();
    EXPECT_TRUE(key.ok());
    auto cert = pki::SelfSignedCa(*key, cn, pki::ValidFor(std::chrono::hours(24)));
    EXPECT_TRUE(cert.ok()) << cert.status();
    return {*cert, *key};
  }

  // Written whole and renamed into place, as a Secret's volume or cert-manager does.
  void Write(const std::string& name, const std::string& data) {
    const fs::path tmp = files_ / (name + ".tmp");
    std::ofstream(tmp) << data;
    fs::rename(tmp, files_ / name);
  }

  // A serving certificate for controller.test from ca_ (key and certificate replaced together).
  std::string ServerCert(pki::Validity validity) {
    auto key = pki::NewKey();
    EXPECT_TRUE(key.ok());
    auto cert =
        pki::Issue(ca_, *key, "controller.test", {.dns = {"controller.test"}, .ips = {"127.0.0.1"}},
                   pki::Usage::kServer, validity);
    EXPECT_TRUE(cert.ok()) << cert.status();
    Write("server.key", *key);
    Write("server.crt", *cert);
    return pki::ReadCertificate(*cert)->serial;
  }

  // A client certificate for `vm` from `ca`, written as <vm>.crt / <vm>.key.
  void ClientCert(const std::string& vm, const pki::Signer& ca, pki::Validity validity) {
    auto key = pki::NewKey();
    EXPECT_TRUE(key.ok());
    auto cert = pki::Issue(ca, *key, vm, {}, pki::Usage::kClient, validity);
    EXPECT_TRUE(cert.ok()) << cert.status();
    Write(vm + ".key", *key);
    Write(vm + ".crt", *cert);
  }

  void Start(bool require_client_cert) { StartHubWith(files_, require_client_cert); }

  // An agent `vm` trusting `ca_file` (in files_), with the client certificate of `cert_of`
  // (default: its own) when asked.
  std::unique_ptr<StreamClient> AgentAs(const std::string& vm, const std::string& ca_file,
                                        bool with_client_cert, std::string cert_of = "") {
    if (cert_of.empty()) cert_of = vm;
    if (!with_client_cert) return AgentFor(vm, files_ / ca_file);
    return AgentFor(vm, files_ / ca_file, files_ / (cert_of + ".crt"), files_ / (cert_of + ".key"));
  }

  std::string ServedSerial() {
    return ::miglet::testing::ServedCertificateSerial(hub_->grpc_port(), "controller.test");
  }

  fs::path files_;
  pki::Signer ca_, other_ca_;
};

// A certificate renewed on disk serves the next connections; the 100 agents already connected
// keep their streams (none reconnects), and a new agent trusts the new certificate.
TEST_F(TlsFilesTest, ACertificateRenewedOnDiskServesNewConnectionsWhile100AgentsStay) {
  Start(/*require_client_cert=*/false);
  const std::string first = ServedSerial();
  ASSERT_FALSE(first.empty());
  std::vector<std::unique_ptr<StreamClient>> agents;
  for (int i = 0; i < 100; ++i)
    agents.push_back(AgentAs("vm-" + std::to_string(i), "ca.crt", false));
  auto all_connected = [&] {
    for (int i = 0; i < 100; ++i) {
      if (!IsConnected("vm-" + std::to_string(i))) return false;
    }
    return true;
  };
  ASSERT_TRUE(signal_.Await(all_connected, std::chrono::seconds(60)));
  std::map<std::string, WallTime> since;
  for (int i = 0; i < 100; ++i) {
    const std::string vm = "vm-" + std::to_string(i);
    since[vm] = hub_->hub().GetAgent(vm)->connected_at;
  }

  const std::string renewed = ServerCert(pki::ValidFor(std::chrono::hours(2)));
  ASSERT_NE(renewed, first);
  ASSERT_TRUE(signal_.Await([&] { return ServedSerial() == renewed; }, std::chrono::seconds(30)))
      << "still serving " << ServedSerial();
  auto late = AgentAs("vm-late", "ca.crt", false);
  ASSERT_TRUE(signal_.Await([&] { return IsConnected("vm-late"); }));
  for (const auto& [vm, at] : since) {
    auto a = hub_->hub().GetAgent(vm);
    ASSERT_TRUE(a && a->connected) << vm;
    EXPECT_EQ(a->connected_at, at) << vm << " reconnected";
  }
  for (auto& a : agents) a->Stop();
  late->Stop();
}

// An agent that trusts another CA, or is served an expired certificate, does not connect; the
// agent next to it that trusts the right CA does.
TEST_F(TlsFilesTest, AWrongCaOrAnExpiredServerCertificateIsRefusedByTheAgent) {
  Start(/*require_client_cert=*/false);
  auto good = AgentAs("vm-good", "ca.crt", false);
  auto wrong = AgentAs("vm-wrong-ca", "other-ca.crt", false);
  ASSERT_TRUE(signal_.Await([&] { return IsConnected("vm-good"); }));
  EXPECT_FALSE(signal_.Await([&] { return IsConnected("vm-wrong-ca"); }, std::chrono::seconds(2)));
  // The hub now serves an expired certificate: a new connection is refused by the agent.
  const std::string expired =
      ServerCert({std::chrono::system_clock::now() - std::chrono::hours(2),
                  std::chrono::system_clock::now() - std::chrono::hours(1)});
  ASSERT_TRUE(signal_.Await([&] { return ServedSerial() == expired; }, std::chrono::seconds(30)));
  auto late = AgentAs("vm-late", "ca.crt", false);
  EXPECT_FALSE(signal_.Await([&] { return IsConnected("vm-late"); }, std::chrono::seconds(2)));
  EXPECT_TRUE(IsConnected("vm-good"));  // its stream predates the change
  good->Stop();
  wrong->Stop();
  late->Stop();
}

// With client certificates required: an expired one, or one from another CA, is refused in the
// handshake; a valid one next to them connects.
TEST_F(TlsFilesTest, MutualTlsRefusesExpiredAndForeignClientCertificates) {
  ClientCert("vm-ok", ca_, pki::ValidFor(std::chrono::hours(1)));
  ClientCert("vm-expired", ca_,
             {std::chrono::system_clock::now() - std::chrono::hours(2),
              std::chrono::system_clock::now() - std::chrono::hours(1)});
  ClientCert("vm-foreign", other_ca_, pki::ValidFor(std::chrono::hours(1)));
  Start(/*require_client_cert=*/true);
  auto ok = AgentAs("vm-ok", "ca.crt", true);
  auto expired = AgentAs("vm-expired", "ca.crt", true);
  auto foreign = AgentAs("vm-foreign", "ca.crt", true);
  ASSERT_TRUE(signal_.Await([&] { return IsConnected("vm-ok"); }));
  EXPECT_FALSE(signal_.Await([&] { return IsConnected("vm-expired") || IsConnected("vm-foreign"); },
                             std::chrono::seconds(2)));
  EXPECT_TRUE(IsConnected("vm-ok"));
  ok->Stop();
  expired->Stop();
  foreign->Stop();
}

// The HTTP API over TLS with the gRPC port's certificate (--http-tls): a client trusting the CA
// sends a heartbeat and reads /readyz; one trusting another CA cannot.
TEST_F(TlsFilesTest, TheHttpApiOverTlsServesTheSameCertificate) {
  StartHubWith(files_, /*require_client_cert=*/false, /*http_tls=*/true);
  const std::string base = "https://127.0.0.1:" + std::to_string(hub_->http_port());
  auto good = MakeHttpTransport({.base_url = base, .tls = {.ca_pem = ca_.cert_pem}});
  ASSERT_TRUE(good.ok());
  auto ready = (*good)->Do("GET", "/readyz", "");
  ASSERT_TRUE(ready.ok()) << ready.status();
  EXPECT_EQ(ready->status, 200);
  auto hb = (*good)->Do("POST", "/api/v1/vms/vm-https/heartbeat",
                        R"({"vm_id":"vm-https","miglet_state":"ready","runner_state":"offline"})");
  ASSERT_TRUE(hb.ok()) << hb.status();
  EXPECT_EQ(hb->status, 200) << hb->body;
  EXPECT_TRUE(hub_->hub().GetAgent("vm-https").has_value());
  auto wrong = MakeHttpTransport({.base_url = base, .tls = {.ca_pem = other_ca_.cert_pem}});
  ASSERT_TRUE(wrong.ok());
  EXPECT_FALSE((*wrong)->Do("GET", "/readyz", "").ok());
  // Without the certificate files the hub refuses to start with the HTTP API over TLS.
  AgentHubServerOptions bad;
  bad.grpc_port = 0;
  bad.http_port = 0;
  bad.http_tls = true;
  EXPECT_EQ(AgentHubServer::Start(bad, MakeRealClock(), nullptr).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// mTLS ties a certificate to the vm_id its subject names: vm-b's agent with vm-a's certificate
// is refused (PERMISSION_DENIED, counted), while vm-a's agent with its own connects.
TEST_F(TlsFilesTest, ACertificateSpeaksOnlyForTheVmItNames) {
  ClientCert("vm-a", ca_, pki::ValidFor(std::chrono::hours(1)));
  Start(/*require_client_cert=*/true);
  auto own = AgentAs("vm-a", "ca.crt", true);
  auto borrowed = AgentAs("vm-b", "ca.crt", true, /*cert_of=*/"vm-a");
  ASSERT_TRUE(signal_.Await([&] { return IsConnected("vm-a"); }));
  EXPECT_FALSE(signal_.Await([&] { return IsConnected("vm-b"); }, std::chrono::seconds(2)));
  EXPECT_TRUE(IsConnected("vm-a"));
  own->Stop();
  borrowed->Stop();
}

}  // namespace
}  // namespace miglet
