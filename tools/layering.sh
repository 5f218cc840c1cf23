#!/bin/sh
# SPDX-License-Identifier: MIT
#
# layering.sh - the include and call graph between the files of shm/, and
# its order; fails on a cycle (docs/design.md, "Map of shm/").
#
#   tools/layering.sh [BUILDDIR [SRCDIR]]     (make layering)
#
# SRCDIR (default shm) names the sources; BUILDDIR/SRCDIR/*.o their objects.
#
# Nodes are the files of shm/.  Edges:
#   X.c -> Y.c   an object of X leaves a symbol undefined that Y's object
#                defines (nm on BUILDDIR/shm/*.o, built by `make lib`); the
#                symbols an inline function of a header calls count for
#                every file that uses that inline function;
#   X.c -> H.h   X includes the header H of shm/ (#include "H.h");
#   H.h -> Y.c   an inline function of H calls a symbol that Y defines
#                (H compiled alone with -fkeep-inline-functions).
# A header X.h next to an X.c is part of that file's node (room.h is
# room.c's inline half).  Every file includes internal.h, so a header of
# its own that calls into a file is a cycle: those headers are the bottom.
#
# Prints every edge with the symbols that make it, then the files in
# order, lowest first (each uses only files printed before it).  Exit
# status 1 and the files of a cycle on stderr when there is one, 2 when
# the objects are missing.
set -eu

build=${1:-build}
src=${2:-shm}
[ -d "$build" ] && [ -d "$src" ] || { echo "layering.sh: no directory $build or $src" >&2; exit 2; }
build=$(cd "$build" && pwd)
objdir=$build/$src
[ -d "$objdir" ] || { echo "layering.sh: no objects in $objdir (run make lib)" >&2; exit 2; }
objdir=$(cd "$objdir" && pwd)
src=$(cd "$src" && pwd)
cd "$(dirname "$0")/.."
NM=${NM:-nm}
CC=${CC:-cc}
PKG_CONFIG=${PKG_CONFIG:-pkg-config}

objs=$(ls "$objdir"/*.o 2>/dev/null || true)
[ -n "$objs" ] || { echo "layering.sh: no objects in $objdir (run make lib)" >&2; exit 2; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

# file<TAB>symbol for every global symbol a file defines / leaves undefined.
for o in $objs; do
	f=$(basename "$o" .o).c
	[ -f "$src/$f" ] || continue
	$NM -g --defined-only "$o" | awk -v f="$f" 'NF == 3 { print f "\t" $3 }' >>"$tmp/def"
	$NM -u "$o" | awk -v f="$f" '{ print f "\t" $NF }' >>"$tmp/use"
done

# The inline functions of each header, compiled alone.
cflags="-D_GNU_SOURCE -Iinclude -I$src $($PKG_CONFIG --cflags liburcu libxxhash 2>/dev/null || true)"
node() { # the node of file $1 of shm/
	case $1 in
	*.h) [ -f "$src/${1%.h}.c" ] && echo "${1%.h}.c" || echo "$1" ;;
	*) echo "$1" ;;
	esac
}
for h in "$src"/*.h; do
	[ -f "$h" ] || continue
	hn=$(basename "$h")
	printf '#include "%s"\n' "$hn" >"$tmp/probe.c"
	# shellcheck disable=SC2086
	$CC -std=c11 -O0 -fkeep-inline-functions $cflags -c "$tmp/probe.c" -o "$tmp/probe.o"
	$NM -u "$tmp/probe.o" | awk -v f="$(node "$hn")" '{ print f "\t" $NF }' >>"$tmp/use"
done

# Call edges: user -> definer, with the symbols.
awk -F'\t' 'NR == FNR { def[$2] = $1; next }
	($2 in def) && def[$2] != $1 && !(($1, $2) in seen) {
		seen[$1, $2] = 1; e = $1 " -> " def[$2]; s[e] = s[e] " " $2 }
	END { for (e in s) print e ":" s[e] }' "$tmp/def" "$tmp/use" | sort >"$tmp/calls"

# Include edges between the files of shm/.
for f in "$src"/*.c "$src"/*.h; do
	[ -f "$f" ] || continue
	sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$f" |
	while read -r inc; do
		[ -f "$src/$inc" ] || continue
		from=$(node "$(basename "$f")")
		to=$(node "$inc")
		if [ "$from" != "$to" ]; then
			printf '%s -> %s: #include %s\n' "$from" "$to" "$inc"
		fi
	done
done | sort >"$tmp/incs"

echo "calls (file -> file it calls: symbols)"
sed 's/^/  /' "$tmp/calls"
echo "includes"
sed 's/^/  /' "$tmp/incs"

# tsort wants "before after": the callee before its caller.
{
	cat "$tmp/calls" "$tmp/incs" | sed 's/:.*//' | awk '{ print $3, $1 }'
	for f in "$src"/*.c "$src"/*.h; do [ -f "$f" ] || continue; b=$(node "$(basename "$f")"); echo "$b $b"; done
} >"$tmp/pairs"
if tsort "$tmp/pairs" >"$tmp/order" 2>/dev/null; then
	echo "order (lowest first)"
	tr '\n' ' ' <"$tmp/order" | sed 's/ $//; s/^/  /'
	echo
	echo "no cycle"
	exit 0
fi
# The strongly connected components of more than one file (transitive
# closure; shm/ has a few dozen files), with the edges inside each.
cat "$tmp/calls" "$tmp/incs" | sed 's/:.*//' | awk '
	{ n[$1] = 1; n[$3] = 1; r[$1, $3] = 1; e[++ne] = $1 " -> " $3; ef[ne] = $1; et[ne] = $3 }
	END {
		for (k in n) for (i in n) if ((i, k) in r) for (j in n) if ((k, j) in r) r[i, j] = 1
		for (i in n) {
			if (i in done) continue
			m = ""
			for (j in n) if (i == j || ((i, j) in r && (j, i) in r)) { m = m " " j; done[j] = 1; in_c[j] = i }
			if (split(m, x, " ") < 2) continue
			print "CYCLE among:" m
			for (k = 1; k <= ne; k++) if (in_c[ef[k]] == i && in_c[et[k]] == i) print "  " e[k]
		}
	}' >&2
exit 1
