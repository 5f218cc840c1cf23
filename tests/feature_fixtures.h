/* SPDX-License-Identifier: MIT */
/*
 * feature_fixtures.h - fixtures shared by the feature tests (test_run, test_dedupe,
 * test_ratelimit, test_load, test_policy, test_scan).
 *
 * ft_setup() creates a uniquely named segment ("f<pid>_<n>") for one test
 * and ft_teardown() closes and unlinks it; an atexit hook unlinks whatever
 * a failing test left.  Children fork with ft_fork(), open their own handle
 * (fork() rule of tickcache.h) and report through their exit status with
 * ft_child_exit(); ft_wait_all() collects them and fails the test on any
 * non-zero status.
 */
#ifndef TC_TESTS_FEATURES_H
#define TC_TESTS_FEATURES_H

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <setjmp.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <cmocka.h>

#include "tickcache.h"

#define FT_UNUSED __attribute__((unused))

struct ft {
	char name[TC_NAME_MAX + 1];
	tc_cache *c;
};

static pid_t ft_owner;
static char ft_names[64][TC_NAME_MAX + 1];
static int ft_nnames, ft_seq;

static void ft_unlink_all(void)
{
	if (ft_owner != getpid())
		return;
	for (int i = 0; i < ft_nnames; i++)
		(void)tc_unlink(ft_names[i]);
	ft_nnames = 0;
}

static FT_UNUSED void ft_newname(char out[TC_NAME_MAX + 1])
{
	if (ft_owner != getpid()) {
		ft_owner = getpid();
		atexit(ft_unlink_all);
	}
	snprintf(out, TC_NAME_MAX + 1, "f%d_%d", (int)getpid(), ++ft_seq);
	if (ft_nnames < 64)
		snprintf(ft_names[ft_nnames++], TC_NAME_MAX + 1, "%s", out);
	(void)tc_unlink(out);
}

static FT_UNUSED tc_opts ft_opts(uint64_t entries, uint64_t memory)
{
	tc_opts o;
	memset(&o, 0, sizeof(o));
	o.max_entries = entries;
	o.memory_bytes = memory;
	o.max_readers = 64;
	o.flags = TC_CREATE;
	return o;
}

/* A fresh segment with the given geometry (0 = defaults). */
static FT_UNUSED struct ft *ft_make(uint64_t entries, uint64_t memory, uint64_t default_ttl)
{
	struct ft *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	ft_newname(f->name);
	tc_opts o = ft_opts(entries, memory);
	o.default_ttl_ms = default_ttl;
	assert_int_equal(0, tc_open(&f->c, f->name, &o));
	return f;
}

static FT_UNUSED int ft_setup(void **state)
{
	*state = ft_make(16384, 16u << 20, 0);
	return 0;
}

static FT_UNUSED int ft_teardown(void **state)
{
	struct ft *f = *state;
	if (f) {
		tc_close(f->c);
		tc_unlink(f->name);
		free(f);
	}
	return 0;
}

/* In a child: open our own handle on NAME (attach only). */
static FT_UNUSED tc_cache *ft_attach(const char *name)
{
	tc_cache *c = NULL;
	if (tc_open(&c, name, NULL) != 0)
		_exit(100);
	return c;
}

/* Child exit: 0 when OK, else the line number (capped) of the failed check. */
#define FT_CHECK(cond)                                                      \
	do {                                                                \
		if (!(cond)) {                                              \
			fprintf(stderr, "child %d: %s:%d: %s\n", (int)getpid(), \
				__FILE__, __LINE__, #cond);                 \
			_exit(__LINE__ % 250 + 1);                          \
		}                                                           \
	} while (0)

/* Wait for N children; assert every one exited with status 0. */
static FT_UNUSED void ft_wait_all(pid_t *pids, int n)
{
	int bad = 0;
	for (int i = 0; i < n; i++) {
		int st = 0;
		assert_int_equal(pids[i], waitpid(pids[i], &st, 0));
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
			fprintf(stderr, "child %d: %s %d\n", (int)pids[i],
				WIFEXITED(st) ? "exit" : "signal",
				WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
			bad++;
		}
	}
	assert_int_equal(0, bad);
}

static FT_UNUSED void ft_sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

#endif /* TC_TESTS_FEATURES_H */
