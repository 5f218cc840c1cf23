/* SPDX-License-Identifier: MIT */
/*
 * test_review_tier.c - a review of tc_tier_until (cca02f8) by a test: the
 * holder's promise stored after the lease changed hands.
 *
 * This program carries its own copy of shm/tier.c, with TC_TIER_CHECKED
 * (tier.c) defined: it lies between tc_tier_until's check that the caller
 * holds the lease and its store of the promise.  A holder stalled exactly
 * there (the stalled bridge that cca02f8 is about) is taken over by another
 * process, whose claim resets the promise to "no limit"; the old holder's
 * late store then judged the new holder's "up" by the old holder's promise.
 */
static void (*tier_checked_hook)(void);
#define TC_TIER_CHECKED() (tier_checked_hook ? tier_checked_hook() : (void)0)
#include "tier.c"

#include "whitebox.h"

#include <signal.h>

static char cur_name[64];
static pid_t taker;

/* In the old holder, between its check and its store: another process
 * claims the lease (the old holder's heartbeat is stale) and says UP. */
static void take_over(void)
{
	int p[2];
	assert_int_equal(0, pipe(p));
	taker = fork();
	assert_true(taker >= 0);
	if (taker == 0) {
		tc_cache *c2 = NULL;
		char ok = 1;
		close(p[0]);
		fx_sleep_ms(10); /* the holder's heartbeat is older than 1 ms */
		if (tc_open(&c2, cur_name, NULL) != 0 || tc_tier_claim(c2, 1, NULL) != 0 ||
		    tc_tier_set(c2, TC_TIER_UP) != 0)
			ok = 0;
		if (write(p[1], &ok, 1) != 1)
			_exit(1);
		pause();
		_exit(0);
	}
	close(p[1]);
	char ok = 0;
	assert_int_equal(1, read(p[0], &ok, 1));
	close(p[0]);
	assert_int_equal(1, ok);
}

static void test_a_promise_stored_after_a_takeover_is_not_the_new_holders(void **state)
{
	(void)state;
	tc_opts o = wb_opts(256, 1 << 20, 8, TC_EVICT_NONE);
	tc_cache *c = NULL;
	fx_name_at(cur_name, sizeof(cur_name), "rvtier");
	(void)tc_unlink(cur_name);
	ASSERT_RC(0, tc_open(&c, cur_name, &o));
	ASSERT_RC(0, tc_tier_claim(c, 0, NULL));
	ASSERT_RC(0, tc_tier_set(c, TC_TIER_UP));
	/* The old holder's promise, taken before it stalled: run out. */
	tier_checked_hook = take_over;
	int rc = tc_tier_until(c, tc_now_ms() - 1);
	tier_checked_hook = NULL;
	tc_tier t;
	int grc = tc_tier_get(c, &t);
	kill(taker, SIGKILL); /* before any assertion: never left paused */
	int st;
	assert_int_equal(taker, waitpid(taker, &st, 0));
	ASSERT_RC(0, grc);
	assert_int_equal((uint32_t)taker, t.pid);
	/* The new holder vouched for nothing: no limit, as after its claim
	 * (seen before the fix: TC_TIER_DOWN, the old promise run out). */
	assert_int_equal(TC_TIER_UP, t.state);
	/* The old holder is told it holds nothing. */
	ASSERT_RC(-EBUSY, rc);
	tc_close(c);
	tc_unlink(cur_name);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		FX_TEST(test_a_promise_stored_after_a_takeover_is_not_the_new_holders),
	};
	return fx_run(tests);
}
