#include "miglet/common/duration.h"

#include <cmath>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/time/time.h"

namespace miglet {

namespace {
// Longer is refused: it would not fit a Duration (292 years of nanoseconds), and a time point
// plus it would overflow (the wall clock is already 56 years in).
constexpr auto kMaxDuration = std::chrono::hours(24 * 365 * 100);

absl::Status TooLong(const std::string& t) {
  return absl::InvalidArgumentError("duration \"" + t + "\" is longer than 100 years");
}
}  // namespace

absl::StatusOr<Duration> ParseDuration(std::string_view s) {
  std::string t(s);
  absl::StripAsciiWhitespace(&t);
  if (t.empty()) return absl::InvalidArgumentError("empty duration");
  double secs;
  if (absl::SimpleAtod(t, &secs)) {
    if (!std::isfinite(secs)) return absl::InvalidArgumentError("invalid duration \"" + t + "\"");
    if (secs < 0) return absl::InvalidArgumentError("negative duration \"" + t + "\"");
    if (secs > std::chrono::duration<double>(kMaxDuration).count()) return TooLong(t);
    return std::chrono::duration_cast<Duration>(std::chrono::duration<double>(secs));
  }
  absl::Duration d;
  if (!absl::ParseDuration(t, &d) || d == absl::InfiniteDuration()) {
    return absl::InvalidArgumentError("invalid duration \"" + t +
                                      "\" (use a number of seconds or e.g. 500ms, 15s, 1m30s)");
  }
  if (d < absl::ZeroDuration())
    return absl::InvalidArgumentError("negative duration \"" + t + "\"");
  if (d > absl::FromChrono(kMaxDuration)) return TooLong(t);
  return absl::ToChronoNanoseconds(d);
}

std::string FormatDuration(Duration d) { return absl::FormatDuration(absl::FromChrono(d)); }

}  // namespace miglet
