# SPDX-License-Identifier: BSD-3-Clause
# gw_apt_install WHO PKG...: install the Debian packages among PKG that are
# not installed yet (noninteractive, no recommends), saying which, as WHO.
# Nothing to do: returns at once. Missing packages and not root: says what
# to install and exits 1. Sets apt_installed=1 when it installed any.
# Sourced by tools/deps.sh and tools/build-deb.sh.
gw_apt_install() {
	local who=$1 p
	local -a missing=()
	shift
	apt_installed=0
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	if [ "$(id -u)" -ne 0 ]; then
		echo "$who: missing packages: ${missing[*]}; run as root to install them" >&2
		exit 1
	fi
	echo "$who: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
	apt_installed=1
}
