/* SPDX-License-Identifier: MIT */
/*
 * load.c - single-flight read-through loading (README.md, "Single-flight
 * read-through"), built on kv.c's generic writer (tc__write) in a namespace of its own
 * (TC_KIND_LOAD), so no ordinary key collides.
 *
 *
 * The claim is struct tc_load_claim (layout.h).  ("Claim", not "lease":
 * the sweeper's lease (sweep.c) and the coalescer's turn (coalesce.c) are
 * other things.)
 */
#include "internal.h"

#include <time.h>

static uint64_t token_seq;
static uint64_t new_token(void)
{
	uint64_t n = tc__add_ret(&token_seq, 1);
	return (uint64_t)tc__self_pid() << 40 ^ tc__mono_ns() << 8 ^ n;
}

/* Delete our claim (TOKEN) if it is still ours. */
static void claim_release(tc_cache *c, const void *key, size_t klen, uint64_t token)
{
	struct tc_load_claim cur;
	uint64_t ver;
	if (tc__read_kind(c, TC_KIND_LOAD, key, klen, &cur, sizeof(cur), TC_LOAD_CLAIM_TYPE, &ver) == 0 &&
	    cur.token == token)
		(void)tc__del_version(c, TC_KIND_LOAD, key, klen, ver);
}

/* We hold the claim: double-check, load, store, release. */
static int run_load(tc_cache *c, const void *key, size_t klen, void *buf, size_t cap,
		    tc_meta *meta, uint32_t type, uint64_t ttl_ms, tc_loader_fn load, void *arg,
		    uint64_t token)
{
	int rc = tc_get(c, key, klen, buf, cap, meta);
	if (rc == 0 || rc == -E2BIG) {
		claim_release(c, key, klen, token);
		return rc;
	}
	size_t len = 0;
	rc = load(key, klen, buf, cap, &len, arg);
	if (rc == 0 && len > cap)
		rc = -E2BIG; /* the loader broke its contract: nothing is cached */
	if (rc == 0) {
		int sr = tc_set(c, key, klen, buf, len, type, ttl_ms);
		if (meta) {
			tc_meta m;
			int gr = sr == 0 ? tc_get(c, key, klen, NULL, 0, &m) : -ENOENT;
			if ((gr == 0 || gr == -E2BIG) && m.len == len && m.type == type)
				*meta = m;
			else /* not cached (or replaced already): version 0 says so */
				*meta = (tc_meta){ .len = len, .type = type };
		}
	}
	claim_release(c, key, klen, token);
	return rc;
}

int tc_get_or_load(tc_cache *c, const void *key, size_t klen, void *buf, size_t cap,
		   tc_meta *meta, uint32_t type, uint64_t ttl_ms, uint64_t wait_ms,
		   tc_loader_fn load, void *arg)
{
	if (!c || !load || !tc__valid_key(key, klen) || (!buf && cap))
		return -EINVAL;
	if (wait_ms > 365ull * 24 * 3600 * 1000)
		wait_ms = 365ull * 24 * 3600 * 1000;
	uint64_t claim_ms = wait_ms < 1000 ? 1000 : wait_ms;
	uint64_t t_end = tc__mono_ns() + wait_ms * 1000000ull;
	long nap_ns = 50000;
	for (int round = 0;; round++) {
		if (round > 0 && tc__mono_ns() >= t_end)
			return -ETIMEDOUT;
		int rc = tc_get(c, key, klen, buf, cap, meta);
		if (rc != -ENOENT)
			return rc;
		struct tc_load_claim me = {
			.pid = tc__self_pid(),
			.start = tc__self_start(),
			.deadline_ms = tc__now_ms() + (int64_t)claim_ms,
			.token = new_token(),
		};
		rc = tc__write(c, &(struct tc__wreq){ .kind = TC_KIND_LOAD, .key = key,
						      .klen = klen, .val = &me, .vlen = sizeof(me),
						      .type = TC_LOAD_CLAIM_TYPE, .ttl_ms = claim_ms,
						      .op = TC_OP_ADD });
		if (rc == 0)
			return run_load(c, key, klen, buf, cap, meta, type, ttl_ms, load, arg,
					me.token);
		if (rc != -EEXIST)
			return rc;
		/* Someone holds the claim: take it over if it is abandoned. */
		struct tc_load_claim cur;
		uint64_t ver;
		rc = tc__read_kind(c, TC_KIND_LOAD, key, klen, &cur, sizeof(cur), TC_LOAD_CLAIM_TYPE, &ver);
		if (rc == -ENOENT)
			continue; /* released or expired just now: look again */
		if (rc == 0 && (cur.deadline_ms <= tc__now_ms() ||
				!tc__pid_alive(cur.pid, cur.start))) {
			rc = tc__write(c, &(struct tc__wreq){
				.kind = TC_KIND_LOAD, .key = key, .klen = klen, .val = &me,
				.vlen = sizeof(me), .type = TC_LOAD_CLAIM_TYPE, .ttl_ms = claim_ms,
				.op = TC_OP_CAS, .expect = ver });
			if (rc == 0)
				return run_load(c, key, klen, buf, cap, meta, type, ttl_ms, load,
						arg, me.token);
			if (rc != TC_ECONFLICT && rc != -ENOENT)
				return rc;
			continue;
		} else if (rc && rc != TC_ECORRUPT) {
			return rc;
		}
		uint64_t now = tc__mono_ns();
		if (now >= t_end)
			return -ETIMEDOUT;
		uint64_t left = t_end - now;
		struct timespec ts = { 0, (uint64_t)nap_ns < left ? nap_ns : (long)left };
		nanosleep(&ts, NULL);
		if (nap_ns < 10000000L)
			nap_ns *= 2;
	}
}
