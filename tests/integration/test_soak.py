#!/usr/bin/env python3
# SPDX-License-Identifier: ISC
"""Soak: fifty services of every kind scraped every 100 ms while workers are
killed and the configuration reloaded.  Every scrape must answer in time with
an exposition a strict parser and promtool accept, counters must never go
down, no service may lose its series while its worker runs, and the
supervisor must not grow.

The services are what a real pme.yml holds: nginx stub_status and df through
commands and regular expressions, an application's JSON API, /proc-like
files, an exposition imported from another exporter, a job log observed into
a histogram, a systemd-like unit as a stateset, and constant info metrics;
their sources are files that the test keeps changing, counters growing and
now and then reset as when a program restarts.  Most kills hit a random
worker; the first after a reload hits a worker that reload restarted, and
after a reset a few in a row hit that service's, so that its restart delay
outgrows stale_after."""
import http.client
import json
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import tempfile
import time

import pmetest
from pmetest import Pmed, Workdir, free_port, worker_pids

SERVICES = 50
SCRAPE_EVERY = 0.1
# A scrape that takes longer than this counts as failed.
SCRAPE_BOUND = 1.0
KILL_EVERY = 3.0
RELOAD_EVERY = 10.0
PROMTOOL_EVERY = 5.0
FEED_EVERY = 1.0
# A source counter is set back, as by a restart of the program, this often.
RESET_EVERY = 15.0
# Workers younger than this are not killed: five deaths before a first
# result mark a service failed, and that is another test.
KILL_MIN_AGE = 3.0
# How long a removed service's series may outlive the reload summary.
REMOVED_GRACE = 3.0
# Slack on stale_after for the scrape period and the first read of a worker.
STALE_SLACK = 1.0
# A restart waits 1 s, doubled at each death of a worker that did not run
# for a minute.  No service is killed more than BURST times in such a row,
# so no restart waits more than 8 s: a worker down for longer is a restart
# that never came.
HEALTHY_AFTER = 60.0
WORKER_DOWN_BOUND = 20.0
# Supervisor RSS growth after warm-up, over ten minutes.  Forty seconds
# are too short for a trend (one reload moves the size by a few percent):
# the short run only catches gross growth.  A sanitizer build keeps freed
# memory in quarantine, so its size says nothing about leaks.
RSS_GROWTH = 0.05
RSS_GROWTH_SHORT = 0.15
LONG = 300

KINDS = ["nginx", "app", "disk", "host", "exporter", "jobs", "unit", "site"]
# Kinds whose sources have counters, which a reset sets back.
COUNTER_KINDS = {"nginx", "app", "exporter", "jobs", "unit"}
# After a reset, its service's worker crashes this many times in a row, as a
# program that restarted and crashes again would make it: the restart delay
# doubles past stale_after, and the counters must still not go down.
BURST = 4
JOBS = ["backup", "vacuum", "rsync"]
# JSON member names that become label values: quotes, backslashes and a
# newline that the exposition must escape.
ENDPOINTS = ["/api/items", '/search "q"', "C:\\export", "/report\nweekly"]


# ---------------------------------------------------------------------------
# A strict reader of the text format 0.0.4, stricter than promtool where pmed
# promises more: one HELP and one TYPE before the samples of every family,
# the samples of a family together, no duplicate series, histograms complete.

METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
NUMBER = re.compile(r"(?:[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|NaN|[+-]Inf)\Z")
TIMESTAMP = re.compile(r"-?\d+\Z")
TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}


class ExpositionError(Exception):
    pass


class Family:
    def __init__(self, name):
        self.name = name
        self.help = None
        self.type = None
        # (sample name, labels as a tuple of pairs in order, value)
        self.samples = []

    def owns(self, name, labels):
        """Whether a sample of this name and these labels belongs here."""
        keys = {k for k, _ in labels}
        if self.type == "histogram":
            if name == self.name + "_bucket":
                return "le" in keys
            return name in (self.name + "_sum", self.name + "_count") and "le" not in keys
        if self.type == "summary":
            if name == self.name:
                return "quantile" in keys
            return name in (self.name + "_sum", self.name + "_count") and "quantile" not in keys
        return name == self.name


def unescape(text, escapes, where):
    out, i = [], 0
    while i < len(text):
        c = text[i]
        if c == "\\":
            if i + 1 >= len(text) or text[i + 1] not in escapes:
                raise ExpositionError(f"{where}: bad escape {text[i:i + 2]!r}")
            out.append(escapes[text[i + 1]])
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def parse_labels(line, i):
    """The labels of a sample starting after its '{' at i; (labels, end)."""
    labels = []
    if line.startswith("}", i):
        return labels, i + 1
    while True:
        m = LABEL_NAME.match(line, i)
        if not m or not line.startswith('="', m.end()):
            raise ExpositionError(f"bad label at column {i + 1}")
        name = m.group()
        if name.startswith("__"):
            raise ExpositionError(f"reserved label name {name}")
        if name in (k for k, _ in labels):
            raise ExpositionError(f"label {name} given twice")
        j = m.end() + 2
        raw = []
        while True:
            if j >= len(line):
                raise ExpositionError(f"unterminated value of label {name}")
            c = line[j]
            if c == '"':
                break
            if c == "\\":
                raw.append(line[j:j + 2])
                j += 2
                continue
            raw.append(c)
            j += 1
        labels.append((name, unescape("".join(raw), {"\\": "\\", '"': '"', "n": "\n"},
                                      f"label {name}")))
        j += 1
        if line.startswith("}", j):
            return labels, j + 1
        if not line.startswith(",", j):
            raise ExpositionError(f"expected ',' or '}}' at column {j + 1}")
        i = j + 1


def parse_sample(line):
    m = METRIC_NAME.match(line)
    if not m:
        raise ExpositionError("sample without a valid metric name")
    i = m.end()
    labels = []
    if line.startswith("{", i):
        labels, i = parse_labels(line, i + 1)
    if not line.startswith(" ", i):
        raise ExpositionError(f"expected a space before the value at column {i + 1}")
    fields = line[i + 1:].split(" ")
    if not 1 <= len(fields) <= 2 or not NUMBER.match(fields[0]):
        raise ExpositionError(f"bad value {line[i + 1:]!r}")
    if len(fields) == 2 and not TIMESTAMP.match(fields[1]):
        raise ExpositionError(f"bad timestamp {fields[1]!r}")
    return m.group(), tuple(labels), float(fields[0])


def check_histogram(fam):
    groups = {}
    for name, labels, v in fam.samples:
        rest = tuple(p for p in labels if p[0] != "le")
        g = groups.setdefault(rest, {"buckets": [], "sum": None, "count": None})
        if name.endswith("_bucket"):
            le = dict(labels)["le"]
            if not NUMBER.match(le) or le == "NaN":
                raise ExpositionError(f"{fam.name}: bad le {le!r}")
            g["buckets"].append((float(le), v))
        elif name.endswith("_sum"):
            g["sum"] = v
        else:
            g["count"] = v
    for rest, g in groups.items():
        where = f"{fam.name}{dict(rest)}"
        buckets = sorted(g["buckets"])
        if not buckets or buckets[-1][0] != float("inf"):
            raise ExpositionError(f"{where}: no +Inf bucket")
        if len({le for le, _ in buckets}) != len(buckets):
            raise ExpositionError(f"{where}: a bucket bound given twice")
        counts = [v for _, v in buckets]
        if any(v != v for v in counts) or counts != sorted(counts):
            raise ExpositionError(f"{where}: buckets not cumulative: {buckets}")
        if g["sum"] is None or g["count"] is None:
            raise ExpositionError(f"{where}: _sum or _count missing")
        if g["count"] != counts[-1]:
            raise ExpositionError(f"{where}: _count {g['count']} is not the +Inf bucket "
                                  f"{counts[-1]}")


def check_summary(fam):
    groups = {}
    for name, labels, _ in fam.samples:
        rest = tuple(p for p in labels if p[0] != "quantile")
        g = groups.setdefault(rest, set())
        if name == fam.name:
            q = dict(labels)["quantile"]
            if not NUMBER.match(q) or not 0 <= float(q) <= 1:
                raise ExpositionError(f"{fam.name}: bad quantile {q!r}")
        else:
            g.add(name)
    for rest, names in groups.items():
        if names != {fam.name + "_sum", fam.name + "_count"}:
            raise ExpositionError(f"{fam.name}{dict(rest)}: _sum or _count missing")


def parse_exposition(data):
    """{name: Family} of a whole body (bytes); ExpositionError names the line."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ExpositionError(f"not UTF-8 at byte {e.start}")
    if not text.endswith("\n"):
        raise ExpositionError("no final newline")
    families, owner, series = {}, {}, set()
    current = None
    for n, line in enumerate(text[:-1].split("\n"), 1):
        try:
            if line.startswith("#"):
                m = re.match(r"# (HELP|TYPE) ([^ ]+) (.*)\Z", line)
                if not m:
                    raise ExpositionError("a comment that is neither HELP nor TYPE")
                kind, name, rest = m.groups()
                if not METRIC_NAME.fullmatch(name):
                    raise ExpositionError(f"invalid metric name {name!r}")
                if current is None or current.name != name:
                    if name in families:
                        raise ExpositionError(f"{name}: family given again, not contiguous")
                    current = families[name] = Family(name)
                if current.samples:
                    raise ExpositionError(f"{name}: {kind} after samples")
                if kind == "HELP":
                    if current.help is not None:
                        raise ExpositionError(f"{name}: second HELP")
                    current.help = unescape(rest, {"\\": "\\", "n": "\n"}, "HELP")
                else:
                    if current.type is not None:
                        raise ExpositionError(f"{name}: second TYPE")
                    if rest not in TYPES:
                        raise ExpositionError(f"{name}: unknown type {rest!r}")
                    current.type = rest
                continue
            name, labels, v = parse_sample(line)
            if current is None or not current.owns(name, labels):
                fam = owner.get(name)
                if fam is not None:
                    raise ExpositionError(f"{name}: samples of {fam} not contiguous")
                raise ExpositionError(f"{name}: sample outside its family")
            if current.help is None or current.type is None:
                raise ExpositionError(f"{current.name}: sample before HELP and TYPE")
            if owner.setdefault(name, current.name) != current.name:
                raise ExpositionError(f"{name}: in two families")
            key = (name, tuple(sorted(labels)))
            if key in series:
                raise ExpositionError(f"duplicate series {name}{dict(labels)}")
            series.add(key)
            current.samples.append((name, labels, v))
        except ExpositionError as e:
            raise ExpositionError(f"line {n}: {e}: {line!r}") from None
    for fam in families.values():
        if fam.type == "histogram":
            check_histogram(fam)
        elif fam.type == "summary":
            check_summary(fam)
    return families


def promtool_problem(body):
    """promtool's parse error, or None; lint notes do not count."""
    r = subprocess.run(["promtool", "check", "metrics"], input=body, capture_output=True)
    err = r.stderr.decode(errors="replace")
    # promtool exits 3 for lint notes alone, 1 for an error.
    if "error while linting" in err or "parse" in err or r.returncode not in (0, 3):
        return f"promtool exit {r.returncode}: {err.strip()}"
    return None


# ---------------------------------------------------------------------------
# The services: their configuration, their sources, and the series that must
# stay in the exposition.

class Service:
    def __init__(self, name, kind, slot):
        self.name = name
        self.kind = kind
        self.slot = slot
        # Bumped by a reload that changes the service.
        self.variant = 0

    def interval(self):
        return 1 + (self.slot + self.variant) % 2

    def path(self, w, ext):
        return os.path.join(w.path, f"{self.name}.{ext}")


def config_of(svc, w):
    iv = svc.interval()
    p = svc.path
    n = svc.name
    if svc.kind == "nginx":
        return fr"""
  {n}:
    description: nginx stub_status through curl, here through cat
    metric_prefix: {n}_nginx_
    interval: {iv}s
    metric_groups:
      status:
        command: [cat, {p(w, "status")}]
        timeout: 2s
        metrics:
          connections_active:
            description: Open client connections (revision {svc.variant}).
            filter: 'Active connections:\s+(\d+)'
          requests_total:
            type: counter
            description: Requests handled.
            filter: '\s(?<accepts>\d+) (?<handled>\d+) (?<requests>\d+)\s*\n'
            value: "${{requests}}"
          accepts_total:
            type: counter
            filter: '\s(\d+) \d+ \d+\s*\n'
          connections:
            description: Connections by state.
            filter: '(Reading|Writing|Waiting): (\d+)'
            value: "$2"
            labels: {{ state: "$1" }}
"""
    if svc.kind == "app":
        # No prefix: every app service adds to the same families, told
        # apart by their instance label.
        return fr"""
  {n}:
    labels: {{ instance: {n} }}
    interval: {iv}s
    metric_groups:
      api:
        source_type: command
        source: cat {p(w, "json")}
        content_type: json
        timeout: {2 + svc.variant % 3}s
        metrics:
          app_http_requests_total:
            type: counter
            description: Requests served, by endpoint.
            filter: '$.endpoints.*.requests'
            labels: {{ endpoint: "${{^key}}" }}
          app_http_latency_seconds:
            description: Mean latency of the last minute, by endpoint.
            filter: '$.endpoints.*.latency_ms'
            labels: {{ endpoint: "${{^key}}" }}
            scale: 0.001
          app_healthy:
            description: Whether the application says it is healthy.
            filter: '$.status'
            values: {{ ok: 1, degraded: 0 }}
          app_queue_depth:
            description: Jobs waiting.
            filter: '$.queue.depth'
"""
    if svc.kind == "disk":
        return fr"""
  {n}:
    metric_prefix: {n}_disk_
    interval: {iv}s
    metric_groups:
      df:
        command: "cat {p(w, "df")} | tail -n +2"
        shell: true
        multiline: true
        metrics:
          size_bytes:
            description: Size of the file system (revision {svc.variant}).
            filter: '^(\S+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)%\s+(\S+)$'
            value: "$2"
            labels: {{ device: "$1", mount: "$6" }}
            scale: 1024
          used_bytes:
            filter: '^(\S+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)%\s+(\S+)$'
            value: "$3"
            labels: {{ device: "$1", mount: "$6" }}
            scale: 1024
"""
    if svc.kind == "host":
        return fr"""
  {n}:
    metric_prefix: {n}_host_
    interval: {iv}s
    metric_groups:
      memory:
        source_type: file
        source: {p(w, "meminfo")}
        multiline: true
        metrics:
          memory_bytes:
            description: Memory by /proc/meminfo field (revision {svc.variant}).
            filter: '^(\w+):\s+(\d+) kB$'
            value: "$2"
            labels: {{ field: "$1" }}
            scale: 1024
      load:
        source_type: file
        source: /proc/loadavg
        interval: 2s
        metrics:
          load1: {{ filter: '^(\S+)' }}
          processes_running: {{ filter: '^\S+ \S+ \S+ (\d+)/' }}
"""
    if svc.kind == "exporter":
        return fr"""
  {n}:
    metric_prefix: {n}_
    interval: {iv}s
    metric_groups:
      scrape:
        source_type: file
        source: {p(w, "prom")}
        content_type: prometheus
        prefix: exp_
        exclude: ['go_.*']
        labels: {{ origin: file{svc.variant} }}
"""
    if svc.kind == "jobs":
        return fr"""
  {n}:
    metric_prefix: {n}_jobs_
    interval: {iv}s
    metric_groups:
      log:
        source_type: file
        source: {p(w, "log")}
        metrics:
          duration_seconds:
            type: histogram
            description: How long each job took (revision {svc.variant}).
            observe: true
            buckets: [1, 5, 30, 120]
            filter: 'job (?<job>\w+) finished in (?<value>\d+(?:\.\d+)?)s'
            labels: {{ job: "${{job}}" }}
      state:
        command: [cat, {p(w, "state")}]
        metrics:
          completed_total: {{ type: counter, filter: 'completed=(\d+)' }}
          last_success_timestamp_seconds: {{ filter: 'last_success=(\d+)' }}
"""
    if svc.kind == "unit":
        return fr"""
  {n}:
    metric_prefix: {n}_unit_
    interval: {iv}s
    metric_groups:
      show:
        command: [cat, {p(w, "unit")}]
        multiline: true
        metrics:
          active_state:
            type: stateset
            states: [active, reloading, inactive, failed, activating, deactivating]
            filter: '^ActiveState=(\S+)$'
          restarts_total: {{ type: counter, filter: '^NRestarts=(\d+)$' }}
          memory_bytes: {{ filter: '^MemoryCurrent=(\d+)$' }}
    standalone_metrics:
      build_info:
        source_type: static
        type: info
        labels: {{ version: "2.{svc.variant}", revision: "r{svc.slot}" }}
"""
    if svc.kind == "site":
        return fr"""
  {n}:
    metric_prefix: {n}_site_
    interval: {iv}s
    standalone_metrics:
      info:
        source_type: static
        type: info
        description: Where the site runs (revision {svc.variant}).
        labels: {{ datacenter: fra1, rack: "r{svc.slot}", note: 'quote " and backslash \' }}
      capacity_bytes: {{ source_type: static, value: 1.5e12 }}
"""
    raise AssertionError(f"unknown kind {svc.kind}")


def probes_of(svc):
    """(sample name, instance label or None, interval) that must stay present."""
    n, iv = svc.name, svc.interval()
    if svc.kind == "nginx":
        names = ["connections_active", "requests_total", "accepts_total", "connections"]
        return [(f"{n}_nginx_{m}", None, iv) for m in names]
    if svc.kind == "app":
        names = ["app_http_requests_total", "app_http_latency_seconds", "app_healthy",
                 "app_queue_depth"]
        return [(m, n, iv) for m in names]
    if svc.kind == "disk":
        return [(f"{n}_disk_size_bytes", None, iv), (f"{n}_disk_used_bytes", None, iv)]
    if svc.kind == "host":
        return [(f"{n}_host_memory_bytes", None, iv), (f"{n}_host_load1", None, 2),
                (f"{n}_host_processes_running", None, 2)]
    if svc.kind == "exporter":
        names = ["http_requests_total", "queue_length", "request_duration_seconds_count",
                 "rpc_duration_seconds_count"]
        return [(f"{n}_exp_{m}", None, iv) for m in names]
    if svc.kind == "jobs":
        names = ["duration_seconds_count", "duration_seconds_bucket", "completed_total",
                 "last_success_timestamp_seconds"]
        return [(f"{n}_jobs_{m}", None, iv) for m in names]
    if svc.kind == "unit":
        names = ["active_state", "restarts_total", "memory_bytes", "build_info"]
        return [(f"{n}_unit_{m}", None, iv) for m in names]
    return [(f"{n}_site_info", None, iv), (f"{n}_site_capacity_bytes", None, iv)]


def belongs(name, labels, service):
    """Whether a sample is one of the service's, its self-metrics included."""
    return (name.startswith(service + "_") or ("instance", service) in labels
            or ("service", service) in labels)


class Feeder:
    """The sources of the services: files that change as real ones do."""

    def __init__(self, w):
        self.w = w
        self.state = {}
        self.rng = random.Random(7)

    def add(self, svc):
        self.state[svc.name] = {"count": self.rng.randrange(1000, 100000), "t": 0}
        if svc.kind == "jobs":
            with open(svc.path(self.w, "log"), "w") as f:
                for job in JOBS:
                    f.write(self.job_line(job))
            os.chmod(svc.path(self.w, "log"), 0o644)
        self.write(svc)

    def reset(self, svc):
        """The program behind the source restarted: its counters start over."""
        self.state[svc.name]["count"] = self.rng.randrange(0, 50)

    def job_line(self, job):
        took = round(self.rng.expovariate(1 / 20), 1)
        return f"{time.strftime('%Y-%m-%dT%H:%M:%S')} job {job} finished in {took}s\n"

    def tick(self, services):
        for svc in services:
            st = self.state[svc.name]
            st["count"] += self.rng.randrange(1, 200)
            st["t"] += 1
            if svc.kind == "jobs":
                # Complete lines only: a real log is written line by line.
                with open(svc.path(self.w, "log"), "a") as f:
                    for _ in range(self.rng.randrange(0, 3)):
                        f.write(self.job_line(self.rng.choice(JOBS)))
            self.write(svc)

    def write(self, svc):
        st, r = self.state[svc.name], self.rng
        c, t = st["count"], st["t"]
        if svc.kind == "nginx":
            text = (f"Active connections: {r.randrange(1, 500)} \n"
                    "server accepts handled requests\n"
                    f" {c // 3} {c // 3} {c} \n"
                    f"Reading: {r.randrange(10)} Writing: {r.randrange(100)} "
                    f"Waiting: {r.randrange(200)} \n")
            self.w.file(f"{svc.name}.status", text)
        elif svc.kind == "app":
            doc = {"status": "ok" if t % 7 else "degraded", "queue": {"depth": r.randrange(50)},
                   "endpoints": {e: {"requests": c * (i + 1), "latency_ms": r.randrange(1, 900)}
                                 for i, e in enumerate(ENDPOINTS)}}
            self.w.file(f"{svc.name}.json", json.dumps(doc))
        elif svc.kind == "disk":
            rows = [("udev", "8117156", "/dev"), ("tmpfs", "1627532", "/run"),
                    ("/dev/nvme0n1p2", "490617784", "/"), ("tmpfs", "8137648", "/dev/shm")]
            text = "Filesystem     1024-blocks      Used Available Capacity Mounted on\n"
            for dev, size, mount in rows:
                used = (c * 7) % int(size)
                text += (f"{dev:<15} {size:>11} {used:>9} {int(size) - used:>9} "
                         f"{used * 100 // int(size):>7}% {mount}\n")
            self.w.file(f"{svc.name}.df", text)
        elif svc.kind == "host":
            fields = ["MemTotal", "MemFree", "MemAvailable", "Buffers", "Cached", "SwapTotal"]
            text = "".join(f"{f + ':':<15} {r.randrange(1000, 16275296):>8} kB\n"
                           for f in fields)
            self.w.file(f"{svc.name}.meminfo", text)
        elif svc.kind == "exporter":
            b1, b2 = c // 4, c // 2
            self.w.file(f"{svc.name}.prom", f"""\
# HELP http_requests_total Requests by "path" and code, C:\\\\ paths included.
# TYPE http_requests_total counter
http_requests_total{{path="/a",code="200"}} {c}
http_requests_total{{path="C:\\\\dir\\\\file",code="500"}} {c // 10}
http_requests_total{{path="say \\"hi\\"\\nbye",code="200"}} {c // 5}
# HELP queue_length Items waiting.
# TYPE queue_length gauge
queue_length {r.randrange(100)}
# HELP go_goroutines Excluded by the configuration.
# TYPE go_goroutines gauge
go_goroutines 12
# HELP request_duration_seconds Request durations.
# TYPE request_duration_seconds histogram
request_duration_seconds_bucket{{le="0.1"}} {b1}
request_duration_seconds_bucket{{le="1"}} {b2}
request_duration_seconds_bucket{{le="+Inf"}} {c}
request_duration_seconds_sum {c * 0.37:.3f}
request_duration_seconds_count {c}
# HELP rpc_duration_seconds RPC durations.
# TYPE rpc_duration_seconds summary
rpc_duration_seconds{{quantile="0.5"}} 0.012
rpc_duration_seconds{{quantile="0.99"}} 0.4
rpc_duration_seconds_sum {c * 0.02:.3f}
rpc_duration_seconds_count {c}
""")
        elif svc.kind == "jobs":
            self.w.file(f"{svc.name}.state",
                        f"completed={c}\nlast_success={int(time.time())}\n")
        elif svc.kind == "unit":
            state = "reloading" if t % 11 == 5 else "active"
            self.w.file(f"{svc.name}.unit", f"ActiveState={state}\nNRestarts={c // 1000}\n"
                        f"MemoryCurrent={r.randrange(10**6, 10**9)}\n")


# ---------------------------------------------------------------------------
# The run.

def age(pid):
    """Seconds since pid started, or None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            start = int(f.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
    except (OSError, IndexError, ValueError):
        return None
    return uptime - start / os.sysconf("SC_CLK_TCK")


def rss_kb(pid):
    st = pmetest.proc_status(pid)
    assert st is not None, f"pmed ({pid}) is gone"
    return int(st["VmRSS"].split()[0])


def scrape(port):
    """(status, content type, body bytes, seconds) of one GET on a new connection."""
    t0 = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=SCRAPE_BOUND)
    try:
        conn.request("GET", "/metrics")
        r = conn.getresponse()
        body = r.read()
        return r.status, r.getheader("Content-Type"), body, time.monotonic() - t0
    finally:
        conn.close()


def percentile(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, int(p / 100 * len(s)))] if s else float("nan")


class Soak:
    def __init__(self, duration):
        self.duration = duration
        self.rng = random.Random(1)
        self.w = Workdir()
        self.port = free_port()
        self.feeder = Feeder(self.w)
        self.services = {}
        self.next_slot = 0
        for _ in range(SERVICES):
            self.new_service()
        self.pmed = None
        self.problems = []
        self.bad_body = None
        self.scrapes = self.failed = self.kills = self.reloads = 0
        self.promtool_runs = 0
        self.latencies = []
        self.series_counts = []
        # (time, VmRSS) of the supervisor, once a second.
        self.rss = []
        # Last value of every counter series, histogram buckets and counts
        # and summary counts included: none may ever go down.
        self.counters = {}
        # (service, probe) -> last time it was present or excused.
        self.present = {}
        self.down_since = {}
        self.killed = []
        self.pending = None
        # Removed service -> when the reload that removed it was applied;
        # None before that, and once a leftover series was reported.
        self.removed = {}
        self.changed_at = {}
        # Services a reload restarted, whose new workers are killed first.
        self.kill_next = []
        # [service, kills left] of the current burst, or None.
        self.burst = None
        # Service -> its kills since a worker of it ran for a minute.
        self.streak = {}
        self.t0 = time.monotonic()

    def new_service(self):
        slot = self.next_slot
        self.next_slot += 1
        svc = Service(f"s{slot:02d}", KINDS[slot % len(KINDS)], slot)
        self.services[svc.name] = svc
        self.feeder.add(svc)
        return svc

    def write_config(self):
        text = "services:" + "".join(config_of(s, self.w) for s in self.services.values())
        return self.w.config(text, port=self.port)

    def problem(self, text):
        self.problems.append(f"{time.monotonic() - self.t0:7.1f}s {text}")

    def track(self, svc, now, grace=0.0):
        for probe in probes_of(svc):
            self.present[(svc.name, probe)] = now + grace

    def check_body(self, body, now):
        try:
            families = parse_exposition(body)
        except ExpositionError as e:
            self.problem(f"invalid exposition: {e}")
            if self.bad_body is None:
                self.bad_body = body
            return
        self.series_counts.append(sum(len(f.samples) for f in families.values()))
        # Counters only grow, whatever happened to the worker or the config.
        for fam in families.values():
            if fam.type not in ("counter", "histogram", "summary"):
                continue
            for name, labels, v in fam.samples:
                if fam.type != "counter" and not name.endswith(("_bucket", "_count")):
                    continue
                key = (name, tuple(sorted(labels)))
                last = self.counters.get(key)
                if last is not None and v < last:
                    svc = next((s for s in self.services if belongs(name, labels, s)), None)
                    when = self.changed_at.get(svc)
                    self.problem(f"counter went down: {name}{dict(labels)} {last} -> {v} "
                                 f"(service {svc}, " + (f"changed by a reload at {when}s)"
                                                        if when else "never changed)"))
                self.counters[key] = v
        up = {dict(labels).get("service"): v
              for _, labels, v in getattr(families.get("pme_worker_up"), "samples", [])}
        names, instances = set(), set()
        for fam in families.values():
            for name, labels, _ in fam.samples:
                names.add(name)
                inst = dict(labels).get("instance")
                if inst is not None:
                    instances.add((name, inst))
        for s, svc in self.services.items():
            if up.get(s) == 1:
                self.down_since.pop(s, None)
            else:
                since = self.down_since.setdefault(s, now)
                if now - since > WORKER_DOWN_BOUND:
                    self.problem(f"worker of {s} down for {now - since:.0f}s")
                    self.down_since[s] = now
            for probe in probes_of(svc):
                key = (s, probe)
                if key not in self.present:
                    continue
                name, inst, iv = probe
                here = (name, inst) in instances if inst else name in names
                if here or up.get(s) != 1:
                    self.present[key] = max(self.present[key], now)
                elif now - self.present[key] > 3 * iv + STALE_SLACK:
                    self.problem(f"{name} of {s} missing for {now - self.present[key]:.1f}s "
                                 f"with its worker up (stale_after {3 * iv}s)")
                    self.present[key] = now
        for s, when in self.removed.items():
            if when is not None and now - when > REMOVED_GRACE:
                left = [n for f in families.values() for n, ls, _ in f.samples
                        if belongs(n, ls, s)]
                if left:
                    self.problem(f"removed service {s} still exports {left[:5]}")
                    self.removed[s] = None

    def scrape_once(self, now, promtool):
        self.scrapes += 1
        try:
            status, ctype, body, took = scrape(self.port)
        except (OSError, http.client.HTTPException) as e:
            self.failed += 1
            self.problem(f"scrape failed: {type(e).__name__}: {e}")
            return
        self.latencies.append(took)
        if status != 200 or took > SCRAPE_BOUND:
            self.failed += 1
            self.problem(f"scrape answered {status} in {took:.3f}s")
            return
        if ctype != "text/plain; version=0.0.4; charset=utf-8":
            self.problem(f"scrape answered Content-Type {ctype!r}")
        self.check_body(body, now)
        if promtool:
            self.promtool_runs += 1
            err = promtool_problem(body)
            if err is not None:
                self.problem(err)
                if self.bad_body is None:
                    self.bad_body = body

    def kill_one(self):
        candidates = []
        for s, p in worker_pids(self.pmed).items():
            lived = age(p) or 0
            if lived >= HEALTHY_AFTER:
                self.streak[s] = 0
            if (s in self.services and lived >= KILL_MIN_AGE
                    and self.streak.get(s, 0) < BURST
                    and (self.pending is None or s not in self.pending["touched"])):
                candidates.append((s, p))
        if not candidates:
            return
        # A worker started by a reload dies like any other, and must be
        # restarted with the new definition like any other.
        preferred = [c for c in candidates if c[0] in self.kill_next]
        if not preferred and self.burst is not None:
            if (self.burst[0] not in self.services
                    or self.streak.get(self.burst[0], 0) >= BURST):
                self.burst = None
            else:
                preferred = [c for c in candidates if c[0] == self.burst[0]]
        s, pid = self.rng.choice(sorted(preferred or candidates))
        if s in self.kill_next:
            self.kill_next.remove(s)
        elif self.burst is not None and s == self.burst[0]:
            self.burst[1] -= 1
            if self.burst[1] == 0:
                self.burst = None
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            return
        self.kills += 1
        self.killed.append((s, pid))
        self.streak[s] = self.streak.get(s, 0) + 1

    def reload(self, now):
        old = len(self.services)
        live = list(self.services)
        changed = self.rng.sample(live, self.rng.choice([1, 2]))
        for s in changed:
            self.services[s].variant += 1
        added, removed = [], []
        if self.reloads % 2 == 0:
            victim = self.rng.choice([s for s in live if s not in changed])
            removed.append(victim)
            del self.services[victim]
            self.removed[victim] = None
            # It may go any moment now: stop following it.
            for key in [k for k in self.present if k[0] == victim]:
                del self.present[key]
            for key in [k for k in self.counters if belongs(k[0], k[1], victim)]:
                del self.counters[key]
        else:
            added.append(self.new_service().name)
        self.reloads += 1
        unchanged = old - len(changed) - len(removed)
        path = self.write_config()
        summary = (f"reload: {path}: {unchanged} service{'' if unchanged == 1 else 's'} "
                   f"unchanged, {len(changed)} changed, {len(added)} added, "
                   f"{len(removed)} removed")
        self.pending = {"summary": summary, "offset": len(self.pmed.log()), "sent": now,
                        "changed": changed, "added": added, "removed": removed,
                        "touched": set(changed + added + removed)}
        self.pmed.proc.send_signal(signal.SIGHUP)

    def check_reload(self, now):
        p = self.pending
        log = self.pmed.log()[p["offset"]:]
        if p["summary"] in log:
            self.kill_next = list(p["changed"])
            for s in p["changed"]:
                # A changed service starts again with the first delay.
                self.streak[s] = 0
                self.changed_at[s] = round(now - self.t0, 1)
                self.track(self.services[s], now)
            for s in p["added"]:
                # Its first collection is spread over its first interval.
                self.track(self.services[s], now, grace=self.services[s].interval())
            for s in p["removed"]:
                self.removed[s] = now
            self.pending = None
        elif now - p["sent"] > 10 or "still running" in log:
            self.problem(f"no reload summary {p['summary']!r} after SIGHUP; log since:\n{log}")
            self.pending = None

    def run(self):
        self.pmed = Pmed(self.write_config(), self.port)
        # Everything once before the clock starts.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            status, _, _ = self.pmed.request("/-/ready")
            if status == 200:
                break
            time.sleep(0.2)
        else:
            raise AssertionError(f"not ready within 30s:\n{self.pmed.log()}")
        self.t0 = start = time.monotonic()
        for svc in self.services.values():
            self.track(svc, start)
        end = start + self.duration
        warmup_end = start + self.duration / 4
        next_scrape = start
        next_kill = start + KILL_EVERY / 2
        next_reload = start + RELOAD_EVERY / 2
        next_promtool = start
        next_feed = start + FEED_EVERY
        next_reset = start + RESET_EVERY
        promtool = shutil.which("promtool") is not None
        while True:
            now = time.monotonic()
            if now >= end:
                break
            if self.pmed.proc.poll() is not None:
                raise AssertionError(f"pmed exited with {self.pmed.proc.returncode} after "
                                     f"{now - self.t0:.1f}s; the end of its log:\n"
                                     f"{self.pmed.log()[-6000:]}")
            if now >= next_feed:
                next_feed += FEED_EVERY
                self.feeder.tick(self.services.values())
                self.rss.append((now, rss_kb(self.pmed.proc.pid)))
            if now >= next_reset:
                next_reset += RESET_EVERY
                svc = self.rng.choice([v for v in self.services.values()
                                       if v.kind in COUNTER_KINDS])
                self.feeder.reset(svc)
                if self.burst is None:
                    self.burst = [svc.name, BURST]
            if self.pending is not None:
                self.check_reload(now)
            if now >= next_reload and self.pending is None:
                next_reload += RELOAD_EVERY
                self.reload(now)
            elif now >= next_kill:
                next_kill += KILL_EVERY
                self.kill_one()
            if now >= next_scrape:
                next_scrape = max(next_scrape + SCRAPE_EVERY, now)
                run_promtool = promtool and now >= next_promtool
                if run_promtool:
                    next_promtool += PROMTOOL_EVERY
                self.scrape_once(now, run_promtool)
            time.sleep(max(0.0, min(next_scrape, next_feed) - time.monotonic()))
        deadline = time.monotonic() + 10
        while self.pending is not None and time.monotonic() < deadline:
            time.sleep(0.1)
            self.check_reload(time.monotonic())
        # Growth is a trend, not one sample against another: the size
        # moves by a few hundred kB with each reload and each return of
        # free pages.  The median of the quarter after warm-up against
        # the median of the last quarter.
        quarter = self.duration / 4
        rss_warm = statistics.median(
            r for t, r in self.rss if warmup_end <= t < warmup_end + quarter)
        rss_end = statistics.median(r for t, r in self.rss if t >= end - quarter)
        return rss_warm, rss_end, promtool

    def finish(self, rss_warm, rss_end, promtool):
        # A kill just before the end may not be logged yet, in a slow
        # (sanitizer) build: a few seconds more for the log to say it.
        deadline = time.monotonic() + 10
        while True:
            log = self.pmed.log()
            missing = [(s, pid) for s, pid in self.killed if not re.search(
                rf"worker\[{s}\] \(pid {pid}\) was killed by signal 9", log)]
            if not missing or time.monotonic() >= deadline:
                break
            time.sleep(0.2)
        for s, pid in missing:
            self.problem(f"the kill of worker[{s}] (pid {pid}) was not logged")
        tree = self.pmed.descendants()
        code = self.pmed.stop()
        left = [p for p in tree if pmetest.alive(p)]
        growth = (rss_end - rss_warm) / rss_warm
        lat = [t * 1000 for t in self.latencies]
        print(f"{self.duration:.0f}s, {len(self.services)} services at the end: "
              f"{self.scrapes} scrapes, {self.failed} failed, {self.kills} workers killed, "
              f"{self.reloads} reloads, {self.promtool_runs} promtool checks"
              f"{'' if promtool else ' (promtool not installed)'}")
        print(f"scrape latency: p50 {percentile(lat, 50):.1f} ms, p99 {percentile(lat, 99):.1f} ms,"
              f" max {max(lat, default=0):.1f} ms")
        if self.series_counts:
            print(f"series per scrape: min {min(self.series_counts)}, "
                  f"median {statistics.median(self.series_counts):.0f}, "
                  f"max {max(self.series_counts)}")
        sizes = [r for _, r in self.rss]
        print(f"supervisor VmRSS: median {rss_warm:.0f} kB in the quarter after warm-up, "
              f"{rss_end:.0f} kB in the last ({growth * 100:+.1f}%), between {min(sizes)} and "
              f"{max(sizes)} kB over the run")
        if self.bad_body is not None:
            fd, path = tempfile.mkstemp(prefix="pme-soak-body-", suffix=".txt")
            with os.fdopen(fd, "wb") as f:
                f.write(self.bad_body)
            self.problem(f"the first rejected body is in {path}")
        assert code == 0, f"pmed exited {code} on SIGTERM:\n{log[-4000:]}"
        assert not left, f"left behind after SIGTERM: {left}"
        assert not self.problems, (f"{len(self.problems)} problems:\n" +
                                   "\n".join(self.problems[:30]))
        assert self.kills >= self.duration / KILL_EVERY / 2, f"only {self.kills} kills"
        assert self.reloads >= self.duration / RELOAD_EVERY - 1, f"only {self.reloads} reloads"
        if pmetest.sanitized():
            print("RSS growth not checked: sanitizer build")
            return
        bound = RSS_GROWTH if self.duration >= LONG else RSS_GROWTH_SHORT
        assert growth < bound, (f"supervisor RSS grew {growth * 100:.1f}% "
                                f"({rss_warm:.0f} -> {rss_end:.0f} kB), more than "
                                f"{bound * 100:.0f}%")


def soak(duration):
    s = Soak(duration)
    try:
        s.finish(*s.run())
    finally:
        if s.pmed is not None:
            s.pmed.stop()
            s.pmed.kill_all()
        s.w.cleanup()


if __name__ == "__main__":
    pmetest.main({
        "short": lambda: soak(40),
        "long": lambda: soak(600),
    })
