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

static const char usage_text[] =
	"usage: tc-demo [--seconds N] [--no-sweeper]\n"
	"  A feed, two strategies and the sweeper on two shared-memory segments;\n"
	"  prints `shm-inspect list`, read latencies and isolation, then cleans up.\n";

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "seconds", required_argument, NULL, 's' },
		{ "no-sweeper", no_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	uint64_t seconds = 4;
	bool sweeper = true, ok = true;
	pid_t p_sweep = -1, p_feed = -1, p_ict = -1, p_dca = -1;
	struct report rep[2];
	bool got[2] = { false, false };
	char sweeper_path[PATH_MAX + 16], inspect_path[PATH_MAX + 16];
	tc_opts o;
	tc_cache *c;
	int opt, rc, st;

	while ((opt = getopt_long(argc, argv, "s:nh", longopts, NULL)) != -1) {
		switch (opt) {
		case 's':
			if (!parse_u64(optarg, &seconds) || !seconds || seconds > 3600) {
				fprintf(stderr, "tc-demo: --seconds wants 1..3600, not '%s'\n%s", optarg,
					usage_text);
				return EX_TC_USAGE;
			}
			break;
		case 'n':
			sweeper = false;
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
	setvbuf(stdout, NULL, _IOLBF, 0);
	parent_pid = getpid();
	handle_signals();
	find_bindir(argv[0]);
	snprintf(sweeper_path, sizeof sweeper_path, "%s/shm-sweeper", bindir);
	snprintf(inspect_path, sizeof inspect_path, "%s/shm-inspect", bindir);
	snprintf(seg_ict, sizeof seg_ict, "demo-ict-%ld", (long)parent_pid);
	snprintf(seg_dca, sizeof seg_dca, "demo-dca-%ld", (long)parent_pid);

	/* Two small segments, one per strategy. */
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
	printf("tickcache %s demo: feed -> %s, %s (%d symbols); strategies ict and dca; %" PRIu64
	       " s\n", tc_version(), seg_ict, seg_dca, NSYM, seconds);

	if (sweeper) {
		char *sargv[] = { sweeper_path, (char *)"--foreground", (char *)"--interval",
				  (char *)"250", (char *)"--log-level", (char *)"warn", seg_ict,
				  seg_dca, NULL };

		if (access(sweeper_path, X_OK)) {
			fprintf(stderr, "tc-demo: %s not found; running without a sweeper\n",
				sweeper_path);
		} else {
			fflush(NULL);
			p_sweep = spawn(sargv, false);
			printf("started shm-sweeper (pid %ld)\n", (long)p_sweep);
		}
	}
	p_feed = fork_child(feed_main);
	/* Pipes after the feed, so that only each strategy holds its write end. */
	if (pipe(ict_fd) || pipe(dca_fd)) {
		perror("tc-demo: pipe");
		ok = false;
		goto out_stop;
	}
	p_ict = fork_child(run_ict);
	p_dca = fork_child(run_dca);
	close(ict_fd[1]);
	close(dca_fd[1]);
	printf("started feed (pid %ld), ict (pid %ld), dca (pid %ld); running...\n", (long)p_feed,
	       (long)p_ict, (long)p_dca);

	for (uint64_t end = mono_ns() + seconds * 1000000000ull; !g_stop && mono_ns() < end;) {
		pid_t w = waitpid(-1, &st, WNOHANG);

		if (w == p_feed || w == p_ict || w == p_dca) {
			fprintf(stderr, "tc-demo: a demo process (pid %ld) stopped early\n", (long)w);
			if (w == p_feed)
				p_feed = -1;
			if (w == p_ict)
				p_ict = -1;
			if (w == p_dca)
				p_dca = -1;
			ok = false;
			break;
		}
		if (w == p_sweep)
			p_sweep = -1;
		sleep_ms(50);
	}
	if (!g_stop) {
		char glob[32];
		char *largv[] = { inspect_path, (char *)"list", glob, NULL };
		pid_t p;

		/* Only the demo's segments: others on the host are not its business. */
		snprintf(glob, sizeof glob, "demo-*-%ld", (long)parent_pid);
		printf("\n$ shm-inspect list '%s'\n", glob);
		fflush(NULL);
		p = spawn(largv, false);
		while (p > 0 && waitpid(p, &st, 0) < 0 && errno == EINTR)
			;
	}

out_stop:
	/*
	 * The feed first, so that both strategies' last reads see the same
	 * final tick; then the strategies (they report), then the sweeper.
	 */
	stop_child(p_feed, &st);
	if (!g_stop)
		sleep_ms(20);
	stop_child(p_ict, &st);
	stop_child(p_dca, &st);
	if (p_ict > 0)
		got[0] = read_report(ict_fd[0], &rep[0]);
	if (p_dca > 0)
		got[1] = read_report(dca_fd[0], &rep[1]);
	stop_child(p_sweep, &st);
	if (!g_stop)
		collect_totals();
	remove_segments();

	if (g_stop) {
		printf("\ninterrupted: stopped all demo processes, removed %s and %s\n", seg_ict,
		       seg_dca);
		return 130;
	}
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
	printf("\nstopped feed, strategies and sweeper; removed %s and %s\n", seg_ict, seg_dca);
	return ok ? 0 : 1;
}
