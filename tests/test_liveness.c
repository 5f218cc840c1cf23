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
 *   back (raw SYS_exit; killed by a seccomp filter; removed by another
 *   thread's execve, as a non-leader and as the leader) is seen dead (by
 *   tc_readers and by `shm-inspect readers`), its slot is cleared by
 *   tc_sweep / tc_readers_clean, or, with nobody sweeping, by the writer that
 *   runs short of memory, and writers go on: 1,000 updates of one 2 KiB key in
 *   a 256 KiB segment all succeed (before: -ENOSPC after ~100).  A thread
 *   that calls pthread_exit inside a section gives its slot back.
 * - tc_open and tc_audit wait a bounded time for a peer SIGSTOPped while
 *   holding the segment's flock: -ETIMEDOUT.
 * - Inside a section opened before tc_unlink, tc_get and tc_set get -ESTALE.
 * - Heartbeats scribbled to INT64_MIN or INT64_MAX are the oldest and the
 *   newest ages, never a signed overflow.
 * - A pid scribbled past any real pid (0xffffffff: kill(-1, 0)) is dead: a
 *   coalescer turn or a sweeper lease naming it is taken over; so is a
 *   slot-less coalescer turn naming any live process.
 * - A claiming lease word naming a live process that does not map the
 *   segment is taken; one naming a process that maps it is not.
 */
#include "whitebox.h"

#include <fcntl.h>
#include <linux/filter.h>
#include <linux/membarrier.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <pthread.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>

static const char *self_exe = "/proc/self/exe";

/* What a failed test leaves behind, removed by its teardown. */
static char cur_name[64];
static pid_t cur_child;

static int teardown(void **state)
{
	if (cur_child > 0) {
		int st;
		kill(cur_child, SIGKILL);
		waitpid(cur_child, &st, 0);
	}
	cur_child = 0;
	unsetenv("TICKCACHE_LOCK_WAIT_MS");
	return fx_teardown(state);
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
	return fx_name_at(cur_name, sizeof(cur_name), tag);
}

/* ------------------------------------------------------------------ */
/* Helpers                                                              */
/* ------------------------------------------------------------------ */

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

static void read_byte(int fd)
{
	char b;
	ssize_t n;
	do
		n = read(fd, &b, 1);
	while (n == -1 && errno == EINTR);
	assert_int_equal(1, n);
}

/* The issue's reproducer: 1,000 updates of one 2 KiB key in a 256 KiB
 * segment.  Returns 0, or the first failing code. */
static int update_2k_key(tc_cache *c)
{
	char v[2048];
	for (int i = 0; i < 1000; i++) {
		memset(v, 'a' + i % 26, sizeof(v));
		int rc = tc_set(c, "big", 3, v, sizeof(v), 0, 0);
		if (rc)
			return rc;
	}
	return 0;
}

struct dead_count {
	uint32_t pid;
	int dead, alive;
};

static int count_pid(const tc_reader *r, void *arg)
{
	struct dead_count *d = arg;
	if (r->pid == d->pid) {
		if (r->state == TC_READER_DEAD)
			d->dead++;
		else
			d->alive++;
	}
	return 0;
}

static struct dead_count readers_of(tc_cache *c, pid_t pid)
{
	struct dead_count d = { .pid = (uint32_t)pid };
	ASSERT_RC(0, tc_readers(c, count_pid, &d));
	return d;
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
	int rc = tc_open(&c, name, NULL);
	if (rc != 0) {
		fprintf(stderr, "nomb reclaimer: tc_open: %s\n", tc_strerror(rc));
		return 12;
	}
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
	long full = 0;
	for (long i = 0; i < iters; i++) {
		uint64_t k = (uint64_t)i % MB_KEYS;
		char key[8];
		snprintf(key, sizeof(key), "k%d", (int)k);
		mb_value(v, k, (uint64_t)i + 1);
		rc = tc_set(c, key, strlen(key), v, sizeof(v), 0, 0);
		/* A reader preempted inside its section (a busy machine) holds
		 * reclamation back for a moment: wait for it, boundedly. */
		while (rc == -ENOSPC && full++ < 100000) {
			struct timespec ts = { 0, 1000000 };
			nanosleep(&ts, NULL);
			rc = tc_set(c, key, strlen(key), v, sizeof(v), 0, 0);
		}
		if (rc == 0 && i % 16 == 0)
			rc = tc_reclaim(c, NULL);
		if (rc) {
			fprintf(stderr, "nomb reclaimer: write %ld: %s\n", i, tc_strerror(rc));
			return 12;
		}
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
	ASSERT_RC(0, tc_unlink(name));
}

/* ------------------------------------------------------------------ */
/* Defect 2: threads that vanish inside a read section                  */
/* ------------------------------------------------------------------ */

struct vanish {
	const char *name;
	int ready_fd;  /* the child writes one byte when the reader is gone */
	int how;       /* VANISH_* */
	pid_t tid;
};

enum { VANISH_SYS_EXIT, VANISH_SECCOMP, VANISH_EXEC_NONLEADER, VANISH_EXEC_LEADER,
       VANISH_PTHREAD_EXIT };

/* Kill the calling thread, and only it, by a seccomp filter that answers
 * getppid with SECCOMP_RET_KILL_THREAD. */
static void seccomp_kill_self(void)
{
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_getppid, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_THREAD),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { .len = sizeof(f) / sizeof(f[0]), .filter = f };
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
	    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0)
		_exit(40);
	syscall(__NR_getppid);
	_exit(41); /* not killed */
}

static tc_cache *child_handle;
static int child_pipe[2];

static void exec_holder(int fd)
{
	char fdarg[16];
	snprintf(fdarg, sizeof(fdarg), "%d", fd);
	execl(self_exe, self_exe, "--exec-hold", fdarg, (char *)NULL);
	_exit(98);
}

/* A reader thread: enter a section, tell the leader, then vanish. */
static void *vanishing_reader(void *arg)
{
	struct vanish *v = arg;
	__atomic_store_n(&v->tid, (pid_t)gettid(), __ATOMIC_RELEASE);
	if (v->how == VANISH_EXEC_LEADER)
		exec_holder(v->ready_fd); /* the leader is the reader */
	if (tc_read_lock(child_handle) != 0)
		_exit(20);
	char b = 'r';
	if (write(child_pipe[1], &b, 1) != 1)
		_exit(21);
	switch (v->how) {
	case VANISH_SYS_EXIT:
		syscall(SYS_exit, 0);
		break;
	case VANISH_SECCOMP:
		seccomp_kill_self();
		break;
	case VANISH_PTHREAD_EXIT:
		pthread_exit(NULL);
	default:
		break;
	}
	for (;;)
		pause();
	return NULL;
}

static bool task_gone(pid_t tid)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/task/%d", (int)tid);
	return access(path, F_OK) == -1;
}

/*
 * The child: open the segment, make a reader thread vanish HOW, then tell
 * the parent (one byte on READY_FD) and wait to be killed.  With
 * VANISH_SYS_EXIT / VANISH_PTHREAD_EXIT the child also checks its own
 * process's view first: exit 30 + step on a failure.
 */
static void vanish_child(struct vanish *v)
{
	if (tc_open(&child_handle, v->name, NULL) != 0)
		_exit(22);
	if (pipe(child_pipe) != 0)
		_exit(23);
	pthread_t th;
	if (v->how == VANISH_EXEC_LEADER) {
		/* The leader reads; another thread calls execve. */
		if (tc_read_lock(child_handle) != 0)
			_exit(24);
		if (pthread_create(&th, NULL, vanishing_reader, v) != 0)
			_exit(25);
		for (;;)
			pause();
	}
	if (pthread_create(&th, NULL, vanishing_reader, v) != 0)
		_exit(25);
	char b;
	if (read(child_pipe[0], &b, 1) != 1)
		_exit(26);
	if (v->how == VANISH_EXEC_NONLEADER)
		exec_holder(v->ready_fd); /* the reader is a non-leader thread */
	pid_t tid;
	while ((tid = __atomic_load_n(&v->tid, __ATOMIC_ACQUIRE)) == 0)
		sleep_ms(1);
	if (v->how == VANISH_PTHREAD_EXIT) {
		if (pthread_join(th, NULL) != 0)
			_exit(27);
	}
	for (int i = 0; !task_gone(tid); i++) {
		if (i > 20000)
			_exit(28);
		sleep_ms(1);
	}
	/* Our own process: the slot of our vanished thread is dead (or, after
	 * pthread_exit, given back), and cleaning clears it. */
	uint32_t cleared = 99;
	if (tc_readers_clean(child_handle, &cleared) != 0)
		_exit(30);
	if (cleared != (v->how == VANISH_PTHREAD_EXIT ? 0u : 1u))
		_exit(31);
	if (update_2k_key(child_handle) != 0)
		_exit(32);
	b = 'x';
	if (write(v->ready_fd, &b, 1) != 1)
		_exit(33);
	for (;;)
		pause();
}

/* Slots of PID that `shm-inspect readers NAME` shows as dead. */
static int inspector_dead(const char *name, pid_t pid)
{
	const char *bin = getenv("BIN");
	char cmd[512], line[256];
	snprintf(cmd, sizeof(cmd), "%s/shm-inspect readers %s", bin && *bin ? bin : "build/bin",
		 name);
	FILE *p = popen(cmd, "r");
	assert_non_null(p);
	int n = 0;
	while (fgets(line, sizeof(line), p)) {
		/* SLOT PID TID ... STATE ...: a row of PID with the word "dead". */
		unsigned slot, lpid;
		if (sscanf(line, "%u %u", &slot, &lpid) != 2 || lpid != (unsigned)pid)
			continue;
		for (char *tok = strtok(line, " \t\n"); tok; tok = strtok(NULL, " \t\n"))
			if (strcmp(tok, "dead") == 0) {
				n++;
				break;
			}
	}
	assert_int_equal(0, pclose(p));
	return n;
}

/* HOW makes a reader thread vanish; with SWEEP a dead slot is cleared by
 * tc_sweep, without it by the writer that runs short of memory. */
static void vanish_case(int how, bool sweep)
{
	const char *name = new_name("liveness-vanish");
	tc_cache *c = wb_create(name, 256, 256 << 10, 16, TC_EVICT_NONE);
	int fds[2];
	assert_int_equal(0, pipe(fds));
	struct vanish v = { .name = name, .ready_fd = fds[1], .how = how };
	pid_t pid = fork_child();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(fds[0]);
		vanish_child(&v);
		_exit(97);
	}
	close(fds[1]);
	char b;
	ssize_t n;
	do
		n = read(fds[0], &b, 1);
	while (n == -1 && errno == EINTR);
	if (n != 1) {
		int st;
		reap(pid, &st);
		fail_msg("child ended before it was ready: status %d", st);
	}
	close(fds[0]);
	/* The child is alive; the thread that read is not. */
	struct dead_count d = readers_of(c, pid);
	if (how == VANISH_PTHREAD_EXIT || how == VANISH_SYS_EXIT || how == VANISH_SECCOMP) {
		/* Cleared by the child itself already. */
		assert_int_equal(0, d.dead);
	} else {
		assert_int_equal(1, d.dead);
		assert_int_equal(0, d.alive);
		assert_int_equal(1, inspector_dead(name, pid));
		if (sweep) {
			tc_sweep_report rep;
			ASSERT_RC(0, tc_sweep(c, 0, &rep));
			assert_int_equal(1, rep.readers_cleared);
			d = readers_of(c, pid);
			assert_int_equal(0, d.dead);
		} else {
			/* Nobody sweeps: the slot pins reclamation until a
			 * writer short of memory clears it (room.c). */
			assert_true(tc__min_active_epoch(c) != UINT64_MAX);
		}
	}
	if (sweep)
		assert_int_equal(UINT64_MAX, tc__min_active_epoch(c));
	ASSERT_RC(0, update_2k_key(c));
	d = readers_of(c, pid);
	assert_int_equal(0, d.dead);
	assert_int_equal(UINT64_MAX, tc__min_active_epoch(c));
	/* The exec'd image does not map the segment: not attached either. */
	if (how == VANISH_EXEC_LEADER || how == VANISH_EXEC_NONLEADER) {
		tc_audit_report ar;
		ASSERT_RC(0, tc_audit(c, &ar));
		assert_int_equal(0, ar.recovered);
	}
	kill(pid, SIGKILL);
	int st;
	reap(pid, &st);
	tc_close(c);
	ASSERT_RC(0, tc_unlink(name));
}

static void test_reader_thread_raw_sys_exit_slot_cleared(void **state)
{
	(void)state;
	vanish_case(VANISH_SYS_EXIT, true);
}

static void test_reader_thread_killed_by_seccomp_slot_cleared(void **state)
{
	(void)state;
	vanish_case(VANISH_SECCOMP, true);
}

static void test_reader_thread_removed_by_execve_slot_cleared(void **state)
{
	(void)state;
	vanish_case(VANISH_EXEC_NONLEADER, true);
}

static void test_reader_leader_removed_by_execve_slot_cleared(void **state)
{
	(void)state;
	vanish_case(VANISH_EXEC_LEADER, true);
}

/* The same without a sweeper: the writers clear the slots themselves. */
static void test_execd_reader_thread_slot_cleared_by_a_writer(void **state)
{
	(void)state;
	vanish_case(VANISH_EXEC_NONLEADER, false);
}

static void test_execd_reader_leader_slot_cleared_by_a_writer(void **state)
{
	(void)state;
	vanish_case(VANISH_EXEC_LEADER, false);
}

static void test_reader_thread_pthread_exit_gives_slot_back(void **state)
{
	(void)state;
	vanish_case(VANISH_PTHREAD_EXIT, true);
}

/* A live reader thread of another process is never judged dead. */
static void test_live_reader_thread_not_cleared(void **state)
{
	(void)state;
	const char *name = new_name("liveness-alive");
	tc_cache *c = wb_create(name, 256, 256 << 10, 16, TC_EVICT_NONE);
	int fds[2];
	assert_int_equal(0, pipe(fds));
	pid_t pid = fork_child();
	assert_true(pid >= 0);
	if (pid == 0) {
		tc_cache *cc = NULL;
		if (tc_open(&cc, name, NULL) || tc_read_lock(cc))
			_exit(1);
		char b = 'x';
		if (write(fds[1], &b, 1) != 1)
			_exit(2);
		for (;;)
			pause();
	}
	close(fds[1]);
	read_byte(fds[0]);
	close(fds[0]);
	struct dead_count d = readers_of(c, pid);
	assert_int_equal(0, d.dead);
	assert_int_equal(1, d.alive);
	uint32_t cleared = 99;
	ASSERT_RC(0, tc_readers_clean(c, &cleared));
	assert_int_equal(0, cleared);
	assert_true(tc__min_active_epoch(c) != UINT64_MAX);
	kill(pid, SIGKILL);
	int st;
	reap(pid, &st);
	ASSERT_RC(0, tc_readers_clean(c, &cleared));
	assert_int_equal(1, cleared);
	tc_close(c);
	ASSERT_RC(0, tc_unlink(name));
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
	ASSERT_RC(-ETIMEDOUT, tc_open(&c2, name, NULL));
	assert_null(c2);
	ASSERT_RC(-ETIMEDOUT, tc_audit(c, NULL));
	unsetenv("TICKCACHE_LOCK_WAIT_MS");
	kill(pid, SIGKILL);
	reap(pid, &st);
	ASSERT_RC(0, tc_open(&c2, name, NULL));
	ASSERT_RC(0, tc_set(c2, "k", 1, "v", 1, 0, 0));
	tc_close(c2);
	ASSERT_RC(0, tc_audit(c, NULL));
	tc_close(c);
	ASSERT_RC(0, tc_unlink(name));
}

/* ------------------------------------------------------------------ */
/* -ESTALE inside a section                                             */
/* ------------------------------------------------------------------ */

static void test_calls_inside_section_of_unlinked_segment_get_estale(void **state)
{
	(void)state;
	const char *name = new_name("liveness-stale");
	tc_cache *c = wb_create(name, 256, 256 << 10, 16, TC_EVICT_NONE);
	ASSERT_RC(0, tc_set(c, "k", 1, "v1", 2, 0, 0));
	ASSERT_RC(0, tc_read_lock(c));
	char buf[8];
	ASSERT_RC(0, tc_get(c, "k", 1, buf, sizeof(buf), NULL));
	const void *p = NULL, *before = NULL;
	ASSERT_RC(0, tc_peek(c, "k", 1, &before, NULL));
	ASSERT_RC(0, tc_unlink(name));
	ASSERT_RC(-ESTALE, tc_get(c, "k", 1, buf, sizeof(buf), NULL));
	ASSERT_RC(-ESTALE, tc_peek(c, "k", 1, &p, NULL));
	assert_null(p);
	/* What was peeked before stays valid until the outermost unlock. */
	assert_memory_equal(before, "v1", 2);
	ASSERT_RC(-ESTALE, tc_set(c, "k", 1, "v2", 2, 0, 0));
	ASSERT_RC(-ESTALE, tc_del(c, "k", 1));
	tc_read_unlock(c);
	/* The section is over: still -ESTALE, and nothing was changed. */
	ASSERT_RC(-ESTALE, tc_get(c, "k", 1, buf, sizeof(buf), NULL));
	assert_int_equal(0, tc__ld(&c->slots[0].epoch));
	tc_close(c);
}

/* ------------------------------------------------------------------ */
/* Heartbeats that are not times                                        */
/* ------------------------------------------------------------------ */

/*
 * A lease's or the tier's heartbeat scribbled to a time before any clock
 * (INT64_MIN) is the oldest there is, never an overflow of now - beat: the
 * lease of a live holder is then stale and another process takes it,
 * tc_lease_holder's age saturates, and the tier's age is 0 (a beat that is
 * not a time).  A beat in the far future is age 0 and not stale.  Found by
 * make ubsan ("signed integer overflow" in tc_lease_holder) listing a
 * fuzzer's segment; without UBSan the lease stayed -EBUSY.
 */
static void test_scribbled_heartbeats_are_old_not_overflows(void **state)
{
	(void)state;
	const char *name = new_name("liveness-beat");
	tc_cache *c = wb_create(name, 256, 256 << 10, 16, TC_EVICT_NONE);
	int pfd[2];
	assert_int_equal(0, pipe(pfd));
	pid_t pid = fork_child();
	assert_true(pid >= 0);
	if (pid == 0) {
		/* A live holder of both leases that is not the test. */
		tc_cache *d;
		if (tc_open(&d, name, NULL) || tc_lease_acquire(d, 0, NULL) ||
		    tc_tier_claim(d, 0, NULL) || write(pfd[1], "x", 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	close(pfd[1]);
	char b;
	assert_int_equal(1, read(pfd[0], &b, 1));
	uint32_t holder = 0;
	uint64_t age = 1;
	bool alive = false;
	ASSERT_RC(-EBUSY, tc_lease_acquire(c, 60000, &holder));
	assert_int_equal(pid, holder);
	ASSERT_RC(-EBUSY, tc_tier_claim(c, 60000, &holder));

	tc__st(&c->h->lease_beat_ms, INT64_MIN);
	ASSERT_RC(0, tc_lease_holder(c, &holder, &age, &alive));
	assert_int_equal(pid, holder);
	assert_true(alive);
	assert_true(age == (uint64_t)INT64_MAX);
	ASSERT_RC(0, tc_lease_acquire(c, 60000, &holder)); /* stale: ours now */
	ASSERT_RC(0, tc_lease_holder(c, &holder, &age, NULL));
	assert_int_equal(getpid(), holder);
	tc__st(&c->h->lease_beat_ms, INT64_MAX);
	ASSERT_RC(0, tc_lease_holder(c, &holder, &age, NULL));
	assert_true(age == 0);

	tc_tier t;
	tc__st(&c->h->tier_beat_ms, INT64_MIN);
	ASSERT_RC(0, tc_tier_get(c, &t));
	assert_int_equal(pid, t.pid);
	assert_true(t.beat_age_ms == 0);
	ASSERT_RC(0, tc_tier_claim(c, 60000, &holder)); /* stale: ours now */
	ASSERT_RC(0, tc_tier_get(c, &t));
	assert_int_equal(getpid(), t.pid);

	kill(pid, SIGKILL);
	assert_int_equal(pid, waitpid(pid, NULL, 0));
	close(pfd[0]);
	tc_close(c);
	ASSERT_RC(0, tc_unlink(name));
}

/*
 * A pid read from the segment is a u32: scribbled past any pid the kernel
 * gives (PID_MAX_LIMIT, 2^22), it names no process.  kill() takes it as a
 * pid_t: 0xffffffff is kill(-1, 0), "every process we may signal", and
 * 2^32 - pgrp is our own process group, both "alive".  Before the fix a
 * coalescer turn word naming pid 0xffffffff was held for ever (every write
 * short of memory waited its 20 ms, tc__coalescing() said yes), and a
 * sweeper lease naming it could never be taken while its beat was fresh.
 */
static void test_a_pid_past_pid_max_is_dead(void **state)
{
	(void)state;
	assert_false(tc__pid_alive(0xffffffffu, 0));
	assert_false(tc__pid_alive((uint32_t)-getpgrp(), 0));
	assert_false(tc__pid_alive((uint32_t)-1 - 1, 0));
	assert_false(tc__pid_alive((1u << 22) + 1, 0));
	assert_true(tc__pid_alive((uint32_t)getpid(), 0));
	assert_true(tc__pid_alive(1, 0));

	pid_t other = fork_child();
	assert_true(other >= 0);
	if (other == 0) {
		for (;;)
			pause();
	}
	const char *name = new_name("liveness-pidmax");
	tc_cache *c = wb_create(name, 256, 256 << 10, 16, TC_EVICT_NONE);
	/* A coalescer turn held by "pid 0xffffffff" with no slot. */
	tc__st(&c->h->df_turn, 0xffffffffull << 32 | 0xffffull << 16 | 7);
	assert_false(tc__coalescing(c));
	/* A sweeper lease held by it, beating now. */
	tc__st(&c->h->lease_word, 0xffffffffull << 32 | 5);
	tc__st(&c->h->lease_beat_ms, (int64_t)time(NULL) * 1000);
	uint32_t holder = 0;
	ASSERT_RC(0, tc_lease_acquire(c, 60000, &holder));
	ASSERT_RC(0, tc_lease_holder(c, &holder, NULL, NULL));
	assert_int_equal(getpid(), holder);
	/* A turn held, with no slot, by a live process that does not map the
	 * segment (a child forked before it was created): no recoverer, a
	 * scribble.  So is one naming a process that maps it (this one):
	 * recoverers hold the turn with their own slot
	 * (test_coalesce.c, test_a_turn_word_naming_no_slot_is_no_holder). */
	tc__st(&c->h->df_turn, (uint64_t)other << 32 | 0xffffull << 16 | 9);
	assert_false(tc__coalescing(c));
	tc__st(&c->h->df_turn, (uint64_t)getpid() << 32 | 0xffffull << 16 | 9);
	assert_false(tc__coalescing(c));
	tc__st(&c->h->df_turn, 0);
	kill(other, SIGKILL);
	assert_int_equal(other, waitpid(other, NULL, 0));
	tc_close(c);
	ASSERT_RC(0, tc_unlink(name));
}

/*
 * A sweeper lease word scribbled to name a live process with the claiming
 * bit was judged by kill(pid, 0) alone (a claimer's start time and
 * heartbeat may still be the previous holder's: design.md section 8, "The
 * sweeper lease"), so no sweeper ever took it again: no idle audits, no
 * expiry sweeps, no dead-slot cleaning by the sweeper, for as long as that
 * process lived (found by the stall review, seen failing with -EBUSY).  A
 * claimer calls through a handle, so it maps the segment: one that does
 * not (here a child forked before the segment existed) is no claimer.
 */
static void test_a_claiming_lease_of_an_unattached_process_is_taken(void **state)
{
	(void)state;
	pid_t pid = fork_child();
	assert_true(pid >= 0);
	if (pid == 0) {
		for (;;)
			pause();
	}
	const char *name = new_name("liveness-claiming");
	tc_cache *c = wb_create(name, 256, 256 << 10, 16, TC_EVICT_NONE);
	/* A child forked now maps the segment: it might be a claimer. */
	pid_t mapper = fork_child();
	assert_true(mapper >= 0);
	if (mapper == 0) {
		for (;;)
			pause();
	}
	uint32_t holder = 0;
	tc__st(&c->h->lease_word, (uint64_t)mapper << 32 | TC_LEASE_CLAIMING | 3);
	ASSERT_RC(-EBUSY, tc_lease_acquire(c, 60000, &holder));
	assert_int_equal(mapper, holder);
	kill(mapper, SIGKILL);
	assert_int_equal(waitpid(mapper, NULL, 0), mapper);
	tc__st(&c->h->lease_word, (uint64_t)pid << 32 | TC_LEASE_CLAIMING | 3);
	tc__st(&c->h->lease_beat_ms, (int64_t)time(NULL) * 1000 - 3600 * 1000);
	int rc = tc_lease_acquire(c, 60000, &holder);
	kill(pid, SIGKILL);
	assert_int_equal(waitpid(pid, NULL, 0), pid);
	ASSERT_RC(0, rc);
	assert_int_equal(getpid(), holder);
	tc_close(c);
	ASSERT_RC(0, tc_unlink(name));
}

/*
 * Whether a process maps the segment is read from /proc/PID/maps a line at
 * a time, into a 512-byte buffer: the rest of a longer line (a long path)
 * comes back as a line of its own.  A path is anybody's bytes: one whose
 * tail reads as a mapping of the segment's inode must not make a process
 * that does not map the segment look as if it did (its attach record kept
 * by tc_audit, a thread's slot left after an execve pinning every grace
 * period).  The file's name is spaces, then such a mapping; the line's 511th
 * byte falls among the spaces, wherever the kernel's padding puts the path.
 */
static void long_path_of(char *path, size_t cap, pid_t pid, const tc_cache *c, bool dir)
{
	char a[201], b[131], sp[201];
	memset(a, 'a', 200);
	a[200] = '\0';
	memset(b, 'b', 130);
	b[130] = '\0';
	memset(sp, ' ', 200);
	sp[200] = '\0';
	if (dir)
		snprintf(path, cap, "/tmp/tc-maps-%d/%s/%s", (int)pid, a, b);
	else
		snprintf(path, cap, "/tmp/tc-maps-%d/%s/%s/%s0-1000 rw-s 00000000 %02x:%02x %llu",
			 (int)pid, a, b, sp, c->shm_major, c->shm_minor,
			 (unsigned long long)c->shm_ino);
}

static void test_a_long_maps_line_never_reads_as_a_mapping_of_the_segment(void **state)
{
	(void)state;
	int go[2], ready[2];
	assert_int_equal(0, pipe(go));
	assert_int_equal(0, pipe(ready));
	/* Forked before the segment exists: it never maps it. */
	pid_t pid = fork_child();
	assert_true(pid >= 0);
	if (pid == 0) {
		tc_cache geo;
		char path[1024], top[64];
		if (read(go[0], &geo, sizeof(geo)) != (ssize_t)sizeof(geo))
			_exit(1);
		snprintf(top, sizeof(top), "/tmp/tc-maps-%d", (int)getpid());
		long_path_of(path, sizeof(path), getpid(), &geo, true);
		char *slash = path + strlen(top);
		if (mkdir(top, 0700) != 0)
			_exit(2);
		slash = strchr(slash + 1, '/');
		*slash = '\0';
		if (mkdir(path, 0700) != 0)
			_exit(3);
		*slash = '/';
		if (mkdir(path, 0700) != 0)
			_exit(4);
		long_path_of(path, sizeof(path), getpid(), &geo, false);
		int fd = open(path, O_RDWR | O_CREAT, 0600);
		if (fd < 0 || ftruncate(fd, 4096) != 0 ||
		    mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0) == MAP_FAILED)
			_exit(5);
		char r = 'r';
		if (write(ready[1], &r, 1) != 1)
			_exit(6);
		for (;;)
			pause();
	}
	const char *name = new_name("liveness-longpath");
	tc_cache *c = wb_create(name, 256, 256 << 10, 16, TC_EVICT_NONE);
	assert_int_equal((ssize_t)sizeof(*c), write(go[1], c, sizeof(*c)));
	char r = 0;
	ssize_t n = read(ready[0], &r, 1);
	bool shown = tc__maps_segment_shown(c, (uint32_t)pid);
	bool maps = tc__maps_segment(c, (uint32_t)pid, 0);
	kill(pid, SIGKILL);
	int st;
	reap(pid, &st);
	char path[1024], top[64];
	long_path_of(path, sizeof(path), pid, c, false);
	unlink(path);
	for (int i = 0; i < 2; i++) {
		long_path_of(path, sizeof(path), pid, c, true);
		if (i == 0) {
			rmdir(path);
		} else {
			*strrchr(path, '/') = '\0';
			rmdir(path);
		}
	}
	snprintf(top, sizeof(top), "/tmp/tc-maps-%d", (int)pid);
	rmdir(top);
	assert_int_equal(1, n);
	assert_false(shown);
	assert_false(maps);
	tc_close(c);
	ASSERT_RC(0, tc_unlink(name));
}

int main(int argc, char **argv)
{
	if (argc == 4 && strcmp(argv[1], "--nomb-reclaimer") == 0)
		return nomb_reclaimer(argv[2], atol(argv[3]));
	if (argc == 3 && strcmp(argv[1], "--exec-hold") == 0) {
		/* The image after execve: it does not map the segment. */
		char b = 'x';
		if (write(atoi(argv[2]), &b, 1) != 1)
			return 1;
		for (;;)
			pause();
	}
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_unregistered_reclaimer_issues_global_barrier, teardown),
		cmocka_unit_test_teardown(test_reader_thread_raw_sys_exit_slot_cleared, teardown),
		cmocka_unit_test_teardown(test_reader_thread_killed_by_seccomp_slot_cleared, teardown),
		cmocka_unit_test_teardown(test_reader_thread_removed_by_execve_slot_cleared, teardown),
		cmocka_unit_test_teardown(test_reader_leader_removed_by_execve_slot_cleared, teardown),
		cmocka_unit_test_teardown(test_execd_reader_thread_slot_cleared_by_a_writer, teardown),
		cmocka_unit_test_teardown(test_execd_reader_leader_slot_cleared_by_a_writer, teardown),
		cmocka_unit_test_teardown(test_reader_thread_pthread_exit_gives_slot_back, teardown),
		cmocka_unit_test_teardown(test_live_reader_thread_not_cleared, teardown),
		cmocka_unit_test_teardown(test_open_and_audit_time_out_on_stopped_lock_holder, teardown),
		cmocka_unit_test_teardown(test_calls_inside_section_of_unlinked_segment_get_estale, teardown),
		cmocka_unit_test_teardown(test_scribbled_heartbeats_are_old_not_overflows, teardown),
		cmocka_unit_test_teardown(test_a_pid_past_pid_max_is_dead, teardown),
		cmocka_unit_test_teardown(test_a_claiming_lease_of_an_unattached_process_is_taken,
					  teardown),
		cmocka_unit_test_teardown(test_a_long_maps_line_never_reads_as_a_mapping_of_the_segment,
					  teardown),
	};
	return fx_run(tests);
}
