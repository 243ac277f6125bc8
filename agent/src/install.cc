#include "miglet/agent/install.h"

#include <unistd.h>

#include <filesystem>
#include <system_error>

namespace miglet {

namespace fs = std::filesystem;

absl::Status InstallBundle(const std::string& bundle, const std::string& dir) {
  if (bundle.empty()) {
    return absl::FailedPreconditionError(
        "--install copies the bundle miglet runs from, and this miglet was not started from one "
        "(its bin/miglet sets MIGLET_BUNDLE_DIR; see hack/images/bundle.sh)");
  }
  if (dir.empty()) return absl::InvalidArgumentError("--install needs a target folder");
  for (const char* part : {"bin/miglet", "libexec/miglet", "lib/ld.so"}) {
    if (access((fs::path(bundle) / part).c_str(), X_OK) != 0) {
      return absl::FailedPreconditionError("MIGLET_BUNDLE_DIR " + bundle + " is not a bundle: no " +
                                           part);
    }
  }
  std::error_code ec;
  if (fs::equivalent(bundle, dir, ec)) {
    return absl::InvalidArgumentError("--install " + dir + " is the bundle itself");
  }
  fs::create_directories(dir, ec);
  if (ec) return absl::UnavailableError("cannot create " + dir + ": " + ec.message());
  fs::copy(bundle, dir,
           fs::copy_options::recursive | fs::copy_options::overwrite_existing |
               fs::copy_options::copy_symlinks,
           ec);
  if (ec) {
    return absl::UnavailableError("cannot copy " + bundle + " into " + dir + ": " + ec.message());
  }
  return absl::OkStatus();
}

}  // namespace miglet
