#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# mtlsgw as a systemd Type=notify service, against a fake service manager:
# an AF_UNIX datagram socket (NOTIFY_SOCKET) made here, read by a python3
# listener that logs every notification with its time. One echo listener
# on a tap port in our own namespace.
#  - READY=1 comes once the port is started and the listener answers (the
#    listener notes whether the tap was up when READY=1 arrived: DPDK's tap
#    sets it up when the port starts, the EAL made it down before; an echo
#    right after it works), with STATUS= naming listeners, workers and the
#    snapshot generation;
#  - SIGHUP and POST /v1/reload: RELOADING=1 then READY=1, STATUS says
#    "reloaded"; a refused reload too, STATUS says "reload refused (why)";
#  - WATCHDOG_USEC/WATCHDOG_PID: WATCHDOG=1 about every half interval;
#  - SIGTERM: STOPPING=1;
#  - with $1 = stall (a -Dtest_hooks=true build): GW_TEST_STALL_WORKER_AFTER
#    stalls worker 0, the pings stop and one warning names it, with the
#    journal's priority prefix since JOURNAL_STREAM names the gateway's stderr;
#    every line of stderr has one, DPDK's (the port's line) included.
. "$(dirname "$0")/../lib/common.sh"

STALL=${1:-}
S=$T/admin.sock

# the fake service manager: "<monotonic s> <line>" per line of each datagram
cat >"$T/notify.py" <<'PY'
import os, socket, sys, time
path, log, tap = sys.argv[1:4]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
print("listening", flush=True)
with open(log, "a", buffering=1) as f:
    while True:
        for line in s.recv(65536).decode().split("\n"):
            if line == "READY=1":  # is the port started yet (the tap PMD sets IFF_UP)?
                try:
                    with open("/sys/class/net/%s/flags" % tap) as fl:
                        line += " tap=" + ("up" if int(fl.read(), 16) & 1 else "down")
                except OSError:
                    line += " tap=none"
            f.write("%.3f %s\n" % (time.monotonic(), line))
PY
# WATCHDOG_PID must be the gateway's: ip netns exec and this script exec, so $$ is
cat >"$T/mtlsgw" <<EOF
#!/bin/sh
WATCHDOG_PID=\$\$ exec "$MTLSGW" "\$@"
EOF
chmod +x "$T/mtlsgw"

echo_l="  - name: echo
    address: $GW_GW_IP:7
    service: echo"
gw_gateway_config "$T/gw.yaml" "[1]" "$echo_l"
echo "admin: { socket: $S }" >>"$T/gw.yaml"
cp "$T/gw.yaml" "$T/good.yaml"

# start_sd LOG : the listener on $T/notify.sock in our namespace, then the
# gateway with NOTIFY_SOCKET and a 1 s watchdog (pings every 0.5 s)
start_sd() {
	[ -n "$GW_NS" ] || gw_netns
	rm -f "$T/notify.sock"
	: >"$1"
	gw_bg ip netns exec "$GW_NS" "$GW_PY" "$T/notify.py" "$T/notify.sock" "$1" "$GW_TAP" \
		>"$T/notify.out" 2>&1
	gw_wait 50 grep -q listening "$T/notify.out" || gw_fail "the notify listener did not start"
	NOTIFY_SOCKET=$T/notify.sock WATCHDOG_USEC=1000000 MTLSGW=$T/mtlsgw gw_start_gateway "$T/gw.yaml"
}
# count LOG PATTERN : lines of LOG matching PATTERN (extended regex)
count() { grep -cE "$2" "$1" || true; }
# wait_more LOG PATTERN N : wait (up to 10 s) until more than N lines match
wait_more() {
	local i
	for i in $(seq 100); do
		[ "$(count "$1" "$2")" -gt "$3" ] && return 0
		sleep 0.1
	done
	return 1
}
echo_ok() {
	gw_peer echo "$GW_GW_IP" 7 1000 1 >/dev/null
}

L=$T/notify.log
start_sd "$L"
wait_more "$L" "^[0-9.]+ READY=1" 0 || gw_fail "no READY=1 (log: $(cat "$L"))"
echo_ok || gw_fail "no echo right after READY=1"
[ "$(count "$L" "^[0-9.]+ READY=1")" = 1 ] && [ "$(count "$L" "^[0-9.]+ READY=1 tap=up$")" = 1 ] ||
	gw_fail "READY=1 before the port was up, or twice: $(cat "$L")"
gw_ok "READY=1 once, after the port started (tap up); the echo listener answers right after it"
grep -qE "^[0-9.]+ STATUS=1 listener\(s\), 1 worker\(s\), generation 1, [0-9]+ connection\(s\)$" "$L" ||
	gw_fail "no STATUS= with listeners, workers and generation: $(cat "$L")"
gw_ok "STATUS=$(grep -m1 -o 'STATUS=.*' "$L" | cut -d= -f2-)"
grep -q "^mtlsgw: gateway: info: systemd: watchdog every 0.5 s" "$T/gw.err" ||
	gw_fail "no watchdog line (or a priority prefix without the journal): $(cat "$T/gw.err")"

# --- the watchdog: about every 0.5 s while the worker loops
n=$(count "$L" "WATCHDOG=1")
sleep 2.5
m=$(count "$L" "WATCHDOG=1")
[ $((m - n)) -ge 3 ] && [ $((m - n)) -le 6 ] || gw_fail "$((m - n)) WATCHDOG=1 in 2.5 s, want 3..6"
gw_ok "WATCHDOG=1: $((m - n)) pings in 2.5 s (interval 1 s)"

# --- reloads: RELOADING=1, then READY=1 and a STATUS saying how it went
reload_seen() { # reload_seen WHAT STATUS_PATTERN : the last reload's notifications
	local r
	wait_more "$L" "STATUS=.*; $2" "$n_st" || gw_fail "$1: no STATUS '$2': $(cat "$L")"
	# from the last RELOADING=1 on: nothing else comes between (one thread sends all)
	r=$(sed -n "$(grep -n "RELOADING=1" "$L" | tail -1 | cut -d: -f1),\$p" "$L" | head -5 |
		cut -d' ' -f2- | paste -sd'|')
	echo "$r" | grep -qE "^RELOADING=1\|MONOTONIC_USEC=[0-9]+\|STATUS=reloading $T/gw.yaml\|READY=1 tap=up\|STATUS=.*; $2" ||
		gw_fail "$1: want RELOADING=1, then READY=1 and STATUS '$2'; got: $r"
}
n_st=$(count "$L" "STATUS=.*; reloaded$")
kill -HUP "$GW_GW_PID"
reload_seen SIGHUP "reloaded$"
grep -qE "STATUS=1 listener\(s\), 1 worker\(s\), generation 2, [0-9]+ connection\(s\); reloaded$" "$L" ||
	gw_fail "SIGHUP: no STATUS with generation 2: $(cat "$L")"
gw_ok "SIGHUP: RELOADING=1, then READY=1 and STATUS '... generation 2 ...; reloaded'"

n_st=$(count "$L" "STATUS=.*; reloaded$")
code=$(curl -sS --unix-socket "$S" -o "$T/api.out" -w '%{http_code}' -X POST -d '{}' http://x/v1/reload)
[ "$code" = 200 ] || gw_fail "POST /v1/reload answered $code: $(cat "$T/api.out")"
reload_seen "POST /v1/reload" "reloaded$"
grep -qE "STATUS=.*generation 3, .*; reloaded$" "$L" || gw_fail "API: no generation 3: $(cat "$L")"
gw_ok "POST /v1/reload: RELOADING=1, then READY=1 and STATUS '... generation 3 ...; reloaded'"

# adding a listener needs a restart: refused, and the service is ready again
gw_gateway_config "$T/gw.yaml" "[1]" "$echo_l
  - name: echo2
    address: $GW_GW_IP:8
    service: echo"
echo "admin: { socket: $S }" >>"$T/gw.yaml"
n_st=$(count "$L" "STATUS=.*; reload refused")
kill -HUP "$GW_GW_PID"
reload_seen "refused SIGHUP" "reload refused \(.*needs a restart\)$"
echo_ok || gw_fail "no echo after a refused reload"
gw_ok "refused SIGHUP: RELOADING=1, then READY=1 and STATUS '... reload refused (... needs a restart)'"
cp "$T/good.yaml" "$T/gw.yaml"

gw_stop_gateway
r=$(tail -2 "$L" | cut -d' ' -f2- | paste -sd'|')
[ "$r" = "STOPPING=1|STATUS=stopping" ] || gw_fail "SIGTERM: want STOPPING=1 last; got: $(tail -3 "$L")"
gw_ok "SIGTERM: STOPPING=1 last"

# --- a stalled worker: no more pings, one warning naming it (journal priorities)
if [ "$STALL" != stall ]; then
	echo "# the stall case needs a -Dtest_hooks=true build (tests/run.sh)"
	gw_done
	exit 0
fi
L=$T/notify-stall.log
: >"$T/gw.err"
JOURNAL_STREAM=$(stat -c '%d:%i' "$T/gw.err") GW_TEST_STALL_WORKER_AFTER=2.5 start_sd "$L"
w='^<4>mtlsgw: gateway: warning: watchdog: worker 0 \(lcore 1\) made no progress'
gw_wait 100 grep -qE "$w" "$T/gw.err" || gw_fail "no warning naming the stalled worker"
n=$(count "$L" "WATCHDOG=1")
[ "$n" -ge 2 ] || gw_fail "only $n WATCHDOG=1 before the stall"
sleep 2
m=$(count "$L" "WATCHDOG=1")
[ "$m" = "$n" ] || gw_fail "$((m - n)) WATCHDOG=1 after worker 0 stalled"
[ "$(grep -cE "$w" "$T/gw.err")" = 1 ] || gw_fail "the stall warning is not logged once"
gw_ok "worker 0 stalled: $n pings before, none in 2 s after; one warning: $(grep -E "$w" "$T/gw.err")"
grep -q "^<5>mtlsgw: running" "$T/gw.err" && grep -q "^<6>mtlsgw: gateway: info: systemd" "$T/gw.err" ||
	gw_fail "records without priorities on the journal stream: $(cat "$T/gw.err")"
# DPDK's lines too (the port's line is the dataplane's, through rte_log at
# NOTICE), and every line has one: nothing reaches the journal unranked
grep -q "^<5>mtlsgw: port '" "$T/gw.err" || gw_fail "the port's line (DPDK's log) without <5>: $(cat "$T/gw.err")"
bare=$(grep -cvE '^<[0-7]>' "$T/gw.err" || true)
[ "$bare" = 0 ] || gw_fail "$bare line(s) without a priority: $(grep -vE '^<[0-7]>' "$T/gw.err" | head -5)"
gw_ok "JOURNAL_STREAM is stderr: every line starts with its priority, DPDK's too (<4>/<5>/<6>)"
gw_stop_gateway
gw_done
