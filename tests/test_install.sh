#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# test_install.sh - `make install` gives a library other programs can use.
#
# Installs the already built library into a staging directory (DESTDIR) and
# checks: every file is in place, the shared object carries the soname
# libtickcache.so.<major> and exports only public tc_* names (no tc__*
# internals), and a small program compiled with the flags of the installed
# tickcache.pc links and runs, against the shared and the static library.
# Skipped under the sanitizers: their library needs the sanitizer runtime.
set -euo pipefail
# No `producer | grep -q` here: grep -q leaves at its first match, the
# producer's next write gets SIGPIPE, and pipefail fails the pipeline (seen:
# 6 in 2,000 runs of the exports check).  Outputs are captured, then grepped.

if [ -n "${TC_SANITIZER:-}" ]; then
	echo "skipped under $TC_SANITIZER"
	exit 0
fi
: "${BIN:?BIN must name the bin directory of the build}"
build=$(cd "$BIN/.." && pwd)
root=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/tc-install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

fail() { echo "test_install: $*" >&2; exit 1; }

version=$(sed -n 's/.*define TC_VERSION_STRING "\(.*\)".*/\1/p' "$root/include/tickcache.h")
major=${version%%.*}
[ -n "$version" ] || fail "no TC_VERSION_STRING in include/tickcache.h"

# Install what is built (-o all: rebuild nothing), with the default PREFIX.
stage=$tmp/stage
env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL \
	make -s --no-print-directory -C "$root" -o all NODEPS=1 BUILDDIR="$build" \
	PREFIX=/usr/local DESTDIR="$stage" install >"$tmp/install.log" 2>&1 ||
	{ cat "$tmp/install.log"; fail "make install failed"; }

prefix=$stage/usr/local
lib=$prefix/lib
for f in "$lib/libtickcache.a" "$lib/libtickcache.so.$version" "$lib/libtickcache.so.$major" \
         "$lib/libtickcache.so" "$lib/pkgconfig/tickcache.pc" "$prefix/include/tickcache.h"; do
	[ -e "$f" ] || fail "make install did not install ${f#$stage}"
done
[ "$(readlink "$lib/libtickcache.so")" = "libtickcache.so.$version" ] || fail "libtickcache.so is not a link to libtickcache.so.$version"
[ "$(readlink "$lib/libtickcache.so.$major")" = "libtickcache.so.$version" ] || fail "libtickcache.so.$major is not a link to libtickcache.so.$version"
cmp -s "$root/include/tickcache.h" "$prefix/include/tickcache.h" || fail "installed header differs"

soname=$(readelf -d "$lib/libtickcache.so.$version" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[ "$soname" = "libtickcache.so.$major" ] || fail "soname is '$soname', expected libtickcache.so.$major"

exports=$(nm -D --defined-only "$lib/libtickcache.so.$version" | awk '$2 ~ /^[TDBRVW]$/ { sub(/@.*/, "", $3); print $3 }')
[ -n "$exports" ] || fail "the shared library exports nothing"
bad=$(printf '%s\n' "$exports" | grep -v '^tc_[A-Za-z0-9]' || true)
[ -z "$bad" ] || fail "exported beyond the public tc_* API: $(echo $bad)"
for fn in tc_open tc_close tc_strerror tc_version; do
	grep -qx "$fn" <<<"$exports" || fail "$fn is not exported"
done

# Man pages: one per public function of the header (a link to tickcache(3)),
# and every page a project page cites exists (issue 12).
man=$stage/usr/local/share/man
for fn in $(sed -n 's/^[a-z_0-9 ]*[ *]\(tc_[a-z0-9_]*\)(.*/\1/p' "$root/include/tickcache.h"); do
	[ -f "$man/man3/$fn.3" ] || fail "no man page for $fn"
	grep -qx '.so man3/tickcache.3' "$man/man3/$fn.3" || fail "man3/$fn.3 does not lead to tickcache(3)"
	grep -q "$fn" "$root/docs/tickcache.3" || fail "tickcache(3) does not name $fn"
done
for page in "$root"/docs/*.[1-8]; do
	for ref in $(grep -o '^\.BR \(tc_[a-z0-9_]*\|tickcache\|shm-[a-z]*\) ([1-8]' "$page" | sed 's/^\.BR \([^ ]*\) (\([1-8]\)/\2\/\1/'); do
		[ -f "$man/man${ref%%/*}/${ref#*/}.${ref%%/*}" ] || fail "$(basename "$page") cites ${ref#*/}(${ref%%/*}), which is not installed"
	done
done
if command -v man >/dev/null; then
	page=$(MANPAGER=cat MANWIDTH=80 man -M "$man" tc_open 2>/dev/null || true)
	grep -q 'TICKCACHE(3)' <<<"$page" ||
		fail "man tc_open does not show tickcache(3)"
fi

cat >"$tmp/use.c" <<'EOF'
#include <tickcache.h>
#include <stdio.h>
#include <string.h>

int main(void)
{
	if (strcmp(tc_version(), TC_VERSION_STRING) != 0)
		return 2;
	if (tc_name_valid("../x") || !tc_name_valid("ict"))
		return 3;
	printf("%s\n", tc_version());
	return 0;
}
EOF
cc=${CC:-cc}
pc() { pkg-config --define-prefix "$@" tickcache; }
export PKG_CONFIG_PATH=$lib/pkgconfig
[ "$(pkg-config --modversion tickcache)" = "$version" ] || fail "pkg-config --modversion tickcache is not $version"

# Without the -dev packages of liburcu and libxxhash (their .pc files out of
# sight), a consumer of the shared library still gets its flags (issue 12.2).
PKG_CONFIG_LIBDIR=$lib/pkgconfig PKG_CONFIG_PATH= pkg-config --cflags --libs tickcache >/dev/null 2>"$tmp/pc.err" ||
	fail "pkg-config --cflags --libs tickcache needs other packages' .pc files: $(cat "$tmp/pc.err")"

# Shared: the program records only the soname, and runs from the staging dir.
$cc -o "$tmp/use-shared" "$tmp/use.c" $(pc --cflags --libs) || fail "cannot build against the installed library"
dyn=$(readelf -d "$tmp/use-shared")
grep -q "NEEDED.*\[libtickcache.so.$major\]" <<<"$dyn" || fail "program does not record libtickcache.so.$major"
out=$(LD_LIBRARY_PATH=$lib "$tmp/use-shared") || fail "program linked to the shared library failed ($?)"
[ "$out" = "$version" ] || fail "program printed '$out', expected '$version'"

# Static: only the archive, with the private dependencies pkg-config lists.
$cc -o "$tmp/use-static" "$tmp/use.c" $(pc --cflags) "$lib/libtickcache.a" \
	$(pc --static --libs | sed 's/ -ltickcache\b//; s/^-ltickcache\b//') || fail "cannot link the static library"
dyn=$(readelf -d "$tmp/use-static")
grep -q 'libtickcache' <<<"$dyn" && fail "static program depends on libtickcache.so"
out=$("$tmp/use-static") || fail "program linked to the static library failed ($?)"
[ "$out" = "$version" ] || fail "static program printed '$out', expected '$version'"

echo "installed $version: files, soname $soname, $(printf '%s\n' "$exports" | wc -l) exports, pkg-config shared and static ok"
