/* SPDX-License-Identifier: MIT */
/*
 * test_tier.c - the Redis tier's state in the segment (issue 13): the
 * bridge lease and the state a strategy reads.  Public header only; the
 * daemon itself is tested by tests/test_bridge.sh against a real Redis.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "blackbox.h"

static tc_cache *open_new(char name[TC_NAME_MAX + 1])
{
	tc_opts o = fx_opts(1024, 1 << 20, 8);
	tc_cache *c;

	fx_name_at(name, TC_NAME_MAX + 1, __func__);
	o.flags = TC_CREATE | TC_EXCL;
	assert_int_equal(0, tc_open(&c, name, &o));
	return c;
}

static void test_tier_none_until_a_bridge_claims(void **state)
{
	char name[TC_NAME_MAX + 1];
	tc_cache *c = open_new(name);
	tc_tier t;
	uint32_t holder = 7;

	(void)state;
	assert_int_equal(0, tc_tier_get(c, &t));
	assert_int_equal(TC_TIER_NONE, t.state);
	assert_int_equal(0, t.pid);
	assert_false(t.alive);
	assert_int_equal(0, t.since_ms);
	/* Only the holder publishes. */
	assert_int_equal(-EBUSY, tc_tier_set(c, TC_TIER_UP));
	assert_int_equal(-EBUSY, tc_tier_release(c));
	assert_int_equal(0, tc_tier_claim(c, 0, &holder));
	assert_int_equal((uint32_t)getpid(), holder);
	assert_int_equal(0, tc_tier_get(c, &t));
	assert_int_equal(TC_TIER_DOWN, t.state);   /* claimed, not yet armed */
	assert_int_equal((uint32_t)getpid(), t.pid);
	assert_true(t.alive);
	assert_true(t.since_ms > 0);
	assert_int_equal(0, tc_tier_set(c, TC_TIER_UP));
	assert_int_equal(0, tc_tier_get(c, &t));
	assert_int_equal(TC_TIER_UP, t.state);
	assert_int_equal(-EINVAL, tc_tier_set(c, TC_TIER_NONE));
	assert_int_equal(-EINVAL, tc_tier_set(c, 3));
	assert_int_equal(-EINVAL, tc_tier_get(c, NULL));
	assert_int_equal(-EINVAL, tc_tier_get(NULL, &t));
	assert_int_equal(0, tc_tier_set(c, TC_TIER_DOWN));
	assert_int_equal(0, tc_tier_get(c, &t));
	assert_int_equal(TC_TIER_DOWN, t.state);
	assert_int_equal(0, tc_tier_set(c, TC_TIER_UP));
	/* Released: down, no holder, and claimable again. */
	assert_int_equal(0, tc_tier_release(c));
	assert_int_equal(0, tc_tier_get(c, &t));
	assert_int_equal(TC_TIER_DOWN, t.state);
	assert_int_equal(0, t.pid);
	assert_int_equal(-EBUSY, tc_tier_set(c, TC_TIER_UP));
	assert_int_equal(0, tc_tier_claim(c, 0, NULL));
	tc_close(c);
}

/* A second process is refused while the holder lives; a dead holder's
 * "up" reads as down, and its lease is taken over. */
static void test_tier_dead_bridge_reads_down_and_is_taken_over(void **state)
{
	char name[TC_NAME_MAX + 1];
	tc_cache *c = open_new(name);
	int fds[2], st;
	char b;
	tc_tier t;
	uint32_t holder = 0;
	pid_t pid;

	(void)state;
	assert_int_equal(0, pipe(fds));
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		tc_cache *cc;
		close(fds[0]);
		if (tc_open(&cc, name, NULL) || tc_tier_claim(cc, 0, NULL) ||
		    tc_tier_set(cc, TC_TIER_UP))
			_exit(1);
		(void)!write(fds[1], "x", 1);
		pause();
		_exit(0);
	}
	close(fds[1]);
	assert_int_equal(1, read(fds[0], &b, 1));
	close(fds[0]);
	assert_int_equal(0, tc_tier_get(c, &t));
	assert_int_equal(TC_TIER_UP, t.state);
	assert_int_equal((uint32_t)pid, t.pid);
	assert_true(t.alive);
	assert_int_equal(-EBUSY, tc_tier_claim(c, 0, &holder));
	assert_int_equal((uint32_t)pid, holder);
	assert_int_equal(-EBUSY, tc_tier_set(c, TC_TIER_DOWN));
	kill(pid, SIGKILL);
	assert_int_equal(pid, waitpid(pid, &st, 0));
	assert_int_equal(0, tc_tier_get(c, &t));
	assert_int_equal(TC_TIER_DOWN, t.state);
	assert_int_equal((uint32_t)pid, t.pid);
	assert_false(t.alive);
	assert_int_equal(0, tc_tier_claim(c, 0, &holder));
	assert_int_equal((uint32_t)getpid(), holder);
	assert_int_equal(0, tc_tier_get(c, &t));
	assert_int_equal(TC_TIER_DOWN, t.state);
	assert_true(t.alive);
	tc_close(c);
}

/* A live holder whose heartbeat is older than stale_ms loses the lease. */
static void test_tier_stale_heartbeat_is_taken_over(void **state)
{
	char name[TC_NAME_MAX + 1];
	tc_cache *c = open_new(name);
	int fds[2], st;
	char b;
	uint32_t holder = 0;
	pid_t pid;

	(void)state;
	assert_int_equal(0, pipe(fds));
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		tc_cache *cc;
		close(fds[0]);
		if (tc_open(&cc, name, NULL) || tc_tier_claim(cc, 0, NULL))
			_exit(1);
		(void)!write(fds[1], "x", 1);
		pause();
		_exit(0);
	}
	close(fds[1]);
	assert_int_equal(1, read(fds[0], &b, 1));
	close(fds[0]);
	assert_int_equal(-EBUSY, tc_tier_claim(c, 60000, &holder));
	fx_sleep_ms(30);
	assert_int_equal(0, tc_tier_claim(c, 10, &holder));
	assert_int_equal((uint32_t)getpid(), holder);
	kill(pid, SIGKILL);
	assert_int_equal(pid, waitpid(pid, &st, 0));
	tc_close(c);
}

/* A live holder's "up" holds only until the time it vouched for: a
 * stopped bridge (alive, applying no invalidation) reads down. */
static void test_tier_up_lapses_at_the_vouched_time(void **state)
{
	char name[TC_NAME_MAX + 1];
	tc_cache *c = open_new(name);
	tc_tier t;

	(void)state;
	assert_int_equal(-EBUSY, tc_tier_until(c, tc_now_ms() + 60000));
	assert_int_equal(0, tc_tier_claim(c, 0, NULL));
	assert_int_equal(-EINVAL, tc_tier_until(c, -1));
	assert_int_equal(-EINVAL, tc_tier_until(NULL, 0));
	assert_int_equal(0, tc_tier_until(c, tc_now_ms() + 60000));
	assert_int_equal(0, tc_tier_set(c, TC_TIER_UP));
	assert_int_equal(0, tc_tier_get(c, &t));
	assert_int_equal(TC_TIER_UP, t.state);
	/* The promise ran out: down, with the holder alive. */
	assert_int_equal(0, tc_tier_until(c, tc_now_ms() - 1));
	assert_int_equal(0, tc_tier_get(c, &t));
	assert_int_equal(TC_TIER_DOWN, t.state);
	assert_true(t.alive);
	assert_int_equal(0, tc_tier_until(c, tc_now_ms() + 20));
	assert_int_equal(0, tc_tier_get(c, &t));
	assert_int_equal(TC_TIER_UP, t.state);
	fx_sleep_ms(40);
	assert_int_equal(0, tc_tier_get(c, &t));
	assert_int_equal(TC_TIER_DOWN, t.state);
	/* 0: no limit.  A claim resets the old holder's promise. */
	assert_int_equal(0, tc_tier_until(c, 0));
	assert_int_equal(0, tc_tier_get(c, &t));
	assert_int_equal(TC_TIER_UP, t.state);
	assert_int_equal(0, tc_tier_until(c, tc_now_ms() - 1));
	assert_int_equal(0, tc_tier_release(c));
	assert_int_equal(0, tc_tier_claim(c, 0, NULL));
	assert_int_equal(0, tc_tier_set(c, TC_TIER_UP));
	assert_int_equal(0, tc_tier_get(c, &t));
	assert_int_equal(TC_TIER_UP, t.state);
	tc_close(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		FX_TEST(test_tier_none_until_a_bridge_claims),
		FX_TEST(test_tier_dead_bridge_reads_down_and_is_taken_over),
		FX_TEST(test_tier_stale_heartbeat_is_taken_over),
		FX_TEST(test_tier_up_lapses_at_the_vouched_time),
	};
	return fx_run(tests);
}
