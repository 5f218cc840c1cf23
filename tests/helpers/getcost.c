/* SPDX-License-Identifier: MIT */
/*
 * getcost - the read calls one at a time on one key, for callgrind
 * (tools/callgrind.sh, the getcost profiles): instructions per call of
 * tc_get, tc_get_with or tc_peek for a key of any length, which shm-bench's
 * fixed 14-byte keys do not show (most users' key names are 17..32 bytes).
 *
 *   getcost CALL KEYLEN CASE N
 *
 * CALL: get, get_with, get_hashed (its hash taken once), exists or peek
 * (inside one tc_read_lock section); CASE: hit
 * (a 64-byte value), ttl (the same with a TTL), miss, small (a 4-byte
 * value) or big (200 bytes).  A segment of 1,000 other keys, made and
 * removed here.  The N calls run in run_calls(), which callgrind collects
 * (--toggle-collect=run_calls): its instructions over N, about 14 of them
 * the loop's and the call's set-up (a hot 14-byte tc_get: 180.7 here, 164
 * inside tc_get and 4.5 for the timed call in 64).  Prints how many calls answered as CASE expects; exits 1
 * unless all did.
 */
#include <tickcache.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static __attribute__((noinline)) long run_calls(tc_cache *c, const char *call, const char *key,
						size_t kl, long n, int want)
{
	char buf[256];
	tc_meta m;
	const void *p;
	long ok = 0;
	if (!strcmp(call, "get")) {
		for (long i = 0; i < n; i++)
			ok += tc_get(c, key, kl, buf, sizeof(buf), &m) == want;
	} else if (!strcmp(call, "get_with")) {
		for (long i = 0; i < n; i++)
			ok += tc_get_with(c, key, kl, buf, sizeof(buf), &m, NULL, NULL) == want;
	} else if (!strcmp(call, "get_hashed")) {
		uint64_t h = tc_key_hash(c, key, kl);
		for (long i = 0; i < n; i++)
			ok += tc_get_hashed(c, h, key, kl, buf, sizeof(buf), &m, NULL, NULL) == want;
	} else if (!strcmp(call, "exists")) {
		for (long i = 0; i < n; i++)
			ok += tc_exists(c, key, kl) == (want == 0);
	} else {
		if (tc_read_lock(c))
			return -1;
		for (long i = 0; i < n; i++)
			ok += tc_peek(c, key, kl, &p, &m) == want;
		tc_read_unlock(c);
	}
	return ok;
}

int main(int argc, char **argv)
{
	if (argc != 5) {
		fprintf(stderr, "usage: getcost get|get_with|get_hashed|exists|peek KEYLEN "
				"hit|ttl|miss|small|big N\n");
		return 2;
	}
	const char *call = argv[1], *cs = argv[3];
	size_t kl = (size_t)atol(argv[2]);
	long n = atol(argv[4]);
	if (kl < 1 || kl > 64 || n < 1)
		return 2;
	char key[65], name[64], v[200] = { 0 };
	for (size_t i = 0; i < kl; i++)
		key[i] = "tradecore:market:quote:"[i % 23];
	snprintf(name, sizeof(name), "getcost%d", (int)getpid());
	tc_opts o = { .flags = TC_CREATE };
	tc_cache *c;
	if (tc_open(&c, name, &o))
		return 1;
	for (int i = 0; i < 1000; i++) {
		char k[32];
		int l = snprintf(k, sizeof(k), "other:%d", i);
		tc_set(c, k, (size_t)l, v, 64, 0, 0);
	}
	int rc = 0;
	if (!strcmp(cs, "hit"))
		rc = tc_set(c, key, kl, v, 64, 0, 0);
	else if (!strcmp(cs, "ttl"))
		rc = tc_set(c, key, kl, v, 64, 0, 600000);
	else if (!strcmp(cs, "small"))
		rc = tc_set(c, key, kl, v, 4, 0, 0);
	else if (!strcmp(cs, "big"))
		rc = tc_set(c, key, kl, v, 200, 0, 0);
	long ok = rc ? -1 : run_calls(c, call, key, kl, n, strcmp(cs, "miss") ? 0 : -ENOENT);
	tc_close(c);
	tc_unlink(name);
	printf("%ld of %ld as expected\n", ok, n);
	return ok == n ? 0 : 1;
}
