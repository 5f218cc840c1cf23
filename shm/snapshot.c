/* SPDX-License-Identifier: MIT */
/*
 * snapshot.c - saving a segment's keys to a file and loading them back, so
 * that dedupe marks and cached values survive a host restart.
 *
 * A snapshot holds the segment's geometry and settings and every live
 * ordinary key with its value, type and absolute expiry.  Runs, DTO lists,
 * rate windows and load claims are process-lifetime state and are left out.
 * Saving is a scan (each key read whole, so each record is one version of
 * its key; the set of keys is that of a scan, as with tc_scan), with reads
 * that neither set reference bits nor count hits.  The file is created
 * beside its final name as NAME.tmp.PID.XXXXXX (mkostemp: O_EXCL, mode
 * 0600, never through a symlink), synced, renamed over it, and the
 * directory is synced: a crash leaves the old snapshot or the new one.  A
 * saver killed on the way leaves its temporary file; the next save to the
 * same name removes the ones whose pid is gone (remove_dead_temps), so a
 * saver killed again and again never fills the disk.
 *
 * Format (little-endian; docs/design.md, "Snapshots"):
 *   header  "TCSNAP01", u32 version, u32 flags (SNAP_F_*), u64 max_entries,
 *           u64 memory_bytes, u32 max_readers, u32 mode, u64 default_ttl_ms,
 *           i32 eviction, u32 reserved (0), i64 saved_ms
 *   records u32 "TCRE", u16 klen, u16 reserved (0), u32 vlen, u32 type,
 *           i64 expires_ms, key bytes, value bytes
 *   trailer "TCSNAPND", u64 records, u64 XXH3-64 of every byte before it
 * Loading checks the whole file (magic, version, every length, the record
 * count and the checksum) before it writes a single key.
 */
#include "internal.h"

#include <dirent.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#define XXH_INLINE_ALL
#include <xxhash.h>

#define SNAP_MAGIC   "TCSNAP01"
#define SNAP_END     "TCSNAPND"
#define SNAP_VERSION 1u
#define SNAP_F_CHECKSUM 0x1u /* saved from a TC_CHECKSUM segment: recreate it so */
#define REC_MAGIC    0x45524354u /* "TCRE" */
#define HDR_BYTES    64u
#define REC_BYTES    24u
#define END_BYTES    24u
/* The largest file a load reads: a full arena of the largest segment,
 * with a record header per smallest block (keys are in the arena too). */
#define SNAP_MAX     ((uint64_t)TC_MAX_MEMORY * 3 / 2 + HDR_BYTES + END_BYTES)

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
	tc__le64_put(p, (int64_t)v);
}

static uint32_t get32(const uint8_t *p)
{
	uint32_t v = 0;
	for (int i = 0; i < 4; i++)
		v |= (uint32_t)p[i] << (8 * i);
	return v;
}

static uint64_t get64(const uint8_t *p)
{
	return (uint64_t)tc__le64_get(p);
}

/* ---- saving ---------------------------------------------------------------- */

struct saver {
	tc_cache *c;
	FILE *f;
	XXH3_state_t *xs;
	uint8_t *val;
	uint64_t records, bytes;
	int err;
};

static int out(struct saver *s, const void *p, size_t n)
{
	errno = 0;
	if (n && fwrite(p, 1, n, s->f) != n)
		return errno ? -errno : -EIO; /* -ENOSPC on a full disk */
	XXH3_64bits_update(s->xs, p, n);
	s->bytes += n;
	return 0;
}

static int save_key(const void *key, size_t klen, const tc_meta *meta, void *arg)
{
	struct saver *s = arg;
	tc_meta m;
	(void)meta;
	int rc = tc__get_quiet(s->c, key, klen, s->val, TC_VALUE_MAX, &m);
	if (rc == -ENOENT)
		return 0; /* deleted or expired since the scan saw it */
	if (rc) {
		s->err = rc;
		return 1;
	}
	uint8_t r[REC_BYTES];
	put32(r, REC_MAGIC);
	put32(r + 4, (uint32_t)klen); /* klen <= 512: the reserved half stays 0 */
	put32(r + 8, (uint32_t)m.len);
	put32(r + 12, m.type);
	put64(r + 16, (uint64_t)m.expires_ms);
	if ((rc = out(s, r, REC_BYTES)) || (rc = out(s, key, klen)) ||
	    (rc = out(s, s->val, m.len))) {
		s->err = rc;
		return 1;
	}
	s->records++;
	TC_CRASH_POINT(snapshot_saving);
	return 0;
}

/* The header: the magic, the format and the cache's geometry (INFO). */
static int write_header(struct saver *s, const tc_info *info)
{
	uint8_t h[HDR_BYTES];
	memset(h, 0, sizeof(h));
	memcpy(h, SNAP_MAGIC, 8);
	put32(h + 8, SNAP_VERSION);
	put32(h + 12, (info->flags & TC_CHECKSUM) ? SNAP_F_CHECKSUM : 0);
	put64(h + 16, info->max_entries);
	put64(h + 24, info->memory_bytes);
	put32(h + 32, info->max_readers);
	put32(h + 36, info->mode);
	put64(h + 40, info->default_ttl_ms);
	put32(h + 48, (uint32_t)info->eviction);
	put64(h + 56, (uint64_t)tc__now_ms());
	return out(s, h, HDR_BYTES);
}

/* The trailer: the record count and the hash of everything before it. */
static int write_trailer(struct saver *s)
{
	uint8_t t[END_BYTES];
	memcpy(t, SNAP_END, 8);
	put64(t + 8, s->records);
	put64(t + 16, XXH3_64bits_digest(s->xs));
	int rc = fwrite(t, 1, END_BYTES, s->f) != END_BYTES ? -EIO : 0;
	s->bytes += END_BYTES;
	return rc;
}

/* Header, records, trailer into S's open file. */
static int write_all(struct saver *s, const tc_info *info)
{
	XXH3_64bits_reset(s->xs);
	int rc = write_header(s, info);
	if (!rc) {
		rc = tc_scan(s->c, "*", save_key, s);
		if (rc == 1)
			rc = s->err;
	}
	if (!rc)
		rc = write_trailer(s);
	return rc;
}

/*
 * Close S's file TMP (RC is how writing it went) and, when all went well,
 * rename it over PATH and sync the directory.  TMP is removed on any
 * failure, and is overwritten (it has PLEN + 32 bytes).  0 or -errno.
 */
static int finish_file(struct saver *s, int rc, char *tmp, size_t plen, const char *path)
{
	if (fflush(s->f) != 0 && !rc)
		rc = -errno;
	if (!rc && fsync(fileno(s->f)) != 0)
		rc = -errno;
	if (fclose(s->f) != 0 && !rc)
		rc = -errno;
	if (!rc && rename(tmp, path) != 0)
		rc = -errno;
	if (rc) {
		unlink(tmp);
		return rc;
	}
	/* The rename itself survives a power cut once the directory is
	 * synced; a failure here leaves a whole file either way. */
	snprintf(tmp, plen + 32, "%s", path);
	int dfd = open(dirname(tmp), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		(void)fsync(dfd);
		close(dfd);
	}
	return 0;
}

/*
 * Is NAME "BASE.tmp.PID.XXXXXX" (PID decimal, six characters of mkostemp
 * after it)?  Then the pid, else 0.
 */
static uint32_t temp_pid(const char *name, const char *base, size_t blen)
{
	if (strncmp(name, base, blen) != 0 || strncmp(name + blen, ".tmp.", 5) != 0)
		return 0;
	const char *p = name + blen + 5;
	uint64_t pid = 0;
	size_t digits = 0;
	for (; *p >= '0' && *p <= '9' && digits < 8; p++, digits++)
		pid = pid * 10 + (uint64_t)(*p - '0');
	if (!digits || *p != '.' || strlen(p + 1) != 6 || pid == 0 || pid > TC_PID_MAX_LIMIT)
		return 0;
	return (uint32_t)pid;
}

/*
 * Remove the temporary files that savers killed on the way left beside
 * PATH: those whose pid names no process (kill: ESRCH).  One of a live
 * process, or of a pid reused since, stays for a later save.
 */
static void remove_dead_temps(const char *path)
{
	char *d1 = strdup(path), *d2 = strdup(path);
	DIR *d = NULL;
	if (!d1 || !d2)
		goto out;
	const char *base = basename(d2);
	size_t blen = strlen(base);
	d = opendir(dirname(d1));
	if (!d)
		goto out;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		uint32_t pid = temp_pid(de->d_name, base, blen);
		if (pid && pid != tc__self_pid() && kill((pid_t)pid, 0) == -1 && errno == ESRCH)
			(void)unlinkat(dirfd(d), de->d_name, 0);
	}
out:
	if (d)
		closedir(d);
	free(d1);
	free(d2);
}

int tc_snapshot_save(tc_cache *c, const char *path, tc_snapshot_report *rep)
{
	if (rep)
		memset(rep, 0, sizeof(*rep));
	if (!c || !path || !*path)
		return -EINVAL;
	tc_info info;
	int rc = tc_get_info(c, &info);
	if (rc)
		return rc;
	size_t plen = strlen(path);
	char *tmp = malloc(plen + 32);
	struct saver s = { .c = c, .xs = XXH3_createState(), .val = malloc(TC_VALUE_MAX) };
	if (!tmp || !s.xs || !s.val) {
		rc = -ENOMEM;
		goto out_free;
	}
	remove_dead_temps(path);
	snprintf(tmp, plen + 32, "%s.tmp.%u.XXXXXX", path, tc__self_pid());
	int fd = mkostemp(tmp, O_CLOEXEC); /* O_EXCL, 0600: never an existing file or link */
	if (fd < 0) {
		rc = -errno;
		goto out_free;
	}
	s.f = fdopen(fd, "wb");
	if (!s.f) {
		rc = -errno;
		close(fd);
		unlink(tmp);
		goto out_free;
	}
	rc = finish_file(&s, write_all(&s, &info), tmp, plen, path);
	if (!rc && rep) {
		rep->keys = s.records;
		rep->bytes = s.bytes;
	}
out_free:
	free(tmp);
	free(s.val);
	XXH3_freeState(s.xs);
	return rc;
}

/* ---- loading ---------------------------------------------------------------- */

struct snap {
	uint8_t *buf;
	size_t len;
	uint64_t records;
};

/* Read the whole regular file PATH into a buffer of its own (*BUF, *LEN):
 * 0, -errno, or TC_ECORRUPT (not a regular file, or a size no snapshot
 * has). */
static int read_whole(const char *path, uint8_t **buf, size_t *len)
{
	/* O_NONBLOCK: a FIFO or device named like a snapshot must not hang
	 * the caller (the sweeper at start); only a regular file is read. */
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	struct stat st;
	if (fstat(fd, &st) != 0) {
		int e = -errno;
		close(fd);
		return e;
	}
	if (!S_ISREG(st.st_mode) || st.st_size < (off_t)(HDR_BYTES + END_BYTES) ||
	    (uint64_t)st.st_size > SNAP_MAX || (uint64_t)st.st_size > SIZE_MAX) {
		close(fd);
		return TC_ECORRUPT;
	}
	size_t n = (size_t)st.st_size;
	uint8_t *b = malloc(n);
	if (!b) {
		close(fd);
		return -ENOMEM;
	}
	size_t got = 0;
	while (got < n) {
		ssize_t r = read(fd, b + got, n - got);
		if (r <= 0) {
			int e = r < 0 ? -errno : TC_ECORRUPT;
			if (e == -EINTR)
				continue;
			free(b);
			close(fd);
			return e;
		}
		got += (size_t)r;
	}
	close(fd);
	*buf = b;
	*len = n;
	return 0;
}

/* Check the snapshot B of LEN bytes: magic, trailer, hash, version, header
 * and every record's frame.  0 with its record count in *N, TC_EVERSION,
 * or TC_ECORRUPT. */
static int check_snap(const uint8_t *b, size_t len, uint64_t *n)
{
	const uint8_t *t = b + len - END_BYTES;
	if (memcmp(b, SNAP_MAGIC, 8) != 0 || memcmp(t, SNAP_END, 8) != 0)
		return TC_ECORRUPT;
	if (XXH3_64bits(b, len - END_BYTES) != get64(t + 16))
		return TC_ECORRUPT;
	/* Whole and intact: a version we do not know is another format. */
	if (get32(b + 8) != SNAP_VERSION)
		return TC_EVERSION;
	if ((get32(b + 12) & ~SNAP_F_CHECKSUM) != 0 || get32(b + 52) != 0 ||
	    get32(b + 48) > TC_EVICT_LRU)
		return TC_ECORRUPT;
	uint64_t want = get64(t + 8), k = 0;
	size_t off = HDR_BYTES, end = len - END_BYTES;
	while (off < end) {
		if (end - off < REC_BYTES || get32(b + off) != REC_MAGIC)
			return TC_ECORRUPT;
		uint32_t kl = get32(b + off + 4), vl = get32(b + off + 8);
		if (kl < 1 || kl > TC_KEY_MAX || vl > TC_VALUE_MAX ||
		    end - off - (REC_BYTES) < (size_t)kl + vl)
			return TC_ECORRUPT;
		off += REC_BYTES + kl + vl;
		k++;
	}
	if (k != want)
		return TC_ECORRUPT;
	*n = k;
	return 0;
}

/* Read and check the whole file: TC_ECORRUPT unless every byte adds up. */
static int snap_read(const char *path, struct snap *sn, tc_snapshot_info *info)
{
	memset(sn, 0, sizeof(*sn));
	uint8_t *b = NULL;
	size_t len = 0;
	uint64_t n = 0;
	int rc = read_whole(path, &b, &len);
	if (rc)
		return rc;
	rc = check_snap(b, len, &n);
	if (rc) {
		free(b);
		return rc;
	}
	if (info) {
		memset(info, 0, sizeof(*info));
		info->max_entries = get64(b + 16);
		info->memory_bytes = get64(b + 24);
		info->max_readers = get32(b + 32);
		info->mode = get32(b + 36);
		info->default_ttl_ms = get64(b + 40);
		info->eviction = (int)get32(b + 48);
		info->saved_ms = (int64_t)get64(b + 56);
		info->flags = (get32(b + 12) & SNAP_F_CHECKSUM) ? TC_CHECKSUM : 0;
		info->keys = n;
	}
	sn->buf = b;
	sn->len = len;
	sn->records = n;
	return 0;
}

int tc_snapshot_stat(const char *path, tc_snapshot_info *info)
{
	if (!path || !info)
		return -EINVAL;
	struct snap sn;
	int rc = snap_read(path, &sn, info);
	if (!rc)
		free(sn.buf);
	return rc;
}

int tc_snapshot_load(tc_cache *c, const char *path, unsigned flags, tc_snapshot_report *rep)
{
	if (rep)
		memset(rep, 0, sizeof(*rep));
	if (!c || !path || (flags & ~TC_SNAP_REPLACE))
		return -EINVAL;
	struct snap sn;
	int rc = snap_read(path, &sn, NULL);
	if (rc)
		return rc;
	int64_t now = tc__now_ms();
	size_t off = HDR_BYTES, end = sn.len - END_BYTES;
	while (off < end && !rc) {
		const uint8_t *r = sn.buf + off;
		uint32_t kl = get32(r + 4), vl = get32(r + 8), type = get32(r + 12);
		int64_t exp = (int64_t)get64(r + 16);
		const uint8_t *key = r + REC_BYTES, *val = key + kl;
		off += REC_BYTES + kl + vl;
		if (exp != 0 && exp <= now) {
			if (rep)
				rep->expired++;
			continue;
		}
		uint64_t ttl = exp ? (uint64_t)(exp - now) : 0;
		int w = (flags & TC_SNAP_REPLACE) ? tc_set(c, key, kl, val, vl, type, ttl)
						  : tc_add(c, key, kl, val, vl, type, ttl);
		TC_CRASH_POINT(snapshot_record);
		if (w == -EEXIST) {
			if (rep)
				rep->kept++;
		} else if (w) {
			rc = w;
		} else if (rep) {
			rep->keys++;
			rep->bytes += kl + vl;
		}
	}
	free(sn.buf);
	return rc;
}
