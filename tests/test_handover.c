/* SPDX-License-Identifier: MIT */
/*
 * test_handover.c - writers killed exactly inside the hand-over windows of
 * the retire list and of the TTL policy table (issue 8, defect 4 and the
 * policy item): whoever clears the dead slot recovers everything online,
 * and the audit of the idle segment then finds nothing to recover.
 *
 * This program carries its own copy of shm/epoch.c, shm/recover.c and shm/policy.c,
 * compiled with -DTC_CRASHPOINTS semantics (TC_CRASH_POINT calls
 * tc__crash_point below), so that the ordinary library needs no hook: the
 * static archive's epoch.o and policy.o are then never linked in.
 */
#define TC_CRASHPOINTS 1
#include "epoch.c"
#include "recover.c" /* was part of epoch.c */
#include "policy.c"

#include "whitebox.h"

#include <signal.h>
#include <sys/prctl.h>

static const char *armed;

void tc__crash_point(const char *name)
{
	if (armed && strcmp(armed, name) == 0)
		raise(SIGKILL);
}

static char cur_name[64];

static uint64_t retired_blocks(tc_cache *c)
{
	return (uint64_t)tc__retired_sum(c, TC_C_RETIRED_BLOCKS);
}

/* Fork a process that opens NAME and runs FN with crash point POINT armed;
 * it must die there by SIGKILL. */
static void kill_at(const char *name, const char *point, int (*fn)(tc_cache *))
{
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		tc_cache *cc = NULL;
		if (tc_open(&cc, name, NULL))
			_exit(2);
		armed = point;
		fn(cc);
		_exit(3); /* the point was not reached */
	}
	int st;
	assert_int_equal(pid, waitpid(pid, &st, 0));
	if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGKILL)
		fail_msg("child was not killed at %s: status %d", point, st);
}

static int do_reclaim(tc_cache *c)
{
	return tc_reclaim(c, NULL);
}

/* After the slot is cleared: nothing is retired or leaked. */
static void expect_nothing_lost(tc_cache *c, uint64_t freed_want)
{
	uint64_t freed = UINT64_MAX;
	ASSERT_RC(0, tc_reclaim(c, &freed));
	assert_int_equal(freed_want, freed);
	assert_int_equal(0, retired_blocks(c));
	tc_audit_report ar;
	ASSERT_RC(0, tc_audit(c, &ar));
	assert_int_equal(0, ar.recovered);
}

/* Killed after the detach CAS, before its slot names the chain. */
static void test_kill_after_detach_chain_recovered_by_cleaner(void **state)
{
	(void)state;
	const char *name = fx_name(cur_name);
	tc_cache *c = wb_create(name, 1024, 1 << 20, 16, TC_EVICT_NONE);
	wb_retire_n(c, 40, 'a');
	assert_int_equal(40, retired_blocks(c));
	kill_at(name, "reclaim_detached", do_reclaim);
	uint64_t head = tc__ld(&c->h->retire_head);
	assert_int_equal(0, TC_RH_REF(head)); /* detached, named by no list */
	assert_true(TC_RH_SLOT(head) != 0);
	uint32_t cleared = 0;
	ASSERT_RC(0, tc_readers_clean(c, &cleared));
	assert_int_equal(1, cleared);
	expect_nothing_lost(c, 40);
	tc_close(c);
}

/* The same, but a retire changes the head before the cleaner comes: the
 * retiring thread settles the dead slot's word first. */
static void test_kill_after_detach_then_push_chain_recovered(void **state)
{
	(void)state;
	const char *name = fx_name(cur_name);
	tc_cache *c = wb_create(name, 1024, 1 << 20, 16, TC_EVICT_NONE);
	wb_retire_n(c, 40, 'a');
	kill_at(name, "reclaim_detached", do_reclaim);
	wb_retire_n(c, 3, 'b');
	assert_int_equal(0, TC_RH_SLOT(tc__ld(&c->h->retire_head)));
	uint32_t cleared = 0;
	ASSERT_RC(0, tc_readers_clean(c, &cleared));
	assert_int_equal(1, cleared);
	expect_nothing_lost(c, 43);
	tc_close(c);
}

/* A dead slot whose detach never happened (its word still PEND, the head
 * unchanged): the cleaner withdraws the word and the chain stays listed
 * once. */
static void test_dead_slot_with_withdrawn_detach_lists_nothing_twice(void **state)
{
	(void)state;
	const char *name = fx_name(cur_name);
	tc_cache *c = wb_create(name, 1024, 1 << 20, 16, TC_EVICT_NONE);
	wb_retire_n(c, 40, 'a');
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		tc_cache *cc = NULL;
		char b[4];
		if (tc_open(&cc, name, NULL) || tc_get(cc, "x", 1, b, sizeof(b), NULL) != -ENOENT)
			_exit(2);
		_exit(0); /* no tc_close: the slot stays, its owner dead */
	}
	int st;
	assert_int_equal(pid, waitpid(pid, &st, 0));
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	struct tc_rslot *dead = NULL;
	for (uint32_t i = 0; i < c->nslots; i++)
		if ((tc__ld(&c->slots[i].owner) >> 32) == (uint64_t)pid)
			dead = &c->slots[i];
	assert_non_null(dead);
	uint64_t head = tc__ld(&c->h->retire_head);
	tc__st(&dead->reclaim, TC_RECLAIM_PEND | TC_RH_COUNTER(head) << 32 | TC_RH_REF(head));
	uint32_t cleared = 0;
	ASSERT_RC(0, tc_readers_clean(c, &cleared));
	assert_int_equal(1, cleared);
	assert_int_equal(head, tc__ld(&c->h->retire_head));
	expect_nothing_lost(c, 40);
	tc_close(c);
}

static int set_policy_b(tc_cache *c)
{
	return tc_ttl_policy_set(c, "b:", 2000);
}

/* Killed after publishing a new policy table, before retiring the old. */
static void test_kill_after_policy_publish_old_table_retired(void **state)
{
	(void)state;
	const char *name = fx_name(cur_name);
	tc_cache *c = wb_create(name, 1024, 1 << 20, 16, TC_EVICT_NONE);
	ASSERT_RC(0, tc_ttl_policy_set(c, "a:", 1000));
	kill_at(name, "policy_swapped", set_policy_b);
	assert_int_equal(2, tc__policy_count(c));
	uint32_t cleared = 0;
	ASSERT_RC(0, tc_readers_clean(c, &cleared));
	assert_int_equal(1, cleared);
	expect_nothing_lost(c, 1);
	assert_int_equal(2000, tc__policy_ttl(c, "b:x", 3));
	assert_int_equal(1000, tc__policy_ttl(c, "a:x", 3));
	tc_close(c);
}

/* Killed with the new table built, before the publishing CAS. */
static void test_kill_before_policy_publish_new_table_retired(void **state)
{
	(void)state;
	const char *name = fx_name(cur_name);
	tc_cache *c = wb_create(name, 1024, 1 << 20, 16, TC_EVICT_NONE);
	ASSERT_RC(0, tc_ttl_policy_set(c, "a:", 1000));
	kill_at(name, "policy_built", set_policy_b);
	assert_int_equal(1, tc__policy_count(c));
	uint32_t cleared = 0;
	ASSERT_RC(0, tc_readers_clean(c, &cleared));
	assert_int_equal(1, cleared);
	expect_nothing_lost(c, 1);
	assert_int_equal(1000, tc__policy_ttl(c, "a:x", 3));
	tc_close(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		FX_TEST(test_kill_after_detach_chain_recovered_by_cleaner),
		FX_TEST(test_kill_after_detach_then_push_chain_recovered),
		FX_TEST(test_dead_slot_with_withdrawn_detach_lists_nothing_twice),
		FX_TEST(test_kill_after_policy_publish_old_table_retired),
		FX_TEST(test_kill_before_policy_publish_new_table_retired),
	};
	return fx_run(tests);
}
