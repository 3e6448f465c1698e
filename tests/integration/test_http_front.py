#!/usr/bin/env python3
# SPDX-License-Identifier: ISC
"""The HTTP front of the real pmed under hostile clients.

pmed runs with the soft RLIMIT_NOFILE of 1024 that systemd gives a service,
so that these tests also show its default connection cap fits in it.  The
clients use raw sockets: they must send what no library would, and time
scrapes to the millisecond.
"""
import multiprocessing
import os
import resource
import select
import socket
import statistics
import time

import pmetest
from pmetest import SKIP, Pmed, Workdir, free_port

CONFIG = """
services:
  app:
    metric_groups:
      answer:
        source_type: command
        source: [echo, "answer 42"]
        metrics:
          answer:
            filter: 'answer (\\d+)'
"""

SYSTEMD_NOFILE = 1024
# HttpLimits' default maxConnections.
CAP = 256


def start(w):
    """pmed with the service's soft descriptor limit, once it serves the metric."""
    port = free_port()
    cfg = w.config(CONFIG, port=port)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(SYSTEMD_NOFILE, hard), hard))
    try:
        pmed = Pmed(cfg, port)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    try:
        pmed.wait_for(lambda body: "answer 42" in body, "the service's first sample")
    except BaseException:
        pmed.kill_all()
        raise
    return pmed, port


def read_response(sock, buf=b"", head=False):
    """(status, {lower-case name: value}, body, bytes left over); status 0
    if the connection ended before a whole response."""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            return 0, {}, b"", buf
        buf += chunk
    end = buf.index(b"\r\n\r\n")
    lines = buf[:end].decode("latin-1").split("\r\n")
    buf = buf[end + 4:]
    parts = lines[0].split(" ", 2)
    assert parts[0] == "HTTP/1.1", f"not an HTTP/1.1 status line: {lines[0]!r}"
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = 0 if head else int(headers.get("content-length", "0"))
    while len(buf) < length:
        chunk = sock.recv(65536)
        if not chunk:
            return 0, headers, buf, b""
        buf += chunk
    return int(parts[1]), headers, buf[:length], buf[length:]


def end_of(sock, buf=b""):
    """How the server ended the connection after its last response:
    'closed' (a FIN, after nothing more), 'reset', or 'open' after 3 s."""
    sock.settimeout(3)
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return "closed" if not buf else f"closed after {buf[:80]!r}"
            buf += chunk
    except socket.timeout:
        return "open"
    except ConnectionResetError:
        return "reset"


def connect(port, timeout=5):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


GET_METRICS = b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: pme-test\r\n\r\n"


def scrape(port):
    """One scrape on a fresh connection: (seconds, None) or (seconds, what went wrong)."""
    t0 = time.perf_counter()
    try:
        with connect(port) as s:
            s.sendall(GET_METRICS)
            status, _, body, _ = read_response(s)
    except OSError as e:
        return time.perf_counter() - t0, f"{type(e).__name__}: {e}"
    took = time.perf_counter() - t0
    if status != 200:
        return took, f"status {status}: {body[:100]!r}"
    if b"answer 42" not in body:
        return took, f"no sample in {body[:200]!r}"
    return took, None


def scrape_for(port, seconds, every=0.1, watch=None):
    """Scrapes every `every` seconds; returns latencies and failures.
    watch(): called between scrapes."""
    latencies, failures = [], []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        t0 = time.monotonic()
        took, error = scrape(port)
        latencies.append(took)
        if error:
            failures.append(error)
        if watch:
            watch()
        time.sleep(max(0.0, every - (time.monotonic() - t0)))
    return latencies, failures


def ms(seconds):
    return f"{seconds * 1000:.2f} ms"


def open_fds(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


# A request that never ends: the request line and Host, then header lines
# for ever, one byte at a time.
SLOW_PREFIX = b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n"
SLOW_FILLER = b"X-Slow: y\r\n"


def slow_byte(pos):
    if pos < len(SLOW_PREFIX):
        return SLOW_PREFIX[pos:pos + 1]
    pos = (pos - len(SLOW_PREFIX)) % len(SLOW_FILLER)
    return SLOW_FILLER[pos:pos + 1]


def slowloris(port, count, period, opened, stop, results):
    """Holds `count` connections open, each sending one byte of a never
    ending request every `period` seconds; one the server has answered
    (408, 503) or closed is opened again at its next turn.  Runs in its
    own process, so that it does not share an interpreter with the
    scraper whose latency is measured."""
    conns = [None] * count
    pos = [0] * count
    connects = ended = failed_connects = sent = 0

    def reopen(i):
        nonlocal connects, failed_connects, sent
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=2)
            s.setblocking(False)
            s.send(slow_byte(0))
        except OSError:
            conns[i] = None
            failed_connects += 1
            return
        conns[i] = s
        pos[i] = 1
        connects += 1
        sent += 1

    for i in range(count):
        reopen(i)
    opened.set()
    batch = 50
    while not stop.is_set():
        for first in range(0, count, batch):
            t0 = time.monotonic()
            for i in range(first, min(first + batch, count)):
                s = conns[i]
                alive = s is not None
                if alive:
                    try:
                        s.recv(4096)
                        alive = False  # an answer or the end: the server is done with it
                    except BlockingIOError:
                        pass
                    except OSError:
                        alive = False
                if alive:
                    try:
                        s.send(slow_byte(pos[i]))
                        pos[i] += 1
                        sent += 1
                    except BlockingIOError:
                        pass
                    except OSError:
                        alive = False
                if not alive:
                    if s is not None:
                        ended += 1
                        s.close()
                    reopen(i)
            if stop.is_set():
                break
            time.sleep(max(0.0, period * batch / count - (time.monotonic() - t0)))
    for s in conns:
        if s is not None:
            s.close()
    results.put({"connects": connects, "ended": ended, "failed_connects": failed_connects,
                 "bytes": sent})


def test_slowloris():
    count = 1000
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = count + 100
    if hard != resource.RLIM_INFINITY and hard < need:
        print(f"SKIP: the hard RLIMIT_NOFILE is {hard}; {count} slow connections need "
              f"{need} descriptors in the test process")
        return SKIP
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    w = Workdir()
    pmed = None
    attacker = None
    stop = multiprocessing.Event()
    try:
        pmed, port = start(w)
        # As many scrapes as under attack, so that the two maxima compare.
        base, base_failures = scrape_for(port, 10)
        assert not base_failures, f"scrapes failed without any attack: {base_failures[:5]}"

        opened = multiprocessing.Event()
        results = multiprocessing.Queue()
        attacker = multiprocessing.Process(target=slowloris,
                                           args=(port, count, 1.0, opened, stop, results))
        attacker.start()
        assert opened.wait(60), "the slow connections were not all opened within 60 s"
        time.sleep(1)  # every slow connection has sent a second byte

        fds = []
        attack, failures = scrape_for(port, 10, watch=lambda: fds.append(open_fds(pmed.proc.pid)))
        stop.set()
        stats = results.get(timeout=30)
        attacker.join(10)
        after, after_failures = scrape_for(port, 1)

        p50b, maxb = statistics.median(base), max(base)
        p50a, maxa = statistics.median(attack), max(attack)
        print(f"baseline:  {len(base)} scrapes, p50 {ms(p50b)}, max {ms(maxb)}")
        print(f"slowloris: {len(attack)} scrapes, p50 {ms(p50a)}, max {ms(maxa)}, "
              f"{len(failures)} failed")
        print(f"slow connections: {count} kept open by reconnecting, {stats['connects']} "
              f"connects, {stats['ended']} ended by pmed (evicted, refused or timed out), "
              f"{stats['failed_connects']} connects failed, {stats['bytes']} bytes sent")
        print(f"pmed's open descriptors during the attack: {min(fds)} to {max(fds)} "
              f"(soft limit {SYSTEMD_NOFILE})")

        assert not failures, f"{len(failures)} of {len(attack)} scrapes failed: {failures[:5]}"
        assert not after_failures, f"scrapes failed after the attack: {after_failures[:5]}"
        # The attack was real: the slow connections filled every slot,
        # and pmed made room for the scrapes by closing some of them.
        assert max(fds) >= CAP, f"pmed never held {CAP} connections: {max(fds)} descriptors"
        assert stats["ended"] >= count - CAP, f"pmed closed too few slow connections: {stats}"
        assert max(fds) < SYSTEMD_NOFILE - 100, f"pmed came close to its descriptor limit: {max(fds)}"
        assert p50a <= p50b + 0.003, \
            f"median scrape latency rose from {ms(p50b)} to {ms(p50a)} under attack"
        assert maxa <= maxb + 0.010, \
            f"slowest scrape went from {ms(maxb)} to {ms(maxa)} under attack"
        log = pmed.log()
        assert "accept" not in log, f"pmed could not accept:\n{log}"
        assert pmed.stop() == 0, f"pmed did not exit cleanly:\n{pmed.log()}"
        pmed = None
    finally:
        stop.set()
        if attacker is not None and attacker.is_alive():
            attacker.join(10)
            if attacker.is_alive():
                attacker.kill()
        if pmed is not None:
            pmed.kill_all()
        w.cleanup()


def test_burst():
    count = 1500
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = count + 100
    if hard != resource.RLIM_INFINITY and hard < need:
        print(f"SKIP: the hard RLIMIT_NOFILE is {hard}; the burst needs {need} descriptors")
        return SKIP
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    w = Workdir()
    pmed = None
    socks = []
    try:
        pmed, port = start(w)
        # All at once: every connection is made and its request sent
        # before any answer is read.
        t0 = time.monotonic()
        for _ in range(count):
            s = connect(port)
            s.sendall(GET_METRICS)
            s.setblocking(False)
            socks.append(s)
        sent = time.monotonic() - t0

        poller = select.poll()
        state = {}
        for s in socks:
            poller.register(s, select.POLLIN)
            state[s.fileno()] = [s, b"", None]  # socket, bytes read, outcome
        pending = len(socks)
        deadline = time.monotonic() + 20
        resolved_at = []
        while pending and time.monotonic() < deadline:
            for fd, _ in poller.poll(500):
                entry = state[fd]
                s = entry[0]
                try:
                    chunk = s.recv(65536)
                except BlockingIOError:
                    continue
                except ConnectionResetError:
                    chunk = b""
                entry[1] += chunk
                data = entry[1]
                outcome = None
                if b"\r\n\r\n" in data:
                    head, _, body = data.partition(b"\r\n\r\n")
                    length = int([l.split(b":")[1] for l in head.split(b"\r\n")
                                  if l.lower().startswith(b"content-length:")][0])
                    if len(body) >= length:
                        outcome = head.split(b" ")[1].decode()
                        if outcome == "200" and b"answer 42" not in body:
                            outcome = "200 without the sample"
                if outcome is None and not chunk:
                    outcome = "closed"
                if outcome is not None:
                    entry[2] = outcome
                    poller.unregister(fd)
                    pending -= 1
                    resolved_at.append(time.monotonic() - t0)
        outcomes = {}
        for _, _, outcome in state.values():
            outcomes[outcome or "no answer"] = outcomes.get(outcome or "no answer", 0) + 1
        print(f"{count} connections opened and sent in {sent:.2f} s; outcomes {outcomes}; "
              f"last resolved {max(resolved_at):.2f} s after the first connect")
        print(f"pmed's open descriptors with the burst's answered connections still open: "
              f"{open_fds(pmed.proc.pid)}")

        assert pending == 0, f"{pending} connections got neither an answer nor a close: {outcomes}"
        unexpected = set(outcomes) - {"200", "503"}
        assert not unexpected, f"answers other than 200 or 503: {outcomes}"
        assert outcomes.get("200", 0) >= CAP, f"fewer than {CAP} clients were served: {outcomes}"
        # Everything was decided within moments of being sent.
        assert max(resolved_at) < sent + 3, f"the last client waited {max(resolved_at):.2f} s"

        # The answered clients keep their connections open: the slots are
        # full of idle ones, and a real scrape still gets in at once.
        took, error = scrape(port)
        print(f"a scrape after the burst: {ms(took)}")
        assert error is None, f"the scrape after the burst failed: {error}"
        assert took < 0.5, f"the scrape after the burst took {ms(took)}"
        for s in socks:
            s.close()
        socks = []
        assert "accept" not in pmed.log(), f"pmed could not accept:\n{pmed.log()}"
        assert pmed.stop() == 0, f"pmed did not exit cleanly:\n{pmed.log()}"
        pmed = None
    finally:
        for s in socks:
            s.close()
        if pmed is not None:
            pmed.kill_all()
        w.cleanup()


def test_pipelining():
    w = Workdir()
    pmed = None
    try:
        pmed, port = start(w)
        with connect(port) as s:
            # Three requests in one write, answered in the order asked.
            s.sendall(GET_METRICS +
                      b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" +
                      b"GET /-/healthy HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            buf = b""
            answers = []
            for _ in range(3):
                status, headers, body, buf = read_response(s, buf)
                answers.append((status, headers, body))
            (m_status, m_headers, m_body), (h_status, h_headers, h_body), \
                (k_status, k_headers, k_body) = answers
            assert m_status == 200 and b"answer 42" in m_body, f"1st answer: {answers[0]}"
            assert m_headers["content-type"].startswith("text/plain; version=0.0.4"), answers[0]
            assert h_status == 200 and h_headers["content-type"].startswith("application/json"), \
                f"2nd answer: {answers[1]}"
            assert b'"app"' in h_body, f"2nd answer: {answers[1]}"
            assert k_status == 200 and k_body == b"OK\n", f"3rd answer: {answers[2]}"
            for status, headers, _ in answers:
                assert "connection" not in headers, f"keep-alive was not kept: {headers}"
            assert buf == b"", f"more than three answers: {buf[:100]!r}"
            # Kept alive: the same connection serves a fourth request later,
            # and HEAD on it has no body.
            time.sleep(0.5)
            s.sendall(b"HEAD /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" + GET_METRICS)
            status, headers, body, buf = read_response(s, buf, head=True)
            assert status == 200 and body == b"", f"HEAD: {status} {headers} {body[:80]!r}"
            # The length of the body not sent (self-metrics change it
            # from one scrape to the next); had a body been sent, it would
            # be read below as the next status line.
            assert int(headers["content-length"]) > 1000, headers
            status, _, body, buf = read_response(s, buf)
            assert status == 200 and b"answer 42" in body, f"after HEAD: {status} {body[:80]!r}"
            # A last request with Connection: close is answered, then the
            # connection is closed.
            s.sendall(b"GET /-/healthy HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            status, headers, body, buf = read_response(s, buf)
            assert status == 200 and headers.get("connection") == "close", f"{status} {headers}"
            assert end_of(s, buf) == "closed"
        assert pmed.stop() == 0, f"pmed did not exit cleanly:\n{pmed.log()}"
        pmed = None
    finally:
        if pmed is not None:
            pmed.kill_all()
        w.cleanup()


def exchange(port, request, head=False):
    """Sends request on a new connection: (status, headers, body, how it ended)."""
    with connect(port) as s:
        s.sendall(request)
        status, headers, body, rest = read_response(s, head=head)
        return status, headers, body, end_of(s, rest)


def test_bad_requests():
    w = Workdir()
    pmed = None
    try:
        pmed, port = start(w)
        cases = [
            ("garbage", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 not HTTP\r\n\r\n",
             400, "closed"),
            ("a request line over 8 KiB", b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
             414, "closed"),
            ("headers over 8 KiB", b"GET /metrics HTTP/1.1\r\nHost: x\r\n" +
             b"".join(b"X-Fill-%d: %s\r\n" % (i, b"b" * 100) for i in range(200)) + b"\r\n",
             431, "closed"),
            ("a header line without a colon", b"GET /metrics HTTP/1.1\r\nHost: x\r\nNo colon\r\n\r\n",
             400, "closed"),
            ("both Content-Length and chunked",
             b"GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
             b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, "closed"),
            ("a method other than GET and HEAD", b"DELETE /metrics HTTP/1.1\r\nHost: x\r\n\r\n",
             405, "open"),
            ("HTTP/1.0", b"GET /metrics HTTP/1.0\r\n\r\n", 200, "closed"),
            ("HTTP/1.0 with keep-alive", b"GET /metrics HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
             200, "open"),
        ]
        results = []
        for what, request, want_status, want_end in cases:
            status, headers, body, end = exchange(port, request)
            results.append(f"{what}: {status}, {end}")
            assert status == want_status, f"{what}: {status} {headers} {body[:100]!r}, want {want_status}"
            assert end == want_end, f"{what}: the connection was {end}, want {want_end}"
            if want_end == "closed":
                assert headers.get("connection") == "close", f"{what}: {headers}"
            if want_status == 405:
                assert headers.get("allow") == "GET, HEAD", f"{what}: {headers}"
            if want_status == 200:
                assert b"answer 42" in body, f"{what}: {body[:200]!r}"
        print("\n".join(results))
        # After all that, pmed serves as before.
        _, error = scrape(port)
        assert error is None, f"a scrape after the bad requests failed: {error}"
        assert pmed.stop() == 0, f"pmed did not exit cleanly:\n{pmed.log()}"
        pmed = None
    finally:
        if pmed is not None:
            pmed.kill_all()
        w.cleanup()


if __name__ == "__main__":
    pmetest.main({
        "slowloris": test_slowloris,
        "burst": test_burst,
        "pipelining": test_pipelining,
        "bad_requests": test_bad_requests,
    })
