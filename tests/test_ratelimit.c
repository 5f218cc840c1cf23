/* SPDX-License-Identifier: MIT */
/*
 * test_ratelimit.c - tc_rate_limit: argument checks, the count sequence of
 * one window, a fresh count in the next window, independence from ordinary
 * keys, and exactness across processes: never more than LIMIT allowed in
 * one window.
 */
#include "fixture.h"

/* A window so long that no test ever crosses its boundary (~31 years). */
#define HUGE_WINDOW 1000000000000ull

static void test_bad_arguments_return_einval(void **state)
{
	struct fx_seg *f = *state;
	bool ok;
	uint64_t n;
	assert_int_equal(-EINVAL, tc_rate_limit(NULL, "k", 1, 1, 1000, &ok, &n));
	assert_int_equal(-EINVAL, tc_rate_limit(f->c, NULL, 1, 1, 1000, &ok, &n));
	assert_int_equal(-EINVAL, tc_rate_limit(f->c, "k", 0, 1, 1000, &ok, &n));
	assert_int_equal(-EINVAL, tc_rate_limit(f->c, "k", 1, 0, 1000, &ok, &n));
	assert_int_equal(-EINVAL, tc_rate_limit(f->c, "k", 1, 1, 0, &ok, &n));
	assert_int_equal(-EINVAL, tc_rate_limit(f->c, "k", 1, 1, 1000, NULL, &n));
	/* count may be NULL */
	assert_int_equal(0, tc_rate_limit(f->c, "k", 1, 1, HUGE_WINDOW, &ok, NULL));
	assert_true(ok);
}

static void test_one_window_counts_one_to_limit_then_denies(void **state)
{
	struct fx_seg *f = *state;
	bool ok;
	uint64_t n;
	for (uint64_t i = 1; i <= 10; i++) {
		assert_int_equal(0, tc_rate_limit(f->c, "api:user1", 9, 10, HUGE_WINDOW, &ok, &n));
		assert_true(ok);
		assert_int_equal(i, n);
	}
	for (uint64_t i = 11; i <= 15; i++) {
		assert_int_equal(0, tc_rate_limit(f->c, "api:user1", 9, 10, HUGE_WINDOW, &ok, &n));
		assert_false(ok);
		assert_int_equal(i, n);
	}
	/* Another key has a limiter of its own, and ordinary keys are apart. */
	assert_int_equal(0, tc_rate_limit(f->c, "api:user2", 9, 10, HUGE_WINDOW, &ok, &n));
	assert_true(ok);
	assert_int_equal(1, n);
	assert_false(tc_exists(f->c, "api:user1", 9));
	assert_int_equal(0, tc_set(f->c, "api:user1", 9, "x", 1, 0, 0));
	assert_int_equal(0, tc_rate_limit(f->c, "api:user1", 9, 10, HUGE_WINDOW, &ok, &n));
	assert_int_equal(16, n);
	uint64_t deleted;
	assert_int_equal(0, tc_purge(f->c, "api:*", &deleted));
	assert_int_equal(1, (int)deleted); /* the ordinary key only */
}

static void test_next_window_starts_from_one(void **state)
{
	struct fx_seg *f = *state;
	bool ok;
	uint64_t n;
	const uint64_t w = 50;
	assert_int_equal(0, tc_rate_limit(f->c, "w", 1, 2, w, &ok, &n));
	assert_int_equal(0, tc_rate_limit(f->c, "w", 1, 2, w, &ok, &n));
	int64_t last = tc_now_ms();
	assert_int_equal(0, tc_rate_limit(f->c, "w", 1, 2, w, &ok, &n));
	/* Either the window turned between the calls or this is the third. */
	assert_true((n == 3 && !ok) || (n <= 2 && ok));
	/* Windows are aligned to multiples of w: wait for the next one. */
	int64_t next = last - last % (int64_t)w + (int64_t)w;
	while (tc_now_ms() < next)
		fx_sleep_ms(5);
	assert_int_equal(0, tc_rate_limit(f->c, "w", 1, 2, w, &ok, &n));
	assert_true(ok);
	assert_int_equal(1, n);
}

#define NPROC 4
#define CALLS 1500
#define LIMIT 1000

static void test_processes_never_exceed_the_limit(void **state)
{
	struct fx_seg *f = *state;
	pid_t pids[NPROC];
	for (int i = 0; i < NPROC; i++) {
		pids[i] = fork();
		assert_true(pids[i] >= 0);
		if (pids[i] == 0) {
			tc_cache *c = fx_attach(f->name);
			int64_t allowed = 0;
			uint64_t last = 0;
			for (int k = 0; k < CALLS; k++) {
				bool ok;
				uint64_t n;
				FX_CHECK(tc_rate_limit(c, "orders:acct7", 12, LIMIT, HUGE_WINDOW,
						       &ok, &n) == 0);
				FX_CHECK(ok == (n <= LIMIT));
				FX_CHECK(n > last); /* one process sees its counts grow */
				last = n;
				if (ok)
					allowed++;
			}
			FX_CHECK(tc_incr(c, "allowed", 7, allowed, 0, NULL) == 0);
			tc_close(c);
			_exit(0);
		}
	}
	fx_wait_all(pids, NPROC);
	int64_t allowed;
	assert_int_equal(0, tc_incr(f->c, "allowed", 7, 0, 0, &allowed));
	assert_int_equal(LIMIT, (int)allowed);
	bool ok;
	uint64_t n;
	assert_int_equal(0, tc_rate_limit(f->c, "orders:acct7", 12, LIMIT, HUGE_WINDOW, &ok, &n));
	assert_false(ok);
	assert_int_equal(NPROC * CALLS + 1, (int)n); /* every call counted once */
}

/*
 * Short windows under contention: every window allows at most LIMIT, so all
 * the allowed calls fit in LIMIT times the windows the test spanned.
 */
static void test_short_windows_stay_exact(void **state)
{
	struct fx_seg *f = *state;
	pid_t pids[NPROC];
	const int64_t w = 20;
	const uint64_t limit = 5;
	int64_t t0 = tc_now_ms();
	for (int i = 0; i < NPROC; i++) {
		pids[i] = fork();
		assert_true(pids[i] >= 0);
		if (pids[i] == 0) {
			tc_cache *c = fx_attach(f->name);
			int64_t allowed = 0;
			for (int k = 0; k < 3000; k++) {
				bool ok;
				uint64_t n;
				FX_CHECK(tc_rate_limit(c, "short", 5, limit, (uint64_t)w, &ok, &n) == 0);
				FX_CHECK(n >= 1 && ok == (n <= limit));
				allowed += ok;
			}
			FX_CHECK(tc_incr(c, "allowed", 7, allowed, 0, NULL) == 0);
			tc_close(c);
			_exit(0);
		}
	}
	fx_wait_all(pids, NPROC);
	int64_t t1 = tc_now_ms(), allowed;
	int64_t windows = (t1 - t1 % w - (t0 - t0 % w)) / w + 1;
	assert_int_equal(0, tc_incr(f->c, "allowed", 7, 0, 0, &allowed));
	assert_true(allowed >= 1);
	assert_true(allowed <= windows * (int64_t)limit);
}

/*
 * Under TC_EVICT_LRU the clock makes room by dropping cold keys.  A rate
 * window is not a key the application wrote: dropped, its count starts
 * from 1 again and the limiter lets LIMIT more calls through in the same
 * window.  A load claim (single flight) dropped while its loader runs lets
 * a second process load the same key.  A limiter used once, then left
 * while a full segment churns, keeps its count, and a claim its loader's
 * lease; only the window's end or the lease's removes them.
 */
#define LRU_CHURN 2000

static void lru_churn(tc_cache *c)
{
	char key[32], val[64];
	memset(val, 'v', sizeof(val));
	for (int i = 0; i < LRU_CHURN; i++) {
		int kl = snprintf(key, sizeof(key), "tick:%d", i);
		FX_CHECK(tc_set(c, key, (size_t)kl, val, sizeof(val), 0, 0) == 0);
	}
}

static int child_loader(const void *key, size_t klen, void *buf, size_t cap, size_t *len,
			void *arg)
{
	(void)key, (void)klen, (void)cap, (void)arg;
	memcpy(buf, "child", 5);
	*len = 5;
	_exit(2); /* a second loader ran: the claim was gone */
}

/* The loader of the claim holder: churn, then let another process try to
 * load the same key (it must wait for the claim, and time out). */
static int churn_then_race(const void *key, size_t klen, void *buf, size_t cap, size_t *len,
			   void *arg)
{
	(void)cap;
	tc_cache *c = arg;
	lru_churn(c);
	pid_t pid = fork();
	if (pid == 0) {
		char got[16];
		tc_meta m;
		int rc = tc_get_or_load(c, key, klen, got, sizeof(got), &m, 0, 0, 300,
					child_loader, NULL);
		_exit(rc == -ETIMEDOUT ? 0 : 3);
	}
	int st = -1;
	FX_CHECK(pid > 0 && waitpid(pid, &st, 0) == pid);
	memcpy(buf, "parent", 6);
	*len = 6;
	return WIFEXITED(st) ? -WEXITSTATUS(st) : -100;
}

static void test_lru_never_evicts_rate_windows_or_load_claims(void **state)
{
	(void)state;
	char name[TC_NAME_MAX + 1];
	tc_opts o = fx_opts(64, 256 * 1024, 4);
	o.eviction = TC_EVICT_LRU;
	tc_cache *c = NULL;
	fx_name_at(name, sizeof(name), __func__);
	ASSERT_RC(0, tc_open(&c, name, &o));
	bool ok;
	uint64_t n;
	assert_int_equal(0, tc_rate_limit(c, "orders:XNAS", 11, 3, HUGE_WINDOW, &ok, &n));
	assert_int_equal(1, n);
	lru_churn(c); /* many times the index's capacity */
	tc_stats st;
	assert_int_equal(0, tc_get_stats(c, &st));
	assert_true(st.evictions >= LRU_CHURN - 64);
	assert_int_equal(0, tc_rate_limit(c, "orders:XNAS", 11, 3, HUGE_WINDOW, &ok, &n));
	assert_int_equal(2, n);
	assert_true(ok);
	/* The child's exit status comes back as the loader's error: 0 when
	 * it timed out waiting for our claim, -2 when it loaded itself. */
	char got[16];
	tc_meta m;
	assert_int_equal(0, tc_get_or_load(c, "load:k", 6, got, sizeof(got), &m, 0, 0, 10000,
					   churn_then_race, c));
	assert_memory_equal(got, "parent", 6);
	tc_close(c);
	assert_int_equal(0, tc_unlink(name));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		FX_TEST_SEG(test_bad_arguments_return_einval),
		FX_TEST_SEG(test_one_window_counts_one_to_limit_then_denies),
		FX_TEST_SEG(test_next_window_starts_from_one),
		FX_TEST_SEG(test_processes_never_exceed_the_limit),
		FX_TEST_SEG(test_short_windows_stay_exact),
		FX_TEST(test_lru_never_evicts_rate_windows_or_load_claims),
	};
	return fx_run(tests);
}
