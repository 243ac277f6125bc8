#!/usr/bin/env bash
# The one-node cluster leaves the host as it found it: make cluster-up's `up.sh --node`, a pod
# of its own run to completion (so the CNI plugins, a sandbox, mounts and cgroups were all
# made), then down.sh; before and after, the host's iptables and nft rules, links, addresses,
# routes, mounts, the sysctls the node touches, the host paths it may create, kubepods cgroups
# and leftover processes must be the same.
# Usage: cluster_teardown_test.sh <repo>
# Skips (77) without root or a Docker engine, or when the node's tools are not built.
set -uo pipefail
REPO=$(cd "$1" && pwd)
TOOLS=$REPO/build/tools/bin
WORK=$(mktemp -d)
export MIGLET_CLUSTER_DIR=$WORK/cluster MIGLET_CLUSTER_SKIP_BUILD=1
export KUBECONFIG=$MIGLET_CLUSTER_DIR/kubeconfig PATH=$TOOLS:$PATH
passed=0 failed=0
ok() { echo "ok   $*"; passed=$((passed + 1)); }
fail() { echo "FAIL $*"; failed=$((failed + 1)); }
cleanup() { "$REPO/hack/cluster/down.sh" >/dev/null 2>&1; rm -rf "$WORK"; }

[[ $(id -u) == 0 ]] || { echo "SKIP: the one-node cluster needs root"; exit 77; }
docker info >/dev/null 2>&1 || { echo "SKIP: no Docker engine answers here (the node's images are made with it)"; exit 77; }
for b in kube-apiserver etcd kubelet kube-scheduler kube-proxy crictl coredns; do
  [[ -x $TOOLS/$b ]] || { echo "FAIL $TOOLS/$b missing (hack/cluster/build-tools.sh kube etcd node crictl coredns)"; exit 1; }
done
if ip link show miglet0 >/dev/null 2>&1; then
  echo "SKIP: another one-node cluster is up on this machine (bridge miglet0); make cluster-down first"
  exit 77
fi

# Everything of the host the node could change, as text; counters and orders that move on
# their own (packet counts, link state) are left out.
snapshot() {
  local s
  echo "## iptables"; iptables-save | grep -v '^#' | sed -E 's/\[[0-9]+:[0-9]+\]//'
  echo "## ip6tables"; ip6tables-save 2>/dev/null | grep -v '^#' | sed -E 's/\[[0-9]+:[0-9]+\]//'
  echo "## nft"; nft list ruleset 2>/dev/null | sed -E 's/counter packets [0-9]+ bytes [0-9]+/counter/'
  echo "## links"; ip -br link | awk '{print $1}' | sort
  echo "## addresses"; ip -br addr | awk '{$2=""; print}' | sort
  echo "## routes"; ip route | sort
  echo "## mounts"; awk '{print $2, $3}' /proc/self/mounts | sort
  echo "## sysctls"
  for s in vm.overcommit_memory kernel.panic kernel.panic_on_oops net.ipv4.ip_forward \
           net.ipv4.conf.all.send_redirects net.bridge.bridge-nf-call-iptables; do
    echo "$s=$(sysctl -n "$s" 2>/dev/null)"
  done
  echo "## paths"
  for s in /var/log/containers /var/log/pods /var/lib/kubelet /var/lib/cni /run/containerd /etc/cni /opt/cni; do
    [[ -e $s ]] && echo "$s"
  done
  echo "## cgroups"; ls -d /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/kubepods 2>/dev/null
  echo "## processes"; pgrep -a -f "$WORK" | awk '{print $2}' | sort
}

snapshot > "$WORK/before.txt"
trap cleanup EXIT
start=$SECONDS
if "$REPO/hack/cluster/up.sh" --node > "$WORK/up.log" 2>&1; then
  ok "up.sh --node ($((SECONDS - start)) s)"
else
  fail "up.sh --node:"; tail -30 "$WORK/up.log"
fi

# A pod of our own on the node, through the scheduler, the CNI bridge and a sandbox: it looks
# up the kubernetes Service by name through CoreDNS and exits 0.
cat > "$WORK/pod.yaml" <<EOF
apiVersion: v1
kind: Pod
metadata: {name: teardown-probe, namespace: default}
spec:
  restartPolicy: Never
  containers:
  - name: probe
    image: localhost/miglet-cluster/coredns:v1.15.0
    imagePullPolicy: Never
    command: [/coredns, -version]
EOF
if kubectl apply -f "$WORK/pod.yaml" >/dev/null &&
   kubectl wait --for=jsonpath='{.status.phase}'=Succeeded pod/teardown-probe --timeout=90s >/dev/null; then
  ok "a pod ran to completion on the node"
else
  fail "the probe pod did not succeed:"; kubectl describe pod teardown-probe | tail -20
fi
node_up=$(snapshot)
if [[ $node_up != "$(cat "$WORK/before.txt")" ]]; then
  ok "the node changed the host while up (so the comparison below can see a change)"
else
  fail "nothing of the host changed while the node was up: the snapshot sees nothing"
fi

start=$SECONDS
if "$REPO/hack/cluster/down.sh" > "$WORK/down.log" 2>&1; then
  ok "down.sh ($((SECONDS - start)) s)"
else
  fail "down.sh:"; tail -30 "$WORK/down.log"
fi
snapshot > "$WORK/after.txt"
if diff -u "$WORK/before.txt" "$WORK/after.txt" > "$WORK/diff.txt"; then
  ok "the host after down.sh is as it was before up.sh"
else
  fail "the host changed:"; cat "$WORK/diff.txt"
fi
[[ ! -e $MIGLET_CLUSTER_DIR ]] && ok "the state dir is gone" || fail "$MIGLET_CLUSTER_DIR is still there"

echo "$passed passed, $failed failed"
((failed == 0))
