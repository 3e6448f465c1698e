#!/usr/bin/env python3
# SPDX-License-Identifier: ISC
# End-to-end tests of what /metrics is served as: OpenMetrics 1.0 when the
# Accept header prefers it (as Prometheus' does), the text format 0.0.4
# otherwise, gzip when Accept-Encoding allows it, with the headers that go
# with each; the OpenMetrics body checked by Prometheus' own parser and by
# a strict reading of the specification, the text body byte for byte.
#
# Prometheus 2.42's promtool cannot check OpenMetrics with "check metrics",
# which reads the text format 0.0.4 (an info or stateset TYPE is an error
# there); "tsdb create-blocks-from openmetrics" parses with Prometheus'
# OpenMetrics parser, the one a scrape uses, but wants a timestamp on every
# sample, so it is given a copy with one.
import gzip
import http.client
import math
import os
import re
import shutil
import subprocess
import tempfile
import time
from decimal import Decimal

import pmetest
from pmetest import Pmed, Workdir, free_port

# What Prometheus 2.42 sends (scrape_config defaults).
PROMETHEUS_ACCEPT = ("application/openmetrics-text;version=1.0.0,"
                     "application/openmetrics-text;version=0.0.1;q=0.75,"
                     "text/plain;version=0.0.4;q=0.5,*/*;q=0.1")
OM_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"
TEXT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
VARY = "Accept, Accept-Encoding"

# Every type pme has, a unit (imported), an
# imported unknown and imported timestamps.
CONFIG = """
services:
  jobs:
    metric_prefix: jobs_
    metric_groups:
      log:
        source_type: file
        source: {log}
        metrics:
          run_seconds:
            type: histogram
            description: How long runs took.
            observe: true
            buckets: [0.5, 10, 100]
            filter: 'run (?<kind>\\w+) took (?<value>\\d+)s'
            labels: {{ kind: "${{kind}}" }}
          run_duration_seconds:
            type: summary
            filter: 'run \\w+ took (\\d+)s'
            quantiles: [0.5, 1]
      api:
        source_type: command
        source: [cat, {api}]
        content_type: json
        metrics:
          requests_total:
            type: counter
            description: 'Requests "served" \\ counted.'
            filter: '$.requests'
          queue:
            type: gauge
            description: "Queue length\\nright now."
            filter: '$.queue'
          state:
            type: stateset
            states: [green, yellow, red]
            filter: '$.status'
    standalone_metrics:
      build_info: {{ source_type: static, type: info, labels: {{ version: "2.1" }} }}
  node:
    metric_groups:
      textfile:
        source_type: file
        source: {om}
        content_type: prometheus
        honor_timestamps: true
"""

LOG = "run full took 50s\nrun incr took 5s\nrun incr took 7s\n"
API = '{"requests": 7, "queue": 3, "status": "yellow"}\n'
NODE = """\
# TYPE node_boot_time_seconds gauge
# UNIT node_boot_time_seconds seconds
# HELP node_boot_time_seconds Boot time, "as the kernel says".
node_boot_time_seconds 1700000000 1700000000.5
# TYPE node_cpu_seconds counter
# UNIT node_cpu_seconds seconds
# HELP node_cpu_seconds CPU time.
node_cpu_seconds_total{cpu="0"} 12.5 1700000001.25
node_cpu_seconds_created{cpu="0"} 1600000000 1700000001.25
# TYPE node_thing unknown
node_thing 3
# EOF
"""

# The families of the text format, as pmed wrote them before it served
# OpenMetrics (made by the pmed of the commit before, for this config).
TEXT_FAMILIES = """\
# HELP jobs_run_seconds How long runs took.
# TYPE jobs_run_seconds histogram
jobs_run_seconds_bucket{kind="full",le="0.5"} 0
jobs_run_seconds_bucket{kind="full",le="10"} 0
jobs_run_seconds_bucket{kind="full",le="100"} 1
jobs_run_seconds_bucket{kind="full",le="+Inf"} 1
jobs_run_seconds_sum{kind="full"} 50
jobs_run_seconds_count{kind="full"} 1
jobs_run_seconds_bucket{kind="incr",le="0.5"} 0
jobs_run_seconds_bucket{kind="incr",le="10"} 2
jobs_run_seconds_bucket{kind="incr",le="100"} 2
jobs_run_seconds_bucket{kind="incr",le="+Inf"} 2
jobs_run_seconds_sum{kind="incr"} 12
jobs_run_seconds_count{kind="incr"} 2
# HELP jobs_run_duration_seconds jobs_run_duration_seconds
# TYPE jobs_run_duration_seconds summary
jobs_run_duration_seconds{quantile="0.5"} 7
jobs_run_duration_seconds{quantile="1"} 50
jobs_run_duration_seconds_sum 62
jobs_run_duration_seconds_count 3
# HELP jobs_requests_total Requests "served" \\\\ counted.
# TYPE jobs_requests_total counter
jobs_requests_total 7
# HELP jobs_queue Queue length\\nright now.
# TYPE jobs_queue gauge
jobs_queue 3
# HELP jobs_state jobs_state
# TYPE jobs_state gauge
jobs_state{jobs_state="green"} 0
jobs_state{jobs_state="yellow"} 1
jobs_state{jobs_state="red"} 0
# HELP jobs_build_info jobs_build_info
# TYPE jobs_build_info gauge
jobs_build_info{version="2.1"} 1
# HELP node_boot_time_seconds Boot time, "as the kernel says".
# TYPE node_boot_time_seconds gauge
node_boot_time_seconds 1700000000 1700000000500
# HELP node_cpu_seconds_total CPU time.
# TYPE node_cpu_seconds_total counter
node_cpu_seconds_total{cpu="0"} 12.5 1700000001250
# HELP node_thing node_thing
# TYPE node_thing untyped
node_thing 3
"""


def value(body, name, **labels):
    """The value of one series in either format, or None (pmetest.value()
    does not take timestamps)."""
    for line in body.split("\n"):
        m = SAMPLE.fullmatch(line)
        if m and m.group(1) == name:
            have = dict(PAIR.findall(m.group(2) or ""))
            if all(have.get(k) == str(v) for k, v in labels.items()):
                return float(m.group(3))
    return None


def start():
    """pmed serving CONFIG, once every group has reported."""
    w, port = Workdir(), free_port()
    config = w.config(CONFIG.format(log=w.file("jobs.log", LOG), api=w.file("api.json", API),
                                    om=w.file("node.om", NODE)), port)
    pmed = Pmed(config, port)
    try:
        pmed.wait_for(lambda b: value(b, "node_thing") is not None
                      and value(b, "jobs_requests_total") is not None
                      and value(b, "jobs_run_seconds_count", kind="incr") == 2
                      and value(b, "jobs_build_info", version="2.1") is not None,
                      "every group")
    except BaseException:
        pmed.kill_all()
        w.cleanup()
        raise
    return w, pmed


def fetch(port, headers, method="GET"):
    """(status, {lower-case header: value}, raw body bytes).  No
    Accept-Encoding is sent unless `headers` has one."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.putrequest(method, "/metrics", skip_accept_encoding=True)
        for k, v in headers.items():
            conn.putheader(k, v)
        conn.endheaders()
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def families_part(body):
    """The collected families: what comes before pmed's own metrics."""
    at = re.search(r"^# (HELP|TYPE) pme_source_up ", body, re.M)
    assert at, f"no pme_source_up in:\n{body}"
    return body[:at.start()]


# ---- a strict reading of OpenMetrics 1.0 ----

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r"[a-zA-Z_][a-zA-Z0-9_]*"
# escaped-string: no raw newline, double quote or backslash; escapes \\ \" \n.
ESCAPED = r'(?:[^"\\\n]|\\[\\"n])*'
REAL = r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|[0-9]*\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
NUMBER = rf"(?:{REAL}|[+-]?(?i:inf|infinity)|(?i:nan))"
SAMPLE = re.compile(rf"({NAME})(?:\{{((?:{LABEL}=\"{ESCAPED}\")(?:,{LABEL}=\"{ESCAPED}\")*)\}})?"
                    rf" ({NUMBER})(?: ({REAL}))?")
PAIR = re.compile(rf"({LABEL})=\"({ESCAPED})\"")
SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",), "stateset": ("",), "unknown": ("",),
    "info": ("_info",),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "gaugehistogram": ("_bucket", "_gcount", "_gsum"),
    "summary": ("", "_count", "_sum", "_created"),
}


def canonical(v):
    """OpenMetrics' canonical form of an le or quantile value: Go's
    shortest %g, ".0" added to integers."""
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    sign, digits, exp = Decimal(repr(v)).as_tuple()
    digits = list(digits)
    while len(digits) > 1 and digits[-1] == 0:
        digits.pop()
        exp += 1
    exp10 = 0 if digits == [0] else len(digits) + exp - 1
    if -4 <= exp10 < 6:
        return repr(v)
    mant = str(digits[0]) + ("." + "".join(map(str, digits[1:])) if len(digits) > 1 else "")
    return ("-" if sign else "") + f"{mant}e{'-' if exp10 < 0 else '+'}{abs(exp10):02d}"


def check_openmetrics(body):
    """Every problem found in an OpenMetrics exposition, as text lines;
    also returns the families: {name: {type, unit, help, samples}}."""
    problems = []
    if not body.endswith("\n# EOF\n"):
        problems.append("does not end with '# EOF\\n'")
    lines = body[:-1].split("\n") if body.endswith("\n") else body.split("\n")
    if "\r" in body:
        problems.append("carriage return")
    families = {}
    cur = None
    for n, line in enumerate(lines[:-1], 1):
        where = f"line {n}: {line!r}"
        if line.startswith("#"):
            m = re.fullmatch(rf"# (TYPE|UNIT|HELP) ({NAME}) (.*)", line)
            if not m:
                problems.append(f"{where}: not TYPE, UNIT or HELP (only # EOF may end)")
                continue
            kind, name, rest = m.groups()
            if cur is None or name != cur["name"] or cur["samples"]:
                if name in families:
                    problems.append(f"{where}: family {name} again")
                cur = families[name] = {"name": name, "type": None, "unit": None,
                                        "help": None, "meta": [], "samples": []}
            if kind in cur["meta"]:
                problems.append(f"{where}: a second {kind}")
            cur["meta"].append(kind)
            if kind == "TYPE":
                if rest not in SUFFIXES:
                    problems.append(f"{where}: type {rest}")
                cur["type"] = rest
            elif kind == "UNIT":
                cur["unit"] = rest
                if not re.fullmatch(r"[a-zA-Z0-9_:]*", rest) or not name.endswith("_" + rest):
                    problems.append(f"{where}: unit is not a suffix of the name")
                if cur["type"] in ("info", "stateset"):
                    problems.append(f"{where}: a unit on a {cur['type']}")
            else:
                cur["help"] = rest
                if not re.fullmatch(ESCAPED, rest):
                    problems.append(f"{where}: HELP not escaped")
            continue
        m = SAMPLE.fullmatch(line)
        if not m:
            problems.append(f"{where}: not a sample line")
            continue
        name, labeltext, value, ts = m.groups()
        pairs = PAIR.findall(labeltext or "")
        labels = dict(pairs)
        if len(labels) != len(pairs):
            problems.append(f"{where}: a label twice")
        if cur is None or cur["type"] is None:
            problems.append(f"{where}: a sample without TYPE")
            continue
        suffix = name[len(cur["name"]):] if name.startswith(cur["name"]) else None
        if suffix not in SUFFIXES[cur["type"]]:
            problems.append(f"{where}: not a sample name of {cur['type']} {cur['name']}")
            continue
        cur["samples"].append((suffix, labels, float(value), ts, where))
    if lines[-1] != "# EOF" or body.count("# EOF") != 1:
        problems.append("# EOF is not the last line, alone")

    # No two families may write, or be, the same sample name.
    owner = {}
    for name, f in families.items():
        for sfx in SUFFIXES.get(f["type"], ("",)) + ("",):
            if owner.setdefault(name + sfx, name) != name:
                problems.append(f"family {name}: {name + sfx} is also a name of "
                                f"{owner[name + sfx]}")
    for name, f in families.items():
        problems += check_family(name, f)
    return problems, families


def check_family(name, f):
    problems = []
    kind = f["type"]
    seen = set()
    for sfx, labels, v, ts, where in f["samples"]:
        key = (sfx, frozenset(labels.items()))
        if key in seen:
            problems.append(f"{where}: the same series twice")
        seen.add(key)
        if kind == "info" and v != 1:
            problems.append(f"{where}: an info's value is 1")
        if kind == "stateset":
            if name not in labels:
                problems.append(f"{where}: a state without the label {name}")
            if v not in (0, 1):
                problems.append(f"{where}: a state is 0 or 1")
        if kind == "counter" and sfx == "_total" and not v >= 0:
            problems.append(f"{where}: a counter's total is a number >= 0")
    if kind not in ("counter", "histogram", "summary"):
        return problems
    # MetricPoints: labels without le/quantile; contiguous, _created last.
    special = {"histogram": "le", "summary": "quantile"}.get(kind)
    points, order, closed, last = {}, [], set(), None
    for s in f["samples"]:
        key = frozenset((k, v) for k, v in s[1].items() if k != special)
        if key != last:
            if key in closed:
                problems.append(f"{s[4]}: its MetricPoint is interleaved with another")
            if last is not None:
                closed.add(last)
            last = key
        if key not in points:
            points[key] = []
            order.append(key)
        points[key].append(s)
    for key in order:
        samples = points[key]
        sfxs = [s[0] for s in samples]
        if "_created" in sfxs and sfxs.index("_created") != len(sfxs) - 1:
            problems.append(f"{samples[0][4]}: _created is not the last of its MetricPoint")
        if kind == "counter" and "_total" not in sfxs:
            problems.append(f"{samples[0][4]}: a counter without _total")
        if kind in ("histogram", "summary"):
            for s in samples:
                if s[0] in ("_bucket", "") and special in s[1] and \
                        s[1][special] != canonical(float(s[1][special])):
                    problems.append(f"{s[4]}: {special} is not a canonical number")
            if ("_sum" in sfxs) != ("_count" in sfxs):
                problems.append(f"{samples[0][4]}: _sum and _count go together")
        if kind == "histogram":
            buckets = [(float(s[1]["le"]), s[2]) for s in samples if s[0] == "_bucket"]
            if not buckets or buckets[-1][0] != math.inf:
                problems.append(f"{samples[0][4]}: no +Inf bucket, or not last")
            if [b[0] for b in buckets] != sorted(b[0] for b in buckets):
                problems.append(f"{samples[0][4]}: buckets not in the order of le")
            if [b[1] for b in buckets] != sorted(b[1] for b in buckets):
                problems.append(f"{samples[0][4]}: buckets not cumulative")
            counts = [s[2] for s in samples if s[0] == "_count"]
            if counts and buckets and counts[0] != buckets[-1][1]:
                problems.append(f"{samples[0][4]}: _count is not the +Inf bucket")
    return problems


def with_timestamps(body, ts):
    """The body with every sample at time ts (seconds), for promtool."""
    out = []
    for line in body.split("\n"):
        m = SAMPLE.fullmatch(line)
        if m:
            line = m.group(1) + (f"{{{m.group(2)}}}" if m.group(2) else "") + \
                f" {m.group(3)} {ts}"
        out.append(line)
    return "\n".join(out)


def promtool_openmetrics(promtool, body):
    """(ok, output) of Prometheus' OpenMetrics parser on body."""
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "in.om")
        with open(path, "w") as f:
            f.write(with_timestamps(body, int(time.time())))
        r = subprocess.run([promtool, "tsdb", "create-blocks-from", "openmetrics", path,
                            os.path.join(d, "blocks")], capture_output=True, text=True)
        return r.returncode == 0, r.stdout + r.stderr


# ---- the tests ----

def test_negotiation():
    """Headers for each Accept and Accept-Encoding, GET and HEAD, gzip bodies."""
    w, pmed = start()
    try:
        port = pmed.port
        # Prometheus: OpenMetrics, gzip.
        status, h, raw = fetch(port, {"Accept": PROMETHEUS_ACCEPT, "Accept-Encoding": "gzip"})
        assert status == 200, status
        assert h["content-type"] == OM_TYPE, h
        assert h["content-encoding"] == "gzip", h
        assert h["vary"] == VARY, h
        assert int(h["content-length"]) == len(raw), h
        body = gzip.decompress(raw).decode()   # checks the CRC and the length
        assert body.endswith("\n# EOF\n"), body[-200:]
        assert "# TYPE jobs_requests counter\n" in body, body
        plain = fetch(port, {"Accept": PROMETHEUS_ACCEPT})
        assert "content-encoding" not in plain[1], plain[1]
        assert plain[1]["content-type"] == OM_TYPE and plain[1]["vary"] == VARY, plain[1]
        # The same families, compressed or not.
        assert families_part(plain[2].decode()) == families_part(body)

        # HEAD: the same headers, no body.
        status, hh, raw = fetch(port, {"Accept": PROMETHEUS_ACCEPT, "Accept-Encoding": "gzip"},
                                method="HEAD")
        assert status == 200 and raw == b"", (status, raw)
        for k in ("content-type", "content-encoding", "vary"):
            assert hh.get(k) == h[k], (k, hh, h)
        assert int(hh["content-length"]) > 0, hh

        # No Accept, */*, text/plain: the text format; identity and
        # nothing named are not gzip, * is.
        for headers in ({}, {"Accept": "*/*"}, {"Accept": "text/plain"},
                        {"Accept-Encoding": "identity"},
                        {"Accept": "application/openmetrics-text;q=0.2,*/*",
                         "Accept-Encoding": "gzip;q=0, *"}):
            status, h, raw = fetch(port, headers)
            assert h["content-type"] == TEXT_TYPE, (headers, h)
            assert "content-encoding" not in h and h["vary"] == VARY, (headers, h)
            assert "# EOF" not in raw.decode(), headers
        status, h, raw = fetch(port, {"Accept-Encoding": "br, *;q=0.5"})
        assert h["content-type"] == TEXT_TYPE and h["content-encoding"] == "gzip", h
        assert not gzip.decompress(raw).decode().endswith("# EOF\n")

        # curl --compressed decompresses what pmed sends.
        curl = shutil.which("curl")
        if curl is None:
            print("curl not installed: its check is left out")
        else:
            r = subprocess.run([curl, "-sS", "--compressed", "-D", "-", "-H",
                                f"Accept: {PROMETHEUS_ACCEPT}",
                                f"http://127.0.0.1:{port}/metrics"],
                               capture_output=True, text=True, timeout=20)
            assert r.returncode == 0, r.stderr
            # Text mode has made the header lines end in "\n".
            head, _, cbody = r.stdout.partition("\n\n")
            assert "Content-Encoding: gzip" in head, head
            assert cbody.endswith("\n# EOF\n") and "jobs_requests_total 7\n" in cbody, cbody

        # What was negotiated is counted: the OpenMetrics GETs and HEAD
        # above, curl's and this one; the text ones above and start()'s.
        _, _, raw = fetch(port, {"Accept": PROMETHEUS_ACCEPT})
        om = raw.decode()
        assert value(om, "pme_scrapes_total", format="openmetrics") == \
            4 + (curl is not None), om
        assert value(om, "pme_scrapes_total", format="text") >= 6, om
        assert pmed.stop() == 0, pmed.log()
    finally:
        pmed.kill_all()
        w.cleanup()


def test_openmetrics():
    """The body Prometheus gets: valid for its parser and for the specification."""
    w, pmed = start()
    try:
        _, h, raw = fetch(pmed.port, {"Accept": PROMETHEUS_ACCEPT, "Accept-Encoding": "gzip"})
        body = gzip.decompress(raw).decode()
        problems, fams = check_openmetrics(body)
        assert not problems, "\n".join(problems) + "\n---\n" + body

        # Each type as OpenMetrics has it.
        def lines(name):
            return "".join(line + "\n" for line in body.split("\n")
                           if re.match(rf"(# \w+ )?{name}(_\w+)?[ {{]", line))
        assert fams["jobs_requests"]["type"] == "counter", fams.keys()
        assert "jobs_requests_total 7\n" in body, body
        created = value(body, "jobs_requests_created")
        assert created is not None and abs(created - time.time()) < 300, body
        assert fams["jobs_requests"]["help"] == 'Requests \\"served\\" \\\\ counted.', fams
        assert fams["jobs_queue"]["help"] == "Queue length\\nright now.", fams
        assert fams["jobs_state"]["type"] == "stateset", fams.keys()
        assert 'jobs_state{jobs_state="yellow"} 1\n' in body, body
        assert fams["jobs_build"]["type"] == "info", fams.keys()
        assert 'jobs_build_info{version="2.1"} 1\n' in body, body
        assert fams["node_thing"]["type"] == "unknown", fams.keys()
        assert fams["node_boot_time_seconds"]["unit"] == "seconds", fams
        assert fams["node_cpu_seconds"]["unit"] == "seconds", fams
        assert fams["jobs_run_seconds"]["unit"] is None, fams
        # Timestamps in seconds; the counter's _created is pmed's own.
        assert "node_boot_time_seconds 1700000000 1700000000.5\n" in body, body
        assert 'node_cpu_seconds_total{cpu="0"} 12.5 1700000001.25\n' in body, body
        assert value(body, "node_cpu_seconds_created", cpu="0") != 1600000000, body
        hist = lines("jobs_run_seconds")
        assert re.fullmatch(
            r'# TYPE jobs_run_seconds histogram\n# HELP jobs_run_seconds How long runs took.\n'
            r'jobs_run_seconds_bucket\{kind="full",le="0.5"\} 0\n'
            r'jobs_run_seconds_bucket\{kind="full",le="10.0"\} 0\n'
            r'jobs_run_seconds_bucket\{kind="full",le="100.0"\} 1\n'
            r'jobs_run_seconds_bucket\{kind="full",le="\+Inf"\} 1\n'
            r'jobs_run_seconds_count\{kind="full"\} 1\n'
            r'jobs_run_seconds_sum\{kind="full"\} 50\n'
            r'jobs_run_seconds_created\{kind="full"\} [0-9.]+\n'
            r'jobs_run_seconds_bucket\{kind="incr",le="0.5"\} 0\n'
            r'jobs_run_seconds_bucket\{kind="incr",le="10.0"\} 2\n'
            r'jobs_run_seconds_bucket\{kind="incr",le="100.0"\} 2\n'
            r'jobs_run_seconds_bucket\{kind="incr",le="\+Inf"\} 2\n'
            r'jobs_run_seconds_count\{kind="incr"\} 2\n'
            r'jobs_run_seconds_sum\{kind="incr"\} 12\n'
            r'jobs_run_seconds_created\{kind="incr"\} [0-9.]+\n', hist), hist
        summary = lines("jobs_run_duration_seconds")
        assert re.fullmatch(
            r'# TYPE jobs_run_duration_seconds summary\n'
            r'# HELP jobs_run_duration_seconds jobs_run_duration_seconds\n'
            r'jobs_run_duration_seconds\{quantile="0.5"\} 7\n'
            r'jobs_run_duration_seconds\{quantile="1.0"\} 50\n'
            r'jobs_run_duration_seconds_count 3\n'
            r'jobs_run_duration_seconds_sum 62\n'
            r'jobs_run_duration_seconds_created [0-9.]+\n', summary), summary
        # pmed's own counters too, and the format label.
        assert fams["pme_scrapes"]["type"] == "counter", fams.keys()
        assert value(body, "pme_scrapes_total", format="openmetrics") >= 1, body

        # The checker finds what it looks for.
        for broken, why in ((body[:-len("# EOF\n")], "no EOF"),
                            (body.replace("jobs_requests_total 7", "jobs_requests 7"), "_total"),
                            (body.replace('le="10.0"', 'le="10"', 1), "canonical le"),
                            (body.replace("# TYPE jobs_build info", "# TYPE jobs_build gauge"),
                             "info as gauge")):
            assert check_openmetrics(broken)[0], f"the checker missed: {why}"

        promtool = shutil.which("promtool")
        if promtool is None:
            print("promtool not installed (Debian package prometheus): "
                  "Prometheus' parser not run")
        else:
            ok, out = promtool_openmetrics(promtool, body)
            assert ok, f"promtool: {out}\n---\n{body}"
            ok, _ = promtool_openmetrics(promtool, body[:-len("# EOF\n")])
            assert not ok, "promtool took a body without # EOF"
        assert pmed.stop() == 0, pmed.log()
    finally:
        pmed.kill_all()
        w.cleanup()


def test_text():
    """Without Accept: the text format, byte for byte as before."""
    w, pmed = start()
    try:
        status, h, raw = fetch(pmed.port, {})
        assert status == 200 and h["content-type"] == TEXT_TYPE, h
        body = raw.decode()
        assert families_part(body) == TEXT_FAMILIES, \
            f"got:\n{families_part(body)}\nexpected:\n{TEXT_FAMILIES}"
        assert "# EOF" not in body and "_created" not in body and "# UNIT" not in body, body
        assert value(body, "pme_scrapes_total", format="text") >= 1, body
        # gzip changes nothing in it.
        _, h, raw = fetch(pmed.port, {"Accept-Encoding": "gzip"})
        assert h["content-encoding"] == "gzip", h
        assert families_part(gzip.decompress(raw).decode()) == TEXT_FAMILIES
        promtool = shutil.which("promtool")
        if promtool is None:
            print("promtool not installed (Debian package prometheus): not checked")
        else:
            r = subprocess.run([promtool, "check", "metrics"], input=body,
                               capture_output=True, text=True)
            assert r.returncode == 0 and not (r.stdout + r.stderr).strip(), \
                f"promtool check metrics: {r.returncode}\n{r.stdout}{r.stderr}"
        assert pmed.stop() == 0, pmed.log()
    finally:
        pmed.kill_all()
        w.cleanup()


if __name__ == "__main__":
    pmetest.main({
        "negotiation": test_negotiation,
        "openmetrics": test_openmetrics,
        "text": test_text,
    })
