#include "miglet/operator/controllers/serving_tls.h"

#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "absl/strings/escaping.h"
#include "miglet/operator/kube/errors.h"
#include "spdlog/spdlog.h"

namespace miglet::controllers {

namespace {

// Written whole and renamed into place: the hub's file watcher never reads half a file.
absl::Status WriteFile(const std::string& path, const std::string& data, mode_t mode) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    if (!(out << data)) return absl::InternalError("cannot write " + tmp);
  }
  ::chmod(tmp.c_str(), mode);
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) return absl::InternalError("cannot rename " + tmp + ": " + ec.message());
  return absl::OkStatus();
}

std::string Decode(const kube::Json& secret, const char* key) {
  std::string out;
  const auto& data = secret.value("data", kube::Json::object());
  if (!data.contains(key) || !data[key].is_string()) return "";
  if (!absl::Base64Unescape(data[key].get<std::string>(), &out)) return "";
  return out;
}

}  // namespace

absl::StatusOr<std::unique_ptr<SelfSignedTls>> SelfSignedTls::Start(SelfSignedTlsOptions options) {
  std::unique_ptr<SelfSignedTls> t(new SelfSignedTls(std::move(options)));
  std::error_code ec;
  std::filesystem::create_directories(t->o_.dir, ec);
  if (ec) return absl::InternalError("cannot make " + t->o_.dir + ": " + ec.message());
  if (auto st = t->LoadOrMakeCa(); !st.ok()) return st;
  if (auto st = WriteFile(t->ca_file(), t->ca_.cert_pem, 0644); !st.ok()) return st;
  if (auto st = t->WriteServing(); !st.ok()) return st;
  return t;
}

absl::Status SelfSignedTls::LoadOrMakeCa() {
  auto secrets = kube::SecretsIn(*o_.kube, o_.ns);
  for (int attempt = 0; attempt < 2; ++attempt) {
    auto got = secrets.Get(o_.ca_secret);
    if (got.ok()) {
      ca_ = {Decode(*got, "tls.crt"), Decode(*got, "tls.key")};
      auto info = pki::ReadCertificate(ca_.cert_pem);
      if (!info.ok() || !info->is_ca || ca_.key_pem.empty()) {
        return absl::FailedPreconditionError(
            "Secret " + o_.ns + "/" + o_.ca_secret +
            " does not hold a CA certificate and key (tls.crt, tls.key); delete it to have a new "
            "CA made, or give --tls-cert-file and --tls-key-file");
      }
      spdlog::info("TLS: serving certificates from the CA in Secret {}/{}", o_.ns, o_.ca_secret);
      return absl::OkStatus();
    }
    if (!kube::IsNotFound(got.status())) return got.status();
    auto key = pki::NewKey();
    if (!key.ok()) return key.status();
    auto cert = pki::SelfSignedCa(*key, "mig-controller CA",
                                  pki::ValidFor(o_.ca_lifetime, o_.clock->WallNow()));
    if (!cert.ok()) return cert.status();
    kube::Json secret = {
        {"apiVersion", "v1"},
        {"kind", "Secret"},
        {"metadata",
         {{"name", o_.ca_secret},
          {"labels", {{"app.kubernetes.io/managed-by", "mig-controller"}}}}},
        {"type", "kubernetes.io/tls"},
        {"data", {{"tls.crt", absl::Base64Escape(*cert)}, {"tls.key", absl::Base64Escape(*key)}}}};
    auto made = secrets.Create(secret);
    if (made.ok()) {
      ca_ = {*cert, *key};
      spdlog::info("TLS: made a CA for agents in Secret {}/{}", o_.ns, o_.ca_secret);
      return absl::OkStatus();
    }
    // Another replica made it first: read theirs.
    if (!kube::IsAlreadyExists(made.status())) return made.status();
  }
  return absl::AbortedError("Secret " + o_.ns + "/" + o_.ca_secret + " came and went");
}

absl::Status SelfSignedTls::WriteServing() {
  auto key = pki::NewKey();
  if (!key.ok()) return key.status();
  const WallTime now = o_.clock->WallNow();
  const auto validity = pki::ValidFor(o_.serving_lifetime, now);
  auto cert = pki::Issue(ca_, *key, o_.dns_names.empty() ? "mig-controller" : o_.dns_names.front(),
                         {.dns = o_.dns_names, .ips = o_.ips}, pki::Usage::kServer, validity);
  if (!cert.ok()) return cert.status();
  // The key first: the watcher takes the pair once both have changed.
  if (auto st = WriteFile(key_file(), *key, 0600); !st.ok()) return st;
  if (auto st = WriteFile(cert_file(), *cert + ca_.cert_pem, 0644); !st.ok()) return st;
  std::lock_guard l(mu_);
  issued_ = now;
  expires_ = validity.not_after;
  return absl::OkStatus();
}

absl::StatusOr<bool> SelfSignedTls::RenewIfDue() {
  {
    std::lock_guard l(mu_);
    const WallTime due = issued_ + (expires_ - issued_) * 2 / 3;
    if (o_.clock->WallNow() < due) return false;
  }
  if (auto st = WriteServing(); !st.ok()) return st;
  spdlog::info("TLS: serving certificate renewed");
  return true;
}

}  // namespace miglet::controllers
