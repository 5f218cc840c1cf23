#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# deps.sh - install the Debian packages a tickcache target needs.
#
#   tools/deps.sh [--check] [build|test|demo|bench|fuzz|all]...   (default: test)
#
# Each package is checked with dpkg, or failing that functionally (its
# pkg-config module or its command), so the check also passes on a machine
# where the dependency came from elsewhere.  When something is missing:
#   - as root: apt-get update (once) and apt-get install -y the missing ones;
#   - otherwise: print the exact `sudo apt-get install -y ...` and exit 1.
# --check only reports (exit 1 when something is missing).
# Called by `make test`, `make demo`, `make bench`, `make fuzz` and .ci/run; NODEPS=1
# makes the Makefile skip it.
set -euo pipefail

# package  check   (pc:MODULE = pkg-config module, cmd:NAME = command in PATH,
#                   hdr:PATH = file exists, py:Python.h = $PYTHON's headers,
#                   py:MODULE = importable by $PYTHON, default python3)
BUILD_PKGS=(
	"gcc              cmd:gcc"
	"libc6-dev        hdr:/usr/include/stdio.h"
	"make             cmd:make"
	"pkg-config       cmd:pkg-config"
	"liburcu-dev      pc:liburcu"
	"libxxhash-dev    pc:libxxhash"
	"libmicrohttpd-dev pc:libmicrohttpd"
)
TEST_PKGS=(
	"libcmocka-dev    pc:cmocka"
	"procps           cmd:pgrep"
	"strace           cmd:strace"
	"python3          cmd:python3"
	"prometheus       cmd:promtool"
	"python3-dev      py:Python.h"
	"python3-setuptools py:setuptools"
	"python3-pip      py:pip"
	"libhiredis-dev   pc:hiredis"
	"redis-server     cmd:redis-server"
	"redis-tools      cmd:redis-cli"
	"python3-redis    py:redis"
)
# make fuzz / fuzz-smoke: clang 14 with libFuzzer and the sanitizer runtimes.
FUZZ_PKGS=(
	"clang-14           cmd:clang-14"
	"libclang-rt-14-dev hdr:/usr/lib/llvm-14/lib/clang/14.0.6/lib/linux/libclang_rt.fuzzer-x86_64.a"
)
BENCH_PKGS=(
	"libhiredis-dev   pc:hiredis"
	"libmemcached-dev pc:libmemcached"
	"redis-server     cmd:redis-server"
	"redis-tools      cmd:redis-cli"
	"memcached        cmd:memcached"
	"gnuplot-nox      cmd:gnuplot"
	"valgrind         cmd:valgrind"
)

usage() {
	echo "usage: tools/deps.sh [--check] [build|test|demo|bench|fuzz|all]..." >&2
	exit 2
}

check_only=0
targets=()
for a in "$@"; do
	case "$a" in
	--check) check_only=1 ;;
	build|test|demo|bench|fuzz|all) targets+=("$a") ;;
	-h|--help) usage ;;
	*) echo "deps.sh: unknown target '$a'" >&2; usage ;;
	esac
done
[ ${#targets[@]} -gt 0 ] || targets=(test)

wanted=("${BUILD_PKGS[@]}")
for t in "${targets[@]}"; do
	case "$t" in
	build) ;;
	test|demo) wanted+=("${TEST_PKGS[@]}") ;;
	fuzz) wanted+=("${FUZZ_PKGS[@]}") ;;
	bench) wanted+=("${TEST_PKGS[@]}" "${BENCH_PKGS[@]}") ;;
	all) wanted+=("${TEST_PKGS[@]}" "${BENCH_PKGS[@]}" "${FUZZ_PKGS[@]}") ;;
	esac
done

installed() {
	local pkg=$1 check=$2
	if command -v dpkg-query >/dev/null 2>&1 &&
	   [ "$(dpkg-query -W -f='${db:Status-Abbrev}' "$pkg" 2>/dev/null)" = "ii " ]; then
		return 0
	fi
	case "$check" in
	pc:*)  command -v pkg-config >/dev/null 2>&1 && pkg-config --exists "${check#pc:}" ;;
	cmd:*) command -v "${check#cmd:}" >/dev/null 2>&1 ;;
	hdr:*) [ -e "${check#hdr:}" ] ;;
	py:Python.h)
		"${PYTHON:-python3}" -c 'import os, sys, sysconfig
sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' 2>/dev/null ;;
	py:*)  "${PYTHON:-python3}" -c "import ${check#py:}" 2>/dev/null ;;
	*)     return 1 ;;
	esac
}

missing=()
declare -A seen=()
for line in "${wanted[@]}"; do
	read -r pkg check <<<"$line"
	[ -z "${seen[$pkg]:-}" ] || continue
	seen[$pkg]=1
	installed "$pkg" "$check" || missing+=("$pkg")
done

[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps.sh: missing for ${targets[*]}: ${missing[*]}" >&2
if [ "$check_only" = 1 ]; then
	exit 1
fi
if [ "$(id -u)" != 0 ]; then
	echo "deps.sh: not root; install them with:" >&2
	echo "  sudo apt-get install -y ${missing[*]}"
	exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
	echo "deps.sh: no apt-get on this machine; install the equivalents of: ${missing[*]}" >&2
	exit 1
fi

export DEBIAN_FRONTEND=noninteractive
apt_opts=(-q -y -o DPkg::Lock::Timeout=600 -o Dpkg::Use-Pty=0)
echo "deps.sh: apt-get update" >&2
apt-get "${apt_opts[@]}" update </dev/null
echo "deps.sh: apt-get install -y --no-install-recommends ${missing[*]}" >&2
apt-get "${apt_opts[@]}" install --no-install-recommends "${missing[@]}" </dev/null

still=()
for line in "${wanted[@]}"; do
	read -r pkg check <<<"$line"
	installed "$pkg" "$check" || still+=("$pkg")
done
if [ ${#still[@]} -gt 0 ]; then
	echo "deps.sh: still missing after apt-get: ${still[*]}" >&2
	exit 1
fi
echo "deps.sh: installed ${missing[*]}" >&2
