/* SPDX-License-Identifier: MIT */
/*
 * fixture.h - the one fixture of the C tests (tests/fixture.c).
 *
 * Segment names: fx_name(buf) writes "t<pid>-<n>-<function>" into BUF (an
 * array; the function name is cut to fit): unique across processes and
 * within one, and it says which test made it.  Every name handed out, and
 * every name given to fx_track(), is unlinked by fx_teardown() - the cmocka
 * teardown of every test, which cmocka runs after a failed assertion too -
 * and by an atexit hook.  Only the process that registered a name unlinks
 * it: a forked child inherits the list but never removes the parent's
 * segments (it starts a list of its own if it names segments itself).
 *
 * ASSERT_RC(exp, call): the call must return exactly EXP; a failure names
 * both codes with tc_strerror().
 *
 * Every test is FX_TEST(fn) (or FX_TEST_SEG) in an array run by
 * fx_run(tests), which honours TC_TEST_FILTER=GLOB (only the tests whose
 * names match run).
 *
 * A test with a ready segment: FX_TEST_SEG(fn) runs FN with *state a
 * struct fx_seg (16,384 entries, 16 MiB, 64 readers) that the teardown
 * closes and unlinks; fx_make() builds another geometry.
 *
 * Children: fx_wait() returns a child's exit status (128 + signal),
 * fx_wait_all() fails the test unless every child exited 0, FX_CHECK() is
 * the assertion of a child (it leaves with _exit(line)).
 */
#ifndef TC_TESTS_FIXTURE_H
#define TC_TESTS_FIXTURE_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tickcache.h"

#define FX_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
/* A string as the (pointer, length) pair of a key or value argument. */
#define KS(s) (s), strlen(s)

/* Expected and got codes, named, in the failure message. */
#define ASSERT_RC(exp, call)                                                   \
	do {                                                                   \
		int e_ = (exp), g_ = (call);                                   \
		if (e_ != g_)                                                  \
			fail_msg("%s:%d: %s: expected %d (%s), got %d (%s)",   \
				 __FILE__, __LINE__, #call, e_, tc_strerror(e_), \
				 g_, tc_strerror(g_));                         \
	} while (0)

/* ------------------------------------------------------------------ */
/* Segment names and cleanup                                            */
/* ------------------------------------------------------------------ */

/* fx_name_at - a fresh unique name of at most CAP - 1 bytes made by WHO,
 * unlinked at teardown; any stale segment of that name is removed first. */
const char *fx_name_at(char *out, size_t cap, const char *who);
/* OUT must be an array (its size bounds the name). */
#define fx_name(out)                                                           \
	fx_name_at((out), sizeof(out) + 0 * sizeof(char[sizeof(out) > sizeof(char *) ? 1 : -1]), \
		   __func__)

/* fx_track - unlink NAME (made by the test itself) at teardown too. */
void fx_track(const char *name);

/* fx_shm_path - the file under /dev/shm that backs segment NAME. */
void fx_shm_path(char *out, size_t n, const char *name);

/* fx_unlink_all - unlink every name this process registered, now. */
void fx_unlink_all(void);

/* fx_teardown - the teardown of every test: closes the FX_TEST_SEG
 * segment, if any, and unlinks every registered name. */
int fx_teardown(void **state);

#define FX_TEST(fn) cmocka_unit_test_teardown(fn, fx_teardown)

/* fx_run - run the array TESTS; TC_TEST_FILTER=GLOB runs only the tests
 * whose names match. */
void fx_filter_from_env(void);
#define fx_run(tests) (fx_filter_from_env(), cmocka_run_group_tests(tests, NULL, NULL))

/* ------------------------------------------------------------------ */
/* Segments                                                             */
/* ------------------------------------------------------------------ */

/* fx_opts - options of a segment created if missing (TC_CREATE). */
tc_opts fx_opts(uint64_t entries, uint64_t memory, uint32_t readers);

/* fx_open - a fresh segment (fx_opts) named by the calling function into
 * NAME (TC_NAME_MAX + 1 bytes); fails the test unless tc_open returns 0. */
tc_cache *fx_open_at(char *name, uint64_t entries, uint64_t memory, uint32_t readers,
		     const char *who);
#define fx_open(name, entries, memory, readers)                                \
	fx_open_at((name), (entries), (memory), (readers), __func__)

struct fx_seg {
	char name[TC_NAME_MAX + 1];
	tc_cache *c;
};

/* fx_make - a fresh segment (0 = default geometry), 64 reader slots;
 * fx_free() closes and unlinks it, or the teardown does. */
struct fx_seg *fx_make(uint64_t entries, uint64_t memory, uint64_t default_ttl_ms);
void fx_free(struct fx_seg *f);

/* fx_setup - *state = fx_make(16384, 16 MiB, 0), freed by fx_teardown. */
int fx_setup(void **state);

#define FX_TEST_SEG(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)

/* ------------------------------------------------------------------ */
/* Time                                                                 */
/* ------------------------------------------------------------------ */

int64_t fx_realtime_ms(void);
double fx_mono_s(void);
void fx_sleep_us(long us);
void fx_sleep_ms(long ms);

/* fx_status_kib - FIELD of /proc/self/status ("VmSize", "VmData") in KiB,
 * or -1 when it cannot be read (no assertion: children use it too). */
long fx_status_kib(const char *field);

/* ------------------------------------------------------------------ */
/* Children                                                             */
/* ------------------------------------------------------------------ */

/* fx_wait - wait for PID; its exit status, 128 + signal, or -1. */
int fx_wait(pid_t pid);

/* fx_wait_all - wait for N children; fail unless every one exited 0. */
void fx_wait_all(const pid_t *pids, int n);

/* fx_attach - in a child: its own handle on NAME (attach only), or _exit(100). */
tc_cache *fx_attach(const char *name);

/* The assertion of a child: exit with the line number (capped) of the check. */
#define FX_CHECK(cond)                                                         \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "child %d: %s:%d: %s\n", (int)getpid(), \
				__FILE__, __LINE__, #cond);                    \
			_exit(__LINE__ % 250 + 1);                             \
		}                                                              \
	} while (0)

#endif /* TC_TESTS_FIXTURE_H */
