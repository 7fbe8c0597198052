# SPDX-License-Identifier: BSD-3-Clause
# bench/pki.sh - sourced by bench/run and tests/integ/bench_tls.sh: the
# bench's P-256 PKI (root -> intermediate -> leaves, SPIFFE URI SAN on the
# client) and a server key generated inside a SoftHSM token (it never exists
# outside it). Two recipes, same output files in DIR (what bench/run uses):
#
#   bench_pki_ctl CTL DIR TOKDIR   the product's own: `mtlsgw-ctl hsm init`,
#                                  `hsm keygen`, `pki demo`
#   bench_pki DIR; bench_pki_hsm DIR TOKDIR   the same with the openssl CLI and
#                                  pkcs11-tool, for a tree without mtlsgw-ctl
#                                  (bench_pki alone: no token, PEM rows only)
#
# Output: root.pem, int.pem (+ int.key), client.chain.pem (leaf +
# intermediate) + client.key + client.leaf.pem, server.chain.pem +
# server.key (PEM key), other.chain.pem + other.key (a client from a root
# nobody trusts); with a token also server-hsm.chain.pem for the token key
# "server" on token "gw", pin (no newline: libp11 0.4.12 reads
# pin-source=file: verbatim, a trailing newline makes the PIN wrong),
# openssl.cnf loading the pkcs11 engine, and $BENCH_HSM_KEY_URI.
#
# PINs reach the tools only through a file (pin-source, --pin-file) or the
# environment (pkcs11-tool's env:NAME), never argv.

BENCH_PKCS11_MODULE=${BENCH_PKCS11_MODULE:-/usr/lib/softhsm/libsofthsm2.so}
BENCH_PKCS11_ENGINE=${BENCH_PKCS11_ENGINE:-/usr/lib/x86_64-linux-gnu/engines-3/pkcs11.so}
BENCH_SERVERNAME=${BENCH_SERVERNAME:-gw.bench.test}
BENCH_TRUST_DOMAIN=${BENCH_TRUST_DOMAIN:-bench.mtlsgw.test}

_pki_ext() { # _pki_ext FILE KIND [SAN]
	case $2 in
	ca) printf 'basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n' ;;
	server) printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=%s\nauthorityKeyIdentifier=keyid\n' "$3" ;;
	client) printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\nsubjectAltName=%s\nauthorityKeyIdentifier=keyid\n' "$3" ;;
	esac >"$1"
}

_pki_sign() { # _pki_sign DIR CSR CA_NAME KIND SAN OUT
	local d=$1
	_pki_ext "$d/ext.cnf" "$4" "${5:-}"
	openssl x509 -req -in "$2" -CA "$d/$3.pem" -CAkey "$d/$3.key" -CAcreateserial \
		-days 30 -sha256 -extfile "$d/ext.cnf" -out "$6" 2>/dev/null
}

_pki_key() { # _pki_key OUT
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null
	chmod 600 "$1"
}

_pki_root() { # _pki_root DIR NAME CN
	local d=$1
	_pki_key "$d/$2.key"
	openssl req -x509 -new -key "$d/$2.key" -subj "/CN=$3" -days 30 -sha256 \
		-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
		-out "$d/$2.pem" 2>/dev/null
}

_pki_random_pin() { # _pki_random_pin FILE: 16 hex digits, no newline, mode 600
	(umask 077 && od -An -N8 -tx8 /dev/urandom | tr -d ' \n' >"$1")
}

_pki_softhsm() { # _pki_softhsm TOKDIR: an empty SoftHSM token store
	mkdir -p "$1/tokens"
	printf 'directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n' \
		"$1" >"$1/softhsm2.conf"
	export SOFTHSM2_CONF=$1/softhsm2.conf
}

# The server leaf with a PEM key and the untrusted client; needs int.pem/.key.
_pki_pem_server_and_intruder() {
	local d=$1
	_pki_key "$d/server.key"
	openssl req -new -key "$d/server.key" -subj "/CN=$BENCH_SERVERNAME" -out "$d/server.csr"
	_pki_sign "$d" "$d/server.csr" int server "DNS:$BENCH_SERVERNAME" "$d/server.pem"
	cat "$d/server.pem" "$d/int.pem" >"$d/server.chain.pem"
	_pki_root "$d" otherca "some other root"
	_pki_key "$d/other.key"
	openssl req -new -key "$d/other.key" -subj "/CN=intruder" -out "$d/other.csr"
	_pki_sign "$d" "$d/other.csr" otherca client "URI:spiffe://elsewhere.test/intruder" \
		"$d/other.chain.pem"
}

_pki_engine_conf() { # _pki_engine_conf DIR: DIR/openssl.cnf and $BENCH_HSM_KEY_URI
	cat >"$1/openssl.cnf" <<EOF
# loads libp11's engine for nginx and openssl; the PIN comes from the key
# URI's pin-source (a file), never from here or from argv.
# init = 1: nginx does not ENGINE_init() a key engine itself
openssl_conf = openssl_init
[openssl_init]
engines = engine_section
[engine_section]
pkcs11 = pkcs11_section
[pkcs11_section]
engine_id = pkcs11
dynamic_path = $BENCH_PKCS11_ENGINE
MODULE_PATH = $BENCH_PKCS11_MODULE
init = 1
EOF
	BENCH_HSM_KEY_URI="pkcs11:token=gw;object=server;type=private;pin-source=file:$1/pin"
}

bench_pki() {
	local d=$1
	mkdir -p "$d"
	_pki_root "$d" root "mtlsgw bench root"
	_pki_key "$d/int.key"
	openssl req -new -key "$d/int.key" -subj "/CN=mtlsgw bench intermediate" -out "$d/int.csr"
	_pki_sign "$d" "$d/int.csr" root ca "" "$d/int.pem"
	_pki_key "$d/client.key"
	openssl req -new -key "$d/client.key" -subj "/CN=client1" -out "$d/client.csr"
	_pki_sign "$d" "$d/client.csr" int client "URI:spiffe://$BENCH_TRUST_DOMAIN/client1" \
		"$d/client.leaf.pem"
	cat "$d/client.leaf.pem" "$d/int.pem" >"$d/client.chain.pem"
	_pki_pem_server_and_intruder "$d"
	openssl verify -CAfile "$d/root.pem" -untrusted "$d/int.pem" "$d/client.leaf.pem" >/dev/null
}

bench_pki_hsm() {
	local d=$1
	_pki_softhsm "$2"
	_pki_random_pin "$d/pin"
	_pki_random_pin "$d/sopin"
	BENCH_SOPIN=$(cat "$d/sopin") BENCH_UPIN=$(cat "$d/pin") sh -c '
		m=$1
		pkcs11-tool --module "$m" --init-token --label gw --so-pin env:BENCH_SOPIN >/dev/null &&
		pkcs11-tool --module "$m" --token-label gw --login --login-type so \
			--so-pin env:BENCH_SOPIN --init-pin --new-pin env:BENCH_UPIN >/dev/null &&
		pkcs11-tool --module "$m" --token-label gw --login --pin env:BENCH_UPIN \
			--keypairgen --key-type EC:prime256v1 --label server --id 01 >/dev/null
	' sh "$BENCH_PKCS11_MODULE" 2>"$d/pkcs11-tool.err" ||
		{ echo "bench: SoftHSM token setup failed: $(cat "$d/pkcs11-tool.err")" >&2; return 1; }
	_pki_engine_conf "$d"
	OPENSSL_CONF=$d/openssl.cnf openssl req -new -engine pkcs11 -keyform engine \
		-key "$BENCH_HSM_KEY_URI" -subj "/CN=$BENCH_SERVERNAME" -out "$d/server-hsm.csr" \
		>/dev/null 2>"$d/csr.err" ||
		{ echo "bench: CSR with the token key failed: $(cat "$d/csr.err")" >&2; return 1; }
	_pki_sign "$d" "$d/server-hsm.csr" int server "DNS:$BENCH_SERVERNAME" "$d/server-hsm.pem"
	cat "$d/server-hsm.pem" "$d/int.pem" >"$d/server-hsm.chain.pem"
}

# Does this mtlsgw-ctl have the commands bench_pki_ctl needs?
bench_ctl_has_pki() {
	[ -x "$1" ] && "$1" pki demo --help >/dev/null 2>&1 && "$1" hsm keygen --help >/dev/null 2>&1
}

bench_pki_ctl() {
	local ctl=$1 d=$2 demo=$2/demo
	mkdir -p "$d"
	_pki_softhsm "$3"
	_pki_random_pin "$d/pin"
	_pki_random_pin "$d/sopin"
	{
		"$ctl" hsm init --module "$BENCH_PKCS11_MODULE" --token gw --pin-file "$d/pin" \
			--so-pin-file "$d/sopin" &&
			"$ctl" hsm keygen --module "$BENCH_PKCS11_MODULE" --token gw --pin-file "$d/pin" \
				--label server --type ec-p256 &&
			"$ctl" pki demo --module "$BENCH_PKCS11_MODULE" --dir "$demo" \
				--key "pkcs11:token=gw;object=server;type=private" --pin-file "$d/pin" \
				--trust-domain "$BENCH_TRUST_DOMAIN" --server-san "DNS:$BENCH_SERVERNAME" \
				--days 30
	} >"$d/ctl.log" 2>&1 || { echo "bench: mtlsgw-ctl: $(tail -2 "$d/ctl.log")" >&2; return 1; }
	cp "$demo/root.pem" "$d/root.pem"
	cp "$demo/intermediate.pem" "$d/int.pem"
	cp "$demo/intermediate.key" "$d/int.key"
	cp "$demo/server.chain.pem" "$d/server-hsm.chain.pem"
	cp "$demo/client.chain.pem" "$d/client.chain.pem"
	cp "$demo/client.key" "$d/client.key"
	cp "$demo/client.pem" "$d/client.leaf.pem"
	_pki_pem_server_and_intruder "$d"
	_pki_engine_conf "$d"
}
