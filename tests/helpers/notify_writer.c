/* SPDX-License-Identifier: MIT */
/*
 * notify_writer - test helper for tests/test_notify.sh: the writes of a
 * process that nobody may be waiting for, for strace to count its futex
 * calls.  Attaches to segment NAME and makes ROUNDS rounds of writes: a set
 * of KEY, a set, an incr and a delete of keys spread over every futex word
 * of the segment, and every 16th round an expire and a purge.
 *
 * usage: notify_writer NAME ROUNDS KEY     exit 0, or 1 when a write failed
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tickcache.h"

int main(int argc, char **argv)
{
	tc_cache *c;
	tc_opts o;
	char k[32];
	int64_t n;
	uint64_t del;

	if (argc != 4) {
		fprintf(stderr, "usage: notify_writer NAME ROUNDS KEY\n");
		return 2;
	}
	memset(&o, 0, sizeof(o));
	if (tc_open(&c, argv[1], &o) != 0)
		return 1;
	long rounds = strtol(argv[2], NULL, 10);
	const char *key = argv[3];
	for (long i = 0; i < rounds; i++) {
		snprintf(k, sizeof(k), "nw:%ld", i % 512);
		if (tc_set(c, key, strlen(key), "v", 1, 0, 0) ||
		    tc_set(c, k, strlen(k), "w", 1, 0, 0) ||
		    tc_incr(c, "nw:ctr", 6, 1, 0, &n) ||
		    tc_del(c, k, strlen(k)))
			return 1;
		if (i % 16 == 0 && (tc_expire(c, key, strlen(key), 60000) ||
				    tc_purge(c, "nw:x*", &del)))
			return 1;
	}
	tc_close(c);
	return 0;
}
