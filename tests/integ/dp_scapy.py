#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
"""dp_scapy.py - crafted packets against mtlsgw through its tap.

Runs inside the test's own namespace (dp_scapy.sh makes it), as the kernel
side 10.99.0.1 of the tap. Frames are injected at layer 2 so bad checksums
and lengths reach the gateway as written. The kernel's own RSTs for our
crafted ports (40000-49999) are dropped by nftables (dp_scapy.sh), so it does
not interfere with the connections scapy plays.

usage: dp_scapy.py IFACE GW_IP GW_PID GW_OUT
Each check prints "ok - ..." or "FAIL - ..."; exit status 1 if any failed.
"""
import json
import os
import random
import signal
import sys
import time

from scapy.all import (ARP, ICMP, IP, TCP, Ether, Raw, conf, get_if_hwaddr, sendp,
                       srp1, AsyncSniffer)

conf.verb = 0
IFACE, GW, GW_PID, GW_OUT = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
ME = "10.99.0.1"
fails = 0


def check(cond, what):
    global fails
    print(("ok - " if cond else "FAIL - ") + what, flush=True)
    if not cond:
        fails += 1


def stats():
    """Counters from the gateway: SIGUSR1, then the newest JSON line."""
    time.sleep(0.03)  # workers publish TCP counters every 10 ms
    with open(GW_OUT) as f:
        n = len(f.readlines())
    os.kill(GW_PID, signal.SIGUSR1)
    for _ in range(100):
        time.sleep(0.05)
        with open(GW_OUT) as f:
            lines = f.readlines()
        if len(lines) > n:
            d = json.loads(lines[-1])
            out = dict(d["net"])
            out.update(d["tcp"])
            out.update(d["conns"])
            return out
    raise SystemExit("gateway printed no counters")


MYMAC = get_if_hwaddr(IFACE)
r = srp1(Ether(dst="ff:ff:ff:ff:ff:ff") / ARP(pdst=GW, psrc=ME, hwsrc=MYMAC),
         iface=IFACE, timeout=2)
check(r is not None and r.haslayer(ARP) and r[ARP].op == 2, "ARP reply from the gateway")
GWMAC = r[ARP].hwsrc
L2 = Ether(src=MYMAC, dst=GWMAC)
L2IP = Ether(src=MYMAC, dst=GWMAC, type=0x0800)  # for raw bytes: scapy would say 0x9000


def tx(pkt, timeout=1.0):
    """Send one frame, return the first TCP/ICMP answer from the gateway."""
    return srp1(L2 / pkt, iface=IFACE, timeout=timeout)


def tx_any(pkt, sport, timeout=1.0):
    """Send one frame, return the first TCP segment the gateway sends to sport
    (scapy's own matching insists the ACK answers our sequence number, which
    is exactly what a gateway must not do for a bad segment)."""
    seen = []
    sn = AsyncSniffer(iface=IFACE, prn=seen.append, store=False,
                      filter="tcp and src host %s and dst port %d" % (GW, sport))
    sn.start()
    time.sleep(0.2)
    sendp(L2 / pkt, iface=IFACE)
    t_end = time.time() + timeout
    while time.time() < t_end and not seen:
        time.sleep(0.05)
    sn.stop()
    return seen[0] if seen else None


def no_answer(pkt):
    return tx(pkt, timeout=0.5) is None


def delta(before, name):
    return stats()[name] - before[name]


# ---- SYN to a closed port: RST+ACK (RFC 9293 3.10.7.1)
r = tx(IP(src=ME, dst=GW) / TCP(sport=40001, dport=9, flags="S", seq=1000))
check(r is not None and r.haslayer(TCP) and r[TCP].flags == "RA" and r[TCP].ack == 1001,
      "SYN to a closed port answered with RST+ACK, ack=seq+1")

# ---- bad checksums, truncated and unsupported headers: dropped and counted
s0 = stats()
p = IP(src=ME, dst=GW) / TCP(sport=40002, dport=7, flags="S", seq=1)
bad_ip = IP(bytes(p))
bad_ip.chksum ^= 0x1234
check(no_answer(bad_ip), "SYN with a bad IPv4 header checksum: no answer")
check(delta(s0, "ip_bad_cksum") == 1, "  counted as ip_bad_cksum")

s0 = stats()
bad_tcp = IP(bytes(p))
bad_tcp[TCP].chksum ^= 0x0101
check(no_answer(bad_tcp), "SYN with a bad TCP checksum: no answer")
check(delta(s0, "rx_bad_csum") == 1, "  counted as rx_bad_csum")

s0 = stats()
raw = bytes(IP(src=ME, dst=GW, proto=6) / Raw(b"\x00" * 20))
trunc = bytearray(raw[:20])
trunc[0] = 0x4F  # IHL 15 (60 bytes) in a 20-byte datagram
sendp(L2IP / Raw(bytes(trunc)), iface=IFACE)
long_len = bytes(IP(src=ME, dst=GW, len=1000) / TCP(sport=40003, dport=7, flags="S"))
sendp(L2IP / Raw(bytes(long_len)), iface=IFACE)
time.sleep(0.3)
s1 = stats()
check(s1["ip_bad_hdr"] - s0["ip_bad_hdr"] >= 1, "IPv4 IHL beyond the packet: ip_bad_hdr")
check(s1["ip_bad_len"] - s0["ip_bad_len"] >= 1, "IPv4 total length beyond the frame: ip_bad_len")

s0 = stats()
short_tcp = IP(src=ME, dst=GW, proto=6) / Raw(b"\x9c\x42\x00\x07\x00\x00")  # 6 bytes of TCP
sendp(L2 / short_tcp, iface=IFACE)
big_off = IP(src=ME, dst=GW) / TCP(sport=40004, dport=7, flags="S", dataofs=15)
sendp(L2 / big_off, iface=IFACE)
time.sleep(0.3)
check(delta(s0, "rx_bad_hdr") >= 2, "truncated TCP header and data offset beyond the segment: rx_bad_hdr")

s0 = stats()
sendp(L2 / IP(src=ME, dst=GW, flags="MF", frag=0) / TCP(sport=40005, dport=7, flags="S"),
      iface=IFACE)
sendp(L2 / IP(src=ME, dst=GW, options=b"\x94\x04\x00\x00") / TCP(sport=40006, dport=7,
      flags="S"), iface=IFACE)
sendp(L2 / IP(src=ME, dst=GW, proto=17) / Raw(b"\x00" * 12), iface=IFACE)
sendp(Ether(src=MYMAC, dst=GWMAC, type=0x0800) / Raw(b"\x45"), iface=IFACE)
sendp(L2 / IP(src=GW, dst=GW) / TCP(sport=7, dport=7, flags="S"), iface=IFACE)  # LAND
time.sleep(0.3)
s1 = stats()
check(s1["ip_frag"] - s0["ip_frag"] == 1, "fragment dropped: ip_frag")
check(s1["ip_options"] - s0["ip_options"] == 1, "IP options dropped: ip_options")
check(s1["ip_proto"] - s0["ip_proto"] == 1, "UDP dropped: ip_proto")
check(s1["ip_bad_hdr"] - s0["ip_bad_hdr"] >= 1, "1-byte IPv4 packet dropped: ip_bad_hdr")
check(s1["ip_martian"] - s0["ip_martian"] == 1, "our own address as source (LAND) dropped: ip_martian")


# ---- a connection played by hand
class Conn:
    def __init__(self, sport):
        self.sport = sport
        self.seq = random.randrange(1 << 31)
        syn = IP(src=ME, dst=GW) / TCP(sport=sport, dport=7, flags="S", seq=self.seq,
                                       window=65535, options=[("MSS", 1460)])
        r = tx(syn)
        self.ok = r is not None and r.haslayer(TCP) and r[TCP].flags == "SA"
        if not self.ok:
            return
        self.synack = r
        self.seq += 1
        self.ack = r[TCP].seq + 1
        sendp(L2 / IP(src=ME, dst=GW) / TCP(sport=sport, dport=7, flags="A", seq=self.seq,
                                             ack=self.ack, window=65535), iface=IFACE)

    def seg(self, flags, data=b"", seq=None, ack=None):
        return IP(src=ME, dst=GW) / TCP(sport=self.sport, dport=7, flags=flags,
                                        seq=self.seq if seq is None else seq,
                                        ack=self.ack if ack is None else ack,
                                        window=65535) / Raw(data)

    def echo(self, data):
        """Send data, expect it back (possibly after a bare ACK)."""
        seen = []
        sn = AsyncSniffer(iface=IFACE, prn=seen.append, store=False,
                          filter="tcp and src host %s and port %d" % (GW, self.sport))
        sn.start()
        time.sleep(0.2)
        sendp(L2 / self.seg("PA", data), iface=IFACE)
        self.seq += len(data)
        got = b""
        t_end = time.time() + 2
        while time.time() < t_end and got != data:
            time.sleep(0.1)
            got = b"".join(bytes(p[TCP].payload) for p in list(seen) if p.haslayer(Raw))
        sn.stop()
        if got:
            last = [p for p in seen if p.haslayer(Raw)][-1]
            self.ack = last[TCP].seq + len(last[TCP].payload)
            sendp(L2 / self.seg("A"), iface=IFACE)
        return got == data


c = Conn(40010)
check(c.ok, "handshake played by scapy: SYN-ACK")
if c.ok:
    mss = dict(o for o in c.synack[TCP].options if isinstance(o, tuple)).get("MSS")
    check(mss is not None and mss <= 1460, "SYN-ACK carries MSS option (%s)" % mss)
    check(c.echo(b"hello gateway"), "in-window data echoed")

    s0 = stats()
    r = tx_any(c.seg("PA", b"far away", seq=(c.seq + 50000000) % (1 << 32)), c.sport)
    check(r is not None and r[TCP].flags & 0x10 and r[TCP].ack == c.seq and
          len(r[TCP].payload) == 0, "segment outside the window: a bare ACK of rcv.nxt, no data"
          + ("" if r is None else " (got %s ack %d, want %d)" % (r[TCP].flags, r[TCP].ack, c.seq)))
    check(delta(s0, "rx_out_of_window") >= 1, "  counted as rx_out_of_window")

    s0 = stats()
    check(tx_any(c.seg("R", seq=(c.seq + 50000000) % (1 << 32), ack=0), c.sport, 0.5) is None,
          "RST far outside the window: ignored, no answer")
    r = tx_any(c.seg("R", seq=c.seq + 100, ack=0), c.sport)
    check(r is not None and r[TCP].flags == "A" and r[TCP].ack == c.seq,
          "RST in the window but not at rcv.nxt: challenge ACK (RFC 5961)"
          + ("" if r is None else " (got %s ack %d, want %d)" % (r[TCP].flags, r[TCP].ack, c.seq)))
    s1 = stats()
    check(s1["rx_rst_bad"] - s0["rx_rst_bad"] >= 1 and
          s1["rx_challenge_ack"] - s0["rx_challenge_ack"] >= 1, "  counted (rx_rst_bad, rx_challenge_ack)")
    check(c.echo(b"still alive"), "connection survives both bad RSTs")

    s0 = stats()
    sendp(L2 / c.seg("R"), iface=IFACE)
    time.sleep(0.3)
    check(delta(s0, "conn_reset") == 1, "RST at rcv.nxt resets the connection")
    r = tx(c.seg("PA", b"after reset"))
    check(r is not None and r[TCP].flags & 0x04, "data after the reset answered with RST")

# ---- duplicate and old data are not echoed twice
c = Conn(40011)
if c.ok:
    check(c.echo(b"once"), "second connection echoes")
    s0 = stats()
    old = c.seg("PA", b"once", seq=c.seq - 4)
    r = tx(old)
    check(r is not None and r[TCP].ack == c.seq and len(r[TCP].payload) == 0,
          "retransmitted old data: re-ACKed, not echoed again")
    sendp(L2 / c.seg("R"), iface=IFACE)

sys.exit(1 if fails else 0)
