#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# mtlsgw-ctl ca roots|config|rotate|sign and status against the admin API of
# the real control plane (tests/lib/mesh_srv: config loader, snapshots to two
# reader threads, TLS extension, builtin CA in a fresh SoftHSM token, SQLite
# state). The three rotation steps as an operator does them (edit the file,
# `ca rotate`; `ca rotate --enable`), every refusal with its rule, client
# certificates checked by openssl, the state checked with sqlite3, and the
# socket refusing a non-root user. `mtlsgw --check` on the same config: the
# built-in backend not made yet before the first start (no state.db made),
# its keys matching state.db after, and a fail (exit 2) once its issuer key
# is deleted from the token. No packets: loopback-free, unix socket only.
. "$(dirname "$0")/../lib/common.sh"
. "$(dirname "$0")/../lib/ca.sh"

SRV=${1:?usage: ca_ctl.sh MESH_SRV}
ca_init

# the config with BACKENDS (YAML flow list) and ENABLED
cfg() { ca_srv_cfg gwc0 10.78.0.2 "$1" "$2"; }
B123='[ { name: ca-1, type: builtin }, { name: ca-2, type: builtin }, { name: ca-3, type: builtin } ]'

cfg "$B1" ca-1
# mtlsgw --check before the first start: nothing made yet, which is fine
pf() { # the preflight's exit code, its lines in $T/check.out
	local rc=0
	"$MTLSGW" --check --config "$T/gw.yaml" >"$T/check.out" 2>&1 || rc=$?
	echo "$rc"
}
rc=$(pf)
grep -q "^ok    CA backend 'ca-1': not made yet: the first start makes its root and issuer keys in token 'mtlsgw' (no state.db)" "$T/check.out" &&
	[ "$rc" != 2 ] || gw_fail "--check before the first start ($rc): $(cat "$T/check.out")"
[ ! -e "$T/state/state.db" ] || gw_fail "--check made state.db"
gw_ok "--check before the first start: ca-1 not made yet (ok), no state.db made"
gw_log "$T/srv.err"
gw_bg "$SRV" "$T/gw.yaml" 2>"$T/srv.err"
gw_wait 300 test -S "$S" || gw_fail "mesh_srv did not start: $(cat "$T/srv.err")"
gw_ok "control plane up, admin socket $S"
[ "$(stat -c %a "$S")" = 600 ] || gw_fail "socket mode $(stat -c %a "$S")"
gw_ok "admin socket is mode 0600"

# status: workers' generations, identity and CA expiries
out=$("$C" status --socket "$S")
grep -q '^generation  *1$' <<<"$out" || gw_fail "status: $out"
grep -q 'identity web' <<<"$out" || gw_fail "status has no identity line: $out"
grep -q '^ca-1 *root' <<<"$out" || gw_fail "status has no ca-1 root line: $out"
gw_ok "status: generation, identity and root expiries"
"$C" status --socket "$S" --json | js 'd["Workers"][0]["Generation"], d["Identities"][0]["Backend"]' |
	grep -qx '1 ca-1' || gw_fail "status --json"
gw_ok "status --json: worker 0 runs generation 1, identity from ca-1"

# roots and config
out=$("$C" ca roots --socket "$S")
grep -q '^ca-1 *builtin *yes' <<<"$out" || gw_fail "roots: $out"
"$C" ca roots --socket "$S" --json >"$T/roots.json"
js 'd["ActiveRootID"] == d["Roots"][0]["ID"] and d["TrustDomain"] == "example.org"' <"$T/roots.json" |
	grep -qx True || gw_fail "roots --json: $(cat "$T/roots.json")"
js 'd["Roots"][0]["RootCert"]' <"$T/roots.json" >"$T/ca1.pem"
gw_ok "ca roots: table and Consul-shaped JSON"
out=$("$C" ca config --socket "$S")
grep -q '^enabled backend: ca-1' <<<"$out" || gw_fail "ca config"
gw_ok "ca config"

# sign a client certificate through the API, and offline with --config
ca_sign_ok "$T/ca1.pem" spiffe://example.org/ns/billing billing --ttl 24h
gw_ok "ca sign (API): verifies against ca-1, SPIFFE ID in the SAN"
"$C" ca sign --config "$T/gw.yaml" --csr "$T/c.csr" --spiffe-id spiffe://example.org/ns/offline \
	--out "$T/c2.pem"
openssl verify -CAfile "$T/ca1.pem" -untrusted "$T/c2.pem" "$T/c2.pem" >/dev/null ||
	gw_fail "offline chain"
[ "$(sqlite3 "$T/state/state.db" "select count(*) from cert where kind='client' and backend='ca-1'")" = 2 ] ||
	gw_fail "both client certificates recorded"
gw_ok "ca sign --config (offline, beside the running gateway): recorded in the same store"
gw_expect_fail "not in trust domain example.org" "$C" ca sign --socket "$S" --csr "$T/c.csr" \
	--spiffe-id spiffe://evil.org/x
gw_expect_fail "is not a duration" "$C" ca sign --socket "$S" --csr "$T/c.csr" \
	--spiffe-id spiffe://example.org/x --ttl soon

# rotation: add and enable at once is refused, the running config stays
cfg "$B123" ca-3
gw_expect_fail "rotation rule add-before-enable" "$C" ca rotate --socket "$S"
out=$("$C" ca config --socket "$S")
grep -q '^enabled backend: ca-1' <<<"$out" || gw_fail "config changed"
# step 1
cfg "$B12" ca-1
out=$("$C" ca rotate --socket "$S")
grep -q 'config reloaded' <<<"$out" || gw_fail "step 1"
[ "$("$C" ca roots --socket "$S" --json | js 'len(d["Roots"])')" = 2 ] || gw_fail "2 roots"
gw_ok "step 1: ca-2 added, both roots trusted, identity still from ca-1"
# step 3 too early
cfg "$B2" ca-2
gw_expect_fail "rotation rule remove-not-enabled" "$C" ca rotate --socket "$S"
# step 2 through the API
gw_expect_fail "no backend named 'nope'" "$C" ca rotate --socket "$S" --enable nope
out=$("$C" ca rotate --socket "$S" --enable ca-2)
grep -q 'enabled backend is now ca-2' <<<"$out" || gw_fail "step 2"
"$C" status --socket "$S" --json | js 'd["Identities"][0]["Backend"]' | grep -qx ca-2 ||
	gw_fail "identity not re-issued by ca-2"
gw_ok "step 2: ca-2 enabled, identity re-issued by ca-2"
"$C" ca roots --socket "$S" --json >"$T/roots.json"
js 'len(d["Roots"][1]["IntermediateCerts"])' <"$T/roots.json" | grep -qx 2 ||
	gw_fail "ca-2 should serve its issuer and its cross-signed root"
js 'd["Roots"][0]["RootCert"]' <"$T/roots.json" >"$T/ca1.pem"
js 'd["Roots"][1]["RootCert"]' <"$T/roots.json" >"$T/ca2.pem"
"$C" ca sign --socket "$S" --csr "$T/c.csr" --spiffe-id spiffe://example.org/ns/new --out "$T/c3.pem"
for r in ca1 ca2; do
	openssl verify -CAfile "$T/$r.pem" -untrusted "$T/c3.pem" "$T/c3.pem" >/dev/null ||
		gw_fail "a ca-2 client chain does not verify against $r alone"
done
gw_ok "ca-2 leaves verify against ca-1's root alone and ca-2's root alone (cross-signed)"
# step 3: ca-1's client certificates are still valid
gw_expect_fail "rotation rule remove-after-expiry: backend ca-1 issued 2 certificates" \
	"$C" ca rotate --socket "$S"
"$C" ca rotate --socket "$S" --force >/dev/null
out=$("$C" ca roots --socket "$S")
grep -q '^ca-2 *builtin *yes' <<<"$out" && ! grep -q '^ca-1' <<<"$out" || gw_fail "step 3: $out"
gw_ok "step 3 (--force): only ca-2 left"
[ "$(sqlite3 "$T/state/state.db" "select group_concat(event || ':' || backend, ' ') from history")" = \
	"add:ca-1 add:ca-2 enable:ca-2 remove:ca-1" ] || gw_fail "history: $(sqlite3 "$T/state/state.db" 'select * from history')"
gw_ok "rotation history in the state store"

# bad requests leave everything as it is
out=$(curl -s -w ' %{http_code}' --unix-socket "$S" -X PUT \
	--data '{"Config":{"EnabledBackend":"ca-1"},"Bogus":1}' http://gw/v1/connect/ca/configuration)
case "$out" in *"unknown field 'Bogus'"*" 400") ;; *) gw_fail "bad PUT: $out" ;; esac
out=$("$C" ca config --socket "$S")
grep -q '^enabled backend: ca-2' <<<"$out" || gw_fail "config changed"
gw_ok "a body with an unknown field: 400, nothing changed"
# mtlsgw --check: the enabled built-in backend's keys in the token match
# the certificates in state.db; with its issuer key deleted from the token
# (an HSM that lost it), the check fails, exit 2, and says which key
rc=$(pf)
for role in root issuer; do
	grep -q "^ok    CA backend 'ca-2': $role key pkcs11:.* signs, and matches the $role in $T/state/state.db" "$T/check.out" ||
		gw_fail "--check: no ok line for ca-2's $role key ($rc): $(cat "$T/check.out")"
done
[ "$rc" != 2 ] || gw_fail "--check failed with every key present: $(cat "$T/check.out")"
pkcs11-tool --module /usr/lib/softhsm/libsofthsm2.so --token-label mtlsgw --login \
	--pin "$(cat "$T/pin")" --delete-object --type privkey --label ca-ca-2-issuer >/dev/null 2>&1 ||
	gw_fail "pkcs11-tool could not delete ca-ca-2-issuer"
rc=$(pf)
[ "$rc" = 2 ] && grep -q "^fail  CA backend 'ca-2': issuer key: .*HSM key loss and recovery" "$T/check.out" ||
	gw_fail "--check with the issuer key gone ($rc): $(cat "$T/check.out")"
gw_ok "--check: ca-2's root and issuer keys match state.db; issuer key deleted: $(grep "^fail  CA backend" "$T/check.out" | cut -c1-150)"

# a non-root user cannot even connect
chmod 711 "$T"
gw_expect_fail "Permission denied" setpriv --reuid=nobody --regid=nogroup --clear-groups \
	"$C" ca roots --socket "$S"
gw_done
