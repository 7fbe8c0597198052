#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""pp2_upstream.py - a test upstream that requires a PROXY protocol v2 header.

It stands where a real upstream stands behind mtlsgw's tls-proxy or tcp-proxy with
`proxy_protocol: v2`: every connection must begin with a v2 header (haproxy's
doc/proxy-protocol.txt, section 2.2), which is parsed strictly - signature,
version, command, family, address block, every TLV and SSL sub-TLV length,
no duplicates, UTF-8 values, the CRC32C when present - and the connection
is then answered with who the client was:

    hello <client-id> from <src-ip>:<src-port> over <tls-version>

(<client-id> is mtlsgw's TLV 0xE0: SPIFFE ID or first URI SAN; "-" stands in
for anything absent). Modes: `hello` sends that line and then echoes the
rest of the stream; `echo` only echoes; `http` reads one HTTP/1.x request and
answers 200 with the line as the body (for curl through the gateway).

A bad header gets "ERR <reason>\\n" and the connection is closed; the server
keeps serving. With --log FILE, one JSON object per connection is appended
(the parsed fields, or the error), which is what tests check.

    pp2_upstream.py --listen 127.0.0.1:0 --ready-file F [--mode hello]
                    [--require-client-cert] [--log FILE] [--timeout S]
"""
import argparse
import asyncio
import ipaddress
import json
import os
import signal
import sys

SIG = b"\x0D\x0A\x0D\x0A\x00\x0D\x0A\x51\x55\x49\x54\x0A"

TYPE_ALPN = 0x01
TYPE_AUTHORITY = 0x02
TYPE_CRC32C = 0x03
TYPE_NOOP = 0x04
TYPE_UNIQUE_ID = 0x05
TYPE_SSL = 0x20
TYPE_NETNS = 0x30
TYPE_CLIENT_ID = 0xE0  # mtlsgw: client's SPIFFE ID or first URI SAN
SUB_NAMES = {0x21: "version", 0x22: "cn", 0x23: "cipher", 0x24: "sig_alg", 0x25: "key_alg"}
CLIENT_SSL, CLIENT_CERT_CONN, CLIENT_CERT_SESS = 0x01, 0x02, 0x04


class BadHeader(Exception):
    pass


def _crc32c_table():
    tab = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        tab.append(c)
    return tab


_CRC_TAB = _crc32c_table()


def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c = _CRC_TAB[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def _text(name, v, ascii_only=False):
    if not v:
        raise BadHeader(f"empty {name} TLV")
    try:
        s = v.decode("ascii" if ascii_only else "utf-8")
    except UnicodeDecodeError:
        raise BadHeader(f"{name} TLV is not {'ASCII' if ascii_only else 'UTF-8'}")
    if "\x00" in s:
        raise BadHeader(f"{name} TLV contains NUL")
    return s


def _tlvs(buf, where):
    """Split buf into (type, value, offset) exactly; any overrun is an error."""
    off = 0
    while off < len(buf):
        if len(buf) - off < 3:
            raise BadHeader(f"{where}: {len(buf) - off} trailing byte(s), not a TLV")
        t, ln = buf[off], int.from_bytes(buf[off + 1:off + 3], "big")
        if ln > len(buf) - off - 3:
            raise BadHeader(f"{where}: TLV 0x{t:02x} length {ln} overruns by "
                            f"{ln - (len(buf) - off - 3)}")
        yield t, buf[off + 3:off + 3 + ln], off
        off += 3 + ln


def parse_v2(hdr):
    """Parse a complete v2 header (16 + len bytes). Returns a dict."""
    if hdr[:12] != SIG:
        raise BadHeader("no PROXY v2 signature")
    ver, cmd = hdr[12] >> 4, hdr[12] & 0x0F
    if ver != 2:
        raise BadHeader(f"version {ver}, want 2")
    if cmd not in (0, 1):
        raise BadHeader(f"command {cmd}, want LOCAL(0) or PROXY(1)")
    fam, proto = hdr[13] >> 4, hdr[13] & 0x0F
    body = hdr[16:]
    out = {"command": "PROXY" if cmd else "LOCAL"}
    if cmd == 0:
        return out  # LOCAL: the spec says skip the block, use the real endpoints
    if (fam, proto) == (1, 1):
        alen, af = 12, 4
    elif (fam, proto) == (2, 1):
        alen, af = 36, 16
    else:
        raise BadHeader(f"family/protocol 0x{hdr[13]:02x}, want TCP4 0x11 or TCP6 0x21")
    if len(body) < alen:
        raise BadHeader(f"address block {len(body)} bytes, want {alen}")
    src = ipaddress.ip_address(body[0:af])
    dst = ipaddress.ip_address(body[af:2 * af])
    out["src"] = f"{src}:{int.from_bytes(body[2 * af:2 * af + 2], 'big')}"
    out["dst"] = f"{dst}:{int.from_bytes(body[2 * af + 2:2 * af + 4], 'big')}"
    seen = set()
    for t, v, off in _tlvs(body[alen:], "TLVs"):
        if t in seen and t != TYPE_NOOP:
            raise BadHeader(f"duplicate TLV 0x{t:02x}")
        seen.add(t)
        if t == TYPE_ALPN:
            out["alpn"] = _text("ALPN", v, ascii_only=True)
        elif t == TYPE_AUTHORITY:
            out["authority"] = _text("AUTHORITY", v)
        elif t == TYPE_CRC32C:
            if len(v) != 4:
                raise BadHeader(f"CRC32C TLV length {len(v)}, want 4")
            pos = 16 + alen + off + 3
            zeroed = hdr[:pos] + b"\0\0\0\0" + hdr[pos + 4:]
            if crc32c(zeroed) != int.from_bytes(v, "big"):
                raise BadHeader("CRC32C mismatch")
        elif t == TYPE_NOOP:
            pass
        elif t == TYPE_UNIQUE_ID:
            if len(v) > 128:
                raise BadHeader(f"UNIQUE_ID {len(v)} bytes, max 128")
            out["unique_id"] = v.hex()
        elif t == TYPE_SSL:
            out["ssl"] = parse_ssl(v)
        elif t == TYPE_NETNS:
            out["netns"] = _text("NETNS", v, ascii_only=True)
        elif t == TYPE_CLIENT_ID:
            out["client_id"] = _text("client id (0xE0)", v)
        elif 0xE1 <= t <= 0xEF or 0xF0 <= t <= 0xF7:
            pass  # someone else's application or experimental TLV: skip
        else:
            raise BadHeader(f"unknown TLV type 0x{t:02x}")
    return out


def parse_ssl(v):
    if len(v) < 5:
        raise BadHeader(f"SSL TLV {len(v)} bytes, want at least 5")
    client, verify = v[0], int.from_bytes(v[1:5], "big")
    if client & ~0x07:
        raise BadHeader(f"SSL client flags 0x{client:02x} has undefined bits")
    ssl = {"client": client, "verify": verify}
    for t, sv, _ in _tlvs(v[5:], "SSL sub-TLVs"):
        name = SUB_NAMES.get(t)
        if name is None:
            raise BadHeader(f"unknown SSL sub-TLV 0x{t:02x}")
        if name in ssl:
            raise BadHeader(f"duplicate SSL sub-TLV {name}")
        ssl[name] = _text(f"SSL {name}", sv, ascii_only=(name != "cn"))
    if client & CLIENT_SSL and "version" not in ssl:
        raise BadHeader("PP2_CLIENT_SSL set but no SSL_VERSION sub-TLV")
    return ssl


def hello(info):
    ssl = info.get("ssl", {})
    return (f"hello {info.get('client_id', '-')} from {info.get('src', '-')} "
            f"over {ssl.get('version', '-')}\n")


class Server:
    def __init__(self, args):
        self.args = args
        self.log = open(args.log, "a", buffering=1) if args.log else None

    def record(self, rec):
        if self.log:
            self.log.write(json.dumps(rec, sort_keys=True) + "\n")

    async def read_header(self, reader):
        try:
            fixed = await reader.readexactly(16)
        except asyncio.IncompleteReadError as e:
            raise BadHeader(f"connection closed after {len(e.partial)} header byte(s)")
        if fixed[:12] != SIG:
            raise BadHeader("no PROXY v2 signature")
        ln = int.from_bytes(fixed[14:16], "big")
        try:
            rest = await reader.readexactly(ln)
        except asyncio.IncompleteReadError as e:
            raise BadHeader(f"header says {ln} more bytes, connection closed after "
                            f"{len(e.partial)}")
        return fixed + rest

    async def handle(self, reader, writer):
        peer = writer.get_extra_info("peername")
        try:
            hdr = await asyncio.wait_for(self.read_header(reader), self.args.timeout)
            info = parse_v2(hdr)
            if self.args.require_client_cert:
                ssl = info.get("ssl")
                if not ssl or not ssl["client"] & CLIENT_CERT_CONN or ssl["verify"] != 0:
                    raise BadHeader("no verified client certificate in the SSL TLV")
                if "client_id" not in info:
                    raise BadHeader("no client id TLV (0xE0)")
        except (BadHeader, asyncio.TimeoutError) as e:
            reason = str(e) or "header not complete within timeout"
            self.record({"peer": f"{peer[0]}:{peer[1]}", "error": reason})
            try:
                writer.write(f"ERR {reason}\n".encode())
                await writer.drain()
            except ConnectionError:
                pass
            writer.close()
            return
        info["peer"] = f"{peer[0]}:{peer[1]}"
        info["header_len"] = len(hdr)
        self.record(info)
        line = hello(info).encode()
        try:
            if self.args.mode == "http":
                await self.http(reader, writer, line)
            else:
                if self.args.mode == "hello":
                    writer.write(line)
                while True:
                    data = await reader.read(65536)
                    if not data:
                        break
                    writer.write(data)
                    await writer.drain()
                if writer.can_write_eof():
                    writer.write_eof()
        except ConnectionError:
            pass
        finally:
            writer.close()

    async def http(self, reader, writer, body):
        req = b""
        while b"\r\n\r\n" not in req and b"\n\n" not in req:
            data = await reader.read(4096)
            if not data or len(req) > 65536:
                return
            req += data
        writer.write(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n"
                     b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body)
        await writer.drain()


async def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--listen", default="127.0.0.1:0", help="HOST:PORT (port 0: any)")
    ap.add_argument("--ready-file", help="write the bound port here once listening")
    ap.add_argument("--mode", choices=("hello", "echo", "http"), default="hello")
    ap.add_argument("--require-client-cert", action="store_true",
                    help="reject a header without a verified client cert and client id")
    ap.add_argument("--log", help="append one JSON line per connection")
    ap.add_argument("--timeout", type=float, default=5.0,
                    help="seconds for the whole header to arrive")
    args = ap.parse_args()
    host, _, port = args.listen.rpartition(":")
    if not host or not port.isdigit():
        ap.error(f"--listen '{args.listen}': want HOST:PORT")
    srv = Server(args)
    server = await asyncio.start_server(srv.handle, host.strip("[]"), int(port))
    bound = server.sockets[0].getsockname()[1]
    if args.ready_file:
        tmp = args.ready_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(f"{bound}\n")
        os.rename(tmp, args.ready_file)
    print(f"pp2_upstream: listening on {host}:{bound} mode {args.mode}", file=sys.stderr)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for s in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(s, stop.set)
    async with server:
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(main())
