#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Install the Debian 12 packages mtlsgw builds, tests and demos with.
# Idempotent: does nothing when everything is present. Needs root.
set -euo pipefail

pkgs=(
	build-essential meson ninja-build pkg-config clang clang-format libclang-rt-14-dev
	libdpdk-dev dpdk libssl-dev openssl
	libp11-dev libp11-kit-dev libengine-pkcs11-openssl softhsm2 opensc
	libcyaml-dev libjansson-dev libmicrohttpd-dev libsqlite3-dev sqlite3
	libcurl4-openssl-dev libmimalloc-dev libsystemd-dev
	iproute2 ethtool nftables python3 python3-scapy curl nginx golang-cfssl procps testssl.sh
	linux-perf python3-matplotlib
)

missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "deps: missing packages: ${missing[*]}; run as root to install them" >&2
	exit 1
fi
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# nginx comes up as a service on install; the tests start their own.
systemctl disable --now nginx >/dev/null 2>&1 || service nginx stop >/dev/null 2>&1 || true
