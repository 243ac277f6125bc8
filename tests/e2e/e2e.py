#!/usr/bin/env python3
"""miglet end to end: the chart installed unchanged on a real cluster, real runner pods, the
GitHub stand-in, a real Prometheus, and the scenarios of docs/e2e.md.

By default it brings up its own one-node cluster (hack/cluster/up.sh --node: etcd, apiserver,
controller-manager, scheduler, a kubelet with its own containerd, kube-proxy, CoreDNS), imports
the images into the node, runs the scenarios and takes everything down again. With
--kubeconfig it runs the same scenarios on any cluster that already has the images
(tests/e2e/kind.sh does that on kind).

  tests/e2e/e2e.py [--scenario NAME]... [--keep] [--kubeconfig FILE --node-address IP]

Prints `ok   NAME` or `FAIL NAME: why` per scenario and the dumps of a failed one (controller
and agent logs, Events, our objects as YAML, the stand-in's runners); exits 1 if any failed,
77 (skipped) when the machine cannot run it (no root, no Docker engine, no images).
"""

import argparse
import base64
import hashlib
import json
import os
import re
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.error
import urllib.parse
import urllib.request

import yaml

SKIP = 77
NS = "miglet-system"
RELEASE = "miglet"
ORG = "acme"
PAT = "ghp_e2eStandInToken0000000000000000000000"
PROMETHEUS_SA = "prometheus"
NODE_IP = "10.244.0.1"
RUNNER_IMAGE_BASE = "miglet-e2e/fake-runner"


class Failed(Exception):
    pass


class Skip(Exception):
    pass


def log(msg):
    print(f"e2e: {msg}", flush=True)


def run(cmd, *, input=None, check=True, env=None, timeout=300):
    p = subprocess.run(cmd, input=input, capture_output=True, text=True, env=env, timeout=timeout)
    if check and p.returncode != 0:
        raise Failed(f"{' '.join(map(str, cmd))} exited {p.returncode}: {p.stderr.strip()[-2000:]}")
    return p


def await_(what, fn, timeout=120, interval=0.5):
    """Polls fn until it returns something truthy; fails naming what was awaited and the last
    value seen. A condition, not a sleep."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            last = fn()
            if last:
                return last
        except (Failed, urllib.error.URLError, OSError, ValueError, KeyError) as e:
            last = f"{type(e).__name__}: {e}"
        if time.monotonic() > deadline:
            raise Failed(f"timed out after {timeout}s waiting for {what} (last: {str(last)[:600]})")
        time.sleep(interval)


class Cluster:
    """kubectl, helm and the parts of the environment every scenario shares."""

    def __init__(self, args, repo, work):
        self.args = args
        self.repo = repo
        self.work = work
        self.tools = os.path.join(repo, "build", "tools", "bin")
        self.kubeconfig = args.kubeconfig
        self.own_cluster = not args.kubeconfig
        self.cluster_dir = os.path.join(repo, "build", "e2e", "cluster")
        self.node_ip = args.node_address or NODE_IP
        self.env = dict(os.environ, PATH=self.tools + ":" + os.environ["PATH"])
        self.standin = None
        self.prom = None
        self.procs = []

    # ---------------------------------------------------------------- tools
    def k(self, *a, input=None, check=True, timeout=120):
        return run(["kubectl", "--kubeconfig", self.kubeconfig, *map(str, a)], input=input,
                   check=check, env=self.env, timeout=timeout)

    def kj(self, *a):
        return json.loads(self.k(*a, "-o", "json").stdout)

    def helm(self, *a, timeout=300):
        return run([os.path.join(self.tools, "helm"), "--kubeconfig", self.kubeconfig, *a],
                   env=self.env, timeout=timeout)

    def apply(self, obj):
        self.k("apply", "-f", "-", input=yaml.safe_dump(obj) if not isinstance(obj, str) else obj)

    # ---------------------------------------------------------------- the cluster
    def up(self):
        if not self.own_cluster:
            return
        env = dict(self.env, MIGLET_CLUSTER_DIR=self.cluster_dir, MIGLET_CLUSTER_SKIP_BUILD="1")
        if os.path.exists("/sys/class/net/miglet0") and not os.path.exists(
                os.path.join(self.cluster_dir, ".miglet-node")):
            raise Skip("another one-node cluster holds this machine's node addresses "
                       "(bridge miglet0 exists): make cluster-down first")
        t0 = time.monotonic()
        p = run([os.path.join(self.repo, "hack/cluster/up.sh"), "--node"], env=env, check=False,
                timeout=600)
        if p.returncode != 0:
            raise Failed(f"hack/cluster/up.sh --node failed:\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}")
        log(f"cluster up in {time.monotonic() - t0:.1f}s")
        self.kubeconfig = os.path.join(self.cluster_dir, "kubeconfig")

    def down(self):
        if not self.own_cluster:
            return
        env = dict(self.env, MIGLET_CLUSTER_DIR=self.cluster_dir)
        cmd = [os.path.join(self.repo, "hack/cluster/down.sh")]
        if self.args.keep:
            cmd.append("--keep")
        run(cmd, env=env, check=False, timeout=300)

    def crictl(self, *a, check=True):
        sock = os.path.join(self.cluster_dir, "node", "containerd", "containerd.sock")
        return run([os.path.join(self.tools, "crictl"), "--runtime-endpoint", f"unix://{sock}",
                    "--timeout", "20s", *a], check=check)

    def import_images(self, images):
        """docker save | ctr import, skipped for an image the node already has at that id; on
        another cluster, --load-command (kind load docker-image) for each."""
        if not self.own_cluster:
            for image in images if self.args.load_command else []:
                run(self.args.load_command.split() + [image], timeout=600)
            return
        sock = os.path.join(self.cluster_dir, "node", "containerd", "containerd.sock")
        have = run(["ctr", "--address", sock, "-n", "k8s.io", "images", "ls"]).stdout
        for image in images:
            image_id = run(["docker", "image", "inspect", "-f", "{{.Id}}", image]).stdout.strip()
            stamp = os.path.join(self.cluster_dir, "node", "images",
                                 hashlib.sha256(image.encode()).hexdigest()[:16] + ".id")
            if image in have and os.path.exists(stamp) and open(stamp).read() == image_id:
                continue
            t0 = time.monotonic()
            tar = os.path.join(self.work, "image.tar")
            run(["docker", "save", image, "-o", tar])
            run(["ctr", "--address", sock, "-n", "k8s.io", "images", "import", tar])
            os.unlink(tar)
            os.makedirs(os.path.dirname(stamp), exist_ok=True)
            open(stamp, "w").write(image_id)
            log(f"imported {image} into the node in {time.monotonic() - t0:.1f}s")

    def restart_apiserver(self):
        env = dict(self.env, MIGLET_CLUSTER_DIR=self.cluster_dir, MIGLET_CLUSTER_SKIP_BUILD="1")
        pid = int(open(os.path.join(self.cluster_dir, "run", "kube-apiserver.pid")).read())
        # As down.sh stops it: TERM, then KILL after 15 s (with the node's clients connected it
        # waits a minute for its HTTP server to drain).
        os.kill(pid, signal.SIGTERM)
        try:
            await_("the apiserver to exit", lambda: not alive(pid), 15)
        except Failed:
            os.kill(pid, signal.SIGKILL)
            await_("the apiserver to exit after SIGKILL", lambda: not alive(pid), 30)
        run([os.path.join(self.repo, "hack/cluster/up.sh"), "--node"], env=env, timeout=300)

    # ---------------------------------------------------------------- pods
    def pods(self, selector, ns=NS):
        return self.kj("get", "pods", "-n", ns, "-l", selector)["items"]

    def pool_pods(self, pool):
        return [p for p in self.pods(f"miglet.dev/pool={pool}")
                if not p["metadata"].get("deletionTimestamp")]

    def vms(self, pool):
        return self.kj("get", "runnervms", "-n", NS, "-l", f"miglet.dev/pool={pool}")["items"]

    def controller_pods(self):
        return self.pods(f"app.kubernetes.io/name=miglet,app.kubernetes.io/instance={RELEASE}")


def alive(pid):
    """A zombie counts as gone: whoever adopted it may never reap it (as down.sh does)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def running(pod):
    return pod["status"].get("phase") == "Running" and all(
        c.get("ready") for c in pod["status"].get("containerStatuses", []))


class StandIn:
    """The GitHub stand-in on the node's address, with a CA the runner image trusts."""

    def __init__(self, cl, binary):
        self.cl = cl
        d = os.path.join(cl.repo, "build", "e2e", "standin-ca")
        os.makedirs(d, exist_ok=True)
        self.ca_cert, self.ca_key = os.path.join(d, "ca.crt"), os.path.join(d, "ca.key")
        if not os.path.exists(self.ca_cert):
            run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                 "-nodes", "-keyout", self.ca_key, "-out", self.ca_cert, "-days", "3650",
                 "-subj", "/CN=miglet e2e GitHub stand-in CA",
                 "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature"])
        self.dir = os.path.join(cl.work, "standin")
        os.makedirs(self.dir)
        listen = "0.0.0.0:0" if not cl.own_cluster else f"{cl.node_ip}:0"
        self.proc = subprocess.Popen(
            [binary, "serve", "--dir", self.dir, "--listen", listen, "--host", cl.node_ip,
             "--pat", PAT, "--ca-cert", self.ca_cert, "--ca-key", self.ca_key,
             "--session-idle", "30s", "--log", os.path.join(self.dir, "requests.log")],
            stdout=open(os.path.join(self.dir, "standin.log"), "w"), stderr=subprocess.STDOUT)
        cl.procs.append(self.proc)
        info = os.path.join(self.dir, "info.json")
        await_("the stand-in's info.json", lambda: os.path.exists(info), 30)
        self.info = json.load(open(info))
        self.url = self.info["url"]
        self.ctx = ssl.create_default_context(cafile=self.ca_cert)

    def call(self, method, path, body=None):
        req = urllib.request.Request(self.url + path, method=method,
                                     data=None if body is None else json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, context=self.ctx, timeout=10) as r:
            data = r.read()
            return json.loads(data) if data else None

    def state(self):
        return self.call("GET", "/_standin/state")

    def runners(self, label):
        return [r for r in self.state()["runners"] if label in r.get("labels", [])]

    def online(self, label):
        return [r for r in self.runners(label) if r["status"] == "online"]

    def job(self, label, name):
        return self.call("POST", "/_standin/jobs",
                         {"name": name, "scope": f"org:{ORG}", "labels": ["self-hosted", label]})["id"]

    def jobs(self, ids):
        by_id = {j["id"]: j for j in self.state()["jobs"]}
        return [by_id[i] for i in ids]

    def finish(self, job_id, result="Succeeded"):
        self.call("POST", f"/_standin/jobs/{job_id}/finish", {"result": result})

    def route_count(self, route):
        return self.state()["counts"].get(route, 0)


class Prometheus:
    """Debian's prometheus on the host, scraping the controller through its Service's endpoints
    (port `metrics`: what the chart's ServiceMonitor selects) and every agent through its pod's
    prometheus.io annotations, with the chart's alerts loaded as they are. Debian builds
    Prometheus without Kubernetes service discovery, so the harness does that part: a thread
    lists the same pods and endpoints every second and writes them as file_sd targets."""

    def __init__(self, cl):
        self.cl = cl
        self.dir = os.path.join(cl.work, "prometheus")
        os.makedirs(os.path.join(self.dir, "data"))
        kc = yaml.safe_load(open(cl.kubeconfig))
        self.server = kc["clusters"][0]["cluster"]["server"]
        user = kc["users"][0]["user"]
        files = {"ca.crt": base64.b64decode(kc["clusters"][0]["cluster"]["certificate-authority-data"]),
                 "client.crt": base64.b64decode(user["client-certificate-data"]),
                 "client.key": base64.b64decode(user["client-key-data"])}
        for name, data in files.items():
            with open(os.path.join(self.dir, name), "wb") as f:
                f.write(data)
        self.via_api = cl.args.scrape_via_apiserver
        # The controller's /metrics is secure (the chart's default): Prometheus sends the token
        # of its own ServiceAccount, which the chart binds to its metrics-reader role
        # (metrics.readers in helm_values). Through the apiserver's proxy no token can be
        # passed, so that path installs with metrics.secure off.
        controller_auth = {}
        if not self.via_api:
            cl.k("apply", "-f", "-", input=yaml.safe_dump_all([
                {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}},
                {"apiVersion": "v1", "kind": "ServiceAccount",
                 "metadata": {"name": PROMETHEUS_SA, "namespace": NS}}]))
            self.token_file = os.path.join(self.dir, "token")
            with open(self.token_file, "w") as f:
                f.write(cl.k("create", "token", PROMETHEUS_SA, "-n", NS, "--duration=24h").stdout.strip())
            controller_auth = {"authorization": {"type": "Bearer", "credentials_file": self.token_file}}
        tls = {"tls_config": {"ca_file": os.path.join(self.dir, "ca.crt"),
                              "cert_file": os.path.join(self.dir, "client.crt"),
                              "key_file": os.path.join(self.dir, "client.key")}} if self.via_api else {}
        self.targets = {name: os.path.join(self.dir, f"{name}.json")
                        for name in ("mig-controller", "miglet-agents")}
        for path in self.targets.values():
            with open(path, "w") as f:
                f.write("[]")
        config = {
            "global": {"scrape_interval": "2s", "evaluation_interval": "2s"},
            "rule_files": [os.path.join(cl.repo, "deploy/helm/miglet/files/alerts.yaml")],
            "scrape_configs": [
                # The controller's own labels (namespace, pool) win over the target's.
                {"job_name": "mig-controller", "honor_labels": True, **tls, **controller_auth,
                 "file_sd_configs": [{"files": [self.targets["mig-controller"]], "refresh_interval": "1s"}]},
                {"job_name": "miglet-agents", **tls,
                 "file_sd_configs": [{"files": [self.targets["miglet-agents"]], "refresh_interval": "1s"}]},
            ],
        }
        path = os.path.join(self.dir, "prometheus.yml")
        with open(path, "w") as f:
            yaml.safe_dump(config, f)
        run(["promtool", "check", "config", path])
        self.stop = threading.Event()
        self.discover()
        self.thread = threading.Thread(target=self.discover_loop, daemon=True)
        self.thread.start()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            ["prometheus", f"--config.file={path}", f"--storage.tsdb.path={self.dir}/data",
             f"--web.listen-address=127.0.0.1:{self.port}", "--web.enable-lifecycle"],
            stdout=open(os.path.join(self.dir, "prometheus.log"), "w"), stderr=subprocess.STDOUT)
        cl.procs.append(self.proc)
        await_("Prometheus ready", lambda: self.get("/-/ready") is not None, 60)

    def target(self, ns, pod, ip, port, labels):
        if self.via_api:
            # The pod's port through the apiserver's proxy (kind: pod IPs are inside Docker).
            labels = dict(labels, __metrics_path__=f"/api/v1/namespaces/{ns}/pods/{pod}:{port}/proxy/metrics",
                          __scheme__="https")
            return {"targets": [self.server.split("://")[1]], "labels": labels}
        return {"targets": [f"{ip}:{port}"], "labels": labels}

    def discover(self):
        agents, controller = [], []
        pods = self.cl.kj("get", "pods", "-A")["items"]
        for p in pods:
            md, st = p["metadata"], p["status"]
            ann = md.get("annotations", {})
            if ann.get("prometheus.io/scrape") != "true" or st.get("phase") != "Running" or not st.get("podIP"):
                continue
            agents.append(self.target(md["namespace"], md["name"], st["podIP"], ann["prometheus.io/port"],
                                      {"namespace": md["namespace"], "pod": md["name"],
                                       "pool": md.get("labels", {}).get("miglet.dev/pool", "")}))
        eps = self.cl.kj("get", "endpoints", "-n", NS, RELEASE) if self.cl.k(
            "get", "endpoints", "-n", NS, RELEASE, check=False).returncode == 0 else {}
        for subset in eps.get("subsets", []) or []:
            port = [x["port"] for x in subset.get("ports", []) if x.get("name") == "metrics"]
            for a in subset.get("addresses", []) if port else []:
                pod = a.get("targetRef", {}).get("name", "")
                controller.append(self.target(NS, pod, a["ip"], port[0], {"instance_pod": pod}))
        for name, targets in (("miglet-agents", agents), ("mig-controller", controller)):
            tmp = self.targets[name] + ".tmp"
            with open(tmp, "w") as f:
                json.dump(targets, f)
            os.replace(tmp, self.targets[name])

    def discover_loop(self):
        while not self.stop.wait(1):
            try:
                self.discover()
            except Exception:  # noqa: BLE001 - the apiserver may be restarting (a scenario)
                pass

    def get(self, path):
        with urllib.request.urlopen(self.url + path, timeout=10) as r:
            return r.read()

    def query(self, expr):
        body = json.loads(self.get("/api/v1/query?" + urllib.parse.urlencode({"query": expr})))
        if body.get("status") != "success":
            raise Failed(f"query {expr}: {body}")
        return body["data"]["result"]

    def value(self, expr):
        r = self.query(expr)
        return float(r[0]["value"][1]) if r else None


def free_port():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class PodLogs:
    """Every container log line of the run. On the one-node cluster the node's pod log files are
    copied twice a second (the kubelet removes a deleted pod's files with it); on another
    cluster, `kubectl logs` of the pods still there when asked."""

    def __init__(self, cl):
        self.cl = cl
        self.src = os.path.join(cl.cluster_dir, "node", "pod-logs") if cl.own_cluster else None
        self.dst = os.path.join(cl.work, "pod-logs")
        os.makedirs(self.dst)
        self.sizes = {}
        self.stop = threading.Event()
        if self.src:
            threading.Thread(target=self.loop, daemon=True).start()

    def copy(self):
        for root, _, names in os.walk(self.src):
            for name in names:
                path = os.path.join(root, name)
                try:
                    size = os.path.getsize(path)
                    if self.sizes.get(path) == size:
                        continue
                    out = os.path.join(self.dst, os.path.relpath(path, self.src))
                    os.makedirs(os.path.dirname(out), exist_ok=True)
                    shutil.copyfile(path, out)
                    self.sizes[path] = size
                except OSError:
                    continue  # gone with its pod meanwhile

    def loop(self):
        while not self.stop.wait(0.5):
            try:
                self.copy()
            except Exception:  # noqa: BLE001 - the collector must outlive a bad moment
                pass

    def files(self):
        if self.src:
            self.copy()
        else:
            for p in self.cl.kj("get", "pods", "-A")["items"]:
                md = p["metadata"]
                out = self.cl.k("logs", "-n", md["namespace"], md["name"], "--all-containers",
                                check=False).stdout
                with open(os.path.join(self.dst, f"{md['namespace']}_{md['name']}.log"), "w") as f:
                    f.write(out)
        found = []
        for root, _, names in os.walk(self.dst):
            found += [os.path.join(root, n) for n in names]
        return sorted(found)


# -------------------------------------------------------------------- the install

def images(repo):
    v = re.search(r'constexpr char kVersion\[\] = "(.*)";',
                  open(os.path.join(repo, "agent/cmd/main.cc")).read()).group(1)
    return v, f"ghcr.io/miglet/mig-controller:{v}", f"ghcr.io/miglet/miglet-agent:{v}"


def build_runner_image(cl, standin, version):
    """The fake runner laid out like actions-runner (tests/e2e/runner-image), plus the
    stand-in's CA in the system trust store, as a GHES user with a private CA does."""
    base = f"{RUNNER_IMAGE_BASE}:{version}"
    run(["docker", "build", "-q", "-f", os.path.join(cl.repo, "tests/e2e/runner-image/Dockerfile"),
         "-t", base, cl.repo], timeout=900)
    ca_hash = hashlib.sha256(open(standin.ca_cert, "rb").read()).hexdigest()[:12]
    tag = f"{RUNNER_IMAGE_BASE}:{version}-ca-{ca_hash}"
    ctx = os.path.join(cl.work, "runner-ca")
    os.makedirs(ctx)
    shutil.copy(standin.ca_cert, os.path.join(ctx, "standin-ca.crt"))
    with open(os.path.join(ctx, "Dockerfile"), "w") as f:
        f.write(f"FROM {base}\nUSER root\n"
                "COPY standin-ca.crt /usr/local/share/ca-certificates/standin-ca.crt\n"
                "RUN update-ca-certificates >/dev/null\nUSER runner\n")
    run(["docker", "build", "-q", "-t", tag, ctx], timeout=300)
    return tag


def helm_values(cl, standin, controller_image, extra=None):
    repo, tag = controller_image.rsplit(":", 1)
    v = {"image": {"repository": repo, "tag": tag, "pullPolicy": "IfNotPresent"},
         "github": {"token": PAT, "caBundle": open(standin.ca_cert).read()},
         "flags": {"log-level": "debug", "heartbeat-timeout": "20s"},
         "metrics": {"readers": [{"name": PROMETHEUS_SA, "namespace": NS}]}}
    if cl.args.scrape_via_apiserver:
        v["metrics"] = {"secure": False}
    for key, val in (extra or {}).items():
        v["flags"][key] = val
    return v


def install(cl, values):
    path = os.path.join(cl.work, "values.yaml")
    with open(path, "w") as f:
        yaml.safe_dump(values, f)
    cl.helm("upgrade", "--install", RELEASE, os.path.join(cl.repo, "deploy/helm/miglet"),
            "-n", NS, "--create-namespace", "-f", path, "--wait", "--timeout", "180s")


# -------------------------------------------------------------------- scenarios

class Env:
    def __init__(self, cl, standin, prom, runner_image, agent_image):
        self.cl, self.gh, self.prom = cl, standin, prom
        self.runner_image, self.agent_image = runner_image, agent_image

    def pool(self, name, replicas, **spec):
        body = {"replicas": replicas,
                "github": {"url": f"{self.gh.url}/{ORG}",
                           "tokenSecretRef": {"name": f"{RELEASE}-github"}},
                "runner": {"labels": ["self-hosted", f"e2e-{name}"], "image": self.runner_image},
                "agent": {"image": self.agent_image, "heartbeatInterval": "2s"},
                "scaleDown": {"drainTimeoutSeconds": 300}}
        for key, val in spec.items():
            if isinstance(val, dict):
                body.setdefault(key, {}).update(val)
            else:
                body[key] = val
        self.cl.apply({"apiVersion": "miglet.dev/v1alpha1", "kind": "RunnerPool",
                       "metadata": {"name": name, "namespace": NS}, "spec": body})

    def scale(self, name, n):
        self.cl.k("scale", "-n", NS, f"runnerpool/{name}", f"--replicas={n}")

    def ready(self, name, n, timeout=180):
        """n pods Running and ready, n runners online in the stand-in, n RunnerVMs Idle."""
        label = f"e2e-{name}"
        await_(f"{n} running pods of {name}",
               lambda: len([p for p in self.cl.pool_pods(name) if running(p)]) == n, timeout)
        await_(f"{n} online runners labelled {label}", lambda: len(self.gh.online(label)) == n, timeout)
        await_(f"{n} Idle RunnerVMs of {name}",
               lambda: [v["status"].get("phase") for v in self.cl.vms(name)].count("Idle") == n, timeout)

    def busy(self, name, job_ids, timeout=120):
        await_(f"jobs {job_ids} running",
               lambda: all(j["status"] == "running" for j in self.gh.jobs(job_ids)), timeout)

    def delete_pool(self, name, timeout=180):
        self.cl.k("delete", "runnerpool", "-n", NS, name, "--wait=false", check=False)
        await_(f"pool {name} and its pods gone",
               lambda: not self.cl.pool_pods(name) and not self.cl.kj(
                   "get", "runnerpools", "-n", NS, "--field-selector", f"metadata.name={name}")["items"],
               timeout)

    def agent_metric(self, pod, name):
        """A metric straight from an agent's /metrics, summed over its series."""
        ip = pod["status"]["podIP"]
        port = pod["metadata"]["annotations"]["prometheus.io/port"]
        text = urllib.request.urlopen(f"http://{ip}:{port}/metrics", timeout=5).read().decode()
        total = None
        for line in text.splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{"):
                total = (total or 0) + float(line.rsplit(" ", 1)[1])
        return total


def s1_scale_to_five(e):
    e.pool("s1", 0)
    e.scale("s1", 5)
    e.ready("s1", 5)
    out = e.cl.k("get", "runnervms", "-n", NS, "-l", "miglet.dev/pool=s1").stdout
    if out.count(" Idle ") != 5:
        raise Failed(f"kubectl get runnervms does not show five Idle:\n{out}")
    await_("Prometheus showing five connected agents of s1",
           lambda: e.prom.value('count(miglet_stream_connected{pool="s1"} == 1)') == 5, 60)
    e.scale("s1", 0)
    await_("s1 back to no pods and no runners",
           lambda: not e.cl.pool_pods("s1") and not e.gh.runners("e2e-s1"), 180)
    e.delete_pool("s1")


def s2_scale_down_busy(e):
    e.pool("s2", 2)
    e.ready("s2", 2)
    jobs = [e.gh.job("e2e-s2", f"s2-job-{i}") for i in range(2)]
    e.busy("s2", jobs)
    e.scale("s2", 1)
    # The controller must not kill a busy runner: both jobs stay running while it settles.
    await_("the pool to observe replicas 1",
           lambda: e.cl.kj("get", "runnerpool", "-n", NS, "s2")["status"].get("observedGeneration", 0)
           >= e.cl.kj("get", "runnerpool", "-n", NS, "s2")["metadata"]["generation"], 60)
    states = [j["status"] for j in e.gh.jobs(jobs)]
    if states != ["running", "running"]:
        raise Failed(f"after scaling to 1 the jobs are {states}, not both running")
    for j in jobs:
        e.gh.finish(j)
    await_("both jobs completed", lambda: all(j["status"] == "completed" for j in e.gh.jobs(jobs)), 120)
    results = [j.get("result") for j in e.gh.jobs(jobs)]
    if results != ["Succeeded", "Succeeded"]:
        raise Failed(f"job results {results}, want both Succeeded")
    await_("one runner registered for s2 and one pod",
           lambda: len(e.gh.runners("e2e-s2")) == 1 and len(e.gh.online("e2e-s2")) == 1
           and len(e.cl.pool_pods("s2")) == 1, 180)
    e.delete_pool("s2")


def s3_controller_killed(e):
    e.pool("s3", 0)
    jit_before = e.gh.route_count("POST /orgs/{org}/actions/runners/generate-jitconfig")
    e.scale("s3", 4)
    old = e.cl.controller_pods()[0]["metadata"]["name"]
    e.cl.k("delete", "pod", "-n", NS, old, "--wait=false")
    await_("a new controller pod ready",
           lambda: [p for p in e.cl.controller_pods()
                    if p["metadata"]["name"] != old and running(p)], 120)
    e.ready("s3", 4)
    if e.cl.own_cluster:
        # Now SIGKILL the controller's container itself (crictl stop with no grace): the kubelet
        # restarts it in the same pod.
        pod = [p for p in e.cl.controller_pods() if running(p)][0]
        restarts = pod["status"]["containerStatuses"][0]["restartCount"]
        cid = e.cl.crictl("ps", "-q", "--label", f"io.kubernetes.pod.name={pod['metadata']['name']}",
                          "--name", "mig-controller").stdout.split()
        if not cid:
            raise Failed("crictl ps found no mig-controller container")
        e.cl.crictl("stop", "--timeout", "0", cid[0])
        e.scale("s3", 5)
        await_("the controller container restarted",
               lambda: [p for p in e.cl.controller_pods()
                        if p["status"]["containerStatuses"][0]["restartCount"] > restarts and running(p)],
               120)
        e.ready("s3", 5)
    n = 5 if e.cl.own_cluster else 4
    pods = e.cl.pool_pods("s3")
    # Every agent reconnected (within the backoff cap: the stand-in long-polls meanwhile).
    await_("every agent of s3 connected",
           lambda: all(e.agent_metric(p, "miglet_stream_connected") == 1 for p in pods), 60)
    # No registration lost or run twice: one JIT config per runner, no runner restarted.
    jit = e.gh.route_count("POST /orgs/{org}/actions/runners/generate-jitconfig") - jit_before
    if jit != n:
        raise Failed(f"{jit} JIT configs generated for {n} runners")
    names = [r["name"] for r in e.gh.runners("e2e-s3")]
    if len(names) != len(set(names)) or len(names) != n:
        raise Failed(f"stand-in runners of s3: {names}")
    for p in pods:
        if e.agent_metric(p, "miglet_runner_restarts_total") != 0:
            raise Failed(f"{p['metadata']['name']}: its runner was started twice")
    e.delete_pool("s3")


def pod_netns(e, pod):
    sandbox = e.cl.crictl("pods", "-q", "--name", f"^{pod['metadata']['name']}$",
                          "--namespace", NS).stdout.split()[0]
    info = json.loads(e.cl.crictl("inspectp", sandbox).stdout)
    for ns in info["info"]["runtimeSpec"]["linux"]["namespaces"]:
        if ns["type"] == "network":
            return ns["path"]
    raise Failed("no network namespace for " + pod["metadata"]["name"])


def s4_partition(e):
    if not e.cl.own_cluster:
        raise Skip("needs the node's network namespaces (own cluster only)")
    e.pool("s4", 1, replacePolicy="Keep")
    e.ready("s4", 1)
    job = e.gh.job("e2e-s4", "s4-job")
    e.busy("s4", [job])
    pod = e.cl.pool_pods("s4")[0]
    netns = pod_netns(e, pod)
    svc = e.cl.kj("get", "service", "-n", NS, RELEASE)["spec"]["clusterIP"]
    ctl = [p["status"]["podIP"] for p in e.cl.controller_pods() if running(p)]
    addrs = ", ".join([svc] + ctl)
    rules = (f"add table inet e2e\nadd chain inet e2e out {{ type filter hook output priority 0; }}\n"
             f"add rule inet e2e out ip daddr {{ {addrs} }} drop\n")
    run(["nsenter", f"--net={netns}", "nft", "-f", "-"], input=rules)
    t0 = time.monotonic()
    try:
        vm = pod["metadata"]["name"]
        await_("the RunnerVM Lost with AgentLost=True",
               lambda: (lambda v: v["status"].get("phase") == "Lost" and any(
                   c["type"] == "AgentLost" and c["status"] == "True"
                   for c in v["status"].get("conditions", [])))(
                   e.cl.kj("get", "runnervm", "-n", NS, vm)), 90)
        if e.gh.jobs([job])[0]["status"] != "running":
            raise Failed("the job stopped while its agent was cut off")
        left = 90 - (time.monotonic() - t0)
        # Hold the block for the full 90 s, checking the job the whole time.
        await_("the 90 s block to pass with the job running",
               lambda: (e.gh.jobs([job])[0]["status"] == "running" or _raise("job stopped"))
               and time.monotonic() - t0 >= 90, left + 30, interval=2)
    finally:
        run(["nsenter", f"--net={netns}", "nft", "delete", "table", "inet", "e2e"], check=False)
    await_("the RunnerVM back to JobRunning",
           lambda: e.cl.kj("get", "runnervm", "-n", NS, vm)["status"].get("phase") == "JobRunning", 120)
    e.gh.finish(job)
    await_("the job Succeeded",
           lambda: e.gh.jobs([job])[0].get("result") == "Succeeded", 60)
    e.delete_pool("s4")


def _raise(msg):
    raise Failed(msg)


def s5_apiserver_restart(e):
    if not e.cl.own_cluster:
        raise Skip("restarts the apiserver of its own cluster only")
    e.pool("s5", 2)
    e.ready("s5", 2)
    e.cl.restart_apiserver()
    # Watches recover: a scale after the restart is seen, and nothing that was there is lost.
    e.scale("s5", 3)
    e.ready("s5", 3)
    if len(e.cl.vms("s5")) != 3:
        raise Failed(f"{len(e.cl.vms('s5'))} RunnerVMs, want 3")
    e.delete_pool("s5")


def s6_node_drain(e):
    e.pool("s6", 2)
    e.ready("s6", 2)
    job = e.gh.job("e2e-s6", "s6-job")
    e.busy("s6", [job])
    await_("the controller seeing one runner busy",
           lambda: [v["status"].get("phase") for v in e.cl.vms("s6")].count("JobRunning") == 1, 60)
    busy_vm = [v["metadata"]["name"] for v in e.cl.vms("s6") if v["status"].get("phase") == "JobRunning"]
    idle_vm = [v["metadata"]["name"] for v in e.cl.vms("s6") if v["status"].get("phase") == "Idle"]
    if len(busy_vm) != 1 or len(idle_vm) != 1:
        raise Failed(f"busy {busy_vm}, idle {idle_vm}")
    node = e.cl.kj("get", "pod", "-n", NS, busy_vm[0])["spec"]["nodeName"]
    try:
        p = e.cl.k("drain", node, "--pod-selector=miglet.dev/pool=s6", "--ignore-daemonsets",
                   "--delete-emptydir-data",
                   "--timeout=25s", check=False, timeout=90)
        out = p.stdout + p.stderr
        if "disruption budget" not in out:
            raise Failed(f"kubectl drain never met the PDB (429):\n{out[-1500:]}")
        pods = {x["metadata"]["name"]: x for x in e.cl.pods("miglet.dev/pool=s6")}
        if busy_vm[0] not in pods or pods[busy_vm[0]]["metadata"].get("deletionTimestamp"):
            raise Failed(f"the busy pod {busy_vm[0]} was evicted")
        await_(f"the idle pod {idle_vm[0]} evicted",
               lambda: idle_vm[0] not in {x["metadata"]["name"] for x in e.cl.pool_pods("s6")}, 60)
        if e.gh.jobs([job])[0]["status"] != "running":
            raise Failed("the job stopped during the drain")
    finally:
        e.cl.k("uncordon", node, check=False)
    e.gh.finish(job)
    await_("the job Succeeded", lambda: e.gh.jobs([job])[0].get("result") == "Succeeded", 60)
    e.delete_pool("s6")


def s7_live_config(e):
    e.pool("s7", 2)
    e.ready("s7", 2)
    before = {p["metadata"]["uid"] for p in e.cl.pool_pods("s7")}
    e.cl.k("patch", "runnerpool", "-n", NS, "s7", "--type=merge", "-p",
           json.dumps({"spec": {"agent": {"logLevel": "debug", "heartbeatInterval": "3s"}}}))

    def applied():
        pods = e.cl.pool_pods("s7")
        return len(pods) == 2 and all(
            e.agent_metric(p, "miglet_heartbeat_interval_seconds") == 3
            and e.agent_metric(p, 'miglet_log_level{level="debug"}') == 1 for p in pods)
    await_("every agent of s7 on debug with a 3 s heartbeat (their metrics)", applied, 90)
    await_("Prometheus seeing the same",
           lambda: e.prom.value('count(miglet_heartbeat_interval_seconds{pool="s7"} == 3)') == 2
           and e.prom.value('count(miglet_log_level{pool="s7",level="debug"} == 1)') == 2, 60)
    after = e.cl.pool_pods("s7")
    if {p["metadata"]["uid"] for p in after} != before or any(
            c["restartCount"] for p in after for c in p["status"]["containerStatuses"]):
        raise Failed("a pod was replaced or restarted to apply the change")
    e.delete_pool("s7")


def s8_helm_upgrade(e):
    e.pool("s8", 2)
    e.ready("s8", 2)
    jobs = [e.gh.job("e2e-s8", f"s8-job-{i}") for i in range(2)]
    e.busy("s8", jobs)
    old = {p["metadata"]["name"] for p in e.cl.controller_pods()}
    install(e.cl, helm_values(e.cl, e.gh, e.controller_image,
                              {"log-level": "info", "ack-timeout": "45s"}))
    await_("the upgraded controller running",
           lambda: [p for p in e.cl.controller_pods() if p["metadata"]["name"] not in old and running(p)],
           120)
    pods = e.cl.pool_pods("s8")
    await_("both agents reconnected",
           lambda: all(e.agent_metric(p, "miglet_stream_connected") == 1 for p in pods), 60)
    if [j["status"] for j in e.gh.jobs(jobs)] != ["running", "running"]:
        raise Failed("a job stopped during helm upgrade")
    for j in jobs:
        e.gh.finish(j)
    await_("both jobs Succeeded",
           lambda: [j.get("result") for j in e.gh.jobs(jobs)] == ["Succeeded", "Succeeded"], 90)
    e.delete_pool("s8")


def s9_pod_deleted_mid_job(e):
    e.pool("s9", 1)
    e.ready("s9", 1)
    job = e.gh.job("e2e-s9", "s9-job")
    e.busy("s9", [job])
    pod = e.cl.pool_pods("s9")[0]
    runner = [r["name"] for r in e.gh.runners("e2e-s9")][0]
    e.cl.k("delete", "pod", "-n", NS, pod["metadata"]["name"], "--wait=false")
    await_("the pod terminating", lambda: e.cl.kj("get", "pod", "-n", NS, pod["metadata"]["name"])
           ["metadata"].get("deletionTimestamp"), 30)
    # SIGTERM reached the agent: it lets the job run.
    if e.gh.jobs([job])[0]["status"] != "running":
        raise Failed("the job stopped when the pod got SIGTERM")
    e.gh.finish(job)
    await_("the job Succeeded", lambda: e.gh.jobs([job])[0].get("result") == "Succeeded", 60)
    await_(f"runner {runner} deregistered",
           lambda: runner not in [r["name"] for r in e.gh.runners("e2e-s9")], 120)
    await_("the pool replacing the pod",
           lambda: [p for p in e.cl.pool_pods("s9")
                    if p["metadata"]["uid"] != pod["metadata"]["uid"] and running(p)], 120)
    e.ready("s9", 1)
    e.delete_pool("s9")


def s10_dashboard_and_alerts(e):
    """Every dashboard query returns data on the real Prometheus after the other scenarios;
    every alert rule loaded healthy, naming only series that exist."""
    chart = os.path.join(e.cl.repo, "deploy/helm/miglet/files")
    dash = json.load(open(os.path.join(chart, "dashboard.json")))
    # A persistent runner that has run a job, so the jobs panel has a live series.
    e.pool("s10", 1, runner={"ephemeral": False})
    e.ready("s10", 1)
    job = e.gh.job("e2e-s10", "s10-job")
    e.busy("s10", [job])
    e.gh.finish(job)
    await_("the job Succeeded", lambda: e.gh.jobs([job])[0].get("result") == "Succeeded", 60)
    empty = []

    def panel_queries():
        for p in dash["panels"]:
            for t in p.get("targets", []):
                yield p.get("title", "?"), t["expr"]
    for title, expr in panel_queries():
        q = expr.replace("$__rate_interval", "1m").replace("$namespace", ".*").replace("$pool", ".*")
        try:
            await_(f"data for panel {title!r}", lambda: e.prom.query(q), 30, interval=2)
        except Failed:
            empty.append(f"{title}: {expr}")
    rules = json.loads(e.prom.get("/api/v1/rules"))["data"]["groups"]
    bad = [r["name"] for g in rules for r in g["rules"] if r.get("health") != "ok"]
    names = set()
    for g in rules:
        for r in g["rules"]:
            names |= set(re.findall(r"\b((?:mig_controller|miglet)_[a-z_]+)", r["query"]))
    missing = [n for n in sorted(names)
               if not e.prom.query(f'group({{__name__=~"{n}(_bucket|_count|_sum)?"}})')]
    e.delete_pool("s10")
    problems = []
    if empty:
        problems.append("panels with no data:\n  " + "\n  ".join(empty))
    if bad:
        problems.append(f"alert rules not healthy: {bad}")
    if missing:
        problems.append(f"alert rules name series that do not exist: {missing}")
    if not rules:
        problems.append("no alert rules loaded")
    if problems:
        raise Failed("\n".join(problems))


# What a secret looks like, whatever issued it: a private key, a JWT (service-account tokens,
# GitHub App JWTs), a GitHub token.
SECRET_SHAPES = [re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY"),
                 re.compile(r"eyJ[\w-]{10,}\.eyJ[\w-]{10,}\.[\w-]{10,}"),
                 re.compile(r"\bgh[psu]_[A-Za-z0-9]{20,}")]


def s11_secrets_never_logged(e):
    """No secret in any log line of the run: registration tokens, JIT configs, installation
    tokens, the PAT, service-account tokens, keys, in the controller's and every agent's logs."""
    # This scenario's own share of secrets: registrations, a job, deregistrations.
    e.pool("s11", 2)
    e.ready("s11", 2)
    job = e.gh.job("e2e-s11", "s11-job")
    e.busy("s11", [job])
    e.gh.finish(job)
    await_("the s11 job completed", lambda: e.gh.jobs([job])[0]["status"] == "completed", 120)
    e.scale("s11", 0)
    await_("s11 back to no pods and no runners",
           lambda: not e.cl.pool_pods("s11") and not e.gh.runners("e2e-s11"), 180)
    e.delete_pool("s11")
    secrets = set(e.gh.call("GET", "/_standin/secrets")["secrets"]) | {PAT}
    if getattr(e.prom, "token_file", None):
        secrets.add(open(e.prom.token_file).read().strip())
    for pod in e.cl.pods("app.kubernetes.io/name=miglet"):
        secrets.add(e.cl.k("exec", "-n", NS, pod["metadata"]["name"], "--", "cat",
                           "/var/run/secrets/kubernetes.io/serviceaccount/token").stdout.strip())
    secrets = {s for s in secrets if len(s) >= 8}
    files = e.logs.files()
    leaks, lines, controller_lines, agent_lines = [], 0, 0, 0
    for path in files:
        with open(path, errors="replace") as f:
            for n, line in enumerate(f, 1):
                lines += 1
                if f"{NS}_{RELEASE}-" in path or "/mig-controller/" in path:
                    controller_lines += 1
                if "/runner/" in path or "connected" in line and "miglet" in line:
                    agent_lines += 1
                hit = [s[:6] + "..." for s in secrets if s in line]
                hit += [p.pattern for p in SECRET_SHAPES if p.search(line)]
                if hit:
                    leaks.append(f"{os.path.relpath(path, e.logs.dst)}:{n}: {hit}")
    if not controller_lines or not agent_lines:
        raise Failed(f"{controller_lines} controller and {agent_lines} agent log lines among the "
                     f"{lines} collected from {len(files)} files: the collector missed them")
    if leaks:
        raise Failed(f"{len(leaks)} log lines hold a secret:\n  " + "\n  ".join(leaks[:20]))
    log(f"{lines} log lines in {len(files)} files ({controller_lines} the controller's, "
        f"{agent_lines} agents'), "
        f"{len(secrets)} secrets issued in the run: none logged")


SCENARIOS = [
    ("scale-to-five", s1_scale_to_five),
    ("scale-down-busy", s2_scale_down_busy),
    ("controller-killed", s3_controller_killed),
    ("agent-partitioned", s4_partition),
    ("apiserver-restart", s5_apiserver_restart),
    ("node-drain", s6_node_drain),
    ("live-config", s7_live_config),
    ("helm-upgrade", s8_helm_upgrade),
    ("pod-deleted-mid-job", s9_pod_deleted_mid_job),
    ("dashboard-and-alerts", s10_dashboard_and_alerts),
    ("secrets-never-logged", s11_secrets_never_logged),
]


def demo(e):
    """make demo: a pool of three runners, what to try next, up until Ctrl-C."""
    cl = e.cl
    url, token = os.environ.get("MIGLET_GITHUB_URL"), os.environ.get("MIGLET_GITHUB_TOKEN")
    if url and token:
        # Real GitHub: the token in its own Secret, the real runner image (the node pulls it).
        cl.apply(cl.k("create", "secret", "generic", "-n", NS, "demo-github",
                      f"--from-literal=github_token={token}", "--dry-run=client", "-o", "yaml").stdout)
        e.pool("demo", 3, github={"url": url, "tokenSecretRef": {"name": "demo-github"}},
               runner={"labels": ["self-hosted", "linux", "miglet-demo"],
                       "image": "ghcr.io/actions/actions-runner:latest"})
        where = url
    else:
        e.pool("demo", 3)
        where = "the GitHub stand-in"
    t0 = time.monotonic()
    if url and token:
        await_("three running runner pods",
               lambda: len([p for p in cl.pool_pods("demo") if running(p)]) == 3, 600)
    else:
        e.ready("demo", 3, timeout=600)
    ctl = [p for p in cl.controller_pods() if running(p)][0]
    kc = cl.kubeconfig
    gh = e.gh
    print(f"""
miglet is running on a one-node Kubernetes cluster on this machine, with three runners
registered at {where} ({time.monotonic() - t0:.0f}s after the pool was created).

  export KUBECONFIG={kc}
  kubectl get runnerpools,runnervms -n {NS}
  kubectl scale runnerpool/demo -n {NS} --replicas=5        # watch: kubectl get runnervms -n {NS} -w
  kubectl describe runnerpool demo -n {NS}
  kubectl logs -n {NS} deploy/{RELEASE}                      # the controller
  kubectl logs -n {NS} <a runner pod> -c runner              # an agent and its runner

  # a job for the runners (the stand-in's test API), then finish it:
  curl -s --cacert {gh.ca_cert} -d '{{"name":"hello","scope":"org:{ORG}","labels":["self-hosted","e2e-demo"]}}' {gh.url}/_standin/jobs
  curl -s --cacert {gh.ca_cert} -d '{{"result":"Succeeded"}}' {gh.url}/_standin/jobs/<id>/finish
  curl -s --cacert {gh.ca_cert} {gh.url}/_standin/            # runners and jobs as GitHub sees them

  Prometheus:          {e.prom.url}   (e.g. miglet_stream_connected, mig_controller_runnervms)
  # the controller's /metrics and agent list need a token RBAC allows (docs/security.md):
  curl -s -H "Authorization: Bearer $(kubectl create token {PROMETHEUS_SA} -n {NS})" http://{ctl["status"]["podIP"]}:9090/metrics
  kubectl create clusterrolebinding me-miglet --clusterrole={RELEASE}-api-viewer --serviceaccount={NS}:{PROMETHEUS_SA}
  curl -s -H "Authorization: Bearer $(kubectl create token {PROMETHEUS_SA} -n {NS})" http://{ctl["status"]["podIP"]}:8080/api/v1/vms

Ctrl-C stops everything and puts the machine back as it was.""", flush=True)
    stop = []
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    while not stop:
        signal.pause()
    print("\ndemo: cleaning up", flush=True)
    e.delete_pool("demo", timeout=120)
    return 0


def bench_scale(e, n, runs=3):
    """Figures, not a test: scale 0 -> n until n runners are online at the stand-in (pods made,
    images local), n -> 0 until no pod and no runner is left, `runs` times."""
    e.pool("bench", 0)
    ups, downs = [], []
    for _ in range(runs):
        t0 = time.monotonic()
        e.scale("bench", n)
        await_(f"{n} runners online", lambda: len(e.gh.online("e2e-bench")) == n, 600, interval=0.2)
        ups.append(time.monotonic() - t0)
        t0 = time.monotonic()
        e.scale("bench", 0)
        await_("no runner and no pod left",
               lambda: not e.gh.runners("e2e-bench") and not e.cl.pool_pods("bench"), 600, interval=0.2)
        downs.append(time.monotonic() - t0)
    e.delete_pool("bench")
    fmt = lambda xs: " ".join(f"{x:.1f}" for x in xs) + f"  (median {sorted(xs)[len(xs) // 2]:.1f} s)"
    print(f"kubectl scale 0 -> {n}, until all {n} runners are online: {fmt(ups)}")
    print(f"kubectl scale {n} -> 0 (no job), until no runner and no pod is left: {fmt(downs)}")
    return 0


def dump(e, name, out):
    """What a person needs to see why a scenario failed."""
    cl = e.cl
    sections = [
        ("controller logs", ["logs", "-n", NS, "-l", "app.kubernetes.io/name=miglet", "--tail=200",
                             "--all-containers", "--prefix"]),
        ("events", ["get", "events", "-n", NS, "--sort-by=.lastTimestamp"]),
        ("runnerpools", ["get", "runnerpools", "-n", NS, "-o", "yaml"]),
        ("runnervms", ["get", "runnervms", "-n", NS, "-o", "yaml"]),
        ("pods", ["get", "pods", "-n", NS, "-o", "wide"]),
    ]
    with open(out, "w") as f:
        for title, args in sections:
            p = cl.k(*args, check=False)
            f.write(f"===== {title}\n{p.stdout}{p.stderr}\n")
        # Each runner pod's agent on its own (one pod still initializing must not hide the rest).
        for pod in cl.pods("app.kubernetes.io/name=miglet-runner")[:12]:
            pname = pod["metadata"]["name"]
            p = cl.k("logs", "-n", NS, pname, "-c", "runner", "--tail=40", check=False)
            f.write(f"===== agent log of {pname} ({pod['status'].get('phase')})\n{p.stdout}{p.stderr}\n")
        try:
            f.write("===== stand-in runners and jobs\n" + json.dumps(
                {k: e.gh.state()[k] for k in ("runners", "jobs")}, indent=1) + "\n")
        except Exception as ex:  # noqa: BLE001 - a dump must not hide the failure
            f.write(f"stand-in state unavailable: {ex}\n")
    print(f"----- dump of {name} ({out}), last 150 lines:")
    with open(out) as f:
        lines = f.readlines()
    sys.stdout.write("".join(lines[-150:]))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repo", default=os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__)))))
    ap.add_argument("--scenario", action="append", help="run only these (repeatable)")
    ap.add_argument("--keep", action="store_true", help="keep the cluster's state (down.sh --keep)")
    ap.add_argument("--kubeconfig", help="an existing cluster with the images (no own cluster)")
    ap.add_argument("--node-address", help="with --kubeconfig: an address of this host pods reach")
    ap.add_argument("--scrape-via-apiserver", action="store_true",
                    help="Prometheus scrapes pods through the apiserver proxy (pod IPs unreachable)")
    ap.add_argument("--load-command", help="with --kubeconfig: how images get into the cluster, "
                    "run with each image name appended (kind.sh: kind load docker-image --name X)")
    ap.add_argument("--list", action="store_true", help="list the scenarios")
    ap.add_argument("--bench-scale", type=int, metavar="N",
                    help="print timings instead of testing: kubectl scale 0 -> N until all N runners "
                         "are online in the stand-in, then N -> 0 until none is left (make bench-e2e)")
    ap.add_argument("--demo", action="store_true",
                    help="make demo: set everything up, a pool of three runners, stay up until "
                         "Ctrl-C (MIGLET_GITHUB_URL + MIGLET_GITHUB_TOKEN: real GitHub instead)")
    args = ap.parse_args()
    if args.list:
        for name, fn in SCENARIOS:
            print(f"{name:22} {(fn.__doc__ or '').strip().splitlines()[0] if fn.__doc__ else ''}")
        return 0
    repo = os.path.abspath(args.repo)
    chosen = [(n, f) for n, f in SCENARIOS if not args.scenario or n in args.scenario]
    if args.scenario and len(chosen) != len(args.scenario):
        print(f"unknown scenario in {args.scenario}; --list shows them", file=sys.stderr)
        return 2
    version, controller_image, agent_image = images(repo)

    # What this machine must have; say why when it has not.
    if not args.kubeconfig and os.geteuid() != 0:
        print("SKIP: the one-node cluster needs root (a bridge, containerd, a kubelet)")
        return SKIP
    if run(["docker", "info"], check=False).returncode != 0:
        print("SKIP: no Docker engine answers here (the images are built with Docker)")
        return SKIP
    for image in (controller_image, agent_image):
        if run(["docker", "image", "inspect", image], check=False).returncode != 0:
            print(f"SKIP: image {image} is not built (make images)")
            return SKIP
    for tool in ("prometheus", "promtool", "kubectl", "openssl"):
        if not shutil.which(tool):
            print(f"FAIL: {tool} not found (scripts/install-deps.sh installs it)")
            return 1
    standin_bin = os.path.join(repo, "build", "e2e", "bin")
    run([os.path.join(repo, "tests/github-standin/build.sh"), standin_bin])

    work = tempfile.mkdtemp(prefix="miglet-e2e.")
    cl = Cluster(args, repo, work)
    failed = []
    prom = None
    try:
        cl.up()
        pod_logs = PodLogs(cl)
        standin = StandIn(cl, os.path.join(standin_bin, "github-standin"))
        runner_image = build_runner_image(cl, standin, version)
        cl.import_images([controller_image, agent_image, runner_image])
        prom = Prometheus(cl)
        values = helm_values(cl, standin, controller_image)
        t0 = time.monotonic()
        install(cl, values)
        log(f"helm install in {time.monotonic() - t0:.1f}s; Prometheus {prom.url}; "
            f"stand-in {standin.url}")
        e = Env(cl, standin, prom, runner_image, agent_image)
        e.controller_image = controller_image
        e.logs = pod_logs
        if args.demo:
            return demo(e)
        if args.bench_scale:
            return bench_scale(e, args.bench_scale)
        for name, fn in chosen:
            t0 = time.monotonic()
            try:
                fn(e)
                print(f"ok   {name} ({time.monotonic() - t0:.0f}s)", flush=True)
            except Skip as s:
                print(f"skip {name}: {s}", flush=True)
            except Exception as ex:  # noqa: BLE001 - every scenario reports, the rest go on
                failed.append(name)
                why = str(ex) if isinstance(ex, Failed) else traceback.format_exc()
                print(f"FAIL {name} ({time.monotonic() - t0:.0f}s): {why}", flush=True)
                try:
                    dump(e, name, os.path.join(repo, "build", "e2e", f"{name}.dump.txt"))
                except Exception as dx:  # noqa: BLE001 - the cluster itself may be down
                    print(f"     (dump failed: {dx})")
                # Leave the next scenario a clean namespace.
                cl.k("delete", "runnerpools", "-n", NS, "--all", "--wait=false", check=False)
                try:
                    await_("the failed scenario's pools gone",
                           lambda: not cl.kj("get", "runnerpools", "-n", NS)["items"], 120)
                except Failed as f2:
                    print(f"     (cleanup: {f2})")
        print(f"e2e: {len(chosen) - len(failed)} of {len(chosen)} scenarios passed"
              + (f"; failed: {' '.join(failed)}" if failed else ""))
        return 1 if failed else 0
    except Skip as s:
        print(f"SKIP: {s}")
        return SKIP
    except Failed as ex:
        print(f"FAIL setup: {ex}")
        return 1
    finally:
        if cl.kubeconfig and not args.keep:
            cl.k("delete", "runnerpools", "--all", "-A", "--wait=false", check=False)
        if prom is not None:
            prom.stop.set()
        for p in cl.procs:
            p.terminate()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        cl.down()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
