#!/usr/bin/env python3
# SPDX-License-Identifier: ISC
# Privilege separation, proven on a running pmed: throw-away users and
# groups, /proc/<pid>/status of every process, and what commands and files
# read as each service's user (SPEC §1).
import grp
import json
import os
import pwd
import re
import secrets
import shutil
import signal
import subprocess
import time

import pmetest
from pmetest import IS_ROOT, Pmed, Workdir, free_port, run_pmed, value

CAP_KILL, CAP_SETGID, CAP_SETUID = 5, 6, 7
SPAWNER_CAPS = (1 << CAP_KILL) | (1 << CAP_SETGID) | (1 << CAP_SETUID)


class Accounts:
    """Throw-away users and groups, removed again on exit."""

    def __init__(self):
        self.tag = "pmet" + secrets.token_hex(2)
        self.users, self.groups = [], []

    def group(self, suffix):
        name = f"{self.tag}{suffix}"
        subprocess.run(["groupadd", "--system", name], check=True)
        self.groups.append(name)
        return name

    def user(self, suffix, groups=()):
        name = f"{self.tag}{suffix}"
        cmd = ["useradd", "--system", "--user-group", "--no-create-home",
               "--home-dir", f"/nonexistent/{name}", "--shell", "/usr/sbin/nologin"]
        if groups:
            cmd += ["--groups", ",".join(groups)]
        subprocess.run(cmd + [name], check=True)
        self.users.append(name)
        return name

    def cleanup(self):
        for u in self.users:
            subprocess.run(["userdel", u], stderr=subprocess.DEVNULL)
        for g in self.users + self.groups:
            subprocess.run(["groupdel", g], stderr=subprocess.DEVNULL)


def needs_root():
    if not IS_ROOT:
        print("SKIP: switching users needs root (these tests run as root in CI)")
        return True
    return False


def group_ids(user):
    pw = pwd.getpwnam(user)
    return sorted(set(os.getgrouplist(user, pw.pw_gid)))


# One service: its identity as commands see it, and a file only user A may read.
SERVICE = """
  {svc}:
    labels: {{ svc: {svc} }}
    run_as: {run_as}
    metric_groups:
      ids:
        source_type: command
        source: [sh, -c, 'echo "uid=$(id -u) gid=$(id -g) groups=$(id -G | tr " " ,) home=$HOME user=$USER logname=$LOGNAME shell=$SHELL leaked=$(env | grep -c -E "^(NOTIFY_SOCKET|LISTEN_|WATCHDOG_)")"']
        metrics:
          id_uid: {{ filter: 'uid=(\\d+)' }}
          id_gid: {{ filter: 'gid=(\\d+)' }}
          id_leaked_variables: {{ filter: 'leaked=(\\d+)' }}
          id_info:
            type: info
            filter: 'groups=(?<groups>\\S*) home=(?<home>\\S*) user=(?<user>\\S*) logname=(?<logname>\\S*) shell=(?<shell>\\S*)'
            value: "1"
            labels: {{ groups: "${{groups}}", home: "${{home}}", user: "${{user}}", logname: "${{logname}}", shell: "${{shell}}" }}
      secret:
        source_type: file
        source: {secret}
        metrics:
          secret_value: {{ filter: 'secret=(\\d+)' }}
"""


def three_users_config(port, sup, a, b, c, shared, secret):
    text = (f'exporter:\n  listen: ["127.0.0.1:{port}"]\n  interval: 1s\n  user: {sup}\n'
            "services:")
    text += SERVICE.format(svc="a", run_as=f"{{ user: {a} }}", secret=secret)
    text += SERVICE.format(svc="b", run_as=f"{{ user: {b} }}", secret=secret)
    text += SERVICE.format(svc="c", run_as=f"{{ user: {c}, group: {shared} }}", secret=secret)
    return text


def status(pid):
    st = pmetest.proc_status(pid)
    assert st is not None, f"process {pid} is gone"
    return st


def caps(st):
    return {k: int(st[k], 16) for k in ("CapInh", "CapPrm", "CapEff", "CapAmb")}


def ids(st, key):
    return [int(x) for x in st[key].split()]


def process_tree(pmed_pid):
    procs = pmetest.all_processes()
    spawners = [p for p, v in procs.items() if v[0] == pmed_pid]
    assert len(spawners) == 1, f"pmed should have one child, the spawner: {spawners}"
    workers = {}
    for p, v in procs.items():
        if v[0] == spawners[0]:
            with open(f"/proc/{p}/cmdline") as f:
                argv = f.read().split("\0")
            workers[argv[1]] = p
    return spawners[0], workers


def check_worker(pid, user, gid, groups):
    st = status(pid)
    uid = pwd.getpwnam(user).pw_uid
    assert ids(st, "Uid") == [uid] * 4, f"worker {user}: Uid {st['Uid']}"
    assert ids(st, "Gid") == [gid] * 4, f"worker {user}: Gid {st['Gid']}"
    assert sorted(ids(st, "Groups")) == groups, f"worker {user}: Groups {st['Groups']} != {groups}"
    assert caps(st) == {"CapInh": 0, "CapPrm": 0, "CapEff": 0, "CapAmb": 0}, caps(st)
    assert st["NoNewPrivs"] == "1", st["NoNewPrivs"]
    with open(f"/proc/{pid}/environ") as f:
        names = sorted(e.split("=", 1)[0] for e in f.read().split("\0") if e)
    assert names == ["HOME", "LOGNAME", "PATH", "SHELL", "USER"], f"worker env: {names}"
    links = {int(fd): os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")}
    assert links[3].startswith("socket:"), links
    assert [fd for fd, l in links.items() if l.startswith("socket:")] == [3], links
    # 0-2 are the standard streams (stderr is pmed's own under -d).
    assert not [l for fd, l in links.items() if fd > 2 and l.startswith("/")
                and l != "/dev/null"], f"worker {user} holds files open: {links}"


def check_collected(body, accounts):
    """What commands and files saw, as each service's user."""
    for svc, user, gid in accounts:
        pw = pwd.getpwnam(user)
        assert value(body, "id_uid", svc=svc) == pw.pw_uid, (svc, body)
        assert value(body, "id_gid", svc=svc) == gid, (svc, body)
        assert value(body, "id_leaked_variables", svc=svc) == 0, (svc, body)
        groups = ",".join(str(g) for g in sorted(set(os.getgrouplist(user, pw.pw_gid)) | {gid}))
        found = [dict(ls) for (n, ls), v in pmetest.parse_metrics(body).items()
                 if n == "id_info" and ("svc", svc) in ls]
        assert len(found) == 1, (svc, found)
        info = found[0]
        seen = ",".join(str(g) for g in sorted(int(x) for x in info["groups"].split(",")))
        assert seen == groups, f"{svc}: id -G says {seen}, expected {groups}"
        assert (info["home"], info["user"], info["logname"], info["shell"]) == \
            (pw.pw_dir, user, user, pw.pw_shell), (svc, info)


def run_three_users(launch, mode):
    """Three services under three users; launch(config, port, workdir) -> Pmed,
    which must say it runs in the given mode."""
    acc = Accounts()
    w = Workdir()
    pmed = None
    try:
        shared = acc.group("s")
        sup = acc.user("p")
        a, b, c = acc.user("a"), acc.user("b", [shared]), acc.user("c")
        secret = w.file("secret.txt", "secret=4242\n", mode=0o600)
        os.chown(secret, pwd.getpwnam(a).pw_uid, pwd.getpwnam(a).pw_gid)
        port = free_port()
        cfg = w.file("pme.yml", three_users_config(port, sup, a, b, c, shared, secret))
        pmed = launch(cfg, port, w)
        body = pmed.wait_for(lambda b_: all(value(b_, "id_uid", svc=s) is not None
                                            for s in "abc")
                             and value(b_, "pme_source_up", service="b", group="secret") == 0,
                             "every service's ids")
        shared_gid = grp.getgrnam(shared).gr_gid
        accounts = [("a", a, pwd.getpwnam(a).pw_gid), ("b", b, pwd.getpwnam(b).pw_gid),
                    ("c", c, shared_gid)]
        check_collected(body, accounts)

        # Files are opened as the service's user: only a reads a's secret.
        assert value(body, "secret_value", svc="a") == 4242, body
        assert value(body, "secret_value", svc="b") is None, body
        assert value(body, "pme_source_up", service="c", group="secret") == 0, body
        _, _, health = pmed.request("/health")
        err = json.loads(health)["services"]["b"]["groups"]["secret"]["error"]
        assert "Permission denied" in err, err

        # Every process, from /proc.
        st = status(pmed.proc.pid)
        sup_pw = pwd.getpwnam(sup)
        assert ids(st, "Uid") == [sup_pw.pw_uid] * 4, st["Uid"]
        assert ids(st, "Gid") == [sup_pw.pw_gid] * 4, st["Gid"]
        assert caps(st) == {"CapInh": 0, "CapPrm": 0, "CapEff": 0, "CapAmb": 0}, caps(st)
        spawner, workers = process_tree(pmed.proc.pid)
        sp = status(spawner)
        assert ids(sp, "Uid") == [sup_pw.pw_uid] * 4, sp["Uid"]
        assert caps(sp) == {"CapInh": 0, "CapPrm": SPAWNER_CAPS, "CapEff": SPAWNER_CAPS,
                            "CapAmb": 0}, caps(sp)
        assert sorted(workers) == ["a", "b", "c"], workers
        for svc, user, gid in accounts:
            check_worker(workers[svc], user, gid,
                         sorted(set(os.getgrouplist(user, pwd.getpwnam(user).pw_gid))))
        assert f"({mode} mode," in pmed.log(), pmed.log()
    finally:
        if pmed is not None:
            pmed.stop()
            pmed.kill_all()
        w.cleanup()
        acc.cleanup()


def test_root_three_users():
    """Started as root: switches to exporter.user; workers under three users."""
    if needs_root():
        return pmetest.SKIP

    def launch(cfg, port, w):
        env = dict(os.environ, NOTIFY_SOCKET="/run/pme-test-nonexistent", LISTEN_FDS="1",
                   LISTEN_PID="1", WATCHDOG_USEC="1000000")
        return Pmed(cfg, port, env=env)
    run_three_users(launch, "root")


class SetprivPmed(Pmed):
    """pmed started the way systemd starts pmed.service: as an ordinary
    user holding CAP_SETUID, CAP_SETGID and CAP_KILL as ambient capabilities."""

    def __init__(self, cfg, port, w, user):
        for exe in (pmetest.PMED, pmetest.WORKER):
            shutil.copy(exe, w.path)
        wrap = ["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups",
                "--inh-caps=-all,+setuid,+setgid,+kill",
                "--ambient-caps=-all,+setuid,+setgid,+kill",
                "--bounding-set=-all,+setuid,+setgid,+kill"]
        super().__init__(cfg, port, command=wrap + [os.path.join(w.path, "pmed")])


def test_capabilities_mode():
    """Started as systemd does: the spawner keeps exactly three capabilities."""
    if needs_root():
        return pmetest.SKIP
    if subprocess.run(["setpriv", "--help"], capture_output=True, text=True).stdout.find(
            "--ambient-caps") < 0:
        print("SKIP: setpriv cannot set ambient capabilities here")
        return pmetest.SKIP

    def launch(cfg, port, w):
        with open(cfg) as f:
            sup = re.search(r"user: (\S+)", f.read()).group(1)
        return SetprivPmed(cfg, port, w, sup)
    run_three_users(launch, "capabilities")


ROOT_SERVICE = """services:
  r:
    run_as: {run_as}
{allow}    metric_groups:
      ids:
        source_type: command
        source: [id, -u]
        metrics:
          r_uid: {{ filter: '(\\d+)' }}
"""


def test_allow_root():
    """uid 0 and gid 0 only with allow_root, and then without capabilities."""
    if needs_root():
        return pmetest.SKIP
    w, acc = Workdir(), Accounts()
    try:
        sup = acc.user("p")
        for run_as in ("{ user: root }", f"{{ user: {sup}, group: root }}"):
            cfg = w.file("r.yml", f"exporter:\n  user: {sup}\n" +
                         ROOT_SERVICE.format(run_as=run_as, allow=""))
            r = run_pmed("-n", "-f", cfg)
            assert r.returncode == 78, f"{run_as}: exit {r.returncode}: {r.stderr}"
            assert re.search(r"r\.yml:\d+:\d+: service 'r': .*'allow_root: true'", r.stderr), \
                r.stderr
        port = free_port()
        cfg = w.file("r.yml", f'exporter:\n  listen: ["127.0.0.1:{port}"]\n  interval: 1s\n'
                     f"  user: {sup}\n" +
                     ROOT_SERVICE.format(run_as="{ user: root }", allow="    allow_root: true\n"))
        assert run_pmed("-n", "-f", cfg).returncode == 0
        pmed = Pmed(cfg, port)
        try:
            body = pmed.wait_for(lambda b: value(b, "r_uid") is not None, "the root service")
            assert value(body, "r_uid") == 0, body
            _, workers = process_tree(pmed.proc.pid)
            st = status(workers["r"])
            assert ids(st, "Uid") == [0] * 4, st["Uid"]
            assert caps(st) == {"CapInh": 0, "CapPrm": 0, "CapEff": 0, "CapAmb": 0}, caps(st)
            assert st["NoNewPrivs"] == "1"
        finally:
            pmed.stop()
            pmed.kill_all()
    finally:
        w.cleanup()
        acc.cleanup()


LEAK = """services:
  leaky:
    metric_groups:
      echo:
        source_type: command
        source: [echo, "1"]
        metrics:
          leaky_value: { filter: '(\\d+)' }
"""


def test_refusal_is_reported():
    """A worker started with a stray descriptor refuses to run, and pmed says so."""
    leaky = os.path.join(pmetest.BUILD, "tests", "integration", "leaky_worker")
    w, port = Workdir(), free_port()
    pmed = None
    try:
        shutil.copy(pmetest.PMED, w.path)
        shutil.copy(leaky, os.path.join(w.path, "pme-worker"))
        shutil.copy(pmetest.WORKER, os.path.join(w.path, "pme-worker.real"))
        header = f'exporter:\n  listen: ["127.0.0.1:{port}"]\n  interval: 1s\n'
        if IS_ROOT:
            header += f"  user: {pmetest.TEST_USER}\n"
        cfg = w.file("pme.yml", header + LEAK)
        pmed = Pmed(cfg, port, command=[os.path.join(w.path, "pmed")])
        deadline = time.time() + 20
        log = ""
        while time.time() < deadline:
            log = pmed.log()
            if "its self check failed" in log:
                break
            time.sleep(0.1)
        assert re.search(r"worker\[leaky\]: error: refusing to run: descriptors inherited "
                         r"besides the socket: \d+ \(/etc/passwd\)", log), log
        assert re.search(r"worker\[leaky\] \(pid \d+\) exited with status 77 "
                         r"\(its self check failed\)", log), log
        status_, _, health = pmed.request("/health")
        svc = json.loads(health)["services"]["leaky"]
        assert status_ == 503 and svc["state"] != "running", health
        assert value(pmed.metrics(), "leaky_value") is None
    finally:
        if pmed is not None:
            pmed.stop()
            pmed.kill_all()
        w.cleanup()


if __name__ == "__main__":
    pmetest.main({
        "root_three_users": test_root_three_users,
        "capabilities_mode": test_capabilities_mode,
        "allow_root": test_allow_root,
        "refusal_is_reported": test_refusal_is_reported,
    })
