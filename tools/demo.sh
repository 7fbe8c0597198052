#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The quick start: install what is missing, build, and run mtlsgw on its
# embedded default. Everything it makes lives under ./demo (or $GW_DEMO_DIR)
# and in a network namespace it creates and removes.
set -euo pipefail
cd "$(dirname "$0")/.."
src=$(pwd)

bash tools/deps.sh
[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build >/dev/null
ctl=$src/build/tools/mtlsgw-ctl

dir=${GW_DEMO_DIR:-$src/demo}
rm -rf "$dir"
mkdir -p "$dir/softhsm/tokens"
printf 'directories.tokendir = %s/softhsm/tokens\nobjectstore.backend = file\nlog.level = ERROR\n' \
	"$dir" > "$dir/softhsm/softhsm2.conf"
export SOFTHSM2_CONF=$dir/softhsm/softhsm2.conf
umask 077
# Demo PINs: random, in files only (never argv, never printed).
head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$dir/pin"
head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$dir/sopin"

echo "== SoftHSM token 'gw' in $dir/softhsm"
"$ctl" hsm init --token gw --pin-file "$dir/pin" --so-pin-file "$dir/sopin"
echo "== server key generated inside the token"
"$ctl" hsm keygen --token gw --pin-file "$dir/pin" --label server --type ec-p256
echo "== objects on the token"
"$ctl" hsm list --token gw --pin-file "$dir/pin"
echo "== demo PKI (root, intermediate, server cert for the HSM key, clients) in $dir/pki"
"$ctl" pki demo --dir "$dir/pki" --token gw --pin-file "$dir/pin" \
	--key "pkcs11:token=gw;object=server;type=private"
ls "$dir/pki"

# The dataplane: mtlsgw on a tap port, in a network namespace this script
# makes (and removes on any exit), with a real kernel client talking to it.
ns="mtlsgw-demo-$$"
gwpid=""
demo_cleanup() {
	if [ -n "$gwpid" ]; then
		kill -TERM "$gwpid" 2>/dev/null || true
		wait "$gwpid" 2>/dev/null || true
	fi
	ip netns pids "$ns" 2>/dev/null | xargs -r kill -KILL 2>/dev/null || true
	ip netns del "$ns" 2>/dev/null || true
}
trap demo_cleanup EXIT
trap 'exit 130' INT TERM
echo "== mtlsgw in network namespace $ns: tap mtlsgw0, 10.99.0.2, echo listener on port 7"
ip netns add "$ns"
ip -n "$ns" link set lo up
cat >"$dir/gw.yaml" <<EOC
dataplane:
  workers: [1]
  no_huge: true
  memory_mb: 256
  ports:
    - name: wan
      driver: tap
      device: mtlsgw0
      address: 10.99.0.2/24
      gateway: 10.99.0.1
listeners:
  - name: echo
    address: 10.99.0.2:7
    service: echo
EOC
ip netns exec "$ns" "$src/build/tools/mtlsgw" --config "$dir/gw.yaml" >"$dir/gw.out" 2>"$dir/gw.err" &
gwpid=$!
for _ in $(seq 100); do grep -q "mtlsgw: running" "$dir/gw.err" && break; sleep 0.1; done
sed 's/^/  /' "$dir/gw.err"
ip -n "$ns" addr add 10.99.0.1/24 dev mtlsgw0
ip -n "$ns" link set mtlsgw0 up
echo "== the kernel's TCP (python3 at 10.99.0.1) talks to it through the tap"
ip netns exec "$ns" /usr/bin/python3 - <<'PY'
import socket
s = socket.create_connection(("10.99.0.2", 7), timeout=5)
for line in (b"hello mtlsgw", b"these bytes went through DPDK and mtlsgw's own TCP"):
    s.sendall(line)
    got = b""
    while len(got) < len(line):
        got += s.recv(100)
    print("  sent %r, echoed %r" % (line.decode(), got.decode()))
s.close()
PY
ip netns exec "$ns" /usr/bin/python3 "$src/tests/integ/dp_peer.py" echo 10.99.0.2 7 20000000 1 |
	sed 's/^/  /'
kill -TERM "$gwpid"
wait "$gwpid"
gwpid=""
/usr/bin/python3 - "$dir/gw.out" <<'PY'
import json, sys
d = json.loads(open(sys.argv[1]).read().splitlines()[-1])
n, t = d["net"], d["tcp"]
print("== mtlsgw stopped (tap gone); its counters: %d packets in, %d out, %d ARP replies, "
      "%d connections accepted, %d bytes echoed" % (n["rx_pkts"], n["tx_pkts"],
      n["arp_reply_tx"], t["conn_accepted"], t["rx_bytes"]))
PY
echo "demo: done"
