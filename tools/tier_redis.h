/* SPDX-License-Identifier: MIT */
/*
 * tier_redis.h - the Redis tier on the caller's side (issue 13): fleet-wide
 * dedupe marks, read-through with the fill race closed, write-through and
 * fleet-wide rate limits, on hiredis.  Header-only and outside the library:
 * libtickcache itself has no network code.  Include it after
 * <hiredis/hiredis.h> and "tickcache.h"; link with -lhiredis.  One
 * struct tier_redis per thread (a hiredis context is not thread-safe).
 *
 * The keys have the same names in Redis and in the segment.  shm-bridge(8)
 * keeps the segment's copies coherent; these calls only decide what to do
 * on the caller's path.  Every Redis call is one round trip; a failed
 * context (Redis down) is reconnected by the caller (tier_redis.r is
 * theirs).
 */
#ifndef TC_TIER_REDIS_H
#define TC_TIER_REDIS_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <hiredis/hiredis.h>
#include "tickcache.h"

/* The type of a read-through placeholder (a fill in progress).  tier_get
 * treats it as a miss; a plain tc_get sees a 16-byte value of this type. */
#define TIER_TYPE_PENDING 0x7E1E4D00u

/* Called between the Redis read of a fill and its install (tier_get); a
 * test defines it to widen the race window.  Empty by default. */
#ifndef TIER_FILL_HOOK
#define TIER_FILL_HOOK() ((void)0)
#endif
/* Called between tier_set's Redis SET and its local install; a test
 * defines it to land another host's write there.  Empty by default. */
#ifndef TIER_SET_HOOK
#define TIER_SET_HOOK() ((void)0)
#endif

/* The sequence of the nonces of placeholders (tier_get, tier_set). */
static uint64_t tier_seq;

/* tier_redis.flags */
#define TIER_LOCAL_ONLY 0x1u /* marks: when Redis fails, the local mark alone
			      * decides (default: refuse, fail closed) */

struct tier_redis {
	redisContext *r;       /* the caller's connection */
	tc_cache *c;           /* the local segment */
	unsigned flags;
	uint64_t refused;      /* marks refused because Redis failed (fail closed) */
	uint64_t local_only;   /* marks decided locally because Redis failed */
	uint64_t fills_lost;   /* read-through values not cached: an invalidation
				* or another fill came first */
	int64_t  state_ms;     /* when tier_get last read the tier state (tc_now_ms) */
	uint32_t state;        /* that state (TC_TIER_*) */
};

/* How long tier_get reuses a tier state read from the segment (reading it
 * checks the bridge's pid in /proc: too slow for every read).  A bridge that
 * dies is noticed within this much. */
#ifndef TIER_STATE_MS
#define TIER_STATE_MS 50
#endif

static inline bool tier_up(struct tier_redis *t)
{
	int64_t now = tc_now_ms();
	if (!t->state_ms || now - t->state_ms >= TIER_STATE_MS || now < t->state_ms) {
		tc_tier st;
		t->state = tc_tier_get(t->c, &st) ? TC_TIER_NONE : st.state;
		t->state_ms = now;
	}
	return t->state == TC_TIER_UP;
}

/*
 * tier_mark_once - take a dedupe mark across the fleet: locally (tc_add,
 * so that of the host's processes one asks Redis) and in Redis (SET NX PX).
 * Returns 1 when the caller won both and must publish, 0 when someone on
 * this host or another holds the mark, -EAGAIN when Redis failed (the
 * local mark is given back so that a retry can win; counted in refused),
 * or with TIER_LOCAL_ONLY 1/0 from the local mark alone (counted in
 * local_only).  Other negative codes are tc_add's.  TTL_MS > 0.
 */
static inline int tier_mark_once(struct tier_redis *t, const void *key, size_t klen,
				 uint64_t ttl_ms)
{
	int rc = tc_add(t->c, key, klen, "1", 1, 0, ttl_ms);
	if (rc == -EEXIST)
		return 0;
	if (rc)
		return rc;
	redisReply *rep = redisCommand(t->r, "SET %b 1 NX PX %llu", key, klen,
				       (unsigned long long)ttl_ms);
	if (rep && rep->type == REDIS_REPLY_STATUS) {
		freeReplyObject(rep);
		return 1;
	}
	if (rep && rep->type == REDIS_REPLY_NIL) {
		/* Another host holds it; our local mark keeps this host's
		 * other processes from asking again. */
		freeReplyObject(rep);
		return 0;
	}
	if (rep)
		freeReplyObject(rep);
	if (t->flags & TIER_LOCAL_ONLY) {
		t->local_only++;
		return 1;
	}
	(void)tc_del(t->c, key, klen);
	t->refused++;
	return -EAGAIN;
}

/*
 * tier_get - read-through.  A live local value is returned as tc_get would.
 * On a miss: a placeholder of TIER_TYPE_PENDING carrying a nonce is added
 * first (tc_add), the value is read from Redis (GET and PTTL), and it is
 * installed by compare-and-set on the placeholder's version only if the
 * placeholder is still ours.  An invalidation that arrives meanwhile makes
 * the bridge delete the placeholder, so the install fails and an older
 * value is never cached (the fill race).  The value read is returned in
 * every case.  While the segment's tier is not TC_TIER_UP (no live bridge,
 * Redis lost), local copies are not read and nothing is cached: the value
 * comes from Redis (the state is reread every TIER_STATE_MS).  The local
 * TTL is Redis's (PTTL) less the time since the GET was sent, so the local
 * copy never outlives Redis's; a key gone by the PTTL is not cached.
 * MAX_TTL_MS (0 = none) caps the local TTL; a key without a Redis TTL gets
 * MAX_TTL_MS.
 * Returns 0, -ENOENT (absent in Redis too), -E2BIG, -EAGAIN (Redis failed),
 * or tc_get's codes.
 */
static inline int tier_get(struct tier_redis *t, const void *key, size_t klen, void *buf,
			   size_t cap, tc_meta *meta, uint64_t max_ttl_ms)
{
	tc_meta m;
	bool up = tier_up(t);
	int rc = up ? tc_get(t->c, key, klen, buf, cap, &m) : -ENOENT;
	if (rc == 0 && m.type != TIER_TYPE_PENDING) {
		if (meta)
			*meta = m;
		return 0;
	}
	if (rc && rc != -ENOENT && !(rc == -E2BIG && m.type == TIER_TYPE_PENDING))
		return rc;
	uint64_t nonce[2] = { (uint64_t)getpid(), __atomic_add_fetch(&tier_seq, 1, __ATOMIC_RELAXED) };
	/* While the tier is down, local copies are not trusted and nothing is
	 * cached: the value comes from Redis. */
	bool mine = up &&
		    tc_add(t->c, key, klen, nonce, sizeof(nonce), TIER_TYPE_PENDING, 1000) == 0;
	uint64_t ver = 0;
	if (mine) {
		uint64_t seen[2];
		tc_meta pm;
		mine = tc_get(t->c, key, klen, seen, sizeof(seen), &pm) == 0 &&
		       pm.type == TIER_TYPE_PENDING && pm.len == sizeof(seen) &&
		       memcmp(seen, nonce, sizeof(nonce)) == 0;
		ver = pm.version;
	}
	redisReply *v = NULL, *p = NULL;
	int64_t asked = tc_now_ms();
	if (redisAppendCommand(t->r, "GET %b", key, klen) != REDIS_OK ||
	    redisAppendCommand(t->r, "PTTL %b", key, klen) != REDIS_OK ||
	    redisGetReply(t->r, (void **)&v) != REDIS_OK ||
	    redisGetReply(t->r, (void **)&p) != REDIS_OK) {
		if (v)
			freeReplyObject(v);
		if (mine)
			(void)tc_cas(t->c, key, klen, ver, "", 0, TIER_TYPE_PENDING, 1);
		return -EAGAIN;
	}
	if (v->type != REDIS_REPLY_STRING) {
		rc = v->type == REDIS_REPLY_NIL ? -ENOENT : -EAGAIN;
		if (mine) /* nothing to cache: let the placeholder go at once */
			(void)tc_cas(t->c, key, klen, ver, "", 0, TIER_TYPE_PENDING, 1);
		goto out;
	}
	/* PTTL: -1 no expiry, -2 gone since the GET (not cached), anything
	 * else but a count is not understood (not cached either). */
	bool keep = p->type == REDIS_REPLY_INTEGER && p->integer >= -1;
	uint64_t ttl = keep && p->integer > 0 ? (uint64_t)p->integer : 0;
	size_t len = (size_t)v->len;
	if (meta) {
		memset(meta, 0, sizeof(*meta));
		meta->len = len;
	}
	TIER_FILL_HOOK();
	if (ttl) {
		/* Counted from before the GET, so that the local copy never
		 * outlives Redis's, however late this install comes (+1: the
		 * install reads the millisecond clock again). */
		int64_t spent = tc_now_ms() - asked + 1;
		if (spent < 0)
			spent = 0;
		keep = ttl > (uint64_t)spent;
		ttl = keep ? ttl - (uint64_t)spent : 0;
	}
	if (max_ttl_ms && (ttl == 0 || ttl > max_ttl_ms))
		ttl = max_ttl_ms;
	if (mine && !keep) {
		(void)tc_cas(t->c, key, klen, ver, "", 0, TIER_TYPE_PENDING, 1);
		mine = false;
	}
	if (mine) {
		int crc = tc_cas(t->c, key, klen, ver, v->str, len, 0, ttl);
		if (crc)
			t->fills_lost++;
		else if (meta)
			(void)tc_get(t->c, key, klen, NULL, 0, meta); /* -E2BIG fills meta */
	} else {
		t->fills_lost++;
	}
	if (len > cap) {
		rc = -E2BIG;
		goto out;
	}
	memcpy(buf, v->str, len);
	rc = 0;
out:
	freeReplyObject(v);
	freeReplyObject(p);
	return rc;
}

/*
 * tier_set - write-through: SET in Redis (PX TTL_MS when TTL_MS > 0), then
 * the local segment.  Redis first, so that no host can read the new value
 * locally before Redis has it.  The local install is a compare-and-set on a
 * placeholder put there before the SET (TIER_TYPE_PENDING, as tier_get's):
 * another host's write that lands in Redis after ours has its invalidation
 * delete the placeholder, so our value, which lost the race, is not
 * installed (a plain set after the SET was: the invalidation could be
 * applied before it).  The local TTL is TTL_MS less the time since the SET
 * was sent, so the local copy never outlives Redis's.  While the tier is
 * not up nothing is cached and the local copy is deleted.  The local copy
 * is then invalidated by this host's bridge like any other (in mirror mode
 * rewritten): coherent, one extra Redis read on the next local miss.  Returns 0 (Redis has the
 * value; cached locally unless an invalidation came first), -EAGAIN (Redis
 * failed: the local copy is gone), or the local install's tc_cas codes
 * other than TC_ECONFLICT and -ENOENT (Redis has the value, the local copy
 * is gone).
 */
static inline int tier_set(struct tier_redis *t, const void *key, size_t klen, const void *val,
			   size_t vlen, uint64_t ttl_ms)
{
	uint64_t nonce[2] = { (uint64_t)getpid(), __atomic_add_fetch(&tier_seq, 1, __ATOMIC_RELAXED) };
	uint64_t ver = 0;
	bool mine = tier_up(t) &&
		    tc_set_v(t->c, key, klen, nonce, sizeof(nonce), TIER_TYPE_PENDING, 1000, &ver) == 0;
	int64_t asked = tc_now_ms();
	redisReply *rep = ttl_ms
		? redisCommand(t->r, "SET %b %b PX %llu", key, klen, val, vlen,
			       (unsigned long long)ttl_ms)
		: redisCommand(t->r, "SET %b %b", key, klen, val, vlen);
	bool ok = rep && rep->type == REDIS_REPLY_STATUS;
	if (rep)
		freeReplyObject(rep);
	if (!ok || !mine) {
		/* A delete never makes anything stale. */
		(void)tc_del(t->c, key, klen);
		return ok ? 0 : -EAGAIN;
	}
	TIER_SET_HOOK();
	uint64_t ttl = ttl_ms;
	if (ttl) {
		/* Counted from before the SET: never outlive Redis's copy
		 * (+1: the install reads the millisecond clock again). */
		int64_t spent = tc_now_ms() - asked + 1;
		if (spent < 0)
			spent = 0;
		if (ttl <= (uint64_t)spent) {
			(void)tc_del(t->c, key, klen);
			return 0;
		}
		ttl -= (uint64_t)spent;
	}
	int rc = tc_cas(t->c, key, klen, ver, val, vlen, 0, ttl);
	if (rc == TC_ECONFLICT || rc == -ENOENT)
		return 0; /* an invalidation came first: not cached */
	if (rc)
		(void)tc_del(t->c, key, klen);
	return rc;
}

/*
 * tier_rate_limit - a fleet-wide fixed-window limit: one Lua script, INCR
 * and PEXPIRE on the window's first hit, so that the count and its expiry
 * are never separate calls.  Returns 1 when allowed (the count is at most
 * LIMIT), 0 when over, -EAGAIN when Redis failed.  *COUNT (may be NULL)
 * receives the window's count.
 */
static inline int tier_rate_limit(struct tier_redis *t, const void *key, size_t klen,
				  uint64_t limit, uint64_t window_ms, uint64_t *count)
{
	static const char script[] =
		"local n = redis.call('INCR', KEYS[1]) "
		"if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end "
		"return n";
	redisReply *rep = redisCommand(t->r, "EVAL %s 1 %b %llu", script, key, klen,
				       (unsigned long long)window_ms);
	if (!rep || rep->type != REDIS_REPLY_INTEGER) {
		if (rep)
			freeReplyObject(rep);
		return -EAGAIN;
	}
	uint64_t n = rep->integer > 0 ? (uint64_t)rep->integer : 0;
	freeReplyObject(rep);
	if (count)
		*count = n;
	return n <= limit ? 1 : 0;
}

#endif /* TC_TIER_REDIS_H */
