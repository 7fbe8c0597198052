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
gw_done
