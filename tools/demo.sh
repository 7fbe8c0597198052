#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The quick start: install what is missing, build, and run mtlsgw on its
# embedded default. Everything it makes lives under ./demo (or $GW_DEMO_DIR)
# and in a network namespace it creates and removes.
set -euo pipefail
cd "$(dirname "$0")/.."
src=$(pwd)

bash tools/deps.sh
[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build >/dev/null
ctl=$src/build/tools/mtlsgw-ctl

dir=${GW_DEMO_DIR:-$src/demo}
rm -rf "$dir"
mkdir -p "$dir/softhsm/tokens"
printf 'directories.tokendir = %s/softhsm/tokens\nobjectstore.backend = file\nlog.level = ERROR\n' \
	"$dir" > "$dir/softhsm/softhsm2.conf"
export SOFTHSM2_CONF=$dir/softhsm/softhsm2.conf
umask 077
# Demo PINs: random, in files only (never argv, never printed).
head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$dir/pin"
head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$dir/sopin"

echo "== SoftHSM token 'gw' in $dir/softhsm"
"$ctl" hsm init --token gw --pin-file "$dir/pin" --so-pin-file "$dir/sopin"
echo "== server key generated inside the token"
"$ctl" hsm keygen --token gw --pin-file "$dir/pin" --label server --type ec-p256
echo "== objects on the token"
"$ctl" hsm list --token gw --pin-file "$dir/pin"
echo "== demo PKI (root, intermediate, server cert for the HSM key, clients) in $dir/pki"
"$ctl" pki demo --dir "$dir/pki" --token gw --pin-file "$dir/pin" \
	--key "pkcs11:token=gw;object=server;type=private"
ls "$dir/pki"
echo "demo: done"
