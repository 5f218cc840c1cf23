/* SPDX-License-Identifier: MIT */
/*
 * crashpoint.c - the crash-point test build's tc__crash_point() (see
 * TC_CRASH_POINT in internal.h and docs/design.md, "Crash points").
 *
 * TICKCACHE_CRASH_AT=NAME[:NTH] kills the process with SIGKILL on the NTH
 * pass (default 1) through the crash point NAME, counted per process.  The
 * variable is read on every pass, not cached, so that a child forked by a
 * test may set it after the parent used the library.  Compiled to nothing
 * in the ordinary build.
 */
#include "internal.h"

#ifdef TC_CRASHPOINTS
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

static unsigned long cp_hits; /* passes through the selected point so far */

void tc__crash_point(const char *name)
{
	const char *at = getenv("TICKCACHE_CRASH_AT");
	if (!at)
		return;
	/* A name given as a string arrives with its quotes. */
	size_t n = strlen(name);
	if (n >= 2 && name[0] == '"' && name[n - 1] == '"') {
		name++;
		n -= 2;
	}
	const char *colon = strchr(at, ':');
	size_t alen = colon ? (size_t)(colon - at) : strlen(at);
	if (alen != n || memcmp(at, name, n) != 0)
		return;
	unsigned long nth = colon ? strtoul(colon + 1, NULL, 10) : 1;
	if (__atomic_add_fetch(&cp_hits, 1, __ATOMIC_SEQ_CST) >= (nth ? nth : 1))
		kill(getpid(), SIGKILL);
}
#else
/* ISO C wants a translation unit to declare something. */
typedef int tc__crashpoints_off;
#endif
