/* SPDX-License-Identifier: MIT */
/*
 * test_many.c - tc_get_many and tc_peek_many against writers that move
 * their keys while a batch is half done, against scribbled slots, headers,
 * displacements and values, and at the edges of the API (refused calls,
 * bad requests at a chunk's edges, sections, unlink, audit, no slot).
 * White-box: keys are chosen by their home bucket (tc__hash), and the
 * scribbles write into the mapping.
 *
 * The race: about forty keys of every length class are homed in two
 * adjacent buckets of a small index, so that most of them sit past their
 * home bucket (maxdisp chains).  One writer process sets, deletes and
 * re-adds them (a key re-added lands in whatever slot of its chain is free:
 * keys move between buckets, and a slot word is reused for another key) and
 * runs grace periods; the reader process calls tc_get_many (or, in a read
 * section, tc_peek_many) on random requests with duplicates.  The reader is
 * held inside its calls while the writer makes a burst of changes and runs
 * tc_reclaim, in two ways: every other tc_get_many makes the page of one
 * request's buffer read-only, so that the copy of that request faults in
 * pass three, after its chunk's buckets were scanned (the SIGSEGV handler
 * waits for the burst, then makes the page writable and the copy runs
 * again); and the writer sends SIGUSR1, whose handler holds the reader when
 * it is inside a call, wherever it is.  So between the kept bucket scan and
 * the finishing lookup keys move, slot words are reused and blocks are
 * retired and freed.  Each answer is checked against the writer's history,
 * which the writer publishes in shared memory around each operation (one
 * writer, so operation numbers order every key's changes):
 *   - a value is the key's own (blackbox.h's self-checking values), whole;
 *   - a hit's value was current at some instant of the call: not replaced
 *     by an operation that had completed before the call began, and written
 *     by an operation that had begun before the call ended;
 *   - a miss: the key was deleted at some instant of the call (TC_EVICT_NONE
 *     only; under LRU a key may be evicted);
 *   - versions order a key's values as its writes did, and never go back
 *     from one call to the next, nor from one request to a later one of the
 *     same key in one call;
 *   - the requests are read in their order: a request never misses a change
 *     made before the change an earlier request of the call saw;
 *   - the call returns the number of requests answered 0, and every code is
 *     one tc_get could return.
 * Nothing is timed: the run stops after a number of writes and of the
 * reader's calls.
 *
 * The hook tests are deterministic: request 0 of a call ends a read-only
 * page (its first write, in pass three, faults), and a page of the index
 * can be made to fault on its first load (in pass two); at each fault a
 * child process makes exactly the writes of the test before the call goes
 * on.  They check that a kept scan's blocks survive updates, deletes, a
 * reused slot word, a grown chain, grace periods and the reuse of the
 * class's blocks, and that the requests are read in their order.
 */
#include "whitebox.h"

#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <sched.h>
#include <sys/mman.h>

#include "blackbox.h"

/* ---- keys homed in two buckets -------------------------------------------- */

#define NK      40      /* keys of the race */
#define KEY_CAP 520

struct keyset {
	char k[NK][KEY_CAP];
	size_t kl[NK];
	uint64_t home;  /* the first of the two home buckets */
};

/* Key lengths of every class of key_eq and tc__hash: 1..8, 9..16, 17..32,
 * 33..512. */
static const size_t key_lens[] = { 3, 8, 9, 12, 16, 17, 24, 32, 33, 100, 512 };

/* Write key number N (below 62^3) of length LEN (at least 3) into OUT: N in
 * three base-62 digits, then filler, then a NUL (for wb_entry_of's strlen,
 * whatever key OUT held before).  Unique for each (N, LEN). */
static size_t make_key(char *out, unsigned n, size_t len)
{
	static const char d62[] =
		"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
	memset(out, '-', len);
	out[len] = '\0';
	for (int i = 0; i < 3; i++, n /= 62)
		out[i] = d62[n % 62];
	return len;
}

/* NK keys whose home is HOME or HOME + 1; each length class in turn. */
static void pick_keys(tc_cache *c, struct keyset *ks, uint64_t home)
{
	unsigned n = 0;
	ks->home = home;
	for (int i = 0; i < NK; n++) {
		size_t len = key_lens[(size_t)i % FX_ARRAY_SIZE(key_lens)];
		char *k = ks->k[i];
		make_key(k, n, len);
		uint64_t h = tc__hash(c, k, len, TC_KIND_KEY) & c->bmask;
		if (h == home || h == ((home + 1) & c->bmask)) {
			ks->kl[i] = len;
			i++;
		}
		assert_true(n < 62u * 62u * 62u);
	}
}

/* ---- the writer's history in shared memory --------------------------------- */

#define DEL_BIT 1ull
#define LOGN    256

struct race {
	/* per key: the last operation completed (number << 1 | DEL_BIT for a
	 * delete), the last begun, the last delete begun */
	uint64_t done[NK], begun[NK], del_begun[NK];
	/* per key: the numbers of its last LOGN changes (sets, successful
	 * adds, deletes), a ring, and how many were logged */
	uint64_t log[NK][LOGN], nlog[NK];
	/* the pause protocol */
	uint64_t gen;       /* writer: the signal sent */
	uint64_t ack;       /* reader: the handler ran for gen */
	uint64_t paused;    /* reader: ... and found a call in progress */
	uint64_t released;  /* writer: the burst of gen is done */
	uint64_t stop;
	uint64_t ready;     /* reader: its handlers are installed */
	uint64_t hold;      /* reader: held by its trap (a count) */
	uint64_t unhold;    /* writer: the burst of hold is done */
	/* results */
	uint64_t calls, hits, misses, dup_back, bursts, traps;
	uint64_t violations;
};

static struct race *race;
static volatile sig_atomic_t in_call;

#define LD(p) __atomic_load_n((p), __ATOMIC_SEQ_CST)
#define ST(p, v) __atomic_store_n((p), (v), __ATOMIC_SEQ_CST)

static void race_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void race_fail(const char *fmt, ...)
{
	va_list ap;
	char msg[512];
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	__atomic_add_fetch(&race->violations, 1, __ATOMIC_SEQ_CST);
	fprintf(stderr, "[pid %d] VIOLATION: %s\n", (int)getpid(), msg);
}

/* The reader's handler: inside a call, stay until the writer's burst is
 * done (or the run stops). */
static void on_usr1(int sig)
{
	(void)sig;
	uint64_t g = LD(&race->gen);
	if (in_call) {
		ST(&race->paused, g);
		ST(&race->ack, g);
		while (LD(&race->released) != g && !LD(&race->stop))
			sched_yield();
	} else {
		ST(&race->ack, g);
	}
}

/*
 * The reader's trap: the page of one request's buffer is made read-only
 * before a tc_get_many, so that the copy of that request (pass three, after
 * every bucket of its chunk was scanned) faults.  The handler holds the
 * reader there until the writer's burst is done, makes the page writable,
 * and the copy runs again.
 */
static void *trap_page;
static size_t page_size;

static void on_segv(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	uint8_t *a = si->si_addr, *p = trap_page;
	if (!p || a < p || a >= p + page_size) {
		signal(sig, SIG_DFL); /* a real fault: die of it */
		return;
	}
	uint64_t h = LD(&race->hold) + 1;
	ST(&race->hold, h);
	while (LD(&race->unhold) != h && !LD(&race->stop))
		sched_yield();
	__atomic_add_fetch(&race->traps, 1, __ATOMIC_SEQ_CST);
	mprotect(p, page_size, PROT_READ | PROT_WRITE);
	trap_page = NULL;
}

/* One writer operation on key I, numbered OPNO, published around it. */
/* Log change OPNO of key I, once made (a reader reads the log after its
 * call, and the writer's next change begins after this one). */
static void log_op(unsigned i, uint64_t opno)
{
	uint64_t n = LD(&race->nlog[i]);
	ST(&race->log[i][n % LOGN], opno);
	ST(&race->nlog[i], n + 1);
}

/* The reader's section pins what the writes retire: with the reader
 * starved of the CPU inside one call, a writer that went on writing met
 * the documented -ENOSPC (4 MiB retired behind one section, seen under
 * load).  Wait for the reader to end its call, letting a trap that holds
 * it go on (nothing pins less), then write again. */
static bool wait_for_the_reader(void)
{
	uint64_t k0 = LD(&race->calls);
	while (LD(&race->calls) == k0 && !LD(&race->stop)) {
		uint64_t h = LD(&race->hold);
		if (h != LD(&race->unhold))
			ST(&race->unhold, h);
		sched_yield();
	}
	return !LD(&race->stop);
}

/* One write of key I; MAY_WAIT: outside a burst (the reader is not held
 * by this writer), so that -ENOSPC may wait for its call to end. */
static void write_op(tc_cache *c, const struct keyset *ks, unsigned i, uint64_t opno,
		     uint64_t *rng, bool lru, bool may_wait)
{
	unsigned char val[700];
	uint64_t r = bb_rand(rng);
	bool del = r % 100 < 30;
	ST(&race->begun[i], opno);
	if (del)
		ST(&race->del_begun[i], opno);
	int rc;
	if (del) {
		rc = tc_del(c, ks->k[i], ks->kl[i]);
		if (rc != 0 && rc != -ENOENT)
			race_fail("writer: del %u: %d", i, rc);
		log_op(i, opno);
		ST(&race->done[i], opno << 1 | DEL_BIT);
		return;
	}
	/* Three sizes (three size classes), so that TC_EVICT_NONE's memory is
	 * not cut into every class: the writes never meet -ENOSPC there. */
	static const size_t lens[] = { BB_HDR + 8, 100, 600 };
	size_t len = lens[(r >> 8) % 3];
	bb_fill(val, len, i, 0, opno);
	for (;;) {
		rc = r % 100 < 45 ? tc_add(c, ks->k[i], ks->kl[i], val, len, BB_TYPE, 0)
				  : tc_set(c, ks->k[i], ks->kl[i], val, len, BB_TYPE, 0);
		if (rc != -ENOSPC || lru || !may_wait || !wait_for_the_reader())
			break;
	}
	if (rc == 0) {
		log_op(i, opno);
		ST(&race->done[i], opno << 1);
	}
	else if (rc != -EEXIST && !(lru && rc == -ENOSPC))
		race_fail("writer: write %u: %d", i, rc);
}

/* Fill the rest of an LRU segment with other keys: the race's keys are
 * evicted now and then. */
static void write_filler(tc_cache *c, uint64_t *rng)
{
	char k[32], v[2000];
	memset(v, 'f', sizeof(v));
	size_t kl = bb_key(k, sizeof(k), "filler", (unsigned)(bb_rand(rng) % 400));
	int rc = tc_set(c, k, kl, v, 500 + bb_rand(rng) % 1500, 1, 0);
	if (rc != 0 && rc != -ENOSPC)
		race_fail("writer: filler: %d", rc);
}

/* A burst of changes while the reader is held inside a call: keys moved,
 * deleted and re-added, slot words reused, grace periods run. */
static void burst(tc_cache *c, const struct keyset *ks, uint64_t *opno, uint64_t *rng,
		  bool lru)
{
	for (int b = 0; b < 24; b++) {
		write_op(c, ks, (unsigned)(bb_rand(rng) % NK), ++*opno, rng, lru, false);
		if (lru && b % 2 == 0)
			write_filler(c, rng);
		uint64_t freed;
		if (b % 8 == 7 && tc_reclaim(c, &freed) != 0)
			race_fail("writer: tc_reclaim");
	}
	__atomic_add_fetch(&race->bursts, 1, __ATOMIC_SEQ_CST);
}

static void run_writer(const char *name, const struct keyset *ks, pid_t reader, int ops,
		       uint64_t calls, bool lru)
{
	tc_cache *c = fx_attach(name);
	uint64_t rng = 0x9a11e7ull, opno = 2 * NK, held_in = UINT64_MAX;
	while (!LD(&race->ready) && !LD(&race->stop))
		sched_yield();
	/* OPS operations, and as long as the reader has not made CALLS
	 * calls: counts, not time. */
	for (int n = 0; (n < ops || LD(&race->calls) < calls) && !LD(&race->stop); n++) {
		write_op(c, ks, (unsigned)(bb_rand(&rng) % NK), ++opno, &rng, lru, true);
		if (lru && n % 3 == 0)
			write_filler(c, &rng);
		/* The reader's trap holds it between two passes of a batch. */
		uint64_t h = LD(&race->hold);
		if (h != LD(&race->unhold)) {
			burst(c, ks, &opno, &rng, lru);
			ST(&race->unhold, h);
		}
		/* Not again in the call held last: a reader that never got
		 * the CPU back would be held in one call, and one section,
		 * for the whole run. */
		if (n % 16 != 0 || LD(&race->calls) == held_in)
			continue;
		/* Interrupt the reader; when it is inside a call, change many
		 * keys and run grace periods before letting it go on. */
		uint64_t g = LD(&race->gen) + 1;
		ST(&race->gen, g);
		if (kill(reader, SIGUSR1) != 0)
			break;
		while (LD(&race->ack) != g && !LD(&race->stop)) {
			h = LD(&race->hold); /* held by its trap meanwhile */
			if (h != LD(&race->unhold)) {
				burst(c, ks, &opno, &rng, lru);
				ST(&race->unhold, h);
			}
			sched_yield();
		}
		if (LD(&race->paused) == g) {
			held_in = LD(&race->calls);
			burst(c, ks, &opno, &rng, lru);
		}
		ST(&race->released, g);
	}
	ST(&race->stop, 1);
	tc_close(c);
	_exit(LD(&race->violations) ? 1 : 0);
}

/* The reader's memory of each key: the last (version, sequence) seen. */
struct seen {
	uint64_t ver[NK], seq[NK];
};

static uint64_t seq_of(const void *val)
{
	uint64_t s;
	memcpy(&s, (const uint8_t *)val + 24, 8);
	return s;
}

/* Check request J (key I) of a call, VAL its value (rc 0): DONE and
 * BEGUN the history loaded before and after the call. */
static void check_answer(const tc_req *r, unsigned i, const void *val, uint64_t done,
			 uint64_t begun, uint64_t del_begun, struct seen *sn,
			 const uint64_t *ver_before, bool lru)
{
	if (r->rc == -ENOENT) {
		__atomic_add_fetch(&race->misses, 1, __ATOMIC_RELAXED);
		/* absent at some instant of the call: deleted before it and
		 * not written since, or a delete begun during it */
		if (!lru && !(done & DEL_BIT) && del_begun <= done >> 1)
			race_fail("key %u: a miss, but its last operation before the call set it "
				  "(op %llu) and no delete began until the call ended", i,
				  (unsigned long long)(done >> 1));
		return;
	}
	if (r->rc != 0) {
		race_fail("key %u: code %d", i, r->rc);
		return;
	}
	__atomic_add_fetch(&race->hits, 1, __ATOMIC_RELAXED);
	const char *why = r->meta.type != BB_TYPE ? "type" : bb_check(val, r->meta.len, i, 1);
	if (why) {
		race_fail("key %u (len %zu): %s", i, r->meta.len, why);
		return;
	}
	uint64_t s = seq_of(val), d = done >> 1;
	if (s < d || (s == d && (done & DEL_BIT)))
		race_fail("key %u: value of op %llu, replaced by op %llu%s before the call", i,
			  (unsigned long long)s, (unsigned long long)d,
			  done & DEL_BIT ? " (a delete)" : "");
	if (s > begun)
		race_fail("key %u: value of op %llu, begun after the call (last begun %llu)", i,
			  (unsigned long long)s, (unsigned long long)begun);
	uint64_t v = r->meta.version;
	if (v < ver_before[i])
		race_fail("key %u: version %llu after %llu in an earlier call", i,
			  (unsigned long long)v, (unsigned long long)ver_before[i]);
	if (sn->ver[i] && (v < sn->ver[i]) != (s < sn->seq[i]))
		race_fail("key %u: version %llu op %llu against version %llu op %llu", i,
			  (unsigned long long)v, (unsigned long long)s,
			  (unsigned long long)sn->ver[i], (unsigned long long)sn->seq[i]);
	if (v == sn->ver[i] && s != sn->seq[i])
		race_fail("key %u: version %llu for ops %llu and %llu", i, (unsigned long long)v,
			  (unsigned long long)s, (unsigned long long)sn->seq[i]);
	if (v >= sn->ver[i]) {
		sn->ver[i] = v;
		sn->seq[i] = s;
	}
}

#define NREQ 48
static void run_reader(const char *name, const struct keyset *ks, bool lru)
{
	tc_cache *c = fx_attach(name);
	page_size = (size_t)sysconf(_SC_PAGESIZE);
	/* Each request's buffer on a page of its own (for the trap). */
	unsigned char *pages = mmap(NULL, NREQ * page_size, PROT_READ | PROT_WRITE,
				    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (pages == MAP_FAILED)
		_exit(BB_EXIT_SETUP);
	struct seen sn = { { 0 }, { 0 } };
	uint64_t rng = 0x5eade7ull, ver_before[NK];
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_usr1;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	sigaction(SIGUSR1, &sa, NULL);
	struct sigaction sv;
	memset(&sv, 0, sizeof(sv));
	sv.sa_sigaction = on_segv;
	sigemptyset(&sv.sa_mask);
	sv.sa_flags = SA_SIGINFO;
	sigaction(SIGSEGV, &sv, NULL);
	ST(&race->ready, 1);
	while (!LD(&race->stop)) {
		tc_req r[NREQ];
		const void *v[NREQ];
		unsigned idx[NREQ];
		uint64_t done[NK], begun[NK], del_begun[NK];
		size_t n = 1 + bb_rand(&rng) % NREQ;
		bool peek = bb_rand(&rng) % 3 == 0;
		for (size_t j = 0; j < n; j++) {
			idx[j] = (unsigned)(bb_rand(&rng) % NK);
			r[j] = (tc_req){ .key = ks->k[idx[j]], .klen = ks->kl[idx[j]],
					 .buf = pages + j * page_size, .cap = 768, .rc = 1 };
		}
		for (unsigned i = 0; i < NK; i++) {
			done[i] = LD(&race->done[i]);
			ver_before[i] = sn.ver[i];
		}
		int got;
		in_call = 1;
		if (peek) {
			if (tc_read_lock(c) != 0) {
				race_fail("tc_read_lock");
				break;
			}
			got = tc_peek_many(c, r, n, v);
		} else {
			/* Every other batch (one in eight under LRU, where a
			 * held reader makes the writer wait for memory) traps
			 * one of its requests' copy. */
			size_t t = bb_rand(&rng) % ((lru ? 8 : 2) * n);
			if (t < n && mprotect(pages + t * page_size, page_size, PROT_READ) == 0)
				trap_page = pages + t * page_size;
			got = tc_get_many(c, r, n);
			if (trap_page) { /* a miss: nothing was copied */
				mprotect(trap_page, page_size, PROT_READ | PROT_WRITE);
				trap_page = NULL;
			}
		}
		in_call = 0;
		for (unsigned i = 0; i < NK; i++) {
			begun[i] = LD(&race->begun[i]);
			del_begun[i] = LD(&race->del_begun[i]);
		}
		int hits = 0;
		for (size_t j = 0; j < n; j++) {
			unsigned i = idx[j];
			hits += r[j].rc == 0;
			check_answer(&r[j], i, peek ? v[j] : r[j].buf, done[i], begun[i],
				     del_begun[i], &sn, ver_before, lru);
			if (peek && (r[j].rc == 0) != (v[j] != NULL))
				race_fail("peek: code %d with pointer %p", r[j].rc, v[j]);
			/* The requests are read in order: a hit of op S1 by an
			 * earlier request means every change made before S1
			 * is seen here, so no change of this key came between
			 * this answer's op and S1 (of the ring's changes). */
			if (r[j].rc == 0 && j > 0) {
				uint64_t s2 = seq_of(peek ? v[j] : r[j].buf), s1 = 0;
				for (size_t q = 0; q < j; q++)
					if (r[q].rc == 0) {
						uint64_t sq = seq_of(peek ? v[q] : r[q].buf);
						s1 = sq > s1 ? sq : s1;
					}
				for (int l = 0; s1 > s2 + 1 && l < LOGN; l++) {
					uint64_t x = LD(&race->log[i][l]);
					if (x > s2 && x < s1)
						race_fail("key %u: op %llu answered after an earlier "
							  "request saw op %llu, and op %llu changed "
							  "the key in between", i,
							  (unsigned long long)s2,
							  (unsigned long long)s1,
							  (unsigned long long)x);
				}
			}
			/* the same key earlier in this call: never a newer
			 * version there */
			for (size_t q = 0; q < j; q++)
				if (idx[q] == i && r[q].rc == 0 && r[j].rc == 0 &&
				    r[j].meta.version < r[q].meta.version) {
					__atomic_add_fetch(&race->dup_back, 1, __ATOMIC_RELAXED);
					race_fail("key %u: version %llu after %llu in one call", i,
						  (unsigned long long)r[j].meta.version,
						  (unsigned long long)r[q].meta.version);
				}
		}
		if (peek) {
			/* The pointers are still the values they were: the
			 * section kept them through the bursts' grace periods. */
			for (size_t j = 0; j < n; j++)
				if (r[j].rc == 0 && bb_check(v[j], r[j].meta.len, idx[j], 1))
					race_fail("key %u: peeked value changed in its section",
						  idx[j]);
			tc_read_unlock(c);
		}
		if (got != hits)
			race_fail("%s returned %d, %d requests answered 0",
				  peek ? "tc_peek_many" : "tc_get_many", got, hits);
		__atomic_add_fetch(&race->calls, 1, __ATOMIC_RELAXED);
	}
	tc_close(c);
	_exit(LD(&race->violations) ? 1 : 0);
}

static void race_run(bool lru)
{
	char name[TC_NAME_MAX + 1];
	fx_name(name);
	/* The smallest index: 64 entries in 16 buckets.  LRU: little memory,
	 * so that the filler keys evict the race's keys. */
	tc_cache *c = wb_create(name, TC_MIN_ENTRIES * 2, lru ? 96u << 10 : 4u << 20, 8,
				lru ? TC_EVICT_LRU : TC_EVICT_NONE);
	static struct keyset ks;
	pick_keys(c, &ks, 3 & c->bmask);
	race = mmap(NULL, sizeof(*race), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	assert_true(race != MAP_FAILED);
	memset(race, 0, sizeof(*race));
	for (unsigned i = 0; i < NK; i++) {
		unsigned char val[64];
		bb_fill(val, sizeof(val), i, 0, i + 1);
		ASSERT_RC(0, tc_set(c, ks.k[i], ks.kl[i], val, sizeof(val), BB_TYPE, 0));
		race->done[i] = (uint64_t)(i + 1) << 1;
		race->begun[i] = i + 1;
	}
	/* The keys spill far past their two home buckets. */
	uint64_t md = tc__ld(&c->index[ks.home].meta) & 0xffffffffu;
	assert_true(md >= 4);
	pid_t reader = fork();
	assert_true(reader >= 0);
	if (reader == 0)
		run_reader(name, &ks, lru);
	pid_t writer = fork();
	assert_true(writer >= 0);
	if (writer == 0)
		run_writer(name, &ks, reader, lru ? 3000 : 10000, lru ? 1000 : 3000, lru);
	/* Whichever ends first (the writer after its operations, or a
	 * reader that crashed) stops the other. */
	int status, sw, sr;
	pid_t first = waitpid(-1, &status, 0);
	ST(&race->stop, 1);
	assert_true(first == writer || first == reader);
	int s1 = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	if (first == writer) {
		sw = s1;
		sr = fx_wait(reader);
	} else {
		sr = s1;
		sw = fx_wait(writer);
	}
	fprintf(stderr, "%s: %llu calls, %llu hits, %llu misses, %llu bursts inside a call "
		"(%llu between two passes), "
		"%llu duplicates older than an earlier one, %llu violations\n",
		lru ? "lru" : "none", (unsigned long long)race->calls,
		(unsigned long long)race->hits, (unsigned long long)race->misses,
		(unsigned long long)race->bursts, (unsigned long long)race->traps,
		(unsigned long long)race->dup_back,
		(unsigned long long)race->violations);
	assert_int_equal(race->violations, 0);
	assert_int_equal(sw, 0);
	assert_int_equal(sr, 0);
	assert_true(race->traps > 0); /* some call was held while keys moved */
	munmap(race, sizeof(*race));
	tc_close(c);
}

static void test_many_race_with_moves_deletes_and_grace_periods(void **state)
{
	(void)state;
	race_run(false);
}

static void test_many_race_under_lru_eviction(void **state)
{
	(void)state;
	race_run(true);
}

/* ---- a hook between pass two and pass three -------------------------------- */

/*
 * Deterministic: the requests live so that request 0 ends a read-only
 * page; the first write of pass three (its meta, or its code) faults, and
 * the handler lets a child process change the segment (HOOK_FN) before the
 * write runs again.  Every other request of the chunk was scanned before.
 */
struct hook {
	uint64_t go, done; /* the step asked for, the step done */
};
static struct hook *hk;
static uint8_t *hook_page[2]; /* the pages that trap, until they did */
static pid_t hook_child;
static int hook_runs;

static void on_hook_segv(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	uint8_t *a = si->si_addr;
	int t = 0;
	while (t < 2 && !(hook_page[t] && a >= hook_page[t] && a < hook_page[t] + page_size))
		t++;
	if (t == 2) {
		signal(sig, SIG_DFL); /* a real fault: die of it */
		return;
	}
	uint64_t step = (uint64_t)++hook_runs;
	ST(&hk->go, step);
	siginfo_t ci;
	for (;;) { /* done, or the child died (not reaped: fx_wait tells) */
		if (LD(&hk->done) >= step)
			break;
		ci.si_pid = 0;
		if (waitid(P_PID, (id_t)hook_child, &ci, WEXITED | WNOHANG | WNOWAIT) != 0 ||
		    ci.si_pid != 0)
			break;
		sched_yield();
	}
	mprotect(hook_page[t], page_size, PROT_READ | PROT_WRITE);
	hook_page[t] = NULL;
}

/* tc_get_many (VALS NULL) or tc_peek_many of REQS[0..N) (in hook_reqs'
 * memory), with FN(c, step) run by a child on segment NAME at each trap:
 * step 1 at the first, 2 at the second.  INDEX_PAGE (NULL: none) is a
 * page of C's index that traps too (on its first load, in pass two).
 * Returns the call's return. */
static int hooked2(const char *name, tc_cache *c, tc_req *reqs, size_t n, const void **vals,
		   void (*fn)(tc_cache *, int), void *index_page)
{
	int steps = index_page ? 2 : 1;
	memset(hk, 0, sizeof(*hk));
	hook_child = fork();
	assert_true(hook_child >= 0);
	if (hook_child == 0) {
		tc_cache *cc = fx_attach(name);
		for (int step = 1; step <= steps; step++) {
			while (LD(&hk->go) < (uint64_t)step)
				sched_yield();
			fn(cc, step);
			ST(&hk->done, step);
		}
		tc_close(cc);
		_exit(0);
	}
	struct sigaction sv, old;
	memset(&sv, 0, sizeof(sv));
	sv.sa_sigaction = on_hook_segv;
	sigemptyset(&sv.sa_mask);
	sv.sa_flags = SA_SIGINFO;
	sigaction(SIGSEGV, &sv, &old);
	hook_runs = 0;
	hook_page[0] = (uint8_t *)((uintptr_t)reqs & ~(uintptr_t)(page_size - 1));
	hook_page[1] = index_page;
	/* Request 0's page traps writes, the index page any load. */
	for (int t = 0; t < steps; t++)
		assert_int_equal(mprotect(hook_page[t], page_size, t ? PROT_NONE : PROT_READ), 0);
	int got = vals ? tc_peek_many(c, reqs, n, vals) : tc_get_many(c, reqs, n);
	sigaction(SIGSEGV, &old, NULL);
	for (int t = 0; t < 2; t++)
		if (hook_page[t]) { /* never touched: let the child go anyway */
			mprotect(hook_page[t], page_size, PROT_READ | PROT_WRITE);
			hook_page[t] = NULL;
		}
	ST(&hk->go, (uint64_t)steps);
	assert_int_equal(fx_wait(hook_child), 0);
	assert_int_equal(LD(&hk->done), steps);
	assert_int_equal(hook_runs, steps); /* the child ran inside the call */
	return got;
}

/* One step at the hook of request 0's first write (pass three). */
static void (*one_step_fn)(tc_cache *);
static void one_step(tc_cache *c, int step)
{
	(void)step;
	one_step_fn(c);
}

static int hooked(const char *name, tc_cache *c, tc_req *reqs, size_t n, const void **vals,
		  void (*fn)(tc_cache *))
{
	one_step_fn = fn;
	return hooked2(name, c, reqs, n, vals, one_step, NULL);
}

/* Requests whose first one ends a page (the rest on the next page). */
static tc_req *hook_reqs(void)
{
	static uint8_t *mem;
	page_size = (size_t)sysconf(_SC_PAGESIZE);
	if (!mem) {
		mem = mmap(NULL, 4 * page_size, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		assert_true(mem != MAP_FAILED);
		hk = mmap(NULL, sizeof(*hk), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
			  -1, 0);
		assert_true(hk != MAP_FAILED);
	}
	return (tc_req *)(void *)(mem + page_size - sizeof(tc_req));
}

/* Keys of the hook tests: "h<n>..." homed in bucket HOME, and the values
 * of key index I, sequence SEQ. */
#define HK_N 10
static struct {
	char k[HK_N][KEY_CAP];
	size_t kl[HK_N];
	char g[HK_N][KEY_CAP];  /* homed in an empty bucket far away */
	size_t gl[HK_N];
	char x[KEY_CAP];         /* request 0: the trap */
	size_t xl;
} hks;

/* The length of every key of the hook tests (hks, and their request 0),
 * or 0: each length class in turn.  A call whose keys are all of 9..16
 * bytes, or all of 17..32, runs tc_get_many's copy for that class
 * (many_in); a mixed one the general copy. */
static size_t hk_len;

/* The modes of hk_len the hook tests run in: mixed lengths, every key of
 * 9..16 bytes, every key of 17..32. */
static const size_t hk_lens[] = { 0, 12, 24 };

static void homed_keys(tc_cache *c, char k[][KEY_CAP], size_t *kl, int n, uint64_t home,
		       unsigned salt)
{
	for (unsigned m = salt * 100000u, i = 0; (int)i < n; m++) {
		size_t len = hk_len ? hk_len : key_lens[(i + salt) % FX_ARRAY_SIZE(key_lens)];
		make_key(k[i], m, len);
		if ((tc__hash(c, k[i], len, TC_KIND_KEY) & c->bmask) == home)
			kl[i++] = len;
		assert_true(m < salt * 100000u + 99999u);
	}
}

#define HVLEN 200
static void hset(tc_cache *c, const char *k, size_t kl, uint32_t i, uint64_t seq)
{
	unsigned char v[HVLEN];
	bb_fill(v, sizeof(v), i, 0, seq);
	ASSERT_RC(0, tc_set(c, k, kl, v, sizeof(v), BB_TYPE, 0));
}

/* The child's writes: run grace periods, then write 200 values of the same
 * size class, which take any block the grace periods freed. */
static void reclaim_and_refill(tc_cache *c)
{
	uint64_t freed;
	for (int i = 0; i < 3; i++)
		if (tc_reclaim(c, &freed) != 0)
			_exit(3);
	unsigned char v[HVLEN];
	memset(v, 'r', sizeof(v));
	for (unsigned i = 0; i < 200; i++) {
		char k[16];
		size_t kl = bb_key(k, sizeof(k), "refill", i);
		if (tc_set(c, k, kl, v, sizeof(v), 0, 0) != 0)
			_exit(4);
	}
}

static void child_set(tc_cache *c, const char *k, size_t kl, uint32_t i, uint64_t seq)
{
	unsigned char v[HVLEN];
	bb_fill(v, sizeof(v), i, 0, seq);
	if (tc_set(c, k, kl, v, sizeof(v), BB_TYPE, 0) != 0)
		_exit(5);
}

/* Scenarios, each run at the hook. */
static void sc_update_in_home(tc_cache *c)     /* k0: in its home bucket */
{
	child_set(c, hks.k[0], hks.kl[0], 0, 2);
	reclaim_and_refill(c);
}

static void sc_update_past_home(tc_cache *c)   /* k8: two buckets on */
{
	child_set(c, hks.k[8], hks.kl[8], 8, 2);
	reclaim_and_refill(c);
}

static void sc_slot_reused(tc_cache *c)        /* k1's word goes to k9 */
{
	if (tc_del(c, hks.k[1], hks.kl[1]) != 0)
		_exit(6);
	child_set(c, hks.k[9], hks.kl[9], 9, 2); /* the free word of home */
	reclaim_and_refill(c);
	child_set(c, hks.k[1], hks.kl[1], 1, 2); /* now past home */
}

static void sc_delete_past_home(tc_cache *c)   /* k7 */
{
	if (tc_del(c, hks.k[7], hks.kl[7]) != 0)
		_exit(6);
	reclaim_and_refill(c);
}

static void sc_chain_grows(tc_cache *c)        /* g0..g9 into an empty bucket */
{
	for (uint32_t i = 0; i < HK_N; i++)
		child_set(c, hks.g[i], hks.gl[i], 100 + i, 2);
}

/* What request R may answer for key index I: sequence SEQ1 (set before
 * the call) or SEQ2 (at the hook), 0 for absent; ABSENT_OK: absent at some
 * instant of the call. */
static void expect_one_of(const tc_req *r, const void *val, uint32_t i, uint64_t seq1,
			  uint64_t seq2, bool absent_ok)
{
	if (r->rc == -ENOENT && absent_ok)
		return;
	ASSERT_RC(0, r->rc);
	assert_int_equal(r->meta.len, HVLEN);
	assert_int_equal(r->meta.type, BB_TYPE);
	assert_null(bb_check(val, HVLEN, i, 1));
	uint64_t s = seq_of(val);
	if (s != seq1 && s != seq2)
		fail_msg("key %u: value of sequence %llu, not %llu or %llu", i,
			 (unsigned long long)s, (unsigned long long)seq1, (unsigned long long)seq2);
}

static void hook_case(unsigned flags, int eviction, bool peek)
{
	char name[TC_NAME_MAX + 1];
	fx_name(name);
	tc_opts o = wb_opts(512, 4u << 20, 8, eviction);
	o.flags |= flags;
	tc_cache *c = NULL;
	ASSERT_RC(0, tc_open(&c, name, &o));
	uint64_t home = 5 & c->bmask, far = (home + c->nbuckets / 2) & c->bmask;
	homed_keys(c, hks.k, hks.kl, HK_N, home, 1);
	homed_keys(c, hks.g, hks.gl, HK_N, far, 2);
	hks.xl = make_key(hks.x, 999999, hk_len ? hk_len : 12);
	static const struct {
		void (*fn)(tc_cache *);
		int key;       /* index in hks.k, or 100 + index in hks.g */
		bool absent_ok;
	} cases[] = {
		{ sc_update_in_home, 0, false },
		{ sc_update_past_home, 8, false },
		{ sc_slot_reused, 1, true },
		{ sc_slot_reused, 9, true },
		{ sc_delete_past_home, 7, true },
		{ sc_chain_grows, 108, true },
	};
	for (size_t t = 0; t < FX_ARRAY_SIZE(cases); t++) {
		/* k0..k8 present (k0..k6 fill the home bucket, k7 and k8
		 * spill past it), k9 and g* absent; the filler of the last
		 * round gone, and its retired blocks freed. */
		ASSERT_RC(0, tc_purge(c, "*", NULL));
		uint64_t freed;
		ASSERT_RC(0, tc_reclaim(c, &freed));
		for (uint32_t i = 0; i < HK_N - 1; i++)
			hset(c, hks.k[i], hks.kl[i], i, 1);
		ASSERT_RC(0, tc_set(c, hks.x, hks.xl, "x", 1, 0, 0));
		assert_true((tc__ld(&c->index[home].meta) & 0xffffffffu) >= 1);
		int key = cases[t].key;
		bool g = key >= 100;
		const char *k = g ? hks.g[key - 100] : hks.k[key];
		size_t kl = g ? hks.gl[key - 100] : hks.kl[key];
		static unsigned char bufs[4][HVLEN];
		static char xb[8];
		tc_req *r = hook_reqs();
		r[0] = (tc_req){ .key = hks.x, .klen = hks.xl, .buf = xb, .cap = sizeof(xb) };
		for (int j = 1; j <= 2; j++) /* the key twice */
			r[j] = (tc_req){ .key = k, .klen = kl, .buf = bufs[j], .cap = HVLEN };
		r[3] = (tc_req){ .key = hks.k[6], .klen = hks.kl[6], .buf = bufs[3], .cap = HVLEN };
		const void *v[4];
		if (peek)
			ASSERT_RC(0, tc_read_lock(c));
		int got = hooked(name, c, r, 4, peek ? v : NULL, cases[t].fn);
		int hits = 0;
		for (int j = 0; j < 4; j++)
			hits += r[j].rc == 0;
		assert_int_equal(got, hits);
		ASSERT_RC(0, r[0].rc);
		for (int j = 1; j <= 2; j++)
			expect_one_of(&r[j], peek ? v[j] : bufs[j], (uint32_t)key, 1, 2,
				      cases[t].absent_ok);
		expect_one_of(&r[3], peek ? v[3] : bufs[3], 6, 1, 1, false);
		if (peek) {
			/* More grace periods and reuse: the pointers hold. */
			ASSERT_RC(-EDEADLK, tc_reclaim(c, &freed));
			for (int j = 1; j <= 3; j++)
				if (r[j].rc == 0)
					assert_null(bb_check(v[j], HVLEN, j == 3 ? 6 : (uint32_t)key, 1));
			tc_read_unlock(c);
		}
		/* The child's writes are there. */
		tc_meta m;
		unsigned char now[HVLEN];
		int want = cases[t].fn == sc_delete_past_home ? -ENOENT : 0;
		ASSERT_RC(want, tc_get(c, k, kl, now, sizeof(now), &m));
		if (want == 0)
			assert_int_equal(seq_of(now), 2);
	}
	tc_close(c);
}

/* A block named by a word that pass two kept is not freed before the call
 * ends, whatever happens at the hook (an update, a reused slot, a delete,
 * a grown chain, then grace periods and the class's blocks all reused): each
 * answer is a value the key held during the call, whole. */
static void test_many_kept_scan_survives_changes_between_passes(void **state)
{
	(void)state;
	for (size_t l = 0; l < FX_ARRAY_SIZE(hk_lens); l++) {
		hk_len = hk_lens[l];
		hook_case(0, TC_EVICT_NONE, false);
		hook_case(0, TC_EVICT_NONE, true);
	}
	hk_len = 0;
}

/* The same through the checked copy (LRU reference bits, checksums). */
static void test_many_kept_scan_survives_changes_checked(void **state)
{
	(void)state;
	for (size_t l = 0; l < FX_ARRAY_SIZE(hk_lens); l++) {
		hk_len = hk_lens[l];
		hook_case(TC_CHECKSUM, TC_EVICT_LRU, false);
		hook_case(TC_CHECKSUM, TC_EVICT_LRU, true);
	}
	hk_len = 0;
}

/* A writer that sets g0 and then k8, in that order, at the hook. */
static void sc_two_writes_in_order(tc_cache *c)
{
	child_set(c, hks.g[0], hks.gl[0], 100, 2);
	child_set(c, hks.k[8], hks.kl[8], 8, 2);
}

/*
 * The requests of one call are read in their order, as the same tc_get
 * calls would read them: a batch [k8, g0] that sees k8's newer value sees
 * g0's too, since g0 was written first.  k8 sits past its home bucket (its
 * lookup ends in pass three), g0 alone in its own (found in the kept
 * scan); both writes land between pass two and pass three.
 */
static void test_many_reads_requests_in_their_order(void **state)
{
	(void)state;
	for (int lp = 0; lp < 2 * (int)FX_ARRAY_SIZE(hk_lens); lp++) {
		int peek = lp % 2;
		hk_len = hk_lens[lp / 2];
		char name[TC_NAME_MAX + 1];
		fx_name(name);
		tc_cache *c = wb_create(name, 512, 4u << 20, 8, TC_EVICT_NONE);
		uint64_t home = 5 & c->bmask, far = (home + c->nbuckets / 2) & c->bmask;
		homed_keys(c, hks.k, hks.kl, HK_N, home, 1);
		homed_keys(c, hks.g, hks.gl, HK_N, far, 2);
		hks.xl = make_key(hks.x, 999999, hk_len ? hk_len : 12);
		for (uint32_t i = 0; i < HK_N - 1; i++)
			hset(c, hks.k[i], hks.kl[i], i, 1);
		hset(c, hks.g[0], hks.gl[0], 100, 1);
		ASSERT_RC(0, tc_set(c, hks.x, hks.xl, "x", 1, 0, 0));
		static unsigned char bufs[3][HVLEN];
		static char xb[8];
		tc_req *r = hook_reqs();
		r[0] = (tc_req){ .key = hks.x, .klen = hks.xl, .buf = xb, .cap = sizeof(xb) };
		r[1] = (tc_req){ .key = hks.k[8], .klen = hks.kl[8], .buf = bufs[1], .cap = HVLEN };
		r[2] = (tc_req){ .key = hks.g[0], .klen = hks.gl[0], .buf = bufs[2], .cap = HVLEN };
		const void *v[3];
		if (peek)
			ASSERT_RC(0, tc_read_lock(c));
		ASSERT_RC(3, hooked(name, c, r, 3, peek ? v : NULL, sc_two_writes_in_order));
		const void *k8 = peek ? v[1] : bufs[1], *g0 = peek ? v[2] : bufs[2];
		expect_one_of(&r[1], k8, 8, 1, 2, false);
		expect_one_of(&r[2], g0, 100, 1, 2, false);
		if (seq_of(k8) == 2 && seq_of(g0) != 2)
			fail_msg("%s: k8 read after g0's write, g0 read before it",
				 peek ? "tc_peek_many" : "tc_get_many");
		if (peek)
			tc_read_unlock(c);
		tc_close(c);
	}
	hk_len = 0;
}

/* The two steps of test_many_never_answers_a_key_newer_then_older: k8
 * into its home bucket (at the first trap, in pass two), then out of it
 * again, past it (at the second, in pass three). */
static void dup_steps(tc_cache *c, int step)
{
	if (step == 1) {
		if (tc_del(c, hks.k[0], hks.kl[0]) != 0 || tc_del(c, hks.k[8], hks.kl[8]) != 0)
			_exit(6);
		child_set(c, hks.k[8], hks.kl[8], 8, 2); /* k0's word, at home */
	} else {
		if (tc_del(c, hks.k[8], hks.kl[8]) != 0)
			_exit(6);
		child_set(c, hks.k[0], hks.kl[0], 0, 2); /* the home word again */
		child_set(c, hks.k[8], hks.kl[8], 8, 3); /* past home */
	}
}

/*
 * One key requested twice in a call: the second answer is never older than
 * the first.  Requests [x, k8, g0, k8]: k8 sits past its home bucket when
 * the first k8 is scanned; g0's bucket is on an index page that traps, so
 * that k8 moves into its home bucket (version 2) before the second k8 is
 * scanned; request 0's first write traps in pass three, where k8 moves out
 * again (version 3).  The first k8 walks past its home and finds version 3;
 * the second must not answer version 2 from its kept scan.
 */
static void test_many_never_answers_a_key_newer_then_older(void **state)
{
	(void)state;
	for (int lp = 0; lp < 2 * (int)FX_ARRAY_SIZE(hk_lens); lp++) {
		int peek = lp % 2;
		hk_len = hk_lens[lp / 2];
		char name[TC_NAME_MAX + 1];
		fx_name(name);
		tc_cache *c = wb_create(name, 512, 4u << 20, 8, TC_EVICT_NONE);
		tc_req *r = hook_reqs(); /* and page_size */
		uint64_t home = 5 & c->bmask, far = (home + c->nbuckets / 2) & c->bmask;
		uintptr_t pmask = ~(uintptr_t)(page_size - 1);
		uint8_t *far_page = (uint8_t *)((uintptr_t)&c->index[far] & pmask);
		assert_true(far_page != (uint8_t *)((uintptr_t)&c->index[home + 2] & pmask));
		homed_keys(c, hks.k, hks.kl, HK_N, home, 1);
		homed_keys(c, hks.g, hks.gl, 1, far, 2);
		char xk[1][KEY_CAP];
		size_t xl[1];
		homed_keys(c, xk, xl, 1, home + 1, 3); /* x: on the home's page */
		for (uint32_t i = 0; i < HK_N - 1; i++)
			hset(c, hks.k[i], hks.kl[i], i, 1);
		hset(c, hks.g[0], hks.gl[0], 100, 1);
		ASSERT_RC(0, tc_set(c, xk[0], xl[0], "x", 1, 0, 0));
		static unsigned char bufs[4][HVLEN];
		static char xb[8];
		r[0] = (tc_req){ .key = xk[0], .klen = xl[0], .buf = xb, .cap = sizeof(xb) };
		r[1] = (tc_req){ .key = hks.k[8], .klen = hks.kl[8], .buf = bufs[1], .cap = HVLEN };
		r[2] = (tc_req){ .key = hks.g[0], .klen = hks.gl[0], .buf = bufs[2], .cap = HVLEN };
		r[3] = (tc_req){ .key = hks.k[8], .klen = hks.kl[8], .buf = bufs[3], .cap = HVLEN };
		const void *v[4];
		if (peek)
			ASSERT_RC(0, tc_read_lock(c));
		ASSERT_RC(4, hooked2(name, c, r, 4, peek ? v : NULL, dup_steps, far_page));
		const void *a = peek ? v[1] : bufs[1], *b = peek ? v[3] : bufs[3];
		expect_one_of(&r[1], a, 8, 1, 3, false); /* version 2 came and went */
		expect_one_of(&r[3], b, 8, 2, 3, false);
		if (r[3].meta.version < r[1].meta.version)
			fail_msg("%s: k8 of op %llu, then of op %llu, in one call",
				 peek ? "tc_peek_many" : "tc_get_many",
				 (unsigned long long)seq_of(a), (unsigned long long)seq_of(b));
		if (peek)
			tc_read_unlock(c);
		tc_close(c);
	}
	hk_len = 0;
}

/* The offset in the arena of the entry the hook scribbles. */
static size_t scr_off;

static void sc_scribble_vlen(tc_cache *c)
{
	struct tc_entry *e = (struct tc_entry *)(void *)(c->arena + scr_off);
	tc__st(&e->vlen, 0xffffffffu);
}

/*
 * An entry's header scribbled between the passes (its length past any
 * value): the key, requested twice, answers TC_ECORRUPT from the header as
 * pass three reads it, not from anything pass two saw; the other keys of
 * the chunk answer their values.
 */
static void test_many_header_scribbled_between_passes(void **state)
{
	(void)state;
	for (int lp = 0; lp < 2 * (int)FX_ARRAY_SIZE(hk_lens); lp++) {
		int peek = lp % 2;
		hk_len = hk_lens[lp / 2];
		char name[TC_NAME_MAX + 1];
		fx_name(name);
		tc_cache *c = wb_create(name, 512, 4u << 20, 8, TC_EVICT_NONE);
		uint64_t home = 5 & c->bmask;
		homed_keys(c, hks.k, hks.kl, HK_N, home, 1);
		hks.xl = make_key(hks.x, 999999, hk_len ? hk_len : 12);
		for (uint32_t i = 0; i < HK_N - 1; i++)
			hset(c, hks.k[i], hks.kl[i], i, 1);
		ASSERT_RC(0, tc_set(c, hks.x, hks.xl, "x", 1, 0, 0));
		struct tc_entry *e = wb_entry_of(c, hks.k[0], TC_KIND_KEY);
		scr_off = (size_t)((uint8_t *)e - c->arena);
		uint32_t vlen = e->vlen;
		static unsigned char bufs[5][HVLEN];
		static char xb[8];
		tc_req *r = hook_reqs();
		r[0] = (tc_req){ .key = hks.x, .klen = hks.xl, .buf = xb, .cap = sizeof(xb) };
		for (int j = 1; j <= 3; j += 2)
			r[j] = (tc_req){ .key = hks.k[0], .klen = hks.kl[0], .buf = bufs[j],
					 .cap = HVLEN };
		r[2] = (tc_req){ .key = hks.k[8], .klen = hks.kl[8], .buf = bufs[2], .cap = HVLEN };
		r[4] = (tc_req){ .key = hks.k[6], .klen = hks.kl[6], .buf = bufs[4], .cap = HVLEN };
		const void *v[5];
		if (peek)
			ASSERT_RC(0, tc_read_lock(c));
		ASSERT_RC(3, hooked(name, c, r, 5, peek ? v : NULL, sc_scribble_vlen));
		ASSERT_RC(TC_ECORRUPT, r[1].rc);
		ASSERT_RC(TC_ECORRUPT, r[3].rc);
		expect_one_of(&r[2], peek ? v[2] : bufs[2], 8, 1, 1, false);
		expect_one_of(&r[4], peek ? v[4] : bufs[4], 6, 1, 1, false);
		if (peek) {
			assert_null(v[1]);
			tc_read_unlock(c);
		}
		tc__st(&e->vlen, vlen);
		unsigned char now[HVLEN];
		tc_meta m;
		ASSERT_RC(0, tc_get(c, hks.k[0], hks.kl[0], now, sizeof(now), &m));
		tc_close(c);
	}
	hk_len = 0;
}

/* ---- scribbles ------------------------------------------------------------- */

#define SK_N 300 /* keys of the scribble test */

static struct {
	char k[SK_N][KEY_CAP];
	size_t kl[SK_N];
	size_t vl[SK_N];
	struct tc_entry *e[SK_N]; /* each key's entry before the scribble */
} sks;

static void *agree_buf(const tc_meta *m, void *arg)
{
	(void)arg;
	static unsigned char big[700];
	return m->len <= sizeof(big) ? big : NULL;
}

/* tc_get_hashed, tc_get_with (a callback for a value over CAP), tc_exists
 * and tc_peek (PEEK: inside the caller's section) of KEY against tc_get's
 * answer WANT, M and bytes ONE (CAP its buffer's size): the same code (0
 * for a value over CAP where the call has no cap or a callback), the same
 * metadata and bytes. */
static void others_agree(tc_cache *c, const void *key, size_t klen, size_t cap, int want,
			 const tc_meta *m, const unsigned char *one, bool peek, int ki)
{
	static unsigned char two[700];
	tc_meta m2;
	const void *pv = NULL;
	const char *who[] = { "tc_get_hashed", "tc_get_with", "tc_peek" };
	for (int p = 0; p < 3; p++) {
		int w = p == 0 || want != -E2BIG ? want : 0, rc;
		const unsigned char *got = two;
		memset(&m2, 0, sizeof(m2));
		if (p == 0) {
			rc = tc_get_hashed(c, tc_key_hash(c, key, klen), key, klen, two, cap, &m2,
					   NULL, NULL);
		} else if (p == 1) {
			rc = tc_get_with(c, key, klen, two, cap, &m2, agree_buf, NULL);
			if (rc == 0 && m2.len > cap)
				got = agree_buf(&m2, NULL);
		} else {
			if (!peek)
				ASSERT_RC(0, tc_read_lock(c));
			rc = tc_peek(c, key, klen, &pv, &m2);
			if (rc == 0)
				memcpy(two, pv, m2.len);
			if (!peek)
				tc_read_unlock(c);
		}
		if (rc != w)
			fail_msg("%s of key %d: %d, tc_get %d", who[p], ki, rc, want);
		if (w != 0 && w != -E2BIG)
			continue;
		if (m2.len != m->len || m2.type != m->type || m2.version != m->version ||
		    m2.expires_ms != m->expires_ms)
			fail_msg("%s of key %d: metadata other than tc_get's", who[p], ki);
		if (w == 0 && memcmp(got, one, m->len <= cap || want == 0 ? m->len : 0) != 0)
			fail_msg("%s of key %d: bytes other than tc_get's", who[p], ki);
	}
	if (tc_exists(c, key, klen) != (want == 0 || want == -E2BIG))
		fail_msg("tc_exists of key %d with tc_get %d", ki, want);
}

/* One request against tc_get for the same key on the same image: the same
 * code, meta and bytes, and the other single-key reads (others_agree) as
 * tc_get.  A hit of a key whose entry is not SCRIBBLED is its own value
 * (checked: any hit). */
static void agree(tc_cache *c, const tc_req *r, const void *val, bool peek, int ki,
		  const struct tc_entry *scribbled, bool csum)
{
	static unsigned char one[700];
	tc_meta m;
	size_t cap = peek ? sizeof(one) : r->cap;
	int want = tc_get(c, r->key, r->klen, one, cap, &m);
	if (peek && want == -E2BIG)
		fail_msg("value over %zu bytes", sizeof(one));
	if (want != r->rc)
		fail_msg("%s of key %d: %d, tc_get %d", peek ? "tc_peek_many" : "tc_get_many", ki,
			 r->rc, want);
	others_agree(c, r->key, r->klen, cap, want, &m, one, peek, ki);
	if (want != 0 && want != -E2BIG)
		return;
	assert_int_equal(r->meta.len, m.len);
	assert_int_equal(r->meta.type, m.type);
	assert_int_equal(r->meta.version, m.version);
	assert_int_equal(r->meta.expires_ms, m.expires_ms);
	if (want != 0)
		return;
	assert_memory_equal(val, one, m.len);
	if (csum || sks.e[ki] != scribbled) {
		assert_int_equal(m.len, sks.vl[ki]);
		assert_null(bb_check(val, m.len, (uint32_t)ki, 1));
	}
}

/* A random key of SKS whose length is LO..HI. */
static int key_of_length(uint64_t *rng, size_t lo, size_t hi)
{
	for (;;) {
		int ki = (int)(bb_rand(rng) % SK_N);
		if (sks.kl[ki] >= lo && sks.kl[ki] <= hi)
			return ki;
	}
}

/* Every key, in random batches with duplicates, by tc_get_many and by
 * tc_peek_many, against tc_get; and batches whose keys are all of 9..16
 * bytes or all of 17..32, which tc_get_many reads in copies of their own
 * (many_in). */
static void all_agree(tc_cache *c, uint64_t *rng, const struct tc_entry *scribbled, bool csum)
{
	static unsigned char bufs[40][700];
	tc_req r[40];
	const void *v[40];
	int idx[40];
	for (int done = 0; done < SK_N;) {
		size_t n = 1 + bb_rand(rng) % 40;
		unsigned mode = (unsigned)(bb_rand(rng) % 4); /* 0, 1: any key; 2: 9..16; 3: 17..32 */
		for (size_t j = 0; j < n; j++) {
			int ki = mode == 2 ? key_of_length(rng, 9, 16)
			       : mode == 3 ? key_of_length(rng, 17, 32)
			       : (int)(bb_rand(rng) % 8 ? (unsigned)(done++ % SK_N)
							: bb_rand(rng) % SK_N);
			idx[j] = ki;
			size_t cap = bb_rand(rng) % 5 ? sizeof(bufs[j]) : bb_rand(rng) % 300;
			r[j] = (tc_req){ .key = sks.k[ki], .klen = sks.kl[ki], .buf = bufs[j],
					 .cap = cap };
		}
		int hits = tc_get_many(c, r, n), want = 0;
		for (size_t j = 0; j < n; j++) {
			agree(c, &r[j], bufs[j], false, idx[j], scribbled, csum);
			want += r[j].rc == 0;
		}
		assert_int_equal(hits, want);
		ASSERT_RC(0, tc_read_lock(c));
		hits = tc_peek_many(c, r, n, v);
		want = 0;
		for (size_t j = 0; j < n; j++) {
			if ((r[j].rc == 0) != (v[j] != NULL))
				fail_msg("tc_peek_many: code %d with pointer %p", r[j].rc, v[j]);
			agree(c, &r[j], v[j], true, idx[j], scribbled, csum);
			want += r[j].rc == 0;
		}
		tc_read_unlock(c);
		assert_int_equal(hits, want);
	}
}

/*
 * One scribble of the image: a slot word (random, a random reference under
 * a key's tag, another word's copy, its reference moved by a few units), a
 * field of an entry's header (hash, version, expiry, lengths, class, kind),
 * a bucket's displacement (0, small, huge), or a byte of a value.  The
 * 8-byte word changed is saved in *AT and *OLD for the caller to restore;
 * *ENTRY names the entry whose header or value changed (NULL: none).
 */
static void scribble(tc_cache *c, uint64_t *rng, uint64_t **at, uint64_t *old,
		     struct tc_entry **entry)
{
	uint64_t r = bb_rand(rng), x = bb_rand(rng);
	int ki = (int)(x % SK_N);
	struct tc_entry *e = sks.e[ki];
	uint64_t b = (x >> 16) & c->bmask;
	*entry = NULL;
	switch (r % 10) {
	case 0: case 1: case 2: { /* a slot word of a bucket that is used */
		*at = &c->index[tc__hash(c, sks.k[ki], sks.kl[ki], TC_KIND_KEY) & c->bmask]
			       .w[(x >> 8) % TC_BUCKET_SLOTS];
		uint64_t w = tc__ld(*at), y = bb_rand(rng);
		static const uint64_t refs[] = { 0, 1, 2, 0xffffffffffffull };
		uint64_t nw = y % 5 == 0 ? y :
			      y % 5 == 1 ? (w & ~0xffffffffffffull) | ((y >> 8) % (c->ref_lim + 8)) :
			      y % 5 == 2 ? (w & ~0xffffffffffffull) | refs[(y >> 8) % 4] :
			      y % 5 == 3 ? tc__ld(&c->index[(y >> 8) & c->bmask].w[(y >> 20) % 7]) :
					   w + ((y >> 8) % 9) - 4;
		*old = w;
		tc__st(*at, nw);
		return;
	}
	case 3: /* the displacement of a bucket */
		*at = &c->index[b].meta;
		*old = tc__ld(*at);
		static const uint64_t md[] = { 0, 1, 3, 0xffffffffu, 0x7fffffffu, 64 };
		tc__st(*at, (*old & ~0xffffffffull) | md[(x >> 40) % 6]);
		return;
	case 4: case 5: case 6: case 7: { /* a word of an entry's header */
		static const size_t off[] = { offsetof(struct tc_entry, hash),
			offsetof(struct tc_entry, version), offsetof(struct tc_entry, expires_ms),
			offsetof(struct tc_entry, vlen), offsetof(struct tc_entry, klen) };
		size_t o = off[(x >> 8) % 5];
		*at = (uint64_t *)(void *)((uint8_t *)e + (o & ~(size_t)7));
		*old = tc__ld(*at);
		uint64_t y = bb_rand(rng);
		unsigned sh = (unsigned)(o & 7) * 8 + (unsigned)(y % 4) * 8;
		uint64_t nv = y % 3 ? *old ^ (0xffull << (sh & 63)) : y;
		tc__st(*at, nv);
		*entry = e;
		return;
	}
	default: { /* a byte of the value */
		uint8_t *v = (uint8_t *)e + TC_ENTRY_HDR + TC_ALIGN8(sks.kl[ki]);
		*at = (uint64_t *)(void *)(v + ((x >> 8) % sks.vl[ki] & ~(size_t)7));
		*old = tc__ld(*at);
		tc__st(*at, *old ^ (1ull << ((x >> 32) % 64)));
		*entry = e;
		return;
	}
	}
}

static void scribble_case(unsigned flags, int eviction)
{
	char name[TC_NAME_MAX + 1];
	fx_name(name);
	tc_opts o = wb_opts(512, 4u << 20, 8, eviction);
	o.flags |= flags;
	tc_cache *c = NULL;
	ASSERT_RC(0, tc_open(&c, name, &o));
	/* Keys of every length class, crowded into the first half of the
	 * buckets: chains. */
	for (unsigned n = 0, i = 0; i < SK_N; n++) {
		size_t len = key_lens[i % FX_ARRAY_SIZE(key_lens)];
		make_key(sks.k[i], n + 500000u, len);
		uint64_t h = tc__hash(c, sks.k[i], len, TC_KIND_KEY) & c->bmask;
		if (h >= c->nbuckets / 2 && n % 4)
			continue;
		sks.kl[i] = len;
		sks.vl[i] = BB_HDR + (size_t)i * 7 % 600;
		unsigned char v[700];
		bb_fill(v, sks.vl[i], i, 0, 1);
		ASSERT_RC(0, tc_set(c, sks.k[i], len, v, sks.vl[i], BB_TYPE, 0));
		sks.e[i] = wb_entry_of(c, sks.k[i], TC_KIND_KEY);
		i++;
	}
	uint64_t rng = 0x5c1bb1eull ^ flags ^ (uint64_t)eviction;
	all_agree(c, &rng, NULL, flags & TC_CHECKSUM);
	for (int round = 0; round < 400; round++) {
		uint64_t *at, old;
		struct tc_entry *e;
		scribble(c, &rng, &at, &old, &e);
		all_agree(c, &rng, e, flags & TC_CHECKSUM);
		tc__st(at, old);
	}
	all_agree(c, &rng, NULL, flags & TC_CHECKSUM);
	tc_close(c);
}

/*
 * Scribbled slot words, headers, displacements and values, one at a time
 * on a segment whose keys form chains: every request of tc_get_many and
 * tc_peek_many (random batches with duplicates and small caps) answers
 * exactly what tc_get answers on the same image, so do tc_get_hashed,
 * tc_get_with, tc_exists and tc_peek for that key, and a hit is the key's
 * own value unless the scribble hit that key's entry (with checksums:
 * always).  Under ASan: no read outside the segment either.
 */
static void test_many_agrees_with_tc_get_on_a_scribbled_index(void **state)
{
	(void)state;
	scribble_case(0, TC_EVICT_NONE);
	scribble_case(TC_CHECKSUM, TC_EVICT_LRU);
}

/* ---- the edges of the API ------------------------------------------------- */

static tc_req req_s(const char *k, void *buf, size_t cap)
{
	return (tc_req){ .key = k, .klen = strlen(k), .buf = buf, .cap = cap, .rc = 12345 };
}

/* Bad requests at the chunk's edges (bits 15, 16, 31, 32 of the batch), an
 * empty value into a NULL buffer of cap 0, an expired key: each as tc_get. */
static void test_many_bad_requests_at_chunk_edges_empty_and_expired(void **state)
{
	(void)state;
	char name[TC_NAME_MAX + 1];
	tc_cache *c = fx_open(name, 1024, 4u << 20, 8);
	ASSERT_RC(0, tc_set(c, KS("empty"), "", 0, 3, 0));
	ASSERT_RC(0, tc_set(c, KS("v"), KS("value"), 0, 0));
	ASSERT_RC(0, tc_set(c, KS("soon"), KS("gone"), 0, 1)); /* 1 ms */
	tc_meta m;
	char b[16];
	while (tc_get(c, KS("soon"), b, sizeof(b), &m) == 0)
		sched_yield(); /* until tc_get sees it expired (the coarse clock) */
	enum { N = 40 };
	static char bufs[N][16];
	tc_req r[N];
	for (int i = 0; i < N; i++)
		r[i] = req_s("v", bufs[i], sizeof(bufs[i]));
	static const int badi[] = { 15, 16, 31, 32 };
	for (int j = 0; j < 4; j++) {
		r[badi[j]].klen = j % 2 ? 0 : TC_KEY_MAX + 1; /* no key */
	}
	r[0] = req_s("empty", NULL, 0);
	r[1] = req_s("soon", bufs[1], sizeof(bufs[1]));
	r[2] = req_s("v", NULL, 0);        /* -E2BIG, meta filled */
	r[3] = req_s("v", bufs[3], 5);     /* exactly fits */
	r[17] = req_s("v", NULL, 1);       /* NULL buffer with a cap */
	ASSERT_RC(N - 7, tc_get_many(c, r, N));
	ASSERT_RC(0, r[0].rc);
	assert_int_equal(r[0].meta.len, 0);
	assert_int_equal(r[0].meta.type, 3);
	ASSERT_RC(-ENOENT, r[1].rc);
	ASSERT_RC(-E2BIG, r[2].rc);
	assert_int_equal(r[2].meta.len, 5);
	ASSERT_RC(0, r[3].rc);
	assert_memory_equal(bufs[3], "value", 5);
	ASSERT_RC(-EINVAL, r[17].rc);
	for (int j = 0; j < 4; j++)
		ASSERT_RC(-EINVAL, r[badi[j]].rc);
	for (int i = 4; i < N; i++)
		if (i != 17 && i != 15 && i != 16 && i != 31 && i != 32) {
			ASSERT_RC(0, r[i].rc);
			assert_memory_equal(bufs[i], "value", 5);
		}
	/* The same through tc_peek_many: the empty value is a pointer. */
	const void *v[N];
	ASSERT_RC(0, tc_read_lock(c));
	ASSERT_RC(N - 5, tc_peek_many(c, r, N, v)); /* no -E2BIG, no buffer checked */
	ASSERT_RC(0, r[0].rc);
	assert_non_null(v[0]);
	ASSERT_RC(-ENOENT, r[1].rc);
	assert_null(v[1]);
	ASSERT_RC(0, r[2].rc);
	ASSERT_RC(0, r[17].rc);
	ASSERT_RC(-EINVAL, r[31].rc);
	assert_null(v[31]);
	tc_read_unlock(c);
	tc_close(c);
}

/* Inside a read section: a batch leaves the section held (a pointer taken
 * before stays valid across writes and a grace period); the segment
 * unlinked under the section: -ESTALE for the call and every request, and
 * no pointer; an audit at work: -EBUSY. */
static void test_many_inside_a_section_unlinked_and_audited(void **state)
{
	(void)state;
	char name[TC_NAME_MAX + 1];
	tc_cache *c = fx_open(name, 1024, 4u << 20, 8);
	ASSERT_RC(0, tc_set(c, KS("a"), KS("alpha"), 0, 0));
	ASSERT_RC(0, tc_set(c, KS("b"), KS("beta"), 0, 0));
	char b[2][8];
	tc_req r[2] = { req_s("a", b[0], 8), req_s("b", b[1], 8) };
	const void *p, *v[2] = { &p, &p };
	tc_meta m;
	ASSERT_RC(0, tc_read_lock(c));
	ASSERT_RC(0, tc_peek(c, KS("a"), &p, &m));
	ASSERT_RC(2, tc_get_many(c, r, 2));
	ASSERT_RC(2, tc_peek_many(c, r, 2, v));
	assert_ptr_equal(v[0], p);
	/* still inside: a writer in another process replaces a and reclaims */
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		tc_cache *cc = fx_attach(name);
		uint64_t freed;
		FX_CHECK(tc_set(cc, KS("a"), KS("ALPHA"), 0, 0) == 0);
		FX_CHECK(tc_reclaim(cc, &freed) == 0);
		tc_close(cc);
		_exit(0);
	}
	assert_int_equal(fx_wait(pid), 0);
	assert_memory_equal(p, "alpha", 5);
	ASSERT_RC(2, tc_get_many(c, r, 2));
	assert_memory_equal(b[0], "ALPHA", 5);
	ASSERT_RC(0, tc_unlink(name));
	v[0] = v[1] = &p;
	ASSERT_RC(-ESTALE, tc_peek_many(c, r, 2, v));
	ASSERT_RC(-ESTALE, r[0].rc);
	ASSERT_RC(-ESTALE, r[1].rc);
	assert_null(v[0]);
	assert_null(v[1]);
	ASSERT_RC(-ESTALE, tc_get_many(c, r, 2));
	assert_memory_equal(p, "alpha", 5); /* the section still holds */
	tc_read_unlock(c);
	tc_close(c);

	tc_cache *d = fx_open(name, 1024, 4u << 20, 8);
	ASSERT_RC(0, tc_set(d, KS("a"), KS("alpha"), 0, 0));
	tc__st(&d->h->audit_pid, (uint64_t)getpid());
	tc__st(&d->h->audit_start, tc__self_start());
	tc__st(&d->h->state, TC_STATE_AUDITING);
	ASSERT_RC(-EBUSY, tc_get_many(d, r, 2));
	ASSERT_RC(-EBUSY, r[0].rc);
	ASSERT_RC(-EBUSY, r[1].rc);
	tc__st(&d->h->state, TC_STATE_READY);
	ASSERT_RC(1, tc_get_many(d, r, 2));
	tc_close(d);
}

/* tc_peek_many counts as the same tc_peek calls. */
static void test_many_peek_counts_as_the_same_tc_peek_calls(void **state)
{
	(void)state;
	char na[TC_NAME_MAX + 1], nb[TC_NAME_MAX + 1];
	tc_cache *ca = fx_open(na, 1024, 4u << 20, 8), *cb = fx_open(nb, 1024, 4u << 20, 8);
	tc_cache *cs[2] = { ca, cb };
	for (int i = 0; i < 2; i++) {
		ASSERT_RC(0, tc_set(cs[i], KS("a"), KS("1"), 0, 0));
		ASSERT_RC(0, tc_set(cs[i], KS("long"), KS("123456789"), 0, 0));
	}
	tc_req r[5] = { req_s("a", NULL, 0), req_s("x", NULL, 0), req_s("long", NULL, 0),
			req_s("a", NULL, 0), req_s("a", NULL, 0) };
	r[3].klen = 0;
	const void *v[5];
	ASSERT_RC(0, tc_read_lock(ca));
	ASSERT_RC(3, tc_peek_many(ca, r, 5, v));
	tc_read_unlock(ca);
	ASSERT_RC(0, tc_read_lock(cb));
	for (int i = 0; i < 5; i++) {
		const void *p;
		tc_meta m;
		ASSERT_RC(r[i].rc, tc_peek(cb, r[i].key, r[i].klen, &p, &m));
	}
	tc_read_unlock(cb);
	tc_stats sa, sb;
	ASSERT_RC(0, tc_get_stats(ca, &sa));
	ASSERT_RC(0, tc_get_stats(cb, &sb));
	assert_int_equal(sa.hits, 3);
	assert_int_equal(sa.misses, 1);
	assert_int_equal(sa.errors, 1);
	assert_int_equal(sa.hits, sb.hits);
	assert_int_equal(sa.misses, sb.misses);
	assert_int_equal(sa.errors, sb.errors);
	assert_int_equal(sa.ops, sb.ops);
	tc_close(ca);
	tc_close(cb);
}

/*
 * A call refused as a whole answers every request it was given with its
 * code: a NULL handle, and tc_peek_many with NULL vals, set each rc to
 * -EINVAL (and each pointer to NULL), as -EUSERS, -ESTALE and -EBUSY do,
 * so that a request array used before does not keep its old answers.  With
 * N > INT_MAX nothing is written (N says nothing about the array then).
 */
static void test_many_refused_call_answers_each_request(void **state)
{
	(void)state;
	char name[TC_NAME_MAX + 1];
	tc_cache *c = fx_open(name, 1024, 4u << 20, 8);
	ASSERT_RC(0, tc_set(c, KS("a"), KS("alpha"), 0, 0));
	char b[2][8];
	tc_req r[2] = { req_s("a", b[0], 8), req_s("a", b[1], 8) };
	const void *v[2];
	ASSERT_RC(2, tc_get_many(c, r, 2)); /* rc 0 in both */
	ASSERT_RC(-EINVAL, tc_get_many(NULL, r, 2));
	ASSERT_RC(-EINVAL, r[0].rc);
	ASSERT_RC(-EINVAL, r[1].rc);
	ASSERT_RC(0, tc_read_lock(c));
	ASSERT_RC(2, tc_peek_many(c, r, 2, v));
	assert_non_null(v[1]);
	ASSERT_RC(-EINVAL, tc_peek_many(NULL, r, 2, v));
	ASSERT_RC(-EINVAL, r[0].rc);
	ASSERT_RC(-EINVAL, r[1].rc);
	assert_null(v[0]);
	assert_null(v[1]);
	ASSERT_RC(2, tc_peek_many(c, r, 2, v));
	ASSERT_RC(-EINVAL, tc_peek_many(c, r, 2, NULL));
	ASSERT_RC(-EINVAL, r[0].rc);
	ASSERT_RC(-EINVAL, r[1].rc);
	tc_read_unlock(c);
	r[0].rc = r[1].rc = 7;
	ASSERT_RC(-EINVAL, tc_get_many(c, r, (size_t)INT_MAX + 1));
	assert_int_equal(r[0].rc, 7); /* untouched */
	tc_close(c);
}

struct nslot {
	tc_cache *c;
	tc_req r[2];
	char b[2][8];
	int rc, prc, rc0, rc1;
};

static void *nslot_main(void *arg)
{
	struct nslot *x = arg;
	const void *v[2] = { x, x };
	x->rc = tc_get_many(x->c, x->r, 2);
	x->rc0 = x->r[0].rc;
	x->rc1 = x->r[1].rc;
	x->prc = tc_peek_many(x->c, x->r, 2, v); /* no section: -EINVAL first */
	if (v[0] || v[1])
		x->prc = 1;
	return NULL;
}

/* No reader slot left for the thread: -EUSERS for the call and each
 * request, and nothing counted in a slot it does not have. */
static void test_many_without_a_reader_slot(void **state)
{
	(void)state;
	char name[TC_NAME_MAX + 1];
	tc_cache *c = fx_open(name, 1024, 4u << 20, 1); /* one slot */
	ASSERT_RC(0, tc_set(c, KS("a"), KS("alpha"), 0, 0)); /* this thread's */
	struct nslot x = { .c = c };
	x.r[0] = req_s("a", x.b[0], 8);
	x.r[1] = req_s("a", x.b[1], 8);
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, nslot_main, &x), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	ASSERT_RC(-EUSERS, x.rc);
	ASSERT_RC(-EUSERS, x.rc0);
	ASSERT_RC(-EUSERS, x.rc1);
	ASSERT_RC(-EINVAL, x.prc);
	ASSERT_RC(-EINVAL, x.r[0].rc); /* the peek's answer, last */
	char b[8];
	ASSERT_RC(0, tc_get(c, KS("a"), b, sizeof(b), NULL));
	tc_close(c);
}

/* A thread with two handles on one segment: a batch on one inside a
 * section of the other, and tc_peek_many on each only inside its own. */
static void test_many_two_handles_in_one_thread(void **state)
{
	(void)state;
	char name[TC_NAME_MAX + 1];
	tc_cache *a = fx_open(name, 1024, 4u << 20, 8), *b = fx_attach(name);
	ASSERT_RC(0, tc_set(a, KS("k"), KS("one"), 0, 0));
	const void *p, *v[1] = { NULL };
	char buf[8];
	tc_meta m;
	tc_req r[1] = { req_s("k", buf, sizeof(buf)) };
	ASSERT_RC(0, tc_read_lock(a));
	ASSERT_RC(0, tc_peek(a, KS("k"), &p, &m));
	ASSERT_RC(-EINVAL, tc_peek_many(b, r, 1, v)); /* b has no section */
	assert_null(v[0]);
	ASSERT_RC(1, tc_get_many(b, r, 1));
	ASSERT_RC(0, tc_set(b, KS("k"), KS("two"), 0, 0));
	uint64_t freed;
	ASSERT_RC(0, tc_reclaim(b, &freed)); /* b is outside any section */
	ASSERT_RC(1, tc_peek_many(a, r, 1, v));
	assert_memory_equal(v[0], "two", 3);
	assert_memory_equal(p, "one", 3); /* a's section holds */
	tc_read_unlock(a);
	ASSERT_RC(-EINVAL, tc_peek_many(a, r, 1, v));
	ASSERT_RC(0, tc_read_lock(b));
	ASSERT_RC(1, tc_peek_many(b, r, 1, v));
	assert_memory_equal(v[0], "two", 3);
	tc_read_unlock(b);
	tc_close(b);
	tc_close(a);
}

/* ---- a request changed by the caller during the call ------------------------ */

/*
 * The trap of these tests: the index page that holds the key's home bucket
 * faults on its first load (pass two, after pass one has read every
 * request), and the handler runs the test's ACT on TRAP.REQ (the caller's
 * other thread, in effect), opens the page and lets the load run again.  A
 * fault on TRAP.GUARD (a page after a key; NULL: none) is an over-read,
 * counted, and opens that page; any other fault is a real one: die of it.
 */
static struct {
	void *page, *guard;
	tc_req *req;
	const void *key; /* the key ACT may put in REQ */
	void (*act)(void);
	int traps, overreads;
} trap;

static void on_trap_segv(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	uint8_t *a = si->si_addr, *p = trap.page, *g = trap.guard;
	if (g && a >= g && a < g + page_size) {
		trap.overreads++;
		mprotect(g, page_size, PROT_READ | PROT_WRITE);
		trap.guard = NULL;
		return;
	}
	if (!p || a < p || a >= p + page_size) {
		signal(sig, SIG_DFL);
		return;
	}
	trap.act();
	trap.traps++;
	mprotect(p, page_size, PROT_READ | PROT_WRITE);
	trap.page = NULL;
}

/* Arm the trap on the page of BUCKET for request REQ, with ACT and GUARD
 * (made PROT_NONE here), OLD receiving the SIGSEGV action it replaces.
 * 0, or -1 when a page cannot be protected (a child exits on it). */
static int trap_arm(const void *bucket, tc_req *req, void (*act)(void), void *guard,
		    struct sigaction *old)
{
	struct sigaction sv;
	memset(&sv, 0, sizeof(sv));
	sv.sa_sigaction = on_trap_segv;
	sigemptyset(&sv.sa_mask);
	sv.sa_flags = SA_SIGINFO;
	trap.req = req;
	trap.act = act;
	trap.traps = trap.overreads = 0;
	trap.guard = guard;
	trap.page = (void *)((uintptr_t)bucket & ~(uintptr_t)(page_size - 1));
	sigaction(SIGSEGV, &sv, old);
	if (guard && mprotect(guard, page_size, PROT_NONE) != 0)
		return -1;
	return mprotect(trap.page, page_size, PROT_NONE);
}

/* The SIGSEGV action OLD back, and the pages the call did not fault on
 * opened. */
static void trap_disarm(const struct sigaction *old)
{
	sigaction(SIGSEGV, old, NULL);
	if (trap.page)
		mprotect(trap.page, page_size, PROT_READ | PROT_WRITE);
	if (trap.guard)
		mprotect(trap.guard, page_size, PROT_READ | PROT_WRITE);
	trap.page = trap.guard = NULL;
}

/*
 * tc_get_many reads each request's key length once: another thread of the
 * caller that changes .klen while the call runs changes which length the
 * call read, never how the bytes it returns are laid out.  The request
 * names a 40-byte key X with .klen 12; X's entry has the hash of X's first
 * 12 bytes (scribbled: its hash and its slot word, homed there), so that it
 * is the entry that a read of (that hash, X, 40 bytes) finds, as
 * tc_get_hashed shows.  The page of X's home bucket faults on its first
 * load (pass two, after pass one hashed and classed every request); the
 * handler sets .klen to 40 and lets the load run again.  The call may
 * answer for 12 bytes (-ENOENT: no such key) or for 40 (X's value, whole),
 * nothing else: X's first 16 bytes and its bytes 32..40 repeat its bytes
 * 0..8 and 8..16, so that a compare of 16 bytes could take X for the key.
 */
static void klen_to_40(void)
{
	*(volatile size_t *)&trap.req->klen = 40;
}

static void test_many_reads_a_request_length_once(void **state)
{
	(void)state;
	page_size = (size_t)sysconf(_SC_PAGESIZE);
	for (int peek = 0; peek < 2; peek++) {
		char name[TC_NAME_MAX + 1];
		fx_name(name);
		tc_cache *c = wb_create(name, 512, 4u << 20, 8, TC_EVICT_NONE);
		static const char x[41] = "abcdefghIJKLMNOPqrstuvwxyz012345IJKLMNOP";
		uint8_t val[48], buf[64];
		for (size_t i = 0; i < sizeof(val); i++)
			val[i] = (uint8_t)(0xc0 + i);
		ASSERT_RC(0, tc_set(c, x, 40, val, sizeof(val), 3, 0));
		/* X's entry moved under the hash of its first 12 bytes. */
		uint64_t h12 = tc__hash(c, x, 12, TC_KIND_KEY), *slotp, w;
		struct tc_entry *e = NULL;
		ASSERT_RC(0, tc__lookup(c, tc__hash(c, x, 40, TC_KIND_KEY), x, 40, TC_KIND_KEY,
					&slotp, &w, &e));
		tc__st(&e->hash, h12);
		tc__st(slotp, 0);
		struct tc_bucket *b = &c->index[h12 & c->bmask];
		int j = 0;
		while (j < TC_BUCKET_SLOTS && tc__ld(&b->w[j]))
			j++;
		assert_true(j < TC_BUCKET_SLOTS);
		tc__st(&b->w[j], TC_SW_FINAL | TC_TAG_OF(h12) << 48 | TC_SW_REF(w));
		tc_meta m;
		memset(buf, 0, sizeof(buf));
		ASSERT_RC(0, tc_get_hashed(c, h12, x, 40, buf, sizeof(buf), &m, NULL, NULL));
		assert_int_equal(m.len, sizeof(val));
		assert_memory_equal(buf, val, sizeof(val));
		ASSERT_RC(-ENOENT, tc_get(c, x, 12, buf, sizeof(buf), NULL));

		memset(buf, 0, sizeof(buf));
		tc_req r[1] = { { .key = x, .klen = 12, .buf = buf, .cap = sizeof(buf) } };
		const void *v[1] = { NULL };
		struct sigaction old;
		if (peek)
			ASSERT_RC(0, tc_read_lock(c));
		assert_int_equal(trap_arm(b, &r[0], klen_to_40, NULL, &old), 0);
		int got = peek ? tc_peek_many(c, r, 1, v) : tc_get_many(c, r, 1);
		trap_disarm(&old);
		assert_int_equal(trap.traps, 1);
		const uint8_t *out = peek ? v[0] : buf;
		if (r[0].rc == 0) {
			assert_int_equal(got, 1);
			assert_int_equal(r[0].meta.len, sizeof(val));
			if (memcmp(out, val, sizeof(val)) != 0)
				fail_msg("%s: the request's .klen went from 12 to 40 during the call: "
					 "rc 0, %zu bytes, but not X's value (they begin '%.24s', "
					 "X's bytes 16..40)", peek ? "tc_peek_many" : "tc_get_many",
					 r[0].meta.len, (const char *)out);
		} else {
			ASSERT_RC(-ENOENT, r[0].rc);
			assert_int_equal(got, 0);
		}
		if (peek)
			tc_read_unlock(c);
		tc_close(c);
	}
}

/*
 * The key a request names is read once too, with its length: the key that
 * pass one hashed is the one pass three compares, over the length pass one
 * read.  The request names a 20-byte key X; the page of X's home bucket
 * faults on its first load (pass two), and the handler makes the request
 * name Y, the 12 bytes just before a page that faults, with .klen 12: the
 * caller's other thread reusing the request for another key.  Y is X's
 * first 12 bytes, so that no compare can tell them apart before byte 12.
 * The call may answer for (X, 20) or for (Y, 12) (-ENOENT: no such key),
 * and reads none of the caller's bytes past the key it answers for.
 */
static void key_to_y(void)
{
	*(const void *volatile *)&trap.req->key = trap.key;
	*(volatile size_t *)&trap.req->klen = 12;
}

static void test_many_reads_a_request_key_with_its_length(void **state)
{
	(void)state;
	page_size = (size_t)sysconf(_SC_PAGESIZE);
	static const char x[21] = "abcdefghijklMNOPQRST";
	uint8_t *two = mmap(NULL, 2 * page_size, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(two != MAP_FAILED);
	uint8_t *y = two + page_size - 12;
	memcpy(y, x, 12);
	for (int peek = 0; peek < 2; peek++) {
		char name[TC_NAME_MAX + 1];
		fx_name(name);
		tc_cache *c = wb_create(name, 512, 4u << 20, 8, TC_EVICT_NONE);
		ASSERT_RC(0, tc_set(c, x, 20, "xval", 4, 3, 0));
		uint64_t hx = tc__hash(c, x, 20, TC_KIND_KEY);
		char buf[16];
		memset(buf, 0, sizeof(buf));
		tc_req r[1] = { { .key = x, .klen = 20, .buf = buf, .cap = sizeof(buf) } };
		const void *v[1] = { NULL };
		struct sigaction old;
		trap.key = y;
		if (peek)
			ASSERT_RC(0, tc_read_lock(c));
		/* The guard: the page after Y's 12 bytes. */
		assert_int_equal(trap_arm(&c->index[hx & c->bmask], &r[0], key_to_y,
					  two + page_size, &old), 0);
		int got = peek ? tc_peek_many(c, r, 1, v) : tc_get_many(c, r, 1);
		trap_disarm(&old);
		assert_int_equal(trap.traps, 1);
		if (trap.overreads)
			fail_msg("%s: the request went from (X, 20) to (Y, 12) during the call: "
				 "it read past Y's 12 bytes (answer %d)",
				 peek ? "tc_peek_many" : "tc_get_many", r[0].rc);
		if (r[0].rc == 0) {
			assert_int_equal(got, 1);
			assert_int_equal(r[0].meta.len, 4);
			assert_memory_equal(peek ? v[0] : (const void *)buf, "xval", 4);
		} else {
			ASSERT_RC(-ENOENT, r[0].rc);
			assert_int_equal(got, 0);
		}
		if (peek)
			tc_read_unlock(c);
		tc_close(c);
	}
	munmap(two, 2 * page_size);
}

/*
 * A request's buf and cap as the copy uses them: another thread of the
 * caller that makes a request's buf NULL (cap kept) during the call gets
 * -EINVAL for it, as such a request would, or the copy into the buf the
 * call read before; never a copy into NULL.  Run by a child, whose death
 * is the failure: the page of the key's home bucket faults in pass two,
 * after pass one checked the request, and the handler clears .buf.
 */
static void buf_to_null(void)
{
	*(void *volatile *)&trap.req->buf = NULL;
}

static void test_many_never_copies_into_a_buf_made_null_during_the_call(void **state)
{
	(void)state;
	page_size = (size_t)sysconf(_SC_PAGESIZE);
	char name[TC_NAME_MAX + 1];
	fx_name(name);
	tc_cache *c = wb_create(name, 512, 4u << 20, 8, TC_EVICT_NONE);
	static const char x[] = "buf-trap-key";
	ASSERT_RC(0, tc_set(c, x, 12, "xval", 4, 3, 0));
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		tc_cache *cc = fx_attach(name);
		char buf[16] = { 0 };
		tc_req r[1] = { { .key = x, .klen = 12, .buf = buf, .cap = sizeof(buf) } };
		uint64_t h = tc__hash(cc, x, 12, TC_KIND_KEY);
		struct sigaction old;
		if (trap_arm(&cc->index[h & cc->bmask], &r[0], buf_to_null, NULL, &old) != 0)
			_exit(2);
		int got = tc_get_many(cc, r, 1);
		trap_disarm(&old);
		if (trap.traps != 1)
			_exit(3);
		bool einval = r[0].rc == -EINVAL && got == 0;
		bool copied = r[0].rc == 0 && got == 1 && memcmp(buf, "xval", 4) == 0;
		_exit(einval || copied ? 0 : 4);
	}
	int st = fx_wait(pid);
	tc_close(c);
	tc_unlink(name);
	if (st != 0)
		fail_msg("tc_get_many of a request whose buf went NULL (cap 16) between the passes: "
			 "child status %d (128 + signal: it copied into NULL; 4: another answer)", st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		FX_TEST(test_many_race_with_moves_deletes_and_grace_periods),
		FX_TEST(test_many_race_under_lru_eviction),
		FX_TEST(test_many_kept_scan_survives_changes_between_passes),
		FX_TEST(test_many_kept_scan_survives_changes_checked),
		FX_TEST(test_many_reads_requests_in_their_order),
		FX_TEST(test_many_never_answers_a_key_newer_then_older),
		FX_TEST(test_many_header_scribbled_between_passes),
		FX_TEST(test_many_agrees_with_tc_get_on_a_scribbled_index),
		FX_TEST(test_many_bad_requests_at_chunk_edges_empty_and_expired),
		FX_TEST(test_many_inside_a_section_unlinked_and_audited),
		FX_TEST(test_many_peek_counts_as_the_same_tc_peek_calls),
		FX_TEST(test_many_two_handles_in_one_thread),
		FX_TEST(test_many_refused_call_answers_each_request),
		FX_TEST(test_many_without_a_reader_slot),
		FX_TEST(test_many_reads_a_request_length_once),
		FX_TEST(test_many_reads_a_request_key_with_its_length),
		FX_TEST(test_many_never_copies_into_a_buf_made_null_during_the_call),
	};
	return fx_run(tests);
}
