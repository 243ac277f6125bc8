#!/usr/bin/env bash
# observability_check.py on the chart's dashboard and alerts (must pass), then on copies with
# one fault each (must fail), so the check is seen to catch what it claims to.
# Usage: observability_check_test.sh <repo>
set -uo pipefail
REPO=$1
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CHECK=$HERE/observability_check.py
FILES=$REPO/deploy/helm/miglet/files
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
failed=0

if "$CHECK" "$REPO"; then echo "ok   the chart's dashboard and alerts pass"
else echo "FAIL the chart's dashboard and alerts"; failed=1; fi

expect_fail() {  # expect_fail NAME WANT-IN-OUTPUT ARGS...
  local name=$1 want=$2; shift 2
  if "$CHECK" "$REPO" "$@" >"$WORK/out" 2>&1; then
    echo "FAIL $name: the check passed"; failed=1
  elif ! grep -q -- "$want" "$WORK/out"; then
    echo "FAIL $name: no \"$want\" in:"; sed 's/^/     | /' "$WORK/out"; failed=1
  else
    echo "ok   $name"
  fi
}
sed 's/mig_controller_workqueue_depth)/mig_controller_workqueue_length)/' "$FILES/dashboard.json" >"$WORK/unknown.json"
expect_fail "a panel naming an unexposed metric" "mig_controller_workqueue_length" --dashboard "$WORK/unknown.json"
sed 's/(mig_controller_agents_connected)/(mig_controller_agents_connected[5m]/' "$FILES/dashboard.json" >"$WORK/parse.json"
expect_fail "a panel query that does not parse" "could not parse" --dashboard "$WORK/parse.json"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); d["templating"]["list"]=[v for v in d["templating"]["list"] if v["name"]!="datasource"]; json.dump(d,open(sys.argv[2],"w"))' \
  "$FILES/dashboard.json" "$WORK/nods.json"
expect_fail "no datasource variable" "no datasource variable" --dashboard "$WORK/nods.json"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); d["panels"][2]["id"]=d["panels"][1]["id"]; json.dump(d,open(sys.argv[2],"w"))' \
  "$FILES/dashboard.json" "$WORK/dupid.json"
expect_fail "two panels with one id" "not unique" --dashboard "$WORK/dupid.json"
sed 's/mig_controller_github_rate_limit_remaining < 500/mig_controller_github_ratelimit_remaining < 500/' "$FILES/alerts.yaml" >"$WORK/alerts.yaml"
expect_fail "an alert naming an unexposed metric" "mig_controller_github_ratelimit_remaining" --alerts "$WORK/alerts.yaml"
grep -v "alertname: MigletNoLeader" "$REPO/tests/deploy/alerts_test.yaml" | python3 -c '
import sys, yaml
t = yaml.safe_load(sys.stdin)
for c in t["tests"]:
    c["alert_rule_test"] = [a for a in c.get("alert_rule_test", []) if "alertname" in a]
yaml.safe_dump(t, open(sys.argv[1], "w"))' "$WORK/alerts_test.yaml"
expect_fail "an alert without tests" "no test where MigletNoLeader fires" --alerts-test "$WORK/alerts_test.yaml"
exit $failed
