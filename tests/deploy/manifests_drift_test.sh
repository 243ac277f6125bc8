#!/usr/bin/env bash
# deploy/manifests/ and the chart's crds/ match what make manifests makes from their sources;
# then, on a copy of deploy/, a changed source or a hand-edited output must be caught.
# Usage: manifests_drift_test.sh <repo> <tools-bin-dir>
set -uo pipefail
REPO=$1 HELM=$2/helm
RENDER=$REPO/hack/render-manifests.sh
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
failed=0

if "$RENDER" --check --root "$REPO" --helm "$HELM" >"$WORK/out" 2>&1; then
  echo "ok   the tree's manifests and chart CRDs are up to date"
else
  echo "FAIL the tree has drifted:"; sed 's/^/     | /' "$WORK/out" | head -40; failed=1
fi

drift() {  # drift NAME WANT-IN-OUTPUT EDIT-COMMAND...
  local name=$1 want=$2; shift 2
  rm -rf "$WORK/root" && mkdir -p "$WORK/root" && cp -r "$REPO/deploy" "$WORK/root/"
  (cd "$WORK/root" && "$@")
  if "$RENDER" --check --root "$WORK/root" --helm "$HELM" >"$WORK/out" 2>&1; then
    echo "FAIL $name: not caught"; failed=1
  elif ! grep -q -- "$want" "$WORK/out"; then
    echo "FAIL $name: no \"$want\" in:"; sed 's/^/     | /' "$WORK/out" | head -20; failed=1
  else
    echo "ok   $name: caught"
  fi
}
drift "a CRD changed in deploy/crds" "crds differs from deploy/crds" \
  sed -i 's/maxLength: 512/maxLength: 513/' deploy/crds/miglet.dev_runnerpools.yaml
drift "a chart default changed" "deploy/manifests differs" \
  sed -i 's/^replicaCount: 1$/replicaCount: 2/' deploy/helm/miglet/values.yaml
drift "a hand edit of deploy/manifests" "deploy/manifests differs" \
  sed -i 's/--log-level=info/--log-level=debug/' deploy/manifests/02-mig-controller.yaml
exit $failed
