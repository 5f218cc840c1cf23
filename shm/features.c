/* SPDX-License-Identifier: MIT */
/*
 * features.c - fixed-window rate limits and single-flight read-through
 * loading (needs.md sections 3 and 5), built on the index's generic writer
 * (tc__write) in namespaces of their own, so no ordinary key collides.
 *
 * Rate limits (TC_KIND_RATE).  One entry per limiter key holding (window
 * start, count).  A call reads the clock once, takes window = now rounded
 * down to a multiple of window_ms, reads the entry and writes the next
 * state with a compare-and-set on the version it read: (w, n) -> (w, n + 1)
 * when the stored window is this one or a later one (a caller whose clock
 * reading is older than another's joins the newer window), else
 * (window, 1).  A lost CAS starts over.  So every call is one increment of
 * exactly one window's counter, in the order of the CAS on the key's index
 * slot: the calls of a window see 1, 2, 3, ... and at most LIMIT of them
 * see a count <= LIMIT, across any number of processes.  The entry lives
 * two windows after its last write and then expires like any key.
 *
 * Single flight (TC_KIND_LOAD).  On a miss a caller adds a lease entry
 * under the same key (add semantics: of N racing callers exactly one
 * wins) holding its pid, process start time, deadline and a unique token,
 * with a TTL of the lease length (wait_ms, at least 1 s).  The winner
 * checks the cache again (the value may have landed between its miss and
 * its lease: "lock + double check"), runs the loader, stores the value,
 * then deletes the lease if it is still its own (delete-if-version).
 * The others poll the cache with a sleep that doubles from 50 us up to
 * 10 ms, bounded by wait_ms (-ETIMEDOUT).  A waiter takes the lease over
 * with a CAS on the lease's version (never a blind overwrite: of several
 * waiters only one succeeds) when its holder is dead (pid gone or reused)
 * or its deadline passed; an expired lease counts as absent, so the add
 * succeeds then.  A loader error is returned to its own caller unchanged,
 * nothing is cached, and the lease is deleted so that a waiter takes over
 * at its next poll.
 */
#include "index.h"

#include <sched.h>
#include <stdlib.h>
#include <unistd.h>

#define RATE_TYPE  0x7A7E0001u
#define LEASE_TYPE 0x1EA5E001u
#define MAX_ATTEMPTS 10000

/* ---- rate limits ------------------------------------------------------------ */

struct rate_val {
	int64_t  window_ms; /* window start, CLOCK_REALTIME ms */
	uint64_t count;     /* calls counted in that window */
};

/*
 * Read the live value of (KEY, KIND) into BUF (exactly LEN bytes and type
 * TYPE expected).  0 with *version, -ENOENT (absent or expired),
 * TC_ECORRUPT (another shape), or an error of tc__enter.
 */
static int read_kind(tc_cache *c, uint32_t kind, const void *key, size_t klen, void *buf,
		     size_t len, uint32_t type, uint64_t *version)
{
	uint64_t hash = tc__hash(c, key, klen, kind);
	struct tc_rslot *s;
	int rc = tc__enter(c, &s);
	if (rc)
		return rc;
	uint64_t *slotp, w;
	struct tc_entry *e;
	rc = tc__lookup(c, hash, key, klen, kind, &slotp, &w, &e);
	if (rc == 0) {
		/* Each field loaded once, checked, and only that copy used; with
		 * checksums the copy is verified (a scribbled window or lease is
		 * TC_ECORRUPT, never counted from or sealed anew). */
		uint32_t kl, vl, cls;
		int64_t exp = tc__ld(&e->expires_ms);
		if (exp != 0 && exp <= tc__now_ms())
			rc = -ENOENT;
		else if (!tc__block_kv(c, TC_SW_REF(w), kind, &kl, &vl, &cls) || kl != klen ||
			 vl != len)
			rc = TC_ECORRUPT;
		else {
			uint32_t ty = tc__ld(&e->type);
			uint64_t ver = tc__ld(&e->version);
			memcpy(buf, tc__eval(e, (uint32_t)klen), len);
			if (ty != type || (c->csum && tc__csum_check(c, e, hash, klen, cls, ver, exp,
								    vl, ty, buf)))
				rc = TC_ECORRUPT;
			else
				*version = ver;
		}
	}
	tc__exit(c);
	return rc;
}

int tc_rate_limit(tc_cache *c, const void *key, size_t klen, uint64_t limit,
		  uint64_t window_ms, bool *allowed, uint64_t *count)
{
	if (!c || !tc__valid_key(key, klen) || !allowed || limit == 0 || window_ms == 0 ||
	    window_ms > (uint64_t)INT64_MAX / 4)
		return -EINVAL;
	int rc = -EAGAIN;
	struct rate_val nv = { 0, 0 };
	for (int attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
		int64_t now = tc__now_ms();
		int64_t win = now >= 0 ? now - now % (int64_t)window_ms : 0;
		struct rate_val cur;
		uint64_t ver = 0;
		int r = read_kind(c, TC_KIND_RATE, key, klen, &cur, sizeof(cur), RATE_TYPE, &ver);
		if (r && r != -ENOENT)
			return r;
		if (r == 0 && cur.window_ms >= win) {
			nv.window_ms = cur.window_ms;
			nv.count = cur.count + 1;
		} else {
			nv.window_ms = win;
			nv.count = 1;
		}
		rc = tc__write(c, TC_KIND_RATE, key, klen, &nv, sizeof(nv), RATE_TYPE,
			       2 * window_ms, r == 0 ? TC_OP_CAS : TC_OP_ADD, ver, 0, NULL, 0);
		if (rc == 0)
			break;
		if (rc != TC_ECONFLICT && rc != -ENOENT && rc != -EEXIST)
			return rc;
		if (attempt > 16)
			sched_yield();
	}
	if (rc)
		return rc;
	*allowed = nv.count <= limit;
	if (count)
		*count = nv.count;
	return 0;
}

/* ---- single-flight loading ----------------------------------------------------- */

struct lease_val {
	uint32_t pid;        /* holder */
	uint32_t pad;
	uint64_t start;      /* holder's process start time (/proc/PID/stat) */
	int64_t  deadline_ms;/* CLOCK_REALTIME ms; after it, the lease may be taken */
	uint64_t token;      /* unique per acquisition */
};

static uint64_t token_seq;

static uint64_t new_token(void)
{
	uint64_t n = tc__add_ret(&token_seq, 1);
	return (uint64_t)tc__self_pid() << 40 ^ tc__mono_ns() << 8 ^ n;
}

/* Delete our lease (TOKEN) if it is still ours. */
static void lease_release(tc_cache *c, const void *key, size_t klen, uint64_t token)
{
	struct lease_val cur;
	uint64_t ver;
	if (read_kind(c, TC_KIND_LOAD, key, klen, &cur, sizeof(cur), LEASE_TYPE, &ver) == 0 &&
	    cur.token == token)
		(void)tc__del_version(c, TC_KIND_LOAD, key, klen, ver);
}

/* We hold the lease: double-check, load, store, release. */
static int run_load(tc_cache *c, const void *key, size_t klen, void *buf, size_t cap,
		    tc_meta *meta, uint32_t type, uint64_t ttl_ms, tc_loader_fn load, void *arg,
		    uint64_t token)
{
	int rc = tc_get(c, key, klen, buf, cap, meta);
	if (rc == 0 || rc == -E2BIG) {
		lease_release(c, key, klen, token);
		return rc;
	}
	size_t len = 0;
	rc = load(key, klen, buf, cap, &len, arg);
	if (rc == 0 && len > cap)
		rc = -E2BIG; /* the loader broke its contract: nothing is cached */
	if (rc == 0) {
		int sr = tc_set(c, key, klen, buf, len, type, ttl_ms);
		if (meta) {
			tc_meta m;
			int gr = sr == 0 ? tc_get(c, key, klen, NULL, 0, &m) : -ENOENT;
			if ((gr == 0 || gr == -E2BIG) && m.len == len && m.type == type)
				*meta = m;
			else /* not cached (or replaced already): version 0 says so */
				*meta = (tc_meta){ .len = len, .type = type };
		}
	}
	lease_release(c, key, klen, token);
	return rc;
}

int tc_get_or_load(tc_cache *c, const void *key, size_t klen, void *buf, size_t cap,
		   tc_meta *meta, uint32_t type, uint64_t ttl_ms, uint64_t wait_ms,
		   tc_loader_fn load, void *arg)
{
	if (!c || !load || !tc__valid_key(key, klen) || (!buf && cap))
		return -EINVAL;
	if (wait_ms > 365ull * 24 * 3600 * 1000)
		wait_ms = 365ull * 24 * 3600 * 1000;
	uint64_t lease_ms = wait_ms < 1000 ? 1000 : wait_ms;
	uint64_t t_end = tc__mono_ns() + wait_ms * 1000000ull;
	long nap_ns = 50000;
	for (int round = 0;; round++) {
		if (round > 0 && tc__mono_ns() >= t_end)
			return -ETIMEDOUT;
		int rc = tc_get(c, key, klen, buf, cap, meta);
		if (rc != -ENOENT)
			return rc;
		struct lease_val me = {
			.pid = tc__self_pid(),
			.start = tc__self_start(),
			.deadline_ms = tc__now_ms() + (int64_t)lease_ms,
			.token = new_token(),
		};
		rc = tc__write(c, TC_KIND_LOAD, key, klen, &me, sizeof(me), LEASE_TYPE, lease_ms,
			       TC_OP_ADD, 0, 0, NULL, 0);
		if (rc == 0)
			return run_load(c, key, klen, buf, cap, meta, type, ttl_ms, load, arg,
					me.token);
		if (rc != -EEXIST)
			return rc;
		/* Someone holds the lease: take it over if it is abandoned. */
		struct lease_val cur;
		uint64_t ver;
		rc = read_kind(c, TC_KIND_LOAD, key, klen, &cur, sizeof(cur), LEASE_TYPE, &ver);
		if (rc == -ENOENT)
			continue; /* released or expired just now: look again */
		if (rc == 0 && (cur.deadline_ms <= tc__now_ms() ||
				!tc__pid_alive(cur.pid, cur.start))) {
			rc = tc__write(c, TC_KIND_LOAD, key, klen, &me, sizeof(me), LEASE_TYPE,
				       lease_ms, TC_OP_CAS, ver, 0, NULL, 0);
			if (rc == 0)
				return run_load(c, key, klen, buf, cap, meta, type, ttl_ms, load,
						arg, me.token);
			if (rc != TC_ECONFLICT && rc != -ENOENT)
				return rc;
			continue;
		} else if (rc && rc != TC_ECORRUPT) {
			return rc;
		}
		uint64_t now = tc__mono_ns();
		if (now >= t_end)
			return -ETIMEDOUT;
		uint64_t left = t_end - now;
		struct timespec ts = { 0, (uint64_t)nap_ns < left ? nap_ns : (long)left };
		nanosleep(&ts, NULL);
		if (nap_ns < 10000000L)
			nap_ns *= 2;
	}
}
