#!/usr/bin/env python3
"""Checks the chart's Grafana dashboard and alert rules against the programs' own metrics.

  dashboard: a valid dashboard (schemaVersion, uid, a Prometheus datasource variable, panels
             with unique ids, gridPos inside 24 columns, targets with refId and expr on the
             datasource variable); every query parses (promtool check rules on a rules file
             wrapping each one) and names only exposed metrics.
  alerts:    every expr names only exposed metrics; every alert has a promtool test where it
             fires and one where it does not.
The exposed metrics are read from the code: each prometheus-cpp Build{Counter,Gauge,Histogram,
Summary}().Name("...") under operator/src, agent/src and common/src, so the list cannot drift.

Usage: observability_check.py REPO [--dashboard FILE] [--alerts FILE] [--alerts-test FILE]
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

import yaml

FUNCTION_LIKE = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*(?=\s*\()")
KEYWORDS = {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring",
            "group_left", "group_right", "inf", "nan", "atan2"}
# Prometheus' own series and Grafana's variables are not the programs' metrics.
BUILTIN = {"up"}
GRAFANA_VARS = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h",
                "${datasource}": "prom"}


def exposed_metrics(repo):
    """name -> type, from the prometheus-cpp builders in the programs' sources."""
    out = {}
    builder = re.compile(r"Build(Counter|Gauge|Histogram|Summary)\s*\(\s*\)\s*\.Name\(\s*\"([a-z_:][a-z0-9_:]*)\"")
    for part in ("operator/src", "agent/src", "common/src"):
        for root, _, files in os.walk(os.path.join(repo, part)):
            for f in files:
                if f.endswith((".cc", ".h")):
                    with open(os.path.join(root, f)) as fh:
                        for kind, name in builder.findall(fh.read()):
                            out[name] = kind.lower()
    return out


def substitute(expr):
    for k, v in GRAFANA_VARS.items():
        expr = expr.replace(k, v)
    # Other template variables ($namespace, $pool) only appear inside label matchers.
    return re.sub(r"\$\{?[A-Za-z_]+\}?", ".*", expr)


def metric_names(expr):
    """The metric names an expression selects (a tokenizer, after promtool has parsed it)."""
    e = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)          # strings
    e = re.sub(r"\{[^}]*\}", " ", e)                          # label matchers
    e = re.sub(r"\[[^\]]*\]", " ", e)                         # ranges and subqueries
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", e)
    e = FUNCTION_LIKE.sub(" ", e)                             # functions and aggregations
    names = set()
    for tok in re.findall(r"(?<![0-9.])\b[A-Za-z_:][A-Za-z0-9_:]*", e):
        if tok.lower() in KEYWORDS or tok in BUILTIN:
            continue
        names.add(tok)
    return names


def unknown_metrics(expr, exposed):
    bad = []
    for n in metric_names(expr):
        if n in exposed:
            continue
        base = re.sub(r"_(bucket|sum|count)$", "", n)
        if base != n and exposed.get(base) in ("histogram", "summary"):
            continue
        bad.append(n)
    return sorted(bad)


def promtool_parses(exprs, errors):
    """Wraps each expression in a recording rule; promtool check rules parses them all."""
    rules = [{"record": f"miglet:check:{i}", "expr": e} for i, (_, e) in enumerate(exprs)]
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}, f)
    try:
        r = subprocess.run(["promtool", "check", "rules", f.name], capture_output=True, text=True)
        if r.returncode != 0:
            errors.append("promtool cannot parse the dashboard's queries:\n" + r.stdout + r.stderr)
    finally:
        os.unlink(f.name)


def check_dashboard(path, exposed, errors):
    with open(path) as f:
        d = json.load(f)
    for key in ("title", "uid", "panels", "templating"):
        if key not in d:
            errors.append(f"{path}: no {key}")
    if not isinstance(d.get("schemaVersion"), int) or d["schemaVersion"] < 27:
        errors.append(f"{path}: schemaVersion {d.get('schemaVersion')!r} is not a number >= 27")
    variables = {v.get("name"): v for v in d.get("templating", {}).get("list", [])}
    ds = variables.get("datasource")
    if not ds or ds.get("type") != "datasource" or ds.get("query") != "prometheus":
        errors.append(f"{path}: no datasource variable of type prometheus")
    exprs = []
    for name, v in variables.items():
        if v.get("type") == "query":
            q = v["query"]["query"] if isinstance(v.get("query"), dict) else v.get("query", "")
            m = re.fullmatch(r"label_values\((.*),\s*([A-Za-z_]+)\)", q.strip())
            if not m:
                errors.append(f"{path}: variable {name}: {q!r} is not label_values(SELECTOR, LABEL)")
            else:
                exprs.append((f"variable {name}", substitute(m.group(1))))
    ids = set()
    for p in d.get("panels", []):
        where = f"{path}: panel {p.get('id')} {p.get('title')!r}"
        if not isinstance(p.get("id"), int) or p["id"] in ids:
            errors.append(f"{where}: id missing or not unique")
        ids.add(p.get("id"))
        g = p.get("gridPos", {})
        if not all(isinstance(g.get(k), int) for k in ("h", "w", "x", "y")) or \
                g.get("x", 0) + g.get("w", 0) > 24 or g.get("w", 0) <= 0 or g.get("h", 0) <= 0:
            errors.append(f"{where}: gridPos {g} is not inside 24 columns")
        if p.get("type") == "row":
            continue
        if p.get("datasource", {}).get("uid") != "${datasource}":
            errors.append(f"{where}: datasource is not the datasource variable")
        targets = p.get("targets") or []
        if not targets:
            errors.append(f"{where}: no targets")
        for t in targets:
            if not t.get("refId") or not t.get("expr"):
                errors.append(f"{where}: a target without refId or expr")
                continue
            exprs.append((f"{where} {t['refId']}", substitute(t["expr"])))
    promtool_parses(exprs, errors)
    for where, e in exprs:
        bad = unknown_metrics(e, exposed)
        if bad:
            errors.append(f"{where}: names metrics no program exposes: {', '.join(bad)}")
    return len(exprs)


def check_alerts(path, test_path, exposed, errors):
    with open(path) as f:
        rules = yaml.safe_load(f)
    alerts = []
    for g in rules["groups"]:
        for r in g["rules"]:
            bad = unknown_metrics(r["expr"], exposed)
            name = r.get("alert") or r.get("record")
            if bad:
                errors.append(f"{path}: {name}: names metrics no program exposes: {', '.join(bad)}")
            if "alert" in r:
                alerts.append(r["alert"])
    with open(test_path) as f:
        tests = yaml.safe_load(f)
    fires, quiet = set(), set()
    for t in tests["tests"]:
        for a in t.get("alert_rule_test", []):
            (fires if a.get("exp_alerts") else quiet).add(a["alertname"])
    for a in alerts:
        if a not in fires:
            errors.append(f"{test_path}: no test where {a} fires")
        if a not in quiet:
            errors.append(f"{test_path}: no test where {a} stays quiet")
    return alerts


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("repo")
    ap.add_argument("--dashboard")
    ap.add_argument("--alerts")
    ap.add_argument("--alerts-test")
    a = ap.parse_args()
    chart = os.path.join(a.repo, "deploy/helm/miglet")
    dashboard = a.dashboard or os.path.join(chart, "files/dashboard.json")
    alerts = a.alerts or os.path.join(chart, "files/alerts.yaml")
    alerts_test = a.alerts_test or os.path.join(a.repo, "tests/deploy/alerts_test.yaml")
    exposed = exposed_metrics(a.repo)
    errors = []
    if len(exposed) < 10:
        errors.append(f"only {len(exposed)} metrics found in the code: the scan is broken")
    n = check_dashboard(dashboard, exposed, errors)
    names = check_alerts(alerts, alerts_test, exposed, errors)
    for e in errors:
        print("FAIL", e)
    if errors:
        return 1
    print(f"ok: {len(exposed)} metrics exposed by the code; {n} dashboard queries parse and name "
          f"only them; {len(names)} alerts name only them and each has a firing and a quiet test")
    return 0


if __name__ == "__main__":
    sys.exit(main())
