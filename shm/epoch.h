/* SPDX-License-Identifier: MIT */
/*
 * epoch.h - the inline half of epoch.c: the thread's current entry and the
 * read section's enter and exit, compiled into the read path (kv.c) so
 * that a tc_get makes no call to find its slot or to announce its epoch.
 * Part of epoch.c's node in the layering (tools/layering.sh).
 */
#ifndef TC_EPOCH_H
#define TC_EPOCH_H

#include "internal.h"

/*
 * This thread's entry for one handle: its reader slot and its read-section
 * nesting.  The entry of the handle used last is found without a search:
 * tc__tls_key = tkey | n names it (tc__tls_ent), n (0..63) counting the
 * calls of tc__tent_tick() since the last timed one.  Bit 6 of the key is
 * always 0, so one compare tests the handle and the count at once: the 64th
 * tick sets bit 6 and fails it, and the slow side (tc__tent_switch) times
 * that call.  0: no current entry.  Only epoch.c changes the key outside
 * tc__tent_tick.
 */
struct tc__tent {
	uint64_t cid;          /* handle id */
	struct tc_rslot *slot;
	uint32_t depth;        /* read-section nesting */
	uint32_t tick;         /* the count, saved while another handle is current */
	tc_cache *c;
};
/* initial-exec: a plain %fs-relative access, also in the shared library
 * (the general-dynamic model would call __tls_get_addr on every read). */
#define TC_TLS __thread __attribute__((tls_model("initial-exec")))
/* The two words side by side: the fast paths address both from one base. */
struct tc__tls {
	uint64_t key;
	struct tc__tent *ent;
};
extern TC_TLS struct tc__tls tc__tls;
#define tc__tls_key (tc__tls.key)
#define tc__tls_ent (tc__tls.ent)
struct tc__tent *tc__tent_switch(tc_cache *c, bool *timed);
int  tc__enter_state(tc_cache *c, uint32_t st);

/* Whether the thread key K names the handle whose key is WANT (its tkey,
 * or its tfast for the plain path): the low six bits are the call count of
 * the sampling, the rest the handle. */
static inline bool tc__key_is(uint64_t k, uint64_t want)
{
	return ((k ^ want) >> 6) == 0;
}

/* Count a call against WANT: true, and the count advanced, when the
 * thread's key names it and this is not the 64th call; else false and
 * nothing changed. */
static inline bool tc__tent_tick_as(uint64_t want)
{
	uint64_t k = tc__tls_key + 1;
	if (TC_UNLIKELY(!tc__key_is(k, want)))
		return false;
	tc__tls_key = k;
	return true;
}

/* C's entry of this thread (claimed on first use), or NULL (-EUSERS). */
static inline struct tc__tent *tc__tent_cur(tc_cache *c)
{
	if (TC_LIKELY(tc__key_is(tc__tls_key, c->tkey)))
		return tc__tls_ent;
	return tc__tent_switch(c, NULL);
}

/* tc__tent_cur() for the sampled calls (tc_get): true when tc__tls_ent is
 * C's entry and the call counted; false when the slow side must run,
 * because another handle's entry is current or because this is the 64th
 * call, to be timed. */
static inline bool tc__tent_tick(tc_cache *c)
{
	return tc__tent_tick_as(c->tkey);
}

/*
 * tc__tent_tick() of the plain fast path (tc_get): the same compare against
 * tc_cache.tfast, which is tkey when the handle's reads need nothing beyond
 * the copy (rslow 0) and no fence of their own (rfast; under
 * ThreadSanitizer the fast path fences, see tc__enter_plain), and tkey with
 * bit 63 set otherwise, which no key matches: one compare decides the
 * handle, the sampling and the plain case.  False: nothing was changed.
 */
static inline bool tc__tent_tick_plain(tc_cache *c)
{
	return tc__tent_tick_as(c->tfast);
}

/* The reader's fence of the plain fast path: none beyond the compiler's
 * (membarrier, section 5 of docs/design.md), a full one under TSan, whose
 * handles fence (tc__tfast_of lets them through for that). */
static inline void tc__plain_fence(void)
{
#ifdef TC_TSAN
	tc__mb();
#else
	tc__barrier();
#endif
}

/*
 * The outermost enter of a plain handle (tc__tent_tick_plain passed) through
 * T, whose depth the caller found 0, into the header H whose state it found
 * READY: tc__enter_ent's steps without its tests (the rfast one is in
 * tfast).  Depth 1 marks the section as the increment would.
 */
static inline __attribute__((always_inline)) struct tc_rslot *
tc__enter_plain(struct tc_hdr *h, struct tc__tent *t)
{
	struct tc_rslot *s = t->slot;
	t->depth = 1;
	uint64_t e = tc__ld(&h->epoch);
	tc__rmb(); /* the epoch before any index load (step 2) */
	tc__st(&s->epoch, e + (e == 0)); /* e, or 1 for a (scribbled) 0 */
	tc__plain_fence(); /* pairs with global_barrier() in the reclaimer */
	return s;
}

/* Leave the section of tc__enter_plain: every read of it happens before
 * the slot goes quiescent. */
static inline __attribute__((always_inline)) void
tc__exit_plain(struct tc__tent *t, struct tc_rslot *s)
{
	tc__plain_fence();
	tc__st(&s->epoch, 0);
	t->depth = 0;
}

/*
 * Enter a read section through entry T (docs/design.md, "Memory ordering",
 * the reader's steps): the segment's state, then at the outermost level the
 * epoch announced in the slot.
 */
static inline int tc__enter_ent(tc_cache *c, struct tc__tent *t)
{
	uint32_t st = tc__ld(&c->h->state);
	if (TC_UNLIKELY(st != TC_STATE_READY)) {
		int rc = tc__enter_state(c, st);
		if (rc)
			return rc;
	}
	if (t->depth++ == 0) {
		uint64_t e = tc__ld(&c->h->epoch);
		/* The epoch before any index load (step 2); free on x86,
		 * needed where loads may pass loads. */
		tc__rmb();
		tc__st(&t->slot->epoch, e ? e : 1);
		/* Pairs with global_barrier() in the reclaimer (epoch.c). */
		if (TC_LIKELY(c->rfast))
			tc__barrier();
		else
			tc__mb();
	}
	return 0;
}

/* Leave a section that the caller entered through T itself (depth >= 1).
 * Every read of the section happens before the slot goes quiescent (the
 * barrier pairs with global_barrier()). */
static inline void tc__exit_entered(tc_cache *c, struct tc__tent *t)
{
	if (--t->depth == 0) {
		if (TC_LIKELY(c->rfast))
			tc__barrier();
		else
			tc__mb();
		tc__st(&t->slot->epoch, 0);
	}
}

/* Leave a section entered through T: every read of the section happens
 * before the slot goes quiescent (the barrier pairs with global_barrier()). */
static inline void tc__exit_ent(tc_cache *c, struct tc__tent *t)
{
	if (TC_UNLIKELY(t->depth == 0))
		return;
	tc__exit_entered(c, t);
}

#endif /* TC_EPOCH_H */
