#pragma once

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "miglet/agent/command_dispatcher.h"
#include "miglet/agent/config.h"
#include "miglet/agent/health.h"
#include "miglet/agent/runner_supervisor.h"
#include "miglet/agent/state_machine.h"
#include "miglet/agent/stream_client.h"

namespace miglet {

// The miglet agent: state machine, runner supervision and the five commands, on top of the
// stream client. main() only parses flags, makes one of these and waits for it.
class Agent {
 public:
  Agent(AgentConfig config, std::string version, std::shared_ptr<Clock> clock,
        prometheus::Registry* metrics);
  ~Agent();

  void Start();
  // Blocks until the agent has shut down (shutdown command, or SIGTERM handled). Returns the
  // process exit code.
  int WaitForExit();
  // SIGTERM (a pod being deleted): drain, let a running job finish within
  // shutdown.grace_period, stop the runner (killing it after shutdown.force_after), then shut
  // down. Returns at once; the work runs on its own thread.
  void BeginTermination(const std::string& why);

  AgentState state() const { return sm_.state(); }
  bool ready() const;  // connected to the controller (gRPC or HTTP)
  commands::Heartbeat BuildHeartbeat();
  CommandHandler* handler() { return &dispatcher_; }
  StreamClient* client() { return client_.get(); }

 private:
  commands::CommandAck Register(const commands::Command& cmd);
  commands::CommandAck Drain(const commands::Command& cmd);
  commands::CommandAck Shutdown(const commands::Command& cmd);
  void OnRunnerLine(const RunnerLine& line);
  void OnRunnerExit(int code, bool requested);
  void OnStateChange(AgentState from, AgentState to, const std::string& why);
  void Event(const std::string& type, std::map<std::string, std::string> data);
  void SetState(AgentState to, const std::string& why);
  // Stops the runner, deregisters it when it is not ephemeral, announces vm_shutting_down and
  // asks WaitForExit to finish.
  // `remove_token` (a GitHub remove token, from shutdown's string_params) deregisters a
  // persistent runner; without one the registration token is tried, which GitHub may refuse.
  absl::Status FinishShutdown(Duration grace, bool force, const std::string& reason,
                              const std::string& remove_token = "");
  void Terminate(std::string why);

  AgentConfig config_;
  const std::string version_;
  std::shared_ptr<Clock> clock_;
  StateMachine sm_;
  HealthSampler health_;
  CommandDispatcher dispatcher_;
  std::unique_ptr<RunnerSupervisor> runner_;
  std::unique_ptr<StreamClient> client_;

  prometheus::Family<prometheus::Gauge>* state_gauge_ = nullptr;
  prometheus::Family<prometheus::Counter>* jobs_total_ = nullptr;
  prometheus::Counter* runner_restarts_ = nullptr;
  std::shared_ptr<prometheus::Registry> own_registry_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool listening_ = false;  // the runner printed "Listening for Jobs" since its last start
  bool runner_exited_ = false;
  int runner_exit_code_ = 0;
  commands::JobInfo job_;  // the current job (status running) or the last one
  bool job_running_ = false;
  RunnerRegistration registration_;
  bool registered_ = false;
  bool drain_reported_ = false;
  bool exit_requested_ = false;
  bool terminating_ = false;
  bool preempted_ = false;  // a drain or shutdown arrived during a registration
  std::thread terminator_;
};

}  // namespace miglet
