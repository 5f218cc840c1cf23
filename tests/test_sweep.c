/* SPDX-License-Identifier: MIT */
/*
 * test_sweep.c - tc_sweep (shm/sweep.c): a pass removes exactly the expired
 * keys and reports their count, scans exactly BUDGET buckets from the
 * cursor where the last pass stopped (0 or more than the index: all of
 * it), clears the slot and attach record of a killed reader, frees the DTO
 * lists of ended runs (run.c's part of the pass), and refuses to run
 * inside a read section.  Expiry uses TTLs far below the sleeps that
 * follow them: the clock only has to move forward, nothing is timed.
 */
#include "blackbox.h"

/* White-box: run.c's sweep of ended runs' lists (shm/internal.h). */
int tc__sweep_runs(tc_cache *c, uint64_t budget);

#define T_SIG 0x5161u
#define TTL_SHORT_MS 200
#define TTL_SLEEP_MS 600

static uint64_t index_slots(tc_cache *c)
{
	tc_stats st;

	ASSERT_RC(0, tc_get_stats(c, &st));
	return st.index_slots;
}

/* Keys x<i> (expiring after 1 ms) and k<i> (never), N of each. */
static void set_expiring_and_kept(tc_cache *c, unsigned nexp, unsigned nkeep)
{
	char k[16];

	for (unsigned i = 0; i < nexp; i++)
		bb_set_str(c, (bb_key(k, sizeof(k), "x", i), k), "gone", 1);
	for (unsigned i = 0; i < nkeep; i++)
		bb_set_str(c, (bb_key(k, sizeof(k), "k", i), k), "kept", 0);
	fx_sleep_ms(50);
}

static void expect_expiring_gone_and_kept(tc_cache *c, unsigned nexp, unsigned nkeep)
{
	char k[16], buf[16];

	for (unsigned i = 0; i < nexp; i++) {
		bb_key(k, sizeof(k), "x", i);
		ASSERT_RC(-ENOENT, tc_get(c, KS(k), buf, sizeof(buf), NULL));
	}
	for (unsigned i = 0; i < nkeep; i++)
		bb_expect_str(c, (bb_key(k, sizeof(k), "k", i), k), "kept");
}

static void test_sweep_removes_expired_entries(void **state)
{
	char name[TC_NAME_MAX + 1];
	tc_cache *c = bb_open_small(name);
	tc_sweep_report rep;
	tc_stats *st = calloc(1, sizeof(*st));

	(void)state;
	assert_non_null(st);
	bb_set_str(c, "a", "v", TTL_SHORT_MS);
	bb_set_str(c, "b", "v", TTL_SHORT_MS);
	bb_set_str(c, "keep", "v", 0);
	ASSERT_RC(0, tc_get_stats(c, st));
	assert_int_equal(3, st->entries);
	fx_sleep_ms(TTL_SLEEP_MS);
	memset(&rep, 0, sizeof(rep));
	ASSERT_RC(0, tc_sweep(c, 0, &rep));
	assert_int_equal(2, rep.expired);
	ASSERT_RC(0, tc_get_stats(c, st));
	assert_int_equal(1, st->entries);
	assert_int_equal(2, st->expirations);
	bb_expect_str(c, "keep", "v");
	ASSERT_RC(0, tc_sweep(c, 0, NULL));
	free(st);
	tc_close(c);
}

/* A pass over a segment with nothing to do reports exactly nothing, and
 * scanned every slot of the index. */
static void test_sweep_of_a_clean_segment_reports_zeros(void **state)
{
	char name[TC_NAME_MAX + 1];
	tc_cache *c = bb_open_small(name);
	tc_sweep_report rep;

	(void)state;
	set_expiring_and_kept(c, 0, 4);
	memset(&rep, 0xA5, sizeof(rep));
	ASSERT_RC(0, tc_sweep(c, 0, &rep));
	assert_int_equal(index_slots(c), rep.scanned);
	assert_int_equal(0, rep.expired);
	assert_int_equal(0, rep.reclaimed);
	assert_int_equal(0, rep.reclaimed_bytes);
	assert_int_equal(0, rep.retired_left);
	assert_int_equal(0, rep.readers_cleared);
	assert_int_equal(0, rep.inflight_freed);
	assert_int_equal(0, rep.tentative_cleared);
	assert_int_equal(0, rep.attach_cleared);
	assert_int_equal(0, rep.dto_lists_freed);
	expect_expiring_gone_and_kept(c, 0, 4);
	tc_close(c);
}

/* Exactly the expired keys go, their count is reported once, and their
 * blocks come back in the same pass (no reader holds a grace period). */
static void test_sweep_removes_exactly_the_expired_keys(void **state)
{
	char name[TC_NAME_MAX + 1];
	tc_cache *c = bb_open_small(name);
	tc_sweep_report rep;
	tc_stats st;

	(void)state;
	set_expiring_and_kept(c, 5, 4);
	bb_set_str(c, "hour", "kept", 3600 * 1000);
	ASSERT_RC(0, tc_sweep(c, 0, &rep));
	assert_int_equal(5, rep.expired);
	assert_int_equal(5, rep.reclaimed);
	assert_int_equal(0, rep.retired_left);
	ASSERT_RC(0, tc_get_stats(c, &st));
	assert_int_equal(5, st.entries);
	assert_int_equal(5, st.expirations);
	assert_int_equal(0, st.memory_retired);
	expect_expiring_gone_and_kept(c, 5, 4);
	bb_expect_str(c, "hour", "kept");
	ASSERT_RC(0, tc_sweep(c, 0, &rep));
	assert_int_equal(0, rep.expired);
	assert_int_equal(0, rep.reclaimed);
	tc_close(c);
}

/* BUDGET buckets of seven slots each, from where the last pass stopped:
 * one pass per bucket covers the index once and expires every key once. */
static void test_sweep_budget_scans_that_many_buckets_from_the_cursor(void **state)
{
	char name[TC_NAME_MAX + 1];
	tc_cache *c = bb_open_small(name);
	uint64_t slots = index_slots(c), expired = 0;
	tc_sweep_report rep;

	(void)state;
	assert_int_equal(0, slots % 7);
	ASSERT_RC(0, tc_sweep(c, 1, &rep));
	assert_int_equal(7, rep.scanned);
	ASSERT_RC(0, tc_sweep(c, 3, &rep));
	assert_int_equal(21, rep.scanned);
	ASSERT_RC(0, tc_sweep(c, slots / 7, &rep));
	assert_int_equal(slots, rep.scanned);
	ASSERT_RC(0, tc_sweep(c, slots, &rep)); /* more than the index: all of it */
	assert_int_equal(slots, rep.scanned);

	set_expiring_and_kept(c, 6, 3);
	for (uint64_t b = 0; b < slots / 7; b++) {
		ASSERT_RC(0, tc_sweep(c, 1, &rep));
		assert_int_equal(7, rep.scanned);
		expired += rep.expired;
	}
	assert_int_equal(6, expired);
	ASSERT_RC(0, tc_sweep(c, 0, &rep));
	assert_int_equal(0, rep.expired);
	expect_expiring_gone_and_kept(c, 6, 3);
	tc_close(c);
}

/* A reader killed inside its read section: the pass clears its slot and
 * its attach record, exactly one of each. */
static void test_sweep_clears_a_killed_readers_slot_and_attach_record(void **state)
{
	char name[TC_NAME_MAX + 1], b = 0;
	tc_cache *c = bb_open_small(name);
	tc_sweep_report rep;
	tc_stats st;
	int p[2];
	pid_t pid;

	(void)state;
	bb_set_str(c, "k", "v", 0);
	assert_int_equal(0, pipe(p));
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		tc_cache *d = fx_attach(name);

		close(p[0]);
		FX_CHECK(tc_read_lock(d) == 0);
		FX_CHECK(write(p[1], "r", 1) == 1);
		for (;;)
			pause();
	}
	close(p[1]);
	assert_int_equal(1, read(p[0], &b, 1));
	close(p[0]);
	ASSERT_RC(0, tc_get_stats(c, &st));
	assert_int_equal(2, st.attached);
	assert_int_equal(0, kill(pid, SIGKILL));
	assert_int_equal(128 + SIGKILL, fx_wait(pid));
	ASSERT_RC(0, tc_sweep(c, 0, &rep));
	assert_int_equal(1, rep.readers_cleared);
	assert_int_equal(1, rep.attach_cleared);
	assert_int_equal(0, rep.expired);
	ASSERT_RC(0, tc_get_stats(c, &st));
	assert_int_equal(1, st.attached);
	ASSERT_RC(0, tc_sweep(c, 0, &rep));
	assert_int_equal(0, rep.readers_cleared);
	assert_int_equal(0, rep.attach_cleared);
	bb_expect_str(c, "k", "v");
	tc_close(c);
}

static void test_sweep_refuses_a_read_section_and_a_null_handle(void **state)
{
	char name[TC_NAME_MAX + 1];
	tc_cache *c = bb_open_small(name);
	tc_sweep_report rep;

	(void)state;
	ASSERT_RC(-EINVAL, tc_sweep(NULL, 0, &rep));
	ASSERT_RC(0, tc_read_lock(c));
	ASSERT_RC(-EDEADLK, tc_sweep(c, 0, &rep));
	tc_read_unlock(c);
	ASSERT_RC(0, tc_sweep(c, 0, NULL));
	tc_close(c);
}

static void test_sweep_reclaims_ended_runs_lists(void **state)
{
	struct fx_seg *f = *state;
	tc_stats before, mid, after;
	uint64_t freed;
	assert_int_equal(0, tc_reclaim(f->c, &freed));
	assert_int_equal(0, tc_get_stats(f->c, &before));
	assert_int_equal(0, tc_run_start(f->c, 1, 1));
	for (int k = 0; k < 50; k++) {
		char key[16];
		int kl = snprintf(key, sizeof(key), "s%d", k);
		for (int i = 0; i < 4; i++)
			assert_int_equal(0, tc_dto_append(f->c, key, (size_t)kl, T_SIG, "v", 1));
	}
	/* Lists of the active run are never swept. */
	assert_int_equal(0, tc__sweep_runs(f->c, 0));
	assert_int_equal(0, tc_get_stats(f->c, &mid));
	assert_int_equal(before.entries + 50, mid.entries);
	assert_int_equal(50, (int)mid.dto_lists);
	assert_int_equal(1, (int)mid.run_active);
	assert_int_equal(1, (int)(mid.run_generation & 1));
	assert_int_equal(0, tc_run_end(f->c));
	assert_int_equal(50, tc__sweep_runs(f->c, 0));
	assert_int_equal(0, tc__sweep_runs(f->c, 0));
	assert_int_equal(0, tc_reclaim(f->c, &freed));
	assert_int_equal(201, (int)freed); /* 200 elements and the anchor */
	assert_int_equal(0, tc_get_stats(f->c, &after));
	assert_int_equal(before.entries, after.entries);
	assert_int_equal(before.memory_used, after.memory_used);
	assert_int_equal(0, (int)after.dto_lists);
	assert_int_equal(0, (int)after.run_active);
	assert_int_equal(mid.run_generation + 1, after.run_generation);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		FX_TEST(test_sweep_removes_expired_entries),
		FX_TEST(test_sweep_of_a_clean_segment_reports_zeros),
		FX_TEST(test_sweep_removes_exactly_the_expired_keys),
		FX_TEST(test_sweep_budget_scans_that_many_buckets_from_the_cursor),
		FX_TEST(test_sweep_clears_a_killed_readers_slot_and_attach_record),
		FX_TEST(test_sweep_refuses_a_read_section_and_a_null_handle),
		FX_TEST_SEG(test_sweep_reclaims_ended_runs_lists),
	};
	return fx_run(tests);
}
