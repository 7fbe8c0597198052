#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
# bench/profile.py - where a server's CPU goes per handshake, from a
# `perf record -e cpu-clock -p PID` of a bench/run counted run.
#
#   bench/profile.py summarize PERF_DATA HANDSHAKES   -> one JSON object
#   bench/profile.py table ROWS.jsonl                 -> the text breakdown
#
# summarize reads the samples (`perf script`; self time only, no call
# graphs: each sample is charged to the function it hit), sums their
# periods (cpu-clock: nanoseconds on a CPU) and divides by the handshakes of
# the run: microseconds of server CPU per handshake, by DSO group, by thread
# and for the top symbols. table prints the rows of bench/run --json that
# carry a "profile" (one column per target and concurrency) side by side.
#
# DSO groups: libcrypto, libssl, libc/malloc (libc, ld.so, libm, allocators),
# kernel (system calls, TCP for nginx, the tap for mtlsgw, page faults; also
# the vDSO), DPDK (librte_*), own code (the mtlsgw or nginx executable),
# softhsm/libp11 (SoftHSM, libp11, the pkcs11 engine, the p11 delay module;
# SoftHSM's own signing math runs in libcrypto and counts there), other.
# Symbols perf cannot name (static functions of a stripped library, such as
# libcrypto's P-256 assembly) show as "? (DSO)".
import json
import os
import re
import subprocess
import sys

GROUPS = ["libcrypto", "libssl", "libc/malloc", "kernel", "DPDK", "own code", "softhsm/libp11",
          "other"]
LINE = re.compile(r"^\s*(?P<comm>.*?)\s+(?P<tid>\d+)\s+(?P<period>\d+)\s+(?P<ip>[0-9a-f]+)\s+"
                  r"(?P<sym>.*) \((?P<dso>[^()]*)\)\s*$")


def group(dso, ip):
    b = os.path.basename(dso)
    if dso.startswith("[kernel") or dso in ("[vdso]", "[vsyscall]") or ip >= 0xFFFF800000000000:
        return "kernel"
    if b.startswith("libcrypto.so"):
        return "libcrypto"
    if b.startswith("libssl.so"):
        return "libssl"
    if re.match(r"(libc|libm|libpthread|libdl|librt|ld-linux[-\w]*|libjemalloc|libtcmalloc\w*)"
                r"\.so", b):
        return "libc/malloc"
    if b.startswith("librte_"):
        return "DPDK"
    if re.match(r"(libsofthsm2|libp11|pkcs11|libpkcs11|libgw_p11delay)\b", b):
        return "softhsm/libp11"
    if b in ("mtlsgw", "nginx") or b.startswith("libgw_"):
        return "own code"
    return "other"


def summarize(data, handshakes):
    out = subprocess.run(["perf", "script", "-i", data, "-F", "comm,tid,period,ip,sym,dso"],
                         capture_output=True, text=True, check=True).stdout
    groups = dict.fromkeys(GROUPS, 0)
    syms, threads = {}, {}
    samples = total = 0
    for line in out.splitlines():
        m = LINE.match(line)
        if not m:
            continue
        ns, ip, dso = int(m["period"]), int(m["ip"], 16), m["dso"]
        samples += 1
        total += ns
        g = group(dso, ip)
        groups[g] += ns
        sym = m["sym"] if m["sym"] != "[unknown]" else "?"
        key = (sym, os.path.basename(dso) if dso != "unknown" else "?", g)
        syms[key] = syms.get(key, 0) + ns
        # lcore-worker-1, gw-hsm-0, eal-intr-thread ...: digits of a pool fold
        t = re.sub(r"\d+$", "N", m["comm"].strip())
        threads[t] = threads.get(t, 0) + ns
    hs = max(int(handshakes), 1)
    us = lambda ns: round(ns / 1e3 / hs, 2)
    top = sorted(syms.items(), key=lambda kv: -kv[1])[:15]
    return {"samples": samples, "handshakes": int(handshakes), "us_per_hs": us(total),
            "groups_us_per_hs": {g: us(v) for g, v in groups.items()},
            "threads_us_per_hs": {t: us(v) for t, v in sorted(threads.items(), key=lambda kv: -kv[1])},
            "top": [{"sym": s, "dso": d, "group": g, "us_per_hs": us(v),
                     "pct": round(100 * v / total, 1) if total else 0} for (s, d, g), v in top]}


def table(path):
    rows = [json.loads(l) for l in open(path) if l.strip()]
    rows = [r for r in rows if r.get("profile")]
    if not rows:
        return
    concs = {r.get("concurrency") for r in rows}
    name = lambda r: r["label"] + (f"@{r.get('concurrency')}" if len(concs) > 1 else "")
    # one column per target (and concurrency); several rounds: the last one
    cols = {}
    for r in rows:
        cols[name(r)] = r
    w = max(11, *(len(n) for n in cols))
    print()
    print("profile: microseconds of server CPU per handshake (perf record -e cpu-clock, the whole "
          "server process, self time by DSO group)")
    print(f"{'':<16}" + "".join(f" {n:>{w}}" for n in cols))
    for g in GROUPS:
        print(f"{g:<16}" + "".join(f" {r['profile']['groups_us_per_hs'][g]:>{w}.1f}"
                                   for r in cols.values()))
    print(f"{'total sampled':<16}" + "".join(f" {r['profile']['us_per_hs']:>{w}.1f}"
                                            for r in cols.values()))
    # the sampled total against the CPU bench/run read from /proc: coverage
    print(f"{'process CPU':<16}" + "".join(
        f" {1e6 * r['server_cpu_s'] / max(r['connections_ok'], 1):>{w}.1f}" for r in cols.values()))
    print(f"{'samples':<16}" + "".join(f" {r['profile']['samples']:>{w}}" for r in cols.values()))
    for n, r in cols.items():
        p = r["profile"]
        print(f"{n} by thread: " + ", ".join(f"{t} {v:.1f}" for t, v in p["threads_us_per_hs"].items()))
        print(f"{n} top symbols (us/handshake, % of samples):")
        for s in p["top"]:
            print(f"  {s['us_per_hs']:8.2f} {s['pct']:5.1f}%  {s['sym'][:60]:<60} {s['dso']}")


def main(argv):
    if len(argv) == 4 and argv[1] == "summarize":
        print(json.dumps(summarize(argv[2], argv[3])))
    elif len(argv) == 3 and argv[1] == "table":
        table(argv[2])
    else:
        print("usage: profile.py summarize PERF_DATA HANDSHAKES | table ROWS.jsonl",
              file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
