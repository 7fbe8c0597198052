#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# What an operator sees, against the real gateway on a tap in our namespace:
# - ports[].peer_address: mtlsgw gives the kernel side of its tap the
#   address and brings it up (no `ip addr add` here): the kernel pings it;
# - a reload changing hsm.env warns that it is start-only (reload_checks.sh
#   starts a gateway whose only SOFTHSM2_CONF is its hsm.env);
# - `mtlsgw-ctl reload` prints the new generation, or every error the loader
#   found (exit 1, the running config stays); the log names where each
#   reload came from: SIGHUP, the admin API (curl), mtlsgw-ctl;
# - `mtlsgw-ctl status` prints aligned tables, JSON only with --json.
. "$(dirname "$0")/../lib/common.sh"

S=$T/admin.sock
C=$MTLSGW_CTL

# write_config FILE ENV_VALUE [EXTRA_PORT_LINE]
write_config() {
	cat >"$1" <<EOC
dataplane:
  workers: [1]
  no_huge: true
  memory_mb: ${GW_MEMORY_MB:-384}
  tcp: { max_connections: 1000 }
  ports:
    - name: wan
      driver: tap
      device: $GW_TAP
      address: $GW_GW_IP/24
      peer_address: $GW_PEER_IP/24
listeners:
  - name: echo
    address: $GW_GW_IP:7
    service: echo
  - name: echo-with-a-long-name
    address: $GW_GW_IP:9
    service: echo
hsm:
  env: { MTLSGW_TEST_ENV: "$2" }
${3:+  inline_below: $3}
admin: { socket: $S }
EOC
}
write_config "$T/gw.yaml" one
gw_start_gateway "$T/gw.yaml"
gw_wait 100 test -S "$S" || gw_fail "no admin socket"

# --- peer_address
gw_in ip -4 -o addr show dev "$GW_TAP" | grep -q "inet $GW_PEER_IP/24 " ||
	gw_fail "tap has no $GW_PEER_IP/24: $(gw_in ip -4 -o addr show dev "$GW_TAP")"
gw_in ip -o link show "$GW_TAP" | grep -q "[<,]UP[,>]" || gw_fail "tap is not up"
gw_peer ping "$GW_GW_IP" 2 >/dev/null || gw_fail "the kernel cannot ping the gateway"
gw_ok "peer_address: tap $GW_TAP is $GW_PEER_IP/24 and up; the kernel pings $GW_GW_IP"

# --- status: tables, no JSON
out=$("$C" status --socket "$S")
case "$out" in *'{'* | *'['*) gw_fail "status prints JSON in human mode: $out" ;; esac
grep -q '^generation  *1$' <<<"$out" || gw_fail "status: no generation line: $out"
# each table's values start where its header's columns do
"$GW_PY" - <<EOP || gw_fail "status tables are not aligned: $out"
import re, sys
lines = """$out""".split("\n")
def table(head):
    i = next(i for i, l in enumerate(lines) if l.startswith(head))
    rows = []
    for l in lines[i + 1:]:
        if not l.strip():
            break
        rows.append(l)
    cols = [m.start() for m in re.finditer(r"(?<=  )\S|^\S", lines[i])]
    return lines[i], rows, cols
h, rows, cols = table("LISTENER")
assert len(rows) == 2 and len(cols) == 4, (h, rows)
for r in rows:
    for c in cols[1:]:
        assert r[c - 2:c] == "  " and r[c] != " ", (h, r, c)
assert rows[1].split() == ["echo-with-a-long-name", "$GW_GW_IP:9", "echo", "none"], rows[1]
h, rows, cols = table("WORKER")
assert len(rows) == 1 and h.split() == ["WORKER", "LCORE", "GENERATION", "BUSY", "CONNECTIONS"], h
w = rows[0].split()
assert w[2] == "1" and w[3].endswith("s") and re.fullmatch(r"\d+/1000", w[4]), w
for c in cols[1:]:
    assert rows[0][c - 2:c] == "  " and rows[0][c] != " ", (h, rows[0], c)
EOP
"$C" status --socket "$S" --json | "$GW_PY" -c 'import json,sys; d=json.load(sys.stdin); assert d["Listeners"][0]["Address"] == "'"$GW_GW_IP"':7" and "Connections" in d["Workers"][0] and d["Workers"][0]["MaxConnections"] == 1000' ||
	gw_fail "status --json"
printf "%s\n" "$out"
gw_ok "status: aligned tables (listeners, workers), JSON only with --json"

# --- reload sources and answers
# more_than PATTERN N: gw.err has more than N lines matching PATTERN
more_than() { [ "$(grep -c "$1" "$T/gw.err")" -gt "$2" ]; }
n=$(grep -c "reload (SIGHUP): reloaded" "$T/gw.err" || true)
kill -HUP "$GW_GW_PID"
gw_wait 100 more_than "reload (SIGHUP): reloaded" "$n" ||
	gw_fail "no 'reload (SIGHUP): reloaded' line: $(tail -3 "$T/gw.err")"
code=$(curl -sS --unix-socket "$S" -o "$T/api.out" -w '%{http_code}' -X POST http://x/v1/reload)
[ "$code" = 200 ] || gw_fail "POST /v1/reload: $code $(cat "$T/api.out")"
"$GW_PY" -c 'import json,sys; assert json.load(open(sys.argv[1]))["Generation"] == 3' "$T/api.out" ||
	gw_fail "POST /v1/reload answered $(cat "$T/api.out")"
grep -q "reload (admin API): reloaded $T/gw.yaml (generation 3)" "$T/gw.err" ||
	gw_fail "no 'reload (admin API)' line: $(tail -3 "$T/gw.err")"
out=$("$C" reload --socket "$S") || gw_fail "mtlsgw-ctl reload: $out"
[ "$out" = "reloaded: generation 4" ] || gw_fail "mtlsgw-ctl reload said '$out'"
grep -q "reload (mtlsgw-ctl): reloaded $T/gw.yaml (generation 4)" "$T/gw.err" ||
	gw_fail "no 'reload (mtlsgw-ctl)' line: $(tail -3 "$T/gw.err")"
"$C" reload --socket "$S" --json | "$GW_PY" -c 'import json,sys; assert json.load(sys.stdin)["Generation"] == 5' ||
	gw_fail "reload --json"
gw_ok "reloads logged as reload (SIGHUP), (admin API), (mtlsgw-ctl); reload prints generation 4"

# a file with three errors: all three, exit 1, the running config stays
write_config "$T/gw.yaml" two
sed -i -e 's/service: echo$/service: ecko/' -e "s|address: $GW_GW_IP:9|address: $GW_GW_IP:99999|" "$T/gw.yaml"
rc=0
out=$("$C" reload --socket "$S" 2>&1) || rc=$?
[ "$rc" = 1 ] || gw_fail "reload of a bad file exited $rc: $out"
grep -q "reload refused (HTTP 409); the running config stays:" <<<"$out" || gw_fail "reload: $out"
[ "$(grep -c "^  $T/gw.yaml:[0-9]*: listeners\[" <<<"$out")" = 3 ] ||
	gw_fail "reload did not list the 3 errors: $out"
grep -q "listeners\[1\].address: .*99999" <<<"$out" || gw_fail "reload: no address error: $out"
out=$("$C" reload --socket "$S" --json 2>/dev/null) && gw_fail "reload --json of a bad file: exit 0"
"$GW_PY" -c 'import json,sys; assert len(json.load(sys.stdin)["Errors"]) == 3' <<<"$out" ||
	gw_fail "reload --json of a bad file has not 3 Errors: $out"
grep -q "reload (mtlsgw-ctl): $T/gw.yaml rejected" "$T/gw.err" || gw_fail "no rejected line"
[ "$(curl -sS --unix-socket "$S" http://x/v1/status | "$GW_PY" -c 'import json,sys; print(json.load(sys.stdin)["Generation"])')" = 5 ] ||
	gw_fail "the generation moved after a refused reload"
gw_ok "reload of a file with 3 errors: exit 1, all 3 listed, generation stays 5"

# hsm.env changed: accepted, warned, the environment stays
write_config "$T/gw.yaml" two
out=$("$C" reload --socket "$S") || gw_fail "reload with a new hsm.env: $out"
grep -q "reload (mtlsgw-ctl): hsm.env changed: the process environment (and the PKCS#11 module) keep the start values until a restart" "$T/gw.err" ||
	gw_fail "no hsm.env warning: $(tail -3 "$T/gw.err")"
gw_ok "hsm.env changed by a reload: warned, start-only"

# hsm.inline_below changed: accepted, warned, start-only like threads and queue
write_config "$T/gw.yaml" two 500us
out=$("$C" reload --socket "$S") || gw_fail "reload with a new hsm.inline_below: $out"
grep -q "reload (mtlsgw-ctl): hsm.threads, queue, sign_timeout, inline_below or cpus changed: the HSM threads and the workers keep the start values until a restart" "$T/gw.err" ||
	gw_fail "no hsm.inline_below warning: $(tail -3 "$T/gw.err")"
gw_ok "hsm.inline_below changed by a reload: warned, start-only"

gw_stop_gateway
gw_done
