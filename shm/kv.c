/* SPDX-License-Identifier: MIT */
/*
 * kv.c - the get/set family of ordinary keys: tc_get, tc_peek, tc_exists,
 * tc_set, tc_add, tc_cas, tc_expire, tc_incr, tc_del, and tc__write, the
 * write engine that the other kinds (run anchors, rate windows, load
 * claims) use too.
 *
 * Reads: one bucket line, one entry line (key compared in place, the value
 * follows the key), copy out.  No shared write but the reader's own slot.
 * The probe and the match are index.h's, inline.
 *
 * Writes copy on write: build a new entry, then one CAS on the slot word.
 *  - Update of a published key: CAS FINAL|old -> FINAL|new on its slot.  A
 *    delete is CAS FINAL|old -> 0 on the same word, so a set racing a
 *    delete is ordered by that word: neither is lost.
 *  - Insert of a key not found: tc__insert_new (index.c).
 * When allocation fails the writer leaves its read section and makes room
 * (room.c), then tries again.
 */
#include "epoch.h"
#include "index.h"
#include "futex.h"
#include "room.h"

#include <limits.h>
#include <sched.h>
#include <stdlib.h>


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
						   struct view v, const void *val, bool quiet)
{
	/* V by value: its address never escapes the hot path, so the view
	 * stays in registers there. */
	int rc = tc__csum_check(c, v.e, hash, klen, v.cls, v.version, v.expires, v.vlen,
				v.type, 0, val);
	if (rc == 0 && !quiet && (c->rslow & TC_RS_LRU) && !tc__ld(&v.e->refbit))
		tc__st(&v.e->refbit, 1);
	return rc;
}

/*
 * A read that answers without copying the value, with checksums: the entry
 * is verified in place first, so that what the answer rests on (an expiry
 * that says the key is gone, the length and metadata of -E2BIG) is not a
 * scribble.  RC (-ENOENT, -E2BIG), or TC_ECORRUPT.  Out of line: these
 * answers are rare, and a plain handle never comes here.
 */
static __attribute__((noinline, cold)) int
answer_checked(tc_cache *c, uint64_t hash, size_t klen, struct view v, int rc)
{
	if (!(c->rslow & TC_RS_CSUM))
		return rc;
	int bad = tc__csum_check(c, v.e, hash, klen, v.cls, v.version, v.expires, v.vlen,
				 v.type, 0, v.val);
	return bad ? bad : rc;
}

static inline int after_read(tc_cache *c, uint64_t hash, size_t klen, const struct view *v,
			     const void *val, bool quiet)
{
	if (c->rslow == TC_RS_LRU) {
		if (!quiet && !tc__ld(&v->e->refbit))
			tc__st(&v->e->refbit, 1);
		return 0;
	}
	return read_checked(c, hash, klen, *v, val, quiet);
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

/*
 * Copy a value of N bytes out.  16..64 bytes, the common size of a tick's
 * values, in four 16-byte moves that overlap as needed, without the call
 * (memcpy reads such sizes with overlapping loads too); the rest by memcpy.
 */
static inline __attribute__((always_inline)) void
copy_out(void *dst, const void *src, size_t n)
{
#if defined(__SSE2__)
	const uint8_t *s = src;
	uint8_t *d = dst;
	if (TC_LIKELY(n >= 32 && n <= 64)) { /* [0, 32) and [n - 32, n) */
		__m128i a = _mm_loadu_si128((const __m128i *)(const void *)s);
		__m128i b = _mm_loadu_si128((const __m128i *)(const void *)(s + 16));
		__m128i y = _mm_loadu_si128((const __m128i *)(const void *)(s + n - 32));
		__m128i z = _mm_loadu_si128((const __m128i *)(const void *)(s + n - 16));
		_mm_storeu_si128((__m128i *)(void *)d, a);
		_mm_storeu_si128((__m128i *)(void *)(d + 16), b);
		_mm_storeu_si128((__m128i *)(void *)(d + n - 32), y);
		_mm_storeu_si128((__m128i *)(void *)(d + n - 16), z);
		return;
	}
	if (n >= 16 && n < 32) { /* [0, 16) and [n - 16, n) */
		__m128i a = _mm_loadu_si128((const __m128i *)(const void *)s);
		__m128i z = _mm_loadu_si128((const __m128i *)(const void *)(s + n - 16));
		_mm_storeu_si128((__m128i *)(void *)d, a);
		_mm_storeu_si128((__m128i *)(void *)(d + n - 16), z);
		return;
	}
#endif
	if (TC_UNLIKELY(n))
		memcpy(dst, src, n);
}

/*
 * The copy of tc_get and tc_get_with, inside a read section, from RC and V,
 * lookup()'s answer (expired: -ENOENT).  A value
 * longer than CAP is -E2BIG (FN NULL: tc_get, tc_get_many), or goes into
 * the buffer FN returns for it, in the same lookup: FN gets a private copy
 * of the metadata (the length as the lookup read and checked it, once),
 * the value is copied into its buffer and that copy checked (the checksum,
 * the LRU bit) exactly as BUF is.  FN sees no pointer into the segment; a
 * value that fits calls nothing.  QUIET (a constant at each call): no
 * reference bit set, and the precise clock.  PLAIN (a constant too): the
 * caller knows the handle's rslow is 0 (tc__tent_tick_plain).
 */
static inline __attribute__((always_inline)) int
copy_view(tc_cache *c, uint64_t hash, size_t klen, int rc, const struct view *v, void *buf,
	  size_t cap, tc_meta *meta, tc_buf_fn fn, void *arg, bool quiet, bool plain)
{
	if (rc == 0 && TC_UNLIKELY(v->expires != 0) &&
	    expired(v->expires, quiet ? tc__now_ms() : tc__now_ms_coarse()))
		rc = plain ? -ENOENT : answer_checked(c, hash, klen, *v, -ENOENT);
	if (rc)
		return rc;
	fill_meta(meta, v);
	void *dst = buf;
	if (TC_UNLIKELY(v->vlen > cap)) {
		if (!fn)
			return plain ? -E2BIG : answer_checked(c, hash, klen, *v, -E2BIG);
		tc_meta m;
		fill_meta(&m, v);
		if (!(dst = fn(&m, arg)))
			return -ENOMEM;
	}
	copy_out(dst, v->val, v->vlen);
	return !plain && c->rslow ? after_read(c, hash, klen, v, dst, quiet) : 0;
}

/* copy_view() of lookup()'s answer for (HASH, KEY). */
static inline __attribute__((always_inline)) int
copy_value_as(tc_cache *c, uint64_t hash, const void *key, size_t klen, void *buf, size_t cap,
	      tc_meta *meta, tc_buf_fn fn, void *arg, bool quiet, bool plain)
{
	uint64_t *slotp, w;
	struct view v;
	int rc = lookup(c, hash, key, klen, TC_KIND_KEY, &slotp, &w, &v);
	return copy_view(c, hash, klen, rc, &v, buf, cap, meta, fn, arg, quiet, plain);
}

static inline __attribute__((always_inline)) int
copy_value(tc_cache *c, uint64_t hash, const void *key, size_t klen, void *buf, size_t cap,
	   tc_meta *meta, bool quiet)
{
	return copy_value_as(c, hash, key, klen, buf, cap, meta, NULL, NULL, quiet, false);
}

/*
 * Count a read's outcome in its slot S (owner only).  A hit or a miss costs
 * one add: tc_get_stats counts the operations of reads from them, so only an
 * error, which is counted apart, adds to TC_C_OPS too.
 */
/* The counter of a read that answered RC: a hit (-E2BIG too), a miss, or
 * an error. */
static inline int read_counter(int rc)
{
	return rc == 0 || rc == -E2BIG ? TC_C_HITS : rc == -ENOENT ? TC_C_MISSES : TC_C_ERRORS;
}

static inline void count_read(struct tc_rslot *s, int rc)
{
	if (TC_LIKELY(rc == 0)) {
		tc__bump(&s->ctr[TC_C_HITS]);
		return;
	}
	int i = read_counter(rc);
	tc__st(&s->ctr[i], tc__ld(&s->ctr[i]) + 1);
	if (TC_UNLIKELY(i == TC_C_ERRORS))
		tc__st(&s->ctr[TC_C_OPS], tc__ld(&s->ctr[TC_C_OPS]) + 1);
}

/* The hash of KEY: *HASHP, the caller's (tc_get_hashed), or computed
 * (HASHP NULL, a constant in tc_get and tc_get_with). */
static inline __attribute__((always_inline)) uint64_t
key_hash(tc_cache *c, const void *key, size_t klen, const uint64_t *hashp)
{
	return hashp ? *hashp : tc__hash(c, key, klen, TC_KIND_KEY);
}

/* tc_get (FN NULL), tc_get_with and tc_get_hashed (HASHP) through the
 * thread's entry T; TIMED (a constant false on the fast side): the call is
 * the sampled one (tc__tent_tick), timed into the slot. */
static inline __attribute__((always_inline)) int
get_ent(tc_cache *c, struct tc__tent *t, const void *key, size_t klen, void *buf,
	size_t cap, tc_meta *meta, tc_buf_fn fn, void *arg, const uint64_t *hashp, bool timed)
{
	uint64_t hash = key_hash(c, key, klen, hashp);
	int rc = tc__enter_ent(c, t);
	if (TC_UNLIKELY(rc))
		return rc;
	uint64_t t0 = timed ? tc__mono_ns() : 0;
	rc = copy_value_as(c, hash, key, klen, buf, cap, meta, fn, arg, false, false);
	struct tc_rslot *s = t->slot;
	count_read(s, rc);
	if (timed)
		sample_end(c, s, t0);
	tc__exit_entered(c, t);
	return rc;
}

/* The slow side of tc_get and tc_get_with: the handle is not plain
 * (tc__tent_tick_plain), another handle's entry was current, or the call
 * is the 64th since the last timed one. */
static __attribute__((noinline)) int get_slow(tc_cache *c, const void *key, size_t klen,
					      void *buf, size_t cap, tc_meta *meta,
					      tc_buf_fn fn, void *arg, const uint64_t *hashp)
{
	if (tc__tent_tick(c))
		return get_ent(c, tc__tls_ent, key, klen, buf, cap, meta, fn, arg, hashp, false);
	bool timed;
	struct tc__tent *t = tc__tent_switch(c, &timed);
	if (TC_UNLIKELY(!t))
		return -EUSERS;
	return get_ent(c, t, key, klen, buf, cap, meta, fn, arg, hashp, timed);
}

/* tc_get and tc_get_with through the current entry T, already counted,
 * inside a section or with a segment not READY: the general path. */
static __attribute__((noinline)) int get_nested(tc_cache *c, struct tc__tent *t,
						const void *key, size_t klen, void *buf,
						size_t cap, tc_meta *meta, tc_buf_fn fn, void *arg,
						const uint64_t *hashp)
{
	return get_ent(c, t, key, klen, buf, cap, meta, fn, arg, hashp, false);
}

/*
 * The common call, inline: a plain handle (tc__tent_tick_plain), its current
 * entry outside any section, the segment READY.  The section is entered and
 * left by tc__enter_plain and tc__exit_plain, the same stores as
 * tc__enter_ent's; everything else takes the general path above.
 */
static inline __attribute__((always_inline)) int
get_plain(tc_cache *c, struct tc__tent *t, struct tc_hdr *h, const void *key, size_t klen,
	  void *buf, size_t cap, tc_meta *meta, tc_buf_fn fn, void *arg, const uint64_t *hashp)
{
	uint64_t hash = key_hash(c, key, klen, hashp);
	struct tc_rslot *s = tc__enter_plain(h, t);
	int rc = copy_value_as(c, hash, key, klen, buf, cap, meta, fn, arg, false, true);
	count_read(s, rc);
	tc__exit_plain(t, s);
	return rc;
}

static inline __attribute__((always_inline)) int
get_top(tc_cache *c, const void *key, size_t klen, void *buf, size_t cap, tc_meta *meta,
	tc_buf_fn fn, void *arg, const uint64_t *hashp)
{
	if (TC_UNLIKELY(!c || !tc__valid_key(key, klen) || (!buf && cap)))
		return bad_args(c);
	if (TC_UNLIKELY(!tc__tent_tick_plain(c)))
		return get_slow(c, key, klen, buf, cap, meta, fn, arg, hashp);
	struct tc__tent *t = tc__tls_ent;
	struct tc_hdr *h = c->h;
	if (TC_UNLIKELY(tc__ld_ne(&t->depth, 0) || tc__ld_ne(&h->state, TC_STATE_READY)))
		return get_nested(c, t, key, klen, buf, cap, meta, fn, arg, hashp);
	return get_plain(c, t, h, key, klen, buf, cap, meta, fn, arg, hashp);
}

/* Return CALL when KLEN is LO..HI, in a copy of CALL of its own in which
 * the compiler knows that range: the length tests of the key's check, the
 * hash (tc__hash) and the key compare (key_eq) fold into this one.  Used
 * for keys of 9..16 bytes and of 17..32 (most users' key names). */
#define KEY_LENGTH_CASE(klen, lo, hi, call)				\
	do {								\
		if (TC_LIKELY((klen) - (lo) <= (hi) - (lo))) {		\
			if ((klen) < (lo) || (klen) > (hi))		\
				__builtin_unreachable();		\
			return call;					\
		}							\
	} while (0)

int tc_get(tc_cache *c, const void *key, size_t klen, void *buf, size_t cap, tc_meta *meta)
{
	/* Keys of 9..16 bytes, the common ones, in a copy of their own: the
	 * length tests of the key's check, the hash and the key compare fold
	 * into this one.  Keys of 17..32 bytes (most users' key names, the
	 * Python package's among them) in another, for the same reason. */
	KEY_LENGTH_CASE(klen, 9, 16, get_top(c, key, klen, buf, cap, meta, NULL, NULL, NULL));
	KEY_LENGTH_CASE(klen, 17, 32, get_top(c, key, klen, buf, cap, meta, NULL, NULL, NULL));
	return get_top(c, key, klen, buf, cap, meta, NULL, NULL, NULL);
}

/* This thread's slot when it is inside a read section of C, else NULL;
 * the current entry without a call. */
static inline struct tc_rslot *section_slot(tc_cache *c)
{
	struct tc__tent *t = tc__tls_ent;
	if (TC_LIKELY(tc__key_is(tc__tls_key, c->tkey) && t->depth))
		return t->slot;
	return tc__section_slot(c);
}

/* tc_peek's body: the value of KEY (HASH) in place, inside a read section;
 * *VAL NULL unless the answer is 0.  PLAIN (a constant at each call): the
 * handle's rslow is known to be 0. */
static inline __attribute__((always_inline)) int
peek_view(tc_cache *c, uint64_t hash, size_t klen, int rc, const struct view *v,
	  const void **val, tc_meta *meta, bool plain)
{
	if (rc == 0 && v->expires != 0 && expired(v->expires, tc__now_ms_coarse()))
		rc = plain ? -ENOENT : answer_checked(c, hash, klen, *v, -ENOENT);
	if (rc == 0) {
		fill_meta(meta, v);
		*val = v->val;
		if (!plain && c->rslow && (rc = after_read(c, hash, klen, v, v->val, false)) != 0)
			*val = NULL; /* a value that fails its checksum is not handed out */
	} else {
		*val = NULL;
	}
	return rc;
}

static inline __attribute__((always_inline)) int
peek_in_as(tc_cache *c, uint64_t hash, const void *key, size_t klen, const void **val,
	   tc_meta *meta, bool plain)
{
	uint64_t *slotp, w;
	struct view v;
	int rc = lookup(c, hash, key, klen, TC_KIND_KEY, &slotp, &w, &v);
	return peek_view(c, hash, klen, rc, &v, val, meta, plain);
}

static inline __attribute__((always_inline)) int
peek_in(tc_cache *c, uint64_t hash, const void *key, size_t klen, const void **val,
	tc_meta *meta)
{
	return peek_in_as(c, hash, key, klen, val, meta, false);
}

/*
 * tc_peek met a state other than READY inside its section: the segment was
 * unlinked (or the state scribbled) since the section was entered, and a
 * peek gets -ESTALE as every data call does (tc__enter_state); what it
 * peeked before stays mapped until the outermost tc_read_unlock.  0 when
 * the state no longer counts (an orphaned audit).
 */
static __attribute__((noinline)) int peek_refused(tc_cache *c, uint32_t st, const void **val)
{
	int rc = tc__enter_state(c, st);
	if (rc)
		*val = NULL;
	return rc;
}

/* tc_peek of any handle: the general path. */
static __attribute__((noinline)) int peek_general(tc_cache *c, const void *key, size_t klen,
						  const void **val, tc_meta *meta)
{
	struct tc_rslot *s = section_slot(c);
	if (TC_UNLIKELY(!s)) {
		*val = NULL;
		return -EINVAL;
	}
	uint32_t st = tc__ld(&c->h->state);
	int rc;
	if (TC_UNLIKELY(st != TC_STATE_READY) && (rc = peek_refused(c, st, val)) != 0)
		return rc;
	rc = peek_in(c, tc__hash(c, key, klen, TC_KIND_KEY), key, klen, val, meta);
	count_read(s, rc);
	return rc;
}

/*
 * Inline, as tc_get's: a plain handle (its tfast, see tc_get) whose entry is
 * current and inside a section; keys of 9..16 bytes in a copy of their own.
 * Everything else on the general path.
 */
static inline __attribute__((always_inline)) int
peek_top(tc_cache *c, const void *key, size_t klen, const void **val, tc_meta *meta)
{
	if (TC_UNLIKELY(!val))
		return bad_args(c);
	if (TC_UNLIKELY(!c || !tc__valid_key(key, klen))) {
		*val = NULL;
		return bad_args(c);
	}
	/* A state other than READY: the general path, which reads it again
	 * and answers from that one read. */
	struct tc__tent *t = tc__tls_ent;
	if (TC_UNLIKELY(!tc__key_is(tc__tls_key, c->tfast) || !tc__ld_ne(&t->depth, 0) ||
			tc__ld_ne(&c->h->state, TC_STATE_READY)))
		return peek_general(c, key, klen, val, meta);
	int rc = peek_in_as(c, tc__hash(c, key, klen, TC_KIND_KEY), key, klen, val, meta, true);
	count_read(t->slot, rc);
	return rc;
}

int tc_peek(tc_cache *c, const void *key, size_t klen, const void **val, tc_meta *meta)
{
	KEY_LENGTH_CASE(klen, 9, 16, peek_top(c, key, klen, val, meta)); /* as in tc_get */
	KEY_LENGTH_CASE(klen, 17, 32, peek_top(c, key, klen, val, meta));
	return peek_top(c, key, klen, val, meta);
}

/*
 * tc_get_many and tc_peek_many: N reads in one read section, in chunks of
 * MANY_CHUNK so that their cache misses overlap.  Each chunk runs three
 * passes: check and hash every key and prefetch its home bucket; scan each
 * home bucket (now in cache, or on its way) once, keeping its words, and
 * prefetch the first candidate entry's first three lines (header, key, a
 * value of up to about 100 bytes); then finish each lookup from the kept
 * scan (lookup_scanned: every check of match() on the entry; a fresh scan
 * once a lookup before it in the chunk walked, many_finish) and copy.
 * The scan is the one a lookup would make, done earlier in the same read
 * section: a slot word it kept names a block that cannot be reclaimed
 * before the section ends, so the key's read takes effect between its
 * scan and the end of its lookup, as a single lookup's does.
 * The prefetches only hint the CPU.  VALS NULL: copy (tc_get's semantics
 * per request); else VALS[i] receives tc_peek's pointer.
 */
#define MANY_CHUNK 16
_Static_assert(MANY_CHUNK <= 32, "many_in's mask of bad requests is 32 bits");

/* Pass two's scan of one home bucket, and the key and its length as pass
 * one read them (the length in the scan's padding). */
struct many_scan {
	uint64_t w[8];
	uint32_t m;
	uint32_t klen;
	const void *key;
};

static inline void many_scan_prefetch(tc_cache *c, uint64_t hash, struct many_scan *sc)
{
	uint32_t m = sc->m = bucket_scan(&c->index[hash & c->bmask], TC_TAG_OF(hash), sc->w);
	if (m) {
		uint64_t ref = TC_SW_REF(sc->w[SCAN_WORD(m)]);
		if (ref - 1 < c->arena_units - 12) {
			const uint8_t *e = c->arena + (ref - 1) * TC_BLOCK_UNIT;
			__builtin_prefetch(e);
			__builtin_prefetch(e + 64);
			__builtin_prefetch(e + 128);
		}
	}
}

/* The counts of a chunk's answers other than 0, by read_counter(), added
 * to the slot once; a hit costs nothing in pass three. */
struct many_count {
	uint32_t by[TC_C_ERRORS + 1];
};

/*
 * Request R's buf and cap for pass three's copy, into *BUF and *CAP: read
 * once each, here, and checked again as pass one checked them (false: a
 * NULL buf with cap > 0, -EINVAL).  Pass one's check read them before, and
 * another thread of the caller may have changed them since: the copy goes
 * where the pair read says, never into NULL.
 */
static inline bool many_buf(tc_req *r, void **buf, size_t *cap)
{
	*buf = tc__ld(&r->buf);
	*cap = tc__ld(&r->cap);
	return *buf || !*cap;
}

/*
 * Pass three of many_in: each lookup finished from its kept scan, and the
 * copy (VALS NULL) or the pointer.  PLAIN (a constant at each call): the
 * handle's rslow is 0, no check after the read.  BAD (a constant 0 at the
 * call of a chunk without one): the mask of requests that failed tc_get's
 * argument checks.  LO..HI (constants; LO 0: any): the range of every key
 * length of the chunk, as tc_get's KEY_LENGTH_CASE copies have it, so that
 * match()'s key compare and value offset fold as there.
 *
 * The requests are read in their order (docs/design.md, "In their
 * order").  A lookup answered by its kept scan alone takes effect at that
 * scan, in pass two; one that went on in a bucket with displacement
 * (lookup_scanned's *walkp) takes effect here, after the kept scans of the
 * requests after it.  So once one has, every later request of the chunk
 * scans its home bucket again (in cache by now) and takes effect here too,
 * after the requests before it, as the same tc_get calls in a row would.
 */
static inline __attribute__((always_inline)) void
many_finish(tc_cache *c, tc_req *reqs, size_t n, const void **vals, const uint64_t *hash,
	    struct many_scan *sc, uint32_t bad, bool plain, size_t lo, size_t hi,
	    struct many_count *k)
{
	bool walked = false; /* a lookup of the chunk went past its kept scan */
	for (size_t i = 0; i < n; i++) {
		tc_req *r = &reqs[i];
		uint64_t *slotp, w;
		struct view v;
		void *buf = NULL;
		size_t cap = 0;
		int rc;
		if (TC_UNLIKELY(bad >> i & 1)) {
			rc = -EINVAL;
		} else if (!vals && TC_UNLIKELY(!many_buf(r, &buf, &cap))) {
			rc = -EINVAL;
		} else {
			/* The key and length pass one read, checked and hashed,
			 * never the request's again: another thread of the caller
			 * may have changed them since, the class below is that
			 * read's, and a key compared over another request's length
			 * would be read past its end. */
			size_t klen = sc[i].klen;
			const void *key = sc[i].key;
			if (lo && (klen < lo || klen > hi))
				__builtin_unreachable(); /* pass one's class of the key */
			if (TC_UNLIKELY(walked)) /* scanned again, now */
				sc[i].m = bucket_scan(&c->index[hash[i] & c->bmask],
						      TC_TAG_OF(hash[i]), sc[i].w);
			bool walk;
			rc = lookup_scanned(c, hash[i], key, klen, TC_KIND_KEY, sc[i].w,
					    sc[i].m, &slotp, &w, &v, &walk);
			walked |= walk;
			if (vals)
				rc = peek_view(c, hash[i], klen, rc, &v, &vals[i], &r->meta, plain);
			else
				rc = copy_view(c, hash[i], klen, rc, &v, buf, cap, &r->meta,
					       NULL, NULL, false, plain);
		}
		r->rc = rc;
		if (TC_UNLIKELY(rc))
			k->by[read_counter(rc)]++;
	}
}

/* A chunk's requests by pass one: BAD, the mask of those that fail
 * tc_get's argument checks (-EINVAL); K16 and K32, how many have a key of
 * 9..16 bytes and of 17..32. */
struct many_class {
	uint32_t bad, k16, k32;
};

/* KEY's hash, KLEN known to be LO..HI: tc__hash's step for that length
 * alone, its range test folded (KEY_LENGTH_CASE's effect in tc_get). */
static inline __attribute__((always_inline)) uint64_t
hash_len(tc_cache *c, const void *key, size_t klen, size_t lo, size_t hi)
{
	if (klen < lo || klen > hi)
		__builtin_unreachable();
	return tc__hash(c, key, klen, TC_KIND_KEY);
}

/* Pass one of many_in: check and hash each request (into HASH), keep the
 * key and length it read (SC[i].key and .klen, the ones pass three uses),
 * prefetch its home bucket, and class it.  A key of 9..16 or 17..32 bytes
 * passes tc__valid_key's length test by its class's.  The key and the
 * length are loaded once each (volatile loads, which the compiler cannot
 * repeat): the checks, the class test, the hash and the kept copies see
 * the same values, whatever another thread of the caller writes into the
 * request meanwhile. */
static inline __attribute__((always_inline)) struct many_class
many_hash(tc_cache *c, const tc_req *reqs, size_t n, bool peek, uint64_t *hash,
	  struct many_scan *sc)
{
	struct many_class mc = { 0, 0, 0 };
	for (size_t i = 0; i < n; i++) {
		const tc_req *r = &reqs[i];
		const void *key = tc__ld(&r->key); /* once: pass three takes */
		size_t klen = tc__ld(&r->klen);    /* these reads */
		uint64_t h;
		if (TC_UNLIKELY(!key || (!peek && !r->buf && r->cap))) {
			mc.bad |= 1u << i;
			continue;
		}
		if (TC_LIKELY(klen - 9 <= 16 - 9)) {
			h = hash_len(c, key, klen, 9, 16);
			mc.k16++;
		} else if (TC_LIKELY(klen - 17 <= 32 - 17)) {
			h = hash_len(c, key, klen, 17, 32);
			mc.k32++;
		} else if (tc__valid_key(key, klen)) {
			h = tc__hash(c, key, klen, TC_KIND_KEY);
		} else {
			mc.bad |= 1u << i;
			continue;
		}
		hash[i] = h;
		sc[i].klen = (uint32_t)klen; /* 1..TC_KEY_MAX */
		sc[i].key = key;
		__builtin_prefetch(&c->index[h & c->bmask]);
	}
	return mc;
}

static inline __attribute__((always_inline)) size_t
many_in(tc_cache *c, struct tc_rslot *s, tc_req *reqs, size_t n, const void **vals)
{
	uint64_t hash[MANY_CHUNK];
	struct many_scan sc[MANY_CHUNK];
	struct many_class mc = many_hash(c, reqs, n, vals != NULL, hash, sc);
	if (TC_LIKELY(mc.bad == 0)) {
		for (size_t i = 0; i < n; i++)
			many_scan_prefetch(c, hash[i], &sc[i]);
	} else {
		for (size_t i = 0; i < n; i++)
			if (!(mc.bad >> i & 1))
				many_scan_prefetch(c, hash[i], &sc[i]);
	}
	struct many_count k = { { 0 } };
	/* The common chunk in a copy of its own: a plain handle, no bad
	 * request, every key of one length class. */
	if (TC_LIKELY(c->rslow == 0 && mc.bad == 0)) {
		if (TC_LIKELY(mc.k16 == n))
			many_finish(c, reqs, n, vals, hash, sc, 0, true, 9, 16, &k);
		else if (mc.k32 == n)
			many_finish(c, reqs, n, vals, hash, sc, 0, true, 17, 32, &k);
		else
			many_finish(c, reqs, n, vals, hash, sc, 0, true, 0, 0, &k);
	} else if (c->rslow == 0) {
		many_finish(c, reqs, n, vals, hash, sc, mc.bad, true, 0, 0, &k);
	} else {
		many_finish(c, reqs, n, vals, hash, sc, mc.bad, false, 0, 0, &k);
	}
	/* count_read's counters, once for the chunk (owner only); an error
	 * counts in TC_C_OPS too, as there.  -E2BIG is a hit. */
	uint32_t big = k.by[TC_C_HITS], misses = k.by[TC_C_MISSES], errs = k.by[TC_C_ERRORS];
	uint32_t ok = (uint32_t)n - big - misses - errs;
	tc__st(&s->ctr[TC_C_HITS], tc__ld(&s->ctr[TC_C_HITS]) + ok + big);
	if (misses)
		tc__st(&s->ctr[TC_C_MISSES], tc__ld(&s->ctr[TC_C_MISSES]) + misses);
	if (TC_UNLIKELY(errs)) {
		tc__st(&s->ctr[TC_C_ERRORS], tc__ld(&s->ctr[TC_C_ERRORS]) + errs);
		tc__st(&s->ctr[TC_C_OPS], tc__ld(&s->ctr[TC_C_OPS]) + errs);
	}
	return ok;
}

/* many_in() compiled once for each (a constant VALS NULL for tc_get_many;
 * for tc_peek_many VALS is never NULL, which also folds away the copy's
 * branch, so that gcc -O1, as make tsan builds, sees no read of a view
 * that a miss leaves unset). */
static __attribute__((noinline)) size_t many_get(tc_cache *c, struct tc_rslot *s, tc_req *reqs,
						  size_t n)
{
	return many_in(c, s, reqs, n, NULL);
}

static __attribute__((noinline, nonnull(5))) size_t many_peek(tc_cache *c, struct tc_rslot *s,
								tc_req *reqs, size_t n,
								const void **vals)
{
	return many_in(c, s, reqs, n, vals);
}

/* A call refused as a whole: each request answers RC and each pointer is
 * NULL; nothing is written with N > INT_MAX (N says nothing of the arrays
 * then) or into a NULL array. */
static void many_refuse(tc_req *reqs, size_t n, const void **vals, int rc)
{
	if (n > INT_MAX)
		return;
	for (size_t i = 0; i < n; i++) {
		if (reqs)
			reqs[i].rc = rc;
		if (vals)
			vals[i] = NULL;
	}
}

/* The checks and the section shared by tc_get_many and tc_peek_many. */
static int many(tc_cache *c, tc_req *reqs, size_t n, const void **vals)
{
	if (TC_UNLIKELY(!c || (n && !reqs) || n > INT_MAX)) {
		many_refuse(reqs, n, vals, -EINVAL);
		return bad_args(c);
	}
	if (vals)
		for (size_t i = 0; i < n; i++)
			vals[i] = NULL;
	if (n == 0)
		return 0;
	struct tc__tent *t = NULL;
	int rc;
	if (vals && !section_slot(c))
		rc = -EINVAL; /* tc_peek_many outside a read section */
	else if (!(t = tc__tent_cur(c)))
		rc = -EUSERS;
	else
		rc = tc__enter_ent(c, t);
	if (TC_UNLIKELY(rc)) {
		many_refuse(reqs, n, NULL, rc);
		return rc;
	}
	size_t hits = 0;
	for (size_t i = 0; i < n; i += MANY_CHUNK) {
		size_t k = n - i < MANY_CHUNK ? n - i : MANY_CHUNK;
		hits += vals ? many_peek(c, t->slot, reqs + i, k, vals + i)
			     : many_get(c, t->slot, reqs + i, k);
	}
	tc__exit_ent(c, t);
	return (int)hits;
}

int tc_get_many(tc_cache *c, tc_req *reqs, size_t n)
{
	return many(c, reqs, n, NULL);
}

int tc_peek_many(tc_cache *c, tc_req *reqs, size_t n, const void **vals)
{
	if (TC_UNLIKELY(n && !vals)) {
		many_refuse(reqs, n, NULL, -EINVAL);
		return bad_args(c);
	}
	return many(c, reqs, n, vals);
}

/* tc_get into a buffer of no bytes and no metadata: a live value of any
 * length is -E2BIG (0 when it is empty).  The buffer is a real one, never
 * written: with NULL, gcc's -Wnonnull at the sanitizers' -O1 followed the
 * copy's memcpy (reached only by a value longer than no bytes, which is
 * -E2BIG first) and failed `make asan WERROR=1`. */
static inline __attribute__((always_inline)) bool exists_top(tc_cache *c, const void *key,
							     size_t klen)
{
	unsigned char none[1];
	int rc = get_top(c, key, klen, none, 0, NULL, NULL, NULL, NULL);
	return rc == 0 || rc == -E2BIG;
}

/* A bad call is false and counts nothing; keys of 9..16 and 17..32 bytes in
 * copies of their own, as in tc_get. */
bool tc_exists(tc_cache *c, const void *key, size_t klen)
{
	if (!c || !tc__valid_key(key, klen))
		return false;
	KEY_LENGTH_CASE(klen, 9, 16, exists_top(c, key, klen));
	KEY_LENGTH_CASE(klen, 17, 32, exists_top(c, key, klen));
	return exists_top(c, key, klen);
}

/*
 * Read the live value of (KEY, KIND) into BUF (exactly LEN bytes and type
 * TYPE expected).  0 with *version, -ENOENT (absent or expired),
 * TC_ECORRUPT (another shape), or an error of tc__enter.
 */
int tc__read_kind(tc_cache *c, uint32_t kind, const void *key, size_t klen, void *buf,
		  size_t len, uint32_t type, uint64_t *version)
{
	uint64_t hash = tc__hash(c, key, klen, kind);
	struct tc_rslot *s;
	int rc = tc__enter(c, &s);
	if (rc)
		return rc;
	uint64_t *slotp, w;
	struct tc_entry *e;
	rc = tc__lookup(c, hash, key, klen, kind, &slotp, &w, &e);
	if (rc == 0) {
		/* Each field loaded once, checked, and only that copy used; with
		 * checksums the copy is verified (a scribbled window or claim is
		 * TC_ECORRUPT, never counted from or sealed anew), an expired one
		 * too (an expiry scribbled into the past must not restart a
		 * window or free a claim). */
		uint32_t kl, vl, cls;
		int64_t exp = tc__ld(&e->expires_ms);
		bool gone = exp != 0 && exp <= tc__now_ms();
		if (gone && !c->csum)
			rc = -ENOENT;
		else if (!tc__block_kv(c, TC_SW_REF(w), kind, &kl, &vl, &cls) || kl != klen ||
			 vl != len)
			rc = TC_ECORRUPT;
		else {
			uint32_t ty = tc__ld(&e->type);
			uint64_t ver = tc__ld(&e->version);
			memcpy(buf, tc__eval(e, (uint32_t)klen), len);
			if (ty != type || (c->csum && tc__csum_check(c, e, hash, klen, cls, ver, exp,
								    vl, ty, 0, buf)))
				rc = TC_ECORRUPT;
			else if (gone)
				rc = -ENOENT;
			else
				*version = ver;
		}
	}
	tc__exit(c);
	return rc;
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

/* Keys of 17..32 and 9..16 bytes in copies of their own, as in tc_get; the
 * longer first, the Python package's key names. */
int tc_get_with(tc_cache *c, const void *key, size_t klen, void *buf, size_t cap,
		tc_meta *meta, tc_buf_fn fn, void *arg)
{
	KEY_LENGTH_CASE(klen, 17, 32, get_top(c, key, klen, buf, cap, meta, fn, arg, NULL));
	KEY_LENGTH_CASE(klen, 9, 16, get_top(c, key, klen, buf, cap, meta, fn, arg, NULL));
	return get_top(c, key, klen, buf, cap, meta, fn, arg, NULL);
}

uint64_t tc_key_hash(tc_cache *c, const void *key, size_t klen)
{
	if (!c || !tc__valid_key(key, klen))
		return 0;
	return tc__hash(c, key, klen, TC_KIND_KEY);
}

/* tc_get_with with the caller's hash of KEY: every path takes HASH instead
 * of computing it (get_top's HASHP), so a HASH that is not KEY's misses on
 * all of them alike (match() compares the entry's hash first). */
int tc_get_hashed(tc_cache *c, uint64_t hash, const void *key, size_t klen, void *buf,
		  size_t cap, tc_meta *meta, tc_buf_fn fn, void *arg)
{
	KEY_LENGTH_CASE(klen, 17, 32, get_top(c, key, klen, buf, cap, meta, fn, arg, &hash));
	KEY_LENGTH_CASE(klen, 9, 16, get_top(c, key, klen, buf, cap, meta, fn, arg, &hash));
	return get_top(c, key, klen, buf, cap, meta, fn, arg, &hash);
}

/* ---- writes ------------------------------------------------------------- */

/* Resolve the TTL argument of a write into an absolute expiry. */
static inline int64_t tc__expiry(tc_cache *c, const void *key, size_t klen, uint64_t ttl_ms)
{
	if (ttl_ms == TC_TTL_DEFAULT)
		ttl_ms = tc__policy_ttl(c, key, klen);
	if (ttl_ms == 0)
		return 0;
	if (ttl_ms > (uint64_t)INT64_MAX / 2)
		ttl_ms = (uint64_t)INT64_MAX / 2;
	return tc__now_ms() + (int64_t)ttl_ms;
}

/*
 * The write engine, in steps.  One attempt (write_once) runs inside a read
 * section: look the key up, decide what to write (decide), build the new
 * entry in a private block (build), publish it with one CAS (publish_update
 * over the old entry's word, publish_insert into a free word), and says
 * what happens next.  tc__write runs attempts until one is done or fails,
 * making room between two when memory or index words ran out.
 */
enum {
	W_DONE,      /* published; still inside the read section */
	W_FAIL,      /* *rc is the answer */
	W_AGAIN,     /* the word changed under our CAS: at once */
	W_LOST,      /* another inserter of the key won: again, yielding after 8 */
	W_ROOM,      /* no block of w->need bytes: make room, then again */
	W_ROOM_SLOT, /* the index or max_entries is full: make room for a slot */
};

/* A write across its attempts. */
struct wstate {
	uint64_t hash, tag;
	int64_t new_exp;     /* the expiry of a new value */
	uint64_t need;       /* block bytes of the last attempt */
	struct tc__room room;
	int64_t incr_val;
	uint64_t version;    /* the version published (q->version) */
	uint8_t ctrbuf[8];   /* a counter's new value, little-endian */
};

/* What an attempt writes: the new value or the old one carried over. */
struct wval {
	const void *src;
	size_t nlen;
	uint32_t ntype;
	int64_t exp;
};

/*
 * The answer RC of an op that answers from the metadata of the key's entry
 * OLD alone: with checksums the entry is verified in place first.  So an
 * expiry scribbled into the past is TC_ECORRUPT, never taken for the key's
 * end (an add that takes a dedupe mark for absent, a counter that starts
 * again from 0, a cas or an expire that finds nothing: decide() asks it of
 * every op but a set, which replaces whatever is there and answers nothing
 * from it), and a type or length scribbled is not TC_ETYPE (tc_incr).
 */
static __attribute__((noinline, cold)) int
stale_checked(tc_cache *c, const struct wstate *w, const struct tc__wreq *q,
	      const struct view *old, int rc)
{
	int bad = tc__csum_check(c, old->e, w->hash, q->klen, old->cls, old->version,
				 old->expires, old->vlen, old->type, 0, old->val);
	return bad ? bad : rc;
}

static inline int absent(tc_cache *c, const struct wstate *w, const struct tc__wreq *q,
			 const struct view *old, bool found, int rc)
{
	return found && c->csum ? stale_checked(c, w, q, old, rc) : rc;
}

/* The value an INCR writes: the live counter OLD (checked) plus delta. */
static int decide_incr(tc_cache *c, const struct tc__wreq *q, struct wstate *w,
		       const struct view *old, bool found, bool live, struct wval *v)
{
	int64_t n = q->delta;
	if (!live) {
		int rc = absent(c, w, q, old, found, 0);
		if (rc)
			return rc;
	} else {
		/* With checksums a type or length that says "not a counter"
		 * is believed only when it is sound, not a scribble. */
		if (TC_UNLIKELY(old->type != TC_TYPE_COUNTER || old->vlen != 8))
			return c->csum ? stale_checked(c, w, q, old, TC_ETYPE) : TC_ETYPE;
		/* One copy of the counter, checked, then used. */
		uint8_t cur[8];
		memcpy(cur, old->val, 8);
		int rc;
		if (c->csum && (rc = tc__csum_check(c, old->e, w->hash, q->klen, old->cls,
						    old->version, old->expires, 8, old->type, 0,
						    cur)) != 0)
			return rc;
		n = (int64_t)((uint64_t)tc__le64_get(cur) + (uint64_t)q->delta);
		v->exp = old->expires;
	}
	tc__le64_put(w->ctrbuf, n);
	v->src = w->ctrbuf;
	v->nlen = 8;
	v->ntype = TC_TYPE_COUNTER;
	w->incr_val = n;
	return 0;
}

/* Decide from the key's current entry OLD (FOUND; LIVE: found and not
 * expired) what this write stores in V, or the error that answers it. */
static inline int decide(tc_cache *c, const struct tc__wreq *q, struct wstate *w,
			 const struct view *old, bool found, bool live, struct wval *v)
{
	*v = (struct wval){ q->val, q->vlen, q->type, w->new_exp };
	switch (q->op) {
	case TC_OP_ADD:
		return live ? -EEXIST : absent(c, w, q, old, found, 0);
	case TC_OP_CAS:
		if (!live)
			return absent(c, w, q, old, found, -ENOENT);
		return old->version != q->expect ? TC_ECONFLICT : 0;
	case TC_OP_EXPIRE:
		if (!live)
			return absent(c, w, q, old, found, -ENOENT);
		v->src = old->val;
		v->nlen = old->vlen;
		v->ntype = old->type;
		return 0;
	case TC_OP_INCR:
		return decide_incr(c, q, w, old, found, live, v);
	default:
		return 0;
	}
}

/* Fill the private block E with the header, key and value of the write,
 * and VERSION (0 for an insert, which takes its version when it publishes). */
static inline void build(const struct tc__wreq *q, const struct wstate *w,
			 const struct wval *v, uint64_t version, struct tc_entry *e)
{
	tc__fill_block(e, &(struct tc__bhdr){ .hash = w->hash, .version = version,
					      .expires_ms = v->exp,
					      .klen = (uint32_t)q->klen, .vlen = (uint32_t)v->nlen,
					      .type = v->ntype, .kind = q->kind, .aux = q->aux },
		       q->key, v->src);
	e->refbit = 1; /* new data counts as used: one clock pass before eviction */
}

/* Swing the key's word W at SLOTP from OLD to the built entry E (its
 * version taken before the build: see write_once). */
static inline int publish_update(tc_cache *c, const struct tc__wreq *q, struct wstate *w,
				 struct tc_rslot *s, struct tc_entry *e, uint64_t *slotp,
				 uint64_t word, const struct view *old, bool live)
{
	if (c->csum)
		tc__csum_seal(c, e, q->klen);
	/* The CAS is a full barrier: the entry's bytes are visible
	 * before the slot names it. */
	tc__note_unlink(s, TC_SW_REF(word), old->e);
	TC_CRASH_POINT(update_noted);
	if (tc__cas(slotp, word, TC_SW_FINAL | w->tag << 48 | tc__ref_of(c, e)) != word) {
		tc__st(&s->ret_ref, 0);
		tc__drop_private(c, s, e);
		return W_AGAIN;
	}
	TC_CRASH_POINT(update_swapped);
	tc__st(&s->inflight, 0);
	TC_CRASH_POINT(update_unlinked);
	tc__retire(c, s, old->e);
	TC_CRASH_POINT(update_retired);
	tc__st(&s->ret_ref, 0);
	if (!live)
		tc__count(s, TC_C_EXPIRATIONS);
	return W_DONE;
}

/*
 * Absent: insert the built entry E if the segment holds fewer than
 * max_entries keys.  The count is raised after the insert is final (a
 * writer killed in between cannot leave it high); concurrent inserters may
 * overshoot max_entries by their number, which the index's 30 % headroom
 * absorbs, so max_entries keys always fit.
 */
static int publish_insert(tc_cache *c, const struct tc__wreq *q, struct wstate *w,
			  struct tc_rslot *s, struct tc_entry *e, int *rc)
{
	if ((int64_t)tc__ld(&c->h->live) >= (int64_t)c->max_entries) {
		tc__drop_private(c, s, e);
		*rc = -ENOSPC;
		return W_ROOM_SLOT;
	}
	bool seen;
	int ir = tc__insert_new(c, w->hash, q->key, q->klen, q->kind, e, tc__ref_of(c, e), true,
				&seen);
	if (ir == 0) {
		TC_CRASH_POINT(insert_published);
		/* tc__insert_new took the version; read once, for q->version
		 * (the section keeps E from being reused). */
		if (q->version)
			w->version = tc__ld(&e->version);
		tc__add(&c->h->live, 1);
		tc__st(&s->inflight, 0);
		return W_DONE;
	}
	if (seen) {
		tc__retire(c, s, e);
		tc__st(&s->inflight, 0); /* after, as in tc__drop_private() */
	} else {
		tc__drop_private(c, s, e);
	}
	if (ir == -ENOSPC) {
		*rc = -ENOSPC;
		return W_ROOM_SLOT;
	}
	if (ir == TC_ECORRUPT) {
		*rc = TC_ECORRUPT;
		return W_FAIL;
	}
	return W_LOST;
}

/*
 * The block of a write whose value comes with the request (set, add, cas),
 * taken before the lookup from a free list or a carve (nothing that makes
 * room: a write that fails, say an add of a present key, must not have
 * evicted), and prefetched for writing, so that its lines arrive while the
 * lookup waits for the key's bucket and entry and the publishing CAS does
 * not wait for them.  NULL: the write allocates after deciding, as the
 * others do.  Named in the slot's inflight like any private block.  Its
 * first 256 bytes are prefetched (tc__prefetch_w).
 */
static inline struct tc_entry *alloc_early(tc_cache *c, const struct tc__wreq *q,
					   struct wstate *w, struct tc_rslot *s)
{
	if (q->op != TC_OP_SET && q->op != TC_OP_ADD && q->op != TC_OP_CAS)
		return NULL;
	int rc;
	w->need = tc__entry_need(c, q->klen, q->vlen);
	struct tc_entry *e = tc__alloc_block(c, s, w->need, &rc);
	/* The first lines only (header, key, the start of the value): the
	 * lookup overlaps their misses; a large value's rest is streamed by
	 * the copy, not queued ahead of the lookup's own loads. */
	if (e)
		tc__prefetch_w(e, w->need);
	return e;
}

/*
 * Ask for the entry that this process's last write of HASH published (its
 * hint, tc_cache.hints), which is the key's entry still unless another
 * process wrote the key since or another key took the hint's word.  The
 * lookup's second load, the old entry's header and key, depends on its
 * first, the bucket's; with the hint both are on their way at once.  Only
 * a prefetch: the ref is bounded to the arena and nothing is read from it
 * here.  Its two lines are the header and the key's (TC_ENTRY_HDR).
 */
static inline void prefetch_hinted(tc_cache *c, const uint32_t *hint)
{
	uint64_t r = tc__ld(hint);
	if (r && r + 4 <= c->ref_lim) { /* both lines inside the arena */
		const uint8_t *p = c->arena + (r - 1) * TC_BLOCK_UNIT;
		__builtin_prefetch(p);
		__builtin_prefetch(p + TC_ENTRY_HDR);
	}
}

/* One attempt of the write, inside the read section of slot S. */
static inline int write_once(tc_cache *c, const struct tc__wreq *q, struct wstate *w,
			     struct tc_rslot *s, int *rc)
{
	uint64_t *slotp = NULL, word = 0;
	struct view old = { 0 };
	/* An add has no hint: it is for keys not written here before, and
	 * its store (below) would make the publishing CAS wait for the line. */
	uint32_t *hint = q->op != TC_OP_ADD ? tc__hint(c, w->hash) : NULL;
	/* The key's home bucket and its hint's line are asked for first:
	 * they arrive while the block is taken (the block's locked
	 * instructions would hold back loads, not prefetches); then the
	 * hinted entry, while the bucket is still on its way. */
	__builtin_prefetch(&c->index[w->hash & c->bmask]);
	if (hint)
		__builtin_prefetch(hint);
	struct tc_entry *e = alloc_early(c, q, w, s);
	if (e)
		TC_CRASH_POINT(write_early_block);
	if (hint)
		prefetch_hinted(c, hint);
	int lr = lookup(c, w->hash, q->key, q->klen, q->kind, &slotp, &word, &old);
	/* The clock is read only when there is an expiry to judge. */
	bool found = lr == 0,
	     live = found && !(old.expires && expired(old.expires, tc__now_ms()));
	struct wval v;
	*rc = lr < 0 && lr != -ENOENT ? lr : decide(c, q, w, &old, found, live, &v);
	if (*rc != 0) {
		if (e)
			tc__drop_private(c, s, e);
		return W_FAIL;
	}
	if (!e) {
		w->need = tc__entry_need(c, q->klen, v.nlen);
		if (!(e = tc__alloc(c, s, w->need, rc)))
			return *rc == -ENOSPC ? W_ROOM : W_FAIL;
	}
	/* An update takes its version now, before the build: the CAS on the
	 * version counter then finds no store of the build still pending. */
	w->version = found ? next_version(c, w->hash, old.version) : 0;
	if (TC_UNLIKELY(found && w->version == 0)) { /* at the top: a scribble */
		tc__drop_private(c, s, e);
		*rc = TC_ECORRUPT;
		return W_FAIL;
	}
	build(q, w, &v, w->version, e);
	/* tc_expire carries the old value over: it is checked as copied
	 * (into our private block), so damage is never sealed anew. */
	if (c->csum && q->op == TC_OP_EXPIRE &&
	    (*rc = tc__csum_check(c, old.e, w->hash, q->klen, old.cls, old.version, old.expires,
				  old.vlen, old.type, 0, tc__eval(e, (uint32_t)q->klen))) != 0) {
		tc__drop_private(c, s, e);
		return W_FAIL;
	}
	TC_CRASH_POINT(write_built);
	*rc = 0;
	if (hint)
		tc__st(hint, (uint32_t)tc__ref_of(c, e));
	if (found)
		return publish_update(c, q, w, s, e, slotp, word, &old, live);
	return publish_insert(c, q, w, s, e, rc);
}

/*
 * This thread's entry of C when it is the thread's current one, as
 * tent_find (epoch.c) finds it first; else NULL, and the caller asks
 * epoch.c, which searches (and claims a slot on the first call).  So a
 * write enters its section, leaves it and sees that it is in none without
 * a call, once its first tc__enter has made C's entry current.
 */
static inline struct tc__tent *write_tent(tc_cache *c)
{
	return TC_LIKELY(tc__key_is(tc__tls_key, c->tkey)) ? tc__tls_ent : NULL;
}

/* A write published: count it, leave the section, then the work a write
 * does for the next ones (evict ahead, reclaim early). */
static inline void write_done(tc_cache *c, const struct tc__wreq *q, struct wstate *w,
			      struct tc_rslot *s, uint64_t t0)
{
	TC_CRASH_POINT(publish_unwoken);
	tc__notify(c, w->hash); /* after the publishing CAS: wake waiters, if any */
	if (q->op == TC_OP_INCR && q->out)
		*q->out = w->incr_val; /* only on success */
	if (q->version)
		*q->version = w->version;
	tc__count(s, q->op == TC_OP_ADD ? TC_C_ADDS : TC_C_SETS);
	tc__count(s, TC_C_OPS);
	sample_end(c, s, t0);
	struct tc__tent *t = write_tent(c);
	if (TC_LIKELY(t != NULL))
		tc__exit_ent(c, t);
	else
		tc__exit(c);
	tc__evict_ahead(c, s, w->need);
	/* A write called inside the caller's own section reclaims nothing:
	 * the grace period would wait for that section (tc__maybe_reclaim). */
	t = write_tent(c);
	if (TC_LIKELY(t != NULL) ? t->depth == 0 : !tc__in_section(c))
		tc__reclaim_early(c, s);
}

int tc__write(tc_cache *c, const struct tc__wreq *q)
{
	if (!c || !tc__valid_key(q->key, q->klen) || (!q->val && q->vlen) ||
	    (q->kind == TC_KIND_KEY && q->ttl_ms != TC_TTL_DEFAULT && q->ttl_ms > TC_TTL_MAX))
		return bad_args(c);
	if (q->vlen > TC_VALUE_MAX) {
		bad_args(c);
		return -EMSGSIZE;
	}
	struct wstate w;
	w.hash = tc__hash(c, q->key, q->klen, q->kind);
	w.tag = TC_TAG_OF(w.hash);
	w.room.round = 0;
	w.room.t0 = 0;
	w.room.sweep_runs = false;
	w.incr_val = 0;
	/* For tc_incr this applies only when the counter is created. */
	w.new_exp = tc__expiry(c, q->key, q->klen, q->ttl_ms);
	struct tc_rslot *s = NULL;
	int rc = 0;
	for (int attempt = 0; attempt < TC_MAX_ATTEMPTS; attempt++) {
		/* tc__enter, inline when the thread's current entry is C's. */
		struct tc__tent *t = write_tent(c);
		if (TC_LIKELY(t != NULL)) {
			s = t->slot;
			rc = tc__enter_ent(c, t);
			if (rc == 0 && t->depth == 1)
				TC_ENTERED();
		} else {
			rc = tc__enter(c, &s);
		}
		if (rc)
			return rc;
		uint64_t t0 = sample_start(s);
		int next = write_once(c, q, &w, s, &rc);
		if (next == W_DONE) {
			write_done(c, q, &w, s, t0);
			return 0;
		}
		tc__exit(c);
		if (next == W_FAIL)
			break;
		if (next == W_ROOM || next == W_ROOM_SLOT) {
			if (!tc__room_for(c, s, w.need, next == W_ROOM_SLOT, &w.room))
				break;
		} else if (next == W_LOST && attempt > 8) {
			sched_yield();
		}
	}
	if (rc == 0)
		rc = -EAGAIN;
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
	/* Every field named: a partial initializer clears the whole struct
	 * first (a rep stos on the hottest write). */
	struct tc__wreq q = { .kind = TC_KIND_KEY, .key = key, .klen = klen, .val = val,
			      .vlen = vlen, .type = type, .ttl_ms = ttl_ms, .op = TC_OP_SET,
			      .expect = 0, .delta = 0, .out = NULL, .aux = 0, .version = NULL };
	return tc__write(c, &q);
}

int tc_set_v(tc_cache *c, const void *key, size_t klen, const void *val, size_t vlen,
	     uint32_t type, uint64_t ttl_ms, uint64_t *version)
{
	return tc__write(c, &(struct tc__wreq){ .kind = TC_KIND_KEY, .key = key, .klen = klen,
						.val = val, .vlen = vlen, .type = type,
						.ttl_ms = ttl_ms, .op = TC_OP_SET,
						.version = version });
}

int tc_add(tc_cache *c, const void *key, size_t klen, const void *val, size_t vlen,
	   uint32_t type, uint64_t ttl_ms)
{
	return tc__write(c, &(struct tc__wreq){ .kind = TC_KIND_KEY, .key = key, .klen = klen,
						.val = val, .vlen = vlen, .type = type,
						.ttl_ms = ttl_ms, .op = TC_OP_ADD });
}

int tc_cas(tc_cache *c, const void *key, size_t klen, uint64_t expect_version,
	   const void *val, size_t vlen, uint32_t type, uint64_t ttl_ms)
{
	return tc__write(c, &(struct tc__wreq){ .kind = TC_KIND_KEY, .key = key, .klen = klen,
						.val = val, .vlen = vlen, .type = type,
						.ttl_ms = ttl_ms, .op = TC_OP_CAS,
						.expect = expect_version });
}

int tc_expire(tc_cache *c, const void *key, size_t klen, uint64_t ttl_ms)
{
	return tc__write(c, &(struct tc__wreq){ .kind = TC_KIND_KEY, .key = key, .klen = klen,
						.ttl_ms = ttl_ms, .op = TC_OP_EXPIRE });
}

int tc_incr(tc_cache *c, const void *key, size_t klen, int64_t delta, uint64_t ttl_ms,
	    int64_t *out)
{
	return tc__write(c, &(struct tc__wreq){ .kind = TC_KIND_KEY, .key = key, .klen = klen,
						.ttl_ms = ttl_ms, .op = TC_OP_INCR,
						.delta = delta, .out = out });
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
	for (int attempt = 0; attempt < TC_MAX_ATTEMPTS; attempt++) {
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
