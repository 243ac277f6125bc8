#pragma once
// One simulated miglet agent for the benches: a gRPC callback reactor (no thread of its own)
// with one write in flight and a small queue, speaking the agent's side of the command
// channel. Thousands share the process's few gRPC threads, so a bench can stand in for a
// fleet. It behaves as the real agent does where the controller can tell:
//   - Connect, then a Heartbeat at once and one per interval (Heartbeat(), driven by the bench);
//   - register_runner: the runner named in the command is registered and idle;
//   - drain: draining, the runner offline; shutdown: shutting_down;
//   - every command is acked with success, and a state change is heartbeated at once.
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <condition_variable>
#include <ctime>
#include <deque>
#include <iostream>
#include <mutex>
#include <string>

#include "miglet/commands/commands.grpc.pb.h"

namespace miglet::bench {

struct SimShared {
  std::mutex mu;
  std::condition_variable cv;
  int connected = 0;
  int failed = 0;
  std::atomic<uint64_t> heartbeats{0};
  std::atomic<uint64_t> commands{0};
};

struct SimAgentOptions {
  std::string vm_id;
  std::string pool_id = "bench-pool";
  std::string org_id = "bench-org";
  // true: starts with a registered idle runner (named vm_id); false: ready, no runner.
  bool registered = true;
};

class SimAgent final
    : public grpc::ClientBidiReactor<commands::MIGletMessage, commands::ControllerMessage> {
 public:
  SimAgent(SimAgentOptions o, const std::string& target, SimShared* shared)
      : o_(std::move(o)), shared_(shared) {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);  // one connection per agent, as in life
    args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 20000);
    args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10000);
    channel_ = grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
    stub_ = commands::CommandService::NewStub(channel_);
    if (o_.registered) {
      state_ = "idle";
      runner_name_ = o_.vm_id;
    }
  }

  void Begin() {
    commands::MIGletMessage m;
    auto* c = m.mutable_connect();
    c->set_vm_id(o_.vm_id);
    c->set_pool_id(o_.pool_id);
    c->set_org_id(o_.org_id);
    c->set_version("bench");
    stub_->async()->StreamCommands(&ctx_, this);
    Enqueue(std::move(m));
    StartRead(&in_);
    StartCall();
  }

  // About 200 bytes: health, runner state, labels.
  void Heartbeat() {
    if (!established_.load()) return;
    commands::MIGletMessage m;
    auto* hb = m.mutable_heartbeat();
    hb->set_vm_id(o_.vm_id);
    hb->set_pool_id(o_.pool_id);
    hb->set_org_id(o_.org_id);
    hb->set_timestamp(std::time(nullptr));
    auto* h = hb->mutable_health();
    h->set_cpu_usage_percent(12.5);
    h->set_memory_usage_percent(40.1);
    h->set_disk_usage_percent(55.0);
    h->set_memory_total_bytes(8LL << 30);
    h->set_memory_used_bytes(3LL << 30);
    h->set_disk_total_bytes(100LL << 30);
    h->set_disk_used_bytes(55LL << 30);
    auto* r = hb->mutable_runner_state();
    {
      std::lock_guard l(mu_);
      hb->set_miglet_state(state_);
      const bool configured = !runner_name_.empty();
      r->set_state(configured && state_ == "idle" ? "idle" : "offline");
      r->set_configured(configured);
      r->set_runner_name(runner_name_);
    }
    r->add_labels("self-hosted");
    r->add_labels("linux");
    r->add_labels("x64");
    Enqueue(std::move(m));
    shared_->heartbeats.fetch_add(1, std::memory_order_relaxed);
  }

  void Stop() { ctx_.TryCancel(); }
  bool done() {
    std::lock_guard l(mu_);
    return done_;
  }
  const std::string& vm_id() const { return o_.vm_id; }
  std::string state() {
    std::lock_guard l(mu_);
    return state_;
  }

  void OnReadDone(bool ok) override {
    if (!ok) return;
    if (in_.has_connect_ack()) {
      established_ = true;
      {
        std::lock_guard l(shared_->mu);
        ++shared_->connected;
      }
      shared_->cv.notify_all();
      Heartbeat();
    } else if (in_.has_command()) {
      const auto& cmd = in_.command();
      bool changed = false;
      {
        std::lock_guard l(mu_);
        const std::string before = state_;
        if (cmd.type() == "register_runner") {
          auto it = cmd.string_params().find("runner_name");
          runner_name_ = it == cmd.string_params().end() ? o_.vm_id : it->second;
          state_ = "idle";
        } else if (cmd.type() == "drain") {
          state_ = "draining";
        } else if (cmd.type() == "shutdown") {
          state_ = "shutting_down";
        }
        changed = state_ != before || cmd.type() == "register_runner";
      }
      commands::MIGletMessage m;
      auto* a = m.mutable_command_ack();
      a->set_command_id(cmd.id());
      a->set_success(true);
      a->set_message("ok");
      Enqueue(std::move(m));
      shared_->commands.fetch_add(1, std::memory_order_relaxed);
      if (changed) Heartbeat();
    }
    StartRead(&in_);
  }

  void OnWriteDone(bool ok) override {
    const commands::MIGletMessage* next = nullptr;
    {
      std::lock_guard l(mu_);
      q_.pop_front();
      if (ok && !q_.empty()) {
        next = &q_.front();
      } else {
        writing_ = false;
        if (!ok) q_.clear();
      }
    }
    if (next) StartWrite(next);
  }

  void OnDone(const grpc::Status& s) override {
    {
      std::lock_guard l(mu_);
      done_ = true;
    }
    if (!established_) {
      std::lock_guard l(shared_->mu);
      ++shared_->failed;
      if (shared_->failed <= 3) {
        std::cerr << "agent " << o_.vm_id << " failed: " << s.error_code() << " "
                  << s.error_message() << "\n";
      }
    }
    shared_->cv.notify_all();
  }

 private:
  void Enqueue(commands::MIGletMessage m) {
    const commands::MIGletMessage* start = nullptr;
    {
      std::lock_guard l(mu_);
      if (done_ || q_.size() > 64) return;  // a stuck stream: drop rather than grow
      q_.push_back(std::move(m));
      if (!writing_) {
        writing_ = true;
        start = &q_.front();
      }
    }
    if (start) StartWrite(start);
  }

  SimAgentOptions o_;
  SimShared* shared_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<commands::CommandService::Stub> stub_;
  grpc::ClientContext ctx_;
  commands::ControllerMessage in_;
  std::mutex mu_;
  std::string state_ = "ready";
  std::string runner_name_;
  std::deque<commands::MIGletMessage> q_;
  bool writing_ = false;
  bool done_ = false;
  std::atomic<bool> established_{false};
};

}  // namespace miglet::bench
