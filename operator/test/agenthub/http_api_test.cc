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

}  // namespace
}  // namespace miglet
