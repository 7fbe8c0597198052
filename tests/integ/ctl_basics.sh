#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The programs start, answer --version/--help, and refuse bad usage clearly.
. "$(dirname "$0")/../lib/common.sh"

"$MTLSGW" --version | grep -q '^mtlsgw [0-9]' && gw_ok "mtlsgw --version"
"$MTLSGW_CTL" --version | grep -q '^mtlsgw-ctl [0-9]' && gw_ok "mtlsgw-ctl --version"
"$MTLSGW_CTL" --help | grep -q 'usage: mtlsgw-ctl' && gw_ok "mtlsgw-ctl --help"
gw_expect_fail "--config FILE is required" "$MTLSGW"
gw_expect_fail "unknown command 'frobnicate'" "$MTLSGW_CTL" frobnicate
"$MTLSGW_CTL" --help | grep -q '^  hsm ' && gw_ok "mtlsgw-ctl --help lists hsm"
"$MTLSGW_CTL" --help | grep -q '^  pki ' && gw_ok "mtlsgw-ctl --help lists pki"
"$MTLSGW_CTL" hsm --help | grep -q 'keygen' && gw_ok "mtlsgw-ctl hsm --help"
gw_expect_fail "usage: mtlsgw-ctl hsm" "$MTLSGW_CTL" hsm
gw_expect_fail "hsm keygen: --token LABEL is required" "$MTLSGW_CTL" hsm keygen --label x
gw_expect_fail "hsm list: --pin-file needs a value" "$MTLSGW_CTL" hsm list --token gw --pin-file
gw_expect_fail "hsm init: unexpected argument 'extra'" "$MTLSGW_CTL" hsm init --token gw extra
gw_expect_fail "pki: unknown command 'root'" "$MTLSGW_CTL" pki root
# getopt would take an abbreviation: "--so-pin=5678" for "--so-pin-file=5678",
# then read (and name) a file called after the PIN. Only full names count,
# and a PIN given on the command line is never echoed.
for args in "--so-pin=5678" "--so-pin 5678" "--pin=5678"; do
	# shellcheck disable=SC2086
	out=$("$MTLSGW_CTL" hsm init --token gw $args 2>&1) && gw_fail "hsm init $args accepted"
	case "$out" in *5678*) gw_fail "PIN echoed for '$args': $out" ;; esac
	case "$out" in *"never from the command line"*) ;; *) gw_fail "no PIN hint for '$args': $out" ;; esac
	gw_ok "hsm init $args: refused, PIN not echoed"
done
gw_expect_fail "unknown option '--tok=gw'" "$MTLSGW_CTL" hsm list --tok=gw
gw_expect_fail "unknown option '--tok'" "$MTLSGW_CTL" hsm list --tok gw
out=$("$MTLSGW_CTL" trust check --pin=5678 2>&1) && gw_fail "trust check --pin accepted"
case "$out" in *5678*) gw_fail "PIN echoed by trust check: $out" ;; esac
gw_ok "trust check --pin=...: refused, PIN not echoed"
gw_expect_fail "unknown option '--conf'" "$MTLSGW_CTL" ca roots --conf x.yaml
gw_done
