/* SPDX-License-Identifier: MIT */
/*
 * stress_epoch.c - a review's multi-process stress of the grace periods at
 * the edges of the epoch (01b10d8), the dead-slot cleaner (3ceb431,
 * 9428afd) and the coalescer, not part of `make test` (it runs for a given
 * time and is not built by the Makefile):
 *
 *   make all && gcc -O2 -D_GNU_SOURCE -Iinclude -Ishm -o /tmp/stress_epoch \
 *       tests/review/stress_epoch.c build/libtickcache.a \
 *       $(pkg-config --libs liburcu libxxhash) -lpthread
 *   /tmp/stress_epoch NAME SECONDS START_EPOCH
 *
 * START_EPOCH (e.g. 18446744073709551000, or 0) is stored in the header
 * once the segment exists: from near UINT64_MAX the epoch reaches its top
 * within the run, where only a grace period that finds no slot active frees
 * anything ("min == UINT64_MAX frees every block"); 0 plays the scribble to
 * 0.  Writers (values of 24 B to 3 KiB, so that the small arena needs the
 * coalescer) and reclaimers run against readers that check every value
 * twice inside one section with a pause between, one half of them with
 * TICKCACHE_NO_MEMBARRIER=1 (a full fence), and against a churner that
 * opens and closes handles and starts short threads (slots claimed and
 * given back while grace periods scan).  The parent SIGKILLs writers and a
 * victim reader at random and runs tc_sweep.  At the end: tc_audit of the
 * idle segment.  Exit status 1 when a reader saw a bad value.
 */
#include "internal.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NKEYS 96
static const char *exe = "/proc/self/exe";

static uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	return x;
}

static size_t make_val(uint8_t *v, uint32_t key, uint64_t seq)
{
	size_t len = 24 + mix(seq * 131 + key) % 3000;
	uint32_t l = (uint32_t)len;
	uint64_t h = 0;
	memcpy(v, &key, 4);
	memcpy(v + 4, &l, 4);
	memcpy(v + 8, &seq, 8);
	for (size_t i = 24; i < len; i++) {
		v[i] = (uint8_t)mix(seq ^ (i << 20) ^ key);
		h = h * 31 + v[i];
	}
	memcpy(v + 16, &h, 8);
	return len;
}

static int check_val(const uint8_t *v, size_t n, uint32_t key)
{
	uint32_t k, l;
	uint64_t seq, h, h2 = 0;
	if (n < 24)
		return 1;
	memcpy(&k, v, 4);
	memcpy(&l, v + 4, 4);
	memcpy(&seq, v + 8, 8);
	memcpy(&h, v + 16, 8);
	if (k != key || l != n)
		return 2;
	for (size_t i = 24; i < n; i++) {
		if (v[i] != (uint8_t)mix(seq ^ (i << 20) ^ key))
			return 3;
		h2 = h2 * 31 + v[i];
	}
	return h != h2 ? 4 : 0;
}

static int writer(const char *name, unsigned seed)
{
	tc_cache *c;
	uint8_t v[4096];
	uint64_t nok = 0, nfail = 0;
	if (tc_open(&c, name, NULL))
		return 2;
	srand(seed);
	for (uint64_t n = 0;; n++) {
		uint32_t key = (uint32_t)rand() % NKEYS;
		char k[16];
		snprintf(k, sizeof k, "k%u", key);
		if (rand() % 8 == 0) {
			tc_del(c, k, strlen(k));
			continue;
		}
		size_t len = make_val(v, key, ((uint64_t)seed << 32) | n);
		int rc = tc_set(c, k, strlen(k), v, len, 0, 0);
		nok += rc == 0;
		nfail += rc != 0;
		if ((n & 4095) == 4095)
			fprintf(stderr, "writer %d: %llu ok, %llu failed\n", getpid(),
				(unsigned long long)nok, (unsigned long long)nfail);
		if (rc && rc != -ENOSPC && rc != TC_ECORRUPT) {
			fprintf(stderr, "writer: set %d\n", rc);
			return 3;
		}
		if (rand() % 16 == 0) {
			uint64_t f;
			tc_reclaim(c, &f);
		}
	}
}

static int reclaimer(const char *name, int secs)
{
	tc_cache *c;
	if (tc_open(&c, name, NULL))
		return 2;
	time_t end = time(NULL) + secs;
	while (time(NULL) < end) {
		uint64_t f;
		uint32_t n;
		tc_reclaim(c, &f);
		tc_readers_clean(c, &n);
	}
	return 0;
}

static int reader(const char *name, int secs)
{
	tc_cache *c;
	if (tc_open(&c, name, NULL))
		return 2;
	time_t end = time(NULL) + secs;
	uint64_t got = 0, bad = 0, it = 0;
	uint8_t buf[4096];
	srand((unsigned)getpid());
	while (time(NULL) < end) {
		if (++it % 300 == 0) {
			tc_close(c);
			if (tc_open(&c, name, NULL))
				return 2;
		}
		uint32_t key = (uint32_t)rand() % NKEYS;
		char k[16];
		snprintf(k, sizeof k, "k%u", key);
		if (it % 3 == 0) { /* the plain path: a copy */
			tc_meta m;
			int rc = tc_get(c, k, strlen(k), buf, sizeof buf, &m);
			if (rc == 0) {
				got++;
				int e = check_val(buf, m.len, key);
				if (e) {
					bad++;
					fprintf(stderr, "reader %d: get bad key %u e %d\n", getpid(), key, e);
				}
			}
			continue;
		}
		if (tc_read_lock(c))
			continue;
		const void *p;
		tc_meta m;
		int rc = tc_peek(c, k, strlen(k), &p, &m);
		if (rc == 0) {
			int e1 = check_val(p, m.len, key);
			for (volatile int i = 0; i < (int)(rand() % 4000); i++)
				;
			int e2 = check_val(p, m.len, key);
			got++;
			if (e1 || e2) {
				bad++;
				fprintf(stderr, "reader %d: bad value key %u len %zu e1 %d e2 %d\n",
					getpid(), key, (size_t)m.len, e1, e2);
			}
		}
		tc_read_unlock(c);
	}
	fprintf(stderr, "reader %d%s: %llu reads, %llu bad\n", getpid(),
		getenv("TICKCACHE_NO_MEMBARRIER") ? " (fence)" : "", (unsigned long long)got,
		(unsigned long long)bad);
	return bad ? 1 : 0;
}

static void *short_thread(void *p)
{
	tc_cache *c = p;
	char b[8];
	tc_get(c, "k1", 2, b, sizeof b, NULL);
	return NULL;
}

/* Slots claimed and given back all the time: handles opened and closed,
 * threads that read once and exit. */
static int churner(const char *name, int secs)
{
	time_t end = time(NULL) + secs;
	while (time(NULL) < end) {
		tc_cache *c;
		if (tc_open(&c, name, NULL))
			return 2;
		for (int i = 0; i < 8; i++) {
			pthread_t th;
			if (pthread_create(&th, NULL, short_thread, c) == 0)
				pthread_join(th, NULL);
		}
		tc_close(c);
	}
	return 0;
}

static pid_t spawn(const char *role, const char *name, const char *arg, bool fence)
{
	pid_t p = fork();
	if (p == 0) {
		if (fence)
			setenv("TICKCACHE_NO_MEMBARRIER", "1", 1);
		execl(exe, exe, role, name, arg, (char *)NULL);
		_exit(127);
	}
	return p;
}

int main(int argc, char **argv)
{
	if (argc == 4 && strcmp(argv[1], "reader") == 0)
		return reader(argv[2], atoi(argv[3]));
	if (argc == 4 && strcmp(argv[1], "writer") == 0)
		return writer(argv[2], (unsigned)atoi(argv[3]));
	if (argc == 4 && strcmp(argv[1], "reclaimer") == 0)
		return reclaimer(argv[2], atoi(argv[3]));
	if (argc == 4 && strcmp(argv[1], "churner") == 0)
		return churner(argv[2], atoi(argv[3]));
	const char *name = argc > 1 ? argv[1] : "rv-epoch-stress";
	int secs = argc > 2 ? atoi(argv[2]) : 20;
	uint64_t start = argc > 3 ? strtoull(argv[3], NULL, 0) : UINT64_MAX - 2000;
	char ssecs[16];
	snprintf(ssecs, sizeof ssecs, "%d", secs);
	tc_opts o = { 0 };
	o.max_entries = 256;
	o.memory_bytes = 384 * 1024;
	o.max_readers = 32;
	o.flags = TC_CREATE | TC_EXCL;
	tc_unlink(name);
	tc_cache *c;
	if (tc_open(&c, name, &o)) {
		fprintf(stderr, "open\n");
		return 2;
	}
	tc__st(&c->h->epoch, start);
	pid_t r[4], w[3], rc1, rc2, ch;
	int seed = 1;
	for (int i = 0; i < 4; i++)
		r[i] = spawn("reader", name, ssecs, i & 1);
	for (int i = 0; i < 3; i++) {
		char s[16];
		snprintf(s, sizeof s, "%d", seed++);
		w[i] = spawn("writer", name, s, false);
	}
	rc1 = spawn("reclaimer", name, ssecs, false);
	rc2 = spawn("reclaimer", name, ssecs, true);
	ch = spawn("churner", name, ssecs, false);
	pid_t vr = 0;
	time_t end = time(NULL) + secs;
	uint64_t kills = 0, sweeps = 0, cleared = 0, at_top = 0;
	srand(7);
	while (time(NULL) < end) {
		tc_sweep_report rep;
		memset(&rep, 0, sizeof rep);
		tc_sweep(c, 1000, &rep);
		sweeps++;
		cleared += rep.readers_cleared;
		if (tc__ld(&c->h->epoch) == UINT64_MAX)
			at_top++;
		struct timespec ts = { 0, (long)(rand() % 20000) * 1000 };
		nanosleep(&ts, 0);
		int i = rand() % 3;
		kill(w[i], SIGKILL);
		waitpid(w[i], NULL, 0);
		kills++;
		if (vr) {
			kill(vr, SIGKILL);
			waitpid(vr, NULL, 0);
		}
		vr = spawn("reader", name, ssecs, kills & 1);
		char s[16];
		snprintf(s, sizeof s, "%d", seed++);
		w[i] = spawn("writer", name, s, false);
	}
	for (int i = 0; i < 3; i++) {
		kill(w[i], SIGKILL);
		waitpid(w[i], NULL, 0);
	}
	if (vr) {
		kill(vr, SIGKILL);
		waitpid(vr, NULL, 0);
	}
	waitpid(rc1, NULL, 0);
	waitpid(rc2, NULL, 0);
	waitpid(ch, NULL, 0);
	int fail = 0;
	for (int i = 0; i < 4; i++) {
		int st;
		waitpid(r[i], &st, 0);
		if (!WIFEXITED(st) || WEXITSTATUS(st))
			fail = 1;
	}
	tc_sweep_report rep;
	memset(&rep, 0, sizeof rep);
	tc_sweep(c, UINT64_MAX, &rep);
	uint64_t f = 0;
	tc_reclaim(c, &f);
	uint64_t ep = tc__ld(&c->h->epoch);
	tc_audit_report ar;
	memset(&ar, 0, sizeof ar);
	int arc = tc_audit(c, &ar);
	printf("kills %llu sweeps %llu cleared %llu; epoch %llu (at top in %llu sweeps), after audit "
	       "%llu; audit rc %d recovered %llu; readers %s\n",
	       (unsigned long long)kills, (unsigned long long)sweeps,
	       (unsigned long long)cleared, (unsigned long long)ep, (unsigned long long)at_top,
	       (unsigned long long)tc__ld(&c->h->epoch), arc, (unsigned long long)ar.recovered,
	       fail ? "FAILED" : "ok");
	tc_close(c);
	tc_unlink(name);
	return fail;
}
