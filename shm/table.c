/* SPDX-License-Identifier: MIT */
/*
 * table.c - the lock-free index and the data-path operations.
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
#include "internal.h"

#include <fnmatch.h>
#include <sched.h>
#include <stdlib.h>
/* XXH3 inlined from Debian's libxxhash-dev header: no call on the hot path. */
#define XXH_INLINE_ALL
#include <xxhash.h>

#define RETRY 1            /* internal: start the operation again */
#define EVICT_SCAN_MAX 1024 /* buckets per eviction or run sweep from make_room */
#define MAX_ATTEMPTS 10000 /* bounds retry loops against a scribbled segment */

/* A validated snapshot of an entry's header. */
struct view {
	struct tc_entry *e;
	const uint8_t *val;
	uint64_t version;
	int64_t expires;
	uint32_t vlen, type, cls;
};

uint64_t tc__hash(tc_cache *c, const void *key, size_t klen, uint32_t kind)
{
	return XXH3_64bits_withSeed(key, klen, c->seed + kind * 0x9E3779B97F4A7C15ull);
}

/*
 * Validate the entry named by slot word W and, when it is the entry of
 * (hash, key, kind), fill V and return 1.  0: another key.  TC_ECORRUPT: the
 * block is out of bounds or its header is impossible.
 */
static int match(tc_cache *c, uint64_t w, uint64_t hash, const void *key, size_t klen,
		 uint32_t kind, struct view *v)
{
	struct tc_entry *e = tc__block(c, TC_SW_REF(w));
	if (TC_UNLIKELY(!e))
		return TC_ECORRUPT;
	if (tc__ld(&e->hash) != hash)
		return 0;
	uint32_t ek = tc__ld(&e->klen), cls = tc__ld(&e->cls), vlen = tc__ld(&e->vlen);
	if (ek != klen || tc__ld(&e->kind) != kind)
		return 0;
	uint64_t off = (TC_SW_REF(w) - 1) * TC_BLOCK_UNIT;
	if (TC_UNLIKELY(cls >= TC_CLASSES_USED || vlen > TC_VALUE_MAX ||
			off + tc__class_size(cls) > c->arena_bytes ||
			tc__entry_bytes(klen, vlen) > tc__class_size(cls)))
		return TC_ECORRUPT;
	if (memcmp(tc__ekey(e), key, klen) != 0)
		return 0;
	v->e = e;
	v->val = tc__eval(e, (uint32_t)klen);
	v->vlen = vlen;
	v->cls = cls;
	v->type = tc__ld(&e->type);
	v->version = tc__ld(&e->version);
	v->expires = tc__ld(&e->expires_ms);
	return 1;
}

static inline uint64_t maxdisp(tc_cache *c, uint64_t home)
{
	uint64_t md = tc__ld(&c->index[home].meta) & 0xffffffffu;
	return md > c->bmask ? c->bmask : md;
}

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
	if ((kind != TC_KIND_KEY && kind != TC_KIND_DTO && kind != TC_KIND_LOAD &&
	     kind != TC_KIND_RATE) ||
	    klen == 0 || klen > TC_KEY_MAX || vlen > TC_VALUE_MAX || cls >= TC_CLASSES_USED ||
	    off + tc__class_size(cls) > c->arena_bytes ||
	    tc__entry_bytes(klen, vlen) > tc__class_size(cls))
		return TC_ECORRUPT;
	if (st != TC_BLK_LIVE && st != TC_BLK_RETIRED)
		return TC_ECORRUPT;
	v->e = e;
	v->hash = hash;
	v->klen = klen;
	v->vlen = vlen;
	v->kind = kind;
	v->cls = cls;
	return 1;
}

/* Find the published slot of (hash, key, kind).  0 found, -ENOENT, TC_ECORRUPT. */
static int lookup(tc_cache *c, uint64_t hash, const void *key, size_t klen, uint32_t kind,
		  uint64_t **slotp, uint64_t *wp, struct view *v)
{
	uint64_t home = hash & c->bmask, tag = TC_TAG_OF(hash);
	uint64_t md = maxdisp(c, home);
	int bad = 0;
	for (uint64_t d = 0; d <= md; d++) {
		struct tc_bucket *b = &c->index[(home + d) & c->bmask];
		for (int i = 0; i < TC_BUCKET_SLOTS; i++) {
			uint64_t w = tc__ld(&b->w[i]);
			if (TC_SW_STATE(w) != TC_SW_FINAL || TC_SW_TAG(w) != tag)
				continue;
			int m = match(c, w, hash, key, klen, kind, v);
			if (m == 1) {
				*slotp = &b->w[i];
				*wp = w;
				return 0;
			}
			if (m < 0)
				bad = m;
		}
	}
	return bad ? bad : -ENOENT;
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

static inline bool expired(int64_t expires, int64_t now)
{
	return expires != 0 && expires <= now;
}

/* ---- reads ------------------------------------------------------------- */

static inline void fill_meta(tc_meta *m, const struct view *v)
{
	if (m) {
		m->len = v->vlen;
		m->type = v->type;
		m->version = v->version;
		m->expires_ms = v->expires;
	}
}

/*
 * The work of a read after its copy, when the handle has any (one test of
 * c->rslow on the hot path covers both): under LRU set the reference bit
 * (only when clear: no shared write on a hit of a hot key; QUIET reads set
 * none), and with checksums verify VAL, the value as returned.
 */
static __attribute__((noinline)) int read_checked(tc_cache *c, uint64_t hash, size_t klen,
						   const struct view *v, const void *val,
						   bool quiet)
{
	int rc = tc__csum_check(c, v->e, hash, klen, v->cls, v->version, v->expires, v->vlen,
				v->type, val);
	if (rc == 0 && !quiet && (c->rslow & TC_RS_LRU) && !tc__ld(&v->e->refbit))
		tc__st(&v->e->refbit, 1);
	return rc;
}

static inline int after_read(tc_cache *c, uint64_t hash, size_t klen, const struct view *v,
			     const void *val, bool quiet)
{
	if (c->rslow == TC_RS_LRU) {
		if (!quiet && !tc__ld(&v->e->refbit))
			tc__st(&v->e->refbit, 1);
		return 0;
	}
	return read_checked(c, hash, klen, v, val, quiet);
}

/* Sampled latency: one call in 64 per slot is timed. */
static inline uint64_t sample_start(struct tc_rslot *s)
{
	return (tc__ld(&s->ctr[TC_C_OPS]) & 63) == 0 ? tc__mono_ns() : 0;
}

static inline void sample_end(tc_cache *c, struct tc_rslot *s, uint64_t t0)
{
	if (TC_LIKELY(t0 == 0))
		return;
	uint64_t dt = tc__mono_ns() - t0;
	tc__count(s, TC_C_LAT_SAMPLES);
	tc__count_n(s, TC_C_LAT_SUM, dt);
	if (dt > c->slow_ns)
		tc__count(s, TC_C_SLOW_OPS);
}

/* A call with bad arguments still counts as an error and an operation. */
static int bad_args(tc_cache *c)
{
	struct tc_rslot *s = c ? tc__slot(c) : NULL;
	tc__count(s, TC_C_ERRORS);
	tc__count(s, TC_C_OPS);
	return -EINVAL;
}

/* The copy of tc_get, inside a read section.  QUIET (a constant at each
 * call): no reference bit set, and the precise clock. */
static inline __attribute__((always_inline)) int
copy_value(tc_cache *c, uint64_t hash, const void *key, size_t klen,
			     void *buf, size_t cap, tc_meta *meta, bool quiet)
{
	uint64_t *slotp, w;
	struct view v;
	int rc = lookup(c, hash, key, klen, TC_KIND_KEY, &slotp, &w, &v);
	if (rc == 0 && v.expires != 0 &&
	    expired(v.expires, quiet ? tc__now_ms() : tc__now_ms_coarse()))
		rc = -ENOENT;
	if (rc == 0) {
		fill_meta(meta, &v);
		if (v.vlen > cap) {
			rc = -E2BIG;
		} else {
			if (v.vlen)
				memcpy(buf, v.val, v.vlen);
			if (c->rslow)
				rc = after_read(c, hash, klen, &v, buf, quiet);
		}
	}
	return rc;
}

int tc_get(tc_cache *c, const void *key, size_t klen, void *buf, size_t cap, tc_meta *meta)
{
	if (TC_UNLIKELY(!c || !tc__valid_key(key, klen) || (!buf && cap)))
		return bad_args(c);
	uint64_t hash = tc__hash(c, key, klen, TC_KIND_KEY);
	struct tc_rslot *s;
	int rc = tc__enter(c, &s);
	if (TC_UNLIKELY(rc))
		return rc;
	uint64_t t0 = sample_start(s);
	rc = copy_value(c, hash, key, klen, buf, cap, meta, false);
	tc__count(s, rc == 0 || rc == -E2BIG ? TC_C_HITS : rc == -ENOENT ? TC_C_MISSES : TC_C_ERRORS);
	tc__count(s, TC_C_OPS);
	sample_end(c, s, t0);
	tc__exit(c);
	return rc;
}

int tc_peek(tc_cache *c, const void *key, size_t klen, const void **val, tc_meta *meta)
{
	if (TC_UNLIKELY(!c || !val || !tc__valid_key(key, klen))) {
		if (val)
			*val = NULL;
		return bad_args(c);
	}
	*val = NULL;
	struct tc_rslot *s = tc__section_slot(c); /* one lookup for both questions */
	if (!s)
		return -EINVAL;
	uint64_t hash = tc__hash(c, key, klen, TC_KIND_KEY);
	uint64_t *slotp, w;
	struct view v;
	int rc = lookup(c, hash, key, klen, TC_KIND_KEY, &slotp, &w, &v);
	if (rc == 0 && v.expires != 0 && expired(v.expires, tc__now_ms_coarse()))
		rc = -ENOENT;
	if (rc == 0) {
		fill_meta(meta, &v);
		*val = v.val;
		if (c->rslow && (rc = after_read(c, hash, klen, &v, v.val, false)) != 0)
			*val = NULL; /* a value that fails its checksum is not handed out */
	}
	tc__count(s, rc == 0 ? TC_C_HITS : rc == -ENOENT ? TC_C_MISSES : TC_C_ERRORS);
	tc__count(s, TC_C_OPS);
	return rc;
}

bool tc_exists(tc_cache *c, const void *key, size_t klen)
{
	if (!c || !tc__valid_key(key, klen))
		return false;
	tc_meta m;
	int rc = tc_get(c, key, klen, NULL, 0, &m);
	return rc == 0 || rc == -E2BIG;
}

/*
 * tc_get for maintenance (snapshots): the same copy of one version, but no
 * reference bit set and nothing counted, so a snapshot neither makes every
 * key look hot to the eviction clock nor inflates the hit rate.
 */
int tc__get_quiet(tc_cache *c, const void *key, size_t klen, void *buf, size_t cap,
		  tc_meta *meta)
{
	uint64_t hash = tc__hash(c, key, klen, TC_KIND_KEY);
	struct tc_rslot *s;
	int rc = tc__enter(c, &s);
	if (rc)
		return rc;
	rc = copy_value(c, hash, key, klen, buf, cap, meta, true);
	tc__exit(c);
	return rc;
}

/* ---- writes ------------------------------------------------------------- */

static uint64_t next_version(tc_cache *c, uint64_t hash, uint64_t floor)
{
	uint64_t *p = &c->h->ver[(hash >> 32) % TC_VER_SHARDS].v;
	for (;;) {
		uint64_t cur = tc__ld(p);
		uint64_t nv = (cur > floor ? cur : floor) + 1;
		if (tc__cas(p, cur, nv) == cur)
			return nv;
	}
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
 */
static int insert_new(tc_cache *c, uint64_t hash, const void *key, size_t klen,
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
		tc__st(&e->version, next_version(c, hash, 0));
		if (c->csum) /* over the version just taken; nobody reads a claim */
			tc__csum_seal(c, e, klen);
	}
	TC_CRASH_POINT(insert_rescanned);
	if (tc__cas(mine, tent, fin) == tent)
		return 0;
	return RETRY;
}

/* Remove the published slot word W at SLOTP: 0, or -EAGAIN if it changed. */
int tc__remove_slot(tc_cache *c, struct tc_rslot *s, uint64_t *slotp, uint64_t w, int ctr)
{
	struct tc_entry *e = tc__block(c, TC_SW_REF(w));
	if (e && s)
		tc__note_unlink(s, TC_SW_REF(w), e);
	if (tc__cas(slotp, w, 0) != w) {
		if (s)
			tc__st(&s->ret_ref, 0);
		return -EAGAIN;
	}
	TC_CRASH_POINT(remove_unlinked);
	tc__add(&c->h->live, (uint64_t)-1);
	TC_CRASH_POINT(remove_counted);
	if (e)
		tc__retire(c, s, e);
	if (s)
		tc__st(&s->ret_ref, 0);
	if (ctr >= 0)
		tc__count(s, ctr);
	return 0;
}

/* Was the in-flight block E of a dead writer published?  Aborts its TENT. */
bool tc__inflight_published(tc_cache *c, struct tc_entry *e)
{
	uint64_t ref = tc__ref_of(c, e);
	uint64_t hash = tc__ld(&e->hash);
	uint64_t home = hash & c->bmask, tag = TC_TAG_OF(hash);
	uint64_t md = maxdisp(c, home);
	for (uint64_t d = 0; d <= md; d++) {
		struct tc_bucket *b = &c->index[(home + d) & c->bmask];
		for (int i = 0; i < TC_BUCKET_SLOTS; i++) {
			uint64_t w = tc__ld(&b->w[i]);
			if (TC_SW_REF(w) != ref || TC_SW_TAG(w) != tag)
				continue;
			if (TC_SW_STATE(w) == TC_SW_FINAL)
				return true;
			tc__cas(&b->w[i], w, 0);
		}
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
	uint64_t ref = tc__ref_of(c, e);
	uint64_t hash = tc__ld(&e->hash);
	uint64_t home = hash & c->bmask, tag = TC_TAG_OF(hash);
	uint64_t md = maxdisp(c, home);
	int rc = -ENOENT;
	for (uint64_t d = 0; d <= md && rc; d++) {
		struct tc_bucket *b = &c->index[(home + d) & c->bmask];
		for (int i = 0; i < TC_BUCKET_SLOTS; i++) {
			uint64_t w = tc__ld(&b->w[i]);
			if (TC_SW_REF(w) != ref || TC_SW_TAG(w) != tag || TC_SW_STATE(w) != TC_SW_FINAL)
				continue;
			if (tc__ld(&e->kind) == TC_KIND_KEY &&
			    tc__remove_slot(c, s, &b->w[i], w, TC_C_EVICTIONS) == 0)
				rc = 0;
			break;
		}
	}
	tc__exit(c);
	return rc;
}

/* Give back a block that was never visible to anyone. */
static void drop_private(tc_cache *c, struct tc_rslot *s, struct tc_entry *e)
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
static bool make_room(tc_cache *c, struct tc_rslot *s, uint32_t cls, bool need_slot, int round,
		      uint64_t *t0)
{
	uint64_t freed = 0;
	if (round == 0)
		*t0 = tc__mono_ns();
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
	int ev = tc__evict(c, s, cls, need_slot);
	/* LRU, and no cold entry of the wanted class: memory must come from
	 * other classes.  Coalesce (which evicts a window of cold keys by
	 * address, or re-cuts a free one) and hand its block to the lists:
	 * the caller's next attempt pops it. */
	if (ev == 0 && !need_slot && cls < TC_CLASSES_USED && c->eviction == TC_EVICT_LRU) {
		struct tc_entry *e = tc__coalesce(c, s, cls);
		if (e) {
			drop_private(c, s, e); /* freed, then unnamed: no gap */
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
	 * need up to two revolutions of the clock before one comes free. */
	if (c->eviction == TC_EVICT_LRU &&
	    (uint64_t)round < 2 * (c->nbuckets / EVICT_SCAN_MAX + 1) + 3)
		return true;
	/* Worth waiting for: retired memory, or a coalescer holding free
	 * blocks off their lists for a moment (coalesce.c). */
	if (((tc__ld(&c->h->retire_head) & 0xffffffffu) == 0 && !tc__coalescing(c)) ||
	    tc__in_section(c) || tc__mono_ns() - *t0 > ROOM_WAIT_NS)
		return false;
	struct timespec ts = { 0, (long)(round < 10 ? 20000L << (round - 3) : 1000000L) };
	if (ts.tv_nsec > 1000000L)
		ts.tv_nsec = 1000000L;
	nanosleep(&ts, NULL);
	return true;
}

/* Reclaim early, from a writer that has retired RECLAIM_BATCH bytes (or
 * 1/16 of a small arena) since its last reclaim, so that allocation rarely
 * has to wait and no single write walks a long chain: the walk is what a
 * write's worst case pays for. */
#define RECLAIM_BATCH (1024 * 1024ull)
#define RECLAIM_STEP 4 /* blocks of the pending chain freed per write */
static void maybe_reclaim(tc_cache *c, struct tc_rslot *s)
{
	if (tc__in_section(c))
		return;
	if (tc__ld(&s->reclaim)) {
		tc__reclaim_step(c, s, RECLAIM_STEP);
		return;
	}
	uint64_t batch = c->arena_bytes / 16 < RECLAIM_BATCH ? c->arena_bytes / 16 : RECLAIM_BATCH;
	if (tc__ld(&s->since) > batch)
		tc__reclaim_budget(c, s, NULL, RECLAIM_STEP);
}

static inline void le64_put(uint8_t *p, int64_t v)
{
	uint64_t u = (uint64_t)v;
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(u >> (8 * i));
}

static inline int64_t le64_get(const uint8_t *p)
{
	uint64_t u = 0;
	for (int i = 0; i < 8; i++)
		u |= (uint64_t)p[i] << (8 * i);
	return (int64_t)u;
}

/*
 * Evict ahead (TC_EVICT_LRU): once the arena is carved out and class CLS's
 * free list is short of two reclaim batches, each write of that class
 * evicts two entries of it, a bucket or two of the clock at a time.  Their
 * blocks come back with the next batched grace period, so allocation keeps
 * finding free blocks and a write almost never has to make room itself
 * (which costs a membarrier, an interrupt on every CPU running a reader).
 */
static int evict_n(tc_cache *c, struct tc_rslot *s, uint32_t want, bool need_slot, int goal,
		   uint64_t limit);

static void evict_ahead(tc_cache *c, struct tc_rslot *s, uint32_t cls)
{
	if (c->eviction != TC_EVICT_LRU || cls >= TC_CLASSES_USED || tc__in_section(c))
		return;
	uint64_t size = tc__class_size(cls);
	uint64_t bump = tc__ld(&c->h->bump);
	if (bump <= c->arena_units && c->arena_units - bump >= 64 * (size / TC_BLOCK_UNIT))
		return; /* still carving */
	uint64_t batch = c->arena_bytes / 16 < RECLAIM_BATCH ? c->arena_bytes / 16 : RECLAIM_BATCH;
	if (tc__ld(&c->h->cls[cls].nfree) >= 2 * batch / size + 16)
		return;
	evict_n(c, s, cls, false, 2, 4);
}

int tc__write(tc_cache *c, uint32_t kind, const void *key, size_t klen, const void *val,
	      size_t vlen, uint32_t type, uint64_t ttl_ms, int op, uint64_t expect,
	      int64_t delta, int64_t *out, uint32_t aux)
{
	if (!c || !tc__valid_key(key, klen) || (!val && vlen) ||
	    (kind == TC_KIND_KEY && ttl_ms != TC_TTL_DEFAULT && ttl_ms > TC_TTL_MAX))
		return bad_args(c);
	if (vlen > TC_VALUE_MAX) {
		bad_args(c);
		return -EMSGSIZE;
	}
	uint64_t hash = tc__hash(c, key, klen, kind), tag = TC_TAG_OF(hash);
	/* For tc_incr this applies only when the counter is created. */
	int64_t new_exp = tc__expiry(c, key, klen, ttl_ms);
	int room_rounds = 0, rc = 0;
	uint64_t room_t0 = 0;
	struct tc_rslot *s = NULL;
	uint8_t ctrbuf[8];
	int64_t incr_val = 0;

	for (int attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
		rc = tc__enter(c, &s);
		if (rc)
			return rc;
		uint64_t t0 = sample_start(s);
		uint64_t *slotp = NULL, w = 0;
		struct view old;
		int lr = lookup(c, hash, key, klen, kind, &slotp, &w, &old);
		if (lr < 0 && lr != -ENOENT) {
			rc = lr;
			goto out_exit;
		}
		/* The clock is read only when there is an expiry to judge. */
		bool found = lr == 0,
		     live = found && !(old.expires && expired(old.expires, tc__now_ms()));
		const void *src = val;
		size_t nlen = vlen;
		uint32_t ntype = type;
		int64_t exp = new_exp;
		switch (op) {
		case TC_OP_ADD:
			if (live) {
				rc = -EEXIST;
				goto out_exit;
			}
			break;
		case TC_OP_CAS:
			if (!live) {
				rc = -ENOENT;
				goto out_exit;
			}
			if (old.version != expect) {
				rc = TC_ECONFLICT;
				goto out_exit;
			}
			break;
		case TC_OP_EXPIRE:
			if (!live) {
				rc = -ENOENT;
				goto out_exit;
			}
			src = old.val;
			nlen = old.vlen;
			ntype = old.type;
			break;
		case TC_OP_INCR: {
			int64_t n = delta;
			if (live) {
				if (old.type != TC_TYPE_COUNTER || old.vlen != 8) {
					rc = TC_ETYPE;
					goto out_exit;
				}
				/* One copy of the counter, checked, then used. */
				uint8_t cur[8];
				memcpy(cur, old.val, 8);
				if (c->csum && (rc = tc__csum_check(c, old.e, hash, klen, old.cls,
								   old.version, old.expires, 8,
								   old.type, cur)) != 0)
					goto out_exit;
				n = (int64_t)((uint64_t)le64_get(cur) + (uint64_t)delta);
				exp = old.expires;
			}
			le64_put(ctrbuf, n);
			src = ctrbuf;
			nlen = 8;
			ntype = TC_TYPE_COUNTER;
			incr_val = n;
			break;
		}
		default:
			break;
		}
		uint64_t need = tc__entry_need(c, klen, nlen);
		int arc;
		struct tc_entry *e = tc__alloc(c, s, need, &arc);
		if (!e) {
			rc = arc;
			if (arc != -ENOSPC)
				goto out_exit;
			tc__exit(c);
			if (!make_room(c, s, tc__class_of(need), false, room_rounds++, &room_t0))
				goto out_count;
			continue;
		}
		e->hash = hash;
		e->refbit = 1; /* new data counts as used: one clock pass before eviction */
		e->expires_ms = exp;
		e->vlen = (uint32_t)nlen;
		e->type = ntype;
		e->klen = (uint16_t)klen;
		e->kind = (uint8_t)kind;
		e->aux = aux;
		memcpy((uint8_t *)e + TC_ENTRY_HDR, key, klen);
		if (nlen)
			memcpy((uint8_t *)tc__eval(e, (uint32_t)klen), src, nlen);
		/* tc_expire carries the old value over: it is checked as copied
		 * (into our private block), so damage is never sealed anew. */
		if (c->csum && op == TC_OP_EXPIRE &&
		    (rc = tc__csum_check(c, old.e, hash, klen, old.cls, old.version, old.expires,
					 old.vlen, old.type, tc__eval(e, (uint32_t)klen))) != 0) {
			drop_private(c, s, e);
			goto out_exit;
		}
		TC_CRASH_POINT(write_built);
		uint64_t ref = tc__ref_of(c, e);
		if (found) {
			e->version = next_version(c, hash, old.version);
			if (c->csum)
				tc__csum_seal(c, e, klen);
			/* The CAS is a full barrier: the entry's bytes are visible
			 * before the slot names it. */
			tc__note_unlink(s, TC_SW_REF(w), old.e);
			TC_CRASH_POINT(update_noted);
			if (tc__cas(slotp, w, TC_SW_FINAL | tag << 48 | ref) != w) {
				tc__st(&s->ret_ref, 0);
				drop_private(c, s, e);
				tc__exit(c);
				continue;
			}
			TC_CRASH_POINT(update_swapped);
			tc__st(&s->inflight, 0);
			TC_CRASH_POINT(update_unlinked);
			tc__retire(c, s, old.e);
			TC_CRASH_POINT(update_retired);
			tc__st(&s->ret_ref, 0);
			if (!live)
				tc__count(s, TC_C_EXPIRATIONS);
			rc = 0;
			goto out_done;
		}
		/* Absent: insert if the segment holds fewer than max_entries keys.
		 * The count is raised after the insert is final (a writer killed in
		 * between cannot leave it high); concurrent inserters may overshoot
		 * max_entries by their number, which the index's 30 % headroom
		 * absorbs, so max_entries keys always fit. */
		if ((int64_t)tc__ld(&c->h->live) >= (int64_t)c->max_entries) {
			drop_private(c, s, e);
			rc = -ENOSPC;
			tc__exit(c);
			if (!make_room(c, s, UINT32_MAX, true, room_rounds++, &room_t0))
				goto out_count;
			continue;
		}
		bool seen;
		int ir = insert_new(c, hash, key, klen, kind, e, ref, true, &seen);
		if (ir == 0) {
			TC_CRASH_POINT(insert_published);
			tc__add(&c->h->live, 1);
			tc__st(&s->inflight, 0);
			rc = 0;
			goto out_done;
		}
		if (seen) {
			tc__retire(c, s, e);
			tc__st(&s->inflight, 0); /* after, as in drop_private() */
		} else {
			drop_private(c, s, e);
		}
		if (ir == -ENOSPC) {
			rc = -ENOSPC;
			tc__exit(c);
			if (!make_room(c, s, UINT32_MAX, true, room_rounds++, &room_t0))
				goto out_count;
			continue;
		}
		tc__exit(c);
		if (attempt > 8)
			sched_yield();
		continue;
out_done:
		if (op == TC_OP_INCR && out)
			*out = incr_val; /* only on success */
		tc__count(s, op == TC_OP_ADD ? TC_C_ADDS : TC_C_SETS);
		tc__count(s, TC_C_OPS);
		sample_end(c, s, t0);
		tc__exit(c);
		evict_ahead(c, s, tc__class_of(need));
		maybe_reclaim(c, s);
		return rc;
out_exit:
		tc__exit(c);
		goto out_count;
	}
	if (rc == 0)
		rc = -EAGAIN;
out_count:
	if (s) {
		if (rc != -EEXIST && rc != -ENOENT && rc != TC_ECONFLICT)
			tc__count(s, TC_C_ERRORS);
		tc__count(s, TC_C_OPS);
	}
	return rc;
}

int tc_set(tc_cache *c, const void *key, size_t klen, const void *val, size_t vlen,
	   uint32_t type, uint64_t ttl_ms)
{
	return tc__write(c, TC_KIND_KEY, key, klen, val, vlen, type, ttl_ms, TC_OP_SET, 0, 0,
			 NULL, 0);
}

int tc_add(tc_cache *c, const void *key, size_t klen, const void *val, size_t vlen,
	   uint32_t type, uint64_t ttl_ms)
{
	return tc__write(c, TC_KIND_KEY, key, klen, val, vlen, type, ttl_ms, TC_OP_ADD, 0, 0,
			 NULL, 0);
}

int tc_cas(tc_cache *c, const void *key, size_t klen, uint64_t expect_version,
	   const void *val, size_t vlen, uint32_t type, uint64_t ttl_ms)
{
	return tc__write(c, TC_KIND_KEY, key, klen, val, vlen, type, ttl_ms, TC_OP_CAS,
			 expect_version, 0, NULL, 0);
}

int tc_expire(tc_cache *c, const void *key, size_t klen, uint64_t ttl_ms)
{
	return tc__write(c, TC_KIND_KEY, key, klen, NULL, 0, 0, ttl_ms, TC_OP_EXPIRE, 0, 0,
			 NULL, 0);
}

int tc_incr(tc_cache *c, const void *key, size_t klen, int64_t delta, uint64_t ttl_ms,
	    int64_t *out)
{
	return tc__write(c, TC_KIND_KEY, key, klen, NULL, 0, 0, ttl_ms, TC_OP_INCR, 0, delta,
			 out, 0);
}

/*
 * Remove the published entry of (key, kind): one CAS on its slot word,
 * retried when the word changed under us.  With VERSION, only that version
 * is removed (TC_ECONFLICT otherwise) and expiry is not judged; without, an
 * expired entry is removed as an expiration and reported -ENOENT.
 */
static int remove_key(tc_cache *c, struct tc_rslot *s, uint32_t kind, const void *key,
		      size_t klen, const uint64_t *version)
{
	uint64_t hash = tc__hash(c, key, klen, kind);
	int rc = -EAGAIN;
	for (int attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
		uint64_t *slotp, w;
		struct view v;
		rc = lookup(c, hash, key, klen, kind, &slotp, &w, &v);
		if (rc)
			return rc;
		if (version && v.version != *version)
			return TC_ECONFLICT;
		bool exp = !version && expired(v.expires, tc__now_ms());
		int ctr = version ? -1 : exp ? TC_C_EXPIRATIONS : TC_C_DELETES;
		if (tc__remove_slot(c, s, slotp, w, ctr) == 0)
			return exp ? -ENOENT : 0;
		rc = -EAGAIN;
	}
	return rc;
}

int tc_del(tc_cache *c, const void *key, size_t klen)
{
	if (!c || !tc__valid_key(key, klen))
		return bad_args(c);
	struct tc_rslot *s;
	int rc = tc__enter(c, &s);
	if (rc)
		return rc;
	rc = remove_key(c, s, TC_KIND_KEY, key, klen, NULL);
	if (rc && rc != -ENOENT)
		tc__count(s, TC_C_ERRORS);
	tc__count(s, TC_C_OPS);
	tc__exit(c);
	return rc;
}

/* ---- eviction and expiry passes ---------------------------------------- */

/*
 * CLOCK over the index: expired entries go first; a set reference bit is
 * cleared; an entry with a clear bit is evicted when it frees what is
 * wanted (a block of class WANT, any entry when NEED_SLOT).  Under
 * TC_EVICT_NONE only expired entries are removed.  Returns entries removed.
 */
int tc__evict(tc_cache *c, struct tc_rslot *s, uint32_t want, bool need_slot)
{
	bool lru = c->eviction == TC_EVICT_LRU;
	/* Bounded per call so that no write pays for a whole-index scan: the
	 * caller retries, and the hand moves on. */
	uint64_t limit = lru ? 2 * c->nbuckets + 2 : c->nbuckets;
	if (limit > EVICT_SCAN_MAX)
		limit = EVICT_SCAN_MAX;
	return evict_n(c, s, want, need_slot, need_slot ? 1 : 8, limit);
}

static int evict_n(tc_cache *c, struct tc_rslot *s, uint32_t want, bool need_slot, int goal,
		   uint64_t limit)
{
	bool lru = c->eviction == TC_EVICT_LRU;
	int removed = 0;
	int64_t now = tc__now_ms();
	for (uint64_t n = 0; n < limit && removed < goal; n++) {
		uint64_t bi = tc__add_ret(&c->h->clock_hand, 1) & c->bmask;
		struct tc_bucket *b = &c->index[bi];
		struct tc_rslot *rs;
		if (tc__enter(c, &rs))
			return removed;
		for (int i = 0; i < TC_BUCKET_SLOTS; i++) {
			uint64_t w = tc__ld(&b->w[i]);
			if (TC_SW_STATE(w) != TC_SW_FINAL)
				continue;
			/* Nothing is written or removed for a slot that does not
			 * name a genuine entry: a ref into another key's value
			 * would have its bytes zeroed or its block retired. */
			struct tc__sview v;
			if (tc__slot_entry(c, bi, w, &v) != 1)
				continue;
			struct tc_entry *e = v.e;
			if (expired(tc__ld(&e->expires_ms), now)) {
				if (tc__remove_slot(c, s, &b->w[i], w, TC_C_EXPIRATIONS) == 0)
					removed++;
				continue;
			}
			/* A DTO list goes as a whole or not at all (run.c). */
			if (!lru || v.kind == TC_KIND_DTO)
				continue;
			if (tc__ld(&e->refbit)) {
				tc__st(&e->refbit, 0);
				continue;
			}
			if (need_slot || want == UINT32_MAX || v.cls == want) {
				if (tc__remove_slot(c, s, &b->w[i], w, TC_C_EVICTIONS) == 0)
					removed++;
			}
		}
		tc__exit(c);
	}
	return removed;
}

/* Expire up to BUDGET buckets from the sweep cursor (0 = all). */
int tc__expire_pass(tc_cache *c, struct tc_rslot *s, uint64_t budget, tc_sweep_report *rep)
{
	if (budget == 0 || budget > c->nbuckets)
		budget = c->nbuckets;
	int64_t now = tc__now_ms();
	for (uint64_t n = 0; n < budget; n++) {
		uint64_t bi = tc__add_ret(&c->h->sweep_cursor, 1) & c->bmask;
		struct tc_bucket *b = &c->index[bi];
		struct tc_rslot *rs;
		int rc = tc__enter(c, &rs);
		if (rc)
			return rc;
		for (int i = 0; i < TC_BUCKET_SLOTS; i++) {
			uint64_t w = tc__ld(&b->w[i]);
			if (rep)
				rep->scanned++;
			if (TC_SW_STATE(w) != TC_SW_FINAL)
				continue;
			struct tc__sview v;
			if (tc__slot_entry(c, bi, w, &v) == 1 &&
			    expired(tc__ld(&v.e->expires_ms), now) &&
			    tc__remove_slot(c, s, &b->w[i], w, TC_C_EXPIRATIONS) == 0 && rep)
				rep->expired++;
		}
		tc__exit(c);
	}
	return 0;
}

/* ---- scan and purge ------------------------------------------------------ */

struct found {
	uint8_t key[TC_KEY_MAX + 1];
	size_t klen;
	tc_meta meta;
	uint64_t word;
	uint64_t *slotp;
};

/*
 * Copy the live, matching keys of bucket BI out under a read section of
 * one bucket.  Returns how many were copied into F, or the error of
 * entering the section (-EUSERS, -ESTALE, -EBUSY).  An impossible entry is
 * skipped and reported in *BAD.
 */
static int bucket_keys(tc_cache *c, uint64_t bi, const char *glob, int64_t now,
		       struct found *f, int *bad, struct tc_rslot *purger, uint64_t *npurged)
{
	struct tc_bucket *b = &c->index[bi];
	struct tc_rslot *s;
	int n = 0;
	int rc = tc__enter(c, &s);
	if (rc)
		return rc;
	for (int i = 0; i < TC_BUCKET_SLOTS; i++) {
		uint64_t w = tc__ld(&b->w[i]);
		if (TC_SW_STATE(w) != TC_SW_FINAL)
			continue;
		struct tc__sview v;
		if (tc__slot_entry(c, bi, w, &v) != 1) {
			*bad = TC_ECORRUPT;
			continue;
		}
		struct tc_entry *e = v.e;
		int64_t exp = tc__ld(&e->expires_ms);
		if (v.kind != TC_KIND_KEY || expired(exp, now))
			continue;
		memcpy(f[n].key, tc__ekey(e), v.klen);
		f[n].key[v.klen] = '\0';
		if (glob && fnmatch(glob, (const char *)f[n].key, 0) != 0)
			continue;
		f[n].klen = v.klen;
		f[n].meta = (tc_meta){ .len = v.vlen, .type = tc__ld(&e->type),
				       .version = tc__ld(&e->version), .expires_ms = exp };
		f[n].word = w;
		f[n].slotp = &b->w[i];
		/* Purge removes under the same section that matched the key, so
		 * the slot word cannot have been recycled in between. */
		if (purger) {
			if (tc__remove_slot(c, purger, &b->w[i], w, TC_C_KEYS_DELETED) == 0)
				(*npurged)++;
			continue;
		}
		n++;
	}
	tc__exit(c);
	return n;
}

int tc_scan(tc_cache *c, const char *glob, tc_scan_fn fn, void *arg)
{
	if (!c || !fn)
		return -EINVAL;
	if (glob && strcmp(glob, "*") == 0)
		glob = NULL;
	struct found *f = malloc(sizeof(*f) * TC_BUCKET_SLOTS);
	if (!f)
		return -ENOMEM;
	int bad = 0, rc = 0;
	for (uint64_t bi = 0; bi < c->nbuckets && rc == 0; bi++) {
		int n = bucket_keys(c, bi, glob, tc__now_ms(), f, &bad, NULL, NULL);
		if (n < 0)
			rc = n;
		for (int i = 0; i < n && rc == 0; i++)
			rc = fn(f[i].key, f[i].klen, &f[i].meta, arg);
	}
	free(f);
	if (rc)
		return rc;
	return bad;
}

int tc_purge(tc_cache *c, const char *glob, uint64_t *deleted)
{
	if (deleted)
		*deleted = 0;
	if (!c)
		return -EINVAL;
	if (glob && strcmp(glob, "*") == 0)
		glob = NULL;
	struct tc_rslot *s = tc__slot(c);
	if (!s)
		return -EUSERS;
	struct found *f = malloc(sizeof(*f) * TC_BUCKET_SLOTS);
	if (!f)
		return -ENOMEM;
	uint64_t n = 0;
	int bad = 0, rc = 0;
	for (uint64_t bi = 0; bi < c->nbuckets && rc == 0; bi++) {
		int k = bucket_keys(c, bi, glob, tc__now_ms(), f, &bad, s, &n);
		if (k < 0)
			rc = k;
	}
	free(f);
	if (rc == 0)
		tc__count(s, TC_C_CLEARS);
	else
		tc__count(s, TC_C_ERRORS);
	tc__count(s, TC_C_OPS);
	if (deleted)
		*deleted = n;
	return rc;
}

/* ---- generic helpers for run.c, policy.c and features.c ------------------ */

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
	int ir = insert_new(c, hash, key, klen, kind, e, tc__ref_of(c, e), false, seen);
	if (ir == 0) {
		TC_CRASH_POINT(insert_first_published);
		tc__add(&c->h->live, 1);
		return 0;
	}
	return ir == RETRY ? -EAGAIN : ir;
}

/* make_room() for the writers of run.c, policy.c and features.c. */
bool tc__make_room(tc_cache *c, struct tc_rslot *s, uint32_t cls, bool need_slot, int round,
		   uint64_t *t0)
{
	return make_room(c, s, cls, need_slot, round, t0);
}

/*
 * Remove the live entry of (key, kind) only when its version is VERSION.
 * 0, -ENOENT (absent), TC_ECONFLICT (another version).
 */
int tc__del_version(tc_cache *c, uint32_t kind, const void *key, size_t klen,
		    uint64_t version)
{
	if (!c || !tc__valid_key(key, klen))
		return -EINVAL;
	struct tc_rslot *s;
	int rc = tc__enter(c, &s);
	if (rc)
		return rc;
	rc = remove_key(c, s, kind, key, klen, &version);
	tc__exit(c);
	return rc;
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

/* maybe_reclaim() for the writers of run.c and policy.c, after a retire,
 * outside their read section. */
void tc__maybe_reclaim(tc_cache *c, struct tc_rslot *s)
{
	maybe_reclaim(c, s);
}
