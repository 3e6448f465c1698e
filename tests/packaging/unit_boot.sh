#!/usr/bin/env bash
# SPDX-License-Identifier: ISC
# Run pmed under its real unit, with every sandboxing directive of it, on a
# systemd of its own: systemd is booted as PID 1 of new pid, mount, cgroup,
# UTS and IPC namespaces, with a private /run and its own cgroups, and
# starts only pmed.service (DefaultDependencies=no: nothing of the host's
# boot runs).  The unit is the configured one with its paths pointed at a
# copy of the built pmed and pme-worker.  Checked: systemd sees READY=1
# and pmed's status line, the watchdog is set, /metrics has the data of a
# service run as pme and of one run as nobody, the supervisor holds no
# capability, a worker can add its own seccomp filter and Landlock rules,
# reload checks and signals, and stop leaves no process behind.  With SOCKET (pmed.socket), then: the socket started
# alone starts pmed at the first connection, pmed serves on it and not on
# exporter.listen, and a reload keeps it.
# Usage: unit_boot.sh UNIT PMED PME_WORKER [SOCKET] [--skip REASON]
set -u
unit=$1 pmed=$2 worker=$3
shift 3
socket=""
if [ -n "${1:-}" ] && [ "$1" != --skip ]; then
	socket=$1
	shift
fi
if [ "${1:-}" = --skip ]; then
	echo "SKIP: $2"
	exit 77
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "SKIP: booting systemd in namespaces needs root"
	exit 77
fi
systemd=/lib/systemd/systemd
for tool in "$systemd" unshare nsenter python3; do
	if ! command -v "$tool" >/dev/null; then
		echo "SKIP: $tool is not installed (Debian packages systemd, util-linux, python3)"
		exit 77
	fi
done
if [ -d /run/systemd/system ]; then
	# systemd is already PID 1: the unit is better tested by installing
	# the package; no second systemd is started beside it.
	echo "SKIP: systemd runs this machine; install the package to test pmed.service"
	exit 77
fi
if ! unshare --pid --mount --cgroup --fork true 2>/dev/null; then
	echo "SKIP: cannot create pid, mount and cgroup namespaces here"
	exit 77
fi

# Not in /tmp nor /run: the service has its own /tmp, and systemd its own
# /run.  Readable by every user, as the workers exec pme-worker from it.
tmp=$(mktemp -d /var/lib/pme-unit-boot.XXXXXX) || { echo "FAIL: mktemp"; exit 1; }
chmod 755 "$tmp"
cg_dirs=() outer="" pid1="" me=$BASHPID
cleanup() {
	# Killing PID 1 of the namespace kills every process in it.
	[ -n "$pid1" ] && kill -KILL "$pid1" 2>/dev/null
	[ -n "$outer" ] && wait "$outer" 2>/dev/null
	[ ${#cg_dirs[@]} -gt 0 ] || { rm -rf "$tmp"; return; }
	for _ in $(seq 1 50); do
		[ -z "$(cat $(find "${cg_dirs[@]}" -name cgroup.procs 2>/dev/null) 2>/dev/null |
			grep -vx "$me")" ] && break
		sleep 0.1
	done
	# Leave our cgroups, then remove them, deepest first: each is empty
	# once systemd and its processes are gone.
	for d in "${cg_dirs[@]}"; do
		echo "$me" >"${d%/*}/cgroup.procs" 2>/dev/null
		find "$d" -depth -type d -exec rmdir {} + 2>/dev/null
	done
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
fail() { echo "FAIL: $*"; [ -f "$tmp/pmed.log" ] && sed 's/^/  pmed: /' "$tmp/pmed.log"; exit 1; }

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$tmp/pme.yml" <<EOT
exporter:
  listen: ["127.0.0.1:$port"]
  interval: 1s
services:
  own:
    metric_prefix: boot_
    metric_groups:
      load:
        source_type: file
        source: /proc/loadavg
        metrics:
          load1: { description: Load., filter: '^(\S+)' }
      uid:
        source_type: command
        source: [id, -u]
        metrics:
          own_uid: { description: The command's uid., filter: '(\d+)' }
  other:
    metric_prefix: boot_
    run_as: { user: nobody }
    metric_groups:
      uid:
        source_type: command
        source: [id, -u]
        metrics:
          other_uid: { description: The command's uid., filter: '(\d+)' }
EOT
# Where pme-worker can confine itself further (pme.yml(5) sandbox), the
# service run as nobody does, with Landlock: the unit must let it.
cat >"$tmp/probe.yml" <<EOT
services:
  probe:
    sandbox: { landlock: [/usr] }
    standalone_metrics:
      one: { source_type: static, value: 1 }
EOT
sandbox=no
if "$pmed" -n -f "$tmp/probe.yml" >/dev/null 2>&1; then
	sandbox=yes
	sed -i 's|^    run_as: { user: nobody }$|&\n    sandbox: { landlock: [/usr, /etc, /proc] }|' "$tmp/pme.yml"
	echo "the service run as nobody confines itself with Landlock"
fi
mkdir "$tmp/bin"
cp "$pmed" "$tmp/bin/pmed" && cp "$worker" "$tmp/bin/pme-worker" || fail "cannot copy pmed"
chmod 755 "$tmp/bin" "$tmp/bin/pmed" "$tmp/bin/pme-worker"
chmod 644 "$tmp/pme.yml"
# The same unit; only where pmed and its configuration are differs.
sed -E -e "s|^(Exec[A-Za-z]*=)[^ ]*/pmed |\1$tmp/bin/pmed |" \
    -e "s| -f [^ ]*pme\.yml| -f $tmp/pme.yml|" \
    -e '/^EnvironmentFile=/d' "$unit" >"$tmp/pmed.service"
grep -q "^ExecStart=$tmp/bin/pmed -f $tmp/pme.yml" "$tmp/pmed.service" ||
	fail "cannot point $unit at the copy of pmed"
sport=""
if [ -n "$socket" ]; then
	# The socket on a port of its own, so that what pmed serves on tells
	# the two apart.
	sport=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	sed "s|^ListenStream=127\.0\.0\.1:10064$|ListenStream=127.0.0.1:$sport|" "$socket" >"$tmp/pmed.socket"
	grep -qx "ListenStream=127.0.0.1:$sport" "$tmp/pmed.socket" ||
		fail "no ListenStream=127.0.0.1:10064 in $socket to point at port $sport"
fi

# Inside the namespaces, before systemd: private /run, fresh cgroup mounts
# rooted at our own cgroups, the user pme if this machine has none, then
# systemd with only pmed.service to start.
cat >"$tmp/inner.sh" <<EOT
set -e
mount -t tmpfs -o mode=755 tmpfs /run
# A cgroup is mounted once per mount point: v1 hierarchies go on a new tmpfs.
if grep -q '^[^ ]* /sys/fs/cgroup tmpfs ' /proc/self/mounts; then
	mount -t tmpfs -o mode=755 tmpfs /sys/fs/cgroup
fi
while read -r fs dir type opts rest; do
	mkdir -p "\$dir"
	case \$type in
	cgroup) mount -t cgroup -o "\$opts" cgroup "\$dir" ;;
	cgroup2) mount -t cgroup2 -o "\$opts" cgroup2 "\$dir" ;;
	esac
done < "$tmp/cgroup-mounts"
if ! getent passwd pme >/dev/null; then
	for id in \$(seq 64990 -1 64900); do
		getent passwd \$id >/dev/null || getent group \$id >/dev/null || break
	done
	cp /etc/passwd "$tmp/passwd"; cp /etc/group "$tmp/group"
	echo "pme:x:\$id:\$id:pme:/nonexistent:/usr/sbin/nologin" >> "$tmp/passwd"
	echo "pme:x:\$id:" >> "$tmp/group"
	mount --bind "$tmp/passwd" /etc/passwd
	mount --bind "$tmp/group" /etc/group
fi
mkdir -p /run/systemd/system/pmed.service.d
cp "$tmp/pmed.service" /run/systemd/system/pmed.service
printf '[Unit]\nDefaultDependencies=no\n[Service]\nStandardOutput=append:$tmp/pmed.log\nStandardError=inherit\n' \
	> /run/systemd/system/pmed.service.d/boot.conf
printf '[Unit]\nDefaultDependencies=no\nWants=pmed.service\n' > /run/systemd/system/pme-boot.target
if [ -f "$tmp/pmed.socket" ]; then
	cp "$tmp/pmed.socket" /run/systemd/system/pmed.socket
	mkdir -p /run/systemd/system/pmed.socket.d
	printf '[Unit]\nDefaultDependencies=no\n' > /run/systemd/system/pmed.socket.d/boot.conf
fi
exec env -i container=pme-unit-boot PATH=/usr/sbin:/usr/bin:/sbin:/bin \
	$systemd --system --unit=pme-boot.target --log-target=console --log-level=notice
EOT
# Our own cgroup in every hierarchy, joined before the cgroup namespace is
# made, so that everything systemd creates stays below it.
grep -E '^[^ ]+ /sys/fs/cgroup[^ ]* cgroup2? ' /proc/self/mounts >"$tmp/cgroup-mounts"
while read -r fs dir type opts rest; do
	if [ "$type" = cgroup2 ]; then
		cur=$(awk -F: '$1 == 0 { print $3 }' /proc/self/cgroup)
	else
		cur=$(awk -F: -v o=",$opts," '$2 != "" && index(o, "," $2 ",") { print $3 }' /proc/self/cgroup)
	fi
	[ -n "$cur" ] || continue
	d=$dir${cur%/}/pme-unit-boot-$$
	mkdir "$d" || fail "cannot create cgroup $d"
	cg_dirs+=("$d")
	if [ -f "$d/cpuset.cpus" ]; then
		cat "${d%/*}/cpuset.cpus" >"$d/cpuset.cpus"
		cat "${d%/*}/cpuset.mems" >"$d/cpuset.mems"
	fi
	echo "$me" >"$d/cgroup.procs" || fail "cannot join cgroup $d"
done <"$tmp/cgroup-mounts"
[ ${#cg_dirs[@]} -gt 0 ] || { echo "SKIP: no cgroup file system under /sys/fs/cgroup"; exit 77; }

unshare --pid --mount --uts --ipc --cgroup --fork --propagation private \
    bash -c "mount -t proc proc /proc && exec bash $tmp/inner.sh" >"$tmp/systemd.log" 2>&1 &
outer=$!
for _ in $(seq 1 50); do
	pid1=$(pgrep -P "$outer" | head -n1)
	[ -n "$pid1" ] && break
	sleep 0.1
done
[ -n "$pid1" ] || fail "systemd did not start: $(cat "$tmp/systemd.log")"
in_ns() { nsenter -t "$pid1" -m -p "$@"; }

state=""
for _ in $(seq 1 150); do
	state=$(in_ns systemctl is-active pmed.service 2>/dev/null)
	case $state in active|failed) break ;; esac
	sleep 0.2
done
if [ "$state" != active ]; then
	in_ns systemctl status --no-pager pmed.service
	sed 's/^/  systemd: /' "$tmp/systemd.log"
	fail "pmed.service is '$state', not active (Type=notify: READY=1 not seen?)"
fi
echo "pmed.service is active"
show() { in_ns systemctl show -p "$1" --value pmed.service; }
[ "$(show WatchdogUSec)" = 30s ] || fail "pmed.service has WatchdogUSec=$(show WatchdogUSec), not 30s"

metrics=""
for _ in $(seq 1 100); do
	metrics=$(python3 -c 'import sys, urllib.request
print(urllib.request.urlopen(sys.argv[1], timeout=2).read().decode())' \
	    "http://127.0.0.1:$port/metrics" 2>/dev/null)
	printf '%s\n' "$metrics" | grep -q '^boot_other_uid ' &&
		printf '%s\n' "$metrics" | grep -q '^boot_own_uid ' && break
	sleep 0.2
done
pme_uid=$(in_ns id -u pme)
printf '%s\n' "$metrics" | grep -qx 'boot_load1 [0-9.]*' || fail "no /proc/loadavg data in /metrics"
printf '%s\n' "$metrics" | grep -qx "boot_own_uid $pme_uid" ||
	fail "no command run as pme (uid $pme_uid) in /metrics: $(printf '%s\n' "$metrics" | grep boot_)"
printf '%s\n' "$metrics" | grep -qx 'boot_other_uid 65534' ||
	fail "no command run as nobody in /metrics: $(printf '%s\n' "$metrics" | grep boot_)"
echo "/metrics has the data of a service run as pme and of one run as nobody"
status_text=$(show StatusText)
[ "$status_text" = "serving 2 services on 127.0.0.1:$port" ] ||
	fail "systemctl status shows '$status_text', not 'serving 2 services on 127.0.0.1:$port'"

main=$(in_ns systemctl show -p MainPID --value pmed.service)
status=$(in_ns cat "/proc/$main/status")
for want in 'CapEff:	0000000000000000' 'CapPrm:	0000000000000000' 'CapAmb:	0000000000000000' \
    'NoNewPrivs:	1' 'Seccomp:	2'; do
	printf '%s\n' "$status" | grep -qx "$want" || fail "supervisor: no '$want' in its status"
done
echo "the supervisor has no capability, no_new_privs and a seccomp filter"
if [ $sandbox = yes ]; then
	# Each worker stacks its own seccomp filter on the unit's, and nobody's
	# adds Landlock: a worker that could not would say so and go on.
	if grep 'warning: sandbox\.' "$tmp/pmed.log"; then
		fail "under the unit, a worker runs without its own sandbox"
	fi
	wpid=$(in_ns pgrep -xf 'pme-worker other' | head -n1)
	sup=$(printf '%s\n' "$status" | awk '$1 == "Seccomp_filters:" { print $2 }')
	wrk=$(in_ns cat "/proc/$wpid/status" 2>/dev/null | awk '$1 == "Seccomp_filters:" { print $2 }')
	if [ -n "$sup" ] && [ -n "$wrk" ] && [ "$wrk" -le "$sup" ]; then
		fail "the worker has $wrk seccomp filters, no more than the supervisor's $sup"
	fi
	echo "workers add their own seccomp filter${wrk:+ ($wrk filters, supervisor $sup)} and Landlock"
fi

in_ns systemctl reload pmed.service || fail "systemctl reload pmed failed"
grep -q 'SIGHUP' "$tmp/pmed.log" || fail "reload did not reach pmed"
in_ns systemctl stop pmed.service || fail "systemctl stop pmed failed"
result=$(in_ns systemctl show -p Result --value pmed.service)
[ "$result" = success ] || fail "pmed.service stopped with result '$result'"
left=$(in_ns ps -e -o pid=,args= | awk '$1 != 1 && $2 != "ps"')
[ -z "$left" ] || fail "processes left after stop: $left"
echo "reload and stop are clean"

if [ -n "$socket" ]; then
	listening() {
		python3 -c 'import socket, sys
try:
    socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=2).close()
except ConnectionRefusedError:
    sys.exit(1)' "$1"
	}
	in_ns systemctl start pmed.socket || fail "systemctl start pmed.socket failed"
	[ "$(in_ns systemctl is-active pmed.service)" != active ] ||
		fail "pmed.service started with pmed.socket, before any connection"
	# The first connection starts pmed.service, which serves on the socket.
	metrics=""
	for _ in $(seq 1 100); do
		metrics=$(python3 -c 'import sys, urllib.request
print(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())' \
		    "http://127.0.0.1:$sport/metrics" 2>/dev/null)
		printf '%s\n' "$metrics" | grep -q '^boot_other_uid ' && break
		sleep 0.2
	done
	printf '%s\n' "$metrics" | grep -qx 'boot_other_uid 65534' ||
		fail "no data on pmed.socket's port $sport: $(printf '%s\n' "$metrics" | grep boot_)"
	[ "$(in_ns systemctl is-active pmed.service)" = active ] ||
		fail "pmed.service is not active after a connection to pmed.socket"
	! listening "$port" || fail "pmed listens on exporter.listen ($port) beside pmed.socket"
	status_text=$(show StatusText)
	[ "$status_text" = "serving 2 services on 127.0.0.1:$sport (from systemd)" ] ||
		fail "systemctl status shows '$status_text' under pmed.socket"
	grep -q "listening on 127.0.0.1:$sport (socket from systemd)" "$tmp/pmed.log" ||
		fail "pmed does not log the socket from systemd"
	echo "pmed.socket starts pmed at the first connection, which serves on it alone"
	in_ns systemctl reload pmed.service || fail "systemctl reload pmed failed under pmed.socket"
	[ "$(grep -c 'SIGHUP' "$tmp/pmed.log")" -ge 2 ] || fail "the second reload did not reach pmed"
	listening "$sport" || fail "pmed.socket's port $sport is closed after a reload"
	python3 -c 'import sys, urllib.request
urllib.request.urlopen(sys.argv[1], timeout=5).read()' "http://127.0.0.1:$sport/metrics" ||
		fail "no answer on pmed.socket's port after a reload"
	in_ns systemctl stop pmed.socket pmed.service || fail "systemctl stop pmed.socket pmed.service failed"
	left=$(in_ns ps -e -o pid=,args= | awk '$1 != 1 && $2 != "ps"')
	[ -z "$left" ] || fail "processes left after stop: $left"
	echo "a reload keeps pmed.socket's socket, and stop is clean"
fi
in_ns systemctl exit >/dev/null 2>&1
for _ in $(seq 1 50); do kill -0 "$outer" 2>/dev/null || break; sleep 0.1; done
# Gone: its pid may be reused, so cleanup must not kill it.
kill -0 "$outer" 2>/dev/null || pid1=""
echo "pmed runs under pmed.service as it is installed"
