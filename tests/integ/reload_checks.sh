#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# A reload validates what a start validates, and is all or nothing. Through
# SIGHUP, POST /v1/reload (curl) and `mtlsgw-ctl ca rotate`, each of a wrong
# PIN file, a PIN file others may read, a key URI that names no key and a
# certificate that does not match its key is refused with a message that
# says so: traffic goes on, the generation stays. A reload that adds a CA
# backend and whose snapshot then cannot be built leaves the CA exactly as
# it was (roots listing, enabled backend, state.db rows); the same reload
# without the broken listener then works. Enabling a backend through the
# API (PUT /v1/connect/ca/configuration) is all or nothing too. A PIN in a
# variable is wiped from the environment and still serves reloads. The
# gateway finds its token through hsm.env alone (SOFTHSM2_CONF is not in its
# environment), also in the PIN checks of its reloads. The log names each
# reload's source: SIGHUP, admin API (curl), mtlsgw-ctl.
. "$(dirname "$0")/../lib/common.sh"
. "$GW_SRC/bench/pki.sh"

P=$T/pki
S=$T/admin.sock
bench_pki_ctl "$MTLSGW_CTL" "$P" "$T/tok" >/dev/null || gw_fail "PKI and token setup"
SNI=$BENCH_SERVERNAME
KEY="pkcs11:token=gw;object=server;type=private"

# write_config FILE KEY CERT PIN_FILE BACKENDS
write_config() {
	gw_gateway_config "$1" "[1]" "  - name: ext
    address: $GW_GW_IP:8443
    service: tls-echo
    tls:
      identity:
        - cert: $3
          key: \"$2\"
          sni: [$SNI]
    trust: { mode: ca, certs: [$P/int.pem] }
  - name: web
    address: $GW_GW_IP:8444
    service: tls-echo
    tls: { client_auth: required }
    trust: { mode: mesh }"
	cat >>"$1" <<EOF
hsm: { module: $BENCH_PKCS11_MODULE, pin_file: $4, env: { SOFTHSM2_CONF: $HSM_CONF } }
state_dir: $T/state
admin: { socket: $S }
mtls:
  trust_domain: example.org
  enabledBackend: ca-1
  backends: $5
EOF
}
B1='[ { name: ca-1, type: builtin } ]'
B12='[ { name: ca-1, type: builtin }, { name: ca-2, type: builtin } ]'
GOOD_CERT=$P/server-hsm.chain.pem
# the gateway's only SOFTHSM2_CONF is its hsm.env (the default config has no
# token gw): its start and every reload's PIN-check child depend on it
HSM_CONF=$SOFTHSM2_CONF
write_config "$T/gw.yaml" "$KEY" "$GOOD_CERT" "$P/pin" "$B1"
cp "$T/gw.yaml" "$T/good.yaml"
unset SOFTHSM2_CONF
gw_start_gateway "$T/gw.yaml"
export SOFTHSM2_CONF=$HSM_CONF
! tr '\0' '\n' <"/proc/$GW_GW_PID/environ" | grep -q "^SOFTHSM2_CONF=" ||
	gw_fail "the gateway inherited SOFTHSM2_CONF"
gw_wait 100 test -S "$S" || gw_fail "no admin socket"
gw_ok "gateway up with SOFTHSM2_CONF from hsm.env only: an HSM identity listener and a mesh listener, builtin CA ca-1"

sclient() { # sclient PORT: one echo through the ext listener
	gw_sclient "ping-$1" -connect "$GW_GW_IP:$1" -servername "$SNI" \
		-CAfile "$P/root.pem" -verify_return_error -quiet -no_ign_eof \
		-cert "$P/client.leaf.pem" -key "$P/client.key"
}
serving() {
	case "$(sclient 8443)" in *ping-8443*) ;; *) gw_fail "$1: ext no longer serves" ;; esac
}
gen() { curl -sS --unix-socket "$S" http://x/v1/status | "$GW_PY" -c 'import json,sys; print(json.load(sys.stdin)["Generation"])'; }
roots() { "$MTLSGW_CTL" ca roots --socket "$S" --json | "$GW_PY" -c 'import json,sys; d=json.load(sys.stdin); print(" ".join(r["Name"] + (":active" if r["Active"] else "") for r in d["Roots"]))'; }
dump() { sqlite3 "$T/state/state.db" .dump; }
# more_than PATTERN N: gw.err has more than N lines matching PATTERN
more_than() { [ "$(grep -c "$1" "$T/gw.err")" -gt "$2" ]; }

serving "at start"
G0=$(gen)
R0=$(roots)
[ "$R0" = "ca-1:active" ] || gw_fail "roots at start: $R0"

# refused CASE WANT: the current gw.yaml is refused by all three reload paths
refused() {
	local case=$1 want=$2 n out code
	n=$(grep -c "reload (SIGHUP):" "$T/gw.err" || true)
	kill -HUP "$GW_GW_PID"
	gw_wait 300 more_than "reload (SIGHUP):" "$n" ||
		gw_fail "$case: no SIGHUP line"
	out=$(grep "reload (SIGHUP):" "$T/gw.err" | tail -1)
	case "$out" in *"$want"*"running config unchanged"*) ;;
	*) gw_fail "$case: SIGHUP said '$out', want '$want'" ;; esac
	code=$(curl -sS --unix-socket "$S" -o "$T/api.out" -w '%{http_code}' -X POST \
		-d '{}' http://x/v1/reload)
	[ "$code" != 200 ] && grep -qF "$want" "$T/api.out" ||
		gw_fail "$case: POST /v1/reload answered $code: $(cat "$T/api.out")"
	grep "reload (admin API):" "$T/gw.err" | tail -1 | grep -qF "$want" ||
		gw_fail "$case: no 'reload (admin API)' line"
	out=$("$MTLSGW_CTL" ca rotate --socket "$S" 2>&1) && gw_fail "$case: ca rotate accepted: $out"
	case "$out" in *"$want"*) ;; *) gw_fail "$case: ca rotate said '$out'" ;; esac
	grep "reload (mtlsgw-ctl):" "$T/gw.err" | tail -1 | grep -qF "$want" ||
		gw_fail "$case: no 'reload (mtlsgw-ctl)' line"
	serving "$case"
	[ "$(gen)" = "$G0" ] || gw_fail "$case: generation moved from $G0 to $(gen)"
	[ "$(roots)" = "$R0" ] || gw_fail "$case: roots changed to $(roots)"
	gw_ok "$case: refused by SIGHUP, POST /v1/reload and ca rotate ('$want'); serving, generation $G0"
}

# --- item: the checks a start makes
printf '0000000000000000' >"$T/wrong.pin"
chmod 600 "$T/wrong.pin"
write_config "$T/gw.yaml" "$KEY" "$GOOD_CERT" "$T/wrong.pin" "$B1"
refused "wrong PIN file" "PIN rejected by token 'gw'"
cp "$P/pin" "$T/loose.pin"
chmod 644 "$T/loose.pin"
write_config "$T/gw.yaml" "$KEY" "$GOOD_CERT" "$T/loose.pin" "$B1"
refused "PIN file readable by others" "is accessible by group or others"
write_config "$T/gw.yaml" "pkcs11:token=gw;object=nosuch;type=private" "$GOOD_CERT" "$P/pin" "$B1"
refused "key URI naming no key" "object=nosuch"
write_config "$T/gw.yaml" "$KEY" "$P/other.chain.pem" "$P/pin" "$B1"
refused "certificate of another key" "does not match"

# --- all or nothing: a CA change whose snapshot cannot be built
D0=$(dump)
write_config "$T/gw.yaml" "pkcs11:token=gw;object=nosuch;type=private" "$GOOD_CERT" "$P/pin" "$B12"
refused "backend added, listener key missing" "object=nosuch"
[ "$(dump)" = "$D0" ] || { diff <(echo "$D0") <(dump) >&2; gw_fail "state.db changed by a refused reload"; }
gw_ok "refused reload with a new backend: state.db exactly as before"

# then the good one
write_config "$T/gw.yaml" "$KEY" "$GOOD_CERT" "$P/pin" "$B12"
n=$(grep -c "reload (SIGHUP): reloaded" "$T/gw.err" || true)
kill -HUP "$GW_GW_PID"
gw_wait 300 more_than "reload (SIGHUP): reloaded" "$n" ||
	gw_fail "good reload: $(tail -3 "$T/gw.err")"
[ "$(gen)" -gt "$G0" ] || gw_fail "good reload: generation still $(gen)"
[ "$(roots)" = "ca-1:active ca-2" ] || gw_fail "good reload: roots $(roots)"
serving "after the good reload"
gw_ok "the same CA change with a good listener: reloaded (generation $(gen)), roots $(roots)"

gw_stop_gateway
gw_ok "clean stop"

# --- the PIN from a variable: gone from the environment, still there for reloads
sed -i "s|pin_file: $P/pin|pin_env: MTLSGW_TEST_PIN|" "$T/gw.yaml"
grep -q "pin_env: MTLSGW_TEST_PIN" "$T/gw.yaml" || gw_fail "config with pin_env"
PIN=$(cat "$P/pin")
export MTLSGW_TEST_PIN=$PIN
unset SOFTHSM2_CONF
gw_start_gateway "$T/gw.yaml"
export SOFTHSM2_CONF=$HSM_CONF
unset MTLSGW_TEST_PIN
serving "started with pin_env"
! grep -qaF "$PIN" "/proc/$GW_GW_PID/environ" || gw_fail "the PIN is in /proc/PID/environ"
! tr '\0' '\n' <"/proc/$GW_GW_PID/environ" | grep -q "^MTLSGW_TEST_PIN=." ||
	gw_fail "MTLSGW_TEST_PIN still set in the gateway"
n=$(grep -c "reload (SIGHUP): reloaded" "$T/gw.err" || true)
kill -HUP "$GW_GW_PID"
gw_wait 300 more_than "reload (SIGHUP): reloaded" "$n" || gw_fail "pin_env reload: $(tail -3 "$T/gw.err")"
serving "after a pin_env reload"
gw_ok "pin_env: the PIN is wiped from the gateway's environment, a reload still logs in"

# --- all or nothing through the API too: enabling ca-2 (PUT) while ext's key
# is gone from the token cannot build a snapshot, so nothing changes
G1=$(gen)
R1=$(roots)
D1=$(dump)
[ "$R1" = "ca-1:active ca-2" ] || gw_fail "roots before the PUT: $R1"
MTLSGW_T_PIN=$PIN pkcs11-tool --module "$BENCH_PKCS11_MODULE" --token-label gw --login \
	--pin env:MTLSGW_T_PIN --delete-object --type privkey --label server >/dev/null 2>&1 ||
	gw_fail "could not delete the key from the token"
code=$(curl -sS --unix-socket "$S" -o "$T/put.out" -w '%{http_code}' -X PUT \
	-d '{"Config":{"EnabledBackend":"ca-2"}}' http://x/v1/connect/ca/configuration)
[ "$code" != 200 ] && grep -q "object=server" "$T/put.out" ||
	gw_fail "PUT enable ca-2 without ext's key answered $code: $(cat "$T/put.out")"
[ "$(roots)" = "$R1" ] || gw_fail "refused PUT: roots changed to $(roots)"
[ "$(gen)" = "$G1" ] || gw_fail "refused PUT: generation moved from $G1 to $(gen)"
[ "$(dump)" = "$D1" ] || { diff <(echo "$D1") <(dump) >&2; gw_fail "state.db changed by a refused PUT"; }
gw_ok "PUT enable ca-2 with a listener that cannot be built: refused ($code), roots, generation and state.db unchanged"
gw_stop_gateway
gw_done
