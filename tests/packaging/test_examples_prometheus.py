#!/usr/bin/env python3
# SPDX-License-Identifier: ISC
# The Prometheus side of packaging/examples/: prometheus.yml, alerts.yml and
# grafana-dashboard.json, checked with promtool and against the metrics pmed
# really exports.
#
#   test_examples_prometheus.py rules      promtool check rules and test rules
#   test_examples_prometheus.py config     promtool check config
#   test_examples_prometheus.py dashboard  the dashboard's queries
#
# The names pmed exports are those the build under test writes (pmed
# --once), so that a metric renamed in pmed fails here instead of leaving
# an alert that never fires or a panel that stays empty.
# Python 3 standard library only; exit 77 (skipped, saying why) without
# promtool, after whatever could be checked without it.
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.environ.get("PME_SOURCE_ROOT") or os.path.normpath(os.path.join(HERE, "..", ".."))
EXAMPLES = os.path.join(SOURCE, "packaging", "examples")
RULES = os.path.join(EXAMPLES, "alerts.yml")
CONFIG = os.path.join(EXAMPLES, "prometheus.yml")
DASHBOARD = os.path.join(EXAMPLES, "grafana-dashboard.json")
RULES_TEST = os.path.join(HERE, "alerts_test.yml")
SKIP = 77

# Series Prometheus writes itself for every target.
PROMETHEUS_OWN = {"up", "scrape_duration_seconds", "scrape_samples_scraped",
    "scrape_samples_post_metric_relabeling", "scrape_series_added"}
# What alerts.yml promises (issue 7).
ALERTS = {"PmeDown", "PmeSourceDown", "PmeWorkerRestarting", "PmeWorkerDown",
    "PmeSourceStale", "PmeScrapeSlow", "PmeConfigReloadFailed", "PmeProtocolErrors",
    "PmeSourceTruncated"}
# What the dashboard promises to show.
DASHBOARD_METRICS = {"pme_worker_up", "pme_worker_restarts_total", "pme_source_up",
    "pme_source_duration_seconds", "pme_source_errors_total", "pme_source_age_seconds",
    "pme_scrapes_total", "scrape_duration_seconds", "process_resident_memory_bytes",
    "process_cpu_seconds_total", "pme_http_connections_evicted_total",
    "pme_http_connections_refused_total"}
DATASOURCE = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
# Grafana's own variables, and what stands in for them when promtool
# checks a query.
GRAFANA_VARS = {"__rate_interval": "1m", "__interval": "1m", "__range": "1h"}

failures = []


def fail(msg):
    failures.append(msg)
    print(f"FAIL: {msg}")


def finish(skip_reason=None):
    if failures:
        print(f"{len(failures)} failure(s)")
        sys.exit(1)
    if skip_reason:
        print(f"SKIP: {skip_reason}")
        sys.exit(SKIP)
    print("ok")
    sys.exit(0)


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


# A service with a source of every kind that reads something: each kind
# adds the self-metrics that only it has.
SELF_CONFIG = """{exporter}services:
  kinds:
    metric_groups:
      command:
        source_type: command
        source: echo 1
        metrics:
          one: {{ type: gauge, filter: '(\\d+)' }}
      file:
        source_type: file
        source: {file}
        content_type: prometheus
      http:
        source_type: http
        source: http://127.0.0.1:1/
        timeout: 1s
        metrics:
          two: {{ type: gauge, filter: '(\\d+)' }}
"""


def exported_names():
    """The families pmed writes itself: those of pmed --once on a service
    with a source of every kind, from the build under test."""
    build = os.environ.get("PME_BUILD_ROOT") or os.path.join(SOURCE, "build")
    pmed = os.path.join(build, "daemon", "pmed")
    if not os.access(pmed, os.X_OK):
        sys.exit(f"FAIL: {pmed} is not built")
    with tempfile.TemporaryDirectory() as d:
        os.chmod(d, 0o755)
        data = os.path.join(d, "data.prom")
        with open(data, "w") as f:
            f.write("# TYPE imported gauge\nimported 1\n")
        os.chmod(data, 0o644)
        config = os.path.join(d, "pme.yml")
        with open(config, "w") as f:
            f.write(SELF_CONFIG.format(file=data,
                exporter="exporter:\n  user: nobody\n" if os.geteuid() == 0 else ""))
        r = subprocess.run([pmed, "--once", "-f", config], capture_output=True, text=True,
            timeout=60)
    names = set(re.findall(r"^# TYPE (\S+) ", r.stdout, re.M)) - {"one", "two", "imported"}
    # A run that exports nothing would let every name through.
    for must in ("pme_source_up", "pme_worker_restarts_total", "pme_scrapes_total",
            "pme_config_last_reload_successful", "pme_source_age_seconds",
            "process_resident_memory_bytes"):
        if must not in names:
            sys.exit(f"FAIL: pmed --once exports no {must} (exit {r.returncode}; found "
                f"{sorted(names)}):\n{r.stderr}")
    return names


KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool",
    "and", "or", "unless", "offset", "inf", "nan"}


def metric_names(expr):
    """The metric names a PromQL expression selects: identifiers that are
    not functions, keywords, label names, strings, ranges or variables."""
    e = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', expr)
    e = re.sub(r"\$\{?\w+\}?", " ", e)
    e = re.sub(r"\{[^}]*\}", " ", e)
    e = re.sub(r"\[[^\]]*\]", " ", e)
    e = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", e)
    names = set()
    for m in re.finditer(r"(?<![\w.:])([A-Za-z_:][\w:]*)(\s*\()?", e):
        if m.group(2) is None and m.group(1).lower() not in KEYWORDS:
            names.add(m.group(1))
    return names


def self_test_parser():
    cases = {
        '60 * sum by (instance, service) (rate(pme_worker_restarts_total{job=~"$job", '
        'service=~"up|x"}[$__rate_interval]))': {"pme_worker_restarts_total"},
        "increase(pme_protocol_errors_total[15m]) > 0": {"pme_protocol_errors_total"},
        'up{job="pme"} == bool 0 or on (instance) scrape_duration_seconds > 1e3':
            {"up", "scrape_duration_seconds"},
        "sum(a_total offset 5m) without (group) / ignoring (x) group_left b": {"a_total", "b"},
    }
    for expr, want in cases.items():
        got = metric_names(expr)
        if got != want:
            sys.exit(f"FAIL: this test's PromQL parser: {expr!r} gave {sorted(got)}, "
                f"not {sorted(want)}")


def check_names(where, expr, known):
    if "__name__" in expr:
        fail(f"{where}: selects by __name__, which this test cannot check: {expr}")
        return set()
    names = metric_names(expr)
    if not names:
        fail(f"{where}: no metric name found in {expr!r}")
    for n in sorted(names - known):
        fail(f"{where}: {n} is not a metric pmed exports (nor Prometheus' own): {expr}")
    return names


def promtool():
    return shutil.which("promtool")


def run(argv, cwd):
    r = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=120)
    out = r.stdout + r.stderr
    print(f"$ {' '.join(argv)}  (exit {r.returncode})")
    print(out.rstrip())
    return r.returncode, out


def alert_blocks(text):
    """alerts.yml's rules as {name: {"expr", "for", "severity", "summary",
    "description"}}, read line by line (no YAML module in the standard
    library): each rule starts with "- alert:", and each of these keys
    holds its value on its own line."""
    blocks = {}
    current = None
    for line in text.splitlines():
        m = re.match(r"\s*- alert:\s*(\S+)\s*$", line)
        if m:
            current = blocks.setdefault(m.group(1), {})
            continue
        m = re.match(r"\s+(expr|for|severity|summary|description):\s*(.*?)\s*$", line)
        if m and current is not None:
            value = m.group(2)
            if value in ("|", ">", "|-", ">-"):
                fail(f"alerts.yml: {m.group(1)} of a rule is a block scalar, which this "
                    "test does not read: keep it on one line")
            current[m.group(1)] = value
        elif re.match(r"\s*- (name|record):", line):
            current = None
    return blocks


def test_rules():
    known = exported_names() | PROMETHEUS_OWN
    text = read(RULES)
    blocks = alert_blocks(text)
    if set(blocks) != ALERTS:
        fail(f"alerts.yml: alerts {sorted(blocks)}, expected {sorted(ALERTS)}")
    if text.count("- alert:") != len(blocks):
        fail("alerts.yml: an alert name is used twice")
    for name, b in sorted(blocks.items()):
        for key in ("expr", "for", "severity", "summary", "description"):
            if not b.get(key):
                fail(f"alerts.yml: {name} has no {key}")
        if b.get("severity") not in (None, "critical", "warning"):
            fail(f"alerts.yml: {name}: severity {b['severity']}, not critical or warning")
        if not b.get("expr"):
            continue
        names = check_names(f"alerts.yml: {name}", b["expr"], known)
        print(f"{name}: for {b.get('for')}, severity {b.get('severity')}, "
            f"selects {' '.join(sorted(names))}")
        notes = b.get("summary", "") + b.get("description", "")
        want = ["instance"]
        if any(n.startswith("pme_source_") for n in names):
            want += ["service", "group"]
        elif any(n.startswith("pme_worker_") or n == "pme_protocol_errors_total"
                for n in names):
            want += ["service"]
        for label in want:
            if f"$labels.{label}" not in notes:
                fail(f"alerts.yml: {name}: its annotations do not name $labels.{label}")
    # Every alert has a promtool unit test.
    tested = set(re.findall(r"alertname:\s*(\S+)", read(RULES_TEST)))
    for name in sorted(set(blocks) - tested):
        fail(f"{RULES_TEST}: no test of {name}")

    tool = promtool()
    if not tool:
        finish("promtool not found (Debian package prometheus): alerts.yml was not "
            "checked nor its unit tests run")
    with tempfile.TemporaryDirectory(prefix="pme-alerts-") as tmp:
        shutil.copy(RULES, os.path.join(tmp, "alerts.yml"))
        shutil.copy(RULES_TEST, os.path.join(tmp, "alerts_test.yml"))
        rc, out = run([tool, "check", "rules", "alerts.yml"], tmp)
        if rc != 0:
            fail(f"promtool check rules alerts.yml exited {rc}")
        elif f"SUCCESS: {len(blocks)} rules found" not in out:
            fail(f"promtool check rules did not find the {len(blocks)} rules of alerts.yml")
        rc, out = run([tool, "test", "rules", "alerts_test.yml"], tmp)
        if rc != 0 or "SUCCESS" not in out:
            fail(f"promtool test rules {RULES_TEST} exited {rc}")
    finish()


def test_config():
    text = read(CONFIG)
    for pattern, what in [
            (r"(?m)^\s+scrape_interval:\s*15s\s*$", "scrape_interval: 15s"),
            (r"(?m)^\s*- job_name:\s*pme\s*$", "a job named pme"),
            (r"""(?m)^\s*- targets:\s*\[\s*["']127\.0\.0\.1:10064["']\s*\]""",
                "the target 127.0.0.1:10064, pmed's default address"),
            (r"(?m)^rule_files:\s*\n(?:\s*#.*\n)*\s*- alerts\.yml\s*$",
                "rule_files: [alerts.yml]")]:
        if not re.search(pattern, text):
            fail(f"prometheus.yml: does not have {what}")
    # alerts.yml selects Prometheus' own series of pmed by its job.
    jobs = set(re.findall(r'job="([^"]*)"', read(RULES)))
    if jobs != {"pme"}:
        fail(f"alerts.yml selects jobs {sorted(jobs)}, prometheus.yml scrapes job pme")

    tool = promtool()
    if not tool:
        finish("promtool not found (Debian package prometheus): prometheus.yml was "
            "not checked")
    rules = len(alert_blocks(read(RULES)))
    with tempfile.TemporaryDirectory(prefix="pme-prometheus-") as tmp:
        shutil.copy(CONFIG, os.path.join(tmp, "prometheus.yml"))
        shutil.copy(RULES, os.path.join(tmp, "alerts.yml"))
        rc, out = run([tool, "check", "config", "prometheus.yml"], tmp)
        if rc != 0:
            fail(f"promtool check config prometheus.yml exited {rc}")
        if "SUCCESS: 1 rule files found" not in out:
            fail("promtool check config did not find alerts.yml through rule_files")
        if f"SUCCESS: {rules} rules found" not in out:
            fail(f"promtool check config did not check the {rules} rules of alerts.yml")
    finish()


def walk(node, path="$"):
    """Every (path, key, value) of a JSON document."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield path, k, v
            yield from walk(v, f"{path}.{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from walk(v, f"{path}[{i}]")


def panels_of(dash):
    for p in dash.get("panels", []):
        yield p
        yield from p.get("panels", [])  # a collapsed row's


def test_dashboard():
    known = exported_names() | PROMETHEUS_OWN
    try:
        dash = json.loads(read(DASHBOARD))
    except json.JSONDecodeError as e:
        fail(f"{DASHBOARD}: not valid JSON: {e}")
        finish()
    schema = dash.get("schemaVersion")
    if not isinstance(schema, int) or not 36 <= schema <= 39:
        fail(f"schemaVersion {schema!r}, expected 36 to 39 (Grafana 9 and 10)")
    if dash.get("id") is not None:
        fail("id is set: importing would overwrite another dashboard")
    inputs = {i.get("name"): i for i in dash.get("__inputs", [])}
    ds = inputs.get("DS_PROMETHEUS", {})
    if ds.get("type") != "datasource" or ds.get("pluginId") != "prometheus":
        fail("__inputs has no Prometheus datasource input DS_PROMETHEUS")

    # Every datasource is the input, but for Grafana's built-in annotations.
    for path, key, value in walk(dash):
        if key == "datasource" and value != DATASOURCE and not (
                path.startswith("$.annotations") and isinstance(value, dict)
                and value.get("uid") == "-- Grafana --"):
            fail(f"{path}.datasource is {value!r}, not {DATASOURCE!r}")
        if isinstance(value, str) and "://" in value:
            fail(f"{path}.{key}: an external link: {value!r}")
        if re.search(r"passw|secret|token|api_?key|basicauth", key, re.I):
            fail(f"{path}.{key}: looks like a credential")
    if dash.get("links"):
        fail("the dashboard has links")

    variables = {v.get("name"): v for v in dash.get("templating", {}).get("list", [])}
    svc = variables.get("service", {})
    svc_query = svc.get("query", {})
    svc_query = svc_query.get("query", "") if isinstance(svc_query, dict) else svc_query
    if not re.fullmatch(r"label_values\(pme_worker_up(\{[^}]*\})?,\s*service\)", svc_query):
        fail(f"no service variable from label_values(pme_worker_up, service): {svc_query!r}")
    queries = []  # (where, PromQL)
    for name, v in sorted(variables.items()):
        q = v.get("query", {})
        q = q.get("query", "") if isinstance(q, dict) else q
        m = re.fullmatch(r"label_values\((.*),\s*\w+\)", q)
        if v.get("type") == "query" and not m:
            fail(f"variable {name}: query {q!r} is not label_values(SELECTOR, LABEL)")
        elif m:
            queries.append((f"variable {name}", m.group(1)))

    ids = set()
    used = set()
    for p in panels_of(dash):
        title = p.get("title", "?")
        if p.get("id") in ids:
            fail(f"panel {title!r}: id {p.get('id')} used twice")
        ids.add(p.get("id"))
        if "gridPos" not in p:
            fail(f"panel {title!r}: no gridPos")
        if p.get("type") == "row":
            continue
        targets = p.get("targets", [])
        if not targets:
            fail(f"panel {title!r}: no query")
        for t in targets:
            expr = t.get("expr", "")
            if not expr:
                fail(f"panel {title!r}: query {t.get('refId')} has no expr")
                continue
            where = f"panel {title!r} query {t.get('refId')}"
            queries.append((where, expr))
            used |= check_names(where, expr, known)
    for where, expr in queries:
        if where.startswith("variable"):
            check_names(where, expr, known)
        for v in re.findall(r"\$\{?(\w+)\}?", expr):
            if v not in variables and v not in GRAFANA_VARS:
                fail(f"{where}: ${v} is not a variable of the dashboard")
    for n in sorted(DASHBOARD_METRICS - used):
        fail(f"no panel shows {n}")
    print(f"{len(queries)} queries of {len(ids)} panels and {len(variables)} variables "
        f"select {len(used)} metrics: {' '.join(sorted(used))}")

    tool = promtool()
    if not tool:
        finish("promtool not found (Debian package prometheus): the metric names of "
            "the dashboard's queries were checked, their syntax was not")
    # promtool checks the queries' syntax as recording rules, with the
    # variables replaced as Grafana would with "All".
    lines = ["groups:", "  - name: dashboard", "    rules:"]
    for i, (where, expr) in enumerate(queries):
        q = re.sub(r"\$\{?(\w+)\}?", lambda m: GRAFANA_VARS.get(m.group(1), ".*"), expr)
        lines += [f"      # {where}", f"      - record: dashboard:query_{i}",
            f"        expr: {json.dumps(q)}"]
    with tempfile.TemporaryDirectory(prefix="pme-dashboard-") as tmp:
        with open(os.path.join(tmp, "queries.yml"), "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")
        rc, out = run([tool, "check", "rules", "queries.yml"], tmp)
        if rc != 0 or f"SUCCESS: {len(queries)} rules found" not in out:
            fail(f"promtool does not accept the dashboard's {len(queries)} queries (exit {rc})")
    finish()


TESTS = {"rules": test_rules, "config": test_config, "dashboard": test_dashboard}

if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in TESTS:
        sys.exit(f"usage: {sys.argv[0]} {'|'.join(TESTS)}")
    self_test_parser()
    TESTS[sys.argv[1]]()
