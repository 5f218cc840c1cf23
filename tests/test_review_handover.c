/* SPDX-License-Identifier: MIT */
/*
 * test_review_handover.c - a review's interleavings of the retire-list
 * hand-over (issue 8, defect 4): two parties that walk one slot's pending
 * chain at once, each paused at a chosen step by a real thread.
 *
 * Like test_handover.c, this program carries its own copy of shm/epoch.c
 * with TC_CRASH_POINT calling tc__crash_point below; here a point does not
 * kill, it parks the calling thread until the test lets it go, so the
 * interleaving is exact and needs no timing.  So does "walk_loaded", the
 * test's point between walk_chain's load of a block's link and its CAS of
 * the reclaim word (TC_WALK_LOADED, epoch.c).  The last test scribbles the
 * owner's own word to values that name no chain.
 */
#define TC_CRASHPOINTS 1
#define TC_WALK_LOADED() tc__crash_point("walk_loaded")
#include "epoch.c"
#include "recover.c" /* was part of epoch.c */

#include "whitebox.h"

#include <pthread.h>
#include <semaphore.h>

static char cur_name[64];

/* Each thread names its role; the first time a role reaches the point it
 * waits for, it posts PAUSED and waits for GO. */
struct role {
	const char *point;
	int hits;
	sem_t paused, go;
};

static TC_TLS struct role *my_role;

void tc__crash_point(const char *name)
{
	struct role *r = my_role;
	if (r && strcmp(r->point, name) == 0 && r->hits++ == 0) {
		sem_post(&r->paused);
		while (sem_wait(&r->go) != 0)
			;
	}
}

static void role_init(struct role *r, const char *point)
{
	r->point = point;
	r->hits = 0;
	sem_init(&r->paused, 0, 0);
	sem_init(&r->go, 0, 0);
}

static void sem_take(sem_t *s)
{
	while (sem_wait(s) != 0)
		;
}

/* Blocks named by the retire list and by every slot's (plain) reclaim word. */
static uint64_t named_blocks(tc_cache *c)
{
	uint64_t n = 0;
	uint64_t ref = TC_RH_REF(tc__ld(&c->h->retire_head));
	for (; ref && n <= c->arena_units; n++)
		ref = tc__ld(&tc__block(c, ref)->link);
	for (uint32_t i = 0; i < c->nslots; i++) {
		uint64_t w = tc__ld(&c->slots[i].reclaim);
		uint64_t r = w & TC_RECLAIM_PEND ? 0 : TC_RECLAIM_REF(w);
		for (; r && n <= c->arena_units; n++)
			r = tc__ld(&tc__block(c, r)->link);
	}
	return n;
}

struct stealer_arg {
	tc_cache *c;
	struct role *role;
};

static void *stealer_main(void *p)
{
	struct stealer_arg *a = p;
	my_role = a->role;
	steal_chains(a->c, NULL);
	my_role = NULL;
	return NULL;
}

static struct stealer_arg st_arg;
static pthread_t st_thread;
static struct role cleaner_role, stealer_role;

/*
 * The cleaner of slot D (dead owner) moved D's word past the first block
 * and is paused there; a stealer (another reclaimer's steal_chains) then
 * moves it past the second block and is paused in turn.  The cleaner's
 * next CAS fails, so it stops walking, and clear_dead_slot then stores 0
 * into D's word; the stealer's next CAS fails too.  Every block of the
 * chain after the second must still be named: before the fix, none was
 * (38 of 40 blocks named by nothing until an idle tc_audit).
 */
static void cleaner_hook_starts_stealer(void)
{
	if (st_thread == 0) {
		st_arg.role = &stealer_role;
		assert_int_equal(0, pthread_create(&st_thread, NULL, stealer_main, &st_arg));
	}
}

static void *conduct(void *p)
{
	(void)p;
	sem_take(&cleaner_role.paused);
	cleaner_hook_starts_stealer();
	sem_take(&stealer_role.paused);
	sem_post(&cleaner_role.go);
	return NULL;
}

static void test_cleaner_and_stealer_share_a_dead_slots_chain(void **state)
{
	(void)state;
	const char *name = fx_name(cur_name);
	tc_cache *c = wb_create(name, 1024, 1 << 20, 16, TC_EVICT_NONE);
	wb_retire_n(c, 40, 'a');
	assert_int_equal(40, named_blocks(c));

	/* Slot D: owned by a process that has exited, holding the whole list
	 * as its pending chain (a reclaimer killed in its walk). */
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(0);
	assert_int_equal(0, fx_wait(pid));
	struct tc_rslot *d = &c->slots[5];
	assert_int_equal(0, tc__ld(&d->owner));
	uint64_t owner = (uint64_t)pid << 32 | (uint32_t)pid;
	tc__st(&d->owner, owner);
	uint64_t head = tc__ld(&c->h->retire_head);
	assert_int_equal(head, tc__cas(&c->h->retire_head, head,
				       TC_RH_MAKE(6, TC_RH_COUNTER(head) + 1, 0)));
	tc__st(&d->reclaim, TC_RH_REF(head));
	assert_int_equal(40, named_blocks(c));
	assert_true(tc__slot_dead(c, d, owner));

	/* The cleaner (this thread) pauses after its first step; in the
	 * pause a stealer thread starts and pauses after its own first step. */
	role_init(&cleaner_role, "reclaim_walk");
	role_init(&stealer_role, "reclaim_walk");
	st_arg.c = c;
	st_thread = 0;
	my_role = &cleaner_role;
	/* A conductor thread starts the stealer once the cleaner is parked,
	 * waits for the stealer to park, and lets the cleaner go. */
	pthread_t conductor;
	assert_int_equal(0, pthread_create(&conductor, NULL, conduct, NULL));
	assert_true(clear_dead_slot(c, d, owner, NULL));
	my_role = NULL;
	/* The cleaner is done; the stealer continues. */
	sem_post(&stealer_role.go);
	assert_int_equal(0, pthread_join(conductor, NULL));
	assert_int_equal(0, pthread_join(st_thread, NULL));
	assert_int_equal(0, tc__ld(&d->owner));

	/* Nothing may be lost: every retired block is named by a list. */
	assert_int_equal(40, named_blocks(c));
	uint64_t freed = UINT64_MAX;
	ASSERT_RC(0, tc_reclaim(c, &freed));
	assert_int_equal(40, freed);
	tc_audit_report ar;
	ASSERT_RC(0, tc_audit(c, &ar));
	assert_int_equal(0, ar.recovered);
	tc_close(c);
}

/*
 * A stealer paused between its load of the first block's link and its CAS
 * of the owner's reclaim word, while the owner walks the whole chain,
 * reuses its blocks, and detaches a new chain that starts with the same
 * block.  The stealer's CAS must fail: the word names another chain now,
 * whose second block is not the link the stealer loaded.  Before, the word
 * was the bare ref and the CAS succeeded: it moved the owner's word to a
 * block of the old chain (a live key's now), and the rest of the new chain
 * was named by nothing (its second block RETIRED for ever, recovered only
 * by an idle tc_audit).  With a grace period that found no reader (rmin
 * UINT64_MAX before test_review_reclaim.c's fix; the epoch it advanced to
 * since), a word moved to a block retired after that scan would free it
 * whatever a reader that entered since holds.
 */
static void *lone_stealer_main(void *p)
{
	my_role = p;
	steal_chains(st_arg.c, NULL);
	my_role = NULL;
	return NULL;
}

static struct tc_entry *block_of_key(tc_cache *c, const char *k)
{
	return wb_entry_of(c, k, TC_KIND_KEY);
}

static void test_a_stealers_stale_link_never_lands_in_a_new_chain(void **state)
{
	(void)state;
	char v[1000];
	const char *name = fx_name(cur_name);
	tc_cache *c = wb_create(name, 1024, 1 << 20, 16, TC_EVICT_NONE);
	struct tc_rslot *sa = tc__slot(c);
	assert_non_null(sa);
	/* The owner's pending chain: three retired blocks, walked by none
	 * yet (a reclaim with budget 0), after a grace period without readers. */
	wb_retire_n(c, 3, 'a');
	uint64_t freed = UINT64_MAX;
	ASSERT_RC(0, tc__reclaim_budget(c, sa, &freed, 0));
	assert_int_equal(0, freed);
	/* No reader: the bound is the epoch the grace period advanced to. */
	assert_int_equal(tc__ld(&c->h->epoch), tc__ld(&sa->rmin));
	uint64_t w0 = tc__ld(&sa->reclaim);
	assert_true(w0 != 0 && !(w0 & TC_RECLAIM_PEND));
	uint64_t x_ref = TC_RECLAIM_REF(w0);

	/* A stealer loads the first block's link and pauses. */
	role_init(&stealer_role, "walk_loaded");
	st_arg.c = c;
	pthread_t th;
	assert_int_equal(0, pthread_create(&th, NULL, lone_stealer_main, &stealer_role));
	sem_take(&stealer_role.paused);

	/* The owner walks its chain: every block freed. */
	assert_int_equal(3, tc__reclaim_step(c, sa, UINT64_MAX));
	assert_int_equal(0, tc__ld(&sa->reclaim));
	/* Three keys take the three blocks again; the one in the chain's first
	 * block (X) is deleted last, another (Z) before it. */
	memset(v, 'b', sizeof(v));
	const char *keys[3] = { "b0", "b1", "b2" };
	const char *xk = NULL, *zk = NULL;
	for (int i = 0; i < 3; i++)
		ASSERT_RC(0, tc_set(c, keys[i], 2, v, sizeof(v), 0, 0));
	for (int i = 0; i < 3; i++) {
		if (tc__ref_of(c, block_of_key(c, keys[i])) == x_ref)
			xk = keys[i];
		else if (!zk)
			zk = keys[i];
	}
	assert_non_null(xk);
	assert_non_null(zk);
	struct tc_entry *z = block_of_key(c, zk);
	ASSERT_RC(0, tc_del(c, zk, 2));
	ASSERT_RC(0, tc_del(c, xk, 2));
	/* The owner detaches them: its new chain X -> Z starts where the
	 * stealer's load did. */
	ASSERT_RC(0, tc__reclaim_budget(c, sa, &freed, 0));
	uint64_t w1 = tc__ld(&sa->reclaim);
	assert_int_equal(x_ref, TC_RECLAIM_REF(w1));
	assert_int_equal(TC_BLK_RETIRED, tc__ld(&z->state));

	/* The stealer goes on. */
	sem_post(&stealer_role.go);
	assert_int_equal(0, pthread_join(th, NULL));

	/* Nothing may be lost: the owner's next reclaim frees X and Z. */
	ASSERT_RC(0, tc_reclaim(c, &freed));
	ASSERT_RC(0, tc_reclaim(c, &freed));
	assert_int_equal(TC_BLK_FREE, tc__ld(&z->state));
	assert_int_equal(0, tc__retired_sum(c, TC_C_RETIRED_BLOCKS));
	tc_audit_report ar;
	ASSERT_RC(0, tc_audit(c, &ar));
	assert_int_equal(0, ar.recovered);
	tc_close(c);
}

/*
 * A slot's reclaim word scribbled to a value that names no chain of its
 * owner: a counter without a ref (the plain form never has one: the walk
 * stores 0 at the chain's end), or the PEND form (only the owner's own
 * detach writes it, and resolves it before it returns).  The owner's next
 * reclaim must withdraw it and go on.  Since the plain form keeps the
 * detach's counter (f2a76d4), walk_chain strips it: the ref 0 walked
 * nothing and left the word, and a PEND word failed its CAS and was left
 * too, so the word was never 0 again and the owner never detached the
 * list again (freed 0, the word as scribbled, for the owner's whole life;
 * nobody else clears a live owner's word, tc_audit included).  Before that
 * commit the bare word was walked as a ref, found no block and was cleared.
 */
static void test_a_scribbled_reclaim_word_naming_no_chain_is_withdrawn(void **state)
{
	(void)state;
	const char *name = fx_name(cur_name);
	tc_cache *c = wb_create(name, 1024, 1 << 20, 16, TC_EVICT_NONE);
	struct tc_rslot *sa = tc__slot(c);
	assert_non_null(sa);
	ASSERT_RC(0, tc_set(c, "live", 4, "value", 5, 0, 0));
	uint64_t live = tc__ref_of(c, block_of_key(c, "live"));
	const uint64_t words[] = {
		5ull << 32,
		TC_RECLAIM_PEND | 5ull << 32,
		TC_RECLAIM_PEND | 5ull << 32 | live,
		TC_RECLAIM_PEND | TC_RH_COUNTER(tc__ld(&c->h->retire_head)) << 32 | live,
	};
	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
		tc__st(&sa->reclaim, words[i]);
		wb_retire_n(c, 3, (char)('a' + i));
		uint64_t freed = UINT64_MAX;
		ASSERT_RC(0, tc_reclaim(c, &freed));
		assert_int_equal(3, freed);
		assert_int_equal(0, tc__ld(&sa->reclaim));
		assert_int_equal(0, tc__retired_sum(c, TC_C_RETIRED_BLOCKS));
	}
	char out[16];
	tc_meta meta;
	ASSERT_RC(0, tc_get(c, "live", 4, out, sizeof(out), &meta));
	assert_int_equal(5, meta.len);
	assert_memory_equal("value", out, 5);
	tc_audit_report ar;
	ASSERT_RC(0, tc_audit(c, &ar));
	assert_int_equal(0, ar.recovered);
	tc_close(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		FX_TEST(test_cleaner_and_stealer_share_a_dead_slots_chain),
		FX_TEST(test_a_stealers_stale_link_never_lands_in_a_new_chain),
		FX_TEST(test_a_scribbled_reclaim_word_naming_no_chain_is_withdrawn),
	};
	return fx_run(tests);
}
