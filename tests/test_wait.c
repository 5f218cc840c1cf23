/* SPDX-License-Identifier: MIT */
/*
 * test_wait.c - tc_open with TC_WAIT (issue 12): a strategy waits for the
 * feed that creates its segment instead of polling -ENOENT.  Public header
 * only.  No timing threshold but lower bounds (a wait is never shorter than
 * asked).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "blackbox.h"

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void test_wait_for_a_missing_segment_times_out(void **state)
{
	char name[TC_NAME_MAX + 1];
	tc_opts o = { .flags = TC_WAIT, .wait_ms = 60 };
	tc_cache *c = (tc_cache *)1;
	uint64_t t0;

	(void)state;
	fx_name(name);
	t0 = now_ms();
	assert_int_equal(-ETIMEDOUT, tc_open(&c, name, &o));
	assert_true(now_ms() - t0 >= 60);
	assert_null(c);
	o.wait_ms = 0;
	assert_int_equal(-ETIMEDOUT, tc_open(&c, name, &o));
	/* Without TC_WAIT the same call is -ENOENT at once. */
	o.flags = 0;
	assert_int_equal(-ENOENT, tc_open(&c, name, &o));
}

static void test_wait_attaches_once_the_creator_made_it(void **state)
{
	char name[TC_NAME_MAX + 1];
	tc_opts o = { .flags = TC_WAIT, .wait_ms = 60000 };
	tc_cache *c;
	char buf[8];
	tc_meta m;
	int st;
	pid_t pid;

	(void)state;
	fx_name(name);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		tc_opts co = { .max_entries = 1024, .memory_bytes = 1 << 20,
			       .flags = TC_CREATE | TC_EXCL };
		tc_cache *cc;
		struct timespec ts = { 0, 150 * 1000000L };

		nanosleep(&ts, NULL);
		if (tc_open(&cc, name, &co) || tc_set(cc, "k", 1, "feed", 4, 0, 0))
			_exit(1);
		tc_close(cc);
		_exit(0);
	}
	assert_int_equal(0, tc_open(&c, name, &o));
	assert_int_equal(pid, waitpid(pid, &st, 0));
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	assert_int_equal(0, tc_get(c, "k", 1, buf, sizeof buf, &m));
	assert_int_equal(4, m.len);
	assert_memory_equal("feed", buf, 4);
	tc_close(c);
	/* An existing segment is attached at once, as without TC_WAIT. */
	assert_int_equal(0, tc_open(&c, name, &o));
	tc_close(c);
}

static void test_wait_with_create_returns_einval(void **state)
{
	char name[TC_NAME_MAX + 1];
	tc_opts o = { .flags = TC_WAIT | TC_CREATE, .wait_ms = 10 };
	tc_cache *c;

	(void)state;
	assert_int_equal(-EINVAL, tc_open(&c, fx_name(name), &o));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		FX_TEST(test_wait_for_a_missing_segment_times_out),
		FX_TEST(test_wait_attaches_once_the_creator_made_it),
		FX_TEST(test_wait_with_create_returns_einval),
	};

	return fx_run(tests);
}
