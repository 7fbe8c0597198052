#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""tests/lib/dash_check.py DASHBOARD.json NAMES - every metric a Grafana
dashboard queries exists: each PromQL expression (panel targets and
template variable queries) is searched for metric names outside string
literals, each of which must be one of NAMES (a file of sample names, one
a line: prom_check.py --names of a live gateway's /metrics), and for
{__name__=~"RE"} matchers, each of which must match at least one of them.
Prints what it checked; exit 1 naming what is missing."""
import json
import re
import sys

STRING = re.compile(r'"((?:[^"\\]|\\.)*)"')
NAME_RE = re.compile(r'__name__\s*=~\s*"((?:[^"\\]|\\.)*)"')
METRIC = re.compile(r"(?<![A-Za-z0-9_:])(mtlsgw_[A-Za-z0-9_:]*)")


def exprs(node):
    """Every PromQL text in the dashboard: targets' expr, variables' queries."""
    if isinstance(node, dict):
        for k, v in node.items():
            if k in ("expr", "definition") and isinstance(v, str):
                yield v
            elif k == "query" and isinstance(v, str) and "(" in v:
                yield v
            elif k == "query" and isinstance(v, dict) and isinstance(v.get("query"), str):
                yield v["query"]
            else:
                yield from exprs(v)
    elif isinstance(node, list):
        for v in node:
            yield from exprs(v)


def main(dash_path, names_path):
    dash = json.load(open(dash_path))
    live = set(l.strip() for l in open(names_path) if l.strip())
    used, regexes, missing = set(), set(), []
    for panel in dash.get("panels", []):
        if not panel.get("targets"):
            missing.append("panel %r has no query" % panel.get("title"))
    for e in exprs(dash):
        regexes.update(NAME_RE.findall(e))
        used.update(METRIC.findall(STRING.sub('""', e)))
    for n in sorted(used):
        if n not in live:
            missing.append("metric %s" % n)
    for r in sorted(regexes):
        if not any(re.fullmatch(r, n) for n in live):
            missing.append("__name__=~%r matches no metric" % r)
    if not used:
        missing.append("no mtlsgw_ metric used at all")
    if missing:
        print("%s: %s" % (dash_path, "; ".join(missing)), file=sys.stderr)
        return 1
    print("%d metric names and %d name regexes of %s all in /metrics" % (len(used), len(regexes), dash_path))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
