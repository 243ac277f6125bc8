#include "github_metrics.h"

#include "miglet/operator/github/github_client.h"

namespace miglet::github {

GitHubMetrics::GitHubMetrics(prometheus::Registry& registry)
    : requests_(prometheus::BuildCounter()
                    .Name("mig_controller_github_requests_total")
                    .Help("GitHub API requests by call and HTTP status (\"error\": no answer)")
                    .Register(registry)),
      duration_(prometheus::BuildHistogram()
                    .Name("mig_controller_github_request_duration_seconds")
                    .Help("Time from sending a GitHub API request to its whole answer")
                    .Register(registry)),
      rate_limit_remaining_(prometheus::BuildGauge()
                                .Name("mig_controller_github_rate_limit_remaining")
                                .Help("x-ratelimit-remaining of the last GitHub answer")
                                .Register(registry)
                                .Add({})),
      token_renewals_(prometheus::BuildCounter()
                          .Name("mig_controller_github_installation_token_renewals_total")
                          .Help("GitHub App installation tokens obtained")
                          .Register(registry)
                          .Add({})),
      rate_limited_(prometheus::BuildCounter()
                        .Name("mig_controller_github_rate_limited_total")
                        .Help("GitHub answers that asked to wait: primary or secondary limit")
                        .Register(registry)) {
  // Both kinds start at 0, so rate() shows 0 rather than nothing before the first one.
  for (const char* kind : {"primary", "secondary"}) rate_limited_.Add({{"kind", kind}});
}

void GitHubMetrics::Request(const std::string& call, const std::string& code, double seconds) {
  requests_.Add({{"call", call}, {"code", code}}).Increment();
  duration_
      .Add({{"call", call}}, prometheus::Histogram::BucketBoundaries{0.01, 0.025, 0.05, 0.1, 0.25,
                                                                     0.5, 1, 2.5, 5, 10, 30})
      .Observe(seconds);
}

std::shared_ptr<GitHubMetrics> MakeGitHubMetrics(prometheus::Registry& registry) {
  return std::make_shared<GitHubMetrics>(registry);
}

}  // namespace miglet::github
