/* SPDX-License-Identifier: MIT */
/*
 * coalesce.c - giving free memory to the size class that needs it.
 *
 * A class gets memory by carving from the arena and keeps it: once the
 * arena is carved, a block freed in one class serves only that class.  A
 * workload whose value sizes change (64-byte ticks in the morning, 16 KiB
 * snapshots later) would then fail with -ENOSPC next to megabytes of free
 * blocks of the wrong size.  When a class has no free block and the arena
 * no uncarved room, the allocator calls tc__coalesce: it finds a window of
 * contiguous free blocks large enough, takes them off their free lists, and
 * re-cuts the window into one block of the wanted class (returned to the
 * caller) plus blocks that tile the rest (pushed to their classes).
 *
 * Free lists are Treiber stacks: a block cannot be taken out of the middle
 * of one.  So blocks are claimed in place and unlinked by whoever pops them:
 *
 *   1. find: walk block headers from df_hand round to it (and past it while
 *      a run is open) for a run of FREE blocks whose size covers the
 *      request and leaves 0 or at least 64 bytes over (a carve that never
 *      wrote its header is stepped over unit by unit; past a header that
 *      cannot be trusted the walk goes on at a block a free list names);
 *   2. claim: CAS each block FREE -> CLAIMED, counting it in df_pending.  A
 *      failed CAS (the block was popped) undoes the claims;
 *   3. drain: pop the lists of the window's classes.  A CLAIMED block
 *      popped (by us or by any allocator, tc__alloc) becomes OUT and leaves
 *      df_pending; an ordinary block we pop waits on the df_held chain and
 *      goes back when the window is drained.  A pop never returns a block
 *      whose class byte is not its list's (alloc.c), so a block whose size
 *      was scribbled never becomes OUT and its window is never re-cut;
 *   4. rewrite: with every block OUT, nobody else can reach the window: new
 *      headers are written (state OUT), then the new blocks are pushed,
 *      except the first, which becomes the caller's in-flight allocation.
 *
 * A popper that read a block's link before the block was claimed, unlinked
 * and rewritten fails its CAS on the list head: the head's generation moved
 * when the block was popped.  Only one coalescer works at a time (df_turn);
 * the phase, the window and the held chain are in the header, so a coalescer
 * killed at any point is finished or undone by the next one (recover()), or
 * by tc_audit.  A kill between two steps of one block can lose that block,
 * as the other crash windows of docs/design.md do; tc_audit recovers it.
 */
#include "internal.h"

#include <unistd.h>
#define XXH_INLINE_ALL
#include <xxhash.h>

#define DF_WALK_MAX  16384u /* headers read per search (and an open run); the next goes on */
#define DF_DRAIN_NS  (2 * 1000 * 1000ull) /* longest wait for poppers to unlink claims */
#define DF_TARGET    4096u  /* a window grows up to 64 KiB (or one block) when it can */
#define DF_RESYNC_MAX 4u    /* untrusted headers a search goes past (resync) */

/* Tests (tests/test_coalesce.c) kill the coalescer at each of these points. */
void (*tc__df_test_hook)(int point);
#define HOOK(p) do { if (TC_UNLIKELY(tc__df_test_hook != NULL)) tc__df_test_hook(p); } while (0)

static bool state_ok(uint32_t st)
{
	return st == TC_BLK_FREE || st == TC_BLK_LIVE || st == TC_BLK_RETIRED ||
	       st == TC_BLK_CLAIMED || st == TC_BLK_OUT || st == TC_BLK_MOVING;
}

static struct tc_entry *unit_block(tc_cache *c, uint64_t u)
{
	return (struct tc_entry *)(c->arena + u * TC_BLOCK_UNIT);
}

/*
 * The size in units of the block at unit U (a block start), or 0 when its
 * header is not (yet) written or not to be trusted: a carve in progress, a
 * writer killed between carving and writing, a scribble.
 */
static uint64_t block_units(tc_cache *c, uint64_t u, uint64_t end, uint32_t *state)
{
	if (u + TC_ENTRY_HDR / TC_BLOCK_UNIT > end)
		return 0;
	struct tc_entry *e = unit_block(c, u);
	uint32_t st = tc__ld(&e->state);
	if (!state_ok(st))
		return 0;
	tc__rmb(); /* the class was written before the state (tc__alloc) */
	uint32_t cls = tc__ld(&e->cls);
	if (cls >= TC_CLASSES_USED)
		return 0;
	uint64_t n = tc__class_size(cls) / TC_BLOCK_UNIT;
	if (u + n > end)
		return 0;
	*state = st;
	return n;
}

/*
 * The first unit at or after U that a reader slot names in flight, or END.
 * A carver names its block in its slot before its bump CAS (alloc.c), so
 * every carve below END that may still be writing its header, key and
 * value starts at a named unit: a walk never reads the bytes of one.  A
 * carve whose carver died is named until the slot cleaner clears the
 * slot, and stepped over after that.
 */
static uint64_t named_from(tc_cache *c, uint64_t u, uint64_t end)
{
	uint64_t lim = end;
	tc__rmb(); /* the bump pointer (END) was read before the slots */
	for (uint32_t i = 0; i < c->nslots; i++) {
		uint64_t r = tc__ld(&c->slots[i].inflight);
		if (r > u && r - 1 < lim)
			lim = r - 1;
	}
	return lim;
}

/*
 * Is the unit at U, which no slot names and which no live carve covers,
 * part of a carve that never wrote its header (its carver killed between
 * the bump CAS and the header)?  The arena past the bump pointer is zeros,
 * and a carver writes only the class, its check copy and the builder
 * (bytes 34, 37 and 38-39 of the header, the third unit) before the
 * state: every unit of such a hole is zero but for those.  A scribbled
 * header (hash, version, value bytes) never looks like one.
 */
#define HOLE_BYTES 0xffffff0000ff0000ull /* bytes 34, 37, 38, 39 of a unit's first word */
_Static_assert(offsetof(struct tc_entry, cls) == 34 && offsetof(struct tc_entry, cls_check) == 37 &&
	       offsetof(struct tc_entry, builder) == 38, "the fields a carver writes first");
static bool hole_unit(tc_cache *c, uint64_t u)
{
	const uint64_t *w = (const uint64_t *)(c->arena + u * TC_BLOCK_UNIT);
	return (tc__ld(&w[0]) & ~HOLE_BYTES) == 0 && tc__ld(&w[1]) == 0;
}

/*
 * Does a block of N units at U end where one may: at the carved end, on a
 * header that reads as one, on a carve still named in flight, or on a
 * carve hole?  A class byte scribbled to a larger size mostly ends inside
 * another block's bytes; a walk that trusted it would step over a
 * neighbour as if it were part of the block.  (A size that ends exactly
 * on a later header is caught when the block is popped: its class no
 * longer matches its list, alloc.c.)
 */
static bool ends_on_a_block(tc_cache *c, uint64_t u, uint64_t n, uint64_t end)
{
	uint64_t v = u + n;
	if (v >= end)
		return v == end;
	if (end - v >= TC_ENTRY_HDR / TC_BLOCK_UNIT) {
		struct tc_entry *e = unit_block(c, v);
		if (state_ok(tc__ld(&e->state)) && tc__ld(&e->cls) < TC_CLASSES_USED)
			return true;
	}
	return named_from(c, v, end) == v || hole_unit(c, v);
}

/*
 * The walk met a header at U that it cannot trust and that is no carve
 * hole (a scribbled state or class): nothing in the block's own bytes says
 * where the next block starts, and reading on unit by unit could take value
 * bytes for a header.  The free lists are a second record of block starts:
 * the nearest block after U that a list names, whose class is the list's
 * and whose size ends on a header, is where the walk goes on (while the
 * turn is held no block boundary moves: only a coalescer re-cuts).  At
 * most DF_WALK_MAX links are read; 0 when none is found.
 */
static uint64_t resync(tc_cache *c, uint64_t u, uint64_t end)
{
	uint64_t best = 0, budget = DF_WALK_MAX;
	for (uint32_t k = 0; k < TC_CLASSES_USED && budget; k++) {
		uint64_t ref = tc__ld(&c->h->cls[k].head) & 0xffffffffu;
		for (; ref && budget; budget--) {
			if (ref > end || end - (ref - 1) < TC_ENTRY_HDR / TC_BLOCK_UNIT)
				break;
			uint64_t v = ref - 1;
			struct tc_entry *e = unit_block(c, v);
			uint32_t st;
			uint64_t n;
			if (v > u && (!best || v < best) && tc__ld(&e->cls) == k &&
			    (n = block_units(c, v, end, &st)) != 0 && ends_on_a_block(c, v, n, end))
				best = v;
			ref = tc__ld(&e->link);
		}
	}
	return best;
}

/*
 * The end of the walks: the carved end, or the arena's end when the bump
 * word fails its seal (a scribble; nothing is carved until tc_audit
 * rebuilds it).  The arena past the true carved end is then zeros, which
 * the walks step over as carve holes, and only blocks a free list names
 * are ever claimed.
 */
static uint64_t carved_end(tc_cache *c)
{
	uint64_t b = tc__carved(c);
	return b == TC_BUMP_BAD ? c->arena_units : b;
}

/*
 * The class of the next block when cutting R units (R == 0 or R >= 4) into
 * blocks: the largest whose size leaves 0 or at least 4 units (64 bytes).
 * tc_audit cuts free gaps with it too.
 */
uint32_t tc__tile_class(uint64_t r)
{
	for (uint32_t k = TC_CLASSES_USED; k-- > 0;) {
		uint64_t n = tc__class_size(k) / TC_BLOCK_UNIT;
		if (n == r || n + 4 <= r)
			return k;
	}
	return 0;
}

/*
 * The new cut of a window: blocks of the wanted class while they fit (with
 * 0 or at least 64 bytes over), then the largest blocks that tile the rest.
 * Deterministic, so that recover() can compute it again.
 */
struct cut {
	uint64_t u, end;
};

static bool cut_next(struct cut *t, uint32_t want, uint64_t *u, uint32_t *cls)
{
	if (t->u >= t->end)
		return false;
	uint64_t left = t->end - t->u, n = tc__class_size(want) / TC_BLOCK_UNIT;
	uint32_t k = (left == n || left >= n + 4) ? want : tc__tile_class(left);
	if (tc__class_size(k) / TC_BLOCK_UNIT > left)
		return false; /* never past the window (a window always tiles) */
	*u = t->u;
	*cls = k;
	t->u += tc__class_size(k) / TC_BLOCK_UNIT;
	return true;
}

/* Write the new cut's headers, every block OUT (phase REWRITE). */
static void rewrite(tc_cache *c, uint64_t start, uint64_t units, uint32_t cls)
{
	struct cut t = { .u = start, .end = start + units };
	uint64_t u;
	uint32_t k;
	while (cut_next(&t, cls, &u, &k)) {
		struct tc_entry *e = unit_block(c, u);
		if (u > start)
			HOOK(TC_DF_HOOK_REWRITE);
		TC_CRASH_POINT(coalesce_rewrite);
		tc__st(&e->cls_check, TC_CLS_CHECK(k));
		tc__st(&e->cls, (uint8_t)k);
		tc__st(&e->link, 0);
		tc__st(&e->builder, 0);
		tc__st(&e->refbit, 0);
		tc__st(&e->state, TC_BLK_OUT);
	}
}

/* Push every block of the new cut that is still OUT (phase PUSH). */
static void push_cut(tc_cache *c, uint64_t start, uint64_t units, uint32_t cls, bool skip_first)
{
	struct cut t = { .u = start, .end = start + units };
	uint64_t u;
	uint32_t k;
	bool first = true;
	while (cut_next(&t, cls, &u, &k)) {
		struct tc_entry *e = unit_block(c, u);
		if (!(first && skip_first) && tc__ld(&e->state) == TC_BLK_OUT) {
			tc__push_free(c, e, k);
			HOOK(TC_DF_HOOK_PUSH);
			TC_CRASH_POINT(coalesce_push);
		}
		first = false;
	}
}

/*
 * The phase word: the phase in the top byte, and in the rest a hash of the
 * window it applies to, keyed with the segment's seed.  One store publishes
 * both; recover() acts only on a word that matches the window fields, so a
 * scribbled field (or a half-updated one) is never taken for work to redo.
 */
static uint64_t phase_word(tc_cache *c, uint64_t start, uint64_t units, uint64_t cls,
			   uint64_t phase)
{
	uint64_t v[4] = { start, units, cls, phase };
	return phase << 56 | (XXH3_64bits_withSeed(v, sizeof(v), c->seed) & ((1ull << 56) - 1));
}

static void set_phase(tc_cache *c, uint64_t phase)
{
	struct tc_hdr *h = c->h;
	tc__st(&h->df_phase, phase_word(c, tc__ld(&h->df_start), tc__ld(&h->df_units),
					tc__ld(&h->df_cls), phase));
}

/* Push back the chain of ordinary blocks popped while draining (state OUT
 * while held).  The head moves past a block before the block is pushed, so
 * no block is pushed twice, whoever finishes the chain; a block not OUT is
 * not ours (a scribbled chain) and is left alone. */
static void push_held(tc_cache *c)
{
	uint64_t ref;
	uint64_t n = 0;
	while ((ref = tc__ld(&c->h->df_held)) != 0 && n++ < c->arena_units) {
		struct tc_entry *e = tc__block(c, ref);
		if (!e) {
			tc__st(&c->h->df_held, 0); /* scribbled: leak the rest, never follow it */
			return;
		}
		uint64_t next = tc__ld(&e->link);
		uint32_t cls = tc__ld(&e->cls);
		tc__st(&c->h->df_held, next <= c->arena_units ? next : 0);
		if (cls < TC_CLASSES_USED && tc__ld(&e->state) == TC_BLK_OUT)
			tc__push_free(c, e, cls);
	}
}

/*
 * Undo a claim phase: claimed blocks still listed become FREE again, those
 * already unlinked (OUT) go back on their lists.  The old headers are
 * intact in this phase; the walk stops at the first one that is not.
 */
static void unclaim(tc_cache *c, uint64_t start, uint64_t units)
{
	uint64_t end = carved_end(c), stop = start + units;
	for (uint64_t u = start; u < stop && u < end;) {
		uint32_t st;
		uint64_t n = block_units(c, u, end, &st);
		if (!n)
			break;
		struct tc_entry *e = unit_block(c, u);
		if (st == TC_BLK_CLAIMED) {
			if (tc__cas(&e->state, TC_BLK_CLAIMED, TC_BLK_FREE) == TC_BLK_CLAIMED)
				tc__add(&c->h->df_pending, (uint64_t)-1);
			else if (tc__ld(&e->state) == TC_BLK_OUT)
				tc__push_free(c, e, tc__ld(&e->cls));
		} else if (st == TC_BLK_OUT) {
			tc__push_free(c, e, tc__ld(&e->cls));
		}
		u += n;
	}
	push_held(c);
}

/* Finish or undo the work the turn holder described, then go idle. */
static void recover(tc_cache *c)
{
	struct tc_hdr *h = c->h;
	uint64_t start = tc__ld(&h->df_start), units = tc__ld(&h->df_units);
	uint64_t cls = tc__ld(&h->df_cls), word = tc__ld(&h->df_phase), phase = word >> 56;
	bool sane = cls < TC_CLASSES_USED && start < c->arena_units &&
		    units <= c->arena_units - start &&
		    word == phase_word(c, start, units, cls, phase);
	if (phase == TC_DF_CLAIM && sane) {
		unclaim(c, start, units);
	} else if ((phase == TC_DF_REWRITE || phase == TC_DF_PUSH) && sane) {
		if (phase == TC_DF_REWRITE) {
			rewrite(c, start, units, (uint32_t)cls);
			set_phase(c, TC_DF_PUSH);
		}
		push_cut(c, start, units, (uint32_t)cls, false);
		push_held(c);
	} else {
		push_held(c);
	}
	tc__st(&h->df_pending, 0);
	set_phase(c, TC_DF_IDLE);
	tc__st(&h->df_hand, 0);
}

/*
 * Turn words: pid << 32 | slot index << 16 | generation.  The generation
 * (a counter in the header) makes every take's word new, so a holder that
 * finishes and takes the turn again from the same slot is never mistaken
 * for the one a competitor judged gone.  A recoverer takes the turn with
 * its own slot too (tc__coalesce_recover), so every holder's word names a
 * slot: one whose index names none is a scribble.  (Recoverers without a
 * slot used the index 0xffff, judged by kill(pid, 0) and the process's
 * maps: a word scribbled to name pid 1 (its maps unreadable in a
 * container), a kernel thread (no maps) or any live process mapping the
 * segment with it was held for ever,
 * test_a_turn_word_naming_no_slot_is_no_holder.)
 */
static uint64_t new_word(tc_cache *c, uint32_t idx)
{
	uint64_t gen = tc__add_ret(&c->h->df_gen, 1) & 0xffffu;
	return (uint64_t)tc__self_pid() << 32 | (uint64_t)idx << 16 | gen;
}

/* Is the holder of turn word W gone (its slot given back, cleaned or dead)? */
static bool holder_gone(tc_cache *c, uint64_t w)
{
	uint32_t idx = (uint32_t)(w >> 16) & 0xffffu;
	if (idx >= c->nslots)
		return true;
	struct tc_rslot *s = &c->slots[idx];
	uint64_t owner = tc__ld(&s->owner);
	if ((owner >> 32) != (w >> 32) || (owner & 0x80000000ull))
		return true;
	return !tc__pid_alive((uint32_t)(w >> 32), tc__ld(&s->start));
}

/*
 * Take the coalescer's turn for slot S; a dead holder's work is finished or
 * undone first.  The word taken, or 0 when a live coalescer holds it.
 */
static uint64_t turn_take(tc_cache *c, struct tc_rslot *s)
{
	uint64_t w = tc__ld(&c->h->df_turn);
	if (w != 0 && !holder_gone(c, w))
		return 0;
	uint64_t me = new_word(c, (uint32_t)(s - c->slots));
	if (tc__cas(&c->h->df_turn, w, me) != w)
		return 0;
	if (w != 0)
		recover(c);
	return me;
}

static void turn_drop(tc_cache *c, uint64_t me)
{
	tc__cas(&c->h->df_turn, me, 0);
}

/* Bytes on every free list (the gauges are approximate, and so is this). */
uint64_t tc__free_bytes(tc_cache *c)
{
	uint64_t sum = 0;
	for (uint32_t k = 0; k < TC_CLASSES_USED; k++) {
		uint64_t n = tc__ld(&c->h->cls[k].nfree);
		if (n < c->arena_units)
			sum += n * tc__class_size(k);
	}
	return sum;
}

static bool fits(uint64_t run, uint64_t need)
{
	return run == need || run >= need + 4;
}

/* Could the block at E be made free by evicting it (LRU)?  Retired blocks
 * will be free after their grace period; live ordinary keys can be evicted
 * once cold (reference bit clear: not read since the clock last passed).
 * DTO lists, load claims, rate windows, anchors and policies never are. */
static bool evictable(struct tc_entry *e, uint32_t st)
{
	return st == TC_BLK_RETIRED || st == TC_BLK_MOVING ||
	       (st == TC_BLK_LIVE && tc__ld(&e->kind) == TC_KIND_KEY && tc__ld(&e->refbit) == 0);
}

/*
 * Find a window for a block of NEED units: a run of FREE blocks leaving 0
 * or at least 4 units over, grown up to DF_TARGET units (so that the next
 * allocations of the class find blocks waiting); with EVICT, failing that
 * within the walk, the first run of blocks that are free or can be made
 * free (*all_free is then false).  Runs never cross a header that cannot
 * be read.  A carve that never wrote its header (its carver killed in the
 * crash window) is stepped over unit by unit, as a hole, up to the next
 * header; past a carve that may still be at work (named in flight), any
 * other header that cannot be read, or a block whose size does not end on
 * a header (a scribble), the walk goes on at the nearest block a free list
 * names (resync; tc_audit re-cuts the bytes between).
 *
 * The walk starts at df_hand, goes to the carved end, then wraps and goes
 * on from the arena's start up to where it began, and past it while a run
 * is open: the run that crosses df_hand is searched whole, not as two
 * halves that each fall short.  An open run also goes on past the walk's
 * budget (it ends within TARGET units, or one block past NEED), so that a
 * search never gives up inside a run and the next one never starts inside
 * it.  1 found; 0 not found in the whole arena (the caller records
 * df_nofit); -1 not found within the walk's budget or its resyncs (the
 * next search goes on from df_hand, a block start where no run is open).
 *
 * Longer than two screens (117 lines): one walk holds the open run, the
 * candidate window and the wrap in locals that every step updates
 * together; split into functions they would travel as one struct through
 * every call, and the crash and scribble cases above read best in one
 * place.
 */
#define NO_HOLE UINT64_MAX
static int find_window(tc_cache *c, uint64_t need, bool evict, uint64_t *wstart,
		       uint64_t *wunits, bool *all_free)
{
	uint64_t end = carved_end(c), target = need > DF_TARGET ? need : DF_TARGET;
	uint64_t u = tc__ld(&c->h->df_hand), first, hs = NO_HOLE, hlim = 0;
	uint64_t run = 0, run_start = 0, erun = 0, erun_start = 0, cand = 0, cand_units = 0;
	bool wrapped = false, erun_busy = false, have_cand = false;
	uint32_t resyncs = 0, walked = 0;
	uint64_t hole_units = 0;
	if (u >= end)
		u = 0;
	first = u;
	for (;;) {
		uint32_t st = 0;
		uint64_t n = 0;
		bool hole = false;
		bool open = run != 0 || (erun != 0 && !have_cand);
		if (u < end && (walked < DF_WALK_MAX || run != 0) &&
		    !(wrapped && u >= first && !open)) {
			n = block_units(c, u, end, &st);
			if (n && !ends_on_a_block(c, u, n, end)) {
				n = 0;
			} else if (!n) {
				if (hs == NO_HOLE)
					hlim = named_from(c, u, end);
				hole = u < hlim && hole_unit(c, u);
			}
			if (!hole)
				hs = NO_HOLE;
		}
		/* A run that reached TARGET (>= NEED) but ends 1 to 3 units past
		 * NEED takes one more block (at least 4 units): then it fits. */
		if (n && st == TC_BLK_FREE && (run < target || !fits(run, need))) {
			if (!run)
				run_start = u;
			run += n;
		} else {
			if (run >= need && fits(run, need)) {
				*wstart = run_start;
				*wunits = run;
				*all_free = true;
				return 1;
			}
			run = 0;
		}
		if (evict && !have_cand && n &&
		    (st == TC_BLK_FREE || evictable(unit_block(c, u), st))) {
			if (!erun) {
				erun_start = u;
				erun_busy = false;
			}
			erun += n;
			erun_busy |= st != TC_BLK_FREE;
			if (erun_busy && erun >= need && fits(erun, need)) {
				cand = erun_start;
				cand_units = erun;
				have_cand = true;
			}
		} else {
			erun = 0;
		}
		if (n) {
			u += n;
			walked++;
			continue;
		}
		if (hole) {
			if (hs == NO_HOLE)
				hs = u;
			u++;
			/* A walk step per 16 units: a hole of the largest class
			 * (81920 units) fits the budget. */
			walked += ++hole_units % 16 == 0;
			continue;
		}
		/* No run is open here: this walk step ended it. */
		bool budget = walked >= DF_WALK_MAX;
		if (!budget && u < end && !(wrapped && u >= first)) {
			/* A header that cannot be trusted. */
			if (resyncs == DF_RESYNC_MAX) {
				budget = true; /* the next search resyncs from here */
			} else {
				resyncs++;
				if ((n = resync(c, u, end)) != 0) {
					u = n; /* the bytes between are in no run */
					walked++;
					continue;
				}
				/* No listed block past it: this pass ends here. */
			}
		}
		if (have_cand) {
			*wstart = cand;
			*wunits = cand_units;
			*all_free = false;
			return 1;
		}
		if (budget) {
			/* A block start (a hole's first unit): a search that
			 * began inside a hole would not know where its carve
			 * begins, nor whether a slot names it. */
			if (hs != NO_HOLE)
				u = hs;
			tc__st(&c->h->df_hand, u < end ? u : 0);
			return -1;
		}
		if (wrapped || first == 0) {
			tc__st(&c->h->df_hand, 0);
			return 0;
		}
		/* The end of the carved arena, or a header past which no listed
		 * block is found: go on from the start. */
		wrapped = true;
		u = 0;
		hs = NO_HOLE;
	}
}

/*
 * Make the window free (a policy with evict_block, evict.c): evict the
 * live keys in it; retired blocks become free after their grace period.  The next search starts at the
 * window, and finds it free once the caller has reclaimed.
 */
static void evict_window(tc_cache *c, struct tc_rslot *s, uint64_t start, uint64_t units)
{
	uint64_t end = carved_end(c), stop = start + units;
	for (uint64_t u = start; u < stop;) {
		uint32_t st;
		uint64_t n = block_units(c, u, end, &st);
		if (!n)
			break;
		struct tc_entry *e = unit_block(c, u);
		if (st == TC_BLK_LIVE && tc__ld(&e->kind) == TC_KIND_KEY)
			c->evict->evict_block(c, s, e);
		u += n;
	}
	tc__st(&c->h->df_hand, start);
}

/*
 * Does a reader slot name a block of the window in its in-flight or
 * unlinking record?  Such a record can only be stale (the blocks are
 * free), but a dead slot's cleaner will still read the header it names: a
 * window re-cut under it would show the cleaner value bytes instead.  Such
 * windows wait until the slot is cleared.
 */
static bool named_by_a_slot(tc_cache *c, uint64_t start, uint64_t units)
{
	for (uint32_t i = 0; i < c->nslots; i++) {
		uint64_t a = tc__ld(&c->slots[i].inflight), b = tc__ld(&c->slots[i].ret_ref);
		if ((a && a - 1 >= start && a - 1 < start + units) ||
		    (b && b - 1 >= start && b - 1 < start + units))
			return true;
	}
	return false;
}

/* Claim every block of the window; false (all undone) when one was taken. */
static bool claim(tc_cache *c, uint64_t start, uint64_t units, uint64_t *classes)
{
	uint64_t end = carved_end(c), stop = start + units;
	for (uint64_t u = start; u < stop;) {
		uint32_t st;
		uint64_t n = block_units(c, u, end, &st);
		struct tc_entry *e = unit_block(c, u);
		if (!n || st != TC_BLK_FREE)
			return false;
		tc__add(&c->h->df_pending, 1);
		if (tc__cas(&e->state, TC_BLK_FREE, TC_BLK_CLAIMED) != TC_BLK_FREE) {
			tc__add(&c->h->df_pending, (uint64_t)-1);
			return false;
		}
		TC_CRASH_POINT(coalesce_claiming);
		classes[tc__ld(&e->cls) / 64] |= 1ull << (tc__ld(&e->cls) % 64);
		u += n;
	}
	return true;
}

/*
 * Is every block of the window OUT?  Only a successful pop (ours or an
 * allocator's) makes a block OUT, so then none is on any list.  The old
 * headers are intact until the rewrite.
 */
static bool all_out(tc_cache *c, uint64_t start, uint64_t units)
{
	uint64_t end = carved_end(c), stop = start + units;
	for (uint64_t u = start; u < stop;) {
		uint32_t st;
		uint64_t n = block_units(c, u, end, &st);
		if (!n || st != TC_BLK_OUT)
			return false;
		u += n;
	}
	return true;
}

/*
 * Unlink every claimed block: pop the window's classes until all of the
 * window is OUT.  df_pending says when to look: it is shared by every round,
 * and a popper of an earlier, undone round may decrement it late, so it is
 * only a hint; all_out() decides.  When the lists are empty and blocks are
 * still claimed, allocators that popped them are about to mark them OUT:
 * the drain waits for them up to DF_DRAIN_NS, but not at all when no other
 * thread is in a section (every pop but ours is an allocator's, inside its
 * writer's section, room.h: no popper exists: the window is judged once
 * more, and the blocks still not OUT are on no list: freed by a writer
 * killed before its push, or on a list cut as broken, and tc_audit lists
 * them again; or, for a moment, a freer outside a section is about to link
 * one).  A stale answer only gives up early, which is always safe.  False:
 * give up (the caller unclaims).
 */
static bool drain(tc_cache *c, uint64_t start, uint64_t units, const uint64_t *classes)
{
	uint64_t t0 = tc__mono_ns();
	bool force = false; /* the hint said done and was wrong: pop regardless */
	for (;;) {
		if (force || tc__ld(&c->h->df_pending) == 0) {
			if (all_out(c, start, units))
				return true;
			force = true;
		}
		bool popped = false;
		for (uint32_t k = 0; k < TC_CLASSES_USED; k++) {
			if (!((classes[k / 64] >> (k % 64)) & 1))
				continue;
			struct tc_entry *e;
			while ((force || tc__ld(&c->h->df_pending) != 0) &&
			       (e = tc__pop_free(c, k)) != NULL) {
				popped = true;
				TC_CRASH_POINT(coalesce_popped);
				if (tc__cas(&e->state, TC_BLK_CLAIMED, TC_BLK_OUT) == TC_BLK_CLAIMED) {
					tc__add(&c->h->df_pending, (uint64_t)-1);
					continue;
				}
				/* An ordinary free block: hold it until the drain ends. */
				tc__st(&e->state, TC_BLK_OUT);
				tc__st(&e->link, tc__ld(&c->h->df_held));
				tc__st(&c->h->df_held, tc__ref_of(c, e));
				HOOK(TC_DF_HOOK_HELD);
				TC_CRASH_POINT(coalesce_held);
			}
		}
		/* Lists empty and blocks still pending: allocators that popped
		 * them are about to mark them OUT, if any.  None in a section:
		 * every one that popped a claimed block has marked it OUT
		 * before leaving its section (its exit store follows its CAS),
		 * so the window is judged once more: an allocator that marked
		 * the last block and left after this pass began must not make
		 * the drain give up a window that is all OUT
		 * (test_a_drain_sees_a_popper_that_left_after_its_pass). */
		if (!popped) {
			HOOK(TC_DF_HOOK_DRAIN_EMPTY);
			if (!tc__others_reading(c)) {
				tc__rmb(); /* the epochs (read 0) before the states */
				return all_out(c, start, units);
			}
			/* The clock bounds the wait for poppers only: a pass
			 * that pops makes progress, bounded by the lists (a
			 * popped ordinary block is held), and a drain slowed
			 * down there (preempted, a sanitizer) still judges the
			 * window after its first empty pass. */
			if (tc__mono_ns() - t0 > DF_DRAIN_NS)
				return false;
			HOOK(TC_DF_HOOK_DRAIN_WAIT);
			caa_cpu_relax();
		}
	}
}

/* Is a live coalescer at work (holding free blocks off their lists)? */
bool tc__coalescing(tc_cache *c)
{
	uint64_t w = tc__ld(&c->h->df_turn);
	return w != 0 && !holder_gone(c, w);
}

uint64_t tc__merges(tc_cache *c)
{
	return tc__ld(&c->h->df_merges);
}

/*
 * Finish or undo a dead coalescer's work, as its successor would, holding
 * the turn with slot S: called when dead slots were cleared
 * (tc__clean_dead) and by tc_audit.  Without a slot (a cleaner called
 * from tc_readers_clean or a slot claim) it is left to the next caller
 * with one, or to the next coalescer.
 */
void tc__coalesce_recover(tc_cache *c, struct tc_rslot *s)
{
	uint64_t w = tc__ld(&c->h->df_turn);
	if (!w || !s || !holder_gone(c, w))
		return;
	uint64_t me = new_word(c, (uint32_t)(s - c->slots));
	if (tc__cas(&c->h->df_turn, w, me) != w)
		return;
	recover(c);
	tc__st(&c->h->df_nofit, 0);
	tc__cas(&c->h->df_turn, me, 0);
}

/*
 * Could the clock or the run sweep ever free the LIVE block E, which is
 * not an ordinary key?  An expired entry (the clock removes every expired
 * entry it passes), a DTO element of a run that has ended (the run sweep).
 * Never: a rate window or a load claim in its window, the active run's
 * lists, its anchor, the policy table.
 */
static bool removable(struct tc_entry *e, int64_t now, uint64_t run)
{
	int64_t exp = tc__ld(&e->expires_ms);
	if (exp != 0 && exp <= now)
		return true;
	return tc__ld(&e->kind) == TC_KIND_DTO &&
	       (!RUN_REF(run) || RUN_GEN(run) != tc__ld(&e->aux));
}

/* Give the ordinary keys of the window a second chance, as the clock's
 * hand does: clear their reference bits (inside a read section, so that
 * none of them is freed and reused meanwhile).  False when none was set. */
static bool second_chance(tc_cache *c, uint64_t start, uint64_t units)
{
	struct tc_rslot *rs;
	uint64_t end = carved_end(c), stop = start + units;
	bool hot = false;
	if (tc__enter(c, &rs))
		return true; /* no section: evict nothing now */
	for (uint64_t u = start; u < stop;) {
		uint32_t st;
		uint64_t n = block_units(c, u, end, &st);
		if (!n)
			break;
		struct tc_entry *e = unit_block(c, u);
		if (st == TC_BLK_LIVE && tc__ld(&e->kind) == TC_KIND_KEY && tc__ld(&e->refbit)) {
			tc__st(&e->refbit, 0);
			hot = true;
		}
		u += n;
	}
	tc__exit(c);
	return hot;
}

/*
 * What the census's answer rests on: every allocation pops a list (its
 * head's generation grows) or carves (the bump word moves), every free
 * pushes one, an entry inserted or removed moves the live count, and a
 * run started or ended the run word.  While none of them changes, no
 * block of the arena changes its state, kind or place, and an answer of
 * "no room" stands, until the earliest expiry among the blocks that kept
 * it (a rate window or a load claim that ends becomes removable).
 * Reference bits change, but the census does not look at them.  The
 * handle remembers the last such answer (nofit_memo, internal.h), so that
 * every write of a segment full of what it may not evict does not walk
 * the whole arena again.
 */
static uint64_t arena_sig(tc_cache *c)
{
	uint64_t x = tc__ld(&c->h->bump) ^ tc__ld(&c->h->live) * 0x9e3779b97f4a7c15ull ^
		     tc__run_word(c) * 0xc2b2ae3d27d4eb4full;
	for (uint32_t k = 0; k < TC_CLASSES_USED; k++)
		x = (x ^ tc__ld(&c->h->cls[k].head)) * 0x100000001b3ull;
	return x;
}

static uint64_t memo_check(uint64_t cls, uint64_t sig, uint64_t until)
{
	return XXH3_64bits_withSeed(&sig, sizeof(sig), cls << 32 ^ until);
}

/* Does the handle's memo say that class CLS has no room at signature SIG? */
static bool memo_holds(tc_cache *c, uint32_t cls, uint64_t sig, int64_t now)
{
	uint64_t k = __atomic_load_n(&c->nofit_memo.cls, __ATOMIC_RELAXED);
	uint64_t g = __atomic_load_n(&c->nofit_memo.sig, __ATOMIC_RELAXED);
	uint64_t u = __atomic_load_n(&c->nofit_memo.until, __ATOMIC_RELAXED);
	uint64_t h = __atomic_load_n(&c->nofit_memo.check, __ATOMIC_RELAXED);
	return k == cls && g == sig && (int64_t)u > now && h == memo_check(k, g, u);
}

static void memo_store(tc_cache *c, uint32_t cls, uint64_t sig, int64_t until)
{
	__atomic_store_n(&c->nofit_memo.cls, cls, __ATOMIC_RELAXED);
	__atomic_store_n(&c->nofit_memo.sig, sig, __ATOMIC_RELAXED);
	__atomic_store_n(&c->nofit_memo.until, (uint64_t)until, __ATOMIC_RELAXED);
	__atomic_store_n(&c->nofit_memo.check, memo_check(cls, sig, (uint64_t)until),
			 __ATOMIC_RELAXED);
}

static uint64_t census_reads; /* headers the censuses of this process read (tests) */

uint64_t tc__census_reads(void)
{
	return tc__ld(&census_reads);
}

/* A run of blocks that the census walks (below). */
struct crun {
	uint64_t start, units;
	bool key;   /* an ordinary key in it */
	bool other; /* an entry that the clock or the run sweep removes */
	bool busy;  /* a block that is not free */
	uint64_t free_units; /* the free blocks that end the run, together */
};

/*
 * The census of a write short of memory under LRU (tc__make_room): walk
 * the arena by address, at most BUDGET headers, for room for a block of
 * class CLS that the clock or the coalescer could ever give: a run of
 * blocks that are free, retired, ordinary keys or entries the clock or the
 * run sweep removes (removable, above), at least the class's size.  The
 * first such run with a key in it whose length the coalescer can cut the
 * block from (fits) is the census's window (the run from its start to the
 * block that brought all three): if a key of it is hot, the
 * keys get their second chance (as the clock's hand gives them); if all
 * are cold, they are evicted by address, as the coalescer's search does.
 * The next search starts at the window.  1: such a window.  0: none, and
 * no run of that size holds anything but free and retired blocks whose
 * only hope is a grace period (the caller's wait): no turn of the clock
 * can make room for the write.  -1: cannot tell (the budget ran out, a
 * header that cannot be trusted or a carve at work, a block that a
 * coalescer claimed, a run with keys whose length does not fit the
 * block, free blocks as long as the class side by side that
 * the coalescer did not take (also past a retired block, in a run that
 * began there: its search merges them once it gets there), or a run
 * whose removable entries are not keys, which only the clock
 * removes): the caller keeps the clock's own bound.  An answer of 0 is
 * remembered (arena_sig, above).
 *
 * The walk reads headers only, without the coalescer's turn: a walk of a
 * large arena (2.8M headers, 43 ms) holding it would make the writers
 * that need a coalescer wait for it, and give up after their 20 ms.  A
 * coalescer re-cuts only windows of free blocks, which it claims first
 * (a claimed or OUT block stops the walk: -1), and a writer that sees it
 * at work waits for it (room.c) and asks again once the lists changed.
 * The window's keys are touched under the turn (skipped when another
 * coalescer holds it: the next round asks again).
 */
int tc__room_census(tc_cache *c, struct tc_rslot *s, uint32_t cls, uint64_t budget)
{
	uint64_t need = tc__class_size(cls) / TC_BLOCK_UNIT;
	int64_t now = tc__now_ms(), until = INT64_MAX;
	uint64_t sig = arena_sig(c);
	if (memo_holds(c, cls, sig, now))
		return 0;
	uint64_t end = carved_end(c), run_word = tc__run_word(c), reads = 0;
	struct crun r = { 0 };
	int rc = 0;
	for (uint64_t u = 0; u < end && rc <= 0; budget--, reads++) {
		uint32_t st;
		uint64_t n = budget ? block_units(c, u, end, &st) : 0;
		if (!n || !ends_on_a_block(c, u, n, end) || st == TC_BLK_CLAIMED || st == TC_BLK_OUT) {
			rc = -1;
			break;
		}
		struct tc_entry *e = unit_block(c, u);
		bool key = st == TC_BLK_LIVE && tc__ld(&e->kind) == TC_KIND_KEY;
		bool other = st == TC_BLK_LIVE && !key && removable(e, now, run_word);
		u += n;
		if (st == TC_BLK_LIVE && !key && !other) {
			int64_t exp = tc__ld(&e->expires_ms);
			if (exp != 0 && exp < until)
				until = exp; /* removable from then on */
			r.units = 0;
			continue;
		}
		if (!r.units)
			r = (struct crun){ .start = u - n };
		r.units += n;
		r.key |= key;
		r.other |= other;
		r.busy |= st != TC_BLK_FREE;
		r.free_units = st == TC_BLK_FREE ? r.free_units + n : 0;
		if (r.units < need)
			continue;
		/* A window of keys only when the coalescer could cut the
		 * block from it (fits: a key 1 to 3 units too large is no
		 * room, and the next block may still make the run fit).
		 * Free blocks that alone are as long as the class, wherever
		 * the run began (past a retired block too): the coalescer's
		 * search takes them as they are, once it gets there. */
		if (r.key && fits(r.units, need))
			rc = 1;
		else if (r.key || r.other || !r.busy || r.free_units >= need)
			rc = -1; /* go on: a window of keys further on is better */
	}
	tc__add(&census_reads, reads);
	/* A window that a slot names may hold a block still being built: its
	 * builder sets the bit, which a second chance would clear. */
	uint64_t me;
	if (rc > 0 && !named_by_a_slot(c, r.start, r.units) && (me = turn_take(c, s)) != 0) {
		if (!second_chance(c, r.start, r.units))
			evict_window(c, s, r.start, r.units);
		tc__st(&c->h->df_hand, r.start);
		turn_drop(c, me);
	}
	if (rc == 0)
		memo_store(c, cls, sig, until);
	return rc;
}

struct tc_entry *tc__coalesce(tc_cache *c, struct tc_rslot *s, uint32_t cls)
{
	struct tc_hdr *h = c->h;
	uint64_t need = tc__class_size(cls) / TC_BLOCK_UNIT;
	uint64_t fb = tc__free_bytes(c);
	bool lru = c->evict->evict_block != NULL; /* windows of cold keys may be evicted */
	if (!lru && fb < need * TC_BLOCK_UNIT)
		return NULL;
	/* The last full search found nothing and the free bytes did not change
	 * since: skip, but search again now and then (frees and allocations of
	 * equal sizes rearrange the arena without changing the sum). */
	if (!lru && fb == tc__ld(&h->df_nofit) && (tc__add_ret(&h->df_skips, 1) & 63) != 0)
		return NULL;
	uint64_t me = turn_take(c, s);
	if (!me)
		return NULL;
	TC_CRASH_POINT(coalesce_leased);
	uint64_t start, units;
	bool all_free;
	int found = find_window(c, need, lru, &start, &units, &all_free);
	if (found > 0 && named_by_a_slot(c, start, units)) {
		tc__st(&h->df_hand, start + units < carved_end(c) ? start + units : 0);
		found = -1;
	}
	if (found <= 0 || !all_free) {
		if (found == 0)
			tc__st(&h->df_nofit, fb);
		else if (found > 0)
			evict_window(c, s, start, units);
		turn_drop(c, me);
		return NULL;
	}
	tc__st(&h->df_start, start);
	tc__st(&h->df_units, units);
	tc__st(&h->df_cls, cls);
	tc__st(&h->df_pending, 0);
	tc__st(&h->df_held, 0);
	tc__mb();
	set_phase(c, TC_DF_CLAIM);
	uint64_t classes[1] = { 0 };
	bool claimed = claim(c, start, units, classes);
	if (claimed)
		HOOK(TC_DF_HOOK_CLAIMED);
	TC_CRASH_POINT(coalesce_claimed);
	if (!claimed || !drain(c, start, units, classes)) {
		unclaim(c, start, units);
		tc__st(&h->df_pending, 0);
		set_phase(c, TC_DF_IDLE);
		/* The next search starts past this window (a block freed by a
		 * writer killed before its push would fail it every time). */
		tc__st(&h->df_hand, start + units < carved_end(c) ? start + units : 0);
		turn_drop(c, me);
		return NULL;
	}
	TC_CRASH_POINT(coalesce_drained);
	push_held(c);
	/* Every block of the window is OUT: ours alone. */
	tc__mb();
	set_phase(c, TC_DF_REWRITE);
	rewrite(c, start, units, cls);
	tc__mb();
	set_phase(c, TC_DF_PUSH);
	push_cut(c, start, units, cls, true);
	/* The first block is the caller's allocation (named in-flight first,
	 * so a kill from here on is the allocator's ordinary window). */
	struct tc_entry *e = unit_block(c, start);
	tc__st(&s->inflight, tc__ref_of(c, e));
	tc__add(&h->cls[cls].used, 1);
	tc__st(&e->builder, (uint16_t)(s - c->slots + 1));
	tc__st(&e->state, TC_BLK_LIVE);
	HOOK(TC_DF_HOOK_LIVE);
	TC_CRASH_POINT(coalesce_live);
	tc__mb();
	set_phase(c, TC_DF_IDLE);
	tc__st(&h->df_hand, start + units < carved_end(c) ? start + units : 0);
	tc__st(&h->df_nofit, 0);
	tc__add(&h->df_merges, 1);
	turn_drop(c, me);
	return e;
}
