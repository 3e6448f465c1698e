#!/usr/bin/env python3
# SPDX-License-Identifier: ISC
# Scrape benchmark: pmed against nginx and node_exporter on the same bodies.
#
# The question is what serving /metrics costs pmed compared with the
# cheapest possible server of the same bytes (nginx, a static file) and
# with what operators run today (node_exporter's textfile collector, which
# parses the file at every scrape).  All three serve the same generated
# exposition from loopback, one after the other, and wrk measures them in
# the same run, so that the ratios hold even on a busy machine where the
# absolute numbers do not.  A second part starts pmed with many small
# services to see what its start and its memory cost at that scale.
#
# Every server is checked to answer the whole body (every series with its
# value) before it is measured: a fast server that answers the wrong thing
# would otherwise win.  Every process started here runs in its own session
# and is stopped on the way out, Ctrl-C and SIGTERM included.
#
# Python 3 standard library only.  Run as root (it then installs wrk,
# nginx-light and prometheus-node-exporter from the Debian archive where
# they are missing, and runs the servers as nobody), under nice if the
# machine is shared:
#
#   tests/bench/bench.py --quick                  # about 2 minutes
#   tests/bench/bench.py --write-results          # about 6 minutes
#   tests/bench/bench.py --build DIR              # another build of pme

import argparse
import contextlib
import dataclasses
import datetime
import grp
import gzip
import http.client
import json
import os
import platform
import pwd
import random
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

SOURCE_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "../.."))
DEFAULT_BUILD = os.path.join(SOURCE_ROOT, "build-bench")
RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "RESULTS.md")
# The account every Debian system has, which pmed switches to as root and
# nginx's worker runs as: every file given to a server must be readable by it.
RUN_USER = "nobody"
IS_ROOT = os.geteuid() == 0
MIB = 1024 * 1024
# pmed's global interval.  Shorter than a real deployment's so that a
# quick run sees several collection cycles; the throughput runs therefore
# include a collection (and the re-render it causes) every INTERVAL seconds.
INTERVAL = 2
# wrk's default timeout (2s) would drop node_exporter's slow scrapes of the
# large body from the latency figures instead of counting them.
WRK_TIMEOUT = "60s"
# Debian binary name of node_exporter.
NODE_EXPORTER = "prometheus-node-exporter"
PACKAGES = {"wrk": "wrk", "nginx": "nginx-light", NODE_EXPORTER: "prometheus-node-exporter"}
# Series in the bodies: a large application, and ten of them behind one exporter.
SIZES = (10_000, 100_000)


@dataclasses.dataclass
class Settings:
    quick: bool
    build: str
    duration: int           # seconds of each wrk run
    idle_cycles: int        # collection cycles in pmed's idle CPU window
    scale_services: int
    scale_series: int       # per service


def settings_from(args):
    if args.quick:
        return Settings(True, args.build, 3, 2, 100, 200)
    return Settings(False, args.build, 10, 10, 500, 200)


# -- Processes -----------------------------------------------------------

def stop_on_sigterm():
    """SIGTERM unwinds like Ctrl-C, so that every server is stopped."""
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))


def parent_pids():
    """pid -> ppid of every process."""
    out = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        # The command name may hold spaces and parentheses: fields start
        # after the last ')'.
        out[int(d)] = int(stat[stat.rindex(")") + 2:].split()[1])
    return out


def children(pid):
    return [p for p, pp in parent_pids().items() if pp == pid]


def descendants(pid):
    ppids = parent_pids()
    found, frontier = [], [pid]
    while frontier:
        parent = frontier.pop()
        kids = [p for p, pp in ppids.items() if pp == parent]
        found += kids
        frontier += kids
    return found


def rss_bytes(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0  # a zombie has no VmRSS


def pss_bytes(pid):
    """Proportional set size: shared pages divided among their users."""
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    return 0


def cpu_seconds(pid):
    """utime + stime of one process (its own threads, not its children)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # fields[0] is stat's third field, the state: utime and stime are the
    # 14th and 15th.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Server:
    """A server started as a child in its own session, stopped on exit."""

    name = ""

    def __init__(self, argv, port, log_path):
        self.argv = argv
        self.port = port
        self.log_path = log_path
        self.proc = None

    def __enter__(self):
        with open(self.log_path, "w") as log:
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            self.wait_listening()
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                for pid in [self.proc.pid] + descendants(self.proc.pid):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                self.proc.wait()

    def log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def wait_listening(self, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with status {self.proc.returncode}:\n{self.log()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"{self.name} did not listen on port {self.port} in {timeout}s:\n{self.log()}")

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}/metrics"

    def command(self):
        return shlex.join(self.argv)

    def rss(self):
        """Resident memory of the processes that serve."""
        return rss_bytes(self.proc.pid)


def progress(message):
    """What is being measured, on stderr: the report goes to stdout."""
    print(f"bench: {time.strftime('%H:%M:%S')} {message}", file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def readable_dir(parent, name):
    path = os.path.join(parent, name)
    os.mkdir(path)
    os.chmod(path, 0o755)
    return path


def write_file(path, data, mode=0o644):
    with open(path, "wb" if isinstance(data, bytes) else "w") as f:
        f.write(data)
    os.chmod(path, mode)
    return path


# -- The bodies ----------------------------------------------------------

# Prometheus' client libraries' default buckets.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
HISTOGRAM_SERIES = len(BUCKETS) + 3  # with +Inf, _sum and _count
METHODS = ("GET", "POST", "PUT", "DELETE")
CODES = ("200", "201", "304", "404", "500")


@dataclasses.dataclass
class Body:
    text: str
    series: dict  # (name, sorted label pairs) -> value, what a server must answer

    @property
    def size(self):
        return len(self.text.encode())


def generate_body(total, seed=1):
    """An application's exposition of exactly `total` series.

    What a busy service's client library writes: a build info, a request
    counter by method, handler and code (40% of the series), a latency
    histogram by method and handler (30%), and two gauges, one of integers
    and one of fractions, taking the rest.  Seeded, so that every run
    measures the same bytes."""
    rnd = random.Random(seed)
    lines, series = [], {}

    def family(name, kind, help_text):
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} {kind}")

    def sample(name, labels, value):
        text = ",".join(f'{k}="{v}"' for k, v in labels)
        lines.append(f"{name}{{{text}}} {value}")
        series[(name, tuple(sorted(labels)))] = float(value)

    family("app_build_info", "gauge", "A metric with a constant '1' value labeled by version and revision.")
    sample("app_build_info", (("version", "2.4.1"), ("revision", "3f2a9c1"), ("goversion", "go1.20.7")), 1)
    rest = total - 1
    counters = rest * 4 // 10
    histograms = rest * 3 // 10 // HISTOGRAM_SERIES
    gauges = rest - counters - histograms * HISTOGRAM_SERIES

    family("app_http_requests_total", "counter", "Total HTTP requests by method, handler and status code.")
    for i in range(counters):
        labels = (("method", METHODS[i % 4]), ("handler", f"/api/v1/resource{i // 20}"),
            ("code", CODES[i // 4 % 5]))
        sample("app_http_requests_total", labels, rnd.randrange(1, 10**7))

    family("app_http_request_duration_seconds", "histogram",
        "Time from the request's first byte to the response's last, in seconds.")
    for i in range(histograms):
        base = (("method", METHODS[i % 4]), ("handler", f"/api/v1/resource{i // 4}"))
        count = 0
        for le in BUCKETS:
            count += rnd.randrange(0, 5000)
            sample("app_http_request_duration_seconds_bucket", base + (("le", str(le)),), count)
        sample("app_http_request_duration_seconds_bucket", base + (("le", "+Inf"),), count)
        sample("app_http_request_duration_seconds_sum", base, round(count * rnd.uniform(0.01, 0.5), 3))
        sample("app_http_request_duration_seconds_count", base, count)

    family("app_queue_messages", "gauge", "Messages waiting in a queue partition.")
    for i in range(gauges // 2):
        sample("app_queue_messages", (("queue", f"orders-{i // 16}"), ("partition", str(i % 16))),
            rnd.randrange(0, 100000))
    family("app_worker_load_ratio", "gauge", "Busy fraction of a worker thread over the last minute.")
    for i in range(gauges - gauges // 2):
        sample("app_worker_load_ratio", (("pool", f"pool-{i // 64}"), ("thread", str(i % 64))),
            round(rnd.random(), 4))
    return Body("\n".join(lines) + "\n", series)


SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)', re.M)
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"')


def parse_exposition(text):
    """(name, sorted label pairs) -> value of every sample of an exposition."""
    out = {}
    for m in SAMPLE.finditer(text):
        labels = tuple(sorted(LABEL.findall(m.group(2) or "")))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


# -- HTTP ----------------------------------------------------------------

@dataclasses.dataclass
class Answer:
    encoding: str   # Content-Encoding served, 'identity' when none
    wire: int       # bytes of the body on the wire
    text: str       # the body, decompressed


def fetch(port, gzip_asked):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        conn.request("GET", "/metrics", headers={"Accept-Encoding": "gzip"} if gzip_asked else {})
        r = conn.getresponse()
        raw = r.read()
        if r.status != 200:
            raise RuntimeError(f"GET /metrics on port {port} answered {r.status}")
        encoding = r.getheader("Content-Encoding", "identity")
        data = gzip.decompress(raw) if encoding == "gzip" else raw
        return Answer(encoding, len(raw), data.decode())
    finally:
        conn.close()


def missing_series(answer, body):
    """What the answer lacks or gets wrong of the body, as a message, or ''."""
    got = parse_exposition(answer.text)
    wrong = [k for k, v in body.series.items() if got.get(k) != v]
    if not wrong:
        return ""
    name, labels = wrong[0]
    return (f"{len(wrong)} of {len(body.series)} series missing or wrong, the first "
        f"{name}{dict(labels)}: expected {body.series[wrong[0]]}, got {got.get(wrong[0])}")


def check_answers(server, body):
    """Both encodings carry the whole body; returns {gzip asked: Answer}."""
    answers = {}
    for gz in (False, True):
        a = fetch(server.port, gz)
        problem = missing_series(a, body)
        if problem:
            raise RuntimeError(f"{server.name} on port {server.port} "
                f"({'gzip' if gz else 'identity'} asked): {problem}")
        answers[gz] = a
    return answers


# -- wrk -----------------------------------------------------------------

@dataclasses.dataclass
class Run:
    command: str
    requests: int
    req_s: float
    p50_ms: float
    p99_ms: float
    errors: int     # socket errors and non-2xx answers


TIME_UNITS_MS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4, "h": 3.6e6}


def wrk_time(out, percent):
    m = re.search(rf"^\s+{percent}%\s+([\d.]+)(us|ms|s|m|h)\s*$", out, re.M)
    return float(m.group(1)) * TIME_UNITS_MS[m.group(2)] if m else float("nan")


def run_wrk(url, connections, gzip_asked, duration):
    argv = ["wrk", f"-t{min(connections, 2)}", f"-c{connections}", f"-d{duration}s",
        "--latency", "--timeout", WRK_TIMEOUT]
    if gzip_asked:
        argv += ["-H", "Accept-Encoding: gzip"]
    argv.append(url)
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors += int(non2xx.group(1)) if non2xx else 0
    # With no request completed wrk still prints percentiles, of nothing.
    nan = float("nan")
    return Run(shlex.join(argv), requests, float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        wrk_time(out, 50) if requests else nan, wrk_time(out, 99) if requests else nan, errors)


# -- The servers ---------------------------------------------------------

def exporter_block(port):
    user = f"  user: {RUN_USER}\n" if IS_ROOT else ""
    return f'exporter:\n  listen: ["127.0.0.1:{port}"]\n  interval: {INTERVAL}s\n{user}'


class Pmed(Server):
    name = "pmed"

    def __init__(self, build, config, port, workdir):
        super().__init__([os.path.join(build, "daemon", "pmed"), "-d", "-f", config],
            port, os.path.join(workdir, "pmed.log"))

    def health(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request("GET", "/health")
            return json.loads(conn.getresponse().read())
        finally:
            conn.close()

    def ready(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        try:
            conn.request("GET", "/-/ready")
            r = conn.getresponse()
            r.read()
            return r.status == 200
        finally:
            conn.close()

    def spawner(self):
        kids = children(self.proc.pid)
        if len(kids) != 1:
            raise RuntimeError(f"pmed {self.proc.pid} has {len(kids)} children, expected its spawner only")
        return kids[0]

    def workers(self):
        return children(self.spawner())


def pmed_import_config(path, port, body_path):
    """One service importing the body file whole."""
    write_file(path, exporter_block(port) + f"""services:
  bench:
    metric_groups:
      body:
        source_type: file
        source: {body_path}
        content_type: prometheus
        # The defaults (1 MiB, 10000 series) guard against a runaway
        # source; this one is large on purpose.
        max_output: 256MiB
        max_series: 1000000
""")
    return path


class Nginx(Server):
    """nginx serving the body as a static file, one worker like pmed's one loop."""

    name = "nginx"

    def __init__(self, workdir, port, body_path):
        root = os.path.dirname(body_path)
        conf = os.path.join(workdir, "nginx.conf")
        # Debian's nobody has the group nogroup, not a group of its name,
        # which is what nginx would look for.
        group = grp.getgrgid(pwd.getpwnam(RUN_USER).pw_gid).gr_name
        user = f"user {RUN_USER} {group};\n" if IS_ROOT else ""
        temp = os.path.join(workdir, "nginx-temp")
        os.mkdir(temp)
        # Every path nginx would otherwise take from its compiled-in
        # defaults under /var is given here, so that the system's nginx is
        # left alone.  keepalive_requests is raised from 1000 since pmed
        # does not limit requests per connection either.  sendfile stays
        # off: on loopback nginx answered this body about 45% faster
        # without it, and the baseline should be nginx at its best.
        write_file(conf, f"""{user}daemon off;
worker_processes 1;
pid {workdir}/nginx.pid;
error_log {workdir}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    sendfile off;
    keepalive_requests 1000000;
    client_body_temp_path {temp}/body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        location = /metrics {{
            default_type "text/plain; version=0.0.4; charset=utf-8";
            gzip_static on;
        }}
    }}
}}
""")
        super().__init__(["nginx", "-e", os.path.join(workdir, "nginx-error.log"), "-c", conf],
            port, os.path.join(workdir, "nginx.log"))

    def rss(self):
        return sum(rss_bytes(p) for p in [self.proc.pid] + children(self.proc.pid))


class NodeExporter(Server):
    name = "node_exporter"

    def __init__(self, workdir, port, textfile_dir):
        # Its own go_, process_ and promhttp_ metrics are left out, so that
        # its body is the textfile's plus its scrape bookkeeping only.
        super().__init__([NODE_EXPORTER, f"--web.listen-address=127.0.0.1:{port}",
            "--web.disable-exporter-metrics", "--collector.disable-defaults",
            "--collector.textfile", f"--collector.textfile.directory={textfile_dir}"],
            port, os.path.join(workdir, "node_exporter.log"))


# -- Measuring -----------------------------------------------------------

def wait_complete(pmed, body, timeout=60):
    """Poll until pmed has reported every group and serves the whole body."""
    deadline = time.monotonic() + timeout
    problem = "no answer"
    while time.monotonic() < deadline:
        if pmed.proc.poll() is not None:
            raise RuntimeError(f"pmed exited with status {pmed.proc.returncode}:\n{pmed.log()}")
        # A supervisor that is stuck still accepts connections (the
        # kernel does), so a probe that times out is an answer too.
        try:
            problem = "/-/ready answered 503"
            if pmed.ready():
                problem = missing_series(fetch(pmed.port, False), body)
                if not problem:
                    return
        except OSError as e:
            problem = f"GET /-/ready: {e}"
        time.sleep(0.05)
    raise RuntimeError(f"pmed did not serve the whole body in {timeout}s (last: {problem}); "
        f"the end of its log:\n{pmed.log()[-2000:]}")


def last_success(pmed):
    groups = pmed.health()["services"]["bench"]["groups"]
    return groups["body"]["last_success"]


def cycle_cpu(pmed, cycles):
    """CPU seconds of the supervisor and of the worker per collection cycle.

    The window opens just after a collection has been reported and lasts
    `cycles` intervals and a half, so that it holds exactly `cycles`
    collections whatever their phase; the count is then checked against
    the group's last success times.  Nothing scrapes meanwhile, so the
    cost of rendering, paid at the first scrape after a change, is not in
    it but in the throughput runs."""
    (worker,) = pmed.workers()
    start = last_success(pmed)
    while last_success(pmed) == start:
        time.sleep(0.02)
    before = (cpu_seconds(pmed.proc.pid), cpu_seconds(worker))
    start = last_success(pmed)
    time.sleep(cycles * INTERVAL + INTERVAL / 2)
    # The supervisor answers once it is done with the last result, which
    # the CPU times read after must therefore hold whole.
    seen = round((last_success(pmed) - start) / INTERVAL)
    after = (cpu_seconds(pmed.proc.pid), cpu_seconds(worker))
    if seen != cycles:
        raise RuntimeError(f"pmed collected {seen} times in a window of {cycles} intervals")
    return tuple((a - b) / cycles for a, b in zip(after, before))


@dataclasses.dataclass
class Measured:
    command: str
    answers: dict   # gzip asked -> Answer
    runs: dict      # (connections, gzip asked) -> Run
    rss: int


def measure(server, body, settings):
    progress(f"{len(body.series):,} series: {server.name}")
    answers = check_answers(server, body)
    runs = {}
    for conns in (1, 16):
        for gz in (False, True):
            runs[(conns, gz)] = run_wrk(server.url, conns, gz, settings.duration)
    return Measured(server.command(), answers, runs, server.rss())


@dataclasses.dataclass
class SizeResult:
    series: int
    body_bytes: int
    gzip_bytes: int
    servers: dict   # name -> Measured
    cycle: tuple    # pmed CPU seconds per cycle: supervisor, worker


def bench_size(series, settings, workdir):
    """The three servers on one body, each started, measured and stopped."""
    body = generate_body(series)
    d = readable_dir(workdir, f"size-{series}")
    www = readable_dir(d, "www")
    body_path = write_file(os.path.join(www, "metrics"), body.text)
    gz = gzip.compress(body.text.encode(), compresslevel=6)
    write_file(body_path + ".gz", gz)
    textfiles = readable_dir(d, "textfile")
    write_file(os.path.join(textfiles, "body.prom"), body.text)

    servers = {}
    port = free_port()
    with Pmed(settings.build, pmed_import_config(os.path.join(d, "pme.yml"), port, body_path),
        port, d) as pmed:
        wait_complete(pmed, body)
        progress(f"{series:,} series: pmed's idle CPU over {settings.idle_cycles} cycles")
        cycle = cycle_cpu(pmed, settings.idle_cycles)
        servers["pmed"] = measure(pmed, body, settings)
    with Nginx(d, free_port(), body_path) as nginx:
        servers["nginx"] = measure(nginx, body, settings)
    with NodeExporter(d, free_port(), textfiles) as node:
        servers["node_exporter"] = measure(node, body, settings)
    return SizeResult(series, body.size, len(gz), servers, cycle)


@dataclasses.dataclass
class ScaleResult:
    services: int
    series: int
    command: str
    workers: int            # running when measured, or when pmed failed
    failure: str = ""       # why pmed served no complete exposition
    start_s: float = 0
    supervisor_rss: int = 0
    workers_rss_sum: int = 0
    workers_rss_max: int = 0
    workers_pss_sum: int = 0
    scrape: Run = None


def bench_scale(settings, workdir):
    """Many services of a few series each: start time and memory."""
    d = readable_dir(workdir, "scale")
    # Every service imports the same file, told apart by its own label, as
    # a fleet of one application's instances would be.
    part = generate_body(settings.scale_series, seed=2)
    part_path = write_file(os.path.join(d, "part.prom"), part.text)
    services = "".join(f"""  app{i:03}:
    labels: {{ instance: app{i:03} }}
    metric_groups:
      part:
        source_type: file
        source: {part_path}
        content_type: prometheus
""" for i in range(settings.scale_services))
    port = free_port()
    config = write_file(os.path.join(d, "pme.yml"), exporter_block(port) + "services:\n" + services)
    whole = Body("", {(name, tuple(sorted(labels + (("instance", f"app{i:03}"),)))): v
        for i in range(settings.scale_services) for (name, labels), v in part.series.items()})

    progress(f"scale: {settings.scale_services} services of {settings.scale_series} series")
    started = time.monotonic()
    with Pmed(settings.build, config, port, d) as pmed:
        # A failure here is a result, reported with the rest of the run.
        try:
            wait_complete(pmed, whole)
        except RuntimeError as e:
            return ScaleResult(settings.scale_services, len(whole.series), pmed.command(),
                len(pmed.workers()), str(e))
        elapsed = time.monotonic() - started
        workers = pmed.workers()
        if len(workers) != settings.scale_services:
            raise RuntimeError(f"pmed runs {len(workers)} workers for {settings.scale_services} services")
        rss = [rss_bytes(w) for w in workers]
        scrape = run_wrk(pmed.url, 1, False, settings.duration)
        return ScaleResult(settings.scale_services, len(whole.series), pmed.command(), len(workers),
            start_s=elapsed, supervisor_rss=pmed.rss(), workers_rss_sum=sum(rss),
            workers_rss_max=max(rss), workers_pss_sum=sum(pss_bytes(w) for w in workers),
            scrape=scrape)


# -- Setup ---------------------------------------------------------------

def ensure_tools():
    """Install what is missing (as root), or say what to install."""
    missing = [pkg for tool, pkg in PACKAGES.items() if shutil.which(tool) is None]
    if not missing:
        return
    if not IS_ROOT:
        sys.exit(f"bench: missing {', '.join(missing)}: run as root, or apt-get install them")
    # The recommends (dbus, the node_exporter collectors and their timers)
    # have nothing to do with the benchmark.
    subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", *missing], check=True)


def first_line(argv):
    # wrk -v exits 1 and node_exporter --version writes to stderr.
    r = subprocess.run(argv, capture_output=True, text=True)
    return (r.stdout + r.stderr).strip().splitlines()[0]


def revision():
    """The commit pmed was built from, and whether the tree differed from it."""
    head = subprocess.run(["git", "-C", SOURCE_ROOT, "rev-parse", "--short", "HEAD"],
                          capture_output=True, text=True).stdout.strip()
    if not head:
        return "unknown revision"
    dirty = subprocess.run(["git", "-C", SOURCE_ROOT, "diff", "--quiet", "HEAD"]).returncode != 0
    return f"git {head}" + (" with uncommitted changes in the tree" if dirty else "")


def environment(settings):
    with open("/proc/cpuinfo") as f:
        model = re.search(r"^model name\s*:\s*(.*)$", f.read(), re.M)
    return {
        "date": datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "mode": "quick" if settings.quick else "full",
        "nproc": os.cpu_count(),
        "cpu": model.group(1) if model else platform.processor(),
        "kernel": platform.release(),
        "load": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "pmed": first_line([os.path.join(settings.build, "daemon", "pmed"), "--version"])
        + f" ({revision()}, built in {settings.build})",
        "nginx": first_line(["nginx", "-v"]),
        "node_exporter": first_line([NODE_EXPORTER, "--version"]),
        "wrk": first_line(["wrk", "-v"]),
    }


# -- The report ----------------------------------------------------------

SERVERS = ("pmed", "nginx", "node_exporter")


def mib(n):
    return f"{n / MIB:.1f} MiB"


def num(x, digits=1):
    return "n/a" if x != x else f"{x:,.{digits}f}"


def ratio(a, b):
    if not b or a != a or b != b:
        return "n/a"
    # Three significant digits, without exponents: 1.00x, 0.00193x, 1,401x.
    x = a / b
    return f"{x:,.0f}x" if x >= 100 else f"{x:#.3g}x"


def table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


def asked(gz):
    return "gzip" if gz else "identity"


def size_section(r):
    rows = []
    for name in SERVERS:
        m = r.servers[name]
        for (conns, gz), run in m.runs.items():
            a = m.answers[gz]
            rows.append([name, conns, asked(gz), a.encoding, f"{a.wire:,}", num(run.req_s),
                num(run.p50_ms, 2), num(run.p99_ms, 2), run.requests, run.errors])
    sup, worker = r.cycle
    return "\n".join([
        f"### {r.series:,} series ({mib(r.body_bytes)} body, {mib(r.gzip_bytes)} gzipped)", "",
        table(["server", "conns", "asked", "served", "bytes/answer", "req/s", "p50 ms", "p99 ms",
            "requests", "errors"], rows), "",
        "RSS after the runs: " + ", ".join(f"{n} {mib(r.servers[n].rss)}" for n in SERVERS)
        + " (nginx: master and worker).", "",
        f"pmed CPU per collection cycle, idle (no scrape): supervisor {sup * 1000:.1f} ms, "
        f"worker {worker * 1000:.1f} ms.", ""])


def ratio_section(sizes):
    rows = []
    for r in sizes:
        p = r.servers["pmed"]
        for key, run in p.runs.items():
            n = r.servers["nginx"].runs[key]
            e = r.servers["node_exporter"].runs[key]
            rows.append([f"{r.series:,}", key[0], asked(key[1]) + ("" if p.answers[key[1]].encoding
                == ("gzip" if key[1] else "identity") else " (pmed: identity)"),
                ratio(run.req_s, n.req_s), ratio(run.p50_ms, n.p50_ms), ratio(run.p99_ms, n.p99_ms),
                ratio(run.req_s, e.req_s), ratio(run.p50_ms, e.p50_ms), ratio(run.p99_ms, e.p99_ms)])
    rss = [[f"{r.series:,}", ratio(r.servers["pmed"].rss, r.servers["nginx"].rss),
        ratio(r.servers["pmed"].rss, r.servers["node_exporter"].rss)] for r in sizes]
    return "\n".join([
        "### Ratios, pmed / other server", "",
        "Throughput above 1x and latency below 1x favour pmed.", "",
        table(["series", "conns", "asked", "req/s vs nginx", "p50 vs nginx", "p99 vs nginx",
            "req/s vs node_exporter", "p50 vs node_exporter", "p99 vs node_exporter"], rows), "",
        table(["series", "RSS vs nginx", "RSS vs node_exporter"], rss), ""])


def scale_section(s):
    title = f"### Scale: {s.services} services of {s.series // s.services} series ({s.series:,} series)"
    if s.failure:
        return "\n".join([title, "", f"**FAILED** with {s.workers} workers running:", "",
            "```", s.failure, "```", ""])
    return "\n".join([title, "",
        table(["start to first complete exposition", "supervisor RSS", "workers",
            "workers RSS sum", "workers RSS max", "workers PSS sum", "scrape req/s (1 conn)",
            "scrape p50 ms", "scrape p99 ms"],
            [[f"{s.start_s:.2f} s", mib(s.supervisor_rss), s.workers, mib(s.workers_rss_sum),
            mib(s.workers_rss_max), mib(s.workers_pss_sum), num(s.scrape.req_s),
            num(s.scrape.p50_ms, 2), num(s.scrape.p99_ms, 2)]]), "",
        f"The start includes the spread of the first collections over one interval ({INTERVAL}s). "
        "RSS counts the shared pages of every worker again; PSS divides them among the workers.", ""])


def judge(ok):
    return "pass" if ok else "**FAIL**"


def targets(sizes):
    """The targets of issue 7, each with what was measured and whether it holds."""
    rows = []
    for r in sizes:
        p = r.servers["pmed"]
        for (conns, gz), run in p.runs.items():
            label = f"{r.series:,} series, {conns} conn, {asked(gz)}"
            if p.answers[gz].encoding != asked(gz):
                rows.append([f"throughput, {label}", "pmed answered identity", "not judged"])
                continue
            for other, factor in (("nginx", 0.8), ("node_exporter", 50)):
                theirs = r.servers[other].runs[(conns, gz)]
                what = f"req/s >= {factor}x {other}, {label}"
                if theirs.requests == 0:
                    rows.append([what, f"{other} completed no request", judge(run.requests > 0)])
                    continue
                ok = run.req_s >= factor * theirs.req_s
                rows.append([what, ratio(run.req_s, theirs.req_s), judge(ok)])
        limit = 3 * r.body_bytes + 16 * MIB
        rows.append([f"supervisor RSS < 3 x body + 16 MiB = {mib(limit)}, {r.series:,} series",
            mib(p.rss), judge(p.rss < limit)])
    judged = [r for r in rows if r[2] != "not judged"]
    met = sum(r[2] == "pass" for r in judged)
    return "\n".join(["### Targets (pme issue 7)", "",
        "Throughput is judged on every run where pmed answered the encoding asked for.", "",
        table(["target", "measured", "result"], rows), "",
        f"{met} of {len(judged)} targets met.", ""])


def commands_section(sizes, scale):
    lines = []
    for r in sizes:
        for name in SERVERS:
            m = r.servers[name]
            lines.append(f"# {r.series:,} series, {name}")
            lines.append(m.command)
            lines += [run.command for run in m.runs.values()]
    lines.append(f"# scale, {scale.services} services")
    lines.append(scale.command)
    if scale.scrape:
        lines.append(scale.scrape.command)
    return "\n".join(["### Commands", "", "Temporary paths differ from run to run.", "",
        "```", *lines, "```", ""])


def report(env, settings, sizes, scale):
    head = [
        f"## pme scrape benchmark, {env['mode']} run of {env['date']}", "",
        f"- Machine: {env['nproc']} CPUs, {env['cpu']}, Linux {env['kernel']}, "
        f"load average {env['load']} at the start",
        f"- Versions: {env['pmed']}; {env['nginx']}; {env['node_exporter']}; {env['wrk']}",
        f"- Each wrk run lasts {settings.duration}s (timeout {WRK_TIMEOUT}); 1 connection on 1 "
        f"thread, 16 connections on 2 threads; client and servers share the machine's CPUs.",
        f"- pmed: one service importing the body from a file (content_type prometheus), "
        f"global interval {INTERVAL}s; it serves its own metrics after the body. nginx: the "
        f"body as a static file, one worker, gzip_static with a .gz at level 6 beside it. "
        f"node_exporter: the textfile collector alone, its own metrics disabled.",
        "- Every server was checked to answer every series of the body with its value, "
        "plain and with gzip asked, before it was measured.", ""]
    parts = head + [size_section(r) for r in sizes] + [ratio_section(sizes), scale_section(scale),
        targets(sizes), commands_section(sizes, scale)]
    return "\n".join(parts)


def main():
    ap = argparse.ArgumentParser(description="Benchmark pmed's /metrics against nginx and "
        "node_exporter serving the same bodies.")
    ap.add_argument("--quick", action="store_true", help="3s runs and 100 services (under 2 minutes)")
    ap.add_argument("--build", default=DEFAULT_BUILD, help=f"pme build directory [{DEFAULT_BUILD}]")
    ap.add_argument("--write-results", action="store_true", help=f"also write the report to {RESULTS}")
    args = ap.parse_args()
    settings = settings_from(args)
    stop_on_sigterm()
    ensure_tools()
    env = environment(settings)
    workdir = tempfile.mkdtemp(prefix="pme-bench-")
    os.chmod(workdir, 0o755)
    try:
        sizes = [bench_size(n, settings, workdir) for n in SIZES]
        scale = bench_scale(settings, workdir)
    finally:
        shutil.rmtree(workdir)
    text = report(env, settings, sizes, scale)
    print(text)
    if args.write_results:
        write_file(RESULTS, text)
    # The report has the details: the status says whether pmed stood up.
    return 1 if scale.failure else 0


if __name__ == "__main__":
    sys.exit(main())
