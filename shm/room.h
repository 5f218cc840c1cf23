/* SPDX-License-Identifier: MIT */
/*
 * room.h - the parts of room.c ("memory is full") that every write runs:
 * static inline, so that the write path pays no call for them.
 */
#ifndef TC_ROOM_H
#define TC_ROOM_H

#include "internal.h"


/* room.c */
bool tc__make_room(tc_cache *c, struct tc_rslot *s, uint32_t cls, bool need_slot, int round,
		   uint64_t *t0);
void tc__drop_private(tc_cache *c, struct tc_rslot *s, struct tc_entry *e);

/*
 * Allocate a block of at least BYTES for slot S: tc__alloc_block (alloc.c),
 * and when neither a free block nor a carve serves, coalesce (coalesce.c)
 * unless the eviction policy coalesces from tc__make_room instead
 * (coalesce_in_alloc, evict.c).  NULL with *rc =
 * -ENOSPC: the caller makes room outside its read section and retries;
 * TC_ECORRUPT: the bump word fails its seal and no free block (nor a
 * coalesced one) serves: nothing is carved and nothing evicted until
 * tc_audit.
 */
static inline struct tc_entry *tc__alloc(tc_cache *c, struct tc_rslot *s, uint64_t bytes,
					  int *rc)
{
	struct tc_entry *e = tc__alloc_block(c, s, bytes, rc);
	if (TC_LIKELY(e != NULL) || *rc == -EMSGSIZE || !c->evict->coalesce_in_alloc)
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

/* The eviction policy's work after each write of class CLS (evict.c). */
static inline void tc__evict_ahead(tc_cache *c, struct tc_rslot *s, uint32_t cls)
{
	if (c->evict->ahead)
		c->evict->ahead(c, s, cls);
}

#endif /* TC_ROOM_H */
