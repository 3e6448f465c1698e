#!/usr/bin/env python3
# SPDX-License-Identifier: ISC
# End-to-end tests: the real pmed, spawner and workers on loopback.
import json
import os
import re
import shutil
import signal
import subprocess
import time

import pmetest
from pmetest import IS_ROOT, Pmed, Workdir, free_port, run_pmed, value

SERVICES = """
services:
  app:
    metric_prefix: app_
    labels: {{ team: core }}
    metric_groups:
      stats:
        source_type: file
        source: {stats}
        metrics:
          requests_total:
            type: counter
            description: Requests served.
            filter: 'requests=(\\d+)'
          temperature:
            description: "Temperature \\\\ with \\"quotes\\"\\nand a newline."
            filter: 'temp=(?<value>[-\\d.]+) unit=(?<unit>\\w+)'
            labels: {{ unit: "${{unit}}" }}
      disks:
        source_type: command
        source: [printf, "sda 10\\nsdb 20\\n"]
        multiline: true
        metrics:
          disk_reads:
            filter: '^(\\w+) (\\d+)$'
            value: "$2"
            labels: {{ disk: "$1" }}
    standalone_metrics:
      build_info:
        source_type: static
        type: info
        labels: {{ version: "1.2.3" }}
        value: 1
  shell:
    metric_groups:
      echo:
        source_type: command
        shell: true
        source: 'echo "answer $((6 * 7))"'
        metrics:
          shell_answer:
            filter: 'answer (\\d+)'
"""


def start_app(w, port):
    stats = w.file("stats.txt", "requests=100\ntemp=21.5 unit=celsius\n")
    cfg = w.config(SERVICES.format(stats=stats), port=port)
    return stats, Pmed(cfg, port)


def test_check_ok():
    w = Workdir()
    try:
        cfg = w.config(SERVICES.format(stats="/nonexistent"))
        r = run_pmed("-n", "-f", cfg)
        assert r.returncode == 0, f"pmed -n failed ({r.returncode}): {r.stderr}"
        assert r.stdout.strip() == "configuration OK", f"stdout: {r.stdout!r}"
    finally:
        w.cleanup()


# Each broken configuration, with the position and words its error must have.
BROKEN = [
    ("unknown key with suggestion",
     "services:\n  a:\n    metric_prefx: a_\n",
     3, 5, r"unknown key 'metric_prefx'.*did you mean 'metric_prefix'"),
    ("wrong type",
     "services:\n  a:\n    metric_groups: [1, 2]\n",
     3, 20, r"mapping"),
    ("bad duration",
     "services:\n  a:\n    interval: 5 parsecs\n",
     3, 15, r"5 parsecs"),
    ("child interval smaller than parent",
     "services:\n  a:\n    interval: 30s\n    metric_groups:\n      g:\n        source_type: static\n"
     "        interval: 10s\n        metrics:\n          m: { value: 1 }\n",
     7, 19, r"interval"),
    ("duplicate metric name",
     "services:\n  a:\n    metric_groups:\n      g:\n        source_type: static\n"
     "        metrics:\n          m: { value: 1 }\n    standalone_metrics:\n"
     "      m: { source_type: static, value: 2 }\n",
     9, 7, r"duplicate|already"),
    ("invalid metric name",
     "services:\n  a:\n    metric_groups:\n      g:\n        source_type: static\n"
     "        metrics:\n          m:\n            name: 9lives\n            value: 1\n",
     8, 19, r"metric name"),
    ("invalid label name",
     "services:\n  a:\n    labels: { bad-label: x }\n",
     3, 15, r"label name"),
    ("bad regular expression",
     "services:\n  a:\n    metric_groups:\n      g:\n        source_type: file\n"
     "        source: /proc/loadavg\n        metrics:\n          m: { filter: '(unclosed' }\n",
     8, 24, r"(?i)missing|parenthes"),
]


def test_check_errors():
    w = Workdir()
    failures = []
    try:
        for what, text, line, col, words in BROKEN:
            cfg = w.file("broken.yml", "exporter:\n  interval: 5s\n" + text)
            r = run_pmed("-n", "-f", cfg)
            where = f"{cfg}:{line + 2}:{col}: "
            if r.returncode != 78:
                failures.append(f"{what}: exit {r.returncode}, expected 78 (EX_CONFIG)")
            elif where not in r.stderr or not re.search(words, r.stderr):
                failures.append(f"{what}: expected '{where}' and /{words}/ in:\n{r.stderr}")
        r = run_pmed("-n", "-f", "/nonexistent/pme.yml")
        if r.returncode != 78 or "/nonexistent/pme.yml" not in r.stderr:
            failures.append(f"missing file: exit {r.returncode}: {r.stderr}")
        assert not failures, "\n".join(failures)
    finally:
        w.cleanup()


def test_serve():
    w, port = Workdir(), free_port()
    _, pmed = start_app(w, port)
    try:
        body = pmed.wait_for(lambda b: value(b, "shell_answer") is not None
                             and value(b, "app_disk_reads", disk="sdb") is not None
                             and value(b, "app_requests_total") is not None, "every group")
        assert value(body, "app_requests_total", team="core") == 100, body
        assert value(body, "app_temperature", unit="celsius", team="core") == 21.5, body
        assert value(body, "app_disk_reads", disk="sda") == 10, body
        assert value(body, "app_disk_reads", disk="sdb") == 20, body
        assert value(body, "app_build_info", version="1.2.3") == 1, body
        assert value(body, "shell_answer") == 42, body
        assert "# TYPE app_requests_total counter" in body, body
        assert "# HELP app_temperature Temperature \\\\ with \"quotes\"\\nand a newline." in body, body
        assert value(body, "pme_source_up", service="app", group="stats") == 1, body
        assert value(body, "pme_source_up", service="shell", group="echo") == 1, body
        assert value(body, "pme_build_info") == 1, body
        # One HELP and one TYPE per family.
        names = re.findall(r"^# TYPE (\S+)", body, re.M)
        assert len(names) == len(set(names)), f"duplicate TYPE lines: {names}"

        status, headers, _ = pmed.request("/metrics")
        assert headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8", headers
        status, headers, head_body = pmed.request("/metrics", method="HEAD")
        assert status == 200 and head_body == "" and int(headers["content-length"]) > 0

        status, headers, health = pmed.request("/health")
        assert status == 200, f"/health {status}: {health}"
        doc = json.loads(health)
        assert doc["services"]["app"]["state"] == "running", doc
        assert set(doc["services"]) == {"app", "shell"}, doc

        status, _, landing = pmed.request("/")
        assert status == 200 and "/metrics" in landing
        assert pmed.request("/nowhere")[0] == 404
        assert pmed.request("/metrics", method="POST")[0] == 405
        assert pmed.request("/-/healthy")[0] == 200
        assert pmed.stop() == 0, pmed.log()
    finally:
        pmed.kill_all()
        w.cleanup()


def test_once():
    w = Workdir()
    try:
        stats = w.file("stats.txt", "requests=7\ntemp=-3 unit=celsius\n")
        cfg = w.config(SERVICES.format(stats=stats))
        r = run_pmed("--once", "-f", cfg)
        assert r.returncode == 0, f"--once exit {r.returncode}: {r.stderr}"
        assert value(r.stdout, "app_requests_total") == 7, r.stdout
        assert value(r.stdout, "app_temperature", unit="celsius") == -3, r.stdout
        assert value(r.stdout, "shell_answer") == 42, r.stdout
        assert value(r.stdout, "app_disk_reads", disk="sdb") == 20, r.stdout
    finally:
        w.cleanup()


def test_counter_reset():
    w, port = Workdir(), free_port()
    stats, pmed = start_app(w, port)
    try:
        def counter_is(v):
            return lambda b: value(b, "app_requests_total") == v
        pmed.wait_for(counter_is(100), "counter at 100")
        w.file("stats.txt", "requests=150\ntemp=1 unit=celsius\n")
        pmed.wait_for(counter_is(150), "counter at 150")
        # The source restarted: 20 is a reset, the exposed counter goes on.
        w.file("stats.txt", "requests=20\ntemp=1 unit=celsius\n")
        pmed.wait_for(counter_is(170), "counter at 170 after the reset")
        w.file("stats.txt", "requests=25\ntemp=1 unit=celsius\n")
        pmed.wait_for(counter_is(175), "counter at 175")
        # Gauges follow the source.
        body = pmed.metrics()
        assert value(body, "app_temperature", unit="celsius") == 1, body
    finally:
        pmed.stop()
        pmed.kill_all()
        w.cleanup()


def test_worker_restart():
    """A worker killed by a signal is restarted; its counters go on."""
    w, port = Workdir(), free_port()
    stats, pmed = start_app(w, port)
    try:
        pmed.wait_for(lambda b: value(b, "app_requests_total") == 100, "counter at 100")
        procs = pmetest.all_processes()
        spawner = [p for p, v in procs.items() if v[0] == pmed.proc.pid][0]
        workers = {p for p, v in procs.items() if v[0] == spawner}
        app = [p for p in workers if open(f"/proc/{p}/cmdline").read().split("\0")[1] == "app"]
        assert len(app) == 1, f"workers: {workers}"
        # The source restarts while its worker is down: 30 is a reset.
        w.file("stats.txt", "requests=30\ntemp=1 unit=celsius\n")
        os.kill(app[0], signal.SIGKILL)
        body = pmed.wait_for(lambda b: value(b, "pme_worker_restarts_total", service="app") == 1
                             and value(b, "app_requests_total") == 130,
                             "a restarted worker and the counter at 130")
        assert value(body, "pme_worker_up", service="app") == 1, body
        assert value(body, "pme_worker_restarts_total", service="shell") == 0, body
        assert re.search(r"worker\[app\] \(pid \d+\) was killed by signal 9", pmed.log()), \
            pmed.log()
    finally:
        pmed.stop()
        pmed.kill_all()
        w.cleanup()


SLOW = """
services:
  slow:
    metric_groups:
      sleeper:
        source_type: command
        source: [sh, -c, 'sleep 300 & sleep 300; echo 1']
        timeout: 600s
        metrics:
          never: {{ filter: '(\\d+)' }}
  fast:
    metric_groups:
      echo:
        source_type: command
        source: [echo, "7"]
        metrics:
          seven: {{ filter: '(\\d+)' }}
"""


def start_slow(w, port):
    pmed = Pmed(w.config(SLOW.format(), port=port), port)
    # Wait until the sleep commands run under the worker.
    deadline = time.time() + 20
    while time.time() < deadline:
        tree = pmed.descendants()
        procs = pmetest.all_processes()
        if sum(1 for p in tree if procs.get(p, (0, 0, 0, ""))[3] == "sleep") >= 2:
            return pmed, tree
        time.sleep(0.1)
    raise AssertionError(f"sleep commands never started:\n{pmed.log()}")


def wait_gone(pids, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        left = [p for p in pids if pmetest.alive(p)]
        if not left:
            return []
        time.sleep(0.1)
    return [p for p in pids if pmetest.alive(p)]


def stop_cleanly(sig):
    w, port = Workdir(), free_port()
    pmed, tree = start_slow(w, port)
    try:
        start = time.time()
        rc = pmed.stop(timeout=20, sig=sig)
        assert rc == 0, f"pmed exited {rc} on {sig.name}:\n{pmed.log()}"
        left = wait_gone(tree, 5)
        assert not left, f"left behind after {sig.name} ({time.time() - start:.1f}s): " \
            f"{[(p, pmetest.all_processes().get(p)) for p in left]}"
    finally:
        pmed.kill_all()
        w.cleanup()


def test_shutdown():
    stop_cleanly(signal.SIGTERM)


def test_interrupt():
    stop_cleanly(signal.SIGINT)


def test_kill9():
    w, port = Workdir(), free_port()
    pmed, tree = start_slow(w, port)
    try:
        assert len(tree) >= 4, f"expected spawner, workers and commands: {tree}"
        os.kill(pmed.proc.pid, signal.SIGKILL)
        pmed.proc.wait()
        left = wait_gone(tree, 10)
        assert not left, "left behind after kill -9 of pmed: " \
            f"{[(p, pmetest.all_processes().get(p)) for p in left]}"
    finally:
        pmed.kill_all()
        w.cleanup()


def quickstart_config(w):
    with open(os.path.join(pmetest.SOURCE, "packaging/examples/quickstart.yml")) as f:
        text = f.read()
    if IS_ROOT:
        text = text.replace("exporter:\n", f"exporter:\n  user: {pmetest.TEST_USER}\n", 1)
    return w.file("quickstart.yml", text)


def test_quickstart_promtool():
    promtool = shutil.which("promtool")
    if promtool is None:
        print("SKIP: promtool not installed (Debian package prometheus)")
        return pmetest.SKIP
    w = Workdir()
    try:
        r = run_pmed("--once", "-f", quickstart_config(w))
        assert r.returncode == 0, f"--once on quickstart.yml exit {r.returncode}: {r.stderr}"
        for name in ("host_load1", "host_memory_bytes", "host_filesystem_size_bytes",
                     "host_network_receive_bytes_total", "host_context_switches_total",
                     "host_quickstart_info"):
            assert re.search(rf"^{name}[{{ ]", r.stdout, re.M), f"{name} missing:\n{r.stdout}"
        assert value(r.stdout, "pme_source_up", group="filesystems") == 1, r.stdout
        check = subprocess.run([promtool, "check", "metrics"], input=r.stdout,
                               capture_output=True, text=True)
        assert check.returncode == 0, f"promtool check metrics:\n{check.stdout}{check.stderr}"
    finally:
        w.cleanup()


OTHER_USER = """
services:
  mine:
    metric_groups:
      echo:
        source_type: command
        source: [echo, "5"]
        metrics:
          mine_value: {{ filter: '(\\d+)' }}
  theirs:
    run_as: {{ user: {user} }}
    metric_groups:
      echo:
        source_type: command
        source: [echo, "6"]
        metrics:
          theirs_value: {{ filter: '(\\d+)' }}
"""


def test_development_mode():
    """Run by an ordinary user: its own services work, others are refused."""
    w, port = Workdir(), free_port()
    prefix = []
    pmed_path = pmetest.PMED
    if IS_ROOT:
        # Play the ordinary user: nobody, without capabilities, running
        # copies of the binaries it can reach.
        for exe in (pmetest.PMED, pmetest.WORKER):
            shutil.copy(exe, w.path)
        pmed_path = os.path.join(w.path, "pmed")
        prefix = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                  "--inh-caps=-all", "--bounding-set=-all"]
    other = "root" if not IS_ROOT else "daemon"
    cfg = w.file("pme.yml", f'exporter:\n  listen: ["127.0.0.1:{port}"]\n  interval: 1s\n'
                 + OTHER_USER.format(user=other))
    log = open(cfg + ".log", "w")
    proc = subprocess.Popen(prefix + [pmed_path, "-d", "-f", cfg], stderr=log,
                            stdout=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.time() + 20
        body = ""
        while time.time() < deadline:
            try:
                import http.client
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                c.request("GET", "/metrics")
                body = c.getresponse().read().decode()
                if value(body, "mine_value") is not None:
                    break
            except OSError:
                pass
            time.sleep(0.2)
        with open(cfg + ".log") as f:
            text = f.read()
        assert value(body, "mine_value") == 5, f"own service did not run:\n{body}\n{text}"
        assert value(body, "theirs_value") is None, body
        assert re.search(r"service 'theirs'.*CAP_SETUID", text), f"no clear refusal:\n{text}"
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        c.request("GET", "/health")
        r = c.getresponse()
        doc = json.loads(r.read().decode())
        assert r.status == 503 and doc["services"]["theirs"]["state"] == "refused", doc
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
        log.close()
        w.cleanup()


def test_root_mode():
    """Started as root: supervisor without capabilities, spawner with three."""
    if not IS_ROOT:
        print("SKIP: needs root to switch users (runs in CI)")
        return pmetest.SKIP
    w, port = Workdir(), free_port()
    pmed = Pmed(w.config(SLOW.format(), port=port), port)
    try:
        pmed.wait_for(lambda b: value(b, "seven") == 7, "the fast service")
        sup = pmetest.proc_status(pmed.proc.pid)
        nobody = "65534"
        assert sup["Uid"].split() == [nobody] * 4, sup["Uid"]
        for k in ("CapEff", "CapPrm", "CapAmb", "CapInh"):
            assert int(sup[k], 16) == 0, f"supervisor {k} {sup[k]}"
        assert sup["NoNewPrivs"] == "1"
        procs = pmetest.all_processes()
        kids = [p for p, v in procs.items() if v[0] == pmed.proc.pid]
        assert len(kids) == 1, f"supervisor children: {kids}"
        sp = pmetest.proc_status(kids[0])
        caps = (1 << 5) | (1 << 6) | (1 << 7)   # CAP_KILL, CAP_SETGID, CAP_SETUID
        assert int(sp["CapEff"], 16) == caps and int(sp["CapPrm"], 16) == caps, sp
        assert int(sp["CapAmb"], 16) == 0 and sp["Uid"].split() == [nobody] * 4, sp
        workers = [p for p, v in procs.items() if v[0] == kids[0]]
        assert len(workers) == 2, workers
        for p in workers:
            st = pmetest.proc_status(p)
            assert st["Uid"].split() == [nobody] * 4 and st["Gid"].split()[0] == "65534", st
            for k in ("CapEff", "CapPrm", "CapAmb", "CapInh"):
                assert int(st[k], 16) == 0, f"worker {k} {st[k]}"
            assert st["NoNewPrivs"] == "1", st
            links = {int(fd): os.readlink(f"/proc/{p}/fd/{fd}") for fd in os.listdir(f"/proc/{p}/fd")}
            assert links.get(3, "").startswith("socket:"), f"worker fd 3: {links}"
            sockets = [fd for fd, l in links.items() if l.startswith("socket:")]
            assert sockets == [3], f"worker has other sockets open: {links}"
    finally:
        pmed.stop()
        pmed.kill_all()
        w.cleanup()


TYPES = """
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
            observe: true
            buckets: [10, 100]
            filter: 'run (?<kind>\\w+) took (?<value>\\d+)s'
            labels: {{ kind: "${{kind}}" }}
          run_summary_seconds:
            type: summary
            filter: 'run \\w+ took (\\d+)s'
            quantiles: [0.5, 1]
      api:
        source_type: command
        source: [cat, {api}]
        content_type: json
        metrics:
          latency_seconds:
            type: histogram
            buckets: {{ 0.1: '$.lat.fast', 1: '$.lat.slow' }}
            count: '$.lat.n'
            sum: '$.lat.total_ms'
            scale: 0.001
            cumulative: false
          state:
            type: stateset
            states: [green, yellow, red]
            filter: '$.status'
    standalone_metrics:
      build_info: {{ source_type: static, type: info, labels: {{ version: "2.1" }} }}
"""


def test_metric_types():
    """Every metric type, valid for promtool, with counts that survive a worker restart."""
    w, port = Workdir(), free_port()
    log = w.file("jobs.log", "run full took 50s\nrun incr took 5s\nrun incr took 7s\n")
    api = w.file("api.json", '{"lat": {"fast": 3, "slow": 2, "n": 6, "total_ms": 2500},'
                 ' "status": "yellow"}')
    config = w.config(TYPES.format(log=log, api=api), port)
    promtool = shutil.which("promtool")
    pmed = None
    try:
        r = run_pmed("--once", "-f", config)
        assert r.returncode == 0, f"--once exit {r.returncode}: {r.stderr}"
        body = r.stdout
        assert value(body, "jobs_run_seconds_bucket", kind="incr", le="10") == 2, body
        assert value(body, "jobs_run_seconds_bucket", kind="full", le="10") == 0, body
        assert value(body, "jobs_run_seconds_bucket", kind="full", le="100") == 1, body
        assert value(body, "jobs_run_seconds_bucket", kind="full", le="+Inf") == 1, body
        assert value(body, "jobs_run_seconds_sum", kind="incr") == 12, body
        assert value(body, "jobs_run_summary_seconds", quantile="0.5") == 7, body
        assert value(body, "jobs_run_summary_seconds_count") == 3, body
        assert value(body, "jobs_latency_seconds_bucket", le="0.1") == 3, body
        assert value(body, "jobs_latency_seconds_bucket", le="1") == 5, body
        assert value(body, "jobs_latency_seconds_bucket", le="+Inf") == 6, body
        assert value(body, "jobs_latency_seconds_sum") == 2.5, body
        assert value(body, "jobs_state", jobs_state="yellow") == 1, body
        assert value(body, "jobs_state", jobs_state="red") == 0, body
        assert "# TYPE jobs_state gauge" in body, body
        assert "# TYPE jobs_run_seconds histogram" in body, body
        assert "# TYPE jobs_run_summary_seconds summary" in body, body
        assert value(body, "jobs_build_info", version="2.1") == 1, body
        if promtool is not None:
            check = subprocess.run([promtool, "check", "metrics"], input=body,
                                   capture_output=True, text=True)
            # promtool's lint also runs: only its errors count here.
            problems = [l for l in (check.stdout + check.stderr).splitlines()
                        if "error" in l.lower()]
            assert not problems, f"promtool check metrics:\n{check.stdout}{check.stderr}"
        else:
            print("promtool not installed (Debian package prometheus): format not checked")

        pmed = Pmed(config, port)
        pmed.wait_for(lambda b: value(b, "jobs_run_seconds_count", kind="incr") == 2,
                      "the log observed")
        with open(log, "a") as f:
            f.write("run incr took 9s\n")
        pmed.wait_for(lambda b: value(b, "jobs_run_seconds_count", kind="incr") == 3,
                      "the new line observed once")
        procs = pmetest.all_processes()
        spawner = [p for p, v in procs.items() if v[0] == pmed.proc.pid][0]
        workers = [p for p, v in procs.items() if v[0] == spawner]
        assert len(workers) == 1, f"workers: {workers}"
        os.kill(workers[0], signal.SIGKILL)
        body = pmed.wait_for(lambda b: value(b, "pme_worker_restarts_total", service="jobs") == 1
                             and value(b, "pme_source_up", service="jobs", group="log") == 1,
                             "a restarted worker")
        # The next worker reads the whole log again: the counts go on, not double.
        time.sleep(1.5)
        body = pmed.metrics()
        assert value(body, "jobs_run_seconds_count", kind="incr") == 3, body
        assert value(body, "jobs_run_seconds_bucket", kind="incr", le="10") == 3, body
        assert value(body, "jobs_run_seconds_sum", kind="incr") == 21, body
        # The source's own histogram was reset: its counts go on too.
        w.file("api.json", '{"lat": {"fast": 1, "slow": 0, "n": 1, "total_ms": 50},'
               ' "status": "red"}')
        body = pmed.wait_for(lambda b: value(b, "jobs_state", jobs_state="red") == 1,
                             "the new state")
        assert value(body, "jobs_latency_seconds_bucket", le="0.1") == 4, body
        assert value(body, "jobs_latency_seconds_bucket", le="1") == 6, body
        assert value(body, "jobs_latency_seconds_count") == 7, body
        assert value(body, "jobs_state", jobs_state="yellow") == 0, body
    finally:
        if pmed is not None:
            pmed.stop()
            pmed.kill_all()
        w.cleanup()


def test_many_services():
    """500 services of 200 series each start, collect and serve, and reload.

    At this scale the supervisor once blocked writing START to the spawner
    while the spawner blocked writing WORKER_READY back: neither read, and
    pmed never served.  Now every service must be in the exposition within
    the timeout, a reload that adds one must go through, and scrapes stay
    quick while all of that runs.
    """
    services, per = 500, 200
    if pmetest.sanitized():
        # 500 workers with AddressSanitizer's shadow memory, a supervisor
        # falling behind them, need more memory than a 24 GiB machine has:
        # the sanitizers look for memory errors, the plain build for scale.
        services = 100
    w = Workdir()
    pmed = None
    try:
        lines = ["# TYPE fleet_requests_total counter", "# TYPE fleet_queue gauge"]
        for i in range(per // 2):
            lines.append(f'fleet_requests_total{{path="/p{i}"}} {i}')
            lines.append(f'fleet_queue{{shard="{i}"}} {i * 2}')
        part = w.file("part.prom", "\n".join(lines) + "\n")
        port = free_port()

        # A realistic interval: at 1s, 100,000 series a second is more
        # than a sanitizer build of the supervisor keeps up with.
        exporter = (f'exporter:\n  listen: ["127.0.0.1:{port}"]\n  interval: 5s\n' +
                    (f"  user: {pmetest.TEST_USER}\n" if IS_ROOT else ""))

        def config(n):
            return exporter + "services:\n" + "".join(
                f"  app{i:03}:\n"
                f"    labels: {{ instance: app{i:03} }}\n"
                f"    metric_groups:\n"
                f"      part: {{ source_type: file, source: {part}, content_type: prometheus }}\n"
                for i in range(n))

        path = w.config(config(services), port)
        started = time.monotonic()
        pmed = Pmed(path, port)
        # Under the sanitizers, workers starting at once leave the
        # supervisor little of the machine's two CPUs for a while.
        if pmetest.sanitized():
            pmed.request_timeout = 60

        def complete(n):
            return lambda b: (b.count("fleet_queue{") == n * per // 2 and
                              b.count("fleet_requests_total{") == n * per // 2)

        body = pmed.wait_for(complete(services), f"{services} services in /metrics", timeout=240)
        took = time.monotonic() - started
        last = f"app{services - 1:03}"
        assert value(body, "fleet_queue", instance=last, shard="7") == 14, body[-2000:]
        rss = int(pmetest.proc_status(pmed.proc.pid)["VmRSS"].split()[0])
        print(f"{services} services x {per} series: complete after {took:.1f}s, "
              f"{len(pmetest.worker_pids(pmed))} workers, supervisor VmRSS {rss} kB")
        assert len(pmetest.worker_pids(pmed)) == services

        w.config(config(services + 1), port)
        pmed.proc.send_signal(signal.SIGHUP)
        pmed.wait_for(complete(services + 1), "the added service after SIGHUP", timeout=120)

        times = []
        for _ in range(20):
            t = time.monotonic()
            pmed.metrics()
            times.append(time.monotonic() - t)
        times.sort()
        print(f"20 scrapes of {(services + 1) * per} series: p50 {times[10] * 1000:.1f} ms, "
              f"max {times[-1] * 1000:.1f} ms")
        assert pmed.stop(timeout=60) == 0, pmed.log()
    finally:
        if pmed is not None:
            pmed.stop(timeout=60)
            pmed.kill_all()
        w.cleanup()


if __name__ == "__main__":
    pmetest.main({
        "check_ok": test_check_ok,
        "check_errors": test_check_errors,
        "serve": test_serve,
        "once": test_once,
        "counter_reset": test_counter_reset,
        "worker_restart": test_worker_restart,
        "shutdown": test_shutdown,
        "interrupt": test_interrupt,
        "kill9": test_kill9,
        "quickstart_promtool": test_quickstart_promtool,
        "development_mode": test_development_mode,
        "root_mode": test_root_mode,
        "metric_types": test_metric_types,
        "many_services": test_many_services,
    })
