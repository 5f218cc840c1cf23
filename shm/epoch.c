/* SPDX-License-Identifier: MIT */
/*
 * epoch.c - cross-process RCU: reader slots, read sections, retirement and
 * grace periods, the hand-over of a detached retire chain; whether a
 * slot's owner is dead (recover.c clears such slots).
 *
 * Why not liburcu's grace periods: its reader registry lives in one
 * process, so it cannot see a reader in another process.  The segment holds
 * its own reader table instead (LMDB's reader lock table), and the protocol
 * is liburcu memb's: a reader announces the global epoch in its slot with a
 * plain store and only a compiler barrier, and the reclaimer pays for the
 * missing reader-side fence with membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED),
 * which runs a full barrier on every CPU that runs a thread of a registered
 * process.  A process that cannot register uses a full fence instead; every
 * reclaimer issues the command whenever the kernel has it, registered or not
 * (the command needs no registration of its caller), so that a registered
 * reader is never paired with a reclaimer that skipped it.
 *
 * The argument (docs/design.md, "Memory ordering") in one paragraph: a block
 * is retired after it was unlinked, stamped with the epoch read after the
 * unlink (behind a full barrier).  A reclaimer advances the epoch, issues
 * the global barrier, and frees a block stamped s only when s is below the
 * epoch it advanced to and every slot is quiescent or shows an epoch > s.
 * Each block is claimed by CAS (RETIRED -> MOVING) by the one walk that
 * frees or pushes it back.  A reader whose announcement the scan did
 * not see loads shared links only after the barrier and so sees the unlink;
 * a reader that shows an epoch > s read that epoch after the unlink and so
 * cannot have found the block either.
 *
 * Retired blocks are listed in the segment (a tagged lock-free stack), not
 * in a process, so reclamation survives the death of the retiring process.
 * A reclaimer detaches the whole list, records its position in its slot's
 * "reclaim" word as it walks, and pushes back what is not yet free; if it
 * dies, whoever clears its slot pushes the rest back.  The detach itself is
 * handed over without a gap (see "hand-over" below): the head word left by
 * the detaching CAS names the slot, and the slot's reclaim word names the
 * chain before the head changes again.
 *
 * References: P. McKenney et al., "User-Level Implementations of
 * Read-Copy Update", IEEE TPDS 2012, section 3 (memb); K. Fraser, "Practical
 * lock-freedom", 2004, section 5.2.3 (epoch-based reclamation); LMDB mdb.c,
 * "Reader Lock Table".
 */
#include "epoch.h"

#include <linux/membarrier.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

/* ---- membarrier -------------------------------------------------------- */

static int mb_fast = -1;   /* 1: reader side needs only a compiler barrier */
static int mb_global = -1; /* 1: the kernel has MEMBARRIER_CMD_GLOBAL_EXPEDITED */
static uint64_t mb_issued; /* global barriers issued (tests); uatomic_add */

static int sys_membarrier(int cmd)
{
	return (int)syscall(__NR_membarrier, cmd, 0, 0);
}

static void membarrier_init_once(void)
{
	int q = sys_membarrier(MEMBARRIER_CMD_QUERY);
	/* Whether this process's readers may skip their fence is its own
	 * choice; whether its reclaims issue the barrier is not: a reader of
	 * another process may have registered, and it relies on every
	 * reclaimer's barrier. */
	mb_global = q > 0 && (q & MEMBARRIER_CMD_GLOBAL_EXPEDITED) ? 1 : 0;
	mb_fast = 0;
#ifndef TC_TSAN /* under TSan: full fences, so that the sanitizer sees the edges */
	if (mb_global && (q & MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED) &&
	    getenv("TICKCACHE_NO_MEMBARRIER") == NULL &&
	    sys_membarrier(MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED) == 0)
		mb_fast = 1;
#endif
}

void tc__membarrier_init(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, membarrier_init_once);
}

uint64_t tc__membarrier_issued(void)
{
	return tc__ld(&mb_issued);
}

bool tc__membarrier_reader_fast(void)
{
	return mb_fast == 1;
}

/*
 * The reclaimer's side: a full barrier on every CPU running a thread of a
 * registered process, issued whether or not this process registered.  A
 * reader that did not register fences itself, so the two local fences
 * suffice for it; a registered reader needs the command.
 */
static bool global_barrier(void)
{
	bool ok = true;
	tc__mb();
	if (mb_global == 1) {
		/* Refused (a seccomp filter, say): a registered reader of
		 * another process may be unfenced, so nothing may be freed. */
		ok = sys_membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED) == 0;
		if (ok)
			tc__add(&mb_issued, 1);
	}
	tc__mb();
	return ok;
}

/* ---- per-thread slot table --------------------------------------------- */

/*
 * This thread's entries, one per handle it used (struct tc__tent,
 * internal.h), and the current one: tc__tls_ent is the entry of the handle
 * whose tkey matches tc__tls_key >> 6, valid whenever tc__tls_key != 0.
 * Whatever may move or drop entries (tls_add's realloc, a close, the thread's
 * exit, fork) sets tc__tls_key to 0 first; handle ids are never reused, so a
 * key left behind by a closed handle matches no later one.
 */
#define tls_ent tc__tent
TC_TLS struct tc__tls tc__tls;
static TC_TLS struct tls_ent *tls_v;
static TC_TLS uint32_t tls_n, tls_cap;
static TC_TLS uint32_t tls_tid;
static TC_TLS uint64_t tls_tstart;
static pthread_key_t tls_key;
static pthread_once_t tls_once = PTHREAD_ONCE_INIT;

static void slot_free(tc_cache *c, struct tc_rslot *s);
static uint64_t dead_chain(tc_cache *c, struct tc_rslot *s);
static uint64_t walk_chain(tc_cache *c, struct tc_rslot *s, uint64_t ref, uint64_t min,
			   uint64_t budget);

/* Thread exit: give back the slots of handles that are still open. */
static void tls_destroy(void *p)
{
	(void)p;
	tc__registry_lock();
	for (uint32_t i = 0; i < tls_n; i++) {
		if (tc__registry_has(tls_v[i].cid))
			slot_free(tls_v[i].c, tls_v[i].slot);
	}
	tc__registry_unlock();
	tc__tls_key = 0;
	free(tls_v);
	tls_v = NULL;
	tls_n = tls_cap = 0;
}

static void tls_key_init(void)
{
	pthread_key_create(&tls_key, tls_destroy);
}

static void tls_atfork_child(void)
{
	/* The child's copy of this thread's table names the parent's slots. */
	tc__tls_key = 0;
	free(tls_v);
	tls_v = NULL;
	tls_n = tls_cap = 0;
	tls_tid = 0;
	tls_tstart = 0;
}

static void __attribute__((constructor)) epoch_init(void)
{
	pthread_atfork(NULL, NULL, tls_atfork_child);
}

/*
 * Empty slot S for its next owner, the owner word aside (the caller frees
 * it by CAS): its detached chain back on the list (min 0 frees nothing;
 * a slot of a thread that died inside a detach may hold the PEND form),
 * every other field quiescent.  slot_free below and the cleaner of a dead
 * slot (recover.c).  Its counters stay: the next owner counts on from them
 * and tc_get_stats sums every slot's.  (Folded into the totals, the add and
 * the zeroing were two writes, and an owner killed between them was folded
 * again by its cleaner: counted twice for ever.)
 */
void tc__empty_slot(tc_cache *c, struct tc_rslot *s)
{
	tc__push_back_chain(c, s);
	tc__st(&s->inflight, 0);
	tc__st(&s->since, 0);
	tc__st(&s->cookie, 0);
	tc__st(&s->start, 0); /* the next claimer's owner word never meets our start */
	tc__st(&s->tstart, 0);
	tc__st(&s->base, 0);
	tc__st(&s->epoch, 0);
}

/* Give a slot of ours back (tc_close of a handle whose thread vanished
 * included): empty and free. */
static void slot_free(tc_cache *c, struct tc_rslot *s)
{
	uint64_t owner = tc__ld(&s->owner);
	if ((owner >> 32) != tc__self_pid())
		return;
	tc__empty_slot(c, s);
	TC_CRASH_POINT(slot_emptied);
	tc__cas(&s->owner, owner, 0);
}

static struct tls_ent *tls_find(tc_cache *c)
{
	for (uint32_t i = 0; i < tls_n; i++)
		if (tls_v[i].cid == c->cid)
			return &tls_v[i];
	return NULL;
}

static struct tls_ent *tls_add(tc_cache *c, struct tc_rslot *s)
{
	if (tls_n == tls_cap) {
		tc__tls_key = 0; /* the realloc may move the current entry */
		uint32_t ncap = tls_cap ? tls_cap * 2 : 4;
		struct tls_ent *nv = realloc(tls_v, ncap * sizeof(*nv));
		if (!nv)
			return NULL;
		tls_v = nv;
		tls_cap = ncap;
	}
	pthread_once(&tls_once, tls_key_init);
	pthread_setspecific(tls_key, (void *)1);
	tls_v[tls_n] = (struct tls_ent){ .cid = c->cid, .slot = s, .c = c };
	return &tls_v[tls_n++];
}

/*
 * Claim a free slot for this thread: CAS owner 0 -> pid|tid.  Ordinary
 * handles claim from [0, max_readers), TC_TOOL handles from the slots kept
 * beyond it, so a sweeper or a CLI never takes a strategy's slot.
 */
static struct tc_rslot *slot_claim(tc_cache *c)
{
	if (!tls_tid) {
		tls_tid = (uint32_t)gettid();
		tls_tstart = tc__thread_start(tls_tid);
	}
	uint64_t me = (uint64_t)tc__self_pid() << 32 | tls_tid;
	uint32_t lo = c->tool ? c->max_readers : 0;
	uint32_t hi = c->tool ? c->nslots : c->max_readers;
	for (int round = 0; round < 2; round++) {
		for (uint32_t i = lo; i < hi; i++) {
			struct tc_rslot *s = &c->slots[i];
			if (tc__ld(&s->owner) != 0 || tc__cas(&s->owner, 0, me) != 0)
				continue;
			TC_CRASH_POINT(slot_claimed);
			tc__st(&s->start, tc__self_start());
			tc__st(&s->tstart, tls_tstart);
			tc__st(&s->base, (uint64_t)(uintptr_t)c->base);
			tc__st(&s->cookie, c->cid);
			tc__st(&s->inflight, 0);
			tc__st(&s->ret_ref, 0);
			tc__st(&s->reclaim, 0);
			tc__st(&s->epoch, 0);
			return s;
		}
		/* All taken: clear the slots of dead processes, then retry once. */
		if (round == 0 && c->clean_dead(c, NULL, NULL) <= 0)
			break;
	}
	return NULL;
}

static struct tls_ent *tls_get(tc_cache *c)
{
	struct tls_ent *t = tls_find(c);
	if (TC_LIKELY(t != NULL))
		return t;
	struct tc_rslot *s = slot_claim(c);
	if (!s)
		return NULL;
	t = tls_add(c, s);
	if (!t) {
		tc__registry_lock();
		slot_free(c, s);
		tc__registry_unlock();
	}
	return t;
}

struct tc_rslot *tc__slot(tc_cache *c)
{
	struct tls_ent *t = tls_get(c);
	return t ? t->slot : NULL;
}

/* The calling thread's tid as its slots record it (0 before its first claim). */
uint32_t tc__self_tid(void)
{
	return tls_tid;
}

/* Release every slot of this process that belongs to handle C (tc_close). */
void tc__release_handle_slots(tc_cache *c)
{
	uint32_t pid = tc__self_pid();
	for (uint32_t i = 0; i < c->nslots; i++) {
		struct tc_rslot *s = &c->slots[i];
		if ((tc__ld(&s->owner) >> 32) == pid && tc__ld(&s->cookie) == c->cid)
			slot_free(c, s);
	}
	struct tls_ent *t = tls_find(c);
	if (t) {
		tc__tls_key = 0; /* the last entry moves into T's place */
		*t = tls_v[--tls_n];
	}
}

/*
 * The state is AUDITING: is its auditor dead?  Then the state goes back to
 * READY (unless tc_unlink made it UNLINKED meanwhile) and true is returned.
 * An audit killed at any point leaves the segment usable: until it
 * publishes the rebuilt lists it has only relinked free blocks among
 * themselves (a list followed from an old head meets only free blocks of
 * its class; the rest leak until the next audit) and cleared claims nobody
 * will finalize; gauges and the key count may be off until the next audit.
 * Nobody else was attached while it ran (it checked, and held the flock),
 * so nothing else was half done.
 */
bool tc__audit_orphaned(tc_cache *c)
{
	tc__rmb(); /* the auditor wrote its pid before the state (a CAS) */
	uint64_t pid = tc__ld(&c->h->audit_pid);
	if (pid != 0 && pid <= UINT32_MAX && tc__pid_alive((uint32_t)pid, tc__ld(&c->h->audit_start)))
		return false;
	tc__cas(&c->h->state, TC_STATE_AUDITING, TC_STATE_READY);
	return true; /* the caller reads the state again: READY, or UNLINKED */
}

/* ---- read sections ------------------------------------------------------ */

/*
 * Make C's entry this thread's current one (claiming a slot on its first
 * use) and return it; NULL: no free slot (-EUSERS).  The slow side of
 * tc__tent_cur() (TIMED NULL) and of tc__tent_tick() (TIMED not NULL: the
 * call counts in the entry's count, and *TIMED is set when it is the 64th
 * since the last timed one, which the caller times).  A switch to another
 * handle saves the count in the entry it leaves, so that a thread taking
 * turns between handles still times one call in 64 of each.
 */
struct tls_ent *tc__tent_switch(tc_cache *c, bool *timed)
{
	uint64_t k = tc__tls_key;
	if (timed)
		*timed = false;
	if (timed && k != 0 && (k >> 7) == c->cid) { /* tc__tent_tick's count ran out */
		*timed = true;
		tc__tls_key = c->tkey;
		return tc__tls_ent;
	}
	if (k != 0)
		tc__tls_ent->tick = (uint32_t)(k & 63);
	tc__tls_key = 0;
	struct tls_ent *t = tls_get(c);
	if (!t)
		return NULL;
	uint32_t n = t->tick;
	if (timed && ++n == 64) {
		*timed = true;
		n = 0;
	}
	tc__tls_ent = t;
	tc__tls_key = c->tkey | n;
	return t;
}

/* C's entry of this thread without claiming a slot, or NULL. */
static inline struct tls_ent *tent_find(tc_cache *c)
{
	if (TC_LIKELY(tc__key_is(tc__tls_key, c->tkey)))
		return tc__tls_ent;
	return tls_find(c);
}

/* tc__enter_ent() met a state other than READY: its code, 0 when an
 * orphaned audit no longer counts. */
int tc__enter_state(tc_cache *c, uint32_t st)
{
	/* Checked at every level, not only the outermost: a call inside a
	 * section that was open when the segment was unlinked gets -ESTALE
	 * too (one load of a read-only line). */
	if (st == TC_STATE_AUDITING && !tc__audit_orphaned(c))
		return -EBUSY;
	if (tc__ld(&c->h->state) != TC_STATE_READY)
		return -ESTALE; /* unlinked, or scribbled */
	return 0;
}

/* An outermost enter is done: the crash point of every enter that passes
 * it (TC_ENTERED: tc__enter's, and the writes' inlined one in kv.c). */
#ifdef TC_CRASHPOINTS
void tc__entered(void)
{
	TC_CRASH_POINT(read_section);
}
#endif

int tc__enter(tc_cache *c, struct tc_rslot **sp)
{
	struct tls_ent *t = tc__tent_cur(c);
	if (TC_UNLIKELY(!t))
		return -EUSERS;
	*sp = t->slot;
	int rc = tc__enter_ent(c, t);
	/* The inlined enters of the read path (kv.c) pass the same state
	 * without the point: a kill there is a kill here. */
	if (rc == 0 && t->depth == 1)
		TC_ENTERED();
	return rc;
}

void tc__exit(tc_cache *c)
{
	struct tls_ent *t = tent_find(c);
	if (TC_LIKELY(t != NULL))
		tc__exit_ent(c, t);
}

bool tc__in_section(tc_cache *c)
{
	struct tls_ent *t = tent_find(c);
	return t && t->depth > 0;
}

/* This thread's slot when it is inside a read section, else NULL. */
struct tc_rslot *tc__section_slot(tc_cache *c)
{
	struct tls_ent *t = tent_find(c);
	return t && t->depth > 0 ? t->slot : NULL;
}

/* A plain handle's outermost lock and last unlock (its tfast, kv.c's
 * tc_get) enter and leave as tc_get does (tc__enter_plain,
 * tc__exit_plain); every other case through tc__enter_ent and
 * tc__exit_ent. */
static __attribute__((noinline)) int read_lock_slow(tc_cache *c)
{
	struct tls_ent *t = tc__tent_cur(c);
	if (TC_UNLIKELY(!t))
		return -EUSERS;
	return tc__enter_ent(c, t);
}

int tc_read_lock(tc_cache *c)
{
	if (!c)
		return -EINVAL;
	if (TC_LIKELY(tc__key_is(tc__tls_key, c->tfast))) {
		struct tls_ent *t = tc__tls_ent; /* valid: the key is not 0 */
		struct tc_hdr *h = c->h;
		if (TC_LIKELY(t->depth == 0 && tc__ld(&h->state) == TC_STATE_READY)) {
			tc__enter_plain(h, t);
			return 0;
		}
	}
	return read_lock_slow(c);
}

static __attribute__((noinline)) void read_unlock_slow(tc_cache *c)
{
	struct tls_ent *t = tent_find(c);
	if (TC_LIKELY(t != NULL))
		tc__exit_ent(c, t);
}

void tc_read_unlock(tc_cache *c)
{
	if (!c)
		return;
	if (TC_LIKELY(tc__key_is(tc__tls_key, c->tfast))) {
		struct tls_ent *t = tc__tls_ent;
		if (TC_LIKELY(t->depth == 1)) {
			tc__exit_plain(t, t->slot);
			return;
		}
	}
	read_unlock_slow(c);
}

/* ---- retirement and reclamation ----------------------------------------- */

/*
 * The hand-over of a detached retire list.  A reclaimer in slot i that read
 * the head (counter n, first block r) first records PEND | n | r in its
 * reclaim word, then detaches with CAS(head, (0|i+1, n, r), (i+1, n+1, 0)),
 * then turns its word into r.  A kill between the CAS and that last store
 * would leave a chain named by nothing; so whoever changes a head that
 * names a slot first turns that slot's PEND word into the ref (settle), and
 * the cleaner of a dead slot with a PEND word settles it when the head
 * still shows the slot's detach, and withdraws it otherwise: the head
 * changed since, and whoever changed it settled the word first, so a PEND
 * word found then means the CAS never succeeded.  The counter in both words
 * makes the match exact (up to 2^19 head changes between two loads).
 */
static void settle_detach(tc_cache *c, uint64_t head)
{
	uint64_t i = TC_RH_SLOT(head);
	if (i == 0 || i > c->nslots)
		return;
	struct tc_rslot *d = &c->slots[i - 1];
	uint64_t w = tc__ld(&d->reclaim);
	uint64_t n = (TC_RH_COUNTER(head) - 1) & ((1ull << TC_RH_COUNTER_BITS) - 1);
	if ((w & TC_RECLAIM_PEND) && ((w >> 32) & 0x7fffffffu) == n)
		tc__cas(&d->reclaim, w, w & ~TC_RECLAIM_PEND); /* the plain form keeps n */
}

/* The retire list's head after a push of REF: no slot, the counter + 1. */
static inline uint64_t retired_head(uint64_t head, uint64_t ref)
{
	return TC_RH_MAKE(0, TC_RH_COUNTER(head) + 1, ref);
}

static void push_retired(tc_cache *c, struct tc_entry *e, uint64_t ref)
{
	tc__stack_push(c, &c->h->retire_head, e, ref, retired_head, settle_detach);
}

/*
 * Retire E, which the caller has just unlinked with a successful CAS (a
 * full barrier).  Exactly one party retires a block: the one that moves its
 * state from LIVE by CAS.  That CAS is a full barrier too: the epoch of
 * the stamp is loaded after the unlink is visible, with no fence of its own.
 * The CAS makes the block MOVING, as a walk's claim does, and RETIRED only
 * once it is stamped: a walk that a scribble sends to a block being
 * retired claims only RETIRED, so it never reads the stamp of the block's
 * last retirement and frees it before its grace period
 * (test_a_walk_never_takes_a_block_before_its_retirer_stamps_it).
 */
void tc__retire(tc_cache *c, struct tc_rslot *s, struct tc_entry *e)
{
	if (tc__cas(&e->state, TC_BLK_LIVE, TC_BLK_MOVING) != TC_BLK_LIVE)
		return;
	TC_CRASH_POINT(retire_marked);
	uint64_t ref = tc__ref_of(c, e);
	/* Read as readers announce it: 0 (only a scribble makes it 0) counts
	 * as 1.  A block stamped 0 under readers that announced 1 for the
	 * same epoch was freed under them (test_epoch_scribbled_to_0_...). */
	uint64_t ep = tc__ld(&c->h->epoch);
	tc__st(&e->retire_epoch, ep + (ep == 0));
	uint32_t cls = tc__ld(&e->cls);
	uint64_t size = cls < TC_CLASSES_USED ? tc__class_size(cls) : 0;
	/* Before the push: a reclaimer may detach and walk the list at once
	 * (the push's CAS publishes the stamp and the state).  A walk that a
	 * scribble sends here before the push claims the block as soon as it
	 * reads RETIRED, then reads the stamp: the stamp is stored first
	 * (x86 keeps stores in order; a weakly ordered CPU needs the fence,
	 * for which no test here can fail). */
	tc__wmb();
	tc__st(&e->state, TC_BLK_RETIRED);
	push_retired(c, e, ref);
	TC_CRASH_POINT(retire_pushed);
	tc__acct(c, s, TC_C_RETIRED_BLOCKS, 1);
	tc__acct(c, s, TC_C_RETIRED_BYTES, size);
	if (s)
		tc__st(&s->since, tc__ld(&s->since) + size);
}

/*
 * Smallest epoch announced by an active slot; UINT64_MAX when none (a
 * reclaim bounds it by the epoch it advanced to; at the epoch's largest
 * value that bound too is UINT64_MAX, which frees every block whatever its
 * stamp, walk_chain).  An announced
 * UINT64_MAX (the epoch scribbled to its largest value, where it stays,
 * advance_epoch) counts one less, so that it never reads as "none".
 */
uint64_t tc__min_active_epoch(tc_cache *c)
{
	uint64_t m = UINT64_MAX;
	for (uint32_t i = 0; i < c->nslots; i++) {
		uint64_t e = tc__ld(&c->slots[i].epoch);
		if (e && e < m)
			m = e;
		else if (e == UINT64_MAX && m == UINT64_MAX)
			m = UINT64_MAX - 1;
	}
	return m;
}

/*
 * Is a thread other than the caller inside a read section of C (a slot
 * with an epoch that this thread does not own, through any handle)?  Only
 * such a thread can leave its section while the caller waits.  A read
 * barrier first: what the caller read before (a list a popper emptied,
 * coalesce.c) is ordered before the epochs, and a popper's CAS after its
 * epoch store is a full barrier.
 */
bool tc__others_reading(tc_cache *c)
{
	uint64_t me = (uint64_t)tc__self_pid() << 32 | tc__self_tid();
	tc__rmb();
	for (uint32_t i = 0; i < c->nslots; i++)
		if (tc__ld(&c->slots[i].epoch) != 0 && tc__ld(&c->slots[i].owner) != me)
			return true;
	return false;
}

/*
 * Advance the epoch by one (a full barrier), but never past its largest
 * value: only a scribble takes it there, and a wrap to 0 would announce
 * epochs below the stamps of blocks that readers who entered before it may
 * hold (test_epoch_scribbled_to_its_largest_value).  There, stamps equal
 * every announcement, and a block is freed only by a grace period that
 * finds no slot active, until tc_audit brings the epoch back to 1.
 */
static uint64_t advance_epoch(tc_cache *c)
{
	uint64_t e = tc__ld(&c->h->epoch);
	while (e != UINT64_MAX) {
		uint64_t was = tc__cas(&c->h->epoch, e, e + 1);
		if (was == e)
			return e + 1;
		e = was;
	}
	tc__mb();
	return UINT64_MAX;
}

/* Retired blocks (TC_C_RETIRED_BLOCKS) or bytes: totals plus every slot's delta. */
int64_t tc__retired_sum(tc_cache *c, int idx)
{
	uint64_t sum = tc__ld(&c->h->tot[idx]);
	for (uint32_t i = 0; i < c->nslots; i++)
		sum += tc__ld(&c->slots[i].ctr[idx]);
	return (int64_t)sum;
}

/* A test's pause between the load of a block's link and the CAS that moves
 * the reclaim word past the block (tests/test_review_handover.c defines it
 * before it includes this file): nothing in the library. */
#ifndef TC_WALK_LOADED
#define TC_WALK_LOADED() ((void)0)
#endif
/* Likewise between its check of a block's state and the free or push back
 * that the check decided (tests/test_review_reclaim.c). */
#ifndef TC_WALK_CHECKED
#define TC_WALK_CHECKED() ((void)0)
#endif

/*
 * Walk a detached chain from W, the plain reclaim word of slot S that
 * names it (without a slot, the first block's ref): free what MIN allows,
 * push the rest back.  The slot's reclaim word always names the first
 * block not yet handled, so a crash here loses at most the block being
 * moved.  Bounded by the number of blocks in the arena.
 *
 * The word keeps the counter of the detach that made the chain
 * (TC_RECLAIM_REF, layout.h) as it moves, so that it differs from the
 * word of any later chain of the slot that starts with the same block: a
 * stealer that loaded a block's link, stalled while the owner walked the
 * chain, reused the block and detached a new chain starting with it, then
 * moved the bare ref's word to the old link, a block of the old chain
 * (test_a_stealers_stale_link_never_lands_in_a_new_chain: the rest of the
 * new chain was named by nothing, RETIRED until tc_audit; and with a
 * bound of UINT64_MAX, a block retired after the scan would be freed under
 * a reader that entered since).
 */
static uint64_t walk_chain(tc_cache *c, struct tc_rslot *s, uint64_t w, uint64_t min,
			   uint64_t budget)
{
	uint64_t freed = 0, steps = 0;
	uint64_t tag = w & ~TC_RECLAIM_PEND & ~0xffffffffull, ref = TC_RECLAIM_REF(w);
	bool paused = false;
	/* E is the block of REF: the next one's is found once, for its
	 * prefetch, and kept for its turn. */
	struct tc_entry *e = tc__block(c, ref);
	while (ref && steps++ <= c->arena_units) {
		if (budget-- == 0) {
			paused = true;
			break;
		}
		if (!e)
			break; /* corrupt link: drop the rest rather than follow it */
		uint64_t next = tc__ld(&e->link);
		if (next >> 32)
			next = 0; /* no ref: a scribbled link ends the chain */
		/* The chain is walked a few blocks per write, and each block
		 * was last touched when it was retired, long ago: ask for the
		 * next one's header now (a hint: nothing is read from it here),
		 * so that it arrives while this one is freed, or, when the walk
		 * pauses after this block, before the next write resumes it. */
		struct tc_entry *ne = tc__block(c, next);
		if (ne)
			__builtin_prefetch(ne, 1);
		TC_WALK_LOADED();
		/* The slot's reclaim word owns the chain from its value on: move
		 * it past E by CAS before touching E.  If it fails, another
		 * reclaimer took the rest over (steal_chains) and walks it. */
		if (s && tc__cas(&s->reclaim, tag | ref, next ? tag | next : 0) != (tag | ref))
			return freed;
		TC_CRASH_POINT(reclaim_walk);
		uint32_t cls = tc__ld(&e->cls);
		/* Claim E by CAS: a scribbled reclaim word or link can bring one
		 * block into two walks at once, and a load of the state let both
		 * see RETIRED: both freed it (the second free listed it again
		 * under the key that had taken it meanwhile), or one pushed it
		 * back after the other freed it (test_review_reclaim). */
		bool retired = tc__cas(&e->state, TC_BLK_RETIRED, TC_BLK_MOVING) == TC_BLK_RETIRED;
		TC_WALK_CHECKED();
		if (!retired) {
			/* Not a retired block (scribbled link, a cycle, or another
			 * walk's): drop it rather than list it twice. */
		} else if (tc__ld(&e->retire_epoch) < min || min == UINT64_MAX) {
			tc__acct(c, s, TC_C_RETIRED_BLOCKS, (uint64_t)-1);
			tc__acct(c, s, TC_C_RETIRED_BYTES,
				 (uint64_t)0 - (cls < TC_CLASSES_USED ? tc__class_size(cls) : 0));
			if (!tc__free_block(c, e))
				tc__st(&e->state, TC_BLK_RETIRED); /* leaked, as before */
			freed++;
		} else {
			tc__st(&e->state, TC_BLK_RETIRED); /* the push's CAS publishes it */
			push_retired(c, e, ref);
		}
		ref = next;
		e = ne;
	}
	if (s && ref && !paused)
		tc__cas(&s->reclaim, tag | ref, 0); /* corrupt link or cycle: give up the rest */
	return freed;
}

/*
 * Start a grace period over the whole retire list and walk up to BUDGET
 * blocks of it; the rest stays this slot's pending chain (its reclaim word,
 * with the bound in rmin), which tc__reclaim_step continues a few blocks at
 * a time, so that no single write pays for a long walk.  BUDGET UINT64_MAX
 * walks it all.  A pending chain is finished first.
 */
/*
 * The grace period of a chain just detached: advance the epoch, issue the
 * barrier, scan the slots.  Returns the bound: a block of the chain stamped
 * below it may be freed.  Without the barrier no bound is safe: 0 frees
 * nothing and pushes the chain back.  The bound is never above the epoch
 * the advance stored: a stamp below that was read before the advance, so
 * its block was unlinked before the barrier; one at or above it may have
 * been retired after the scan, under a reader that entered since, and a
 * scribbled link or reclaim word can bring such a block into the chain
 * (test_a_block_retired_after_the_grace_period_is_not_freed_by_it: with no
 * reader at the scan the bound was UINT64_MAX, which frees every block
 * whatever its stamp).  At the epoch's largest value that epoch is
 * UINT64_MAX and changes nothing.
 */
static uint64_t grace_period(tc_cache *c)
{
	/* New readers from here on announce an epoch larger than any stamp in
	 * the chain (but at the epoch's largest value, advance_epoch). */
	uint64_t top = advance_epoch(c);
	uint64_t min = global_barrier() ? tc__min_active_epoch(c) : 0;
	if (min > top)
		min = top;
#if !defined(__x86_64__) && !defined(__i386__)
	/* A weakly ordered CPU may complete a reader's loads inside its
	 * section after its exit store (a compiler barrier, then 0) is seen
	 * by the scan: a second barrier on every CPU orders those loads
	 * before the first block is freed.  x86 never lets a load pass a
	 * later store, so it needs none (design.md section 5). */
	if (min && !global_barrier())
		min = 0;
#endif
	return min;
}

/*
 * Put the pending chains of other slots back on the retire list (an owner
 * that wrote a burst and went idle would otherwise hold them until it
 * writes again), where the grace period that follows frees what it can.
 * Their stamps are kept, so min 0 (free nothing) is right whatever grace
 * period their owner ran.  The walk keeps its progress in the owner's own
 * word, by the same CAS per block as the owner's walk, so the two share the
 * chain block by block and a kill leaves the rest named where it was.  A
 * word in its PEND form is a detach under way: left alone, but for the
 * detach that the head still shows, whose hand-over is settled first, as
 * a push settles it: its detacher, descheduled or stopped between its CAS
 * and its own settle, held the whole retired memory off the list, named by
 * nothing that a stealer walks, and a write short of memory gave up with
 * -ENOSPC with no reader in a section
 * (test_a_write_takes_over_a_chain_whose_detacher_stopped_before_naming_it).
 * The detacher's settle and walk then find the word moved and walk nothing.
 */
static void steal_chains(tc_cache *c, struct tc_rslot *self)
{
	settle_detach(c, tc__ld(&c->h->retire_head));
	for (uint32_t i = 0; i < c->nslots; i++) {
		struct tc_rslot *t = &c->slots[i];
		uint64_t r = t == self ? 0 : tc__ld(&t->reclaim);
		if (!r || (r & TC_RECLAIM_PEND))
			continue;
		/* Killed here: the chain is still named by its owner's word. */
		TC_CRASH_POINT(reclaim_stolen);
		walk_chain(c, t, r, 0, UINT64_MAX);
	}
}

/*
 * The owner's own pending chain: its reclaim word, or 0.  Only the owner's
 * detach writes the PEND form, and it resolves it before it returns; the
 * plain form always names a block (the walk stores 0 at the chain's end).
 * Any other value is a scribble that names no chain of ours, withdrawn
 * here: walk_chain strips the counter and the PEND bit, walks nothing and
 * leaves such a word, which then stayed for the owner's whole life, and
 * the owner never detached the list again (its CAS from 0 failed:
 * test_a_scribbled_reclaim_word_naming_no_chain_is_withdrawn saw freed 0).
 * By CAS: a stealer moves only a word it loaded in the plain form.
 */
static uint64_t own_chain(struct tc_rslot *s)
{
	uint64_t w = tc__ld(&s->reclaim);
	if (TC_LIKELY(!(w & TC_RECLAIM_PEND) && TC_RECLAIM_REF(w)) || !w)
		return w;
	tc__cas(&s->reclaim, w, 0);
	return 0;
}

int tc__reclaim_budget(tc_cache *c, struct tc_rslot *s, uint64_t *freed, uint64_t budget)
{
	uint64_t n = 0, head;
	if (freed)
		*freed = 0;
	uint64_t own = s ? own_chain(s) : 0;
	if (own)
		n += walk_chain(c, s, own, tc__ld(&s->rmin), UINT64_MAX);
	if (s && budget == UINT64_MAX && !tc__ld(&s->reclaim))
		steal_chains(c, s);
	/*
	 * Detach first: every block in the chain was unlinked and stamped
	 * before this point, hence before the barrier below.  (Scanning the
	 * slots first would let a block retired between scan and detach be
	 * freed under a reader that entered after the scan.)  The chain is
	 * handed over to this slot's reclaim word without a gap (settle_detach).
	 */
	uint64_t me = s ? (uint64_t)(s - c->slots) + 1 : 0, pend = 0;
	for (;;) {
		head = tc__ld(&c->h->retire_head);
		if (TC_RH_REF(head) == 0) {
			if (freed)
				*freed = n;
			return 0;
		}
		if (s) {
			pend = TC_RECLAIM_PEND | TC_RH_COUNTER(head) << 32 | TC_RH_REF(head);
			/* Our word is still busy when another reclaimer is
			 * walking our pending chain (steal_chains): leave the
			 * list to a later call. */
			if (tc__cas(&s->reclaim, 0, pend) != 0) {
				if (freed)
					*freed = n;
				return 0;
			}
		}
		settle_detach(c, head);
		uint64_t nh = TC_RH_MAKE(me, TC_RH_COUNTER(head) + 1, 0);
		if (tc__cas(&c->h->retire_head, head, nh) == head)
			break;
		if (s)
			tc__cas(&s->reclaim, pend, 0);
	}
	TC_CRASH_POINT(reclaim_detached);
	if (s) {
		/* A helper may have done it (then the word is the ref, or a
		 * stealer's progress in it): either way the chain is named. */
		tc__cas(&s->reclaim, pend, pend & ~TC_RECLAIM_PEND);
		tc__st(&s->since, 0);
	}
	uint64_t min = grace_period(c);
	if (s)
		tc__st(&s->rmin, min);
	n += walk_chain(c, s, s ? pend & ~TC_RECLAIM_PEND : TC_RH_REF(head), min,
			s ? budget : UINT64_MAX);
	if (freed)
		*freed = n;
	return 0;
}

int tc__reclaim(tc_cache *c, struct tc_rslot *s, uint64_t *freed)
{
	return tc__reclaim_budget(c, s, freed, UINT64_MAX);
}

/* Continue this slot's pending chain by up to BUDGET blocks. */
uint64_t tc__reclaim_step(tc_cache *c, struct tc_rslot *s, uint64_t budget)
{
	uint64_t w = own_chain(s);
	return w ? walk_chain(c, s, w, tc__ld(&s->rmin), budget) : 0;
}

int tc__maint_slot(tc_cache *c, struct tc_rslot **sp)
{
	*sp = tc__slot(c);
	if (!*sp)
		return -EUSERS;
	if (tc__in_section(c))
		return -EDEADLK; /* our own section would block the grace period */
	return 0;
}

int tc_reclaim(tc_cache *c, uint64_t *freed_blocks)
{
	if (!c)
		return -EINVAL;
	if (freed_blocks)
		*freed_blocks = 0;
	struct tc_rslot *s;
	int rc = tc__maint_slot(c, &s);
	if (rc)
		return rc;
	/* An audit at work rebuilds the free lists, and only our own
	 * process's threads can be here (nobody else is attached): the data
	 * calls' -EBUSY, for a call that enters no section.  Our slot claim
	 * (a CAS) comes before this load, and the auditor's CAS of the state
	 * before its check of the slots: one of the two sees the other
	 * (test_reclaim_during_an_audit_is_refused: 8 blocks freed into the
	 * lists under rebuild before). */
	if (tc__ld(&c->h->state) == TC_STATE_AUDITING && !tc__audit_orphaned(c))
		return -EBUSY;
	return tc__reclaim(c, s, freed_blocks);
}

/* ---- dead threads and processes ------------------------------------------- */

/*
 * Is the owner of slot S (owner word OWNER) gone?  Its process is gone or
 * its pid reused (start time); or its thread is gone or its tid reused
 * (thread start time): a thread ended by a raw SYS_exit, killed by seccomp,
 * or removed by another thread's execve never gave its slot back.  An
 * execve keeps pid, tid and start time of the leader, so a leader's slot
 * is also dead when its process no longer maps the segment at the address
 * the owner recorded.  A slot being cleaned names its cleaner, whose start
 * time we do not know: kill(pid, 0) alone decides.
 */
bool tc__slot_dead(tc_cache *c, struct tc_rslot *s, uint64_t owner)
{
	uint32_t pid = (uint32_t)(owner >> 32);
	if (pid == 0)
		return true;
	/* "Being cleaned by PID": a cleaner maps the segment it cleans; a
	 * process that maps nothing (a kernel thread) is none
	 * (test_a_slot_being_cleaned_by_a_kernel_thread_is_taken_over).  A
	 * cleaner thread that vanished is gone too, whether its process lives
	 * or not: it held a section in the slot for good, which pinned every
	 * grace period while its process lived
	 * (test_a_cleaner_thread_that_vanishes_mid_clean_pins_nothing).  Its
	 * start time is not recorded: a tid reused in its process keeps it. */
	if (owner & TC_OWNER_CLEANING) {
		uint32_t ctid = tc__cleaner_tid(owner);
		return !tc__pid_alive(pid, 0) ||
		       (pid != tc__self_pid() && !tc__maps_segment(c, pid, 0)) ||
		       (ctid && tc__thread_gone(pid, ctid, 0));
	}
	if (!tc__pid_alive(pid, tc__ld(&s->start)))
		return true;
	uint32_t tid = (uint32_t)owner;
	if (tc__thread_gone(pid, tid, tc__ld(&s->tstart)))
		return true;
	if (tid == pid && !tc__maps_segment(c, pid, tc__ld(&s->base)))
		return true;
	return false;
}

/* The reclaim word of a slot whose owner died: a PEND word (a detach under
 * way, see settle_detach) becomes the chain when the detach happened, else
 * 0.  Returns the chain to push back, or 0. */
static uint64_t dead_chain(tc_cache *c, struct tc_rslot *s)
{
	for (int i = 0; i < 4; i++) {
		uint64_t w = tc__ld(&s->reclaim);
		if (!(w & TC_RECLAIM_PEND))
			return w;
		tc__rmb(); /* the word before the head (a settler writes them in the other order) */
		uint64_t h = tc__ld(&c->h->retire_head);
		uint64_t n = (w >> 32) & 0x7fffffffu;
		bool done = TC_RH_SLOT(h) == (uint64_t)(s - c->slots) + 1 && TC_RH_REF(h) == 0 &&
			    TC_RH_COUNTER(h) == ((n + 1) & ((1ull << TC_RH_COUNTER_BITS) - 1));
		tc__cas(&s->reclaim, w, done ? (w & ~TC_RECLAIM_PEND) : 0);
	}
	uint64_t w = tc__ld(&s->reclaim);
	return w & TC_RECLAIM_PEND ? 0 : w;
}

/*
 * Put the whole chain named by S's reclaim word back on the list (min 0:
 * frees nothing) and leave the word 0.  A stealer (steal_chains) may walk
 * the same chain at once: when it wins a block, walk_chain stops and the
 * word names the stealer's position, so the walk resumes from the word
 * until the word is 0.  Storing 0 while a stealer walks would drop the rest
 * of the chain: the stealer's next CAS fails and it stops too (found by
 * test_review_handover).  A word that stays in its PEND form (dead_chain
 * gave up) is withdrawn.
 */
void tc__push_back_chain(tc_cache *c, struct tc_rslot *s)
{
	uint64_t chain = dead_chain(c, s);
	for (uint64_t i = 0; chain && i <= c->arena_units; i++) {
		walk_chain(c, s, chain, 0, UINT64_MAX);
		chain = tc__ld(&s->reclaim);
		if (chain & TC_RECLAIM_PEND)
			break;
	}
	uint64_t w = tc__ld(&s->reclaim);
	if (w)
		tc__cas(&s->reclaim, w, 0); /* PEND, or a corrupt chain past the bound */
}

int tc_readers(tc_cache *c, tc_reader_fn fn, void *arg)
{
	if (!c || !fn)
		return -EINVAL;
	uint64_t ge = tc__ld(&c->h->epoch);
	for (uint32_t i = 0; i < c->nslots; i++) {
		struct tc_rslot *s = &c->slots[i];
		uint64_t owner = tc__ld(&s->owner);
		if (!owner)
			continue;
		uint64_t e = tc__ld(&s->epoch);
		tc_reader r = {
			.slot = i,
			.tool = i >= c->max_readers,
			.pid = (uint32_t)(owner >> 32),
			/* Being cleaned: the cleaner's thread (0: none named). */
			.tid = owner & TC_OWNER_CLEANING ? tc__cleaner_tid(owner)
							 : (uint32_t)owner & 0x7fffffffu,
			.epoch = e,
			.epoch_lag = e && ge > e ? ge - e : 0,
		};
		if (tc__slot_dead(c, s, owner))
			r.state = TC_READER_DEAD;
		else
			r.state = e ? TC_READER_ACTIVE : TC_READER_IDLE;
		int rc = fn(&r, arg);
		if (rc)
			return rc;
	}
	return 0;
}
