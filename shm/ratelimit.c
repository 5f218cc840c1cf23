/* SPDX-License-Identifier: MIT */
/*
 * ratelimit.c - fixed-window rate limits (README.md, "Rate limits"), built on
 * kv.c's generic writer (tc__write) in a namespace of their own
 * (TC_KIND_RATE), so no ordinary key collides.
 *
 * One entry per limiter key holding (window
 * start, count).  A call reads the clock once, takes window = now rounded
 * down to a multiple of window_ms, reads the entry and writes the next
 * state with a compare-and-set on the version it read: (w, n) -> (w, n + 1)
 * when the stored window is this one or a later one (a caller whose clock
 * reading is older than another's joins the newer window), else
 * (window, 1).  A lost CAS starts over.  So every call is one increment of
 * exactly one window's counter, in the order of the CAS on the key's index
 * slot: the calls of a window see 1, 2, 3, ... and at most LIMIT of them
 * see a count <= LIMIT, across any number of processes.  The entry lives
 * two windows after its last write and then expires like any key.
 *
 * The window is struct tc_rate_window (layout.h).
 */
#include "internal.h"

#include <sched.h>

int tc_rate_limit(tc_cache *c, const void *key, size_t klen, uint64_t limit,
		  uint64_t window_ms, bool *allowed, uint64_t *count)
{
	if (!c || !tc__valid_key(key, klen) || !allowed || limit == 0 || window_ms == 0 ||
	    window_ms > (uint64_t)INT64_MAX / 4)
		return -EINVAL;
	int rc = -EAGAIN;
	struct tc_rate_window nv = { 0, 0 };
	for (int attempt = 0; attempt < TC_MAX_ATTEMPTS; attempt++) {
		int64_t now = tc__now_ms();
		int64_t win = now >= 0 ? now - now % (int64_t)window_ms : 0;
		struct tc_rate_window cur;
		uint64_t ver = 0;
		int r = tc__read_kind(c, TC_KIND_RATE, key, klen, &cur, sizeof(cur), TC_RATE_TYPE, &ver);
		if (r && r != -ENOENT)
			return r;
		if (r == 0 && cur.window_ms >= win) {
			nv.window_ms = cur.window_ms;
			nv.count = cur.count + 1;
		} else {
			nv.window_ms = win;
			nv.count = 1;
		}
		rc = tc__write(c, &(struct tc__wreq){ .kind = TC_KIND_RATE, .key = key,
						      .klen = klen, .val = &nv, .vlen = sizeof(nv),
						      .type = TC_RATE_TYPE, .ttl_ms = 2 * window_ms,
						      .op = r == 0 ? TC_OP_CAS : TC_OP_ADD,
						      .expect = ver });
		if (rc == 0)
			break;
		if (rc != TC_ECONFLICT && rc != -ENOENT && rc != -EEXIST)
			return rc;
		if (attempt > 16)
			sched_yield();
	}
	if (rc)
		return rc;
	*allowed = nv.count <= limit;
	if (count)
		*count = nv.count;
	return 0;
}
