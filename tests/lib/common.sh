# SPDX-License-Identifier: BSD-3-Clause
# tests/lib/common.sh - sourced by every integration test script.
#
# Gives a test: a private temp dir ($T), a fresh SoftHSM2 token (gw_token),
# its own network namespace (gw_netns), and cleanup of all of them, plus any
# process it started (gw_bg), on every exit: success, failure, Ctrl-C or kill.
# On a failing exit it prints the tail of each log registered with gw_log
# (gw_start_gateway registers the gateway's stderr), so a failure explains
# itself without a rerun.
#
# Network rule: packets only ever flow inside a namespace the test made.

set -euo pipefail

: "${MTLSGW:?run through meson test (MTLSGW not set)}"
: "${MTLSGW_CTL:?}"
GW_SRC=${GW_SRC:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}

T=$(mktemp -d /tmp/gwtest.XXXXXX)
GW_NS=""
GW_CNS="" # the client namespace of gw_client_ns, if any
GW_PIDS=()
GW_CHECKS=0
GW_LOGS=() # logs whose tail gw_cleanup prints when the test fails
GW_CLEANUP_FNS=() # what gw_at_cleanup registered, run first by gw_cleanup

# gw_log FILE... : print FILE's tail if the test fails (a gateway's stderr)
gw_log() {
	local f g
	for f in "$@"; do
		for g in "${GW_LOGS[@]}"; do [ "$g" != "$f" ] || continue 2; done
		GW_LOGS+=("$f")
	done
}

# gw_at_cleanup FN : gw_cleanup calls FN on every exit, before it stops the
# gw_bg processes and deletes the namespaces, so what a helper library
# started (tests/lib/etcd.sh) goes with the test. FN must not fail the exit.
gw_at_cleanup() {
	local f
	for f in "${GW_CLEANUP_FNS[@]}"; do [ "$f" != "$1" ] || return 0; done
	GW_CLEANUP_FNS+=("$1")
}

gw_cleanup() {
	local rc=$? f
	trap - EXIT INT TERM
	for f in "${GW_CLEANUP_FNS[@]}"; do
		"$f" || true
	done
	for p in "${GW_PIDS[@]}"; do
		kill -TERM "$p" 2>/dev/null || true
	done
	for p in "${GW_PIDS[@]}"; do
		for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$p" 2>/dev/null || true
	done
	# after the stop: a gateway's last words (sanitizer reports) are in too
	if [ "$rc" -ne 0 ]; then
		for f in "${GW_LOGS[@]}"; do
			[ -s "$f" ] || continue
			echo "---- $(basename "$0") failed: the last 40 lines of $f ----" >&2
			tail -n 40 "$f" >&2
		done
	fi
	if [ -n "$GW_CNS" ]; then
		ip netns pids "$GW_CNS" 2>/dev/null | xargs -r kill -KILL 2>/dev/null || true
		ip netns del "$GW_CNS" 2>/dev/null || true
	fi
	if [ -n "$GW_NS" ]; then
		# anything still inside the namespace dies with it
		ip netns pids "$GW_NS" 2>/dev/null | xargs -r kill -KILL 2>/dev/null || true
		ip netns del "$GW_NS" 2>/dev/null || true
	fi
	if [ "${GW_KEEP:-0}" = 1 ]; then
		echo "kept $T" >&2
	else
		rm -rf "$T"
	fi
	exit "$rc"
}
trap gw_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

gw_fail() {
	echo "FAIL: $*" >&2
	exit 1
}

gw_ok() {
	GW_CHECKS=$((GW_CHECKS + 1))
	echo "ok $GW_CHECKS - $*"
}

# gw_expect_fail MSG_SUBSTRING CMD... : CMD must exit non-zero and say MSG.
gw_expect_fail() {
	local want=$1 out rc
	shift
	set +e
	out=$("$@" 2>&1)
	rc=$?
	set -e
	[ "$rc" -ne 0 ] || gw_fail "expected failure from: $* (got rc 0, output: $out)"
	case "$out" in
	*"$want"*) ;;
	*) gw_fail "expected '$want' from: $* ; got: $out" ;;
	esac
	gw_ok "fails as expected: $want"
}

# A fresh SoftHSM2 token in $T/softhsm: gw_token LABEL [PIN] [SOPIN]
# Sets SOFTHSM2_CONF and writes $T/pin, $T/sopin.
gw_token() {
	local label=$1 pin=${2:-1234} sopin=${3:-5678}
	mkdir -p "$T/softhsm/tokens"
	printf 'directories.tokendir = %s/softhsm/tokens\nobjectstore.backend = file\nlog.level = ERROR\n' \
		"$T" > "$T/softhsm/softhsm2.conf"
	export SOFTHSM2_CONF=$T/softhsm/softhsm2.conf
	printf '%s\n' "$pin" > "$T/pin"
	printf '%s\n' "$sopin" > "$T/sopin"
	chmod 600 "$T/pin" "$T/sopin"
	"$MTLSGW_CTL" hsm init --token "$label" --pin-file "$T/pin" --so-pin-file "$T/sopin" >/dev/null
}

# Our own namespace: gw_netns. Sets GW_NS; run things with gw_in CMD...
gw_netns() {
	GW_NS="gwt$$x$RANDOM"
	ip netns add "$GW_NS"
	ip -n "$GW_NS" link set lo up
}

gw_in() {
	ip netns exec "$GW_NS" "$@"
}

# gw_sclient TEXT ARGS... : openssl s_client ARGS in the namespace, sending
# the line TEXT; stdin stays open until TEXT comes back or s_client ends
# (an alert, a close; at most 20 s), never for a fixed time, so a slow
# handshake on a loaded machine is waited for. Prints s_client's output.
gw_sclient() {
	local text=$1 out
	shift
	out=$(mktemp "$T/sclient.XXXXXX")
	(
		printf '%s\n' "$text"
		for _ in $(seq 200); do
			grep -qF -- "$text" "$out" 2>/dev/null && break
			[ -e "$out.done" ] && break
			sleep 0.1
		done
	) | {
		gw_in timeout 20 openssl s_client "$@" >"$out" 2>&1 || true
		: >"$out.done"
	}
	cat "$out"
	rm -f "$out" "$out.done"
}

# Start a background process and have it cleaned up: gw_bg CMD... ; sets GW_LAST_PID
gw_bg() {
	"$@" &
	GW_LAST_PID=$!
	GW_PIDS+=("$GW_LAST_PID")
}

# Wait until CMD succeeds, up to N tenths of a second: gw_wait N CMD...
gw_wait() {
	local n=$1
	shift
	for _ in $(seq "$n"); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	return 1
}

# tests/lib/pp2_upstream.py in the namespace, in the background, once it
# listens: gw_pp2_upstream TAG HOST:PORT MODE [ARGS...]. Its JSON log (a
# line per connection) is $T/TAG.log, shown if the test fails.
gw_pp2_upstream() {
	local tag=$1 addr=$2 mode=$3
	shift 3
	gw_bg gw_in "$GW_PY" "$GW_SRC/tests/lib/pp2_upstream.py" --listen "$addr" \
		--ready-file "$T/$tag.ready" --mode "$mode" --log "$T/$tag.log" "$@"
	gw_log "$T/$tag.log"
	gw_wait 50 test -s "$T/$tag.ready" || gw_fail "upstream $tag ($mode on $addr) did not start"
}

gw_done() {
	echo "$(basename "$0"): $GW_CHECKS passed, 0 failed"
}

# ---- mtlsgw on a tap port in our namespace (dataplane tests, demo) ----
# The gateway is 10.99.0.2 on tap mtlsgw0; the kernel side of the tap is
# 10.99.0.1. Both exist only inside $GW_NS.
GW_PY=${GW_PY:-/usr/bin/python3} # Debian's python3: the one with scapy
GW_TAP=mtlsgw0
GW_PEER_IP=10.99.0.1
GW_GW_IP=10.99.0.2
GW_GW_PID=""

# gw_gateway_config FILE WORKERS LISTENERS : write a one-tap-port config.
# WORKERS is a YAML list ("[1]", "[1, 2]"); LISTENERS is YAML list items.
# GW_MEMORY_MB, GW_DRIVER, GW_DEVICE (default tap on $GW_TAP) and GW_IDLE
# (dataplane.idle; unset: the default, adaptive) override.
gw_gateway_config() {
	local file=$1 workers=$2 listeners=$3
	cat >"$file" <<EOC
dataplane:
  workers: $workers
  no_huge: true
  memory_mb: ${GW_MEMORY_MB:-384}
  ports:
    - name: wan
      driver: ${GW_DRIVER:-tap}
      device: ${GW_DEVICE:-$GW_TAP}
      address: $GW_GW_IP/24
      gateway: $GW_PEER_IP
listeners:
$listeners
EOC
	# only when asked: the lines of the usual config stay where tests expect them
	[ -z "${GW_IDLE:-}" ] || sed -i "/^dataplane:/a\\
  idle: $GW_IDLE" "$file"
}

# gw_start_gateway CONFIG : start mtlsgw in our namespace (made if needed),
# wait until it runs, give the kernel side of its tap $GW_PEER_IP/24 (unless
# the config's peer_address had mtlsgw do that).
# Output goes to $T/gw.out (counters, JSON) and $T/gw.err (messages).
gw_start_gateway() {
	local cfg=$1
	[ -n "$GW_NS" ] || gw_netns
	# no IPv6 chatter on the tap: the tests count what the gateway drops
	gw_in sysctl -qw net.ipv6.conf.all.disable_ipv6=1
	gw_in sysctl -qw net.ipv6.conf.default.disable_ipv6=1
	: >"$T/gw.out"
	: >"$T/gw.err"
	gw_log "$T/gw.err"
	gw_bg ip netns exec "$GW_NS" "$MTLSGW" --config "$cfg" >>"$T/gw.out" 2>>"$T/gw.err"
	GW_GW_PID=$GW_LAST_PID
	for _ in $(seq 300); do
		grep -q "mtlsgw: running" "$T/gw.err" && break
		kill -0 "$GW_GW_PID" 2>/dev/null || { cat "$T/gw.err" >&2; gw_fail "mtlsgw exited at start"; }
		sleep 0.1
	done
	grep -q "mtlsgw: running" "$T/gw.err" || { cat "$T/gw.err" >&2; gw_fail "mtlsgw did not start"; }
	# a port with peer_address: mtlsgw addressed its tap itself
	grep -q "peer_address:" "$cfg" && return 0
	gw_in ip addr add "$GW_PEER_IP/24" dev "$GW_TAP"
	gw_in ip link set "$GW_TAP" up
}

# gw_stop_gateway : SIGTERM, wait; fails unless it exits 0 and its tap is gone.
gw_stop_gateway() {
	local rc=0
	kill -TERM "$GW_GW_PID"
	wait "$GW_GW_PID" || rc=$?
	[ "$rc" -eq 0 ] || { cat "$T/gw.err" >&2; gw_fail "mtlsgw exited $rc on SIGTERM"; }
	! gw_in ip link show "$GW_TAP" >/dev/null 2>&1 || gw_fail "tap $GW_TAP still there after stop"
	GW_GW_PID=""
}

# gw_stat NAME... : current value of counters (net, tcp, conns by state, or
# top-level like mbufs_in_use),
# one per line, from the JSON line mtlsgw prints on SIGUSR1 (to $T/gw.out,
# or GW_STAT_OUT).
gw_stat() {
	local n out=${GW_STAT_OUT:-$T/gw.out}
	n=$(wc -l <"$out") || gw_fail "gw_stat: no $out"
	kill -USR1 "$GW_GW_PID" 2>/dev/null || gw_fail "gw_stat: the gateway is not running"
	for _ in $(seq 100); do
		[ "$(wc -l <"$out")" -gt "$n" ] && break
		sleep 0.05
	done
	tail -1 "$out" | "$GW_PY" -c '
import json, sys
d = json.loads(sys.stdin.read())
for k in sys.argv[1:]:
    print(next(v[k] for v in (d["net"], d["tcp"], d["conns"], d.get("tls", {}), d) if k in v))' "$@"
}

# gw_peer ARGS... : tests/integ/dp_peer.py inside our namespace
gw_peer() {
	gw_in "$GW_PY" "$GW_SRC/tests/integ/dp_peer.py" "$@"
}

# gw_wait_stat NAME MIN : wait (up to 5 s) until counter NAME >= MIN, print
# its value; workers publish TCP counters every 10 ms, so a check right after
# an event may otherwise read the previous copy. Returns 1 if it never got there.
gw_wait_stat() {
	local v
	for _ in $(seq 50); do
		v=$(gw_stat "$1")
		[ "$v" -ge "$2" ] && { echo "$v"; return 0; }
		sleep 0.1
	done
	echo "$v"
	return 1
}

# gw_scapy_quiet : scapy plays TCP from ports 40000-49999, where the kernel
# has no socket and would answer the gateway's segments with RST: drop those
# RSTs, and keep the kernel's own clients on 50000+.
gw_scapy_quiet() {
	gw_in sysctl -qw net.ipv4.ip_local_port_range="50000 60999"
	gw_in nft -f - <<NFT
table inet gwquiet {
	chain out {
		type filter hook output priority 0;
		oifname "$GW_TAP" tcp sport 40000-49999 tcp flags rst drop;
	}
}
NFT
}

# gw_veth : in $GW_NS (gw_netns first), veth0 for a DPDK driver (af_packet,
# af_xdp) and veth1, the kernel peer at $GW_PEER_IP/24. IPv6 off (no
# chatter); veth1's TX checksums filled (gw_tx_csum_off).
gw_veth() {
	gw_in sysctl -qw net.ipv6.conf.all.disable_ipv6=1
	gw_in sysctl -qw net.ipv6.conf.default.disable_ipv6=1
	gw_in ip link add veth0 type veth peer name veth1
	gw_in ip link set veth0 up
	gw_in ip link set veth1 up
	gw_in ip addr add "$GW_PEER_IP/24" dev veth1
	gw_tx_csum_off veth1
}

# gw_tx_csum_off IFACE : have the kernel fill TX checksums on IFACE (in our
# namespace). A veth normally leaves them to the receiving kernel, which a
# DPDK af_packet/af_xdp peer is not. ethtool if present, else its ioctl.
gw_tx_csum_off() {
	if command -v ethtool >/dev/null; then
		gw_in ethtool -K "$1" tx off >/dev/null
		return
	fi
	gw_in "$GW_PY" - "$1" <<'PY'
import array, fcntl, socket, struct, sys
val = array.array("I", [0x17, 0])  # ETHTOOL_STXCSUM, off
ifr = struct.pack("16sP", sys.argv[1].encode(), val.buffer_info()[0])
sock = socket.socket()
fcntl.ioctl(sock.fileno(), 0x8946, ifr)  # SIOCETHTOOL
PY
}

# ---- a kernel client one routed hop away (real loss in both directions) ----
# A drop on the kernel's own output path (output/postrouting, even netdev
# egress) is no loss for the kernel's TCP: it sees the local drop and sends
# the segment again itself, so the gateway never sees a hole. Only a drop on
# a routed (forward) path is lost both ways. gw_client_ns makes namespace
# $GW_CNS (deleted by gw_cleanup) with 10.98.0.2/24 on a veth whose other end
# is 10.98.0.1/24 in $GW_NS; $GW_NS forwards between the veth and the tap,
# the gateway reaches 10.98.0.0/24 through its port's `gateway:` ($GW_PEER_IP).
# Call after gw_start_gateway. Run clients with gw_cin CMD...
GW_CLIENT_IP=10.98.0.2
GW_ROUTER_IP=10.98.0.1
gw_client_ns() {
	[ -n "$GW_NS" ] || gw_fail "gw_client_ns: no gateway namespace yet"
	GW_CNS="${GW_NS}c"
	ip netns add "$GW_CNS"
	ip -n "$GW_CNS" link set lo up
	ip netns exec "$GW_CNS" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
	ip netns exec "$GW_CNS" sysctl -qw net.ipv6.conf.default.disable_ipv6=1
	gw_in ip link add gwr0 type veth peer name gwc0 netns "$GW_CNS"
	gw_in ip addr add "$GW_ROUTER_IP/24" dev gwr0
	gw_in ip link set gwr0 up
	ip -n "$GW_CNS" addr add "$GW_CLIENT_IP/24" dev gwc0
	ip -n "$GW_CNS" link set gwc0 up
	ip -n "$GW_CNS" route add "${GW_GW_IP%.*}.0/24" via "$GW_ROUTER_IP"
	gw_in sysctl -qw net.ipv4.ip_forward=1
	# full-size segments, not 64 KiB GSO skbs, cross the forward hook (one
	# drop = one segment), and the tap gets finished checksums
	(
		GW_NS=$GW_CNS
		gw_tx_csum_off gwc0
	)
}

gw_cin() {
	ip netns exec "$GW_CNS" "$@"
}

# gw_fwd_loss PCT : drop PCT% of the packets $GW_NS forwards, each direction
# counted on its own (gw_fwd_loss_count c2g|g2c). gw_fwd_loss_off removes it.
gw_fwd_loss() {
	gw_in nft -f - <<NFT
table inet gwfwdloss {
	counter c2g {}
	counter g2c {}
	chain lossy {
		type filter hook forward priority 0;
		iifname "gwr0" oifname "$GW_TAP" numgen random mod 100 < $1 counter name c2g drop;
		iifname "$GW_TAP" oifname "gwr0" numgen random mod 100 < $1 counter name g2c drop;
	}
}
NFT
}

gw_fwd_loss_count() {
	gw_in nft list counter inet gwfwdloss "$1" | grep -o 'packets [0-9]*' | awk '{print $2}'
}

gw_fwd_loss_off() {
	gw_in nft delete table inet gwfwdloss
}

# gw_fwd_loss_start PCT : note the gateway's rx_ooo and tx_rtx_bytes, then
# gw_fwd_loss PCT. After the traffic, gw_fwd_loss_check: each direction must
# have lost packets, and the gateway must have seen the holes in what the
# kernel sent (queued out of order) and sent its own segments again. It
# fails the test otherwise, else sets GW_LOSS_SUMMARY ("dropped ...
# retransmitted N bytes") for the caller's gw_ok line.
gw_fwd_loss_start() {
	read -r GW_LOSS_OOO0 GW_LOSS_RTX0 < <(gw_stat rx_ooo tx_rtx_bytes | paste -sd' ')
	gw_fwd_loss "$1"
}

gw_fwd_loss_check() {
	local c2g g2c ooo rtx
	c2g=$(gw_fwd_loss_count c2g)
	g2c=$(gw_fwd_loss_count g2c)
	[ "$c2g" -gt 0 ] || gw_fail "nftables dropped nothing client->gateway: that direction was not lossy"
	[ "$g2c" -gt 0 ] || gw_fail "nftables dropped nothing gateway->client: that direction was not lossy"
	ooo=$(gw_wait_stat rx_ooo $((GW_LOSS_OOO0 + 1))) ||
		gw_fail "rx_ooo $GW_LOSS_OOO0 -> $ooo after $c2g client->gateway drops: the gateway saw no hole"
	rtx=$(gw_wait_stat tx_rtx_bytes $((GW_LOSS_RTX0 + 1))) ||
		gw_fail "tx_rtx_bytes $GW_LOSS_RTX0 -> $rtx after $g2c gateway->client drops: nothing retransmitted"
	GW_LOSS_SUMMARY="dropped $c2g client->gateway, $g2c gateway->client; gateway queued"
	GW_LOSS_SUMMARY+=" $((ooo - GW_LOSS_OOO0)) out of order, retransmitted $((rtx - GW_LOSS_RTX0)) bytes"
}
