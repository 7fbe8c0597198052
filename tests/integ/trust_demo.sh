#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The README's "Trust" example, for real: a SoftHSM token, `mtlsgw-ctl pki
# demo`, a config with the seed's three kinds of listener (root anchor,
# intermediate anchor, pinned client), and `trust check` on each demo chain.
. "$(dirname "$0")/../lib/common.sh"

C=$MTLSGW_CTL
cd "$T"
gw_token gw
uri=$("$C" hsm keygen --token gw --pin-file "$T/pin" --label server --type ec-p256)
"$C" pki demo --dir pki --token gw --pin-file "$T/pin" --key "$uri" --trust-domain example.org \
	--server-san DNS:gw.example.org >/dev/null
gw_ok "demo PKI around an HSM key"

id="identity: [{cert: pki/server.chain.pem, key: \"$uri\"}]"
cat >gw.yaml <<EOF
dataplane:
  workers: [1]
  no_huge: true
  ports:
    - {name: wan, driver: tap, device: mtlsgw0, address: 10.99.0.2/24}
listeners:
  - name: api            # root anchor: clients send leaf + intermediate
    address: 10.99.0.2:443
    service: tls-echo
    tls: {$id}
    trust:
      mode: ca
      certs: [pki/root.pem]
      allow: {spiffe: ["spiffe://example.org/*"]}
  - name: partner        # intermediate anchor: the leaf alone is enough
    address: 10.99.0.2:8443
    service: tls-echo
    tls: {$id}
    trust: {mode: ca, certs: [pki/intermediate.pem]}
  - name: dp             # pinned: exactly this client certificate
    address: 10.99.0.2:8005
    service: tls-echo
    tls: {$id}
    trust: {mode: pinned, certs: [pki/client.pem]}
  - name: prod-only
    address: 10.99.0.2:8444
    service: tls-echo
    tls: {$id}
    trust:
      mode: ca
      certs: [pki/root.pem]
      allow: {spiffe: ["spiffe://example.org/ns/prod/*"]}
hsm:
  pin_file: $T/pin
state_dir: state
EOF

check() { # check EXIT WORDS LISTENER CHAIN
	local out rc
	set +e
	out=$("$C" trust check --config gw.yaml --listener "$3" --chain "$4" 2>&1)
	rc=$?
	set -e
	[ "$rc" -eq "$1" ] && [[ "$out" == *"$2"* ]] || gw_fail "$3 <- $4: exit $rc (want $1): $out"
	gw_ok "$3 <- $4: exit $rc: $out"
}
check 0 "accepted: listener 'api' accepts 'CN=client,O=mtlsgw demo'" api pki/client.chain.pem
check 1 "unable to get issuer certificate: the client must send its intermediate" api pki/client.pem
check 0 "accepted" api pki/other-client.chain.pem
check 0 "accepted" partner pki/client.pem
check 1 "issuer 'CN=mtlsgw demo root CA,O=mtlsgw demo' not trusted" partner pki/other-client.chain.pem
check 1 "unable to get issuer certificate" partner pki/other-client.pem
check 0 "accepted" dp pki/client.pem
check 1 "is not the pinned certificate" dp pki/other-client.pem
check 1 "SPIFFE ID spiffe://example.org/client not allowed by rule spiffe://example.org/ns/prod/*" \
	prod-only pki/client.chain.pem
check 1 "missing clientAuth extended key usage" api pki/server.chain.pem
gw_done
