#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# A reload changes a plain tcp-proxy's upstream (the listener table is the
# snapshot, plain listeners too): mtlsgw (no TLS, no HSM) proxies
# 10.99.0.2:8080 to upstream A; a client connects through it and holds its
# connection; SIGHUP with a config whose upstream is B. New connections
# reach B; the connection opened before the reload still talks to A (it
# keeps the snapshot it started with). Everything in our own namespace.
. "$(dirname "$0")/../lib/common.sh"

# An upstream that names itself: "NAME\n" on accept, then "NAME:<line>" per line.
cat >"$T/up.py" <<'PY'
import socket, sys, threading
name, port = sys.argv[1], int(sys.argv[2])
ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("10.99.0.1", port))
ls.listen(16)
print("listening", flush=True)
def serve(c):
    f = c.makefile("rwb", buffering=0)
    f.write(name.encode() + b"\n")
    for line in f:
        f.write(name.encode() + b":" + line)
    c.close()
while True:
    c, _ = ls.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
PY
# A client through the proxy: prints the upstream's name; with a FIFO, holds
# the connection until a line arrives on it, then one round trip ("NAME:ping").
cat >"$T/cl.py" <<'PY'
import socket, sys
s = socket.create_connection(("10.99.0.2", 8080), timeout=10)
f = s.makefile("rwb", buffering=0)
print(f.readline().decode().strip(), flush=True)
if len(sys.argv) > 1:
    open(sys.argv[1]).readline()  # wait for the go
f.write(b"ping\n")
print(f.readline().decode().strip(), flush=True)
PY

conf() { # conf UPSTREAM_PORT
	gw_gateway_config "$T/gw.yaml" "[1]" "  - name: proxy
    address: $GW_GW_IP:8080
    service: tcp-proxy
    upstream:
      servers: [$GW_PEER_IP:$1]"
}
conf 9001
gw_start_gateway "$T/gw.yaml"
for u in A:9001 B:9002; do
	gw_bg ip netns exec "$GW_NS" "$GW_PY" "$T/up.py" "${u%%:*}" "${u##*:}" >"$T/up-${u%%:*}.log" 2>&1
	gw_wait 50 grep -q listening "$T/up-${u%%:*}.log" || gw_fail "upstream ${u%%:*} did not start"
done

out=$(gw_in timeout 15 "$GW_PY" "$T/cl.py" | paste -sd' ') || true
[ "$out" = "A A:ping" ] || gw_fail "before the reload: a client got '$out', want 'A A:ping'"
gw_ok "before the reload: clients reach upstream A"

# a connection opened before the reload, held open across it
mkfifo "$T/go"
exec 3<>"$T/go" # keeps the FIFO open: cl.py's open does not block on us
gw_bg ip netns exec "$GW_NS" timeout 60 "$GW_PY" "$T/cl.py" "$T/go" >"$T/old.out"
old_pid=$GW_LAST_PID
gw_wait 100 grep -q . "$T/old.out" || gw_fail "the held connection got no banner"
[ "$(head -1 "$T/old.out")" = "A" ] || gw_fail "held connection: '$(head -1 "$T/old.out")', want A"

# reloads_over N: more than N "reload (SIGHUP): reloaded" lines in gw.err
reloads_over() { [ "$(grep -c "reload (SIGHUP): reloaded" "$T/gw.err")" -gt "$1" ]; }
before=$(grep -c "reload (SIGHUP): reloaded" "$T/gw.err" || true)
conf 9002
kill -HUP "$GW_GW_PID"
gw_wait 100 reloads_over "$before" ||
	gw_fail "no 'reload (SIGHUP): reloaded' line: $(grep SIGHUP "$T/gw.err" | tail -1)"
gw_ok "reloaded: $(grep "reload (SIGHUP): reloaded" "$T/gw.err" | tail -1)"

# the worker takes the new snapshot at its next loop: new connections go to B
for i in 1 2 3; do
	out=$(gw_in timeout 15 "$GW_PY" "$T/cl.py" | paste -sd' ') || true
	[ "$out" = "B B:ping" ] || gw_fail "after the reload, client $i got '$out', want 'B B:ping'"
done
gw_ok "after the reload: new clients reach upstream B"

echo go >&3
wait "$old_pid" || gw_fail "the held connection failed: $(cat "$T/old.out")"
[ "$(paste -sd' ' "$T/old.out")" = "A A:ping" ] ||
	gw_fail "the held connection: '$(paste -sd' ' "$T/old.out")', want 'A A:ping'"
exec 3>&-
gw_ok "the connection opened before the reload still talks to A"

gw_stop_gateway
gw_done
