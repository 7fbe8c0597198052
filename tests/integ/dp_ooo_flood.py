#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
"""dp_ooo_flood.py - out-of-order flood against a TLS listener, through the tap.

Runs inside the test's own namespace (dp_ooo_flood.sh makes it) as the
kernel side 10.99.0.1. Opens N TCP connections from ports 40000.. (the
kernel's RSTs for them are dropped by nftables), then sends each one S
1-byte segments at scattered offsets above a hole: data that can only wait
in the gateway's out-of-order queue, one mbuf per byte if it were charged
by bytes. The frames go out through a raw AF_PACKET socket so the whole
flood lands within the gateway's TLS handshake timeout.

usage: dp_ooo_flood.py IFACE GW_IP PORT N S
Prints "ok - N connections, K segments"; exit 1 on failure.
"""
import socket
import struct
import sys
import time

from scapy.all import ARP, IP, TCP, Ether, AsyncSniffer, conf, get_if_hwaddr, srp1  # noqa

conf.verb = 0
IFACE, GW, PORT, N, S = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
ME = "10.99.0.1"
BASE = 40000

mymac = get_if_hwaddr(IFACE)
r = srp1(Ether(dst="ff:ff:ff:ff:ff:ff") / ARP(pdst=GW, psrc=ME, hwsrc=mymac), iface=IFACE,
         timeout=2)
if r is None:
    sys.exit("FAIL - no ARP reply from the gateway")
gwmac = r[ARP].hwsrc
eth = Ether(src=mymac, dst=gwmac)
raw = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
raw.bind((IFACE, 0))

isn = {}


def synack(p):
    if p.haslayer(TCP) and p[TCP].flags & 0x12 == 0x12:
        isn.setdefault(p[TCP].dport, p[TCP].seq)


sn = AsyncSniffer(iface=IFACE, filter=f"tcp and src host {GW} and src port {PORT}",
                  store=False, prn=synack)
sn.start()
time.sleep(0.5)
for i in range(N):
    raw.send(bytes(eth / IP(src=ME, dst=GW) / TCP(sport=BASE + i, dport=PORT, flags="S",
                                                  seq=1000, window=65535)))
for _ in range(100):
    if len(isn) >= N:
        break
    time.sleep(0.1)
sn.stop()
if len(isn) < N:
    sys.exit(f"FAIL - only {len(isn)} of {N} SYN-ACKs")
# Frames built by hand (scapy takes too long for 40k of them: the
# half-open connections would time out meanwhile), then sent in one go.
L2 = bytes.fromhex(gwmac.replace(":", "")) + bytes.fromhex(mymac.replace(":", "")) + b"\x08\x00"
SRC, DST = socket.inet_aton(ME), socket.inet_aton(GW)


def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack(f"!{len(b) // 2}H", b))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff


def frame(sport, seq, ack, payload):
    tcp = struct.pack("!HHIIBBHHH", sport, PORT, seq, ack, 5 << 4, 0x10, 65535, 0, 0) + payload
    ck = csum(SRC + DST + struct.pack("!BBH", 0, 6, len(tcp)) + tcp)
    tcp = tcp[:16] + struct.pack("!H", ck) + tcp[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 1, 0x4000, 64, 6, 0, SRC, DST)
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    return L2 + ip + tcp


acks, data = [], []
for sport, s in isn.items():
    acks.append(frame(sport, 1001, (s + 1) & 0xffffffff, b""))
    for k in range(S):
        # byte 1001 (the first of the ClientHello) never comes: all of it waits
        data.append(frame(sport, 1001 + 2 + 3 * k, (s + 1) & 0xffffffff, b"x"))
t0 = time.time()
for f in acks:
    raw.send(f)
for i, f in enumerate(data):
    raw.send(f)
    if i % 256 == 255:
        time.sleep(0.002)  # the gateway polls the tap: no burst beyond its queue
print(f"ok - {N} connections, {len(data)} out-of-order segments in {time.time() - t0:.1f} s",
      flush=True)
