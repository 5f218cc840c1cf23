/* SPDX-License-Identifier: MIT */
/*
 * test_table.c - white-box tests of the lock-free index (shm/index.c, shm/kv.c).
 *
 * - An insert whose re-scan finds another inserter's TENT slot of the same
 *   key, and loses the race to abort it (the other finalises first), must not
 *   publish a second entry.  Made deterministic by interposing memcmp() (and
 *   bcmp(), which clang calls for it), which match() calls between reading
 *   the other slot word and the abort CAS.
 * - Threads and processes racing tc_add on the same key: exactly one success
 *   per round, never two FINAL slots of one key, live count == FINAL slots.
 * - A set racing a delete is never lost: the outcome matches a linearization.
 * - Versions observed by each thread never go down, and grow after each of
 *   its own changes (also across delete + re-insert).
 * - A set leaves its entry's ref as the key's write hint; no hint is
 *   trusted.  The hint table's size, and its unmapping at tc_close and on a
 *   failed attach.
 */
#include "whitebox.h"

#include <pthread.h>
#include <sys/mman.h>
#define XXH_INLINE_ALL
#include <xxhash.h>

/* ------------------------------------------------------------------ */
/* memcmp interposition: run a CAS between match()'s read and its abort */
/* ------------------------------------------------------------------ */

static uint64_t *volatile hook_slot;
static uint64_t hook_from, hook_to;
static const void *volatile hook_s1;
static volatile int hook_fired;

static int hooked_compare(const void *a, const void *b, size_t n)
{
	if (hook_slot && a == hook_s1) {
		uint64_t *p = hook_slot;
		hook_slot = NULL;
		__atomic_compare_exchange_n(p, &hook_from, hook_to, 0, __ATOMIC_SEQ_CST,
					    __ATOMIC_SEQ_CST);
		hook_fired = 1;
	}
	const unsigned char *x = a, *y = b;
	for (size_t i = 0; i < n; i++)
		if (x[i] != y[i])
			return x[i] < y[i] ? -1 : 1;
	return 0;
}

int memcmp(const void *a, const void *b, size_t n)
{
	return hooked_compare(a, b, n);
}

/* clang turns a memcmp() whose result is only tested against 0 into a
 * call of bcmp(): the hook must ride on both. */
int bcmp(const void *a, const void *b, size_t n);
int bcmp(const void *a, const void *b, size_t n)
{
	return hooked_compare(a, b, n);
}

/*
 * Play the first half of another inserter "A" of KEY by hand: build its entry
 * and claim a free slot of the home bucket as TENT.  (A counts its key in
 * live once it has finalised: the test does that for it.)
 * Returns the slot; *tent / *fin are A's TENT and FINAL words.
 */
static uint64_t *half_insert(tc_cache *c, const char *key, size_t klen, uint64_t *tent,
			     uint64_t *fin, struct tc_entry **ep)
{
	struct tc_rslot *s = tc__slot(c);
	assert_non_null(s);
	int rc = 0;
	struct tc_entry *e = tc__alloc(c, s, tc__entry_bytes(klen, 1), &rc);
	assert_non_null(e);
	uint64_t hash = tc__hash(c, key, klen, TC_KIND_KEY);
	e->hash = hash;
	e->expires_ms = 0;
	e->vlen = 1;
	e->type = 0;
	e->klen = (uint16_t)klen;
	e->kind = TC_KIND_KEY;
	e->aux = 0;
	memcpy((uint8_t *)e + TC_ENTRY_HDR, key, klen);
	*((uint8_t *)tc__eval(e, (uint32_t)klen)) = 'A';
	e->version = tc__add_ret(&c->h->ver[(hash >> 32) % TC_VER_SHARDS].v, 1);
	tc__st(&s->inflight, 0);
	uint64_t ref = tc__ref_of(c, e), tag = TC_TAG_OF(hash);
	*tent = TC_SW_TENT | tag << 48 | ref;
	*fin = TC_SW_FINAL | tag << 48 | ref;
	struct tc_bucket *b = &c->index[hash & c->bmask];
	for (int i = 0; i < TC_BUCKET_SLOTS; i++) {
		if (tc__cas(&b->w[i], 0, *tent) == 0) {
			*ep = e;
			return &b->w[i];
		}
	}
	fail_msg("home bucket full");
	return NULL;
}

static void test_add_losing_abort_race_publishes_no_duplicate(void **state)
{
	(void)state;
	char name[64];
	tc_cache *c = wb_create(fx_name(name), 1024, 1 << 20, 8,
				TC_EVICT_NONE);
	/* Longer than 32 bytes: match() compares shorter keys inline, without
	 * the memcmp call the hook rides on. */
	const char key[] = "the-one-key-of-this-test-and-no-other";
	size_t klen = sizeof(key) - 1;
	uint64_t tent, fin;
	struct tc_entry *ea = NULL;
	uint64_t *slot = half_insert(c, key, klen, &tent, &fin, &ea);

	/* B = tc_add: it claims its own slot, re-scans, reads A's TENT, and
	 * A finalises (hook) before B's abort CAS. */
	hook_from = tent;
	hook_to = fin;
	hook_s1 = tc__ekey(ea);
	hook_fired = 0;
	hook_slot = slot;
	int rc = tc_add(c, key, klen, "B", 1, 0, 0);
	hook_slot = NULL;
	assert_int_equal(hook_fired, 1);
	assert_int_equal(tc__ld(slot), fin);
	tc__add(&c->h->live, 1); /* A's step after its finalize */

	/* A published first, so B must see -EEXIST and leave one entry. */
	int nfinal = wb_count_final(c, key, klen);
	uint64_t live = tc__ld(&c->h->live);
	char buf[8];
	tc_meta m;
	int grc = tc_get(c, key, klen, buf, sizeof(buf), &m);
	tc_close(c);
	tc_unlink(name);
	assert_int_equal(grc, 0);
	if (rc != -EEXIST || nfinal != 1 || live != 1)
		fail_msg("tc_add returned %d (want -EEXIST), %d FINAL slots of one key "
			 "(want 1), live %llu (want 1)", rc, nfinal, (unsigned long long)live);
}

/* ------------------------------------------------------------------ */
/* The read path's short cuts                                           */
/* ------------------------------------------------------------------ */

/* tc__hash takes XXH3's short-input step itself for keys up to 16 bytes:
 * it must be XXH3_64bits_withSeed, or no segment written before reads back. */
static void test_hash_is_xxh3_with_the_seed_at_every_length(void **state)
{
	(void)state;
	char name[64];
	tc_cache *c = wb_create(fx_name(name), 1024, 1 << 20, 4,
				TC_EVICT_NONE);
	uint8_t key[64];
	for (size_t i = 0; i < sizeof(key); i++)
		key[i] = (uint8_t)(i * 37 + 11);
	for (size_t n = 1; n <= sizeof(key); n++)
		for (uint32_t kind = 0; kind < 3; kind++)
			assert_true(tc__hash(c, key, n, kind) ==
				    XXH3_64bits_withSeed(key, n, c->seed + kind * 0x9E3779B97F4A7C15ull));
	/* Ordinary keys of 9..16 and 17..32 bytes take steps of tc__hash's
	 * own with the seeded secret words of the handle (c->kbf, c->kmid):
	 * many keys, and seeds with every high bit, for the carries of their
	 * additions. */
	uint64_t x = 0x243f6a8885a308d3ull;
	for (int round = 0; round < 8000; round++) {
		for (size_t i = 0; i < 32; i++) {
			x = x * 6364136223846793005ull + 1442695040888963407ull;
			key[i] = (uint8_t)(x >> 56);
		}
		if (round % 2000 == 0) {
			c->seed = round == 0 ? c->seed : x ^ (round == 4000 ? ~0ull << 8 : 0);
			tc__hash_init(c);
		}
		size_t n = 9 + (size_t)round % 24;
		assert_true(tc__hash(c, key, n, TC_KIND_KEY) == XXH3_64bits_withSeed(key, n, c->seed));
	}
	tc_close(c);
	tc_unlink(name);
}

/* The value of KEY (N bytes) through tc_get, tc_get_with and tc_peek, each
 * of which runs keys of 9..16 and 17..32 bytes in inline copies of their
 * own: all three must give VAL (VL bytes), or all three -ENOENT (VAL
 * NULL). */
static void expect_read(tc_cache *c, const char *key, size_t n, const char *val, int vl)
{
	int want = val ? 0 : -ENOENT;
	char buf[8];
	tc_meta m;
	assert_int_equal(tc_get(c, key, n, buf, sizeof(buf), &m), want);
	if (val) {
		assert_int_equal(m.len, vl);
		assert_memory_equal(buf, val, (size_t)vl);
	}
	memset(buf, 0, sizeof(buf));
	assert_int_equal(tc_get_with(c, key, n, buf, sizeof(buf), &m, NULL, NULL), want);
	if (val) {
		assert_int_equal(m.len, vl);
		assert_memory_equal(buf, val, (size_t)vl);
	}
	const void *p = NULL;
	assert_int_equal(tc_read_lock(c), 0);
	assert_int_equal(tc_peek(c, key, n, &p, &m), want);
	if (val) {
		assert_int_equal(m.len, vl);
		assert_memory_equal(p, val, (size_t)vl);
	} else {
		assert_null(p);
	}
	tc_read_unlock(c);
}

/* Keys of 1..40 bytes that differ in one byte only are different keys:
 * match() compares keys of 9..16 bytes in two words and a shift, and of
 * 17..32 bytes as two overlapping halves. */
static void test_keys_differing_in_one_byte_are_distinct(void **state)
{
	(void)state;
	char name[64];
	tc_cache *c = wb_create(fx_name(name), 4096, 4 << 20, 4,
				TC_EVICT_NONE);
	for (size_t n = 1; n <= 40; n++) {
		char key[40];
		memset(key, 'k', sizeof(key));
		assert_int_equal(tc_set(c, key, n, "base", 4, 0, 0), 0);
		for (size_t i = 0; i < n; i++) {
			key[i] = 'K';
			char val[8];
			int vl = snprintf(val, sizeof(val), "%zu.%zu", n, i);
			assert_int_equal(tc_set(c, key, n, val, (size_t)vl, 0, 0), 0);
			expect_read(c, key, n, val, vl);
			key[i] = 'k';
		}
		/* The base key kept its value through all of them. */
		expect_read(c, key, n, "base", 4);
		/* One byte longer or shorter: a miss, whatever the padding holds. */
		if (n < 40) {
			key[n] = 'k';
			expect_read(c, key, n + 1, NULL, 0);
		}
	}
	tc_close(c);
	tc_unlink(name);
}

/* key_eq, match()'s compare of an entry's key with the caller's, at every
 * length up to 48 (two words and a shift for 9..16, two overlapping 16-byte
 * halves for 17..32, memcmp above): equal keys are equal whatever the
 * entry's padding holds, and a difference in any one byte, either way,
 * is seen.  The hash tells keys apart before key_eq does, so no test
 * through tc_get reaches this. */
static void test_key_compare_sees_every_byte_at_every_length(void **state)
{
	(void)state;
	for (size_t n = 1; n <= 48; n++) {
		/* The entry's key area: n bytes, then padding to 8 and garbage. */
		_Alignas(16) uint8_t ek[64], key[48];
		memset(ek, 0xa5, sizeof(ek));
		for (size_t i = 0; i < n; i++)
			ek[i] = key[i] = (uint8_t)(i * 29 + n);
		assert_true(key_eq(ek, key, n));
		for (size_t i = 0; i < n; i++)
			for (int bit = 0; bit < 8; bit += 7) {
				key[i] ^= (uint8_t)(1u << bit);
				if (key_eq(ek, key, n))
					fail_msg("length %zu: byte %zu bit %d differs, key_eq said equal",
						 n, i, bit);
				key[i] ^= (uint8_t)(1u << bit);
				ek[i] ^= (uint8_t)(1u << bit);
				if (key_eq(ek, key, n))
					fail_msg("length %zu: entry byte %zu bit %d differs, equal", n,
						 i, bit);
				ek[i] ^= (uint8_t)(1u << bit);
			}
		/* The caller's key unaligned, the padding changed: still equal. */
		uint8_t off[49];
		memcpy(off + 1, key, n);
		memset(ek + n, 0x5a, sizeof(ek) - n);
		assert_true(key_eq(ek, off + 1, n));
	}
}

/* bucket_scan and bucket_scan_hash, the probe's compare of a bucket line
 * against FINAL | tag (SSE2 on x86-64), against the word-by-word rule they
 * stand for: bit 2j + 1 set exactly when slot word j - 1 has the state
 * FINAL and the tag, whatever the other 48 bits hold (lanes of the ref
 * equal to the tag, to all ones, or to the hash bits bucket_scan_hash's
 * operand carries below the tag, among them), and the eight words copied
 * out as they were. */
static void test_bucket_scan_is_the_word_rule(void **state)
{
	(void)state;
	_Alignas(64) struct tc_bucket b;
	uint64_t x = 0x9e3779b97f4a7c15ull;
	for (int round = 0; round < 20000; round++) {
		uint64_t hash = x ^ x << 29, tag = TC_TAG_OF(hash), want = TC_SW_FINAL >> 48 | tag;
		uint64_t low = hash >> 34 & 0xffff; /* bucket_scan_hash's dropped lane */
		uint64_t words[8];
		for (int j = 0; j < 8; j++) {
			x = x * 6364136223846793005ull + 1442695040888963407ull;
			uint64_t top = want, r = x >> 16; /* the ref's 48 bits */
			switch ((x >> 8) % 9) {
			case 0: top = TC_SW_TENT >> 48 | tag; break;  /* claimed */
			case 1: top = tag; break;                     /* no state */
			case 2: top = want ^ 1; break;                /* another tag */
			case 3: r = (r & 0xffffffffull) | want << 32; break; /* a lane equal to it */
			case 4: r |= 0xffffull << 32; top ^= (x >> 5 & 1) << 3; break;
			case 7: r = (r & 0xffffffffull) | low << 32; top ^= (x >> 5 & 1) << 2; break;
			case 5: top = x >> 48; break;                 /* anything */
			default: break;                               /* a match */
			}
			words[j] = top << 48 | (r & 0xffffffffffffull);
		}
		memcpy(&b, words, sizeof(b));
		uint64_t w[8], wh[8];
		uint32_t m = bucket_scan(&b, tag, w), mh = bucket_scan_hash(&b, hash, wh), expect = 0;
		for (int j = 1; j <= TC_BUCKET_SLOTS; j++)
			expect |= (uint32_t)(words[j] >> 48 == want) << (2 * j + 1);
		if (m != expect || mh != expect)
			fail_msg("round %d: masks %#x (tag) and %#x (hash), the word rule says %#x",
				 round, m, mh, expect);
		assert_memory_equal(w, words, sizeof(w));
		assert_memory_equal(wh, words, sizeof(wh));
		if (m)
			assert_int_equal(scan_word(w, m), w[SCAN_WORD(m)]);
	}
}

/* Values of every length from 0 to 130 bytes come back exactly, with the
 * bytes around them in the caller's buffer untouched: tc_get copies 16..64
 * bytes in overlapping 16-byte moves. */
static void test_values_of_every_length_round_trip_exactly(void **state)
{
	(void)state;
	char name[64];
	tc_cache *c = wb_create(fx_name(name), 1024, 1 << 20, 4, TC_EVICT_NONE);
	uint8_t val[130], buf[130 + 32];
	for (size_t i = 0; i < sizeof(val); i++)
		val[i] = (uint8_t)(i * 7 + 1);
	for (size_t n = 0; n <= sizeof(val); n++) {
		char key[16];
		int kl = snprintf(key, sizeof(key), "len-%zu", n);
		ASSERT_RC(0, tc_set(c, key, (size_t)kl, val, n, 0, 0));
		memset(buf, 0xee, sizeof(buf));
		tc_meta m;
		ASSERT_RC(0, tc_get(c, key, (size_t)kl, buf + 16, n, &m));
		assert_int_equal(m.len, n);
		if (n)
			assert_memory_equal(buf + 16, val, n);
		for (size_t i = 0; i < 16; i++) {
			assert_int_equal(buf[i], 0xee);
			assert_int_equal(buf[16 + n + i], 0xee);
		}
	}
	tc_close(c);
}

/* tc__copy_in, the write's copy of a key or value into its block (8..64
 * bytes in overlapping fixed-size moves), at every length up to 100 and
 * from an unaligned source: exactly the N bytes, none before or after
 * (the key's padding and the value after it, the checksum after the
 * value, are someone else's bytes). */
static void test_block_copy_writes_exactly_its_bytes_at_every_length(void **state)
{
	(void)state;
	uint8_t src[101], dst[100 + 64];
	for (size_t i = 0; i < sizeof(src); i++)
		src[i] = (uint8_t)(i * 13 + 5);
	for (size_t n = 0; n <= 100; n++) {
		memset(dst, 0xee, sizeof(dst));
		tc__copy_in(dst + 32, src + 1, n);
		for (size_t i = 0; i < 32; i++)
			if (dst[i] != 0xee || dst[32 + n + i] != 0xee)
				fail_msg("length %zu: a byte %s the copy changed", n,
					 dst[i] != 0xee ? "before" : "after");
		if (n)
			assert_memory_equal(dst + 32, src + 1, n);
	}
}

/* ------------------------------------------------------------------ */
/* Racing adds: threads and processes                                  */
/* ------------------------------------------------------------------ */

#define KEYLEN 200
#define ADD_ROUNDS 3000

static void round_key(char *k, int r)
{
	memset(k, 'x', KEYLEN);
	char head[16];
	int n = snprintf(head, sizeof(head), "r%06d", r);
	memcpy(k, head, (size_t)n);
}

struct add_shared {
	pthread_barrier_t bar;
	uint32_t wins[ADD_ROUNDS];
	uint32_t errors;   /* return codes other than 0 / -EEXIST */
	int      last_bad; /* the last such code */
};

static void add_rounds(tc_cache *c, struct add_shared *sh, int id)
{
	char k[KEYLEN];
	char v[32];
	for (int r = 0; r < ADD_ROUNDS; r++) {
		round_key(k, r);
		int n = snprintf(v, sizeof(v), "w%d", id);
		pthread_barrier_wait(&sh->bar);
		int rc = tc_add(c, k, KEYLEN, v, (size_t)n, 0, 0);
		if (rc == 0) {
			__atomic_add_fetch(&sh->wins[r], 1, __ATOMIC_SEQ_CST);
		} else if (rc != -EEXIST) {
			__atomic_add_fetch(&sh->errors, 1, __ATOMIC_SEQ_CST);
			__atomic_store_n(&sh->last_bad, rc, __ATOMIC_SEQ_CST);
		}
	}
}

/* After quiescence: one win and one FINAL slot per round key; live agrees. */
static void check_add_rounds(tc_cache *c, struct add_shared *sh, char *why, size_t cap)
{
	static uint32_t finals[ADD_ROUNDS];
	memset(finals, 0, sizeof(finals));
	uint64_t total = 0, other = 0;
	WB_EACH_SLOT(c, w) {
		if (TC_SW_STATE(w) != TC_SW_FINAL) {
			other++;
			continue;
		}
		total++;
		struct tc_entry *e = tc__block(c, TC_SW_REF(w));
		assert_non_null(e);
		assert_int_equal(e->klen, KEYLEN);
		int r = atoi((const char *)tc__ekey(e) + 1);
		assert_true(r >= 0 && r < ADD_ROUNDS);
		finals[r]++;
	}
	int multi_win = 0, no_win = 0, dup = 0;
	for (int r = 0; r < ADD_ROUNDS; r++) {
		multi_win += sh->wins[r] > 1;
		no_win += sh->wins[r] == 0;
		dup += finals[r] > 1;
	}
	uint64_t live = tc__ld(&c->h->live);
	why[0] = '\0';
	if (multi_win || no_win || dup || sh->errors || other || live != total ||
	    total != ADD_ROUNDS)
		snprintf(why, cap, "rounds with >1 winner %d, with none %d, keys with >1 FINAL slot %d, "
			 "unexpected codes %u (last %d), non-FINAL slots left %llu, "
			 "live %llu, FINAL slots %llu (want %d)",
			 multi_win, no_win, dup, sh->errors, sh->last_bad,
			 (unsigned long long)other, (unsigned long long)live,
			 (unsigned long long)total, ADD_ROUNDS);
}

struct add_thread {
	tc_cache *c;
	struct add_shared *sh;
	int id;
};

static void *add_thread_main(void *p)
{
	struct add_thread *t = p;
	add_rounds(t->c, t->sh, t->id);
	return NULL;
}

#define ADD_THREADS 6

static void test_threads_racing_add_have_one_winner_and_one_entry(void **state)
{
	(void)state;
	char name[64];
	tc_cache *c = wb_create(fx_name(name), 4096, 4 << 20, 16,
				TC_EVICT_NONE);
	struct add_shared *sh = calloc(1, sizeof(*sh));
	assert_non_null(sh);
	pthread_barrier_init(&sh->bar, NULL, ADD_THREADS);
	pthread_t th[ADD_THREADS];
	struct add_thread ta[ADD_THREADS];
	for (int i = 0; i < ADD_THREADS; i++) {
		ta[i] = (struct add_thread){ c, sh, i };
		assert_int_equal(pthread_create(&th[i], NULL, add_thread_main, &ta[i]), 0);
	}
	for (int i = 0; i < ADD_THREADS; i++)
		pthread_join(th[i], NULL);
	pthread_barrier_destroy(&sh->bar);
	char why[512];
	check_add_rounds(c, sh, why, sizeof(why));
	free(sh);
	tc_close(c);
	tc_unlink(name);
	if (why[0])
		fail_msg("%s", why);
}

#define ADD_PROCS 4

static void test_processes_racing_add_have_one_winner_and_one_entry(void **state)
{
	(void)state;
	char name[64];
	tc_cache *c = wb_create(fx_name(name), 4096, 4 << 20, 16,
				TC_EVICT_NONE);
	struct add_shared *sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
				     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	assert_true(sh != MAP_FAILED);
	pthread_barrierattr_t ba;
	pthread_barrierattr_init(&ba);
	pthread_barrierattr_setpshared(&ba, PTHREAD_PROCESS_SHARED);
	pthread_barrier_init(&sh->bar, &ba, ADD_PROCS);
	pid_t kids[ADD_PROCS];
	for (int i = 0; i < ADD_PROCS; i++) {
		kids[i] = fork();
		assert_true(kids[i] >= 0);
		if (kids[i] == 0) {
			alarm(120); /* a dead sibling would leave us at the barrier */
			tc_cache *cc = NULL;
			if (tc_open(&cc, name, NULL) != 0)
				_exit(2);
			add_rounds(cc, sh, i);
			tc_close(cc);
			_exit(0);
		}
	}
	int bad = 0;
	for (int i = 0; i < ADD_PROCS; i++)
		bad += fx_wait(kids[i]) != 0;
	char why[512];
	check_add_rounds(c, sh, why, sizeof(why));
	pthread_barrier_destroy(&sh->bar);
	munmap(sh, sizeof(*sh));
	tc_close(c);
	tc_unlink(name);
	assert_int_equal(bad, 0);
	if (why[0])
		fail_msg("%s", why);
}

/* ------------------------------------------------------------------ */
/* Set racing delete                                                   */
/* ------------------------------------------------------------------ */

#define SD_ROUNDS 20000

struct sd_shared {
	tc_cache *c;
	pthread_barrier_t bar;
	int rc_set, rc_del;
};

static const char sd_key[] = "set-vs-del";

static void *sd_deleter(void *p)
{
	struct sd_shared *sh = p;
	for (int r = 0; r < SD_ROUNDS; r++) {
		pthread_barrier_wait(&sh->bar);
		sh->rc_del = tc_del(sh->c, sd_key, sizeof(sd_key) - 1);
		pthread_barrier_wait(&sh->bar);
	}
	return NULL;
}

static void test_set_racing_del_is_never_lost(void **state)
{
	(void)state;
	char name[64];
	struct sd_shared sh;
	sh.c = wb_create(fx_name(name), 1024, 2 << 20, 8, TC_EVICT_NONE);
	tc_cache *c = sh.c;
	pthread_barrier_init(&sh.bar, NULL, 2);
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, sd_deleter, &sh), 0);
	size_t kl = sizeof(sd_key) - 1;
	int bad = 0, dup = 0, badrc = 0;
	char why[160] = "";
	for (int r = 0; r < SD_ROUNDS; r++) {
		bool present = r % 2 == 0;
		if (present)
			ASSERT_RC(0, tc_set(c, sd_key, kl, "old", 3, 0, 0));
		else
			(void)tc_del(c, sd_key, kl);
		char v[16];
		int n = snprintf(v, sizeof(v), "s%d", r);
		pthread_barrier_wait(&sh.bar);
		sh.rc_set = tc_set(c, sd_key, kl, v, (size_t)n, 0, 0);
		pthread_barrier_wait(&sh.bar);
		char buf[16];
		tc_meta m;
		int g = tc_get(c, sd_key, kl, buf, sizeof(buf), &m);
		if (sh.rc_set != 0 || (sh.rc_del != 0 && sh.rc_del != -ENOENT) ||
		    (g != 0 && g != -ENOENT)) {
			badrc++;
			continue;
		}
		/* set;del -> absent, del 0.  del;set -> our value, del 0 when the
		 * key was present before, -ENOENT when it was absent. */
		bool ok;
		if (g == -ENOENT)
			ok = sh.rc_del == 0;
		else
			ok = m.len == (size_t)n && memcmp(buf, v, (size_t)n) == 0 &&
			     sh.rc_del == (present ? 0 : -ENOENT);
		if (!ok && !bad)
			snprintf(why, sizeof(why), "round %d: present %d, del %d, get %d, len %zu",
				 r, present, sh.rc_del, g, g == 0 ? m.len : 0);
		bad += !ok;
		dup += wb_count_final(c, sd_key, kl) > 1;
	}
	pthread_join(th, NULL);
	pthread_barrier_destroy(&sh.bar);
	uint64_t fin = wb_count_slots(c, NULL), live = tc__ld(&c->h->live);
	tc_close(c);
	tc_unlink(name);
	if (bad || dup || badrc || fin != live)
		fail_msg("non-linearizable outcomes %d (%s), duplicate slots %d, bad codes %d, "
			 "live %llu vs FINAL %llu", bad, why, dup, badrc,
			 (unsigned long long)live, (unsigned long long)fin);
}

/* ------------------------------------------------------------------ */
/* Versions                                                            */
/* ------------------------------------------------------------------ */

#define VER_THREADS 6
#define VER_OPS 40000

struct ver_thread {
	tc_cache *c;
	int id;
	int violations;
	char why[160];
};

static const char ver_key[] = "versioned";

static void *ver_main(void *p)
{
	struct ver_thread *t = p;
	size_t kl = sizeof(ver_key) - 1;
	uint64_t seen = 0, x = (uint64_t)t->id * 0x9E3779B97F4A7C15ull + 1;
	for (int i = 0; i < VER_OPS; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		int rc;
		int64_t out;
		uint8_t ctr[8] = { 0 };
		switch (x % 6) {
		case 0: rc = tc_set(t->c, ver_key, kl, ctr, 8, TC_TYPE_COUNTER, 0); break;
		case 1: rc = tc_add(t->c, ver_key, kl, ctr, 8, TC_TYPE_COUNTER, 0); break;
		case 2: rc = tc_del(t->c, ver_key, kl); break;
		case 3: rc = tc_incr(t->c, ver_key, kl, 1, 0, &out); break;
		case 4: rc = tc_expire(t->c, ver_key, kl, 0); break;
		default: rc = tc_cas(t->c, ver_key, kl, seen, ctr, 8, TC_TYPE_COUNTER, 0); break;
		}
		bool changed = rc == 0 && x % 6 != 2;
		uint8_t buf[8];
		tc_meta m;
		int g = tc_get(t->c, ver_key, kl, buf, sizeof(buf), &m);
		if (g != 0)
			continue;
		/* Linearizable reads never see the version go down; after our
		 * own change it is strictly above anything seen before it. */
		if (m.version < seen || (changed && m.version <= seen)) {
			if (!t->violations)
				snprintf(t->why, sizeof(t->why),
					 "op %d (kind %d, rc %d): version %llu after %llu", i,
					 (int)(x % 6), rc, (unsigned long long)m.version,
					 (unsigned long long)seen);
			t->violations++;
		}
		if (m.version > seen)
			seen = m.version;
	}
	return NULL;
}

static void test_versions_grow_across_delete_and_reinsert(void **state)
{
	(void)state;
	char name[64];
	tc_cache *c = wb_create(fx_name(name), 1024, 2 << 20, 16,
				TC_EVICT_NONE);
	pthread_t th[VER_THREADS];
	struct ver_thread vt[VER_THREADS];
	for (int i = 0; i < VER_THREADS; i++) {
		vt[i] = (struct ver_thread){ .c = c, .id = i };
		assert_int_equal(pthread_create(&th[i], NULL, ver_main, &vt[i]), 0);
	}
	int v = 0;
	char why[160] = "";
	for (int i = 0; i < VER_THREADS; i++) {
		pthread_join(th[i], NULL);
		if (vt[i].violations && !v)
			memcpy(why, vt[i].why, sizeof(why));
		v += vt[i].violations;
	}
	int dup = wb_count_final(c, ver_key, sizeof(ver_key) - 1);
	uint64_t fin = wb_count_slots(c, NULL), live = tc__ld(&c->h->live);
	tc_close(c);
	tc_unlink(name);
	if (v || dup > 1 || fin != live)
		fail_msg("version order violations %d (first: %s), FINAL slots of the key %d, "
			 "live %llu vs FINAL %llu", v, why, dup, (unsigned long long)live,
			 (unsigned long long)fin);
}

/* Single-threaded: delete + re-insert gives a larger version; cas on the old
 * version after a re-insert conflicts. */
static void test_reinsert_after_delete_has_larger_version(void **state)
{
	(void)state;
	char name[64];
	tc_cache *c = wb_create(fx_name(name), 1024, 1 << 20, 4,
				TC_EVICT_NONE);
	tc_meta m;
	char buf[8];
	uint64_t last = 0;
	for (int i = 0; i < 100; i++) {
		ASSERT_RC(0, tc_add(c, "k", 1, "v", 1, 0, 0));
		ASSERT_RC(0, tc_get(c, "k", 1, buf, sizeof(buf), &m));
		assert_true(m.version > last);
		uint64_t v1 = m.version;
		ASSERT_RC(0, tc_set(c, "k", 1, "w", 1, 0, 0));
		ASSERT_RC(0, tc_get(c, "k", 1, buf, sizeof(buf), &m));
		assert_true(m.version > v1);
		ASSERT_RC(0, tc_del(c, "k", 1));
		ASSERT_RC(0, tc_set(c, "k", 1, "x", 1, 0, 0));
		ASSERT_RC(TC_ECONFLICT, tc_cas(c, "k", 1, v1, "y", 1, 0, 0));
		ASSERT_RC(0, tc_get(c, "k", 1, buf, sizeof(buf), &m));
		assert_true(m.version > v1);
		last = m.version;
		ASSERT_RC(0, tc_del(c, "k", 1));
	}
	assert_int_equal(tc__ld(&c->h->live), 0);
	assert_int_equal(wb_count_slots(c, NULL), 0);
	tc_close(c);
	tc_unlink(name);
}

/* The ref of the entry that the index names for KEY (asserted present). */
static uint64_t indexed_ref(tc_cache *c, const char *key)
{
	uint64_t *slotp, w;
	struct tc_entry *e;
	uint64_t hash = tc__hash(c, key, strlen(key), TC_KIND_KEY);
	ASSERT_RC(0, tc__lookup(c, hash, key, strlen(key), TC_KIND_KEY, &slotp, &w, &e));
	return TC_SW_REF(w);
}

/*
 * The write hints (tc_cache.hints, kv.c's prefetch_hinted): a set leaves
 * in its key's hint word the ref of the entry it published, which the
 * next write of the key prefetches; an add leaves none.  A hint is never
 * trusted: one that names another key's live entry, a ref past the arena
 * or the largest ref changes no write's result and no other key.
 */
static void test_a_set_leaves_its_entry_as_the_hint_and_no_hint_is_trusted(void **state)
{
	(void)state;
	char name[64];
	tc_cache *c = wb_create(fx_name(name), 1024, 1 << 20, 4, TC_EVICT_NONE);
	assert_true(c->hint_map > 0);
	assert_true(c->hint_mask >= 2047); /* two words a key, at least 2^10 */
	uint64_t hk = tc__hash(c, "hint-k", 6, TC_KIND_KEY);
	uint64_t ha = tc__hash(c, "hint-a", 6, TC_KIND_KEY);
	assert_int_not_equal(tc__hint(c, hk), tc__hint(c, ha));
	ASSERT_RC(0, tc_add(c, "hint-a", 6, "A", 1, 0, 0));
	assert_int_equal(*tc__hint(c, ha), 0);
	ASSERT_RC(0, tc_set(c, "hint-k", 6, "v1", 2, 0, 0));
	uint64_t r1 = indexed_ref(c, "hint-k");
	assert_int_equal(*tc__hint(c, hk), r1);
	ASSERT_RC(0, tc_set(c, "hint-k", 6, "v2", 2, 0, 0));
	uint64_t r2 = indexed_ref(c, "hint-k");
	assert_int_not_equal(r2, r1);
	assert_int_equal(*tc__hint(c, hk), r2);
	const uint32_t bad[] = { (uint32_t)indexed_ref(c, "hint-a"),
				 (uint32_t)c->arena_units + 1, UINT32_MAX };
	char val[8], buf[8];
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		*tc__hint(c, hk) = bad[i];
		int n = snprintf(val, sizeof(val), "w%u", i);
		ASSERT_RC(0, tc_set(c, "hint-k", 6, val, (size_t)n, 0, 0));
		tc_meta m;
		ASSERT_RC(0, tc_get(c, "hint-k", 6, buf, sizeof(buf), &m));
		assert_int_equal(m.len, (size_t)n);
		assert_memory_equal(buf, val, (size_t)n);
		assert_int_equal(*tc__hint(c, hk), indexed_ref(c, "hint-k"));
		ASSERT_RC(0, tc_get(c, "hint-a", 6, buf, sizeof(buf), &m));
		assert_int_equal(m.len, 1);
		assert_int_equal(buf[0], 'A');
	}
	tc_close(c);
}

/*
 * The hint table's size: the least power of two of at least two words a
 * key of max_entries, from 2^10 words to 2^21 (8 MiB), whatever the
 * capacity beyond 2^20 keys.
 */
static void test_the_hint_table_is_a_power_of_two_of_two_words_a_key_to_8_mib(void **state)
{
	(void)state;
	static const struct { uint64_t entries, words; } want[] = {
		{ TC_MIN_ENTRIES, 1u << 10 }, { 1024, 1u << 11 }, { 1025, 1u << 12 },
		{ 1u << 20, 1u << 21 }, { (1u << 20) + 1, 1u << 21 }, { 1u << 22, 1u << 21 },
	};
	for (unsigned i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		char name[64];
		tc_cache *c = wb_create(fx_name(name), want[i].entries, 1 << 20, 4, TC_EVICT_NONE);
		if (c->hint_map != want[i].words * sizeof(uint32_t) ||
		    c->hint_mask != want[i].words - 1)
			fail_msg("max_entries %llu: %zu bytes of hints, mask %#llx; want %llu words",
				 (unsigned long long)want[i].entries, c->hint_map,
				 (unsigned long long)c->hint_mask,
				 (unsigned long long)want[i].words);
		/* The last word is the handle's: a write through it lands. */
		c->hints[c->hint_mask] = 1;
		assert_int_equal(c->hints[c->hint_mask], 1);
		tc_close(c);
		tc_unlink(name);
	}
}

/* This process's address space in KiB (/proc/self/status, VmSize). */
static long vm_kib(void)
{
	long kib = fx_status_kib("VmSize");
	assert_true(kib > 0);
	return kib;
}

/*
 * A handle's hint table is unmapped when the handle goes: at tc_close and
 * when tc_open fails after mapping it (every attach record taken, -EUSERS).
 * 32 opens of each kind leave the address space as it was, where a table
 * left behind would add 32 x 512 KiB.
 */
static void test_a_handle_unmaps_its_hints_at_close_and_on_a_failed_attach(void **state)
{
	(void)state;
	char name[64];
	tc_cache *c = wb_create(fx_name(name), 1u << 16, 4 << 20, 4, TC_EVICT_NONE), *d;
	assert_int_equal(c->hint_map, 512u << 10);
	ASSERT_RC(0, tc_open(&d, name, NULL)); /* warm: the allocator's own maps */
	tc_close(d);
	long before = vm_kib();
	for (int i = 0; i < 32; i++) {
		ASSERT_RC(0, tc_open(&d, name, NULL));
		ASSERT_RC(0, tc_set(d, "hk", 2, "v", 1, 0, 0)); /* a page of it touched */
		tc_close(d);
	}
	long closed = vm_kib();
	/* Every free attach record claimed by this (live) process. */
	uint64_t pid = (uint64_t)getpid();
	bool mine[256] = { false };
	assert_true(c->max_attach <= 256);
	for (uint32_t i = 0; i < c->max_attach; i++)
		mine[i] = tc__cas(&c->attach[i].pid, 0, pid) == 0;
	for (int i = 0; i < 32; i++)
		ASSERT_RC(-EUSERS, tc_open(&d, name, NULL));
	long failed = vm_kib();
	for (uint32_t i = 0; i < c->max_attach; i++)
		if (mine[i])
			tc__st(&c->attach[i].pid, 0);
	tc_close(c);
	tc_unlink(name);
	if (closed - before >= 512 || failed - closed >= 512)
		fail_msg("VmSize %ld kB, after 32 opens and closes %ld, after 32 failed attaches %ld",
			 before, closed, failed);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		FX_TEST(test_add_losing_abort_race_publishes_no_duplicate),
		FX_TEST(test_hash_is_xxh3_with_the_seed_at_every_length),
		FX_TEST(test_keys_differing_in_one_byte_are_distinct),
		FX_TEST(test_key_compare_sees_every_byte_at_every_length),
		FX_TEST(test_bucket_scan_is_the_word_rule),
		FX_TEST(test_values_of_every_length_round_trip_exactly),
		FX_TEST(test_block_copy_writes_exactly_its_bytes_at_every_length),
		FX_TEST(test_reinsert_after_delete_has_larger_version),
		FX_TEST(test_threads_racing_add_have_one_winner_and_one_entry),
		FX_TEST(test_processes_racing_add_have_one_winner_and_one_entry),
		FX_TEST(test_set_racing_del_is_never_lost),
		FX_TEST(test_versions_grow_across_delete_and_reinsert),
		FX_TEST(test_a_set_leaves_its_entry_as_the_hint_and_no_hint_is_trusted),
		FX_TEST(test_the_hint_table_is_a_power_of_two_of_two_words_a_key_to_8_mib),
		FX_TEST(test_a_handle_unmaps_its_hints_at_close_and_on_a_failed_attach),
	};
	return fx_run(tests);
}
