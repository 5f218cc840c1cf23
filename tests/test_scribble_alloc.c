/* SPDX-License-Identifier: MIT */
/*
 * test_scribble_alloc.c - the allocator, the coalescer and tc_audit facing
 * a crash window and scribbled bytes (shm/alloc.c, coalesce.c, audit.c;
 * issue 8, defects 3, 5, 7 and 10).
 *
 * - A free-list head scribbled to name a free block of a smaller class is
 *   never handed out: the write goes elsewhere, the neighbour is intact,
 *   tc_audit succeeds.  Nor is a free block whose class byte and the head
 *   of that class's list were both scribbled (the byte's check copy still
 *   says its real class): the coalescer never re-cuts over its neighbour.
 * - A live block's class byte scribbled larger (to cover its neighbour):
 *   the block is leaked when freed, never listed at that size, and
 *   tc_audit takes the class of its check copy (cls_check) back.
 * - A live block's class byte scribbled smaller (a key's, a DTO element's):
 *   tc_audit takes the copy's class, which holds the entry, and cuts
 *   nothing out of the block.
 * - A free block's class byte scribbled to cover a live neighbour: the
 *   coalescer never re-cuts through the neighbour, and goes on past the
 *   block; tc_audit re-cuts the scribbled block.
 * - tc_audit cuts a carve that never wrote its header (a carver killed
 *   between its bump CAS and its header) into free blocks.
 * - tc_audit of an arena whose last block is such a carve reads nothing
 *   past the end of the mapping (the next page is PROT_NONE).
 * - tc_audit that returns TC_ECORRUPT leaves the index, the headers, the
 *   free and retire lists and the key count as they were.
 * - Such a carve does not stop coalescing past it, nor, under LRU, the
 *   eviction of a window of cold keys past it.
 * - A search that goes past as many untrusted headers as it may leaves
 *   the rest of the arena to the next search, and never records that
 *   nothing fits.
 * - A bump word scribbled backwards (to 0, into the live keys) or with one
 *   bit flipped fails its seal: no write carves a live key's units (free
 *   lists still serve, the rest is TC_ECORRUPT), and tc_audit rebuilds it.
 *   Without LRU, the coalescer still merges listed free blocks.
 *
 * A crash window is reproduced by writing exactly the bytes a killed
 * carver leaves (the bump pointer moved; the class, its check copy and
 * the builder written or not; its slot's name of the block cleared by the
 * cleaner or not; nothing else), so that the hole is where the test wants
 * it.
 */
#include "whitebox.h"
#include "blackbox.h"

#include <signal.h>
#include <sys/mman.h>

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
	ASSERT_RC(0, tc_get(c, k, key_of(k, sizeof(k), i), got, sizeof(got), &m));
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
	tc_cache *c = wb_create(fx_name(name), 1024, 1u << 20, 8,
				TC_EVICT_NONE);
	uint32_t c80 = tc__class_of(80);
	/* Keys 0..19: 80-byte blocks (vlen 8), 20..39: 160-byte blocks. */
	for (unsigned i = 0; i < 40; i++)
		ASSERT_RC(0, set_val(c, i, i < 20 ? 8 : V160));
	ASSERT_RC(0, tc_del(c, k, key_of(k, sizeof(k), 10)));
	ASSERT_RC(0, tc_reclaim(c, NULL));
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
		ASSERT_RC(0, set_val(c, i, V160));
	assert_int_equal(f->state, TC_BLK_FREE);
	for (unsigned i = 0; i < 60; i++)
		if (i != 10)
			expect_val(c, i, i < 20 ? 8 : V160);
	/* The 80-byte class still has its block. */
	ASSERT_RC(0, set_val(c, 10, 8));
	assert_int_equal(tc__ld(&c->h->cls[c80].used), 20);
	expect_val(c, 10, 8);
	tc_audit_report rep;
	ASSERT_RC(0, tc_audit(c, &rep));
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
 * covers key 21: to 320 bytes, which end exactly on block 22's header, or
 * to 256, which end inside key 21's value.  16 KiB values force coalescing
 * from the start of the arena.  320: before a pop checked the block's class
 * (alloc.c), the drain popped block 20 from the 160-byte list and the
 * window's re-cut wrote block headers into key 21's value (key 21 lost).
 * 256: before the walk checked that a size ends on a header and went on
 * past such a block by the free lists (coalesce.c), every search stopped
 * at block 20: -ENOSPC with megabytes free.
 */
static bool kept(unsigned i)
{
	return i < 20 || i == 21 || i % 512 == 0;
}

static void test_scribbled_class_byte_never_recuts_a_live_neighbour(void **state)
{
	(void)state;
	static const uint64_t sizes[] = { 320, 256 };
	for (int v = 0; v < 2; v++) {
		char name[64], k[16];
		tc_cache *c = wb_create(fx_name(name), 16384, 1u << 20, 8,
					TC_EVICT_NONE);
		unsigned n = 0;
		for (;; n++) {
			int rc = set_val(c, n, V160);
			if (rc == -ENOSPC)
				break;
			ASSERT_RC(0, rc);
		}
		for (unsigned i = 0; i < n; i++)
			if (!kept(i))
				ASSERT_RC(0, tc_del(c, k, key_of(k, sizeof(k), i)));
		ASSERT_RC(0, tc_reclaim(c, NULL));
		struct tc_entry *f = (struct tc_entry *)(c->arena + 20 * 160);
		assert_int_equal(f->state, TC_BLK_FREE);
		assert_int_equal(f->cls, C160);
		f->cls = (uint8_t)tc__class_of(sizes[v]);
		tc__st(&c->h->df_hand, 0);
		for (unsigned b = 0; b < 4; b++)
			ASSERT_RC(0, set_val(c, 100000 + b, BIG));
		for (unsigned i = 0; i < n; i++)
			if (kept(i))
				expect_val(c, i, V160);
		for (unsigned b = 0; b < 4; b++)
			expect_val(c, 100000 + b, BIG);
		/* The audit re-cuts the scribbled block: every carved byte is
		 * a block again, free or live. */
		tc_audit_report rep;
		ASSERT_RC(0, tc_audit(c, &rep));
		assert_int_equal(rep.skipped_bytes, 160);
		assert_int_equal(f->cls, C160);
		for (unsigned i = 0; i < n; i++) {
			if (kept(i))
				expect_val(c, i, V160);
			else
				ASSERT_RC(-ENOENT, tc_get(c, k, key_of(k, sizeof(k), i), NULL, 0, NULL));
		}
		tc_close(c);
		tc_unlink(name);
	}
}

/*
 * The same with two scribbles: block 20's class byte to 320 bytes (its size
 * ends exactly on block 22's header) and the 320-byte list's head to name
 * block 20, whose class byte is then its list's.  Before a pop also checked
 * the byte's check copy (cls_check, which still says 160), the drain of the
 * first window popped block 20 from that list and the re-cut wrote block
 * headers over key 21 (-ENOENT).  Now the pop drops block 20 from the list
 * without taking it, and no later write, of any class, takes it either.
 */
static void test_scribbled_class_byte_and_list_head_never_recut_a_live_neighbour(void **state)
{
	(void)state;
	char name[64], k[16];
	uint32_t c320 = tc__class_of(320);
	tc_cache *c = wb_create(fx_name(name), 16384, 1u << 20, 8, TC_EVICT_NONE);
	unsigned n = 0;
	for (;; n++) {
		int rc = set_val(c, n, V160);
		if (rc == -ENOSPC)
			break;
		ASSERT_RC(0, rc);
	}
	for (unsigned i = 0; i < n; i++)
		if (!kept(i))
			ASSERT_RC(0, tc_del(c, k, key_of(k, sizeof(k), i)));
	ASSERT_RC(0, tc_reclaim(c, NULL));
	struct tc_entry *f = (struct tc_entry *)(c->arena + 20 * 160);
	assert_int_equal(f->state, TC_BLK_FREE);
	assert_int_equal(f->cls, C160);
	assert_int_equal(tc__ld(&c->h->cls[c320].nfree), 0);
	f->cls = (uint8_t)c320;
	uint64_t h = tc__ld(&c->h->cls[c320].head);
	tc__st(&c->h->cls[c320].head, ((h >> 32) + 1) << 32 | (20 * 10 + 1));
	tc__st(&c->h->df_hand, 0);
	for (unsigned b = 0; b < 4; b++)
		ASSERT_RC(0, set_val(c, 100000 + b, BIG));
	expect_val(c, 21, V160);
	/* Writes of every class up to 4 KiB, until each gets -ENOSPC. */
	unsigned m = 200000;
	for (uint32_t k2 = tc__class_of(TC_ENTRY_HDR + 16); tc__class_size(k2) <= 4096; k2++)
		while (set_val(c, m, tc__class_size(k2) - TC_ENTRY_HDR - 8) == 0)
			m++;
	for (unsigned i = 0; i < n; i++)
		if (kept(i))
			expect_val(c, i, V160);
	for (unsigned b = 0; b < 4; b++)
		expect_val(c, 100000 + b, BIG);
	tc_close(c);
	tc_unlink(name);
}

/*
 * A free block's check copy scribbled alone: the pop that meets it drops
 * the block from its list (its class byte and copy disagree), so the write
 * goes elsewhere.  tc_audit lists the block again with its copy rewritten
 * from the class byte (every byte of a gap is free: the header's class is
 * as good a cut as any); before it did, the block went back on its list
 * with the bad copy and every later pop dropped it again: a block lost for
 * good, audit after audit.
 */
static void test_audit_repairs_a_free_blocks_check_copy(void **state)
{
	(void)state;
	char name[64], k[16];
	tc_cache *c = wb_create(fx_name(name), 1024, 1u << 20, 8, TC_EVICT_NONE);
	for (unsigned i = 0; i < 40; i++)
		ASSERT_RC(0, set_val(c, i, V160));
	ASSERT_RC(0, tc_del(c, k, key_of(k, sizeof(k), 10)));
	ASSERT_RC(0, tc_reclaim(c, NULL));
	struct tc_entry *f = (struct tc_entry *)(c->arena + 10 * 160);
	uint64_t ref = 10 * 10 + 1;
	assert_int_equal(f->state, TC_BLK_FREE);
	assert_int_equal(tc__ld(&c->h->cls[C160].head) & 0xffffffffu, ref);
	f->cls_check = (uint8_t)~TC_CLS_CHECK(C160);
	ASSERT_RC(0, set_val(c, 100, V160));
	assert_int_equal(f->state, TC_BLK_FREE); /* dropped, not taken */
	assert_int_equal(tc__ld(&c->h->cls[C160].head) & 0xffffffffu, 0);
	tc_audit_report rep;
	ASSERT_RC(0, tc_audit(c, &rep));
	assert_int_equal(rep.live_after, 40);
	assert_int_equal(f->cls_check, TC_CLS_CHECK(C160));
	assert_int_equal(tc__ld(&c->h->cls[C160].head) & 0xffffffffu, ref);
	/* The next 160-byte write takes it. */
	ASSERT_RC(0, set_val(c, 101, V160));
	assert_int_equal(f->state, TC_BLK_LIVE);
	assert_memory_equal(tc__ekey(f), "k101", 4);
	for (unsigned i = 0; i < 40; i++)
		if (i != 10)
			expect_val(c, i, V160);
	expect_val(c, 100, V160);
	expect_val(c, 101, V160);
	tc_close(c);
	tc_unlink(name);
}

/*
 * The class byte of a *live* block scribbled larger: key 10's 160-byte
 * block made to claim 320 bytes, which end exactly on key 12's header and
 * cover key 11.  Key 10 is deleted; before the reclaimer checked a block's
 * class against the lengths of the entry it holds (epoch.c), the block went
 * on the 320-byte list at the size its header claimed, the next 320-byte
 * write took it, and key 11 was overwritten.  Now the block is leaked (no
 * list names it), the writes go elsewhere, and tc_audit, which names the
 * live key 11 inside the block's claimed size, cuts the block back to the
 * units before key 11.
 */
static void test_live_class_byte_scribbled_larger_never_overwrites_a_neighbour(void **state)
{
	(void)state;
	char name[64], k[16];
	tc_cache *c = wb_create(fx_name(name), 1024, 1u << 20, 8, TC_EVICT_NONE);
	uint32_t c320 = tc__class_of(320);
	for (unsigned i = 0; i < 40; i++)
		ASSERT_RC(0, set_val(c, i, V160));
	struct tc_entry *e = (struct tc_entry *)(c->arena + 10 * 160);
	assert_int_equal(e->state, TC_BLK_LIVE);
	assert_int_equal(e->cls, C160);
	assert_int_equal(e->klen, 3);
	assert_memory_equal(tc__ekey(e), "k10", 3);
	tc__st(&e->cls, (uint8_t)c320);
	ASSERT_RC(0, tc_del(c, k, key_of(k, sizeof(k), 10)));
	ASSERT_RC(0, tc_reclaim(c, NULL));
	assert_int_equal(tc__ld(&e->state), TC_BLK_RETIRED);
	assert_int_equal(tc__ld(&c->h->cls[c320].nfree), 0);
	/* Values of 320-byte blocks: "k100".."k119", 248 bytes. */
	for (unsigned i = 100; i < 120; i++)
		ASSERT_RC(0, set_val(c, i, 248));
	for (unsigned i = 0; i < 40; i++)
		if (i != 10)
			expect_val(c, i, V160);
	for (unsigned i = 100; i < 120; i++)
		expect_val(c, i, 248);
	tc_audit_report rep;
	ASSERT_RC(0, tc_audit(c, &rep));
	assert_int_equal(rep.live_after, 59);
	assert_int_equal(tc__ld(&e->state), TC_BLK_FREE);
	assert_int_equal(tc__ld(&e->cls), C160);
	for (unsigned i = 0; i < 40; i++)
		if (i != 10)
			expect_val(c, i, V160);
	for (unsigned i = 100; i < 120; i++)
		expect_val(c, i, 248);
	/* The block serves its real class again. */
	ASSERT_RC(0, set_val(c, 10, V160));
	assert_ptr_equal(tc__block(c, 10 * 160 / TC_BLOCK_UNIT + 1), e);
	expect_val(c, 10, V160);
	tc_close(c);
	tc_unlink(name);
}

/*
 * The same scribble on a block that stays live: tc_audit used to refuse the
 * segment (key 11's word names a unit inside block 10's claimed size) until
 * it was re-created.  The class byte disagrees with its check copy, whose
 * class fits: the audit takes it, and deleting key 10 then frees a
 * 160-byte block.  The scribble to 200 (no class at all) is repaired the
 * same way.
 */
static void test_audit_repairs_a_live_class_byte_from_its_check_copy(void **state)
{
	(void)state;
	static const uint32_t bad[] = { 9 /* 320 bytes */, 200 };
	for (int v = 0; v < 2; v++) {
		char name[64], k[16];
		tc_cache *c = wb_create(fx_name(name), 1024, 1u << 20, 8, TC_EVICT_NONE);
		assert_int_equal(tc__class_of(320), 9);
		for (unsigned i = 0; i < 40; i++)
			ASSERT_RC(0, set_val(c, i, V160));
		struct tc_entry *e = (struct tc_entry *)(c->arena + 10 * 160);
		assert_memory_equal(tc__ekey(e), "k10", 3);
		tc__st(&e->cls, (uint8_t)bad[v]);
		tc_audit_report rep;
		ASSERT_RC(0, tc_audit(c, &rep));
		assert_int_equal(rep.live_after, 40);
		assert_int_equal(tc__ld(&e->cls), C160);
		assert_int_equal(tc__ld(&e->cls_check), TC_CLS_CHECK(C160));
		for (unsigned i = 0; i < 40; i++)
			expect_val(c, i, V160);
		ASSERT_RC(0, tc_del(c, k, key_of(k, sizeof(k), 10)));
		ASSERT_RC(0, tc_reclaim(c, NULL));
		assert_int_equal(tc__ld(&e->state), TC_BLK_FREE);
		assert_int_equal(tc__ld(&c->h->cls[C160].head) & 0xffffffffu,
				 10 * 160 / TC_BLOCK_UNIT + 1);
		for (unsigned i = 100; i < 120; i++)
			ASSERT_RC(0, set_val(c, i, 248));
		for (unsigned i = 0; i < 40; i++)
			if (i != 10)
				expect_val(c, i, V160);
		for (unsigned i = 100; i < 120; i++)
			expect_val(c, i, 248);
		tc_close(c);
		tc_unlink(name);
	}
}

/*
 * The class byte of a live block scribbled *smaller*: key 10's 160-byte
 * block made to claim 64 bytes (plain), or, in a TC_CHECKSUM segment, 128
 * bytes, which hold key and value but not the checksum after them (56-byte
 * values: 136 bytes, a 160-byte block).  The key reads TC_ECORRUPT until
 * tc_audit takes the copy's class back, which holds the entry.  Before the
 * audit chose the class that holds the entry, it kept the scribbled byte
 * because a smaller block "fits" before the next mark: the plain audit cut
 * the last 96 bytes of the block into a free block, writing its header over
 * key 10's value, and kept key 10's word (seen failing: key 10 read back
 * TC_ECORRUPT after the audit, class byte 0); the checksum audit met a
 * 32-byte rest that no block tiles and refused the segment (seen failing:
 * TC_ECORRUPT), at every audit until key 10 was deleted.
 */
static void test_audit_repairs_a_live_class_byte_scribbled_smaller(void **state)
{
	(void)state;
	for (int csum = 0; csum < 2; csum++) {
		char name[64];
		tc_opts o = wb_opts(1024, 1u << 20, 8, TC_EVICT_NONE);
		if (csum)
			o.flags |= TC_CHECKSUM;
		tc_cache *c = NULL;
		(void)tc_unlink(fx_name(name));
		ASSERT_RC(0, tc_open(&c, name, &o));
		size_t len = csum ? 56 : V160;
		uint32_t small = csum ? tc__class_of(128) : 0;
		for (unsigned i = 0; i < 40; i++)
			ASSERT_RC(0, set_val(c, i, len));
		struct tc_entry *e = (struct tc_entry *)(c->arena + 10 * 160);
		assert_memory_equal(tc__ekey(e), "k10", 3);
		assert_int_equal(tc__ld(&e->cls), C160);
		tc__st(&e->cls, (uint8_t)small);
		char k[16];
		unsigned char got[V160];
		ASSERT_RC(TC_ECORRUPT, tc_get(c, k, key_of(k, sizeof(k), 10), got, sizeof(got), NULL));
		tc_audit_report rep;
		ASSERT_RC(0, tc_audit(c, &rep));
		assert_int_equal(rep.live_after, 40);
		assert_int_equal(rep.skipped_bytes, 0);
		assert_int_equal(tc__ld(&e->cls), C160);
		assert_int_equal(tc__ld(&e->cls_check), TC_CLS_CHECK(C160));
		for (unsigned i = 0; i < 40; i++)
			expect_val(c, i, len);
		/* Writes of every small class land outside key 10's block. */
		for (unsigned i = 100; i < 140; i++)
			ASSERT_RC(0, set_val(c, i, (i % 4) * 8));
		for (unsigned i = 0; i < 40; i++)
			expect_val(c, i, len);
		ASSERT_RC(0, tc_audit(c, &rep));
		assert_int_equal(rep.live_after, 80);
		tc_close(c);
		tc_unlink(name);
	}
}

static int dto_sum(const void *dto, size_t len, void *arg)
{
	const unsigned char *p = dto;
	unsigned *sum = arg;
	for (size_t i = 0; i < len; i++)
		*sum += p[i];
	return 0;
}

/*
 * The same for a DTO list's element, which no index word names (the audit
 * reaches it by the list's links, not by a word it checks): in a
 * TC_CHECKSUM segment, the middle one of five 56-byte DTOs (136 bytes, a
 * 160-byte block) gets the class byte of 128 bytes, which hold key and
 * value but not the checksum.  The list reads TC_ECORRUPT until tc_audit
 * takes the copy's class back (seen failing without that choice:
 * TC_ECORRUPT from the audit, for the 32 bytes no block tiles); the list
 * then reads whole, and ends with its run.
 */
static void test_audit_repairs_a_dto_element_class_byte_scribbled_smaller(void **state)
{
	(void)state;
	char name[64];
	tc_opts o = wb_opts(1024, 1u << 20, 8, TC_EVICT_NONE);
	o.flags |= TC_CHECKSUM;
	tc_cache *c = NULL;
	(void)tc_unlink(fx_name(name));
	ASSERT_RC(0, tc_open(&c, name, &o));
	unsigned char dto[56];
	memset(dto, 3, sizeof(dto));
	ASSERT_RC(0, tc_run_start(c, 1, 1));
	for (unsigned i = 0; i < 5; i++)
		ASSERT_RC(0, tc_dto_append(c, "d", 1, 9, dto, sizeof(dto)));
	char dk[64] = "d"; /* a buffer the inline hash may read 64 bytes of */
	struct tc_entry *head = wb_entry_of(c, dk, TC_KIND_DTO);
	struct tc_entry *e = tc__block(c, TC_DTO_PREV(tc__ld(&head->version)));
	e = tc__block(c, TC_DTO_PREV(tc__ld(&e->version)));
	assert_non_null(e);
	assert_int_equal(TC_DTO_COUNT(tc__ld(&e->version)), 3);
	assert_int_equal(tc__ld(&e->cls), C160);
	tc__st(&e->cls, (uint8_t)tc__class_of(128));
	unsigned sum = 0;
	ASSERT_RC(TC_ECORRUPT, tc_dto_each(c, "d", 1, 9, dto_sum, &sum));
	tc_audit_report rep;
	ASSERT_RC(0, tc_audit(c, &rep));
	assert_int_equal(rep.skipped_bytes, 0);
	assert_int_equal(rep.live_blocks, 6); /* five DTOs and the run's anchor */
	assert_int_equal(tc__ld(&e->cls), C160);
	sum = 0;
	ASSERT_RC(0, tc_dto_each(c, "d", 1, 9, dto_sum, &sum));
	assert_int_equal(sum, 5 * 56 * 3);
	ASSERT_RC(0, tc_run_end(c));
	ASSERT_RC(0, tc_sweep(c, 0, NULL));
	ASSERT_RC(0, tc_reclaim(c, NULL));
	ASSERT_RC(0, tc_audit(c, &rep));
	assert_int_equal(rep.live_blocks, 0);
	assert_int_equal(rep.recovered, 0);
	tc_close(c);
	tc_unlink(name);
}

/* ------------------------------------------------------------------ */
/* Defects 3 and 5: tc_audit cuts a carve hole into free blocks         */
/* ------------------------------------------------------------------ */

/*
 * The bytes a carver killed right after its bump CAS leaves, once its
 * slot has been cleaned (the name it stored in inflight before the CAS
 * cleared): the bump pointer moved past a block of class CLS, and, with
 * HALF, the class check copy, class and builder fields it stores before
 * the state (alloc.c, tc__alloc_block).
 */
static uint64_t carve_hole(tc_cache *c, uint32_t cls, bool half)
{
	uint64_t b = tc__carved(c);
	struct tc_entry *e = (struct tc_entry *)(c->arena + b * TC_BLOCK_UNIT);
	if (half) {
		e->cls_check = TC_CLS_CHECK(cls);
		e->cls = (uint8_t)cls;
		e->builder = 3;
	}
	tc__st(&c->h->bump, tc__bump_seal(c->seed, b + tc__class_size(cls) / TC_BLOCK_UNIT));
	return b;
}

/*
 * Fill an EVICT_NONE segment with 160-byte blocks until -ENOSPC, with a
 * killed carve's hole after the first HOLE_AT keys.  Returns the keys set.
 */
static unsigned fill_160_with_hole(tc_cache *c, unsigned hole_at, bool half)
{
	unsigned n = 0;
	for (;; n++) {
		if (n == hole_at)
			carve_hole(c, C160, half);
		int rc = set_val(c, n, V160);
		if (rc == -ENOSPC)
			break;
		ASSERT_RC(0, rc);
	}
	assert_true(n > hole_at + 100);
	return n;
}

static void del_all(tc_cache *c, unsigned n)
{
	char k[16];
	for (unsigned i = 0; i < n; i++)
		ASSERT_RC(0, tc_del(c, k, key_of(k, sizeof(k), i)));
	ASSERT_RC(0, tc_reclaim(c, NULL));
}

/* Free bytes on the free lists, by the gauges (exact after tc_audit). */
static uint64_t listed_bytes(tc_cache *c)
{
	uint64_t sum = 0;
	for (uint32_t k = 0; k < TC_CLASSES_USED; k++)
		sum += tc__ld(&c->h->cls[k].nfree) * tc__class_size(k);
	return sum;
}


/*
 * The same arena, audited first: the audit cuts the hole into a free block
 * (before the fix it stepped over it and left it out of every list), so
 * every carved byte is on a free list, and the 16 KiB value fits.
 */
static void test_audit_cuts_a_carve_hole_into_free_blocks(void **state)
{
	(void)state;
	for (int half = 0; half < 2; half++) {
		char name[64];
		tc_cache *c = wb_create(fx_name(name), 16384, 1u << 20, 8,
					TC_EVICT_NONE);
		unsigned n = fill_160_with_hole(c, 50, half);
		del_all(c, n);
		tc_audit_report rep;
		ASSERT_RC(0, tc_audit(c, &rep));
		assert_int_equal(rep.skipped_bytes, 160);
		assert_int_equal(rep.recovered, 0);
		assert_int_equal(rep.live_blocks, 0);
		assert_int_equal(rep.blocks, n + 1);
		assert_int_equal(listed_bytes(c), tc__carved(c) * TC_BLOCK_UNIT);
		/* The hole is a free 160-byte block with a readable header. */
		struct tc_entry *h = (struct tc_entry *)(c->arena + 50 * 160);
		assert_int_equal(h->state, TC_BLK_FREE);
		assert_int_equal(h->cls, C160);
		ASSERT_RC(0, set_val(c, 100000, BIG));
		expect_val(c, 100000, BIG);
		/* A second audit finds nothing left to cut. */
		ASSERT_RC(0, tc_audit(c, &rep));
		assert_int_equal(rep.skipped_bytes, 0);
		assert_int_equal(rep.recovered, 0);
		tc_close(c);
		tc_unlink(name);
	}
}


#define LAST_KEYS 511 /* 128-byte blocks: 512 fill the 64 KiB arena exactly */

static int audit_with_guard(const char *name)
{
	tc_cache *c = NULL;
	signal(SIGSEGV, SIG_DFL); /* die of it, rather than run cmocka's next test */
	if (tc_open(&c, name, NULL) != 0)
		return BB_EXIT_SETUP;
	if (c->arena + c->arena_bytes != c->base + c->size || wb_guard_after(c) != 0) {
		bb_child_fail("cannot place a guard page after the arena");
		return BB_EXIT_SETUP;
	}
	tc_audit_report rep;
	int rc = tc_audit(c, &rep);
	if (rc != 0) {
		bb_child_fail("tc_audit: %s", tc_strerror(rc));
		return BB_EXIT_FAIL;
	}
	if (rep.skipped_bytes != 128 || rep.live_after != LAST_KEYS || rep.recovered != 0) {
		bb_child_fail("report: skipped %llu, live %lld, recovered %llu",
			      (unsigned long long)rep.skipped_bytes, (long long)rep.live_after,
			      (unsigned long long)rep.recovered);
		return BB_EXIT_FAIL;
	}
	/* The last block is free again: one more key fits. */
	rc = set_val(c, LAST_KEYS, 56);
	if (rc != 0) {
		bb_child_fail("set into the cut hole: %s", tc_strerror(rc));
		return BB_EXIT_FAIL;
	}
	tc_close(c);
	return BB_EXIT_OK;
}

static void test_audit_of_a_hole_at_the_arena_end_stays_in_the_mapping(void **state)
{
	(void)state;
	char name[64];
	/* memory_bytes a multiple of the page: the arena ends the mapping. */
	tc_cache *c = wb_create(fx_name(name), 1024, TC_MIN_MEMORY, 8,
				TC_EVICT_NONE);
	assert_int_equal(c->arena + c->arena_bytes, c->base + c->size);
	for (unsigned i = 0; i < LAST_KEYS; i++)
		ASSERT_RC(0, set_val(c, i, 56)); /* 64 + 8 + 56 = 128 bytes */
	/* The carver of the last block killed after its bump CAS. */
	carve_hole(c, tc__class_of(128), false);
	assert_int_equal(tc__carved(c), c->arena_units);
	tc_close(c);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(audit_with_guard(name));
	/* Before the fix: killed by SIGSEGV reading the page after the arena. */
	assert_int_equal(fx_wait(pid), 0);
	c = NULL;
	ASSERT_RC(0, tc_open(&c, name, NULL));
	for (unsigned i = 0; i <= LAST_KEYS; i++)
		expect_val(c, i, 56);
	tc_close(c);
	tc_unlink(name);
}

/* ------------------------------------------------------------------ */
/* tc_audit's TC_ECORRUPT changes nothing                               */
/* ------------------------------------------------------------------ */

static void test_corrupt_audit_changes_nothing(void **state)
{
	(void)state;
	char name[64], k[16];
	tc_cache *c = wb_create(fx_name(name), 1024, 1u << 20, 8,
				TC_EVICT_NONE);
	for (unsigned i = 0; i < 40; i++)
		ASSERT_RC(0, set_val(c, i, V160));
	for (unsigned i = 0; i < 10; i++)
		ASSERT_RC(0, tc_del(c, k, key_of(k, sizeof(k), i)));
	ASSERT_RC(0, tc_reclaim(c, NULL));
	/* Keys 10..14 are retired, not yet reclaimed. */
	for (unsigned i = 10; i < 15; i++)
		ASSERT_RC(0, tc_del(c, k, key_of(k, sizeof(k), i)));
	/* An abandoned half-insert naming a free block. */
	uint64_t *tw = NULL;
	for (uint64_t b = 0; b < c->nbuckets && !tw; b++)
		for (int i = 0; i < TC_BUCKET_SLOTS && !tw; i++)
			if (c->index[b].w[i] == 0)
				tw = &c->index[b].w[i];
	assert_non_null(tw);
	*tw = TC_SW_TENT | 1;
	/* A reachable block whose class byte covers the next key, its check
	 * copy too: the entry still fits its class, so its word is kept, and
	 * the walk meets the next key's mark inside it. */
	struct tc_entry *e = (struct tc_entry *)(c->arena + 30 * 160);
	assert_int_equal(e->state, TC_BLK_LIVE);
	assert_int_equal(((struct tc_entry *)(c->arena + 31 * 160))->state, TC_BLK_LIVE);
	e->cls = (uint8_t)tc__class_of(320);
	e->cls_check = TC_CLS_CHECK(tc__class_of(320));
	struct tc_hdr before = *c->h;
	struct tc_bucket *idx = malloc(c->nbuckets * sizeof(*idx));
	memcpy(idx, c->index, c->nbuckets * sizeof(*idx));
	uint8_t *arena = malloc(c->arena_bytes);
	memcpy(arena, c->arena, c->arena_bytes);
	tc_audit_report rep;
	ASSERT_RC(TC_ECORRUPT, tc_audit(c, &rep));
	assert_int_equal(rep.tentative_cleared, 0);
	assert_int_equal(*tw, TC_SW_TENT | 1);
	assert_memory_equal(idx, c->index, c->nbuckets * sizeof(*idx));
	assert_memory_equal(arena, c->arena, c->arena_bytes);
	for (uint32_t k2 = 0; k2 < TC_CLASSES_USED; k2++) {
		assert_int_equal(c->h->cls[k2].head, before.cls[k2].head);
		assert_int_equal(c->h->cls[k2].nfree, before.cls[k2].nfree);
		assert_int_equal(c->h->cls[k2].used, before.cls[k2].used);
	}
	assert_int_equal(c->h->retire_head, before.retire_head);
	assert_int_equal(c->h->live, before.live);
	assert_int_equal(c->h->state, TC_STATE_READY);
	free(idx);
	free(arena);
	/* Repaired, the audit goes through and clears the half-insert. */
	e->cls = C160;
	e->cls_check = TC_CLS_CHECK(C160);
	ASSERT_RC(0, tc_audit(c, &rep));
	assert_int_equal(rep.tentative_cleared, 1);
	assert_int_equal(*tw, 0);
	assert_int_equal(rep.live_after, 25);
	assert_int_equal(rep.recovered, 0);
	for (unsigned i = 15; i < 40; i++)
		expect_val(c, i, V160);
	tc_close(c);
	tc_unlink(name);
}

/* ------------------------------------------------------------------ */
/* Defect 3: a carve hole does not end coalescing                       */
/* ------------------------------------------------------------------ */

/*
 * A fully free arena of 160-byte blocks, with a hole after 50 blocks (8000
 * bytes: no 16 KiB window before it), takes a 16 KiB value.  Before the
 * fix the window search stopped at the hole and only ever searched the
 * arena before it: -ENOSPC.  Variants: the carver wrote nothing; it wrote
 * the class, its check copy and the builder; and, the same, with its slot
 * not yet cleaned, so that the hole is still named in flight (a carve that
 * may be at work: the walk must not read it, and goes on past it by the
 * free lists).
 */
static void test_carve_hole_does_not_stop_coalescing(void **state)
{
	(void)state;
	for (int variant = 0; variant < 3; variant++) {
		char name[64];
		tc_cache *c = wb_create(fx_name(name), 16384, 1u << 20, 8,
					TC_EVICT_NONE);
		unsigned n = fill_160_with_hole(c, 50, variant > 0);
		del_all(c, n);
		struct tc_rslot *carver = &c->slots[2]; /* builder 3 */
		if (variant == 2) {
			/* A thread of ours, so that no cleaner clears it. */
			tc__st(&carver->owner, (uint64_t)getpid() << 32 | 0x7ffffffe);
			tc__st(&carver->inflight, 50 * 10 + 1);
		}
		ASSERT_RC(0, set_val(c, 100000, BIG));
		expect_val(c, 100000, BIG);
		if (variant == 2) {
			assert_int_equal(tc__ld(&carver->inflight), 50 * 10 + 1);
			tc__st(&carver->inflight, 0);
			tc__st(&carver->owner, 0);
		}
		/* The hole is still there and nothing was written into it. */
		tc_audit_report rep;
		ASSERT_RC(0, tc_audit(c, &rep));
		assert_int_equal(rep.skipped_bytes, 160);
		assert_int_equal(rep.recovered, 0);
		assert_int_equal(rep.live_after, 1);
		expect_val(c, 100000, BIG);
		tc_close(c);
		tc_unlink(name);
	}
}

/*
 * Under LRU, an arena of cold live 160-byte keys with a killed carve's hole
 * at its start (df_hand 0) and no free block on any list: a 16 KiB value
 * (a class with no entry the clock could evict) needs the coalescer to
 * evict a window of cold keys past the hole.  With HALF the carver wrote
 * what it stores before the state, cls_check included (alloc.c).  Before
 * hole_unit counted the check copy's byte as one a carver writes (it took
 * only the class and builder), the hole's third unit read as a header
 * that cannot be trusted, the walk went to the free lists for the next
 * block start (resync), found none, and ended the search there: the whole
 * arena after the hole was never searched, df_nofit was recorded, and the
 * write failed with -ENOSPC (seen failing: rc -28).
 */
static void test_carve_hole_does_not_stop_lru_coalescing(void **state)
{
	(void)state;
	for (int half = 0; half < 2; half++) {
		char name[64];
		tc_cache *c = wb_create(fx_name(name), 16384, 1u << 20, 8, TC_EVICT_LRU);
		carve_hole(c, C160, half);
		/* Stop short of the evict-ahead range (64 blocks of the class
		 * from the arena's end) and of room for a 20 KiB carve: no key
		 * is evicted, no block listed. */
		uint64_t big = tc__class_size(tc__class_of(BIG + 64)) / TC_BLOCK_UNIT;
		unsigned n = 0;
		while (c->arena_units - tc__carved(c) >= big) {
			ASSERT_RC(0, set_val(c, n, V160));
			n++;
		}
		assert_true(c->arena_units - tc__carved(c) >= 64 * 160 / TC_BLOCK_UNIT);
		for (uint32_t k = 0; k < TC_CLASSES_USED; k++)
			assert_int_equal(tc__ld(&c->h->cls[k].nfree), 0);
		assert_int_equal(tc__ld(&c->h->df_hand), 0);
		ASSERT_RC(0, set_val(c, 100000, BIG));
		expect_val(c, 100000, BIG);
		tc_stats st;
		ASSERT_RC(0, tc_get_stats(c, &st));
		assert_int_equal(st.merges, 1);
		/* The hole is untouched: the audit cuts it. */
		tc_audit_report rep;
		ASSERT_RC(0, tc_audit(c, &rep));
		assert_int_equal(rep.skipped_bytes, 160);
		expect_val(c, 100000, BIG);
		tc_close(c);
		tc_unlink(name);
	}
}

/* ------------------------------------------------------------------ */
/* More untrusted headers than one search goes past                    */
/* ------------------------------------------------------------------ */

#define SCRIBBLED 5u /* one more than a search's resyncs (DF_RESYNC_MAX) */

/*
 * Five free blocks' class bytes scribbled out of range, 100 blocks apart
 * from block 50 on: no run before the fifth holds the 20 KiB block of a
 * 16 KiB value, the free run after it does.  A search goes past four such
 * headers by the free lists (resync) and gives up at the fifth.  Before
 * the fix it then recorded df_nofit as if the whole arena had been
 * searched and started again from the arena's start, so that the
 * allocator's next attempts skipped the search or met the same five:
 * -ENOSPC for ever.  A search out of resyncs leaves df_hand at the fifth
 * and records nothing; the next (the same tc_set's next attempt) goes on
 * from there, and the value fits at the first call.
 */
static void test_a_search_out_of_resyncs_goes_on_next_time(void **state)
{
	(void)state;
	char name[64];
	tc_cache *c = wb_create(fx_name(name), 16384, 1u << 20, 8,
				TC_EVICT_NONE);
	unsigned n = 0;
	for (;; n++) {
		int rc = set_val(c, n, V160);
		if (rc == -ENOSPC)
			break;
		ASSERT_RC(0, rc);
	}
	assert_true(n > 50 + 100 * SCRIBBLED + 200);
	del_all(c, n);
	for (unsigned j = 0; j < SCRIBBLED; j++) {
		struct tc_entry *f = (struct tc_entry *)(c->arena + (50 + 100 * j) * 160);
		assert_int_equal(f->state, TC_BLK_FREE);
		assert_int_equal(f->cls, C160);
		f->cls = 0xee;
	}
	tc__st(&c->h->df_hand, 0);
	tc__st(&c->h->df_nofit, 0);
	ASSERT_RC(0, set_val(c, 100000, BIG));
	expect_val(c, 100000, BIG);
	tc_stats st;
	ASSERT_RC(0, tc_get_stats(c, &st));
	assert_int_equal(st.merges, 1);
	assert_int_equal(tc__ld(&c->h->df_nofit), 0);
	/* The audit re-cuts the scribbled blocks. */
	tc_audit_report rep;
	ASSERT_RC(0, tc_audit(c, &rep));
	assert_int_equal(rep.skipped_bytes, SCRIBBLED * 160);
	for (unsigned j = 0; j < SCRIBBLED; j++) {
		struct tc_entry *f = (struct tc_entry *)(c->arena + (50 + 100 * j) * 160);
		assert_int_equal(f->cls, C160);
	}
	expect_val(c, 100000, BIG);
	tc_close(c);
	tc_unlink(name);
}

/* ------------------------------------------------------------------ */
/* A scribbled bump word (found by the fuzzer, tests/fuzz)              */
/* ------------------------------------------------------------------ */

#define BK_KEYS  4000u  /* 160-byte blocks: 640,000 of the 1 MiB arena */
#define BK_FREED 10u    /* keys deleted before the scribble: their blocks are listed */

enum { BK_ZERO, BK_MID, BK_BYTE, BK_ONES };

/* The new keys' value sizes: 80-, 160-, 1088-byte and 20 KiB blocks. */
static const size_t bk_len[] = { 8, V160, 1000, BIG };
#define BK_NLEN (sizeof(bk_len) / sizeof(bk_len[0]))

/*
 * A segment filled with keys, then its bump word scribbled as the fuzzer
 * did: a small number (0), a number in the middle of the live keys, or one
 * bit of its low byte flipped.  Before the seal, carve() trusted any value
 * below the arena's end and handed out units of live keys: the next writes
 * overwrote keys nobody had scribbled (key 0 read back changed).  Now the
 * word fails its seal: writes that a free list serves succeed (0), the rest
 * get TC_ECORRUPT (no eviction, no carve, no coalescing into live keys),
 * every old key reads back exactly, and tc_audit rebuilds the word from its
 * walk, after which writes of every size work again.
 *
 * BK_ONES (found by fuzz_segment, 2026-12-06): every bit set, seen first
 * by a handle opened after the scribble.  A handle's cache of the last word
 * that passed its seal started out as all ones ("no word yet"), so the
 * scribbled word matched it without a seal check and carve() handed out
 * units past the arena's end: a write through the mapping's end (SIGSEGV).
 */
static void bump_scribble(int how, int eviction)
{
	char name[64], k[16];
	tc_cache *c = wb_create(fx_name(name), 8192, 1u << 20, 8,
				eviction);
	for (unsigned i = 0; i < BK_KEYS; i++)
		ASSERT_RC(0, set_val(c, i, V160));
	for (unsigned i = 100; i < 100 + BK_FREED; i++)
		ASSERT_RC(0, tc_del(c, k, key_of(k, sizeof(k), i)));
	ASSERT_RC(0, tc_reclaim(c, NULL));
	assert_int_equal(tc__ld(&c->h->cls[C160].nfree), BK_FREED);
	uint64_t *bw = &c->h->bump;
	if (how == BK_ZERO)
		tc__st(bw, 0);
	else if (how == BK_MID)
		tc__st(bw, c->arena_units / 2); /* unit 32768: key 3276's block */
	else if (how == BK_ONES)
		tc__st(bw, UINT64_MAX);
	else
		((volatile uint8_t *)bw)[0] ^= 1;
	if (how == BK_ONES) {
		/* A handle that has validated no bump word yet. */
		tc_opts o = wb_opts(8192, 1u << 20, 8, eviction);
		o.flags = 0; /* attach */
		tc_close(c);
		c = NULL;
		ASSERT_RC(0, tc_open(&c, name, &o));
	}
	/* The freed blocks serve 160-byte writes. */
	for (unsigned i = 100; i < 100 + BK_FREED; i++)
		ASSERT_RC(0, set_val(c, i, V160));
	/* Nothing else is carved: every other write is refused. */
	int rc[2][BK_NLEN];
	for (unsigned r = 0; r < 2; r++)
		for (unsigned j = 0; j < BK_NLEN; j++)
			rc[r][j] = set_val(c, 10000 + r * 100 + j, bk_len[j]);
	for (unsigned i = 0; i < BK_KEYS; i++)
		expect_val(c, i, V160);
	for (unsigned r = 0; r < 2; r++)
		for (unsigned j = 0; j < BK_NLEN; j++)
			assert_int_equal(rc[r][j], TC_ECORRUPT);
	tc_stats st;
	ASSERT_RC(0, tc_get_stats(c, &st));
	assert_int_equal(st.entries, BK_KEYS);
	assert_int_equal(st.memory_carved, c->arena_bytes); /* nothing left to carve */
	/* tc_audit recomputes the carved end from the blocks it walks. */
	tc_audit_report rep;
	ASSERT_RC(0, tc_audit(c, &rep));
	assert_int_equal(rep.live_after, BK_KEYS);
	ASSERT_RC(0, tc_get_stats(c, &st));
	assert_int_equal(st.memory_carved, (uint64_t)BK_KEYS * 160);
	for (unsigned r = 0; r < 2; r++)
		for (unsigned j = 0; j < BK_NLEN; j++)
			ASSERT_RC(0, set_val(c, 10000 + r * 100 + j, bk_len[j]));
	for (unsigned i = 0; i < BK_KEYS; i++)
		expect_val(c, i, V160);
	for (unsigned r = 0; r < 2; r++)
		for (unsigned j = 0; j < BK_NLEN; j++)
			expect_val(c, 10000 + r * 100 + j, bk_len[j]);
	ASSERT_RC(0, tc_audit(c, &rep));
	assert_int_equal(rep.live_after, BK_KEYS + 2 * BK_NLEN);
	tc_close(c);
	tc_unlink(name);
}

static void test_bump_scribbled_to_zero_never_carves_a_live_key(void **state)
{
	(void)state;
	bump_scribble(BK_ZERO, TC_EVICT_NONE);
	bump_scribble(BK_ZERO, TC_EVICT_LRU);
}

static void test_bump_scribbled_into_the_keys_never_carves_a_live_key(void **state)
{
	(void)state;
	bump_scribble(BK_MID, TC_EVICT_NONE);
	bump_scribble(BK_MID, TC_EVICT_LRU);
}

/*
 * Without LRU, a write that no free list and no carve serves coalesces
 * free blocks: with the bump word scribbled, the coalescer still merges
 * listed free blocks (the walk ends at the arena's end, past which it
 * steps over never-written units), and never a live key's.
 */
static void test_bump_scribbled_still_coalesces_free_blocks(void **state)
{
	(void)state;
	char name[64], k[16];
	tc_cache *c = wb_create(fx_name(name), 8192, 1u << 20, 8,
				TC_EVICT_NONE);
	for (unsigned i = 0; i < BK_KEYS; i++)
		ASSERT_RC(0, set_val(c, i, V160));
	for (unsigned i = 100; i < 100 + BK_FREED; i++)
		ASSERT_RC(0, tc_del(c, k, key_of(k, sizeof(k), i)));
	ASSERT_RC(0, tc_reclaim(c, NULL));
	tc__st(&c->h->bump, 0);
	/* 1088 bytes from eight of the ten free 160-byte blocks (units
	 * 1000..1079); the other two stay listed. */
	ASSERT_RC(0, set_val(c, 20000, 1000));
	ASSERT_RC(TC_ECORRUPT, set_val(c, 20001, 1000));
	for (unsigned i = 0; i < BK_KEYS; i++)
		if (i < 100 || i >= 100 + BK_FREED)
			expect_val(c, i, V160);
	expect_val(c, 20000, 1000);
	tc_audit_report rep;
	ASSERT_RC(0, tc_audit(c, &rep));
	assert_int_equal(rep.live_after, BK_KEYS - BK_FREED + 1);
	ASSERT_RC(0, set_val(c, 20001, 1000));
	expect_val(c, 20000, 1000);
	expect_val(c, 20001, 1000);
	tc_close(c);
	tc_unlink(name);
}

/*
 * Two scribbles at once: the bump word, and the class byte of the last
 * key's block (key 39, the last carved), made smaller (64 bytes) or larger
 * (320 bytes).  tc_audit rebuilds the carved end from the last block it
 * marks, then takes the class that holds key 39 (427bef3).  Before the end
 * was taken from the larger of the class byte and its copy, the smaller
 * byte gave an end inside key 39's block, so that only the scribbled
 * class fit, and the audit kept it and zeroed the arena past it, key 39's
 * value included (seen failing: class byte 0 after the audit).
 */
static void test_bump_and_last_class_byte_scribbled_keep_the_last_key(void **state)
{
	(void)state;
	static const uint64_t sizes[] = { 64, 320 };
	for (int v = 0; v < 2; v++) {
		char name[64];
		tc_cache *c = wb_create(fx_name(name), 1024, 1u << 20, 8, TC_EVICT_NONE);
		for (unsigned i = 0; i < 40; i++)
			ASSERT_RC(0, set_val(c, i, V160));
		assert_int_equal(tc__carved(c), 40 * 160 / TC_BLOCK_UNIT);
		struct tc_entry *e = (struct tc_entry *)(c->arena + 39 * 160);
		assert_memory_equal(tc__ekey(e), "k39", 3);
		tc__st(&e->cls, (uint8_t)tc__class_of(sizes[v]));
		tc__st(&c->h->bump, 0);
		tc_audit_report rep;
		ASSERT_RC(0, tc_audit(c, &rep));
		assert_int_equal(rep.live_after, 40);
		assert_int_equal(tc__ld(&e->cls), C160);
		for (unsigned i = 0; i < 40; i++)
			expect_val(c, i, V160);
		ASSERT_RC(0, set_val(c, 40, V160));
		for (unsigned i = 0; i < 41; i++)
			expect_val(c, i, V160);
		tc_close(c);
		tc_unlink(name);
	}
}

static void test_bump_scribbled_to_all_ones_is_refused_by_a_new_handle(void **state)
{
	(void)state;
	bump_scribble(BK_ONES, TC_EVICT_NONE);
	bump_scribble(BK_ONES, TC_EVICT_LRU);
}

static void test_bump_with_one_bit_flipped_is_refused(void **state)
{
	(void)state;
	bump_scribble(BK_BYTE, TC_EVICT_NONE);
	bump_scribble(BK_BYTE, TC_EVICT_LRU);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		FX_TEST(test_scribbled_head_of_a_smaller_class_is_never_handed_out),
		FX_TEST(test_scribbled_class_byte_never_recuts_a_live_neighbour),
		FX_TEST(test_scribbled_class_byte_and_list_head_never_recut_a_live_neighbour),
		FX_TEST(test_audit_repairs_a_free_blocks_check_copy),
		FX_TEST(test_live_class_byte_scribbled_larger_never_overwrites_a_neighbour),
		FX_TEST(test_audit_repairs_a_live_class_byte_from_its_check_copy),
		FX_TEST(test_audit_repairs_a_live_class_byte_scribbled_smaller),
		FX_TEST(test_audit_repairs_a_dto_element_class_byte_scribbled_smaller),
		FX_TEST(test_audit_cuts_a_carve_hole_into_free_blocks),
		FX_TEST(test_audit_of_a_hole_at_the_arena_end_stays_in_the_mapping),
		FX_TEST(test_corrupt_audit_changes_nothing),
		FX_TEST(test_carve_hole_does_not_stop_coalescing),
		FX_TEST(test_carve_hole_does_not_stop_lru_coalescing),
		FX_TEST(test_a_search_out_of_resyncs_goes_on_next_time),
		FX_TEST(test_bump_scribbled_to_zero_never_carves_a_live_key),
		FX_TEST(test_bump_scribbled_into_the_keys_never_carves_a_live_key),
		FX_TEST(test_bump_with_one_bit_flipped_is_refused),
		FX_TEST(test_bump_scribbled_to_all_ones_is_refused_by_a_new_handle),
		FX_TEST(test_bump_scribbled_still_coalesces_free_blocks),
		FX_TEST(test_bump_and_last_class_byte_scribbled_keep_the_last_key),
	};
	return fx_run(tests);
}
