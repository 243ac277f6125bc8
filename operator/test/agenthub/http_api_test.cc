#include "http_api.h"

#include <gtest/gtest.h>
#include <prometheus/registry.h>

#include "miglet/common/fake_clock.h"

namespace miglet {
namespace {

class HttpApiTest : public ::testing::Test {
 protected:
  HttpResponse Call(const std::string& method, const std::string& path,
                    const std::string& body = "") {
    HttpResponse out{0, "", ""};
    api_.Handle(HttpRequest{method, path, {}, body}, [&](HttpResponse r) { out = std::move(r); });
    return out;
  }
  std::shared_ptr<FakeClock> clock_ = std::make_shared<FakeClock>();
  prometheus::Registry prom_;
  HubMetrics metrics_{prom_};
  AgentRegistry registry_{HubOptions{}, clock_, &metrics_};
  AgentHttpApi api_{&registry_, clock_};
};

// Found by fuzz/http_api_fuzz.cc: any method but GET on /api/v1/vms read the vm_id from past
// the end of the path's parts (ASan: heap-buffer-overflow).
TEST_F(HttpApiTest, OtherMethodsOnTheVmListAreRefused) {
  EXPECT_EQ(Call("POST", "/api/v1/vms", "{}").status, 405);
  EXPECT_EQ(Call("DELETE", "/api/v1/vms/").status, 405);
  EXPECT_EQ(Call("GET", "/api/v1/vms").status, 200);
}

// Found while writing that fuzz target: numbers beyond int64 in an event's metadata or
// timestamp were cast to int64 (UBSan: float-cast-overflow).
TEST_F(HttpApiTest, EventNumbersBeyondInt64) {
  std::vector<commands::EventNotification> events;
  registry_.SetEventHook([&](const commands::EventNotification& e) { events.push_back(e); });
  EXPECT_EQ(Call("POST", "/api/v1/vms/vm-1/events",
                 R"({"type":"x","metadata":{"big":1e300,"n":-12,"f":0.5}})")
                .status,
            200);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].data().at("n"), "-12");
  EXPECT_EQ(events[0].data().at("f"), "0.500000");
  EXPECT_EQ(events[0].data().at("big").substr(0, 2), "10");  // printed as a double
  EXPECT_EQ(Call("POST", "/api/v1/vms/vm-1/events", R"({"type":"x","timestamp":1e300})").status,
            400);
  EXPECT_EQ(
      Call("POST", "/api/v1/vms/vm-1/events", R"({"type":"x","timestamp":1800000000})").status,
      200);
}

}  // namespace
}  // namespace miglet
