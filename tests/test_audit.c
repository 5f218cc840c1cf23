/* SPDX-License-Identifier: MIT */
/*
 * test_audit.c - tc_audit (shm/audit.c): on a clean segment the report
 * says exactly what is there (its keys, no block recovered, nothing
 * skipped or cleared) and a second audit says the same; the live-key count
 * is recounted from the index; every carved block ends either reachable or
 * on a free list; the audit refuses a live attached peer (-EBUSY), a read
 * section (-EDEADLK) and a null handle (-EINVAL); an auditor killed half
 * way leaves a usable segment, and a dead audit's AUDITING is handled by
 * unlink and by a refused audit; an audit that cannot allocate its mark
 * bits (-ENOMEM) leaves READY and no auditor recorded; after every flow
 * that frees a block (no scribble, no kill) every carved byte is listed
 * again, and the audit recovers nothing; owner words of slots and attach
 * records that name a live process that never attached are freed, not
 * taken for a peer; the dead-slot cleaners (tc_readers_clean, tc_sweep)
 * running beside an audit's relink list and free nothing.  White-box (internal.h, layout.h) to
 * place a dead auditor's record and kill one half way.
 */
#include "whitebox.h"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

/* Keys k0..k<n-1> with values v<i>. */
static void set_keys(tc_cache *c, unsigned n)
{
	char k[16], v[16];

	for (unsigned i = 0; i < n; i++) {
		int kl = snprintf(k, sizeof(k), "k%u", i), vl = snprintf(v, sizeof(v), "v%u", i);
		ASSERT_RC(0, tc_set(c, k, (size_t)kl, v, (size_t)vl, 0, 0));
	}
}

/* Key k<i> holds v<i> when LIVE, else is absent. */
static void expect_key(tc_cache *c, unsigned i, bool live)
{
	char k[16], v[16], buf[16];
	tc_meta m;
	int kl = snprintf(k, sizeof(k), "k%u", i), vl = snprintf(v, sizeof(v), "v%u", i);

	if (!live) {
		ASSERT_RC(-ENOENT, tc_get(c, k, (size_t)kl, buf, sizeof(buf), &m));
		return;
	}
	ASSERT_RC(0, tc_get(c, k, (size_t)kl, buf, sizeof(buf), &m));
	assert_int_equal(m.len, (size_t)vl);
	assert_memory_equal(buf, v, (size_t)vl);
}

static void expect_clean_report(const tc_audit_report *r, int64_t keys)
{
	assert_int_equal(keys, r->live_before);
	assert_int_equal(keys, r->live_after);
	assert_int_equal(keys, r->live_blocks);
	assert_int_equal(0, r->recovered);
	assert_int_equal(0, r->recovered_bytes);
	assert_int_equal(0, r->tentative_cleared);
	assert_int_equal(0, r->skipped_bytes);
}

/*
 * Ten keys, three deleted and reclaimed: the audit finds exactly the seven
 * live keys, one block each, recovers nothing, and rebuilds the free lists
 * from every other block it walked; a second audit reports the same.
 */
static void test_audit_of_a_clean_segment_reports_exactly_its_keys(void **state)
{
	(void)state;
	char name[64];
	tc_cache *c = wb_create(fx_name(name), 1024, 1u << 20, 8, TC_EVICT_NONE);
	tc_audit_report rep, again;
	tc_stats st;

	set_keys(c, 10);
	for (unsigned i = 0; i < 3; i++) {
		char k[16];
		int kl = snprintf(k, sizeof(k), "k%u", i);
		ASSERT_RC(0, tc_del(c, k, (size_t)kl));
	}
	ASSERT_RC(0, tc_reclaim(c, NULL));
	memset(&rep, 0xA5, sizeof(rep));
	ASSERT_RC(0, tc_audit(c, &rep));
	expect_clean_report(&rep, 7);
	ASSERT_RC(0, tc_get_stats(c, &st));
	uint64_t used = 0, nfree = 0;
	for (uint32_t k = 0; k < st.nclasses; k++) {
		used += st.classes[k].used;
		nfree += st.classes[k].free;
	}
	assert_int_equal(rep.live_blocks, used);
	assert_int_equal(rep.blocks, used + nfree);
	assert_int_equal(7, st.entries);
	assert_int_equal(0, st.memory_retired);
	memset(&again, 0x5A, sizeof(again));
	ASSERT_RC(0, tc_audit(c, &again));
	assert_memory_equal(&rep, &again, sizeof(rep));
	for (unsigned i = 0; i < 10; i++)
		expect_key(c, i, i >= 3);
	ASSERT_RC(0, tc_audit(c, NULL)); /* the report is optional */
	tc_close(c);
}

/* A live-key count that drifted (as a writer killed in its window leaves
 * it) is recounted from the index: the report shows both. */
static void test_audit_recounts_a_drifted_live_count(void **state)
{
	(void)state;
	char name[64];
	tc_cache *c = wb_create(fx_name(name), 1024, 1u << 20, 8, TC_EVICT_NONE);
	tc_audit_report rep;
	tc_stats st;

	set_keys(c, 5);
	tc__st(&c->h->live, 6);
	ASSERT_RC(0, tc_get_stats(c, &st));
	assert_int_equal(6, st.entries);
	ASSERT_RC(0, tc_audit(c, &rep));
	assert_int_equal(6, rep.live_before);
	assert_int_equal(5, rep.live_after);
	assert_int_equal(5, rep.live_blocks);
	assert_int_equal(0, rep.recovered);
	ASSERT_RC(0, tc_get_stats(c, &st));
	assert_int_equal(5, st.entries);
	tc_close(c);
}

/* Another live process attached: -EBUSY, and nothing changed; once it has
 * closed and exited, the audit runs. */
static void test_audit_refuses_a_live_peer_then_runs(void **state)
{
	(void)state;
	char name[64], b = 0;
	tc_cache *c = wb_create(fx_name(name), 1024, 1u << 20, 8, TC_EVICT_NONE);
	tc_audit_report rep;
	int up[2], down[2];

	set_keys(c, 3);
	assert_int_equal(0, pipe(up));
	assert_int_equal(0, pipe(down));
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		tc_cache *d = fx_attach(name);
		close(up[0]);
		close(down[1]);
		FX_CHECK(write(up[1], "a", 1) == 1);
		FX_CHECK(read(down[0], &b, 1) == 1); /* attached until the parent says */
		tc_close(d);
		_exit(0);
	}
	close(up[1]);
	close(down[0]);
	assert_int_equal(1, read(up[0], &b, 1));
	ASSERT_RC(-EBUSY, tc_audit(c, &rep));
	assert_int_equal(TC_STATE_READY, tc__ld(&c->h->state));
	expect_key(c, 0, true);
	assert_int_equal(1, write(down[1], "g", 1));
	assert_int_equal(0, fx_wait(pid));
	close(up[0]);
	close(down[1]);
	ASSERT_RC(0, tc_audit(c, &rep));
	expect_clean_report(&rep, 3);
	tc_close(c);
}

static void test_audit_refuses_a_read_section_and_a_null_handle(void **state)
{
	(void)state;
	char name[64];
	tc_cache *c = wb_create(fx_name(name), 1024, 1u << 20, 8, TC_EVICT_NONE);
	tc_audit_report rep;

	ASSERT_RC(-EINVAL, tc_audit(NULL, &rep));
	ASSERT_RC(0, tc_read_lock(c));
	ASSERT_RC(-EDEADLK, tc_audit(c, &rep));
	tc_read_unlock(c);
	ASSERT_RC(0, tc_audit(c, &rep));
	expect_clean_report(&rep, 0);
	tc_close(c);
}

/* ------------------------------------------------------------------ */
/* An auditor killed half way                                           */
/* ------------------------------------------------------------------ */

static uint64_t audit_kill_at;

static void audit_die(uint64_t relinked)
{
	if (relinked == audit_kill_at)
		raise(SIGKILL);
}

/*
 * The auditor dies while it relinks free blocks (state AUDITING, lists half
 * rebuilt).  The next process to attach goes on: its calls see the auditor
 * dead, the state goes back to READY, every value is intact, writes find
 * memory, and a later audit puts everything right.
 */
static void test_killed_auditor_leaves_a_usable_segment(void **state)
{
	(void)state;
	char name[64], k[32], v[32], buf[64];
	tc_cache *c = wb_create(fx_name(name), 4096, 1u << 20, 8,
				TC_EVICT_NONE);
	for (unsigned i = 0; i < 2000; i++) {
		int kl = snprintf(k, sizeof(k), "k%u", i), vl = snprintf(v, sizeof(v), "v%u", i);
		ASSERT_RC(0, tc_set(c, k, (size_t)kl, v, (size_t)vl, 0, 0));
	}
	for (unsigned i = 0; i < 2000; i += 2) {
		int kl = snprintf(k, sizeof(k), "k%u", i);
		ASSERT_RC(0, tc_del(c, k, (size_t)kl));
	}
	ASSERT_RC(0, tc_reclaim(c, NULL));
	tc_close(c);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		tc_cache *d = NULL;
		if (tc_open(&d, name, NULL) != 0)
			_exit(2);
		audit_kill_at = 300;
		tc__audit_test_hook = audit_die;
		tc_audit_report rep;
		int rc = tc_audit(d, &rep);
		fprintf(stderr, "audit was not killed: %s\n", tc_strerror(rc));
		_exit(1);
	}
	int st = 0;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
	c = NULL;
	ASSERT_RC(0, tc_open(&c, name, NULL));
	assert_int_equal(tc__ld(&c->h->state), TC_STATE_AUDITING);
	for (unsigned i = 0; i < 2000; i++) {
		tc_meta m;
		int kl = snprintf(k, sizeof(k), "k%u", i), vl = snprintf(v, sizeof(v), "v%u", i);
		int rc = tc_get(c, k, (size_t)kl, buf, sizeof(buf), &m);
		if (i % 2 == 0) {
			ASSERT_RC(-ENOENT, rc);
		} else {
			ASSERT_RC(0, rc);
			assert_int_equal(m.len, (size_t)vl);
			assert_memory_equal(buf, v, (size_t)vl);
		}
	}
	assert_int_equal(tc__ld(&c->h->state), TC_STATE_READY);
	/* Writes find memory again (blocks the audit had relinked included). */
	for (unsigned i = 0; i < 2000; i += 2) {
		int kl = snprintf(k, sizeof(k), "k%u", i), vl = snprintf(v, sizeof(v), "w%u", i);
		ASSERT_RC(0, tc_set(c, k, (size_t)kl, v, (size_t)vl, 0, 0));
	}
	tc_audit_report rep;
	ASSERT_RC(0, tc_audit(c, &rep));
	assert_int_equal(rep.live_after, 2000);
	for (unsigned i = 0; i < 2000; i++) {
		int kl = snprintf(k, sizeof(k), "k%u", i);
		ASSERT_RC(0, tc_del(c, k, (size_t)kl));
	}
	ASSERT_RC(0, tc_reclaim(c, NULL));
	ASSERT_RC(0, tc_audit(c, &rep));
	assert_int_equal(rep.recovered, 0);
	tc_stats stt;
	ASSERT_RC(0, tc_get_stats(c, &stt));
	assert_int_equal(stt.entries, 0);
	assert_int_equal(stt.memory_used, 0);
	tc_close(c);
	tc_unlink(name);
}

/* A pid that no process has: a child that has exited and been reaped. */
static pid_t dead_pid(void)
{
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(0);
	assert_int_equal(waitpid(pid, NULL, 0), pid);
	return pid;
}

/* A fresh segment NAME holding "k" = "v". */
static tc_cache *one_key_segment(const char *name)
{
	tc_cache *c = wb_create(name, 1024, 1u << 20, 8, TC_EVICT_NONE);
	ASSERT_RC(0, tc_set(c, "k", 1, "v", 1, 0, 0));
	return c;
}

/* Unlinking a segment whose (dead) audit left AUDITING still tells every
 * attached handle that it is gone. */
static void test_unlink_over_a_dead_audit_is_seen(void **state)
{
	(void)state;
	char name[64], buf[8];
	tc_cache *c = one_key_segment(fx_name(name));
	tc__st(&c->h->audit_pid, (uint64_t)dead_pid());
	tc__st(&c->h->audit_start, 0);
	tc__st(&c->h->state, TC_STATE_AUDITING);
	ASSERT_RC(0, tc_unlink(name));
	assert_int_equal(tc__ld(&c->h->state), TC_STATE_UNLINKED);
	ASSERT_RC(-ESTALE, tc_get(c, "k", 1, buf, sizeof(buf), NULL));
	tc_close(c);
}

/*
 * A live process that never attached: a child forked before the segment
 * existed, with a second thread, so that a slot naming it passes every
 * liveness check that does not read its maps (a leader's slot is judged by
 * them too).  Its pid and that thread's tid come back through FDS.
 */
static void *sleeping_thread(void *p)
{
	int fd = *(int *)p;
	pid_t tid = gettid();
	(void)!write(fd, &tid, sizeof(tid));
	for (;;)
		pause();
	return NULL;
}

static pid_t unattached_process(pid_t *tid)
{
	int fds[2];
	assert_int_equal(0, pipe(fds));
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		pthread_t th;
		if (pthread_create(&th, NULL, sleeping_thread, &fds[1]) != 0)
			_exit(2);
		for (;;)
			pause();
	}
	assert_int_equal(read(fds[0], tid, sizeof(*tid)), (ssize_t)sizeof(*tid));
	close(fds[0]);
	close(fds[1]);
	return pid;
}

/*
 * One scribbled owner word of a free slot naming a live thread of a
 * process that is not attached is no slot's: nothing online can tell it
 * from a live owner, so no cleaner frees it, and before the fix tc_audit
 * refused for ever (-EBUSY), on an idle segment.  ("Being cleaned" by such
 * a process is taken over online: a cleaner maps the segment it cleans,
 * test_a_slot_being_cleaned_by_a_kernel_thread_is_taken_over.)  Under its flock, with no other
 * process's attach record left, the audit frees a slot of another process
 * that carries no owner's record (a claimer writes start time, address and
 * handle right after its claim, and a claimer is attached); with its epoch
 * scribbled too, that slot had pinned every grace period.  An attach
 * record of another pid with start time 0 is no attacher's either (an
 * attacher writes it under the flock): scribbled to pid 1, whose maps a
 * container's root cannot read, it refused every audit too.
 */
static void test_audit_frees_owner_words_that_name_unattached_processes(void **state)
{
	(void)state;
	char name[64];
	pid_t tid = 0, pid = unattached_process(&tid);
	assert_int_not_equal(tid, pid);
	tc_cache *c = one_key_segment(fx_name(name));
	struct tc_rslot *a = &c->slots[3], *b = &c->slots[4];
	assert_int_equal(tc__ld(&a->owner), 0);
	assert_int_equal(tc__ld(&b->owner), 0);
	tc__st(&a->owner, (uint64_t)pid << 32 | (uint32_t)tid);
	tc__st(&a->epoch, tc__ld(&c->h->epoch)); /* a second word: pins reclaim */
	tc__st(&b->owner, (uint64_t)pid << 32 | 0x80000000u);
	/* pid 1 when its maps cannot be read (a container): alive, attached? */
	FILE *f = fopen("/proc/1/maps", "re");
	bool pid1 = f == NULL;
	if (f)
		fclose(f);
	if (pid1)
		tc__st(&c->attach[5].pid, 1);
	else
		print_message("/proc/1/maps is readable here: no attach record of pid 1\n");
	uint32_t cleared = 99;
	ASSERT_RC(0, tc_readers_clean(c, &cleared));
	assert_int_equal(cleared, 1); /* online: a reads as live; b's cleaner maps nothing */
	assert_int_equal(tc__ld(&b->owner), 0);
	ASSERT_RC(0, tc_set(c, "k", 1, "w", 1, 0, 0));
	uint64_t freed = 99;
	ASSERT_RC(0, tc_reclaim(c, &freed));
	assert_int_equal(freed, 0); /* pinned by the slot's epoch */
	tc_audit_report rep;
	int rc = tc_audit(c, &rep);
	kill(pid, SIGKILL);
	assert_int_equal(waitpid(pid, NULL, 0), pid);
	ASSERT_RC(0, rc);
	assert_int_equal(tc__ld(&a->owner), 0);
	assert_int_equal(tc__ld(&a->epoch), 0);
	assert_int_equal(tc__ld(&b->owner), 0);
	assert_int_equal(tc__ld(&c->attach[5].pid), 0);
	assert_int_equal(tc__retired_sum(c, TC_C_RETIRED_BLOCKS), 0);
	char buf[8];
	tc_meta m;
	ASSERT_RC(0, tc_get(c, "k", 1, buf, sizeof(buf), &m));
	assert_int_equal(m.len, 1);
	assert_int_equal(buf[0], 'w');
	ASSERT_RC(0, tc_audit(c, &rep));
	tc_close(c);
	tc_unlink(name);
}

/*
 * An attach record with start time 0 is freed by the audit as no
 * attacher's (an attacher writes its start time under the flock the audit
 * holds) -- but a live attacher whose own /proc/self/stat cannot be read (a
 * chroot or a sandbox without /proc, sharing the auditor's pid namespace
 * as section 9 requires) writes 0 too.  Its record must keep the audit
 * from running: its /proc/PID/maps, which the auditor can read, shows the
 * segment.  Before, the audit freed the record and ran (0) with that
 * process attached and idle, whose tc_reclaim would then free blocks into
 * the lists being rebuilt, and every later audit ran as if it were gone.
 * The child plays that attacher: its record's start time is set to 0.
 */
static void test_audit_keeps_an_attacher_whose_start_time_reads_0(void **state)
{
	(void)state;
	char name[64];
	int up[2], down[2];
	tc_cache *c = one_key_segment(fx_name(name));
	assert_int_equal(0, pipe(up));
	assert_int_equal(0, pipe(down));
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		tc_cache *d = NULL;
		char b = 'a';
		close(up[0]);
		close(down[1]);
		if (tc_open(&d, name, NULL) != 0)
			_exit(2);
		if (write(up[1], &b, 1) != 1)
			_exit(3);
		(void)!read(down[0], &b, 1); /* attached, idle, until the parent says */
		tc_close(d);
		_exit(0);
	}
	close(up[1]);
	close(down[0]);
	char b;
	assert_int_equal(1, read(up[0], &b, 1));
	close(up[0]);
	uint32_t rec = UINT32_MAX;
	for (uint32_t i = 0; i < c->max_attach; i++)
		if (tc__ld(&c->attach[i].pid) == (uint64_t)pid)
			rec = i;
	assert_int_not_equal(rec, UINT32_MAX);
	tc__st(&c->attach[rec].start, 0); /* what an attacher without /proc writes */
	tc_audit_report rep;
	int rc = tc_audit(c, &rep);
	uint64_t kept = tc__ld(&c->attach[rec].pid);
	close(down[1]);
	assert_int_equal(0, fx_wait(pid));
	ASSERT_RC(-EBUSY, rc);
	assert_int_equal(kept, (uint64_t)pid);
	ASSERT_RC(0, tc_audit(c, &rep)); /* the child closed its handle */
	tc_close(c);
	tc_unlink(name);
}

/*
 * While an audit rebuilds the lists, a thread of the auditor's own process
 * that claims a slot after the audit's checks (nobody else may attach)
 * must not free blocks into them: its data calls get -EBUSY, and so must
 * tc_reclaim, which enters no section.  Before, it ran (0), detached the
 * retire list and freed its blocks while the audit walked the arena.  The
 * audit's allocation of its mark bits (a hook) is where the other thread
 * runs: the state is AUDITING by then.
 */
static tc_cache *during_c;
static int during_rc = 99;
static uint64_t during_freed = 99;

static void *reclaim_thread(void *p)
{
	(void)p;
	during_rc = tc_reclaim(during_c, &during_freed);
	return NULL;
}

static void *calloc_with_a_reclaim(size_t n, size_t size)
{
	pthread_t th;
	if (pthread_create(&th, NULL, reclaim_thread, NULL) == 0)
		pthread_join(th, NULL);
	return calloc(n, size);
}

static void test_reclaim_during_an_audit_is_refused(void **state)
{
	(void)state;
	char name[64];
	tc_cache *c = one_key_segment(fx_name(name));
	for (int i = 0; i < 8; i++)
		ASSERT_RC(0, tc_set(c, "k", 1, "w", 1, 0, 0)); /* 8 retired blocks */
	assert_int_equal(tc__retired_sum(c, TC_C_RETIRED_BLOCKS), 8);
	during_c = c;
	tc__audit_calloc = calloc_with_a_reclaim;
	tc_audit_report rep;
	int rc = tc_audit(c, &rep);
	tc__audit_calloc = calloc;
	ASSERT_RC(0, rc);
	assert_int_equal(during_freed, 0);
	ASSERT_RC(-EBUSY, during_rc);
	assert_int_equal(tc__retired_sum(c, TC_C_RETIRED_BLOCKS), 0); /* the audit's reclaim */
	assert_int_equal(rep.recovered, 0);
	ASSERT_RC(0, tc_audit(c, &rep));
	assert_int_equal(rep.recovered, 0);
	tc_close(c);
	tc_unlink(name);
}

/*
 * The dead-slot cleaners beside an audit that is relinking free blocks
 * (its relink hook: the state is AUDITING, the lists half rebuilt).  A
 * child the auditor forks claims a slot through the inherited handle after
 * the audit's checks (its tc_get gets -EBUSY) and exits, so that its slot
 * is a dead owner's (a thread that vanishes by a raw SYS_exit leaves one
 * too, but ThreadSanitizer waits for ever to join it); then a thread of
 * the auditor runs tc_readers_clean, which clears that slot, and tc_sweep
 * clears what it finds before its expiry pass is refused (-EBUSY).  Neither
 * may list, free or retire a block: what a cleaner acts on (an epoch, an
 * in-flight block, an unlink, a pending chain, a dead coalescer's turn)
 * belongs to a slot that was owned at the audit's checks, which then
 * refuse, or was recovered by the audit before them; a slot claimed since
 * can name nothing, since its thread enters no section.  After it, every
 * key reads back and a second audit recovers nothing and lists the same
 * free blocks.
 */
static struct {
	tc_cache *c;
	int get_rc, clean_rc, sweep_rc, hooked;
	uint32_t cleared;
} beside;

/* The child's tc_get: its code as the exit status (-EBUSY, 16, expected). */
static void vanishing_getter(void)
{
	pid_t pid = fork();
	if (pid == 0) {
		char buf[8];
		_exit(-tc_get(beside.c, "k0", 2, buf, sizeof(buf), NULL) & 0xff);
	}
	beside.get_rc = pid > 0 ? -fx_wait(pid) : 99;
}

static void *cleaner(void *p)
{
	(void)p;
	tc_sweep_report rep;
	beside.clean_rc = tc_readers_clean(beside.c, &beside.cleared);
	beside.sweep_rc = tc_sweep(beside.c, 0, &rep);
	return NULL;
}

static void cleaners_beside_the_relink(uint64_t relinked)
{
	(void)relinked;
	if (beside.hooked++)
		return;
	vanishing_getter();
	pthread_t th;
	if (pthread_create(&th, NULL, cleaner, NULL) == 0)
		pthread_join(th, NULL);
}

static void test_cleaners_beside_an_audit_change_no_list(void **state)
{
	(void)state;
	char name[64];
	tc_cache *c = wb_create(fx_name(name), 1024, 1u << 20, 8, TC_EVICT_NONE);
	set_keys(c, 20);
	for (unsigned i = 10; i < 20; i++) {
		char k[16];
		int kl = snprintf(k, sizeof(k), "k%u", i);
		ASSERT_RC(0, tc_del(c, k, (size_t)kl));
	}
	set_keys(c, 5); /* 5 more retired: replaced values */
	memset(&beside, 0, sizeof(beside));
	beside.get_rc = beside.clean_rc = beside.sweep_rc = 99;
	beside.c = c;
	tc__audit_test_hook = cleaners_beside_the_relink;
	tc_audit_report rep, rep2;
	int rc = tc_audit(c, &rep);
	tc__audit_test_hook = NULL;
	ASSERT_RC(0, rc);
	assert_int_equal(1, beside.hooked > 0);
	ASSERT_RC(-EBUSY, beside.get_rc);
	ASSERT_RC(0, beside.clean_rc);
	assert_int_equal(1, beside.cleared);
	ASSERT_RC(-EBUSY, beside.sweep_rc);
	expect_clean_report(&rep, 10);
	uint64_t nfree[TC_CLASSES_USED];
	for (uint32_t k = 0; k < TC_CLASSES_USED; k++)
		nfree[k] = tc__ld(&c->h->cls[k].nfree);
	for (unsigned i = 0; i < 20; i++)
		expect_key(c, i, i < 10);
	ASSERT_RC(0, tc_audit(c, &rep2));
	expect_clean_report(&rep2, 10);
	assert_int_equal(rep.blocks, rep2.blocks);
	for (uint32_t k = 0; k < TC_CLASSES_USED; k++)
		assert_int_equal(nfree[k], tc__ld(&c->h->cls[k].nfree));
	tc_close(c);
	tc_unlink(name);
}

/* An audit refused over a dead one's AUDITING never leaves AUDITING with
 * its own live pid behind (which would block everyone). */
static void test_refused_audit_over_a_dead_one_leaves_ready(void **state)
{
	(void)state;
	char name[64], buf[8];
	int fds[2];
	tc_cache *c = one_key_segment(fx_name(name));
	assert_int_equal(0, pipe(fds));
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		tc_cache *d = NULL;
		char b;
		close(fds[1]);
		if (tc_open(&d, name, NULL) != 0)
			_exit(2);
		(void)!read(fds[0], &b, 1); /* attached until the parent says */
		tc_close(d);
		_exit(0);
	}
	close(fds[0]);
	for (int i = 0; i < 400; i++) { /* until the child is attached */
		tc_stats st;
		ASSERT_RC(0, tc_get_stats(c, &st));
		if (st.attached == 2)
			break;
		usleep(5000);
	}
	tc__st(&c->h->audit_pid, (uint64_t)dead_pid());
	tc__st(&c->h->audit_start, 0);
	tc__st(&c->h->state, TC_STATE_AUDITING);
	tc_audit_report rep;
	ASSERT_RC(-EBUSY, tc_audit(c, &rep)); /* the child is attached */
	/* Refused before it changed anything: the dead auditor's record
	 * stays, and the next call sees it dead. */
	assert_int_not_equal(tc__ld(&c->h->audit_pid), (uint64_t)getpid());
	ASSERT_RC(0, tc_get(c, "k", 1, buf, sizeof(buf), NULL));
	assert_int_equal(tc__ld(&c->h->state), TC_STATE_READY);
	close(fds[1]);
	assert_int_equal(waitpid(pid, NULL, 0), pid);
	tc_close(c);
	tc_unlink(name);
}

static void *no_memory(size_t n, size_t size)
{
	(void)n;
	(void)size;
	errno = ENOMEM;
	return NULL;
}

/* An audit whose mark bits cannot be allocated changes nothing: the state
 * is READY again, no auditor is recorded, every call works, and the next
 * audit (with memory) runs. */
static void test_audit_out_of_memory_leaves_ready(void **state)
{
	(void)state;
	char name[64], buf[8];
	tc_cache *c = one_key_segment(fx_name(name));
	tc_audit_report rep;
	tc__audit_calloc = no_memory;
	int rc = tc_audit(c, &rep);
	tc__audit_calloc = calloc;
	ASSERT_RC(-ENOMEM, rc);
	assert_int_equal(tc__ld(&c->h->state), TC_STATE_READY);
	assert_int_equal(tc__ld(&c->h->audit_pid), 0);
	ASSERT_RC(0, tc_get(c, "k", 1, buf, sizeof(buf), NULL));
	assert_memory_equal(buf, "v", 1);
	ASSERT_RC(0, tc_set(c, "k2", 2, "w", 1, 0, 0));
	ASSERT_RC(0, tc_audit(c, &rep));
	assert_int_equal(rep.live_after, 2);
	assert_int_equal(tc__ld(&c->h->state), TC_STATE_READY);
	tc_close(c);
	tc_unlink(name);
}

/* ---- no leak without a scribble ----------------------------------------- */

static uint64_t lk_rand(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

static int lk_load(const void *key, size_t klen, void *buf, size_t cap, size_t *len, void *arg)
{
	(void)key;
	(void)klen;
	(void)arg;
	*len = cap < 40 ? cap : 40;
	memset(buf, 'L', *len);
	return 0;
}

/*
 * Every flow that frees a block, with no scribble and no kill: sets of
 * shifting sizes (carves, pops, coalescing; under LRU evictions and the
 * coalescer's evicted windows), deletes, adds, CAS, counters, expiry, rate
 * windows, load claims, DTO lists of runs started and ended, TTL policy
 * tables, a snapshot saved and loaded back; then everything is deleted
 * and reclaimed.  Each freed block must agree with its class check copy
 * (cls_check, alloc.c's tc__free_block leaks one that does not): before
 * any audit, every carved byte is on a free list and no class counts a
 * block in use, and the audit then finds nothing to recover or re-cut.
 * With and without LRU and checksums.
 */
static void test_every_freed_block_is_listed_again(void **state)
{
	(void)state;
	static const size_t sizes[] = { 8, 40, 100, 300, 900, 2000, 5000, 12000 };
	static const unsigned phase[] = { 0, 5, 2, 4 }; /* the first size of each quarter */
	static unsigned char val[12000];
	memset(val, 'v', sizeof(val));
	for (int mode = 0; mode < 4; mode++) {
		char name[64], path[160], k[32];
		tc_opts o = wb_opts(2048, 1u << 20, 8, mode & 1 ? TC_EVICT_LRU : TC_EVICT_NONE);
		if (mode & 2)
			o.flags |= TC_CHECKSUM;
		tc_cache *c = NULL;
		(void)tc_unlink(fx_name(name));
		snprintf(path, sizeof(path), "/tmp/%s.%d.snap", name, (int)getpid());
		ASSERT_RC(0, tc_open(&c, name, &o));
		uint64_t x = 0x9e3779b97f4a7c15ull + (uint64_t)mode;
		for (unsigned op = 0; op < 12000; op++) {
			uint64_t r = lk_rand(&x);
			int kl = snprintf(k, sizeof(k), "k%u", (unsigned)(r % 400));
			/* The sizes shift every 3000 operations: coalescing. */
			size_t len = sizes[(r >> 20) % 3 + phase[op / 3000]];
			int rc = 0;
			switch ((r >> 8) % 12) {
			case 0: case 1: case 2: case 3:
				rc = tc_set(c, k, (size_t)kl, val, len, 0, 0);
				break;
			case 4:
				rc = tc_add(c, k, (size_t)kl, val, len, 0, 0);
				rc = rc == -EEXIST ? 0 : rc;
				break;
			case 5: case 6:
				rc = tc_del(c, k, (size_t)kl);
				rc = rc == -ENOENT ? 0 : rc;
				break;
			case 7:
				rc = tc_incr(c, "ctr", 3, 1, 0, NULL);
				break;
			case 8: {
				bool ok;
				rc = tc_rate_limit(c, "rl", 2, 100, 1, &ok, NULL);
				break;
			}
			case 9: {
				char buf[64];
				kl = snprintf(k, sizeof(k), "ld%u", (unsigned)(r % 50));
				rc = tc_get_or_load(c, k, (size_t)kl, buf, sizeof(buf), NULL, 0, 0, 0,
						    lk_load, NULL);
				break;
			}
			case 10:
				if (op % 40 == 10) {
					rc = tc_run_start(c, (int64_t)op, op);
					rc = rc == -EBUSY ? 0 : rc; /* a run is active */
				}
				else if (op % 40 == 30) {
					rc = tc_run_end(c);
				} else {
					kl = snprintf(k, sizeof(k), "d%u", (unsigned)(r % 8));
					rc = tc_dto_append(c, k, (size_t)kl, 1, val, len % 700);
				}
				rc = rc == TC_ENORUN ? 0 : rc;
				break;
			default:
				if (op % 500 == 11)
					rc = tc_ttl_policy_set(c, "k1", 60000 + op);
				else if (op % 500 == 261)
					rc = tc_ttl_policy_del(c, "k1");
				else
					rc = tc_expire(c, k, (size_t)kl, 1);
				rc = rc == -ENOENT ? 0 : rc;
				break;
			}
			if (rc == -ENOSPC && !(mode & 1))
				rc = 0; /* without LRU a full arena refuses */
			ASSERT_RC(0, rc);
			if (op == 6000) {
				tc_snapshot_report sr;
				ASSERT_RC(0, tc_snapshot_save(c, path, &sr));
				ASSERT_RC(0, tc_purge(c, NULL, NULL));
				ASSERT_RC(0, tc_snapshot_load(c, path, 0, &sr));
				unlink(path);
			}
		}
		tc_stats st;
		ASSERT_RC(0, tc_get_stats(c, &st));
		assert_true(st.merges > 0);
		assert_true(mode & 1 ? st.evictions > 0 : st.evictions == 0);
		int rc = tc_run_end(c);
		assert_true(rc == 0 || rc == TC_ENORUN);
		rc = tc_ttl_policy_del(c, "k1");
		assert_true(rc == 0 || rc == -ENOENT);
		ASSERT_RC(0, tc_purge(c, NULL, NULL));
		usleep(20 * 1000); /* the rate window (1 ms) and the 1 ms expiries run out */
		ASSERT_RC(0, tc_sweep(c, 0, NULL));
		ASSERT_RC(0, tc_reclaim(c, NULL));
		uint64_t listed = 0;
		for (uint32_t cl = 0; cl < TC_CLASSES_USED; cl++) {
			assert_int_equal(tc__ld(&c->h->cls[cl].used), 0);
			listed += tc__ld(&c->h->cls[cl].nfree) * tc__class_size(cl);
		}
		assert_int_equal(listed, tc__carved(c) * TC_BLOCK_UNIT);
		tc_audit_report rep;
		ASSERT_RC(0, tc_audit(c, &rep));
		assert_int_equal(rep.live_after, 0);
		assert_int_equal(rep.live_blocks, 0);
		assert_int_equal(rep.recovered, 0);
		assert_int_equal(rep.skipped_bytes, 0);
		tc_close(c);
		tc_unlink(name);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		FX_TEST(test_audit_of_a_clean_segment_reports_exactly_its_keys),
		FX_TEST(test_audit_recounts_a_drifted_live_count),
		FX_TEST(test_audit_refuses_a_live_peer_then_runs),
		FX_TEST(test_audit_refuses_a_read_section_and_a_null_handle),
		FX_TEST(test_killed_auditor_leaves_a_usable_segment),
		FX_TEST(test_unlink_over_a_dead_audit_is_seen),
		FX_TEST(test_refused_audit_over_a_dead_one_leaves_ready),
		FX_TEST(test_audit_frees_owner_words_that_name_unattached_processes),
		FX_TEST(test_audit_keeps_an_attacher_whose_start_time_reads_0),
		FX_TEST(test_audit_out_of_memory_leaves_ready),
		FX_TEST(test_reclaim_during_an_audit_is_refused),
		FX_TEST(test_cleaners_beside_an_audit_change_no_list),
		FX_TEST(test_every_freed_block_is_listed_again),
	};
	return fx_run(tests);
}
