#include "hub_metrics.h"

#include "miglet/common/command_types.h"

namespace miglet {

HubMetrics::HubMetrics(prometheus::Registry& registry)
    : agents_connected_(prometheus::BuildGauge()
                            .Name("mig_controller_agents_connected")
                            .Help("Agents with an open command stream (or an active HTTP poller)")
                            .Register(registry)
                            .Add({})),
      commands_sent_(prometheus::BuildCounter()
                         .Name("mig_controller_commands_sent_total")
                         .Help("Commands written to agents, re-sends included")
                         .Register(registry)),
      command_acks_(prometheus::BuildCounter()
                        .Name("mig_controller_command_acks_total")
                        .Help("Command outcomes: success, failure (agent said no), timeout, "
                              "duplicate (an ack for a command already done)")
                        .Register(registry)),
      ack_latency_(
          prometheus::BuildHistogram()
              .Name("mig_controller_command_ack_latency_seconds")
              .Help("Time from a command's first delivery to its ack")
              .Register(registry)
              .Add({}, prometheus::Histogram::BucketBoundaries{0.0005, 0.001, 0.0025, 0.005, 0.01,
                                                               0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5,
                                                               5, 10, 30, 60, 120, 300})),
      heartbeats_(prometheus::BuildCounter()
                      .Name("mig_controller_heartbeats_received_total")
                      .Help("Heartbeats received from agents over gRPC or HTTP")
                      .Register(registry)
                      .Add({})),
      stream_errors_(prometheus::BuildCounter()
                         .Name("mig_controller_stream_errors_total")
                         .Help("Agent streams closed by an error, by reason")
                         .Register(registry)),
      agents_known_(prometheus::BuildGauge()
                        .Name("mig_controller_agents_known")
                        .Help("Agents the hub holds in memory, with or without a stream")
                        .Register(registry)
                        .Add({})),
      refused_(prometheus::BuildCounter()
                   .Name("mig_controller_agent_requests_refused_total")
                   .Help("Agent connects and HTTP requests the hub refused, by reason")
                   .Register(registry)) {
  // Every reason starts at 0, so rate() and the dashboard's panels show 0 rather than nothing
  // before the first one happens.
  for (const char* reason : {"handshake", "handshake_timeout", "protocol", "rate_limited",
                             "replaced", "slow_consumer", "transport"}) {
    stream_errors_.Add({{"reason", reason}});
  }
  for (const char* reason : {"too_many_streams", "too_many_agents_without_stream",
                             "unauthenticated", "permission_denied", "auth_unavailable"}) {
    refused_.Add({{"reason", reason}});
  }
}

void HubMetrics::CommandSent(const std::string& type) {
  commands_sent_.Add({{"type", CommandTypeLabel(type)}}).Increment();
}

void HubMetrics::CommandAck(const std::string& type, const std::string& result,
                            double latency_seconds) {
  command_acks_.Add({{"type", CommandTypeLabel(type)}, {"result", result}}).Increment();
  if (latency_seconds >= 0) ack_latency_.Observe(latency_seconds);
}

void HubMetrics::Refused(const std::string& reason) {
  refused_.Add({{"reason", reason}}).Increment();
}

void HubMetrics::StreamError(const std::string& reason) {
  stream_errors_.Add({{"reason", reason}}).Increment();
}

}  // namespace miglet
