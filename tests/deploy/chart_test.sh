#!/usr/bin/env bash
# The chart's tests with the real helm (chart_test.py).
# Usage: chart_test.sh <repo> <tools-bin-dir>
set -euo pipefail
HELM=$2/helm
[[ -x $HELM ]] || { echo "FAIL $HELM is missing (hack/cluster/build-tools.sh helm)"; exit 1; }
exec python3 "$(dirname "$0")/chart_test.py" "$1" "$HELM"
