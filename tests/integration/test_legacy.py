#!/usr/bin/env python3
# SPDX-License-Identifier: ISC
# Configurations of the original PME (its Python exporter) run by pmed unchanged.
#
# The fixtures under tests/data/legacy/ are the complete example of that
# project's configuration guide and its shipped example configuration,
# with @PLACEHOLDERS@ for what only the test can know: free ports, the
# service user and the directory whose files stand for systemctl, goal and
# the data directories.  The values asserted are the ones their
# documentation promises, computed here without pme's help (du -sb is the
# sum of the apparent sizes, taken with lstat).
import grp
import http.client
import json
import os
import pwd
import re
import signal
import time

import pmetest
from pmetest import IS_ROOT, Pmed, Workdir, free_port, run_pmed, value

DATA = os.path.join(pmetest.SOURCE, "tests", "data", "legacy")
GUIDE = "configuration-guide.yml"
SHIPPED = "prometheus_metrics_exporter.yml"

ACTIVE = ("● example.service - Example Service\n"
          "     Loaded: loaded (/lib/systemd/system/example.service; enabled)\n"
          "     Active: active (running) since Fri 2026-12-04 10:00:00 UTC; 3h ago\n"
          "   Main PID: 4242 (example)\n")
INACTIVE = ACTIVE.replace("active (running)", "inactive (dead)")

GOAL = ("Last committed block: 41234567\n"
        "Time since last block: 2.1s\n"
        "Sync Time: {sync}s\n"
        "Last consensus protocol: future\n"
        "Genesis ID: mainnet-v1.0\n")


def service_user():
    if IS_ROOT:
        return pmetest.TEST_USER, grp.getgrgid(pwd.getpwnam(pmetest.TEST_USER).pw_gid).gr_name
    return pwd.getpwuid(os.getuid()).pw_name, grp.getgrgid(os.getgid()).gr_name


def data_dir(w, name, sizes):
    """A directory of files of these sizes; returns what du -sb says of it."""
    d = os.path.join(w.path, name)
    os.mkdir(d)
    os.chmod(d, 0o755)
    total = os.lstat(d).st_size
    for i, size in enumerate(sizes):
        total += os.lstat(w.file(f"{name}/f{i}", "x" * size)).st_size
    return total


def legacy_config(w, fixture, ports, as_written=False):
    """The fixture with its placeholders filled in, written to w; unless
    as_written, with exporter.user set to the test user when root."""
    with open(os.path.join(DATA, fixture)) as f:
        text = f.read()
    user, group = service_user()
    subs = {"@DIR@": w.path, "@USER@": user, "@GROUP@": group,
            "@METRICS_PORT@": str(ports[0]), "@HEALTH_PORT@": str(ports[1])}
    for k, v in subs.items():
        text = text.replace(k, v)
    assert "@" not in text, f"unfilled placeholder in {fixture}"
    if IS_ROOT and not as_written:
        # As root pmed switches to exporter.user, whose default (pme)
        # this machine may not have; the original ran as root.
        indent = re.search(r"^exporter:\n( +)", text, re.M).group(1)
        text = text.replace("exporter:\n", f"exporter:\n{indent}user: {pmetest.TEST_USER}\n", 1)
    return w.file(fixture, text)


def line_of(path, needle):
    with open(path) as f:
        for n, line in enumerate(f, 1):
            if needle in line:
                return n, line.index(needle) + 1
    raise AssertionError(f"{needle!r} not in {path}")


def guide(w, ports, as_written=False):
    w.file("example.service.status", ACTIVE)
    size = data_dir(w, "example", [1000, 23456])
    return legacy_config(w, GUIDE, ports, as_written), size


def shipped(w, ports, as_written=False):
    w.file("goal-node-status.txt", GOAL.format(sync="12.5"))
    size = data_dir(w, "algorand", [4096, 777, 1])
    return legacy_config(w, SHIPPED, ports, as_written), size


def pme_user_exists():
    try:
        pwd.getpwnam("pme")
        return True
    except KeyError:
        return False


def once(cfg, as_written=False):
    """pmed --once of cfg.  A file as its operator wrote it names no
    exporter.user: as root without the package's user pme, it runs as
    nobody, saying so."""
    r = run_pmed("--once", "-f", cfg)
    assert r.returncode == 0, f"--once exit {r.returncode}: {r.stderr}"
    if as_written and IS_ROOT and not pme_user_exists():
        assert "user 'pme' does not exist (exporter.user)" in r.stderr, r.stderr
        assert "--once runs the supervisor, and services without run_as, as nobody" in \
            r.stderr, r.stderr
    return r.stdout


def test_check():
    """pmed -n: OK with the count of legacy keys, and a warning for each
    ignored key and each port that now listens on every address."""
    w = Workdir()
    try:
        cfg, _ = guide(w, (free_port(), free_port()))
        r = run_pmed("-n", "-f", cfg)
        assert r.returncode == 0, f"pmed -n failed ({r.returncode}): {r.stderr}"
        # metrics_port, health_port, poll_interval_sec, two commands,
        # collection_frequency_sec.
        assert r.stdout == "configuration OK (legacy keys: 6)\n", f"stdout: {r.stdout!r}"
        for key in ("metrics_port", "health_port"):
            line, col = line_of(cfg, key + ":")
            assert f"{cfg}:{line}:{col}: '{key}' listens on every address" in r.stderr, \
                r.stderr
        assert len(r.stderr.strip().splitlines()) == 2, r.stderr

        cfg, _ = shipped(w, (free_port(), 0))
        r = run_pmed("-n", "-f", cfg)
        assert r.returncode == 0, f"pmed -n failed ({r.returncode}): {r.stderr}"
        # metrics_port, collection.poll_interval_sec, logging.level, two commands.
        assert r.stdout == "configuration OK (legacy keys: 5)\n", f"stdout: {r.stdout!r}"
        line, col = line_of(cfg, "level:")
        assert f"{cfg}:{line}:{col}: 'level' is ignored: pmed logs to the journal" in r.stderr, \
            r.stderr

        # Keys of neither dialect are still errors, at their place.
        with open(cfg) as f:
            text = f.read()
        bad = w.file("bad.yml", text.replace("    logging:\n", "    max_wrokers: 4\n    logging:\n"))
        r = run_pmed("-n", "-f", bad)
        line, col = line_of(bad, "max_wrokers")
        assert r.returncode == 78, f"exit {r.returncode}: {r.stdout}{r.stderr}"
        assert f"{bad}:{line}:{col}: unknown key 'max_wrokers' in exporter" in r.stderr, r.stderr
    finally:
        w.cleanup()


def samples(exposition):
    """The series of an exposition that are the configuration's, not pmed's own."""
    return {k: v for k, v in pmetest.parse_metrics(exposition).items()
            if not k[0].startswith(("pme_", "process_"))}


def test_rewrite():
    """pmed -n -v prints the configuration in pme's own keys; saved, it
    loads with no legacy key and collects the same series."""
    w = Workdir()
    try:
        for make in (guide, shipped):
            cfg, _ = make(w, (free_port(), free_port()))
            r = run_pmed("-n", "-v", "-f", cfg)
            assert r.returncode == 0, f"pmed -n -v failed ({r.returncode}): {r.stderr}"
            first = r.stdout.splitlines()[0]
            assert re.fullmatch(r"# configuration OK \(legacy keys: [56]\)", first), r.stdout
            for key in ("metrics_port", "poll_interval_sec", "collection_frequency_sec",
                        "logging"):
                assert key not in r.stdout, f"{key} left in the rewrite:\n{r.stdout}"
            modern = w.file("modern.yml", r.stdout)
            again = run_pmed("-n", "-f", modern)
            assert again.returncode == 0, f"the rewrite does not load: {again.stderr}"
            assert again.stdout == "configuration OK\n", again.stdout
            assert again.stderr == "", again.stderr
            old, new = samples(once(cfg)), samples(once(modern))
            assert old and old == new, f"legacy: {old}\nrewritten: {new}"
    finally:
        w.cleanup()


def test_guide_once():
    """The guide's example: is_running is 1 while the status says active, 0
    once it does not; data_size_bytes is what du -sb says."""
    w = Workdir()
    try:
        cfg, size = guide(w, (free_port(), free_port()), as_written=True)
        out = once(cfg, as_written=True)
        assert value(out, "example_is_running") == 1, out
        assert value(out, "example_data_size_bytes") == size, f"want {size}:\n{out}"
        assert "# HELP example_data_size_bytes Data directory size" in out, out
        assert "# HELP example_is_running Service running status" in out, out
        w.file("example.service.status", INACTIVE)
        assert value(once(cfg), "example_is_running") == 0
    finally:
        w.cleanup()


def test_guide_serve():
    """pmed -d with the guide's example: /metrics on metrics_port, /health
    on health_port, is_running following the service."""
    w = Workdir()
    ports = (free_port(), free_port())
    cfg, _ = guide(w, ports)
    pmed = Pmed(cfg, ports[0])
    try:
        pmed.wait_for(lambda b: value(b, "example_is_running") == 1, "is_running 1")
        conn = http.client.HTTPConnection("127.0.0.1", ports[1], timeout=10)
        conn.request("GET", "/health")
        r = conn.getresponse()
        body = r.read().decode()
        conn.close()
        # disk_usage first runs within its 300s: until then pmed calls
        # itself degraded (503), which is pme's /health and not the point.
        assert r.status in (200, 503), f"/health on health_port answered {r.status}: {body}"
        groups = json.loads(body)["services"]["Example Service"]["groups"]
        assert groups["status"]["up"] is True, body
        w.file("example.service.status", INACTIVE)
        pmed.wait_for(lambda b: value(b, "example_is_running") == 0, "is_running 0")
        # A reload reads the file in its dialect again, warnings and all.
        pmed.proc.send_signal(signal.SIGHUP)
        line, col = line_of(cfg, "metrics_port:")
        deadline = time.time() + 10
        while f"reload: {cfg}:{line}:{col}: 'metrics_port'" not in pmed.log():
            assert time.time() < deadline, f"no reload warning:\n{pmed.log()}"
            time.sleep(0.1)
        assert "still running the previous configuration" not in pmed.log(), pmed.log()
        assert value(pmed.metrics(), "pme_config_last_reload_successful") == 1
        assert pmed.stop() == 0, pmed.log()
    finally:
        pmed.stop()
        pmed.kill_all()
        w.cleanup()


def test_shipped_once():
    """The shipped example: sync_time from goal's output, 999 (its
    value_on_error) when goal says nothing of it; the data store's size."""
    w = Workdir()
    try:
        cfg, size = shipped(w, (free_port(), 0), as_written=True)
        out = once(cfg, as_written=True)
        assert value(out, "algorand_node_status_sync_time") == 12.5, out
        assert value(out, "algorand_node_data_store_bytes") == size, f"want {size}:\n{out}"
        w.file("goal-node-status.txt", "Error: Data directory not initialized\n")
        assert value(once(cfg), "algorand_node_status_sync_time") == 999
    finally:
        w.cleanup()


def test_shipped_serve():
    """pmed -d with the shipped example follows goal's output every 5s."""
    w = Workdir()
    port = free_port()
    cfg, size = shipped(w, (port, 0))
    pmed = Pmed(cfg, port)
    try:
        pmed.wait_for(lambda b: value(b, "algorand_node_status_sync_time") == 12.5 and
                      value(b, "algorand_node_data_store_bytes") == size,
                      "sync_time 12.5 and the data store's size")
        w.file("goal-node-status.txt", GOAL.format(sync="0.25"))
        pmed.wait_for(lambda b: value(b, "algorand_node_status_sync_time") == 0.25,
                      "sync_time 0.25")
        assert pmed.stop() == 0, pmed.log()
    finally:
        pmed.stop()
        pmed.kill_all()
        w.cleanup()


if __name__ == "__main__":
    pmetest.main({
        "check": test_check,
        "rewrite": test_rewrite,
        "guide_once": test_guide_once,
        "guide_serve": test_guide_serve,
        "shipped_once": test_shipped_once,
        "shipped_serve": test_shipped_serve,
    })
