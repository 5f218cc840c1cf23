#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# run.sh - run the tickcache test suite from one build directory.
#
#   tests/run.sh [BUILDDIR] [NAME...]
#
# Runs every cmocka program BUILDDIR/tests/test_* and every shell test
# tests/test_*.sh (with BIN=BUILDDIR/bin and BUILDDIR exported, absolute),
# one at a time from the top of the source tree, each under a timeout
# (TEST_TIMEOUT seconds, default 300; the whole process group is killed).
# NAME restricts the run to those tests (test_api, test_inspect.sh, ...).
# Prints one line per program (PASS/FAIL, seconds, cmocka's counts), the
# output of every failing program, and ends with exactly
#     N passed, N failed
# counting programs.  Exit status: 0 when everything passed, 1 otherwise.
#
# TC_SANITIZER=asan|ubsan|tsan (set by `make asan` etc.) selects the
# sanitizer runtime options; tests/<san>.supp is used as a suppression file
# when present.  TEST_WRAPPER prefixes every command (e.g. "valgrind -q").
set -uo pipefail

cd "$(dirname "$0")/.." || exit 2
root=$PWD

build=${1:-build}
shift || true
want=("$@")

[ -d "$build" ] || { echo "run.sh: no build directory '$build' (run make first)" >&2; exit 2; }
build=$(cd "$build" && pwd)
timeout_s=${TEST_TIMEOUT:-300}
logdir=$build/test-logs
mkdir -p "$logdir"

export BIN=$build/bin BUILDDIR=$build
export CMOCKA_MESSAGE_OUTPUT=stdout
unset CMOCKA_XML_FILE

san=${TC_SANITIZER:-}
supp() { [ -f "$root/tests/$1.supp" ] && printf ':suppressions=%s' "$root/tests/$1.supp"; }
case "$san" in
asan)
	export ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:abort_on_error=0:strict_string_checks=1:detect_stack_use_after_return=1:check_initialization_order=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
	export LSAN_OPTIONS="print_suppressions=0$(supp lsan)${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
	;;
ubsan)
	export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1$(supp ubsan)${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
	;;
tsan)
	export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:history_size=4$(supp tsan)${TSAN_OPTIONS:+:$TSAN_OPTIONS}"
	;;
esac

wrapper=()
[ -n "${TEST_WRAPPER:-}" ] && read -r -a wrapper <<<"$TEST_WRAPPER"
# ThreadSanitizer in gcc 12 / clang 14 cannot map its shadow when the
# kernel randomises mmap with more than 28 bits; run without ASLR then.
if [ "$san" = tsan ] && [ "$(cat /proc/sys/vm/mmap_rnd_bits 2>/dev/null || echo 0)" -gt 28 ]; then
	wrapper=(setarch "$(uname -m)" -R "${wrapper[@]}")
fi

selected() {
	[ ${#want[@]} -eq 0 ] && return 0
	local w
	for w in "${want[@]}"; do
		[ "$w" = "$1" ] && return 0
	done
	return 1
}

progs=()
for f in "$build"/tests/test_*; do
	[ -f "$f" ] && [ -x "$f" ] || continue
	case "$f" in *.o|*.d) continue ;; esac
	selected "$(basename "$f")" && progs+=("$f")
done
for f in "$root"/tests/test_*.sh; do
	[ -f "$f" ] || continue
	selected "$(basename "$f")" && progs+=("$f")
done

if [ ${#progs[@]} -eq 0 ]; then
	echo "run.sh: no tests found in $build/tests or tests/" >&2
	echo "0 passed, 0 failed"
	exit 1
fi

shm_list() { ls /dev/shm 2>/dev/null | grep '^tickcache\.' | sort; }

# Tests must unlink their segments; what the run created and left behind
# is reported at the end (a concurrent run on this host may add to it).
shm_before=$(shm_list)
passed=0 failed=0 c_pass=0 c_fail=0 c_skip=0
failures=()
t_all=$(date +%s%N)
echo "Running ${#progs[@]} test programs from $build${san:+ ($san)}, timeout ${timeout_s}s each"
for p in "${progs[@]}"; do
	name=$(basename "$p")
	log=$logdir/$name.log
	t0=$(date +%s%N)
	case "$p" in
	*.sh) timeout -k 10 "$timeout_s" "${wrapper[@]}" bash "$p" >"$log" 2>&1 </dev/null ;;
	*)    timeout -k 10 "$timeout_s" "${wrapper[@]}" "$p" >"$log" 2>&1 </dev/null ;;
	esac
	rc=$?
	t1=$(date +%s%N)
	secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", (b - a) / 1e9 }')

	# cmocka's summary lines: "[  PASSED  ] N test(s)." / "[  FAILED  ] N test(s)"
	np=$(sed -n 's/^\[  PASSED  \] \([0-9][0-9]*\) test.*/\1/p' "$log" | awk '{ s += $1 } END { print s + 0 }')
	nf=$(sed -n 's/^\[  FAILED  \] \([0-9][0-9]*\) test.*/\1/p' "$log" | awk '{ s += $1 } END { print s + 0 }')
	ns=$(sed -n 's/^\[  SKIPPED \] \([0-9][0-9]*\) test.*/\1/p' "$log" | awk '{ s += $1 } END { print s + 0 }')
	c_pass=$((c_pass + np)) c_fail=$((c_fail + nf)) c_skip=$((c_skip + ns))
	counts=""
	[ "$np" -gt 0 ] || [ "$nf" -gt 0 ] && counts=" ($np passed, $nf failed)"
	[ "$ns" -gt 0 ] && counts=" ($np passed, $nf failed, $ns skipped)"

	why=""
	if [ $rc -eq 124 ] || { [ $rc -eq 137 ] && [ $(((t1 - t0) / 1000000000)) -ge "$timeout_s" ]; }; then
		why=" timed out after ${timeout_s}s"
	elif [ $rc -gt 128 ]; then
		why=" killed by SIG$(kill -l $((rc - 128)) 2>/dev/null || echo $((rc - 128)))"
	elif [ $rc -ne 0 ]; then
		why=" exit $rc"
	fi

	if [ $rc -eq 0 ]; then
		passed=$((passed + 1))
		printf 'PASS  %-32s %8ss%s\n' "$name" "$secs" "$counts"
	else
		failed=$((failed + 1))
		failures+=("$name")
		printf 'FAIL  %-32s %8ss%s%s\n' "$name" "$secs" "$counts" "$why"
		# The failing checks and sanitizer reports first: a CI page that
		# shows only part of the output still shows why.
		echo "----- failures in $name -----"
		grep -n -E '^(FAIL|not ok)|\[  FAILED  \]|\[  ERROR   \]|ERROR: [A-Za-z]*Sanitizer|runtime error:|WARNING: ThreadSanitizer' "$log" |
			head -n 40 | sed 's/^/| /'
		echo "----- output of $name (last 200 lines; full log: $log) -----"
		tail -n 200 "$log" | sed 's/^/| /'
		echo "----- end of $name -----"
	fi

done
t_end=$(date +%s%N)

echo
left=$(comm -13 <(echo "$shm_before") <(shm_list) | tr '\n' ' ')
[ -z "${left// /}" ] || echo "WARN  segments left in /dev/shm since the run began: $left"
if [ $((c_pass + c_fail)) -gt 0 ]; then
	echo "cmocka: $c_pass test(s) passed, $c_fail failed$([ "$c_skip" -gt 0 ] && echo ", $c_skip skipped")"
fi
[ ${#failures[@]} -eq 0 ] || echo "failed: ${failures[*]}"
echo "time: $(awk -v a="$t_all" -v b="$t_end" 'BEGIN { printf "%.1f", (b - a) / 1e9 }')s"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
