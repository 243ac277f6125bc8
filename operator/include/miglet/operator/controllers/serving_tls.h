#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "miglet/common/clock.h"
#include "miglet/common/pki.h"
#include "miglet/operator/kube/kube_client.h"

// TLS for the agent hub when no certificate is given: the controller is its own CA. The CA
// (key and certificate) lives in a Secret in the controller's namespace, made by whichever
// replica comes first and read by the others, so every replica's serving certificate chains to
// the one CA the agents trust; each process makes its own serving certificate from it, writes
// it where the hub's file watcher reads it, and renews it when two thirds of its life are gone.
namespace miglet::controllers {

struct SelfSignedTlsOptions {
  std::shared_ptr<kube::KubeClient> kube;
  std::shared_ptr<Clock> clock;
  std::string ns;  // the CA Secret's namespace
  std::string ca_secret = "mig-controller-ca";
  std::vector<std::string> dns_names;  // the serving certificate's names
  std::vector<std::string> ips;
  std::string dir;  // tls.crt, tls.key and ca.crt are written here
  Duration ca_lifetime = std::chrono::hours(24 * 365 * 10);
  Duration serving_lifetime = std::chrono::hours(24 * 90);
};

class SelfSignedTls {
 public:
  // Gets (or makes) the CA and writes a first serving certificate.
  static absl::StatusOr<std::unique_ptr<SelfSignedTls>> Start(SelfSignedTlsOptions options);

  std::string cert_file() const { return o_.dir + "/tls.crt"; }
  std::string key_file() const { return o_.dir + "/tls.key"; }
  std::string ca_file() const { return o_.dir + "/ca.crt"; }
  const std::string& ca_pem() const { return ca_.cert_pem; }
  // A new serving certificate once two thirds of the current one's life are gone (call it
  // now and then; true when it renewed).
  absl::StatusOr<bool> RenewIfDue();

 private:
  explicit SelfSignedTls(SelfSignedTlsOptions o) : o_(std::move(o)) {}
  absl::Status LoadOrMakeCa();
  absl::Status WriteServing();

  const SelfSignedTlsOptions o_;
  pki::Signer ca_;
  std::mutex mu_;
  WallTime issued_{}, expires_{};
};

}  // namespace miglet::controllers
