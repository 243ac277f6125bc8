#!/usr/bin/env bash
# The one-node part of the local cluster (../shared/design/local-cluster.md has the checked
# facts behind every setting here). up.sh --node and down.sh call it; run by hand only to read
# its help. Subcommands, in the order they run:
#   net-up    the node's bridge (10.244.0.1/24), the Service route, the FORWARD rules, and the
#             sysctls that need changing; the host's values are saved first (host.env) so
#             net-down puts back exactly what was there
#   up        containerd (its own instance), the pause and CoreDNS images, the kubelet,
#             kube-scheduler, kube-proxy; waits for the Node Ready, kube-proxy's rules and
#             DNS answering through its Service
#   down      kubelet, scheduler, kube-proxy stopped; every pod sandbox removed; containerd and
#             its shims stopped; mounts under the state dir and the kubepods cgroups removed
#   net-down  after the apiserver stopped (it dials 10.244.0.1 while stopping): bridge, route,
#             FORWARD rules, kube-proxy's nft tables, sysctls and host paths as they were
# Addresses: all inside 10.244.0.0/16 on the bridge (pods 10.244.0.0/24, Services
# 10.244.128.0/24: kubernetes = .1, DNS = .10). One such cluster per machine.
set -euo pipefail
shopt -s inherit_errexit
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

NODE=$CLUSTER_DIR/node
PKI=$CLUSTER_DIR/pki
LOGS=$CLUSTER_DIR/logs
HOST_ENV=$NODE/host.env
SOCK=$NODE/containerd/containerd.sock
TIMEOUT=${MIGLET_CLUSTER_TIMEOUT:-90}
COREDNS_IMAGE=$NODE_IMAGE_PREFIX/coredns:v1.15.0
PAUSE_IMAGE=$NODE_IMAGE_PREFIX/pause:3.10
# Sysctls the kubelet sets at start (and net-up sets): saved before, restored at the end.
SYSCTLS=(vm.overcommit_memory kernel.panic kernel.panic_on_oops net.ipv4.ip_forward
         net.ipv4.conf.all.send_redirects)
# Paths outside the state dir the kubelet, containerd's shims or the CNI plugins create.
HOST_PATHS=(/var/log/containers /var/log/pods /var/lib/kubelet /var/lib/cni /run/containerd
            /etc/cni /opt/cni)

log() { echo "node: $*"; }
die() { echo "node: ERROR: $*" >&2; exit 1; }

ctr_() { ctr --address "$SOCK" -n k8s.io "$@"; }
crictl_() { "$MIGLET_TOOLS_BIN/crictl" --runtime-endpoint "unix://$SOCK" --image-endpoint "unix://$SOCK" --timeout 20s "$@"; }

# ---------------------------------------------------------------- net-up / net-down
net_up() {
  command -v ip >/dev/null || die "ip (iproute2) is needed"
  command -v iptables >/dev/null || die "iptables is needed"
  mkdir -p "$NODE"
  if [[ ! -f $HOST_ENV ]]; then
    # What the host had, before anything of ours touched it.
    {
      for s in "${SYSCTLS[@]}"; do echo "sysctl $s $(sysctl -n "$s")"; done
      for p in "${HOST_PATHS[@]}"; do [[ -e $p ]] && echo "path $p"; done
      echo "end"
    } > "$HOST_ENV.tmp"
    mv "$HOST_ENV.tmp" "$HOST_ENV"
  fi
  if ! ip link show "$NODE_BRIDGE" >/dev/null 2>&1; then
    ip link add "$NODE_BRIDGE" type bridge
    log "created bridge $NODE_BRIDGE"
  fi
  ip addr replace "$NODE_IP/24" dev "$NODE_BRIDGE"
  ip link set "$NODE_BRIDGE" up
  ip route replace "$NODE_SERVICE_CIDR" dev "$NODE_BRIDGE" src "$NODE_IP"
  # Service IPs are DNATed on the host and sent back out the bridge.
  sysctl -qw net.ipv4.ip_forward=1
  # With redirects on, a client of a Service without endpoints hangs until its timeout.
  sysctl -qw net.ipv4.conf.all.send_redirects=0 "net.ipv4.conf.$NODE_BRIDGE.send_redirects=0"
  # Docker's FORWARD policy is DROP and bridged frames pass through it.
  for dir in -i -o; do
    iptables -C FORWARD "$dir" "$NODE_BRIDGE" -j ACCEPT -m comment --comment miglet-node 2>/dev/null ||
      iptables -I FORWARD 1 "$dir" "$NODE_BRIDGE" -j ACCEPT -m comment --comment miglet-node
  done
}

net_down() {
  local s v p kind
  for dir in -i -o; do
    while iptables -D FORWARD "$dir" "$NODE_BRIDGE" -j ACCEPT -m comment --comment miglet-node 2>/dev/null; do :; done
  done
  # kube-proxy --cleanup ran in down; these are what it may have left.
  nft delete table ip kube-proxy 2>/dev/null || true
  nft delete table ip6 kube-proxy 2>/dev/null || true
  ip route del "$NODE_SERVICE_CIDR" dev "$NODE_BRIDGE" 2>/dev/null || true
  if ip link show "$NODE_BRIDGE" >/dev/null 2>&1; then
    ip link del "$NODE_BRIDGE"
    log "deleted bridge $NODE_BRIDGE"
  fi
  # Veths the CNI plugin made are gone with their netns; any left over are named veth*, on
  # no bridge, with the pod's address range: none is expected.
  if [[ -f $HOST_ENV ]]; then
    declare -A had=()
    while read -r kind s v; do
      case $kind in
        sysctl) sysctl -qw "$s=$v" 2>/dev/null || echo "node: could not restore $s=$v" >&2 ;;
        path) had[$s]=1 ;;
      esac
    done < "$HOST_ENV"
    for p in "${HOST_PATHS[@]}"; do
      [[ -n ${had[$p]:-} || ! -e $p ]] && continue
      rm -rf -- "$p"
      log "removed $p (made by the node)"
    done
    rm -f "$HOST_ENV"
  fi
}

# ---------------------------------------------------------------- images
# Images cannot be pulled here: the sandbox image is upstream's pause.c (inside the
# k8s.io/kubernetes module) built static; CoreDNS is the static binary build-tools.sh made.
# Both become images with docker import, then go into the node's containerd.
image_present() { ctr_ images ls -q 2>/dev/null | grep -qxF "$1"; }

import_tar() { # file
  ctr_ images import "$1" >/dev/null
}

node_images() {
  local work=$NODE/images dir go
  mkdir -p "$work"
  if ! image_present "$PAUSE_IMAGE"; then
    go=$(command -v go || echo /usr/local/go/bin/go)
    dir=$(cd "$MIGLET_CLUSTER_HACK/tools/node" && "$go" mod download -json k8s.io/kubernetes |
          python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
    [[ -f $dir/build/pause/linux/pause.c ]] || die "pause.c not found under $dir"
    mkdir -p "$work/pause"
    gcc -Os -static -Wall -DVERSION=v3.10-miglet -o "$work/pause/pause" "$dir/build/pause/linux/pause.c"
    strip "$work/pause/pause"
    tar -C "$work/pause" -c pause | docker import -c 'ENTRYPOINT ["/pause"]' -c 'USER 65535:65535' - "$PAUSE_IMAGE" >/dev/null
    docker save "$PAUSE_IMAGE" -o "$work/pause.tar"
    import_tar "$work/pause.tar"
    rm -rf "$work/pause" "$work/pause.tar"
    log "pause image $PAUSE_IMAGE built from k8s.io/kubernetes's pause.c and imported"
  fi
  if ! image_present "$COREDNS_IMAGE"; then
    [[ -x $MIGLET_TOOLS_BIN/coredns ]] || die "$MIGLET_TOOLS_BIN/coredns missing: hack/cluster/build-tools.sh coredns"
    mkdir -p "$work/coredns"
    cp "$MIGLET_TOOLS_BIN/coredns" "$work/coredns/coredns"
    tar -C "$work/coredns" -c coredns | docker import -c 'ENTRYPOINT ["/coredns"]' - "$COREDNS_IMAGE" >/dev/null
    docker save "$COREDNS_IMAGE" -o "$work/coredns.tar"
    import_tar "$work/coredns.tar"
    rm -rf "$work/coredns" "$work/coredns.tar"
    log "CoreDNS image $COREDNS_IMAGE imported"
  fi
}

# ---------------------------------------------------------------- certificates, configs

# Writes stdin to FILE only when it differs: kube-proxy exits when its config file is written
# (even with the same content), so up.sh run again over a running node must leave it alone.
put() { # file
  cat > "$1.tmp"
  if cmp -s "$1.tmp" "$1"; then rm -f "$1.tmp"; else mv -f "$1.tmp" "$1"; fi
}

write_configs() {
  mkdir -p "$NODE"/{containerd,cni/net.d,cni/ipam,kubelet,pod-logs,volume-plugins}
  issue ca kubelet "/O=system:nodes/CN=system:node:$NODE_NAME" clientAuth
  issue ca kubelet-serving "/O=system:nodes/CN=system:node:$NODE_NAME" serverAuth "IP:$NODE_IP,DNS:$NODE_NAME"
  issue ca kube-scheduler "/CN=system:kube-scheduler" clientAuth
  issue ca kube-proxy "/CN=system:kube-proxy" clientAuth
  write_kubeconfig "$NODE/kubelet.kubeconfig" "system:node:$NODE_NAME" kubelet
  write_kubeconfig "$NODE/kube-scheduler.kubeconfig" system:kube-scheduler kube-scheduler
  write_kubeconfig "$NODE/kube-proxy.kubeconfig" system:kube-proxy kube-proxy

  put "$NODE/containerd/config.toml" <<EOF
# The node's own containerd: its root, state and socket under the cluster's state dir, so
# Docker's containerd is untouched.
version = 2
root = "$NODE/containerd/root"
state = "$NODE/containerd/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.internal.v1.tracing", "io.containerd.tracing.processor.v1.otlp"]
[grpc]
  address = "$SOCK"
[ttrpc]
  address = "$SOCK.ttrpc"
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "$NODE/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  # Root here lacks CAP_SYS_RESOURCE: nothing may lower an oom_score_adj (the one trap).
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  disable_apparmor = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$NODE/cni/net.d"
EOF

  put "$NODE/cni/net.d/10-miglet.conflist" <<EOF
{
  "cniVersion": "0.4.0",
  "name": "miglet",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$NODE_BRIDGE",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "$NODE/cni/ipam",
        "ranges": [[{"subnet": "$NODE_POD_CIDR", "gateway": "$NODE_IP"}]],
        "routes": [{"dst": "$NODE_CLUSTER_CIDR"}]
      }
    },
    {"type": "loopback"}
  ]
}
EOF

  put "$NODE/kubelet/config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $NODE_IP
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
containerRuntimeEndpoint: unix://$SOCK
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
# Root here cannot lower an oom_score_adj; the kubelet must not try for itself either.
oomScoreAdj: 0
# Leave the host's iptables alone.
makeIPTablesUtilChains: false
resolvConf: ""
clusterDNS: [$NODE_DNS_IP]
clusterDomain: cluster.local
tlsCertFile: $PKI/kubelet-serving.crt
tlsPrivateKeyFile: $PKI/kubelet-serving.key
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $PKI/ca.crt}
authorization:
  mode: Webhook
# Imported images cannot be pulled back: never garbage-collect them, never evict for disk.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard:
  memory.available: 1Mi
  nodefs.available: 1%
  nodefs.inodesFree: 1%
  imagefs.available: 1%
podLogsDir: $NODE/pod-logs
volumePluginDir: $NODE/volume-plugins
serializeImagePulls: false
maxPods: 110
EOF

  put "$NODE/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: nftables
clientConnection:
  kubeconfig: $NODE/kube-proxy.kubeconfig
hostnameOverride: $NODE_NAME
bindAddress: $NODE_IP
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
clusterCIDR: $NODE_CLUSTER_CIDR
detectLocalMode: ClusterCIDR
nodePortAddresses: [$NODE_IP/32]
oomScoreAdj: 0
# Every conntrack value 0: kube-proxy changes no sysctl.
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
  udpTimeout: 0s
  udpStreamTimeout: 0s
EOF
}

write_kubeconfig() { # file user cert
  local b64='base64 -w0'
  put "$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: miglet-local
  cluster:
    server: https://$NODE_IP:$MIGLET_APISERVER_PORT
    certificate-authority-data: $($b64 < "$PKI/ca.crt")
users:
- name: $2
  user:
    client-certificate-data: $($b64 < "$PKI/$3.crt")
    client-key-data: $($b64 < "$PKI/$3.key")
contexts:
- name: miglet-local
  context: {cluster: miglet-local, user: $2}
current-context: miglet-local
EOF
  chmod 600 "$1"
}

# ---------------------------------------------------------------- processes
start() { # name binary args...
  local name=$1 bin=$2 pid; shift 2
  if pid=$(running_pid "$name"); then
    log "$name already running (pid $pid)"
    return
  fi
  echo "=== $(date -Is) starting $name" >> "$LOGS/$name.log"
  # shellcheck disable=SC2016 # $$ and $@ belong to the inner shell
  setsid bash -c 'echo $$ > "$0"; exec "$@"' "$(pid_file "$name")" \
    "$bin" "$@" >> "$LOGS/$name.log" 2>&1 < /dev/null &
  log "started $name (log: $LOGS/$name.log)"
}

fail() { # component message
  echo "node: ERROR: $2" >&2
  echo "----- last 40 lines of $LOGS/$1.log -----" >&2
  tail -n 40 "$LOGS/$1.log" >&2 || true
  echo "-----" >&2
  echo "node: stop everything with: $MIGLET_CLUSTER_HACK/down.sh --keep  (keeps the logs)" >&2
  exit 1
}

t0=$SECONDS
wait_for() { # component description command...
  local name=$1 what=$2 deadline=$((SECONDS + TIMEOUT)); shift 2
  until "$@" >/dev/null 2>&1; do
    running_pid "$name" >/dev/null || { sleep 0.5; running_pid "$name" >/dev/null ||
      fail "$name" "$name exited while waiting for $what"; }
    ((SECONDS < deadline)) || fail "$name" "$what not reached after ${TIMEOUT}s"
    sleep 0.3
  done
  log "$what ok after $((SECONDS - t0))s"
}

k() { kubectl --kubeconfig "$CLUSTER_DIR/kubeconfig" "$@"; }

node_ready() {
  [[ $(k get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}') == True ]]
}
service_rule() { nft get element ip kube-proxy service-ips "{ $1 . $2 . $3 }"; }

coredns_manifest() {
  cat <<EOF
apiVersion: v1
kind: ServiceAccount
metadata: {name: coredns, namespace: kube-system}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: "system:coredns"}
rules:
- apiGroups: [""]
  resources: [endpoints, services, pods, namespaces]
  verbs: [list, watch]
- apiGroups: [discovery.k8s.io]
  resources: [endpointslices]
  verbs: [list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: "system:coredns"}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "system:coredns"}
subjects: [{kind: ServiceAccount, name: coredns, namespace: kube-system}]
---
apiVersion: v1
kind: ConfigMap
metadata: {name: coredns, namespace: kube-system}
data:
  # The cluster's names only; nothing is forwarded (no traffic leaves the node's addresses).
  Corefile: |
    cluster.local:53 in-addr.arpa:53 ip6.arpa:53 {
        errors
        ready :8181
        health :8080
        kubernetes cluster.local in-addr.arpa ip6.arpa {
            pods insecure
        }
        cache 30
    }
    .:53 {
        errors
        template ANY ANY {
            rcode NXDOMAIN
        }
    }
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: coredns, namespace: kube-system, labels: {k8s-app: kube-dns}}
spec:
  replicas: 1
  selector: {matchLabels: {k8s-app: kube-dns}}
  template:
    metadata: {labels: {k8s-app: kube-dns}}
    spec:
      serviceAccountName: coredns
      dnsPolicy: Default
      priorityClassName: system-cluster-critical
      # kubectl drain of the one node must not take DNS away.
      tolerations:
      - {key: node.kubernetes.io/unschedulable, operator: Exists, effect: NoSchedule}
      containers:
      - name: coredns
        image: $COREDNS_IMAGE
        imagePullPolicy: Never
        args: [-conf, /etc/coredns/Corefile]
        ports:
        - {name: dns, containerPort: 53, protocol: UDP}
        - {name: dns-tcp, containerPort: 53, protocol: TCP}
        readinessProbe:
          httpGet: {path: /ready, port: 8181}
          periodSeconds: 2
        livenessProbe:
          httpGet: {path: /health, port: 8080}
        resources:
          requests: {cpu: 50m, memory: 32Mi}
          limits: {memory: 128Mi}
        securityContext:
          allowPrivilegeEscalation: false
          readOnlyRootFilesystem: true
          capabilities: {drop: [ALL], add: [NET_BIND_SERVICE]}
        volumeMounts:
        - {name: config, mountPath: /etc/coredns, readOnly: true}
      volumes:
      - name: config
        configMap: {name: coredns}
---
apiVersion: v1
kind: Service
metadata: {name: kube-dns, namespace: kube-system, labels: {k8s-app: kube-dns}}
spec:
  clusterIP: $NODE_DNS_IP
  selector: {k8s-app: kube-dns}
  ports:
  - {name: dns, port: 53, protocol: UDP}
  - {name: dns-tcp, port: 53, protocol: TCP}
EOF
}

dns_answers() {
  # The kubernetes Service's name, asked of the DNS Service IP from the host.
  local out
  out=$(timeout 3 python3 - "$NODE_DNS_IP" <<'PY'
import socket, struct, sys
q = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"
for part in b"kubernetes.default.svc.cluster.local".split(b"."):
    q += bytes([len(part)]) + part
q += b"\x00\x00\x01\x00\x01"
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(1)
s.sendto(q, (sys.argv[1], 53))
r = s.recv(512)
print("rcode", r[3] & 15, "answers", struct.unpack(">H", r[6:8])[0])
PY
) || return 1
  [[ $out == "rcode 0 answers 1" ]]
}

node_up() {
  for b in kubelet kube-scheduler kube-proxy crictl coredns; do
    [[ -x $MIGLET_TOOLS_BIN/$b ]] || die "$MIGLET_TOOLS_BIN/$b missing: hack/cluster/build-tools.sh node crictl coredns"
  done
  for b in containerd containerd-shim-runc-v2 runc ctr nft; do
    command -v "$b" >/dev/null || die "$b is needed (scripts/install-deps.sh installs it)"
  done
  [[ -x /usr/lib/cni/bridge && -x /usr/lib/cni/host-local && -x /usr/lib/cni/loopback ]] ||
    die "CNI plugins missing in /usr/lib/cni (apt-get install containernetworking-plugins)"
  docker info >/dev/null 2>&1 || die "a Docker engine is needed to make the node's images"
  # shellcheck disable=SC1090
  source "$PORTS_FILE"
  write_configs

  start containerd "$(command -v containerd)" --config "$NODE/containerd/config.toml"
  wait_for containerd "containerd" ctr --address "$SOCK" version
  node_images

  start kubelet "$MIGLET_TOOLS_BIN/kubelet" --config="$NODE/kubelet/config.yaml" \
    --kubeconfig="$NODE/kubelet.kubeconfig" --root-dir="$NODE/kubelet" \
    --cert-dir="$NODE/kubelet/pki" --node-ip="$NODE_IP" --hostname-override="$NODE_NAME" \
    ${MIGLET_KUBELET_ARGS:-}
  start kube-scheduler "$MIGLET_TOOLS_BIN/kube-scheduler" \
    --kubeconfig="$NODE/kube-scheduler.kubeconfig" \
    --authentication-kubeconfig="$NODE/kube-scheduler.kubeconfig" \
    --authorization-kubeconfig="$NODE/kube-scheduler.kubeconfig" \
    --bind-address=127.0.0.1 --secure-port="$MIGLET_SCHEDULER_PORT" --leader-elect=false
  # A kube-proxy starting over tables a previous one left (it died, or the node was stopped
  # with --keep) synced partially and left a Service's endpoint chain empty: start clean.
  if ! running_pid kube-proxy >/dev/null; then
    "$MIGLET_TOOLS_BIN/kube-proxy" --cleanup >> "$LOGS/kube-proxy.log" 2>&1 || true
  fi
  start kube-proxy "$MIGLET_TOOLS_BIN/kube-proxy" --config="$NODE/kube-proxy.yaml"
  wait_for kubelet "Node $NODE_NAME Ready" node_ready
  wait_for kube-proxy "kube-proxy's rule for the kubernetes Service" service_rule "$NODE_SERVICE_IP" tcp 443

  coredns_manifest | k apply -f - >/dev/null
  wait_for kube-proxy "kube-proxy's rule for the DNS Service" service_rule "$NODE_DNS_IP" udp 53
  wait_for kubelet "DNS answering through its Service" dns_answers
}

# ---------------------------------------------------------------- down
stop_pid() { # name
  local pid
  pid=$(running_pid "$1") || { rm -f "$(pid_file "$1")"; return 0; }
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 150; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$(pid_file "$1")"
  log "stopped $1 (pid $pid)"
}

node_down() {
  stop_pid kubelet
  stop_pid kube-scheduler
  if running_pid containerd >/dev/null && [[ -x $MIGLET_TOOLS_BIN/crictl ]]; then
    crictl_ rmp -fa >/dev/null 2>&1 || true
  fi
  if [[ -x $MIGLET_TOOLS_BIN/kube-proxy ]] && running_pid kube-proxy >/dev/null; then
    stop_pid kube-proxy
    "$MIGLET_TOOLS_BIN/kube-proxy" --cleanup >> "$LOGS/kube-proxy.log" 2>&1 || true
  fi
  stop_pid kube-proxy
  stop_pid containerd
  # Shims whose containerd is ours (they name our socket's address on their command line).
  local p
  for p in $(pgrep -f "containerd-shim-runc-v2 .*-address $SOCK" || true); do
    kill -KILL "$p" 2>/dev/null || true
  done
  # Everything mounted under the node's state (overlay rootfs, netns, shm, tmpfs volumes),
  # deepest first.
  if [[ -d $NODE ]]; then
    awk -v d="$NODE/" 'index($2, d) == 1 { print $2 }' /proc/self/mounts | sort -r |
      while read -r m; do umount -l "$m" 2>/dev/null || true; done
  fi
  # The kubelet's cgroups (cgroup v1: one tree per controller), deepest first.
  local c
  for c in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/kubepods; do
    [[ -d $c ]] || continue
    find "$c" -depth -type d -exec rmdir {} + 2>/dev/null || true
  done
}

case ${1:-} in
  net-up) net_up ;;
  up) node_up ;;
  down) node_down ;;
  net-down) net_down ;;
  -h|--help|"") sed -n '2,18p' "$0" ;;
  *) die "unknown subcommand: $1 (net-up, up, down, net-down)" ;;
esac
