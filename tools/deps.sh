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
	iproute2 ethtool nftables python3 python3-scapy curl nginx golang-cfssl etcd-server etcd-client procps testssl.sh
	linux-perf python3-matplotlib
)

. "$(dirname "$0")/apt_install.sh"
had_etcd=0
dpkg-query -W -f='${Status}' etcd-server 2>/dev/null | grep -q 'install ok installed' && had_etcd=1
gw_apt_install deps "${pkgs[@]}"
[ "$apt_installed" = 1 ] || exit 0
# nginx comes up as a service on install; the tests start their own.
systemctl disable --now nginx >/dev/null 2>&1 || service nginx stop >/dev/null 2>&1 || true
# so does etcd, on 127.0.0.1:2379; stopped only when installed just now (an
# etcd that was already here may be someone's)
if [ "$had_etcd" = 0 ]; then
	systemctl disable --now etcd >/dev/null 2>&1 || service etcd stop >/dev/null 2>&1 || true
fi
