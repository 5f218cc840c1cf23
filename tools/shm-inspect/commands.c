/* SPDX-License-Identifier: MIT */
/*
 * commands.c - the table of shm-inspect's commands: name, number of
 * arguments, the options each takes, and how the parsed command line
 * becomes the arguments of the function that runs it.  main.c has checked
 * the arguments' number and the options against the table before a run_*
 * is called.
 */
#include "inspect.h"

/* The argument at I, NULL when there are not that many. */
static const char *opt_pos(const struct args *a, int i)
{
	return a->npos > i ? a->pos[i] : NULL;
}

static int run_list(const struct args *a) { return cmd_list(opt_pos(a, 0)); }
static int run_summary(const struct args *a) { (void)a; return cmd_summary(); }
static int run_metrics(const struct args *a) { return cmd_metrics(opt_pos(a, 0)); }
static int run_stat(const struct args *a) { return cmd_stat(a->pos[0]); }
static int run_del(const struct args *a) { return cmd_del(a->pos[0], a->pos[1]); }
static int run_exists(const struct args *a) { return cmd_exists(a->pos[0], a->pos[1]); }
static int run_audit(const struct args *a) { return cmd_audit(a->pos[0]); }
static int run_save(const struct args *a) { return cmd_save(a->pos[0], a->pos[1]); }

static int run_keys(const struct args *a)
{
	return cmd_keys(a->pos[0], opt_pos(a, 1), a->limit, a->seen & O_VALUES);
}

static int run_prefixes(const struct args *a)
{
	return cmd_prefixes(a->pos[0], opt_pos(a, 1), (unsigned)a->depth);
}

static int run_get(const struct args *a)
{
	if ((a->seen & O_HEX) && (a->seen & O_RAW))
		return usage_error("get: --hex and --raw exclude each other");
	if ((a->seen & O_RAW) && g_json)
		return usage_error("get: --raw and --json exclude each other");
	return cmd_get(a->pos[0], a->pos[1],
		       a->seen & O_RAW ? V_RAW : a->seen & O_HEX ? V_HEX : V_AUTO);
}

static int run_mget(const struct args *a)
{
	return cmd_mget(a->pos[0], a->pos + 1, a->npos - 1);
}

static int run_set(const struct args *a)
{
	return cmd_set(a->pos[0], a->pos[1], opt_pos(a, 2), a->file, a->seen & O_HEX, a->ttl,
		       (uint32_t)a->type);
}

static int run_incr(const struct args *a)
{
	return cmd_incr(a->pos[0], a->pos[1], opt_pos(a, 2), a->ttl);
}

static int run_expire(const struct args *a)
{
	return cmd_expire(a->pos[0], a->pos[1], a->pos[2]);
}

static int run_purge(const struct args *a)
{
	return cmd_purge(a->pos[0], opt_pos(a, 1), a->seen & O_EXPIRED, a->seen & O_ALL);
}

static int run_readers(const struct args *a)
{
	return cmd_readers(a->pos[0], a->seen & O_CLEAN);
}

static int run_health(const struct args *a)
{
	return cmd_health(a->pos[0], a->seen & O_WRITE);
}

/* create: the geometry from the options, checked against the library's bounds. */
static int run_create(const struct args *a)
{
	uint64_t entries = a->seen & O_ENTRIES ? a->entries : TC_DEFAULT_ENTRIES;
	uint64_t memory = a->seen & O_MEMORY ? a->memory : TC_DEFAULT_MEMORY;
	tc_opts o;

	if (entries < TC_MIN_ENTRIES || entries > TC_MAX_ENTRIES)
		return usage_error("create: --entries must be %u..%llu", TC_MIN_ENTRIES,
				   (unsigned long long)TC_MAX_ENTRIES);
	if (memory < TC_MIN_MEMORY || memory > TC_MAX_MEMORY)
		return usage_error("create: --memory must be %uK..%lluG", TC_MIN_MEMORY >> 10,
				   (unsigned long long)(TC_MAX_MEMORY >> 30));
	if ((a->seen & O_READERS) && (a->readers < TC_MIN_READERS || a->readers > TC_MAX_READERS))
		return usage_error("create: --readers must be %u..%u", TC_MIN_READERS,
				   TC_MAX_READERS);
	memset(&o, 0, sizeof o);
	o.max_entries = entries;
	o.memory_bytes = memory;
	o.max_readers = (uint32_t)a->readers;
	o.mode = (uint32_t)a->mode;
	o.default_ttl_ms = a->seen & O_TTL ? a->dttl : 0;
	o.eviction = a->eviction;
	o.flags = TC_CREATE | TC_EXCL | TC_TOOL | (a->seen & O_CHECKSUM ? TC_CHECKSUM : 0);
	return cmd_create(a->pos[0], &o);
}

static int run_unlink(const struct args *a)
{
	return cmd_unlink(a->pos[0], a->seen & O_FORCE);
}

static int run_watch(const struct args *a)
{
	return cmd_watch(a->pos[0], a->interval, a->count);
}

/* ttl NAME KEY is a key's TTL; every other form is about TTL policies. */
static int run_ttl(const struct args *a)
{
	if (a->npos == 2 && !(a->seen & (O_DEL | O_LOAD)))
		return cmd_key_ttl(a->pos[0], a->pos[1]);
	return cmd_ttl(a->pos[0], opt_pos(a, 1), opt_pos(a, 2), a->seen & O_DEL, a->load);
}

static int run_runs(const struct args *a)
{
	return cmd_runs(a->pos[0], a->seen & O_END);
}

static int run_wait(const struct args *a)
{
	return cmd_wait(a->pos[0], opt_pos(a, 1), a->since, a->seen & O_SINCE, a->timeout);
}

static int run_load(const struct args *a)
{
	return cmd_load(a->pos[0], a->pos[1], a->seen & O_REPLACE);
}

const struct cmd cmds[] = {
	{ "list", 0, 1, 0, run_list },
	{ "summary", 0, 0, 0, run_summary },
	{ "metrics", 0, 1, 0, run_metrics },
	{ "stat", 1, 1, 0, run_stat },
	{ "keys", 1, 2, O_LIMIT | O_VALUES, run_keys },
	{ "prefixes", 1, 2, O_DEPTH, run_prefixes },
	{ "get", 2, 2, O_HEX | O_RAW, run_get },
	{ "mget", 2, 1 + 4096, 0, run_mget },
	{ "set", 2, 3, O_TTL | O_TYPE | O_HEX | O_FILE, run_set },
	{ "del", 2, 2, 0, run_del },
	{ "exists", 2, 2, 0, run_exists },
	{ "incr", 2, 3, O_TTL, run_incr },
	{ "expire", 3, 3, 0, run_expire },
	{ "purge", 1, 2, O_EXPIRED | O_ALL, run_purge },
	{ "readers", 1, 1, O_CLEAN, run_readers },
	{ "health", 1, 1, O_WRITE, run_health },
	{ "create", 1, 1, O_ENTRIES | O_MEMORY | O_MODE | O_TTL | O_EVICTION | O_READERS |
			  O_CHECKSUM, run_create },
	{ "unlink", 1, 1, O_FORCE, run_unlink },
	{ "watch", 1, 1, O_INTERVAL | O_COUNT, run_watch },
	{ "ttl", 1, 3, O_LOAD | O_DEL, run_ttl },
	{ "runs", 1, 1, O_END, run_runs },
	{ "audit", 1, 1, 0, run_audit },
	{ "save", 2, 2, 0, run_save },
	{ "load", 2, 2, O_REPLACE, run_load },
	{ "wait", 1, 2, O_SINCE | O_TIMEOUT, run_wait },
};
const size_t ncmds = sizeof cmds / sizeof cmds[0];
