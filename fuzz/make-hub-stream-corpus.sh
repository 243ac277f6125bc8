#!/usr/bin/env bash
# Writes fuzz/corpus/hub_stream/: realistic agent streams (the wire contract's messages in the
# order agents send them), each message in protobuf's text format encoded with protoc and
# framed with its varint length. Re-run after changing the streams below.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=$ROOT/fuzz/corpus/hub_stream
mkdir -p "$OUT"

# stream NAME MESSAGE... : one corpus file, each MESSAGE a MIGletMessage in text format.
stream() {
  local name=$1
  shift
  : >"$OUT/$name"
  for m in "$@"; do
    protoc --encode=miglet.commands.MIGletMessage -I "$ROOT/proto" \
      miglet/commands/commands.proto <<<"$m" >/tmp/hub-seed.$$
    python3 -c '
import sys
b = open(sys.argv[1], "rb").read()
n, out = len(b), bytearray()
while True:
    x = n & 0x7F
    n >>= 7
    out.append(x | (0x80 if n else 0))
    if not n: break
sys.stdout.buffer.write(bytes(out) + b)' /tmp/hub-seed.$$ >>"$OUT/$name"
  done
  rm -f /tmp/hub-seed.$$
}

CONNECT='connect { vm_id: "vm-a1" pool_id: "pool-gpu" org_id: "acme" version: "0.1.0" }'
HB_IDLE='heartbeat { vm_id: "vm-a1" pool_id: "pool-gpu" miglet_state: "idle" timestamp: 1800000000
  health { cpu_usage_percent: 12.5 memory_usage_percent: 40 disk_usage_percent: 71.25
           memory_total_bytes: 17179869184 memory_used_bytes: 6871947673
           disk_total_bytes: 107374182400 disk_used_bytes: 76235669504 }
  runner_state { state: "idle" configured: true runner_name: "vm-a1" labels: "self-hosted" labels: "gpu" } }'
HB_JOB='heartbeat { vm_id: "vm-a1" miglet_state: "job_running"
  runner_state { state: "running" configured: true runner_name: "vm-a1" labels: "gpu" }
  current_job { job_id: "2001" run_id: "9001" repository: "acme/app" branch: "main"
                commit: "0123abc" status: "running" started_at: 1800000100 } }'

stream connect_only "$CONNECT"
stream connect_heartbeat "$CONNECT" "$HB_IDLE"
stream job_lifecycle "$CONNECT" "$HB_IDLE" \
  'command_ack { command_id: "cmd-1" success: true message: "draining" }' \
  'event { type: "runner_registered" vm_id: "vm-a1" data { key: "runner_name" value: "vm-a1" } timestamp: 1800000050 }' \
  'event { type: "job_started" data { key: "job_id" value: "2001" } data { key: "run_id" value: "9001" } }' \
  "$HB_JOB" \
  'event { type: "job_completed" data { key: "job_id" value: "2001" } data { key: "success" value: "true" } }' \
  'event { type: "drained" }' \
  'command_ack { command_id: "cmd-2" success: true result { key: "exit" value: "0" } }' \
  'event { type: "vm_shutting_down" }'
stream ack_unknown_and_duplicate "$CONNECT" \
  'command_ack { command_id: "cmd-9" success: false message: "unknown command type" }' \
  'command_ack { command_id: "cmd-1" success: true }' \
  'command_ack { command_id: "cmd-1" success: true }'
stream no_connect_first "$HB_IDLE" "$CONNECT"
stream connect_twice "$CONNECT" "$CONNECT" "$HB_IDLE"
stream invalid_connect 'connect { vm_id: "vm a1/../x" pool_id: "" }' \
  'connect { vm_id: "vm-b2" pool_id: "pool-cpu" }' 'heartbeat { miglet_state: "ready" }'
stream reconnect "$CONNECT" "$HB_IDLE" 'error { code: "shutting_down" message: "bye" }' \
  '' "$CONNECT" 'heartbeat { miglet_state: "ready" }'
stream two_agents "$CONNECT" "$HB_IDLE" \
  'connect { vm_id: "vm-b2" pool_id: "pool-cpu" version: "0.1.0" }' \
  'event { type: "error" data { key: "reason" value: "disk full" } }'
stream silent_agent "$CONNECT" 'error { code: "x" }' 'error { code: "x" }' 'error { code: "x" }' \
  'error { code: "x" }' 'error { code: "x" }' 'error { code: "x" }' "$HB_IDLE"
echo "wrote $(ls "$OUT" | wc -l) streams to $OUT"
