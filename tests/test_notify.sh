#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# test_notify.sh - waiting for a change from the outside (issue 11, item 3):
# `shm-inspect wait`, and the futex syscalls of a writer counted by strace:
# none while nobody waits, exactly one after a waiter was killed (the one
# that clears its flag), none after that.  Uses $BIN (default build/bin) and
# the helper tests/helpers/notify_writer.c ($BUILDDIR/tests/notify_writer).
# Segments are named tn<pid>-*, removed on exit.  Exit 0 when every check
# passed.  Without strace (or where ptrace is refused) the strace checks
# are reported as skipped; the cmocka test test_notify counts the same wake
# calls inside the library.

set -u
. "$(dirname "$0")/lib.sh"
tc_setup test_notify tn
WRITER="$BUILDDIR/tests/notify_writer"
tc_need "$INSPECT" "$WRITER"

# sleeping PID: PID sleeps in a futex wait.
sleeping() {
	local st wc
	st=$(proc_state "$1")
	wc=$(cat "/proc/$1/wchan" 2>/dev/null)
	[ "$st" = S ] && { [ "$wc" = 0 ] || [[ "$wc" == *futex* ]]; }
}
# asleep PID: PID sleeps in a futex wait (60 s at most to get there).
asleep() { tc_retry 1200 sleeping "$1"; }

A="$P-a"
"$INSPECT" create "$A" --entries 4096 --memory 4M >/dev/null || { echo "cannot create $A"; exit 1; }

echo "# shm-inspect wait"
"$INSPECT" set "$A" k v1 >/dev/null
"$INSPECT" wait "$A" k --timeout 50 >"$TMP/out" 2>"$TMP/err"
is "nothing newer: exit 5" "$?" "5"
"$INSPECT" wait "$A" k --timeout 60000 >"$TMP/w1" 2>&1 &
W=$!
PIDS+=("$W")
asleep "$W" && ok "the waiter sleeps in the kernel" || bad "the waiter never slept"
"$INSPECT" set "$A" k v2 >/dev/null
wait "$W"
is "woken by a set in another process: exit 0" "$?" "0"
is "it prints the new value" "$(cat "$TMP/w1")" "v2"
ver=$("$INSPECT" --json get "$A" k | python3 -c 'import json,sys; print(json.load(sys.stdin)["version"])')
is "--since an older version: at once" "$("$INSPECT" wait "$A" k --since $((ver - 1)))" "v2"
"$INSPECT" wait "$A" gone --since 1 >/dev/null 2>&1
is "--since V > 0 on an absent key: exit 1" "$?" "1"
"$INSPECT" wait "$A" late --since 0 --timeout 60000 >"$TMP/w2" 2>&1 &
W=$!
PIDS+=("$W")
asleep "$W" || bad "the waiter for a new key never slept"
"$INSPECT" set "$A" late here >/dev/null
wait "$W"
is "--since 0 waits for the key to exist" "$?:$(cat "$TMP/w2")" "0:here"
seq=$("$INSPECT" wait "$A" --since 0)
"$INSPECT" wait "$A" --since "$seq" --timeout 50 >/dev/null 2>&1
is "segment-wide: no change, exit 5" "$?" "5"
"$INSPECT" del "$A" late >/dev/null
next=$("$INSPECT" wait "$A" --since "$seq" --timeout 60000)
is "segment-wide: a delete since SEQ returns at once" "$?" "0"
[ "$next" != "$seq" ] && ok "with a new sequence" || bad "sequence did not move: $next"
is "--json prints the sequence" \
	"$("$INSPECT" --json wait "$A" --since 0 | python3 -c 'import json,sys; print(json.load(sys.stdin)["seq"])')" \
	"$next"

echo "# a writer's futex syscalls (strace)"
# shared_wakes: FUTEX_WAKE calls on shared futexes (the segment's words) of
# the writer's run; the C library's own futexes are FUTEX_*_PRIVATE.
shared_wakes() { grep -c 'FUTEX_WAKE,' "$TMP/strace" || true; }
# traced CMD...: CMD under strace (LeakSanitizer cannot run under ptrace).
traced() {
	ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
		strace -f -e trace=futex -o "$TMP/strace" "$@"
}
if ! command -v strace >/dev/null 2>&1; then
	echo "skip strace checks: strace is not installed (tools/deps.sh test installs it)"
elif ! strace -f -o /dev/null true 2>/dev/null; then
	echo "skip strace checks: ptrace is not permitted here"
else
	B="$P-b"
	"$INSPECT" create "$B" --entries 4096 --memory 4M >/dev/null
	traced "$WRITER" "$B" 3000 k
	is "nobody waits: the writer ran" "$?" "0"
	is "nobody waits: 0 futex wakes in 12000+ writes" "$(shared_wakes)" "0"
	"$INSPECT" wait "$B" k --timeout 600000 >/dev/null 2>&1 &
	W=$!
	asleep "$W" || bad "the waiter to kill never slept"
	kill -9 "$W"
	wait "$W" 2>/dev/null
	traced "$WRITER" "$B" 3000 k
	is "after a waiter was killed: the writer ran" "$?" "0"
	is "after a waiter was killed: exactly one wake (it clears the flag)" "$(shared_wakes)" "1"
	traced "$WRITER" "$B" 3000 k
	is "and then none" "$(shared_wakes)" "0"
	"$INSPECT" wait "$B" k --timeout 60000 >"$TMP/w3" 2>&1 &
	W=$!
	PIDS+=("$W")
	asleep "$W" || bad "the new waiter never slept"
	traced "$WRITER" "$B" 1 k
	wait "$W"
	is "a new waiter is woken" "$?:$(cat "$TMP/w3")" "0:v"
	is "with one wake" "$(shared_wakes)" "1"
fi

tc_finish
