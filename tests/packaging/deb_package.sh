#!/usr/bin/env bash
# SPDX-License-Identifier: ISC
# Build the Debian package the way a packager would, from a clean copy of
# the source tree with packaging/debian as debian/, check it with lintian
# (no error, no warning) and check that it holds what pmed(8) and
# pme.yml(5) say is installed.
# Usage: deb_package.sh SOURCE_ROOT [--skip REASON]
# With PME_DEB_OUTPUT=DIR, the .deb, .buildinfo and .changes are kept there.
set -u
src=$1
out=""
[ -n "${PME_DEB_OUTPUT:-}" ] && out=$(realpath "$PME_DEB_OUTPUT")
if [ "${2:-}" = --skip ]; then
	echo "SKIP: $3"
	exit 77
fi
for tool in dpkg-buildpackage dpkg-checkbuilddeps dpkg-deb dh lintian; do
	if ! command -v "$tool" >/dev/null; then
		echo "SKIP: $tool is not installed (Debian packages dpkg-dev, debhelper, lintian)"
		exit 77
	fi
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' INT TERM
version=$(sed -n '1s/^pme (\([^)]*\)).*/\1/p' "$src/packaging/debian/changelog")
tree=$tmp/pme-$version
mkdir "$tree"

# The files git knows of, committed or new, as a clean checkout would have
# them plus work not yet committed; never a build directory.
if git -C "$src" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	(cd "$src" && git ls-files -co --exclude-standard -z |
		grep -zv -e '^build' -e '^debian/' |
		while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done |
		tar -c -f - --null -T - | tar -x -f - -C "$tree") || { echo "FAIL: cannot copy $src"; exit 1; }
else
	(cd "$src" && tar -c -f - --exclude='./build*' --exclude='./debian' --exclude='./.git' .) |
		tar -x -f - -C "$tree" || { echo "FAIL: cannot copy $src"; exit 1; }
fi
cp -a "$tree/packaging/debian" "$tree/debian"

cd "$tree" || exit 1
if ! missing=$(dpkg-checkbuilddeps 2>&1); then
	echo "SKIP: build dependencies missing: $missing"
	exit 77
fi
echo "=== dpkg-buildpackage -us -uc -b in $tree"
if ! DEB_BUILD_OPTIONS="parallel=2 ${DEB_BUILD_OPTIONS:-}" \
    dpkg-buildpackage -us -uc -b >"$tmp/build.log" 2>&1; then
	tail -n 80 "$tmp/build.log"
	echo "FAIL: dpkg-buildpackage failed"
	exit 1
fi
tail -n 5 "$tmp/build.log"
deb=$(ls "$tmp"/pme_"$version"_*.deb)
changes=$(ls "$tmp"/pme_"$version"_*.changes)

status=0
echo "=== lintian --fail-on error,warning (info and pedantic tags shown)"
# Lintian says it prefers not to run as root; it checks all the same.
lintian --fail-on error,warning --display-info --pedantic --tag-display-limit 0 \
    "$changes" 2>&1 | grep -v 'running with root privileges is not recommended'
if [ "${PIPESTATUS[0]}" -ne 0 ]; then
	echo "FAIL: lintian found errors or warnings"
	status=1
fi

echo "=== dpkg-deb -c $(basename "$deb")"
contents=$(dpkg-deb -c "$deb" | awk '{ print $6 }' | sed 's|^\./|/|')
# The unit directory is /lib on Debian 12, /usr/lib after it.
for want in /usr/sbin/pmed /usr/libexec/pme/pme-worker /etc/pme/pme.yml /etc/default/pme \
    '(/usr)?/lib/systemd/system/pmed\.service' '(/usr)?/lib/systemd/system/pmed\.socket' \
    /usr/lib/sysusers.d/pme.conf \
    /usr/share/man/man8/pmed.8.gz /usr/share/man/man8/pme-worker.8.gz \
    /usr/share/man/man5/pme.yml.5.gz /usr/share/man/man7/pme-proto.7.gz \
    /usr/share/doc/pme/copyright; do
	if ! printf '%s\n' "$contents" | grep -Eqx -- "$want"; then
		echo "FAIL: the package has no $want"
		status=1
	fi
done
conffiles=$(dpkg-deb -I "$deb" conffiles 2>/dev/null)
for want in /etc/pme/pme.yml /etc/default/pme; do
	if ! printf '%s\n' "$conffiles" | grep -qx -- "$want"; then
		echo "FAIL: $want is not a conffile"
		status=1
	fi
done
# The user pme exists before the unit is started, and the unit is enabled.
postinst=$(dpkg-deb -I "$deb" postinst 2>/dev/null)
users=$(printf '%s\n' "$postinst" | grep -n 'systemd-sysusers.*pme.conf' | head -n1 | cut -d: -f1)
start=$(printf '%s\n' "$postinst" | grep -n 'deb-systemd-invoke' | head -n1 | cut -d: -f1)
if [ -z "$users" ] || [ -z "$start" ] || [ "$users" -gt "$start" ]; then
	printf '%s\n' "$postinst"
	echo "FAIL: postinst does not run systemd-sysusers pme.conf before starting pmed.service"
	status=1
fi
if ! printf '%s\n' "$postinst" | grep -q "deb-systemd-helper.*enable.*pmed.service"; then
	echo "FAIL: postinst does not enable pmed.service"
	status=1
fi
# pmed.socket is the administrator's choice: postinst enables it again only
# where it was enabled (the snippet of dh_installsystemd --no-enable) and
# starts it never; it would not bind beside pmed.service.
if ! printf '%s\n' "$postinst" | grep -q "deb-systemd-helper debian-installed 'pmed.socket'" ||
    printf '%s\n' "$postinst" | grep -q "deb-systemd-invoke.*pmed\.socket"; then
	printf '%s\n' "$postinst"
	echo "FAIL: postinst enables or starts pmed.socket on installation"
	status=1
fi
if [ -n "$out" ]; then
	cp "$tmp"/pme_"$version"_* "$out"/ && echo "copied to $out"
fi
[ $status -eq 0 ] && echo "$(basename "$deb"): built, lintian clean, contents as documented"
exit $status
