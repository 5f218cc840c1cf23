/* SPDX-License-Identifier: MIT */
/*
 * runsweep.c - the memory of ended runs: retiring a DTO list with its whole
 * chain (tc__dto_retire_chain, also for a dead remover's list, recover.c),
 * and the sweep that unlinks the lists of runs that have ended
 * (tc__sweep_runs: tc_sweep, and room.c when memory is full).  Below
 * room.c, which run.c's writers call: so not in run.c (docs/design.md,
 * "Map of shm/").  run.c explains runs, lists and their generations.
 */
#include "internal.h"

/* Element REF of the list with HASH and key length KLEN, checked, or NULL.
 * Its key length must be the list's: the value is found with KLEN, never
 * with a second load of the block's. */
struct tc_entry *tc__dto_elem(tc_cache *c, uint64_t ref, uint64_t hash, uint32_t klen,
			      uint32_t *vlen, uint32_t *cls)
{
	uint32_t kl;
	struct tc_entry *e = tc__block_kv(c, ref, TC_KIND_DTO, &kl, vlen, cls);
	if (!e || kl != klen || tc__ld(&e->hash) != hash)
		return NULL;
	return e;
}

/*
 * Retire the chain headed by HEAD, which the caller has just unlinked with
 * a successful CAS.  Counts must fall by one per step and generations
 * match, so a scribbled link ends the walk (leaking the rest) instead of
 * retiring a block of someone else or looping.
 */
void tc__dto_retire_chain(tc_cache *c, struct tc_rslot *s, struct tc_entry *head)
{
	uint64_t hash = tc__ld(&head->hash);
	uint32_t gen = tc__ld(&head->aux), klen = tc__ld(&head->klen), vlen;
	uint64_t n = TC_DTO_COUNT(tc__ld(&head->version));
	struct tc_entry *e = head;
	for (uint64_t i = n; i >= 1 && e; i--) {
		uint64_t ver = tc__ld(&e->version);
		if (tc__ld(&e->aux) != gen || TC_DTO_COUNT(ver) != i)
			break;
		uint64_t prev = TC_DTO_PREV(ver);
		tc__retire(c, s, e);
		TC_CRASH_POINT(dto_chain_walk);
		e = i > 1 && prev ? tc__dto_elem(c, prev, hash, klen, &vlen, NULL) : NULL;
	}
}

/* The elements of the list whose head is E (E itself is marked by the
 * caller), bounded by the strictly decreasing counts and by the arena's
 * units (tc_audit walks without a read section, and a scribbled link may
 * lead anywhere): what tc_audit keeps, and, down to an element's own
 * count, what a cleaner takes for published (tc__dto_reaches).  Its checks
 * are a subset of every walk's (tc_dto_each, tc__dto_retire_chain), so no
 * walk reaches an element it does not. */
void tc__audit_entry(tc_cache *c, struct tc_entry *e, tc__mark_fn mark, void *ctx)
{
	if (tc__ld(&e->kind) != TC_KIND_DTO)
		return;
	uint64_t ver = tc__ld(&e->version);
	uint64_t n = TC_DTO_COUNT(ver);
	for (uint64_t i = n, k = 0; i > 1 && k < c->arena_units; i--, k++) {
		uint64_t prev = TC_DTO_PREV(ver);
		struct tc_entry *p = tc__block(c, prev);
		if (!p || tc__ld(&p->kind) != TC_KIND_DTO)
			return;
		mark(ctx, prev);
		ver = tc__ld(&p->version);
		if (TC_DTO_COUNT(ver) != i - 1)
			return;
	}
}

/*
 * Does the list whose head is H reach the element E (a tc__reach_fn for
 * tc__inflight_published)?  By tc__audit_entry's rule (kind DTO, counts
 * falling by one), and only as far as E's own place: the element of count
 * k is the list's k-th, and no walk goes past a count that does not fall
 * by one (tc_dto_each, tc__dto_retire_chain), so E met further down is
 * behind a scribbled link that only tc_audit's marking follows.  The
 * cleaner walks inside the section it holds in the dead slot (recover.c,
 * hold_section), which holds back every grace period: walked to the
 * list's end whatever it met, a list of 2,000,000 elements held it 30 ms,
 * and a writer short of memory failed with -ENOSPC after its 20 ms
 * (test_the_cleaners_walk_stops_at_the_element).  At most H's count less
 * E's steps (none for an element never published: its count is above the
 * head's), and at most the arena's units.
 */
bool tc__dto_reaches(tc_cache *c, struct tc_entry *h, struct tc_entry *e)
{
	if (tc__ld(&h->kind) != TC_KIND_DTO)
		return false;
	uint64_t ref = tc__ref_of(c, e), at = TC_DTO_COUNT(tc__ld(&e->version));
	uint64_t ver = tc__ld(&h->version);
	for (uint64_t i = TC_DTO_COUNT(ver), k = 0; i > 1 && i > at && k < c->arena_units;
	     i--, k++) {
		uint64_t prev = TC_DTO_PREV(ver);
		struct tc_entry *p = tc__block(c, prev);
		if (!p || tc__ld(&p->kind) != TC_KIND_DTO)
			return false;
		if (prev == ref)
			return true; /* whatever its count says, as tc_audit marks it */
		ver = tc__ld(&p->version);
		if (TC_DTO_COUNT(ver) != i - 1)
			return false;
	}
	return false;
}

/*
 * Is the list headed by E dead, i.e. not of the active run?  The head's
 * generation is loaded before run_word; an append publishes its head before
 * re-reading run_word (full barrier), so a head found here with the active
 * generation is never declared dead.
 */
static bool list_dead(tc_cache *c, struct tc_entry *e)
{
	uint32_t gen = tc__ld(&e->aux);
	tc__rmb();
	uint64_t w = tc__run_word(c);
	return !RUN_REF(w) || RUN_GEN(w) != gen;
}

/* Unlink the dead list whose head E is named by W at SLOTP; retire it. */
static int drop_list(tc_cache *c, struct tc_rslot *s, uint64_t *slotp, uint64_t w,
		     struct tc_entry *e)
{
	/* Named in our slot: a cleaner retires it if we die after the CAS.
	 * The live count before the CAS, as tc__remove_slot says why; the
	 * heads after it, never below the heads in the index. */
	tc__note_unlink(s, TC_SW_REF(w), e);
	tc__add(&c->h->live, (uint64_t)-1);
	TC_CRASH_POINT(dto_list_reserved);
	if (tc__cas(slotp, w, 0) != w) {
		tc__add(&c->h->live, 1);
		tc__st(&s->ret_ref, 0);
		return -EAGAIN;
	}
	TC_CRASH_POINT(dto_list_unlinked);
	tc__add(&c->h->dto_heads, (uint64_t)-1);
	tc__dto_retire_chain(c, s, e);
	tc__st(&s->ret_ref, 0);
	return 0;
}

/* The state of one run sweep. */
struct runsweep {
	struct tc__walk walk; /* first: the walk's callback finds the rest */
	int removed;
};

static void runsweep_visit(tc_cache *c, struct tc__walk *w, struct tc_rslot *rs,
			   uint64_t *slotp, uint64_t word, const struct tc__sview *v)
{
	struct runsweep *r = (struct runsweep *)w;
	if (v->kind == TC_KIND_DTO && list_dead(c, v->e) && drop_list(c, rs, slotp, word, v->e) == 0)
		r->removed++;
}

/* Unlink the lists of ended runs in up to BUDGET buckets from the run
 * cursor (0 = all): how many, or the error of entering a section. */
int tc__sweep_runs(tc_cache *c, uint64_t budget)
{
	if (tc__ld(&c->h->dto_heads) == 0)
		return 0;
	if (budget == 0 || budget > c->nbuckets)
		budget = c->nbuckets;
	struct runsweep r = {
		.walk = { .cursor = &c->h->run_cursor, .budget = budget, .fn = runsweep_visit },
	};
	int rc = tc__walk_buckets(c, &r.walk);
	return rc ? rc : r.removed;
}
