#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# mTLS through the real gateway on a tap port in our own namespace, with the
# server key in a fresh SoftHSM token and real clients (openssl s_client,
# curl, python's ssl): the seed's three trust cases (intermediate as
# anchor, pinned leaf, root + chain) accepted; an untrusted client and a
# client without a certificate refused with the right alert and counter;
# tls-proxy to a PROXY v2 upstream (curl sees who the upstream thinks it
# is serving, bytes relayed exactly both ways); resumption; a reload with a
# new trust under traffic: the established connection keeps working, new
# handshakes use the new trust; the README's ca-mode root rotation (add the
# new root, reload, remove the old one, reload); a bad config is refused; a
# client that stalls mid-handshake does not keep the idle worker waking
# early (idle: adaptive).
. "$(dirname "$0")/../lib/common.sh"
. "$GW_SRC/tests/lib/tls.sh"

gw_tls_pki
gw_ok "PKI made, server key generated inside SoftHSM token 'gw'"

listener() { # listener NAME PORT SERVICE TRUST_MODE CERTS [OPTION]...
	gw_tls_listener "$1" "$2" "$3" --sni --trust "{mode: $4, certs: [$5]}" "${@:6}"
}

write_config() { # write_config FILE PROXY_TRUST_CERT
	gw_gateway_config "$1" "[1]" "$(listener inter 8443 tls-echo ca "$P/int.pem")
$(listener pinned 8444 tls-echo pinned "$P/client.leaf.pem")
$(listener root 8445 tls-echo ca "$P/root.pem")
$(listener proxy 8446 tls-proxy ca "$2" --upstream "$GW_PEER_IP:9009, $GW_PEER_IP:9000" --pp2)"
	gw_tls_hsm "$1"
}
write_config "$T/gw.yaml" "$P/root.pem"
gw_start_gateway "$T/gw.yaml"
gw_ok "mtlsgw runs with four TLS listeners"

# s_client: send a line, keep stdin open until the echo (or an alert) arrives
sclient() { # sclient PORT ARGS... -> stdout of s_client
	gw_sclient "ping-$1" -connect "$GW_GW_IP:$1" -servername "$SNI" \
		-CAfile "$P/root.pem" -verify_return_error -quiet -no_ign_eof "${@:2}"
}

# --- the seed's three trust cases
out=$(sclient 8443 -cert "$P/client.leaf.pem" -key "$P/client.key")
case "$out" in *ping-8443*) ;; *) gw_fail "intermediate anchor, leaf only: $out" ;; esac
gw_ok "intermediate as anchor: client sends only its leaf, echo comes back"
out=$(sclient 8444 -cert "$P/client.leaf.pem" -key "$P/client.key" -tls1_2)
case "$out" in *ping-8444*) ;; *) gw_fail "pinned leaf: $out" ;; esac
gw_ok "pinned leaf over TLS 1.2: echo comes back"
out=$(sclient 8445 -cert "$P/client.leaf.pem" -key "$P/client.key" -cert_chain "$P/int.pem")
case "$out" in *ping-8445*) ;; *) gw_fail "root anchor + chain: $out" ;; esac
gw_ok "root as anchor: client sends leaf + intermediate, echo comes back"

# --- refusals: alert and counter
before=$(gw_stat hs_fail_verify)
out=$(sclient 8445 -cert "$P/client.leaf.pem" -key "$P/client.key")
case "$out" in *"unknown ca"*) ;; *) gw_fail "root anchor without the chain: $out" ;; esac
out=$(sclient 8443 -cert "$P/other.chain.pem" -key "$P/other.key")
case "$out" in *"unknown ca"*) ;; *) gw_fail "untrusted client: $out" ;; esac
after=$(gw_stat hs_fail_verify)
[ "$((after - before))" -eq 2 ] || gw_fail "hs_fail_verify went $before -> $after, want +2"
gw_ok "missing chain and untrusted CA: alert unknown_ca, counted (hs_fail_verify +2)"
before=$(gw_stat hs_fail_no_cert)
out=$(sclient 8443)
case "$out" in *"certificate required"*) ;; *) gw_fail "no client certificate: $out" ;; esac
[ "$(gw_stat hs_fail_no_cert)" -eq $((before + 1)) ] || gw_fail "hs_fail_no_cert not counted"
gw_ok "no client certificate: alert certificate_required, counted"

# --- resumption (TLS 1.3 ticket)
gw_sclient ping-sess -connect "$GW_GW_IP:8443" \
	-servername "$SNI" -CAfile "$P/root.pem" -cert "$P/client.leaf.pem" -key "$P/client.key" \
	-sess_out "$T/sess.pem" -quiet -no_ign_eof >/dev/null
[ -s "$T/sess.pem" ] || gw_fail "no session saved"
out=$(gw_sclient ping-resume -connect "$GW_GW_IP:8443" \
	-servername "$SNI" -CAfile "$P/root.pem" -sess_in "$T/sess.pem" -no_ign_eof)
case "$out" in *Reused*) ;; *) gw_fail "ticket not resumed: $(echo "$out" | grep -E 'New|Reused')" ;; esac
[ "$(gw_stat hs_resumed)" -ge 1 ] || gw_fail "hs_resumed not counted"
gw_ok "session resumed from a ticket without a client certificate (hs_resumed counted)"

# --- tls-proxy: PROXY v2 to a strict upstream; 9009 refuses, round robin skips it
gw_pp2_upstream up "$GW_PEER_IP:9000" http --require-client-cert
body=$(gw_in curl -sS --max-time 15 --cacert "$P/root.pem" --cert "$P/client.chain.pem" \
	--key "$P/client.key" --resolve "$SNI:8446:$GW_GW_IP" "https://$SNI:8446/" 2>&1) ||
	gw_fail "curl through tls-proxy: $body"
case "$body" in
"hello spiffe://$BENCH_TRUST_DOMAIN/"*" from $GW_PEER_IP:"*" over TLSv1.3"*) ;;
*) gw_fail "upstream answer: $body" ;;
esac
gw_ok "curl --cert through tls-proxy: upstream says '$body'"
# PP2_TYPE_SSL as the upstream parsed it: verified, the client's CN, and
# SIG_ALG/KEY_ALG of the certificate the gateway presented (spec 2.2.6)
srv_txt=$(openssl x509 -in "$P/server-hsm.chain.pem" -noout -text)
want_sig=$(sed -n 's/^ *Signature Algorithm: *//p' <<<"$srv_txt" | head -1)
want_key=EC$(sed -n 's/^ *Public-Key: *(\([0-9]*\) bit)/\1/p' <<<"$srv_txt" | head -1)
want_cn=$(openssl x509 -in "$P/client.chain.pem" -noout -subject -nameopt multiline |
	sed -n 's/^ *commonName *= *//p')
got=$(tail -1 "$T/up.log" | "$GW_PY" -c 'import json,sys; s=json.load(sys.stdin)["ssl"]; print(s["client"], s["verify"], s.get("cn"), s.get("sig_alg"), s.get("key_alg"))')
[ "$got" = "7 0 $want_cn $want_sig $want_key" ] ||
	gw_fail "PROXY v2 SSL TLV: got '$got', want '7 0 $want_cn $want_sig $want_key'"
gw_ok "PROXY v2 SSL TLV: cert verified, CN $want_cn, the server certificate's $want_sig / $want_key"
gw_in pkill -f "pp2_upstream.py --listen $GW_PEER_IP:9000" || true

# byte-exact relay both ways (upstream echo mode), 4 MiB
gw_pp2_upstream up2 "$GW_PEER_IP:9000" hello
gw_in "$GW_PY" - "$GW_GW_IP" "$P" "$SNI" <<'PY' || gw_fail "byte-exact relay"
import hashlib, os, socket, sys
sys.path.insert(0, os.environ["GW_SRC"] + "/tests/integ")
from tls_peer import ctx_for, pump
ip, p, sni = sys.argv[1:4]
s = ctx_for(p).wrap_socket(socket.create_connection((ip, 8446), timeout=30), server_hostname=sni)
data = os.urandom(4 << 20)
got, line = bytearray(), []
def take(chunk):  # the upstream's hello line first, then the echo
    got.extend(chunk)
    if not line and b"\n" in got:
        first, rest = bytes(got).split(b"\n", 1)
        assert first.startswith(b"hello spiffe://"), first
        line.append(first)
        got[:] = rest
pump(s, data, take, lambda: line and len(got) >= len(data))
assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest(), (len(got), len(data))
PY
gw_ok "4 MiB relayed byte-exact both ways through tls-proxy (PROXY v2 header parsed upstream)"

# --- reload under traffic: a held connection survives, new handshakes use the new trust
# (a session saved before the reload, to try resuming it after)
gw_sclient ping-psess -connect "$GW_GW_IP:8446" \
	-servername "$SNI" -CAfile "$P/root.pem" -cert "$P/client.leaf.pem" -key "$P/client.key" \
	-cert_chain "$P/int.pem" -sess_out "$T/psess.pem" -quiet -no_ign_eof >/dev/null
[ -s "$T/psess.pem" ] || gw_fail "no tls-proxy session saved"
gw_in "$GW_PY" - "$GW_GW_IP" "$P" "$SNI" "$T" "$GW_GW_PID" <<'PY' || gw_fail "reload under traffic"
import os, signal, socket, ssl, sys, time
ip, p, sni, t, pid = sys.argv[1:6]
def conn():
    ctx = ssl.create_default_context(cafile=p + "/root.pem")
    ctx.load_cert_chain(p + "/client.chain.pem", p + "/client.key")
    s = ctx.wrap_socket(socket.create_connection((ip, 8446), timeout=20), server_hostname=sni)
    s.sendall(b"a")
    buf = b""
    while not buf.endswith(b"a"):
        buf += s.recv(4096)
    return s
held = conn()
# new trust for the proxy listener: only the other root (our client is no longer trusted)
cfg = open(t + "/gw.yaml").read()
i = cfg.index("name: proxy")
cfg = cfg[:i] + cfg[i:].replace(p + "/root.pem", p + "/otherca.pem", 1)
open(t + "/gw2.yaml", "w").write(cfg)
os.replace(t + "/gw2.yaml", t + "/gw.yaml")
os.kill(int(pid), signal.SIGHUP)
for _ in range(100):  # until control has published the new snapshot
    if "reload (SIGHUP): reloaded" in open(t + "/gw.err").read():
        break
    time.sleep(0.1)
for i in range(50):
    held.sendall(b"b%d" % i)
    want = b"b%d" % i
    got = b""
    while len(got) < len(want):
        got += held.recv(4096)
    assert got == want, (got, want)
try:
    conn()
    sys.exit("new handshake accepted under the old trust")
except (ssl.SSLError, ConnectionError, OSError) as e:
    pass
held.unwrap()
PY
grep -q "reloaded" "$T/gw.err" || gw_fail "no reload message: $(tail -3 "$T/gw.err")"
gw_ok "SIGHUP with a new trust: held connection kept relaying, new handshake refused"
stale=$(gw_stat ticket_stale_trust)
out=$(gw_sclient ping-presume -connect "$GW_GW_IP:8446" \
	-servername "$SNI" -CAfile "$P/root.pem" -cert "$P/client.leaf.pem" -key "$P/client.key" \
	-cert_chain "$P/int.pem" -sess_in "$T/psess.pem" -no_ign_eof)
case "$out" in *Reused*) gw_fail "resumed a session the new trust does not cover" ;; esac
case "$out" in *"unknown ca"*) ;; *) gw_fail "resumption after the trust change: $out" ;; esac
[ "$(gw_stat ticket_stale_trust)" -gt "$stale" ] || gw_fail "ticket_stale_trust not counted"
gw_ok "a ticket from before the trust change does not resume: full handshake, unknown_ca"

# --- the README's CA rotation for a ca-mode listener (8445 trusts root.pem):
# add the new root to the bundle, reload; move the clients; remove the old
# root, reload. Clients of either root work in between.
reloads_over() { [ "$(grep -c "reload (SIGHUP): reloaded" "$T/gw.err")" -gt "$1" ]; }
trust_root() { # trust_root CERTS: the 'root' listener's trust.certs, then SIGHUP
	"$GW_PY" - "$T/gw.yaml" "$1" <<'PY'
import sys
f, certs = sys.argv[1:3]
cfg = open(f).read()
j = cfg.index("certs: [", cfg.index("name: root"))
cfg = cfg[:j] + "certs: [" + certs + cfg[cfg.index("]", j):]
open(f, "w").write(cfg)
PY
	local before
	before=$(grep -c "reload (SIGHUP): reloaded" "$T/gw.err")
	kill -HUP "$GW_GW_PID"
	gw_wait 100 reloads_over "$before" ||
		gw_fail "trust $1: no reload: $(tail -3 "$T/gw.err")"
}
old_client() { sclient 8445 -cert "$P/client.leaf.pem" -key "$P/client.key" -cert_chain "$P/int.pem"; }
new_client() { sclient 8445 -cert "$P/other.chain.pem" -key "$P/other.key"; }
trust_root "$P/root.pem, $P/otherca.pem"
case "$(old_client)" in *ping-8445*) ;; *) gw_fail "rotation step 1: the old root's client refused" ;; esac
case "$(new_client)" in *ping-8445*) ;; *) gw_fail "rotation step 1: the new root's client refused" ;; esac
gw_ok "ca rotation, new root added to the bundle: clients of both roots accepted"
trust_root "$P/otherca.pem"
case "$(new_client)" in *ping-8445*) ;; *) gw_fail "rotation step 3: the new root's client refused" ;; esac
case "$(old_client)" in *"unknown ca"*) ;; *) gw_fail "rotation step 3: the old root's client: $(old_client)" ;; esac
gw_ok "ca rotation, old root removed: only the new root's clients accepted"

# a broken config is refused, the running one stays
cp "$T/gw.yaml" "$T/good.yaml"
sed -i 's/mode: ca/mode: cax/' "$T/gw.yaml"
kill -HUP "$GW_GW_PID"
gw_wait 50 grep -q "mode: 'cax'" "$T/gw.err" || gw_fail "bad reload not reported: $(tail -3 "$T/gw.err")"
out=$(sclient 8443 -cert "$P/client.leaf.pem" -key "$P/client.key")
case "$out" in *ping-8443*) ;; *) gw_fail "after a refused reload: $out" ;; esac
gw_ok "a bad config on SIGHUP is reported with its line and the gateway keeps serving"

# a client that sends its ClientHello, takes the server's flight and stalls
# (here for 4 s, under the 10 s handshake timeout): once it has waited
# past 10 ms the worker sleeps as an idle one does, not in 40 us naps
gw_in "$GW_PY" - "$GW_GW_IP" "$SNI" "$T/stall.ok" <<'PY' &
import socket, ssl, sys, time
ip, sni, ok = sys.argv[1:4]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
inc, outg = ssl.MemoryBIO(), ssl.MemoryBIO()
obj = ctx.wrap_bio(inc, outg, server_hostname=sni)
try:
    obj.do_handshake()
except ssl.SSLWantReadError:
    pass
s = socket.create_connection((ip, 8443), timeout=5)
s.sendall(outg.read())
if s.recv(65536):
    open(ok, "w").write("flight\n")
time.sleep(4)
s.close()
PY
stall=$!
GW_PIDS+=("$stall") # gw_bg's cleanup, should the test fail before the wait
gw_wait 50 test -s "$T/stall.ok" || gw_fail "the stalling client got no server flight"
sleep 1.2 # past the worker's 1 s of recent traffic: its deep sleeps
s0=$(gw_stat idle_sleeps)
sleep 2
s1=$(gw_stat idle_sleeps)
wait "$stall" || gw_fail "the stalling client failed"
[ $((s1 - s0)) -lt 8000 ] ||
	gw_fail "a stalled handshake kept the worker waking early: $((s1 - s0)) sleeps in 2 s"
gw_ok "a handshake stalled by its client: the worker slept $((s1 - s0)) times in 2 s (idle: about 2,000)"

gw_stop_gateway
gw_ok "clean stop"
gw_done
