/* SPDX-License-Identifier: MIT */
/*
 * test_readbounds.c - the read path's bounds, met exactly: an entry whose
 * block ends the arena (the last byte of the mapping, a PROT_NONE page after
 * it) read at every key length 1..64 with its value up to the block's last
 * byte, one byte past it, a class byte past the arena or out of range, a
 * slot word naming each of the last units of the arena, and every key
 * length against entries of every length under the same hash.  Each case
 * is read through every read call (tc_get, tc_get_with, tc_get_hashed,
 * tc_exists, tc_peek, tc_get_many, tc_peek_many), on a plain handle (the
 * inline paths), under LRU and with checksums (the general paths): they
 * answer alike, a value only when it is the entry's, whole, TC_ECORRUPT for
 * a header that does not fit, and nothing reads past the block (the guard
 * page) or past the caller's key (which ends a page too).
 * White-box (internal.h, layout.h): the entries are written by hand into
 * the arena's uncarved end, and their slot words into their home buckets.
 */
#include "whitebox.h"

#include <sys/mman.h>

#define MEMORY TC_MIN_MEMORY /* a multiple of the page: the arena ends the mapping */

static size_t pg;

/* wb_guard_after, asserted: the arena ends the mapping, so the PROT_NONE
 * page follows the arena's last byte. */
static void guard_after(tc_cache *c)
{
	pg = (size_t)sysconf(_SC_PAGESIZE);
	assert_ptr_equal(c->arena + c->arena_bytes, c->base + c->size);
	assert_int_equal(wb_guard_after(c), 0);
	assert_int_equal(c->arena_end, (uintptr_t)c->base + c->size);
}

static void unguard(tc_cache *c)
{
	uint8_t *end = c->base + c->size;
	tc_close(c);
	munmap(end, pg);
}

static tc_cache *open_guarded(const char *name, int eviction, unsigned flags)
{
	tc_cache *c = wb_create_flags(name, 1024, MEMORY, 8, eviction, flags);
	guard_after(c);
	return c;
}

/* A caller's key of KLEN bytes that ends a page, a PROT_NONE page after it. */
static uint8_t *key_page;
static const uint8_t *key_at_end(const void *key, size_t klen)
{
	if (!key_page) {
		key_page = mmap(NULL, 2 * pg, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		assert_true(key_page != MAP_FAILED);
		assert_int_equal(mprotect(key_page + pg, pg, PROT_NONE), 0);
	}
	memcpy(key_page + pg - klen, key, klen);
	return key_page + pg - klen;
}

/* The i-th byte of the keys of this file: keys of different lengths share
 * their first bytes, as prefixes of one string. */
static uint8_t kb(size_t i)
{
	return (uint8_t)('A' + i * 7 % 53);
}

static uint8_t vb(size_t i, size_t klen)
{
	return (uint8_t)(i * 13 + klen * 3 + 1);
}

/*
 * Write by hand the entry of a key of KLEN bytes (kb), hash HASH, in a
 * block of class CLS at arena byte OFF, its value VLEN bytes (vb), the
 * key's padding filled with the bytes that follow the key in kb (so that a
 * compare of more than KLEN bytes still matches a longer caller's key),
 * and publish it in a free slot of HASH's home bucket.  Returns the slot.
 * The arena at OFF is past what was ever carved; with checksums the
 * entry is sealed as a write seals it.
 */
static uint64_t *plant(tc_cache *c, uint64_t off, size_t klen, uint64_t hash, uint32_t cls,
		       uint32_t vlen)
{
	assert_true(tc__carved(c) * TC_BLOCK_UNIT <= off);
	assert_int_equal(off % TC_BLOCK_UNIT, 0);
	struct tc_entry *e = (struct tc_entry *)(void *)(c->arena + off);
	uint64_t room = c->arena_bytes - off;
	memset(e, 0xee, room < 4096 ? room : 4096);
	memset(e, 0, sizeof(*e));
	e->hash = hash;
	e->version = 5;
	e->vlen = vlen;
	e->type = 9;
	e->klen = (uint16_t)klen;
	e->cls = (uint8_t)cls;
	e->cls_check = TC_CLS_CHECK(cls);
	e->kind = TC_KIND_KEY;
	e->state = TC_BLK_LIVE;
	/* Key, padding and value, as far as the arena goes. */
	uint8_t *k = (uint8_t *)e + TC_ENTRY_HDR, *end = c->arena + c->arena_bytes;
	for (size_t i = 0; i < TC_ALIGN8(klen) && k + i < end; i++)
		k[i] = kb(i);
	uint8_t *v = k + TC_ALIGN8(klen);
	for (size_t i = 0; i < vlen && v + i < end; i++)
		v[i] = vb(i, klen);
	if (c->csum && TC_ENTRY_HDR + TC_ALIGN8(klen) + TC_ALIGN8(vlen) + 8 <= tc__class_size(cls) &&
	    off + tc__class_size(cls) <= c->arena_bytes)
		tc__csum_seal(c, e, klen);
	struct tc_bucket *b = &c->index[hash & c->bmask];
	for (int j = 0; j < TC_BUCKET_SLOTS; j++)
		if (tc__ld(&b->w[j]) == 0) {
			tc__st(&b->w[j], TC_SW_FINAL | TC_TAG_OF(hash) << 48 |
						 (off / TC_BLOCK_UNIT + 1));
			return &b->w[j];
		}
	fail_msg("home bucket full");
	return NULL;
}

/* A slot word naming REF under HASH's tag, in its home bucket. */
static uint64_t *plant_word(tc_cache *c, uint64_t hash, uint64_t ref)
{
	struct tc_bucket *b = &c->index[hash & c->bmask];
	for (int j = 0; j < TC_BUCKET_SLOTS; j++)
		if (tc__ld(&b->w[j]) == 0) {
			tc__st(&b->w[j], TC_SW_FINAL | TC_TAG_OF(hash) << 48 | ref);
			return &b->w[j];
		}
	fail_msg("home bucket full");
	return NULL;
}

static void *grow(const tc_meta *m, void *arg)
{
	static uint8_t big[8192];
	(void)arg;
	return m->len <= sizeof(big) ? big : NULL;
}

/*
 * Every read call for the caller's key of KLEN bytes (kb, ending a page)
 * must answer WANT; with 0, the value is the planted one of VLEN bytes
 * (vb) and metadata, whole.  WHAT names the case in a failure.
 */
static void read_all(tc_cache *c, size_t klen, int want, uint32_t vlen, const char *what)
{
	uint8_t kbuf[TC_KEY_MAX];
	for (size_t i = 0; i < klen; i++)
		kbuf[i] = kb(i);
	const uint8_t *key = key_at_end(kbuf, klen);
	static uint8_t buf[8192], exp[8192];
	for (size_t i = 0; i < vlen && i < sizeof(exp); i++)
		exp[i] = vb(i, klen);
	uint64_t hash = tc__hash(c, key, klen, TC_KIND_KEY);
	const char *names[] = { "tc_get", "tc_get_with", "tc_get_hashed", "tc_peek",
				"tc_get_many", "tc_peek_many" };
	for (int p = 0; p < 6; p++) {
		tc_meta m = { 0 };
		const void *pv = NULL;
		const uint8_t *out = buf;
		int rc;
		memset(buf, 0, vlen < sizeof(buf) ? vlen : sizeof(buf));
		switch (p) {
		case 0:
			rc = tc_get(c, key, klen, buf, sizeof(buf), &m);
			break;
		case 1: /* a buffer too small: the callback's */
			rc = tc_get_with(c, key, klen, buf, vlen ? vlen - 1 : 0, &m, grow, NULL);
			if (rc == 0 && vlen)
				out = grow(&m, NULL);
			break;
		case 2:
			rc = tc_get_hashed(c, hash, key, klen, buf, sizeof(buf), &m, NULL, NULL);
			break;
		case 3:
			ASSERT_RC(0, tc_read_lock(c));
			rc = tc_peek(c, key, klen, &pv, &m);
			if (rc == 0)
				memcpy(buf, pv, vlen);
			tc_read_unlock(c);
			break;
		case 4: {
			tc_req r[1] = { { .key = key, .klen = klen, .buf = buf, .cap = sizeof(buf) } };
			int n = tc_get_many(c, r, 1);
			assert_int_equal(n, r[0].rc == 0);
			rc = r[0].rc;
			m = r[0].meta;
			break;
		}
		default: {
			tc_req r[1] = { { .key = key, .klen = klen } };
			const void *v[1];
			ASSERT_RC(0, tc_read_lock(c));
			int n = tc_peek_many(c, r, 1, v);
			assert_int_equal(n, r[0].rc == 0);
			rc = r[0].rc;
			m = r[0].meta;
			if (rc == 0)
				memcpy(buf, v[0], vlen);
			tc_read_unlock(c);
			break;
		}
		}
		if (rc != want)
			fail_msg("%s, key of %zu bytes: %s returned %d (%s), expected %d (%s)", what,
				 klen, names[p], rc, tc_strerror(rc), want, tc_strerror(want));
		if (rc == 0) {
			if (m.len != vlen || m.type != 9 || m.version != 5 || m.expires_ms != 0)
				fail_msg("%s, key of %zu bytes: %s's metadata: len %zu type %u "
					 "version %llu", what, klen, names[p], m.len, m.type,
					 (unsigned long long)m.version);
			if (vlen && memcmp(out, exp, vlen) != 0)
				fail_msg("%s, key of %zu bytes: %s's value is not the entry's",
					 what, klen, names[p]);
		}
	}
	bool ex = tc_exists(c, key, klen);
	if (ex != (want == 0))
		fail_msg("%s, key of %zu bytes: tc_exists said %d with tc_get %d", what, klen,
			 ex, want);
}

/* The smallest class that holds a header, KLEN key bytes and MIN value
 * bytes, with a checksum's 8 when the segment has them. */
static uint32_t class_for(tc_cache *c, size_t klen, uint32_t min)
{
	return tc__class_of(TC_ENTRY_HDR + TC_ALIGN8(klen) + TC_ALIGN8(min) + (c->csum ? 8 : 0));
}

static const struct {
	int eviction;
	unsigned flags;
	const char *name;
} kinds[] = {
	{ TC_EVICT_NONE, 0, "plain" },
	{ TC_EVICT_LRU, 0, "LRU" },
	{ TC_EVICT_NONE, TC_CHECKSUM, "checksums" },
};

/*
 * An entry whose block ends the arena, at every key length 1..64: its value
 * up to the block's last byte reads whole; one byte longer is TC_ECORRUPT
 * (the value would end past the block, here past the mapping); a class
 * byte one larger (the block past the arena's end), out of range
 * (TC_CLASSES_USED, 255), or 0 (64 bytes: no room for a key) is
 * TC_ECORRUPT; a value length at TC_VALUE_MAX + 1 too.
 */
static void test_an_entry_that_ends_the_arena_reads_to_its_last_byte(void **state)
{
	(void)state;
	for (size_t kd = 0; kd < FX_ARRAY_SIZE(kinds); kd++) {
		char name[64];
		tc_cache *c = open_guarded(fx_name(name), kinds[kd].eviction, kinds[kd].flags);
		for (size_t klen = 1; klen <= 64; klen++) {
			uint8_t kbuf[64];
			for (size_t i = 0; i < klen; i++)
				kbuf[i] = kb(i);
			uint64_t hash = tc__hash(c, kbuf, klen, TC_KIND_KEY);
			uint32_t cls = class_for(c, klen, 1 + (uint32_t)klen % 40);
			uint64_t size = tc__class_size(cls), off = c->arena_bytes - size;
			uint32_t vo = TC_ENTRY_HDR + TC_ALIGN8(klen);
			/* With checksums the value ends 8 bytes before the block,
			 * rounded down to 8; without, at its last byte. */
			uint32_t vmax = (uint32_t)size - vo - (c->csum ? 8 : 0);
			uint64_t *slot = plant(c, off, klen, hash, cls, vmax);
			read_all(c, klen, 0, vmax, kinds[kd].name);
			struct tc_entry *e = (struct tc_entry *)(void *)(c->arena + off);
			if (!c->csum) {
				tc__st(&e->vlen, vmax + 1);
				read_all(c, klen, TC_ECORRUPT, 0, "value one byte past the block");
				tc__st(&e->vlen, TC_VALUE_MAX + 1);
				read_all(c, klen, TC_ECORRUPT, 0, "value past TC_VALUE_MAX");
				tc__st(&e->vlen, vmax);
			}
			static const uint32_t bad_cls[] = { 0, 255, TC_CLASSES_USED };
			for (size_t i = 0; i <= FX_ARRAY_SIZE(bad_cls); i++) {
				uint32_t bc = i < FX_ARRAY_SIZE(bad_cls) ? bad_cls[i] : cls + 1;
				tc__st(&e->cls, (uint8_t)bc);
				read_all(c, klen, TC_ECORRUPT, 0, "class byte past the arena");
			}
			tc__st(&e->cls, (uint8_t)cls);
			read_all(c, klen, 0, vmax, kinds[kd].name);
			tc__st(slot, 0);
			read_all(c, klen, -ENOENT, 0, "unpublished");
		}
		unguard(c);
		tc_unlink(name);
	}
}

/*
 * Slot words naming each of the last units of the arena (a header there
 * would cross the arena's end, or start at it), unit 0 and the largest
 * ref: TC_ECORRUPT from every read call, without a load past the arena
 * (the guard page).  The last unit where a 64-byte header fits holds one
 * that reads (its hash and key the caller's, class 0): TC_ECORRUPT too,
 * its block of 64 bytes having no room for a key.
 */
static void test_a_ref_at_the_arena_end_is_corrupt(void **state)
{
	(void)state;
	for (size_t kd = 0; kd < FX_ARRAY_SIZE(kinds); kd++) {
		char name[64];
		tc_cache *c = open_guarded(fx_name(name), kinds[kd].eviction, kinds[kd].flags);
		for (size_t klen = 1; klen <= 40; klen += 13) {
			uint8_t kbuf[64];
			for (size_t i = 0; i < klen; i++)
				kbuf[i] = kb(i);
			uint64_t hash = tc__hash(c, kbuf, klen, TC_KIND_KEY);
			/* The last 64 bytes: a header whose class has no room. */
			uint64_t *slot = plant(c, c->arena_bytes - 64, klen, hash, 0, 0);
			read_all(c, klen, TC_ECORRUPT, 0, "a header in the arena's last 64 bytes");
			tc__st(slot, 0);
			uint64_t refs[] = { c->arena_units - 2, c->arena_units - 1, c->arena_units,
					    c->arena_units + 1, 0, 0xffffffffffffull };
			for (size_t i = 0; i < FX_ARRAY_SIZE(refs); i++) {
				/* Units ref - 1 = arena_units - 3 .. : a header
				 * there crosses the end; what lies before the end
				 * is the key's hash (a check that let the ref
				 * through would find it). */
				if (refs[i] && refs[i] <= c->arena_units)
					memcpy(c->arena + (refs[i] - 1) * TC_BLOCK_UNIT, &hash,
					       8);
				slot = plant_word(c, hash, refs[i]);
				read_all(c, klen, TC_ECORRUPT, 0, "a ref past the last header");
				tc__st(slot, 0);
			}
		}
		unguard(c);
		tc_unlink(name);
	}
}

/*
 * Keys of every length 1..64 against entries of every length 1..64 under
 * the same hash (the caller's key's: the entry's is written so), the
 * entry's key bytes the same string's prefix and its padding that string's
 * next bytes, the block ending the arena: only the entry of the caller's
 * length is the key; every other is -ENOENT (a compare that took the
 * padding or fewer bytes for the key would answer another key's value).
 */
static void test_every_key_length_against_entries_of_every_length(void **state)
{
	(void)state;
	for (size_t kd = 0; kd < FX_ARRAY_SIZE(kinds); kd++) {
		char name[64];
		tc_cache *c = open_guarded(fx_name(name), kinds[kd].eviction, kinds[kd].flags);
		for (size_t el = 1; el <= 64; el++) {
			for (size_t kl = 1; kl <= 64; kl++) {
				uint8_t kbuf[64];
				for (size_t i = 0; i < kl; i++)
					kbuf[i] = kb(i);
				uint64_t hash = tc__hash(c, kbuf, kl, TC_KIND_KEY);
				uint32_t vlen = 24;
				uint32_t cls = class_for(c, el, vlen);
				uint64_t off = c->arena_bytes - tc__class_size(cls);
				uint64_t *slot = plant(c, off, el, hash, cls, vlen);
				char what[64];
				snprintf(what, sizeof(what), "%s, an entry of %zu bytes",
					 kinds[kd].name, el);
				read_all(c, kl, el == kl ? 0 : -ENOENT, vlen, what);
				tc__st(slot, 0);
			}
		}
		unguard(c);
		tc_unlink(name);
	}
}

/*
 * The same key lengths with one byte of the entry's key changed, each
 * position in turn (its hash still the caller's): -ENOENT from every call;
 * and the byte restored, the value.
 */
static void test_a_key_that_differs_in_any_byte_is_another_key(void **state)
{
	(void)state;
	char name[64];
	tc_cache *c = open_guarded(fx_name(name), TC_EVICT_NONE, 0);
	for (size_t kl = 1; kl <= 64; kl++) {
		uint8_t kbuf[64];
		for (size_t i = 0; i < kl; i++)
			kbuf[i] = kb(i);
		uint64_t hash = tc__hash(c, kbuf, kl, TC_KIND_KEY);
		uint32_t cls = class_for(c, kl, 8);
		uint64_t off = c->arena_bytes - tc__class_size(cls);
		uint64_t *slot = plant(c, off, kl, hash, cls, 8);
		uint8_t *ek = c->arena + off + TC_ENTRY_HDR;
		for (size_t i = 0; i < kl; i++) {
			ek[i] ^= 0x80;
			read_all(c, kl, -ENOENT, 0, "a key byte changed");
			ek[i] ^= 0x81;
			read_all(c, kl, -ENOENT, 0, "a key byte changed");
			ek[i] ^= 0x01;
		}
		read_all(c, kl, 0, 8, "the key restored");
		tc__st(slot, 0);
	}
	unguard(c);
	tc_unlink(name);
}

/*
 * The largest class (1.25 MiB) holds more than TC_VALUE_MAX bytes of value:
 * an entry there that ends the arena, its length at TC_VALUE_MAX, is a
 * value (-E2BIG for a small buffer, the value whole for one that fits it,
 * tc_exists true); one byte more, inside the block still, is TC_ECORRUPT
 * from every call (no write makes such a value).
 */
static void test_a_value_past_the_most_is_corrupt_in_the_largest_class(void **state)
{
	(void)state;
	char name[64];
	tc_cache *c = wb_create_flags(fx_name(name), 1024, 2u << 20, 8, TC_EVICT_NONE, 0);
	guard_after(c);
	const size_t klen = 12;
	uint8_t kbuf[16];
	for (size_t i = 0; i < klen; i++)
		kbuf[i] = kb(i);
	uint64_t hash = tc__hash(c, kbuf, klen, TC_KIND_KEY);
	uint32_t cls = TC_CLASSES_USED - 1;
	uint64_t off = c->arena_bytes - tc__class_size(cls);
	assert_true(tc__class_size(cls) > TC_ENTRY_HDR + 16 + TC_VALUE_MAX + 1);
	plant(c, off, klen, hash, cls, TC_VALUE_MAX);
	struct tc_entry *e = (struct tc_entry *)(void *)(c->arena + off);
	uint8_t *big = malloc(TC_VALUE_MAX + 1), small[16];
	assert_non_null(big);
	tc_meta m;
	const void *pv;
	for (int past = 0; past < 2; past++) {
		tc__st(&e->vlen, TC_VALUE_MAX + (uint32_t)past);
		int want = past ? TC_ECORRUPT : -E2BIG;
		ASSERT_RC(want, tc_get(c, kbuf, klen, small, sizeof(small), &m));
		ASSERT_RC(want, tc_get_hashed(c, hash, kbuf, klen, small, sizeof(small), &m,
					      NULL, NULL));
		assert_int_equal(tc_exists(c, kbuf, klen), !past);
		ASSERT_RC(past ? TC_ECORRUPT : 0,
			  tc_get(c, kbuf, klen, big, TC_VALUE_MAX + 1, &m));
		if (!past) {
			assert_int_equal(m.len, TC_VALUE_MAX);
			assert_int_equal(big[TC_VALUE_MAX - 1], vb(TC_VALUE_MAX - 1, klen));
		}
		tc_req r[1] = { { .key = kbuf, .klen = klen, .buf = small, .cap = sizeof(small) } };
		ASSERT_RC(0, tc_get_many(c, r, 1));
		ASSERT_RC(want, r[0].rc);
		ASSERT_RC(0, tc_read_lock(c));
		ASSERT_RC(past ? TC_ECORRUPT : 0, tc_peek(c, kbuf, klen, &pv, &m));
		tc_read_unlock(c);
	}
	free(big);
	unguard(c);
	tc_unlink(name);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		FX_TEST(test_an_entry_that_ends_the_arena_reads_to_its_last_byte),
		FX_TEST(test_a_ref_at_the_arena_end_is_corrupt),
		FX_TEST(test_every_key_length_against_entries_of_every_length),
		FX_TEST(test_a_key_that_differs_in_any_byte_is_another_key),
		FX_TEST(test_a_value_past_the_most_is_corrupt_in_the_largest_class),
	};
	return fx_run(tests);
}
