/* SPDX-License-Identifier: MIT */
/*
 * stats.c - tc_get_stats(): the header's totals plus every reader slot's
 * counters, and the gauges read from the header.
 * Nothing here is on the hot path.
 */
#include "internal.h"

/* The operation counters: the totals (of calls made without a slot) plus
 * every slot's, claimed or free: a slot keeps its counters from owner to
 * owner (epoch.c, tc__empty_slot). */
static void stats_counters(tc_cache *c, tc_stats *out)
{
	uint64_t ctr[TC_NCOUNTERS];
	for (int i = 0; i < TC_NCOUNTERS; i++)
		ctr[i] = tc__ld(&c->h->tot[i]);
	uint32_t readers = 0, tools = 0;
	for (uint32_t r = 0; r < c->nslots; r++) {
		struct tc_rslot *s = &c->slots[r];
		for (int i = 0; i < TC_NCOUNTERS; i++)
			ctr[i] += tc__ld(&s->ctr[i]);
		if (!tc__ld(&s->owner))
			continue;
		if (r < c->max_readers)
			readers++;
		else
			tools++;
	}
	out->readers = readers;
	out->tool_readers = tools;
	out->hits = ctr[TC_C_HITS];
	out->misses = ctr[TC_C_MISSES];
	out->sets = ctr[TC_C_SETS];
	out->adds = ctr[TC_C_ADDS];
	out->deletes = ctr[TC_C_DELETES];
	out->expirations = ctr[TC_C_EXPIRATIONS];
	out->evictions = ctr[TC_C_EVICTIONS];
	out->errors = ctr[TC_C_ERRORS];
	/* A hit or a miss is counted once, not again in TC_C_OPS (kv.c,
	 * count_read). */
	out->ops = ctr[TC_C_OPS] + ctr[TC_C_HITS] + ctr[TC_C_MISSES];
	out->clears = ctr[TC_C_CLEARS];
	out->keys_deleted = ctr[TC_C_KEYS_DELETED];
	uint64_t lookups = out->hits + out->misses;
	out->hit_rate = lookups ? (double)out->hits / (double)lookups : 0.0;
	out->lat_samples = ctr[TC_C_LAT_SAMPLES];
	out->lat_mean_ns = out->lat_samples ? ctr[TC_C_LAT_SUM] / out->lat_samples : 0;
	out->slow_ops = ctr[TC_C_SLOW_OPS];
	out->slow_threshold_ns = c->slow_ns;
}

/* The arena: per class, and carved, used and retired in all. */
static void stats_memory(tc_cache *c, tc_stats *out)
{
	out->memory_bytes = c->arena_bytes;
	uint64_t used = 0;
	uint32_t n = 0;
	for (uint32_t k = 0; k < TC_CLASSES_USED; k++) {
		uint64_t u = tc__ld(&c->h->cls[k].used), f = tc__ld(&c->h->cls[k].nfree);
		if (u > c->arena_units)
			u = 0; /* a scribbled gauge, not a real count */
		if (f > c->arena_units)
			f = 0;
		used += u * tc__class_size(k);
		if (u || f) {
			out->classes[n].size = (uint32_t)tc__class_size(k);
			out->classes[n].used = u;
			out->classes[n].free = f;
			n++;
		}
	}
	out->nclasses = n;
	out->memory_used = used;
	int64_t rb = tc__retired_sum(c, TC_C_RETIRED_BYTES);
	out->memory_retired = rb > 0 ? (uint64_t)rb : 0;
	uint64_t carved = tc__carved(c); /* a scribbled word: nothing left to carve */
	out->memory_carved = (carved == TC_BUMP_BAD ? c->arena_units : carved) * TC_BLOCK_UNIT;
	out->merges = tc__merges(c);
}

int tc_get_stats(tc_cache *c, tc_stats *out)
{
	if (!c || !out)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	stats_counters(c, out);
	/* live may be off by one per process killed inside an insert or a
	 * delete (docs/design.md, "Crash points"): never below 0. */
	int64_t live = (int64_t)tc__ld(&c->h->live);
	out->entries = live < 0 ? 0 : (uint64_t)live;
	out->max_entries = c->max_entries;
	out->index_slots = c->nbuckets * TC_BUCKET_SLOTS;
	stats_memory(c, out);
	out->max_readers = c->max_readers;
	uint32_t att = 0;
	for (uint32_t i = 0; i < c->max_attach; i++)
		if (tc__ld(&c->attach[i].pid))
			att++;
	out->attached = att;
	out->epoch = tc__ld(&c->h->epoch);
	uint64_t m = tc__min_active_epoch(c);
	out->epoch_lag = m != UINT64_MAX && out->epoch > m ? out->epoch - m : 0;
	out->created_ms = tc__ld(&c->h->created_ms);
	int64_t now = tc__now_ms();
	/* Unsigned difference: a scribbled created_ms far in the past must not
	 * overflow a signed subtraction. */
	out->uptime_ms = now > out->created_ms ? (uint64_t)now - (uint64_t)out->created_ms : 0;
	uint64_t rw = tc__ld(&c->h->run_word), heads = tc__ld(&c->h->dto_heads);
	out->run_generation = rw >> 32;
	out->run_active = (rw & 0xffffffffu) != 0;
	out->dto_lists = heads > c->max_entries ? 0 : heads; /* transiently below 0 */
	out->ttl_policies = tc__policy_count(c);
	out->checksum_failures = tc__ld(&c->h->csum_bad);
	return 0;
}
