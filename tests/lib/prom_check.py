#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""tests/lib/prom_check.py - a strict checker of Prometheus text exposition
format 0.0.4, as mtlsgw writes it (prometheus_client is not packaged for
Debian 12 and promtool comes only with the whole Prometheus server).

Usage:
  prom_check.py FILE [EXPR]     parse FILE strictly; then EXPR (Python) must
                                hold over m, s(), ls(), hist() (below)
  prom_check.py --names FILE    parse, then print every sample name, one a line

Checked, beyond the format's grammar (names, labels, escapes, values):
  - "# HELP" at most and "# TYPE" exactly once per family, TYPE before its
    samples; no other comment lines; a family's samples are contiguous;
  - no duplicate series; every name starts with mtlsgw_;
  - counters end in _total; histograms have only <f>_bucket (with le),
    <f>_sum and <f>_count, and per series the buckets in ascending le,
    cumulative, ending with le="+Inf" equal to _count, with a _sum.
Exit status 0 when everything holds, 1 otherwise (the reason on stderr).
"""
import math
import re
import sys

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\\\|\\"|\\n)*)"'
VALUE = r"(-?[0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?|[-+]Inf|NaN)"
SAMPLE = re.compile(r"^(%s)(?:\{(%s(?:,%s)*)\})? %s$" % (NAME, LABEL, LABEL, VALUE))
HELP = re.compile(r"^# HELP (%s) ((?:[^\\\n]|\\\\|\\n)*)$" % NAME)
TYPE = re.compile(r"^# TYPE (%s) (counter|gauge|histogram|summary|untyped)$" % NAME)
HIST_SUFFIXES = ("_bucket", "_sum", "_count")


class Bad(Exception):
    pass


def unescape(v):
    return re.sub(r"\\(.)", lambda mo: "\n" if mo.group(1) == "n" else mo.group(1), v)


def family_of(name, typed):
    """The family a sample name belongs to (a histogram's suffixes removed)."""
    if name in typed:
        return name
    for suf in HIST_SUFFIXES:
        if name.endswith(suf) and typed.get(name[: -len(suf)]) == "histogram":
            return name[: -len(suf)]
    return None


def parse(text):
    """Returns (samples {(name, frozenset(labels)): value}, types {family: type})."""
    if not text.endswith("\n"):
        raise Bad("no final newline")
    typed, helped, done, m, cur = {}, set(), set(), {}, None
    for no, line in enumerate(text.split("\n")[:-1], 1):
        where = "line %d: %r" % (no, line)
        if line.startswith("#"):
            mo = HELP.match(line)
            if mo:
                if mo.group(1) in helped:
                    raise Bad("HELP twice, " + where)
                if mo.group(1) in typed:
                    raise Bad("HELP after TYPE, " + where)
                helped.add(mo.group(1))
                continue
            mo = TYPE.match(line)
            if not mo:
                raise Bad("not a HELP or TYPE line, " + where)
            n, t = mo.groups()
            if n in typed:
                raise Bad("TYPE twice, " + where)
            if t == "counter" and not n.endswith("_total"):
                raise Bad("counter without _total, " + where)
            if t in ("summary", "untyped"):
                raise Bad("mtlsgw writes no %s, %s" % (t, where))
            typed[n] = t
            continue
        mo = SAMPLE.match(line)
        if not mo:
            raise Bad("not a sample line, " + where)
        name = mo.group(1)
        if not name.startswith("mtlsgw_"):
            raise Bad("name outside mtlsgw_, " + where)
        fam = family_of(name, typed)
        if fam is None:
            raise Bad("sample before its TYPE, " + where)
        if fam in done:
            raise Bad("family not contiguous, " + where)
        if cur is not None and cur != fam:
            done.add(cur)
        cur = fam
        labels = {}
        if mo.group(2):
            for k, v in re.findall(LABEL, mo.group(2)):
                if k in labels:
                    raise Bad("label twice, " + where)
                if k.startswith("__"):
                    raise Bad("reserved label name, " + where)
                labels[k] = unescape(v)
        if typed[fam] == "histogram":
            if name == fam:
                raise Bad("histogram sample without _bucket/_sum/_count, " + where)
            if (name == fam + "_bucket") != ("le" in labels):
                raise Bad("le belongs on _bucket and only there, " + where)
        elif "le" in labels:
            raise Bad("le outside a histogram, " + where)
        key = (name, frozenset(labels.items()))
        if key in m:
            raise Bad("duplicate series, " + where)
        m[key] = float(mo.groups()[-1].replace("Inf", "inf"))
    for fam, t in typed.items():
        if t == "histogram":
            check_hist(fam, m)
    return m, typed


def check_hist(fam, m):
    series = {}
    for (n, l), v in m.items():
        d = dict(l)
        if n == fam + "_bucket":
            le = d.pop("le")
            series.setdefault(frozenset(d.items()), {}).setdefault("b", []).append(
                (float(le.replace("Inf", "inf")), v))
        elif n in (fam + "_sum", fam + "_count"):
            series.setdefault(l, {})[n[len(fam) + 1:]] = v
    for lab, se in series.items():
        what = "%s%s" % (fam, dict(lab))
        if set(se) != {"b", "sum", "count"}:
            raise Bad("histogram %s lacks %s" % (what, {"b", "sum", "count"} - set(se)))
        bs = se["b"]  # in text order
        if [b for b, _ in bs] != sorted(b for b, _ in bs) or len(set(b for b, _ in bs)) != len(bs):
            raise Bad("histogram %s: le not ascending" % what)
        if bs[-1][0] != math.inf:
            raise Bad("histogram %s: last bucket is not +Inf" % what)
        if any(b2[1] < b1[1] for b1, b2 in zip(bs, bs[1:])):
            raise Bad("histogram %s: buckets not cumulative" % what)
        if bs[-1][1] != se["count"]:
            raise Bad("histogram %s: +Inf bucket %g != _count %g" % (what, bs[-1][1], se["count"]))
        if se["sum"] < 0:
            raise Bad("histogram %s: negative _sum" % what)


def main(argv):
    names = argv[1:2] == ["--names"]
    if names:
        argv = argv[1:]
    text = open(argv[1]).read()
    try:
        m, typed = parse(text)
    except Bad as e:
        print("%s: %s" % (argv[1], e), file=sys.stderr)
        return 1
    if names:
        for n in sorted(set(n for n, _ in m)):
            print(n)
        return 0
    if len(argv) < 3:
        return 0

    def s(metric_, **want):
        """Sum of the samples of metric_ whose labels include want."""
        return sum(v for (n, l), v in m.items()
                   if n == metric_ and all(dict(l).get(k) == x for k, x in want.items()))

    def ls(name):
        """The label dicts of name's samples."""
        return [dict(l) for (n, l) in m if n == name]

    def hist(fam, **want):
        """{le: cumulative count} of one histogram series (le as text)."""
        out = {}
        for (n, l), v in m.items():
            d = dict(l)
            if n == fam + "_bucket" and all(d.get(k) == x for k, x in want.items()):
                out[d["le"]] = v
        return out

    env = {"m": m, "typed": typed, "s": s, "ls": ls, "hist": hist}
    if not eval(argv[2], env):
        print("%s: false: %s" % (argv[1], argv[2]), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
