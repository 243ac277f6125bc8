#include "miglet/common/pki.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>

#include "absl/strings/str_join.h"

namespace miglet::pki {

namespace {

template <typename T, void (*F)(T*)>
struct Deleter {
  void operator()(T* p) const { F(p); }
};
using Bio = std::unique_ptr<BIO, Deleter<BIO, BIO_free_all>>;
using Key = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY, EVP_PKEY_free>>;
using Cert = std::unique_ptr<X509, Deleter<X509, X509_free>>;
using Req = std::unique_ptr<X509_REQ, Deleter<X509_REQ, X509_REQ_free>>;
using Ext = std::unique_ptr<X509_EXTENSION, Deleter<X509_EXTENSION, X509_EXTENSION_free>>;
using Store = std::unique_ptr<X509_STORE, Deleter<X509_STORE, X509_STORE_free>>;
using StoreCtx = std::unique_ptr<X509_STORE_CTX, Deleter<X509_STORE_CTX, X509_STORE_CTX_free>>;
using Bn = std::unique_ptr<BIGNUM, Deleter<BIGNUM, BN_free>>;

// OpenSSL's last error, for a message.
std::string SslError() {
  unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return "unknown error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

absl::Status Fail(const std::string& what) { return absl::InternalError(what + ": " + SslError()); }

Bio ReadBio(const std::string& pem) {
  return Bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
}

std::string Drain(BIO* b) {
  char* data = nullptr;
  const long n = BIO_get_mem_data(b, &data);
  return std::string(data, static_cast<size_t>(n));
}

absl::StatusOr<std::string> CertPem(X509* x) {
  Bio b(BIO_new(BIO_s_mem()));
  if (!PEM_write_bio_X509(b.get(), x)) return Fail("writing a certificate");
  return Drain(b.get());
}

absl::StatusOr<Key> PrivateKey(const std::string& pem) {
  auto b = ReadBio(pem);
  Key k(PEM_read_bio_PrivateKey(b.get(), nullptr, nullptr, nullptr));
  if (!k) return absl::InvalidArgumentError("not a PEM private key: " + SslError());
  return k;
}

// The public key of a private key, public key, certificate request or certificate PEM.
absl::StatusOr<Key> PublicKeyOf(const std::string& pem) {
  if (pem.find("PRIVATE KEY-----") != std::string::npos) return PrivateKey(pem);
  if (pem.find("CERTIFICATE REQUEST-----") != std::string::npos) {
    auto b = ReadBio(pem);
    Req r(PEM_read_bio_X509_REQ(b.get(), nullptr, nullptr, nullptr));
    if (!r) return absl::InvalidArgumentError("not a PEM certificate request: " + SslError());
    Key k(X509_REQ_get_pubkey(r.get()));
    if (!k) return Fail("the request's key");
    return k;
  }
  if (pem.find("CERTIFICATE-----") != std::string::npos) {
    auto b = ReadBio(pem);
    Cert c(PEM_read_bio_X509(b.get(), nullptr, nullptr, nullptr));
    if (!c) return absl::InvalidArgumentError("not a PEM certificate: " + SslError());
    Key k(X509_get_pubkey(c.get()));
    if (!k) return Fail("the certificate's key");
    return k;
  }
  auto b = ReadBio(pem);
  Key k(PEM_read_bio_PUBKEY(b.get(), nullptr, nullptr, nullptr));
  if (!k) return absl::InvalidArgumentError("not a PEM key, request or certificate");
  return k;
}

std::string CommonName(X509_NAME* name) {
  char buf[256];
  const int n = X509_NAME_get_text_by_NID(name, NID_commonName, buf, sizeof buf);
  return n < 0 ? std::string() : std::string(buf, static_cast<size_t>(n));
}

WallTime FromAsn1(const ASN1_TIME* t) {
  struct tm tm = {};
  if (ASN1_TIME_to_tm(t, &tm) != 1) return WallTime{};
  return std::chrono::system_clock::from_time_t(timegm(&tm));
}

absl::Status AddExt(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  Ext ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str()));
  if (!ext) return Fail("extension " + std::string(OBJ_nid2sn(nid)) + "=" + value);
  if (!X509_add_ext(cert, ext.get(), -1)) return Fail("adding an extension");
  return absl::OkStatus();
}

// A certificate for `subject` signed by `signer` (itself when `issuer` is null).
absl::StatusOr<std::string> Make(EVP_PKEY* subject, EVP_PKEY* signer, X509* issuer,
                                 const std::string& common_name, const Names& names, Usage usage,
                                 Validity validity) {
  Cert x(X509_new());
  if (!x || !X509_set_version(x.get(), 2)) return Fail("a new certificate");
  Bn serial(BN_new());
  if (!serial || !BN_rand(serial.get(), 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) ||
      !BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(x.get()))) {
    return Fail("a serial number");
  }
  const auto secs = [](WallTime t) {
    return static_cast<time_t>(
        std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count());
  };
  if (!ASN1_TIME_set(X509_getm_notBefore(x.get()), secs(validity.not_before)) ||
      !ASN1_TIME_set(X509_getm_notAfter(x.get()), secs(validity.not_after))) {
    return Fail("validity");
  }
  X509_NAME* name = X509_get_subject_name(x.get());
  if (!X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                  reinterpret_cast<const unsigned char*>(common_name.c_str()), -1,
                                  -1, 0)) {
    return Fail("subject " + common_name);
  }
  if (!X509_set_issuer_name(x.get(), issuer ? X509_get_subject_name(issuer) : name) ||
      !X509_set_pubkey(x.get(), subject)) {
    return Fail("issuer or key");
  }
  X509* iss = issuer ? issuer : x.get();
  absl::Status st;
  switch (usage) {
    case Usage::kCa:
      st.Update(AddExt(x.get(), iss, NID_basic_constraints, "critical,CA:TRUE,pathlen:0"));
      st.Update(
          AddExt(x.get(), iss, NID_key_usage, "critical,keyCertSign,cRLSign,digitalSignature"));
      break;
    case Usage::kServer:
    case Usage::kClient:
      st.Update(AddExt(x.get(), iss, NID_basic_constraints, "critical,CA:FALSE"));
      st.Update(AddExt(x.get(), iss, NID_key_usage, "critical,digitalSignature"));
      st.Update(AddExt(x.get(), iss, NID_ext_key_usage,
                       usage == Usage::kServer ? "serverAuth" : "clientAuth"));
      break;
  }
  st.Update(AddExt(x.get(), iss, NID_subject_key_identifier, "hash"));
  if (issuer) st.Update(AddExt(x.get(), iss, NID_authority_key_identifier, "keyid:always"));
  std::vector<std::string> san;
  for (const auto& d : names.dns) san.push_back("DNS:" + d);
  for (const auto& i : names.ips) san.push_back("IP:" + i);
  for (const auto& u : names.uris) san.push_back("URI:" + u);
  if (!san.empty()) st.Update(AddExt(x.get(), iss, NID_subject_alt_name, absl::StrJoin(san, ",")));
  if (!st.ok()) return st;
  if (X509_sign(x.get(), signer, EVP_sha256()) == 0) return Fail("signing");
  return CertPem(x.get());
}

}  // namespace

Validity ValidFor(Duration lifetime, WallTime now) {
  return {now - std::chrono::minutes(5),
          now + std::chrono::duration_cast<std::chrono::system_clock::duration>(lifetime)};
}

absl::StatusOr<std::string> NewKey() {
  Key k(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  if (!k) return Fail("a new EC key");
  Bio b(BIO_new(BIO_s_mem()));
  if (!PEM_write_bio_PrivateKey(b.get(), k.get(), nullptr, nullptr, 0, nullptr, nullptr)) {
    return Fail("writing a key");
  }
  return Drain(b.get());
}

absl::StatusOr<std::string> SelfSignedCa(const std::string& key_pem, const std::string& common_name,
                                         Validity validity) {
  auto k = PrivateKey(key_pem);
  if (!k.ok()) return k.status();
  return Make(k->get(), k->get(), nullptr, common_name, {}, Usage::kCa, validity);
}

absl::StatusOr<std::string> Issue(const Signer& ca, const std::string& subject_public_pem,
                                  const std::string& common_name, const Names& names, Usage usage,
                                  Validity validity) {
  auto ca_key = PrivateKey(ca.key_pem);
  if (!ca_key.ok()) return ca_key.status();
  auto b = ReadBio(ca.cert_pem);
  Cert ca_cert(PEM_read_bio_X509(b.get(), nullptr, nullptr, nullptr));
  if (!ca_cert) return absl::InvalidArgumentError("the CA certificate is not PEM: " + SslError());
  auto subject = PublicKeyOf(subject_public_pem);
  if (!subject.ok()) return subject.status();
  return Make(subject->get(), ca_key->get(), ca_cert.get(), common_name, names, usage, validity);
}

absl::StatusOr<std::string> MakeCsr(const std::string& key_pem, const std::string& common_name) {
  auto k = PrivateKey(key_pem);
  if (!k.ok()) return k.status();
  Req r(X509_REQ_new());
  if (!r || !X509_REQ_set_version(r.get(), 0) || !X509_REQ_set_pubkey(r.get(), k->get())) {
    return Fail("a new request");
  }
  if (!X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(r.get()), "CN", MBSTRING_UTF8,
                                  reinterpret_cast<const unsigned char*>(common_name.c_str()), -1,
                                  -1, 0) ||
      X509_REQ_sign(r.get(), k->get(), EVP_sha256()) == 0) {
    return Fail("signing the request");
  }
  Bio b(BIO_new(BIO_s_mem()));
  if (!PEM_write_bio_X509_REQ(b.get(), r.get())) return Fail("writing the request");
  return Drain(b.get());
}

absl::StatusOr<CsrInfo> ReadCsr(const std::string& csr_pem) {
  auto b = ReadBio(csr_pem);
  Req r(PEM_read_bio_X509_REQ(b.get(), nullptr, nullptr, nullptr));
  if (!r) return absl::InvalidArgumentError("not a PEM certificate request: " + SslError());
  Key k(X509_REQ_get_pubkey(r.get()));
  if (!k || X509_REQ_verify(r.get(), k.get()) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError("the certificate request's signature does not verify");
  }
  Bio out(BIO_new(BIO_s_mem()));
  if (!PEM_write_bio_PUBKEY(out.get(), k.get())) return Fail("writing the request's key");
  return CsrInfo{CommonName(X509_REQ_get_subject_name(r.get())), Drain(out.get())};
}

absl::StatusOr<CertInfo> ReadCertificate(const std::string& cert_pem) {
  auto b = ReadBio(cert_pem);
  Cert x(PEM_read_bio_X509(b.get(), nullptr, nullptr, nullptr));
  if (!x) return absl::InvalidArgumentError("not a PEM certificate: " + SslError());
  CertInfo info;
  info.common_name = CommonName(X509_get_subject_name(x.get()));
  Bn serial(ASN1_INTEGER_to_BN(X509_get0_serialNumber(x.get()), nullptr));
  if (serial) {
    char* hex = BN_bn2hex(serial.get());
    info.serial = hex;
    OPENSSL_free(hex);
  }
  info.not_before = FromAsn1(X509_get0_notBefore(x.get()));
  info.not_after = FromAsn1(X509_get0_notAfter(x.get()));
  info.is_ca = X509_check_ca(x.get()) != 0;
  auto* sans = static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(x.get(), NID_subject_alt_name, nullptr, nullptr));
  if (sans != nullptr) {
    for (int i = 0; i < sk_GENERAL_NAME_num(sans); ++i) {
      const GENERAL_NAME* g = sk_GENERAL_NAME_value(sans, i);
      if (g->type == GEN_DNS || g->type == GEN_URI) {
        const ASN1_IA5STRING* s =
            g->type == GEN_DNS ? g->d.dNSName : g->d.uniformResourceIdentifier;
        std::string v(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                      static_cast<size_t>(ASN1_STRING_length(s)));
        (g->type == GEN_DNS ? info.names.dns : info.names.uris).push_back(std::move(v));
      } else if (g->type == GEN_IPADD) {
        const ASN1_OCTET_STRING* ip = g->d.iPAddress;
        if (ASN1_STRING_length(ip) == 4) {
          const unsigned char* a = ASN1_STRING_get0_data(ip);
          info.names.ips.push_back(std::to_string(a[0]) + "." + std::to_string(a[1]) + "." +
                                   std::to_string(a[2]) + "." + std::to_string(a[3]));
        }
      }
    }
    GENERAL_NAMES_free(sans);
  }
  return info;
}

absl::Status Verify(const std::string& cert_pem, const std::string& ca_pem, WallTime at) {
  auto cb = ReadBio(cert_pem);
  Cert cert(PEM_read_bio_X509(cb.get(), nullptr, nullptr, nullptr));
  if (!cert) return absl::InvalidArgumentError("not a PEM certificate");
  Store store(X509_STORE_new());
  auto ab = ReadBio(ca_pem);
  int cas = 0;
  while (X509* ca = PEM_read_bio_X509(ab.get(), nullptr, nullptr, nullptr)) {
    X509_STORE_add_cert(store.get(), ca);
    X509_free(ca);
    ++cas;
  }
  ERR_clear_error();  // the end of the bundle reads as an error
  if (cas == 0) return absl::InvalidArgumentError("no PEM certificate in the CA bundle");
  StoreCtx ctx(X509_STORE_CTX_new());
  if (!ctx || !X509_STORE_CTX_init(ctx.get(), store.get(), cert.get(), nullptr)) {
    return Fail("a verify context");
  }
  X509_STORE_CTX_set_time(
      ctx.get(), 0,
      static_cast<time_t>(
          std::chrono::duration_cast<std::chrono::seconds>(at.time_since_epoch()).count()));
  if (X509_verify_cert(ctx.get()) != 1) {
    const int err = X509_STORE_CTX_get_error(ctx.get());
    ERR_clear_error();
    return absl::PermissionDeniedError(X509_verify_cert_error_string(err));
  }
  return absl::OkStatus();
}

}  // namespace miglet::pki
