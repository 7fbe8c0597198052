#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The programs start, answer --version/--help, and refuse bad usage clearly.
. "$(dirname "$0")/../lib/common.sh"

"$MTLSGW" --version | grep -q '^mtlsgw [0-9]' && gw_ok "mtlsgw --version"
"$MTLSGW_CTL" --version | grep -q '^mtlsgw-ctl [0-9]' && gw_ok "mtlsgw-ctl --version"
"$MTLSGW_CTL" --help | grep -q 'usage: mtlsgw-ctl' && gw_ok "mtlsgw-ctl --help"
gw_expect_fail "--config FILE is required" "$MTLSGW"
gw_expect_fail "unknown command 'frobnicate'" "$MTLSGW_CTL" frobnicate
gw_done
