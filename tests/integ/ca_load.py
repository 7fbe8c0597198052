#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""ca_load.py - a kernel TLS client load for the CA rotation test.

Until the file --stop exists: new connections one after another (TLS
handshake with the client certificate, one echoed line, close), plus one
long-lived connection opened at the start that echoes a line per round, so a
rotation that dropped or re-handshook an open connection shows. The server's
certificate is verified against --ca only (the roots this client trusts).
On exit, writes {"ok", "failed", "reasons", "persistent_ok", "persistent_failed"}
to --out and exits 0 (the test judges the numbers).

--once: one handshake and echo; exit 0 if it worked, 1 with the reason.
"""
import argparse
import json
import os
import socket
import ssl
import sys
import time


def ctx_for(a):
    c = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    c.check_hostname = False  # the gateway's identity is a SPIFFE ID, not a host name
    c.verify_mode = ssl.CERT_REQUIRED
    c.load_verify_locations(a.ca)
    c.load_cert_chain(a.cert, a.key)
    # no session reuse: every connection is a full handshake against the current trust
    c.options |= ssl.OP_NO_TICKET
    return c


def one(c, host, port, line=b"ping\n"):
    with socket.create_connection((host, port), timeout=5) as s:
        with c.wrap_socket(s) as t:
            t.sendall(line)
            got = b""
            while not got.endswith(b"\n"):
                d = t.recv(4096)
                if not d:
                    raise ConnectionError("closed before the echo")
                got += d
            if got != line:
                raise ValueError("echo mismatch")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--server", required=True)
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--ca", required=True)
    p.add_argument("--stop")
    p.add_argument("--out")
    p.add_argument("--progress", help="file rewritten with the count of good handshakes")
    p.add_argument("--once", action="store_true")
    a = p.parse_args()
    host, port = a.server.rsplit(":", 1)
    port = int(port)
    c = ctx_for(a)
    if a.once:
        try:
            one(c, host, port)
        except Exception as e:  # the reason is the test's evidence
            print(f"{type(e).__name__}: {e}")
            return 1
        print("ok")
        return 0
    st = {"ok": 0, "failed": 0, "reasons": {}, "persistent_ok": 0, "persistent_failed": 0}
    keep = None
    try:
        s = socket.create_connection((host, port), timeout=5)
        keep = c.wrap_socket(s)
    except Exception as e:
        st["persistent_failed"] += 1
        st["reasons"]["persistent open: " + str(e)] = 1
    while not os.path.exists(a.stop):
        try:
            one(c, host, port)
            st["ok"] += 1
            if a.progress:
                with open(a.progress + ".tmp", "w") as f:
                    f.write(str(st["ok"]))
                os.replace(a.progress + ".tmp", a.progress)
        except Exception as e:
            st["failed"] += 1
            r = f"{type(e).__name__}: {e}"
            st["reasons"][r] = st["reasons"].get(r, 0) + 1
        if keep is not None:
            try:
                keep.sendall(b"keep\n")
                got = b""
                while not got.endswith(b"\n"):
                    d = keep.recv(4096)
                    if not d:
                        raise ConnectionError("closed")
                    got += d
                st["persistent_ok"] += 1
            except Exception as e:
                st["persistent_failed"] += 1
                st["reasons"]["persistent: " + str(e)] = 1
                keep = None
        time.sleep(0.02)
    if keep is not None:
        keep.close()
    with open(a.out, "w") as f:
        json.dump(st, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
