#!/usr/bin/env python3
# SPDX-License-Identifier: ISC
# End-to-end tests of the source types through the real daemon, against
# servers the test starts: HTTP on TCP and on a Unix socket, servers that
# are slow, reset connections or redirect, and credentials from files.
import base64
import http.server
import os
import socket
import socketserver
import subprocess
import threading
import time

import pmetest
from pmetest import Workdir, run_pmed, value

STUB_STATUS = """Active connections: 291
server accepts handled requests
 16630948 16630948 31070465
Reading: 6 Writing: 179 Waiting: 106
"""

HEALTH = ('{"cluster_name": "logs", "status": "yellow", "number_of_nodes": 3, '
          '"active_shards": 812, "unassigned_shards": 4}')


class Handler(http.server.BaseHTTPRequestHandler):
    """Answers by path; what it was asked is kept in server.seen."""

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
        self.server.seen.append((self.command, self.path, dict(self.headers)))
        if self.path == "/nginx_status":
            self.send(200, STUB_STATUS)
        elif self.path == "/old/health":
            self.send(301, "", headers=[("Location", "../_cluster/health")])
        elif self.path == "/_cluster/health":
            want = "Basic " + base64.b64encode(b"monitor:s3cret").decode()
            if self.headers.get("Authorization") != want:
                self.send(401, "who are you?", headers=[("WWW-Authenticate", "Basic")])
            else:
                self.send(200, HEALTH, "application/json")
        elif self.path == "/slow":
            time.sleep(3)
            self.send(200, "late 1\n")
        elif self.path == "/reset":
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       b"\x01\x00\x00\x00\x00\x00\x00\x00")
            self.connection.close()
        elif self.path == "/chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for part in (b"queue_depth ", b"17\n"):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\n\r\n")
        else:
            self.send(404, "no such page")

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length).decode()
        self.server.seen.append((self.command, self.path, dict(self.headers), body))
        self.send(200, '{"echo": %d}' % len(body), "application/json")


class TcpServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class UnixServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def get_request(self):
        conn, _ = super().get_request()
        return conn, ("local", 0)


def serve(server):
    server.seen = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def promtool_ok(exposition):
    promtool = subprocess.run(["promtool", "check", "metrics"], input=exposition,
                              capture_output=True, text=True)
    assert promtool.returncode == 0, promtool.stdout + promtool.stderr


def once(w, config):
    r = run_pmed("--once", "-f", w.config(config))
    assert r.returncode == 0, f"--once exit {r.returncode}: {r.stderr}"
    return r


def test_http_text():
    """nginx stub_status over HTTP: values, status code, response time."""
    w = Workdir()
    srv = serve(TcpServer(("127.0.0.1", 0), Handler))
    port = srv.server_address[1]
    try:
        r = once(w, f"""
            services:
              nginx:
                metric_prefix: nginx_
                metric_groups:
                  status:
                    source_type: http
                    source: http://127.0.0.1:{port}/nginx_status
                    multiline: true
                    metrics:
                      connections_active:
                        filter: 'Active connections:\\s+(\\d+)'
                      connections_accepted_total:
                        type: counter
                        filter: '^\\s*(\\d+)\\s+\\d+\\s+\\d+\\s*$'
                      connections:
                        filter: '(?<state>Reading|Writing|Waiting): (?<value>\\d+)'
                        labels: {{ state: '${{state}}' }}
                  queue:
                    source_type: http
                    source: http://127.0.0.1:{port}/chunked
                    headers: {{ X-Probe: pme }}
                    metrics:
                      queue_depth: {{ filter: 'queue_depth (\\d+)' }}
        """)
        out = r.stdout
        assert value(out, "nginx_connections_active") == 291, out
        assert value(out, "nginx_connections_accepted_total") == 16630948, out
        assert value(out, "nginx_connections", state="Writing") == 179, out
        assert value(out, "nginx_queue_depth") == 17, out
        assert value(out, "pme_http_status_code", service="nginx", group="status") == 200, out
        seconds = value(out, "pme_http_response_seconds", service="nginx", group="status")
        assert seconds is not None and 0 <= seconds < 5, out
        assert value(out, "pme_source_up", service="nginx", group="queue") == 1, out
        probes = [s for s in srv.seen if s[1] == "/chunked"]
        assert probes and probes[0][2].get("X-Probe") == "pme", srv.seen
        assert probes[0][2].get("User-Agent", "").startswith("pme/"), probes
        promtool_ok(out)
    finally:
        srv.shutdown()
        w.cleanup()


def test_http_json_auth():
    """A JSON health API behind basic auth, reached through a redirect,
    with the password read from a file; and a POST with a body."""
    w = Workdir()
    srv = serve(TcpServer(("127.0.0.1", 0), Handler))
    port = srv.server_address[1]
    secret = w.file("es.secret", "s3cret\n")
    try:
        r = once(w, f"""
            services:
              search:
                metric_prefix: es_
                metric_groups:
                  health:
                    source_type: http
                    source: http://127.0.0.1:{port}/old/health
                    basic_auth: {{ username: monitor, password_file: {secret} }}
                    content_type: json
                    labels: {{ cluster: logs }}
                    metrics:
                      cluster_status:
                        filter: '$.status'
                        values: {{ green: 0, yellow: 1, red: 2 }}
                      nodes: {{ filter: '$.number_of_nodes' }}
                      unassigned_shards: {{ filter: '$.unassigned_shards' }}
                  echo:
                    source_type: http
                    source: http://127.0.0.1:{port}/echo
                    method: post
                    body: '{{"query": "x"}}'
                    headers: {{ Content-Type: application/json }}
                    content_type: json
                    metrics:
                      echo_bytes: {{ filter: '$.echo' }}
        """)
        out = r.stdout
        assert value(out, "es_cluster_status", cluster="logs") == 1, out
        assert value(out, "es_nodes", cluster="logs") == 3, out
        assert value(out, "es_unassigned_shards") == 4, out
        assert value(out, "es_echo_bytes") == 14, out
        posts = [s for s in srv.seen if s[0] == "POST"]
        assert posts and posts[0][3] == '{"query": "x"}', srv.seen
        assert posts[0][2].get("Content-Type") == "application/json", posts
        promtool_ok(out)
    finally:
        srv.shutdown()
        w.cleanup()


def test_http_failures():
    """A slow server, a reset, a 401 and a refused port each fail their own
    group with a clear error; the service's other groups are untouched."""
    w = Workdir()
    srv = serve(TcpServer(("127.0.0.1", 0), Handler))
    port = srv.server_address[1]
    closed = pmetest.free_port()
    try:
        r = once(w, f"""
            services:
              app:
                metric_groups:
                  slow:
                    source_type: http
                    source: http://127.0.0.1:{port}/slow
                    timeout: 500ms
                    metrics: {{ late: {{ filter: 'late (\\d+)', value_on_error: -1 }} }}
                  reset:
                    source_type: http
                    source: http://127.0.0.1:{port}/reset
                    metrics: {{ r: {{ filter: '(\\d+)' }} }}
                  denied:
                    source_type: http
                    source: http://127.0.0.1:{port}/_cluster/health
                    content_type: json
                    metrics: {{ d: {{ filter: '$.status' }} }}
                  refused:
                    source_type: http
                    source: http://127.0.0.1:{closed}/x
                    metrics: {{ f: {{ filter: '(\\d+)' }} }}
                standalone_metrics:
                  fine: {{ value: 7 }}
        """)
        out, err = r.stdout, r.stderr
        for group in ("slow", "reset", "denied", "refused"):
            assert value(out, "pme_source_up", service="app", group=group) == 0, (group, out)
        assert value(out, "late") == -1, out
        assert value(out, "fine") == 7, out
        assert value(out, "pme_http_status_code", group="denied") == 401, out
        assert "timed out after 500ms" in err, err
        assert "HTTP 401" in err, err
        assert "refused" in err, err
        promtool_ok(out)
    finally:
        srv.shutdown()
        w.cleanup()


def test_http_unix_socket():
    """An API on a Unix socket, as Docker's."""
    w = Workdir()
    sock = os.path.join(w.path, "api.sock")
    srv = serve(UnixServer(sock, Handler))
    os.chmod(sock, 0o666)
    try:
        r = once(w, f"""
            services:
              web:
                metric_groups:
                  status:
                    source_type: http
                    source: unix:{sock}:/nginx_status
                    metrics:
                      active: {{ filter: 'Active connections:\\s+(\\d+)' }}
        """)
        assert value(r.stdout, "active") == 291, r.stdout + r.stderr
        assert srv.seen[0][2].get("Host") == "localhost", srv.seen
    finally:
        srv.shutdown()
        w.cleanup()


def test_https_refused():
    w = Workdir()
    try:
        r = run_pmed("-n", "-f", w.config("""
            services:
              web:
                metric_groups:
                  status:
                    source_type: http
                    source: https://127.0.0.1/status
                    metrics: { active: { filter: '(\\d+)' } }
        """))
        assert r.returncode != 0, r.stdout
        assert ":10:17: https:// is not supported yet: pme has no TLS" in r.stderr, r.stderr
    finally:
        w.cleanup()


if __name__ == "__main__":
    pmetest.main({
        "http_text": test_http_text,
        "http_json_auth": test_http_json_auth,
        "http_failures": test_http_failures,
        "http_unix_socket": test_http_unix_socket,
        "https_refused": test_https_refused,
    })
