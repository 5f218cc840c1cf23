/* SPDX-License-Identifier: MIT */
/*
 * sweep.c - maintenance passes (driven by shm-sweeper, callable by anyone)
 * and the sweeper lease.
 *
 * A pass clears the slots of dead processes first (their in-flight blocks
 * and half-walked retire chains come back), then expires a bounded number
 * of buckets from a cursor kept in the header, then reclaims.  Every step is
 * an ordinary lock-free writer step, so a pass never blocks a hot path and
 * the cache stays correct without any sweeper: writers short of memory do
 * the same work themselves.
 *
 * The lease makes one sweeper per segment the normal case: lease_word holds
 * the holder's pid and a generation, taken by CAS when free, held by a dead
 * process (pid gone or reused), or silent for longer than the staleness
 * bound (tc__lease_claim, process.c, as the bridge's lease of tier.c).  Two
 * sweepers at once would still be correct, only wasteful.
 */
#include "internal.h"

#include <unistd.h>

int tc_sweep(tc_cache *c, uint64_t budget, tc_sweep_report *report)
{
	if (!c)
		return -EINVAL;
	tc_sweep_report local;
	tc_sweep_report *rep = report ? report : &local;
	memset(rep, 0, sizeof(*rep));
	struct tc_rslot *s;
	int rc = tc__maint_slot(c, &s);
	if (rc)
		return rc;
	tc__clean_dead(c, s, rep);
	rc = tc__expire_pass(c, s, budget, rep);
	if (rc)
		return rc;
	rc = tc__sweep_runs(c, budget);
	if (rc < 0)
		return rc;
	rep->dto_lists_freed = (uint64_t)rc;
	uint64_t freed = 0;
	int64_t before = tc__retired_sum(c, TC_C_RETIRED_BYTES);
	tc__reclaim(c, s, &freed);
	int64_t after = tc__retired_sum(c, TC_C_RETIRED_BYTES);
	rep->reclaimed = freed;
	rep->reclaimed_bytes = before > after ? (uint64_t)(before - after) : 0;
	int64_t left = tc__retired_sum(c, TC_C_RETIRED_BLOCKS);
	rep->retired_left = left > 0 ? (uint64_t)left : 0;
	return 0;
}

#define LEASE_PID(w) ((uint32_t)((w) >> 32))
#define LEASE_GEN_MASK 0x7fffffffull

static uint64_t lease_next(uint64_t w)
{
	return (w + 1) & LEASE_GEN_MASK;
}

static void lease_claimed(tc_cache *c, uint64_t w)
{
	(void)c;
	(void)w;
	TC_CRASH_POINT(lease_claiming);
}

static const struct tc__lease sweeper_lease = {
	TC_LEASE_FIELDS(lease),
	.next = lease_next, .claimed = lease_claimed, .mine_while_claiming = true,
};

int tc_lease_acquire(tc_cache *c, uint64_t stale_ms, uint32_t *holder)
{
	return c ? tc__lease_claim(c, &sweeper_lease, stale_ms, holder) : -EINVAL;
}

int tc_lease_renew(tc_cache *c)
{
	if (!c)
		return -EINVAL;
	if (LEASE_PID(tc__ld(&c->h->lease_word)) != tc__self_pid())
		return -EBUSY;
	tc__st(&c->h->lease_beat_ms, tc__now_ms());
	return 0;
}

int tc_lease_release(tc_cache *c)
{
	if (!c)
		return -EINVAL;
	uint64_t w = tc__ld(&c->h->lease_word);
	if (LEASE_PID(w) != tc__self_pid())
		return -EBUSY;
	tc__cas(&c->h->lease_word, w, (w + 1) & LEASE_GEN_MASK);
	return 0;
}

int tc_lease_holder(tc_cache *c, uint32_t *pid, uint64_t *age_ms, bool *alive)
{
	if (!c)
		return -EINVAL;
	uint64_t w = tc__ld(&c->h->lease_word);
	uint32_t p = LEASE_PID(w);
	int64_t age = tc__age_ms(tc__now_ms(), tc__ld(&c->h->lease_beat_ms));
	if (pid)
		*pid = p;
	if (age_ms)
		*age_ms = p && age > 0 ? (uint64_t)age : 0;
	if (alive)
		*alive = p && tc__pid_alive(p, tc__ld(&c->h->lease_start));
	return 0;
}
