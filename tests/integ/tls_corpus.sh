#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The bad-certificate corpus (tests/lib/mkcorpus.c) through the running
# gateway, not only through the trust engine (trust_check.sh does that):
# one mtlsgw on a tap in our own namespace, server key in a fresh SoftHSM
# token, six TLS listeners whose trust covers the corpus (root + CRL, root,
# root with max_depth 1, intermediate + SPIFFE allow rule, pinned leaves, a
# two-root bundle). Each case is one `openssl s_client` handshake (TLS 1.3,
# a few also 1.2) with that case's key and chain. A bad case must fail with
# the README's alert for its reason (text and number), and exactly that
# reason's counter (reject_<reason>) and hs_fail_verify go up by one while
# every other rejection counter and hs_ok stay put; a good case in the same
# run must echo a line back, so rejecting everything cannot pass. Every
# trust reason's counter is reached but malformed, other and internal. The
# malformed (truncated DER) leaf, which no client library will load, is sent
# by a minimal TLS 1.2 client of our own (see the end).
. "$(dirname "$0")/../lib/common.sh"
. "$GW_SRC/bench/pki.sh"

MKCORPUS=${GW_BUILD:?}/tests/unit/mkcorpus
P=$T/pki
C=$T/c
bench_pki_ctl "$MTLSGW_CTL" "$P" "$T/tok" >/dev/null || gw_fail "PKI and token setup"
gw_ok "server PKI made, server key generated inside SoftHSM token 'gw'"
mkdir "$C"
"$MKCORPUS" "$C" || gw_fail "mkcorpus $C"
# the intermediates each client sends after its leaf (s_client -cert_chain)
cat "$C/sub2.pem" "$C/sub1.pem" "$C/inter.pem" >"$C/deep.up.pem"
cat "$C/loop_x.pem" "$C/loop_y.pem" >"$C/loop.up.pem"
# not_ca (the corpus has no such case): a client certificate issued by the
# leaf "client", which is no CA, made here by the openssl CLI
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$C/notca.key.pem" \
	-subj "/CN=child of a leaf" -out "$T/notca.csr" 2>/dev/null
printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n' >"$T/notca.ext"
openssl x509 -req -in "$T/notca.csr" -CA "$C/leaf.pem" -CAkey "$C/leaf.key.pem" -CAcreateserial \
	-days 5 -extfile "$T/notca.ext" -out "$C/notca.pem" 2>/dev/null || gw_fail "openssl: notca.pem"
cat "$C/leaf.pem" "$C/inter.pem" >"$C/notca.up.pem"
gw_ok "corpus generated"
SNI=$BENCH_SERVERNAME
KEY="pkcs11:token=gw;object=server;type=private"

listener() { # listener NAME PORT TRUST (one YAML flow mapping)
	cat <<EOL
  - name: $1
    address: $GW_GW_IP:$2
    service: tls-echo
    tls:
      identity:
        - cert: $P/server-hsm.chain.pem
          key: "$KEY"
          sni: [$SNI]
    trust: $3
EOL
}
gw_gateway_config "$T/gw.yaml" "[1]" "$(listener corpus 9001 "{mode: ca, certs: [$C/root.pem], crl: [$C/chain.crl.pem]}")
$(listener nocheck 9002 "{mode: ca, certs: [$C/root.pem]}")
$(listener shallow 9003 "{mode: ca, certs: [$C/root.pem], max_depth: 1}")
$(listener prod 9004 "{mode: ca, certs: [$C/inter.pem], allow: {spiffe: [\"spiffe://example.org/ns/prod/*\"]}}")
$(listener pinned 9005 "{mode: pinned, certs: [$C/leaf.pem, $C/selfpin.pem]}")
$(listener rotation 9006 "{mode: ca, certs: [$C/roots.bundle.pem]}")
$(listener crlleaf 9007 "{mode: ca, certs: [$C/root.pem], crl: [$C/chain.crl.pem], crl_check: leaf}")
$(listener crlchain 9008 "{mode: ca, certs: [$C/root.pem], crl: [$C/inter.crl.pem]}")
$(listener prodall 9009 "{mode: ca, certs: [$C/root.pem], allow: {spiffe: [\"spiffe://example.org/ns/prod/**\"]}}")"
printf 'hsm:\n  module: %s\n  pin_file: %s\n' "$BENCH_PKCS11_MODULE" "$P/pin" >>"$T/gw.yaml"
gw_start_gateway "$T/gw.yaml"
gw_ok "mtlsgw runs with nine TLS listeners on the corpus' trust"

# tls_snap FILE : the gateway's "tls" counters, as one JSON object, into FILE
tls_snap() {
	local n
	n=$(wc -l <"$T/gw.out")
	kill -USR1 "$GW_GW_PID" 2>/dev/null || gw_fail "the gateway is not running"
	for _ in $(seq 100); do
		[ "$(wc -l <"$T/gw.out")" -gt "$n" ] && break
		sleep 0.05
	done
	tail -1 "$T/gw.out" | "$GW_PY" -c 'import json, sys; print(json.dumps(json.loads(sys.stdin.read())["tls"]))' >"$1" ||
		gw_fail "no counters from the gateway"
}

# alert_of REASON : the README's reason -> alert table; sets ALERT (the
# text s_client prints after "alert ") and ANUM (the alert number)
alert_of() {
	case $1 in
	expired) ALERT="certificate expired" ANUM=45 ;;
	revoked) ALERT="certificate revoked" ANUM=44 ;;
	untrusted_issuer | self_signed | not_ca | too_deep | crl) ALERT="unknown ca" ANUM=48 ;;
	not_pinned | bad_signature | not_yet_valid | malformed | name_constraints)
		ALERT="bad certificate" ANUM=42
		;;
	eku) ALERT="unsupported certificate" ANUM=43 ;;
	not_allowed | other) ALERT="certificate unknown" ANUM=46 ;;
	no_cert_tls1_3) ALERT="certificate required" ANUM=116 ;;
	no_cert_tls1_2) ALERT="handshake failure" ANUM=40 ;;
	*) gw_fail "no alert for '$1'" ;;
	esac
}

# wait_counted : after.json once the handshake since before.json is counted
# (the counters are the worker's own, read when asked)
wait_counted() {
	for _ in $(seq 50); do
		tls_snap "$T/after.json"
		"$GW_PY" -c 'import json, sys
b, a = (json.load(open(f)) for f in sys.argv[1:3])
sys.exit(0 if a["hs_ok"] + a["hs_fail"] > b["hs_ok"] + b["hs_fail"] else 1)' \
			"$T/before.json" "$T/after.json" && return 0
		sleep 0.1
	done
}

# check_deltas TAG WANT CTR : between before.json and after.json exactly
# CTR and its totals moved, by one; every other rejection counter stayed
check_deltas() {
	"$GW_PY" - "$T/before.json" "$T/after.json" "$2" "$3" <<'PY' || gw_fail "$1: counters"
import json, sys
b, a = (json.load(open(f)) for f in sys.argv[1:3])
want, ctr = sys.argv[3:5]
d = {k: a[k] - b[k] for k in a if isinstance(a[k], int) and k in b}
exp = {k: 0 for k in d if k.startswith("reject_")}
exp.update({"hs_ok": 0, "hs_fail": 1, "hs_fail_verify": 0, "hs_fail_no_cert": 0, "hs_fail_proto": 0})
if want == "ok":
    exp.update({"hs_ok": 1, "hs_fail": 0})
elif want in ("no_cert", "undecodable"):
    pass  # ctr is the one counter
else:
    assert ctr in d, "no counter %s in %s" % (ctr, sorted(a))
    exp["hs_fail_verify"] = 1
exp[ctr] = 1
bad = {k: (d[k], v) for k, v in exp.items() if d[k] != v}
if bad:
    sys.exit("counter deltas (got, want): %s" % bad)
PY
}

# case WANT PORT VERSION LEAF [CHAIN] : one s_client handshake with key
# LEAF's key (c/NAME.key.pem), leaf c/NAME.pem, extra certs from CHAIN;
# LEAF "-" sends no certificate. WANT is ok, a trust reason, or no_cert.
N=0
case_() {
	local want=$1 port=$2 ver=$3 leaf=$4 chain=${5:-} args=() out alert='' num='' ctr
	N=$((N + 1))
	local tag="c$N-$want"
	[ "$leaf" = - ] || args+=(-cert "$C/$leaf.pem" -key "$C/$leaf.key.pem")
	[ -z "$chain" ] || args+=(-cert_chain "$C/$chain")
	tls_snap "$T/before.json"
	# a line to echo; stdin stays open until the echo or the alert sent
	# after a TLS 1.3 client's Certificate arrives
	out=$(gw_sclient "ping-$tag" -connect "$GW_GW_IP:$port" -servername "$SNI" \
		-CAfile "$P/root.pem" -verify_return_error -quiet -no_ign_eof "-$ver" \
		"${args[@]}")
	wait_counted
	case $want in
	ok)
		case "$out" in *"ping-$tag"*) ;; *) gw_fail "$tag port $port $ver $leaf: not accepted: $out" ;; esac
		ctr=hs_ok
		;;
	*)
		case "$out" in *"ping-$tag"*) gw_fail "$tag port $port $ver $leaf: ACCEPTED, want $want: $out" ;; esac
		if [ "$want" = no_cert ]; then
			alert_of "no_cert_$ver"
			ctr=hs_fail_no_cert
		else
			alert_of "$want"
			ctr=reject_$want
		fi
		alert=$ALERT num=$ANUM
		[[ "$out" =~ "alert $alert".*"SSL alert number $num"($|[^0-9]) ]] ||
			gw_fail "$tag port $port $ver $leaf: want alert '$alert' ($num): $out"
		;;
	esac
	check_deltas "$tag" "$want" "$ctr"
	if [ "$want" = ok ]; then
		gw_ok "$tag: port $port $ver $leaf${chain:+ + $chain} accepted, echo back, hs_ok +1"
	else
		gw_ok "$tag: port $port $ver $leaf${chain:+ + $chain} refused: alert $alert ($num), $ctr +1 only"
	fi
}

# --- 9001 corpus: root anchor + every CA's CRL (crl_check chain, the default)
case_ ok 9001 tls1_3 leaf inter.pem
case_ expired 9001 tls1_3 expired inter.pem
case_ expired 9001 tls1_2 expired inter.pem
case_ not_yet_valid 9001 tls1_3 notyet inter.pem
case_ eku 9001 tls1_3 noeku inter.pem
case_ revoked 9001 tls1_3 revoked inter.pem
case_ revoked 9001 tls1_2 revoked inter.pem
case_ crl 9001 tls1_3 leaf2 inter2.pem           # no CRL for intermediate 2: fail closed
case_ revoked 9001 tls1_3 leaf_ir inter_rev.pem  # the intermediate is on root's CRL
case_ revoked 9001 tls1_2 leaf_ir inter_rev.pem
case_ bad_signature 9001 tls1_3 forged inter.pem # signed by a key not the intermediate's
case_ self_signed 9001 tls1_3 evil_leaf evil_root.pem
case_ self_signed 9001 tls1_3 impostor           # the leaf's subject, self-signed
case_ untrusted_issuer 9001 tls1_3 leaf_r2 inter_r2.pem
case_ untrusted_issuer 9001 tls1_3 leaf          # leaf without its intermediate
case_ no_cert 9001 tls1_3 -
case_ no_cert 9001 tls1_2 -
# --- 9002 nocheck: root anchor, no CRL
case_ ok 9002 tls1_3 revoked inter.pem           # the CRL of 9001 is what refuses it
case_ ok 9002 tls1_3 nc_ok nc_ca.pem
case_ name_constraints 9002 tls1_3 nc_bad nc_ca.pem
case_ untrusted_issuer 9002 tls1_3 loop_leaf loop.up.pem
case_ ok 9002 tls1_3 deep deep.up.pem
case_ not_ca 9002 tls1_3 notca notca.up.pem     # issued by a leaf
# --- 9003 shallow: max_depth 1
case_ too_deep 9003 tls1_3 deep deep.up.pem
case_ ok 9003 tls1_2 leaf inter.pem
# --- 9004 prod: intermediate anchor, SPIFFE allow rule
case_ ok 9004 tls1_3 leaf                        # spiffe://example.org/ns/prod/web
case_ not_allowed 9004 tls1_3 leaf_b             # spiffe://example.org/ns/dev/web
case_ not_allowed 9004 tls1_2 leaf_b
# --- 9005 pinned: the leaf and a self-signed client
case_ ok 9005 tls1_3 leaf
case_ ok 9005 tls1_3 selfpin
case_ not_pinned 9005 tls1_3 impostor            # the pinned leaf's subject, another key
case_ not_pinned 9005 tls1_3 leaf_b inter.pem    # same CA, not pinned
# --- 9006 rotation: two roots
case_ ok 9006 tls1_3 leaf_r2 inter_r2.pem
case_ ok 9006 tls1_3 leaf inter.pem
# --- 9007 crlleaf: every CA's CRL, crl_check leaf: only the leaf's issuer's is used
case_ ok 9007 tls1_3 leaf inter.pem
case_ revoked 9007 tls1_3 revoked inter.pem
case_ ok 9007 tls1_3 leaf_ir inter_rev.pem       # what crl_check leaf gives up
# --- 9008 crlchain: the same CRL, crl_check chain: root's CRL (for inter) missing
case_ crl 9008 tls1_3 leaf inter.pem
case_ crl 9008 tls1_2 leaf inter.pem
# --- 9009 prodall: spiffe://example.org/ns/prod/** (one or more segments)
case_ ok 9009 tls1_3 leaf inter.pem              # .../ns/prod/web
case_ ok 9009 tls1_3 deep deep.up.pem            # .../ns/prod/deep
case_ not_allowed 9009 tls1_3 leaf_b inter.pem   # .../ns/dev/web

# --- a certificate no client library will send: the malformed (truncated
# DER) leaf, by a minimal TLS 1.2 client of our own (plain-text Certificate
# message right after ServerHelloDone; the server judges it on receipt).
# OpenSSL's own parser refuses it before the trust engine sees it: alert
# decode_error (50), counted as hs_fail_proto, not reject_malformed (the
# README table's "malformed -> bad_certificate" is for a certificate that
# parses but that the trust engine finds malformed, e.g. its validity dates).
# The same client with a parsable leaf first, so the path is shown to reach
# the trust engine.
# raw12.py IP PORT SNI PEM: ClientHello (ECDHE suites, TLS 1.2 only), read
# to ServerHelloDone, send PEM's DER as our Certificate, print the alert.
cat >"$T/raw12.py" <<'RAW'
import base64, os, socket, struct, sys
ip, port, sni, pem = sys.argv[1], int(sys.argv[2]), sys.argv[3].encode(), sys.argv[4]
txt = open(pem).read()
b64 = "".join(l for l in txt.splitlines() if l and not l.startswith("-----"))
der = base64.b64decode(b64)
def ext(t, body): return struct.pack(">HH", t, len(body)) + body
sn = struct.pack(">BH", 0, len(sni)) + sni
exts = (ext(0, struct.pack(">H", len(sn)) + sn)
        + ext(0x0a, struct.pack(">HHH", 4, 0x0017, 0x001d))
        + ext(0x0b, b"\x01\x00")
        + ext(0x0d, struct.pack(">HHHHHH", 10, 0x0403, 0x0804, 0x0401, 0x0503, 0x0805))
        + ext(0xff01, b"\x00"))
suites = struct.pack(">H4H", 8, 0xc02b, 0xc02c, 0xc02f, 0xc030)
body = b"\x03\x03" + os.urandom(32) + b"\x00" + suites + b"\x01\x00" + struct.pack(">H", len(exts)) + exts
def hs(t, b): return bytes([t]) + len(b).to_bytes(3, "big") + b
def rec(t, b): return bytes([t]) + b"\x03\x03" + struct.pack(">H", len(b)) + b
s = socket.create_connection((ip, port), timeout=10)
s.sendall(b"\x16\x03\x01" + struct.pack(">H", len(hs(1, body))) + hs(1, body))
buf, hsbuf = b"", b""
def records():
    global buf
    while True:
        while len(buf) >= 5 and len(buf) >= 5 + struct.unpack(">H", buf[3:5])[0]:
            n = struct.unpack(">H", buf[3:5])[0]
            r = (buf[0], buf[5:5 + n]); buf = buf[5 + n:]
            yield r
        d = s.recv(65536)
        if not d:
            yield (None, b"")
            return
        buf += d
done = False
for t, b in records():
    if t is None: sys.exit("EOF before ServerHelloDone")
    if t == 21: sys.exit("alert before ServerHelloDone: %s" % b.hex())
    if t != 22: continue
    hsbuf += b
    while len(hsbuf) >= 4 and len(hsbuf) >= 4 + int.from_bytes(hsbuf[1:4], "big"):
        mt = hsbuf[0]; hsbuf = hsbuf[4 + int.from_bytes(hsbuf[1:4], "big"):]
        if mt == 14: done = True
    if done: break
ent = len(der).to_bytes(3, "big") + der
s.sendall(rec(22, hs(11, len(ent).to_bytes(3, "big") + ent)))
for t, b in records():
    if t is None: print("EOF without alert"); break
    if t == 21: print("alert level %d number %d" % (b[0], b[1])); break
RAW
raw_case() { # raw_case WANT CTR ALERT_NUMBER PORT PEM
	local tag out
	N=$((N + 1))
	tag="c$N-$1"
	tls_snap "$T/before.json"
	out=$(gw_in timeout 15 "$GW_PY" "$T/raw12.py" "$GW_GW_IP" "$4" "$SNI" "$C/$5" 2>&1 || true)
	wait_counted
	[ "$out" = "alert level 2 number $3" ] || gw_fail "$tag: raw TLS 1.2 $5 on $4: want alert $3: $out"
	check_deltas "$tag" "$1" "$2"
	gw_ok "$tag: port $4 raw TLS 1.2 client with $5 refused: alert $3, $2 +1 only"
}
raw_case untrusted_issuer reject_untrusted_issuer 48 9001 leaf.pem
raw_case undecodable hs_fail_proto 50 9001 malformed.pem

gw_stop_gateway
gw_ok "clean stop"
gw_done
