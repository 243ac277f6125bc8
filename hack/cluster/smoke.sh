#!/usr/bin/env bash
# Checks that the control plane from up.sh does what the tests rely on: namespaces and
# pods (they stay Pending: no scheduler, no kubelet), garbage collection of owned
# objects, service-account tokens, PDB status from the disruption controller, and
# `etcdctl compact`. Works in a throwaway namespace it deletes at the end.
# Usage: hack/cluster/up.sh && hack/cluster/smoke.sh
set -uo pipefail
# shellcheck source=env.sh
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

ns=smoke-$RANDOM
passed=0 failed=0
check() { # description command...
  local what=$1; shift
  if "$@" >/dev/null 2>&1; then
    echo "ok    $what"; passed=$((passed + 1))
  else
    echo "FAIL  $what"; failed=$((failed + 1))
  fi
}
eventually() { # seconds command...: true once command succeeds within the time
  local deadline=$((SECONDS + $1)); shift
  until "$@"; do ((SECONDS < deadline)) || return 1; sleep 0.5; done
}
gone() { ! kubectl -n "$ns" get "$1" >/dev/null 2>&1; }
tmp=$(mktemp -d)
trap 'kubectl delete ns "$ns" --wait=false >/dev/null 2>&1; rm -rf "$tmp"' EXIT

check "apiserver /readyz" kubectl get --raw /readyz
check "create namespace $ns" kubectl create ns "$ns"
check "create a pod (stays Pending)" kubectl -n "$ns" run p1 --image=busybox --labels=app=smoke --restart=Never -- sleep 1
check "pod is Pending" eventually 5 test "$(kubectl -n "$ns" get pod p1 -o jsonpath='{.status.phase}')" = Pending

# Garbage collector: a ConfigMap owned by another one goes when its owner goes.
kubectl -n "$ns" create configmap owner >/dev/null
uid=$(kubectl -n "$ns" get configmap owner -o jsonpath='{.metadata.uid}')
kubectl -n "$ns" apply -f - >/dev/null <<EOF
apiVersion: v1
kind: ConfigMap
metadata:
  name: child
  ownerReferences: [{apiVersion: v1, kind: ConfigMap, name: owner, uid: "$uid"}]
EOF
check "owned ConfigMap exists" kubectl -n "$ns" get configmap child
kubectl -n "$ns" delete configmap owner >/dev/null
check "garbage collector deletes it with its owner" eventually 30 gone configmap/child

# Service-account token: authenticates (RBAC forbids, then allows once bound).
check "ServiceAccount default exists (serviceaccount controller)" \
  eventually 30 kubectl -n "$ns" get serviceaccount default
token=$(kubectl -n "$ns" create token default 2>/dev/null)
kubectl config view --raw --minify -o jsonpath='{.clusters[0].cluster.certificate-authority-data}' |
  base64 -d > "$tmp/ca.crt"
sa() { kubectl --kubeconfig=/dev/null --server="https://127.0.0.1:$MIGLET_APISERVER_PORT" \
        --certificate-authority="$tmp/ca.crt" --token="$1" -n "$ns" "${@:2}"; }
whoami_is_sa() { [[ $(sa "$token" auth whoami -o jsonpath='{.status.userInfo.username}') == "system:serviceaccount:$ns:default" ]]; }
# Output captured first: under pipefail a failing kubectl would fail `| grep` too.
fails_with() { local out; ! out=$(sa "$1" get pods 2>&1) && [[ $out == *"$2"* ]]; }
check "token authenticates as the ServiceAccount" whoami_is_sa
check "unbound ServiceAccount is forbidden to list pods" fails_with "$token" Forbidden
check "a bad token is unauthorized" fails_with bogus Unauthorized
kubectl -n "$ns" create rolebinding view --clusterrole=view --serviceaccount="$ns:default" >/dev/null
check "bound ServiceAccount lists pods" eventually 10 sa "$token" get pods

# Disruption controller fills in PDB status.
kubectl -n "$ns" create pdb pdb1 --selector=app=smoke --min-available=1 >/dev/null
check "disruption controller sets PDB status" \
  eventually 30 test "$(kubectl -n "$ns" get pdb pdb1 -o jsonpath='{.status.expectedPods}')" = 1

# etcd compaction, as tests that force 410 Gone do.
rev=$(etcdctl endpoint status -w json 2>/dev/null | grep -o '"revision":[0-9]*' | head -1 | cut -d: -f2)
check "etcdctl compact to the current revision ($rev)" etcdctl compact "${rev:-0}"

echo "$passed passed, $failed failed"
((failed == 0))
