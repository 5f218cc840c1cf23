#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# run.sh - run the libFuzzer harnesses built by `make fuzz-build`.
#
#   tests/fuzz/run.sh FUZZBUILDDIR SECONDS [HARNESS...]
#
# Each harness (default: all of them, one after the other) first replays
# its seed and regression inputs (tests/fuzz/corpus/<harness>/, plus the
# generated seeds of fuzz_segment_raw) and the inputs earlier runs kept
# (FUZZBUILDDIR/corpus/<harness>/, where new ones are written), then fuzzes
# for SECONDS seconds.  A crash, a sanitizer report, a leak, a timeout
# (an input running over FUZZ_TIMEOUT seconds, default 20: a hang) or an
# out-of-memory is a failure: the input is saved as
# FUZZBUILDDIR/artifacts/<harness>-crash-<sha1> and the command to replay it
# is printed.  Prints one line per harness (executions, rate, cov and ft
# from libFuzzer, corpus size) and ends with "N passed, N failed"; exit 1
# when any harness failed.
#
# Environment: FUZZ_NICE (nice level, default 0), FUZZ_RUNS (stop also after
# that many executions, if sooner), FUZZ_ARGS (more libFuzzer options),
# FUZZ_TIMEOUT.  Long runs that should go on past a finding:
#   FUZZ_ARGS='-fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1'
# (the summary then counts oom/timeout/crash and lists the new artifacts).
set -uo pipefail

cd "$(dirname "$0")/../.." || exit 2
root=$PWD
[ $# -ge 2 ] || { echo "usage: tests/fuzz/run.sh FUZZBUILDDIR SECONDS [HARNESS...]" >&2; exit 2; }
build=$(cd "$1" && pwd) || exit 2
secs=$2
shift 2
harnesses=("$@")
[ ${#harnesses[@]} -gt 0 ] || harnesses=(fuzz_segment fuzz_segment_raw fuzz_snapshot fuzz_policy)

# ASan+UBSan as in `make asan`; every report is fatal.
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:strict_string_checks=1:check_initialization_order=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"

mkdir -p "$build/artifacts" "$build/logs"
passed=0 failed=0
lines=()
for h in "${harnesses[@]}"; do
	bin=$build/fuzzers/$h
	[ -x "$bin" ] || { echo "run.sh: no $bin (make fuzz-build)" >&2; exit 2; }
	name=${h#fuzz_}
	work=$build/corpus/$name
	mkdir -p "$work"
	dirs=("$work")
	[ -d "$root/tests/fuzz/corpus/$name" ] && dirs+=("$root/tests/fuzz/corpus/$name")
	maxlen=4096
	case "$h" in
	fuzz_segment_raw)
		seeds=$build/seeds/$name
		# The images of this build (a layout change makes older ones
		# fail validation, which would leave the harness nothing to do).
		if [ ! -d "$seeds" ] || [ "$bin" -nt "$seeds" ]; then
			rm -rf "$seeds" "$seeds.tmp"
			mkdir -p "$seeds.tmp" && TC_FUZZ_SEED_DIR=$seeds.tmp "$bin" >/dev/null 2>&1 &&
				mv "$seeds.tmp" "$seeds"
		fi
		dirs+=("$seeds")
		maxlen=131072
		;;
	fuzz_snapshot) maxlen=16384 ;;
	esac
	log=$build/logs/$h.log
	arts_before=$(ls "$build/artifacts" | sort)
	limit=(-max_total_time="$secs")
	[ -n "${FUZZ_RUNS:-}" ] && limit+=(-runs="$FUZZ_RUNS")
	# shellcheck disable=SC2086
	nice -n "${FUZZ_NICE:-0}" "$bin" "${limit[@]}" -timeout="${FUZZ_TIMEOUT:-20}" \
		-rss_limit_mb=2048 -max_len="$maxlen" -print_final_stats=1 \
		-artifact_prefix="$build/artifacts/$h-" ${FUZZ_ARGS:-} "${dirs[@]}" >"$log" 2>&1 </dev/null
	rc=$?
	# A harness process that crashed (each finding of a -fork run) left
	# its segment and scratch files: remove those of dead pids.
	for f in /dev/shm/tickcache.fz*[0-9] /dev/shm/tcfuzz-*; do
		[ -e "$f" ] || continue
		p=$(basename "$f" | sed -n 's/^tickcache\.fz[a-z]*\([0-9][0-9]*\)$/\1/p; s/^tcfuzz-\([0-9][0-9]*\)\..*/\1/p')
		[ -n "$p" ] && ! kill -0 "$p" 2>/dev/null && rm -f "$f"
	done
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
	rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
	cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+' "$log" | tail -n 1)
	# -fork=N (with -ignore_crashes=1 for long runs) reports otherwise:
	# "#N: cov: .. exec/s R oom/timeout/crash: a/b/c".
	forked=$(grep -oE '^#[0-9]+: cov: .* oom/timeout/crash: [0-9]+/[0-9]+/[0-9]+' "$log" | tail -n 1)
	if [ -n "$forked" ]; then
		execs=${forked%%:*}
		execs=${execs#\#}
		rate=$(echo "$forked" | sed -n 's/.*exec\/s \([0-9]*\).*/\1/p')
		found=$(echo "$forked" | sed -n 's/.*oom\/timeout\/crash: \([0-9/]*\).*/\1/p')
		cov="$cov oom/timeout/crash: $found"
		[ "$found" = 0/0/0 ] || rc=1
	fi
	line=$(printf '%-17s %10s execs %7s/s  %s' "$h" "${execs:-?}" "${rate:-?}" "${cov:-(no coverage line)}")
	new_arts=$(comm -13 <(echo "$arts_before") <(ls "$build/artifacts" | sort) | tr '\n' ' ')
	if [ $rc -eq 0 ]; then
		passed=$((passed + 1))
		lines+=("PASS  $line")
		echo "PASS  $line"
	else
		failed=$((failed + 1))
		lines+=("FAIL  $line (exit $rc)")
		echo "FAIL  $line (exit $rc)"
		art=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
		echo "----- $h: first report (full log: $log) -----"
		grep -n -m 1 -E 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:|broken promise|deadly signal|Timeout|out-of-memory' "$log" | sed 's/^/| /'
		grep -A 40 -m 1 -E '^==[0-9]+==ERROR|runtime error:|broken promise|ALARM' "$log" | head -n 50 | sed 's/^/| /'
		[ -n "$art" ] && echo "replay: $bin $art"
		[ -n "${new_arts// /}" ] && echo "new artifacts in $build/artifacts: $new_arts"
		echo "----- end of $h -----"
	fi
done
echo
echo "== fuzz summary (${secs}s per harness)"
printf '%s\n' "${lines[@]}"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
