#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The fleet (control/cluster.h) end to end, in our own namespace: a
# three-member etcd cluster on loopback and two gateways, A and B, each on
# its own tap with its own SoftHSM token (its own server key, the same
# wrapping key imported into both). As behind ECMP, both serve the same
# address, 10.99.0.2: each tap's kernel side is moved into a client
# namespace of its own (10.99.0.1 there), which reaches that box only.
# Real clients (openssl s_client, python's ssl):
#   - a session ticket A issued resumes on B, and B's on A;
#   - after the leader rotated the fleet's keys, a ticket issued before the
#     rotation still resumes on the other box;
#   - mtlsgw-ctl cluster push: a trust change pushed once is live on both
#     within seconds (the old CA's client refused, the new one's accepted);
#     a revision B cannot apply (its trust file differs) leaves B serving
#     its previous revision, reported, and the push says so; a revision put
#     back by hand is refused as stale; the next push reaches both;
#   - the mesh CA (each box its own keys): B's mesh listener accepts a client
#     certificate A's CA issued (A's roots, sealed, shared through etcd);
#   - the mesh CA's three-step rotation pushed to the fleet: step 2 refused
#     while a member does not yet trust the new backend, then through; step 3
#     refused on B for a certificate A issued (A's record in etcd);
#   - killing the etcd leader, then all of etcd, with handshakes running
#     against both boxes: not one fails; the boxes say etcd is down
#     (mtlsgw_cluster_etcd_up 0) and catch up when it returns;
#   - killing gateway A (the leader): B takes over within the lease TTL,
#     with handshakes against B running (none fails), and a ticket issued
#     before still resumes on B;
#   - restarting A: it has the fleet's keys and config before its listener
#     accepts (a ticket from B resumes on it, the pushed trust holds, at once).
. "$(dirname "$0")/../lib/common.sh"
. "$GW_SRC/tests/lib/tls.sh"
if [ ! -x /usr/bin/etcd ]; then
	echo "skip: no /usr/bin/etcd (tools/deps.sh installs etcd-server)"
	exit 77
fi
# the leader rotates every 6 s instead of every ticket lifetime (test hook)
export GW_TEST_CLUSTER_ROTATE_S=6
gw_netns
. "$GW_SRC/tests/lib/etcd.sh"

gw_etcd_cluster_start "$GW_NS" "$T/etcd" 3 24790
gw_ok "etcd: three members on loopback in our namespace"

# --- two boxes: PKI and token A (bench's), a token B with its own server key
gw_tls_pki
TOKA=$SOFTHSM2_CONF
openssl rand -out "$T/fleet.key" 32
chmod 600 "$T/fleet.key"
"$MTLSGW_CTL" hsm import-secret --token gw --pin-file "$P/pin" --label fleet-wrap \
	--file "$T/fleet.key" >/dev/null || gw_fail "import the wrapping key into token A"
PB=$T/pkib
bench_pki_ctl "$MTLSGW_CTL" "$PB" "$T/tokb" >/dev/null || gw_fail "token B"
TOKB=$SOFTHSM2_CONF
"$MTLSGW_CTL" hsm import-secret --token gw --pin-file "$PB/pin" --label fleet-wrap \
	--file "$T/fleet.key" >/dev/null || gw_fail "import the wrapping key into token B"
shred -u "$T/fleet.key"
# a client trusts both boxes' server certificates
cat "$P/root.pem" "$PB/root.pem" >"$T/servers.pem"
gw_ok "tokens A and B: own server keys, the same wrapping key"

# box X: its directory $T/X (gw.yaml, its own server.pem, trust.pem), tap
# mtlsgwX, 10.99.0.2 (its client namespace has .1), its token, its state. Paths in
# listeners: are relative, so a pushed listeners: block finds each box's own
# files (docs/operations.md, "Fleet").
box_config() { # box_config X N PKIDIR TOKCONF
	cat <<EOC
dataplane:
  workers: [1]
  no_huge: true
  memory_mb: 256
  file_prefix: gw$1
  ports:
    - name: wan
      driver: tap
      device: mtlsgw$1
      address: 10.99.0.2/24
      gateway: 10.99.0.1
listeners:
  - name: web
    address: 10.99.0.2:8443
    service: tls-echo
    tls:
      ticket_lifetime: 1m
      identity:
        - cert: server.pem
          key: "pkcs11:token=gw;object=server;type=private"
    trust: {mode: ca, certs: [trust.pem]}
  - name: mesh
    address: 10.99.0.2:8444
    service: tls-echo
    tls: {}
    trust: {mode: mesh}
hsm:
  module: $BENCH_PKCS11_MODULE
  pin_file: $3/pin
  env: {SOFTHSM2_CONF: $4}
admin: {socket: $T/$1.sock}
state_dir: $T/state$1
cluster:
  name: edge-1
  node: gw-$1
  etcd:
    endpoints: [$(echo "$GW_ETCD_ENDPOINTS" | sed 's/,/, /g')]
    timeout: 500ms
  ticket_key: "pkcs11:token=gw;object=fleet-wrap;type=secret-key"
  lease_ttl: 3s
mtls:
  trust_domain: fleet.test
  enabledBackend: ca-1
  backends:
    - { name: ca-1, type: builtin, conf: { key_type: ec-p256 } }
EOC
}
mkdir -p "$T/a" "$T/b" "$T/statea" "$T/stateb"
cp "$P/server-hsm.chain.pem" "$T/a/server.pem"
cp "$PB/server-hsm.chain.pem" "$T/b/server.pem"
cp "$P/root.pem" "$T/a/trust.pem"
cp "$P/root.pem" "$T/b/trust.pem"
box_config a 1 "$P" "$TOKA" >"$T/a/gw.yaml"
box_config b 2 "$PB" "$TOKB" >"$T/b/gw.yaml"

# the client namespaces, one per box (deleted on any exit)
CNS_a=${GW_NS}a
CNS_b=${GW_NS}b
del_client_ns() { ip netns del "$CNS_a" 2>/dev/null; ip netns del "$CNS_b" 2>/dev/null; true; }
gw_at_cleanup del_client_ns
for ns in "$CNS_a" "$CNS_b"; do
	ip netns add "$ns"
	ip -n "$ns" link set lo up
	ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
done
cns() { eval "echo \$CNS_$1"; } # cns X : box X's client namespace
start_box() { # start_box X : start gateway X, wait until it runs; sets PID_X
	local ns
	ns=$(cns "$1")
	: >"$T/$1.err"
	gw_bg ip netns exec "$GW_NS" "$MTLSGW" --config "$T/$1/gw.yaml" >>"$T/$1.out" 2>>"$T/$1.err"
	eval "PID_$1=$GW_LAST_PID"
	gw_wait 300 grep -q "mtlsgw: running" "$T/$1.err" ||
		{ cat "$T/$1.err" >&2; gw_fail "gateway $1 did not start"; }
	# its tap's kernel side: into the box's client namespace
	gw_in ip link set "mtlsgw$1" netns "$ns"
	ip -n "$ns" addr add 10.99.0.1/24 dev "mtlsgw$1"
	ip -n "$ns" link set "mtlsgw$1" up
}
gw_log "$T/a.err" "$T/b.err"
start_box a
start_box b
grep -q "this member leads the fleet" "$T/a.err" || gw_fail "A (first) does not lead"
! grep -q "this member leads the fleet" "$T/b.err" || gw_fail "B leads too"
gw_ok "gateways A and B joined cluster edge-1; A leads"

# mtlsgw --check: the wrapping key seals in A's token (found through A's
# hsm.env), etcd answers and names the leader
out=$(gw_in "$MTLSGW" --check --config "$T/a/gw.yaml" --json 2>&1) || true
"$GW_PY" - "$out" <<'PY' || gw_fail "--check on A: $out"
import json, sys
r = {c["check"]: c for c in json.loads(sys.argv[1])}
assert r["cluster ticket_key"]["status"] == "ok", r["cluster ticket_key"]
assert r["cluster etcd"]["status"] == "ok" and "led by gw-a" in r["cluster etcd"]["detail"], r["cluster etcd"]
PY
gw_ok "mtlsgw --check: cluster ticket_key seals, cluster etcd answers (led by gw-a)"

# cluster status through the admin API: both members, one leader
cluster() { # cluster X : GET /v1/cluster of box X
	curl -sS --fail --unix-socket "$T/$1.sock" http://x/v1/cluster
}
st=$(cluster b) || gw_fail "GET /v1/cluster on B"
"$GW_PY" - "$st" <<'PY' || gw_fail "B's cluster status: $st"
import json, sys
s = json.loads(sys.argv[1])
assert s["Name"] == "edge-1" and s["Node"] == "gw-b" and s["Leader"] == "gw-a", s
assert s["EtcdUp"] is True and s["IsLeader"] is False and s["TicketSerial"] >= 1, s
assert sorted(m["Node"] for m in s["Members"]) == ["gw-a", "gw-b"], s
PY
gw_ok "B's /v1/cluster: both members, leader gw-a, etcd up, ticket serial $(echo "$st" | "$GW_PY" -c 'import json,sys; print(json.load(sys.stdin)["TicketSerial"])')"

# --- the mesh CA: each box's own ca-1 (its keys in its own token); a client
# certificate A's CA issued is accepted by B's mesh listener (B trusts A's
# roots, reported sealed through etcd); a stranger's is refused
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=meshc \
	-keyout "$T/meshc.key" -out "$T/meshc.csr" 2>/dev/null
"$MTLSGW_CTL" ca sign --socket "$T/a.sock" --csr "$T/meshc.csr" \
	--spiffe-id spiffe://fleet.test/meshc --ttl 1h --out "$T/meshc.all.pem" >/dev/null ||
	gw_fail "ca sign on A"
awk '/BEGIN CERT/ {n++} n == 1' "$T/meshc.all.pem" >"$T/meshc.pem"
awk '/BEGIN CERT/ {n++} n > 1' "$T/meshc.all.pem" >"$T/meshc.chain.pem"
mesh_hs() { # mesh_hs X CERTBASE : a handshake with box X's mesh listener: ok or the alert
	local out chain=()
	[ ! -s "$2.chain.pem" ] || chain=(-cert_chain "$2.chain.pem")
	out=$(GW_NS=$(cns "$1") gw_sclient "m-$1" -connect 10.99.0.2:8444 -cert "$2.pem" \
		-key "$2.key" "${chain[@]}" -quiet -no_ign_eof)
	case "$out" in *"m-$1"*) echo ok ;; *"unknown ca"*) echo "unknown ca" ;; *) echo "$out" ;; esac
}
expect_mesh() { # expect_mesh WANT X CERTBASE
	local got
	got=$(mesh_hs "$2" "$3")
	[ "$got" = "$1" ] || gw_fail "mesh listener of box $2 with $(basename "$3"): '$got', want '$1'"
}
expect_mesh ok a "$T/meshc"
for _ in $(seq 50); do # B takes A's roots within a turn or two of the agents
	[ "$(mesh_hs b "$T/meshc")" = ok ] && break
	sleep 0.2
done
expect_mesh ok b "$T/meshc"
cp "$P/other.chain.pem" "$T/stranger.pem"
cp "$P/other.key" "$T/stranger.key"
: >"$T/stranger.chain.pem"
expect_mesh "unknown ca" b "$T/stranger"
gw_ok "mesh: a client certificate from A's CA is accepted by B's mesh listener (A's roots, sealed, via etcd); a stranger's refused"

# --- tickets: issued by one box, resumed on the other
ticket() { # ticket X FILE : a full handshake with box X, its ticket saved in FILE
	rm -f "$2"
	GW_NS=$(cns "$1") gw_sclient "t-$1" -connect "10.99.0.2:8443" -servername "$SNI" -CAfile "$T/servers.pem" \
		-cert "$P/client.leaf.pem" -key "$P/client.key" -cert_chain "$P/int.pem" \
		-sess_out "$2" -quiet -no_ign_eof >/dev/null
	[ -s "$2" ] || gw_fail "no ticket from box $1"
}
resumes() { # resumes X FILE : does box X resume the session in FILE?
	local out
	out=$(GW_NS=$(cns "$1") gw_sclient "r-$1" -connect "10.99.0.2:8443" -servername "$SNI" \
		-CAfile "$T/servers.pem" -sess_in "$2" -no_ign_eof)
	case "$out" in *Reused*) return 0 ;; esac
	return 1
}
serial() { # serial X : the fleet ticket key serial box X runs
	cluster "$1" | "$GW_PY" -c 'import json,sys; print(json.load(sys.stdin)["TicketSerial"])'
}
serial_gt() { [ "$(serial "$1")" -gt "$2" ]; } # serial_gt X N (for gw_wait)
ticket a "$T/sa.pem"
# A may have rotated just before (every 6 s here) and B, slow under ASan,
# install that key a moment later: wait for it, as a client retrying would
gw_wait 100 serial_gt b "$(($(serial a) - 1))" || gw_fail "B never ran A's ticket key"
resumes b "$T/sa.pem" || gw_fail "A's ticket not resumed on B"
ticket b "$T/sb.pem"
resumes a "$T/sb.pem" || gw_fail "B's ticket not resumed on A"
gw_ok "a ticket from A resumes on B, one from B on A"

# --- across a rotation: a ticket issued shortly before the leader rotates
s0=$(serial a)
ticket a "$T/sr.pem"
gw_wait 100 serial_gt b "$s0" || gw_fail "no rotation within 10 s (every 6 s)"
resumes b "$T/sr.pem" || gw_fail "a ticket from before the rotation not resumed on B"
gw_ok "the leader rotated ($s0 -> $(serial b)); a ticket from before resumes on B"

# --- cluster push: the shared listeners: block, once for the fleet
hs() { # hs X CLIENT : a full handshake with box X as CLIENT (client|other): ok or the alert
	local out id=(-cert "$P/other.chain.pem" -key "$P/other.key")
	[ "$2" = other ] || id=(-cert "$P/client.leaf.pem" -key "$P/client.key" -cert_chain "$P/int.pem")
	out=$(GW_NS=$(cns "$1") gw_sclient "h-$1" -connect "10.99.0.2:8443" -servername "$SNI" \
		-CAfile "$T/servers.pem" "${id[@]}" -quiet -no_ign_eof)
	case "$out" in *"h-$1"*) echo ok ;; *"unknown ca"*) echo "unknown ca" ;; *) echo "$out" ;; esac
}
expect_hs() { # expect_hs WANT X CLIENT
	local got
	got=$(hs "$2" "$3")
	[ "$got" = "$1" ] || gw_fail "box $2, $3 client: '$got', want '$1'"
}
trust_ok() { [ "$(hs "$1" "$2")" = ok ]; } # for gw_wait
push() { # push FILE : mtlsgw-ctl cluster push, output in $T/push.out; its exit code
	local rc=0
	gw_in "$MTLSGW_CTL" cluster push --config "$1" --wait 20 >"$T/push.out" 2>&1 || rc=$?
	[ "$rc" -eq 0 ] || echo "(exit $rc)" >>"$T/push.out"
	cat "$T/push.out" >>"$T/push.log"
	return "$rc"
}
# revision 1: trust the other CA only (a copy on each box)
cp "$P/otherca.pem" "$T/a/trust2.pem"
cp "$P/otherca.pem" "$T/b/trust2.pem"
sed 's#certs: \[trust.pem\]#certs: [trust2.pem]#' "$T/a/gw.yaml" >"$T/a/push.yaml"
push "$T/a/push.yaml" || gw_fail "push revision 1: $(cat "$T/push.out")"
grep -q "^revision 1 stored" "$T/push.out" || gw_fail "push: $(cat "$T/push.out")"
grep -qE "^gw-a +1 +ok" "$T/push.out" && grep -qE "^gw-b +1 +ok" "$T/push.out" ||
	gw_fail "push reports: $(cat "$T/push.out")"
for x in a b; do
	expect_hs "unknown ca" "$x" client
	expect_hs ok "$x" other
done
gw_ok "cluster push: revision 1 (trust: the other CA) live on A and B; the removed CA's client refused on both"
push "$T/a/push.yaml" || gw_fail "the same push again: $(cat "$T/push.out")"
grep -q "already holds this config: nothing pushed" "$T/push.out" ||
	gw_fail "the same push again: $(cat "$T/push.out")"
gw_ok "pushing the same again stores nothing and says so"
gw_etcdctl get --print-value-only /mtlsgw/edge-1/config >"$T/rev1.json"
# revision 2: both CAs; B's copy of the file differs: B refuses, keeps revision 1, serving
cat "$P/root.pem" "$P/otherca.pem" >"$T/a/trust3.pem"
cp "$P/root.pem" "$T/b/trust3.pem"
sed 's#certs: \[trust.pem\]#certs: [trust3.pem]#' "$T/a/gw.yaml" >"$T/a/push.yaml"
! push "$T/a/push.yaml" || gw_fail "push revision 2 succeeded with B's file differing"
grep -qE "^gw-a +2 +ok" "$T/push.out" && grep -qE "^gw-b +2 +error .*differs from the pushed one" "$T/push.out" ||
	gw_fail "push revision 2 reports: $(cat "$T/push.out")"
grep -q "refused by a member" "$T/push.out" || gw_fail "push did not say a member refused"
expect_hs ok a client
expect_hs ok a other
expect_hs "unknown ca" b client
expect_hs ok b other
gw_ok "revision 2, whose trust file differs on B: A runs it; B refused it (reported), serves revision 1"
# a revision put back by hand: refused as stale by both
gw_etcdctl put /mtlsgw/edge-1/config "$(cat "$T/rev1.json")" >/dev/null
gw_wait 50 grep -q "revision 1 is not newer than the 2 already seen" "$T/a.err" ||
	gw_fail "A did not refuse the replayed revision 1"
gw_wait 50 grep -q "revision 1 is not newer than the 2 already seen" "$T/b.err" ||
	gw_fail "B did not refuse the replayed revision 1"
expect_hs ok a client
# their reports now name revision 1 (refused); the next push must still number past 2
replay_reported() {
	local st
	st=$(gw_in "$MTLSGW_CTL" cluster status --config "$T/a/gw.yaml") || return 1
	grep -qE "^gw-a .* 1 error$" <<<"$st" && grep -qE "^gw-b .* 1 error$" <<<"$st"
}
gw_wait 50 replay_reported ||
	gw_fail "cluster status does not report the refused revision 1: $(gw_in "$MTLSGW_CTL" cluster status --config "$T/a/gw.yaml" 2>&1)"
gw_ok "revision 1 put back by hand: refused as stale or replayed by both and reported; nothing changed"
# revision 3: B's file fixed; the push numbers past the replay
cp "$T/a/trust3.pem" "$T/b/trust3.pem"
push "$T/a/push.yaml" || gw_fail "push revision 3: $(cat "$T/push.out")"
grep -q "^revision 3 stored" "$T/push.out" || gw_fail "push 3: $(cat "$T/push.out")"
for x in a b; do
	expect_hs ok "$x" client
	expect_hs ok "$x" other
done
st=$(gw_in "$MTLSGW_CTL" cluster status --config "$T/b/gw.yaml") || gw_fail "cluster status: $st"
grep -qE "^gw-a .* 3 ok$" <<<"$st" && grep -qE "^gw-b .* 3 ok$" <<<"$st" ||
	gw_fail "cluster status after revision 3: $st"
gw_ok "revision 3 (B's file fixed) live on both; cluster status shows '3 ok' for both"
# a SIGHUP keeps the pushed part (the file alone trusts only the first CA)
kill -HUP "$PID_b"
gw_wait 50 grep -q "reload (SIGHUP): reloaded" "$T/b.err" || gw_fail "B: SIGHUP reload"
expect_hs ok b other
gw_ok "SIGHUP on B: its file reloaded with the pushed listeners: kept"

# --- the mesh CA's three-step rotation, with the fleet-wide validators
mtls_push() { # mtls_push ENABLED BACKEND... : $T/a/push.yaml with that mtls: section
	sed -e 's#certs: \[trust.pem\]#certs: [trust3.pem]#' -e '/^mtls:/,$d' "$T/a/gw.yaml" \
		>"$T/a/push.yaml"
	printf 'mtls:\n  trust_domain: fleet.test\n  enabledBackend: %s\n  backends:\n' "$1" \
		>>"$T/a/push.yaml"
	for b in "${@:2}"; do
		printf '    - { name: %s, type: builtin, conf: { key_type: ec-p256 } }\n' "$b" \
			>>"$T/a/push.yaml"
	done
}
b_trusts() { # b_trusts BACKEND : does B's member key report a live snapshot trusting it?
	gw_etcdctl get --print-value-only /mtlsgw/edge-1/members/gw-b |
		"$GW_PY" -c 'import json,sys; sys.exit(sys.argv[1] not in json.load(sys.stdin).get("mesh", {}).get("trusts", []))' "$1"
}
# step 1 (add ca-2) while B cannot apply it (its trust file differs): B stays on ca-1 alone
cp "$P/root.pem" "$T/b/trust3.pem"
mtls_push ca-1 ca-1 ca-2
! push "$T/a/push.yaml" || gw_fail "step 1 applied on B with its file differing"
grep -qE "^gw-a +[0-9]+ +ok" "$T/push.out" || gw_fail "step 1 on A: $(cat "$T/push.out")"
# step 2 (enable ca-2): A refuses it, since B does not trust ca-2
mtls_push ca-2 ca-1 ca-2
! push "$T/a/push.yaml" || gw_fail "step 2 applied while B does not trust ca-2"
grep -qE "^gw-a .*error .*enable-after-trust: backend ca-2 is not yet trusted by fleet member gw-b" \
	"$T/push.out" || gw_fail "step 2 on A: $(cat "$T/push.out")"
gw_ok "fleet rotation: step 2 refused on A while member B does not trust ca-2 (rule enable-after-trust)"
# one box's API override would split the fleet: refused
out=$(curl -sS --unix-socket "$T/a.sock" -X PUT -d '{"Config":{"EnabledBackend":"ca-2"}}' \
	-w ' %{http_code}' http://x/v1/connect/ca/configuration)
case "$out" in *"member of a fleet"*" 409") ;; *) gw_fail "PUT enabledBackend on A: $out" ;; esac
gw_ok "PUT /v1/connect/ca/configuration on a fleet member: 409, use cluster push"
# B fixed, step 1 again: once B reports trusting ca-2, step 2 and step 3 go through on both
cp "$T/a/trust3.pem" "$T/b/trust3.pem"
mtls_push ca-1 ca-1 ca-2
push "$T/a/push.yaml" || gw_fail "step 1 again: $(cat "$T/push.out")"
gw_wait 100 b_trusts ca-2 || gw_fail "B never reports trusting ca-2"
mtls_push ca-2 ca-1 ca-2
push "$T/a/push.yaml" || gw_fail "step 2: $(cat "$T/push.out")"
for x in a b; do
	curl -sS --fail --unix-socket "$T/$x.sock" http://x/v1/connect/ca/configuration |
		grep -q '"EnabledBackend": "ca-2"' || gw_fail "box $x: ca-2 not enabled"
done
gw_ok "fleet rotation: once B trusts ca-2 (its report), step 2 passes on both; both issue from ca-2"
# step 3 (remove ca-1): A issued a client certificate from ca-1 (the mesh test above),
# so A refuses it (its own store) and so does B (A's leaves record in etcd)
mtls_push ca-2 ca-2
! push "$T/a/push.yaml" || gw_fail "step 3 passed with A's ca-1 client certificate valid"
grep -qE "^gw-a .*error .*remove-after-expiry: backend ca-1 issued 1 certificate still valid" \
	"$T/push.out" || gw_fail "step 3 on A: $(cat "$T/push.out")"
grep -qE "^gw-b .*error .*remove-after-expiry: backend ca-1 issued 1 certificate still valid on fleet member gw-a" \
	"$T/push.out" || gw_fail "step 3 on B: $(cat "$T/push.out")"
expect_mesh ok b "$T/meshc"
gw_ok "fleet rotation: step 3 refused on B too, for the ca-1 certificate A issued (A's record in etcd)"

# --- handshakes against the boxes while etcd fails; none may fail
cat >"$T/load.py" <<'PY'
import os, socket, ssl, sys, time
t, name, p, sni, ips = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:]
ctx = ssl.create_default_context(cafile=t + "/servers.pem")
ctx.load_cert_chain(p + "/client.chain.pem", p + "/client.key")
ok = fail = 0
errs = []
while not os.path.exists(t + "/" + name + ".stop"):
    for ip in ips:
        try:
            with ctx.wrap_socket(socket.create_connection((ip, 8443), timeout=10),
                                 server_hostname=sni) as s:
                s.sendall(b"x")
                assert s.recv(1) == b"x"
            ok += 1
        except Exception as e:
            fail += 1
            errs.append("%s: %r" % (ip, e))
    time.sleep(0.05)
open(t + "/" + name + ".res", "w").write("%d %d %s\n" % (ok, fail, errs[:3]))
PY
load_start() { # load_start NAME X : full handshakes with box X in a loop until $T/NAME.stop
	rm -f "$T/$1.stop" "$T/$1.res"
	gw_bg ip netns exec "$(cns "$2")" "$GW_PY" "$T/load.py" "$T" "$1" "$P" "$SNI" 10.99.0.2
}
load_stop() { # load_stop NAME : stop the loop; fail unless it ran and nothing failed
	touch "$T/$1.stop"
	gw_wait 200 test -s "$T/$1.res" || gw_fail "load $1 did not end"
	read -r ok fail rest <"$T/$1.res"
	[ "$fail" -eq 0 ] || gw_fail "load $1: $fail failed handshake(s) of $((ok + fail)): $rest"
	[ "$ok" -gt 0 ] || gw_fail "load $1: no handshake at all"
	echo "$ok"
}
etcd_up() { # etcd_up X : box X's mtlsgw_cluster_etcd_up
	curl -sS --fail --unix-socket "$T/$1.sock" http://x/v1/metrics |
		sed -n 's/^mtlsgw_cluster_etcd_up \([0-9]\)$/\1/p'
}
etcd_is() { [ "$(etcd_up "$1")" = "$2" ]; } # etcd_is X 0|1 (for gw_wait)

load_start l1a a
load_start l1b b
leader=$(gw_etcd_leader) || gw_fail "no etcd leader"
gw_etcd_kill "$leader"
gw_etcd_wait_leader >/dev/null || gw_fail "no new etcd leader"
sleep 2
[ "$(etcd_up a)" = 1 ] && [ "$(etcd_up b)" = 1 ] || gw_fail "etcd_up not 1 after a new etcd leader"
gw_etcd_restart "$leader"
n=$(($(load_stop l1a) + $(load_stop l1b)))
gw_ok "etcd leader e$leader killed and back: $n handshakes, none failed; both boxes still see etcd"

# without quorum (two of three members down): the same as down for the boxes
load_start lqa a
load_start lqb b
gw_etcd_kill 1
gw_etcd_kill 2
gw_wait 100 etcd_is a 0 || gw_fail "A: mtlsgw_cluster_etcd_up not 0 without quorum"
gw_wait 100 etcd_is b 0 || gw_fail "B: mtlsgw_cluster_etcd_up not 0 without quorum"
gw_etcd_restart 1
gw_etcd_restart 2
gw_wait 150 etcd_is a 1 || gw_fail "A did not see etcd again after quorum returned"
gw_wait 150 etcd_is b 1 || gw_fail "B did not see etcd again after quorum returned"
n=$(($(load_stop lqa) + $(load_stop lqb)))
gw_ok "etcd without quorum and back: $n handshakes, none failed; etcd_up 0 then 1"

load_start l2a a
load_start l2b b
gw_etcd_stop_all
gw_wait 100 etcd_is a 0 || gw_fail "A: mtlsgw_cluster_etcd_up not 0 with etcd down"
gw_wait 100 etcd_is b 0 || gw_fail "B: mtlsgw_cluster_etcd_up not 0 with etcd down"
ticket b "$T/sd.pem"
resumes a "$T/sd.pem" || gw_fail "with etcd down, B's ticket not resumed on A"
sleep 2
gw_etcd_start_all
gw_wait 150 etcd_is a 1 || gw_fail "A did not see etcd again"
gw_wait 150 etcd_is b 1 || gw_fail "B did not see etcd again"
n=$(($(load_stop l2a) + $(load_stop l2b)))
gw_ok "all of etcd down and back: $n handshakes, none failed; etcd_up 0 then 1; tickets still shared"

# --- the leader dies: B takes over; its tickets keep resuming
ticket a "$T/sk.pem"
leads() { # leads X : box X's own view: it holds the leadership
	cluster "$1" | "$GW_PY" -c 'import json,sys; s=json.load(sys.stdin); sys.exit(not (s["IsLeader"] and s["Leader"] == "gw-" + sys.argv[1]))' "$1"
}
b_leads() { leads b; }
# after the etcd outages either box may lead: make it A, the one to be
# killed (B stops, revoking its lease, A takes over, B comes back)
if b_leads; then
	kill -TERM "$PID_b"
	wait "$PID_b" || gw_fail "B did not stop cleanly"
	gw_wait 100 leads a || gw_fail "A did not take over from a stopped B"
	start_box b
fi
! b_leads || gw_fail "B leads before A is killed"
load_start l3 b
kill -KILL "$PID_a"
wait "$PID_a" 2>/dev/null || true
gw_wait 100 b_leads || gw_fail "B did not take over within 10 s (lease TTL 3 s)"
resumes b "$T/sk.pem" || gw_fail "A's ticket from before its death not resumed on B"
s0=$(serial b)
gw_wait 100 serial_gt b "$s0" || gw_fail "B, now leader, did not rotate the keys (every 6 s)"
n=$(load_stop l3)
gw_ok "gateway A killed: B leads within the TTL and rotates ($s0 -> $(serial b)); $n handshakes on B, none failed; A's ticket resumes on B"

# --- A restarts: the fleet's keys before its listener accepts
ticket b "$T/sb2.pem"
ip -n "$CNS_a" link del mtlsgwa 2>/dev/null || true
start_box a
resumes a "$T/sb2.pem" || gw_fail "restarted A does not resume B's ticket at once"
! grep -q "joined without the fleet's ticket keys" "$T/a.err" || gw_fail "A started without the keys"
# the newest revision (step 3) is one A refuses: it starts on the one it last ran
grep -q "starting on the fleet's config revision" "$T/a.err" ||
	gw_fail "A did not start on the revision it last ran"
expect_hs ok a other
gw_ok "gateway A restarted: B's ticket resumes and the pushed trust holds at once (loaded before accepting)"

kill -TERM "$PID_a" "$PID_b"
for p in "$PID_a" "$PID_b"; do
	rc=0
	wait "$p" || rc=$?
	[ "$rc" -eq 0 ] || gw_fail "a gateway exited $rc on SIGTERM"
done
gw_done
