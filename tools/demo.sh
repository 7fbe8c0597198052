#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# tools/demo.sh - the quick start: mutual TLS through the real gateway.
#
# Installs what is missing, builds into build/, makes a fresh SoftHSM token
# with the server key generated inside it, the demo PKI, and a network
# namespace in which mtlsgw runs on a DPDK tap port (--no-huge, one worker)
# in front of a small upstream that answers with the client identity it was
# given in the PROXY v2 header. Then curl with a client certificate through
# the gateway, two clients refused, `mtlsgw-ctl trust check` saying why, and
# the gateway's counters. Everything it makes lives under ./demo (or
# $GW_DEMO_DIR) and in the namespace; no packet leaves the namespace.
#
#   bash tools/demo.sh          run it, then stop and clean up
#   bash tools/demo.sh --keep   leave it running (also GW_DEMO_KEEP=1) and say how to try it
#   bash tools/demo.sh --stop   stop a kept demo: gateway, upstream, namespace
#
# GW_DEMO_NS names the namespace [mtlsgw-demo]. PINs are random and live only
# in files (mode 600): never on a command line, never printed.
set -euo pipefail
orig=$(pwd)
cd "$(dirname "$0")/.."
src=$(pwd)

keep=${GW_DEMO_KEEP:-0}
stop=0
for a in "$@"; do
	case $a in
	--keep) keep=1 ;;
	--stop) stop=1 ;;
	-h | --help)
		sed -n '3,19p' "$0" | sed 's/^# \{0,1\}//'
		exit 0
		;;
	*)
		echo "demo: unknown option '$a' (try --keep, --stop or --help)" >&2
		exit 2
		;;
	esac
done

if [ "$(id -u)" -ne 0 ]; then
	echo "demo: run it as root (it makes a network namespace and a tap port)" >&2
	exit 1
fi

dir=${GW_DEMO_DIR:-$src/demo}
ns=${GW_DEMO_NS:-mtlsgw-demo}
build=${GW_DEMO_BUILD:-build} # the README's build dir; another only to try changes
py=/usr/bin/python3           # Debian's python3 (the upstream needs nothing else)
gw_ip=10.99.0.2               # the gateway's tap port, inside $ns
peer_ip=10.99.0.1             # the kernel side of the tap: curl and the upstream
host=gw.demo.test             # the server certificate's name; curl resolves it to $gw_ip
state=$dir/demo.state         # a kept demo: namespace and process ids, for --stop

# A path as the user can type it where they ran us: relative when that was
# the source tree and the path is inside it (shorter lines), else absolute.
rel() {
	case $orig:$1 in "$src:$src"/*) echo "${1#"$src"/}" ;; *) echo "$1" ;; esac
}

# One line per counter group from the gateway's last JSON counters line.
print_counters() { # print_counters GW_OUT
	"$py" - "$1" <<'PY'
import json, sys
lines = [l for l in open(sys.argv[1]).read().splitlines() if l.startswith("{")]
if not lines:
    sys.exit("  (no counters line from the gateway)")
d = json.loads(lines[-1])
n, t, s = d["net"], d["tcp"], d.get("tls", {})
print("  tls: handshakes completed %d (%d full, %d resumed), failed %d (%d without a client "
      "certificate, %d certificate rejected)" % (s.get("hs_ok", 0), s.get("hs_full", 0),
      s.get("hs_resumed", 0), s.get("hs_fail", 0), s.get("hs_fail_no_cert", 0),
      s.get("hs_fail_verify", 0)))
rej = ", ".join("%s %d" % (k[7:], v) for k, v in sorted(s.items()) if k.startswith("reject_") and v)
if rej:
    print("  tls rejections by reason: " + rej)
print("  tls: %d plaintext bytes from clients, %d to clients; %d close_notify received" %
      (s.get("rx_bytes", 0), s.get("tx_bytes", 0), s.get("close_notify_rx", 0)))
print("  net: %d packets in, %d out; tcp: %d connections accepted" %
      (n["rx_pkts"], n["tx_pkts"], t["conn_accepted"]))
PY
}

alive() { # alive PID : running (a zombie is not)
	local st
	st=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
	[ "${st#Z}" = "$st" ]
}
ns_exists() { ip netns list | awk -v n="$1" '$1 == n { f = 1 } END { exit !f }'; }

# Stop what a run made: the gateway first (SIGTERM: it prints its counters
# and closes its tap), then the upstream, anything else left in the
# namespace, the namespace. Works for our own children and for the
# processes of a kept demo (not our children).
stop_all() { # stop_all NS [GW_PID [UPSTREAM_PID]]
	local n=$1 pid
	shift
	for pid in "$@"; do
		if [ -z "$pid" ] || ! alive "$pid"; then continue; fi
		kill -TERM "$pid" 2>/dev/null || true
		for _ in $(seq 100); do alive "$pid" || break; sleep 0.1; done
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true # our child: reap it quietly
	done
	if ns_exists "$n"; then
		ip netns pids "$n" 2>/dev/null | xargs -r kill -KILL 2>/dev/null || true
		ip netns del "$n" 2>/dev/null || true
	fi
}

if [ "$stop" = 1 ]; then
	if [ ! -f "$state" ]; then
		echo "demo: no kept demo ($(rel "$state") not found)" >&2
		ns_exists "$ns" && echo "demo: but namespace $ns exists: ip netns del $ns" >&2
		exit 1
	fi
	# shellcheck disable=SC1090 # written by this script: ns=, gwpid=, uppid=
	. "$state"
	stop_all "$ns" "$gwpid" "$uppid"
	echo "== the kept demo stopped; the gateway's counters:"
	print_counters "$dir/gw.out" || true # a gateway killed outright left none
	rm -f "$state"
	echo "== cleaned up: gateway stopped, tap gone, namespace $ns deleted"
	exit 0
fi

echo "== build: packages (tools/deps.sh), meson + ninja into $build/"
bash tools/deps.sh
[ -f "$build/build.ninja" ] || meson setup "$build" >/dev/null
ninja -C "$build" >/dev/null
gw=$src/$build/tools/mtlsgw
ctl=$src/$build/tools/mtlsgw-ctl

# A demo kept from before holds the namespace: stop it first.
if [ -f "$state" ]; then
	echo "== stopping the demo kept from before"
	# shellcheck disable=SC1090
	(. "$state" && stop_all "$ns" "$gwpid" "$uppid")
	rm -f "$state"
fi
if ns_exists "$ns"; then
	echo "demo: network namespace $ns exists and is not a kept demo of $(rel "$dir");" \
		"delete it (ip netns del $ns) or set GW_DEMO_NS" >&2
	exit 1
fi

rm -rf "$dir"
mkdir -p "$dir/softhsm/tokens" "$dir/state"
umask 077
printf 'directories.tokendir = %s/softhsm/tokens\nobjectstore.backend = file\nlog.level = ERROR\n' \
	"$dir" >"$dir/softhsm/softhsm2.conf"
export SOFTHSM2_CONF=$dir/softhsm/softhsm2.conf
# Random PINs without a newline (libp11 reads a PIN file verbatim).
od -An -N12 -tx1 /dev/urandom | tr -d ' \n' >"$dir/pin"
od -An -N12 -tx1 /dev/urandom | tr -d ' \n' >"$dir/sopin"

echo
echo "== a fresh SoftHSM token 'gw' ($(rel "$dir")/softhsm); the server key is generated inside it"
"$ctl" hsm init --token gw --pin-file "$dir/pin" --so-pin-file "$dir/sopin" >/dev/null
key=$("$ctl" hsm keygen --token gw --pin-file "$dir/pin" --label server --type ec-p256)
echo "  server key: $key (sign-only, not extractable)"

echo
echo "== the demo PKI in $(rel "$dir")/pki: root -> intermediate -> server cert (HSM key) + client"
"$ctl" pki demo --dir "$dir/pki" --token gw --pin-file "$dir/pin" --key "$key" \
	--server-san "DNS:$host,IP:$gw_ip" >/dev/null
for c in server client other-client; do
	printf '  %-18s %s\n' "$c.pem:" "$(openssl x509 -in "$dir/pki/$c.pem" -noout -ext subjectAltName |
		sed -n '2s/^ *//p')"
done
echo "  (other-client is issued by a second intermediate under the same root)"

cat >"$dir/gw.yaml" <<EOC
# written by tools/demo.sh
dataplane:
  workers: [1]
  no_huge: true
  memory_mb: 256
  ports:
    - name: wan
      driver: tap
      device: mtlsgw0
      address: $gw_ip/24
      gateway: $peer_ip
      peer_address: $peer_ip/24   # mtlsgw addresses the kernel side of its tap
listeners:
  - name: api
    address: $gw_ip:443
    service: tls-proxy
    tls:
      min_version: "1.2"
      identity:
        - cert: pki/server.chain.pem
          key: "$key"
          sni: [$host]
      client_auth: required
    trust:
      mode: ca
      certs: [pki/intermediate.pem]   # clients of this intermediate only
    upstream:
      servers: [$peer_ip:8080]
      proxy_protocol: v2
hsm:
  pin_file: pin
state_dir: state
EOC

gwpid=""
uppid=""
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	case $rc in
	0) ;;
	130 | 143) echo "demo: interrupted; cleaning up" >&2 ;;
	*)
		echo "demo: failed (exit $rc); the gateway said:" >&2
		sed 's/^/  /' "$dir/gw.err" >&2 2>/dev/null || true
		;;
	esac
	stop_all "$ns" "$gwpid" "$uppid"
	rm -f "$state"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

echo
echo "== mtlsgw in network namespace $ns: DPDK tap port mtlsgw0 = $gw_ip, one worker, --no-huge"
echo "  listener api $gw_ip:443, tls-proxy -> upstream $peer_ip:8080 with a PROXY v2 header;"
echo "  it trusts $(rel "$dir")/pki/intermediate.pem only, and requires a client certificate"
ip netns add "$ns"
ip -n "$ns" link set lo up
# no IPv6 chatter on the tap
ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
# setsid: a kept demo outlives this terminal; ip netns exec execs, so $! is mtlsgw
setsid ip netns exec "$ns" "$gw" --config "$dir/gw.yaml" </dev/null >"$dir/gw.out" 2>"$dir/gw.err" &
gwpid=$!
for _ in $(seq 300); do
	grep -q "mtlsgw: running" "$dir/gw.err" && break
	kill -0 "$gwpid" 2>/dev/null || exit 1
	sleep 0.1
done
grep -q "mtlsgw: running" "$dir/gw.err" || { echo "demo: mtlsgw did not start" >&2; exit 1; }
grep "^mtlsgw:" "$dir/gw.err" | sed 's/^/  /'
setsid ip netns exec "$ns" "$py" "$src/tests/lib/pp2_upstream.py" --listen "$peer_ip:8080" \
	--ready-file "$dir/upstream.ready" --mode http --require-client-cert \
	--log "$dir/upstream.log" </dev/null >"$dir/upstream.out" 2>&1 &
uppid=$!
for _ in $(seq 50); do [ -s "$dir/upstream.ready" ] && break; sleep 0.1; done
[ -s "$dir/upstream.ready" ] || { echo "demo: upstream did not start" >&2; exit 1; }
echo "  upstream: tests/lib/pp2_upstream.py at $peer_ip:8080 (in $ns), answers with the identity"
echo "  in the PROXY v2 header; it refuses a connection that has none"

p=$(rel "$dir")/pki
curl_in() { # curl_in CURL_ARGS... : curl in the namespace, to the gateway by name
	ip netns exec "$ns" curl -sS --max-time 10 --resolve "$host:443:$gw_ip" \
		--cacert "$dir/pki/root.pem" "$@" "https://$host/" 2>&1
}

echo
echo "== mutual TLS: curl with the client certificate, through the gateway, to the upstream"
echo "  \$ ip netns exec $ns curl --cert $p/client.pem --key $p/client.key \\"
echo "      --cacert $p/root.pem --resolve $host:443:$gw_ip https://$host/"
out=$(curl_in --cert "$dir/pki/client.pem" --key "$dir/pki/client.key") ||
	{ echo "demo: curl through the gateway failed: $out" >&2; exit 1; }
echo "  $out"
case $out in
"hello spiffe://"*) ;;
*) echo "demo: unexpected answer from the upstream" >&2; exit 1 ;;
esac
"$py" - "$dir/upstream.log" <<'PY'
import json, sys
h = json.loads(open(sys.argv[1]).read().splitlines()[-1])
s = h.get("ssl", {})
print("  the PROXY v2 header mtlsgw sent first, as the upstream parsed it: client %s,\n"
      "  identity %s (TLV 0xE0), %s %s, client cert CN '%s' %s" % (
      h.get("src"), h.get("client_id"), s.get("version"), s.get("cipher"), s.get("cn"),
      "verified" if s.get("verify") == 0 and s.get("client", 0) & 2 else "NOT verified"))
PY

echo
echo "== refused in the handshake: no client certificate, and a client of the other intermediate"
if out=$(curl_in); then
	echo "demo: a client without a certificate got through: $out" >&2
	exit 1
fi
echo "  no certificate:      $out"
if out=$(curl_in --cert "$dir/pki/other-client.chain.pem" --key "$dir/pki/other-client.key"); then
	echo "demo: the other intermediate's client got through: $out" >&2
	exit 1
fi
echo "  other intermediate:  $out"

echo
echo "== why: mtlsgw-ctl trust check (offline, the workers' own verification code)"
for c in client.pem other-client.chain.pem; do
	echo "  \$ mtlsgw-ctl trust check --config $(rel "$dir")/gw.yaml --listener api --chain $p/$c"
	set +e
	out=$("$ctl" trust check --config "$dir/gw.yaml" --listener api --chain "$dir/pki/$c" 2>&1)
	rc=$?
	set -e
	echo "$out" | fold -s -w 94 | sed '1s/^/  /; 2,$s/^/      /'
	case $c:$rc in client.pem:0 | other-client.chain.pem:1) ;;
	*) echo "demo: trust check of $c exited $rc" >&2; exit 1 ;;
	esac
done

if [ "$keep" = 1 ]; then
	# --stop must find this run: repeat the variables that moved it
	again=""
	[ -z "${GW_DEMO_DIR:-}" ] || again+="GW_DEMO_DIR=$(printf %q "$GW_DEMO_DIR") "
	[ -z "${GW_DEMO_NS:-}" ] || again+="GW_DEMO_NS=$(printf %q "$GW_DEMO_NS") "
	printf 'ns=%q\ngwpid=%q\nuppid=%q\n' "$ns" "$gwpid" "$uppid" >"$state"
	trap - EXIT INT TERM
	cat <<EOT

== kept running (namespace $ns, gateway pid $gwpid). Try it by hand:
  ip netns exec $ns curl --cert $p/client.pem --key $p/client.key \\
      --cacert $p/root.pem --resolve $host:443:$gw_ip https://$host/
  ip netns exec $ns openssl s_client -connect $gw_ip:443 -servername $host \\
      -cert $p/client.pem -key $p/client.key -CAfile $p/root.pem
  kill -USR1 $gwpid; tail -1 $(rel "$dir")/gw.out       # the gateway's counters (JSON)
  $(rel "$dir")/gw.yaml is its config; edit it, then kill -HUP $gwpid to reload
Stop it and clean up (gateway, upstream, namespace):
  ${again}bash $(rel "$src/tools/demo.sh") --stop
EOT
	exit 0
fi

echo
echo "== stop: the gateway's counters (its JSON line on SIGTERM)"
stop_all "$ns" "$gwpid" "$uppid"
gwpid="" uppid=""
print_counters "$dir/gw.out" || true # a gateway killed outright left none
echo "== cleaned up: gateway stopped, tap gone, namespace $ns deleted"
