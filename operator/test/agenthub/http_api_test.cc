#include "http_api.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <prometheus/registry.h>

#include <fstream>
#include <sstream>

#include "miglet/common/fake_clock.h"

namespace miglet {
namespace {

using ::testing::HasSubstr;

// The requests and answers of agents in the field, byte for byte (tests/fixtures/field-agent).
std::string Fixture(const std::string& name) {
  std::ifstream in(std::string(MIGLET_FIELD_FIXTURES) + "/" + name, std::ios::binary);
  EXPECT_TRUE(in) << name;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class HttpApiTest : public ::testing::Test {
 protected:
  HttpResponse Call(const std::string& method, const std::string& path,
                    const std::string& body = "", std::map<std::string, std::string> query = {}) {
    HttpResponse out{0, "", ""};
    api_.Handle(HttpRequest{method, path, std::move(query), body},
                [&](HttpResponse r) { out = std::move(r); });
    return out;
  }
  CommandCallback Record() {
    return [this](const CommandResult& r) { results_.push_back(r); };
  }
  std::vector<CommandResult> results_;
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
  EXPECT_EQ(events[0].data().at("f"), "0.5");
  EXPECT_EQ(events[0].data().at("big"), "1e+300");  // printed as a double
  EXPECT_EQ(Call("POST", "/api/v1/vms/vm-1/events", R"({"type":"x","timestamp":1e300})").status,
            400);
  EXPECT_EQ(
      Call("POST", "/api/v1/vms/vm-1/events", R"({"type":"x","timestamp":1800000000})").status,
      200);
}

// A MIGlet agent from the field, over HTTP only, as the contract gives its JSON: each event and
// heartbeat is taken and answered in its form, and the commands it polls are done when their
// effect shows, since it never acks.
TEST_F(HttpApiTest, AFieldAgentsDialogue) {
  std::vector<commands::EventNotification> events;
  registry_.SetEventHook([&](const commands::EventNotification& e) { events.push_back(e); });
  const std::string vms = "/api/v1/vms/vm-field-1";
  auto r = Call("POST", vms + "/events", Fixture("event-vm_started.json"));
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, Fixture("answer-event.json"));
  r = Call("POST", vms + "/heartbeat", Fixture("heartbeat-ready.json"));
  EXPECT_EQ(r.status, 200) << r.body;
  auto a = registry_.GetAgent("vm-field-1");
  ASSERT_TRUE(a);
  EXPECT_TRUE(a->connected);
  EXPECT_FALSE(a->acks_commands);
  EXPECT_EQ(a->miglet_state, "ready");
  EXPECT_EQ(a->pool_id, "pool-a");
  EXPECT_EQ(a->health.memory_total_bytes(), 16384LL << 20);

  commands::Command reg;
  reg.set_id("uid-1.g1.register.1");
  reg.set_type("register_runner");
  (*reg.mutable_string_params())["registration_token"] = "AABBCCDDEEFF";
  reg.add_string_array_params("linux");
  ASSERT_TRUE(registry_.SendCommand("vm-field-1", reg, Record()).ok());
  r = Call("GET", vms + "/commands");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_THAT(r.body,
              HasSubstr(R"("commands":[{"id":"uid-1.g1.register.1","type":"register_runner",)"
                        R"("parameters":{"registration_token":"AABBCCDDEEFF",)"
                        R"("labels":["linux"]},"created_at":")"));
  EXPECT_THAT(r.body, HasSubstr(R"({"vm_id":"vm-field-1",)"));
  // Given once: it does not ack, so it could not tell a repeat from a new command.
  EXPECT_EQ(Call("GET", vms + "/commands").body, R"({"vm_id":"vm-field-1","commands":[]})");
  // A heartbeat without a runner does not finish it; runner_registered does.
  EXPECT_EQ(Call("POST", vms + "/heartbeat", Fixture("heartbeat-ready.json")).status, 200);
  EXPECT_TRUE(results_.empty());
  EXPECT_EQ(Call("POST", vms + "/events", Fixture("event-runner_registered.json")).status, 200);
  ASSERT_EQ(results_.size(), 1u);
  EXPECT_TRUE(results_[0].status.ok());
  EXPECT_TRUE(results_[0].success);
  EXPECT_THAT(results_[0].message, HasSubstr("runner_registered"));
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[1].data().at("runner_id"), "123456");

  // A job runs; the heartbeat shows it.
  EXPECT_EQ(Call("POST", vms + "/events", Fixture("event-job_started.json")).status, 200);
  EXPECT_EQ(Call("POST", vms + "/heartbeat", Fixture("heartbeat-running.json")).status, 200);
  a = registry_.GetAgent("vm-field-1");
  EXPECT_EQ(a->current_job.job_id(), "987654321");
  EXPECT_EQ(a->runner.state(), "running");

  // A drain is done by a draining heartbeat or the drained event; a set_log_level, which
  // nothing in its report shows, by the next heartbeat after it was polled.
  commands::Command drain;
  drain.set_id("d1");
  drain.set_type("drain");
  commands::Command level;
  level.set_id("l1");
  level.set_type("set_log_level");
  (*level.mutable_string_params())["level"] = "debug";
  ASSERT_TRUE(registry_.SendCommand("vm-field-1", drain, Record()).ok());
  ASSERT_TRUE(registry_.SendCommand("vm-field-1", level, Record()).ok());
  EXPECT_EQ(Call("POST", vms + "/heartbeat", Fixture("heartbeat-running.json")).status, 200);
  EXPECT_EQ(results_.size(), 1u) << "done before it was polled";
  EXPECT_EQ(Call("GET", vms + "/commands").status, 200);
  EXPECT_EQ(Call("POST", vms + "/events", Fixture("event-job_completed.json")).status, 200);
  EXPECT_EQ(Call("POST", vms + "/events",
                 R"({"type":"drained","timestamp":"2026-11-27T12:06:00Z","vm_id":"vm-field-1"})")
                .status,
            200);
  ASSERT_EQ(results_.size(), 2u);
  EXPECT_EQ(results_[1].command_id, "d1");
  EXPECT_TRUE(results_[1].success);
  EXPECT_EQ(Call("POST", vms + "/heartbeat", Fixture("heartbeat-ready.json")).status, 200);
  ASSERT_EQ(results_.size(), 3u);
  EXPECT_EQ(results_[2].command_id, "l1");
  EXPECT_TRUE(results_[2].success);
  EXPECT_EQ(registry_.GetAgent("vm-field-1")->pending_commands, 0u);
}

// An error event fails the registration it answers; miglet's own agent (?ack=true) acks.
TEST_F(HttpApiTest, AnErrorEventFailsAFieldAgentsRegistrationAndOursAcks) {
  commands::Command reg;
  reg.set_id("r1");
  reg.set_type("register_runner");
  ASSERT_TRUE(registry_.SendCommand("vm-2", reg, Record()).ok());
  EXPECT_EQ(Call("GET", "/api/v1/vms/vm-2/commands").status, 200);
  EXPECT_EQ(Call("POST", "/api/v1/vms/vm-2/events",
                 R"({"type":"error","timestamp":"2026-11-27T12:00:00Z",)"
                 R"("metadata":{"message":"config.sh failed: 401"}})")
                .status,
            200);
  ASSERT_EQ(results_.size(), 1u);
  EXPECT_FALSE(results_[0].success);
  EXPECT_THAT(results_[0].message, HasSubstr("config.sh failed: 401"));

  // Ours: polled with ?ack=true, the command waits for the ack whatever it reports.
  commands::Command drain;
  drain.set_id("d2");
  drain.set_type("drain");
  ASSERT_TRUE(registry_.SendCommand("vm-3", drain, Record()).ok());
  EXPECT_EQ(Call("GET", "/api/v1/vms/vm-3/commands", "", {{"ack", "true"}}).status, 200);
  EXPECT_TRUE(registry_.GetAgent("vm-3")->acks_commands);
  EXPECT_EQ(
      Call("POST", "/api/v1/vms/vm-3/events", R"({"type":"drained"})", {{"ack", "true"}}).status,
      200);
  EXPECT_EQ(results_.size(), 1u);
  EXPECT_EQ(Call("POST", "/api/v1/vms/vm-3/commands/d2/ack", R"({"success":true})").status, 200);
  ASSERT_EQ(results_.size(), 2u);
  EXPECT_EQ(results_[1].command_id, "d2");
}

class HttpApiRegistrationTest : public HttpApiTest {
 protected:
  HttpApiRegistrationTest() {
    rapi_ = std::make_unique<AgentHttpApi>(
        &registry_, clock_, nullptr,
        [this](const std::string& vm_id,
               bool only_if_wanted) -> absl::StatusOr<std::optional<RunnerRegistration>> {
          asked_.emplace_back(vm_id, only_if_wanted);
          if (vm_id == "vm-none") return absl::NotFoundError("no RunnerVM is named vm-none");
          if (vm_id == "vm-gh") return absl::UnavailableError("GitHub answered 503");
          if (only_if_wanted && !want_) return std::nullopt;
          return RunnerRegistration{
              .token = "AABBCCDDEEFF",
              .expires_at = std::chrono::system_clock::from_time_t(1795780800 + 3600),
              .url = "https://github.com/acme",
              .group = "default",
              .labels = {"self-hosted", "linux"}};
        });
  }
  HttpResponse CallR(const std::string& method, const std::string& path,
                     const std::string& body = "") {
    HttpResponse out{0, "", ""};
    rapi_->Handle(HttpRequest{method, path, {}, body}, [&](HttpResponse r) { out = std::move(r); });
    return out;
  }
  std::unique_ptr<AgentHttpApi> rapi_;
  std::vector<std::pair<std::string, bool>> asked_;
  bool want_ = true;
};

TEST_F(HttpApiRegistrationTest, RegistrationTokenForAVm) {
  auto r = CallR("POST", "/api/v1/vms/vm-field-1/registration-token",
                 Fixture("registration-token-request.json"));
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, Fixture("answer-registration-token.json"));
  ASSERT_EQ(asked_.size(), 1u);
  EXPECT_FALSE(asked_[0].second);
  r = CallR("POST", "/api/v1/vms/vm-none/registration-token", "{}");
  EXPECT_EQ(r.status, 404);
  EXPECT_THAT(r.body, HasSubstr("no RunnerVM is named vm-none"));
  r = CallR("POST", "/api/v1/vms/vm-gh/registration-token", "");
  EXPECT_EQ(r.status, 502);
  r = CallR("POST", "/api/v1/vms/vm-field-1/registration-token", R"({"labels":"linux"})");
  EXPECT_EQ(r.status, 400);
  EXPECT_THAT(r.body, HasSubstr("labels must be an array of strings"));
  EXPECT_EQ(CallR("GET", "/api/v1/vms/vm-field-1/registration-token").status, 405);
}

TEST_F(HttpApiRegistrationTest, VmStartedIsAnsweredWithARegistrationWhenOneIsWanted) {
  auto r = CallR("POST", "/api/v1/vms/vm-field-1/events", Fixture("event-vm_started.json"));
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, Fixture("answer-vm_started-register.json"));
  ASSERT_EQ(asked_.size(), 1u);
  EXPECT_TRUE(asked_[0].second);
  want_ = false;
  r = CallR("POST", "/api/v1/vms/vm-field-1/events", Fixture("event-vm_started.json"));
  EXPECT_EQ(r.body, Fixture("answer-event.json"));
  // Other events never ask.
  CallR("POST", "/api/v1/vms/vm-field-1/events", Fixture("event-job_started.json"));
  EXPECT_EQ(asked_.size(), 2u);
}

TEST(HttpApiNoOperatorTest, RegistrationTokenWithoutAnOperatorIs503) {
  auto clock = std::make_shared<FakeClock>();
  AgentRegistry registry(HubOptions{}, clock, nullptr);
  AgentHttpApi api(&registry, clock);
  HttpResponse out{0, "", ""};
  api.Handle(HttpRequest{"POST", "/api/v1/vms/vm-1/registration-token", {}, "{}"},
             [&](HttpResponse r) { out = std::move(r); });
  EXPECT_EQ(out.status, 503);
}

}  // namespace
}  // namespace miglet
