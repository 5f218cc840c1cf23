/* SPDX-License-Identifier: MIT */
/*
 * room.h - the parts of room.c ("memory is full") that every write runs:
 * static inline, so that the write path pays no call for them.
 */
#ifndef TC_ROOM_H
#define TC_ROOM_H

#include "internal.h"

#define EVICT_SCAN_MAX 1024 /* buckets per eviction or run sweep from tc__make_room */

/* room.c */
bool tc__make_room(tc_cache *c, struct tc_rslot *s, uint32_t cls, bool need_slot, int round,
		   uint64_t *t0);
int  tc__evict_n(tc_cache *c, struct tc_rslot *s, uint32_t want, bool need_slot, int goal,
		 uint64_t limit);
void tc__drop_private(tc_cache *c, struct tc_rslot *s, struct tc_entry *e);

/*
 * Allocate a block of at least BYTES for slot S: tc__alloc_block (alloc.c),
 * and when neither a free block nor a carve serves, coalesce (coalesce.c)
 * unless the eviction policy coalesces from tc__make_room instead (LRU: a
 * walk per failed pop would cost every evicting write).  NULL with *rc =
 * -ENOSPC: the caller makes room outside its read section and retries;
 * TC_ECORRUPT: the bump word fails its seal and no free block (nor a
 * coalesced one) serves: nothing is carved and nothing evicted until
 * tc_audit.
 */
static inline struct tc_entry *tc__alloc(tc_cache *c, struct tc_rslot *s, uint64_t bytes,
					  int *rc)
{
	struct tc_entry *e = tc__alloc_block(c, s, bytes, rc);
	if (TC_LIKELY(e != NULL) || *rc == -EMSGSIZE || c->eviction == TC_EVICT_LRU)
		return e;
	e = tc__coalesce(c, s, tc__class_of(bytes));
	if (e)
		*rc = 0;
	return e;
}

/* Reclaim early, from a writer that has retired RECLAIM_BATCH bytes (or
 * 1/16 of a small arena) since its last reclaim, so that allocation rarely
 * has to wait and no single write walks a long chain: the walk is what a
 * write's worst case pays for. */
#define RECLAIM_BATCH (1024 * 1024ull)
#define RECLAIM_STEP 4  /* blocks of the pending chain freed per write */
static inline void tc__maybe_reclaim(tc_cache *c, struct tc_rslot *s)
{
	if (tc__in_section(c))
		return;
	if (tc__ld(&s->reclaim)) {
		tc__reclaim_step(c, s, RECLAIM_STEP);
		return;
	}
	uint64_t batch = c->arena_bytes / 16 < RECLAIM_BATCH ? c->arena_bytes / 16 : RECLAIM_BATCH;
	if (tc__ld(&s->since) > batch)
		tc__reclaim_budget(c, s, NULL, RECLAIM_STEP);
}

/*
 * Evict ahead (TC_EVICT_LRU): once the arena is carved out and class CLS's
 * free list is short of two reclaim batches, each write of that class
 * evicts two entries of it, a bucket or two of the clock at a time.  Their
 * blocks come back with the next batched grace period, so allocation keeps
 * finding free blocks and a write almost never has to make room itself
 * (which costs a membarrier, an interrupt on every CPU running a reader).
 */
static inline void tc__evict_ahead(tc_cache *c, struct tc_rslot *s, uint32_t cls)
{
	if (c->eviction != TC_EVICT_LRU || cls >= TC_CLASSES_USED || tc__in_section(c))
		return;
	uint64_t size = tc__class_size(cls);
	uint64_t carved = tc__carved(c);
	if (carved == TC_BUMP_BAD)
		return; /* a scribbled bump word: writes get TC_ECORRUPT, not evictions */
	if (c->arena_units - carved >= 64 * (size / TC_BLOCK_UNIT))
		return; /* still carving */
	uint64_t batch = c->arena_bytes / 16 < RECLAIM_BATCH ? c->arena_bytes / 16 : RECLAIM_BATCH;
	if (tc__ld(&c->h->cls[cls].nfree) >= 2 * batch / size + 16)
		return;
	tc__evict_n(c, s, cls, false, 2, 4);
}

#endif /* TC_ROOM_H */
