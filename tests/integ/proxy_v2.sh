#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# proxy_v2.sh - PROXY v2 headers built by dataplane/proxy_v2.c (through
# test_proxy_v2 --emit) are accepted by the strict test upstream
# tests/lib/pp2_upstream.py, which answers with the client identity it read;
# malformed headers are refused with a reason and the upstream keeps serving.
# Proves encoder and parser against each other before the gateway uses them.
#
#   proxy_v2.sh TEST_PROXY_V2_BINARY
set -euo pipefail
. "$(dirname "$0")/../lib/common.sh"

EMIT=${1:?usage: proxy_v2.sh path/to/test_proxy_v2}
PY=${PYTHON:-python3}
UP=$GW_SRC/tests/lib/pp2_upstream.py

gw_netns

start_upstream() { # start_upstream NAME ARGS... ; sets PORT_<NAME>
	local name=$1
	shift
	gw_bg gw_in "$PY" "$UP" --listen 127.0.0.1:0 --ready-file "$T/$name.port" \
		--log "$T/$name.log" "$@" 2>"$T/$name.err"
	gw_wait 100 test -s "$T/$name.port" || gw_fail "upstream $name did not start: $(cat "$T/$name.err")"
	printf -v "PORT_$name" '%s' "$(cat "$T/$name.port")"
}

# send PORT FILE : connect inside the namespace, send FILE's bytes then
# "ping\n", half-close, print everything the upstream answered.
send() {
	gw_in "$PY" - "$1" "$2" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s.sendall(open(sys.argv[2], "rb").read() + b"ping\n")
s.shutdown(socket.SHUT_WR)
out = b""
while True:
    d = s.recv(65536)
    if not d:
        break
    out += d
sys.stdout.write(out.decode())
PY
}

start_upstream main --mode hello
start_upstream strict --mode echo --require-client-cert

full=(src=192.0.2.1:51000 dst=198.51.100.7:443 alpn=h2 sni=gw.example ssl=1 client=7
	verify=0 version=TLSv1.3 cn=client1 cipher=TLS_AES_128_GCM_SHA256
	sig_alg=ECDSA-SHA256 key_alg=EC256 id=spiffe://demo.mtlsgw/client1)
"$EMIT" --emit "${full[@]}" >"$T/full.bin"

# 1. the full header: the upstream names the client
out=$(send "$PORT_main" "$T/full.bin")
want=$'hello spiffe://demo.mtlsgw/client1 from 192.0.2.1:51000 over TLSv1.3\nping'
[ "$out" = "$want" ] || gw_fail "full header: got '$out', want '$want'"
gw_ok "full header: upstream answers with SPIFFE ID, address and TLS version"

# 2. every field arrived as sent (the upstream's parsed record)
"$PY" - "$T/main.log" <<'PY' || gw_fail "parsed fields differ: $(tail -1 "$T/main.log")"
import json, sys
r = json.loads(open(sys.argv[1]).readlines()[-1])
want = {"command": "PROXY", "src": "192.0.2.1:51000", "dst": "198.51.100.7:443",
        "alpn": "h2", "authority": "gw.example", "client_id": "spiffe://demo.mtlsgw/client1",
        "ssl": {"client": 7, "verify": 0, "version": "TLSv1.3", "cn": "client1",
                "cipher": "TLS_AES_128_GCM_SHA256", "sig_alg": "ECDSA-SHA256",
                "key_alg": "EC256"}}
bad = {k: (r.get(k), v) for k, v in want.items() if r.get(k) != v}
sys.exit(1 if bad else 0)
PY
gw_ok "full header: ALPN, SNI, SSL sub-TLVs and client id parsed exactly"

# 3. addresses only
"$EMIT" --emit src=10.1.2.3:40000 dst=10.1.2.4:8443 >"$T/min.bin"
out=$(send "$PORT_main" "$T/min.bin")
[ "$out" = $'hello - from 10.1.2.3:40000 over -\nping' ] || gw_fail "minimal header: got '$out'"
gw_ok "addresses-only header accepted"

# 4. malformed headers: refused with the reason, nothing served
head -c 20 "$T/full.bin" >"$T/cut.bin"
out=$(send "$PORT_main" "$T/cut.bin")
case "$out" in "ERR "*) ;; *) gw_fail "cut header accepted: '$out'" ;; esac
gw_ok "cut header refused: $out"

# a TLV length that overruns the header: byte 30 is the ALPN TLV's length_lo
"$PY" -c 'import sys; b=bytearray(open(sys.argv[1],"rb").read()); b[30]=0xff; open(sys.argv[2],"wb").write(b)' \
	"$T/full.bin" "$T/overrun.bin"
out=$(send "$PORT_main" "$T/overrun.bin")
case "$out" in "ERR TLVs: TLV 0x01 length 255 overruns"*) ;; *) gw_fail "overrun TLV: got '$out'" ;; esac
gw_ok "TLV overrunning the header refused: $out"

# an SSL TLV whose sub-TLV overruns the SSL TLV (but not the header)
"$PY" - "$T/full.bin" "$T/subrun.bin" <<'PY'
import sys
b = bytearray(open(sys.argv[1], "rb").read())
i = b.index(b"\x21\x00\x07TLSv1.3")
b[i + 2] = 0x60  # VERSION claims 96 bytes
open(sys.argv[2], "wb").write(b)
PY
out=$(send "$PORT_main" "$T/subrun.bin")
case "$out" in "ERR SSL sub-TLVs: TLV 0x21 length 96 overruns"*) ;; *) gw_fail "sub-TLV overrun: got '$out'" ;; esac
gw_ok "SSL sub-TLV overrun refused: $out"

printf 'GET / HTTP/1.0\r\n\r\n' >"$T/nohdr.bin"
out=$(send "$PORT_main" "$T/nohdr.bin")
[ "$out" = "ERR no PROXY v2 signature" ] || gw_fail "no header: got '$out'"
gw_ok "connection without a header refused"

# 5. the strict upstream wants a verified client certificate
"$EMIT" --emit src=192.0.2.9:1000 dst=198.51.100.7:443 ssl=1 client=3 verify=1 \
	version=TLSv1.3 id=spiffe://demo.mtlsgw/bad >"$T/unverified.bin"
out=$(send "$PORT_strict" "$T/unverified.bin")
[ "$out" = "ERR no verified client certificate in the SSL TLV" ] || gw_fail "unverified: got '$out'"
gw_ok "unverified client refused by --require-client-cert"
out=$(send "$PORT_strict" "$T/full.bin")
[ "$out" = "ping" ] || gw_fail "strict echo: got '$out'"
gw_ok "verified client echoed by --require-client-cert"

# 6. a CRC32C TLV (spec 2.2.3) is checked when present: right one accepted,
# wrong one refused (the TLV is appended to an encoder-built header)
"$PY" - "$T/full.bin" "$T/crc_ok.bin" "$T/crc_bad.bin" "$UP" <<'PY'
import importlib.util, sys
spec = importlib.util.spec_from_file_location("pp2", sys.argv[4])
pp2 = importlib.util.module_from_spec(spec)
spec.loader.exec_module(pp2)
b = bytearray(open(sys.argv[1], "rb").read())
b += b"\x03\x00\x04\x00\x00\x00\x00"
b[14:16] = (len(b) - 16).to_bytes(2, "big")
crc = pp2.crc32c(bytes(b))
assert pp2.crc32c(b"123456789") == 0xE3069283  # RFC 3720 check value
good = b[:-4] + crc.to_bytes(4, "big")
bad = b[:-4] + (crc ^ 1).to_bytes(4, "big")
open(sys.argv[2], "wb").write(good)
open(sys.argv[3], "wb").write(bad)
PY
out=$(send "$PORT_main" "$T/crc_ok.bin")
[ "$out" = "$want" ] || gw_fail "CRC32C ok: got '$out'"
out=$(send "$PORT_main" "$T/crc_bad.bin")
[ "$out" = "ERR CRC32C mismatch" ] || gw_fail "CRC32C bad: got '$out'"
gw_ok "CRC32C TLV verified: good accepted, wrong refused"

# 7. http mode: what curl through the gateway will see
start_upstream web --mode http
printf 'GET / HTTP/1.0\r\nHost: x\r\n\r\n' >"$T/req.txt"
cat "$T/full.bin" "$T/req.txt" >"$T/http.bin"
out=$(send "$PORT_web" "$T/http.bin" | tr -d '\r')
case $out in
"HTTP/1.0 200 OK"*"hello spiffe://demo.mtlsgw/client1 from 192.0.2.1:51000 over TLSv1.3") ;;
*) gw_fail "http mode: got '$out'" ;;
esac
gw_ok "http mode answers 200 with the client identity"

# 8. still serving after the bad ones; each refusal was logged with its reason
out=$(send "$PORT_main" "$T/full.bin")
[ "$out" = "$want" ] || gw_fail "after errors: got '$out'"
n=$(grep -c '"error"' "$T/main.log")
[ "$n" -eq 5 ] || gw_fail "want 5 logged refusals, got $n: $(cat "$T/main.log")"
gw_ok "upstream kept serving; 5 refusals logged with reasons"

gw_done
