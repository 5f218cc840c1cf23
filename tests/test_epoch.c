/* SPDX-License-Identifier: MIT */
/*
 * test_epoch.c - white-box tests of the cross-process RCU (shm/epoch.c).
 *
 * - A reader inside a read section (thread or process) holds back the
 *   blocks retired after it entered, and only those; its tc_peek pointer
 *   stays intact while writers reuse freed memory; after it leaves they
 *   are freed.  Nesting: only the outermost unlock ends the section.
 * - Reader slots are given back when threads exit and on tc_close.
 * - TICKCACHE_NO_MEMBARRIER=1 (full-fence readers) behaves the same: the
 *   program re-executes itself with the variable set before any tc_open.
 * - Dead processes: a reader killed in its section holds reclamation until
 *   its slot is cleared; a slot left "being cleaned" by a killed cleaner is
 *   cleared again; a writer killed at each point of a write leaves neither
 *   a leaked block nor a wrong live count once its slot is cleared.
 * - A free slot whose epoch was scribbled (it pins every grace period) is
 *   cleared by a writer short of memory; a block name scribbled into a free
 *   slot is dropped, never retired (nor by the successor of a killed
 *   cleaner); a live reader whose owner word was scribbled to 0 keeps its
 *   epoch and what it holds.
 * - A dead slot that names the published run anchor (inflight, ret_ref)
 *   leaves it: run_word names it; one that names a list element that is no
 *   longer its list's head leaves it: the head reaches it.  tc_run_end
 *   under a run_word scribbled to name a block of another generation
 *   retires nothing.  A ret record of a TTL policy table never
 *   matches its block reused as a run anchor of the same generation.
 * - A writer short of memory whose own thread holds a section (through
 *   another handle) fails at once; another thread's section is waited for.
 * - The global epoch scribbled to 0 or to UINT64_MAX frees nothing a reader
 *   holds, and what is retired there is freed again.
 * - Known, skipped unless TC_RUN_KNOWN_STALLS=1: an idle live slot's
 *   scribbled epoch pins every grace period.
 */
#include "whitebox.h"

#include <pthread.h>
#include <signal.h>

#ifdef TC_TSAN
#define TC_TSAN_BUILD 1 /* the plain path fences itself (epoch.h) */
#else
#define TC_TSAN_BUILD 0
#endif

static const char *self_exe;

static uint64_t retired(tc_cache *c)
{
	return (uint64_t)tc__retired_sum(c, TC_C_RETIRED_BLOCKS);
}

static uint64_t reclaim(tc_cache *c)
{
	uint64_t n = UINT64_MAX;
	ASSERT_RC(0, tc_reclaim(c, &n));
	return n;
}

/* Rewrite other keys of the same size class many times, so that any block
 * freed too early would be reused and overwritten. */
static void churn(tc_cache *c)
{
	for (int i = 0; i < 64; i++) {
		char k[4] = { 'q', (char)('a' + i % 26), 0, 0 };
		ASSERT_RC(0, tc_set(c, k, 2, "zz", 2, 0, 0));
		(void)tc_reclaim(c, NULL);
	}
	for (int i = 0; i < 26; i++) {
		char k[4] = { 'q', (char)('a' + i), 0, 0 };
		ASSERT_RC(0, tc_del(c, k, 2));
	}
	(void)tc_reclaim(c, NULL);
}

/* ------------------------------------------------------------------ */
/* A reader in a section holds back exactly what was retired after it   */
/* ------------------------------------------------------------------ */

struct rd {
	tc_cache *c;
	pthread_barrier_t bar;
	int lock_rc, peek_rc, intact;
};

static void *reader_thread(void *p)
{
	struct rd *r = p;
	const void *v = NULL;
	tc_meta m;
	r->lock_rc = tc_read_lock(r->c);
	r->peek_rc = tc_peek(r->c, "k", 1, &v, &m);
	pthread_barrier_wait(&r->bar); /* entered */
	pthread_barrier_wait(&r->bar); /* writer retired, reclaimed, churned */
	r->intact = v && m.len == 2 && memcmp(v, "v2", 2) == 0;
	tc_read_unlock(r->c);
	pthread_barrier_wait(&r->bar); /* left */
	return NULL;
}

static void test_thread_reader_holds_back_only_later_retirements(void **state)
{
	(void)state;
	char name[64];
	tc_cache *c = wb_create(fx_name(name), 1024, 1 << 20, 8,
				TC_EVICT_NONE);
	ASSERT_RC(0, tc_set(c, "k", 1, "v1", 2, 0, 0));
	ASSERT_RC(0, tc_set(c, "k", 1, "v2", 2, 0, 0)); /* retires v1 */
	assert_int_equal(retired(c), 1);
	/* A grace period starts: v1 now belongs to an older epoch than any
	 * reader entering from here on. */
	tc__add(&c->h->epoch, 1);

	struct rd r = { .c = c };
	pthread_barrier_init(&r.bar, NULL, 2);
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, reader_thread, &r), 0);
	pthread_barrier_wait(&r.bar);
	ASSERT_RC(0, r.lock_rc);
	ASSERT_RC(0, r.peek_rc);

	int set_rc = tc_set(c, "k", 1, "v3", 2, 0, 0); /* retires v2, which the reader holds */
	uint64_t r_before = retired(c);
	uint64_t freed1 = reclaim(c);                   /* v1 only */
	uint64_t r_after = retired(c), freed2 = reclaim(c);
	churn(c); /* reuses v1's block; must not get v2's */
	uint64_t r_churn = retired(c);

	pthread_barrier_wait(&r.bar);
	pthread_barrier_wait(&r.bar);
	pthread_join(th, NULL);
	pthread_barrier_destroy(&r.bar);
	ASSERT_RC(0, set_rc);
	assert_int_equal(r_before, 2);
	assert_int_equal(freed1, 1);
	assert_int_equal(r_after, 1);
	assert_int_equal(freed2, 0);
	assert_true(r_churn >= 1);
	assert_int_equal(r.intact, 1);
	assert_int_equal(reclaim(c), r_churn); /* v2 and the churn, now that the reader left */
	assert_int_equal(retired(c), 0);
	assert_int_equal(wb_blocks_used(c), 1); /* only v3 */
	assert_int_equal(tc__retired_sum(c, TC_C_RETIRED_BYTES), 0);
	tc_close(c);
	tc_unlink(name);
}

static void test_process_reader_holds_back_only_later_retirements(void **state)
{
	(void)state;
	char name[64];
	tc_cache *c = wb_create(fx_name(name), 1024, 1 << 20, 8,
				TC_EVICT_NONE);
	ASSERT_RC(0, tc_set(c, "k", 1, "v1", 2, 0, 0));
	ASSERT_RC(0, tc_set(c, "k", 1, "v2", 2, 0, 0));
	tc__add(&c->h->epoch, 1);
	int up[2], down[2];
	assert_int_equal(pipe(up), 0);
	assert_int_equal(pipe(down), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		alarm(60);
		tc_cache *cc = NULL;
		const void *v = NULL;
		tc_meta m;
		char ch = 'r';
		if (tc_open(&cc, name, NULL) || tc_read_lock(cc) ||
		    tc_peek(cc, "k", 1, &v, &m))
			_exit(2);
		if (write(up[1], &ch, 1) != 1 || read(down[0], &ch, 1) != 1)
			_exit(3);
		int ok = m.len == 2 && memcmp(v, "v2", 2) == 0;
		tc_read_unlock(cc);
		tc_close(cc);
		_exit(ok ? 0 : 4);
	}
	char ch;
	assert_int_equal(read(up[0], &ch, 1), 1);
	int set_rc = tc_set(c, "k", 1, "v3", 2, 0, 0);
	uint64_t freed1 = reclaim(c);
	churn(c);
	uint64_t r_churn = retired(c);
	assert_int_equal(write(down[1], &ch, 1), 1);
	assert_int_equal(fx_wait(pid), 0);
	ASSERT_RC(0, set_rc);
	assert_int_equal(freed1, 1);
	assert_true(r_churn >= 1);
	assert_int_equal(reclaim(c), r_churn);
	assert_int_equal(retired(c), 0);
	assert_int_equal(wb_blocks_used(c), 1);
	close(up[0]);
	close(up[1]);
	close(down[0]);
	close(down[1]);
	tc_close(c);
	tc_unlink(name);
}

/* ------------------------------------------------------------------ */
/* Nesting                                                              */
/* ------------------------------------------------------------------ */

struct wr {
	tc_cache *c;
	uint64_t freed;
	int rc;
};

static void *write_and_reclaim(void *p)
{
	struct wr *w = p;
	w->rc = tc_set(w->c, "k", 1, "v9", 2, 0, 0);
	if (w->rc == 0)
		w->rc = tc_reclaim(w->c, &w->freed);
	return NULL;
}

static uint64_t other_thread_reclaims(tc_cache *c, bool write)
{
	struct wr w = { .c = c };
	pthread_t th;
	if (write) {
		assert_int_equal(pthread_create(&th, NULL, write_and_reclaim, &w), 0);
		pthread_join(th, NULL);
		ASSERT_RC(0, w.rc);
		return w.freed;
	}
	ASSERT_RC(0, tc_reclaim(c, &w.freed));
	return w.freed;
}

static void *reclaim_only(void *p)
{
	struct wr *w = p;
	w->rc = tc_reclaim(w->c, &w->freed);
	return NULL;
}

static uint64_t reclaim_elsewhere(tc_cache *c)
{
	struct wr w = { .c = c };
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, reclaim_only, &w), 0);
	pthread_join(th, NULL);
	ASSERT_RC(0, w.rc);
	return w.freed;
}

static void test_nested_sections_end_at_outermost_unlock(void **state)
{
	(void)state;
	char name[64];
	tc_cache *c = wb_create(fx_name(name), 1024, 1 << 20, 8,
				TC_EVICT_NONE);
	ASSERT_RC(0, tc_set(c, "k", 1, "v1", 2, 0, 0));
	ASSERT_RC(0, tc_read_lock(c));
	ASSERT_RC(0, tc_read_lock(c));
	const void *v = NULL;
	tc_meta m;
	ASSERT_RC(0, tc_peek(c, "k", 1, &v, &m));
	assert_int_equal(other_thread_reclaims(c, true), 0); /* v1 retired under us */
	ASSERT_RC(-EDEADLK, tc_reclaim(c, NULL));
	tc_read_unlock(c);
	/* Still inside: peek works, v1 is held. */
	const void *v2 = NULL;
	ASSERT_RC(0, tc_peek(c, "k", 1, &v2, &m));
	assert_int_equal(reclaim_elsewhere(c), 0);
	assert_int_equal(memcmp(v, "v1", 2), 0);
	tc_read_unlock(c);
	ASSERT_RC(-EINVAL, tc_peek(c, "k", 1, &v2, &m));
	assert_null(v2);
	assert_int_equal(reclaim_elsewhere(c), 1);
	/* An unlock too many is ignored. */
	tc_read_unlock(c);
	ASSERT_RC(0, tc_read_lock(c));
	ASSERT_RC(0, tc_peek(c, "k", 1, &v2, &m));
	tc_read_unlock(c);
	assert_int_equal(tc__ld(&tc__slot(c)->epoch), 0);
	tc_close(c);
	tc_unlink(name);
}

/* ------------------------------------------------------------------ */
/* The plain path of tc_get, tc_peek, tc_read_lock (kv.c, epoch.h)     */
/* ------------------------------------------------------------------ */

/* Keys of each length class the read path tells apart (1..8, 9..16 in
 * a copy of its own, 17+) and at their edges, each read every way: tc_get outside and inside
 * a section, tc_peek inside, too small a buffer, a miss, an expired key.
 * The answers and the counters are the same on the plain path (a handle
 * without eviction) as on the general one (LRU, checksums, and with
 * TICKCACHE_NO_MEMBARRIER=1 every handle); an LRU handle's gets set the
 * reference bit, a plain one's never do; every section ends quiescent. */
static void reads_every_way(int eviction, uint32_t flags)
{
	char name[64];
	tc_opts o = wb_opts(1024, 1 << 20, 8, eviction);
	o.flags |= flags;
	tc_cache *c = NULL;
	fx_name(name);
	(void)tc_unlink(name);
	ASSERT_RC(0, tc_open(&c, name, &o));
	bool plain = eviction == TC_EVICT_NONE && !(flags & TC_CHECKSUM) &&
		     (tc__membarrier_reader_fast() || TC_TSAN_BUILD);
	assert_true(plain ? c->tfast == c->tkey : c->tfast == (c->tkey | 1ull << 63));
	/* The lengths the read path tells apart, and their edges: 5, 8 | 9,
	 * 12, 16 | 17, 20, 512 (TC_KEY_MAX). */
	static char longest[513];
	memset(longest, 'L', 512);
	const char *const keys[] = { "abcde",        "eight-by",          "nine-byte",
				     "twelve-bytes", "sixteen-bytes-ok",  "seventeen-bytes-x",
				     "a-key-of-twenty-byte", longest };
	enum { NKEYS = sizeof(keys) / sizeof(keys[0]) };
	char val[40];
	for (size_t i = 0; i < sizeof(val); i++)
		val[i] = (char)('A' + i);
	for (int k = 0; k < NKEYS; k++)
		ASSERT_RC(0, tc_set(c, keys[k], strlen(keys[k]), val, sizeof(val), 7, 0));
	ASSERT_RC(0, tc_set(c, "expired-key1", 12, val, 8, 0, 1));
	fx_sleep_ms(30); /* a TTL of 1 ms, well past on the coarse clock */
	uint64_t hits = 0, misses = 0;
	for (int k = 0; k < NKEYS; k++) {
		size_t kl = strlen(keys[k]);
		struct tc_entry *e = wb_entry_of(c, keys[k], TC_KIND_KEY);
		for (int inside = 0; inside < 2; inside++) {
			char buf[64];
			tc_meta m;
			tc__st(&e->refbit, 0);
			if (inside)
				ASSERT_RC(0, tc_read_lock(c));
			memset(buf, 0, sizeof(buf));
			ASSERT_RC(0, tc_get(c, keys[k], kl, buf, sizeof(buf), &m));
			assert_int_equal(m.len, sizeof(val));
			assert_int_equal(m.type, 7);
			assert_memory_equal(buf, val, sizeof(val));
			assert_int_equal(tc__ld(&e->refbit), eviction == TC_EVICT_LRU ? 1 : 0);
			ASSERT_RC(-E2BIG, tc_get(c, keys[k], kl, buf, 39, &m));
			assert_int_equal(m.len, sizeof(val));
			ASSERT_RC(-ENOENT, tc_get(c, keys[k], kl - 1, buf, sizeof(buf), &m));
			ASSERT_RC(-ENOENT, tc_get(c, "expired-key1", 12, buf, sizeof(buf), &m));
			hits += 2;
			misses += 2;
			if (inside) {
				const void *v = NULL;
				ASSERT_RC(0, tc_peek(c, keys[k], kl, &v, &m));
				assert_non_null(v);
				assert_int_equal(m.len, sizeof(val));
				assert_memory_equal(v, val, sizeof(val));
				ASSERT_RC(-ENOENT, tc_peek(c, keys[k], kl - 1, &v, &m));
				assert_null(v);
				ASSERT_RC(-ENOENT, tc_peek(c, "expired-key1", 12, &v, &m));
				hits += 1;
				misses += 2;
				assert_true(tc__ld(&tc__slot(c)->epoch) != 0);
				tc_read_unlock(c);
			}
			assert_int_equal(tc__ld(&tc__slot(c)->epoch), 0);
			assert_null(tc__section_slot(c));
		}
	}
	tc_stats st;
	ASSERT_RC(0, tc_get_stats(c, &st));
	assert_int_equal(st.hits, hits);
	assert_int_equal(st.misses, misses);
	assert_int_equal(st.errors, 0);
	tc_close(c);
	tc_unlink(name);
}

static void test_plain_and_general_reads_agree(void **state)
{
	(void)state;
	reads_every_way(TC_EVICT_NONE, 0);
	reads_every_way(TC_EVICT_LRU, 0);
	reads_every_way(TC_EVICT_NONE, TC_CHECKSUM);
}

/* The state is tested on the plain path too: an unlinked segment answers
 * -ESTALE, one under audit -EBUSY, to tc_get and tc_read_lock alike, and a
 * section refused leaves the slot quiescent. */
static void test_plain_reads_see_the_segment_state(void **state)
{
	(void)state;
	char name[64];
	tc_cache *c = wb_create(fx_name(name), 1024, 1 << 20, 8, TC_EVICT_NONE);
	ASSERT_RC(0, tc_set(c, "twelve-bytes", 12, "v", 1, 0, 0));
	char buf[8];
	tc__st(&c->h->audit_pid, (uint64_t)getpid());
	tc__st(&c->h->audit_start, tc__self_start());
	tc__st(&c->h->state, TC_STATE_AUDITING);
	ASSERT_RC(-EBUSY, tc_get(c, "twelve-bytes", 12, buf, sizeof(buf), NULL));
	ASSERT_RC(-EBUSY, tc_get(c, "k", 1, buf, sizeof(buf), NULL));
	ASSERT_RC(-EBUSY, tc_read_lock(c));
	assert_int_equal(tc__ld(&tc__slot(c)->epoch), 0);
	assert_null(tc__section_slot(c));
	tc__st(&c->h->state, TC_STATE_READY);
	ASSERT_RC(0, tc_get(c, "twelve-bytes", 12, buf, sizeof(buf), NULL));
	ASSERT_RC(0, tc_unlink(name));
	ASSERT_RC(-ESTALE, tc_get(c, "twelve-bytes", 12, buf, sizeof(buf), NULL));
	ASSERT_RC(-ESTALE, tc_read_lock(c));
	assert_int_equal(tc__ld(&tc__slot(c)->epoch), 0);
	tc_close(c);
}

/* Slot word of C's published entry E under TAG. */
static uint64_t word_of(tc_cache *c, struct tc_entry *e, uint64_t tag)
{
	return TC_SW_FINAL | tag << 48 | tc__ref_of(c, e);
}

/*
 * The inline probe tries the home bucket's first candidate only; the rest
 * (lookup_more) goes on from the words it copied.  A key behind another
 * key's entry under its tag, or behind a scribbled word, is still found; a
 * key in the next bucket is found when the home's displacement covers it;
 * with only a scribbled candidate the answer is TC_ECORRUPT, with none a
 * miss.  Slot words written by hand (a key alone in its home bucket).
 */
static void test_a_key_behind_other_candidates_of_its_tag(void **state)
{
	(void)state;
	char name[64];
	tc_cache *c = wb_create(fx_name(name), 1024, 1 << 20, 8, TC_EVICT_NONE);
	static const char *const keys[] = { "twelve-bytes", "k", "a-key-of-twenty-byte" };
	for (int k = 0; k < 3; k++) {
		const char *key = keys[k], *other = "another-key0";
		size_t kl = strlen(key);
		ASSERT_RC(0, tc_set(c, key, kl, "value", 5, 0, 0));
		ASSERT_RC(0, tc_set(c, other, 12, "other", 5, 0, 0));
		uint64_t h = tc__hash(c, key, kl, TC_KIND_KEY), tag = TC_TAG_OF(h);
		struct tc_bucket *home = &c->index[h & c->bmask];
		struct tc_bucket *next = &c->index[(h + 1) & c->bmask];
		uint64_t mine = word_of(c, wb_entry_of(c, key, TC_KIND_KEY), tag);
		uint64_t theirs = word_of(c, wb_entry_of(c, other, TC_KIND_KEY), tag);
		uint64_t saved[2][TC_BUCKET_SLOTS + 1];
		memcpy(saved[0], home, sizeof(saved[0]));
		memcpy(saved[1], next, sizeof(saved[1]));
		char buf[8];
		tc_meta m;
		for (int j = 0; j < TC_BUCKET_SLOTS; j++)
			tc__st(&home->w[j], 0);
		tc__st(&home->meta, 0);
		/* Another key's entry first, then the key. */
		tc__st(&home->w[0], theirs);
		tc__st(&home->w[5], mine);
		ASSERT_RC(0, tc_get(c, key, kl, buf, sizeof(buf), &m));
		assert_int_equal(m.len, 5);
		assert_memory_equal(buf, "value", 5);
		/* A word of no block first (ref 0, then past the arena). */
		tc__st(&home->w[0], TC_SW_FINAL | tag << 48);
		ASSERT_RC(0, tc_get(c, key, kl, buf, sizeof(buf), &m));
		tc__st(&home->w[0], TC_SW_FINAL | tag << 48 | (c->arena_units + 5));
		ASSERT_RC(0, tc_get(c, key, kl, buf, sizeof(buf), &m));
		/* Only the scribbled word: corrupt, not a miss. */
		tc__st(&home->w[5], 0);
		ASSERT_RC(TC_ECORRUPT, tc_get(c, key, kl, buf, sizeof(buf), &m));
		/* Only another key's entry: a miss. */
		tc__st(&home->w[0], theirs);
		ASSERT_RC(-ENOENT, tc_get(c, key, kl, buf, sizeof(buf), &m));
		/* The key in the next bucket: found once the home's displacement
		 * covers it, and only then. */
		tc__st(&home->w[0], 0);
		uint64_t nw = tc__ld(&next->w[6]);
		tc__st(&next->w[6], mine);
		ASSERT_RC(-ENOENT, tc_get(c, key, kl, buf, sizeof(buf), &m));
		tc__st(&home->meta, 1);
		ASSERT_RC(0, tc_get(c, key, kl, buf, sizeof(buf), &m));
		assert_memory_equal(buf, "value", 5);
		ASSERT_RC(0, tc_read_lock(c));
		const void *v = NULL;
		ASSERT_RC(0, tc_peek(c, key, kl, &v, &m));
		assert_memory_equal(v, "value", 5);
		tc_read_unlock(c);
		tc__st(&next->w[6], nw);
		ASSERT_RC(-ENOENT, tc_get(c, key, kl, buf, sizeof(buf), &m));
		/* Put the buckets back as they were. */
		memcpy(home, saved[0], sizeof(saved[0]));
		memcpy(next, saved[1], sizeof(saved[1]));
		ASSERT_RC(0, tc_get(c, key, kl, buf, sizeof(buf), &m));
		ASSERT_RC(0, tc_del(c, key, kl));
		ASSERT_RC(0, tc_del(c, other, 12));
	}
	tc_close(c);
	tc_unlink(name);
}

/* ------------------------------------------------------------------ */
/* The thread's current entry (tc__tls_key)                            */
/* ------------------------------------------------------------------ */

/* Two handles used in turns by one thread: each keeps its own slot and its
 * own section; a section of one is no section of the other. */
static void test_handles_in_turns_keep_their_own_sections(void **state)
{
	(void)state;
	char name[64];
	tc_cache *a = wb_create(fx_name(name), 1024, 1 << 20, 8,
				TC_EVICT_NONE);
	tc_cache *b = NULL;
	ASSERT_RC(0, tc_open(&b, name, NULL));
	ASSERT_RC(0, tc_set(a, "k", 1, "v", 1, 0, 0));
	char buf[4];
	const void *v;
	tc_meta m;
	ASSERT_RC(0, tc_read_lock(a));
	ASSERT_RC(0, tc_get(b, "k", 1, buf, sizeof(buf), &m));  /* b current now */
	ASSERT_RC(-EINVAL, tc_peek(b, "k", 1, &v, &m));        /* b is in no section */
	ASSERT_RC(0, tc_peek(a, "k", 1, &v, &m));              /* a still is */
	struct tc_rslot *sa = tc__section_slot(a);
	assert_non_null(sa);
	assert_null(tc__section_slot(b));
	assert_true(tc__ld(&sa->epoch) != 0);
	for (int i = 0; i < 200; i++) {                    /* turns, many of them */
		ASSERT_RC(0, tc_get(i % 2 ? a : b, "k", 1, buf, sizeof(buf), &m));
		assert_true(tc__ld(&sa->epoch) != 0);
	}
	tc_read_unlock(a);
	assert_int_equal(tc__ld(&sa->epoch), 0);
	ASSERT_RC(-EINVAL, tc_peek(a, "k", 1, &v, &m));
	assert_true(tc__slot(a) != tc__slot(b));
	/* Closing the current handle: the other one goes on, with its slot. */
	struct tc_rslot *sb = tc__slot(b);
	tc_close(a);
	ASSERT_RC(0, tc_get(b, "k", 1, buf, sizeof(buf), &m));
	assert_ptr_equal(tc__slot(b), sb);
	tc_close(b);
	tc_unlink(name);
}

/* Sampled latency: one tc_get in 64 of a thread on a handle is timed, also
 * when the thread takes turns between two handles. */
static void test_one_get_in_64_is_timed_per_handle(void **state)
{
	(void)state;
	char n1[64], n2[64];
	tc_cache *a = wb_create(fx_name(n1), 1024, 1 << 20, 8,
				TC_EVICT_NONE);
	tc_cache *b = wb_create(fx_name(n2), 1024, 1 << 20, 8,
				TC_EVICT_NONE);
	char buf[4];
	tc_stats st;
	for (int i = 0; i < 128; i++)
		ASSERT_RC(-ENOENT, tc_get(a, "k", 1, buf, sizeof(buf), NULL));
	ASSERT_RC(0, tc_get_stats(a, &st));
	assert_int_equal(st.lat_samples, 2);
	assert_int_equal(st.misses, 128);
	assert_int_equal(st.ops, 128);
	for (int i = 0; i < 256; i++)
		ASSERT_RC(-ENOENT, tc_get(i % 2 ? a : b, "k", 1, buf, sizeof(buf), NULL));
	ASSERT_RC(0, tc_get_stats(a, &st));
	assert_int_equal(st.lat_samples, 4);
	ASSERT_RC(0, tc_get_stats(b, &st));
	assert_int_equal(st.lat_samples, 2);
	tc_close(a);
	tc_close(b);
	tc_unlink(n1);
	tc_unlink(n2);
}

/* After fork the child has no current entry (the parent's names the
 * parent's slot); it opens a handle of its own, whose slot is its own, and
 * may close the inherited one; the parent's section goes on. */
static void test_child_after_fork_reads_through_its_own_slot(void **state)
{
	(void)state;
	char name[64];
	tc_cache *c = wb_create(fx_name(name), 1024, 1 << 20, 8,
				TC_EVICT_NONE);
	ASSERT_RC(0, tc_set(c, "k", 1, "v", 1, 0, 0));
	char buf[4];
	ASSERT_RC(0, tc_get(c, "k", 1, buf, sizeof(buf), NULL)); /* current entry cached */
	struct tc_rslot *mine = tc__slot(c);
	ASSERT_RC(0, tc_read_lock(c)); /* the child inherits a section in progress, too */
	pid_t pid = fork();
	if (pid == 0) {
		int bad = tc__tls_key != 0;
		tc_cache *d = NULL;
		bad |= (tc_open(&d, name, NULL) != 0) << 1;
		if (d) {
			bad |= (tc_get(d, "k", 1, buf, sizeof(buf), NULL) != 0) << 2;
			bad |= (tc_read_lock(d) != 0) << 3;
			struct tc_rslot *s = tc__section_slot(d);
			bad |= (s == NULL || s == mine ||
				(tc__ld(&s->owner) >> 32) != (uint64_t)getpid()) << 4;
			tc_read_unlock(d);
			bad |= (tc__section_slot(d) != NULL) << 5;
			tc_close(d);
		}
		bad |= (tc__ld(&mine->epoch) == 0) << 6; /* the parent's slot untouched */
		tc_close(c); /* the one call an inherited handle may take */
		_exit(bad);
	}
	int st = 0;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	assert_ptr_equal(tc__section_slot(c), mine); /* the parent's section goes on */
	tc_read_unlock(c);
	assert_int_equal(tc__ld(&mine->epoch), 0);
	tc_close(c);
	tc_unlink(name);
}

/* ------------------------------------------------------------------ */
/* Slots at thread exit and close                                      */
/* ------------------------------------------------------------------ */

struct ex {
	tc_cache *c, *c2;
	int rc;
	pthread_barrier_t *bar;
};

static void *use_and_exit(void *p)
{
	struct ex *e = p;
	char buf[4];
	e->rc = tc_get(e->c, "k", 1, buf, sizeof(buf), NULL);
	if (e->c2 && e->rc == 0)
		e->rc = tc_get(e->c2, "k", 1, buf, sizeof(buf), NULL);
	if (e->bar) {
		pthread_barrier_wait(e->bar); /* used the handle */
		pthread_barrier_wait(e->bar); /* main closed it */
	}
	return NULL;
}

static void test_thread_exit_and_close_give_slots_back(void **state)
{
	(void)state;
	char name[64];
	tc_cache *c = wb_create(fx_name(name), 1024, 1 << 20, 8,
				TC_EVICT_NONE);
	tc_cache *c2 = NULL;
	ASSERT_RC(0, tc_open(&c2, name, NULL));
	ASSERT_RC(0, tc_set(c, "k", 1, "v", 1, 0, 0)); /* main: one slot per handle used */
	assert_int_equal(wb_slots_owned(c), 1);
	for (int round = 0; round < 3; round++) {
		pthread_t th[6];
		struct ex e[6];
		for (int i = 0; i < 6; i++) {
			e[i] = (struct ex){ .c = c, .c2 = i % 2 ? c2 : NULL };
			assert_int_equal(pthread_create(&th[i], NULL, use_and_exit, &e[i]), 0);
		}
		for (int i = 0; i < 6; i++) {
			pthread_join(th[i], NULL);
			ASSERT_RC(0, e[i].rc);
		}
		assert_int_equal(wb_slots_owned(c), 1);
	}
	/* All 8 slots can be taken at once, then given back. */
	{
		pthread_t th[7];
		struct ex e[7];
		pthread_barrier_t bar;
		pthread_barrier_init(&bar, NULL, 8);
		for (int i = 0; i < 7; i++) {
			e[i] = (struct ex){ .c = c, .bar = &bar };
			assert_int_equal(pthread_create(&th[i], NULL, use_and_exit, &e[i]), 0);
		}
		pthread_barrier_wait(&bar);
		for (int i = 0; i < 7; i++)
			ASSERT_RC(0, e[i].rc);
		assert_int_equal(wb_slots_owned(c), 8);
		char buf[4];
		ASSERT_RC(-EUSERS, tc_get(c2, "k", 1, buf, sizeof(buf), NULL)); /* no 9th slot */
		/* Closing the handle gives back every slot of this process on it,
		 * also those of threads still running; their exit is then a no-op. */
		tc_close(c);
		c = NULL;
		assert_int_equal(wb_slots_owned(c2), 0);
		pthread_barrier_wait(&bar);
		for (int i = 0; i < 7; i++)
			pthread_join(th[i], NULL);
		pthread_barrier_destroy(&bar);
	}
	assert_int_equal(wb_slots_owned(c2), 0);
	char buf[4];
	ASSERT_RC(0, tc_get(c2, "k", 1, buf, sizeof(buf), NULL));
	assert_int_equal(wb_slots_owned(c2), 1);
	tc_close(c2);
	tc_unlink(name);
}

/* ------------------------------------------------------------------ */
/* Dead processes                                                       */
/* ------------------------------------------------------------------ */

static void test_killed_reader_holds_reclaim_until_cleared(void **state)
{
	(void)state;
	char name[64];
	tc_cache *c = wb_create(fx_name(name), 1024, 1 << 20, 8,
				TC_EVICT_NONE);
	ASSERT_RC(0, tc_set(c, "k", 1, "v1", 2, 0, 0));
	int up[2];
	assert_int_equal(pipe(up), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		tc_cache *cc = NULL;
		char ch = 'r';
		if (tc_open(&cc, name, NULL) || tc_read_lock(cc) || write(up[1], &ch, 1) != 1)
			_exit(2);
		for (;;)
			pause();
	}
	char ch;
	assert_int_equal(read(up[0], &ch, 1), 1);
	ASSERT_RC(0, tc_set(c, "k", 1, "v2", 2, 0, 0));
	assert_int_equal(reclaim(c), 0);
	kill(pid, SIGKILL);
	assert_int_equal(fx_wait(pid), 128 + SIGKILL);
	assert_int_equal(reclaim(c), 0); /* the dead slot still shows its epoch */
	uint32_t cleared = 0;
	ASSERT_RC(0, tc_readers_clean(c, &cleared));
	assert_int_equal(cleared, 1);
	assert_int_equal(reclaim(c), 1);
	assert_int_equal(wb_slots_owned(c), 1);
	/* Its attach record went too. */
	uint32_t att = 0;
	for (uint32_t i = 0; i < c->max_attach; i++)
		att += tc__ld(&c->attach[i].pid) != 0;
	assert_int_equal(att, 1);
	close(up[0]);
	close(up[1]);
	tc_close(c);
	tc_unlink(name);
}

static pid_t dead_pid(void)
{
	pid_t p = fork();
	if (p == 0)
		_exit(0);
	fx_wait(p);
	return p;
}

/*
 * clear_dead_slot() marks the slot "being cleaned" (tid bit 31) before it
 * works on it.  If that cleaner is killed half way, the next cleaner must be
 * able to finish the job; else the slot is lost and, with its epoch still
 * set, no memory is ever reclaimed again.
 */
static void test_slot_of_killed_cleaner_is_cleared_again(void **state)
{
	(void)state;
	char name[64];
	tc_cache *c = wb_create(fx_name(name), 1024, 1 << 20, 8,
				TC_EVICT_NONE);
	ASSERT_RC(0, tc_set(c, "k", 1, "v1", 2, 0, 0));
	struct tc_rslot *s = &c->slots[5];
	pid_t dead = dead_pid();
	/* A dead reader in its section, its slot half-cleaned by a cleaner that
	 * was killed before it finished. */
	tc__st(&s->start, 0);
	tc__st(&s->epoch, tc__ld(&c->h->epoch));
	tc__st(&s->owner, (uint64_t)(uint32_t)dead << 32 | 0x80000000ull | 4242);
	ASSERT_RC(0, tc_set(c, "k", 1, "v2", 2, 0, 0));
	assert_int_equal(reclaim(c), 0);
	uint32_t cleared = 0;
	ASSERT_RC(0, tc_readers_clean(c, &cleared));
	tc_sweep_report rep;
	ASSERT_RC(0, tc_sweep(c, 0, &rep));
	uint64_t owner = tc__ld(&s->owner), ep = tc__ld(&s->epoch);
	uint64_t left = retired(c);
	tc_close(c);
	tc_unlink(name);
	if (owner != 0 || ep != 0 || left != 0)
		fail_msg("slot left by a killed cleaner: owner %#llx, epoch %llu; %llu retired "
			 "blocks can never be reclaimed", (unsigned long long)owner,
			 (unsigned long long)ep, (unsigned long long)left);
}

/*
 * A writer killed at a point of a write, played by a child that runs the
 * library's own steps and stops dead (_exit) at that point:
 *   TENT       after claiming its index slot, before finalising (insert)
 *   REPLACED   after the CAS that replaced the old entry, before retiring it
 *   REMOVED    after the CAS that removed the entry (live-- before it, as
 *              tc__remove_slot does), before its retire
 *   BUILT      after allocating and filling its block, before any CAS
 * After tc_readers_clean + reclaim, the segment must account exactly for
 * what is published: live == FINAL slots, blocks used == FINAL slots.
 */
enum { AT_TENT, AT_REPLACED, AT_REMOVED, AT_BUILT };

static struct tc_entry *child_build(tc_cache *c, struct tc_rslot *s, const char *key,
				    const char *val)
{
	size_t kl = strlen(key), vl = strlen(val);
	int rc;
	struct tc_entry *e = tc__alloc(c, s, tc__entry_bytes(kl, vl), &rc);
	if (!e)
		_exit(10);
	e->hash = tc__hash(c, key, kl, TC_KIND_KEY);
	e->expires_ms = 0;
	e->vlen = (uint32_t)vl;
	e->type = 0;
	e->klen = (uint16_t)kl;
	e->kind = TC_KIND_KEY;
	e->aux = 0;
	e->version = tc__add_ret(&c->h->ver[(e->hash >> 32) % TC_VER_SHARDS].v, 1);
	memcpy((uint8_t *)e + TC_ENTRY_HDR, key, kl);
	memcpy((uint8_t *)tc__eval(e, (uint32_t)kl), val, vl);
	return e;
}

static void child_die_at(const char *name, int point)
{
	tc_cache *c = NULL;
	struct tc_rslot *s;
	if (tc_open(&c, name, NULL) || tc__enter(c, &s))
		_exit(11);
	uint64_t *slotp = NULL, w = 0;
	struct tc_entry *old = NULL;
	uint64_t hash = tc__hash(c, "k", 1, TC_KIND_KEY);
	switch (point) {
	case AT_TENT: {
		struct tc_entry *e = child_build(c, s, "n", "new");
		uint64_t h = e->hash, ref = tc__ref_of(c, e);
		/* (live is raised only after an insert is final.) */
		struct tc_bucket *b = &c->index[h & c->bmask];
		for (int i = 0; i < TC_BUCKET_SLOTS; i++)
			if (tc__cas(&b->w[i], 0, TC_SW_TENT | TC_TAG_OF(h) << 48 | ref) == 0)
				_exit(0);
		_exit(12);
	}
	case AT_REPLACED: {
		if (tc__lookup(c, hash, "k", 1, TC_KIND_KEY, &slotp, &w, &old))
			_exit(13);
		struct tc_entry *e = child_build(c, s, "k", "new");
		/* As tc__write does: name the entry being unlinked first. */
		tc__note_unlink(s, TC_SW_REF(w), old);
		if (tc__cas(slotp, w, TC_SW_FINAL | TC_TAG_OF(hash) << 48 | tc__ref_of(c, e)) != w)
			_exit(14);
		_exit(0);
	}
	case AT_REMOVED:
		if (tc__lookup(c, hash, "k", 1, TC_KIND_KEY, &slotp, &w, &old))
			_exit(13);
		tc__note_unlink(s, TC_SW_REF(w), old);
		tc__add(&c->h->live, (uint64_t)-1);
		if (tc__cas(slotp, w, 0) != w)
			_exit(14);
		_exit(0);
	default:
		child_build(c, s, "k", "new");
		_exit(0);
	}
}

static const char *const point_names[] = { "TENT", "REPLACED", "REMOVED", "BUILT" };

static void test_killed_writer_leaves_no_leak_and_true_live_count(void **state)
{
	(void)state;
	char report[512] = "";
	size_t used = 0;
	for (int point = AT_TENT; point <= AT_BUILT; point++) {
		char name[64];
		tc_cache *c = wb_create(fx_name(name), 1024, 1 << 20, 8,
					TC_EVICT_NONE);
		ASSERT_RC(0, tc_set(c, "k", 1, "old", 3, 0, 0));
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0)
			child_die_at(name, point);
		assert_int_equal(fx_wait(pid), 0);
		uint32_t cleared = 0;
		ASSERT_RC(0, tc_readers_clean(c, &cleared));
		assert_int_equal(cleared, 1);
		(void)reclaim(c);
		(void)reclaim(c);
		uint64_t nz = 0, fin = wb_count_slots(c, &nz);
		uint64_t live = tc__ld(&c->h->live), blocks = wb_blocks_used(c);
		uint64_t left = retired(c);
		/* Killed after a delete's CAS, the live count is exact: it was
		 * lowered before the CAS (remove_reserved, docs/design.md). */
		/* The surviving state must also be usable: key k readable or absent. */
		char buf[8];
		int g = tc_get(c, "k", 1, buf, sizeof(buf), NULL);
		tc_close(c);
		tc_unlink(name);
		if (nz != fin || live != fin || blocks != fin || left != 0 ||
		    (g != 0 && g != -ENOENT))
			used += (size_t)snprintf(report + used, sizeof(report) - used,
				 "[%s: FINAL %llu, non-zero slots %llu, live %llu, blocks used "
				 "%llu, retired %llu, get %d] ", point_names[point],
				 (unsigned long long)fin, (unsigned long long)nz,
				 (unsigned long long)live, (unsigned long long)blocks,
				 (unsigned long long)left, g);
	}
	if (used)
		fail_msg("after clearing a killed writer: %s", report);
}

/* ------------------------------------------------------------------ */
/* Incremental reclamation: a pending chain must not be held hostage    */
/* ------------------------------------------------------------------ */

struct idle {
	tc_cache *c;
	pthread_barrier_t bar;
	int rc;
	uint64_t writes;
};

/* Overwrite one key until this thread's writes start an incremental
 * reclaim (its slot then holds a pending chain), then go idle: a thread
 * that wrote a burst and now only waits (or only reads). */
static void *burst_then_idle(void *p)
{
	struct idle *w = p;
	char v[1000];
	memset(v, 'w', sizeof(v));
	struct tc_rslot *s = tc__slot(w->c);
	w->rc = s ? 0 : -EUSERS;
	while (w->rc == 0 && w->writes < 100000 && !tc__ld(&s->reclaim)) {
		w->rc = tc_set(w->c, "burst", 5, v, sizeof(v), 0, 0);
		w->writes++;
	}
	pthread_barrier_wait(&w->bar); /* burst done */
	pthread_barrier_wait(&w->bar); /* main checked */
	return NULL;
}

static void test_idle_writer_does_not_hold_retired_memory_hostage(void **state)
{
	(void)state;
	char name[64];
	tc_cache *c = wb_create(fx_name(name), 1024, 1 << 20, 8,
				TC_EVICT_NONE);
	struct idle w = { .c = c };
	pthread_barrier_init(&w.bar, NULL, 2);
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, burst_then_idle, &w), 0);
	pthread_barrier_wait(&w.bar);
	/* Nobody is in a read section: a sweep (what shm-sweeper runs) and a
	 * reclaim must free everything retired. */
	uint64_t before = retired(c);
	tc_sweep_report rep;
	int src = tc_sweep(c, 0, &rep);
	uint64_t freed = 0;
	int rrc = tc_reclaim(c, &freed);
	uint64_t after = retired(c);
	pthread_barrier_wait(&w.bar);
	pthread_join(th, NULL);
	pthread_barrier_destroy(&w.bar);
	tc_close(c);
	tc_unlink(name);
	ASSERT_RC(0, w.rc);
	ASSERT_RC(0, src);
	ASSERT_RC(0, rrc);
	if (after != 0)
		fail_msg("%llu retired blocks (of %llu) stay unfreed after tc_sweep and "
			 "tc_reclaim with no reader anywhere: they sit in the pending chain "
			 "of an idle writer's slot (after %llu writes)",
			 (unsigned long long)after, (unsigned long long)before,
			 (unsigned long long)w.writes);
}

/* ------------------------------------------------------------------ */
/* A scribbled epoch in a free slot                                     */
/* ------------------------------------------------------------------ */

/*
 * A free slot (owner 0) whose epoch word was scribbled looks like a reader
 * inside its section to every grace period: nothing retired would ever be
 * freed again, and every write short of memory would wait its 20 ms before
 * failing.  A writer short of memory clears such a slot (it is nobody's)
 * the way it clears a dead owner's, and its writes succeed.  START and
 * TSTART: a process and a thread start time scribbled into the slot's
 * owner record too (0: none).
 */
struct free_scribble {
	uint64_t start, tstart, cookie; /* scribbled into the slot's owner record */
	bool base;                      /* the record names the mapping's address */
	uint32_t attach_pid;            /* an attach record scribbled: this pid, start 0 */
	uint64_t owner;                 /* the owner word scribbled too (0: left free) */
};

static void free_slot_scribbled_then_cleared(const struct free_scribble *fs)
{
	char name[64], v[2000];
	tc_cache *c = wb_create(fx_name(name), 1024, 256 * 1024, 8,
				TC_EVICT_NONE);
	ASSERT_RC(0, tc_set(c, "x", 1, "y", 1, 0, 0)); /* this thread's slot */
	struct tc_rslot *s = &c->slots[c->nslots - 1];
	assert_int_equal(tc__ld(&s->owner), 0);
	tc__st(&s->start, fs->start); /* the scribble */
	tc__st(&s->tstart, fs->tstart);
	tc__st(&s->cookie, fs->cookie);
	tc__st(&s->base, fs->base ? (uint64_t)(uintptr_t)c->base : 0);
	struct tc_attach_rec *r = &c->attach[c->max_attach - 1];
	if (fs->attach_pid) {
		assert_int_equal(tc__ld(&r->pid), 0);
		tc__st(&r->pid, fs->attach_pid);
	}
	tc__st(&s->epoch, tc__ld(&c->h->epoch));
	tc__st(&s->owner, fs->owner);
	memset(v, 'v', sizeof(v));
	/* 128 overwrites of a 2 KiB value need more than the 256 KiB arena:
	 * each one's old block must be freed for the next ones. */
	for (int i = 0; i < 128; i++) {
		v[0] = (char)i;
		int rc = tc_set(c, "big", 3, v, sizeof(v), 0, 0);
		if (rc != 0)
			fail_msg("write %d: %s: the free slot's epoch pins every retired block", i,
				 tc_strerror(rc));
	}
	assert_int_equal(tc__ld(&s->epoch), 0);
	assert_int_equal(tc__ld(&s->owner), 0);
	/* Another process's record that maps nothing is cleared; one naming
	 * us is ours to keep (we are attached). */
	bool ours = fs->attach_pid == (uint32_t)getpid();
	assert_int_equal(tc__ld(&r->pid), ours ? fs->attach_pid : 0);
	tc__st(&r->pid, 0);
	char got[2000];
	tc_meta m;
	ASSERT_RC(0, tc_get(c, "big", 3, got, sizeof(got), &m));
	assert_int_equal(m.len, sizeof(v));
	assert_memory_equal(got, v, sizeof(v));
	tc_close(c);
	tc_unlink(name);
}

static void test_scribbled_epoch_of_a_free_slot_is_cleared(void **state)
{
	(void)state;
	free_slot_scribbled_then_cleared(&(struct free_scribble){ 0 });
}

/*
 * The same scribble with an owner's record scribbled into the free slot as
 * well (its process start time): the record names no process attached to
 * the segment, so it is not the slot of a live reader whose owner word
 * alone was scribbled (that reader's process is attached, with that start
 * time: test_live_reader_whose_owner_word_reads_0_keeps_its_epoch).  Found
 * by fuzz_segment_raw, whose writes then slept their 20 ms each (a fifth of
 * its time) and failed with -ENOSPC (write 102 here).
 */
static void test_scribbled_free_slot_with_a_record_of_no_attached_process_is_cleared(void **state)
{
	(void)state;
	free_slot_scribbled_then_cleared(&(struct free_scribble){
		.start = 60, .tstart = 60, .cookie = 7, .base = true });
}

/*
 * An owner's record without a process start time (0, "unknown") but with a
 * thread start time: only a process that could not read its own start time
 * (no /proc) claims with 0, and it attached with 0 as well.  With no such
 * process attached the record is a scribble, and the slot is cleared.
 * Found by fuzz_segment_raw: before the fix "unknown proves nothing" left
 * the slot, every write short of memory slept its 20 ms (about half of the
 * harness's time) and failed with -ENOSPC (write 102 here).
 */
static void test_scribbled_free_slot_with_a_record_without_start_time_is_cleared(void **state)
{
	(void)state;
	free_slot_scribbled_then_cleared(&(struct free_scribble){
		.tstart = 60, .cookie = 7, .base = true });
}

/*
 * A record without the mapping's address or the handle's id: a claimer
 * writes both (neither is ever 0) before it enters a section or builds a
 * block, so such a record is no live reader's, whatever else it says.  It
 * is cleared even where the attach records cannot judge it: here one
 * scribbled to name this very process with start time 0, which a process
 * never doubts (found by fuzz_segment_raw on fe588cc with an attach record
 * of pid 1, whose maps even root cannot read in a container: the writes
 * slept their 20 ms each; write 102 here: -ENOSPC).
 */
static void test_a_free_slot_with_an_incomplete_record_is_cleared(void **state)
{
	(void)state;
	free_slot_scribbled_then_cleared(&(struct free_scribble){
		.tstart = 60, .attach_pid = (uint32_t)getpid() });
}

/* A kernel thread (PF_KTHREAD in /proc/PID/stat's flags): alive, with
 * a /proc/PID/maps that opens and reads as empty.  0 when none is seen
 * (a pid namespace of its own). */
static uint32_t a_kernel_thread(void)
{
	for (uint32_t pid = 2; pid < 200; pid++) {
		char path[64], buf[512];
		snprintf(path, sizeof(path), "/proc/%u/stat", pid);
		FILE *f = fopen(path, "re");
		if (!f)
			continue;
		size_t n = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
		buf[n] = 0;
		char *p = strrchr(buf, ')');
		unsigned long flags = 0;
		/* after the name: state ppid pgrp session tty_nr tpgid flags */
		if (p && sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %lu", &flags) == 1 &&
		    (flags & 0x00200000ul))
			return pid;
	}
	return 0;
}

/*
 * The same scribble (a record with no process start time), and an attach
 * record scribbled to name a live kernel thread with start time 0: a
 * kernel thread maps nothing (its /proc/PID/maps reads as empty), so it
 * never attached; that record is cleared, and the slot then names nobody.
 * Found by fuzz_segment_raw on e90ec53: "empty" was taken for "unreadable"
 * (believed), the record stayed, the slot was left, and writes slept their
 * 20 ms each (write 102 here: -ENOSPC).
 */
static void test_an_attach_record_naming_a_kernel_thread_pins_nothing(void **state)
{
	(void)state;
	uint32_t kt = a_kernel_thread();
	if (!kt)
		skip(); /* no kernel thread visible in this pid namespace */
	free_slot_scribbled_then_cleared(&(struct free_scribble){
		.tstart = 60, .cookie = 7, .base = true, .attach_pid = kt });
}

/*
 * An owner word scribbled to read "being cleaned by PID", PID a live
 * kernel thread: a cleaner maps the segment it cleans, and a kernel thread
 * maps nothing, so the word names no cleaner and the slot is taken over.
 * Found by fuzz_segment_raw on 1672379 (slot 2's owner word 0x1088080000:
 * pid 16, a kernel thread; kill() alone judged it alive, and the slot's
 * scribbled epoch pinned every grace period: write 102 here, -ENOSPC).
 */
static void test_a_slot_being_cleaned_by_a_kernel_thread_is_taken_over(void **state)
{
	(void)state;
	uint32_t kt = a_kernel_thread();
	if (!kt)
		skip(); /* no kernel thread visible in this pid namespace */
	free_slot_scribbled_then_cleared(&(struct free_scribble){
		.owner = (uint64_t)kt << 32 | 0x80000000u });
}

/*
 * A free slot names nothing: its last owner or cleaner emptied it before
 * giving it back.  An in-flight name scribbled into one must not be taken
 * for a dead builder's: the run anchor, between the CAS that ends its run
 * (as this test makes run_word read) and its ender's retire, was built from
 * this very slot by a thread that has since exited, so it passes the
 * builder check and run_word does not name it.  Before the fix the cleaner
 * retired such a block (then the published anchor itself, which run_word
 * now protects, as the index protects a DTO element), the reclaim freed it
 * and the next writes took it: one scribbled word of a free slot damaged a
 * run nobody scribbled.  Here the end is then undone: the anchor must read
 * back.
 */
static void *start_a_run(void *p)
{
	tc_cache *c = p;
	return (void *)(intptr_t)tc_run_start(c, 11, 22);
}

static void test_scribbled_name_in_a_free_slot_retires_nothing(void **state)
{
	(void)state;
	char name[64];
	tc_cache *c = wb_create(fx_name(name), 1024, 256 * 1024, 8,
				TC_EVICT_NONE);
	pthread_t th;
	void *ret;
	assert_int_equal(pthread_create(&th, NULL, start_a_run, c), 0);
	assert_int_equal(pthread_join(th, &ret), 0);
	ASSERT_RC(0, (int)(intptr_t)ret);
	uint64_t rw = tc__ld(&c->h->run_word), anchor = RUN_REF(rw);
	struct tc_entry *e = tc__block(c, anchor);
	assert_non_null(e);
	assert_int_equal(tc__ld(&e->kind), TC_KIND_RUN);
	struct tc_rslot *s = &c->slots[tc__ld(&e->builder) - 1];
	assert_int_equal(tc__ld(&s->owner), 0); /* the starter exited: free */
	tc__st(&c->h->run_word, (uint64_t)(RUN_GEN(rw) + 1) << 32); /* ended */
	tc__st(&s->inflight, anchor); /* the scribble */
	uint32_t cleared = 99;
	ASSERT_RC(0, tc_readers_clean(c, &cleared));
	assert_int_equal(cleared, 0);
	assert_int_equal(tc__ld(&e->state), TC_BLK_LIVE);
	assert_int_equal(tc__ld(&s->inflight), 0); /* the name is cleared */
	assert_int_equal(tc__ld(&s->owner), 0);
	/* The same slot left claimed by a cleaner of a free slot that was
	 * killed before it dropped the name: its successor drops it too. */
	pid_t dead = fork();
	if (dead == 0)
		_exit(0);
	assert_true(dead > 0);
	assert_int_equal(waitpid(dead, NULL, 0), dead);
	tc__st(&s->inflight, anchor);
	tc__st(&s->owner, (uint64_t)dead << 32 | 0x80000001u);
	ASSERT_RC(0, tc_readers_clean(c, &cleared));
	assert_int_equal(cleared, 1);
	assert_int_equal(tc__ld(&e->state), TC_BLK_LIVE);
	assert_int_equal(tc__ld(&s->inflight), 0);
	assert_int_equal(tc__ld(&s->owner), 0);
	/* Whatever was freed is reused: the anchor must still read back. */
	tc__st(&c->h->run_word, rw);
	assert_int_equal(reclaim(c), 0);
	churn(c);
	tc_anchor a;
	ASSERT_RC(0, tc_run_anchor(c, &a));
	assert_int_equal(a.ts_ns, 11);
	assert_int_equal(a.run_id, 22);
	assert_int_equal(tc__ld(&e->state), TC_BLK_LIVE);
	tc_close(c);
	tc_unlink(name);
}

static int start_run(tc_cache *c)
{
	return tc_run_start(c, 11, 22);
}

static int set_one(tc_cache *c)
{
	return tc_set(c, "one", 3, "1", 1, 0, 0);
}

/*
 * A dead slot that names the published run anchor: in inflight, the slot
 * that built it (a starter killed between its CAS and clearing inflight,
 * run_started, or that one word scribbled later), or in ret_ref (an ender
 * killed before its CAS, run_end_noted).  run_word names the anchor, so
 * it is published: the cleaner leaves it.  Before, the cleaner asked the
 * index, which never holds an anchor, and retired the live anchor: the
 * reclaim freed it and the next writes took its block.
 */
static void test_a_dead_slot_never_retires_the_published_anchor(void **state)
{
	(void)state;
	char name[64];
	tc_cache *c = wb_create(fx_name(name), 1024, 256 * 1024, 8,
				TC_EVICT_NONE);
	pid_t starter = wb_die_holding_a_slot(name, start_run);
	uint64_t anchor = RUN_REF(tc__ld(&c->h->run_word));
	struct tc_entry *e = tc__block(c, anchor);
	assert_non_null(e);
	assert_int_equal(tc__ld(&e->kind), TC_KIND_RUN);
	struct tc_rslot *s = wb_slot_of(c, starter);
	assert_ptr_equal(s, &c->slots[tc__ld(&e->builder) - 1]);
	tc__st(&s->inflight, anchor);
	uint32_t cleared = 99;
	ASSERT_RC(0, tc_readers_clean(c, &cleared));
	assert_int_equal(cleared, 1);
	assert_int_equal(tc__ld(&e->state), TC_BLK_LIVE);
	assert_int_equal(tc__ld(&s->owner), 0);
	s = wb_slot_of(c, wb_die_holding_a_slot(name, set_one));
	tc__note_unlink(s, anchor, e);
	ASSERT_RC(0, tc_readers_clean(c, &cleared));
	assert_int_equal(cleared, 1);
	assert_int_equal(tc__ld(&e->state), TC_BLK_LIVE);
	assert_int_equal(reclaim(c), 0);
	churn(c);
	tc_anchor a;
	ASSERT_RC(0, tc_run_anchor(c, &a));
	assert_int_equal(a.ts_ns, 11);
	assert_int_equal(a.run_id, 22);
	ASSERT_RC(0, tc_run_end(c));
	assert_int_equal(tc__ld(&e->state), TC_BLK_RETIRED);
	tc_close(c);
	tc_unlink(name);
}

/*
 * A dead slot whose inflight names a list element it built and published
 * that is no longer its list's head (an appender killed between its CAS
 * and clearing inflight, dto_appended, the list appended to since; or that
 * one word scribbled).  No index word names the element, but the head
 * reaches it: it is published, and the cleaner leaves it.  Before, the
 * cleaner asked the index only and retired the list's first element: the
 * reclaim freed it and the next writes took its block.
 */
static void test_a_dead_slot_never_retires_a_published_list_element(void **state)
{
	(void)state;
	char name[64];
	tc_cache *c = wb_create(fx_name(name), 1024, 256 * 1024, 8,
				TC_EVICT_NONE);
	ASSERT_RC(0, tc_run_start(c, 11, 22));
	struct tc_rslot *s = wb_slot_of(c, wb_die_holding_a_slot(name, wb_append_two));
	struct tc_entry *head = NULL;
	WB_EACH_SLOT(c, w) {
		head = tc__block(c, TC_SW_REF(w));
	}
	assert_non_null(head);
	assert_int_equal(tc__ld(&head->kind), TC_KIND_DTO);
	uint64_t first = TC_DTO_PREV(tc__ld(&head->version));
	struct tc_entry *e = tc__block(c, first);
	assert_non_null(e);
	assert_ptr_equal(s, &c->slots[tc__ld(&e->builder) - 1]);
	tc__st(&s->inflight, first);
	uint32_t cleared = 99;
	ASSERT_RC(0, tc_readers_clean(c, &cleared));
	assert_int_equal(cleared, 1);
	assert_int_equal(tc__ld(&e->state), TC_BLK_LIVE);
	assert_int_equal(reclaim(c), 0);
	churn(c);
	char got[32] = "";
	ASSERT_RC(0, tc_dto_each(c, "k", 1, 7, wb_collect_dto, got));
	assert_string_equal(got, "firstsecond");
	tc_close(c);
	tc_unlink(name);
}

/* The block of a TTL policy table of one record, published: *REF its ref;
 * its version is policy_gen's generation. */
static struct tc_entry *policy_table(tc_cache *c, uint64_t *ref)
{
	ASSERT_RC(0, tc_ttl_policy_set(c, "a:", 1000));
	uint64_t pw = tc__ld(&c->h->policy_gen);
	*ref = pw & 0xffffffffu;
	struct tc_entry *t = tc__block(c, *ref);
	assert_non_null(t);
	assert_int_equal(tc__ld(&t->kind), TC_KIND_POLICY);
	assert_int_equal(tc__ld(&t->version), pw >> 32);
	return t;
}

/* Table T (REF) replaced (policy_gen names no table) and its block reused
 * in place as a run anchor of the table's generation, built by this
 * thread and not yet published: named in the thread's inflight, which the
 * caller clears.  The thread's slot. */
static struct tc_rslot *table_as_private_anchor(tc_cache *c, struct tc_entry *t, uint64_t ref)
{
	tc__st(&c->h->policy_gen, ((tc__ld(&c->h->policy_gen) >> 32) + 1) << 32);
	struct tc_rslot *me = tc__slot(c);
	assert_non_null(me);
	tc__st(&t->kind, TC_KIND_RUN);
	tc__st(&t->builder, (uint16_t)(me - c->slots + 1));
	tc__st(&me->inflight, ref);
	return me;
}

/*
 * A policy writer killed before its CAS (policy_built) leaves the old
 * table T named in ret_ref.  Once T is replaced, retired and freed, its
 * block may be taken for a run anchor of the same generation (a table's
 * version and an anchor's are both their word's generation; neither has a
 * key: hash 0), which a live starter names in inflight and has not
 * published yet.  The record must not match it: before, the cleaner
 * retired the starter's private anchor, which the starter's CAS then
 * published, retired.  Here T's block is made that anchor in place.
 */
static void test_a_ret_record_never_names_a_block_of_another_kind(void **state)
{
	(void)state;
	char name[64];
	tc_cache *c = wb_create(fx_name(name), 1024, 256 * 1024, 8,
				TC_EVICT_NONE);
	uint64_t ref;
	struct tc_entry *t = policy_table(c, &ref);
	struct tc_rslot *dead = wb_slot_of(c, wb_die_holding_a_slot(name, set_one));
	tc__note_unlink(dead, ref, t); /* as policy_built leaves it */
	struct tc_rslot *me = table_as_private_anchor(c, t, ref);
	uint32_t cleared = 99;
	ASSERT_RC(0, tc_readers_clean(c, &cleared));
	assert_int_equal(cleared, 1);
	assert_int_equal(tc__ld(&t->state), TC_BLK_LIVE);
	assert_int_equal(tc__ld(&dead->owner), 0);
	tc__st(&me->inflight, 0);
	tc_close(c);
	tc_unlink(name);
}

/*
 * run_word scribbled to name a block of kind RUN that is not its run's
 * anchor: here another starter's anchor, built and not yet published (a
 * policy table's block made one in place, of the generation its table
 * had).  tc_run_end ends the run the word shows, but retires only an
 * anchor of the word's generation (the anchor records it): that block
 * leaks until tc_audit instead.  Before, tc_run_end retired the starter's
 * private block, which the starter then freed again or published.
 */
static void test_a_scribbled_run_word_never_retires_another_runs_block(void **state)
{
	(void)state;
	char name[64];
	tc_cache *c = wb_create(fx_name(name), 1024, 256 * 1024, 8,
				TC_EVICT_NONE);
	uint64_t ref;
	struct tc_entry *t = policy_table(c, &ref);
	struct tc_rslot *me = table_as_private_anchor(c, t, ref);
	uint32_t gen = ((uint32_t)tc__ld(&t->version) + 2) | 1;
	tc__st(&c->h->run_word, (uint64_t)gen << 32 | ref); /* the scribble */
	ASSERT_RC(0, tc_run_end(c));
	assert_int_equal(tc__ld(&c->h->run_word), (uint64_t)(gen + 1) << 32);
	assert_int_equal(tc__ld(&t->state), TC_BLK_LIVE);
	tc__st(&me->inflight, 0);
	tc_close(c);
	tc_unlink(name);
}

/*
 * A live reader's owner word scribbled to 0 makes its slot look free.  Its
 * epoch must not be taken for a scribble of a free slot's: the slot still
 * carries its owner's record (start time, address, handle cookie), which
 * every free slot has cleared.  Before the fix the cleaner emptied it under
 * the reader: the reclaim freed the value the reader held (tc_peek) and the
 * churn overwrote it.
 */
static void live_reader_owner_word_scribbled(bool no_start)
{
	char name[64];
	tc_cache *c = wb_create(fx_name(name), 1024, 1 << 20, 8,
				TC_EVICT_NONE);
	ASSERT_RC(0, tc_set(c, "k", 1, "v2", 2, 0, 0));
	struct rd r = { .c = c };
	pthread_barrier_init(&r.bar, NULL, 2);
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, reader_thread, &r), 0);
	pthread_barrier_wait(&r.bar);
	ASSERT_RC(0, r.lock_rc);
	ASSERT_RC(0, r.peek_rc);
	struct tc_rslot *rs = NULL;
	for (uint32_t i = 0; i < c->nslots; i++)
		if (tc__ld(&c->slots[i].epoch) != 0)
			rs = &c->slots[i];
	assert_non_null(rs);
	uint64_t owner = tc__ld(&rs->owner), epoch = tc__ld(&rs->epoch);
	assert_int_not_equal(owner, 0);
	if (no_start) { /* as written by a process without /proc */
		assert_int_not_equal(tc__ld(&rs->tstart), 0);
		tc__st(&c->attach[c->attach_idx].start, 0);
		tc__st(&rs->start, 0);
	}
	tc__st(&rs->owner, 0); /* the scribble */
	uint32_t cleared = 99;
	int clean_rc = tc_readers_clean(c, &cleared);
	uint64_t epoch_after = tc__ld(&rs->epoch);
	int set_rc = tc_set(c, "k", 1, "v3", 2, 0, 0); /* retires v2, which the reader holds */
	uint64_t freed = reclaim(c);
	churn(c);
	pthread_barrier_wait(&r.bar);
	pthread_barrier_wait(&r.bar);
	pthread_join(th, NULL);
	pthread_barrier_destroy(&r.bar);
	ASSERT_RC(0, clean_rc);
	assert_int_equal(cleared, 0);
	assert_int_equal(epoch_after, epoch);
	ASSERT_RC(0, set_rc);
	assert_int_equal(freed, 0);
	assert_int_equal(r.intact, 1);
	tc_close(c);
	tc_unlink(name);
}

static void test_live_reader_whose_owner_word_reads_0_keeps_its_epoch(void **state)
{
	(void)state;
	live_reader_owner_word_scribbled(false);
}

/*
 * The same scribble on the slot of a live reader whose process could not
 * read its own start time (no /proc: its slot and its attach record both
 * say 0).  Its record names an attached process all the same, and its
 * epoch stays: the rule that clears a start time of 0 naming nobody must
 * not clear this one.
 */
static void test_live_reader_without_start_time_whose_owner_word_reads_0_keeps_its_epoch(void **state)
{
	(void)state;
	live_reader_owner_word_scribbled(true);
}

/*
 * KNOWN STALL, NOT FIXED (review-stall; run with TC_RUN_KNOWN_STALLS=1 to
 * see it fail): the epoch word of a live thread's slot scribbled while the
 * thread is outside any section (an idle thread that made one call) looks
 * like a reader inside one: it pins every grace period of every process
 * until that thread enters and leaves a section again, which an idle
 * thread never does.  Writes short of memory wait their 20 ms, then fail
 * (the 103rd of 128 overwrites of 2 KiB in 256 KiB here); no cleaner touches a
 * live owner's slot, and tc_audit refuses while the owner is attached.
 * Only the owner knows it is outside a section (its depth is
 * thread-local), as for a reader stopped inside one (design.md section 5);
 * a shared record of the depth would cost the read path a store.
 */
static pthread_barrier_t idle_bar;

static void *idle_after_one_write(void *p)
{
	tc_cache *c = p;
	int rc = tc_set(c, "idle", 4, "x", 1, 0, 0);
	pthread_barrier_wait(&idle_bar); /* written, now idle */
	pthread_barrier_wait(&idle_bar); /* the test is done */
	return (void *)(intptr_t)rc;
}

static void test_scribbled_epoch_of_an_idle_live_slot_pins_nothing(void **state)
{
	(void)state;
	if (!getenv("TC_RUN_KNOWN_STALLS"))
		skip();
	char name[64], v[2000];
	tc_cache *c = wb_create(fx_name(name), 1024, 256 * 1024, 8,
				TC_EVICT_NONE);
	pthread_barrier_init(&idle_bar, NULL, 2);
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, idle_after_one_write, c), 0);
	pthread_barrier_wait(&idle_bar);
	ASSERT_RC(0, tc_set(c, "x", 1, "y", 1, 0, 0)); /* this thread's slot */
	struct tc_rslot *s = NULL, *mine = tc__slot(c);
	for (uint32_t i = 0; i < c->nslots; i++)
		if (tc__ld(&c->slots[i].owner) != 0 && &c->slots[i] != mine)
			s = &c->slots[i];
	assert_non_null(s);
	tc__st(&s->epoch, tc__ld(&c->h->epoch)); /* the scribble */
	memset(v, 'v', sizeof(v));
	int bad = -1, rc = 0;
	for (int i = 0; i < 128 && bad < 0; i++) {
		v[0] = (char)i;
		if ((rc = tc_set(c, "big", 3, v, sizeof(v), 0, 0)) != 0)
			bad = i;
	}
	void *ret;
	pthread_barrier_wait(&idle_bar);
	assert_int_equal(pthread_join(th, &ret), 0);
	pthread_barrier_destroy(&idle_bar);
	ASSERT_RC(0, (int)(intptr_t)ret);
	if (bad >= 0)
		fail_msg("write %d: %s: an idle live slot's scribbled epoch pins reclamation", bad,
			 tc_strerror(rc));
	tc_close(c);
	tc_unlink(name);
}

/* ------------------------------------------------------------------ */
/* A writer never waits for its own thread                              */
/* ------------------------------------------------------------------ */

struct other_reader {
	const char *name;
	pthread_barrier_t bar;
	int rc;
};

static void *read_in_another_thread(void *p)
{
	struct other_reader *r = p;
	tc_cache *d = NULL;
	r->rc = tc_open(&d, r->name, NULL);
	if (r->rc == 0)
		r->rc = tc_read_lock(d);
	pthread_barrier_wait(&r->bar); /* in the section */
	pthread_barrier_wait(&r->bar); /* the writes are done */
	if (d) {
		tc_read_unlock(d);
		tc_close(d);
	}
	return NULL;
}

/* Overwrite "big" (2 KiB) until a write fails: its code. */
static int overwrite_until_full(tc_cache *c, int *writes)
{
	char v[2000];
	memset(v, 'v', sizeof(v));
	for (*writes = 0; *writes < 1000; (*writes)++) {
		int rc = tc_set(c, "big", 3, v, sizeof(v), 0, 0);
		if (rc)
			return rc;
	}
	return 0;
}

/*
 * A write inside its caller's own read section (tc_read_lock of the same
 * handle, kv.c's inlined enter then at depth 2) reclaims nothing early: the
 * grace period would count that section (tc__maybe_reclaim), so its
 * garbage waits; the first write after the unlock starts the grace period
 * and frees RECLAIM_STEP (4) blocks of the chain it detached.  Values of
 * one class, so memory_retired counts blocks of it exactly.
 */
static void test_a_write_reclaims_early_only_outside_its_own_section(void **state)
{
	(void)state;
	char name[64], v[1000];
	tc_cache *c = wb_create(fx_name(name), 1024, 256 * 1024, 8, TC_EVICT_NONE);
	tc_stats st;
	memset(v, 'v', sizeof(v));
	ASSERT_RC(0, tc_set(c, "k", 1, v, sizeof(v), 0, 0));
	ASSERT_RC(0, tc_read_lock(c));
	for (int i = 0; i < 40; i++) /* 40 blocks retired: 50 KiB, past 1/16 of the arena */
		ASSERT_RC(0, tc_set(c, "k", 1, v, sizeof(v), 0, 0));
	ASSERT_RC(0, tc_get_stats(c, &st));
	assert_int_equal(st.nclasses, 1);
	uint64_t size = st.classes[0].size;
	assert_int_equal(st.memory_retired, 40 * size);
	tc_read_unlock(c);
	ASSERT_RC(0, tc_set(c, "k", 1, v, sizeof(v), 0, 0));
	ASSERT_RC(0, tc_get_stats(c, &st));
	assert_int_equal(st.memory_retired, (41 - 4) * size);
	assert_int_equal(st.classes[0].free, 4);
	tc_close(c);
	(void)tc_unlink(name);
}

/*
 * A thread's section through one handle holds the block it peeked while
 * the same thread writes through another handle of the segment: those
 * writes enter and leave their own sections (kv.c's inlined enter once
 * their handle's entry is current, the call when the other's is) and
 * reclaim early (their handle is in no section), and every grace period
 * counts the first handle's slot, which stays announced.  The arena is
 * small, so a block freed too early is soon written over.  Then the same
 * with the writes through the first handle itself, nested in its section.
 */
static void test_a_peeked_block_survives_the_same_threads_writes_through_any_handle(void **state)
{
	(void)state;
	char name[64], key[16];
	uint8_t p[200], q[200];
	tc_cache *c = wb_create(fx_name(name), 1024, 64 * 1024, 8, TC_EVICT_NONE);
	tc_cache *d = NULL;
	ASSERT_RC(0, tc_open(&d, name, NULL));
	memset(p, 0x5a, sizeof(p));
	memset(q, 0xa5, sizeof(q));
	for (int round = 0; round < 2; round++) {
		tc_cache *w = round == 0 ? d : c;
		ASSERT_RC(0, tc_set(c, "key0000", 7, p, sizeof(p), 0, 0));
		ASSERT_RC(0, tc_read_lock(c));
		const void *v = NULL;
		tc_meta m;
		ASSERT_RC(0, tc_peek(c, "key0000", 7, &v, &m));
		assert_int_equal(m.len, sizeof(p));
		struct tc_rslot *mine = tc__section_slot(c);
		assert_non_null(mine);
		uint64_t announced = tc__ld(&mine->epoch);
		assert_int_not_equal(announced, 0);
		uint64_t gp = tc__ld(&c->h->epoch);
		for (int i = 0; i < 2000; i++) {
			snprintf(key, sizeof(key), "key%04d", i % 8);
			int rc = tc_set(w, key, strlen(key), q, sizeof(q), 0, 0);
			if (rc != 0 && rc != -ENOSPC)
				fail_msg("round %d write %d: %s", round, i, tc_strerror(rc));
			if (tc__ld(&mine->epoch) != announced)
				fail_msg("round %d write %d: the section's slot shows %llu, not %llu",
					 round, i, (unsigned long long)tc__ld(&mine->epoch),
					 (unsigned long long)announced);
		}
		if (memcmp(v, p, sizeof(p)) != 0)
			fail_msg("round %d: the peeked value changed under its section", round);
		/* The writes through the other handle ran grace periods; those
		 * nested in the section ran none. */
		if (round == 0)
			assert_true(tc__ld(&c->h->epoch) > gp);
		else
			assert_int_equal(tc__ld(&c->h->epoch), gp);
		tc_read_unlock(c);
		assert_int_equal(tc__ld(&mine->epoch), 0);
		ASSERT_RC(0, tc_reclaim(c, NULL));
	}
	tc_close(d);
	tc_close(c);
	(void)tc_unlink(name);
}

/*
 * A thread inside a read section through one handle that writes through
 * another handle of the same segment holds back its own writes' garbage:
 * nothing it waits for can change while it waits, so a write short of
 * memory fails with -ENOSPC at once instead of sleeping up to 20 ms
 * (tc__make_room).  A section of another thread is worth the wait, as
 * before.
 */
static void test_a_writer_never_waits_for_its_own_section(void **state)
{
	(void)state;
	char name[64];
	tc_cache *c = wb_create(fx_name(name), 1024, 256 * 1024, 8,
				TC_EVICT_NONE);
	tc_cache *d = NULL;
	ASSERT_RC(0, tc_open(&d, name, NULL));
	ASSERT_RC(0, tc_read_lock(d));
	uint64_t slept = tc__room_sleeps();
	int n = 0;
	ASSERT_RC(-ENOSPC, overwrite_until_full(c, &n));
	assert_true(n > 10);
	assert_int_equal(tc__room_sleeps() - slept, 0);
	tc_read_unlock(d);
	ASSERT_RC(0, tc_reclaim(c, NULL));
	ASSERT_RC(0, overwrite_until_full(c, &n));

	/* Another thread's section: the write waits for it, then fails. */
	struct other_reader r = { .name = name };
	pthread_barrier_init(&r.bar, NULL, 2);
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, read_in_another_thread, &r), 0);
	pthread_barrier_wait(&r.bar);
	slept = tc__room_sleeps();
	int rc = overwrite_until_full(c, &n);
	uint64_t waits = tc__room_sleeps() - slept;
	pthread_barrier_wait(&r.bar);
	pthread_join(th, NULL);
	pthread_barrier_destroy(&r.bar);
	ASSERT_RC(0, r.rc);
	ASSERT_RC(-ENOSPC, rc);
	assert_true(waits > 0);
	tc_close(d);
	tc_close(c);
	tc_unlink(name);
}

/* ------------------------------------------------------------------ */
/* The global epoch scribbled to 0 or to its largest value              */
/* ------------------------------------------------------------------ */

/*
 * A reader that enters while the epoch reads 0 announces 1 (a slot showing
 * 0 would look quiescent).  A block unlinked while the epoch still reads 0
 * was stamped 0, below that 1: the next grace period freed it under the
 * reader, and the churn overwrote the value its tc_peek held.  Stamps are
 * taken the same way as announcements now (0 counts as 1).
 */
static void test_epoch_scribbled_to_0_frees_nothing_a_reader_holds(void **state)
{
	(void)state;
	char name[64];
	tc_cache *c = wb_create(fx_name(name), 1024, 1 << 20, 8,
				TC_EVICT_NONE);
	ASSERT_RC(0, tc_set(c, "k", 1, "v2", 2, 0, 0));
	tc__st(&c->h->epoch, 0); /* the scribble */
	struct rd r = { .c = c };
	pthread_barrier_init(&r.bar, NULL, 2);
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, reader_thread, &r), 0);
	pthread_barrier_wait(&r.bar);
	int set_rc = tc_set(c, "k", 1, "v3", 2, 0, 0); /* retires v2, which the reader holds */
	uint64_t freed = reclaim(c);
	churn(c);
	pthread_barrier_wait(&r.bar);
	pthread_barrier_wait(&r.bar);
	pthread_join(th, NULL);
	pthread_barrier_destroy(&r.bar);
	ASSERT_RC(0, r.lock_rc);
	ASSERT_RC(0, r.peek_rc);
	ASSERT_RC(0, set_rc);
	assert_int_equal(freed, 0);
	assert_int_equal(r.intact, 1);
	assert_true(reclaim(c) >= 1); /* v2, now that the reader left */
	assert_int_equal(retired(c), 0);
	tc_close(c);
	tc_unlink(name);
}

/*
 * The epoch scribbled to UINT64_MAX.  The next grace period's increment
 * wrapped it to 0: a reader that had announced UINT64_MAX then held a
 * block stamped 0 (or 1), far below, and the grace period after freed it
 * under the reader.  The epoch no longer wraps (it stays at its largest
 * value, where a block is freed only by a grace period that finds no slot
 * active: blocks stamped UINT64_MAX were freed by none before, the retire
 * list never emptied and every write short of memory waited its 20 ms,
 * then failed), and tc_audit brings it back to 1.
 */
static void test_epoch_scribbled_to_its_largest_value(void **state)
{
	(void)state;
	char name[64], v[2000];
	tc_cache *c = wb_create(fx_name(name), 1024, 256 * 1024, 8,
				TC_EVICT_NONE);
	ASSERT_RC(0, tc_set(c, "k", 1, "v2", 2, 0, 0));
	ASSERT_RC(0, tc_set(c, "z", 1, "z1", 2, 0, 0));
	tc__st(&c->h->epoch, UINT64_MAX); /* the scribble */
	struct rd r = { .c = c };
	pthread_barrier_init(&r.bar, NULL, 2);
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, reader_thread, &r), 0);
	pthread_barrier_wait(&r.bar);
	ASSERT_RC(0, tc_set(c, "z", 1, "z2", 2, 0, 0)); /* something to reclaim */
	uint64_t freed1 = reclaim(c); /* the grace period that wrapped the epoch */
	int set_rc = tc_set(c, "k", 1, "v3", 2, 0, 0); /* retires v2, which the reader holds */
	uint64_t freed2 = reclaim(c);
	churn(c);
	pthread_barrier_wait(&r.bar);
	pthread_barrier_wait(&r.bar);
	pthread_join(th, NULL);
	pthread_barrier_destroy(&r.bar);
	ASSERT_RC(0, r.lock_rc);
	ASSERT_RC(0, r.peek_rc);
	ASSERT_RC(0, set_rc);
	assert_int_equal(freed1, 0);
	assert_int_equal(freed2, 0);
	assert_int_equal(r.intact, 1);
	/* No reader now: everything retired is freed, whatever its stamp,
	 * and overwrites that need it succeed. */
	assert_true(reclaim(c) >= 2);
	assert_int_equal(retired(c), 0);
	memset(v, 'v', sizeof(v));
	for (int i = 0; i < 128; i++) {
		v[0] = (char)i;
		int rc = tc_set(c, "big", 3, v, sizeof(v), 0, 0);
		if (rc != 0)
			fail_msg("write %d: %s", i, tc_strerror(rc));
	}
	assert_int_equal(tc__ld(&c->h->epoch), UINT64_MAX);
	tc_audit_report rep;
	ASSERT_RC(0, tc_audit(c, &rep));
	assert_int_equal(tc__ld(&c->h->epoch), 1);
	assert_int_equal(retired(c), 0);
	tc_close(c);
	tc_unlink(name);
}

/* ------------------------------------------------------------------ */
/* TICKCACHE_NO_MEMBARRIER=1                                            */
/* ------------------------------------------------------------------ */

static void test_full_fence_fallback_behaves_the_same(void **state)
{
	(void)state;
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		setenv("TICKCACHE_NO_MEMBARRIER", "1", 1);
		execl(self_exe, self_exe, "--no-membarrier", (char *)NULL);
		_exit(127);
	}
	assert_int_equal(fx_wait(pid), 0);
}

int main(int argc, char **argv)
{
	self_exe = "/proc/self/exe";
	(void)argv;
	const struct CMUnitTest fallback[] = {
		FX_TEST(test_thread_reader_holds_back_only_later_retirements),
		FX_TEST(test_process_reader_holds_back_only_later_retirements),
		FX_TEST(test_nested_sections_end_at_outermost_unlock),
		FX_TEST(test_plain_and_general_reads_agree),
	};
	if (argc > 1 && strcmp(argv[1], "--no-membarrier") == 0) {
		if (!getenv("TICKCACHE_NO_MEMBARRIER"))
			return 99;
		return cmocka_run_group_tests_name("no_membarrier", fallback, NULL, NULL);
	}
	const struct CMUnitTest tests[] = {
		FX_TEST(test_thread_reader_holds_back_only_later_retirements),
		FX_TEST(test_process_reader_holds_back_only_later_retirements),
		FX_TEST(test_nested_sections_end_at_outermost_unlock),
		FX_TEST(test_plain_and_general_reads_agree),
		FX_TEST(test_plain_reads_see_the_segment_state),
		FX_TEST(test_a_key_behind_other_candidates_of_its_tag),
		FX_TEST(test_handles_in_turns_keep_their_own_sections),
		FX_TEST(test_one_get_in_64_is_timed_per_handle),
		FX_TEST(test_child_after_fork_reads_through_its_own_slot),
		FX_TEST(test_thread_exit_and_close_give_slots_back),
		FX_TEST(test_killed_reader_holds_reclaim_until_cleared),
		FX_TEST(test_slot_of_killed_cleaner_is_cleared_again),
		FX_TEST(test_killed_writer_leaves_no_leak_and_true_live_count),
		FX_TEST(test_idle_writer_does_not_hold_retired_memory_hostage),
		FX_TEST(test_scribbled_epoch_of_a_free_slot_is_cleared),
		FX_TEST(test_scribbled_free_slot_with_a_record_of_no_attached_process_is_cleared),
		FX_TEST(test_scribbled_free_slot_with_a_record_without_start_time_is_cleared),
		FX_TEST(test_an_attach_record_naming_a_kernel_thread_pins_nothing),
		FX_TEST(test_a_free_slot_with_an_incomplete_record_is_cleared),
		FX_TEST(test_a_slot_being_cleaned_by_a_kernel_thread_is_taken_over),
		FX_TEST(test_a_writer_never_waits_for_its_own_section),
		FX_TEST(test_a_write_reclaims_early_only_outside_its_own_section),
		FX_TEST(test_a_peeked_block_survives_the_same_threads_writes_through_any_handle),
		FX_TEST(test_scribbled_name_in_a_free_slot_retires_nothing),
		FX_TEST(test_a_dead_slot_never_retires_the_published_anchor),
		FX_TEST(test_a_dead_slot_never_retires_a_published_list_element),
		FX_TEST(test_a_ret_record_never_names_a_block_of_another_kind),
		FX_TEST(test_a_scribbled_run_word_never_retires_another_runs_block),
		FX_TEST(test_live_reader_whose_owner_word_reads_0_keeps_its_epoch),
		FX_TEST(test_live_reader_without_start_time_whose_owner_word_reads_0_keeps_its_epoch),
		FX_TEST(test_epoch_scribbled_to_0_frees_nothing_a_reader_holds),
		FX_TEST(test_epoch_scribbled_to_its_largest_value),
		FX_TEST(test_scribbled_epoch_of_an_idle_live_slot_pins_nothing),
		FX_TEST(test_full_fence_fallback_behaves_the_same),
	};
	return fx_run(tests);
}
