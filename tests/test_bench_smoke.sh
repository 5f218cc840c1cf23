#!/bin/sh
# SPDX-License-Identifier: MIT
# Smoke test of shm-bench: a tiny validating run on tickcache (1k keys, one
# reader, one writer, then one writer alone, evicting), which must exit 0 and
# report zero torn, foreign and falsely-missing reads and zero errors in its
# CSV.  No timing is checked: benchmarks are not tests.
set -u
BIN=${BIN:-build/bin}
B="$BIN/shm-bench"
[ -x "$B" ] || { echo "test_bench_smoke: $B not built"; exit 1; }
out=$(mktemp) || exit 1
trap 'rm -f "$out"' EXIT INT TERM
fail=0

# run LABEL ARGS...: runs shm-bench --csv-header --validate ARGS, checks the "all" rows.
run() {
	label=$1; shift
	if ! "$B" --csv-header --validate --label "$label" "$@" >"$out" 2>&1; then
		echo "FAIL $label: shm-bench exited non-zero"; cat "$out"; fail=1; return
	fi
	# Columns by name from the header, so a new column does not break this.
	awk -F, -v label="$label" '
		NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
		$col["scope"] == "all" {
			rows++
			if ($col["torn"] != 0 || $col["foreign"] != 0 ||
			    $col["false_missing"] != 0 || $col["errors"] != 0) {
				printf "FAIL %s: %s torn %s foreign %s false_missing %s errors %s\n",
				       label, $col["op"], $col["torn"], $col["foreign"],
				       $col["false_missing"], $col["errors"]
				bad = 1
			}
			if ($col["count"] + 0 <= 0) { printf "FAIL %s: no ops\n", label; bad = 1 }
			if ($col["op"] == "get" && $col["reads"] + 0 <= 0) {
				printf "FAIL %s: no reads counted\n", label; bad = 1
			}
		}
		END {
			if (rows < 1) { printf "FAIL %s: no result rows\n", label; bad = 1 }
			exit bad
		}' "$out" || { cat "$out"; fail=1; return; }
	echo "ok   $label"
}

run smoke-get  -b tickcache -k 1000 -n 20000 --warmup 1000 -d uniform -r 1 -w 1
run smoke-peek -b tickcache -k 1000 -n 20000 --warmup 1000 -d zipf -o peek -r 1 -w 1
run smoke-set  -b tickcache -k 1000 -n 20000 -o set -d uniform
run smoke-add  -b tickcache -k 1000 -n 5000 -o add
run smoke-evict -b tickcache -k 4000 -s 1024 -n 20000 --warmup 1000 -d uniform -r 1 -w 1 \
	--evict --memory 2M
# --wake: every kind measured (no Redis here), every round timed.
if "$B" --wake -n 300 --warmup 20 --gap-us 100 --csv --redis-socket /nonexistent >"$out" 2>/dev/null &&
	[ "$(awk -F, '$3 == 300 && $5 > 0 && $5 <= $8 { n++ } END { print n + 0 }' "$out")" = 3 ]; then
	echo "ok   wake: futex, tc_wait, tc_wait_any"
else
	echo "FAIL wake"; cat "$out"; fail=1
fi
# -o mget (tc_get_many of the --batch keys; --validate does not combine with
# --batch): every key is found, nothing fails, the reads are counted.
if "$B" --csv-header -b tickcache -k 1000 -n 20000 --warmup 1000 -d uniform -o mget \
	--batch 16 >"$out" 2>&1 && awk -F, '
		NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
		$col["scope"] == "all" && $col["op"] == "mget" {
			ok = $col["reads"] + 0 == 20000 && $col["hits"] + 0 == 20000 &&
			     $col["false_missing"] == 0 && $col["errors"] == 0
		}
		END { exit !ok }' "$out"; then
	echo "ok   smoke-mget"
else
	echo "FAIL smoke-mget"; cat "$out"; fail=1
fi
# --back-to-back: every section and row there, each pass's time positive, the
# array's own ratios exactly 1, and its segment gone after (/dev/shm/tickcache.shm-bench.PID).
# With --no-preload every get misses: the run must fail (exit 2) and say so,
# not report, and remove its segment too.
"$B" --back-to-back -k 1000 -n 4096 --rounds 1 --csv-header >"$out" 2>&1 &
pid=$!
wait $pid
rc=$?
if [ $rc = 0 ] && [ ! -e "/dev/shm/tickcache.shm-bench.$pid" ] && awk -F, '
		NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
		{ n[$col["section"]]++
		  if ($col["ns_per_op"] + 0 <= 0 || $col["count"] + 0 <= 0) bad = 1
		  if ($col["what"] == "array" && $col["section"] != "batch" && $col["ratio"] != "1.000") bad = 1
		  if ($col["what"] == "tc_get" && $col["ratio"] != "1.000") bad = 1 }
		END { exit bad || n["get"] != 3 || n["set"] != 3 || n["batch"] != 21 }' "$out"; then
	echo "ok   back-to-back"
else
	echo "FAIL back-to-back (exit $rc)"; cat "$out"; fail=1
fi
"$B" --back-to-back -k 1000 -n 4096 --rounds 1 --no-preload --csv >"$out" 2>&1 &
pid=$!
wait $pid
rc=$?
if [ $rc = 2 ] && grep -q "a loaded key missed" "$out" && [ "$(wc -l <"$out")" = 1 ] &&
	[ ! -e "/dev/shm/tickcache.shm-bench.$pid" ]; then
	echo "ok   back-to-back: a miss fails the run"
else
	echo "FAIL back-to-back with misses: exit $rc"; cat "$out"; fail=1
fi
# --percentiles: with a reader beside a writer, the file holds the reads by
# default and the writer's sets with --percentiles-op write (issue 12.1: the
# plot showed an evicting run's reads as its sets).
pct=$(mktemp) || exit 1
trap 'rm -f "$out" "$pct"' EXIT INT TERM
for want in get set; do
	opt=""; [ "$want" = set ] && opt="--percentiles-op write"
	# shellcheck disable=SC2086
	if "$B" -b tickcache -k 1000 -n 20000 --warmup 1000 -d uniform -r 1 -w 1 --evict --memory 1M \
		--percentiles "$pct" $opt >"$out" 2>&1 && head -1 "$pct" | grep -q ", op $want)"; then
		echo "ok   percentiles of the ${want}s${opt:+ ($opt)}"
	else
		echo "FAIL percentiles of the ${want}s${opt:+ ($opt)}: $(head -1 "$pct")"; cat "$out"; fail=1
	fi
done
exit $fail
