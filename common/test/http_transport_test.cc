#include "miglet/common/http_transport.h"

#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <thread>

#include "miglet/common/fake_clock.h"
#include "miglet/common/http.h"
#include "miglet/common/testing/fake_http_transport.h"

namespace miglet {
namespace {

using ::testing::ContainsRegex;
using ::testing::ElementsAre;
using testing::FakeHttpTransport;
using ::testing::HasSubstr;
using testing::Respond;

TEST(HttpHeadersTest, NamesAreCaseInsensitiveAndOrderIsKept) {
  HttpHeaders h{{"Content-Type", "application/json"}};
  h.Add("X-RateLimit-Remaining", "42");
  h.Add("link", "<a>; rel=\"next\"");
  EXPECT_EQ(h.Get("content-type"), "application/json");
  EXPECT_EQ(h.Get("x-ratelimit-remaining"), "42");
  EXPECT_EQ(h.Get("LINK"), "<a>; rel=\"next\"");
  EXPECT_FALSE(h.Get("retry-after").has_value());
  h.Set("x-ratelimit-remaining", "41");
  EXPECT_EQ(h.Get("X-RateLimit-Remaining"), "41");
  EXPECT_EQ(h.entries().size(), 3u);
  h.Remove("CONTENT-TYPE");
  EXPECT_FALSE(h.Has("Content-Type"));
}

TEST(ParseUrlTest, PartsAndOrigin) {
  auto u = ParseUrl("https://GHE.example.com/api/v3?x=1");
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_EQ(u->scheme, "https");
  EXPECT_EQ(u->host, "ghe.example.com");
  EXPECT_EQ(u->port, 443);
  EXPECT_EQ(u->path, "/api/v3");
  EXPECT_EQ(u->query, "x=1");
  EXPECT_EQ(u->Origin(), "https://ghe.example.com");

  u = ParseUrl("http://127.0.0.1:8080");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->port, 8080);
  EXPECT_EQ(u->path, "");
  EXPECT_EQ(u->Origin(), "http://127.0.0.1:8080");

  u = ParseUrl("https://[::1]:6443/x");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->host, "::1");
  EXPECT_EQ(u->Origin(), "https://[::1]:6443");

  for (const char* bad : {"github.com/acme", "ftp://x", "https://", "https://h:99999",
                          "https://user:pw@h/x", "https://[::1"}) {
    EXPECT_FALSE(ParseUrl(bad).ok()) << bad;
  }
  EXPECT_THAT(std::string(ParseUrl("https://h:abc").status().message()),
              HasSubstr("bad port \"abc\""));
}

TEST(TransportErrorTest, CarriesItsFailure) {
  auto s = TransportError(TransportFailure::kSend, "Failed to write request headers");
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(GetTransportFailure(s), TransportFailure::kSend);
  EXPECT_EQ(TransportError(TransportFailure::kTimeout, "t").code(),
            absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(TransportError(TransportFailure::kCancelled, "c").code(), absl::StatusCode::kCancelled);
  EXPECT_FALSE(GetTransportFailure(absl::UnavailableError("not ours")).has_value());
  EXPECT_TRUE(NeverReachedServer(TransportFailure::kConnect));
  EXPECT_TRUE(NeverReachedServer(TransportFailure::kSend));
  EXPECT_FALSE(NeverReachedServer(TransportFailure::kReceive));
  EXPECT_FALSE(NeverReachedServer(TransportFailure::kTimeout));
}

TEST(ShouldRetryTest, OnTypedFailures) {
  RetryPolicy p;
  p.max_attempts = 3;
  p.idempotent_methods = {"GET"};
  p.retry_statuses = {503};
  auto fail = [](TransportFailure f) {
    return absl::StatusOr<ClientResponse>(TransportError(f, "x"));
  };
  // Never reached the server: any method.
  EXPECT_TRUE(ShouldRetry(p, "POST", 1, fail(TransportFailure::kConnect)));
  EXPECT_TRUE(ShouldRetry(p, "POST", 1, fail(TransportFailure::kSend)));
  // May have reached it: only idempotent methods.
  EXPECT_FALSE(ShouldRetry(p, "POST", 1, fail(TransportFailure::kReceive)));
  EXPECT_FALSE(ShouldRetry(p, "POST", 1, fail(TransportFailure::kTimeout)));
  EXPECT_TRUE(ShouldRetry(p, "GET", 1, fail(TransportFailure::kReceive)));
  EXPECT_TRUE(ShouldRetry(p, "GET", 1, fail(TransportFailure::kTimeout)));
  // Never: TLS, cancellation, errors that are not the transport's, the last attempt.
  EXPECT_FALSE(ShouldRetry(p, "GET", 1, fail(TransportFailure::kTls)));
  EXPECT_FALSE(ShouldRetry(p, "GET", 1, fail(TransportFailure::kCancelled)));
  EXPECT_FALSE(ShouldRetry(p, "GET", 1, absl::InvalidArgumentError("bad target")));
  EXPECT_FALSE(ShouldRetry(p, "GET", 3, fail(TransportFailure::kConnect)));
  // Answers: only the listed statuses.
  EXPECT_TRUE(ShouldRetry(p, "GET", 1, Respond(503)));
  EXPECT_FALSE(ShouldRetry(p, "POST", 1, Respond(503)));  // it may have acted before the 503
  EXPECT_FALSE(ShouldRetry(p, "GET", 1, Respond(500)));
  EXPECT_FALSE(ShouldRetry(p, "GET", 1, Respond(200)));
  p.retry_unsent = false;
  EXPECT_FALSE(ShouldRetry(p, "POST", 1, fail(TransportFailure::kConnect)));
}

TEST(RetryingTransportTest, RetriesWithBackoffOnTheClock) {
  auto clock = std::make_shared<FakeClock>();
  clock->set_auto_advance(true);
  int calls = 0;
  auto fake = std::make_unique<FakeHttpTransport>([&](const ClientRequest&) {
    ++calls;
    if (calls == 1)
      return absl::StatusOr<ClientResponse>(TransportError(TransportFailure::kSend, "w"));
    if (calls == 2) return absl::StatusOr<ClientResponse>(Respond(502));
    return absl::StatusOr<ClientResponse>(Respond(201, "{}"));
  });
  RetryPolicy p;
  p.max_attempts = 5;
  p.retry_statuses = {502};
  p.backoff = BackoffPolicy{.initial = std::chrono::milliseconds(100),
                            .max = std::chrono::seconds(1),
                            .multiplier = 2,
                            .jitter = 0};
  auto t = MakeRetryingTransport(std::move(fake), p, clock);
  auto r = t->Do("GET", "/x");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 201);
  EXPECT_EQ(calls, 3);
  EXPECT_THAT(clock->sleeps(),
              ElementsAre(std::chrono::milliseconds(100), std::chrono::milliseconds(200)));
}

TEST(RetryingTransportTest, GivesUpWithTheLastResult) {
  auto clock = std::make_shared<FakeClock>();
  clock->set_auto_advance(true);
  auto fake = std::make_unique<FakeHttpTransport>([](const ClientRequest&) {
    return absl::StatusOr<ClientResponse>(TransportError(TransportFailure::kReceive, "lost"));
  });
  auto* raw = fake.get();
  RetryPolicy p;
  p.max_attempts = 4;
  auto t = MakeRetryingTransport(std::move(fake), p, clock);
  // A POST whose answer was lost may have acted: sent once.
  auto r = t->Do("POST", "/x", "{}");
  EXPECT_EQ(GetTransportFailure(r.status()), TransportFailure::kReceive);
  EXPECT_EQ(raw->count(), 1u);
  // A GET is repeated up to max_attempts.
  r = t->Do("GET", "/x");
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(raw->count(), 5u);
}

// --- The cpprest transport on real sockets ---

// A TCP listener on 127.0.0.1:<port 0> whose accepted connections get `on_accept`.
class RawServer {
 public:
  explicit RawServer(std::function<void(int fd)> on_accept) : on_accept_(std::move(on_accept)) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    listen(fd_, 8);
    socklen_t len = sizeof a;
    getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] {
      while (true) {
        int c = accept(fd_, nullptr, nullptr);
        if (c < 0 || stop_) {
          if (c >= 0) close(c);
          return;
        }
        on_accept_(c);
      }
    });
  }
  ~RawServer() {
    stop_ = true;
    shutdown(fd_, SHUT_RDWR);
    close(fd_);
    thread_.join();
  }
  int port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

 private:
  std::function<void(int)> on_accept_;
  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

std::string ReadRequestHead(int fd) {
  std::string in;
  char buf[4096];
  while (in.find("\r\n\r\n") == std::string::npos) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0) break;
    in.append(buf, n);
  }
  return in;
}

TEST(CpprestTransportTest, HeadersInAndOutAndBasePath) {
  std::mutex mu;
  std::string seen;
  RawServer server([&](int fd) {
    {
      std::lock_guard l(mu);
      seen = ReadRequestHead(fd);
    }
    const std::string resp =
        "HTTP/1.1 201 Created\r\nContent-Length: 2\r\nX-RateLimit-Remaining: 4999\r\n"
        "Link: <http://x/y?page=2>; rel=\"next\"\r\n\r\n{}";
    (void)!write(fd, resp.data(), resp.size());
    close(fd);
  });
  auto t = MakeHttpTransport({.base_url = server.url() + "/api/v3/"});
  ASSERT_TRUE(t.ok()) << t.status();
  ClientRequest req;
  req.method = "POST";
  req.target = "/orgs/acme/actions/runners/registration-token";
  req.headers.Add("Accept", "application/vnd.github+json");
  req.headers.Add("X-GitHub-Api-Version", "2022-11-28");
  auto r = (*t)->Send(req);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 201);
  EXPECT_EQ(r->body, "{}");
  EXPECT_EQ(r->headers.Get("x-ratelimit-remaining"), "4999");
  EXPECT_EQ(r->headers.Get("link"), "<http://x/y?page=2>; rel=\"next\"");
  std::lock_guard l(mu);
  EXPECT_THAT(seen, HasSubstr("POST /api/v3/orgs/acme/actions/runners/registration-token "));
  EXPECT_THAT(seen, ContainsRegex("\r\nAccept: ?application/vnd.github\\+json\r\n"));
  EXPECT_THAT(seen, ContainsRegex("\r\nX-GitHub-Api-Version: ?2022-11-28\r\n"));
}

TEST(CpprestTransportTest, RefusesAnotherOrigin) {
  auto t = MakeHttpTransport({.base_url = "https://api.github.com"});
  ASSERT_TRUE(t.ok());
  ClientRequest req;
  req.target = "https://evil.example.com/repositories/1/actions/runners?page=2";
  auto r = (*t)->Send(req);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("refusing"));
}

TEST(CpprestTransportTest, AbsoluteTargetOnTheSameOrigin) {
  std::mutex mu;
  std::string seen;
  RawServer server([&](int fd) {
    {
      std::lock_guard l(mu);
      seen = ReadRequestHead(fd);
    }
    const std::string resp = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
    (void)!write(fd, resp.data(), resp.size());
    close(fd);
  });
  auto t = MakeHttpTransport({.base_url = server.url() + "/api/v3"});
  ASSERT_TRUE(t.ok());
  ClientRequest req;
  req.target = server.url() + "/api/v3/orgs/acme/actions/runners?per_page=100&page=2";
  auto r = (*t)->Send(req);
  ASSERT_TRUE(r.ok()) << r.status();
  std::lock_guard l(mu);
  EXPECT_THAT(seen, HasSubstr("GET /api/v3/orgs/acme/actions/runners?per_page=100&page=2 "));
}

TEST(CpprestTransportTest, ConnectionRefusedIsConnect) {
  int port;
  {
    RawServer closed([](int fd) { close(fd); });
    port = closed.port();
  }
  auto t = MakeHttpTransport(
      {.base_url = "http://127.0.0.1:" + std::to_string(port), .timeout = std::chrono::seconds(5)});
  ASSERT_TRUE(t.ok());
  auto r = (*t)->Do("POST", "/x", "{}");
  EXPECT_EQ(GetTransportFailure(r.status()), TransportFailure::kConnect) << r.status();
}

TEST(CpprestTransportTest, ConnectionDroppedDuringTheTlsHandshakeIsConnect) {
  // A server restarting: it accepts and closes before any TLS. Nothing was sent, and no
  // certificate was judged, so this is a connection failure (retried), not a TLS one.
  RawServer server([](int fd) { close(fd); });
  auto t = MakeHttpTransport({.base_url = "https://127.0.0.1:" + std::to_string(server.port()),
                              .timeout = std::chrono::seconds(5)});
  ASSERT_TRUE(t.ok());
  auto r = (*t)->Do("GET", "/x");
  EXPECT_EQ(GetTransportFailure(r.status()), TransportFailure::kConnect) << r.status();
}

TEST(CpprestTransportTest, ClosedWithoutAnswerIsReceive) {
  RawServer server([](int fd) {
    ReadRequestHead(fd);
    close(fd);
  });
  auto t = MakeHttpTransport({.base_url = server.url(), .timeout = std::chrono::seconds(5)});
  ASSERT_TRUE(t.ok());
  auto r = (*t)->Do("GET", "/x");
  EXPECT_EQ(GetTransportFailure(r.status()), TransportFailure::kReceive) << r.status();
}

TEST(CpprestTransportTest, NoAnswerInTimeIsTimeout) {
  std::mutex mu;
  std::vector<int> held;
  RawServer server([&](int fd) {  // accepts, never answers
    std::lock_guard l(mu);
    held.push_back(fd);
  });
  auto t = MakeHttpTransport({.base_url = server.url(), .timeout = std::chrono::seconds(5)});
  ASSERT_TRUE(t.ok());
  ClientRequest req;
  req.target = "/slow";
  req.timeout = std::chrono::milliseconds(300);
  auto r = (*t)->Send(req);
  EXPECT_EQ(GetTransportFailure(r.status()), TransportFailure::kTimeout) << r.status();
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDeadlineExceeded);
  std::lock_guard l(mu);
  for (int fd : held) close(fd);
}

TEST(CpprestTransportTest, BadPemIsRefusedWhenMade) {
  TransportOptions o{.base_url = "https://127.0.0.1:1"};
  o.tls.ca_pem = "not a certificate";
  o.tls.ca_source = "/etc/miglet/ca.pem";
  auto t = MakeHttpTransport(o);
  ASSERT_FALSE(t.ok());
  EXPECT_THAT(std::string(t.status().message()), HasSubstr("/etc/miglet/ca.pem"));
}

TEST(CpprestTransportTest, StreamsLines) {
  RawServer server([](int fd) {
    ReadRequestHead(fd);
    const std::string resp =
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        "5\r\none\r\n\r\n4\r\ntwo\n\r\n0\r\n\r\n";
    (void)!write(fd, resp.data(), resp.size());
    close(fd);
  });
  auto t = MakeHttpTransport({.base_url = server.url()});
  ASSERT_TRUE(t.ok());
  ClientRequest req;
  req.target = "/watch";
  auto s = (*t)->Open(req);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ((*s)->status(), 200);
  auto l1 = (*s)->ReadLine();
  ASSERT_TRUE(l1.ok() && l1->has_value());
  EXPECT_EQ(**l1, "one");
  auto l2 = (*s)->ReadLine();
  ASSERT_TRUE(l2.ok() && l2->has_value());
  EXPECT_EQ(**l2, "two");
  auto end = (*s)->ReadLine();
  ASSERT_TRUE(end.ok());
  EXPECT_FALSE(end->has_value());
}

}  // namespace
}  // namespace miglet
