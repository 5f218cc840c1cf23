/* SPDX-License-Identifier: MIT */
/*
 * audit.c - exact recovery of a quiescent segment: mark and sweep.
 *
 * Lock-free structures cannot make "pushed on a shared stack" and "recorded
 * in my slot" one atomic step, so a process killed inside one of a few
 * short windows (docs/design.md, "Crash windows") can leave a block that no
 * list names, or the live-key count one off.  Online, nothing can tell such
 * a block from one a stopped process is about to push.  When no other
 * process is attached, nothing is in flight, and the audit can be exact:
 *
 *  1. clear dead slots; refuse (-EBUSY) while any other live process is
 *     attached or any other thread of ours holds a slot; hold flock() on the
 *     object so that nobody attaches meanwhile; finish or undo the work of
 *     a coalescer that died (coalesce.c);
 *  2. mark every block reachable from the index (FINAL words, and what the
 *     run code hangs off them) and from the header's roots; clear TENT words;
 *  3. walk the carved arena block by block (sizes from each header's class):
 *     a marked block stays; every other block becomes FREE on a rebuilt free
 *     list of its class; the retire list is emptied (no reader exists);
 *  4. recount live keys and reset the gauges.
 *
 * Step 3 is first run as a dry pass that only validates the walk; a
 * scribbled header makes the audit fail with TC_ECORRUPT before it changes
 * anything.
 */
#include "internal.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <unistd.h>

/* Tests (tests/test_segment.c) kill the auditor while it relinks blocks. */
void (*tc__audit_test_hook)(uint64_t blocks_relinked);

struct marks {
	tc_cache *c;
	uint64_t *bits;   /* one bit per 16-byte unit: set at a reachable block's start */
	bool bad;
};

static void mark(void *ctx, uint64_t ref)
{
	struct marks *m = ctx;
	if (ref == 0 || ref > m->c->arena_units) {
		m->bad = true;
		return;
	}
	m->bits[(ref - 1) / 64] |= 1ull << ((ref - 1) % 64);
}

static bool marked(const struct marks *m, uint64_t ref)
{
	return (m->bits[(ref - 1) / 64] >> ((ref - 1) % 64)) & 1;
}

static bool quiescent(tc_cache *c, struct tc_rslot *self)
{
	uint32_t me = tc__self_pid();
	for (uint32_t i = 0; i < c->nslots; i++) {
		struct tc_rslot *s = &c->slots[i];
		if (s != self && tc__ld(&s->owner) != 0)
			return false;
	}
	for (uint32_t i = 0; i < c->max_attach; i++) {
		uint64_t p = tc__ld(&c->attach[i].pid);
		if (p && p != me)
			return false;
	}
	return true;
}

static bool header_written(const struct tc_entry *e)
{
	uint32_t st = tc__ld(&e->state);
	return st == TC_BLK_FREE || st == TC_BLK_LIVE || st == TC_BLK_RETIRED ||
	       st == TC_BLK_CLAIMED || st == TC_BLK_OUT;
}

/* Walk the carved arena; with APPLY, rebuild the free lists. */
static int sweep_arena(tc_cache *c, const struct marks *m, bool apply, tc_audit_report *rep)
{
	uint64_t end = tc__ld(&c->h->bump);
	uint64_t heads[TC_CLASSES_USED] = { 0 }, used[TC_CLASSES_USED] = { 0 },
		 nfree[TC_CLASSES_USED] = { 0 }, live_blocks = 0;
	if (end > c->arena_units)
		return TC_ECORRUPT;
	for (uint64_t u = 0; u < end;) {
		struct tc_entry *e = (struct tc_entry *)(c->arena + u * TC_BLOCK_UNIT);
		uint32_t cls = tc__ld(&e->cls);
		if (!header_written(e)) {
			/* Carved by a writer killed before it wrote the header: zeros
			 * up to the next block.  Step over them; they stay unused. */
			u++;
			if (rep && apply)
				rep->skipped_bytes += TC_BLOCK_UNIT;
			continue;
		}
		if (cls >= TC_CLASSES_USED)
			return TC_ECORRUPT;
		uint64_t units = tc__class_size(cls) / TC_BLOCK_UNIT;
		if (u + units > end)
			return TC_ECORRUPT;
		uint64_t ref = u + 1;
		if (marked(m, ref)) {
			used[cls]++;
			live_blocks++;
		} else if (apply) {
			uint32_t st = tc__ld(&e->state);
			if (st != TC_BLK_FREE && rep) {
				rep->recovered++;
				rep->recovered_bytes += tc__class_size(cls);
			}
			tc__st(&e->state, TC_BLK_FREE);
			tc__st(&e->link, heads[cls]);
			heads[cls] = ref;
			nfree[cls]++;
			TC_CRASH_POINT(audit_relink);
			if (TC_UNLIKELY(tc__audit_test_hook != NULL))
				tc__audit_test_hook(nfree[cls]);
		}
		/* A marked ref must start a block: clear it as we pass. */
		u += units;
		if (rep && apply)
			rep->blocks++;
	}
	if (!apply)
		return 0;
	for (uint32_t k = 0; k < TC_CLASSES_USED; k++) {
		struct tc_class *cl = &c->h->cls[k];
		uint64_t h = tc__ld(&cl->head);
		tc__st(&cl->head, ((h >> 32) + 1) << 32 | heads[k]);
		tc__st(&cl->used, used[k]);
		tc__st(&cl->nfree, nfree[k]);
	}
	uint64_t rh = tc__ld(&c->h->retire_head);
	tc__st(&c->h->retire_head, TC_RH_MAKE(0, TC_RH_COUNTER(rh) + 1, 0));
	if (rep)
		rep->live_blocks = live_blocks;
	return 0;
}

/* Every marked ref must be the start of a block the walk visits. */
static bool marks_on_blocks(tc_cache *c, struct marks *m)
{
	uint64_t end = tc__ld(&c->h->bump), n = 0, seen = 0;
	for (uint64_t w = 0; w < (c->arena_units + 63) / 64; w++)
		n += (uint64_t)__builtin_popcountll(m->bits[w]);
	for (uint64_t u = 0; u < end && u < c->arena_units;) {
		struct tc_entry *e = (struct tc_entry *)(c->arena + u * TC_BLOCK_UNIT);
		uint32_t cls = tc__ld(&e->cls);
		if (!header_written(e)) {
			u++;
			continue;
		}
		if (cls >= TC_CLASSES_USED)
			return false;
		if (marked(m, u + 1))
			seen++;
		u += tc__class_size(cls) / TC_BLOCK_UNIT;
	}
	return seen == n;
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

int tc_audit(tc_cache *c, tc_audit_report *rep)
{
	if (!c)
		return -EINVAL;
	if (rep)
		memset(rep, 0, sizeof(*rep));
	struct tc_rslot *self = tc__slot(c);
	if (!self)
		return -EUSERS;
	if (tc__in_section(c))
		return -EDEADLK;
	char path[TC_NAME_MAX + 16];
	snprintf(path, sizeof(path), "/tickcache.%s", c->name);
	int fd = shm_open(path, O_RDWR, 0);
	if (fd == -1)
		return -errno;
	int rc = tc__lock_bounded(fd);
	if (rc)
		goto out_close;
	/*
	 * Close the door on our own process's threads too: with the state
	 * AUDITING (a CAS, full barrier), a thread entering a section sees it
	 * and gets -EBUSY, or its slot claim is visible to the check below.
	 * An audit that died left AUDITING behind: running again repairs it,
	 * since everything is rebuilt from the index.
	 */
	uint32_t was = tc__ld(&c->h->state);
	if (was != TC_STATE_READY && was != TC_STATE_AUDITING) {
		rc = -ESTALE;
		goto out_unlock;
	}
	/* First without changing anything: a process that attached before our
	 * flock must never see AUDITING (its calls would get -EBUSY) when the
	 * audit is refused anyway.  Nobody attaches while we hold the flock,
	 * so after this check only our own threads can still enter. */
	tc__clean_dead(c, self, NULL);
	if (!quiescent(c, self)) {
		rc = -EBUSY;
		goto out_unlock;
	}
	tc__st(&c->h->audit_pid, (uint64_t)tc__self_pid());
	tc__st(&c->h->audit_start, tc__self_start());
	tc__cas(&c->h->state, was, TC_STATE_AUDITING);
	TC_CRASH_POINT(audit_state);
	/* AUDITING found under our flock was left by a dead auditor: whatever
	 * happens now, the state goes back to READY, never to AUDITING with
	 * our own live pid recorded (that would block every process). */
	was = TC_STATE_READY;
	if (!quiescent(c, self)) {
		tc__cas(&c->h->state, TC_STATE_AUDITING, was);
		rc = -EBUSY;
		goto out_unlock;
	}
	/* A coalescer killed mid-work left its window described: finish or
	 * undo it, so that the arena can be walked. */
	tc__coalesce_recover(c);
	/* No reader exists: an ordinary reclaim frees the whole retire list,
	 * so that what the sweep below finds unreachable and not free is a
	 * true leak. */
	tc__reclaim(c, self, NULL);
	struct marks m = { .c = c, .bits = calloc((c->arena_units + 63) / 64, 8) };
	if (!m.bits) {
		rc = -ENOMEM;
		goto out_unlock;
	}
	int64_t live = 0;
	for (uint64_t b = 0; b < c->nbuckets; b++) {
		for (int i = 0; i < TC_BUCKET_SLOTS; i++) {
			uint64_t *wp = &c->index[b].w[i];
			uint64_t w = tc__ld(wp);
			if (!w)
				continue;
			if (TC_SW_STATE(w) != TC_SW_FINAL) {
				tc__st(wp, 0); /* a claim nobody will finalize */
				if (rep)
					rep->tentative_cleared++;
				continue;
			}
			struct tc_entry *e = tc__block(c, TC_SW_REF(w));
			if (!e) {
				m.bad = true;
				continue;
			}
			mark(&m, TC_SW_REF(w));
			tc__audit_entry(c, e, mark, &m);
			live++;
		}
	}
	tc__audit_roots(c, mark, &m);
	if (m.bad || !marks_on_blocks(c, &m) || sweep_arena(c, &m, false, NULL) != 0) {
		rc = TC_ECORRUPT;
		goto out_free;
	}
	sweep_arena(c, &m, true, rep);
	if (rep) {
		rep->live_before = (int64_t)tc__ld(&c->h->live);
		rep->live_after = live;
	}
	tc__st(&c->h->live, (uint64_t)live);
	/* No block is retired any more: reset the deltas of every slot. */
	tc__st(&c->h->tot[TC_C_RETIRED_BYTES], 0);
	tc__st(&c->h->tot[TC_C_RETIRED_BLOCKS], 0);
	for (uint32_t i = 0; i < c->nslots; i++) {
		tc__st(&c->slots[i].ctr[TC_C_RETIRED_BYTES], 0);
		tc__st(&c->slots[i].ctr[TC_C_RETIRED_BLOCKS], 0);
		tc__st(&c->slots[i].since, 0);
	}
out_free:
	free(m.bits);
	/* A failed audit changed nothing: the state goes back to READY (an
	 * unlink meanwhile made it UNLINKED, which stays). */
	tc__cas(&c->h->state, TC_STATE_AUDITING, TC_STATE_READY);
out_unlock:
	flock(fd, LOCK_UN);
out_close:
	close(fd);
	return rc;
}
