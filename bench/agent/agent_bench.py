#!/usr/bin/env python3
"""bench/agent: the miglet agent's footprint. Prints figures; asserts nothing.

Starts mig-controller and one miglet (with the fake runner) on loopback, then measures:
  - start -> connected: from spawning miglet to the controller listing it as connected
    (polled every 2 ms over the HTTP API), over --runs fresh agent starts;
  - RSS idle (connected, runner registered and listening) and during a job;
  - the idle memory split: PSS (shared pages divided among the processes that map them),
    anonymous (heap and stacks: miglet's own), and RSS of the shared libraries' mappings;
  - CPU per hour idle, from /proc/<pid>/stat over --idle-seconds with 15 s heartbeats.
--agent runs another miglet, e.g. the bundle's bin/miglet (its own loader and libraries).
Usage: agent_bench.py BUILD_DIR [--runs 10] [--idle-seconds 60] [--agent PATH]
"""
import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def http(method, url, body=None, timeout=30):
    req = urllib.request.Request(url, method=method, data=body.encode() if body else None)
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read() or b"{}")


def proc_stats(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks
    rss = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    return cpu, rss


def memory(pid):
    """KiB: Pss and Anonymous from smaps_rollup; Rss of shared-library mappings from smaps."""
    m = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("Rss", "Pss", "Anonymous"):
                m[k] = int(v.split()[0])
    libs, current = 0, None
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            head = line.split()
            if "-" in head[0] and len(head) >= 5 and not head[0].endswith(":"):
                current = head[5] if len(head) > 5 else ""
            elif head[0] == "Rss:" and current and (".so" in os.path.basename(current)
                                                    or current.endswith("/ld.so")):
                libs += int(head[1])
    m["Libs"] = libs
    return m


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--idle-seconds", type=int, default=60)
    ap.add_argument("--agent", help="the miglet to run (default BUILD/agent/miglet)")
    args = ap.parse_args()
    agent = args.agent or f"{args.build}/agent/miglet"
    work = tempfile.mkdtemp(prefix="agent-bench-")
    info = os.path.join(work, "ports.json")
    ctl = subprocess.Popen([f"{args.build}/operator/mig-controller", "--bind-address=127.0.0.1",
                            "--grpc-port=0", "--http-port=0", "--metrics-port=-1",
                            "--log-level=warn", f"--listen-info-file={info}"])
    try:
        while not os.path.exists(info):
            time.sleep(0.01)
        ports = json.load(open(info))
        api = f"http://127.0.0.1:{ports['http_port']}/api/v1/vms"

        def start_agent(vm, runner_dir, interval="15s"):
            os.makedirs(runner_dir, exist_ok=True)
            for f in ("config.sh", "run.sh"):
                shutil.copy(os.path.join(ROOT, "tests/fake-runner", f), runner_dir)
            return subprocess.Popen(
                [agent, f"--vm-id={vm}", "--pool-id=bench",
                 f"--controller-grpc=127.0.0.1:{ports['grpc_port']}", f"--runner-dir={runner_dir}",
                 "--metrics-listen=127.0.0.1:0", "--log-level=warn",
                 f"--heartbeat-interval={interval}"],
                stderr=subprocess.DEVNULL)

        def connected(vm):
            try:
                return http("GET", f"{api}/{vm}").get("connected", False)
            except Exception:
                return False

        times = []
        for i in range(args.runs):
            vm = f"start-{i}"
            t0 = time.monotonic()
            p = start_agent(vm, os.path.join(work, vm))
            while not connected(vm):
                time.sleep(0.002)
            times.append((time.monotonic() - t0) * 1000)
            p.send_signal(signal.SIGTERM)
            p.wait(timeout=30)

        vm = "footprint"
        runner = os.path.join(work, vm)
        p = start_agent(vm, runner)
        while not connected(vm):
            time.sleep(0.01)
        reg = http("POST", f"{api}/{vm}/commands?wait=30s", json.dumps({
            "type": "register_runner", "bool_params": {"ephemeral": False},
            "string_params": {"runner_url": "https://github.com/bench", "registration_token": "t"}}))
        assert reg.get("success"), reg
        time.sleep(1)
        _, rss_idle = proc_stats(p.pid)
        mem = memory(p.pid)
        cpu0, _ = proc_stats(p.pid)
        t0 = time.monotonic()
        time.sleep(args.idle_seconds)
        cpu1, _ = proc_stats(p.pid)
        cpu_per_hour = (cpu1 - cpu0) / (time.monotonic() - t0) * 3600
        with open(os.path.join(runner, "_fake", "control"), "w") as f:
            f.write("job bench\n")
        time.sleep(2)
        _, rss_job = proc_stats(p.pid)
        with open(os.path.join(runner, "_fake", "control"), "w") as f:
            f.write("finish Succeeded\n")
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=60)

        print(f"# agent_bench: {agent}")
        print(f"# agent_bench: {os.cpu_count()} cores, {args.runs} starts, idle window "
              f"{args.idle_seconds}s, heartbeat 15s, fake runner")
        print(f"start->connected ms: median {statistics.median(times):.1f}  "
              f"min {min(times):.1f}  max {max(times):.1f}")
        print(f"RSS idle (runner listening): {rss_idle / 1024:.1f} MiB")
        print(f"  of it: PSS {mem['Pss'] / 1024:.1f} MiB, anonymous {mem['Anonymous'] / 1024:.1f} MiB, "
              f"shared libraries {mem['Libs'] / 1024:.1f} MiB")
        print(f"RSS during a job:            {rss_job / 1024:.1f} MiB")
        print(f"CPU idle: {cpu_per_hour:.2f} CPU-seconds per hour")
    finally:
        ctl.send_signal(signal.SIGTERM)
        ctl.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
