#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "miglet/common/clock.h"

// Keys, certificates and certificate requests, with OpenSSL: what the controller needs to be its
// own small CA (a self-signed CA and serving certificate when no certificate is given, client
// certificates for agents on external machines) and what an agent needs to ask for one. Keys
// are EC P-256, signatures ECDSA-SHA256; everything goes in and out as PEM.
namespace miglet::pki {

// A new private key (PKCS#8 PEM).
absl::StatusOr<std::string> NewKey();

// The names a certificate is for (subjectAltName).
struct Names {
  std::vector<std::string> dns;
  std::vector<std::string> ips;
  std::vector<std::string> uris;
};

enum class Usage { kCa, kServer, kClient };

struct Validity {
  WallTime not_before;
  WallTime not_after;
};
// From `now - 5 min` (clock skew) to `now + lifetime`.
Validity ValidFor(Duration lifetime, WallTime now = std::chrono::system_clock::now());

struct Signer {
  std::string cert_pem;
  std::string key_pem;
};

// A self-signed CA certificate for `key_pem`.
absl::StatusOr<std::string> SelfSignedCa(const std::string& key_pem, const std::string& common_name,
                                         Validity validity);

// A certificate for the public key of `subject_public_pem` (a public or private key PEM, or a
// certificate request PEM) signed by `ca`.
absl::StatusOr<std::string> Issue(const Signer& ca, const std::string& subject_public_pem,
                                  const std::string& common_name, const Names& names, Usage usage,
                                  Validity validity);

// A certificate request for `key_pem` with subject CN `common_name`.
absl::StatusOr<std::string> MakeCsr(const std::string& key_pem, const std::string& common_name);

struct CsrInfo {
  std::string common_name;
  std::string public_key_pem;
};
// A request's subject and key; INVALID_ARGUMENT when it is not a PEM request or its own
// signature does not verify.
absl::StatusOr<CsrInfo> ReadCsr(const std::string& csr_pem);

struct CertInfo {
  std::string common_name;
  std::string serial;  // hex
  WallTime not_before;
  WallTime not_after;
  bool is_ca = false;
  Names names;
};
absl::StatusOr<CertInfo> ReadCertificate(const std::string& cert_pem);

// OK when `cert_pem` chains to `ca_pem` and is valid at `at`; else PERMISSION_DENIED with
// OpenSSL's reason ("certificate has expired").
absl::Status Verify(const std::string& cert_pem, const std::string& ca_pem, WallTime at);

}  // namespace miglet::pki
