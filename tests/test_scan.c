/* SPDX-License-Identifier: MIT */
/*
 * test_scan.c - tc_scan and tc_purge by glob: fnmatch rules, the callback's
 * stop value, purge counts (and the clears / keys_deleted counters), other
 * namespaces (DTO lists, rate limits) untouched, expired keys invisible, and
 * a scan racing a writer process sees every key present throughout it
 * exactly once.
 */
#include "fixture.h"

#define MAXSEEN 8192

struct seen {
	int n;
	int stop_after; /* return 7 after this many, 0 never */
	char keys[64][48];
	int count[MAXSEEN]; /* stable key index -> times seen */
	int foreign;        /* keys the scan should not have visited */
};

static int collect_fn(const void *key, size_t klen, const tc_meta *meta, void *arg)
{
	struct seen *s = arg;
	(void)meta;
	if (s->n < 64) {
		size_t l = klen < 47 ? klen : 47;
		memcpy(s->keys[s->n], key, l);
		s->keys[s->n][l] = '\0';
	}
	s->n++;
	return s->stop_after && s->n == s->stop_after ? 7 : 0;
}

static bool has(const struct seen *s, const char *key)
{
	for (int i = 0; i < s->n && i < 64; i++)
		if (strcmp(s->keys[i], key) == 0)
			return true;
	return false;
}

static void put(tc_cache *c, const char *key, uint64_t ttl)
{
	assert_int_equal(0, tc_set(c, key, strlen(key), "v", 1, 0, ttl));
}

static void test_glob_rules(void **state)
{
	struct fx_seg *f = *state;
	const char *keys[] = { "candle:EURUSD:1m", "candle:GBPUSD:1m", "candle:EURUSD:5m",
			       "signal:EURUSD:42", "tradecore:market:quote:AAPL", "abc", "a*c" };
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		put(f->c, keys[i], 0);
	struct seen s = { 0 };
	assert_int_equal(0, tc_scan(f->c, "candle:*", collect_fn, &s));
	assert_int_equal(3, s.n);
	assert_true(has(&s, "candle:EURUSD:1m") && has(&s, "candle:GBPUSD:1m") &&
		    has(&s, "candle:EURUSD:5m"));
	memset(&s, 0, sizeof(s));
	assert_int_equal(0, tc_scan(f->c, "candle:???USD:1m", collect_fn, &s));
	assert_int_equal(2, s.n);
	memset(&s, 0, sizeof(s));
	assert_int_equal(0, tc_scan(f->c, "[cs]*:EURUSD:*", collect_fn, &s));
	assert_int_equal(3, s.n);
	memset(&s, 0, sizeof(s));
	assert_int_equal(0, tc_scan(f->c, "candle:[!E]*", collect_fn, &s));
	assert_true(has(&s, "candle:GBPUSD:1m"));
	assert_int_equal(1, s.n);
	memset(&s, 0, sizeof(s));
	/* fnmatch rules: '*' crosses ':' (no FNM_PATHNAME-like separator). */
	assert_int_equal(0, tc_scan(f->c, "*:[!E]*", collect_fn, &s));
	assert_int_equal(5, s.n);
	memset(&s, 0, sizeof(s));
	assert_int_equal(0, tc_scan(f->c, "a\\*c", collect_fn, &s)); /* escaped star */
	assert_int_equal(1, s.n);
	assert_string_equal("a*c", s.keys[0]);
	memset(&s, 0, sizeof(s));
	assert_int_equal(0, tc_scan(f->c, "*", collect_fn, &s));
	assert_int_equal(7, s.n);
	memset(&s, 0, sizeof(s));
	assert_int_equal(0, tc_scan(f->c, NULL, collect_fn, &s));
	assert_int_equal(7, s.n);
	memset(&s, 0, sizeof(s));
	assert_int_equal(0, tc_scan(f->c, "nomatch*", collect_fn, &s));
	assert_int_equal(0, s.n);
	memset(&s, 0, sizeof(s));
	s.stop_after = 2;
	assert_int_equal(7, tc_scan(f->c, "*", collect_fn, &s));
	assert_int_equal(2, s.n);
	assert_int_equal(-EINVAL, tc_scan(f->c, "*", NULL, NULL));
	assert_int_equal(-EINVAL, tc_scan(NULL, "*", collect_fn, &s));
}

static void test_purge_deletes_matches_only_and_counts(void **state)
{
	struct fx_seg *f = *state;
	tc_stats before, after;
	for (int i = 0; i < 50; i++) {
		char key[32];
		snprintf(key, sizeof(key), "candle:X:%d", i);
		put(f->c, key, 0);
		snprintf(key, sizeof(key), "signal:X:%d", i);
		put(f->c, key, 0);
	}
	/* Other namespaces share key bytes but are not keys. */
	assert_int_equal(0, tc_run_start(f->c, 1, 1));
	assert_int_equal(0, tc_dto_append(f->c, "candle:X:dto", 12, 1, "d", 1));
	bool ok;
	assert_int_equal(0, tc_rate_limit(f->c, "candle:X:rate", 13, 5, 60000, &ok, NULL));
	assert_int_equal(0, tc_get_stats(f->c, &before));
	uint64_t deleted = 99;
	assert_int_equal(0, tc_purge(f->c, "candle:*", &deleted));
	assert_int_equal(50, (int)deleted);
	assert_int_equal(0, tc_get_stats(f->c, &after));
	assert_int_equal(before.clears + 1, after.clears);
	assert_int_equal(before.keys_deleted + 50, after.keys_deleted);
	assert_int_equal(before.entries - 50, after.entries);
	struct seen s = { 0 };
	assert_int_equal(0, tc_scan(f->c, "*", collect_fn, &s));
	assert_int_equal(50, s.n);
	size_t n;
	assert_int_equal(0, tc_dto_count(f->c, "candle:X:dto", 12, &n));
	assert_int_equal(1, (int)n);
	uint64_t cnt;
	assert_int_equal(0, tc_rate_limit(f->c, "candle:X:rate", 13, 5, 60000, &ok, &cnt));
	assert_true(cnt >= 1); /* 2 unless a window turned in between */
	assert_int_equal(0, tc_purge(f->c, "candle:*", &deleted));
	assert_int_equal(0, (int)deleted);
	assert_int_equal(0, tc_purge(f->c, NULL, &deleted)); /* clear all */
	assert_int_equal(50, (int)deleted);
	assert_int_equal(0, tc_purge(f->c, "*", NULL));
	assert_int_equal(0, tc_run_end(f->c));
	assert_int_equal(-EINVAL, tc_purge(NULL, "*", &deleted));
}

/* A purge frees what it deleted before it returns (the following writes
 * do not walk its garbage), except inside the caller's own read section,
 * whose grace period it cannot wait for: then tc_reclaim frees it after. */
static void test_purge_frees_its_garbage_outside_a_section(void **state)
{
	struct fx_seg *f = *state;
	tc_stats st;
	for (int round = 0; round < 2; round++) {
		for (int i = 0; i < 200; i++) {
			char key[32];
			snprintf(key, sizeof(key), "bar:X:%d", i);
			put(f->c, key, 0);
		}
		assert_int_equal(0, tc_get_stats(f->c, &st));
		assert_int_equal(0, (int)st.memory_retired);
		if (round == 1)
			assert_int_equal(0, tc_read_lock(f->c));
		uint64_t deleted = 0;
		assert_int_equal(0, tc_purge(f->c, "bar:*", &deleted));
		assert_int_equal(200, (int)deleted);
		if (round == 1)
			tc_read_unlock(f->c);
		assert_int_equal(0, tc_get_stats(f->c, &st));
		if (round == 0) {
			assert_int_equal(0, (int)st.memory_retired);
			continue;
		}
		assert_true(st.memory_retired > 0);
		uint64_t freed = 0;
		assert_int_equal(0, tc_reclaim(f->c, &freed));
		assert_int_equal(200, (int)freed);
		assert_int_equal(0, tc_get_stats(f->c, &st));
		assert_int_equal(0, (int)st.memory_retired);
	}
}

static void test_expired_keys_are_not_visited(void **state)
{
	struct fx_seg *f = *state;
	put(f->c, "short:1", 30);
	put(f->c, "long:1", 600000);
	int64_t t = tc_now_ms();
	while (tc_now_ms() <= t + 40)
		fx_sleep_ms(10);
	struct seen s = { 0 };
	assert_int_equal(0, tc_scan(f->c, "*", collect_fn, &s));
	assert_int_equal(1, s.n);
	assert_string_equal("long:1", s.keys[0]);
	uint64_t deleted;
	assert_int_equal(0, tc_purge(f->c, "short:*", &deleted));
	assert_int_equal(0, (int)deleted);
}

#define STABLE 3000

static int stable_fn(const void *key, size_t klen, const tc_meta *meta, void *arg)
{
	struct seen *s = arg;
	(void)meta;
	char k[48];
	size_t l = klen < 47 ? klen : 47;
	memcpy(k, key, l);
	k[l] = '\0';
	int i;
	if (sscanf(k, "stable:%d", &i) == 1 && i >= 0 && i < STABLE)
		s->count[i]++;
	else if (strncmp(k, "churn:", 6) != 0)
		s->foreign++;
	s->n++;
	return 0;
}

/* Keys present for a whole scan are visited exactly once, whatever a
 * concurrent writer does to other keys and to their values. */
static void test_scan_racing_a_writer_sees_stable_keys_once(void **state)
{
	struct fx_seg *f = *state;
	for (int i = 0; i < STABLE; i++) {
		char key[32];
		snprintf(key, sizeof(key), "stable:%d", i);
		put(f->c, key, 0);
	}
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		tc_cache *c = fx_attach(f->name);
		for (uint32_t i = 0;; i++) {
			char key[32];
			snprintf(key, sizeof(key), "churn:%u", i % 4000);
			FX_CHECK(tc_set(c, key, strlen(key), "x", 1, 0, 0) == 0);
			snprintf(key, sizeof(key), "churn:%u", (i + 2000) % 4000);
			int rc = tc_del(c, key, strlen(key));
			FX_CHECK(rc == 0 || rc == -ENOENT);
			snprintf(key, sizeof(key), "stable:%u", i % STABLE);
			FX_CHECK(tc_set(c, key, strlen(key), &i, sizeof(i), 0, 0) == 0);
		}
	}
	for (int round = 0; round < 20; round++) {
		struct seen *s = calloc(1, sizeof(*s));
		assert_non_null(s);
		assert_int_equal(0, tc_scan(f->c, "*", stable_fn, s));
		assert_int_equal(0, s->foreign);
		for (int i = 0; i < STABLE; i++)
			if (s->count[i] != 1)
				fail_msg("round %d: stable:%d seen %d times", round, i, s->count[i]);
		free(s);
	}
	kill(pid, SIGKILL);
	assert_int_equal(pid, waitpid(pid, NULL, 0));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		FX_TEST_SEG(test_glob_rules),
		FX_TEST_SEG(test_purge_deletes_matches_only_and_counts),
		FX_TEST_SEG(test_purge_frees_its_garbage_outside_a_section),
		FX_TEST_SEG(test_expired_keys_are_not_visited),
		FX_TEST_SEG(test_scan_racing_a_writer_sees_stable_keys_once),
	};
	return fx_run(tests);
}
