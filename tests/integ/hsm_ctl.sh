#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# mtlsgw-ctl hsm end to end on a fresh SoftHSM token: init, keygen of every
# type, list, CSR (checked by `openssl req -verify`), match, and every error
# a person can hit, each as one clear line. Non-extractability is confirmed
# by OpenSC's pkcs11-tool, independently of our code.
. "$(dirname "$0")/../lib/common.sh"

C=$MTLSGW_CTL
M=/usr/lib/softhsm/libsofthsm2.so
gw_token gw
gw_ok "hsm init (fresh token 'gw')"

# fails with exactly one line on stderr that says MSG
one_line_fail() {
	local want=$1 err rc
	shift
	set +e
	"$@" >/dev/null 2>"$T/err"
	rc=$?
	set -e
	err=$(cat "$T/err")
	[ "$rc" -ne 0 ] || gw_fail "expected failure from: $*"
	[ "$(wc -l <"$T/err")" -eq 1 ] || gw_fail "expected one line from: $* ; got: $err"
	case "$err" in
	*"$want"*) ;;
	*) gw_fail "expected '$want' from: $* ; got: $err" ;;
	esac
	case "$err" in
	*1234* | *5678*) gw_fail "a PIN leaked into: $err" ;;
	esac
	gw_ok "one line: $want"
}

# --help everywhere
for cmd in "hsm" "hsm init" "hsm keygen" "hsm import-secret" "hsm list" "hsm csr" "hsm match" "pki" "pki demo"; do
	# shellcheck disable=SC2086
	"$C" $cmd --help | grep -q "usage: mtlsgw-ctl $cmd" || gw_fail "$cmd --help"
done
gw_ok "--help on every hsm/pki command"

# keygen of every type; the URI names token, id, label and type
for t in ec-p256 ec-p384 rsa-2048 rsa-3072; do
	uri=$("$C" hsm keygen --token gw --pin-file "$T/pin" --label "k-$t" --type "$t")
	[[ "$uri" =~ ^pkcs11:token=gw\;id=(%[0-9A-F]{2}){8}\;object=k-$t\;type=private$ ]] ||
		gw_fail "keygen $t printed '$uri'"
	printf '%s\n' "$uri" >"$T/uri-$t"
done
gw_ok "keygen ec-p256 ec-p384 rsa-2048 rsa-3072 print their URIs"
SRV=$(cat "$T/uri-ec-p256")

# our listing
"$C" hsm list --token gw --pin-file "$T/pin" >"$T/list"
[ "$(grep -c '^private ' "$T/list")" -eq 4 ] || gw_fail "list: $(cat "$T/list")"
[ "$(grep -c '^public ' "$T/list")" -eq 4 ] || gw_fail "list: $(cat "$T/list")"
grep '^private ' "$T/list" | grep -v 'sensitive,non-extractable,never-extractable,sign' &&
	gw_fail "a private key is not sensitive/non-extractable"
grep -q '^private  ec-p384   k-ec-p384' "$T/list" || gw_fail "list types: $(cat "$T/list")"
gw_ok "hsm list shows 4 private keys, sensitive and non-extractable"
"$C" hsm list --token gw >"$T/list-nopin"
grep -q 'public objects only' "$T/list-nopin" && ! grep -q '^private ' "$T/list-nopin" ||
	gw_fail "list without PIN: $(cat "$T/list-nopin")"
gw_ok "hsm list without a PIN shows public objects only"

# independent proof: OpenSC reads the attributes from the module itself
export GW_TEST_PIN=1234
pkcs11-tool --module "$M" --token-label gw --login --pin env:GW_TEST_PIN \
	--list-objects --type privkey >"$T/p11" 2>&1
[ "$(grep -c 'Access: *sensitive, always sensitive, never extractable' "$T/p11")" -eq 4 ] ||
	gw_fail "pkcs11-tool: $(cat "$T/p11")"
[ "$(grep -c 'Usage: *sign$' "$T/p11")" -eq 4 ] || gw_fail "pkcs11-tool usage: $(cat "$T/p11")"
gw_ok "pkcs11-tool: CKA_SENSITIVE true, CKA_EXTRACTABLE false, sign-only on all 4 keys"

# CSR signed in the token, verified by OpenSSL with the public key it carries
"$C" hsm csr --key "$SRV" --pin-file "$T/pin" --subject "/CN=gw.example.org/O=mtlsgw" \
	--san "DNS:gw.example.org,URI:spiffe://example.org/gw,IP:10.0.0.1" --out "$T/csr.pem" 2>/dev/null
openssl req -in "$T/csr.pem" -verify -noout 2>&1 | grep -q 'verify OK' || gw_fail "req -verify"
openssl req -in "$T/csr.pem" -noout -text >"$T/csr.txt"
grep -q 'Subject: CN = gw.example.org, O = mtlsgw' "$T/csr.txt" || gw_fail "csr subject"
grep -q 'DNS:gw.example.org, URI:spiffe://example.org/gw, IP Address:10.0.0.1' "$T/csr.txt" ||
	gw_fail "csr SANs: $(cat "$T/csr.txt")"
gw_ok "hsm csr (ec-p256): openssl req -verify OK, subject and DNS/URI/IP SANs"
for t in ec-p384 rsa-3072; do
	"$C" hsm csr --key "$(cat "$T/uri-$t")" --pin-file "$T/pin" --subject /CN=$t --out - \
		>"$T/csr-$t.pem"
	openssl req -in "$T/csr-$t.pem" -verify -noout 2>&1 | grep -q 'verify OK' ||
		gw_fail "req -verify $t"
done
gw_ok "hsm csr (ec-p384, rsa-3072): openssl req -verify OK"

# match: a certificate carrying another key does not match (pki_demo.sh: one that does)
openssl x509 -req -in "$T/csr.pem" -signkey <(openssl genpkey -algorithm EC \
	-pkeyopt ec_paramgen_curve:P-256 2>/dev/null) -days 1 -out "$T/other.pem" 2>/dev/null
one_line_fail "does not match key" "$C" hsm match --key "$SRV" --cert "$T/other.pem" \
	--pin-file "$T/pin"

# certificates on the token are listed too (stored there by OpenSC)
openssl x509 -in "$T/other.pem" -outform DER -out "$T/other.der"
pkcs11-tool --module "$M" --token-label gw --login --pin env:GW_TEST_PIN --write-object "$T/other.der" \
	--type cert --label other-cert --id 0c0d >/dev/null 2>&1
"$C" hsm list --token gw --pin-file "$T/pin" >"$T/list2"
grep -q '^cert     x509      other-cert       0c0d .*type=cert$' "$T/list2" &&
	grep -q 'subject /CN=gw.example.org/O=mtlsgw' "$T/list2" || gw_fail "cert listing: $(cat "$T/list2")"
gw_ok "hsm list shows certificates with their subject"

# errors: each its own clear line
one_line_fail "a token labelled 'gw' already exists" \
	"$C" hsm init --token gw --pin-file "$T/pin" --so-pin-file "$T/sopin"
one_line_fail "no token labelled 'nope'" "$C" hsm list --token nope --pin-file "$T/pin"
one_line_fail "PKCS#11 module '/nonexistent/p11.so' cannot be loaded" \
	"$C" hsm list --module /nonexistent/p11.so --token gw --pin-file "$T/pin"
printf '0000\n' >"$T/badpin"
one_line_fail "PIN file '$T/badpin' is accessible by group or others (mode 0644): chmod 600 it" \
	"$C" hsm list --token gw --pin-file "$T/badpin"
chmod 600 "$T/badpin"
one_line_fail "PIN rejected by token 'gw'" "$C" hsm list --token gw --pin-file "$T/badpin"
one_line_fail "cannot read PIN file '$T/nopin'" "$C" hsm list --token gw --pin-file "$T/nopin"
one_line_fail "PIN environment variable 'GW_UNSET_PIN' is not set" \
	"$C" hsm list --token gw --pin-env GW_UNSET_PIN
"$C" hsm list --token gw --pin-env GW_TEST_PIN | grep -q '^private ' || gw_fail "--pin-env"
gw_ok "--pin-env reads the PIN from the environment"
one_line_fail "never from the command line" "$C" hsm list --token gw --pin 1234
one_line_fail "no private key matches 'pkcs11:token=gw;object=nope'" \
	"$C" hsm csr --key "pkcs11:token=gw;object=nope" --subject /CN=x --out "$T/x" --pin-file "$T/pin"
one_line_fail "carries a PIN" \
	"$C" hsm csr --key "pkcs11:token=gw;object=k-ec-p256?pin-value=1234" --subject /CN=x \
	--out "$T/x" --pin-file "$T/pin"
one_line_fail "a private key labelled 'k-ec-p256' already exists" \
	"$C" hsm keygen --token gw --pin-file "$T/pin" --label k-ec-p256
one_line_fail "--type 'dsa' is not ec-p256" \
	"$C" hsm keygen --token gw --pin-file "$T/pin" --label d --type dsa
one_line_fail "subject 'CN=x' must look like /CN=name" \
	"$C" hsm csr --key "$SRV" --subject CN=x --out "$T/x" --pin-file "$T/pin"
one_line_fail "SAN 'EMAIL:a@b' is not DNS:name" \
	"$C" hsm csr --key "$SRV" --subject /CN=x --san EMAIL:a@b --out "$T/x" --pin-file "$T/pin"
one_line_fail "--out FILE is required" "$C" hsm csr --key "$SRV" --subject /CN=x --pin-file "$T/pin"
one_line_fail "unknown command 'frob'" "$C" hsm frob

# import-secret: the fleet's AES-256 wrapping key, 32 raw bytes, mode 0600.
# The key is printable here so that any echo of it is found by grep (and it
# holds "1234": one_line_fail's PIN check also catches it in every refusal).
KEYTXT=fleet-key-0123456789abcdefghijkl
printf '%s' "$KEYTXT" >"$T/fleet.key"
chmod 600 "$T/fleet.key"
"$C" hsm import-secret --token gw --pin-file "$T/pin" --label fleet-wrap --file "$T/fleet.key" \
	>"$T/imp.out" 2>"$T/imp.err" || gw_fail "import-secret: $(cat "$T/imp.err")"
grep -Eq "^secret key imported: token 'gw', label 'fleet-wrap', id [0-9a-f]{16}, aes-256" "$T/imp.out" &&
	grep -Eq '^pkcs11:token=gw;id=(%[0-9A-F]{2}){8};object=fleet-wrap;type=secret-key$' "$T/imp.out" ||
	gw_fail "import-secret printed: $(cat "$T/imp.out" "$T/imp.err")"
gw_ok "hsm import-secret: token, label, id and URI printed"
"$C" hsm list --token gw --pin-file "$T/pin" >"$T/list3"
grep -q '^secret   aes-256   fleet-wrap       [0-9a-f]\{16\}  *sensitive,non-extractable,encrypt .*type=secret-key$' \
	"$T/list3" || gw_fail "secret key listing: $(cat "$T/list3")"
gw_ok "hsm list shows the secret key by label and type, sensitive, non-extractable"
# OpenSC, independently: the token will not give the value out
pkcs11-tool --module "$M" --token-label gw --login --pin env:GW_TEST_PIN \
	--read-object --type secrkey --label fleet-wrap >"$T/p11-secret" 2>&1 &&
	gw_fail "pkcs11-tool read the secret key's value"
pkcs11-tool --module "$M" --token-label gw --login --pin env:GW_TEST_PIN \
	--list-objects --type secrkey >"$T/p11-sk" 2>&1
grep -q 'Access: *sensitive' "$T/p11-sk" && ! grep -q 'extractable$' "$T/p11-sk" &&
	grep -q 'Usage: *encrypt, decrypt$' "$T/p11-sk" || gw_fail "pkcs11-tool secret key: $(cat "$T/p11-sk")"
gw_ok "pkcs11-tool: the secret key is sensitive, encrypt/decrypt only, its value refused"
printf '%s' "$KEYTXT" >"$T/open.key"
chmod 644 "$T/open.key"
one_line_fail "key file '$T/open.key' is accessible by group or others (mode 0644): chmod 600 it" \
	"$C" hsm import-secret --token gw --pin-file "$T/pin" --label k2 --file "$T/open.key"
printf '%s' "${KEYTXT%?}" >"$T/short.key"
chmod 600 "$T/short.key"
one_line_fail "key file '$T/short.key' is 31 bytes; an AES-256 key is exactly 32 raw bytes" \
	"$C" hsm import-secret --token gw --pin-file "$T/pin" --label k2 --file "$T/short.key"
one_line_fail "an object labelled 'fleet-wrap' already exists on token 'gw'" \
	"$C" hsm import-secret --token gw --pin-file "$T/pin" --label fleet-wrap --file "$T/fleet.key"
one_line_fail "hsm import-secret: --file KEYFILE is required" \
	"$C" hsm import-secret --token gw --pin-file "$T/pin" --label k2
"$C" hsm list --token gw --pin-file "$T/pin" | grep -q ' k2 ' && gw_fail "a refused import left k2"
cat "$T/imp.out" "$T/imp.err" "$T/list3" "$T/err" | grep -q "$KEYTXT" &&
	gw_fail "the key's value was printed"
grep -q "$KEYTXT" "$T/p11-secret" "$T/p11-sk" && gw_fail "pkcs11-tool printed the key's value"
gw_ok "import-secret refusals leave nothing; the key value is never printed"
# the bash completion (read from --help) offers the command and its --file
comp=$(
	PATH=$(dirname "$C"):$PATH
	# shellcheck disable=SC1091
	. "$GW_SRC/contrib/bash-completion/mtlsgw-ctl"
	offer() { # ARGS... : what _mtlsgw_ctl offers for the last word
		COMP_WORDS=("$@")
		COMP_CWORD=$(($# - 1))
		_mtlsgw_ctl
		printf '%s;' "${COMPREPLY[@]}"
	}
	offer mtlsgw-ctl hsm im
	offer mtlsgw-ctl hsm import-secret --f
)
[ "$comp" = "import-secret;--file;" ] || gw_fail "completion: $comp"
gw_ok "bash completion: hsm im<TAB> import-secret, --f<TAB> --file"

# a key URI that names something that cannot sign (CKA_SIGN=false keys are
# covered by test_hsm: OpenSC and SoftHSM default CKA_SIGN to true)
one_line_fail "names a public key, not a private key" \
	"$C" hsm csr --key "pkcs11:token=gw;object=k-ec-p256;type=public" --subject /CN=x \
	--out "$T/x" --pin-file "$T/pin"

gw_done
