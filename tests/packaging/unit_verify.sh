#!/usr/bin/env bash
# SPDX-License-Identifier: ISC
# systemd-analyze verify on pmed.service as configured for the build tree
# (its ExecStart is the pmed just built): unknown or misspelt directives,
# bad values, missing executables and Documentation= pages that man cannot
# find all fail.  Any message counts, not only the exit status.  With
# SOCKET (pmed.socket), the two are verified together, UNIT as the
# pmed.service that the socket starts.
# Usage: unit_verify.sh UNIT MANDIR [SOCKET]
set -u
unit=$1 mandir=$2 socket=${3:-}
if ! command -v systemd-analyze >/dev/null; then
	echo "SKIP: systemd-analyze is not installed (Debian package systemd)"
	exit 77
fi
if ! command -v man >/dev/null; then
	echo "SKIP: man is not installed (Debian package man-db): verify checks Documentation= with it"
	exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# Documentation=man:pmed(8) man:pme.yml(5), looked up in the source tree.
for page in "$mandir"/*.[0-9]; do
	sec=${page##*.}
	mkdir -p "$tmp/man/man$sec"
	ln -s "$(realpath "$page")" "$tmp/man/man$sec/"
done
units=("$unit")
if [ -n "$socket" ]; then
	mkdir "$tmp/units"
	cp "$unit" "$tmp/units/pmed.service" && cp "$socket" "$tmp/units/" || exit 1
	units=("$tmp/units/${socket##*/}" "$tmp/units/pmed.service")
fi
out=$(MANPATH="$tmp/man" SYSTEMD_LOG_LEVEL=notice systemd-analyze verify "${units[@]}" 2>&1)
rc=$?
[ -z "$out" ] || printf '%s\n' "$out"
if [ $rc -ne 0 ] || [ -n "$out" ]; then
	echo "FAIL: systemd-analyze verify $unit $socket: exit status $rc, messages above"
	exit 1
fi
echo "$unit${socket:+ with $socket}: systemd-analyze verify OK"
