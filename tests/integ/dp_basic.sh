#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The dataplane without TCP: EAL options generated from the config, a tap
# port in our own namespace, ARP answered and resolved (also through the
# default gateway, with packets held while it resolves), ICMP echo and
# clean exits (SIGTERM: exit 0, counters printed, tap gone; SIGKILL: tap
# gone with the process).
. "$(dirname "$0")/../lib/common.sh"

echo_l="  - name: echo
    address: $GW_GW_IP:7
    service: echo"

# --- EAL argv from the config; nothing started
gw_gateway_config "$T/gw.yaml" "[1]" "$echo_l"
eal=$("$MTLSGW" --config "$T/gw.yaml" --print-eal)
for want in "--lcores=0@" "--main-lcore=0" "--no-huge" "--vdev net_tap0,iface=$GW_TAP" "--no-pci" \
	"-m 384"; do
	case "$eal" in *"$want"*) ;; *) gw_fail "EAL line lacks '$want': $eal" ;; esac
done
gw_ok "EAL options generated from the config: $eal"

# --- config errors come from the loader with file, line and field
sed 's/driver: tap/driver: tapp/' "$T/gw.yaml" >"$T/bad.yaml"
gw_expect_fail "bad.yaml:7: dataplane.ports[0].driver: 'tapp' is not one of" \
	"$MTLSGW" --config "$T/bad.yaml"
gw_expect_fail "nonexistent.yaml: cannot read the config" "$MTLSGW" --config "$T/nonexistent.yaml"

# --- devices that are not there: a cause a person can act on, nothing left
gw_netns
sed 's/driver: tap/driver: af_packet/; s/device: mtlsgw0/device: nosuch0/' "$T/gw.yaml" >"$T/afp.yaml"
gw_expect_fail "port 'wan': no interface named nosuch0 in this network namespace" \
	gw_in "$MTLSGW" --config "$T/afp.yaml"
sed 's/driver: tap/driver: pci/; s/device: mtlsgw0/device: 0000:7f:1f.7/' "$T/gw.yaml" >"$T/pci.yaml"
gw_expect_fail "port 'wan': no DPDK device 0000:7f:1f.7 (is the NIC bound to vfio-pci" \
	gw_in "$MTLSGW" --config "$T/pci.yaml"

# --- one worker: ARP and ping
gw_start_gateway "$T/gw.yaml"
gw_ok "mtlsgw runs in namespace $GW_NS with tap $GW_TAP"

# Off-subnet peer first, before any on-link traffic taught the gateway
# anything: replies go through the default gateway (10.99.0.1), which
# the gateway must resolve itself; the reply waits in the ARP queue.
gw_in ip addr add 192.168.77.1/32 dev "$GW_TAP"
gw_in ip route add 192.168.77.0/24 dev "$GW_TAP" 2>/dev/null || true
before=$(gw_stat arp_req_tx)
gw_in "$GW_PY" - <<'PY' || gw_fail "ping from an off-subnet source"
import socket, struct, sys
def ck(b):
    s = sum(struct.unpack("!%dH" % (len(b)//2), b))
    while s >> 16: s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
s.bind(("192.168.77.1", 0)); s.settimeout(3)
p = struct.pack("!BBHHH", 8, 0, 0, 7, 1) + b"offsubnet!"
p = p[:2] + struct.pack("!H", ck(p)) + p[4:]
s.sendto(p, ("10.99.0.2", 0))
while True:
    d, a = s.recvfrom(2048)
    if a[0] == "10.99.0.2" and d[20] == 0 and d[28:] == b"offsubnet!":
        sys.exit(0)
PY
after=$(gw_stat arp_req_tx)
[ "$after" -gt "$before" ] || gw_fail "gateway sent no ARP request for its default gateway"
gw_ok "off-subnet reply routed via the default gateway, resolved by ARP ($((after - before)) request(s))"

gw_peer ping "$GW_GW_IP" 3 >/dev/null || gw_fail "ping $GW_GW_IP"
gw_ok "ping $GW_GW_IP: 3/3 echo replies"
mac=$(gw_in ip neigh show "$GW_GW_IP" dev "$GW_TAP" | awk '{print $3}')
[ -n "$mac" ] || gw_fail "kernel has no ARP entry for the gateway"
gw_ok "kernel resolved $GW_GW_IP to $mac by ARP"
read -r echo_n reply_n < <(gw_stat icmp_echo arp_reply_tx | paste -sd' ')
[ "$echo_n" -ge 3 ] && [ "$reply_n" -ge 1 ] || gw_fail "counters: icmp_echo=$echo_n arp_reply_tx=$reply_n"
gw_ok "counters: icmp_echo=$echo_n arp_reply_tx=$reply_n"

gw_stop_gateway
grep -q '"icmp_echo":' "$T/gw.out" || gw_fail "no counters printed at exit"
gw_ok "SIGTERM: exit 0, counters printed, tap removed"

# --- the tap name is taken: a clear error, not a crash
gw_start_gateway "$T/gw.yaml"
gw_expect_fail "interface $GW_TAP already exists" gw_in "$MTLSGW" --config "$T/gw.yaml"
gw_stop_gateway

# --- SIGKILL: the kernel removes the tap with the process
gw_start_gateway "$T/gw.yaml"
kill -KILL "$GW_GW_PID"
wait "$GW_GW_PID" 2>/dev/null || true
gw_wait 50 sh -c "! ip netns exec $GW_NS ip link show $GW_TAP" || gw_fail "tap survived SIGKILL"
gw_ok "SIGKILL: tap gone with the process"

gw_done
