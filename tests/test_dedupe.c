/* SPDX-License-Identifier: MIT */
/*
 * test_dedupe.c - dedupe marks (needs.md section 4) are tc_add with a TTL:
 * of N processes racing to mark one (instrument, candle) exactly one wins,
 * thousands of times over; marks outlive every process that was attached;
 * they expire on time, and an expired mark can be taken again.
 */
#include "fixture.h"

#define NPROC 4
#define ROUNDS 2000
#define BATCH 20 /* rounds between two barriers */

static int mark_key(char *buf, size_t cap, int round)
{
	return snprintf(buf, cap, "candle:EURUSD:1m:%d", 1700000000 + round * 60);
}

/*
 * The children walk the rounds in batches, meeting at a barrier (a counter
 * per batch) before each, and race tc_add on every round's mark.  Its wins
 * go into a shared total; the parent checks total == ROUNDS and that every
 * mark exists, which with "at least one winner per round" (every child
 * tries every round and only -EEXIST may fail it) means exactly one.
 */
static void racer(const char *name, int id)
{
	tc_cache *c = fx_attach(name);
	int64_t wins = 0;
	for (int r = 0; r < ROUNDS; r++) {
		char bar[32], key[64];
		if (r % BATCH == 0) {
			int bl = snprintf(bar, sizeof(bar), "barrier:%d", r / BATCH);
			int64_t arrived;
			FX_CHECK(tc_incr(c, bar, (size_t)bl, 1, 0, &arrived) == 0);
			for (int spin = 0; arrived < NPROC; spin++) {
				tc_meta m;
				char v[8];
				FX_CHECK(tc_get(c, bar, (size_t)bl, v, sizeof(v), &m) == 0);
				memcpy(&arrived, v, 8); /* little-endian host */
				if (spin > 50)
					fx_sleep_ms(1);
				else
					sched_yield();
			}
		}
		int kl = mark_key(key, sizeof(key), r);
		char sig[16];
		int sl = snprintf(sig, sizeof(sig), "sig-%d", id);
		int rc = tc_add(c, key, (size_t)kl, sig, (size_t)sl, 0, 3600 * 1000);
		FX_CHECK(rc == 0 || rc == -EEXIST);
		if (rc == 0)
			wins++;
	}
	FX_CHECK(tc_incr(c, "wins", 4, wins, 0, NULL) == 0);
	tc_close(c);
	_exit(0);
}

static void test_racing_marks_have_exactly_one_winner(void **state)
{
	struct fx_seg *f = *state;
	pid_t pids[NPROC];
	for (int i = 0; i < NPROC; i++) {
		pids[i] = fork();
		assert_true(pids[i] >= 0);
		if (pids[i] == 0)
			racer(f->name, i);
	}
	fx_wait_all(pids, NPROC);
	int64_t total = -1;
	assert_int_equal(0, tc_incr(f->c, "wins", 4, 0, 0, &total));
	assert_int_equal(ROUNDS, (int)total);
	for (int r = 0; r < ROUNDS; r++) {
		char key[64], v[16];
		tc_meta m;
		int kl = mark_key(key, sizeof(key), r);
		assert_int_equal(0, tc_get(f->c, key, (size_t)kl, v, sizeof(v), &m));
		assert_int_equal(5, (int)m.len); /* "sig-N": the winner's id */
		assert_true(m.expires_ms > 0);
	}
}

/* Marks outlive every attached process: nobody is attached in between. */
static void test_marks_survive_every_process(void **state)
{
	(void)state;
	char name[TC_NAME_MAX + 1];
	fx_name(name);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		tc_cache *c = NULL;
		tc_opts o = fx_opts(1024, 1u << 20, 64);
		FX_CHECK(tc_open(&c, name, &o) == 0);
		for (int r = 0; r < 100; r++) {
			char key[64];
			int kl = mark_key(key, sizeof(key), r);
			FX_CHECK(tc_add(c, key, (size_t)kl, "1", 1, 0, 3600 * 1000) == 0);
		}
		_exit(0); /* no tc_close: the process just ends */
	}
	fx_wait_all(&pid, 1);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		tc_cache *c = fx_attach(name);
		for (int r = 0; r < 100; r++) {
			char key[64];
			int kl = mark_key(key, sizeof(key), r);
			FX_CHECK(tc_exists(c, key, (size_t)kl));
			FX_CHECK(tc_add(c, key, (size_t)kl, "2", 1, 0, 3600 * 1000) == -EEXIST);
		}
		char key[64];
		int kl = mark_key(key, sizeof(key), 100);
		FX_CHECK(!tc_exists(c, key, (size_t)kl));
		tc_close(c);
		_exit(0);
	}
	fx_wait_all(&pid, 1);
	assert_int_equal(0, tc_unlink(name));
}

/* Marks expire on time, and an expired mark is free to take again. */
static void test_marks_expire_on_time(void **state)
{
	struct fx_seg *f = *state;
	tc_meta m;
	char v[8];
	int64_t before = tc_now_ms();
	assert_int_equal(0, tc_add(f->c, "candle:X:1", 10, "a", 1, 0, 200));
	int64_t after = tc_now_ms();
	assert_int_equal(0, tc_get(f->c, "candle:X:1", 10, v, sizeof(v), &m));
	assert_true(m.expires_ms >= before + 200 && m.expires_ms <= after + 200);
	assert_int_equal(-EEXIST, tc_add(f->c, "candle:X:1", 10, "b", 1, 0, 200));
	/* A 24 h signal mark keeps its deadline. */
	assert_int_equal(0, tc_add(f->c, "signal:X:1", 10, "id42", 4, 0, 24 * 3600 * 1000));
	while (tc_now_ms() <= m.expires_ms)
		fx_sleep_ms(20);
	fx_sleep_ms(20); /* past the coarse clock's granularity too */
	assert_false(tc_exists(f->c, "candle:X:1", 10));
	assert_int_equal(0, tc_add(f->c, "candle:X:1", 10, "b", 1, 0, 200));
	assert_int_equal(0, tc_get(f->c, "candle:X:1", 10, v, sizeof(v), &m));
	assert_memory_equal("b", v, 1);
	assert_int_equal(0, tc_get(f->c, "signal:X:1", 10, v, sizeof(v), &m));
	assert_memory_equal("id42", v, 4);
	/* Clearing by pattern (candle:*) leaves the signal marks. */
	uint64_t deleted;
	assert_int_equal(0, tc_purge(f->c, "candle:*", &deleted));
	assert_int_equal(1, (int)deleted);
	assert_true(tc_exists(f->c, "signal:X:1", 10));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		FX_TEST_SEG(test_racing_marks_have_exactly_one_winner),
		FX_TEST(test_marks_survive_every_process),
		FX_TEST_SEG(test_marks_expire_on_time),
	};
	return fx_run(tests);
}
