#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# tools/wakecost.sh - what tc_wait's check costs a write that wakes nobody
# (`make bench-wakecost`; tools/bench.sh runs it for docs/benchmarks.md).
#
#   tools/wakecost.sh [ROUNDS]
#
# Every publishing write ends with tc__notify (shm/futex.h): two loads of
# read-mostly lines and a branch when nobody waits.  This builds the same
# tree with -DTC_BENCH_NO_WAKE_CHECK (the check compiled out; a baseline
# no one runs) into build/nowake/ and compares it with the library as built
# in BIN (default build/bin):
#   - instructions per set (callgrind, tools/callgrind.sh tickcache-set);
#   - time per set of one hot key, where no cache miss hides the check:
#     shm-bench -b tickcache -o set -d hot -n 1000000, the two binaries
#     alternating for ROUNDS rounds (default 21), each run's time per set on
#     the CPU (1 / cpu_ops_per_s, the timer's own cost included in both);
#     the median of the rounds' differences (with check minus without) is
#     the cost, the spread of the differences says how far to trust it.
# Prints one "wakecost:" line per figure (the last is KEY=VALUE words for
# tools/bench.sh).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${BIN:-$ROOT/build/bin}
case $BIN in /*) ;; *) BIN=$ROOT/$BIN ;; esac
ROUNDS=${1:-21}
NB=$ROOT/build/nowake
[ -x "$BIN/shm-bench" ] || { echo "wakecost.sh: no $BIN/shm-bench (make all)" >&2; exit 2; }

make -C "$ROOT" --no-print-directory -s NODEPS=1 BUILDDIR="$NB" \
	CPPFLAGS="${CPPFLAGS:-} -DTC_BENCH_NO_WAKE_CHECK" tools >/dev/null
[ -x "$NB/bin/shm-bench" ] || { echo "wakecost.sh: the build without the check failed" >&2; exit 1; }

cg() { BIN=$1 bash "$ROOT/tools/callgrind.sh" tickcache-set 2>/dev/null |
	sed -n 's/^tickcache-set: *\([0-9]*\) instructions.*/\1/p'; }
i_with=$(cg "$BIN")
i_without=$(cg "$NB/bin")

# ns per set on the CPU of one run of shm-bench $1
per_set() {
	"$1/shm-bench" -b tickcache -o set -d hot -n 1000000 --json 2>/dev/null |
		tr ',' '\n' | sed -n 's/.*"cpu_ops_per_s": *\([0-9.]*\).*/\1/p' | tail -1 |
		awk '{ if ($1 > 0) printf "%.2f\n", 1e9 / $1 }'
}
with=() without=() diff=()
for ((r = 0; r < ROUNDS; r++)); do
	# Alternate which goes first, so that neither always follows the other.
	if ((r % 2)); then b=$(per_set "$NB/bin"); a=$(per_set "$BIN"); else
		a=$(per_set "$BIN"); b=$(per_set "$NB/bin"); fi
	[ -n "$a" ] && [ -n "$b" ] || { echo "wakecost.sh: shm-bench failed" >&2; exit 1; }
	with+=("$a") without+=("$b")
	diff+=("$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.2f", a - b }')")
done
med() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
mw=$(med "${with[@]}") mo=$(med "${without[@]}") md=$(med "${diff[@]}")
lo=$(printf '%s\n' "${diff[@]}" | sort -g | head -1) hi=$(printf '%s\n' "${diff[@]}" | sort -g | tail -1)
echo "wakecost: instructions per set (callgrind, uniform keys): with the check ${i_with:-?}, without ${i_without:-?}"
echo "wakecost: ns per set of one hot key on the CPU, median of $ROUNDS alternating rounds: with ${mw}, without ${mo}; difference median ${md} (rounds: ${lo} .. ${hi})"
echo "wakecost: i_with=${i_with:-} i_without=${i_without:-} ns_with=$mw ns_without=$mo ns_diff=$md ns_lo=$lo ns_hi=$hi rounds=$ROUNDS"
