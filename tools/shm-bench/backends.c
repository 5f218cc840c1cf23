/* SPDX-License-Identifier: MIT */
/*
 * backends.c - the table of shm-bench's backends (--backend, --list), in
 * the order --list prints them.
 */
#include "bench.h"

bool never_drops(void)
{
	return false;
}

const struct backend *const backends[] = {
	&be_tickcache,
	&be_array,
	&be_rculfhash,
	&be_mutexshm,
#ifdef TC_HAVE_HIREDIS
	&be_redis_unix,
	&be_redis_tcp,
#endif
#ifdef TC_HAVE_MEMCACHED
	&be_memcached,
#endif
};
const size_t nbackends = sizeof(backends) / sizeof(backends[0]);
