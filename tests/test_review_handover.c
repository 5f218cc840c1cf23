/* SPDX-License-Identifier: MIT */
/*
 * test_review_handover.c - a review's interleavings of the retire-list
 * hand-over (issue 8, defect 4): two parties that walk one slot's pending
 * chain at once, each paused at a chosen step by a real thread.
 *
 * Like test_handover.c, this program carries its own copy of shm/epoch.c
 * with TC_CRASH_POINT calling tc__crash_point below; here a point does not
 * kill, it parks the calling thread until the test lets it go, so the
 * interleaving is exact and needs no timing.
 */
#define TC_CRASHPOINTS 1
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
		uint64_t r = tc__ld(&c->slots[i].reclaim);
		for (; r && !(r & TC_RECLAIM_PEND) && n <= c->arena_units; n++)
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		FX_TEST(test_cleaner_and_stealer_share_a_dead_slots_chain),
	};
	return fx_run(tests);
}
