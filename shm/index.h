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

#define RETRY 1            /* internal: start the operation again */

/* A validated snapshot of an entry's header. */
struct view {
	struct tc_entry *e;
	const uint8_t *val;
	uint64_t version;
	int64_t expires;
	uint32_t vlen, type, cls;
};

static inline uint64_t tc__hash(tc_cache *c, const void *key, size_t klen, uint32_t kind)
{
	return XXH3_64bits_withSeed(key, klen, c->seed + kind * 0x9E3779B97F4A7C15ull);
}

/*
 * Validate the entry named by slot word W and, when it is the entry of
 * (hash, key, kind), fill V and return 1.  0: another key.  TC_ECORRUPT: the
 * block is out of bounds or its header is impossible.
 */
static inline int match(tc_cache *c, uint64_t w, uint64_t hash, const void *key, size_t klen,
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

/* Find the published slot of (hash, key, kind).  0 found, -ENOENT, TC_ECORRUPT. */
static inline int lookup(tc_cache *c, uint64_t hash, const void *key, size_t klen, uint32_t kind,
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

static inline bool expired(int64_t expires, int64_t now)
{
	return expires != 0 && expires <= now;
}

static inline uint64_t next_version(tc_cache *c, uint64_t hash, uint64_t floor)
{
	uint64_t *p = &c->h->ver[(hash >> 32) % TC_VER_SHARDS].v;
	for (;;) {
		uint64_t cur = tc__ld(p);
		uint64_t nv = (cur > floor ? cur : floor) + 1;
		if (tc__cas(p, cur, nv) == cur)
			return nv;
	}
}

#endif /* TC_INDEX_H */
