/* SPDX-License-Identifier: MIT */
/*
 * tc-demo - the main job (`make demo`): a small trading host in one command.
 *
 *   shm-sweeper ── keeps both segments swept (fork+exec of build/bin/shm-sweeper)
 *   feed ───────── writes ticks for 20 symbols into two strategy segments,
 *                  the same tick into both, but a different market regime per
 *                  strategy (ICT-style labels into one, DCA-style into the other)
 *   ict, dca ───── two strategy processes reading on their hot path (tc_get of
 *                  the tick, tc_peek of the regime inside a read section),
 *                  timing every read, and writing their signals back
 *
 * After a few seconds it prints `shm-inspect list`, each strategy's read
 * latency percentiles and what each saw for one symbol (same tick, its own
 * regime only: isolation), then stops everything and removes its segments.
 * SIGINT/SIGTERM at any point stop all processes and remove the segments.
 *
 * --hosts 2 (built with hiredis): the Redis tier instead -- a redis-server
 * on a unix socket, two simulated hosts with a segment and a shm-bridge
 * each; see hosts_demo().
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tickcache.h"
#include "common.h"

static const char *const symbols[] = {
	"AAPL", "MSFT", "NVDA", "AMZN", "GOOG", "META", "TSLA", "AVGO", "JPM", "V",
	"UNH", "XOM", "JNJ", "WMT", "MA", "PG", "HD", "CVX", "BAC", "KO",
};
#define NSYM ((int)(sizeof symbols / sizeof symbols[0]))
#define SHOW_SYM 0 /* AAPL */

static const char *const ict_regimes[] = { "ict:bullish-order-block", "ict:bearish-fvg",
					   "ict:liquidity-sweep", "ict:range" };
static const char *const dca_regimes[] = { "dca:accumulate", "dca:hold", "dca:pause",
					   "dca:rebalance" };

#define TYPE_TICK   0x7469636bu /* "tick" */
#define TYPE_REGIME 0x7265676du /* "regm" */
#define TYPE_SIGNAL 0x7369676eu /* "sign" */

struct tick {
	uint64_t seq;
	int64_t ts_ns;
	double bid, ask, last;
	uint32_t sym;
	uint32_t check; /* seq ^ sym ^ 0x7c7c7c7c, a self-check against torn reads */
};

#define MAX_SAMPLES (1u << 21)

struct report {
	char strategy[8];
	int rc;                 /* 0, or the library error that stopped it */
	uint64_t rounds, reads, hits, misses, bad, foreign, signals;
	uint64_t clock_ns;      /* overhead of one timing pair, subtracted */
	uint64_t get_pct[4];    /* p50, p99, p99.9, max */
	uint64_t peek_pct[4];
	struct tick seen;
	char regime[48];
	char signal[96];
};

static volatile sig_atomic_t g_stop;
static pid_t parent_pid;
static char seg_ict[TC_NAME_MAX + 1], seg_dca[TC_NAME_MAX + 1];

static void on_stop(int sig)
{
	(void)sig;
	g_stop = 1;
}

static void handle_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_stop;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

/* In a child: die with the parent, and stop on the usual signals. */
static void child_setup(void)
{
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() != parent_pid)
		g_stop = 1;
	handle_signals();
}

static void remove_segments(void)
{
	tc_unlink(seg_ict);
	tc_unlink(seg_dca);
}

/* ------------------------------------------------------------------ */
/* The feed                                                             */
/* ------------------------------------------------------------------ */

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static int feed_main(void)
{
	tc_cache *ict = NULL, *dca = NULL;
	double price[NSYM];
	uint64_t seq = 0, rounds = 0;
	char key[64];
	int rc;

	child_setup();
	rng ^= (uint64_t)getpid() << 20;
	rc = tc_open(&ict, seg_ict, NULL);
	if (!rc)
		rc = tc_open(&dca, seg_dca, NULL);
	if (rc) {
		fprintf(stderr, "tc-demo feed: cannot attach: %s\n", tc_strerror(rc));
		tc_close(ict);
		return 1;
	}
	for (int i = 0; i < NSYM; i++)
		price[i] = 20.0 + (double)(rnd() % 40000) / 100.0;
	while (!g_stop) {
		for (int i = 0; i < NSYM && !g_stop; i++) {
			struct tick t;
			size_t kl = (size_t)snprintf(key, sizeof key, "tick:%s", symbols[i]);

			price[i] *= 1.0 + ((double)(rnd() % 2001) - 1000.0) / 1e6;
			t.seq = ++seq;
			t.ts_ns = tc_now_ms() * 1000000;
			t.last = price[i];
			t.bid = price[i] - 0.01;
			t.ask = price[i] + 0.01;
			t.sym = (uint32_t)i;
			t.check = (uint32_t)(t.seq ^ t.sym ^ 0x7c7c7c7cu);
			/* The same tick goes to every strategy... */
			rc = tc_set(ict, key, kl, &t, sizeof t, TYPE_TICK, 2000);
			if (!rc)
				rc = tc_set(dca, key, kl, &t, sizeof t, TYPE_TICK, 2000);
			/* ...but each strategy has its own view of the regime. */
			if (!rc && rounds % 50 == 0) {
				const char *ri = ict_regimes[rnd() % 4], *rd = dca_regimes[rnd() % 4];

				kl = (size_t)snprintf(key, sizeof key, "regime:%s", symbols[i]);
				rc = tc_set(ict, key, kl, ri, strlen(ri) + 1, TYPE_REGIME, 0);
				if (!rc)
					rc = tc_set(dca, key, kl, rd, strlen(rd) + 1, TYPE_REGIME, 0);
			}
			if (rc) {
				fprintf(stderr, "tc-demo feed: write failed: %s\n", tc_strerror(rc));
				g_stop = 1;
			}
		}
		/* Short-lived quotes: the sweeper expires these. */
		{
			size_t kl = (size_t)snprintf(key, sizeof key, "quote:%" PRIu64, rounds);

			tc_set(ict, key, kl, &seq, sizeof seq, 0, 300);
			tc_set(dca, key, kl, &seq, sizeof seq, 0, 300);
		}
		rounds++;
		sleep_ms(1);
	}
	tc_close(ict);
	tc_close(dca);
	/* The parent died without cleaning up: do it for it. */
	if (getppid() != parent_pid)
		remove_segments();
	return rc ? 1 : 0;
}

/* ------------------------------------------------------------------ */
/* A strategy                                                           */
/* ------------------------------------------------------------------ */

static int u32cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return (x > y) - (x < y);
}

static void percentiles(uint32_t *v, uint64_t n, uint64_t out[4])
{
	memset(out, 0, 4 * sizeof out[0]);
	if (!n)
		return;
	qsort(v, n, sizeof *v, u32cmp);
	out[0] = v[(n - 1) * 50 / 100];
	out[1] = v[(n - 1) * 99 / 100];
	out[2] = v[(n - 1) * 999 / 1000];
	out[3] = v[n - 1];
}

/* clock_overhead - the median cost of an empty timing pair. */
static uint64_t clock_overhead(void)
{
	static uint32_t v[1001];

	for (int i = 0; i < 1001; i++) {
		uint64_t a = mono_ns();

		v[i] = (uint32_t)(mono_ns() - a);
	}
	qsort(v, 1001, sizeof v[0], u32cmp);
	return v[500];
}

static uint32_t lat(uint64_t t0, uint64_t t1, uint64_t overhead)
{
	uint64_t d = t1 - t0;

	d = d > overhead ? d - overhead : 0;
	return d > UINT32_MAX ? UINT32_MAX : (uint32_t)d;
}

static int strategy_main(const char *seg, const char *kind, int out_fd)
{
	static struct report r;
	tc_cache *c = NULL;
	uint32_t *get_ns = malloc(MAX_SAMPLES * sizeof *get_ns);
	uint32_t *peek_ns = malloc(MAX_SAMPLES * sizeof *peek_ns);
	uint64_t ngets = 0, npeeks = 0;
	double avg[NSYM] = { 0 };
	const char *own = !strcmp(kind, "ict") ? "ict:" : "dca:";
	char key[64], sig[96];
	int rc;

	child_setup();
	memset(&r, 0, sizeof r);
	snprintf(r.strategy, sizeof r.strategy, "%s", kind);
	rc = tc_open(&c, seg, NULL);
	if (rc || !get_ns || !peek_ns) {
		r.rc = rc ? rc : -ENOMEM;
		goto out;
	}
	r.clock_ns = clock_overhead();
	while (!g_stop) {
		for (int i = 0; i < NSYM; i++) {
			struct tick t;
			tc_meta m;
			const void *pv;
			uint64_t t0, t1;
			size_t kl = (size_t)snprintf(key, sizeof key, "tick:%s", symbols[i]);

			/* Hot path 1: copy the latest tick out. */
			t0 = mono_ns();
			rc = tc_get(c, key, kl, &t, sizeof t, &m);
			t1 = mono_ns();
			r.reads++;
			if (ngets < MAX_SAMPLES)
				get_ns[ngets++] = lat(t0, t1, r.clock_ns);
			if (rc == -ENOENT) {
				r.misses++;
				continue;
			}
			if (rc) {
				r.rc = rc;
				goto out;
			}
			r.hits++;
			if (m.len != sizeof t || t.sym != (uint32_t)i ||
			    t.check != (uint32_t)(t.seq ^ t.sym ^ 0x7c7c7c7cu))
				r.bad++;
			avg[i] = avg[i] ? avg[i] * 0.95 + t.last * 0.05 : t.last;

			/* Hot path 2: zero-copy look at this strategy's regime. */
			kl = (size_t)snprintf(key, sizeof key, "regime:%s", symbols[i]);
			if ((rc = tc_read_lock(c))) {
				r.rc = rc;
				goto out;
			}
			t0 = mono_ns();
			rc = tc_peek(c, key, kl, &pv, &m);
			t1 = mono_ns();
			r.reads++;
			if (npeeks < MAX_SAMPLES)
				peek_ns[npeeks++] = lat(t0, t1, r.clock_ns);
			if (!rc) {
				r.hits++;
				if (m.len < 5 || memcmp(pv, own, 4))
					r.foreign++;
				if (i == SHOW_SYM) {
					size_t n = m.len < sizeof r.regime ? m.len : sizeof r.regime - 1;

					memcpy(r.regime, pv, n);
					r.regime[n] = 0;
				}
			} else {
				r.misses++;
			}
			tc_read_unlock(c);

			if (i == SHOW_SYM)
				r.seen = t;
			/* Write a result back now and then. */
			if (r.rounds % 20 == 0) {
				int n = snprintf(sig, sizeof sig, "%s %s %s @ %.2f (avg %.2f, %s)", kind,
						 t.last > avg[i] ? "BUY" : "SELL", symbols[i], t.last,
						 avg[i], rc ? "no regime" : r.regime[0] ? r.regime : "-");

				kl = (size_t)snprintf(key, sizeof key, "signal:%s", symbols[i]);
				if (!tc_set(c, key, kl, sig, (size_t)n, TYPE_SIGNAL, 5000)) {
					r.signals++;
					if (i == SHOW_SYM)
						snprintf(r.signal, sizeof r.signal, "%s", sig);
				}
			}
		}
		r.rounds++;
		{
			struct timespec ts = { 0, 200000 };

			nanosleep(&ts, NULL);
		}
	}
	r.rc = 0;
out:
	if (get_ns)
		percentiles(get_ns, ngets, r.get_pct);
	if (peek_ns)
		percentiles(peek_ns, npeeks, r.peek_pct);
	if (write(out_fd, &r, sizeof r) != (ssize_t)sizeof r)
		r.rc = -EIO;
	close(out_fd);
	tc_close(c);
	free(get_ns);
	free(peek_ns);
	return r.rc ? 1 : 0;
}

/* ------------------------------------------------------------------ */
/* The conductor                                                        */
/* ------------------------------------------------------------------ */

static char bindir[PATH_MAX];

static void find_bindir(const char *argv0)
{
	char buf[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);

	if (n <= 0) {
		snprintf(buf, sizeof buf, "%s", argv0);
		n = (ssize_t)strlen(buf);
	}
	buf[n] = 0;
	snprintf(bindir, sizeof bindir, "%s", dirname(buf));
}

static pid_t spawn(char *const argv[], bool quiet)
{
	pid_t pid = fork();

	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (quiet) {
			int fd = open("/dev/null", O_WRONLY);

			if (fd >= 0)
				dup2(fd, STDOUT_FILENO);
		}
		execv(argv[0], argv);
		fprintf(stderr, "tc-demo: cannot run %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	return pid;
}

static pid_t fork_child(int (*fn)(void))
{
	pid_t pid;

	fflush(NULL);
	pid = fork();
	if (pid == 0)
		_exit(fn());
	return pid;
}

static int ict_fd[2], dca_fd[2];

static int run_ict(void)
{
	close(ict_fd[0]);
	close(dca_fd[0]);
	close(dca_fd[1]);
	return strategy_main(seg_ict, "ict", ict_fd[1]);
}

static int run_dca(void)
{
	close(ict_fd[0]);
	close(ict_fd[1]);
	close(dca_fd[0]);
	return strategy_main(seg_dca, "dca", dca_fd[1]);
}

static void stop_child(pid_t pid, int *status)
{
	if (pid <= 0)
		return;
	kill(pid, SIGTERM);
	while (waitpid(pid, status, 0) < 0 && errno == EINTR)
		;
}

static bool read_report(int fd, struct report *r)
{
	size_t got = 0;

	while (got < sizeof *r) {
		ssize_t n = read(fd, (char *)r + got, sizeof *r - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		got += (size_t)n;
	}
	return true;
}

static void print_report(const struct report *r)
{
	printf("  %-4s %9" PRIu64 " %6.2f%% %8" PRIu64 " %8" PRIu64 " %8" PRIu64 " %9" PRIu64
	       "    %8" PRIu64 " %8" PRIu64 " %8" PRIu64 " %9" PRIu64 "\n", r->strategy, r->reads,
	       r->reads ? 100.0 * (double)r->hits / (double)r->reads : 0.0, r->get_pct[0],
	       r->get_pct[1], r->get_pct[2], r->get_pct[3], r->peek_pct[0], r->peek_pct[1],
	       r->peek_pct[2], r->peek_pct[3]);
}

/* totals - what the segments counted over the run (read before removal). */
static char totals_text[512];

static void collect_totals(void)
{
	const char *names[2] = { seg_ict, seg_dca };
	size_t len = 0;

	for (int i = 0; i < 2; i++) {
		tc_cache *c;
		tc_stats st;
		char b1[32], b2[32];

		if (tc_open(&c, names[i], NULL))
			continue;
		if (!tc_get_stats(c, &st) && len < sizeof totals_text)
			len += (size_t)snprintf(totals_text + len, sizeof totals_text - len,
						"  %-18s %9" PRIu64 " sets %10" PRIu64 " hits %7" PRIu64
						" expired %5" PRIu64 " evicted   %s of %s used\n",
						names[i], st.sets, st.hits, st.expirations,
						st.evictions, fmt_size(b1, sizeof b1, st.memory_used),
						fmt_size(b2, sizeof b2, st.memory_bytes));
		tc_close(c);
	}
}

/* ------------------------------------------------------------------ */
/* --hosts 2: two hosts and Redis (issue 13)                            */
/* ------------------------------------------------------------------ */

#ifdef TC_HAVE_HIREDIS
#include <hiredis/hiredis.h>
#include <sys/mman.h>
#include "tier_redis.h"

static uint32_t tier_of(tc_cache *c)
{
	tc_tier t;
	return tc_tier_get(c, &t) ? TC_TIER_NONE : t.state;
}

static bool wait_tier(tc_cache *c, uint32_t want, uint64_t ms)
{
	uint64_t t0 = mono_ns();
	while (tier_of(c) != want && !g_stop) {
		if (mono_ns() - t0 > ms * 1000000u)
			return false;
		usleep(1000);
	}
	return tier_of(c) == want;
}

static int u64cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

/* --hosts 2, step 1: write-through on A, invalidation on B, timed. */
static bool demo_invalidation(struct tier_redis *ta, struct tier_redis *tb, tc_cache *cb)
{
	enum { ROUNDS = 500 };
	uint64_t lat[ROUNDS];
	char key[64], val[64], buf[64];
	bool ok = true;
	tc_meta m;

	for (int i = 0; i < ROUNDS && !g_stop; i++) {
		int kl = snprintf(key, sizeof key, "quote:%s", symbols[i % NSYM]);
		int vl = snprintf(val, sizeof val, "%d.%02d", 100 + i, i % 100);
		(void)tier_get(tb, key, (size_t)kl, buf, sizeof buf, &m, 0); /* B caches it */
		uint64_t t0 = mono_ns();
		if (tier_set(ta, key, (size_t)kl, val, (size_t)vl, 0)) {
			ok = false;
			break;
		}
		while (tc_exists(cb, key, (size_t)kl) && mono_ns() - t0 < 5000000000ull)
			;
		lat[i] = (mono_ns() - t0) / 1000;
		if (i == 0) {
			int rc = tier_get(tb, key, (size_t)kl, buf, sizeof buf - 1, &m, 0);
			buf[rc == 0 && m.len < sizeof buf ? m.len : 0] = 0;
			printf("1. host A writes %s = %s through Redis; host B's cached copy is gone\n"
			       "   %" PRIu64 " us later and B reads %s (read-through)\n", key, val,
			       lat[0], buf);
		}
	}
	qsort(lat, ROUNDS, sizeof lat[0], u64cmp);
	printf("   write-to-invalidation over %d writes: p50 %" PRIu64 " us, p99 %" PRIu64
	       " us, max %" PRIu64 " us\n\n", ROUNDS, lat[ROUNDS / 2], lat[ROUNDS * 99 / 100],
	       lat[ROUNDS - 1]);
	return ok;
}

/* --hosts 2, step 2: strategies on both hosts race to publish the same
 * signals; 1 when each was published exactly once, 0 when not, -1 when the
 * race could not run. */
static int demo_race(const char *sock)
{
	enum { DEMO_PROCS = 4, DEMO_SIGNALS = 200 };
	char key[64];
	int *wins = mmap(NULL, sizeof(int) * DEMO_SIGNALS, PROT_READ | PROT_WRITE,
			 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (wins == MAP_FAILED)
		return -1;
	memset(wins, 0, sizeof(int) * DEMO_SIGNALS);
	pid_t racers[DEMO_PROCS];
	for (int p = 0; p < DEMO_PROCS; p++) {
		pid_t pid = racers[p] = fork();
		if (pid == 0) {
			struct tier_redis t = { 0 };
			t.r = redisConnectUnix(sock);
			if (!t.r || t.r->err || tc_open(&t.c, p % 2 ? seg_dca : seg_ict, NULL))
				_exit(1);
			for (int k = 0; k < DEMO_SIGNALS; k++) {
				int kl = snprintf(key, sizeof key, "signal:%s:%d:%ld",
						  symbols[k % NSYM], k, (long)parent_pid);
				if (tier_mark_once(&t, key, (size_t)kl, 60000) == 1)
					__atomic_add_fetch(&wins[k], 1, __ATOMIC_SEQ_CST);
			}
			_exit(0);
		}
	}
	int st, once = 0;
	for (int p = 0; p < DEMO_PROCS; p++)
		if (racers[p] > 0)
			while (waitpid(racers[p], &st, 0) < 0 && errno == EINTR)
				;
	for (int k = 0; k < DEMO_SIGNALS; k++)
		once += wins[k] == 1;
	printf("2. %d strategy processes, two per host, race to publish %d signals\n"
	       "   (tc_add locally, SET NX PX in Redis): %d of %d published exactly once\n\n",
	       DEMO_PROCS, DEMO_SIGNALS, once, DEMO_SIGNALS);
	munmap(wins, sizeof(int) * DEMO_SIGNALS);
	return once == DEMO_SIGNALS;
}

/* --hosts 2, step 3: Redis goes silent, the tiered keys are purged within
 * 2 x ping-ms, and the tier comes back by itself. */
static bool demo_silence(pid_t p_redis, struct tier_redis *tb, tc_cache *cb)
{
	char key[64], buf[64];
	tc_meta m;

	for (int i = 0; i < NSYM; i++) {
		int kl = snprintf(key, sizeof key, "quote:%s", symbols[i]);
		(void)tier_get(tb, key, (size_t)kl, buf, sizeof buf, &m, 0);
	}
	kill(p_redis, SIGSTOP);
	uint64_t t0 = mono_ns();
	while ((tier_of(cb) != TC_TIER_DOWN || tc_exists(cb, "quote:AAPL", 10)) && !g_stop &&
	       mono_ns() - t0 < 10000000000ull)
		usleep(200);
	uint64_t purge_ms = (mono_ns() - t0) / 1000000u;
	kill(p_redis, SIGCONT);
	t0 = mono_ns();
	bool back = wait_tier(cb, TC_TIER_UP, 10000);
	printf("3. redis-server stopped (SIGSTOP): host B's tier is down and its quotes\n"
	       "   purged %" PRIu64 " ms later (bound 2 x 100 ms); after SIGCONT the tier is\n"
	       "   %s again in %" PRIu64 " ms, by itself\n",
	       purge_ms, back ? "up" : "NOT up", (mono_ns() - t0) / 1000000u);
	return back;
}

/*
 * Two simulated hosts (a segment and a shm-bridge each) and a redis-server
 * the demo starts on a unix socket: host A writes through, host B's cached
 * copy is invalidated (latency measured), strategies on both hosts race to
 * publish the same signals (one wins each), then Redis is stopped and the
 * tiered keys are purged within 2 x --ping-ms.
 */
static int hosts_demo(void)
{
	char dir[] = "/tmp/tc-demo-hosts.XXXXXX", sock[64], bridge_path[PATH_MAX + 16];
	char mapA[96], mapB[96], redis_arg[80];
	pid_t p_redis, p_ba, p_bb;
	tc_cache *ca = NULL, *cb = NULL;
	redisContext *r = NULL;
	int ok = 1, rc, st;

	if (!mkdtemp(dir)) {
		perror("tc-demo: mkdtemp");
		return 1;
	}
	snprintf(sock, sizeof sock, "%s/redis.sock", dir);
	snprintf(redis_arg, sizeof redis_arg, "unix:%s", sock);
	snprintf(bridge_path, sizeof bridge_path, "%s/shm-bridge", bindir);
	snprintf(seg_ict, sizeof seg_ict, "demo-hostA-%ld", (long)parent_pid);
	snprintf(seg_dca, sizeof seg_dca, "demo-hostB-%ld", (long)parent_pid);
	char *rargv[] = { (char *)"/usr/bin/redis-server", (char *)"--port", (char *)"0",
			  (char *)"--unixsocket", sock, (char *)"--save", (char *)"",
			  (char *)"--appendonly", (char *)"no", (char *)"--loglevel",
			  (char *)"warning", NULL };
	p_redis = spawn(rargv, true);
	for (int i = 0; i < 200 && !r; i++) {
		usleep(20000);
		r = redisConnectUnix(sock);
		if (r && r->err) {
			redisFree(r);
			r = NULL;
		}
	}
	if (!r) {
		fprintf(stderr, "tc-demo: redis-server did not start (apt-get install redis-server)\n");
		ok = 0;
		goto out;
	}
	tc_opts o = { .max_entries = 4096, .memory_bytes = 8u << 20, .max_readers = 16,
		      .flags = TC_CREATE | TC_EXCL };
	if (tc_open(&ca, seg_ict, &o) || tc_open(&cb, seg_dca, &o)) {
		fprintf(stderr, "tc-demo: cannot create the demo segments\n");
		ok = 0;
		goto out;
	}
	snprintf(mapA, sizeof mapA, "quote:=%s", seg_ict);
	snprintf(mapB, sizeof mapB, "quote:=%s", seg_dca);
	char *bav[] = { bridge_path, (char *)"--foreground", (char *)"--quiet", (char *)"--redis",
			redis_arg, (char *)"--ping-ms", (char *)"100", (char *)"--map", mapA, NULL };
	char *bbv[] = { bridge_path, (char *)"--foreground", (char *)"--quiet", (char *)"--redis",
			redis_arg, (char *)"--ping-ms", (char *)"100", (char *)"--map", mapB, NULL };
	p_ba = spawn(bav, false);
	p_bb = spawn(bbv, false);
	if (!wait_tier(ca, TC_TIER_UP, 10000) || !wait_tier(cb, TC_TIER_UP, 10000)) {
		fprintf(stderr, "tc-demo: the bridges did not come up\n");
		ok = 0;
		goto stop;
	}
	printf("redis-server on %s; host A = segment %s, host B = segment %s,\n"
	       "one shm-bridge each (--map quote:=SEGMENT --ping-ms 100): tier up on both\n\n",
	       sock, seg_ict, seg_dca);

	struct tier_redis ta = { .r = r, .c = ca }, tb = { .r = r, .c = cb };

	if (!demo_invalidation(&ta, &tb, cb))
		ok = 0;
	rc = demo_race(sock);
	if (rc < 0) {
		ok = 0;
		goto stop;
	}
	if (!rc)
		ok = 0;
	if (!demo_silence(p_redis, &tb, cb))
		ok = 0;
stop:
	kill(p_ba, SIGTERM);
	kill(p_bb, SIGTERM);
	waitpid(p_ba, &st, 0);
	waitpid(p_bb, &st, 0);
out:
	if (r)
		redisFree(r);
	kill(p_redis, SIGCONT);
	kill(p_redis, SIGTERM);
	waitpid(p_redis, &st, 0);
	tc_close(ca);
	tc_close(cb);
	remove_segments();
	unlink(sock);
	rmdir(dir);
	return ok ? 0 : 1;
}
#endif

static const char usage_text[] =
	"usage: tc-demo [--seconds N] [--no-sweeper] [--hosts 2]\n"
	"  A feed, two strategies and the sweeper on two shared-memory segments;\n"
	"  prints `shm-inspect list`, read latencies and isolation, then cleans up.\n"
	"  --hosts 2: two simulated hosts and a redis-server, one shm-bridge per\n"
	"  host (the Redis tier: invalidation, fleet-wide marks, Redis silent).\n";

/* The demo's options; -1 to go on, else the exit code. */
static int parse_args(int argc, char **argv, uint64_t *seconds, bool *sweeper, int *hosts)
{
	static const struct option longopts[] = {
		{ "seconds", required_argument, NULL, 's' },
		{ "no-sweeper", no_argument, NULL, 'n' },
		{ "hosts", required_argument, NULL, 'H' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int opt;

	while ((opt = getopt_long(argc, argv, "s:nh", longopts, NULL)) != -1) {
		switch (opt) {
		case 's':
			if (!parse_u64(optarg, seconds) || !*seconds || *seconds > 3600) {
				fprintf(stderr, "tc-demo: --seconds wants 1..3600, not '%s'\n%s", optarg,
					usage_text);
				return EX_TC_USAGE;
			}
			break;
		case 'n':
			*sweeper = false;
			break;
		case 'H':
			if (strcmp(optarg, "2") != 0) {
				fprintf(stderr, "tc-demo: --hosts wants 2, not '%s'\n%s", optarg,
					usage_text);
				return EX_TC_USAGE;
			}
			*hosts = 2;
			break;
		case 'h':
			fputs(usage_text, stdout);
			return 0;
		default:
			fputs(usage_text, stderr);
			return EX_TC_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "tc-demo: unexpected argument '%s'\n%s", argv[optind], usage_text);
		return EX_TC_USAGE;
	}
	return -1;
}

/* Two small segments, one per strategy; 0 or the exit code. */
static int create_segments(void)
{
	tc_opts o;
	tc_cache *c;
	int rc;

	memset(&o, 0, sizeof o);
	o.max_entries = 4096;
	o.memory_bytes = 8u << 20;
	o.max_readers = 16;
	o.eviction = TC_EVICT_LRU;
	o.flags = TC_CREATE | TC_EXCL;
	rc = tc_open(&c, seg_ict, &o);
	if (!rc) {
		tc_close(c);
		rc = tc_open(&c, seg_dca, &o);
		if (!rc)
			tc_close(c);
	}
	if (rc) {
		fprintf(stderr, "tc-demo: cannot create the demo segments: %s\n", tc_strerror(rc));
		remove_segments();
		return EX_TC_SEGMENT;
	}
	return 0;
}

/* The processes of the one-host demo. */
struct demo {
	pid_t p_sweep, p_feed, p_ict, p_dca;
};

/* Start the sweeper (unless not wanted), the feed and the two strategies. */
static bool start_demo(struct demo *d, bool sweeper, const char *sweeper_path)
{
	if (sweeper) {
		char *sargv[] = { (char *)sweeper_path, (char *)"--foreground", (char *)"--interval",
				  (char *)"250", (char *)"--log-level", (char *)"warn", seg_ict,
				  seg_dca, NULL };

		if (access(sweeper_path, X_OK)) {
			fprintf(stderr, "tc-demo: %s not found; running without a sweeper\n",
				sweeper_path);
		} else {
			fflush(NULL);
			d->p_sweep = spawn(sargv, false);
			printf("started shm-sweeper (pid %ld)\n", (long)d->p_sweep);
		}
	}
	d->p_feed = fork_child(feed_main);
	/* Pipes after the feed, so that only each strategy holds its write end. */
	if (pipe(ict_fd) || pipe(dca_fd)) {
		perror("tc-demo: pipe");
		return false;
	}
	d->p_ict = fork_child(run_ict);
	d->p_dca = fork_child(run_dca);
	close(ict_fd[1]);
	close(dca_fd[1]);
	printf("started feed (pid %ld), ict (pid %ld), dca (pid %ld); running...\n",
	       (long)d->p_feed, (long)d->p_ict, (long)d->p_dca);
	return true;
}

/* Let the demo run SECONDS; false when one of its processes stopped early. */
static bool run_demo(struct demo *d, uint64_t seconds)
{
	int st;

	for (uint64_t end = mono_ns() + seconds * 1000000000ull; !g_stop && mono_ns() < end;) {
		pid_t w = waitpid(-1, &st, WNOHANG);

		if (w == d->p_feed || w == d->p_ict || w == d->p_dca) {
			fprintf(stderr, "tc-demo: a demo process (pid %ld) stopped early\n", (long)w);
			if (w == d->p_feed)
				d->p_feed = -1;
			if (w == d->p_ict)
				d->p_ict = -1;
			if (w == d->p_dca)
				d->p_dca = -1;
			return false;
		}
		if (w == d->p_sweep)
			d->p_sweep = -1;
		sleep_ms(50);
	}
	return true;
}

/* shm-inspect list of the demo's segments, while they are in use. */
static void show_list(const char *inspect_path)
{
	char glob[32];
	char *largv[] = { (char *)inspect_path, (char *)"list", glob, NULL };
	pid_t p;
	int st;

	/* Only the demo's segments: others on the host are not its business. */
	snprintf(glob, sizeof glob, "demo-*-%ld", (long)parent_pid);
	printf("\n$ shm-inspect list '%s'\n", glob);
	fflush(NULL);
	p = spawn(largv, false);
	while (p > 0 && waitpid(p, &st, 0) < 0 && errno == EINTR)
		;
}

/* Stop every process of the demo and collect the strategies' reports. */
static void stop_demo(struct demo *d, struct report rep[2], bool got[2])
{
	int st;

	/*
	 * The feed first, so that both strategies' last reads see the same
	 * final tick; then the strategies (they report), then the sweeper.
	 */
	stop_child(d->p_feed, &st);
	if (!g_stop)
		sleep_ms(20);
	stop_child(d->p_ict, &st);
	stop_child(d->p_dca, &st);
	if (d->p_ict > 0)
		got[0] = read_report(ict_fd[0], &rep[0]);
	if (d->p_dca > 0)
		got[1] = read_report(dca_fd[0], &rep[1]);
	stop_child(d->p_sweep, &st);
	if (!g_stop)
		collect_totals();
}

/* The strategies' latencies and what they saw; false when one of them failed. */
static bool print_results(const struct report rep[2], const bool got[2])
{
	bool ok = true;

	printf("\nread latency on the strategies' hot path, ns (clock overhead subtracted)\n");
	printf("  %-4s %9s %7s %8s %8s %8s %9s    %8s %8s %8s %9s\n", "", "reads", "hit", "get p50",
	       "p99", "p99.9", "max", "peek p50", "p99", "p99.9", "max");
	for (int i = 0; i < 2; i++)
		if (got[i])
			print_report(&rep[i]);
	printf("\n%s as each strategy saw it: the same tick, each its own regime\n",
	       symbols[SHOW_SYM]);
	for (int i = 0; i < 2; i++) {
		const struct report *r = &rep[i];

		if (!got[i]) {
			printf("  %s: no report\n", i ? "dca" : "ict");
			ok = false;
			continue;
		}
		printf("  %s: tick #%" PRIu64 " last %.2f, regime \"%s\", signal \"%s\"\n",
		       r->strategy, r->seen.seq, r->seen.last, r->regime, r->signal);
		if (r->rc) {
			printf("  %s stopped on an error: %s\n", r->strategy, tc_strerror(r->rc));
			ok = false;
		}
		if (r->foreign || r->bad) {
			printf("  %s saw %" PRIu64 " foreign regimes and %" PRIu64 " bad ticks\n",
			       r->strategy, r->foreign, r->bad);
			ok = false;
		}
	}
	if (got[0] && got[1])
		printf("foreign values seen: %" PRIu64 " (ict) and %" PRIu64
		       " (dca); torn ticks: %" PRIu64 "\n", rep[0].foreign, rep[1].foreign,
		       rep[0].bad + rep[1].bad);
	if (totals_text[0])
		printf("\nsegment totals, read after every process stopped (the list above was taken\n"
		       "while they ran: memory used differs by what was written and reclaimed since;\n"
		       "both count retired blocks still waiting for a grace period)\n%s", totals_text);
	return ok;
}

int main(int argc, char **argv)
{
	uint64_t seconds = 4;
	int hosts = 1;
	bool sweeper = true, started, ok;
	struct demo d = { -1, -1, -1, -1 };
	struct report rep[2];
	bool got[2] = { false, false };
	char sweeper_path[PATH_MAX + 16], inspect_path[PATH_MAX + 16];
	int rc;

	rc = parse_args(argc, argv, &seconds, &sweeper, &hosts);
	if (rc >= 0)
		return rc;
	setvbuf(stdout, NULL, _IOLBF, 0);
	parent_pid = getpid();
	handle_signals();
	find_bindir(argv[0]);
	if (hosts == 2) {
#ifdef TC_HAVE_HIREDIS
		return hosts_demo();
#else
		fprintf(stderr, "tc-demo: --hosts 2 needs hiredis (install libhiredis-dev and rebuild)\n");
		return EX_TC_USAGE;
#endif
	}
	snprintf(sweeper_path, sizeof sweeper_path, "%s/shm-sweeper", bindir);
	snprintf(inspect_path, sizeof inspect_path, "%s/shm-inspect", bindir);
	snprintf(seg_ict, sizeof seg_ict, "demo-ict-%ld", (long)parent_pid);
	snprintf(seg_dca, sizeof seg_dca, "demo-dca-%ld", (long)parent_pid);
	if ((rc = create_segments()))
		return rc;
	printf("tickcache %s demo: feed -> %s, %s (%d symbols); strategies ict and dca; %" PRIu64
	       " s\n", tc_version(), seg_ict, seg_dca, NSYM, seconds);

	started = start_demo(&d, sweeper, sweeper_path);
	ok = started && run_demo(&d, seconds);
	if (started && !g_stop)
		show_list(inspect_path);
	stop_demo(&d, rep, got);
	remove_segments();

	if (g_stop) {
		printf("\ninterrupted: stopped all demo processes, removed %s and %s\n", seg_ict,
		       seg_dca);
		return 130;
	}
	ok = print_results(rep, got) && ok;
	printf("\nstopped feed, strategies and sweeper; removed %s and %s\n", seg_ict, seg_dca);
	return ok ? 0 : 1;
}
