/* SPDX-License-Identifier: MIT */
/*
 * futex.h - futex.c's inline half: the check every publishing writer makes
 * (tc__notify), and the calls of the waiters (notify.c).  Included by the
 * files that publish; futex.c itself calls nothing of shm/ above it.
 */
#ifndef TC_FUTEX_H
#define TC_FUTEX_H

#include "internal.h"

void tc__notify_slow(tc_cache *c, uint32_t *key_word); /* KEY_WORD NULL: any_wake only */
/* Every word and every sleeper: tc_unlink, the cleaner of a dead slot. */
void tc__notify_all(struct tc_hdr *h);
uint32_t tc__wake_arm(uint32_t *p, uint32_t flags);
int  tc__wake_sleep(uint32_t *p, uint32_t w, uint64_t deadline_ns);
uint64_t tc__wake_calls(void);                 /* FUTEX_WAKE calls of this process (tests) */

/*
 * Call after every publish that changes what a key of HASH holds (its
 * slot word, or a root word such as run_word: then any hash), once the
 * publishing CAS (a full barrier) succeeded.  Nobody waiting: two loads of
 * read-mostly lines and one branch, no write, no syscall.  Someone waiting:
 * tc__notify_slow bumps the words and wakes the sleepers.  Both words are
 * untrusted: a scribbled flag costs one wake, never a wrong result.
 */
#if defined(TC_BENCH_NO_WAKE_CHECK)
/* tools/wakecost.sh's baseline only (never a library anyone runs): the
 * writes without the check, to measure what the check costs them. */
static inline void tc__notify(tc_cache *c, uint64_t hash)
{
	(void)c;
	(void)hash;
}

static inline void tc__notify_any(tc_cache *c)
{
	(void)c;
}
#else
static inline void tc__notify(tc_cache *c, uint64_t hash)
{
	struct tc_hdr *h = c->h;
	uint32_t *kw = &h->key_wake[TC_WAKE_SHARD(hash)];
	if (TC_UNLIKELY((tc__ld(kw) | tc__ld(&h->any_wake)) & TC_WAKE_FLAGS))
		tc__notify_slow(c, kw);
}

/* tc__notify for a publish of a root word (run_word): the segment-wide word only. */
static inline void tc__notify_any(tc_cache *c)
{
	if (TC_UNLIKELY(tc__ld(&c->h->any_wake) & TC_WAKE_FLAGS))
		tc__notify_slow(c, NULL);
}
#endif

#endif /* TC_FUTEX_H */
