#!/usr/bin/env bash
# SPDX-License-Identifier: ISC
# The configured pmed.service must score 2.0 or lower ("OK") in
# systemd-analyze security: the overall exposure, 0.0 (safe) to 10.0.
# Usage: unit_security.sh UNIT [LIMIT]
set -u
unit=$1 limit=${2:-2.0}
if ! command -v systemd-analyze >/dev/null; then
	echo "SKIP: systemd-analyze is not installed (Debian package systemd)"
	exit 77
fi
if ! systemd-analyze security --help 2>/dev/null | grep -q -- --offline; then
	echo "SKIP: this systemd-analyze has no --offline (systemd 250 or later needed)"
	exit 77
fi
table=$(systemd-analyze security --offline=true --no-pager "$unit" 2>&1)
score=$(printf '%s\n' "$table" |
	sed -n 's/.*Overall exposure level for [^:]*: \([0-9][0-9]*\.[0-9]\).*/\1/p')
if [ -z "$score" ]; then
	printf '%s\n' "$table"
	echo "FAIL: no overall exposure level in the output of systemd-analyze security"
	exit 1
fi
if ! awk -v s="$score" -v l="$limit" 'BEGIN { exit !(s <= l) }'; then
	printf '%s\n' "$table"
	echo "FAIL: $unit: exposure $score, more than $limit"
	exit 1
fi
# What is left exposed, for the log.
printf '%s\n' "$table" | grep '✗' || true
echo "$unit: exposure $score (limit $limit)"
