/* SPDX-License-Identifier: MIT */
/*
 * notify.c - waiting for a change: tc_wait (one key's next version) and
 * tc_wait_any (anything published in the segment), on the futex words of
 * futex.c.
 *
 * Both are loops of the same three steps: set the flags on the word
 * (tc__wake_arm: a full barrier after a value with them), check what the
 * caller waits for, sleep on the word's value.  A writer publishes, then
 * loads the word; a flag there makes it bump the word and wake the sleepers.
 * The barrier on both sides makes the waiter's check see the publish, or
 * the writer see the flag (docs/design.md, "Waiting for a change"), so no
 * wake-up is lost; the kernel's value check at FUTEX_WAIT covers a bump
 * between our check and our sleep.  Every return of the sleep (a wake, a
 * changed word, a spurious one, the deadline) goes back to the check, so a
 * caller only ever sees the result of a check.
 *
 * A waiter holds no read section while it sleeps (it would hold back
 * reclamation in every process), and leaves nothing behind but a flag that
 * the next writer clears.
 */
#include "internal.h"
#include "futex.h"
#include "index.h"

/* A sleep without the caller's deadline is cut into these, so that every
 * sleep has one: FUTEX_WAIT with a timeout returns EINTR after a signal
 * handler whatever its SA_RESTART, and tc_wait's -EINTR does not depend on
 * how the caller installed its handlers. */
#define LONG_SLEEP_NS (24 * 3600 * 1000000000ull)
#define MAX_TIMEOUT_MS (100ull * 365 * 24 * 3600 * 1000) /* longer: no deadline */

/* The absolute CLOCK_MONOTONIC deadline of TIMEOUT_MS from now; 0 = none. */
static uint64_t deadline_of(uint64_t timeout_ms)
{
	if (timeout_ms > MAX_TIMEOUT_MS)
		return 0;
	return tc__mono_ns() + timeout_ms * 1000000ull;
}

/* How long the next sleep may last: until T_END, or a long slice of none;
 * until WAKE_AT too when that is earlier (0 = no such bound). */
static uint64_t sleep_until(uint64_t now, uint64_t t_end, uint64_t wake_at)
{
	uint64_t until = t_end ? t_end : now + LONG_SLEEP_NS;
	if (wake_at && wake_at < until)
		until = wake_at;
	return until;
}

/*
 * One check of KEY for tc_wait: 1 when its version is above VERSION, or
 * it exists and VERSION is 0 (META filled), 0 when the caller should sleep
 * (*EXPIRES_MS: the expiry of the version seen, 0 = none), or a code to
 * return.
 */
static int check_key(tc_cache *c, const void *key, size_t klen, uint64_t version,
		     tc_meta *meta, int64_t *expires_ms)
{
	tc_meta m;
	/* No copy (cap 0): -E2BIG carries the meta of a value; the precise
	 * clock judges expiry; no reference bit, nothing counted. */
	int rc = tc__get_quiet(c, key, klen, NULL, 0, &m);
	*expires_ms = 0;
	if (rc == 0 || rc == -E2BIG) {
		/* VERSION 0 asks for the key's existence, not for a version
		 * above 0 (only a scribble makes a version 0). */
		if (m.version > version || version == 0) {
			if (meta)
				*meta = m;
			return 1;
		}
		*expires_ms = m.expires_ms;
		return 0;
	}
	if (rc == -ENOENT && version == 0)
		return 0; /* waiting for the key to exist */
	return rc;
}

int tc_wait(tc_cache *c, const void *key, size_t klen, uint64_t version, uint64_t timeout_ms,
	    tc_meta *meta)
{
	if (!c || !tc__valid_key(key, klen))
		return -EINVAL;
	if (tc__in_section(c))
		return -EDEADLK; /* our own section would hold reclamation while we sleep */
	uint64_t hash = tc__hash(c, key, klen, TC_KIND_KEY);
	uint32_t *word = &c->h->key_wake[TC_WAKE_SHARD(hash)];
	uint64_t t_end = deadline_of(timeout_ms);
	for (;;) {
		/* A check without the flag first: a caller that finds its
		 * version at once, or after a wake, or will not sleep, leaves
		 * no flag for a writer to pay a wake for. */
		int64_t exp;
		int rc = check_key(c, key, klen, version, meta, &exp);
		if (rc)
			return rc > 0 ? 0 : rc;
		if (timeout_ms == 0 || (t_end && tc__mono_ns() >= t_end))
			return -ETIMEDOUT; /* and no flag left for a sleep that never was */
		uint32_t w = tc__wake_arm(word, TC_WAKE_SLEEP);
		rc = check_key(c, key, klen, version, meta, &exp);
		if (rc)
			return rc > 0 ? 0 : rc;
		uint64_t now = tc__mono_ns();
		if (t_end && now >= t_end)
			return -ETIMEDOUT;
		/* The version seen expires without a publish (unless a sweep
		 * removes it): wake up at its expiry to see it gone. */
		uint64_t wake_at = 0;
		if (exp) {
			int64_t rt = tc__now_ms();
			uint64_t left = exp > rt ? (uint64_t)exp - (uint64_t)rt : 0;
			if (left < LONG_SLEEP_NS / 1000000ull) /* else: no bound */
				wake_at = now + left * 1000000ull + 1000000ull;
		}
		rc = tc__wake_sleep(word, w, sleep_until(now, t_end, wake_at));
		if (rc && rc != -ETIMEDOUT)
			return rc; /* -EINTR, or the futex call failed */
	}
}

int tc_wait_any(tc_cache *c, uint64_t *seq, uint64_t timeout_ms)
{
	if (!c || !seq)
		return -EINVAL;
	if (tc__in_section(c))
		return -EDEADLK;
	uint32_t *word = &c->h->any_wake;
	uint64_t t_end = deadline_of(timeout_ms);
	for (;;) {
		/* Armed before the caller reads anything: a publish its reads
		 * miss finds the flag and moves the generation on. */
		uint32_t w = tc__wake_arm(word, TC_WAKE_ARMED);
		/* The segment's state, as every data call checks it (-ESTALE
		 * once unlinked: tc_unlink wakes every word). */
		struct tc_rslot *s;
		int rc = tc__enter(c, &s);
		if (rc)
			return rc;
		tc__exit(c);
		uint64_t cur = (uint64_t)(w >> TC_WAKE_GEN_SHIFT) + 1;
		if (*seq != cur) { /* also *seq == 0: no sequence yet */
			*seq = cur;
			return 0;
		}
		uint64_t now = tc__mono_ns();
		if (timeout_ms == 0 || (t_end && now >= t_end))
			return -ETIMEDOUT;
		w = tc__wake_arm(word, TC_WAKE_SLEEP);
		if ((uint64_t)(w >> TC_WAKE_GEN_SHIFT) + 1 != cur)
			continue; /* bumped meanwhile: report it */
		rc = tc__wake_sleep(word, w, sleep_until(now, t_end, 0));
		if (rc && rc != -ETIMEDOUT)
			return rc;
	}
}
