#!/usr/bin/env python3
# SPDX-License-Identifier: ISC
"""A real Prometheus in the loop: Debian's prometheus (2.42) scrapes pmed
every second on loopback, and its HTTP API says what it stored.

Through a worker killed and restarted and a counter of the source set back
(the program behind it restarted), Prometheus must see pmed up at every
scrape and a counter that never goes down: no reset, rate() never
negative.  An observed histogram must give quantiles inside the buckets the
observations fell in, and the exposition negotiated must be OpenMetrics,
which Prometheus asks for first."""
import json
import os
import shutil
import signal
import subprocess
import time
import urllib.parse
import urllib.request

import pmetest
from pmetest import Pmed, Workdir, free_port, value, worker_pids

CONFIG = """
services:
  app:
    metric_prefix: app_
    metric_groups:
      stats:
        source_type: file
        source: {stats}
        metrics:
          requests_total:
            type: counter
            description: Requests served.
            filter: 'requests=(\\d+)'
      log:
        source_type: file
        source: {log}
        metrics:
          request_seconds:
            type: histogram
            description: How long each request took.
            unit: seconds
            observe: true
            buckets: [0.1, 0.5, 1, 5]
            filter: 'took (?<value>[\\d.]+)s'
  other:
    metric_groups:
      fixed:
        source_type: static
        metrics:
          other_value: {{ value: 7 }}
"""

PROMETHEUS_YML = """
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: pme
    static_configs:
      - targets: ['127.0.0.1:{port}']
"""


class Prometheus:
    """prometheus on loopback with its own storage, stopped by stop()."""

    def __init__(self, w, pmed_port):
        self.port = free_port()
        config = w.file("prometheus.yml", PROMETHEUS_YML.format(port=pmed_port))
        self.log_path = os.path.join(w.path, "prometheus.log")
        self.proc = subprocess.Popen(
            ["prometheus", f"--config.file={config}",
             f"--storage.tsdb.path={os.path.join(w.path, 'tsdb')}",
             f"--web.listen-address=127.0.0.1:{self.port}"],
            stdout=subprocess.DEVNULL, stderr=open(self.log_path, "w"))

    def log(self):
        with open(self.log_path) as f:
            return f.read()[-4000:]

    def api(self, path, **params):
        url = f"http://127.0.0.1:{self.port}/api/v1/{path}?{urllib.parse.urlencode(params)}"
        with urllib.request.urlopen(url, timeout=10) as r:
            doc = json.load(r)
        assert doc["status"] == "success", doc
        return doc["data"]

    def query(self, expr):
        """{labels as a sorted tuple: value} of an instant query."""
        out = {}
        for r in self.api("query", query=expr)["result"]:
            labels = tuple(sorted((k, v) for k, v in r["metric"].items() if k != "__name__"))
            out[labels] = float(r["value"][1])
        return out

    def one(self, expr):
        got = self.query(expr)
        assert len(got) <= 1, f"{expr}: more than one series: {got}"
        return next(iter(got.values()), None)

    def wait(self, expr, pred, what, timeout=30):
        deadline = time.time() + timeout
        got = None
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"prometheus exited {self.proc.returncode}:\n{self.log()}")
            try:
                got = self.one(expr)
                if got is not None and pred(got):
                    return got
            except OSError:
                pass   # not listening yet
            time.sleep(0.5)
        raise AssertionError(f"timed out waiting for {what}: {expr} = {got}\n{self.log()}")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def test_prometheus():
    if shutil.which("prometheus") is None:
        print("skipped: prometheus is not installed (Debian package prometheus)")
        raise SystemExit(pmetest.SKIP)
    w, port = Workdir(), free_port()
    pmed = prom = None
    try:
        count = 1000
        stats = w.file("stats", f"requests={count}\n")
        log = w.file("log", "")
        pmed = Pmed(w.config(CONFIG.format(stats=stats, log=log), port=port), port)
        pmed.wait_for(lambda b: value(b, "app_requests_total") == count, "the first read")
        prom = Prometheus(w, port)
        prom.wait(r'up{job="pme"}', lambda v: v == 1, "pmed up in Prometheus")
        t0 = time.time()

        def run(seconds, step=50):
            # The source's counter grows; a request is logged every second.
            nonlocal count
            end = time.time() + seconds
            i = 0
            while time.time() < end:
                count += step
                w.file("stats", f"requests={count}\n")
                with open(log, "a") as f:
                    f.write(f"request took {0.2 + (i % 3) * 0.1:.1f}s\n")
                i += 1
                time.sleep(1)

        run(6)
        os.kill(worker_pids(pmed)["app"], signal.SIGKILL)   # a worker restart
        run(6)
        count = 20   # the program behind the source restarted: its count began again
        w.file("stats", f"requests={count}\n")
        run(8)
        t1 = time.time()

        # What Prometheus stored over the run.
        rng = prom.api("query_range", query='up{job="pme"}', start=t0, end=t1, step=1)
        ups = [float(v) for r in rng["result"] for _, v in r["values"]]
        assert ups and min(ups) == 1, f"pmed was not up at every scrape: {ups}"
        window = f"{int(t1 - t0) + 5}s"
        resets = prom.one(f"resets(app_requests_total[{window}])")
        assert resets == 0, f"Prometheus saw {resets} counter resets"
        rates = prom.api("query_range", query="rate(app_requests_total[5s])",
                         start=t0 + 5, end=t1, step=1)
        values = [float(v) for r in rates["result"] for _, v in r["values"]]
        assert values and min(values) >= 0, f"a negative rate: {values}"
        restarts = prom.one('pme_worker_restarts_total{service="app"}')
        assert restarts == 1, f"pme_worker_restarts_total {restarts}"

        # Observations of 0.2, 0.3 and 0.4 s: every quantile within (0.1, 0.5].
        for q in (0.5, 0.9):
            got = prom.one(f"histogram_quantile({q}, "
                           f"sum by (le) (rate(app_request_seconds_bucket[{window}])))")
            assert got is not None and 0.1 < got <= 0.5, f"quantile {q}: {got}"
        observed = prom.one("app_request_seconds_count")
        assert observed is not None and observed >= 15, f"{observed} observations"
        assert prom.one("other_value") == 7

        # The format negotiated: Prometheus asks for OpenMetrics first.
        formats = prom.query('pme_scrapes_total')
        om = [v for labels, v in formats.items() if ("format", "openmetrics") in labels]
        assert om and om[0] > 0, f"no scrape in OpenMetrics: {formats}"
        print(f"{len(ups)} scrapes up, 0 resets, rates {min(values):.1f}..{max(values):.1f}/s, "
              f"{observed:.0f} observations, format {formats}")
    finally:
        if prom is not None:
            prom.stop()
        if pmed is not None:
            pmed.stop()
            pmed.kill_all()
        w.cleanup()


if __name__ == "__main__":
    pmetest.main({"prometheus": test_prometheus})
