#!/usr/bin/env python3
# SPDX-License-Identifier: ISC
# What every pme configuration under packaging/examples/ exports must pass
# promtool check metrics (its linter included).  Each example runs
# once (pmed --once) as shipped but for its users: as root, every service
# and the exporter run as nobody, since the users and groups the examples
# name (pme, www-data with docker, libvirt) need not exist here; as an
# ordinary user, everything runs as that user.  Sources this machine lacks
# (Docker, libvirt, a web server) fail, and their groups still export
# their status: those lines are checked like the rest.
# Usage: examples_metrics.py PMED EXAMPLES_DIR
import os
import re
import shutil
import subprocess
import sys
import tempfile

SKIP = 77


def as_this_machine(text, user):
    """The example with every run_as and the exporter's user replaced."""
    text = re.sub(r"^(\s*)run_as:.*$", lambda m: f"{m.group(1)}run_as: {user}", text, flags=re.M)
    text = re.sub(r"^(\s+)user:.*$", lambda m: f"{m.group(1)}user: {user}", text, flags=re.M)
    if os.geteuid() == 0 and not re.search(r"^exporter:\n(?:[ #].*\n)*?\s+user:", text, re.M):
        text = re.sub(r"^exporter:\n", f"exporter:\n  user: {user}\n", text, count=1, flags=re.M)
    return text


def promtool(body):
    r = subprocess.run(["promtool", "check", "metrics"], input=body, capture_output=True,
                       text=True, timeout=60)
    # A parse error or a lint problem makes it exit non-zero.
    return r.returncode, (r.stdout + r.stderr).strip()


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: examples_metrics.py PMED EXAMPLES_DIR")
    pmed, examples = sys.argv[1], sys.argv[2]
    if shutil.which("promtool") is None:
        print("SKIP: promtool is not installed (Debian package prometheus)")
        return SKIP
    user = "nobody" if os.geteuid() == 0 else os.environ.get("USER") or os.getlogin()
    failures = 0
    checked = 0
    with tempfile.TemporaryDirectory() as d:
        os.chmod(d, 0o755)
        for name in sorted(os.listdir(examples)):
            if not name.endswith(".yml") or name in ("prometheus.yml", "alerts.yml"):
                continue
            with open(os.path.join(examples, name)) as f:
                config = os.path.join(d, name)
                with open(config, "w") as out:
                    out.write(as_this_machine(f.read(), user))
            os.chmod(config, 0o644)
            r = subprocess.run([pmed, "--once", "-f", config], capture_output=True, text=True,
                               timeout=120)
            body = r.stdout
            groups = len(re.findall(r"^pme_source_up\{", body, re.M))
            if not body or groups == 0:
                print(f"FAIL: {name}: pmed --once exported no group (exit {r.returncode}):\n"
                      f"{r.stderr[-3000:]}")
                failures += 1
                continue
            rc, out = promtool(body)
            if rc != 0:
                print(f"FAIL: {name}: promtool check metrics (exit {rc}):\n{out}")
                failures += 1
                continue
            checked += 1
            print(f"{name}: {groups} groups, {len(body.splitlines())} lines, promtool clean")
    print(f"{checked} examples checked, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
