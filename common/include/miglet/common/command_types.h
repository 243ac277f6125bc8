#pragma once

#include <string>

namespace miglet {

// The contract's command types as a metric label: one of the five, or "other", so that a
// misbehaving peer cannot grow a label's cardinality.
inline std::string CommandTypeLabel(const std::string& type) {
  for (const char* known :
       {"register_runner", "drain", "shutdown", "update_config", "set_log_level"}) {
    if (type == known) return type;
  }
  return "other";
}

}  // namespace miglet
