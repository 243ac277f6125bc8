#!/usr/bin/env bash
# The control plane the kube test cases share under ctest (the kube_shared fixture):
#   shared_cluster.sh up DIR     a fresh one in DIR (whatever an earlier run left is stopped
#                                and removed first)
#   shared_cluster.sh down DIR   stops it and removes DIR
# The tools must be built already (make kube-tools); this never builds them.
set -euo pipefail
HACK=$(cd "$(dirname "$0")/../../../hack/cluster" && pwd)
[[ $# -eq 2 ]] || { echo "usage: $0 up|down DIR" >&2; exit 2; }
export MIGLET_CLUSTER_DIR=$2 MIGLET_CLUSTER_SKIP_BUILD=1
case $1 in
  up)
    [[ -d $2 ]] && { "$HACK/down.sh" >/dev/null 2>&1 || true; rm -rf "$2"; }
    exec "$HACK/up.sh"
    ;;
  down)
    [[ -d $2 ]] || exit 0
    "$HACK/down.sh"
    rm -rf "$2"
    ;;
  *) echo "usage: $0 up|down DIR" >&2; exit 2 ;;
esac
