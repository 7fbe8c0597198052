#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""A cfssl stand-in that answers like `cfssl serve` but signs what a broken or
hostile CA would, so the checks on what cfssl returns can be tested.

Usage: cfssl_fake.py PORT DIR. DIR holds cfssl-ca.pem/.key (the root /info
reports) and cfssl-ca2.pem/.key (another root). A request without hosts (an
issuer request) gets a plain CA:FALSE certificate, so the backend signs
leaves through cfssl; with hosts, the request's profile picks the leaf:
  good   URI SAN = the host, CA:FALSE, 1 day, signed by cfssl-ca
  ca     the same but CA:TRUE
  long   the same but 3 days
  other  the same but signed by cfssl-ca2
  wrongid  URI SAN spiffe://example.org/someone-else
Loopback only. The openssl CLI signs (no Python crypto module needed)."""
import http.server
import json
import os
import subprocess
import sys
import tempfile

PORT, DIR = int(sys.argv[1]), sys.argv[2]


def sign(csr, mode, host):
    root = "cfssl-ca2" if mode == "other" else "cfssl-ca"
    days = "3" if mode == "long" else "1"
    ext = "basicConstraints=critical,CA:%s\n" % ("TRUE" if mode == "ca" and host else "FALSE")
    if host:
        uri = "spiffe://example.org/someone-else" if mode == "wrongid" else host
        ext += "subjectAltName=URI:%s\n" % uri
    with tempfile.TemporaryDirectory() as t:
        with open(os.path.join(t, "r.csr"), "w") as f:
            f.write(csr)
        with open(os.path.join(t, "x.ext"), "w") as f:
            f.write(ext)
        subprocess.run(
            ["openssl", "x509", "-req", "-in", os.path.join(t, "r.csr"),
             "-CA", os.path.join(DIR, root + ".pem"), "-CAkey", os.path.join(DIR, root + ".key"),
             "-set_serial", str(int.from_bytes(os.urandom(8), "big")), "-days", days,
             "-extfile", os.path.join(t, "x.ext"), "-out", os.path.join(t, "c.pem")],
            check=True, capture_output=True)
        with open(os.path.join(t, "c.pem")) as f:
            return f.read()


class H(http.server.BaseHTTPRequestHandler):
    def answer(self, cert):
        body = json.dumps({"success": True, "result": {"certificate": cert},
                           "errors": [], "messages": []}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        req = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.path == "/api/v1/cfssl/info":
            with open(os.path.join(DIR, "cfssl-ca.pem")) as f:
                return self.answer(f.read())
        hosts = req.get("hosts") or [None]
        self.answer(sign(req["certificate_request"], req.get("profile", "good"), hosts[0]))

    def log_message(self, *a):
        pass


http.server.HTTPServer(("127.0.0.1", PORT), H).serve_forever()
