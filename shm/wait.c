/* SPDX-License-Identifier: MIT */
/*
 * wait.c - tc_open with TC_WAIT: attach to a segment that does not exist
 * yet, once its creator (a feed process, say) has made it.
 *
 * The wait polls tc_open with a sleep that doubles from 1 ms to 50 ms: a
 * segment is created once per process start, so the cost is a few
 * shm_open calls per second of waiting, and nothing is left to clean up
 * when the caller gives up (no watch, no thread).  A creator that is still
 * building the segment holds its flock; tc_open waits for that lock, then
 * attaches the finished segment.
 */
#include "internal.h"

#include <time.h>

int tc__open_wait(tc_cache **out, const char *name, const tc_opts *opts)
{
	tc_opts o = *opts;

	if (o.flags & TC_CREATE)
		return -EINVAL; /* a creator has nothing to wait for */
	o.flags &= ~TC_WAIT;
	uint64_t wait_ms = o.wait_ms > 365ull * 24 * 3600 * 1000 ? 365ull * 24 * 3600 * 1000
								  : o.wait_ms;
	uint64_t t_end = tc__mono_ns() + wait_ms * 1000000ull;
	long nap_ns = 1000000;
	for (;;) {
		int rc = tc_open(out, name, &o);
		if (rc != -ENOENT)
			return rc;
		uint64_t now = tc__mono_ns();
		if (now >= t_end)
			return -ETIMEDOUT;
		if ((uint64_t)nap_ns > t_end - now)
			nap_ns = (long)(t_end - now);
		struct timespec ts = { 0, nap_ns };
		nanosleep(&ts, NULL);
		if (nap_ns < 50000000)
			nap_ns *= 2;
	}
}
