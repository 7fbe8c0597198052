# SPDX-License-Identifier: BSD-3-Clause
# tests/lib/etcd.sh - an etcd cluster for an integration test (the fleet,
# control/cluster.h). Source it after common.sh.
#
# gw_etcd_cluster_start NS DIR N BASEPORT starts members e1..eN of a new
# cluster (Debian's etcd 3.4) in the network namespace NS, which the test
# made (gw_netns): member I listens on 127.0.0.1 only, for clients on port
# BASEPORT+2(I-1) and for its peers on BASEPORT+2(I-1)+1, keeps its data in
# DIR/eI and logs to DIR/eI.log. Then members can be killed, restarted,
# all stopped and all started again, and the raft leader asked for.
#
# Cleanup: gw_cleanup (common.sh) kills every member on any exit
# (gw_at_cleanup). Each member also runs under `setpriv --pdeathsig KILL`,
# its parent being the test's shell, so it dies with the test even when the
# test is killed with SIGKILL and no trap runs. Start members from the
# test's own shell therefore, never from a $(...) or a pipeline, whose
# subshell would take them along when it ends.
#
# Light members: 16 MiB backend quota, heartbeat 100 ms and election
# timeout 1 s (a new leader within about two seconds of the old one's
# death).

: "${GW_NS?source tests/lib/common.sh first}"

GW_ETCD=${GW_ETCD:-/usr/bin/etcd}
GW_ETCDCTL=${GW_ETCDCTL:-/usr/bin/etcdctl}
GW_ETCD_WAIT=${GW_ETCD_WAIT:-20} # seconds for members to become healthy
GW_ETCD_NS=""
GW_ETCD_DIR=""
GW_ETCD_N=0
GW_ETCD_BASEPORT=0
GW_ETCD_TOKEN=""
GW_ETCD_CLUSTER="" # --initial-cluster: e1=http://127.0.0.1:PEER,...
GW_ETCD_PIDS=()    # [I] the PID of member eI, "" while it is down
export GW_ETCD_ENDPOINTS="" # http://127.0.0.1:PORT,... in member order

# gw_etcd_endpoint I : member eI's client URL
gw_etcd_endpoint() {
	echo "http://127.0.0.1:$((GW_ETCD_BASEPORT + 2 * ($1 - 1)))"
}

# gw_etcdctl ARGS... : etcdctl in the cluster's namespace, on every member's
# endpoint (the client fails over to a live one)
gw_etcdctl() {
	ip netns exec "$GW_ETCD_NS" env ETCDCTL_API=3 "$GW_ETCDCTL" \
		--endpoints="$GW_ETCD_ENDPOINTS" --dial-timeout=1s --command-timeout=3s "$@"
}

# _gw_etcd_member I STATE : start member eI (--initial-cluster-state STATE)
_gw_etcd_member() {
	local i=$1 state=$2 port=$((GW_ETCD_BASEPORT + 2 * ($1 - 1)))
	ip netns exec "$GW_ETCD_NS" setpriv --pdeathsig KILL -- "$GW_ETCD" \
		--name "e$i" --data-dir "$GW_ETCD_DIR/e$i" \
		--listen-client-urls "http://127.0.0.1:$port" \
		--advertise-client-urls "http://127.0.0.1:$port" \
		--listen-peer-urls "http://127.0.0.1:$((port + 1))" \
		--initial-advertise-peer-urls "http://127.0.0.1:$((port + 1))" \
		--initial-cluster "$GW_ETCD_CLUSTER" --initial-cluster-state "$state" \
		--initial-cluster-token "$GW_ETCD_TOKEN" \
		--heartbeat-interval 100 --election-timeout 1000 \
		--quota-backend-bytes $((16 << 20)) --snapshot-count 1000 \
		--logger zap --log-outputs stderr >>"$GW_ETCD_DIR/e$i.log" 2>&1 &
	GW_ETCD_PIDS[i]=$!
}

# gw_etcd_wait_healthy [I...] : wait until members I (default: all) answer
# `etcdctl endpoint health` (a read through raft: quorum needed), at most
# GW_ETCD_WAIT seconds; else fail the test with etcdctl's answer and the
# last lines of those members' logs.
gw_etcd_wait_healthy() {
	local eps="" i out="" n
	[ "$#" -gt 0 ] || set -- $(seq "$GW_ETCD_N")
	for i in "$@"; do eps+="${eps:+,}$(gw_etcd_endpoint "$i")"; done
	for n in $(seq $((GW_ETCD_WAIT * 5))); do
		out=$(ip netns exec "$GW_ETCD_NS" env ETCDCTL_API=3 "$GW_ETCDCTL" --endpoints="$eps" \
			--dial-timeout=1s --command-timeout=2s endpoint health 2>&1) && return 0
		# a member that exited will not come up: no need to wait out the rest
		for i in "$@"; do
			[ -z "${GW_ETCD_PIDS[i]:-}" ] || kill -0 "${GW_ETCD_PIDS[i]}" 2>/dev/null || {
				n=fail
				break 2
			}
		done
		sleep 0.2
	done
	{
		if [ "$n" = fail ]; then
			echo "etcd member e$i exited while waiting for e${*// /, e} to be healthy"
		else
			echo "etcd members e${*// /, e} not healthy after $GW_ETCD_WAIT s; etcdctl endpoint health:"
		fi
		echo "$out" | tail -n 6
		for i in "$@"; do
			echo "---- the last 15 lines of $GW_ETCD_DIR/e$i.log ----"
			tail -n 15 "$GW_ETCD_DIR/e$i.log" 2>/dev/null || echo "(no log)"
		done
	} >&2
	gw_fail "etcd members e${*// /, e} not healthy (their logs above)"
}

# gw_etcd_cluster_start NS DIR N BASEPORT : start a new N-member cluster (see
# the top) and wait until every member is healthy. Sets GW_ETCD_ENDPOINTS.
gw_etcd_cluster_start() {
	local i
	[ "$#" -eq 4 ] || gw_fail "usage: gw_etcd_cluster_start NS DIR N BASEPORT"
	[ -z "$GW_ETCD_NS" ] || gw_fail "gw_etcd_cluster_start: a cluster is running already"
	GW_ETCD_NS=$1
	GW_ETCD_DIR=$2
	GW_ETCD_N=$3
	GW_ETCD_BASEPORT=$4
	GW_ETCD_TOKEN="gwt-$$-$RANDOM$RANDOM-$(date +%s%N)"
	GW_ETCD_CLUSTER=""
	GW_ETCD_ENDPOINTS=""
	mkdir -p "$GW_ETCD_DIR"
	gw_at_cleanup gw_etcd_cleanup
	for i in $(seq "$GW_ETCD_N"); do
		GW_ETCD_CLUSTER+="${GW_ETCD_CLUSTER:+,}e$i=http://127.0.0.1:$((GW_ETCD_BASEPORT + 2 * (i - 1) + 1))"
		GW_ETCD_ENDPOINTS+="${GW_ETCD_ENDPOINTS:+,}$(gw_etcd_endpoint "$i")"
	done
	for i in $(seq "$GW_ETCD_N"); do
		_gw_etcd_member "$i" new
	done
	gw_etcd_wait_healthy
}

# gw_etcd_leader : print I of the member eI that is the raft leader (it says
# so itself: member_id == leader in its endpoint status); 1 if no running
# member is (an election is going on, or no quorum).
gw_etcd_leader() {
	local i
	for i in $(seq "$GW_ETCD_N"); do
		[ -n "${GW_ETCD_PIDS[i]:-}" ] || continue
		ip netns exec "$GW_ETCD_NS" env ETCDCTL_API=3 "$GW_ETCDCTL" \
			--endpoints="$(gw_etcd_endpoint "$i")" --dial-timeout=1s --command-timeout=1s \
			endpoint status -w json 2>/dev/null | "$GW_PY" -c '
import json, sys
s = json.load(sys.stdin)[0]["Status"]
sys.exit(0 if s["header"]["member_id"] == s["leader"] else 1)' 2>/dev/null || continue
		echo "$i"
		return 0
	done
	return 1
}

# gw_etcd_wait_leader [SECONDS] : wait (default 10 s) for gw_etcd_leader, print it
gw_etcd_wait_leader() {
	local l
	for _ in $(seq $((${1:-10} * 10))); do
		l=$(gw_etcd_leader) && { echo "$l"; return 0; }
		sleep 0.1
	done
	return 1
}

# _gw_etcd_reap I : wait for member eI to end, SIGKILL after 5 s; marks it down
_gw_etcd_reap() {
	local pid=${GW_ETCD_PIDS[$1]:-}
	[ -n "$pid" ] || return 0
	for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	GW_ETCD_PIDS[$1]=""
}

# gw_etcd_kill I : SIGKILL member eI (a crash) and wait until it is gone
gw_etcd_kill() {
	[ -n "${GW_ETCD_PIDS[$1]:-}" ] || gw_fail "gw_etcd_kill $1: member e$1 is not running"
	# stderr: not bash's "Killed" line for the job
	{
		kill -KILL "${GW_ETCD_PIDS[$1]}"
		_gw_etcd_reap "$1"
	} 2>/dev/null || true
}

# gw_etcd_restart I : start member eI again on its data dir and wait until it
# is healthy (needs a quorum with it)
gw_etcd_restart() {
	[ -z "${GW_ETCD_PIDS[$1]:-}" ] || gw_fail "gw_etcd_restart $1: member e$1 is running"
	_gw_etcd_reap "$1"
	_gw_etcd_member "$1" existing
	gw_etcd_wait_healthy "$1"
}

# gw_etcd_stop_all [SIG] : all of etcd down: signal SIG (default KILL, a
# crash; TERM for a clean stop, where the leader first tries to hand over
# and may take seconds) to every member, and wait until each is gone
# (SIGKILL after 5 s)
gw_etcd_stop_all() {
	local i sig=${1:-KILL}
	{
		for i in $(seq "$GW_ETCD_N"); do
			[ -z "${GW_ETCD_PIDS[i]:-}" ] || kill -"$sig" "${GW_ETCD_PIDS[i]}" || true
		done
		for i in $(seq "$GW_ETCD_N"); do _gw_etcd_reap "$i"; done
	} 2>/dev/null
}

# gw_etcd_start_all : start every member that is down, on its data dir, and
# wait until all are healthy
gw_etcd_start_all() {
	local i
	for i in $(seq "$GW_ETCD_N"); do
		[ -n "${GW_ETCD_PIDS[i]:-}" ] || _gw_etcd_member "$i" existing
	done
	gw_etcd_wait_healthy
}

# gw_etcd_cleanup : (gw_cleanup) SIGKILL every member and reap it; the data
# dirs go with $T
gw_etcd_cleanup() {
	local i
	for i in $(seq "$GW_ETCD_N"); do
		[ -z "${GW_ETCD_PIDS[i]:-}" ] || kill -KILL "${GW_ETCD_PIDS[i]}" 2>/dev/null || true
	done
	for i in $(seq "$GW_ETCD_N"); do
		[ -z "${GW_ETCD_PIDS[i]:-}" ] || wait "${GW_ETCD_PIDS[i]}" 2>/dev/null || true
		GW_ETCD_PIDS[i]=""
	done
}
