#pragma once

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include <string>

namespace miglet::github::testing {

// A fresh RSA key as PEM: the private key (PKCS#8) and its public key.
struct TestKey {
  std::string private_pem;
  std::string public_pem;
};

inline std::string BioString(BIO* bio) {
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio, &data);
  std::string s(data, n);
  BIO_free(bio);
  return s;
}

inline TestKey MakeTestKey(unsigned bits = 2048) {
  EVP_PKEY* k = EVP_RSA_gen(bits);
  TestKey out;
  BIO* priv = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(priv, k, nullptr, nullptr, 0, nullptr, nullptr);
  out.private_pem = BioString(priv);
  BIO* pub = BIO_new(BIO_s_mem());
  PEM_write_bio_PUBKEY(pub, k);
  out.public_pem = BioString(pub);
  EVP_PKEY_free(k);
  return out;
}

// True when `sig` is a valid RS256 signature of `data` under `public_pem`, by OpenSSL's verify.
inline bool VerifyRs256(const std::string& public_pem, const std::string& data,
                        const std::string& sig) {
  BIO* bio = BIO_new_mem_buf(public_pem.data(), static_cast<int>(public_pem.size()));
  EVP_PKEY* k = PEM_read_bio_PUBKEY(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  if (k == nullptr) return false;
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  const bool ok =
      EVP_DigestVerifyInit(ctx, nullptr, EVP_sha256(), nullptr, k) == 1 &&
      EVP_DigestVerify(ctx, reinterpret_cast<const unsigned char*>(sig.data()), sig.size(),
                       reinterpret_cast<const unsigned char*>(data.data()), data.size()) == 1;
  EVP_MD_CTX_free(ctx);
  EVP_PKEY_free(k);
  return ok;
}

}  // namespace miglet::github::testing
