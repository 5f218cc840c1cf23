/* SPDX-License-Identifier: MIT */
/*
 * common.h - small helpers shared by the tickcache tools (shm-inspect,
 * shm-sweeper, tc-demo): number and size parsing with K/M/G suffixes,
 * duration parsing, JSON string escaping, hex and printable checks, and
 * the mapping of library return codes to the tools' exit codes.
 *
 * Everything here is static inline so that each tool stays a single
 * translation unit and unused helpers cost nothing.
 */
#ifndef TC_TOOLS_COMMON_H
#define TC_TOOLS_COMMON_H

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>

#include "tickcache.h"

/* Exit codes shared by shm-inspect and shm-sweeper (documented in the man pages). */
#define EX_TC_OK       0  /* success */
#define EX_TC_NOTFOUND 1  /* a missing segment or key */
#define EX_TC_USAGE    2  /* bad arguments */
#define EX_TC_SEGMENT  3  /* segment error: corrupt, incompatible, full, denied, ... */
#define EX_TC_INUSE    4  /* refused because the segment is in use */

/* Directory where POSIX shared memory objects live, and our prefix there. */
#define TC_SHM_DIR    "/dev/shm"
#define TC_SHM_PREFIX "tickcache."

/*
 * exit_for_rc - the exit code for a failed library call.  Bad input is a
 * usage error, a miss is "not found", -EBUSY/-EEXIST are refusals, and
 * everything else concerns the segment.
 */
/* Print "PROG: message" and a pointer to --help on stderr (the full usage
 * only comes with --help); the exit code for bad usage.  Each tool wraps it
 * with its own name.  USAGE is unused: kept so that callers stay one line. */
static inline int usage_verror(const char *prog, const char *usage, const char *fmt, va_list ap)
{
	(void)usage;
	fprintf(stderr, "%s: ", prog);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	fprintf(stderr, "Try '%s --help' for the usage.\n", prog);
	return EX_TC_USAGE;
}

static inline int exit_for_rc(int rc)
{
	switch (rc) {
	case 0:
		return EX_TC_OK;
	case -ENOENT:
	case -ESTALE:   /* the segment was unlinked under an open handle */
	case TC_ENORUN:
		return EX_TC_NOTFOUND;
	case -EINVAL:
	case -EMSGSIZE:
		return EX_TC_USAGE;
	case -EBUSY:
	case -EEXIST:
		return EX_TC_INUSE;
	default:
		return EX_TC_SEGMENT;
	}
}

/* parse_u64 - a whole decimal (or 0x hex) number; false on junk or overflow. */
/* Create segment NAME (it must not exist) with a snapshot's geometry. */
static inline int create_like_snapshot(tc_cache **c, const char *name,
				       const tc_snapshot_info *info)
{
	tc_opts o;

	memset(&o, 0, sizeof o);
	o.max_entries = info->max_entries;
	o.memory_bytes = info->memory_bytes;
	o.max_readers = info->max_readers;
	o.mode = info->mode & 0777; /* permission bits only, whatever the file says */
	o.default_ttl_ms = info->default_ttl_ms;
	o.eviction = info->eviction;
	o.flags = TC_CREATE | TC_EXCL | TC_TOOL | (info->flags & TC_CHECKSUM);
	return tc_open(c, name, &o);
}

static inline bool parse_u64(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (!s || !*s || *s == '-' || isspace((unsigned char)*s))
		return false;
	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || *end)
		return false;
	*out = v;
	return true;
}

/*
 * parse_size - a byte count with an optional K, M or G suffix (powers of
 * 1024, case-insensitive, an optional trailing 'B' or 'iB').
 */
static inline bool parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;
	uint64_t mul = 1;

	if (!s || !*s || *s == '-' || !isdigit((unsigned char)*s))
		return false;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return false;
	switch (toupper((unsigned char)*end)) {
	case 'K': mul = 1ull << 10; end++; break;
	case 'M': mul = 1ull << 20; end++; break;
	case 'G': mul = 1ull << 30; end++; break;
	case 'T': mul = 1ull << 40; end++; break;
	default: break;
	}
	if (mul > 1 && (*end == 'i' || *end == 'I'))
		end++;
	if (*end == 'B' || *end == 'b')
		end++;
	if (*end)
		return false;
	if (v > UINT64_MAX / mul)
		return false;
	*out = v * mul;
	return true;
}

/* The longest duration the tools accept: 100 years.  Anything longer is
 * almost always a negative number that wrapped around (2^64 - 5). */
#define TOOL_MS_MAX (100ull * 31557600000ull)

/*
 * parse_ms - a duration in milliseconds; plain numbers are milliseconds,
 * the suffixes ms, s, m and h are accepted; at most TOOL_MS_MAX.
 */
static inline bool parse_ms(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;
	uint64_t mul = 1;

	if (!s || !*s || !isdigit((unsigned char)*s))
		return false;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return false;
	if (!strcmp(end, "") || !strcmp(end, "ms"))
		mul = 1;
	else if (!strcmp(end, "s"))
		mul = 1000;
	else if (!strcmp(end, "m"))
		mul = 60000;
	else if (!strcmp(end, "h"))
		mul = 3600000;
	else
		return false;
	if (v > TOOL_MS_MAX / mul)
		return false;
	*out = v * mul;
	return true;
}

/*
 * hit_rate - hits / (hits + misses) in 0..1, computed in floating point so
 * that counters scribbled or near 2^64 can never make it exceed 1 (the sum
 * of two 64-bit counters wraps); 0 when there was no lookup.
 */
static inline double hit_rate(uint64_t hits, uint64_t misses)
{
	double l = (double)hits + (double)misses;

	return l > 0 ? (double)hits / l : 0.0;
}

/* proc_comm - the command name of PID (/proc/PID/comm) into BUF, "?" when
 * the process is gone or hidden. */
static inline const char *proc_comm(uint32_t pid, char *buf, size_t cap)
{
	char path[64];
	FILE *f;

	snprintf(buf, cap, "?");
	snprintf(path, sizeof path, "/proc/%" PRIu32 "/comm", pid);
	f = fopen(path, "re");
	if (!f)
		return buf;
	if (fgets(buf, (int)cap, f))
		buf[strcspn(buf, "\n")] = '\0';
	else
		snprintf(buf, cap, "?");
	fclose(f);
	return buf;
}

/* fmt_size - "512B", "1.5K", "64.0M": a human size into BUF. */
static inline const char *fmt_size(char *buf, size_t cap, uint64_t v)
{
	static const char units[] = "KMGTP";
	double d = (double)v;
	int u = -1;

	if (v < 1024) {
		snprintf(buf, cap, "%" PRIu64 "B", v);
		return buf;
	}
	while (d >= 1024.0 && u < 4) {
		d /= 1024.0;
		u++;
	}
	snprintf(buf, cap, "%.1f%c", d, units[u]);
	return buf;
}

/* fmt_duration - "45s", "12m03s", "3h02m", "5d04h" from milliseconds. */
static inline const char *fmt_duration(char *buf, size_t cap, uint64_t ms)
{
	uint64_t s = ms / 1000;

	if (s < 60)
		snprintf(buf, cap, "%" PRIu64 ".%01" PRIu64 "s", s, (ms % 1000) / 100);
	else if (s < 3600)
		snprintf(buf, cap, "%" PRIu64 "m%02" PRIu64 "s", s / 60, s % 60);
	else if (s < 86400)
		snprintf(buf, cap, "%" PRIu64 "h%02" PRIu64 "m", s / 3600, (s % 3600) / 60);
	else
		snprintf(buf, cap, "%" PRIu64 "d%02" PRIu64 "h", s / 86400, (s % 86400) / 3600);
	return buf;
}

/* utf8_seq - length of the valid UTF-8 multi-byte sequence at P, else 0. */
static inline size_t utf8_seq(const unsigned char *p, size_t n)
{
	size_t k;
	uint32_t cp;

	if ((p[0] & 0xe0) == 0xc0) {
		k = 1; cp = p[0] & 0x1f;
	} else if ((p[0] & 0xf0) == 0xe0) {
		k = 2; cp = p[0] & 0x0f;
	} else if ((p[0] & 0xf8) == 0xf0) {
		k = 3; cp = p[0] & 0x07;
	} else {
		return 0;
	}
	if (k >= n)
		return 0;
	for (size_t j = 1; j <= k; j++) {
		if ((p[j] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[j] & 0x3f);
	}
	if ((k == 1 && cp < 0x80) || (k == 2 && cp < 0x800) || (k == 3 && cp < 0x10000) ||
	    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) || (cp >= 0x80 && cp < 0xa0))
		return 0;
	return k + 1;
}

/*
 * utf8_text - true when BUF is valid UTF-8 without control characters other
 * than tab, newline and carriage return: safe to print as text.
 */
static inline bool utf8_text(const unsigned char *p, size_t n)
{
	size_t i = 0;

	while (i < n) {
		unsigned char c = p[i];
		size_t k;

		if (c < 0x80) {
			if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7f)
				return false;
			i++;
			continue;
		}
		k = utf8_seq(p + i, n - i);
		if (!k)
			return false;
		i += k;
	}
	return true;
}

/* print_hex - lowercase hex of N bytes, no separators. */
static inline void print_hex(FILE *f, const void *buf, size_t n)
{
	const unsigned char *p = buf;

	for (size_t i = 0; i < n; i++)
		fprintf(f, "%02x", p[i]);
}

/* parse_hex - decode an even-length hex string into BUF (malloc'd). */
static inline bool parse_hex(const char *s, unsigned char **out, size_t *len)
{
	size_t n = strlen(s);
	unsigned char *b;

	if (n >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		s += 2;
		n -= 2;
	}
	if (n % 2)
		return false;
	b = malloc(n / 2 + 1);
	if (!b)
		return false;
	for (size_t i = 0; i < n / 2; i++) {
		unsigned int v;
		char two[3] = { s[2 * i], s[2 * i + 1], 0 };

		if (!isxdigit((unsigned char)two[0]) || !isxdigit((unsigned char)two[1]) ||
		    sscanf(two, "%2x", &v) != 1) {
			free(b);
			return false;
		}
		b[i] = (unsigned char)v;
	}
	*out = b;
	*len = n / 2;
	return true;
}

/*
 * json_str - write BUF as a JSON string.  Printable ASCII and valid UTF-8
 * sequences pass through; '"' and '\\' and the usual control characters get
 * their short escapes; every other byte (other controls, 0x7f, and bytes
 * that are not part of valid UTF-8) becomes \u00XX, its Latin-1 code point.
 * The result is always valid JSON.
 */
static inline void json_str(FILE *f, const void *buf, size_t n)
{
	const unsigned char *p = buf;

	fputc('"', f);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = p[i];
		size_t k;

		switch (c) {
		case '"':  fputs("\\\"", f); break;
		case '\\': fputs("\\\\", f); break;
		case '\n': fputs("\\n", f); break;
		case '\r': fputs("\\r", f); break;
		case '\t': fputs("\\t", f); break;
		default:
			if (c >= 0x80 && (k = utf8_seq(p + i, n - i))) {
				fwrite(p + i, 1, k, f);
				i += k - 1;
			} else if (c < 0x20 || c >= 0x7f) {
				fprintf(f, "\\u%04x", c);
			} else {
				fputc(c, f);
			}
		}
	}
	fputc('"', f);
}

/* json_cstr - a NUL-terminated string as a JSON string. */
static inline void json_cstr(FILE *f, const char *s)
{
	json_str(f, s, strlen(s));
}

/*
 * print_key - a key for a human table: printable ASCII and valid UTF-8 as
 * they are, every other byte (and the backslash) as \xHH.  Returns the
 * number of columns printed (one per character).
 */
static inline int print_key(FILE *f, const void *key, size_t n)
{
	const unsigned char *p = key;
	int cols = 0;

	for (size_t i = 0; i < n; i++) {
		size_t k;

		if (p[i] >= 0x80 && (k = utf8_seq(p + i, n - i))) {
			fwrite(p + i, 1, k, f);
			i += k - 1;
			cols++;
		} else if (p[i] < 0x21 || p[i] >= 0x7f || p[i] == '\\') {
			fprintf(f, "\\x%02x", p[i]);
			cols += 4;
		} else {
			fputc(p[i], f);
			cols++;
		}
	}
	return cols;
}

/* mono_ns - CLOCK_MONOTONIC nanoseconds. */
static inline uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* sleep_ms - sleep, returning early (with EINTR) when a signal arrives. */
static inline void sleep_ms(uint64_t ms)
{
	struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/*
 * snap_damage - what is wrong with the snapshot file PATH that
 * tc_snapshot_stat or tc_snapshot_load found damaged (TC_ECORRUPT), in
 * words, into BUF: not a regular file, empty, truncated, not a snapshot,
 * no end marker (cut short or appended to), or damaged contents (the
 * checksum or the records do not add up).  The layout is the one of
 * docs/design.md, "Snapshots": a 64-byte header starting "TCSNAP01", the
 * records, a 24-byte trailer starting "TCSNAPND".
 */
static inline const char *snap_damage(const char *path, char *buf, size_t cap)
{
	unsigned char head[8], tail[8];
	struct stat sb;
	FILE *f;

	if (stat(path, &sb) != 0) {
		snprintf(buf, cap, "%s", strerror(errno));
		return buf;
	}
	if (!S_ISREG(sb.st_mode)) {
		snprintf(buf, cap, "not a regular file (%s)", S_ISDIR(sb.st_mode) ? "a directory" :
			 S_ISFIFO(sb.st_mode) ? "a FIFO" : S_ISCHR(sb.st_mode) || S_ISBLK(sb.st_mode)
			 ? "a device" : S_ISSOCK(sb.st_mode) ? "a socket" : "not a file");
		return buf;
	}
	if (sb.st_size == 0) {
		snprintf(buf, cap, "empty file");
		return buf;
	}
	if (sb.st_size < 64 + 24) {
		snprintf(buf, cap, "truncated: %lld bytes, a snapshot has at least 88",
			 (long long)sb.st_size);
		return buf;
	}
	f = fopen(path, "rbe");
	if (!f || fread(head, 1, 8, f) != 8 || fseeko(f, sb.st_size - 24, SEEK_SET) != 0 ||
	    fread(tail, 1, 8, f) != 8) {
		snprintf(buf, cap, "unreadable: %s", strerror(errno ? errno : EIO));
		if (f)
			fclose(f);
		return buf;
	}
	fclose(f);
	if (memcmp(head, "TCSNAP01", 8))
		snprintf(buf, cap, "not a tickcache snapshot (no TCSNAP01 header)");
	else if (memcmp(tail, "TCSNAPND", 8))
		snprintf(buf, cap, "truncated or appended to: no end marker at the end of its %lld "
			 "bytes", (long long)sb.st_size);
	else
		snprintf(buf, cap, "damaged contents: the checksum or the records do not add up");
	return buf;
}

/*
 * metrics_write - the Prometheus text exposition of segments NAMES[0..N-1]
 * to F (tools/common_metrics.c).  A segment that cannot be read shows as
 * tickcache_up 0.  Returns 0, -ENOMEM or -EIO (a write to F failed).
 */
int metrics_write(FILE *f, char *const *names, size_t n);

#endif /* TC_TOOLS_COMMON_H */
