#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# tcp-proxy through a tap to a kernel upstream server (python3, in our own
# namespace): an upload (client -> proxy -> upstream, SHA-256 checked at the
# upstream) and a download (upstream -> proxy -> client, SHA-256 checked at
# the client), byte-exact both ways; the upstream side is our active open.
# Then both again with 3% loss both ways on the client leg (gw_client_ns).
# Last, a tcp-proxy with `proxy_protocol: v2` in front of the strict PROXY v2
# upstream tests/lib/pp2_upstream.py: it must see the kernel client's real
# address and port as source and the listener's as destination, no TLV.
. "$(dirname "$0")/../lib/common.sh"

div=${GW_TEST_SCALE:-1}
n=$((50000000 / div))

gw_gateway_config "$T/gw.yaml" "[1]" "  - name: proxy
    address: $GW_GW_IP:8080
    service: tcp-proxy
    upstream:
      servers: [$GW_PEER_IP:9000]
  - name: proxy-pp2
    address: $GW_GW_IP:8081
    service: tcp-proxy
    upstream:
      servers: [$GW_PEER_IP:9001]
      proxy_protocol: v2"
gw_start_gateway "$T/gw.yaml"
gw_bg ip netns exec "$GW_NS" "$GW_PY" "$GW_SRC/tests/integ/dp_peer.py" server 9000 >"$T/up.log" 2>&1
gw_wait 50 grep -q listening "$T/up.log" || gw_fail "upstream server did not start"

out=$(gw_peer up "$GW_GW_IP" 8080 "$n") || gw_fail "upload through the proxy: $out"
gw_ok "client -> proxy -> upstream: $out"
out=$(gw_peer down "$GW_GW_IP" 8080 "$n") || gw_fail "download through the proxy: $out"
gw_ok "upstream -> proxy -> client: $out"
acc=$(gw_wait_stat conn_accepted 2) || gw_fail "conn_accepted=$acc"
con=$(gw_wait_stat conn_connected 2) || gw_fail "conn_connected=$con"
gw_ok "gateway accepted $acc and opened $con upstream connections"

# ten at once, both directions mixed
pids=()
for i in $(seq 5); do
	gw_peer up "$GW_GW_IP" 8080 $((n / 20)) >"$T/u$i" 2>&1 & pids+=($!)
	gw_peer down "$GW_GW_IP" 8080 $((n / 20)) >"$T/d$i" 2>&1 & pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || { cat "$T"/u* "$T"/d*; gw_fail "concurrent proxy transfer failed"; }; done
gw_ok "10 concurrent proxied transfers byte-exact"

# 3% loss both ways on the client leg, the client one routed hop away
# (gw_client_ns; the forward hook, since a drop on the kernel's local output
# path is re-sent by the kernel and never reaches us as a hole). n/5 each
# way keeps it a few seconds: dp-echo and tls-load carry the 100 MB runs.
gw_client_ns
gw_fwd_loss_start 3
cpeer() { gw_cin "$GW_PY" "$GW_SRC/tests/integ/dp_peer.py" "$@"; }
up=$(cpeer up "$GW_GW_IP" 8080 $((n / 5))) || gw_fail "upload with 3% loss: $up"
down=$(cpeer down "$GW_GW_IP" 8080 $((n / 5))) || gw_fail "download with 3% loss: $down"
gw_fwd_loss_check
gw_ok "3% loss both ways ($GW_LOSS_SUMMARY): $up; $down"
gw_fwd_loss_off

# upstream down: the client is closed, the gateway keeps running
kill -TERM "$GW_LAST_PID"
wait "$GW_LAST_PID" 2>/dev/null || true
gw_in "$GW_PY" - <<'PY' || gw_fail "client not closed when the upstream refuses"
import socket, sys
# either the proxy resets us as soon as the upstream refuses (maybe before
# our connect() returns) or it closes after accepting: never data, never hang
try:
    s = socket.create_connection(("10.99.0.2", 8080), timeout=10)
    s.sendall(b"UP 10\n")
    d = s.recv(100)
except (ConnectionResetError, BrokenPipeError):
    d = b""
sys.exit(0 if d == b"" else 1)
PY
refused=$(gw_wait_stat conn_refused 1) || gw_fail "conn_refused=$refused"
gw_ok "upstream refused: client connection closed, conn_refused=$refused"
gw_peer ping "$GW_GW_IP" 1 >/dev/null || gw_fail "gateway gone after a refused upstream"

# tcp-proxy with proxy_protocol v2: the header first, then the client's bytes
gw_pp2_upstream pp2 "$GW_PEER_IP:9001" hello
out=$(gw_in "$GW_PY" - "$GW_GW_IP" 8081 <<'PY'
import socket, sys
# the kernel's own TCP: its source address and port are what the header must carry
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)
print("%s:%d" % s.getsockname())
s.sendall(b"ping through tcp-proxy\n")
s.shutdown(socket.SHUT_WR)
sys.stdout.write(s.makefile("rb").read().decode())  # up to the upstream's FIN
PY
) || gw_fail "client through the PROXY v2 tcp-proxy: $out"
src=$(head -1 <<<"$out")
want="$src
hello - from $src over -
ping through tcp-proxy"
[ "$out" = "$want" ] || gw_fail "PROXY v2 tcp-proxy: got '$out', want '$want'"
# the upstream's parsed header: client as source, listener as destination,
# command PROXY, and nothing else (no SSL TLV, no client ID: not authenticated)
"$GW_PY" - "$T/pp2.log" "$src" "$GW_GW_IP:8081" <<'PY' || gw_fail "PROXY v2 header as parsed: $(tail -1 "$T/pp2.log")"
import json, sys
r = json.loads(open(sys.argv[1]).readlines()[-1])
want = {"command": "PROXY", "src": sys.argv[2], "dst": sys.argv[3], "header_len": 28}
bad = {k: (r.get(k), v) for k, v in want.items() if r.get(k) != v}
extra = [k for k in ("ssl", "client_id", "authority", "alpn", "error") if k in r]
sys.exit(1 if bad or extra else 0)
PY
gw_ok "tcp-proxy proxy_protocol v2: upstream saw client $src -> $GW_GW_IP:8081, no TLV"
gw_stop_gateway
gw_done
