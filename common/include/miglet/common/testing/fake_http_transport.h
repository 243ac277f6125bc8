#pragma once

#include <functional>
#include <mutex>
#include <sstream>
#include <vector>

#include "miglet/common/http_transport.h"

namespace miglet::testing {

// An HttpTransport that answers from a function and remembers every request, for unit tests of
// the clients built on the transport. Thread-safe; the handler runs outside the lock.
class FakeHttpTransport final : public HttpTransport {
 public:
  using Handler = std::function<absl::StatusOr<ClientResponse>(const ClientRequest&)>;

  explicit FakeHttpTransport(Handler handler, std::string base_url = "https://fake.test")
      : handler_(std::move(handler)), base_url_(std::move(base_url)) {}

  absl::StatusOr<ClientResponse> Send(const ClientRequest& req) override {
    {
      std::lock_guard l(mu_);
      requests_.push_back(req);
    }
    return handler_(req);
  }

  absl::StatusOr<std::unique_ptr<HttpBodyStream>> Open(const ClientRequest& req) override {
    auto r = Send(req);
    if (!r.ok()) return r.status();
    return std::unique_ptr<HttpBodyStream>(new Body(std::move(*r)));
  }

  const std::string& base_url() const override { return base_url_; }

  std::vector<ClientRequest> requests() const {
    std::lock_guard l(mu_);
    return requests_;
  }
  size_t count() const {
    std::lock_guard l(mu_);
    return requests_.size();
  }

 private:
  class Body final : public HttpBodyStream {
   public:
    explicit Body(ClientResponse r) : r_(std::move(r)), in_(r_.body) {}
    int status() const override { return r_.status; }
    const HttpHeaders& headers() const override { return r_.headers; }
    absl::StatusOr<std::optional<std::string>> ReadLine() override {
      std::string line;
      if (!std::getline(in_, line)) return std::optional<std::string>();
      return std::optional<std::string>(line);
    }
    absl::StatusOr<std::string> ReadAll() override {
      std::stringstream rest;
      rest << in_.rdbuf();
      return rest.str();
    }
    void Cancel() override {}

   private:
    ClientResponse r_;
    std::istringstream in_;
  };

  Handler handler_;
  std::string base_url_;
  mutable std::mutex mu_;
  std::vector<ClientRequest> requests_;
};

inline ClientResponse Respond(int status, std::string body = "", HttpHeaders headers = {}) {
  ClientResponse r;
  r.status = status;
  r.body = std::move(body);
  r.headers = std::move(headers);
  return r;
}

}  // namespace miglet::testing
