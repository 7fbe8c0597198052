#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# GET /v1/metrics on a running gateway, in our own namespace: curl over the
# admin socket gets Prometheus text (content type version=0.0.4) that a
# strict parser accepts (HELP/TYPE once per family before its samples,
# escaped label values, integer values); certificate expiry for every
# configured certificate: the builtin CA's root and issuer, the mesh
# listener's anchors and issued identity, the file identity and both trust
# anchors of a ca listener (one of them expiring in 5 days, which is also
# logged once as a warning); the dataplane/TCP/TLS counters grow after mTLS
# traffic through that listener, and connections by state are a gauge.
. "$(dirname "$0")/../lib/common.sh"

C=$MTLSGW_CTL
S=$T/admin.sock
D=$T/demo
SNI=gw.example.org
gw_token mtlsgw
mkdir -p "$T/state"
{
	"$C" hsm keygen --token mtlsgw --pin-file "$T/pin" --label server --type ec-p256 &&
		"$C" pki demo --dir "$D" --key "pkcs11:token=mtlsgw;object=server;type=private" \
			--pin-file "$T/pin" --trust-domain example.org --server-san "DNS:$SNI" --days 30
} >"$T/ctl.log" 2>&1 || gw_fail "PKI setup: $(tail -3 "$T/ctl.log")"
# a second anchor that expires in 5 days (inside the 30 and 7 day windows)
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 5 \
	-subj '/CN=soon "anchor"' -keyout "$T/soon.key" -out "$T/soon.pem" 2>/dev/null ||
	gw_fail "openssl req for the short anchor"
gw_ok "PKI made: server key in SoftHSM, demo root/intermediate, a 5-day anchor"

gw_gateway_config "$T/gw.yaml" "[1]" "  - name: web
    address: $GW_GW_IP:8443
    service: tls-echo
    tls: { client_auth: required }
    trust: { mode: mesh, allow: { spiffe: [\"spiffe://example.org/ns/*\"] } }
  - name: ext
    address: $GW_GW_IP:8444
    service: tls-echo
    tls:
      identity:
        - cert: $D/server.chain.pem
          key: \"pkcs11:token=mtlsgw;object=server;type=private\"
          sni: [$SNI]
    trust:
      mode: ca
      certs: [$D/root.pem, $T/soon.pem]"
cat >>"$T/gw.yaml" <<EOF
hsm: { pin_file: $T/pin }
state_dir: $T/state
admin: { socket: $S }
mtls:
  trust_domain: example.org
  enabledBackend: ca-1
  backends: [ { name: ca-1, type: builtin } ]
EOF
gw_start_gateway "$T/gw.yaml"
gw_wait 100 test -S "$S" || gw_fail "no admin socket"

scrape() { # scrape NAME: GET /v1/metrics into $T/NAME.prom, headers into $T/NAME.hdr
	curl -sS --fail --unix-socket "$S" -D "$T/$1.hdr" -o "$T/$1.prom" http://x/v1/metrics ||
		gw_fail "curl /v1/metrics failed"
}
# check NAME PYEXPR: parse $T/NAME.prom strictly (tests/lib/prom_check.py),
# then PYEXPR must hold over m: {(name, frozenset(labels.items())): value},
# s(name, **labels) the sum of the matching samples, ls(name) the label
# dicts of a name
check() {
	"$GW_PY" "$GW_SRC/tests/lib/prom_check.py" "$T/$1.prom" "$2" || gw_fail "metrics $1: $2 (see $T/$1.prom)"
}

scrape m0
grep -qi '^Content-Type: text/plain; version=0.0.4' "$T/m0.hdr" || gw_fail "content type: $(cat "$T/m0.hdr")"
check m0 'len(m) > 50 and s("mtlsgw_snapshot_generation") >= 1 and s("mtlsgw_workers") == 1'
gw_ok "GET /v1/metrics: text/plain; version=0.0.4, $(grep -vc '^#' "$T/m0.prom") samples, strict parse OK"

# expiry: every configured certificate, seconds to notAfter
E=mtlsgw_cert_expiry_seconds
check m0 "len([l for l in ls('$E') if l['kind'] == 'root' and l['backend'] == 'ca-1']) == 1"
check m0 "len([l for l in ls('$E') if l['kind'] == 'issuer' and l['backend'] == 'ca-1']) == 1"
check m0 "len([l for l in ls('$E') if l['kind'] == 'anchor' and l['listener'] == 'web']) == 1"
check m0 "len([l for l in ls('$E') if l['kind'] == 'identity' and l['listener'] == 'web']) == 1"
check m0 "len([l for l in ls('$E') if l['kind'] == 'identity' and l['listener'] == 'ext']) == 1"
check m0 "sorted(l['name'] for l in ls('$E') if l['kind'] == 'anchor' and l['listener'] == 'ext') == sorted(['soon \"anchor\"', '$(openssl x509 -in "$D/root.pem" -noout -subject -nameopt multiline | sed -n 's/^ *commonName *= //p')'])"
check m0 "4 * 86400 < s('$E', kind='anchor', listener='ext', name='soon \"anchor\"') <= 5 * 86400"
check m0 "29 * 86400 < s('$E', kind='identity', listener='ext') <= 30 * 86400"
check m0 "all(v > 0 for (n, l), v in m.items() if n == '$E')"
gw_ok "expiry: CA root + issuer, mesh anchor + identity, file identity, both ca anchors (quoted CN escaped); 5-day anchor at 4..5 days"

# the same certificates in mtlsgw-ctl status (GET /v1/status)
"$C" status --socket "$S" >"$T/status.txt" || gw_fail "mtlsgw-ctl status failed"
grep -Eq '^\(file\) +anchor ext: soon "anchor" .* [45]d' "$T/status.txt" ||
	gw_fail "status: no row for the 5-day anchor: $(cat "$T/status.txt")"
grep -Eq '^\(file\) +identity ext: ' "$T/status.txt" || gw_fail "status: no file identity row"
grep -Eq '^ca-1 +identity web ' "$T/status.txt" || gw_fail "status: no mesh identity row"
"$C" status --socket "$S" --json | python3 -c '
import json, sys
d = json.load(sys.stdin)
lc = d["ListenerCertificates"]
ok = sorted((c["Listener"], c["Kind"]) for c in lc) == [("ext", "anchor"), ("ext", "anchor"), ("ext", "identity")]
ok = ok and all(4 * 86400 < c["ExpiresInSeconds"] <= 5 * 86400 for c in lc if c["Name"] == "soon \"anchor\"")
sys.exit(0 if ok else 1)' || gw_fail "status --json ListenerCertificates"
gw_ok "mtlsgw-ctl status lists the file anchors and identity beside the CA ones: $(grep -c . "$T/status.txt") lines"

# warning once for the 5-day anchor (the 7-day window), not every tick
# 4 days and some hours, or exactly 5 days when the gateway starts within
# the second the certificate was made
gw_wait 50 grep -Eq 'trust anchor of listener ext .*soon.pem.* expires in (4 day|5 day\(s\) 0 hour)' "$T/gw.err" ||
	gw_fail "no expiry warning for the 5-day anchor: $(cat "$T/gw.err")"
sleep 2
n=$(grep -c 'trust anchor of listener ext .*soon.pem' "$T/gw.err")
[ "$n" -eq 1 ] || gw_fail "anchor warning logged $n times"
gw_ok "the 5-day anchor is warned about once: $(grep 'soon.pem' "$T/gw.err")"

# traffic: mTLS echo through 'ext'; counters grow
sclient() { # [SECONDS to hold the connection]
	(printf 'ping\n'; sleep "${1:-1}") |
		gw_in timeout 15 openssl s_client -connect "$GW_GW_IP:8444" -servername "$SNI" \
			-CAfile "$D/root.pem" -verify_return_error -quiet -no_ign_eof \
			-cert "$D/client.pem" -key "$D/client.key" -cert_chain "$D/intermediate.pem" 2>&1 || true
}
for i in 1 2 3; do
	out=$(sclient)
	case "$out" in *ping*) ;; *) gw_fail "mTLS echo $i: $out" ;; esac
done
gw_ok "3 mTLS echoes through listener ext"
scrape m1
read -r a0 a1 <<<"$(python3 -c '
import re, sys
def v(f, n):
    for l in open(f):
        if l.startswith(n + " "): return int(l.split()[1])
print(v(sys.argv[1], "mtlsgw_tls_hs_ok_total"), v(sys.argv[2], "mtlsgw_tls_hs_ok_total"))' "$T/m0.prom" "$T/m1.prom")"
[ "$a1" -ge $((a0 + 3)) ] || gw_fail "mtlsgw_tls_hs_ok_total $a0 -> $a1, want +3"
for c in mtlsgw_net_rx_pkts_total mtlsgw_net_tx_pkts_total mtlsgw_tcp_rx_seg_total mtlsgw_tls_rx_bytes_total; do
	b=$(sed -n "s/^$c //p" "$T/m0.prom")
	a=$(sed -n "s/^$c //p" "$T/m1.prom")
	[ -n "$a" ] && [ "$a" -gt "$b" ] || gw_fail "$c did not grow: $b -> $a"
done
check m1 "set(l['state'] for l in ls('mtlsgw_tcp_connections')) == {'CLOSED', 'LISTEN', 'SYN_SENT', 'SYN_RCVD', 'ESTABLISHED', 'FIN_WAIT_1', 'FIN_WAIT_2', 'CLOSE_WAIT', 'CLOSING', 'LAST_ACK', 'TIME_WAIT'}"
check m1 "s('mtlsgw_tls_worker_hs_ok_total', worker='0') == s('mtlsgw_tls_hs_ok_total')"
check m1 "s('mtlsgw_tls_handshake_seconds_count') == s('mtlsgw_tls_hs_ok_total') and s('mtlsgw_tls_handshake_seconds_count', listener='ext') >= 3 and sorted(l['listener'] for l in ls('mtlsgw_tls_handshake_seconds_count')) == ['ext', 'web']"
check m1 "0 < s('mtlsgw_worker_busy_seconds_total', worker='0') and s('mtlsgw_worker_snapshot_generation', worker='0') == s('mtlsgw_snapshot_generation')"
check m1 "ls('mtlsgw_hsm_sign_mean_seconds') == [{'key': 'ec'}] and 0 < s('mtlsgw_hsm_sign_mean_seconds') < 1"
gw_ok "after traffic: hs_ok $a0 -> $a1; net/tcp/tls counters grew; connections by state gauge; worker busy seconds and generation; mean HSM signature $(sed -n 's/^mtlsgw_hsm_sign_mean_seconds{key="ec"} //p' "$T/m1.prom") s"

# an open connection shows in the gauges while it lasts
gw_bg sclient 4
held() {
	scrape m2
	python3 -c 'import sys; t = open(sys.argv[1]).read(); sys.exit(0 if "\nmtlsgw_tcp_connections{state=\"ESTABLISHED\"} 1\n" in t and "\nmtlsgw_tls_established 1\n" in t else 1)' "$T/m2.prom"
}
gw_wait 50 held || gw_fail "open connection not in the gauges: $(grep -E 'connections|established' "$T/m2.prom")"
wait "$GW_LAST_PID"
gw_ok "while a connection is open: tcp_connections{state=ESTABLISHED} 1, tls_established 1"

# the metrics agree with the counters line of SIGUSR1
a1=$(sed -n 's/^mtlsgw_tls_hs_ok_total //p' "$T/m2.prom")
kill -USR1 "$GW_GW_PID"
gw_wait 50 grep -q '"hs_ok"' "$T/gw.out" || gw_fail "no counters line on SIGUSR1"
tail -1 "$T/gw.out" | python3 -c "import json,sys; d=json.load(sys.stdin); sys.exit(0 if d['tls']['hs_ok'] == $a1 else 1)" ||
	gw_fail "SIGUSR1 line hs_ok differs from metrics $a1"
gw_ok "SIGUSR1 counters line and /v1/metrics agree (tls.hs_ok = $a1)"
gw_stop_gateway
gw_done
