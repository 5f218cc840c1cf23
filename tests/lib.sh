# SPDX-License-Identifier: MIT
#
# lib.sh - what the black-box shell tests share (test_tools.sh,
# test_notify.sh, test_bridge.sh).  Sourced by bash, never run (tests/run.sh
# runs tests/test_*.sh only).
#
#   . "$(dirname "$0")/lib.sh"
#   tc_setup NAME PREFIX
#
# tc_setup sets:
#   HERE, ROOT   tests/ and the top of the source tree, absolute
#   BIN          the tools' directory: $BIN (absolute, or taken from ROOT),
#                default build/bin;  BUILDDIR: $BUILDDIR, default BIN/..
#   INSPECT      $BIN/shm-inspect
#   P            PREFIX<pid>: every segment a test creates is named "$P-*"
#   TMP          a new temporary directory, NAME.XXXXXX under $TMPDIR or /tmp
#   PIDS         background processes to kill at exit (the test appends)
#   PASS, FAIL   the counts of ok and bad
# and traps EXIT (and INT/TERM, exit 130): tc_cleanup_hook first when the
# test defines one, then SIGKILL to every pid of PIDS (reaped), every
# segment "$P-*" removed (shm-inspect unlink --force, else rm), TMP removed.
#
# Checks (each counted, one line each):
#   ok DESC / bad DESC    a check passed / failed; bad also shows the first
#                         lines of $TMP/err, the stderr of the last `run`
#   is DESC GOT WANT      GOT equals WANT
#   has DESC TEXT PART    TEXT contains PART
#   tc_finish             prints "N passed, N failed"; its status is 0 when
#                         nothing failed (the test's last command)
# Helpers:
#   tc_need FILE...       exit 1 unless each FILE is executable (the build)
#   tc_retry N CMD...     CMD until it succeeds, N tries 50 ms apart
#   proc_state PID        the state letter of /proc/PID/stat (R, S, Z, ...)

# shellcheck shell=bash

tc_setup() {
	HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
	ROOT=$(cd "$HERE/.." && pwd)
	BIN=${BIN:-build/bin}
	case "$BIN" in /*) ;; *) BIN="$ROOT/$BIN" ;; esac
	BUILDDIR=${BUILDDIR:-$(dirname "$BIN")}
	INSPECT="$BIN/shm-inspect"
	P="$2$$"
	TMP=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX") || exit 1
	PIDS=()
	PASS=0
	FAIL=0
	trap tc_cleanup EXIT
	trap 'exit 130' INT TERM
}

tc_cleanup() {
	local p f
	declare -F tc_cleanup_hook >/dev/null && tc_cleanup_hook
	for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
	wait 2>/dev/null
	for f in /dev/shm/tickcache."$P"-*; do
		[ -e "$f" ] && "$INSPECT" unlink "${f#/dev/shm/tickcache.}" --force >/dev/null 2>&1
		[ -e "$f" ] && rm -f "$f"
	done
	rm -rf "$TMP"
}

ok()  { PASS=$((PASS + 1)); echo "ok   $*"; }
bad() {
	FAIL=$((FAIL + 1))
	echo "FAIL $*"
	[ -s "$TMP/err" ] && sed 's/^/     stderr: /' "$TMP/err" | head -5
	return 0
}
is()  { if [ "$2" == "$3" ]; then ok "$1"; else bad "$1: got '$2', want '$3'"; fi; }
has() { case "$2" in *"$3"*) ok "$1" ;; *) bad "$1: '$3' not in: $(echo "$2" | head -3)" ;; esac; }

tc_finish() {
	echo "$PASS passed, $FAIL failed"
	[ "$FAIL" -eq 0 ]
}

tc_need() {
	local t
	for t in "$@"; do
		[ -x "$t" ] || { echo "missing $t (run make first)"; exit 1; }
	done
}

tc_retry() {
	local n=$1
	shift
	for _ in $(seq 1 "$n"); do
		"$@" && return 0
		sleep 0.05
	done
	return 1
}

proc_state() {
	sed -n 's/^[0-9]* (.*) \([A-Za-z]\) .*/\1/p' "/proc/$1/stat" 2>/dev/null
}
