#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The code follows the root .clang-format (DPDK's style): every C file and
# header tracked by git is already formatted. Prints the first differences.
set -euo pipefail
cd "${GW_SRC:?}"
command -v clang-format >/dev/null || { echo "SKIP: no clang-format"; exit 77; }
bad=0
checked=0
while IFS= read -r f; do
	checked=$((checked + 1))
	if ! out=$(clang-format --dry-run --Werror "$f" 2>&1); then
		bad=$((bad + 1))
		echo "$out" | head -6
	fi
done < <(git ls-files '*.c' '*.h' 2>/dev/null || find . -path ./build\* -prune -o -name '*.[ch]' -print)
echo "format: $((checked - bad)) passed, $bad failed (run clang-format -i on the files above)"
[ "$bad" -eq 0 ]
