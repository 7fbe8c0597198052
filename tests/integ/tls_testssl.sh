#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# testssl.sh against a live mTLS listener (tap port in our own namespace,
# server key in a fresh SoftHSM token, testssl presenting a client
# certificate through an openssl wrapper): every finding must be OK or INFO; anything
# LOW, MEDIUM, HIGH, CRITICAL (or WARN: a check that could not run) fails
# the test and is listed, once a second testssl run shows it again (a
# finding seen once, a probe timing out on a loaded machine, is printed
# and does not fail). Before testssl, openssl s_client checks the
# default suites directly (no CBC, no RSA key exchange in TLS 1.2, AEAD
# offered) and that a listener's tls.ciphersuites still widens them.
#
# Offline: testssl gets the in-namespace IP (--ip), no DNS (--nodns none),
# and no checks that fetch anything (no OCSP/CRL lookups: --phone-out is off
# by default). Checks run: protocols (-p), cipher categories (-s), server
# preference (-P), forward secrecy (-f), server defaults (-S: certificate,
# tickets, resumption), vulnerabilities (-U). Client simulation (-c) is
# left out: it is most of a full run's time and judges no setting of ours.
#
# Findings about the test PKI rather than the gateway are accepted, each
# by its testssl id, with the reason beside it (ACCEPT below).
. "$(dirname "$0")/../lib/common.sh"
. "$GW_SRC/bench/pki.sh"

command -v testssl >/dev/null || {
	echo "SKIP: testssl (Debian package testssl.sh) not installed"
	exit 77
}

P=$T/pki
bench_pki_ctl "$MTLSGW_CTL" "$P" "$T/tok" >/dev/null || gw_fail "PKI and token setup"
SNI=$BENCH_SERVERNAME
KEY="pkcs11:token=gw;object=server;type=private"

listener() { # listener NAME PORT [CIPHERSUITES]
	cat <<EOL
  - name: $1
    address: $GW_GW_IP:$2
    service: tls-echo
    tls:
${3:+      ciphersuites: [$3]
}      identity:
        - cert: $P/server-hsm.chain.pem
          key: "$KEY"
          sni: [$SNI]
    trust:
      mode: ca
      certs: [$P/int.pem]
EOL
}
gw_gateway_config "$T/gw.yaml" "[1]" "$(listener dflt 8443)
$(listener wide 8444 "ECDHE-ECDSA-AES128-SHA, TLS_AES_256_GCM_SHA384")"
printf 'hsm:\n  module: %s\n  pin_file: %s\n' "$BENCH_PKCS11_MODULE" "$P/pin" >>"$T/gw.yaml"
gw_start_gateway "$T/gw.yaml"
gw_ok "mtlsgw runs: default suites on 8443, tls.ciphersuites widened on 8444"

# hs PORT ARGS... : does a TLS 1.2/1.3 handshake with these options complete?
hs() {
	local out
	out=$(echo | gw_in timeout 15 openssl s_client -connect "$GW_GW_IP:$1" -servername "$SNI" \
		-CAfile "$P/root.pem" -cert "$P/client.leaf.pem" -key "$P/client.key" \
		-verify_return_error "${@:2}" 2>&1) || true
	grep -q ', Cipher is [A-Z]' <<<"$out"
}
for c in ECDHE-ECDSA-AES128-GCM-SHA256 ECDHE-ECDSA-AES256-GCM-SHA384 ECDHE-ECDSA-CHACHA20-POLY1305; do
	hs 8443 -tls1_2 -cipher "$c" || gw_fail "default listener refuses $c over TLS 1.2"
done
gw_ok "default TLS 1.2 suites: ECDHE-ECDSA with AES-GCM and ChaCha20-Poly1305"
for c in ECDHE-ECDSA-AES128-SHA ECDHE-ECDSA-AES256-SHA384 ECDHE-ECDSA-AES128-SHA256 AES128-GCM-SHA256 \
	AES128-SHA; do
	! hs 8443 -tls1_2 -cipher "$c" || gw_fail "default listener accepts $c over TLS 1.2"
done
gw_ok "default TLS 1.2 refuses CBC (LUCKY13), SHA-1/SHA-2 MAC suites and RSA key exchange"
for s in TLS_AES_128_GCM_SHA256 TLS_AES_256_GCM_SHA384 TLS_CHACHA20_POLY1305_SHA256; do
	hs 8443 -tls1_3 -ciphersuites "$s" || gw_fail "default listener refuses $s"
done
gw_ok "default TLS 1.3 suites: AES-GCM and ChaCha20-Poly1305"
hs 8444 -tls1_2 -cipher ECDHE-ECDSA-AES128-SHA || gw_fail "tls.ciphersuites did not widen TLS 1.2"
! hs 8444 -tls1_2 -cipher ECDHE-ECDSA-AES128-GCM-SHA256 || gw_fail "8444: TLS 1.2 list not replaced"
hs 8444 -tls1_3 -ciphersuites TLS_AES_256_GCM_SHA384 || gw_fail "8444: TLS 1.3 suite refused"
! hs 8444 -tls1_3 -ciphersuites TLS_AES_128_GCM_SHA256 || gw_fail "8444: TLS 1.3 list not replaced"
gw_ok "tls.ciphersuites replaces each version's list: an operator may widen"

# testssl 3.0 (Debian 12) has no --mtls: it runs the openssl we name, so a
# wrapper adds our client certificate to each s_client it starts (its own
# socket probes read the ServerHello only and need none)
cat >"$T/openssl-mtls" <<EOW
#!/bin/sh
[ "\$1" = s_client ] || exec openssl "\$@"
shift
exec openssl s_client -cert "$P/client.leaf.pem" -key "$P/client.key" "\$@"
EOW
chmod 755 "$T/openssl-mtls"
# run_testssl N: testssl's run N, its JSON in $T/testssl.N.json, its report in
# $T/testssl.N.out
run_testssl() {
	local start rc
	start=$(date +%s)
	set +e
	gw_in timeout 900 testssl --ip "$GW_GW_IP" --nodns none --openssl "$T/openssl-mtls" \
		--add-ca "$P/root.pem" --sneaky --warnings off --color 0 --quiet \
		-p -s -P -f -S -U --jsonfile "$T/testssl.$1.json" "$SNI:8443" >"$T/testssl.$1.out" 2>&1
	rc=$?
	set -e
	echo "testssl run $1: exit $rc after $(($(date +%s) - start)) s"
	[ -s "$T/testssl.$1.json" ] ||
		gw_fail "testssl wrote no JSON (exit $rc): $(tail -30 "$T/testssl.$1.out")"
}

# Findings accepted, each because it is about the test's PKI or testssl's
# own openssl, not about the gateway:
ACCEPT=(
	cert_expirationStatus # HIGH: `pki demo` issues 30-day leaves (< 30 days left)
	cert_notAfter         # HIGH: the same finding, as a date
	cert_revocation       # HIGH: the test CA's leaf names no CRL or OCSP URI
	engine_problem        # WARN: the system openssl has no GOST engine
)
# judge JSON... : the findings worse than OK/INFO (or checks that did not
# run) in every run given; exit 1 if any
judge() {
	"$GW_PY" - "${ACCEPT[*]}" "$@" <<'PY'
import json, sys
accept = set(sys.argv[1].split())
bad_sev = ("LOW", "MEDIUM", "HIGH", "CRITICAL", "WARN")
# the checks this test is for ran at all
need = {"TLS1", "TLS1_1", "TLS1_2", "TLS1_3", "cipherlist_AVERAGE", "cipherlist_3DES_IDEA",
        "cipher_order", "LUCKY13", "ROBOT", "secure_renego", "secure_client_renego",
        "PFS", "BEAST", "SWEET32", "heartbleed"}
runs = []
for n, path in enumerate(sys.argv[2:], 1):
    rows = json.load(open(path))
    bad = {}
    for r in rows:
        if r["severity"] in bad_sev:
            ok = r["id"] in accept
            if not ok:
                bad[r["id"]] = f'{r["severity"]} {r["finding"]}'
            print(f'  run {n}: {"accepted" if ok else "FINDING "} {r["severity"]:8} {r["id"]}: {r["finding"]}')
    for m in sorted(need - {r["id"] for r in rows}):
        bad[m] = "testssl did not report it"
        print(f"  run {n}: FINDING  {m}: testssl did not report it")
    print(f"  run {n}: {len(rows)} testssl findings, {len(bad)} worse than OK/INFO or missing")
    runs.append(bad)
every = set.intersection(*(set(b) for b in runs))
for i in sorted(every):
    print(f"  in every run: {i}: {runs[-1][i]}")
sys.exit(1 if every else 0)
PY
}

# A finding fails the test when a second run shows it again: a defect of
# the gateway's shows every time, while testssl's probes on a loaded
# 2-core machine (ASan builds, tests in parallel) can time out once and
# read as a finding. A finding seen once is printed, never silently dropped.
run_testssl 1
if ! judge "$T/testssl.1.json" >"$T/findings"; then
	sed 's/^/  /' "$T/testssl.1.out"
	cat "$T/findings"
	echo "testssl: findings in run 1 (above); running testssl again to confirm them"
	run_testssl 2
	judge "$T/testssl.1.json" "$T/testssl.2.json" >"$T/findings" || {
		# testssl's own report first, the verdict last: a log cut to its tail keeps it
		sed 's/^/  /' "$T/testssl.2.out" >&2
		cat "$T/findings" >&2
		gw_fail "testssl: findings worse than OK/INFO in both runs:$(grep 'in every run' "$T/findings" | tr -s ' ')"
	}
fi
cat "$T/findings"
gw_ok "testssl: every finding OK or INFO but the accepted ${#ACCEPT[@]} about the test PKI"
gw_stop_gateway
gw_done
