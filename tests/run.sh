#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The whole test suite: installs what it needs, then builds and tests twice,
# a normal (gcc, -Werror) build and an ASan+UBSan build (clang) that also
# builds the libFuzzer targets and runs each briefly on its seed corpus;
# between them, the release build (default options) must compile.
#
#   bash tests/run.sh            # everything
#   GW_QUICK=1 bash tests/run.sh # the normal build only
# Ends with one line "tests: N passed, N failed".
set -euo pipefail
cd "$(dirname "$0")/.."
src=$(pwd)

bash tools/deps.sh

# tests/integ/deb.sh installs and purges the mtlsgw package: in CI (a
# machine for the run) yes, on a developer's box only if asked (GW_TEST_DEB=1)
if [ "${CI:-}" = true ]; then
	export GW_TEST_DEB=1
fi

pass=0
fail=0
count() { # count BUILD_DIR: add meson's verdicts from testlog.json
	read -r p f < <(/usr/bin/python3 - "$1/meson-logs/testlog.json" <<'PY'
import json, sys
p = f = 0
for line in open(sys.argv[1]):
    r = json.loads(line)["result"]
    if r in ("OK", "EXPECTEDFAIL"):
        p += 1
    elif r != "SKIP":
        f += 1
print(p, f)
PY
)
	pass=$((pass + p))
	fail=$((fail + f))
}

run_build() { # run_build DIR [meson setup args...]
	local dir=$1
	shift
	# -Dtest_hooks=true: the fault injection the ca-crash tests need, which a
	# release build (the default options) does not have
	if [ ! -f "$dir/build.ninja" ]; then
		meson setup "$dir" -Dtest_hooks=true "$@" >/dev/null
	else
		meson configure "$dir" -Dtest_hooks=true >/dev/null
	fi
	ninja -C "$dir"
	meson test -C "$dir" --print-errorlogs --num-processes 2 || true
	count "$dir"
}

echo "== normal build (gcc)"
run_build build

if [ "${GW_QUICK:-0}" != 1 ]; then
	# what a user, the demo and the package build: the default options,
	# without the test hooks, which compiles code the two test builds do
	# not (an #ifdef GW_TEST_HOOKS away). It must build, -Werror, too.
	echo "== release build (default options)"
	if { [ -f build-release/build.ninja ] || meson setup build-release >/dev/null; } &&
		ninja -C build-release >build-release/ninja.log 2>&1; then
		echo "ok - release build"
		pass=$((pass + 1))
	else
		echo "FAIL - release build (default options)"
		tail -30 build-release/ninja.log 2>/dev/null || true
		fail=$((fail + 1))
	fi
	echo "== sanitizer build (clang, ASan+UBSan, fuzz targets)"
	CC=clang run_build build-asan -Db_sanitize=address,undefined -Db_lundef=false -Dfuzz=true
	echo "== fuzz targets, briefly"
	# one target per CPU at a time (each is single-threaded), each with
	# its own corpus copy; results read back in name order
	fuzz_one() { # fuzz_one TARGET : its log in build-asan/NAME.log, its exit in NAME.rc
		local name corpus seeds rc=0
		name=$(basename "$1")
		corpus=$(mktemp -d)
		seeds="$src/tests/fuzz/${name%_fuzz}"
		[ -d "$seeds" ] && cp -r "$seeds"/. "$corpus"/
		"$1" -max_total_time="${GW_FUZZ_SECONDS:-20}" -rss_limit_mb=2048 "$corpus" \
			>"build-asan/$name.log" 2>&1 || rc=$?
		rm -rf "$corpus"
		echo "$rc" >"build-asan/$name.rc"
	}
	rm -f build-asan/*_fuzz.rc
	targets=$(find build-asan -name '*_fuzz' -type f -executable | sort)
	for f in $targets; do
		while [ "$(jobs -rp | wc -l)" -ge "$(nproc)" ]; do
			wait -n || true
		done
		fuzz_one "$f" &
	done
	wait
	for f in $targets; do
		name=$(basename "$f")
		if [ "$(cat "build-asan/$name.rc" 2>/dev/null)" = 0 ]; then
			echo "ok - fuzz $name"
			pass=$((pass + 1))
		else
			echo "FAIL - fuzz $name (see build-asan/$name.log)"
			tail -30 "build-asan/$name.log"
			fail=$((fail + 1))
		fi
	done
fi

echo "tests: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
