#!/usr/bin/env python3
# SPDX-License-Identifier: ISC
# Runs one libFuzzer target for meson's fuzz suite, on a scratch copy of its corpus.
#
# usage: run_libfuzzer.py TARGET WORKDIR CORPUS REGRESS LIBFUZZER-OPTION...
#
# WORKDIR is emptied, CORPUS (tests/fuzz/corpus/<target>) and REGRESS
# (tests/fuzz/regress/<target>, which may not exist yet) are copied into
# WORKDIR/corpus, and TARGET runs on that copy: libFuzzer runs every input
# of it first, then mutates them for -max_total_time seconds, adding what
# it finds to the copy; the source tree is never written.  Crash, leak,
# timeout and out-of-memory inputs go to WORKDIR/artifacts.  Exits with 0
# when TARGET did and wrote no artifact, else with 1, naming each artifact
# with how to reproduce it and keep it as a regression input.
import os
import shutil
import subprocess
import sys


def copy_inputs(src, dst, prefix):
    """Copy the regular files of src into dst; the number copied."""
    if not os.path.isdir(src):
        return 0
    n = 0
    for name in sorted(os.listdir(src)):
        path = os.path.join(src, name)
        if os.path.isfile(path):
            shutil.copyfile(path, os.path.join(dst, prefix + name))
            n += 1
    return n


def main():
    if len(sys.argv) < 5:
        sys.exit("usage: run_libfuzzer.py TARGET WORKDIR CORPUS REGRESS "
                 "LIBFUZZER-OPTION...")
    target, work, corpus, regress = (os.path.abspath(a) for a in sys.argv[1:5])
    options = sys.argv[5:]
    name = os.path.basename(target).removesuffix("_libfuzzer")

    shutil.rmtree(work, ignore_errors=True)
    scratch = os.path.join(work, "corpus")
    artifacts = os.path.join(work, "artifacts")
    os.makedirs(scratch)
    os.makedirs(artifacts)
    seeds = copy_inputs(corpus, scratch, "")
    if seeds == 0:
        sys.exit(f"{name}: no seed in {corpus}")
    regressions = copy_inputs(regress, scratch, "regress-")
    print(f"{name}: {seeds} seeds and {regressions} regression inputs in {scratch}",
          flush=True)

    cmd = [target, *options, "-artifact_prefix=" + artifacts + "/", scratch]
    print("running: " + " ".join(cmd), flush=True)
    rc = subprocess.call(cmd)

    known = {}
    if os.path.isdir(regress):
        for f in os.listdir(regress):
            with open(os.path.join(regress, f), "rb") as data:
                known[data.read()] = f
    found = sorted(os.listdir(artifacts))
    for f in found:
        path = os.path.join(artifacts, f)
        with open(path, "rb") as data:
            old = known.get(data.read())
        keep = (f"  it is tests/fuzz/regress/{name}/{old}: the bug is not fixed yet"
                if old else
                f"  keep it: cp {path} tests/fuzz/regress/{name}/<what-it-found>")
        print(f"{name}: libFuzzer wrote {path} ({os.path.getsize(path)} bytes)\n"
              f"  reproduce: {target} {path}\n"
              f"  the same, printing the input as a C literal (ninja builds it): "
              f"{target.removesuffix('_libfuzzer')} {path}\n" + keep, flush=True)
    grown = len(os.listdir(scratch))
    print(f"{name}: libFuzzer's exit status {rc}, {len(found)} inputs written; the "
          f"corpus went from {seeds + regressions} to {grown} inputs", flush=True)
    # libFuzzer exits with 77 on a crash, which meson would count as a
    # skipped test.
    return 0 if rc == 0 and not found else 1


if __name__ == "__main__":
    sys.exit(main())
