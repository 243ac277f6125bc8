#!/usr/bin/env bash
# Starts a real, local Kubernetes control plane for tests: etcd, kube-apiserver and
# kube-controller-manager (no scheduler, no kubelet: pods stay Pending), all on
# 127.0.0.1 with free ports, state under one directory:
#   <dir>/kubeconfig     admin kubeconfig (user in system:masters), certs embedded
#   <dir>/ports.env      MIGLET_ETCD_PORT, MIGLET_APISERVER_PORT, ... (shell syntax)
#   <dir>/pki/           CA, serving and client certs, service-account key pair
#   <dir>/logs/          one log per component;  <dir>/run/  pid files
#   <dir>/etcd/          etcd data
# Idempotent: components already running are left alone; exits 0 once all are healthy.
#
# Env: MIGLET_CLUSTER_DIR       state dir (default <repo>/build/cluster)
#      MIGLET_CLUSTER_TIMEOUT   seconds to wait for each component (default 90)
#      MIGLET_CLUSTER_SKIP_BUILD=1  do not run build-tools.sh first
#      MIGLET_APISERVER_PORT, MIGLET_ETCD_PORT, MIGLET_ETCD_PEER_PORT, MIGLET_KCM_PORT
#                               fixed ports instead of free ones picked at random
#      MIGLET_ETCD_ARGS, MIGLET_APISERVER_ARGS, MIGLET_KCM_ARGS, MIGLET_KUBELET_ARGS
#                               extra flags (word-split), e.g. --etcd-compaction-interval=0
#
# --node (or MIGLET_CLUSTER_NODE=1): a one-node cluster (make cluster-up): the node's bridge
# first (node.sh net-up), the apiserver on the node's address 10.244.0.1 (not 127.0.0.1) with
# Services in 10.244.128.0/24, then containerd, kubelet, kube-scheduler, kube-proxy and CoreDNS
# (node.sh up). Needs root, a Docker engine (to make the node's images) and build-tools.sh
# node crictl coredns (run here unless MIGLET_CLUSTER_SKIP_BUILD=1).
set -euo pipefail
shopt -s inherit_errexit
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

node=${MIGLET_CLUSTER_NODE:-0}
for arg in "$@"; do
  case $arg in
    --node) node=1 ;;
    -h|--help) sed -n '2,26p' "$0"; exit 0 ;;
    *) echo "up: unknown argument: $arg" >&2; exit 2 ;;
  esac
done

TIMEOUT=${MIGLET_CLUSTER_TIMEOUT:-90}
if ((node)); then
  BIND=$NODE_IP
  SERVICE_CIDR=$NODE_SERVICE_CIDR
  SERVICE_IP=$NODE_SERVICE_IP
  # The kubernetes Service's endpoint is the advertised address: it must be a real one.
  RECONCILER=lease
else
  BIND=127.0.0.1
  SERVICE_CIDR=10.0.0.0/24
  SERVICE_IP=10.0.0.1
  # With lease the apiserver keeps logging that Endpoints may not hold a loopback address.
  RECONCILER=none
fi
PKI=$CLUSTER_DIR/pki
LOGS=$CLUSTER_DIR/logs

log() { echo "up: $*"; }
t0=$SECONDS
die() { echo "up: ERROR: $*" >&2; exit 1; }

if [[ ${MIGLET_CLUSTER_SKIP_BUILD:-0} != 1 ]]; then
  if ((node)); then
    "$MIGLET_CLUSTER_HACK/build-tools.sh" kube etcd node crictl coredns
  else
    "$MIGLET_CLUSTER_HACK/build-tools.sh" kube etcd
  fi
fi
for b in etcd kube-apiserver kube-controller-manager; do
  [[ -x $MIGLET_TOOLS_BIN/$b ]] || die "$MIGLET_TOOLS_BIN/$b missing: run hack/cluster/build-tools.sh"
done
command -v openssl >/dev/null || die "openssl is needed (apt-get install -y openssl)"
command -v curl >/dev/null || die "curl is needed (apt-get install -y curl)"

mkdir -p "$CLUSTER_DIR"/{pki,logs,run,etcd}
chmod 700 "$CLUSTER_DIR/etcd" "$PKI"
touch "$MARKER"
if ((node)); then
  [[ $(id -u) == 0 ]] || die "--node needs root (a bridge, containerd, the kubelet)"
  touch "$NODE_MARKER"
  # The bridge holds the address the apiserver binds: it comes first.
  "$MIGLET_CLUSTER_HACK/node.sh" net-up
fi

# ---------------------------------------------------------------- ports
port_busy() {
  if command -v ss >/dev/null; then
    [[ -n $(ss -Htan "sport = :$1") ]]
  else
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
  fi
}
# A random free port below the kernel's ephemeral range (32768+), so an outgoing
# connection cannot take it between now and the bind.
free_port() {
  local p i
  for ((i = 0; i < 200; i++)); do
    p=$((20000 + RANDOM % 12000))
    [[ " ${taken[*]} " == *" $p "* ]] && continue
    port_busy "$p" || { taken+=("$p"); echo "$p"; return; }
  done
  die "no free port found"
}

any_running=0
for c in "${COMPONENTS[@]}"; do running_pid "$c" >/dev/null && any_running=1; done

# Keep the saved ports while any component runs (they are bound to them) or while they
# are still free (a kept etcd data dir remembers its peer URL); otherwise pick new ones.
declare -A want=([MIGLET_ETCD_PORT]=${MIGLET_ETCD_PORT:-} [MIGLET_ETCD_PEER_PORT]=${MIGLET_ETCD_PEER_PORT:-}
                 [MIGLET_APISERVER_PORT]=${MIGLET_APISERVER_PORT:-} [MIGLET_KCM_PORT]=${MIGLET_KCM_PORT:-}
                 [MIGLET_SCHEDULER_PORT]=${MIGLET_SCHEDULER_PORT:-})
declare -A saved=()
if [[ -f $PORTS_FILE ]]; then
  while IFS='=' read -r k v; do [[ -n $k ]] && saved[$k]=$v; done < "$PORTS_FILE"
fi
taken=()
for k in MIGLET_ETCD_PORT MIGLET_ETCD_PEER_PORT MIGLET_APISERVER_PORT MIGLET_KCM_PORT MIGLET_SCHEDULER_PORT; do
  if [[ -n ${want[$k]} ]]; then
    :
  elif [[ -n ${saved[$k]:-} ]] && { ((any_running)) || ! port_busy "${saved[$k]}"; }; then
    want[$k]=${saved[$k]}
  else
    want[$k]=$(free_port)
  fi
  taken+=("${want[$k]}")
done
ETCD_PORT=${want[MIGLET_ETCD_PORT]}
ETCD_PEER_PORT=${want[MIGLET_ETCD_PEER_PORT]}
API_PORT=${want[MIGLET_APISERVER_PORT]}
KCM_PORT=${want[MIGLET_KCM_PORT]}
{
  echo "MIGLET_ETCD_PORT=$ETCD_PORT"
  echo "MIGLET_ETCD_PEER_PORT=$ETCD_PEER_PORT"
  echo "MIGLET_APISERVER_PORT=$API_PORT"
  echo "MIGLET_KCM_PORT=$KCM_PORT"
  echo "MIGLET_SCHEDULER_PORT=${want[MIGLET_SCHEDULER_PORT]}"
} > "$PORTS_FILE"

# ---------------------------------------------------------------- PKI
# Made once per state dir; kept across restarts so kubeconfigs and tokens stay valid.
new_ca() { # name CN
  [[ -s $PKI/$1.crt ]] && return
  openssl genrsa -out "$PKI/$1.key" 2048 2>/dev/null
  openssl req -x509 -new -key "$PKI/$1.key" -subj "/CN=$2" -days 3650 -sha256 \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" \
    -out "$PKI/$1.crt"
}
[[ -s $PKI/ca.crt ]] || log "creating CAs and certificates in $PKI"
new_ca ca miglet-local-ca
# A separate CA for the aggregation layer's request-header authentication (as kubeadm
# does); without it the delegated authenticators of the controller manager log errors.
new_ca front-proxy-ca miglet-local-front-proxy-ca
# A certificate made for the other mode lacks this mode's addresses: make it again.
if [[ -s $PKI/apiserver.crt ]] && ! openssl x509 -in "$PKI/apiserver.crt" -noout -ext subjectAltName |
     grep -q "IP Address:$SERVICE_IP\b"; then
  rm -f "$PKI/apiserver.crt"
fi
issue ca apiserver "/CN=kube-apiserver" serverAuth \
  "IP:127.0.0.1,IP:$BIND,IP:$SERVICE_IP,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
issue ca admin "/O=system:masters/CN=miglet-admin" clientAuth
# The user name the bootstrap RBAC policy grants the controller manager's roles to.
issue ca kube-controller-manager "/CN=system:kube-controller-manager" clientAuth
issue front-proxy-ca front-proxy-client "/CN=front-proxy-client" clientAuth
# The apiserver's identity towards kubelets (logs, exec, port-forward).
issue ca apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" clientAuth
if [[ ! -s $PKI/sa.key ]]; then
  openssl genrsa -out "$PKI/sa.key" 2048 2>/dev/null
  openssl rsa -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2>/dev/null
fi
chmod 600 "$PKI"/*.key

# ---------------------------------------------------------------- kubeconfigs
kubeconfig() { # file user cert-name
  local b64='base64 -w0'
  cat > "$1.tmp" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: miglet-local
  cluster:
    server: https://$BIND:$API_PORT
    certificate-authority-data: $($b64 < "$PKI/ca.crt")
users:
- name: $2
  user:
    client-certificate-data: $($b64 < "$PKI/$3.crt")
    client-key-data: $($b64 < "$PKI/$3.key")
contexts:
- name: miglet-local
  context:
    cluster: miglet-local
    user: $2
current-context: miglet-local
EOF
  chmod 600 "$1.tmp"
  mv -f "$1.tmp" "$1"
}
kubeconfig "$CLUSTER_DIR/kubeconfig" miglet-admin admin
kubeconfig "$CLUSTER_DIR/kube-controller-manager.kubeconfig" kube-controller-manager kube-controller-manager

# ---------------------------------------------------------------- processes
# Each runs in its own session so it outlives the caller's terminal or CI step, and
# writes its own pid before exec, so the pid file names the real process.
start() { # name args...
  local name=$1; shift
  local pid
  if pid=$(running_pid "$name"); then
    log "$name already running (pid $pid)"
    return
  fi
  echo "=== $(date -Is) starting $name" >> "$LOGS/$name.log"
  # shellcheck disable=SC2016 # $$ and $@ belong to the inner shell
  setsid bash -c 'echo $$ > "$0"; exec "$@"' "$(pid_file "$name")" \
    "$MIGLET_TOOLS_BIN/$name" "$@" >> "$LOGS/$name.log" 2>&1 < /dev/null &
  log "started $name (log: $LOGS/$name.log)"
}

fail() { # component message
  local pid
  echo "up: ERROR: $2" >&2
  echo "----- last 40 lines of $LOGS/$1.log -----" >&2
  tail -n 40 "$LOGS/$1.log" >&2 || true
  echo "-----" >&2
  pid=$(running_pid "$1") || echo "up: $1 is not running" >&2
  echo "up: stop what was started with: $MIGLET_CLUSTER_HACK/down.sh --keep  (keeps the logs)" >&2
  exit 1
}

# wait_for component description command...
wait_for() {
  local name=$1 what=$2 deadline=$((SECONDS + TIMEOUT)); shift 2
  until "$@" >/dev/null 2>&1; do
    running_pid "$name" >/dev/null || { sleep 0.5; running_pid "$name" >/dev/null ||
      fail "$name" "$name exited while waiting for $what"; }
    ((SECONDS < deadline)) || fail "$name" "$what not reached after ${TIMEOUT}s"
    sleep 0.3
  done
  log "$what ok after $((SECONDS - t0))s"
}

API="https://$BIND:$API_PORT"
admin_curl() { curl -sf --max-time 5 --cacert "$PKI/ca.crt" --cert "$PKI/admin.crt" --key "$PKI/admin.key" "$@"; }

# shellcheck disable=SC2086 # the *_ARGS variables are meant to be word-split
start etcd \
  --name=miglet --data-dir="$CLUSTER_DIR/etcd" \
  --listen-client-urls="http://127.0.0.1:$ETCD_PORT" --advertise-client-urls="http://127.0.0.1:$ETCD_PORT" \
  --listen-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
  --initial-cluster="miglet=http://127.0.0.1:$ETCD_PEER_PORT" \
  --unsafe-no-fsync=true \
  ${MIGLET_ETCD_ARGS:-}
wait_for etcd "etcd /health" curl -sf --max-time 2 "http://127.0.0.1:$ETCD_PORT/health"

# shellcheck disable=SC2086
start kube-apiserver \
  --bind-address="$BIND" --advertise-address="$BIND" --secure-port="$API_PORT" \
  --etcd-servers="http://127.0.0.1:$ETCD_PORT" \
  --tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" \
  --client-ca-file="$PKI/ca.crt" \
  --requestheader-client-ca-file="$PKI/front-proxy-ca.crt" --requestheader-allowed-names=front-proxy-client \
  --requestheader-username-headers=X-Remote-User --requestheader-group-headers=X-Remote-Group \
  --requestheader-extra-headers-prefix=X-Remote-Extra- \
  --proxy-client-cert-file="$PKI/front-proxy-client.crt" --proxy-client-key-file="$PKI/front-proxy-client.key" \
  --authorization-mode=Node,RBAC \
  --service-account-issuer=https://kubernetes.default.svc.cluster.local \
  --service-account-key-file="$PKI/sa.pub" --service-account-signing-key-file="$PKI/sa.key" \
  --service-cluster-ip-range="$SERVICE_CIDR" \
  --allow-privileged=true \
  --endpoint-reconciler-type="$RECONCILER" \
  --kubelet-client-certificate="$PKI/apiserver-kubelet-client.crt" \
  --kubelet-client-key="$PKI/apiserver-kubelet-client.key" \
  --kubelet-certificate-authority="$PKI/ca.crt" --kubelet-preferred-address-types=InternalIP \
  --profiling=false \
  ${MIGLET_APISERVER_ARGS:-}
wait_for kube-apiserver "kube-apiserver /readyz" admin_curl "$API/readyz"

# shellcheck disable=SC2086
start kube-controller-manager \
  --kubeconfig="$CLUSTER_DIR/kube-controller-manager.kubeconfig" \
  --authentication-kubeconfig="$CLUSTER_DIR/kube-controller-manager.kubeconfig" \
  --authorization-kubeconfig="$CLUSTER_DIR/kube-controller-manager.kubeconfig" \
  --bind-address=127.0.0.1 --secure-port="$KCM_PORT" --cert-dir="$CLUSTER_DIR/kcm-serving" \
  --leader-elect=false \
  --controllers='*' \
  --use-service-account-credentials=true \
  --root-ca-file="$PKI/ca.crt" \
  --service-account-private-key-file="$PKI/sa.key" \
  --cluster-signing-cert-file="$PKI/ca.crt" --cluster-signing-key-file="$PKI/ca.key" \
  --service-cluster-ip-range="$SERVICE_CIDR" \
  --profiling=false \
  ${MIGLET_KCM_ARGS:-}
wait_for kube-controller-manager "kube-controller-manager /healthz" \
  curl -skf --max-time 2 "https://127.0.0.1:$KCM_PORT/healthz"
# The serviceaccount controller making "default" in "default" shows the controllers
# run, and tests that do `kubectl create token default` need it.
wait_for kube-controller-manager "ServiceAccount default/default" \
  admin_curl "$API/api/v1/namespaces/default/serviceaccounts/default"

if ((node)); then
  "$MIGLET_CLUSTER_HACK/node.sh" up
  echo "up: node $NODE_NAME ready after $((SECONDS - t0))s (address $NODE_IP on $NODE_BRIDGE)"
fi

cat <<EOF
up: control plane ready: kube-apiserver $API, etcd http://127.0.0.1:$ETCD_PORT
  export KUBECONFIG=$CLUSTER_DIR/kubeconfig; kubectl get ns
  # or: source $MIGLET_CLUSTER_HACK/env.sh   (KUBECONFIG, ETCDCTL_ENDPOINTS, PATH)
  stop: $MIGLET_CLUSTER_HACK/down.sh [--keep]
EOF
