# SPDX-License-Identifier: BSD-3-Clause
# tests/lib/tls.sh - sourced after common.sh by the tests that run TLS
# listeners on the gateway: bench/pki.sh's PKI with the server key inside a
# SoftHSM token, the gateway's hsm: section for it, and one TLS listener as
# a YAML list item (for gw_gateway_config).

. "$GW_SRC/bench/pki.sh"

# gw_tls_pki : bench/pki.sh's PKI in $T/pki, token in $T/tok. Sets P (the
# PKI dir: root.pem, int.pem, server-hsm.chain.pem, client.*, pin), SNI and
# KEY (the server key's PKCS#11 URI).
gw_tls_pki() {
	P=$T/pki
	bench_pki_ctl "$MTLSGW_CTL" "$P" "$T/tok" >/dev/null || gw_fail "PKI and token setup"
	SNI=$BENCH_SERVERNAME
	KEY="pkcs11:token=gw;object=server;type=private"
}

# gw_tls_hsm FILE : append the hsm: section (bench's PKCS#11 module, the PKI's PIN).
gw_tls_hsm() {
	printf 'hsm:\n  module: %s\n  pin_file: %s\n' "$BENCH_PKCS11_MODULE" "$P/pin" >>"$1"
}

# gw_tls_listener NAME PORT SERVICE [OPTION]... : one listener on $GW_GW_IP
# with the server identity $P/server-hsm.chain.pem + $KEY (gw_tls_pki).
#   --trust MAP       the trust: flow mapping (default {mode: ca, certs: [$P/root.pem]})
#   --cert FILE       another identity certificate for $KEY
#   --sni             the identity is for SNI $SNI
#   --tls LINE        one more line under tls: ('min_version: "1.3"'), repeatable
#   --backlog N       the listener's backlog
#   --upstream LIST   upstream servers ("ip:port, ip:port"); --pp2: PROXY v2 to them
gw_tls_listener() {
	local name=$1 port=$2 svc=$3 trust="{mode: ca, certs: [$P/root.pem]}"
	local cert=$P/server-hsm.chain.pem sni='' tls='' backlog='' up='' pp2=''
	shift 3
	while [ $# -gt 0 ]; do
		case $1 in
		--trust) trust=$2 && shift 2 ;;
		--cert) cert=$2 && shift 2 ;;
		--sni) sni=1 && shift ;;
		--tls) tls+="      $2"$'\n' && shift 2 ;;
		--backlog) backlog=$2 && shift 2 ;;
		--upstream) up=$2 && shift 2 ;;
		--pp2) pp2=1 && shift ;;
		*) echo "gw_tls_listener: unknown option $1" >&2 && return 1 ;;
		esac
	done
	printf '  - name: %s\n    address: %s:%s\n    service: %s\n' "$name" "$GW_GW_IP" "$port" "$svc"
	[ -z "$backlog" ] || printf '    backlog: %s\n' "$backlog"
	printf '    tls:\n%s      identity:\n        - cert: %s\n          key: "%s"\n' \
		"$tls" "$cert" "$KEY"
	[ -z "$sni" ] || printf '          sni: [%s]\n' "$SNI"
	printf '    trust: %s\n' "$trust"
	[ -z "$up" ] || printf '    upstream:\n      servers: [%s]\n' "$up"
	[ -z "$pp2" ] || printf '      proxy_protocol: v2\n'
}
