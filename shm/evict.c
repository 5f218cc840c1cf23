/* SPDX-License-Identifier: MIT */
/*
 * evict.c - the eviction policies (tc_opts.eviction) behind one small ops
 * table, struct tc__evict_ops (internal.h), in the manner of liburcu's
 * cds_lfht_mm_type: the code that makes room (room.c, room.h) and the
 * coalescer (coalesce.c) ask the handle's policy (c->evict, set by tc_open)
 * what to do, and never test a policy by name.
 *
 *  - TC_EVICT_NONE: the clock removes expired entries only; an empty class
 *    is coalesced at once from a free window (tc__alloc).
 *  - TC_EVICT_LRU: CLOCK over the index with the entries' reference bits
 *    (set by readers, kv.c); cold entries are evicted, two revolutions may
 *    pass before one comes free; the coalescer may evict a window of cold
 *    keys by address; each write evicts ahead once the arena is carved out;
 *    a writer short of an index slot whose turn found nothing cold looks
 *    behind the hand (tc__evict_behind, the two-handed clock).
 *
 * Also the sweeper's expiry pass (tc__expire_pass), which walks the index
 * the same way.
 */
#include "index.h"

/* The state of one turn of the clock (evict_n). */
struct clock {
	struct tc__walk walk; /* first: the walk's callback finds the rest */
	struct tc_rslot *s;
	uint32_t want;
	bool need_slot, lru;
	int goal, removed;
	int64_t now;
};

/* A turn for a writer short of a slot, which counts what it passes. */
struct clock_noted {
	struct clock k; /* first: the walk's callback finds the rest */
	struct tc__clock_note *note;
};

/* One entry under the hand: expired entries go; a set reference bit is
 * cleared; a cold entry is evicted when it frees what is wanted. */
static void clock_visit(tc_cache *c, struct tc__walk *w, struct tc_rslot *rs, uint64_t *slotp,
			uint64_t word, const struct tc__sview *v)
{
	struct clock *k = (struct clock *)w;
	struct tc_entry *e = v->e;
	(void)rs;
	if (expired(tc__ld(&e->expires_ms), k->now)) {
		if (tc__remove_slot(c, k->s, slotp, word, TC_C_EXPIRATIONS) == 0)
			k->removed++;
	} else if (k->lru && v->kind == TC_KIND_KEY) {
		/* Only keys the application wrote: a DTO list goes as a
		 * whole (run.c); a rate window or a load claim dropped would
		 * reset its limiter or let a second loader run, so each stays
		 * until its window or lease ends (its expiry, above). */
		if (tc__ld(&e->refbit))
			tc__st(&e->refbit, 0);
		else if ((k->need_slot || k->want == UINT32_MAX || v->cls == k->want) &&
			 tc__remove_slot(c, k->s, slotp, word, TC_C_EVICTIONS) == 0)
			k->removed++;
	}
	w->stop = k->removed >= k->goal;
}

/* clock_visit for a writer short of a slot, which counts the ordinary keys
 * it passes (room.c): a visit of its own, so that evict-ahead's visits, on
 * every evicting write, test nothing more. */
static void clock_visit_note(tc_cache *c, struct tc__walk *w, struct tc_rslot *rs,
			     uint64_t *slotp, uint64_t word, const struct tc__sview *v)
{
	struct clock_noted *n = (struct clock_noted *)w;
	if (n->k.lru && v->kind == TC_KIND_KEY)
		n->note->keys++;
	clock_visit(c, w, rs, slotp, word, v);
}

/* Turn the clock at most LIMIT buckets, until GOAL entries are removed. */
static int evict_n(tc_cache *c, struct tc_rslot *s, uint32_t want, bool need_slot, int goal,
		   uint64_t limit)
{
	struct clock k = {
		.walk = { .cursor = &c->h->clock_hand, .budget = limit, .fn = clock_visit },
		.s = s, .want = want, .need_slot = need_slot,
		.lru = c->evict->clock_revolutions > 0, .goal = goal, .now = tc__now_ms(),
	};
	tc__walk_buckets(c, &k.walk); /* a section refused: what was removed so far */
	return k.removed;
}

/* The same turn, for a writer short of a slot: what it passes into NOTE. */
static int evict_n_noted(tc_cache *c, struct tc_rslot *s, uint64_t limit,
			 struct tc__clock_note *note)
{
	struct clock_noted n = {
		.k = {
			.walk = { .cursor = &c->h->clock_hand, .budget = limit,
				  .fn = clock_visit_note },
			.s = s, .want = UINT32_MAX, .need_slot = true,
			.lru = c->evict->clock_revolutions > 0, .goal = 1, .now = tc__now_ms(),
		},
		.note = note,
	};
	tc__walk_buckets(c, &n.k.walk);
	note->buckets += n.k.walk.scanned / TC_BUCKET_SLOTS;
	return n.k.removed;
}

/*
 * CLOCK over the index: expired entries go first; a set reference bit is
 * cleared; an ordinary key with a clear bit is evicted when it frees what is
 * wanted (a block of class WANT, any entry when NEED_SLOT).  A policy
 * whose clock evicts nothing (TC_EVICT_NONE) removes only expired entries.
 * NOTE (NULL, or for a writer short of a slot, NEED_SLOT): what the turn
 * passed, added to it.  Returns entries removed.
 */
int tc__evict_note(tc_cache *c, struct tc_rslot *s, uint32_t want, bool need_slot,
		   struct tc__clock_note *note)
{
	uint64_t revs = c->evict->clock_revolutions;
	/* Bounded per call so that no write pays for a whole-index scan: the
	 * caller retries, and the hand moves on. */
	uint64_t limit = revs ? revs * (c->nbuckets + 1) : c->nbuckets;
	if (limit > EVICT_SCAN_MAX)
		limit = EVICT_SCAN_MAX;
	if (note && need_slot)
		return evict_n_noted(c, s, limit, note);
	return evict_n(c, s, want, need_slot, need_slot ? 1 : 8, limit);
}

int tc__evict(tc_cache *c, struct tc_rslot *s, uint32_t want, bool need_slot)
{
	return tc__evict_note(c, s, want, need_slot, NULL);
}

/* The back hand: a cold ordinary key (or an expired entry) goes; no
 * reference bit is cleared. */
static void behind_visit(tc_cache *c, struct tc__walk *w, struct tc_rslot *rs, uint64_t *slotp,
			 uint64_t word, const struct tc__sview *v)
{
	struct clock *k = (struct clock *)w;
	(void)rs;
	if (w->stop)
		return; /* one entry, not the rest of its bucket */
	bool exp = expired(tc__ld(&v->e->expires_ms), k->now);
	if ((exp || (v->kind == TC_KIND_KEY && tc__ld(&v->e->refbit) == 0)) &&
	    tc__remove_slot(c, k->s, slotp, word, exp ? TC_C_EXPIRATIONS : TC_C_EVICTIONS) == 0)
		k->removed++;
	w->stop = k->removed > 0;
}

/*
 * A second hand, SPREAD buckets behind the clock's (the two-handed clock
 * of BSD's page daemon): the front hand clears reference bits, and a key
 * behind it whose bit is still clear has not been read since the front
 * hand passed it.  For a writer short of an index slot whose turn of the
 * front hand found nothing cold (room.c): at most EVICT_SCAN_MAX buckets
 * from SPREAD behind the hand, on a cursor of its own, until one entry
 * is removed.  Entries removed (0 or 1).
 */
int tc__evict_behind(tc_cache *c, struct tc_rslot *s, uint64_t spread)
{
	uint64_t cursor = tc__ld(&c->h->clock_hand) - spread;
	struct clock k = {
		.walk = { .cursor = &cursor, .budget = EVICT_SCAN_MAX, .fn = behind_visit },
		.s = s, .need_slot = true, .lru = true, .goal = 1, .now = tc__now_ms(),
	};
	tc__walk_buckets(c, &k.walk);
	return k.removed;
}

/*
 * Evict ahead (TC_EVICT_LRU): once the arena is carved out and class CLS's
 * free list is short of two reclaim batches, each write of that class
 * evicts two entries of it, a bucket or two of the clock at a time.  Their
 * blocks come back with the next batched grace period, so allocation keeps
 * finding free blocks and a write almost never has to make room itself
 * (which costs a membarrier, an interrupt on every CPU running a reader).
 */
static void lru_ahead(tc_cache *c, struct tc_rslot *s, uint32_t cls)
{
	if (cls >= TC_CLASSES_USED || tc__in_section(c))
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
	evict_n(c, s, cls, false, 2, 4);
}

/* No eviction: no clock, no evict_block, nothing ahead (the members left
 * out are 0 and NULL); the allocator coalesces when its pop fails. */
const struct tc__evict_ops tc__evict_none = { .policy = TC_EVICT_NONE, .coalesce_in_alloc = true };

/* A walk per failed pop would cost every evicting write: under LRU,
 * tc__make_room coalesces when the clock found nothing cold. */
const struct tc__evict_ops tc__evict_lru = {
	.policy = TC_EVICT_LRU,
	.clock_revolutions = 2,
	.coalesce_in_alloc = false,
	.evict_block = tc__evict_block,
	.ahead = lru_ahead,
};

/* The state of one expiry pass. */
struct expiry {
	struct tc__walk walk; /* first: the walk's callback finds the rest */
	struct tc_rslot *s;
	tc_sweep_report *rep;
	int64_t now;
};

static void expiry_visit(tc_cache *c, struct tc__walk *w, struct tc_rslot *rs, uint64_t *slotp,
			 uint64_t word, const struct tc__sview *v)
{
	struct expiry *x = (struct expiry *)w;
	(void)rs;
	if (expired(tc__ld(&v->e->expires_ms), x->now) &&
	    tc__remove_slot(c, x->s, slotp, word, TC_C_EXPIRATIONS) == 0 && x->rep)
		x->rep->expired++;
}

/* Expire up to BUDGET buckets from the sweep cursor (0 = all). */
int tc__expire_pass(tc_cache *c, struct tc_rslot *s, uint64_t budget, tc_sweep_report *rep)
{
	if (budget == 0 || budget > c->nbuckets)
		budget = c->nbuckets;
	struct expiry x = {
		.walk = { .cursor = &c->h->sweep_cursor, .budget = budget, .fn = expiry_visit },
		.s = s, .rep = rep, .now = tc__now_ms(),
	};
	int rc = tc__walk_buckets(c, &x.walk);
	if (rep)
		rep->scanned += x.walk.scanned;
	return rc;
}
