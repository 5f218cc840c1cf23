/* SPDX-License-Identifier: MIT */
/*
 * health.c - the checks of a segment: health (and its --write round trip)
 * and audit (the exact mark-and-sweep).
 */
#include "inspect.h"

struct check {
	const char *name;
	bool ok;
	bool warn_only;
	char detail[160];
};

static int count_any(const void *key, size_t klen, const tc_meta *meta, void *arg)
{
	(void)key;
	(void)klen;
	(void)meta;
	(*(uint64_t *)arg)++;
	return 0;
}

struct stuck {
	uint32_t self;
	uint32_t n;           /* readers stuck in a read section */
	uint32_t pid;         /* the first one */
	uint64_t lag;
};

static int find_stuck(const tc_reader *r, void *arg)
{
	struct stuck *k = arg;

	if (r->pid == k->self || r->state != TC_READER_ACTIVE || r->epoch_lag < STUCK_LAG)
		return 0;
	if (!k->n++ || r->epoch_lag > k->lag) {
		k->pid = r->pid;
		k->lag = r->epoch_lag;
	}
	return 0;
}

/* The outcome of health: its checks, the round trip's times, what it read. */
struct health {
	struct check ck[16];
	int nck;
	bool ok;                        /* no check failed (warnings do not count) */
	uint64_t t_set, t_get, t_del;   /* ns, with --write */
	tc_stats st;
	struct counts att;
};

static void check(struct health *h, const char *name, bool ok, bool warn_only,
		  const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void check(struct health *h, const char *name, bool ok, bool warn_only,
		  const char *fmt, ...)
{
	struct check *k = &h->ck[h->nck++];
	va_list ap;

	k->name = name;
	k->ok = ok;
	k->warn_only = warn_only;
	va_start(ap, fmt);
	vsnprintf(k->detail, sizeof k->detail, fmt, ap);
	va_end(ap);
	if (!ok && !warn_only)
		h->ok = false;
}

/* --write: set, get, peek and delete a scratch key, and get it once more. */
static void round_trip(tc_cache *c, struct health *h)
{
	char key[96], val[64], got[64];
	const void *pv = NULL;
	uint64_t t0;
	tc_meta m;
	int rc;

	snprintf(key, sizeof key, "__tc_health.%ld.%" PRIu64, (long)getpid(), mono_ns());
	snprintf(val, sizeof val, "health-%" PRIu64, (uint64_t)(mono_ns() ^ 0x5a5aull));

	t0 = mono_ns();
	rc = tc_set(c, key, strlen(key), val, strlen(val), 0, 60000);
	h->t_set = mono_ns() - t0;
	check(h, "set", rc == 0, false, "%s%s", rc ? tc_strerror(rc) : "ok",
	      rc == -ENOSPC ? " (segment full, eviction none)" : "");
	if (rc) {
		/* Nothing to read back: say so rather than report misses. */
		check(h, "get", false, false, "%s", "skipped: set failed");
		check(h, "peek", false, false, "%s", "skipped: set failed");
		check(h, "delete", false, false, "%s", "skipped: set failed");
		return;
	}

	t0 = mono_ns();
	memset(got, 0, sizeof got);
	rc = tc_get(c, key, strlen(key), got, sizeof got - 1, &m);
	h->t_get = mono_ns() - t0;
	check(h, "get", rc == 0 && m.len == strlen(val) && !memcmp(got, val, m.len), false, "%s",
	      rc ? tc_strerror(rc) : (m.len == strlen(val) && !memcmp(got, val, m.len))
		      ? "ok" : "value differs from the one set");

	rc = tc_read_lock(c);
	if (!rc) {
		int prc = tc_peek(c, key, strlen(key), &pv, &m);

		check(h, "peek", prc == 0 && pv && m.len == strlen(val) && !memcmp(pv, val, m.len),
		      false, "%s", prc ? tc_strerror(prc) : "ok");
		tc_read_unlock(c);
	} else {
		check(h, "peek", false, false, "read lock: %s", tc_strerror(rc));
	}

	t0 = mono_ns();
	rc = tc_del(c, key, strlen(key));
	h->t_del = mono_ns() - t0;
	check(h, "delete", rc == 0, false, "%s", rc ? tc_strerror(rc) : "ok");
	rc = tc_get(c, key, strlen(key), got, sizeof got, &m);
	check(h, "get after delete", rc == -ENOENT, false, "%s",
	      rc == -ENOENT ? "ok (not found)" : rc ? tc_strerror(rc) : "key still present");
}

/* The checks that only read. */
static void read_checks(tc_cache *c, struct health *h)
{
	struct stuck stk = { .self = (uint32_t)getpid() };
	uint32_t lpid = 0, dead = 0, readers = 0;
	uint64_t lage = 0, scanned = 0;
	bool lalive = false;
	tc_stats *st = &h->st;
	char comm[32];
	int rc;

	rc = tc_get_stats(c, st);
	if (rc) {
		check(h, "stats", false, false, "%s", tc_strerror(rc));
		memset(st, 0, sizeof *st);
	} else {
		check(h, "entries within capacity", st->entries <= st->max_entries, false,
		      "%" PRIu64 " / %" PRIu64, st->entries, st->max_entries);
		check(h, "memory within arena", st->memory_used <= st->memory_bytes &&
		      st->memory_carved <= st->memory_bytes && st->memory_retired <= st->memory_used,
		      false, "used %" PRIu64 ", retired %" PRIu64 ", carved %" PRIu64 " of %" PRIu64,
		      st->memory_used, st->memory_retired, st->memory_carved, st->memory_bytes);
		check(h, "readers within slots", st->readers <= st->max_readers, false,
		      "%" PRIu32 " / %" PRIu32, st->readers, st->max_readers);
	}
	rc = tc_scan(c, "*", count_any, &scanned);
	check(h, "scan", rc == 0 && scanned <= st->max_entries, false, "%s, %" PRIu64 " live keys",
	      rc ? tc_strerror(rc) : "ok", scanned);
	other_readers(c, &readers, &dead);
	check(h, "dead reader slots", dead == 0, true, "%" PRIu32 " dead of %" PRIu32, dead,
	      readers);
	rc = tc_readers(c, find_stuck, &stk);
	if (rc)
		check(h, "stuck readers", false, false, "%s", tc_strerror(rc));
	else if (stk.n)
		check(h, "stuck readers", false, false, "%" PRIu32 " in a read section for %" PRIu64
		      "+ epochs (pid %" PRIu32 " %s): memory cannot be reclaimed", stk.n, stk.lag,
		      stk.pid, proc_comm(stk.pid, comm, sizeof comm));
	else
		check(h, "stuck readers", true, false, "%s", "none");
	if (tc_lease_holder(c, &lpid, &lage, &lalive))
		lpid = 0;
	if (lpid)
		check(h, "sweeper", lalive, true, "pid %" PRIu32 " %s", lpid,
		      lalive ? "alive" : "dead");
	else
		check(h, "sweeper", false, true, "%s", "none holds the lease");
	other_attached(c, 0, &h->att);
}

static void health_json(const struct health *h, bool write)
{
	jobj(NULL);
	jbool("ok", h->ok);
	jbool("round_trip", write);
	jarr("checks");
	for (int i = 0; i < h->nck; i++) {
		const struct check *k = &h->ck[i];

		jobj(NULL);
		jstr("name", k->name);
		jstr("status", k->ok ? "ok" : k->warn_only ? "warn" : "fail");
		jstr("detail", k->detail);
		jobj_end();
	}
	jarr_end();
	if (write) {
		jobj("latency_ns");
		ju64("set", h->t_set);
		ju64("get", h->t_get);
		ju64("del", h->t_del);
		jobj_end();
	} else {
		jnull("latency_ns");
	}
	ju64("memory_used", h->st.memory_used);
	ju64("memory_bytes", h->st.memory_bytes);
	ju64("entries", h->st.entries);
	ju64("attached", h->att.n);
	jobj_end();
}

static void health_human(const struct health *h, bool write)
{
	for (int i = 0; i < h->nck; i++) {
		const struct check *k = &h->ck[i];

		printf("%-4s  %-24s %s\n", k->ok ? "ok" : k->warn_only ? "warn" : "FAIL", k->name,
		       k->detail);
	}
	if (write)
		printf("round trip: set %" PRIu64 " ns, get %" PRIu64 " ns, del %" PRIu64 " ns\n",
		       h->t_set, h->t_get, h->t_del);
	printf("memory %" PRIu64 " / %" PRIu64 " bytes, %" PRIu64 " entries, %" PRIu32
	       " other processes attached\n", h->st.memory_used, h->st.memory_bytes,
	       h->st.entries, h->att.n);
	printf("%s\n", h->ok ? "healthy" : "UNHEALTHY");
}

/*
 * cmd_health - consistency checks that read only: no call here counts in
 * the segment's lifetime counters (hits, misses, sets, deletes, ops), which
 * monitoring reads.  With WRITE, also a set/get/peek/delete round trip on a
 * scratch key, which does count (one set, two gets, one delete).  A reader
 * stuck in a read section fails the check: it holds back reclamation in
 * every process, so writers run short of memory.
 */
int cmd_health(const char *name, bool write)
{
	struct health h = { .ok = true };
	tc_cache *c;
	int ex;

	if ((ex = open_seg(name, &c)))
		return ex;
	if (write)
		round_trip(c, &h);
	read_checks(c, &h);
	if (g_json)
		health_json(&h, write);
	else
		health_human(&h, write);
	tc_close(c);
	return h.ok ? 0 : EX_TC_SEGMENT;
}

int cmd_audit(const char *name)
{
	tc_cache *c;
	tc_audit_report r;
	struct counts att;
	int rc, ex;

	if ((ex = open_seg(name, &c)))
		return ex;
	memset(&r, 0, sizeof r);
	rc = tc_audit(c, &r);
	if (rc == -EBUSY) {
		char msg[1200];

		other_attached(c, 0, &att);
		snprintf(msg, sizeof msg, "segment '%s' is in use%s%s; audit needs it quiescent", name,
			 att.n ? " by " : "", att.pids);
		ex = refuse_in_use(&att, msg);
	} else if (rc) {
		ex = fail(rc, "cannot audit '%s'", name);
	} else if (g_json) {
		jobj(NULL);
		ju64("blocks", r.blocks);
		ju64("live_blocks", r.live_blocks);
		ju64("recovered", r.recovered);
		ju64("recovered_bytes", r.recovered_bytes);
		ju64("tentative_cleared", r.tentative_cleared);
		ju64("skipped_bytes", r.skipped_bytes);
		ji64("live_before", r.live_before);
		ji64("live_after", r.live_after);
		jobj_end();
	} else {
		printf("blocks %" PRIu64 ", live %" PRIu64 ", recovered %" PRIu64 " (%" PRIu64
		       " bytes), half-inserts cleared %" PRIu64 ", re-cut %" PRIu64
		       " bytes, live keys %" PRId64 " -> %" PRId64 "\n", r.blocks, r.live_blocks,
		       r.recovered, r.recovered_bytes, r.tentative_cleared, r.skipped_bytes,
		       r.live_before, r.live_after);
	}
	tc_close(c);
	return ex;
}
