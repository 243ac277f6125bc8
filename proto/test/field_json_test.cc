#include "miglet/commands/field_json.h"

#include <gmock/gmock.h>
#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

namespace miglet::fieldjson {
namespace {

using ::google::protobuf::util::MessageDifferencer;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;
using ::testing::UnorderedElementsAre;

// The requests and answers of agents in the field, byte for byte (tests/fixtures/field-agent).
std::string Fixture(const std::string& name) {
  std::ifstream in(std::string(MIGLET_FIELD_FIXTURES) + "/" + name, std::ios::binary);
  EXPECT_TRUE(in) << name;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

constexpr int64_t k12h00 = 1795780800;  // 2026-11-27T12:00:00Z

TEST(Rfc3339Test, FormatsAndParses) {
  EXPECT_EQ(Rfc3339(k12h00), "2026-11-27T12:00:00Z");
  EXPECT_EQ(Rfc3339(0), "1970-01-01T00:00:00Z");
  EXPECT_EQ(*ParseRfc3339("2026-11-27T12:00:00Z"), k12h00);
  EXPECT_EQ(*ParseRfc3339("2026-11-27t12:00:00z"), k12h00);
  EXPECT_EQ(*ParseRfc3339("2026-11-27T12:00:00.999999Z"), k12h00);
  EXPECT_EQ(*ParseRfc3339("2026-11-27T13:30:00+01:30"), k12h00);
  EXPECT_EQ(*ParseRfc3339("2026-11-27T10:00:00-02:00"), k12h00);
  for (const char* bad :
       {"", "2026-11-27", "2026-11-27T12:00:00", "2026-13-27T12:00:00Z", "2026-11-27T12:00:00+0100",
        "2026-11-27T12:00:00Zjunk", "2026-11-27T12:00:00.Z", "1795780800", "yesterday"}) {
    auto t = ParseRfc3339(bad);
    ASSERT_FALSE(t.ok()) << bad;
    EXPECT_THAT(t.status().message(), HasSubstr("not an RFC 3339 time")) << bad;
  }
}

TEST(FieldEventTest, VmStartedFromAFieldAgent) {
  auto ev = ParseEvent(Fixture("event-vm_started.json"));
  ASSERT_TRUE(ev.ok()) << ev.status();
  EXPECT_EQ(ev->type(), "vm_started");
  EXPECT_EQ(ev->vm_id(), "vm-field-1");
  EXPECT_EQ(ev->pool_id(), "pool-a");
  EXPECT_EQ(ev->org_id(), "acme");
  EXPECT_EQ(ev->timestamp(), k12h00);
  EXPECT_THAT(
      ev->data(),
      UnorderedElementsAre(Pair("boot_seconds", "42"), Pair("provider", "gcp"),
                           Pair("machine_type", "n2-standard-4"), Pair("region", "europe-west1"),
                           Pair("cpu", "4"), Pair("memory", "16384"), Pair("disk", "100"),
                           Pair("version", "1.4.2"), Pair("build_time", "2026-10-01T08:30:00Z")));
}

TEST(FieldEventTest, RunnerRegisteredAndJobsFromAFieldAgent) {
  auto reg = ParseEvent(Fixture("event-runner_registered.json"));
  ASSERT_TRUE(reg.ok()) << reg.status();
  EXPECT_THAT(reg->data(), UnorderedElementsAre(Pair("runner_url", "https://github.com/acme"),
                                                Pair("runner_id", "123456"),
                                                Pair("labels", "self-hosted,linux,x64"),
                                                Pair("runner_group", "default")));
  auto started = ParseEvent(Fixture("event-job_started.json"));
  ASSERT_TRUE(started.ok()) << started.status();
  EXPECT_EQ(started->data().at("job_id"), "987654321");
  EXPECT_EQ(started->data().at("run_id"), "12345678");
  EXPECT_EQ(started->data().at("commit"), "0a1b2c3d4e5f");
  auto done = ParseEvent(Fixture("event-job_completed.json"));
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(done->timestamp(), 1795777530);  // 12:05:30.250+01:00
  EXPECT_EQ(done->org_id(), "");             // optional
  EXPECT_EQ(done->data().at("success"), "true");
  EXPECT_EQ(done->data().at("exit_code"), "0");
  EXPECT_EQ(done->data().at("duration"), "270.5");
}

TEST(FieldEventTest, TheProtoFormStillReads) {
  auto ev = ParseEvent(R"({"type":"drained","timestamp":1795780800,"data":{"reason":"drain"}})");
  ASSERT_TRUE(ev.ok()) << ev.status();
  EXPECT_EQ(ev->timestamp(), k12h00);
  EXPECT_THAT(ev->data(), ElementsAre(Pair("reason", "drain")));
  // The int64-as-string form protobuf's own JSON printer writes.
  auto s = ParseEvent(R"({"type":"drained","timestamp":"1795780800"})");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->timestamp(), k12h00);
}

TEST(FieldEventTest, BadEventsSayWhatIsWrong) {
  struct Case {
    const char* body;
    const char* why;
  } cases[] = {
      {"", "the request body is empty"},
      {"{", "invalid JSON"},
      {"[1]", "must be a JSON object"},
      {R"({"timestamp":"2026-11-27T12:00:00Z"})", "type is required"},
      {R"({"type":7})", "type is required"},
      {R"({"type":"x","timestamp":"noon"})", "timestamp: \"noon\" is not an RFC 3339 time"},
      {R"({"type":"x","timestamp":true})", "timestamp must be an RFC 3339 time"},
      {R"({"type":"x","timestamp":1e300})", "timestamp is out of range"},
      {R"({"type":"x","metadata":[1]})", "metadata must be an object"},
      {R"({"type":"x","vm_id":{"a":1}})", "vm_id must be a string"},
  };
  for (const auto& c : cases) {
    auto ev = ParseEvent(c.body);
    ASSERT_FALSE(ev.ok()) << c.body;
    EXPECT_THAT(ev.status().message(), HasSubstr(c.why)) << c.body;
    EXPECT_THAT(ev.status().message(), HasSubstr("event")) << c.body;
  }
}

TEST(FieldHeartbeatTest, RunningAndReadyFromAFieldAgent) {
  auto hb = ParseHeartbeat(Fixture("heartbeat-running.json"));
  ASSERT_TRUE(hb.ok()) << hb.status();
  EXPECT_EQ(hb->vm_id(), "vm-field-1");
  EXPECT_EQ(hb->miglet_state(), "job_running");
  EXPECT_EQ(hb->timestamp(), k12h00 + 120);
  EXPECT_EQ(hb->runner_state().state(), "running");
  EXPECT_TRUE(hb->runner_state().configured());
  EXPECT_DOUBLE_EQ(hb->health().cpu_usage_percent(), 37.5);
  EXPECT_EQ(hb->health().memory_used_bytes(), 6144LL << 20);
  EXPECT_EQ(hb->health().memory_total_bytes(), 16384LL << 20);
  EXPECT_DOUBLE_EQ(hb->health().memory_usage_percent(), 37.5);
  EXPECT_EQ(hb->health().disk_total_bytes(), 100LL << 30);
  EXPECT_DOUBLE_EQ(hb->health().disk_usage_percent(), 40);
  EXPECT_EQ(hb->current_job().job_id(), "987654321");
  EXPECT_EQ(hb->current_job().run_id(), "12345678");
  EXPECT_EQ(hb->current_job().repository(), "acme/widgets");
  EXPECT_EQ(hb->current_job().started_at(), k12h00 + 60);
  EXPECT_EQ(hb->current_job().status(), "running");

  auto ready = ParseHeartbeat(Fixture("heartbeat-ready.json"));
  ASSERT_TRUE(ready.ok()) << ready.status();
  EXPECT_EQ(ready->miglet_state(), "ready");
  EXPECT_EQ(ready->runner_state().state(), "offline");  // "stopped" in the field's words
  EXPECT_FALSE(ready->runner_state().configured());
  EXPECT_FALSE(ready->has_current_job());
}

TEST(FieldHeartbeatTest, TheProtoFormStillReads) {
  auto hb = ParseHeartbeat(
      R"({"vm_id":"v","miglet_state":"idle","timestamp":"1795780800",)"
      R"("runner_state":{"state":"idle","configured":true,"runner_name":"r1","labels":["a"]},)"
      R"("health":{"cpu_usage_percent":5,"memory_total_bytes":"1024"}})");
  ASSERT_TRUE(hb.ok()) << hb.status();
  EXPECT_EQ(hb->runner_state().runner_name(), "r1");
  EXPECT_THAT(hb->runner_state().labels(), ElementsAre("a"));
  EXPECT_EQ(hb->health().memory_total_bytes(), 1024);
  EXPECT_EQ(hb->timestamp(), k12h00);
}

TEST(FieldHeartbeatTest, BadHeartbeatsSayWhatIsWrong) {
  struct Case {
    const char* body;
    const char* why;
  } cases[] = {
      {R"({"runner_state":5})", "runner_state must be a string"},
      {R"({"vm_health":{"cpu_load":"high"}})", "vm_health.cpu_load must be a number"},
      {R"({"vm_health":7})", "vm_health must be an object"},
      {R"({"current_job":{"started_at":"at noon"}})", "current_job: started_at"},
      {R"({"current_job":"j1"})", "current_job must be an object"},
      {R"({"timestamp":"2026-11-27 12:00"})", "timestamp"},
  };
  for (const auto& c : cases) {
    auto hb = ParseHeartbeat(c.body);
    ASSERT_FALSE(hb.ok()) << c.body;
    EXPECT_THAT(hb.status().message(), HasSubstr(c.why)) << c.body;
  }
}

TEST(FieldAnswerTest, AnswersAreTheFieldsBytes) {
  EXPECT_EQ(EventAnswer("vm-field-1", "received", "event received"), Fixture("answer-event.json"));
  Registration r{.registration_token = "AABBCCDDEEFF",
                 .expires_at = k12h00 + 3600,
                 .runner_url = "https://github.com/acme",
                 .runner_group = "default",
                 .labels = {"self-hosted", "linux"}};
  EXPECT_EQ(EventAnswer("vm-field-1", "received",
                        "event received; register the runner with the token given", &r),
            Fixture("answer-vm_started-register.json"));
  EXPECT_EQ(RegistrationAnswer(r), Fixture("answer-registration-token.json"));

  commands::Command reg;
  reg.set_id("uid-1.g1.register.1");
  reg.set_type("register_runner");
  (*reg.mutable_string_params())["runner_url"] = "https://github.com/acme";
  (*reg.mutable_string_params())["registration_token"] = "AABBCCDDEEFF";
  (*reg.mutable_string_params())["runner_group"] = "default";
  (*reg.mutable_string_params())["runner_name"] = "pool-a-x7k2p";
  (*reg.mutable_string_params())["expires_at"] = "2026-11-27T13:00:00Z";
  (*reg.mutable_bool_params())["ephemeral"] = false;
  reg.add_string_array_params("self-hosted");
  reg.add_string_array_params("linux");
  reg.set_created_at(k12h00 + 5);
  commands::Command drain;
  drain.set_id("uid-1.g2.drain");
  drain.set_type("drain");
  (*drain.mutable_int_params())["timeout_seconds"] = 600;
  drain.set_created_at(k12h00 + 600);
  commands::Command shutdown;
  shutdown.set_id("uid-1.g2.shutdown");
  shutdown.set_type("shutdown");
  (*shutdown.mutable_bool_params())["force"] = false;
  shutdown.set_created_at(k12h00 + 1200);
  EXPECT_EQ(CommandsAnswer("vm-field-1", {reg, drain, shutdown}), Fixture("answer-commands.json"));
  EXPECT_EQ(CommandsAnswer("vm-field-1", {}), R"({"vm_id":"vm-field-1","commands":[]})");

  // What the agent reads back is what was sent, typed maps and all.
  auto polled = ParseCommandsAnswer(Fixture("answer-commands.json"));
  ASSERT_TRUE(polled.ok()) << polled.status();
  ASSERT_EQ(polled->size(), 3u);
  for (size_t i = 0; i < 3; ++i) ASSERT_TRUE((*polled)[i].command.ok()) << i;
  const commands::Command* sent[] = {&reg, &drain, &shutdown};
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_TRUE(MessageDifferencer::Equals(*(*polled)[i].command, *sent[i]))
        << (*polled)[i].command->DebugString() << " vs " << sent[i]->DebugString();
  }
}

TEST(FieldAnswerTest, RegistrationRequestAndAnswerRead) {
  auto req = ParseRegistrationRequest(Fixture("registration-token-request.json"));
  ASSERT_TRUE(req.ok()) << req.status();
  EXPECT_EQ(req->org_id, "acme");
  EXPECT_EQ(req->pool_id, "pool-a");
  EXPECT_EQ(req->runner_group, "default");
  EXPECT_THAT(req->labels, ElementsAre("self-hosted", "linux"));
  EXPECT_TRUE(ParseRegistrationRequest("").ok());
  EXPECT_FALSE(ParseRegistrationRequest(R"({"labels":"linux"})").ok());

  auto r = RegistrationInAnswer(Fixture("answer-vm_started-register.json"));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->registration_token, "AABBCCDDEEFF");
  EXPECT_EQ(r->expires_at, k12h00 + 3600);
  EXPECT_THAT(r->labels, ElementsAre("self-hosted", "linux"));
  EXPECT_FALSE(RegistrationInAnswer(Fixture("answer-event.json")).has_value());
}

TEST(FieldCommandTest, ABadCommandKeepsItsIdAndItsNeighbours) {
  auto polled = ParseCommandsAnswer(
      R"({"vm_id":"v","commands":[)"
      R"({"id":"c1","type":"drain","parameters":{"timeout_seconds":"soon?"},"created_at":"x"},)"
      R"({"id":"c2","type":"set_log_level","parameters":{"level":"debug"}},)"
      R"({"id":"c3","type":"drain","parameters":{"timeout_seconds":1.5}},)"
      R"({"id":"c4","type":"update_config","parameters":{"nested":{"a":1}}},)"
      R"({"type":"drain"},)"
      R"("c6"]})");
  ASSERT_TRUE(polled.ok()) << polled.status();
  ASSERT_EQ(polled->size(), 6u);
  EXPECT_EQ((*polled)[0].id, "c1");
  EXPECT_THAT((*polled)[0].command.status().message(), HasSubstr("created_at"));
  ASSERT_TRUE((*polled)[1].command.ok());
  EXPECT_EQ((*polled)[1].command->string_params().at("level"), "debug");
  EXPECT_EQ((*polled)[2].id, "c3");
  EXPECT_THAT((*polled)[2].command.status().message(), HasSubstr("must be a whole number"));
  EXPECT_THAT((*polled)[3].command.status().message(), HasSubstr("an object is not a parameter"));
  EXPECT_EQ((*polled)[4].id, "");
  EXPECT_THAT((*polled)[4].command.status().message(), HasSubstr("id is required"));
  EXPECT_THAT((*polled)[5].command.status().message(), HasSubstr("not a JSON object"));

  EXPECT_FALSE(ParseCommandsAnswer("<html>").ok());
  EXPECT_FALSE(ParseCommandsAnswer(R"({"commands":{}})").ok());
  // The proto JSON form an older controller answered with still reads.
  auto old = ParseCommandsAnswer(
      R"({"commands":[{"id":"o1","type":"drain","int_params":{"timeout_seconds":"30"},)"
      R"("created_at":"1795780800"}]})");
  ASSERT_TRUE(old.ok()) << old.status();
  ASSERT_TRUE((*old)[0].command.ok()) << (*old)[0].command.status();
  EXPECT_EQ((*old)[0].command->int_params().at("timeout_seconds"), 30);
  EXPECT_EQ((*old)[0].command->created_at(), k12h00);
}

TEST(FieldBodyTest, OurEventsCarryTheFieldKeys) {
  commands::EventNotification ev;
  ev.set_type("runner_registered");
  ev.set_vm_id("vm-1");
  ev.set_pool_id("pool-a");
  ev.set_timestamp(k12h00);
  (*ev.mutable_data())["runner_name"] = "pool-a-1";
  (*ev.mutable_data())["runner_url"] = "https://github.com/acme";
  (*ev.mutable_data())["runner_group"] = "default";
  (*ev.mutable_data())["labels"] = "self-hosted,linux";
  EXPECT_EQ(EventBody(ev),
            R"({"type":"runner_registered","timestamp":"2026-11-27T12:00:00Z","vm_id":"vm-1",)"
            R"("pool_id":"pool-a","org_id":"","runner_url":"https://github.com/acme",)"
            R"("runner_id":0,"labels":["self-hosted","linux"],"runner_group":"default",)"
            R"("metadata":{"labels":"self-hosted,linux","runner_group":"default",)"
            R"("runner_name":"pool-a-1","runner_url":"https://github.com/acme"}})");
  // And the controller reads back what the agent meant.
  auto back = ParseEvent(EventBody(ev));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->data().at("runner_name"), "pool-a-1");
  EXPECT_EQ(back->data().at("labels"), "self-hosted,linux");
  EXPECT_EQ(back->timestamp(), k12h00);

  commands::EventNotification done;
  done.set_type("job_completed");
  done.set_timestamp(k12h00);
  (*done.mutable_data())["job_id"] = "build";
  (*done.mutable_data())["success"] = "true";
  (*done.mutable_data())["exit_code"] = "0";
  (*done.mutable_data())["duration"] = "12.5";
  const std::string body = EventBody(done);
  EXPECT_THAT(body, HasSubstr(R"("job_id":"build","run_id":"","success":true,"exit_code":0,)"
                              R"("duration":12.5,)"));
}

TEST(FieldBodyTest, OurHeartbeatIsAFieldHeartbeatWithOursBeside) {
  commands::Heartbeat hb;
  hb.set_vm_id("vm-1");
  hb.set_pool_id("pool-a");
  hb.set_miglet_state("job_running");
  hb.set_timestamp(k12h00);
  hb.mutable_runner_state()->set_state("running");
  hb.mutable_runner_state()->set_configured(true);
  hb.mutable_runner_state()->set_runner_name("pool-a-1");
  hb.mutable_runner_state()->add_labels("linux");
  hb.mutable_health()->set_cpu_usage_percent(12.5);
  hb.mutable_health()->set_memory_used_bytes(512LL << 20);
  hb.mutable_health()->set_memory_total_bytes(2048LL << 20);
  hb.mutable_health()->set_disk_used_bytes(5LL << 30);
  hb.mutable_health()->set_disk_total_bytes(20LL << 30);
  hb.mutable_current_job()->set_job_id("build");
  hb.mutable_current_job()->set_status("running");
  hb.mutable_current_job()->set_started_at(k12h00 - 30);
  const std::string body = HeartbeatBody(hb);
  EXPECT_THAT(body, HasSubstr(R"("miglet_state":"job_running","vm_health":{"cpu_load":12.5,)"
                              R"("memory_used":512,"memory_total":2048,"disk_used":5.0,)"
                              R"("disk_total":20.0},"runner_state":"running",)"
                              R"("current_job":{"job_id":"build","run_id":"","repository":"",)"
                              R"("started_at":"2026-11-27T11:59:30Z")"));
  auto back = ParseHeartbeat(body);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_TRUE(MessageDifferencer::Equals(*back, hb)) << back->DebugString();
}

}  // namespace
}  // namespace miglet::fieldjson
