#include "miglet/common/net.h"

#include <dirent.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>

#include "absl/strings/numbers.h"

namespace miglet {

std::set<int> ListeningTcpPorts() {
  std::set<int> ports;
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return ports;
  while (dirent* e = readdir(dir)) {
    int fd;
    if (!absl::SimpleAtoi(e->d_name, &fd) || fd == dirfd(dir)) continue;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode)) continue;
    int listening = 0;
    socklen_t len = sizeof(listening);
    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) != 0 || !listening) continue;
    sockaddr_storage addr{};
    socklen_t alen = sizeof(addr);
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &alen) != 0) continue;
    if (addr.ss_family == AF_INET) {
      ports.insert(ntohs(reinterpret_cast<sockaddr_in*>(&addr)->sin_port));
    } else if (addr.ss_family == AF_INET6) {
      ports.insert(ntohs(reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port));
    }
  }
  closedir(dir);
  return ports;
}

absl::StatusOr<std::pair<std::string, int>> SplitHostPort(std::string_view hostport) {
  const auto colon = hostport.rfind(':');
  if (colon == std::string_view::npos) {
    return absl::InvalidArgumentError("\"" + std::string(hostport) + "\" is not host:port");
  }
  std::string host(hostport.substr(0, colon));
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  int port;
  if (!absl::SimpleAtoi(std::string(hostport.substr(colon + 1)), &port) || port < 0 ||
      port > 65535) {
    return absl::InvalidArgumentError("\"" + std::string(hostport) + "\" has no valid port");
  }
  return std::make_pair(host, port);
}

}  // namespace miglet
