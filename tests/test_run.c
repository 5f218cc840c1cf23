/* SPDX-License-Identifier: MIT */
/*
 * test_run.c - point-in-time runs and typed DTO lists: the anchor, the
 * TC_ENORUN contract, insertion order within and across processes, type
 * checks, invisibility at run end, reclamation of ended runs with and
 * without a sweeper, appends racing run ends, and appenders killed -9.
 * (The sweep's own pass over ended runs' lists: test_sweep.c.)
 */
#include "fixture.h"

/* White-box: run.c's sweep of ended runs' lists (shm/internal.h). */
int tc__sweep_runs(tc_cache *c, uint64_t budget);

#define T_SIG 0x5161u
#define T_THREAT 0x7777u

struct collect {
	int n;
	char items[64][32];
	size_t lens[64];
	int stop_at; /* return 42 at this index, -1 never */
};

static int collect_fn(const void *dto, size_t len, void *arg)
{
	struct collect *col = arg;
	if (col->n == col->stop_at)
		return 42;
	if (col->n < 64) {
		memcpy(col->items[col->n], dto, len < 31 ? len : 31);
		col->items[col->n][len < 31 ? len : 31] = '\0';
		col->lens[col->n] = len;
	}
	col->n++;
	return 0;
}

static int never_fn(const void *dto, size_t len, void *arg)
{
	(void)dto;
	(void)len;
	(*(int *)arg)++;
	return 0;
}

static int count_keys_fn(const void *key, size_t klen, size_t count, void *arg)
{
	(void)key;
	(void)klen;
	(void)count;
	(*(int *)arg)++;
	return 0;
}

static void test_outside_run_returns_enorun(void **state)
{
	struct fx_seg *f = *state;
	tc_anchor a;
	size_t n = 99;
	int calls = 0;
	assert_int_equal(TC_ENORUN, tc_run_anchor(f->c, &a));
	assert_int_equal(TC_ENORUN, tc_run_end(f->c));
	assert_int_equal(TC_ENORUN, tc_dto_append(f->c, "signals", 7, T_SIG, "x", 1));
	assert_int_equal(TC_ENORUN, tc_dto_count(f->c, "signals", 7, &n));
	assert_int_equal(0, (int)n);
	assert_int_equal(TC_ENORUN, tc_dto_each(f->c, "signals", 7, T_SIG, never_fn, &calls));
	assert_int_equal(0, calls);
	assert_int_equal(TC_ENORUN, tc_dto_keys(f->c, count_keys_fn, &calls));
	/* And again after a run has come and gone. */
	assert_int_equal(0, tc_run_start(f->c, 1, 1));
	assert_int_equal(0, tc_dto_append(f->c, "signals", 7, T_SIG, "x", 1));
	assert_int_equal(0, tc_run_end(f->c));
	assert_int_equal(TC_ENORUN, tc_dto_count(f->c, "signals", 7, &n));
	assert_int_equal(TC_ENORUN, tc_dto_append(f->c, "signals", 7, T_SIG, "x", 1));
	assert_int_equal(TC_ENORUN, tc_run_end(f->c));
	assert_string_equal("no run is active", tc_strerror(TC_ENORUN));
}

static void test_bad_arguments_return_einval(void **state)
{
	struct fx_seg *f = *state;
	size_t n;
	char big[TC_KEY_MAX + 1];
	memset(big, 'k', sizeof(big));
	assert_int_equal(-EINVAL, tc_run_start(NULL, 0, 0));
	assert_int_equal(-EINVAL, tc_run_anchor(f->c, NULL));
	assert_int_equal(-EINVAL, tc_run_end(NULL));
	assert_int_equal(0, tc_run_start(f->c, 0, 0));
	assert_int_equal(-EINVAL, tc_dto_append(f->c, NULL, 1, 0, "x", 1));
	assert_int_equal(-EINVAL, tc_dto_append(f->c, "k", 0, 0, "x", 1));
	assert_int_equal(-EINVAL, tc_dto_append(f->c, big, sizeof(big), 0, "x", 1));
	assert_int_equal(-EINVAL, tc_dto_append(f->c, "k", 1, 0, NULL, 1));
	assert_int_equal(-EMSGSIZE, tc_dto_append(f->c, "k", 1, 0, big, TC_VALUE_MAX + 1u));
	assert_int_equal(-EINVAL, tc_dto_count(f->c, "k", 1, NULL));
	assert_int_equal(-EINVAL, tc_dto_each(f->c, "k", 1, 0, NULL, NULL));
	assert_int_equal(-EINVAL, tc_dto_keys(f->c, NULL, NULL));
	/* A zero-length DTO is a DTO. */
	assert_int_equal(0, tc_dto_append(f->c, "k", 1, 0, NULL, 0));
	assert_int_equal(0, tc_dto_count(f->c, "k", 1, &n));
	assert_int_equal(1, (int)n);
	assert_int_equal(0, tc_run_end(f->c));
}

static void test_start_anchor_end_and_generations(void **state)
{
	struct fx_seg *f = *state;
	tc_anchor a, b;
	assert_int_equal(0, tc_run_start(f->c, 1700000000123456789LL, 42));
	assert_int_equal(0, tc_run_anchor(f->c, &a));
	assert_true(a.ts_ns == 1700000000123456789LL);
	assert_int_equal(42, (int)a.run_id);
	assert_int_equal(-EBUSY, tc_run_start(f->c, 5, 43));
	assert_int_equal(0, tc_run_anchor(f->c, &b)); /* unchanged by the refused start */
	assert_true(b.ts_ns == a.ts_ns && b.run_id == 42 && b.generation == a.generation);
	assert_int_equal(0, tc_run_end(f->c));
	assert_int_equal(TC_ENORUN, tc_run_anchor(f->c, &b));
	uint64_t last = a.generation;
	for (int i = 0; i < 100; i++) {
		assert_int_equal(0, tc_run_start(f->c, -i, (uint64_t)i));
		assert_int_equal(0, tc_run_anchor(f->c, &b));
		/* One step for the end, one for this start. */
		assert_true(b.generation == last + 2);
		assert_true(b.ts_ns == -i && b.run_id == (uint64_t)i);
		last = b.generation;
		assert_int_equal(0, tc_run_end(f->c));
	}
	tc_stats st;
	assert_int_equal(0, tc_get_stats(f->c, &st));
	assert_int_equal(101, (int)st.clears);
}

/* The anchor says when and by whom the run began; tc_run_end_gen ends that
 * run only, never a newer one. */
static void test_anchor_age_and_ending_one_run_only(void **state)
{
	struct fx_seg *f = *state;
	tc_anchor a, b;
	int64_t t0 = tc_now_ms();
	assert_int_equal(0, tc_run_start(f->c, 1, 7));
	int64_t t1 = tc_now_ms();
	assert_int_equal(0, tc_run_anchor(f->c, &a));
	assert_true(a.started_ms >= t0 && a.started_ms <= t1);
	assert_int_equal(a.starter_pid, (uint32_t)getpid());
	assert_int_equal(TC_ECONFLICT, tc_run_end_gen(f->c, a.generation + 2));
	assert_int_equal(0, tc_run_anchor(f->c, &b)); /* still active */
	assert_true(b.generation == a.generation);
	assert_int_equal(0, tc_run_end_gen(f->c, a.generation));
	assert_int_equal(TC_ENORUN, tc_run_end_gen(f->c, a.generation));
	/* The stale end of an earlier run never ends the next one. */
	assert_int_equal(0, tc_run_start(f->c, 2, 8));
	assert_int_equal(TC_ECONFLICT, tc_run_end_gen(f->c, a.generation));
	assert_int_equal(0, tc_run_anchor(f->c, &b));
	assert_true(b.run_id == 8);
	assert_int_equal(-EINVAL, tc_run_end_gen(f->c, 0));
	assert_int_equal(-EINVAL, tc_run_end_gen(NULL, b.generation));
	assert_int_equal(0, tc_run_end(f->c));
}

static void test_append_keeps_insertion_order(void **state)
{
	struct fx_seg *f = *state;
	size_t n;
	assert_int_equal(0, tc_run_start(f->c, 1, 1));
	const char *words[] = { "alpha", "bravo", "charlie", "delta", "echo" };
	for (int i = 0; i < 5; i++) {
		assert_int_equal(0, tc_dto_append(f->c, "signals", 7, T_SIG, words[i],
						  strlen(words[i])));
		assert_int_equal(0, tc_dto_count(f->c, "signals", 7, &n));
		assert_int_equal(i + 1, (int)n);
	}
	assert_int_equal(0, tc_dto_append(f->c, "threat_signals", 14, T_THREAT, "z", 1));
	struct collect col = { .stop_at = -1 };
	assert_int_equal(0, tc_dto_each(f->c, "signals", 7, T_SIG, collect_fn, &col));
	assert_int_equal(5, col.n);
	for (int i = 0; i < 5; i++) {
		assert_string_equal(words[i], col.items[i]);
		assert_int_equal(strlen(words[i]), col.lens[i]);
	}
	assert_int_equal(0, tc_dto_count(f->c, "threat_signals", 14, &n));
	assert_int_equal(1, (int)n);
	assert_int_equal(0, tc_run_end(f->c));
}

static void test_each_wrong_type_fails_before_any_call(void **state)
{
	struct fx_seg *f = *state;
	int calls = 0;
	assert_int_equal(0, tc_run_start(f->c, 1, 1));
	for (int i = 0; i < 10; i++)
		assert_int_equal(0, tc_dto_append(f->c, "mixed", 5, T_SIG, "s", 1));
	/* The odd one out is the very first element: the walk must reach it. */
	assert_int_equal(0, tc_dto_append(f->c, "first", 5, T_THREAT, "t", 1));
	for (int i = 0; i < 10; i++)
		assert_int_equal(0, tc_dto_append(f->c, "first", 5, T_SIG, "s", 1));
	assert_int_equal(0, tc_dto_append(f->c, "mixed", 5, T_THREAT, "t", 1));
	assert_int_equal(TC_ETYPE, tc_dto_each(f->c, "mixed", 5, T_SIG, never_fn, &calls));
	assert_int_equal(TC_ETYPE, tc_dto_each(f->c, "first", 5, T_SIG, never_fn, &calls));
	assert_int_equal(TC_ETYPE, tc_dto_each(f->c, "first", 5, T_THREAT, never_fn, &calls));
	assert_int_equal(0, calls);
	assert_int_equal(0, tc_run_end(f->c));
}

static void test_empty_key_counts_zero_and_visits_nothing(void **state)
{
	struct fx_seg *f = *state;
	size_t n = 7;
	int calls = 0;
	assert_int_equal(0, tc_run_start(f->c, 1, 1));
	assert_int_equal(0, tc_dto_count(f->c, "nothing", 7, &n));
	assert_int_equal(0, (int)n);
	assert_int_equal(0, tc_dto_each(f->c, "nothing", 7, T_SIG, never_fn, &calls));
	assert_int_equal(0, calls);
	assert_int_equal(0, tc_run_end(f->c));
}

static void test_each_stops_on_nonzero_and_returns_it(void **state)
{
	struct fx_seg *f = *state;
	assert_int_equal(0, tc_run_start(f->c, 1, 1));
	for (int i = 0; i < 5; i++)
		assert_int_equal(0, tc_dto_append(f->c, "k", 1, T_SIG, "v", 1));
	struct collect col = { .stop_at = 2 };
	assert_int_equal(42, tc_dto_each(f->c, "k", 1, T_SIG, collect_fn, &col));
	assert_int_equal(2, col.n);
	assert_int_equal(0, tc_run_end(f->c));
}

static void test_end_makes_all_dtos_invisible(void **state)
{
	struct fx_seg *f = *state;
	size_t n;
	int calls = 0;
	assert_int_equal(0, tc_run_start(f->c, 1, 1));
	for (int k = 0; k < 20; k++) {
		char key[16];
		int kl = snprintf(key, sizeof(key), "key%d", k);
		for (int i = 0; i < 3; i++)
			assert_int_equal(0, tc_dto_append(f->c, key, (size_t)kl, T_SIG, "v", 1));
	}
	assert_int_equal(0, tc_run_end(f->c));
	assert_int_equal(0, tc_run_start(f->c, 2, 2));
	for (int k = 0; k < 20; k++) {
		char key[16];
		int kl = snprintf(key, sizeof(key), "key%d", k);
		assert_int_equal(0, tc_dto_count(f->c, key, (size_t)kl, &n));
		assert_int_equal(0, (int)n);
		assert_int_equal(0, tc_dto_each(f->c, key, (size_t)kl, T_SIG, never_fn, &calls));
	}
	assert_int_equal(0, calls);
	/* A new list under an old key starts from scratch, with the new type. */
	assert_int_equal(0, tc_dto_append(f->c, "key3", 4, T_THREAT, "new", 3));
	assert_int_equal(0, tc_dto_count(f->c, "key3", 4, &n));
	assert_int_equal(1, (int)n);
	struct collect col = { .stop_at = -1 };
	assert_int_equal(0, tc_dto_each(f->c, "key3", 4, T_THREAT, collect_fn, &col));
	assert_int_equal(1, col.n);
	assert_string_equal("new", col.items[0]);
	assert_int_equal(0, tc_run_end(f->c));
}

static void test_ordinary_keys_are_a_separate_namespace(void **state)
{
	struct fx_seg *f = *state;
	char buf[16];
	tc_meta m;
	size_t n;
	assert_int_equal(0, tc_set(f->c, "signals", 7, "plain", 5, 0, 0));
	assert_int_equal(0, tc_run_start(f->c, 1, 1));
	assert_int_equal(0, tc_dto_append(f->c, "signals", 7, T_SIG, "dto", 3));
	assert_int_equal(0, tc_get(f->c, "signals", 7, buf, sizeof(buf), &m));
	assert_int_equal(5, (int)m.len);
	assert_memory_equal("plain", buf, 5);
	assert_int_equal(0, tc_del(f->c, "signals", 7));
	assert_int_equal(0, tc_dto_count(f->c, "signals", 7, &n));
	assert_int_equal(1, (int)n);
	assert_int_equal(0, tc_set(f->c, "other", 5, "o", 1, 0, 0));
	assert_int_equal(0, tc_run_end(f->c));
	assert_int_equal(0, tc_get(f->c, "other", 5, buf, sizeof(buf), &m));
	assert_int_equal(-ENOENT, tc_get(f->c, "signals", 7, buf, sizeof(buf), &m));
}

struct keyrec {
	int n;
	size_t total;
	int seen_a, seen_b;
};

static int key_fn(const void *key, size_t klen, size_t count, void *arg)
{
	struct keyrec *r = arg;
	r->n++;
	r->total += count;
	if (klen == 1 && memcmp(key, "a", 1) == 0)
		r->seen_a = (int)count;
	if (klen == 1 && memcmp(key, "b", 1) == 0)
		r->seen_b = (int)count;
	return 0;
}

static void test_dto_keys_visits_the_active_runs_lists(void **state)
{
	struct fx_seg *f = *state;
	struct keyrec r = { 0 };
	assert_int_equal(0, tc_run_start(f->c, 1, 1));
	assert_int_equal(0, tc_dto_append(f->c, "old", 3, T_SIG, "v", 1));
	assert_int_equal(0, tc_run_end(f->c));
	assert_int_equal(0, tc_run_start(f->c, 2, 2));
	assert_int_equal(0, tc_set(f->c, "a", 1, "plain", 5, 0, 0));
	assert_int_equal(0, tc_dto_append(f->c, "a", 1, T_SIG, "v", 1));
	assert_int_equal(0, tc_dto_append(f->c, "a", 1, T_SIG, "v", 1));
	assert_int_equal(0, tc_dto_append(f->c, "b", 1, T_SIG, "v", 1));
	assert_int_equal(0, tc_dto_keys(f->c, key_fn, &r));
	assert_int_equal(2, r.n);
	assert_int_equal(3, (int)r.total);
	assert_int_equal(2, r.seen_a);
	assert_int_equal(1, r.seen_b);
	assert_int_equal(0, tc_run_end(f->c));
}

static void test_run_is_shared_by_every_process(void **state)
{
	struct fx_seg *f = *state;
	tc_anchor a;
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		tc_cache *c = fx_attach(f->name);
		FX_CHECK(tc_run_start(c, 777, 9) == 0);
		FX_CHECK(tc_dto_append(c, "from_child", 10, T_SIG, "hello", 5) == 0);
		tc_close(c);
		_exit(0);
	}
	fx_wait_all(&pid, 1);
	assert_int_equal(0, tc_run_anchor(f->c, &a));
	assert_true(a.ts_ns == 777 && a.run_id == 9);
	assert_int_equal(a.starter_pid, (uint32_t)pid); /* the child, now gone */
	assert_int_equal(-EBUSY, tc_run_start(f->c, 1, 1));
	struct collect col = { .stop_at = -1 };
	assert_int_equal(0, tc_dto_each(f->c, "from_child", 10, T_SIG, collect_fn, &col));
	assert_int_equal(1, col.n);
	assert_string_equal("hello", col.items[0]);
	assert_int_equal(0, tc_run_end(f->c));
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		tc_cache *c = fx_attach(f->name);
		tc_anchor b;
		FX_CHECK(tc_run_anchor(c, &b) == TC_ENORUN);
		tc_close(c);
		_exit(0);
	}
	fx_wait_all(&pid, 1);
}

/* Sequential appends from several processes come back in that order. */
static void test_order_across_processes(void **state)
{
	struct fx_seg *f = *state;
	assert_int_equal(0, tc_run_start(f->c, 1, 1));
	for (int i = 0; i < 6; i++) {
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			tc_cache *c = fx_attach(f->name);
			char v[24];
			snprintf(v, sizeof(v), "p%d", i);
			FX_CHECK(tc_dto_append(c, "seq", 3, T_SIG, v, strlen(v)) == 0);
			tc_close(c);
			_exit(0);
		}
		fx_wait_all(&pid, 1);
		char v[24];
		snprintf(v, sizeof(v), "me%d", i);
		assert_int_equal(0, tc_dto_append(f->c, "seq", 3, T_SIG, v, strlen(v)));
	}
	struct collect col = { .stop_at = -1 };
	assert_int_equal(0, tc_dto_each(f->c, "seq", 3, T_SIG, collect_fn, &col));
	assert_int_equal(12, col.n);
	for (int i = 0; i < 6; i++) {
		char v[24];
		snprintf(v, sizeof(v), "p%d", i);
		assert_string_equal(v, col.items[2 * i]);
		snprintf(v, sizeof(v), "me%d", i);
		assert_string_equal(v, col.items[2 * i + 1]);
	}
	assert_int_equal(0, tc_run_end(f->c));
}

/* ---- concurrent appenders --------------------------------------------------- */

#define NWRITERS 3
#define PER_WRITER 3000

struct item {
	uint32_t writer;
	uint32_t seq;
};

struct order_check {
	uint32_t next[NWRITERS]; /* next expected seq per writer, or first seen */
	int started[NWRITERS];
	int bad;
	size_t n;
};

static int order_fn(const void *dto, size_t len, void *arg)
{
	struct order_check *oc = arg;
	struct item it;
	if (len != sizeof(it)) {
		oc->bad++;
		return 0;
	}
	memcpy(&it, dto, sizeof(it));
	if (it.writer >= NWRITERS) {
		oc->bad++;
		return 0;
	}
	/* Within one run a writer's items are consecutive and increasing. */
	if (oc->started[it.writer] && it.seq != oc->next[it.writer])
		oc->bad++;
	oc->started[it.writer] = 1;
	oc->next[it.writer] = it.seq + 1;
	oc->n++;
	return 0;
}

static void append_child(const char *name, uint32_t w, bool racing_end)
{
	tc_cache *c = fx_attach(name);
	for (uint32_t i = 0; i < PER_WRITER; i++) {
		struct item it = { w, i };
		int rc = tc_dto_append(c, "shared", 6, T_SIG, &it, sizeof(it));
		FX_CHECK(rc == 0 || (racing_end && rc == TC_ENORUN));
	}
	tc_close(c);
	_exit(0);
}

static void test_concurrent_appenders_keep_each_writers_order(void **state)
{
	struct fx_seg *f = *state;
	pid_t pids[NWRITERS];
	assert_int_equal(0, tc_run_start(f->c, 1, 1));
	for (int w = 0; w < NWRITERS; w++) {
		pids[w] = fork();
		assert_true(pids[w] >= 0);
		if (pids[w] == 0)
			append_child(f->name, (uint32_t)w, false);
	}
	fx_wait_all(pids, NWRITERS);
	struct order_check oc = { 0 };
	size_t n;
	assert_int_equal(0, tc_dto_count(f->c, "shared", 6, &n));
	assert_int_equal(NWRITERS * PER_WRITER, (int)n);
	assert_int_equal(0, tc_dto_each(f->c, "shared", 6, T_SIG, order_fn, &oc));
	assert_int_equal(0, oc.bad);
	assert_int_equal(NWRITERS * PER_WRITER, (int)oc.n);
	for (int w = 0; w < NWRITERS; w++)
		assert_int_equal(PER_WRITER, (int)oc.next[w]);
	assert_int_equal(0, tc_run_end(f->c));
}

/* Appends racing run ends and starts: 0 or TC_ENORUN, lists always whole. */
static void test_appends_racing_run_ends(void **state)
{
	struct fx_seg *f = *state;
	pid_t pids[NWRITERS];
	assert_int_equal(0, tc_run_start(f->c, 0, 0));
	for (int w = 0; w < NWRITERS; w++) {
		pids[w] = fork();
		assert_true(pids[w] >= 0);
		if (pids[w] == 0)
			append_child(f->name, (uint32_t)w, true);
	}
	/* A reader process walks the list all along, across the run ends. */
	pid_t reader = fork();
	assert_true(reader >= 0);
	if (reader == 0) {
		tc_cache *c = fx_attach(f->name);
		while (!tc_exists(c, "stop", 4)) {
			struct order_check oc = { 0 };
			size_t n;
			int rc = tc_dto_each(c, "shared", 6, T_SIG, order_fn, &oc);
			FX_CHECK(rc == 0 || rc == TC_ENORUN);
			FX_CHECK(oc.bad == 0);
			rc = tc_dto_count(c, "shared", 6, &n);
			FX_CHECK(rc == 0 || rc == TC_ENORUN);
		}
		tc_close(c);
		_exit(0);
	}
	int running = NWRITERS, runs = 0;
	while (running > 0) {
		struct order_check oc = { 0 };
		size_t n;
		int rc = tc_dto_each(f->c, "shared", 6, T_SIG, order_fn, &oc);
		assert_int_equal(0, rc);
		assert_int_equal(0, oc.bad);
		assert_int_equal(0, tc_dto_count(f->c, "shared", 6, &n));
		assert_true(n >= oc.n);
		assert_int_equal(0, tc_run_end(f->c));
		runs++;
		assert_int_equal(0, tc_run_start(f->c, runs, (uint64_t)runs));
		for (int w = 0; w < NWRITERS; w++) {
			int st;
			if (pids[w] > 0 && waitpid(pids[w], &st, WNOHANG) == pids[w]) {
				assert_true(WIFEXITED(st));
				assert_int_equal(0, WEXITSTATUS(st));
				pids[w] = 0;
				running--;
			}
		}
	}
	assert_int_equal(0, tc_set(f->c, "stop", 4, "1", 1, 0, 0));
	fx_wait_all(&reader, 1);
	assert_int_equal(0, tc_run_end(f->c));
	assert_true(runs > 0);
}

/* ---- memory of ended runs ----------------------------------------------------- */

static void run_many(tc_cache *c, int runs, bool fresh_keys)
{
	char dto[100];
	memset(dto, 'd', sizeof(dto));
	for (int r = 0; r < runs; r++) {
		assert_int_equal(0, tc_run_start(c, r, (uint64_t)r));
		for (int k = 0; k < 10; k++) {
			char key[32];
			int kl = fresh_keys ? snprintf(key, sizeof(key), "r%d:k%d", r, k)
					    : snprintf(key, sizeof(key), "k%d", k);
			for (int i = 0; i < 3; i++) {
				int rc = tc_dto_append(c, key, (size_t)kl, T_SIG, dto, sizeof(dto));
				if (rc != 0)
					fail_msg("run %d key %d item %d: %s", r, k, i, tc_strerror(rc));
			}
		}
		assert_int_equal(0, tc_run_end(c));
	}
}

static void test_thousands_of_runs_never_fill_the_segment(void **state)
{
	(void)state;
	/* 1024 entries and 256 KiB: a few dozen runs would fill it. */
	struct fx_seg *f = fx_make(1024, 256u << 10, 0);
	run_many(f->c, 3000, true); /* new keys every run: ended lists pile up */
	run_many(f->c, 3000, false); /* the same keys: replaced in place */
	tc_stats st;
	assert_int_equal(0, tc_get_stats(f->c, &st));
	assert_true(st.memory_used <= st.memory_bytes);
	assert_int_equal(st.entries, st.dto_lists); /* only lists of ended runs left */
	/* A sweep takes back every one of them. */
	tc_sweep_report rep;
	assert_int_equal(0, tc_sweep(f->c, 0, &rep));
	assert_int_equal(st.dto_lists, rep.dto_lists_freed);
	assert_int_equal(0, tc_get_stats(f->c, &st));
	assert_int_equal(0, (int)st.entries);
	assert_int_equal(0, (int)st.dto_lists);
	fx_free(f);
}

/* Ordinary writers short of entries remove ended runs' lists themselves. */
static void test_plain_writers_reclaim_ended_runs(void **state)
{
	(void)state;
	struct fx_seg *f = fx_make(1024, 1u << 20, 0);
	/* 1000 lists of ended runs, just below the 1024 entries. */
	for (int r = 0; r < 100; r++) {
		assert_int_equal(0, tc_run_start(f->c, r, (uint64_t)r));
		for (int k = 0; k < 10; k++) {
			char key[32];
			int kl = snprintf(key, sizeof(key), "r%d:k%d", r, k);
			assert_int_equal(0, tc_dto_append(f->c, key, (size_t)kl, T_SIG, "12345678", 8));
		}
		assert_int_equal(0, tc_run_end(f->c));
	}
	tc_stats st;
	assert_int_equal(0, tc_get_stats(f->c, &st));
	assert_int_equal(1000, (int)st.entries);
	for (int i = 0; i < 1000; i++) {
		char key[32];
		int kl = snprintf(key, sizeof(key), "plain%d", i);
		int rc = tc_set(f->c, key, (size_t)kl, "v", 1, 0, 0);
		if (rc != 0)
			fail_msg("set %d: %s", i, tc_strerror(rc));
	}
	assert_int_equal(0, tc_get_stats(f->c, &st));
	assert_int_equal(1000, (int)st.entries);
	fx_free(f);
}

/* Appenders killed -9 at arbitrary points: lists stay whole, little leaks. */
static void test_killed_appenders_leave_whole_lists(void **state)
{
	struct fx_seg *f = *state;
	tc_stats before, after;
	uint64_t freed;
	const int kills = 5;
	assert_int_equal(0, tc_reclaim(f->c, &freed));
	assert_int_equal(0, tc_get_stats(f->c, &before));
	assert_int_equal(0, tc_run_start(f->c, 1, 1));
	for (int k = 0; k < kills; k++) {
		size_t n0;
		assert_int_equal(0, tc_dto_count(f->c, "shared", 6, &n0));
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			tc_cache *c = fx_attach(f->name);
			/* Bounded, so that a parent kept off the CPU cannot let
			 * it fill the segment; a kill after the last append
			 * lands outside any call, which is fine too. */
			for (uint32_t i = 0; i < 3000; i++) {
				struct item it = { 0, (uint32_t)n0 + i };
				FX_CHECK(tc_dto_append(c, "shared", 6, T_SIG, &it, sizeof(it)) == 0);
			}
			for (;;)
				pause();
		}
		/* Let it get going, then kill it wherever it is. */
		size_t n = n0;
		while (n < n0 + 200u + (size_t)k * 37u) {
			assert_int_equal(0, tc_dto_count(f->c, "shared", 6, &n));
			assert_int_equal(0, waitpid(pid, NULL, WNOHANG));
		}
		kill(pid, SIGKILL);
		int st;
		assert_int_equal(pid, waitpid(pid, &st, 0));
		assert_true(WIFSIGNALED(st));
		uint32_t cleared = 0;
		assert_int_equal(0, tc_readers_clean(f->c, &cleared));
		assert_true(cleared >= 1);
		struct order_check oc = { 0 };
		assert_int_equal(0, tc_dto_each(f->c, "shared", 6, T_SIG, order_fn, &oc));
		assert_int_equal(0, oc.bad);
		assert_int_equal(0, tc_dto_count(f->c, "shared", 6, &n));
		assert_int_equal(n, oc.n);
		assert_int_equal(n, oc.next[0]);
	}
	assert_int_equal(0, tc_run_end(f->c));
	assert_int_equal(1, tc__sweep_runs(f->c, 0));
	assert_int_equal(0, tc_reclaim(f->c, &freed));
	assert_int_equal(0, tc_get_stats(f->c, &after));
	assert_int_equal(before.entries, after.entries);
	/* A kill between clearing the in-flight record and the publishing CAS
	 * leaks that one block: at most one per kill. */
	assert_true(after.memory_used <= before.memory_used + (uint64_t)kills * 128u);
}

/* Processes killed -9 while starting and ending runs: the run word is always
 * whole (a readable anchor or no run), and at most an anchor per kill leaks. */
static void test_killed_run_cyclers_leave_a_whole_run(void **state)
{
	struct fx_seg *f = *state;
	tc_stats before, after;
	uint64_t freed;
	const int kills = 5;
	assert_int_equal(0, tc_reclaim(f->c, &freed));
	assert_int_equal(0, tc_get_stats(f->c, &before));
	for (int k = 0; k < kills; k++) {
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			tc_cache *c = fx_attach(f->name);
			for (int64_t i = 1;; i++) {
				int rc = tc_run_start(c, i, (uint64_t)i * 3);
				FX_CHECK(rc == 0 || rc == -EBUSY);
				FX_CHECK(tc_dto_append(c, "x", 1, 1, &i, sizeof(i)) == 0);
				FX_CHECK(tc_run_end(c) == 0);
				if (i % 64 == 0)
					FX_CHECK(tc_reclaim(c, NULL) == 0);
			}
		}
		tc_stats st;
		do
			assert_int_equal(0, tc_get_stats(f->c, &st));
		while (st.run_generation < before.run_generation + 200u * (unsigned)(k + 1));
		kill(pid, SIGKILL);
		assert_int_equal(pid, waitpid(pid, NULL, 0));
		assert_int_equal(0, tc_readers_clean(f->c, NULL));
		tc_anchor a;
		int rc = tc_run_anchor(f->c, &a);
		if (rc == 0) {
			assert_true(a.run_id == (uint64_t)a.ts_ns * 3);
			assert_int_equal(1, (int)(a.generation & 1));
			assert_int_equal(0, tc_run_end(f->c));
		} else {
			assert_int_equal(TC_ENORUN, rc);
		}
		assert_int_equal(0, tc_run_start(f->c, 5, 15));
		assert_int_equal(0, tc_run_anchor(f->c, &a));
		assert_true(a.ts_ns == 5 && a.run_id == 15);
		assert_int_equal(0, tc_run_end(f->c));
	}
	tc__sweep_runs(f->c, 0);
	assert_int_equal(0, tc_reclaim(f->c, &freed));
	assert_int_equal(0, tc_get_stats(f->c, &after));
	assert_int_equal(before.entries, after.entries);
	/* An anchor (96 B) or a DTO element (96 B) per kill at most. */
	assert_true(after.memory_used <= before.memory_used + (uint64_t)kills * 96u);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		FX_TEST_SEG(test_outside_run_returns_enorun),
		FX_TEST_SEG(test_bad_arguments_return_einval),
		FX_TEST_SEG(test_start_anchor_end_and_generations),
		FX_TEST_SEG(test_anchor_age_and_ending_one_run_only),
		FX_TEST_SEG(test_append_keeps_insertion_order),
		FX_TEST_SEG(test_each_wrong_type_fails_before_any_call),
		FX_TEST_SEG(test_empty_key_counts_zero_and_visits_nothing),
		FX_TEST_SEG(test_each_stops_on_nonzero_and_returns_it),
		FX_TEST_SEG(test_end_makes_all_dtos_invisible),
		FX_TEST_SEG(test_ordinary_keys_are_a_separate_namespace),
		FX_TEST_SEG(test_dto_keys_visits_the_active_runs_lists),
		FX_TEST_SEG(test_run_is_shared_by_every_process),
		FX_TEST_SEG(test_order_across_processes),
		FX_TEST_SEG(test_concurrent_appenders_keep_each_writers_order),
		FX_TEST_SEG(test_appends_racing_run_ends),
		FX_TEST(test_thousands_of_runs_never_fill_the_segment),
		FX_TEST(test_plain_writers_reclaim_ended_runs),
		FX_TEST_SEG(test_killed_appenders_leave_whole_lists),
		FX_TEST_SEG(test_killed_run_cyclers_leave_a_whole_run),
	};
	return fx_run(tests);
}
