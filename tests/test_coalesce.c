/* SPDX-License-Identifier: MIT */
/*
 * test_coalesce.c - free memory moves to the size class that needs it
 * (shm/coalesce.c).
 *
 * - TC_EVICT_NONE: an arena carved into small blocks, then emptied, stores
 *   large values again; the keys that stayed are intact; tc_audit finds
 *   nothing to recover.
 * - TC_EVICT_LRU: an arena full of small values takes large ones: the
 *   allocator evicts a window of the arena by address and re-cuts it.
 * - The window search: a run (free, or under LRU evictable) that crosses
 *   df_hand is found whole at the first call; a run longer than a search's
 *   budget of headers is found; a run 1 to 3 units over a large block
 *   takes one more block; df_nofit is recorded only when nothing fits.
 * - Free blocks that no list names: the drain gives up at once when no
 *   other slot is in a read section (no popper can exist), and after its
 *   wait when one is; tc_audit lists them again.  An allocator that marks
 *   the last claimed block OUT and leaves its section during a pass does
 *   not make the drain give up a window that is all OUT.
 * - A turn word scribbled to name a live process and no slot holds nothing.
 * - A coalescer killed (SIGKILL) at each point of its work: the next
 *   allocation finishes or undoes the work, no value is harmed, and
 *   tc_audit then finds nothing lost.
 * - Processes write values whose sizes shift while readers verify every
 *   value (self-checking: key, writer, sequence, checksum); afterwards
 *   every key holds exactly its writer's last value and tc_audit finds
 *   nothing lost.
 */
#include "whitebox.h"
#include "blackbox.h"

#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>

#define KEEP_EVERY 8  /* of the small keys, every 8th stays */

static uint64_t merges(tc_cache *c)
{
	tc_stats st;
	ASSERT_RC(0, tc_get_stats(c, &st));
	return st.merges;
}

/* Small value of key I: 24 bytes naming it. */
static void small_val(char *v, unsigned i)
{
	memset(v, 0, 24);
	snprintf(v, 24, "small-%u", i);
}

static void big_val(unsigned char *v, size_t len, unsigned i)
{
	for (size_t j = 0; j < len; j++)
		v[j] = (unsigned char)(i * 131 + j * 7);
}

/*
 * Fill an EVICT_NONE arena with small values until it is full, then delete
 * all but every KEEP_EVERY-th key and the first run of keys entirely (so
 * that a long run of free blocks exists).  Returns the number written.
 */
static unsigned fill_small_then_thin(tc_cache *c)
{
	char k[32], v[24];
	unsigned n = 0;
	for (;; n++) {
		int kl = snprintf(k, sizeof(k), "s%u", n);
		small_val(v, n);
		int rc = tc_set(c, k, (size_t)kl, v, sizeof(v), 0, 0);
		if (rc == -ENOSPC)
			break;
		ASSERT_RC(0, rc);
	}
	assert_true(n > 1000);
	/* Deleted from the top down, then reclaimed: the free list holds the
	 * low blocks (the first window) below the others, so a coalescer
	 * pops ordinary blocks before it reaches its own. */
	for (unsigned i = n; i-- > 0;) {
		if (i % KEEP_EVERY == 0 && i >= n / 2)
			continue;
		int kl = snprintf(k, sizeof(k), "s%u", i);
		ASSERT_RC(0, tc_del(c, k, (size_t)kl));
	}
	ASSERT_RC(0, tc_reclaim(c, NULL));
	return n;
}

/* Small key I holds its own value. */
static void expect_small(tc_cache *c, unsigned i)
{
	char k[32], v[24], buf[64];
	tc_meta m;
	int kl = snprintf(k, sizeof(k), "s%u", i);
	ASSERT_RC(0, tc_get(c, k, (size_t)kl, buf, sizeof(buf), &m));
	small_val(v, i);
	assert_int_equal(m.len, sizeof(v));
	assert_memory_equal(buf, v, sizeof(v));
}

static void expect_small_keepers(tc_cache *c, unsigned n)
{
	char k[32], v[24], buf[64];
	tc_meta m;
	for (unsigned i = 0; i < n; i++) {
		int kl = snprintf(k, sizeof(k), "s%u", i);
		int rc = tc_get(c, k, (size_t)kl, buf, sizeof(buf), &m);
		if (i % KEEP_EVERY == 0 && i >= n / 2) {
			ASSERT_RC(0, rc);
			small_val(v, i);
			assert_int_equal(m.len, sizeof(v));
			assert_memory_equal(buf, v, sizeof(v));
		} else {
			ASSERT_RC(-ENOENT, rc);
		}
	}
}

static void expect_big(tc_cache *c, unsigned i, size_t len)
{
	unsigned char *want = malloc(len), *got = malloc(len);
	char k[32];
	tc_meta m;
	int kl = snprintf(k, sizeof(k), "b%u", i);
	big_val(want, len, i);
	ASSERT_RC(0, tc_get(c, k, (size_t)kl, got, len, &m));
	assert_int_equal(m.len, len);
	assert_memory_equal(got, want, len);
	free(want);
	free(got);
}

static int set_big(tc_cache *c, unsigned i, size_t len)
{
	unsigned char *v = malloc(len);
	char k[32];
	int kl = snprintf(k, sizeof(k), "b%u", i);
	big_val(v, len, i);
	int rc = tc_set(c, k, (size_t)kl, v, len, 0, 0);
	free(v);
	return rc;
}

/* An audit of the quiet segment recovers nothing and agrees on the keys. */
static void expect_clean_audit(tc_cache *c)
{
	tc_audit_report rep;
	ASSERT_RC(0, tc_audit(c, &rep));
	assert_int_equal(rep.recovered, 0);
	assert_int_equal(rep.live_before, rep.live_after);
}

/* ------------------------------------------------------------------ */

static void test_free_small_blocks_become_large_ones(void **state)
{
	(void)state;
	char name[64];
	tc_cache *c = wb_create(fx_name(name), 1u << 16, 1u << 20, 8,
				TC_EVICT_NONE);
	unsigned n = fill_small_then_thin(c);
	assert_int_equal(merges(c), 0);
	/* Before coalescing existed this failed with -ENOSPC. */
	for (unsigned i = 0; i < 8; i++)
		ASSERT_RC(0, set_big(c, i, 16000));
	assert_true(merges(c) >= 2); /* a window holds up to 64 KiB: 4 of them */
	for (unsigned i = 0; i < 8; i++)
		expect_big(c, i, 16000);
	expect_small_keepers(c, n);
	assert_int_equal(tc__ld(&c->h->df_turn), 0);
	assert_int_equal(tc__ld(&c->h->df_pending), 0);
	expect_clean_audit(c);
	/* And back: the large blocks, freed, serve small values again. */
	char k[32];
	for (unsigned i = 0; i < 8; i++) {
		int kl = snprintf(k, sizeof(k), "b%u", i);
		ASSERT_RC(0, tc_del(c, k, (size_t)kl));
	}
	ASSERT_RC(0, tc_reclaim(c, NULL));
	/* 200-byte values: a class that never had a block. */
	uint64_t m0 = merges(c);
	for (unsigned i = 0; i < 300; i++) {
		unsigned char v[200];
		big_val(v, sizeof(v), i);
		int kl = snprintf(k, sizeof(k), "t%u", i);
		ASSERT_RC(0, tc_set(c, k, (size_t)kl, v, sizeof(v), 0, 0));
	}
	assert_true(merges(c) > m0);
	for (unsigned i = 0; i < 300; i++) {
		unsigned char v[200], got[200];
		tc_meta m;
		big_val(v, sizeof(v), i);
		int kl = snprintf(k, sizeof(k), "t%u", i);
		ASSERT_RC(0, tc_get(c, k, (size_t)kl, got, sizeof(got), &m));
		assert_memory_equal(got, v, sizeof(v));
	}
	expect_small_keepers(c, n);
	expect_clean_audit(c);
	tc_close(c);
	tc_unlink(name);
}

static void test_one_free_block_too_small_is_still_enospc(void **state)
{
	(void)state;
	char name[64];
	tc_cache *c = wb_create(fx_name(name), 1u << 16, 1u << 20, 8,
				TC_EVICT_NONE);
	unsigned n = 0;
	char k[32], v[24];
	for (;; n++) {
		int kl = snprintf(k, sizeof(k), "s%u", n);
		small_val(v, n);
		int rc = tc_set(c, k, (size_t)kl, v, sizeof(v), 0, 0);
		if (rc == -ENOSPC)
			break;
		ASSERT_RC(0, rc);
	}
	/* Every other key deleted: lots of free memory, no two blocks adjacent. */
	for (unsigned i = 0; i < n; i += 2) {
		int kl = snprintf(k, sizeof(k), "s%u", i);
		ASSERT_RC(0, tc_del(c, k, (size_t)kl));
	}
	ASSERT_RC(0, tc_reclaim(c, NULL));
	ASSERT_RC(-ENOSPC, set_big(c, 0, 4000));
	assert_int_equal(merges(c), 0);
	/* Nothing was harmed by the attempt. */
	for (unsigned i = 1; i < n; i += 2)
		expect_small(c, i);
	expect_clean_audit(c);
	tc_close(c);
	tc_unlink(name);
}

static void test_lru_makes_room_for_a_new_size(void **state)
{
	(void)state;
	char name[64], k[32], v[24];
	tc_cache *c = wb_create(fx_name(name), 1u << 16, 2u << 20, 8,
				TC_EVICT_LRU);
	for (unsigned i = 0; i < 60000; i++) {
		int kl = snprintf(k, sizeof(k), "s%u", i);
		small_val(v, i);
		ASSERT_RC(0, tc_set(c, k, (size_t)kl, v, sizeof(v), 0, 0));
	}
	tc_stats st;
	ASSERT_RC(0, tc_get_stats(c, &st));
	assert_true(st.evictions > 0); /* the arena was full of small blocks */
	for (unsigned i = 0; i < 200; i++)
		ASSERT_RC(0, set_big(c, i, 16000));
	/* The newest large values are there (LRU may drop older ones); every
	 * small key still present holds its own value. */
	expect_big(c, 199, 16000);
	unsigned left = 0;
	for (unsigned i = 0; i < 60000; i++) {
		char buf[64];
		tc_meta m;
		int kl = snprintf(k, sizeof(k), "s%u", i);
		int rc = tc_get(c, k, (size_t)kl, buf, sizeof(buf), &m);
		if (rc == -ENOENT)
			continue;
		ASSERT_RC(0, rc);
		small_val(v, i);
		assert_memory_equal(buf, v, sizeof(v));
		left++;
	}
	assert_true(merges(c) > 0);
	ASSERT_RC(0, tc_get_stats(c, &st));
	assert_true(st.entries >= left);
	expect_clean_audit(c);
	tc_close(c);
	tc_unlink(name);
}

/* ------------------------------------------------------------------ */
/* The window search: where it starts, its budget, a run's last block   */
/* ------------------------------------------------------------------ */

/*
 * Keys s0, s1, ... with VLEN-byte values (every byte the key's number)
 * until the arena is full.  In a fresh arena every block is carved in
 * order: key I's block starts at unit BASE + I * *UNITS (checked for the
 * first and the last key).  Returns the number of keys.
 */
static unsigned fill_uniform(tc_cache *c, size_t vlen, uint64_t base, uint64_t *units)
{
	char k[32];
	unsigned char v[64];
	unsigned n = 0;
	assert_true(vlen <= sizeof(v));
	for (;; n++) {
		int kl = snprintf(k, sizeof(k), "s%u", n);
		memset(v, (int)(n & 0xff), vlen);
		int rc = tc_set(c, k, (size_t)kl, v, vlen, 0, 0);
		if (rc == -ENOSPC)
			break;
		ASSERT_RC(0, rc);
	}
	assert_true(n > 1000);
	struct tc_entry *e0 = (struct tc_entry *)(c->arena + base * TC_BLOCK_UNIT);
	*units = tc__class_size(e0->cls) / TC_BLOCK_UNIT;
	struct tc_entry *el =
		(struct tc_entry *)(c->arena + (base + (n - 1) * *units) * TC_BLOCK_UNIT);
	assert_int_equal(el->cls, e0->cls);
	assert_int_equal(el->state, TC_BLK_LIVE);
	assert_int_equal(el->klen, snprintf(k, sizeof(k), "s%u", n - 1));
	return n;
}

static void del_uniform(tc_cache *c, unsigned from, unsigned to, unsigned step)
{
	char k[32];
	for (unsigned i = from; i < to; i += step) {
		int kl = snprintf(k, sizeof(k), "s%u", i);
		ASSERT_RC(0, tc_del(c, k, (size_t)kl));
	}
	ASSERT_RC(0, tc_reclaim(c, NULL));
}

/* Keys s0 .. s(N-1) hold their VLEN-byte values, but for those deleted
 * (DELETED(i) true), which are gone. */
static void expect_uniform(tc_cache *c, unsigned n, size_t vlen, bool (*deleted)(unsigned))
{
	char k[32];
	unsigned char want[64], got[64];
	tc_meta m;
	for (unsigned i = 0; i < n; i++) {
		int kl = snprintf(k, sizeof(k), "s%u", i);
		int rc = tc_get(c, k, (size_t)kl, got, sizeof(got), &m);
		if (deleted(i)) {
			ASSERT_RC(-ENOENT, rc);
			continue;
		}
		ASSERT_RC(0, rc);
		memset(want, (int)(i & 0xff), vlen);
		assert_int_equal(m.len, vlen);
		assert_memory_equal(got, want, vlen);
	}
}

#define HAND_FROM 1000u /* the free run: keys HAND_FROM .. HAND_FROM + HAND_RUN - 1 */
#define HAND_RUN  172u  /* 96-byte blocks: 1032 units, a 16 KiB block (1024) and 128 B */
#define SPARSE    2000u /* then every other key from here: as many bytes, no run */

static bool hand_deleted(unsigned i)
{
	return (i >= HAND_FROM && i < HAND_FROM + HAND_RUN) ||
	       (i >= SPARSE && i < SPARSE + 2 * HAND_RUN && (i - SPARSE) % 2 == 0);
}

/*
 * The only free run of the arena is just large enough for a 16 KiB block,
 * and the last search left df_hand in its middle.  Before the fix the
 * search went from df_hand to the end and from the start to df_hand,
 * found each half too small, recorded df_nofit and returned -ENOSPC (and
 * the next 63 calls skipped the search): the run across df_hand must be
 * found whole, at the first call.  When the same free bytes are scattered,
 * nothing fits and the search records exactly the free bytes.
 */
static void test_a_run_across_the_hand_is_found_whole(void **state)
{
	(void)state;
	char name[64];
	tc_cache *c = wb_create(fx_name(name), 1u << 16, 1u << 20, 8,
				TC_EVICT_NONE);
	uint64_t bu;
	unsigned n = fill_uniform(c, 24, 0, &bu);
	assert_int_equal(bu, 6); /* 96-byte blocks */
	assert_true(n > SPARSE + 2 * HAND_RUN);
	del_uniform(c, HAND_FROM, HAND_FROM + HAND_RUN, 1);
	tc__st(&c->h->df_hand, (HAND_FROM + HAND_RUN / 2) * bu);
	tc__st(&c->h->df_nofit, 0);
	ASSERT_RC(0, set_big(c, 0, 16000));
	assert_int_equal(merges(c), 1);
	assert_int_equal(tc__ld(&c->h->df_nofit), 0);
	/* The next search starts past the window. */
	assert_int_equal(tc__ld(&c->h->df_hand), (HAND_FROM + HAND_RUN) * bu);
	expect_big(c, 0, 16000);
	/* 172 blocks free again, every other one: no window anywhere (the
	 * 128 bytes left of the first window are free too). */
	del_uniform(c, SPARSE, SPARSE + 2 * HAND_RUN, 2);
	ASSERT_RC(-ENOSPC, set_big(c, 1, 16000));
	assert_int_equal(tc__ld(&c->h->df_nofit), HAND_RUN * 96 + 128);
	assert_int_equal(tc__ld(&c->h->df_hand), 0);
	assert_int_equal(merges(c), 1);
	expect_big(c, 0, 16000);
	expect_uniform(c, n, 24, hand_deleted);
	expect_clean_audit(c);
	tc_close(c);
	tc_unlink(name);
}

/*
 * Under LRU the search also looks for a run of blocks that can be made
 * free, with the same wrap.  An arena of cold 96-byte keys (reference bits
 * cleared), df_hand in its middle, a window of 896 KiB wanted: neither
 * half of the arena holds it.  Before the fix one search found nothing
 * and evicted nothing (the allocator's next round started again from the
 * arena's start); the run across df_hand is found at once, and exactly
 * its keys are evicted, from the arena's start.
 */
static void test_an_evictable_run_across_the_hand_is_found_whole(void **state)
{
	(void)state;
	char name[64], k[32];
	unsigned char v[24];
	tc_cache *c = wb_create(fx_name(name), 1u << 16, 1u << 20, 8,
				TC_EVICT_LRU);
	unsigned n = (unsigned)(c->arena_bytes / 96);
	for (unsigned i = 0; i < n; i++) {
		int kl = snprintf(k, sizeof(k), "s%u", i);
		memset(v, (int)(i & 0xff), sizeof(v));
		ASSERT_RC(0, tc_set(c, k, (size_t)kl, v, sizeof(v), 0, 0));
	}
	tc_stats st;
	ASSERT_RC(0, tc_get_stats(c, &st));
	assert_int_equal(st.entries, n);
	assert_int_equal(st.evictions, 0);
	for (unsigned i = 0; i < n; i++) {
		struct tc_entry *e = (struct tc_entry *)(c->arena + i * 96);
		assert_int_equal(e->state, TC_BLK_LIVE);
		assert_int_equal(tc__class_size(e->cls), 96);
		e->refbit = 0;
	}
	uint32_t cls = tc__class_of(896u << 10);
	uint64_t need = tc__class_size(cls) / TC_BLOCK_UNIT;
	assert_int_equal(need, 57344);
	assert_true(n * 6 / 2 < need);
	tc__st(&c->h->df_hand, (n / 2) * 6);
	struct tc_rslot *s = tc__slot(c);
	assert_non_null(s);
	/* Not free yet: the window's keys are evicted, the next call takes it. */
	assert_null(tc__coalesce(c, s, cls));
	unsigned evicted = (unsigned)((need + 4 + 5) / 6); /* 9558 blocks, 57348 units */
	ASSERT_RC(0, tc_get_stats(c, &st));
	assert_int_equal(st.entries, n - evicted);
	assert_int_equal(tc__ld(&c->h->df_hand), 0);
	for (unsigned i = 0; i < n; i++) {
		unsigned char got[24];
		tc_meta m;
		int kl = snprintf(k, sizeof(k), "s%u", i);
		int rc = tc_get(c, k, (size_t)kl, got, sizeof(got), &m);
		if (i < evicted) {
			ASSERT_RC(-ENOENT, rc);
			continue;
		}
		ASSERT_RC(0, rc);
		memset(v, (int)(i & 0xff), sizeof(v));
		assert_int_equal(m.len, sizeof(v));
		assert_memory_equal(got, v, sizeof(v));
	}
	tc_close(c);
	tc_unlink(name);
}

#define SMALL_KEPT 100u   /* live 80-byte blocks at the arena's start, */
#define SMALL_RUN  16400u /* then free ones (16384 hold a 1.25 MiB block), then live ones */

static bool small_deleted(unsigned i)
{
	return i >= SMALL_KEPT && i < SMALL_KEPT + SMALL_RUN;
}

/*
 * A 1 MiB value (the largest class, 1.25 MiB: 16384 blocks of 80 bytes,
 * the smallest a key takes) in a 4 MiB arena of 80-byte blocks: 100 live,
 * 16400 free, the rest live.  The free run ends past the 16384 headers a
 * search reads.  Before the fix a search gave up inside the run and the
 * next one started there: each saw a part of the run, never the whole
 * (-ENOSPC, every time).  An open run is followed past the budget, and the
 * value fits at the first call.
 */
static void test_the_largest_value_fits_in_an_arena_of_the_smallest_blocks(void **state)
{
	(void)state;
	char name[64];
	tc_cache *c = wb_create(fx_name(name), 1u << 16, 4u << 20, 8,
				TC_EVICT_NONE);
	uint64_t bu;
	unsigned n = fill_uniform(c, 8, 0, &bu);
	assert_int_equal(bu, 5); /* 80-byte blocks */
	assert_int_equal(tc__class_size(TC_CLASSES_USED - 1), 81920 * TC_BLOCK_UNIT);
	assert_true(n > SMALL_KEPT + SMALL_RUN + 16384);
	del_uniform(c, SMALL_KEPT, SMALL_KEPT + SMALL_RUN, 1);
	tc__st(&c->h->df_hand, 0);
	ASSERT_RC(0, set_big(c, 0, TC_VALUE_MAX));
	assert_int_equal(merges(c), 1);
	expect_big(c, 0, TC_VALUE_MAX);
	expect_uniform(c, n, 8, small_deleted);
	expect_clean_audit(c);
	tc_close(c);
	tc_unlink(name);
}

#define OVER_RUN 1024u /* 80-byte blocks after one of 96: 6 + 5120 units */

static bool over_deleted(unsigned i)
{
	return i < OVER_RUN;
}

/*
 * A window for a block larger than 64 KiB (an 80 KiB one, 5120 units)
 * grows up to the block's size.  The free run is one 96-byte block and
 * 1024 of 80 bytes: 5126 units, 6 over.  Before the fix the run stopped
 * growing at 5121 units (1 over: no block of 1 unit tiles it), was
 * dropped, and the search found nothing (-ENOSPC); one more block makes it
 * fit.
 */
static void test_a_run_one_unit_over_takes_one_more_block(void **state)
{
	(void)state;
	char name[64];
	unsigned char v[24];
	tc_cache *c = wb_create(fx_name(name), 1u << 16, 1u << 20, 8,
				TC_EVICT_NONE);
	memset(v, 0xa5, sizeof(v));
	ASSERT_RC(0, tc_set(c, "a", 1, v, 20, 0, 0));
	struct tc_entry *a = (struct tc_entry *)c->arena;
	assert_int_equal(tc__class_size(a->cls), 96);
	uint64_t bu;
	unsigned n = fill_uniform(c, 8, 6, &bu);
	assert_int_equal(bu, 5);
	ASSERT_RC(0, tc_del(c, "a", 1));
	del_uniform(c, 0, OVER_RUN, 1);
	tc__st(&c->h->df_hand, 0);
	ASSERT_RC(0, set_big(c, 0, 70000)); /* 70066 bytes: the 80 KiB class */
	assert_int_equal(merges(c), 1);
	expect_big(c, 0, 70000);
	expect_uniform(c, n, 8, over_deleted);
	expect_clean_audit(c);
	tc_close(c);
	tc_unlink(name);
}

/* ------------------------------------------------------------------ */
/* A coalescer killed at each point                                     */
/* ------------------------------------------------------------------ */

static int kill_point;

static void die_at(int point)
{
	if (point == kill_point)
		raise(SIGKILL);
}

static void test_killed_coalescer_is_finished_or_undone(void **state)
{
	(void)state;
	static const int points[] = { TC_DF_HOOK_CLAIMED, TC_DF_HOOK_HELD, TC_DF_HOOK_REWRITE,
				      TC_DF_HOOK_PUSH, TC_DF_HOOK_LIVE };
	for (size_t p = 0; p < sizeof(points) / sizeof(points[0]); p++) {
		char name[64];
		tc_cache *c = wb_create(fx_name(name), 1u << 16, 1u << 20, 8,
					TC_EVICT_NONE);
		unsigned n = fill_small_then_thin(c);
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			tc_cache *d = NULL;
			if (tc_open(&d, name, NULL) != 0)
				_exit(BB_EXIT_SETUP);
			kill_point = points[p];
			tc__df_test_hook = die_at;
			int rc = set_big(d, 100, 16000);
			bb_child_fail("point %d not reached (set: %s)", points[p], tc_strerror(rc));
			_exit(BB_EXIT_FAIL);
		}
		assert_int_equal(fx_wait(pid), 128 + SIGKILL);
		/* The dead coalescer still holds its turn, mid-work. */
		assert_int_not_equal(tc__ld(&c->h->df_turn), 0);
		assert_int_not_equal(tc__ld(&c->h->df_phase) >> 56, TC_DF_IDLE);
		expect_small_keepers(c, n);
		if (p % 2 == 0) {
			/* Clearing the dead slot (sweeper, writers short of
			 * memory, shm-inspect readers --clean) finishes it. */
			uint32_t cleared = 0;
			ASSERT_RC(0, tc_readers_clean(c, &cleared));
			assert_int_equal(cleared, 1);
			assert_int_equal(tc__ld(&c->h->df_turn), 0);
			ASSERT_RC(0, set_big(c, 1, 16000));
		} else {
			/* The next coalescer takes the dead one's turn over:
			 * 30000-byte values need a class nobody has. */
			ASSERT_RC(0, set_big(c, 1, 30000));
			expect_big(c, 1, 30000);
			tc__df_test_hook = NULL;
			char k1[] = "b1";
			ASSERT_RC(0, tc_del(c, k1, 2));
			ASSERT_RC(0, set_big(c, 1, 16000));
		}
		expect_big(c, 1, 16000);
		assert_int_equal(tc__ld(&c->h->df_phase) >> 56, TC_DF_IDLE);
		assert_int_equal(tc__ld(&c->h->df_pending), 0);
		assert_int_equal(tc__ld(&c->h->df_held), 0);
		expect_small_keepers(c, n);
		/* The child's key: present only if it was published (never, here). */
		char buf[8];
		ASSERT_RC(-ENOENT, tc_get(c, "b100", 4, buf, sizeof(buf), NULL));
		for (unsigned i = 2; i < 6; i++)
			ASSERT_RC(0, set_big(c, i, 16000));
		for (unsigned i = 1; i < 6; i++)
			expect_big(c, i, 16000);
		expect_clean_audit(c);
		/* Everything deleted: the arena is empty, nothing was lost. */
		char k[32];
		for (unsigned i = 0; i < n; i++) {
			int kl = snprintf(k, sizeof(k), "s%u", i);
			(void)tc_del(c, k, (size_t)kl);
		}
		for (unsigned i = 1; i < 6; i++) {
			int kl = snprintf(k, sizeof(k), "b%u", i);
			ASSERT_RC(0, tc_del(c, k, (size_t)kl));
		}
		ASSERT_RC(0, tc_reclaim(c, NULL));
		tc_stats st;
		ASSERT_RC(0, tc_get_stats(c, &st));
		assert_int_equal(st.entries, 0);
		assert_int_equal(st.memory_used, 0);
		tc_close(c);
		tc_unlink(name);
	}
}

/* ------------------------------------------------------------------ */
/* A scribbled coalescer record is never taken for work to redo         */
/* ------------------------------------------------------------------ */

static void test_scribbled_coalescer_record_harms_nothing(void **state)
{
	(void)state;
	char name[64], k[32], v[24];
	tc_cache *c = wb_create(fx_name(name), 4096, 1u << 20, 8,
				TC_EVICT_NONE);
	for (unsigned i = 0; i < 2000; i++) {
		int kl = snprintf(k, sizeof(k), "s%u", i);
		small_val(v, i);
		ASSERT_RC(0, tc_set(c, k, (size_t)kl, v, sizeof(v), 0, 0));
	}
	/* A lease of a dead holder, "rewriting" a window full of live keys,
	 * with a held chain naming a block on a free list... all scribbled. */
	static const uint64_t phases[] = { TC_DF_CLAIM, TC_DF_REWRITE, TC_DF_PUSH };
	for (int p = 0; p < 3; p++) {
		tc__st(&c->h->df_start, 0);
		tc__st(&c->h->df_units, 2048);
		tc__st(&c->h->df_cls, 0);
		tc__st(&c->h->df_phase, phases[p] << 56 | 12345);
		tc__st(&c->h->df_held, 1);
		tc__st(&c->h->df_turn, (uint64_t)0x7ffffff0 << 32 | 1);
		tc__coalesce_recover(c, tc__slot(c));
		assert_int_equal(tc__ld(&c->h->df_turn), 0);
		for (unsigned i = 0; i < 2000; i++)
			expect_small(c, i);
	}
	expect_clean_audit(c);
	tc_close(c);
	tc_unlink(name);
}

/* ------------------------------------------------------------------ */
/* df_pending is only a hint                                            */
/* ------------------------------------------------------------------ */

static tc_cache *hint_c;

/* A popper of an earlier, undone round whose decrement lands late. */
static void late_decrement(int point)
{
	if (point == TC_DF_HOOK_CLAIMED) {
		tc__add(&hint_c->h->df_pending, (uint64_t)-1);
		tc__df_test_hook = NULL;
	}
}

/* Does any free list name a unit of [START, START + UNITS)? */
static bool lists_name(tc_cache *c, uint64_t start, uint64_t units)
{
	for (uint32_t k = 0; k < TC_CLASSES_USED; k++) {
		uint64_t ref = tc__ld(&c->h->cls[k].head) & 0xffffffffu, n = 0;
		while (ref && n++ < c->arena_units) {
			struct tc_entry *e = tc__block(c, ref);
			if (!e)
				break;
			if (ref - 1 >= start && ref - 1 < start + units) {
				/* Only the new cut's blocks may be listed there,
				 * each on the list of its class. */
				if (tc__ld(&e->state) != TC_BLK_FREE || tc__ld(&e->cls) != k)
					return true;
			}
			ref = tc__ld(&e->link);
		}
	}
	return false;
}

static void test_a_late_unlink_count_cannot_cut_the_drain_short(void **state)
{
	(void)state;
	char name[64];
	tc_cache *c = wb_create(fx_name(name), 1u << 16, 1u << 20, 8,
				TC_EVICT_NONE);
	unsigned n = fill_small_then_thin(c);
	hint_c = c;
	tc__df_test_hook = late_decrement;
	ASSERT_RC(0, set_big(c, 1, 16000));
	assert_null(tc__df_test_hook); /* the hook ran */
	uint64_t ws = tc__ld(&c->h->df_start), wu = tc__ld(&c->h->df_units);
	assert_false(lists_name(c, ws, wu));
	/* Fill every free block again: nothing handed out twice. */
	char k[32], v[24], buf[64];
	unsigned m = 0;
	for (;; m++) {
		int kl = snprintf(k, sizeof(k), "n%u", m);
		small_val(v, m + 1000000);
		int rc = tc_set(c, k, (size_t)kl, v, sizeof(v), 0, 0);
		if (rc == -ENOSPC)
			break;
		ASSERT_RC(0, rc);
	}
	for (unsigned i = 0; i < m; i++) {
		tc_meta mt;
		int kl = snprintf(k, sizeof(k), "n%u", i);
		ASSERT_RC(0, tc_get(c, k, (size_t)kl, buf, sizeof(buf), &mt));
		small_val(v, i + 1000000);
		assert_memory_equal(buf, v, sizeof(v));
	}
	expect_big(c, 1, 16000);
	expect_small_keepers(c, n);
	tc__st(&c->h->df_pending, 0);
	expect_clean_audit(c);
	tc_close(c);
	tc_unlink(name);
}

/*
 * One scribbled turn word naming a live process and no slot (the index
 * recoverers without a slot used, 0xffff) was judged by kill(pid, 0)
 * alone: held for as long as that process lived (pid 1, a kernel thread,
 * any process: this test's own pid), and tc_audit's recovery judged it the
 * same way.  Every write that needed coalescing waited its 20 ms for "a
 * coalescer at work" and failed with -ENOSPC, for ever.  Recoverers now
 * take the turn with their own slot (a cleaner without one leaves the
 * recovery to the next that has one), so a word naming no slot is no
 * holder's.
 */
static void test_a_turn_word_naming_no_slot_is_no_holder(void **state)
{
	(void)state;
	char name[64];
	tc_cache *c = wb_create(fx_name(name), 1u << 16, 1u << 20, 8,
				TC_EVICT_NONE);
	unsigned n = fill_small_then_thin(c);
	tc__st(&c->h->df_turn, (uint64_t)getpid() << 32 | 0xffffull << 16 | 5);
	assert_false(tc__coalescing(c));
	ASSERT_RC(0, set_big(c, 0, 16000));
	assert_int_equal(merges(c), 1);
	assert_int_equal(tc__ld(&c->h->df_turn), 0);
	expect_big(c, 0, 16000);
	expect_small_keepers(c, n);
	/* The audit's recovery judges it the same way. */
	tc__st(&c->h->df_turn, (uint64_t)getpid() << 32 | 0xffffull << 16 | 6);
	expect_clean_audit(c);
	assert_int_equal(tc__ld(&c->h->df_turn), 0);
	tc_close(c);
	tc_unlink(name);
}

/* ------------------------------------------------------------------ */
/* Claimed blocks that no list names                                    */
/* ------------------------------------------------------------------ */

static unsigned drain_waits;

static void count_drain_waits(int point)
{
	if (point == TC_DF_HOOK_DRAIN_WAIT)
		drain_waits++;
}

struct in_section {
	tc_cache *c;
	pthread_barrier_t bar;
	int rc;
};

static void *hold_a_section(void *p)
{
	struct in_section *r = p;
	r->rc = tc_read_lock(r->c);
	pthread_barrier_wait(&r->bar); /* in the section */
	pthread_barrier_wait(&r->bar); /* the write is done */
	if (r->rc == 0)
		tc_read_unlock(r->c);
	return NULL;
}

/*
 * Free blocks on no list (freed by writers killed before their push, or on
 * a list cut as broken): the window search finds them FREE and claims
 * them, but no pop will ever unlink them.  With no other slot in a read
 * section no allocator can be about to mark one OUT, so the drain gives up
 * at once instead of spinning DF_DRAIN_NS (2 ms) for every write that
 * coalesces; with a reader in its section it waits, as before, and gives
 * up too.  Nothing is harmed either way, and tc_audit lists the blocks
 * again.
 */
static void test_a_drain_of_unlisted_blocks_gives_up_at_once(void **state)
{
	(void)state;
	char name[64];
	tc_cache *c = wb_create(fx_name(name), 1u << 16, 1u << 20, 8,
				TC_EVICT_NONE);
	unsigned n = fill_small_then_thin(c);
	for (uint32_t k = 0; k < TC_CLASSES_USED; k++) {
		uint64_t h = tc__ld(&c->h->cls[k].head);
		tc__st(&c->h->cls[k].head, ((h >> 32) + 1) << 32); /* cut; nfree stays */
	}
	drain_waits = 0;
	tc__df_test_hook = count_drain_waits;
	ASSERT_RC(-ENOSPC, set_big(c, 0, 16000));
	assert_int_equal(drain_waits, 0);
	/* Another thread in its section: it might be a popper, so the drain
	 * waits for it, then gives up. */
	struct in_section r = { .c = c };
	pthread_barrier_init(&r.bar, NULL, 2);
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, hold_a_section, &r), 0);
	pthread_barrier_wait(&r.bar);
	int rc = set_big(c, 0, 16000);
	pthread_barrier_wait(&r.bar);
	pthread_join(th, NULL);
	pthread_barrier_destroy(&r.bar);
	tc__df_test_hook = NULL;
	ASSERT_RC(0, r.rc);
	ASSERT_RC(-ENOSPC, rc);
	assert_true(drain_waits > 0);
	assert_int_equal(tc__ld(&c->h->df_turn), 0);
	assert_int_equal(merges(c), 0);
	expect_small_keepers(c, n);
	/* The audit lists the free blocks again: the write fits. */
	tc_audit_report rep;
	ASSERT_RC(0, tc_audit(c, &rep));
	ASSERT_RC(0, set_big(c, 0, 16000));
	expect_big(c, 0, 16000);
	expect_small_keepers(c, n);
	expect_clean_audit(c);
	tc_close(c);
	tc_unlink(name);
}

/*
 * An allocator that popped the window's last claimed block marks it OUT
 * and leaves its section; if that happens after a pass of the drain began,
 * the pass pops nothing and finds no other thread in a section, yet the
 * window is all OUT.  The hooks play that allocator: at CLAIMED it pops the
 * window's class until it holds a claimed block (pushing back the ordinary
 * ones it popped on the way), and when a pass of the drain has popped
 * nothing it marks that block OUT, as take_popped does, outside any
 * section.  a692ae8's drain gave the window up there (tc__coalesce NULL,
 * the write's next attempt searched again); the drain judges the window
 * once more and re-cuts it.
 */
static tc_cache *late_c;
static struct tc_entry *late_popped;
static unsigned late_marked;

static void allocator_leaves_late(int point)
{
	tc_cache *c = late_c;
	if (point == TC_DF_HOOK_CLAIMED) {
		struct tc_entry **held = calloc(c->arena_units, sizeof(*held));
		uint64_t n = 0;
		assert_non_null(held);
		for (uint32_t cls = 0; cls < TC_CLASSES_USED && !late_popped; cls++) {
			struct tc_entry *e;
			while (!late_popped && n < c->arena_units &&
			       (e = tc__pop_free(c, cls)) != NULL) {
				if (tc__ld(&e->state) == TC_BLK_CLAIMED)
					late_popped = e;
				else
					held[n++] = e;
			}
			while (n > 0) {
				struct tc_entry *b = held[--n];
				tc__push_free(c, b, tc__ld(&b->cls));
			}
		}
		free(held);
	} else if (point == TC_DF_HOOK_DRAIN_EMPTY && late_popped && !late_marked) {
		assert_int_equal(tc__cas(&late_popped->state, TC_BLK_CLAIMED, TC_BLK_OUT),
				 TC_BLK_CLAIMED);
		tc__add(&c->h->df_pending, (uint64_t)-1);
		late_marked++;
	}
}

static void test_a_drain_sees_a_popper_that_left_after_its_pass(void **state)
{
	(void)state;
	char name[64];
	tc_cache *c = wb_create(fx_name(name), 1u << 16, 1u << 20, 8,
				TC_EVICT_NONE);
	unsigned n = fill_small_then_thin(c);
	struct tc_rslot *s = tc__slot(c);
	assert_non_null(s);
	uint32_t cls = tc__class_of(tc__entry_need(c, 2, 16000));
	late_c = c;
	late_popped = NULL;
	late_marked = 0;
	tc__df_test_hook = allocator_leaves_late;
	struct tc_entry *e = tc__coalesce(c, s, cls);
	tc__df_test_hook = NULL;
	assert_non_null(late_popped);
	assert_int_equal(late_marked, 1);
	assert_non_null(e); /* the window, re-cut */
	assert_int_equal(tc__ld(&e->state), TC_BLK_LIVE);
	assert_int_equal(tc__ld(&e->cls), cls);
	assert_int_equal(tc__ld(&c->h->df_turn), 0);
	assert_int_equal(merges(c), 1);
	tc__drop_private(c, s, e);
	expect_small_keepers(c, n);
	ASSERT_RC(0, set_big(c, 0, 16000));
	expect_big(c, 0, 16000);
	tc__st(&c->h->df_pending, 0);
	expect_clean_audit(c);
	tc_close(c);
	tc_unlink(name);
}

/* ------------------------------------------------------------------ */
/* Shifting sizes under concurrency                                     */
/* ------------------------------------------------------------------ */

#define SH_WRITERS 3
#define SH_READERS 2
#define SH_KEYS    48   /* per writer */
#define SH_ITERS   6000 /* per writer */
#define SH_VMAX    12000

struct sh_results {
	uint64_t last_seq[SH_WRITERS][SH_KEYS]; /* 0 = deleted or never written */
	uint32_t last_len[SH_WRITERS][SH_KEYS];
	uint64_t enospc[SH_WRITERS];
	uint64_t reads;
	int stop;
	int lru;      /* the killing variant: LRU, writers run until stop */
	int wstop;
};

/* Sizes shift every 1000 writes: small, large, medium, small, ... */
static size_t sh_len(unsigned it, uint64_t *rng)
{
	uint64_t r = bb_rand(rng);
	switch ((it / 1000) % 3) {
	case 0: return BB_HDR + (size_t)(r % 100);
	case 1: return 6000 + (size_t)(r % (SH_VMAX - 6000));
	default: return 500 + (size_t)(r % 1500);
	}
}

static int sh_writer(const char *name, struct sh_results *res, uint32_t w)
{
	tc_cache *c = NULL;
	if (tc_open(&c, name, NULL) != 0)
		return BB_EXIT_SETUP;
	unsigned char *v = malloc(SH_VMAX), *got = malloc(SH_VMAX);
	uint64_t rng = 0x1234u + w;
	int bad = 0;
	for (unsigned it = 0; (res->lru ? !__atomic_load_n(&res->wstop, __ATOMIC_ACQUIRE)
				       : it < SH_ITERS) && !bad; it++) {
		unsigned i = (unsigned)(bb_rand(&rng) % SH_KEYS);
		uint32_t key = w * SH_KEYS + i;
		char k[32];
		size_t kl = bb_key(k, sizeof(k), "k", key);
		if (bb_rand(&rng) % 8 == 0) {
			int rc = tc_del(c, k, kl);
			if (rc != 0 && rc != -ENOENT) {
				bb_child_fail("del %s: %s", k, tc_strerror(rc));
				bad = 1;
			}
			__atomic_store_n(&res->last_seq[w][i], 0, __ATOMIC_RELAXED);
			continue;
		}
		size_t len = sh_len(it, &rng);
		uint64_t seq = (uint64_t)it + 1;
		bb_fill(v, len, key, w, seq);
		int rc = tc_set(c, k, kl, v, len, BB_TYPE, 0);
		if (rc == -ENOSPC) {
			/* Full of live values of the moment: allowed, nothing changed. */
			res->enospc[w]++;
			continue;
		}
		if (rc != 0) {
			bb_child_fail("set %s: %s", k, tc_strerror(rc));
			bad = 1;
			break;
		}
		res->last_seq[w][i] = seq;
		res->last_len[w][i] = (uint32_t)len;
		/* Only this writer writes the key: it must read its own value. */
		tc_meta m;
		rc = tc_get(c, k, kl, got, SH_VMAX, &m);
		if (rc == -ENOENT && res->lru)
			continue; /* evicted already */
		const char *why = rc ? tc_strerror(rc) : bb_check(got, m.len, key, SH_WRITERS);
		if (!why && m.len != len)
			why = "length differs";
		if (!why && memcmp(got + 24, &seq, 8) != 0)
			why = "older value";
		if (why) {
			bb_child_fail("read back %s: %s", k, why);
			bad = 1;
		}
	}
	free(v);
	free(got);
	tc_close(c);
	return bad ? BB_EXIT_FAIL : BB_EXIT_OK;
}

static int sh_reader(const char *name, struct sh_results *res, uint32_t r)
{
	tc_cache *c = NULL;
	if (tc_open(&c, name, NULL) != 0)
		return BB_EXIT_SETUP;
	unsigned char *got = malloc(SH_VMAX);
	uint64_t rng = 0x9876u + r, reads = 0;
	int bad = 0;
	while (!__atomic_load_n(&res->stop, __ATOMIC_ACQUIRE) && !bad) {
		uint32_t key = (uint32_t)(bb_rand(&rng) % (SH_WRITERS * SH_KEYS));
		char k[32];
		size_t kl = bb_key(k, sizeof(k), "k", key);
		tc_meta m;
		int rc = tc_get(c, k, kl, got, SH_VMAX, &m);
		if (rc == -ENOENT)
			continue;
		const char *why = rc ? tc_strerror(rc) : bb_check(got, m.len, key, SH_WRITERS);
		if (!why && m.type != BB_TYPE)
			why = "type";
		if (why) {
			bb_child_fail("reader: %s: %s", k, why);
			bad = 1;
		}
		/* Zero copy too: the pointer stays valid inside the section. */
		const void *p;
		if (tc_read_lock(c) == 0) {
			if (tc_peek(c, k, kl, &p, &m) == 0 && bb_check(p, m.len, key, SH_WRITERS)) {
				bb_child_fail("reader: peek %s: bad value", k);
				bad = 1;
			}
			tc_read_unlock(c);
		}
		reads++;
	}
	__atomic_add_fetch(&res->reads, reads, __ATOMIC_RELAXED);
	free(got);
	tc_close(c);
	return bad ? BB_EXIT_FAIL : BB_EXIT_OK;
}

/* Shared results and the reader and writer processes of a shifting run. */
static struct sh_results *sh_start(const char *name, bool lru, pid_t *rd, pid_t *wr)
{
	struct sh_results *res = mmap(NULL, sizeof(*res), PROT_READ | PROT_WRITE,
				      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	assert_true(res != MAP_FAILED);
	memset(res, 0, sizeof(*res));
	res->lru = lru;
	for (uint32_t r = 0; r < SH_READERS; r++) {
		rd[r] = fork();
		assert_true(rd[r] >= 0);
		if (rd[r] == 0)
			_exit(sh_reader(name, res, r));
	}
	for (uint32_t w = 0; w < SH_WRITERS; w++) {
		wr[w] = fork();
		assert_true(wr[w] >= 0);
		if (wr[w] == 0)
			_exit(sh_writer(name, res, w));
	}
	return res;
}

static void test_shifting_sizes_under_concurrency(void **state)
{
	(void)state;
	char name[64];
	/* Room for every key's largest value only if memory moves between
	 * classes as the sizes shift. */
	tc_cache *c = wb_create(fx_name(name), 4096, 2u << 20, 16,
				TC_EVICT_NONE);
	pid_t rd[SH_READERS], wr[SH_WRITERS];
	struct sh_results *res = sh_start(name, false, rd, wr);
	int fails = 0;
	for (uint32_t w = 0; w < SH_WRITERS; w++)
		fails += fx_wait(wr[w]) != 0;
	__atomic_store_n(&res->stop, 1, __ATOMIC_RELEASE);
	for (uint32_t r = 0; r < SH_READERS; r++)
		fails += fx_wait(rd[r]) != 0;
	assert_int_equal(fails, 0);
	print_message("      %" PRIu64 " reads, %" PRIu64 " merges, ENOSPC %" PRIu64 "/%" PRIu64
		      "/%" PRIu64 " of %u writes each\n", res->reads, merges(c), res->enospc[0],
		      res->enospc[1], res->enospc[2], SH_ITERS);
	assert_true(merges(c) > 0);
	/* Every key holds exactly its writer's last value. */
	unsigned char *got = malloc(SH_VMAX);
	for (uint32_t w = 0; w < SH_WRITERS; w++) {
		for (unsigned i = 0; i < SH_KEYS; i++) {
			uint32_t key = w * SH_KEYS + i;
			char k[32];
			size_t kl = bb_key(k, sizeof(k), "k", key);
			tc_meta m;
			int rc = tc_get(c, k, kl, got, SH_VMAX, &m);
			if (res->last_seq[w][i] == 0) {
				ASSERT_RC(-ENOENT, rc);
				continue;
			}
			ASSERT_RC(0, rc);
			assert_null(bb_check(got, m.len, key, SH_WRITERS));
			assert_int_equal(m.len, res->last_len[w][i]);
			assert_memory_equal(got + 24, &res->last_seq[w][i], 8);
		}
	}
	free(got);
	expect_clean_audit(c);
	munmap(res, sizeof(*res));
	tc_close(c);
	tc_unlink(name);
}

/*
 * The same shifting sizes under LRU in a small arena (windows evicted and
 * re-cut all the time), while writers are killed with SIGKILL at random
 * moments and started again: readers never see a bad value, and once the
 * dead are cleared the audit walks the arena and finds it consistent.
 */
static void test_killed_writers_while_sizes_shift_under_lru(void **state)
{
	(void)state;
	char name[64];
	tc_cache *c = wb_create(fx_name(name), 4096, 1u << 20, 32,
				TC_EVICT_LRU);
	pid_t rd[SH_READERS], wr[SH_WRITERS];
	struct sh_results *res = sh_start(name, true, rd, wr);
	uint64_t rng = 99;
	int kills = 0, fails = 0;
	for (int round = 0; round < 40; round++) {
		fx_sleep_ms(10 + (long)(bb_rand(&rng) % 40));
		uint32_t w = (uint32_t)(bb_rand(&rng) % SH_WRITERS);
		kill(wr[w], SIGKILL);
		int st = fx_wait(wr[w]);
		if (st != 128 + SIGKILL)
			fails++; /* it ended by itself: a failed check */
		kills++;
		wr[w] = fork();
		assert_true(wr[w] >= 0);
		if (wr[w] == 0)
			_exit(sh_writer(name, res, w));
	}
	__atomic_store_n(&res->wstop, 1, __ATOMIC_RELEASE);
	for (uint32_t w = 0; w < SH_WRITERS; w++)
		fails += fx_wait(wr[w]) != 0;
	__atomic_store_n(&res->stop, 1, __ATOMIC_RELEASE);
	for (uint32_t r = 0; r < SH_READERS; r++)
		fails += fx_wait(rd[r]) != 0;
	assert_int_equal(fails, 0);
	/* The dead are cleared; every key left holds a whole value of its own. */
	tc_sweep_report srep;
	ASSERT_RC(0, tc_sweep(c, 0, &srep));
	unsigned char *got = malloc(SH_VMAX);
	unsigned present = 0;
	for (uint32_t key = 0; key < SH_WRITERS * SH_KEYS; key++) {
		char k[32];
		size_t kl = bb_key(k, sizeof(k), "k", key);
		tc_meta m;
		int rc = tc_get(c, k, kl, got, SH_VMAX, &m);
		if (rc == -ENOENT)
			continue;
		ASSERT_RC(0, rc);
		assert_null(bb_check(got, m.len, key, SH_WRITERS));
		present++;
	}
	tc_audit_report rep;
	ASSERT_RC(0, tc_audit(c, &rep));
	print_message("      %d writers killed, %" PRIu64 " merges, %" PRIu64 " reads; audit: %"
		      PRIu64 " blocks recovered, live %" PRId64 " -> %" PRId64 "\n", kills,
		      merges(c), res->reads, rep.recovered, rep.live_before, rep.live_after);
	assert_int_equal(rep.live_after, present);
	assert_true(merges(c) > 0);
	/* Everything deleted: nothing is lost any more. */
	for (uint32_t key = 0; key < SH_WRITERS * SH_KEYS; key++) {
		char k[32];
		size_t kl = bb_key(k, sizeof(k), "k", key);
		(void)tc_del(c, k, kl);
	}
	ASSERT_RC(0, tc_reclaim(c, NULL));
	expect_clean_audit(c);
	tc_stats st;
	ASSERT_RC(0, tc_get_stats(c, &st));
	assert_int_equal(st.entries, 0);
	assert_int_equal(st.memory_used, 0);
	free(got);
	munmap(res, sizeof(*res));
	tc_close(c);
	tc_unlink(name);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		FX_TEST(test_free_small_blocks_become_large_ones),
		FX_TEST(test_one_free_block_too_small_is_still_enospc),
		FX_TEST(test_lru_makes_room_for_a_new_size),
		FX_TEST(test_a_run_across_the_hand_is_found_whole),
		FX_TEST(test_an_evictable_run_across_the_hand_is_found_whole),
		FX_TEST(test_the_largest_value_fits_in_an_arena_of_the_smallest_blocks),
		FX_TEST(test_a_run_one_unit_over_takes_one_more_block),
		FX_TEST(test_killed_coalescer_is_finished_or_undone),
		FX_TEST(test_a_late_unlink_count_cannot_cut_the_drain_short),
		FX_TEST(test_scribbled_coalescer_record_harms_nothing),
		FX_TEST(test_a_turn_word_naming_no_slot_is_no_holder),
		FX_TEST(test_a_drain_of_unlisted_blocks_gives_up_at_once),
		FX_TEST(test_a_drain_sees_a_popper_that_left_after_its_pass),
		FX_TEST(test_shifting_sizes_under_concurrency),
		FX_TEST(test_killed_writers_while_sizes_shift_under_lru),
	};
	return fx_run(tests);
}
