#!/usr/bin/env bash
# SPDX-License-Identifier: ISC
# Every pme configuration under packaging/examples/ must pass pmed -n as
# shipped.  Examples may run a service under a group that another package
# creates (docker, libvirt), or under pme's own user, which the package
# creates: where that group or user does not exist on this machine, its
# "does not exist" error is the only one accepted, and since
# pmed -n reports every error of a file, the rest of the file is still
# checked.  prometheus.yml and alerts.yml are Prometheus' configuration
# and rules, not pme's.
# Usage: examples_check.sh PMED EXAMPLES_DIR
set -u
pmed=$1 dir=$2
# Groups of other packages that examples may name in run_as.
foreign_groups='docker|libvirt'
status=0 checked=0
for example in "$dir"/*.yml; do
	case $(basename "$example") in
	prometheus.yml | alerts.yml) continue ;;
	esac
	checked=$((checked + 1))
	err=$("$pmed" -n -f "$example" 2>&1 >/dev/null)
	rc=$?
	if [ $rc -eq 0 ]; then
		echo "$example: valid"
		[ -n "$err" ] && echo "$err"
		continue
	fi
	# Errors read "file:line:column: message"; notes are not errors.
	errors=$(printf '%s\n' "$err" | grep -E '^[^ ]+:[0-9]+:[0-9]+: ')
	other=$(printf '%s\n' "$errors" | grep -vE \
	    -e ": service '[^']+': run_as: group '($foreign_groups)' does not exist$" \
	    -e ": service '[^']+': run_as: user 'pme' does not exist$")
	if [ $rc -eq 78 ] && [ -n "$errors" ] && [ -z "$other" ]; then
		echo "$example: valid but for groups or users this machine does not have:"
		printf '%s\n' "$errors"
	else
		echo "FAIL: $example: pmed -n exited $rc:"
		printf '%s\n' "$err"
		status=1
	fi
done
if [ $checked -lt 5 ]; then
	echo "FAIL: expected at least 5 example configurations in $dir, found $checked"
	status=1
fi
exit $status
