/* SPDX-License-Identifier: MIT */
/*
 * futex.c - the futex words of a segment: how a waiter sleeps until a
 * writer's publish, and how a writer that nobody waits for pays nothing.
 *
 * The header holds 64 key words (key_wake, one per shard of key hashes) and
 * one segment-wide word (any_wake).  A word is a generation with flags in its
 * low bits: TC_WAKE_SLEEP (a waiter may be asleep on this value) and, on
 * any_wake only, TC_WAKE_ARMED (a tc_wait_any caller wants the next change
 * counted).  The protocol is the one of Drepper's "Futexes Are Tricky"
 * (mutex 2, the "contended" state), with the data in place of the lock:
 *
 *   waiter: set the flags (CAS; a full barrier) -> check the data ->
 *           FUTEX_WAIT(word, value with the flags)
 *   writer: publish (CAS; a full barrier) -> load the words -> only when a
 *           flag is set: CAS the word to the next generation, flags clear,
 *           and FUTEX_WAKE every sleeper if SLEEP was set
 *
 * A writer that finds no flag makes no syscall and no shared write: two
 * loads of read-mostly lines (tc__notify in internal.h).  A waiter killed or
 * stopped leaves its flag for at most one writer, whose bump clears it
 * (bounded: one FUTEX_WAKE per word and dead waiter).  Why no wake-up is
 * lost: docs/design.md, "Waiting for a change".
 *
 * The words live in MAP_SHARED memory of a shm object, so the futexes are
 * shared ones (no FUTEX_PRIVATE_FLAG): the kernel keys them by inode and
 * offset, and a writer in one process wakes a waiter in another whatever
 * addresses they mapped the segment at.  This file only touches the words;
 * what a waiter checks is notify.c's.
 */
#include "internal.h"
#include "futex.h"

#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Bounds the writer's CAS loop against a word that a scribbler keeps changing. */
#define BUMP_TRIES 64

/* FUTEX_WAKE calls made by this process (tests count them). */
static uint64_t wake_calls;

uint64_t tc__wake_calls(void)
{
	return __atomic_load_n(&wake_calls, __ATOMIC_RELAXED);
}

static void futex_wake_all(uint32_t *p)
{
	__atomic_add_fetch(&wake_calls, 1, __ATOMIC_RELAXED);
	syscall(SYS_futex, p, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

/*
 * The writer's side, after its publish: when the word it loads carries
 * flags, move it to the next generation with the flags clear and wake the
 * sleepers.  A failed CAS means the word changed since the load: when its
 * generation is the same, a waiter added a flag (our bump still has to
 * happen); when it moved on, another writer bumped it and woke the sleepers
 * of the value we loaded, and any flag set since then belongs to a waiter
 * whose check comes after our publish (design.md): nothing left to do.
 */
static void bump(uint32_t *p)
{
	uint32_t w = tc__ld(p);
	for (int i = 0; i < BUMP_TRIES && (w & TC_WAKE_FLAGS); i++) {
		uint32_t nw = (w & ~TC_WAKE_FLAGS) + TC_WAKE_GEN;
		uint32_t was = tc__cas(p, w, nw);
		if (was == w) {
			TC_CRASH_POINT(wake_bumped);
			if (w & TC_WAKE_SLEEP)
				futex_wake_all(p);
			return;
		}
		if ((was >> TC_WAKE_GEN_SHIFT) != (w >> TC_WAKE_GEN_SHIFT))
			return;
		w = was;
	}
}

void tc__notify_slow(tc_cache *c, uint32_t *key_word)
{
	if (key_word)
		bump(key_word);
	bump(&c->h->any_wake);
}

/* Bump P if flagged, and wake its sleepers whether it was or not (a bump
 * that finds the generation moved leaves the wake to the writer that moved
 * it, which may be the dead one). */
static void bump_and_wake(uint32_t *p)
{
	bump(p);
	futex_wake_all(p);
}

/*
 * Every word, for tc_unlink and the cleaner of a dead process's slot
 * (recover.c): flagged words are bumped, and every word's sleepers are
 * woken even without a flag.  A writer killed between its bump's CAS,
 * which cleared the flags, and its FUTEX_WAKE (wake_bumped) left them
 * asleep on a value the word no longer holds, which no later writer wakes:
 * it finds no flag.  65 to 130 syscalls, once per dead slot or unlink.
 */
void tc__notify_all(struct tc_hdr *h)
{
	for (int i = 0; i < TC_WAKE_SHARDS; i++)
		bump_and_wake(&h->key_wake[i]);
	bump_and_wake(&h->any_wake);
}

/*
 * The waiter's side, before its check: make sure the word carries FLAGS and
 * return its value with them.  Either our CAS set them (a full barrier), or
 * another waiter did and we issue the full barrier ourselves, so that our
 * check is ordered after a value with the flags in the word.
 */
uint32_t tc__wake_arm(uint32_t *p, uint32_t flags)
{
	uint32_t w = tc__ld(p);
	for (;;) {
		if ((w & flags) == flags) {
			tc__mb();
			return w;
		}
		uint32_t was = tc__cas(p, w, w | flags);
		if (was == w)
			return w | flags;
		w = was;
	}
}

/*
 * Sleep while *P holds W, until DEADLINE_NS (CLOCK_MONOTONIC, absolute; 0 =
 * no deadline).  0: woken, or the word had changed, or a spurious return
 * (the caller checks again either way); -ETIMEDOUT; -EINTR (a signal
 * handler ran); any other failure of the call as its -errno (a sandbox
 * that refuses futex: taken for a change, it would be called again at
 * once, a busy loop to the deadline).
 */
int tc__wake_sleep(uint32_t *p, uint32_t w, uint64_t deadline_ns)
{
	struct timespec ts, *tsp = NULL;
	if (deadline_ns) {
		ts.tv_sec = (time_t)(deadline_ns / 1000000000ull);
		ts.tv_nsec = (long)(deadline_ns % 1000000000ull);
		tsp = &ts;
	}
	/* FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC deadline, so a
	 * loop over spurious returns needs no arithmetic on what is left. */
	if (syscall(SYS_futex, p, FUTEX_WAIT_BITSET, w, tsp, NULL, FUTEX_BITSET_MATCH_ANY) == 0)
		return 0;
	if (errno == EAGAIN) /* the word changed before we slept */
		return 0;
	return -errno; /* -ETIMEDOUT, -EINTR, or the call failed */
}
