#!/usr/bin/env python3
# SPDX-License-Identifier: ISC
# End-to-end tests of pmed --explain: the real spawner and worker run one
# group once, as its user, and the report shows the data read, what each
# filter matched, the samples and the errors.
import http.server
import os
import pwd
import re
import socketserver
import threading

import pmetest
from pmetest import IS_ROOT, TEST_USER, Workdir, run_pmed

# As root the worker runs as nobody; otherwise as whoever runs the test.
RUN_AS = f"    run_as: {{ user: {TEST_USER} }}\n" if IS_ROOT else ""

COMMANDS = """
services:
  app:
    metric_prefix: app_
    labels: { team: core }
""" + RUN_AS + """\
    metric_groups:
      stats:
        source_type: command
        # printf makes the escape sequence and the byte that is not UTF-8.
        source: [printf, 'requests=7\\ntemp=21.5 unit=celsius\\n\\033[2Jbad \\377 byte\\n']
        metrics:
          requests_total:
            type: counter
            filter: 'requests=(\\d+)'
          temperature:
            filter: 'temp=(?<value>[-\\d.]+) unit=(?<unit>\\w+)'
            labels: { unit: "${unit}" }
      failing:
        source_type: command
        source: [sh, -c, "echo half; echo disk on fire >&2; exit 3"]
        metrics:
          half: { filter: 'half' }
      partial:
        source_type: command
        source: [echo, "load 3"]
        metrics:
          load: { filter: 'load (\\d+)' }
          absent: { filter: 'absent (\\d+)' }
"""

STUB_STATUS = """Active connections: 291
server accepts handled requests
 16630948 16630948 31070465
Reading: 6 Writing: 179 Waiting: 106
"""


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        body = STUB_STATUS.encode() if self.path == "/nginx_status" else b"no such page"
        self.send_response(200 if self.path == "/nginx_status" else 404)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class TcpServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def explain(cfg, target):
    return run_pmed("--explain", target, "-f", cfg)


def check(r, status, *needles):
    """The exit status and every needle (a string or a compiled regex) in stdout."""
    out = f"exit {r.returncode}\nstdout:\n{r.stdout}\nstderr:\n{r.stderr}"
    assert r.returncode == status, f"expected exit {status}; {out}"
    for n in needles:
        found = n.search(r.stdout) if isinstance(n, re.Pattern) else n in r.stdout
        assert found, f"{n!r} not in the report; {out}"


def ran_as():
    """The report's 'ran as' line for the worker's expected user."""
    if IS_ROOT:
        pw = pwd.getpwnam(TEST_USER)
    else:
        pw = pwd.getpwuid(os.getuid())
    return f"ran as    user {pw.pw_name} (uid {pw.pw_uid}), group "


def test_command():
    w = Workdir()
    try:
        cfg = w.config(COMMANDS)
        r = explain(cfg, "app/stats")
        check(r, 0,
              "== app/stats ==",
              "source    command printf ",
              ran_as(),
              "result    ok\n",
              "exit      0\n",
              "-- data read: 3 lines, ",
              "1 | requests=7\n",
              "2 | temp=21.5 unit=celsius\n",
              # The terminal gets no escape sequence and no invalid byte.
              "3 | \\x1b[2Jbad \\xff byte\n",
              "app_requests_total (counter)\n  filter   requests=(\\d+)\n  matched  1 time\n"
              "    #1 line 1: \"requests=7\"\n        $1 = \"7\"\n",
              "        $1 value = \"21.5\"\n        $2 unit = \"celsius\"\n",
              "app_requests_total{team=\"core\"} 7\n",
              "app_temperature{unit=\"celsius\",team=\"core\"} 21.5\n",
              "no errors\n")
        assert "\x1b" not in r.stdout, r.stdout
        # Only the group asked for ran.
        assert "app/failing" not in r.stdout and "app/partial" not in r.stdout, r.stdout

        # A command that fails: exit 1, and the report says why.
        r = explain(cfg, "app/failing")
        check(r, 1,
              "== app/failing ==",
              "result    FAILED: ",
              "exit      3\n",
              "1 | half\n",
              "  not run: the read failed\n",
              re.compile(r"group failing: .*exited with status 3.*disk on fire"))

        # A metric that matches nothing fails the explain, not the group.
        r = explain(cfg, "app/partial")
        check(r, 1,
              "app_load (gauge)\n  filter   load (\\d+)\n  matched  1 time\n",
              "app_absent (gauge)\n  filter   absent (\\d+)\n  matched  nothing\n",
              "app_load{team=\"core\"} 3\n",
              "metric app_absent: filter matched nothing\n")

        # Every group of the service, each once.
        r = explain(cfg, "app")
        check(r, 1, "== app/stats ==", "== app/failing ==", "== app/partial ==",
              re.compile(r"== app: .*stats ok.*failing FAILED.*partial FAILED"))
        assert r.stdout.count("== app/stats ==") == 1, r.stdout

        # Unknown names: a usage error that says what exists.
        r = explain(cfg, "app/stat")
        assert r.returncode == 64, f"exit {r.returncode}: {r.stderr}"
        assert "no group 'stat'; did you mean 'stats'?" in r.stderr, r.stderr
        assert "stats, failing, partial" in r.stderr, r.stderr
        assert r.stdout == "", r.stdout
        r = explain(cfg, "ap/stats")
        assert r.returncode == 64, f"exit {r.returncode}: {r.stderr}"
        assert "no service 'ap'; did you mean 'app'?" in r.stderr, r.stderr
    finally:
        w.cleanup()


def test_http():
    w = Workdir()
    srv = TcpServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    port = srv.server_address[1]
    try:
        cfg = w.config(f"""
services:
  web:
    metric_prefix: nginx_
""" + RUN_AS + f"""\
    metric_groups:
      status:
        source_type: http
        source: http://127.0.0.1:{port}/nginx_status
        multiline: true
        metrics:
          connections_active:
            filter: 'Active connections:\\s+(\\d+)'
          connections:
            filter: '(?<state>Reading|Writing|Waiting): (?<value>\\d+)'
            labels: {{ state: '${{state}}' }}
      gone:
        source_type: http
        source: http://127.0.0.1:{port}/nowhere
        metrics:
          x: {{ filter: '(\\d+)' }}
""")
        r = explain(cfg, "web/status")
        check(r, 0,
              f"source    http GET http://127.0.0.1:{port}/nginx_status\n",
              ran_as(),
              re.compile(r"http      200, response in [0-9.e+-]+ m?s\n"),
              f"read      {len(STUB_STATUS)} bytes, not truncated\n",
              "1 | Active connections: 291\n",
              "4 | Reading: 6 Writing: 179 Waiting: 106\n",
              "  matched  3 times\n    #1 line 4: \"Reading: 6\"\n"
              "        $1 state = \"Reading\"\n        $2 value = \"6\"\n",
              "    #3 line 4: \"Waiting: 106\"\n",
              "nginx_connections_active 291\n",
              "nginx_connections{state=\"Writing\"} 179\n",
              "no errors\n")

        r = explain(cfg, "web/gone")
        check(r, 1, "http      404", "1 | no such page\n",
              re.compile(r"group gone: .*404"))
    finally:
        srv.shutdown()
        w.cleanup()


if __name__ == "__main__":
    pmetest.main({
        "command": test_command,
        "http": test_http,
    })
