#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# test_funclen.sh - functions fit on two screens (tools/funclen.sh, `make
# check-style`; docs/design.md, "Map of shm/"): 80 lines in shm/, 120 in
# tools/, unless the comment says why.  First checks that the checker
# fails on a long function it is shown, and accepts it once its comment
# says why.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/tc-funclen.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fail() { echo "test_funclen: $*" >&2; exit 1; }

# long(NAME, BODY_LINES, COMMENT): a function of BODY_LINES + 4 lines (a
# brace in a comment does not count); short_one is at the limit exactly.
long() {
	printf '/* %s */\nstatic int %s(int x)\n{\n' "$3" "$1"
	for _ in $(seq "$2"); do printf '\tx += 1; /* { */\n'; done
	printf '\treturn x;\n}\n\n'
}
{
	printf 'int proto(int x); /* declared only */\n'
	long short_one 6 "short"
	long long_one 7 "long, and silent about it"
} >"$tmp/a.c"
rc=0
"$root/tools/funclen.sh" -l 10 "$tmp/a.c" >"$tmp/out" || rc=$?
[ "$rc" = 1 ] || fail "an 11-line function over a limit of 10: exit $rc, want 1"
[ "$(cat "$tmp/out")" = "$tmp/a.c:15 long_one 11" ] || fail "report: $(cat "$tmp/out")"
sed -i 's|long, and silent about it|Longer than two screens: one loop|' "$tmp/a.c"
"$root/tools/funclen.sh" -l 10 "$tmp/a.c" >"$tmp/out" || fail "a function that says why still fails"
[ "$(cat "$tmp/out")" = "$tmp/a.c:15 long_one 11 (says why)" ] || fail "report: $(cat "$tmp/out")"

cd "$root"
tools/funclen.sh -l 80 shm/*.c shm/*.h || fail "functions over 80 lines in shm/ (above)"
tools/funclen.sh -l 120 tools/*.c tools/*/*.c || fail "functions over 120 lines in tools/ (above)"
