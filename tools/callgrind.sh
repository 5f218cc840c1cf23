#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# tools/callgrind.sh - instructions and simulated cache misses per operation
# of the hot paths, counted by callgrind inside the operation only
# (`make callgrind`; tools/bench.sh uses it for docs/benchmarks.md).
#
#   tools/callgrind.sh [PROFILE...]
#
# PROFILE names one line of the table below (default: all of them), or
# getcost / getcost-CALL-LEN-CASE (below: one call on one key of any length).  Prints
# one line per profile (instructions, L1d read and write misses, L2 read
# misses per op) and then, per profile, the eight costliest functions
# (exclusive instructions per op), each as FILE:FUNCTION: what the compiler
# inlined into a function is counted under the file it came from.  Instruction counts do not depend on the
# load of the host; the miss counts come from callgrind's model of this
# machine's caches (L1d 48 KiB 12-way, the 2 MiB L2 as the last level), not
# from hardware counters (the VM has no PMU).
#
# Environment: BIN (default build/bin), GETCOST (default
# build/tests/getcost), WORK (a directory to keep the
# callgrind files in; default a temporary one, removed at exit).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${BIN:-$ROOT/build/bin}
case $BIN in /*) ;; *) BIN=$ROOT/$BIN ;; esac
SB=$BIN/shm-bench
[ -x "$SB" ] || { echo "callgrind.sh: no $SB (make all)" >&2; exit 2; }
command -v valgrind >/dev/null || { echo "callgrind.sh: valgrind is not installed" >&2; exit 2; }
if [ -n "${WORK:-}" ]; then
	mkdir -p "$WORK"
else
	WORK=$(mktemp -d /tmp/tc-callgrind.XXXXXX)
	trap 'rm -rf "$WORK"' EXIT
fi

# name | functions collected (comma-separated) | shm-bench arguments (with -n COUNT)
PROFILES='
tickcache-get       | tcb_get              | -b tickcache -d uniform -n 200000
tickcache-peek      | tcb_peek,tcb_peek_end | -b tickcache -d uniform -n 200000 -o peek
array-get           | arr_get              | -b array -d uniform -n 200000
tickcache-hot       | tcb_get              | -b tickcache -d hot -n 200000
tickcache-mget      | tcb_get_many         | -b tickcache -d uniform -n 200000 -o mget
tickcache-hot-peek  | tcb_peek,tcb_peek_end | -b tickcache -d hot -n 200000 -o peek
tickcache-set       | tcb_set              | -b tickcache -o set -d uniform -n 100000
tickcache-set-evict | tcb_set              | -b tickcache -o set -d uniform -n 100000 --evict --memory 4M
tickcache-get-csum  | tcb_get              | -b tickcache -d uniform -n 200000 --checksum
tickcache-set-csum  | tcb_set              | -b tickcache -o set -d uniform -n 100000 --checksum
'

# profile NAME FUNCTIONS ARGS...: append a line to $WORK/profile.txt and
# write the top functions to $WORK/cg.NAME.top.
profile() {
	local name=$1 fn=$2 f out ppid calls tog=()
	shift 2
	for f in ${fn//,/ }; do tog+=(--toggle-collect="$f"); done
	calls=$(echo "$*" | sed -n 's/.*-n \([0-9]*\).*/\1/p')
	rm -f "$WORK/cg.$name".*
	# A forked child starts with the costs its parent had counted (the
	# preload's sets went through tcb_set too): zero them where the
	# measured loop starts.
	valgrind --tool=callgrind --cache-sim=yes --D1=49152,12,64 --LL=2097152,16,64 \
		--zero-before=run_loop --zero-before=run_batch --compress-strings=no "${tog[@]}" --callgrind-out-file="$WORK/cg.$name.%p" \
		"$SB" --warmup 0 "$@" >/dev/null 2>"$WORK/cglog.$name" || {
		echo "callgrind.sh: $name failed (log: $WORK/cglog.$name)" >&2; return 0; }
	# The measuring child: the file of a process other than the one
	# valgrind started (the first pid of its log), the largest if several.
	ppid=$(sed -n '1s/^==\([0-9]*\)==.*/\1/p' "$WORK/cglog.$name")
	out=$(ls -S "$WORK/cg.$name".* | grep -v "\.$ppid\$" | head -1)
	# The frames that were on the stack at the zeroing (main down to
	# run_loop) show their calls' costs as their own: --threshold=100 lists
	# them all, and the top list skips a function that claims the total.
	callgrind_annotate --inclusive=no --threshold=100 "$out" >"$WORK/cga.$name" 2>/dev/null ||
		return 0
	awk -v name="$name" -v calls="$calls" '
		/^Events shown:/ { for (i = 3; i <= NF; i++) ev[i - 2] = $i; ne = NF - 2 }
		/PROGRAM TOTALS/ {
			line = $0; gsub(/\([^)]*\)/, "", line); gsub(",", "", line)
			n = split(line, a, " ")
			for (i = 1; i <= ne; i++) val[ev[i]] = a[i] + 0
			printf "%-22s %6.0f instructions, %5.2f L1d read misses, %5.2f L1d write misses, %5.2f L2 read misses per op\n",
			       name ":", val["Ir"] / calls, val["D1mr"] / calls, val["D1mw"] / calls, val["DLmr"] / calls
		}' "$WORK/cga.$name" >>"$WORK/profile.txt"
	awk -v calls="$calls" '
		/file:function/ { go = 1; getline; next }
		go && NF == 0 { exit }
		/PROGRAM TOTALS/ { total = $1; gsub(",", "", total) }
		go && NF > 2 && $1 ~ /^[0-9,]+$/ {
			ir = $1; gsub(",", "", ir)
			if (ir == total)
				next
			fn = $NF; if (fn ~ /^\[/) fn = $(NF - 1)
			# FILE:FUNCTION, the base name of the file: code inlined into a
			# function is listed under the file it came from (index.h:tc_get).
			sub(/.*\//, "", fn)
			printf "    %7.1f instr/op  %s\n", ir / calls, fn
			if (++k == 8) exit
		}' "$WORK/cga.$name" >"$WORK/cg.$name.top"
}

: >"$WORK/profile.txt"
while IFS='|' read -r name fns args; do
	name=$(echo "$name" | xargs)
	[ -n "$name" ] || continue
	if [ $# -gt 0 ]; then
		want=0
		for w in "$@"; do [ "$w" = "$name" ] && want=1; done
		[ $want = 1 ] || continue
	fi
	# shellcheck disable=SC2086
	profile "$name" "$(echo "$fns" | xargs)" $args
done <<<"$PROFILES"

# Per call on one key of 14 and of 27 bytes (a user's key name):
# tests/helpers/getcost, collected inside its loop of calls (run_calls), the
# loop's and each call's set-up included (about 14 instructions).  Profiles named getcost-CALL-LEN-CASE
# (CALL get, get_with, get_hashed, exists or peek; CASE hit, ttl, miss, small, big); "getcost"
# alone runs the hot hits of all three calls at both lengths.
GC=${GETCOST:-$ROOT/build/tests/getcost}
getcost() {
	local name=$1 call=$2 len=$3 cs=$4 n=100000 out ir
	[ -x "$GC" ] || { echo "callgrind.sh: no $GC (make check-build)" >&2; return 0; }
	out=$WORK/cg.$name.out
	valgrind --tool=callgrind --toggle-collect=run_calls --callgrind-out-file="$out" \
		"$GC" "$call" "$len" "$cs" "$n" >/dev/null 2>"$WORK/cglog.$name" || {
		echo "callgrind.sh: $name failed (log: $WORK/cglog.$name)" >&2; return 0; }
	ir=$(callgrind_annotate "$out" 2>/dev/null | awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1 }')
	printf "%-22s %6.1f instructions per call\n" "$name:" "$(echo "$ir / $n" | bc -l)" >>"$WORK/profile.txt"
}
for w in "$@"; do
	case $w in
	getcost)
		for call in get get_with get_hashed peek; do
			for len in 14 27; do getcost "getcost-$call-$len-hit" $call $len hit; done
		done ;;
	getcost-*-*-*)
		IFS=- read -r _ call len cs <<<"$w"
		getcost "$w" "$call" "$len" "$cs" ;;
	esac
done

cat "$WORK/profile.txt"
for f in "$WORK"/cg.*.top; do
	[ -s "$f" ] || continue
	echo
	echo "top functions, $(basename "$f" .top | sed 's/^cg\.//') (exclusive):"
	cat "$f"
done
