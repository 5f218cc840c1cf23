/* SPDX-License-Identifier: MIT */
/*
 * list.c - the commands over every segment in /dev/shm: list, summary,
 * metrics.
 */
#include "inspect.h"

int cmd_list(const char *glob)
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

/*
 * cmd_summary - one INFO-like view over every segment: how many, how
 * full, traffic and hit rate, processes, sweeper coverage, and the ones
 * that cannot be read.
 */
int cmd_summary(void)
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
int cmd_metrics(const char *glob)
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
