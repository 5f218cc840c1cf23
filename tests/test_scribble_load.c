/* SPDX-License-Identifier: MIT */
/*
 * test_scribble_load.c - random bytes written into a live segment while
 * other processes call every public function on it.
 *
 * Each round (one seed) creates a segment (TC_EVICT_LRU or TC_EVICT_NONE by
 * the seed), fills it with keys, counters, TTL policies, rate limiters and
 * the DTO lists of a run, and starts:
 *   - NWORKERS worker processes, each calling every public function in a
 *     random order (reads, writes, runs and DTO lists, scan, purge,
 *     snapshots saved, described and loaded back, policies set and loaded
 *     from a file, stats, readers, audit, sweep, reclaim, leases, closing and
 *     reopening its handle, and the calls that need no segment: every public
 *     function of include/tickcache.h), checking each result against it: a
 *     return code of the library, lengths within the caller's buffer, key
 *     lengths of 1..TC_KEY_MAX handed to callbacks;
 *   - one scribbler process that maps the segment's /dev/shm object and
 *     writes random bytes, small words, copies of other 8-byte words (a
 *     block reference moved where another belongs) and zeros at random
 *     offsets of the reader table, attach table, index, arena and the
 *     mutable lines of the header, for the whole round.
 * During the round one worker is killed with SIGKILL and replaced, and in
 * every third round the segment is unlinked under load.  Then the parent
 * sets the stop flag: every child must exit within HANG_SECS (a hang is a
 * failure: the children are killed and the test fails), with status 0
 * (a sanitizer report, a crash or a broken promise is a failure).  A last
 * process attaches alone and calls tc_audit and every call once.
 *
 * Seeds: round i uses seed BASE + i; each seed is printed.  The op order
 * of each process and every scribble follow from the seed; the
 * interleaving of the processes does not, so a seed reproduces a failure
 * statistically, not exactly (run it with TC_SCRIBBLE_SEED and a long
 * TC_SCRIBBLE_SECS).
 *
 * Environment:
 *   TC_SCRIBBLE_SECS      total time of the rounds (default 16)
 *   TC_SCRIBBLE_ROUND_MS  length of one round (default 2000)
 *   TC_SCRIBBLE_SEED      the seed of the first round (decimal or 0x hex;
 *                         "random": from the clock); default a fixed base
 *   TC_SCRIBBLE_ROUNDS    stop after this many rounds (1: just that seed)
 *   TC_SCRIBBLE_HANG_SECS the bound on a child's exit after stop (default 60)
 * Soak: TC_SCRIBBLE_SECS=600 TC_SCRIBBLE_SEED=random build/tests/test_scribble_load
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
#include "layout.h"
#include "blackbox.h"

#define NWORKERS    3
#define NKEYS       48
#define VAL_MAX     40000
#define SEED_BASE   0x5C81BB1E00000000ull

struct ctl {
	volatile int stop;
	uint64_t ops[NWORKERS + 1];
	uint64_t corrupt; /* TC_ECORRUPT returns: the scribbles were seen */
	uint64_t broken;  /* broken promises, also of workers killed since */
};

static struct ctl *ctl;
static char pol_path[128];
static unsigned char valbuf[VAL_MAX + 64];
static unsigned char outbuf[VAL_MAX + 64];
static int violations;

#define BAD(...)                                                             \
	do {                                                                 \
		violations++;                                                \
		__atomic_add_fetch(&ctl->broken, 1, __ATOMIC_RELAXED);       \
		bb_child_fail(__VA_ARGS__);                                  \
	} while (0)
#define PROMISE_FAIL(...) BAD(__VA_ARGS__)
#include "promises.h"

static uint64_t env_u64(const char *name, uint64_t dflt)
{
	const char *v = getenv(name);
	return v && *v ? strtoull(v, NULL, 0) : dflt;
}

/* ---- what a worker checks ------------------------------------------------ */

static int code(int rc, const char *call)
{
	if (rc == TC_ECORRUPT)
		__atomic_add_fetch(&ctl->corrupt, 1, __ATOMIC_RELAXED);
	const char *msg = tc_strerror(rc);
	if (!msg || !*msg)
		BAD("%s: tc_strerror(%d) names nothing", call, rc);
	if (pr_is_code(rc))
		return rc;
	BAD("%s returned %d, no code of the library", call, rc);
	return rc;
}
#define RC(call) code((call), #call)

/* The callbacks are tests/promises.h's (pr_scan_fn never stops a scan,
 * pr_reader_fn checks the state only). */

/* ---- one random call ------------------------------------------------------- */

static size_t pick_key(uint64_t *rng, char *k, const char *prefix)
{
	return bb_key(k, 32, prefix, (unsigned)(bb_rand(rng) % NKEYS));
}

static size_t pick_len(uint64_t *rng)
{
	uint64_t r = bb_rand(rng);
	if (r % 50 == 0)
		return (size_t)(r >> 8) % VAL_MAX;
	return (size_t)(r >> 8) % 3000;
}

static uint64_t pick_ttl(uint64_t *rng)
{
	static const uint64_t ttl[] = { 0, TC_TTL_DEFAULT, 1, 50, 60000 };
	return ttl[bb_rand(rng) % 5];
}

/* tc_get_with's buffer: only for a value over the caller's cap (ARG). */
static void *with_buf(const tc_meta *m, void *arg)
{
	if (m->len <= *(const size_t *)arg || m->len > TC_VALUE_MAX)
		BAD("tc_get_with asked for %zu bytes over a cap of %zu", m->len,
		    *(const size_t *)arg);
	static unsigned char withbuf[VAL_MAX];
	return m->len <= VAL_MAX ? withbuf : NULL;
}

/* tc_get_many (PEEK: tc_peek_many in a section) of up to 20 keys. */
static void many(tc_cache *c, uint64_t *rng, bool peek)
{
	enum { N = 20 };
	static unsigned char bufs[N][128];
	char keys[N][32];
	tc_req r[N];
	const void *v[N];
	size_t n = 1 + bb_rand(rng) % N;
	for (size_t i = 0; i < n; i++)
		r[i] = (tc_req){ .key = keys[i], .klen = pick_key(rng, keys[i], "k"),
				 .buf = bufs[i], .cap = bb_rand(rng) % 129 };
	if (peek && RC(tc_read_lock(c)))
		return;
	int hits = peek ? tc_peek_many(c, r, n, v) : tc_get_many(c, r, n);
	if (hits < 0)
		RC(hits);
	else if ((size_t)hits > n)
		BAD("tc_get_many: %d hits of %zu", hits, n);
	int nhit = 0;
	for (size_t i = 0; i < n; i++) {
		int rc = RC(r[i].rc);
		nhit += rc == 0;
		if (hits < 0 && rc != hits)
			BAD("tc_get_many: %d, request %zu %d", hits, i, rc);
		if (hits >= 0)
			pr_request(&r[i], peek, peek ? v[i] : NULL);
		if (peek && rc == 0 && r[i].meta.len <= VAL_MAX)
			memcpy(outbuf, v[i], r[i].meta.len);
	}
	if (peek)
		tc_read_unlock(c);
	if (hits >= 0 && hits != nhit)
		BAD("tc_get_many: %d hits, %d requests answered 0", hits, nhit);
}

static void one_call(tc_cache *c, uint64_t *rng, const char *snap)
{
	char k[32];
	size_t kl, n;
	tc_meta m;
	int rc;
	uint64_t r = bb_rand(rng);
	switch (r % 40) {
	case 0: case 1: case 2: case 3: {
		kl = pick_key(rng, k, "k");
		size_t cap = (r >> 8) % 4 ? VAL_MAX : (size_t)(r >> 16) % 64;
		rc = RC(tc_get(c, k, kl, outbuf, cap, &m));
		if (rc == 0 && m.len > cap)
			BAD("tc_get: 0 with length %zu over cap %zu", m.len, cap);
		break;
	}
	case 4: {
		kl = pick_key(rng, k, "k");
		if (RC(tc_read_lock(c)))
			break;
		const void *v = NULL;
		if (RC(tc_peek(c, k, kl, &v, &m)) == 0) {
			if (m.len > TC_VALUE_MAX || (m.len && !v))
				BAD("tc_peek: length %zu", m.len);
			else if (m.len)
				memcpy(outbuf, v, m.len);
		}
		tc_read_unlock(c);
		break;
	}
	case 5: {
		kl = pick_key(rng, k, "k");
		(void)tc_exists(c, k, kl);
		/* A short wait over the scribbled words: it returns (a check,
		 * or its 1 ms timeout), whatever the words hold. */
		uint64_t seq = r >> 40;
		RC(tc_wait(c, k, kl, (r >> 8) & 1 ? (r >> 16) & 0xff : 0, 1, &m));
		RC(tc_wait_any(c, &seq, (r >> 9) & 1));
		break;
	}
	case 6: case 7: case 8:
		kl = pick_key(rng, k, "k");
		n = pick_len(rng);
		RC(tc_set(c, k, kl, valbuf, n, (uint32_t)(r >> 20) % 3, pick_ttl(rng)));
		break;
	case 9:
		kl = pick_key(rng, k, "k");
		n = pick_len(rng);
		RC(tc_add(c, k, kl, valbuf, n, 0, pick_ttl(rng)));
		break;
	case 10:
		kl = pick_key(rng, k, "k");
		if (RC(tc_get(c, k, kl, outbuf, VAL_MAX, &m)) == 0)
			RC(tc_cas(c, k, kl, m.version, valbuf, pick_len(rng), 0, pick_ttl(rng)));
		break;
	case 11:
		kl = pick_key(rng, k, "k");
		RC(tc_del(c, k, kl));
		break;
	case 12:
		kl = pick_key(rng, k, (r >> 8) & 1 ? "c" : "k");
		RC(tc_incr(c, k, kl, (int64_t)(r >> 32) % 100 - 50, pick_ttl(rng), NULL));
		break;
	case 13:
		kl = pick_key(rng, k, "k");
		RC(tc_expire(c, k, kl, pick_ttl(rng)));
		break;
	case 14: {
		tc_anchor a;
		switch ((r >> 8) % 4) {
		case 0: RC(tc_run_start(c, (int64_t)r, r >> 16)); break;
		case 1: RC(tc_run_end(c)); break;
		case 2:
			if (RC(tc_run_anchor(c, &a)) == 0)
				RC(tc_run_end_gen(c, a.generation));
			break;
		default: RC(tc_run_anchor(c, &a)); break;
		}
		break;
	}
	case 15: case 16:
		kl = pick_key(rng, k, "d");
		RC(tc_dto_append(c, k, kl, 7 + (uint32_t)(r >> 8) % 2, valbuf, pick_len(rng) % 600));
		break;
	case 17: {
		kl = pick_key(rng, k, "d");
		size_t cnt;
		RC(tc_dto_count(c, k, kl, &cnt));
		break;
	}
	case 18:
		kl = pick_key(rng, k, "d");
		RC(tc_dto_each(c, k, kl, 7 + (uint32_t)(r >> 8) % 2, pr_dto_fn, NULL));
		break;
	case 19:
		RC(tc_dto_keys(c, pr_dto_key_fn, NULL));
		break;
	case 20:
		RC(tc_scan(c, (r >> 8) & 1 ? "k1*" : NULL, pr_scan_fn, NULL));
		break;
	case 21: {
		uint64_t d;
		RC(tc_purge(c, (r >> 8) % 4 ? "k3*" : NULL, &d));
		break;
	}
	case 22: {
		tc_stats st;
		tc_info in;
		RC(tc_get_stats(c, &st));
		/* The name is the handle's, not the segment's: always valid. */
		if (RC(tc_get_info(c, &in)) == 0 && !tc_name_valid(in.name))
			BAD("tc_get_info: name '%s' is not valid", in.name);
		if (strcmp(tc_version(), TC_VERSION_STRING) != 0 || tc_now_ms() <= 0)
			BAD("tc_version or tc_now_ms");
		break;
	}
	case 23: {
		tc_snapshot_report rep;
		tc_snapshot_info si;
		if ((r >> 8) & 1)
			RC(tc_snapshot_save(c, snap, &rep));
		else if ((r >> 10) & 1)
			RC(tc_snapshot_stat(snap, &si)); /* a file saved from a scribbled segment */
		else
			RC(tc_snapshot_load(c, snap, (r >> 9) & 1 ? TC_SNAP_REPLACE : 0, &rep));
		break;
	}
	case 24: {
		tc_audit_report rep;
		RC(tc_audit(c, &rep));
		break;
	}
	case 25: {
		tc_sweep_report rep;
		RC(tc_sweep(c, (r >> 8) % 8, &rep));
		break;
	}
	case 26: {
		uint64_t fr;
		RC(tc_reclaim(c, &fr));
		break;
	}
	case 27: {
		uint32_t cl;
		RC(tc_readers(c, pr_reader_fn, NULL));
		RC(tc_readers_clean(c, &cl));
		RC(tc_attached(c, pr_attach_fn, NULL));
		break;
	}
	case 28: {
		uint32_t pid;
		uint64_t age;
		bool alive;
		switch ((r >> 8) % 4) {
		case 0: RC(tc_lease_acquire(c, 100, &pid)); break;
		case 1: RC(tc_lease_renew(c)); break;
		case 2: RC(tc_lease_release(c)); break;
		default: RC(tc_lease_holder(c, &pid, &age, &alive)); break;
		}
		break;
	}
	case 29: {
		bool allowed;
		kl = pick_key(rng, k, "r");
		RC(tc_rate_limit(c, k, kl, 5, 100, &allowed, NULL));
		break;
	}
	case 30: {
		kl = pick_key(rng, k, "L");
		size_t cap = (size_t)(r >> 8) % 128;
		rc = RC(tc_get_or_load(c, k, kl, outbuf, cap, &m, 0, pick_ttl(rng),
				       (r >> 16) % 3, pr_loader, NULL));
		if (rc == 0 && m.len > cap)
			BAD("tc_get_or_load: length %zu over cap %zu", m.len, cap);
		break;
	}
	case 31: {
		static const char *const pre[] = { "k1", "k", "d", "c", "L" };
		const char *p = pre[(r >> 8) % 5];
		if ((r >> 12) & 1)
			RC(tc_ttl_policy_set(c, p, (r >> 16) % 100000));
		else
			RC(tc_ttl_policy_del(c, p));
		break;
	}
	case 32: {
		unsigned bad;
		RC(tc_ttl_policy_list(c, pr_policy_fn, NULL));
		if ((r >> 8) & 1)
			RC(tc_ttl_policy_load_ex(c, pol_path, &bad));
		else
			RC(tc_ttl_policy_load(c, pol_path));
		break;
	}
	case 33: {
		kl = pick_key(rng, k, "k");
		if (RC(tc_read_lock(c)))
			break;
		RC(tc_get(c, k, kl, outbuf, VAL_MAX, &m));
		RC(tc_sweep(c, 1, NULL)); /* -EDEADLK inside a section */
		tc_read_unlock(c);
		break;
	}
	case 34:
		many(c, rng, (r >> 8) & 1);
		break;
	case 35: {
		kl = pick_key(rng, k, "k");
		size_t cap = (size_t)(r >> 8) % 64;
		if ((r >> 16) & 1) /* the same read with the key's hash kept */
			rc = RC(tc_get_hashed(c, tc_key_hash(c, k, kl), k, kl, outbuf, cap, &m,
					      with_buf, &cap));
		else
			rc = RC(tc_get_with(c, k, kl, outbuf, cap, &m, with_buf, &cap));
		if (rc == -E2BIG)
			BAD("tc_get_with: -E2BIG with a buffer function");
		break;
	}
	case 36: {
		uint64_t ver = 0;
		kl = pick_key(rng, k, "k");
		if (RC(tc_set_v(c, k, kl, valbuf, pick_len(rng), 0, pick_ttl(rng), &ver)) == 0 &&
		    ver == 0)
			BAD("tc_set_v: 0 with version 0");
		break;
	}
	case 37: {
		uint32_t holder;
		tc_tier t;
		switch ((r >> 8) % 5) {
		case 0: RC(tc_tier_claim(c, (r >> 12) & 1 ? 0 : 50, &holder)); break;
		case 1: RC(tc_tier_set(c, (uint32_t)(r >> 16) % 4)); break;
		case 2: RC(tc_tier_release(c)); break;
		case 3: RC(tc_tier_until(c, (r >> 12) & 1 ? 0 : tc_now_ms() + 50)); break;
		default:
			if (RC(tc_tier_get(c, &t)) == 0)
				pr_tier(&t);
			break;
		}
		break;
	}
	case 38: {
		/* tc_get_with with a kept hash: the key's, or another key's
		 * (a miss unless scribbles say otherwise). */
		char k2[32];
		kl = pick_key(rng, k, "k");
		size_t kl2 = pick_key(rng, k2, "k"), cap = (size_t)(r >> 8) % 64;
		uint64_t h = tc_key_hash(c, (r >> 16) & 1 ? k2 : k, (r >> 16) & 1 ? kl2 : kl);
		rc = RC(tc_get_hashed(c, h, k, kl, outbuf, cap, &m, with_buf, &cap));
		if (rc == -E2BIG)
			BAD("tc_get_hashed: -E2BIG with a buffer function");
		break;
	}
	default: /* reads are the common case */
		kl = pick_key(rng, k, "k");
		RC(tc_get(c, k, kl, outbuf, VAL_MAX, NULL));
		break;
	}
}

/* ---- the processes ----------------------------------------------------------- */

static void worker(const char *name, uint64_t seed, int id)
{
	uint64_t rng = seed ^ (0x9E3779B97F4A7C15ull * (uint64_t)(id + 1));
	char snap[128];
	snprintf(snap, sizeof(snap), "/dev/shm/tcscribble-%d.snap", (int)getpid());
	for (size_t i = 0; i < sizeof(valbuf); i++)
		valbuf[i] = (unsigned char)(i * 13 + (unsigned)id);
	tc_cache *c = NULL;
	while (!ctl->stop) {
		if (!c) {
			int rc = RC(tc_open(&c, name, NULL));
			if (rc) {
				c = NULL;
				fx_sleep_ms(1); /* unlinked, or the header scribbled */
				continue;
			}
		}
		for (int i = 0; i < 32 && !ctl->stop; i++)
			one_call(c, &rng, snap);
		__atomic_add_fetch(&ctl->ops[id < NWORKERS ? id : NWORKERS], 32, __ATOMIC_RELAXED);
		if (bb_rand(&rng) % 64 == 0) {
			tc_close(c);
			c = NULL;
		}
	}
	tc_close(c);
	unlink(snap);
	_exit(violations ? BB_EXIT_FAIL : BB_EXIT_OK);
}

static void scribbler(const char *name, uint64_t seed)
{
	uint64_t rng = seed * 0xD1B54A32D192ED03ull + 1;
	char path[128];
	fx_shm_path(path, sizeof(path), name);
	int fd = open(path, O_RDWR | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) != 0)
		_exit(BB_EXIT_SETUP);
	size_t size = (size_t)st.st_size;
	unsigned char *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (p == MAP_FAILED)
		_exit(BB_EXIT_SETUP);
	/* The header's first line (identity, geometry, state) is left alone
	 * mostly: a scribble there only turns every call into -ESTALE. */
	size_t lo = TC_CACHELINE;
	long pause_us = 50 + (long)(seed % 7) * 150;
	while (!ctl->stop) {
		uint64_t r = bb_rand(&rng);
		size_t off = lo + (size_t)(bb_rand(&rng) % (size - lo));
		if (r % 500 == 0)
			off = (size_t)(bb_rand(&rng) % TC_CACHELINE);
		switch (r % 8) {
		case 0: case 1: case 2:
			p[off] = (unsigned char)(r >> 8);
			break;
		case 3: case 4: { /* a small word: passes naive range checks */
			uint64_t v = (r >> 8) % 4096;
			off &= ~(size_t)7;
			memcpy(p + off, &v, 8);
			break;
		}
		case 5: case 6: { /* a word of the segment moved elsewhere */
			size_t from = (size_t)(bb_rand(&rng) % (size - 8)) & ~(size_t)7;
			off &= ~(size_t)7;
			memmove(p + off, p + from, 8);
			break;
		}
		default:
			memset(p + off, 0, size - off < 8 ? size - off : 8);
			break;
		}
		fx_sleep_us(pause_us);
	}
	_exit(BB_EXIT_OK);
}

static void populate(tc_cache *c)
{
	char k[32];
	for (unsigned i = 0; i < NKEYS; i++) {
		size_t kl = bb_key(k, sizeof(k), "k", i);
		assert_int_equal(0, tc_set(c, k, kl, valbuf, (i * 97) % 2000, 0, 0));
		kl = bb_key(k, sizeof(k), "c", i % 4);
		(void)tc_incr(c, k, kl, 1, 0, NULL);
	}
	assert_int_equal(0, tc_ttl_policy_set(c, "k1", 60000));
	assert_int_equal(0, tc_run_start(c, 1, 1));
	for (unsigned i = 0; i < 24; i++) {
		size_t kl = bb_key(k, sizeof(k), "d", i % 6);
		assert_int_equal(0, tc_dto_append(c, k, kl, 7, valbuf, 8 + i * 4));
	}
}

/* The last check: alone on the segment, tc_audit and every call once. */
static void final_check(const char *name, uint64_t seed)
{
	tc_cache *c;
	int rc = RC(tc_open(&c, name, NULL));
	if (rc == 0) {
		tc_audit_report rep;
		RC(tc_audit(c, &rep));
		uint64_t rng = seed;
		char snap[128];
		snprintf(snap, sizeof(snap), "/dev/shm/tcscribble-%d.snap", (int)getpid());
		for (int i = 0; i < 400; i++)
			one_call(c, &rng, snap);
		RC(tc_audit(c, &rep));
		tc_close(c);
		unlink(snap);
	}
	_exit(violations ? BB_EXIT_FAIL : BB_EXIT_OK);
}

static pid_t spawn(int kind, const char *name, uint64_t seed, int id)
{
	pid_t pid = fork();
	if (pid == 0) {
		if (kind == 0)
			worker(name, seed, id);
		else if (kind == 1)
			scribbler(name, seed);
		else
			final_check(name, seed);
	}
	return pid;
}

/*
 * Wait until every pid of PIDS has exited, at most HANG seconds.  Returns
 * the number of failed children (non-zero status or still running, which
 * are then killed), printing each.
 */
static int reap(pid_t *pids, const char *const *what, int n, double hang, uint64_t seed)
{
	int bad = 0, left = n;
	double t0 = fx_mono_s();
	while (left > 0) {
		for (int i = 0; i < n; i++) {
			if (pids[i] <= 0)
				continue;
			int st;
			pid_t w = waitpid(pids[i], &st, WNOHANG);
			if (w == 0)
				continue;
			if (w == pids[i] && !(WIFEXITED(st) && WEXITSTATUS(st) == 0)) {
				bad++;
				if (WIFSIGNALED(st))
					print_message("seed %#llx: %s (pid %d) killed by signal %d\n",
						      (unsigned long long)seed, what[i], (int)pids[i],
						      WTERMSIG(st));
				else
					print_message("seed %#llx: %s (pid %d) exit %d\n",
						      (unsigned long long)seed, what[i], (int)pids[i],
						      WIFEXITED(st) ? WEXITSTATUS(st) : -1);
			}
			pids[i] = 0;
			left--;
		}
		if (left > 0 && fx_mono_s() - t0 > hang) {
			for (int i = 0; i < n; i++) {
				if (pids[i] <= 0)
					continue;
				print_message("seed %#llx: %s (pid %d) hangs: not done %.0f s after "
					      "stop\n", (unsigned long long)seed, what[i], (int)pids[i],
					      hang);
				kill(pids[i], SIGKILL);
				waitpid(pids[i], NULL, 0);
				pids[i] = 0;
				bad++;
			}
			break;
		}
		if (left > 0)
			fx_sleep_ms(5);
	}
	return bad;
}

static int one_round(uint64_t seed, double round_s, double hang)
{
	char name[TC_NAME_MAX + 1];
	fx_name(name);
	int eviction = (seed & 1) ? TC_EVICT_LRU : TC_EVICT_NONE;
	bool unlink_mid = seed % 3 == 0;
	tc_opts o = fx_opts(256, 256 * 1024, 8);
	o.eviction = eviction;
	tc_cache *c;
	assert_int_equal(0, tc_open(&c, name, &o));
	populate(c);
	tc_close(c);
	memset(ctl, 0, sizeof(*ctl));

	pid_t pids[NWORKERS + 3];
	const char *what[NWORKERS + 3] = { "worker 0", "worker 1", "worker 2", "scribbler",
					   "replacement worker" };
	for (int i = 0; i < NWORKERS; i++)
		pids[i] = spawn(0, name, seed, i);
	pids[NWORKERS] = spawn(1, name, seed, 0);
	pids[NWORKERS + 1] = 0;
	for (int i = 0; i < NWORKERS + 1; i++)
		assert_true(pids[i] > 0);

	/* A worker killed mid-call at a point the seed picks, and replaced. */
	uint64_t rng = seed;
	double kill_at = round_s * (0.2 + (double)(bb_rand(&rng) % 60) / 100.0);
	double t0 = fx_mono_s();
	fx_sleep_us((long)(kill_at * 1e6));
	int victim = (int)(bb_rand(&rng) % NWORKERS);
	kill(pids[victim], SIGKILL);
	waitpid(pids[victim], NULL, 0);
	char snap[128];
	snprintf(snap, sizeof(snap), "/dev/shm/tcscribble-%d.snap", (int)pids[victim]);
	unlink(snap);
	pids[victim] = spawn(0, name, seed + 1000, NWORKERS);
	assert_true(pids[victim] > 0);
	double rest = round_s - (fx_mono_s() - t0);
	if (unlink_mid && rest > 0) {
		fx_sleep_us((long)(rest * 0.7e6));
		assert_int_equal(0, tc_unlink(name));
		fx_sleep_us((long)(rest * 0.3e6));
	} else if (rest > 0) {
		fx_sleep_us((long)(rest * 1e6));
	}
	ctl->stop = 1;
	what[victim] = "replacement worker";
	int bad = reap(pids, what, NWORKERS + 1, hang, seed);
	if (ctl->broken)
		print_message("seed %#llx: %llu broken promises (above)\n",
			      (unsigned long long)seed, (unsigned long long)ctl->broken);
	if (ctl->broken && bad == 0)
		bad = 1; /* a broken promise of the worker killed mid-round */
	print_message("seed %#llx: %s%s, %llu calls by workers (%llu TC_ECORRUPT), %d failed\n",
		      (unsigned long long)seed, eviction ? "LRU" : "no eviction",
		      unlink_mid ? ", unlinked under load" : "",
		      (unsigned long long)(ctl->ops[0] + ctl->ops[1] + ctl->ops[2] + ctl->ops[3]),
		      (unsigned long long)ctl->corrupt, bad);
	if (!unlink_mid) {
		pid_t f = spawn(2, name, seed, 0);
		const char *fw[1] = { "final check" };
		assert_true(f > 0);
		bad += reap(&f, fw, 1, hang, seed);
		/* final_check's broken promises are in its exit status. */
	}
	(void)tc_unlink(name);
	return bad;
}

static void test_scribbles_under_load_never_crash_hang_or_break_promises(void **state)
{
	(void)state;
	double total = (double)env_u64("TC_SCRIBBLE_SECS", 16);
	double round_s = (double)env_u64("TC_SCRIBBLE_ROUND_MS", 2000) / 1000.0;
	double hang = (double)env_u64("TC_SCRIBBLE_HANG_SECS", 60);
	uint64_t max_rounds = env_u64("TC_SCRIBBLE_ROUNDS", UINT64_MAX);
	const char *sv = getenv("TC_SCRIBBLE_SEED");
	uint64_t base = SEED_BASE;
	if (sv && strcmp(sv, "random") == 0)
		base = (uint64_t)fx_mono_s() * 1000003u ^ (uint64_t)getpid() << 32;
	else if (sv && *sv)
		base = strtoull(sv, NULL, 0);
	ctl = mmap(NULL, sizeof(*ctl), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	assert_true(ctl != MAP_FAILED);
	snprintf(pol_path, sizeof(pol_path), "/dev/shm/tcscribble-%d.pol", (int)getpid());
	const char *pol = "k1 = 60000\nk = 0\n# comment\nd=5\n";
	FILE *f = fopen(pol_path, "w");
	assert_non_null(f);
	assert_int_equal((int)strlen(pol), (int)fwrite(pol, 1, strlen(pol), f));
	assert_int_equal(0, fclose(f));
	for (size_t i = 0; i < sizeof(valbuf); i++)
		valbuf[i] = (unsigned char)(i * 7);

	print_message("scribble under load: seeds from %#llx, %.0f s, rounds of %.1f s "
		      "(TC_SCRIBBLE_SEED=<seed> TC_SCRIBBLE_ROUNDS=1 re-runs one)\n",
		      (unsigned long long)base, total, round_s);
	int failed = 0;
	uint64_t rounds = 0;
	double t0 = fx_mono_s();
	while (rounds < max_rounds && (rounds == 0 || fx_mono_s() - t0 + round_s <= total)) {
		int bad = one_round(base + rounds, round_s, hang);
		if (bad)
			print_message("FAILED seed %#llx: re-run with TC_SCRIBBLE_SEED=%#llx "
				      "TC_SCRIBBLE_ROUNDS=1\n", (unsigned long long)(base + rounds),
				      (unsigned long long)(base + rounds));
		failed += bad;
		rounds++;
	}
	unlink(pol_path);
	munmap(ctl, sizeof(*ctl));
	print_message("%llu rounds in %.1f s, %d failed children\n", (unsigned long long)rounds,
		      fx_mono_s() - t0, failed);
	assert_int_equal(0, failed);
}

/* ---- findings of the fuzzer, as plain tests ------------------------------------ */

/* The run word of segment NAME, mapped from its /dev/shm file. */
static uint64_t *map_run_word(const char *name, void **map, size_t *len)
{
	char path[128];
	fx_shm_path(path, sizeof(path), name);
	int fd = open(path, O_RDWR | O_CLOEXEC);
	assert_true(fd >= 0);
	struct stat st;
	assert_int_equal(0, fstat(fd, &st));
	*len = (size_t)st.st_size;
	*map = mmap(NULL, *len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	assert_true(*map != MAP_FAILED);
	return (uint64_t *)((unsigned char *)*map + offsetof(struct tc_hdr, run_word));
}

/*
 * fuzz_segment found it: a run word whose generation was scribbled even
 * while it still names the anchor made tc_run_anchor hand out an even
 * generation (the header says odd); the anchor records its generation, so
 * a word that disagrees with it is TC_ECORRUPT.
 */
static void test_scribbled_run_generation_gives_ecorrupt(void **state)
{
	(void)state;
	char name[TC_NAME_MAX + 1];
	tc_opts o = fx_opts(64, 64 * 1024, 2);
	tc_cache *c;
	assert_int_equal(0, tc_open(&c, fx_name(name), &o));
	assert_int_equal(0, tc_run_start(c, 5, 6));
	tc_anchor a;
	assert_int_equal(0, tc_run_anchor(c, &a));
	assert_int_equal(1, (int)(a.generation & 1));
	void *map;
	size_t len;
	uint64_t *w = map_run_word(name, &map, &len);
	uint64_t good = *w;
	*w = good + (1ull << 32); /* even generation, same anchor */
	assert_int_equal(TC_ECORRUPT, tc_run_anchor(c, &a));
	*w = good + (2ull << 32); /* odd, but not the anchor's */
	assert_int_equal(TC_ECORRUPT, tc_run_anchor(c, &a));
	*w = good;
	assert_int_equal(0, tc_run_anchor(c, &a));
	assert_int_equal((int)(good >> 32), (int)a.generation);
	munmap(map, len);
	tc_close(c);
}

/*
 * An idle run word scribbled to an odd generation: the next tc_run_start
 * still publishes an odd generation, larger than the word's.
 */
static void test_run_start_after_scribbled_idle_word_is_odd(void **state)
{
	(void)state;
	char name[TC_NAME_MAX + 1];
	tc_opts o = fx_opts(64, 64 * 1024, 2);
	tc_cache *c;
	assert_int_equal(0, tc_open(&c, fx_name(name), &o));
	void *map;
	size_t len;
	uint64_t *w = map_run_word(name, &map, &len);
	*w = 7ull << 32; /* no run, generation 7 */
	assert_int_equal(0, tc_run_start(c, 5, 6));
	tc_anchor a;
	assert_int_equal(0, tc_run_anchor(c, &a));
	assert_int_equal(9, (int)a.generation);
	assert_int_equal(0, tc_run_end_gen(c, 9));
	munmap(map, len);
	tc_close(c);
}

static int count_policy(const char *prefix, uint64_t ttl, void *arg)
{
	(void)prefix;
	(void)ttl;
	++*(int *)arg;
	return 0;
}

/*
 * fuzz_segment found it: a NUL scribbled into a prefix of the policy
 * table made tc_ttl_policy_list call back with a prefix shorter than the
 * record (an empty one; the API's prefixes are 1..TC_POLICY_PREFIX_MAX
 * bytes and cannot hold a NUL): such a table is TC_ECORRUPT.
 */
static void test_policy_prefix_with_nul_gives_ecorrupt(void **state)
{
	(void)state;
	char name[TC_NAME_MAX + 1];
	tc_opts o = fx_opts(64, 64 * 1024, 2);
	tc_cache *c;
	assert_int_equal(0, tc_open(&c, fx_name(name), &o));
	assert_int_equal(0, tc_ttl_policy_set(c, "abc", 5));
	void *map;
	size_t len;
	map_run_word(name, &map, &len);
	const struct tc_hdr *h = map;
	uint64_t ref = h->policy_gen & 0xffffffffu;
	assert_true(ref != 0);
	/* The table's value (klen 0) starts at +64: u64 ttl, u8 len, prefix. */
	unsigned char *prefix = (unsigned char *)map + h->arena_off + (ref - 1) * TC_BLOCK_UNIT +
				TC_ENTRY_HDR + 9;
	assert_int_equal('a', prefix[0]);
	int n = 0;
	assert_int_equal(0, tc_ttl_policy_list(c, count_policy, &n));
	assert_int_equal(1, n);
	prefix[0] = '\0';
	n = 0;
	assert_int_equal(TC_ECORRUPT, tc_ttl_policy_list(c, count_policy, &n));
	assert_int_equal(0, n);
	prefix[1] = '\0'; /* "a\0c" would pass for "a" */
	prefix[0] = 'a';
	assert_int_equal(TC_ECORRUPT, tc_ttl_policy_list(c, count_policy, &n));
	prefix[1] = 'b';
	assert_int_equal(0, tc_ttl_policy_list(c, count_policy, &n));
	assert_int_equal(1, n);
	munmap(map, len);
	tc_close(c);
}

/* ---- the workers' calls are every public function ------------------------------ */

/* Does TEXT call NAME: NAME followed by '(' with no identifier character
 * before it? */
static bool calls(const char *text, const char *name)
{
	size_t n = strlen(name);
	for (const char *p = strstr(text, name); p; p = strstr(p + 1, name)) {
		char b = p == text ? ' ' : p[-1];
		if (p[n] == '(' && !(b == '_' || (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z') ||
				     (b >= '0' && b <= '9')))
			return true;
	}
	return false;
}

/*
 * Every function declared by include/tickcache.h (a line that starts with
 * its type, as the man3 links of the Makefile read them) is called by this
 * file: a public function added without a call here fails, so "every
 * public function under scribbles" stays true.
 */
static void test_every_public_function_is_called_here(void **state)
{
	(void)state;
	FILE *f = fopen("tests/test_scribble_load.c", "r");
	assert_non_null(f);
	static char text[1 << 17];
	size_t len = fread(text, 1, sizeof(text) - 1, f);
	assert_true(len > 0 && len < sizeof(text) - 1);
	text[len] = '\0';
	fclose(f);
	/* The calls, not this test's own mentions of the names. */
	char *self = strstr(text, "/* ---- the workers' calls are every public function");
	assert_non_null(self);
	*self = '\0';
	FILE *h = fopen("include/tickcache.h", "r");
	assert_non_null(h);
	char line[512];
	int decls = 0, missing = 0;
	while (fgets(line, sizeof(line), h)) {
		if (line[0] < 'a' || line[0] > 'z')
			continue; /* comments, preprocessor, continuation lines */
		char *p = strstr(line, "tc_");
		size_t n = 0;
		while (p && (p == line || (p[-1] != ' ' && p[-1] != '*')))
			p = strstr(p + 1, "tc_");
		if (!p)
			continue;
		while (p[n] == '_' || (p[n] >= 'a' && p[n] <= 'z') || (p[n] >= '0' && p[n] <= '9'))
			n++;
		if (p[n] != '(')
			continue; /* a typedef's or a variable's name */
		p[n] = '\0';
		decls++;
		if (!calls(text, p)) {
			print_error("%s is not called by tests/test_scribble_load.c\n", p);
			missing++;
		}
	}
	fclose(h);
	assert_true(decls >= 60);
	assert_int_equal(0, missing);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		FX_TEST(test_scribbled_run_generation_gives_ecorrupt),
		FX_TEST(test_run_start_after_scribbled_idle_word_is_odd),
		FX_TEST(test_policy_prefix_with_nul_gives_ecorrupt),
		FX_TEST(test_every_public_function_is_called_here),
		FX_TEST(test_scribbles_under_load_never_crash_hang_or_break_promises),
	};
	return fx_run(tests);
}
