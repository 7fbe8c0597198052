#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# tls-proxy under load, through a tap in our own namespace, to a kernel TCP
# echo upstream: 100 MB byte-exact both ways, the same with 3% random loss
# both ways (nftables numgen in the forward hook, the client one routed hop
# away: gw_client_ns), and 250 concurrent mTLS clients. Afterwards
# no TLS connection is left. GW_TEST_SCALE=N divides the sizes.
. "$(dirname "$0")/../lib/common.sh"
. "$GW_SRC/tests/lib/tls.sh"

div=${GW_TEST_SCALE:-1}
big=$((100000000 / div))
conns=250

gw_tls_pki
gw_gateway_config "$T/gw.yaml" "[1]" \
	"$(gw_tls_listener proxy 8443 tls-proxy --backlog 1024 --upstream "$GW_PEER_IP:9007")"
gw_tls_hsm "$T/gw.yaml"
gw_start_gateway "$T/gw.yaml"
gw_bg gw_in "$GW_PY" "$GW_SRC/tests/integ/dp_peer.py" echo-server 9007 "$GW_PEER_IP"
gw_wait 50 gw_in bash -c "exec 3<>/dev/tcp/$GW_PEER_IP/9007" || gw_fail "echo upstream did not start"

peer() { gw_in "$GW_PY" "$GW_SRC/tests/integ/tls_peer.py" "$@"; }

out=$(peer bulk "$GW_GW_IP" 8443 "$big" "$P" "$SNI") || gw_fail "$out"
gw_ok "tls-proxy: $out"

out=$(peer many "$GW_GW_IP" 8443 "$conns" 65536 "$P" "$SNI") || gw_fail "$out"
gw_ok "tls-proxy: $out"
ok=$(gw_stat hs_ok)
[ "$ok" -ge $((conns + 1)) ] || gw_fail "hs_ok=$ok, expected >= $((conns + 1))"
gw_ok "gateway completed $ok handshakes, $(gw_stat hs_fail) failed"

# 3% loss both ways on a routed hop (gw_client_ns): the client in its own
# namespace, $GW_NS forwarding. A drop on the kernel's local output path is
# re-sent by the kernel itself and never reaches us as a hole, so the loss
# is in the forward hook. The upstream leg stays clean.
gw_client_ns
gw_fwd_loss_start 3
t0=$(date +%s)
out=$(gw_cin "$GW_PY" "$GW_SRC/tests/integ/tls_peer.py" bulk "$GW_GW_IP" 8443 "$big" "$P" "$SNI") ||
	gw_fail "with 3% loss: $out"
secs=$(($(date +%s) - t0))
gw_fwd_loss_check
gw_ok "3% loss both ways in ${secs}s ($GW_LOSS_SUMMARY): $out"
gw_fwd_loss_off

for _ in $(seq 100); do
	[ "$(gw_stat established)" -eq 0 ] && [ "$(gw_stat handshaking)" -eq 0 ] && break
	sleep 0.1
done
[ "$(gw_stat established)" -eq 0 ] || gw_fail "TLS connections left: $(gw_stat established)"
gw_ok "no TLS connection left; $(gw_stat close_notify_rx) close_notify received"
gw_stop_gateway
gw_done
