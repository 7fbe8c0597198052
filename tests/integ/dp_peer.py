#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
"""dp_peer.py - the kernel-side peers of the dataplane tests.

Runs inside the test's network namespace (never anywhere else):
  ping HOST [COUNT]                 ICMP echo through a raw socket
  echo HOST PORT BYTES [CONNS]      CONNS concurrent connections each send
                                    BYTES of seeded random data and read it
                                    back; SHA-256 of what came back must equal
                                    SHA-256 of what was sent, per connection
  server PORT                       a kernel upstream for tcp-proxy tests:
                                    "UP n\\n" + n bytes -> replies sha256 hex;
                                    "DOWN n seed\\n" -> sends n seeded bytes
  up HOST PORT BYTES                client for "UP" through the proxy
  down HOST PORT BYTES              client for "DOWN" through the proxy
  echo-server PORT                  a kernel echo server (the reference)
Prints one line of results; exits non-zero (with the reason) on any mismatch.
"""
import hashlib
import os
import random
import selectors
import socket
import struct
import sys
import threading
import time

CHUNK = 1 << 20


def pattern(seed):
    """1 MiB of seeded random bytes; streams are offsets into it, rotated."""
    return random.Random(seed).randbytes(CHUNK)


def stream_bytes(pat, off, n):
    off %= CHUNK
    out = bytearray()
    while n > 0:
        take = min(n, CHUNK - off)
        out += pat[off:off + take]
        n -= take
        off = 0
    return bytes(out)


def die(msg):
    print("dp_peer: FAIL: " + msg, flush=True)
    sys.exit(1)


def cmd_ping(host, count=3):
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    s.settimeout(2)
    got = 0
    for seq in range(int(count)):
        payload = b"mtlsgw-ping-%d" % seq
        hdr = struct.pack("!BBHHH", 8, 0, 0, 0x4747, seq)
        csum = inet_cksum(hdr + payload)
        pkt = struct.pack("!BBHHH", 8, 0, csum, 0x4747, seq) + payload
        s.sendto(pkt, (host, 0))
        t_end = time.time() + 2
        while time.time() < t_end:
            try:
                data, addr = s.recvfrom(2048)
            except socket.timeout:
                break
            ihl = (data[0] & 0x0F) * 4
            icmp = data[ihl:]
            if addr[0] == host and icmp[0] == 0 and icmp[8:] == payload:
                if inet_cksum(icmp) != 0:
                    die("echo reply with a bad ICMP checksum")
                got += 1
                break
    if got != int(count):
        die("ping %s: %d of %s replies" % (host, got, count))
    print("ping %s: %d/%s replies" % (host, got, count))


def inet_cksum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


class EchoConn:
    def __init__(self, sock, idx, nbytes, pat):
        self.sock = sock
        self.idx = idx
        self.n = nbytes
        self.pat = pat
        self.off = idx * 7919  # each connection a different slice
        self.sent = 0
        self.rcvd = 0
        self.h_sent = hashlib.sha256()
        self.h_rcvd = hashlib.sha256()
        self.connected = False
        self.done = False


def cmd_echo(host, port, nbytes, conns=1, seed=1):
    nbytes, conns, port = int(nbytes), int(conns), int(port)
    pat = pattern(int(seed))
    sel = selectors.DefaultSelector()
    cs = []
    t0 = time.time()
    for i in range(conns):
        s = socket.socket()
        s.setblocking(False)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        try:
            s.connect((host, port))
        except BlockingIOError:
            pass
        c = EchoConn(s, i, nbytes, pat)
        cs.append(c)
        sel.register(s, selectors.EVENT_READ | selectors.EVENT_WRITE, c)
    left = conns
    deadline = time.time() + float(os.environ.get("GW_PEER_TIMEOUT", "600"))
    last_progress = time.time()
    while left:
        if time.time() > deadline:
            die("echo: timed out with %d of %d connections unfinished" % (left, conns))
        if time.time() - last_progress > 60:
            c = next(c for c in cs if not c.done)
            die("echo: no progress for 60 s (conn %d sent %d rcvd %d of %d)"
                % (c.idx, c.sent, c.rcvd, nbytes))
        for key, ev in sel.select(timeout=1.0):
            c = key.data
            if ev & selectors.EVENT_WRITE and c.sent < c.n:
                # keep at most 4 MiB in flight per connection
                if c.sent - c.rcvd < (4 << 20):
                    want = min(65536, c.n - c.sent)
                    buf = stream_bytes(pat, c.off + c.sent, want)
                    try:
                        k = c.sock.send(buf)
                    except BlockingIOError:
                        k = 0
                    except OSError as e:
                        die("echo conn %d: send: %s" % (c.idx, e))
                    if k:
                        c.h_sent.update(buf[:k])
                        c.sent += k
                        last_progress = time.time()
                if c.sent == c.n:
                    sel.modify(c.sock, selectors.EVENT_READ, c)
            if ev & selectors.EVENT_READ:
                try:
                    data = c.sock.recv(262144)
                except BlockingIOError:
                    continue
                except OSError as e:
                    die("echo conn %d: recv after %d bytes: %s" % (c.idx, c.rcvd, e))
                if not data:
                    die("echo conn %d: EOF after %d of %d bytes" % (c.idx, c.rcvd, c.n))
                c.h_rcvd.update(data)
                c.rcvd += len(data)
                last_progress = time.time()
                if c.rcvd > c.n:
                    die("echo conn %d: got more bytes than sent" % c.idx)
                if c.rcvd == c.n:
                    if c.h_rcvd.digest() != c.h_sent.digest():
                        die("echo conn %d: SHA-256 mismatch" % c.idx)
                    sel.unregister(c.sock)
                    c.sock.close()
                    c.done = True
                    left -= 1
    dt = time.time() - t0
    total = nbytes * conns
    print("echo ok: %d connection(s) x %d bytes, SHA-256 identical, %.1f MB/s each way, %.2f s"
          % (conns, nbytes, total / dt / 1e6, dt), flush=True)


def read_line(s):
    line = b""
    while not line.endswith(b"\n"):
        b = s.recv(1)
        if not b:
            break
        line += b
    return line.decode().strip()


def serve_one(s):
    try:
        cmd = read_line(s).split()
        if cmd and cmd[0] == "UP":
            n = int(cmd[1])
            h = hashlib.sha256()
            got = 0
            while got < n:
                b = s.recv(min(262144, n - got))
                if not b:
                    break
                h.update(b)
                got += len(b)
            s.sendall(("%d %s\n" % (got, h.hexdigest())).encode())
        elif cmd and cmd[0] == "DOWN":
            n, seed = int(cmd[1]), int(cmd[2])
            pat = pattern(seed)
            off = 0
            while off < n:
                k = min(262144, n - off)
                s.sendall(stream_bytes(pat, off, k))
                off += k
        s.shutdown(socket.SHUT_WR)
        while s.recv(65536):
            pass
    except OSError:
        pass
    finally:
        s.close()


def cmd_server(port):
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("0.0.0.0", int(port)))
    ls.listen(512)
    print("server listening on %s" % port, flush=True)
    while True:
        s, _ = ls.accept()
        threading.Thread(target=serve_one, args=(s,), daemon=True).start()


def echo_one(s):
    buf = bytearray(262144)
    try:
        while True:
            n = s.recv_into(buf)
            if not n:
                break
            s.sendall(memoryview(buf)[:n])
    except OSError:
        pass
    finally:
        s.close()


def cmd_echo_server(port, host="0.0.0.0"):
    """A kernel echo server: the reference the gateway's echo is compared to."""
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((host, int(port)))
    ls.listen(1024)
    print("echo server listening on %s" % port, flush=True)
    while True:
        s, _ = ls.accept()
        threading.Thread(target=echo_one, args=(s,), daemon=True).start()


def cmd_up(host, port, nbytes, seed=2):
    n = int(nbytes)
    pat = pattern(int(seed))
    s = socket.create_connection((host, int(port)), timeout=120)
    t0 = time.time()
    s.sendall(b"UP %d\n" % n)
    h = hashlib.sha256()
    off = 0
    while off < n:
        k = min(262144, n - off)
        buf = stream_bytes(pat, off, k)
        s.sendall(buf)
        h.update(buf)
        off += k
    line = read_line(s)
    dt = time.time() - t0
    want = "%d %s" % (n, h.hexdigest())
    if line != want:
        die("up: upstream saw '%s', sent '%s'" % (line, want))
    print("up ok: %d bytes, SHA-256 identical at the upstream, %.1f MB/s" % (n, n / dt / 1e6))


def cmd_down(host, port, nbytes, seed=3):
    n = int(nbytes)
    pat = pattern(int(seed))
    s = socket.create_connection((host, int(port)), timeout=120)
    t0 = time.time()
    s.sendall(b"DOWN %d %d\n" % (n, int(seed)))
    h = hashlib.sha256()
    want = hashlib.sha256()
    got = 0
    while True:
        b = s.recv(262144)
        if not b:
            break
        h.update(b)
        want.update(stream_bytes(pat, got, len(b)))
        got += len(b)
    dt = time.time() - t0
    if got != n or h.digest() != want.digest():
        die("down: got %d of %d bytes or SHA-256 mismatch" % (got, n))
    print("down ok: %d bytes, SHA-256 identical, %.1f MB/s" % (n, n / dt / 1e6))


def main():
    if len(sys.argv) < 2:
        die(__doc__)
    fn = {"ping": cmd_ping, "echo": cmd_echo, "server": cmd_server,
          "echo-server": cmd_echo_server,
          "up": cmd_up, "down": cmd_down}.get(sys.argv[1])
    if fn is None:
        die("unknown command %s" % sys.argv[1])
    fn(*sys.argv[2:])


if __name__ == "__main__":
    main()
