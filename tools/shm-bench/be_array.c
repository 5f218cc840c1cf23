/* SPDX-License-Identifier: MIT */
/*
 * be_array.c - shm-bench's "array" backend: an in-process open-addressing
 * table per process, the memory-latency floor the shared stores are
 * compared with.  tools/callgrind.sh collects inside arr_get.
 */
#include <sys/mman.h>

#include "bench.h"


/* Linear probing, backward-shift deletion; slot hash 0 means empty. */
struct arr_slot {
	uint64_t h;
	uint32_t vidx;
	uint32_t vlen;
	char     key[16];
};

struct arr {
	uint64_t mask;
	struct arr_slot *s;
	unsigned char *vals;
	size_t   stride;
	uint32_t *freev;
	uint64_t nfree;
};

static void *arr_alloc(size_t bytes)
{
	void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

static void *arr_attach(char *err, size_t len)
{
	struct arr *a = calloc(1, sizeof(*a));
	uint64_t nslots = pow2_at_least(2 * (cfg.keys + 4096));
	uint64_t nvals = cfg.keys + 4096;

	if (!a)
		goto oom;
	a->mask = nslots - 1;
	a->stride = round_up(cfg.vsize, 16);
	a->s = arr_alloc(nslots * sizeof(*a->s));
	a->vals = arr_alloc(nvals * a->stride);
	a->freev = malloc(nvals * sizeof(*a->freev));
	if (!a->s || !a->vals || !a->freev)
		goto oom;
	for (uint64_t i = 0; i < nvals; i++)
		a->freev[i] = (uint32_t)(nvals - 1 - i);
	a->nfree = nvals;
	return a;
oom:
	snprintf(err, len, "array: out of memory");
	return NULL;
}

/* Release the table: forked processes exit next, but --back-to-back runs
 * in the parent and frees what it made. */
static void arr_detach(void *st)
{
	struct arr *a = st;

	munmap(a->s, (a->mask + 1) * sizeof(*a->s));
	munmap(a->vals, (cfg.keys + 4096) * a->stride);
	free(a->freev);
	free(a);
}

static inline struct arr_slot *arr_find(struct arr *a, const char *k, size_t kl, uint64_t h)
{
	for (uint64_t i = h & a->mask;; i = (i + 1) & a->mask) {
		struct arr_slot *s = &a->s[i];

		if (s->h == 0)
			return NULL;
		if (s->h == h && memcmp(s->key, k, kl) == 0)
			return s;
	}
}

static inline uint64_t arr_hash(const char *k, size_t kl)
{
	return hash_bytes(k, kl) | 1;
}

static int arr_get(void *st, const char *k, size_t kl, void *buf, size_t cap, size_t *len)
{
	struct arr *a = st;
	struct arr_slot *s = arr_find(a, k, kl, arr_hash(k, kl));

	if (!s)
		return 1;
	*len = s->vlen;
	if (s->vlen > cap)
		return -E2BIG;
	memcpy(buf, a->vals + (size_t)s->vidx * a->stride, s->vlen);
	return 0;
}

static int arr_peek(void *st, const char *k, size_t kl, const void **val, size_t *len)
{
	struct arr *a = st;
	struct arr_slot *s = arr_find(a, k, kl, arr_hash(k, kl));

	if (!s)
		return 1;
	*val = a->vals + (size_t)s->vidx * a->stride;
	*len = s->vlen;
	return 0;
}

static void arr_peek_end(void *st)
{
	(void)st;
}

static int arr_insert(struct arr *a, const char *k, size_t kl, const void *v, size_t vl,
		      bool overwrite)
{
	uint64_t h = arr_hash(k, kl);
	struct arr_slot *s = arr_find(a, k, kl, h);

	if (kl > sizeof(s->key) || vl > a->stride)
		return -EINVAL;
	if (s) {
		if (!overwrite)
			return 1;
		memcpy(a->vals + (size_t)s->vidx * a->stride, v, vl);
		s->vlen = (uint32_t)vl;
		return 0;
	}
	if (!a->nfree)
		return -ENOSPC;
	uint64_t i = h & a->mask;

	while (a->s[i].h)
		i = (i + 1) & a->mask;
	s = &a->s[i];
	s->vidx = a->freev[--a->nfree];
	s->vlen = (uint32_t)vl;
	memset(s->key, 0, sizeof(s->key));
	memcpy(s->key, k, kl);
	memcpy(a->vals + (size_t)s->vidx * a->stride, v, vl);
	s->h = h;
	return 0;
}

static int arr_set(void *st, const char *k, size_t kl, const void *v, size_t vl)
{
	return arr_insert(st, k, kl, v, vl, true);
}

static int arr_add(void *st, const char *k, size_t kl, const void *v, size_t vl)
{
	return arr_insert(st, k, kl, v, vl, false);
}

static int arr_del(void *st, const char *k, size_t kl)
{
	struct arr *a = st;
	struct arr_slot *s = arr_find(a, k, kl, arr_hash(k, kl));

	if (!s)
		return 1;
	a->freev[a->nfree++] = s->vidx;
	/* Backward shift: pull later members of the probe run into the hole. */
	uint64_t hole = (uint64_t)(s - a->s), j = hole;

	for (;;) {
		j = (j + 1) & a->mask;
		if (a->s[j].h == 0)
			break;
		uint64_t home = a->s[j].h & a->mask;

		if (((j - home) & a->mask) >= ((j - hole) & a->mask)) {
			a->s[hole] = a->s[j];
			hole = j;
		}
	}
	a->s[hole].h = 0;
	return 0;
}

/* mget: the N gets in a row (the array has no batched form). */
static int arr_get_many(void *st, const char (*keys)[KEY_LEN + 1], size_t kl, unsigned n,
			unsigned char *buf, size_t cap, unsigned *hits, unsigned *misses)
{
	*hits = *misses = 0;
	for (unsigned j = 0; j < n; j++) {
		size_t len;
		int rc = arr_get(st, keys[j], kl, buf + (size_t)j * cap, cap, &len);

		if (rc < 0)
			return rc;
		*hits += rc == 0;
		*misses += rc == 1;
	}
	return 0;
}

const struct backend be_array = {
	"array", "in-process open-addressing array, per process (memory-latency floor)",
	OPBIT(OP_GET) | OPBIT(OP_PEEK) | OPBIT(OP_SET) | OPBIT(OP_ADD) | OPBIT(OP_MGET), false,
	NULL, NULL, arr_attach, arr_detach, arr_get, arr_peek, arr_peek_end,
	arr_set, arr_add, arr_del, NULL, never_drops, arr_get_many
};
