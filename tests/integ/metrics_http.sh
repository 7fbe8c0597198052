#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# admin.metrics_address on a running gateway, in our own namespace: curl
# scrapes http://127.0.0.1:9465/metrics (plain HTTP on TCP) after real mTLS
# handshakes (openssl s_client with client certificates) through two
# listeners. The text passes the strict exposition check
# (tests/lib/prom_check.py), names the same metrics as /v1/metrics on the
# admin socket, has mtlsgw_build_info and a handshake latency histogram per
# listener whose counts are the handshakes made. Only GET/HEAD /metrics is
# served there: 404 for /v1/status, /v1/metrics and other paths, 405 for
# POST /v1/reload and every other method (no reload happens). A port in
# use fails the start with a clear message; a reload that changes the
# address warns and the port stays. A flood of 200 connections (past the
# limit, some cut mid-request) logs at most 5 lines a second and a summary.
# Every metric the Grafana dashboard
# (contrib/grafana/mtlsgw.json) queries is in the live output.
. "$(dirname "$0")/../lib/common.sh"

C=$MTLSGW_CTL
S=$T/admin.sock
D=$T/demo
SNI=gw.example.org
PORT=9465
M=http://127.0.0.1:$PORT
PROM=$GW_SRC/tests/lib/prom_check.py
gw_token mtlsgw
mkdir -p "$T/state"
{
	"$C" hsm keygen --token mtlsgw --pin-file "$T/pin" --label server --type ec-p256 &&
		"$C" pki demo --dir "$D" --key "pkcs11:token=mtlsgw;object=server;type=private" \
			--pin-file "$T/pin" --trust-domain example.org --server-san "DNS:$SNI" --days 30
} >"$T/ctl.log" 2>&1 || gw_fail "PKI setup: $(tail -3 "$T/ctl.log")"

listener() { # NAME PORT
	cat <<EOF
  - name: $1
    address: $GW_GW_IP:$2
    service: tls-echo
    tls:
      identity:
        - cert: $D/server.chain.pem
          key: "pkcs11:token=mtlsgw;object=server;type=private"
          sni: [$SNI]
    trust: { mode: ca, certs: [$D/root.pem] }
EOF
}
config() { # FILE METRICS_ADDRESS
	gw_gateway_config "$1" "[1]" "$(listener api 8443)
$(listener ext 8444)"
	cat >>"$1" <<EOF
hsm: { pin_file: $T/pin }
state_dir: $T/state
admin: { socket: $S, metrics_address: "$2" }
EOF
}
config "$T/gw.yaml" "127.0.0.1:$PORT"

# a port in use: the start fails and says which and why
gw_netns
gw_bg ip netns exec "$GW_NS" "$GW_PY" -c "
import socket, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('127.0.0.1', $PORT)); s.listen(1); time.sleep(120)"
busy=$GW_LAST_PID
gw_wait 50 gw_in "$GW_PY" -c "import socket; socket.create_connection(('127.0.0.1', $PORT))" ||
	gw_fail "the port holder did not listen"
gw_expect_fail "CA/admin: admin.metrics_address 127.0.0.1:$PORT: Address already in use" \
	gw_in timeout 60 "$MTLSGW" --config "$T/gw.yaml"
kill "$busy"
wait "$busy" 2>/dev/null || true
gw_wait 50 sh -c "! ip netns exec $GW_NS $GW_PY -c \"import socket; socket.create_connection(('127.0.0.1', $PORT))\"" ||
	gw_fail "the port holder still listens"

gw_start_gateway "$T/gw.yaml"
gw_wait 100 test -S "$S" || gw_fail "no admin socket"

scrape() { # NAME: GET /metrics into $T/NAME.prom, headers into $T/NAME.hdr
	gw_in curl -sS --fail -D "$T/$1.hdr" -o "$T/$1.prom" "$M/metrics" ||
		gw_fail "curl $M/metrics failed"
}
check() { # NAME PYEXPR (tests/lib/prom_check.py)
	"$GW_PY" "$PROM" "$T/$1.prom" "$2" || gw_fail "metrics $1: $2 (see $T/$1.prom)"
}
H=mtlsgw_tls_handshake_seconds

scrape m0
grep -qi '^Content-Type: text/plain; version=0.0.4' "$T/m0.hdr" || gw_fail "content type: $(cat "$T/m0.hdr")"
check m0 "len(m) > 50 and typed['$H'] == 'histogram'"
check m0 "s('${H}_count', listener='api') == 0 and s('${H}_count', listener='ext') == 0"
check m0 "list(hist('$H', listener='api')) == ['0.0005', '0.001', '0.002', '0.005', '0.01', '0.025', '0.05', '0.1', '0.25', '0.5', '1', '2.5', '+Inf']"
gw_ok "GET $M/metrics: text/plain; version=0.0.4, $(grep -vc '^#' "$T/m0.prom") samples, strict parse; $H per listener, empty"

# build info: our version, the OpenSSL and DPDK we run with
ver=$("$MTLSGW" --version | awk '{print $2}')
ossl=$(openssl version | awk '{print $2}')
check m0 "[(l['version'], l['openssl']) for l in ls('mtlsgw_build_info')] == [('$ver', '$ossl')] and ls('mtlsgw_build_info')[0]['dpdk'][:2].isdigit() and s('mtlsgw_build_info') == 1"
gw_ok "mtlsgw_build_info: $(grep '^mtlsgw_build_info' "$T/m0.prom")"

# the same metrics as /v1/metrics on the admin socket
curl -sS --fail --unix-socket "$S" -o "$T/v1.prom" http://x/v1/metrics || gw_fail "curl /v1/metrics"
"$GW_PY" "$PROM" --names "$T/v1.prom" >"$T/v1.names" || gw_fail "/v1/metrics does not parse"
"$GW_PY" "$PROM" --names "$T/m0.prom" >"$T/m0.names"
cmp -s "$T/v1.names" "$T/m0.names" || gw_fail "/metrics and /v1/metrics differ: $(diff "$T/v1.names" "$T/m0.names")"
gw_ok "/metrics has the same $(wc -l <"$T/m0.names") metric names as /v1/metrics"

# real mTLS handshakes: 3 through api, 2 through ext
hello() { # PORT N
	local out
	out=$(gw_sclient "ping-$1-$2" -connect "$GW_GW_IP:$1" -servername "$SNI" \
		-CAfile "$D/root.pem" -verify_return_error -quiet -no_ign_eof \
		-cert "$D/client.pem" -key "$D/client.key" -cert_chain "$D/intermediate.pem")
	case "$out" in *"ping-$1-$2"*) ;; *) gw_fail "mTLS echo $1 #$2: $out" ;; esac
}
for i in 1 2 3; do hello 8443 "$i"; done
for i in 1 2; do hello 8444 "$i"; done
gw_ok "5 mTLS echoes: 3 through listener api, 2 through ext"

counted() {
	scrape m1
	"$GW_PY" "$PROM" "$T/m1.prom" "s('${H}_count', listener='api') == 3 and s('${H}_count', listener='ext') == 2" 2>/dev/null
}
gw_wait 50 counted || gw_fail "histogram counts: $(grep "^${H}_count" "$T/m1.prom")"
check m1 "s('${H}_count') == s('mtlsgw_tls_hs_ok_total') == 5"
check m1 "0 < s('${H}_sum', listener='api') < 3 * 2.5 and 0 < s('${H}_sum', listener='ext')"
check m1 "hist('$H', listener='api')['+Inf'] == 3 and hist('$H', listener='ext')['+Inf'] == 2"
gw_ok "after the handshakes: $(grep -E "^${H}_(count|sum)" "$T/m1.prom" | paste -sd' ')"

# nothing else on that port
code() { # METHOD PATH -> HTTP status
	gw_in curl -s -o "$T/body" -w '%{http_code}' -X "$1" "$M$2" || true
}
[ "$(gw_in curl -s -o "$T/head" -w '%{http_code}' -I "$M/metrics")" = 200 ] || gw_fail "HEAD /metrics"
grep -qi '^Content-Type: text/plain; version=0.0.4' "$T/head" || gw_fail "HEAD: $(cat "$T/head")"
grep -q '^mtlsgw_' "$T/head" && gw_fail "HEAD /metrics sent a body"
for p in /v1/status /v1/metrics /v1/connect/ca/roots / /metrics/ /metricsx; do
	c=$(code GET "$p")
	[ "$c" = 404 ] || gw_fail "GET $p: $c, want 404"
done
for mp in "POST /v1/reload" "POST /metrics" "PUT /metrics" "DELETE /metrics" "PUT /v1/connect/ca/configuration"; do
	# shellcheck disable=SC2086
	c=$(code $mp)
	[ "$c" = 405 ] || gw_fail "$mp: $c, want 405"
done
gw_in curl -s -D "$T/h405" -o /dev/null -X POST "$M/v1/reload" || true
grep -qi '^Allow: GET, HEAD' "$T/h405" || gw_fail "405 without Allow: $(cat "$T/h405")"
sleep 0.5
grep -q 'SIGHUP' "$T/gw.err" && gw_fail "a request on the metrics port reloaded: $(grep SIGHUP "$T/gw.err")"
gw_ok "HEAD /metrics 200 without body; GET /v1/status, /v1/metrics, / ... 404; POST /v1/reload, PUT/DELETE ... 405 (Allow: GET, HEAD); no reload"

# a peer flooding the port (far past its 16 connections, and requests cut
# in the middle) cannot flood the log: libmicrohttpd's messages come through
# our log, at most 5 a second, then one summary line; /metrics still answers
flood=$(
	ip netns exec "$GW_NS" "$GW_PY" - "$PORT" <<'PY'
import socket, sys, time
port = int(sys.argv[1])
t0 = time.monotonic()
held = []
for i in range(200):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    if i % 2:
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Cut: " + b"a" * 100)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        s.close()  # RST in the middle of the headers
    else:
        held.append(s)
time.sleep(1.5)
for s in held:
    s.close()
print(int(time.monotonic() - t0) + 1)
PY
) || gw_fail "the flood did not run"
gw_wait 50 grep -q 'admin: warning: metrics port: .* more libmicrohttpd message(s) suppressed' "$T/gw.err" ||
	gw_fail "no suppressed summary after the flood: $(tail -20 "$T/gw.err")"
"$GW_PY" - "$T/gw.err" "$flood" <<'PY' || gw_fail "the flood reached the log"
import re, sys
lines = open(sys.argv[1], errors="replace").read().splitlines()
secs = int(sys.argv[2])
mhd = [l for l in lines if l.startswith("mtlsgw: admin: warning: metrics port: ") and "suppressed" not in l]
# 5 a second at most, over the seconds the flood took (and one either side)
assert 1 <= len(mhd) <= 5 * (secs + 2), (secs, mhd)
# nothing from libmicrohttpd outside our format (before: bare lines on stderr)
bare = [l for l in lines if not l.startswith("mtlsgw: ") and
        re.search(r"reached connection limit|disconnected when reading|inbound connection", l)]
assert not bare, bare[:5]
PY
[ "$(code GET /metrics)" = 200 ] || gw_fail "/metrics after the flood"
gw_ok "a flood of 200 connections over ${flood} s: $(grep -c 'metrics port: ' "$T/gw.err") log lines, e.g. $(grep -m1 'suppressed' "$T/gw.err" | cut -c1-120)"

# the dashboard: every metric it queries is in the live output
"$GW_PY" "$PROM" --names "$T/m1.prom" >"$T/m1.names"
out=$("$GW_PY" "$GW_SRC/tests/lib/dash_check.py" "$GW_SRC/contrib/grafana/mtlsgw.json" "$T/m1.names") ||
	gw_fail "dashboard: $out"
gw_ok "dashboard: $out"

# a reload that changes the address: accepted, warned, the port stays
config "$T/gw2.yaml" "[::1]:9466"
cp "$T/gw2.yaml" "$T/gw.yaml"
kill -HUP "$GW_GW_PID"
gw_wait 100 grep -q 'reload (SIGHUP): reloaded' "$T/gw.err" || gw_fail "no reload: $(tail -5 "$T/gw.err")"
gw_wait 50 grep -q "admin.metrics_address changed (127.0.0.1:$PORT -> \[::1\]:9466): the metrics listener stays on 127.0.0.1:$PORT until a restart" "$T/gw.err" ||
	gw_fail "no warning for the changed address: $(grep SIGHUP "$T/gw.err")"
scrape m2
check m2 "s('${H}_count') == 5"
gw_ok "reload changing metrics_address: $(grep -o 'reload (SIGHUP): admin.metrics_address.*' "$T/gw.err")"

gw_stop_gateway
gw_done
