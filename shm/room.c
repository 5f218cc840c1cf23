/* SPDX-License-Identifier: MIT */
/*
 * room.c - "memory is full": everything a writer does when allocation
 * fails, in one place.  tc__make_room reclaims what grace periods allow,
 * clears dead readers (recover.c), sweeps the lists of ended runs
 * (runsweep.c), runs the eviction policy's clock (evict.c), coalesces
 * (coalesce.c), asks the arena whether the clock can help at all (the
 * census, coalesce.c), and waits a bounded while for retired memory.  The cheap
 * checks a write makes on every call (tc__maybe_reclaim, tc__evict_ahead)
 * and the allocation with its coalescing fallback (tc__alloc) are static
 * inline in room.h, so that the write path pays no call for them.
 */
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
static uint64_t room_sleeps; /* waits of this process (tests); tc__add */

uint64_t tc__room_sleeps(void)
{
	return tc__ld(&room_sleeps);
}

/*
 * Whether a slot's reclaim word names a pending chain: retired memory off
 * the list while a reclaimer walks it, freeing what its grace period allows
 * and pushing the rest back (another writer that detached the whole list;
 * a stealer moving our own chain back, whose CAS beat our walk's and whose
 * word keeps our reclaim from detaching).  The walk ends soon, or its
 * walker died and the cleaner or a stealer puts the rest back, so a writer
 * short of memory waits for it (bounded by ROOM_WAIT_NS) instead of giving
 * up at once: with the list empty and no reader in a section, it gave up
 * at round 3 with -ENOSPC while the segment was full of retired blocks
 * (test_killed_writers_leave_valid_values_and_no_leak, 3 or 4 runs in 80,
 * before and after the set diet; both kinds seen in a debug build).  The
 * stealer's kind without timing: tests/test_room.c.
 */
static bool chains_pending(tc_cache *c)
{
	/* The plain form naming a block only: a detach in its PEND form lasts
	 * a few instructions, or its owner died in it and the cleaner puts it
	 * back, or was descheduled or stopped in it, and our own reclaim's
	 * steal_chains settled and took it while the head still showed it
	 * (epoch.c); a word that names no block (a scribble: the plain form always
	 * names one) is walked by nobody, and one in a free slot is a scribble
	 * too: waiting on such a word would make every write short of memory
	 * sleep its ROOM_WAIT_NS (fuzz_segment_raw's replay of its corpus
	 * slept 3,653 times with the word's block not required, 2,571 with
	 * it, 2,560 before this wait).  A scribbled word that names a block
	 * is walked by the next steal_chains and ends. */
	for (uint32_t i = 0; i < c->nslots; i++) {
		uint64_t w = tc__ld(&c->slots[i].reclaim);
		if (TC_RECLAIM_REF(w) && !(w & TC_RECLAIM_PEND))
			return true;
	}
	return false;
}

/*
 * Under LRU, is turning the clock further worth it for a write of class
 * CLS?  Two turns of the clock over the index (the bound below) cost a
 * write with nothing to evict 25 ms with 1M entries and 195 ms with 8M
 * before -ENOSPC; memory is in the arena, so the census asks the arena
 * instead (tc__room_census, coalesce.c): a walk of its block headers that
 * does not grow with the index, and that never costs more than the turns
 * it spares: they read every slot word of the index twice and, for each
 * entry, its header, at random; the census reads at most as many headers,
 * in address order.  When it
 * finds room that the clock, the run sweep or the coalescer could give,
 * it gives the keys of that window their second chance, and the next
 * round's coalescer evicts it by address (without that, room in another
 * class's hot keys waited for the clock to clear their bits over the whole
 * index: 261 ms with 8M entries).  At most CENSUS_MAX censuses a write;
 * then, or when the census cannot tell, the clock's bound holds.  (A
 * write short of an index slot has its answer in the index: slot_verdict,
 * below.)  1 worth another round, 0 not, -1 unknown.
 */
#define CENSUS_MAX 3
static int census(tc_cache *c, struct tc_rslot *s, uint32_t cls, struct tc__room *r)
{
	if (cls >= TC_CLASSES_USED || !c->evict->evict_block)
		return -1;
	if (r->verdict == 0)
		return 0;
	if (r->censuses == CENSUS_MAX)
		return -1;
	r->censuses++;
	uint64_t budget = c->evict->clock_revolutions * (c->nbuckets + EVICT_SCAN_MAX) *
			  TC_BUCKET_SLOTS;
	r->verdict = tc__room_census(c, s, cls, budget);
	return r->verdict;
}

/*
 * Under LRU, a write short of an index slot (the index or max_entries
 * full): the answer is in the index, which is then dense, but two turns of
 * the clock were long when no entry could go (an index full of rate
 * windows: 197 ms with 1M entries before -ENOSPC), and one turn when every
 * key was hot (a new key carries its bit: the first write short of a slot
 * cleared the bits of the whole index before it evicted a key, 97 ms with
 * 1M entries).  So a round whose turn found nothing cold looks behind the
 * hand (tc__evict_behind: the two-handed clock), BEHIND_SPREAD buckets
 * back, where the hand cleared the bits a moment ago: a key whose bit is
 * still clear there goes (the first write on an index of hot keys finds
 * one at its third round, and the writes after it at their first).  An
 * index of at most 4 * EVICT_SCAN_MAX buckets keeps the one hand (its
 * bound is 13 rounds), and so does a write whose turns have passed no
 * ordinary key yet.  A whole turn that passed none is the end
 * (slot_verdict 0: one turn, not two), unless lists of ended runs are in
 * the index, which the run sweep removes at its own pace (-1: the clock's
 * bound).
 */
#define BEHIND_SPREAD (3 * EVICT_SCAN_MAX)
static int slot_behind(tc_cache *c, struct tc_rslot *s, struct tc__room *r,
		       const struct tc__clock_note *n)
{
	r->buckets += n->buckets;
	r->keys += n->keys;
	if (!c->evict->evict_block || c->nbuckets <= 4 * EVICT_SCAN_MAX || r->keys == 0)
		return 0;
	return tc__evict_behind(c, s, BEHIND_SPREAD);
}

static int slot_verdict(tc_cache *c, struct tc__room *r)
{
	if (c->evict->evict_block && r->keys == 0 && r->buckets >= c->nbuckets &&
	    tc__ld(&c->h->dto_heads) == 0)
		return 0;
	return -1;
}

bool tc__make_room(tc_cache *c, struct tc_rslot *s, uint32_t cls, bool need_slot,
		   struct tc__room *r)
{
	uint64_t freed = 0;
	int round = r->round++;
	if (round == 0)
		r->t0 = tc__mono_ns();
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
	struct tc__clock_note note = { 0 };
	int ev = tc__evict_note(c, s, cls, need_slot, need_slot ? &note : NULL);
	if (need_slot && ev == 0)
		ev = slot_behind(c, s, r, &note);
	/* LRU, and no cold entry of the wanted class: memory must come from
	 * other classes.  Coalesce (which evicts a window of cold keys by
	 * address, or re-cuts a free one) and hand its block to the lists:
	 * the caller's next attempt pops it. */
	if (ev == 0 && !need_slot && cls < TC_CLASSES_USED && !c->evict->coalesce_in_alloc) {
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
	 * need up to two revolutions of the clock before one comes free,
	 * unless the census says whether any can (census, above). */
	int v = need_slot ? slot_verdict(c, r) : census(c, s, cls, r);
	if (v > 0 || (v < 0 && (uint64_t)round < c->evict->clock_revolutions *
						      (c->nbuckets / EVICT_SCAN_MAX + 1) + 3))
		return true;
	/* Worth waiting for: retired memory that another thread's section
	 * holds back (only another thread can leave its section while we
	 * sleep: this thread's own sections, through other handles, cannot),
	 * a coalescer holding free blocks off their lists for a moment
	 * (coalesce.c), or retired memory on a pending chain rather than on
	 * the list (chains_pending). */
	if (tc__in_section(c) || tc__mono_ns() - r->t0 > ROOM_WAIT_NS)
		return false;
	if (((tc__ld(&c->h->retire_head) & 0xffffffffu) == 0 || !tc__others_reading(c)) &&
	    !tc__coalescing(c) && !chains_pending(c))
		return false;
	tc__add(&room_sleeps, 1);
	struct timespec ts = { 0, (long)(round < 10 ? 20000L << (round - 3) : 1000000L) };
	if (ts.tv_nsec > 1000000L)
		ts.tv_nsec = 1000000L;
	nanosleep(&ts, NULL);
	return true;
}

/*
 * tc__make_room gave up: is memory listed free that the write can use and
 * that no attempt of R has seen?  Another reclaimer's walk may have ended
 * during the round, after our own reclaims found nothing and before the
 * check for pending chains: its frees are then no retired memory to wait
 * for, and were not ours to count, yet the next attempt takes them (a full
 * reclaim of another writer freed the whole arena so, and the write gave
 * up with -ENOSPC: test_a_write_sees_memory_another_reclaim_freed_in_its_round).
 * One more attempt, within ROOM_WAIT_NS, for each new head of class CLS's
 * list that names a block a pop would take (tc__listed_head), and for
 * each time the bytes on all lists pass the most that R has seen (from
 * round 0) and could make a block of CLS: the next attempt coalesces
 * them (the whole arena freed in another class than the write's:
 * test_a_write_of_another_size_sees_memory_another_reclaim_freed); free
 * bytes as they were at round 0 (memory fragmented into windows too small
 * for CLS) earn nothing.  A head that names no such block earns nothing,
 * however often it changes:
 * a class's head scribbled to a block of another class that links to
 * itself changed at every pop (which drops the block and finds it again),
 * and every write of the class made some 600 attempts without a sleep,
 * for its whole 20 ms, until tc_audit
 * (test_a_head_that_changes_at_every_look_but_gives_nothing_is_not_retried).
 * A head that changes because other writers push and pop real blocks
 * earns an attempt each time, without a sleep: each follows a free of
 * the class, and ends when the write's pop wins one or the 20 ms pass.
 */
static bool listed_since(tc_cache *c, uint32_t cls, struct tc__room *r)
{
	if (cls >= TC_CLASSES_USED || tc__mono_ns() - r->t0 > ROOM_WAIT_NS)
		return false;
	uint64_t head = tc__listed_head(c, cls), fb = tc__free_bytes(c);
	bool more = fb > r->free_max && fb >= tc__class_size(cls);
	if (fb > r->free_max)
		r->free_max = fb;
	if (head == 0 || head == r->listed)
		return more;
	r->listed = head;
	return true;
}

/* Make room for a block of NEED bytes (NEED_SLOT: for an index word),
 * outside any read section: tc__make_room, after the lists of ended runs
 * when R asks for them.  True when another attempt is worth making. */
bool tc__room_for(tc_cache *c, struct tc_rslot *s, uint64_t need, bool need_slot,
		  struct tc__room *r)
{
	if (r->round == 0) {
		r->listed = 0;
		r->free_max = tc__free_bytes(c);
		r->censuses = 0;
		r->verdict = -1;
		r->buckets = r->keys = 0;
	}
	if (r->sweep_runs && (r->round & 3) == 0)
		tc__sweep_runs(c, 0);
	uint32_t cls = need_slot ? UINT32_MAX : tc__class_of(need);
	return tc__make_room(c, s, cls, need_slot, r) ||
	       listed_since(c, cls, r);
}

int tc__attempts(tc_cache *c, struct tc__room *r, tc__attempt_fn fn, void *ctx,
		 struct tc_rslot **sp)
{
	int rc = -EAGAIN;
	for (int attempt = 0; attempt < TC_MAX_ATTEMPTS; attempt++) {
		struct tc_rslot *s;
		int er = tc__enter(c, &s);
		*sp = er ? NULL : s;
		if (er)
			return er;
		if (fn(c, s, r, ctx, &rc))
			break;
	}
	return rc;
}
