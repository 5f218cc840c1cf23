/* SPDX-License-Identifier: MIT */
/*
 * test_snapshot.c - tc_snapshot_save / tc_snapshot_load / tc_snapshot_stat.
 *
 * - Round trip: binary keys and values, empty and 1 MiB values, types,
 *   counters, absolute expiries; runs, DTO lists and rate windows are not
 *   saved.
 * - Load skips expired records, keeps present keys unless TC_SNAP_REPLACE,
 *   and stops with the write's code when the segment is full.
 * - A damaged file (any flipped byte, a cut, another version, garbage, a
 *   directory) is refused before anything is written.
 * - Saving is atomic: a failed save leaves the old snapshot and no
 *   temporary file; saving while a writer process rewrites its keys gives
 *   records that are each one whole version (self-checking values).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "tickcache.h"
#include "blackbox.h"
#define XXH_INLINE_ALL
#include <xxhash.h>

static char dir[64];

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/tc-snap-%d", (int)getpid());
	mkdir(dir, 0700);
	return 0;
}

static int teardown(void **state)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char p[400];

	(void)state;
	while (d && (de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
		unlink(p);
	}
	if (d)
		closedir(d);
	rmdir(dir);
	return 0;
}

static const char *path_of(char *buf, size_t n, const char *file)
{
	snprintf(buf, n, "%s/%s", dir, file);
	return buf;
}

#define fresh(name, memory) fx_open((name), 4096, (memory), 16)

static uint64_t entries(tc_cache *c)
{
	tc_stats st;

	ASSERT_RC(0, tc_get_stats(c, &st));
	return st.entries;
}

static void expect_val(tc_cache *c, const void *k, size_t kl, const void *v, size_t vl,
		       uint32_t type, int64_t expires)
{
	static unsigned char buf[TC_VALUE_MAX];
	tc_meta m;

	ASSERT_RC(0, tc_get(c, k, kl, buf, sizeof(buf), &m));
	assert_int_equal(m.len, vl);
	assert_int_equal(m.type, type);
	if (vl)
		assert_memory_equal(buf, v, vl);
	if (expires == 0)
		assert_int_equal(m.expires_ms, 0);
	else /* the remaining TTL is re-applied: the expiry moves later by the
	      * time between the load's clock read and the write's (a preempted
	      * test on a loaded machine: up to seconds), earlier only by the
	      * coarse clock's tick */
		assert_true(m.expires_ms >= expires - 5 && m.expires_ms <= expires + 2000);
}

/* ------------------------------------------------------------------ */

static void test_round_trip_keeps_every_key_as_it_was(void **state)
{
	char a[TC_NAME_MAX + 1], b[TC_NAME_MAX + 1], p[160];
	static unsigned char big[TC_VALUE_MAX];
	const unsigned char bkey[] = { 0, 0xff, 'k', 0 };
	tc_snapshot_report rep;
	tc_snapshot_info info;
	tc_meta m;
	int64_t n;
	bool allowed;
	uint64_t cnt;

	(void)state;
	tc_cache *c = fresh(a, 4u << 20), *d;
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (unsigned char)(i * 7);
	ASSERT_RC(0, tc_set(c, "plain", 5, "value", 5, 0, 0));
	ASSERT_RC(0, tc_set(c, bkey, sizeof(bkey), "\0\1\2", 3, 77, 0));
	ASSERT_RC(0, tc_set(c, "empty", 5, "", 0, 3, 0));
	ASSERT_RC(0, tc_set(c, "big", 3, big, sizeof(big), 9, 0));
	ASSERT_RC(0, tc_set(c, "ttl", 3, "t", 1, 0, 600000));
	ASSERT_RC(0, tc_incr(c, "ctr", 3, 41, 0, &n));
	ASSERT_RC(-E2BIG, tc_get(c, "ttl", 3, NULL, 0, &m)); /* meta only */
	int64_t ttl_expires = m.expires_ms;
	/* Not keys: a run with a DTO list, a rate window. */
	ASSERT_RC(0, tc_run_start(c, 1, 1));
	ASSERT_RC(0, tc_dto_append(c, "signals", 7, 5, "dto", 3));
	ASSERT_RC(0, tc_rate_limit(c, "api", 3, 10, 60000, &allowed, &cnt));
	tc_stats before, after;
	ASSERT_RC(0, tc_get_stats(c, &before));
	ASSERT_RC(0, tc_snapshot_save(c, path_of(p, sizeof(p), "a.snap"), &rep));
	assert_int_equal(rep.keys, 6);
	/* Saving reads quietly: no hits, misses or ops counted. */
	ASSERT_RC(0, tc_get_stats(c, &after));
	assert_int_equal(after.hits, before.hits);
	assert_int_equal(after.misses, before.misses);
	ASSERT_RC(0, tc_snapshot_stat(p, &info));
	assert_int_equal(info.keys, 6);
	assert_int_equal(info.max_entries, 4096);
	assert_int_equal(info.memory_bytes, 4u << 20);
	assert_int_equal(info.max_readers, 16);
	assert_true(info.saved_ms > 0 && info.saved_ms <= fx_realtime_ms());
	struct stat st;
	assert_int_equal(0, stat(p, &st));
	assert_int_equal(rep.bytes, (uint64_t)st.st_size);
	assert_int_equal(st.st_mode & 0777, 0600);

	d = fresh(b, 4u << 20);
	ASSERT_RC(0, tc_snapshot_load(d, p, 0, &rep));
	assert_int_equal(rep.keys, 6);
	assert_int_equal(rep.expired, 0);
	assert_int_equal(rep.kept, 0);
	assert_int_equal(entries(d), 6);
	expect_val(d, "plain", 5, "value", 5, 0, 0);
	expect_val(d, bkey, sizeof(bkey), "\0\1\2", 3, 77, 0);
	expect_val(d, "empty", 5, "", 0, 3, 0);
	expect_val(d, "big", 3, big, sizeof(big), 9, 0);
	expect_val(d, "ttl", 3, "t", 1, 0, ttl_expires);
	ASSERT_RC(0, tc_incr(d, "ctr", 3, 1, 0, &n)); /* still a counter */
	assert_int_equal(n, 42);
	ASSERT_RC(TC_ENORUN, tc_dto_count(d, "signals", 7, &cnt));
	tc_close(c);
	tc_close(d);
}

static void test_load_skips_expired_and_keeps_present_keys(void **state)
{
	char a[TC_NAME_MAX + 1], p[160];
	tc_snapshot_report rep;

	(void)state;
	tc_cache *c = fresh(a, 1u << 20);
	ASSERT_RC(0, tc_set(c, "short", 5, "s", 1, 0, 40));
	ASSERT_RC(0, tc_set(c, "k", 1, "old", 3, 0, 0));
	ASSERT_RC(0, tc_set(c, "j", 1, "jj", 2, 0, 0));
	ASSERT_RC(0, tc_snapshot_save(c, path_of(p, sizeof(p), "b.snap"), &rep));
	assert_int_equal(rep.keys, 3);
	fx_sleep_ms(80);
	ASSERT_RC(0, tc_set(c, "k", 1, "new", 3, 0, 0));
	ASSERT_RC(0, tc_del(c, "j", 1));
	ASSERT_RC(0, tc_snapshot_load(c, p, 0, &rep));
	assert_int_equal(rep.expired, 1);
	assert_int_equal(rep.kept, 1);
	assert_int_equal(rep.keys, 1);
	expect_val(c, "k", 1, "new", 3, 0, 0); /* present: kept */
	expect_val(c, "j", 1, "jj", 2, 0, 0);  /* absent: loaded */
	ASSERT_RC(-ENOENT, tc_get(c, "short", 5, NULL, 0, NULL));
	ASSERT_RC(0, tc_snapshot_load(c, p, TC_SNAP_REPLACE, &rep));
	assert_int_equal(rep.keys, 2);
	assert_int_equal(rep.kept, 0);
	expect_val(c, "k", 1, "old", 3, 0, 0);
	ASSERT_RC(-EINVAL, tc_snapshot_load(c, p, 0x80, &rep));
	ASSERT_RC(-EINVAL, tc_snapshot_load(c, NULL, 0, &rep));
	ASSERT_RC(-EINVAL, tc_snapshot_load(NULL, p, 0, &rep));
	ASSERT_RC(-EINVAL, tc_snapshot_save(c, "", &rep));
	ASSERT_RC(-EINVAL, tc_snapshot_stat(p, NULL));
	tc_close(c);
}

static void test_load_into_a_full_segment_stops_with_enospc(void **state)
{
	char a[TC_NAME_MAX + 1], b[TC_NAME_MAX + 1], p[160];
	static unsigned char v[16384];
	tc_snapshot_report rep;

	(void)state;
	tc_cache *c = fresh(a, 2u << 20);
	for (unsigned i = 0; i < 64; i++) {
		char k[16];
		size_t kl = bb_key(k, sizeof(k), "v", i);
		ASSERT_RC(0, tc_set(c, k, kl, v, sizeof(v), 0, 0));
	}
	ASSERT_RC(0, tc_snapshot_save(c, path_of(p, sizeof(p), "c.snap"), &rep));
	tc_opts o = fx_opts(4096, 256u << 10, 16); /* room for fewer than 16 */
	tc_cache *d = NULL;
	fx_name(b);
	ASSERT_RC(0, tc_open(&d, b, &o));
	ASSERT_RC(-ENOSPC, tc_snapshot_load(d, p, 0, &rep));
	assert_true(rep.keys > 0 && rep.keys < 64);
	assert_int_equal(entries(d), rep.keys);
	tc_close(c);
	tc_close(d);
}

/* Write BYTES over the file at OFF. */
static void poke(const char *p, off_t off, const void *bytes, size_t n)
{
	int fd = open(p, O_WRONLY);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, bytes, n, off), (ssize_t)n);
	close(fd);
}

static void copy_file(const char *from, const char *to, off_t len)
{
	static unsigned char buf[1 << 16];
	int a = open(from, O_RDONLY), b = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	ssize_t n;
	off_t done = 0;

	assert_true(a >= 0 && b >= 0);
	while (done < len && (n = read(a, buf, sizeof(buf))) > 0) {
		if (n > len - done)
			n = len - done;
		assert_int_equal(write(b, buf, (size_t)n), n);
		done += n;
	}
	close(a);
	close(b);
}

static void test_damaged_files_are_refused_before_any_write(void **state)
{
	char a[TC_NAME_MAX + 1], b[TC_NAME_MAX + 1], p[160], q[160];
	tc_snapshot_report rep;
	tc_snapshot_info info;
	struct stat st;

	(void)state;
	tc_cache *c = fresh(a, 1u << 20), *d = fresh(b, 1u << 20);
	for (unsigned i = 0; i < 50; i++) {
		char k[16], v[32];
		size_t kl = bb_key(k, sizeof(k), "k", i);
		int vl = snprintf(v, sizeof(v), "value-%u", i);
		ASSERT_RC(0, tc_set(c, k, kl, v, (size_t)vl, 0, 0));
	}
	ASSERT_RC(0, tc_snapshot_save(c, path_of(p, sizeof(p), "d.snap"), &rep));
	assert_int_equal(0, stat(p, &st));
	path_of(q, sizeof(q), "d.bad");
	/* Every single flipped byte is caught (header, records, trailer). */
	for (off_t off = 0; off < st.st_size; off += 7) {
		unsigned char x;
		copy_file(p, q, st.st_size);
		int fd = open(q, O_RDONLY);
		assert_int_equal(pread(fd, &x, 1, off), 1);
		close(fd);
		x ^= 0x10;
		poke(q, off, &x, 1);
		int rc = tc_snapshot_load(d, q, 0, &rep);
		if (rc != TC_ECORRUPT && rc != TC_EVERSION)
			fail_msg("byte %lld flipped: load returned %d", (long long)off, rc);
		assert_int_equal(rep.keys, 0);
	}
	assert_int_equal(entries(d), 0);
	/* Cut short anywhere. */
	for (off_t len = 0; len < st.st_size; len += 13) {
		copy_file(p, q, len);
		ASSERT_RC(TC_ECORRUPT, tc_snapshot_load(d, q, 0, &rep));
	}
	/* A damaged version field is damage; a whole file of another
	 * version (checksum recomputed) is another format. */
	copy_file(p, q, st.st_size);
	unsigned char v2[4] = { 2, 0, 0, 0 };
	poke(q, 8, v2, 4);
	ASSERT_RC(TC_ECORRUPT, tc_snapshot_stat(q, &info));
	{
		unsigned char *all = malloc((size_t)st.st_size), sum[8];
		int fd = open(q, O_RDONLY);
		assert_int_equal(read(fd, all, (size_t)st.st_size), st.st_size);
		close(fd);
		uint64_t h = XXH3_64bits(all, (size_t)st.st_size - 24);
		for (int i = 0; i < 8; i++)
			sum[i] = (unsigned char)(h >> (8 * i));
		poke(q, st.st_size - 8, sum, 8);
		free(all);
	}
	ASSERT_RC(TC_EVERSION, tc_snapshot_stat(q, &info));
	/* A FIFO named like a snapshot: refused at once, never waited on. */
	path_of(q, sizeof(q), "fifo.snap");
	assert_int_equal(0, mkfifo(q, 0600));
	ASSERT_RC(TC_ECORRUPT, tc_snapshot_load(d, q, 0, &rep));
	unlink(q);
	path_of(q, sizeof(q), "d.bad");
	/* Garbage, a directory, nothing. */
	copy_file("/dev/urandom", q, 4096);
	ASSERT_RC(TC_ECORRUPT, tc_snapshot_load(d, q, 0, &rep));
	ASSERT_RC(TC_ECORRUPT, tc_snapshot_load(d, dir, 0, &rep));
	ASSERT_RC(-ENOENT, tc_snapshot_load(d, path_of(q, sizeof(q), "none.snap"), 0, &rep));
	assert_int_equal(entries(d), 0);
	/* The intact file still loads. */
	ASSERT_RC(0, tc_snapshot_load(d, p, 0, &rep));
	assert_int_equal(rep.keys, 50);
	tc_close(c);
	tc_close(d);
}

static void test_failed_save_leaves_the_old_snapshot(void **state)
{
	char a[TC_NAME_MAX + 1], p[160], q[200];
	tc_snapshot_report rep;
	tc_snapshot_info info;

	(void)state;
	tc_cache *c = fresh(a, 1u << 20);
	ASSERT_RC(0, tc_set(c, "one", 3, "1", 1, 0, 0));
	ASSERT_RC(0, tc_snapshot_save(c, path_of(p, sizeof(p), "e.snap"), &rep));
	ASSERT_RC(0, tc_set(c, "two", 3, "2", 1, 0, 0));
	/* A directory where the file should go: the rename fails. */
	snprintf(q, sizeof(q), "%s/sub", dir);
	assert_int_equal(0, mkdir(q, 0700));
	snprintf(q, sizeof(q), "%s/sub/x", dir);
	assert_int_equal(0, mkdir(q, 0700));
	int rc = tc_snapshot_save(c, q, &rep);
	assert_true(rc == -EISDIR || rc == -ENOTEMPTY || rc == -EEXIST);
	rmdir(q);
	snprintf(q, sizeof(q), "%s/sub", dir);
	DIR *d = opendir(q);
	struct dirent *de;
	int left = 0;
	while ((de = readdir(d)) != NULL)
		left += de->d_name[0] != '.';
	closedir(d);
	assert_int_equal(left, 0); /* no temporary file left behind */
	rmdir(q);
	ASSERT_RC(-ENOENT, tc_snapshot_save(c, "/nonexistent-dir/x.snap", &rep));
	/* Links planted where a temporary file might go are never followed:
	 * the temporary name is random and created exclusively. */
	char victim[200], link[260];
	snprintf(victim, sizeof(victim), "%s/victim", dir);
	FILE *vf = fopen(victim, "w");
	fputs("precious", vf);
	fclose(vf);
	for (int i = 0; i < 64; i++) {
		snprintf(link, sizeof(link), "%s.tmp.%d", p, i);
		assert_int_equal(0, symlink(victim, link));
	}
	ASSERT_RC(0, tc_snapshot_save(c, p, &rep));
	vf = fopen(victim, "r");
	char got[16] = { 0 };
	assert_non_null(fgets(got, sizeof(got), vf));
	fclose(vf);
	assert_string_equal(got, "precious");
	for (int i = 0; i < 64; i++) {
		snprintf(link, sizeof(link), "%s.tmp.%d", p, i);
		unlink(link);
	}
	ASSERT_RC(0, tc_snapshot_stat(p, &info));
	assert_int_equal(info.keys, 2);
	tc_close(c);
}

/*
 * A saver killed on the way leaves its temporary file, PATH.tmp.PID.XXXXXX.
 * The next save to PATH removes those whose pid names no process; a live
 * process's (it may be saving now) and names of another form stay.
 */
static void test_save_removes_the_temporary_files_of_dead_savers(void **state)
{
	char a[TC_NAME_MAX + 1], p[160], f[sizeof(p) + 32];
	tc_snapshot_report rep;
	(void)state;
	tc_cache *c = fresh(a, 1u << 20);
	ASSERT_RC(0, tc_set(c, "one", 3, "1", 1, 0, 0));
	path_of(p, sizeof(p), "t.snap");
	pid_t dead = fork();
	if (dead == 0)
		_exit(0);
	assert_true(dead > 0);
	assert_int_equal(waitpid(dead, NULL, 0), dead);
	const char *suffix[] = { "", "", ".tmp.abc.QwE456", ".tmp.12.QwE4567", ".tmp.QwE456" };
	char name[5][32];
	snprintf(name[0], sizeof(name[0]), ".tmp.%d.AbC123", (int)dead);
	snprintf(name[1], sizeof(name[1]), ".tmp.%d.AbC123", (int)getppid());
	for (int i = 2; i < 5; i++)
		snprintf(name[i], sizeof(name[i]), "%s", suffix[i]);
	for (int i = 0; i < 5; i++) {
		assert_true(snprintf(f, sizeof(f), "%s%s", p, name[i]) < (int)sizeof(f));
		FILE *tf = fopen(f, "w");
		assert_non_null(tf);
		fclose(tf);
	}
	ASSERT_RC(0, tc_snapshot_save(c, p, &rep));
	for (int i = 0; i < 5; i++) {
		assert_true(snprintf(f, sizeof(f), "%s%s", p, name[i]) < (int)sizeof(f));
		struct stat st;
		assert_int_equal(stat(f, &st) == 0, i != 0); /* only the dead saver's goes */
		unlink(f);
	}
	unlink(p);
	tc_close(c);
}

/* ------------------------------------------------------------------ */

#define CW_KEYS 64

static void test_saving_during_writes_gives_whole_versions(void **state)
{
	char a[TC_NAME_MAX + 1], b[TC_NAME_MAX + 1], p[160];
	static unsigned char buf[8192];
	tc_snapshot_report rep;

	(void)state;
	tc_cache *c = fresh(a, 8u << 20);
	volatile int *stop = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
				  -1, 0);
	assert_true(stop != MAP_FAILED);
	*stop = 0;
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		tc_cache *w = NULL;
		uint64_t rng = 7, seq = 0;
		if (tc_open(&w, a, NULL) != 0)
			_exit(BB_EXIT_SETUP);
		while (!*stop) {
			unsigned i = (unsigned)(bb_rand(&rng) % CW_KEYS);
			char k[16];
			size_t kl = bb_key(k, sizeof(k), "k", i);
			size_t len = BB_HDR + (size_t)(bb_rand(&rng) % 4000);
			bb_fill(buf, len, i, 0, ++seq);
			if (tc_set(w, k, kl, buf, len, BB_TYPE, 0) != 0)
				_exit(BB_EXIT_FAIL);
		}
		tc_close(w);
		_exit(BB_EXIT_OK);
	}
	tc_cache *d = fresh(b, 8u << 20);
	for (int round = 0; round < 20; round++) {
		ASSERT_RC(0, tc_snapshot_save(c, path_of(p, sizeof(p), "f.snap"), &rep));
		ASSERT_RC(0, tc_purge(d, "*", NULL));
		ASSERT_RC(0, tc_snapshot_load(d, p, 0, &rep));
		for (unsigned i = 0; i < CW_KEYS; i++) {
			char k[16];
			size_t kl = bb_key(k, sizeof(k), "k", i);
			tc_meta m;
			int rc = tc_get(d, k, kl, buf, sizeof(buf), &m);
			if (rc == -ENOENT)
				continue;
			ASSERT_RC(0, rc);
			const char *why = bb_check(buf, m.len, i, 1);
			if (why)
				fail_msg("round %d, k%u: %s", round, i, why);
		}
	}
	*stop = 1;
	assert_int_equal(fx_wait(pid), 0);
	munmap((void *)stop, 4096);
	tc_close(c);
	tc_close(d);
}


int main(void)
{
	const struct CMUnitTest tests[] = {
		FX_TEST(test_round_trip_keeps_every_key_as_it_was),
		FX_TEST(test_load_skips_expired_and_keeps_present_keys),
		FX_TEST(test_save_removes_the_temporary_files_of_dead_savers),
		FX_TEST(test_load_into_a_full_segment_stops_with_enospc),
		FX_TEST(test_damaged_files_are_refused_before_any_write),
		FX_TEST(test_failed_save_leaves_the_old_snapshot),
		FX_TEST(test_saving_during_writes_gives_whole_versions),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
