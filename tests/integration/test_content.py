#!/usr/bin/env python3
# SPDX-License-Identifier: ISC
# End-to-end tests of the content types json, xml and prometheus: real
# documents of real services through pmed --once, compared with the series
# they must give.
#
# Each case is a directory under tests/data/<type>/ with config.yml (one
# service reading the documents through "source: @DATA@/<name>"), the
# documents, and expected.prom: the exposition lines pmed --once prints for
# the service, everything but the pme_ and process_ families.  An optional
# promtool.txt lists the lint findings promtool check metrics reports on the
# whole output, inherited from the source (node_exporter's camelCase names);
# without it promtool must find nothing.
import difflib
import os
import re
import shutil
import subprocess

import pmetest
from pmetest import Workdir, run_pmed, value

DATA = os.path.join(pmetest.SOURCE, "tests", "data")
# Files of a case directory that are not documents.
CASE_FILES = {"config.yml", "expected.prom", "promtool.txt"}
PROMTOOL_LINT = 3   # promtool check metrics: parsed, with lint findings


def cases(kind):
    """The case directories of a content type, in name order."""
    top = os.path.join(DATA, kind)
    found = sorted(d for d in os.listdir(top)
                   if os.path.isfile(os.path.join(top, d, "config.yml")))
    assert found, f"no case directory under {top}"
    return [os.path.join(top, d) for d in found]


def family_of(line):
    if line.startswith("# "):
        return line.split()[2]
    return re.match(r"[^{ ]+", line).group(0)


def service_lines(exposition):
    """The exposition without pmed's own families (pme_*, process_*)."""
    return [line for line in exposition.splitlines(keepends=True)
            if not family_of(line).startswith(("pme_", "process_"))]


def run_case(case):
    """pmed --once on a case; returns (CompletedProcess, workdir path)."""
    w = Workdir()
    for name in sorted(os.listdir(case)):
        if name in CASE_FILES:
            continue
        # Byte for byte: some documents have CRLF line ends.
        dest = os.path.join(w.path, name)
        shutil.copyfile(os.path.join(case, name), dest)
        os.chmod(dest, 0o644)
    with open(os.path.join(case, "config.yml")) as f:
        text = f.read().replace("@DATA@", w.path)
    cfg = w.config(text)
    try:
        return run_pmed("--once", "-f", cfg), w
    except BaseException:
        w.cleanup()
        raise


def promtool_problems(promtool, case, exposition):
    """'' when promtool agrees with the case, else what is wrong."""
    check = subprocess.run([promtool, "check", "metrics"], input=exposition,
                           capture_output=True, text=True)
    found = sorted(line for line in (check.stdout + check.stderr).splitlines() if line)
    listed = os.path.join(case, "promtool.txt")
    expected = []
    if os.path.exists(listed):
        with open(listed) as f:
            expected = sorted(line for line in f.read().splitlines() if line)
    want_rc = PROMTOOL_LINT if expected else 0
    if check.returncode == want_rc and found == expected:
        return ""
    return (f"promtool check metrics exited {check.returncode} (expected {want_rc}) "
            f"and said:\n" + "\n".join(found) + "\nexpected:\n" + "\n".join(expected))


def check_cases(kind):
    promtool = shutil.which("promtool")
    if promtool is None:
        print("promtool not installed (Debian package prometheus): "
              "the expositions are compared but not checked by promtool")
    failures = []
    for case in cases(kind):
        name = os.path.relpath(case, DATA)
        r, w = run_case(case)
        try:
            if r.returncode != 0:
                failures.append(f"{name}: pmed --once exited {r.returncode}:\n{r.stderr}")
                continue
            down = [line for line in r.stdout.splitlines()
                    if line.startswith("pme_source_up{") and line.endswith(" 0")]
            if down:
                failures.append(f"{name}: a group failed: {down}\n{r.stderr}")
            with open(os.path.join(case, "expected.prom")) as f:
                expected = f.read().splitlines(keepends=True)
            got = service_lines(r.stdout)
            if got != expected:
                diff = "".join(difflib.unified_diff(expected, got,
                                                    f"{name}/expected.prom", "pmed --once"))
                failures.append(f"{name}: the series differ:\n{diff}\nstderr:\n{r.stderr}")
            if promtool is not None:
                problem = promtool_problems(promtool, case, r.stdout)
                if problem:
                    failures.append(f"{name}: {problem}")
            print(f"{name}: {len(got)} lines as expected" if got == expected else
                  f"{name}: differs")
        finally:
            w.cleanup()
    assert not failures, "\n\n".join(failures)


def test_json():
    check_cases("json")


def test_xml():
    check_cases("xml")


def test_prometheus():
    check_cases("prometheus")


# A document whose entity would read a file, and one whose entities would
# expand to a billion copies of "lol": both refused before any metric is
# read, so neither the secret nor the expansion can reach a label.
XXE = """<?xml version="1.0"?>
<!DOCTYPE status [
  <!ENTITY secret SYSTEM "file://{secret}">
]>
<status><version>&secret;</version><connections>3</connections></status>
"""

LAUGHS = ('<?xml version="1.0"?>\n<!DOCTYPE lolz [\n  <!ENTITY lol "lol">\n' +
          "".join(f'  <!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">\n'
                  for i in range(1, 10)) +
          "]>\n<status><version>&lol9;</version><connections>3</connections></status>\n")

ENTITIES = """
services:
  app:
    metric_groups:
      xxe:
        source_type: file
        source: {xxe}
        content_type: xml
        metrics:
          xxe_connections: {{ filter: '/status/connections' }}
          xxe_version_info:
            type: info
            filter: '/status/version'
            labels: {{ version: "${{@}}" }}
      laughs:
        source_type: file
        source: {laughs}
        content_type: xml
        metrics:
          laughs_connections: {{ filter: '/status/connections' }}
          laughs_version_info:
            type: info
            filter: '/status/version'
            labels: {{ version: "${{@}}" }}
"""


def test_xml_entities():
    w = Workdir()
    try:
        token = "pme-secret-" + os.urandom(8).hex()
        # Readable by the service's user: only the parser stands between
        # the entity and the secret.
        secret = w.file("secret.txt", token + "\n")
        xxe = w.file("xxe.xml", XXE.format(secret=secret))
        laughs = w.file("laughs.xml", LAUGHS)
        cfg = w.config(ENTITIES.format(xxe=xxe, laughs=laughs))
        r = run_pmed("--once", "-f", cfg)
        assert r.returncode == 0, f"--once exit {r.returncode}: {r.stderr}"
        out = r.stdout + r.stderr
        assert token not in out, f"the secret file's content was exported:\n{out}"
        assert "lollollol" not in out, f"the entities were expanded:\n{out}"
        for group in ("xxe", "laughs"):
            assert value(r.stdout, "pme_source_up", service="app", group=group) == 0, r.stdout
            assert value(r.stdout, "pme_source_errors_total", service="app",
                         group=group) == 1, r.stdout
            assert value(r.stdout, f"{group}_connections") is None, r.stdout
            assert not re.search(rf"^{group}_version_info", r.stdout, re.M), r.stdout
            assert re.search(rf"group {group} failed: .*declares entities", r.stderr), \
                f"no entity refusal for group {group}:\n{r.stderr}"
    finally:
        w.cleanup()


if __name__ == "__main__":
    pmetest.main({
        "json": test_json,
        "xml": test_xml,
        "prometheus": test_prometheus,
        "xml_entities": test_xml_entities,
    })
