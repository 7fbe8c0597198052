# SPDX-License-Identifier: BSD-3-Clause
# What bench/memif_echo.sh and bench/memif_tls.sh share, sourced by both:
# a namespace and a work directory of their own, cleaned up on any exit,
# and one run's life cycle against a fresh gateway.
#
#   memif_setup NAME BUILD_DIR   $T, $ns (GW_BENCH_NS or gwbench$$), $b
#   memif_gw_yaml                the config's start: one worker (idle:
#                                adaptive), the memif port on $T/memif.sock
#                                (10.98.0.2/24), the echo listener on :7
#   memif_start_gw               mtlsgw in $ns, once it says "running"; $gw
#   memif_bench_start ARGS...    mtlsgw-bench-memif on lcore 2, --hold; $bench
#   memif_bench_wait WHAT        until its JSON line; $out is that line
#   memif_finish WHAT            stop the gateway (must exit 0), then the bench
#
# The memif connection is only ever torn down with both workers stopped:
# the bench holds it (--hold) after its run, the gateway is stopped first,
# then the bench. DPDK 22.11's memif PMD unmaps a connection's rings on its
# interrupt thread while a worker may still be inside rx/tx_burst on that
# port (see bench/bench_memif.c), which aborted an ASan gateway mid-run
# when the bench simply exited between runs. A gateway that dies of a
# signal leaves its core (when the core limit allows one) in
# /tmp/NAME.core.PID, named on stderr.

memif_setup() {
	me=$1
	b=$(cd "$2" && pwd)
	T=$(mktemp -d /tmp/gwbench.XXXXXX)
	ns="${GW_BENCH_NS:-gwbench$$}" # dp_bench.sh names it to watch it
	gw=""
	bench=""
	trap memif_cleanup EXIT
	trap 'exit 130' INT TERM
	ip netns add "$ns"
}

memif_gw_yaml() {
	cat <<EOC
dataplane:
  workers: [1]
  idle: adaptive
  no_huge: true
  memory_mb: 512
  file_prefix: gwbenchsrv
  ports:
    - name: link
      driver: memif
      device: $T/memif.sock
      address: 10.98.0.2/24
listeners:
  - name: echo
    address: 10.98.0.2:7
    service: echo
    backlog: 4096
EOC
}

memif_cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	# a failure explains itself: the gateway's own last words
	if [ "$rc" -ne 0 ] && [ -s "$T/gw.err" ]; then
		echo "$me: failed (exit $rc); the last 40 lines of mtlsgw's stderr:" >&2
		tail -n 40 "$T/gw.err" >&2
	fi
	[ -n "$gw" ] && kill -TERM "$gw" 2>/dev/null && wait "$gw" 2>/dev/null || true
	[ -n "$bench" ] && kill -TERM "$bench" 2>/dev/null && wait "$bench" 2>/dev/null || true
	ip netns pids "$ns" 2>/dev/null | xargs -r kill -KILL 2>/dev/null || true
	ip netns del "$ns" 2>/dev/null || true
	rm -rf "$T"
	exit "$rc"
}

memif_start_gw() {
	: >"$T/gw.err"
	# its working directory is $T: a core file lands there
	(cd "$T" && ulimit -c unlimited 2>/dev/null; exec ip netns exec "$ns" "$b/tools/mtlsgw" \
		--config "$T/gw.yaml") >"$T/gw.out" 2>>"$T/gw.err" &
	gw=$!
	# generous: an ASan gateway on a busy box takes a while
	for _ in $(seq 600); do
		grep -qs "mtlsgw: running" "$T/gw.err" && return 0
		kill -0 "$gw" 2>/dev/null || break
		sleep 0.1
	done
	echo "$me: mtlsgw did not start" >&2
	exit 1
}

memif_stop() { # memif_stop PID WHAT [LOG]: SIGTERM, wait, fail (showing LOG) unless it exits 0
	local rc=0 core
	kill -TERM "$1" 2>/dev/null || true
	wait "$1" || rc=$?
	[ "$rc" -eq 0 ] && return 0
	echo "$me: $2 exited $rc" >&2
	for core in "$T"/core*; do
		[ -f "$core" ] || continue
		mv "$core" "/tmp/${me%.sh}.core.$1"
		echo "$me: its core: /tmp/${me%.sh}.core.$1 (gdb $b/tools/mtlsgw ...)" >&2
	done
	[ -z "${3:-}" ] || cat "$3" >&2
	exit 1
}

memif_bench_start() {
	: >"$T/bench.out"
	# lcore 2 maps to the CPU the gateway's worker (lcore 1) does not use
	ip netns exec "$ns" "$b/bench/mtlsgw-bench-memif" --socket "$T/memif.sock" \
		--lcore 2 --seconds "$secs" --hold "$@" >"$T/bench.out" 2>"$T/bench.err" &
	bench=$!
}

memif_bench_wait() {
	while ! grep -qs '^{' "$T/bench.out"; do
		kill -0 "$bench" 2>/dev/null || { cat "$T/bench.err" >&2; bench=""; exit 1; }
		kill -0 "$gw" 2>/dev/null || { echo "$me: mtlsgw died during the run: $1" >&2; exit 1; }
		sleep 0.1
	done
	out=$(head -1 "$T/bench.out")
}

memif_finish() {
	# both workers stopped from here on: gateway first, then the bench
	memif_stop "$gw" "mtlsgw (after: $1)"
	gw=""
	memif_stop "$bench" "mtlsgw-bench-memif ($1)" "$T/bench.err"
	bench=""
}
