/* SPDX-License-Identifier: MIT */
/*
 * tier.c - the Redis tier's state in the segment: the bridge lease
 * (shm-bridge, one bridge per segment) and the state it publishes.
 *
 * tier_word = pid << 32 | claiming bit 31 | state << 24 | generation (24
 * bits), changed only by CAS, claimed as the sweeper's lease_word
 * (sweep.c) by tc__lease_claim (process.c): with the claiming bit set, the
 * start time and heartbeat stored, then the bit cleared, so a racing
 * claimer never judges a new holder by the start time of the old one.
 * tier_until_ms bounds how long the holder's "up" is believed (a stopped
 * bridge is alive but applies nothing).  No network code here: the
 * library only keeps the words.
 */
#include "internal.h"

/* A test's hook between tc_tier_until's check that the caller holds the
 * lease and its store (tests/test_review_tier.c). */
#ifndef TC_TIER_CHECKED
#define TC_TIER_CHECKED() ((void)0)
#endif

#define TIER_PID(w)      ((uint32_t)((w) >> 32))
#define TIER_CLAIMING    TC_LEASE_CLAIMING
#define TIER_STATE(w)    ((uint32_t)(((w) >> 24) & 0x7fu))
#define TIER_GEN_MASK    0xffffffull
#define TIER_MAKE(pid, st, gen) \
	((uint64_t)(pid) << 32 | (uint64_t)(st) << 24 | ((gen) & TIER_GEN_MASK))

/* A claim leaves the state DOWN, with a new generation. */
static uint64_t tier_next(uint64_t w)
{
	return TIER_MAKE(0, TC_TIER_DOWN, (w & TIER_GEN_MASK) + 1);
}

/* A claim that changed the state stamps the time of the change; the old
 * holder's promise (tier_until_ms) is not the new one's. */
static void tier_claimed(tc_cache *c, uint64_t w)
{
	tc__st(&c->h->tier_until_ms, 0);
	if (TIER_STATE(w) != TC_TIER_DOWN)
		tc__st(&c->h->tier_since_ms, tc__now_ms());
}

/* The bridge's lease: the state stays DOWN until the bridge says UP. */
static const struct tc__lease bridge_lease = {
	TC_LEASE_FIELDS(tier),
	.next = tier_next, .claimed = tier_claimed, .mine_while_claiming = false,
};

int tc_tier_claim(tc_cache *c, uint64_t stale_ms, uint32_t *holder)
{
	return c ? tc__lease_claim(c, &bridge_lease, stale_ms, holder) : -EINVAL;
}

int tc_tier_set(tc_cache *c, uint32_t state)
{
	if (!c || (state != TC_TIER_UP && state != TC_TIER_DOWN))
		return -EINVAL;
	uint32_t me = tc__self_pid();
	for (;;) {
		uint64_t w = tc__ld(&c->h->tier_word);
		if (TIER_PID(w) != me || (w & TIER_CLAIMING))
			return -EBUSY;
		tc__st(&c->h->tier_beat_ms, tc__now_ms());
		if (TIER_STATE(w) == state)
			return 0;
		/* The time first: a reader that sees the new state sees its time. */
		tc__st(&c->h->tier_since_ms, tc__now_ms());
		if (tc__cas(&c->h->tier_word, w, TIER_MAKE(me, state, w)) == w)
			return 0;
	}
}

/*
 * The holder vouches for its "up" until UNTIL_MS.  A live pid proves
 * nothing about a stopped or stalled bridge, which applies no invalidation;
 * only a promise it keeps renewing does.  The bridge stamps UNTIL_MS from a
 * time taken before it checked itself, so one stopped between the check and
 * this store leaves a promise that has already run out.
 */
int tc_tier_until(tc_cache *c, int64_t until_ms)
{
	if (!c || until_ms < 0)
		return -EINVAL;
	uint64_t w = tc__ld(&c->h->tier_word);
	if (TIER_PID(w) != tc__self_pid() || (w & TIER_CLAIMING))
		return -EBUSY;
	TC_TIER_CHECKED();
	tc__st(&c->h->tier_until_ms, until_ms);
	/* A holder stalled between the check and the store may have lost the
	 * lease meanwhile: the claim reset the promise, and ours would judge
	 * the new holder's "up" (read down once it runs out, for good if the
	 * new holder makes none).  The store is ordered before the load (a
	 * store may pass a later load, even on x86): a claim not seen here
	 * came after the store, and reset it.  Withdrawn by CAS, so that a
	 * promise the new holder stored since stays. */
	tc__mb();
	uint64_t now = tc__ld(&c->h->tier_word);
	if ((now ^ w) & (~0ull << 32 | TIER_CLAIMING | TIER_GEN_MASK)) {
		tc__cas(&c->h->tier_until_ms, until_ms, 0);
		return -EBUSY;
	}
	return 0;
}

int tc_tier_release(tc_cache *c)
{
	if (!c)
		return -EINVAL;
	uint64_t w = tc__ld(&c->h->tier_word);
	if (TIER_PID(w) != tc__self_pid() || (w & TIER_CLAIMING))
		return -EBUSY;
	if (TIER_STATE(w) != TC_TIER_DOWN)
		tc__st(&c->h->tier_since_ms, tc__now_ms());
	if (tc__cas(&c->h->tier_word, w, TIER_MAKE(0, TC_TIER_DOWN, (w & TIER_GEN_MASK) + 1)) != w)
		return -EBUSY;
	return 0;
}

int tc_tier_get(tc_cache *c, tc_tier *out)
{
	if (!c || !out)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	/* Each shared field read once. */
	uint64_t w = tc__ld(&c->h->tier_word);
	int64_t beat = tc__ld(&c->h->tier_beat_ms);
	int64_t since = tc__ld(&c->h->tier_since_ms);
	int64_t until = tc__ld(&c->h->tier_until_ms);
	uint32_t pid = TIER_PID(w);
	uint32_t st = TIER_STATE(w);
	out->pid = pid;
	out->since_ms = since > 0 ? since : 0;
	if (pid) {
		out->alive = (w & TIER_CLAIMING) ? tc__pid_alive(pid, 0)
						: tc__pid_alive(pid, tc__ld(&c->h->tier_start));
		int64_t age = tc__age_ms(tc__now_ms(), beat);
		out->beat_age_ms = beat > 0 && age > 0 ? (uint64_t)age : 0;
	}
	if (st != TC_TIER_UP && st != TC_TIER_DOWN)
		st = TC_TIER_NONE; /* 0, or a scribbled word: no tier */
	if ((w & TIER_CLAIMING) || (pid && !out->alive) || (!pid && st == TC_TIER_UP))
		st = TC_TIER_DOWN;
	if (st == TC_TIER_UP && until > 0 && tc__now_ms() > until)
		st = TC_TIER_DOWN; /* alive, but stopped or stalled: its promise ran out */
	out->state = st;
	return 0;
}
