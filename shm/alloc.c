/* SPDX-License-Identifier: MIT */
/*
 * alloc.c - the in-segment allocator: size classes carved from the arena,
 * each with a lock-free free list.
 *
 * Classes run from 64 bytes to 1.25 MiB, four per power of two (64, 80, 96,
 * 112, 128, 160, ...), so a block wastes at most a fifth of itself.  A class
 * gets memory by carving from the arena's bump pointer (one CAS) and keeps
 * it: freed blocks go to their class's free list, a Treiber stack whose head
 * is (generation << 32 | block ref) in one 64-bit word, so a pop that lost
 * the block to another pop and push in between fails its CAS (no ABA).
 *
 * Links read from the segment are checked before use; a broken free list is
 * cut (its tail leaks) rather than followed.
 *
 * The bump pointer is one word that carries its own check: the carved
 * units and a tag, a hash of them keyed with the segment's seed
 * (tc__bump_seal).  A scribbled word (a small number, one byte changed)
 * fails the tag, so carve() never hands out units below the true carved
 * end, which belong to live blocks; it refuses instead (TC_ECORRUPT from
 * tc__alloc when no free block serves either), until tc_audit rebuilds the
 * word from the blocks it walks (audit.c).  A fresh process checks the
 * same way: the key is in the segment.
 *
 * A block being built is named in the builder's reader slot ("inflight"),
 * so that a builder killed before publishing does not leak it: whoever
 * clears the dead slot retires the block unless it was published.
 */
#include "internal.h"

/* Units fit in 32 bits: the arena is at most TC_MAX_MEMORY. */
_Static_assert(TC_MAX_MEMORY / TC_BLOCK_UNIT <= 0xffffffffull, "bump units fit 32 bits");

uint32_t tc__class_of(uint64_t n)
{
	if (n <= 64)
		return 0;
	n -= 1;
	uint32_t lg = 63u - (uint32_t)__builtin_clzll(n);
	uint32_t sub = (uint32_t)(n >> (lg - 2)) & 3u;
	return (lg - 6) * 4 + sub + 1;
}

/* tc__pop_free when the head is not a FREE block of the class popped at once. */
static __attribute__((noinline)) struct tc_entry *pop_slow(tc_cache *c, uint32_t cls)
{
	struct tc_class *k = &c->h->cls[cls];
	for (int tries = 0; tries < 1000; tries++) {
		uint64_t head = tc__ld(&k->head);
		uint64_t ref = head & 0xffffffffu;
		if (!ref)
			return NULL;
		struct tc_entry *e = tc__block(c, ref);
		uint64_t next = e ? tc__ld(&e->link) : 0;
		uint32_t st = e ? tc__ld(&e->state) : 0;
		if (!e || next > c->arena_units || (st != TC_BLK_FREE && st != TC_BLK_CLAIMED) ||
		    ref - 1 + tc__class_size(cls) / TC_BLOCK_UNIT > c->arena_units) {
			/* Broken list: cut it.  Its blocks leak; nothing crashes.
			 * If the head moved meanwhile, E was popped by a racing
			 * thread (hence not FREE): no breakage, retry. */
			if (tc__cas(&k->head, head, ((head >> 32) + 1) << 32) == head)
				return NULL;
			continue;
		}
		uint64_t nh = ((head >> 32) + 1) << 32 | next;
		if (tc__ld(&e->cls) != cls || tc__ld(&e->cls_check) != TC_CLS_CHECK(cls)) {
			/* Not a block of this class, by its class byte or by
			 * the byte's check copy (a class byte scribbled to the
			 * class of a list whose head was scribbled to name the
			 * block): drop it from this list (a racing pop moved
			 * the head: retry). */
			tc__cas(&k->head, head, nh);
			continue;
		}
		if (tc__cas(&k->head, head, nh) == head) {
			tc__add(&k->nfree, (uint64_t)-1);
			return e;
		}
	}
	return NULL;
}

/*
 * The block a pop left at the head of a free list is the one the next
 * write of the class takes, and it was last touched when it was freed,
 * long ago: ask for its first lines now (for writing: the next pop writes
 * its header, the next build the rest), so that they arrive before that
 * write instead of during it.  A hint: NEXT is only bounds-checked (a
 * scribbled link costs a wasted prefetch; the pop that takes the block
 * checks it), and another thread may take the block first.  At most four
 * lines: an entry of a small value, the common case.  Always inline: a
 * function that only prefetches has no effect GCC must keep, and a call of
 * it was dropped whole.
 */
static inline __attribute__((always_inline)) void prefetch_next(tc_cache *c, uint64_t next,
								uint32_t cls)
{
	uint64_t size = tc__class_size(cls);
	if (next - 1 >= c->arena_units || (next - 1) * TC_BLOCK_UNIT + size > c->arena_bytes)
		return;
	tc__prefetch_w(c->arena + (next - 1) * TC_BLOCK_UNIT, size);
}

/*
 * Whether block E (ref REF), whose link reads NEXT, is one that a pop of
 * class CLS takes at once: its link inside the arena, FREE, of the class
 * by its byte and the byte's copy, and the class's size inside the arena.
 * pop_free's common case, and tc__listed_head's test of a head.
 */
static inline __attribute__((always_inline)) bool
takes_at_once(tc_cache *c, struct tc_entry *e, uint64_t ref, uint64_t next, uint32_t cls)
{
	return next <= c->arena_units && tc__ld(&e->state) == TC_BLK_FREE &&
	       tc__ld(&e->cls) == cls && tc__ld(&e->cls_check) == TC_CLS_CHECK(cls) &&
	       ref - 1 + tc__class_size(cls) / TC_BLOCK_UNIT <= c->arena_units;
}

/*
 * Pop the head of class CLS's free list: the block, in whatever state it
 * was pushed (FREE, or CLAIMED by the coalescer), or NULL when the list is
 * empty or broken (cut).  The caller decides whose the block is.
 *
 * The block's own header must say class CLS: a head scribbled to name a
 * free block of another class (or a class byte scribbled on a listed
 * block) would otherwise hand out a block smaller than the class, and the
 * write into it would run over the next block, someone else's key.  Such a
 * block is unlinked without being taken: it is not this list's to give
 * (if it is on the list of its own class, that list still names it), and
 * the pop goes on with its link, which every later pop checks the same way.
 * The coalescer's drain pops through here too, so a block whose class byte
 * disagrees with its list never becomes OUT and is never re-cut
 * (coalesce.c).
 */
static inline __attribute__((always_inline)) struct tc_entry *pop_free(tc_cache *c,
								      uint32_t cls)
{
	/* The common case inline, with few registers live: a FREE head of
	 * this class, in bounds, popped by the first CAS.  Anything else
	 * (an empty or broken list, a CLAIMED block, a lost race) is the
	 * loop's, which reads everything again. */
	struct tc_class *k = &c->h->cls[cls];
	uint64_t head = tc__ld(&k->head), ref = head & 0xffffffffu;
	struct tc_entry *e = tc__block(c, ref);
	if (TC_UNLIKELY(!e))
		return ref ? pop_slow(c, cls) : NULL;
	uint64_t next = tc__ld(&e->link);
	if (TC_LIKELY(takes_at_once(c, e, ref, next, cls)) &&
	    tc__cas(&k->head, head, ((head >> 32) + 1) << 32 | next) == head) {
		tc__add(&k->nfree, (uint64_t)-1);
		prefetch_next(c, next, cls);
		return e;
	}
	return pop_slow(c, cls);
}

struct tc_entry *tc__pop_free(tc_cache *c, uint32_t cls)
{
	return pop_free(c, cls);
}

/*
 * The head of class CLS's free list when it names a block that a pop
 * would hand out at once (takes_at_once), else 0: tc__room_for's look for
 * memory listed since its last attempt (room.c).  A head that names
 * another class's block or none (a scribble) is 0, however often the
 * pops that drop it move its generation.  A hint: the block may be popped
 * as we read it.
 */
uint64_t tc__listed_head(tc_cache *c, uint32_t cls)
{
	uint64_t head = tc__ld(&c->h->cls[cls].head), ref = head & 0xffffffffu;
	struct tc_entry *e = tc__block(c, ref);
	return e && takes_at_once(c, e, ref, tc__ld(&e->link), cls) ? head : 0;
}

/*
 * A popped block is ours once its state moves FREE -> LIVE.  One the
 * coalescer claimed (coalesce.c) is the coalescer's: we only unlinked it,
 * and say so (OUT).  A claim undone meanwhile (CLAIMED -> FREE) makes the
 * block ours again, so the loop runs at most twice.
 */
static bool take_popped(tc_cache *c, struct tc_entry *e)
{
	TC_CRASH_POINT(alloc_popped);
	for (;;) {
		uint32_t st = tc__cas(&e->state, TC_BLK_FREE, TC_BLK_LIVE);
		if (st == TC_BLK_FREE)
			return true;
		if (st != TC_BLK_CLAIMED)
			return false; /* not a free block: a scribbled list, leak it */
		if (tc__cas(&e->state, TC_BLK_CLAIMED, TC_BLK_OUT) == TC_BLK_CLAIMED) {
			tc__add(&c->h->df_pending, (uint64_t)-1);
			return false;
		}
	}
}

/*
 * Carve a block of class CLS for slot S, named in S's inflight *before* the
 * bump CAS: whoever sees the carve (the bump past it) also sees the name,
 * so the coalescer's walk knows a header-less carve that may still be at
 * work, and never reads its bytes (coalesce.c, named_from).  A name left
 * by a failed CAS or a kill before it names bytes not ours: the slot
 * cleaner retires only a LIVE block built from the slot.
 *
 * The CAS compares the whole sealed word read: a scribble between our read
 * and our CAS fails it, and the next read fails the seal.  *BAD is set
 * when the word fails its seal (nothing carved).
 */
static struct tc_entry *carve(tc_cache *c, struct tc_rslot *s, uint32_t cls, bool *bad)
{
	uint64_t units = tc__class_size(cls) / TC_BLOCK_UNIT, was = tc__ld(&s->inflight);
	for (;;) {
		uint64_t w = tc__ld(&c->h->bump), b = tc__bump_units(c, w);
		if (b == TC_BUMP_BAD || c->arena_units - b < units) {
			*bad = b == TC_BUMP_BAD;
			tc__st(&s->inflight, was);
			return NULL;
		}
		uint64_t nw = tc__bump_seal(c->seed, b + units);
		tc__st(&s->inflight, b + 1);
		if (tc__cas(&c->h->bump, w, nw) == w)
			return (struct tc_entry *)(c->arena + b * TC_BLOCK_UNIT);
	}
}

/* The end of every allocation: block E of class CLS is ready for its builder. */
static inline __attribute__((always_inline)) struct tc_entry *
alloc_ready(tc_cache *c, uint32_t cls, struct tc_entry *e, int *rc)
{
	TC_CRASH_POINT(alloc_ready);
	tc__add(&c->h->cls[cls].used, 1);
	tc__st(&e->link, 0);
	tc__st(&e->refbit, 0);
	*rc = 0;
	return e;
}

/* tc__alloc_block when the free list gave nothing: carve.  Out of line, so
 * that the pop, which serves almost every write, keeps few registers. */
static __attribute__((noinline)) struct tc_entry *alloc_carved(tc_cache *c, struct tc_rslot *s,
							       uint32_t cls, int *rc)
{
	bool bad = false;
	struct tc_entry *e = carve(c, s, cls, &bad);
	if (!e) {
		*rc = bad ? TC_ECORRUPT : -ENOSPC;
		return NULL;
	}
	TC_CRASH_POINT(alloc_carved);
	tc__st(&e->cls_check, TC_CLS_CHECK(cls));
	TC_CRASH_POINT(alloc_class_copy);
	tc__st(&e->cls, (uint8_t)cls);
	tc__st(&e->builder, (uint16_t)(s - c->slots + 1));
	cmm_smp_wmb(); /* class before state: the arena is walked by them */
	tc__st(&e->state, TC_BLK_LIVE);
	return alloc_ready(c, cls, e, rc);
}

/* Block E, popped from class CLS's list and taken, becomes slot S's. */
static inline __attribute__((always_inline)) struct tc_entry *
alloc_owned(tc_cache *c, struct tc_rslot *s, uint32_t cls, struct tc_entry *e, int *rc)
{
	/* The pop checked the class byte and its copy against the list's:
	 * both are written already. */
	TC_CRASH_POINT(alloc_taken);
	/* Named in our slot before anything else can go wrong. */
	tc__st(&s->inflight, tc__ref_of(c, e));
	tc__st(&e->builder, (uint16_t)(s - c->slots + 1));
	return alloc_ready(c, cls, e, rc);
}

/* tc__alloc_block after a popped block that was not ours (claimed by the
 * coalescer, or not free): pop again until one is, else carve. */
static __attribute__((noinline)) struct tc_entry *alloc_again(tc_cache *c, struct tc_rslot *s,
							      uint32_t cls, int *rc)
{
	struct tc_entry *e;
	while ((e = tc__pop_free(c, cls)) != NULL && !take_popped(c, e))
		;
	return e ? alloc_owned(c, s, cls, e, rc) : alloc_carved(c, s, cls, rc);
}

/*
 * Allocate a block of at least BYTES for the thread of slot S, without
 * waiting for anything: pop the class's free list, else carve.  NULL with
 * *rc = -ENOSPC when neither works, TC_ECORRUPT when the bump word fails
 * its seal (nothing is carved until tc_audit), -EMSGSIZE past the largest
 * class.  Writers call tc__alloc (room.h), which coalesces then.  The
 * first pop inline; another pop, or the carve, out of line.
 */
struct tc_entry *tc__alloc_block(tc_cache *c, struct tc_rslot *s, uint64_t bytes, int *rc)
{
	uint32_t cls = tc__class_of(bytes);
	if (cls >= TC_CLASSES_USED) {
		*rc = -EMSGSIZE;
		return NULL;
	}
	struct tc_entry *e = pop_free(c, cls);
	if (TC_UNLIKELY(!e))
		return alloc_carved(c, s, cls, rc);
	if (TC_UNLIKELY(!take_popped(c, e)))
		return alloc_again(c, s, cls, rc);
	return alloc_owned(c, s, cls, e, rc);
}

/* A free list's head after a push of REF: the generation above it grows. */
static inline uint64_t free_head(uint64_t head, uint64_t ref)
{
	return ((head >> 32) + 1) << 32 | ref;
}

/* Push block E of class CLS (a block nobody else can reach) on its free
 * list.  Inline in tc__free_block, which the reclaim walk calls for about
 * one block per write. */
static inline __attribute__((always_inline)) void push_free(tc_cache *c, struct tc_entry *e,
							    uint32_t cls)
{
	struct tc_class *k = &c->h->cls[cls];
	uint64_t ref = tc__ref_of(c, e);
	/* No builder on a free block: a dead slot's cleaner must never take
	 * the block for its own once another writer pops it. */
	tc__st(&e->builder, 0);
	tc__st(&e->state, TC_BLK_FREE);
	TC_CRASH_POINT(free_unlisted);
	tc__stack_push(c, &k->head, e, ref, free_head, NULL);
	tc__add(&k->nfree, 1);
}

void tc__push_free(tc_cache *c, struct tc_entry *e, uint32_t cls)
{
	push_free(c, e, cls);
}

/*
 * Return a block that no reader can reach any more to its class.  Its
 * class byte was last checked when the block was handed out; a scribble
 * since (a live block's class made larger would list it at a size that
 * covers its neighbour) shows as a class that no longer agrees with
 * cls_check: such a block, or one whose size leaves the arena, is leaked
 * rather than listed, until tc_audit cuts the arena again (false).
 */
bool tc__free_block(tc_cache *c, struct tc_entry *e)
{
	uint32_t cls = tc__ld(&e->cls);
	uint64_t ref = tc__ref_of(c, e);
	if (cls >= TC_CLASSES_USED || tc__ld(&e->cls_check) != TC_CLS_CHECK(cls) ||
	    (ref - 1) * TC_BLOCK_UNIT + tc__class_size(cls) > c->arena_bytes)
		return false;
	push_free(c, e, cls);
	tc__add(&c->h->cls[cls].used, (uint64_t)-1);
	return true;
}
