/* SPDX-License-Identifier: MIT */
/*
 * test_badinput.c - a segment whose bytes were scribbled on.
 *
 * Each trial (one seed) creates and fills a segment, maps its /dev/shm file
 * directly and writes random bytes, random small words (which pass naive
 * range checks) and random runs at random offsets past the header: reader
 * table, attach table, index and arena alike.  Then every API call runs
 * over many keys, in the scribbling process and in a second process that
 * attaches afterwards.  Each call must return 0 or a negative code, never
 * crash, never hang and never write past the caller's buffer (canary bytes
 * follow every output buffer and struct).
 *
 * A trial runs in a child with alarm() as the hang guard; the parent reads
 * the exit status: 0 = fine, 1 = a call broke its contract, a signal = crash
 * (SIGALRM = hang).  Trials repeat over fixed seeds for a bounded time.
 *
 * A scribbled header instead must make tc_open fail with TC_ECORRUPT or
 * TC_EVERSION (or succeed when the bytes hit were not checkable), never crash.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "tickcache.h"
#include "blackbox.h"

/*
 * Bytes before this offset are the header (docs/design.md: the header is
 * whole pages, 12 KiB in layout version 3); past it lie the reader slots, the
 * attach table, the index and the arena.
 */
#define HEADER_BYTES  12288u
#define NKEYS         300
#define TRIAL_SECS    20      /* hang guard per process */
#define BUDGET_SECS   8.0     /* all scribble trials */
#define MAX_SEEDS     2000
#define CANARY        0xA5
#define CANARY_LEN    64

static int violations;

#define BAD(...)                                                             \
	do {                                                                 \
		violations++;                                                \
		bb_child_fail(__VA_ARGS__);                                  \
	} while (0)

/* A call of an int-returning function must give 0 or a negative code. */
#define CHECK_RC(call)                                                       \
	do {                                                                 \
		int r_ = (call);                                             \
		if (r_ > 0)                                                  \
			BAD("%s returned %d", #call, r_);                    \
	} while (0)

static int canary_ok(const unsigned char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (p[i] != CANARY)
			return 0;
	return 1;
}

/* ------------------------------------------------------------------ */
/* Filling and scribbling                                               */
/* ------------------------------------------------------------------ */

static int fill(tc_cache *c, uint64_t *rng)
{
	unsigned char val[2048];
	char key[32];
	unsigned i;
	uint64_t freed;
	size_t kl, len;
	int rc;

	for (i = 0; i < 200; i++) {
		kl = bb_key(key, sizeof(key), "k", i);
		len = (size_t)(bb_rand(rng) % sizeof(val));
		memset(val, (int)i, len);
		if (i % 10 == 3)
			rc = tc_incr(c, key, kl, (int64_t)i, 0, NULL);
		else
			rc = tc_set(c, key, kl, val, len, (uint32_t)(i % 3),
				    i % 7 == 0 ? 60000 : 0);
		if (rc != 0 && rc != -ENOSPC)
			return rc;
	}
	/* Leave work on the free and retire lists. */
	for (i = 0; i < 200; i += 5) {
		kl = bb_key(key, sizeof(key), "k", i);
		(void)tc_del(c, key, kl);
	}
	(void)tc_reclaim(c, &freed);
	for (i = 1; i < 200; i += 9) {
		kl = bb_key(key, sizeof(key), "k", i);
		(void)tc_set(c, key, kl, "replaced", 8, 0u, 0);
	}
	return 0;
}

static void scribble(unsigned char *base, size_t size, uint64_t *rng)
{
	size_t span = size - HEADER_BYTES, off, i, n;
	unsigned events = 1 + (unsigned)(bb_rand(rng) % 48), e;
	uint64_t word;

	for (e = 0; e < events; e++) {
		switch (bb_rand(rng) % 5) {
		case 0: /* one random byte anywhere */
			off = HEADER_BYTES + (size_t)(bb_rand(rng) % span);
			base[off] = (unsigned char)bb_rand(rng);
			break;
		case 1: /* a plausible word: small, offset-like or all ones */
			off = HEADER_BYTES + ((size_t)(bb_rand(rng) % span) & ~(size_t)7);
			switch (bb_rand(rng) % 4) {
			case 0: word = bb_rand(rng) % 64; break;
			case 1: word = bb_rand(rng) % size; break;
			case 2: word = ~(uint64_t)0; break;
			default: word = bb_rand(rng); break;
			}
			memcpy(base + off, &word, 8);
			break;
		case 2: /* a run of random bytes */
			n = 16 + (size_t)(bb_rand(rng) % 240);
			off = HEADER_BYTES + (size_t)(bb_rand(rng) % span);
			for (i = 0; i < n && off + i < size; i++)
				base[off + i] = (unsigned char)bb_rand(rng);
			break;
		default: /* the front: reader slots, attach table, start of index */
			off = HEADER_BYTES + ((size_t)(bb_rand(rng) % (64u * 1024u)) & ~(size_t)7);
			if (off + 8 > size)
				break;
			word = bb_rand(rng) % 3 == 0 ? bb_rand(rng) % 4096 : bb_rand(rng);
			memcpy(base + off, &word, 8);
			break;
		}
	}
}

static int scribble_file(const char *name, uint64_t *rng)
{
	char path[128];
	struct stat st;
	void *p;
	int fd;

	fx_shm_path(path, sizeof(path), name);
	fd = open(path, O_RDWR);
	if (fd < 0)
		return -1;
	if (fstat(fd, &st) != 0 || (size_t)st.st_size <= HEADER_BYTES + 4096) {
		close(fd);
		return -1;
	}
	p = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (p == MAP_FAILED)
		return -1;
	scribble(p, (size_t)st.st_size, rng);
	munmap(p, (size_t)st.st_size);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Every call, checked for its contract                                 */
/* ------------------------------------------------------------------ */

static int count_reader(const tc_reader *r, void *arg)
{
	(void)r;
	++*(unsigned *)arg;
	return 0;
}

static int count_attach(const tc_attach *a, void *arg)
{
	(void)a;
	++*(unsigned *)arg;
	return 0;
}

static int count_key(const void *key, size_t klen, const tc_meta *m, void *arg)
{
	const volatile unsigned char *k = key;
	size_t i;

	/* Touch every byte handed out: a wild pointer crashes here. */
	for (i = 0; i < klen && i <= TC_KEY_MAX; i++)
		(void)k[i];
	if (klen == 0 || klen > TC_KEY_MAX || m->len > TC_VALUE_MAX)
		BAD("tc_scan handed out klen %zu, len %zu", klen, m->len);
	++*(unsigned *)arg;
	return 0;
}

static int count_dto(const void *dto, size_t len, void *arg)
{
	(void)dto;
	(void)len;
	++*(unsigned *)arg;
	return 0;
}

static void get_checked(tc_cache *c, const char *key, size_t kl, size_t cap)
{
	unsigned char *buf = malloc(cap + CANARY_LEN);
	tc_meta *m = malloc(sizeof(*m) + CANARY_LEN);
	int rc;

	if (!buf || !m)
		goto out;
	memset(buf, CANARY, cap + CANARY_LEN);
	memset(m, CANARY, sizeof(*m) + CANARY_LEN);
	rc = tc_get(c, key, kl, buf, cap, m);
	if (rc > 0)
		BAD("tc_get %s returned %d", key, rc);
	if (!canary_ok(buf + cap, CANARY_LEN))
		BAD("tc_get %s (cap %zu) wrote past the buffer", key, cap);
	if (!canary_ok((unsigned char *)m + sizeof(*m), CANARY_LEN))
		BAD("tc_get %s wrote past the meta", key);
	if (rc == 0 && m->len > cap)
		BAD("tc_get %s: success with len %zu > cap %zu", key, m->len, cap);
	if (rc == -E2BIG && (m->len <= cap || m->len > TC_VALUE_MAX))
		BAD("tc_get %s: -E2BIG with len %zu, cap %zu", key, m->len, cap);
out:
	free(buf);
	free(m);
}

static void peek_checked(tc_cache *c, const char *key, size_t kl)
{
	const volatile unsigned char *v;
	const void *p = NULL;
	unsigned char sum = 0;
	tc_meta m;
	size_t i;
	int rc;

	rc = tc_read_lock(c);
	if (rc != 0) {
		if (rc > 0)
			BAD("tc_read_lock returned %d", rc);
		return;
	}
	rc = tc_peek(c, key, kl, &p, &m);
	if (rc > 0)
		BAD("tc_peek returned %d", rc);
	if (rc == 0) {
		if (m.len > TC_VALUE_MAX)
			BAD("tc_peek %s: len %zu", key, m.len);
		else if (m.len > 0 && !p)
			BAD("tc_peek %s: NULL value of len %zu", key, m.len);
		else
			for (v = p, i = 0; i < m.len; i++)
				sum ^= v[i]; /* a pointer outside the mapping crashes here */
	}
	(void)sum;
	tc_read_unlock(c);
}

static void all_calls(tc_cache *c, uint64_t *rng)
{
	static const size_t caps[] = { 0, 1, 8, 64, 700, 4096 };
	unsigned char val[1500];
	tc_stats *st = malloc(sizeof(*st) + CANARY_LEN);
	tc_info *info = malloc(sizeof(*info) + CANARY_LEN);
	tc_sweep_report rep;
	tc_anchor anchor;
	char key[32];
	unsigned i, n;
	uint64_t u;
	int64_t out;
	size_t kl, len, cnt;
	uint32_t u32;
	bool b, alive;
	tc_meta m;

	if (!st || !info)
		goto out;
	for (i = 0; i < NKEYS; i++) {
		kl = bb_key(key, sizeof(key), "k", i);
		get_checked(c, key, kl, caps[bb_rand(rng) % FX_ARRAY_SIZE(caps)]);
		peek_checked(c, key, kl);
		(void)tc_exists(c, key, kl);
		switch (bb_rand(rng) % 8) {
		case 0:
			len = (size_t)(bb_rand(rng) % sizeof(val));
			memset(val, 'v', len);
			CHECK_RC(tc_set(c, key, kl, val, len, 0u, bb_rand(rng) % 2 ? 0 : 5000));
			break;
		case 1:
			CHECK_RC(tc_add(c, key, kl, "a", 1, 0u, 0));
			break;
		case 2:
			if (tc_get(c, key, kl, val, sizeof(val), &m) == 0)
				CHECK_RC(tc_cas(c, key, kl, m.version, "c", 1, 0u, 0));
			else
				CHECK_RC(tc_cas(c, key, kl, bb_rand(rng), "c", 1, 0u, 0));
			break;
		case 3:
			CHECK_RC(tc_del(c, key, kl));
			break;
		case 4:
			CHECK_RC(tc_expire(c, key, kl, bb_rand(rng) % 2 ? 0 : 100000));
			break;
		case 5:
			out = 0x5151;
			CHECK_RC(tc_incr(c, key, kl, 1, 0, &out));
			break;
		case 6:
			CHECK_RC(tc_rate_limit(c, key, kl, 10, 1000, &b, &u));
			break;
		default:
			CHECK_RC(tc_dto_count(c, key, kl, &cnt));
			break;
		}
	}
	memset(st, CANARY, sizeof(*st) + CANARY_LEN);
	CHECK_RC(tc_get_stats(c, st));
	if (!canary_ok((unsigned char *)st + sizeof(*st), CANARY_LEN))
		BAD("tc_get_stats wrote past the struct");
	memset(info, CANARY, sizeof(*info) + CANARY_LEN);
	CHECK_RC(tc_get_info(c, info));
	if (!canary_ok((unsigned char *)info + sizeof(*info), CANARY_LEN))
		BAD("tc_get_info wrote past the struct");
	n = 0;
	CHECK_RC(tc_readers(c, count_reader, &n));
	CHECK_RC(tc_attached(c, count_attach, &n));
	CHECK_RC(tc_scan(c, NULL, count_key, &n));
	CHECK_RC(tc_scan(c, "k1*", count_key, &n));
	CHECK_RC(tc_readers_clean(c, &u32));
	CHECK_RC(tc_sweep(c, 0, &rep));
	CHECK_RC(tc_sweep(c, 16, NULL));
	CHECK_RC(tc_reclaim(c, &u));
	CHECK_RC(tc_purge(c, "k2*", &u));
	CHECK_RC(tc_run_anchor(c, &anchor));
	CHECK_RC(tc_dto_each(c, "k1", 2, 0u, count_dto, &n));
	CHECK_RC(tc_lease_holder(c, &u32, &u, &alive));
	/* And once more, after the maintenance passes touched the lists. */
	for (i = 0; i < NKEYS; i += 7) {
		kl = bb_key(key, sizeof(key), "k", i);
		get_checked(c, key, kl, 4096);
		peek_checked(c, key, kl);
		CHECK_RC(tc_set(c, key, kl, "after", 5, 0u, 0));
	}
out:
	free(st);
	free(info);
}

/*
 * One trial, in its own process: create, fill, scribble, call everything;
 * then the same from a freshly forked process that attaches afterwards.
 * Exit status: 0 fine, 1 contract broken here, 2 setup failed, 3 the
 * second process broke a contract, 4 it crashed or hung.
 */
static void trial(const char *name, uint64_t seed)
{
	uint64_t rng = seed * 0x9E3779B97F4A7C15ull + 1;
	tc_opts o = fx_opts(256, 512u * 1024u, 8);
	tc_cache *c = NULL, *d = NULL;
	pid_t pid;
	int rc, st;

	alarm(TRIAL_SECS);
	o.eviction = seed % 2 ? TC_EVICT_LRU : TC_EVICT_NONE;
	if (tc_open(&c, name, &o) != 0 || fill(c, &rng) != 0 || scribble_file(name, &rng) != 0)
		_exit(BB_EXIT_SETUP);
	all_calls(c, &rng);
	pid = fork();
	if (pid == 0) {
		violations = 0;
		alarm(TRIAL_SECS);
		rc = tc_open(&d, name, NULL);
		if (rc > 0)
			BAD("tc_open of the scribbled segment returned %d", rc);
		if (rc == 0) {
			all_calls(d, &rng);
			tc_close(d);
		}
		_exit(violations ? BB_EXIT_FAIL : BB_EXIT_OK);
	}
	st = pid > 0 ? fx_wait(pid) : BB_EXIT_SETUP;
	tc_close(c);
	if (violations)
		_exit(1);
	if (st == BB_EXIT_FAIL)
		_exit(3);
	if (st != 0) {
		bb_child_fail("seed %llu: the attaching process ended with status %d",
			      (unsigned long long)seed, st);
		_exit(4);
	}
	_exit(0);
}

static void test_scribbled_segment_calls_return_codes_never_crash(void **state)
{
	char name[TC_NAME_MAX + 1];
	double end = fx_mono_s() + BUDGET_SECS;
	unsigned seeds = 0, failed = 0, setup = 0;
	uint64_t seed;
	pid_t pid;
	int st;

	(void)state;
	for (seed = 1; seed <= MAX_SEEDS && fx_mono_s() < end; seed++) {
		fx_name(name);
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0)
			trial(name, seed);
		st = fx_wait(pid);
		(void)tc_unlink(name);
		seeds++;
		if (st == BB_EXIT_SETUP) {
			setup++;
			continue;
		}
		if (st != 0) {
			failed++;
			print_message("seed %llu: %s (status %d)\n", (unsigned long long)seed,
				      st == 128 + SIGALRM ? "HANG" :
				      st > 128 ? "CRASH" :
				      st == 4 ? "second process crashed or hung" :
				      "a call broke its contract", st);
		}
	}
	print_message("%u scribble trials, %u failed, %u could not set up\n", seeds, failed,
		      setup);
	assert_true(seeds >= 10);
	assert_int_equal(0, setup);
	assert_int_equal(0, failed);
}

/* ------------------------------------------------------------------ */
/* Header damage                                                        */
/* ------------------------------------------------------------------ */

enum damage { ZERO_MAGIC, FLIP_VERSION, ALL_ONES, TRUNCATE_PAGE, TRUNCATE_EMPTY,
	      RANDOM_HEADER };

static const char *const damage_names[] = {
	"zeroed magic", "layout version changed", "header all ones",
	"truncated to one page", "truncated to zero bytes", "random header bytes",
};

/* In a child: damage the header, attach; exit 0 when the code was right. */
static void damage_trial(const char *name, enum damage how, uint64_t seed)
{
	uint64_t rng = seed + 77;
	tc_opts o = fx_opts(256, 256u * 1024u, 4);
	tc_cache *c = NULL;
	char path[128];
	unsigned char *p;
	struct stat st;
	uint32_t ver;
	int fd, rc, i;

	alarm(TRIAL_SECS);
	if (tc_open(&c, name, &o) != 0 || tc_set(c, "k", 1, "v", 1, 0u, 0) != 0)
		_exit(BB_EXIT_SETUP);
	tc_close(c);
	fx_shm_path(path, sizeof(path), name);
	fd = open(path, O_RDWR);
	if (fd < 0 || fstat(fd, &st) != 0)
		_exit(BB_EXIT_SETUP);
	p = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		_exit(BB_EXIT_SETUP);
	switch (how) {
	case ZERO_MAGIC:
		memset(p, 0, 8);
		break;
	case FLIP_VERSION:
		/* The layout version follows the 8-byte magic. */
		memcpy(&ver, p + 8, 4);
		ver += 1000;
		memcpy(p + 8, &ver, 4);
		break;
	case ALL_ONES:
		memset(p, 0xff, HEADER_BYTES);
		break;
	case TRUNCATE_PAGE:
		if (ftruncate(fd, 4096) != 0)
			_exit(BB_EXIT_SETUP);
		break;
	case TRUNCATE_EMPTY:
		if (ftruncate(fd, 0) != 0)
			_exit(BB_EXIT_SETUP);
		break;
	case RANDOM_HEADER:
		for (i = 0; i < 8; i++)
			p[bb_rand(&rng) % 256] = (unsigned char)bb_rand(&rng);
		break;
	}
	munmap(p, (size_t)st.st_size);
	close(fd);

	rc = tc_open(&c, name, NULL);
	if (how == RANDOM_HEADER) {
		/* Some header bytes (seed, creation time) cannot be checked. */
		if (rc == 0) {
			all_calls(c, &rng);
			tc_close(c);
			_exit(violations ? BB_EXIT_FAIL : BB_EXIT_OK);
		}
		if (rc != TC_ECORRUPT && rc != TC_EVERSION)
			bb_child_fail("random header: tc_open gave %d (%s)", rc, tc_strerror(rc));
		_exit(rc == TC_ECORRUPT || rc == TC_EVERSION ? BB_EXIT_OK : BB_EXIT_FAIL);
	}
	if (rc == 0)
		tc_close(c);
	if (how == FLIP_VERSION ? rc != TC_EVERSION : rc != TC_ECORRUPT) {
		bb_child_fail("%s: tc_open gave %d (%s)", damage_names[how], rc, tc_strerror(rc));
		_exit(BB_EXIT_FAIL);
	}
	/*
	 * With TC_CREATE too: the damaged segment is reported, not reused.  An
	 * object that was never sized holds nothing to lose: creating it anew
	 * under the creation lock is as good as reporting it.
	 */
	rc = tc_open(&c, name, &o);
	if (rc == 0 && how == TRUNCATE_EMPTY) {
		char buf[4];
		int ok = tc_get(c, "k", 1, buf, sizeof(buf), NULL) == -ENOENT &&
			 tc_set(c, "k", 1, "v", 1, 0u, 0) == 0 &&
			 tc_get(c, "k", 1, buf, sizeof(buf), NULL) == 0;

		tc_close(c);
		if (!ok)
			bb_child_fail("empty object re-created by TC_CREATE does not work");
		_exit(ok && tc_unlink(name) == 0 ? BB_EXIT_OK : BB_EXIT_FAIL);
	}
	if (rc == 0)
		tc_close(c);
	if (rc != TC_ECORRUPT && rc != TC_EVERSION) {
		bb_child_fail("%s, TC_CREATE: tc_open gave %d (%s)", damage_names[how], rc,
			      tc_strerror(rc));
		_exit(BB_EXIT_FAIL);
	}
	/* tc_unlink removes it. */
	_exit(tc_unlink(name) == 0 ? BB_EXIT_OK : BB_EXIT_FAIL);
}

static int run_damage(enum damage how, uint64_t seed)
{
	char name[TC_NAME_MAX + 1];
	pid_t pid;
	int st;

	fx_name(name);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		damage_trial(name, how, seed);
	st = fx_wait(pid);
	(void)tc_unlink(name);
	if (st != 0)
		print_message("%s (seed %llu): status %d%s\n", damage_names[how],
			      (unsigned long long)seed, st, st > 128 ? " (crash or hang)" : "");
	return st;
}

static void test_damaged_header_open_returns_ecorrupt_or_eversion(void **state)
{
	int fails = 0;

	(void)state;
	fails += run_damage(ZERO_MAGIC, 0) != 0;
	fails += run_damage(FLIP_VERSION, 0) != 0;
	fails += run_damage(ALL_ONES, 0) != 0;
	fails += run_damage(TRUNCATE_PAGE, 0) != 0;
	fails += run_damage(TRUNCATE_EMPTY, 0) != 0;
	assert_int_equal(0, fails);
}

static void test_random_header_bytes_never_crash_open(void **state)
{
	uint64_t seed;
	int fails = 0;

	(void)state;
	for (seed = 1; seed <= 40; seed++)
		fails += run_damage(RANDOM_HEADER, seed) != 0;
	assert_int_equal(0, fails);
}

/* A half-created segment: the object exists but was never sized. */
static void test_empty_shm_object_returns_ecorrupt_and_unlinks(void **state)
{
	char name[TC_NAME_MAX + 1], path[128];
	tc_cache *c = NULL;
	int fd;

	(void)state;
	fx_name(name);
	fx_shm_path(path, sizeof(path), name);
	fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	close(fd);
	ASSERT_RC(TC_ECORRUPT, tc_open(&c, name, NULL));
	assert_null(c);
	ASSERT_RC(0, tc_unlink(name));
	ASSERT_RC(-ENOENT, tc_open(&c, name, NULL));
}

/* The plain bad inputs of issue 2, all in one place. */
static void test_bad_arguments_return_einval_or_emsgsize(void **state)
{
	static const char *const names[] = { "../x", "", "/", "x/../../etc",
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" };
	char name[TC_NAME_MAX + 1], big_key[TC_KEY_MAX + 1];
	tc_opts o = fx_opts(256, 2u << 20, 4);
	unsigned char *big = calloc(1, TC_VALUE_MAX + 1);
	tc_cache *c = NULL;
	size_t i;

	(void)state;
	assert_non_null(big);
	for (i = 0; i < FX_ARRAY_SIZE(names); i++) {
		ASSERT_RC(-EINVAL, tc_open(&c, names[i], &o));
		ASSERT_RC(-EINVAL, tc_unlink(names[i]));
	}
	ASSERT_RC(-EINVAL, tc_open(&c, NULL, &o));
	fx_name(name);
	ASSERT_RC(0, tc_open(&c, name, &o));
	memset(big_key, 'k', sizeof(big_key));
	ASSERT_RC(-EINVAL, tc_set(c, big_key, sizeof(big_key), "v", 1, 0u, 0));
	ASSERT_RC(-EINVAL, tc_set(c, big_key, 0, "v", 1, 0u, 0));
	ASSERT_RC(-EINVAL, tc_set(c, NULL, 1, "v", 1, 0u, 0));
	ASSERT_RC(-EMSGSIZE, tc_set(c, "k", 1, big, TC_VALUE_MAX + 1, 0u, 0));
	ASSERT_RC(-EINVAL, tc_get(c, big_key, sizeof(big_key), big, 16, NULL));
	free(big);
	tc_close(c);
}


int main(void)
{
	const struct CMUnitTest tests[] = {
		FX_TEST(test_bad_arguments_return_einval_or_emsgsize),
		FX_TEST(test_empty_shm_object_returns_ecorrupt_and_unlinks),
		FX_TEST(test_damaged_header_open_returns_ecorrupt_or_eversion),
		FX_TEST(test_random_header_bytes_never_crash_open),
		FX_TEST(test_scribbled_segment_calls_return_codes_never_crash),
	};

	return fx_run(tests);
}
