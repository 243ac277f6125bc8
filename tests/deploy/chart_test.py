#!/usr/bin/env python3
"""deploy/helm/miglet checked with the real helm: lint, then `helm template` with the defaults
and each documented option, asserting what each renders; values the schema or the templates
must refuse, refused with a message.

Usage: chart_test.py REPO HELM
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

import yaml

REPO, HELM = sys.argv[1], sys.argv[2]
CHART = os.path.join(REPO, "deploy/helm/miglet")
NS, REL = "ci-system", "rel"
FULL = f"{REL}-miglet"
failures = []
passed = 0


def case(fn):
    global passed
    try:
        fn()
        print(f"ok   {fn.__name__}")
        passed += 1
    except AssertionError as e:
        print(f"FAIL {fn.__name__}: {e}")
        failures.append(fn.__name__)
    return fn


def helm(*args):
    return subprocess.run([HELM, *args], capture_output=True, text=True)


def render(sets, files):
    """helm template of the chart with these --set values and -f files."""
    args = ["template", REL, CHART, "--namespace", NS]
    for s in sets:
        args += ["--set", s]
    for f in files:
        args += ["-f", f]
    return helm(*args)


def template(*sets, files=()):
    r = render(sets, files)
    assert r.returncode == 0, f"helm template {' '.join(sets)} failed:\n{r.stderr}"
    return [d for d in yaml.safe_load_all(r.stdout) if d]


def refused(want, *sets, files=()):
    r = render(sets, files)
    assert r.returncode != 0, f"helm template {' '.join(sets)} rendered; it must fail"
    assert re.search(want, r.stderr), f"no /{want}/ in helm's message:\n{r.stderr}"


def one(docs, kind, name=None):
    found = [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(found) == 1, f"{len(found)} {kind} {name or ''} rendered, want 1: " + \
        str([(d["kind"], d["metadata"]["name"]) for d in docs])
    return found[0]


def kinds(docs):
    return sorted(d["kind"] for d in docs)


def container(docs):
    return one(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]


def args_of(docs):
    return container(docs)["args"]


def controller_flags():
    """Flag names of mig-controller's settings table (operator/src/config.cc)."""
    src = open(os.path.join(REPO, "operator/src/config.cc")).read()
    flags = set(re.findall(r'\{"[a-z_.]*",\s*"([a-z-]+)"', src))
    assert len(flags) > 10, f"found only {flags} in operator/src/config.cc"
    return flags


# What mig-controller calls, per resource (group, resource): verbs. Each line is a call site
# in operator/src; the test below requires the chart's rules to be exactly these.
EXPECTED_RULES = {
    # informers (kube/informer.cc: ListAll, Watch); finalizers by JSON patch (operator.cc)
    ("miglet.dev", "runnerpools"): {"list", "watch", "patch"},
    # + pool controller creates and deletes RunnerVMs, marks them for drain (MergePatch)
    ("miglet.dev", "runnervms"): {"list", "watch", "create", "patch", "delete"},
    ("miglet.dev", "runnerpools/status"): {"patch"},   # Patch(..., "status")
    ("miglet.dev", "runnervms/status"): {"patch"},     # MergePatchStatus
    # ownerReferences with blockOwnerDeletion on RunnerVMs, Pods and PDBs (apiserver's check)
    ("miglet.dev", "runnerpools/finalizers"): {"update"},
    ("miglet.dev", "runnervms/finalizers"): {"update"},
    # informer (label-selected), Create, busy-label MergePatch, Delete
    ("", "pods"): {"list", "watch", "create", "patch", "delete"},
    ("", "secrets"): {"get"},                          # SecretsIn(...).Get: GitHub credentials
    ("policy", "poddisruptionbudgets"): {"create"},    # EnsureBusyPdb
    ("", "events"): {"create", "patch"},               # kube/event_recorder.cc
    # TLS from the controller's own CA (the default): its CA published for runner pods
    ("", "configmaps"): {"get", "create", "patch"},    # Operator::PublishCa
}
# ... and the CA's Secret in the release namespace (serving_tls.cc: Get, Create when missing).
EXPECTED_TLS_RULES = {("", "secrets"): {"get", "create"}}
EXPECTED_LEASE_RULES = {("coordination.k8s.io", "leases"): {"get", "create", "update"}}


def rules_of(role):
    out = {}
    for r in role["rules"]:
        for field in ("apiGroups", "resources", "verbs"):
            assert "*" not in r[field], f"{role['kind']} {role['metadata']['name']}: a wildcard in {field}"
        for g in r["apiGroups"]:
            for res in r["resources"]:
                out.setdefault((g, res), set()).update(r["verbs"])
    return out


@case
def lint():
    r = helm("lint", "--strict", CHART)
    assert r.returncode == 0, r.stdout + r.stderr
    r = helm("lint", "--strict", CHART, "--set", "replicaCount=2,metrics.serviceMonitor.enabled=true,"
             "metrics.prometheusRule.enabled=true,metrics.dashboard.enabled=true,github.token=t,"
             "metrics.podMonitor.enabled=true,"
             "examplePool.enabled=true,examplePool.url=https://github.com/acme")
    assert r.returncode == 0, r.stdout + r.stderr


@case
def defaults():
    docs = template()
    assert kinds(docs) == ["ClusterRole"] * 4 + ["ClusterRoleBinding"] * 2 + \
        ["Deployment", "Role", "RoleBinding", "Service", "ServiceAccount"], kinds(docs)
    for d in docs:
        labels = d["metadata"].get("labels", {})
        for k in ("app.kubernetes.io/name", "app.kubernetes.io/instance",
                  "app.kubernetes.io/managed-by", "helm.sh/chart"):
            assert k in labels, f"{d['kind']} {d['metadata']['name']}: no label {k}"
    dep = one(docs, "Deployment", FULL)
    assert dep["spec"]["replicas"] == 1
    assert dep["spec"]["strategy"]["type"] == "Recreate"
    app_version = yaml.safe_load(open(os.path.join(CHART, "Chart.yaml")))["appVersion"]
    c = container(docs)
    assert c["image"] == f"ghcr.io/miglet/mig-controller:{app_version}", c["image"]
    args = c["args"]
    for want in ("--controllers=on", "--grpc-port=50051", "--http-port=8080",
                 "--metrics-bind-address=:9090", "--health-probe-bind-address=:8081",
                 "--leader-elect=false", f"--agent-endpoint={FULL}.{NS}.svc:50051",
                 "--log-level=info", "--log-format=json", "--agent-auth=token",
                 "--secure-api=true", "--metrics-secure=true", "--grpc-tls=true",
                 f"--tls-ca-secret={FULL}-ca",
                 f"--tls-dns-names={FULL}.{NS}.svc,{FULL}.{NS}.svc.cluster.local,{FULL}.{NS},{FULL}"):
        assert want in args, f"{want} not in {args}"
    flags = controller_flags()
    for a in args:
        name = a[2:].split("=", 1)[0]
        assert name in flags, f"{a}: mig-controller has no flag --{name}"
    # Empty flags are not passed.
    assert not any(a.startswith(("--namespace", "--workers", "--ack-timeout")) for a in args), args
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports == {"grpc": 50051, "http": 8080, "metrics": 9090, "health": 8081}, ports
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "health"}
    env = {e["name"]: e for e in c["env"]}
    assert env["POD_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"
    pod = dep["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == FULL
    psc, sc = pod["securityContext"], c["securityContext"]
    assert psc["runAsNonRoot"] is True and isinstance(psc["runAsUser"], int) and psc["runAsUser"] > 0
    assert psc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert c["resources"]["requests"]["cpu"] and c["resources"]["limits"]["memory"]
    svc = one(docs, "Service", FULL)
    sp = {p["name"]: (p["port"], p["targetPort"]) for p in svc["spec"]["ports"]}
    assert sp == {"grpc": (50051, "grpc"), "http": (8080, "http"), "metrics": (9090, "metrics")}, sp
    sel = svc["spec"]["selector"]
    assert all(dep["spec"]["template"]["metadata"]["labels"].get(k) == v for k, v in sel.items())
    assert dep["spec"]["selector"]["matchLabels"] == sel


@case
def rbac_least_privilege():
    docs = template()
    role = one(docs, "ClusterRole", FULL)
    got = rules_of(role)
    assert got == EXPECTED_RULES, f"ClusterRole rules differ from the controller's calls:\n" \
        f"  extra:   {sorted((k, sorted(v - EXPECTED_RULES.get(k, set()))) for k, v in got.items() if v - EXPECTED_RULES.get(k, set()))}\n" \
        f"  missing: {sorted((k, sorted(v - got.get(k, set()))) for k, v in EXPECTED_RULES.items() if v - got.get(k, set()))}"
    b = one(docs, "ClusterRoleBinding", FULL)
    assert b["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": FULL}
    assert b["subjects"] == [{"kind": "ServiceAccount", "name": FULL, "namespace": NS}]


@case
def auth_on_by_default_and_its_rbac():
    docs = template()
    # The controller asks the apiserver who is asking: Kubernetes' own auth-delegator role.
    b = one(docs, "ClusterRoleBinding", f"{FULL}-auth-delegator")
    assert b["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                            "name": "system:auth-delegator"}, b["roleRef"]
    assert b["subjects"] == [{"kind": "ServiceAccount", "name": FULL, "namespace": NS}]
    # What callers are granted: non-resource URLs only, exactly these.
    def urls(name):
        role = one(docs, "ClusterRole", name)
        assert all("resources" not in r and "apiGroups" not in r for r in role["rules"]), role
        return {(u, v) for r in role["rules"] for u in r["nonResourceURLs"] for v in r["verbs"]}
    assert urls(f"{FULL}-metrics-reader") == {("/metrics", "get")}
    # The operator endpoints are RunnerVM permissions (everyone may get /api/* as a URL).
    view = {("miglet.dev", "runnervms"): {"get", "list"}}
    assert rules_of(one(docs, "ClusterRole", f"{FULL}-api-viewer")) == view
    assert rules_of(one(docs, "ClusterRole", f"{FULL}-api-operator")) == \
        {**view, ("miglet.dev", "runnervms/commands"): {"create"}}
    # Prometheus's ServiceAccount, bound when named; the ServiceMonitor sends its token.
    docs = template("metrics.readers[0].name=prometheus-k8s", "metrics.readers[0].namespace=monitoring",
                    "metrics.serviceMonitor.enabled=true")
    b = one(docs, "ClusterRoleBinding", f"{FULL}-metrics-reader")
    assert b["roleRef"]["name"] == f"{FULL}-metrics-reader"
    assert b["subjects"] == [{"kind": "ServiceAccount", "name": "prometheus-k8s", "namespace": "monitoring"}]
    ep = one(docs, "ServiceMonitor")["spec"]["endpoints"][0]
    assert ep["bearerTokenFile"] == "/var/run/secrets/kubernetes.io/serviceaccount/token", ep
    # All three off: no auth objects, and the flags say so.
    docs = template("auth.agents=none", "auth.secureApi=false", "metrics.secure=false",
                    "metrics.serviceMonitor.enabled=true")
    assert kinds(docs) == ["ClusterRole", "ClusterRoleBinding", "Deployment", "Role", "RoleBinding",
                           "Service", "ServiceAccount", "ServiceMonitor"], kinds(docs)
    args = args_of(docs)
    for want in ("--agent-auth=none", "--secure-api=false", "--metrics-secure=false"):
        assert want in args, f"{want} not in {args}"
    assert "bearerTokenFile" not in one(docs, "ServiceMonitor")["spec"]["endpoints"][0]
    # Agent auth alone still needs TokenReview.
    docs = template("auth.secureApi=false", "metrics.secure=false")
    one(docs, "ClusterRoleBinding", f"{FULL}-auth-delegator")
    refused(r"auth.agents", "auth.agents=maybe")


@case
def rbac_one_namespace():
    docs = template("flags.namespace=team")
    # The controller's own rules become a Role; the auth roles stay cluster-wide (TokenReview
    # and non-resource URLs have no namespace).
    names = {d["metadata"]["name"] for d in docs if d["kind"] in ("ClusterRole", "ClusterRoleBinding")}
    assert FULL not in names, names
    role = one(docs, "Role", FULL)
    assert role["metadata"]["namespace"] == "team"
    assert rules_of(role) == EXPECTED_RULES
    b = one(docs, "RoleBinding", FULL)
    assert b["metadata"]["namespace"] == "team" and b["roleRef"]["kind"] == "Role"
    assert "--namespace=team" in args_of(docs)


@case
def leader_election_with_replicas():
    docs = template("replicaCount=2")
    assert one(docs, "Deployment")["spec"]["replicas"] == 2
    args = args_of(docs)
    assert "--leader-elect=true" in args and "--leader-election-id=mig-controller" in args, args
    role = one(docs, "Role", f"{FULL}-leader-election")
    assert role["metadata"]["namespace"] == NS
    assert rules_of(role) == EXPECTED_LEASE_RULES, rules_of(role)
    b = one(docs, "RoleBinding", f"{FULL}-leader-election")
    assert b["roleRef"]["name"] == f"{FULL}-leader-election"
    assert b["subjects"][0]["name"] == FULL
    # Forced on with one replica, a custom Lease name.
    args = args_of(template("leaderElection.enabled=true", "leaderElection.id=my-lease"))
    assert "--leader-elect=true" in args and "--leader-election-id=my-lease" in args, args
    # Without leader election there is no Lease Role.
    assert f"{FULL}-leader-election" not in {d["metadata"]["name"] for d in template()}


@case
def leader_election_off_with_replicas_is_refused():
    refused(r"leaderElection.enabled=false with replicaCount > 1",
            "replicaCount=2", "leaderElection.enabled=false")


@case
def github_secret_created_from_token():
    docs = template("github.token=ghp_x")
    s = one(docs, "Secret", f"{FULL}-github")
    assert s["stringData"] == {"github_token": "ghp_x"}, s["stringData"]


@case
def github_secret_created_from_app():
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
        yaml.safe_dump({"github": {"app": {"id": 12345, "installationId": 678,
                                           "privateKey": "-----BEGIN RSA PRIVATE KEY-----\nx\n-----END RSA PRIVATE KEY-----\n"}}}, f)
        f.flush()
        docs = template(files=[f.name])
    s = one(docs, "Secret", f"{FULL}-github")
    # The controller's keys (operator/include/miglet/operator/github/auth.h).
    assert s["stringData"]["github_app_id"] == "12345", s["stringData"]
    assert s["stringData"]["github_app_installation_id"] == "678"
    assert s["stringData"]["github_app_private_key"].startswith("-----BEGIN RSA PRIVATE KEY-----")
    auth = open(os.path.join(REPO, "operator/include/miglet/operator/github/auth.h")).read()
    for key in list(s["stringData"]) + ["github_token"]:
        assert f'"{key}"' in auth, f"{key} is not a key the controller reads"


@case
def github_existing_secret_creates_nothing():
    docs = template("github.existingSecret=corp-github")
    assert "Secret" not in kinds(docs), kinds(docs)


@case
def github_bad_credentials_refused():
    refused(r"set token or app.id, not both", "github.token=t", "github.app.id=1",
            "github.app.privateKey=k")
    refused(r"github.app.privateKey: missing", "github.app.id=1")


@case
def github_ca_bundle():
    bundle = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
        yaml.safe_dump({"github": {"caBundle": bundle}, "podAnnotations": {"team": "ci"}}, f)
        f.flush()
        docs = template(files=[f.name])
        other = template("github.caBundle=x", files=[f.name])
    cm = one(docs, "ConfigMap", f"{FULL}-github-ca")
    assert cm["metadata"]["namespace"] == NS and cm["data"] == {"ca.crt": bundle}, cm
    c = container(docs)
    assert "--github-ca-file=/etc/miglet/github-ca/ca.crt" in c["args"], c["args"]
    assert sum(a.startswith("--github-ca-file") for a in c["args"]) == 1, c["args"]
    mounts = {m["name"]: m for m in c["volumeMounts"]}
    assert mounts["github-ca"] == {"name": "github-ca", "mountPath": "/etc/miglet/github-ca",
                                   "readOnly": True}, mounts
    pod = one(docs, "Deployment")["spec"]["template"]
    vols = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert vols["github-ca"]["configMap"]["name"] == f"{FULL}-github-ca", vols
    # The controller reads the file once, at start: another bundle changes the pod template.
    ann = pod["metadata"]["annotations"]
    assert ann["team"] == "ci" and re.fullmatch(r"[0-9a-f]{64}", ann["checksum/github-ca"]), ann
    other_ann = one(other, "Deployment")["spec"]["template"]["metadata"]["annotations"]
    assert other_ann["checksum/github-ca"] != ann["checksum/github-ca"], other_ann
    # Without it: no ConfigMap, mount, flag or checksum; flags.github-ca-file alone is passed.
    assert not any(a.startswith("--github-ca-file") for a in args_of(template()))
    docs = template("flags.github-ca-file=/corp/ca.pem")
    assert "ConfigMap" not in kinds(docs), kinds(docs)
    c = container(docs)
    assert [a for a in c["args"] if a.startswith("--github-ca-file")] == ["--github-ca-file=/corp/ca.pem"]
    assert "github-ca" not in {m["name"] for m in c["volumeMounts"]}
    assert "annotations" not in one(docs, "Deployment")["spec"]["template"]["metadata"]
    refused(r"github.caBundle and flags.github-ca-file: set one of them", "github.caBundle=x",
            "flags.github-ca-file=/corp/ca.pem")
    refused(r"caBundle.*string|string.*caBundle", "github.caBundle=true")


@case
def example_pool():
    docs = template("examplePool.enabled=true", "examplePool.url=https://github.com/acme",
                    "examplePool.replicas=2", "github.existingSecret=corp",
                    "github.existingSecretType=token")
    p = one(docs, "RunnerPool", "example")
    assert p["apiVersion"] == "miglet.dev/v1alpha1" and p["metadata"]["namespace"] == NS
    assert p["spec"]["replicas"] == 2
    assert p["spec"]["github"] == {"url": "https://github.com/acme", "tokenSecretRef": {"name": "corp"}}
    assert p["spec"]["runner"]["labels"] == ["self-hosted", "linux", "x64"]
    docs = template("examplePool.enabled=true", "examplePool.url=https://github.com/acme/app",
                    "github.app.id=1", "github.app.privateKey=k")
    p = one(docs, "RunnerPool", "example")
    assert p["spec"]["github"]["appSecretRef"] == {"name": f"{FULL}-github"}, p["spec"]["github"]
    refused(r"examplePool: needs GitHub credentials", "examplePool.enabled=true",
            "examplePool.url=https://github.com/acme")
    refused(r"examplePool.url: missing", "examplePool.enabled=true", "github.token=t")


@case
def service_monitor():
    assert "ServiceMonitor" not in kinds(template())
    docs = template("metrics.serviceMonitor.enabled=true", "metrics.serviceMonitor.labels.release=prom")
    sm = one(docs, "ServiceMonitor", FULL)
    assert sm["metadata"]["labels"]["release"] == "prom"
    assert sm["spec"]["endpoints"] == [{"port": "metrics", "path": "/metrics", "interval": "30s",
                                        "bearerTokenFile": "/var/run/secrets/kubernetes.io/serviceaccount/token"}]
    svc = one(docs, "Service", FULL)
    assert all(svc["metadata"]["labels"].get(k) == v for k, v in sm["spec"]["selector"]["matchLabels"].items())
    assert sm["spec"]["namespaceSelector"] == {"matchNames": [NS]}


@case
def pod_monitor_for_agents():
    assert "PodMonitor" not in kinds(template())
    pm = one(template("metrics.podMonitor.enabled=true"), "PodMonitor", f"{FULL}-agents")
    assert pm["spec"]["namespaceSelector"] == {"any": True}
    assert pm["spec"]["podMetricsEndpoints"][0]["port"] == "metrics"
    # The labels and the port name the controller gives runner pods.
    src = open(os.path.join(REPO, "operator/src/controllers/pod_builder.cc")).read()
    for k, v in pm["spec"]["selector"]["matchLabels"].items():
        assert f'{{"{k}", "{v}"}}' in src, f"runner pods do not carry {k}={v} (pod_builder.cc)"
    assert '{"name", "metrics"}' in src
    pm = one(template("metrics.podMonitor.enabled=true", "flags.namespace=team"), "PodMonitor")
    assert pm["spec"]["namespaceSelector"] == {"matchNames": ["team"]}


@case
def prometheus_rule_is_the_plain_rules_file():
    assert "PrometheusRule" not in kinds(template())
    pr = one(template("metrics.prometheusRule.enabled=true"), "PrometheusRule", FULL)
    plain = yaml.safe_load(open(os.path.join(CHART, "files/alerts.yaml")))
    assert pr["spec"] == plain, "PrometheusRule spec differs from files/alerts.yaml"
    names = [r["alert"] for g in pr["spec"]["groups"] for r in g["rules"]]
    assert len(names) >= 7 and "MigletNoLeader" in names, names


@case
def dashboard_configmap():
    assert "ConfigMap" not in kinds(template())
    cm = one(template("metrics.dashboard.enabled=true"), "ConfigMap", f"{FULL}-dashboard")
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    dash = json.loads(cm["data"]["miglet.json"])
    assert dash == json.load(open(os.path.join(CHART, "files/dashboard.json")))


@case
def tls():
    # The default: TLS from the controller's own CA, which it keeps in a Secret it may make.
    docs = template("examplePool.enabled=true", "examplePool.url=https://github.com/acme",
                    "github.token=t")
    c = container(docs)
    assert "--grpc-tls=true" in c["args"] and f"--tls-ca-secret={FULL}-ca" in c["args"], c["args"]
    assert not any(a.startswith(("--tls-cert-file", "--tls-key-file")) for a in c["args"])
    role = one(docs, "Role", f"{FULL}-tls")
    assert role["metadata"]["namespace"] == NS and rules_of(role) == EXPECTED_TLS_RULES
    assert one(docs, "RoleBinding", f"{FULL}-tls")["subjects"][0]["name"] == FULL
    # The example pool's agents trust the CA the controller publishes: no caSecretRef.
    assert "controller" not in one(docs, "RunnerPool")["spec"]
    # A Secret of one's own (cert-manager's): its files, and the pool trusts its ca.crt.
    docs = template("tls.secretName=ctl-tls", "tls.clientCA=true",
                    "examplePool.enabled=true", "examplePool.url=https://github.com/acme",
                    "github.token=t")
    c = container(docs)
    for want in ("--grpc-tls=true", "--tls-cert-file=/etc/mig-controller/tls/tls.crt",
                 "--tls-key-file=/etc/mig-controller/tls/tls.key",
                 "--tls-ca-file=/etc/mig-controller/tls/ca.crt"):
        assert want in c["args"], f"{want} not in {c['args']}"
    assert not any(a.startswith("--tls-ca-secret") for a in c["args"])
    mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
    assert mounts.get("tls") == "/etc/mig-controller/tls", mounts
    vols = {v["name"]: v for v in one(docs, "Deployment")["spec"]["template"]["spec"]["volumes"]}
    assert vols["tls"]["secret"]["secretName"] == "ctl-tls"
    pool = one(docs, "RunnerPool")
    assert pool["spec"]["controller"] == {"caSecretRef": {"name": "ctl-tls"}}, pool["spec"]
    assert f"{FULL}-tls" not in {d["metadata"]["name"] for d in docs}
    assert ("", "configmaps") not in rules_of(one(docs, "ClusterRole", FULL))
    # Without clientCA, no client CA; without TLS, none of it.
    assert not any(a.startswith("--tls-ca-file") for a in args_of(template("tls.secretName=ctl-tls")))
    docs = template("tls.enabled=false")
    assert not any(a.startswith(("--tls", "--grpc-tls")) for a in container(docs)["args"])
    assert ("", "configmaps") not in rules_of(one(docs, "ClusterRole", FULL))
    refused(r"tls.clientCA needs tls.secretName", "tls.clientCA=true")


@case
def flags_and_overrides():
    docs = template("flags.log-level=debug", "flags.workers=8", "flags.heartbeat-timeout=90s",
                    "flags.agent-endpoint=ctl.example.com:443", "image.tag=dev",
                    "serviceAccount.create=false", "serviceAccount.name=ops")
    args = args_of(docs)
    for want in ("--log-level=debug", "--workers=8", "--heartbeat-timeout=90s",
                 "--agent-endpoint=ctl.example.com:443"):
        assert want in args, f"{want} not in {args}"
    assert sum(a.startswith("--agent-endpoint") for a in args) == 1, args
    assert container(docs)["image"] == "ghcr.io/miglet/mig-controller:dev"
    assert "ServiceAccount" not in kinds(docs)
    assert one(docs, "Deployment")["spec"]["template"]["spec"]["serviceAccountName"] == "ops"
    assert one(docs, "ClusterRoleBinding", FULL)["subjects"][0]["name"] == "ops"
    assert one(docs, "ClusterRoleBinding", f"{FULL}-auth-delegator")["subjects"][0]["name"] == "ops"


@case
def schema_flags_are_controller_flags():
    schema = json.load(open(os.path.join(CHART, "values.schema.json")))
    keys = set(schema["properties"]["flags"]["properties"])
    missing = keys - controller_flags()
    assert not missing, f"values.schema.json flags mig-controller does not have: {missing}"


@case
def schema_refuses_wrong_type():
    refused(r"replicaCount.*(integer|number)", "replicaCount=two")
    refused(r"log-level", "flags.log-level=verbose")
    refused(r"heartbeat-timeout", "flags.heartbeat-timeout=soon")
    refused(r"enabled.*boolean|boolean.*enabled", "metrics.serviceMonitor.enabled=yes")


@case
def schema_refuses_unknown_keys():
    refused(r"additional properties 'replicas' not allowed|replicas", "replicas=2")
    refused(r"log-levle", "flags.log-levle=debug")
    refused(r"tokn", "github.tokn=x")


@case
def notes():
    # helm renders NOTES.txt only on install, which needs a cluster: render it here from a copy
    # of the chart as the text of a ConfigMap.
    with tempfile.TemporaryDirectory() as d:
        shutil.copytree(CHART, os.path.join(d, "miglet"))
        chart = os.path.join(d, "miglet")
        shutil.copy(os.path.join(chart, "templates/NOTES.txt"), os.path.join(chart, "files/notes.txt"))
        with open(os.path.join(chart, "templates/zz-notes.yaml"), "w") as f:
            f.write('apiVersion: v1\nkind: ConfigMap\nmetadata: {name: notes}\ndata:\n  notes: |\n'
                    '{{ tpl (.Files.Get "files/notes.txt") . | indent 4 }}\n')
        r = helm("template", REL, chart, "--namespace", NS, "--show-only", "templates/zz-notes.yaml",
                 "--set", "replicaCount=2,github.token=t")
    assert r.returncode == 0, r.stderr
    notes = yaml.safe_load(r.stdout)["data"]["notes"]
    for want in (f"deployment/{FULL}", f"{FULL}.{NS}.svc:50051", "leader election",
                 f"tokenSecretRef.name: {FULL}-github"):
        assert want in notes, f"{want!r} not in NOTES:\n{notes}"


print(f"{passed} passed, {len(failures)} failed")
sys.exit(1 if failures else 0)
