#!/usr/bin/env bash
# The end-to-end suite (tests/e2e/e2e.py) on a kind cluster, for a machine with Docker and a
# network: kind's node image is pulled from its registry. It cannot run on the machines this
# project is built on (no registry answers, and kind's nodes, privileged Docker containers,
# cannot lower an oom_score_adj: every pod would fail in runc); there `make test` runs the same
# suite on hack/cluster's one-node cluster instead.
#
#   tests/e2e/kind.sh [e2e.py args, e.g. --scenario scale-to-five]
#
# It builds the images (make images), kind (sigs.k8s.io/kind, from the Go module proxy) and
# helm into build/tools/bin, creates the kind cluster $KIND_CLUSTER (default miglet-e2e) unless
# it exists, and runs e2e.py against it: the images go in with `kind load docker-image`, the
# GitHub stand-in listens on this host's address on the kind network (pods reach it there),
# and Prometheus scrapes the pods through the apiserver's proxy (pod IPs are inside Docker).
# KIND_KEEP=1 keeps the cluster afterwards.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
CLUSTER=${KIND_CLUSTER:-miglet-e2e}
KIND_VERSION=v0.30.0
TOOLS=$REPO/build/tools/bin
KUBECONFIG_FILE=$REPO/build/e2e/kind.kubeconfig
export PATH=$TOOLS:$PATH

docker info >/dev/null 2>&1 || { echo "kind.sh: a Docker engine is needed" >&2; exit 1; }
if [[ ! -x $TOOLS/kind || $("$TOOLS/kind" version | awk '{print $2}') != "$KIND_VERSION" ]]; then
  GOBIN=$TOOLS CGO_ENABLED=0 go install "sigs.k8s.io/kind@$KIND_VERSION"
fi
make -C "$REPO" images
"$REPO/hack/cluster/build-tools.sh" helm
mkdir -p "$(dirname "$KUBECONFIG_FILE")"
if ! kind get clusters | grep -qx "$CLUSTER"; then
  kind create cluster --name "$CLUSTER" --kubeconfig "$KUBECONFIG_FILE" --wait 120s
  created=1
else
  kind get kubeconfig --name "$CLUSTER" >"$KUBECONFIG_FILE"
  created=0
fi
cleanup() { if ((created)) && [[ ${KIND_KEEP:-0} != 1 ]]; then kind delete cluster --name "$CLUSTER"; fi; }
trap cleanup EXIT

# This host as the kind nodes see it: the kind network's gateway.
host=$(docker network inspect kind -f '{{range .IPAM.Config}}{{if .Gateway}}{{.Gateway}} {{end}}{{end}}' |
       tr ' ' '\n' | grep -m1 -E '^[0-9.]+$')
"$REPO/tests/e2e/e2e.py" --repo "$REPO" --kubeconfig "$KUBECONFIG_FILE" --node-address "$host" \
  --scrape-via-apiserver --load-command "kind load docker-image --name $CLUSTER" "$@"
