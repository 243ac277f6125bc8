#!/usr/bin/env bash
# The command channel, visibly: mig-controller and three miglet agents on loopback. Shows
# connects, heartbeats, commands and their acks, metrics, and a controller restart that the
# agents ride out. Logs stay in build/demo/ for a look afterwards.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
BIN=${MIGLET_BUILD_DIR:-$ROOT/build}
CONTROLLER=$BIN/operator/mig-controller
AGENT=$BIN/agent/miglet
DEMO=$BIN/demo
rm -rf "$DEMO" && mkdir -p "$DEMO"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
json() { python3 -c "import json,sys;print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$1" "$2"; }
wait_for() {  # wait_for DESCRIPTION COMMAND...
  local what=$1; shift
  for _ in $(seq 1 300); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "demo: timed out waiting for $what" >&2; exit 1
}
agents_table() { "$HERE/agents_table.py" "http://127.0.0.1:$HTTP"; }
all_connected() { "$HERE/agents_table.py" "http://127.0.0.1:$HTTP" --check 3; }
send() {  # send VM JSON: queue a command and wait for the agent's ack
  printf '  -> %s %s\n' "$1" "$2"
  printf '  <- %s\n' "$(curl -s -X POST "http://127.0.0.1:$HTTP/api/v1/vms/$1/commands?wait=10s" -d "$2")"
}
start_controller() {
  "$CONTROLLER" --bind-address=127.0.0.1 --grpc-port="$1" --http-port="$2" --metrics-port="$3" \
    --health-probe-bind-address=127.0.0.1:0 --controllers=off --heartbeat-timeout=10s --listen-info-file="$DEMO/ports.json" >>"$DEMO/controller.log" 2>&1 &
  CONTROLLER_PID=$!
  pids+=("$CONTROLLER_PID")
  wait_for "the controller to listen" test -s "$DEMO/ports.json"
}

say "starting mig-controller (gRPC, HTTP API and /metrics on free loopback ports)"
start_controller 0 0 0
GRPC=$(json "$DEMO/ports.json" grpc_port)
HTTP=$(json "$DEMO/ports.json" http_port)
METRICS=$(json "$DEMO/ports.json" metrics_port)
echo "  gRPC 127.0.0.1:$GRPC   HTTP http://127.0.0.1:$HTTP   metrics http://127.0.0.1:$METRICS/metrics"

say "starting three miglet agents (heartbeat every 2s; logs in $DEMO/)"
for vm in vm-a vm-b vm-c; do
  # Each agent supervises a stand-in for the GitHub runner (tests/fake-runner): no GitHub here.
  mkdir -p "$DEMO/runner-$vm" && cp "$ROOT"/tests/fake-runner/{config.sh,run.sh} "$DEMO/runner-$vm/"
  MIGLET_CONTROLLER_RETRY_INITIAL_BACKOFF=1s MIGLET_CONTROLLER_RETRY_MAX_BACKOFF=3s \
    "$AGENT" --vm-id="$vm" --pool-id=demo-pool --org-id=demo-org \
    --controller-grpc="127.0.0.1:$GRPC" --controller-http="http://127.0.0.1:$HTTP" \
    --heartbeat-interval=2s --metrics-listen=127.0.0.1:0 --log-format=text \
    --runner-dir="$DEMO/runner-$vm" \
    >"$DEMO/$vm.log" 2>&1 &
  pids+=($!)
done
wait_for "three connected agents" all_connected
agents_table

say "commands, each answered by exactly one ack"
send vm-a '{"type":"set_log_level","string_params":{"level":"debug"}}'
send vm-a '{"type":"update_config","string_params":{"heartbeat.interval":"1s"}}'
send vm-b '{"type":"update_config","string_params":{"runner.dir":"/tmp"}}'
send vm-c '{"type":"reboot"}'
send vm-c '{"id":"same-id-twice","type":"set_log_level","string_params":{"level":"warn"}}'
send vm-c '{"id":"same-id-twice","type":"set_log_level","string_params":{"level":"warn"}}'
echo "  (the second same-id-twice was re-acked with its first result, not run again:)"
grep -c "command same-id-twice" "$DEMO/vm-c.log" | sed 's/^/  vm-c ran it this many times: /'

say "a runner's life on vm-b: register, a job, drain (the fake runner takes orders from a FIFO)"
send vm-b '{"type":"register_runner","string_params":{"runner_url":"https://github.com/demo-org","registration_token":"DEMO-TOKEN"},"string_array_params":["self-hosted","linux"],"bool_params":{"ephemeral":false}}'
echo "job build-and-test" >"$DEMO/runner-vm-b/_fake/control"
wait_for "the job to start" grep -q "event job_started" "$DEMO/controller.log"
agents_table
send vm-b '{"type":"drain"}'
echo "finish Succeeded" >"$DEMO/runner-vm-b/_fake/control"
wait_for "vm-b to drain" grep -q "agent vm-b event drained" "$DEMO/controller.log"
echo "  events the controller received from vm-b:"
grep -o "agent vm-b event .*" "$DEMO/controller.log" | sed 's/^/    /'

say "heartbeats flowing (vm-a now every 1s, the others every 2s)"
sleep 4
agents_table

say "controller metrics"
curl -sf "http://127.0.0.1:$METRICS/metrics" | grep -E '^mig_controller_(agents_connected|heartbeats_received_total|commands_sent_total|command_acks_total|command_ack_latency_seconds_count)' | sed 's/^/  /'
APORT=$(sed -n 's/.*metrics on .* (port \([0-9]*\)).*/\1/p' "$DEMO/vm-a.log" | head -1)
say "vm-a's metrics (http://127.0.0.1:$APORT/metrics)"
curl -sf "http://127.0.0.1:$APORT/metrics" | grep -E '^miglet_' | sed 's/^/  /'

say "restarting the controller: agents back off, reconnect, and carry on"
kill "$CONTROLLER_PID"; wait "$CONTROLLER_PID" 2>/dev/null || true
rm -f "$DEMO/ports.json"
wait_for "agents to notice" grep -q "reconnecting in" "$DEMO/vm-a.log"
grep -h "reconnecting in" "$DEMO"/vm-*.log | head -3 | sed 's/^/  /'
start_controller "$GRPC" "$HTTP" "$METRICS"
wait_for "three agents back" all_connected
agents_table
send vm-b '{"type":"set_log_level","string_params":{"level":"info"}}'

say "done: logs in $DEMO/ (controller.log, vm-a.log, vm-b.log, vm-c.log)"
