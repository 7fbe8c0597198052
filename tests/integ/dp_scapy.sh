#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Crafted input (python3-scapy) against mtlsgw through its tap, in our own
# namespace: bad IP/TCP checksums, truncated and unsupported headers,
# segments outside the window, RSTs with wrong sequence numbers, SYN to a
# closed port; then a SYN flood far beyond the listener's backlog while a
# real kernel client still gets through (SYN cookies), with the gateway's
# memory bounded and still answering afterwards.
. "$(dirname "$0")/../lib/common.sh"

gw_gateway_config "$T/gw.yaml" "[1]" "  - name: echo
    address: $GW_GW_IP:7
    service: echo
    backlog: 64"
# The flood's half-open connections must outlive the flood and the real
# client after it: at the default 10 s from the first SYN, a flood that
# takes about that long on a loaded box left the backlog empty again when
# the client came, and its connections needed no cookie.
sed -i 's/^dataplane:$/dataplane:\n  tcp: { handshake_timeout: 120s }/' "$T/gw.yaml"
gw_start_gateway "$T/gw.yaml"
gw_scapy_quiet
out=$(gw_in "$GW_PY" "$GW_SRC/tests/integ/dp_scapy.py" "$GW_TAP" "$GW_GW_IP" "$GW_GW_PID" \
	"$T/gw.out" 2>&1) || { echo "$out"; gw_fail "crafted packets"; }
n=$(grep -c '^ok - ' <<<"$out")
echo "$out" | sed 's/^/  /'
gw_ok "crafted input: $n checks passed"

# --- SYN flood: 20000 SYNs from 10000 ports against a backlog of 64
rss0=$(awk '/VmRSS/ {print $2}' "/proc/$GW_GW_PID/status")
c0=$(gw_stat syncookie_tx)
gw_in "$GW_PY" - "$GW_TAP" "$GW_GW_IP" <<'PY' &
import sys
from scapy.all import Ether, IP, TCP, sendp, getmacbyip, conf
conf.verb = 0
iface, gw = sys.argv[1], sys.argv[2]
mac = getmacbyip(gw)
pkts = [Ether(dst=mac) / IP(src="10.99.0.1", dst=gw) /
        TCP(sport=40000 + (i % 10000), dport=7, flags="S", seq=i * 7919) for i in range(20000)]
sendp(pkts, iface=iface)
PY
wait $! || gw_fail "flood sender failed"
# the backlog is now full of half-open connections that never complete (the
# kernel's RSTs are dropped): a real client can only get in with a cookie
half=$(gw_wait_stat SYN_RCVD 60) || gw_fail "flood left only $half half-open connections"
k0=$(gw_stat syncookie_ok)
out=$(gw_peer echo "$GW_GW_IP" 7 1000000 4) || gw_fail "a real client after the SYN flood: $out"
k1=$(gw_wait_stat syncookie_ok $((k0 + 4))) || true
read -r c1 half < <(gw_stat syncookie_tx SYN_RCVD | paste -sd' ')
[ $((k1 - k0)) -ge 4 ] || gw_fail "the client's connections did not come from SYN cookies ($((k1 - k0)))"
gw_ok "backlog full ($half half-open): a kernel client still works through SYN cookies: $out"
[ $((c1 - c0)) -gt 0 ] || gw_fail "no SYN cookies sent under the flood"
[ "$half" -le 64 ] || gw_fail "$half half-open connections with a backlog of 64"
rss1=$(awk '/VmRSS/ {print $2}' "/proc/$GW_GW_PID/status")
[ $((rss1 - rss0)) -lt 65536 ] || gw_fail "memory grew from ${rss0} kB to ${rss1} kB under the flood"
gw_ok "flood: $((c1 - c0)) SYN cookies, $half half-open (backlog 64), RSS ${rss0} -> ${rss1} kB"
out=$(gw_peer echo "$GW_GW_IP" 7 1000000 4) || gw_fail "after the flood: $out"
gw_ok "after the flood: $out"
gw_peer ping "$GW_GW_IP" 1 >/dev/null || gw_fail "no ping after the flood"
gw_stop_gateway
gw_done
