#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""A cfssl stand-in that breaks every exchange: it reads the first bytes of a
request, then resets the connection (SO_LINGER 0) while the client is still
sending. Usage: cfssl_close.py PORT COUNT_FILE; COUNT_FILE holds how many
connections it broke (0 once it listens)."""
import socket
import struct
import sys

port, count_file = int(sys.argv[1]), sys.argv[2]
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", port))
s.listen(8)
n = 0
with open(count_file, "w") as f:
    f.write("0\n")
while True:
    c, _ = s.accept()
    c.recv(16)
    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    c.close()
    n += 1
    with open(count_file, "w") as f:
        f.write("%d\n" % n)
