# SPDX-License-Identifier: MIT
#
# tickcache - plain GNU make, in the manner of xxHash's and LMDB's Makefiles.
#
#   make                      library (static + shared), tickcache.pc, tools
#   make test                 build and run the test suite
#   make install PREFIX=/opt/tickcache DESTDIR=/tmp/stage
#   make help                 every target and variable
#
# The user's CFLAGS, CPPFLAGS and LDFLAGS are appended after ours (so they
# win), never replaced.  Objects go to $(BUILDDIR) (default build/) with
# -MMD -MP dependency files; a change of compiler or flags rebuilds them.
#
# Layout: shm/*.c -> the library; tools/<tool>.c, or every tools/<tool>/*.c,
# -> $(BUILDDIR)/bin/<tool> (tools/common*.c are linked into every tool, as
# $(BUILDDIR)/libtctools.a); tests/test_*.c -> $(BUILDDIR)/tests/test_*
# (other tests/*.c, such as the fixture of tests/fixture.c, are linked into
# every test, test_crashpoints included);
# tests/helpers/<name>.c -> $(BUILDDIR)/tests/<name>, programs the
# tests start; tests/test_*.sh are shell tests run with BIN=$(BUILDDIR)/bin;
# tests/crash/test_crashpoints.c -> $(BUILDDIR)/tests/test_crashpoints, linked
# with the crash-point build of the library ($(BUILDDIR)/crash/, -DTC_CRASHPOINTS).

THIS_MAKEFILE := $(lastword $(MAKEFILE_LIST))

# ---------------------------------------------------------------------------
# Version, from the public header (single source of truth)

VERSION := $(shell sed -n 's/.*define TC_VERSION_STRING "\(.*\)".*/\1/p' include/tickcache.h)
ifeq ($(VERSION),)
$(error cannot read TC_VERSION_STRING from include/tickcache.h)
endif
VERSION_MAJOR := $(firstword $(subst ., ,$(VERSION)))

# ---------------------------------------------------------------------------
# Install directories (GNU conventions)

PREFIX       ?= /usr/local
EXEC_PREFIX  ?= $(PREFIX)
BINDIR       ?= $(EXEC_PREFIX)/bin
LIBDIR       ?= $(EXEC_PREFIX)/lib
INCLUDEDIR   ?= $(PREFIX)/include
DATAROOTDIR  ?= $(PREFIX)/share
MANDIR       ?= $(DATAROOTDIR)/man
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
DESTDIR      ?=

INSTALL      ?= install
INSTALL_PROGRAM ?= $(INSTALL) -m 755
INSTALL_DATA ?= $(INSTALL) -m 644
LN_S         ?= ln -sf
PKG_CONFIG   ?= pkg-config

# ---------------------------------------------------------------------------
# Toolchain and flags

BUILDDIR ?= build

# Optimisation; the sanitizer targets lower it.  Always before the user's
# CFLAGS, so CFLAGS=-O0 wins.
OPTFLAGS ?= -O2 -g

WARNFLAGS = -Wall -Wextra -Wmissing-prototypes -Wshadow -Wformat=2 \
            -Wwrite-strings -Wundef
ifeq ($(WERROR),1)
WARNFLAGS += -Werror
endif

# Set by the sanitizer targets (compile and link).
SANFLAGS ?=

LIB_PKGS   ?= liburcu libxxhash
TOOL_PKGS  ?= liburcu-cds
TEST_PKGS  ?= cmocka

# pkg-config is asked lazily, once per variable, so that a machine without
# the dependencies can still run `make deps` / `make help`.
lazy = $(eval $1 := $$(shell $2))$($1)
LIB_PKG_CFLAGS  = $(call lazy,LIB_PKG_CFLAGS,$(PKG_CONFIG) --cflags $(LIB_PKGS))
LIB_PKG_LIBS    = $(call lazy,LIB_PKG_LIBS,$(PKG_CONFIG) --libs $(LIB_PKGS))
TOOL_PKG_CFLAGS = $(call lazy,TOOL_PKG_CFLAGS,$(PKG_CONFIG) --cflags $(TOOL_PKGS))
TOOL_PKG_LIBS   = $(call lazy,TOOL_PKG_LIBS,$(PKG_CONFIG) --libs $(TOOL_PKGS))
TEST_PKG_CFLAGS = $(call lazy,TEST_PKG_CFLAGS,$(PKG_CONFIG) --cflags $(TEST_PKGS))
TEST_PKG_LIBS   = $(call lazy,TEST_PKG_LIBS,$(PKG_CONFIG) --libs $(TEST_PKGS))

# Optional peers for shm-bench, each enabled when its library is installed.
HAVE_HIREDIS   = $(call lazy,HAVE_HIREDIS,$(PKG_CONFIG) --exists hiredis 2>/dev/null && echo 1)
HAVE_MEMCACHED = $(call lazy,HAVE_MEMCACHED,$(PKG_CONFIG) --exists libmemcached 2>/dev/null && echo 1)
BENCH_CPPFLAGS = $(if $(HAVE_HIREDIS),-DTC_HAVE_HIREDIS $(shell $(PKG_CONFIG) --cflags hiredis)) \
                 $(if $(HAVE_MEMCACHED),-DTC_HAVE_MEMCACHED $(shell $(PKG_CONFIG) --cflags libmemcached))
BENCH_LIBS     = $(if $(HAVE_HIREDIS),$(shell $(PKG_CONFIG) --libs hiredis)) \
                 $(if $(HAVE_MEMCACHED),$(shell $(PKG_CONFIG) --libs libmemcached))
# shm-sweeper --metrics-listen serves HTTP with libmicrohttpd when installed
# (tools/deps.sh build installs it); without it the option says so.
HAVE_MHD       = $(call lazy,HAVE_MHD,$(PKG_CONFIG) --exists libmicrohttpd 2>/dev/null && echo 1)
MHD_CPPFLAGS   = $(if $(HAVE_MHD),-DTC_HAVE_MHD $(shell $(PKG_CONFIG) --cflags libmicrohttpd))
MHD_LIBS       = $(if $(HAVE_MHD),$(shell $(PKG_CONFIG) --libs libmicrohttpd))

TC_CPPFLAGS = -D_GNU_SOURCE -Iinclude -Ishm
TC_CFLAGS   = -std=c11 $(OPTFLAGS) -fPIC -fno-semantic-interposition \
              $(WARNFLAGS) $(SANFLAGS) -MMD -MP

ALL_CPPFLAGS = $(TC_CPPFLAGS) $(LIB_PKG_CFLAGS) $(CPPFLAGS)
ALL_CFLAGS   = $(TC_CFLAGS) $(CFLAGS)
ALL_LDFLAGS  = $(SANFLAGS) $(LDFLAGS)
LINK_FLAGS   = $(OPTFLAGS) $(CFLAGS) $(ALL_LDFLAGS)
SYS_LIBS     = -lpthread -lm

# Sanitized shared objects leave the runtime's symbols undefined (clang),
# so --no-undefined only guards the normal build.
SO_DEFS = $(if $(SANFLAGS),,-Wl,--no-undefined)

V ?= 0
ifeq ($(V),1)
Q :=
msg = @true
else
Q := @
msg = @printf '  %-7s %s\n' $1 $2
endif

# ---------------------------------------------------------------------------
# Python package (python/): the extension is built by setuptools for
# $(PYTHON) against this build's libtickcache.a, into $(BUILDDIR)/python/.

PYTHON       ?= python3
export PYTHON
PY_BUILD     := $(BUILDDIR)/python

# ---------------------------------------------------------------------------
# Sources and products

LIB_SRCS   := $(sort $(wildcard shm/*.c))
LIB_OBJS   := $(LIB_SRCS:%.c=$(BUILDDIR)/%.o)

TOOL_COMMON_SRCS := $(sort $(wildcard tools/common*.c))
TOOL_SRCS  := $(filter-out $(TOOL_COMMON_SRCS),$(sort $(wildcard tools/*.c)))
TOOL_COMMON_OBJS := $(TOOL_COMMON_SRCS:%.c=$(BUILDDIR)/%.o)
TOOL_COMMON_LIB := $(BUILDDIR)/libtctools.a
# Tools of several files: tools/<tool>/*.c.
TOOL_DIR_NAMES := $(sort $(patsubst tools/%/,%,$(dir $(wildcard tools/*/*.c))))
TOOL_DIR_SRCS := $(sort $(wildcard $(TOOL_DIR_NAMES:%=tools/%/*.c)))
TOOL_OBJS  := $(TOOL_SRCS:%.c=$(BUILDDIR)/%.o) $(TOOL_DIR_SRCS:%.c=$(BUILDDIR)/%.o)
TOOLS_ONE  := $(TOOL_SRCS:tools/%.c=$(BUILDDIR)/bin/%)
TOOLS_DIR  := $(TOOL_DIR_NAMES:%=$(BUILDDIR)/bin/%)
TOOLS      := $(TOOLS_ONE) $(TOOLS_DIR)
# Installed tools: everything but the demo.
INSTALL_TOOLS := $(filter-out $(BUILDDIR)/bin/tc-demo,$(TOOLS))

TEST_SRCS  := $(sort $(wildcard tests/test_*.c))
TEST_HELPER_SRCS := $(filter-out $(TEST_SRCS),$(sort $(wildcard tests/*.c)))
TEST_OBJS  := $(TEST_SRCS:%.c=$(BUILDDIR)/%.o)
TEST_HELPER_OBJS := $(TEST_HELPER_SRCS:%.c=$(BUILDDIR)/%.o)
TEST_BINS  := $(TEST_SRCS:%.c=$(BUILDDIR)/%)
# Helper programs the tests start (tests/helpers/<name>.c -> tests/<name>).
TEST_PROG_SRCS := $(sort $(wildcard tests/helpers/*.c))
TEST_PROG_OBJS := $(TEST_PROG_SRCS:%.c=$(BUILDDIR)/%.o)
TEST_PROGS := $(TEST_PROG_SRCS:tests/helpers/%.c=$(BUILDDIR)/tests/%)

STATIC_LIB := $(BUILDDIR)/libtickcache.a
SONAME     := libtickcache.so.$(VERSION_MAJOR)
SHARED_LIB := $(BUILDDIR)/libtickcache.so.$(VERSION)
SHARED_LINKS := $(BUILDDIR)/$(SONAME) $(BUILDDIR)/libtickcache.so
VERSION_SCRIPT := shm/libtickcache.map
PC_IN      := shm/tickcache.pc.in
PC         := $(BUILDDIR)/tickcache.pc

MANPAGES   := $(sort $(wildcard docs/*.[1-8]))
# Every public function of the header gets a man3 page of its own name, a
# one-line link to tickcache(3) (`man tc_open` works after install).
MAN3_LINKS := $(shell sed -n 's/^[a-z_0-9 ]*[ *]\(tc_[a-z0-9_]*\)\x28.*/\1/p' include/tickcache.h)

# Crash points (docs/design.md, "Crash points"): the library again, compiled
# with -DTC_CRASHPOINTS into $(BUILDDIR)/crash/, and the one test linked with
# it.  The list of points is generated from the sources, so the test cannot
# drift from the code.
CRASH_DIR  := $(BUILDDIR)/crash
CRASH_OBJS := $(LIB_SRCS:%.c=$(CRASH_DIR)/%.o)
CRASH_LIB  := $(CRASH_DIR)/libtickcache.a
CRASH_LIST := $(CRASH_DIR)/crashpoints.h
# Points are listed from the headers too: an inline function of shm/*.h is
# compiled into the crash build as much as a .c file is.
CRASH_SRCS := $(LIB_SRCS) $(sort $(wildcard shm/*.h))
CRASH_TEST_OBJ := $(CRASH_DIR)/tests/test_crashpoints.o
CRASH_TEST := $(BUILDDIR)/tests/test_crashpoints

ALL_OBJS   := $(LIB_OBJS) $(TOOL_OBJS) $(TOOL_COMMON_OBJS) $(TEST_OBJS) $(TEST_HELPER_OBJS) \
              $(TEST_PROG_OBJS) $(CRASH_OBJS) $(CRASH_TEST_OBJ)
FLAGS_STAMP := $(BUILDDIR)/.flags

.DEFAULT_GOAL := all
.PHONY: all lib tools check-build test check demo bench bench-wakecost callgrind install uninstall \
        clean asan ubsan tsan deps layering check-style help fuzz fuzz-build fuzz-smoke fuzzers FORCE
.DELETE_ON_ERROR:
# Keep the objects of chained rules (tools, tests) for incremental builds.
.SECONDARY:

# ---------------------------------------------------------------------------
# Build

all: lib $(PC) tools ## Build the static and shared library, tickcache.pc and the tools

lib: $(STATIC_LIB) $(SHARED_LIB) $(SHARED_LINKS) ## Build libtickcache.a and libtickcache.so only

tools: $(TOOLS) ## Build the tools (build/bin/)

check-build: all $(TEST_BINS) $(TEST_PROGS) $(CRASH_TEST) ## Build everything, tests included, without running anything

# Objects and binaries are rebuilt when the compiler or any flag changes.
FLAGS_LINE = $(CC) $(ALL_CPPFLAGS) $(ALL_CFLAGS) $(LINK_FLAGS) $(VERSION_SCRIPT)
$(FLAGS_STAMP): FORCE
	@mkdir -p $(@D)
	@echo '$(subst ','\'',$(FLAGS_LINE))' | cmp -s - $@ || \
	  echo '$(subst ','\'',$(FLAGS_LINE))' > $@

$(BUILDDIR)/shm/%.o: shm/%.c $(FLAGS_STAMP)
	@mkdir -p $(@D)
	$(call msg,CC,$@)
	$(Q)$(CC) $(ALL_CPPFLAGS) $(ALL_CFLAGS) -c $< -o $@

$(BUILDDIR)/tools/%.o: tools/%.c $(FLAGS_STAMP)
	@mkdir -p $(@D)
	$(call msg,CC,$@)
	$(Q)$(CC) $(ALL_CPPFLAGS) -Itools $(TOOL_PKG_CFLAGS) $(TOOL_EXTRA_CPPFLAGS) $(ALL_CFLAGS) -c $< -o $@

$(BUILDDIR)/tests/%.o: tests/%.c $(FLAGS_STAMP)
	@mkdir -p $(@D)
	$(call msg,CC,$@)
	$(Q)$(CC) $(ALL_CPPFLAGS) -Itests $(TEST_PKG_CFLAGS) $(TEST_EXTRA_CPPFLAGS) $(ALL_CFLAGS) -c $< -o $@

$(STATIC_LIB): $(LIB_OBJS)
	@mkdir -p $(@D)
	$(call msg,AR,$@)
	$(Q)rm -f $@
	$(Q)$(AR) rcs $@ $^

# Exported: the public tc_* names; tc__* internals stay hidden in the .so.
$(SHARED_LIB): $(LIB_OBJS) $(VERSION_SCRIPT) $(FLAGS_STAMP)
	@mkdir -p $(@D)
	$(call msg,LD,$@)
	$(Q)$(CC) -shared -Wl,-soname,$(SONAME) -Wl,--version-script=$(VERSION_SCRIPT) \
	  $(SO_DEFS) $(LINK_FLAGS) -o $@ $(LIB_OBJS) $(LIB_PKG_LIBS) $(SYS_LIBS)

$(SHARED_LINKS): $(SHARED_LIB)
	$(call msg,LN,$@)
	$(Q)$(LN_S) $(notdir $(SHARED_LIB)) $@

$(TOOL_COMMON_LIB): $(TOOL_COMMON_OBJS)
	@mkdir -p $(@D)
	$(call msg,AR,$@)
	$(Q)rm -f $@
	$(Q)$(AR) rcs $@ $^

TOOL_LINK = $(CC) $(LINK_FLAGS) -o $@ $(filter %.o,$^) $(TOOL_COMMON_LIB) $(STATIC_LIB) \
	  $(TOOL_EXTRA_LIBS) $(TOOL_PKG_LIBS) $(LIB_PKG_LIBS) $(SYS_LIBS)

$(TOOLS_ONE): $(BUILDDIR)/bin/%: $(BUILDDIR)/tools/%.o $(TOOL_COMMON_LIB) $(STATIC_LIB) $(FLAGS_STAMP)
	@mkdir -p $(@D)
	$(call msg,LD,$@)
	$(Q)$(TOOL_LINK)

# A tool of a directory links every object of it.
$(foreach t,$(TOOL_DIR_NAMES),$(eval \
  $(BUILDDIR)/bin/$(t): $(patsubst %.c,$(BUILDDIR)/%.o,$(wildcard tools/$(t)/*.c))))
$(TOOLS_DIR): $(BUILDDIR)/bin/%: $(TOOL_COMMON_LIB) $(STATIC_LIB) $(FLAGS_STAMP)
	@mkdir -p $(@D)
	$(call msg,LD,$@)
	$(Q)$(TOOL_LINK)

# shm-bench compares against Redis and memcached when their client
# libraries are installed (tools/deps.sh bench installs them).
$(BUILDDIR)/tools/shm-bench/%.o: TOOL_EXTRA_CPPFLAGS = $(BENCH_CPPFLAGS)
$(BUILDDIR)/bin/shm-bench: TOOL_EXTRA_LIBS = $(BENCH_LIBS)
$(BUILDDIR)/tools/shm-sweeper.o: TOOL_EXTRA_CPPFLAGS = $(MHD_CPPFLAGS)
$(BUILDDIR)/bin/shm-sweeper: TOOL_EXTRA_LIBS = $(MHD_LIBS)
# shm-bridge speaks to Redis with hiredis when installed (tools/deps.sh
# installs it); without it the tool says so and exits 2.  So does the test
# helper tests/helpers/tier_probe.c, and tests/test_bridge.sh skips.
HIREDIS_CPPFLAGS = $(if $(HAVE_HIREDIS),-DTC_HAVE_HIREDIS $(shell $(PKG_CONFIG) --cflags hiredis))
HIREDIS_LIBS     = $(if $(HAVE_HIREDIS),$(shell $(PKG_CONFIG) --libs hiredis))
$(BUILDDIR)/tools/shm-bridge.o: TOOL_EXTRA_CPPFLAGS = $(HIREDIS_CPPFLAGS)
$(BUILDDIR)/bin/shm-bridge: TOOL_EXTRA_LIBS = $(HIREDIS_LIBS)
$(BUILDDIR)/tools/tc-demo.o: TOOL_EXTRA_CPPFLAGS = $(HIREDIS_CPPFLAGS)
$(BUILDDIR)/bin/tc-demo: TOOL_EXTRA_LIBS = $(HIREDIS_LIBS)
$(BUILDDIR)/tests/helpers/tier_probe.o: TEST_EXTRA_CPPFLAGS = -Itools $(HIREDIS_CPPFLAGS)
$(BUILDDIR)/tests/tier_probe: TEST_PROG_EXTRA_LIBS = $(HIREDIS_LIBS)

$(TEST_BINS): $(BUILDDIR)/tests/%: $(BUILDDIR)/tests/%.o $(TEST_HELPER_OBJS) $(STATIC_LIB) $(FLAGS_STAMP)
	$(call msg,LD,$@)
	$(Q)$(CC) $(LINK_FLAGS) -o $@ $< $(TEST_HELPER_OBJS) $(STATIC_LIB) \
	  $(TEST_PKG_LIBS) $(LIB_PKG_LIBS) $(SYS_LIBS)

# The crash-point build: same flags plus -DTC_CRASHPOINTS.
$(CRASH_DIR)/shm/%.o: shm/%.c $(FLAGS_STAMP)
	@mkdir -p $(@D)
	$(call msg,CC,$@)
	$(Q)$(CC) $(ALL_CPPFLAGS) -DTC_CRASHPOINTS $(ALL_CFLAGS) -c $< -o $@

$(CRASH_LIB): $(CRASH_OBJS)
	$(call msg,AR,$@)
	$(Q)rm -f $@
	$(Q)$(AR) rcs $@ $^

# Written only when its text changes, so the test rebuilds only then.
$(CRASH_LIST): $(CRASH_SRCS) tools/crashpoints.sh
	@mkdir -p $(@D)
	$(Q)tools/crashpoints.sh $(CRASH_SRCS) > $@.tmp
	@if cmp -s $@.tmp $@; then rm -f $@.tmp; else mv $@.tmp $@; printf '  %-7s %s\n' GEN $@; fi

$(CRASH_TEST_OBJ): tests/crash/test_crashpoints.c $(CRASH_LIST) $(FLAGS_STAMP)
	@mkdir -p $(@D)
	$(call msg,CC,$@)
	$(Q)$(CC) $(ALL_CPPFLAGS) -DTC_CRASHPOINTS -Itests -I$(CRASH_DIR) $(TEST_PKG_CFLAGS) \
	  $(ALL_CFLAGS) -c $< -o $@

$(CRASH_TEST): $(CRASH_TEST_OBJ) $(TEST_HELPER_OBJS) $(CRASH_LIB) $(FLAGS_STAMP)
	@mkdir -p $(@D)
	$(call msg,LD,$@)
	$(Q)$(CC) $(LINK_FLAGS) -o $@ $< $(TEST_HELPER_OBJS) $(CRASH_LIB) $(TEST_PKG_LIBS) \
	  $(LIB_PKG_LIBS) $(SYS_LIBS)

# Directories under PREFIX are written as ${prefix}/..., so that
# `pkg-config --define-prefix` can relocate the file.
pc_rel = $(patsubst $(PREFIX)/%,$${prefix}/%,$1)

$(TEST_PROGS): $(BUILDDIR)/tests/%: $(BUILDDIR)/tests/helpers/%.o $(STATIC_LIB) $(FLAGS_STAMP)
	$(call msg,LD,$@)
	$(Q)$(CC) $(LINK_FLAGS) -o $@ $< $(STATIC_LIB) $(TEST_PROG_EXTRA_LIBS) $(LIB_PKG_LIBS) $(SYS_LIBS)

# Regenerated whenever PREFIX or a directory changes (written only when
# its text changes, so nothing else rebuilds).
$(PC): $(PC_IN) FORCE
	@mkdir -p $(@D)
	@sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$(call pc_rel,$(LIBDIR))|g' \
	     -e 's|@INCLUDEDIR@|$(call pc_rel,$(INCLUDEDIR))|g' -e 's|@VERSION@|$(VERSION)|g' \
	     -e 's|@LIBS_PRIVATE@|$(LIB_PKG_LIBS) $(SYS_LIBS)|g' \
	     $(PC_IN) > $@.tmp
	@if cmp -s $@.tmp $@; then rm -f $@.tmp; else mv $@.tmp $@; printf '  %-7s %s\n' GEN $@; fi

-include $(ALL_OBJS:.o=.d)

# The Python extension: rebuilt when its sources, the header or the library
# change (setuptools compares times); CC and SANFLAGS reach it, so that
# `make asan` builds and tests an instrumented extension.
.PHONY: python bench-python
python: $(STATIC_LIB) ## Build the Python package for PYTHON (python3) into build/python/
	$(call msg,PY,$(PY_BUILD))
	$(Q)cd python && CC='$(CC)' CFLAGS='$(OPTFLAGS) $(SANFLAGS) $(CFLAGS)' \
	  LDFLAGS='$(SANFLAGS) $(LDFLAGS)' TICKCACHE_BUILDDIR='$(abspath $(BUILDDIR))' \
	  TICKCACHE_WERROR='$(WERROR)' $(PYTHON) -W ignore setup.py -q build \
	  --build-lib '$(abspath $(PY_BUILD))' --build-temp '$(abspath $(BUILDDIR))/python-tmp' \
	  $(if $(filter 1,$(V)),,>/dev/null)

check-build: python

bench-python: ## Build, then time Python get against dict.get and the C call (python/bench.py)
	@$(DEPS_CMD) bench
	@$(MAKE) --no-print-directory -f $(THIS_MAKEFILE) NODEPS=1 all python
	PYTHONPATH=$(PY_BUILD) BIN=$(abspath $(BUILDDIR)/bin) $(PYTHON) python/bench.py --out docs/benchmarks-python.md $(BENCH_ARGS)

# ---------------------------------------------------------------------------
# Running

# Dependency step before test/demo/bench; NODEPS=1 skips it.
DEPS_CMD = $(if $(filter 1,$(NODEPS)),: skipped,tools/deps.sh)

test: ## Install missing packages, build, run every test; ends with "N passed, N failed"
	@$(DEPS_CMD) test
	@$(MAKE) --no-print-directory -f $(THIS_MAKEFILE) NODEPS=1 check-build
	@tests/run.sh $(BUILDDIR) $(TESTS)

check: check-build ## Build and run the tests, without the dependency step
	@tests/run.sh $(BUILDDIR) $(TESTS)

demo: ## Install missing packages, build, run the demo (build/bin/tc-demo)
	@$(DEPS_CMD) demo
	@$(MAKE) --no-print-directory -f $(THIS_MAKEFILE) NODEPS=1 all
	@test -x $(BUILDDIR)/bin/tc-demo || { echo "make demo: no tools/tc-demo.c to build" >&2; exit 1; }
	$(BUILDDIR)/bin/tc-demo $(DEMO_ARGS)

bench: ## Install what the benchmarks need, build, run tools/bench.sh
	@$(DEPS_CMD) bench
	@$(MAKE) --no-print-directory -f $(THIS_MAKEFILE) NODEPS=1 all $(BUILDDIR)/tests/getcost
	@test -f tools/bench.sh || { echo "make bench: tools/bench.sh is missing" >&2; exit 1; }
	BIN=$(abspath $(BUILDDIR)/bin) GETCOST=$(abspath $(BUILDDIR)/tests/getcost) \
	  bash tools/bench.sh $(BENCH_ARGS)

callgrind: all $(BUILDDIR)/tests/getcost ## Instructions per hot get, peek and set (tools/callgrind.sh; CALLGRIND='tickcache-get ...' or 'getcost' picks)
	@command -v valgrind >/dev/null || $(DEPS_CMD) bench
	BIN=$(abspath $(BUILDDIR)/bin) GETCOST=$(abspath $(BUILDDIR)/tests/getcost) \
	  bash tools/callgrind.sh $(CALLGRIND)

bench-wakecost: all ## What tc_wait's check costs a write with no waiter: this build against one without it (tools/wakecost.sh)
	@command -v valgrind >/dev/null || $(DEPS_CMD) bench
	BIN=$(abspath $(BUILDDIR)/bin) bash tools/wakecost.sh $(WAKECOST_ROUNDS)

layering: lib ## The include/call graph of shm/ and its order; fails on a cycle (tools/layering.sh)
	@tools/layering.sh $(BUILDDIR)

check-style: ## Functions over 80 lines in shm/, 120 in tools/, whose comment does not say why (tools/funclen.sh)
	@tools/funclen.sh -l 80 shm/*.c shm/*.h
	@tools/funclen.sh -l 120 tools/*.c tools/*/*.c

deps: ## Install missing Debian packages (DEPS_FOR=test|demo|bench, default test)
	@tools/deps.sh $(or $(DEPS_FOR),test)

# ---------------------------------------------------------------------------
# Sanitizers: a full rebuild into $(BUILDDIR)/<san>/, then the test suite.
# gcc by default (its LeakSanitizer needs nothing extra); SAN_CC=clang works
# too when libclang-rt-14-dev is installed.

SAN_CC       ?= gcc
SAN_OPTFLAGS ?= -O1 -g -fno-omit-frame-pointer
ASAN_FLAGS   ?= -fsanitize=address
UBSAN_FLAGS  ?= -fsanitize=undefined -fno-sanitize-recover=all
# gcc's -Wtsan notes that TSan does not model atomic_thread_fence; under
# TSan the library makes every atomic access seq_cst, so the note is noise.
TSAN_FLAGS   ?= -fsanitize=thread $(if $(findstring clang,$(SAN_CC)),,-Wno-tsan)
SAN_TIMEOUT  ?= 900

sanitize = \
	$(DEPS_CMD) test && \
	$(MAKE) --no-print-directory -f $(THIS_MAKEFILE) NODEPS=1 \
	  BUILDDIR=$(BUILDDIR)/$1 CC=$(SAN_CC) OPTFLAGS='$(SAN_OPTFLAGS)' \
	  SANFLAGS='$2' check-build && \
	TC_SANITIZER=$1 TEST_TIMEOUT=$${TEST_TIMEOUT:-$(SAN_TIMEOUT)} \
	  tests/run.sh $(BUILDDIR)/$1 $(TESTS)

asan: ## Rebuild into build/asan/ with AddressSanitizer (+LeakSanitizer) and run the tests
	+$(Q)$(call sanitize,asan,$(ASAN_FLAGS))

ubsan: ## Rebuild into build/ubsan/ with UndefinedBehaviorSanitizer and run the tests
	+$(Q)$(call sanitize,ubsan,$(UBSAN_FLAGS))

tsan: ## Rebuild into build/tsan/ with ThreadSanitizer and run the tests
	+$(Q)$(call sanitize,tsan,$(TSAN_FLAGS))

# ---------------------------------------------------------------------------
# Fuzzing: libFuzzer harnesses of tests/fuzz/ (clang 14 and libclang-rt-14-dev,
# which `tools/deps.sh fuzz` installs), built with ASan and UBSan into
# $(BUILDDIR)/fuzz/ and run by tests/fuzz/run.sh, one harness at a time.
# The harnesses wrap mmap/munmap to put guard pages around every shared
# mapping (tests/fuzz/fuzz_common.h).  docs/fuzzing.md.

FUZZ_CC       ?= clang-14
FUZZ_SANFLAGS ?= -fsanitize=address,undefined -fno-sanitize-recover=all
FUZZ_SECONDS  ?= 60
FUZZ_SMOKE_SECONDS ?= 4
FUZZ_HARNESSES := fuzz_segment fuzz_segment_raw fuzz_snapshot fuzz_policy
FUZZ_BINS     := $(FUZZ_HARNESSES:%=$(BUILDDIR)/fuzzers/%)
FUZZ_LINK      = -fsanitize=fuzzer -Wl,--wrap=mmap -Wl,--wrap=munmap
FUZZ_CPPFLAGS  = $(ALL_CPPFLAGS) -Itests/fuzz

# Run inside the sub-make of fuzz-build (CC=clang, SANFLAGS with fuzzer-no-link).
fuzzers: $(FUZZ_BINS)

$(BUILDDIR)/fuzzers/fuzz_segment_raw: tests/fuzz/fuzz_segment.c tests/fuzz/fuzz_common.h tests/promises.h $(STATIC_LIB) $(FLAGS_STAMP)
	@mkdir -p $(@D)
	$(call msg,LD,$@)
	$(Q)$(CC) $(FUZZ_CPPFLAGS) -DFUZZ_RAW $(filter-out -MMD -MP,$(ALL_CFLAGS)) $(LINK_FLAGS) $(FUZZ_LINK) \
	  -o $@ $< $(STATIC_LIB) $(LIB_PKG_LIBS) $(SYS_LIBS)

$(BUILDDIR)/fuzzers/%: tests/fuzz/%.c tests/fuzz/fuzz_common.h tests/promises.h $(STATIC_LIB) $(FLAGS_STAMP)
	@mkdir -p $(@D)
	$(call msg,LD,$@)
	$(Q)$(CC) $(FUZZ_CPPFLAGS) $(filter-out -MMD -MP,$(ALL_CFLAGS)) $(LINK_FLAGS) $(FUZZ_LINK) \
	  -o $@ $< $(STATIC_LIB) $(LIB_PKG_LIBS) $(SYS_LIBS)

fuzz-build: ## Build the libFuzzer harnesses (ASan+UBSan) into build/fuzz/fuzzers/
	@$(DEPS_CMD) fuzz
	+$(Q)$(MAKE) --no-print-directory -f $(THIS_MAKEFILE) NODEPS=1 BUILDDIR=$(BUILDDIR)/fuzz \
	  CC=$(FUZZ_CC) OPTFLAGS='$(SAN_OPTFLAGS)' \
	  SANFLAGS='$(FUZZ_SANFLAGS) -fsanitize=fuzzer-no-link' fuzzers

fuzz: fuzz-build ## Run every fuzz harness FUZZ_SECONDS (default 60) each; FUZZERS='a b' picks some
	@tests/fuzz/run.sh $(BUILDDIR)/fuzz $(FUZZ_SECONDS) $(FUZZERS)

# A fixed libFuzzer seed: a CI failure replays with the same mutations.
fuzz-smoke: fuzz-build ## Replay the fuzz corpora and fuzz each harness FUZZ_SMOKE_SECONDS (CI)
	@FUZZ_ARGS="-seed=1 $(FUZZ_ARGS)" tests/fuzz/run.sh $(BUILDDIR)/fuzz $(FUZZ_SMOKE_SECONDS) $(FUZZERS)

# ---------------------------------------------------------------------------
# Install

install: all ## Install library, header, tickcache.pc, tools, man pages (PREFIX, DESTDIR)
	$(INSTALL) -d -m 755 $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(PKGCONFIGDIR)
	$(INSTALL_DATA) $(STATIC_LIB) $(DESTDIR)$(LIBDIR)/
	$(INSTALL_PROGRAM) $(SHARED_LIB) $(DESTDIR)$(LIBDIR)/
	$(LN_S) $(notdir $(SHARED_LIB)) $(DESTDIR)$(LIBDIR)/$(SONAME)
	$(LN_S) $(notdir $(SHARED_LIB)) $(DESTDIR)$(LIBDIR)/libtickcache.so
	$(INSTALL_DATA) include/tickcache.h $(DESTDIR)$(INCLUDEDIR)/
	$(INSTALL_DATA) $(PC) $(DESTDIR)$(PKGCONFIGDIR)/
ifneq ($(INSTALL_TOOLS),)
	$(INSTALL) -d -m 755 $(DESTDIR)$(BINDIR)
	$(INSTALL_PROGRAM) $(INSTALL_TOOLS) $(DESTDIR)$(BINDIR)/
endif
	@set -e; for m in $(MANPAGES); do \
	  s=$${m##*.}; \
	  $(INSTALL) -d -m 755 $(DESTDIR)$(MANDIR)/man$$s; \
	  echo "$(INSTALL_DATA) $$m $(DESTDIR)$(MANDIR)/man$$s/"; \
	  $(INSTALL_DATA) $$m $(DESTDIR)$(MANDIR)/man$$s/; \
	done
	@$(INSTALL) -d -m 755 $(DESTDIR)$(MANDIR)/man3
	@set -e; for f in $(MAN3_LINKS); do \
	  printf '.so man3/tickcache.3\n' > $(DESTDIR)$(MANDIR)/man3/$$f.3; \
	  chmod 644 $(DESTDIR)$(MANDIR)/man3/$$f.3; \
	done; echo "installed $(words $(MAN3_LINKS)) man3 links to tickcache(3)"
	@if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" = 0 ] && command -v ldconfig >/dev/null; then \
	  ldconfig; fi

uninstall: ## Remove what install put in place (same PREFIX, DESTDIR)
	rm -f $(DESTDIR)$(LIBDIR)/libtickcache.a $(DESTDIR)$(LIBDIR)/$(notdir $(SHARED_LIB)) \
	      $(DESTDIR)$(LIBDIR)/$(SONAME) $(DESTDIR)$(LIBDIR)/libtickcache.so \
	      $(DESTDIR)$(INCLUDEDIR)/tickcache.h $(DESTDIR)$(PKGCONFIGDIR)/tickcache.pc
	rm -f $(addprefix $(DESTDIR)$(BINDIR)/,$(notdir $(INSTALL_TOOLS)))
	@for m in $(MANPAGES); do \
	  f=$(DESTDIR)$(MANDIR)/man$${m##*.}/$$(basename $$m); \
	  echo "rm -f $$f"; rm -f "$$f"; \
	done
	@for f in $(MAN3_LINKS); do rm -f $(DESTDIR)$(MANDIR)/man3/$$f.3; done

clean: ## Remove build/ (sanitizer builds included)
	rm -rf $(BUILDDIR)

help: ## Show the targets and the variables that matter
	@echo "tickcache $(VERSION) - make targets:"
	@grep -E '^[a-zA-Z_-]+:.*## ' $(THIS_MAKEFILE) | \
	  sed -e 's/^\([a-zA-Z_-]*\):.*## \(.*\)/\1\t\2/' | \
	  awk -F'\t' '{ printf "  %-12s %s\n", $$1, $$2 }'
	@echo
	@echo "Variables:"
	@echo "  PREFIX=$(PREFIX)  DESTDIR=  LIBDIR BINDIR INCLUDEDIR MANDIR PKGCONFIGDIR"
	@echo "  CC CFLAGS CPPFLAGS LDFLAGS  (appended after tickcache's own flags)"
	@echo "  WERROR=1      make warnings fatal"
	@echo "  V=1           show the full commands"
	@echo "  NODEPS=1      skip the package check before test/demo/bench"
	@echo "  TESTS='a b'   run only these tests (names as in build/tests/, tests/*.sh)"
	@echo "  SAN_CC=clang  compiler for asan/ubsan/tsan (default gcc)"
	@echo "  FUZZ_SECONDS=60 FUZZERS='fuzz_policy ...'  make fuzz (docs/fuzzing.md)"
	@echo "  PYTHON=python3  interpreter the Python package is built and tested for"
	@echo "  BUILDDIR=$(BUILDDIR)"

FORCE:
