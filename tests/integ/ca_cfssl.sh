#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# A cfssl CA backend end to end: Debian's `cfssl serve` on loopback with a CA
# made here, the control plane (tests/lib/mesh_srv) using it, mtlsgw-ctl on
# top. With a CA profile cfssl signs an issuer for a key in the HSM (cfssl
# 1.2.0 cannot write URI SANs); with a leaf profile, or with nobody
# listening, the errors say so plainly. Loopback only.
. "$(dirname "$0")/../lib/common.sh"
. "$(dirname "$0")/../lib/ca.sh"

C=$MTLSGW_CTL
SRV=${1:?usage: ca_cfssl.sh MESH_SRV}
S=$T/admin.sock
command -v cfssl >/dev/null || gw_fail "cfssl not installed (Debian golang-cfssl; tools/deps.sh)"
gw_token mtlsgw
mkdir -p "$T/state"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/cf.key" \
	-out "$T/cf.pem" -subj '/CN=cfssl test root' -days 30 \
	-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
cat >"$T/cfssl.json" <<'EOF'
{"signing": {"default": {"expiry": "72h", "usages": ["digital signature", "server auth", "client auth"]},
 "profiles": {
  "issuer": {"expiry": "720h", "usages": ["cert sign", "crl sign"],
             "ca_constraint": {"is_ca": true, "max_path_len": 0, "max_path_len_zero": true}},
  "leaf": {"expiry": "72h", "usages": ["digital signature", "server auth", "client auth"]}}}}
EOF
gw_bg cfssl serve -address 127.0.0.1 -port "$PORT" -ca "$T/cf.pem" -ca-key "$T/cf.key" \
	-config "$T/cfssl.json" 2>"$T/cfssl.log"
gw_wait 300 curl -sf -X POST -d '{"label":""}' "http://127.0.0.1:$PORT/api/v1/cfssl/info" ||
	gw_fail "cfssl serve did not start: $(cat "$T/cfssl.log")"
gw_ok "cfssl serve on 127.0.0.1:$PORT"

cfg() { # PORT PROFILE
	ca_srv_cfg gwf0 10.80.0.2 \
		"[ { name: ca-3, type: cfssl, conf: { url: \"http://127.0.0.1:$1\", profile: $2 } } ]" ca-3
}

# nobody listening: the start fails and says where it looked
cfg "$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')" issuer
rc=0
"$SRV" "$T/gw.yaml" 2>"$T/srv.err" || rc=$?
[ "$rc" != 0 ] && grep -q 'cannot reach cfssl at http://127.0.0.1:.*is `cfssl serve` running' "$T/srv.err" ||
	gw_fail "no cfssl: rc $rc, $(cat "$T/srv.err")"
gw_ok "cfssl unreachable: start refused, plainly ($(grep -o 'backend ca-3: cannot reach cfssl[^(]*' "$T/srv.err"))"

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
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/c.key" -subj /CN=c \
	-out "$T/c.csr" 2>/dev/null
"$C" ca sign --socket "$S" --csr "$T/c.csr" --spiffe-id spiffe://example.org/ns/c --out "$T/c.pem"
openssl verify -purpose sslclient -CAfile "$T/cf.pem" -untrusted "$T/c.pem" "$T/c.pem" >/dev/null ||
	gw_fail "client chain does not verify against cfssl's root"
out=$(openssl x509 -in "$T/c.pem" -noout -ext subjectAltName)
grep -q 'URI:spiffe://example.org/ns/c' <<<"$out" ||
	gw_fail "no SPIFFE ID"
gw_ok "ca sign: leaf under cfssl's root with the SPIFFE ID, verified by openssl"
kill -TERM "$SRV_PID"
wait "$SRV_PID" || true

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
if test -S "$S"; then # a cfssl that writes URI SANs (>= 1.3) issues the identity
	"$C" ca sign --socket "$S" --csr "$T/c.csr" --spiffe-id spiffe://example.org/ns/c >/dev/null
	gw_ok "leaf profile: this cfssl writes URI SANs"
else
	grep -q 'signed without the URI SAN spiffe://example.org/gateway/web' "$T/srv.err" ||
		gw_fail "leaf profile: $(cat "$T/srv.err")"
	gw_ok "leaf profile: identity refused, plainly ($(grep -o 'cfssl before 1.3[^;]*' "$T/srv.err" | head -1))"
fi
gw_done
