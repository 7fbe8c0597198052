#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# A cfssl CA backend end to end: Debian's `cfssl serve` on loopback with a CA
# made here, over https (-tls-cert/-tls-key) checked against conf.ca_file,
# the control plane (tests/lib/mesh_srv) using it, mtlsgw-ctl on top. With a
# CA profile cfssl signs an issuer for a key in the HSM (cfssl 1.2.0 cannot
# write URI SANs); with a leaf profile, with nobody listening, with the wrong
# ca_file or with another signing root behind the same URL, the errors say
# so plainly. Plain http:// works with a warning. Loopback only.
. "$(dirname "$0")/../lib/common.sh"
. "$(dirname "$0")/../lib/ca.sh"

SRV=${1:?usage: ca_cfssl.sh MESH_SRV}
command -v cfssl >/dev/null || gw_fail "cfssl not installed (Debian golang-cfssl; tools/deps.sh)"
ca_init
gw_log "$T/srv.err" # mesh_srv's stderr: its tail is printed if a check fails
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/cf.key" \
	-out "$T/cf.pem" -subj '/CN=cfssl test root' -days 30 \
	-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/cf2.key" \
	-out "$T/cf2.pem" -subj '/CN=cfssl other root' -days 30 \
	-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
# TLS: a CA, cfssl's server certificate for 127.0.0.1 under it, an unrelated CA
for c in tls-ca tls-other; do
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/$c.key" \
		-out "$T/$c.pem" -subj "/CN=$c" -days 30 -addext basicConstraints=critical,CA:TRUE 2>/dev/null
done
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/tls-srv.key" \
	-out "$T/tls-srv.csr" -subj /CN=127.0.0.1 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >"$T/tls-srv.ext"
openssl x509 -req -in "$T/tls-srv.csr" -CA "$T/tls-ca.pem" -CAkey "$T/tls-ca.key" -CAcreateserial \
	-days 30 -extfile "$T/tls-srv.ext" -out "$T/tls-srv.pem" 2>/dev/null
cat >"$T/cfssl.json" <<'EOF'
{"signing": {"default": {"expiry": "72h", "usages": ["digital signature", "server auth", "client auth"]},
 "profiles": {
  "issuer": {"expiry": "720h", "usages": ["cert sign", "crl sign"],
             "ca_constraint": {"is_ca": true, "max_path_len": 0, "max_path_len_zero": true}},
  "leaf": {"expiry": "72h", "usages": ["digital signature", "server auth", "client auth"]}}}}
EOF
cfssl_up() { # ROOT (cf or cf2) [http]: cfssl serve signing with ROOT, https unless "http"
	local tls=(-tls-cert "$T/tls-srv.pem" -tls-key "$T/tls-srv.key") scheme=https
	[ "${2:-}" = http ] && tls=() && scheme=http
	gw_bg cfssl serve -address 127.0.0.1 -port "$PORT" -ca "$T/$1.pem" -ca-key "$T/$1.key" \
		-config "$T/cfssl.json" "${tls[@]}" 2>"$T/cfssl.log"
	CF_PID=$GW_LAST_PID
	gw_wait 300 curl -sf --cacert "$T/tls-ca.pem" -X POST -d '{"label":""}' \
		"$scheme://127.0.0.1:$PORT/api/v1/cfssl/info" ||
		gw_fail "cfssl serve did not start: $(cat "$T/cfssl.log")"
}
cfssl_down() {
	kill -TERM "$CF_PID"
	wait "$CF_PID" || true
}
cfssl_up cf
gw_ok "cfssl serve on https://127.0.0.1:$PORT"

cfg() { # PORT PROFILE [CA_FILE|-] [SCHEME]: CA_FILE "-" for none
	local ca=${3:-$T/tls-ca.pem} ca_kv=""
	[ "$ca" != - ] && ca_kv=", ca_file: \"$ca\""
	ca_srv_cfg gwf0 10.80.0.2 \
		"[ { name: ca-3, type: cfssl, conf: { url: \"${4:-https}://127.0.0.1:$1\", profile: $2$ca_kv } } ]" ca-3
}

# nobody listening: the start fails and says where it looked
cfg "$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')" issuer
rc=0
"$SRV" "$T/gw.yaml" 2>"$T/srv.err" || rc=$?
[ "$rc" != 0 ] && grep -q 'cannot reach cfssl at https://127.0.0.1:.*is `cfssl serve` running' "$T/srv.err" ||
	gw_fail "no cfssl: rc $rc, $(cat "$T/srv.err")"
gw_ok "cfssl unreachable: start refused, plainly ($(grep -o 'backend ca-3: cannot reach cfssl[^(]*' "$T/srv.err"))"

# the wrong ca_file: cfssl's server certificate is not trusted, start refused
cfg "$PORT" issuer "$T/tls-other.pem"
rc=0
"$SRV" "$T/gw.yaml" 2>"$T/srv.err" || rc=$?
[ "$rc" != 0 ] && grep -q "backend ca-3: cfssl https://127.0.0.1:$PORT: TLS: .*tls-other.pem must hold the CA" \
	"$T/srv.err" || gw_fail "wrong ca_file: rc $rc, $(cat "$T/srv.err")"
gw_ok "wrong ca_file: refused ($(grep -o 'TLS: [^(]*' "$T/srv.err" | head -1))"

# a CA profile: an issuer in the HSM under cfssl's root
cfg "$PORT" issuer
gw_bg "$SRV" "$T/gw.yaml" 2>"$T/srv.err"
SRV_PID=$GW_LAST_PID
gw_wait 300 test -S "$S" || gw_fail "mesh_srv: $(cat "$T/srv.err")"
"$C" ca roots --socket "$S" --json >"$T/roots.json"
js 'd["Roots"][0]["Type"], len(d["Roots"][0]["IntermediateCerts"])' <"$T/roots.json" | grep -qx 'cfssl 1' ||
	gw_fail "roots: $(cat "$T/roots.json")"
js 'd["Roots"][0]["RootCert"]' <"$T/roots.json" >"$T/root.pem"
openssl x509 -in "$T/root.pem" -noout -subject >"$T/root.subj"
grep -q 'cfssl test root' "$T/root.subj" || gw_fail "root is not cfssl's: $(cat "$T/root.subj")"
gw_ok "ca roots: cfssl's root, one issuer (signed by cfssl)"
ca_sign_ok "$T/cf.pem" spiffe://example.org/ns/c c
gw_ok "ca sign: leaf under cfssl's root with the SPIFFE ID, verified by openssl"
kill -TERM "$SRV_PID"
wait "$SRV_PID" || true

# the same URL, now signing with another root: the pinned root wins, start refused
cfssl_down
cfssl_up cf2
rc=0
"$SRV" "$T/gw.yaml" 2>"$T/srv.err" || rc=$?
[ "$rc" != 0 ] && grep -q "backend ca-3: cfssl https://127.0.0.1:$PORT now serves root SHA256 .*, but this backend's root is .*; refused" \
	"$T/srv.err" || gw_fail "changed root: rc $rc, $(cat "$T/srv.err")"
want=$(openssl x509 -in "$T/cf2.pem" -noout -fingerprint -sha256 | cut -d= -f2 | cut -c1-35)
grep -q "now serves root SHA256 $want" "$T/srv.err" || gw_fail "changed root: not named as $want"
gw_ok "changed cfssl root: refused, both fingerprints named"
cfssl_down
cfssl_up cf

# plain http still works, with a warning
cfssl_down
cfssl_up cf http
rm -rf "$T/state" && mkdir -p "$T/state"
cfg "$PORT" issuer - http
gw_bg "$SRV" "$T/gw.yaml" 2>"$T/srv.err"
SRV_PID=$GW_LAST_PID
gw_wait 300 test -S "$S" || gw_fail "mesh_srv over http: $(cat "$T/srv.err")"
grep -q "ca: warning: backend ca-3: cfssl http://127.0.0.1:$PORT is plain http" "$T/srv.err" ||
	gw_fail "no warning for http: $(cat "$T/srv.err")"
gw_ok "http:// works, with a warning"
kill -TERM "$SRV_PID"
wait "$SRV_PID" || true
cfssl_down
cfssl_up cf

# a leaf profile: cfssl 1.2.0 writes the ID as a DNS name; refused with the reason
rm -rf "$T/state" && mkdir -p "$T/state"
cfg "$PORT" leaf
gw_bg "$SRV" "$T/gw.yaml" 2>"$T/srv.err"
SRV_PID=$GW_LAST_PID
for _ in $(seq 300); do
	test -S "$S" && break
	kill -0 "$SRV_PID" 2>/dev/null || break
	sleep 0.1
done
# Debian 12's cfssl is 1.2.0: it writes the ID as a DNS name, so the start fails
cfssl version | grep -qx 'Version: 1.2.0' || gw_fail "expected Debian 12's cfssl 1.2.0"
! test -S "$S" || gw_fail "leaf profile: a leaf without the URI SAN was accepted"
grep -q 'signed without the URI SAN spiffe://example.org/gateway/web' "$T/srv.err" ||
	gw_fail "leaf profile: $(cat "$T/srv.err")"
gw_ok "leaf profile: identity refused, plainly ($(grep -o 'cfssl before 1.3[^;]*' "$T/srv.err" | head -1))"
gw_done
