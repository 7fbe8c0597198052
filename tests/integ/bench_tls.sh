#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# bench_tls.sh - `mtlsgw-bench tls` does what bench/run relies on: full mTLS
# handshakes against a real server (openssl s_server, in a namespace made
# here), and every kind of failure reported with its reason rather than
# counted as a success. No timing is asserted: only counts and reasons.
set -euo pipefail
. "$(dirname "$0")/../lib/common.sh"

: "${MTLSGW_BENCH:?}"
. "$GW_SRC/bench/pki.sh"
P=$T/pki
bench_pki "$P" 2>"$T/pki.err" || gw_fail "PKI: $(cat "$T/pki.err")"
gw_netns
PORT=9443

# s_server: verify the client against the root, fail the handshake otherwise
gw_bg gw_in openssl s_server -accept "127.0.0.1:$PORT" -cert "$P/server.pem" \
	-key "$P/server.key" -cert_chain "$P/int.pem" -CAfile "$P/root.pem" -Verify 2 \
	-verify_return_error -www -quiet >"$T/s_server.log" 2>&1
gw_wait 100 gw_in bash -c "exec 3<>/dev/tcp/127.0.0.1/$PORT" || gw_fail "s_server did not start"

bench() { # bench [args...]: one short run, JSON on stdout, exit status kept
	gw_in "$MTLSGW_BENCH" tls --connect "127.0.0.1:$PORT" --servername "$BENCH_SERVERNAME" \
		--seconds 1 --concurrency 2 --json "$@"
}
field() { # field JSON KEY
	python3 -c 'import json,sys; v=json.loads(sys.argv[1])[sys.argv[2]]; print(json.dumps(v) if isinstance(v, dict) else v)' "$1" "$2"
}
good=(--cert "$P/client.chain.pem" --key "$P/client.key" --ca "$P/root.pem")

# 1. a trusted client: handshakes, the request answered, no failure
out=$(bench "${good[@]}" --request 'GET / HTTP/1.0\r\n\r\n' --expect "200 ok")
[ "$(field "$out" connections_ok)" -gt 0 ] || gw_fail "no handshake: $out"
[ "$(field "$out" failed)" -eq 0 ] || gw_fail "failures with a good client: $out"
[ "$(field "$out" p50_us)" -gt 0 ] || gw_fail "no latency recorded: $out"
gw_ok "good client: $(field "$out" connections_ok) full handshakes, 0 failures"

# 1b. two client threads share the connections and the counts add up
out=$(bench "${good[@]}" --threads 2 --concurrency 4 --request 'GET / HTTP/1.0\r\n\r\n' \
	--expect "200 ok")
[ "$(field "$out" threads)" -eq 2 ] && [ "$(field "$out" connections_ok)" -gt 0 ] &&
	[ "$(field "$out" failed)" -eq 0 ] || gw_fail "--threads 2: $out"
gw_ok "--threads 2: $(field "$out" connections_ok) handshakes, 0 failures"

# 2. TLS 1.2 as well
out=$(bench "${good[@]}" --tls 1.2 --request 'GET / HTTP/1.0\r\n\r\n' --expect "200 ok")
[ "$(field "$out" connections_ok)" -gt 0 ] && [ "$(field "$out" failed)" -eq 0 ] ||
	gw_fail "TLS 1.2: $out"
gw_ok "TLS 1.2 handshakes"

# 3. the server refuses the client: seen on the answer, with the alert
set +e
out=$(bench --cert "$P/other.chain.pem" --key "$P/other.key" --ca "$P/root.pem" \
	--request 'GET / HTTP/1.0\r\n\r\n' 2>"$T/err")
rc=$?
set -e
[ "$rc" -ne 0 ] || gw_fail "refused client reported success: $out"
[ "$(field "$out" connections_ok)" -eq 0 ] || gw_fail "refused client counted ok: $out"
case $(field "$out" failures) in *'answer: '*alert*) ;; *) gw_fail "no alert reason: $out" ;; esac
grep -q "no connection succeeded" "$T/err" || gw_fail "no error line: $(cat "$T/err")"
gw_ok "untrusted client refused, reason: $(field "$out" failures)"

# 4. the client verifies the server: wrong anchor, wrong name
set +e
out=$(bench --cert "$P/client.chain.pem" --key "$P/client.key" --ca "$P/otherca.pem" 2>/dev/null)
set -e
case $(field "$out" failures) in *'handshake: server certificate: unable to get local issuer certificate'*) ;;
*) gw_fail "wrong CA: $out" ;; esac
gw_ok "server not trusted: reported"
set +e
out=$(gw_in "$MTLSGW_BENCH" tls --connect "127.0.0.1:$PORT" --servername wrong.example \
	--seconds 1 --json "${good[@]}" 2>/dev/null)
set -e
case $(field "$out" failures) in *'server certificate: hostname mismatch'*) ;;
*) gw_fail "wrong name: $out" ;; esac
gw_ok "server name mismatch: reported"

# 5. an answer that is not the expected one is a failure
set +e
out=$(bench "${good[@]}" --request 'GET / HTTP/1.0\r\n\r\n' --expect "no such text" 2>"$T/err")
set -e
case $(field "$out" failures) in *'answer: does not contain the --expect text'*) ;;
*) gw_fail "--expect: $out" ;; esac
grep -q "first unexpected answer: HTTP/1.0 200 ok" "$T/err" || gw_fail "--expect: $(cat "$T/err")"
gw_ok "--expect mismatch counted as failure and shown once"

# 6. nobody listening
set +e
out=$(gw_in "$MTLSGW_BENCH" tls --connect 127.0.0.1:1 --seconds 0.2 --json "${good[@]}" 2>/dev/null)
set -e
case $(field "$out" failures) in *'connect: Connection refused'*) ;; *) gw_fail "refused: $out" ;; esac
gw_ok "connection refused: reported"

# 7. the record path: --bytes through a TLS echo server (python's ssl,
# client certificate required), every byte checked; and a server that
# changes one byte is caught
cat >"$T/echo.py" <<'PY'
import socket, ssl, sys, threading
d, port, corrupt = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "corrupt"
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(d + "/server.chain.pem", d + "/server.key")
ctx.load_verify_locations(d + "/root.pem")
ctx.verify_mode = ssl.CERT_REQUIRED
ls = socket.create_server(("127.0.0.1", port))
def serve(c):
    n = 0
    try:
        with ctx.wrap_socket(c, server_side=True) as s:
            while True:
                b = s.recv(65536)
                if not b:
                    break
                if corrupt and n <= 100000 < n + len(b):
                    b = bytearray(b)
                    b[100000 - n] ^= 1
                n += len(b)
                s.sendall(b)
    except (OSError, ssl.SSLError):
        pass
while True:
    c, _ = ls.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
PY
gw_bg gw_in python3 "$T/echo.py" "$P" 9444 ok
gw_bg gw_in python3 "$T/echo.py" "$P" 9445 corrupt
gw_wait 100 gw_in bash -c "exec 3<>/dev/tcp/127.0.0.1/9444" || gw_fail "echo server did not start"
gw_wait 100 gw_in bash -c "exec 3<>/dev/tcp/127.0.0.1/9445" || gw_fail "echo server 2 did not start"
out=$(gw_in "$MTLSGW_BENCH" tls --connect 127.0.0.1:9444 --servername "$BENCH_SERVERNAME" \
	"${good[@]}" --bytes 1M --concurrency 2 --seconds 1 --json)
[ "$(field "$out" connections_ok)" -gt 0 ] && [ "$(field "$out" failed)" -eq 0 ] ||
	gw_fail "--bytes: $out"
[ "$(field "$out" echo_bytes)" -ge 1048576 ] || gw_fail "--bytes: nothing counted: $out"
gw_ok "--bytes 1M: $(field "$out" connections_ok) connections echoed every byte"
set +e
out=$(gw_in "$MTLSGW_BENCH" tls --connect 127.0.0.1:9445 --servername "$BENCH_SERVERNAME" \
	"${good[@]}" --bytes 1M --concurrency 1 --seconds 1 --json 2>/dev/null)
set -e
case $(field "$out" failures) in *'echo: bytes came back changed or extra'*) ;;
*) gw_fail "corrupted echo not caught: $out" ;; esac
[ "$(field "$out" connections_ok)" -eq 0 ] || gw_fail "corrupted echo counted ok: $out"
gw_ok "--bytes: a changed byte is caught"

# 8. --resume: s_server issues TLS 1.3 tickets and resumes them; with
# -no_ticket -no_cache it does not (-no_ticket alone still resumes, from its
# cache; with both it still sends a ticket, which then fails): 0 resumed,
# never counted as resumed because one was offered
out=$(bench "${good[@]}" --resume --request 'GET / HTTP/1.0\r\n\r\n' --expect "200 ok")
[ "$(field "$out" resumed)" -gt 0 ] && [ "$(field "$out" failed)" -eq 0 ] &&
	[ "$(field "$out" resume_offered)" -ge "$(field "$out" resumed)" ] || gw_fail "--resume: $out"
gw_ok "--resume: $(field "$out" resumed) of $(field "$out" handshakes) handshakes resumed"
gw_bg gw_in openssl s_server -accept "127.0.0.1:9446" -cert "$P/server.pem" \
	-key "$P/server.key" -cert_chain "$P/int.pem" -CAfile "$P/root.pem" -Verify 2 \
	-verify_return_error -www -quiet -no_ticket -no_cache >"$T/s_server2.log" 2>&1
gw_wait 100 gw_in bash -c "exec 3<>/dev/tcp/127.0.0.1/9446" || gw_fail "s_server 2 did not start"
out=$(gw_in "$MTLSGW_BENCH" tls --connect 127.0.0.1:9446 --servername "$BENCH_SERVERNAME" \
	--seconds 1 --concurrency 2 --json "${good[@]}" --resume \
	--request 'GET / HTTP/1.0\r\n\r\n' --expect "200 ok")
[ "$(field "$out" connections_ok)" -gt 0 ] && [ "$(field "$out" resumed)" -eq 0 ] &&
	[ "$(field "$out" failed)" -eq 0 ] || gw_fail "--resume, server does not resume: $out"
gw_ok "--resume against a server that does not resume: 0 resumed of $(field "$out" handshakes) ($(field "$out" resume_offered) offered)"

# 9. --rate: at most the asked pace (the first start of each slot is on
# the schedule too); no performance asserted, only the pacing
out=$(gw_in "$MTLSGW_BENCH" tls --connect 127.0.0.1:9444 --servername "$BENCH_SERVERNAME" \
	"${good[@]}" --request 'ping\n' --expect ping --rate 20 --concurrency 8 --seconds 2 --json)
n=$(field "$out" connections_ok)
[ "$n" -gt 0 ] && [ "$n" -le 46 ] && [ "$(field "$out" failed)" -eq 0 ] &&
	[ "$(field "$out" rate)" = 20.0 ] || gw_fail "--rate 20 for 2 s: $out"
gw_ok "--rate 20 for 2 s: $n connections"

# 10. --hold: 30 connections to the echo server, each with its request
# answered, held, one line when all are up, closed after --seconds; and
# SIGTERM ends a long hold at once, with the closing line
out=$(gw_in "$MTLSGW_BENCH" tls --connect 127.0.0.1:9444 --servername "$BENCH_SERVERNAME" \
	"${good[@]}" --request 'hold\n' --expect hold --hold 30 --concurrency 4 --seconds 1 --json)
est=$(head -1 <<<"$out")
end=$(tail -1 <<<"$out")
[ "$(field "$est" event)" = established ] && [ "$(field "$est" held)" -eq 30 ] &&
	[ "$(field "$est" failed)" -eq 0 ] && [ "$(field "$end" event)" = closed ] &&
	[ "$(field "$end" dropped)" -eq 0 ] || gw_fail "--hold 30: $out"
gw_ok "--hold 30: all established, held $(field "$end" held_s) s, closed"
# not through gw_in: $! must be the client itself
ip netns exec "$GW_NS" "$MTLSGW_BENCH" tls --connect 127.0.0.1:9444 \
	--servername "$BENCH_SERVERNAME" "${good[@]}" --request 'hold\n' --expect hold --hold 10 \
	--seconds 600 --json >"$T/hold.json" 2>"$T/hold.err" &
hp=$!
GW_PIDS+=("$hp")
gw_wait 100 grep -q established "$T/hold.json" || gw_fail "--hold 10: $(cat "$T/hold.json" "$T/hold.err")"
kill -TERM "$hp"
gw_wait 50 grep -q '"closed"' "$T/hold.json" || gw_fail "--hold: SIGTERM did not close"
wait "$hp" || gw_fail "--hold: exit $? after SIGTERM"
gw_ok "--hold: SIGTERM closes the held connections and reports"

# 11. bad invocations: one clear line, exit 2 or 1, nothing run
gw_expect_fail "want 1.3 or 1.2" "$MTLSGW_BENCH" tls --connect 127.0.0.1:1 "${good[@]}" --tls 1.1
gw_expect_fail "--connect, --cert, --key and --ca are required" "$MTLSGW_BENCH" tls --connect 127.0.0.1:1
gw_expect_fail "want IPv4:PORT" "$MTLSGW_BENCH" tls --connect localhost "${good[@]}"
gw_expect_fail "cannot load client key '$T/nope'" "$MTLSGW_BENCH" tls --connect 127.0.0.1:1 \
	--cert "$P/client.chain.pem" --key "$T/nope" --ca "$P/root.pem"
gw_expect_fail "does not match certificate" "$MTLSGW_BENCH" tls --connect 127.0.0.1:1 \
	--cert "$P/client.chain.pem" --key "$P/other.key" --ca "$P/root.pem"
gw_expect_fail "--expect needs --request" "$MTLSGW_BENCH" tls --connect 127.0.0.1:1 "${good[@]}" --expect x
gw_expect_fail "want a size like" "$MTLSGW_BENCH" tls --connect 127.0.0.1:1 "${good[@]}" --bytes 12X
gw_expect_fail "exclude each other" "$MTLSGW_BENCH" tls --connect 127.0.0.1:1 "${good[@]}" \
	--bytes 1K --request x
gw_expect_fail "--hold excludes --bytes" "$MTLSGW_BENCH" tls --connect 127.0.0.1:1 "${good[@]}" \
	--hold 2 --bytes 1K

gw_done
