/* SPDX-License-Identifier: MIT */
/*
 * kv.c - the get/set family of ordinary keys: tc_get, tc_peek, tc_exists,
 * tc_set, tc_add, tc_cas, tc_expire, tc_incr, tc_del, and tc__write, the
 * write engine that the other kinds (run anchors, rate windows, load
 * leases) use too.
 *
 * Reads: one bucket line, one entry line (key compared in place, the value
 * follows the key), copy out.  No shared write but the reader's own slot.
 * The probe and the match are index.h's, inline.
 *
 * Writes copy on write: build a new entry, then one CAS on the slot word.
 *  - Update of a published key: CAS FINAL|old -> FINAL|new on its slot.  A
 *    delete is CAS FINAL|old -> 0 on the same word, so a set racing a
 *    delete is ordered by that word: neither is lost.
 *  - Insert of a key not found: tc__insert_new (index.c).
 * When allocation fails the writer leaves its read section and makes room
 * (room.c), then tries again.
 */
#include "index.h"
#include "room.h"

#include <sched.h>
#include <stdlib.h>

#define MAX_ATTEMPTS 10000 /* bounds retry loops against a scribbled segment */

/* ---- reads ------------------------------------------------------------- */

static inline void fill_meta(tc_meta *m, const struct view *v)
{
	if (m) {
		m->len = v->vlen;
		m->type = v->type;
		m->version = v->version;
		m->expires_ms = v->expires;
	}
}

/*
 * The work of a read after its copy, when the handle has any (one test of
 * c->rslow on the hot path covers both): under LRU set the reference bit
 * (only when clear: no shared write on a hit of a hot key; QUIET reads set
 * none), and with checksums verify VAL, the value as returned.
 */
static __attribute__((noinline)) int read_checked(tc_cache *c, uint64_t hash, size_t klen,
						   const struct view *v, const void *val,
						   bool quiet)
{
	int rc = tc__csum_check(c, v->e, hash, klen, v->cls, v->version, v->expires, v->vlen,
				v->type, val);
	if (rc == 0 && !quiet && (c->rslow & TC_RS_LRU) && !tc__ld(&v->e->refbit))
		tc__st(&v->e->refbit, 1);
	return rc;
}

static inline int after_read(tc_cache *c, uint64_t hash, size_t klen, const struct view *v,
			     const void *val, bool quiet)
{
	if (c->rslow == TC_RS_LRU) {
		if (!quiet && !tc__ld(&v->e->refbit))
			tc__st(&v->e->refbit, 1);
		return 0;
	}
	return read_checked(c, hash, klen, v, val, quiet);
}

/* Sampled latency: one call in 64 per slot is timed. */
static inline uint64_t sample_start(struct tc_rslot *s)
{
	return (tc__ld(&s->ctr[TC_C_OPS]) & 63) == 0 ? tc__mono_ns() : 0;
}

static inline void sample_end(tc_cache *c, struct tc_rslot *s, uint64_t t0)
{
	if (TC_LIKELY(t0 == 0))
		return;
	uint64_t dt = tc__mono_ns() - t0;
	tc__count(s, TC_C_LAT_SAMPLES);
	tc__count_n(s, TC_C_LAT_SUM, dt);
	if (dt > c->slow_ns)
		tc__count(s, TC_C_SLOW_OPS);
}

/* A call with bad arguments still counts as an error and an operation. */
static int bad_args(tc_cache *c)
{
	struct tc_rslot *s = c ? tc__slot(c) : NULL;
	tc__count(s, TC_C_ERRORS);
	tc__count(s, TC_C_OPS);
	return -EINVAL;
}

/* The copy of tc_get, inside a read section.  QUIET (a constant at each
 * call): no reference bit set, and the precise clock. */
static inline __attribute__((always_inline)) int
copy_value(tc_cache *c, uint64_t hash, const void *key, size_t klen,
			     void *buf, size_t cap, tc_meta *meta, bool quiet)
{
	uint64_t *slotp, w;
	struct view v;
	int rc = lookup(c, hash, key, klen, TC_KIND_KEY, &slotp, &w, &v);
	if (rc == 0 && v.expires != 0 &&
	    expired(v.expires, quiet ? tc__now_ms() : tc__now_ms_coarse()))
		rc = -ENOENT;
	if (rc == 0) {
		fill_meta(meta, &v);
		if (v.vlen > cap) {
			rc = -E2BIG;
		} else {
			if (v.vlen)
				memcpy(buf, v.val, v.vlen);
			if (c->rslow)
				rc = after_read(c, hash, klen, &v, buf, quiet);
		}
	}
	return rc;
}

int tc_get(tc_cache *c, const void *key, size_t klen, void *buf, size_t cap, tc_meta *meta)
{
	if (TC_UNLIKELY(!c || !tc__valid_key(key, klen) || (!buf && cap)))
		return bad_args(c);
	uint64_t hash = tc__hash(c, key, klen, TC_KIND_KEY);
	struct tc_rslot *s;
	int rc = tc__enter(c, &s);
	if (TC_UNLIKELY(rc))
		return rc;
	uint64_t t0 = sample_start(s);
	rc = copy_value(c, hash, key, klen, buf, cap, meta, false);
	tc__count(s, rc == 0 || rc == -E2BIG ? TC_C_HITS : rc == -ENOENT ? TC_C_MISSES : TC_C_ERRORS);
	tc__count(s, TC_C_OPS);
	sample_end(c, s, t0);
	tc__exit(c);
	return rc;
}

int tc_peek(tc_cache *c, const void *key, size_t klen, const void **val, tc_meta *meta)
{
	if (TC_UNLIKELY(!c || !val || !tc__valid_key(key, klen))) {
		if (val)
			*val = NULL;
		return bad_args(c);
	}
	*val = NULL;
	struct tc_rslot *s = tc__section_slot(c); /* one lookup for both questions */
	if (!s)
		return -EINVAL;
	uint64_t hash = tc__hash(c, key, klen, TC_KIND_KEY);
	uint64_t *slotp, w;
	struct view v;
	int rc = lookup(c, hash, key, klen, TC_KIND_KEY, &slotp, &w, &v);
	if (rc == 0 && v.expires != 0 && expired(v.expires, tc__now_ms_coarse()))
		rc = -ENOENT;
	if (rc == 0) {
		fill_meta(meta, &v);
		*val = v.val;
		if (c->rslow && (rc = after_read(c, hash, klen, &v, v.val, false)) != 0)
			*val = NULL; /* a value that fails its checksum is not handed out */
	}
	tc__count(s, rc == 0 ? TC_C_HITS : rc == -ENOENT ? TC_C_MISSES : TC_C_ERRORS);
	tc__count(s, TC_C_OPS);
	return rc;
}

bool tc_exists(tc_cache *c, const void *key, size_t klen)
{
	if (!c || !tc__valid_key(key, klen))
		return false;
	tc_meta m;
	int rc = tc_get(c, key, klen, NULL, 0, &m);
	return rc == 0 || rc == -E2BIG;
}

/*
 * tc_get for maintenance (snapshots): the same copy of one version, but no
 * reference bit set and nothing counted, so a snapshot neither makes every
 * key look hot to the eviction clock nor inflates the hit rate.
 */
int tc__get_quiet(tc_cache *c, const void *key, size_t klen, void *buf, size_t cap,
		  tc_meta *meta)
{
	uint64_t hash = tc__hash(c, key, klen, TC_KIND_KEY);
	struct tc_rslot *s;
	int rc = tc__enter(c, &s);
	if (rc)
		return rc;
	rc = copy_value(c, hash, key, klen, buf, cap, meta, true);
	tc__exit(c);
	return rc;
}

/* ---- writes ------------------------------------------------------------- */

/* Resolve the TTL argument of a write into an absolute expiry. */
static inline int64_t tc__expiry(tc_cache *c, const void *key, size_t klen, uint64_t ttl_ms)
{
	if (ttl_ms == TC_TTL_DEFAULT)
		ttl_ms = tc__policy_ttl(c, key, klen);
	if (ttl_ms == 0)
		return 0;
	if (ttl_ms > (uint64_t)INT64_MAX / 2)
		ttl_ms = (uint64_t)INT64_MAX / 2;
	return tc__now_ms() + (int64_t)ttl_ms;
}

static inline void le64_put(uint8_t *p, int64_t v)
{
	uint64_t u = (uint64_t)v;
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(u >> (8 * i));
}

static inline int64_t le64_get(const uint8_t *p)
{
	uint64_t u = 0;
	for (int i = 0; i < 8; i++)
		u |= (uint64_t)p[i] << (8 * i);
	return (int64_t)u;
}

int tc__write(tc_cache *c, uint32_t kind, const void *key, size_t klen, const void *val,
	      size_t vlen, uint32_t type, uint64_t ttl_ms, int op, uint64_t expect,
	      int64_t delta, int64_t *out, uint32_t aux)
{
	if (!c || !tc__valid_key(key, klen) || (!val && vlen) ||
	    (kind == TC_KIND_KEY && ttl_ms != TC_TTL_DEFAULT && ttl_ms > TC_TTL_MAX))
		return bad_args(c);
	if (vlen > TC_VALUE_MAX) {
		bad_args(c);
		return -EMSGSIZE;
	}
	uint64_t hash = tc__hash(c, key, klen, kind), tag = TC_TAG_OF(hash);
	/* For tc_incr this applies only when the counter is created. */
	int64_t new_exp = tc__expiry(c, key, klen, ttl_ms);
	int room_rounds = 0, rc = 0;
	uint64_t room_t0 = 0;
	struct tc_rslot *s = NULL;
	uint8_t ctrbuf[8];
	int64_t incr_val = 0;

	for (int attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
		rc = tc__enter(c, &s);
		if (rc)
			return rc;
		uint64_t t0 = sample_start(s);
		uint64_t *slotp = NULL, w = 0;
		struct view old;
		int lr = lookup(c, hash, key, klen, kind, &slotp, &w, &old);
		if (lr < 0 && lr != -ENOENT) {
			rc = lr;
			goto out_exit;
		}
		/* The clock is read only when there is an expiry to judge. */
		bool found = lr == 0,
		     live = found && !(old.expires && expired(old.expires, tc__now_ms()));
		const void *src = val;
		size_t nlen = vlen;
		uint32_t ntype = type;
		int64_t exp = new_exp;
		switch (op) {
		case TC_OP_ADD:
			if (live) {
				rc = -EEXIST;
				goto out_exit;
			}
			break;
		case TC_OP_CAS:
			if (!live) {
				rc = -ENOENT;
				goto out_exit;
			}
			if (old.version != expect) {
				rc = TC_ECONFLICT;
				goto out_exit;
			}
			break;
		case TC_OP_EXPIRE:
			if (!live) {
				rc = -ENOENT;
				goto out_exit;
			}
			src = old.val;
			nlen = old.vlen;
			ntype = old.type;
			break;
		case TC_OP_INCR: {
			int64_t n = delta;
			if (live) {
				if (old.type != TC_TYPE_COUNTER || old.vlen != 8) {
					rc = TC_ETYPE;
					goto out_exit;
				}
				/* One copy of the counter, checked, then used. */
				uint8_t cur[8];
				memcpy(cur, old.val, 8);
				if (c->csum && (rc = tc__csum_check(c, old.e, hash, klen, old.cls,
								   old.version, old.expires, 8,
								   old.type, cur)) != 0)
					goto out_exit;
				n = (int64_t)((uint64_t)le64_get(cur) + (uint64_t)delta);
				exp = old.expires;
			}
			le64_put(ctrbuf, n);
			src = ctrbuf;
			nlen = 8;
			ntype = TC_TYPE_COUNTER;
			incr_val = n;
			break;
		}
		default:
			break;
		}
		uint64_t need = tc__entry_need(c, klen, nlen);
		int arc;
		struct tc_entry *e = tc__alloc(c, s, need, &arc);
		if (!e) {
			rc = arc;
			if (arc != -ENOSPC)
				goto out_exit;
			tc__exit(c);
			if (!tc__make_room(c, s, tc__class_of(need), false, room_rounds++, &room_t0))
				goto out_count;
			continue;
		}
		e->hash = hash;
		e->refbit = 1; /* new data counts as used: one clock pass before eviction */
		e->expires_ms = exp;
		e->vlen = (uint32_t)nlen;
		e->type = ntype;
		e->klen = (uint16_t)klen;
		e->kind = (uint8_t)kind;
		e->aux = aux;
		memcpy((uint8_t *)e + TC_ENTRY_HDR, key, klen);
		if (nlen)
			memcpy((uint8_t *)tc__eval(e, (uint32_t)klen), src, nlen);
		/* tc_expire carries the old value over: it is checked as copied
		 * (into our private block), so damage is never sealed anew. */
		if (c->csum && op == TC_OP_EXPIRE &&
		    (rc = tc__csum_check(c, old.e, hash, klen, old.cls, old.version, old.expires,
					 old.vlen, old.type, tc__eval(e, (uint32_t)klen))) != 0) {
			tc__drop_private(c, s, e);
			goto out_exit;
		}
		TC_CRASH_POINT(write_built);
		uint64_t ref = tc__ref_of(c, e);
		if (found) {
			e->version = next_version(c, hash, old.version);
			if (c->csum)
				tc__csum_seal(c, e, klen);
			/* The CAS is a full barrier: the entry's bytes are visible
			 * before the slot names it. */
			tc__note_unlink(s, TC_SW_REF(w), old.e);
			TC_CRASH_POINT(update_noted);
			if (tc__cas(slotp, w, TC_SW_FINAL | tag << 48 | ref) != w) {
				tc__st(&s->ret_ref, 0);
				tc__drop_private(c, s, e);
				tc__exit(c);
				continue;
			}
			TC_CRASH_POINT(update_swapped);
			tc__st(&s->inflight, 0);
			TC_CRASH_POINT(update_unlinked);
			tc__retire(c, s, old.e);
			TC_CRASH_POINT(update_retired);
			tc__st(&s->ret_ref, 0);
			if (!live)
				tc__count(s, TC_C_EXPIRATIONS);
			rc = 0;
			goto out_done;
		}
		/* Absent: insert if the segment holds fewer than max_entries keys.
		 * The count is raised after the insert is final (a writer killed in
		 * between cannot leave it high); concurrent inserters may overshoot
		 * max_entries by their number, which the index's 30 % headroom
		 * absorbs, so max_entries keys always fit. */
		if ((int64_t)tc__ld(&c->h->live) >= (int64_t)c->max_entries) {
			tc__drop_private(c, s, e);
			rc = -ENOSPC;
			tc__exit(c);
			if (!tc__make_room(c, s, UINT32_MAX, true, room_rounds++, &room_t0))
				goto out_count;
			continue;
		}
		bool seen;
		int ir = tc__insert_new(c, hash, key, klen, kind, e, ref, true, &seen);
		if (ir == 0) {
			TC_CRASH_POINT(insert_published);
			tc__add(&c->h->live, 1);
			tc__st(&s->inflight, 0);
			rc = 0;
			goto out_done;
		}
		if (seen) {
			tc__retire(c, s, e);
			tc__st(&s->inflight, 0); /* after, as in tc__drop_private() */
		} else {
			tc__drop_private(c, s, e);
		}
		if (ir == -ENOSPC) {
			rc = -ENOSPC;
			tc__exit(c);
			if (!tc__make_room(c, s, UINT32_MAX, true, room_rounds++, &room_t0))
				goto out_count;
			continue;
		}
		tc__exit(c);
		if (attempt > 8)
			sched_yield();
		continue;
out_done:
		if (op == TC_OP_INCR && out)
			*out = incr_val; /* only on success */
		tc__count(s, op == TC_OP_ADD ? TC_C_ADDS : TC_C_SETS);
		tc__count(s, TC_C_OPS);
		sample_end(c, s, t0);
		tc__exit(c);
		tc__evict_ahead(c, s, tc__class_of(need));
		tc__maybe_reclaim(c, s);
		return rc;
out_exit:
		tc__exit(c);
		goto out_count;
	}
	if (rc == 0)
		rc = -EAGAIN;
out_count:
	if (s) {
		if (rc != -EEXIST && rc != -ENOENT && rc != TC_ECONFLICT)
			tc__count(s, TC_C_ERRORS);
		tc__count(s, TC_C_OPS);
	}
	return rc;
}

int tc_set(tc_cache *c, const void *key, size_t klen, const void *val, size_t vlen,
	   uint32_t type, uint64_t ttl_ms)
{
	return tc__write(c, TC_KIND_KEY, key, klen, val, vlen, type, ttl_ms, TC_OP_SET, 0, 0,
			 NULL, 0);
}

int tc_add(tc_cache *c, const void *key, size_t klen, const void *val, size_t vlen,
	   uint32_t type, uint64_t ttl_ms)
{
	return tc__write(c, TC_KIND_KEY, key, klen, val, vlen, type, ttl_ms, TC_OP_ADD, 0, 0,
			 NULL, 0);
}

int tc_cas(tc_cache *c, const void *key, size_t klen, uint64_t expect_version,
	   const void *val, size_t vlen, uint32_t type, uint64_t ttl_ms)
{
	return tc__write(c, TC_KIND_KEY, key, klen, val, vlen, type, ttl_ms, TC_OP_CAS,
			 expect_version, 0, NULL, 0);
}

int tc_expire(tc_cache *c, const void *key, size_t klen, uint64_t ttl_ms)
{
	return tc__write(c, TC_KIND_KEY, key, klen, NULL, 0, 0, ttl_ms, TC_OP_EXPIRE, 0, 0,
			 NULL, 0);
}

int tc_incr(tc_cache *c, const void *key, size_t klen, int64_t delta, uint64_t ttl_ms,
	    int64_t *out)
{
	return tc__write(c, TC_KIND_KEY, key, klen, NULL, 0, 0, ttl_ms, TC_OP_INCR, 0, delta,
			 out, 0);
}

/*
 * Remove the published entry of (key, kind): one CAS on its slot word,
 * retried when the word changed under us.  With VERSION, only that version
 * is removed (TC_ECONFLICT otherwise) and expiry is not judged; without, an
 * expired entry is removed as an expiration and reported -ENOENT.
 */
static int remove_key(tc_cache *c, struct tc_rslot *s, uint32_t kind, const void *key,
		      size_t klen, const uint64_t *version)
{
	uint64_t hash = tc__hash(c, key, klen, kind);
	int rc = -EAGAIN;
	for (int attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
		uint64_t *slotp, w;
		struct view v;
		rc = lookup(c, hash, key, klen, kind, &slotp, &w, &v);
		if (rc)
			return rc;
		if (version && v.version != *version)
			return TC_ECONFLICT;
		bool exp = !version && expired(v.expires, tc__now_ms());
		int ctr = version ? -1 : exp ? TC_C_EXPIRATIONS : TC_C_DELETES;
		if (tc__remove_slot(c, s, slotp, w, ctr) == 0)
			return exp ? -ENOENT : 0;
		rc = -EAGAIN;
	}
	return rc;
}

int tc_del(tc_cache *c, const void *key, size_t klen)
{
	if (!c || !tc__valid_key(key, klen))
		return bad_args(c);
	struct tc_rslot *s;
	int rc = tc__enter(c, &s);
	if (rc)
		return rc;
	rc = remove_key(c, s, TC_KIND_KEY, key, klen, NULL);
	if (rc && rc != -ENOENT)
		tc__count(s, TC_C_ERRORS);
	tc__count(s, TC_C_OPS);
	tc__exit(c);
	return rc;
}

/*
 * Remove the live entry of (key, kind) only when its version is VERSION.
 * 0, -ENOENT (absent), TC_ECONFLICT (another version).
 */
int tc__del_version(tc_cache *c, uint32_t kind, const void *key, size_t klen,
		    uint64_t version)
{
	if (!c || !tc__valid_key(key, klen))
		return -EINVAL;
	struct tc_rslot *s;
	int rc = tc__enter(c, &s);
	if (rc)
		return rc;
	rc = remove_key(c, s, kind, key, klen, &version);
	tc__exit(c);
	return rc;
}
