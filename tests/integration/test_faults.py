#!/usr/bin/env python3
# SPDX-License-Identifier: ISC
"""Faults through the real pmed: hostile and hung workers, crashes, crash
loops, reloads good and bad, and the death of the spawner."""
import json
import os
import re
import shutil
import signal
import subprocess
import time

import pmetest
from pmetest import (IS_ROOT, Pmed, Workdir, free_port, parse_metrics, sanitized, value,
                     worker_pids)

# Each evil_MODE service is played by hostile_worker.py; the expected
# protocol error it must cause.
HOSTILE = {
    "oversize": r"protocol error: frame larger than the maximum payload",
    "truncated": r"protocol error: truncated frame at end of stream",
    "garbage": r"protocol error: ",
    "flood": r"protocol error: group 'g' sent results faster than its interval allows",
    "foreign": r"protocol error: group 'g': group g of service evil_foreign does not "
               r"declare a metric \"good_total\"",
    "othergroup": r"protocol error: GROUP_BEGIN: \"status\" is not a group of this service",
    "utf8": r"protocol error: LOG: .*UTF-8",
    "series": r"protocol error: GROUP_DATA .*more than 10001 samples in one result of "
              r"group \"g\"",
    "version": r"protocol error: .*version",
    "stall": r"worker\[evil_stall\]: hung: no frame for \d+s",
}


def good_service(counter):
    return f"""
  good:
    metric_groups:
      g:
        source_type: file
        source: {counter}
        metrics:
          good_total: {{ type: counter, filter: '(\\d+)' }}
"""


def echo_service(name, output):
    """A service whose command prints `output`, exported as NAME_value."""
    return f"""
  {name}:
    metric_groups:
      g:
        source_type: command
        source: [echo, "{output}"]
        metrics:
          {name}_value: {{ filter: '(\\d+)' }}
"""


def evil_service(mode):
    return f"""
  evil_{mode}:
    metric_groups:
      g:
        source_type: command
        source: [echo, "1"]
        timeout: 1s
        stale_after: 60s
        metrics:
          evil_{mode}_value: {{ filter: '(\\d+)' }}
"""


def install_fake_worker(w):
    """pmed, the real worker and the hostile stand-in, side by side in w."""
    fake = os.path.join(pmetest.BUILD, "tests", "integration", "fake_worker")
    shutil.copy(pmetest.PMED, w.path)
    shutil.copy(fake, os.path.join(w.path, "pme-worker"))
    shutil.copy(pmetest.WORKER, os.path.join(w.path, "pme-worker.real"))
    shutil.copy(os.path.join(os.path.dirname(__file__), "hostile_worker.py"), w.path)
    return [os.path.join(w.path, "pmed")]


def promtool_check(body):
    if shutil.which("promtool") is None:
        return
    r = subprocess.run(["promtool", "check", "metrics"], input=body, capture_output=True,
                       text=True)
    # promtool exits 1 for lint notes as well; only parse errors matter here.
    assert "error while linting" not in r.stderr and "parse" not in r.stderr, r.stderr


def test_hostile_workers():
    """Every kind of bad frame stops only its worker; everyone else's data stays."""
    w, port = Workdir(), free_port()
    pmed = None
    try:
        command = install_fake_worker(w)
        counter = w.file("counter", "100\n")
        text = "services:" + good_service(counter) + "".join(evil_service(m) for m in HOSTILE)
        pmed = Pmed(w.config(text, port=port), port, command=command)
        pmed.wait_for(lambda b: value(b, "good_total") == 100, "the good service")
        # Long enough for every hostile worker to be restarted and to
        # break the protocol again.
        start = time.time()
        deadline = start + 40
        missing = dict(HOSTILE)
        count = 100
        scrapes = 0
        while (missing or time.time() < start + 12) and time.time() < deadline:
            count += 1
            w.file("counter", f"{count}\n")
            body = pmed.metrics()
            scrapes += 1
            promtool_check(body)
            log = pmed.log()
            for mode, pattern in list(missing.items()):
                if re.search(rf"worker\[evil_{mode}\]: {pattern}" if mode != "stall" else pattern,
                             log):
                    del missing[mode]
            time.sleep(0.2)
        assert not missing, f"no error logged for {sorted(missing)}:\n{pmed.log()}"
        body = pmed.wait_for(lambda b: value(b, "good_total") == count, f"good_total at {count}")
        assert value(body, "pme_worker_restarts_total", service="good") == 0, body
        assert value(body, "pme_protocol_errors_total", service="good") == 0, body
        assert value(body, "pme_source_up", service="good", group="g") == 1, body
        for mode in HOSTILE:
            if mode != "stall":
                assert value(body, "pme_protocol_errors_total",
                             service=f"evil_{mode}") >= 1, (mode, body)
            assert value(body, "pme_worker_restarts_total", service=f"evil_{mode}") >= 2, \
                (mode, body)
        # The good results each hostile worker sent before breaking are
        # kept: 42, or for the flood one of the results within its budget.
        for mode in HOSTILE:
            got = value(body, f"evil_{mode}_value")
            assert got == 42 or (mode == "flood" and got is not None), (mode, got)
        print(f"{scrapes} scrapes, all answered, while {len(HOSTILE)} workers misbehaved")
        assert pmed.stop() == 0, pmed.log()
    finally:
        if pmed is not None:
            pmed.stop()
            pmed.kill_all()
        w.cleanup()


def wait_log(pmed, pattern, what, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        m = re.search(pattern, pmed.log())
        if m:
            return m
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}:\n{pmed.log()}")


CRASHY = """
services:
  victim:
    metric_groups:
      g:
        source_type: file
        source: {counter}
        timeout: 1s
        stale_after: 30s
        metrics:
          victim_total: {{ type: counter, filter: '(\\d+)' }}
"""


def crashy(counter):
    return CRASHY.format(counter=counter) + echo_service("bystander", 7)


def test_crash_and_hang():
    """A worker that crashes or hangs is restarted; its data and counters go on."""
    w, port = Workdir(), free_port()
    pmed = None
    try:
        counter = w.file("counter", "10\n")
        pmed = Pmed(w.config(crashy(counter), port=port), port)
        pmed.wait_for(lambda b: value(b, "victim_total") == 10, "victim_total at 10")
        bystander = worker_pids(pmed)["bystander"]

        os.kill(worker_pids(pmed)["victim"], signal.SIGSEGV)
        # AddressSanitizer catches the SIGSEGV itself, reports it and exits 1.
        crash = (r"was killed by signal 11 \(Segmentation fault\)" if not sanitized()
                 else r"exited with status 1")
        wait_log(pmed, r"worker\[victim\] \(pid \d+\) " + crash, "the crash in the log")
        w.file("counter", "15\n")
        pmed.wait_for(lambda b: value(b, "victim_total") == 15 and
                      value(b, "pme_worker_restarts_total", service="victim") == 1,
                      "a new worker and the counter at 15")

        # Stopped, it sends nothing: after 3 x 1s + 1s it is hung.
        hung = worker_pids(pmed)["victim"]
        os.kill(hung, signal.SIGSTOP)
        t0 = time.time()
        body = pmed.wait_for(lambda b: value(b, "pme_worker_up", service="victim") == 0,
                             "the hung worker marked down", timeout=15)
        took = time.time() - t0
        assert 3 <= took <= 8, f"hang noticed after {took:.1f}s"
        # Its data stays, marked down, while it is restarted.
        assert value(body, "victim_total") == 15, body
        assert value(body, "pme_source_up", service="victim", group="g") == 0, body
        wait_log(pmed, r"worker\[victim\]: hung: no frame for [4-9]s", "the hang in the log")
        w.file("counter", "20\n")
        body = pmed.wait_for(lambda b: value(b, "victim_total") == 20 and
                             value(b, "pme_worker_up", service="victim") == 1,
                             "a new worker after the hang")
        assert not pmetest.alive(hung), f"the hung worker {hung} is still there"
        assert value(body, "pme_worker_restarts_total", service="victim") == 2, body
        # The other service never noticed.
        assert worker_pids(pmed)["bystander"] == bystander
        assert value(body, "pme_worker_restarts_total", service="bystander") == 0, body
        assert value(body, "bystander_value") == 7, body
    finally:
        if pmed is not None:
            pmed.stop()
            pmed.kill_all()
        w.cleanup()


def test_crash_loop():
    """A worker that dies before its first result five times is shown failed."""
    w, port = Workdir(), free_port()
    pmed = None
    try:
        command = install_fake_worker(w)
        counter = w.file("counter", "1\n")
        text = "services:" + good_service(counter) + evil_service("die")
        pmed = Pmed(w.config(text, port=port), port, command=command)
        # Restarts after 1, 2, 4 and 8 seconds: the fifth death about 15s in.
        deadline = time.time() + 40
        svc = {}
        while time.time() < deadline:
            status, _, health = pmed.request("/health")
            svc = json.loads(health)["services"]["evil_die"]
            if svc["state"] == "failed":
                break
            time.sleep(0.5)
        assert svc.get("state") == "failed", f"{svc}\n{pmed.log()}"
        assert status == 503
        assert "5 workers in a row died before their first result" in json.dumps(svc), svc
        wait_log(pmed, r"worker\[evil_die\]: 5 workers in a row died before their first "
                 r"result, the last one exited with status 1; marked failed, retrying every "
                 r"5 minutes", "the failure in the log")
        body = pmed.metrics()
        assert value(body, "pme_worker_up", service="evil_die") == 0, body
        assert value(body, "pme_worker_restarts_total", service="evil_die") == 5, body
        assert value(body, "good_total") == 1, body
        # Retried at the slow rate: no sixth start within the next seconds.
        time.sleep(3)
        assert pmed.log().count("worker[evil_die] (pid") == 5, pmed.log()
        # A reload that changes it starts it again at once.
        w.config(text.replace("timeout: 1s", "timeout: 2s"), port=port)
        pmed.proc.send_signal(signal.SIGHUP)
        wait_log(pmed, r"reload: service evil_die changed; restarting its worker", "the reload")
        deadline = time.time() + 10
        while time.time() < deadline and pmed.log().count("worker[evil_die] (pid") < 6:
            time.sleep(0.1)
        assert pmed.log().count("worker[evil_die] (pid") == 6, pmed.log()
        assert value(pmed.metrics(), "good_total") == 1
    finally:
        if pmed is not None:
            pmed.stop()
            pmed.kill_all()
        w.cleanup()


def keep_service(counter):
    return f"""
  keep:
    metric_groups:
      g:
        source_type: file
        source: {counter}
        metrics:
          keep_total: {{ type: counter, filter: '(\\d+)' }}
"""


def reload_before(counter):
    return ("services:" + keep_service(counter) + echo_service("change", 1) +
            echo_service("remove", 3))


def reload_after(counter):
    return ("services:" + keep_service(counter) + echo_service("change", 2) +
            echo_service("added", 4))


# Three errors, each to be logged at its line and column.
RELOAD_BROKEN = """
services:
  keep:
    metric_groups:
      g:
        source_type: file
        source: {counter}
        timeout: 5 seconds
        metrics:
          keep_total: {{ type: countr, filter: '(\\d+' }}
"""


def test_reload():
    """SIGHUP applies a valid config service by service and refuses a broken one."""
    w, port = Workdir(), free_port()
    pmed = None
    try:
        counter = w.file("counter", "100\n")
        path = w.config(reload_before(counter), port=port)
        pmed = Pmed(path, port)
        pmed.wait_for(lambda b: value(b, "keep_total") == 100 and value(b, "change_value") == 1
                      and value(b, "remove_value") == 3, "the first configuration")
        before = worker_pids(pmed)
        # A source reset before the reload: the counter takes it as one.
        w.file("counter", "40\n")
        pmed.wait_for(lambda b: value(b, "keep_total") == 140, "keep_total at 140")

        w.config(reload_after(counter), port=port)
        pmed.proc.send_signal(signal.SIGHUP)
        body = pmed.wait_for(lambda b: value(b, "change_value") == 2 and
                             value(b, "added_value") == 4, "the second configuration")
        assert value(body, "remove_value") is None, body
        assert value(body, "pme_worker_up", service="remove") is None, body
        after = worker_pids(pmed)
        assert after["keep"] == before["keep"], (before, after)
        assert after["change"] != before["change"], (before, after)
        assert "remove" not in after and not pmetest.alive(before["remove"]), after
        # The kept service's counter goes on from where it was.
        w.file("counter", "50\n")
        body = pmed.wait_for(lambda b: value(b, "keep_total") == 150, "keep_total at 150")
        assert value(body, "pme_config_last_reload_successful") == 1, body
        wait_log(pmed, r"reload: .*pme\.yml: 1 service unchanged, 1 changed, 1 added, "
                 r"1 removed", "the reload summary")

        w.file("pme.yml", open(path).read().split("services:")[0] +
               RELOAD_BROKEN.format(counter=counter))
        pmed.proc.send_signal(signal.SIGHUP)
        wait_log(pmed, r"1 error; still running|errors; still running", "the refusal")
        log = pmed.log()
        for where, what in [(r":\d+:18", r"timeout"), (r":\d+:\d+", r"countr")]:
            assert re.search(rf"reload: {re.escape(path)}{where}: .*{what}", log), log
        body = pmed.metrics()
        assert value(body, "pme_config_last_reload_successful") == 0, body
        # Still collecting with the previous configuration.
        w.file("counter", "60\n")
        body = pmed.wait_for(lambda b: value(b, "keep_total") == 160, "keep_total at 160")
        assert value(body, "added_value") == 4 and value(body, "change_value") == 2, body
        assert worker_pids(pmed)["keep"] == before["keep"]

        w.config(reload_after(counter), port=port)
        pmed.proc.send_signal(signal.SIGHUP)
        body = pmed.wait_for(lambda b: value(b, "pme_config_last_reload_successful") == 1,
                             "a good reload again")
        assert worker_pids(pmed)["keep"] == before["keep"]
        assert pmed.stop() == 0, pmed.log()
    finally:
        if pmed is not None:
            pmed.stop()
            pmed.kill_all()
        w.cleanup()


STUBBORN = """
services:
  stubborn:
    metric_groups:
      g:
        source_type: command
        shell: true
        source: "trap '' TERM; sleep 300 & trap '' TERM; sleep 300; echo 1"
        timeout: 600s
        metrics:
          never: {{ filter: '(\\d+)' }}
"""


def test_stop_and_spawner_death():
    """SIGTERM stops commands that ignore it; a dead spawner takes pmed down."""
    w, port = Workdir(), free_port()
    pmed = None
    try:
        pmed = Pmed(w.config(STUBBORN.format(), port=port), port)
        deadline = time.time() + 20
        while time.time() < deadline and not any(
                v[3] == "sleep" for p, v in pmetest.all_processes().items()
                if p in pmed.descendants()):
            time.sleep(0.1)
        tree = pmed.descendants()
        assert len(tree) >= 4, f"expected spawner, worker, shell and sleeps: {tree}"
        t0 = time.time()
        assert pmed.stop(timeout=30) == 0, pmed.log()
        took = time.time() - t0
        left = [p for p in tree if pmetest.alive(p)]
        assert not left, f"left behind after SIGTERM: {left}"
        # Well within systemd's TimeoutStopSec (30s).
        assert took < 15, f"SIGTERM took {took:.1f}s"
        print(f"stopped with commands ignoring SIGTERM in {took:.1f}s")

        pmed = Pmed(w.config(crashy(w.file("counter", "1\n")), port=port), port)
        pmed.wait_for(lambda b: value(b, "victim_total") == 1, "victim_total")
        tree = pmed.descendants()
        procs = pmetest.all_processes()
        spawner = [p for p, v in procs.items() if v[0] == pmed.proc.pid][0]
        os.kill(spawner, signal.SIGKILL)
        code = pmed.proc.wait(timeout=20)
        assert code == 70, f"pmed exited {code} after its spawner died:\n{pmed.log()}"
        assert "the spawner" in pmed.log(), pmed.log()
        deadline = time.time() + 10
        while time.time() < deadline and any(pmetest.alive(p) for p in tree):
            time.sleep(0.1)
        left = [p for p in tree if pmetest.alive(p)]
        assert not left, f"workers left behind by a dead spawner: {left}"
    finally:
        if pmed is not None:
            pmed.stop()
            pmed.kill_all()
        w.cleanup()


RUNAWAY = """
services:
  runaway:
    metric_groups:
      flood:
        source_type: command
        source: [yes, "7"]
        metrics:
          flood_value: {{ filter: '^(\\d+)' }}
      many:
        source_type: file
        source: {many}
        content_type: prometheus
      huge:
        source_type: file
        source: {huge}
        metrics:
          huge_value: {{ filter: '(\\d+)' }}
      escaped:
        source_type: command
        shell: true
        # The daemon says when it has left the command's session: on a
        # loaded machine it may not have run yet when the shell exits,
        # and would then end with the command's process group.
        source: "setsid sh -c 'touch {ready}; exec sleep 1234' & while [ ! -e {ready} ]; do sleep 0.05; done; echo 5"
        metrics:
          escaped_value: {{ filter: '(\\d+)' }}
      stubborn:
        source_type: command
        shell: true
        source: "trap '' TERM; sleep 100"
        timeout: 1s
        metrics:
          stubborn_value: {{ filter: '(\\d+)' }}
"""


def rss_kib(pid):
    return int(pmetest.proc_status(pid)["VmRSS"].split()[0])


def test_runaway_sources():
    """Floods, a million series, a 1 GiB file, daemons and stubborn commands are bounded."""
    w, port = Workdir(), free_port()
    pmed = None
    # Where the service user may write, gone before the first cycle.
    ready = f"/tmp/pme-test-escaped-{os.getpid()}"
    try:
        # 20000 series in about 600 KiB: within max_output, over max_series.
        many = w.file("many.prom", "".join(f'm{{i="{i}"}} 1\n' for i in range(20000)))
        huge = os.path.join(w.path, "huge.txt")
        with open(huge, "w") as f:
            f.write("123\n")
            f.truncate(1 << 30)
        os.chmod(huge, 0o644)
        if os.path.exists(ready):
            os.unlink(ready)
        text = RUNAWAY.format(many=many, huge=huge, ready=ready) + echo_service("bystander", 7)
        pmed = Pmed(w.config(text, port=port), port)
        body = pmed.wait_for(lambda b: all(
            (value(b, "pme_source_errors_total", service="runaway", group=g) or 0) >= 1
            for g in ["flood", "many", "huge", "stubborn"]) and value(b, "escaped_value") == 5,
            "every runaway group to have run", timeout=30)
        status, _, health = pmed.request("/health")
        groups = json.loads(health)["services"]["runaway"]["groups"]
        errors = {g: groups[g].get("error", "") for g in groups}
        assert "truncated at 1048576 bytes (max_output)" in errors["flood"], errors
        assert value(body, "flood_value") == 7, body   # text is read as far as it goes
        assert "the read gave 20000 series, more than max_series (10000); none is kept" in \
            errors["many"], errors
        assert value(body, "m", i="0") is None, "a read over max_series exported series"
        assert "truncated at 1048576 bytes (max_output)" in errors["huge"], errors
        assert value(body, "huge_value") == 123, body
        for g in ["flood", "huge"]:   # cut and counted
            assert value(body, "pme_source_truncated_total", service="runaway", group=g) >= 1, \
                body
        assert value(body, "pme_source_truncated_total", service="runaway", group="many") == 0, \
            body
        assert re.search(r"timed out after 1s.*SIGKILL", errors["stubborn"]), errors
        assert errors["escaped"] == "", errors
        wait_log(pmed, r"worker\[runaway\]: warning: command 'setsid sh -c .* echo 5' "
                 r"exited, but a process it started still holds its", "the escaped process")
        # Cycle after cycle, nothing grows without bound.
        workers = worker_pids(pmed)
        before = rss_kib(pmed.proc.pid), rss_kib(workers["runaway"])
        time.sleep(8)
        body = pmed.metrics()
        after = rss_kib(pmed.proc.pid), rss_kib(workers["runaway"])
        print(f"RSS KiB supervisor {before[0]} -> {after[0]}, worker {before[1]} -> {after[1]}")
        if sanitized():
            # AddressSanitizer keeps what is freed in quarantine (up to
            # 256 MiB): sizes say nothing there.
            print("sizes not checked: sanitizer build")
        else:
            assert after[0] < 64 * 1024 and after[1] < 96 * 1024, (before, after)
            assert after[1] < before[1] + 16 * 1024, (before, after)
        assert value(body, "bystander_value") == 7, body
        assert value(body, "pme_worker_restarts_total", service="runaway") == 0, body
    finally:
        if pmed is not None:
            pmed.stop()
            pmed.kill_all()
        subprocess.run(["pkill", "-f", "sleep 1234"])
        if os.path.exists(ready):
            os.unlink(ready)
        w.cleanup()


def test_valgrind():
    """pmed (supervisor and spawner) under valgrind: no leak, no memory error."""
    if shutil.which("valgrind") is None:
        print("skipped: valgrind is not installed")
        raise SystemExit(pmetest.SKIP)
    if sanitized():
        print("skipped: sanitizer build; valgrind runs in the build without sanitizers")
        raise SystemExit(pmetest.SKIP)
    w, port = Workdir(), free_port()
    pmed = None
    try:
        logs = os.path.join(w.path, "valgrind")
        os.mkdir(logs)
        os.chmod(logs, 0o777)   # the spawner and supervisor drop to the test user
        counter = w.file("counter", "1\n")
        path = w.config(reload_before(counter), port=port)
        # Workers are executed, not forked, and run natively.
        command = ["valgrind", "--quiet", "--leak-check=full", "--show-leak-kinds=definite",
                   "--errors-for-leak-kinds=definite,indirect", "--error-exitcode=9",
                   "--trace-children=no", f"--log-file={logs}/pmed.%p", pmetest.PMED]
        pmed = Pmed(path, port, command=command)
        pmed.wait_for(lambda b: value(b, "keep_total") == 1 and value(b, "change_value") == 1,
                      "every service", timeout=60)
        for i in range(20):
            w.file("counter", f"{i + 2}\n")
            pmed.metrics()
            pmed.request("/health")
            time.sleep(0.1)
        os.kill(worker_pids(pmed)["change"], signal.SIGKILL)
        pmed.wait_for(lambda b: value(b, "pme_worker_restarts_total", service="change") == 1,
                      "a restarted worker", timeout=30)
        w.config(reload_after(counter), port=port)
        pmed.proc.send_signal(signal.SIGHUP)
        pmed.wait_for(lambda b: value(b, "added_value") == 4, "the reload", timeout=30)
        code = pmed.stop(timeout=60)
        reports = ""
        for name in sorted(os.listdir(logs)):
            with open(os.path.join(logs, name)) as f:
                reports += f"--- {name}\n" + f.read()
        assert code == 0, f"pmed under valgrind exited {code}:\n{reports}\n{pmed.log()}"
        assert "definitely lost" not in reports and "Invalid" not in reports, reports
        print(f"{len(os.listdir(logs))} processes checked, no report")
    finally:
        if pmed is not None:
            pmed.stop()
            pmed.kill_all()
        w.cleanup()


if __name__ == "__main__":
    pmetest.main({
        "hostile_workers": test_hostile_workers,
        "crash_and_hang": test_crash_and_hang,
        "crash_loop": test_crash_loop,
        "reload": test_reload,
        "stop_and_spawner_death": test_stop_and_spawner_death,
        "valgrind": test_valgrind,
        "runaway_sources": test_runaway_sources,
    })
