/* SPDX-License-Identifier: MIT */
/*
 * test_checksum.c - value checksums (TC_CHECKSUM): a scribbled value byte,
 * or scribbled metadata returned with it, gives TC_ECORRUPT from every read
 * that would return it (tc_get, tc_peek, tc_dto_each, tc_snapshot_save, and
 * tc_expire / tc_incr, which carry the old value over), from every answer
 * that rests on it without the value (-E2BIG, tc_exists, tc_wait, the miss
 * of an expired entry, tc_scan's metadata and keys) and counts in
 * tc_stats.checksum_failures; without the option the same scribble is
 * returned as the value (the documented promise).  Every writer seals what
 * it writes (values of every size class edge, LRU, DTOs, rate limits,
 * read-through, snapshots); the option is recorded in the segment.
 * White-box (internal.h, layout.h) to reach the bytes to scribble.
 */
#include "whitebox.h"

#define ENTRIES 256
#define MEMORY (4u << 20)
#define READERS 8

static tc_cache *create(char *name, size_t cap, const char *tag, int eviction, bool csum)
{
	fx_name_at(name, cap, tag);
	return wb_create_flags(name, ENTRIES, MEMORY, READERS, eviction, csum ? TC_CHECKSUM : 0);
}

static uint8_t *value_of(tc_cache *c, const char *key, uint32_t kind)
{
	struct tc_entry *e = wb_entry_of(c, key, kind);
	return (uint8_t *)tc__eval(e, (uint32_t)strlen(key));
}

static uint64_t failures(tc_cache *c)
{
	tc_stats st;
	ASSERT_RC(0, tc_get_stats(c, &st));
	return st.checksum_failures;
}

static void test_scribbled_value_byte_is_ecorrupt_with_checksums(void **state)
{
	(void)state;
	char name[64], path[128];
	tc_cache *c = create(name, sizeof(name), "csv", TC_EVICT_NONE, true);
	snprintf(path, sizeof(path), "/tmp/%s.snap", name);
	uint8_t val[100], buf[128];
	memset(val, 'v', sizeof(val));
	ASSERT_RC(0, tc_set(c, "k", 1, val, sizeof(val), 3, 0));
	ASSERT_RC(0, tc_get(c, "k", 1, buf, sizeof(buf), NULL));
	assert_int_equal(failures(c), 0);
	tc_meta m0;
	ASSERT_RC(0, tc_get(c, "k", 1, buf, sizeof(buf), &m0));
	value_of(c, "k", TC_KIND_KEY)[57] ^= 0x01; /* one bit of one byte */
	tc_stats st0;
	ASSERT_RC(0, tc_get_stats(c, &st0));
	ASSERT_RC(TC_ECORRUPT, tc_get(c, "k", 1, buf, sizeof(buf), NULL));
	assert_int_equal(failures(c), 1);
	const void *p = (const void *)1;
	ASSERT_RC(0, tc_read_lock(c));
	ASSERT_RC(TC_ECORRUPT, tc_peek(c, "k", 1, &p, NULL));
	assert_null(p);
	tc_read_unlock(c);
	assert_int_equal(failures(c), 2);
	tc_snapshot_report rep;
	ASSERT_RC(TC_ECORRUPT, tc_snapshot_save(c, path, &rep));
	assert_int_equal(access(path, F_OK), -1);
	assert_int_equal(failures(c), 3);
	/* tc_expire carries the value over: refused, the key is unchanged. */
	ASSERT_RC(TC_ECORRUPT, tc_expire(c, "k", 1, 60000));
	assert_int_equal(failures(c), 4);
	tc_stats st1;
	ASSERT_RC(0, tc_get_stats(c, &st1));
	assert_int_equal(st1.errors - st0.errors, 3); /* the quiet read counts nothing */
	/* A new value replaces the damaged one and reads whole. */
	ASSERT_RC(0, tc_set(c, "k", 1, val, sizeof(val), 3, 0));
	tc_meta m;
	ASSERT_RC(0, tc_get(c, "k", 1, buf, sizeof(buf), &m));
	assert_int_equal(m.len, sizeof(val));
	assert_true(m.version > m0.version);
	assert_memory_equal(buf, val, sizeof(val));
	assert_int_equal(failures(c), 4);
	tc_close(c);
	tc_unlink(name);
}

/* tc_get_many and tc_peek_many verify each value as tc_get does (their
 * checked path, the handle's rslow not 0): the damaged key's request is
 * TC_ECORRUPT (no pointer handed out), its neighbours in the same batch are
 * served, and each failure is counted; an LRU handle's batch sets the
 * reference bits a tc_get would. */
static void test_batched_reads_verify_each_value(void **state)
{
	(void)state;
	char name[64];
	tc_cache *c = create(name, sizeof(name), "csm", TC_EVICT_NONE, true);
	uint8_t val[100], bufs[3][128];
	memset(val, 'v', sizeof(val));
	ASSERT_RC(0, tc_set(c, "a", 1, val, sizeof(val), 0, 0));
	ASSERT_RC(0, tc_set(c, "k", 1, val, sizeof(val), 0, 0));
	ASSERT_RC(0, tc_set(c, "z", 1, val, sizeof(val), 0, 0));
	value_of(c, "k", TC_KIND_KEY)[57] ^= 0x01;
	tc_req r[3] = {
		{ .key = "a", .klen = 1, .buf = bufs[0], .cap = sizeof(bufs[0]) },
		{ .key = "k", .klen = 1, .buf = bufs[1], .cap = sizeof(bufs[1]) },
		{ .key = "z", .klen = 1, .buf = bufs[2], .cap = sizeof(bufs[2]) },
	};
	ASSERT_RC(2, tc_get_many(c, r, 3));
	ASSERT_RC(0, r[0].rc);
	ASSERT_RC(TC_ECORRUPT, r[1].rc);
	ASSERT_RC(0, r[2].rc);
	assert_memory_equal(bufs[0], val, sizeof(val));
	assert_memory_equal(bufs[2], val, sizeof(val));
	assert_int_equal(failures(c), 1);
	const void *v[3];
	ASSERT_RC(0, tc_read_lock(c));
	ASSERT_RC(2, tc_peek_many(c, r, 3, v));
	ASSERT_RC(TC_ECORRUPT, r[1].rc);
	assert_null(v[1]);
	assert_non_null(v[0]);
	assert_memory_equal(v[2], val, sizeof(val));
	tc_read_unlock(c);
	assert_int_equal(failures(c), 2);
	tc_close(c);
	tc_unlink(name);

	c = create(name, sizeof(name), "csl", TC_EVICT_LRU, false);
	ASSERT_RC(0, tc_set(c, "a", 1, val, sizeof(val), 0, 0));
	ASSERT_RC(0, tc_set(c, "z", 1, val, sizeof(val), 0, 0));
	struct tc_entry *ea = wb_entry_of(c, "a", TC_KIND_KEY);
	struct tc_entry *ez = wb_entry_of(c, "z", TC_KIND_KEY);
	ea->refbit = 0;
	ez->refbit = 0;
	tc_req q[1] = { { .key = "z", .klen = 1, .buf = bufs[0], .cap = sizeof(bufs[0]) } };
	ASSERT_RC(1, tc_get_many(c, q, 1));
	assert_int_equal(ez->refbit, 1); /* read: referenced */
	assert_int_equal(ea->refbit, 0); /* not read */
	tc_close(c);
	tc_unlink(name);
}

static void *buf_fn(const tc_meta *m, void *arg)
{
	(void)m;
	return arg;
}

/* tc_get_with checks the copy it made into FN's buffer, as tc_get checks
 * its BUF: the damaged bytes are there, and the call says TC_ECORRUPT; the
 * same for a value that fits its BUF. */
static void test_scribbled_value_byte_is_ecorrupt_from_get_with(void **state)
{
	(void)state;
	char name[64];
	tc_cache *c = create(name, sizeof(name), "csw", TC_EVICT_NONE, true);
	uint8_t val[100], buf[128];
	tc_meta m;
	memset(val, 'v', sizeof(val));
	ASSERT_RC(0, tc_set(c, "k", 1, val, sizeof(val), 3, 0));
	ASSERT_RC(0, tc_get_with(c, "k", 1, NULL, 0, &m, buf_fn, buf));
	assert_memory_equal(buf, val, sizeof(val));
	assert_int_equal(failures(c), 0);
	value_of(c, "k", TC_KIND_KEY)[3] ^= 0x80;
	memset(buf, 0, sizeof(buf));
	ASSERT_RC(TC_ECORRUPT, tc_get_with(c, "k", 1, NULL, 0, &m, buf_fn, buf));
	assert_int_equal(failures(c), 1);
	assert_int_equal(m.len, sizeof(val));
	assert_int_equal(buf[3], 'v' ^ 0x80); /* the copy that was checked */
	memset(buf, 0, sizeof(buf));
	ASSERT_RC(TC_ECORRUPT, tc_get_with(c, "k", 1, buf, sizeof(buf), &m, buf_fn, NULL));
	assert_int_equal(failures(c), 2);
	assert_int_equal(buf[3], 'v' ^ 0x80);
	tc_close(c);
	tc_unlink(name);
}

static void test_scribbled_value_byte_is_returned_without_checksums(void **state)
{
	(void)state;
	char name[64];
	tc_cache *c = create(name, sizeof(name), "csoff", TC_EVICT_NONE, false);
	uint8_t val[100], buf[128];
	memset(val, 'v', sizeof(val));
	ASSERT_RC(0, tc_set(c, "k", 1, val, sizeof(val), 3, 0));
	value_of(c, "k", TC_KIND_KEY)[57] ^= 0x01;
	ASSERT_RC(0, tc_get(c, "k", 1, buf, sizeof(buf), NULL));
	val[57] ^= 0x01;
	assert_memory_equal(buf, val, sizeof(val)); /* the scribble, served */
	assert_int_equal(failures(c), 0);
	tc_info info;
	ASSERT_RC(0, tc_get_info(c, &info));
	assert_int_equal(info.flags, 0);
	char path[128];
	snprintf(path, sizeof(path), "/tmp/%s.snap", name);
	tc_snapshot_report rep;
	tc_snapshot_info si;
	ASSERT_RC(0, tc_snapshot_save(c, path, &rep));
	ASSERT_RC(0, tc_snapshot_stat(path, &si));
	assert_int_equal(si.flags, 0);
	unlink(path);
	tc_close(c);
	tc_unlink(name);
}

static void test_scribbled_metadata_is_ecorrupt(void **state)
{
	(void)state;
	char name[64];
	tc_cache *c = create(name, sizeof(name), "csmeta", TC_EVICT_LRU, true);
	uint8_t buf[64];
	const char *keys[] = { "t", "x", "v", "l" };
	for (int i = 0; i < 4; i++)
		ASSERT_RC(0, tc_set(c, keys[i], 1, "0123456789abcdef", 16, 5, 0));
	tc__st(&wb_entry_of(c, "t", TC_KIND_KEY)->type, 6);
	tc__st(&wb_entry_of(c, "x", TC_KIND_KEY)->expires_ms, tc_now_ms() + 3600 * 1000);
	struct tc_entry *ev = wb_entry_of(c, "v", TC_KIND_KEY);
	tc__st(&ev->version, tc__ld(&ev->version) + 1);
	tc__st(&wb_entry_of(c, "l", TC_KIND_KEY)->vlen, 15);
	for (int i = 0; i < 4; i++)
		ASSERT_RC(TC_ECORRUPT, tc_get(c, keys[i], 1, buf, sizeof(buf), NULL));
	assert_int_equal(failures(c), 4);
	tc_close(c);
	tc_unlink(name);
}

static void test_scribbled_counter_is_not_incremented(void **state)
{
	(void)state;
	char name[64];
	tc_cache *c = create(name, sizeof(name), "csctr", TC_EVICT_NONE, true);
	int64_t n = 0;
	ASSERT_RC(0, tc_incr(c, "n", 1, 5, 0, &n));
	assert_int_equal(n, 5);
	value_of(c, "n", TC_KIND_KEY)[0] = 9;
	ASSERT_RC(TC_ECORRUPT, tc_incr(c, "n", 1, 1, 0, &n));
	assert_int_equal(n, 5);
	assert_int_equal(failures(c), 1);
	ASSERT_RC(0, tc_del(c, "n", 1));
	ASSERT_RC(0, tc_incr(c, "n", 1, 2, 0, &n));
	ASSERT_RC(0, tc_incr(c, "n", 1, 2, 0, &n));
	assert_int_equal(n, 4);
	/* A counter whose type or length was scribbled is damaged, not "not a
	 * counter": TC_ECORRUPT, as for its value (TC_ETYPE before). */
	struct tc_entry *e = wb_entry_of(c, "n", TC_KIND_KEY);
	((uint8_t *)&e->type)[0] ^= 0x01;
	ASSERT_RC(TC_ECORRUPT, tc_incr(c, "n", 1, 1, 0, &n));
	((uint8_t *)&e->type)[0] ^= 0x01;
	ASSERT_RC(0, tc_incr(c, "n", 1, 1, 0, &n));
	assert_int_equal(n, 5);
	e = wb_entry_of(c, "n", TC_KIND_KEY);
	((uint8_t *)&e->vlen)[0] ^= 0x01; /* 9: still fits the block */
	ASSERT_RC(TC_ECORRUPT, tc_incr(c, "n", 1, 1, 0, &n));
	assert_int_equal(n, 5);
	assert_int_equal(failures(c), 3);
	/* A value that is not a counter, sound, is TC_ETYPE. */
	ASSERT_RC(0, tc_set(c, "s", 1, "12345678", 8, 0, 0));
	ASSERT_RC(TC_ETYPE, tc_incr(c, "s", 1, 1, 0, &n));
	assert_int_equal(failures(c), 3);
	tc_close(c);
	tc_unlink(name);
}

static void test_scribbled_rate_window_is_ecorrupt(void **state)
{
	(void)state;
	char name[64];
	tc_cache *c = create(name, sizeof(name), "csrate", TC_EVICT_NONE, true);
	bool allowed = false;
	uint64_t cnt = 0;
	ASSERT_RC(0, tc_rate_limit(c, "api", 3, 5, 3600 * 1000, &allowed, &cnt));
	assert_int_equal(cnt, 1);
	/* The window's count (after its 8-byte start) scribbled to 0. */
	value_of(c, "api", TC_KIND_RATE)[8] = 0;
	ASSERT_RC(TC_ECORRUPT, tc_rate_limit(c, "api", 3, 5, 3600 * 1000, &allowed, &cnt));
	assert_int_equal(cnt, 1);
	assert_int_equal(failures(c), 1);
	tc_close(c);
	tc_unlink(name);
}

struct seen {
	int n;
	char first[8];
};

static int seen_fn(const void *dto, size_t len, void *arg)
{
	struct seen *s = arg;
	if (s->n == 0 && len < sizeof(s->first)) {
		memcpy(s->first, dto, len);
		s->first[len] = '\0';
	}
	s->n++;
	return 0;
}

static void test_scribbled_dto_is_ecorrupt_before_any_callback(void **state)
{
	(void)state;
	char name[64];
	tc_cache *c = create(name, sizeof(name), "csdto", TC_EVICT_NONE, true);
	ASSERT_RC(0, tc_run_start(c, 1, 1));
	ASSERT_RC(0, tc_dto_append(c, "sig", 3, 1, "one", 3));
	ASSERT_RC(0, tc_dto_append(c, "sig", 3, 1, "two", 3));
	ASSERT_RC(0, tc_dto_append(c, "sig", 3, 1, "three", 5));
	struct seen s = { 0, "" };
	ASSERT_RC(0, tc_dto_each(c, "sig", 3, 1, seen_fn, &s));
	assert_int_equal(s.n, 3);
	assert_string_equal(s.first, "one");
	/* The oldest element: the walk reaches it last, the callback first. */
	struct tc_entry *head = wb_entry_of(c, "sig", TC_KIND_DTO);
	struct tc_entry *mid = tc__block(c, TC_DTO_PREV(tc__ld(&head->version)));
	struct tc_entry *old = tc__block(c, TC_DTO_PREV(tc__ld(&mid->version)));
	assert_non_null(old);
	((uint8_t *)tc__eval(old, 3))[1] = 'N';
	s.n = 0;
	ASSERT_RC(TC_ECORRUPT, tc_dto_each(c, "sig", 3, 1, seen_fn, &s));
	assert_int_equal(s.n, 0);
	assert_int_equal(failures(c), 1);
	size_t cnt = 0;
	ASSERT_RC(0, tc_dto_count(c, "sig", 3, &cnt)); /* no value read */
	assert_int_equal(cnt, 3);
	tc_close(c);
	tc_unlink(name);
}

static int get_loader(const void *key, size_t klen, void *buf, size_t cap, size_t *len,
		      void *arg)
{
	(void)key;
	(void)klen;
	(void)arg;
	if (cap < 6)
		return -E2BIG;
	memcpy(buf, "loaded", 6);
	*len = 6;
	return 0;
}

/* Every writer seals what it writes: values whose checksum crosses a size
 * class, of every writer, under LRU, read back whole, no failure. */
static void test_every_writer_seals_and_every_reader_verifies(void **state)
{
	(void)state;
	char name[64], path[128];
	tc_cache *c = create(name, sizeof(name), "csall", TC_EVICT_LRU, true);
	snprintf(path, sizeof(path), "/tmp/%s.snap", name);
	tc_info info;
	ASSERT_RC(0, tc_get_info(c, &info));
	assert_int_equal(info.flags, TC_CHECKSUM);
	static uint8_t val[TC_VALUE_MAX], buf[TC_VALUE_MAX];
	for (size_t i = 0; i < sizeof(val); i++)
		val[i] = (uint8_t)(i * 131 + 7);
	const size_t lens[] = { 0, 1, 7, 8, 9, 15, 16, 40, 48, 56, 100, 4000, 65536,
				TC_VALUE_MAX };
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		char key[16];
		int kl = snprintf(key, sizeof(key), "len%zu", lens[i]);
		ASSERT_RC(0, tc_set(c, key, (size_t)kl, val, lens[i], 1, 0));
		tc_meta m;
		ASSERT_RC(0, tc_get(c, key, (size_t)kl, buf, sizeof(buf), &m));
		assert_int_equal(m.len, lens[i]);
		assert_memory_equal(buf, val, lens[i]);
		const void *p;
		ASSERT_RC(0, tc_read_lock(c));
		ASSERT_RC(0, tc_peek(c, key, (size_t)kl, &p, NULL));
		assert_memory_equal(p, val, lens[i]);
		tc_read_unlock(c);
		if (lens[i] > 4000)
			ASSERT_RC(0, tc_del(c, key, (size_t)kl));
	}
	ASSERT_RC(-EEXIST, tc_add(c, "len1", 4, "x", 1, 1, 0));
	ASSERT_RC(0, tc_add(c, "added", 5, "x", 1, 1, 0));
	tc_meta m;
	ASSERT_RC(0, tc_get(c, "added", 5, buf, sizeof(buf), &m));
	ASSERT_RC(0, tc_cas(c, "added", 5, m.version, "yy", 2, 1, 0));
	ASSERT_RC(0, tc_expire(c, "added", 5, 3600 * 1000));
	ASSERT_RC(0, tc_get(c, "added", 5, buf, sizeof(buf), &m));
	assert_int_equal(m.len, 2);
	assert_memory_equal(buf, "yy", 2);
	int64_t n;
	ASSERT_RC(0, tc_incr(c, "ctr", 3, 40, 0, &n));
	ASSERT_RC(0, tc_incr(c, "ctr", 3, 2, 0, &n));
	assert_int_equal(n, 42);
	bool allowed;
	uint64_t cnt;
	ASSERT_RC(0, tc_rate_limit(c, "rl", 2, 10, 60000, &allowed, &cnt));
	ASSERT_RC(0, tc_rate_limit(c, "rl", 2, 10, 60000, &allowed, &cnt));
	assert_int_equal(cnt, 2);
	ASSERT_RC(0, tc_get_or_load(c, "lazy", 4, buf, sizeof(buf), &m, 1, 0, 0, get_loader, NULL));
	ASSERT_RC(0, tc_get(c, "lazy", 4, buf, sizeof(buf), &m));
	assert_int_equal(m.len, 6);
	ASSERT_RC(0, tc_run_start(c, 1, 1));
	ASSERT_RC(0, tc_dto_append(c, "d", 1, 2, "", 0));
	ASSERT_RC(0, tc_dto_append(c, "d", 1, 2, "abcdefghi", 9));
	struct seen s = { 0, "x" };
	ASSERT_RC(0, tc_dto_each(c, "d", 1, 2, seen_fn, &s));
	assert_int_equal(s.n, 2);
	assert_string_equal(s.first, "");
	tc_snapshot_report rep;
	ASSERT_RC(0, tc_snapshot_save(c, path, &rep));
	tc_snapshot_info si;
	ASSERT_RC(0, tc_snapshot_stat(path, &si));
	assert_int_equal(si.flags, TC_CHECKSUM); /* a restore recreates the option */
	ASSERT_RC(0, tc_purge(c, NULL, NULL));
	ASSERT_RC(0, tc_snapshot_load(c, path, 0, &rep));
	ASSERT_RC(0, tc_get(c, "len100", 6, buf, sizeof(buf), &m));
	assert_memory_equal(buf, val, 100);
	assert_int_equal(failures(c), 0);
	unlink(path);
	tc_close(c);
	tc_unlink(name);
}

static void test_the_option_is_recorded_in_the_segment(void **state)
{
	(void)state;
	char name[64], plain[64];
	tc_cache *c = create(name, sizeof(name), "csrec", TC_EVICT_NONE, true);
	ASSERT_RC(0, tc_set(c, "k", 1, "v", 1, 0, 0));
	/* A handle opened without the flag uses the segment's checksums. */
	tc_cache *d = NULL;
	ASSERT_RC(0, tc_open(&d, name, NULL));
	tc_info info;
	ASSERT_RC(0, tc_get_info(d, &info));
	assert_int_equal(info.flags, TC_CHECKSUM);
	value_of(d, "k", TC_KIND_KEY)[0] = 'w';
	char buf[4];
	ASSERT_RC(TC_ECORRUPT, tc_get(d, "k", 1, buf, sizeof(buf), NULL));
	ASSERT_RC(0, tc_set(d, "k2", 2, "v2", 2, 0, 0));
	ASSERT_RC(0, tc_get(c, "k2", 2, buf, sizeof(buf), NULL));
	tc_close(d);
	/* Asking a segment without checksums for them: TC_EGEOMETRY. */
	tc_cache *p = create(plain, sizeof(plain), "csplain", TC_EVICT_NONE, false);
	tc_opts o;
	memset(&o, 0, sizeof(o));
	o.flags = TC_CHECKSUM;
	d = (tc_cache *)1;
	ASSERT_RC(TC_EGEOMETRY, tc_open(&d, plain, &o));
	assert_null(d);
	/* An option this library does not know: the segment is refused. */
	tc__st(&p->h->options, 0x80u);
	ASSERT_RC(TC_ECORRUPT, tc_open(&d, plain, NULL));
	tc__st(&p->h->options, 0u);
	tc_close(p);
	tc_unlink(plain);
	tc_close(c);
	tc_unlink(name);
}

/* ---- every read path, against one scribbled byte of each sealed field ---- */

/* The byte a scribble flips in the entry of KEY (no expiry, a value of 100
 * bytes, version small): the value's, each field of the metadata sealed with
 * it, or the checksum's own. */
enum { S_VALUE, S_VERSION, S_EXPIRES, S_VLEN, S_TYPE, S_CSUM, S_FIELDS };
static const char *const s_names[S_FIELDS] = { "value", "version", "expires_ms", "vlen",
					       "type", "checksum" };

static void scribble_field(tc_cache *c, const char *key, int what)
{
	struct tc_entry *e = wb_entry_of(c, key, TC_KIND_KEY);
	uint32_t kl = (uint32_t)strlen(key);
	uint8_t *val = (uint8_t *)tc__eval(e, kl);
	uint8_t *p[S_FIELDS] = { val + 57, (uint8_t *)&e->version, (uint8_t *)&e->expires_ms,
				 (uint8_t *)&e->vlen, (uint8_t *)&e->type,
				 val + TC_ALIGN8(tc__ld(&e->vlen)) };
	/* Bit 7 of a small version makes it grow (tc_wait's case); expiry 0
	 * becomes 1 ms after the epoch, long past; a length one more still
	 * fits the block's class. */
	*p[what] ^= what == S_VERSION ? 0x80 : 0x01;
}

static int count_key(const void *key, size_t klen, const tc_meta *m, void *arg)
{
	(void)key;
	(void)klen;
	(void)m;
	++*(int *)arg;
	return 0;
}

static int must_not_load(const void *key, size_t klen, void *buf, size_t cap, size_t *len,
			 void *arg)
{
	(void)key;
	(void)klen;
	(void)buf;
	(void)cap;
	(void)len;
	(void)arg;
	fail_msg("a loader ran over a damaged value");
	return -EIO;
}

/* Every call that hands KEY's value or its metadata out (or acts on them)
 * answers TC_ECORRUPT, hands nothing out, and counts one failure each. */
#define READ_PATHS 14
static void every_read_refuses(tc_cache *c, const char *key, uint64_t ver0, const char *path)
{
	size_t kl = strlen(key);
	uint8_t buf[256], big[256];
	tc_meta m;
	uint64_t f0 = failures(c);
	ASSERT_RC(TC_ECORRUPT, tc_get(c, key, kl, buf, sizeof(buf), &m));
	ASSERT_RC(TC_ECORRUPT, tc_get(c, key, kl, buf, 8, &m)); /* no room: meta only */
	ASSERT_RC(TC_ECORRUPT, tc_get_with(c, key, kl, buf, sizeof(buf), &m, buf_fn, big));
	ASSERT_RC(TC_ECORRUPT, tc_get_with(c, key, kl, NULL, 0, &m, buf_fn, big));
	const void *p = (const void *)1, *v[1] = { (const void *)1 };
	tc_req r[1] = { { .key = key, .klen = kl, .buf = buf, .cap = sizeof(buf) } };
	ASSERT_RC(0, tc_read_lock(c));
	ASSERT_RC(TC_ECORRUPT, tc_peek(c, key, kl, &p, &m));
	assert_null(p);
	ASSERT_RC(0, tc_peek_many(c, r, 1, v));
	ASSERT_RC(TC_ECORRUPT, r[0].rc);
	assert_null(v[0]);
	tc_read_unlock(c);
	ASSERT_RC(0, tc_get_many(c, r, 1));
	ASSERT_RC(TC_ECORRUPT, r[0].rc);
	assert_false(tc_exists(c, key, kl));
	ASSERT_RC(TC_ECORRUPT, tc_wait(c, key, kl, ver0, 0, &m));
	ASSERT_RC(TC_ECORRUPT, tc_wait(c, key, kl, 0, 0, &m));
	ASSERT_RC(TC_ECORRUPT, tc_expire(c, key, kl, 60000));
	ASSERT_RC(TC_ECORRUPT, tc_get_or_load(c, key, kl, buf, sizeof(buf), &m, 0, 0, 0,
					      must_not_load, NULL));
	int n = 0;
	ASSERT_RC(TC_ECORRUPT, tc_scan(c, "*", count_key, &n));
	assert_int_equal(n, 0);
	tc_snapshot_report rep;
	ASSERT_RC(TC_ECORRUPT, tc_snapshot_save(c, path, &rep));
	assert_int_equal(access(path, F_OK), -1);
	assert_int_equal(failures(c) - f0, READ_PATHS);
}

/*
 * One byte of the value, of each field sealed with it, or of the checksum
 * itself: every call that reads the key refuses it, also the calls that
 * hand out its metadata alone (a buffer too small, tc_exists, tc_wait,
 * tc_scan) and an expiry scribbled into the past (a miss before: the
 * damage was served as an expiry).  A new value replaces the damage.
 */
static void test_every_read_path_refuses_every_sealed_field(void **state)
{
	(void)state;
	for (int what = 0; what < S_FIELDS; what++) {
		char name[64], path[128];
		tc_cache *c = create(name, sizeof(name), "csfield", TC_EVICT_NONE, true);
		snprintf(path, sizeof(path), "/tmp/%s.snap", name);
		uint8_t val[100], buf[128];
		memset(val, 'v', sizeof(val));
		ASSERT_RC(0, tc_set(c, "key", 3, val, sizeof(val), 3, 0));
		tc_meta m0;
		ASSERT_RC(0, tc_get(c, "key", 3, buf, sizeof(buf), &m0));
		scribble_field(c, "key", what);
		print_message("scribbled: %s\n", s_names[what]);
		every_read_refuses(c, "key", m0.version, path);
		ASSERT_RC(0, tc_set(c, "key", 3, val, sizeof(val), 3, 0));
		ASSERT_RC(0, tc_get(c, "key", 3, buf, sizeof(buf), NULL));
		assert_memory_equal(buf, val, sizeof(val));
		tc_close(c);
		tc_unlink(name);
	}
}

/* An expiry scribbled into the past (0 -> 1 ms after the epoch) of the
 * entry of KEY (KIND). */
static void scribble_expiry(tc_cache *c, const char *key, uint32_t kind)
{
	struct tc_entry *e = wb_entry_of(c, key, kind);
	assert_int_equal(tc__ld(&e->expires_ms), 0);
	((uint8_t *)&e->expires_ms)[0] ^= 0x01;
}

/*
 * The writes that answer from an expired entry (tc_add takes the key for
 * absent, tc_incr starts again from 0, tc_cas finds nothing) and the rate
 * limiter, which starts a new window over an expired one: an expiry
 * scribbled into the past is TC_ECORRUPT and changes nothing, never taken
 * for the key's end (a dedupe mark added again, a counter or a window
 * restarted).  tc_set replaces whatever is there.
 */
static void test_an_expiry_scribbled_into_the_past_is_not_the_end_of_a_key(void **state)
{
	(void)state;
	char name[64];
	tc_cache *c = create(name, sizeof(name), "csexp", TC_EVICT_NONE, true);
	int64_t n = 0;
	tc_meta m;
	uint8_t buf[16];
	ASSERT_RC(0, tc_add(c, "order-17", 8, "seen", 4, 0, 0));
	ASSERT_RC(0, tc_incr(c, "fills", 5, 7, 0, &n));
	ASSERT_RC(0, tc_set(c, "px", 2, "100", 3, 0, 0));
	ASSERT_RC(0, tc_get(c, "px", 2, buf, sizeof(buf), &m));
	bool allowed = false;
	uint64_t cnt = 0;
	ASSERT_RC(0, tc_rate_limit(c, "api", 3, 2, 3600 * 1000, &allowed, &cnt));
	ASSERT_RC(0, tc_rate_limit(c, "api", 3, 2, 3600 * 1000, &allowed, &cnt));
	assert_int_equal(cnt, 2);
	scribble_expiry(c, "order-17", TC_KIND_KEY);
	scribble_expiry(c, "fills", TC_KIND_KEY);
	scribble_expiry(c, "px", TC_KIND_KEY);
	/* The window's expiry is its own (two windows on): made 1 ms. */
	struct tc_entry *win = wb_entry_of(c, "api", TC_KIND_RATE);
	tc__st(&win->expires_ms, 1);
	uint64_t f0 = failures(c);
	ASSERT_RC(TC_ECORRUPT, tc_add(c, "order-17", 8, "seen", 4, 0, 0));
	ASSERT_RC(TC_ECORRUPT, tc_incr(c, "fills", 5, 1, 0, &n));
	assert_int_equal(n, 7);
	ASSERT_RC(TC_ECORRUPT, tc_cas(c, "px", 2, m.version, "101", 3, 0, 0));
	cnt = 0;
	ASSERT_RC(TC_ECORRUPT, tc_rate_limit(c, "api", 3, 2, 3600 * 1000, &allowed, &cnt));
	assert_int_equal(cnt, 0);
	assert_int_equal(failures(c) - f0, 4);
	/* Nothing changed: the same damage, refused again by a read. */
	ASSERT_RC(TC_ECORRUPT, tc_get(c, "order-17", 8, buf, sizeof(buf), NULL));
	ASSERT_RC(TC_ECORRUPT, tc_get(c, "fills", 5, buf, sizeof(buf), NULL));
	ASSERT_RC(TC_ECORRUPT, tc_get(c, "px", 2, buf, sizeof(buf), NULL));
	/* A set replaces the damage; a key that truly expired is absent. */
	ASSERT_RC(0, tc_set(c, "px", 2, "102", 3, 0, 0));
	ASSERT_RC(0, tc_get(c, "px", 2, buf, sizeof(buf), &m));
	assert_memory_equal(buf, "102", 3);
	ASSERT_RC(0, tc_set(c, "old", 3, "x", 1, 0, 1));
	usleep(20 * 1000);
	ASSERT_RC(-ENOENT, tc_get(c, "old", 3, buf, sizeof(buf), NULL));
	ASSERT_RC(-ENOENT, tc_get(c, "old", 3, buf, 0, NULL));
	ASSERT_RC(0, tc_add(c, "old", 3, "y", 1, 0, 0));
	assert_int_equal(failures(c) - f0, 7);
	tc_close(c);
	tc_unlink(name);
}

/*
 * A walk has no caller's key to compare: with checksums tc_scan verifies
 * each key it would hand out under the hash of the key bytes it read, so a
 * scribbled key byte or key length is skipped and reported (TC_ECORRUPT
 * after the others are visited), and tc_snapshot_save refuses instead of
 * writing a whole-looking file without that key (or with the scribbled
 * key: a load would have created it).
 */
static void test_a_scribbled_key_is_never_handed_out_by_a_walk(void **state)
{
	(void)state;
	for (int what = 0; what < 2; what++) {
		char name[64], path[128];
		tc_cache *c = create(name, sizeof(name), "cskey", TC_EVICT_NONE, true);
		snprintf(path, sizeof(path), "/tmp/%s.snap", name);
		ASSERT_RC(0, tc_set(c, "alpha", 5, "1", 1, 0, 0));
		ASSERT_RC(0, tc_set(c, "bravo", 5, "2", 1, 0, 0));
		struct tc_entry *e = wb_entry_of(c, "bravo", TC_KIND_KEY);
		if (what == 0)
			((uint8_t *)tc__ekey(e))[4] = 'x'; /* "bravx" */
		else
			tc__st(&e->klen, 4); /* "brav" */
		int n = 0;
		ASSERT_RC(TC_ECORRUPT, tc_scan(c, "*", count_key, &n));
		assert_int_equal(n, 1); /* alpha */
		tc_snapshot_report rep;
		ASSERT_RC(TC_ECORRUPT, tc_snapshot_save(c, path, &rep));
		assert_int_equal(access(path, F_OK), -1);
		uint8_t buf[8];
		ASSERT_RC(-ENOENT, tc_get(c, "bravo", 5, buf, sizeof(buf), NULL));
		tc_close(c);
		tc_unlink(name);
	}
}

struct listed {
	int n;
	size_t count;
};

static int list_key(const void *key, size_t klen, size_t count, void *arg)
{
	(void)key;
	(void)klen;
	struct listed *l = arg;
	l->n++;
	l->count = count;
	return 0;
}

/*
 * A list's count is its head's version (count << 32 | prev), sealed with the
 * head's value: tc_dto_count and tc_dto_keys, which hand it out without
 * reading any value, verify the head first (a scribbled count was returned
 * as the list's length), as tc_dto_each verifies every element.
 */
static void test_a_scribbled_list_count_is_never_handed_out(void **state)
{
	(void)state;
	char name[64];
	tc_cache *c = create(name, sizeof(name), "cscnt", TC_EVICT_NONE, true);
	ASSERT_RC(0, tc_run_start(c, 1, 1));
	ASSERT_RC(0, tc_dto_append(c, "sig", 3, 1, "one", 3));
	ASSERT_RC(0, tc_dto_append(c, "sig", 3, 1, "two", 3));
	ASSERT_RC(0, tc_dto_append(c, "sig", 3, 1, "three", 5));
	ASSERT_RC(0, tc_dto_append(c, "other", 5, 1, "x", 1));
	size_t cnt = 0;
	ASSERT_RC(0, tc_dto_count(c, "sig", 3, &cnt));
	assert_int_equal(cnt, 3);
	struct listed l = { 0, 0 };
	ASSERT_RC(0, tc_dto_keys(c, list_key, &l));
	assert_int_equal(l.n, 2);
	struct tc_entry *head = wb_entry_of(c, "sig", TC_KIND_DTO);
	((uint8_t *)&head->version)[4] ^= 0x01; /* count 3 -> 2 */
	uint64_t f0 = failures(c);
	cnt = 99;
	ASSERT_RC(TC_ECORRUPT, tc_dto_count(c, "sig", 3, &cnt));
	assert_int_equal(cnt, 0);
	l = (struct listed){ 0, 0 };
	ASSERT_RC(TC_ECORRUPT, tc_dto_keys(c, list_key, &l)); /* after the others */
	assert_int_equal(l.n, 1);
	assert_int_equal(l.count, 1); /* "other" */
	struct seen s = { 0, "" };
	ASSERT_RC(TC_ECORRUPT, tc_dto_each(c, "sig", 3, 1, seen_fn, &s));
	assert_int_equal(s.n, 0);
	assert_int_equal(failures(c) - f0, 3);
	ASSERT_RC(0, tc_dto_count(c, "other", 5, &cnt));
	assert_int_equal(cnt, 1);
	tc_close(c);
	tc_unlink(name);
}

/*
 * A list's generation (tc_entry.aux: the run it belongs to) decides whether
 * it is seen at all: a head whose generation was scribbled read as a list
 * of an earlier run, empty (count 0, nothing visited), and the next append
 * replaced it, dropping the run's elements.  With checksums the generation
 * is sealed: the list is TC_ECORRUPT for every read and append until the
 * run sweep removes it.
 */
static void test_a_scribbled_list_generation_is_never_an_empty_list(void **state)
{
	(void)state;
	char name[64];
	tc_cache *c = create(name, sizeof(name), "csgen", TC_EVICT_NONE, true);
	ASSERT_RC(0, tc_run_start(c, 1, 1));
	ASSERT_RC(0, tc_dto_append(c, "sig", 3, 1, "one", 3));
	ASSERT_RC(0, tc_dto_append(c, "sig", 3, 1, "two", 3));
	struct tc_entry *head = wb_entry_of(c, "sig", TC_KIND_DTO);
	((uint8_t *)&head->aux)[0] ^= 0x02; /* still odd: a run's */
	uint64_t f0 = failures(c);
	size_t cnt = 99;
	ASSERT_RC(TC_ECORRUPT, tc_dto_count(c, "sig", 3, &cnt));
	assert_int_equal(cnt, 0);
	struct seen s = { 0, "" };
	ASSERT_RC(TC_ECORRUPT, tc_dto_each(c, "sig", 3, 1, seen_fn, &s));
	assert_int_equal(s.n, 0);
	ASSERT_RC(TC_ECORRUPT, tc_dto_append(c, "sig", 3, 1, "three", 5));
	struct listed l = { 0, 0 };
	ASSERT_RC(TC_ECORRUPT, tc_dto_keys(c, list_key, &l));
	assert_int_equal(l.n, 0);
	assert_int_equal(failures(c) - f0, 4);
	/* The element was not replaced: the damage is still there. */
	assert_ptr_equal(wb_entry_of(c, "sig", TC_KIND_DTO), head);
	tc_close(c);
	tc_unlink(name);
}

/*
 * The run anchor (ts_ns, run_id, started_ms, starter_pid) is a value
 * tc_run_anchor hands out and shm-sweeper acts on (it ends a run older
 * than --run-timeout by started_ms): with checksums it is sealed too, and
 * a scribbled byte is TC_ECORRUPT, never returned.
 */
static void test_a_scribbled_run_anchor_is_never_handed_out(void **state)
{
	(void)state;
	for (int at = 0; at < 40; at += 8) {
		char name[64];
		tc_cache *c = create(name, sizeof(name), "csanc", TC_EVICT_NONE, true);
		ASSERT_RC(0, tc_run_start(c, 123456789, 42));
		tc_anchor a;
		ASSERT_RC(0, tc_run_anchor(c, &a));
		assert_int_equal(a.run_id, 42);
		struct tc_entry *e = tc__block(c, RUN_REF(tc__run_word(c)));
		assert_non_null(e);
		((uint8_t *)tc__eval(e, 0))[at] ^= 0x01;
		if (at == 16) { /* the generation, which the run word checks already */
			ASSERT_RC(TC_ECORRUPT, tc_run_anchor(c, &a));
		} else {
			uint64_t f0 = failures(c);
			memset(&a, 0, sizeof(a));
			ASSERT_RC(TC_ECORRUPT, tc_run_anchor(c, &a));
			assert_int_equal(a.run_id, 0);
			assert_int_equal(failures(c) - f0, 1);
		}
		ASSERT_RC(0, tc_run_end(c)); /* an end reads no anchor */
		tc_close(c);
		tc_unlink(name);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		FX_TEST(test_scribbled_value_byte_is_ecorrupt_with_checksums),
		FX_TEST(test_scribbled_value_byte_is_returned_without_checksums),
		FX_TEST(test_scribbled_value_byte_is_ecorrupt_from_get_with),
		FX_TEST(test_batched_reads_verify_each_value),
		FX_TEST(test_scribbled_metadata_is_ecorrupt),
		FX_TEST(test_scribbled_counter_is_not_incremented),
		FX_TEST(test_scribbled_dto_is_ecorrupt_before_any_callback),
		FX_TEST(test_scribbled_rate_window_is_ecorrupt),
		FX_TEST(test_every_writer_seals_and_every_reader_verifies),
		FX_TEST(test_the_option_is_recorded_in_the_segment),
		FX_TEST(test_every_read_path_refuses_every_sealed_field),
		FX_TEST(test_an_expiry_scribbled_into_the_past_is_not_the_end_of_a_key),
		FX_TEST(test_a_scribbled_key_is_never_handed_out_by_a_walk),
		FX_TEST(test_a_scribbled_list_count_is_never_handed_out),
		FX_TEST(test_a_scribbled_list_generation_is_never_an_empty_list),
		FX_TEST(test_a_scribbled_run_anchor_is_never_handed_out),
	};
	return fx_run(tests);
}
