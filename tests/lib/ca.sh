# SPDX-License-Identifier: BSD-3-Clause
# tests/lib/ca.sh - what the CA integration scripts share (ca_ctl.sh,
# ca_crash.sh, ca_cfssl.sh against tests/lib/mesh_srv); sourced after
# common.sh. ca_e2e.sh (the real gateway) still has its own copy of the CA
# part: ca_cfg_mtls is meant for it, it was being edited when this was made.
#
# The backend lists they rotate through, the JSON probe they read the admin
# API's answers with, and the CA part of the config (token PIN, state dir,
# admin socket $S, the mtls section), so a change to the config's CA keys is
# made once.

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
