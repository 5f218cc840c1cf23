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
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <getopt.h>
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
static const tc_opts lazy_attach = { .flags = TC_LAZY | TC_TOOL };
static const char *prog = "shm-inspect";
static bool g_json;

/* ------------------------------------------------------------------ */
/* Usage                                                                */
/* ------------------------------------------------------------------ */

static const char usage_text[] =
	"usage: shm-inspect [--json] COMMAND [ARGS] [OPTIONS]\n"
	"  list [GLOB]                            segments in /dev/shm (names matching GLOB)\n"
	"  summary                                INFO-like totals over every segment\n"
	"  metrics [GLOB]                         Prometheus text format\n"
	"  stat NAME                              counters and gauges\n"
	"  keys NAME [GLOB] [--limit N] [--values] live keys (fnmatch glob), sorted\n"
	"  prefixes NAME [GLOB] [--depth N]       keys and bytes by prefix (up to the Nth ':')\n"
	"  get NAME KEY [--hex|--raw]             print a value\n"
	"  mget NAME KEY...                       print several values\n"
	"  set NAME KEY VALUE|--file F [--ttl MS] [--type N] [--hex]   (F '-' = stdin)\n"
	"  del NAME KEY                           delete a key\n"
	"  exists NAME KEY                        exit 0 when present, 1 when not\n"
	"  incr NAME KEY [DELTA] [--ttl MS]       add to a counter, print the new value\n"
	"  expire NAME KEY TTL                    change a key's TTL (0 = never expires)\n"
	"  ttl NAME KEY                           a key's remaining TTL in ms (-1 = none)\n"
	"  purge NAME GLOB | --expired | --all    delete keys, prints 'deleted N'\n"
	"  readers NAME [--clean]                 reader slots (alive/dead/stuck)\n"
	"  health NAME [--write]                  checks; --write adds a set/get/del round trip\n"
	"  create NAME [--entries N] [--memory SIZE] [--readers N] [--mode 0660]\n"
	"         [--ttl MS] [--eviction lru|none] [--checksum]   (defaults 65536 entries, 64M)\n"
	"  unlink NAME [--force]                  remove (refused while attached)\n"
	"  watch NAME [--interval MS] [--count N] live view, like top\n"
	"  ttl NAME [PREFIX MS | PREFIX --del | --load FILE]   TTL policies\n"
	"  runs NAME [--end]                      the active point-in-time run\n"
	"  audit NAME                             exact mark-and-sweep (segment idle)\n"
	"  save NAME FILE                         snapshot the keys to FILE\n"
	"  load NAME FILE [--replace]             load a snapshot (creates NAME if missing)\n"
	"Sizes take K/M/G suffixes; durations ms (or s/m/h suffixes), at most 100 years.\n"
	"A value that starts with '-' goes after '--': set NAME KEY -- -12.5\n"
	"Exit: 0 ok, 1 not found, 2 usage, 3 segment error, 4 in use.\n";

/* tc_tier.state as the tools print it. */
static const char *tier_state_name(uint32_t st)
{
	return st == TC_TIER_UP ? "up" : st == TC_TIER_DOWN ? "down" : "none";
}

/* ------------------------------------------------------------------ */
/* Errors                                                               */
/* ------------------------------------------------------------------ */

/*
 * report - one line on stderr ("PROG: MSG", then REASON unless MSG says it
 * already) and, with --json, an error document on stdout.  Returns EX.
 */
static int report(int ex, int rc, const char *reason, const char *msg, bool say_reason)
{
	if (say_reason)
		fprintf(stderr, "%s: %s: %s\n", prog, msg, reason);
	else
		fprintf(stderr, "%s: %s\n", prog, msg);
	if (g_json) {
		jreset();
		jobj(NULL);
		jobj("error");
		jstr("message", msg);
		jstr("reason", reason);
		ji64("code", rc);
		ji64("exit", ex);
		jobj_end();
		jobj_end();
	}
	return ex;
}

/*
 * fail - report a failed library call: one line on stderr and, with --json,
 * an error document on stdout.  Returns the exit code for RC.  A message
 * that already says "not found" gets no errno text after it.
 */
static int fail(int rc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fail(int rc, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (rc == -ENOSYS) {
		char m2[600];

		snprintf(m2, sizeof m2, "%s: not implemented by this libtickcache (%s)", msg,
			 tc_version());
		return report(exit_for_rc(rc), rc, "not implemented", m2, false);
	}
	return report(exit_for_rc(rc), rc, tc_strerror(rc), msg,
		      !((rc == -ENOENT || rc == -ESTALE) && strstr(msg, "not found")));
}

/*
 * attach_failed - report a failed tc_open of an existing name, saying what
 * the object is when it is no segment at all: a directory or other
 * non-regular file (exit 3, never "usage"), or an empty file, which is a
 * creation that never finished (its creator died before sizing it).
 */
static int attach_failed(int rc, const char *name, const char *what)
{
	char path[256], msg[512];
	struct stat sb;

	if (rc == -ENOENT)
		return fail(rc, "segment '%s' not found", name);
	if (lstat(seg_path(path, sizeof path, name), &sb) == 0) {
		if (!S_ISREG(sb.st_mode)) {
			snprintf(msg, sizeof msg, "%s '%s': %s is %s, not a segment", what, name, path,
				 S_ISDIR(sb.st_mode) ? "a directory" : "not a regular file");
			return report(EX_TC_SEGMENT, rc, "not a segment", msg, false);
		}
		if (sb.st_size == 0) {
			snprintf(msg, sizeof msg, "%s '%s': %s is empty, a creation that never "
				 "finished (its creator died before sizing it); 'shm-inspect create %s' "
				 "builds it anew, 'shm-inspect unlink %s' removes it", what, name, path,
				 name, name);
			return report(EX_TC_SEGMENT, TC_ECORRUPT, "empty segment file", msg, false);
		}
	}
	return fail(rc, "%s '%s'", what, name);
}

/* open_seg - attach to NAME; on failure report it and return the exit code. */
static int open_seg(const char *name, tc_cache **c)
{
	int rc;

	if (!tc_name_valid(name))
		return usage_error("invalid segment name '%s' (want [A-Za-z0-9][A-Za-z0-9_.-]{0,63})",
				   name);
	rc = tc_open(c, name, &lazy_attach);
	if (rc)
		return attach_failed(rc, name, "cannot attach segment");
	return 0;
}

/* ------------------------------------------------------------------ */
/* Shared queries                                                       */
/* ------------------------------------------------------------------ */

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

static int count_reader(const tc_reader *r, void *arg)
{
	struct counts *k = arg;

	if (r->pid == k->self_pid)
		return 0;
	k->n++;
	if (r->state == TC_READER_DEAD)
		k->dead++;
	return 0;
}

static int count_attach(const tc_attach *a, void *arg)
{
	struct counts *k = arg;
	size_t len = strlen(k->pids);
	char comm[32];

	if (a->pid == k->self_pid || !a->alive || a->pid == k->skip_pid)
		return 0;
	k->n++;
	if (k->listed < MAX_LISTED) {
		k->pid[k->listed] = a->pid;
		k->handles[k->listed] = a->handles;
		k->listed++;
	}
	if (len < sizeof k->pids - 80)
		snprintf(k->pids + len, sizeof k->pids - len, "%spid %" PRIu32 " (%s, %" PRIu32
			 " handle%s)", len ? ", " : "", a->pid,
			 proc_comm(a->pid, comm, sizeof comm), a->handles, a->handles == 1 ? "" : "s");
	return 0;
}

/* jattached - the processes of K as a JSON array of {pid, comm, handles}. */
static void jattached(const char *key, const struct counts *k)
{
	char comm[32];

	jarr(key);
	for (uint32_t i = 0; i < k->listed; i++) {
		jobj(NULL);
		ju64("pid", k->pid[i]);
		jstr("comm", proc_comm(k->pid[i], comm, sizeof comm));
		ju64("handles", k->handles[i]);
		jobj_end();
	}
	jarr_end();
}

/* refuse_in_use - the refusal of a command while other processes are attached. */
static int refuse_in_use(const struct counts *att, const char *msg)
{
	fprintf(stderr, "%s: %s\n", prog, msg);
	if (g_json) {
		jreset();
		jobj(NULL);
		jobj("error");
		jstr("message", msg);
		jstr("reason", "segment in use");
		ji64("code", -EBUSY);
		ji64("exit", EX_TC_INUSE);
		jattached("attached", att);
		jobj_end();
		jobj_end();
	}
	return EX_TC_INUSE;
}

/* Reader slots in use by other processes (the inspector's own excluded). */
static int other_readers(tc_cache *c, uint32_t *n, uint32_t *dead)
{
	struct counts k = { .self_pid = (uint32_t)getpid() };
	int rc = tc_readers(c, count_reader, &k);

	*n = k.n;
	if (dead)
		*dead = k.dead;
	return rc;
}

/* Live processes attached, the inspector excluded. */
static int other_attached(tc_cache *c, uint32_t skip_pid, struct counts *k)
{
	memset(k, 0, sizeof *k);
	k->self_pid = (uint32_t)getpid();
	k->skip_pid = skip_pid;
	return tc_attached(c, count_attach, k);
}

static const char *eviction_name(int e)
{
	return e == TC_EVICT_LRU ? "lru" : e == TC_EVICT_NONE ? "none" : "unknown";
}

static const char *fmt_time(char *buf, size_t cap, int64_t ms)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
	return buf;
}

/* ------------------------------------------------------------------ */
/* list                                                                 */
/* ------------------------------------------------------------------ */

static int cmd_list(const char *glob)
{
	size_t n;
	char **names = seg_names(glob, &n);

	int w = 4;

	for (size_t i = 0; i < n; i++)
		if ((int)strlen(names[i]) > w)
			w = (int)strlen(names[i]);
	if (g_json)
		jarr(NULL);
	else
		printf("%-*s %8s %17s %17s %6s %7s %5s %-14s %8s\n", w, "NAME", "SIZE", "ENTRIES",
		       "MEMORY", "HIT%", "READERS", "PROCS", "SWEEPER", "AGE");
	for (size_t i = 0; i < n; i++) {
		tc_cache *c = NULL;
		tc_info info;
		tc_stats st;
		struct counts att;
		uint32_t readers = 0, lpid = 0;
		uint64_t lage = 0;
		bool lalive = false;
		char b1[32], b2[32], b3[32], b4[64], b5[32];
		int rc = tc_open(&c, names[i], &lazy_attach);

		if (rc == -ENOENT) /* removed while we listed */
			continue;
		if (!rc)
			rc = tc_get_info(c, &info);
		if (!rc)
			rc = tc_get_stats(c, &st);
		if (rc) {
			if (g_json) {
				jobj(NULL);
				jstr("name", names[i]);
				jstr("status", "error");
				jstr("error", tc_strerror(rc));
				jnull("entries");
				jobj_end();
			} else {
				printf("%-*s  error: %s\n", w, names[i], tc_strerror(rc));
			}
			tc_close(c);
			continue;
		}
		other_readers(c, &readers, NULL);
		other_attached(c, 0, &att);
		if (tc_lease_holder(c, &lpid, &lage, &lalive))
			lpid = 0;
		if (g_json) {
			jobj(NULL);
			jstr("name", names[i]);
			jstr("status", "ok");
			jnull("error");
			ju64("segment_bytes", info.segment_bytes);
			ju64("entries", st.entries);
			ju64("max_entries", st.max_entries);
			ju64("memory_used", st.memory_used);
			ju64("memory_bytes", st.memory_bytes);
			jdbl("hit_rate", hit_rate(st.hits, st.misses));
			ju64("readers", readers);
			ju64("attached", att.n);
			if (lpid) {
				ju64("sweeper_pid", lpid);
				jbool("sweeper_alive", lalive);
				ju64("sweeper_age_ms", lage);
			} else {
				jnull("sweeper_pid");
				jbool("sweeper_alive", false);
				jnull("sweeper_age_ms");
			}
			ji64("created_ms", info.created_ms);
			ju64("age_ms", st.uptime_ms);
			jobj_end();
		} else {
			char ent[40], mem[40];

			snprintf(ent, sizeof ent, "%" PRIu64 "/%" PRIu64, st.entries, st.max_entries);
			snprintf(mem, sizeof mem, "%s/%s", fmt_size(b2, sizeof b2, st.memory_used),
				 fmt_size(b3, sizeof b3, st.memory_bytes));
			if (lpid)
				snprintf(b4, sizeof b4, "%s %" PRIu32, lalive ? "pid" : "dead", lpid);
			else
				snprintf(b4, sizeof b4, "none");
			printf("%-*s %8s %17s %17s %5.1f%% %7" PRIu32 " %5" PRIu32 " %-14s %8s\n",
			       w, names[i], fmt_size(b1, sizeof b1, info.segment_bytes), ent, mem,
			       hit_rate(st.hits, st.misses) * 100.0, readers, att.n, b4,
			       fmt_duration(b5, sizeof b5, st.uptime_ms));
		}
		tc_close(c);
	}
	if (g_json)
		jarr_end();
	else if (!n)
		printf("(no segments)\n");
	seg_names_free(names);
	return 0;
}

/* ------------------------------------------------------------------ */
/* stat                                                                 */
/* ------------------------------------------------------------------ */

static int cmd_stat(const char *name)
{
	tc_cache *c;
	tc_info info;
	tc_stats st;
	uint32_t lpid = 0;
	uint64_t lage = 0;
	bool lalive = false;
	struct counts att;
	uint32_t dead = 0, readers = 0;
	double fill;
	char b1[32], b2[32];
	int rc, ex = open_seg(name, &c);

	if (ex)
		return ex;
	rc = tc_get_info(c, &info);
	if (!rc)
		rc = tc_get_stats(c, &st);
	if (rc) {
		ex = fail(rc, "cannot read segment '%s'", name);
		goto out;
	}
	if (tc_lease_holder(c, &lpid, &lage, &lalive))
		lpid = 0;
	tc_tier tier;
	if (tc_tier_get(c, &tier))
		memset(&tier, 0, sizeof(tier));
	other_attached(c, 0, &att);
	other_readers(c, &readers, &dead);
	fill = st.max_entries ? (double)st.entries / (double)st.max_entries : 0.0;

	if (g_json) {
		jobj(NULL);
		jstr("name", info.name);
		ju64("layout_version", info.layout_version);
		ju64("hits", st.hits);
		ju64("misses", st.misses);
		jdbl("hit_rate", hit_rate(st.hits, st.misses));
		ju64("sets", st.sets);
		ju64("adds", st.adds);
		ju64("deletes", st.deletes);
		ju64("expirations", st.expirations);
		ju64("evictions", st.evictions);
		ju64("errors", st.errors);
		ju64("ops", st.ops);
		ju64("clears", st.clears);
		ju64("keys_deleted", st.keys_deleted);
		ju64("lat_samples", st.lat_samples);
		ju64("lat_mean_ns", st.lat_mean_ns);
		ju64("slow_ops", st.slow_ops);
		ju64("slow_threshold_ns", st.slow_threshold_ns);
		ju64("entries", st.entries);
		ju64("max_entries", st.max_entries);
		ju64("index_slots", st.index_slots);
		jdbl("index_fill", fill);
		ju64("memory_bytes", st.memory_bytes);
		ju64("memory_used", st.memory_used);
		ju64("memory_retired", st.memory_retired);
		ju64("memory_carved", st.memory_carved);
		ju64("merges", st.merges);
		ju64("max_readers", st.max_readers);
		ju64("readers", st.readers);
		ju64("tool_readers", st.tool_readers);
		ju64("readers_other", readers);
		ju64("readers_dead", dead);
		ju64("attached", att.n);
		ju64("attached_other", att.n);
		ju64("epoch", st.epoch);
		ju64("epoch_lag", st.epoch_lag);
		ji64("created_ms", st.created_ms);
		ju64("uptime_ms", st.uptime_ms);
		ju64("segment_bytes", info.segment_bytes);
		jstr("mode", (snprintf(b1, sizeof b1, "%04o", info.mode), b1));
		ju64("default_ttl_ms", info.default_ttl_ms);
		jstr("eviction", eviction_name(info.eviction));
		jbool("checksums", (info.flags & TC_CHECKSUM) != 0);
		ju64("checksum_failures", st.checksum_failures);
		ju64("creator_pid", info.creator_pid);
		if (lpid) {
			ju64("sweeper_pid", lpid);
			jbool("sweeper_alive", lalive);
			ju64("sweeper_age_ms", lage);
		} else {
			jnull("sweeper_pid");
			jbool("sweeper_alive", false);
			jnull("sweeper_age_ms");
		}
		/* The Redis tier (shm-bridge): none, up or down. */
		jobj("tier");
		jstr("state", tier_state_name(tier.state));
		if (tier.pid) {
			ju64("bridge_pid", tier.pid);
			jbool("bridge_alive", tier.alive);
			ju64("heartbeat_age_ms", tier.beat_age_ms);
		} else {
			jnull("bridge_pid");
			jbool("bridge_alive", false);
			jnull("heartbeat_age_ms");
		}
		ji64("since_ms", tier.since_ms);
		jobj_end();
		jarr("classes");
		for (uint32_t i = 0; i < st.nclasses && i < TC_NCLASSES; i++) {
			jobj(NULL);
			ju64("size", st.classes[i].size);
			ju64("used", st.classes[i].used);
			ju64("free", st.classes[i].free);
			jobj_end();
		}
		jarr_end();
		jobj_end();
		goto out;
	}

#define ROW(k, fmt, ...) printf("%-18s " fmt "\n", k, __VA_ARGS__)
	ROW("name", "%s", info.name);
	ROW("layout_version", "%" PRIu32, info.layout_version);
	ROW("hits", "%" PRIu64, st.hits);
	ROW("misses", "%" PRIu64, st.misses);
	ROW("hit_rate", "%.2f%%", hit_rate(st.hits, st.misses) * 100.0);
	ROW("sets", "%" PRIu64, st.sets);
	ROW("adds", "%" PRIu64, st.adds);
	ROW("deletes", "%" PRIu64, st.deletes);
	ROW("expirations", "%" PRIu64, st.expirations);
	ROW("evictions", "%" PRIu64, st.evictions);
	ROW("errors", "%" PRIu64, st.errors);
	ROW("ops", "%" PRIu64, st.ops);
	ROW("clears", "%" PRIu64, st.clears);
	ROW("keys_deleted", "%" PRIu64, st.keys_deleted);
	ROW("latency", "mean %" PRIu64 " ns over %" PRIu64 " samples, %" PRIu64
	    " slow (> %" PRIu64 " ns)", st.lat_mean_ns, st.lat_samples, st.slow_ops,
	    st.slow_threshold_ns);
	ROW("entries", "%" PRIu64 " / %" PRIu64 " (%.1f%% full, %" PRIu64 " index slots)",
	    st.entries, st.max_entries, fill * 100.0, st.index_slots);
	ROW("memory_used", "%s (%" PRIu64 " bytes, %.1f%% of %s)", fmt_size(b1, sizeof b1, st.memory_used),
	    st.memory_used, st.memory_bytes ? 100.0 * (double)st.memory_used / (double)st.memory_bytes
	    : 0.0, fmt_size(b2, sizeof b2, st.memory_bytes));
	ROW("memory_retired", "%" PRIu64, st.memory_retired);
	ROW("memory_carved", "%" PRIu64, st.memory_carved);
	ROW("merges", "%" PRIu64 " (free blocks re-cut for another size class)", st.merges);
	ROW("readers", "%" PRIu32 " / %" PRIu32 " slots (%" PRIu32 " of other processes, %"
	    PRIu32 " dead), %" PRIu32 " / %u tool slots", st.readers, st.max_readers, readers, dead,
	    st.tool_readers, TC_TOOL_READERS);
	ROW("attached", "%" PRIu32 " processes (this one not counted)", att.n);
	ROW("epoch", "%" PRIu64 " (lag %" PRIu64 ")", st.epoch, st.epoch_lag);
	ROW("created", "%s by pid %" PRIu32, fmt_time(b1, sizeof b1, st.created_ms), info.creator_pid);
	ROW("uptime", "%s", fmt_duration(b1, sizeof b1, st.uptime_ms));
	ROW("segment_bytes", "%" PRIu64 " (%s)", info.segment_bytes,
	    fmt_size(b2, sizeof b2, info.segment_bytes));
	ROW("mode", "%04o", info.mode);
	if (info.default_ttl_ms)
		ROW("default_ttl_ms", "%" PRIu64, info.default_ttl_ms);
	else
		ROW("default_ttl_ms", "%s", "0 (never expires)");
	ROW("eviction", "%s", eviction_name(info.eviction));
	if (info.flags & TC_CHECKSUM)
		ROW("checksums", "on, %" PRIu64 " failures", st.checksum_failures);
	else
		ROW("checksums", "%s", "off");
	if (lpid)
		ROW("sweeper", "pid %" PRIu32 " %s, heartbeat %" PRIu64 " ms ago", lpid,
		    lalive ? "alive" : "DEAD", lage);
	else
		ROW("sweeper", "%s", "none");
	if (tier.pid)
		ROW("tier", "%s, bridge pid %" PRIu32 " %s, heartbeat %" PRIu64 " ms ago",
		    tier_state_name(tier.state), tier.pid, tier.alive ? "alive" : "DEAD",
		    tier.beat_age_ms);
	else
		ROW("tier", "%s", tier_state_name(tier.state));
#undef ROW
	if (st.nclasses) {
		printf("\n%5s %10s %12s %12s %14s\n", "CLASS", "SIZE", "USED", "FREE", "USED_BYTES");
		for (uint32_t i = 0; i < st.nclasses && i < TC_NCLASSES; i++)
			printf("%5" PRIu32 " %10" PRIu32 " %12" PRIu64 " %12" PRIu64 " %14" PRIu64 "\n", i,
			       st.classes[i].size, st.classes[i].used, st.classes[i].free,
			       (uint64_t)st.classes[i].size * st.classes[i].used);
	}
out:
	tc_close(c);
	return ex;
}

/* ------------------------------------------------------------------ */
/* keys                                                                 */
/* ------------------------------------------------------------------ */

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

static int collect_key(const void *key, size_t klen, const tc_meta *meta, void *arg)
{
	struct keyset *ks = arg;

	if (ks->n == ks->cap) {
		size_t ncap = ks->cap ? ks->cap * 2 : 256;
		struct keyrec *nv = realloc(ks->v, ncap * sizeof *nv);

		if (!nv) {
			ks->oom = true;
			return 1;
		}
		ks->v = nv;
		ks->cap = ncap;
	}
	ks->v[ks->n].key = malloc(klen ? klen : 1);
	if (!ks->v[ks->n].key) {
		ks->oom = true;
		return 1;
	}
	memcpy(ks->v[ks->n].key, key, klen);
	ks->v[ks->n].klen = klen;
	ks->v[ks->n].meta = *meta;
	ks->n++;
	return ks->limit && ks->n >= ks->limit ? 1 : 0;
}

static int keyrec_cmp(const void *a, const void *b)
{
	const struct keyrec *x = a, *y = b;
	size_t m = x->klen < y->klen ? x->klen : y->klen;
	int d = memcmp(x->key, y->key, m);

	return d ? d : (x->klen > y->klen) - (x->klen < y->klen);
}

static void keyset_free(struct keyset *ks)
{
	for (size_t i = 0; i < ks->n; i++)
		free(ks->v[i].key);
	free(ks->v);
}

/* ttl_left - remaining ms of an absolute expiry, -1 for never. */
static int64_t ttl_left(int64_t expires_ms)
{
	int64_t d;

	if (!expires_ms)
		return -1;
	d = expires_ms - tc_now_ms();
	return d < 0 ? 0 : d;
}

/* counter_value - the int64 of an 8-byte little-endian counter. */
static int64_t counter_value(const unsigned char *buf)
{
	int64_t cv = 0;

	for (int i = 7; i >= 0; i--)
		cv = (int64_t)(((uint64_t)cv << 8) | buf[i]);
	return cv;
}

/*
 * jvalue - "encoding" and "value" of a value as get --json shows it: a
 * counter as its decimal number (a string), UTF-8 text as a string, any
 * other bytes (or all with HEX) as lowercase hex.
 */
static void jvalue(const unsigned char *buf, const tc_meta *m, bool hex)
{
	bool counter = !hex && m->type == TC_TYPE_COUNTER && m->len == 8;

	if (counter) {
		char num[32];

		snprintf(num, sizeof num, "%" PRId64, counter_value(buf));
		jstr("encoding", "counter");
		jstr("value", num);
	} else if (!hex && utf8_text(buf, m->len)) {
		jstr("encoding", "text");
		jbytes("value", buf, m->len);
	} else {
		jstr("encoding", "hex");
		jkey("value");
		putchar('"');
		print_hex(stdout, buf, m->len);
		putchar('"');
	}
}

/* A key as exact lowercase hex (JSON), which round-trips every byte. */
static void jkey_hex(const void *key, size_t klen)
{
	jkey("key_hex");
	putchar('"');
	print_hex(stdout, key, klen);
	putchar('"');
}

/*
 * cmd_keys - the live keys matching GLOB, sorted bytewise.  All matching
 * keys are collected and sorted before --limit cuts the list, so the first
 * LIMIT keys in order are shown, and a note on stderr says how many more
 * there are.  With VALUES each key's value is read too (a key deleted
 * meanwhile shows no value).
 */
static int cmd_keys(const char *name, const char *glob, uint64_t limit, bool values)
{
	tc_cache *c;
	struct keyset ks = { .limit = 0 };
	unsigned char *vbuf = NULL;
	size_t shown;
	int rc, ex = open_seg(name, &c);

	if (ex)
		return ex;
	if (values && !(vbuf = malloc(TC_VALUE_MAX + 1))) {
		ex = fail(-ENOMEM, "keys of '%s'", name);
		goto out;
	}
	rc = tc_scan(c, glob ? glob : "*", collect_key, &ks);
	if (ks.oom) {
		ex = fail(-ENOMEM, "keys of '%s'", name);
		goto out;
	}
	if (rc < 0) {
		ex = fail(rc, "cannot scan segment '%s'", name);
		goto out;
	}
	if (ks.n)
		qsort(ks.v, ks.n, sizeof *ks.v, keyrec_cmp);
	shown = limit && limit < ks.n ? (size_t)limit : ks.n;
	if (g_json)
		jarr(NULL);
	else if (values)
		printf("%-40s %8s %10s %10s  %s\n", "KEY", "LEN", "TYPE", "TTL", "VALUE");
	else
		printf("%-40s %8s %10s %12s %10s\n", "KEY", "LEN", "TYPE", "VERSION", "TTL");
	for (size_t i = 0; i < shown; i++) {
		tc_meta *m = &ks.v[i].meta;
		int vrc = 0;
		int64_t left;
		char ttl[32];
		int w;

		if (values) {
			vrc = tc_get(c, ks.v[i].key, ks.v[i].klen, vbuf, TC_VALUE_MAX, m);
			if (vrc && vrc != -ENOENT) {
				/* The list stops there; the error document follows on a line of its own. */
				if (g_json)
					putchar('\n');
				ex = fail(vrc, "cannot read a value of '%s'", name);
				goto out;
			}
		}
		left = ttl_left(m->expires_ms);
		if (g_json) {
			jobj(NULL);
			jbytes("key", ks.v[i].key, ks.v[i].klen);
			jkey_hex(ks.v[i].key, ks.v[i].klen);
			ju64("len", m->len);
			ju64("type", m->type);
			ju64("version", m->version);
			ji64("expires_ms", m->expires_ms);
			if (left < 0)
				jnull("ttl_ms");
			else
				ji64("ttl_ms", left);
			if (values && vrc) {
				jnull("encoding");
				jnull("value");
			} else if (values) {
				jvalue(vbuf, m, false);
			}
			jobj_end();
			continue;
		}
		if (left < 0)
			snprintf(ttl, sizeof ttl, "-");
		else
			fmt_duration(ttl, sizeof ttl, (uint64_t)left);
		w = print_key(stdout, ks.v[i].key, ks.v[i].klen);
		if (!values) {
			printf("%*s %8zu %10" PRIu32 " %12" PRIu64 " %10s\n", w < 40 ? 40 - w : 0, "",
			       m->len, m->type, m->version, ttl);
			continue;
		}
		printf("%*s %8zu %10" PRIu32 " %10s  ", w < 40 ? 40 - w : 0, "", m->len, m->type, ttl);
		if (vrc)
			printf("(deleted meanwhile)");
		else if (m->type == TC_TYPE_COUNTER && m->len == 8)
			printf("%" PRId64, counter_value(vbuf));
		else if (utf8_text(vbuf, m->len))
			print_key(stdout, vbuf, m->len > 200 ? 200 : m->len);
		else
			print_hex(stdout, vbuf, m->len > 100 ? 100 : m->len);
		if ((m->len > 200 || (!utf8_text(vbuf, m->len) && m->len > 100)) && !vrc)
			printf("...");
		putchar('\n');
	}
	if (g_json)
		jarr_end();
	if (shown < ks.n)
		fprintf(stderr, "%s: %zu of %zu matching keys shown (--limit %" PRIu64 "); %zu more\n",
			prog, shown, ks.n, limit, ks.n - shown);
out:
	free(vbuf);
	keyset_free(&ks);
	tc_close(c);
	return ex;
}

/* ------------------------------------------------------------------ */
/* get / set / del                                                      */
/* ------------------------------------------------------------------ */

static int check_key(const char *key)
{
	size_t n = strlen(key);

	if (n == 0 || n > TC_KEY_MAX)
		return usage_error("key must be 1..%d bytes (got %zu)", TC_KEY_MAX, n);
	return 0;
}

enum vmode { V_AUTO, V_HEX, V_RAW };

static int cmd_get(const char *name, const char *key, enum vmode mode)
{
	tc_cache *c;
	tc_meta m;
	unsigned char *buf = NULL;
	size_t cap = TC_VALUE_MAX;
	int rc, ex;

	if ((ex = check_key(key)))
		return ex;
	if ((ex = open_seg(name, &c)))
		return ex;
	buf = malloc(cap + 1);
	if (!buf) {
		ex = fail(-ENOMEM, "get");
		goto out;
	}
	rc = tc_get(c, key, strlen(key), buf, cap, &m);
	if (rc == -ENOENT) {
		ex = fail(rc, "key '%s' not found in '%s'", key, name);
		goto out;
	}
	if (rc) {
		ex = fail(rc, "cannot get '%s' from '%s'", key, name);
		goto out;
	}
	if (mode == V_RAW) {
		fwrite(buf, 1, m.len, stdout);
		goto out;
	}
	{
		bool counter = mode != V_HEX && m.type == TC_TYPE_COUNTER && m.len == 8;
		bool text = mode == V_AUTO && !counter && utf8_text(buf, m.len);
		int64_t left = ttl_left(m.expires_ms);

		if (g_json) {
			jobj(NULL);
			jstr("key", key);
			ju64("len", m.len);
			ju64("type", m.type);
			ju64("version", m.version);
			ji64("expires_ms", m.expires_ms);
			if (left < 0)
				jnull("ttl_ms");
			else
				ji64("ttl_ms", left);
			jvalue(buf, &m, mode == V_HEX);
			jobj_end();
		} else if (counter) {
			printf("%" PRId64 "\n", counter_value(buf));
		} else if (text) {
			fwrite(buf, 1, m.len, stdout);
			putchar('\n');
		} else {
			print_hex(stdout, buf, m.len);
			putchar('\n');
		}
	}
out:
	free(buf);
	tc_close(c);
	return ex;
}

/*
 * read_value_file - the whole of PATH ("-" = stdin) into a malloc'd buffer,
 * at most TC_VALUE_MAX bytes (one more is read to tell a longer file).
 */
static int read_value_file(const char *path, unsigned char **out, size_t *len)
{
	FILE *f = strcmp(path, "-") ? fopen(path, "rbe") : stdin;
	unsigned char *b;
	size_t n = 0;

	if (!f)
		return -errno;
	b = malloc(TC_VALUE_MAX + 1);
	if (!b) {
		if (f != stdin)
			fclose(f);
		return -ENOMEM;
	}
	while (n <= TC_VALUE_MAX) {
		size_t k = fread(b + n, 1, TC_VALUE_MAX + 1 - n, f);

		if (!k)
			break;
		n += k;
	}
	if (ferror(f)) {
		int e = errno ? -errno : -EIO;

		free(b);
		if (f != stdin)
			fclose(f);
		return e;
	}
	if (f != stdin)
		fclose(f);
	if (n > TC_VALUE_MAX) {
		free(b);
		return -EMSGSIZE;
	}
	*out = b;
	*len = n;
	return 0;
}

static int cmd_set(const char *name, const char *key, const char *val, const char *file,
		   bool hex, uint64_t ttl, uint32_t type)
{
	tc_cache *c;
	unsigned char *bin = NULL;
	const void *v = val;
	size_t vlen = 0;
	int rc, ex;

	if ((ex = check_key(key)))
		return ex;
	if (!!val == !!file)
		return usage_error("set: give either VALUE or --file FILE ('-' reads stdin)");
	if (file) {
		if (hex)
			return usage_error("set: --hex applies to VALUE, not to --file");
		rc = read_value_file(file, &bin, &vlen);
		if (rc == -EMSGSIZE)
			return usage_error("set: %s holds more than %u bytes (TC_VALUE_MAX)",
					   strcmp(file, "-") ? file : "stdin", TC_VALUE_MAX);
		if (rc)
			return fail(rc, "cannot read %s", strcmp(file, "-") ? file : "stdin");
		v = bin;
	} else if (hex) {
		if (!parse_hex(val, &bin, &vlen))
			return usage_error("value '%s' is not even-length hex", val);
		v = bin;
	} else {
		vlen = strlen(val);
	}
	if (vlen > TC_VALUE_MAX) {
		free(bin);
		return usage_error("value of %zu bytes exceeds %u", vlen, TC_VALUE_MAX);
	}
	if ((ex = open_seg(name, &c))) {
		free(bin);
		return ex;
	}
	rc = tc_set(c, key, strlen(key), v, vlen, type, ttl);
	if (rc) {
		ex = fail(rc, "cannot set '%s' in '%s'", key, name);
	} else if (g_json) {
		jobj(NULL);
		jbool("ok", true);
		jstr("key", key);
		ju64("len", vlen);
		jobj_end();
	} else {
		printf("OK\n");
	}
	free(bin);
	tc_close(c);
	return ex;
}

/* ------------------------------------------------------------------ */
/* mget / incr / expire / exists / ttl KEY                              */
/* ------------------------------------------------------------------ */

/* cmd_mget - the values of KEYS in order; a missing key is null / "(nil)". */
static int cmd_mget(const char *name, const char *const *keys, int nkeys)
{
	tc_cache *c;
	unsigned char *buf;
	int ex;

	for (int i = 0; i < nkeys; i++)
		if ((ex = check_key(keys[i])))
			return ex;
	if ((ex = open_seg(name, &c)))
		return ex;
	buf = malloc(TC_VALUE_MAX + 1);
	if (!buf) {
		ex = fail(-ENOMEM, "mget");
		goto out;
	}
	if (g_json)
		jarr(NULL);
	for (int i = 0; i < nkeys; i++) {
		tc_meta m;
		int rc = tc_get(c, keys[i], strlen(keys[i]), buf, TC_VALUE_MAX, &m);

		if (rc && rc != -ENOENT) {
			/* The list stops there; the error document follows on a line of its own. */
			if (g_json)
				putchar('\n');
			ex = fail(rc, "cannot get '%s' from '%s'", keys[i], name);
			goto out;
		}
		if (g_json) {
			jobj(NULL);
			jstr("key", keys[i]);
			jbool("found", rc == 0);
			if (rc) {
				jnull("encoding");
				jnull("value");
			} else {
				jvalue(buf, &m, false);
			}
			jobj_end();
		} else if (rc) {
			printf("(nil)\n");
		} else if (m.type == TC_TYPE_COUNTER && m.len == 8) {
			printf("%" PRId64 "\n", counter_value(buf));
		} else if (utf8_text(buf, m.len)) {
			fwrite(buf, 1, m.len, stdout);
			putchar('\n');
		} else {
			print_hex(stdout, buf, m.len);
			putchar('\n');
		}
	}
	if (g_json)
		jarr_end();
out:
	free(buf);
	tc_close(c);
	return ex;
}

/* cmd_incr - add DELTA (default 1) to the counter KEY, print the new value. */
static int cmd_incr(const char *name, const char *key, const char *delta_arg, uint64_t ttl)
{
	tc_cache *c;
	long long delta = 1;
	int64_t v = 0;
	char *end;
	int rc, ex;

	if ((ex = check_key(key)))
		return ex;
	if (delta_arg) {
		errno = 0;
		delta = strtoll(delta_arg, &end, 10);
		if (errno || *end || !*delta_arg)
			return usage_error("incr: DELTA wants a 64-bit integer, not '%s' (a negative "
					   "one after '--')", delta_arg);
	}
	if ((ex = open_seg(name, &c)))
		return ex;
	rc = tc_incr(c, key, strlen(key), (int64_t)delta, ttl, &v);
	if (rc == TC_ETYPE)
		ex = fail(rc, "'%s' in '%s' is not a counter (an 8-byte value of type %u)", key, name,
			  TC_TYPE_COUNTER);
	else if (rc)
		ex = fail(rc, "cannot increment '%s' in '%s'", key, name);
	else if (g_json) {
		jobj(NULL);
		jstr("key", key);
		ji64("value", v);
		jobj_end();
	} else {
		printf("%" PRId64 "\n", v);
	}
	tc_close(c);
	return ex;
}

/* cmd_expire - give KEY a new TTL (0 removes its expiry). */
static int cmd_expire(const char *name, const char *key, const char *ttl_arg)
{
	tc_cache *c;
	uint64_t ms;
	int rc, ex;

	if ((ex = check_key(key)))
		return ex;
	if (!parse_ms(ttl_arg, &ms))
		return usage_error("expire: TTL wants a duration (ms, or s/m/h suffixes) of at most "
				   "100 years, not '%s'", ttl_arg);
	if ((ex = open_seg(name, &c)))
		return ex;
	rc = tc_expire(c, key, strlen(key), ms);
	if (rc == -ENOENT)
		ex = fail(rc, "key '%s' not found in '%s'", key, name);
	else if (rc)
		ex = fail(rc, "cannot change the TTL of '%s' in '%s'", key, name);
	else if (g_json) {
		jobj(NULL);
		jbool("ok", true);
		jstr("key", key);
		if (ms)
			ju64("ttl_ms", ms);
		else
			jnull("ttl_ms");
		jobj_end();
	} else {
		printf("OK\n");
	}
	tc_close(c);
	return ex;
}

/* cmd_exists - exit 0 when KEY holds a live value, 1 when not. */
static int cmd_exists(const char *name, const char *key)
{
	tc_cache *c;
	bool yes;
	int ex;

	if ((ex = check_key(key)))
		return ex;
	if ((ex = open_seg(name, &c)))
		return ex;
	yes = tc_exists(c, key, strlen(key));
	if (g_json) {
		jobj(NULL);
		jstr("key", key);
		jbool("exists", yes);
		jobj_end();
	} else {
		printf("%d\n", yes ? 1 : 0);
	}
	tc_close(c);
	return yes ? 0 : EX_TC_NOTFOUND;
}

/*
 * cmd_key_ttl - the remaining TTL of KEY in ms: -1 when it never expires
 * (Redis's TTL convention); exit 1 when the key is missing.
 */
static int cmd_key_ttl(const char *name, const char *key)
{
	tc_cache *c;
	tc_meta m;
	char one;
	int rc, ex;

	if ((ex = check_key(key)))
		return ex;
	if ((ex = open_seg(name, &c)))
		return ex;
	/* A zero-byte buffer: only the meta data is wanted (-E2BIG brings it too). */
	rc = tc_get(c, key, strlen(key), &one, 0, &m);
	if (rc == -E2BIG)
		rc = 0;
	if (rc == -ENOENT) {
		ex = fail(rc, "key '%s' not found in '%s'", key, name);
	} else if (rc) {
		ex = fail(rc, "cannot read '%s' in '%s'", key, name);
	} else {
		int64_t left = ttl_left(m.expires_ms);

		if (g_json) {
			jobj(NULL);
			jstr("key", key);
			if (left < 0)
				jnull("ttl_ms");
			else
				ji64("ttl_ms", left);
			ji64("expires_ms", m.expires_ms);
			jobj_end();
		} else {
			printf("%" PRId64 "\n", left);
		}
	}
	tc_close(c);
	return ex;
}

static int cmd_del(const char *name, const char *key)
{
	tc_cache *c;
	int rc, ex;

	if ((ex = check_key(key)))
		return ex;
	if ((ex = open_seg(name, &c)))
		return ex;
	rc = tc_del(c, key, strlen(key));
	if (rc == -ENOENT)
		ex = fail(rc, "key '%s' not found in '%s'", key, name);
	else if (rc)
		ex = fail(rc, "cannot delete '%s' from '%s'", key, name);
	else if (g_json) {
		jobj(NULL);
		ju64("deleted", 1);
		jobj_end();
	} else {
		printf("deleted 1\n");
	}
	tc_close(c);
	return ex;
}

/* ------------------------------------------------------------------ */
/* purge                                                                */
/* ------------------------------------------------------------------ */

static int cmd_purge(const char *name, const char *glob, bool expired, bool all)
{
	tc_cache *c;
	uint64_t deleted = 0;
	int rc, ex;

	if (!!glob + expired + all != 1)
		return usage_error("purge needs exactly one of GLOB, --expired, --all");
	if ((ex = open_seg(name, &c)))
		return ex;
	if (expired) {
		tc_sweep_report rep;

		memset(&rep, 0, sizeof rep);
		rc = tc_sweep(c, 0, &rep);
		deleted = rep.expired;
	} else {
		rc = tc_purge(c, all ? "*" : glob, &deleted);
	}
	if (rc)
		ex = fail(rc, "cannot purge '%s'", name);
	else if (g_json) {
		jobj(NULL);
		ju64("deleted", deleted);
		jobj_end();
	} else {
		printf("deleted %" PRIu64 "\n", deleted);
	}
	tc_close(c);
	return ex;
}

/* ------------------------------------------------------------------ */
/* readers                                                              */
/* ------------------------------------------------------------------ */

/* A reader in a section this many epochs behind the global one is "stuck". */
#define STUCK_LAG 2

struct rdlist {
	tc_reader v[TC_MAX_READERS + TC_TOOL_READERS];
	uint32_t n;
	uint32_t self;
};

static int collect_reader(const tc_reader *r, void *arg)
{
	struct rdlist *l = arg;

	if (r->pid == l->self || l->n >= TC_MAX_READERS + TC_TOOL_READERS)
		return 0;
	l->v[l->n++] = *r;
	return 0;
}

static const char *reader_state(const tc_reader *r)
{
	if (r->state == TC_READER_DEAD)
		return "dead";
	if (r->state == TC_READER_ACTIVE && r->epoch_lag >= STUCK_LAG)
		return "stuck";
	return "alive";
}

static int cmd_readers(const char *name, bool clean)
{
	tc_cache *c;
	static struct rdlist l;
	uint32_t cleared = 0;
	char comm[32];
	int rc, ex;

	if ((ex = open_seg(name, &c)))
		return ex;
	if (clean) {
		rc = tc_readers_clean(c, &cleared);
		if (rc) {
			ex = fail(rc, "cannot clean reader slots of '%s'", name);
			goto out;
		}
	}
	l.n = 0;
	l.self = (uint32_t)getpid();
	rc = tc_readers(c, collect_reader, &l);
	if (rc) {
		ex = fail(rc, "cannot read reader slots of '%s'", name);
		goto out;
	}
	if (g_json) {
		jobj(NULL);
		if (clean)
			ju64("cleared", cleared);
		else
			jnull("cleared");
		jarr("readers");
		for (uint32_t i = 0; i < l.n; i++) {
			jobj(NULL);
			ju64("slot", l.v[i].slot);
			ju64("pid", l.v[i].pid);
			ju64("tid", l.v[i].tid);
			jstr("comm", proc_comm(l.v[i].pid, comm, sizeof comm));
			jstr("state", reader_state(&l.v[i]));
			jbool("in_section", l.v[i].state == TC_READER_ACTIVE);
			jbool("tool", l.v[i].tool);
			ju64("epoch", l.v[i].epoch);
			ju64("epoch_lag", l.v[i].epoch_lag);
			jobj_end();
		}
		jarr_end();
		jobj_end();
	} else {
		if (clean)
			printf("cleared %" PRIu32 "\n", cleared);
		printf("%6s %8s %8s %-16s %-6s %-8s %12s %10s %s\n", "SLOT", "PID", "TID", "COMMAND",
		       "STATE", "SECTION", "EPOCH", "LAG", "KIND");
		for (uint32_t i = 0; i < l.n; i++)
			printf("%6" PRIu32 " %8" PRIu32 " %8" PRIu32 " %-16s %-6s %-8s %12" PRIu64
			       " %10" PRIu64 " %s\n", l.v[i].slot, l.v[i].pid, l.v[i].tid,
			       proc_comm(l.v[i].pid, comm, sizeof comm), reader_state(&l.v[i]),
			       l.v[i].state == TC_READER_ACTIVE ? "yes" : "no", l.v[i].epoch,
			       l.v[i].epoch_lag, l.v[i].tool ? "tool" : "reader");
	}
out:
	tc_close(c);
	return ex;
}

/* ------------------------------------------------------------------ */
/* health                                                               */
/* ------------------------------------------------------------------ */

struct check {
	const char *name;
	bool ok;
	bool warn_only;
	char detail[160];
};

static int count_any(const void *key, size_t klen, const tc_meta *meta, void *arg)
{
	(void)key;
	(void)klen;
	(void)meta;
	(*(uint64_t *)arg)++;
	return 0;
}

struct stuck {
	uint32_t self;
	uint32_t n;           /* readers stuck in a read section */
	uint32_t pid;         /* the first one */
	uint64_t lag;
};

static int find_stuck(const tc_reader *r, void *arg)
{
	struct stuck *k = arg;

	if (r->pid == k->self || r->state != TC_READER_ACTIVE || r->epoch_lag < STUCK_LAG)
		return 0;
	if (!k->n++ || r->epoch_lag > k->lag) {
		k->pid = r->pid;
		k->lag = r->epoch_lag;
	}
	return 0;
}

/*
 * cmd_health - consistency checks that read only: no call here counts in
 * the segment's lifetime counters (hits, misses, sets, deletes, ops), which
 * monitoring reads.  With WRITE, also a set/get/peek/delete round trip on a
 * scratch key, which does count (one set, two gets, one delete).  A reader
 * stuck in a read section fails the check: it holds back reclamation in
 * every process, so writers run short of memory.
 */
static int cmd_health(const char *name, bool write)
{
	tc_cache *c;
	struct check ck[16];
	int nck = 0;
	char key[96], val[64], got[64], comm[32];
	tc_meta m;
	tc_stats st;
	const void *pv = NULL;
	uint64_t t0, t_set = 0, t_get = 0, t_del = 0, scanned = 0;
	uint32_t lpid = 0, dead = 0, readers = 0;
	uint64_t lage = 0;
	bool lalive = false, ok = true;
	struct counts att;
	struct stuck stk = { .self = (uint32_t)getpid() };
	int rc, ex;

	if ((ex = open_seg(name, &c)))
		return ex;
#define CHECK(nm, cond, warn, ...)                                                \
	do {                                                                      \
		ck[nck].name = (nm);                                              \
		ck[nck].ok = (cond);                                              \
		ck[nck].warn_only = (warn);                                       \
		snprintf(ck[nck].detail, sizeof ck[nck].detail, __VA_ARGS__);     \
		if (!ck[nck].ok && !ck[nck].warn_only)                            \
			ok = false;                                               \
		nck++;                                                            \
	} while (0)

	if (!write)
		goto checks;
	snprintf(key, sizeof key, "__tc_health.%ld.%" PRIu64, (long)getpid(), mono_ns());
	snprintf(val, sizeof val, "health-%" PRIu64, (uint64_t)(mono_ns() ^ 0x5a5aull));

	t0 = mono_ns();
	rc = tc_set(c, key, strlen(key), val, strlen(val), 0, 60000);
	t_set = mono_ns() - t0;
	CHECK("set", rc == 0, false, "%s%s", rc ? tc_strerror(rc) : "ok",
	      rc == -ENOSPC ? " (segment full, eviction none)" : "");
	if (rc) {
		/* Nothing to read back: say so rather than report misses. */
		CHECK("get", false, false, "%s", "skipped: set failed");
		CHECK("peek", false, false, "%s", "skipped: set failed");
		CHECK("delete", false, false, "%s", "skipped: set failed");
		goto checks;
	}

	t0 = mono_ns();
	memset(got, 0, sizeof got);
	rc = tc_get(c, key, strlen(key), got, sizeof got - 1, &m);
	t_get = mono_ns() - t0;
	CHECK("get", rc == 0 && m.len == strlen(val) && !memcmp(got, val, m.len), false, "%s",
	      rc ? tc_strerror(rc) : (m.len == strlen(val) && !memcmp(got, val, m.len))
		      ? "ok" : "value differs from the one set");

	rc = tc_read_lock(c);
	if (!rc) {
		int prc = tc_peek(c, key, strlen(key), &pv, &m);

		CHECK("peek", prc == 0 && pv && m.len == strlen(val) && !memcmp(pv, val, m.len),
		      false, "%s", prc ? tc_strerror(prc) : "ok");
		tc_read_unlock(c);
	} else {
		CHECK("peek", false, false, "read lock: %s", tc_strerror(rc));
	}

	t0 = mono_ns();
	rc = tc_del(c, key, strlen(key));
	t_del = mono_ns() - t0;
	CHECK("delete", rc == 0, false, "%s", rc ? tc_strerror(rc) : "ok");
	rc = tc_get(c, key, strlen(key), got, sizeof got, &m);
	CHECK("get after delete", rc == -ENOENT, false, "%s",
	      rc == -ENOENT ? "ok (not found)" : rc ? tc_strerror(rc) : "key still present");

checks:
	rc = tc_get_stats(c, &st);
	if (rc) {
		CHECK("stats", false, false, "%s", tc_strerror(rc));
		memset(&st, 0, sizeof st);
	} else {
		CHECK("entries within capacity", st.entries <= st.max_entries, false,
		      "%" PRIu64 " / %" PRIu64, st.entries, st.max_entries);
		CHECK("memory within arena", st.memory_used <= st.memory_bytes &&
		      st.memory_carved <= st.memory_bytes && st.memory_retired <= st.memory_used,
		      false, "used %" PRIu64 ", retired %" PRIu64 ", carved %" PRIu64 " of %" PRIu64,
		      st.memory_used, st.memory_retired, st.memory_carved, st.memory_bytes);
		CHECK("readers within slots", st.readers <= st.max_readers, false,
		      "%" PRIu32 " / %" PRIu32, st.readers, st.max_readers);
	}
	rc = tc_scan(c, "*", count_any, &scanned);
	CHECK("scan", rc == 0 && scanned <= st.max_entries, false, "%s, %" PRIu64 " live keys",
	      rc ? tc_strerror(rc) : "ok", scanned);
	other_readers(c, &readers, &dead);
	CHECK("dead reader slots", dead == 0, true, "%" PRIu32 " dead of %" PRIu32, dead, readers);
	rc = tc_readers(c, find_stuck, &stk);
	if (rc)
		CHECK("stuck readers", false, false, "%s", tc_strerror(rc));
	else if (stk.n)
		CHECK("stuck readers", false, false, "%" PRIu32 " in a read section for %" PRIu64
		      "+ epochs (pid %" PRIu32 " %s): memory cannot be reclaimed", stk.n, stk.lag,
		      stk.pid, proc_comm(stk.pid, comm, sizeof comm));
	else
		CHECK("stuck readers", true, false, "%s", "none");
	if (tc_lease_holder(c, &lpid, &lage, &lalive))
		lpid = 0;
	if (lpid)
		CHECK("sweeper", lalive, true, "pid %" PRIu32 " %s", lpid, lalive ? "alive" : "dead");
	else
		CHECK("sweeper", false, true, "%s", "none holds the lease");
	other_attached(c, 0, &att);
#undef CHECK

	if (g_json) {
		jobj(NULL);
		jbool("ok", ok);
		jbool("round_trip", write);
		jarr("checks");
		for (int i = 0; i < nck; i++) {
			jobj(NULL);
			jstr("name", ck[i].name);
			jstr("status", ck[i].ok ? "ok" : ck[i].warn_only ? "warn" : "fail");
			jstr("detail", ck[i].detail);
			jobj_end();
		}
		jarr_end();
		if (write) {
			jobj("latency_ns");
			ju64("set", t_set);
			ju64("get", t_get);
			ju64("del", t_del);
			jobj_end();
		} else {
			jnull("latency_ns");
		}
		ju64("memory_used", st.memory_used);
		ju64("memory_bytes", st.memory_bytes);
		ju64("entries", st.entries);
		ju64("attached", att.n);
		jobj_end();
	} else {
		for (int i = 0; i < nck; i++)
			printf("%-4s  %-24s %s\n", ck[i].ok ? "ok" : ck[i].warn_only ? "warn" : "FAIL",
			       ck[i].name, ck[i].detail);
		if (write)
			printf("round trip: set %" PRIu64 " ns, get %" PRIu64 " ns, del %" PRIu64 " ns\n",
			       t_set, t_get, t_del);
		printf("memory %" PRIu64 " / %" PRIu64 " bytes, %" PRIu64 " entries, %" PRIu32
		       " other processes attached\n", st.memory_used, st.memory_bytes, st.entries, att.n);
		printf("%s\n", ok ? "healthy" : "UNHEALTHY");
	}
	tc_close(c);
	return ok ? 0 : EX_TC_SEGMENT;
}

/* ------------------------------------------------------------------ */
/* audit                                                                */
/* ------------------------------------------------------------------ */

static int cmd_audit(const char *name)
{
	tc_cache *c;
	tc_audit_report r;
	struct counts att;
	int rc, ex;

	if ((ex = open_seg(name, &c)))
		return ex;
	memset(&r, 0, sizeof r);
	rc = tc_audit(c, &r);
	if (rc == -EBUSY) {
		char msg[1200];

		other_attached(c, 0, &att);
		snprintf(msg, sizeof msg, "segment '%s' is in use%s%s; audit needs it quiescent", name,
			 att.n ? " by " : "", att.pids);
		ex = refuse_in_use(&att, msg);
	} else if (rc) {
		ex = fail(rc, "cannot audit '%s'", name);
	} else if (g_json) {
		jobj(NULL);
		ju64("blocks", r.blocks);
		ju64("live_blocks", r.live_blocks);
		ju64("recovered", r.recovered);
		ju64("recovered_bytes", r.recovered_bytes);
		ju64("tentative_cleared", r.tentative_cleared);
		ju64("skipped_bytes", r.skipped_bytes);
		ji64("live_before", r.live_before);
		ji64("live_after", r.live_after);
		jobj_end();
	} else {
		printf("blocks %" PRIu64 ", live %" PRIu64 ", recovered %" PRIu64 " (%" PRIu64
		       " bytes), half-inserts cleared %" PRIu64 ", re-cut %" PRIu64
		       " bytes, live keys %" PRId64 " -> %" PRId64 "\n", r.blocks, r.live_blocks,
		       r.recovered, r.recovered_bytes, r.tentative_cleared, r.skipped_bytes,
		       r.live_before, r.live_after);
	}
	tc_close(c);
	return ex;
}

/* ------------------------------------------------------------------ */
/* create / unlink                                                      */
/* ------------------------------------------------------------------ */

static int cmd_create(const char *name, const tc_opts *o)
{
	tc_cache *c;
	tc_info info;
	char b1[32];
	int rc;

	if (!tc_name_valid(name))
		return usage_error("invalid segment name '%s' (want [A-Za-z0-9][A-Za-z0-9_.-]{0,63})",
				   name);
	if (o->mode & 0007)
		fprintf(stderr, "%s: warning: mode %04o lets every user of this host %s the segment "
			"(0660 shares it with the group only)\n", prog, o->mode,
			o->mode & 0002 ? "write to" : "read");
	rc = tc_open(&c, name, o);
	if (rc == -EEXIST) {
		char path[256];
		struct stat sb;
		tc_opts o2 = *o;

		/* An empty object is a creation that never finished: build it, as
		 * any TC_CREATE open does.  If another creator finishes first, we
		 * attach to its segment and say that it exists. */
		if (lstat(seg_path(path, sizeof path, name), &sb) || !S_ISREG(sb.st_mode) ||
		    sb.st_size != 0)
			return fail(rc, "segment '%s' already exists", name);
		o2.flags &= ~TC_EXCL;
		rc = tc_open(&c, name, &o2);
		if (!rc && (tc_get_info(c, &info) || info.creator_pid != (uint32_t)getpid())) {
			tc_close(c);
			return fail(-EEXIST, "segment '%s' already exists", name);
		}
		if (!rc)
			fprintf(stderr, "%s: '%s' was an empty segment file (a creation that never "
				"finished): built anew\n", prog, name);
	}
	if (rc)
		return attach_failed(rc, name, "cannot create segment");
	rc = tc_get_info(c, &info);
	if (rc) {
		tc_close(c);
		return fail(rc, "segment '%s' created but unreadable", name);
	}
	if (g_json) {
		jobj(NULL);
		jstr("created", info.name);
		ju64("max_entries", info.max_entries);
		ju64("memory_bytes", info.memory_bytes);
		ju64("max_readers", info.max_readers);
		jstr("mode", (snprintf(b1, sizeof b1, "%04o", info.mode), b1));
		ju64("default_ttl_ms", info.default_ttl_ms);
		jstr("eviction", eviction_name(info.eviction));
		ju64("segment_bytes", info.segment_bytes);
		jobj_end();
	} else {
		printf("created %s: %" PRIu64 " entries, %s memory, %" PRIu32 " readers, mode %04o, "
		       "ttl %" PRIu64 " ms, eviction %s\n", info.name, info.max_entries,
		       fmt_size(b1, sizeof b1, info.memory_bytes), info.max_readers, info.mode,
		       info.default_ttl_ms, eviction_name(info.eviction));
	}
	tc_close(c);
	return 0;
}

static int cmd_unlink(const char *name, bool force)
{
	tc_cache *c = NULL;
	struct counts att;
	uint32_t lpid = 0;
	uint64_t lage;
	bool lalive = false;
	int rc;

	if (!tc_name_valid(name))
		return usage_error("invalid segment name '%s' (want [A-Za-z0-9][A-Za-z0-9_.-]{0,63})",
				   name);
	rc = tc_open(&c, name, &lazy_attach);
	if (rc == -ENOENT)
		return fail(rc, "segment '%s' not found", name);
	if (rc && !force)
		return attach_failed(rc, name, "cannot check who uses (use --force to remove it anyway)");
	if (!rc) {
		/* The sweeper attaches to every segment; it never blocks removal. */
		if (tc_lease_holder(c, &lpid, &lage, &lalive) || !lalive)
			lpid = 0;
		rc = other_attached(c, lpid, &att);
		tc_close(c);
		if (rc && !force)
			return fail(rc, "cannot list the processes attached to '%s'", name);
		if (!rc && att.n && !force) {
			char msg[1200];

			snprintf(msg, sizeof msg, "segment '%s' is in use by %s; stop them or use --force",
				 name, att.pids);
			return refuse_in_use(&att, msg);
		}
	}
	rc = tc_unlink(name);
	if (rc)
		return fail(rc, "cannot remove segment '%s'", name);
	if (g_json) {
		jobj(NULL);
		jstr("unlinked", name);
		jobj_end();
	} else {
		printf("unlinked %s\n", name);
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* watch                                                                */
/* ------------------------------------------------------------------ */

static volatile sig_atomic_t g_stop;

static void on_stop(int sig)
{
	(void)sig;
	g_stop = 1;
}

static bool seg_exists(const char *name)
{
	char path[TC_SEG_PATH_MAX];
	struct stat sb;

	return stat(seg_path(path, sizeof path, name), &sb) == 0;
}

static double per_s(uint64_t now, uint64_t before, double secs)
{
	return secs > 0 && now >= before ? (double)(now - before) / secs : 0.0;
}

static int cmd_watch(const char *name, uint64_t interval, uint64_t count)
{
	tc_cache *c;
	tc_stats prev, st;
	uint64_t tprev, t, frames = 0;
	bool tty = isatty(STDOUT_FILENO) && !g_json;
	struct sigaction sa;
	int rc, ex;

	if ((ex = open_seg(name, &c)))
		return ex;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_stop;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);

	rc = tc_get_stats(c, &prev);
	tprev = mono_ns();
	if (rc) {
		ex = fail(rc, "cannot read segment '%s'", name);
		goto out;
	}
	while (!g_stop && (!count || frames < count)) {
		double secs, ilat = -1;
		struct counts att;
		uint32_t lpid = 0;
		uint64_t lage = 0, dsamples;
		bool lalive = false;
		char b1[32], b2[32], b3[32], b4[32];

		/* The first frame comes at once; later ones after the interval. */
		if (frames) {
			uint64_t end = mono_ns() + interval * 1000000ull;

			while (!g_stop) {
				uint64_t now = mono_ns();

				if (now >= end)
					break;
				sleep_ms((end - now) / 1000000ull + 1 > 100 ? 100
					 : (end - now) / 1000000ull + 1);
			}
			if (g_stop)
				break;
		}
		if (!seg_exists(name)) {
			ex = fail(-ENOENT, "segment '%s' was removed", name);
			goto out;
		}
		rc = tc_get_stats(c, &st);
		t = mono_ns();
		if (rc == -ESTALE) {
			ex = fail(-ENOENT, "segment '%s' was removed", name);
			goto out;
		}
		if (rc) {
			ex = fail(rc, "cannot read segment '%s'", name);
			goto out;
		}
		if (tc_lease_holder(c, &lpid, &lage, &lalive))
			lpid = 0;
		secs = (double)(t - tprev) / 1e9;
		dsamples = st.lat_samples - prev.lat_samples;
		/* The mean of this interval's samples only; none without samples. */
		if (st.lat_samples > prev.lat_samples) {
			ilat = ((double)st.lat_mean_ns * (double)st.lat_samples -
				(double)prev.lat_mean_ns * (double)prev.lat_samples) / (double)dsamples;
			if (ilat < 0)
				ilat = 0;
		}
		other_attached(c, 0, &att);
		if (g_json) {
			jobj(NULL);
			jstr("name", name);
			ji64("ts_ms", tc_now_ms());
			ju64("interval_ms", (uint64_t)(secs * 1000.0 + 0.5));
			jdbl("ops_per_s", per_s(st.ops, prev.ops, secs));
			jdbl("hits_per_s", per_s(st.hits, prev.hits, secs));
			jdbl("misses_per_s", per_s(st.misses, prev.misses, secs));
			jdbl("sets_per_s", per_s(st.sets + st.adds, prev.sets + prev.adds, secs));
			jdbl("deletes_per_s", per_s(st.deletes, prev.deletes, secs));
			jdbl("expirations_per_s", per_s(st.expirations, prev.expirations, secs));
			jdbl("evictions_per_s", per_s(st.evictions, prev.evictions, secs));
			jdbl("hit_rate", hit_rate(st.hits, st.misses));
			if (ilat < 0)
				jnull("lat_mean_ns");
			else
				jdbl("lat_mean_ns", ilat);
			ju64("slow_ops", st.slow_ops);
			ju64("entries", st.entries);
			ju64("max_entries", st.max_entries);
			ju64("memory_used", st.memory_used);
			ju64("memory_bytes", st.memory_bytes);
			ju64("readers", st.readers);
			ju64("attached", att.n);
			ju64("epoch_lag", st.epoch_lag);
			if (lpid)
				ju64("sweeper_pid", lpid);
			else
				jnull("sweeper_pid");
			jbool("sweeper_alive", lpid && lalive);
			jobj_end();
		} else {
			if (tty)
				fputs("\033[H\033[2J", stdout);
			else if (frames)
				putchar('\n');
			printf("tickcache %s   every %" PRIu64 " ms   %s   up %s\n", name, interval,
			       fmt_time(b1, sizeof b1, tc_now_ms()),
			       fmt_duration(b2, sizeof b2, st.uptime_ms));
			printf("ops/s %12.0f   hits/s %10.0f   misses/s %10.0f   hit rate %6.2f%%\n",
			       per_s(st.ops, prev.ops, secs), per_s(st.hits, prev.hits, secs),
			       per_s(st.misses, prev.misses, secs), hit_rate(st.hits, st.misses) * 100.0);
			printf("sets/s %11.0f   deletes/s %7.0f   expired/s %9.0f   evicted/s %8.0f\n",
			       per_s(st.sets + st.adds, prev.sets + prev.adds, secs),
			       per_s(st.deletes, prev.deletes, secs),
			       per_s(st.expirations, prev.expirations, secs),
			       per_s(st.evictions, prev.evictions, secs));
			if (ilat < 0)
				snprintf(b2, sizeof b2, "-");
			else
				snprintf(b2, sizeof b2, "%.0f ns", ilat);
			printf("latency  mean %s (sampled, this interval)   slow ops %" PRIu64 " (+%" PRIu64
			       ", > %" PRIu64 " ns)\n", b2, st.slow_ops, st.slow_ops - prev.slow_ops,
			       st.slow_threshold_ns);
			printf("entries  %" PRIu64 " / %" PRIu64 " (%.1f%%)\n", st.entries, st.max_entries,
			       st.max_entries ? 100.0 * (double)st.entries / (double)st.max_entries : 0.0);
			printf("memory   %s / %s used, %s retired\n", fmt_size(b3, sizeof b3, st.memory_used),
			       fmt_size(b4, sizeof b4, st.memory_bytes),
			       fmt_size(b1, sizeof b1, st.memory_retired));
			printf("readers  %" PRIu32 " / %" PRIu32 " slots, %" PRIu32
			       " other processes, epoch %" PRIu64 " lag %" PRIu64 "\n", st.readers,
			       st.max_readers, att.n, st.epoch, st.epoch_lag);
			if (lpid)
				printf("sweeper  pid %" PRIu32 " %s, heartbeat %" PRIu64 " ms ago\n", lpid,
				       lalive ? "alive" : "DEAD", lage);
			else
				printf("sweeper  none\n");
		}
		if (fflush(stdout) == EOF)
			break; /* the reader of our output went away */
		prev = st;
		tprev = t;
		frames++;
	}
out:
	tc_close(c);
	return ex;
}

/* ------------------------------------------------------------------ */
/* ttl / runs                                                           */
/* ------------------------------------------------------------------ */

struct policy {
	char prefix[TC_POLICY_PREFIX_MAX + 1];
	uint64_t ttl_ms;
};

struct policies {
	struct policy v[TC_POLICY_MAX_ENTRIES];
	int n;
};

static int collect_policy(const char *prefix, uint64_t ttl_ms, void *arg)
{
	struct policies *p = arg;

	if (p->n >= TC_POLICY_MAX_ENTRIES)
		return 1;
	snprintf(p->v[p->n].prefix, sizeof p->v[p->n].prefix, "%s", prefix);
	p->v[p->n].ttl_ms = ttl_ms;
	p->n++;
	return 0;
}

static int policy_cmp(const void *a, const void *b)
{
	return strcmp(((const struct policy *)a)->prefix, ((const struct policy *)b)->prefix);
}

static int cmd_ttl(const char *name, const char *prefix, const char *ms_arg, bool del,
		   const char *load)
{
	tc_cache *c;
	tc_info info;
	uint64_t ms = 0;
	int rc, ex;

	if (load && (prefix || del))
		return usage_error("ttl: --load takes no PREFIX");
	if (del && (!prefix || ms_arg))
		return usage_error("ttl: --del needs PREFIX and no MS");
	if (prefix && !del && !ms_arg)
		return usage_error("ttl: PREFIX needs MS (or --del)");
	if (ms_arg && !parse_ms(ms_arg, &ms))
		return usage_error("ttl: bad duration '%s'", ms_arg);
	if ((ex = open_seg(name, &c)))
		return ex;
	if (load) {
		unsigned bad = 0;

		rc = tc_ttl_policy_load_ex(c, load, &bad);
		if (rc && bad) {
			ex = fail(rc, "%s:%u: bad line (want 'prefix = ttl_ms'), nothing applied",
				  load, bad);
		} else if (rc == -ENOENT) {
			ex = fail(rc, "%s: no such file", load);
		} else if (rc) {
			ex = fail(rc, "cannot load TTL policies from %s", load);
		} else if (g_json) {
			jobj(NULL);
			jbool("ok", true);
			jstr("loaded", load);
			jobj_end();
		} else {
			printf("loaded %s\n", load);
		}
	} else if (del) {
		rc = tc_ttl_policy_del(c, prefix);
		if (rc == -ENOENT)
			ex = fail(rc, "no TTL policy for prefix '%s'", prefix);
		else if (rc)
			ex = fail(rc, "cannot delete TTL policy '%s'", prefix);
		else if (g_json) {
			jobj(NULL);
			jbool("ok", true);
			jstr("deleted", prefix);
			jobj_end();
		} else {
			printf("deleted %s\n", prefix);
		}
	} else if (prefix) {
		rc = tc_ttl_policy_set(c, prefix, ms);
		if (rc)
			ex = fail(rc, "cannot set TTL policy '%s'", prefix);
		else if (g_json) {
			jobj(NULL);
			jbool("ok", true);
			jstr("prefix", prefix);
			ju64("ttl_ms", ms);
			jobj_end();
		} else {
			printf("OK\n");
		}
	} else {
		static struct policies pol;

		pol.n = 0;
		rc = tc_get_info(c, &info);
		if (!rc)
			rc = tc_ttl_policy_list(c, collect_policy, &pol);
		if (rc) {
			ex = fail(rc, "cannot read the TTL policies of '%s'", name);
			goto out;
		}
		qsort(pol.v, (size_t)pol.n, sizeof pol.v[0], policy_cmp);
		if (g_json) {
			jobj(NULL);
			ju64("default_ttl_ms", info.default_ttl_ms);
			jarr("policies");
			for (int i = 0; i < pol.n; i++) {
				jobj(NULL);
				jstr("prefix", pol.v[i].prefix);
				ju64("ttl_ms", pol.v[i].ttl_ms);
				jobj_end();
			}
			jarr_end();
			jobj_end();
		} else {
			printf("%-40s %12s\n", "PREFIX", "TTL_MS");
			for (int i = 0; i < pol.n; i++)
				printf("%-40s %12" PRIu64 "%s\n", pol.v[i].prefix, pol.v[i].ttl_ms,
				       pol.v[i].ttl_ms ? "" : " (never)");
			printf("%-40s %12" PRIu64 "%s\n", "(default)", info.default_ttl_ms,
			       info.default_ttl_ms ? "" : " (never)");
		}
	}
out:
	tc_close(c);
	return ex;
}

struct dtokeys {
	struct keyset ks;
};

static int collect_dto_key(const void *key, size_t klen, size_t count, void *arg)
{
	struct dtokeys *d = arg;
	tc_meta m;

	if (d->ks.n >= 4096)
		return 1;
	memset(&m, 0, sizeof m);
	m.len = count;
	return collect_key(key, klen, &m, &d->ks);
}

static int cmd_runs(const char *name, bool end)
{
	static struct dtokeys dk;
	tc_cache *c;
	tc_anchor a;
	char b1[40], b2[32];
	int64_t age = 0;
	bool alive = false;
	int rc, ex;

	if ((ex = open_seg(name, &c)))
		return ex;
	rc = tc_run_anchor(c, &a);
	if (rc == 0) {
		age = tc_now_ms() - a.started_ms;
		alive = a.starter_pid && (kill((pid_t)a.starter_pid, 0) == 0 || errno == EPERM);
	}
	if (rc && rc != TC_ENORUN) {
		ex = fail(rc, "cannot read the run of '%s'", name);
		goto out;
	}
	if (end) {
		if (rc == TC_ENORUN) {
			ex = fail(rc, "no active run in '%s'", name);
			goto out;
		}
		/* This run only: never a newer one started since we looked. */
		rc = tc_run_end_gen(c, a.generation);
		if (rc) {
			ex = fail(rc, "cannot end run %" PRIu64 " of '%s'", a.run_id, name);
			goto out;
		}
	}
	if (rc != TC_ENORUN && !end) {
		int krc = tc_dto_keys(c, collect_dto_key, &dk);

		if (krc && krc != TC_ENORUN && krc != 1) {
			ex = fail(krc, "cannot list the DTO keys of '%s'", name);
			goto out;
		}
		if (dk.ks.n)
			qsort(dk.ks.v, dk.ks.n, sizeof *dk.ks.v, keyrec_cmp);
	}
	if (g_json) {
		jobj(NULL);
		jbool("active", rc != TC_ENORUN && !end);
		if (rc == TC_ENORUN) {
			jnull("run_id");
			jnull("ts_ns");
			jnull("generation");
			jnull("started_ms");
			jnull("age_ms");
			jnull("starter_pid");
			jnull("starter_alive");
		} else {
			ju64("run_id", a.run_id);
			ji64("ts_ns", a.ts_ns);
			ju64("generation", a.generation);
			ji64("started_ms", a.started_ms);
			ji64("age_ms", age);
			ju64("starter_pid", a.starter_pid);
			jbool("starter_alive", alive);
		}
		jbool("ended", end);
		jarr("dto_keys");
		for (size_t i = 0; i < dk.ks.n; i++) {
			jobj(NULL);
			jbytes("key", dk.ks.v[i].key, dk.ks.v[i].klen);
			ju64("count", dk.ks.v[i].meta.len);
			jobj_end();
		}
		jarr_end();
		jobj_end();
	} else if (rc == TC_ENORUN) {
		printf("no active run\n");
	} else {
		printf("%s run %" PRIu64 " at %s (ts_ns %" PRId64 "), generation %" PRIu64 "\n",
		       end ? "ended" : "active", a.run_id, fmt_time(b1, sizeof b1, a.ts_ns / 1000000),
		       a.ts_ns, a.generation);
		printf("  started %s ago by pid %" PRIu32 " (%s)\n",
		       fmt_duration(b2, sizeof b2, age > 0 ? (uint64_t)age : 0), a.starter_pid,
		       alive ? "alive" : "exited");
		for (size_t i = 0; i < dk.ks.n; i++) {
			printf("  ");
			print_key(stdout, dk.ks.v[i].key, dk.ks.v[i].klen);
			printf("  %zu DTO%s\n", dk.ks.v[i].meta.len, dk.ks.v[i].meta.len == 1 ? "" : "s");
		}
	}
out:
	keyset_free(&dk.ks);
	tc_close(c);
	return ex;
}

/* ------------------------------------------------------------------ */
/* save / load                                                          */
/* ------------------------------------------------------------------ */

static int cmd_save(const char *name, const char *file)
{
	tc_snapshot_report rep;
	tc_cache *c;
	int rc, ex;

	if ((ex = open_seg(name, &c)))
		return ex;
	rc = tc_snapshot_save(c, file, &rep);
	if (rc) {
		ex = fail(rc, "cannot save '%s' to %s", name, file);
	} else if (g_json) {
		jobj(NULL);
		jstr("file", file);
		ju64("keys", rep.keys);
		ju64("bytes", rep.bytes);
		jobj_end();
	} else {
		printf("saved %" PRIu64 " keys of %s to %s (%" PRIu64 " bytes)\n", rep.keys, name, file,
		       rep.bytes);
	}
	tc_close(c);
	return ex;
}

static int cmd_load(const char *name, const char *file, bool replace)
{
	tc_snapshot_info info;
	tc_snapshot_report rep;
	tc_cache *c = NULL;
	bool created = false;
	int rc, ex = 0;

	if (!tc_name_valid(name))
		return usage_error("invalid segment name '%s' (want [A-Za-z0-9][A-Za-z0-9_.-]{0,63})",
				   name);
	rc = tc_snapshot_stat(file, &info);
	if (rc == TC_ECORRUPT) {
		char why[200], msg[600];

		snprintf(msg, sizeof msg, "cannot read snapshot %s: %s", file,
			 snap_damage(file, why, sizeof why));
		return report(EX_TC_SEGMENT, rc, why, msg, false);
	}
	if (rc)
		return fail(rc, "cannot read snapshot %s", file);
	rc = tc_open(&c, name, &lazy_attach);
	if (rc == -ENOENT) {
		/* A missing segment is made with the snapshot's geometry. */
		rc = create_like_snapshot(&c, name, &info);
		created = rc == 0;
	}
	if (rc)
		return fail(rc, "cannot open segment '%s'", name);
	rc = tc_snapshot_load(c, file, replace ? TC_SNAP_REPLACE : 0, &rep);
	if (rc == TC_ECORRUPT && !rep.keys) {
		char why[200], msg[600];

		/* Changed between the check and the load: say how. */
		snprintf(msg, sizeof msg, "cannot load %s into '%s': %s", file, name,
			 snap_damage(file, why, sizeof why));
		ex = report(EX_TC_SEGMENT, rc, why, msg, false);
	} else if (rc) {
		ex = fail(rc, "cannot load %s into '%s' (%" PRIu64 " keys loaded)", file, name,
			  rep.keys);
	} else if (g_json) {
		jobj(NULL);
		jstr("file", file);
		jbool("created", created);
		ju64("keys", rep.keys);
		ju64("expired", rep.expired);
		ju64("kept", rep.kept);
		jobj_end();
	} else {
		if (created)
			printf("created %s from the snapshot's geometry\n", name);
		printf("loaded %" PRIu64 " keys into %s (%" PRIu64 " expired skipped, %" PRIu64
		       " present kept)\n", rep.keys, name, rep.expired, rep.kept);
	}
	tc_close(c);
	return ex;
}

/* ------------------------------------------------------------------ */
/* prefixes / summary / metrics                                         */
/* ------------------------------------------------------------------ */

struct prefix {
	unsigned char *p;
	size_t len;
	uint64_t keys;
	uint64_t bytes;   /* key + value bytes */
};

struct prefixes {
	struct prefix *v;
	size_t n, cap;
	unsigned depth;
	bool oom;
};

/* The prefix of KEY: up to and including its DEPTH-th ':', or its last ':'
 * when it has fewer, or "" when it has none. */
static size_t prefix_len(const unsigned char *key, size_t klen, unsigned depth)
{
	size_t last = 0;
	unsigned seen = 0;

	for (size_t i = 0; i < klen; i++) {
		if (key[i] != ':')
			continue;
		last = i + 1;
		if (++seen == depth)
			break;
	}
	return last;
}

static int add_prefix(const void *key, size_t klen, const tc_meta *meta, void *arg)
{
	struct prefixes *px = arg;
	size_t pl = prefix_len(key, klen, px->depth);
	size_t i;

	/* Linear search: prefixes are few (that is the point of grouping). */
	for (i = 0; i < px->n; i++)
		if (px->v[i].len == pl && !memcmp(px->v[i].p, key, pl))
			break;
	if (i == px->n) {
		if (px->n == px->cap) {
			size_t ncap = px->cap ? px->cap * 2 : 64;
			struct prefix *nv = realloc(px->v, ncap * sizeof *nv);

			if (!nv) {
				px->oom = true;
				return 1;
			}
			px->v = nv;
			px->cap = ncap;
		}
		px->v[i].p = malloc(pl ? pl : 1);
		if (!px->v[i].p) {
			px->oom = true;
			return 1;
		}
		memcpy(px->v[i].p, key, pl);
		px->v[i].len = pl;
		px->v[i].keys = 0;
		px->v[i].bytes = 0;
		px->n++;
	}
	px->v[i].keys++;
	px->v[i].bytes += klen + meta->len;
	return 0;
}

static int prefix_cmp(const void *a, const void *b)
{
	const struct prefix *x = a, *y = b;
	size_t m = x->len < y->len ? x->len : y->len;
	int d;

	if (x->bytes != y->bytes)
		return x->bytes < y->bytes ? 1 : -1;
	d = memcmp(x->p, y->p, m);
	return d ? d : (x->len > y->len) - (x->len < y->len);
}

/*
 * cmd_prefixes - key counts and key + value bytes by key prefix (the key
 * up to its DEPTH-th ':'), largest first.  Bytes are the payload; the
 * arena rounds each entry up to its size class and adds a header.
 */
static int cmd_prefixes(const char *name, const char *glob, unsigned depth)
{
	tc_cache *c;
	struct prefixes px = { .depth = depth };
	uint64_t keys = 0, bytes = 0;
	int rc, ex = open_seg(name, &c);

	if (ex)
		return ex;
	rc = tc_scan(c, glob ? glob : "*", add_prefix, &px);
	if (px.oom) {
		ex = fail(-ENOMEM, "prefixes of '%s'", name);
		goto out;
	}
	if (rc < 0) {
		ex = fail(rc, "cannot scan segment '%s'", name);
		goto out;
	}
	if (px.n)
		qsort(px.v, px.n, sizeof *px.v, prefix_cmp);
	for (size_t i = 0; i < px.n; i++) {
		keys += px.v[i].keys;
		bytes += px.v[i].bytes;
	}
	if (g_json) {
		jobj(NULL);
		ju64("depth", depth);
		ju64("keys", keys);
		ju64("bytes", bytes);
		jarr("prefixes");
		for (size_t i = 0; i < px.n; i++) {
			jobj(NULL);
			jbytes("prefix", px.v[i].p, px.v[i].len);
			ju64("keys", px.v[i].keys);
			ju64("bytes", px.v[i].bytes);
			jobj_end();
		}
		jarr_end();
		jobj_end();
	} else {
		char b1[32];

		printf("%-40s %10s %10s %6s\n", "PREFIX", "KEYS", "BYTES", "SHARE");
		for (size_t i = 0; i < px.n; i++) {
			int w = px.v[i].len ? print_key(stdout, px.v[i].p, px.v[i].len)
					    : printf("(none)");

			printf("%*s %10" PRIu64 " %10s %5.1f%%\n", w < 40 ? 40 - w : 0, "", px.v[i].keys,
			       fmt_size(b1, sizeof b1, px.v[i].bytes),
			       bytes ? 100.0 * (double)px.v[i].bytes / (double)bytes : 0.0);
		}
		printf("%-40s %10" PRIu64 " %10s  (key + value bytes)\n", "(total)", keys,
		       fmt_size(b1, sizeof b1, bytes));
	}
out:
	for (size_t i = 0; i < px.n; i++)
		free(px.v[i].p);
	free(px.v);
	tc_close(c);
	return ex;
}

/*
 * cmd_summary - one INFO-like view over every segment: how many, how
 * full, traffic and hit rate, processes, sweeper coverage, and the ones
 * that cannot be read.
 */
static int cmd_summary(void)
{
	size_t n;
	char **names = seg_names(NULL, &n);
	uint64_t entries = 0, max_entries = 0, used = 0, limit = 0, seg_bytes = 0;
	uint64_t hits = 0, misses = 0, ops = 0, evictions = 0, expirations = 0, errors = 0;
	uint32_t procs = 0, swept = 0, bad = 0, runs = 0, stuck_lag = 0;
	char b1[32], b2[32], b3[32];

	for (size_t i = 0; i < n; i++) {
		tc_cache *c = NULL;
		tc_info info;
		tc_stats st;
		struct counts att;
		uint32_t lpid = 0;
		uint64_t lage = 0;
		bool lalive = false;

		if (tc_open(&c, names[i], &lazy_attach) || tc_get_info(c, &info) ||
		    tc_get_stats(c, &st)) {
			bad++;
			tc_close(c);
			continue;
		}
		entries += st.entries;
		max_entries += st.max_entries;
		used += st.memory_used;
		limit += st.memory_bytes;
		seg_bytes += info.segment_bytes;
		hits += st.hits;
		misses += st.misses;
		ops += st.ops;
		evictions += st.evictions;
		expirations += st.expirations;
		errors += st.errors;
		runs += st.run_active;
		if (st.epoch_lag >= STUCK_LAG)
			stuck_lag++;
		other_attached(c, 0, &att);
		procs += att.n;
		if (!tc_lease_holder(c, &lpid, &lage, &lalive) && lpid && lalive)
			swept++;
		tc_close(c);
	}
	if (g_json) {
		jobj(NULL);
		ju64("segments", n);
		ju64("unreadable", bad);
		ju64("swept", swept);
		ju64("entries", entries);
		ju64("max_entries", max_entries);
		ju64("memory_used", used);
		ju64("memory_bytes", limit);
		ju64("segment_bytes", seg_bytes);
		ju64("hits", hits);
		ju64("misses", misses);
		jdbl("hit_rate", hit_rate(hits, misses));
		ju64("ops", ops);
		ju64("evictions", evictions);
		ju64("expirations", expirations);
		ju64("errors", errors);
		ju64("attached", procs);
		ju64("active_runs", runs);
		ju64("lagging", stuck_lag);
		jobj_end();
	} else {
		printf("# Segments\n");
		printf("segments:%zu\nunreadable:%" PRIu32 "\nswept_by_a_sweeper:%" PRIu32 "\n", n, bad,
		       swept);
		printf("attached_processes:%" PRIu32 "\nactive_runs:%" PRIu32
		       "\nlagging_reclamation:%" PRIu32 "\n", procs, runs, stuck_lag);
		printf("\n# Memory\n");
		printf("memory_used:%" PRIu64 "\nmemory_used_human:%s\nmemory_limit:%" PRIu64
		       "\nmemory_limit_human:%s\nshm_bytes:%" PRIu64 "\nshm_human:%s\n", used,
		       fmt_size(b1, sizeof b1, used), limit, fmt_size(b2, sizeof b2, limit), seg_bytes,
		       fmt_size(b3, sizeof b3, seg_bytes));
		printf("\n# Keyspace\n");
		printf("keys:%" PRIu64 "\nkeys_limit:%" PRIu64 "\n", entries, max_entries);
		printf("\n# Stats\n");
		printf("hits:%" PRIu64 "\nmisses:%" PRIu64 "\nhit_rate:%.4f\nops:%" PRIu64
		       "\nevictions:%" PRIu64 "\nexpirations:%" PRIu64 "\nerrors:%" PRIu64 "\n", hits,
		       misses, hit_rate(hits, misses), ops, evictions, expirations, errors);
	}
	seg_names_free(names);
	return 0;
}

/* cmd_metrics - the Prometheus text format for the segments matching GLOB. */
static int cmd_metrics(const char *glob)
{
	size_t n;
	char **names;
	int rc;

	if (g_json)
		return usage_error("metrics: the output is Prometheus text; --json does not apply");
	names = seg_names(glob, &n);
	rc = metrics_write(stdout, names, n);
	seg_names_free(names);
	if (rc)
		return fail(rc, "cannot write the metrics");
	return 0;
}

/* ------------------------------------------------------------------ */
/* Argument parsing                                                     */
/* ------------------------------------------------------------------ */

enum {
	O_JSON = 1 << 0, O_LIMIT = 1 << 1, O_HEX = 1 << 2, O_RAW = 1 << 3, O_TTL = 1 << 4,
	O_TYPE = 1 << 5, O_EXPIRED = 1 << 6, O_ALL = 1 << 7, O_CLEAN = 1 << 8,
	O_ENTRIES = 1 << 9, O_MEMORY = 1 << 10, O_MODE = 1 << 11, O_EVICTION = 1 << 12,
	O_READERS = 1 << 13, O_FORCE = 1 << 14, O_INTERVAL = 1 << 15, O_COUNT = 1 << 16,
	O_LOAD = 1 << 17, O_DEL = 1 << 18, O_END = 1 << 19, O_REPLACE = 1 << 20,
	O_VALUES = 1 << 21, O_DEPTH = 1 << 22, O_FILE = 1 << 23, O_WRITE = 1 << 24,
	O_CHECKSUM = 1 << 25,
	O_LAST = O_CHECKSUM,
};

static const struct option longopts[] = {
	{ "json", no_argument, NULL, O_JSON },
	{ "limit", required_argument, NULL, O_LIMIT },
	{ "hex", no_argument, NULL, O_HEX },
	{ "raw", no_argument, NULL, O_RAW },
	{ "ttl", required_argument, NULL, O_TTL },
	{ "type", required_argument, NULL, O_TYPE },
	{ "expired", no_argument, NULL, O_EXPIRED },
	{ "all", no_argument, NULL, O_ALL },
	{ "clean", no_argument, NULL, O_CLEAN },
	{ "entries", required_argument, NULL, O_ENTRIES },
	{ "memory", required_argument, NULL, O_MEMORY },
	{ "mode", required_argument, NULL, O_MODE },
	{ "eviction", required_argument, NULL, O_EVICTION },
	{ "checksum", no_argument, NULL, O_CHECKSUM },
	{ "readers", required_argument, NULL, O_READERS },
	{ "force", no_argument, NULL, O_FORCE },
	{ "interval", required_argument, NULL, O_INTERVAL },
	{ "count", required_argument, NULL, O_COUNT },
	{ "load", required_argument, NULL, O_LOAD },
	{ "del", no_argument, NULL, O_DEL },
	{ "end", no_argument, NULL, O_END },
	{ "replace", no_argument, NULL, O_REPLACE },
	{ "values", no_argument, NULL, O_VALUES },
	{ "depth", required_argument, NULL, O_DEPTH },
	{ "file", required_argument, NULL, O_FILE },
	{ "write", no_argument, NULL, O_WRITE },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 },
};

struct cmd {
	const char *name;
	int min_args, max_args; /* positional arguments after the command */
	unsigned allowed;       /* options besides --json */
};

static const struct cmd cmds[] = {
	{ "list", 0, 1, 0 },
	{ "summary", 0, 0, 0 },
	{ "metrics", 0, 1, 0 },
	{ "stat", 1, 1, 0 },
	{ "keys", 1, 2, O_LIMIT | O_VALUES },
	{ "prefixes", 1, 2, O_DEPTH },
	{ "get", 2, 2, O_HEX | O_RAW },
	{ "mget", 2, 1 + 4096, 0 },
	{ "set", 2, 3, O_TTL | O_TYPE | O_HEX | O_FILE },
	{ "del", 2, 2, 0 },
	{ "exists", 2, 2, 0 },
	{ "incr", 2, 3, O_TTL },
	{ "expire", 3, 3, 0 },
	{ "purge", 1, 2, O_EXPIRED | O_ALL },
	{ "readers", 1, 1, O_CLEAN },
	{ "health", 1, 1, O_WRITE },
	{ "create", 1, 1, O_ENTRIES | O_MEMORY | O_MODE | O_TTL | O_EVICTION | O_READERS |
			  O_CHECKSUM },
	{ "unlink", 1, 1, O_FORCE },
	{ "watch", 1, 1, O_INTERVAL | O_COUNT },
	{ "ttl", 1, 3, O_LOAD | O_DEL },
	{ "runs", 1, 1, O_END },
	{ "audit", 1, 1, 0 },
	{ "save", 2, 2, 0 },
	{ "load", 2, 2, O_REPLACE },
};

static const char *opt_name(unsigned bit)
{
	for (const struct option *o = longopts; o->name; o++)
		if ((unsigned)o->val == bit)
			return o->name;
	return "?";
}

int main(int argc, char **argv)
{
	unsigned seen = 0;
	const char *load = NULL;
	const struct cmd *cmd = NULL;
	const char **pos;
	int npos, opt;

	tool_name = prog;
	uint64_t limit = 0, ttl = TC_TTL_DEFAULT, type = 0, entries = 0, memory = 0, mode = 0;
	uint64_t readers = 0, interval = 1000, count = 0, dttl = 0, depth = 1;
	const char *file = NULL;
	int eviction = TC_EVICT_NONE;

	setvbuf(stdout, NULL, _IOFBF, 1 << 16);
	/* A closed pipe must not kill us before tc_close: fail the write instead. */
	signal(SIGPIPE, SIG_IGN);
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":hV", longopts, NULL)) != -1) {
		char *end;

		switch (opt) {
		case 'h':
			fputs(usage_text, stdout);
			return 0;
		case 'V':
			printf("shm-inspect (tickcache) %s\n", tc_version());
			return 0;
		case ':':
			return usage_error("option '%s' needs a value", argv[optind - 1]);
		case '?':
			/* A short option: name it alone (argv[optind - 1] may be the
			 * word before it); a long one is the whole argument. */
			if (optopt)
				return usage_error("unknown option '-%c'; a value that starts with '-' "
						   "goes after '--' (set NAME KEY -- -12.5)", optopt);
			return usage_error("unknown option '%s'; a value that starts with '-' goes "
					   "after '--'", argv[optind - 1]);
		default:
			break;
		}
		seen |= (unsigned)opt;
		if (opt == O_LOAD)
			load = optarg;
		if (opt == O_FILE)
			file = optarg;
		switch (opt) {
		case O_LIMIT:
			if (!parse_u64(optarg, &limit) || !limit)
				return usage_error("--limit wants a positive number, not '%s'", optarg);
			break;
		case O_DEPTH:
			if (!parse_u64(optarg, &depth) || !depth || depth > 64)
				return usage_error("--depth wants 1..64, not '%s'", optarg);
			break;
		case O_TTL:
			if (!parse_ms(optarg, &dttl))
				return usage_error("--ttl wants a duration (ms, or s/m/h suffixes) of at "
						   "most 100 years, not '%s'", optarg);
			ttl = dttl;
			break;
		case O_TYPE:
			if (!parse_u64(optarg, &type) || type > UINT32_MAX)
				return usage_error("--type wants a 32-bit number, not '%s'", optarg);
			break;
		case O_ENTRIES:
			if (!parse_size(optarg, &entries) || !entries)
				return usage_error("--entries wants a positive count, not '%s'", optarg);
			break;
		case O_MEMORY:
			if (!parse_size(optarg, &memory) || !memory)
				return usage_error("--memory wants a size (K/M/G suffixes), not '%s'",
						   optarg);
			break;
		case O_READERS:
			if (!parse_u64(optarg, &readers) || !readers || readers > UINT32_MAX)
				return usage_error("--readers wants a positive count, not '%s'", optarg);
			break;
		case O_MODE:
			errno = 0;
			mode = strtoull(optarg, &end, 8);
			if (errno || *end || !*optarg || mode > 07777)
				return usage_error("--mode wants octal permission bits, not '%s'", optarg);
			break;
		case O_EVICTION:
			if (!strcmp(optarg, "lru"))
				eviction = TC_EVICT_LRU;
			else if (!strcmp(optarg, "none"))
				eviction = TC_EVICT_NONE;
			else
				return usage_error("--eviction wants lru or none, not '%s'", optarg);
			break;
		case O_INTERVAL:
			if (!parse_ms(optarg, &interval) || !interval)
				return usage_error("--interval wants milliseconds > 0, not '%s'", optarg);
			break;
		case O_COUNT:
			if (!parse_u64(optarg, &count) || !count)
				return usage_error("--count wants a positive number, not '%s'", optarg);
			break;
		default:
			break;
		}
	}
	g_json = seen & O_JSON;
	if (optind >= argc)
		return usage_error("no command given");
	for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
		if (!strcmp(argv[optind], cmds[i].name))
			cmd = &cmds[i];
	if (!cmd)
		return usage_error("unknown command '%s'", argv[optind]);
	pos = (const char **)argv + optind + 1;
	npos = argc - optind - 1;
	if (npos < cmd->min_args)
		return usage_error("%s: missing argument%s", cmd->name, cmd->min_args - npos > 1 ? "s" : "");
	if (npos > cmd->max_args)
		return usage_error("%s: unexpected argument '%s'", cmd->name, pos[cmd->max_args]);
	for (unsigned b = O_LIMIT; b <= O_LAST; b <<= 1)
		if ((seen & b) && !(cmd->allowed & b))
			return usage_error("%s: option --%s does not apply", cmd->name, opt_name(b));

	if (!strcmp(cmd->name, "list"))
		return cmd_list(npos ? pos[0] : NULL);
	if (!strcmp(cmd->name, "summary"))
		return cmd_summary();
	if (!strcmp(cmd->name, "metrics"))
		return cmd_metrics(npos ? pos[0] : NULL);
	if (!strcmp(cmd->name, "prefixes"))
		return cmd_prefixes(pos[0], npos > 1 ? pos[1] : NULL, (unsigned)depth);
	if (!strcmp(cmd->name, "mget"))
		return cmd_mget(pos[0], pos + 1, npos - 1);
	if (!strcmp(cmd->name, "exists"))
		return cmd_exists(pos[0], pos[1]);
	if (!strcmp(cmd->name, "incr"))
		return cmd_incr(pos[0], pos[1], npos > 2 ? pos[2] : NULL, ttl);
	if (!strcmp(cmd->name, "expire"))
		return cmd_expire(pos[0], pos[1], pos[2]);
	if (!strcmp(cmd->name, "stat"))
		return cmd_stat(pos[0]);
	if (!strcmp(cmd->name, "keys"))
		return cmd_keys(pos[0], npos > 1 ? pos[1] : NULL, limit, seen & O_VALUES);
	if (!strcmp(cmd->name, "get")) {
		if ((seen & O_HEX) && (seen & O_RAW))
			return usage_error("get: --hex and --raw exclude each other");
		if ((seen & O_RAW) && g_json)
			return usage_error("get: --raw and --json exclude each other");
		return cmd_get(pos[0], pos[1], seen & O_RAW ? V_RAW : seen & O_HEX ? V_HEX : V_AUTO);
	}
	if (!strcmp(cmd->name, "set"))
		return cmd_set(pos[0], pos[1], npos > 2 ? pos[2] : NULL, file, seen & O_HEX, ttl,
			       (uint32_t)type);
	if (!strcmp(cmd->name, "del"))
		return cmd_del(pos[0], pos[1]);
	if (!strcmp(cmd->name, "purge"))
		return cmd_purge(pos[0], npos > 1 ? pos[1] : NULL, seen & O_EXPIRED, seen & O_ALL);
	if (!strcmp(cmd->name, "readers"))
		return cmd_readers(pos[0], seen & O_CLEAN);
	if (!strcmp(cmd->name, "health"))
		return cmd_health(pos[0], seen & O_WRITE);
	if (!strcmp(cmd->name, "create")) {
		tc_opts o;

		if (!(seen & O_ENTRIES))
			entries = TC_DEFAULT_ENTRIES;
		if (!(seen & O_MEMORY))
			memory = TC_DEFAULT_MEMORY;
		if (entries < TC_MIN_ENTRIES || entries > TC_MAX_ENTRIES)
			return usage_error("create: --entries must be %u..%llu", TC_MIN_ENTRIES,
					   (unsigned long long)TC_MAX_ENTRIES);
		if (memory < TC_MIN_MEMORY || memory > TC_MAX_MEMORY)
			return usage_error("create: --memory must be %uK..%lluG", TC_MIN_MEMORY >> 10,
					   (unsigned long long)(TC_MAX_MEMORY >> 30));
		if ((seen & O_READERS) && (readers < TC_MIN_READERS || readers > TC_MAX_READERS))
			return usage_error("create: --readers must be %u..%u", TC_MIN_READERS,
					   TC_MAX_READERS);
		memset(&o, 0, sizeof o);
		o.max_entries = entries;
		o.memory_bytes = memory;
		o.max_readers = (uint32_t)readers;
		o.mode = (uint32_t)mode;
		o.default_ttl_ms = seen & O_TTL ? dttl : 0;
		o.eviction = eviction;
		o.flags = TC_CREATE | TC_EXCL | TC_TOOL | (seen & O_CHECKSUM ? TC_CHECKSUM : 0);
		return cmd_create(pos[0], &o);
	}
	if (!strcmp(cmd->name, "unlink"))
		return cmd_unlink(pos[0], seen & O_FORCE);
	if (!strcmp(cmd->name, "watch"))
		return cmd_watch(pos[0], interval, count);
	if (!strcmp(cmd->name, "ttl") && npos == 2 && !(seen & (O_DEL | O_LOAD)))
		return cmd_key_ttl(pos[0], pos[1]);
	if (!strcmp(cmd->name, "ttl"))
		return cmd_ttl(pos[0], npos > 1 ? pos[1] : NULL, npos > 2 ? pos[2] : NULL,
			       seen & O_DEL, load);
	if (!strcmp(cmd->name, "audit"))
		return cmd_audit(pos[0]);
	if (!strcmp(cmd->name, "runs"))
		return cmd_runs(pos[0], seen & O_END);
	if (!strcmp(cmd->name, "save"))
		return cmd_save(pos[0], pos[1]);
	if (!strcmp(cmd->name, "load"))
		return cmd_load(pos[0], pos[1], seen & O_REPLACE);
	return usage_error("unknown command '%s'", cmd->name);
}
