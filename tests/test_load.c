/* SPDX-License-Identifier: MIT */
/*
 * test_load.c - tc_get_or_load: hits never load; a miss loads once and
 * caches with the given type and TTL; loader errors reach their caller
 * unchanged and are not cached; across processes the loader runs once per
 * miss; a waiter times out; a killed loader and an expired lease are taken
 * over.
 */
#include "fixture.h"

#define T_QUOTE 0x51u

struct loader {
	const char *name;  /* segment, for loaders that count in it */
	const char *value;
	int rc;            /* returned by the loader */
	long sleep_ms;     /* before returning */
	bool forever;      /* never return (killed by the test) */
	int calls;
	size_t force_len;  /* report this length when non-zero */
	const char *mark;  /* key set (in count_c) when the loader starts */
};

static tc_cache *count_c; /* handle the loaders count their runs in */

static int load_fn(const void *key, size_t klen, void *buf, size_t cap, size_t *len, void *arg)
{
	struct loader *l = arg;
	(void)key;
	(void)klen;
	l->calls++;
	if (count_c)
		(void)tc_incr(count_c, "loads", 5, 1, 0, NULL);
	if (count_c && l->mark)
		(void)tc_set(count_c, l->mark, strlen(l->mark), "1", 1, 0, 0);
	if (l->forever) {
		(void)tc_set(count_c, "loading", 7, "1", 1, 0, 0);
		for (;;)
			pause();
	}
	if (l->sleep_ms)
		fx_sleep_ms(l->sleep_ms);
	if (l->rc)
		return l->rc;
	size_t n = strlen(l->value);
	if (n > cap)
		return -E2BIG;
	memcpy(buf, l->value, n);
	*len = l->force_len ? l->force_len : n;
	return 0;
}

static void test_bad_arguments_return_einval(void **state)
{
	struct fx_seg *f = *state;
	char buf[8];
	struct loader l = { .value = "v" };
	assert_int_equal(-EINVAL, tc_get_or_load(NULL, "k", 1, buf, 8, NULL, 0, 0, 0, load_fn, &l));
	assert_int_equal(-EINVAL, tc_get_or_load(f->c, NULL, 1, buf, 8, NULL, 0, 0, 0, load_fn, &l));
	assert_int_equal(-EINVAL, tc_get_or_load(f->c, "k", 0, buf, 8, NULL, 0, 0, 0, load_fn, &l));
	assert_int_equal(-EINVAL, tc_get_or_load(f->c, "k", 1, NULL, 8, NULL, 0, 0, 0, load_fn, &l));
	assert_int_equal(-EINVAL, tc_get_or_load(f->c, "k", 1, buf, 8, NULL, 0, 0, 0, NULL, &l));
	assert_int_equal(0, l.calls);
}

static void test_hit_never_loads_and_miss_loads_once(void **state)
{
	struct fx_seg *f = *state;
	char buf[32];
	tc_meta m;
	struct loader l = { .value = "1.2345" };
	assert_int_equal(0, tc_set(f->c, "quote:A", 7, "9.99", 4, T_QUOTE, 0));
	assert_int_equal(0, tc_get_or_load(f->c, "quote:A", 7, buf, sizeof(buf), &m, T_QUOTE,
					   5000, 1000, load_fn, &l));
	assert_int_equal(0, l.calls);
	assert_int_equal(4, (int)m.len);
	assert_memory_equal("9.99", buf, 4);

	int64_t before = tc_now_ms();
	assert_int_equal(0, tc_get_or_load(f->c, "quote:B", 7, buf, sizeof(buf), &m, T_QUOTE,
					   5000, 1000, load_fn, &l));
	int64_t after = tc_now_ms();
	assert_int_equal(1, l.calls);
	assert_int_equal(6, (int)m.len);
	assert_int_equal(T_QUOTE, (int)m.type);
	assert_true(m.version > 0);
	assert_true(m.expires_ms >= before + 5000 && m.expires_ms <= after + 5000);
	assert_memory_equal("1.2345", buf, 6);
	/* Cached: a second call and a plain get see it without loading. */
	assert_int_equal(0, tc_get_or_load(f->c, "quote:B", 7, buf, sizeof(buf), &m, T_QUOTE,
					   5000, 1000, load_fn, &l));
	assert_int_equal(1, l.calls);
	tc_meta g;
	assert_int_equal(0, tc_get(f->c, "quote:B", 7, buf, sizeof(buf), &g));
	assert_int_equal(m.version, g.version);
	/* The lease is gone: nothing but the value is left. */
	tc_stats st;
	assert_int_equal(0, tc_get_stats(f->c, &st));
	assert_int_equal(2, (int)st.entries);
}

static void test_loader_error_is_returned_and_not_cached(void **state)
{
	struct fx_seg *f = *state;
	char buf[32];
	struct loader bad = { .value = "x", .rc = -EIO };
	struct loader good = { .value = "ok" };
	assert_int_equal(-EIO, tc_get_or_load(f->c, "k", 1, buf, sizeof(buf), NULL, 0, 0, 1000,
					      load_fn, &bad));
	assert_int_equal(-ENOENT, tc_get(f->c, "k", 1, buf, sizeof(buf), NULL));
	/* No lease is left behind: the next caller loads at once. */
	assert_int_equal(0, tc_get_or_load(f->c, "k", 1, buf, sizeof(buf), NULL, 0, 0, 0,
					   load_fn, &good));
	assert_int_equal(1, bad.calls);
	assert_int_equal(1, good.calls);
	/* A buffer too small for a cached value: -E2BIG, no load. */
	assert_int_equal(-E2BIG, tc_get_or_load(f->c, "k", 1, buf, 1, NULL, 0, 0, 0, load_fn, &good));
	assert_int_equal(1, good.calls);
	/* A loader claiming more than the buffer: -E2BIG, nothing cached. */
	struct loader liar = { .value = "abc", .force_len = 100 };
	assert_int_equal(-E2BIG, tc_get_or_load(f->c, "liar", 4, buf, sizeof(buf), NULL, 0, 0, 0,
						load_fn, &liar));
	assert_false(tc_exists(f->c, "liar", 4));
}

#define NPROC 4

/* Several processes miss the same keys at once: one load per key. */
static void test_one_load_per_miss_across_processes(void **state)
{
	struct fx_seg *f = *state;
	pid_t pids[NPROC];
	for (int i = 0; i < NPROC; i++) {
		pids[i] = fork();
		assert_true(pids[i] >= 0);
		if (pids[i] == 0) {
			tc_cache *c = fx_attach(f->name);
			count_c = c;
			for (int k = 0; k < 5; k++) {
				char key[32], buf[32], want[32];
				int kl = snprintf(key, sizeof(key), "bar:%d", k);
				snprintf(want, sizeof(want), "value-%d", k);
				struct loader l = { .value = want, .sleep_ms = 100 };
				tc_meta m;
				FX_CHECK(tc_get_or_load(c, key, (size_t)kl, buf, sizeof(buf), &m, 7, 0,
							10000, load_fn, &l) == 0);
				FX_CHECK(m.len == strlen(want) && memcmp(buf, want, m.len) == 0);
			}
			tc_close(c);
			_exit(0);
		}
	}
	fx_wait_all(pids, NPROC);
	int64_t loads;
	assert_int_equal(0, tc_incr(f->c, "loads", 5, 0, 0, &loads));
	assert_int_equal(5, (int)loads);
}

/* Start a child whose loader never returns; wait until it is loading. */
static pid_t start_stuck_loader(struct fx_seg *f, uint64_t wait_ms)
{
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		tc_cache *c = fx_attach(f->name);
		count_c = c;
		struct loader l = { .value = "never", .forever = true };
		char buf[32];
		(void)tc_get_or_load(c, "slow", 4, buf, sizeof(buf), NULL, 0, 0, wait_ms, load_fn, &l);
		_exit(1);
	}
	while (!tc_exists(f->c, "loading", 7)) {
		assert_int_equal(0, waitpid(pid, NULL, WNOHANG));
		fx_sleep_ms(2);
	}
	return pid;
}

static void test_waiter_times_out_then_takes_over_a_killed_loader(void **state)
{
	struct fx_seg *f = *state;
	char buf[32];
	struct loader l = { .value = "fresh" };
	pid_t pid = start_stuck_loader(f, 60000);
	/* The holder is alive and its lease long: a waiter times out. */
	assert_int_equal(-ETIMEDOUT, tc_get_or_load(f->c, "slow", 4, buf, sizeof(buf), NULL, 0, 0,
						    0, load_fn, &l));
	assert_int_equal(-ETIMEDOUT, tc_get_or_load(f->c, "slow", 4, buf, sizeof(buf), NULL, 0, 0,
						    50, load_fn, &l));
	assert_int_equal(0, l.calls);
	kill(pid, SIGKILL);
	assert_int_equal(pid, waitpid(pid, NULL, 0));
	/* Dead holder: the next caller takes the lease over and loads. */
	tc_meta m;
	assert_int_equal(0, tc_get_or_load(f->c, "slow", 4, buf, sizeof(buf), &m, 0, 0, 60000,
					   load_fn, &l));
	assert_int_equal(1, l.calls);
	assert_int_equal(5, (int)m.len);
	assert_memory_equal("fresh", buf, 5);
}

static void test_expired_lease_is_taken_over(void **state)
{
	struct fx_seg *f = *state;
	char buf[32];
	struct loader l = { .value = "late" };
	/* A live holder with the minimum lease (1 s): it runs out. */
	pid_t pid = start_stuck_loader(f, 10);
	assert_int_equal(0, tc_get_or_load(f->c, "slow", 4, buf, sizeof(buf), NULL, 0, 0, 30000,
					   load_fn, &l));
	assert_int_equal(1, l.calls);
	assert_memory_equal("late", buf, 4);
	assert_int_equal(0, waitpid(pid, NULL, WNOHANG)); /* still stuck, still alive */
	kill(pid, SIGKILL);
	assert_int_equal(pid, waitpid(pid, NULL, 0));
}

/* A loader that fails while others wait: they take over the load. */
static void test_waiters_take_over_after_a_loader_error(void **state)
{
	struct fx_seg *f = *state;
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		tc_cache *c = fx_attach(f->name);
		count_c = c;
		struct loader bad = { .value = "x", .rc = -ECONNREFUSED, .sleep_ms = 200,
				      .mark = "go" };
		char buf[32];
		FX_CHECK(tc_get_or_load(c, "flaky", 5, buf, sizeof(buf), NULL, 0, 0, 10000, load_fn,
					&bad) == -ECONNREFUSED);
		FX_CHECK(bad.calls == 1);
		tc_close(c);
		_exit(0);
	}
	while (!tc_exists(f->c, "go", 2))
		fx_sleep_ms(1);
	char buf[32];
	struct loader good = { .value = "recovered" };
	assert_int_equal(0, tc_get_or_load(f->c, "flaky", 5, buf, sizeof(buf), NULL, 0, 0, 10000,
					   load_fn, &good));
	assert_int_equal(1, good.calls);
	assert_memory_equal("recovered", buf, 9);
	fx_wait_all(&pid, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		FX_TEST_SEG(test_bad_arguments_return_einval),
		FX_TEST_SEG(test_hit_never_loads_and_miss_loads_once),
		FX_TEST_SEG(test_loader_error_is_returned_and_not_cached),
		FX_TEST_SEG(test_one_load_per_miss_across_processes),
		FX_TEST_SEG(test_waiter_times_out_then_takes_over_a_killed_loader),
		FX_TEST_SEG(test_expired_lease_is_taken_over),
		FX_TEST_SEG(test_waiters_take_over_after_a_loader_error),
	};
	return fx_run(tests);
}
