#!/usr/bin/env bash
# The chart on a real control plane (hack/cluster/up.sh: etcd, kube-apiserver with RBAC and
# OwnerReferencesPermissionEnforcement, kube-controller-manager; no kubelet, so pods stay
# Pending):
#   1. helm install: the apiserver accepts every object; the ServiceAccount may do what the
#      controller needs and not more (kubectl auth can-i).
#   2. mig-controller runs as the chart's ServiceAccount (a token from the TokenRequest API)
#      with the Deployment's own args: it reconciles the chart's example RunnerPool (finalizer,
#      RunnerVM, Pod, PodDisruptionBudget, status, events) with no request refused, and every
#      API call it made (its mig_controller_kube_requests_total) is allowed by the chart's rules.
#      And the other way: every rule was used by some call (three cannot be reached here and say
#      why), so the rules are the controller's calls, no more and no fewer.
#   3. helm upgrade to 2 replicas and other flags: the Deployment changes, the leader-election
#      Role appears, and the controller with the new args takes the Lease as the same account.
#   4. The pool is deleted and cleaned up by the controller; helm uninstall leaves only the CRDs.
# Usage: chart_install_test.sh <repo> <mig-controller> <tools-bin-dir>
set -uo pipefail
REPO=$(cd "$1" && pwd) CONTROLLER=$2 TOOLS=$(cd "$3" && pwd)
HELM=$TOOLS/helm CHART=$REPO/deploy/helm/miglet
NS=miglet-chart REL=miglet SA=miglet
WORK=$(mktemp -d)
export MIGLET_CLUSTER_DIR=$WORK/cluster MIGLET_CLUSTER_SKIP_BUILD=1 MIGLET_TOOLS_DIR=${TOOLS%/bin}
export MIGLET_APISERVER_ARGS=--enable-admission-plugins=OwnerReferencesPermissionEnforcement
export KUBECONFIG=$MIGLET_CLUSTER_DIR/kubeconfig
ctl_pid=
passed=0 failed=0
cleanup() {
  [[ -n $ctl_pid ]] && { kill "$ctl_pid" 2>/dev/null; wait "$ctl_pid" 2>/dev/null; }
  "$REPO/hack/cluster/down.sh" >/dev/null 2>&1
  rm -rf "$WORK"
}
trap cleanup EXIT

ok() { echo "ok   $*"; passed=$((passed + 1)); }
fail() { echo "FAIL $*"; failed=$((failed + 1)); }
check() {  # check NAME COMMAND...
  local name=$1; shift
  if "$@" >"$WORK/out" 2>&1; then ok "$name"; else fail "$name"; sed 's/^/     | /' "$WORK/out" | head -30; fi
}
# Polls COMMAND every 0.2 s until it succeeds, up to SECONDS (a condition, not a sleep).
wait_until() {  # wait_until SECONDS COMMAND...
  local deadline=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || return 1
    sleep 0.2
  done
}
k() { kubectl "$@"; }

for t in "$HELM" "$CONTROLLER" "$TOOLS/kube-apiserver" "$TOOLS/etcd"; do
  [[ -x $t ]] || { echo "FAIL $t is missing (make build; hack/cluster/build-tools.sh kube etcd helm)"; exit 1; }
done
"$REPO/hack/cluster/up.sh" >"$WORK/up.log" 2>&1 || { echo "FAIL control plane:"; tail -20 "$WORK/up.log"; exit 1; }

# ------------------------------------------------------------------ 1. install
VALUES=(--set github.token=ghp_test --set examplePool.enabled=true
        --set examplePool.url=https://github.com/acme --set metrics.dashboard.enabled=true
        --set "metrics.readers[0].name=scraper" --set "metrics.readers[0].namespace=$NS")
check "helm install (every object accepted by the apiserver)" \
  "$HELM" install "$REL" "$CHART" -n "$NS" --create-namespace "${VALUES[@]}"
"$HELM" get manifest "$REL" -n "$NS" >"$WORK/manifest.yaml"
check "every object of the release exists" k get -f "$WORK/manifest.yaml"
check "CRDs established" k wait --for=condition=Established --timeout=30s \
  crd/runnerpools.miglet.dev crd/runnervms.miglet.dev
AS=(--as="system:serviceaccount:$NS:$SA")
can() { [[ $(k auth can-i "${AS[@]}" "$@" 2>/dev/null) == yes ]]; }
cannot() { ! can "$@"; }
check "the ServiceAccount may list pods in any namespace" can list pods -A
check "... create tokenreviews and subjectaccessreviews (auth on by default)" bash -c \
  "[[ \$(kubectl auth can-i ${AS[*]} create tokenreviews.authentication.k8s.io) == yes &&
     \$(kubectl auth can-i ${AS[*]} create subjectaccessreviews.authorization.k8s.io) == yes ]]"
check "... patch runnervms/status" can patch runnervms.miglet.dev --subresource=status -n default
check "... create poddisruptionbudgets" can create poddisruptionbudgets.policy -n default
check "... get secrets" can get secrets -n default
check "... not list secrets" cannot list secrets -n default
check "... not delete runnerpools" cannot delete runnerpools.miglet.dev -n default
check "... not update runnervms (patch only)" cannot update runnervms.miglet.dev -n default
check "... get and create configmaps (the CA it publishes for runner pods)" \
  bash -c "[[ \$(kubectl auth can-i ${AS[*]} create configmaps -n default) == yes ]]"
check "... not delete configmaps" cannot delete configmaps -n "$NS"
check "... create secrets in its own namespace only (its CA)" \
  bash -c "[[ \$(kubectl auth can-i ${AS[*]} create secrets -n $NS) == yes &&
     \$(kubectl auth can-i ${AS[*]} create secrets -n default) == no ]]"
check "... not touch leases with one replica" cannot get leases.coordination.k8s.io -n "$NS"

# ------------------------------------------------------------------ 2. the controller as the SA
server=$(k config view --raw -o jsonpath='{.clusters[0].cluster.server}')
k config view --raw -o jsonpath='{.clusters[0].cluster.certificate-authority-data}' | base64 -d >"$WORK/ca.crt"
sa_kubeconfig() {
  local token
  token=$(k -n "$NS" create token "$SA" --duration=1h) || return 1
  KUBECONFIG=$WORK/sa.kubeconfig k config set-cluster c --server="$server" \
    --certificate-authority="$WORK/ca.crt" --embed-certs=true >/dev/null &&
  KUBECONFIG=$WORK/sa.kubeconfig k config set-credentials sa --token="$token" >/dev/null &&
  KUBECONFIG=$WORK/sa.kubeconfig k config set-context c --cluster=c --user=sa >/dev/null &&
  KUBECONFIG=$WORK/sa.kubeconfig k config use-context c >/dev/null
}
check "a token for the chart's ServiceAccount" sa_kubeconfig
# Callers of /metrics and the operator API: one bound by metrics.readers, one granted the
# api-viewer ClusterRole, one granted nothing.
callers() {
  k -n "$NS" create serviceaccount scraper >/dev/null &&
  k -n "$NS" create serviceaccount viewer >/dev/null &&
  k -n "$NS" create serviceaccount nobody >/dev/null &&
  k create clusterrolebinding "$REL-test-viewer" --clusterrole="$REL-api-viewer" \
    --serviceaccount="$NS:viewer" >/dev/null &&
  for sa in scraper viewer nobody; do k -n "$NS" create token "$sa" --duration=1h >"$WORK/$sa.token" || return 1; done
}
check "ServiceAccounts for the secure endpoints (scraper, viewer, nobody)" callers
check "the token is the ServiceAccount" \
  bash -c "KUBECONFIG=$WORK/sa.kubeconfig kubectl auth whoami -o jsonpath='{.status.userInfo.username}' | grep -qx system:serviceaccount:$NS:$SA"

# The Deployment's args, then local ports (last flag wins) and the SA's kubeconfig.
deployment_args() {
  k -n "$NS" get deploy/"$REL" -o jsonpath='{range .spec.template.spec.containers[0].args[*]}{@}{"\n"}{end}'
}
start_controller() {
  local args
  mapfile -t args < <(deployment_args)
  rm -f "$WORK/ports.json"
  POD_NAMESPACE=$NS "$CONTROLLER" "${args[@]}" --bind-address=127.0.0.1 --grpc-port=0 --http-port=0 \
    --metrics-bind-address=127.0.0.1:0 --health-probe-bind-address=127.0.0.1:0 \
    --kubeconfig="$WORK/sa.kubeconfig" --listen-info-file="$WORK/ports.json" \
    >"$WORK/controller-$1.log" 2>&1 &
  ctl_pid=$!
  wait_until 30 test -s "$WORK/ports.json"
}
stop_controller() { kill "$ctl_pid" 2>/dev/null; wait "$ctl_pid" 2>/dev/null; ctl_pid=; }
port_of() { python3 -c "import json,sys;print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$WORK/ports.json" "$1"; }
# /metrics is secure by default (TokenReview + SubjectAccessReview): scraped with the token of a
# ServiceAccount the chart's metrics.readers bound to its metrics-reader ClusterRole.
metrics() {
  curl -sf -H "Authorization: Bearer $(cat "$WORK/scraper.token")" \
    "http://127.0.0.1:$(port_of metrics_port)/metrics"
}

# Every (verb, resource) the controller called: allowed by the rendered rules, none refused.
calls_allowed() {
  metrics >"$WORK/metrics.txt" || return 1
  python3 - "$WORK/metrics.txt" "$WORK/manifest.yaml" "$WORK/calls.seen" "$REL" <<'PY'
import re, sys, yaml
REL = sys.argv[4]
calls = {}
for line in open(sys.argv[1]):
    m = re.match(r'mig_controller_kube_requests_total\{(.*)\} (\S+)', line)
    if m:
        labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1)))
        calls.setdefault((labels["verb"], labels["resource"]), set()).add(labels["code"])
allowed = set()
for d in yaml.safe_load_all(open(sys.argv[2])):
    # The controller's own roles (not those the chart makes for its callers).
    if d and d["kind"] in ("Role", "ClusterRole") and d["metadata"]["name"] in (REL, REL + "-leader-election", REL + "-tls"):
        for r in d["rules"]:
            allowed |= {(v, res) for v in r["verbs"] for res in r.get("resources", [])}
    # Kubernetes' own system:auth-delegator, which the chart binds for TokenReview and
    # SubjectAccessReview (who is asking, when auth is on).
    if d and d["kind"] == "ClusterRoleBinding" and d["roleRef"]["name"] == "system:auth-delegator":
        allowed |= {("create", "tokenreviews"), ("create", "subjectaccessreviews")}
with open(sys.argv[3], "a") as seen:
    for verb, res in calls:
        seen.write(f"{verb} {res}\n")
bad = []
for (verb, res), codes in sorted(calls.items()):
    verbs = {"apply": "patch"}.get(verb, verb)
    print(f"  {verb:7} {res:24} codes {sorted(codes)}")
    if (verbs, res) not in allowed:
        bad.append(f"{verb} {res}: not in the chart's rules")
    if "403" in codes or "401" in codes:
        bad.append(f"{verb} {res}: refused ({sorted(codes)})")
for b in bad:
    print("  BAD", b)
sys.exit(1 if bad or not calls else 0)
PY
}

# TLS is on by default, from the controller's own CA (a Secret it keeps): without the
# controllers, or a certificate of one's own, mig-controller refuses to start and says why.
tls_needs_controllers() {
  ! "$CONTROLLER" --grpc-tls=true --controllers=off >"$WORK/tls.out" 2>&1 &&
  grep -q "the controller's own CA" "$WORK/tls.out"
}
check "--grpc-tls without a certificate needs the controllers (its CA is a Secret)" tls_needs_controllers

if start_controller 1; then ok "mig-controller runs with the chart's args as the ServiceAccount"
else fail "mig-controller did not start"; sed 's/^/     | /' "$WORK/controller-1.log" | tail -20; exit 1; fi
pool_reconciled() {
  k -n "$NS" get runnerpool/example -o jsonpath='{.metadata.finalizers}' | grep -q miglet.dev/finalizer &&
  [[ -n $(k -n "$NS" get runnervms -l miglet.dev/pool=example -o name) ]] &&
  [[ -n $(k -n "$NS" get pods -l miglet.dev/pool=example -o name) ]] &&
  [[ -n $(k -n "$NS" get pdb -o name) ]] &&
  [[ -n $(k -n "$NS" get runnerpool/example -o jsonpath='{.status.observedGeneration}') ]] &&
  [[ -n $(k -n "$NS" get events --field-selector reason=PodCreated -o name) ]]
}
check "the example pool is reconciled: finalizer, RunnerVM, Pod, PDB, status, event" wait_until 60 pool_reconciled
ca_published() {
  local cm secret
  cm=$(k -n "$NS" get configmap miglet-controller-ca -o jsonpath='{.data.ca\.crt}') &&
  secret=$(k -n "$NS" get secret "$REL-ca" -o jsonpath='{.data.tls\.crt}' | base64 -d) &&
  [[ -n $cm && $cm == "$secret" ]] &&
  k -n "$NS" get pods -l miglet.dev/pool=example \
    -o jsonpath='{.items[0].spec.volumes[*].configMap.name}' | grep -qw miglet-controller-ca
}
check "TLS from its own CA: Secret $REL-ca made, the CA published to the pool's namespace, the runner pod mounts it" \
  ca_published
check "the RunnerVM's Pod is owned by it (blockOwnerDeletion allowed by runnervms/finalizers)" \
  bash -c "kubectl -n $NS get pods -l miglet.dev/pool=example -o jsonpath='{.items[0].metadata.ownerReferences[0].kind}' | grep -qx RunnerVM"
check "every API call the controller made is allowed by the chart's rules" calls_allowed
grep -v '^ *BAD' "$WORK/out"
# Secure metrics and operator API, as the chart turns them on: 401 without a token, 403 for a
# token whose user RBAC does not allow the URL, 200 for one it does.
code() {  # code PORT_KEY PATH [TOKEN_NAME] [METHOD]
  local auth=()
  [[ -n ${3:-} ]] && auth=(-H "Authorization: Bearer $(cat "$WORK/$3.token")")
  curl -s -o /dev/null -w '%{http_code}' -X "${4:-GET}" "${auth[@]}" \
    "http://127.0.0.1:$(port_of "$1")$2"
}
secure_endpoints() {
  local got
  got="$(code metrics_port /metrics) $(code metrics_port /metrics nobody) $(code metrics_port /metrics scraper)"
  got+=" $(code http_port /api/v1/vms) $(code http_port /api/v1/vms nobody) $(code http_port /api/v1/vms viewer)"
  got+=" $(code http_port /api/v1/vms/x/commands viewer POST)"
  echo "got:  $got"
  echo "want: 401 403 200 401 403 200 403"
  [[ $got == "401 403 200 401 403 200 403" ]]
}
check "/metrics and the operator API: 401 without a token, 403 without RBAC, 200 with it" \
  wait_until 30 secure_endpoints
check "no 'forbidden' in the controller's log" bash -c "! grep -i forbidden $WORK/controller-1.log"
stop_controller

# ------------------------------------------------------------------ 3. upgrade
check "helm upgrade: 2 replicas, log level debug" \
  "$HELM" upgrade "$REL" "$CHART" -n "$NS" "${VALUES[@]}" --set replicaCount=2 --set flags.log-level=debug
"$HELM" get manifest "$REL" -n "$NS" >"$WORK/manifest.yaml"
check "the Deployment has 2 replicas and the new flags" bash -c \
  "[[ \$(kubectl -n $NS get deploy/$REL -o jsonpath='{.spec.replicas}') == 2 ]] &&
   kubectl -n $NS get deploy/$REL -o jsonpath='{.spec.template.spec.containers[0].args}' | grep -q -- '--leader-elect=true' &&
   kubectl -n $NS get deploy/$REL -o jsonpath='{.spec.template.spec.containers[0].args}' | grep -q -- '--log-level=debug'"
check "the leader-election Role is there" k -n "$NS" get role/"$REL"-leader-election rolebinding/"$REL"-leader-election
check "the ServiceAccount may now update leases" can update leases.coordination.k8s.io -n "$NS"
start_controller 2 || { fail "mig-controller (upgraded args) did not start"; sed 's/^/     | /' "$WORK/controller-2.log" | tail -20; exit 1; }
lease_held() { [[ -n $(k -n "$NS" get lease/mig-controller -o jsonpath='{.spec.holderIdentity}') ]]; }
check "the controller takes the Lease as the ServiceAccount" wait_until 60 lease_held
check "it serves (ready once leading)" wait_until 30 curl -sf "http://127.0.0.1:$(port_of health_port)/readyz"
check "every API call it made is allowed by the upgraded chart's rules" calls_allowed

# ------------------------------------------------------------------ 4. delete, uninstall
k -n "$NS" delete runnerpool/example --wait=false >/dev/null
pool_gone() { ! k -n "$NS" get runnerpool/example >/dev/null 2>&1 && [[ -z $(k -n "$NS" get runnervms -o name) ]]; }
check "the controller cleans up the deleted pool (finalizers removed, RunnerVMs deleted)" wait_until 60 pool_gone
check "the cleanup's calls were allowed too" calls_allowed
grep -v '^ *BAD' "$WORK/out"
stop_controller
# And the other way: each rule was used by some call above, but for two the runs cannot reach.
every_rule_used() {
  python3 - "$WORK/manifest.yaml" "$WORK/calls.seen" "$REL" <<'PY'
import sys, yaml
REL = sys.argv[3]
seen = {tuple(l.split()) for l in open(sys.argv[2]) if l.strip()}
seen |= {("patch", r) for v, r in seen if v == "apply"}
not_reached = {
    ("patch", "events"): "only a repeated event is patched (its count)",
    ("patch", "configmaps"): "only when the controller's CA changed since it was published",
    ("update", "runnerpools/finalizers"): "not a call: the apiserver's blockOwnerDeletion check",
    ("update", "runnervms/finalizers"): "not a call: the apiserver's blockOwnerDeletion check",
}
unused = []
for d in yaml.safe_load_all(open(sys.argv[1])):
    if d and d["kind"] in ("Role", "ClusterRole") and d["metadata"]["name"] in (REL, REL + "-leader-election", REL + "-tls"):
        for r in d["rules"]:
            for verb in r["verbs"]:
                for res in r["resources"]:
                    if (verb, res) in seen:
                        continue
                    if (verb, res) in not_reached:
                        print(f"  not reached here: {verb} {res} ({not_reached[(verb, res)]})")
                    else:
                        unused.append(f"{verb} {res}")
for u in unused:
    print(f"  BAD {u}: in the chart's rules, never called")
sys.exit(1 if unused else 0)
PY
}
check "every rule of the chart was used by the controller (least privilege)" every_rule_used
grep -v '^ *BAD' "$WORK/out"
check "helm uninstall" "$HELM" uninstall "$REL" -n "$NS" --wait --timeout 60s
leftovers() {
  k get "$(k api-resources --verbs=list -o name | paste -sd, -)" -A \
    -l app.kubernetes.io/instance="$REL" -o name 2>/dev/null
}
no_leftovers() { local left; left=$(leftovers); echo "$left"; [[ -z $left ]]; }
check "uninstall leaves no object of the release behind" no_leftovers
check "... but the CRDs (Helm keeps crds/)" k get crd/runnerpools.miglet.dev crd/runnervms.miglet.dev

echo "$passed passed, $failed failed"
((failed == 0))
