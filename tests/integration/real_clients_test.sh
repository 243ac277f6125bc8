#!/usr/bin/env bash
# mig-controller checked by clients nobody here wrote: grpcurl (through server reflection) and
# promtool (the metrics exposition), plus the binaries' --help/--version and bad-config exits.
# Usage: real_clients_test.sh <mig-controller> <miglet> <tools-bin-dir>
set -uo pipefail
CONTROLLER=$1 AGENT=$2 TOOLS=$3
GRPCURL=$TOOLS/grpcurl
WORK=$(mktemp -d)
passed=0 failed=0
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; rm -rf "$WORK"; }
trap cleanup EXIT

check() {  # check NAME COMMAND... : passes when COMMAND succeeds
  local name=$1; shift
  if "$@" >"$WORK/out" 2>&1; then
    echo "ok   $name"; passed=$((passed + 1))
  else
    echo "FAIL $name"; sed 's/^/     | /' "$WORK/out" | head -30; failed=$((failed + 1))
  fi
}
wait_file() { for _ in $(seq 1 500); do [[ -s $1 ]] && return 0; sleep 0.02; done; return 1; }
port_of() { python3 -c "import json,sys;print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$1" "$2"; }

command -v promtool >/dev/null || { echo "FAIL promtool is not installed (make deps)"; exit 1; }
[[ -x $GRPCURL ]] || { echo "FAIL $GRPCURL is missing (make deps)"; exit 1; }

"$CONTROLLER" --bind-address=127.0.0.1 --grpc-port=0 --http-port=0 --metrics-port=0 \
  --health-probe-bind-address=127.0.0.1:0 --controllers=off \
  --listen-info-file="$WORK/ports.json" 2>"$WORK/controller.log" &
pids+=($!)
wait_file "$WORK/ports.json" || { echo "FAIL controller did not start"; cat "$WORK/controller.log"; exit 1; }
GRPC=127.0.0.1:$(port_of "$WORK/ports.json" grpc_port)
METRICS=127.0.0.1:$(port_of "$WORK/ports.json" metrics_port)
HEALTH=127.0.0.1:$(port_of "$WORK/ports.json" health_port)

check "curl /healthz and /readyz answer 200 (the hub alone is ready at once)" \
  bash -c "curl -sf http://$HEALTH/healthz && curl -sf http://$HEALTH/readyz"

check "grpcurl lists the service via reflection" \
  bash -c "'$GRPCURL' -plaintext $GRPC list | grep -qx miglet.commands.CommandService"
check "grpcurl describes the contract's message fields" \
  bash -c "'$GRPCURL' -plaintext $GRPC describe miglet.commands.Heartbeat | grep -q 'string miglet_state = 8'"
check "grpcurl connect gets connect_ack accepted" \
  bash -c "'$GRPCURL' -plaintext -d '{\"connect\":{\"vm_id\":\"grpcurl-1\",\"pool_id\":\"p\"}}' $GRPC miglet.commands.CommandService/StreamCommands | tee /dev/stderr | grep -q '\"accepted\": true'"
check "grpcurl heartbeat first gets INVALID_ARGUMENT" \
  bash -c "'$GRPCURL' -plaintext -d '{\"heartbeat\":{\"vm_id\":\"x\"}}' $GRPC miglet.commands.CommandService/StreamCommands 2>&1 | tee /dev/stderr | grep -q 'Code: InvalidArgument'"
check "promtool accepts the controller's /metrics" \
  bash -c "curl -sf http://$METRICS/metrics | tee /dev/stderr | promtool check metrics"
check "controller metrics name the contract's series" \
  bash -c "curl -sf http://$METRICS/metrics | grep -q '^mig_controller_heartbeats_received_total'"

# The agent's metrics, once connected.
"$AGENT" --vm-id=real-1 --pool-id=p --controller-grpc="$GRPC" --metrics-listen=127.0.0.1:0 \
  --heartbeat-interval=200ms --log-format=text 2>"$WORK/agent.log" &
pids+=($!)
for _ in $(seq 1 500); do grep -q "metrics on" "$WORK/agent.log" && break; sleep 0.02; done
APORT=$(sed -n 's/.*metrics on .* (port \([0-9]*\)).*/\1/p' "$WORK/agent.log" | head -1)
for _ in $(seq 1 500); do
  curl -sf "http://127.0.0.1:$APORT/metrics" | grep -q '^miglet_stream_connected 1' && break; sleep 0.02
done
check "promtool accepts the agent's /metrics" \
  bash -c "curl -sf http://127.0.0.1:$APORT/metrics | tee /dev/stderr | promtool check metrics"
check "agent reports its stream connected" \
  bash -c "curl -sf http://127.0.0.1:$APORT/metrics | grep -q '^miglet_stream_connected 1'"

# Command line behaviour.
check "mig-controller --help" bash -c "'$CONTROLLER' --help | grep -q -- '--grpc-port'"
check "miglet --version" bash -c "'$AGENT' --version | grep -q '^miglet '"
printf 'grpc:\n  port: 70000\n' >"$WORK/bad.yaml"
check "bad controller config names key and line, exits 2" \
  bash -c "'$CONTROLLER' --config='$WORK/bad.yaml'; [[ \$? == 2 ]]"
check "bad controller config message" \
  bash -c "'$CONTROLLER' --config='$WORK/bad.yaml' 2>&1 | grep -q 'bad.yaml:2: grpc.port: 70000 is out of range'"
check "miglet without vm_id exits 2 naming it" \
  bash -c "'$AGENT' --pool-id=p --controller-grpc=a:1 2>&1 | grep -q 'vm_id: is required'; '$AGENT' --pool-id=p --controller-grpc=a:1 2>/dev/null; [[ \$? == 2 ]]"
check "unknown flag exits 2" bash -c "'$AGENT' --bogus 2>/dev/null; [[ \$? == 2 ]]"

echo "$passed passed, $failed failed"
((failed == 0))
