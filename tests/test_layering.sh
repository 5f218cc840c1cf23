#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# test_layering.sh - the files of shm/ call and include one another without
# a cycle (tools/layering.sh, `make layering`; docs/design.md, "Map of
# shm/").  First checks that the checker fails on a cycle it is shown: two
# files that call each other.
set -euo pipefail

: "${BUILDDIR:?BUILDDIR must name the build directory}"
root=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/tc-layering.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fail() { echo "test_layering: $*" >&2; exit 1; }

mkdir -p "$tmp/src" "$tmp/build/src"
printf 'int tc__b(void);\nint tc__a(void) { return tc__b(); }\n' >"$tmp/src/a.c"
printf 'int tc__a(void);\nint tc__b(void) { return tc__a() + 1; }\n' >"$tmp/src/b.c"
printf 'int tc__a(void);\nint tc__c(void) { return tc__a(); }\n' >"$tmp/src/c.c"
for f in a b c; do ${CC:-cc} -c "$tmp/src/$f.c" -o "$tmp/build/src/$f.o"; done
cd "$tmp"
rc=0
"$root/tools/layering.sh" build src >"$tmp/out" 2>"$tmp/err" || rc=$?
[ "$rc" = 1 ] || fail "a cycle a.c <-> b.c: exit $rc, want 1"
grep -q '^CYCLE among:' "$tmp/err" || fail "no CYCLE line for a.c <-> b.c"
grep -q '^  a.c -> b.c$' "$tmp/err" && grep -q '^  b.c -> a.c$' "$tmp/err" ||
	fail "the cycle's edges are not listed"
grep -q 'c.c ->' "$tmp/err" && fail "c.c is not on the cycle"
rm "$tmp/build/src/b.o" "$tmp/src/b.c"
"$root/tools/layering.sh" build src >"$tmp/out" || fail "no cycle left, still fails"
grep -q '^  a.c c.c$' "$tmp/out" || fail "order of a.c, c.c: $(cat "$tmp/out")"

cd "$root"
"$root/tools/layering.sh" "$BUILDDIR" || fail "shm/ has a cycle (above)"
