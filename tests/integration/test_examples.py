#!/usr/bin/env python3
# SPDX-License-Identifier: ISC
# The example configurations of packaging/examples/ through the real daemon.
#
# Each test loads an example as shipped and rewrites only what must be
# local: the listen port, the ports of the servers it reads, file paths,
# the program it runs, its users and, where the test needs several cycles,
# its intervals.  Every rewrite names the exact text it replaces and how
# often it occurs, so that an example that changes fails here loudly
# instead of being tested half-rewritten.  The servers, the stand-in for
# systemctl and the backup log are the test's; the values they give are
# checked series by series, and the expositions with promtool.
import base64
import http.server
import os
import pwd
import secrets
import shutil
import socketserver
import subprocess
import threading

import pmetest
from pmetest import IS_ROOT, Pmed, Workdir, free_port, parse_metrics, run_pmed, value

EXAMPLES = os.path.join(pmetest.SOURCE, "packaging", "examples")
# The services run as the test's user: nobody as root (pmed switches to
# it too), else whoever runs the test, the only user pmed can run them as.
SERVICE_USER = pmetest.TEST_USER if IS_ROOT else pwd.getpwuid(os.geteuid()).pw_name


def example(name):
    with open(os.path.join(EXAMPLES, name)) as f:
        return f.read()


def rewrite(text, old, new, count=1):
    """text with old replaced by new, which it must hold count times."""
    found = text.count(old)
    assert found == count, f"the example holds {old!r} {found} times, not {count}"
    return text.replace(old, new)


def local_exporter(text, port, interval=None):
    """The exporter listening on port, as the test's user; with interval,
    the global interval 15s becomes that."""
    text = rewrite(text, 'listen: ["127.0.0.1:10064"]', f'listen: ["127.0.0.1:{port}"]')
    if interval is not None:
        text = rewrite(text, "  interval: 15s\n", f"  interval: {interval}\n")
    if IS_ROOT:
        text = rewrite(text, "exporter:\n", f"exporter:\n  user: {pmetest.TEST_USER}\n")
    return text


def promtool_ok(exposition):
    promtool = shutil.which("promtool")
    assert promtool, "promtool not found: install the Debian package prometheus"
    check = subprocess.run([promtool, "check", "metrics"], input=exposition,
                           capture_output=True, text=True)
    assert check.returncode == 0, \
        f"promtool check metrics:\n{check.stdout}{check.stderr}\n{exposition}"


def series(body, name, **labels):
    """{labels: value} of every series of name that has labels."""
    out = {}
    for (n, ls), v in parse_metrics(body).items():
        if n == name and all((k, str(val)) in ls for k, val in labels.items()):
            out[ls] = v
    return out


# http.yml: two nginx sites and Elasticsearch.

def stub_status(active, accepted, handled, requests, reading, writing, waiting):
    return (f"Active connections: {active} \n"
            "server accepts handled requests\n"
            f" {accepted} {handled} {requests} \n"
            f"Reading: {reading} Writing: {writing} Waiting: {waiting} \n")


# Elasticsearch 8's answer to GET /_cluster/health.
CLUSTER_HEALTH = (
    '{"cluster_name":"logs","status":"yellow","timed_out":false,"number_of_nodes":3,'
    '"number_of_data_nodes":3,"active_primary_shards":406,"active_shards":812,'
    '"relocating_shards":0,"initializing_shards":0,"unassigned_shards":4,'
    '"delayed_unassigned_shards":0,"number_of_pending_tasks":0,'
    '"number_of_in_flight_fetch":0,"task_max_waiting_in_queue_millis":0,'
    '"active_shards_percent_as_number":99.50980392156863}')


class Handler(http.server.BaseHTTPRequestHandler):
    """Serves server.pages, {path: (content type, body)}; with
    server.authorization set, only to requests that send it."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def send(self, status, body, ctype="text/plain", headers=()):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self.server.seen.append((self.path, self.headers.get("Authorization")))
        if self.path not in self.server.pages:
            self.send(404, "no such page\n")
        elif (self.server.authorization is not None and
              self.headers.get("Authorization") != self.server.authorization):
            self.send(401, '{"error":"missing authentication credentials"}',
                      "application/json", [("WWW-Authenticate", 'Basic realm="security"')])
        else:
            self.send(200, self.server.pages[self.path][1], self.server.pages[self.path][0])


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True

    def __init__(self, pages, authorization=None):
        super().__init__(("127.0.0.1", 0), Handler)
        self.pages, self.authorization, self.seen = pages, authorization, []
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def port(self):
        return self.server_address[1]


def test_http():
    """http.yml against two nginx stub_status pages and an Elasticsearch
    health API that wants the password of the password file."""
    w = Workdir()
    password = secrets.token_hex(8)
    shop = Server({"/nginx_status": ("text/plain", stub_status(291, 16630948, 16630948,
                                                               31070465, 6, 179, 106))})
    blog = Server({"/nginx_status": ("text/plain", stub_status(3, 1200, 1199, 5400, 0, 1, 2))})
    search = Server({"/_cluster/health": ("application/json", CLUSTER_HEALTH)},
                    "Basic " + base64.b64encode(f"monitor:{password}".encode()).decode())
    try:
        # Readable by the service's user alone, as the example suggests.
        secret = w.file("elasticsearch.secret", password + "\n", mode=0o400)
        if IS_ROOT:
            pw = pwd.getpwnam(SERVICE_USER)
            os.chown(secret, pw.pw_uid, pw.pw_gid)
        text = local_exporter(example("http.yml"), free_port())
        text = rewrite(text, "port: 8080, site: shop", f"port: {shop.port}, site: shop")
        text = rewrite(text, "port: 8081, site: blog", f"port: {blog.port}, site: blog")
        text = rewrite(text, "http://127.0.0.1:9200/", f"http://127.0.0.1:{search.port}/")
        text = rewrite(text, "password_file: /etc/pme/elasticsearch.secret",
                       f"password_file: {secret}")
        text = rewrite(text, "run_as: www-data\n", f"run_as: {SERVICE_USER}\n", count=2)
        text = rewrite(text, "run_as: pme\n", f"run_as: {SERVICE_USER}\n")
        r = run_pmed("--once", "-f", w.file("http.yml", text))
        out = r.stdout
        assert r.returncode == 0, f"--once on http.yml exit {r.returncode}:\n{r.stderr}"
        for service, group in (("shop", "status"), ("blog", "status"),
                               ("elasticsearch", "health")):
            assert value(out, "pme_source_up", service=service, group=group) == 1, \
                f"{service}/{group} failed:\n{r.stderr}\n{out}"
            assert value(out, "pme_http_status_code", service=service, group=group) == 200, out
        expected = [
            ("nginx_connections_active", {"site": "shop"}, 291),
            ("nginx_connections_active", {"site": "blog"}, 3),
            ("nginx_connections_accepted_total", {"site": "shop"}, 16630948),
            ("nginx_connections_accepted_total", {"site": "blog"}, 1200),
            ("nginx_connections_handled_total", {"site": "blog"}, 1199),
            ("nginx_http_requests_total", {"site": "shop"}, 31070465),
            ("nginx_http_requests_total", {"site": "blog"}, 5400),
            ("nginx_connections", {"site": "shop", "state": "Writing"}, 179),
            ("nginx_connections", {"site": "shop", "state": "Waiting"}, 106),
            ("nginx_connections", {"site": "blog", "state": "Reading"}, 0),
            ("nginx_connections", {"site": "blog", "state": "Waiting"}, 2),
            ("elasticsearch_cluster_status", {}, 1),
            ("elasticsearch_nodes", {}, 3),
            ("elasticsearch_shards_unassigned", {}, 4),
        ]
        for name, labels, want in expected:
            got = series(out, name, **labels)
            assert list(got.values()) == [want], f"{name}{labels}: {got}, not {want}\n{out}"
        assert len(series(out, "nginx_connections")) == 6, out
        for srv in (shop, blog):
            assert [p for p, _ in srv.seen] == ["/nginx_status"], srv.seen
        assert search.seen == [("/_cluster/health", search.authorization)], search.seen
        promtool_ok(out)
    finally:
        for srv in (shop, blog, search):
            srv.shutdown()
        w.cleanup()


# systemd.yml: the state of two units from a stand-in for systemctl.

ACTIVE_STATES = ["active", "reloading", "inactive", "failed", "activating",
                 "deactivating", "maintenance", "refreshing"]

# What systemctl show prints, in its own order and whatever it was asked,
# with times in seconds since the epoch; the stand-in below keeps the
# properties asked for and writes the times as --timestamp asks.
SSH_RUNNING = """\
MainPID=712
NRestarts=2
MemoryCurrent=6291456
TasksCurrent=1
CPUUsageNSec=1234567890
LoadState=loaded
ActiveState=active
SubState=running
ActiveEnterTimestamp=1795310537
"""

CRON_RUNNING = """\
MainPID=540
NRestarts=0
MemoryCurrent=1048576
TasksCurrent=1
CPUUsageNSec=250000000
LoadState=loaded
ActiveState=active
SubState=running
ActiveEnterTimestamp=1795310530
"""

# The main process died, Restart=on-failure gave up: no process, no cgroup.
SSH_FAILED = """\
MainPID=0
NRestarts=5
MemoryCurrent=[not set]
TasksCurrent=[not set]
CPUUsageNSec=[not set]
LoadState=loaded
ActiveState=failed
SubState=failed
ActiveEnterTimestamp=1795310537
"""

# Started again by hand, which set NRestarts back to 0, then one restart.
SSH_RESTARTED = """\
MainPID=9120
NRestarts=1
MemoryCurrent=5242880
TasksCurrent=1
CPUUsageNSec=5000000
LoadState=loaded
ActiveState=active
SubState=running
ActiveEnterTimestamp=1795317737
"""

FAKE_SYSTEMCTL = r"""#!/bin/sh
# A stand-in for systemctl show UNIT: prints @DIR@/UNIT.show as systemctl
# would, keeping only the properties of the --property options.
fail() { echo "fake systemctl: $*" >&2; exit 1; }
[ "$1" = show ] || fail "only show is faked, not $*"
shift
props=, unix= unit=
for a; do
	case $a in
	--timestamp=unix) unix=1 ;;
	--property=*) props=$props${a#--property=}, ;;
	-*) fail "unexpected option $a" ;;
	*) [ -z "$unit" ] || fail "more than one unit: $*"; unit=$a ;;
	esac
done
[ "$props" != , ] && [ -n "$unit" ] || fail "expected --property= and a unit"
while IFS='=' read -r name v; do
	case $props in *",$name,"*) ;; *) continue ;; esac
	case $name in
	*Timestamp)
		if [ -z "$v" ]; then :
		elif [ -n "$unix" ]; then v=@$v
		else v=$(date -u -d "@$v" '+%a %Y-%m-%d %H:%M:%S UTC')
		fi ;;
	esac
	printf '%s=%s\n' "$name" "$v"
done <"@DIR@/$unit.show"
"""


def check_unit(body, unit, state, sub_state):
    """The stateset of unit has one series per state, 1 for state; its
    info names sub_state and nothing else."""
    got = {dict(ls)["systemd_unit_active_state"]: v for ls, v in
           series(body, "systemd_unit_active_state", unit=unit).items()}
    assert got == {s: 1 if s == state else 0 for s in ACTIVE_STATES}, \
        f"{unit} should be {state}: {got}\n{body}"
    info = {dict(ls).get("sub_state"): v for ls, v in
            series(body, "systemd_unit_sub_state_info", unit=unit).items()}
    assert info == {sub_state: 1}, f"{unit} should be {sub_state}: {info}\n{body}"


def test_systemd():
    """systemd.yml over a stand-in for systemctl: the stateset follows the
    unit from active to failed and back; restarts and CPU time are counters
    that never go down."""
    w, port = Workdir(), free_port()
    pmed = None
    try:
        fake = w.file("systemctl", FAKE_SYSTEMCTL.replace("@DIR@", w.path), mode=0o755)
        w.file("ssh.service.show", SSH_RUNNING)
        w.file("cron.service.show", CRON_RUNNING)
        text = local_exporter(example("systemd.yml"), port, interval="1s")
        text = rewrite(text, "source: [systemctl, show,", f"source: [{fake}, show,")
        pmed = Pmed(w.file("systemd.yml", text), port)

        body = pmed.wait_for(lambda b: series(b, "systemd_unit_active_state", unit="ssh.service")
                             and series(b, "systemd_unit_active_state", unit="cron.service"),
                             "the states of both units")
        assert "# TYPE systemd_unit_active_state gauge\n" in body, body
        check_unit(body, "ssh.service", "active", "running")
        check_unit(body, "cron.service", "active", "running")
        for name, unit, want in [
                ("systemd_unit_restarts_total", "ssh.service", 2),
                ("systemd_unit_restarts_total", "cron.service", 0),
                ("systemd_unit_memory_bytes", "ssh.service", 6291456),
                ("systemd_unit_memory_bytes", "cron.service", 1048576),
                ("systemd_unit_tasks", "ssh.service", 1),
                ("systemd_unit_cpu_seconds_total", "ssh.service", 1.23456789),
                ("systemd_unit_cpu_seconds_total", "cron.service", 0.25),
                ("systemd_unit_active_enter_timestamp_seconds", "ssh.service", 1795310537),
                ("systemd_unit_active_enter_timestamp_seconds", "cron.service", 1795310530)]:
            assert value(body, name, unit=unit) == want, f"{name}{{unit={unit}}}:\n{body}"
        promtool_ok(body)

        w.file("ssh.service.show", SSH_FAILED)
        body = pmed.wait_for(lambda b: value(b, "systemd_unit_active_state", unit="ssh.service",
                                             systemd_unit_active_state="failed") == 1,
                             "ssh.service failed")
        check_unit(body, "ssh.service", "failed", "failed")
        check_unit(body, "cron.service", "active", "running")
        assert value(body, "systemd_unit_restarts_total", unit="ssh.service") == 5, body
        assert value(body, "systemd_unit_memory_bytes", unit="ssh.service") == 0, body
        assert value(body, "systemd_unit_tasks", unit="ssh.service") == 0, body
        assert value(body, "systemd_unit_cpu_seconds_total", unit="ssh.service") == 1.23456789, body

        # NRestarts and CPUUsageNSec started again from 0: the counters go on.
        w.file("ssh.service.show", SSH_RESTARTED)
        body = pmed.wait_for(lambda b: value(b, "systemd_unit_active_state", unit="ssh.service",
                                             systemd_unit_active_state="active") == 1,
                             "ssh.service active again")
        check_unit(body, "ssh.service", "active", "running")
        assert value(body, "systemd_unit_restarts_total", unit="ssh.service") == 6, body
        cpu = value(body, "systemd_unit_cpu_seconds_total", unit="ssh.service")
        assert abs(cpu - 1.23956789) < 1e-9, body
        assert value(body, "systemd_unit_active_enter_timestamp_seconds",
                     unit="ssh.service") == 1795317737, body
        for service in ("ssh", "cron"):
            assert value(body, "pme_source_errors_total", service=service, group="state") == 0, \
                f"{service} had errors:\n{pmed.log()}\n{body}"
        promtool_ok(body)
    finally:
        if pmed is not None:
            pmed.stop()
        w.cleanup()


# backup.yml: the log of a nightly backup, appended to, then rotated.

BUCKETS = ["60", "300", "900", "1800", "3600", "7200", "14400", "+Inf"]

BACKUP_LOG = """\
2026-11-20T02:00:31Z backup finished after 30s, end 1795140031
2026-11-21T02:14:37Z backup finished after 876s, end 1795227277
Fatal: unable to create lock in backend: repository is already locked by PID 4242
2026-11-22T02:03:12Z backup failed after 191s, end 1795312992
"""


def histogram(body, result):
    """The buckets, sum and count of the run durations of one result."""
    name = "backup_run_duration_seconds"
    buckets = {dict(ls)["le"]: v for ls, v in series(body, name + "_bucket", result=result).items()}
    assert list(buckets) == BUCKETS, f"buckets of {result}: {buckets}\n{body}"
    return ([buckets[le] for le in BUCKETS], value(body, name + "_sum", result=result),
            value(body, name + "_count", result=result))


def wait_reads(pmed, n):
    """Wait until the backup group has been collected n more times."""
    seen = []

    def read(body):
        t = value(body, "pme_source_last_success_timestamp_seconds", service="backup",
                  group="nightly")
        if t is not None and t not in seen:
            seen.append(t)
        return len(seen) > n
    return pmed.wait_for(read, f"{n} more collections of backup/nightly")


def test_backup():
    """backup.yml over a log: each line observed once, whether it was there
    at the start, appended, written in two parts, or in a rotated log."""
    w, port = Workdir(), free_port()
    pmed = None
    try:
        log = w.file("nightly.log", BACKUP_LOG)
        text = local_exporter(example("backup.yml"), port, interval="1s")
        text = rewrite(text, "source: /var/log/backup/nightly.log", f"source: {log}")
        text = rewrite(text, "        interval: 1m\n", "        interval: 1s\n")
        pmed = Pmed(w.file("backup.yml", text), port)

        def count(body, result):
            return value(body, "backup_run_duration_seconds_count", result=result)

        body = pmed.wait_for(lambda b: count(b, "finished") is not None and
                             count(b, "failed") is not None, "the runs of the log")
        assert "# TYPE backup_run_duration_seconds histogram\n" in body, body
        assert histogram(body, "finished") == ([1, 1, 2, 2, 2, 2, 2, 2], 906, 2), body
        assert histogram(body, "failed") == ([0, 1, 1, 1, 1, 1, 1, 1], 191, 1), body
        assert value(body, "backup_last_run_timestamp_seconds") == 1795312992, body
        assert value(body, "backup_last_success_timestamp_seconds") == 1795227277, body
        promtool_ok(body)

        # A long run, and the next one's line half written: only the
        # complete line counts.
        with open(log, "a") as f:
            f.write("2026-11-23T03:08:40Z backup finished after 4000s, end 1795403320\n"
                    "2026-11-24T02:00:05Z backup finished after 5s")
        body = pmed.wait_for(lambda b: count(b, "finished") == 3, "the appended run")
        body = wait_reads(pmed, 2)
        assert histogram(body, "finished") == ([1, 1, 2, 2, 2, 3, 3, 3], 4906, 3), body
        assert value(body, "backup_last_run_timestamp_seconds") == 1795403320, body
        with open(log, "a") as f:
            f.write(", end 1795485605\n")
        body = pmed.wait_for(lambda b: count(b, "finished") == 4, "the completed line")
        # A file that changed without a new line observes nothing.
        os.utime(log)
        body = wait_reads(pmed, 2)
        assert histogram(body, "finished") == ([2, 2, 3, 3, 3, 4, 4, 4], 4911, 4), body
        assert histogram(body, "failed") == ([0, 1, 1, 1, 1, 1, 1, 1], 191, 1), body
        assert value(body, "backup_last_run_timestamp_seconds") == 1795485605, body
        assert value(body, "backup_last_success_timestamp_seconds") == 1795485605, body

        # Rotated: a new file, whose first line is observed; the histogram
        # goes on, and the last success, which the new file does not have
        # yet, is kept (stale_after: 2d).
        w.file("nightly.log", "2026-11-25T02:00:20Z backup failed after 20s, end 1795572020\n")
        body = pmed.wait_for(lambda b: count(b, "failed") == 2, "the run of the new log")
        body = wait_reads(pmed, 2)
        assert histogram(body, "failed") == ([1, 2, 2, 2, 2, 2, 2, 2], 211, 2), body
        assert histogram(body, "finished") == ([2, 2, 3, 3, 3, 4, 4, 4], 4911, 4), body
        assert value(body, "backup_last_run_timestamp_seconds") == 1795572020, body
        assert value(body, "backup_last_success_timestamp_seconds") == 1795485605, body
        promtool_ok(body)
    finally:
        if pmed is not None:
            pmed.stop()
        w.cleanup()


if __name__ == "__main__":
    pmetest.main({
        "http": test_http,
        "systemd": test_systemd,
        "backup": test_backup,
    })
