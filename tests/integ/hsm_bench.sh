#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# mtlsgw-bench hsm runs end to end (its own throwaway token, and a key given
# with --key) and prints its table. Counts only: no timing is asserted here.
. "$(dirname "$0")/../lib/common.sh"

B=$MTLSGW_BENCH
# rows of the table: signer, threads, a positive signs/s
rows() {
	grep -cE "^(openssl in-memory|pkcs11 engine \(hsm\)) +[0-9]+ +[1-9][0-9]* " "$1" || true
}

mkdir "$T/tmp"
TMPDIR=$T/tmp "$B" hsm --seconds 0.3 --threads 2 >"$T/own" 2>"$T/own.err" ||
	gw_fail "bench: $(cat "$T/own.err")"
[ -z "$(ls -A "$T/tmp")" ] || gw_fail "bench left its token behind: $(ls -A "$T/tmp")"
[ "$(rows "$T/own")" -eq 4 ] || gw_fail "bench table: $(cat "$T/own")"
grep -q 'ec-p256 signatures' "$T/own" || gw_fail "bench header: $(cat "$T/own")"
gw_ok "mtlsgw-bench hsm on its own token: 4 rows with signatures/s, token removed after"

gw_token gw
uri=$("$MTLSGW_CTL" hsm keygen --token gw --pin-file "$T/pin" --label b --type rsa-2048)
"$B" hsm --seconds 0.3 --threads 2 --type rsa-2048 --key "$uri" --pin-file "$T/pin" >"$T/given"
[ "$(rows "$T/given")" -eq 4 ] && grep -q "key $uri" "$T/given" || gw_fail "bench --key: $(cat "$T/given")"
gw_ok "mtlsgw-bench hsm with --key (rsa-2048)"

gw_expect_fail "--key needs --pin-file" "$B" hsm --key "$uri"
gw_expect_fail "bad --threads" "$B" hsm --threads 0
gw_done
