/* SPDX-License-Identifier: MIT */
/*
 * runner.c - shm-bench's processes: the preload, the forked readers and
 * writers released at once through a flag in a shared mapping, their timed
 * loops, and the parent waiting for them.
 */
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "bench.h"

static volatile uint64_t sink;

/* Preload keys 0..keys-1 with version 1 of writer 0. */
int preload(const struct backend *be, void *st, char *err, size_t len)
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

/* Writers with --rate: wait until the next slot of the schedule NEXT_T. */
static inline void pace(double *next_t, double period)
{
	*next_t += period;
	for (;;) {
		double ahead = *next_t - (double)now_ticks();

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

/*
 * A timed peek: read lock, lookup, a read of the value's first and last
 * word (a zero-copy reader uses the value), unlock.  In validating mode the
 * check runs inside the section but outside the timing: two timed pieces,
 * one timer overhead taken off the second so the sum carries exactly one.
 * Returns the backend's rc; the ticks in *DT, the check in *CLS.
 */
static inline int timed_peek(const struct backend *be, void *st, const char *k, uint64_t idx,
			     uint64_t *dt, enum vcheck *cls)
{
	const void *pv = NULL;
	size_t len = 0;
	uint64_t t0, t1, t2, t3;
	int rc;

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
			*cls = check_value(pv, len, idx);
		t2 = now_ticks();
		be->peek_end(st);
		t3 = now_ticks();
		uint64_t extra = t3 - t2;

		extra = extra > (uint64_t)timer_ovh_ticks ? extra - (uint64_t)timer_ovh_ticks : 0;
		t1 += extra;
	}
	*dt = t1 - t0;
	return rc;
}

/* One timed operation OP on key K (index IDX); VAL is the value to write,
 * BUF the copy-out buffer.  Returns the backend's rc. */
static inline int timed_op(const struct backend *be, void *st, enum op_kind op, const char *k,
			   uint64_t idx, const unsigned char *val, unsigned char *buf,
			   uint64_t *dt, enum vcheck *cls)
{
	uint64_t t0, t1;
	size_t len = 0;
	int rc;

	switch (op) {
	case OP_GET:
		t0 = now_ticks();
		rc = be->get(st, k, KEY_LEN, buf, cfg.vsize + 64, &len);
		t1 = now_ticks();
		if (rc == 0 && cfg.validate)
			*cls = check_value(buf, len, idx);
		break;
	case OP_PEEK:
		return timed_peek(be, st, k, idx, dt, cls);
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
	*dt = t1 - t0;
	return rc;
}

/* Count a recorded operation's outcome (RC >= 0) in R. */
static inline void tally(struct proc_res *r, enum op_kind op, int rc, enum vcheck cls,
			 bool expect_present)
{
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

/* The measured loop; RECORD false is the warm-up.  Out of line, as
 * run_batch: tools/callgrind.sh zeroes its counts on entering either
 * (--zero-before), so that a measuring child does not inherit the costs
 * its parent counted before the fork (the preload's sets). */
static __attribute__((noinline)) void run_loop(const struct backend *be, void *st, struct shared *sh, int slot, int role,
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
	uint64_t start_ns = clock_ns(), start_cpu = cpu_time_ns();

	if (record && cfg.duration > 0)
		deadline = start + (uint64_t)(cfg.duration * 1e9 / ns_per_tick);
	for (uint64_t i = 0;; i++) {
		if (limit && i >= limit)
			break;
		if ((i & 63) == 0) {
			if (deadline && now_ticks() >= deadline)
				break;
			/* Not before the first 64: a writer that started after
			 * the readers had finished (a busy host) still times
			 * some sets, and --percentiles of the writes has them. */
			if (record && !limit && i && __atomic_load_n(&sh->stop, __ATOMIC_RELAXED))
				break;
		}
		enum op_kind op = role == ROLE_WRITER ? cfg.write_op
			: (cfg.write_pct && rng_below(rs, 100) < cfg.write_pct ? cfg.write_op
			   : cfg.read_op == OP_MGET ? OP_GET /* warmup of an mget run */
			   : cfg.read_op);
		uint64_t idx, dt;
		enum vcheck cls = V_OK;
		int rc;

		if (op == OP_ADD) {
			idx = ((uint64_t)slot << 40) | (i & 0xffffffffffull);
			fmt_key(k, 'a', idx);
		} else {
			idx = next_key(rs);
			fmt_key(k, 'k', idx);
		}
		if (op == OP_SET || op == OP_ADD)
			make_value(val, idx, (++seq << 8) | wid, cfg.validate);
		if (period > 0)
			pace(&next_t, period);
		rc = timed_op(be, st, op, k, idx, val, buf, &dt, &cls);
		if (!record) {
			if (rc < 0) {
				note_error(r, rc, op_names[op]);
				return;
			}
			continue;
		}
		hist_add(&r->h[op], dt);
		if (rc < 0) {
			note_error(r, rc, op_names[op]);
			continue;
		}
		tally(r, op, rc, cls, expect_present);
	}
	if (record) {
		r->elapsed_ns = clock_ns() - start_ns;
		r->cpu_ns = cpu_time_ns() - start_cpu;
	}
}

static inline bool op_is_mget(void)
{
	return cfg.read_op == OP_MGET;
}

/*
 * Readers with --batch N: N reads between one pair of timer reads, recorded
 * as N operations of the mean, so that costs below the counter's step (10 ns
 * on some VMs) and the timer's own overhead (taken once per batch) are
 * resolved.  Percentiles are then those of N-read means: tails are smoothed.
 * Keys are generated before the timed region.
 */
static __attribute__((noinline)) void run_batch(const struct backend *be, void *st,
						 struct shared *sh, int slot, uint64_t limit,
						 unsigned char *buf, uint64_t *rs)
{
	struct proc_res *r = &sh->r[slot];
	const unsigned n = cfg.batch;
	const bool expect_present = !be->may_drop();
	const uint64_t ovh = (uint64_t)timer_ovh_ticks;
	char (*keys)[KEY_LEN + 1] = malloc((size_t)n * sizeof(*keys));
	unsigned char *mbuf = op_is_mget() ? malloc((size_t)n * (cfg.vsize + 64)) : NULL;
	uint64_t start_ns = clock_ns(), start_cpu = cpu_time_ns(), deadline = 0, start = now_ticks();
	enum op_kind op = cfg.read_op;

	if (!keys || (op_is_mget() && !mbuf)) {
		note_error(r, -ENOMEM, "batch");
		free(keys);
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

		if (op == OP_MGET) {
			int rc = be->get_many(st, (const char (*)[KEY_LEN + 1])keys, KEY_LEN, n,
					      mbuf, cfg.vsize + 64, &hits, &misses);
			if (rc < 0) {
				errs = n;
				last_err = rc;
			}
		}
		for (unsigned j = 0; op != OP_MGET && j < n; j++) {
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
	free(mbuf);
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

static pid_t kids[MAX_PROCS];
static int nkids;
const struct backend *active;

void on_signal(int sig)
{
	for (int i = 0; i < nkids; i++)
		if (kids[i] > 0)
			kill(kids[i], SIGKILL);
	if (active && active->teardown && active == &be_tickcache && cfg.seg[0])
		tc_unlink(cfg.seg);
	signal(sig, SIG_DFL);
	raise(sig);
}

/*
 * Fork the NPROCS processes (readers first), release them at once, and
 * wait for them all; when the last reader ends (or a process fails), the
 * writers are told to stop.  Returns the number of processes that failed.
 */
int run_procs(const struct backend *be, struct shared *sh, int nprocs)
{
	fflush(NULL);
	for (int i = 0; i < nprocs; i++) {
		int role = i < cfg.readers ? ROLE_READER : ROLE_WRITER;
		pid_t pid = fork();

		if (pid < 0) {
			on_signal(SIGTERM);
		} else if (pid == 0) {
			signal(SIGINT, SIG_DFL);
			signal(SIGTERM, SIG_DFL);
			run_proc(be, sh, i, role);
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
	return failed;
}
