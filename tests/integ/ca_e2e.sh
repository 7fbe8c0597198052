#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# CA rotation through the running gateway, in our own namespace: a mesh
# tls-echo listener whose identity the builtin CA issues; kernel clients
# (tests/integ/ca_load.py) with certificates from ca-1, then from ca-2, each
# trusting only its own root, keep connecting (and keep one connection open)
# through the three steps taken with mtlsgw-ctl. Zero failed handshakes,
# zero dropped connections; after step 3 a client from ca-1 alone is refused.
# Along the way /v1/status lists the workers: each runs the current
# generation after step 2, and its busy cycles grow under load and stay
# nearly flat when idle (also in the counters line at exit).
. "$(dirname "$0")/../lib/common.sh"
. "$(dirname "$0")/../lib/ca.sh"

PORT=8443
ca_init

cfg() {
	gw_gateway_config "$T/gw.yaml" "[1]" "  - name: web
    address: $GW_GW_IP:$PORT
    service: tls-echo
    tls: { client_auth: required }
    trust: { mode: mesh, allow: { spiffe: [\"spiffe://example.org/ns/*\"] } }"
	ca_cfg_mtls "$1" "$2" >>"$T/gw.yaml"
}
root_of() { "$C" ca roots --socket "$S" --json | js "[r['RootCert'] for r in d['Roots'] if r['Name'] == '$1'][0]"; }
client() { # NAME: key, CSR, certificate from the enabled backend
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/$1.key" \
		-subj "/CN=$1" -out "$T/$1.csr" 2>/dev/null
	"$C" ca sign --socket "$S" --csr "$T/$1.csr" --spiffe-id "spiffe://example.org/ns/$1" \
		--out "$T/$1.pem"
}
load() { # NAME ROOTS: start a load client in the namespace
	gw_bg gw_in python3 "$GW_SRC/tests/integ/ca_load.py" --server "$GW_GW_IP:$PORT" \
		--cert "$T/$1.pem" --key "$T/$1.key" --ca "$T/$2.pem" --stop "$T/stop-$1" \
		--out "$T/load-$1.json" --progress "$T/progress-$1"
	eval "PID_$1=$GW_LAST_PID"
}
finish() { # NAME: stop a load client, check its numbers
	local pid
	eval "pid=\$PID_$1"
	touch "$T/stop-$1"
	wait "$pid" || gw_fail "load client $1 exited non-zero"
	js '(d["ok"], d["failed"], d["persistent_ok"], d["persistent_failed"], d["reasons"])' \
		<"$T/load-$1.json" >"$T/load-$1.txt"
	js 'd["failed"] == 0 and d["persistent_failed"] == 0 and d["ok"] > 0' <"$T/load-$1.json" |
		grep -qx True || gw_fail "client $1: $(cat "$T/load-$1.txt")"
	gw_ok "client $1: $(js '"%d handshakes, 0 failed; open connection echoed %d times, never dropped" % (d["ok"], d["persistent_ok"])' <"$T/load-$1.json")"
}
count() { cat "$T/progress-$1" 2>/dev/null || echo 0; }
status() { "$C" status --socket "$S" --json >"$T/status-$1.json" || gw_fail "status $1 failed"; }
# busy NAME: worker 0's busy cycles and the TSC rate in status NAME
busy() { js 'd["Workers"][0]["BusyCycles"], d["TscHz"]' <"$T/status-$1.json"; }
reached() { [ "$(count "$1")" -ge "$2" ]; }
advance() { # NAME: wait until client NAME completes 5 more handshakes
	local want=$(($(count "$1") + 5))
	gw_wait 600 reached "$1" "$want" ||
		gw_fail "client $1 stalled at $(count "$1") handshakes"
}

cfg "$B1" ca-1
gw_start_gateway "$T/gw.yaml"
gw_wait 100 test -S "$S" || gw_fail "no admin socket"
root_of ca-1 >"$T/ca1.pem"
client a
load a ca1
advance a

# the workers in /v1/status: lcore, generation, busy cycles growing under load
status load0
advance a
status load1
js 'len(d["Workers"]) == 1 and d["Workers"][0]["Lcore"] == 1 and d["Workers"][0]["Id"] == 0 and d["TscHz"] > 0' \
	<"$T/status-load1.json" | grep -qx True || gw_fail "status workers: $(cat "$T/status-load1.json")"
read -r b0 _ < <(busy load0)
read -r b1 hz < <(busy load1)
[ "$b1" -gt "$b0" ] || gw_fail "busy cycles did not grow under load: $b0 -> $b1"
gw_ok "status: worker 0 on lcore 1; busy cycles grew under load ($b0 -> $b1 at $hz Hz)"

# SIGPIPE (a peer closing while the gateway writes; here sent by hand) is
# ignored: the gateway keeps serving
kill -PIPE "$GW_GW_PID"
advance a
kill -0 "$GW_GW_PID" 2>/dev/null || gw_fail "SIGPIPE killed the gateway: $(tail -3 "$T/gw.err")"
gw_ok "kill -PIPE: the gateway lives and serves on"

# a cfssl that resets the connection mid-request: the reload adding it is
# refused with the reason, and the gateway serves on
CF_PORT=8899
gw_bg gw_in python3 "$GW_SRC/tests/integ/cfssl_close.py" "$CF_PORT" "$T/cf-count"
gw_wait 100 test -s "$T/cf-count" || gw_fail "cfssl stand-in did not start"
cfg "[ { name: ca-1, type: builtin }, { name: ca-9, type: cfssl, conf: { url: \"http://127.0.0.1:$CF_PORT\", profile: issuer } } ]" ca-1
out=$("$C" ca rotate --socket "$S" 2>&1) && gw_fail "a cfssl that resets was accepted: $out"
grep -q "backend ca-9: cfssl http://127.0.0.1:$CF_PORT" <<<"$out" || gw_fail "cfssl reset: $out"
[ "$(cat "$T/cf-count")" -ge 1 ] || gw_fail "the gateway never reached the cfssl stand-in"
advance a
kill -0 "$GW_GW_PID" 2>/dev/null || gw_fail "the gateway died on a cfssl reset"
gw_ok "cfssl resetting mid-request: refused plainly ($(grep -o 'backend ca-9: .*' <<<"$out" | head -1)), gateway serving"

# step 1: add ca-2
cfg "$B12" ca-1
"$C" ca rotate --socket "$S" >/dev/null
gw_ok "step 1: ca-2 added"
root_of ca-2 >"$T/ca2.pem"
advance a

# step 2: enable ca-2 (retried while the rule says not every worker trusts it yet)
for _ in $(seq 50); do
	out=$("$C" ca rotate --socket "$S" --enable ca-2 2>&1) && break
	case "$out" in *enable-after-trust*) sleep 0.1 ;; *) gw_fail "step 2: $out" ;; esac
done
grep -q 'ca-2' <<<"$out" || gw_fail "step 2: $out"
out=$("$C" status --socket "$S" --json | js 'd["Identities"][0]["Backend"], d["Generation"] == d["LiveGeneration"]')
[ "$out" = "ca-2 True" ] || gw_fail "status after step 2: $out"
status step2
js 'all(w["Generation"] == d["Generation"] for w in d["Workers"]) and d["Generation"] > 1' \
	<"$T/status-step2.json" | grep -qx True ||
	gw_fail "a worker does not run generation $(js 'd["Generation"]' <"$T/status-step2.json"): $(cat "$T/status-step2.json")"
gw_ok "step 2: ca-2 enabled; the gateway serves an identity from ca-2 on every worker"
client b
load b ca2
advance a
advance b
finish a

# step 3: remove ca-1 (its client certificate is still valid: --force)
cfg "$B2" ca-2
gw_expect_fail "rotation rule remove-after-expiry" "$C" ca rotate --socket "$S"
"$C" ca rotate --socket "$S" --force >/dev/null
gw_ok "step 3: ca-1 removed"
advance b
finish b

out=$(gw_in python3 "$GW_SRC/tests/integ/ca_load.py" --once --server "$GW_GW_IP:$PORT" \
	--cert "$T/a.pem" --key "$T/a.key" --ca "$T/ca1.pem") && gw_fail "client from ca-1 accepted after step 3"
gw_ok "after step 3 a client from ca-1 alone is refused ($out)"
gw_in python3 "$GW_SRC/tests/integ/ca_load.py" --once --server "$GW_GW_IP:$PORT" \
	--cert "$T/b.pem" --key "$T/b.key" --ca "$T/ca2.pem" >/dev/null || gw_fail "client b refused"
gw_ok "a client from ca-2 still accepted"

# idle: the worker sleeps and polls, which is not work; its busy cycles stay
# nearly flat (well under half the elapsed time) and never go back
status idle0
sleep 1
status idle1
read -r b2 _ < <(busy idle0)
read -r b3 hz < <(busy idle1)
[ "$b2" -ge "$b1" ] && [ "$b3" -ge "$b2" ] || gw_fail "busy cycles went back: $b1, $b2, $b3"
[ $((b3 - b2)) -lt $((hz / 2)) ] || gw_fail "idle worker counted busy: $((b3 - b2)) cycles in 1 s at $hz Hz"
gw_ok "idle for 1 s: busy cycles +$((b3 - b2)) (of $hz per second)"
gw_stop_gateway
# the counters line at exit carries the same counter
tail -1 "$T/gw.out" | js "d['tsc_hz'] == $hz and d['per_worker'][0]['busy_cycles'] >= $b3" |
	grep -qx True || gw_fail "counters line: no per_worker busy_cycles >= $b3 / tsc_hz $hz"
gw_ok "counters line at exit: per_worker[0].busy_cycles and tsc_hz"
gw_done
