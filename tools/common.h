/* SPDX-License-Identifier: MIT */
/*
 * common.h - what the tickcache tools share (shm-inspect, shm-sweeper,
 * shm-bridge, shm-bench, tc-demo): usage errors and the mapping of library
 * return codes to exit codes, the segments in /dev/shm, number, size and
 * duration parsing, a compact JSON writer and JSON string escaping, hex and
 * printable checks, human sizes and durations.
 *
 * The code is in tools/common.c, and tools/common_metrics.c for the
 * Prometheus exposition; the Makefile links both into every tool (as
 * build/libtctools.a).
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


/* ---- Usage errors ------------------------------------------------- */

/* The tool's name in messages; each tool sets it first thing in main. */
extern const char *tool_name;

/* usage_error - "TOOL: message" and a pointer to --help on stderr (the full
 * usage only comes with --help); returns EX_TC_USAGE, the exit code. */
int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- Segments in /dev/shm ----------------------------------------- */

/* The size of a buffer for seg_path. */
#define TC_SEG_PATH_MAX (sizeof TC_SHM_DIR + sizeof TC_SHM_PREFIX + TC_NAME_MAX + 2)

/* seg_path - /dev/shm/tickcache.NAME into BUF (TC_SEG_PATH_MAX bytes will do). */
const char *seg_path(char *buf, size_t cap, const char *name);

/*
 * seg_names - the names of the segments in /dev/shm (those matching the
 * fnmatch pattern GLOB, when not NULL), valid names only, sorted, in an
 * array ended by NULL; their number in *COUNT.  NULL (with errno) when
 * /dev/shm cannot be read.  Free with seg_names_free.  Thread-safe.
 */
char **seg_names(const char *glob, size_t *count);
void seg_names_free(char **names);

/* ---- Numbers, strings, time -------------------------------------- */

/*
 * exit_for_rc - the exit code for a failed library call.  Bad input is a
 * usage error, a miss is "not found", -EBUSY/-EEXIST are refusals, and
 * everything else concerns the segment.
 */
int exit_for_rc(int rc);

/* create_like_snapshot - create segment NAME (it must not exist) with a snapshot's geometry. */
int create_like_snapshot(tc_cache **c, const char *name, const tc_snapshot_info *info);

/* parse_u64 - a whole decimal (or 0x hex) number; false on junk or overflow. */
bool parse_u64(const char *s, uint64_t *out);

/*
 * parse_size - a byte count with an optional K, M, G or T suffix (powers of
 * 1024, case-insensitive, an optional trailing 'B' or 'iB').
 */
bool parse_size(const char *s, uint64_t *out);

/* The longest duration the tools accept: 100 years.  Anything longer is
 * almost always a negative number that wrapped around (2^64 - 5). */
#define TOOL_MS_MAX (100ull * 31557600000ull)

/*
 * parse_ms - a duration in milliseconds; plain numbers are milliseconds,
 * the suffixes ms, s, m and h are accepted; at most TOOL_MS_MAX.
 */
bool parse_ms(const char *s, uint64_t *out);

/*
 * hit_rate - hits / (hits + misses) in 0..1, computed in floating point so
 * that counters scribbled or near 2^64 can never make it exceed 1 (the sum
 * of two 64-bit counters wraps); 0 when there was no lookup.
 */
double hit_rate(uint64_t hits, uint64_t misses);

/* proc_comm - the command name of PID (/proc/PID/comm) into BUF, "?" when
 * the process is gone or hidden. */
const char *proc_comm(uint32_t pid, char *buf, size_t cap);

/* fmt_size - "512B", "1.5K", "64.0M": a human size into BUF. */
const char *fmt_size(char *buf, size_t cap, uint64_t v);

/* fmt_duration - "45s", "12m03s", "3h02m", "5d04h" from milliseconds. */
const char *fmt_duration(char *buf, size_t cap, uint64_t ms);

/* utf8_seq - length of the valid UTF-8 multi-byte sequence at P, else 0. */
size_t utf8_seq(const unsigned char *p, size_t n);

/*
 * utf8_text - true when BUF is valid UTF-8 without control characters other
 * than tab, newline and carriage return: safe to print as text.
 */
bool utf8_text(const unsigned char *p, size_t n);

/* print_hex - lowercase hex of N bytes, no separators. */
void print_hex(FILE *f, const void *buf, size_t n);

/* parse_hex - decode an even-length hex string into BUF (malloc'd). */
bool parse_hex(const char *s, unsigned char **out, size_t *len);

/*
 * json_str - write BUF as a JSON string.  Printable ASCII and valid UTF-8
 * sequences pass through; '"' and '\\' and the usual control characters get
 * their short escapes; every other byte (other controls, 0x7f, and bytes
 * that are not part of valid UTF-8) becomes \u00XX, its Latin-1 code point.
 * The result is always valid JSON.
 */
void json_str(FILE *f, const void *buf, size_t n);

/* json_cstr - a NUL-terminated string as a JSON string. */
void json_cstr(FILE *f, const char *s);

/* ---- A compact JSON writer: one document per line, on stdout ---------- */

/*
 * Every call takes the member's key, or NULL inside an array (and for the
 * top-level document); the writer puts the commas.  A document ends with a
 * newline when its outermost object or array closes.
 */
void jobj(const char *k);
void jobj_end(void);
void jarr(const char *k);
void jarr_end(void);
void ju64(const char *k, uint64_t v);
void ji64(const char *k, int64_t v);
void jdbl(const char *k, double v);     /* %.6g; null when not finite */
void jbool(const char *k, bool v);
void jnull(const char *k);
void jstr(const char *k, const char *s);    /* null for NULL */
void jbytes(const char *k, const void *p, size_t n);
/* jkey - the comma and the key of a member whose value the caller prints. */
void jkey(const char *k);
/* jreset - forget a document left open (before an error document). */
void jreset(void);

/* ---- Printing, time, snapshots -------------------------------------- */

/*
 * print_key - a key for a human table: printable ASCII and valid UTF-8 as
 * they are, every other byte (and the backslash) as \xHH.  Returns the
 * number of columns printed (one per character).
 */
int print_key(FILE *f, const void *key, size_t n);

/* mono_ns - CLOCK_MONOTONIC nanoseconds. */
uint64_t mono_ns(void);

/* sleep_ms - sleep, returning early (with EINTR) when a signal arrives. */
void sleep_ms(uint64_t ms);

/*
 * snap_damage - what is wrong with the snapshot file PATH that
 * tc_snapshot_stat or tc_snapshot_load found damaged (TC_ECORRUPT), in
 * words, into BUF: not a regular file, empty, truncated, not a snapshot,
 * no end marker (cut short or appended to), or damaged contents (the
 * checksum or the records do not add up).  The layout is the one of
 * docs/design.md, "Snapshots": a 64-byte header starting "TCSNAP01", the
 * records, a 24-byte trailer starting "TCSNAPND".
 */
const char *snap_damage(const char *path, char *buf, size_t cap);

/*
 * metrics_write - the Prometheus text exposition of segments NAMES[0..N-1]
 * to F (tools/common_metrics.c).  A segment that cannot be read shows as
 * tickcache_up 0.  Returns 0, -ENOMEM or -EIO (a write to F failed).
 */
int metrics_write(FILE *f, char *const *names, size_t n);

#endif /* TC_TOOLS_COMMON_H */
