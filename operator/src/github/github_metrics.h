#pragma once

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <string>

namespace miglet::github {

// mig_controller_github_*: one set for every GitHub client of the process.
class GitHubMetrics {
 public:
  explicit GitHubMetrics(prometheus::Registry& registry);

  // `code` is the HTTP status, or "error" when no answer came.
  void Request(const std::string& call, const std::string& code, double seconds);
  // The x-ratelimit-remaining GitHub sent last (for the most recently used credential).
  void RateLimitRemaining(double n) { rate_limit_remaining_.Set(n); }
  void InstallationTokenRenewed() { token_renewals_.Increment(); }
  void RateLimited(const std::string& kind) { rate_limited_.Add({{"kind", kind}}).Increment(); }

 private:
  prometheus::Family<prometheus::Counter>& requests_;
  prometheus::Family<prometheus::Histogram>& duration_;
  prometheus::Gauge& rate_limit_remaining_;
  prometheus::Counter& token_renewals_;
  prometheus::Family<prometheus::Counter>& rate_limited_;
};

}  // namespace miglet::github
