/* SPDX-License-Identifier: MIT */
/*
 * scribble_run - test helper for tests/test_tools.sh: writes STARTED_MS and
 * STARTER_PID straight into the record of segment NAME's active run anchor,
 * as a stray write would, so that `shm-inspect runs` can be checked against
 * a start time and a pid that no run ever had.
 *
 * usage: scribble_run NAME STARTED_MS STARTER_PID
 */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: scribble_run NAME STARTED_MS STARTER_PID\n");
		return 2;
	}
	tc_cache *c = NULL;
	int rc = tc_open(&c, argv[1], NULL);
	if (rc) {
		fprintf(stderr, "scribble_run: %s: %s\n", argv[1], tc_strerror(rc));
		return 1;
	}
	uint32_t vlen = 0;
	struct tc_entry *e = tc__block_of(c, RUN_REF(tc__run_word(c)), TC_KIND_RUN, &vlen);
	if (!e || vlen != sizeof(struct tc_anchor_rec)) {
		fprintf(stderr, "scribble_run: %s: no run anchor\n", argv[1]);
		tc_close(c);
		return 1;
	}
	struct tc_anchor_rec *a = (struct tc_anchor_rec *)tc__eval(e, 0);
	a->started_ms = (int64_t)strtoll(argv[2], NULL, 0);
	a->starter_pid = strtoull(argv[3], NULL, 0);
	tc_close(c);
	return 0;
}
