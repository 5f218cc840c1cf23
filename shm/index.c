/* SPDX-License-Identifier: MIT */
/*
 * index.c - the lock-free index: probe, match, insert, remove, and the
 * walks that find the word naming a block.  The read half (hash, lookup,
 * match) is static inline in index.h, for the read path of kv.c.
 *
 * The index is an array of buckets, one cache line each: a meta word and
 * seven slot words.  A key's home bucket is hash & mask; it lives in its
 * home bucket or, when that is full, in one of the following buckets
 * (linear probing by bucket).  The home bucket's meta word holds the largest
 * displacement of any key homed there; lookups scan home..home+maxdisp, so a
 * freed slot never cuts a probe chain (freed slots go straight back to 0).
 *
 * A slot word is 0 (free), TENT|tag|ref (claimed by an inserter, invisible
 * to readers) or FINAL|tag|ref (published).  ref names an immutable entry
 * block holding hash, key, value and metadata; tag is 14 bits of the hash.
 *
 * Reads: one bucket line, one entry line (key compared in place, the value
 * follows the key), copy out.  No shared write but the reader's own slot.
 *
 * Writes copy on write: build a new entry, then one CAS on the slot word.
 *  - Update of a published key: CAS FINAL|old -> FINAL|new on its slot.  A
 *    delete is CAS FINAL|old -> 0 on the same word, so a set racing a
 *    delete is ordered by that word: neither is lost.
 *  - Insert of a key not found: claim a free slot with CAS 0 -> TENT, then
 *    re-scan the key's whole chain.  Another FINAL slot of the same key means
 *    we lost: withdraw (TENT -> 0) and retry as an update.  Another TENT slot
 *    of the same key is aborted (CAS it to 0).  Then CAS TENT -> FINAL; if
 *    that fails someone aborted us, and we retry.  Because claim and re-scan
 *    are separated by a full barrier (the CAS), of two inserters of one key
 *    at least one sees the other's claim (store buffering is forbidden), so
 *    two FINAL slots of one key never exist: docs/design.md, "Duplicates and
 *    lost updates", has the case analysis.
 *
 * Versions come from 64 counters in the header picked by the key's hash,
 * raised above the key's current version when needed, so a key's versions
 * grow across delete and re-insert and tc_cas never suffers ABA.
 *
 * Every loop over shared memory is bounded by the geometry copied into the
 * handle at attach; every ref and length is checked before use.
 */
#include "index.h"
#include "futex.h"

#include <sched.h>

/*
 * The entry named by the published slot word W found in bucket BI, for the
 * passes that walk the index rather than look a key up (the eviction clock,
 * expiry, scan and purge, the run sweep, tc_dto_keys).  A lookup proves an
 * entry by comparing its key; a walk has no key, so the entry must prove
 * itself before anyone writes its reference bit, removes its slot or hands
 * its key out: the word's tag is the hash's, the bucket lies within the
 * probe range of the hash's home, the kind is one that lives in the index,
 * key and value fit the size class and the class the arena, and the block
 * is LIVE (or RETIRED: replaced since W was loaded; our read section keeps
 * it from being freed, so every field read here is stable for a genuine
 * entry).  Each field is loaded once, into V.  1, or TC_ECORRUPT: W names
 * something that is not an entry (a scribbled slot, or a ref into another
 * entry's value).  The caller is inside a read section.
 */
int tc__slot_entry(tc_cache *c, uint64_t bi, uint64_t w, struct tc__sview *v)
{
	struct tc_entry *e = tc__block(c, TC_SW_REF(w));
	if (!e)
		return TC_ECORRUPT;
	uint64_t hash = tc__ld(&e->hash), home = hash & c->bmask;
	uint32_t kind = tc__ld(&e->kind), cls = tc__ld(&e->cls), klen = tc__ld(&e->klen);
	uint32_t vlen = tc__ld(&e->vlen), st = tc__ld(&e->state);
	uint64_t off = (TC_SW_REF(w) - 1) * TC_BLOCK_UNIT;
	if (TC_TAG_OF(hash) != TC_SW_TAG(w) || ((bi - home) & c->bmask) > maxdisp(c, home))
		return TC_ECORRUPT;
	if (!tc__index_kind(kind) ||
	    klen == 0 || klen > TC_KEY_MAX || vlen > TC_VALUE_MAX || cls >= TC_CLASSES_USED ||
	    off + tc__class_size(cls) > c->arena_bytes ||
	    tc__entry_bytes(klen, vlen) > tc__class_size(cls))
		return TC_ECORRUPT;
	if (st != TC_BLK_LIVE && st != TC_BLK_RETIRED && st != TC_BLK_MOVING)
		return TC_ECORRUPT;
	v->e = e;
	v->hash = hash;
	v->klen = klen;
	v->vlen = vlen;
	v->kind = kind;
	v->cls = cls;
	return 1;
}

int tc__lookup(tc_cache *c, uint64_t hash, const void *key, size_t klen, uint32_t kind,
	       uint64_t **slotp, uint64_t *word, struct tc_entry **ent)
{
	struct view v;
	int rc = lookup(c, hash, key, klen, kind, slotp, word, &v);
	if (rc == 0 && ent)
		*ent = v.e;
	return rc;
}

static void raise_maxdisp(tc_cache *c, uint64_t home, uint64_t d)
{
	uint64_t *m = &c->index[home].meta;
	for (;;) {
		uint64_t cur = tc__ld(m);
		if ((cur & 0xffffffffu) >= d)
			return;
		if (tc__cas(m, cur, (cur & ~0xffffffffull) | d) == cur)
			return;
	}
}

/*
 * Insert the entry REF of (hash, key, kind), known absent a moment ago.
 * 0: published.  RETRY: lost to another inserter or aborted (the block may
 * have been seen: retire it).  -ENOSPC: no free slot in the whole index.
 * TC_ECORRUPT (STAMP): the key's version counter has nothing above it (seen:
 * retire the block).
 */
int tc__insert_new(tc_cache *c, uint64_t hash, const void *key, size_t klen,
		    uint32_t kind, struct tc_entry *e, uint64_t ref, bool stamp, bool *seen)
{
	uint64_t home = hash & c->bmask, tag = TC_TAG_OF(hash);
	uint64_t tent = TC_SW_TENT | tag << 48 | ref, fin = TC_SW_FINAL | tag << 48 | ref;
	uint64_t *mine = NULL;
	*seen = false;
	for (uint64_t d = 0; d <= c->bmask && !mine; d++) {
		struct tc_bucket *b = &c->index[(home + d) & c->bmask];
		for (int i = 0; i < TC_BUCKET_SLOTS; i++) {
			if (tc__ld(&b->w[i]) != 0)
				continue;
			raise_maxdisp(c, home, d);
			if (tc__cas(&b->w[i], 0, tent) == 0) {
				mine = &b->w[i];
				break;
			}
		}
	}
	if (!mine)
		return -ENOSPC;
	*seen = true;
	TC_CRASH_POINT(insert_claimed);
	/* Re-scan the chain for another slot of the same key. */
	uint64_t md = maxdisp(c, home);
	for (uint64_t d = 0; d <= md; d++) {
		struct tc_bucket *b = &c->index[(home + d) & c->bmask];
		for (int i = 0; i < TC_BUCKET_SLOTS; i++) {
			uint64_t *q = &b->w[i];
			if (q == mine)
				continue;
			uint64_t w = tc__ld(q);
			if (!w || TC_SW_TAG(w) != tag)
				continue;
			struct view v;
			int tries;
			for (tries = 0; tries < 64; tries++) {
				if (!w || TC_SW_TAG(w) != tag ||
				    match(c, w, hash, key, klen, kind, &v) != 1)
					break;
				if (TC_SW_STATE(w) == TC_SW_FINAL) {
					tc__cas(mine, tent, 0);
					return RETRY;
				}
				/* Abort the other half-insert.  If the word changed
				 * (its owner finalized it, say), judge it again. */
				uint64_t was = tc__cas(q, w, 0);
				if (was == w)
					break;
				w = was;
			}
			if (tries == 64) { /* never settled: do not risk a duplicate */
				tc__cas(mine, tent, 0);
				return RETRY;
			}
		}
	}
	/*
	 * The version is taken here, after the re-scan: no other incarnation
	 * of the key can be published between this point and our finalize (it
	 * would have to claim after our re-scan, and its own re-scan would
	 * then abort our claim), so every version the key ever showed was
	 * taken before ours.  Nobody reads the version of a claimed entry.
	 */
	if (stamp) {
		uint64_t v = next_version(c, hash, 0);
		if (TC_UNLIKELY(v == 0)) { /* the counter is at its top: a scribble */
			tc__cas(mine, tent, 0);
			return TC_ECORRUPT;
		}
		tc__st(&e->version, v);
		if (c->csum) /* over the version just taken; nobody reads a claim */
			tc__csum_seal(c, e, klen);
	}
	TC_CRASH_POINT(insert_rescanned);
	if (tc__cas(mine, tent, fin) == tent)
		return 0;
	return RETRY;
}

/*
 * Remove the published slot word W at SLOTP: 0, or -EAGAIN if it changed.
 * The live count is lowered before the CAS and given back when it fails:
 * a remover killed in between leaves it one low, which lets one insert
 * overshoot max_entries (the index's headroom holds it, as it holds
 * concurrent inserters), where lowered after the CAS it was left one high
 * and the segment refused its max_entries-th key until tc_audit.
 */
int tc__remove_slot(tc_cache *c, struct tc_rslot *s, uint64_t *slotp, uint64_t w, int ctr)
{
	struct tc_entry *e = tc__block(c, TC_SW_REF(w));
	if (e && s)
		tc__note_unlink(s, TC_SW_REF(w), e);
	tc__add(&c->h->live, (uint64_t)-1);
	TC_CRASH_POINT(remove_reserved);
	if (tc__cas(slotp, w, 0) != w) {
		tc__add(&c->h->live, 1);
		if (s)
			tc__st(&s->ret_ref, 0);
		return -EAGAIN;
	}
	TC_CRASH_POINT(remove_unlinked);
	tc__notify(c, e ? tc__ld(&e->hash) : 0);
	TC_CRASH_POINT(remove_woken);
	if (e)
		tc__retire(c, s, e);
	if (s)
		tc__st(&s->ret_ref, 0);
	if (ctr >= 0)
		tc__count(s, ctr);
	return 0;
}

/* A walk over the slot words of one probe chain (chain_next), from its
 * home bucket to home + maxdisp. */
struct chain {
	uint64_t home, d, md;
	int i;
};

static struct chain chain_of(tc_cache *c, uint64_t hash)
{
	uint64_t home = hash & c->bmask;
	return (struct chain){ .home = home, .md = maxdisp(c, home) };
}

/* The next slot word of the chain CH, or NULL past its end. */
static uint64_t *chain_next(tc_cache *c, struct chain *ch)
{
	if (ch->i == TC_BUCKET_SLOTS) {
		ch->i = 0;
		ch->d++;
	}
	if (ch->d > ch->md)
		return NULL;
	return &c->index[(ch->home + ch->d) & c->bmask].w[ch->i++];
}

/* The next slot word of the chain CH that names block REF by TAG (in any
 * state), its word in *WP; NULL past the chain's end. */
static uint64_t *chain_next_ref(tc_cache *c, struct chain *ch, uint64_t ref, uint64_t tag,
				uint64_t *wp)
{
	uint64_t *q;
	while ((q = chain_next(c, ch))) {
		*wp = tc__ld(q);
		if (TC_SW_REF(*wp) == ref && TC_SW_TAG(*wp) == tag)
			return q;
	}
	return NULL;
}

/*
 * Was the in-flight block E of a dead writer published?  Aborts its TENT.
 * Published: a FINAL word names it, or, with REACHES (a DTO list element,
 * which no word names once a newer element is its list's head), a FINAL
 * word of its probe chain with its tag names a block that REACHES it.
 */
bool tc__inflight_published(tc_cache *c, struct tc_entry *e, tc__reach_fn reaches)
{
	uint64_t hash = tc__ld(&e->hash), ref = tc__ref_of(c, e), w;
	struct chain ch = chain_of(c, hash);
	uint64_t *q;
	while ((q = chain_next_ref(c, &ch, ref, TC_TAG_OF(hash), &w))) {
		if (TC_SW_STATE(w) == TC_SW_FINAL)
			return true;
		tc__cas(q, w, 0);
	}
	if (!reaches)
		return false;
	ch = chain_of(c, hash);
	while ((q = chain_next(c, &ch))) {
		struct tc_entry *h;
		w = tc__ld(q);
		if (TC_SW_STATE(w) == TC_SW_FINAL && TC_SW_TAG(w) == TC_TAG_OF(hash) &&
		    (h = tc__block(c, TC_SW_REF(w))) != NULL && reaches(c, h, e))
			return true;
	}
	return false;
}

/*
 * Evict the ordinary key whose entry is the block E, found by its address
 * (coalesce.c frees a window of the arena this way).  The index word that
 * names E is removed by CAS, so a block reused meanwhile is never removed
 * for what it used to be.  0, or -ENOENT when no word names E (in flight,
 * or replaced or removed meanwhile).
 */
int tc__evict_block(tc_cache *c, struct tc_rslot *s, struct tc_entry *e)
{
	struct tc_rslot *rs;
	if (tc__enter(c, &rs))
		return -ENOENT;
	uint64_t hash = tc__ld(&e->hash), ref = tc__ref_of(c, e), w;
	struct chain ch = chain_of(c, hash);
	uint64_t *q;
	int rc = -ENOENT;
	while (rc && (q = chain_next_ref(c, &ch, ref, TC_TAG_OF(hash), &w))) {
		if (TC_SW_STATE(w) == TC_SW_FINAL && tc__ld(&e->kind) == TC_KIND_KEY &&
		    tc__remove_slot(c, s, q, w, TC_C_EVICTIONS) == 0)
			rc = 0;
	}
	tc__exit(c);
	return rc;
}

/*
 * Insert block E, fully built, as the first entry of (hash, key, kind):
 * when fewer than max_entries keys are live, the TENT/FINAL protocol of
 * insert_new().  The caller is inside a read section.  0: published.
 * -EAGAIN: another inserter of the key won or aborted us; *seen tells
 * whether E may have been read by another thread (retire it) or not (free
 * it).  -ENOSPC: no entry or no slot left (E never seen).
 */
int tc__insert(tc_cache *c, uint64_t hash, const void *key, size_t klen, uint32_t kind,
	       struct tc_entry *e, bool *seen)
{
	*seen = false;
	if ((int64_t)tc__ld(&c->h->live) >= (int64_t)c->max_entries)
		return -ENOSPC;
	/* The caller's version field is kept (DTO elements pack their count
	 * and predecessor there). */
	int ir = tc__insert_new(c, hash, key, klen, kind, e, tc__ref_of(c, e), false, seen);
	if (ir == 0) {
		TC_CRASH_POINT(insert_first_published);
		tc__notify(c, hash);
		tc__add(&c->h->live, 1);
		return 0;
	}
	return ir == RETRY ? -EAGAIN : ir;
}

/*
 * The block REF checked as a whole: in the arena with its size class,
 * of KIND, its key and value inside the block.  NULL when any check fails.
 * Each length is loaded once: *klen and *vlen receive the checked copies,
 * and the caller uses those, never the block's fields again (a length
 * loaded twice can change between the check and the use).
 */
struct tc_entry *tc__block_kv(tc_cache *c, uint64_t ref, uint32_t kind, uint32_t *klen,
			      uint32_t *vlen, uint32_t *cls_out)
{
	struct tc_entry *e = tc__block(c, ref);
	if (!e || tc__ld(&e->kind) != kind)
		return NULL;
	uint32_t cls = tc__ld(&e->cls), vl = tc__ld(&e->vlen), kl = tc__ld(&e->klen);
	uint64_t off = (ref - 1) * TC_BLOCK_UNIT;
	if (cls >= TC_CLASSES_USED || kl > TC_KEY_MAX || vl > TC_VALUE_MAX ||
	    off + tc__class_size(cls) > c->arena_bytes ||
	    tc__entry_bytes(kl, vl) > tc__class_size(cls))
		return NULL;
	*klen = kl;
	*vlen = vl;
	if (cls_out)
		*cls_out = cls;
	return e;
}

/* tc__block_kv() for blocks whose key length the caller does not use. */
struct tc_entry *tc__block_of(tc_cache *c, uint64_t ref, uint32_t kind, uint32_t *vlen)
{
	uint32_t kl;
	return tc__block_kv(c, ref, kind, &kl, vlen, NULL);
}

/*
 * Give W->fn every published word of bucket BI that names a genuine entry
 * (tc__slot_entry: nothing is written or removed for a word that does not,
 * since a ref into another key's value would have its bytes zeroed or its
 * block retired), inside the caller's read section of slot RS.
 * W->scanned counts the words looked at.  False when a published word
 * named no entry (it was skipped).
 */
bool tc__walk_bucket(tc_cache *c, struct tc__walk *w, uint64_t bi, struct tc_rslot *rs)
{
	struct tc_bucket *b = &c->index[bi];
	bool ok = true;
	for (int i = 0; i < TC_BUCKET_SLOTS; i++) {
		uint64_t word = tc__ld(&b->w[i]);
		struct tc__sview v;
		w->scanned++;
		if (TC_SW_STATE(word) != TC_SW_FINAL)
			continue;
		if (tc__slot_entry(c, bi, word, &v) == 1)
			w->fn(c, w, rs, &b->w[i], word, &v);
		else
			ok = false;
	}
	return ok;
}

/*
 * Walk W->budget buckets from the shared cursor *W->cursor (the eviction
 * clock's hand, the sweeper's cursor, the run sweep's), each inside a read
 * section of its own (tc__walk_bucket).  The walk stops before the next
 * bucket once W->stop is set.  0, or the error of entering a section.
 */
int tc__walk_buckets(tc_cache *c, struct tc__walk *w)
{
	for (uint64_t n = 0; n < w->budget && !w->stop; n++) {
		uint64_t bi = tc__add_ret(w->cursor, 1) & c->bmask;
		struct tc_rslot *rs;
		int rc = tc__enter(c, &rs);
		if (rc)
			return rc;
		tc__walk_bucket(c, w, bi, rs);
		tc__exit(c);
	}
	return 0;
}
