#pragma once

#include <cstdio>
#include <string>

// For tests: which certificate a TLS server hands a new connection now, as a client sees it.
namespace miglet::testing {

// The serial (hex, as `openssl x509 -serial` and pki::CertInfo print it) of the certificate the
// TLS server on 127.0.0.1:`port` serves a new connection (openssl s_client, with SNI
// `server_name` when given); "" when none was served.
inline std::string ServedCertificateSerial(int port, const std::string& server_name = "") {
  const std::string cmd = "openssl s_client -connect 127.0.0.1:" + std::to_string(port) +
                          (server_name.empty() ? "" : " -servername " + server_name) +
                          " </dev/null 2>/dev/null | openssl x509 -noout -serial 2>/dev/null";
  std::string out;
  if (FILE* p = popen(cmd.c_str(), "r")) {
    char buf[256];
    while (fgets(buf, sizeof buf, p)) out += buf;
    pclose(p);
  }
  const auto eq = out.find('=');
  if (eq == std::string::npos) return "";
  out = out.substr(eq + 1);
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return out;
}

}  // namespace miglet::testing
