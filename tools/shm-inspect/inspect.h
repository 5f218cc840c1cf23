/* SPDX-License-Identifier: MIT */
/*
 * shm-inspect - the operator's command line for tickcache segments.
 *
 * Every command works through the public API of include/tickcache.h only:
 * it attaches like any other process (tc_open without opts), reads
 * counters, gauges, reader slots and attach records, and changes keys with
 * the same lock-free calls a strategy uses, so running it next to a live
 * strategy is safe.  Every command has a human table by default and a
 * single JSON document with --json (schemas in docs/shm-inspect.1).
 *
 * Exit codes: 0 ok, 1 not found (segment or key), 2 usage, 3 segment error,
 * 4 refused because in use.
 *
 * The files of tools/shm-inspect/:
 *   main.c        options, the command's name, arity and options checked
 *   commands.c    the command table: each command's options to its arguments
 *   errors.c      failures: stderr, the --json error document, exit codes
 *   query.c       processes and reader slots of a segment, names of states
 *   value.c       keys and values as the key commands take and print them
 *   list.c        list, summary, metrics (every segment)
 *   stat.c        stat        keys.c       keys, prefixes, purge
 *   kv.c          get, set, del, mget, incr, expire, exists, ttl NAME KEY
 *   readers.c     readers     health.c     health, audit
 *   lifecycle.c   create, unlink            watch.c      watch
 *   policy.c      ttl policies, runs        snapshot.c   save, load
 *   bus.c         a segment truncated under the running command (SIGBUS)
 * The helpers every tool shares (JSON writer, segment listing, parsing,
 * usage errors) are in tools/common.c.
 */
#ifndef TC_SHM_INSPECT_H
#define TC_SHM_INSPECT_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "tickcache.h"
#include "common.h"

/* Attach without prefaulting the whole mapping: an inspection touches little of it. */
extern const tc_opts lazy_attach;
extern const char *const prog;
/* --json: every command writes one JSON document. */
extern bool g_json;

/* ---- Errors (errors.c) ---------------------------------------------- */

int report(int ex, int rc, const char *reason, const char *msg, bool say_reason);
int fail(int rc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int attach_failed(int rc, const char *name, const char *what);
int open_seg(const char *name, tc_cache **c);
struct counts;
int refuse_in_use(const struct counts *att, const char *msg);

/* ---- Shared queries (query.c) --------------------------------------- */

#define MAX_LISTED 64

struct counts {
	uint32_t n;        /* matching records */
	uint32_t dead;     /* of which dead */
	uint32_t self_pid;
	uint32_t skip_pid; /* a second pid to ignore (sweeper), 0 = none */
	uint32_t listed;   /* entries of pid[] and handles[] filled */
	uint32_t pid[MAX_LISTED];
	uint32_t handles[MAX_LISTED];
	char pids[1024];   /* "pid 123 (strat, 2 handles), ..." for messages */
};

/* A reader in a section this many epochs behind the global one is "stuck". */
#define STUCK_LAG 2

const char *tier_state_name(uint32_t st);
void jattached(const char *key, const struct counts *k);
int other_readers(tc_cache *c, uint32_t *n, uint32_t *dead);
int other_attached(tc_cache *c, uint32_t skip_pid, struct counts *k);
const char *eviction_name(int e);
const char *fmt_time(char *buf, size_t cap, int64_t ms);

/* ---- Keys and values (value.c) -------------------------------------- */

enum vmode { V_AUTO, V_HEX, V_RAW };

int check_key(const char *key);
int64_t ttl_left(int64_t expires_ms);
int64_t counter_value(const unsigned char *buf);
void jvalue(const unsigned char *buf, const tc_meta *m, bool hex);
void jkey_hex(const void *key, size_t klen);

/* ---- Key walks (keys.c) --------------------------------------------- */

struct keyrec {
	unsigned char *key;
	size_t klen;
	tc_meta meta;
};

struct keyset {
	struct keyrec *v;
	size_t n, cap;
	uint64_t limit;   /* 0 = all */
	bool oom;
};

int collect_key(const void *key, size_t klen, const tc_meta *meta, void *arg);
int keyrec_cmp(const void *a, const void *b);
void keyset_free(struct keyset *ks);
int cmd_keys(const char *name, const char *glob, uint64_t limit, bool values);
int cmd_prefixes(const char *name, const char *glob, unsigned depth);
int cmd_purge(const char *name, const char *glob, bool expired, bool all);

/* ---- One key (kv.c) ------------------------------------------------- */

int cmd_get(const char *name, const char *key, enum vmode mode);
int cmd_set(const char *name, const char *key, const char *val, const char *file,
	    bool hex, uint64_t ttl, uint32_t type);
int cmd_mget(const char *name, const char *const *keys, int nkeys);
int cmd_incr(const char *name, const char *key, const char *delta_arg, uint64_t ttl);
int cmd_expire(const char *name, const char *key, const char *ttl_arg);
int cmd_exists(const char *name, const char *key);
int cmd_key_ttl(const char *name, const char *key);
int cmd_del(const char *name, const char *key);

/* ---- wait (wait.c) -------------------------------------------------- */

#define EX_WAIT_TIMEOUT 5 /* wait: nothing newer within --timeout */
int cmd_wait(const char *name, const char *key, uint64_t since, bool has_since,
	     uint64_t timeout);

/* ---- Every segment (list.c) ----------------------------------------- */

int cmd_list(const char *glob);
int cmd_summary(void);
int cmd_metrics(const char *glob);

/* ---- stat (stat.c) -------------------------------------------------- */

int cmd_stat(const char *name);

/* ---- readers (readers.c) -------------------------------------------- */

int cmd_readers(const char *name, bool clean);

/* ---- health, audit (health.c) --------------------------------------- */

int cmd_health(const char *name, bool write);
int cmd_audit(const char *name);

/* ---- create, unlink (lifecycle.c) ----------------------------------- */

int cmd_create(const char *name, const tc_opts *o);
int cmd_unlink(const char *name, bool force);

/* ---- watch (watch.c) ------------------------------------------------ */

int cmd_watch(const char *name, uint64_t interval, uint64_t count);

/* ---- ttl policies, runs (policy.c) ---------------------------------- */

int cmd_ttl(const char *name, const char *prefix, const char *ms_arg, bool del,
	    const char *load);
int cmd_runs(const char *name, bool end);

/* ---- save, load (snapshot.c) ---------------------------------------- */

int cmd_save(const char *name, const char *file);
int cmd_load(const char *name, const char *file, bool replace);

/* ---- The command line (main.c, commands.c) --------------------------- */

/* Option bits: which options were given (struct args.seen). */
enum {
	O_JSON = 1 << 0, O_LIMIT = 1 << 1, O_HEX = 1 << 2, O_RAW = 1 << 3, O_TTL = 1 << 4,
	O_TYPE = 1 << 5, O_EXPIRED = 1 << 6, O_ALL = 1 << 7, O_CLEAN = 1 << 8,
	O_ENTRIES = 1 << 9, O_MEMORY = 1 << 10, O_MODE = 1 << 11, O_EVICTION = 1 << 12,
	O_READERS = 1 << 13, O_FORCE = 1 << 14, O_INTERVAL = 1 << 15, O_COUNT = 1 << 16,
	O_LOAD = 1 << 17, O_DEL = 1 << 18, O_END = 1 << 19, O_REPLACE = 1 << 20,
	O_VALUES = 1 << 21, O_DEPTH = 1 << 22, O_FILE = 1 << 23, O_WRITE = 1 << 24,
	O_CHECKSUM = 1 << 25, O_SINCE = 1 << 26, O_TIMEOUT = 1 << 27,
	O_LAST = O_TIMEOUT,
};


/* The parsed command line: the options given and the command's arguments. */
struct args {
	unsigned seen;                 /* O_* bits */
	const char **pos;              /* the arguments after the command's name */
	int npos;
	uint64_t limit, type, entries, memory, mode, readers, interval, count, depth;
	uint64_t ttl;                  /* --ttl, TC_TTL_DEFAULT when not given */
	uint64_t dttl;                 /* --ttl, 0 when not given */
	uint64_t since;                /* --since (wait) */
	uint64_t timeout;              /* --timeout (wait), TC_FOREVER when not given */
	const char *file, *load;
	int eviction;
};

/* A command: its name, its number of arguments, the options it takes
 * besides --json, and what runs it. */
struct cmd {
	const char *name;
	int min_args, max_args;
	unsigned allowed;
	int (*run)(const struct args *a);
};

extern const struct cmd cmds[];
extern const size_t ncmds;

/* RUN(A), ended by exit 3 with a message when the file of the segment it
 * reads is truncated under it (bus.c). */
int run_guarded(int (*run)(const struct args *a), const struct args *a);

#endif /* TC_SHM_INSPECT_H */
