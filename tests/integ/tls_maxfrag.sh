#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# max_fragment_length 512 (RFC 6066) under backpressure, through a tap in
# our own namespace: a python ssl client (the extension set through ctypes)
# with a 4 KB socket buffer that reads 2 KB at a time gets every byte, never
# a zero, from tls-echo (what it sent) and from tls-proxy (what a kernel
# upstream sent). With records of 512 bytes the gateway's TLS writes keep
# meeting a TCP send buffer with room for less than a record: gw_tls_write
# must report only what the held record carries.
. "$(dirname "$0")/../lib/common.sh"
. "$GW_SRC/tests/lib/tls.sh"

gw_tls_pki
gw_gateway_config "$T/gw.yaml" "[1]" "$(gw_tls_listener echo 8443 tls-echo)
$(gw_tls_listener proxy 8444 tls-proxy --upstream "$GW_PEER_IP:9011")"
gw_tls_hsm "$T/gw.yaml"
gw_start_gateway "$T/gw.yaml"
peer() { gw_in "$GW_PY" "$GW_SRC/tests/integ/tls_peer.py" "$@"; }

out=$(peer slowfrag echo "$GW_GW_IP" 8443 4000000 "$P" "$SNI") || gw_fail "tls-echo: $out"
gw_ok "tls-echo: $out"

gw_bg gw_in "$GW_PY" "$GW_SRC/tests/integ/tls_peer.py" source "$GW_PEER_IP" 9011 8000000
src=$GW_LAST_PID
sleep 0.5
out=$(peer slowfrag recv "$GW_GW_IP" 8444 8000000 "$P" "$SNI") || gw_fail "tls-proxy: $out"
wait "$src" || gw_fail "the upstream source failed"
gw_ok "tls-proxy: $out"
[ "$(gw_stat rec_err)" -eq 0 ] || gw_fail "record errors on the gateway: $(gw_stat rec_err)"
gw_stop_gateway
gw_done
