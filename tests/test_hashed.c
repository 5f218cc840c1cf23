/* SPDX-License-Identifier: MIT */
/*
 * test_hashed.c - tc_key_hash and tc_get_hashed against hashes chosen to
 * trip the lookup: tc_key_hash is the hash the entry keeps (e->hash); the
 * hash of another key of the same length whose home bucket and tag are
 * the key's (found by brute force), the key's hash with one bit flipped
 * in each of its parts (bucket, middle, tag), random hashes, and hashes
 * whose home bucket has displaced entries (lookup_more's walk) all find
 * nothing (-ENOENT, the buffer untouched), never another key's value, for
 * keys of every length class (1..8, 9..16, 17..32, 33+), on every kind of
 * segment (plain, TC_CHECKSUM, TC_EVICT_LRU, both) and every path of the
 * read (the plain one, inside tc_read_lock, after another handle's call,
 * the 64th timed call, a segment unlinked: -ESTALE); the counters move
 * as tc_get_with's.  White-box: the bucket mask, the tag and e->hash.
 */
#include "whitebox.h"

#define ENTRIES 256
#define MEMORY (4u << 20)
#define READERS 8

static tc_cache *create(char *name, size_t cap, int eviction, bool csum)
{
	fx_name_at(name, cap, "hashed");
	return wb_create_flags(name, ENTRIES, MEMORY, READERS, eviction, csum ? TC_CHECKSUM : 0);
}

/* Key number I of length LEN: "K" and I in decimal, padded with '.'. */
static void key_n(char *out, size_t len, unsigned i)
{
	char num[16];
	int n = snprintf(num, sizeof(num), "K%u", i);
	assert_true((size_t)n <= len);
	memset(out, '.', len);
	memcpy(out, num, (size_t)n);
	out[len] = '\0';
}

/* Two different keys of length LEN whose hashes under C share the home
 * bucket and the tag (but not the whole hash). */
static void colliding_pair(tc_cache *c, size_t len, char *a, char *b)
{
	unsigned bbits = (unsigned)__builtin_popcountll(c->bmask);
	unsigned bits = bbits + 14;
	assert_true(bits <= 26);
	uint32_t *seen = calloc((size_t)1 << bits, sizeof(uint32_t));
	assert_non_null(seen);
	char k[TC_KEY_MAX + 1];
	for (unsigned i = 1;; i++) {
		assert_true(i < (1u << 24));
		key_n(k, len, i);
		uint64_t h = tc_key_hash(c, k, len);
		uint64_t slot = (h & c->bmask) << 14 | TC_TAG_OF(h);
		if (seen[slot]) {
			key_n(a, len, seen[slot]);
			strcpy(b, k);
			uint64_t ha = tc_key_hash(c, a, len);
			assert_true((ha & c->bmask) == (h & c->bmask));
			assert_true(TC_TAG_OF(ha) == TC_TAG_OF(h));
			assert_true(ha != h);
			free(seen);
			return;
		}
		seen[slot] = i;
	}
}

static void counts(tc_cache *c, uint64_t out[3])
{
	tc_stats st;
	ASSERT_RC(0, tc_get_stats(c, &st));
	out[0] = st.hits;
	out[1] = st.misses;
	out[2] = st.errors;
}

/* A get of KEY with HASH (not KEY's) on C: -ENOENT, the buffer untouched,
 * one miss counted. */
static void assert_nothing(tc_cache *c, uint64_t hash, const char *key)
{
	char out[TC_KEY_MAX + 8];
	uint64_t before[3], after[3];
	tc_meta m = { 0 };
	memset(out, 0x5a, sizeof(out));
	counts(c, before);
	ASSERT_RC(-ENOENT, tc_get_hashed(c, hash, KS(key), out, sizeof(out), &m, NULL, NULL));
	counts(c, after);
	for (size_t i = 0; i < sizeof(out); i++)
		assert_int_equal((uint8_t)out[i], 0x5a);
	assert_int_equal(after[0], before[0]);
	assert_int_equal(after[1], before[1] + 1);
	assert_int_equal(after[2], before[2]);
}

/* A get of KEY with its hash H: KEY's own value (the key itself, type 3),
 * one hit counted. */
static void assert_found(tc_cache *c, uint64_t h, const char *key)
{
	char out[TC_KEY_MAX + 8];
	uint64_t before[3], after[3];
	tc_meta m = { 0 };
	counts(c, before);
	ASSERT_RC(0, tc_get_hashed(c, h, KS(key), out, sizeof(out), &m, NULL, NULL));
	counts(c, after);
	assert_int_equal(m.len, strlen(key));
	assert_int_equal(m.type, 3);
	assert_memory_equal(out, key, strlen(key));
	assert_int_equal(after[0], before[0] + 1);
	assert_int_equal(after[1], before[1]);
	assert_int_equal(after[2], before[2]);
}

/* Every wrong hash we make for A (B's, A's with a bit flipped in the
 * bucket, the middle and the tag) finds nothing; A's own finds A. */
static void probe_pair(tc_cache *c, const char *a, const char *b)
{
	uint64_t ha = tc_key_hash(c, KS(a)), hb = tc_key_hash(c, KS(b));
	assert_nothing(c, hb, a);
	assert_nothing(c, ha, b);
	assert_nothing(c, ha ^ 1, a);
	assert_nothing(c, ha ^ (1ull << 30), a);
	assert_nothing(c, ha ^ (1ull << 60), a);
	assert_nothing(c, 0, a);
	assert_found(c, ha, a);
	assert_found(c, hb, b);
}

static const size_t lens[] = { 1, 5, 8, 9, 13, 16, 17, 27, 32, 33, 39, TC_KEY_MAX };

static void run_kind(int eviction, bool csum)
{
	char name[TC_NAME_MAX + 1], dname[TC_NAME_MAX + 1];
	char a[TC_KEY_MAX + 1], b[TC_KEY_MAX + 1];
	tc_cache *c = create(name, sizeof(name), eviction, csum), *d = NULL;
	tc_cache *o = create(dname, sizeof(dname), eviction, csum);
	ASSERT_RC(0, tc_open(&d, name, NULL));
	for (size_t li = 0; li < sizeof(lens) / sizeof(lens[0]); li++) {
		size_t len = lens[li];
		if (len == 1) { /* too few keys of one byte to collide: two */
			strcpy(a, "x");
			strcpy(b, "y");
		} else {
			colliding_pair(c, len, a, b);
		}
		ASSERT_RC(0, tc_set(c, KS(a), a, len, 3u, 0));
		ASSERT_RC(0, tc_set(c, KS(b), b, len, 3u, 0));
		/* tc_key_hash is the hash the library keeps in the entry, the
		 * same through another handle, another under another seed. */
		assert_true(wb_entry_of(c, a, TC_KIND_KEY)->hash == tc_key_hash(c, KS(a)));
		assert_true(wb_entry_of(c, b, TC_KIND_KEY)->hash == tc_key_hash(c, KS(b)));
		assert_true(tc_key_hash(d, KS(a)) == tc_key_hash(c, KS(a)));
		assert_true(tc_key_hash(o, KS(a)) != tc_key_hash(c, KS(a)));
		probe_pair(c, a, b);
		/* Another segment's hash of A. */
		assert_nothing(c, tc_key_hash(o, KS(a)), a);
		/* Inside a read section. */
		ASSERT_RC(0, tc_read_lock(c));
		probe_pair(c, a, b);
		tc_read_unlock(c);
		/* The thread's current entry another handle's. */
		char out[8];
		ASSERT_RC(-ENOENT, tc_get(o, KS("absent"), out, sizeof(out), NULL));
		assert_nothing(c, tc_key_hash(c, KS(b)), a);
		ASSERT_RC(-ENOENT, tc_get(o, KS("absent"), out, sizeof(out), NULL));
		assert_found(c, tc_key_hash(c, KS(a)), a);
		/* Every call after another handle's, past the 64th: the timed
		 * one taken through tc__tent_switch. */
		tc_stats s0, s1;
		ASSERT_RC(0, tc_get_stats(c, &s0));
		for (int i = 0; i < 130; i++) {
			ASSERT_RC(-ENOENT, tc_get(o, KS("absent"), out, sizeof(out), NULL));
			if (i % 2)
				assert_nothing(c, tc_key_hash(c, KS(b)), a);
			else
				assert_found(c, tc_key_hash(c, KS(a)), a);
		}
		ASSERT_RC(0, tc_get_stats(c, &s1));
		assert_true(s1.lat_samples > s0.lat_samples);
		/* Past the 64th call of the slot: the timed one among them. */
		for (int i = 0; i < 70; i++)
			probe_pair(c, a, b);
	}
	tc_close(d);
	tc_close(o);
	tc_close(c);
}

static void test_wrong_hash_finds_nothing_on_a_plain_segment(void **state)
{
	(void)state;
	run_kind(TC_EVICT_NONE, false);
}

static void test_wrong_hash_finds_nothing_with_checksums(void **state)
{
	(void)state;
	run_kind(TC_EVICT_NONE, true);
}

static void test_wrong_hash_finds_nothing_under_lru(void **state)
{
	(void)state;
	run_kind(TC_EVICT_LRU, false);
}

static void test_wrong_hash_finds_nothing_under_lru_with_checksums(void **state)
{
	(void)state;
	run_kind(TC_EVICT_LRU, true);
}

/*
 * Keys crowded into one home bucket (more than its seven slots, so some
 * are displaced and the bucket's displacement is above 0): each key is
 * found with its own hash only; every other crowded key's hash, and
 * 20000 random hashes landing in the crowded bucket, find nothing: the
 * walk of lookup_more ends (bounded by the home's displacement) at a miss.
 */
static void test_wrong_hash_in_a_displaced_bucket_finds_nothing(void **state)
{
	char name[TC_NAME_MAX + 1], k[32];
	enum { N = 12 };
	char keys[N][32];
	tc_cache *c = create(name, sizeof(name), TC_EVICT_NONE, false);
	uint64_t home = tc_key_hash(c, KS("K0.........")) & c->bmask;
	int n = 0;

	(void)state;
	for (unsigned i = 0; n < N; i++) {
		assert_true(i < (1u << 24));
		key_n(k, 11, i);
		if ((tc_key_hash(c, KS(k)) & c->bmask) != home)
			continue;
		strcpy(keys[n++], k);
		ASSERT_RC(0, tc_set(c, KS(k), k, strlen(k), 3u, 0));
	}
	assert_true((tc__ld(&c->index[home].meta) & 0xffffffffu) > 0);
	for (int i = 0; i < N; i++) {
		uint64_t hi = tc_key_hash(c, KS(keys[i]));
		assert_found(c, hi, keys[i]);
		for (int j = 0; j < N; j++)
			if (j != i)
				assert_nothing(c, tc_key_hash(c, KS(keys[j])), keys[i]);
	}
	uint64_t x = 0x9E3779B97F4A7C15ull;
	for (int r = 0; r < 20000; r++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		uint64_t h = (x & ~c->bmask) | home;
		int i = r % N;
		if (h == tc_key_hash(c, KS(keys[i])))
			continue;
		assert_nothing(c, h, keys[i]);
	}
	tc_close(c);
}

/* A segment unlinked: tc_get_hashed says -ESTALE, as tc_get_with, with
 * the key's hash or any other; an error counted. */
static void test_get_hashed_on_an_unlinked_segment_is_estale(void **state)
{
	char name[TC_NAME_MAX + 1], out[16];
	tc_cache *c = create(name, sizeof(name), TC_EVICT_NONE, false);
	tc_meta m;

	(void)state;
	ASSERT_RC(0, tc_set(c, KS("quote:AAPL:xy"), "aapl", 4, 0u, 0));
	uint64_t h = tc_key_hash(c, KS("quote:AAPL:xy"));
	ASSERT_RC(0, tc_unlink(name));
	ASSERT_RC(-ESTALE, tc_get_with(c, KS("quote:AAPL:xy"), out, sizeof(out), &m, NULL, NULL));
	ASSERT_RC(-ESTALE, tc_get_hashed(c, h, KS("quote:AAPL:xy"), out, sizeof(out), &m, NULL,
					 NULL));
	ASSERT_RC(-ESTALE, tc_get_hashed(c, h ^ 1, KS("quote:AAPL:xy"), out, sizeof(out), &m, NULL,
					 NULL));
	for (int i = 0; i < 70; i++)
		ASSERT_RC(-ESTALE, tc_get_hashed(c, h, KS("quote:AAPL:xy"), out, sizeof(out), &m,
						 NULL, NULL));
	tc_close(c);
}

static int fn_calls;
static void *null_fn(const tc_meta *m, void *arg)
{
	(void)m;
	(void)arg;
	fn_calls++;
	return NULL;
}

/* Run call number I of a sequence, through tc_get_hashed (HASHED) or
 * tc_get_with (a miss of an absent key standing for the wrong hash). */
static int call_n(tc_cache *c, int i, bool hashed, uint64_t h, uint64_t hb)
{
	char out[16];
	tc_meta m;
	const char *k = "quote:AAPL:xy";
	switch (i) {
	case 0: /* hit */
		return hashed ? tc_get_hashed(c, h, KS(k), out, sizeof(out), &m, NULL, NULL)
			      : tc_get_with(c, KS(k), out, sizeof(out), &m, NULL, NULL);
	case 1: /* miss (another key's hash) */
		return hashed ? tc_get_hashed(c, hb, KS(k), out, sizeof(out), &m, NULL, NULL)
			      : tc_get_with(c, KS("quote:ABSENT:"), out, sizeof(out), &m, NULL, NULL);
	case 2: /* -E2BIG */
		return hashed ? tc_get_hashed(c, h, KS(k), out, 2, &m, NULL, NULL)
			      : tc_get_with(c, KS(k), out, 2, &m, NULL, NULL);
	case 3: /* -ENOMEM: FN returns no buffer */
		return hashed ? tc_get_hashed(c, h, KS(k), out, 2, &m, null_fn, NULL)
			      : tc_get_with(c, KS(k), out, 2, &m, null_fn, NULL);
	case 4: /* -EINVAL */
		return hashed ? tc_get_hashed(c, h, NULL, 3, out, sizeof(out), &m, NULL, NULL)
			      : tc_get_with(c, NULL, 3, out, sizeof(out), &m, NULL, NULL);
	default: /* a wrong hash and no room: -ENOENT, FN not called */
		return hashed ? tc_get_hashed(c, hb, KS(k), NULL, 0, &m, null_fn, NULL)
			      : tc_get_with(c, KS("quote:ABSENT:"), NULL, 0, &m, null_fn, NULL);
	}
}

/* Each kind of answer moves hits, misses, errors and ops as tc_get_with's
 * (the wrong hash as a miss of an absent key), inside a section too; a
 * wrong hash never reports the other key's length (-E2BIG) nor calls FN. */
static void test_get_hashed_counts_as_get_with(void **state)
{
	char name[TC_NAME_MAX + 1];
	tc_cache *c = create(name, sizeof(name), TC_EVICT_NONE, false);
	static const int want[] = { 0, -ENOENT, -E2BIG, -ENOMEM, -EINVAL, -ENOENT };

	(void)state;
	ASSERT_RC(0, tc_set(c, KS("quote:AAPL:xy"), "aapl-value", 10, 0u, 0));
	ASSERT_RC(0, tc_set(c, KS("quote:MSFT:xy"), "msft-value-of-more-bytes", 24, 0u, 0));
	uint64_t h = tc_key_hash(c, KS("quote:AAPL:xy")), hb = tc_key_hash(c, KS("quote:MSFT:xy"));
	for (int sect = 0; sect < 2; sect++) {
		if (sect)
			ASSERT_RC(0, tc_read_lock(c));
		for (int i = 0; i < 6; i++) {
			tc_stats s0, s1, s2;
			ASSERT_RC(0, tc_get_stats(c, &s0));
			fn_calls = 0;
			ASSERT_RC(want[i], call_n(c, i, false, h, hb));
			int with_calls = fn_calls;
			ASSERT_RC(0, tc_get_stats(c, &s1));
			fn_calls = 0;
			ASSERT_RC(want[i], call_n(c, i, true, h, hb));
			assert_int_equal(fn_calls, with_calls);
			ASSERT_RC(0, tc_get_stats(c, &s2));
			assert_int_equal(s2.hits - s1.hits, s1.hits - s0.hits);
			assert_int_equal(s2.misses - s1.misses, s1.misses - s0.misses);
			assert_int_equal(s2.errors - s1.errors, s1.errors - s0.errors);
			assert_int_equal(s2.ops - s1.ops, s1.ops - s0.ops);
			assert_int_equal(s1.ops - s0.ops, 1);
		}
		if (sect)
			tc_read_unlock(c);
	}
	tc_close(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		FX_TEST(test_wrong_hash_finds_nothing_on_a_plain_segment),
		FX_TEST(test_wrong_hash_finds_nothing_with_checksums),
		FX_TEST(test_wrong_hash_finds_nothing_under_lru),
		FX_TEST(test_wrong_hash_finds_nothing_under_lru_with_checksums),
		FX_TEST(test_wrong_hash_in_a_displaced_bucket_finds_nothing),
		FX_TEST(test_get_hashed_on_an_unlinked_segment_is_estale),
		FX_TEST(test_get_hashed_counts_as_get_with),
	};
	return fx_run(tests);
}
