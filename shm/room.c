/* SPDX-License-Identifier: MIT */
/*
 * room.c - "memory is full": everything a writer does when allocation
 * fails, in one place.  make room (reclaim what grace periods allow, clear
 * dead readers, sweep the lists of ended runs, expire, evict, coalesce, and
 * wait a bounded while for retired memory); the eviction clock over the
 * index (tc__evict, evict ahead) and the expiry pass of the sweeper; the
 * early reclaim of a writer that retired a batch.  The cheap checks a write
 * makes on every call (tc__maybe_reclaim, tc__evict_ahead) and the
 * allocation with its coalescing fallback (tc__alloc) are static inline in
 * room.h, so that the write path pays no call for them.
 */
#include "index.h"
#include "room.h"

#include <time.h>



/* Give back a block that was never visible to anyone. */
void tc__drop_private(tc_cache *c, struct tc_rslot *s, struct tc_entry *e)
{
	tc__free_block(c, e);
	TC_CRASH_POINT(drop_private_freed);
	tc__st(&s->inflight, 0); /* after: a writer killed in between leaks nothing */
}

/*
 * Make room outside any read section: reclaim what grace periods allow,
 * clear dead readers, and remove expired entries (under LRU, evict).
 * Returns true when another attempt is worth making.  While retired memory
 * is waiting for a grace period (a reader descheduled inside its section
 * delays it by a scheduler slice), wait for it with a growing sleep, for
 * at most ROOM_WAIT_NS in all; a reader stopped in its section for longer
 * makes writes fail with -ENOSPC rather than block.
 */
#define ROOM_WAIT_NS (20 * 1000 * 1000ull)
bool tc__make_room(tc_cache *c, struct tc_rslot *s, uint32_t cls, bool need_slot, int round,
		   uint64_t *t0)
{
	uint64_t freed = 0;
	if (round == 0)
		*t0 = tc__mono_ns();
	/* Cheapest first: retired memory whose grace period has passed. */
	if (!need_slot && !tc__in_section(c)) {
		tc__reclaim(c, s, &freed);
		if (freed > 0)
			return true;
	}
	if (round > 0)
		tc__clean_dead(c, s, NULL);
	/* Lists of ended runs (run.c): garbage that no pass below can see. */
	if ((round & 3) == 0)
		tc__sweep_runs(c, EVICT_SCAN_MAX);
	int ev = tc__evict(c, s, cls, need_slot);
	/* LRU, and no cold entry of the wanted class: memory must come from
	 * other classes.  Coalesce (which evicts a window of cold keys by
	 * address, or re-cuts a free one) and hand its block to the lists:
	 * the caller's next attempt pops it. */
	if (ev == 0 && !need_slot && cls < TC_CLASSES_USED && c->eviction == TC_EVICT_LRU) {
		struct tc_entry *e = tc__coalesce(c, s, cls);
		if (e) {
			tc__drop_private(c, s, e); /* freed, then unnamed: no gap */
			ev = 1;
		}
	}
	if (!tc__in_section(c))
		tc__reclaim(c, s, &freed);
	if (ev > 0 || freed > 0)
		return true;
	if (round < 3)
		return true;
	/* Under LRU every entry may carry its reference bit: the bounded scans
	 * need up to two revolutions of the clock before one comes free. */
	if (c->eviction == TC_EVICT_LRU &&
	    (uint64_t)round < 2 * (c->nbuckets / EVICT_SCAN_MAX + 1) + 3)
		return true;
	/* Worth waiting for: retired memory, or a coalescer holding free
	 * blocks off their lists for a moment (coalesce.c). */
	if (((tc__ld(&c->h->retire_head) & 0xffffffffu) == 0 && !tc__coalescing(c)) ||
	    tc__in_section(c) || tc__mono_ns() - *t0 > ROOM_WAIT_NS)
		return false;
	struct timespec ts = { 0, (long)(round < 10 ? 20000L << (round - 3) : 1000000L) };
	if (ts.tv_nsec > 1000000L)
		ts.tv_nsec = 1000000L;
	nanosleep(&ts, NULL);
	return true;
}

/*
 * CLOCK over the index: expired entries go first; a set reference bit is
 * cleared; an entry with a clear bit is evicted when it frees what is
 * wanted (a block of class WANT, any entry when NEED_SLOT).  Under
 * TC_EVICT_NONE only expired entries are removed.  Returns entries removed.
 */
int tc__evict(tc_cache *c, struct tc_rslot *s, uint32_t want, bool need_slot)
{
	bool lru = c->eviction == TC_EVICT_LRU;
	/* Bounded per call so that no write pays for a whole-index scan: the
	 * caller retries, and the hand moves on. */
	uint64_t limit = lru ? 2 * c->nbuckets + 2 : c->nbuckets;
	if (limit > EVICT_SCAN_MAX)
		limit = EVICT_SCAN_MAX;
	return tc__evict_n(c, s, want, need_slot, need_slot ? 1 : 8, limit);
}

int tc__evict_n(tc_cache *c, struct tc_rslot *s, uint32_t want, bool need_slot, int goal,
		uint64_t limit)
{
	bool lru = c->eviction == TC_EVICT_LRU;
	int removed = 0;
	int64_t now = tc__now_ms();
	for (uint64_t n = 0; n < limit && removed < goal; n++) {
		uint64_t bi = tc__add_ret(&c->h->clock_hand, 1) & c->bmask;
		struct tc_bucket *b = &c->index[bi];
		struct tc_rslot *rs;
		if (tc__enter(c, &rs))
			return removed;
		for (int i = 0; i < TC_BUCKET_SLOTS; i++) {
			uint64_t w = tc__ld(&b->w[i]);
			if (TC_SW_STATE(w) != TC_SW_FINAL)
				continue;
			/* Nothing is written or removed for a slot that does not
			 * name a genuine entry: a ref into another key's value
			 * would have its bytes zeroed or its block retired. */
			struct tc__sview v;
			if (tc__slot_entry(c, bi, w, &v) != 1)
				continue;
			struct tc_entry *e = v.e;
			if (expired(tc__ld(&e->expires_ms), now)) {
				if (tc__remove_slot(c, s, &b->w[i], w, TC_C_EXPIRATIONS) == 0)
					removed++;
				continue;
			}
			/* A DTO list goes as a whole or not at all (run.c). */
			if (!lru || v.kind == TC_KIND_DTO)
				continue;
			if (tc__ld(&e->refbit)) {
				tc__st(&e->refbit, 0);
				continue;
			}
			if (need_slot || want == UINT32_MAX || v.cls == want) {
				if (tc__remove_slot(c, s, &b->w[i], w, TC_C_EVICTIONS) == 0)
					removed++;
			}
		}
		tc__exit(c);
	}
	return removed;
}

/* Expire up to BUDGET buckets from the sweep cursor (0 = all). */
int tc__expire_pass(tc_cache *c, struct tc_rslot *s, uint64_t budget, tc_sweep_report *rep)
{
	if (budget == 0 || budget > c->nbuckets)
		budget = c->nbuckets;
	int64_t now = tc__now_ms();
	for (uint64_t n = 0; n < budget; n++) {
		uint64_t bi = tc__add_ret(&c->h->sweep_cursor, 1) & c->bmask;
		struct tc_bucket *b = &c->index[bi];
		struct tc_rslot *rs;
		int rc = tc__enter(c, &rs);
		if (rc)
			return rc;
		for (int i = 0; i < TC_BUCKET_SLOTS; i++) {
			uint64_t w = tc__ld(&b->w[i]);
			if (rep)
				rep->scanned++;
			if (TC_SW_STATE(w) != TC_SW_FINAL)
				continue;
			struct tc__sview v;
			if (tc__slot_entry(c, bi, w, &v) == 1 &&
			    expired(tc__ld(&v.e->expires_ms), now) &&
			    tc__remove_slot(c, s, &b->w[i], w, TC_C_EXPIRATIONS) == 0 && rep)
				rep->expired++;
		}
		tc__exit(c);
	}
	return 0;
}
