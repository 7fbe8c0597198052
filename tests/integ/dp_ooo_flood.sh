#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Out-of-order data is charged by buffer memory (tcp.c): hundreds of
# connections each sending 1-byte segments at scattered offsets (python3-
# scapy, in our own namespace) against a TLS listener must not drain the
# mbuf pool. Afterwards mbufs_in_use stays within the out-of-order ceiling
# (a quarter of the pool) plus slack, the drops are counted
# (rx_ooo_drop_mem), and a real client (openssl s_client with a client
# certificate) still completes an mTLS handshake and gets its echo.
. "$(dirname "$0")/../lib/common.sh"
. "$GW_SRC/tests/lib/tls.sh"

gw_tls_pki
# a small pool: 128 MB -> 27k mbufs, so the flood (200 x 200 = 40k
# segments) could drain it were each byte to keep its mbuf
GW_MEMORY_MB=128 gw_gateway_config "$T/gw.yaml" "[1]" \
	"$(gw_tls_listener inter 8443 tls-echo --sni --trust "{mode: ca, certs: [$P/int.pem]}")"
gw_tls_hsm "$T/gw.yaml"
gw_start_gateway "$T/gw.yaml"
gw_scapy_quiet
gw_in ip link set "$GW_TAP" txqueuelen 20000

sclient() { # one mTLS echo with a client certificate
	gw_sclient ping-ooo -connect "$GW_GW_IP:8443" -servername "$SNI" \
		-CAfile "$P/root.pem" -verify_return_error -quiet -no_ign_eof \
		-cert "$P/client.leaf.pem" -key "$P/client.key"
}
out=$(sclient)
case "$out" in *ping-ooo*) ;; *) gw_fail "mTLS echo before the flood: $out" ;; esac
read -r total base < <(gw_stat mbufs_total mbufs_in_use | paste -sd' ')
gw_ok "mTLS echo works; $base of $total mbufs in use"

d0=$(gw_stat rx_ooo_drop_mem)
out=$(gw_in "$GW_PY" "$GW_SRC/tests/integ/dp_ooo_flood.py" "$GW_TAP" "$GW_GW_IP" 8443 200 200 2>&1) ||
	{ echo "$out"; gw_fail "out-of-order flood"; }
gw_ok "$out"
sleep 0.5
read -r used d1 ooo < <(gw_stat mbufs_in_use rx_ooo_drop_mem rx_ooo | paste -sd' ')
# the ceiling is a quarter of the pool (one worker); RX rings and the
# handshakes' own buffers come on top
limit=$((total / 4 + 4096))
[ "$used" -le "$limit" ] || gw_fail "$used of $total mbufs in use after the flood (limit $limit)"
[ $((d1 - d0)) -gt 0 ] || gw_fail "no out-of-order drop counted at the ceiling (rx_ooo_drop_mem $d0 -> $d1, rx_ooo $ooo, $used mbufs in use)"
gw_ok "after the flood: $used of $total mbufs in use (limit $limit), rx_ooo $ooo, rx_ooo_drop_mem +$((d1 - d0))"
out=$(sclient)
case "$out" in *ping-ooo*) ;; *) gw_fail "mTLS echo during the flood's connections: $out" ;; esac
gw_ok "a real mTLS client still completes its handshake and gets its echo"
gw_stop_gateway
gw_done
