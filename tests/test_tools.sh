#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# test_tools.sh - black-box tests of shm-inspect, shm-sweeper and tc-demo.
# Uses $BIN (default build/bin).  Every segment is named tt<pid>-* and is
# removed on exit, also on failure.  Needs python3 to parse --json output.
# The helper tests/helpers/hold_reader.c is taken from $HOLD_READER, or
# $BIN/../tests/hold_reader, or built here against $BIN/../libtickcache.a.
#
# Exit 0 when every check passed.

set -u
. "$(dirname "$0")/lib.sh"
tc_setup test_tools tt
SWEEPER="$BIN/shm-sweeper"
DEMO="$BIN/tc-demo"

# run CMD...: $OUT, $ERR (files $TMP/out, $TMP/err) and $RC.
run() {
	"$@" >"$TMP/out" 2>"$TMP/err"
	RC=$?
	OUT=$(cat "$TMP/out")
	ERR=$(cat "$TMP/err")
}

# expect RC DESC CMD...: run CMD and check its exit code.
expect() {
	local want=$1 desc=$2
	shift 2
	run "$@"
	if [ "$RC" -eq "$want" ]; then ok "$desc (exit $want)"; else bad "$desc: exit $RC, want $want"; fi
}

# expect_host RC DESC CMD...: expect for a command that reads every segment
# of the host (list, summary).  A segment of someone else's truncated under
# it (another user's fuzzer, say) ends it with exit 3 naming that segment, as
# shm-inspect(1) says; then run it again, up to 20 times.  Ours are never
# truncated, so exit 3 naming one of them fails at once.
expect_host() {
	local want=$1 desc=$2 i
	shift 2
	for i in $(seq 20); do
		run "$@"
		[ "$RC" -eq 3 ] && grep -q "was truncated while" "$TMP/out" "$TMP/err" &&
			! grep -q "segment '$P" "$TMP/out" "$TMP/err" || break
		echo "# $desc: a foreign segment was truncated under it; again"
	done
	if [ "$RC" -eq "$want" ]; then ok "$desc (exit $want)"; else bad "$desc: exit $RC, want $want"; fi
}

# js EXPR: evaluate a python expression over the JSON document in $OUT (as d).
js() {
	python3 -c 'import json,sys
d=json.loads(sys.stdin.read())
r=eval(sys.argv[1])
print(json.dumps(r) if not isinstance(r,str) else r)' "$1" <"$TMP/out" 2>>"$TMP/jserr" || echo "JSON-ERROR"
}

json_field() { run "$INSPECT" --json stat "$1"; js "d[\"$2\"]"; }
# sweeper_is SEG PID: PID holds the sweeper lease of SEG.
sweeper_is() { [ "$(json_field "$1" sweeper_pid)" == "$2" ]; }

# wait_grep PATTERN FILE: until FILE has a line matching PATTERN (10 s at most).
wait_grep() { tc_retry 200 grep -qs -- "$1" "$2"; }
wait_ready() { wait_grep ready "$1"; }

# running PID: PID is a live process.  Not `kill -0`, which also succeeds on
# a zombie: a process that is not our child (the daemon, once its parent
# exited) is reaped by PID 1 or a subreaper, which may take seconds, or never
# happen when PID 1 does not reap (containers, some CI machines).
running() {
	local st
	st=$(proc_state "$1")
	[ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

# ---------------------------------------------------------------------------
# The helper program
# ---------------------------------------------------------------------------
HOLD=${HOLD_READER:-}
if [ -z "$HOLD" ] && [ -x "$BIN/../tests/hold_reader" ]; then HOLD="$BIN/../tests/hold_reader"; fi
if [ -z "$HOLD" ]; then
	SAN=""
	case "${TC_SANITIZER:-}:$BIN" in
	*ubsan*) SAN="-fsanitize=undefined" ;;
	*tsan*) SAN="-fsanitize=thread" ;;
	*asan*) SAN="-fsanitize=address" ;;
	esac
	HOLD="$TMP/hold_reader"
	# shellcheck disable=SC2046
	if ! ${CC:-cc} -std=c11 -D_GNU_SOURCE -g $SAN -I"$ROOT/include" "$ROOT/tests/helpers/hold_reader.c" \
		"$BIN/../libtickcache.a" $(pkg-config --libs liburcu libxxhash) -lpthread -o "$HOLD" 2>"$TMP/cc.err"; then
		echo "cannot build tests/helpers/hold_reader.c:"; cat "$TMP/cc.err"; exit 1
	fi
fi
tc_need "$INSPECT" "$SWEEPER" "$DEMO"

A="$P-a"; B="$P-b"; C="$P-c"; D="$P-d"; E="$P-e"; F="$P-f"

# ---------------------------------------------------------------------------
echo "# usage errors: exit 2, one-line error then the usage"
# ---------------------------------------------------------------------------
expect 2 "no command" "$INSPECT"
is "usage error first line" "$(head -1 "$TMP/err")" "shm-inspect: no command given"
is "a usage error is two lines: the error and where the usage is" "$(sed -n '2,$p' "$TMP/err")" "Try 'shm-inspect --help' for the usage."
expect 2 "unknown command" "$INSPECT" frobnicate
expect 2 "unknown option" "$INSPECT" list --bogus
expect 2 "missing argument" "$INSPECT" stat
expect 2 "extra argument" "$INSPECT" stat "$A" extra
expect 2 "option of another command" "$INSPECT" stat "$A" --clean
expect 2 "--hex with --raw" "$INSPECT" get "$A" k --hex --raw
expect 2 "--limit not a number" "$INSPECT" keys "$A" --limit x
expect 2 "--ttl not a duration" "$INSPECT" set "$A" k v --ttl 5x
expect 2 "create with bad size" "$INSPECT" create "$A" --entries 1024 --memory 12Q
expect 2 "create with bad eviction" "$INSPECT" create "$A" --entries 1024 --memory 1M --eviction fifo
expect 2 "create with bad mode" "$INSPECT" create "$A" --entries 1024 --memory 1M --mode 999
# issue 12.3: a value starting with '-' is not named as the bad option.
expect 2 "a negative value without --" "$INSPECT" set "$A" pnl -12.5
is "the bad option is named, with the hint" "$(head -1 "$TMP/err")" \
	"shm-inspect: unknown option '-1'; a value that starts with '-' goes after '--' (set NAME KEY -- -12.5)"
expect 2 "an unknown long option" "$INSPECT" list --bogus
has "named whole" "$ERR" "unknown option '--bogus'"
# issue 12.17: a TTL that wrapped around is refused, not "the default".
expect 2 "--ttl 2^64-1" "$INSPECT" set "$A" k v --ttl 18446744073709551615
expect 2 "--ttl over 100 years" "$INSPECT" set "$A" k v --ttl 3155760000001
has "--ttl error says the bound" "$ERR" "100 years"
expect 2 "invalid segment name" "$INSPECT" stat "../x"
expect 2 "purge without GLOB/--expired/--all" "$INSPECT" purge "$A"
expect 2 "purge with GLOB and --all" "$INSPECT" purge "$A" "x*" --all
expect 2 "key too long" "$INSPECT" get "$A" "$(printf 'k%.0s' $(seq 1 513))"
expect 0 "--help" "$INSPECT" --help
has "--help prints usage" "$OUT" "usage: shm-inspect"

# ---------------------------------------------------------------------------
echo "# missing segment and key: exit 1"
# ---------------------------------------------------------------------------
expect 1 "stat of a missing segment" "$INSPECT" stat "$A"
has "message names the segment" "$ERR" "'$A' not found"
expect 1 "--json stat of a missing segment" "$INSPECT" --json stat "$A"
is "--json error object" "$(js 'd["error"]["exit"]')" "1"
expect 1 "get from a missing segment" "$INSPECT" get "$A" k
expect 1 "unlink of a missing segment" "$INSPECT" unlink "$A"

# issue 12.18: "not found" without errno text after it.
expect 1 "get of a missing segment" "$INSPECT" get "$A" k
is "one clean message" "$(head -1 "$TMP/err")" "shm-inspect: segment '$A' not found"

# ---------------------------------------------------------------------------
echo "# issue 12.11, 12.15: a directory, an empty file"
# ---------------------------------------------------------------------------
mkdir /dev/shm/tickcache."$P-dir"
expect 3 "stat of a directory named like a segment" "$INSPECT" stat "$P-dir"
has "says it is a directory" "$ERR" "is a directory, not a segment"
expect 3 "--json stat of it" "$INSPECT" --json stat "$P-dir"
is "reason" "$(js 'd["error"]["reason"]')" "not a segment"
rmdir /dev/shm/tickcache."$P-dir"
: >/dev/shm/tickcache."$P-empty"
expect 3 "stat of an empty segment file" "$INSPECT" stat "$P-empty"
has "explains the empty file" "$ERR" "is empty, a creation that never finished"
has "names the commands that mend it" "$ERR" "'shm-inspect create $P-empty' builds it anew, 'shm-inspect unlink $P-empty --force' removes it"
expect 3 "unlink of it without --force" "$INSPECT" unlink "$P-empty"
expect 0 "create builds it, as TC_CREATE does" "$INSPECT" --json create "$P-empty" --entries 1K --memory 1M
is "created with the geometry asked" "$(js 'd["max_entries"]')" "1024"
has "create says it was rebuilt" "$ERR" "built anew"
expect 0 "and it is a segment now" "$INSPECT" stat "$P-empty"
expect 4 "create again: it exists" "$INSPECT" create "$P-empty"
expect 0 "unlink it" "$INSPECT" unlink "$P-empty"

# ---------------------------------------------------------------------------
echo "# a corrupt segment: exit 3, listed with its error, removable with --force"
# ---------------------------------------------------------------------------
Z="$P-z"
head -c 65536 /dev/urandom >/dev/shm/tickcache."$Z"
expect 3 "stat of a corrupt segment" "$INSPECT" stat "$Z"
has "says corrupt" "$ERR" "corrupt"
expect_host 0 "list with a corrupt segment" "$INSPECT" --json list
is "corrupt segment listed with an error" "$(js "[(s['status'], s['entries']) for s in d if s['name']=='$Z']")" '[["error", null]]'
expect 3 "sweeper --once on a corrupt segment" "$SWEEPER" --once "$Z"
expect 3 "unlink of a corrupt segment without --force" "$INSPECT" unlink "$Z"
has "suggests --force" "$ERR" "--force"
expect 0 "unlink --force of a corrupt segment" "$INSPECT" unlink "$Z" --force
is "corrupt segment removed" "$(ls /dev/shm/tickcache."$Z" 2>/dev/null)" ""

# ---------------------------------------------------------------------------
echo "# create / list / stat"
# ---------------------------------------------------------------------------
expect 0 "create" "$INSPECT" create "$A" --entries 1024 --memory 2M --mode 0640 --eviction none
has "create says what it made" "$OUT" "created $A"
is "segment file mode" "$(stat -c %a /dev/shm/tickcache."$A")" "640"
expect 4 "create of an existing segment" "$INSPECT" create "$A" --entries 1024 --memory 2M
# issue 12.18: the library's defaults when --entries and --memory are left out.
# (The default arena is 64 MiB: skipped where /dev/shm has less room, as in
# a container's default 64 MB /dev/shm.)
if [ "$(df -Pm /dev/shm | awk 'NR == 2 { print $4 }')" -ge 160 ]; then
	expect 0 "create with the defaults" "$INSPECT" --json create "$P-dflt"
	is "default geometry" "$(js '[d["max_entries"], d["memory_bytes"], d["max_readers"]]')" "[65536, 67108864, 128]"
	expect 0 "stat (table) of a new segment" "$INSPECT" stat "$P-dflt"
	is "memory_used in words" "$(echo "$OUT" | sed -n 's/^memory_used *//p' | sed 's/^[0-9.]*[BKMG] (\([0-9]*\) bytes, \([0-9.]*\)% of 64.0M)$/ok/')" "ok"
	expect 0 "unlink it" "$INSPECT" unlink "$P-dflt"
else
	echo "skip create with the default geometry: less than 160 MB free in /dev/shm"
fi
expect 0 "--mode 0666 is obeyed" "$INSPECT" create "$P-wide" --entries 1K --memory 1M --mode 0666
has "with a warning" "$ERR" "warning: mode 0666 lets every user of this host write to the segment"
expect 0 "unlink it" "$INSPECT" unlink "$P-wide"
expect 0 "stat --json" "$INSPECT" --json stat "$A"
is "stat max_entries" "$(js 'd["max_entries"]')" "1024"
is "stat memory_bytes" "$(js 'd["memory_bytes"]')" "2097152"
is "stat mode" "$(js 'd["mode"]')" "0640"
is "stat eviction" "$(js 'd["eviction"]')" "none"
is "stat checksums off" "$(js 'd["checksums"]')" "false"
is "stat entries of a new segment" "$(js 'd["entries"]')" "0"
is "stat has every documented field" "$(js 'all(k in d for k in ["hits","misses","sets","deletes","expirations","evictions","entries","memory_used","errors","hit_rate","readers","epoch_lag","uptime_ms","classes","index_fill"])')" "true"
expect 0 "stat (table)" "$INSPECT" stat "$A"
has "stat table shows hits" "$OUT" "hits"
is "memory_used in words (issue 12.18)" "$(echo "$OUT" | sed -n 's/^memory_used *//p')" "0B (0 bytes, 0.0% of 2.0M)"
expect 0 "create with suffixes and ttl" "$INSPECT" create "$F" --entries 1K --memory 1M --ttl 10m --eviction lru --readers 8
expect 0 "stat --json of the second" "$INSPECT" --json stat "$F"
is "K suffix on entries" "$(js 'd["max_entries"]')" "1024"
is "default ttl from --ttl 10m" "$(js 'd["default_ttl_ms"]')" "600000"
is "eviction lru" "$(js 'd["eviction"]')" "lru"
is "readers" "$(js 'd["max_readers"]')" "8"
expect_host 0 "list" "$INSPECT" list
has "list shows the segment" "$OUT" "$A"
has "list has a header" "$OUT" "ENTRIES"
expect 0 "list GLOB --json" "$INSPECT" --json list "$P-*"
is "list GLOB shows only the matching segments" "$(js 'sorted(s["name"] for s in d)')" "[\"$A\", \"$F\"]"
expect_host 0 "list --json" "$INSPECT" --json list
is "list --json has the segment with 0 entries" "$(js "[s['entries'] for s in d if s['name']=='$A']")" "[0]"
is "list --json fields" "$(js "sorted(k for k in [s for s in d if s['name']=='$A'][0] if k in ('name','entries','max_entries','memory_used','memory_bytes','hit_rate','readers','attached','sweeper_pid','age_ms'))")" \
	'["age_ms", "attached", "entries", "hit_rate", "max_entries", "memory_bytes", "memory_used", "name", "readers", "sweeper_pid"]'

# ---------------------------------------------------------------------------
echo "# set / get / keys / del"
# ---------------------------------------------------------------------------
expect 0 "set" "$INSPECT" set "$A" greeting "hello world"
is "set prints OK" "$OUT" "OK"
expect 0 "get" "$INSPECT" get "$A" greeting
is "get prints the text value" "$OUT" "hello world"
expect 0 "get --json" "$INSPECT" --json get "$A" greeting
is "get --json value" "$(js 'd["value"]')" "hello world"
is "get --json encoding" "$(js 'd["encoding"]')" "text"
is "get --json len" "$(js 'd["len"]')" "11"
is "get --json never expires" "$(js '[d["expires_ms"], d["ttl_ms"]]')" "[0, null]"
expect 0 "get --hex" "$INSPECT" get "$A" greeting --hex
is "get --hex output" "$OUT" "68656c6c6f20776f726c64"
"$INSPECT" get "$A" greeting --raw >"$TMP/raw"
is "get --raw is the exact bytes" "$(od -An -tx1 "$TMP/raw" | tr -d ' \n')" "68656c6c6f20776f726c64"
expect 0 "set a binary value with --hex" "$INSPECT" set "$A" bin 00ff10 --hex
expect 0 "get of a binary value" "$INSPECT" get "$A" bin
is "binary value printed as hex" "$OUT" "00ff10"
expect 0 "get --json of a binary value" "$INSPECT" --json get "$A" bin
is "binary --json" "$(js '[d["encoding"], d["value"], d["len"]]')" '["hex", "00ff10", 3]'
expect 0 "set with --type" "$INSPECT" set "$A" typed v --type 7
expect 0 "get --json type" "$INSPECT" --json get "$A" typed
is "type stored" "$(js 'd["type"]')" "7"
expect 0 "set with --ttl" "$INSPECT" set "$A" ttlkey v --ttl 60000
expect 0 "get --json of a key with a TTL" "$INSPECT" --json get "$A" ttlkey
is "ttl_ms within (0, 60000]" "$(js '0 < d["ttl_ms"] <= 60000 and d["expires_ms"] > 0')" "true"
expect 0 "set counter-typed value" "$INSPECT" set "$A" ctr 2a00000000000000 --hex --type 0xC0117E40
expect 0 "get of a counter" "$INSPECT" get "$A" ctr
is "counter printed as a number" "$OUT" "42"
expect 1 "get of a missing key" "$INSPECT" get "$A" nosuchkey
has "missing key message" "$ERR" "'nosuchkey' not found"
expect 1 "--json get of a missing key" "$INSPECT" --json get "$A" nosuchkey
is "--json error exit" "$(js 'd["error"]["exit"]')" "1"
expect 0 "set a value starting with a dash after --" "$INSPECT" set "$A" neg -- -5
expect 0 "get it" "$INSPECT" get "$A" neg
is "dash value" "$OUT" "-5"
expect 0 "set a UTF-8 key and value" "$INSPECT" set "$F" 'café' 'naïve €'
expect 0 "get --json of UTF-8 text" "$INSPECT" --json get "$F" 'café'
is "UTF-8 value as JSON text" "$(js '[d["key"], d["value"], d["encoding"], d["len"]]')" '["caf\u00e9", "na\u00efve \u20ac", "text", 10]'
expect 0 "set a binary key" "$INSPECT" set "$F" $'bin\xff\x01' v
expect 0 "keys --json with a binary key" "$INSPECT" --json keys "$F" 'bin*'
is "non-UTF-8 bytes as \\u00XX" "$(js '[k["key"] for k in d]')" '["bin\u00ff\u0001"]'
# issue 12.5: key_hex tells a Latin-1 byte from the same letter in UTF-8.
expect 0 "set lat1:\\xe9" "$INSPECT" set "$F" $'lat1:\xe9' a
expect 0 "set lat1:é (UTF-8)" "$INSPECT" set "$F" 'lat1:é' b
expect 0 "keys --json of both" "$INSPECT" --json keys "$F" 'lat1:*'
is "key_hex is exact" "$(js '[k["key_hex"] for k in d]')" '["6c6174313ac3a9", "6c6174313ae9"]'
is "and round-trips" "$(js '[bytes.fromhex(k["key_hex"]).decode("latin-1") for k in d]')" "$(python3 -c 'import json; print(json.dumps(["lat1:\u00c3\u00a9", "lat1:\u00e9"]))')"
expect 0 "keys table escapes it" "$INSPECT" keys "$F" 'bin*'
has "\\xHH in the table" "$OUT" 'bin\xff\x01'
for k in tick:AAPL tick:MSFT quote:X; do "$INSPECT" set "$A" "$k" 1 >/dev/null; done
expect 0 "keys GLOB --json" "$INSPECT" --json keys "$A" 'tick:*'
is "keys matching the glob" "$(js '[k["key"] for k in d]')" '["tick:AAPL", "tick:MSFT"]'
expect 0 "keys --limit" "$INSPECT" --json keys "$A" --limit 2
is "keys --limit 2 gives 2" "$(js 'len(d)')" "2"
# issue 12.14: the first N keys in order, and a word that more exist.
is "keys --limit 2 gives the first two in order" "$(js '[k["key"] for k in d]')" '["bin", "ctr"]'
has "keys --limit says more exist" "$ERR" "2 of 9 matching keys shown (--limit 2); 7 more"
expect 0 "keys --limit above the count" "$INSPECT" --json keys "$A" --limit 100
is "no note when all are shown" "$ERR" ""
expect 0 "keys (table)" "$INSPECT" keys "$A"
has "keys table lists a key" "$OUT" "tick:AAPL"
is "keys table: header + 9 keys" "$(echo "$OUT" | wc -l)" "10"
expect 0 "keys with no match" "$INSPECT" --json keys "$A" 'nomatch*'
is "no match is an empty array" "$(js 'd')" "[]"
expect 0 "del" "$INSPECT" del "$A" quote:X
is "del prints deleted 1" "$OUT" "deleted 1"
expect 1 "del of a missing key" "$INSPECT" del "$A" quote:X
expect 0 "stat --json after writes" "$INSPECT" --json stat "$A"
is "entries counts live keys" "$(js 'd["entries"]')" "8"
is "sets and deletes counted" "$(js 'd["sets"] >= 9 and d["deletes"] >= 1 and d["hits"] >= 8 and d["misses"] >= 2')" "true"
is "memory_used grew" "$(js 'd["memory_used"] > 0')" "true"

# ---------------------------------------------------------------------------
echo "# the commands a Redis user reaches for (issue 12)"
# ---------------------------------------------------------------------------
R="$P-r"
expect 0 "create R" "$INSPECT" create "$R" --entries 1K --memory 2M
expect 0 "set user:1:name" "$INSPECT" set "$R" user:1:name bob
expect 0 "set user:2:name" "$INSPECT" set "$R" user:2:name alice
expect 0 "mget" "$INSPECT" mget "$R" user:1:name nope user:2:name
is "mget prints values in order, (nil) for a miss" "$OUT" "$(printf 'bob\n(nil)\nalice')"
expect 0 "mget --json" "$INSPECT" --json mget "$R" user:1:name nope
is "mget --json" "$(js '[(k["key"], k["found"], k["value"]) for k in d]')" '[["user:1:name", true, "bob"], ["nope", false, null]]'
expect 2 "mget without a key" "$INSPECT" mget "$R"
expect 0 "incr a new counter" "$INSPECT" incr "$R" hits:a
is "starts from 0" "$OUT" "1"
expect 0 "incr by 41" "$INSPECT" incr "$R" hits:a 41
is "new value printed" "$OUT" "42"
expect 0 "incr by a negative delta after --" "$INSPECT" --json incr "$R" hits:a -- -2
is "incr --json" "$(js '[d["key"], d["value"]]')" '["hits:a", 40]'
expect 0 "get of the counter" "$INSPECT" get "$R" hits:a
is "counter value" "$OUT" "40"
expect 3 "incr of a text value" "$INSPECT" incr "$R" user:1:name
has "not a counter" "$ERR" "is not a counter"
expect 2 "incr with a bad delta" "$INSPECT" incr "$R" hits:a 1.5
expect 0 "exists of a present key" "$INSPECT" exists "$R" user:1:name
is "prints 1" "$OUT" "1"
expect 1 "exists of a missing key" "$INSPECT" exists "$R" nope
is "prints 0" "$OUT" "0"
expect 1 "exists --json of a missing key" "$INSPECT" --json exists "$R" nope
is "exists --json" "$(js 'd["exists"]')" "false"
expect 0 "ttl KEY without expiry" "$INSPECT" ttl "$R" user:1:name
is "-1 for never" "$OUT" "-1"
expect 0 "expire KEY 10m" "$INSPECT" expire "$R" user:1:name 10m
is "expire prints OK" "$OUT" "OK"
expect 0 "ttl KEY" "$INSPECT" ttl "$R" user:1:name
is "remaining TTL within (0, 600000]" "$([ "$OUT" -gt 0 ] && [ "$OUT" -le 600000 ] && echo yes)" "yes"
expect 0 "ttl --json KEY" "$INSPECT" --json ttl "$R" user:1:name
is "ttl --json" "$(js '0 < d["ttl_ms"] <= 600000 and d["expires_ms"] > 0')" "true"
expect 0 "expire KEY 0 removes the expiry" "$INSPECT" expire "$R" user:1:name 0
expect 0 "ttl KEY after" "$INSPECT" ttl "$R" user:1:name
is "never again" "$OUT" "-1"
expect 1 "expire of a missing key" "$INSPECT" expire "$R" nope 5s
expect 2 "expire with a bad TTL" "$INSPECT" expire "$R" user:1:name 5x
expect 1 "ttl of a missing key" "$INSPECT" ttl "$R" nope
expect 0 "the TTL policy list is still ttl NAME" "$INSPECT" --json ttl "$R"
is "policy list" "$(js 'd["policies"]')" "[]"
head -c 300000 /dev/urandom >"$TMP/big.bin"
expect 0 "set --file of 300 KB" "$INSPECT" set "$R" big --file "$TMP/big.bin"
"$INSPECT" get "$R" big --raw >"$TMP/big.out"
is "the file reads back exactly" "$(cmp "$TMP/big.bin" "$TMP/big.out" && echo same)" "same"
printf 'from\nstdin' | "$INSPECT" set "$R" piped --file - >/dev/null
expect 0 "get of a value set from stdin" "$INSPECT" get "$R" piped --raw
is "stdin value" "$OUT" "$(printf 'from\nstdin')"
head -c $((1024 * 1024 + 1)) /dev/zero >"$TMP/huge.bin"
expect 2 "set --file over TC_VALUE_MAX" "$INSPECT" set "$R" huge --file "$TMP/huge.bin"
expect 2 "set with VALUE and --file" "$INSPECT" set "$R" k v --file "$TMP/big.bin"
expect 2 "set with neither" "$INSPECT" set "$R" k
expect 1 "set --file of a missing file" "$INSPECT" set "$R" k --file "$TMP/none"
expect 0 "keys --values" "$INSPECT" keys "$R" 'user:*' --values
has "values shown" "$OUT" "alice"
expect 0 "keys --values --json" "$INSPECT" --json keys "$R" '[hu]*' --values
is "keys --values --json" "$(js '[(k["key"], k["encoding"], k["value"]) for k in d]')" \
	'[["hits:a", "counter", "40"], ["user:1:name", "text", "bob"], ["user:2:name", "text", "alice"]]'
for k in tick:AAPL:bid tick:AAPL:ask tick:MSFT:bid plain; do "$INSPECT" set "$R" "$k" 12345 >/dev/null; done
expect 0 "prefixes --json" "$INSPECT" --json prefixes "$R"
is "keys and bytes by first prefix, largest first" "$(js '[(p["prefix"], p["keys"]) for p in d["prefixes"]]')" \
	'[["", 3], ["tick:", 3], ["user:", 2], ["hits:", 1]]'
is "bytes are key + value" "$(js '[p["bytes"] for p in d["prefixes"] if p["prefix"]=="user:"]')" "[30]"
expect 0 "prefixes --depth 2" "$INSPECT" --json prefixes "$R" 'tick:*' --depth 2
is "second level" "$(js '[(p["prefix"], p["keys"]) for p in d["prefixes"]]')" '[["tick:AAPL:", 2], ["tick:MSFT:", 1]]'
expect 0 "prefixes (table)" "$INSPECT" prefixes "$R"
has "table total" "$OUT" "(total)"
expect 2 "prefixes --depth 0" "$INSPECT" prefixes "$R" --depth 0
expect_host 0 "summary --json" "$INSPECT" --json summary
is "summary counts this segment" "$(js 'd["segments"] >= 1 and d["entries"] >= 9 and d["memory_bytes"] >= 2097152')" "true"
expect_host 0 "summary (INFO-like)" "$INSPECT" summary
has "summary sections" "$OUT" "# Keyspace"
expect 0 "metrics of R" "$INSPECT" metrics "$R"
has "tickcache_up" "$OUT" "tickcache_up{segment=\"$R\"} 1"
has "hits counter" "$OUT" "# TYPE tickcache_hits_total counter"
has "entries gauge" "$OUT" "tickcache_entries{segment=\"$R\"} 9"
has "memory limit" "$OUT" "tickcache_memory_limit_bytes{segment=\"$R\"} 2097152"
has "size classes" "$OUT" 'tickcache_class_blocks{segment="'"$R"'",size="'
cp "$TMP/out" "$TMP/metrics.prom"
if command -v promtool >/dev/null; then
	run promtool check metrics <"$TMP/metrics.prom"
	is "promtool check metrics accepts the output" "$RC $ERR" "0 "
else
	echo "skip promtool check metrics: promtool missing (tools/deps.sh test installs Debian's prometheus)"
fi
: >/dev/shm/tickcache."$P-broken"
expect 0 "metrics of an unreadable segment" "$INSPECT" metrics "$P-broken"
is "up 0 and no other sample" "$(echo "$OUT" | grep -v '^#')" "tickcache_up{segment=\"$P-broken\"} 0"
rm -f /dev/shm/tickcache."$P-broken"
expect 2 "metrics --json" "$INSPECT" --json metrics
# issue 12.18: counters scribbled so that hits + misses wraps around 2^64
# (the library's own hit_rate then reads 222% and more): the tools' hit
# rate stays within 0..100%.
SCRIB="$BIN/../tests/scribble_counters"
if [ ! -x "$SCRIB" ]; then
	SCRIB="$TMP/scribble_counters"
	${CC:-cc} -std=c11 -D_GNU_SOURCE -I"$ROOT/include" -I"$ROOT/shm" "$ROOT/tests/helpers/scribble_counters.c" -o "$SCRIB" 2>/dev/null || SCRIB=""
fi
if [ -n "$SCRIB" ]; then
	expect 0 "scribble the totals" "$SCRIB" "$R" 18446744073709551600 30
	expect 0 "stat --json of the scribbled segment" "$INSPECT" --json stat "$R"
	is "hit_rate within 0..1" "$(js '0 <= d["hit_rate"] <= 1')" "true"
	expect 0 "stat (table)" "$INSPECT" stat "$R"
	is "hit rate shown as at most 100%" "$(echo "$OUT" | sed -n 's/^hit_rate *//p')" "100.00%"
	expect 0 "list --json" "$INSPECT" --json list "$R"
	is "list hit_rate within 0..1" "$(js '0 <= d[0]["hit_rate"] <= 1')" "true"
else
	echo "skip scribbled counters: cannot build tests/helpers/scribble_counters.c"
fi
expect 0 "unlink R" "$INSPECT" unlink "$R"

# ---------------------------------------------------------------------------
echo "# purge"
# ---------------------------------------------------------------------------
expect 0 "purge GLOB" "$INSPECT" purge "$A" 'tick:*'
is "purge prints deleted N" "$OUT" "deleted 2"
expect 0 "keys after purge" "$INSPECT" --json keys "$A" 'tick:*'
is "purged keys are gone" "$(js 'len(d)')" "0"
expect 0 "purge --expired (nothing expired)" "$INSPECT" purge "$A" --expired
is "purge --expired count" "$OUT" "deleted 0"
expect 0 "purge --all --json" "$INSPECT" --json purge "$A" --all
is "purge --all deleted the rest" "$(js 'd["deleted"]')" "6"
expect 0 "stat after purge" "$INSPECT" --json stat "$A"
is "no entries left" "$(js 'd["entries"]')" "0"

# ---------------------------------------------------------------------------
echo "# health"
# ---------------------------------------------------------------------------
expect 0 "health" "$INSPECT" health "$A"
has "health verdict" "$OUT" "healthy"
# issue 12.7: health reads only; the lifetime counters monitoring reads stay.
expect 0 "counters before health" "$INSPECT" --json stat "$A"
CTR0=$(js '[d[k] for k in ("hits","misses","sets","adds","deletes","ops","errors")]')
expect 0 "health --json" "$INSPECT" --json health "$A"
is "health --json ok" "$(js '[d["ok"], d["round_trip"]]')" "[true, false]"
is "health does no round trip by default" "$(js '[c["name"] for c in d["checks"] if c["name"] in ("set","get","delete")]')" "[]"
expect 0 "counters after health" "$INSPECT" --json stat "$A"
is "health changed no lifetime counter" "$(js '[d[k] for k in ("hits","misses","sets","adds","deletes","ops","errors")]')" "$CTR0"
expect 0 "health --write --json" "$INSPECT" --json health "$A" --write
is "health --write checks pass" "$(js 'sorted(set(c["status"] for c in d["checks"] if c["name"] in ("set","get","peek","delete","get after delete")))')" '["ok"]'
is "health --write did the round trip" "$(js '[d["round_trip"], len([c for c in d["checks"] if c["name"] in ("set","get","peek","delete","get after delete")])]')" "[true, 5]"
is "health leaves no scratch key" "$("$INSPECT" --json keys "$A" '__tc_health*')" "[]"
expect 1 "health of a missing segment" "$INSPECT" health "$P-none"
H="$P-h"
expect 0 "create a 64-entry segment without eviction" "$INSPECT" create "$H" --entries 64 --memory 64K --eviction none
for i in $(seq 1 64); do "$INSPECT" set "$H" "k$i" v >/dev/null || bad "set k$i"; done
expect 3 "set into a full segment (eviction none)" "$INSPECT" set "$H" k65 v
has "full is explained" "$ERR" "No space left"
expect 3 "health --write of a full segment" "$INSPECT" --json health "$H" --write
is "health says why" "$(js '[(c["name"], c["status"]) for c in d["checks"]][:2]')" '[["set", "fail"], ["get", "fail"]]'
is "health --json ok false" "$(js 'd["ok"]')" "false"
expect 0 "unlink H" "$INSPECT" unlink "$H"
# issue 12.6: a reader stuck in a read section blocks reclamation: unhealthy.
STK="$P-stuck"
expect 0 "create a segment" "$INSPECT" create "$STK" --entries 1K --memory 1M
"$HOLD" "$STK" --section >"$TMP/hs" 2>&1 &
HS=$!; PIDS+=("$HS")
wait_ready "$TMP/hs"
for i in 1 2 3; do
	"$INSPECT" set "$STK" "k$i" v >/dev/null; "$INSPECT" del "$STK" "k$i" >/dev/null
	"$SWEEPER" --once "$STK" 2>/dev/null
done
expect 0 "readers shows it stuck" "$INSPECT" --json readers "$STK"
is "stuck, with its command name" "$(js "[(r['state'], r['comm']) for r in d['readers'] if r['pid']==$HS]")" '[["stuck", "hold_reader"]]'
expect 3 "health with a stuck reader" "$INSPECT" --json health "$STK"
is "the stuck-reader check fails" "$(js '[(c["name"], c["status"]) for c in d["checks"] if c["name"]=="stuck readers"]')" '[["stuck readers", "fail"]]'
has "and names the process" "$(js '[c["detail"] for c in d["checks"] if c["name"]=="stuck readers"][0]')" "pid $HS hold_reader"
expect 0 "readers (table) names the command" "$INSPECT" readers "$STK"
has "COMMAND column" "$OUT" "hold_reader"
kill -TERM "$HS"; wait "$HS" 2>/dev/null
expect 0 "healthy once the reader left" "$INSPECT" health "$STK"
expect 0 "unlink it" "$INSPECT" unlink "$STK"

# ---------------------------------------------------------------------------
echo "# watch"
# ---------------------------------------------------------------------------
expect 0 "watch --count 2" "$INSPECT" watch "$A" --count 2 --interval 50
has "watch shows rates" "$OUT" "ops/s"
is "watch printed 2 frames" "$(grep -c '^tickcache ' "$TMP/out")" "2"
expect 0 "watch --json --count 3" "$INSPECT" --json watch "$A" --count 3 --interval 20
is "three JSON lines" "$(python3 -c 'import json,sys; print(sum(1 for l in sys.stdin if "entries" in json.loads(l)))' <"$TMP/out")" "3"
expect 2 "watch --interval 0" "$INSPECT" watch "$A" --interval 0
# issue 12.8: an interval without operations has no mean latency.
expect 0 "stat: there are latency samples" "$INSPECT" --json stat "$A"
is "samples exist" "$(js 'd["lat_samples"] > 0 and d["lat_mean_ns"] > 0')" "true"
expect 0 "watch --json of an idle segment" "$INSPECT" --json watch "$A" --count 2 --interval 20
is "no mean latency in idle intervals" "$(python3 -c 'import json,sys; print([json.loads(l)["lat_mean_ns"] for l in sys.stdin])' <"$TMP/out")" "[None, None]"
expect 0 "watch (table) of an idle segment" "$INSPECT" watch "$A" --count 1
has "shows none" "$OUT" "latency  mean - (sampled, this interval)"
# issue 12.9: attached never counts the inspecting process.
expect 0 "list --json" "$INSPECT" --json list "$A"
is "list: nobody attached" "$(js 'd[0]["attached"]')" "0"
expect 0 "stat --json" "$INSPECT" --json stat "$A"
is "stat: nobody attached" "$(js 'd["attached"]')" "0"
expect 0 "watch --json" "$INSPECT" --json watch "$A" --count 1
is "watch: nobody attached" "$(js 'd["attached"]')" "0"

# ---------------------------------------------------------------------------
echo "# a segment truncated under a running command: exit 3, one line naming it"
# ---------------------------------------------------------------------------
# Not a scribble: every access past the new end is SIGBUS (docs/design.md,
# "What a scribble can do").  watch holds its handle between frames, so the
# truncation lands between two reads of the mapping, every time.
T="$P-trunc"
expect 0 "create a segment to truncate" "$INSPECT" create "$T" --entries 1K --memory 1M
"$INSPECT" --json watch "$T" --interval 50 >"$TMP/tw.out" 2>"$TMP/tw.err" &
TW=$!
PIDS+=("$TW")
wait_grep '"entries"' "$TMP/tw.out" || bad "watch printed no frame"
truncate -s 0 /dev/shm/tickcache."$T"
wait "$TW"
is "watch of a segment truncated under it: exit 3, not SIGBUS" "$?" "3"
is "one line on stderr" "$(wc -l <"$TMP/tw.err")" "1"
is "the line names the segment, the byte and the file's size now" \
	"$(sed 's/at byte [0-9]*;/at byte B;/' "$TMP/tw.err")" \
	"shm-inspect: segment '$T' was truncated while shm-inspect read it (a bus error at byte B; its file now has 0 bytes): another process shrank a live segment, which tickcache does not survive"
is "--json: the error document follows the frames" \
	"$(tail -1 "$TMP/tw.out" | python3 -c 'import json,sys; e=json.load(sys.stdin)["error"]; print(e["reason"], e["exit"], e["code"])')" \
	"segment truncated 3 -30804"
is "--json: every line before it is a whole frame" \
	"$(head -n -1 "$TMP/tw.out" | python3 -c 'import json,sys; print(all("entries" in json.loads(l) for l in sys.stdin))')" "True"
expect 3 "the truncated segment is an empty file now" "$INSPECT" stat "$T"
has "said so" "$ERR" "is empty, a creation that never finished"
expect 0 "and is removed (with --force: an empty file cannot say who uses it)" "$INSPECT" unlink "$T" --force
# A SIGBUS that another process sends is no fault: its default action.
expect 0 "create a segment to watch" "$INSPECT" create "$T" --entries 1K --memory 1M
"$INSPECT" --json watch "$T" --interval 50 >"$TMP/tw.out" 2>"$TMP/tw.err" &
TW=$!
PIDS+=("$TW")
wait_grep '"entries"' "$TMP/tw.out" || bad "watch printed no frame"
kill -BUS "$TW"
wait "$TW" 2>/dev/null
is "kill -BUS: killed by SIGBUS (128 + 7)" "$?" "135"
is "kill -BUS: nothing said" "$(cat "$TMP/tw.err")" ""
expect 0 "unlink it" "$INSPECT" unlink "$T" --force

# ---------------------------------------------------------------------------
echo "# audit: only when idle"
# ---------------------------------------------------------------------------
expect 0 "audit of an idle segment" "$INSPECT" --json audit "$A"
is "audit recounts the live keys" "$(js '[d["live_before"], d["live_after"], d["recovered"]]')" "[0, 0, 0]"
"$HOLD" "$A" >"$TMP/h0" 2>&1 &
H0=$!; PIDS+=("$H0")
wait_ready "$TMP/h0"
expect 4 "audit while a process is attached" "$INSPECT" audit "$A"
has "audit names the process" "$ERR" "pid $H0"
kill -TERM "$H0"; wait "$H0" 2>/dev/null

# ---------------------------------------------------------------------------
echo "# unlink refuses while attached (exit 4), --force works"
# ---------------------------------------------------------------------------
"$HOLD" "$A" >"$TMP/h1" 2>&1 &
H1=$!; PIDS+=("$H1")
wait_ready "$TMP/h1" || bad "holder did not start: $(cat "$TMP/h1")"
expect 4 "unlink while a process is attached" "$INSPECT" unlink "$A"
has "unlink names the holder" "$ERR" "pid $H1"
expect 4 "--json unlink while attached" "$INSPECT" --json unlink "$A"
is "--json refusal" "$(js 'd["error"]["exit"]')" "4"
# issue 12.10, 12.18: the refusal has a reason and a list of pids with names.
is "--json refusal: reason and attached pids" "$(js '[d["error"]["reason"], d["error"]["attached"]]')" \
	"[\"segment in use\", [{\"pid\": $H1, \"comm\": \"hold_reader\", \"handles\": 1}]]"
has "the message names the process" "$ERR" "pid $H1 (hold_reader, 1 handle)"
expect 4 "--json audit while attached" "$INSPECT" --json audit "$A"
is "--json audit refusal" "$(js '[d["error"]["reason"], [a["pid"] for a in d["error"]["attached"]]]')" "[\"segment in use\", [$H1]]"
kill -TERM "$H1"; wait "$H1" 2>/dev/null
"$INSPECT" watch "$A" --count 400 --interval 50 >"$TMP/w1" 2>&1 &
W1=$!; PIDS+=("$W1")
wait_grep '^tickcache ' "$TMP/w1"
expect 4 "unlink while shm-inspect watch is attached" "$INSPECT" unlink "$A"
has "unlink names the watcher" "$ERR" "pid $W1"
kill -TERM "$W1"; wait "$W1"; is "watch exits 0 on SIGTERM" "$?" "0"
"$HOLD" "$A" >"$TMP/h1" 2>&1 &
H1=$!; PIDS+=("$H1")
wait_ready "$TMP/h1"
expect 0 "unlink --force while attached" "$INSPECT" unlink "$A" --force
has "unlink reports" "$OUT" "unlinked $A"
is "segment file gone" "$(ls /dev/shm/tickcache."$A" 2>/dev/null)" ""
expect 1 "stat after unlink" "$INSPECT" stat "$A"
kill -TERM "$H1"; wait "$H1" 2>/dev/null
"$INSPECT" watch "$F" --interval 50 >"$TMP/w2" 2>"$TMP/w2.err" &
W2=$!; PIDS+=("$W2")
wait_grep '^tickcache ' "$TMP/w2"
expect 0 "unlink --force under watch" "$INSPECT" unlink "$F" --force
wait "$W2"; is "watch exits 1 when its segment is removed" "$?" "1"
has "watch says why" "$(cat "$TMP/w2.err")" "was removed"
expect 0 "create F again" "$INSPECT" create "$F" --entries 1K --memory 1M --ttl 10m --eviction lru --readers 8
expect 0 "create again" "$INSPECT" create "$A" --entries 1024 --memory 1M
expect 0 "unlink with nobody attached" "$INSPECT" unlink "$A"

# ---------------------------------------------------------------------------
echo "# readers: a killed reader stays dead until --clean or the sweeper"
# ---------------------------------------------------------------------------
expect 0 "create B" "$INSPECT" create "$B" --entries 1024 --memory 1M
"$HOLD" "$B" --section >"$TMP/h2" 2>&1 &
H2=$!; PIDS+=("$H2")
wait_ready "$TMP/h2" || bad "reader did not start: $(cat "$TMP/h2")"
expect 0 "readers --json" "$INSPECT" --json readers "$B"
is "live reader in a section" "$(js "[(r['state'], r['in_section']) for r in d['readers'] if r['pid']==$H2]")" '[["alive", true]]'
expect 0 "readers (table)" "$INSPECT" readers "$B"
has "readers table lists the pid" "$OUT" " $H2 "
kill -9 "$H2"; wait "$H2" 2>/dev/null
expect 0 "readers after kill -9" "$INSPECT" --json readers "$B"
is "killed reader shown dead" "$(js "[r['state'] for r in d['readers'] if r['pid']==$H2]")" '["dead"]'
expect 0 "readers again" "$INSPECT" --json readers "$B"
is "dead slot stays listed" "$(js "[r['state'] for r in d['readers'] if r['pid']==$H2]")" '["dead"]'
expect 0 "readers --clean" "$INSPECT" --json readers "$B" --clean
is "--clean cleared one slot" "$(js 'd["cleared"]')" "1"
is "slot gone after --clean" "$(js "[r for r in d['readers'] if r['pid']==$H2]")" "[]"
"$HOLD" "$B" --section >"$TMP/h3" 2>&1 &
H3=$!; PIDS+=("$H3")
wait_ready "$TMP/h3"
kill -9 "$H3"; wait "$H3" 2>/dev/null
run "$INSPECT" --json readers "$B"
is "second killed reader dead" "$(js "[r['state'] for r in d['readers'] if r['pid']==$H3]")" '["dead"]'
expect 0 "sweeper --once clears it" "$SWEEPER" --once "$B"
run "$INSPECT" --json readers "$B"
is "sweeper cleared the dead slot" "$(js "[r for r in d['readers'] if r['pid']==$H3]")" "[]"
expect 0 "unlink B (the dead process no longer counts)" "$INSPECT" unlink "$B"

# ---------------------------------------------------------------------------
echo "# sweeper: usage, missing segment"
# ---------------------------------------------------------------------------
expect 2 "sweeper bad --interval" "$SWEEPER" --interval x
expect 2 "sweeper bad --log-level" "$SWEEPER" --log-level loud
expect 2 "sweeper bad name" "$SWEEPER" --once "a/b"
expect 2 "sweeper unknown option" "$SWEEPER" --frob
expect 1 "sweeper --once on a missing segment" "$SWEEPER" --once "$P-none"
expect 0 "sweeper --help" "$SWEEPER" --help

expect 0 "sweeper --help says what --budget counts" "$SWEEPER" --help
has "buckets of 7 slots (issue 12.4)" "$OUT" "index buckets (of 7 slots) per tc_sweep call"
expect 2 "sweeper bad --metrics-listen" "$SWEEPER" --once --metrics-listen 1.2.3:x
expect 2 "sweeper --metrics-textfile of a missing directory" "$SWEEPER" --once --metrics-textfile "$TMP/nodir"

# ---------------------------------------------------------------------------
echo "# sweeper: metrics (textfile, HTTP) and --log-file"
# ---------------------------------------------------------------------------
MS="$P-ms"
expect 0 "create MS" "$INSPECT" create "$MS" --entries 1K --memory 1M
expect 0 "set a key" "$INSPECT" set "$MS" k v
mkdir -p "$TMP/textfile"
expect 0 "sweeper --once --metrics-textfile" "$SWEEPER" --once --metrics-textfile "$TMP/textfile" "$MS"
is "only the .prom file is left (temp renamed)" "$(ls -A "$TMP/textfile")" "tickcache.prom"
has "the textfile has the segment" "$(cat "$TMP/textfile/tickcache.prom")" "tickcache_entries{segment=\"$MS\"} 1"
if command -v promtool >/dev/null; then
	run promtool check metrics <"$TMP/textfile/tickcache.prom"
	is "promtool accepts the textfile" "$RC $ERR" "0 "
else
	echo "skip promtool check metrics: promtool missing (tools/deps.sh test installs Debian's prometheus)"
fi
if "$SWEEPER" --once --metrics-listen 0 "$MS" 2>&1 | grep -q "built without libmicrohttpd"; then
	echo "skip --metrics-listen: shm-sweeper built without libmicrohttpd"
else
	"$SWEEPER" --foreground --interval 100 --metrics-listen 127.0.0.1:0 --log-file "$TMP/sw-http.log" "$MS" 2>"$TMP/sw-http.err" &
	SHT=$!; PIDS+=("$SHT")
	wait_grep "metrics at" "$TMP/sw-http.log"
	is "--log-file gets the log, stderr nothing" "$(grep -c 'metrics at http://127.0.0.1:0/metrics' "$TMP/sw-http.log") $(wc -c <"$TMP/sw-http.err")" "1 0"
	PORT=$(sed -n 's/.*metrics at .*(port \([0-9]*\)).*/\1/p' "$TMP/sw-http.log")
	scrape() { python3 -c 'import sys, urllib.request, urllib.error
try:
    r = urllib.request.urlopen(urllib.request.Request(sys.argv[1], method=sys.argv[2]), timeout=10)
    print(r.status, r.headers["Content-Type"]); sys.stdout.write(r.read().decode())
except urllib.error.HTTPError as e:
    print(e.code)' "$@"; }
	scrape "http://127.0.0.1:$PORT/metrics" GET >"$TMP/scrape"
	is "GET /metrics: 200, text format 0.0.4" "$(head -1 "$TMP/scrape")" "200 text/plain; version=0.0.4; charset=utf-8"
	has "scrape has the segment" "$(cat "$TMP/scrape")" "tickcache_up{segment=\"$MS\"} 1"
	has "scrape sees the sweeper" "$(cat "$TMP/scrape")" "tickcache_sweeper_up{segment=\"$MS\"} 1"
	if command -v promtool >/dev/null; then
		sed 1d "$TMP/scrape" >"$TMP/scrape.prom"
		run promtool check metrics <"$TMP/scrape.prom"
		is "promtool accepts the scrape" "$RC $ERR" "0 "
	fi
	is "another path is 404" "$(scrape "http://127.0.0.1:$PORT/" GET)" "404"
	is "POST is 405" "$(scrape "http://127.0.0.1:$PORT/metrics" POST)" "405"
	if command -v ss >/dev/null; then
		is "listens on loopback only" "$(ss -Hltn "sport = :$PORT" 2>/dev/null | awk '{print $4}' | sed 's/:[0-9]*$//' | sort -u | tr '\n' ' ')" "127.0.0.1 "
	fi
	kill -TERM "$SHT"; wait "$SHT"; is "sweeper with metrics exits 0" "$?" "0"
	has "the log file has the stop" "$(cat "$TMP/sw-http.log")" "stopping"
fi
expect 0 "sweeper daemon with --log-file" "$SWEEPER" --interval 100 --pidfile "$TMP/dl.pid" --log-file "$TMP/daemon.log" "$MS"
wait_grep "started" "$TMP/daemon.log"
DL=$(cat "$TMP/dl.pid" 2>/dev/null); [ -n "$DL" ] && PIDS+=("$DL")
has "the daemon logs to its --log-file (issue 12.18)" "$(cat "$TMP/daemon.log")" "shm-sweeper[$DL] info: started"
kill -TERM "$DL"
for _ in $(seq 1 100); do running "$DL" || break; sleep 0.05; done
expect 0 "unlink MS" "$INSPECT" unlink "$MS"

# ---------------------------------------------------------------------------
echo "# sweeper --once expires entries and reclaims memory"
# ---------------------------------------------------------------------------
expect 0 "create C" "$INSPECT" create "$C" --entries 1024 --memory 4M
for i in $(seq 1 60); do "$INSPECT" set "$C" "exp:$i" "value-$i-$(printf 'x%.0s' $(seq 1 40))" --ttl 100 >/dev/null || bad "set exp:$i"; done
for i in 1 2 3 4 5; do "$INSPECT" set "$C" "keep:$i" "v$i" >/dev/null; done
MEM1=$(json_field "$C" memory_used)
EXP0=$(json_field "$C" expirations)
sleep 0.4
expect 0 "sweeper --once" "$SWEEPER" --once --log-level debug "$C"
has "the idle segment was audited" "$ERR" "$C: idle audit"
expect 0 "stat after the sweep" "$INSPECT" --json stat "$C"
is "expired entries are gone from the count" "$(js 'd["entries"]')" "5"
is "expirations grew by 60" "$(js "d['expirations'] - $EXP0 >= 60")" "true"
is "memory_used dropped" "$(js "d['memory_used'] < $MEM1")" "true"
expect 0 "keys after the sweep" "$INSPECT" --json keys "$C" 'exp:*'
is "no expired key left" "$(js 'len(d)')" "0"
expect 0 "keep keys survive" "$INSPECT" --json keys "$C" 'keep:*'
is "five keep keys" "$(js 'len(d)')" "5"

# ---------------------------------------------------------------------------
echo "# sweeper: a small --budget still covers the whole index in one pass; SIGHUP"
# ---------------------------------------------------------------------------
for i in $(seq 1 30); do "$INSPECT" set "$C" "small:$i" v --ttl 50 >/dev/null; done
sleep 0.2
expect 0 "sweeper --once --budget 1" "$SWEEPER" --once --budget 1 --log-level debug "$C"
has "many chunks" "$ERR" "chunks"
run "$INSPECT" --json stat "$C"
is "every expired key swept with budget 1" "$(js 'd["entries"]')" "5"
"$SWEEPER" --foreground --interval 60s --log-level debug "$C" 2>"$TMP/swh.log" &
SH=$!; PIDS+=("$SH")
wait_grep ': pass 1:' "$TMP/swh.log"
kill -HUP "$SH"
wait_grep ': pass 2:' "$TMP/swh.log"
has "SIGHUP starts a pass at once" "$(cat "$TMP/swh.log")" ": pass 2:"
kill -TERM "$SH"; wait "$SH"; is "sweeper exits 0 (interrupting its sleep)" "$?" "0"

# ---------------------------------------------------------------------------
echo "# two sweepers on one segment: the second waits, takes over on death"
# ---------------------------------------------------------------------------
expect 0 "create D" "$INSPECT" create "$D" --entries 1024 --memory 1M
"$SWEEPER" --foreground --interval 100 --log-level debug "$D" 2>"$TMP/swa.log" &
SA=$!; PIDS+=("$SA")
tc_retry 100 sweeper_is "$D" "$SA"
is "first sweeper holds the lease" "$(json_field "$D" sweeper_pid)" "$SA"
expect 4 "second sweeper --once is refused" "$SWEEPER" --once "$D"
has "refusal names the holder" "$ERR" "pid $SA"
"$SWEEPER" --foreground --interval 100 --log-level debug "$D" 2>"$TMP/swb.log" &
SB=$!; PIDS+=("$SB")
wait_grep waiting "$TMP/swb.log"
has "second sweeper waits" "$(cat "$TMP/swb.log")" "waiting for it to stop"
# Let both run several passes side by side.
n0=$(grep -c ': pass ' "$TMP/swa.log")
for _ in $(seq 1 200); do [ "$(grep -c ': pass ' "$TMP/swa.log")" -ge $((n0 + 5)) ] && break; sleep 0.05; done
is "first sweeper kept sweeping" "$(grep -c ': pass ' "$TMP/swa.log" | awk -v n="$n0" '{print ($1 >= n + 5)}')" "1"
is "second sweeper never swept while the first lives" "$(grep -c ': pass ' "$TMP/swb.log")" "0"
kill -9 "$SA"; wait "$SA" 2>/dev/null
tc_retry 100 sweeper_is "$D" "$SB"
is "second sweeper took over the dead one's lease" "$(json_field "$D" sweeper_pid)" "$SB"
has "takeover logged" "$(cat "$TMP/swb.log")" "took over the sweeper lease from pid $SA"
kill -TERM "$SB"; wait "$SB"; is "sweeper exits 0 on SIGTERM" "$?" "0"
run "$INSPECT" --json stat "$D"
is "lease released at exit" "$(js 'd["sweeper_pid"]')" "null"

# ---------------------------------------------------------------------------
echo "# the cache stays correct with the sweeper killed mid-run"
# ---------------------------------------------------------------------------
expect 0 "create E" "$INSPECT" create "$E" --entries 1024 --memory 2M
"$SWEEPER" --foreground --interval 10 --budget 16 "$E" 2>"$TMP/swe.log" &
SE=$!; PIDS+=("$SE")
for i in $(seq 1 40); do "$INSPECT" set "$E" "k$i" "v$i" >/dev/null; "$INSPECT" set "$E" "t$i" x --ttl 50 >/dev/null; done
kill -9 "$SE"; wait "$SE" 2>/dev/null
bad_reads=0
for i in $(seq 1 40); do [ "$("$INSPECT" get "$E" "k$i")" == "v$i" ] || bad_reads=$((bad_reads + 1)); done
is "every value reads back after the sweeper died" "$bad_reads" "0"
expect 0 "writes still work" "$INSPECT" set "$E" after kill
expect 0 "reads still work" "$INSPECT" get "$E" after
is "value" "$OUT" "kill"
expect 0 "health without a sweeper" "$INSPECT" health "$E"
expect 0 "a new sweeper takes over" "$SWEEPER" --once "$E"
run "$INSPECT" --json keys "$E" 't*'
is "expired keys swept by the new sweeper" "$(js 'len(d)')" "0"
run "$INSPECT" --json keys "$E" 'k*'
is "live keys intact" "$(js 'len(d)')" "40"

# ---------------------------------------------------------------------------
echo "# sweeper pidfile and signals"
# ---------------------------------------------------------------------------
"$SWEEPER" --foreground --interval 100 --pidfile "$TMP/sw.pid" "$E" 2>/dev/null &
SP=$!; PIDS+=("$SP")
for _ in $(seq 1 50); do [ -s "$TMP/sw.pid" ] && break; sleep 0.05; done
is "pidfile holds the pid" "$(cat "$TMP/sw.pid" 2>/dev/null)" "$SP"
expect 4 "second sweeper on the same pidfile" "$SWEEPER" --foreground --pidfile "$TMP/sw.pid" "$E"
has "says who runs" "$ERR" "already running (pid $SP"
kill -INT "$SP"; wait "$SP"; is "sweeper exits 0 on SIGINT" "$?" "0"
is "pidfile removed" "$(ls "$TMP/sw.pid" 2>/dev/null)" ""

# ---------------------------------------------------------------------------
echo "# sweeper as a daemon"
# ---------------------------------------------------------------------------
expect 0 "sweeper daemonises (parent returns 0)" "$SWEEPER" --interval 100 --pidfile "$TMP/d.pid" "$E"
for _ in $(seq 1 100); do [ -s "$TMP/d.pid" ] && break; sleep 0.05; done
DPID=$(cat "$TMP/d.pid" 2>/dev/null)
[ -n "$DPID" ] && PIDS+=("$DPID")
is "daemon is running" "$(running "$DPID" && echo yes)" "yes"
is "daemon left the caller's session" "$([ "$(ps -o sid= -p "$DPID")" != "$(ps -o sid= -p $$)" ] && echo yes)" "yes"
tc_retry 100 sweeper_is "$E" "$DPID"
is "daemon sweeps the segment" "$(json_field "$E" sweeper_pid)" "$DPID"
kill -TERM "$DPID"
for _ in $(seq 1 100); do running "$DPID" || break; sleep 0.05; done
is "daemon stopped on SIGTERM" "$(running "$DPID" && echo running)" ""
is "daemon removed its pidfile" "$(ls "$TMP/d.pid" 2>/dev/null)" ""

# ---------------------------------------------------------------------------
echo "# a running sweeper does not block unlink, and lets the segment go"
# ---------------------------------------------------------------------------
G="$P-g"
expect 0 "create G" "$INSPECT" create "$G" --entries 1024 --memory 1M
"$SWEEPER" --foreground --interval 50 --log-level debug "$G" 2>"$TMP/swg.log" &
SG=$!; PIDS+=("$SG")
tc_retry 100 sweeper_is "$G" "$SG"
is "sweeper holds G's lease" "$(json_field "$G" sweeper_pid)" "$SG"
is "sweeper maps G" "$(grep -c "tickcache.$G" /proc/"$SG"/maps)" "1"
expect 0 "unlink while only the sweeper is attached" "$INSPECT" unlink "$G"
for _ in $(seq 1 100); do [ "$(grep -c "tickcache.$G" /proc/"$SG"/maps)" == "0" ] && break; sleep 0.05; done
is "sweeper unmapped the removed segment" "$(grep -c "tickcache.$G" /proc/"$SG"/maps)" "0"
expect 0 "create G again" "$INSPECT" create "$G" --entries 1024 --memory 1M
tc_retry 100 sweeper_is "$G" "$SG"
is "sweeper took the new G's lease" "$(json_field "$G" sweeper_pid)" "$SG"
kill -TERM "$SG"; wait "$SG"; is "sweeper exits 0" "$?" "0"
expect 0 "unlink G" "$INSPECT" unlink "$G"

# ---------------------------------------------------------------------------
echo "# the sweeper and shm-inspect read through tool slots, never a strategy's"
# ---------------------------------------------------------------------------
K="$P-k"
expect 0 "create a segment with 2 reader slots" "$INSPECT" create "$K" --entries 1024 --memory 1M --readers 2
"$SWEEPER" --foreground --interval 500 "$K" 2>/dev/null &
SK=$!; PIDS+=("$SK")
tc_retry 100 sweeper_is "$K" "$SK"
is "sweeper holds K's lease" "$(json_field "$K" sweeper_pid)" "$SK"
"$HOLD" "$K" >"$TMP/k1" 2>&1 &
K1=$!; PIDS+=("$K1")
wait_ready "$TMP/k1"
"$HOLD" "$K" >"$TMP/k2" 2>&1 &
K2=$!; PIDS+=("$K2")
wait_ready "$TMP/k2"
run "$INSPECT" --json readers "$K"
is "both reader slots went to the strategies" "$(js 'sorted(r["pid"] for r in d["readers"] if not r["tool"])')" "$(python3 -c "print(sorted([$K1, $K2]))")"
is "the sweeper holds a tool slot" "$(js "[(r['slot'] >= 2, r['tool']) for r in d['readers'] if r['pid']==$SK]")" '[[true, true]]'
expect 0 "shm-inspect writes with both strategy slots taken" "$INSPECT" set "$K" toolkey v
expect 0 "and reads" "$INSPECT" get "$K" toolkey
is "the value" "$OUT" "v"

kill -TERM "$K1" "$K2" "$SK"; wait "$K1" "$K2" "$SK" 2>/dev/null
expect 0 "unlink K" "$INSPECT" unlink "$K"

# ---------------------------------------------------------------------------
echo "# ttl and runs (issue 4 features)"
# ---------------------------------------------------------------------------
run "$INSPECT" ttl "$E" market: 5000
if [ "$RC" -eq 3 ] && grep -q "not implemented" "$TMP/err"; then
	echo "skip ttl: not implemented by the library yet"
else
	is "ttl PREFIX MS" "$RC" "0"
	expect 0 "set under the policy" "$INSPECT" set "$E" market:quote 1
	expect 0 "get --json" "$INSPECT" --json get "$E" market:quote
	is "policy TTL applied" "$(js '0 < d["ttl_ms"] <= 5000')" "true"
	printf 'a: = 1000\nbad line\n' >"$TMP/pol"
	expect 2 "ttl --load of a bad file" "$INSPECT" ttl "$E" --load "$TMP/pol"
	has "bad line named" "$ERR" "$TMP/pol:2"
	printf '# policies\nbar: = 60000\n\n' >"$TMP/pol"
	expect 0 "ttl --load" "$INSPECT" ttl "$E" --load "$TMP/pol"
	expect 0 "ttl PREFIX --del" "$INSPECT" ttl "$E" market: --del
fi
expect 1 "ttl NAME KEY of a missing key" "$INSPECT" ttl "$E" market:
expect 2 "ttl PREFIX --del with MS" "$INSPECT" ttl "$E" market: 5 --del
run "$INSPECT" --json runs "$E"
if [ "$RC" -eq 3 ] && grep -q "not implemented" "$TMP/err"; then
	echo "skip runs: not implemented by the library yet"
else
	is "runs: no active run" "$RC $(js 'd["active"]')" "0 false"
	expect 1 "runs --end without a run" "$INSPECT" runs "$E" --end
	expect 0 "start a run with three DTOs (helper)" "$HOLD" "$E" --run
	expect 0 "runs --json with an active run" "$INSPECT" --json runs "$E"
	is "active run, its id and DTO keys" "$(js '[d["active"], d["run_id"], d["ts_ns"], d["dto_keys"]]')" \
		'[true, 42, 1700000000000000000, [{"key": "signals", "count": 3}]]'
	is "the run's starter has exited" "$(js '[d["starter_alive"], d["age_ms"] >= 0, d["started_ms"] > 0]')" \
		'[false, true, true]'
	expect 0 "runs (table)" "$INSPECT" runs "$E"
	has "table shows the run" "$OUT" "active run 42"
	# A run record scribbled: a start before any clock (its age must not
	# overflow) and pid 0xffffffff (kill() would take it as -1, "every
	# process", and call the starter alive).
	if [ -x "$BIN/../tests/scribble_run" ]; then
		expect 0 "scribble the run's start and starter" "$BIN/../tests/scribble_run" "$E" \
			-9223372036854775808 4294967295
		expect 0 "runs --json of the scribbled run" "$INSPECT" --json runs "$E"
		is "scribbled starter is not alive, its age saturates" \
			"$(js '[d["starter_pid"], d["starter_alive"], d["age_ms"], d["started_ms"]]')" \
			'[4294967295, false, 9223372036854775807, -9223372036854775808]'
		expect 0 "runs (table) of the scribbled run" "$INSPECT" runs "$E"
	else
		echo "skip scribbled run: no tests/scribble_run (make check-build)"
	fi
	expect 0 "runs --end" "$INSPECT" runs "$E" --end
	has "ended" "$OUT" "ended run 42"
	expect 0 "runs after --end" "$INSPECT" --json runs "$E"
	is "no run after --end" "$(js 'd["active"]')" "false"
	expect 0 "a run left by a dead strategy" "$HOLD" "$E" --run
	expect 0 "sweeper without --run-timeout leaves it" "$SWEEPER" --once "$E"
	run "$INSPECT" --json runs "$E"
	is "still active" "$(js 'd["active"]')" "true"
	sleep 0.1
	expect 0 "sweeper --run-timeout 50" "$SWEEPER" --once --run-timeout 50 "$E"
	has "the stale run ended and logged" "$ERR" "ended run 42"
	run "$INSPECT" --json runs "$E"
	is "no run left" "$(js 'd["active"]')" "false"
	expect 2 "--run-timeout 0" "$SWEEPER" --once --run-timeout 0 "$E"
fi

# ---------------------------------------------------------------------------
echo "# save / load: snapshots"
# ---------------------------------------------------------------------------
S="$P-s"
SNAP="$TMP/s.snap"
expect 0 "create S" "$INSPECT" create "$S" --entries 2K --memory 1M --ttl 10m --mode 0640
expect 0 "set a" "$INSPECT" set "$S" a one
expect 0 "set b with a TTL" "$INSPECT" set "$S" b two --ttl 60000
expect 0 "save --json" "$INSPECT" --json save "$S" "$SNAP"
is "saved both keys" "$(js '[d["keys"], d["bytes"] > 0]')" "[2, true]"
expect 0 "save (table)" "$INSPECT" save "$S" "$SNAP"
has "save says how many" "$OUT" "saved 2 keys"
expect 0 "unlink S" "$INSPECT" unlink "$S"
expect 0 "load into a missing segment" "$INSPECT" --json load "$S" "$SNAP"
is "created with both keys" "$(js '[d["created"], d["keys"], d["expired"], d["kept"]]')" "[true, 2, 0, 0]"
expect 0 "get a after load" "$INSPECT" get "$S" a
is "value a" "$OUT" "one"
expect 0 "get b after load" "$INSPECT" --json get "$S" b
is "b keeps its TTL" "$(js '0 < d["ttl_ms"] <= 60000')" "true"
expect 0 "stat of the loaded segment" "$INSPECT" --json stat "$S"
is "geometry from the snapshot" "$(js '[d["max_entries"], d["default_ttl_ms"], d["mode"]]')" '[2048, 600000, "0640"]'
expect 0 "set a again" "$INSPECT" set "$S" a changed
expect 0 "load keeps present keys" "$INSPECT" load "$S" "$SNAP"
has "kept reported" "$OUT" "2 present kept"
expect 0 "get a (kept)" "$INSPECT" get "$S" a
is "present value kept" "$OUT" "changed"
expect 0 "load --replace" "$INSPECT" load "$S" "$SNAP" --replace
expect 0 "get a (replaced)" "$INSPECT" get "$S" a
is "value replaced" "$OUT" "one"
head -c 100 /dev/urandom >"$TMP/bad.snap"
expect 3 "load of a damaged snapshot" "$INSPECT" load "$S" "$TMP/bad.snap"
has "damage explained" "$ERR" "cannot read snapshot"
# issue 12.12: what is wrong with the file, in words.
has "random bytes: not a snapshot" "$ERR" "not a tickcache snapshot (no TCSNAP01 header)"
head -c 50 "$SNAP" >"$TMP/short.snap"
expect 3 "load of a truncated snapshot" "$INSPECT" --json load "$S" "$TMP/short.snap"
is "truncated" "$(js 'd["error"]["reason"]')" "truncated: 50 bytes, a snapshot has at least 88"
head -c $(($(stat -c %s "$SNAP") - 10)) "$SNAP" >"$TMP/cut.snap"
expect 3 "load of a snapshot cut short" "$INSPECT" load "$S" "$TMP/cut.snap"
has "no end marker" "$ERR" "truncated or appended to: no end marker"
cp "$SNAP" "$TMP/flip.snap"
printf 'X' | dd of="$TMP/flip.snap" bs=1 seek=70 conv=notrunc 2>/dev/null
expect 3 "load of a snapshot with a changed byte" "$INSPECT" load "$S" "$TMP/flip.snap"
has "checksum" "$ERR" "damaged contents: the checksum or the records do not add up"
mkdir "$TMP/dir.snap"
expect 3 "load of a directory" "$INSPECT" load "$S" "$TMP/dir.snap"
has "not a regular file" "$ERR" "not a regular file (a directory)"
: >"$TMP/empty.snap"
expect 3 "load of an empty file" "$INSPECT" load "$S" "$TMP/empty.snap"
has "empty" "$ERR" "empty file"
expect 1 "load of a missing file" "$INSPECT" load "$S" "$TMP/none.snap"
expect 2 "save without FILE" "$INSPECT" save "$S"
expect 2 "--replace does not apply to save" "$INSPECT" save "$S" "$SNAP" --replace
expect 1 "save of a missing segment" "$INSPECT" save "$P-none" "$SNAP"
expect 0 "unlink S" "$INSPECT" unlink "$S"
mkdir -p "$TMP/snaps"
expect 0 "create S again" "$INSPECT" create "$S" --entries 1K --memory 1M
expect 0 "set m" "$INSPECT" set "$S" mark:1 x --ttl 3600000
# Temporary files of saves killed half way (the library's NAME.tmp.PID.XXXXXX,
# and NAME.tmp.XXXXXX of earlier versions): an hour old, removed at start;
# a fresh one may be a live save's, and stays.
touch -d '2 hours ago' "$TMP/snaps/$S-a.snap.tmp.4194304.AbC123" "$TMP/snaps/$S-b.snap.tmp.xYz789"
touch "$TMP/snaps/$S-c.snap.tmp.77.QwE456"
expect 0 "sweeper --once --snapshot-dir" "$SWEEPER" --once --snapshot-dir "$TMP/snaps" "$S"
is "the sweeper saved the segment and removed the old temporary files" \
	"$(ls "$TMP/snaps" | tr '\n' ' ')" "$S-c.snap.tmp.77.QwE456 $S.snap "
rm -f "$TMP/snaps/$S-c.snap.tmp.77.QwE456"
expect 0 "unlink S (a host restart)" "$INSPECT" unlink "$S"
expect 0 "sweeper --restore" "$SWEEPER" --once --restore --snapshot-dir "$TMP/snaps" "$S"
has "restore logged" "$ERR" "$S: restored 1 keys"
expect 0 "the mark is back" "$INSPECT" get "$S" mark:1
is "mark value" "$OUT" "x"
expect 0 "a second --restore leaves the segment alone" "$SWEEPER" --once --restore --snapshot-dir "$TMP/snaps" --log-level debug "$S"
has "exists: not restored" "$ERR" "exists and is older than its snapshot: left alone"
expect 2 "--restore without --snapshot-dir" "$SWEEPER" --once --restore "$S"
"$SWEEPER" --foreground --interval 60s --snapshot-dir "$TMP/snaps" "$S" 2>"$TMP/sws.log" &
SS=$!; PIDS+=("$SS")
tc_retry 100 sweeper_is "$S" "$SS"
expect 0 "set n while the sweeper runs" "$INSPECT" set "$S" mark:2 y
kill -TERM "$SS"; wait "$SS"; is "sweeper with snapshots exits 0" "$?" "0"
expect 0 "snapshot written at stop" "$INSPECT" --json load "$S" "$TMP/snaps/$S.snap"
is "it has both marks" "$(js '[d["keys"], d["kept"]]')" "[0, 2]"
# A strategy that creates its segment before the sweeper restores it gets
# the marks it does not have; its own keys stay.
expect 0 "unlink S (another restart)" "$INSPECT" unlink "$S"
expect 0 "the strategy creates S first" "$INSPECT" create "$S" --entries 1K --memory 1M
expect 0 "and writes mark:1 anew" "$INSPECT" set "$S" mark:1 new
expect 0 "sweeper --restore into the newer segment" "$SWEEPER" --once --restore --snapshot-dir "$TMP/snaps" "$S"
has "loaded into the existing segment" "$ERR" "$S: restored 1 keys"
expect 0 "mark:2 restored" "$INSPECT" get "$S" mark:2
expect 0 "mark:1 kept" "$INSPECT" get "$S" mark:1
is "the newer value stays" "$OUT" "new"
# Removed while the sweeper runs: on purpose; its snapshot is retired.
"$SWEEPER" --foreground --interval 50 --snapshot-dir "$TMP/snaps" --log-level info "$S" 2>"$TMP/swr.log" &
SR=$!; PIDS+=("$SR")
tc_retry 100 sweeper_is "$S" "$SR"
expect 0 "unlink S while its sweeper runs" "$INSPECT" unlink "$S"
wait_grep "its snapshot is now" "$TMP/swr.log"
kill -TERM "$SR"; wait "$SR"
is "snapshot retired" "$(ls "$TMP/snaps" | tr '\n' ' ')" "$S.snap.removed "
expect 1 "--restore brings nothing back (and S is not found)" "$SWEEPER" --once --restore --snapshot-dir "$TMP/snaps" "$S"
is "S stays removed" "$(ls /dev/shm/tickcache."$S" 2>/dev/null)" ""
# issue 12.16: a restored segment gets the mode and owner it had.
if [ "$(id -u)" = 0 ]; then
	O="$P-own"
	mkdir -p "$TMP/osnaps"
	expect 0 "create a group-shared segment" "$INSPECT" create "$O" --entries 1K --memory 1M --mode 0660
	chown 4242:4343 /dev/shm/tickcache."$O"
	expect 0 "set a mark" "$INSPECT" set "$O" mark:1 x
	expect 0 "sweeper (root) saves it" "$SWEEPER" --once --snapshot-dir "$TMP/osnaps" "$O"
	is "the snapshot file records the owner" "$(stat -c %u:%g "$TMP/osnaps/$O.snap")" "4242:4343"
	expect 0 "unlink it (a reboot)" "$INSPECT" unlink "$O"
	expect 0 "sweeper --restore" "$SWEEPER" --once --restore --snapshot-dir "$TMP/osnaps" "$O"
	is "restored with its owner and mode" "$(stat -c %u:%g:%a /dev/shm/tickcache."$O")" "4242:4343:660"
	expect 0 "its mark is back" "$INSPECT" get "$O" mark:1
	expect 0 "unlink it" "$INSPECT" unlink "$O"
else
	echo "skip restore of the owner: needs root"
fi

# ---------------------------------------------------------------------------
echo "# checksums"
# ---------------------------------------------------------------------------
K2="$P-cs"
expect 0 "create --checksum" "$INSPECT" create "$K2" --entries 1K --memory 1M --checksum
expect 0 "set into a checksummed segment" "$INSPECT" set "$K2" k v1
expect 0 "get from a checksummed segment" "$INSPECT" get "$K2" k
is "checksummed value" "$OUT" "v1"
expect 0 "stat --json of a checksummed segment" "$INSPECT" --json stat "$K2"
is "stat checksums on, no failures" "$(js '[d["checksums"], d["checksum_failures"]]')" "[true, 0]"
expect 0 "stat (table) of a checksummed segment" "$INSPECT" stat "$K2"
has "stat table shows checksums" "$OUT" "on, 0 failures"
expect 2 "--checksum is for create only" "$INSPECT" stat "$K2" --checksum
expect 0 "save the checksummed segment" "$INSPECT" save "$K2" "$TMP/cs.snap"
expect 0 "unlink the checksummed segment" "$INSPECT" unlink "$K2"
expect 0 "load into the missing segment" "$INSPECT" load "$K2" "$TMP/cs.snap"
expect 0 "stat of the restored segment" "$INSPECT" --json stat "$K2"
is "restored with checksums" "$(js 'd["checksums"]')" "true"
expect 0 "get after the restore" "$INSPECT" get "$K2" k
is "restored value" "$OUT" "v1"
expect 0 "unlink the restored segment" "$INSPECT" unlink "$K2"
# ---------------------------------------------------------------------------
echo "# tc-demo"
# ---------------------------------------------------------------------------
# demo_segs FILE: the segment names the demo announced.
demo_segs() { sed -n 's/.*feed -> \(demo-ict-[0-9]*\), \(demo-dca-[0-9]*\) .*/\1 \2/p' "$1"; }
# left SEG...: how many of these segments still exist.
left() { local n=0; for s in "$@"; do [ -e /dev/shm/tickcache."$s" ] && n=$((n + 1)); done; echo $n; }
expect 0 "tc-demo --seconds 1" "$DEMO" --seconds 1
has "demo prints shm-inspect list" "$OUT" "shm-inspect list"
has "demo prints latencies" "$OUT" "get p50"
has "demo shows isolation" "$OUT" "foreign values seen: 0 (ict) and 0 (dca); torn ticks: 0"
has "demo says why its totals and the list differ (issue 12.18)" "$OUT" "segment totals, read after every process stopped (the list above was taken"
segs=$(demo_segs "$TMP/out")
# shellcheck disable=SC2086
is "demo announced two segments" "$(echo $segs | wc -w)" "2"
has "demo list shows its segments" "$OUT" "${segs%% *}"
# shellcheck disable=SC2086
is "demo removed its segments" "$(left $segs)" "0"
"$DEMO" --seconds 30 >"$TMP/demo.out" 2>&1 &
DP=$!; PIDS+=("$DP")
wait_grep "running" "$TMP/demo.out"
segs=$(demo_segs "$TMP/demo.out")
kids=$(sed -n 's/.*feed (pid \([0-9]*\)), ict (pid \([0-9]*\)), dca (pid \([0-9]*\)).*/\1 \2 \3/p' "$TMP/demo.out")
sweeper=$(sed -n 's/.*shm-sweeper (pid \([0-9]*\)).*/\1/p' "$TMP/demo.out")
# shellcheck disable=SC2086
is "demo segments exist while it runs" "$(left $segs)" "2"
sleep 0.5
kill -INT "$DP"; wait "$DP"; is "demo interrupted exits 130" "$?" "130"
# shellcheck disable=SC2086
is "interrupted demo removed its segments" "$(left $segs)" "0"
alive=0
for k in $kids $sweeper; do running "$k" && alive=$((alive + 1)); done
# shellcheck disable=SC2086
is "interrupted demo left no process" "$alive $(echo $kids $sweeper | wc -w)" "0 4"

# ---------------------------------------------------------------------------
echo "# the documents say what the code does"
# ---------------------------------------------------------------------------
ENORUN_MSG=$(sed -n 's/.*XX(ENORUN, *-[0-9]*, *"\(.*\)").*/\1/p' "$ROOT/include/tickcache.h")
is "TC_ENORUN's message read from the header" "$ENORUN_MSG" "no run is active"
has "README quotes TC_ENORUN's message as tc_strerror says it (issue 12.13)" \
	"$(grep -o 'TC_ENORUN` (`tc_strerror`: "[^"]*"' "$ROOT/README.md")" "\"$ENORUN_MSG\""
has "the sweeper's man page counts --budget in buckets (issue 12.4)" \
	"$(tr '\n' ' ' <"$ROOT/docs/shm-sweeper.8")" "Index buckets per .BR tc_sweep () call; a bucket holds 7 index slots"
missing=""
for c in $("$INSPECT" --help | sed -n 's/^  \([a-z]*\) .*/\1/p' | sort -u); do
	grep -q "^\.BI\? $c\b\|^\.B shm-inspect $c\b" "$ROOT/docs/shm-inspect.1" || missing="$missing $c"
done
is "every command of the usage has a man-page entry" "$missing" ""

tc_finish
