# SPDX-License-Identifier: ISC
# Helpers for the end-to-end tests: start the real pmed on loopback with a
# temporary configuration, talk HTTP to it, inspect its processes.
import http.client
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time

BUILD = os.environ.get("PME_BUILD_ROOT", os.path.join(os.path.dirname(__file__), "../../build"))
SOURCE = os.environ.get("PME_SOURCE_ROOT", os.path.join(os.path.dirname(__file__), "../.."))
PMED = os.path.join(BUILD, "daemon", "pmed")
WORKER = os.path.join(BUILD, "worker", "pme-worker")
IS_ROOT = os.geteuid() == 0
# As root pmed switches to exporter.user; tests use an account every
# Debian system has, and keep their files readable by it.
TEST_USER = "nobody"

SKIP = 77


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Workdir:
    """A temporary directory that the service user can read."""

    def __init__(self):
        self.path = tempfile.mkdtemp(prefix="pme-test-")
        os.chmod(self.path, 0o755)

    def file(self, name, content, mode=0o644):
        p = os.path.join(self.path, name)
        with open(p + ".new", "w") as f:
            f.write(content)
        os.chmod(p + ".new", mode)
        os.replace(p + ".new", p)
        return p

    def config(self, text, port=None, name="pme.yml"):
        text = textwrap.dedent(text)
        header = ""
        # A top-level exporter: key, not one that ends in it (node_exporter:).
        if not re.search(r"^exporter:", text, re.M):
            header = "exporter:\n"
            if port is not None:
                header += f'  listen: ["127.0.0.1:{port}"]\n'
            header += "  interval: 1s\n"
            if IS_ROOT:
                header += f"  user: {TEST_USER}\n"
        return self.file(name, header + text)

    def cleanup(self):
        subprocess.run(["rm", "-rf", self.path])


def run_pmed(*args, timeout=60):
    """Run pmed to completion; returns CompletedProcess with text output."""
    return subprocess.run([PMED, *args], capture_output=True, text=True, timeout=timeout)


class Pmed:
    """A running pmed -d."""

    def __init__(self, config, port=None, extra=(), env=None, command=None):
        """command: how to start pmed (default: the built binary)."""
        self.port = port
        # Seconds a request may take; a test that loads a sanitizer build
        # hard may allow more.
        self.request_timeout = 10
        self.log_path = config + ".log"
        self.log_file = open(self.log_path, "w")
        self.proc = subprocess.Popen([*(command or [PMED]), "-d", "-f", config, *extra],
                                     stdout=subprocess.DEVNULL, stderr=self.log_file,
                                     start_new_session=True, env=env)
        if port is not None:
            try:
                self.wait_listening()
            except BaseException:
                # Its own session: nothing else would stop it.
                self.kill_all()
                raise

    def log(self):
        if not self.log_file.closed:
            self.log_file.flush()
        with open(self.log_path) as f:
            return f.read()

    def wait_listening(self, timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"pmed exited with {self.proc.returncode}:\n{self.log()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.05)
        raise AssertionError(f"pmed did not listen on {self.port}:\n{self.log()}")

    def request(self, path, method="GET", headers=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.request_timeout)
        try:
            conn.request(method, path, headers=headers or {})
            r = conn.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read().decode()
        finally:
            conn.close()

    def metrics(self):
        status, _, body = self.request("/metrics")
        assert status == 200, f"/metrics answered {status}"
        return body

    def wait_for(self, predicate, what, timeout=20):
        """Poll /metrics until predicate(body) holds; returns the body."""
        deadline = time.time() + timeout
        body = ""
        while time.time() < deadline:
            body = self.metrics()
            if predicate(body):
                return body
            time.sleep(0.2)
        raise AssertionError(f"timed out waiting for {what}; last /metrics:\n{body}\n"
                             f"log:\n{self.log()}")

    def descendants(self):
        return descendants(self.proc.pid)

    def stop(self, timeout=20, sig=signal.SIGTERM):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill_all()
                raise AssertionError(f"pmed did not stop on {sig.name}:\n{self.log()}")
        self.log_file.close()
        return self.proc.returncode

    def kill_all(self):
        """Last-resort cleanup: kill the whole tree."""
        pids = self.descendants()
        for pid in [self.proc.pid] + pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass


def proc_status(pid):
    fields = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                k, _, v = line.partition(":")
                fields[k] = v.strip()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return fields


def all_processes():
    """pid -> (ppid, pgid, sid, comm) of every process."""
    out = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1:stat.rindex(")")]
        rest = stat[stat.rindex(")") + 2:].split()
        out[int(d)] = (int(rest[1]), int(rest[2]), int(rest[3]), comm)
    return out


def descendants(root):
    procs = all_processes()
    found, frontier = [], [root]
    while frontier:
        p = frontier.pop()
        for pid, (ppid, _, _, _) in procs.items():
            if ppid == p and pid not in found:
                found.append(pid)
                frontier.append(pid)
    return found


def worker_pids(pmed):
    """{service: pid} of the workers of pmed: the children of its spawner."""
    procs = all_processes()
    spawners = [p for p, v in procs.items() if v[0] == pmed.proc.pid]
    out = {}
    for p, v in procs.items():
        if spawners and v[0] == spawners[0]:
            try:
                with open(f"/proc/{p}/cmdline") as f:
                    out[f.read().split("\0")[1]] = p
            except (OSError, IndexError):
                pass
    return out


def sanitized():
    """True in a build with sanitizers (meson sets PME_SANITIZE from b_sanitize)."""
    return os.environ.get("PME_SANITIZE", "none") not in ("none", "[]", "")


def alive(pid):
    st = proc_status(pid)
    return st is not None and not st.get("State", "").startswith("Z")


def parse_metrics(body):
    """{(name, frozenset(labels.items())): value} of a 0.0.4 exposition."""
    import re
    out = {}
    line_re = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)$')
    label_re = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
    for line in body.splitlines():
        if not line or line.startswith("#"):
            continue
        m = line_re.match(line)
        assert m, f"unparsable exposition line: {line!r}"
        labels = frozenset(label_re.findall(m.group(2) or ""))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


def value(body, name, **labels):
    """The value of one series, or None."""
    for (n, ls), v in parse_metrics(body).items():
        if n == name and all((k, str(val)) in ls for k, val in labels.items()):
            return v
    return None


def main(tests):
    """Run the named test (argv[1]) from a dict of name -> function."""
    if len(sys.argv) != 2 or sys.argv[1] not in tests:
        print(f"usage: {sys.argv[0]} {'|'.join(tests)}", file=sys.stderr)
        sys.exit(2)
    if not os.path.exists(PMED) or not os.path.exists(WORKER):
        print(f"pmed or pme-worker not built under {BUILD}", file=sys.stderr)
        sys.exit(1)
    try:
        rc = tests[sys.argv[1]]()
    except AssertionError as e:
        print(f"FAIL: {e}", file=sys.stderr)
        sys.exit(1)
    sys.exit(rc or 0)
