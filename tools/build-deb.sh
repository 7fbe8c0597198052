#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Build the Debian package mtlsgw_<version>_amd64.deb from this tree.
#
#   bash tools/build-deb.sh [--out DIR] [--keep]
#
# DIR defaults to build-deb/ (git-ignored); --keep leaves the build
# directory (its path is printed) for a look at the package's insides.
#
# Installs what the package build needs (idempotent, as tools/deps.sh; root),
# copies the tree (git's tracked and untracked, not ignored, files: the work
# tree as it is, never build/) to a temporary directory and runs
# dpkg-buildpackage there (debian/: dh with meson; DEB_BUILD_OPTIONS=nocheck,
# since tests/run.sh runs the suite), so nothing is left in the tree but
# DIR. The version is meson.build's project version. Runs lintian on the
# result and fails on any error (warnings are printed). The last line of
# its output is the .deb's path.
set -euo pipefail
cd "$(dirname "$0")/.."
src=$(pwd)

out=$src/build-deb
keep=0
while [ $# -gt 0 ]; do
	case $1 in
	--out)
		[ $# -ge 2 ] || { echo "build-deb: --out needs a directory" >&2; exit 2; }
		out=$2
		shift 2
		;;
	--keep)
		keep=1
		shift
		;;
	-h | --help)
		sed -n '3,17p' "$0" | sed 's/^# \{0,1\}//'
		exit 0
		;;
	*)
		echo "build-deb: unknown argument '$1' (try --help)" >&2
		exit 2
		;;
	esac
done

# the package build's own tools; the libraries are debian/control's
# Build-Depends, checked below by dpkg-checkbuilddeps
pkgs=(
	build-essential debhelper dpkg-dev devscripts fakeroot lintian
	meson ninja-build pkg-config
	libdpdk-dev libssl-dev libp11-dev libcyaml-dev libjansson-dev libmicrohttpd-dev
	libsqlite3-dev libcurl4-openssl-dev libmimalloc-dev libsystemd-dev
)
. tools/apt_install.sh
gw_apt_install build-deb "${pkgs[@]}"
dpkg-checkbuilddeps debian/control ||
	{ echo "build-deb: debian/control needs packages this script does not install: add them to pkgs" >&2; exit 1; }

version=$(meson introspect --projectinfo meson.build |
	/usr/bin/python3 -c 'import json, sys; print(json.load(sys.stdin)["version"])')
[ -n "$version" ] || { echo "build-deb: no project version in meson.build" >&2; exit 1; }

work=$(mktemp -d /tmp/mtlsgw-deb.XXXXXX)
if [ "$keep" = 1 ]; then
	echo "build-deb: keeping $work"
else
	trap 'rm -rf "$work"' EXIT
fi
tree=$work/mtlsgw-$version
mkdir -p "$tree"
if git -C "$src" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	# the files git knows or would add; deleted-but-tracked ones skipped
	while IFS= read -r -d '' f; do
		[ -e "$f" ] && printf '%s\0' "$f"
	done < <(git ls-files -z --cached --others --exclude-standard) |
		tar --null -T - -cf - | tar -C "$tree" -xf -
else
	tar -C "$src" --exclude='./build*' --exclude='./demo' -cf - . | tar -C "$tree" -xf -
fi

# debian/changelog names the version; a newer meson.build wins
if [ "$(dpkg-parsechangelog -l "$tree/debian/changelog" -S Version)" != "$version" ]; then
	(cd "$tree" && DEBFULLNAME="mtlsgw developers" DEBEMAIL="mtlsgw@example.org" \
		dch --newversion "$version" --distribution unstable --force-distribution \
		"Build of $version (tools/build-deb.sh)." >/dev/null 2>&1)
fi

echo "build-deb: building mtlsgw $version in $tree"
(cd "$tree" && DEB_BUILD_OPTIONS="nocheck${DEB_BUILD_OPTIONS:+ $DEB_BUILD_OPTIONS}" \
	dpkg-buildpackage -b -us -uc >"$work/build.log" 2>&1) || {
	tail -40 "$work/build.log" >&2
	echo "build-deb: dpkg-buildpackage failed (the last 40 lines above)" >&2
	exit 1
}
deb=$work/mtlsgw_${version}_amd64.deb
[ -f "$deb" ] || { echo "build-deb: no $deb after the build" >&2; exit 1; }

# errors fail the build; warnings and info are shown for the packager
lintian --fail-on error "$deb" >"$work/lintian.log" 2>&1 || {
	cat "$work/lintian.log" >&2
	echo "build-deb: lintian found errors in $(basename "$deb") (above)" >&2
	exit 1
}
# (as root it says that is not recommended: a build box's user is its own)
grep -v '^running with root privileges' "$work/lintian.log" | sed 's/^/lintian: /' || true

mkdir -p "$out"
cp "$deb" "$out/"
readlink -f "$out/$(basename "$deb")"
