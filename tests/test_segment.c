/* SPDX-License-Identifier: MIT */
/*
 * test_segment.c - white-box tests of create / attach / validation
 * (shm/segment.c).
 *
 * - A header with a wrong magic, layout version, state or any geometry
 *   field, or an object of the wrong size, is refused on attach
 *   (TC_ECORRUPT, TC_EVERSION); a half-built segment (size 0, or state
 *   BUILDING) is TC_ECORRUPT for an attacher.
 * - Geometry that differs from the segment's is TC_EGEOMETRY; the same
 *   opts always attach; zero fields mean "whatever it has".
 * - The mode is applied exactly, whatever the umask.
 * - Attach records of a process that exits without tc_close are cleared.
 * - Many processes racing to create one segment: one builds, all attach.
 * - After attach, the handle never re-reads geometry from the header.
 * - fork() while other threads open and close handles: the child can open.
 * - Liveness: a reader whose /proc entry the cleaner cannot read is alive.
 * (An auditor killed half way, and a dead audit's state: test_audit.c.)
 */
#include "whitebox.h"

#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <sys/mount.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>

#define ENTRIES 1024
#define MEMORY  (1u << 20)
#define READERS 8

static void shm_name(char *dst, size_t cap, const char *name)
{
	snprintf(dst, cap, "/tickcache.%s", name);
}

/* Create NAME, close it, and map its bytes for scribbling. */
static struct tc_hdr *make_and_map(const char *name, size_t *size)
{
	tc_cache *c = wb_create(name, ENTRIES, MEMORY, READERS, TC_EVICT_NONE);
	tc_close(c);
	char path[96];
	shm_name(path, sizeof(path), name);
	int fd = shm_open(path, O_RDWR, 0);
	assert_true(fd >= 0);
	struct stat st;
	assert_int_equal(fstat(fd, &st), 0);
	*size = (size_t)st.st_size;
	void *p = mmap(NULL, *size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	assert_true(p != MAP_FAILED);
	return p;
}

static int attach_rc(const char *name)
{
	tc_cache *c = (tc_cache *)1;
	int rc = tc_open(&c, name, NULL);
	if (rc == 0)
		tc_close(c);
	else
		assert_null(c);
	return rc;
}

/* Each case: scribble one field, expect a code, restore, expect 0. */
static void test_bad_header_fields_are_refused(void **state)
{
	(void)state;
	char name[64];
	fx_name(name);
	size_t size;
	struct tc_hdr *h = make_and_map(name, &size);
	struct tc_hdr save;
	memcpy(&save, h, sizeof(save));
	struct {
		const char *what;
		int want;
	} cases[] = {
		{ "magic", TC_ECORRUPT },
		{ "layout_version", TC_EVERSION },
		{ "state BUILDING", TC_ECORRUPT },
		{ "state 0", TC_ECORRUPT },
		{ "total_bytes", TC_ECORRUPT },
		{ "max_entries", TC_ECORRUPT },
		{ "max_entries 0", TC_ECORRUPT },
		{ "memory_bytes", TC_ECORRUPT },
		{ "max_readers", TC_ECORRUPT },
		{ "max_readers 0", TC_ECORRUPT },
		{ "max_attach", TC_ECORRUPT },
		{ "nbuckets", TC_ECORRUPT },
		{ "slots_off", TC_ECORRUPT },
		{ "attach_off", TC_ECORRUPT },
		{ "index_off", TC_ECORRUPT },
		{ "arena_off", TC_ECORRUPT },
		{ "eviction", TC_ECORRUPT },
	};
	char bad[512] = "";
	size_t used = 0;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		switch (i) {
		case 0: h->magic ^= 1; break;
		case 1: h->layout_version = TC_LAYOUT_VERSION + 1; break;
		case 2: h->state = TC_STATE_BUILDING; break;
		case 3: h->state = 0; break;
		case 4: h->total_bytes += TC_PAGE; break;
		case 5: h->max_entries *= 4; break;
		case 6: h->max_entries = 0; break;
		case 7: h->memory_bytes *= 2; break;
		case 8: h->max_readers += 64; break;
		case 9: h->max_readers = 0; break;
		case 10: h->max_attach += 1; break;
		case 11: h->nbuckets *= 2; break;
		case 12: h->slots_off += TC_PAGE; break;
		case 13: h->attach_off -= TC_PAGE; break;
		case 14: h->index_off += 64; break;
		case 15: h->arena_off = h->total_bytes; break;
		default: h->eviction = 7; break;
		}
		int rc = attach_rc(name);
		if (rc != cases[i].want)
			used += (size_t)snprintf(bad + used, sizeof(bad) - used, "[%s: %d] ",
						 cases[i].what, rc);
		memcpy(h, &save, sizeof(save));
		ASSERT_RC(0, attach_rc(name));
	}
	munmap(h, size);
	tc_unlink(name);
	if (used)
		fail_msg("wrong codes: %s", bad);
}

/*
 * A segment of layout 13 is refused, and a library of layout 13 refuses
 * ours (it compares the same word): the two disagree on what a dead slot's
 * names mean.  This library keeps a run anchor in inflight across the CAS
 * that publishes it (run_started) and a list element across its list's
 * (dto_appended), and records a keyless block's ret_hash by its kind.  A
 * layout-13 cleaner asks the index alone whether such a block was
 * published: it retired the live run's anchor, or a live list's head,
 * which the next writes then took.
 */
static void test_a_segment_of_layout_13_is_refused(void **state)
{
	(void)state;
	char name[64];
	fx_name(name);
	size_t size;
	struct tc_hdr *h = make_and_map(name, &size);
	h->layout_version = 13;
	ASSERT_RC(TC_EVERSION, attach_rc(name));
	munmap(h, size);
	tc_unlink(name);
}

static void test_wrong_object_size_is_corrupt(void **state)
{
	(void)state;
	char name[64], path[96];
	fx_name(name);
	size_t size;
	struct tc_hdr *h = make_and_map(name, &size);
	munmap(h, size);
	shm_name(path, sizeof(path), name);
	int fd = shm_open(path, O_RDWR, 0);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)size + TC_PAGE), 0);
	ASSERT_RC(TC_ECORRUPT, attach_rc(name));
	assert_int_equal(ftruncate(fd, (off_t)size - TC_PAGE), 0);
	ASSERT_RC(TC_ECORRUPT, attach_rc(name));
	assert_int_equal(ftruncate(fd, 100), 0); /* not even a header */
	ASSERT_RC(TC_ECORRUPT, attach_rc(name));
	close(fd);
	tc_unlink(name);
}

static void test_half_built_segment_is_corrupt_for_attachers(void **state)
{
	(void)state;
	char name[64], path[96];
	fx_name(name);
	shm_name(path, sizeof(path), name);
	tc_unlink(name);
	/* A creator that died right after shm_open(O_CREAT). */
	int fd = shm_open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	close(fd);
	ASSERT_RC(TC_ECORRUPT, attach_rc(name));
	tc_opts o = wb_opts(ENTRIES, MEMORY, READERS, TC_EVICT_NONE);
	o.flags = 0; /* attach with geometry, no create */
	tc_cache *c = NULL;
	ASSERT_RC(TC_ECORRUPT, tc_open(&c, name, &o));
	/* With TC_CREATE the empty object is built. */
	o.flags = TC_CREATE;
	ASSERT_RC(0, tc_open(&c, name, &o));
	ASSERT_RC(0, tc_set(c, "k", 1, "v", 1, 0, 0));
	tc_close(c);
	ASSERT_RC(0, tc_unlink(name));

	/* A creator that died during the build: state BUILDING. */
	size_t size;
	struct tc_hdr *h = make_and_map(name, &size);
	h->state = TC_STATE_BUILDING;
	ASSERT_RC(TC_ECORRUPT, attach_rc(name));
	o.flags = TC_CREATE;
	ASSERT_RC(TC_ECORRUPT, tc_open(&c, name, &o));
	munmap(h, size);
	ASSERT_RC(0, tc_unlink(name));
	ASSERT_RC(-ENOENT, tc_unlink(name));
}

/*
 * A segment whose unlinker died between its mark and the removal of the
 * name (crash point unlink_marked): an attacher finds it absent (-ENOENT,
 * and the name is removed), a creator makes it anew (test_crashpoints).
 */
static void test_marked_segment_left_by_a_dead_unlinker_is_absent(void **state)
{
	(void)state;
	char name[64];
	size_t size;
	fx_name(name);
	struct tc_hdr *h = make_and_map(name, &size);
	h->state = TC_STATE_UNLINKED;
	munmap(h, size);
	ASSERT_RC(-ENOENT, attach_rc(name));
	ASSERT_RC(-ENOENT, tc_unlink(name));
}

static void test_geometry_mismatch_is_egeometry(void **state)
{
	(void)state;
	char name[64];
	fx_name(name);
	tc_cache *c = wb_create(name, ENTRIES, MEMORY, READERS, TC_EVICT_NONE);
	tc_cache *d = NULL;
	tc_opts o = wb_opts(ENTRIES, MEMORY, READERS, TC_EVICT_NONE);
	o.flags = TC_CREATE;
	ASSERT_RC(0, tc_open(&d, name, &o)); /* the very same opts attach */
	tc_close(d);
	o.flags = 0;
	ASSERT_RC(0, tc_open(&d, name, &o));
	tc_close(d);
	o.flags = TC_CREATE | TC_EXCL;
	ASSERT_RC(-EEXIST, tc_open(&d, name, &o));
	assert_null(d);
	for (int i = 0; i < 3; i++) {
		o = wb_opts(ENTRIES, MEMORY, READERS, TC_EVICT_NONE);
		o.flags = i == 1 ? TC_CREATE : 0;
		if (i == 0)
			o.max_entries = ENTRIES * 2;
		else if (i == 1)
			o.memory_bytes = MEMORY * 2;
		else
			o.max_readers = READERS + 1;
		ASSERT_RC(TC_EGEOMETRY, tc_open(&d, name, &o));
		assert_null(d);
	}
	/* Zero fields take the segment's values. */
	memset(&o, 0, sizeof(o));
	o.max_readers = READERS;
	ASSERT_RC(0, tc_open(&d, name, &o));
	tc_info info;
	ASSERT_RC(0, tc_get_info(d, &info));
	assert_int_equal(info.max_entries, ENTRIES);
	assert_int_equal(info.memory_bytes, MEMORY);
	assert_int_equal(info.max_readers, READERS);
	tc_close(d);
	tc_close(c);
	tc_unlink(name);
	/* Attach-only of a missing segment. */
	ASSERT_RC(-ENOENT, tc_open(&d, name, NULL));
	o.flags = 0;
	ASSERT_RC(-ENOENT, tc_open(&d, name, &o));
}

static unsigned mode_of(const char *name)
{
	char path[128];
	fx_shm_path(path, sizeof(path), name);
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	return st.st_mode & 07777;
}

static void test_mode_is_applied_exactly(void **state)
{
	(void)state;
	char name[64];
	mode_t old = umask(0077);
	struct {
		uint32_t mode;
		mode_t umask;
		unsigned want;
	} cases[] = {
		{ 0, 0077, 0600 }, { 0, 0, 0600 }, { 0660, 0077, 0660 },
		{ 0644, 0022, 0644 }, { 0604, 0, 0604 }, { 0400, 0777, 0400 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		umask(cases[i].umask);
		fx_name(name);
		tc_opts o = wb_opts(ENTRIES, MEMORY, READERS, TC_EVICT_NONE);
		o.mode = cases[i].mode;
		tc_cache *c = NULL;
		tc_unlink(name);
		ASSERT_RC(0, tc_open(&c, name, &o));
		unsigned got = mode_of(name);
		tc_info info;
		ASSERT_RC(0, tc_get_info(c, &info));
		tc_close(c);
		tc_unlink(name);
		if (got != cases[i].want || info.mode != cases[i].want)
			fail_msg("mode %o under umask %o: file %o, info %o, want %o",
				 cases[i].mode, cases[i].umask, got, info.mode, cases[i].want);
	}
	umask(old);
	/* Bits outside 07777 are refused. */
	tc_opts o = wb_opts(ENTRIES, MEMORY, READERS, TC_EVICT_NONE);
	o.mode = 010600;
	tc_cache *c = NULL;
	ASSERT_RC(-EINVAL, tc_open(&c, fx_name(name), &o));
}

static uint32_t attach_records_of(tc_cache *c, pid_t pid)
{
	uint32_t n = 0;
	for (uint32_t i = 0; i < c->max_attach; i++)
		n += tc__ld(&c->attach[i].pid) == (uint64_t)pid;
	return n;
}

static void test_attach_records_of_exited_process_are_cleared(void **state)
{
	(void)state;
	char name[64];
	fx_name(name);
	tc_cache *c = wb_create(name, ENTRIES, MEMORY, READERS, TC_EVICT_NONE);
	assert_int_equal(attach_records_of(c, getpid()), 1);
	/* Two handles, no tc_close, and a reader slot. */
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		tc_cache *a = NULL, *b = NULL;
		char buf[4];
		if (tc_open(&a, name, NULL) || tc_open(&b, name, NULL))
			_exit(2);
		(void)tc_get(a, "x", 1, buf, sizeof(buf), NULL);
		_exit(0);
	}
	assert_int_equal(fx_wait(pid), 0);
	assert_int_equal(attach_records_of(c, pid), 2);
	assert_int_equal(wb_slots_owned(c), 1);
	uint32_t cleared = 0;
	ASSERT_RC(0, tc_readers_clean(c, &cleared));
	assert_int_equal(cleared, 1);
	assert_int_equal(attach_records_of(c, pid), 0);
	assert_int_equal(wb_slots_owned(c), 0);
	/* A child that closes leaves nothing to clear. */
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		tc_cache *a = NULL;
		char buf[4];
		if (tc_open(&a, name, NULL))
			_exit(2);
		(void)tc_get(a, "x", 1, buf, sizeof(buf), NULL);
		tc_close(a);
		_exit(0);
	}
	assert_int_equal(fx_wait(pid), 0);
	assert_int_equal(attach_records_of(c, pid), 0);
	assert_int_equal(wb_slots_owned(c), 0);
	/* A forked child closing the parent's handle does not clear the
	 * parent's record. */
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		tc_close(c);
		_exit(0);
	}
	assert_int_equal(fx_wait(pid), 0);
	assert_int_equal(attach_records_of(c, getpid()), 1);
	tc_close(c);
	tc_unlink(name);
}

#define RACERS 6

static void test_racing_creators_build_once(void **state)
{
	(void)state;
	char name[64];
	fx_name(name);
	tc_unlink(name);
	struct shared {
		pthread_barrier_t bar;
		uint64_t seed[RACERS];
	} *sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
		     -1, 0);
	assert_true(sh != MAP_FAILED);
	pthread_barrierattr_t ba;
	pthread_barrierattr_init(&ba);
	pthread_barrierattr_setpshared(&ba, PTHREAD_PROCESS_SHARED);
	pthread_barrier_init(&sh->bar, &ba, RACERS);
	pid_t kids[RACERS];
	for (int i = 0; i < RACERS; i++) {
		kids[i] = fork();
		assert_true(kids[i] >= 0);
		if (kids[i] == 0) {
			alarm(60);
			tc_opts o = wb_opts(ENTRIES, MEMORY, READERS, TC_EVICT_NONE);
			o.flags = TC_CREATE;
			tc_cache *c = NULL;
			pthread_barrier_wait(&sh->bar);
			int rc = tc_open(&c, name, &o);
			if (rc)
				_exit(10);
			sh->seed[i] = c->seed;
			char k[16];
			snprintf(k, sizeof(k), "p%d", i);
			if (tc_add(c, k, strlen(k), "v", 1, 0, 0))
				_exit(11);
			tc_close(c);
			_exit(0);
		}
	}
	int bad = 0;
	for (int i = 0; i < RACERS; i++)
		bad += fx_wait(kids[i]) != 0;
	assert_int_equal(bad, 0);
	for (int i = 1; i < RACERS; i++)
		assert_int_equal(sh->seed[i], sh->seed[0]);
	tc_cache *c = NULL;
	ASSERT_RC(0, tc_open(&c, name, NULL));
	assert_int_equal(tc__ld(&c->h->live), RACERS);
	tc_close(c);
	pthread_barrier_destroy(&sh->bar);
	munmap(sh, sizeof(*sh));
	tc_unlink(name);
}

/* The handle keeps the geometry it validated at attach. */
static void test_header_scribbled_after_attach_is_not_trusted(void **state)
{
	(void)state;
	char name[64];
	fx_name(name);
	tc_cache *c = wb_create(name, ENTRIES, MEMORY, READERS, TC_EVICT_NONE);
	for (int i = 0; i < 100; i++) {
		char k[16];
		snprintf(k, sizeof(k), "k%d", i);
		ASSERT_RC(0, tc_set(c, k, strlen(k), "v", 1, 0, 0));
	}
	struct tc_hdr *h = c->h;
	h->nbuckets = UINT64_MAX;
	h->max_readers = UINT32_MAX;
	h->max_attach = UINT32_MAX;
	h->memory_bytes = UINT64_MAX;
	h->max_entries = 1;
	h->index_off = 0;
	h->arena_off = 0;
	char buf[4];
	for (int i = 0; i < 100; i++) {
		char k[16];
		snprintf(k, sizeof(k), "k%d", i);
		ASSERT_RC(0, tc_get(c, k, strlen(k), buf, sizeof(buf), NULL));
		ASSERT_RC(0, tc_set(c, k, strlen(k), "w", 1, 0, 0));
	}
	tc_stats st;
	ASSERT_RC(0, tc_get_stats(c, &st));
	assert_int_equal(st.entries, 100);
	assert_int_equal(st.max_readers, READERS);
	uint32_t cl;
	ASSERT_RC(0, tc_readers_clean(c, &cl));
	tc_close(c);
	/* A new attacher refuses it. */
	ASSERT_RC(TC_ECORRUPT, attach_rc(name));
	tc_unlink(name);
}

static void test_unlinked_segment_gives_estale_to_attached_handles(void **state)
{
	(void)state;
	char name[64];
	fx_name(name);
	tc_cache *c = wb_create(name, ENTRIES, MEMORY, READERS, TC_EVICT_NONE);
	ASSERT_RC(0, tc_set(c, "k", 1, "v", 1, 0, 0));
	ASSERT_RC(0, tc_unlink(name));
	char buf[4];
	ASSERT_RC(-ESTALE, tc_get(c, "k", 1, buf, sizeof(buf), NULL));
	ASSERT_RC(-ESTALE, tc_set(c, "k", 1, "v", 1, 0, 0));
	ASSERT_RC(-ESTALE, tc_read_lock(c));
	tc_read_unlock(c);
	/* A new segment of that name is independent. */
	tc_cache *d = wb_create(name, ENTRIES, MEMORY, READERS, TC_EVICT_NONE);
	ASSERT_RC(-ENOENT, tc_get(d, "k", 1, buf, sizeof(buf), NULL));
	tc_close(c);
	tc_close(d);
	tc_unlink(name);
}

static void test_bad_names_and_opts_are_einval(void **state)
{
	(void)state;
	tc_cache *c = (tc_cache *)1;
	const char *bad[] = { "", "../x", "/", "a/b", ".x", "-x", "_x", "a b", "é",
			      "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ASSERT_RC(-EINVAL, tc_open(&c, bad[i], NULL));
		assert_null(c);
		ASSERT_RC(-EINVAL, tc_unlink(bad[i]));
	}
	ASSERT_RC(-EINVAL, tc_open(&c, NULL, NULL));
	ASSERT_RC(-EINVAL, tc_open(NULL, "ok", NULL));
	char name[64];
	fx_name(name);
	tc_opts o = wb_opts(TC_MIN_ENTRIES - 1, MEMORY, READERS, TC_EVICT_NONE);
	ASSERT_RC(-EINVAL, tc_open(&c, name, &o));
	o = wb_opts(ENTRIES, TC_MIN_MEMORY - 1, READERS, TC_EVICT_NONE);
	ASSERT_RC(-EINVAL, tc_open(&c, name, &o));
	o = wb_opts(ENTRIES, MEMORY, TC_MAX_READERS + 1, TC_EVICT_NONE);
	ASSERT_RC(-EINVAL, tc_open(&c, name, &o));
	o = wb_opts(ENTRIES, MEMORY, READERS, 5);
	ASSERT_RC(-EINVAL, tc_open(&c, name, &o));
	o = wb_opts(ENTRIES, MEMORY, READERS, TC_EVICT_NONE);
	o.flags |= 0x100;
	ASSERT_RC(-EINVAL, tc_open(&c, name, &o));
	/* Nothing was left behind by the refusals. */
	ASSERT_RC(-ENOENT, tc_unlink(name));
	/* 64 characters is the longest valid name. */
	char longest[65];
	memset(longest, 'a', 64);
	longest[64] = '\0';
	snprintf(longest, 20, "wb-l%d-", (int)getpid());
	longest[strlen(longest)] = 'a';
	assert_int_equal(strlen(longest), 64);
	tc_cache *d = wb_create(longest, ENTRIES, MEMORY, READERS, TC_EVICT_NONE);
	tc_close(d);
	ASSERT_RC(0, tc_unlink(longest));
}

/*
 * fork() while another thread holds the process registry's mutex (tc_open,
 * tc_close and thread exit take it): the child must still be able to open
 * its own handle, as the documentation tells it to.  A child that hangs is
 * killed by alarm() and counted.
 */
struct churn_arg {
	const char *name;
	int stop;
};

static void *open_close_churn(void *p)
{
	struct churn_arg *a = p;
	while (!__atomic_load_n(&a->stop, __ATOMIC_RELAXED)) {
		tc_cache *c = NULL;
		if (tc_open(&c, a->name, NULL) == 0) {
			char buf[4];
			(void)tc_get(c, "k", 1, buf, sizeof(buf), NULL);
			tc_close(c);
		}
	}
	return NULL;
}

/* Sanitizer runtimes are slow to fork (ASan) or do not support fork() from a
 * multi-threaded process (TSan may deadlock in the child): fewer or none. */
#if defined(__SANITIZE_THREAD__)
#define FORKS 0
#elif defined(__SANITIZE_ADDRESS__)
#define FORKS 200
#else
#define FORKS 1000
#endif

static void test_child_forked_during_open_close_can_open(void **state)
{
	(void)state;
	if (FORKS == 0) {
		skip();
		return;
	}
	char name[64];
	fx_name(name);
	/* Many reader slots: tc_close walks them all under the mutex. */
	tc_cache *c = wb_create(name, ENTRIES, MEMORY, 4096, TC_EVICT_NONE);
	struct churn_arg a = { .name = name };
	pthread_t th[2];
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&th[i], NULL, open_close_churn, &a), 0);
	int hung = 0, failed = 0;
	for (int i = 0; i < FORKS; i++) {
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			alarm(getenv("WB_FORK_ALARM") ? (unsigned)atoi(getenv("WB_FORK_ALARM")) : 2);
			tc_cache *cc = NULL;
			int orc = tc_open(&cc, name, NULL);
			if (orc) {
				fprintf(stderr, "child tc_open: %s\n", tc_strerror(orc));
				_exit(2);
			}
			char buf[4];
			(void)tc_get(cc, "k", 1, buf, sizeof(buf), NULL);
			tc_close(cc);
			_exit(0);
		}
		int st = fx_wait(pid);
		hung += st == 128 + SIGALRM;
		failed += st != 0 && st != 128 + SIGALRM;
		if (st != 0 && st != 128 + SIGALRM && failed <= 3)
			print_message("child status %d\n", st);
	}
	__atomic_store_n(&a.stop, 1, __ATOMIC_RELAXED);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	uint32_t cl;
	ASSERT_RC(0, tc_readers_clean(c, &cl));
	tc_close(c);
	tc_unlink(name);
	if (hung || failed)
		fail_msg("%d of %d children forked while other threads open/close handles "
			 "hung in the library (a lock held at fork time), %d failed", hung, FORKS,
			 failed);
}

/*
 * A cleaner that cannot read /proc/PID/stat of a live reader (mounted with
 * hidepid=2 and another uid: kill(pid, 0) says EPERM, /proc says ENOENT)
 * must not take it for dead: clearing a live reader's slot lets memory be
 * freed under its read section.  Needs root (mount namespace, setuid);
 * skipped otherwise.
 */
static void test_reader_hidden_from_cleaner_by_hidepid_stays(void **state)
{
	(void)state;
	if (geteuid() != 0) {
		skip();
		return;
	}
	char name[64];
	fx_name(name);
	tc_opts o = wb_opts(ENTRIES, MEMORY, READERS, TC_EVICT_NONE);
	o.mode = 0666;
	tc_cache *c = NULL;
	tc_unlink(name);
	ASSERT_RC(0, tc_open(&c, name, &o));
	int p[2];
	assert_int_equal(pipe(p), 0);
	pid_t reader = fork();
	assert_true(reader >= 0);
	if (reader == 0) {
		tc_cache *r = NULL;
		char ch = 'r';
		if (tc_open(&r, name, NULL) || tc_read_lock(r) || write(p[1], &ch, 1) != 1)
			_exit(2);
		for (;;)
			pause();
	}
	char ch;
	assert_int_equal(read(p[0], &ch, 1), 1);
	pid_t cleaner = fork();
	assert_true(cleaner >= 0);
	if (cleaner == 0) {
		if (unshare(CLONE_NEWNS) || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) ||
		    mount("proc", "/proc", "proc", 0, "hidepid=2"))
			_exit(77); /* no namespaces here: cannot test */
		if (setgid(65534) || setuid(65534))
			_exit(78);
		tc_cache *x = NULL;
		uint32_t cl = 0;
		if (tc_open(&x, name, NULL) || tc_readers_clean(x, &cl))
			_exit(3);
		_exit(cl == 0 ? 0 : 1);
	}
	int st = fx_wait(cleaner);
	int owned = wb_slots_owned(c);
	kill(reader, SIGKILL);
	fx_wait(reader);
	close(p[0]);
	close(p[1]);
	uint32_t cl;
	ASSERT_RC(0, tc_readers_clean(c, &cl));
	tc_close(c);
	tc_unlink(name);
	if (st == 77 || st == 78) {
		skip();
		return;
	}
	if (st != 0 || owned != 1)
		fail_msg("a cleaner that cannot read /proc of a live reader cleared its slot "
			 "(cleaner exit %d, reader slots left %d, want 1)", st, owned);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		FX_TEST(test_bad_header_fields_are_refused),
		FX_TEST(test_a_segment_of_layout_13_is_refused),
		FX_TEST(test_wrong_object_size_is_corrupt),
		FX_TEST(test_half_built_segment_is_corrupt_for_attachers),
		FX_TEST(test_marked_segment_left_by_a_dead_unlinker_is_absent),
		FX_TEST(test_geometry_mismatch_is_egeometry),
		FX_TEST(test_mode_is_applied_exactly),
		FX_TEST(test_attach_records_of_exited_process_are_cleared),
		FX_TEST(test_racing_creators_build_once),
		FX_TEST(test_header_scribbled_after_attach_is_not_trusted),
		FX_TEST(test_unlinked_segment_gives_estale_to_attached_handles),
		FX_TEST(test_bad_names_and_opts_are_einval),
		FX_TEST(test_child_forked_during_open_close_can_open),
		FX_TEST(test_reader_hidden_from_cleaner_by_hidepid_stays),
	};
	return fx_run(tests);
}
