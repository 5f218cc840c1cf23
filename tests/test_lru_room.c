/* SPDX-License-Identifier: MIT */
/*
 * test_lru_room.c - a write short of memory under TC_EVICT_LRU: the work it
 * does before it succeeds or gives up with -ENOSPC does not grow with the
 * index (tc__make_room, room.c; the census by address, coalesce.c;
 * docs/design.md section 6, "Eviction").
 *
 * The work is counted, never timed: the clock's hand (tc_hdr.clock_hand)
 * moves one step per bucket the clock visits, and tc__room_sleeps()
 * counts the writer's waits.  Each case runs on two segments whose arenas
 * are alike and whose indexes differ eightfold (16,384 and 131,072
 * buckets); before the census the clock went round twice in both
 * (2 * (nbuckets / 1024 + 1) + 3 rounds of 1,024 buckets): 25 ms with 1M
 * entries and 195 ms with 8M before -ENOSPC.
 */
#include "whitebox.h"

#include <pthread.h>

static char cur_name[64];

#define SMALL_INDEX (64 * 1024)  /* entries: 16,384 buckets */
#define LARGE_INDEX (512 * 1024) /* 131,072 buckets */
#define MEMORY      (256 * 1024)
#define VLEN        1000

static uint64_t clock_steps(tc_cache *c)
{
	return tc__ld(&c->h->clock_hand);
}

/* The arena full of rate windows that last for hours: nothing the clock
 * or the coalescer may ever take (design.md, "Eviction").  Their number. */
static int fill_rate_windows(tc_cache *c)
{
	bool ok;
	uint64_t n;
	for (int i = 0;; i++) {
		char k[24];
		int kl = snprintf(k, sizeof(k), "orders:%d", i);
		int rc = tc_rate_limit(c, k, (size_t)kl, 5, 1ull << 40, &ok, &n);
		if (rc == -ENOSPC)
			return i;
		ASSERT_RC(0, rc);
	}
}

/* The arena full of one DTO list of the active run. */
static int fill_dto_list(tc_cache *c)
{
	char d[200];
	memset(d, 'd', sizeof(d));
	ASSERT_RC(0, tc_run_start(c, 1, 1));
	for (int i = 0;; i++) {
		int rc = tc_dto_append(c, "fills", 5, 1, d, sizeof(d));
		if (rc == -ENOSPC)
			return i;
		ASSERT_RC(0, rc);
	}
}

/* Keys of VLEN bytes (tag TAG) until the clock starts to evict: their number. */
static int fill_keys(tc_cache *c, char tag, size_t vlen)
{
	static char v[4096];
	memset(v, tag, vlen);
	for (int i = 0;; i++) {
		char k[24];
		tc_stats st;
		int kl = snprintf(k, sizeof(k), "%c%d", tag, i);
		ASSERT_RC(0, tc_set(c, k, (size_t)kl, v, vlen, 0, 0));
		ASSERT_RC(0, tc_get_stats(c, &st));
		if (st.evictions > 0)
			return i;
	}
}

/* A write of VLEN bytes: its return code, the buckets its clock visited
 * in *STEPS and its sleeps in *SLEPT. */
static int write_counted(tc_cache *c, size_t vlen, uint64_t *steps, uint64_t *slept)
{
	static char v[4096];
	memset(v, 'w', vlen);
	uint64_t h0 = clock_steps(c), s0 = tc__room_sleeps();
	int rc = tc_set(c, "w", 1, v, vlen, 0, 0);
	*steps = clock_steps(c) - h0;
	*slept = tc__room_sleeps() - s0;
	return rc;
}

/*
 * Nothing the write could ever evict: the arena full of rate windows, or
 * of the active run's DTO list.  The write gives up with -ENOSPC after
 * the census at its fourth round: four rounds of the clock, the same on
 * both indexes, and no sleep (nothing is retired).  Seen failing first
 * (before the census): 'rate windows: the write walked 38912 buckets of
 * the clock with 16384 buckets in the index, 268288 with 131072 (at most
 * 4096 expected, the same for both)'.
 */
static void nothing_evictable(const char *what, int (*fill_fn)(tc_cache *c))
{
	uint64_t steps[2], slept[2], nb[2];
	uint64_t entries[2] = { SMALL_INDEX, LARGE_INDEX };
	for (int i = 0; i < 2; i++) {
		tc_cache *c = wb_create(fx_name(cur_name), entries[i], MEMORY, 8, TC_EVICT_LRU);
		nb[i] = c->nbuckets;
		assert_true(fill_fn(c) > 100);
		int rc = write_counted(c, VLEN, &steps[i], &slept[i]);
		if (rc != -ENOSPC)
			fail_msg("%s: the write returned %d (%s), expected -ENOSPC", what, rc,
				 tc_strerror(rc));
		tc_close(c);
		ASSERT_RC(0, tc_unlink(cur_name));
	}
	if (steps[0] != steps[1] || steps[1] > 4 * EVICT_SCAN_MAX || slept[0] || slept[1])
		fail_msg("%s: the write walked %llu buckets of the clock with %llu buckets in the "
			 "index, %llu with %llu (at most %u expected, the same for both), and slept "
			 "%llu and %llu times", what, (unsigned long long)steps[0],
			 (unsigned long long)nb[0], (unsigned long long)steps[1],
			 (unsigned long long)nb[1], 4 * EVICT_SCAN_MAX,
			 (unsigned long long)slept[0], (unsigned long long)slept[1]);
}

static void test_a_write_with_nothing_to_evict_fails_after_rounds_the_index_does_not_set(
	void **state)
{
	(void)state;
	nothing_evictable("rate windows", fill_rate_windows);
	nothing_evictable("a DTO list", fill_dto_list);
}

/*
 * The arena as the census found it is remembered (per handle): a write
 * that finds it unchanged, before the first of the blocks that kept it
 * ends, gives up without walking it again.  A rate window that ended
 * makes the next write walk again (a window that ended, alone between
 * live ones, is still no room for 1,000 bytes); so does any change to the
 * arena, here the sweep removing that window.  (Before the memo every
 * such write walked the whole arena again: 43 ms with 256 MiB of rate
 * windows, 2.8M headers.)
 */
static tc_cache *windows_and_a_short_one(uint64_t window_ms, int64_t *short_end, int *n)
{
	bool ok;
	uint64_t cnt;
	char k[32] = "short";
	tc_cache *c = wb_create(fx_name(cur_name), LARGE_INDEX, MEMORY, 8, TC_EVICT_LRU);
	ASSERT_RC(0, tc_rate_limit(c, k, 5, 5, window_ms, &ok, &cnt));
	struct tc_entry *e = wb_entry_of(c, k, TC_KIND_RATE);
	*short_end = tc__ld(&e->expires_ms);
	*n = fill_rate_windows(c);
	assert_true(*n > 100);
	/* The clock's hand just past the short window's bucket: the writes
	 * of the test (4,096 buckets each) never come round to it, so only
	 * the sweep removes it once it has ended. */
	tc__st(&c->h->clock_hand, (tc__ld(&e->hash) & c->bmask) + 64);
	return c;
}

static uint64_t failed_write_reads(tc_cache *c)
{
	uint64_t steps, slept, r0 = tc__census_reads();
	ASSERT_RC(-ENOSPC, write_counted(c, VLEN, &steps, &slept));
	assert_int_equal(4 * EVICT_SCAN_MAX, steps);
	return tc__census_reads() - r0;
}

static void test_a_census_that_found_no_room_is_not_repeated_until_the_arena_changes(
	void **state)
{
	(void)state;
	tc_cache *c;
	int64_t short_end;
	int n;
	uint64_t w1, w2;
	/* The short window must outlive the fill and two writes: a longer
	 * one on a machine too loaded for that. */
	for (uint64_t window = 250;; window *= 4) {
		c = windows_and_a_short_one(window, &short_end, &n);
		w1 = failed_write_reads(c);
		w2 = failed_write_reads(c);
		if (tc_now_ms() < short_end)
			break;
		tc_close(c);
		ASSERT_RC(0, tc_unlink(cur_name));
		assert_true(window < 16000);
	}
	if (w1 <= (uint64_t)n || w2 != 0)
		fail_msg("the census read %llu headers (%d rate windows), the next %llu (expected "
			 "none)", (unsigned long long)w1, n, (unsigned long long)w2);
	assert_int_equal(short_end, c->nofit_memo.until);
	while (tc_now_ms() <= short_end)
		usleep(1000);
	assert_true(failed_write_reads(c) > (uint64_t)n);
	/* Now until the live windows end (they all end together). */
	char k[32] = "orders:0";
	assert_int_equal(tc__ld(&wb_entry_of(c, k, TC_KIND_RATE)->expires_ms),
			 c->nofit_memo.until);
	assert_int_equal(0, failed_write_reads(c));
	tc_sweep_report rep;
	memset(&rep, 0, sizeof(rep));
	ASSERT_RC(0, tc_sweep(c, 0, &rep));
	assert_int_equal(1, rep.expired);
	assert_true(failed_write_reads(c) > (uint64_t)n);
	assert_int_equal(0, failed_write_reads(c));
	tc_close(c);
}

/* A thread inside a read section for as long as the test wants. */
static struct {
	tc_cache *c;
	int in, leave;
} pin;

static void *pinning_reader(void *arg)
{
	(void)arg;
	ASSERT_RC(0, tc_read_lock(pin.c));
	__atomic_store_n(&pin.in, 1, __ATOMIC_SEQ_CST);
	while (!__atomic_load_n(&pin.leave, __ATOMIC_SEQ_CST))
		usleep(200);
	tc_read_unlock(pin.c);
	return NULL;
}

/*
 * Every block retired while another thread stays in its read section:
 * only that reader's leaving can give memory back.  The write waits for
 * it (ROOM_WAIT_NS, room.c) and gives up with -ENOSPC: four rounds of
 * the clock, then one a sleep, whatever the index.
 * Seen failing first (before the census): 'the write returned -28 (No
 * space left on device) after 275456 buckets of the clock and 7 sleeps'
 * (278528 and 10 in another run): the two turns came first, then the
 * wait for what was left of the 20 ms.
 */
static void test_a_write_against_a_pinning_reader_waits_without_turning_the_clock(void **state)
{
	(void)state;
	tc_cache *c = wb_create(fx_name(cur_name), LARGE_INDEX, MEMORY, 8, TC_EVICT_LRU);
	int n = fill_keys(c, 'k', VLEN);
	assert_true(n > 100);
	pin.c = c;
	pin.in = pin.leave = 0;
	pthread_t th;
	assert_int_equal(0, pthread_create(&th, NULL, pinning_reader, NULL));
	while (!__atomic_load_n(&pin.in, __ATOMIC_SEQ_CST))
		usleep(100);
	for (int i = 0; i <= n; i++) {
		char k[24];
		int kl = snprintf(k, sizeof(k), "k%d", i);
		int rc = tc_del(c, k, (size_t)kl);
		assert_true(rc == 0 || rc == -ENOENT);
	}
	uint64_t steps, slept;
	int rc = write_counted(c, VLEN, &steps, &slept);
	__atomic_store_n(&pin.leave, 1, __ATOMIC_SEQ_CST);
	pthread_join(th, NULL);
	/* No sleep at all when the first four rounds took the whole 20 ms
	 * (a sanitizer's build): the bound holds all the same. */
	if (rc != -ENOSPC || steps > (4 + slept) * EVICT_SCAN_MAX)
		fail_msg("the write returned %d (%s) after %llu buckets of the clock and %llu "
			 "sleeps: expected -ENOSPC, four rounds and a round a sleep (1024 "
			 "buckets each)",
			 rc, tc_strerror(rc), (unsigned long long)steps, (unsigned long long)slept);
	/* The reader gone, the same write succeeds. */
	rc = write_counted(c, VLEN, &steps, &slept);
	ASSERT_RC(0, rc);
	tc_close(c);
}

/*
 * Room that the write can have: the arena full of small keys, all of them
 * still hot (a new key's reference bit is set), and the write wants a
 * block of a larger class.  The clock evicts only blocks of the wanted
 * class; the coalescer evicts a window of cold keys by address.  Before
 * the census the clock had to clear their bits first, most of a turn over
 * the whole index (seen failing: 'the write walked 12292 buckets of the
 * clock with the small index and 109572 with the large one'; 261 ms with
 * 8M entries); the census gives the keys of one window their second chance
 * by address, and the next round evicts that window.  The write succeeds
 * in the same rounds on both indexes, evicts a few keys only, and every
 * other key is still there.
 */
static void test_hot_keys_of_another_class_make_room_by_address(void **state)
{
	(void)state;
	uint64_t steps[2], slept[2], evicted[2];
	uint64_t entries[2] = { SMALL_INDEX, LARGE_INDEX };
	for (int i = 0; i < 2; i++) {
		tc_cache *c = wb_create(fx_name(cur_name), entries[i], MEMORY, 8, TC_EVICT_LRU);
		int n = fill_keys(c, 's', 40);
		assert_true(n > 1000);
		tc_stats st0, st1;
		ASSERT_RC(0, tc_get_stats(c, &st0));
		int rc = write_counted(c, 2500, &steps[i], &slept[i]);
		if (rc != 0)
			fail_msg("the write returned %d (%s), expected success", rc, tc_strerror(rc));
		ASSERT_RC(0, tc_get_stats(c, &st1));
		evicted[i] = st1.evictions - st0.evictions;
		char buf[2500];
		ASSERT_RC(0, tc_get(c, "w", 1, buf, sizeof(buf), NULL));
		assert_int_equal('w', buf[2499]);
		tc_close(c);
		ASSERT_RC(0, tc_unlink(cur_name));
	}
	if (steps[0] != steps[1] || steps[1] > 8 * EVICT_SCAN_MAX || slept[0] || slept[1])
		fail_msg("the write walked %llu buckets of the clock with the small index and %llu "
			 "with the large one (at most %u expected, the same for both), and slept "
			 "%llu and %llu times", (unsigned long long)steps[0],
			 (unsigned long long)steps[1], 8 * EVICT_SCAN_MAX,
			 (unsigned long long)slept[0], (unsigned long long)slept[1]);
	/* One window of 40-byte keys (a 2.5 KB block) and what evict-ahead
	 * takes after the write, never a sweep of the class. */
	if (evicted[0] > 64 || evicted[1] > 64)
		fail_msg("the write evicted %llu and %llu keys", (unsigned long long)evicted[0],
			 (unsigned long long)evicted[1]);
}

/*
 * Room that the clock finds: keys of the wanted class, hot, in a sparse
 * index.  The census finds them (a key of the class is a window by
 * itself) and the write succeeds, as it did.
 */
static void test_hot_keys_of_the_same_class_still_make_room(void **state)
{
	(void)state;
	tc_cache *c = wb_create(fx_name(cur_name), LARGE_INDEX, MEMORY, 8, TC_EVICT_LRU);
	int n = fill_keys(c, 'k', VLEN);
	assert_true(n > 100);
	uint64_t steps, slept;
	ASSERT_RC(0, write_counted(c, VLEN, &steps, &slept));
	assert_int_equal(0, slept);
	char buf[VLEN];
	ASSERT_RC(0, tc_get(c, "w", 1, buf, sizeof(buf), NULL));
	assert_int_equal('w', buf[0]);
	tc_close(c);
}

/* Keys of 16 bytes until the index holds max_entries (the write that
 * finds it full evicts): their number. */
static uint64_t fill_index_with_keys(tc_cache *c)
{
	char v[16] = { 0 };
	for (uint64_t i = 0;; i++) {
		char k[24];
		tc_stats st;
		int kl = snprintf(k, sizeof(k), "s%llu", (unsigned long long)i);
		ASSERT_RC(0, tc_set(c, k, (size_t)kl, v, sizeof(v), 0, 0));
		if (i + 1 < c->max_entries)
			continue;
		ASSERT_RC(0, tc_get_stats(c, &st));
		assert_int_equal(0, st.evictions);
		return i + 1;
	}
}

/*
 * Short of an index slot: max_entries keys, every one of them hot (a new
 * key carries its bit).  Two indexes, 16,384 and 32,768 buckets.  With
 * one hand the first such write cleared the bits of the whole index
 * before it evicted a key (seen failing first: 'the first write walked
 * 16385 buckets of the clock with 16384 in the index, the next 0');
 * the back hand, three rounds behind, evicts a key whose bit the front
 * hand cleared and no reader set again: three rounds for the first write
 * on either index, one for the next.
 */
static void test_an_index_full_of_hot_keys_gives_a_slot_within_three_rounds(void **state)
{
	(void)state;
	uint64_t entries[2] = { 64 * 1024, 128 * 1024 };
	for (int i = 0; i < 2; i++) {
		tc_cache *c = wb_create(fx_name(cur_name), entries[i], 64u << 20, 8, TC_EVICT_LRU);
		uint64_t n = fill_index_with_keys(c);
		tc_stats st0, st1;
		ASSERT_RC(0, tc_get_stats(c, &st0));
		uint64_t steps, slept, steps2;
		int rc = write_counted(c, 16, &steps, &slept);
		ASSERT_RC(0, rc);
		uint64_t h0 = clock_steps(c);
		ASSERT_RC(0, tc_set(c, "w2", 2, "v", 1, 0, 0));
		steps2 = clock_steps(c) - h0;
		ASSERT_RC(0, tc_get_stats(c, &st1));
		if (steps != 3 * EVICT_SCAN_MAX || steps2 > EVICT_SCAN_MAX || slept)
			fail_msg("the first write walked %llu buckets of the clock with %llu in the "
				 "index, the next %llu (expected %u and at most %u), and slept %llu "
				 "times",
				 (unsigned long long)steps, (unsigned long long)c->nbuckets,
				 (unsigned long long)steps2, 3 * EVICT_SCAN_MAX, EVICT_SCAN_MAX,
				 (unsigned long long)slept);
		assert_int_equal(st0.evictions + 2, st1.evictions);
		assert_int_equal(n, st1.entries);
		tc_close(c);
		ASSERT_RC(0, tc_unlink(cur_name));
	}
}

/*
 * Short of an index slot with nothing to evict: max_entries rate windows.
 * The write gives up after one turn of the clock that passed no ordinary
 * key, not two (seen failing first: 'the write returned -28 (No space
 * left on device) after 38912 buckets of the clock with 16384 in the
 * index', where one turn and the first rounds are at most 16384 + 4096).  The
 * index itself is the answer here, and a turn of it is what the write
 * pays: it grows with max_entries (design.md section 6).
 */
static void test_an_index_full_of_rate_windows_fails_after_one_turn(void **state)
{
	(void)state;
	tc_cache *c = wb_create(fx_name(cur_name), 64 * 1024, 64u << 20, 8, TC_EVICT_LRU);
	bool ok;
	uint64_t n, i;
	for (i = 0;; i++) {
		char k[24];
		int kl = snprintf(k, sizeof(k), "r%llu", (unsigned long long)i);
		int rc = tc_rate_limit(c, k, (size_t)kl, 5, 1ull << 40, &ok, &n);
		if (rc == -ENOSPC)
			break;
		ASSERT_RC(0, rc);
	}
	assert_int_equal(c->max_entries, i);
	uint64_t steps, slept;
	int rc = write_counted(c, 16, &steps, &slept);
	if (rc != -ENOSPC || steps < c->nbuckets || steps > c->nbuckets + 4 * EVICT_SCAN_MAX)
		fail_msg("the write returned %d (%s) after %llu buckets of the clock with %llu in "
			 "the index: expected -ENOSPC after one turn", rc, tc_strerror(rc),
			 (unsigned long long)steps, (unsigned long long)c->nbuckets);
	tc_close(c);
}

/*
 * A false "nothing": a run that the census walks from a retired block on
 * holds, past it, free blocks that alone make a window the coalescer
 * takes as it is.  The arena: rate windows that last for hours, and, far
 * from the coalescer's hand (more headers than its searches of a write's
 * first four rounds read), one ordinary key followed by free blocks (rate
 * windows that ended, swept and reclaimed) worth 3,840 bytes.  The writer,
 * inside its own read section, deletes the key (retired, held back by its
 * section) and writes 1,000 bytes: the coalescer's search reaches the free
 * blocks within the clock's rounds and merges them; the census must not
 * say first that no turn can help.
 */
#define FAR_MEMORY (12u << 20)
#define FAR_INDEX  (256 * 1024)
#define FAR_FREE   40 /* rate windows that end, after the key */

static int rate_window(tc_cache *c, int i, uint64_t window_ms)
{
	bool ok;
	uint64_t n;
	char k[24];
	int kl = snprintf(k, sizeof(k), "orders:%d", i);
	return tc_rate_limit(c, k, (size_t)kl, 5, window_ms, &ok, &n);
}

static void test_free_blocks_past_a_retired_one_are_room_the_census_sees(void **state)
{
	(void)state;
	/* How many rate windows fill the arena: a segment of the same
	 * shape, filled until -ENOSPC. */
	tc_cache *c = wb_create(fx_name(cur_name), FAR_INDEX, FAR_MEMORY, 8, TC_EVICT_LRU);
	int n = fill_rate_windows(c);
	uint64_t rate_units = tc__carved(c) / (uint64_t)n;
	tc_close(c);
	ASSERT_RC(0, tc_unlink(cur_name));
	assert_true(n > 6 * 16384);
	/* The same fill but for one key (a block of the rate windows' size)
	 * and FAR_FREE short windows near the end: no write meets a full
	 * arena, so the clock evicts nothing. */
	c = wb_create(fx_name(cur_name), FAR_INDEX, FAR_MEMORY, 8, TC_EVICT_LRU);
	int at = n - FAR_FREE - 1000;
	char v[24];
	memset(v, 'r', sizeof(v));
	for (int i = 0; i < n; i++) {
		if (i == at) {
			ASSERT_RC(0, tc_set(c, "r", 1, v, sizeof(v), 0, 0));
			assert_int_equal(rate_units,
					 tc__class_size(wb_entry_of(c, "r", TC_KIND_KEY)->cls) /
						 TC_BLOCK_UNIT);
		} else {
			bool brief = i > at && i <= at + FAR_FREE;
			ASSERT_RC(0, rate_window(c, i, brief ? 100 : 1ull << 40));
		}
	}
	char k[24];
	snprintf(k, sizeof(k), "orders:%d", at + FAR_FREE);
	int64_t end = tc__ld(&wb_entry_of(c, k, TC_KIND_RATE)->expires_ms);
	while (tc_now_ms() <= end)
		usleep(1000);
	tc_sweep_report rep;
	memset(&rep, 0, sizeof(rep));
	ASSERT_RC(0, tc_sweep(c, 0, &rep));
	assert_int_equal(FAR_FREE, rep.expired);
	uint64_t freed;
	ASSERT_RC(0, tc_reclaim(c, &freed));
	ASSERT_RC(0, tc_read_lock(c));
	ASSERT_RC(0, tc_del(c, "r", 1));
	uint64_t steps, slept;
	int rc = write_counted(c, VLEN, &steps, &slept);
	tc_read_unlock(c);
	if (rc != 0)
		fail_msg("the write returned %d (%s) after %llu buckets of the clock, %d rate "
			 "windows: expected 0 (%d free blocks of %llu units past the retired key)",
			 rc, tc_strerror(rc), (unsigned long long)steps, n, FAR_FREE,
			 (unsigned long long)rate_units);
	tc_close(c);
}

/*
 * Room that no window of the census could give: keys one block size too
 * large for the write (192 bytes where it wants 160: two units over, which
 * no block can use), each between two rate windows that last for hours.
 * Neither the clock (it evicts keys of the wanted class only) nor the
 * coalescer (a window must fit the block exactly or leave a block over)
 * can make room, and on main 50219a1 the write fails without evicting a
 * key.  The census must not evict one either.
 */
static void test_keys_that_cannot_make_a_block_are_not_evicted(void **state)
{
	(void)state;
	tc_cache *c = wb_create(fx_name(cur_name), SMALL_INDEX, MEMORY, 8, TC_EVICT_LRU);
	char v[128];
	memset(v, 'k', sizeof(v));
	int keys = 0;
	for (int i = 0;; i++) {
		uint64_t left = c->arena_units - tc__carved(c);
		if (left >= 18) {
			char k[24];
			int kl = snprintf(k, sizeof(k), "k%05d", keys++);
			ASSERT_RC(0, tc_set(c, k, (size_t)kl, v, 110, 0, 0));
			assert_int_equal(12, tc__class_size(wb_entry_of(c, k, TC_KIND_KEY)->cls) /
						     TC_BLOCK_UNIT);
		} else if (left < 6) {
			break;
		}
		ASSERT_RC(0, rate_window(c, i, 1ull << 40));
	}
	assert_true(keys > 100);
	assert_int_equal(10, tc__class_size(tc__class_of(tc__entry_bytes(1, 88))) / TC_BLOCK_UNIT);
	uint64_t steps, slept;
	tc_stats st;
	int rc = write_counted(c, 88, &steps, &slept);
	ASSERT_RC(0, tc_get_stats(c, &st));
	if (rc != -ENOSPC || st.evictions != 0)
		fail_msg("the write returned %d (%s) and evicted %llu of %d keys of 192 bytes "
			 "(expected -ENOSPC and none: none can give 160)", rc, tc_strerror(rc),
			 (unsigned long long)st.evictions, keys);
	tc_close(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		FX_TEST(test_a_write_with_nothing_to_evict_fails_after_rounds_the_index_does_not_set),
		FX_TEST(test_a_census_that_found_no_room_is_not_repeated_until_the_arena_changes),
		FX_TEST(test_a_write_against_a_pinning_reader_waits_without_turning_the_clock),
		FX_TEST(test_hot_keys_of_another_class_make_room_by_address),
		FX_TEST(test_hot_keys_of_the_same_class_still_make_room),
		FX_TEST(test_an_index_full_of_hot_keys_gives_a_slot_within_three_rounds),
		FX_TEST(test_an_index_full_of_rate_windows_fails_after_one_turn),
		FX_TEST(test_free_blocks_past_a_retired_one_are_room_the_census_sees),
		FX_TEST(test_keys_that_cannot_make_a_block_are_not_evicted),
	};
	return fx_run(tests);
}
