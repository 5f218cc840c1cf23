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
 * fork: each process measures its own private table.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
#define HAVE_RDTSCP 1
#else
#define HAVE_RDTSCP 0
#endif

#include "tickcache.h"

#include <urcu/urcu-memb.h>
#include <urcu/rculfhash.h>

#ifdef TC_HAVE_HIREDIS
#include <hiredis/hiredis.h>
#endif
#ifdef TC_HAVE_MEMCACHED
#include <libmemcached/memcached.h>
#endif

#define MAX_PROCS   64
#define KEY_LEN     14          /* 'k' ':' and 12 hex digits */
#define VHDR_SIZE   32          /* validation header at the start of a value */

/* ------------------------------------------------------------------ */
/* Configuration                                                        */
/* ------------------------------------------------------------------ */

enum op_kind { OP_GET, OP_PEEK, OP_SET, OP_ADD, OP_NKIND };
static const char *const op_names[OP_NKIND] = { "get", "peek", "set", "add" };

enum dist_kind { DIST_UNIFORM, DIST_ZIPF, DIST_HOT };
static const char *const dist_names[] = { "uniform", "zipf", "hot" };

enum out_fmt { OUT_HUMAN, OUT_CSV, OUT_JSON };

struct cfg {
	const char *backend;
	const char *label;
	enum op_kind read_op;   /* op of reader processes: get or peek */
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
};

static struct cfg cfg = {
	.backend = "tickcache", .label = "", .read_op = OP_GET, .write_op = OP_SET,
	.keys = 100000, .vsize = 64, .dist = DIST_ZIPF, .zipf_s = 0.99, .hot_keys = 1,
	.readers = 1, .writers = 0, .ops = 1000000, .warmup = 20000, .batch = 1, .subtract = true,
	.out = OUT_HUMAN,
	.redis_sock = "/tmp/shm-bench-redis.sock", .redis_host = "127.0.0.1", .redis_port = 6379,
	.mc_host = "127.0.0.1", .mc_port = 11211,
};

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("shm-bench: ", stderr);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

/* ------------------------------------------------------------------ */
/* Timer                                                                */
/* ------------------------------------------------------------------ */

static bool use_tsc;
static double ns_per_tick = 1.0;
static double timer_ovh_ticks;   /* median of an empty timed region */
static double timer_ovh_min_ticks;
static uint64_t timer_res_ticks;   /* the counter's step: gcd of observed deltas */

static uint64_t cpu_time_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

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

static bool cpu_has_invariant_tsc(void)
{
	FILE *f = fopen("/proc/cpuinfo", "r");
	char line[4096];
	bool constant = false, nonstop = false, rdtscp = false;

	if (!f)
		return false;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "flags", 5) != 0)
			continue;
		constant = strstr(line, " constant_tsc") != NULL;
		nonstop = strstr(line, " nonstop_tsc") != NULL;
		rdtscp = strstr(line, " rdtscp") != NULL;
		break;
	}
	fclose(f);
	return constant && nonstop && rdtscp;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void timer_init(void)
{
	enum { NOVH = 20001 };
	static uint64_t samp[NOVH];

	use_tsc = HAVE_RDTSCP && !cfg.force_clock && cpu_has_invariant_tsc();
	if (use_tsc) {
		/* Calibrate against CLOCK_MONOTONIC: three 30 ms windows, the median. */
		double f[3];

		for (int r = 0; r < 3; r++) {
			uint64_t n0 = clock_ns(), t0 = now_ticks(), n1, t1;

			do
				n1 = clock_ns();
			while (n1 - n0 < 30000000u);
			t1 = now_ticks();
			f[r] = (double)(t1 - t0) / (double)(n1 - n0);
		}
		double lo = fmin(f[0], fmin(f[1], f[2])), hi = fmax(f[0], fmax(f[1], f[2]));
		double best = f[0] + f[1] + f[2] - lo - hi;

		ns_per_tick = 1.0 / best;
	}
	for (int i = 0; i < NOVH; i++) {
		uint64_t a = now_ticks();
		uint64_t b = now_ticks();

		samp[i] = b - a;
	}
	uint64_t g = 0;

	for (int i = 0; i < NOVH; i++) {
		uint64_t a = g, b = samp[i];

		while (b) {
			uint64_t t = a % b;

			a = b;
			b = t;
		}
		g = a;
	}
	timer_res_ticks = g ? g : 1;
	qsort(samp, NOVH, sizeof(samp[0]), cmp_u64);
	timer_ovh_ticks = (double)samp[NOVH / 2];
	timer_ovh_min_ticks = (double)samp[0];
}

/* ------------------------------------------------------------------ */
/* Log-linear histogram                                                 */
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

/* Lowest value of bucket I and its width. */
static void hb_bounds(unsigned i, uint64_t *lo, uint64_t *width)
{
	if (i < (1u << HB_SUB)) {
		*lo = i;
		*width = 1;
		return;
	}
	unsigned g = i / HB_HALF - 1;
	uint64_t sub = i - (uint64_t)g * HB_HALF;

	*lo = sub << g;
	*width = 1ull << g;
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

static void hist_merge(struct hist *dst, const struct hist *src)
{
	if (!src->count)
		return;
	for (unsigned i = 0; i < HB_N; i++)
		dst->b[i] += src->b[i];
	if (dst->count == 0 || src->min < dst->min)
		dst->min = src->min;
	if (src->max > dst->max)
		dst->max = src->max;
	dst->count += src->count;
	dst->sum += src->sum;
}

/* Value at quantile Q (0..1) in ticks: the middle of its bucket, capped by max. */
static double hist_quantile(const struct hist *h, double q)
{
	if (!h->count)
		return 0;
	uint64_t rank = (uint64_t)ceil(q * (double)h->count), seen = 0;

	if (rank < 1)
		rank = 1;
	for (unsigned i = 0; i < HB_N; i++) {
		seen += h->b[i];
		if (seen >= rank) {
			uint64_t lo, w;

			hb_bounds(i, &lo, &w);
			double v = (double)lo + (double)(w - 1) / 2.0;
			if (v > (double)h->max)
				v = (double)h->max;
			if (v < (double)h->min)
				v = (double)h->min;
			return v;
		}
	}
	return (double)h->max;
}

/* Ticks to reported nanoseconds, with the timer's overhead taken off when asked. */
static double rep_ns(double ticks)
{
	if (cfg.subtract) {
		ticks -= timer_ovh_ticks;
		if (ticks < 0)
			ticks = 0;
	}
	return ticks * ns_per_tick;
}

/* ------------------------------------------------------------------ */
/* Keys, values, random numbers                                         */
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
static struct {
	double zetan, theta, alpha, eta, half_pow;
	uint64_t n, mult;
} zipf;

static void zipf_init(uint64_t n, double s)
{
	double zetan = 0;

	for (uint64_t i = 1; i <= n; i++)
		zetan += 1.0 / pow((double)i, s);
	zipf.n = n;
	zipf.theta = s;
	zipf.zetan = zetan;
	zipf.alpha = 1.0 / (1.0 - s);
	double zeta2 = 1.0 + pow(0.5, s);
	zipf.eta = (1.0 - pow(2.0 / (double)n, 1.0 - s)) / (1.0 - zeta2 / zetan);
	zipf.half_pow = 1.0 + pow(0.5, s);
	zipf.mult = 1000003;
	while (n % zipf.mult == 0)
		zipf.mult += 2;
}

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

static const char hexd[16] = "0123456789abcdef";

/* KEY_LEN bytes: PREFIX ':' and 12 hex digits of IDX. */
static inline void fmt_key(char *k, char prefix, uint64_t idx)
{
	k[0] = prefix;
	k[1] = ':';
	for (int i = 13; i >= 2; i--) {
		k[i] = hexd[idx & 15];
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

static uint64_t value_sum(const unsigned char *v, size_t len)
{
	uint64_t h = 0x51ED270B27E5A3C1ull ^ len;
	size_t i = 0;

	for (; i + 8 <= len; i += 8) {
		uint64_t w;

		if (i == offsetof(struct vhdr, sum))
			w = 0;
		else
			memcpy(&w, v + i, 8);
		h = (h ^ w) * 0x100000001B3ull;
		h ^= h >> 29;
	}
	for (; i < len; i++)
		h = (h ^ v[i]) * 0x100000001B3ull;
	return mix64(h);
}

/* Fill V (cfg.vsize bytes) with the value of key IDX at VERSION. */
static void make_value(unsigned char *v, uint64_t idx, uint64_t version, bool full)
{
	struct vhdr h = { .key = idx, .version = version, .len = (uint32_t)cfg.vsize,
			  .magic = VMAGIC, .sum = 0 };

	if (cfg.vsize < VHDR_SIZE) {
		memset(v, (int)(idx & 0xff), cfg.vsize);
		return;
	}
	if (full) {
		uint64_t pat = mix64(idx ^ (version << 20));

		for (size_t i = VHDR_SIZE; i < cfg.vsize; i += 8) {
			size_t n = cfg.vsize - i < 8 ? cfg.vsize - i : 8;

			memcpy(v + i, &pat, n);
			pat += 0x9E3779B97F4A7C15ull;
		}
	}
	memcpy(v, &h, sizeof(h));
	if (full) {
		h.sum = value_sum(v, cfg.vsize);
		memcpy(v + offsetof(struct vhdr, sum), &h.sum, sizeof(h.sum));
	}
}

enum vcheck { V_OK, V_TORN, V_FOREIGN };

static enum vcheck check_value(const unsigned char *v, size_t len, uint64_t idx)
{
	struct vhdr h;

	if (len != cfg.vsize || len < VHDR_SIZE)
		return V_TORN;
	memcpy(&h, v, sizeof(h));
	if (h.magic != VMAGIC || h.len != len || h.sum != value_sum(v, len))
		return V_TORN;
	return h.key == idx ? V_OK : V_FOREIGN;
}

/* ------------------------------------------------------------------ */
/* Backends                                                             */
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
};

#define OPBIT(o) (1u << (o))

static size_t round_up(size_t v, size_t a)
{
	return (v + a - 1) / a * a;
}

static uint64_t pow2_at_least(uint64_t v)
{
	uint64_t p = 1;

	while (p < v)
		p <<= 1;
	return p;
}

/* ---- tickcache ----------------------------------------------------- */

static uint64_t tcb_entries(void)
{
	return cfg.entries ? cfg.entries : cfg.keys + cfg.keys / 4 + 4096;
}

static uint64_t tcb_memory(void)
{
	if (cfg.memory)
		return cfg.memory;
	/* Room for every key twice over (entry header, key, size-class slack),
	 * so the preloaded set always fits and overwrites never evict. */
	uint64_t per = round_up(cfg.vsize + KEY_LEN + 96, 64);
	uint64_t m = 2 * (cfg.keys + 4096) * per + (16u << 20);

	return round_up(m, 1u << 20);
}

static int tcb_setup(char *err, size_t len)
{
	tc_opts o = {
		.max_entries = tcb_entries(),
		.memory_bytes = tcb_memory(),
		.max_readers = 0,
		.eviction = cfg.evict ? TC_EVICT_LRU : TC_EVICT_NONE,
		.flags = TC_CREATE | TC_EXCL | (cfg.checksum ? TC_CHECKSUM : 0),
	};
	tc_cache *c;
	int rc;

	snprintf(cfg.seg, sizeof(cfg.seg), "shm-bench.%d", (int)getpid());
	rc = tc_open(&c, cfg.seg, &o);
	if (rc) {
		snprintf(err, len, "tc_open(%s, entries %" PRIu64 ", memory %" PRIu64 "): %s",
			 cfg.seg, o.max_entries, o.memory_bytes, tc_strerror(rc));
		cfg.seg[0] = 0;
		return rc;
	}
	tc_close(c);
	return 0;
}

static void tcb_teardown(void)
{
	if (cfg.seg[0])
		tc_unlink(cfg.seg);
	cfg.seg[0] = 0;
}

static void *tcb_attach(char *err, size_t len)
{
	tc_cache *c;
	int rc = tc_open(&c, cfg.seg, NULL);

	if (rc) {
		snprintf(err, len, "tc_open(%s): %s", cfg.seg, tc_strerror(rc));
		return NULL;
	}
	return c;
}

static void tcb_detach(void *st)
{
	tc_close(st);
}

static inline int tc_rc(int rc)
{
	return rc == 0 ? 0 : rc == -ENOENT ? 1 : rc;
}

static int tcb_get(void *st, const char *k, size_t kl, void *buf, size_t cap, size_t *len)
{
	tc_meta m;
	int rc = tc_get(st, k, kl, buf, cap, &m);

	*len = m.len;
	return tc_rc(rc);
}

static int tcb_peek(void *st, const char *k, size_t kl, const void **val, size_t *len)
{
	tc_meta m;
	int rc = tc_read_lock(st);

	if (rc)
		return rc;
	rc = tc_peek(st, k, kl, val, &m);
	if (rc && rc != -ENOENT) {
		tc_read_unlock(st);
		return rc;
	}
	*len = rc ? 0 : m.len;
	return tc_rc(rc);
}

static void tcb_peek_end(void *st)
{
	tc_read_unlock(st);
}

static int tcb_set(void *st, const char *k, size_t kl, const void *v, size_t vl)
{
	return tc_set(st, k, kl, v, vl, 0, 0);
}

static int tcb_add(void *st, const char *k, size_t kl, const void *v, size_t vl)
{
	int rc = tc_add(st, k, kl, v, vl, 0, 0);

	return rc == -EEXIST ? 1 : rc;
}

static int tcb_del(void *st, const char *k, size_t kl)
{
	return tc_rc(tc_del(st, k, kl));
}

static bool tcb_may_drop(void)
{
	return cfg.evict;
}

/* ---- array: in-process open addressing, the memory floor ------------ */

/* Linear probing, backward-shift deletion; slot hash 0 means empty. */
struct arr_slot {
	uint64_t h;
	uint32_t vidx;
	uint32_t vlen;
	char     key[16];
};

struct arr {
	uint64_t mask;
	struct arr_slot *s;
	unsigned char *vals;
	size_t   stride;
	uint32_t *freev;
	uint64_t nfree;
};

static void *arr_alloc(size_t bytes)
{
	void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

static void *arr_attach(char *err, size_t len)
{
	struct arr *a = calloc(1, sizeof(*a));
	uint64_t nslots = pow2_at_least(2 * (cfg.keys + 4096));
	uint64_t nvals = cfg.keys + 4096;

	if (!a)
		goto oom;
	a->mask = nslots - 1;
	a->stride = round_up(cfg.vsize, 16);
	a->s = arr_alloc(nslots * sizeof(*a->s));
	a->vals = arr_alloc(nvals * a->stride);
	a->freev = malloc(nvals * sizeof(*a->freev));
	if (!a->s || !a->vals || !a->freev)
		goto oom;
	for (uint64_t i = 0; i < nvals; i++)
		a->freev[i] = (uint32_t)(nvals - 1 - i);
	a->nfree = nvals;
	return a;
oom:
	snprintf(err, len, "array: out of memory");
	return NULL;
}

static void arr_detach(void *st)
{
	(void)st;   /* the process exits next */
}

static inline struct arr_slot *arr_find(struct arr *a, const char *k, size_t kl, uint64_t h)
{
	for (uint64_t i = h & a->mask;; i = (i + 1) & a->mask) {
		struct arr_slot *s = &a->s[i];

		if (s->h == 0)
			return NULL;
		if (s->h == h && memcmp(s->key, k, kl) == 0)
			return s;
	}
}

static inline uint64_t arr_hash(const char *k, size_t kl)
{
	return hash_bytes(k, kl) | 1;
}

static int arr_get(void *st, const char *k, size_t kl, void *buf, size_t cap, size_t *len)
{
	struct arr *a = st;
	struct arr_slot *s = arr_find(a, k, kl, arr_hash(k, kl));

	if (!s)
		return 1;
	*len = s->vlen;
	if (s->vlen > cap)
		return -E2BIG;
	memcpy(buf, a->vals + (size_t)s->vidx * a->stride, s->vlen);
	return 0;
}

static int arr_peek(void *st, const char *k, size_t kl, const void **val, size_t *len)
{
	struct arr *a = st;
	struct arr_slot *s = arr_find(a, k, kl, arr_hash(k, kl));

	if (!s)
		return 1;
	*val = a->vals + (size_t)s->vidx * a->stride;
	*len = s->vlen;
	return 0;
}

static void arr_peek_end(void *st)
{
	(void)st;
}

static int arr_insert(struct arr *a, const char *k, size_t kl, const void *v, size_t vl,
		      bool overwrite)
{
	uint64_t h = arr_hash(k, kl);
	struct arr_slot *s = arr_find(a, k, kl, h);

	if (kl > sizeof(s->key) || vl > a->stride)
		return -EINVAL;
	if (s) {
		if (!overwrite)
			return 1;
		memcpy(a->vals + (size_t)s->vidx * a->stride, v, vl);
		s->vlen = (uint32_t)vl;
		return 0;
	}
	if (!a->nfree)
		return -ENOSPC;
	uint64_t i = h & a->mask;

	while (a->s[i].h)
		i = (i + 1) & a->mask;
	s = &a->s[i];
	s->vidx = a->freev[--a->nfree];
	s->vlen = (uint32_t)vl;
	memset(s->key, 0, sizeof(s->key));
	memcpy(s->key, k, kl);
	memcpy(a->vals + (size_t)s->vidx * a->stride, v, vl);
	s->h = h;
	return 0;
}

static int arr_set(void *st, const char *k, size_t kl, const void *v, size_t vl)
{
	return arr_insert(st, k, kl, v, vl, true);
}

static int arr_add(void *st, const char *k, size_t kl, const void *v, size_t vl)
{
	return arr_insert(st, k, kl, v, vl, false);
}

static int arr_del(void *st, const char *k, size_t kl)
{
	struct arr *a = st;
	struct arr_slot *s = arr_find(a, k, kl, arr_hash(k, kl));

	if (!s)
		return 1;
	a->freev[a->nfree++] = s->vidx;
	/* Backward shift: pull later members of the probe run into the hole. */
	uint64_t hole = (uint64_t)(s - a->s), j = hole;

	for (;;) {
		j = (j + 1) & a->mask;
		if (a->s[j].h == 0)
			break;
		uint64_t home = a->s[j].h & a->mask;

		if (((j - home) & a->mask) >= ((j - hole) & a->mask)) {
			a->s[hole] = a->s[j];
			hole = j;
		}
	}
	a->s[hole].h = 0;
	return 0;
}

static bool never_drops(void)
{
	return false;
}

/* ---- rculfhash: liburcu's RCU hash table, memb flavour ------------- */

struct lf_node {
	struct cds_lfht_node node;
	struct rcu_head rcu;
	uint32_t klen, vlen;
	char key[16];
	unsigned char val[];
};

struct lf_key {
	const char *p;
	size_t len;
};

static int lf_match(struct cds_lfht_node *n, const void *key)
{
	const struct lf_key *k = key;
	const struct lf_node *e = caa_container_of(n, struct lf_node, node);

	return e->klen == k->len && memcmp(e->key, k->p, k->len) == 0;
}

static void lf_free(struct rcu_head *h)
{
	free(caa_container_of(h, struct lf_node, rcu));
}

static void *lf_attach(char *err, size_t len)
{
	uint64_t n = pow2_at_least(cfg.keys + 4096);
	struct cds_lfht *ht;

	urcu_memb_register_thread();
	ht = cds_lfht_new_flavor(n, n, 0, 0, &urcu_memb_flavor, NULL);
	if (!ht)
		snprintf(err, len, "cds_lfht_new failed");
	return ht;
}

static void lf_detach(void *st)
{
	(void)st;
	urcu_memb_unregister_thread();
}

static inline struct lf_node *lf_lookup(struct cds_lfht *ht, const char *k, size_t kl)
{
	struct lf_key key = { k, kl };
	struct cds_lfht_iter it;
	struct cds_lfht_node *n;

	cds_lfht_lookup(ht, hash_bytes(k, kl), lf_match, &key, &it);
	n = cds_lfht_iter_get_node(&it);
	return n ? caa_container_of(n, struct lf_node, node) : NULL;
}

static int lf_get(void *st, const char *k, size_t kl, void *buf, size_t cap, size_t *len)
{
	struct lf_node *e;
	int rc = 1;

	urcu_memb_read_lock();
	e = lf_lookup(st, k, kl);
	if (e) {
		*len = e->vlen;
		rc = e->vlen > cap ? -E2BIG : 0;
		if (!rc)
			memcpy(buf, e->val, e->vlen);
	}
	urcu_memb_read_unlock();
	return rc;
}

static int lf_peek(void *st, const char *k, size_t kl, const void **val, size_t *len)
{
	struct lf_node *e;

	urcu_memb_read_lock();
	e = lf_lookup(st, k, kl);
	if (!e)
		return 1;
	*val = e->val;
	*len = e->vlen;
	return 0;
}

static void lf_peek_end(void *st)
{
	(void)st;
	urcu_memb_read_unlock();
}

static struct lf_node *lf_node_new(const char *k, size_t kl, const void *v, size_t vl)
{
	struct lf_node *e;

	if (kl > sizeof(e->key))
		return NULL;
	e = malloc(sizeof(*e) + vl);
	if (!e)
		return NULL;
	cds_lfht_node_init(&e->node);
	e->klen = (uint32_t)kl;
	e->vlen = (uint32_t)vl;
	memcpy(e->key, k, kl);
	memcpy(e->val, v, vl);
	return e;
}

static int lf_set(void *st, const char *k, size_t kl, const void *v, size_t vl)
{
	struct lf_node *e = lf_node_new(k, kl, v, vl);
	struct lf_key key = { k, kl };
	struct cds_lfht_node *old;

	if (!e)
		return -ENOMEM;
	urcu_memb_read_lock();
	old = cds_lfht_add_replace(st, hash_bytes(k, kl), lf_match, &key, &e->node);
	urcu_memb_read_unlock();
	if (old)
		urcu_memb_call_rcu(&caa_container_of(old, struct lf_node, node)->rcu, lf_free);
	return 0;
}

static int lf_add(void *st, const char *k, size_t kl, const void *v, size_t vl)
{
	struct lf_node *e = lf_node_new(k, kl, v, vl);
	struct lf_key key = { k, kl };
	struct cds_lfht_node *got;

	if (!e)
		return -ENOMEM;
	urcu_memb_read_lock();
	got = cds_lfht_add_unique(st, hash_bytes(k, kl), lf_match, &key, &e->node);
	urcu_memb_read_unlock();
	if (got != &e->node) {
		free(e);
		return 1;
	}
	return 0;
}

static int lf_del(void *st, const char *k, size_t kl)
{
	struct lf_node *e;
	int rc = 1;

	urcu_memb_read_lock();
	e = lf_lookup(st, k, kl);
	if (e && cds_lfht_del(st, &e->node) == 0) {
		urcu_memb_call_rcu(&e->rcu, lf_free);
		rc = 0;
	}
	urcu_memb_read_unlock();
	return rc;
}

/* ---- mutexshm: the mutex-writer shared-memory cache ----------------- */

/*
 * The design many shared-memory caches use today: writers serialise on one
 * process-shared (robust) mutex and overwrite a value in place when it fits;
 * values are bump-allocated from a ring of memory stripes, and when the ring
 * is full the oldest stripe is recycled under the lock by a scan of the
 * whole entry table.  Readers take no lock at all: they walk the bucket
 * chain and copy the value while a writer may be rewriting it.  Offsets and
 * lengths are bounds-checked so a racing reader copies garbage, never
 * crashes.  Entry index 0 is "none".
 */
#define MX_STRIPES 16

struct mx_entry {
	uint32_t next;      /* next entry of the bucket chain */
	uint32_t stripe;
	uint32_t klen;      /* 0: entry free */
	uint32_t vlen;
	uint32_t vcap;
	uint32_t pad;
	uint64_t voff;      /* value offset in the arena */
	char     key[32];
};
_Static_assert(sizeof(struct mx_entry) == 64, "mx_entry");

struct mx_hdr {
	pthread_mutex_t lock;
	uint64_t nbuckets, nentries, stripe_bytes, map_bytes;
	uint64_t cur, off;
	uint32_t free_head, pad;
	uint64_t recycles, evictions;
	uint8_t  used[MX_STRIPES];
};

static struct mx_hdr *mx;

static inline uint32_t *mx_buckets(struct mx_hdr *m)
{
	return (uint32_t *)(m + 1);
}

static inline struct mx_entry *mx_entries(struct mx_hdr *m)
{
	return (struct mx_entry *)((char *)(m + 1) + round_up(m->nbuckets * 4, 64));
}

static inline unsigned char *mx_arena(struct mx_hdr *m)
{
	return (unsigned char *)(mx_entries(m) + m->nentries);
}

static int mx_setup(char *err, size_t len)
{
	uint64_t nb = pow2_at_least(cfg.keys + 4096);
	uint64_t ne = cfg.entries ? cfg.entries : cfg.keys + cfg.keys / 4 + 4096;
	uint64_t arena = cfg.memory ? cfg.memory
				    : round_up(2 * (cfg.keys + 4096) * round_up(cfg.vsize, 8), 4096);
	uint64_t stripe = round_up(arena / MX_STRIPES, 64);
	size_t bytes = sizeof(*mx) + round_up(nb * 4, 64) + ne * sizeof(struct mx_entry) +
		       stripe * MX_STRIPES;
	pthread_mutexattr_t at;

	if (stripe < round_up(cfg.vsize, 8)) {
		snprintf(err, len, "mutexshm: memory too small for one value per stripe");
		return -EINVAL;
	}
	mx = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (mx == MAP_FAILED) {
		snprintf(err, len, "mutexshm: mmap %zu bytes: %s", bytes, strerror(errno));
		mx = NULL;
		return -ENOMEM;
	}
	mx->nbuckets = nb;
	mx->nentries = ne;
	mx->stripe_bytes = stripe;
	mx->map_bytes = bytes;
	pthread_mutexattr_init(&at);
	pthread_mutexattr_setpshared(&at, PTHREAD_PROCESS_SHARED);
	pthread_mutexattr_setrobust(&at, PTHREAD_MUTEX_ROBUST);
	pthread_mutex_init(&mx->lock, &at);
	pthread_mutexattr_destroy(&at);
	struct mx_entry *e = mx_entries(mx);

	for (uint64_t i = 0; i < ne; i++)
		e[i].next = i + 1 < ne ? (uint32_t)(i + 2) : 0;
	mx->free_head = 1;
	mx->used[0] = 1;
	return 0;
}

static void mx_teardown(void)
{
	if (mx)
		munmap(mx, mx->map_bytes);
	mx = NULL;
}

static void *mx_attach(char *err, size_t len)
{
	(void)err;
	(void)len;
	return mx;
}

static void mx_detach(void *st)
{
	(void)st;
}

static void mx_lock(struct mx_hdr *m)
{
	if (pthread_mutex_lock(&m->lock) == EOWNERDEAD)
		pthread_mutex_consistent(&m->lock);
}

static void mx_unlink_entry(struct mx_hdr *m, uint32_t idx)
{
	struct mx_entry *e = mx_entries(m);
	uint32_t *b = &mx_buckets(m)[hash_bytes(e[idx - 1].key, e[idx - 1].klen) & (m->nbuckets - 1)];

	while (*b && *b != idx)
		b = &e[*b - 1].next;
	if (*b)
		*b = e[idx - 1].next;
	e[idx - 1].klen = 0;
	e[idx - 1].next = m->free_head;
	m->free_head = idx;
}

/* Drop every entry whose value lives in stripe S: a scan of the whole table. */
static void mx_recycle(struct mx_hdr *m, uint64_t s)
{
	struct mx_entry *e = mx_entries(m);

	for (uint64_t i = 0; i < m->nentries; i++) {
		if (e[i].klen && e[i].stripe == s) {
			mx_unlink_entry(m, (uint32_t)(i + 1));
			m->evictions++;
		}
	}
	m->used[s] = 0;
	m->recycles++;
}

static uint64_t mx_alloc_value(struct mx_hdr *m, size_t cap)
{
	if (m->off + cap > m->stripe_bytes) {
		m->cur = (m->cur + 1) % MX_STRIPES;
		if (m->used[m->cur])
			mx_recycle(m, m->cur);
		m->used[m->cur] = 1;
		m->off = 0;
	}
	uint64_t off = m->cur * m->stripe_bytes + m->off;

	m->off += cap;
	return off;
}

static uint32_t mx_find(struct mx_hdr *m, const char *k, size_t kl)
{
	struct mx_entry *e = mx_entries(m);
	uint32_t i = __atomic_load_n(&mx_buckets(m)[hash_bytes(k, kl) & (m->nbuckets - 1)],
				     __ATOMIC_ACQUIRE);

	for (unsigned steps = 0; i && i <= m->nentries && steps < 64; steps++) {
		struct mx_entry *x = &e[i - 1];

		if (x->klen == kl && memcmp(x->key, k, kl) == 0)
			return i;
		i = __atomic_load_n(&x->next, __ATOMIC_ACQUIRE);
	}
	return 0;
}

static int mx_write(void *st, const char *k, size_t kl, const void *v, size_t vl, bool overwrite)
{
	struct mx_hdr *m = st;
	struct mx_entry *e = mx_entries(m);
	size_t cap = round_up(vl ? vl : 1, 8);
	uint32_t i;

	if (kl > sizeof(e->key) || cap > m->stripe_bytes)
		return -EINVAL;
	mx_lock(m);
	i = mx_find(m, k, kl);
	if (i && !overwrite) {
		pthread_mutex_unlock(&m->lock);
		return 1;
	}
	if (i && vl <= e[i - 1].vcap) {
		/* In place: a concurrent reader may copy half old, half new. */
		memcpy(mx_arena(m) + e[i - 1].voff, v, vl);
		e[i - 1].vlen = (uint32_t)vl;
		pthread_mutex_unlock(&m->lock);
		return 0;
	}
	uint64_t off = mx_alloc_value(m, cap);
	uint64_t stripe = m->cur;

	i = mx_find(m, k, kl);           /* the recycle may have dropped it */
	if (!i) {
		while (!m->free_head) {
			uint64_t s = (m->cur + 1) % MX_STRIPES;

			if (s == stripe)
				s = (s + 1) % MX_STRIPES;
			mx_recycle(m, s);
		}
		i = m->free_head;
		m->free_head = e[i - 1].next;
		memset(e[i - 1].key, 0, sizeof(e->key));
		memcpy(e[i - 1].key, k, kl);
		e[i - 1].klen = (uint32_t)kl;
		e[i - 1].voff = off;
		e[i - 1].vcap = (uint32_t)cap;
		e[i - 1].vlen = (uint32_t)vl;
		e[i - 1].stripe = (uint32_t)stripe;
		memcpy(mx_arena(m) + off, v, vl);
		uint32_t *b = &mx_buckets(m)[hash_bytes(k, kl) & (m->nbuckets - 1)];

		e[i - 1].next = *b;
		__atomic_store_n(b, i, __ATOMIC_RELEASE);
	} else {
		memcpy(mx_arena(m) + off, v, vl);
		e[i - 1].voff = off;
		e[i - 1].vcap = (uint32_t)cap;
		e[i - 1].vlen = (uint32_t)vl;
		e[i - 1].stripe = (uint32_t)stripe;
	}
	pthread_mutex_unlock(&m->lock);
	return 0;
}

static int mx_set(void *st, const char *k, size_t kl, const void *v, size_t vl)
{
	return mx_write(st, k, kl, v, vl, true);
}

static int mx_add(void *st, const char *k, size_t kl, const void *v, size_t vl)
{
	return mx_write(st, k, kl, v, vl, false);
}

static int mx_del(void *st, const char *k, size_t kl)
{
	struct mx_hdr *m = st;
	uint32_t i;

	mx_lock(m);
	i = mx_find(m, k, kl);
	if (i)
		mx_unlink_entry(m, i);
	pthread_mutex_unlock(&m->lock);
	return i ? 0 : 1;
}

static int mx_get(void *st, const char *k, size_t kl, void *buf, size_t cap, size_t *len)
{
	struct mx_hdr *m = st;
	uint32_t i = mx_find(m, k, kl);

	if (!i)
		return 1;
	struct mx_entry *e = &mx_entries(m)[i - 1];
	uint64_t off = __atomic_load_n(&e->voff, __ATOMIC_RELAXED);
	uint32_t vl = __atomic_load_n(&e->vlen, __ATOMIC_RELAXED);

	*len = vl;
	if (vl > cap)
		return -E2BIG;
	if (off + vl > MX_STRIPES * m->stripe_bytes)
		return -EFAULT;
	memcpy(buf, mx_arena(m) + off, vl);
	return 0;
}

static bool mx_may_drop(void)
{
	return cfg.memory != 0 || cfg.entries != 0;
}

#ifdef TC_HAVE_HIREDIS
/* ---- Redis over hiredis ------------------------------------------- */

static bool redis_unix;

static void *redis_attach(char *err, size_t len)
{
	redisContext *c = redis_unix ? redisConnectUnix(cfg.redis_sock)
				     : redisConnect(cfg.redis_host, cfg.redis_port);

	if (!c || c->err) {
		if (redis_unix)
			snprintf(err, len, "redis unix:%s: %s", cfg.redis_sock,
				 c ? c->errstr : "out of memory");
		else
			snprintf(err, len, "redis %s:%d: %s", cfg.redis_host, cfg.redis_port,
				 c ? c->errstr : "out of memory");
		if (c)
			redisFree(c);
		return NULL;
	}
	return c;
}

static void redis_detach(void *st)
{
	redisFree(st);
}

static int redis_get(void *st, const char *k, size_t kl, void *buf, size_t cap, size_t *len)
{
	redisReply *r = redisCommand(st, "GET %b", k, kl);
	int rc;

	if (!r)
		return -EIO;
	if (r->type == REDIS_REPLY_STRING) {
		*len = r->len;
		rc = r->len > cap ? -E2BIG : 0;
		if (!rc)
			memcpy(buf, r->str, r->len);
	} else {
		rc = r->type == REDIS_REPLY_NIL ? 1 : -EPROTO;
	}
	freeReplyObject(r);
	return rc;
}

static int redis_status(redisReply *r, int nil_rc)
{
	int rc;

	if (!r)
		return -EIO;
	if (r->type == REDIS_REPLY_NIL)
		rc = nil_rc;
	else if (r->type == REDIS_REPLY_STATUS || r->type == REDIS_REPLY_INTEGER)
		rc = r->type == REDIS_REPLY_INTEGER && r->integer == 0 ? 1 : 0;
	else
		rc = -EPROTO;
	freeReplyObject(r);
	return rc;
}

static int redis_set(void *st, const char *k, size_t kl, const void *v, size_t vl)
{
	return redis_status(redisCommand(st, "SET %b %b", k, kl, v, vl), -EPROTO);
}

static int redis_add(void *st, const char *k, size_t kl, const void *v, size_t vl)
{
	return redis_status(redisCommand(st, "SET %b %b NX", k, kl, v, vl), 1);
}

static int redis_del(void *st, const char *k, size_t kl)
{
	return redis_status(redisCommand(st, "DEL %b", k, kl), -EPROTO);
}

/* Pipelined preload: batches of appends, then their replies. */
static int redis_load(void *st, char *err, size_t len)
{
	unsigned char *v = malloc(cfg.vsize);
	char k[KEY_LEN + 1];
	enum { BATCH = 512 };

	if (!v)
		return -ENOMEM;
	for (uint64_t i = 0; i < cfg.keys; i += BATCH) {
		uint64_t n = cfg.keys - i < BATCH ? cfg.keys - i : BATCH;

		for (uint64_t j = 0; j < n; j++) {
			fmt_key(k, 'k', i + j);
			make_value(v, i + j, 1u << 8, true);
			redisAppendCommand(st, "SET %b %b", k, (size_t)KEY_LEN, v, cfg.vsize);
		}
		for (uint64_t j = 0; j < n; j++) {
			void *r;

			if (redisGetReply(st, &r) != REDIS_OK) {
				snprintf(err, len, "redis preload: %s", ((redisContext *)st)->errstr);
				free(v);
				return -EIO;
			}
			freeReplyObject(r);
		}
	}
	free(v);
	return 0;
}

static int redis_unix_setup(char *err, size_t len)
{
	(void)err;
	(void)len;
	redis_unix = true;
	return 0;
}

static int redis_tcp_setup(char *err, size_t len)
{
	(void)err;
	(void)len;
	redis_unix = false;
	return 0;
}

static void nothing(void)
{
}
#endif /* TC_HAVE_HIREDIS */

#ifdef TC_HAVE_MEMCACHED
/* ---- memcached over libmemcached ---------------------------------- */

static void *mc_attach(char *err, size_t len)
{
	memcached_st *m = memcached_create(NULL);
	memcached_return_t rc;

	if (!m) {
		snprintf(err, len, "memcached_create failed");
		return NULL;
	}
	memcached_behavior_set(m, MEMCACHED_BEHAVIOR_TCP_NODELAY, 1);
	rc = memcached_server_add(m, cfg.mc_host, (in_port_t)cfg.mc_port);
	if (rc == MEMCACHED_SUCCESS)
		rc = memcached_version(m);
	if (rc != MEMCACHED_SUCCESS) {
		const char *why = memcached_last_error_message(m);

		snprintf(err, len, "memcached %s:%d: %s", cfg.mc_host, cfg.mc_port,
			 why ? why : memcached_strerror(m, rc));
		memcached_free(m);
		return NULL;
	}
	return m;
}

static void mc_detach(void *st)
{
	memcached_free(st);
}

static int mc_get(void *st, const char *k, size_t kl, void *buf, size_t cap, size_t *len)
{
	memcached_return_t rc;
	uint32_t flags;
	size_t vl;
	char *v = memcached_get(st, k, kl, &vl, &flags, &rc);

	if (!v)
		return rc == MEMCACHED_NOTFOUND ? 1 : rc == MEMCACHED_SUCCESS ? 0 : -EIO;
	*len = vl;
	int r = vl > cap ? -E2BIG : 0;

	if (!r)
		memcpy(buf, v, vl);
	free(v);
	return r;
}

static int mc_set(void *st, const char *k, size_t kl, const void *v, size_t vl)
{
	memcached_return_t rc = memcached_set(st, k, kl, v, vl, 0, 0);

	return rc == MEMCACHED_SUCCESS || rc == MEMCACHED_BUFFERED ? 0 : -EIO;
}

static int mc_add(void *st, const char *k, size_t kl, const void *v, size_t vl)
{
	memcached_return_t rc = memcached_add(st, k, kl, v, vl, 0, 0);

	if (rc == MEMCACHED_SUCCESS)
		return 0;
	return rc == MEMCACHED_NOTSTORED || rc == MEMCACHED_DATA_EXISTS ? 1 : -EIO;
}

static int mc_del(void *st, const char *k, size_t kl)
{
	memcached_return_t rc = memcached_delete(st, k, kl, 0);

	return rc == MEMCACHED_SUCCESS ? 0 : rc == MEMCACHED_NOTFOUND ? 1 : -EIO;
}

/*
 * Preload through a second connection with NOREPLY and buffered requests
 * (no round trip per key), then wait on the main one until the last key has
 * arrived: the server handles one connection's requests in order.
 */
static int mc_load(void *st, char *err, size_t len)
{
	char k[KEY_LEN + 1];
	memcached_return_t rc = MEMCACHED_SUCCESS;
	unsigned char *v = malloc(cfg.vsize);
	memcached_st *p = mc_attach(err, len);

	if (!v || !p) {
		free(v);
		if (p)
			memcached_free(p);
		return -ENOMEM;
	}
	memcached_behavior_set(p, MEMCACHED_BEHAVIOR_NOREPLY, 1);
	memcached_behavior_set(p, MEMCACHED_BEHAVIOR_BUFFER_REQUESTS, 1);
	for (uint64_t i = 0; i < cfg.keys; i++) {
		fmt_key(k, 'k', i);
		make_value(v, i, 1u << 8, true);
		rc = memcached_set(p, k, KEY_LEN, (const char *)v, cfg.vsize, 0, 0);
		if (rc != MEMCACHED_SUCCESS && rc != MEMCACHED_BUFFERED)
			break;
	}
	if (rc == MEMCACHED_SUCCESS || rc == MEMCACHED_BUFFERED)
		rc = memcached_flush_buffers(p);
	free(v);
	if (rc != MEMCACHED_SUCCESS) {
		snprintf(err, len, "memcached preload: %s", memcached_strerror(p, rc));
		memcached_free(p);
		return -EIO;
	}
	fmt_key(k, 'k', cfg.keys - 1);
	for (int t = 0; t < 5000; t++) {
		size_t vl;
		uint32_t fl;
		char *g = memcached_get(p, k, KEY_LEN, &vl, &fl, &rc);

		if (g) {
			free(g);
			memcached_free(p);
			return 0;
		}
		usleep(1000);
	}
	memcached_free(p);
	(void)st;
	snprintf(err, len, "memcached preload: the last key never arrived");
	return -EIO;
}

static int mc_setup(char *err, size_t len)
{
	(void)err;
	(void)len;
	return 0;
}

static void mc_teardown(void)
{
}
#endif /* TC_HAVE_MEMCACHED */

static const struct backend backends[] = {
	{ "tickcache", "libtickcache in a POSIX shm segment (tc_get/tc_peek/tc_set/tc_add)",
	  OPBIT(OP_GET) | OPBIT(OP_PEEK) | OPBIT(OP_SET) | OPBIT(OP_ADD), true,
	  tcb_setup, tcb_teardown, tcb_attach, tcb_detach, tcb_get, tcb_peek, tcb_peek_end,
	  tcb_set, tcb_add, tcb_del, NULL, tcb_may_drop },
	{ "array", "in-process open-addressing array, per process (memory-latency floor)",
	  OPBIT(OP_GET) | OPBIT(OP_PEEK) | OPBIT(OP_SET) | OPBIT(OP_ADD), false,
	  NULL, NULL, arr_attach, arr_detach, arr_get, arr_peek, arr_peek_end,
	  arr_set, arr_add, arr_del, NULL, never_drops },
	{ "rculfhash", "liburcu cds_lfht, memb flavour, per process",
	  OPBIT(OP_GET) | OPBIT(OP_PEEK) | OPBIT(OP_SET) | OPBIT(OP_ADD), false,
	  NULL, NULL, lf_attach, lf_detach, lf_get, lf_peek, lf_peek_end,
	  lf_set, lf_add, lf_del, NULL, never_drops },
	{ "mutexshm", "shared memory, one process-shared mutex for writers, lock-free unsafe readers",
	  OPBIT(OP_GET) | OPBIT(OP_SET) | OPBIT(OP_ADD), true,
	  mx_setup, mx_teardown, mx_attach, mx_detach, mx_get, NULL, NULL,
	  mx_set, mx_add, mx_del, NULL, mx_may_drop },
#ifdef TC_HAVE_HIREDIS
	{ "redis-unix", "Redis through hiredis over a unix socket (--redis-socket)",
	  OPBIT(OP_GET) | OPBIT(OP_SET) | OPBIT(OP_ADD), true,
	  redis_unix_setup, nothing, redis_attach, redis_detach, redis_get, NULL, NULL,
	  redis_set, redis_add, redis_del, redis_load, never_drops },
	{ "redis-tcp", "Redis through hiredis over TCP loopback (--redis-host/--redis-port)",
	  OPBIT(OP_GET) | OPBIT(OP_SET) | OPBIT(OP_ADD), true,
	  redis_tcp_setup, nothing, redis_attach, redis_detach, redis_get, NULL, NULL,
	  redis_set, redis_add, redis_del, redis_load, never_drops },
#endif
#ifdef TC_HAVE_MEMCACHED
	{ "memcached", "memcached through libmemcached over TCP loopback (--memcached-host/-port)",
	  OPBIT(OP_GET) | OPBIT(OP_SET) | OPBIT(OP_ADD), true,
	  mc_setup, mc_teardown, mc_attach, mc_detach, mc_get, NULL, NULL,
	  mc_set, mc_add, mc_del, mc_load, never_drops },
#endif
};
#define NBACKENDS (sizeof(backends) / sizeof(backends[0]))

/* ------------------------------------------------------------------ */
/* Processes                                                            */
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

static volatile uint64_t sink;

/* Preload keys 0..keys-1 with version 1 of writer 0. */
static int preload(const struct backend *be, void *st, char *err, size_t len)
{
	unsigned char *v;
	char k[KEY_LEN + 1];

	if (cfg.no_preload)
		return 0;
	if (be->load)
		return be->load(st, err, len);
	v = aligned_alloc(64, round_up(cfg.vsize + 1, 64));
	if (!v)
		return -ENOMEM;
	for (uint64_t i = 0; i < cfg.keys; i++) {
		int rc;

		fmt_key(k, 'k', i);
		make_value(v, i, 1u << 8, true);
		rc = be->set(st, k, KEY_LEN, v, cfg.vsize);
		if (rc < 0) {
			snprintf(err, len, "preload of key %" PRIu64 " failed: %s (%d)%s", i,
				 tc_strerror(rc), rc,
				 rc == -ENOSPC ? "; give more --memory/--entries or --evict" : "");
			free(v);
			return rc;
		}
	}
	free(v);
	return 0;
}

static int pick_cpu(int slot)
{
	cpu_set_t set;
	int n = 0, cpus[CPU_SETSIZE];

	if (sched_getaffinity(0, sizeof(set), &set))
		return -1;
	for (int i = 0; i < CPU_SETSIZE; i++)
		if (CPU_ISSET(i, &set))
			cpus[n++] = i;
	if (!n)
		return -1;
	int cpu = cpus[slot % n];

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return sched_setaffinity(0, sizeof(set), &set) ? -1 : cpu;
}

static void proc_fail(struct proc_res *r, const char *msg)
{
	r->failed = 1;
	if (msg != r->err)
		snprintf(r->err, sizeof(r->err), "%s", msg);
}

static void note_error(struct proc_res *r, int rc, const char *what)
{
	r->errors++;
	if (!r->first_err) {
		r->first_err = rc;
		snprintf(r->err, sizeof(r->err), "%s: %s (%d)", what, tc_strerror(rc), rc);
	}
}

/* The measured loop; RECORD false is the warm-up. */
static void run_loop(const struct backend *be, void *st, struct shared *sh, int slot, int role,
		     uint64_t limit, bool record, unsigned char *val, unsigned char *buf,
		     uint64_t *rs)
{
	struct proc_res *r = &sh->r[slot];
	const bool expect_present = !be->may_drop();
	const uint64_t wid = (uint64_t)slot + 1;
	const double period = cfg.rate > 0 && role == ROLE_WRITER ? 1e9 / cfg.rate / ns_per_tick : 0;
	uint64_t start = now_ticks(), deadline = 0, seq = 0;
	double next_t = (double)start;
	char k[KEY_LEN + 1];
	struct hist scratch;
	uint64_t start_ns = clock_ns(), start_cpu = cpu_time_ns();

	if (record && cfg.duration > 0)
		deadline = start + (uint64_t)(cfg.duration * 1e9 / ns_per_tick);
	for (uint64_t i = 0;; i++) {
		if (limit && i >= limit)
			break;
		if ((i & 63) == 0) {
			if (deadline && now_ticks() >= deadline)
				break;
			if (record && !limit && __atomic_load_n(&sh->stop, __ATOMIC_RELAXED))
				break;
		}
		enum op_kind op = role == ROLE_WRITER ? cfg.write_op
			: (cfg.write_pct && rng_below(rs, 100) < cfg.write_pct ? cfg.write_op
									     : cfg.read_op);
		uint64_t idx;
		size_t len = 0;
		int rc = 0;
		enum vcheck cls = V_OK;
		uint64_t t0, t1;

		if (op == OP_ADD) {
			idx = ((uint64_t)slot << 40) | (i & 0xffffffffffull);
			fmt_key(k, 'a', idx);
		} else {
			idx = next_key(rs);
			fmt_key(k, 'k', idx);
		}
		if (op == OP_SET || op == OP_ADD)
			make_value(val, idx, (++seq << 8) | wid, cfg.validate);
		if (period > 0) {
			next_t += period;
			for (;;) {
				double ahead = next_t - (double)now_ticks();

				if (ahead <= 0)
					break;
				if (ahead * ns_per_tick > 200000) {
					struct timespec ts = { 0, (long)(ahead * ns_per_tick) - 100000 };

					nanosleep(&ts, NULL);
				} else {
#if HAVE_RDTSCP
					_mm_pause();
#endif
				}
			}
		}

		switch (op) {
		case OP_GET:
			t0 = now_ticks();
			rc = be->get(st, k, KEY_LEN, buf, cfg.vsize + 64, &len);
			t1 = now_ticks();
			if (rc == 0 && cfg.validate)
				cls = check_value(buf, len, idx);
			break;
		case OP_PEEK: {
			/*
			 * Timed: read lock, lookup, a read of the value's first and
			 * last word (a zero-copy reader uses the value), unlock.  In
			 * validating mode the check runs inside the section but
			 * outside the timing: two timed pieces, one timer overhead
			 * taken off the second so the sum carries exactly one.
			 */
			const void *pv = NULL;
			uint64_t t2, t3;

			t0 = now_ticks();
			rc = be->peek(st, k, KEY_LEN, &pv, &len);
			if (rc == 0 && len >= 8) {
				uint64_t a, b;

				memcpy(&a, pv, 8);
				memcpy(&b, (const char *)pv + len - 8, 8);
				sink += a ^ b;
			}
			if (rc < 0) {
				t1 = now_ticks();
			} else if (!cfg.validate) {
				be->peek_end(st);
				t1 = now_ticks();
			} else {
				t1 = now_ticks();
				if (rc == 0)
					cls = check_value(pv, len, idx);
				t2 = now_ticks();
				be->peek_end(st);
				t3 = now_ticks();
				uint64_t extra = t3 - t2;

				extra = extra > (uint64_t)timer_ovh_ticks ? extra - (uint64_t)timer_ovh_ticks : 0;
				t1 += extra;
			}
			break;
		}
		case OP_SET:
			t0 = now_ticks();
			rc = be->set(st, k, KEY_LEN, val, cfg.vsize);
			t1 = now_ticks();
			break;
		case OP_ADD:
		default:
			t0 = now_ticks();
			rc = be->add(st, k, KEY_LEN, val, cfg.vsize);
			t1 = now_ticks();
			if (rc == 0)
				be->del(st, k, KEY_LEN);
			break;
		}
		if (!record) {
			if (rc < 0) {
				note_error(r, rc, op_names[op]);
				return;
			}
			continue;
		}
		hist_add(&r->h[op], t1 - t0);
		if (rc < 0) {
			note_error(r, rc, op_names[op]);
			continue;
		}
		if (op == OP_GET || op == OP_PEEK) {
			r->reads++;
			if (rc == 1) {
				r->misses++;
				if (expect_present)
					r->false_missing++;
			} else {
				r->hits++;
				if (cls == V_TORN)
					r->torn++;
				else if (cls == V_FOREIGN)
					r->foreign++;
			}
		} else if (rc == 1) {
			r->exists++;
		}
	}
	(void)scratch;
	if (record) {
		r->elapsed_ns = clock_ns() - start_ns;
		r->cpu_ns = cpu_time_ns() - start_cpu;
	}
}

/*
 * Readers with --batch N: N reads between one pair of timer reads, recorded
 * as N operations of the mean, so that costs below the counter's step (10 ns
 * on some VMs) and the timer's own overhead (taken once per batch) are
 * resolved.  Percentiles are then those of N-read means: tails are smoothed.
 * Keys are generated before the timed region.
 */
static void run_batch(const struct backend *be, void *st, struct shared *sh, int slot,
		      uint64_t limit, unsigned char *buf, uint64_t *rs)
{
	struct proc_res *r = &sh->r[slot];
	const unsigned n = cfg.batch;
	const bool expect_present = !be->may_drop();
	const uint64_t ovh = (uint64_t)timer_ovh_ticks;
	char (*keys)[KEY_LEN + 1] = malloc((size_t)n * sizeof(*keys));
	uint64_t start_ns = clock_ns(), start_cpu = cpu_time_ns(), deadline = 0, start = now_ticks();
	enum op_kind op = cfg.read_op;

	if (!keys) {
		note_error(r, -ENOMEM, "batch");
		return;
	}
	if (cfg.duration > 0)
		deadline = start + (uint64_t)(cfg.duration * 1e9 / ns_per_tick);
	for (uint64_t done = 0; !limit || done < limit; done += n) {
		unsigned hits = 0, misses = 0, errs = 0;
		int last_err = 0;

		if (deadline && now_ticks() >= deadline)
			break;
		for (unsigned j = 0; j < n; j++)
			fmt_key(keys[j], 'k', next_key(rs));
		uint64_t t0 = now_ticks();

		for (unsigned j = 0; j < n; j++) {
			size_t len = 0;
			int rc;

			if (op == OP_GET) {
				rc = be->get(st, keys[j], KEY_LEN, buf, cfg.vsize + 64, &len);
			} else {
				const void *pv = NULL;

				rc = be->peek(st, keys[j], KEY_LEN, &pv, &len);
				if (rc == 0 && len >= 8) {
					uint64_t a, b;

					memcpy(&a, pv, 8);
					memcpy(&b, (const char *)pv + len - 8, 8);
					sink += a ^ b;
				}
				if (rc >= 0)
					be->peek_end(st);
			}
			hits += rc == 0;
			misses += rc == 1;
			if (rc < 0) {
				errs++;
				last_err = rc;
			}
		}
		uint64_t t1 = now_ticks(), dt = t1 - t0;

		/* One timer overhead per batch: take it off, spread the rest, and
		 * add it back once so the report's subtraction leaves the mean. */
		dt = dt > ovh ? dt - ovh : 0;
		hist_add_n(&r->h[op], (dt + n / 2) / n + ovh, n);
		r->reads += n;
		r->hits += hits;
		r->misses += misses;
		if (expect_present)
			r->false_missing += misses;
		if (errs) {
			note_error(r, last_err, op_names[op]);
			r->errors += errs - 1;
		}
	}
	r->elapsed_ns = clock_ns() - start_ns;
	r->cpu_ns = cpu_time_ns() - start_cpu;
	free(keys);
}

static void run_proc(const struct backend *be, struct shared *sh, int slot, int role)
{
	struct proc_res *r = &sh->r[slot];
	char err[200] = "";
	uint64_t rs = 0x1234567ull ^ ((uint64_t)getpid() << 20) ^ (uint64_t)slot * 0x9E37ull;
	unsigned char *val, *buf;
	void *st;
	int rc;

	r->role = role;
	r->pid = getpid();
	r->cpu = cfg.pin ? pick_cpu(slot) : -1;
	st = be->attach(err, sizeof(err));
	if (!st) {
		proc_fail(r, err);
		__atomic_add_fetch(&sh->ready, 1, __ATOMIC_RELEASE);
		_exit(1);
	}
	if (!be->shared && (rc = preload(be, st, err, sizeof(err))) != 0) {
		proc_fail(r, err);
		__atomic_add_fetch(&sh->ready, 1, __ATOMIC_RELEASE);
		_exit(1);
	}
	val = aligned_alloc(64, round_up(cfg.vsize + 64, 64));
	buf = aligned_alloc(64, round_up(cfg.vsize + 64, 64));
	if (!val || !buf) {
		proc_fail(r, "out of memory");
		__atomic_add_fetch(&sh->ready, 1, __ATOMIC_RELEASE);
		_exit(1);
	}
	memset(val, 0, cfg.vsize + 64);
	memset(buf, 0, cfg.vsize + 64);
	__atomic_add_fetch(&sh->ready, 1, __ATOMIC_RELEASE);
	while (!__atomic_load_n(&sh->go, __ATOMIC_ACQUIRE))
		usleep(50);

	/* Readers warm up with reads only; writers do not (they would write). */
	if (role == ROLE_READER && cfg.warmup) {
		run_loop(be, st, sh, slot, role, cfg.warmup, false, val, buf, &rs);
		if (r->errors) {
			proc_fail(r, r->err);
			_exit(1);
		}
	}
	uint64_t limit = cfg.duration > 0 ? 0 : cfg.ops;

	if (role == ROLE_WRITER && cfg.readers > 0)
		limit = 0;       /* writers run until the readers are done */
	if (role == ROLE_READER && cfg.batch > 1)
		run_batch(be, st, sh, slot, limit, buf, &rs);
	else
		run_loop(be, st, sh, slot, role, limit, true, val, buf, &rs);
	be->detach(st);
	_exit(0);
}

/* ------------------------------------------------------------------ */
/* Reporting                                                            */
/* ------------------------------------------------------------------ */

struct row {
	char scope[16];
	const char *role;
	enum op_kind op;
	const struct hist *h;
	double ops_per_s, cpu_ops_per_s;
	uint64_t reads, hits, misses, torn, foreign, false_missing, errors;
	int cpu;
};

static const char *role_name(int role)
{
	return role == ROLE_READER ? "reader" : "writer";
}

static void print_num(char *out, size_t n, double v)
{
	if (v >= 1e9)
		snprintf(out, n, "%.2fG", v / 1e9);
	else if (v >= 1e6)
		snprintf(out, n, "%.2fM", v / 1e6);
	else if (v >= 1e3)
		snprintf(out, n, "%.1fk", v / 1e3);
	else
		snprintf(out, n, "%.0f", v);
}

static void print_ns(char *out, size_t n, double ns)
{
	if (ns >= 1e6)
		snprintf(out, n, "%.2fms", ns / 1e6);
	else if (ns >= 1e4)
		snprintf(out, n, "%.1fus", ns / 1e3);
	else
		snprintf(out, n, "%.0f", ns);
}

static const double qs[] = { 0.5, 0.9, 0.99, 0.999, 0.9999 };

static void human_row(const struct row *w)
{
	char c[8][24];

	print_num(c[0], sizeof(c[0]), (double)w->h->count);
	print_num(c[1], sizeof(c[1]), w->ops_per_s);
	for (int i = 0; i < 5; i++)
		print_ns(c[2 + i], sizeof(c[2]), rep_ns(hist_quantile(w->h, qs[i])));
	print_ns(c[7], sizeof(c[7]), rep_ns((double)w->h->max));
	printf("%-6s %-6s %-4s %8s %9s %8.0f %8s %8s %8s %8s %8s %8s\n", w->scope, w->role,
	       op_names[w->op], c[0], c[1],
	       w->h->count ? rep_ns(w->h->sum / (double)w->h->count) : 0.0,
	       c[2], c[3], c[4], c[5], c[6], c[7]);
}

static void csv_header(void)
{
	printf("label,backend,op,dist,keys,vsize,readers,writers,write_pct,rate,validate,pinned,"
	       "scope,role,cpu,count,ops_per_s,mean_ns,p50_ns,p90_ns,p99_ns,p999_ns,p9999_ns,"
	       "max_ns,min_ns,reads,hits,misses,torn,foreign,false_missing,errors,"
	       "timer,timer_ovh_ns,subtracted,cpu_ops_per_s\n");
}

static void csv_row(const struct row *w)
{
	const struct hist *h = w->h;

	printf("%s,%s,%s,%s,%" PRIu64 ",%zu,%d,%d,%u,%.0f,%d,%d,%s,%s,%d,%" PRIu64 ",%.0f,%.1f",
	       cfg.label, cfg.backend, op_names[w->op], dist_names[cfg.dist], cfg.keys, cfg.vsize,
	       cfg.readers, cfg.writers, cfg.write_pct, cfg.rate, cfg.validate, cfg.pin, w->scope,
	       w->role, w->cpu, h->count, w->ops_per_s,
	       h->count ? rep_ns(h->sum / (double)h->count) : 0.0);
	for (int i = 0; i < 5; i++)
		printf(",%.1f", rep_ns(hist_quantile(h, qs[i])));
	printf(",%.1f,%.1f,%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64
	       ",%" PRIu64 ",%s,%.2f,%d,%.0f\n",
	       rep_ns((double)h->max), rep_ns((double)h->min), w->reads, w->hits, w->misses, w->torn,
	       w->foreign, w->false_missing, w->errors, use_tsc ? "rdtscp" : "clock_gettime",
	       timer_ovh_ticks * ns_per_tick, cfg.subtract, w->cpu_ops_per_s);
}

static void json_str(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			printf("\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			printf("\\u%04x", *s);
		else
			putchar(*s);
	}
	putchar('"');
}

static void json_row(const struct row *w, bool first)
{
	const struct hist *h = w->h;

	printf("%s\n    {\"scope\": \"%s\", \"role\": \"%s\", \"op\": \"%s\", \"cpu\": %d, "
	       "\"count\": %" PRIu64 ", \"ops_per_s\": %.0f, \"cpu_ops_per_s\": %.0f, \"mean_ns\": %.1f",
	       first ? "" : ",", w->scope, w->role, op_names[w->op], w->cpu, h->count,
	       w->ops_per_s, w->cpu_ops_per_s, h->count ? rep_ns(h->sum / (double)h->count) : 0.0);
	static const char *const qn[] = { "p50", "p90", "p99", "p999", "p9999" };

	for (int i = 0; i < 5; i++)
		printf(", \"%s_ns\": %.1f", qn[i], rep_ns(hist_quantile(h, qs[i])));
	printf(", \"max_ns\": %.1f, \"min_ns\": %.1f, \"reads\": %" PRIu64 ", \"hits\": %" PRIu64
	       ", \"misses\": %" PRIu64 ", \"torn\": %" PRIu64 ", \"foreign\": %" PRIu64
	       ", \"false_missing\": %" PRIu64 ", \"errors\": %" PRIu64 "}",
	       rep_ns((double)h->max), rep_ns((double)h->min), w->reads, w->hits, w->misses,
	       w->torn, w->foreign, w->false_missing, w->errors);
}

/* Percentile distribution of H for plotting: value_ns, percentile, 1/(1-p). */
static void write_percentiles(const char *path, const struct hist *h, enum op_kind op)
{
	FILE *f = fopen(path, "w");
	uint64_t seen = 0;

	if (!f)
		die("cannot write %s: %s", path, strerror(errno));
	fprintf(f, "# value_ns percentile inverse_tail (label %s, backend %s, op %s)\n", cfg.label,
		cfg.backend, op_names[op]);
	for (unsigned i = 0; i < HB_N && h->count; i++) {
		if (!h->b[i])
			continue;
		seen += h->b[i];
		uint64_t lo, w;

		hb_bounds(i, &lo, &w);
		double p = (double)seen / (double)h->count;
		double v = (double)(lo + w - 1);

		if (v > (double)h->max)
			v = (double)h->max;
		if (p >= 1.0)
			p = 1.0 - 1.0 / (double)h->count;
		fprintf(f, "%.1f %.6f %.1f\n", rep_ns(v), p * 100.0, 1.0 / (1.0 - p));
		if (seen == h->count)
			break;
	}
	fclose(f);
}

/* --percentiles-op: which distribution --percentiles writes. */
enum pct_which { PCT_AUTO, PCT_READS, PCT_WRITES };
static enum pct_which pct_which = PCT_AUTO;

static void report(struct shared *sh, int nprocs, const char *pct_path)
{
	static struct hist merged[OP_NKIND];
	struct row rows[MAX_PROCS * OP_NKIND + OP_NKIND];
	int nrows = 0;
	struct row tot = { .scope = "all", .role = "all" };
	double tput[OP_NKIND] = { 0 }, cput[OP_NKIND] = { 0 };

	for (int p = 0; p < nprocs; p++) {
		struct proc_res *r = &sh->r[p];

		tot.reads += r->reads;
		tot.hits += r->hits;
		tot.misses += r->misses;
		tot.torn += r->torn;
		tot.foreign += r->foreign;
		tot.false_missing += r->false_missing;
		tot.errors += r->errors;
		for (int o = 0; o < OP_NKIND; o++) {
			if (!r->h[o].count)
				continue;
			struct row *w = &rows[nrows++];
			double s = r->elapsed_ns ? (double)r->elapsed_ns / 1e9 : 1e-9;

			memset(w, 0, sizeof(*w));
			snprintf(w->scope, sizeof(w->scope), "p%d", p);
			w->role = role_name(r->role);
			w->op = (enum op_kind)o;
			w->h = &r->h[o];
			w->ops_per_s = (double)r->h[o].count / s;
			w->cpu_ops_per_s = r->cpu_ns ? (double)r->h[o].count / ((double)r->cpu_ns / 1e9) : 0;
			cput[o] += w->cpu_ops_per_s;
			w->cpu = r->cpu;
			w->reads = r->reads;
			w->hits = r->hits;
			w->misses = r->misses;
			w->torn = r->torn;
			w->foreign = r->foreign;
			w->false_missing = r->false_missing;
			w->errors = r->errors;
			tput[o] += w->ops_per_s;
			hist_merge(&merged[o], &r->h[o]);
		}
	}
	int first_all = nrows;

	for (int o = 0; o < OP_NKIND; o++) {
		if (!merged[o].count)
			continue;
		struct row *w = &rows[nrows++];

		*w = tot;
		w->op = (enum op_kind)o;
		w->h = &merged[o];
		w->ops_per_s = tput[o];
		w->cpu_ops_per_s = cput[o];
		w->cpu = -1;
	}
	if (pct_path) {
		/* The reads' distribution when there are reads, else the writes',
		 * unless --percentiles-op says which: a plot of sets must never
		 * show the reads of a reader that ran beside the writer. */
		enum op_kind o = pct_which == PCT_READS ? cfg.read_op
			: pct_which == PCT_WRITES ? cfg.write_op
			: merged[cfg.read_op].count && cfg.readers ? cfg.read_op : cfg.write_op;

		if (!merged[o].count)
			die("--percentiles: no %s was timed", op_names[o]);
		write_percentiles(pct_path, &merged[o], o);
	}

	if (cfg.out == OUT_CSV) {
		if (cfg.csv_header)
			csv_header();
		for (int i = 0; i < nrows; i++)
			csv_row(&rows[i]);
	} else if (cfg.out == OUT_JSON) {
		printf("{\n  \"label\": ");
		json_str(cfg.label);
		printf(",\n  \"config\": {\"backend\": \"%s\", \"read_op\": \"%s\", \"write_op\": \"%s\", "
		       "\"keys\": %" PRIu64 ", \"value_size\": %zu, \"dist\": \"%s\", \"zipf_s\": %.2f, "
		       "\"hot_keys\": %" PRIu64 ", \"readers\": %d, \"writers\": %d, \"write_pct\": %u, "
		       "\"rate\": %.0f, \"ops\": %" PRIu64 ", \"duration_s\": %.3f, \"pinned\": %s, "
		       "\"validate\": %s, \"evict\": %s, \"checksum\": %s, \"memory\": %" PRIu64
		       "},\n",
		       cfg.backend, op_names[cfg.read_op], op_names[cfg.write_op], cfg.keys, cfg.vsize,
		       dist_names[cfg.dist], cfg.zipf_s, cfg.hot_keys, cfg.readers, cfg.writers,
		       cfg.write_pct, cfg.rate, cfg.ops, cfg.duration, cfg.pin ? "true" : "false",
		       cfg.validate ? "true" : "false", cfg.evict ? "true" : "false",
		       cfg.checksum ? "true" : "false", cfg.memory);
		printf("  \"timer\": {\"source\": \"%s\", \"ghz\": %.4f, \"overhead_ns\": %.2f, "
		       "\"overhead_min_ns\": %.2f, \"step_ns\": %.2f, \"subtracted\": %s},\n",
		       use_tsc ? "rdtscp" : "clock_gettime", 1.0 / ns_per_tick,
		       timer_ovh_ticks * ns_per_tick, timer_ovh_min_ticks * ns_per_tick,
		       (double)timer_res_ticks * ns_per_tick, cfg.subtract ? "true" : "false");
		printf("  \"validation\": {\"reads\": %" PRIu64 ", \"hits\": %" PRIu64
		       ", \"misses\": %" PRIu64 ", \"torn\": %" PRIu64 ", \"foreign\": %" PRIu64
		       ", \"false_missing\": %" PRIu64 ", \"errors\": %" PRIu64 ", \"checked\": %s},\n",
		       tot.reads, tot.hits, tot.misses, tot.torn, tot.foreign, tot.false_missing,
		       tot.errors, cfg.validate ? "true" : "false");
		printf("  \"results\": [");
		for (int i = 0; i < nrows; i++)
			json_row(&rows[i], i == 0);
		printf("\n  ]\n}\n");
	} else {
		printf("shm-bench %s  backend %s  keys %" PRIu64 "  value %zu B  dist %s", cfg.label,
		       cfg.backend, cfg.keys, cfg.vsize, dist_names[cfg.dist]);
		if (cfg.dist == DIST_ZIPF)
			printf(" (s=%.2f)", cfg.zipf_s);
		printf("  readers %d (%s%s%s)  writers %d (%s", cfg.readers, op_names[cfg.read_op],
		       cfg.write_pct ? ", writes " : "", cfg.write_pct ? op_names[cfg.write_op] : "",
		       cfg.writers, op_names[cfg.write_op]);
		if (cfg.rate > 0)
			printf(" at %.0f/s", cfg.rate);
		printf(")%s%s%s\n", cfg.pin ? "  pinned" : "", cfg.evict ? "  evicting" : "",
		       cfg.checksum ? "  checksums" : "");
		printf("timer: %s, %.3f GHz, step %.1f ns, overhead %.1f ns median (min %.1f), %s\n",
		       use_tsc ? "rdtscp" : "clock_gettime", 1.0 / ns_per_tick,
		       (double)timer_res_ticks * ns_per_tick,
		       timer_ovh_ticks * ns_per_tick, timer_ovh_min_ticks * ns_per_tick,
		       cfg.subtract ? "subtracted from every latency below" : "NOT subtracted");
		printf("%-6s %-6s %-4s %8s %9s %8s %8s %8s %8s %8s %8s %8s   (ns unless marked)\n",
		       "scope", "role", "op", "count", "ops/s", "mean", "p50", "p90", "p99", "p99.9",
		       "p99.99", "max");
		for (int i = 0; i < nrows; i++)
			if (cfg.per_proc || nprocs > 1 || i >= first_all)
				human_row(&rows[i]);
		printf("validation%s: reads %" PRIu64 "  hits %" PRIu64 "  misses %" PRIu64
		       "  torn %" PRIu64 "  foreign %" PRIu64 "  falsely-missing %" PRIu64
		       "  errors %" PRIu64 "\n",
		       cfg.validate ? "" : " (values not checked; --validate)", tot.reads, tot.hits,
		       tot.misses, tot.torn, tot.foreign, tot.false_missing, tot.errors);
	}
	fflush(stdout);
}

/* ------------------------------------------------------------------ */
/* Parent                                                               */
/* ------------------------------------------------------------------ */

static pid_t kids[MAX_PROCS];
static int nkids;
static const struct backend *active;

static void on_signal(int sig)
{
	for (int i = 0; i < nkids; i++)
		if (kids[i] > 0)
			kill(kids[i], SIGKILL);
	if (active && active->teardown && active == &backends[0] && cfg.seg[0])
		tc_unlink(cfg.seg);
	signal(sig, SIG_DFL);
	raise(sig);
}

static void usage(FILE *f)
{
	fprintf(f,
"usage: shm-bench [options]\n"
"  -b, --backend NAME     tickcache (default), array, rculfhash, mutexshm, redis-unix,\n"
"                         redis-tcp, memcached (--list shows the ones built in)\n"
"  -o, --op OP            readers' op: get (default) or peek; or set/add for a\n"
"                         write-only run (then -r 0 -w M is implied when -w is 0)\n"
"      --write-op OP      writers' op: set (default) or add (fresh key, deleted after)\n"
"  -k, --keys N           key count (default 100000)\n"
"  -s, --value-size N     bytes (default 64; 1024, 16384 ...)\n"
"  -d, --dist D           uniform, zipf (default, s=0.99), hot\n"
"      --zipf-s S         Zipf exponent (default 0.99)\n"
"      --hot-keys N       keys of the hot set (default 1)\n"
"  -m, --mix PCT          percent of writes inside reader processes (default 0)\n"
"  -r, --readers N        reader processes (default 1)\n"
"  -w, --writers M        writer processes (default 0); they run until the readers end\n"
"      --rate R           ops/s of each writer (default: as fast as it can)\n"
"  -n, --ops N            ops per reader (default 1000000)\n"
"  -t, --duration SEC     run for SEC seconds instead of --ops\n"
"      --warmup N         untimed reads before the run (default 20000)\n"
"      --batch N          readers time N reads at once and record their mean\n"
"                         (resolves costs below the timer's step; no --validate,\n"
"                         no --mix)\n"
"      --pin              pin process i to the i-th allowed CPU\n"
"  -V, --validate         values carry key/version/checksum; count torn, foreign,\n"
"                         falsely-missing reads\n"
"      --memory BYTES     tickcache/mutexshm arena (K/M/G suffix; default: all keys fit)\n"
"      --entries N        tickcache/mutexshm entry capacity (default keys*1.25+4096)\n"
"      --evict            tickcache: TC_EVICT_LRU (misses are then not 'false')\n"
"      --checksum         tickcache: TC_CHECKSUM (every value checksummed, verified\n"
"                         on every read)\n"
"      --no-preload       start from an empty store\n"
"      --clock            use clock_gettime(CLOCK_MONOTONIC) instead of rdtscp\n"
"      --raw              do not subtract the timer's overhead\n"
"      --csv              CSV (with --csv-header: the header line first)\n"
"      --json             JSON\n"
"      --per-proc         per-process rows in the human table also for one process\n"
"      --percentiles FILE the merged read (or write) distribution, for gnuplot\n"
"      --percentiles-op read|write   which one (default: the reads when readers run)\n"
"      --label TEXT       name of the run in the output\n"
"      --redis-socket P   (default /tmp/shm-bench-redis.sock)\n"
"      --redis-host H / --redis-port N     (default 127.0.0.1:6379)\n"
"      --memcached-host H / --memcached-port N (default 127.0.0.1:11211)\n"
"      --list             list the backends built in\n"
"Exit status: 0 ok; 1 a process failed or a validating run saw torn, foreign or\n"
"falsely-missing reads; 2 bad usage.\n");
}

static uint64_t parse_u64(const char *s, const char *what)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);

	if (errno || end == s || *s == '-')
		die("bad %s '%s'", what, s);
	switch (*end) {
	case 'k': case 'K': v <<= 10; end++; break;
	case 'm': case 'M': v <<= 20; end++; break;
	case 'g': case 'G': v <<= 30; end++; break;
	default: break;
	}
	if (*end)
		die("bad %s '%s'", what, s);
	return v;
}

static double parse_dbl(const char *s, const char *what)
{
	char *end;
	double v = strtod(s, &end);

	if (end == s || *end || !(v >= 0))
		die("bad %s '%s'", what, s);
	return v;
}

static enum op_kind parse_op(const char *s)
{
	for (int i = 0; i < OP_NKIND; i++)
		if (strcmp(s, op_names[i]) == 0)
			return (enum op_kind)i;
	die("unknown op '%s' (get, peek, set, add)", s);
}

enum {
	O_ZIPF = 256, O_HOT, O_RATE, O_WARMUP, O_PIN, O_MEMORY, O_ENTRIES, O_EVICT, O_NOPRE,
	O_CLOCK, O_RAW, O_CSV, O_CSVH, O_JSON, O_PCT, O_PCTOP, O_LABEL, O_RSOCK, O_RHOST, O_RPORT,
	O_MHOST, O_MPORT, O_LIST, O_WOP, O_PERPROC, O_BATCH, O_CSUM,
};

static const struct option longopts[] = {
	{ "backend", 1, 0, 'b' }, { "op", 1, 0, 'o' }, { "write-op", 1, 0, O_WOP },
	{ "keys", 1, 0, 'k' }, { "value-size", 1, 0, 's' }, { "dist", 1, 0, 'd' },
	{ "zipf-s", 1, 0, O_ZIPF }, { "hot-keys", 1, 0, O_HOT }, { "mix", 1, 0, 'm' },
	{ "readers", 1, 0, 'r' }, { "writers", 1, 0, 'w' }, { "rate", 1, 0, O_RATE },
	{ "ops", 1, 0, 'n' }, { "duration", 1, 0, 't' }, { "warmup", 1, 0, O_WARMUP },
	{ "pin", 0, 0, O_PIN }, { "validate", 0, 0, 'V' }, { "memory", 1, 0, O_MEMORY },
	{ "entries", 1, 0, O_ENTRIES }, { "evict", 0, 0, O_EVICT }, { "no-preload", 0, 0, O_NOPRE },
	{ "checksum", 0, 0, O_CSUM },
	{ "clock", 0, 0, O_CLOCK }, { "raw", 0, 0, O_RAW }, { "csv", 0, 0, O_CSV },
	{ "csv-header", 0, 0, O_CSVH }, { "json", 0, 0, O_JSON }, { "percentiles", 1, 0, O_PCT },
	{ "percentiles-op", 1, 0, O_PCTOP },
	{ "label", 1, 0, O_LABEL }, { "redis-socket", 1, 0, O_RSOCK },
	{ "redis-host", 1, 0, O_RHOST }, { "redis-port", 1, 0, O_RPORT },
	{ "memcached-host", 1, 0, O_MHOST }, { "memcached-port", 1, 0, O_MPORT },
	{ "list", 0, 0, O_LIST }, { "batch", 1, 0, O_BATCH }, { "per-proc", 0, 0, O_PERPROC }, { "help", 0, 0, 'h' },
	{ 0, 0, 0, 0 },
};

int main(int argc, char **argv)
{
	const char *pct_path = NULL;
	bool op_given_write = false;
	char err[256] = "";
	int c, rc = 0;

	while ((c = getopt_long(argc, argv, "b:o:k:s:d:m:r:w:n:t:Vh", longopts, NULL)) != -1) {
		switch (c) {
		case 'b': cfg.backend = optarg; break;
		case 'o': {
			enum op_kind o = parse_op(optarg);

			if (o == OP_GET || o == OP_PEEK) {
				cfg.read_op = o;
			} else {
				cfg.write_op = o;
				op_given_write = true;
			}
			break;
		}
		case O_WOP:
			cfg.write_op = parse_op(optarg);
			if (cfg.write_op != OP_SET && cfg.write_op != OP_ADD)
				die("--write-op is set or add");
			break;
		case 'k': cfg.keys = parse_u64(optarg, "key count"); break;
		case 's': cfg.vsize = parse_u64(optarg, "value size"); break;
		case 'd':
			if (!strcmp(optarg, "uniform"))
				cfg.dist = DIST_UNIFORM;
			else if (!strcmp(optarg, "zipf"))
				cfg.dist = DIST_ZIPF;
			else if (!strcmp(optarg, "hot") || !strcmp(optarg, "hot-key"))
				cfg.dist = DIST_HOT;
			else
				die("unknown distribution '%s' (uniform, zipf, hot)", optarg);
			break;
		case O_ZIPF: cfg.zipf_s = parse_dbl(optarg, "zipf exponent"); break;
		case O_HOT: cfg.hot_keys = parse_u64(optarg, "hot key count"); break;
		case 'm': cfg.write_pct = (unsigned)parse_u64(optarg, "write percent"); break;
		case 'r': cfg.readers = (int)parse_u64(optarg, "reader count"); break;
		case 'w': cfg.writers = (int)parse_u64(optarg, "writer count"); break;
		case O_RATE: cfg.rate = parse_dbl(optarg, "rate"); break;
		case 'n': cfg.ops = parse_u64(optarg, "op count"); break;
		case 't': cfg.duration = parse_dbl(optarg, "duration"); break;
		case O_WARMUP: cfg.warmup = parse_u64(optarg, "warm-up count"); break;
		case O_BATCH: cfg.batch = (unsigned)parse_u64(optarg, "batch size"); break;
		case O_PIN: cfg.pin = true; break;
		case 'V': cfg.validate = true; break;
		case O_MEMORY: cfg.memory = parse_u64(optarg, "memory"); break;
		case O_ENTRIES: cfg.entries = parse_u64(optarg, "entries"); break;
		case O_EVICT: cfg.evict = true; break;
		case O_CSUM: cfg.checksum = true; break;
		case O_NOPRE: cfg.no_preload = true; break;
		case O_CLOCK: cfg.force_clock = true; break;
		case O_RAW: cfg.subtract = false; break;
		case O_CSV: cfg.out = OUT_CSV; break;
		case O_CSVH: cfg.out = OUT_CSV; cfg.csv_header = true; break;
		case O_JSON: cfg.out = OUT_JSON; break;
		case O_PCT: pct_path = optarg; break;
		case O_PCTOP:
			if (!strcmp(optarg, "read"))
				pct_which = PCT_READS;
			else if (!strcmp(optarg, "write"))
				pct_which = PCT_WRITES;
			else
				die("--percentiles-op wants read or write, not '%s'", optarg);
			break;
		case O_LABEL: cfg.label = optarg; break;
		case O_RSOCK: cfg.redis_sock = optarg; break;
		case O_RHOST: cfg.redis_host = optarg; break;
		case O_RPORT: cfg.redis_port = (int)parse_u64(optarg, "port"); break;
		case O_MHOST: cfg.mc_host = optarg; break;
		case O_MPORT: cfg.mc_port = (int)parse_u64(optarg, "port"); break;
		case O_PERPROC: cfg.per_proc = true; break;
		case O_LIST:
			for (size_t i = 0; i < NBACKENDS; i++)
				printf("%-11s %s\n", backends[i].name, backends[i].about);
			return 0;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc)
		die("unexpected argument '%s'", argv[optind]);
	for (size_t i = 0; i < NBACKENDS; i++)
		if (!strcmp(cfg.backend, backends[i].name))
			active = &backends[i];
	if (!active)
		die("backend '%s' is not built in (--list)", cfg.backend);
	if (op_given_write && cfg.writers == 0) {
		cfg.writers = cfg.readers ? cfg.readers : 1;
		cfg.readers = 0;
	}
	if (!(active->ops & OPBIT(cfg.read_op)) && cfg.readers)
		die("backend %s has no %s", active->name, op_names[cfg.read_op]);
	if (!(active->ops & OPBIT(cfg.write_op)) && (cfg.writers || cfg.write_pct))
		die("backend %s has no %s", active->name, op_names[cfg.write_op]);
	if (cfg.keys < 1 || cfg.keys > (1ull << 32))
		die("--keys must be 1..2^32");
	if (cfg.vsize > TC_VALUE_MAX)
		die("--value-size above %u", TC_VALUE_MAX);
	if (cfg.validate && cfg.vsize < VHDR_SIZE)
		die("--validate needs values of at least %d bytes", VHDR_SIZE);
	if (cfg.readers + cfg.writers < 1 || cfg.readers + cfg.writers > MAX_PROCS)
		die("1..%d processes in all", MAX_PROCS);
	if (cfg.batch < 1 || cfg.batch > 4096)
		die("--batch must be 1..4096");
	if (cfg.batch > 1 && (cfg.validate || cfg.write_pct))
		die("--batch does not combine with --validate or --mix");
	if (cfg.write_pct > 100)
		die("--mix is a percentage");
	if (cfg.hot_keys < 1 || cfg.hot_keys > cfg.keys)
		die("--hot-keys must be 1..keys");
	if (cfg.readers == 0 && cfg.duration <= 0 && cfg.ops == 0)
		die("writers alone need --ops or --duration");
	if (cfg.dist == DIST_ZIPF) {
		if (cfg.zipf_s <= 0 || cfg.zipf_s == 1.0)
			die("--zipf-s must be > 0 and != 1");
		zipf_init(cfg.keys, cfg.zipf_s);
	}

	timer_init();
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGPIPE, SIG_IGN);

	if (active->shared) {
		void *st;

		if (active->setup && (rc = active->setup(err, sizeof(err))) != 0)
			die("%s", err);
		st = active->attach(err, sizeof(err));
		if (!st) {
			if (active->teardown)
				active->teardown();
			die("%s", err);
		}
		rc = preload(active, st, err, sizeof(err));
		active->detach(st);
		if (rc) {
			if (active->teardown)
				active->teardown();
			die("%s", err);
		}
	}

	int nprocs = cfg.readers + cfg.writers;
	size_t shbytes = sizeof(struct shared) + (size_t)nprocs * sizeof(struct proc_res);
	struct shared *sh = mmap(NULL, shbytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
				 -1, 0);

	if (sh == MAP_FAILED)
		die("mmap: %s", strerror(errno));
	fflush(NULL);
	for (int i = 0; i < nprocs; i++) {
		int role = i < cfg.readers ? ROLE_READER : ROLE_WRITER;
		pid_t pid = fork();

		if (pid < 0) {
			on_signal(SIGTERM);
		} else if (pid == 0) {
			signal(SIGINT, SIG_DFL);
			signal(SIGTERM, SIG_DFL);
			run_proc(active, sh, i, role);
		}
		kids[nkids++] = pid;
	}
	while (__atomic_load_n(&sh->ready, __ATOMIC_ACQUIRE) < nprocs)
		usleep(200);
	__atomic_store_n(&sh->go, 1, __ATOMIC_RELEASE);

	int readers_left = cfg.readers, failed = 0;

	for (int left = nprocs; left > 0; left--) {
		int status;
		pid_t pid = wait(&status);

		if (pid < 0)
			break;
		for (int i = 0; i < nkids; i++) {
			if (kids[i] != pid)
				continue;
			kids[i] = 0;
			if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
				failed++;
				fprintf(stderr, "shm-bench: process %d (%s) %s %d: %s\n", i,
					role_name(i < cfg.readers ? ROLE_READER : ROLE_WRITER),
					WIFEXITED(status) ? "exited" : "killed by signal",
					WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status),
					sh->r[i].err[0] ? sh->r[i].err : "no message");
			} else if (sh->r[i].errors) {
				fprintf(stderr, "shm-bench: process %d: %" PRIu64 " errors, first %s\n",
					i, sh->r[i].errors, sh->r[i].err);
			}
			if (i < cfg.readers && --readers_left == 0)
				__atomic_store_n(&sh->stop, 1, __ATOMIC_RELEASE);
		}
		if (failed && readers_left > 0)
			__atomic_store_n(&sh->stop, 1, __ATOMIC_RELEASE);
	}
	if (active->teardown)
		active->teardown();
	report(sh, nprocs, pct_path);

	uint64_t bad = 0;

	for (int i = 0; i < nprocs; i++)
		bad += sh->r[i].torn + sh->r[i].foreign + sh->r[i].false_missing;
	if (failed || (cfg.validate && bad))
		return 1;
	return 0;
}
