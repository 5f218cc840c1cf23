/* SPDX-License-Identifier: MIT */
/*
 * csum.c - value checksums, a segment option (TC_CHECKSUM at creation,
 * TC_OPT_CHECKSUM in the header).
 *
 * Without them a scribble into a value's own bytes is returned as that
 * value: every other check of the library (bounds, sizes, kinds, lists) is
 * about where bytes are, not what they hold.  With them every block that a
 * read returns a value from carries, after its value, an XXH3-64 of the
 * value seeded with an XXH3-64 of the metadata returned with it; the writer
 * computes it over its private block before publishing, every read checks
 * the value as it returns it (the caller's copy for tc_get, the block's
 * bytes for the zero-copy reads) and answers TC_ECORRUPT on a mismatch.
 * Layout in layout.h at tc_entry; cost in docs/benchmarks.md.
 *
 * A file of its own so that the hash calls here do not change how the
 * compiler inlines XXH3 into kv.c's read path (index.h).
 */
#include "internal.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

/*
 * The checksum of a value: XXH3-64 of its bytes, seeded with an XXH3-64 of
 * the metadata a read returns with it or decides by (version, expiry,
 * length, type, and aux: a DTO element's run generation, an anchor's; 0
 * for the kinds tc__write writes) under the segment seed xor the key's
 * hash.  So a scribble into the value, into that metadata, or a value
 * moved under another key all show.  The key itself is compared whole by
 * every lookup (a walk checks it through its hash).  32 bytes of metadata
 * take XXH3's path of 17..128 bytes, as 24 did: one more word costs a
 * store.
 */
uint64_t tc__csum(tc_cache *c, uint64_t hash, uint64_t version, int64_t expires,
		  uint32_t vlen, uint32_t type, uint32_t aux, const void *val)
{
	uint64_t m[4] = { version, (uint64_t)expires, (uint64_t)vlen << 32 | type, aux };
	uint64_t seed = XXH3_64bits_withSeed(m, sizeof(m), c->seed ^ hash);
	return XXH3_64bits_withSeed(val, vlen, seed);
}

static inline uint64_t *csum_slot(const struct tc_entry *e, size_t klen, uint32_t vlen)
{
	return (uint64_t *)((uintptr_t)e + TC_ENTRY_HDR + TC_ALIGN8(klen) + TC_ALIGN8(vlen));
}

/* Write the checksum of block E, fully built by the caller and not yet
 * published (so its fields are the caller's own), of a key of KLEN bytes.
 * The block was allocated with tc__entry_need(). */
void tc__csum_seal(tc_cache *c, struct tc_entry *e, size_t klen)
{
	uint32_t vlen = e->vlen;
	*csum_slot(e, klen, vlen) = tc__csum(c, e->hash, e->version, e->expires_ms, vlen,
					     e->type, e->aux, tc__eval(e, (uint32_t)klen));
}

/*
 * Check the value VAL as a read returns it (a copy, or the block's bytes for
 * zero-copy reads) with the metadata it returns, against the checksum of
 * entry E of (HASH, KLEN) in class CLS: every argument is the caller's one
 * load of it (AUX: 0 for the kinds tc__write writes, which is what they
 * seal), and the stored checksum is loaded once here.  0, or TC_ECORRUPT
 * (counted in tc_stats.checksum_failures) when the checksum does not fit
 * the class or does not match.
 */
int tc__csum_check(tc_cache *c, const struct tc_entry *e, uint64_t hash, size_t klen,
		   uint32_t cls, uint64_t version, int64_t expires, uint32_t vlen,
		   uint32_t type, uint32_t aux, const void *val)
{
	if (tc__entry_bytes_cs(klen, vlen) > tc__class_size(cls) ||
	    tc__ld(csum_slot(e, klen, vlen)) !=
		    tc__csum(c, hash, version, expires, vlen, type, aux, val)) {
		tc__add(&c->h->csum_bad, 1);
		return TC_ECORRUPT;
	}
	return 0;
}
