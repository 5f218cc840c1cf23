/* SPDX-License-Identifier: MIT */
/*
 * b2b.c - shm-bench --back-to-back (issue 11): reads issued the way a
 * strategy's tick issues them, one after the other with no timer between
 * them, tickcache beside the in-process array and liburcu's rculfhash in
 * one process; set latency beside the array's; and tc_get_many of N keys
 * against N tc_get calls for N = 1, 2, 4 ... 64.
 *
 * Why no timer per get: the other modes bracket every operation with a
 * pair of serialising counter reads (rdtscp + lfence), which keeps the CPU
 * from running ahead into the next get while the current one waits for
 * memory, so the cache misses of consecutive gets never overlap.  Here a
 * pass walks a list of random keys (chosen and formatted before the pass,
 * the same list for every backend) calling get after get, and reads
 * CLOCK_MONOTONIC once before and once after: the pass's time over its
 * keys is the time per get, misses overlapped as far as the code lets
 * them.  Every get must hit (all keys are loaded): a miss or an error fails
 * the run.
 *
 * Noise: these hosts are shared and busy, so a pass is often descheduled
 * for milliseconds.  Its time is therefore taken on the CPU
 * (CLOCK_THREAD_CPUTIME_ID around the pass, a few hundred ns for a pass of
 * tens of milliseconds) and its wall time (CLOCK_MONOTONIC) reported beside
 * it: where the two differ, the pass waited for a CPU.  The passes of the
 * backends alternate within each round (the order rotating from round to
 * round), so what the neighbours do to the caches hits them alike.  Each
 * figure is the median over the rounds; each ratio is the median of the
 * rounds' ratios, the two sides of a ratio measured in the same round, a
 * few milliseconds apart.  In the batch section each timed pass follows an
 * untimed one over the same keys of the same table (run_batches says why).
 *
 * Sets are timed one by one (their p50 is what issue 11 compares), with
 * the timer's overhead taken off as in the other modes; the rounds of the
 * backends alternate the same way, and their distributions are merged.
 *
 * Sections of the output (CSV columns: label, section, what, batch, count
 * (keys per pass), rounds, ns_per_op (on the CPU), ops_per_s (per on-CPU
 * second), wall_ns_per_op, p50_ns, p99_ns, ratio, ratio_to):
 *   get    gets back to back per backend; ratio: gets/s over the array's
 *   set    overwrites of random keys, timed each (ns_per_op: their mean);
 *          ratio: p50 over the array's
 *   batch  per batch size N: a loop of N tc_get, tc_get_many of N keys, and
 *          the array's loop of N gets; ns per key; ratio: the time over
 *          that of the tc_get loop
 */
#include <signal.h>

#include "bench.h"

#define B2B_MAXBATCH 64
#define B2B_MAXROUNDS 101

static const unsigned batch_sizes[] = { 1, 2, 4, 8, 16, 32, 64 };
#define NBATCH (sizeof(batch_sizes) / sizeof(batch_sizes[0]))

enum { S_ARRAY, S_RCU, S_TC, NSIDE };

struct side {
	const struct backend *be;
	void *st;
};

/* The key list of a pass: KEY_LEN-byte keys padded to 16, and their indices. */
struct keylist {
	char (*k)[16];
	uint64_t *idx;
	size_t n;
};

static volatile uint64_t b2b_sink;

static uint64_t thread_cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp_dbl(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median(double *v, unsigned n)
{
	qsort(v, n, sizeof(*v), cmp_dbl);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* A pass's figures: on-CPU and wall ns per key. */
struct pass {
	double ns, wall_ns;
};

/* Unlink the segment this mode created (tcb_teardown: none, nothing). */
static void cleanup(void)
{
	be_tickcache.teardown();
}

static void fail_read(const char *what, int rc)
{
	cleanup();
	die("--back-to-back: %s: %s (%d)", what, rc < 0 ? tc_strerror(rc) : "a loaded key missed",
	    rc);
}

/* One pass of gets over KL through the backend table. */
static struct pass pass_get(const struct side *s, const struct keylist *kl, unsigned char *buf,
			    size_t cap)
{
	uint64_t t0, c0, hits = 0;
	size_t len = 0;
	int rc = 0;

	c0 = thread_cpu_ns();
	t0 = clock_ns();
	for (size_t i = 0; i < kl->n; i++) {
		rc = s->be->get(s->st, kl->k[i], KEY_LEN, buf, cap, &len);
		hits += rc == 0;
	}
	uint64_t t1 = clock_ns(), c1 = thread_cpu_ns();

	if (hits != kl->n)
		fail_read(s->be->name, rc);
	b2b_sink += len;
	return (struct pass){ (double)(c1 - c0) / (double)kl->n, (double)(t1 - t0) / (double)kl->n };
}

/* One pass over KL in groups of N keys: tc_get_many (MANY) or N tc_get
 * calls, each value to its own slot of BUF (N slots of CAP bytes). */
static struct pass pass_tc_batch(tc_cache *c, const struct keylist *kl, unsigned n, bool many,
				 unsigned char *buf, size_t cap)
{
	tc_req reqs[B2B_MAXBATCH];
	size_t groups = kl->n / n, hits = 0;
	uint64_t t0, c0;
	int rc = 0;

	c0 = thread_cpu_ns();
	t0 = clock_ns();
	for (size_t g = 0; g < groups; g++) {
		const size_t base = g * n;

		if (many) {
			for (unsigned j = 0; j < n; j++)
				reqs[j] = (tc_req){ .key = kl->k[base + j], .klen = KEY_LEN,
						    .buf = buf + (size_t)j * cap, .cap = cap };
			rc = tc_get_many(c, reqs, n);
			if (rc > 0)
				hits += (size_t)rc;
		} else {
			for (unsigned j = 0; j < n; j++) {
				tc_meta m;

				rc = tc_get(c, kl->k[base + j], KEY_LEN, buf + (size_t)j * cap, cap, &m);
				hits += rc == 0;
			}
		}
	}
	uint64_t t1 = clock_ns(), c1 = thread_cpu_ns();
	double keys = (double)(groups * n);

	if (hits != groups * n)
		fail_read(many ? "tc_get_many" : "tc_get", rc);
	return (struct pass){ (double)(c1 - c0) / keys, (double)(t1 - t0) / keys };
}

/* The array's loop of N gets per group, as pass_tc_batch's loop. */
static struct pass pass_arr_batch(const struct side *s, const struct keylist *kl, unsigned n,
				  unsigned char *buf, size_t cap)
{
	size_t groups = kl->n / n, hits = 0, len = 0;
	uint64_t t0, c0;
	int rc = 0;

	c0 = thread_cpu_ns();
	t0 = clock_ns();
	for (size_t g = 0; g < groups; g++)
		for (unsigned j = 0; j < n; j++) {
			rc = s->be->get(s->st, kl->k[g * n + j], KEY_LEN, buf + (size_t)j * cap, cap,
					&len);
			hits += rc == 0;
		}
	uint64_t t1 = clock_ns(), c1 = thread_cpu_ns();
	double keys = (double)(groups * n);

	if (hits != groups * n)
		fail_read(s->be->name, rc);
	return (struct pass){ (double)(c1 - c0) / keys, (double)(t1 - t0) / keys };
}

/* COUNT sets of the keys of KL from FROM on, each timed, into H. */
static void pass_set(const struct side *s, const struct keylist *kl, size_t from, size_t count,
		     unsigned char *val, uint64_t *seq, struct hist *h)
{
	for (size_t i = 0; i < count; i++) {
		size_t j = (from + i) % kl->n;

		make_value(val, kl->idx[j], (++*seq << 8) | 1, false);
		uint64_t t0 = now_ticks();
		int rc = s->be->set(s->st, kl->k[j], KEY_LEN, val, cfg.vsize);
		uint64_t t1 = now_ticks();

		if (rc < 0)
			fail_read(s->be->name, rc);
		hist_add(h, t1 - t0);
	}
}

static void fill_keys(struct keylist *kl, uint64_t *rs)
{
	for (size_t i = 0; i < kl->n; i++) {
		char k[KEY_LEN + 1];

		kl->idx[i] = next_key(rs);
		fmt_key(k, 'k', kl->idx[i]);
		memset(kl->k[i], 0, sizeof(kl->k[i]));
		memcpy(kl->k[i], k, KEY_LEN);
	}
}

/* One output row. */
struct b2b_row {
	const char *section, *what, *ratio_to;
	unsigned batch;
	double ns, wall_ns, p50, p99, ratio;   /* wall_ns, p50, p99, ratio < 0: none */
};

static void print_row(const struct b2b_row *r, size_t count, unsigned rounds, bool first)
{
	const char *label = cfg.label[0] ? cfg.label : "b2b";
	const char *to = r->ratio >= 0 ? r->ratio_to : "";
	char wall[32] = "", p50[32] = "", p99[32] = "", ratio[32] = "";
	double per_s = r->ns > 0 ? 1e9 / r->ns : 0.0;

	if (r->wall_ns >= 0)
		snprintf(wall, sizeof(wall), "%.2f", r->wall_ns);
	if (r->p50 >= 0)
		snprintf(p50, sizeof(p50), "%.1f", r->p50);
	if (r->p99 >= 0)
		snprintf(p99, sizeof(p99), "%.1f", r->p99);
	if (r->ratio >= 0)
		snprintf(ratio, sizeof(ratio), "%.3f", r->ratio);
	if (cfg.out == OUT_CSV) {
		if (first && cfg.csv_header)
			printf("label,section,what,batch,count,rounds,ns_per_op,ops_per_s,"
			       "wall_ns_per_op,p50_ns,p99_ns,ratio,ratio_to\n");
		printf("%s,%s,%s,%u,%zu,%u,%.2f,%.0f,%s,%s,%s,%s,%s\n", label, r->section, r->what,
		       r->batch, count, rounds, r->ns, per_s, wall, p50, p99, ratio, to);
	} else if (cfg.out == OUT_JSON) {
		printf("%s{\"label\":\"%s\",\"section\":\"%s\",\"what\":\"%s\",\"batch\":%u,"
		       "\"count\":%zu,\"rounds\":%u,\"ns_per_op\":%.2f,\"ops_per_s\":%.0f,"
		       "\"wall_ns_per_op\":%s,\"p50_ns\":%s,\"p99_ns\":%s,\"ratio\":%s,"
		       "\"ratio_to\":\"%s\"}", first ? "[" : ",", label, r->section, r->what,
		       r->batch, count, rounds, r->ns, per_s, wall[0] ? wall : "null",
		       p50[0] ? p50 : "null", p99[0] ? p99 : "null", ratio[0] ? ratio : "null", to);
	} else {
		if (first)
			printf("%-6s %-12s %5s %10s %12s %10s %8s %8s %7s  %s\n", "", "", "batch",
			       "ns/op", "ops/s", "wall ns", "p50", "p99", "ratio", "to");
		printf("%-6s %-12s %5u %10.1f %12.0f %10s %8s %8s %7s  %s\n", r->section, r->what,
		       r->batch, r->ns, per_s, wall[0] ? wall : "-", p50[0] ? p50 : "-",
		       p99[0] ? p99 : "-", ratio[0] ? ratio : "-", to);
	}
}

static void attach_side(struct side *s, const struct backend *be)
{
	char err[256] = "";

	s->be = be;
	s->st = be->attach(err, sizeof(err));
	if (!s->st) {
		cleanup();
		die("%s", err);
	}
	if (!be->shared) {
		int rc = preload(be, s->st, err, sizeof(err));

		if (rc) {
			cleanup();
			die("%s", err);
		}
	}
}

/* The rounds of the get section; fills ROWS[0..NSIDE). */
static void run_gets(struct side *sd, const struct keylist *kl, unsigned rounds,
		     unsigned char *buf, size_t cap, struct b2b_row *rows)
{
	double ns[NSIDE][B2B_MAXROUNDS], wall[NSIDE][B2B_MAXROUNDS], rat[NSIDE][B2B_MAXROUNDS];

	for (unsigned r = 0; r < rounds; r++) {
		struct pass p[NSIDE];

		for (unsigned i = 0; i < NSIDE; i++) {
			unsigned s = (r + i) % NSIDE;

			p[s] = pass_get(&sd[s], kl, buf, cap);
			ns[s][r] = p[s].ns;
			wall[s][r] = p[s].wall_ns;
		}
		for (unsigned s = 0; s < NSIDE; s++)
			rat[s][r] = p[S_ARRAY].ns / p[s].ns;   /* gets/s over the array's */
	}
	for (unsigned s = 0; s < NSIDE; s++)
		rows[s] = (struct b2b_row){ "get", sd[s].be->name, "array", 1, median(ns[s], rounds),
					    median(wall[s], rounds), -1, -1,
					    median(rat[s], rounds) };
}

/* The rounds of the set section (COUNT sets per backend and round). */
static void run_sets(struct side *sd, const struct keylist *kl, unsigned rounds, size_t count,
		     unsigned char *val, struct b2b_row *rows)
{
	static struct hist h[NSIDE];
	uint64_t seq = 1;

	memset(h, 0, sizeof(h));
	for (unsigned r = 0; r < rounds; r++)
		for (unsigned i = 0; i < NSIDE; i++) {
			unsigned s = (r + i) % NSIDE;

			pass_set(&sd[s], kl, (size_t)r * count, count, val, &seq, &h[s]);
		}
	double a50 = rep_ns(hist_quantile(&h[S_ARRAY], 0.5));

	for (unsigned s = 0; s < NSIDE; s++) {
		double p50 = rep_ns(hist_quantile(&h[s], 0.5));
		double mean = h[s].count ? rep_ns(h[s].sum / (double)h[s].count) : 0;

		rows[s] = (struct b2b_row){ "set", sd[s].be->name, "array", 1, mean, -1, p50,
					    rep_ns(hist_quantile(&h[s], 0.99)),
					    a50 > 0 ? p50 / a50 : -1 };
	}
}

/*
 * The rounds of the batch section: per size, tc_get loop, tc_get_many and
 * the array's loop; fills 3 * NBATCH rows.
 *
 * Each timed pass starts from the same state as its rival: right after an
 * untimed pass over the same keys of the same table (for both tickcache
 * passes, the same loop of N tc_get; for the array, its own loop).  A
 * tickcache pass that follows the array's instead runs 1.4-2 times slower,
 * its first quarter most (the lines the array's pass displaced come back
 * as the pass first touches them; docs/bench-notes.md), so an order that
 * put one rival after the array more often than the other would measure
 * the order, not the code.  The order of the three still rotates with the
 * round and the size.
 */
static void run_batches(struct side *sd, const struct keylist *kl, unsigned rounds,
			unsigned char *mbuf, size_t cap, struct b2b_row *rows)
{
	static double ns[NBATCH][3][B2B_MAXROUNDS], wall[NBATCH][3][B2B_MAXROUNDS],
		rat[NBATCH][3][B2B_MAXROUNDS];
	static const char *const what[3] = { "tc_get", "tc_get_many", "array" };

	for (unsigned r = 0; r < rounds; r++)
		for (unsigned b = 0; b < NBATCH; b++) {
			const unsigned n = batch_sizes[b];
			struct pass p[3];

			for (unsigned i = 0; i < 3; i++) {
				unsigned v = (r + b + i) % 3;

				if (v == 2) {
					(void)pass_arr_batch(&sd[S_ARRAY], kl, n, mbuf, cap);
					p[v] = pass_arr_batch(&sd[S_ARRAY], kl, n, mbuf, cap);
				} else {
					(void)pass_tc_batch(sd[S_TC].st, kl, n, false, mbuf, cap);
					p[v] = pass_tc_batch(sd[S_TC].st, kl, n, v == 1, mbuf, cap);
				}
				ns[b][v][r] = p[v].ns;
				wall[b][v][r] = p[v].wall_ns;
			}
			for (unsigned v = 0; v < 3; v++)
				rat[b][v][r] = p[v].ns / p[0].ns;
		}
	for (unsigned b = 0; b < NBATCH; b++)
		for (unsigned v = 0; v < 3; v++)
			rows[b * 3 + v] = (struct b2b_row){ "batch", what[v], "tc_get", batch_sizes[b],
							    median(ns[b][v], rounds),
							    median(wall[b][v], rounds), -1, -1,
							    median(rat[b][v], rounds) };
}

/* shm-bench --back-to-back: the exit code. */
int b2b_main(void)
{
	const unsigned rounds = cfg.rounds;
	const size_t cap = cfg.vsize + 64;
	struct keylist kl = { .n = cfg.ops };
	struct side sd[NSIDE];
	struct b2b_row rows[2 * NSIDE + 3 * NBATCH];
	uint64_t rs = 0x5EED0B2Bull ^ ((uint64_t)getpid() << 20);
	unsigned char *buf, *mbuf, *val;

	if (rounds < 1 || rounds > B2B_MAXROUNDS)
		die("--rounds must be 1..%d", B2B_MAXROUNDS);
	if (kl.n < B2B_MAXBATCH || kl.n > (1u << 24))
		die("--back-to-back wants -n %d..16M keys per pass", B2B_MAXBATCH);
	kl.k = malloc(kl.n * sizeof(*kl.k));
	kl.idx = malloc(kl.n * sizeof(*kl.idx));
	buf = aligned_alloc(64, round_up(cap, 64));
	mbuf = aligned_alloc(64, round_up(B2B_MAXBATCH * cap, 64));
	val = aligned_alloc(64, round_up(cap, 64));
	if (!kl.k || !kl.idx || !buf || !mbuf || !val)
		die("--back-to-back: out of memory");
	memset(val, 0, cap);
	fill_keys(&kl, &rs);

	/* tickcache's segment first, so that a signal from here on unlinks it. */
	active = &be_tickcache;
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	char err[256] = "";

	if (be_tickcache.setup(err, sizeof(err)) != 0)
		die("%s", err);
	attach_side(&sd[S_TC], &be_tickcache);
	int rc = preload(&be_tickcache, sd[S_TC].st, err, sizeof(err));

	if (rc) {
		cleanup();
		die("%s", err);
	}
	attach_side(&sd[S_ARRAY], &be_array);
	attach_side(&sd[S_RCU], &be_rculfhash);

	/* Warm-up: one pass of each, untimed. */
	for (unsigned s = 0; s < NSIDE; s++)
		(void)pass_get(&sd[s], &kl, buf, cap);

	run_gets(sd, &kl, rounds, buf, cap, rows);
	run_sets(sd, &kl, rounds, kl.n / 4, val, rows + NSIDE);
	run_batches(sd, &kl, rounds, mbuf, cap, rows + 2 * NSIDE);

	for (unsigned s = 0; s < NSIDE; s++)
		sd[s].be->detach(sd[s].st);
	cleanup();
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		print_row(&rows[i], rows[i].section[0] == 's' ? kl.n / 4 : kl.n, rounds, i == 0);
	if (cfg.out == OUT_JSON)
		printf("]\n");
	free(kl.k);
	free(kl.idx);
	free(buf);
	free(mbuf);
	free(val);
	return 0;
}
