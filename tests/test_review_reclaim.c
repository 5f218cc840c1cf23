/* SPDX-License-Identifier: MIT */
/*
 * test_review_reclaim.c - a review of reclamation by tests: one block that
 * two walkers reach at once (a scribbled reclaim word, of a live slot or of
 * a free one), a block that a scribbled link brings into a chain whose
 * grace period ended before the block was retired, and a block that a
 * scribbled word names while its retirer has not stamped it yet.
 *
 * Like test_review_handover.c, this program carries its own copy of
 * shm/epoch.c, with TC_CRASH_POINT calling tc__crash_point below.  Its
 * point "walk_checked" (TC_WALK_CHECKED, epoch.c) lies between walk_chain's
 * check of a block's state and the free or push back that the check
 * decided; a thread whose role names a point (that one, or a crash point
 * such as retire_marked) parks there until the test lets it go, so the
 * interleaving is exact and needs no timing.
 */
#define TC_CRASHPOINTS 1
#define TC_WALK_CHECKED() tc__crash_point("walk_checked")
#include "epoch.c"
#include "recover.c" /* was part of epoch.c */

#include "whitebox.h"

#include <pthread.h>
#include <semaphore.h>

static char cur_name[64];

/* A thread whose role names a point parks there the first time it reaches
 * it: it posts PAUSED and waits for GO. */
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

static struct tc_entry *block_of_key(tc_cache *c, const char *k)
{
	return wb_entry_of(c, k, TC_KIND_KEY);
}

/* The slot of this (main) thread, with a pending chain of one retired
 * block that no walk has touched yet (a reclaim with budget 0): its ref. */
static uint64_t one_block_chain(tc_cache *c, struct tc_rslot *sa, char tag)
{
	wb_retire_n(c, 1, tag);
	uint64_t freed = UINT64_MAX;
	ASSERT_RC(0, tc__reclaim_budget(c, sa, &freed, 0));
	assert_int_equal(0, freed);
	uint64_t w = tc__ld(&sa->reclaim);
	assert_true(w != 0 && !(w & TC_RECLAIM_PEND));
	assert_int_equal(TC_BLK_RETIRED, tc__ld(&tc__block(c, TC_RECLAIM_REF(w))->state));
	return TC_RECLAIM_REF(w);
}

static void set_value(tc_cache *c, const char *k, char fill)
{
	char v[1000];
	memset(v, fill, sizeof(v));
	ASSERT_RC(0, tc_set(c, k, strlen(k), v, sizeof(v), 0, 0));
}

static void assert_value(tc_cache *c, const char *k, char fill)
{
	char v[1000], out[1000];
	tc_meta meta;
	memset(v, fill, sizeof(v));
	ASSERT_RC(0, tc_get(c, k, strlen(k), out, sizeof(out), &meta));
	assert_int_equal(sizeof(v), meta.len);
	assert_memory_equal(v, out, sizeof(v));
}

/* ---- two owners' walks reach one block ----------------------------------- */

/* Owner B: a thread with a slot of its own, which first runs a grace period
 * of its own (after A's chain was retired, so that B's bound lies above
 * the stamp of A's block), then, once its reclaim word was scribbled to
 * name A's block, continues "its" pending chain. */
static struct {
	tc_cache *c;
	struct tc_rslot *sb;
	struct role role;
	sem_t ready, go;
	int rc_set, rc_del, rc_reclaim;
	uint64_t freed_grace, freed_walk;
} ob;

static void *owner_b_main(void *p)
{
	(void)p;
	tc_cache *c = ob.c;
	char v[1000];
	memset(v, 'b', sizeof(v));
	ob.sb = tc__slot(c);
	ob.rc_set = tc_set(c, "b0", 2, v, sizeof(v), 0, 0);
	ob.rc_del = tc_del(c, "b0", 2);
	/* Not UINT64_MAX: no steal of A's chain, only the list's one block. */
	ob.rc_reclaim = tc__reclaim_budget(c, ob.sb, &ob.freed_grace, 1000);
	sem_post(&ob.ready);
	sem_take(&ob.go);
	my_role = &ob.role;
	ob.freed_walk = tc__reclaim_step(c, ob.sb, UINT64_MAX);
	my_role = NULL;
	return NULL;
}

/*
 * Slot B's reclaim word scribbled to name the block X of slot A's pending
 * chain: both owners walk X, each with a bound above its stamp.  B is
 * paused between its check of X's state and its free; meanwhile A walks
 * its chain and a set of key k1 takes a block of X's class; then B goes
 * on, and a set of k2 takes a block of the class.  X must be freed once,
 * and k1 and k2 read back.  Before, the check was a load: A freed X too,
 * k1 took X, B freed it again (a plain store of FREE and a push), k2 took
 * X from its free list, and k1 read as a miss (-ENOENT: k2's key in its
 * block).
 */
static void test_two_walkers_of_one_block_free_it_once(void **state)
{
	(void)state;
	const char *name = fx_name(cur_name);
	tc_cache *c = wb_create(name, 1024, 1 << 20, 16, TC_EVICT_NONE);
	struct tc_rslot *sa = tc__slot(c);
	assert_non_null(sa);
	uint64_t x_ref = one_block_chain(c, sa, 'a');
	struct tc_entry *x = tc__block(c, x_ref);

	memset(&ob, 0, sizeof(ob));
	ob.c = c;
	role_init(&ob.role, "walk_checked");
	sem_init(&ob.ready, 0, 0);
	sem_init(&ob.go, 0, 0);
	pthread_t th;
	assert_int_equal(0, pthread_create(&th, NULL, owner_b_main, NULL));
	sem_take(&ob.ready);
	assert_non_null(ob.sb);
	ASSERT_RC(0, ob.rc_set);
	ASSERT_RC(0, ob.rc_del);
	ASSERT_RC(0, ob.rc_reclaim);
	assert_int_equal(1, ob.freed_grace);
	assert_true(tc__ld(&x->retire_epoch) < tc__ld(&ob.sb->rmin));

	/* The scribble: B's word names X (the plain form of some detach). */
	tc__st(&ob.sb->reclaim, 7ull << 32 | x_ref);
	sem_post(&ob.go);
	sem_take(&ob.role.paused);

	/* A walks its chain; k1 takes a block of X's class. */
	uint64_t freed_a = tc__reclaim_step(c, sa, UINT64_MAX);
	set_value(c, "k1", 'k');

	sem_post(&ob.role.go);
	assert_int_equal(0, pthread_join(th, NULL));

	set_value(c, "k2", 'z');
	assert_value(c, "k1", 'k');
	assert_value(c, "k2", 'z');
	assert_ptr_not_equal(block_of_key(c, "k1"), block_of_key(c, "k2"));
	assert_int_equal(1, freed_a + ob.freed_walk);
	assert_int_equal(0, tc__ld(&sa->reclaim));
	assert_int_equal(0, tc__ld(&ob.sb->reclaim));
	assert_int_equal(0, tc__retired_sum(c, TC_C_RETIRED_BLOCKS));
	(void)x;

	ASSERT_RC(0, tc_del(c, "k1", 2));
	ASSERT_RC(0, tc_del(c, "k2", 2));
	uint64_t freed;
	ASSERT_RC(0, tc_reclaim(c, &freed));
	assert_int_equal(0, tc__retired_sum(c, TC_C_RETIRED_BLOCKS));
	tc_audit_report ar;
	ASSERT_RC(0, tc_audit(c, &ar));
	assert_int_equal(0, ar.recovered);
	tc_close(c);
}

/* ---- a free slot's word: a stealer and the owner ------------------------- */

static struct {
	tc_cache *c;
	struct tc_rslot *skip;
	struct role role;
} st;

static void *stealer_main(void *p)
{
	(void)p;
	my_role = &st.role;
	/* The part of a reclaimer's steal_chains that walks the free slot: A's
	 * own slot is skipped, as a reclaimer skips its own. */
	steal_chains(st.c, st.skip);
	my_role = NULL;
	return NULL;
}

/*
 * A free slot's reclaim word scribbled to name the block X of slot A's
 * pending chain: a full reclaim's steal_chains walks it (bound 0: push X
 * back).  The stealer is paused between its check of X's state and its
 * push; meanwhile A walks its chain and a set of k1 takes a block of X's
 * class; then the stealer goes on.  No list may name k1's block.  Before,
 * A freed X too, k1 took X, and the stealer's push_retired put k1's block
 * on the retire list (its head named it), so that once k1 was deleted and
 * X pushed again, X was on the list twice (its link rewritten under the
 * first: a cycle, whatever followed it named by nothing), and two walkers
 * could hold one retirement of X, the way the test above frees it twice.
 */
static void test_a_stealer_never_pushes_back_a_block_that_was_freed(void **state)
{
	(void)state;
	const char *name = fx_name(cur_name);
	tc_cache *c = wb_create(name, 1024, 1 << 20, 16, TC_EVICT_NONE);
	struct tc_rslot *sa = tc__slot(c);
	assert_non_null(sa);
	uint64_t x_ref = one_block_chain(c, sa, 'a');
	struct tc_entry *x = tc__block(c, x_ref);

	struct tc_rslot *f = &c->slots[9];
	assert_int_equal(0, tc__ld(&f->owner));
	tc__st(&f->reclaim, 3ull << 32 | x_ref);

	st.c = c;
	st.skip = sa;
	role_init(&st.role, "walk_checked");
	pthread_t th;
	assert_int_equal(0, pthread_create(&th, NULL, stealer_main, NULL));
	sem_take(&st.role.paused);

	uint64_t freed_a = tc__reclaim_step(c, sa, UINT64_MAX);
	set_value(c, "k1", 'k');
	struct tc_entry *k1 = block_of_key(c, "k1");

	sem_post(&st.role.go);
	assert_int_equal(0, pthread_join(th, NULL));
	assert_int_equal(0, tc__ld(&f->reclaim));
	assert_int_equal(0, tc__ld(&sa->reclaim));
	/* No list but the index names k1's block; X is freed or retired,
	 * named by exactly one list. */
	uint64_t k1_ref = tc__ref_of(c, k1), on_list = 0, x_on_list = 0;
	for (uint64_t r = TC_RH_REF(tc__ld(&c->h->retire_head)), n = 0; r && n < 16; n++) {
		on_list += r == k1_ref;
		x_on_list += r == x_ref;
		r = tc__ld(&tc__block(c, r)->link);
	}
	assert_int_equal(0, on_list);
	assert_int_equal(TC_BLK_LIVE, tc__ld(&k1->state));
	assert_value(c, "k1", 'k');
	assert_int_equal(freed_a ? 0 : 1, x_on_list);
	assert_int_equal(freed_a ? TC_BLK_FREE : TC_BLK_RETIRED, tc__ld(&x->state));

	ASSERT_RC(0, tc_del(c, "k1", 2));
	uint64_t freed;
	ASSERT_RC(0, tc_reclaim(c, &freed));
	assert_int_equal(freed_a ? 1 : 2, freed);
	assert_int_equal(0, tc__retired_sum(c, TC_C_RETIRED_BLOCKS));
	tc_audit_report ar;
	ASSERT_RC(0, tc_audit(c, &ar));
	assert_int_equal(0, ar.recovered);
	tc_close(c);
}

/* ---- a block retired after the grace period of the chain it joins ------- */

static struct {
	tc_cache *c;
	sem_t inside, leave;
	int rc;
} rd;

/* A delete from a thread of its own: the main thread's writes would walk
 * its pending chain on the way (tc__maybe_reclaim). */
static char y_key[] = "y";

static void *deleter_main(void *p)
{
	rd.rc = tc_del(rd.c, p, strlen(p));
	return NULL;
}

static void *reader_main(void *p)
{
	(void)p;
	rd.rc = tc_read_lock(rd.c);
	sem_post(&rd.inside);
	sem_take(&rd.leave);
	if (rd.rc == 0)
		tc_read_unlock(rd.c);
	return NULL;
}

/*
 * Slot A's pending chain [A1] got its bound from a grace period that found
 * no reader.  Then a reader enters, key y is deleted (its block Y retired
 * with a stamp the reader's epoch does not exceed), and A1's link is
 * scribbled to name Y.  A's walk must not free Y while the reader is in
 * its section: the reader may hold Y.  Before, a bound found with no
 * reader active was UINT64_MAX, which frees any block "whatever its
 * stamp", so Y went on its free list under the reader.
 */
static void test_a_block_retired_after_the_grace_period_is_not_freed_by_it(void **state)
{
	(void)state;
	const char *name = fx_name(cur_name);
	tc_cache *c = wb_create(name, 1024, 1 << 20, 16, TC_EVICT_NONE);
	struct tc_rslot *sa = tc__slot(c);
	assert_non_null(sa);
	set_value(c, "y", 'y');
	struct tc_entry *y = block_of_key(c, "y");
	uint64_t a1_ref = one_block_chain(c, sa, 'a');
	struct tc_entry *a1 = tc__block(c, a1_ref);

	rd.c = c;
	sem_init(&rd.inside, 0, 0);
	sem_init(&rd.leave, 0, 0);
	pthread_t th;
	assert_int_equal(0, pthread_create(&th, NULL, reader_main, NULL));
	sem_take(&rd.inside);
	ASSERT_RC(0, rd.rc);
	rd.rc = -1;
	pthread_t dt;
	assert_int_equal(0, pthread_create(&dt, NULL, deleter_main, y_key));
	assert_int_equal(0, pthread_join(dt, NULL));
	ASSERT_RC(0, rd.rc);
	assert_int_equal(TC_BLK_RETIRED, tc__ld(&y->state));

	/* The scribble: A1's link names Y. */
	tc__st(&a1->link, tc__ref_of(c, y));
	assert_int_equal(1, tc__reclaim_step(c, sa, UINT64_MAX));
	assert_int_equal(TC_BLK_FREE, tc__ld(&a1->state));
	assert_int_equal(TC_BLK_RETIRED, tc__ld(&y->state));

	sem_post(&rd.leave);
	assert_int_equal(0, pthread_join(th, NULL));
	uint64_t freed;
	ASSERT_RC(0, tc_reclaim(c, &freed));
	assert_int_equal(1, freed);
	assert_int_equal(TC_BLK_FREE, tc__ld(&y->state));
	assert_int_equal(0, tc__retired_sum(c, TC_C_RETIRED_BLOCKS));
	tc_audit_report ar;
	ASSERT_RC(0, tc_audit(c, &ar));
	assert_int_equal(0, ar.recovered);
	tc_close(c);
}

/* ---- a block whose retirer has not stamped it yet ----------------------- */

static struct {
	tc_cache *c;
	struct role role;
	int rc;
} dl;

static void *deleter_paused_main(void *p)
{
	my_role = &dl.role;
	dl.rc = tc_del(dl.c, p, strlen(p));
	my_role = NULL;
	return NULL;
}

static char k_key[] = "k";

/*
 * Key k's block X is being retired: its deleter moved its state from LIVE
 * by CAS and is paused there (retire_marked), before it stamps X with the
 * epoch and pushes it.  A reader entered before the delete.  Slot A's
 * reclaim word is scribbled to name X, and A walks "its" chain with the
 * bound of its last grace period, which lies above X's stamp of its last
 * retirement.  A must not free X: X's new stamp is not written yet, and
 * the reader may hold X.  Before, the deleter's CAS made X RETIRED at once,
 * A claimed it and read the old stamp (freed 1, X on its free list under
 * the reader; the deleter then pushed a free block on the retire list).
 * Now the retirer's CAS makes X MOVING (claimed, as a walk claims a block)
 * and it stores RETIRED only after the stamp.
 */
static void test_a_walk_never_takes_a_block_before_its_retirer_stamps_it(void **state)
{
	(void)state;
	const char *name = fx_name(cur_name);
	tc_cache *c = wb_create(name, 1024, 1 << 20, 16, TC_EVICT_NONE);
	struct tc_rslot *sa = tc__slot(c);
	assert_non_null(sa);
	/* A grace period without readers: A's bound is the epoch it made. */
	wb_retire_n(c, 1, 'a');
	uint64_t freed = UINT64_MAX;
	ASSERT_RC(0, tc_reclaim(c, &freed));
	assert_int_equal(1, freed);
	set_value(c, "k", 'k'); /* takes the block just freed: its stamp is old */
	struct tc_entry *x = block_of_key(c, "k");
	uint64_t x_ref = tc__ref_of(c, x);
	assert_true(tc__ld(&x->retire_epoch) < tc__ld(&sa->rmin));

	rd.c = c;
	sem_init(&rd.inside, 0, 0);
	sem_init(&rd.leave, 0, 0);
	pthread_t rt, dt;
	assert_int_equal(0, pthread_create(&rt, NULL, reader_main, NULL));
	sem_take(&rd.inside);
	ASSERT_RC(0, rd.rc);

	dl.c = c;
	dl.rc = 99;
	role_init(&dl.role, "retire_marked");
	assert_int_equal(0, pthread_create(&dt, NULL, deleter_paused_main, k_key));
	sem_take(&dl.role.paused);

	/* The scribble: A's word names X. */
	tc__st(&sa->reclaim, 5ull << 32 | x_ref);
	assert_int_equal(0, tc__reclaim_step(c, sa, UINT64_MAX));
	assert_int_equal(0, tc__ld(&sa->reclaim));
	assert_true(tc__ld(&x->state) != TC_BLK_FREE);

	sem_post(&dl.role.go);
	assert_int_equal(0, pthread_join(dt, NULL));
	ASSERT_RC(0, dl.rc);
	assert_int_equal(TC_BLK_RETIRED, tc__ld(&x->state));
	sem_post(&rd.leave);
	assert_int_equal(0, pthread_join(rt, NULL));
	ASSERT_RC(0, tc_reclaim(c, &freed));
	assert_int_equal(1, freed);
	assert_int_equal(TC_BLK_FREE, tc__ld(&x->state));
	assert_int_equal(0, tc__retired_sum(c, TC_C_RETIRED_BLOCKS));
	tc_audit_report ar;
	ASSERT_RC(0, tc_audit(c, &ar));
	assert_int_equal(0, ar.recovered);
	tc_close(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		FX_TEST(test_two_walkers_of_one_block_free_it_once),
		FX_TEST(test_a_stealer_never_pushes_back_a_block_that_was_freed),
		FX_TEST(test_a_block_retired_after_the_grace_period_is_not_freed_by_it),
		FX_TEST(test_a_walk_never_takes_a_block_before_its_retirer_stamps_it),
	};
	return fx_run(tests);
}
