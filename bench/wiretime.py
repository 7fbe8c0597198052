#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
"""wiretime.py - where a handshake's time goes, read off the wire.

  wiretime.py capture IFACE OUT [--lo]        (until SIGINT or SIGTERM)
  wiretime.py summarize OUT PORT              (JSON on stdout)

bench/run --wire runs `capture` in its namespace beside every paced row, on
the interface between the client's kernel and the server (mtlsgw: the veth
end the kernel owns, or the tap; nginx: the namespace's loopback), and
`summarize` afterwards. The timestamps are the kernel's (taken as a frame
is sent or received), so a capture process that runs late does not move
them; the kernel hands frames over in blocks (a TPACKET_V3 ring), which
keeps the capture's own CPU small beside the client's.

Per connection (a client SYN to PORT starts one), from its SYN to the
answer (the start of the server's third turn: SYN-ACK, the handshake
flight, the answer to the request):
  server     the sum of the server's turns: from the last segment the
             client sent with data (or its SYN or FIN) to the next one the
             server sent with data (or its SYN-ACK or FIN). Pure ACKs are
             not turns. The time the server, with its own path from the wire
             and back, held the connection; both servers measured alike.
  client     the sum of the client's turns, the other way round.
  in_flight  the rest: a flight that waited on the way (for an ACK, a
             window, a retransmission).
  total      SYN to the answer.
  server_turn  the three server turns one by one (SYN-ACK; the handshake
             flight, with the signature; the answer, after the client's
             certificate was checked).
p50/p90/p99/max of each in ms, and over the whole connection (its close
too) the segments either side sent again (same sequence number, length and
SYN/FIN: retransmissions, the server's included, which the namespace's
counters do not see for mtlsgw). A frame the ring dropped (all its blocks
full) is counted in "drops": the figures of a capture with drops are not to
be trusted.
"""
import ctypes
import json
import mmap
import select
import signal
import socket
import struct
import sys

ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_RX_RING = 5
PACKET_STATISTICS = 6
PACKET_VERSION = 10
PACKET_IGNORE_OUTGOING = 23
TPACKET_V3 = 2
SO_ATTACH_FILTER = 26
TP_STATUS_USER = 1
SNAP = 128  # Ethernet + IPv4 + TCP headers with options
BLOCK, BLOCKS = 1 << 20, 32
FIN, SYN, ACK = 0x01, 0x02, 0x10


def capture(iface, out, lo):
    """A TPACKET_V3 ring: the kernel fills 1 MiB blocks with the frames'
    first SNAP bytes and timestamps and hands over a block when it is full
    or 10 ms old; each block is written out as it is (parsed by summarize),
    so the capture costs one wake-up per block, not a system call per frame."""
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.setsockopt(SOL_PACKET, PACKET_VERSION, TPACKET_V3)
    if lo:  # the loopback shows a frame twice, as sent and as received
        s.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
    # classic BPF "ret #SNAP": every frame, cut to SNAP bytes
    insn = ctypes.create_string_buffer(struct.pack("HBBI", 0x06, 0, 0, SNAP))
    s.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, struct.pack("HL", 1, ctypes.addressof(insn)))
    s.setsockopt(SOL_PACKET, PACKET_RX_RING,
                 struct.pack("7I", BLOCK, BLOCKS, 2048, BLOCK * BLOCKS // 2048, 10, 0, 0))
    s.bind((iface, 0))
    ring = mmap.mmap(s.fileno(), BLOCK * BLOCKS, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
    stop = []
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    pl = select.poll()
    pl.register(s.fileno(), select.POLLIN | select.POLLERR)
    i = 0
    with open(out, "wb") as f:
        while True:
            base = i * BLOCK
            status = struct.unpack_from("I", ring, base + 8)[0]
            if not status & TP_STATUS_USER:
                if stop:
                    break
                pl.poll(100)
                continue
            blen = struct.unpack_from("I", ring, base + 20)[0]
            f.write(struct.pack("I", blen))
            f.write(ring[base:base + blen])
            struct.pack_into("I", ring, base + 8, 0)  # back to the kernel
            i = (i + 1) % BLOCKS
        # tpacket_stats_v3: packets, drops, freeze count
        drops = struct.unpack("III", s.getsockopt(SOL_PACKET, PACKET_STATISTICS, 12))[1]
    with open(out + ".drops", "w") as f:
        f.write("%d\n" % drops)


def frames(out, port):
    """The capture's TCP segments to or from PORT, in order: (ts, from
    server, flags, client port, payload bytes, seq)."""
    with open(out, "rb") as f:
        buf = f.read()
    off = 0
    while off + 4 <= len(buf):
        blen = struct.unpack_from("I", buf, off)[0]
        blk = buf[off + 4:off + 4 + blen]
        off += 4 + blen
        n, first = struct.unpack_from("II", blk, 12)
        p = first
        for _ in range(n):
            nxt, sec, nsec, snap = struct.unpack_from("IIII", blk, p)
            mac = struct.unpack_from("H", blk, p + 24)[0]
            d = blk[p + mac:p + mac + snap]
            p += nxt
            if len(d) < 14 + 20 + 20 or d[12:14] != b"\x08\x00" or d[23] != 6:
                continue
            ihl = (d[14] & 0x0F) * 4
            tot = struct.unpack_from("!H", d, 16)[0]
            t = 14 + ihl
            if len(d) < t + 20:
                continue
            sport, dport, seq = struct.unpack_from("!HHI", d, t)
            if port not in (sport, dport):
                continue
            srv = sport == port
            yield (sec + nsec / 1e9, srv, d[t + 13], dport if srv else sport,
                   tot - ihl - (d[t + 12] >> 4) * 4, seq)


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(p / 100.0 * len(v)))] if v else None


def connections(out, port):
    """Per client port and SYN: the list of (ts, from_server, flags, len, seq)."""
    conns, cur = [], {}
    for ts, srv, fl, cport, plen, seq in frames(out, port):
        c = cur.get(cport)
        if not srv and fl & SYN and not fl & ACK and not (c and c[0][4] == seq):
            if c is not None:
                conns.append(c)
            c = cur[cport] = []
        if c is not None:
            c.append((ts, srv, fl, plen, seq))
    conns.extend(cur.values())
    return conns


def timeline(c):
    """Turns up to the answer (the server's third turn: SYN-ACK, its
    handshake flight, the answer to the request), and the segments either
    side sent again over the whole connection."""
    r = {"server": 0.0, "client": 0.0, "max_srv": 0.0, "answer": None, "srv_again": 0, "cli_again": 0,
         "turns": []}
    seen, last_cli, last_srv, turns = set(), None, None, 0
    for ts, srv, fl, plen, seq in c:
        sends = plen > 0 or fl & (SYN | FIN)
        if not sends:
            continue
        k = (srv, seq, plen, fl & (SYN | FIN))
        if k in seen:
            r["srv_again" if srv else "cli_again"] += 1
            continue
        seen.add(k)
        if r["answer"] is not None:
            continue
        if srv:
            if last_cli is not None:
                d = ts - last_cli
                r["server"] += d
                r["max_srv"] = max(r["max_srv"], d)
                r["turns"].append(d)
                last_cli = None
                turns += 1
                if turns == 3:
                    r["answer"] = ts
            last_srv = ts
        else:
            if last_srv is not None:
                r["client"] += ts - last_srv
                last_srv = None
            last_cli = ts
    return r


def summarize(out, port):
    conns = connections(out, port)
    lines = [(c[0][0], timeline(c)) for c in conns]
    done = [(t0, t) for t0, t in lines if t["answer"] is not None]
    drops = None
    try:
        with open(out + ".drops") as f:
            drops = int(f.read().strip())
    except (OSError, ValueError):
        pass
    r = {"connections": len(conns), "answered": len(done), "drops": drops,
         "server_sent_again": sum(t["srv_again"] for _, t in lines),
         "client_sent_again": sum(t["cli_again"] for _, t in lines),
         "connections_server_sent_again": sum(1 for _, t in lines if t["srv_again"])}
    for k, vals in (("total", [t["answer"] - t0 for t0, t in done]),
                    ("server", [t["server"] for _, t in done]),
                    ("server_max_turn", [t["max_srv"] for _, t in done]),
                    ("client", [t["client"] for _, t in done]),
                    ("in_flight", [t["answer"] - t0 - t["server"] - t["client"] for t0, t in done])):
        r[k] = {p: (round(pct(vals, q) * 1e3, 3) if vals else None)
                for p, q in (("p50", 50), ("p90", 90), ("p99", 99), ("max", 100))}
    # each of the three server turns alone: which one carries a tail
    r["server_turn"] = [
        {p: round(pct([t["turns"][i] for _, t in done], q) * 1e3, 3)
         for p, q in (("p50", 50), ("p90", 90), ("p99", 99), ("max", 100))} if done else None
        for i in range(3)]
    print(json.dumps(r))


def main(a):
    if len(a) >= 3 and a[0] == "capture":
        capture(a[1], a[2], "--lo" in a[3:])
    elif len(a) == 3 and a[0] == "summarize":
        summarize(a[1], int(a[2]))
    else:
        sys.stderr.write(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
