/* SPDX-License-Identifier: MIT */
/*
 * test_scribble_alloc.c - the allocator, the coalescer and tc_audit facing
 * scribbled bytes (shm/alloc.c, coalesce.c; issue 8, defects 7 and 10).
 *
 * - A free-list head scribbled to name a free block of a smaller class is
 *   never handed out: the write goes elsewhere, the neighbour is intact,
 *   tc_audit succeeds.
 * - A free block's class byte scribbled to cover a live neighbour: the
 *   coalescer never re-cuts through the neighbour.
 */
#include "whitebox.h"
#include "blackbox.h"

#define V160   80u   /* value bytes of a 160-byte block (klen <= 8) */
#define BIG    16384u /* a value of the 20 KiB class */
#define C160   5u    /* class of 160 bytes */

static void val_of(unsigned char *v, size_t len, unsigned i)
{
	for (size_t j = 0; j < len; j++)
		v[j] = (unsigned char)(i * 37 + j * 11 + 1);
}

static size_t key_of(char *k, size_t cap, unsigned i)
{
	return (size_t)snprintf(k, cap, "k%u", i);
}

static int set_val(tc_cache *c, unsigned i, size_t len)
{
	unsigned char v[BIG];
	char k[16];
	val_of(v, len, i);
	return tc_set(c, k, key_of(k, sizeof(k), i), v, len, 0, 0);
}

/* Key I holds exactly its value of LEN bytes. */
static void expect_val(tc_cache *c, unsigned i, size_t len)
{
	unsigned char want[BIG], got[BIG];
	char k[16];
	tc_meta m;
	val_of(want, len, i);
	WB_RC(0, tc_get(c, k, key_of(k, sizeof(k), i), got, sizeof(got), &m));
	assert_int_equal(m.len, len);
	assert_memory_equal(got, want, len);
}

/* ------------------------------------------------------------------ */
/* Defect 7: a pop checks the block's class                             */
/* ------------------------------------------------------------------ */

/*
 * Keys of 80-byte and 160-byte blocks side by side; one 80-byte key is
 * deleted; the 160-byte class's list head is scribbled to name that free
 * 80-byte block.  Before the fix, the next 160-byte write took it and
 * wrote 160 bytes over the following key, which then read back changed,
 * and tc_audit returned TC_ECORRUPT for ever after.
 */
static void test_scribbled_head_of_a_smaller_class_is_never_handed_out(void **state)
{
	(void)state;
	char name[64], k[16];
	tc_cache *c = wb_create(wb_name(name, sizeof(name), "sa-pop"), 1024, 1u << 20, 8,
				TC_EVICT_NONE);
	uint32_t c80 = tc__class_of(80);
	/* Keys 0..19: 80-byte blocks (vlen 8), 20..39: 160-byte blocks. */
	for (unsigned i = 0; i < 40; i++)
		WB_RC(0, set_val(c, i, i < 20 ? 8 : V160));
	WB_RC(0, tc_del(c, k, key_of(k, sizeof(k), 10)));
	WB_RC(0, tc_reclaim(c, NULL));
	/* Block 10 (80 bytes at unit 50) is free; key 11 follows it. */
	uint64_t ref = 10 * 5 + 1;
	struct tc_entry *f = tc__block(c, ref);
	assert_int_equal(f->state, TC_BLK_FREE);
	assert_int_equal(f->cls, c80);
	assert_int_equal(tc__ld(&c->h->cls[c80].head) & 0xffffffffu, ref);
	uint64_t h = tc__ld(&c->h->cls[C160].head);
	tc__st(&c->h->cls[C160].head, ((h >> 32) + 1) << 32 | ref);
	/* New 160-byte values: none lands on the 80-byte block. */
	for (unsigned i = 40; i < 60; i++)
		WB_RC(0, set_val(c, i, V160));
	assert_int_equal(f->state, TC_BLK_FREE);
	for (unsigned i = 0; i < 60; i++)
		if (i != 10)
			expect_val(c, i, i < 20 ? 8 : V160);
	/* The 80-byte class still has its block. */
	WB_RC(0, set_val(c, 10, 8));
	assert_int_equal(tc__ld(&c->h->cls[c80].used), 20);
	expect_val(c, 10, 8);
	tc_audit_report rep;
	WB_RC(0, tc_audit(c, &rep));
	assert_int_equal(rep.live_after, 60);
	for (unsigned i = 0; i < 60; i++)
		expect_val(c, i, i < 20 ? 8 : V160);
	tc_close(c);
	tc_unlink(name);
}

/* ------------------------------------------------------------------ */
/* Defect 10: the coalescer never re-cuts through a live block          */
/* ------------------------------------------------------------------ */

/*
 * An arena of 160-byte blocks: keys 0..19 and every 512th key stay, the rest
 * are deleted.  Block 20, free, starts the first window; block 21 (key 21,
 * kept) follows it.  Block 20's class byte is scribbled so that its size
 * covers key 21: to 320 bytes, which end exactly on block 22's header.
 * 16 KiB values force coalescing from the start of the arena.  Before a
 * pop checked the block's class (alloc.c), the drain popped block 20 from
 * the 160-byte list and the window's re-cut wrote block headers into key
 * 21's value (key 21 lost).
 */
static bool kept(unsigned i)
{
	return i < 20 || i == 21 || i % 512 == 0;
}

static void test_scribbled_class_byte_never_recuts_a_live_neighbour(void **state)
{
	(void)state;
	static const uint64_t sizes[] = { 320 };
	for (int v = 0; v < 1; v++) {
		char name[64], k[16];
		tc_cache *c = wb_create(wb_name(name, sizeof(name), "sa-df"), 16384, 1u << 20, 8,
					TC_EVICT_NONE);
		unsigned n = 0;
		for (;; n++) {
			int rc = set_val(c, n, V160);
			if (rc == -ENOSPC)
				break;
			WB_RC(0, rc);
		}
		for (unsigned i = 0; i < n; i++)
			if (!kept(i))
				WB_RC(0, tc_del(c, k, key_of(k, sizeof(k), i)));
		WB_RC(0, tc_reclaim(c, NULL));
		struct tc_entry *f = (struct tc_entry *)(c->arena + 20 * 160);
		assert_int_equal(f->state, TC_BLK_FREE);
		assert_int_equal(f->cls, C160);
		f->cls = (uint8_t)tc__class_of(sizes[v]);
		tc__st(&c->h->df_hand, 0);
		for (unsigned b = 0; b < 4; b++)
			WB_RC(0, set_val(c, 100000 + b, BIG));
		for (unsigned i = 0; i < n; i++)
			if (kept(i))
				expect_val(c, i, V160);
		for (unsigned b = 0; b < 4; b++)
			expect_val(c, 100000 + b, BIG);
		for (unsigned i = 0; i < n; i++) {
			if (kept(i))
				expect_val(c, i, V160);
			else
				WB_RC(-ENOENT, tc_get(c, k, key_of(k, sizeof(k), i), NULL, 0, NULL));
		}
		tc_close(c);
		tc_unlink(name);
	}
}


int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_scribbled_head_of_a_smaller_class_is_never_handed_out),
		cmocka_unit_test(test_scribbled_class_byte_never_recuts_a_live_neighbour),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
