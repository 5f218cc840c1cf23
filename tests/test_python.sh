#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# test_python.sh - the Python package's unittest suite (python/tests/),
# against the extension `make python` built into $BUILDDIR/python, for
# $PYTHON (default python3).  Run by tests/run.sh; the counts are printed in
# cmocka's summary format so that the runner reports them.
#
# Under `make asan` the extension is instrumented: the interpreter runs with
# libasan preloaded and PYTHONMALLOC=malloc, so that a reference-count bug
# that frees an object early is a use-after-free ASan reports.  Leak checking
# is off there (the interpreter keeps its own objects until exit); leaks are
# checked with valgrind instead (python/README.md).  ThreadSanitizer cannot
# run an uninstrumented interpreter's threads: skipped under tsan.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
build=${BUILDDIR:-build}
case "$build" in /*) ;; *) build=$PWD/$build ;; esac
[ -f "$build/python/tickcache/__init__.py" ] || {
	echo "test_python.sh: no $build/python (run make python)" >&2
	exit 1
}

# The interpreter itself, not a wrapper script (pyenv's shims are bash
# scripts, which must not run with a sanitizer preloaded).
PYTHON=$("$PYTHON" -c 'import sys; print(sys.executable)')

case "${TC_SANITIZER:-}" in
asan)
	export LD_PRELOAD=$(${CC:-gcc} -print-file-name=libasan.so)
	export PYTHONMALLOC=malloc
	# Last, so that it wins over run.sh's detect_leaks=1.
	export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0:halt_on_error=1"
	;;
ubsan)
	export LD_PRELOAD=$(${CC:-gcc} -print-file-name=libubsan.so)
	;;
tsan)
	echo "test_python.sh: not run under ThreadSanitizer (the interpreter is not instrumented)"
	echo "[  SKIPPED ] 1 test(s)."
	exit 0
	;;
esac

export PYTHONPATH=$build/python
# The C tools the cross-process tests run (test_procs.TestCTools).
export TC_BIN=${BIN:-$build/bin}
[ -x "$TC_BIN/shm-inspect" ] || { echo "test_python.sh: no $TC_BIN/shm-inspect (run make)" >&2; exit 1; }
exec "$PYTHON" -X faulthandler python/tests/run.py
