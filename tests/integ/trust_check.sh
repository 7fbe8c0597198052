#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# `mtlsgw-ctl trust check` on real PEM files and a real config file:
#  - the seed's cert1/cert2/cert3 table, with a PKI made here by the openssl
#    CLI (independent of our own generator);
#  - the generated bad-certificate corpus (tests/lib/mkcorpus.c), each with
#    its expected exit status and words;
#  - --json, --at, and the usage/config errors (exit 2).
# Offline: no network, no HSM needed (trust check never touches the key).
. "$(dirname "$0")/../lib/common.sh"

CTL=$MTLSGW_CTL
MKCORPUS=${GW_BUILD:?}/tests/unit/mkcorpus
cd "$T"

# expect RC WORDS LISTENER CHAIN [more args]: exit status and output must match
expect() {
	local want_rc=$1 words=$2 listener=$3 chain=$4 out rc
	shift 4
	set +e
	out=$("$CTL" trust check --config gw.yaml --listener "$listener" --chain "$chain" "$@" 2>&1)
	rc=$?
	set -e
	[ "$rc" -eq "$want_rc" ] || gw_fail "$listener/$chain: exit $rc, want $want_rc: $out"
	case "$out" in
	*"$words"*) ;;
	*) gw_fail "$listener/$chain: want '$words' in: $out" ;;
	esac
	gw_ok "$listener <- $(basename "$chain") $*: exit $rc, '$words'"
}

# ---- the seed PKI, by the openssl CLI ----
mkdir seed
(
	cd seed
	ec="-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes"
	printf 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n' >ca.ext
	printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\nsubjectAltName=URI:spiffe://seed.example/ns/prod/svc\n' >leaf.ext
	# cert3: the self-signed root
	openssl req -x509 $ec -keyout cert3.key -out cert3.pem -days 30 -subj "/CN=seed root" \
		-addext "basicConstraints=critical,CA:TRUE" \
		-addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
	sign() { # sign NAME SUBJECT CA EXT
		openssl req -new $ec -keyout "$1.key" -out "$1.csr" -subj "$2" 2>/dev/null
		openssl x509 -req -in "$1.csr" -CA "$3.pem" -CAkey "$3.key" -CAcreateserial \
			-days 20 -extfile "$4" -out "$1.pem" 2>/dev/null
	}
	sign cert2 "/CN=seed intermediate" cert3 ca.ext   # cert2: intermediate
	sign cert1 "/CN=seed service" cert2 leaf.ext      # cert1: the service leaf
	sign other "/CN=seed service 2" cert2 leaf.ext    # another leaf of the same CA
	sign inter_b "/CN=seed intermediate B" cert3 ca.ext
	sign leaf_b "/CN=seed service B" inter_b leaf.ext # a leaf of another intermediate
	# an impostor: cert1's exact subject, its own key, self-signed
	openssl req -x509 $ec -keyout impostor.key -out impostor.pem -days 20 \
		-subj "/CN=seed service" 2>/dev/null
	cat cert1.pem cert2.pem >cert1+cert2.pem
	cat leaf_b.pem inter_b.pem >leaf_b+inter_b.pem
)
[ -s seed/cert1+cert2.pem ] && [ -s seed/impostor.pem ] || gw_fail "openssl could not make the seed PKI"
gw_ok "seed PKI made with the openssl CLI"

mkdir c
"$MKCORPUS" c
gw_ok "corpus generated"
echo 1234 >pin
chmod 600 pin

listener() { # listener NAME PORT TRUST-YAML (one flow mapping)
	cat <<EOF
  - name: $1
    address: 10.99.0.2:$2
    service: tls-echo
    tls: {identity: [{cert: c/srvleaf.pem, key: "pkcs11:token=gw;object=api;type=private"}]}
    trust: $3
EOF
}
{
	cat <<EOF
dataplane:
  workers: [1]
  no_huge: true
  ports:
    - {name: wan, driver: tap, device: gwt0, address: 10.99.0.2/24}
listeners:
EOF
	listener pinned 1001 "{mode: pinned, certs: [seed/cert1.pem]}"
	listener inter 1002 "{mode: ca, certs: [seed/cert2.pem]}"
	listener root 1003 "{mode: ca, certs: [seed/cert3.pem]}"
	listener corpus 1004 "{mode: ca, certs: [c/root.pem], crl: [c/chain.crl.pem]}"
	listener rotation 1005 "{mode: ca, certs: [c/roots.bundle.pem]}"
	listener shallow 1006 "{mode: ca, certs: [c/root.pem], max_depth: 1}"
	listener prod 1007 "{mode: ca, certs: [c/inter.pem], allow: {spiffe: [\"spiffe://example.org/ns/prod/*\"]}}"
	listener names 1008 "{mode: ca, certs: [c/inter.pem], allow: {dns: [client.example.com], cn: [api]}}"
	listener nocheck 1009 "{mode: ca, certs: [c/root.pem]}"
	listener prodall 1010 "{mode: ca, certs: [c/root.pem], allow: {spiffe: [\"spiffe://example.org/ns/**\"]}}"
	listener crlleaf 1011 "{mode: ca, certs: [c/root.pem], crl: [c/inter.crl.pem], crl_check: leaf}"
	listener crlleaf2 1013 "{mode: ca, certs: [c/root.pem], crl: [c/chain.crl.pem], crl_check: leaf}"
	listener crlchain 1012 "{mode: ca, certs: [c/root.pem], crl: [c/inter.crl.pem]}"
	cat <<EOF
  - name: plain
    address: 10.99.0.2:7
    service: echo
hsm:
  pin_file: pin
state_dir: state
EOF
} >gw.yaml

# ---- the seed table ----
# cert1 pinned: cert1 alone is accepted; any other leaf, even of the same CA, is not
expect 0 "accepted: listener 'pinned' accepts 'CN=seed service'" pinned seed/cert1.pem
expect 1 "is not the pinned certificate" pinned seed/other.pem
expect 1 "is not the pinned certificate" pinned seed/impostor.pem
expect 1 "is not the pinned certificate" pinned seed/leaf_b.pem
# cert2 (intermediate) as anchor: cert1 alone is accepted; another intermediate's leaf not
expect 0 "accepted" inter seed/cert1.pem
expect 0 "accepted" inter seed/cert1+cert2.pem
expect 0 "accepted" inter seed/other.pem
expect 1 "unable to get issuer certificate" inter seed/leaf_b.pem
expect 1 "issuer 'CN=seed root' not trusted" inter seed/leaf_b+inter_b.pem
# cert3 (root) as anchor: cert1 + cert2 accepted; cert1 alone rejected, in words
expect 0 "accepted" root seed/cert1+cert2.pem
expect 1 "issuer 'CN=seed intermediate' not trusted (unable to get issuer certificate: the client must send its intermediate, or trust it as an anchor)" root seed/cert1.pem
expect 0 "accepted" root seed/leaf_b+inter_b.pem
expect 1 "self-signed" root seed/impostor.pem

# ---- the corpus: one bad certificate per check ----
expect 0 "accepted" corpus c/leaf.chain.pem
cat c/expired.pem c/inter.pem >expired.chain.pem
cat c/notyet.pem c/inter.pem >notyet.chain.pem
cat c/noeku.pem c/inter.pem >noeku.chain.pem
cat c/revoked.pem c/inter.pem >revoked.chain.pem
cat c/forged.pem c/inter.pem >forged.chain.pem
expect 1 "certificate 'CN=expired,O=mtlsgw test' expired on" corpus expired.chain.pem
expect 1 "is not valid yet" corpus notyet.chain.pem
expect 1 "missing clientAuth extended key usage" corpus noeku.chain.pem
expect 1 "is revoked by the CRL of 'CN=mtlsgw test intermediate" corpus revoked.chain.pem
expect 0 "accepted" nocheck revoked.chain.pem # no CRL configured there
expect 1 "no usable CRL" corpus c/leaf2.chain.pem
# crl_check chain (default): the intermediate is on root's CRL
expect 1 "certificate 'CN=mtlsgw revoked intermediate,O=mtlsgw test' (serial" corpus c/leaf_ir.chain.pem
expect 1 "is revoked by the CRL of 'CN=mtlsgw test root" corpus c/leaf_ir.chain.pem
# ... and a CA of the path without a CRL (root's, for inter) fails closed
expect 1 "no usable CRL from 'CN=mtlsgw test root,O=mtlsgw test' for certificate 'CN=mtlsgw test intermediate" crlchain c/leaf.chain.pem
# crl_check leaf: only the leaf's issuer
expect 0 "accepted" crlleaf c/leaf.chain.pem
expect 1 "is revoked by the CRL of 'CN=mtlsgw test intermediate" crlleaf revoked.chain.pem
expect 0 "accepted" crlleaf2 c/leaf_ir.chain.pem # root's CRL lists inter_rev: not looked at
expect 1 "does not verify with the key of issuer" corpus forged.chain.pem
expect 1 "self-signed root 'CN=evil root,O=evil'" corpus c/evil.chain.pem
expect 1 "violates the name constraints" nocheck c/nc_bad.chain.pem
expect 0 "accepted" nocheck c/nc_ok.chain.pem
expect 1 "not trusted" nocheck c/loop.chain.pem
expect 1 "not valid DER" corpus c/malformed.pem
expect 0 "accepted" nocheck c/deep.chain.pem
expect 1 "allows at most 1 intermediate CA" shallow c/deep.chain.pem
expect 0 "accepted" shallow c/leaf.chain.pem
expect 0 "accepted" rotation c/leaf.chain.pem
expect 0 "accepted" rotation c/leaf_r2.chain.pem
expect 1 "not trusted" root c/leaf_r2.chain.pem
expect 0 "accepted" prod c/leaf.pem
expect 1 "SPIFFE ID spiffe://example.org/ns/dev/web not allowed by rule spiffe://example.org/ns/prod/*" prod c/leaf_b.pem
expect 0 "accepted" prodall c/leaf.chain.pem # ns/** admits ns/prod/web: the workers' matcher
expect 0 "accepted" prodall c/deep.chain.pem  # ns/prod/deep
expect 1 "has no SPIFFE ID (URI SAN) but the listener allows only spiffe://example.org/ns/**" prodall c/nc_ok.chain.pem
expect 0 "accepted" names c/leaf.pem     # DNS client.example.com
expect 0 "accepted" names c/srvleaf.pem  # CN api
expect 1 "not allowed by client.example.com" names c/leaf_b.pem

# ---- --at: the same chain, later ----
expect 0 "accepted" nocheck c/leaf.chain.pem --at "$(date -u -d '+30 days' +%Y-%m-%d)"
expect 1 "certificate 'CN=client,O=mtlsgw test' expired on" nocheck c/leaf.chain.pem --at "$(date -u -d '+400 days' +%s)"
# the CRL's nextUpdate is a week away: past it, the CRL is stale and fails closed
expect 1 "(CRL has expired)" corpus c/leaf.chain.pem --at "$(date -u -d '+8 days' +%Y-%m-%d)"

# ---- --json ----
out=$("$CTL" trust check --config gw.yaml --listener root --chain seed/cert1.pem --json || true)
python3 - "$out" <<'PY' || gw_fail "bad JSON: $out"
import json, sys
o = json.loads(sys.argv[1])
assert o["accepted"] is False, o
assert o["listener"] == "root", o
assert o["check"] == "untrusted_issuer", o
assert o["depth"] == 0, o
assert o["subject"] == "CN=seed service", o
assert "unable to get issuer certificate" in o["reason"], o
PY
gw_ok "--json on a rejection"
out=$("$CTL" trust check --config gw.yaml --listener pinned --chain seed/cert1.pem --json)
python3 -c 'import json,sys; o=json.loads(sys.argv[1]); assert o["accepted"] is True and o["check"] == "ok", o' "$out" ||
	gw_fail "bad JSON: $out"
gw_ok "--json on an acceptance"

# ---- usage and config errors: exit 2, and a reason ----
expect 2 "no listener 'nope' in gw.yaml (listeners: pinned, inter" nope seed/cert1.pem
expect 2 "listener 'plain' has no trust section" plain seed/cert1.pem
expect 2 "chain 'nonexistent.pem'" root nonexistent.pem
expect 2 "--at 'someday' is not a date" root seed/cert1.pem --at someday
set +e
out=$("$CTL" trust check --config gw.yaml --listener root 2>&1)
rc=$?
set -e
[ "$rc" -eq 2 ] && [[ "$out" == *"--config, --listener and --chain are required"* ]] ||
	gw_fail "missing --chain: rc $rc: $out"
gw_ok "missing --chain: exit 2"
sed 's/mode: ca, certs: \[seed\/cert3.pem\]/mode: cax, certs: [seed\/cert3.pem]/' gw.yaml >bad.yaml
set +e
out=$("$CTL" trust check --config bad.yaml --listener root --chain seed/cert1.pem 2>&1)
rc=$?
set -e
[ "$rc" -eq 2 ] && [[ "$out" == *"bad.yaml:"*"trust.mode: 'cax' is not one of pinned, ca, mesh"* ]] ||
	gw_fail "bad config: rc $rc: $out"
gw_ok "a bad config: exit 2 with file:line"
# an allow pattern that could match nothing does not load
sed 's|spiffe://example.org/ns/\*\*|spiffe://example.org/ns/**/web|' gw.yaml >badrule.yaml
set +e
out=$("$CTL" trust check --config badrule.yaml --listener prodall --chain c/leaf.chain.pem 2>&1)
rc=$?
set -e
[ "$rc" -eq 2 ] && [[ "$out" == *"badrule.yaml:"*"trust.allow.spiffe[0]: 'spiffe://example.org/ns/**/web' has '**' before the last segment"* ]] ||
	gw_fail "bad allow pattern: rc $rc: $out"
gw_ok "a wildcard that matches nothing: exit 2 with file:line"
set +e
out=$("$CTL" trust frob 2>&1)
rc=$?
set -e
[ "$rc" -eq 2 ] && [[ "$out" == *"unknown command 'frob'"* ]] || gw_fail "trust frob: rc $rc: $out"
gw_ok "unknown trust command: exit 2"

gw_done
