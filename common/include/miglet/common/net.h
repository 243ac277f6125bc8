#pragma once

#include <set>
#include <string>

#include "absl/status/statusor.h"

namespace miglet {

// The TCP ports this process is listening on right now. Lets a server that was asked for
// port 0 through a library that does not report the chosen port (cpprestsdk's listener) find
// it: take the set before opening, and again after.
std::set<int> ListeningTcpPorts();

// A TCP port free on `host` right now (bound to port 0 and released), for a library that
// keys its listeners by the port asked for (cpprestsdk cannot have two listeners on port 0).
absl::StatusOr<int> PickFreePort(const std::string& host);

// "host:port" -> (host, port). Port must be 0..65535.
absl::StatusOr<std::pair<std::string, int>> SplitHostPort(std::string_view hostport);

}  // namespace miglet
