#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""tls_peer.py - mTLS clients for the TLS integration tests (python's ssl =
OpenSSL, the kernel's TCP), run inside the test's namespace.

    tls_peer.py bulk HOST PORT NBYTES PKI SNI
        one connection: send NBYTES of a seeded stream while reading the
        echo back (non-blocking, so backpressure never deadlocks us); the
        SHA-256 of what came back must equal what was sent.
    tls_peer.py many HOST PORT CONNS PER PKI SNI
        CONNS concurrent connections (asyncio), each a full mTLS handshake
        and PER bytes echoed byte-exact.

    tls_peer.py slowfrag echo|recv HOST PORT NBYTES PKI SNI
        one connection that negotiates max_fragment_length 512 (RFC 6066,
        through ctypes: python's ssl has no knob for it) and reads slowly
        through a small socket buffer, so the gateway keeps meeting a full
        TCP send buffer. echo: send NBYTES and check the echo; recv: only
        read, and check the NBYTES that `source` sent through tls-proxy.
    tls_peer.py source HOST PORT NBYTES
        an upstream: accept one connection, send NBYTES of a seeded stream,
        close.

PKI is the directory of bench/pki.sh (root.pem, client.chain.pem,
client.key). Prints one summary line; exits non-zero with the reason.
Inline clients of the other TLS tests import ctx_for and pump from here.
"""
import asyncio
import ctypes
import hashlib
import select
import socket
import ssl
import sys
import time


def ctx_for(pki):
    ctx = ssl.create_default_context(cafile=pki + "/root.pem")
    ctx.load_cert_chain(pki + "/client.chain.pem", pki + "/client.key")
    return ctx


def stream(seed, n):
    """n bytes of a deterministic stream (cheap, not all zeros)."""
    block = hashlib.sha256(b"%d" % seed).digest() * 2048  # 64 KiB
    out, i = [], 0
    while i < n:
        k = min(len(block), n - i)
        out.append(block[:k])
        block = block[1:] + block[:1]
        i += k
    return b"".join(out)


def pump(s, data, take, done, step=16384, rbuf=65536, wait=20, tag="pump"):
    """Send data on TLS socket s while handing all that comes back to
    take(chunk), until done() is true. Non-blocking meanwhile, so the
    gateway's backpressure never deadlocks us; exits with the reason on a
    stall (nothing either way for `wait` seconds) or an early EOF. The
    shared loop of bulk and the inline clients of tls_basic/tls_workers."""
    s.setblocking(False)
    sent, got = 0, 0
    while not done():
        wl = [s] if sent < len(data) else []
        r, w, _ = select.select([s], wl, [], wait)
        if not r and not w and not s.pending():
            sys.exit("%s: stalled at sent %d received %d" % (tag, sent, got))
        if w:
            try:
                sent += s.send(data[sent:sent + step])
            except (ssl.SSLWantWriteError, ssl.SSLWantReadError):
                pass
        while True:
            try:
                chunk = s.recv(rbuf)
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                break
            if not chunk:
                sys.exit("%s: EOF after %d of %d bytes" % (tag, got, len(data)))
            take(chunk)
            got += len(chunk)
    s.setblocking(True)


def bulk(host, port, nbytes, pki, sni):
    data = stream(7, nbytes)
    want = hashlib.sha256(data).hexdigest()
    t0 = time.monotonic()
    s = ctx_for(pki).wrap_socket(socket.create_connection((host, port), timeout=30),
                                 server_hostname=sni)
    h, got = hashlib.sha256(), [0]

    def take(chunk):
        h.update(chunk)
        got[0] += len(chunk)

    pump(s, data, take, lambda: got[0] >= nbytes, step=65536, rbuf=1 << 17, wait=30,
         tag="bulk")
    if h.hexdigest() != want:
        sys.exit("bulk: %d bytes came back different (sha256 %s, sent %s)" %
                 (nbytes, h.hexdigest()[:16], want[:16]))
    s.unwrap()
    s.close()
    dt = time.monotonic() - t0
    print("bulk: %d bytes both ways byte-exact (sha256 %s) in %.1f s" % (nbytes, want[:16], dt))


def mfl512(ctx):
    """SSL_CTX_set_tlsext_max_fragment_length(ctx, 512) on python's context.

    CPython's SSLContext object starts with PyObject_HEAD then SSL_CTX *."""
    lib = ctypes.CDLL("libssl.so.3")
    lib.SSL_CTX_set_tlsext_max_fragment_length.argtypes = [ctypes.c_void_p, ctypes.c_uint8]
    ptr = ctypes.c_void_p.from_address(id(ctx) + 2 * ctypes.sizeof(ctypes.c_void_p)).value
    if lib.SSL_CTX_set_tlsext_max_fragment_length(ptr, 1) != 1:
        sys.exit("slowfrag: cannot set max_fragment_length")


def slowfrag(mode, host, port, nbytes, pki, sni):
    ctx = ctx_for(pki)
    mfl512(ctx)
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.settimeout(30)
    raw.connect((host, port))
    s = ctx.wrap_socket(raw, server_hostname=sni)
    seed = 9 if mode == "echo" else 11
    data = stream(seed, nbytes)
    if mode == "echo":
        # one round trip first: the TLS 1.3 tickets are read before any
        # write of ours can be pending (OpenSSL 3.0 resizes its write
        # buffer to the max fragment on that first post-handshake message)
        s.sendall(b"!")
        if s.recv(1) != b"!":
            sys.exit("slowfrag: no echo of the first byte")
    s.setblocking(False)
    sent, got, h, reads = 0, 0, hashlib.sha256(), 0
    t_end = time.monotonic() + 120
    while got < nbytes:
        if time.monotonic() > t_end:
            sys.exit("slowfrag: stalled at sent %d received %d" % (sent, got))
        if mode == "echo" and sent < nbytes:
            try:
                sent += s.send(data[sent:sent + 16384])
            except (ssl.SSLWantWriteError, ssl.SSLWantReadError):
                pass
        try:
            chunk = s.recv(2048)  # a slow reader: 2 KB at a time, then a nap
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            select.select([s], [], [], 0.01)
            continue
        if not chunk:
            sys.exit("slowfrag: EOF after %d of %d bytes" % (got, nbytes))
        if chunk != data[got:got + len(chunk)]:
            i = next(k for k in range(len(chunk)) if chunk[k] != data[got + k])
            sys.exit("slowfrag: byte %d differs (got %#x, want %#x)" %
                     (got + i, chunk[i], data[got + i]))
        h.update(chunk)
        got += len(chunk)
        reads += 1
        if reads % 4 == 0:
            time.sleep(0.002)
    s.setblocking(True)
    try:
        s.unwrap()  # close_notify both ways: a clean end, no truncation
    except (ssl.SSLError, OSError):
        pass
    s.close()
    print("slowfrag %s: %d bytes byte-exact with max_fragment_length 512, read slowly"
          % (mode, nbytes))


def source(host, port, nbytes):
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((host, port))
    ls.listen(1)
    ls.settimeout(60)
    c, _ = ls.accept()
    c.sendall(stream(11, nbytes))
    c.close()
    ls.close()


async def one(host, port, per, ctx, sni, idx):
    r, w = await asyncio.open_connection(host, port, ssl=ctx, server_hostname=sni)
    data = stream(1000 + idx, per)
    w.write(data)
    await w.drain()
    back = await r.readexactly(per)
    w.close()
    try:
        await w.wait_closed()
    except (ssl.SSLError, ConnectionError):
        pass
    if back != data:
        raise RuntimeError("connection %d: echo differs" % idx)


async def many_main(host, port, conns, per, pki, sni):
    ctx = ctx_for(pki)
    res = await asyncio.gather(*(one(host, port, per, ctx, sni, i) for i in range(conns)),
                               return_exceptions=True)
    bad = [r for r in res if isinstance(r, BaseException)]
    if bad:
        sys.exit("many: %d of %d failed, first: %r" % (len(bad), conns, bad[0]))
    print("many: %d concurrent mTLS connections, %d bytes each, all byte-exact" % (conns, per))


def main():
    cmd = sys.argv[1]
    if cmd == "bulk":
        host, port, n, pki, sni = sys.argv[2:7]
        bulk(host, int(port), int(n), pki, sni)
    elif cmd == "many":
        host, port, conns, per, pki, sni = sys.argv[2:8]
        asyncio.run(many_main(host, int(port), int(conns), int(per), pki, sni))
    elif cmd == "slowfrag":
        mode, host, port, n, pki, sni = sys.argv[2:8]
        slowfrag(mode, host, int(port), int(n), pki, sni)
    elif cmd == "source":
        host, port, n = sys.argv[2:5]
        source(host, int(port), int(n))
    else:
        sys.exit("usage: tls_peer.py bulk|many|slowfrag|source ...")


if __name__ == "__main__":
    main()
