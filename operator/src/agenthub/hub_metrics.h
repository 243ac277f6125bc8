#pragma once

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <string>

namespace miglet {

// The agent hub's Prometheus metrics, registered on a registry the caller owns.
class HubMetrics {
 public:
  explicit HubMetrics(prometheus::Registry& registry);

  void SetAgentsConnected(double n) { agents_connected_.Set(n); }
  void CommandSent(const std::string& type);
  void CommandAck(const std::string& type, const std::string& result, double latency_seconds);
  void HeartbeatReceived() { heartbeats_.Increment(); }
  void StreamError(const std::string& reason);
  void SetAgentsKnown(double n) { agents_known_.Set(n); }
  // A connect, heartbeat, event or poll the hub would not take, by reason.
  void Refused(const std::string& reason);

 private:
  prometheus::Gauge& agents_connected_;
  prometheus::Family<prometheus::Counter>& commands_sent_;
  prometheus::Family<prometheus::Counter>& command_acks_;
  prometheus::Histogram& ack_latency_;
  prometheus::Counter& heartbeats_;
  prometheus::Family<prometheus::Counter>& stream_errors_;
  prometheus::Gauge& agents_known_;
  prometheus::Family<prometheus::Counter>& refused_;
};

}  // namespace miglet
