/* SPDX-License-Identifier: MIT */
/*
 * index.h - the read half of the index (index.c), as static inline
 * functions: the key's hash, the probe of a key's chain (lookup), the check
 * of one entry against a key (match), the version counters.  Inline because
 * they are the hot read path: kv.c's tc_get, tc_peek and tc_exists and
 * index.c's walkers compile them into themselves, as they did when all of
 * them were one file (the callgrind counts of get and set are the check).
 * They call no function of shm/.
 */
#ifndef TC_INDEX_H
#define TC_INDEX_H

#include "internal.h"

/* XXH3 inlined from Debian's libxxhash-dev header: no call on the hot path. */
#define XXH_INLINE_ALL
#include <xxhash.h>
#if defined(__SSE2__) && !defined(TC_TSAN)
#include <emmintrin.h>
#endif

#define RETRY 1            /* internal: start the operation again */

/* A validated snapshot of an entry's header. */
struct view {
	struct tc_entry *e;
	const uint8_t *val;
	uint64_t version;
	int64_t expires;
	uint32_t vlen, type, cls;
};

/*
 * XXH3's fold of a 64x64-bit product: its low half xor its high half
 * (XXH3_mul128_fold64).  On x86-64 the two halves come out of one mul
 * as two 64-bit values: gcc 12 keeps a __uint128_t in a register pair,
 * which it spills to the stack and reloads (three moves) whenever the
 * path around it runs short of registers.
 */
static inline __attribute__((always_inline)) uint64_t mul_fold(uint64_t a, uint64_t b)
{
#if defined(__x86_64__)
	uint64_t lo, hi;
	__asm__("mulq %3" : "=a"(lo), "=d"(hi) : "a"(a), "rm"(b) : "cc");
	return lo ^ hi;
#else
	return XXH3_mul128_fold64(a, b);
#endif
}

/*
 * XXH3-64 of KEY under the segment's seed (plus KIND's constant).  Keys of
 * up to 16 bytes, most of them, go straight to XXH3's short-input step, the
 * one XXH3_64bits_withSeed itself takes for them (xxhash.h,
 * XXH3_64bits_internal), without the call and the length dispatch;
 * tests/test_table.c checks the two agree.
 */
static inline __attribute__((always_inline)) uint64_t
tc__hash(tc_cache *c, const void *key, size_t klen, uint32_t kind)
{
	uint64_t seed = c->seed + kind * 0x9E3779B97F4A7C15ull;
#if defined(__SIZEOF_INT128__)
	/*
	 * Ordinary keys of 9..16 bytes: XXH3's step for that length (the XXH3
	 * specification, "9-16 bytes"), whose two secret words under the seed
	 * the handle holds (c->kbf, tc__hash_init): the input's first and last
	 * 8 bytes, each xored with one, their 128-bit product folded, the
	 * length and the first word byte-swapped added, then XXH3's
	 * avalanche.  The same value as XXH3_64bits_withSeed, with the seeding
	 * done once per handle.
	 */
	if (kind == TC_KIND_KEY && TC_LIKELY(klen - 9 <= 7)) {
		const uint8_t *k = key;
		uint64_t lo = XXH_readLE64(k) ^ c->kbf[0];
		uint64_t hi = XXH_readLE64(k + klen - 8) ^ c->kbf[1];
		return XXH3_avalanche(klen + XXH_swap64(lo) + hi + mul_fold(lo, hi));
	}
#endif
	/*
	 * Ordinary keys of 17..32 bytes, the names of most users' keys
	 * ("tradecore:market:quote:AAPL"): XXH3's 17..128-byte step for that
	 * length, the input's first and last 16 bytes each mixed with 16
	 * secret bytes under the seed (c->kmid, tc__hash_init) and folded,
	 * then the avalanche.  The same value as XXH3_64bits_withSeed again.
	 */
	if (kind == TC_KIND_KEY && TC_LIKELY(klen - 17 <= 15)) {
		const uint8_t *k = key, *t = k + klen - 16;
		uint64_t acc = klen * XXH_PRIME64_1;
		acc += XXH3_mul128_fold64(XXH_readLE64(k) ^ c->kmid[0], XXH_readLE64(k + 8) ^ c->kmid[1]);
		acc += XXH3_mul128_fold64(XXH_readLE64(t) ^ c->kmid[2], XXH_readLE64(t + 8) ^ c->kmid[3]);
		return XXH3_avalanche(acc);
	}
	if (TC_LIKELY(klen <= 16))
		return XXH3_len_0to16_64b((const xxh_u8 *)key, klen, XXH3_kSecret, seed);
	return XXH3_64bits_withSeed(key, klen, seed);
}

/* The handle's values derived from its seed and geometry for the read
 * path: c->kbf and c->kmid (tc__hash) and match()'s bounds.  tc_open, once the
 * geometry is validated. */
static inline void tc__hash_init(tc_cache *c)
{
	c->kbf[0] = (XXH_readLE64(XXH3_kSecret + 24) ^ XXH_readLE64(XXH3_kSecret + 32)) + c->seed;
	c->kbf[1] = (XXH_readLE64(XXH3_kSecret + 40) ^ XXH_readLE64(XXH3_kSecret + 48)) - c->seed;
	for (int i = 0; i < 4; i++)
		c->kmid[i] = XXH_readLE64(XXH3_kSecret + 8 * i) + (i % 2 ? -c->seed : c->seed);
	c->ref_lim = c->arena_units - 3;
	c->arena_end = (uintptr_t)c->arena + c->arena_bytes;
}

/*
 * The entry's key at EK against the caller's KEY.  Keys of 9..16 bytes in
 * two 8-byte words, without the call: EK's second word runs into the key's
 * padding (the key area is TC_ALIGN8(klen) bytes, inside the block that
 * match() has bounded), which the shift drops; each byte of EK is loaded
 * once.  Keys of 17..32 bytes as their first and last 16 bytes, which
 * overlap below 32: a byte of the overlap is loaded twice, and the keys are
 * equal only when both loads equal the caller's byte, as with memcmp (the
 * block cannot be reused under the read section that holds EK).  Longer
 * keys: memcmp.
 */
static inline __attribute__((always_inline)) bool
key_eq(const uint8_t *ek, const void *key, size_t klen)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	if (TC_LIKELY(klen > 8 && klen <= 16)) {
		/* (16 - klen) * 8, as x86 shifts take it: mod 64. */
		unsigned sh = -(unsigned)(klen * 8) & 63;
		uint64_t a0, a1, b0, b1;
		memcpy(&a0, ek, 8);
		memcpy(&a1, ek + 8, 8);
		memcpy(&b0, key, 8);
		memcpy(&b1, (const uint8_t *)key + klen - 8, 8);
		return ((a0 ^ b0) | (a1 ^ b1 >> sh) << sh) == 0;
	}
#endif
	if (TC_LIKELY(klen > 16 && klen <= 32)) {
		const uint8_t *k = key;
#if defined(__SSE2__) && !defined(TC_TSAN)
		__m128i x = _mm_cmpeq_epi8(_mm_loadu_si128((const __m128i *)(const void *)ek),
					   _mm_loadu_si128((const __m128i *)(const void *)k));
		__m128i y = _mm_cmpeq_epi8(
			_mm_loadu_si128((const __m128i *)(const void *)(ek + klen - 16)),
			_mm_loadu_si128((const __m128i *)(const void *)(k + klen - 16)));
		return _mm_movemask_epi8(_mm_and_si128(x, y)) == 0xffff;
#else
		uint64_t a[4], b[4];
		memcpy(&a[0], ek, 16);
		memcpy(&a[2], ek + klen - 16, 16);
		memcpy(&b[0], k, 16);
		memcpy(&b[2], k + klen - 16, 16);
		return ((a[0] ^ b[0]) | (a[1] ^ b[1]) | (a[2] ^ b[2]) | (a[3] ^ b[3])) == 0;
#endif
	}
	return memcmp(ek, key, klen) == 0;
}

/* Block bytes of size class CLS (tc__class_size) as a table indexed by the
 * header's 8-bit field: one load on the read path instead of the arithmetic,
 * and 0 for the classes past TC_CLASSES_USED, which no entry fits. */
#define CLS_SZ(k) ((k) >= TC_CLASSES_USED ? 0u : (k) == 0 ? 64u : \
		   (1u << (6 + ((k) - 1) / 4)) + ((k) - 1) % 4 * (1u << (4 + ((k) - 1) / 4)) + \
		   (1u << (4 + ((k) - 1) / 4)))
#define CLS_SZ4(k)  CLS_SZ(k), CLS_SZ((k) + 1), CLS_SZ((k) + 2), CLS_SZ((k) + 3)
#define CLS_SZ16(k) CLS_SZ4(k), CLS_SZ4((k) + 4), CLS_SZ4((k) + 8), CLS_SZ4((k) + 12)
static const uint32_t class_bytes[256] = {
	CLS_SZ16(0), CLS_SZ16(16), CLS_SZ16(32), CLS_SZ16(48), CLS_SZ16(64)
	/* the rest: 0 */
};
_Static_assert(CLS_SZ(0) == 64 && CLS_SZ(1) == 80 && CLS_SZ(4) == 128 && CLS_SZ(5) == 160 &&
	       CLS_SZ(TC_CLASSES_USED - 1) == 1310720u && CLS_SZ(TC_CLASSES_USED) == 0,
	       "class_bytes is tc__class_size");

/*
 * Validate the entry named by slot word W and, when it is the entry of
 * (hash, key, kind), fill V and return 1.  0: another key.  TC_ECORRUPT: the
 * block is out of bounds or its header is impossible.
 */
static inline __attribute__((always_inline)) int
match(tc_cache *c, uint64_t w, uint64_t hash, const void *key, size_t klen, uint32_t kind,
      struct view *v)
{
	/* tc__block's bounds in one compare: ref - 1 wraps when ref is 0, and
	 * a header of 64 bytes (4 units) fits before the arena's end. */
	uint64_t ref = TC_SW_REF(w);
	if (TC_UNLIKELY(ref - 1 >= c->ref_lim))
		return TC_ECORRUPT;
	struct tc_entry *e = (struct tc_entry *)(c->arena + (ref - 1) * TC_BLOCK_UNIT);
	if (TC_UNLIKELY(tc__ld_ne(&e->hash, hash)))
		return 0;
	uint32_t ek = tc__ld(&e->klen), cls = tc__ld(&e->cls), vlen = tc__ld(&e->vlen);
	if (TC_UNLIKELY(ek != klen || tc__ld_ne(&e->kind, (uint8_t)kind)))
		return 0;
	uint64_t size = class_bytes[(uint8_t)cls]; /* 0 for a class out of range */
	uint64_t vo = TC_ENTRY_HDR + TC_ALIGN8(klen); /* the value's offset */
	if (TC_UNLIKELY(vlen > TC_VALUE_MAX || (uintptr_t)e + size > c->arena_end ||
			vo + vlen > size))
		return TC_ECORRUPT;
	if (TC_UNLIKELY(!key_eq(tc__ekey(e), key, klen)))
		return 0;
	v->e = e;
	v->val = (const uint8_t *)e + vo;
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
 * The slots of bucket B whose top 16 bits (state and tag) are K32's top 16
 * bits, FINAL | tag (bucket_scan, bucket_scan_hash), as a mask: bit 2j + 1
 * stands for slot word w[j - 1] (j = 1..7; bit 1, the meta word's, is never
 * set); SCAN_WORD(m) is the j of its lowest bit.  W receives the bucket's
 * eight words (meta first) as loaded, each loaded once: the caller takes a
 * candidate's word from W, never from B again.  On x86-64 two shufps
 * gather the eight words' high halves into two registers, in order, two
 * SSE2 compares of 16-bit lanes test their top 16 bits (state and tag), and
 * one signed pack keeps the sign of each word's top lane (a true lane is
 * -1, so the 32-bit half holding it is negative and saturates to a negative
 * 16-bit value; a false one is 0 over a lane of 0 or 0xffff, which stays
 * non-negative) as bit 2j + 1 of one movemask.  Each aligned 8-byte
 * word of an aligned 16-byte load is read atomically (Intel SDM vol. 3A,
 * 9.1.1), and the loads keep their order (TSO), so this reads what the
 * word-by-word loop below reads.  Under ThreadSanitizer, and elsewhere,
 * that loop.
 */
#define SCAN_WORD(m) ((unsigned)__builtin_ctz(m) >> 1)

/* W[SCAN_WORD(M)] (M not 0), addressed from the bit's index itself: word j
 * is at byte 8j = 4 * (2j + 1) - 4, one scaled index, no shift.  On x86-64
 * the index is found in place by a 32-bit bsf (defined for M not 0), whose
 * result is the zero-extended 64-bit register: gcc 12 sign-extends
 * __builtin_ctz's int before it scales it. */
static inline uint64_t scan_word(const uint64_t w[8], uint32_t m)
{
	uint64_t i = m, x;
#if defined(__x86_64__)
	__asm__("bsf %k0, %k0" : "+r"(i) : : "cc");
#else
	i = (unsigned)__builtin_ctz(m);
#endif
	memcpy(&x, (const uint8_t *)w + 4 * i - 4, sizeof(x));
	return x;
}

/* The scan described above SCAN_WORD. */
static inline uint32_t scan_line(const struct tc_bucket *b, uint32_t k32, uint64_t w[8])
{
#if defined(__SSE2__) && !defined(TC_TSAN)
	const volatile __m128i *p = (const volatile __m128i *)(const void *)b;
	__m128i x0 = p[0], x1 = p[1], x2 = p[2], x3 = p[3];
	_mm_storeu_si128((__m128i *)(void *)&w[0], x0);
	_mm_storeu_si128((__m128i *)(void *)&w[2], x1);
	_mm_storeu_si128((__m128i *)(void *)&w[4], x2);
	_mm_storeu_si128((__m128i *)(void *)&w[6], x3);
	__m128i k = _mm_set1_epi32((int)k32);
	/* The high halves of the eight words, in order (shufps takes lanes 1
	 * and 3 of each of two registers); their top 16-bit lanes compared. */
	__m128i h0 = _mm_castps_si128(_mm_shuffle_ps(_mm_castsi128_ps(x0), _mm_castsi128_ps(x1),
						     _MM_SHUFFLE(3, 1, 3, 1)));
	__m128i h1 = _mm_castps_si128(_mm_shuffle_ps(_mm_castsi128_ps(x2), _mm_castsi128_ps(x3),
						     _MM_SHUFFLE(3, 1, 3, 1)));
	__m128i e = _mm_packs_epi32(_mm_cmpeq_epi16(h0, k), _mm_cmpeq_epi16(h1, k));
	return (uint32_t)_mm_movemask_epi8(e) & 0xaaa8u;
#else
	uint32_t m = 0, want = k32 >> 16;
	w[0] = tc__ld(&b->meta);
	for (int j = 1; j <= TC_BUCKET_SLOTS; j++) {
		w[j] = tc__ld(&b->w[j - 1]);
		m |= (uint32_t)(w[j] >> 48 == want) << (2 * j + 1);
	}
	return m;
#endif
}

/* The operand of scan_line: FINAL | TAG in its top 16 bits (the low 16
 * meet lanes whose result the pack drops). */
static inline uint32_t bucket_scan(const struct tc_bucket *b, uint64_t tag, uint64_t w[8])
{
	return scan_line(b, (uint32_t)(TC_SW_FINAL >> 48 | tag) << 16, w);
}

/* bucket_scan(B, TC_TAG_OF(HASH), W), the operand taken from HASH in one
 * shift: the low 32 bits of hash >> 34 hold the tag (hash bits 50..63) in
 * bits 16..29 and zeros above, where FINAL's top bits go; the low 16 bits
 * (hash bits 34..49) are dropped as above. */
static inline uint32_t bucket_scan_hash(const struct tc_bucket *b, uint64_t hash, uint64_t w[8])
{
	return scan_line(b, (uint32_t)(hash >> 34) | (uint32_t)(TC_SW_FINAL >> 32), w);
}
_Static_assert(TC_SW_FINAL == 1ull << 63 && TC_TAG_OF(~0ull) == 0x3fff,
	       "bucket_scan_hash: the tag is the hash's top 14 bits, FINAL the word's top bit");

/*
 * lookup() past its first try: the candidates M left in the home bucket
 * of HASH, whose words (meta first) the caller loaded into W0, with BAD the
 * error of a candidate already tried; then the buckets up to the home's
 * largest displacement (from W0's meta word).  Out of line: a hit on the
 * first candidate and a miss in a bucket with no displacement never come
 * here.  The home's index is computed here, so that the inline path does
 * not keep it for this call.
 */
static __attribute__((noinline, unused)) int
lookup_more(tc_cache *c, uint64_t hash, const void *key, size_t klen, uint32_t kind,
	    const uint64_t w0[8], uint32_t m, int bad, uint64_t **slotp, uint64_t *wp,
	    struct view *v)
{
	uint64_t home = hash & c->bmask, tag = TC_TAG_OF(hash), w[8];
	memcpy(w, w0, sizeof(w));
	struct tc_bucket *b = &c->index[home];
	uint64_t md = w[0] & 0xffffffffu;
	md = md > c->bmask ? c->bmask : md;
	for (uint64_t d = 0;;) {
		for (; m; m &= m - 1) {
			unsigned j = SCAN_WORD(m);
			int r = match(c, w[j], hash, key, klen, kind, v);
			if (TC_LIKELY(r == 1)) {
				*slotp = &b->w[j - 1];
				*wp = w[j];
				return 0;
			}
			if (r < 0)
				bad = r;
		}
		if (++d > md)
			break;
		b = &c->index[(home + d) & c->bmask];
		m = bucket_scan(b, tag, w);
	}
	return bad ? bad : -ENOENT;
}

/*
 * lookup() once the home bucket of HASH is scanned: W and M as
 * bucket_scan() gave them, loaded inside the caller's read section (by
 * tc_get_many's second pass, earlier in the same section).  *WALKP: false
 * when the answer came from W alone (its first candidate, or a miss with
 * no displacement), true when the lookup went on past W's first candidate
 * in a bucket with displacement (lookup_more, which may load the buckets
 * after the home one).
 */
static inline __attribute__((always_inline)) int
lookup_scanned(tc_cache *c, uint64_t hash, const void *key, size_t klen, uint32_t kind,
	       const uint64_t w[8], uint32_t m, uint64_t **slotp, uint64_t *wp,
	       struct view *v, bool *walkp)
{
	int bad = 0;
	*walkp = false;
	if (TC_LIKELY(m != 0)) {
		unsigned j = SCAN_WORD(m);
		uint64_t wj = scan_word(w, m);
		int r = match(c, wj, hash, key, klen, kind, v);
		if (TC_LIKELY(r == 1)) {
			*slotp = &c->index[hash & c->bmask].w[j - 1];
			*wp = wj;
			return 0;
		}
		m &= m - 1;
		bad = r;
	} else if ((uint32_t)w[0] == 0) {
		return -ENOENT;
	}
	*walkp = (uint32_t)w[0] != 0;
	/* Out-parameters of their own, so that the caller's stay in registers
	 * on the inline path. */
	struct view v2;
	uint64_t *slot2, w2;
	int rc = lookup_more(c, hash, key, klen, kind, w, m, bad, &slot2, &w2, &v2);
	if (rc == 0) {
		*v = v2;
		*slotp = slot2;
		*wp = w2;
	}
	return rc;
}

/*
 * Find the published slot of (hash, key, kind).  0 found, -ENOENT, TC_ECORRUPT.
 * The home bucket's meta word comes with its slots, in one load of the line.
 * Inline: the home bucket's first candidate, and the miss of a home bucket
 * with no candidate and no displacement; the rest in lookup_more().
 */
static inline __attribute__((always_inline)) int
lookup(tc_cache *c, uint64_t hash, const void *key, size_t klen, uint32_t kind,
       uint64_t **slotp, uint64_t *wp, struct view *v)
{
	uint64_t w[8];
	bool walk;
	uint32_t m = bucket_scan_hash(&c->index[hash & c->bmask], hash, w);
	return lookup_scanned(c, hash, key, klen, kind, w, m, slotp, wp, v, &walk);
}

static inline bool expired(int64_t expires, int64_t now)
{
	return expires != 0 && expires <= now;
}

static inline uint64_t next_version(tc_cache *c, uint64_t hash, uint64_t floor)
{
	uint64_t *p = &c->h->ver[(hash >> 32) % TC_VER_SHARDS].v;
	for (;;) {
		uint64_t cur = tc__ld(p), top = cur > floor ? cur : floor;
		/* Nothing above the top (2^64 writes never happen: a counter or
		 * an entry's version was scribbled there): 0, never a wrap to
		 * versions already handed out; the write is TC_ECORRUPT. */
		if (TC_UNLIKELY(top == UINT64_MAX))
			return 0;
		if (tc__cas(p, cur, top + 1) == cur)
			return top + 1;
	}
}

#endif /* TC_INDEX_H */
