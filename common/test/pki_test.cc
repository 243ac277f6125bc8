#include "miglet/common/pki.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace miglet::pki {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

Signer NewCa(const std::string& cn, Validity v = ValidFor(std::chrono::hours(24))) {
  auto key = NewKey();
  EXPECT_TRUE(key.ok()) << key.status();
  auto cert = SelfSignedCa(*key, cn, v);
  EXPECT_TRUE(cert.ok()) << cert.status();
  return {*cert, *key};
}

const WallTime kNow = std::chrono::system_clock::now();

TEST(PkiTest, ACaIssuesAServerCertificateForItsNames) {
  const Signer ca = NewCa("miglet-ca");
  auto ca_info = ReadCertificate(ca.cert_pem);
  ASSERT_TRUE(ca_info.ok()) << ca_info.status();
  EXPECT_TRUE(ca_info->is_ca);
  EXPECT_EQ(ca_info->common_name, "miglet-ca");

  auto key = NewKey();
  ASSERT_TRUE(key.ok());
  auto cert = Issue(ca, *key, "mig-controller",
                    {.dns = {"miglet.miglet-system.svc", "miglet"}, .ips = {"127.0.0.1"}},
                    Usage::kServer, ValidFor(std::chrono::hours(1)));
  ASSERT_TRUE(cert.ok()) << cert.status();
  auto info = ReadCertificate(*cert);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_FALSE(info->is_ca);
  EXPECT_EQ(info->common_name, "mig-controller");
  EXPECT_THAT(info->names.dns, ElementsAre("miglet.miglet-system.svc", "miglet"));
  EXPECT_THAT(info->names.ips, ElementsAre("127.0.0.1"));
  EXPECT_LT(info->not_before, kNow);
  EXPECT_GT(info->not_after, kNow + std::chrono::minutes(59));
  EXPECT_LT(info->not_after, kNow + std::chrono::minutes(61));
  EXPECT_TRUE(Verify(*cert, ca.cert_pem, kNow).ok());
  // Each certificate has a serial of its own.
  auto again =
      Issue(ca, *key, "mig-controller", {}, Usage::kServer, ValidFor(std::chrono::hours(1)));
  ASSERT_TRUE(again.ok());
  EXPECT_NE(ReadCertificate(*again)->serial, info->serial);
}

TEST(PkiTest, VerifyRefusesAnotherCaAndAnExpiredCertificate) {
  const Signer ca = NewCa("miglet-ca"), other = NewCa("other-ca");
  auto key = NewKey();
  ASSERT_TRUE(key.ok());
  auto cert = Issue(ca, *key, "vm-1", {}, Usage::kClient, ValidFor(std::chrono::hours(1)));
  ASSERT_TRUE(cert.ok());
  const absl::Status wrong_ca = Verify(*cert, other.cert_pem, kNow);
  EXPECT_EQ(wrong_ca.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(wrong_ca.message(), HasSubstr("local issuer"));
  const absl::Status later = Verify(*cert, ca.cert_pem, kNow + std::chrono::hours(2));
  EXPECT_EQ(later.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(later.message(), HasSubstr("expired"));
  auto expired = Issue(ca, *key, "vm-1", {}, Usage::kClient,
                       {kNow - std::chrono::hours(2), kNow - std::chrono::hours(1)});
  ASSERT_TRUE(expired.ok());
  EXPECT_THAT(Verify(*expired, ca.cert_pem, kNow).message(), HasSubstr("expired"));
  // A bundle with both CAs verifies either's certificates.
  EXPECT_TRUE(Verify(*cert, other.cert_pem + ca.cert_pem, kNow).ok());
}

TEST(PkiTest, ARequestCarriesItsNameAndKeyAndIsSignedAsAsked) {
  const Signer ca = NewCa("miglet-ca");
  auto key = NewKey();
  ASSERT_TRUE(key.ok());
  auto csr = MakeCsr(*key, "vm-ext-1");
  ASSERT_TRUE(csr.ok()) << csr.status();
  auto req = ReadCsr(*csr);
  ASSERT_TRUE(req.ok()) << req.status();
  EXPECT_EQ(req->common_name, "vm-ext-1");
  EXPECT_THAT(req->public_key_pem, HasSubstr("BEGIN PUBLIC KEY"));
  // The certificate is for the request's key: issued from the request or from the key alone,
  // the same public key.
  auto from_csr = Issue(ca, *csr, "vm-ext-1", {.uris = {"miglet://vm/vm-ext-1"}}, Usage::kClient,
                        ValidFor(std::chrono::hours(1)));
  ASSERT_TRUE(from_csr.ok()) << from_csr.status();
  auto info = ReadCertificate(*from_csr);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->common_name, "vm-ext-1");
  EXPECT_THAT(info->names.uris, ElementsAre("miglet://vm/vm-ext-1"));
  auto from_pub =
      Issue(ca, req->public_key_pem, "x", {}, Usage::kClient, ValidFor(std::chrono::hours(1)));
  ASSERT_TRUE(from_pub.ok()) << from_pub.status();
}

TEST(PkiTest, BadInputIsRefusedWithAReason) {
  EXPECT_EQ(ReadCsr("not pem").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ReadCertificate("").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(SelfSignedCa("junk", "x", ValidFor(std::chrono::hours(1))).status().code(),
            absl::StatusCode::kInvalidArgument);
  const Signer ca = NewCa("miglet-ca");
  EXPECT_EQ(
      Issue(ca, "junk", "x", {}, Usage::kClient, ValidFor(std::chrono::hours(1))).status().code(),
      absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Verify(ca.cert_pem, "no bundle", kNow).code(), absl::StatusCode::kInvalidArgument);
  // A request changed after it was signed does not read or verify.
  auto key = NewKey();
  ASSERT_TRUE(key.ok());
  auto csr = MakeCsr(*key, "vm-ext-1");
  ASSERT_TRUE(csr.ok());
  std::string forged = *csr;
  const size_t mid = forged.size() / 2;
  forged[mid] = forged[mid] == 'A' ? 'B' : 'A';
  EXPECT_FALSE(ReadCsr(forged).ok());
}

}  // namespace
}  // namespace miglet::pki
