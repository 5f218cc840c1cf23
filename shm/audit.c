/* SPDX-License-Identifier: MIT */
/*
 * audit.c - exact recovery of a quiescent segment: mark and sweep.
 *
 * Lock-free structures cannot make "pushed on a shared stack" and "recorded
 * in my slot" one atomic step, so a process killed inside one of a few
 * short windows (docs/design.md, "Crash points") can leave a block that no
 * list names, or the live-key count one off.  Online, nothing can tell such
 * a block from one a stopped process is about to push.  When no other
 * process is attached, nothing is in flight, and the audit can be exact:
 *
 *  1. clear dead slots; refuse (-EBUSY) while any other live process is
 *     attached or any other thread of ours holds a slot; hold flock() on the
 *     object so that nobody attaches meanwhile; finish or undo the work of
 *     a coalescer that died (coalesce.c);
 *  2. mark every block reachable from the index (FINAL words that name an
 *     entry, and what the run code hangs off them) and from the header's
 *     roots; once the dry pass below has passed, the other FINAL words are
 *     cleared, and a home's probe range (maxdisp) is raised to cover every
 *     word kept;
 *  3. walk the carved arena by the marks: a marked unit starts a reachable
 *     block, which stays (its header must be written, its class in range,
 *     and it must end before the next mark); everything between is free
 *     memory: blocks whose headers read and fit keep their cut, the rest
 *     (a carve that never wrote its header, a scribbled free header) is cut
 *     afresh into free blocks; every free block goes on a rebuilt list of
 *     its class; the retire list is reclaimed and emptied (no reader
 *     exists); TENT words are cleared;
 *  4. recount live keys and DTO list heads, and reset the gauges.
 *
 * The carved end walked is the bump word's when it passes its seal
 * (alloc.c).  A scribbled word is rebuilt: the walk ends where the last
 * marked block ends, the arena past that is zeroed (where not zero
 * already: past the carved end it must read as never written, coalesce.c)
 * and the word is sealed anew, last, so that an audit killed before it
 * leaves the word failing its seal, for the next audit to rebuild.
 *
 * The walk of step 3 is first run as a dry pass that only validates it; a
 * segment it cannot walk (a reachable block's header scribbled, a mark
 * inside another block) makes the audit fail with TC_ECORRUPT before it
 * changes anything but what any peer changes online in step 1.  No header
 * is read unless it fits before the carved end.
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
/* Tests (tests/test_audit.c) make the mark bits' allocation fail. */
void *(*tc__audit_calloc)(size_t n, size_t size) = calloc;

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

static bool header_written(uint32_t st)
{
	return st == TC_BLK_FREE || st == TC_BLK_LIVE || st == TC_BLK_RETIRED ||
	       st == TC_BLK_CLAIMED || st == TC_BLK_OUT || st == TC_BLK_MOVING;
}

#define HDR_UNITS (TC_ENTRY_HDR / TC_BLOCK_UNIT)

/* The first marked unit in [U, END), or END. */
static uint64_t next_mark(const struct marks *m, uint64_t u, uint64_t end)
{
	while (u < end) {
		uint64_t w = m->bits[u / 64] >> (u % 64);
		if (w) {
			uint64_t v = u + (uint64_t)__builtin_ctzll(w);
			return v < end ? v : end;
		}
		u = (u / 64 + 1) * 64;
	}
	return end;
}

/* Units of class CLS, or 0 out of range. */
static uint64_t class_units(uint32_t cls)
{
	return cls < TC_CLASSES_USED ? tc__class_size(cls) / TC_BLOCK_UNIT : 0;
}

/*
 * The carved end for a bump word that fails its seal: the end of the last
 * marked block, by the larger of its class byte and the byte's check copy
 * (when they disagree, the sweep takes the one that holds the block's
 * entry, and an end inside the block would cut it, then zero its tail).
 * A last mark whose header does not read gives the arena's end, and the
 * dry pass fails on that header (TC_ECORRUPT).
 */
static uint64_t marked_end(const struct marks *m)
{
	tc_cache *c = m->c;
	for (uint64_t i = (c->arena_units + 63) / 64; i-- > 0;) {
		if (!m->bits[i])
			continue;
		uint64_t u = i * 64 + 63 - (uint64_t)__builtin_clzll(m->bits[i]);
		if (c->arena_units - u < HDR_UNITS)
			return c->arena_units;
		struct tc_entry *e = (struct tc_entry *)(c->arena + u * TC_BLOCK_UNIT);
		uint64_t n = class_units(tc__ld(&e->cls));
		uint64_t nc = class_units(TC_CLS_CHECK(tc__ld(&e->cls_check)));
		if (nc > n && nc <= c->arena_units - u)
			n = nc;
		return n && n <= c->arena_units - u ? u + n : c->arena_units;
	}
	return 0;
}

/* Zero the arena from unit U on, writing only the words that are not zero
 * (no page is dirtied that a scribble did not touch). */
static void zero_tail(tc_cache *c, uint64_t u)
{
	uint64_t *w = (uint64_t *)(c->arena + u * TC_BLOCK_UNIT);
	uint64_t n = (c->arena_units - u) * (TC_BLOCK_UNIT / sizeof(uint64_t));
	for (uint64_t i = 0; i < n; i++)
		if (tc__ld(&w[i]))
			tc__st(&w[i], 0);
}

struct sweep {
	tc_cache *c;
	bool apply;
	tc_audit_report *rep;
	uint64_t heads[TC_CLASSES_USED], used[TC_CLASSES_USED], nfree[TC_CLASSES_USED];
	uint64_t live_blocks;
};

/* With APPLY, block U of class CLS becomes FREE on the rebuilt list. */
static void free_one(struct sweep *w, uint64_t u, uint32_t cls)
{
	if (!w->apply)
		return;
	struct tc_entry *e = (struct tc_entry *)(w->c->arena + u * TC_BLOCK_UNIT);
	/* A pop takes only a block whose copy agrees (alloc.c): a copy
	 * scribbled alone would keep the block off every list for good. */
	tc__st(&e->cls_check, TC_CLS_CHECK(cls));
	tc__st(&e->state, TC_BLK_FREE);
	tc__st(&e->link, w->heads[cls]);
	w->heads[cls] = u + 1;
	w->nfree[cls]++;
	if (w->rep)
		w->rep->blocks++;
	TC_CRASH_POINT(audit_relink);
	if (TC_UNLIKELY(tc__audit_test_hook != NULL))
		tc__audit_test_hook(w->nfree[cls]);
}

/* Does a free block's header at V read as one and end inside the gap
 * [V, G), with 0 or at least 64 bytes to spare?  Its class, or 0. */
static uint64_t fits_gap(tc_cache *c, uint64_t v, uint64_t g, uint32_t *st, uint32_t *cls)
{
	if (g - v < HDR_UNITS)
		return 0;
	struct tc_entry *e = (struct tc_entry *)(c->arena + v * TC_BLOCK_UNIT);
	*st = tc__ld(&e->state);
	*cls = tc__ld(&e->cls);
	if (!header_written(*st) || *cls >= TC_CLASSES_USED)
		return 0;
	uint64_t n = tc__class_size(*cls) / TC_BLOCK_UNIT, left = g - v;
	if (n > left || (n < left && left - n < HDR_UNITS))
		return 0;
	return n;
}

/* Cut [V, G) (0 or at least 4 units) afresh into the largest blocks that
 * tile it, every one free; with APPLY, their headers are written whole. */
static int cut_free(struct sweep *w, uint64_t v, uint64_t g)
{
	if (v < g && w->apply && w->rep)
		w->rep->skipped_bytes += (g - v) * TC_BLOCK_UNIT;
	while (v < g) {
		uint32_t k = tc__tile_class(g - v);
		uint64_t n = tc__class_size(k) / TC_BLOCK_UNIT;
		if (n > g - v)
			return TC_ECORRUPT; /* 1-3 units: never a run of blocks */
		if (w->apply) {
			struct tc_entry *e = (struct tc_entry *)(w->c->arena + v * TC_BLOCK_UNIT);
			tc__st(&e->hash, 0);
			tc__st(&e->version, 0);
			tc__st(&e->expires_ms, 0);
			tc__st(&e->vlen, 0);
			tc__st(&e->type, 0);
			tc__st(&e->klen, 0);
			tc__st(&e->cls_check, TC_CLS_CHECK(k));
			tc__st(&e->cls, (uint8_t)k);
			tc__st(&e->kind, 0);
			tc__st(&e->refbit, 0);
			tc__st(&e->builder, 0);
			tc__st(&e->retire_epoch, 0);
			tc__st(&e->aux, 0);
		}
		free_one(w, v, k);
		v += n;
	}
	return 0;
}

/*
 * The gap [U, G) between reachable blocks is free memory, whatever its
 * headers say.  Its blocks keep their cut while each header reads as one
 * and fits the gap (fits_gap); bytes that do not (a carve that never wrote
 * its header, a scribbled class or state, a header that would cross the
 * end of the arena) are cut afresh (cut_free) up to the next unit, at least
 * 64 bytes on, where a header fits again, or to G.  Since every byte of the
 * gap is free, any header that reads is as good a cut as another.  Headers
 * are read only where a whole header fits before G.
 */
static int free_gap(struct sweep *w, uint64_t u, uint64_t g)
{
	tc_cache *c = w->c;
	uint64_t v = u;
	while (v < g) {
		uint32_t st, cls;
		uint64_t n = fits_gap(c, v, g, &st, &cls);
		if (n) {
			if (st != TC_BLK_FREE && w->apply && w->rep) {
				w->rep->recovered++;
				w->rep->recovered_bytes += tc__class_size(cls);
			}
			free_one(w, v, cls);
			v += n;
			continue;
		}
		uint64_t v2 = v + HDR_UNITS;
		while (v2 < g && !fits_gap(c, v2, g, &st, &cls))
			v2++;
		if (v2 > g)
			v2 = g;
		int rc = cut_free(w, v, v2);
		if (rc)
			return rc;
		v = v2;
	}
	return 0;
}

/* Units of a reachable block at U of class CLS when it ends before the
 * next mark and END, else 0. */
static uint64_t fits_marks(const struct marks *m, uint64_t u, uint64_t end, uint32_t cls)
{
	uint64_t n = class_units(cls);
	return n && n <= end - u && next_mark(m, u + 1, end) >= u + n ? n : 0;
}

/*
 * Bytes the entry in block E needs: header, key and value, and in a
 * segment with checksums the checksum of the kinds that carry one (layout.h
 * at tc_entry, tc__csum_kind: policy tables do not).  0 when a length is
 * out of range: nothing to judge a class by.  *KEYED: an entry of a kind
 * the index names, with a key.
 */
static uint64_t entry_need(tc_cache *c, struct tc_entry *e, bool *keyed)
{
	uint32_t klen = tc__ld(&e->klen), vlen = tc__ld(&e->vlen), kind = tc__ld(&e->kind);
	*keyed = false;
	if (klen > TC_KEY_MAX || vlen > TC_VALUE_MAX)
		return 0;
	*keyed = tc__index_kind(kind) && klen != 0;
	return c->csum && tc__csum_kind(kind) ? tc__entry_bytes_cs(klen, vlen)
					  : tc__entry_bytes(klen, vlen);
}

/*
 * The class of the reachable block E at U, whose class byte reads CLS and
 * check copy CHK, in *N its units (0: it fits no class), and in *ENTRY
 * whether the block reads as an entry of an index kind that the class
 * holds.  When the two agree, their class, if the block ends before the
 * next mark and END.  When they disagree, one of them was scribbled: the one that ends before
 * the next mark and holds the entry (the smaller if both do: a writer
 * takes the smallest class that holds its entry), else the one that ends
 * before the next mark, the byte first.  A byte scribbled smaller "fits"
 * too; taking it would cut the rest of the live block into free blocks,
 * over its value.
 */
static uint32_t reachable_class(tc_cache *c, const struct marks *m, uint64_t u, uint64_t end,
				struct tc_entry *e, uint32_t cls, uint8_t chk, uint64_t *n,
				bool *entry)
{
	uint32_t copy = TC_CLS_CHECK(chk);
	bool keyed;
	uint64_t need = entry_need(c, e, &keyed), nb = fits_marks(m, u, end, cls), nc = nb;
	bool hb = nb && need && tc__class_size(cls) >= need, byte = true;
	if (copy != cls) {
		nc = fits_marks(m, u, end, copy);
		bool hc = nc && need && tc__class_size(copy) >= need;
		byte = hb && hc ? nb <= nc : hb || (!hc && nb);
		hb = byte ? hb : hc;
	}
	*n = byte ? nb : nc;
	*entry = keyed && hb;
	return byte ? cls : copy;
}

/*
 * Walk the carved arena by the marks: a marked unit starts a reachable
 * block, whose header must be written (or read as an entry of an index
 * kind that its class holds: a scribbled state), of a class in range, and
 * end before the next mark and the carved end (its header is read only
 * once it is known to fit); the gaps between are free memory (free_gap).
 * Every mark must be met.  A class byte that disagrees with its check copy
 * (a scribbled class or copy: layout.h, TC_CLS_CHECK) is judged by
 * reachable_class; the class taken gets its byte and its copy rewritten
 * to agree, so that the block can be freed, and a reachable block is
 * LIVE.  With APPLY, rebuild the free lists and those three fields;
 * without, only check.
 */
static int sweep_arena(tc_cache *c, const struct marks *m, uint64_t end, bool apply,
		       tc_audit_report *rep)
{
	uint64_t nmarks = 0, seen = 0;
	if (end > c->arena_units)
		return TC_ECORRUPT;
	for (uint64_t i = 0; i < (c->arena_units + 63) / 64; i++)
		nmarks += (uint64_t)__builtin_popcountll(m->bits[i]);
	struct sweep sw = { .c = c, .apply = apply, .rep = rep }, *w = &sw;
	int rc = 0;
	for (uint64_t u = 0; u < end && rc == 0;) {
		if (!marked(m, u + 1)) {
			uint64_t g = next_mark(m, u, end);
			rc = free_gap(w, u, g);
			u = g;
			continue;
		}
		if (end - u < HDR_UNITS) {
			rc = TC_ECORRUPT;
			break;
		}
		struct tc_entry *e = (struct tc_entry *)(c->arena + u * TC_BLOCK_UNIT);
		uint32_t st = tc__ld(&e->state), cls = tc__ld(&e->cls);
		uint8_t chk = tc__ld(&e->cls_check);
		uint64_t n;
		bool entry;
		uint32_t k = reachable_class(c, m, u, end, e, cls, chk, &n, &entry);
		if (!(header_written(st) || entry) || !n) {
			rc = TC_ECORRUPT;
			break;
		}
		if (apply && k != cls)
			tc__st(&e->cls, (uint8_t)k);
		if (apply && chk != TC_CLS_CHECK(k))
			tc__st(&e->cls_check, TC_CLS_CHECK(k));
		if (apply && st != TC_BLK_LIVE)
			tc__st(&e->state, TC_BLK_LIVE);
		cls = k;
		w->used[cls]++;
		w->live_blocks++;
		seen++;
		if (rep && apply)
			rep->blocks++;
		u += n;
	}
	if (rc == 0 && seen != nmarks)
		rc = TC_ECORRUPT; /* a mark past the carved end */
	if (rc == 0 && apply) {
		for (uint32_t k = 0; k < TC_CLASSES_USED; k++) {
			struct tc_class *cl = &c->h->cls[k];
			uint64_t h = tc__ld(&cl->head);
			tc__st(&cl->head, ((h >> 32) + 1) << 32 | w->heads[k]);
			tc__st(&cl->used, w->used[k]);
			tc__st(&cl->nfree, w->nfree[k]);
		}
		uint64_t rh = tc__ld(&c->h->retire_head);
		tc__st(&c->h->retire_head, TC_RH_MAKE(0, TC_RH_COUNTER(rh) + 1, 0));
		if (rep)
			rep->live_blocks = w->live_blocks;
	}
	return rc;
}

/*
 * Owner words that name no attached process and that nothing online can
 * judge dead (tests/test_audit.c): freed under our flock.  An attacher
 * writes its record, pid then start time, under the flock, so a record of
 * another pid with start time 0 is a scribble or a tc_close under way
 * (whose slots are already given back), unless that process's maps show
 * the segment (an attacher without /proc of its own writes 0 too); none is
 * freed when our own start time reads 0 (no /proc: every record has 0).  Once no other process has
 * a record, a slot of another pid without an owner's record
 * (tc__owner_record) is no claimer's (a claimer is attached): a scribbled
 * owner word of a free slot, naming a live thread of a process that never
 * attached, or "being cleaned" by one whose maps cannot be read (one that
 * maps nothing is a dead cleaner online: tc__slot_dead).
 * Online they stay (a live owner cannot be told from them), and each one
 * refused every audit for ever; with its epoch scribbled too, such a slot
 * pinned every grace period.  Only our own threads may claim meanwhile:
 * the slot is emptied while its owner word still keeps them out.
 */
static void free_scribbled_owners(tc_cache *c)
{
	uint32_t me = tc__self_pid();
	bool others = false;
	for (uint32_t i = 0; i < c->max_attach; i++) {
		struct tc_attach_rec *r = &c->attach[i];
		uint64_t p = tc__ld(&r->pid);
		if (!p || p == me)
			continue;
		/* An attacher whose own /proc cannot be read (a chroot or
		 * a sandbox without it) writes start time 0 too: its maps,
		 * which we can read, show the segment, and it stays
		 * (test_audit_keeps_an_attacher_whose_start_time_reads_0). */
		if (tc__ld(&r->start) == 0 && tc__self_start() != 0 &&
		    (p > UINT32_MAX || !tc__maps_segment_shown(c, (uint32_t)p)))
			tc__cas(&r->pid, p, 0);
		else
			others = true;
	}
	if (others)
		return;
	for (uint32_t i = 0; i < c->nslots; i++) {
		struct tc_rslot *s = &c->slots[i];
		uint64_t owner = tc__ld(&s->owner);
		if (!owner || (uint32_t)(owner >> 32) == me || tc__owner_record(s))
			continue;
		tc__st(&s->inflight, 0);
		tc__st(&s->ret_ref, 0);
		tc__empty_slot(c, s);
		tc__cas(&s->owner, owner, 0);
	}
}

/*
 * Close the door on our own process's threads too: with the state
 * AUDITING (a CAS, full barrier), a thread entering a section sees it and
 * gets -EBUSY, or its slot claim is visible to the check below.  An audit
 * that died left AUDITING behind: running again repairs it, since
 * everything is rebuilt from the index.  0 (state AUDITING, ours), -ESTALE
 * or -EBUSY (state unchanged).  Caller holds the flock.
 */
static int close_door(tc_cache *c, struct tc_rslot *self)
{
	uint32_t was = tc__ld(&c->h->state);
	if (was != TC_STATE_READY && was != TC_STATE_AUDITING)
		return -ESTALE;
	/* First without changing anything: a process that attached before our
	 * flock must never see AUDITING (its calls would get -EBUSY) when the
	 * audit is refused anyway.  Nobody attaches while we hold the flock,
	 * so after this check only our own threads can still enter. */
	tc__clean_dead(c, self, NULL);
	free_scribbled_owners(c);
	if (!quiescent(c, self))
		return -EBUSY;
	tc__st(&c->h->audit_pid, (uint64_t)tc__self_pid());
	tc__st(&c->h->audit_start, tc__self_start());
	tc__cas(&c->h->state, was, TC_STATE_AUDITING);
	TC_CRASH_POINT(audit_state);
	/* AUDITING found under our flock was left by a dead auditor: whatever
	 * happens now, the state goes back to READY, never to AUDITING with
	 * our own live pid recorded (that would block every process). */
	if (!quiescent(c, self)) {
		tc__cas(&c->h->state, TC_STATE_AUDITING, TC_STATE_READY);
		return -EBUSY;
	}
	return 0;
}

/* The audit's end, whatever its result: the state goes back to READY (an
 * unlink meanwhile made it UNLINKED, which stays), then the auditor's
 * record is cleared.  Caller holds the flock. */
static void open_door(tc_cache *c)
{
	tc__cas(&c->h->state, TC_STATE_AUDITING, TC_STATE_READY);
	tc__st(&c->h->audit_start, 0);
	tc__st(&c->h->audit_pid, 0);
}

/* Does class CLS hold an entry of KLEN and VLEN at byte OFF of the arena? */
static bool class_holds(tc_cache *c, uint32_t cls, uint64_t off, uint32_t klen, uint32_t vlen)
{
	return cls < TC_CLASSES_USED && off + tc__class_size(cls) <= c->arena_bytes &&
	       tc__entry_bytes(klen, vlen) <= tc__class_size(cls);
}

/*
 * Does the published word W name an entry?  tc__slot_entry's checks, as
 * the idle segment allows them: the tag is the hash's, the kind one that
 * lives in the index, the lengths in range, the block not in a free
 * block's state (FREE, CLAIMED, OUT: it may be on a free list, and the
 * next write of its class takes it), and its class byte, or the byte's
 * check copy, holds key and value in the arena (sweep_arena takes the one
 * that holds the entry).  Not the probe range, which is maxdisp's, a
 * shared word (settle_words raises it), nor a state that is no block's: a
 * lookup (match) does not read the state, so an entry whose state word
 * alone was scribbled reads back whole, and the sweep makes every
 * reachable block LIVE.  A word that fails names no key anyone can read
 * (every lookup of it gives TC_ECORRUPT) or one whose block is free
 * memory, and is dropped: a scribbled word, or one whose entry's header no
 * longer reads.
 */
static bool word_names_entry(tc_cache *c, uint64_t w)
{
	struct tc_entry *e = tc__block(c, TC_SW_REF(w));
	if (!e)
		return false;
	uint64_t hash = tc__ld(&e->hash), off = (TC_SW_REF(w) - 1) * TC_BLOCK_UNIT;
	uint32_t kind = tc__ld(&e->kind), klen = tc__ld(&e->klen), vlen = tc__ld(&e->vlen);
	uint32_t st = tc__ld(&e->state), cls = tc__ld(&e->cls);
	uint8_t chk = tc__ld(&e->cls_check);
	if (TC_TAG_OF(hash) != TC_SW_TAG(w) || !tc__index_kind(kind) ||
	    klen == 0 || klen > TC_KEY_MAX || vlen > TC_VALUE_MAX ||
	    st == TC_BLK_FREE || st == TC_BLK_CLAIMED || st == TC_BLK_OUT)
		return false;
	return class_holds(c, cls, off, klen, vlen) ||
	       class_holds(c, TC_CLS_CHECK(chk), off, klen, vlen);
}

/* The displacement of the kept word W in bucket B from its entry's home
 * (*HOME), when it lies past the home's probe range (maxdisp: a scribbled
 * meta word), else 0. */
static uint64_t past_range(tc_cache *c, uint64_t b, uint64_t w, uint64_t *home)
{
	*home = tc__ld(&tc__block(c, TC_SW_REF(w))->hash) & c->bmask;
	uint64_t d = (b - *home) & c->bmask;
	return d > (tc__ld(&c->index[*home].meta) & 0xffffffffu) ? d : 0;
}

/* Published words that name a block an earlier word already named (two
 * FINAL words of one block never exist: index.c; a scribble copied one). */
struct dups {
	uint64_t **at;
	size_t n, cap;
	bool nomem;
};

static void dup_add(struct dups *d, uint64_t *wp)
{
	if (d->n == d->cap) {
		size_t cap = d->cap ? 2 * d->cap : 16;
		uint64_t **at = realloc(d->at, cap * sizeof(*at));
		if (!at) {
			d->nomem = true;
			return;
		}
		d->at = at;
		d->cap = cap;
	}
	d->at[d->n++] = wp;
}

/* Once the dry pass has passed: clear the published words that name no
 * entry (word_names_entry; their keys leave live_after, recounted) and the
 * duplicates D (a key deleted by one word would read back by the other
 * until its block was reused), and raise the probe range of a home that a
 * kept word lies past (its key read as a miss, and the walks refused it),
 * as an insert does. */
static void settle_words(tc_cache *c, const struct dups *dups)
{
	for (size_t i = 0; i < dups->n; i++)
		tc__st(dups->at[i], 0);
	for (uint64_t b = 0; b < c->nbuckets; b++) {
		for (int i = 0; i < TC_BUCKET_SLOTS; i++) {
			uint64_t *wp = &c->index[b].w[i];
			uint64_t w = tc__ld(wp), d, home;
			if (!w || TC_SW_STATE(w) != TC_SW_FINAL)
				continue;
			if (!word_names_entry(c, w)) {
				tc__st(wp, 0);
			} else if ((d = past_range(c, b, w, &home)) != 0) {
				uint64_t *mp = &c->index[home].meta;
				tc__st(mp, (tc__ld(mp) & ~0xffffffffull) | d);
			}
		}
	}
}

/* Mark every block the index words and the header roots reach.  Returns
 * the published keys, *DTO of them DTO list heads; *TENT counts the claims
 * nobody will finalize, *FIX the words that name no entry or lie past their
 * home's probe range, and DUPS holds the words of a block already marked
 * (settle_words). */
static int64_t mark_reachable(tc_cache *c, struct marks *m, uint64_t *tent, uint64_t *fix,
			      struct dups *dups, uint64_t *dto)
{
	int64_t live = 0;
	for (uint64_t b = 0; b < c->nbuckets; b++) {
		for (int i = 0; i < TC_BUCKET_SLOTS; i++) {
			uint64_t w = tc__ld(&c->index[b].w[i]);
			if (!w)
				continue;
			if (TC_SW_STATE(w) != TC_SW_FINAL) {
				(*tent)++; /* cleared by clear_claims */
				continue;
			}
			if (!word_names_entry(c, w)) {
				(*fix)++;
				continue;
			}
			if (marked(m, TC_SW_REF(w))) {
				dup_add(dups, &c->index[b].w[i]);
				continue;
			}
			uint64_t home;
			if (past_range(c, b, w, &home))
				(*fix)++;
			struct tc_entry *e = tc__block(c, TC_SW_REF(w));
			mark(m, TC_SW_REF(w));
			tc__audit_entry(c, e, mark, m);
			live++;
			if (tc__ld(&e->kind) == TC_KIND_DTO)
				(*dto)++;
		}
	}
	tc__audit_roots(c, mark, m);
	return live;
}

/* Clear the TENT words (claims of inserters that died). */
static void clear_claims(tc_cache *c, uint64_t tent, tc_audit_report *rep)
{
	for (uint64_t b = 0; tent && b < c->nbuckets; b++) {
		for (int i = 0; i < TC_BUCKET_SLOTS; i++) {
			uint64_t *wp = &c->index[b].w[i];
			uint64_t w = tc__ld(wp);
			if (w && TC_SW_STATE(w) != TC_SW_FINAL) {
				tc__st(wp, 0);
				if (rep)
					rep->tentative_cleared++;
			}
		}
	}
}

/* The counters after the rebuild: LIVE keys, DTO list heads, and no block
 * retired.  A writer killed between a list's insert or unlink and its count
 * (dto_head_counted, dto_list_unlinked) left dto_heads one high: a sweep
 * that finds it above 0 walks the index for dead lists on every pass. */
static void reset_counts(tc_cache *c, int64_t live, uint64_t dto, tc_audit_report *rep)
{
	if (rep) {
		rep->live_before = (int64_t)tc__ld(&c->h->live);
		rep->live_after = live;
	}
	tc__st(&c->h->live, (uint64_t)live);
	tc__st(&c->h->dto_heads, dto);
	/* No block is retired any more: reset the deltas of every slot. */
	tc__st(&c->h->tot[TC_C_RETIRED_BYTES], 0);
	tc__st(&c->h->tot[TC_C_RETIRED_BLOCKS], 0);
	for (uint32_t i = 0; i < c->nslots; i++) {
		tc__st(&c->slots[i].ctr[TC_C_RETIRED_BYTES], 0);
		tc__st(&c->slots[i].ctr[TC_C_RETIRED_BLOCKS], 0);
		tc__st(&c->slots[i].since, 0);
	}
}

int tc_audit(tc_cache *c, tc_audit_report *rep)
{
	if (!c)
		return -EINVAL;
	if (rep)
		memset(rep, 0, sizeof(*rep));
	struct tc_rslot *self;
	int rc = tc__maint_slot(c, &self);
	if (rc)
		return rc;
	char path[TC_SHM_PATH_MAX];
	tc__shm_path(path, sizeof(path), c->name);
	int fd = shm_open(path, O_RDWR, 0);
	if (fd == -1)
		return -errno;
	rc = tc__lock_bounded(fd);
	if (rc)
		goto out_close;
	rc = close_door(c, self);
	if (rc)
		goto out_unlock;
	/* A coalescer killed mid-work left its window described: finish or
	 * undo it, so that the arena can be walked (as any peer would). */
	tc__coalesce_recover(c, self);
	struct marks m = { .c = c, .bits = tc__audit_calloc((c->arena_units + 63) / 64, 8) };
	if (!m.bits) {
		rc = -ENOMEM; /* nothing changed yet: only the door to open */
		goto out_open;
	}
	uint64_t tent = 0, fix = 0, dto = 0;
	struct dups dups = { 0 };
	int64_t live = mark_reachable(c, &m, &tent, &fix, &dups, &dto);
	if (dups.nomem) {
		rc = -ENOMEM; /* nothing changed yet */
		goto out_free;
	}
	/* Everything so far only read the index, the headers and the roots:
	 * a segment that cannot be walked is left as it was. */
	uint64_t end = tc__carved(c);
	bool rebuild = end == TC_BUMP_BAD;
	if (rebuild)
		end = marked_end(&m);
	if (m.bad || sweep_arena(c, &m, end, false, NULL) != 0) {
		rc = TC_ECORRUPT;
		goto out_free;
	}
	if (fix || dups.n)
		settle_words(c, &dups);
	/* No reader exists: an ordinary reclaim frees the whole retire list,
	 * so that what the sweep finds unreachable and not free is a true
	 * leak. */
	tc__reclaim(c, self, NULL);
	/* An epoch scribbled to its largest value stays there (epoch.c,
	 * advance_epoch), where only a grace period without readers frees
	 * anything: with no reader and the retire list freed, it starts
	 * again from 1. */
	if (tc__ld(&c->h->epoch) == UINT64_MAX)
		tc__st(&c->h->epoch, 1);
	clear_claims(c, tent, rep);
	sweep_arena(c, &m, end, true, rep); /* as the dry pass: no failure */
	if (rebuild) {
		zero_tail(c, end);
		tc__mb(); /* the zeros before the word that lets carvers at them */
		tc__st(&c->h->bump, tc__bump_seal(c->seed, end));
	}
	reset_counts(c, live, dto, rep);
out_free:
	free(dups.at);
	free(m.bits);
out_open:
	open_door(c);
out_unlock:
	flock(fd, LOCK_UN);
out_close:
	close(fd);
	return rc;
}
