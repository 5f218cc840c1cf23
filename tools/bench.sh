#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# tools/bench.sh - the standard benchmark suite of shm-bench (`make bench`).
#
# Installs what it needs (tools/deps.sh bench when there is one, else
# apt-get itself), starts its own redis-server (unix socket + 127.0.0.1 on a
# high port, no persistence) and memcached (127.0.0.1), runs every scenario
# RUNS times (default 3) and keeps the median of each figure, stops the
# servers by pid, runs shm-bench --back-to-back (untimed gets beside the
# in-process tables, tc_get_many against tc_get), profiles the tickcache and
# array get paths with callgrind, and writes docs/benchmarks.md,
# docs/bench-latency.png and docs/bench-batch.png.
#
# Environment: BIN (default build/bin), RUNS (3), QUICK=1 (a tenth of the ops,
# for trying the script), OUTDIR (default docs), KEEP=1 (keep the work dir),
# QUIET_WAIT=SEC (first wait up to SEC s for the host's load to drop below 1),
# NICE=N (run servers and shm-bench under nice -n N, e.g. -20 as root on a
# shared host), PLOT_ONLY=1 (only the scenarios of the plots, RUNS times
# each, and only docs/bench-latency.png and docs/bench-batch.png: no tables,
# no profile).
#
# The plot: per series, the distribution of the run whose p99 is the median
# of the RUNS runs (the tables are medians too); a series shows the
# operation its title names (the evicting rows run a reader beside the
# writer: their distribution is the writer's sets, --percentiles-op write);
# each backend has one colour in both panels, a variant of it (tc_peek,
# evicting) a dashed line of that colour.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${BIN:-$ROOT/build/bin}
case $BIN in /*) ;; *) BIN=$ROOT/$BIN ;; esac
OUTDIR=${OUTDIR:-$ROOT/docs}
RUNS=${RUNS:-3}
QUICK=${QUICK:-0}
PLOT_ONLY=${PLOT_ONLY:-0}
SB=$BIN/shm-bench
NICE=${NICE:-0}
RUNPRIO=()
[ "$NICE" != 0 ] && RUNPRIO=(nice -n "$NICE")
WORK=$(mktemp -d /tmp/shm-bench.XXXXXX)
REDIS_PID= MC_PID=
T0=$(date +%s)
# QUIET_WAIT=SEC: wait up to SEC seconds for the 1-minute load to fall below 1.
if [ "${QUIET_WAIT:-0}" -gt 0 ]; then
	for _ in $(seq "$QUIET_WAIT"); do
		awk '{ exit !($1 < 1.0) }' /proc/loadavg && break
		sleep 1
	done
fi
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)

log() { printf 'bench: %s\n' "$*" >&2; }

cleanup() {
	[ -n "$REDIS_PID" ] && kill "$REDIS_PID" 2>/dev/null && wait "$REDIS_PID" 2>/dev/null
	[ -n "$MC_PID" ] && kill "$MC_PID" 2>/dev/null && wait "$MC_PID" 2>/dev/null
	REDIS_PID= MC_PID=
	if [ "${KEEP:-0}" = 1 ]; then log "work files kept in $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- deps
have_all() {   # valgrind is optional: without it the profile section is skipped
	command -v redis-server >/dev/null && command -v redis-cli >/dev/null &&
	command -v memcached >/dev/null && command -v gnuplot >/dev/null &&
	pkg-config --exists hiredis libmemcached
}

install_deps() {
	if [ -x "$ROOT/tools/deps.sh" ] && ! have_all; then
		"$ROOT/tools/deps.sh" bench || true
	fi
	have_all && { command -v valgrind >/dev/null || [ "$(id -u)" != 0 ]; } && return 0
	local pkgs="redis-server redis-tools memcached gnuplot-nox valgrind libhiredis-dev libmemcached-dev pkg-config"
	if [ "$(id -u)" != 0 ]; then
		log "missing packages; run: sudo apt-get install -y $pkgs"
		exit 1
	fi
	log "installing: $pkgs"
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y $pkgs >"$WORK/apt.log" 2>&1 ||
		{ apt-get update >>"$WORK/apt.log" 2>&1 && apt-get install -y $pkgs >>"$WORK/apt.log" 2>&1; } ||
		{ cat "$WORK/apt.log" >&2; exit 1; }
}

install_deps

# shm-bench must have been built with the peers' libraries present.
if [ ! -x "$SB" ] || ! "$SB" --list | grep -q '^redis-unix' || ! "$SB" --list | grep -q '^memcached'; then
	log "building shm-bench with the Redis and memcached backends"
	touch "$ROOT"/tools/shm-bench/*.c
	make -C "$ROOT" >"$WORK/make.log" 2>&1 || { cat "$WORK/make.log" >&2; exit 1; }
fi
[ -x "$SB" ] || { log "$SB missing after make"; exit 1; }
HAVE_REDIS=0 HAVE_MC=0
"$SB" --list | grep -q '^redis-unix' && HAVE_REDIS=1
"$SB" --list | grep -q '^memcached' && HAVE_MC=1

# ---------------------------------------------------------------- servers
PORT_BASE=$(( 20000 + ($$ * 7) % 30000 ))
RPORT=$PORT_BASE MPORT=$((PORT_BASE + 1))
RSOCK=$WORK/redis.sock

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

if [ $HAVE_REDIS = 1 ]; then
	"${RUNPRIO[@]}" redis-server --port "$RPORT" --bind 127.0.0.1 --unixsocket "$RSOCK" --unixsocketperm 700 \
		--save '' --appendonly no --dir "$WORK" --logfile "$WORK/redis.log" \
		--daemonize no &
	REDIS_PID=$!
fi
if [ $HAVE_MC = 1 ]; then
	# -m 2048: the 16 KiB set must fit without evictions; -t 2: one per vCPU here.
	"${RUNPRIO[@]}" memcached -l 127.0.0.1 -p "$MPORT" -U 0 -m 2048 -t 2 -u "$(id -un)" >"$WORK/memcached.log" 2>&1 &
	MC_PID=$!
fi
for _ in $(seq 100); do
	ok=1
	[ $HAVE_REDIS = 1 ] && ! redis-cli -s "$RSOCK" ping >/dev/null 2>&1 && ok=0
	[ $HAVE_MC = 1 ] && ! port_open "$MPORT" && ok=0
	[ $ok = 1 ] && break
	sleep 0.1
done
[ $ok = 1 ] || { log "servers did not come up"; cat "$WORK"/*.log >&2; exit 1; }
log "redis pid $REDIS_PID (unix $RSOCK, tcp 127.0.0.1:$RPORT), memcached pid $MC_PID (127.0.0.1:$MPORT)"

PEERS=(--redis-socket "$RSOCK" --redis-port "$RPORT" --memcached-port "$MPORT")

# ---------------------------------------------------------------- scenarios
RAW=$WORK/raw.csv
"$SB" --csv-header -n 1 --warmup 0 -b array -k 16 | head -1 >"$RAW"

# n COUNT: op count scaled by QUICK.
n() { if [ "$QUICK" = 1 ]; then echo $(( $1 / 10 )); else echo "$1"; fi; }

# median_pct LABEL BACKEND: of the runs' distributions pct-LABEL-BACKEND.rN.dat,
# the one whose p99 is the median becomes pct-LABEL-BACKEND.dat.
median_pct() {
	local base=$WORK/pct-$1-$2 f
	for f in "$base".r*.dat; do
		[ -s "$f" ] || continue
		printf '%s %s\n' "$(awk '!/^#/ && $2 >= 99 { print $1; exit }' "$f")" "$f"
	done | sort -g | awk '{ a[NR] = $2 } END { if (NR) print a[int((NR + 1) / 2)] }' >"$base.pick"
	[ -s "$base.pick" ] && cp "$(cat "$base.pick")" "$base.dat"
	return 0
}

# scen LABEL BACKEND ARGS...: RUNS validating runs; CSV rows to $RAW, each
# run's percentile distribution to $WORK/pct-LABEL-BACKEND.rN.dat, the
# median run's (by p99) to $WORK/pct-LABEL-BACKEND.dat.
scen() {
	local label=$1 be=$2 r v=${VALIDATE---validate}
	shift 2
	echo "| $label | $be | \`shm-bench $v -b $be $*\` |" >>"$WORK/cmds.md"
	for r in $(seq "$RUNS"); do
		if ! "${RUNPRIO[@]}" "$SB" --csv $v --label "$label" -b "$be" "${PEERS[@]}" \
			--percentiles "$WORK/pct-$label-$be.r$r.dat" "$@" >>"$RAW" 2>"$WORK/err"; then
			# Exit 1 with nothing on stderr: the run completed and counted
			# bad reads (the tables show them); anything else is a failure.
			if [ -s "$WORK/err" ]; then
				log "run failed: $label $be $* (run $r):"
				sed 's/^/    /' "$WORK/err" >&2
			fi
		fi
	done
	median_pct "$label" "$be"
}

log "suite: $RUNS runs per scenario (QUICK=$QUICK PLOT_ONLY=$PLOT_ONLY)"
NG=$(n 1000000) NR=$(n 100000) NT=$(n 50000)

if [ "$PLOT_ONLY" = 1 ]; then
for be in array rculfhash tickcache mutexshm; do scen get64u "$be" -d uniform -n "$NG"; done
scen get64u-peek tickcache -d uniform -n "$NG" -o peek
[ $HAVE_REDIS = 1 ] && { scen get64u redis-unix -d uniform -n "$NR"; scen get64u redis-tcp -d uniform -n "$NT"; }
[ $HAVE_MC = 1 ] && scen get64u memcached -d uniform -n "$NT"
for be in rculfhash tickcache mutexshm; do scen set64 "$be" -o set -d uniform -n "$NG"; done
[ $HAVE_REDIS = 1 ] && scen set64 redis-unix -o set -d uniform -n "$NR"
scen evict tickcache -d uniform -r 1 -w 1 -n "$NG" --evict --memory 4M --percentiles-op write
scen evict mutexshm -d uniform -r 1 -w 1 -n "$NG" --memory 2M --percentiles-op write
else

# 1. get, 100k keys, 64 B, uniform, one reader.
for be in array rculfhash tickcache mutexshm; do scen get64u "$be" -d uniform -n "$NG"; done
scen get64u-peek tickcache -d uniform -n "$NG" -o peek
[ $HAVE_REDIS = 1 ] && { scen get64u redis-unix -d uniform -n "$NR"; scen get64u redis-tcp -d uniform -n "$NT"; }
[ $HAVE_MC = 1 ] && scen get64u memcached -d uniform -n "$NT"
# 2. the same with 1 KiB values, and 16 KiB values over 10k keys (memory).
for be in array tickcache; do scen get1k "$be" -d uniform -s 1024 -n "$NG"; done
scen get1k-peek tickcache -d uniform -s 1024 -n "$NG" -o peek
[ $HAVE_REDIS = 1 ] && scen get1k redis-unix -d uniform -s 1024 -n "$NT"
[ $HAVE_MC = 1 ] && scen get1k memcached -d uniform -s 1024 -n "$NT"
for be in array tickcache; do scen get16k "$be" -d uniform -k 10000 -s 16384 -n "$(n 200000)"; done
scen get16k-peek tickcache -d uniform -k 10000 -s 16384 -n "$(n 200000)" -o peek
[ $HAVE_REDIS = 1 ] && scen get16k redis-unix -d uniform -k 10000 -s 16384 -n "$(n 20000)"
[ $HAVE_MC = 1 ] && scen get16k memcached -d uniform -k 10000 -s 16384 -n "$(n 20000)"
# 3. Zipf (s = 0.99) and a single hot key.
for be in array rculfhash tickcache; do scen get64z "$be" -d zipf -n "$NG"; done
scen get64z-peek tickcache -d zipf -n "$NG" -o peek
[ $HAVE_REDIS = 1 ] && scen get64z redis-unix -d zipf -n "$NR"
for be in array rculfhash tickcache; do scen hot "$be" -d hot -n "$NG"; done
scen hot-peek tickcache -d hot -n "$NG" -o peek
# The same timed 64 reads at a time (the mean per read: below the TSC step).
for be in array tickcache; do VALIDATE= scen hot-b64 "$be" -d hot -n "$NG" --batch 64; done
VALIDATE= scen hot-b64-peek tickcache -d hot -n "$NG" --batch 64 -o peek
# 4. set: overwrite of a random key; add of a fresh key.
for be in array rculfhash tickcache mutexshm; do scen set64 "$be" -o set -d uniform -n "$NG"; done
[ $HAVE_REDIS = 1 ] && scen set64 redis-unix -o set -d uniform -n "$NR"
[ $HAVE_MC = 1 ] && scen set64 memcached -o set -d uniform -n "$NT"
for be in array tickcache; do scen add64 "$be" -o add -n "$(n 300000)"; done
# 4b. the cost of value checksums (TC_CHECKSUM): get and set as in 1 and 4,
#     and 1 KiB gets, on segments created with --checksum.
scen get64u-csum tickcache -d uniform -n "$NG" --checksum
scen get1k-csum tickcache -d uniform -s 1024 -n "$NG" --checksum
scen set64-csum tickcache -o set -d uniform -n "$NG" --checksum
[ $HAVE_REDIS = 1 ] && scen add64 redis-unix -o add -n "$NT"
[ $HAVE_MC = 1 ] && scen add64 memcached -o add -n "$NT"
# 5. set while the store is full and evicting (memory for about a third of
#    the keys), with a validating reader beside the writer.
scen evict tickcache -d uniform -r 1 -w 1 -n "$NG" --evict --memory 4M --percentiles-op write
scen evict mutexshm -d uniform -r 1 -w 1 -n "$NG" --memory 2M --percentiles-op write
scen evict1k mutexshm -d uniform -k 20000 -s 1024 -r 1 -w 1 -n "$NG" --memory 8M
scen evict1k tickcache -d uniform -k 20000 -s 1024 -r 1 -w 1 -n "$NG" --evict --memory 8M
# 6. a reader alone, then beside one writer at 100k sets/s (pinned).
scen rd-alone tickcache -d uniform -r 1 -n "$(n 2000000)" --pin
scen rd-writer tickcache -d uniform -r 1 -w 1 --rate 100000 -n "$(n 2000000)" --pin
# 7. throughput of one reader and of two (pinned, one per vCPU).
for be in tickcache array; do
	scen scale1 "$be" -d uniform -r 1 -n "$(n 2000000)" --pin
	scen scale2 "$be" -d uniform -r 2 -n "$(n 2000000)" --pin
done
# 8. validation under stress: 2 readers + 2 writers, Zipf, evicting.
scen stress tickcache -d zipf -r 2 -w 2 -n "$(n 1000000)" --evict --memory 4M
scen stress-hot mutexshm -d hot --hot-keys 16 -s 1024 -r 1 -w 1 -n "$(n 1000000)"
scen stress-hot tickcache -d hot --hot-keys 16 -s 1024 -r 1 -w 1 -n "$(n 1000000)"
# 9. wake-up latency (issue 11): tc_wait, tc_wait_any, a bare futex ping and
# Redis pub/sub, writer and waiter in two processes, RUNS times.
WAKE=$WORK/wake.csv
NW=$(n 20000)
echo "| wake | tickcache, futex, redis pub/sub | \`shm-bench --wake -n $NW\` |" >>"$WORK/cmds.md"
for r in $(seq "$RUNS"); do
	"${RUNPRIO[@]}" "$SB" --wake --csv --label "wake$r" -n "$NW" --redis-socket "$RSOCK" \
		>>"$WAKE" 2>"$WORK/err" || { log "wake run $r failed:"; sed 's/^/    /' "$WORK/err" >&2; }
done
fi

T_SCEN=$(( $(date +%s) - T0 ))
# 10. (also with PLOT_ONLY: the batch plot) gets back to back, no timer in
# the loop, tickcache beside array and rculfhash in one process; set p50
# beside the array's; tc_get_many of N keys against N tc_get (issue 11).
# RUNS runs, each ratio computed within its run.
B2B=$WORK/b2b.csv
NB=$(n 200000)
echo "| b2b | tickcache, array, rculfhash | \`shm-bench --back-to-back -n $NB --rounds 5\` |" >>"$WORK/cmds.md"
for r in $(seq "$RUNS"); do
	"${RUNPRIO[@]}" "$SB" --back-to-back --csv --label "b2b$r" -n "$NB" --rounds 5 >>"$B2B" 2>"$WORK/err" ||
		{ log "back-to-back run $r failed:"; sed 's/^/    /' "$WORK/err" >&2; }
done
T_B2B=$(( $(date +%s) - T0 - T_SCEN ))

[ -n "$REDIS_PID" ] && kill "$REDIS_PID" && wait "$REDIS_PID" 2>/dev/null || true
[ -n "$MC_PID" ] && kill "$MC_PID" && wait "$MC_PID" 2>/dev/null || true
REDIS_PID= MC_PID=
log "servers stopped; suite took $(( $(date +%s) - T0 )) s"

# ---------------------------------------------------------------- medians
# One line per label/backend/op (scope "all"): the median of every figure over
# the runs; validation counts are summed over the runs.
MED=$WORK/median.txt
# The timer's step, as shm-bench measures it (its human header line).
TSTEP=$("$SB" -n 1000 --warmup 0 -b array -k 16 | sed -n 's/.* step \([0-9.]*\) ns.*/\1/p')
awk -F, '
function med(key, col,   n, i, j, t, a) {
	n = cnt[key]
	for (i = 1; i <= n; i++) a[i] = v[key, col, i] + 0
	for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
	if (n % 2) return a[(n + 1) / 2]
	return (a[n / 2] + a[n / 2 + 1]) / 2
}
NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next }
$c["scope"] == "all" {
	key = $c["label"] " " $c["backend"] " " $c["op"]
	if (!(key in cnt)) order[++nk] = key
	k = ++cnt[key]
	split("ops_per_s mean_ns p50_ns p90_ns p99_ns p999_ns p9999_ns max_ns", f, " ")
	for (i = 1; i <= 8; i++) v[key, f[i], k] = $c[f[i]]
	split("reads misses torn foreign false_missing errors", g, " ")
	for (i = 1; i <= 6; i++) s[key, g[i]] += $c[g[i]]
	v[key, "cpu_ops_per_s", k] = $c["cpu_ops_per_s"]
	tim = $c["timer"] " " $c["timer_ovh_ns"]
}
END {
	for (o = 1; o <= nk; o++) {
		key = order[o]
		printf "%s %d", key, cnt[key]
		for (i = 1; i <= 8; i++) printf " %.1f", med(key, f[i])
		for (i = 1; i <= 6; i++) printf " %d", s[key, g[i]]
		printf " %.1f\n", med(key, "cpu_ops_per_s")
	}
	print tim > "/dev/stderr"
}' "$RAW" >"$MED" 2>"$WORK/timer.txt"
# Fields: 1 label 2 backend 3 op 4 runs 5 ops/s 6 mean 7 p50 8 p90 9 p99 10 p99.9
#         11 p99.99 12 max 13 reads 14 misses 15 torn 16 foreign 17 false_missing 18 errors
#         19 ops per on-CPU second (summed over processes)

# get LABEL BACKEND OP FIELD -> the median figure (empty when not run)
get() { awk -v l="$1" -v b="$2" -v o="$3" -v f="$4" '$1 == l && $2 == b && $3 == o { print $f }' "$MED"; }

# wake KIND COLUMN: the median over the runs of a figure of the wake rows
# (columns of shm-bench --wake --csv: 5 p50, 6 p99, 7 p99.9, 8 max (ns),
# 9 the waiter's CPU ns per round, 10 its voluntary switches per round).
wake() {
	[ -s "${WAKE:-}" ] || return 0
	awk -F, -v k="$1" -v c="$2" '$2 == k { print $c }' "$WAKE" | sort -g |
		awk '{ a[NR] = $1 } END { if (NR) print a[int((NR + 1) / 2)] }'
}

# b2b SECTION WHAT BATCH COLUMN: the median over the runs of a figure of the
# --back-to-back rows (columns: 7 ns_per_op (on the CPU), 8 ops_per_s, 9 wall
# ns per op, 10 p50, 11 p99, 12 ratio, computed within each run).
b2b() {
	[ -s "${B2B:-}" ] || return 0
	awk -F, -v s="$1" -v w="$2" -v b="$3" -v c="$4" '$2 == s && $3 == w && $4 == b && $c != "" { print $c }' "$B2B" |
		sort -g | awk '{ a[NR] = $1 } END { if (NR) print a[int((NR + 1) / 2)] }'
}
# b2b_ratio SECTION WHAT BATCH: the ratio column's median, two decimals.
b2b_ratio() { b2b "$1" "$2" "$3" 12 | awk '{ printf "%.2f\n", $1 }'; }

# wake_ratio KIND BASE COLUMN: per run (label wakeN), KIND's figure over
# BASE's, then the median over the runs.
wake_ratio() {
	[ -s "${WAKE:-}" ] || return 0
	awk -F, -v k="$1" -v base="$2" -v c="$3" '$2 == base { f[$1] = $c } $2 == k { v[$1] = $c }
		END { for (l in v) if (f[l] > 0) printf "%.4f\n", v[l] / f[l] }' "$WAKE" | sort -g |
		awk '{ a[NR] = $1 } END { if (NR) printf "%.2f\n", a[int((NR + 1) / 2)] }'
}

# ---------------------------------------------------------------- profile
# callgrind, collecting only inside each backend's operation: instructions
# and simulated misses per call (tools/callgrind.sh; the VM exposes no PMU).
PROF=$WORK/profile.txt
: >"$PROF"
if command -v valgrind >/dev/null && [ "$PLOT_ONLY" != 1 ]; then
	log "profiling with callgrind"
	T_PROF0=$(date +%s)
	BIN=$BIN WORK=$WORK/cg bash "$ROOT/tools/callgrind.sh" >"$PROF" || true
	# The same calls on one key of 14 and of 27 bytes (most users' key
	# names), the caller's loop included (tests/helpers/getcost).
	BIN=$BIN WORK=$WORK/cg bash "$ROOT/tools/callgrind.sh" getcost >>"$PROF" || true
fi
T_PROF=$(( $(date +%s) - ${T_PROF0:-$(date +%s)} ))

# ---------------------------------------------------------------- wake check
# What tc_wait's check costs a write that wakes nobody: this build against
# the same tree without the check (tools/wakecost.sh, its own build).
WAKECOST=$WORK/wakecost.txt
: >"$WAKECOST"
if command -v valgrind >/dev/null && [ "$PLOT_ONLY" != 1 ]; then
	log "the wake check's cost (tools/wakecost.sh)"
	BIN=$BIN bash "$ROOT/tools/wakecost.sh" >"$WAKECOST" 2>&1 || true
fi

# ---------------------------------------------------------------- plot
mkdir -p "$OUTDIR"
PNG=$OUTDIR/bench-latency.png
# One colour per backend, in both panels; dt 2 (dashed) for a variant.
colour() {
	case $1 in
	tickcache) echo '#1f77b4' ;; array) echo '#7f7f7f' ;; rculfhash) echo '#2ca02c' ;;
	mutexshm) echo '#d62728' ;; redis-unix) echo '#ff7f0e' ;; redis-tcp) echo '#8c564b' ;;
	memcached) echo '#9467bd' ;; *) echo '#000000' ;;
	esac
}
plot_series() {   # plot_series LABEL BACKEND TITLE [DASH] -> a gnuplot plot clause
	local f=$WORK/pct-$1-$2.dat
	[ -s "$f" ] && printf "'%s' using 3:1 with lines lw 2 lc rgb '%s' dt %s title '%s', " \
		"$f" "$(colour "$2")" "${4:-1}" "$3"
}
GET_SERIES=$(plot_series get64u array "array (floor)"; plot_series get64u rculfhash "rculfhash";
	plot_series get64u tickcache "tickcache tc\\_get"; plot_series get64u-peek tickcache "tickcache tc\\_peek" 2;
	plot_series get64u mutexshm "mutex shm cache"; plot_series get64u redis-unix "Redis unix";
	plot_series get64u redis-tcp "Redis TCP"; plot_series get64u memcached "memcached")
SET_SERIES=$(plot_series set64 tickcache "tickcache set"; plot_series evict tickcache "tickcache set, full and evicting (a reader beside)" 2;
	plot_series set64 mutexshm "mutex shm set"; plot_series evict mutexshm "mutex shm set, full (a reader beside)" 2;
	plot_series set64 rculfhash "rculfhash set"; plot_series set64 redis-unix "Redis unix set")
gnuplot <<EOF || log "gnuplot failed"
set terminal pngcairo size 1400,600 font ",10"
set output '$PNG'
set multiplot layout 1,2 title "shm-bench, $(nproc) vCPU, $(date -u +%Y-%m-%d): latency by percentile (100k keys, 64 B, uniform; per series the run with the median p99 of $RUNS$([ "$QUICK" = 1 ] && echo ', QUICK'))"
set logscale xy
set xrange [1:1e6]
set xtics ("50%%" 2, "90%%" 10, "99%%" 100, "99.9%%" 1000, "99.99%%" 10000, "99.999%%" 100000, "99.9999%%" 1000000)
set xlabel "percentile"
set ytics ("10 ns" 10, "100 ns" 100, "1 µs" 1000, "10 µs" 1e4, "100 µs" 1e5, "1 ms" 1e6, "10 ms" 1e7, "100 ms" 1e8)
set ylabel "latency"
set grid
set key top left Left reverse
set title "get"
plot ${GET_SERIES%, }
set title "set (overwrite of a random key)"
plot ${SET_SERIES%, }
unset multiplot
EOF
# The batch plot: ns per key (on the CPU) against the batch size,
# tc_get_many of N keys against a loop of N tc_get and the array's loop,
# medians of the runs; each tc_get_many point labelled with its ratio to the
# tc_get loop (the median of the runs' ratios).
BPNG=$OUTDIR/bench-batch.png
for nb in 1 2 4 8 16 32 64; do
	echo "$nb $(b2b batch tc_get "$nb" 7) $(b2b batch tc_get_many "$nb" 7) $(b2b batch array "$nb" 7) $(b2b batch tc_get_many "$nb" 12)"
done | awk 'NF == 5' >"$WORK/batch.dat"
if [ -s "$WORK/batch.dat" ]; then
	gnuplot <<PLOT || log "gnuplot failed (batch plot)"
set terminal pngcairo size 1000,560 font ",10"
set output '$BPNG'
set title "shm-bench --back-to-back, $(nproc) vCPU, $(date -u +%Y-%m-%d): 100k keys, 64 B, uniform\\nns per key on the CPU, median of $RUNS runs$([ "$QUICK" = 1 ] && echo ', QUICK'); labels: tc\\\\_get\\\\_many's time over the tc\\\\_get loop's"
set logscale x 2
set xrange [0.8:80]
set xtics ("1" 1, "2" 2, "4" 4, "8" 8, "16" 16, "32" 32, "64" 64)
set xlabel "N: keys per call (tc\\\\_get\\\\_many) or per loop (tc\\\\_get, array)"
set ylabel "ns per key"
set yrange [0:*]
set offsets 0, 0, graph 0.1, 0
set grid
set key bottom left
plot '$WORK/batch.dat' using 1:2 with linespoints lw 2 pt 7 lc rgb '#1f77b4' dt 2 title "a loop of N tc\\\\_get", \\
     '' using 1:3 with linespoints lw 2 pt 7 lc rgb '#1f77b4' title "tc\\\\_get\\\\_many of N keys", \\
     '' using 1:4 with linespoints lw 2 pt 6 lc rgb '#7f7f7f' dt 3 title "array: a loop of N gets (in-process floor)", \\
     '' using 1:3:(sprintf("%.2f×", \$5)) with labels offset 0,1.2 tc rgb '#1f77b4' notitle
PLOT
fi

if [ "$PLOT_ONLY" = 1 ]; then
	log "PLOT_ONLY: wrote $PNG and $BPNG in $(( $(date +%s) - T0 )) s; tables not regenerated"
	exit 0
fi

# ---------------------------------------------------------------- report
MD=$OUTDIR/benchmarks.md
fmt() {   # ns -> text
	awk -v x="$1" 'BEGIN { if (x == "") print "–"; else if (x >= 1e6) printf "%.2f ms", x / 1e6;
		else if (x >= 1e4) printf "%.1f µs", x / 1e3; else printf "%.0f ns", x }'
}
fmtn() { awk -v x="$1" 'BEGIN { if (x == "") print "–"; else if (x >= 1e6) printf "%.2f M", x / 1e6; else if (x >= 1e3) printf "%.1f k", x / 1e3; else printf "%.0f", x }'; }

table() {   # table LABEL... : all rows of those labels
	echo "| run | backend | op | ops/s | mean | p50 | p90 | p99 | p99.9 | p99.99 | max | reads | misses | torn | foreign | falsely missing | errors |"
	echo "|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"
	local l
	for l in "$@"; do
		while read -r lab be op runs tput mean p50 p90 p99 p999 p9999 mx rd ms torn fo fm er _; do
			[ "$lab" = "$l" ] || continue
			echo "| $lab | $be | $op | $(fmtn "$tput") | $(fmt "$mean") | $(fmt "$p50") | $(fmt "$p90") | $(fmt "$p99") | $(fmt "$p999") | $(fmt "$p9999") | $(fmt "$mx") | $rd | $ms | $torn | $fo | $fm | $er |"
		done <"$MED"
	done
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b == 0) print ""; else printf "%.2f", a / b }'; }
verdict() { awk -v c="$1" 'BEGIN { if (c == "") print "not measured"; else if (c + 0) print "**met**"; else print "**missed**" }'; }
cmp() { awk -v a="$1" -v op="$2" -v b="$3" 'BEGIN { if (a == "" || b == "") print ""; else if (op == "<=") print (a + 0 <= b + 0); else print (a + 0 < b + 0) }'; }

tc_get=$(get get64u tickcache get 7); arr_get=$(get get64u array get 7)
redis_get=$(get get64u redis-unix get 7)
r1=$(ratio "$tc_get" "$arr_get"); r2=$(ratio "$redis_get" "$tc_get")
hot_get=$(get hot tickcache get 7); hot_peek=$(get hot-peek tickcache peek 7)
hotb_get=$(get hot-b64 tickcache get 7); hotb_peek=$(get hot-b64-peek tickcache peek 7)
hotb_arr=$(get hot-b64 array get 7)
peek_u=$(get get64u-peek tickcache peek 7)
set_p999=$(get set64 tickcache set 10); ev_p999=$(get evict tickcache set 10)
alone_p999=$(get rd-alone tickcache get 10); wr_p999=$(get rd-writer tickcache get 10)
wr_rate=$(get rd-writer tickcache set 5)
r3=$(ratio "$wr_p999" "$alone_p999")
s1=$(get scale1 tickcache get 5); s2=$(get scale2 tickcache get 5); r4=$(ratio "$s2" "$s1")
a1=$(get scale1 array get 5); a2=$(get scale2 array get 5); r5=$(ratio "$a2" "$a1")
c1=$(get scale1 tickcache get 19); c2=$(get scale2 tickcache get 19); r6=$(ratio "$c2" "$c1")
cs_get=$(get get64u-csum tickcache get 7); cs_set=$(get set64-csum tickcache set 7)
cs_1k=$(get get1k-csum tickcache get 7); plain_1k=$(get get1k tickcache get 7)
plain_set=$(get set64 tickcache set 7)
r7=$(ratio "$cs_get" "$tc_get"); r8=$(ratio "$cs_1k" "$plain_1k"); r9=$(ratio "$cs_set" "$plain_set")
bad_tc=$(awk '$2 == "tickcache" { s += $15 + $16 + $17 } END { print s + 0 }' "$MED")
# Issue 11: callgrind's instructions per op, the --back-to-back figures
# (each ratio computed within its run, then the median of the runs), and the
# wake-up ratios (likewise per run).
cg() { awk -v n="$1:" '$1 == n { print $2 }' "$PROF"; }
# cg_fn PROFILE FUNCTION: the instructions per op spent in FUNCTION itself
# (exclusive, all its inlined code included), from callgrind_annotate's table:
# its share of the program's total times the total per op.
cg_fn() {
	local f=$WORK/cg/cga.$1 tot
	tot=$(cg "$1")
	[ -s "$f" ] && [ -n "$tot" ] || return 0
	awk -v fn="$2" -v tot="$tot" '
		/PROGRAM TOTALS/ { t = $1; gsub(",", "", t) }
		/file:function/ { go = 1; getline; next }
		go && NF == 0 { go = 0 }
		go && NF > 2 && $1 ~ /^[0-9,]+$/ {
			ir = $1; gsub(",", "", ir); name = $NF; if (name ~ /^\[/) name = $(NF - 1)
			sub(/.*:/, "", name); if (name == fn) s += ir
		}
		END { if (t > 0) printf "%.0f\n", tot * s / t }' "$f"
}
cg_hot=$(cg tickcache-hot); cg_hotpeek=$(cg tickcache-hot-peek); cg_get=$(cg tickcache-get)
cg_hot_fn=$(cg_fn tickcache-hot tc_get); cg_hotpeek_fn=$(cg_fn tickcache-hot-peek tc_peek)
cg_wget=$(cg_fn tickcache-hot tcb_get); cg_wpeek=$(cg_fn tickcache-hot-peek tcb_peek)
cg_lock=$(cg_fn tickcache-hot-peek tc_read_lock); cg_unlock=$(cg_fn tickcache-hot-peek tc_read_unlock)
cg_oneshot=$(awk -v a="$cg_hotpeek_fn" -v b="$cg_lock" -v c="$cg_unlock" 'BEGIN { if (a != "" && b != "" && c != "") print a + b + c }')
cg_peek=$(cg tickcache-peek); cg_arr=$(cg array-get); cg_set=$(cg tickcache-set)
cg_gc14=$(cg getcost-get-14-hit); cg_gc27=$(cg getcost-get-27-hit)
cg_gcw14=$(cg getcost-get_with-14-hit); cg_gcw27=$(cg getcost-get_with-27-hit)
bb_tc=$(b2b get tickcache 1 8); bb_arr=$(b2b get array 1 8); bb_rcu=$(b2b get rculfhash 1 8)
bb_rtc=$(b2b_ratio get tickcache 1); bb_rrcu=$(b2b_ratio get rculfhash 1)
bb_wtc=$(b2b get tickcache 1 9); bb_warr=$(b2b get array 1 9)
mg16=$(b2b batch tc_get_many 16 7); lg16=$(b2b batch tc_get 16 7); rmg16=$(b2b_ratio batch tc_get_many 16)
bs_tc=$(b2b set tickcache 1 10); bs_arr=$(b2b set array 1 10); bs_rcu=$(b2b set rculfhash 1 10)
rbs_tc=$(b2b_ratio set tickcache 1)
set_arr50=$(get set64 array set 7)
wf50=$(wake futex-pingpong 5); wf99=$(wake futex-pingpong 6)
ww50=$(wake tc_wait 5); ww99=$(wake tc_wait 6); wr50=$(wake redis-pubsub 5)
rw50=$(wake_ratio tc_wait futex-pingpong 5); rw99=$(wake_ratio tc_wait futex-pingpong 6)
rwr=$(wake_ratio redis-pubsub tc_wait 5)
bad_mx=$(awk '$2 == "mutexshm" { t += $15; f += $16 } END { printf "%d torn, %d foreign", t, f }' "$MED")
valid_runs=$(awk '$2 == "tickcache" && $13 > 0 { n += $4 } END { print n + 0 }' "$MED")

{
echo "# tickcache benchmarks"
echo
echo "Generated by \`make bench\` (tools/bench.sh) on $(date -u '+%Y-%m-%d %H:%M UTC'); do not edit by hand."
echo
echo "## Machine and method"
echo
echo "- CPU: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) vCPU$( lscpu | grep -q '^Hypervisor vendor' && echo " (VM, $(lscpu | sed -n 's/^Hypervisor vendor: *//p'))"); L2 $(lscpu | sed -n 's/^L2 cache: *//p'), L3 $(lscpu | sed -n 's/^L3 cache: *//p')"
echo "- Memory: $(free -g | awk '/^Mem:/ { print $2 }') GiB; kernel $(uname -r); THP $(sed 's/.*\[\(.*\)\].*/\1/' /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null) (anon), $(sed 's/.*\[\(.*\)\].*/\1/' /sys/kernel/mm/transparent_hugepage/shmem_enabled 2>/dev/null) (shmem)"
echo "- Load average (1/5/15 min) before the suite: $LOAD0; after: $(cut -d' ' -f1-3 /proc/loadavg). Other work on the host during the run shows up as tails.$( [ "$NICE" != 0 ] && echo " Servers and shm-bench ran under \`nice -n $NICE\`.")"
echo "- Compiler: $(${CC:-cc} --version | head -1); commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
echo "- Peers: $(redis-server --version | awk '{ print $1, $2, $3 }'), memcached $(memcached -V | awk '{ print $2 }') (-t 2 -m 2048), both started by the script on loopback"
echo "- Timer: $(cut -d' ' -f1 "$WORK/timer.txt") calibrated against CLOCK_MONOTONIC; overhead of an empty timed region $(cut -d' ' -f2 "$WORK/timer.txt") ns, **subtracted** from every latency below. The counter advances in steps of $TSTEP ns on this VM, so single-op figures are quantised to that step."
echo "- Every figure is the median of $RUNS runs of \`shm-bench --validate\` (per figure: the median p50 of the runs, the median p99 ..., throughput likewise); validation counts are summed over all runs. Latency is per operation; throughput is per process summed over processes (the timed loop includes the harness: key generation, checksums)."
echo "- Command: \`make bench\` (= \`tools/bench.sh\`; RUNS=$RUNS QUICK=$QUICK); each row's shm-bench arguments are in tools/bench.sh. Suite time: $(( $(date +%s) - T0 )) s (the scenarios $T_SCEN s, \`--back-to-back\` $T_B2B s, callgrind $T_PROF s)."
echo "- Backends: \`array\` is an in-process open-addressing table (the memory-latency floor of this machine), \`rculfhash\` liburcu's RCU hash table (memb flavour), both private to each process; \`mutexshm\` is the mutex-writer shared-memory cache people use today (one process-shared mutex for writers, values overwritten in place, a whole memory stripe evicted under the lock, readers without a lock); Redis and memcached over loopback."
echo
echo "## Targets (issue 5)"
echo
echo "| target | measured | verdict |"
echo "|---|---|---|"
echo "| get, 100k keys, 64 B, uniform: p50 ≤ 1.2× the array floor | tickcache $(fmt "$tc_get") vs array $(fmt "$arr_get") = ${r1:-?}× | $(verdict "$(cmp "$r1" "<=" 1.2)") |"
echo "| … and ≥ 20× lower than Redis over a unix socket | Redis $(fmt "$redis_get") = ${r2:-?}× tickcache | $(verdict "$(cmp 20 "<=" "$r2")") |"
echo "| hot-key get p50 < 40 ns (timer overhead subtracted) | $(fmt "$hot_get"); timed 64 at a time: $(fmt "$hotb_get") (array $(fmt "$hotb_arr")) | $(verdict "$(cmp "$hot_get" "<" 40)") |"
echo "| tc_peek no slower than tc_get (p50, uniform / hot) | peek $(fmt "$peek_u") vs get $(fmt "$tc_get"); hot $(fmt "$hot_peek") vs $(fmt "$hot_get"), timed 64 at a time $(fmt "$hotb_peek") vs $(fmt "$hotb_get") | $(verdict "$( [ "$(cmp "$peek_u" "<=" "$tc_get")" = 1 ] && [ "$(cmp "$hot_peek" "<=" "$hot_get")" = 1 ] && echo 1 || echo 0)") |"
echo "| set (overwrite, random key) p99.9 < 10 µs | $(fmt "$set_p999") | $(verdict "$(cmp "$set_p999" "<" 10000)") |"
echo "| … also while full and evicting | $(fmt "$ev_p999") | $(verdict "$(cmp "$ev_p999" "<" 10000)") |"
echo "| reader p99.9 with 1 writer at 100k sets/s ≤ 2× without | $(fmt "$wr_p999") vs $(fmt "$alone_p999") = ${r3:-?}× (writer reached $(fmtn "$wr_rate") sets/s) | $(verdict "$(cmp "$r3" "<=" 2)") |"
echo "| 2 reader processes ≥ 1.8× the throughput of one | $(fmtn "$s2") vs $(fmtn "$s1") ops/s = ${r4:-?}× (array, private per process: ${r5:-?}×; per on-CPU second, which a busy host does not distort: ${r6:-?}×) | $(verdict "$(cmp 1.8 "<=" "$r4")") |"
echo "| zero torn, foreign or falsely-missing reads, every validating run, eviction included | $bad_tc in $valid_runs tickcache runs (mutexshm: $bad_mx) | $(verdict "$( [ "$bad_tc" = 0 ] && echo 1 || echo 0)") |"
echo
echo "![latency by percentile](bench-latency.png)"
echo
echo "The plot: per series, the distribution of the run whose p99 is the median of the $RUNS runs; each series is the operation its title names (the evicting rows run a validating reader beside the writer and show the writer's sets); one colour per backend in both panels, a variant dashed. \`PLOT_ONLY=1 tools/bench.sh\` redraws the plot alone."
echo
echo "## Targets (issue 11)"
echo
echo "Each ratio is computed within one run (both sides measured in the same shm-bench process, alternating), then the median of the $RUNS runs' ratios is taken; the figures beside it are medians of the runs too, so they need not divide to exactly the ratio."
echo
echo "| target | measured | verdict |"
echo "|---|---|---|"
echo "| hot \`tc_get\` ≤ 150 instructions (callgrind) | ${cg_hot:-–} (uniform keys: ${cg_get:-–}; the array's get: ${cg_arr:-–}). One call on one key, with the caller's loop (\`make callgrind CALLGRIND=getcost\`): 14 bytes ${cg_gc14:-–}, 27 bytes ${cg_gc27:-–}; \`tc_get_with\` ${cg_gcw14:-–} and ${cg_gcw27:-–} | $(verdict "$(cmp "$cg_hot" "<=" 150)") |"
echo "| \`tc_peek\` no more instructions than \`tc_get\` (hot key, in the functions themselves: exclusive, inlined code included) | \`tc_peek\` ${cg_hotpeek_fn:-–}, \`tc_get\` ${cg_hot_fn:-–}; a one-shot peek with its \`tc_read_lock\` (${cg_lock:-–}) and \`tc_read_unlock\` (${cg_unlock:-–}): ${cg_oneshot:-–}. As profiled above, with shm-bench's wrappers (${cg_wget:-–} instructions for a get, ${cg_wpeek:-–} for a peek): hot ${cg_hotpeek:-–} vs ${cg_hot:-–}, uniform ${cg_peek:-–} vs ${cg_get:-–} | $(verdict "$(cmp "$cg_hotpeek_fn" "<=" "$cg_hot_fn")") |"
echo "| back-to-back random gets (100k keys, 64 B, no timer in the loop) ≥ 0.8× the in-process table's gets/s | tickcache $(fmtn "$bb_tc") vs array $(fmtn "$bb_arr") gets per on-CPU second = ${bb_rtc:-?}× (rculfhash $(fmtn "$bb_rcu") = ${bb_rrcu:-?}×) | $(verdict "$(cmp 0.8 "<=" "$bb_rtc")") |"
echo "| \`tc_get_many\` of 16 random keys ≤ 0.35× the time of 16 \`tc_get\` | $(fmt "$mg16") vs $(fmt "$lg16") per key = ${rmg16:-?}× | $(verdict "$(cmp "$rmg16" "<=" 0.35)") |"
echo "| set (overwrite, random key) p50 ≤ 1.5× the in-process table's | $(fmt "$bs_tc") vs $(fmt "$bs_arr") = ${rbs_tc:-?}× (rculfhash $(fmt "$bs_rcu"); in the separate set64 runs below: $(fmt "$plain_set") vs $(fmt "$set_arr50")) | $(verdict "$(cmp "$rbs_tc" "<=" 1.5)") |"
echo "| \`tc_wait\` wake-up p50 ≤ 10 µs and p99 ≤ 50 µs, or within 1.5× / 2× of the futex floor's | p50 $(fmt "$ww50") = ${rw50:-?}× the floor's ($(fmt "$wf50")), p99 $(fmt "$ww99") = ${rw99:-?}× ($(fmt "$wf99")) | $(verdict "$( { [ "$(cmp "$ww50" "<=" 10000)" = 1 ] && [ "$(cmp "$ww99" "<=" 50000)" = 1 ]; } || { [ "$(cmp "$rw50" "<=" 1.5)" = 1 ] && [ "$(cmp "$rw99" "<=" 2)" = 1 ]; } && echo 1 || echo 0)") |"
echo "| … side by side with a Redis pub/sub message | Redis p50 $(fmt "$wr50") = ${rwr:-?}× tc_wait's | – |"
wk() { sed -n 's/^wakecost: .*'"$1"'=\([^ ]*\).*/\1/p' "$WAKECOST"; }
wk_d=$(wk ns_diff)
echo "| a write with no waiter ≤ 2 ns more than before \`tc_wait\` | one hot key's set, with the check against the same tree built without it (\`tools/wakecost.sh\`, $(wk rounds) alternating rounds): $(wk ns_with) vs $(wk ns_without) ns per set on the CPU, difference median ${wk_d:-?} ns (rounds $(wk ns_lo) .. $(wk ns_hi)); instructions per set $(wk i_with) vs $(wk i_without) | $(verdict "$(cmp "$wk_d" "<=" 2)") |"
echo
echo "## Back to back and batched gets (issue 11)"
echo
echo "\`shm-bench --back-to-back -n $NB --rounds 5\` ($RUNS runs): in one process, a pass walks $(fmtn "$NB") random keys of the 100k (64 B values; the keys formatted before the pass, the same list for every backend) calling get after get with no timer in the loop, and is timed as a whole on the CPU (CLOCK_THREAD_CPUTIME_ID): its time over its keys is the time per get with the cache misses of consecutive gets free to overlap. The passes of tickcache, array and rculfhash alternate in each of 5 rounds; each figure is the median over the rounds, then over the runs. The wall time per get is shown beside: where it is well above the time on the CPU, the pass waited for a CPU (the host was busy), which is why the figures are taken on the CPU. Sets are timed one by one (rdtscp, timer overhead subtracted) in the same alternation."
echo
echo "| section | backend | ns per op (on the CPU) | ops per on-CPU second | wall ns per op | p50 | p99 | ratio to the array (within each run) |"
echo "|---|---|--:|--:|--:|--:|--:|--:|"
for sec in get set; do
	for be in array rculfhash tickcache; do
		[ -n "$(b2b "$sec" "$be" 1 7)" ] || continue
		echo "| $sec | $be | $(fmt "$(b2b "$sec" "$be" 1 7)") | $(fmtn "$(b2b "$sec" "$be" 1 8)") | $(fmt "$(b2b "$sec" "$be" 1 9)") | $(fmt "$(b2b "$sec" "$be" 1 10)") | $(fmt "$(b2b "$sec" "$be" 1 11)") | $(b2b_ratio "$sec" "$be" 1)× |"
	done
done
echo
echo "(get: the ratio is gets/s over the array's; set: ns per op is the mean, the ratio is p50 over the array's.)"
echo
echo "Batched: per batch size N, \`tc_get_many\` of N keys against a loop of N \`tc_get\` calls (each value to its own buffer) and the array's loop of N gets, over the same keys, alternating in each round, each timed pass right after an untimed pass over the same keys of the same table (for both tickcache passes the same loop of N \`tc_get\`), so that the two sides of the ratio start from the same state; ns per key on the CPU."
echo
echo "| N | loop of N tc_get | tc_get_many of N | ratio (within each run) | array, loop of N |"
echo "|--:|--:|--:|--:|--:|"
while read -r nb lg mg ar rt; do
	echo "| $nb | $(fmt "$lg") | $(fmt "$mg") | $(printf '%.2f' "$rt")× | $(fmt "$ar") |"
done <"$WORK/batch.dat"
echo
echo "![batched against single gets](bench-batch.png)"
echo
echo "## get: 100k keys, 64 B, uniform"
echo; table get64u get64u-peek; echo
echo "## get: 1 KiB values (100k keys) and 16 KiB values (10k keys)"
echo; table get1k get1k-peek get16k get16k-peek; echo
echo "## get: Zipf s = 0.99 and one hot key"
echo "Rows *hot-b64* time 64 reads between two timer reads and record their mean (\`--batch 64\`, not validating): costs below the TSC's 10 ns step become visible, and the timer overhead is paid once per 64 reads; percentiles are of 64-read means."
echo; table get64z get64z-peek hot hot-peek hot-b64 hot-b64-peek; echo
echo "## set (overwrite of a random key) and add (of a fresh key, deleted after, untimed)"
echo; table set64 add64; echo
echo "## Value checksums (TC_CHECKSUM)"
echo
echo "The same runs on segments created with \`--checksum\` (every write seals its value, every read verifies it). p50 with / without: get 64 B $(fmt "$cs_get") / $(fmt "$tc_get") = ${r7:-?}×, get 1 KiB $(fmt "$cs_1k") / $(fmt "$plain_1k") = ${r8:-?}×, set 64 B $(fmt "$cs_set") / $(fmt "$plain_set") = ${r9:-?}×."
echo; table get64u get64u-csum get1k get1k-csum set64 set64-csum; echo
echo "## Full and evicting: one writer and one validating reader"
echo
echo "tickcache with TC_EVICT_LRU and 4 MiB (100k keys of 64 B) or 8 MiB (20k keys of 1 KiB); mutexshm with 2 MiB / 8 MiB of values. Misses are evicted keys, not errors."
echo; table evict evict1k; echo
echo "## A reader beside a writer at 100k sets/s; one and two readers (pinned)"
echo; table rd-alone rd-writer scale1 scale2; echo
echo "## Validation under stress"
echo
echo "2 readers + 2 writers, Zipf, tickcache evicting in 4 MiB; one hot set of 16 keys of 1 KiB with one writer: the mutex cache's readers copy values while they are rewritten in place."
echo; table stress stress-hot; echo
echo "## Waiting for a change (issue 11): wake-up latency"
echo
echo "\`shm-bench --wake\`: a writer in one process, a waiter in another; each round the writer waits until the waiter reported the last one, lets 200 µs pass (the waiter is asleep again), reads CLOCK_MONOTONIC and writes (\`tc_set\` of one key; for the floor, a bare futex increment and FUTEX_WAKE; for Redis, PUBLISH over the unix socket); the waiter reads the clock when its call returns. Latency is from before the writer's call to the waiter's return. $(fmtn "$NW") rounds per kind, medians of $RUNS runs. The waiter's CPU time and voluntary context switches per round show that it sleeps: one switch per round, microseconds of CPU for a round of 200+ µs."
echo
echo "| kind | p50 | p99 | p99.9 | max | waiter CPU / round | waiter switches / round |"
echo "|---|--:|--:|--:|--:|--:|--:|"
for k in futex-pingpong tc_wait tc_wait_any redis-pubsub; do
	[ -n "$(wake "$k" 5)" ] || continue
	echo "| $k | $(fmt "$(wake "$k" 5)") | $(fmt "$(wake "$k" 6)") | $(fmt "$(wake "$k" 7)") | $(fmt "$(wake "$k" 8)") | $(fmt "$(wake "$k" 9)") | $(wake "$k" 10) |"
done
echo
echo "The targets of this section are in the issue-11 table above (ratios to the floor computed within each run)."
echo
echo "## Commands"
echo
echo "Each run: \`build/bin/shm-bench --csv --validate --label RUN\` with the arguments below (plus the peers' socket and ports), $RUNS times."
echo
echo "| run | backend | command |"
echo "|---|---|---|"
cat "$WORK/cmds.md"
echo
echo "## Profile of the hot paths"
echo
echo "\`valgrind --tool=callgrind --cache-sim=yes --D1=49152,12,64 --LL=2097152,16,64 --toggle-collect=FN build/bin/shm-bench --warmup 0 ...\` with FN the backend's get, peek and unlock, or set: 200k gets (100k sets), only the operation itself counted (peek = tc_read_lock + tc_peek + tc_read_unlock). The cache figures come from callgrind's model of a core with a 48 KiB 12-way L1d and a 2 MiB 16-way L2 as the last level (so "L2 misses" are accesses that would go to L3 or DRAM; the model stays the same from host to host so that the counts compare, whatever this host's caches above), not from hardware counters: this VM exposes no PMU (\`perf stat -e instructions\` reports \"not supported\")."
echo
echo '```'
cat "$PROF"
echo '```'
if [ -f "$ROOT/docs/bench-notes.md" ]; then echo; cat "$ROOT/docs/bench-notes.md"; fi
} >"$MD"
log "wrote $MD and $PNG ($(( $(date +%s) - T0 )) s)"
