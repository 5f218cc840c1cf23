/* SPDX-License-Identifier: MIT */
/*
 * query.c - what several commands ask of a segment: the other processes
 * attached and their reader slots, and the names of states and times.
 */
#include "inspect.h"

/* tc_tier.state as the tools print it. */
const char *tier_state_name(uint32_t st)
{
	return st == TC_TIER_UP ? "up" : st == TC_TIER_DOWN ? "down" : "none";
}

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
void jattached(const char *key, const struct counts *k)
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

/* Reader slots in use by other processes (the inspector's own excluded). */
int other_readers(tc_cache *c, uint32_t *n, uint32_t *dead)
{
	struct counts k = { .self_pid = (uint32_t)getpid() };
	int rc = tc_readers(c, count_reader, &k);

	*n = k.n;
	if (dead)
		*dead = k.dead;
	return rc;
}

/* Live processes attached, the inspector excluded. */
int other_attached(tc_cache *c, uint32_t skip_pid, struct counts *k)
{
	memset(k, 0, sizeof *k);
	k->self_pid = (uint32_t)getpid();
	k->skip_pid = skip_pid;
	return tc_attached(c, count_attach, k);
}

const char *eviction_name(int e)
{
	return e == TC_EVICT_LRU ? "lru" : e == TC_EVICT_NONE ? "none" : "unknown";
}

const char *fmt_time(char *buf, size_t cap, int64_t ms)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
	return buf;
}
