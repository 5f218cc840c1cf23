/* SPDX-License-Identifier: MIT */
/*
 * tier_probe - measurements and checks for tests/test_bridge.sh (issue 13),
 * against a real redis-server and running shm-bridge daemons.
 *
 *   tier_probe latency SOCK SEG_WRITER SEG_READER ROUNDS
 *       Per round: a value cached on the reader host (tc_set in SEG_READER),
 *       a SET of the same key in Redis, then a spin on the reader's segment
 *       until the key is gone: the write-to-invalidation latency.  Also
 *       counts reads of the old value after the invalidation was seen (must
 *       be 0).  Prints "latency_us p50=.. p99=.. max=.. rounds=.. late=..
 *       stale_after=..", exit 0 when every round was invalidated within 10 s
 *       and no stale read followed.
 *   tier_probe silent SEG REDIS_PID PING_MS ROUNDS
 *       Per round: keys cached under the mapped prefix, SIGSTOP of the
 *       redis-server, a spin until the keys are purged and the tier reads
 *       down (the time from SIGSTOP), SIGCONT, then a wait until the bridge
 *       has re-armed (tier up).  Prints "silent_purge_ms ..." and "rearm_ms
 *       ...", exit 0 when every round purged and re-armed within 15 s;
 *       exit 3 when a round's purge exceeded 2 x PING_MS + SLACK_MS (env,
 *       default 2000), the documented bound with slack for a loaded host.
 *   tier_probe state SEG
 *       Prints the tier state (none, up, down) and the bridge pid.
 *   tier_probe markrace SOCK SEG_A SEG_B NPROC ROUNDS
 *   tier_probe fillrace SOCK SEG NREADERS WRITES
 *   tier_probe misc SOCK SEG
 *   tier_probe setrace SOCK SEG
 *   tier_probe ttlfill SOCK SEG
 *   tier_probe edges SOCK SEG
 *   tier_probe chaos SOCK SEG_W SEG_R NREADERS SECONDS TOL_MS
 *       Fleet-wide marks and the read-through fill race (tools/tier_redis.h),
 *       described at each function.
 *
 * Built with hiredis when installed; without it it exits 77 (skip).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tickcache.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <sys/mman.h>
#include <sys/wait.h>

#ifdef TC_HAVE_HIREDIS
#include <hiredis/hiredis.h>
/* Widen the fill race: a read of Redis waits before its install, long
 * enough for the invalidation of a write made meanwhile to arrive first. */
static unsigned fill_hook_us = 300;
#define TIER_FILL_HOOK() usleep(fill_hook_us)
/* setrace: another host's write lands between tier_set's Redis SET and
 * its local install. */
static void setrace_hook(void);
#define TIER_SET_HOOK() setrace_hook()
#include "tier_redis.h"
#endif

static uint64_t mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static tc_cache *attach(const char *name)
{
	tc_cache *c;
	int rc = tc_open(&c, name, NULL);
	if (rc) {
		fprintf(stderr, "tier_probe: open %s: %s\n", name, tc_strerror(rc));
		exit(2);
	}
	return c;
}

static const char *state_name(uint32_t s)
{
	return s == TC_TIER_UP ? "up" : s == TC_TIER_DOWN ? "down" : "none";
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static uint32_t tier_state(tc_cache *c)
{
	tc_tier t;
	if (tc_tier_get(c, &t))
		return TC_TIER_NONE;
	return t.state;
}

#ifdef TC_HAVE_HIREDIS
static int latency(int argc, char **argv)
{
	if (argc != 6)
		return 2;
	redisContext *r = redisConnectUnix(argv[2]);
	if (!r || r->err) {
		fprintf(stderr, "tier_probe: connect %s failed\n", argv[2]);
		return 2;
	}
	tc_cache *w = attach(argv[3]), *rd = attach(argv[4]);
	int rounds = atoi(argv[5]);
	uint64_t *lat = calloc((size_t)rounds, sizeof(*lat));
	int late = 0, stale_after = 0;
	char key[64], val[64], buf[64];

	for (int i = 0; i < rounds; i++) {
		int kl = snprintf(key, sizeof(key), "quote:lat%d", i);
		/* The reader host caches the value it read earlier. */
		if (tc_set(rd, key, (size_t)kl, "old", 3, 0, 0) != 0)
			return 2;
		/* The writer host writes through: Redis, then its own segment. */
		int vl = snprintf(val, sizeof(val), "new%d", i);
		uint64_t t0 = mono_us();
		redisReply *rep = redisCommand(r, "SET %b %b", key, (size_t)kl, val, (size_t)vl);
		if (!rep || rep->type != REDIS_REPLY_STATUS)
			return 2;
		freeReplyObject(rep);
		(void)tc_set(w, key, (size_t)kl, val, (size_t)vl, 0, 0);
		for (;;) {
			if (!tc_exists(rd, key, (size_t)kl))
				break;
			if (mono_us() - t0 > 10000000u) {
				late++;
				break;
			}
		}
		lat[i] = mono_us() - t0;
		/* Never the old value again. */
		for (int k = 0; k < 100; k++) {
			tc_meta m;
			int rc = tc_get(rd, key, (size_t)kl, buf, sizeof(buf), &m);
			if (rc == 0 && m.len == 3 && memcmp(buf, "old", 3) == 0)
				stale_after++;
		}
	}
	qsort(lat, (size_t)rounds, sizeof(*lat), cmp_u64);
	printf("latency_us p50=%llu p99=%llu max=%llu rounds=%d late=%d stale_after=%d\n",
	       (unsigned long long)lat[rounds / 2],
	       (unsigned long long)lat[(size_t)((rounds - 1) * 0.99)],
	       (unsigned long long)lat[rounds - 1], rounds, late, stale_after);
	free(lat);
	redisFree(r);
	tc_close(w);
	tc_close(rd);
	return late || stale_after ? 1 : 0;
}

/*
 * markrace SOCK SEG_A SEG_B NPROC ROUNDS: NPROC processes, half on host A's
 * segment and half on host B's, take tier_mark_once("sig:race:<run>:<k>")
 * for every round k, all starting at one gate; the wins of each round are
 * counted in shared memory.  Exit 0 when every round has exactly one
 * winner and no call failed.
 */
static int markrace(int argc, char **argv)
{
	if (argc != 7)
		return 2;
	int nproc = atoi(argv[5]), rounds = atoi(argv[6]);
	size_t sz = sizeof(atomic_int) * ((size_t)rounds + 2);
	atomic_int *sh = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		return 2;
	atomic_int *gate = &sh[0], *errs = &sh[1], *wins = &sh[2];
	unsigned run = (unsigned)getpid();

	for (int p = 0; p < nproc; p++) {
		pid_t pid = fork();
		if (pid < 0)
			return 2;
		if (pid)
			continue;
		struct tier_redis t = { 0 };
		t.r = redisConnectUnix(argv[2]);
		if (!t.r || t.r->err || tc_open(&t.c, argv[3 + (p & 1)], NULL))
			_exit(2);
		while (!atomic_load(gate))
			;
		for (int k = 0; k < rounds; k++) {
			char key[64];
			int kl = snprintf(key, sizeof(key), "sig:race:%u:%d", run, k);
			int rc = tier_mark_once(&t, key, (size_t)kl, 60000);
			if (rc == 1)
				atomic_fetch_add(&wins[k], 1);
			else if (rc != 0)
				atomic_fetch_add(errs, 1);
		}
		_exit(0);
	}
	usleep(100000);
	atomic_store(gate, 1);
	int bad = 0, st;
	while (wait(&st) > 0)
		if (!WIFEXITED(st) || WEXITSTATUS(st))
			bad++;
	int zero = 0, multi = 0;
	for (int k = 0; k < rounds; k++) {
		int w = atomic_load(&wins[k]);
		zero += w == 0;
		multi += w > 1;
	}
	printf("markrace procs=%d rounds=%d rounds_without_winner=%d rounds_with_several=%d errors=%d "
	       "children_failed=%d\n", nproc, rounds, zero, multi, atomic_load(errs), bad);
	return zero || multi || bad || atomic_load(errs) ? 1 : 0;
}

/*
 * fillrace SOCK SEG NREADERS WRITES: EPOCHS (20) times, one writer SETs
 * "quote:fill:<epoch>" to 1..WRITES in Redis while NREADERS processes read
 * it through (tier_get) on host SEG with the bridge invalidating.  After
 * the epoch's last write and a fence key's invalidation (so every earlier
 * invalidation has been applied), every reader's tier_get must return
 * WRITES: a value cached from an older read would be stale for good.
 */
#define FILL_EPOCHS 20
static int fillrace(int argc, char **argv)
{
	if (argc != 6)
		return 2;
	int nreaders = atoi(argv[4]), writes = atoi(argv[5]);
	atomic_int *sh = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		return 2;
	/* phase = epoch * 2 (+1 while checking); checked = readers done checking */
	atomic_int *phase = &sh[0], *stale = &sh[1], *errs = &sh[2], *fills = &sh[3],
		   *checked = &sh[4];

	for (int p = 0; p < nreaders; p++) {
		pid_t pid = fork();
		if (pid < 0)
			return 2;
		if (pid)
			continue;
		struct tier_redis t = { 0 };
		t.r = redisConnectUnix(argv[2]);
		if (!t.r || t.r->err || tc_open(&t.c, argv[3], NULL))
			_exit(2);
		char buf[32], key[32];
		int last_checked = -1;
		for (;;) {
			int ph = atomic_load(phase);
			int e = ph / 2;
			if (e >= FILL_EPOCHS)
				break;
			int kl = snprintf(key, sizeof(key), "quote:fill:%d", e);
			tc_meta m;
			int rc = tier_get(&t, key, (size_t)kl, buf, sizeof(buf) - 1, &m, 0);
			if (ph % 2 == 0) {
				if (rc != 0 && rc != -ENOENT)
					atomic_fetch_add(errs, 1);
				continue;
			}
			if (last_checked == e) {
				usleep(100);
				continue;
			}
			/* Quiescent: the epoch's last value, from anywhere. */
			if (rc == 0) {
				buf[m.len < sizeof(buf) ? m.len : sizeof(buf) - 1] = 0;
				if (atoi(buf) != writes)
					atomic_fetch_add(stale, 1);
			} else {
				atomic_fetch_add(errs, 1);
			}
			last_checked = e;
			atomic_fetch_add(checked, 1);
		}
		atomic_fetch_add(fills, (int)t.fills_lost);
		_exit(0);
	}
	redisContext *r = redisConnectUnix(argv[2]);
	tc_cache *c;
	if (!r || r->err || tc_open(&c, argv[3], NULL))
		return 2;
	int rc = 0;
	for (int e = 0; e < FILL_EPOCHS && !rc; e++) {
		for (int i = 1; i <= writes; i++) {
			redisReply *rep = redisCommand(r, "SET quote:fill:%d %d", e, i);
			if (!rep) {
				rc = 2;
				break;
			}
			freeReplyObject(rep);
		}
		/* The fence: once its invalidation is applied, every earlier one is. */
		(void)tc_set(c, "quote:fence2", 12, "x", 1, 0, 0);
		redisReply *rep = redisCommand(r, "SET quote:fence2 y");
		if (rep)
			freeReplyObject(rep);
		uint64_t t0 = mono_us();
		while (tc_exists(c, "quote:fence2", 12) && mono_us() - t0 < 10000000u)
			usleep(500);
		atomic_store(checked, 0);
		atomic_store(phase, 2 * e + 1);
		t0 = mono_us();
		while (atomic_load(checked) < nreaders && mono_us() - t0 < 10000000u)
			usleep(500);
		if (atomic_load(checked) < nreaders)
			rc = 1;
		atomic_store(phase, 2 * (e + 1));
	}
	atomic_store(phase, 2 * FILL_EPOCHS);
	int bad = 0, st;
	while (wait(&st) > 0)
		if (!WIFEXITED(st) || WEXITSTATUS(st))
			bad++;
	printf("fillrace readers=%d epochs=%d writes=%d stale=%d errors=%d fills_not_cached=%d "
	       "children_failed=%d\n", nreaders, FILL_EPOCHS, writes, atomic_load(stale),
	       atomic_load(errs), atomic_load(fills), bad);
	redisFree(r);
	tc_close(c);
	return rc || atomic_load(stale) || atomic_load(errs) || bad ? 1 : 0;
}

/* setrace's other host: when armed, the hook SETs KEY to "v2" on its own
 * connection and waits until the bridge has applied every invalidation up
 * to it (a fence key), as if host B's write had landed at that moment. */
static struct {
	redisContext *r;
	tc_cache *c;
	const char *key;
	int armed;
} sr;

/* Fence: a local copy of FENCE, a write of it in Redis, and a wait until
 * the bridge deletes it: every earlier invalidation is applied then. */
static int fence(redisContext *r, tc_cache *c)
{
	static const char f[] = "quote:setrace:fence";
	if (tc_set(c, f, sizeof(f) - 1, "x", 1, 0, 0))
		return -1;
	redisReply *rep = redisCommand(r, "SET %s y", f);
	if (!rep)
		return -1;
	freeReplyObject(rep);
	uint64_t t0 = mono_us();
	while (tc_exists(c, f, sizeof(f) - 1))
		if (mono_us() - t0 > 10000000u)
			return -1;
	return 0;
}

static unsigned set_hook_us; /* ttlfill: tier_set held before its install */

static void setrace_hook(void)
{
	if (set_hook_us)
		usleep(set_hook_us);
	if (!sr.armed)
		return;
	sr.armed = 0;
	redisReply *rep = redisCommand(sr.r, "SET %s v2", sr.key);
	if (rep)
		freeReplyObject(rep);
	(void)fence(sr.r, sr.c);
}

/*
 * setrace SOCK SEG: tier_set(K, "v1") on host SEG while another host's
 * SET K v2 lands in Redis after ours and its invalidation is applied
 * before our local install (the hook).  After a fence, Redis has v2 and
 * the local copy must not be v1: a write that lost the race in Redis must
 * not be served locally.  Exit 0 when it is not.
 */
static int setrace(int argc, char **argv)
{
	if (argc != 4)
		return 2;
	struct tier_redis t = { 0 };
	char key[64], buf[16];
	tc_meta m;
	t.r = redisConnectUnix(argv[2]);
	sr.r = redisConnectUnix(argv[2]);
	if (!t.r || t.r->err || !sr.r || sr.r->err || tc_open(&t.c, argv[3], NULL))
		return 2;
	sr.c = t.c;
	uint64_t t0 = mono_us();
	while (tier_state(t.c) != TC_TIER_UP && mono_us() - t0 < 10000000u)
		usleep(1000);
	int kl = snprintf(key, sizeof(key), "quote:setrace:%d", (int)getpid());
	sr.key = key;
	sr.armed = 1;
	int rc = tier_set(&t, key, (size_t)kl, "v1", 2, 0);
	if (sr.armed || fence(sr.r, t.c)) {
		printf("setrace: hook not run or fence lost (tier_set %d)\n", rc);
		return 1;
	}
	redisReply *rep = redisCommand(sr.r, "GET %s", key);
	int remote_v2 = rep && rep->type == REDIS_REPLY_STRING && strcmp(rep->str, "v2") == 0;
	if (rep)
		freeReplyObject(rep);
	int lrc = tc_get(t.c, key, (size_t)kl, buf, sizeof(buf), &m);
	int stale = lrc == 0 && m.len == 2 && memcmp(buf, "v1", 2) == 0;
	printf("setrace: tier_set=%d redis=%s local=%s\n", rc, remote_v2 ? "v2" : "?",
	       lrc == -ENOENT ? "absent" : stale ? "v1 (stale)" : lrc ? "error" : "other");
	redisFree(t.r);
	redisFree(sr.r);
	tc_close(t.c);
	return rc == 0 && remote_v2 && !stale && (lrc == 0 || lrc == -ENOENT) ? 0 : 1;
}

/*
 * chaos SOCK SEG_W SEG_R NREADERS SECONDS TOL_MS: for SECONDS, one writer
 * on host SEG_W writes through (tier_set) "quote:chaos" = 1, 2, 3, ... and
 * records when each write returned; NREADERS processes on host SEG_R read
 * it through (tier_get).  A read that began more than TOL_MS after a newer
 * write had returned, and still got the older value, is stale.  The shell
 * meanwhile kills connections, restarts Redis, stops bridges.  Prints the
 * counts and the largest lag seen (any stale read, however short: the
 * invalidation in flight), exit 0 when no read was staler than TOL_MS.
 */
#define CHAOS_MAX 2000000
static int chaos(int argc, char **argv)
{
	if (argc != 8)
		return 2;
	int nreaders = atoi(argv[5]), secs = atoi(argv[6]);
	uint64_t tol_us = strtoull(argv[7], NULL, 10) * 1000u;
	size_t sz = sizeof(_Atomic uint64_t) * (CHAOS_MAX + 16);
	_Atomic uint64_t *sh = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		return 2;
	/* sh[0] stop, [1] reads, [2] stale (> tol), [3] max lag us, [4] local
	 * hits, [5] errors, [6] lagged (> 0), [8..] returned-at of write n */
	_Atomic uint64_t *done = &sh[8];
	signal(SIGPIPE, SIG_IGN); /* connections are killed under us */
	static const char key[] = "quote:chaos";
	const size_t kl = sizeof(key) - 1;

	for (int p = 0; p < nreaders; p++) {
		if (fork())
			continue;
		struct tier_redis t = { 0 };
		t.r = redisConnectUnix(argv[2]);
		if (tc_open(&t.c, argv[4], NULL))
			_exit(2);
		while (!atomic_load(&sh[0])) {
			char buf[32];
			tc_meta m;
			if (!t.r || t.r->err) {
				if (t.r)
					redisFree(t.r);
				usleep(5000);
				t.r = redisConnectUnix(argv[2]);
				continue;
			}
			usleep(20); /* a reader, not a spinner: the machine is shared */
			uint64_t t0 = mono_us();
			int rc = tier_get(&t, key, kl, buf, sizeof(buf) - 1, &m, 0);
			if (rc == -ENOENT || rc == -EAGAIN)
				continue;
			if (rc) {
				atomic_fetch_add(&sh[5], 1);
				continue;
			}
			buf[m.len < sizeof(buf) ? m.len : sizeof(buf) - 1] = 0;
			uint64_t v = strtoull(buf, NULL, 10);
			atomic_fetch_add(&sh[1], 1);
			if (v + 1 >= CHAOS_MAX)
				continue;
			uint64_t newer = atomic_load(&done[v + 1]);
			if (newer && newer < t0) {
				uint64_t lag = t0 - newer;
				atomic_fetch_add(&sh[6], 1);
				if (lag > tol_us)
					atomic_fetch_add(&sh[2], 1);
				uint64_t mx = atomic_load(&sh[3]);
				while (lag > mx && !atomic_compare_exchange_weak(&sh[3], &mx, lag))
					;
			}
		}
		_exit(0);
	}
	struct tier_redis w = { 0 };
	w.r = redisConnectUnix(argv[2]);
	if (tc_open(&w.c, argv[3], NULL))
		return 2;
	uint64_t n = 1, end = mono_us() + (uint64_t)secs * 1000000u;
	while (mono_us() < end && n + 1 < CHAOS_MAX) {
		char val[32];
		int vl = snprintf(val, sizeof(val), "%llu", (unsigned long long)n);
		if (!w.r || w.r->err) {
			if (w.r)
				redisFree(w.r);
			usleep(5000);
			w.r = redisConnectUnix(argv[2]);
			continue;
		}
		int rc = tier_set(&w, key, kl, val, (size_t)vl, 0);
		if (rc == -EAGAIN)
			continue; /* not written: n again */
		atomic_store(&done[n], mono_us());
		n++;
		usleep(200);
	}
	atomic_store(&sh[0], 1);
	/* Given back before the exit, where LeakSanitizer (make asan) checks. */
	if (w.r)
		redisFree(w.r);
	tc_close(w.c);
	int bad = 0, st;
	while (wait(&st) > 0)
		if (!WIFEXITED(st) || WEXITSTATUS(st))
			bad++;
	printf("chaos writes=%llu reads=%llu lagged=%llu stale_over_tol=%llu max_lag_us=%llu "
	       "errors=%llu children_failed=%d\n", (unsigned long long)n - 1,
	       (unsigned long long)sh[1], (unsigned long long)sh[6], (unsigned long long)sh[2],
	       (unsigned long long)sh[3], (unsigned long long)sh[5], bad);
	return sh[2] || sh[5] || bad ? 1 : 0;
}

/*
 * ttlfill SOCK SEG: a read-through of a key with a Redis TTL of 400 ms
 * whose reader is held 150 ms between the Redis read and the install (a
 * preemption, by the fill hook), then a write-through with a TTL of 400 ms
 * held as long before its install.  Each local copy must expire no later
 * than Redis's: at most 400 ms after the call began.  Exit 0 when both do.
 */
static int ttlfill(int argc, char **argv)
{
	if (argc != 4)
		return 2;
	struct tier_redis t = { 0 };
	char key[64], buf[16];
	tc_meta m;
	t.r = redisConnectUnix(argv[2]);
	if (!t.r || t.r->err || tc_open(&t.c, argv[3], NULL))
		return 2;
	int kl = snprintf(key, sizeof(key), "quote:ttlfill:%d", (int)getpid());
	redisReply *rep = redisCommand(t.r, "SET %b v PX 400", key, (size_t)kl);
	if (!rep)
		return 2;
	freeReplyObject(rep);
	uint64_t t0 = mono_us();
	while (tier_state(t.c) != TC_TIER_UP && mono_us() - t0 < 10000000u)
		usleep(1000);
	fill_hook_us = 150000;
	int64_t before = tc_now_ms();
	int rc = tier_get(&t, key, (size_t)kl, buf, sizeof(buf), &m, 0);
	fill_hook_us = 300;
	int lrc = tc_get(t.c, key, (size_t)kl, buf, sizeof(buf), &m);
	long long late = lrc == 0 ? (long long)(m.expires_ms - (before + 400)) : 0;
	printf("ttlfill: tier_get=%d local=%d expires %lld ms after Redis's;", rc, lrc, late);
	int ok = rc == 0 && (lrc == -ENOENT || (lrc == 0 && m.expires_ms && late <= 0));
	/* Write-through, held 150 ms before its install: a key no bridge maps
	 * (its own invalidation would delete the copy at once). */
	kl = snprintf(key, sizeof(key), "other:ttlset:%d", (int)getpid());
	set_hook_us = 150000;
	before = tc_now_ms();
	rc = tier_set(&t, key, (size_t)kl, "v", 1, 400);
	set_hook_us = 0;
	lrc = tc_get(t.c, key, (size_t)kl, buf, sizeof(buf), &m);
	late = lrc == 0 ? (long long)(m.expires_ms - (before + 400)) : 0;
	printf(" tier_set=%d local=%d expires %lld ms after Redis's\n", rc, lrc, late);
	ok = ok && rc == 0 && (lrc == -ENOENT || (lrc == 0 && m.expires_ms && late <= 0));
	redisFree(t.r);
	tc_close(t.c);
	return ok ? 0 : 1;
}

#define CHECK(cond, ...) do { if (!(cond)) { printf("misc: " __VA_ARGS__); printf("\n"); \
	fflush(stdout); return 1; } } while (0)

/* Wait until KEY is gone from C (10 s at most). */
static bool gone(tc_cache *c, const void *key, size_t klen)
{
	uint64_t t0 = mono_us();
	while (tc_exists(c, key, klen)) {
		if (mono_us() - t0 > 10000000u)
			return false;
		usleep(200); /* not a spinner: the bridge needs the CPU */
	}
	return true;
}

/* When the tier last changed state (a purge goes with every down). */
static int64_t tier_since(tc_cache *c)
{
	tc_tier t;
	return tc_tier_get(c, &t) ? -1 : t.since_ms;
}

/*
 * edges SOCK SEG: keys at the edges, on host SEG whose bridge maps
 * "quote:": a binary key (NUL, 0xff, glob specials, newline), a key of
 * TC_KEY_MAX bytes and the key equal to the prefix are invalidated by a
 * Redis write; "quote" and "quotE:x" are not under the prefix and stay; a
 * key longer than TC_KEY_MAX is never stored and its invalidation changes
 * nothing; a CLIENT KILL of the bridges' connections purges the binary
 * keys too (the purge matches a glob on keys that hold a NUL).  Exit 0
 * when all hold.
 */
static int edges(int argc, char **argv)
{
	if (argc != 4)
		return 2;
	static const char bin[] = "quote:\0\xff*?[\\\n]";
	char maxk[TC_KEY_MAX + 1];
	struct { const void *k; size_t n; } in[3] = {
		{ bin, sizeof(bin) - 1 }, { maxk, TC_KEY_MAX }, { "quote:", 6 },
	}, out[2] = { { "quote", 5 }, { "quotE:x", 7 } };
	redisContext *r = redisConnectUnix(argv[2]);
	tc_cache *c;
	redisReply *rep;
	if (!r || r->err || tc_open(&c, argv[3], NULL))
		return 2;
	memcpy(maxk, "quote:", 6);
	memset(maxk + 6, 'k', sizeof(maxk) - 6);
	uint64_t t0;
	int bad = 0, tries = 0;
	int64_t since;
	CHECK(tc_set(c, maxk, TC_KEY_MAX + 1, "x", 1, 0, 0) == -EINVAL, "a key over TC_KEY_MAX stored");
	rep = redisCommand(r, "SET %b new", maxk, (size_t)TC_KEY_MAX + 1);
	freeReplyObject(rep);
again:
	/* A down (a late ping on a loaded host) purges everything and would
	 * pass the checks below for the wrong reason: then they are redone. */
	since = tier_since(c);
	bad = 0;
	for (int i = 0; i < 3; i++) {
		CHECK(tc_set(c, in[i].k, in[i].n, "old", 3, 0, 0) == 0, "set in %d", i);
		rep = redisCommand(r, "SET %b new", in[i].k, in[i].n);
		freeReplyObject(rep);
		if (!gone(c, in[i].k, in[i].n)) {
			printf("edges: key %d (%zu bytes) not invalidated\n", i, in[i].n);
			bad++;
		}
	}
	for (int i = 0; i < 2; i++) {
		CHECK(tc_set(c, out[i].k, out[i].n, "keep", 4, 0, 0) == 0, "set out %d", i);
		rep = redisCommand(r, "SET %b new", out[i].k, out[i].n);
		freeReplyObject(rep);
	}
	/* A fence: every earlier invalidation is applied once it is. */
	CHECK(tc_set(c, "quote:efence", 12, "x", 1, 0, 0) == 0, "fence");
	rep = redisCommand(r, "SET quote:efence y");
	freeReplyObject(rep);
	CHECK(gone(c, "quote:efence", 12), "fence not invalidated");
	for (int i = 0; i < 2; i++)
		if (!tc_exists(c, out[i].k, out[i].n)) {
			printf("edges: %.*s, not under the prefix, was deleted\n", (int)out[i].n,
			       (const char *)out[i].k);
			bad++;
		}
	if (tier_since(c) != since || tier_state(c) != TC_TIER_UP) {
		CHECK(++tries < 5, "the tier went down during 5 tries");
		t0 = mono_us();
		while (tier_state(c) != TC_TIER_UP && mono_us() - t0 < 10000000u)
			usleep(1000);
		goto again;
	}
	/* The purge: the binary key and the longest, cached again. */
	CHECK(tc_set(c, bin, sizeof(bin) - 1, "old", 3, 0, 0) == 0, "set bin");
	CHECK(tc_set(c, maxk, TC_KEY_MAX, "old", 3, 0, 0) == 0, "set max");
	rep = redisCommand(r, "CLIENT KILL TYPE pubsub");
	freeReplyObject(rep);
	if (!gone(c, bin, sizeof(bin) - 1) || !gone(c, maxk, TC_KEY_MAX)) {
		printf("edges: the purge left a binary or the longest key\n");
		bad++;
	}
	CHECK(tc_exists(c, "quote", 5), "the purge deleted 'quote'");
	t0 = mono_us();
	while (tier_state(c) != TC_TIER_UP && mono_us() - t0 < 10000000u)
		usleep(1000);
	CHECK(tier_state(c) == TC_TIER_UP, "not up again after the purge");
	for (int i = 0; i < 2; i++)
		(void)tc_del(c, out[i].k, out[i].n);
	printf("edges: %s\n", bad ? "failed" : "ok");
	redisFree(r);
	tc_close(c);
	return bad ? 1 : 0;
}

/*
 * misc SOCK SEG: the exact results of tier_set, tier_rate_limit, tier_get
 * on a key absent from Redis, and of marks when Redis fails (fail closed,
 * then TIER_LOCAL_ONLY).  Keys under "other:", which no bridge maps.
 */
static int misc(int argc, char **argv)
{
	if (argc != 4)
		return 2;
	struct tier_redis t = { 0 };
	char buf[32], key[64];
	tc_meta m;
	uint64_t n = 0;
	int kl, rc;

	t.r = redisConnectUnix(argv[2]);
	CHECK(t.r && !t.r->err, "connect");
	CHECK(tc_open(&t.c, argv[3], NULL) == 0, "open");
	kl = snprintf(key, sizeof(key), "other:ws:%d", (int)getpid());
	CHECK(tier_set(&t, key, (size_t)kl, "w1", 2, 30000) == 0, "tier_set");
	redisReply *r = redisCommand(t.r, "PTTL %b", key, (size_t)kl);
	CHECK(r && r->type == REDIS_REPLY_INTEGER && r->integer > 0 && r->integer <= 30000,
	      "tier_set: Redis PTTL");
	freeReplyObject(r);
	r = redisCommand(t.r, "GET %b", key, (size_t)kl);
	CHECK(r && r->type == REDIS_REPLY_STRING && r->len == 2 && memcmp(r->str, "w1", 2) == 0,
	      "tier_set: Redis GET");
	freeReplyObject(r);
	rc = tc_get(t.c, key, (size_t)kl, buf, sizeof(buf), &m);
	CHECK(rc == 0 && m.len == 2 && memcmp(buf, "w1", 2) == 0, "tier_set: local %d", rc);

	kl = snprintf(key, sizeof(key), "other:rl:%d", (int)getpid());
	for (int i = 1; i <= 5; i++) {
		rc = tier_rate_limit(&t, key, (size_t)kl, 5, 10000, &n);
		CHECK(rc == 1 && n == (uint64_t)i, "rate %d: rc %d n %llu", i, rc, (unsigned long long)n);
	}
	rc = tier_rate_limit(&t, key, (size_t)kl, 5, 10000, &n);
	CHECK(rc == 0 && n == 6, "rate over: rc %d n %llu", rc, (unsigned long long)n);
	r = redisCommand(t.r, "PTTL %b", key, (size_t)kl);
	CHECK(r && r->type == REDIS_REPLY_INTEGER && r->integer > 0 && r->integer <= 10000,
	      "rate window expiry");
	freeReplyObject(r);

	/* Read-through of a key Redis does not have: -ENOENT, nothing cached. */
	kl = snprintf(key, sizeof(key), "other:none:%d", (int)getpid());
	rc = tier_get(&t, key, (size_t)kl, buf, sizeof(buf), &m, 0);
	CHECK(rc == -ENOENT, "tier_get absent: %d", rc);
	/* The placeholder was given a 1 ms TTL; reads judge expiry by the
	 * coarse clock (one kernel tick late at most, 10 ms at HZ=100), so
	 * wait for it to go rather than for a fixed 5 ms (it failed 5 times
	 * in 7 under ASan on a loaded host). */
	int gone = 0;
	for (int i = 0; i < 2000 && !gone; i++) {
		gone = !tc_exists(t.c, key, (size_t)kl);
		if (!gone)
			usleep(1000);
	}
	CHECK(gone, "tier_get absent: placeholder left after 2 s");
	/* Read-through of a present key: cached locally with Redis's TTL. */
	kl = snprintf(key, sizeof(key), "other:rt:%d", (int)getpid());
	r = redisCommand(t.r, "SET %b rv PX 20000", key, (size_t)kl);
	freeReplyObject(r);
	/* Cached only while the tier is up: a bridge that went down for a
	 * moment on a loaded host (a ping late) is waited for, then retried. */
	for (int tries = 0;; tries++) {
		uint64_t t0 = mono_us();
		while (tier_state(t.c) != TC_TIER_UP && mono_us() - t0 < 10000000u)
			usleep(1000);
		t.state_ms = 0;
		rc = tier_get(&t, key, (size_t)kl, buf, sizeof(buf), &m, 0);
		CHECK(rc == 0 && m.len == 2 && memcmp(buf, "rv", 2) == 0, "tier_get: %d", rc);
		rc = tc_get(t.c, key, (size_t)kl, buf, sizeof(buf), &m);
		if (rc == 0 || tries == 20)
			break;
	}
	CHECK(rc == 0 && m.type == 0 && m.len == 2 && memcmp(buf, "rv", 2) == 0, "tier_get cached: %d", rc);
	int64_t left = m.expires_ms - tc_now_ms();
	CHECK(left > 0 && left <= 20000, "tier_get cached TTL %lld", (long long)left);

	/* A segment no bridge serves: its local copies are not trusted and
	 * nothing is cached there; the value comes from Redis. */
	{
		char nb[TC_NAME_MAX + 1];
		tc_opts no = { .max_entries = 1024, .memory_bytes = 1 << 20, .max_readers = 4,
			       .flags = TC_CREATE | TC_EXCL };
		struct tier_redis u = { .r = t.r };
		snprintf(nb, sizeof(nb), "tierprobe-%d", (int)getpid());
		CHECK(tc_open(&u.c, nb, &no) == 0, "open %s", nb);
		kl = snprintf(key, sizeof(key), "quote:nobridge:%d", (int)getpid());
		CHECK(tc_set(u.c, key, (size_t)kl, "local", 5, 0, 0) == 0, "set local");
		r = redisCommand(t.r, "SET %b remote", key, (size_t)kl);
		freeReplyObject(r);
		rc = tier_get(&u, key, (size_t)kl, buf, sizeof(buf), &m, 0);
		CHECK(rc == 0 && m.len == 6 && memcmp(buf, "remote", 6) == 0, "no bridge: %d", rc);
		rc = tc_get(u.c, key, (size_t)kl, buf, sizeof(buf), &m);
		CHECK(rc == 0 && m.len == 5 && memcmp(buf, "local", 5) == 0, "no bridge: cached over");
		CHECK(u.state == TC_TIER_NONE, "no bridge: state %u", u.state);
		tc_close(u.c);
		tc_unlink(nb);
	}

	/* Redis fails: a mark is refused and the local mark given back ... */
	redisFree(t.r);
	t.r = redisConnectUnix("/nonexistent/redis.sock");
	CHECK(t.r && t.r->err, "a failed context");
	kl = snprintf(key, sizeof(key), "other:mk:%d", (int)getpid());
	rc = tier_mark_once(&t, key, (size_t)kl, 60000);
	CHECK(rc == -EAGAIN && t.refused == 1, "fail closed: rc %d refused %llu", rc,
	      (unsigned long long)t.refused);
	CHECK(!tc_exists(t.c, key, (size_t)kl), "fail closed: local mark left");
	CHECK(tier_set(&t, key, (size_t)kl, "x", 1, 0) == -EAGAIN, "tier_set while down");
	CHECK(!tc_exists(t.c, key, (size_t)kl), "tier_set while down wrote locally");
	CHECK(tier_rate_limit(&t, key, (size_t)kl, 5, 1000, NULL) == -EAGAIN, "rate while down");
	/* ... or, with TIER_LOCAL_ONLY, decided by the local mark alone. */
	t.flags = TIER_LOCAL_ONLY;
	rc = tier_mark_once(&t, key, (size_t)kl, 60000);
	CHECK(rc == 1 && t.local_only == 1, "local only: rc %d", rc);
	rc = tier_mark_once(&t, key, (size_t)kl, 60000);
	CHECK(rc == 0 && t.local_only == 1, "local only, second: rc %d", rc);
	redisFree(t.r);
	tc_close(t.c);
	printf("misc: ok\n");
	return 0;
}
#endif

static int silent(int argc, char **argv)
{
	if (argc != 6)
		return 2;
	tc_cache *c = attach(argv[2]);
	pid_t rpid = (pid_t)atoi(argv[3]);
	uint64_t ping = strtoull(argv[4], NULL, 10);
	int rounds = atoi(argv[5]);
	const char *sl = getenv("SLACK_MS");
	uint64_t slack = sl ? strtoull(sl, NULL, 10) : 2000;
	int over = 0, failed = 0;
	uint64_t maxp = 0, maxr = 0;

	printf("silent_purge_ms");
	for (int i = 0; i < rounds; i++) {
		char key[32];
		uint64_t t0;
		int kl;

		/* Up before each round. */
		t0 = mono_us();
		while (tier_state(c) != TC_TIER_UP && mono_us() - t0 < 15000000u)
			usleep(1000);
		if (tier_state(c) != TC_TIER_UP) {
			failed++;
			break;
		}
		for (int k = 0; k < 50; k++) {
			kl = snprintf(key, sizeof(key), "quote:s%d", k);
			(void)tc_set(c, key, (size_t)kl, "v", 1, 0, 0);
		}
		kl = snprintf(key, sizeof(key), "quote:s%d", 49);
		if (kill(rpid, SIGSTOP))
			return 2;
		t0 = mono_us();
		for (;;) {
			if (tier_state(c) == TC_TIER_DOWN && !tc_exists(c, key, (size_t)kl) &&
			    !tc_exists(c, "quote:s0", 8))
				break;
			if (mono_us() - t0 > 15000000u) {
				failed++;
				break;
			}
			usleep(200);
		}
		uint64_t ms = (mono_us() - t0) / 1000;
		printf(" %llu", (unsigned long long)ms);
		if (ms > maxp)
			maxp = ms;
		if (ms > 2 * ping + slack)
			over++;
		kill(rpid, SIGCONT);
		t0 = mono_us();
		while (tier_state(c) != TC_TIER_UP && mono_us() - t0 < 15000000u)
			usleep(1000);
		uint64_t rms = (mono_us() - t0) / 1000;
		if (rms > maxr)
			maxr = rms;
		if (tier_state(c) != TC_TIER_UP)
			failed++;
	}
	printf("\nsilent_purge_max_ms=%llu bound_ms=%llu rearm_max_ms=%llu rounds=%d\n",
	       (unsigned long long)maxp, (unsigned long long)(2 * ping),
	       (unsigned long long)maxr, rounds);
	kill(rpid, SIGCONT);
	tc_close(c);
	return failed ? 1 : over ? 3 : 0;
}

int main(int argc, char **argv)
{
	if (argc >= 3 && strcmp(argv[1], "state") == 0) {
		tc_cache *c = attach(argv[2]);
		tc_tier t;
		int rc = tc_tier_get(c, &t);
		if (rc)
			return 2;
		printf("%s %u\n", state_name(t.state), t.pid);
		tc_close(c);
		return 0;
	}
	if (argc >= 2 && strcmp(argv[1], "silent") == 0)
		return silent(argc, argv);
#ifdef TC_HAVE_HIREDIS
	if (argc >= 2 && strcmp(argv[1], "latency") == 0)
		return latency(argc, argv);
	if (argc >= 2 && strcmp(argv[1], "markrace") == 0)
		return markrace(argc, argv);
	if (argc >= 2 && strcmp(argv[1], "fillrace") == 0)
		return fillrace(argc, argv);
	if (argc >= 2 && strcmp(argv[1], "misc") == 0)
		return misc(argc, argv);
	if (argc >= 2 && strcmp(argv[1], "setrace") == 0)
		return setrace(argc, argv);
	if (argc >= 2 && strcmp(argv[1], "edges") == 0)
		return edges(argc, argv);
	if (argc >= 2 && strcmp(argv[1], "ttlfill") == 0)
		return ttlfill(argc, argv);
	if (argc >= 2 && strcmp(argv[1], "chaos") == 0)
		return chaos(argc, argv);
#else
	fprintf(stderr, "tier_probe: built without hiredis\n");
	return 77;
#endif
	fprintf(stderr, "usage: tier_probe latency|silent|state ...\n");
	return 2;
}
