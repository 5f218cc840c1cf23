/* SPDX-License-Identifier: MIT */
/*
 * stat.c - the stat command: a segment's counters, gauges and settings.
 */
#include "inspect.h"

/* What stat shows, read once. */
struct stat_view {
	tc_info info;
	tc_stats st;
	tc_tier tier;
	struct counts att;
	uint32_t lpid, dead, readers;
	uint64_t lage;
	bool lalive;
	double fill;
};

static void stat_json(const struct stat_view *v)
{
	char b1[32];

	jobj(NULL);
	jstr("name", v->info.name);
	ju64("layout_version", v->info.layout_version);
	ju64("hits", v->st.hits);
	ju64("misses", v->st.misses);
	jdbl("hit_rate", hit_rate(v->st.hits, v->st.misses));
	ju64("sets", v->st.sets);
	ju64("adds", v->st.adds);
	ju64("deletes", v->st.deletes);
	ju64("expirations", v->st.expirations);
	ju64("evictions", v->st.evictions);
	ju64("errors", v->st.errors);
	ju64("ops", v->st.ops);
	ju64("clears", v->st.clears);
	ju64("keys_deleted", v->st.keys_deleted);
	ju64("lat_samples", v->st.lat_samples);
	ju64("lat_mean_ns", v->st.lat_mean_ns);
	ju64("slow_ops", v->st.slow_ops);
	ju64("slow_threshold_ns", v->st.slow_threshold_ns);
	ju64("entries", v->st.entries);
	ju64("max_entries", v->st.max_entries);
	ju64("index_slots", v->st.index_slots);
	jdbl("index_fill", v->fill);
	ju64("memory_bytes", v->st.memory_bytes);
	ju64("memory_used", v->st.memory_used);
	ju64("memory_retired", v->st.memory_retired);
	ju64("memory_carved", v->st.memory_carved);
	ju64("merges", v->st.merges);
	ju64("max_readers", v->st.max_readers);
	ju64("readers", v->st.readers);
	ju64("tool_readers", v->st.tool_readers);
	ju64("readers_other", v->readers);
	ju64("readers_dead", v->dead);
	ju64("attached", v->att.n);
	ju64("attached_other", v->att.n);
	ju64("epoch", v->st.epoch);
	ju64("epoch_lag", v->st.epoch_lag);
	ji64("created_ms", v->st.created_ms);
	ju64("uptime_ms", v->st.uptime_ms);
	ju64("segment_bytes", v->info.segment_bytes);
	jstr("mode", (snprintf(b1, sizeof b1, "%04o", v->info.mode), b1));
	ju64("default_ttl_ms", v->info.default_ttl_ms);
	jstr("eviction", eviction_name(v->info.eviction));
	jbool("checksums", (v->info.flags & TC_CHECKSUM) != 0);
	ju64("checksum_failures", v->st.checksum_failures);
	ju64("creator_pid", v->info.creator_pid);
	if (v->lpid) {
		ju64("sweeper_pid", v->lpid);
		jbool("sweeper_alive", v->lalive);
		ju64("sweeper_age_ms", v->lage);
	} else {
		jnull("sweeper_pid");
		jbool("sweeper_alive", false);
		jnull("sweeper_age_ms");
	}
	/* The Redis tier (shm-bridge): none, up or down. */
	jobj("tier");
	jstr("state", tier_state_name(v->tier.state));
	if (v->tier.pid) {
		ju64("bridge_pid", v->tier.pid);
		jbool("bridge_alive", v->tier.alive);
		ju64("heartbeat_age_ms", v->tier.beat_age_ms);
	} else {
		jnull("bridge_pid");
		jbool("bridge_alive", false);
		jnull("heartbeat_age_ms");
	}
	ji64("since_ms", v->tier.since_ms);
	jobj_end();
	jarr("classes");
	for (uint32_t i = 0; i < v->st.nclasses && i < TC_NCLASSES; i++) {
		jobj(NULL);
		ju64("size", v->st.classes[i].size);
		ju64("used", v->st.classes[i].used);
		ju64("free", v->st.classes[i].free);
		jobj_end();
	}
	jarr_end();
	jobj_end();
}

static void stat_human(const struct stat_view *v)
{
	char b1[32], b2[32];

#define ROW(k, fmt, ...) printf("%-18s " fmt "\n", k, __VA_ARGS__)
	ROW("name", "%s", v->info.name);
	ROW("layout_version", "%" PRIu32, v->info.layout_version);
	ROW("hits", "%" PRIu64, v->st.hits);
	ROW("misses", "%" PRIu64, v->st.misses);
	ROW("hit_rate", "%.2f%%", hit_rate(v->st.hits, v->st.misses) * 100.0);
	ROW("sets", "%" PRIu64, v->st.sets);
	ROW("adds", "%" PRIu64, v->st.adds);
	ROW("deletes", "%" PRIu64, v->st.deletes);
	ROW("expirations", "%" PRIu64, v->st.expirations);
	ROW("evictions", "%" PRIu64, v->st.evictions);
	ROW("errors", "%" PRIu64, v->st.errors);
	ROW("ops", "%" PRIu64, v->st.ops);
	ROW("clears", "%" PRIu64, v->st.clears);
	ROW("keys_deleted", "%" PRIu64, v->st.keys_deleted);
	ROW("latency", "mean %" PRIu64 " ns over %" PRIu64 " samples, %" PRIu64
	    " slow (> %" PRIu64 " ns)", v->st.lat_mean_ns, v->st.lat_samples, v->st.slow_ops,
	    v->st.slow_threshold_ns);
	ROW("entries", "%" PRIu64 " / %" PRIu64 " (%.1f%% full, %" PRIu64 " index slots)",
	    v->st.entries, v->st.max_entries, v->fill * 100.0, v->st.index_slots);
	ROW("memory_used", "%s (%" PRIu64 " bytes, %.1f%% of %s)",
	    fmt_size(b1, sizeof b1, v->st.memory_used), v->st.memory_used,
	    v->st.memory_bytes ? 100.0 * (double)v->st.memory_used / (double)v->st.memory_bytes : 0.0,
	    fmt_size(b2, sizeof b2, v->st.memory_bytes));
	ROW("memory_retired", "%" PRIu64, v->st.memory_retired);
	ROW("memory_carved", "%" PRIu64, v->st.memory_carved);
	ROW("merges", "%" PRIu64 " (free blocks re-cut for another size class)", v->st.merges);
	ROW("readers", "%" PRIu32 " / %" PRIu32 " slots (%" PRIu32 " of other processes, %"
	    PRIu32 " dead), %" PRIu32 " / %u tool slots", v->st.readers, v->st.max_readers,
	    v->readers, v->dead, v->st.tool_readers, TC_TOOL_READERS);
	ROW("attached", "%" PRIu32 " processes (this one not counted)", v->att.n);
	ROW("epoch", "%" PRIu64 " (lag %" PRIu64 ")", v->st.epoch, v->st.epoch_lag);
	ROW("created", "%s by pid %" PRIu32, fmt_time(b1, sizeof b1, v->st.created_ms),
	    v->info.creator_pid);
	ROW("uptime", "%s", fmt_duration(b1, sizeof b1, v->st.uptime_ms));
	ROW("segment_bytes", "%" PRIu64 " (%s)", v->info.segment_bytes,
	    fmt_size(b2, sizeof b2, v->info.segment_bytes));
	ROW("mode", "%04o", v->info.mode);
	if (v->info.default_ttl_ms)
		ROW("default_ttl_ms", "%" PRIu64, v->info.default_ttl_ms);
	else
		ROW("default_ttl_ms", "%s", "0 (never expires)");
	ROW("eviction", "%s", eviction_name(v->info.eviction));
	if (v->info.flags & TC_CHECKSUM)
		ROW("checksums", "on, %" PRIu64 " failures", v->st.checksum_failures);
	else
		ROW("checksums", "%s", "off");
	if (v->lpid)
		ROW("sweeper", "pid %" PRIu32 " %s, heartbeat %" PRIu64 " ms ago", v->lpid,
		    v->lalive ? "alive" : "DEAD", v->lage);
	else
		ROW("sweeper", "%s", "none");
	if (v->tier.pid)
		ROW("tier", "%s, bridge pid %" PRIu32 " %s, heartbeat %" PRIu64 " ms ago",
		    tier_state_name(v->tier.state), v->tier.pid, v->tier.alive ? "alive" : "DEAD",
		    v->tier.beat_age_ms);
	else
		ROW("tier", "%s", tier_state_name(v->tier.state));
#undef ROW
	if (v->st.nclasses) {
		printf("\n%5s %10s %12s %12s %14s\n", "CLASS", "SIZE", "USED", "FREE", "USED_BYTES");
		for (uint32_t i = 0; i < v->st.nclasses && i < TC_NCLASSES; i++)
			printf("%5" PRIu32 " %10" PRIu32 " %12" PRIu64 " %12" PRIu64 " %14" PRIu64 "\n", i,
			       v->st.classes[i].size, v->st.classes[i].used, v->st.classes[i].free,
			       (uint64_t)v->st.classes[i].size * v->st.classes[i].used);
	}
}

int cmd_stat(const char *name)
{
	struct stat_view v = { .lpid = 0 };
	tc_cache *c;
	int rc, ex = open_seg(name, &c);

	if (ex)
		return ex;
	rc = tc_get_info(c, &v.info);
	if (!rc)
		rc = tc_get_stats(c, &v.st);
	if (rc) {
		ex = fail(rc, "cannot read segment '%s'", name);
		goto out;
	}
	if (tc_lease_holder(c, &v.lpid, &v.lage, &v.lalive))
		v.lpid = 0;
	if (tc_tier_get(c, &v.tier))
		memset(&v.tier, 0, sizeof(v.tier));
	other_attached(c, 0, &v.att);
	other_readers(c, &v.readers, &v.dead);
	v.fill = v.st.max_entries ? (double)v.st.entries / (double)v.st.max_entries : 0.0;
	if (g_json)
		stat_json(&v);
	else
		stat_human(&v);
out:
	tc_close(c);
	return ex;
}
