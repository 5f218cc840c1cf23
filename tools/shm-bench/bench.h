/* SPDX-License-Identifier: MIT */
/*
 * shm-bench - per-operation latency of tickcache and of its peers, measured
 * across processes on one host.
 *
 * The parent creates and preloads the store, forks N reader and M writer
 * processes (optionally pinned to CPUs), releases them at once through a flag
 * in a shared mapping, and merges what they report back through the same
 * mapping.  Each process times every operation with a pair of serialising
 * cycle-counter reads (rdtscp + lfence, calibrated against CLOCK_MONOTONIC;
 * clock_gettime where no invariant TSC exists) and records the ticks in a
 * log-linear histogram in the style of HdrHistogram: 2^HB_SUB linear
 * sub-buckets per power of two, so every recorded value is known to within
 * 1/2^(HB_SUB-1) of itself (0.8 %) from 1 tick to 2^64.
 *
 * Validating mode: every value starts with a header carrying its key index,
 * a version (writer sequence and writer id) and a checksum over the whole
 * value.  Readers classify every read: torn (checksum or length wrong),
 * foreign (a whole value of another key), falsely missing (absent although
 * the run guarantees every key stays present: no eviction, no deletes).
 *
 * Backends (each compiled when its library is there):
 *   tickcache   tc_get copy-out, tc_peek zero-copy, tc_set, tc_add
 *   redis-unix, redis-tcp   hiredis (TC_HAVE_HIREDIS)
 *   memcached   libmemcached over TCP loopback (TC_HAVE_MEMCACHED)
 *   array       in-process open addressing: the memory-latency floor
 *   rculfhash   liburcu's RCU lock-free hash table, memb flavour
 *   mutexshm    the usual shared-memory cache: one process-shared mutex for
 *               writers, values overwritten in place, eviction of a whole
 *               memory stripe under the lock, readers without any lock (as
 *               libshmcache-style caches do).  A reference for what
 *               tickcache replaces: it shows torn and foreign reads.
 * In-process backends (array, rculfhash) are built by every process after
 *
 * The files of tools/shm-bench/:
 *   bench.h         what they share: the configuration, the backend ops table,
 *                   the process results, and the helpers of the timed loop
 *                   (clock reads, histogram recording, key choice), inline
 *   main.c          options and their checks, the run
 *   runner.c        preload, the forked processes and their timed loops
 *   report.c        human table, CSV, JSON, percentile file
 *   timer.c         clock calibration and the timer's overhead
 *   hist.c          the histogram's merge and quantiles
 *   workload.c      Zipf keys and the self-checking values
 *   backends.c      the backend table; be_<name>.c one backend each
 *   wake.c          --wake: wake-up latency of tc_wait / tc_wait_any across
 *                   processes, beside a bare futex and Redis pub/sub
 *   b2b.c           --back-to-back: gets with no timer in the loop, tickcache
 *                   beside array and rculfhash in one process; set p50 beside
 *                   the array's; tc_get_many of N keys against N tc_get
 */
#ifndef TC_SHM_BENCH_H
#define TC_SHM_BENCH_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
#define HAVE_RDTSCP 1
#else
#define HAVE_RDTSCP 0
#endif

#include "tickcache.h"

#define MAX_PROCS   64
#define KEY_LEN     14          /* 'k' ':' and 12 hex digits */
#define VHDR_SIZE   32          /* validation header at the start of a value */

/* ------------------------------------------------------------------ */
/* Configuration (main.c)                                               */
/* ------------------------------------------------------------------ */

enum op_kind { OP_GET, OP_PEEK, OP_SET, OP_ADD, OP_MGET, OP_NKIND };
extern const char *const op_names[OP_NKIND];

enum dist_kind { DIST_UNIFORM, DIST_ZIPF, DIST_HOT };
extern const char *const dist_names[];

enum out_fmt { OUT_HUMAN, OUT_CSV, OUT_JSON };

struct cfg {
	const char *backend;
	const char *label;
	enum op_kind read_op;   /* op of reader processes: get, peek or mget */
	enum op_kind write_op;  /* op of writers (and of readers' write share): set or add */
	uint64_t keys;
	size_t   vsize;
	unsigned write_pct;     /* share of writes in reader processes, percent */
	enum dist_kind dist;
	double   zipf_s;
	uint64_t hot_keys;
	int      readers, writers;
	uint64_t ops;           /* per reader (per writer when there are no readers) */
	double   duration;      /* seconds, instead of ops */
	uint64_t warmup;
	unsigned batch;         /* reads timed in groups of this many (1 = each) */
	double   rate;          /* writer ops/s per writer, 0 = as fast as possible */
	bool     pin, validate, subtract, force_clock, csv_header;
	enum out_fmt out;
	bool     per_proc;      /* print per-process rows in the human table */
	/* store geometry */
	uint64_t entries;       /* tickcache max_entries / mutexshm entries; 0 = auto */
	uint64_t memory;        /* tickcache / mutexshm arena bytes; 0 = auto (all keys fit) */
	bool     evict;
	bool     checksum;   /* tickcache: TC_CHECKSUM */
	bool     no_preload;
	/* peers */
	const char *redis_sock, *redis_host, *mc_host;
	int      redis_port, mc_port;
	char     seg[80];
	/* --wake (wake.c) */
	bool     wake;
	unsigned gap_us;        /* between the waiter's report and the next write */
	/* --back-to-back (b2b.c) */
	bool     back_to_back;
	unsigned rounds;        /* rounds of each section (default 5) */
};

extern struct cfg cfg;

/* wake.c: shm-bench --wake (wake-up latency across processes); the exit code. */
int wake_main(void);

/* b2b.c: shm-bench --back-to-back (untimed gets side by side, tc_get_many
 * against tc_get); the exit code. */
int b2b_main(void);

/* "shm-bench: MESSAGE" on stderr, exit 2. */
void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* ------------------------------------------------------------------ */
/* Timer (timer.c)                                                      */
/* ------------------------------------------------------------------ */

extern bool use_tsc;
extern double ns_per_tick;
extern double timer_ovh_ticks;     /* median of an empty timed region */
extern double timer_ovh_min_ticks;
extern uint64_t timer_res_ticks;   /* the counter's step: gcd of observed deltas */

void timer_init(void);
uint64_t cpu_time_ns(void);

static inline uint64_t clock_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/*
 * rdtscp waits until every earlier instruction has executed; the lfence
 * after it keeps later ones from starting before the counter is read.  So
 * the pair brackets exactly the instructions between them.
 */
static inline uint64_t now_ticks(void)
{
#if HAVE_RDTSCP
	if (use_tsc) {
		unsigned aux;
		uint64_t t = __rdtscp(&aux);

		_mm_lfence();
		return t;
	}
#endif
	return clock_ns();
}

/* ------------------------------------------------------------------ */
/* Log-linear histogram (hist.c)                                        */
/* ------------------------------------------------------------------ */

#define HB_SUB   8                                   /* bits of linear resolution */
#define HB_HALF  (1u << (HB_SUB - 1))
#define HB_N     ((64 - HB_SUB + 1) * HB_HALF + HB_HALF)

struct hist {
	uint64_t count, min, max;
	double   sum;
	uint64_t b[HB_N];
};

static inline unsigned hb_index(uint64_t v)
{
	if (v < (1u << HB_SUB))
		return (unsigned)v;
	unsigned msb = 63u - (unsigned)__builtin_clzll(v);
	unsigned g = msb - (HB_SUB - 1);

	return g * HB_HALF + (unsigned)(v >> g);
}


static inline void hist_add(struct hist *h, uint64_t v)
{
	h->b[hb_index(v)]++;
	if (h->count == 0 || v < h->min)
		h->min = v;
	if (v > h->max)
		h->max = v;
	h->count++;
	h->sum += (double)v;
}

/* N operations whose mean was V (batch timing). */
static inline void hist_add_n(struct hist *h, uint64_t v, uint64_t n)
{
	h->b[hb_index(v)] += n;
	if (h->count == 0 || v < h->min)
		h->min = v;
	if (v > h->max)
		h->max = v;
	h->count += n;
	h->sum += (double)v * (double)n;
}

void hb_bounds(unsigned i, uint64_t *lo, uint64_t *width);
void hist_merge(struct hist *dst, const struct hist *src);
double hist_quantile(const struct hist *h, double q);
double rep_ns(double ticks);

/* ------------------------------------------------------------------ */
/* Keys, values, random numbers (workload.c)                            */
/* ------------------------------------------------------------------ */

static inline uint64_t rng_next(uint64_t *s)
{
	/* splitmix64 */
	uint64_t z = (*s += 0x9E3779B97F4A7C15ull);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

static inline double rng_unit(uint64_t *s)
{
	return (double)(rng_next(s) >> 11) * (1.0 / 9007199254740992.0);
}

static inline uint64_t rng_below(uint64_t *s, uint64_t n)
{
	return (uint64_t)(((unsigned __int128)rng_next(s) * n) >> 64);
}

/* Zipf over ranks 0..n-1 by Gray et al., "Quickly generating billion-record
 * synthetic databases" (SIGMOD 1994), as YCSB does; ranks are then spread
 * over the key space by a multiplicative bijection so hot keys are not
 * neighbours in any table. */
extern struct zipf {
	double zetan, theta, alpha, eta, half_pow;
	uint64_t n, mult;
} zipf;

void zipf_init(uint64_t n, double s);

static inline uint64_t zipf_next(uint64_t *rs)
{
	double u = rng_unit(rs), uz = u * zipf.zetan;
	uint64_t rank;

	if (uz < 1.0)
		rank = 0;
	else if (uz < zipf.half_pow)
		rank = 1;
	else
		rank = (uint64_t)((double)zipf.n * pow(zipf.eta * u - zipf.eta + 1.0, zipf.alpha));
	if (rank >= zipf.n)
		rank = zipf.n - 1;
	return (rank * zipf.mult) % zipf.n;
}

static inline uint64_t next_key(uint64_t *rs)
{
	switch (cfg.dist) {
	case DIST_ZIPF:
		return zipf_next(rs);
	case DIST_HOT:
		return cfg.hot_keys == 1 ? 0 : rng_below(rs, cfg.hot_keys);
	default:
		return rng_below(rs, cfg.keys);
	}
}


/* KEY_LEN bytes: PREFIX ':' and 12 hex digits of IDX. */
static inline void fmt_key(char *k, char prefix, uint64_t idx)
{
	k[0] = prefix;
	k[1] = ':';
	for (int i = 13; i >= 2; i--) {
		k[i] = "0123456789abcdef"[idx & 15];
		idx >>= 4;
	}
	k[KEY_LEN] = 0;
}

struct vhdr {
	uint64_t key;      /* key index */
	uint64_t version;  /* writer sequence << 8 | writer id */
	uint32_t len;      /* whole value length */
	uint32_t magic;
	uint64_t sum;      /* checksum of the value with this field zero */
};
_Static_assert(sizeof(struct vhdr) == VHDR_SIZE, "vhdr");
#define VMAGIC 0x7CB3A11Eu

static inline uint64_t mix64(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ull;
	h ^= h >> 33;
	return h;
}

/* Word-at-a-time hash (tables of the in-process and mutex backends). */
static inline uint64_t hash_bytes(const void *p, size_t n)
{
	const unsigned char *s = p;
	uint64_t h = 0x2545F4914F6CDD1Dull ^ n;

	while (n >= 8) {
		uint64_t w;

		memcpy(&w, s, 8);
		h = (h ^ w) * 0x9E3779B97F4A7C15ull;
		h = (h << 29) | (h >> 35);
		s += 8;
		n -= 8;
	}
	if (n) {
		uint64_t w = 0;

		memcpy(&w, s, n);
		h = (h ^ w) * 0x9E3779B97F4A7C15ull;
	}
	return mix64(h);
}

enum vcheck { V_OK, V_TORN, V_FOREIGN };

void make_value(unsigned char *v, uint64_t idx, uint64_t version, bool full);
enum vcheck check_value(const unsigned char *v, size_t len, uint64_t idx);

/* ------------------------------------------------------------------ */
/* Backends (backends.c, be_*.c)                                        */
/* ------------------------------------------------------------------ */

/*
 * get/peek: 0 hit, 1 miss, < 0 error.  add: 0 stored, 1 exists.  set, del:
 * 0 or < 0 (del: 1 when absent).  peek enters a read section on rc >= 0;
 * peek_end leaves it.  attach runs in every process; setup and teardown in
 * the parent only, for stores shared by all processes.
 */
struct backend {
	const char *name;
	const char *about;
	unsigned ops;              /* 1 << op_kind supported */
	bool shared;               /* one store seen by every process */
	int  (*setup)(char *err, size_t len);
	void (*teardown)(void);
	void *(*attach)(char *err, size_t len);
	void (*detach)(void *st);
	int  (*get)(void *st, const char *k, size_t kl, void *buf, size_t cap, size_t *len);
	int  (*peek)(void *st, const char *k, size_t kl, const void **val, size_t *len);
	void (*peek_end)(void *st);
	int  (*set)(void *st, const char *k, size_t kl, const void *v, size_t vl);
	int  (*add)(void *st, const char *k, size_t kl, const void *v, size_t vl);
	int  (*del)(void *st, const char *k, size_t kl);
	int  (*load)(void *st, char *err, size_t len);   /* bulk preload, optional */
	bool (*may_drop)(void);    /* may a present key vanish during the run? */
	/* OP_MGET, optional: read the N keys KEYS (KL bytes each) in one call
	 * into BUF (N slots of CAP bytes); counts hits and misses; 0 or a
	 * negative code. */
	int  (*get_many)(void *st, const char (*keys)[KEY_LEN + 1], size_t kl, unsigned n,
			 unsigned char *buf, size_t cap, unsigned *hits, unsigned *misses);
};

#define OPBIT(o) (1u << (o))

static inline size_t round_up(size_t v, size_t a)
{
	return (v + a - 1) / a * a;
}

static inline uint64_t pow2_at_least(uint64_t v)
{
	uint64_t p = 1;

	while (p < v)
		p <<= 1;
	return p;
}


extern const struct backend be_tickcache, be_array, be_rculfhash, be_mutexshm;
#ifdef TC_HAVE_HIREDIS
extern const struct backend be_redis_unix, be_redis_tcp;
#endif
#ifdef TC_HAVE_MEMCACHED
extern const struct backend be_memcached;
#endif
extern const struct backend *const backends[];
extern const size_t nbackends;

/* may_drop of the backends whose keys never vanish. */
bool never_drops(void);

/* ------------------------------------------------------------------ */
/* Processes (runner.c)                                                 */
/* ------------------------------------------------------------------ */

enum role { ROLE_READER, ROLE_WRITER };

struct proc_res {
	int      role, cpu, failed, first_err;
	pid_t    pid;
	uint64_t elapsed_ns, cpu_ns;   /* wall and on-CPU time of the measured loop */
	uint64_t reads, hits, misses, torn, foreign, false_missing, errors, exists;
	char     err[200];
	struct hist h[OP_NKIND];
};

struct shared {
	int ready, go, stop;
	struct proc_res r[];
};

int preload(const struct backend *be, void *st, char *err, size_t len);
/* Fork the NPROCS processes, release them, wait for them; the number that
 * failed.  The results are in SH. */
int run_procs(const struct backend *be, struct shared *sh, int nprocs);
/* Set by main before anything is created: what on_signal cleans up. */
extern const struct backend *active;
void on_signal(int sig);
const char *role_name(int role);

/* ------------------------------------------------------------------ */
/* Reporting (report.c)                                                 */
/* ------------------------------------------------------------------ */

/* --percentiles-op: which distribution --percentiles writes. */
enum pct_which { PCT_AUTO, PCT_READS, PCT_WRITES };
extern enum pct_which pct_which;

void report(struct shared *sh, int nprocs, const char *pct_path);

#endif /* TC_SHM_BENCH_H */
