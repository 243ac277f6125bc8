#include "channel_metrics.h"

#include "miglet/common/command_types.h"

namespace miglet {

ChannelMetrics::ChannelMetrics(prometheus::Registry* registry)
    : own_(registry ? nullptr : std::make_shared<prometheus::Registry>()),
      reg_(registry ? *registry : *own_),
      connected(prometheus::BuildGauge()
                    .Name("miglet_stream_connected")
                    .Help("1 while the command stream to the controller is established")
                    .Register(reg_)
                    .Add({})),
      reconnects(prometheus::BuildCounter()
                     .Name("miglet_reconnects_total")
                     .Help("Times the agent had to reconnect its command stream")
                     .Register(reg_)
                     .Add({})),
      backoff_seconds(prometheus::BuildGauge()
                          .Name("miglet_reconnect_backoff_seconds")
                          .Help("The delay before the current or last reconnect attempt")
                          .Register(reg_)
                          .Add({})),
      heartbeats_sent(prometheus::BuildCounter()
                          .Name("miglet_heartbeats_sent_total")
                          .Help("Heartbeats delivered to the controller (gRPC or HTTP)")
                          .Register(reg_)
                          .Add({})),
      heartbeat_failures(prometheus::BuildCounter()
                             .Name("miglet_heartbeat_failures_total")
                             .Help("Heartbeats due that could not be delivered")
                             .Register(reg_)
                             .Add({})),
      last_heartbeat(prometheus::BuildGauge()
                         .Name("miglet_last_heartbeat_timestamp_seconds")
                         .Help("Unix time of the last heartbeat delivered")
                         .Register(reg_)
                         .Add({})),
      outbound_queued(prometheus::BuildGauge()
                          .Name("miglet_outbound_queued")
                          .Help("Acks and events waiting to be sent to the controller")
                          .Register(reg_)
                          .Add({})),
      outbound_dropped(prometheus::BuildCounter()
                           .Name("miglet_outbound_dropped_total")
                           .Help("Acks or events dropped because the outbound queue was full")
                           .Register(reg_)
                           .Add({})),
      http_fallback(prometheus::BuildGauge()
                        .Name("miglet_http_fallback_active")
                        .Help("1 while the agent talks to the controller over the HTTP API")
                        .Register(reg_)
                        .Add({})),
      commands_unreadable(prometheus::BuildCounter()
                              .Name("miglet_commands_unreadable_total")
                              .Help("Polled commands the agent could not read (each is logged "
                                    "and, when it has an id, acked as failed)")
                              .Register(reg_)
                              .Add({})),
      commands_received_(&prometheus::BuildCounter()
                              .Name("miglet_commands_received_total")
                              .Help("Commands received from the controller, re-sends included")
                              .Register(reg_)) {}

void ChannelMetrics::CommandReceived(const std::string& type) {
  commands_received_->Add({{"type", CommandTypeLabel(type)}}).Increment();
}

}  // namespace miglet
