// The hub's handling of what agents send on their streams: the input is a sequence of
// MIGletMessages, each preceded by its length as a varint (protobuf's delimited form), decoded
// as gRPC would and handled as AgentStream::Handle does, against a real AgentRegistry with a
// fake clock. A message that does not decode ends the stream (gRPC fails the read); a connect
// after a stream has ended opens a new one, so replacing, detaching and re-attaching run too.
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/stubs/logging.h>
#include <prometheus/registry.h>

#include <cstdint>
#include <cstdlib>
#include <memory>

#include "agent_registry.h"
#include "http_api.h"
#include "miglet/common/fake_clock.h"
#include "spdlog/spdlog.h"

namespace miglet {
namespace {

class FuzzSession : public AgentSession {
 public:
  bool Send(const commands::ControllerMessage& msg) override {
    if (closed || queued >= 16) return false;  // a bounded outbound queue, as AgentStream's
    ++queued;
    return true;
  }
  void Close(const std::string&, const std::string&, int) override { closed = true; }
  bool closed = false;
  size_t queued = 0;
};

void Check(bool ok) {
  if (!ok) std::abort();
}

void Run(const uint8_t* data, size_t size) {
  auto clock = std::make_shared<FakeClock>();
  prometheus::Registry prom;
  HubMetrics metrics(prom);
  HubOptions opts;
  opts.heartbeat_timeout = std::chrono::seconds(3);
  opts.ack_timeout = std::chrono::seconds(5);
  opts.forget_after = std::chrono::seconds(10);
  opts.max_pending_per_agent = 8;
  opts.max_agents_without_stream = 4;
  AgentRegistry registry(opts, clock, &metrics);
  // What the operator does with changes: the HTTP API's JSON of the agent.
  registry.SetChangeHook([](const AgentInfo& a) { (void)AgentInfoToJson(a); });
  registry.SetEventHook([](const commands::EventNotification& ev) { Check(!ev.vm_id().empty()); });

  std::shared_ptr<FuzzSession> session;
  std::string vm_id;
  bool attached = false, open = false;
  auto end_stream = [&] {
    if (attached) registry.Detach(vm_id, session.get());
    attached = open = false;
  };

  google::protobuf::io::CodedInputStream in(data, static_cast<int>(size));
  uint32_t len;
  while (in.ReadVarint32(&len)) {
    std::string buf;
    if (!in.ReadString(&buf, static_cast<int>(len))) break;
    commands::MIGletMessage msg;
    const bool decoded = msg.ParseFromString(buf);
    clock->Advance(std::chrono::seconds(1));
    registry.Sweep();
    if (open && session->closed) end_stream();  // replaced by a newer stream
    if (!open) {
      if (!decoded || !msg.has_connect()) continue;  // nobody is streaming
      session = std::make_shared<FuzzSession>();
      open = true;
    } else if (!decoded) {
      end_stream();
      continue;
    }
    using M = commands::MIGletMessage;
    if (!attached && msg.message_case() != M::kConnect) {
      end_stream();  // not_connected
      continue;
    }
    switch (msg.message_case()) {
      case M::kConnect: {
        if (attached) {
          end_stream();  // protocol_error: connect twice
          break;
        }
        auto st = AgentRegistry::ValidateConnect(msg.connect());
        if (st.ok()) st = registry.Attach(msg.connect(), session);
        if (!st.ok()) {
          open = false;  // invalid_connect
          break;
        }
        attached = true;
        vm_id = msg.connect().vm_id();
        auto info = registry.GetAgent(vm_id);
        Check(info && info->connected && info->transport == "grpc");
        // The controller has work for it: commands the input's acks can match.
        commands::Command c;
        c.set_type("drain");
        c.set_id("cmd-1");
        (void)registry.SendCommand(vm_id, c, [](const CommandResult&) {});
        c.set_type("shutdown");
        c.set_id("cmd-2");
        (*c.mutable_int_params())["grace_seconds"] = 30;
        (void)registry.SendCommand(vm_id, c);
        break;
      }
      case M::kHeartbeat:
        Check(registry.OnHeartbeat(vm_id, msg.heartbeat()).ok());
        break;
      case M::kCommandAck:
        registry.OnAck(vm_id, msg.command_ack());
        break;
      case M::kEvent:
        Check(registry.OnEvent(vm_id, msg.event()).ok());
        break;
      case M::kError:
        break;
      case M::MESSAGE_NOT_SET:
        end_stream();
        break;
    }
    Check(registry.connected_count() <= registry.known_count());
  }
  end_stream();
  for (const auto& a : registry.ListAgents())
    Check(a.pending_commands <= opts.max_pending_per_agent);
  registry.Shutdown();
  Check(registry.connected_count() == 0);
}

}  // namespace
}  // namespace miglet

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const bool quiet = [] {
    spdlog::set_level(spdlog::level::off);
    google::protobuf::SetLogHandler(nullptr);  // invalid UTF-8 in strings is logged otherwise
    return true;
  }();
  (void)quiet;
  miglet::Run(data, size);
  return 0;
}
