#!/usr/bin/env python3
# SPDX-License-Identifier: ISC
# pmed and systemd, without systemd: the test plays the service manager.
# It binds the AF_UNIX datagram socket that NOTIFY_SOCKET names and reads
# what pmed sends there (READY, RELOADING, STATUS, WATCHDOG, STOPPING), and
# it passes pmed a listening socket the way pmed.socket does (LISTEN_FDS,
# LISTEN_PID, the socket at descriptor 3).  Each test skips (77) when pmed
# was built without libsystemd, which then supports neither.
import http.client
import os
import re
import shutil
import signal
import socket
import sys
import time

import pmetest
from pmetest import Pmed, Workdir, free_port, value

SERVICES = """
services:
  {name}:
    metric_prefix: {name}_
    standalone_metrics:
      value: {{ source_type: static, value: {value} }}
"""

# Plays pmed.socket: binds and listens on argv[1] (host:port, or unix:PATH),
# puts the socket at descriptor 3, says so in LISTEN_FDS and LISTEN_PID, and
# becomes pmed (argv[2:]) with the same pid.
ACTIVATE = r"""
import os, socket, sys
where = sys.argv[1]
if where.startswith("unix:"):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(where[5:])
else:
    host, port = where.rsplit(":", 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, int(port)))
s.listen(128)
if s.fileno() != 3:
    os.dup2(s.fileno(), 3)
    s.close()
os.set_inheritable(3, True)
os.environ["LISTEN_FDS"] = "1"
os.environ["LISTEN_PID"] = str(os.getpid())
os.execv(sys.argv[2], sys.argv[2:])
"""


def built_with_systemd():
    try:
        with open(os.path.join(pmetest.BUILD, "pme_build.h")) as f:
            return re.search(r"^#define PME_HAVE_SYSTEMD 1$", f.read(), re.M) is not None
    except OSError:
        return False


class Manager:
    """The NOTIFY_SOCKET end: every datagram pmed sends, with when it came."""

    def __init__(self, w):
        self.path = os.path.join(w.path, "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        # As root, pmed sends as exporter.user.
        os.chmod(self.path, 0o777)
        self.messages = []   # (time.monotonic(), {key: value})
        self.seen = 0        # messages that wait() went through
        self.pmed = None     # whose log a failure shows

    def env(self, **extra):
        env = dict(os.environ, NOTIFY_SOCKET=self.path)
        for k in ("WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS", "LISTEN_PID"):
            env.pop(k, None)
        env.update(extra)
        return env

    def receive(self, timeout):
        """Read what comes within timeout seconds; returns the new messages."""
        new = []
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return new
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                return new
            fields = dict(line.split("=", 1) for line in data.decode().split("\n") if line)
            new.append((time.monotonic(), fields))
            self.messages.append(new[-1])

    def wait(self, key, what, timeout=20, ignore=("WATCHDOG",)):
        """The first message not yet waited for with key, skipping those
        with a key in ignore; any other message before it is an error."""
        deadline = time.monotonic() + timeout
        while True:
            while self.seen < len(self.messages):
                fields = self.messages[self.seen][1]
                self.seen += 1
                if key in fields:
                    return fields
                assert set(fields) & set(ignore), \
                    f"waiting for {what}, pmed sent {fields} first"
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {key} from pmed within {timeout}s ({what}); "
                                     f"it sent {[m for _, m in self.messages]}; log:\n"
                                     f"{self.pmed.log() if self.pmed else ''}")
            self.receive(min(0.2, left))

    def forget(self):
        """Take what was sent so far as read (a pmed that has exited)."""
        self.receive(0.1)
        self.seen = len(self.messages)

    def close(self):
        self.sock.close()


def skip_without_systemd():
    if not built_with_systemd():
        print(f"SKIP: pmed under {pmetest.BUILD} was built without libsystemd "
              "(meson -Dsystemd): no sd_notify, no socket activation")
        return True
    return False


def test_notify():
    """READY with STATUS at start, RELOADING with MONOTONIC_USEC then READY
    on SIGHUP, READY and a failure STATUS after a broken file, STOPPING."""
    if skip_without_systemd():
        return pmetest.SKIP
    w, port = Workdir(), free_port()
    mgr, pmed = Manager(w), None
    try:
        path = w.config(SERVICES.format(name="one", value=1), port=port)
        pmed = Pmed(path, port, env=mgr.env())
        mgr.pmed = pmed
        ready = mgr.wait("READY", "readiness")
        assert ready["READY"] == "1", ready
        assert ready.get("STATUS") == f"serving 1 service on 127.0.0.1:{port}", ready
        pmed.wait_for(lambda b: value(b, "one_value") == 1, "one_value")

        # A good reload: RELOADING=1 stamped with the time it began.
        w.config(SERVICES.format(name="one", value=1) +
                 SERVICES.format(name="two", value=2).split("services:\n")[1], port=port)
        before = time.monotonic_ns() // 1000
        pmed.proc.send_signal(signal.SIGHUP)
        reloading = mgr.wait("RELOADING", "the reload to begin")
        after = time.monotonic_ns() // 1000
        assert reloading["RELOADING"] == "1", reloading
        assert "MONOTONIC_USEC" in reloading, reloading
        stamp = int(reloading["MONOTONIC_USEC"])
        assert before <= stamp <= after, (before, stamp, after)
        assert reloading.get("STATUS", "").startswith("reloading "), reloading
        ready = mgr.wait("READY", "the end of the reload")
        assert ready.get("STATUS") == f"serving 2 services on 127.0.0.1:{port}", ready
        pmed.wait_for(lambda b: value(b, "two_value") == 2, "two_value after the reload")

        # A broken file: READY=1 all the same, and STATUS says it failed.
        w.file("pme.yml", open(path).read() + "  three: [\n")
        pmed.proc.send_signal(signal.SIGHUP)
        reloading = mgr.wait("RELOADING", "the broken reload to begin")
        assert "MONOTONIC_USEC" in reloading, reloading
        ready = mgr.wait("READY", "the end of the broken reload")
        status = ready.get("STATUS", "")
        assert re.fullmatch(rf"reload failed: 1 error, the first: {re.escape(path)}:\d+:\d+: "
                            r".+; running the previous configuration", status), ready
        body = pmed.metrics()
        assert value(body, "two_value") == 2, body
        assert value(body, "pme_config_last_reload_successful") == 0, body

        pmed.proc.send_signal(signal.SIGTERM)
        stopping = mgr.wait("STOPPING", "the shutdown")
        assert stopping["STOPPING"] == "1", stopping
        assert pmed.stop() == 0, pmed.log()
        # Without WATCHDOG_USEC, no WATCHDOG=1 was ever sent.
        assert not [m for _, m in mgr.messages if "WATCHDOG" in m], mgr.messages
    finally:
        if pmed is not None:
            pmed.stop()
            pmed.kill_all()
        mgr.close()
        w.cleanup()


def watchdog_gaps(mgr, seconds):
    """The times between the WATCHDOG=1 that arrive in the next seconds."""
    times = [t for t, m in mgr.receive(seconds) if m.get("WATCHDOG") == "1"]
    return times, [b - a for a, b in zip(times, times[1:])]


def test_watchdog():
    """WATCHDOG_USEC=400000: WATCHDOG=1 every 200 ms from the loop, none while
    pmed is stopped; none when WATCHDOG_PID names another process."""
    if skip_without_systemd():
        return pmetest.SKIP
    w, port = Workdir(), free_port()
    mgr, pmed = Manager(w), None
    try:
        path = w.config(SERVICES.format(name="one", value=1), port=port)
        # WATCHDOG_PID set to pmed's own pid: sh's $$ is the pid pmed
        # has once sh has exec'd it.
        wrapper = ["sh", "-c", 'export WATCHDOG_PID=$$; exec "$0" "$@"', pmetest.PMED]
        for command in (None, wrapper):
            pmed = Pmed(path, port, env=mgr.env(WATCHDOG_USEC="400000"), command=command)
            mgr.pmed = pmed
            mgr.wait("READY", "readiness")
            times, gaps = watchdog_gaps(mgr, 2.0)
            assert 7 <= len(times) <= 12, f"{len(times)} WATCHDOG=1 in 2 s: {gaps}"
            gaps.sort()
            assert 0.15 <= gaps[len(gaps) // 2] <= 0.25, f"median gap not 200 ms: {gaps}"
            assert gaps[-1] < 0.4, f"a gap as long as the watchdog timeout: {gaps}"

            # A stopped loop sends nothing: systemd would kill it.
            os.kill(pmed.proc.pid, signal.SIGSTOP)
            try:
                mgr.receive(0.1)   # what was on its way
                times, _ = watchdog_gaps(mgr, 1.0)
                assert not times, f"{len(times)} WATCHDOG=1 from a stopped pmed"
            finally:
                os.kill(pmed.proc.pid, signal.SIGCONT)
            times, _ = watchdog_gaps(mgr, 1.0)
            assert len(times) >= 3, f"only {len(times)} WATCHDOG=1 in 1 s after SIGCONT"
            assert pmed.stop() == 0, pmed.log()
            pmed = None
            mgr.forget()

        # The watchdog is asked of another process (the variables leaked
        # into pmed's environment): pmed sends none.
        pmed = Pmed(path, port, env=mgr.env(WATCHDOG_USEC="400000", WATCHDOG_PID="1"))
        mgr.pmed = pmed
        mgr.wait("READY", "readiness")
        times, _ = watchdog_gaps(mgr, 1.0)
        assert not times, f"{len(times)} WATCHDOG=1 though WATCHDOG_PID is not pmed"
        assert pmed.stop() == 0, pmed.log()
    finally:
        if pmed is not None:
            pmed.stop()
            pmed.kill_all()
        mgr.close()
        w.cleanup()


def http_status(port, path):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        r.read()
        return r.status
    finally:
        conn.close()


def refused(port):
    """True when nothing listens on 127.0.0.1:port."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return False
    except ConnectionRefusedError:
        return True


def test_socket_activation():
    """A socket passed as pmed.socket would serves everything in place of
    exporter.listen, health_listen is still opened, and a reload keeps it."""
    if skip_without_systemd():
        return pmetest.SKIP
    w = Workdir()
    passed, configured, health, moved = free_port(), free_port(), free_port(), free_port()
    mgr, pmed = Manager(w), None
    exporter = (f'exporter:\n  listen: ["127.0.0.1:{configured}"]\n'
                f'  health_listen: "127.0.0.1:{health}"\n  interval: 1s\n' +
                (f"  user: {pmetest.TEST_USER}\n" if pmetest.IS_ROOT else ""))
    try:
        path = w.config(exporter + SERVICES.format(name="one", value=1))
        command = [sys.executable, "-c", ACTIVATE, f"127.0.0.1:{passed}", pmetest.PMED]
        pmed = Pmed(path, passed, env=mgr.env(), command=command)
        mgr.pmed = pmed
        ready = mgr.wait("READY", "readiness")
        assert ready.get("STATUS") == (f"serving 1 service on 127.0.0.1:{passed} (from systemd), "
                                       f"127.0.0.1:{health} (health only)"), ready
        pmed.wait_for(lambda b: value(b, "one_value") == 1, "one_value on the passed socket")
        assert refused(configured), f"pmed listens on exporter.listen {configured} too"
        log = pmed.log()
        assert f"listening on 127.0.0.1:{passed} (socket from systemd)" in log, log
        assert f"exporter.listen (127.0.0.1:{configured}) is not opened" in log, log
        # Everything is served on the passed socket, /health included.
        status, _, _ = pmed.request("/health")
        assert status == 200, status
        # health_listen is pmed's own, and health only.
        for p, want in (("/health", 200), ("/metrics", 404)):
            status = http_status(health, p)
            assert status == want, f"health_listen {p}: {status}"

        # A reload adds a service and moves exporter.listen: the passed
        # socket stays, serving the new service; the new address is not
        # opened, and the log says why.
        w.file("pme.yml", exporter.replace(str(configured), str(moved)) +
               SERVICES.format(name="one", value=1) +
               SERVICES.format(name="two", value=2).split("services:\n")[1])
        pmed.proc.send_signal(signal.SIGHUP)
        ready = mgr.wait("READY", "the end of the reload", ignore=("WATCHDOG", "RELOADING"))
        assert ready.get("STATUS", "").startswith("serving 2 services on "
                                                  f"127.0.0.1:{passed} (from systemd)"), ready
        pmed.wait_for(lambda b: value(b, "two_value") == 2, "two_value on the passed socket")
        assert refused(moved) and refused(configured), "pmed opened exporter.listen"
        assert "reload: exporter.listen changed, but pmed serves on the sockets systemd " \
            "passed" in pmed.log(), pmed.log()
        assert pmed.stop() == 0, pmed.log()
        pmed = None
    finally:
        if pmed is not None:
            pmed.stop()
            pmed.kill_all()
        mgr.close()
        w.cleanup()


def test_socket_refused():
    """A passed socket pmed cannot serve HTTP on (a Unix one) stops it at
    start with a message that says what to use."""
    if skip_without_systemd():
        return pmetest.SKIP
    w, port = Workdir(), free_port()
    pmed = None
    try:
        path = w.config(SERVICES.format(name="one", value=1), port=port)
        sock = os.path.join(w.path, "http.sock")
        command = [sys.executable, "-c", ACTIVATE, f"unix:{sock}", pmetest.PMED]
        pmed = Pmed(path, env=dict(os.environ), command=command)
        rc = pmed.proc.wait(timeout=20)
        log = pmed.log()
        assert rc == 69, f"exit status {rc}:\n{log}"
        assert re.search(r"socket from systemd: descriptor 3 is not a TCP socket: pmed serves "
                         r"HTTP only on ListenStream= sockets with an IP address and a port",
                         log), log
        assert refused(port), "pmed listens on exporter.listen after all"
    finally:
        if pmed is not None:
            pmed.stop()
            pmed.kill_all()
        w.cleanup()


def test_socket_activate_tool():
    """systemd-socket-activate, systemd's own tool for this, starts pmed on
    the first connection, which pmed then answers."""
    if skip_without_systemd():
        return pmetest.SKIP
    tool = shutil.which("systemd-socket-activate") or shutil.which(
        "systemd-socket-activate", path="/lib/systemd:/usr/lib/systemd")
    if tool is None:
        print("SKIP: systemd-socket-activate is not installed (Debian package systemd)")
        return pmetest.SKIP
    w, passed, configured = Workdir(), free_port(), free_port()
    pmed = None
    try:
        path = w.config(SERVICES.format(name="one", value=1), port=configured)
        # It gives its child only the LISTEN_* variables and those of -E.
        pmed = Pmed(path, passed, command=[tool, "-l", f"127.0.0.1:{passed}",
                                           "-E", "PATH", pmetest.PMED])
        pmed.wait_for(lambda b: value(b, "one_value") == 1, "one_value on the tool's socket")
        assert refused(configured), f"pmed listens on exporter.listen {configured} too"
        pmed.proc.send_signal(signal.SIGHUP)
        pmed.wait_for(lambda b: value(b, "pme_config_last_reload_successful") == 1 and
                      "SIGHUP" in pmed.log(), "the reload")
        assert pmed.stop() == 0, pmed.log()
        pmed = None
    finally:
        if pmed is not None:
            pmed.stop()
            pmed.kill_all()
        w.cleanup()


if __name__ == "__main__":
    pmetest.main({
        "notify": test_notify,
        "watchdog": test_watchdog,
        "socket_activation": test_socket_activation,
        "socket_refused": test_socket_refused,
        "socket_activate_tool": test_socket_activate_tool,
    })
