#!/usr/bin/env bash
# Stops the control plane started by up.sh (by pid: TERM, up to MIGLET_CLUSTER_STOP_WAIT
# seconds, then KILL) and deletes its state dir, unless --keep (or MIGLET_CLUSTER_KEEP=1)
# is given, which keeps certs, etcd data and logs for the next up.sh or for reading.
# Only a dir up.sh made (it holds .miglet-cluster) is ever deleted. A one-node cluster
# (up.sh --node) is taken down around it: node.sh down (kubelet, pods, containerd, mounts,
# cgroups) first, node.sh net-down (bridge, rules, sysctls, host paths) after the apiserver
# stopped; the node's state (images in its containerd) is kept with --keep like the rest.
#
# Usage: hack/cluster/down.sh [--keep]
# Env:   MIGLET_CLUSTER_DIR (default <repo>/build/cluster), MIGLET_CLUSTER_KEEP,
#        MIGLET_CLUSTER_STOP_WAIT (default 15)
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

keep=${MIGLET_CLUSTER_KEEP:-0}
for arg in "$@"; do
  case $arg in
    --keep) keep=1 ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "down: unknown argument: $arg" >&2; exit 2 ;;
  esac
done
STOP_WAIT=${MIGLET_CLUSTER_STOP_WAIT:-15}

# A zombie counts as gone: whoever adopted it may never reap it (PID 1 in a container).
alive() {
  local state
  kill -0 "$1" 2>/dev/null || return 1
  state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
  [[ $state != Z ]]
}

if [[ ! -d $CLUSTER_DIR ]]; then
  echo "down: nothing at $CLUSTER_DIR"
  exit 0
fi

node=0
[[ -f $NODE_MARKER ]] && node=1
((node)) && "$MIGLET_CLUSTER_HACK/node.sh" down

for c in "${COMPONENTS[@]}"; do
  if ! pid=$(running_pid "$c"); then
    rm -f "$(pid_file "$c")"
    continue
  fi
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < STOP_WAIT * 10; i++)); do
    alive "$pid" || break
    sleep 0.1
  done
  if alive "$pid"; then
    echo "down: $c (pid $pid) still running after ${STOP_WAIT}s, sending KILL"
    kill -KILL "$pid" 2>/dev/null || true
    while alive "$pid"; do sleep 0.1; done
  fi
  rm -f "$(pid_file "$c")"
  echo "down: stopped $c (pid $pid)"
done

((node)) && "$MIGLET_CLUSTER_HACK/node.sh" net-down

if ((keep)); then
  echo "down: kept $CLUSTER_DIR"
elif [[ -f $MARKER ]]; then
  rm -rf -- "$CLUSTER_DIR"
  echo "down: removed $CLUSTER_DIR"
else
  echo "down: $CLUSTER_DIR was not made by up.sh (no .miglet-cluster); not deleting it" >&2
fi
