/* SPDX-License-Identifier: MIT */
/*
 * test_liveness.c - reader slots of threads that vanish, reclaimers that
 * did not register for membarrier, openers that meet a stopped peer, and
 * calls inside a section of an unlinked segment (issue 8, defects 1 and 2
 * and the flock and -ESTALE items).
 *
 * - A process started with TICKCACHE_NO_MEMBARRIER=1 still issues
 *   MEMBARRIER_CMD_GLOBAL_EXPEDITED for every grace period (white-box: the
 *   count of issued barriers), and readers of a registered process read
 *   self-checking values while it rewrites and reclaims them.
 * - A thread inside a read section that vanishes without giving its slot
 *   back (raw SYS_exit; removed by another thread's execve, as a non-leader
 *   and as the leader) is seen dead, its slot is cleared by tc_sweep /
 *   tc_readers_clean, and writers go on: 1,000 updates of one 2 KiB key in
 *   a 256 KiB segment all succeed (before: -ENOSPC after ~100).  A thread
 *   that calls pthread_exit inside a section gives its slot back.
 * - tc_open and tc_audit wait a bounded time for a peer SIGSTOPped while
 *   holding the segment's flock: -ETIMEDOUT.
 * - Inside a section opened before tc_unlink, tc_get and tc_set get -ESTALE.
 */
#include "whitebox.h"

#include <fcntl.h>
#include <linux/membarrier.h>
#include <pthread.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>

static const char *self_exe = "/proc/self/exe";

/* What a failed test leaves behind, removed by its teardown. */
static char cur_name[64];
static pid_t cur_child;

static int teardown(void **state)
{
	(void)state;
	if (cur_child > 0) {
		int st;
		kill(cur_child, SIGKILL);
		waitpid(cur_child, &st, 0);
	}
	cur_child = 0;
	if (cur_name[0])
		(void)tc_unlink(cur_name);
	cur_name[0] = '\0';
	unsetenv("TICKCACHE_LOCK_WAIT_MS");
	return 0;
}

/* fork() for a child that dies with this process (also after its execve). */
static pid_t fork_child(void)
{
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(96);
	} else if (pid > 0) {
		cur_child = pid;
	}
	return pid;
}

/* Wait for the child to end; it is no longer the teardown's to kill. */
static void reap(pid_t pid, int *st)
{
	assert_int_equal(pid, waitpid(pid, st, 0));
	cur_child = 0;
}

static const char *new_name(const char *tag)
{
	return wb_name(cur_name, sizeof(cur_name), tag);
}

/* ------------------------------------------------------------------ */
/* Defect 1: a reclaimer without membarrier registration                */
/* ------------------------------------------------------------------ */

#define MB_KEYS 8
#define MB_WORDS 64 /* 512-byte values */

static void mb_value(uint64_t *v, uint64_t key, uint64_t seq)
{
	v[0] = key;
	v[1] = seq;
	for (int i = 2; i < MB_WORDS; i++)
		v[i] = (key * 0x9e3779b97f4a7c15ull) ^ (seq * 0xbf58476d1ce4e5b9ull) ^ (uint64_t)i;
}

static bool mb_check(const uint64_t *v, uint64_t key)
{
	uint64_t want[MB_WORDS];
	if (v[0] != key)
		return false;
	mb_value(want, key, v[1]);
	return memcmp(v, want, sizeof(want)) == 0;
}

/*
 * The re-executed reclaimer (TICKCACHE_NO_MEMBARRIER=1 in its
 * environment).  Exit status: 0; 10 its readers were not told to fence;
 * 11 a grace period issued no global barrier; 12 a write failed.
 */
static int nomb_reclaimer(const char *name, long iters)
{
	tc_cache *c = NULL;
	if (tc_open(&c, name, NULL) != 0)
		return 12;
	if (tc__membarrier_reader_fast())
		return 10;
	/* One retired block, one grace period: exactly one barrier. */
	uint64_t before = tc__membarrier_issued();
	if (tc_set(c, "nomb-probe", 10, "x", 1, 0, 0) || tc_del(c, "nomb-probe", 10) ||
	    tc_reclaim(c, NULL))
		return 12;
	if (tc__membarrier_issued() != before + 1)
		return 11;
	uint64_t v[MB_WORDS];
	for (long i = 0; i < iters; i++) {
		uint64_t k = (uint64_t)i % MB_KEYS;
		char key[8];
		snprintf(key, sizeof(key), "k%d", (int)k);
		mb_value(v, k, (uint64_t)i + 1);
		if (tc_set(c, key, strlen(key), v, sizeof(v), 0, 0))
			return 12;
		if (i % 16 == 0 && tc_reclaim(c, NULL))
			return 12;
	}
	uint64_t after = tc__membarrier_issued();
	tc_close(c);
	return after > before + 1 ? 0 : 11;
}

struct mb_reader {
	tc_cache *c;
	volatile int *stop;
	long reads, bad;
};

static void *mb_read(void *arg)
{
	struct mb_reader *r = arg;
	uint64_t v[MB_WORDS];
	while (!__atomic_load_n(r->stop, __ATOMIC_ACQUIRE)) {
		for (uint64_t k = 0; k < MB_KEYS; k++) {
			char key[8];
			snprintf(key, sizeof(key), "k%d", (int)k);
			int rc = tc_get(r->c, key, strlen(key), v, sizeof(v), NULL);
			if (rc == -ENOENT)
				continue;
			if (rc != 0 || !mb_check(v, k))
				r->bad++;
			r->reads++;
		}
	}
	return NULL;
}

static bool kernel_has_global_expedited(void)
{
	long q = syscall(__NR_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
	return q > 0 && (q & MEMBARRIER_CMD_GLOBAL_EXPEDITED);
}

static void test_unregistered_reclaimer_issues_global_barrier(void **state)
{
	(void)state;
	if (!kernel_has_global_expedited())
		skip();
	const char *name = new_name("liveness-nomb");
	tc_cache *c = wb_create(name, 1024, 1 << 20, 16, TC_EVICT_NONE);
	int stop = 0;
	struct mb_reader rd[2] = { { .c = c, .stop = &stop }, { .c = c, .stop = &stop } };
	pthread_t th[2];
	for (int i = 0; i < 2; i++)
		assert_int_equal(0, pthread_create(&th[i], NULL, mb_read, &rd[i]));
	pid_t pid = fork_child();
	assert_true(pid >= 0);
	if (pid == 0) {
		setenv("TICKCACHE_NO_MEMBARRIER", "1", 1);
		execl(self_exe, self_exe, "--nomb-reclaimer", name, "20000", (char *)NULL);
		_exit(99);
	}
	int st;
	reap(pid, &st);
	__atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
	for (int i = 0; i < 2; i++)
		assert_int_equal(0, pthread_join(th[i], NULL));
	assert_true(WIFEXITED(st));
	assert_int_equal(0, WEXITSTATUS(st));
	for (int i = 0; i < 2; i++) {
		assert_int_equal(0, rd[i].bad);
		assert_true(rd[i].reads > 0);
	}
	tc_close(c);
	WB_RC(0, tc_unlink(name));
}

/* ------------------------------------------------------------------ */
/* Bounded flock waits                                                  */
/* ------------------------------------------------------------------ */

static void test_open_and_audit_time_out_on_stopped_lock_holder(void **state)
{
	(void)state;
	char path[128];
	const char *name = new_name("liveness-flock");
	tc_cache *c = wb_create(name, 256, 256 << 10, 16, TC_EVICT_NONE);
	snprintf(path, sizeof(path), "/tickcache.%s", name);
	pid_t pid = fork_child();
	assert_true(pid >= 0);
	if (pid == 0) {
		/* A peer stopped inside tc_open: it holds the flock. */
		int fd = shm_open(path, O_RDWR, 0);
		if (fd == -1 || flock(fd, LOCK_EX) == -1)
			_exit(1);
		raise(SIGSTOP);
		_exit(0);
	}
	int st;
	assert_int_equal(pid, waitpid(pid, &st, WUNTRACED));
	assert_true(WIFSTOPPED(st));
	setenv("TICKCACHE_LOCK_WAIT_MS", "200", 1);
	tc_cache *c2 = NULL;
	WB_RC(-ETIMEDOUT, tc_open(&c2, name, NULL));
	assert_null(c2);
	WB_RC(-ETIMEDOUT, tc_audit(c, NULL));
	unsetenv("TICKCACHE_LOCK_WAIT_MS");
	kill(pid, SIGKILL);
	reap(pid, &st);
	WB_RC(0, tc_open(&c2, name, NULL));
	WB_RC(0, tc_set(c2, "k", 1, "v", 1, 0, 0));
	tc_close(c2);
	WB_RC(0, tc_audit(c, NULL));
	tc_close(c);
	WB_RC(0, tc_unlink(name));
}

/* ------------------------------------------------------------------ */
/* -ESTALE inside a section                                             */
/* ------------------------------------------------------------------ */

static void test_calls_inside_section_of_unlinked_segment_get_estale(void **state)
{
	(void)state;
	const char *name = new_name("liveness-stale");
	tc_cache *c = wb_create(name, 256, 256 << 10, 16, TC_EVICT_NONE);
	WB_RC(0, tc_set(c, "k", 1, "v1", 2, 0, 0));
	WB_RC(0, tc_read_lock(c));
	char buf[8];
	WB_RC(0, tc_get(c, "k", 1, buf, sizeof(buf), NULL));
	WB_RC(0, tc_unlink(name));
	WB_RC(-ESTALE, tc_get(c, "k", 1, buf, sizeof(buf), NULL));
	WB_RC(-ESTALE, tc_set(c, "k", 1, "v2", 2, 0, 0));
	WB_RC(-ESTALE, tc_del(c, "k", 1));
	tc_read_unlock(c);
	/* The section is over: still -ESTALE, and nothing was changed. */
	WB_RC(-ESTALE, tc_get(c, "k", 1, buf, sizeof(buf), NULL));
	assert_int_equal(0, tc__ld(&c->slots[0].epoch));
	tc_close(c);
}

int main(int argc, char **argv)
{
	if (argc == 4 && strcmp(argv[1], "--nomb-reclaimer") == 0)
		return nomb_reclaimer(argv[2], atol(argv[3]));
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_unregistered_reclaimer_issues_global_barrier, teardown),
		cmocka_unit_test_teardown(test_open_and_audit_time_out_on_stopped_lock_holder, teardown),
		cmocka_unit_test_teardown(test_calls_inside_section_of_unlinked_segment_get_estale, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
