#!/usr/bin/env bash
# SPDX-License-Identifier: ISC
# The configuration the package installs as /etc/pme/pme.yml must pass
# pmed -n as shipped, and so must its commented-out examples once an
# operator uncomments them.
# Usage: example_config.sh PMED EXAMPLE
set -u
pmed=$1 example=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
status=0
if ! "$pmed" -n -f "$example"; then
	echo "FAIL: $example as shipped"
	status=1
fi
# Uncomment the examples: "  # key:" and "  #   more" lines under services.
sed -E -e 's/^  # ([a-z_]+:.*)$/  \1/' -e 's/^  # (  .*)$/  \1/' "$example" >"$tmp/uncommented.yml"
examples=$(diff "$example" "$tmp/uncommented.yml" | grep -c '^> ')
if [ "$examples" -lt 10 ]; then
	echo "FAIL: $example: expected commented-out examples, found $examples lines"
	status=1
fi
if ! "$pmed" -n -f "$tmp/uncommented.yml"; then
	cat -n "$tmp/uncommented.yml"
	echo "FAIL: $example with its examples uncommented"
	status=1
fi
services=$(grep -cE '^  [a-z_]+:$' "$tmp/uncommented.yml")
[ $status -eq 0 ] && echo "$example: valid, and valid with its examples uncommented ($services services)"
exit $status
