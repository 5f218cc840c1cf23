/* SPDX-License-Identifier: MIT */
/*
 * fuzz_snapshot.c - libFuzzer harness: the snapshot loader.
 *
 * An input is a mode byte and a snapshot file.  The file's XXH3 checksum
 * would stop nearly every mutation at the first check, so with mode bit 0
 * the harness writes the right checksum into the trailer (when the file is
 * long enough to have one) and the record walk behind it is reached; with
 * bit 1 it also writes both magics.  Bit 2 loads with TC_SNAP_REPLACE.
 * The file goes through tc_snapshot_stat and tc_snapshot_load into a small
 * LRU segment (so loads never stop on -ENOSPC), which is then purged.
 *
 * Oracles besides crashes: stat and load agree on whether the file is
 * valid; a valid load reports no more records than the file holds; and a
 * file of a valid load saved again and loaded again gives the same keys.
 */
#include <fcntl.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "fuzz_common.h"

#define SNAP_MAX_INPUT (1u << 20)

static char seg_name[TC_NAME_MAX + 1];
static char path[256];
static tc_cache *c;
static uint8_t *buf;

static void at_exit(void)
{
	if (c)
		tc_close(c);
	tc_unlink(seg_name);
	unlink(path);
}

static void die(const char *what, int rc)
{
	fprintf(stderr, "fuzz_snapshot: %s: %d (%s)\n", what, rc, tc_strerror(rc));
	exit(2);
}

static void write_seeds(const char *dir);

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	snprintf(seg_name, sizeof(seg_name), "fzsnap%d", (int)getpid());
	snprintf(path, sizeof(path), "%s/tcfuzz-%d.snapin", fz_tmpdir(), (int)getpid());
	atexit(at_exit);
	tc_unlink(seg_name);
	tc_opts o = { .max_entries = 64, .memory_bytes = 64 * 1024, .max_readers = 2,
		      .eviction = TC_EVICT_LRU, .flags = TC_CREATE | TC_EXCL };
	int rc = tc_open(&c, seg_name, &o);
	if (rc)
		die("tc_open", rc);
	buf = malloc(SNAP_MAX_INPUT);
	if (!buf)
		die("malloc", -ENOMEM);
	const char *seeds = getenv("TC_FUZZ_SEED_DIR");
	if (seeds && *seeds) {
		write_seeds(seeds);
		exit(0);
	}
	return 0;
}

/* Keys counted by tc_scan: all, and those that may expire within the
 * next minute (a fuzzed expiry can be "now": such a key may be gone by the
 * next call, which is no broken promise). */
struct count {
	uint64_t all, near;
	int64_t horizon;
};

static int count_fn(const void *key, size_t klen, const tc_meta *m, void *arg)
{
	struct count *n = arg;
	(void)key;
	if (klen < 1 || klen > TC_KEY_MAX)
		fz_fail("tc_scan: key length %zu", klen);
	n->all++;
	if (m->expires_ms != 0 && m->expires_ms <= n->horizon)
		n->near++;
	return 0;
}

static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size - 1 > SNAP_MAX_INPUT)
		return 0;
	uint8_t mode = data[0];
	size_t n = size - 1;
	memcpy(buf, data + 1, n);
	if ((mode & 2) && n >= 64 + 24) {
		memcpy(buf, "TCSNAP01", 8);
		memcpy(buf + n - 24, "TCSNAPND", 8);
	}
	if ((mode & 1) && n >= 24)
		put64(buf + n - 8, XXH3_64bits(buf, n - 24));
	if (fz_write_file(path, buf, n))
		die("write", -errno);

	tc_snapshot_info info;
	int st = fz_rc(tc_snapshot_stat(path, &info));
	tc_snapshot_report rep;
	unsigned flags = (mode & 4) ? TC_SNAP_REPLACE : 0;
	int rc = fz_rc(tc_snapshot_load(c, path, flags, &rep));
	/* stat and load read the file alike; only the writes may fail. */
	bool st_ok = st == 0, ld_ok = rc == 0 || rc == -ENOSPC || rc == -EMSGSIZE;
	if (st_ok != ld_ok && !(st_ok && rc != TC_ECORRUPT && rc != TC_EVERSION))
		fz_fail("tc_snapshot_stat %d but tc_snapshot_load %d", st, rc);
	if (st == 0 && rep.keys + rep.expired + rep.kept > info.keys)
		fz_fail("load reports %llu + %llu + %llu records of %llu",
			(unsigned long long)rep.keys, (unsigned long long)rep.expired,
			(unsigned long long)rep.kept, (unsigned long long)info.keys);
	if (rc == 0 && (mode & 8)) {
		/* Round trip: what was loaded saves and loads back whole. */
		struct count before = { 0, 0, tc_now_ms() + 60000 }, after = before;
		fz_rc(tc_scan(c, NULL, count_fn, &before));
		tc_snapshot_report sr, lr;
		if (fz_rc(tc_snapshot_save(c, path, &sr)) == 0) {
			/* Every key is saved but those expiring meanwhile. */
			if (sr.keys > before.all || sr.keys + before.near < before.all)
				fz_fail("saved %llu keys of %llu (%llu near their expiry)",
					(unsigned long long)sr.keys, (unsigned long long)before.all,
					(unsigned long long)before.near);
			fz_rc(tc_purge(c, NULL, NULL));
			if (fz_rc(tc_snapshot_load(c, path, 0, &lr)) == 0) {
				fz_rc(tc_scan(c, NULL, count_fn, &after));
				if (after.all + lr.expired > sr.keys ||
				    after.all + lr.expired + before.near < sr.keys)
					fz_fail("round trip: %llu keys saved, then %llu (+%llu expired, "
						"%llu near their expiry)",
						(unsigned long long)sr.keys,
						(unsigned long long)after.all,
						(unsigned long long)lr.expired,
						(unsigned long long)before.near);
			}
		}
	}
	fz_rc(tc_purge(c, NULL, NULL));
	return 0;
}

/* Seeds: snapshots of a few segments saved by the library itself. */
static void write_seeds(const char *dir)
{
	for (int g = 0; g < 3; g++) {
		tc_purge(c, NULL, NULL);
		for (int i = 0; i < 4 * g + 1; i++) {
			char k[32], v[64];
			int kl = snprintf(k, sizeof(k), "key%d", i);
			int vl = snprintf(v, sizeof(v), "value %d of seed %d", i, g);
			tc_set(c, k, (size_t)kl, v, (size_t)(vl * (i % 3)), (uint32_t)i,
			       i % 2 ? 600000 : 0);
		}
		tc_snapshot_report r;
		int rc = tc_snapshot_save(c, path, &r);
		if (rc)
			die("tc_snapshot_save", rc);
		FILE *f = fopen(path, "rb");
		size_t n = f ? fread(buf + 1, 1, SNAP_MAX_INPUT - 1, f) : 0;
		if (f)
			fclose(f);
		buf[0] = (uint8_t)(g == 2 ? 0x0b : 0x01);
		char out[512];
		snprintf(out, sizeof(out), "%s/snapshot-%d", dir, g);
		if (fz_write_file(out, buf, n + 1))
			die("write seed", -errno);
	}
	tc_purge(c, NULL, NULL);
}
