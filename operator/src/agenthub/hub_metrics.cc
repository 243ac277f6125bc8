#include "hub_metrics.h"

namespace miglet {

namespace {
// Command types are a closed set in the contract; anything else is folded into "other" so a
// misbehaving caller cannot blow up label cardinality.
std::string TypeLabel(const std::string& type) {
  static const char* kKnown[] = {"register_runner", "drain", "shutdown", "update_config",
                                 "set_log_level"};
  for (const char* k : kKnown) {
    if (type == k) return type;
  }
  return "other";
}
}  // namespace

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
                         .Register(registry)) {}

void HubMetrics::CommandSent(const std::string& type) {
  commands_sent_.Add({{"type", TypeLabel(type)}}).Increment();
}

void HubMetrics::CommandAck(const std::string& type, const std::string& result,
                            double latency_seconds) {
  command_acks_.Add({{"type", TypeLabel(type)}, {"result", result}}).Increment();
  if (latency_seconds >= 0) ack_latency_.Observe(latency_seconds);
}

void HubMetrics::StreamError(const std::string& reason) {
  stream_errors_.Add({{"reason", reason}}).Increment();
}

}  // namespace miglet
