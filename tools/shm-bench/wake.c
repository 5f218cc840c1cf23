/* SPDX-License-Identifier: MIT */
/*
 * wake.c - shm-bench --wake (issue 11): how long from a write in one
 * process to the return of a waiter in another (tc_wait, tc_wait_any),
 * beside the floor of the machine (a bare futex ping between two processes)
 * and a Redis pub/sub message (hiredis, --redis-socket), measured in the
 * same run, one after the other.
 *
 * Each round: the writer waits until the waiter reported the previous
 * round, lets --gap-us microseconds pass (the waiter goes back to sleep; a
 * waiter still running when the write comes would measure no wake-up at
 * all), reads CLOCK_MONOTONIC, writes (tc_set of one key; a futex
 * increment and FUTEX_WAKE; PUBLISH); the waiter reads the clock when its
 * call returns and stores the difference in a shared array.  Both read the
 * system's one monotonic clock, so the difference is the one-way latency,
 * the writer's call included.  The waiter also reports its CPU time and
 * its voluntary context switches per round: a waiter that sleeps uses a
 * few microseconds of CPU per round whatever the gap, and switches out
 * once per round.
 */
#include <limits.h>
#include <linux/futex.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "bench.h"
#ifdef TC_HAVE_HIREDIS
#include <hiredis/hiredis.h>
#endif

struct wake_cfg {
	char segment[80];
	const char *redis_sock; /* NULL: no Redis row */
	unsigned rounds, warmup;
	unsigned gap_us;
};

struct wake_result {
	const char *name;
	unsigned rounds;
	uint64_t p50, p99, p999, max;  /* ns, the write to the waiter's return */
	uint64_t cpu_per_round_ns;     /* the waiter's CPU time per round */
	double switches_per_round;     /* its voluntary context switches per round */
};

struct wake_shared {
	volatile uint64_t t0;       /* the writer's clock just before its write */
	volatile uint64_t done;     /* rounds the waiter reported */
	volatile uint64_t ready;    /* the waiter is set up */
	volatile uint64_t cpu_ns;   /* the waiter's CPU time over the timed rounds */
	volatile uint64_t nvcsw;    /* its voluntary context switches over them */
	volatile int failed;
	uint32_t fut;               /* the bare futex word */
	uint64_t lat[];             /* ns, one per round */
};

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static long nvcsw(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_nvcsw;
}

static void sleep_us(unsigned us)
{
	struct timespec ts = { 0, (long)us * 1000 };
	nanosleep(&ts, NULL);
}

/* The writer's side: wait for the waiter to report round I. */
static bool await_done(struct wake_shared *sh, uint64_t i, pid_t kid)
{
	while (sh->done < i) {
		if (sh->failed)
			return false;
		int st;
		if (waitpid(kid, &st, WNOHANG) == kid)
			return false;
		sleep_us(20);
	}
	return true;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static void summarize(const char *what, struct wake_shared *sh, unsigned rounds, struct wake_result *r)
{
	uint64_t *v = malloc(rounds * sizeof(*v));
	memcpy(v, sh->lat, rounds * sizeof(*v));
	qsort(v, rounds, sizeof(*v), cmp_u64);
	r->name = what;
	r->rounds = rounds;
	r->p50 = v[rounds / 2];
	r->p99 = v[(size_t)rounds * 99 / 100];
	r->p999 = v[(size_t)rounds * 999 / 1000];
	r->max = v[rounds - 1];
	r->cpu_per_round_ns = sh->cpu_ns / rounds;
	r->switches_per_round = (double)sh->nvcsw / rounds;
	free(v);
}

enum { K_FUTEX, K_WAIT, K_WAIT_ANY, K_REDIS };

#define KEY "wake:tick"

/* Waiter: set up, report ready, then rounds of "wait, clock, report". */
static int waiter(struct wake_shared *sh, const struct wake_cfg *wc, int kind)
{
	tc_cache *c = NULL;
	tc_meta m;
	uint64_t ver = 0, seq = 0;
	uint32_t fut = 0;
	if (kind == K_WAIT || kind == K_WAIT_ANY) {
		tc_opts o;
		memset(&o, 0, sizeof(o));
		if (tc_open(&c, wc->segment, &o) != 0)
			return 10;
		if (tc_get(c, KEY, strlen(KEY), NULL, 0, &m) == -E2BIG)
			ver = m.version;
		tc_wait_any(c, &seq, 0);
	}
#ifdef TC_HAVE_HIREDIS
	redisContext *r = NULL;
	if (kind == K_REDIS) {
		r = redisConnectUnix(wc->redis_sock);
		if (!r || r->err)
			return 11;
		redisReply *rep = redisCommand(r, "SUBSCRIBE wake");
		if (!rep)
			return 12;
		freeReplyObject(rep);
	}
#endif
	uint64_t cpu0 = 0;
	long sw0 = 0;
	sh->ready = 1;
	for (unsigned i = 0; i < wc->warmup + wc->rounds; i++) {
		if (i == wc->warmup) {
			cpu0 = cpu_ns();
			sw0 = nvcsw();
		}
		int rc = 0;
		switch (kind) {
		case K_FUTEX:
			while ((uint32_t)__atomic_load_n(&sh->fut, __ATOMIC_ACQUIRE) == fut)
				syscall(SYS_futex, &sh->fut, FUTEX_WAIT, fut, NULL, NULL, 0);
			fut++;
			break;
		case K_WAIT:
			rc = tc_wait(c, KEY, strlen(KEY), ver, 60000, &m);
			ver = m.version;
			break;
		case K_WAIT_ANY:
			rc = tc_wait_any(c, &seq, 60000);
			break;
#ifdef TC_HAVE_HIREDIS
		case K_REDIS: {
			void *rep;
			if (redisGetReply(r, &rep) != REDIS_OK)
				rc = -EIO;
			else
				freeReplyObject(rep);
			break;
		}
#endif
		}
		uint64_t t1 = now_ns();
		if (rc) {
			sh->failed = rc;
			return 13;
		}
		if (i >= wc->warmup)
			sh->lat[i - wc->warmup] = t1 - sh->t0;
		__atomic_store_n(&sh->done, i + 1, __ATOMIC_RELEASE);
	}
	sh->cpu_ns = cpu_ns() - cpu0;
	sh->nvcsw = (uint64_t)(nvcsw() - sw0);
	if (c)
		tc_close(c);
	return 0;
}

static int run_one(const struct wake_cfg *wc, int kind, const char *what, struct wake_result *res)
{
	size_t bytes = sizeof(struct wake_shared) + wc->rounds * sizeof(uint64_t);
	struct wake_shared *sh = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
				 -1, 0);
	if (sh == MAP_FAILED)
		return -errno;
	memset(sh, 0, sizeof(*sh));
	tc_cache *c = NULL;
	if (kind == K_WAIT || kind == K_WAIT_ANY) {
		tc_opts o;
		memset(&o, 0, sizeof(o));
		int rc = tc_open(&c, wc->segment, &o);
		if (rc) {
			munmap(sh, bytes);
			return rc;
		}
	}
#ifdef TC_HAVE_HIREDIS
	redisContext *r = NULL;
	if (kind == K_REDIS) {
		r = redisConnectUnix(wc->redis_sock);
		if (!r || r->err) {
			munmap(sh, bytes);
			return -ECONNREFUSED;
		}
	}
#endif
	pid_t kid = fork();
	if (kid == 0)
		_exit(waiter(sh, wc, kind));
	while (!sh->ready && !sh->failed)
		sleep_us(100);
	int rc = 0;
	char val[32];
	for (unsigned i = 0; i < wc->warmup + wc->rounds; i++) {
		if (!await_done(sh, i, kid)) {
			rc = -EIO;
			break;
		}
		sleep_us(wc->gap_us);
		int n = snprintf(val, sizeof(val), "%u", i);
		sh->t0 = now_ns();
		switch (kind) {
		case K_FUTEX:
			__atomic_add_fetch(&sh->fut, 1, __ATOMIC_SEQ_CST);
			syscall(SYS_futex, &sh->fut, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
			break;
		case K_WAIT:
		case K_WAIT_ANY:
			rc = tc_set(c, KEY, strlen(KEY), val, (size_t)n, 0, 0);
			break;
#ifdef TC_HAVE_HIREDIS
		case K_REDIS: {
			redisReply *rep = redisCommand(r, "PUBLISH wake %b", val, (size_t)n);
			if (!rep)
				rc = -EIO;
			else
				freeReplyObject(rep);
			break;
		}
#endif
		}
		if (rc)
			break;
	}
	if (rc == 0 && !await_done(sh, wc->warmup + wc->rounds, kid))
		rc = -EIO;
	int st;
	if (rc)
		kill(kid, SIGKILL);
	waitpid(kid, &st, 0);
	if (rc == 0 && (!WIFEXITED(st) || WEXITSTATUS(st) != 0))
		rc = -EIO;
	if (rc == 0)
		summarize(what, sh, wc->rounds, res);
	if (c)
		tc_close(c);
#ifdef TC_HAVE_HIREDIS
	if (r)
		redisFree(r);
#endif
	munmap(sh, bytes);
	return rc;
}

static int wake_run(const struct wake_cfg *wc, struct wake_result *out, int *nout)
{
	static const struct { int kind; const char *name; } kinds[] = {
		{ K_FUTEX, "futex-pingpong" },
		{ K_WAIT, "tc_wait" },
		{ K_WAIT_ANY, "tc_wait_any" },
#ifdef TC_HAVE_HIREDIS
		{ K_REDIS, "redis-pubsub" },
#endif
	};
	int n = 0;
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		if (kinds[i].kind == K_REDIS && !wc->redis_sock)
			continue;
		int rc = run_one(wc, kinds[i].kind, kinds[i].name, &out[n]);
		if (rc) {
			fprintf(stderr, "wake: %s failed: %s\n", kinds[i].name, tc_strerror(rc));
			return rc;
		}
		n++;
	}
	*nout = n;
	return 0;
}

/* shm-bench --wake: create a segment of its own, run every kind, print. */
int wake_main(void)
{
	struct wake_cfg w = {
		.rounds = (unsigned)(cfg.ops ? cfg.ops : 20000), .warmup = (unsigned)cfg.warmup,
		.gap_us = cfg.gap_us,
	};
	if (w.rounds < 100 || cfg.ops > 10000000)
		die("--wake wants -n 100..10M rounds");
	if (w.warmup > 100000)
		w.warmup = 100000;
#ifdef TC_HAVE_HIREDIS
	/* Redis only where a server listens on the socket. */
	redisContext *probe = redisConnectUnix(cfg.redis_sock);
	if (probe && !probe->err)
		w.redis_sock = cfg.redis_sock;
	else
		fprintf(stderr, "shm-bench: no redis-server on %s: no pub/sub row\n", cfg.redis_sock);
	if (probe)
		redisFree(probe);
#endif
	snprintf(w.segment, sizeof(w.segment), "shm-bench-wake.%d", (int)getpid());
	tc_opts o;
	memset(&o, 0, sizeof(o));
	o.flags = TC_CREATE | TC_EXCL;
	o.max_entries = 1024;
	o.memory_bytes = 1 << 20;
	tc_cache *c;
	int rc = tc_open(&c, w.segment, &o);
	if (rc)
		die("cannot create segment %s: %s", w.segment, tc_strerror(rc));
	struct wake_result r[4];
	int n = 0;
	rc = wake_run(&w, r, &n);
	tc_close(c);
	tc_unlink(w.segment);
	const char *label = cfg.label[0] ? cfg.label : "wake";
	for (int i = 0; i < n; i++) {
		if (cfg.out == OUT_CSV) {
			if (i == 0 && cfg.csv_header)
				printf("label,kind,rounds,gap_us,p50_ns,p99_ns,p999_ns,max_ns,"
				       "waiter_cpu_ns_per_round,waiter_switches_per_round\n");
			printf("%s,%s,%u,%u,%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64
			       ",%.3f\n", label, r[i].name, r[i].rounds, w.gap_us, r[i].p50, r[i].p99,
			       r[i].p999, r[i].max, r[i].cpu_per_round_ns, r[i].switches_per_round);
		} else if (cfg.out == OUT_JSON) {
			printf("%s{\"label\":\"%s\",\"kind\":\"%s\",\"rounds\":%u,\"gap_us\":%u,"
			       "\"p50_ns\":%" PRIu64 ",\"p99_ns\":%" PRIu64 ",\"p999_ns\":%" PRIu64
			       ",\"max_ns\":%" PRIu64 ",\"waiter_cpu_ns_per_round\":%" PRIu64
			       ",\"waiter_switches_per_round\":%.3f}%s", i ? "," : "[", label,
			       r[i].name, r[i].rounds, w.gap_us, r[i].p50, r[i].p99, r[i].p999, r[i].max,
			       r[i].cpu_per_round_ns, r[i].switches_per_round, i == n - 1 ? "]\n" : "");
		} else {
			if (i == 0)
				printf("%-15s %8s %10s %10s %10s %10s %14s %10s\n", "wake-up", "rounds",
				       "p50", "p99", "p99.9", "max", "waiter cpu/rd", "switch/rd");
			printf("%-15s %8u %8.2f us %7.2f us %7.2f us %7.1f us %11.2f us %10.2f\n",
			       r[i].name, r[i].rounds, r[i].p50 / 1e3, r[i].p99 / 1e3, r[i].p999 / 1e3,
			       r[i].max / 1e3, r[i].cpu_per_round_ns / 1e3, r[i].switches_per_round);
		}
	}
	return rc ? 1 : 0;
}
