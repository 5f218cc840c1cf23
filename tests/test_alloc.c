/* SPDX-License-Identifier: MIT */
/*
 * test_alloc.c - white-box tests of the in-segment allocator (shm/alloc.c).
 *
 * - Class math: every size 1 .. 1.25 MiB maps to the smallest class that
 *   holds it; classes are 16-byte multiples, strictly growing; larger sizes
 *   are refused with -EMSGSIZE.
 * - Free lists: a freed block is the next one handed out in its class;
 *   gauges (used, nfree) follow.
 * - Carving: the arena is cut until exhausted, then NULL with -ENOSPC.
 * - Scribbled lists and bump word: never a block that crosses the arena's
 *   end, never a crash.
 * - A head the coalescer claimed is left to it; the pops after it drop
 *   blocks whose class byte or check copy was scribbled, as the first does.
 * - Threads allocating and freeing one class: no block handed out twice.
 */
#include "whitebox.h"

#include <pthread.h>

#define MAX_BYTES (1310720ull) /* 1.25 MiB, the largest class */

static void test_class_math_round_trips_every_size(void **state)
{
	(void)state;
	uint32_t prev = 0;
	for (uint64_t n = 1; n <= MAX_BYTES; n++) {
		uint32_t k = tc__class_of(n);
		if (k >= TC_CLASSES_USED)
			fail_msg("size %llu: class %u out of range", (unsigned long long)n, k);
		uint64_t sz = tc__class_size(k);
		if (sz < n)
			fail_msg("size %llu: class %u holds only %llu", (unsigned long long)n, k,
				 (unsigned long long)sz);
		if (k > 0 && tc__class_size(k - 1) >= n)
			fail_msg("size %llu: class %u, but class %u (%llu B) already holds it",
				 (unsigned long long)n, k, k - 1,
				 (unsigned long long)tc__class_size(k - 1));
		if (k < prev)
			fail_msg("size %llu: class %u below the class of a smaller size",
				 (unsigned long long)n, k);
		prev = k;
	}
	assert_int_equal(tc__class_of(MAX_BYTES), TC_CLASSES_USED - 1);
	assert_true(tc__class_of(MAX_BYTES + 1) >= TC_CLASSES_USED);
	assert_int_equal(tc__class_size(0), 64);
	assert_int_equal(tc__class_size(TC_CLASSES_USED - 1), MAX_BYTES);
	for (uint32_t k = 0; k < TC_CLASSES_USED; k++) {
		uint64_t sz = tc__class_size(k);
		/* The table the write path reads is the arithmetic. */
		assert_int_equal(sz, tc__class_size_calc(k));
		assert_int_equal(sz % TC_BLOCK_UNIT, 0);
		assert_int_equal(tc__class_of(sz), k);
		if (k)
			assert_true(sz > tc__class_size(k - 1));
		/* At most a fifth of a block is waste: four classes per doubling. */
		if (k)
			assert_true((sz - tc__class_size(k - 1)) * 4 <= sz);
	}
	/* The largest entry the API allows fits a class. */
	assert_true(tc__class_of(tc__entry_bytes(TC_KEY_MAX, TC_VALUE_MAX)) < TC_CLASSES_USED);
}

struct fixture {
	char name[64];
	tc_cache *c;
	struct tc_rslot *s;
};

static int setup_small(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	fx_name(f->name);
	f->c = wb_create(f->name, TC_MIN_ENTRIES, TC_MIN_MEMORY, 8, TC_EVICT_NONE);
	f->s = tc__slot(f->c);
	assert_non_null(f->s);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	tc_close(f->c);
	free(f);
	return fx_teardown(state);
}

static bool in_arena(tc_cache *c, struct tc_entry *e, uint32_t k)
{
	uint8_t *p = (uint8_t *)e;
	return p >= c->arena && (uint64_t)(p - c->arena) % TC_BLOCK_UNIT == 0 &&
	       (uint64_t)(p - c->arena) + tc__class_size(k) <= c->arena_bytes;
}

static void test_too_large_is_emsgsize(void **state)
{
	struct fixture *f = *state;
	int rc = 0;
	assert_null(tc__alloc(f->c, f->s, MAX_BYTES + 1, &rc));
	assert_int_equal(rc, -EMSGSIZE);
	assert_int_equal(tc__ld(&f->s->inflight), 0);
	assert_int_equal(wb_blocks_used(f->c), 0);
}

static void test_freed_block_is_reused_first(void **state)
{
	struct fixture *f = *state;
	tc_cache *c = f->c;
	int rc = -1;
	uint32_t k = tc__class_of(200);
	struct tc_entry *a = tc__alloc(c, f->s, 200, &rc);
	assert_non_null(a);
	assert_int_equal(rc, 0);
	assert_true(in_arena(c, a, k));
	assert_int_equal(a->cls, k);
	assert_int_equal(a->state, TC_BLK_LIVE);
	assert_int_equal(tc__ld(&f->s->inflight), tc__ref_of(c, a));
	assert_int_equal(a->builder, (uint16_t)(f->s - c->slots + 1));
	struct tc_entry *b = tc__alloc(c, f->s, 200, &rc);
	assert_non_null(b);
	assert_ptr_not_equal(a, b);
	assert_int_equal(tc__ld(&c->h->cls[k].used), 2);

	tc__free_block(c, a);
	assert_int_equal(a->state, TC_BLK_FREE);
	assert_int_equal(tc__ld(&c->h->cls[k].used), 1);
	assert_int_equal(tc__ld(&c->h->cls[k].nfree), 1);
	uint64_t bump = tc__carved(c);
	struct tc_entry *a2 = tc__alloc(c, f->s, 210, &rc); /* same class */
	assert_ptr_equal(a2, a);
	assert_int_equal(tc__carved(c), bump); /* popped, not carved */
	assert_int_equal(tc__ld(&c->h->cls[k].nfree), 0);

	/* LIFO: the last freed comes back first. */
	tc__free_block(c, a2);
	tc__free_block(c, b);
	assert_ptr_equal(tc__alloc(c, f->s, 200, &rc), b);
	assert_ptr_equal(tc__alloc(c, f->s, 200, &rc), a);
	/* Another class does not take them. */
	struct tc_entry *o = tc__alloc(c, f->s, 64, &rc);
	assert_non_null(o);
	assert_true(o != a && o != b);
	assert_int_equal(o->cls, 0);
}

static void test_carving_exhausts_the_arena_then_enospc(void **state)
{
	struct fixture *f = *state;
	tc_cache *c = f->c;
	int rc = 0;
	uint64_t n = 0;
	struct tc_entry *last = NULL;
	for (;;) {
		struct tc_entry *e = tc__alloc(c, f->s, 64, &rc);
		if (!e)
			break;
		assert_true(in_arena(c, e, 0));
		assert_true(last == NULL || (uint8_t *)e == (uint8_t *)last + 64);
		last = e;
		n++;
		assert_true(n <= c->arena_bytes / 64);
	}
	assert_int_equal(rc, -ENOSPC);
	assert_int_equal(n, c->arena_bytes / 64);
	assert_int_equal(tc__carved(c), c->arena_units);
	rc = 0;
	assert_null(tc__alloc(c, f->s, 1000, &rc));
	assert_int_equal(rc, -ENOSPC);
	/* Freed memory stays in its class: one 64 B block does not serve 1000 B. */
	tc__free_block(c, last);
	assert_null(tc__alloc(c, f->s, 1000, &rc));
	assert_int_equal(rc, -ENOSPC);
	assert_ptr_equal(tc__alloc(c, f->s, 10, &rc), last);
	assert_int_equal(rc, 0);
}

/*
 * A free-list head scribbled to name a block whose header fits but whose
 * class does not: handing it out would let the writer copy past the arena.
 */
static void test_scribbled_free_head_never_crosses_arena_end(void **state)
{
	struct fixture *f = *state;
	tc_cache *c = f->c;
	uint32_t k = tc__class_of(1024);
	uint64_t ref = (c->arena_bytes - TC_ENTRY_HDR) / TC_BLOCK_UNIT + 1;
	struct tc_entry *e = tc__block(c, ref);
	assert_non_null(e);
	e->state = TC_BLK_FREE;
	e->link = 0;
	e->cls = (uint8_t)k;
	c->h->cls[k].head = (5ull << 32) | ref;
	int rc = 0;
	struct tc_entry *got = tc__alloc(c, f->s, 1024, &rc);
	if (got && !in_arena(c, got, k))
		fail_msg("tc__alloc handed out a %llu-byte block at arena offset %llu of %llu",
			 (unsigned long long)tc__class_size(k),
			 (unsigned long long)((uint8_t *)got - c->arena),
			 (unsigned long long)c->arena_bytes);
}

/* A free block the coalescer has claimed (CLAIMED) at the head of its
 * list: the pop unlinks it and marks it OUT (the coalescer's now, one
 * pending claim fewer), and the allocation takes the next block. */
static void test_a_claimed_head_is_left_to_the_coalescer_and_the_next_block_taken(void **state)
{
	struct fixture *f = *state;
	tc_cache *c = f->c;
	int rc = -1;
	struct tc_entry *a = tc__alloc(c, f->s, 200, &rc);
	struct tc_entry *b = tc__alloc(c, f->s, 200, &rc);
	assert_non_null(a);
	assert_non_null(b);
	assert_true(tc__free_block(c, b));
	assert_true(tc__free_block(c, a)); /* the head: a, then b */
	tc__st(&a->state, TC_BLK_CLAIMED);
	tc__st(&c->h->df_pending, 1);
	rc = -1;
	struct tc_entry *got = tc__alloc(c, f->s, 200, &rc);
	assert_ptr_equal(got, b);
	assert_int_equal(rc, 0);
	assert_int_equal(got->state, TC_BLK_LIVE);
	assert_int_equal(tc__ld(&f->s->inflight), tc__ref_of(c, b));
	assert_int_equal(a->state, TC_BLK_OUT);
	assert_int_equal(tc__ld(&c->h->df_pending), 0);
}

/*
 * The pops after a claimed head (alloc_again) check each block as the
 * first pop does: behind the claimed head, a free block whose class copy
 * or class byte was scribbled is dropped from the list, never handed out
 * (the write into it would take it for a block of the class), and the
 * allocation takes the next good block, then carves.
 */
static void test_the_pops_after_a_claimed_head_drop_scribbled_blocks(void **state)
{
	struct fixture *f = *state;
	tc_cache *c = f->c;
	for (int what = 0; what < 2; what++) {
		int rc = -1;
		struct tc_entry *b[4];
		for (int i = 0; i < 4; i++) {
			b[i] = tc__alloc(c, f->s, 200, &rc);
			assert_non_null(b[i]);
		}
		uint32_t k = tc__ld(&b[0]->cls);
		for (int i = 3; i >= 0; i--)
			assert_true(tc__free_block(c, b[i])); /* the list: b0, b1, b2, b3 */
		tc__st(&b[0]->state, TC_BLK_CLAIMED);
		tc__st(&c->h->df_pending, 1);
		if (what == 0)
			tc__st(&b[1]->cls_check, (uint8_t)(TC_CLS_CHECK(k) ^ 1));
		else
			tc__st(&b[1]->cls, (uint8_t)(k + 1));
		tc__st(&b[2]->cls_check, (uint8_t)(TC_CLS_CHECK(k) ^ 2));
		rc = -1;
		struct tc_entry *got = tc__alloc(c, f->s, 200, &rc);
		assert_int_equal(rc, 0);
		assert_ptr_equal(got, b[3]);
		assert_int_equal(tc__ld(&b[0]->state), TC_BLK_OUT);
		assert_int_equal(tc__ld(&b[1]->state), TC_BLK_FREE);
		assert_int_equal(tc__ld(&b[2]->state), TC_BLK_FREE);
		assert_int_equal(tc__ld(&c->h->cls[k].head) & 0xffffffffu, 0);
		struct tc_entry *next = tc__alloc(c, f->s, 200, &rc);
		assert_non_null(next); /* carved: none of the dropped ones */
		for (int i = 0; i < 3; i++)
			assert_ptr_not_equal(next, b[i]);
		assert_true(tc__free_block(c, got));
		assert_true(tc__free_block(c, next));
		/* Leave no block of the class listed for the next round. */
		while (tc__pop_free(c, k) != NULL)
			;
	}
}

static void test_scribbled_links_and_bump_fail_cleanly(void **state)
{
	struct fixture *f = *state;
	tc_cache *c = f->c;
	int rc = 0;
	/* Head beyond the arena: the list is cut, carving still works. */
	c->h->cls[3].head = (1ull << 32) | (c->arena_units + 5);
	struct tc_entry *e = tc__alloc(c, f->s, tc__class_size(3), &rc);
	assert_non_null(e);
	assert_true(in_arena(c, e, 3));
	assert_int_equal(c->h->cls[3].head & 0xffffffffu, 0);
	/* A link beyond the arena behind a valid head. */
	tc__free_block(c, e);
	e->link = c->arena_units + 100;
	struct tc_entry *g = tc__alloc(c, f->s, tc__class_size(3), &rc);
	assert_true(g == NULL || in_arena(c, g, 3));
	/* A block on the list that is not marked free. */
	struct tc_entry *h = tc__alloc(c, f->s, tc__class_size(3), &rc);
	assert_non_null(h);
	tc__free_block(c, h);
	h->state = TC_BLK_LIVE;
	struct tc_entry *i = tc__alloc(c, f->s, tc__class_size(3), &rc);
	assert_true(i != h);
	/* Bump word past the arena (even with a valid tag) or scribbled:
	 * TC_ECORRUPT, no block (it fails its seal; nothing is free to
	 * coalesce). */
	c->h->bump = tc__bump_seal(c->seed, c->arena_units + 1);
	c->h->cls[5].head = 0;
	assert_null(tc__alloc(c, f->s, tc__class_size(5), &rc));
	assert_int_equal(rc, TC_ECORRUPT);
	c->h->bump = UINT64_MAX;
	assert_null(tc__alloc(c, f->s, tc__class_size(5), &rc));
	assert_int_equal(rc, TC_ECORRUPT);
	/* A free of a block with a scribbled class is refused (leaked). */
	struct tc_entry *x = tc__block(c, 1);
	x->cls = 200;
	uint64_t heads[TC_CLASSES_USED];
	for (int k = 0; k < TC_CLASSES_USED; k++)
		heads[k] = c->h->cls[k].head;
	tc__free_block(c, x);
	for (int k = 0; k < TC_CLASSES_USED; k++)
		assert_int_equal(c->h->cls[k].head, heads[k]);
}

/* ------------------------------------------------------------------ */
/* Threads                                                              */
/* ------------------------------------------------------------------ */

#define AT_THREADS 4
#define AT_ITERS 20000
#define AT_HELD 8

struct at_arg {
	tc_cache *c;
	int id;
	int bad;
};

static void *at_main(void *p)
{
	struct at_arg *a = p;
	tc_cache *c = a->c;
	struct tc_rslot *s = tc__slot(c);
	if (!s) {
		a->bad = -1;
		return NULL;
	}
	struct tc_entry *held[AT_HELD] = { 0 };
	uint32_t k = tc__class_of(256);
	for (int it = 0; it < AT_ITERS; it++) {
		int j = it % AT_HELD;
		if (held[j]) {
			/* Nobody else wrote our block while we held it. */
			uint8_t *p8 = (uint8_t *)held[j] + TC_ENTRY_HDR;
			for (uint64_t b = 0; b < tc__class_size(k) - TC_ENTRY_HDR; b++)
				if (p8[b] != (uint8_t)(a->id + 1)) {
					a->bad++;
					break;
				}
			tc__free_block(c, held[j]);
			held[j] = NULL;
		}
		int rc;
		struct tc_entry *e = tc__alloc(c, s, 256, &rc);
		if (!e) {
			a->bad++;
			continue;
		}
		memset((uint8_t *)e + TC_ENTRY_HDR, a->id + 1, tc__class_size(k) - TC_ENTRY_HDR);
		held[j] = e;
	}
	for (int j = 0; j < AT_HELD; j++)
		if (held[j])
			tc__free_block(c, held[j]);
	tc__st(&s->inflight, 0);
	return NULL;
}

static void test_threads_never_share_a_block(void **state)
{
	(void)state;
	char name[64];
	tc_cache *c = wb_create(fx_name(name), 1024, 1 << 20, 8,
				TC_EVICT_NONE);
	pthread_t th[AT_THREADS];
	struct at_arg args[AT_THREADS];
	for (int i = 0; i < AT_THREADS; i++) {
		args[i] = (struct at_arg){ c, i, 0 };
		assert_int_equal(pthread_create(&th[i], NULL, at_main, &args[i]), 0);
	}
	int bad = 0;
	for (int i = 0; i < AT_THREADS; i++) {
		pthread_join(th[i], NULL);
		bad += args[i].bad;
	}
	uint32_t k = tc__class_of(256);
	uint64_t used = tc__ld(&c->h->cls[k].used), nfree = tc__ld(&c->h->cls[k].nfree);
	uint64_t carved = tc__carved(c) * TC_BLOCK_UNIT / tc__class_size(k);
	/* Walk the free list: every carved block is on it exactly once. */
	uint64_t n = 0, ref = c->h->cls[k].head & 0xffffffffu;
	while (ref && n <= carved) {
		struct tc_entry *e = tc__block(c, ref);
		assert_non_null(e);
		assert_int_equal(e->state, TC_BLK_FREE);
		ref = e->link;
		n++;
	}
	tc_close(c);
	tc_unlink(name);
	assert_int_equal(bad, 0);
	assert_int_equal(used, 0);
	assert_int_equal(nfree, carved);
	assert_int_equal(n, carved);
	/* At most AT_THREADS * AT_HELD blocks are ever held at once, so no more
	 * are carved — unless a pop that loses a race to another pop gives up
	 * and carves instead of retrying (which also yields -ENOSPC while the
	 * class has free blocks, once the arena is carved out). */
	assert_true(carved <= AT_THREADS * AT_HELD);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		FX_TEST(test_class_math_round_trips_every_size),
		cmocka_unit_test_setup_teardown(test_too_large_is_emsgsize, setup_small, teardown),
		cmocka_unit_test_setup_teardown(test_freed_block_is_reused_first, setup_small,
						teardown),
		cmocka_unit_test_setup_teardown(test_carving_exhausts_the_arena_then_enospc,
						setup_small, teardown),
		cmocka_unit_test_setup_teardown(test_scribbled_free_head_never_crosses_arena_end,
						setup_small, teardown),
		cmocka_unit_test_setup_teardown(
			test_a_claimed_head_is_left_to_the_coalescer_and_the_next_block_taken,
			setup_small, teardown),
		cmocka_unit_test_setup_teardown(test_the_pops_after_a_claimed_head_drop_scribbled_blocks,
						setup_small, teardown),
		cmocka_unit_test_setup_teardown(test_scribbled_links_and_bump_fail_cleanly,
						setup_small, teardown),
		FX_TEST(test_threads_never_share_a_block),
	};
	return fx_run(tests);
}
