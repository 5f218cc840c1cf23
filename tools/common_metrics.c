/* SPDX-License-Identifier: MIT */
/*
 * common_metrics.c - the Prometheus text exposition (format 0.0.4, which
 * OpenMetrics parsers read too) of tickcache segments, shared by
 * `shm-inspect metrics` and shm-sweeper's --metrics-textfile and
 * --metrics-listen.
 *
 * The names follow the conventions of redis_exporter and memcached_exporter:
 * a tickcache_ prefix, counters ending in _total, base units (bytes,
 * seconds), one `segment` label, and tickcache_up 0 (with no other sample)
 * for a segment that cannot be read, so that an alert on up == 0 fires
 * instead of series silently vanishing.  Every family is written once with
 * its HELP and TYPE and all its samples together, as the format requires.
 *
 * Each segment is attached like any tool (TC_TOOL | TC_LAZY: a tool reader
 * slot, no prefaulting) and only read: tc_get_stats, tc_get_info,
 * tc_attached and tc_lease_holder count in no lifetime counter.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tickcache.h"
#include "common.h"

struct mseg {
	const char *name;
	bool up;
	tc_stats st;
	tc_info info;
	uint32_t attached;    /* live processes attached, the exporter excluded */
	bool sweeper;         /* a live sweeper holds the lease */
};

static int count_live(const tc_attach *a, void *arg)
{
	if (a->alive && a->pid != (uint32_t)getpid())
		(*(uint32_t *)arg)++;
	return 0;
}

static void read_seg(struct mseg *m)
{
	static const tc_opts attach = { .flags = TC_TOOL | TC_LAZY };
	tc_cache *c = NULL;
	uint32_t lpid = 0;
	uint64_t lage = 0;
	bool lalive = false;

	m->up = false;
	if (tc_open(&c, m->name, &attach))
		return;
	if (!tc_get_stats(c, &m->st) && !tc_get_info(c, &m->info)) {
		m->up = true;
		m->attached = 0;
		tc_attached(c, count_live, &m->attached);
		m->sweeper = !tc_lease_holder(c, &lpid, &lage, &lalive) && lpid && lalive;
	}
	tc_close(c);
}

/* A label value: backslash, double quote and newline escaped. */
static void label(FILE *f, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\' || *s == '"')
			fputc('\\', f);
		if (*s == '\n')
			fputs("\\n", f);
		else
			fputc(*s, f);
	}
}

static void family(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void sample_u(FILE *f, const char *name, const char *seg, uint64_t v)
{
	fprintf(f, "%s{segment=\"", name);
	label(f, seg);
	fprintf(f, "\"} %" PRIu64 "\n", v);
}

static void sample_d(FILE *f, const char *name, const char *seg, double v)
{
	fprintf(f, "%s{segment=\"", name);
	label(f, seg);
	fprintf(f, "\"} %.9g\n", v);
}

/* One family of a uint64 field of struct mseg, over every readable segment. */
#define FAMILY_U(f, v, n, nm, type, help, expr)                                \
	do {                                                                   \
		family(f, nm, type, help);                                     \
		for (size_t i_ = 0; i_ < (n); i_++)                            \
			if ((v)[i_].up) {                                      \
				const struct mseg *m = &(v)[i_];               \
				sample_u(f, nm, m->name, (uint64_t)(expr));    \
			}                                                      \
	} while (0)

int metrics_write(FILE *f, char *const *names, size_t n)
{
	struct mseg *v = calloc(n ? n : 1, sizeof *v);

	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		v[i].name = names[i];
		read_seg(&v[i]);
	}
	family(f, "tickcache_up", "gauge",
	       "1 when the segment could be attached and read, else 0.");
	for (size_t i = 0; i < n; i++)
		sample_u(f, "tickcache_up", v[i].name, v[i].up);

	FAMILY_U(f, v, n, "tickcache_hits_total", "counter",
		 "Reads (tc_get, tc_peek) that found a live value.", m->st.hits);
	FAMILY_U(f, v, n, "tickcache_misses_total", "counter",
		 "Reads that found no live value.", m->st.misses);
	FAMILY_U(f, v, n, "tickcache_sets_total", "counter",
		 "Successful writes: set, cas, incr, expire, DTO appends, policy changes.",
		 m->st.sets);
	FAMILY_U(f, v, n, "tickcache_adds_total", "counter", "Successful tc_add calls.",
		 m->st.adds);
	FAMILY_U(f, v, n, "tickcache_deletes_total", "counter", "Successful tc_del calls.",
		 m->st.deletes);
	FAMILY_U(f, v, n, "tickcache_expirations_total", "counter",
		 "Entries removed because their TTL passed.", m->st.expirations);
	FAMILY_U(f, v, n, "tickcache_evictions_total", "counter",
		 "Entries dropped by the LRU policy to make room.", m->st.evictions);
	FAMILY_U(f, v, n, "tickcache_errors_total", "counter",
		 "Calls that failed other than by a miss, an existing key or a conflict.",
		 m->st.errors);
	FAMILY_U(f, v, n, "tickcache_operations_total", "counter", "All counted calls.",
		 m->st.ops);
	FAMILY_U(f, v, n, "tickcache_clears_total", "counter",
		 "tc_purge calls and ended runs.", m->st.clears);
	FAMILY_U(f, v, n, "tickcache_purged_keys_total", "counter",
		 "Keys removed by tc_purge.", m->st.keys_deleted);
	FAMILY_U(f, v, n, "tickcache_slow_operations_total", "counter",
		 "Timed calls slower than the slow threshold (TICKCACHE_SLOW_US).",
		 m->st.slow_ops);

	/* Latency: one call in 64 is timed; a summary without quantiles. */
	family(f, "tickcache_sampled_latency_seconds", "summary",
	       "Latency of the timed calls (one call in 64 is timed).");
	for (size_t i = 0; i < n; i++) {
		if (!v[i].up)
			continue;
		sample_d(f, "tickcache_sampled_latency_seconds_sum", v[i].name,
			 (double)v[i].st.lat_mean_ns * (double)v[i].st.lat_samples / 1e9);
		sample_u(f, "tickcache_sampled_latency_seconds_count", v[i].name,
			 v[i].st.lat_samples);
	}

	FAMILY_U(f, v, n, "tickcache_entries", "gauge",
		 "Live keys (expired ones not yet swept included).", m->st.entries);
	FAMILY_U(f, v, n, "tickcache_entries_limit", "gauge", "Index capacity in keys.",
		 m->st.max_entries);
	FAMILY_U(f, v, n, "tickcache_memory_used_bytes", "gauge",
		 "Arena bytes in allocated blocks (live, retired and in flight).",
		 m->st.memory_used);
	FAMILY_U(f, v, n, "tickcache_memory_retired_bytes", "gauge",
		 "Arena bytes waiting for a grace period.", m->st.memory_retired);
	FAMILY_U(f, v, n, "tickcache_memory_limit_bytes", "gauge", "Arena size.",
		 m->st.memory_bytes);
	FAMILY_U(f, v, n, "tickcache_segment_bytes", "gauge",
		 "Size of the shared-memory object.", m->info.segment_bytes);
	FAMILY_U(f, v, n, "tickcache_readers", "gauge",
		 "Reader slots in use by strategy threads.", m->st.readers);
	FAMILY_U(f, v, n, "tickcache_readers_limit", "gauge", "Reader slots of strategies.",
		 m->st.max_readers);
	FAMILY_U(f, v, n, "tickcache_attached_processes", "gauge",
		 "Live processes attached (the exporter excluded).", m->attached);
	FAMILY_U(f, v, n, "tickcache_epoch_lag", "gauge",
		 "Reclamation epochs the oldest active reader is behind (a stuck reader grows it).",
		 m->st.epoch_lag);
	FAMILY_U(f, v, n, "tickcache_sweeper_up", "gauge",
		 "1 when a live shm-sweeper holds the segment's lease.", m->sweeper);
	FAMILY_U(f, v, n, "tickcache_run_active", "gauge",
		 "1 while a point-in-time run is active.", m->st.run_active);
	FAMILY_U(f, v, n, "tickcache_dto_lists", "gauge", "DTO lists in the index.",
		 m->st.dto_lists);
	FAMILY_U(f, v, n, "tickcache_uptime_seconds", "gauge", "Seconds since the segment was created.",
		 m->st.uptime_ms / 1000);
	FAMILY_U(f, v, n, "tickcache_created_timestamp_seconds", "gauge",
		 "Creation time of the segment, Unix seconds.",
		 m->info.created_ms > 0 ? (uint64_t)m->info.created_ms / 1000 : 0);

	family(f, "tickcache_class_blocks", "gauge",
	       "Blocks of each allocator size class, by state (used, free).");
	for (size_t i = 0; i < n; i++) {
		for (uint32_t k = 0; v[i].up && k < v[i].st.nclasses && k < TC_NCLASSES; k++) {
			for (int used = 1; used >= 0; used--) {
				fprintf(f, "tickcache_class_blocks{segment=\"");
				label(f, v[i].name);
				fprintf(f, "\",size=\"%" PRIu32 "\",state=\"%s\"} %" PRIu64 "\n",
					v[i].st.classes[k].size, used ? "used" : "free",
					used ? v[i].st.classes[k].used : v[i].st.classes[k].free);
			}
		}
	}
	free(v);
	return ferror(f) ? -EIO : 0;
}
