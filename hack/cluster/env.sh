# Source me (bash):  source hack/cluster/env.sh
# Exports KUBECONFIG (the admin kubeconfig up.sh writes), ETCDCTL_ENDPOINTS (the
# cluster's etcd, plain http on 127.0.0.1), MIGLET_*_PORT, and puts build/tools/bin
# first on PATH, so kubectl, helm and etcdctl talk to / come from the local control plane.
# ETCDCTL_API is left alone: etcdctl 3.6 speaks only v3 and warns when it is set.
# Honors MIGLET_CLUSTER_DIR and MIGLET_TOOLS_DIR like up.sh. Safe to source again.
# shellcheck shell=bash

# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

export KUBECONFIG=$CLUSTER_DIR/kubeconfig
case ":$PATH:" in
  *":$MIGLET_TOOLS_BIN:"*) ;;
  *) export PATH=$MIGLET_TOOLS_BIN:$PATH ;;
esac
if [[ -f $PORTS_FILE ]]; then
  # shellcheck disable=SC1090
  source "$PORTS_FILE"
  export MIGLET_ETCD_PORT MIGLET_ETCD_PEER_PORT MIGLET_APISERVER_PORT MIGLET_KCM_PORT
  export ETCDCTL_ENDPOINTS=http://127.0.0.1:$MIGLET_ETCD_PORT
else
  echo "env.sh: $PORTS_FILE not found; run hack/cluster/up.sh first (ETCDCTL_ENDPOINTS not set)" >&2
fi
