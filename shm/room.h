/* SPDX-License-Identifier: MIT */
/*
 * room.h - the parts of room.c ("memory is full") that every write runs:
 * static inline, so that the write path pays no call for them.
 */
#ifndef TC_ROOM_H
#define TC_ROOM_H

#include "internal.h"


/* room.c */
uint64_t tc__room_sleeps(void); /* the waits of tc__make_room in this process (tests) */
struct tc__room;
bool tc__make_room(tc_cache *c, struct tc_rslot *s, uint32_t cls, bool need_slot,
		   struct tc__room *r);
void tc__drop_private(tc_cache *c, struct tc_rslot *s, struct tc_entry *e);
bool tc__room_for(tc_cache *c, struct tc_rslot *s, uint64_t need, bool need_slot,
		  struct tc__room *r);

/*
 * Allocate a block of at least BYTES for slot S: tc__alloc_block (alloc.c),
 * and when neither a free block nor a carve serves, coalesce (coalesce.c)
 * unless the eviction policy coalesces from tc__make_room instead
 * (coalesce_in_alloc, evict.c).  NULL with *rc =
 * -ENOSPC: the caller makes room outside its read section and retries;
 * TC_ECORRUPT: the bump word fails its seal and no free block (nor a
 * coalesced one) serves: nothing is carved and nothing evicted until
 * tc_audit.
 */
static inline struct tc_entry *tc__alloc(tc_cache *c, struct tc_rslot *s, uint64_t bytes,
					  int *rc)
{
	struct tc_entry *e = tc__alloc_block(c, s, bytes, rc);
	if (TC_LIKELY(e != NULL) || *rc == -EMSGSIZE || !c->evict->coalesce_in_alloc)
		return e;
	e = tc__coalesce(c, s, tc__class_of(bytes));
	if (e)
		*rc = 0;
	return e;
}

/* Reclaim early, from a writer that has retired RECLAIM_BATCH bytes (or
 * 1/16 of a small arena) since its last reclaim, so that allocation rarely
 * has to wait and no single write walks a long chain: the walk is what a
 * write's worst case pays for. */
#define RECLAIM_STEP 4  /* blocks of the pending chain freed per write */
/* tc__maybe_reclaim once the caller knows that it is in no read section
 * (kv.c's writes find that out without a call). */
static inline void tc__reclaim_early(tc_cache *c, struct tc_rslot *s)
{
	if (tc__ld(&s->reclaim)) {
		tc__reclaim_step(c, s, RECLAIM_STEP);
		return;
	}
	uint64_t batch = c->arena_bytes / 16 < RECLAIM_BATCH ? c->arena_bytes / 16 : RECLAIM_BATCH;
	if (tc__ld(&s->since) > batch)
		tc__reclaim_budget(c, s, NULL, RECLAIM_STEP);
}

static inline void tc__maybe_reclaim(tc_cache *c, struct tc_rslot *s)
{
	if (!tc__in_section(c))
		tc__reclaim_early(c, s);
}

/* A writer's making of room across its attempts (tc__room_for). */
struct tc__room {
	int round;        /* attempts that made room so far */
	uint64_t t0;      /* when the first did (CLOCK_MONOTONIC ns) */
	bool sweep_runs;  /* sweep every list of ended runs first, every 4th
			   * round (run.c's writers: their own garbage) */
	uint64_t listed;  /* the wanted class's free-list head when it last
			   * earned another attempt (tc__room_for) */
	uint64_t free_max; /* the most bytes on all free lists seen since
			    * round 0 (tc__room_for) */
	int censuses;     /* censuses of the arena run (tc__make_room, LRU) */
	int verdict;      /* the last one's answer: 1, 0, -1 (tc__room_census) */
	uint64_t buckets, keys; /* short of a slot: the clock's buckets and
				 * the keys it passed (tc__make_room).  All
				 * set at round 0, so that the write path
				 * stores nothing */
};

/* One attempt of a writer, inside a read section of slot S that it leaves
 * (as tc__alloc_or_room does when it fails): true when done (*RC says
 * how), false to try again. */
typedef bool (*tc__attempt_fn)(tc_cache *c, struct tc_rslot *s, struct tc__room *r, void *ctx,
			       int *rc);

/*
 * The attempts of a writer that makes room as it goes (run.c, policy.c):
 * FN up to TC_MAX_ATTEMPTS times, each in a read section of its own, R
 * carried across.  FN's *RC once it is done, -EAGAIN when every attempt
 * asked for another, or the error of entering a section (-EUSERS,
 * -ESTALE, -EBUSY; then *SP is NULL: the call counts no operation).  *SP:
 * the slot of the sections.
 */
int tc__attempts(tc_cache *c, struct tc__room *r, tc__attempt_fn fn, void *ctx,
		 struct tc_rslot **sp);

/* The header of a block being built (tc__fill_block). */
struct tc__bhdr {
	uint64_t hash, version;
	int64_t  expires_ms;
	uint32_t klen, vlen, type, kind, aux;
};

/*
 * Copy N bytes of a key or value into a private block.  8..64 bytes, the
 * common sizes of keys and tick values, in fixed-size moves that overlap as
 * needed (every load before every store), without the call to memcpy
 * through the PLT; the rest by memcpy.
 */
static inline __attribute__((always_inline)) void tc__copy_in(void *dst, const void *src, size_t n)
{
	uint8_t *d = dst;
	const uint8_t *p = src;
	if (n >= 8 && n <= 16) { /* [0, 8) and [n - 8, n) */
		uint64_t a, z;
		memcpy(&a, p, 8);
		memcpy(&z, p + n - 8, 8);
		memcpy(d, &a, 8);
		memcpy(d + n - 8, &z, 8);
	} else if (n > 16 && n <= 32) { /* [0, 16) and [n - 16, n) */
		uint8_t a[16], z[16];
		memcpy(a, p, 16);
		memcpy(z, p + n - 16, 16);
		memcpy(d, a, 16);
		memcpy(d + n - 16, z, 16);
	} else if (n > 32 && n <= 64) { /* [0, 32) and [n - 32, n) */
		uint8_t a[32], z[32];
		memcpy(a, p, 32);
		memcpy(z, p + n - 32, 32);
		memcpy(d, a, 32);
		memcpy(d + n - 32, z, 32);
	} else if (n) {
		memcpy(dst, src, n);
	}
}

/*
 * Fill the private block E: header H, then KEY (H->klen bytes) and VAL
 * (H->vlen bytes) where tc__ekey and tc__eval find them.  The one way
 * every writer (kv.c, run.c, policy.c) builds a block; reference bit and
 * checksum are the caller's.
 */
static inline __attribute__((always_inline)) void
tc__fill_block(struct tc_entry *e, const struct tc__bhdr *h, const void *key, const void *val)
{
	e->hash = h->hash;
	e->version = h->version;
	e->expires_ms = h->expires_ms;
	e->vlen = h->vlen;
	e->type = h->type;
	e->klen = (uint16_t)h->klen;
	e->kind = (uint8_t)h->kind;
	e->aux = h->aux;
	tc__copy_in((uint8_t *)e + TC_ENTRY_HDR, key, h->klen);
	tc__copy_in((uint8_t *)tc__eval(e, h->klen), val, h->vlen);
}

/*
 * Allocate NEED bytes for slot S inside the caller's read section.  NULL
 * when that fails: the section is left, *RC says why, and *AGAIN whether
 * room was made (-ENOSPC) and another attempt is worth making.
 */
static inline struct tc_entry *tc__alloc_or_room(tc_cache *c, struct tc_rslot *s, uint64_t need,
						 struct tc__room *r, int *rc, bool *again)
{
	struct tc_entry *e = tc__alloc(c, s, need, rc);
	if (e)
		return e;
	tc__exit(c);
	*again = *rc == -ENOSPC && tc__room_for(c, s, need, false, r);
	return NULL;
}

/* The eviction policy's work after each write of a block of NEED bytes
 * (evict.c); the class is worked out only for a policy that has any. */
static inline void tc__evict_ahead(tc_cache *c, struct tc_rslot *s, uint64_t need)
{
	if (c->evict->ahead)
		c->evict->ahead(c, s, tc__class_of(need));
}

#endif /* TC_ROOM_H */
