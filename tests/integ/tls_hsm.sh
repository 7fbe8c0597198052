#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The server key is in the HSM and only there: the gateway signs through the
# token, and when the key disappears from the token (deleted behind its back)
# handshakes fail with a clear counter and log line instead of anything
# worse; once a key is back under the same label (with its certificate) the
# gateway reloads its keys by itself and serves again, without a restart or
# a SIGHUP. With hsm.inline_below, a fast token signs on the worker. An
# RSA-2048 key in the token signs too, through the same HSM threads: RSA-PSS
# in TLS 1.3 and 1.2, PKCS#1 v1.5 in TLS 1.2, and in place with its own
# mean signature time, apart from the EC key's.
. "$(dirname "$0")/../lib/common.sh"
. "$GW_SRC/bench/pki.sh"

P=$T/pki
bench_pki_ctl "$MTLSGW_CTL" "$P" "$T/tok" >/dev/null || gw_fail "PKI and token setup"
SNI=$BENCH_SERVERNAME
KEY="pkcs11:token=gw;object=server;type=private"
cp "$P/server-hsm.chain.pem" "$P/identity.pem"
# an RSA-2048 server key in the token, its certificate from the intermediate
RKEY="pkcs11:token=gw;object=server-rsa;type=private"
"$MTLSGW_CTL" hsm keygen --module "$BENCH_PKCS11_MODULE" --token gw --pin-file "$P/pin" \
	--label server-rsa --type rsa-2048 >/dev/null || gw_fail "RSA keygen"
"$MTLSGW_CTL" hsm csr --module "$BENCH_PKCS11_MODULE" --pin-file "$P/pin" --key "$RKEY" \
	--subject "/CN=$SNI" --out "$T/rsa.csr" >/dev/null || gw_fail "RSA csr"
_pki_sign "$P" "$T/rsa.csr" int server "DNS:$SNI" "$T/rsa.pem" || gw_fail "RSA sign"
cat "$T/rsa.pem" "$P/int.pem" >"$P/identity-rsa.pem"
gw_gateway_config "$T/gw.yaml" "[1]" "  - name: echo
    address: $GW_GW_IP:8443
    service: tls-echo
    tls:
      identity:
        - cert: $P/identity.pem
          key: \"$KEY\"
    trust:
      mode: ca
      certs: [$P/int.pem]
  - name: echo-rsa
    address: $GW_GW_IP:8444
    service: tls-echo
    tls:
      identity:
        - cert: $P/identity-rsa.pem
          key: \"$RKEY\"
    trust:
      mode: ca
      certs: [$P/int.pem]"
printf 'hsm:\n  module: %s\n  pin_file: %s\n' "$BENCH_PKCS11_MODULE" "$P/pin" >>"$T/gw.yaml"
gw_start_gateway "$T/gw.yaml"

hello() { # hello -> s_client's output
	gw_sclient ping -connect "$GW_GW_IP:8443" -servername "$SNI" \
		-CAfile "$P/root.pem" -cert "$P/client.leaf.pem" -key "$P/client.key" \
		-quiet -no_ign_eof
}
out=$(hello)
case "$out" in *ping*) ;; *) gw_fail "handshake with the token key: $out" ;; esac
# the server's public key is the token's: the certificate matches the key in the HSM
"$MTLSGW_CTL" hsm match --module "$BENCH_PKCS11_MODULE" --pin-file "$P/pin" --key "$KEY" \
	--cert "$P/identity.pem" >/dev/null 2>&1 ||
	gw_fail "identity certificate does not match the token key"
gw_ok "mTLS handshake signed by the token key (certificate matches the key in the HSM)"
# signed on an HSM thread while the worker's handshake was parked (hsm.h)
parked=$(gw_stat hsm_async_parked)
[ "${parked:-0}" -ge 1 ] || gw_fail "the signature did not go through the HSM threads (hsm_async_parked=$parked)"
gw_ok "the signature ran on an HSM thread, the handshake parked meanwhile (hsm_async_parked=$parked)"

# rsa_hello TEXT WANT_SIG [S_CLIENT ARGS...]: through the RSA listener (a
# -sigalgs list keeps ECDSA for the client's own certificate); the
# peer signature type s_client saw must be WANT_SIG (RSA-PSS or RSA)
rsa_hello() {
	local text=$1 want=$2 out
	shift 2
	out=$(gw_sclient "$text" -connect "$GW_GW_IP:8444" -servername "$SNI" \
		-CAfile "$P/root.pem" -cert "$P/client.leaf.pem" -key "$P/client.key" \
		-no_ign_eof "$@")
	grep -q -- "$text\$" <<<"$out" || gw_fail "RSA key, $*: no echo: $(tail -5 <<<"$out")"
	grep -q "^Peer signature type: $want\$" <<<"$out" ||
		gw_fail "RSA key, $*: want peer signature type $want: $(grep -i 'signature type' <<<"$out")"
}
p0=$(gw_stat hsm_async_parked)
rsa_hello rsa13 RSA-PSS -tls1_3
rsa_hello rsa12pss RSA-PSS -tls1_2 -sigalgs rsa_pss_rsae_sha256:ECDSA+SHA256
rsa_hello rsa12 RSA -tls1_2 -sigalgs RSA+SHA256:ECDSA+SHA256
p1=$(gw_stat hsm_async_parked)
[ "$((p1 - p0))" = 3 ] || gw_fail "RSA: 3 signatures, hsm_async_parked $p0 -> $p1"
"$MTLSGW_CTL" hsm match --module "$BENCH_PKCS11_MODULE" --pin-file "$P/pin" --key "$RKEY" \
	--cert "$P/identity-rsa.pem" >/dev/null 2>&1 || gw_fail "RSA certificate does not match the token key"
gw_ok "RSA-2048 key in the token: TLS 1.3 RSA-PSS, TLS 1.2 RSA-PSS and PKCS#1 v1.5, each signed on an HSM thread (hsm_async_parked $p0 -> $p1)"

# the key vanishes from the token (PIN through the environment, never argv)
MTLSGW_T_PIN=$(cat "$P/pin") pkcs11-tool --module "$BENCH_PKCS11_MODULE" --token-label gw \
	--login --pin env:MTLSGW_T_PIN --delete-object --type privkey --label server >/dev/null 2>&1 ||
	gw_fail "could not delete the key from the token"
before=$(gw_stat hs_fail_hsm)
out=$(hello)
case "$out" in *"internal error"*) ;; *) gw_fail "handshake without the key: $out" ;; esac
after=$(gw_stat hs_fail_hsm)
[ "$after" -gt "$before" ] || gw_fail "hs_fail_hsm did not count ($before -> $after)"
gw_wait 50 grep -q "server signature with the HSM key failed" "$T/gw.err" ||
	gw_fail "no log line for the HSM failure: $(tail -3 "$T/gw.err")"
gw_ok "key deleted: handshake fails with internal_error, hs_fail_hsm=$after, log: $(grep -m1 'HSM key failed' "$T/gw.err")"
gw_wait 100 grep -q "keys cannot be reloaded" "$T/gw.err" ||
	gw_fail "no report of the failed key reload: $(tail -3 "$T/gw.err")"
gw_ok "control tried to reload the keys and says why it cannot: $(grep -m1 'cannot be reloaded' "$T/gw.err" | cut -c1-160)"

# a key is back under the same label, with its certificate
"$MTLSGW_CTL" hsm keygen --module "$BENCH_PKCS11_MODULE" --token gw --pin-file "$P/pin" \
	--label server --type ec-p256 >/dev/null || gw_fail "keygen"
"$MTLSGW_CTL" hsm csr --module "$BENCH_PKCS11_MODULE" --pin-file "$P/pin" --key "$KEY" \
	--subject "/CN=$SNI" --out "$T/new.csr" >/dev/null || gw_fail "csr"
_pki_sign "$P" "$T/new.csr" int server "DNS:$SNI" "$T/new.pem" || gw_fail "sign"
cat "$T/new.pem" "$P/int.pem" >"$P/identity.pem.new" && mv "$P/identity.pem.new" "$P/identity.pem"
ok=""
# control's once-a-second tick reloads the keys: try for up to 30 s
for _ in $(seq 60); do
	out=$(hello)
	case "$out" in *ping*) ok=1 && break ;; esac
	sleep 0.5
done
[ -n "$ok" ] || gw_fail "gateway did not recover: $(tail -3 "$T/gw.err")"
grep -q "listener keys reloaded" "$T/gw.err" || gw_fail "no reload message"
gw_ok "key restored: gateway reloaded its keys by itself and serves again ($(grep -m1 'keys reloaded' "$T/gw.err" | cut -c1-120))"
gw_stop_gateway

# hsm.inline_below: the first signature goes to an HSM thread (the HSM's
# speed is not known yet), the next ones are made on the worker itself
printf '  inline_below: 100ms\n' >>"$T/gw.yaml"
gw_start_gateway "$T/gw.yaml"
for i in 1 2 3; do
	out=$(hello)
	case "$out" in *ping*) ;; *) gw_fail "handshake $i with hsm.inline_below: $out" ;; esac
done
gw_wait 30 test "$(gw_stat hs_ok)" -ge 3 || gw_fail "hs_ok stays at $(gw_stat hs_ok)"
parked=$(gw_stat hsm_async_parked)
inl=$(gw_stat hsm_inline)
[ "$parked" = 1 ] && [ "$inl" = 2 ] ||
	gw_fail "hsm.inline_below: expected 1 parked and 2 in place, got parked=$parked inline=$inl"
gw_ok "hsm.inline_below 100ms: first signature on an HSM thread, then in place (hsm_async_parked=$parked, hsm_inline=$inl)"
# the RSA key has its own mean: its first signature is not made in place
# on the strength of the EC key's, the next ones are
rsa_hello rsa-a RSA-PSS -tls1_3
rsa_hello rsa-b RSA-PSS -tls1_3
rsa_hello rsa-c RSA -tls1_2 -sigalgs RSA+SHA256:ECDSA+SHA256
parked=$(gw_stat hsm_async_parked)
inl=$(gw_stat hsm_inline)
[ "$parked" = 2 ] && [ "$inl" = 4 ] ||
	gw_fail "hsm.inline_below, RSA: expected 2 parked and 4 in place, got parked=$parked inline=$inl"
gw_ok "hsm.inline_below, RSA key: its first signature on an HSM thread, then in place (hsm_async_parked=$parked, hsm_inline=$inl)"
gw_stop_gateway
gw_done
