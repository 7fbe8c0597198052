# SPDX-License-Identifier: BSD-3-Clause
# tests/lib/ca.sh - what the CA integration scripts share (ca_ctl.sh,
# ca_crash.sh, ca_cfssl.sh against tests/lib/mesh_srv, ca_e2e.sh against
# the real gateway); sourced after common.sh.
#
# The backend lists they rotate through, the JSON probe they read the admin
# API's answers with, and the CA part of the config (token PIN, state dir,
# admin socket $S, the mtls section), so a change to the config's CA keys is
# made once.

# ca_init : C (mtlsgw-ctl), S (the admin socket), the token mtlsgw, $T/state
ca_init() {
	C=$MTLSGW_CTL
	S=$T/admin.sock
	gw_token mtlsgw
	mkdir -p "$T/state"
}

B1='[ { name: ca-1, type: builtin } ]'
B12='[ { name: ca-1, type: builtin }, { name: ca-2, type: builtin } ]'
B2='[ { name: ca-2, type: builtin } ]'

# js EXPR: EXPR over the JSON document d read from stdin, printed
js() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

# ca_cfg_mtls BACKENDS ENABLED: the config's CA part on stdout (socket $S)
ca_cfg_mtls() {
	cat <<EOF
hsm: { pin_file: pin }
state_dir: state
admin: { socket: $S }
mtls:
  trust_domain: example.org
  enabledBackend: $2
  backends: $1
EOF
}

# ca_sign_ok ROOT SPIFFE_ID CN [ARG]... : a fresh P-256 key and CSR
# ($T/c.key, $T/c.csr, subject CN) signed through the admin API into
# $T/c.pem (ARGs go to `ca sign`); the chain must verify for client auth
# against ROOT and carry SPIFFE_ID as a URI SAN.
ca_sign_ok() {
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/c.key" \
		-subj "/CN=$3" -out "$T/c.csr" 2>/dev/null
	"$C" ca sign --socket "$S" --csr "$T/c.csr" --spiffe-id "$2" --out "$T/c.pem" "${@:4}" ||
		gw_fail "ca sign $2"
	openssl verify -purpose sslclient -CAfile "$1" -untrusted "$T/c.pem" "$T/c.pem" >/dev/null ||
		gw_fail "issued client chain does not verify against $1"
	local san
	san=$(openssl x509 -in "$T/c.pem" -noout -ext subjectAltName)
	grep -q "URI:$2" <<<"$san" || gw_fail "no SPIFFE ID $2 in the issued certificate: $san"
}

# ca_srv_cfg DEVICE IP BACKENDS ENABLED: $T/gw.yaml for tests/lib/mesh_srv, one
# mesh tls-echo listener on IP:443 (mesh_srv opens no port: the dataplane
# part only has to be valid)
ca_srv_cfg() {
	cat >"$T/gw.yaml" <<EOF
dataplane:
  workers: [1]
  no_huge: true
  ports: [ { name: wan, driver: tap, device: $1, address: $2/24 } ]
listeners:
  - name: web
    address: $2:443
    service: tls-echo
    tls: { client_auth: required }
    trust: { mode: mesh }
EOF
	ca_cfg_mtls "$3" "$4" >>"$T/gw.yaml"
}
