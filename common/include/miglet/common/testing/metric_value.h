#pragma once

#include <prometheus/registry.h>

#include <map>
#include <string>

namespace miglet::testing {

// The value of one series in a registry: a counter's or gauge's value, a histogram's sample
// count; 0 when the series does not exist (yet).
inline double MetricValue(prometheus::Registry& reg, const std::string& name,
                          const std::map<std::string, std::string>& labels = {}) {
  for (const auto& fam : reg.Collect()) {
    if (fam.name != name) continue;
    for (const auto& m : fam.metric) {
      std::map<std::string, std::string> got;
      for (const auto& l : m.label) got[l.name] = l.value;
      if (got != labels) continue;
      switch (fam.type) {
        case prometheus::MetricType::Counter:
          return m.counter.value;
        case prometheus::MetricType::Gauge:
          return m.gauge.value;
        case prometheus::MetricType::Histogram:
          return static_cast<double>(m.histogram.sample_count);
        default:
          return -1;
      }
    }
  }
  return 0;
}

}  // namespace miglet::testing
