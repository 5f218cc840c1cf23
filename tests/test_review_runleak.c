/* SPDX-License-Identifier: MIT */
/*
 * test_review_runleak.c - a review's interleaving of the online recovery of
 * list elements (branch runleak): a cleaner judges a dead slot's in-flight
 * block (LIVE, built from the slot), asks whether it is published (for a
 * DTO list element: whether a head of its tag reaches it, a walk of the
 * list, tc__dto_reaches), then retires it.  The cleaner runs outside any
 * read section of its own.  Between its judgment and its retire, the list
 * may be unlinked by a live run sweep, its blocks freed by a grace period
 * and taken by a live writer: the retire then hits the new owner's block.
 *
 * This program carries its own copy of shm/recover.c, with the cleaner's
 * reach walk (tc__dto_reaches, still_published) routed through a hook, so
 * that the live steps run exactly inside the walk; the ordinary library
 * needs no hook.  Like test_review_liveness.c.
 */
#define tc__dto_reaches hooked_reaches
#include "recover.c"
#undef tc__dto_reaches
/* The real walk, runsweep.c's (from the static library). */
bool tc__dto_reaches(tc_cache *c, struct tc_entry *h, struct tc_entry *e);

#include "whitebox.h"

#include <pthread.h>
#include <sys/syscall.h>

/* What the hook runs once, inside the cleaner's walk. */
static void (*inside_walk)(tc_cache *c);

bool hooked_reaches(tc_cache *c, struct tc_entry *h, struct tc_entry *e)
{
	/* Atomic: a cleaner thread runs it (ThreadSanitizer builds). */
	void (*fn)(tc_cache *c) = __atomic_exchange_n(&inside_walk, NULL, __ATOMIC_ACQ_REL);
	if (fn)
		fn(c);
	return tc__dto_reaches(c, h, e);
}

/* The refs of the elements of the list at "k", head first (up to 4). */
static int list_refs(tc_cache *c, uint64_t refs[4])
{
	struct tc_entry *e = NULL;
	WB_EACH_SLOT(c, w) {
		struct tc_entry *h = tc__block(c, TC_SW_REF(w));
		if (h && tc__ld(&h->kind) == TC_KIND_DTO)
			e = h;
	}
	int n = 0;
	while (e && n < 4) {
		refs[n++] = tc__ref_of(c, e);
		uint64_t prev = TC_DTO_PREV(tc__ld(&e->version));
		e = prev ? tc__block(c, prev) : NULL;
	}
	return n;
}

/* A live run sweep and a live writer, while the cleaner walks: the run
 * ends, the sweep unlinks the list and retires its elements, a grace
 * period frees what it can, and a new run's list takes freed blocks. */
static void end_sweep_reuse(tc_cache *c)
{
	ASSERT_RC(0, tc_run_end(c));
	assert_int_equal(tc__sweep_runs(c, 0), 1);
	ASSERT_RC(0, tc_reclaim(c, NULL));
	ASSERT_RC(0, tc_run_start(c, 33, 44));
	ASSERT_RC(0, tc_dto_append(c, "k", 1, 7, "third", 5));
	ASSERT_RC(0, tc_dto_append(c, "k", 1, 7, "fourth", 6));
}

/*
 * A dead slot, outside any section, whose inflight names a published list
 * element that is no longer its list's head (that one word scribbled: the
 * case of test_a_dead_slot_never_retires_a_published_list_element).  The
 * cleaner finds it LIVE and built from the slot, and walks the list from
 * its head.  Inside that walk the run ends, a sweep unlinks the list (which
 * retires the element), a grace period frees the old elements (nobody
 * announces an epoch) and the next run's list takes their blocks.  The
 * walk then reaches nothing, and the cleaner retires "the element": the
 * block that is now the new list's element.  Its reclaim frees it under
 * the list, and the next writes overwrite it.
 */
static void reused_during_the_walk(uint64_t scribbled_epoch)
{
	char name[64];
	tc_cache *c = wb_create(fx_name(name), 1024, 256 * 1024, 8, TC_EVICT_NONE);
	ASSERT_RC(0, tc_run_start(c, 11, 22));
	struct tc_rslot *s = wb_slot_of(c, wb_die_holding_a_slot(name, wb_append_two));
	uint64_t old[4];
	assert_int_equal(list_refs(c, old), 2);
	struct tc_entry *first = tc__block(c, old[1]);
	assert_ptr_equal(s, &c->slots[tc__ld(&first->builder) - 1]);
	assert_int_equal(tc__ld(&s->epoch), 0);
	tc__st(&s->inflight, old[1]);
	if (scribbled_epoch)
		tc__st(&s->epoch, tc__ld(&c->h->epoch) + scribbled_epoch);
	inside_walk = end_sweep_reuse;
	uint32_t cleared = 99;
	ASSERT_RC(0, tc_readers_clean(c, &cleared));
	assert_null(inside_walk); /* the hook ran */
	assert_int_equal(cleared, 1);
	/* The new list's elements are still LIVE, whichever blocks they
	 * took. */
	uint64_t now[4];
	assert_int_equal(list_refs(c, now), 2);
	for (int i = 0; i < 2; i++) {
		struct tc_entry *e = tc__block(c, now[i]);
		assert_non_null(e);
		if (tc__ld(&e->state) != TC_BLK_LIVE)
			fail_msg("element %d of the new list (ref %llu; old elements %llu, %llu) "
				 "is in state %u: the cleaner retired it", i,
				 (unsigned long long)now[i], (unsigned long long)old[0],
				 (unsigned long long)old[1], (unsigned)tc__ld(&e->state));
	}
	/* And read back after whatever was freed is reused. */
	ASSERT_RC(0, tc_reclaim(c, NULL));
	for (int i = 0; i < 64; i++) {
		char k[4] = { 'q', (char)('a' + i % 26), 0, 0 };
		ASSERT_RC(0, tc_set(c, k, 2, "zzzzzz", 6, 0, 0));
		(void)tc_reclaim(c, NULL);
	}
	char got[32] = "";
	ASSERT_RC(0, tc_dto_each(c, "k", 1, 7, wb_collect_dto, got));
	assert_string_equal(got, "thirdfourth");
	/* The old elements were retired once, by the sweep, and freed:
	 * nothing for the audit to recover. */
	tc_audit_report ar;
	ASSERT_RC(0, tc_audit(c, &ar));
	assert_int_equal(ar.recovered, 0);
	tc_close(c);
	tc_unlink(name);
}

static void test_a_cleaner_never_retires_a_block_reused_during_its_walk(void **state)
{
	(void)state;
	reused_during_the_walk(0);
}

/*
 * The same, the dead slot's epoch scribbled above the global epoch: kept,
 * it held back no grace period (a reclaim's bound is never above the epoch
 * it advanced to), and the walk's list was freed and reused as above.
 */
static void test_a_dead_slots_epoch_above_the_epoch_holds_nothing_back(void **state)
{
	(void)state;
	reused_during_the_walk(1000);
}

/* The cleaner's thread vanishes inside its walk (a raw SYS_exit, as a
 * seccomp kill or another thread's execve would remove it). */
static void vanish(tc_cache *c)
{
	(void)c;
	syscall(SYS_exit, 0);
}

struct cleaner_thread {
	tc_cache *c;
	pid_t tid;
};

static void *clean_and_vanish(void *arg)
{
	struct cleaner_thread *t = arg;
	tc__st(&t->tid, (pid_t)gettid());
	__atomic_store_n(&inside_walk, vanish, __ATOMIC_RELEASE);
	(void)tc_readers_clean(t->c, NULL);
	return NULL; /* not reached */
}

/*
 * A thread of this process cleans a dead slot and vanishes after the
 * cleaner's hold (hold_section), inside the walk, as a raw SYS_exit
 * removes it.  The dead owner died outside any section, so the epoch in
 * the slot is the cleaner's.  The slot is "being cleaned" by a live
 * process: another process must not take it over, but the cleaner's own
 * process can tell that the thread is gone, and must, or the held epoch
 * pins every grace period for the life of the process (and the slot, its
 * names and its chain are lost with it).
 */
static void test_a_cleaner_thread_that_vanishes_mid_clean_pins_nothing(void **state)
{
	(void)state;
	char name[64];
	tc_cache *c = wb_create(fx_name(name), 1024, 256 * 1024, 8, TC_EVICT_NONE);
	ASSERT_RC(0, tc_run_start(c, 11, 22));
	struct tc_rslot *s = wb_slot_of(c, wb_die_holding_a_slot(name, wb_append_two));
	uint64_t old[4];
	assert_int_equal(list_refs(c, old), 2);
	assert_int_equal(tc__ld(&s->epoch), 0);
	tc__st(&s->inflight, old[1]); /* published, not the head: walked */
	struct cleaner_thread t = { c, 0 };
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, clean_and_vanish, &t), 0);
	char path[64] = "";
	for (int i = 0; i < 5000; i++) {
		pid_t tid = tc__ld(&t.tid);
		if (tid) {
			snprintf(path, sizeof(path), "/proc/self/task/%d", (int)tid);
			if (access(path, F_OK) == -1)
				break;
		}
		usleep(1000);
	}
	assert_int_equal(access(path, F_OK), -1);
	/* It vanished inside the walk. */
	assert_null(__atomic_load_n(&inside_walk, __ATOMIC_ACQUIRE));
	assert_int_equal(tc__ld(&s->owner) >> 32, (uint64_t)getpid());
	assert_true(tc__ld(&s->owner) & 0x80000000ull);
	assert_int_not_equal(tc__ld(&s->epoch), 0);
	/* Eight blocks retired after the vanished cleaner's hold. */
	wb_retire_n(c, 8, 'x');
	uint32_t cleared = 99;
	ASSERT_RC(0, tc_readers_clean(c, &cleared));
	if (tc__ld(&s->owner) != 0 || tc__ld(&s->epoch) != 0)
		fail_msg("the slot a vanished thread was cleaning stays claimed "
			 "(owner %#llx, epoch %llu; cleared %u)",
			 (unsigned long long)tc__ld(&s->owner),
			 (unsigned long long)tc__ld(&s->epoch), cleared);
	uint64_t freed = 0;
	ASSERT_RC(0, tc_reclaim(c, &freed));
	assert_int_equal(freed, 8);
	/* The list is whole: the takeover left the published element. */
	char got[32] = "";
	ASSERT_RC(0, tc_dto_each(c, "k", 1, 7, wb_collect_dto, got));
	assert_string_equal(got, "firstsecond");
	tc_close(c);
	tc_unlink(name);
}

#define LONG_LIST 4000

static int append_many(tc_cache *c)
{
	for (int i = 0; i < LONG_LIST; i++) {
		int rc = tc_dto_append(c, "k", 1, 7, "12345678", 8);
		if (rc)
			return rc;
	}
	return 0;
}

/*
 * An element the dead slot built and never published, its count one above
 * the head's (killed at dto_append_built): built here, from our own slot,
 * then handed to the dead one.
 */
static uint64_t build_unpublished(tc_cache *c, struct tc_rslot *dead, struct tc_entry *head)
{
	struct tc_rslot *me = tc__slot(c);
	int rc = 0;
	struct tc_entry *x = tc__alloc(c, me, tc__entry_need(c, 1, 8), &rc);
	assert_non_null(x);
	uint64_t n = TC_DTO_COUNT(tc__ld(&head->version));
	tc__fill_block(x, &(struct tc__bhdr){ .hash = tc__ld(&head->hash),
					      .version = (n + 1) << 32 | tc__ref_of(c, head),
					      .klen = 1, .vlen = 8, .type = 7,
					      .kind = TC_KIND_DTO, .aux = tc__ld(&head->aux) },
		       "k", "12345678");
	tc__st(&x->builder, (uint16_t)(dead - c->slots + 1));
	tc__st(&me->inflight, 0);
	return tc__ref_of(c, x);
}

/*
 * The cleaner walks a list, inside the section it holds in the dead slot,
 * to ask whether the slot's element is published.  The element's count
 * says where it stands: an element of count k is the list's element k, or
 * no element of the list (tc_dto_each and tc__dto_retire_chain stop where
 * a count does not fall by one).  A walk past it holds the section for the
 * length of the list: a list of 2,000,000 elements held it 30 ms, and a
 * writer short of memory (blocks retired after the hold) failed with
 * -ENOSPC after its 20 ms.  Here the elements below the dead slot's one are
 * made unreadable in this process's mapping: a walk that goes past the
 * element faults.  The element is the one below the head (published, met
 * at the first step), or one never published (no step).
 */
static void walk_stops_at_the_element(bool published)
{
	char name[64];
	tc_cache *c = wb_create(fx_name(name), 1024, 4 << 20, 8, TC_EVICT_NONE);
	ASSERT_RC(0, tc_run_start(c, 11, 22));
	struct tc_rslot *s = wb_slot_of(c, wb_die_holding_a_slot(name, append_many));
	/* The head, and the element below it. */
	uint64_t refs[4];
	assert_int_equal(list_refs(c, refs), 4);
	struct tc_entry *head = tc__block(c, refs[0]), *e = tc__block(c, refs[1]);
	assert_int_equal(TC_DTO_COUNT(tc__ld(&head->version)), LONG_LIST);
	assert_int_equal(TC_DTO_COUNT(tc__ld(&e->version)), LONG_LIST - 1);
	assert_ptr_equal(s, &c->slots[tc__ld(&e->builder) - 1]);
	struct tc_entry *x = published ? e : tc__block(c, build_unpublished(c, s, head));
	tc__st(&s->inflight, tc__ref_of(c, x));
	/* The pages wholly inside the older half of the list (the elements
	 * were carved one after the other, nothing between them). */
	uintptr_t lo = UINTPTR_MAX, hi = 0;
	struct tc_entry *p = e;
	for (int i = 1; i < LONG_LIST - 1; i++) {
		p = tc__block(c, TC_DTO_PREV(tc__ld(&p->version)));
		assert_non_null(p);
		if (TC_DTO_COUNT(tc__ld(&p->version)) > LONG_LIST / 2)
			continue;
		lo = (uintptr_t)p < lo ? (uintptr_t)p : lo;
		hi = (uintptr_t)p > hi ? (uintptr_t)p : hi;
	}
	uintptr_t pg = (uintptr_t)sysconf(_SC_PAGESIZE);
	uintptr_t from = (lo + pg - 1) & ~(pg - 1), to = hi & ~(pg - 1);
	assert_true(to > from);
	assert_true((uintptr_t)e > to + pg && (uintptr_t)head > to + pg &&
		    (uintptr_t)x > to + pg);
	assert_int_equal(mprotect((void *)from, to - from, PROT_NONE), 0);
	uint32_t cleared = 99;
	ASSERT_RC(0, tc_readers_clean(c, &cleared));
	assert_int_equal(mprotect((void *)from, to - from, PROT_READ | PROT_WRITE), 0);
	assert_int_equal(cleared, 1);
	/* Published: kept.  Never published: retired. */
	assert_int_equal(tc__ld(&x->state), published ? TC_BLK_LIVE : TC_BLK_RETIRED);
	assert_int_equal(tc__ld(&e->state), TC_BLK_LIVE);
	tc_audit_report ar;
	ASSERT_RC(0, tc_audit(c, &ar));
	assert_int_equal(ar.recovered, 0);
	tc_close(c);
	tc_unlink(name);
}

static void test_the_cleaners_walk_stops_at_the_element(void **state)
{
	(void)state;
	walk_stops_at_the_element(true);
}

static void test_the_cleaners_walk_of_an_unpublished_element_takes_no_step(void **state)
{
	(void)state;
	walk_stops_at_the_element(false);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		FX_TEST(test_a_cleaner_never_retires_a_block_reused_during_its_walk),
		FX_TEST(test_a_dead_slots_epoch_above_the_epoch_holds_nothing_back),
		FX_TEST(test_a_cleaner_thread_that_vanishes_mid_clean_pins_nothing),
		FX_TEST(test_the_cleaners_walk_stops_at_the_element),
		FX_TEST(test_the_cleaners_walk_of_an_unpublished_element_takes_no_step),
	};
	return fx_run(tests);
}
