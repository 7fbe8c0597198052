#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The programs start, answer --version/--help, and refuse bad usage clearly.
. "$(dirname "$0")/../lib/common.sh"

"$MTLSGW" --version | grep -q '^mtlsgw [0-9]' && gw_ok "mtlsgw --version"
"$MTLSGW_CTL" --version | grep -q '^mtlsgw-ctl [0-9]' && gw_ok "mtlsgw-ctl --version"
"$MTLSGW_CTL" --help | grep -q 'usage: mtlsgw-ctl' && gw_ok "mtlsgw-ctl --help"
gw_expect_fail "--config FILE is required" "$MTLSGW"
gw_expect_fail "unknown command 'frobnicate'" "$MTLSGW_CTL" frobnicate
"$MTLSGW_CTL" --help | grep -q '^  hsm ' && gw_ok "mtlsgw-ctl --help lists hsm"
"$MTLSGW_CTL" --help | grep -q '^  pki ' && gw_ok "mtlsgw-ctl --help lists pki"
"$MTLSGW_CTL" hsm --help | grep -q 'keygen' && gw_ok "mtlsgw-ctl hsm --help"
gw_expect_fail "usage: mtlsgw-ctl hsm" "$MTLSGW_CTL" hsm
gw_expect_fail "hsm keygen: --token LABEL is required" "$MTLSGW_CTL" hsm keygen --label x
gw_expect_fail "hsm list: --pin-file needs a value" "$MTLSGW_CTL" hsm list --token gw --pin-file
gw_expect_fail "hsm init: unexpected argument 'extra'" "$MTLSGW_CTL" hsm init --token gw extra
gw_expect_fail "pki: unknown command 'root'" "$MTLSGW_CTL" pki root
# getopt would take an abbreviation: "--so-pin=5678" for "--so-pin-file=5678",
# then read (and name) a file called after the PIN. Only full names count,
# and a PIN given on the command line is never echoed.
for args in "--so-pin=5678" "--so-pin 5678" "--pin=5678"; do
	# shellcheck disable=SC2086
	out=$("$MTLSGW_CTL" hsm init --token gw $args 2>&1) && gw_fail "hsm init $args accepted"
	case "$out" in *5678*) gw_fail "PIN echoed for '$args': $out" ;; esac
	case "$out" in *"never from the command line"*) ;; *) gw_fail "no PIN hint for '$args': $out" ;; esac
	gw_ok "hsm init $args: refused, PIN not echoed"
done
gw_expect_fail "unknown option '--tok=gw'" "$MTLSGW_CTL" hsm list --tok=gw
gw_expect_fail "unknown option '--tok'" "$MTLSGW_CTL" hsm list --tok gw
out=$("$MTLSGW_CTL" trust check --pin=5678 2>&1) && gw_fail "trust check --pin accepted"
case "$out" in *5678*) gw_fail "PIN echoed by trust check: $out" ;; esac
gw_ok "trust check --pin=...: refused, PIN not echoed"
gw_expect_fail "ca roots: unknown option '--conf'" "$MTLSGW_CTL" ca roots --conf x.yaml
gw_expect_fail "status: unknown option '--jsn'" "$MTLSGW_CTL" status --jsn
gw_expect_fail "reload: unknown option '--forse'" "$MTLSGW_CTL" reload --forse
gw_expect_fail "reload: unexpected argument 'now'" "$MTLSGW_CTL" reload now
gw_expect_fail "cannot reach the gateway's admin API at $T/none.sock" \
	"$MTLSGW_CTL" reload --socket "$T/none.sock"

# help_ok WHAT: --help of every command and subcommand is whole: exit 0, ends
# with a newline, its last line and each line of a "commands:" list not cut
# short (ending in ',' '(' '|' '[' '/' '-'), brackets balanced over the text.
help_ok() {
	local f=$T/help.txt
	"$MTLSGW_CTL" "$@" --help >"$f" 2>&1 || gw_fail "$*: --help exited $?: $(cat "$f")"
	[ -s "$f" ] && [ "$(tail -c1 "$f" | od -An -c | tr -d ' ')" = '\n' ] ||
		gw_fail "$*: --help does not end with a newline: $(tail -2 "$f")"
	{ tail -1 "$f"; awk '/^commands:/ { on = 1; next } on' "$f"; } | grep -E '[,(|[/-]$' &&
		gw_fail "$*: --help has a line cut short"
	"$GW_PY" - "$f" <<'EOP' || gw_fail "$*: --help has unbalanced brackets: $(cat "$f")"
import sys
t = open(sys.argv[1]).read()
sys.exit(0 if all(t.count(a) == t.count(b) for a, b in ("()", "[]", "{}")) else 1)
EOP
}
n=0
for g in $("$MTLSGW_CTL" --help | awk '/^commands:/ { on = 1; next } on && NF { print $1 }'); do
	help_ok "$g"
	n=$((n + 1))
	# a group's own commands: the "commands:" list of its --help
	for c in $("$MTLSGW_CTL" "$g" --help | awk '/^commands:/ { on = 1; next } on && NF { print $1 }'); do
		help_ok "$g" "$c"
		n=$((n + 1))
	done
done
[ "$n" -ge 12 ] || gw_fail "only $n commands have --help"
gw_ok "--help of all $n commands and subcommands is whole"
gw_done
