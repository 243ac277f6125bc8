#include "miglet/common/http.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace miglet {
namespace {

TEST(HttpTest, ServerOnPortZeroAnswersClient) {
  auto server = MakeHttpServer("127.0.0.1", 0, [](const HttpRequest& r, HttpReply reply) {
    std::string q = r.query.count("x") ? r.query.at("x") : "";
    reply(HttpResponse{201, "{\"m\":\"" + r.method + "\",\"p\":\"" + r.path + "\",\"x\":\"" + q +
                                "\",\"b\":" + r.body + "}"});
  });
  auto port = server->Start();
  ASSERT_TRUE(port.ok()) << port.status();
  ASSERT_GT(*port, 0);
  auto client = MakeHttpTransport({.base_url = "http://127.0.0.1:" + std::to_string(*port),
                                   .timeout = std::chrono::seconds(5)});
  ASSERT_TRUE(client.ok());
  auto resp = (*client)->Do("POST", "/api/v1/vms/a%20b/events?x=1", "{\"k\":2}");
  ASSERT_TRUE(resp.ok()) << resp.status();
  EXPECT_EQ(resp->status, 201);
  EXPECT_EQ(resp->body, R"({"m":"POST","p":"/api/v1/vms/a b/events","x":"1","b":{"k":2}})");
  server->Stop();
}

// Found by fuzz/http_api_fuzz.cc: a message quoting a client's bytes made the body invalid
// UTF-8, so not JSON. Bad bytes become U+FFFD; well-formed text, ASCII or not, is kept.
TEST(HttpTest, JsonErrorBodyIsValidUtf8) {
  EXPECT_EQ(JsonError(400, "bad_request", "caf\xc3\xa9 \xff\xfe x\xe2\x82").body,
            "{\"error\":{\"code\":\"bad_request\",\"message\":\"caf\xc3\xa9 "
            "\xef\xbf\xbd\xef\xbf\xbd x\xef\xbf\xbd\xef\xbf\xbd\"}}");
  EXPECT_EQ(JsonError(400, "x", "\xed\xa0\x80").body,  // a UTF-16 surrogate
            "{\"error\":{\"code\":\"x\",\"message\":\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"}}");
}

TEST(HttpTest, ClientReportsUnreachableServer) {
  // Bind then stop a server to learn a port that is now closed.
  auto server = MakeHttpServer("127.0.0.1", 0, [](const HttpRequest&, HttpReply r) { r({}); });
  auto port = server->Start();
  ASSERT_TRUE(port.ok());
  server->Stop();
  auto client = MakeHttpTransport({.base_url = "http://127.0.0.1:" + std::to_string(*port),
                                   .timeout = std::chrono::seconds(2)});
  ASSERT_TRUE(client.ok());
  auto resp = (*client)->Do("GET", "/health", "");
  EXPECT_FALSE(resp.ok());
  EXPECT_EQ(resp.status().code(), absl::StatusCode::kUnavailable);
}

TEST(HttpTest, HandlerExceptionBecomes500) {
  auto server = MakeHttpServer(
      "127.0.0.1", 0, [](const HttpRequest&, HttpReply) { throw std::runtime_error("boom"); });
  auto port = server->Start();
  ASSERT_TRUE(port.ok());
  auto client = MakeHttpTransport({.base_url = "http://127.0.0.1:" + std::to_string(*port),
                                   .timeout = std::chrono::seconds(5)});
  auto resp = (*client)->Do("GET", "/", "");
  ASSERT_TRUE(resp.ok());
  EXPECT_EQ(resp->status, 500);
  EXPECT_THAT(resp->body, ::testing::HasSubstr("boom"));
}

}  // namespace
}  // namespace miglet
