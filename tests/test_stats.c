/* SPDX-License-Identifier: MIT */
/*
 * test_stats.c - tc_get_stats (shm/stats.c), black-box: after a known
 * sequence of calls every counter equals an exact number (hits, misses,
 * sets, adds, deletes, errors, ops, expirations, clears, keys_deleted, the
 * hit rate), the gauges count live keys exactly, another handle and a
 * process that has exited count in the same totals, and bad arguments
 * give -EINVAL.  Expiry uses a TTL of 1 ms and a sleep of 50 ms: the clock
 * only has to move forward, nothing is timed.
 */
#include "blackbox.h"

static tc_stats *stats_of(tc_cache *c)
{
	static tc_stats st;

	memset(&st, 0xA5, sizeof(st));
	ASSERT_RC(0, tc_get_stats(c, &st));
	return &st;
}

static void test_stats_count_exact_on_fresh_segment(void **state)
{
	char name[TC_NAME_MAX + 1], buf[16];
	tc_opts o = fx_opts(2048, 2u << 20, 8);
	tc_stats *st = calloc(1, sizeof(*st));
	tc_cache *c = NULL;
	const void *p;

	(void)state;
	assert_non_null(st);
	fx_name(name);
	ASSERT_RC(0, tc_open(&c, name, &o));
	ASSERT_RC(0, tc_get_stats(c, st));
	assert_int_equal(0, st->hits);
	assert_int_equal(0, st->misses);
	assert_int_equal(0, st->sets);
	assert_int_equal(0, st->entries);
	assert_int_equal(0, st->memory_used);

	bb_set_str(c, "a", "1", 0);
	bb_set_str(c, "b", "2", 0);
	ASSERT_RC(0, tc_get(c, KS("a"), buf, sizeof(buf), NULL));          /* hit */
	ASSERT_RC(0, tc_read_lock(c));
	ASSERT_RC(0, tc_peek(c, KS("b"), &p, NULL));                         /* hit */
	tc_read_unlock(c);
	ASSERT_RC(-ENOENT, tc_get(c, KS("zz"), buf, sizeof(buf), NULL));    /* miss */
	ASSERT_RC(0, tc_add(c, KS("c"), KS("3"), 0u, 0));                   /* add */
	ASSERT_RC(-EEXIST, tc_add(c, KS("a"), KS("x"), 0u, 0));             /* exists */
	ASSERT_RC(0, tc_del(c, KS("b")));                                   /* delete */
	ASSERT_RC(-ENOENT, tc_get(c, KS("b"), buf, sizeof(buf), NULL));     /* miss */
	ASSERT_RC(-EINVAL, tc_get(c, "a", 0, buf, sizeof(buf), NULL));      /* error */
	ASSERT_RC(0, tc_get_stats(c, st));
	assert_int_equal(2, st->hits);
	assert_int_equal(2, st->misses);
	assert_int_equal(2, st->sets);
	assert_int_equal(1, st->adds);
	assert_int_equal(1, st->deletes);
	assert_int_equal(0, st->expirations);
	assert_int_equal(0, st->evictions);
	assert_int_equal(1, st->errors);
	assert_true(st->ops >= 9 && st->ops <= 10);
	assert_true(st->hit_rate > 0.49 && st->hit_rate < 0.51);
	assert_int_equal(2, st->entries);                     /* a and c */
	assert_int_equal(2048, st->max_entries);
	assert_true(st->index_slots >= 2048);
	assert_int_equal(2u << 20, st->memory_bytes);
	assert_int_equal(8, st->max_readers);
	assert_true(st->memory_used > 0);
	assert_true(st->memory_used <= st->memory_bytes);
	assert_true(st->memory_retired <= st->memory_used);
	assert_true(st->readers >= 1 && st->readers <= 8);
	assert_int_equal(1, st->attached);
	assert_true(st->nclasses <= TC_NCLASSES);
	/* A second handle sees the same totals. */
	{
		tc_cache *d = NULL;
		tc_stats *s2 = calloc(1, sizeof(*s2));

		assert_non_null(s2);
		ASSERT_RC(0, tc_open(&d, name, NULL));
		ASSERT_RC(0, tc_get_stats(d, s2));
		assert_int_equal(2, s2->hits);
		assert_int_equal(2, s2->misses);
		assert_int_equal(2, s2->entries);
		tc_close(d);
		free(s2);
	}
	free(st);
	tc_close(c);
}

/*
 * One call of every kind, each outcome counted where tickcache.h says:
 * tc_cas, tc_incr and tc_expire count as sets; -EEXIST, -ENOENT and
 * TC_ECONFLICT are neither errors nor misses; -EINVAL and TC_ETYPE are
 * errors; every call is an op.
 */
static void test_stats_every_call_counts_exactly_once(void **state)
{
	char name[TC_NAME_MAX + 1], buf[64];
	tc_cache *c = bb_open_small(name);
	tc_meta m;
	int64_t n = 0;
	tc_stats *st;

	(void)state;
	bb_set_str(c, "a", "1", 0);                                          /* set */
	bb_set_str(c, "b", "2", 0);                                          /* set */
	bb_set_str(c, "c", "3", 0);                                          /* set */
	ASSERT_RC(0, tc_get(c, KS("a"), buf, sizeof(buf), &m));              /* hit */
	ASSERT_RC(0, tc_get(c, KS("b"), buf, sizeof(buf), NULL));            /* hit */
	ASSERT_RC(-ENOENT, tc_get(c, KS("zz"), buf, sizeof(buf), NULL));     /* miss */
	ASSERT_RC(0, tc_add(c, KS("d"), KS("4"), 0u, 0));                    /* add */
	ASSERT_RC(-EEXIST, tc_add(c, KS("a"), KS("x"), 0u, 0));              /* op only */
	ASSERT_RC(0, tc_cas(c, KS("a"), m.version, KS("5"), 0u, 0));         /* set */
	ASSERT_RC(TC_ECONFLICT, tc_cas(c, KS("a"), m.version, KS("6"), 0u, 0)); /* op only */
	ASSERT_RC(0, tc_incr(c, KS("ctr"), 5, 0, &n));                       /* set */
	assert_int_equal(5, n);
	ASSERT_RC(0, tc_expire(c, KS("b"), 0));                              /* set */
	ASSERT_RC(0, tc_del(c, KS("c")));                                    /* delete */
	ASSERT_RC(-ENOENT, tc_del(c, KS("c")));                              /* op only */
	ASSERT_RC(-EINVAL, tc_get(c, "a", 0, buf, sizeof(buf), NULL));      /* error */
	ASSERT_RC(TC_ETYPE, tc_incr(c, KS("a"), 1, 0, NULL));                /* error */

	st = stats_of(c);
	assert_int_equal(2, st->hits);
	assert_int_equal(1, st->misses);
	assert_int_equal(6, st->sets);
	assert_int_equal(1, st->adds);
	assert_int_equal(1, st->deletes);
	assert_int_equal(2, st->errors);
	assert_int_equal(16, st->ops);
	assert_int_equal(0, st->expirations);
	assert_int_equal(0, st->evictions);
	assert_int_equal(0, st->clears);
	assert_int_equal(0, st->keys_deleted);
	assert_true(st->hit_rate == 2.0 / 3.0); /* hits / (hits + misses) */
	assert_int_equal(4, st->entries);      /* a, b, d, ctr */
	assert_int_equal(1, st->attached);
	assert_int_equal(0, st->checksum_failures);
	tc_close(c);
}

/* Expired keys removed by a sweep count as expirations; a purge counts one
 * clear and the keys it deleted, not deletes. */
static void test_stats_expirations_clears_and_keys_deleted(void **state)
{
	char name[TC_NAME_MAX + 1], k[16];
	tc_cache *c = bb_open_small(name);
	tc_sweep_report rep;
	uint64_t deleted = 0;
	tc_stats *st;

	(void)state;
	for (unsigned i = 0; i < 3; i++)
		bb_set_str(c, (bb_key(k, sizeof(k), "e:", i), k), "v", 1);
	for (unsigned i = 0; i < 5; i++)
		bb_set_str(c, (bb_key(k, sizeof(k), "p:", i), k), "v", 0);
	bb_set_str(c, "q", "v", 0);
	st = stats_of(c);
	assert_int_equal(9, st->entries); /* expired keys count until swept */
	fx_sleep_ms(50);
	ASSERT_RC(0, tc_sweep(c, 0, &rep));
	assert_int_equal(3, rep.expired);
	ASSERT_RC(0, tc_purge(c, "p:*", &deleted));
	assert_int_equal(5, deleted);

	st = stats_of(c);
	assert_int_equal(3, st->expirations);
	assert_int_equal(1, st->clears);
	assert_int_equal(5, st->keys_deleted);
	assert_int_equal(0, st->deletes);
	assert_int_equal(9, st->sets);
	assert_int_equal(0, st->errors);
	assert_int_equal(10, st->ops); /* 9 sets and the purge; tc_sweep is no op */
	assert_int_equal(1, st->entries);
	tc_close(c);
}

/* The work of a process that has closed its handle and exited stays in
 * the totals. */
static void test_stats_keep_the_counts_of_an_exited_process(void **state)
{
	char name[TC_NAME_MAX + 1], buf[8];
	tc_cache *c = bb_open_small(name);
	tc_stats *st;
	pid_t pid;

	(void)state;
	bb_set_str(c, "mine", "v", 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		tc_cache *d = fx_attach(name);
		char kb[16];

		for (unsigned i = 0; i < 5; i++)
			FX_CHECK(tc_set(d, kb, bb_key(kb, sizeof(kb), "c", i), "v", 1, 0, 0) == 0);
		for (unsigned i = 0; i < 3; i++)
			FX_CHECK(tc_get(d, KS("absent"), buf, sizeof(buf), NULL) == -ENOENT);
		FX_CHECK(tc_get(d, KS("mine"), buf, sizeof(buf), NULL) == 0);
		tc_close(d);
		_exit(0);
	}
	assert_int_equal(0, fx_wait(pid));
	st = stats_of(c);
	assert_int_equal(6, st->sets);
	assert_int_equal(3, st->misses);
	assert_int_equal(1, st->hits);
	assert_int_equal(10, st->ops);
	assert_int_equal(6, st->entries);
	assert_int_equal(1, st->attached);
	tc_close(c);
}

static void test_stats_bad_arguments_return_einval(void **state)
{
	char name[TC_NAME_MAX + 1];
	tc_cache *c = bb_open_small(name);
	tc_stats st;

	(void)state;
	ASSERT_RC(-EINVAL, tc_get_stats(NULL, &st));
	ASSERT_RC(-EINVAL, tc_get_stats(c, NULL));
	tc_close(c);
}

/*
 * The counts and the allocator's gauges stay exact whichever way a write
 * enters its read section and gets its block: the thread's first call,
 * its handle's entry current or another handle's (two handles of one
 * segment), writes nested in tc_read_lock, blocks carved, retired, freed by
 * tc_reclaim and popped again.  All values of one class, so its gauges
 * are known: 10 blocks carved, 3 freed, 2 of them taken again.
 */
static void test_stats_exact_on_every_write_path(void **state)
{
	char name[TC_NAME_MAX + 1];
	char val[100];
	tc_cache *a = bb_open_small(name), *b = NULL;
	tc_stats *st;

	(void)state;
	memset(val, 'v', sizeof(val));
	ASSERT_RC(0, tc_open(&b, name, NULL));
	ASSERT_RC(0, tc_set(a, KS("p0"), val, sizeof(val), 0u, 0)); /* the thread's first call */
	ASSERT_RC(0, tc_set(a, KS("p1"), val, sizeof(val), 0u, 0)); /* A's entry current */
	ASSERT_RC(0, tc_set(a, KS("p2"), val, sizeof(val), 0u, 0));
	ASSERT_RC(0, tc_set(b, KS("p3"), val, sizeof(val), 0u, 0)); /* A's current, not B's */
	ASSERT_RC(0, tc_set(b, KS("p4"), val, sizeof(val), 0u, 0));
	ASSERT_RC(0, tc_read_lock(a));
	ASSERT_RC(0, tc_set(a, KS("p5"), val, sizeof(val), 0u, 0)); /* nested */
	ASSERT_RC(0, tc_set(b, KS("p6"), val, sizeof(val), 0u, 0)); /* B's own section */
	ASSERT_RC(0, tc_set(a, KS("p7"), val, sizeof(val), 0u, 0)); /* nested, B's current */
	ASSERT_RC(0, tc_set(a, KS("p0"), val, sizeof(val), 0u, 0)); /* nested: retires one */
	tc_read_unlock(a);
	ASSERT_RC(0, tc_set(b, KS("p1"), val, sizeof(val), 0u, 0)); /* retires one */
	ASSERT_RC(0, tc_del(a, KS("p2")));                          /* retires one */
	ASSERT_RC(0, tc_reclaim(a, NULL));                          /* frees the three */
	ASSERT_RC(0, tc_set(a, KS("p8"), val, sizeof(val), 0u, 0)); /* popped */
	ASSERT_RC(0, tc_set(b, KS("p9"), val, sizeof(val), 0u, 0)); /* popped */

	st = stats_of(a);
	assert_int_equal(12, st->sets);
	assert_int_equal(1, st->deletes);
	assert_int_equal(0, st->errors);
	assert_int_equal(13, st->ops);
	assert_int_equal(9, st->entries);
	assert_int_equal(1, st->nclasses);
	assert_int_equal(9, st->classes[0].used);
	assert_int_equal(1, st->classes[0].free);
	assert_int_equal(9 * (uint64_t)st->classes[0].size, st->memory_used);
	assert_int_equal(0, st->memory_retired);
	assert_int_equal(10 * (uint64_t)st->classes[0].size, st->memory_carved);
	assert_int_equal(0, st->epoch_lag); /* no section left open */
	tc_close(b);
	tc_close(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		FX_TEST(test_stats_count_exact_on_fresh_segment),
		FX_TEST(test_stats_every_call_counts_exactly_once),
		FX_TEST(test_stats_expirations_clears_and_keys_deleted),
		FX_TEST(test_stats_keep_the_counts_of_an_exited_process),
		FX_TEST(test_stats_bad_arguments_return_einval),
		FX_TEST(test_stats_exact_on_every_write_path),
	};
	return fx_run(tests);
}
