#pragma once

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <string>

namespace miglet {

// The agent's command-channel metrics. A null registry gives metrics that count into a
// private registry nobody scrapes, so callers need no null checks.
class ChannelMetrics {
  // Declared first: initialized before the metrics below register on it.
  std::shared_ptr<prometheus::Registry> own_;
  prometheus::Registry& reg_;

 public:
  explicit ChannelMetrics(prometheus::Registry* registry);

  prometheus::Gauge& connected;
  prometheus::Counter& reconnects;
  prometheus::Gauge& backoff_seconds;
  prometheus::Counter& heartbeats_sent;
  prometheus::Counter& heartbeat_failures;
  prometheus::Gauge& last_heartbeat;
  prometheus::Gauge& outbound_queued;
  prometheus::Counter& outbound_dropped;
  prometheus::Gauge& http_fallback;
  prometheus::Counter& commands_unreadable;
  void CommandReceived(const std::string& type);

 private:
  prometheus::Family<prometheus::Counter>* commands_received_;
};

}  // namespace miglet
