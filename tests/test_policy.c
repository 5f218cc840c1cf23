/* SPDX-License-Identifier: MIT */
/*
 * test_policy.c - TTL policies by key prefix: TC_TTL_DEFAULT resolves by the
 * longest matching prefix, else the segment default; set replaces, del
 * removes; limits; policy files (comments, a bad line names its number and
 * applies nothing); a change made in one process is seen by another.
 */
#include "fixture.h"

static void assert_ttl(tc_cache *c, const char *key, int64_t ttl)
{
	tc_meta m;
	char v[4];
	int64_t before = tc_now_ms();
	assert_int_equal(0, tc_set(c, key, strlen(key), "v", 1, 0, TC_TTL_DEFAULT));
	int64_t after = tc_now_ms();
	assert_int_equal(0, tc_get(c, key, strlen(key), v, sizeof(v), &m));
	if (ttl < 0) {
		assert_int_equal(0, m.expires_ms);
		return;
	}
	if (m.expires_ms < before + ttl || m.expires_ms > after + ttl)
		fail_msg("%s: expires %lld, want %lld + [%lld, %lld]", key,
			 (long long)m.expires_ms, (long long)ttl, (long long)before,
			 (long long)after);
}

struct listed {
	int n;
	char prefix[40][TC_POLICY_PREFIX_MAX + 1];
	uint64_t ttl[40];
};

static int list_fn(const char *prefix, uint64_t ttl_ms, void *arg)
{
	struct listed *l = arg;
	if (l->n < 40) {
		snprintf(l->prefix[l->n], sizeof(l->prefix[0]), "%s", prefix);
		l->ttl[l->n] = ttl_ms;
	}
	l->n++;
	return 0;
}

static uint64_t listed_ttl(const struct listed *l, const char *prefix)
{
	for (int i = 0; i < l->n && i < 40; i++)
		if (strcmp(l->prefix[i], prefix) == 0)
			return l->ttl[i];
	return UINT64_MAX;
}

static void test_no_policy_uses_segment_default(void **state)
{
	(void)state;
	struct fx_seg *f = fx_make(1024, 1u << 20, 0);
	struct fx_seg *g = fx_make(1024, 1u << 20, 7000);
	assert_ttl(f->c, "market:quote:AAPL", -1);
	assert_ttl(g->c, "market:quote:AAPL", 7000);
	struct listed l = { 0 };
	assert_int_equal(0, tc_ttl_policy_list(f->c, list_fn, &l));
	assert_int_equal(0, l.n);
	fx_free(f);
	fx_free(g);
}

static void test_longest_prefix_wins(void **state)
{
	(void)state;
	struct fx_seg *f = fx_make(1024, 1u << 20, 900000);
	assert_int_equal(0, tc_ttl_policy_set(f->c, "market:", 60000));
	assert_int_equal(0, tc_ttl_policy_set(f->c, "market:quote:", 5000));
	assert_int_equal(0, tc_ttl_policy_set(f->c, "order:status:", 300000));
	assert_int_equal(0, tc_ttl_policy_set(f->c, "session:", 0)); /* never expires */
	assert_ttl(f->c, "market:quote:AAPL", 5000);
	assert_ttl(f->c, "market:bar:AAPL", 60000);
	assert_ttl(f->c, "market:", 60000);       /* a key equal to the prefix */
	assert_ttl(f->c, "market", 900000);       /* shorter than any prefix */
	assert_ttl(f->c, "order:status:17", 300000);
	assert_ttl(f->c, "session:abc", -1);
	assert_ttl(f->c, "other", 900000);
	/* Explicit TTLs are not touched by policies. */
	tc_meta m;
	char v[4];
	assert_int_equal(0, tc_set(f->c, "market:quote:X", 14, "v", 1, 0, 0));
	assert_int_equal(0, tc_get(f->c, "market:quote:X", 14, v, sizeof(v), &m));
	assert_int_equal(0, m.expires_ms);
	/* Replace, then delete: the shorter prefix takes over again. */
	assert_int_equal(0, tc_ttl_policy_set(f->c, "market:quote:", 2000));
	assert_ttl(f->c, "market:quote:AAPL", 2000);
	struct listed l = { 0 };
	assert_int_equal(0, tc_ttl_policy_list(f->c, list_fn, &l));
	assert_int_equal(4, l.n);
	assert_int_equal(2000, listed_ttl(&l, "market:quote:"));
	assert_int_equal(0, listed_ttl(&l, "session:"));
	assert_int_equal(0, tc_ttl_policy_del(f->c, "market:quote:"));
	assert_int_equal(-ENOENT, tc_ttl_policy_del(f->c, "market:quote:"));
	assert_ttl(f->c, "market:quote:AAPL", 60000);
	/* tc_incr and tc_add resolve TC_TTL_DEFAULT the same way. */
	int64_t before = tc_now_ms();
	assert_int_equal(0, tc_add(f->c, "order:status:9", 14, "v", 1, 0, TC_TTL_DEFAULT));
	assert_int_equal(0, tc_get(f->c, "order:status:9", 14, v, sizeof(v), &m));
	assert_true(m.expires_ms >= before + 300000 && m.expires_ms <= tc_now_ms() + 300000);
	/* Deleting every policy restores the default. */
	assert_int_equal(0, tc_ttl_policy_del(f->c, "market:"));
	assert_int_equal(0, tc_ttl_policy_del(f->c, "order:status:"));
	assert_int_equal(0, tc_ttl_policy_del(f->c, "session:"));
	assert_ttl(f->c, "market:bar:AAPL", 900000);
	fx_free(f);
}

static void test_limits_and_bad_arguments(void **state)
{
	struct fx_seg *f = *state;
	char p[TC_POLICY_PREFIX_MAX + 2];
	memset(p, 'p', sizeof(p));
	p[TC_POLICY_PREFIX_MAX + 1] = '\0';
	assert_int_equal(-EINVAL, tc_ttl_policy_set(f->c, p, 1));     /* 112 bytes */
	p[TC_POLICY_PREFIX_MAX] = '\0';
	assert_int_equal(0, tc_ttl_policy_set(f->c, p, 1));           /* 111 bytes */
	assert_int_equal(-EINVAL, tc_ttl_policy_set(f->c, "", 1));
	assert_int_equal(-EINVAL, tc_ttl_policy_set(f->c, NULL, 1));
	assert_int_equal(-EINVAL, tc_ttl_policy_set(NULL, "a", 1));
	assert_int_equal(-EINVAL, tc_ttl_policy_set(f->c, "a", TC_TTL_DEFAULT));
	assert_int_equal(-EINVAL, tc_ttl_policy_del(f->c, ""));
	assert_int_equal(-EINVAL, tc_ttl_policy_list(f->c, NULL, NULL));
	assert_int_equal(-EINVAL, tc_ttl_policy_load(f->c, NULL));
	for (int i = 1; i < TC_POLICY_MAX_ENTRIES; i++) {
		char q[32];
		snprintf(q, sizeof(q), "p%d:", i);
		assert_int_equal(0, tc_ttl_policy_set(f->c, q, (uint64_t)i));
	}
	assert_int_equal(-ENOSPC, tc_ttl_policy_set(f->c, "one:too:many", 1));
	assert_int_equal(0, tc_ttl_policy_set(f->c, "p7:", 77)); /* replacing still works */
	struct listed l = { 0 };
	assert_int_equal(0, tc_ttl_policy_list(f->c, list_fn, &l));
	assert_int_equal(TC_POLICY_MAX_ENTRIES, l.n);
	assert_int_equal(77, listed_ttl(&l, "p7:"));
	tc_stats st;
	assert_int_equal(0, tc_get_stats(f->c, &st));
	assert_int_equal(TC_POLICY_MAX_ENTRIES, (int)st.ttl_policies);
	assert_ttl(f->c, "p7:x", 77);
}

static char *write_file(const char *text)
{
	static char path[64];
	snprintf(path, sizeof(path), "/tmp/tc_policy_%d.conf", (int)getpid());
	FILE *fp = fopen(path, "w");
	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
	return path;
}

static void test_policy_file_loads_whole_or_not_at_all(void **state)
{
	struct fx_seg *f = *state;
	unsigned bad = 99;
	const char *good =
		"# TTL policies\n"
		"\n"
		"market:quote: = 5000\n"
		"   market:bar:=60000   # one minute\n"
		"order:status: = 300000\r\n"
		"session = 0\n"
		"market:quote: = 4000\n"; /* a later line replaces an earlier one */
	char *path = write_file(good);
	assert_int_equal(0, tc_ttl_policy_load_ex(f->c, path, &bad));
	assert_int_equal(0, bad);
	struct listed l = { 0 };
	assert_int_equal(0, tc_ttl_policy_list(f->c, list_fn, &l));
	assert_int_equal(4, l.n);
	assert_int_equal(4000, listed_ttl(&l, "market:quote:"));
	assert_int_equal(60000, listed_ttl(&l, "market:bar:"));
	assert_int_equal(300000, listed_ttl(&l, "order:status:"));
	assert_int_equal(0, listed_ttl(&l, "session"));
	assert_ttl(f->c, "market:quote:EURUSD", 4000);

	const char *bad_files[] = {
		"a = 1\nb = 2\nc = 3\nno equals sign\n",
		"a = 1\nb = 2\nc = 3\n = 5\n",
		"a = 1\nb = 2\nc = 3\nd = -5\n",
		"a = 1\nb = 2\nc = 3\nd = 5s\n",
		"a = 1\nb = 2\nc = 3\nd = 99999999999999999999\n",
		"a = 1\nb = 2\nc = 3\nd =\n",
	};
	for (size_t i = 0; i < sizeof(bad_files) / sizeof(bad_files[0]); i++) {
		path = write_file(bad_files[i]);
		bad = 0;
		assert_int_equal(-EINVAL, tc_ttl_policy_load_ex(f->c, path, &bad));
		assert_int_equal(4, bad);
		assert_int_equal(-EINVAL, tc_ttl_policy_load(f->c, path));
	}
	/* An over-long prefix is a bad line too. */
	char longline[300];
	memset(longline, 'x', 112);
	snprintf(longline + 112, sizeof(longline) - 112, " = 5\n");
	path = write_file(longline);
	assert_int_equal(-EINVAL, tc_ttl_policy_load_ex(f->c, path, &bad));
	assert_int_equal(1, bad);
	/* More policies than the table holds: -ENOSPC, nothing applied. */
	char many[4096] = "";
	for (int i = 0; i < 40; i++) {
		char line[32];
		snprintf(line, sizeof(line), "many%d: = %d\n", i, i + 1);
		strcat(many, line);
	}
	path = write_file(many);
	assert_int_equal(-ENOSPC, tc_ttl_policy_load_ex(f->c, path, &bad));
	assert_int_equal(0, bad);
	struct listed after = { 0 };
	assert_int_equal(0, tc_ttl_policy_list(f->c, list_fn, &after));
	assert_int_equal(4, after.n);
	assert_int_equal(4000, listed_ttl(&after, "market:quote:"));
	unlink(path);
	assert_int_equal(-ENOENT, tc_ttl_policy_load_ex(f->c, path, &bad));
	assert_int_equal(0, bad);
}

static void test_change_is_seen_by_other_processes_at_once(void **state)
{
	(void)state;
	struct fx_seg *f = fx_make(1024, 1u << 20, 0);
	assert_ttl(f->c, "market:quote:A", -1);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		tc_cache *c = fx_attach(f->name);
		FX_CHECK(tc_ttl_policy_set(c, "market:quote:", 5000) == 0);
		tc_close(c);
		_exit(0);
	}
	fx_wait_all(&pid, 1);
	assert_ttl(f->c, "market:quote:A", 5000);
	fx_free(f);
}

/* Two processes editing the table at once lose nothing. */
static void test_concurrent_editors_lose_nothing(void **state)
{
	struct fx_seg *f = *state;
	pid_t pids[2];
	for (int i = 0; i < 2; i++) {
		pids[i] = fork();
		assert_true(pids[i] >= 0);
		if (pids[i] == 0) {
			tc_cache *c = fx_attach(f->name);
			for (int round = 0; round < 200; round++) {
				for (int k = 0; k < 8; k++) {
					char q[32];
					snprintf(q, sizeof(q), "w%d:%d:", i, k);
					FX_CHECK(tc_ttl_policy_set(c, q, (uint64_t)(round + 1)) == 0);
				}
				for (int k = 0; k < 8; k += 2) {
					char q[32];
					snprintf(q, sizeof(q), "w%d:%d:", i, k);
					FX_CHECK(tc_ttl_policy_del(c, q) == 0);
				}
			}
			tc_close(c);
			_exit(0);
		}
	}
	fx_wait_all(pids, 2);
	struct listed l = { 0 };
	assert_int_equal(0, tc_ttl_policy_list(f->c, list_fn, &l));
	assert_int_equal(8, l.n);
	for (int i = 0; i < 2; i++)
		for (int k = 1; k < 8; k += 2) {
			char q[32];
			snprintf(q, sizeof(q), "w%d:%d:", i, k);
			assert_int_equal(200, listed_ttl(&l, q));
		}
}

/* Editors killed -9 mid-change: the table is the old one or the new one. */
static void test_killed_editors_leave_a_whole_table(void **state)
{
	struct fx_seg *f = *state;
	assert_int_equal(0, tc_ttl_policy_set(f->c, "keep:", 1234));
	for (int k = 0; k < 5; k++) {
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			tc_cache *c = fx_attach(f->name);
			for (uint64_t i = 1;; i++) {
				FX_CHECK(tc_ttl_policy_set(c, "churn:", i) == 0);
				FX_CHECK(tc_ttl_policy_set(c, "churn:b:", i) == 0);
				FX_CHECK(tc_ttl_policy_del(c, "churn:") == 0);
				FX_CHECK(tc_ttl_policy_del(c, "churn:b:") == 0);
			}
		}
		tc_stats st;
		do {
			assert_int_equal(0, tc_get_stats(f->c, &st));
			assert_int_equal(0, waitpid(pid, NULL, WNOHANG));
		} while (st.sets < 200u * (unsigned)(k + 1));
		fx_sleep_ms(k);
		kill(pid, SIGKILL);
		assert_int_equal(pid, waitpid(pid, NULL, 0));
		assert_int_equal(0, tc_readers_clean(f->c, NULL));
		struct listed l = { 0 };
		assert_int_equal(0, tc_ttl_policy_list(f->c, list_fn, &l));
		assert_true(l.n >= 1 && l.n <= 3);
		assert_int_equal(1234, listed_ttl(&l, "keep:"));
		assert_ttl(f->c, "keep:x", 1234);
		assert_int_equal(0, tc_ttl_policy_set(f->c, "after:", 77));
		assert_ttl(f->c, "after:x", 77);
		assert_int_equal(0, tc_ttl_policy_del(f->c, "after:"));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		FX_TEST(test_no_policy_uses_segment_default),
		FX_TEST(test_longest_prefix_wins),
		FX_TEST_SEG(test_limits_and_bad_arguments),
		FX_TEST_SEG(test_policy_file_loads_whole_or_not_at_all),
		FX_TEST(test_change_is_seen_by_other_processes_at_once),
		FX_TEST_SEG(test_concurrent_editors_lose_nothing),
		FX_TEST_SEG(test_killed_editors_leave_a_whole_table),
	};
	return fx_run(tests);
}
