/* SPDX-License-Identifier: MIT */
/*
 * stress_kill.c - a review's multi-process stress (issue 8), not part of
 * `make test` (it runs for a given time and is not built by the Makefile):
 *
 *   gcc -O2 -Iinclude -o /tmp/stress_kill tests/review/stress_kill.c \
 *       build/libtickcache.a -lpthread
 *   /tmp/stress_kill NAME SECONDS [MEMORY_BYTES]
 *
 * Three writers update 64 keys with self-checking values (key, length,
 * sequence and a hash of pseudo-random bytes) and delete some; every
 * 0-3 ms the parent SIGKILLs a random writer and starts another, and kills
 * and replaces a "victim" reader (killed anywhere, also inside its read
 * section), then runs tc_sweep.  Two readers check every value twice
 * inside one read section (tc_peek), with a pause between: a block freed
 * and reused under a reader fails the second check.  Readers close and
 * reopen their handle every 200 reads; one more process loops tc_reclaim
 * (which walks other slots' chains, steal_chains) and tc_readers_clean.
 * At the end: tc_audit of the idle segment, whose `recovered` is the leak
 * (at most one block per kill in the windows design.md's table says).
 * Exit status 1 when a reader saw a bad value.
 */
#include "tickcache.h"
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NKEYS 64
static uint64_t mix(uint64_t x) { x ^= x >> 33; x *= 0xff51afd7ed558ccdULL; x ^= x >> 33; return x; }

static size_t make_val(uint8_t *v, uint32_t key, uint64_t seq)
{
	size_t len = 24 + mix(seq * 131 + key) % 3000;
	memcpy(v, &key, 4); uint32_t l = (uint32_t)len; memcpy(v + 4, &l, 4); memcpy(v + 8, &seq, 8);
	uint64_t h = 0;
	for (size_t i = 24; i < len; i++) { v[i] = (uint8_t)mix(seq ^ (i << 20) ^ key); h = h * 31 + v[i]; }
	memcpy(v + 16, &h, 8);
	return len;
}

static int check_val(const uint8_t *v, size_t n, uint32_t key)
{
	if (n < 24) return 1;
	uint32_t k, l; uint64_t seq, h, h2 = 0;
	memcpy(&k, v, 4); memcpy(&l, v + 4, 4); memcpy(&seq, v + 8, 8); memcpy(&h, v + 16, 8);
	if (k != key || l != n) return 2;
	for (size_t i = 24; i < n; i++) { if (v[i] != (uint8_t)mix(seq ^ (i << 20) ^ key)) return 3; h2 = h2 * 31 + v[i]; }
	return h != h2 ? 4 : 0;
}

static int writer(const char *name, unsigned seed)
{
	tc_cache *c; if (tc_open(&c, name, NULL)) return 2;
	uint8_t v[4096]; srand(seed);
	for (uint64_t n = 0;; n++) {
		uint32_t key = (uint32_t)rand() % NKEYS; char k[16]; snprintf(k, sizeof k, "k%u", key);
		if (rand() % 8 == 0) { tc_del(c, k, strlen(k)); continue; }
		size_t len = make_val(v, key, ((uint64_t)seed << 32) | n);
		int rc = tc_set(c, k, strlen(k), v, len, 0, 0);
		if (rc && rc != -ENOSPC) { fprintf(stderr, "writer: set %d\n", rc); return 3; }
		if (rand() % 64 == 0) { uint64_t f; tc_reclaim(c, &f); }
	}
}

static int reclaimer(const char *name, int secs)
{
	tc_cache *c; if (tc_open(&c, name, NULL)) return 2;
	time_t end = time(NULL) + secs;
	while (time(NULL) < end) { uint64_t f; tc_reclaim(c, &f); uint32_t n; tc_readers_clean(c, &n); }
	return 0;
}

static int reader(const char *name, int secs)
{
	tc_cache *c; if (tc_open(&c, name, NULL)) return 2;
	time_t end = time(NULL) + secs; uint64_t got = 0, bad = 0;
	uint64_t it = 0;
	while (time(NULL) < end) {
		if (++it % 200 == 0) { tc_close(c); if (tc_open(&c, name, NULL)) return 2; }
		uint32_t key = (uint32_t)rand() % NKEYS; char k[16]; snprintf(k, sizeof k, "k%u", key);
		if (tc_read_lock(c)) continue;
		const void *p; tc_meta m;
		int rc = tc_peek(c, k, strlen(k), &p, &m);
		if (rc == 0) {
			int e1 = check_val(p, m.len, key);
			for (volatile int i = 0; i < 2000; i++) ;
			int e2 = check_val(p, m.len, key);
			got++;
			if (e1 || e2) { bad++; fprintf(stderr, "reader %d: bad value key %u len %zu e1 %d e2 %d\n", getpid(), key, (size_t)m.len, e1, e2); }
		}
		tc_read_unlock(c);
	}
	fprintf(stderr, "reader %d: %llu reads, %llu bad\n", getpid(), (unsigned long long)got, (unsigned long long)bad);
	return bad ? 1 : 0;
}

int main(int argc, char **argv)
{
	const char *name = argc > 1 ? argv[1] : "rv-stress";
	int secs = argc > 2 ? atoi(argv[2]) : 20;
	uint64_t mem = argc > 3 ? strtoull(argv[3], 0, 0) : 512 * 1024;
	tc_opts o = {0}; o.max_entries = 256; o.memory_bytes = mem; o.max_readers = 32; o.flags = TC_CREATE | TC_EXCL;
	tc_unlink(name); tc_cache *c;
	if (tc_open(&c, name, &o)) { fprintf(stderr, "open\n"); return 2; }
	pid_t r[2], w[3]; int seed = 1;
	for (int i = 0; i < 2; i++) if ((r[i] = fork()) == 0) _exit(reader(name, secs));
	for (int i = 0; i < 3; i++) if ((w[i] = fork()) == 0) _exit(writer(name, seed)); else seed++;
	pid_t rc1 = fork(); if (rc1 == 0) _exit(reclaimer(name, secs));
	pid_t vr = 0; uint64_t vkills = 0;
	time_t end = time(NULL) + secs; uint64_t kills = 0, sweeps = 0, cleared = 0;
	while (time(NULL) < end) {
		tc_sweep_report rep; memset(&rep, 0, sizeof rep);
		tc_sweep(c, 1000, &rep); sweeps++; cleared += rep.readers_cleared;
		struct timespec ts = {0, (long)(rand() % 3000) * 1000}; nanosleep(&ts, 0);
		int i = rand() % 3; kill(w[i], SIGKILL);
		int st; waitpid(w[i], &st, 0);
		if (!(WIFSIGNALED(st))) fprintf(stderr, "writer exited %d\n", WEXITSTATUS(st));
		kills++;
		/* a victim reader: killed mid-section at a random moment */
		if (vr) { kill(vr, SIGKILL); waitpid(vr, 0, 0); vkills++; }
		if ((vr = fork()) == 0) _exit(reader(name, secs));
		if ((w[i] = fork()) == 0)
			_exit(writer(name, seed));
		seed++;
	}
	for (int i = 0; i < 3; i++) { kill(w[i], SIGKILL); waitpid(w[i], 0, 0); }
	if (vr) { kill(vr, SIGKILL); waitpid(vr, 0, 0); }
	waitpid(rc1, 0, 0);
	int fail = 0;
	for (int i = 0; i < 2; i++) { int st; waitpid(r[i], &st, 0); if (!WIFEXITED(st) || WEXITSTATUS(st)) fail = 1; }
	tc_sweep_report rep; memset(&rep, 0, sizeof rep); tc_sweep(c, UINT64_MAX, &rep); cleared += rep.readers_cleared;
	uint64_t f; tc_reclaim(c, &f);
	tc_audit_report ar; memset(&ar, 0, sizeof ar);
	int arc = tc_audit(c, &ar);
	printf("kills %llu sweeps %llu cleared %llu; audit rc %d recovered %llu; readers %s\n",
	       (unsigned long long)kills, (unsigned long long)sweeps, (unsigned long long)cleared, arc,
	       (unsigned long long)ar.recovered, fail ? "FAILED" : "ok");
	tc_close(c); tc_unlink(name);
	return fail;
}
