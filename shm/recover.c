/* SPDX-License-Identifier: MIT */
/*
 * recover.c - "a process died": everything done for a holder that is gone,
 * in one place, run by whoever finds it (a writer making room, the
 * sweeper, tc_audit, tc_readers_clean).
 *
 *  - A dead reader slot: inside a read section held in that slot
 *    (hold_section), its in-flight block is retired unless it was
 *    published (a half-done insert's TENT word is aborted), the entry it
 *    was unlinking is retired if the unlink happened (a DTO list head with
 *    its chain), its half-walked retire chain goes back on the list (the
 *    hand-over, epoch.c), and the flagged futex words are bumped (a writer killed before its wake
 *    left waiters asleep).
 *  - A free slot that is not quiescent (a scribbled epoch would pin every
 *    grace period): emptied under the same claim, its names dropped, never
 *    acted on; one that still carries an owner's record is left alone (a
 *    live owner whose owner word was scribbled to 0).
 *  - A dead attach record: freed.
 *  - A dead coalescer holding its turn: its work is finished or undone
 *    (coalesce.c, tc__coalesce_recover).
 * The other dead holders are judged where their word is taken, with
 * process.c's liveness: a dead sweeper lease (sweep.c), a dead auditor
 * (epoch.c, tc__audit_orphaned), a dead load-turn holder (load.c).
 *
 * Whether a slot's owner is gone is tc__slot_dead (epoch.c), also used to
 * list readers.
 */
#include "internal.h"
#include "futex.h"

#include <unistd.h>

/*
 * Is the block E named where it is published from: the header's policy
 * word for a TTL policy table, the run word for a run anchor, the index for
 * the rest (a DTO list element that is no longer its list's head: through
 * the head, which reaches it)?  Each of the two header words names its block exactly while it
 * is published, so a writer keeps both blocks of its CAS named in its slot
 * across it (policy.c, run.c) and the cleaner retires the one the word
 * does not name.  A word scribbled to name the block only keeps it (a
 * leak until tc_audit); one scribbled away from it retires a block that
 * nothing can reach any more.
 */
static bool still_published(tc_cache *c, struct tc_entry *e)
{
	uint32_t kind = tc__ld(&e->kind);
	if (kind == TC_KIND_POLICY)
		return (tc__ld(&c->h->policy_gen) & 0xffffffffu) == tc__ref_of(c, e);
	if (kind == TC_KIND_RUN)
		return RUN_REF(tc__ld(&c->h->run_word)) == tc__ref_of(c, e);
	/* A list element is published while its list's head reaches it. */
	return tc__inflight_published(c, e, kind == TC_KIND_DTO ? tc__dto_reaches : NULL);
}

/* The tid half of a cleaner's claim (bit 31, which no tid has,
 * internal.h): of a dead owner's slot, with the cleaner's tid, or, with
 * bit 0 alone, of a free slot, whose names are never acted on (a cleaner
 * that takes over from a dead one must know which).  A free slot's
 * cleaner holds no section, and drops the names at once. */
#define CLEANING      TC_OWNER_CLEANING
#define CLEANING_FREE (TC_OWNER_CLEANING | 1)

/* Our claim of a dead owner's slot (naming this thread), or of a free one. */
static uint64_t claim_word(bool free_slot)
{
	uint64_t half = free_slot ? CLEANING_FREE : CLEANING | (uint64_t)gettid() << 1;
	return (uint64_t)tc__self_pid() << 32 | half;
}

/*
 * Could free slot S be the slot of a live reader whose owner word alone was
 * scribbled to 0?  Only if it carries a whole owner's record whose process
 * is attached: every process that reads has an attach record with its start
 * time (tc_open), and a live one keeps it.  A record that names no such
 * process (its start time scribbled too, or left by a writer of an image)
 * is a scribble, and the slot is emptied: left alone, its epoch pinned
 * every grace period (test_scribbled_free_slot_with_a_record_of_no_attached_
 * process_is_cleared).  A start time of 0 is written only by a process
 * that cannot read its own (no /proc), which attached with 0 as well: the
 * record then names any live process attached with 0 (test_live_reader_
 * without_start_time_whose_owner_word_reads_0_keeps_its_epoch), and none
 * when there is no such process (test_scribbled_free_slot_with_a_record_
 * without_start_time_is_cleared).
 */
static bool live_owner_record(tc_cache *c, struct tc_rslot *s)
{
	/* A claimer writes its whole record before it enters a section or
	 * builds a block: the address of its mapping and its handle's id,
	 * neither ever 0 (test_a_free_slot_with_an_incomplete_record_is_
	 * cleared). */
	if (!tc__ld(&s->base) || !tc__ld(&s->cookie))
		return false;
	uint64_t start = tc__ld(&s->start);
	for (uint32_t i = 0; i < c->max_attach; i++) {
		struct tc_attach_rec *r = &c->attach[i];
		uint64_t p = tc__ld(&r->pid);
		if (p && p <= UINT32_MAX && tc__ld(&r->start) == start &&
		    tc__pid_alive((uint32_t)p, start))
			return true;
	}
	return false;
}

/*
 * Hold a read section in the dead slot S, which we have claimed, while we
 * judge what it names and retire it.  A block found LIVE after this is
 * stamped no lower than the epoch it shows if anyone retires it meanwhile,
 * so no grace period frees it before tc__empty_slot clears the epoch: the
 * list we walk to ask whether an element is published, and the block we
 * judged, are never freed and taken by a live writer under us.  Without
 * it, a list unlinked by a live run sweep during our walk was freed and
 * reused, and we retired the new owner's block (test_review_runleak).  A
 * slot whose owner died inside a section shows its own epoch, older,
 * which holds already; one that shows none (a name scribbled into the slot
 * of an owner that died outside any), or one above the epoch (only a
 * scribble: no slot ever stores more than it read), gets the current one,
 * 0 read as 1 as tc__enter stores it.  A cleaner killed from here on
 * leaves the epoch to its successor, which takes over the claim and
 * empties the slot; so does a cleaner thread that vanishes while its
 * process lives on: the claim names the thread (tc__cleaner_tid).
 */
static void hold_section(tc_cache *c, struct tc_rslot *s)
{
	uint64_t ep = tc__ld(&c->h->epoch), was = tc__ld(&s->epoch);
	ep += ep == 0;
	if (was && was <= ep)
		return;
	tc__st(&s->epoch, ep);
	/* Store-load, as a reader's enter without membarrier: the epoch
	 * before the loads of what the slot names (pairs with the grace
	 * period's barrier and scan, docs/design.md section 5). */
	tc__mb();
}

/*
 * Clear the slot of a dead owner.  Its in-flight block is retired unless it
 * was published; its half-walked retire chain goes back on the list (its
 * counters stay in the slot, epoch.c, tc__empty_slot).  The owner word is cleared last, by
 * CAS, so two cleaners never both free the slot.  OWNER 0: a free slot that
 * is not quiescent, emptied the same way, except that what it names is not
 * retired: a free slot names nothing, so a name in it is a scribble, and a
 * block built from this slot by an owner since gone (a DTO element that is
 * no longer its list's head: LIVE, its builder, published by no index word;
 * a run anchor between its run's end and its retire) passes every check
 * below (test_scribbled_name_in_a_free_slot_retires_nothing).
 */
static bool clear_dead_slot(tc_cache *c, struct tc_rslot *s, uint64_t owner,
			    tc_sweep_report *rep)
{
	/* Claim: the owner word becomes "being cleaned by me" (bit 31 of the
	 * tid half).  A cleaner that dies is itself cleaned: whoever finds the
	 * bit with a dead cleaner pid takes over, and every step below can be
	 * done again: retiring is decided by a CAS on the block's state, and
	 * the chain walk keeps its progress in this slot's reclaim word. */
	bool free_slot = owner == 0 || (owner & 0xffffffffull) == CLEANING_FREE;
	uint64_t claimed = claim_word(free_slot);
	if (owner == claimed || tc__cas(&s->owner, owner, claimed) != owner)
		return false;
	/* The caller judged fields read one at a time, before this CAS: the
	 * owner may have given the slot back and claimed it again since, with
	 * the same owner word (tc_close and tc_open in one thread).  Judged
	 * again now that the owner word is ours (a live owner can neither give
	 * it back nor claim it, and its claim's fields read as 0 = unknown, or
	 * as its own), and given back unchanged when alive: nothing was
	 * touched yet (test_review_liveness).  A free slot: its record, as
	 * the caller judged it. */
	if (owner ? !tc__slot_dead(c, s, owner) : live_owner_record(c, s)) {
		tc__cas(&s->owner, claimed, owner);
		return false;
	}
	TC_CRASH_POINT(clean_claimed);
	if (free_slot) {
		tc__st(&s->inflight, 0);
		tc__st(&s->ret_ref, 0);
	} else {
		hold_section(c, s);
	}
	uint64_t inflight = tc__ld(&s->inflight);
	if (inflight) {
		struct tc_entry *e = tc__block(c, inflight);
		/* The record may be stale: the block may since have been
		 * published, freed and reused by a live writer.  Only a block
		 * still marked as built from this slot is ours to return. */
		if (e && tc__ld(&e->state) == TC_BLK_LIVE &&
		    tc__ld(&e->builder) == (uint16_t)(s - c->slots + 1) &&
		    !still_published(c, e)) {
			tc__retire(c, s, e);
			if (rep)
				rep->inflight_freed++;
		}
		TC_CRASH_POINT(clean_inflight);
		tc__st(&s->inflight, 0);
	}
	uint64_t ret = tc__ld(&s->ret_ref);
	if (ret) {
		/* The owner was unlinking this entry: if no word names it any
		 * more, the unlink happened and the retire may not have. */
		struct tc_entry *e = tc__block(c, ret);
		if (e && tc__ld(&e->state) == TC_BLK_LIVE &&
		    tc__ret_ident(e) == tc__ld(&s->ret_hash) &&
		    tc__ld(&e->version) == tc__ld(&s->ret_version) &&
		    !still_published(c, e)) {
			/* A DTO list head takes its whole chain with it. */
			if (tc__ld(&e->kind) == TC_KIND_DTO)
				tc__dto_retire_chain(c, s, e);
			else
				tc__retire(c, s, e);
			if (rep)
				rep->inflight_freed++;
		}
		TC_CRASH_POINT(clean_unlinked);
		tc__st(&s->ret_ref, 0);
	}
	tc__empty_slot(c, s);
	/* A writer killed between its publishing CAS and its tc__notify
	 * (publish_unwoken), or inside its bump (wake_bumped), left the
	 * waiters of its key asleep, with no deadline maybe: bump the flagged
	 * words and wake every sleeper, so that they check again.  Spurious
	 * for the others, once per dead slot.  Before the owner word is
	 * freed: a cleaner killed before it is taken over, and wakes again. */
	if (!free_slot)
		tc__notify_all(c->h);
	TC_CRASH_POINT(clean_released);
	tc__cas(&s->owner, claimed, 0);
	return true;
}

int tc__clean_dead(tc_cache *c, struct tc_rslot *self, tc_sweep_report *rep)
{
	int n = 0;
	uint32_t me = tc__self_pid(), mytid = (uint32_t)gettid();
	for (uint32_t i = 0; i < c->nslots; i++) {
		struct tc_rslot *s = &c->slots[i];
		uint64_t owner = tc__ld(&s->owner);
		if (!owner) {
			/* A free slot is quiescent (its last owner or cleaner
			 * emptied it before giving it back, and a claimer
			 * resets it before entering): an epoch or a name left
			 * in one is a scribble, and an epoch pins every grace
			 * period.  Cleared as a dead owner's slot is, under
			 * the same claim, so that no claimer meets the
			 * cleaning; unless it still carries the record of an
			 * attached process (a live reader's, whose owner word
			 * alone was scribbled; emptied, its epoch was cleared
			 * under it and the reclaim freed what it held,
			 * test_live_reader_whose_owner_word_reads_0_keeps_its_epoch). */
			if ((tc__ld(&s->epoch) || tc__ld(&s->inflight) || tc__ld(&s->ret_ref)) &&
			    !live_owner_record(c, s))
				clear_dead_slot(c, s, 0, rep);
			continue;
		}
		uint32_t pid = (uint32_t)(owner >> 32);
		/* Our own process: a slot of one of our threads that is gone
		 * (a raw SYS_exit never ran the destructor that gives it back),
		 * or one that a thread of ours was cleaning when it vanished
		 * (tc__slot_dead judges the cleaner's thread); one that names
		 * no cleaner thread is left to that cleaner. */
		if (pid == me && (owner & CLEANING ? !tc__cleaner_tid(owner) ||
						     tc__cleaner_tid(owner) == mytid
						   : (uint32_t)owner == tc__self_tid()))
			continue;
		if (tc__slot_dead(c, s, owner)) {
			if (clear_dead_slot(c, s, owner, rep)) {
				n++;
				if (rep)
					rep->readers_cleared++;
			}
		}
	}
	/* Attach records of dead processes. */
	for (uint32_t i = 0; i < c->max_attach; i++) {
		struct tc_attach_rec *r = &c->attach[i];
		uint64_t p = tc__ld(&r->pid);
		/* A process that no longer maps the segment (it called execve)
		 * is not attached whatever its pid and start time say. */
		if (p && (p > UINT32_MAX || !tc__pid_alive((uint32_t)p, tc__ld(&r->start)) ||
			  (p != me && !tc__maps_segment(c, (uint32_t)p, 0)))) {
			if (tc__cas(&r->pid, p, 0) == p && rep)
				rep->attach_cleared++;
		}
	}
	/* A coalescer that died mid-work: finish or undo it (coalesce.c),
	 * holding the turn with our slot (none: left to a caller with one). */
	if (tc__ld(&c->h->df_turn))
		tc__coalesce_recover(c, self);
	return n;
}

int tc_readers_clean(tc_cache *c, uint32_t *cleared)
{
	if (!c)
		return -EINVAL;
	/* A dead coalescer's work is taken over with a slot (coalesce.c):
	 * ours, claimed only when a turn is held (none free: left to the
	 * next writer). */
	struct tc_rslot *s = tc__ld(&c->h->df_turn) ? tc__slot(c) : NULL;
	int n = tc__clean_dead(c, s, NULL);
	if (cleared)
		*cleared = (uint32_t)n;
	return 0;
}
