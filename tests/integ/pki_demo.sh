#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# mtlsgw-ctl pki demo around an HSM key; `openssl verify` checks every chain
# case the trust work relies on (leaf + intermediate to the root, leaf alone
# against a trusted intermediate, a different intermediate of the same root).
. "$(dirname "$0")/../lib/common.sh"

C=$MTLSGW_CTL
gw_token gw
uri=$("$C" hsm keygen --token gw --pin-file "$T/pin" --label server --type ec-p256)
P=$T/pki
"$C" pki demo --dir "$P" --token gw --pin-file "$T/pin" --key "$uri" --trust-domain td.test \
	--server-san "DNS:localhost,DNS:gw.td.test,IP:127.0.0.1,IP:10.99.0.1" >"$T/out"
gw_ok "pki demo ran"
for f in root.pem intermediate.pem server.pem server.chain.pem server.uri client.pem \
	client.chain.pem client.key other-intermediate.pem other-client.pem \
	other-client.chain.pem other-client.key cert1.pem cert2.pem cert3.pem; do
	[ -s "$P/$f" ] || gw_fail "missing $f"
done
[ "$(stat -c %a "$P/client.key")" = 600 ] && [ "$(stat -c %a "$P/root.key")" = 600 ] ||
	gw_fail "key files must be 0600"
gw_ok "all files present, key files 0600"

# again into the same dir, with a loose old key and a symlink planted where a
# key goes: new 0600 files, the symlink's target untouched
echo keep >"$T/target"
chmod 644 "$P/client.key"
ln -sf "$T/target" "$P/other-client.key"
"$C" pki demo --dir "$P" --token gw --pin-file "$T/pin" --key "$uri" --trust-domain td.test \
	--server-san "DNS:localhost,DNS:gw.td.test,IP:127.0.0.1,IP:10.99.0.1" >"$T/out"
[ "$(cat "$T/target")" = keep ] || gw_fail "pki demo wrote through a symlink"
[ -f "$P/other-client.key" ] && [ ! -L "$P/other-client.key" ] &&
	[ "$(stat -c %a "$P/other-client.key")" = 600 ] &&
	[ "$(stat -c %a "$P/client.key")" = 600 ] || gw_fail "keys rewritten: not new 0600 files"
gw_ok "pki demo again: new 0600 key files, never through a symlink"

# openssl verify, output only (the verdict is in the text; pipefail must not end the script)
v() { openssl verify "$@" 2>&1 || true; }
# server: leaf for the HSM key, signed by the intermediate, serverAuth
v -CAfile "$P/root.pem" -untrusted "$P/intermediate.pem" -purpose sslserver "$P/server.pem" |
	grep -q ': OK$' || gw_fail "server chain"
openssl x509 -in "$P/server.pem" -noout -ext subjectAltName,extendedKeyUsage >"$T/srv.txt"
grep -q 'DNS:localhost, DNS:gw.td.test, IP Address:127.0.0.1, IP Address:10.99.0.1, URI:spiffe://td.test/mtlsgw' \
	"$T/srv.txt" && grep -q 'TLS Web Server Authentication' "$T/srv.txt" ||
	gw_fail "server extensions: $(cat "$T/srv.txt")"
"$C" hsm match --key "$uri" --cert "$P/server.pem" --pin-file "$T/pin" >/dev/null
gw_ok "server.pem: verifies to root, serverAuth, SANs, and matches the HSM key (hsm match)"
openssl x509 -in "$P/server.pem" -noout -pubkey >"$T/a"
openssl req -new -key "$P/client.key" -subj /CN=x 2>/dev/null | openssl req -noout -pubkey >"$T/b"
cmp -s "$T/a" "$T/b" && gw_fail "server and client keys equal"
gw_expect_fail "certificate '/O=mtlsgw demo/CN=client' does not match key" \
	"$C" hsm match --key "$uri" --cert "$P/client.pem" --pin-file "$T/pin"
gw_ok "client.pem does not match the server's HSM key"
# server.chain.pem = leaf + intermediate
openssl crl2pkcs7 -nocrl -certfile "$P/server.chain.pem" | openssl pkcs7 -print_certs -noout |
	grep -c '^subject=' | grep -qx 2 || gw_fail "server.chain.pem must hold 2 certs"
gw_ok "server.chain.pem holds leaf + intermediate"

# client: SPIFFE ID, clientAuth; cert1/2/3 = client leaf / intermediate / root
openssl x509 -in "$P/client.pem" -noout -ext subjectAltName,extendedKeyUsage >"$T/cli.txt"
grep -q 'URI:spiffe://td.test/client' "$T/cli.txt" &&
	grep -q 'TLS Web Client Authentication' "$T/cli.txt" || gw_fail "client ext: $(cat "$T/cli.txt")"
cmp -s "$P/cert1.pem" "$P/client.pem" && cmp -s "$P/cert2.pem" "$P/intermediate.pem" &&
	cmp -s "$P/cert3.pem" "$P/root.pem" || gw_fail "cert1/2/3"
gw_ok "client: spiffe://td.test/client, clientAuth; cert1/cert2/cert3 = leaf/intermediate/root"

# chain cases
v -CAfile "$P/root.pem" -untrusted "$P/intermediate.pem" -purpose sslclient "$P/client.pem" |
	grep -q ': OK$' || gw_fail "client via root + intermediate"
gw_ok "client leaf + intermediate verifies to the root"
v -CAfile "$P/root.pem" -purpose sslclient "$P/client.pem" | grep -q 'unable to get local issuer' ||
	gw_fail "client leaf alone must not verify against the root only"
gw_ok "client leaf alone does not verify against the root only"
v -CAfile "$P/intermediate.pem" -partial_chain -purpose sslclient "$P/client.pem" |
	grep -q ': OK$' || gw_fail "client via trusted intermediate"
gw_ok "client leaf alone verifies against the intermediate as anchor (partial chain)"
v -CAfile "$P/intermediate.pem" -partial_chain "$P/other-client.pem" | grep -q ': OK$' &&
	gw_fail "other-client must not verify against the first intermediate"
v -CAfile "$P/root.pem" -untrusted "$P/other-intermediate.pem" "$P/other-client.pem" |
	grep -q ': OK$' || gw_fail "other-client via root"
openssl x509 -in "$P/other-client.pem" -noout -ext subjectAltName | grep -q 'spiffe://td.test/other-client' ||
	gw_fail "other-client SAN"
gw_ok "other-client: rejected by the first intermediate, accepted via the root + its own intermediate"
openssl x509 -in "$P/client.chain.pem" -noout -subject | grep -q 'CN = client' ||
	gw_fail "client.chain.pem must start with the leaf"
gw_ok "client.chain.pem starts with the leaf"

# errors
gw_expect_fail "--dir DIR and --key URI are required" "$C" pki demo --pin-file "$T/pin" --dir "$P"
gw_expect_fail "no private key matches" "$C" pki demo --dir "$T/p2" --pin-file "$T/pin" \
	--key "pkcs11:token=gw;object=nope"
gw_expect_fail "must be a bare name" "$C" pki demo --dir "$T/p2" --pin-file "$T/pin" \
	--key "$uri" --trust-domain spiffe://x
# no PIN on the command line, and one given anyway is never echoed back
gw_expect_fail "never from the command line" "$C" pki demo --dir "$T/p2" --pin 1234
out=$("$C" pki demo --dir "$T/p2" --so-pin=5678 2>&1) && gw_fail "pki demo took --so-pin"
case "$out" in
*5678*) gw_fail "pki demo echoed a PIN: $out" ;;
esac
gw_ok "pki demo --so-pin=...: refused without echoing the PIN"
gw_done
