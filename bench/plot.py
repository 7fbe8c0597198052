#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
# bench/plot.py - PNG plots of bench/run --json rows (Debian's
# python3-matplotlib: run it with /usr/bin/python3).
#
#   bench/plot.py --out DIR ROWS.jsonl...
#
# Draws what the rows hold, as bench/run's tables give it: handshakes/s
# the median over rounds, handshakes per server CPU-second over all rounds
# (every round's handshakes over every round's CPU seconds):
#   concurrency.png  handshake rows (no hsm_delay_us): handshakes/s and
#                    handshakes per server CPU-second (whole process) against
#                    the client's concurrency, one line per target
#                    (bench/run --concurrency 1,4,16,64)
#   hsm-delay.png    rows of bench/run --hsm-delay: handshakes/s against the
#                    HSM's delay per signature, one line per target
# Record-path rows (echo_bytes > 0) and the extra rows (resumed, paced,
# idle: labels such as mtlsgw/80%) are left out, so the whole --json file of
# a run can be given. Prints the files written;
# exits 1 when the rows gave nothing to draw.
import argparse
import json
import os
import statistics
import sys

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402

COLORS = {"mtlsgw": "tab:blue", "nginx-hsm": "tab:orange", "nginx-pem": "tab:gray"}


def series(rows, xkey, ykey):
    """{label: [(x, ykey(that label's rows at x))]}, x ascending"""
    by = {}
    for r in rows:
        by.setdefault(r["label"], {}).setdefault(r[xkey], []).append(r)
    return {lb: sorted((x, ykey(rs)) for x, rs in xs.items()) for lb, xs in by.items()}


def hs_per_s(rs):
    """the median over rounds, as bench/run's tables"""
    return statistics.median(r["handshakes_per_s"] for r in rs)


def per_cpu(rs):
    """every round's handshakes over every round's server CPU seconds, as
    bench/run's hs/CPU-s column (a median of per-round ratios differs)"""
    cpu = sum(r.get("server_cpu_s", 0) for r in rs)
    return sum(r["connections_ok"] for r in rs) / cpu if cpu > 0 else float("nan")


def draw(ax, data, xlabel, ylabel, logx):
    for label in sorted(data, key=lambda lb: (lb != "mtlsgw", lb)):
        pts = data[label]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=label,
                color=COLORS.get(label))
    if logx:
        ax.set_xscale("log", base=2)
        xs = sorted({p[0] for pts in data.values() for p in pts})
        ax.set_xticks(xs, [str(x) for x in xs])
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    ax.legend()


def main():
    ap = argparse.ArgumentParser(description="PNG plots of bench/run --json rows")
    ap.add_argument("--out", required=True, help="directory for the PNG files")
    ap.add_argument("rows", nargs="+", help="JSON lines written by bench/run --json")
    a = ap.parse_args()
    rows = []
    for f in a.rows:
        with open(f) as fh:
            rows += [json.loads(l) for l in fh if l.strip()]
    rows = [r for r in rows if r.get("echo_bytes", 0) == 0 and r.get("connections_ok", 0) > 0
            and "/" not in r["label"]]
    os.makedirs(a.out, exist_ok=True)
    written = []

    hs = [r for r in rows if "hsm_delay_us" not in r]
    if hs:
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
        draw(ax1, series(hs, "concurrency", hs_per_s),
             "concurrent clients", "handshakes/s", True)
        draw(ax2, series(hs, "concurrency", per_cpu), "concurrent clients",
             "handshakes per server CPU-second", True)
        ax1.set_title("full mTLS handshakes (TLS 1.3, P-256)")
        ax2.set_title("per CPU-second of the whole server process")
        fig.tight_layout()
        written.append(os.path.join(a.out, "concurrency.png"))
        fig.savefig(written[-1], dpi=100)
        plt.close(fig)

    hd = [r for r in rows if "hsm_delay_us" in r]
    if hd:
        fig, ax = plt.subplots(figsize=(6.5, 4.2))
        draw(ax, series(hd, "hsm_delay_us", hs_per_s),
             "HSM delay per signature (ms)", "handshakes/s", False)
        ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v / 1000:g}"))
        conc = sorted({r["concurrency"] for r in hd})
        ax.set_title("a slow HSM, %s concurrent clients" % ",".join(map(str, conc)))
        fig.tight_layout()
        written.append(os.path.join(a.out, "hsm-delay.png"))
        fig.savefig(written[-1], dpi=100)
        plt.close(fig)

    for w in written:
        print(f"plot: {w}")
    if not written:
        print("plot: nothing to draw in " + ", ".join(a.rows), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
