// HTTPS from PEM files (HttpServerTls). Its own binary: under ASan its leak check unwinds
// slowly (fast_unwind_on_malloc=0, see common/CMakeLists.txt), which the other tests do not need.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "miglet/common/http.h"
#include "miglet/common/http_transport.h"
#include "miglet/common/pki.h"
#include "miglet/common/testing/served_certificate.h"

namespace miglet {

// HTTPS from PEM files: a client trusting the CA gets its answer, one trusting another CA does
// not, and a certificate renewed on disk is what the next connection gets.
TEST(HttpTest, HttpsServesTheCertificateOnDiskAndItsRenewal) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("miglet-https-" + std::to_string(getpid()));
  fs::create_directories(dir);
  auto ca_key = pki::NewKey();
  ASSERT_TRUE(ca_key.ok());
  auto ca_cert = pki::SelfSignedCa(*ca_key, "test-ca", pki::ValidFor(std::chrono::hours(1)));
  ASSERT_TRUE(ca_cert.ok());
  const pki::Signer ca{*ca_cert, *ca_key};
  auto write_cert = [&] {
    auto key = pki::NewKey();
    auto cert = pki::Issue(ca, *key, "localhost", {.dns = {"localhost"}, .ips = {"127.0.0.1"}},
                           pki::Usage::kServer, pki::ValidFor(std::chrono::hours(1)));
    std::ofstream(dir / "tls.key.tmp") << *key;
    std::ofstream(dir / "tls.crt.tmp") << *cert;
    fs::rename(dir / "tls.key.tmp", dir / "tls.key");
    fs::rename(dir / "tls.crt.tmp", dir / "tls.crt");
    return pki::ReadCertificate(*cert)->serial;
  };
  const std::string first = write_cert();
  auto server = MakeHttpServer(
      "127.0.0.1", 0,
      [](const HttpRequest&, HttpReply reply) {
        reply({200, "ok", "text/plain"});
      },
      {.cert_file = (dir / "tls.crt").string(), .key_file = (dir / "tls.key").string()});
  auto port = server->Start();
  ASSERT_TRUE(port.ok()) << port.status();
  const std::string base = "https://127.0.0.1:" + std::to_string(*port);
  auto good = MakeHttpTransport({.base_url = base, .tls = {.ca_pem = ca.cert_pem}});
  ASSERT_TRUE(good.ok());
  auto r = (*good)->Do("GET", "/x", "");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 200);
  auto other_key = pki::NewKey();
  auto other = pki::SelfSignedCa(*other_key, "other", pki::ValidFor(std::chrono::hours(1)));
  auto wrong = MakeHttpTransport({.base_url = base, .tls = {.ca_pem = *other}});
  ASSERT_TRUE(wrong.ok());
  EXPECT_FALSE((*wrong)->Do("GET", "/x", "").ok());
  EXPECT_EQ(::miglet::testing::ServedCertificateSerial(*port), first);
  const std::string renewed = write_cert();
  EXPECT_EQ(::miglet::testing::ServedCertificateSerial(*port), renewed);
  server->Stop();
  fs::remove_all(dir);
}

}  // namespace miglet
