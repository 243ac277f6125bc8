#pragma once

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "miglet/agent/command_dispatcher.h"
#include "miglet/agent/config.h"
#include "miglet/agent/event_loop.h"
#include "miglet/agent/health.h"
#include "miglet/agent/runner_supervisor.h"
#include "miglet/agent/state_machine.h"
#include "miglet/agent/stream_client.h"

namespace miglet {

// The miglet agent: state machine, runner supervision and the five commands, on top of the
// stream client. main() only parses flags, makes one of these and waits for it.
//
// One owner for the agent's state: every input (a command, a drain or shutdown arriving, a
// runner line, the runner's exit, a timer, SIGTERM, the stream connecting) is a task on one
// event loop, and only those tasks read or change the state. What blocks (config.sh) runs on
// a second loop and posts its result back. Other threads see the state through a snapshot the
// loop publishes (heartbeats) and through the state machine.
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
  // down. Returns at once; the work runs on the agent's loop.
  void BeginTermination(const std::string& why);

  AgentState state() const { return sm_.state(); }
  bool ready() const;  // connected to the controller (gRPC or HTTP)
  commands::Heartbeat BuildHeartbeat();
  CommandHandler* handler() { return &dispatcher_; }
  StreamClient* client() { return client_.get(); }

 private:
  using Reply = std::function<void(commands::CommandAck)>;
  // A register_runner in progress.
  struct Pending {
    uint64_t id = 0;
    std::string command_id;
    RunnerRegistration reg;
    Reply reply;           // called once, by CompleteRegistration or FailRegistration
    bool started = false;  // run.sh started; waiting for "Listening for Jobs"
    uint64_t timer = 0;    // register_timeout for the runner to listen
  };
  // What heartbeats show of the runner; written by the loop, read by the stream's thread.
  struct View {
    bool running = false;
    bool listening = false;
    bool job_running = false;
    bool registered = false;
    std::string name;
    std::vector<std::string> labels;
    commands::JobInfo job;
  };

  // From the stream client's command thread: runs `fn` on the loop and returns its ack.
  commands::CommandAck OnLoop(std::function<commands::CommandAck()> fn);
  // Posts `fn` to the loop, dropped once the agent is stopping; the snapshot is published after.
  void Do(std::function<void()> fn);

  // On the loop:
  void StartRegister(const commands::Command& cmd, Reply reply);
  void OnConfigured(uint64_t id, absl::Status st);
  void OnRegisterTimeout(uint64_t id);
  void CompleteRegistration();
  void FailRegistration(const std::string& why);
  void Preempt();  // a drain or shutdown arrived
  commands::CommandAck Drain(const commands::Command& cmd);
  commands::CommandAck Shutdown(const commands::Command& cmd);
  void OnRunnerLine(const RunnerLine& line);
  void OnRunnerExit(int code, bool requested);
  void OnStateChange(AgentState from, AgentState to, const std::string& why);
  void Terminate(const std::string& why);
  void ContinueTermination();
  void SetState(AgentState to, const std::string& why);
  void Publish();
  // Stops the runner, deregisters it when it is not ephemeral, announces vm_shutting_down and
  // asks WaitForExit to finish. Blocks the loop while the runner stops: nothing after a
  // shutdown needs it.
  // `remove_token` (a GitHub remove token, from shutdown's string_params) deregisters a
  // persistent runner; without one the registration token is tried, which GitHub may refuse.
  absl::Status FinishShutdown(Duration grace, bool force, const std::string& reason,
                              const std::string& remove_token = "");
  void RequestExit();

  // Any thread.
  void Event(const std::string& type, std::map<std::string, std::string> data);

  AgentConfig config_;  // the loop's (update_config and set_log_level run there)
  const std::string version_;
  std::shared_ptr<Clock> clock_;
  StateMachine sm_;
  HealthSampler health_;  // the heartbeat's thread only
  CommandDispatcher dispatcher_;

  prometheus::Family<prometheus::Gauge>* state_gauge_ = nullptr;
  prometheus::Family<prometheus::Counter>* jobs_total_ = nullptr;
  prometheus::Counter* runner_restarts_ = nullptr;
  // What update_config and set_log_level last set, so a change can be seen from outside.
  prometheus::Gauge* heartbeat_interval_gauge_ = nullptr;
  prometheus::Family<prometheus::Gauge>* log_level_gauge_ = nullptr;
  void ShowLiveConfig();
  std::shared_ptr<prometheus::Registry> own_registry_;

  EventLoop loop_;  // the owner of everything down to `stopping_`
  EventLoop ops_;   // config.sh runs (configure, remove before a new registration)
  std::unique_ptr<RunnerSupervisor> runner_;
  std::unique_ptr<StreamClient> client_;

  std::optional<Pending> pending_;
  uint64_t next_registration_ = 1;
  bool runner_running_ = false;    // run.sh started and its exit not seen yet
  bool listening_ = false;         // the runner printed "Listening for Jobs" since its last start
  bool abandoned_runner_ = false;  // the running runner belongs to a failed registration
  commands::JobInfo job_;          // the current job (status running) or the last one
  bool job_running_ = false;
  RunnerRegistration registration_;
  bool registered_ = false;
  bool drain_reported_ = false;
  bool terminating_ = false;
  bool termination_continued_ = false;
  uint64_t termination_timer_ = 0;
  std::string termination_reason_;
  bool shut_down_ = false;  // FinishShutdown has run
  bool stopping_ = false;   // ~Agent: tasks posted from now on are dropped

  mutable std::mutex view_mu_;
  View view_;

  std::mutex exit_mu_;
  std::condition_variable exit_cv_;
  bool exit_requested_ = false;
};

}  // namespace miglet
