/* SPDX-License-Identifier: MIT */
/*
 * test_stress.c - writers and readers hammer one segment at once.
 *
 * Writers set, add, delete, compare-and-set, re-expire and increment keys
 * "k<i>" with self-checking values (key index, writer id, sequence, varying
 * length, checksum over the rest: see blackbox.h), and run grace periods
 * (tc_reclaim) that race each other and the readers.  Readers verify every
 * value they get or peek: zero torn, mixed or foreign values, and versions of
 * a key never go backwards for one reader.  Read sections peek several keys
 * and check the earlier pointers again before leaving.
 *
 * Afterwards, in a quiet segment: the shared counter equals the sum of the
 * successful increments, tc_get_stats' entry count equals the keys found by
 * probing, memory_used agrees with the live values after tc_reclaim, and
 * after deleting everything and sweeping, entries and memory_used are 0.
 *
 * Two variants: processes (fork; each child opens its own handle and
 * reports through its exit status) and threads of one process sharing a
 * handle (so `make tsan` sees the code's inter-thread ordering).  Both run for
 * a fixed time; nothing asserts timing.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <sys/mman.h>

#include "tickcache.h"
#include "blackbox.h"

#if defined(__SANITIZE_THREAD__)
#define BB_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define BB_TSAN 1
#endif
#endif

#define NKEYS      256
#define NWRITERS   2
#define NREADERS   2
#define RUN_SECS   2.5
#define VBUF       8192
#define CTR_KEY    "ctr"
/* Stable keys "s<i>": set before the run, only ever replaced (never deleted),
 * so a miss on one is a violation (a spurious miss hides a reader that lost
 * its entry to early reuse).  Their values carry key index STABLE_BASE + i. */
#define NSTABLE     16
#define STABLE_BASE 100000u

/* The prefixes of the keys "k<i>" and "s<i>" (2..4 bytes): the variants
 * below lengthen them to 9..11 bytes and to 25..27, the key lengths that
 * tc_get, tc_peek and tc_get_many read in copies of their own (9..16 and
 * 17..32 bytes: their hash and key compare written out). */
static const char *kpre = "k", *spre = "s";

/* Results shared by all workers (MAP_SHARED for the process variant). */
struct results {
	uint64_t incrs[NWRITERS];     /* successful tc_incr of CTR_KEY per writer */
	uint64_t writes[NWRITERS];
	uint64_t reads[NREADERS];
	uint64_t peeks[NREADERS];
	uint64_t violations;          /* atomically added */
};

struct worker {
	const char *name;   /* segment, when the worker opens its own handle */
	tc_cache *c;        /* shared handle (thread variant), or NULL */
	uint32_t id;
	double deadline;    /* CLOCK_MONOTONIC seconds */
	struct results *res;
	pthread_t thread;
};

static void violation(struct results *res, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Violations seen by this process (the exit status of a child). */
static unsigned own_violations;

static void violation(struct results *res, const char *fmt, ...)
{
	va_list ap;
	char msg[512];

	__atomic_add_fetch(&res->violations, 1, __ATOMIC_RELAXED);
	own_violations++;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "[pid %d] VIOLATION: %s\n", (int)getpid(), msg);
}

static size_t value_len(uint64_t *rng)
{
	uint64_t r = bb_rand(rng);

	if (r % 16 == 0)
		return BB_HDR + (size_t)(r >> 8) % 6000;   /* larger classes */
	return BB_HDR + (size_t)(r >> 8) % 600;
}

/* check_value - verify a value read for key I; counts a violation if bad. */
static int check_value(struct results *res, const char *what, unsigned i,
		       const void *val, const tc_meta *m)
{
	const char *why;

	if (m->type != BB_TYPE) {
		violation(res, "%s k%u: type %#x", what, i, m->type);
		return -1;
	}
	why = bb_check(val, m->len, i, NWRITERS);
	if (why) {
		violation(res, "%s k%u (len %zu): %s", what, i, m->len, why);
		return -1;
	}
	return 0;
}

static void run_writer(tc_cache *c, struct worker *w)
{
	unsigned char *val = malloc(VBUF), *buf = malloc(VBUF);
	uint64_t rng = 0x1234567ull + w->id * 7919ull, seq = 0, ops = 0;
	struct results *res = w->res;
	char key[32];
	unsigned i, op;
	size_t kl, len;
	tc_meta m;
	int rc;

	if (!val || !buf) {
		violation(res, "writer %u: out of memory", w->id);
		goto out;
	}
	for (;;) {
		if ((ops & 63) == 0 && fx_mono_s() >= w->deadline)
			break;
		ops++;
		i = (unsigned)(bb_rand(&rng) % NKEYS);
		kl = bb_key(key, sizeof(key), kpre, i);
		op = (unsigned)(bb_rand(&rng) % 100);
		len = value_len(&rng);
		if (op < 8) {
			i %= NSTABLE;
			kl = bb_key(key, sizeof(key), spre, i);
			bb_fill(val, len, STABLE_BASE + i, w->id, ++seq);
			rc = tc_set(c, key, kl, val, len, BB_TYPE, 0);
			if (rc != 0)
				violation(res, "writer %u: set s%u: %s", w->id, i, tc_strerror(rc));
		} else if (op < 60) {
			bb_fill(val, len, i, w->id, ++seq);
			rc = tc_set(c, key, kl, val, len, BB_TYPE, 0);
			if (rc != 0)
				violation(res, "writer %u: set k%u: %s", w->id, i, tc_strerror(rc));
		} else if (op < 70) {
			bb_fill(val, len, i, w->id, ++seq);
			rc = tc_add(c, key, kl, val, len, BB_TYPE, 0);
			if (rc != 0 && rc != -EEXIST)
				violation(res, "writer %u: add k%u: %s", w->id, i, tc_strerror(rc));
		} else if (op < 80) {
			rc = tc_del(c, key, kl);
			if (rc != 0 && rc != -ENOENT)
				violation(res, "writer %u: del k%u: %s", w->id, i, tc_strerror(rc));
		} else if (op < 88) {
			rc = tc_get(c, key, kl, buf, VBUF, &m);
			if (rc == -ENOENT)
				continue;
			if (rc != 0) {
				violation(res, "writer %u: get k%u: %s", w->id, i, tc_strerror(rc));
				continue;
			}
			check_value(res, "writer get", i, buf, &m);
			bb_fill(val, len, i, w->id, ++seq);
			rc = tc_cas(c, key, kl, m.version, val, len, BB_TYPE, 0);
			if (rc != 0 && rc != TC_ECONFLICT && rc != -ENOENT)
				violation(res, "writer %u: cas k%u: %s", w->id, i, tc_strerror(rc));
		} else if (op < 92) {
			rc = tc_expire(c, key, kl, 0);
			if (rc != 0 && rc != -ENOENT)
				violation(res, "writer %u: expire k%u: %s", w->id, i, tc_strerror(rc));
		} else if (op < 93) {
			/* Reclaimers racing each other and the readers. */
			uint64_t freed;

			rc = tc_reclaim(c, &freed);
			if (rc != 0)
				violation(res, "writer %u: reclaim: %s", w->id, tc_strerror(rc));
		} else {
			rc = tc_incr(c, CTR_KEY, strlen(CTR_KEY), 1, 0, NULL);
			if (rc == 0)
				res->incrs[w->id]++;
			else
				violation(res, "writer %u: incr: %s", w->id, tc_strerror(rc));
		}
	}
	res->writes[w->id] = ops;
out:
	free(val);
	free(buf);
}

/*
 * One tc_get_many of NMANY random keys (every fourth a stable one, which must
 * hit), or, every other time, a tc_peek_many of them in a read section:
 * every value checks, the count returned is the number of hits, versions of
 * a key never go back.
 */
#define NMANY 20
static void read_many(tc_cache *c, struct worker *w, uint64_t *rng, uint64_t *last,
		      unsigned char *mbuf)
{
	struct results *res = w->res;
	char keys[NMANY][32];
	unsigned idx[NMANY];
	tc_req r[NMANY];
	const void *vals[NMANY];
	bool peek = bb_rand(rng) & 1;
	int n, hits = 0;

	for (unsigned j = 0; j < NMANY; j++) {
		bool stable = j % 4 == 3;
		unsigned i = (unsigned)(bb_rand(rng) % (stable ? NSTABLE : NKEYS));
		idx[j] = stable ? STABLE_BASE + i : i;
		r[j] = (tc_req){ .key = keys[j], .buf = mbuf + (size_t)j * VBUF, .cap = VBUF };
		r[j].klen = bb_key(keys[j], sizeof(keys[j]), stable ? spre : kpre, i);
	}
	if (peek && tc_read_lock(c) != 0) {
		violation(res, "reader %u: read_lock for peek_many", w->id);
		return;
	}
	n = peek ? tc_peek_many(c, r, NMANY, vals) : tc_get_many(c, r, NMANY);
	for (unsigned j = 0; j < NMANY; j++) {
		const void *v = peek ? vals[j] : r[j].buf;
		if (r[j].rc == -ENOENT && idx[j] < STABLE_BASE)
			continue;
		if (r[j].rc != 0) {
			violation(res, "reader %u: %s of %u: %s", w->id,
				  peek ? "peek_many" : "get_many", idx[j], tc_strerror(r[j].rc));
			continue;
		}
		hits++;
		if (check_value(res, peek ? "peek_many" : "get_many", idx[j], v, &r[j].meta) != 0)
			continue;
		if (idx[j] < STABLE_BASE) {
			if (r[j].meta.version < last[idx[j]])
				violation(res, "k%u: version went back %llu -> %llu (many)", idx[j],
					  (unsigned long long)last[idx[j]],
					  (unsigned long long)r[j].meta.version);
			last[idx[j]] = r[j].meta.version;
		}
	}
	if (peek)
		tc_read_unlock(c);
	if (n != hits)
		violation(res, "reader %u: %s returned %d, %d hits", w->id,
			  peek ? "peek_many" : "get_many", n, hits);
}

static void run_reader(tc_cache *c, struct worker *w)
{
	uint64_t rng = 0xabcdefull + w->id * 104729ull, ops = 0, peeks = 0;
	uint64_t *last = calloc(NKEYS, sizeof(*last));
	unsigned char *buf = malloc(VBUF), *mbuf = malloc((size_t)NMANY * VBUF);
	struct results *res = w->res;
	const void *pv[4];
	unsigned char head[4][BB_HDR];
	unsigned pi[4], i, j, n;
	char key[32];
	size_t kl;
	tc_meta m, pm[4];
	int rc;

	if (!buf || !last || !mbuf) {
		violation(res, "reader %u: out of memory", w->id);
		goto out;
	}
	for (;;) {
		if ((ops & 63) == 0 && fx_mono_s() >= w->deadline)
			break;
		ops++;
		i = (unsigned)(bb_rand(&rng) % NKEYS);
		kl = bb_key(key, sizeof(key), kpre, i);
		if (ops % 8 == 4) {
			i %= NSTABLE;
			kl = bb_key(key, sizeof(key), spre, i);
			rc = tc_get(c, key, kl, buf, VBUF, &m);
			if (rc != 0)
				violation(res, "reader %u: get s%u (never deleted): %s", w->id, i,
					  tc_strerror(rc));
			else
				check_value(res, "get", STABLE_BASE + i, buf, &m);
			continue;
		}
		if (ops % 8 == 2) {
			read_many(c, w, &rng, last, mbuf);
			continue;
		}
		if (ops % 8 != 0) {
			rc = tc_get(c, key, kl, buf, VBUF, &m);
			if (rc == -ENOENT)
				continue;
			if (rc != 0) {
				violation(res, "reader %u: get k%u: %s", w->id, i, tc_strerror(rc));
				continue;
			}
			if (check_value(res, "get", i, buf, &m) == 0) {
				if (m.version < last[i])
					violation(res, "k%u: version went back %llu -> %llu", i,
						  (unsigned long long)last[i],
						  (unsigned long long)m.version);
				last[i] = m.version;
			}
			continue;
		}
		/* A read section: peek a few keys, nested once, then re-check. */
		rc = tc_read_lock(c);
		if (rc != 0) {
			violation(res, "reader %u: read_lock: %s", w->id, tc_strerror(rc));
			continue;
		}
		for (n = 0, j = 0; j < 4; j++) {
			pi[n] = (unsigned)(bb_rand(&rng) % NKEYS);
			kl = bb_key(key, sizeof(key), kpre, pi[n]);
			if (j == 2 && tc_read_lock(c) != 0)
				violation(res, "reader %u: nested read_lock", w->id);
			rc = tc_peek(c, key, kl, &pv[n], &pm[n]);
			if (j == 2)
				tc_read_unlock(c);
			if (rc == -ENOENT)
				continue;
			if (rc != 0) {
				violation(res, "reader %u: peek: %s", w->id, tc_strerror(rc));
				continue;
			}
			if (check_value(res, "peek", pi[n], pv[n], &pm[n]) == 0) {
				memcpy(head[n], pv[n], BB_HDR);
				n++;
			}
		}
		for (j = 0; j < n; j++) {
			if (memcmp(head[j], pv[j], BB_HDR) != 0)
				violation(res, "peeked k%u changed inside the read section", pi[j]);
			else
				check_value(res, "peek again", pi[j], pv[j], &pm[j]);
		}
		peeks += n;
		tc_read_unlock(c);
	}
	res->reads[w->id] = ops;
	res->peeks[w->id] = peeks;
out:
	free(buf);
	free(mbuf);
	free(last);
}

/* The worker body: open a handle unless one is shared. */
static int worker_run(struct worker *w, int writer)
{
	tc_cache *c = w->c;
	int rc;

	if (!c) {
		rc = tc_open(&c, w->name, NULL);
		if (rc != 0) {
			violation(w->res, "open: %s", tc_strerror(rc));
			return rc;
		}
	}
	if (writer)
		run_writer(c, w);
	else
		run_reader(c, w);
	if (!w->c)
		tc_close(c);
	return 0;
}

static void *writer_thread(void *arg)
{
	worker_run(arg, 1);
	return NULL;
}

static void *reader_thread(void *arg)
{
	worker_run(arg, 0);
	return NULL;
}

static tc_cache *open_stress(char *name)
{
	tc_opts o = fx_opts(4096, 32u << 20, 64);
	unsigned char val[100];
	tc_cache *c = NULL;
	char key[32];
	unsigned i;
	size_t kl;
	int rc;

	fx_name_at(name, TC_NAME_MAX + 1, __func__);
	rc = tc_open(&c, name, &o);
	if (rc != 0)
		fail_msg("tc_open: %s", tc_strerror(rc));
	for (i = 0; i < NSTABLE; i++) {
		kl = bb_key(key, sizeof(key), spre, i);
		bb_fill(val, sizeof(val), STABLE_BASE + i, 0, 0);
		rc = tc_set(c, key, kl, val, sizeof(val), BB_TYPE, 0);
		if (rc != 0)
			fail_msg("seeding s%u: %s", i, tc_strerror(rc));
	}
	return c;
}

/*
 * verify_quiet - after the run: values, counter, entry count and memory;
 * then delete everything and expect an empty arena.
 */
static void verify_quiet(tc_cache *c, const struct results *res)
{
	unsigned char *buf = malloc(VBUF);
	tc_stats *st = calloc(1, sizeof(*st));
	uint64_t want = 0, live_bytes = 0, classes_bytes = 0, freed;
	unsigned i, found = 0;
	tc_sweep_report rep;
	struct results dummy;
	char key[32];
	int64_t ctr;
	size_t kl;
	tc_meta m;
	int rc, k;

	assert_non_null(buf);
	assert_non_null(st);
	memset(&dummy, 0, sizeof(dummy));
	for (i = 0; i < NWRITERS; i++)
		want += res->incrs[i];
	/* Delta 0 reads the counter (and creates it when no incr ran). */
	assert_int_equal(0, tc_incr(c, CTR_KEY, strlen(CTR_KEY), 0, 0, &ctr));
	assert_int_equal(want, (uint64_t)ctr);
	for (i = 0; i < NKEYS; i++) {
		kl = bb_key(key, sizeof(key), kpre, i);
		rc = tc_get(c, key, kl, buf, VBUF, &m);
		if (rc == -ENOENT)
			continue;
		assert_int_equal(0, rc);
		assert_int_equal(0, check_value(&dummy, "final get", i, buf, &m));
		found++;
		live_bytes += kl + m.len;
	}
	for (i = 0; i < NSTABLE; i++) {
		kl = bb_key(key, sizeof(key), spre, i);
		assert_int_equal(0, tc_get(c, key, kl, buf, VBUF, &m));
		assert_int_equal(0, check_value(&dummy, "final get", STABLE_BASE + i, buf, &m));
		live_bytes += kl + m.len;
	}
	found += NSTABLE;
	live_bytes += strlen(CTR_KEY) + 8;
	assert_true(found > NSTABLE);

	/* With no reader active, one grace period frees every retired block. */
	for (k = 0; k < 10; k++) {
		assert_int_equal(0, tc_reclaim(c, &freed));
		assert_int_equal(0, tc_get_stats(c, st));
		if (st->memory_retired == 0)
			break;
	}
	assert_int_equal(0, st->memory_retired);
	assert_int_equal(found + 1, st->entries);
	for (i = 0; i < st->nclasses && i < TC_NCLASSES; i++)
		classes_bytes += (uint64_t)st->classes[i].size * st->classes[i].used;
	print_message("live: %u keys, %llu bytes of key+value; memory_used %llu; "
		      "class blocks %llu bytes\n", found + 1,
		      (unsigned long long)live_bytes, (unsigned long long)st->memory_used,
		      (unsigned long long)classes_bytes);
	assert_int_equal(classes_bytes, st->memory_used);
	if (st->memory_used < live_bytes ||
	    st->memory_used > 2 * live_bytes + 256ull * (found + 1))
		fail_msg("memory_used %llu disagrees with %llu live bytes in %u entries",
			 (unsigned long long)st->memory_used,
			 (unsigned long long)live_bytes, found + 1);

	/* Delete everything: the arena must come back empty. */
	for (i = 0; i < NKEYS; i++) {
		kl = bb_key(key, sizeof(key), kpre, i);
		rc = tc_del(c, key, kl);
		assert_true(rc == 0 || rc == -ENOENT);
	}
	for (i = 0; i < NSTABLE; i++) {
		kl = bb_key(key, sizeof(key), spre, i);
		assert_int_equal(0, tc_del(c, key, kl));
	}
	assert_int_equal(0, tc_del(c, CTR_KEY, strlen(CTR_KEY)));
	memset(&rep, 0, sizeof(rep));
	assert_int_equal(0, tc_sweep(c, 0, &rep));
	assert_int_equal(0, tc_reclaim(c, &freed));
	assert_int_equal(0, tc_get_stats(c, st));
	assert_int_equal(0, st->entries);
	assert_int_equal(0, st->memory_retired);
	assert_int_equal(0, st->memory_used);
	free(buf);
	free(st);
}

static void print_totals(const char *what, const struct results *res)
{
	uint64_t w = 0, r = 0, p = 0;
	int i;

	for (i = 0; i < NWRITERS; i++)
		w += res->writes[i];
	for (i = 0; i < NREADERS; i++) {
		r += res->reads[i];
		p += res->peeks[i];
	}
	print_message("%s: %llu writer ops, %llu reader ops, %llu peeks checked\n", what,
		      (unsigned long long)w, (unsigned long long)r, (unsigned long long)p);
}

static void test_processes_never_see_torn_values_and_accounting_agrees(void **state)
{
	char name[TC_NAME_MAX + 1];
	tc_cache *c = open_stress(name);
	struct results *res;
	pid_t pids[NWRITERS + NREADERS];
	struct worker w;
	double deadline = fx_mono_s() + RUN_SECS;
	int i, st, bad = 0;

	(void)state;
	res = mmap(NULL, sizeof(*res), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	assert_true(res != MAP_FAILED);
	memset(res, 0, sizeof(*res));
	for (i = 0; i < NWRITERS + NREADERS; i++) {
		pids[i] = fork();
		assert_true(pids[i] >= 0);
		if (pids[i] == 0) {
			alarm(60); /* a hang shows as SIGALRM */
			memset(&w, 0, sizeof(w));
			w.name = name;
			w.res = res;
			w.deadline = deadline;
			w.id = (uint32_t)(i < NWRITERS ? i : i - NWRITERS);
			if (worker_run(&w, i < NWRITERS) != 0)
				_exit(BB_EXIT_SETUP);
			_exit(own_violations ? BB_EXIT_FAIL : BB_EXIT_OK);
		}
	}
	for (i = 0; i < NWRITERS + NREADERS; i++) {
		st = fx_wait(pids[i]);
		if (st != 0) {
			fprintf(stderr, "%s %d exited with status %d\n",
				i < NWRITERS ? "writer" : "reader", i, st);
			bad++;
		}
	}
	print_totals("processes", res);
	assert_int_equal(0, res->violations);
	assert_int_equal(0, bad);
	verify_quiet(c, res);
	munmap(res, sizeof(*res));
	tc_close(c);
}

/* The same with keys of 9..11 bytes, then of 25..27. */
static void test_processes_with_keys_of_9_to_32_bytes(void **state)
{
	static const char *const pre[][2] = { { "stress-k", "stress-s" },
					       { "tradecore:market:quote:k",
						 "tradecore:market:quote:s" } };
	for (size_t i = 0; i < FX_ARRAY_SIZE(pre); i++) {
		kpre = pre[i][0];
		spre = pre[i][1];
		test_processes_never_see_torn_values_and_accounting_agrees(state);
	}
	kpre = "k";
	spre = "s";
}

static void test_threads_never_see_torn_values_and_accounting_agrees(void **state)
{
	char name[TC_NAME_MAX + 1];
	tc_cache *c = open_stress(name);
	struct worker w[NWRITERS + NREADERS + 1];
	struct results *res = calloc(1, sizeof(*res));
	double deadline = fx_mono_s() + RUN_SECS;
	int i, n = NWRITERS + NREADERS;

	(void)state;
	assert_non_null(res);
	memset(w, 0, sizeof(w));
	for (i = 0; i < n; i++) {
		w[i].name = name;
		/*
		 * Writer 0 and reader 0 use their own handle (a second mapping of
		 * the segment); the rest share c.  Under ThreadSanitizer all share
		 * c: TSan tracks memory by virtual address, so it cannot see the
		 * happens-before edges that atomics through one mapping give to
		 * accesses through the other, and reports false races.
		 */
#ifdef BB_TSAN
		w[i].c = c;
#else
		w[i].c = (i == 0 || i == NWRITERS) ? NULL : c;
#endif
		w[i].res = res;
		w[i].deadline = deadline;
		w[i].id = (uint32_t)(i < NWRITERS ? i : i - NWRITERS);
		assert_int_equal(0, pthread_create(&w[i].thread, NULL,
						   i < NWRITERS ? writer_thread : reader_thread,
						   &w[i]));
	}
	for (i = 0; i < n; i++)
		pthread_join(w[i].thread, NULL);
	print_totals("threads", res);
	assert_int_equal(0, res->violations);
	verify_quiet(c, res);
	free(res);
	tc_close(c);
}

/* Racing tc_add of the same fresh key: exactly one wins, in every round. */
#define ADD_ROUNDS 50000
#define ADDERS 6

struct adder {
	tc_cache *c;
	int round;
	int won;
	int *wins;          /* per round, atomically added */
	pthread_barrier_t *bar;
	pthread_t t;
};

static void *adder_main(void *arg)
{
	struct adder *a = arg;
	char key[32];
	size_t kl;
	int r, rc;

	for (r = 0; r < ADD_ROUNDS; r++) {
		kl = bb_key(key, sizeof(key), "add", (unsigned)r);
		pthread_barrier_wait(a->bar);
		rc = tc_add(a->c, key, kl, &a->round, sizeof(a->round), 0u, 0);
		if (rc == 0) {
			a->won++;
			__atomic_add_fetch(&a->wins[r], 1, __ATOMIC_RELAXED);
		} else if (rc != -EEXIST)
			a->won += 1000000; /* poisons the total */
	}
	return NULL;
}

static void test_racing_adds_of_one_key_have_exactly_one_winner(void **state)
{
	char name[TC_NAME_MAX + 1];
	tc_opts o = fx_opts(2 * ADD_ROUNDS, 16u << 20, 64);
	tc_cache *c = NULL;
	struct adder a[ADDERS];
	pthread_barrier_t bar;
	tc_stats *st = calloc(1, sizeof(*st));
	int *wins = calloc(ADD_ROUNDS, sizeof(int));
	int i, total = 0, rounds_bad = 0;

	(void)state;
	assert_non_null(st);
	assert_non_null(wins);
	fx_name(name);
	assert_int_equal(0, tc_open(&c, name, &o));
	pthread_barrier_init(&bar, NULL, ADDERS);
	for (i = 0; i < ADDERS; i++) {
		a[i].c = c;
		a[i].round = i;
		a[i].won = 0;
		a[i].bar = &bar;
		a[i].wins = wins;
		assert_int_equal(0, pthread_create(&a[i].t, NULL, adder_main, &a[i]));
	}
	for (i = 0; i < ADDERS; i++) {
		pthread_join(a[i].t, NULL);
		total += a[i].won;
	}
	pthread_barrier_destroy(&bar);
	for (i = 0; i < ADD_ROUNDS; i++)
		if (wins[i] != 1 && rounds_bad++ < 10)
			print_message("round %d: %d of %d racing tc_add returned 0\n", i, wins[i],
				      ADDERS);
	assert_int_equal(0, rounds_bad);
	assert_int_equal(ADD_ROUNDS, total);
	assert_int_equal(0, tc_get_stats(c, st));
	assert_int_equal(ADD_ROUNDS, st->entries);
	assert_int_equal(ADD_ROUNDS, st->adds);
	free(wins);
	free(st);
	tc_close(c);
}

/*
 * One key, writers that set, delete and re-add it, and a reader that checks
 * the version it sees never goes back (a change always gets a version above
 * any the key had, also across delete and re-insert).
 */
#define VKEYS 2
#define VWRITERS 6

struct vworker {
	tc_cache *c;
	unsigned id;
	double deadline;
	uint64_t bad;        /* version regressions (reader) or bad codes */
	uint64_t ops;
	pthread_t t;
};

static void *vwriter_main(void *arg)
{
	struct vworker *w = arg;
	uint64_t rng = 0x51ed270b27ull * (w->id + 1);
	char key[16];
	size_t kl;
	int rc, op;

	while (fx_mono_s() < w->deadline) {
		kl = bb_key(key, sizeof(key), "v", (unsigned)(bb_rand(&rng) % VKEYS));
		op = (int)(bb_rand(&rng) % 4);
		if (op < 2) {
			rc = tc_set(w->c, key, kl, "x", 1, 0u, 0);
		} else if (op == 2) {
			rc = tc_del(w->c, key, kl);
			rc = rc == -ENOENT ? 0 : rc;
		} else {
			rc = tc_add(w->c, key, kl, "y", 1, 0u, 0);
			rc = rc == -EEXIST ? 0 : rc;
		}
		if (rc != 0 && w->bad++ < 5)
			print_message("writer %u: %s\n", w->id, tc_strerror(rc));
		w->ops++;
	}
	return NULL;
}

static void *vreader_main(void *arg)
{
	struct vworker *w = arg;
	uint64_t last[VKEYS] = { 0 };
	char key[16], buf[8];
	unsigned i;
	tc_meta m;
	size_t kl;

	while (fx_mono_s() < w->deadline) {
		for (i = 0; i < VKEYS; i++) {
			kl = bb_key(key, sizeof(key), "v", i);
			if (tc_get(w->c, key, kl, buf, sizeof(buf), &m) != 0)
				continue;
			if (m.version < last[i]) {
				if (w->bad++ < 5)
					print_message("v%u: version %llu after %llu\n", i,
						      (unsigned long long)m.version,
						      (unsigned long long)last[i]);
			} else {
				last[i] = m.version;
			}
			w->ops++;
		}
	}
	return NULL;
}

static void test_versions_never_go_back_under_racing_writers(void **state)
{
	char name[TC_NAME_MAX + 1];
	tc_cache *c = open_stress(name);
	struct vworker w[VWRITERS + 1];
	double deadline = fx_mono_s() + 2.0;
	int i;

	(void)state;
	memset(w, 0, sizeof(w));
	for (i = 0; i <= VWRITERS; i++) {
		w[i].c = c;
		w[i].id = (unsigned)i;
		w[i].deadline = deadline;
		assert_int_equal(0, pthread_create(&w[i].t, NULL,
						   i < VWRITERS ? vwriter_main : vreader_main, &w[i]));
	}
	for (i = 0; i <= VWRITERS; i++)
		pthread_join(w[i].t, NULL);
	print_message("%llu reads checked\n", (unsigned long long)w[VWRITERS].ops);
	for (i = 0; i < VWRITERS; i++)
		assert_int_equal(0, w[i].bad);
	assert_int_equal(0, w[VWRITERS].bad);
	tc_close(c);
}


int main(void)
{
	const struct CMUnitTest tests[] = {
		FX_TEST(test_processes_never_see_torn_values_and_accounting_agrees),
		FX_TEST(test_processes_with_keys_of_9_to_32_bytes),
		FX_TEST(test_threads_never_see_torn_values_and_accounting_agrees),
		FX_TEST(test_racing_adds_of_one_key_have_exactly_one_winner),
		FX_TEST(test_versions_never_go_back_under_racing_writers),
	};

	return fx_run(tests);
}
