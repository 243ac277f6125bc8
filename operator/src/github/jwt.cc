// The GitHub App JWT: RS256 over OpenSSL's EVP interface.
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "absl/strings/escaping.h"
#include "miglet/operator/github/auth.h"
#include "nlohmann/json.hpp"

namespace miglet::github {

struct AppKey::Impl {
  EVP_PKEY* key = nullptr;
  ~Impl() { EVP_PKEY_free(key); }
};

namespace {

std::string OpenSslError() {
  const unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return "unknown OpenSSL error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

}  // namespace

absl::StatusOr<AppKey> AppKey::Parse(const std::string& pem, const std::string& source) {
  if (pem.find("-----BEGIN") == std::string::npos) {
    return absl::InvalidArgumentError(source + ": not a PEM private key (no -----BEGIN line)");
  }
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  if (bio == nullptr) return absl::InternalError("BIO_new_mem_buf failed");
  auto impl = std::make_shared<Impl>();
  impl->key = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  if (impl->key == nullptr) {
    return absl::InvalidArgumentError(source + ": cannot read the private key: " + OpenSslError());
  }
  if (EVP_PKEY_get_base_id(impl->key) != EVP_PKEY_RSA) {
    return absl::InvalidArgumentError(source + ": a GitHub App key is RSA; this one is not");
  }
  return AppKey(std::move(impl));
}

absl::StatusOr<std::string> AppKey::SignRs256(const std::string& data) const {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  if (ctx == nullptr) return absl::InternalError("EVP_MD_CTX_new failed");
  std::string sig;
  size_t len = 0;
  bool ok = EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, impl_->key) == 1 &&
            EVP_DigestSign(ctx, nullptr, &len, reinterpret_cast<const unsigned char*>(data.data()),
                           data.size()) == 1;
  if (ok) {
    sig.resize(len);
    ok = EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(sig.data()), &len,
                        reinterpret_cast<const unsigned char*>(data.data()), data.size()) == 1;
    sig.resize(len);
  }
  EVP_MD_CTX_free(ctx);
  if (!ok) return absl::InternalError("signing the App JWT: " + OpenSslError());
  return sig;
}

absl::StatusOr<std::string> MakeAppJwt(const AppKey& key, int64_t app_id, WallTime now) {
  const int64_t t =
      std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
  const nlohmann::json header = {{"alg", "RS256"}, {"typ", "JWT"}};
  const nlohmann::json claims = {
      {"iat", t - 60}, {"exp", t + 9 * 60}, {"iss", std::to_string(app_id)}};
  const std::string signing_input =
      absl::WebSafeBase64Escape(header.dump()) + "." + absl::WebSafeBase64Escape(claims.dump());
  auto sig = key.SignRs256(signing_input);
  if (!sig.ok()) return sig.status();
  return signing_input + "." + absl::WebSafeBase64Escape(*sig);
}

}  // namespace miglet::github
