#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The config examples in README.md, docs/config.md and docs/operations.md
# still load: every ```yaml block whose first key is one of the config's
# goes through `mtlsgw --check`, a fragment inside a minimal config (a
# dataplane: fragment under dataplane:, a trust: fragment in a listener,
# a top-level section beside a dataplane:, with an hsm: section when it has
# none). The only errors allowed are
# the files an example names that this box lacks (its certificates, its
# PIN file); a key renamed or dropped, a value out of range, a bad
# duration fails the test with the block's place. Blocks of other programs
# (a Prometheus scrape config) are skipped, named. --check runs in a
# namespace of its own with only a loopback: no example's address (an
# etcd endpoint) is ever tried outside it.
. "$(dirname "$0")/../lib/common.sh"

gw_netns
mkdir -p "$T/ex"
"$GW_PY" - "$GW_SRC" "$T/ex" <<'PY' >"$T/blocks" || gw_fail "extracting the examples"
import os, re, sys
src, out = sys.argv[1:3]
TOP = {"dataplane", "listeners", "hsm", "state_dir", "admin", "access_log", "mtls", "cluster"}
BASE = ("dataplane:\n  workers: [1]\n  ports:\n"
        "    - { name: wan, driver: tap, device: mtlsgw0, address: 10.99.0.2/24 }\n")
LISTENER = ("listeners:\n  - name: ex\n    address: 10.99.0.2:443\n    service: tls-echo\n"
            "    tls: { identity: [{ cert: api.chain.pem, key: \"pkcs11:token=gw;object=api\" }] }\n")
def indent(text, n):
    return "".join(" " * n + l if l.strip() else l for l in text.splitlines(True))
n = 0
for doc in ("README.md", "docs/config.md", "docs/operations.md"):
    lines = open(os.path.join(src, doc)).read().splitlines(True)
    i = 0
    while i < len(lines):
        if lines[i].strip() != "```yaml":
            i += 1
            continue
        start, body = i + 1, []
        i += 1
        while i < len(lines) and lines[i].strip() != "```":
            body.append(lines[i])
            i += 1
        text = "".join(body)
        keys = [m.group(1) for m in re.finditer(r"^([A-Za-z_]+):", text, re.M)]
        where = "%s:%d" % (doc, start + 1)
        if not keys:
            print("skip %s (no key)" % where)
            continue
        if keys[0] == "ports":
            cfg = "dataplane:\n  workers: [1]\n" + indent(text, 2)
        elif keys[0] == "trust":
            cfg = BASE + LISTENER + indent(text, 4)
        elif keys[0] in TOP:
            cfg = text if "dataplane" in keys else BASE + text
        else:
            print("skip %s (not mtlsgw's: %s)" % (where, keys[0]))
            continue
        if "hsm" not in keys and "dataplane" not in keys:
            cfg += "hsm: { pin_file: pin }\n"  # a fragment's keys may be in the token
        n += 1
        path = os.path.join(out, "ex%02d.yaml" % n)
        open(path, "w").write(cfg)
        print("check %s %s" % (path, where))
if n == 0:
    sys.exit("no example found")
PY
ok=0
while read -r what path where; do
	[ "$what" = check ] || { echo "# $what $path $where"; continue; }
	rc=0
	gw_in "$MTLSGW" --check --config "$path" >"$path.out" 2>&1 || rc=$?
	bad=$(grep -E "^fail +config:" "$path.out" | grep -v "No such file or directory" || true)
	[ -z "$bad" ] || gw_fail "the example at $where does not load: $bad"
	grep -qE "^(fail|warn|ok|skip) " "$path.out" || gw_fail "the example at $where: --check said: $(tail -3 "$path.out")"
	ok=$((ok + 1))
done <"$T/blocks"
[ "$ok" -ge 8 ] || gw_fail "only $ok examples checked: $(cat "$T/blocks")"
gw_ok "$ok config examples of README.md and docs/ load (only the files they name are missing here)"
gw_done
