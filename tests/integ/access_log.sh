#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The access log and the upstream connect-failure counter through the real
# gateway on a tap port in our own namespace (docs/operations.md "Access
# log"): a curl --cert through tls-proxy leaves one line with SNI, subject,
# SPIFFE ID, bytes and upstream; a client without a certificate one refusal
# line with its reason; a burst of refusals is cut to refusals_per_second
# lines and a "suppressed" line; a hostile SNI stays on one escaped line; an
# upstream that refuses counts in upstream_connect_failures (tls-proxy and
# tcp-proxy, whose connection has a line too); after a rename
# and SIGHUP (logrotate) the log is reopened, now in JSON that parses.
. "$(dirname "$0")/../lib/common.sh"
. "$GW_SRC/tests/lib/tls.sh"

gw_tls_pki
write_config() { # write_config FORMAT
	gw_gateway_config "$T/gw.yaml" "[1]" "$(gw_tls_listener proxy 8446 tls-proxy --sni \
		--upstream "$GW_PEER_IP:9000" --pp2)
$(gw_tls_listener dead 8447 tls-proxy --upstream "$GW_PEER_IP:9009")
$(gw_tls_listener echo 8443 tls-echo)
  - name: tcpdead
    address: $GW_GW_IP:8080
    service: tcp-proxy
    upstream:
      servers: [\"$GW_PEER_IP:9009\"]"
	gw_tls_hsm "$T/gw.yaml"
	# a relative path: next to the config
	printf 'access_log:\n  enabled: true\n  path: access.log\n  format: %s\n  refusals_per_second: 3\n' \
		"$1" >>"$T/gw.yaml"
}
write_config text
gw_start_gateway "$T/gw.yaml"
gw_ok "mtlsgw runs with access_log: {enabled: true, path: access.log}"
LOG=$T/access.log

# wait_line PATTERN [FILE] : until a line of the access log matches (drained every 200 ms)
wait_line() {
	gw_wait 50 grep -qE -- "$1" "${2:-$LOG}" ||
		gw_fail "no access log line like '$1': $(tail -3 "${2:-$LOG}" 2>&1)"
}

# --- an accepted connection through tls-proxy: one line with every field
gw_pp2_upstream up "$GW_PEER_IP:9000" http --require-client-cert
body=$(gw_in curl -sS --max-time 15 --cacert "$P/root.pem" --cert "$P/client.chain.pem" \
	--key "$P/client.key" --resolve "$SNI:8446:$GW_GW_IP" "https://$SNI:8446/" 2>&1) ||
	gw_fail "curl through tls-proxy: $body"
wait_line 'listener="proxy" .* verdict=accepted'
line=$(grep 'listener="proxy"' "$LOG")
[ "$(grep -c 'listener="proxy"' "$LOG")" -eq 1 ] || gw_fail "want one line for one connection: $line"
want_cn=$(openssl x509 -in "$P/client.chain.pem" -noout -subject -nameopt multiline |
	sed -n 's/^ *commonName *= *//p')
for want in "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}\.[0-9]{3}Z " " client=$GW_PEER_IP:[0-9]+ " \
	" sni=\"$SNI\" " " tls=TLSv1.3 " " cipher=TLS_[A-Z0-9_]+ " " session=full " \
	" subject=\"[^\"]*CN=$want_cn" " spiffe_id=\"spiffe://$BENCH_TRUST_DOMAIN/[^\"]+\" " \
	" reason=- " " upstream=$GW_PEER_IP:9000 " " end=close " " bytes_in=[1-9][0-9]* " \
	" bytes_out=[1-9][0-9]* " " duration_ms=[0-9]+\.[0-9]{3}$"; do
	grep -qE -- "$want" <<<"$line" || gw_fail "accepted line lacks /$want/: $line"
done
# the bytes are the relayed plaintext: the upstream's answer is what curl got
out=$(sed -n 's/.* bytes_out=\([0-9]*\) .*/\1/p' <<<"$line")
[ "$out" -ge "${#body}" ] || gw_fail "bytes_out $out < the ${#body} bytes of the body"
gw_ok "curl --cert through tls-proxy: one line (SNI, subject CN=$want_cn, SPIFFE ID, upstream, bytes)"

# --- a refusal: no client certificate
refuse() { # refuse N : N clients without a certificate on the echo listener, quickly
	gw_in "$GW_PY" - "$GW_GW_IP" "$P" "$1" <<'PY'
import socket, ssl, sys
ip, p, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
ctx = ssl.create_default_context(cafile=p + "/root.pem")
ctx.check_hostname = False
for _ in range(n):
    try:
        s = ctx.wrap_socket(socket.create_connection((ip, 8443), timeout=10))
        s.recv(16)  # TLS 1.3: the refusal (certificate_required) comes after our Finished
    except (ssl.SSLError, OSError):
        pass
PY
}
refuse 1
wait_line 'listener="echo" .* verdict=refused reason=no_client_cert'
grep 'reason=no_client_cert' "$LOG" | grep -q ' subject="" ' || gw_fail "a client without a certificate has a subject"
gw_ok "a client without a certificate: a refusal line, reason no_client_cert"

# --- a flood of refusals: 3 lines a second per reason, then one summary line
sleep 1.1 # the last refusal's second is over
refuse 20
wait_line "suppressed [0-9]+ refusals for reason no_client_cert"
sleep 1.2 # every window of the burst is over: its summary written
lines=$(grep -c 'reason=no_client_cert' "$LOG")
supp=$(sed -n 's/.* suppressed \([0-9]*\) refusals for reason no_client_cert.*/\1/p' "$LOG" |
	awk "{s += \$1} END {print s + 0}")
[ "$((lines + supp))" -eq 21 ] || gw_fail "$lines lines + $supp suppressed, want 21 refusals"
[ "$lines" -le 7 ] || gw_fail "$lines refusal lines for 21 refusals at 3 a second"
gw_ok "21 refusals: $lines lines and $supp counted in 'suppressed' lines"

# --- an attacker's SNI: quotes and a newline stay inside one escaped value
gw_sclient ping-sni -connect "$GW_GW_IP:8443" -servername $'ev"il\nsni' -CAfile "$P/root.pem" \
	-cert "$P/client.chain.pem" -key "$P/client.key" -quiet -no_ign_eof >/dev/null 2>&1
wait_line 'sni="ev\\"il\\nsni"'
grep -q '^sni' "$LOG" && gw_fail "a newline in SNI split a line"
gw_ok "SNI 'ev\"il<newline>sni' logged as sni=\"ev\\\"il\\nsni\" on one line"

# --- an upstream that refuses: the counter, and the line says so
body=$(gw_in curl -sS --max-time 15 --cacert "$P/root.pem" --cert "$P/client.chain.pem" \
	--key "$P/client.key" --resolve "$SNI:8447:$GW_GW_IP" "https://$SNI:8447/" 2>&1) &&
	gw_fail "curl through a dead upstream succeeded: $body"
wait_line 'listener="dead" .* verdict=accepted .* upstream=10\.99\.0\.1:9009 end=upstream '
# the same through a plain tcp-proxy
gw_in "$GW_PY" -c 'import socket, sys
try:  # reset once the upstream refused, maybe before connect() returns
    socket.create_connection((sys.argv[1], 8080), timeout=10).recv(1)
except OSError:
    pass' "$GW_GW_IP"
for _ in $(seq 50); do
	fails=$(gw_stat workers >/dev/null && tail -1 "$T/gw.out" | "$GW_PY" -c '
import json, sys
u = json.load(sys.stdin)["upstream_connect_failures"]
print(u["dead"]["refused"], u["tcpdead"]["refused"], u["dead"]["timeout"] + u["tcpdead"]["timeout"])')
	[ "${fails% *}" != "1 1" ] || break
	sleep 0.1
done
[ "$fails" = "1 1 0" ] || gw_fail "upstream_connect_failures refused dead, tcpdead, timeouts: $fails, want 1 1 0"
wait_line 'listener="tcpdead" .* tls=- .* verdict=accepted .* upstream=10\.99\.0\.1:9009 end=upstream '
gw_ok "an upstream answering RST: upstream_connect_failures{dead|tcpdead,refused} = 1, end=upstream"

# --- logrotate: rename, SIGHUP; the new file, in JSON now, parses
mv "$LOG" "$T/access.log.1"
write_config json
kill -HUP "$GW_GW_PID"
gw_wait 50 grep -q "reload (SIGHUP): reloaded" "$T/gw.err" || gw_fail "no reload: $(tail -3 "$T/gw.err")"
out=$(gw_in curl -sS --max-time 15 --cacert "$P/root.pem" --cert "$P/client.chain.pem" \
	--key "$P/client.key" --resolve "$SNI:8446:$GW_GW_IP" "https://$SNI:8446/" 2>&1) ||
	gw_fail "curl after the reopen: $out"
refuse 1
wait_line '"verdict":"refused"'
wait_line '"listener":"proxy"'
"$GW_PY" - "$LOG" "$SNI" "$GW_PEER_IP" <<'PY' || gw_fail "JSON access log: $(cat "$LOG")"
import json, sys
path, sni, peer = sys.argv[1:4]
recs = [json.loads(l) for l in open(path)]
acc = [r for r in recs if r["listener"] == "proxy"]
assert len(acc) == 1, recs
a = acc[0]
assert a["verdict"] == "accepted" and a["reason"] is None, a
assert a["sni"] == sni and a["upstream"] == peer + ":9000", a
assert a["spiffe_id"].startswith("spiffe://") and "CN=" in a["subject"], a
assert a["bytes_in"] > 0 and a["bytes_out"] > 0 and a["duration_ms"] >= 0, a
ref = [r for r in recs if r["verdict"] == "refused"]
assert ref and ref[0]["reason"] == "no_client_cert", ref
PY
grep -q 'listener="proxy"' "$T/access.log.1" || gw_fail "the rotated file lost its lines"
gw_ok "after mv + SIGHUP: a new access.log, JSON lines that parse (accepted and refused)"

gw_stop_gateway
gw_ok "clean stop"
gw_done
