/* SPDX-License-Identifier: MIT */
/*
 * be_mutexshm.c - shm-bench's "mutexshm" backend: the usual shared-memory
 * cache with one process-shared mutex for writers and lock-free, unsafe
 * readers, the reference for what tickcache replaces.
 */
#include <pthread.h>
#include <sys/mman.h>

#include "bench.h"

/*
 * The design many shared-memory caches use today: writers serialise on one
 * process-shared (robust) mutex and overwrite a value in place when it fits;
 * values are bump-allocated from a ring of memory stripes, and when the ring
 * is full the oldest stripe is recycled under the lock by a scan of the
 * whole entry table.  Readers take no lock at all: they walk the bucket
 * chain and copy the value while a writer may be rewriting it.  Offsets and
 * lengths are bounds-checked so a racing reader copies garbage, never
 * crashes.  Entry index 0 is "none".
 */
#define MX_STRIPES 16

struct mx_entry {
	uint32_t next;      /* next entry of the bucket chain */
	uint32_t stripe;
	uint32_t klen;      /* 0: entry free */
	uint32_t vlen;
	uint32_t vcap;
	uint32_t pad;
	uint64_t voff;      /* value offset in the arena */
	char     key[32];
};
_Static_assert(sizeof(struct mx_entry) == 64, "mx_entry");

struct mx_hdr {
	pthread_mutex_t lock;
	uint64_t nbuckets, nentries, stripe_bytes, map_bytes;
	uint64_t cur, off;
	uint32_t free_head, pad;
	uint64_t recycles, evictions;
	uint8_t  used[MX_STRIPES];
};

static struct mx_hdr *mx;

static inline uint32_t *mx_buckets(struct mx_hdr *m)
{
	return (uint32_t *)(m + 1);
}

static inline struct mx_entry *mx_entries(struct mx_hdr *m)
{
	return (struct mx_entry *)((char *)(m + 1) + round_up(m->nbuckets * 4, 64));
}

static inline unsigned char *mx_arena(struct mx_hdr *m)
{
	return (unsigned char *)(mx_entries(m) + m->nentries);
}

static int mx_setup(char *err, size_t len)
{
	uint64_t nb = pow2_at_least(cfg.keys + 4096);
	uint64_t ne = cfg.entries ? cfg.entries : cfg.keys + cfg.keys / 4 + 4096;
	uint64_t arena = cfg.memory ? cfg.memory
				    : round_up(2 * (cfg.keys + 4096) * round_up(cfg.vsize, 8), 4096);
	uint64_t stripe = round_up(arena / MX_STRIPES, 64);
	size_t bytes = sizeof(*mx) + round_up(nb * 4, 64) + ne * sizeof(struct mx_entry) +
		       stripe * MX_STRIPES;
	pthread_mutexattr_t at;

	if (stripe < round_up(cfg.vsize, 8)) {
		snprintf(err, len, "mutexshm: memory too small for one value per stripe");
		return -EINVAL;
	}
	mx = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (mx == MAP_FAILED) {
		snprintf(err, len, "mutexshm: mmap %zu bytes: %s", bytes, strerror(errno));
		mx = NULL;
		return -ENOMEM;
	}
	mx->nbuckets = nb;
	mx->nentries = ne;
	mx->stripe_bytes = stripe;
	mx->map_bytes = bytes;
	pthread_mutexattr_init(&at);
	pthread_mutexattr_setpshared(&at, PTHREAD_PROCESS_SHARED);
	pthread_mutexattr_setrobust(&at, PTHREAD_MUTEX_ROBUST);
	pthread_mutex_init(&mx->lock, &at);
	pthread_mutexattr_destroy(&at);
	struct mx_entry *e = mx_entries(mx);

	for (uint64_t i = 0; i < ne; i++)
		e[i].next = i + 1 < ne ? (uint32_t)(i + 2) : 0;
	mx->free_head = 1;
	mx->used[0] = 1;
	return 0;
}

static void mx_teardown(void)
{
	if (mx)
		munmap(mx, mx->map_bytes);
	mx = NULL;
}

static void *mx_attach(char *err, size_t len)
{
	(void)err;
	(void)len;
	return mx;
}

static void mx_detach(void *st)
{
	(void)st;
}

static void mx_lock(struct mx_hdr *m)
{
	if (pthread_mutex_lock(&m->lock) == EOWNERDEAD)
		pthread_mutex_consistent(&m->lock);
}

static void mx_unlink_entry(struct mx_hdr *m, uint32_t idx)
{
	struct mx_entry *e = mx_entries(m);
	uint32_t *b = &mx_buckets(m)[hash_bytes(e[idx - 1].key, e[idx - 1].klen) & (m->nbuckets - 1)];

	while (*b && *b != idx)
		b = &e[*b - 1].next;
	if (*b)
		*b = e[idx - 1].next;
	e[idx - 1].klen = 0;
	e[idx - 1].next = m->free_head;
	m->free_head = idx;
}

/* Drop every entry whose value lives in stripe S: a scan of the whole table. */
static void mx_recycle(struct mx_hdr *m, uint64_t s)
{
	struct mx_entry *e = mx_entries(m);

	for (uint64_t i = 0; i < m->nentries; i++) {
		if (e[i].klen && e[i].stripe == s) {
			mx_unlink_entry(m, (uint32_t)(i + 1));
			m->evictions++;
		}
	}
	m->used[s] = 0;
	m->recycles++;
}

static uint64_t mx_alloc_value(struct mx_hdr *m, size_t cap)
{
	if (m->off + cap > m->stripe_bytes) {
		m->cur = (m->cur + 1) % MX_STRIPES;
		if (m->used[m->cur])
			mx_recycle(m, m->cur);
		m->used[m->cur] = 1;
		m->off = 0;
	}
	uint64_t off = m->cur * m->stripe_bytes + m->off;

	m->off += cap;
	return off;
}

static uint32_t mx_find(struct mx_hdr *m, const char *k, size_t kl)
{
	struct mx_entry *e = mx_entries(m);
	uint32_t i = __atomic_load_n(&mx_buckets(m)[hash_bytes(k, kl) & (m->nbuckets - 1)],
				     __ATOMIC_ACQUIRE);

	for (unsigned steps = 0; i && i <= m->nentries && steps < 64; steps++) {
		struct mx_entry *x = &e[i - 1];

		if (x->klen == kl && memcmp(x->key, k, kl) == 0)
			return i;
		i = __atomic_load_n(&x->next, __ATOMIC_ACQUIRE);
	}
	return 0;
}

static int mx_write(void *st, const char *k, size_t kl, const void *v, size_t vl, bool overwrite)
{
	struct mx_hdr *m = st;
	struct mx_entry *e = mx_entries(m);
	size_t cap = round_up(vl ? vl : 1, 8);
	uint32_t i;

	if (kl > sizeof(e->key) || cap > m->stripe_bytes)
		return -EINVAL;
	mx_lock(m);
	i = mx_find(m, k, kl);
	if (i && !overwrite) {
		pthread_mutex_unlock(&m->lock);
		return 1;
	}
	if (i && vl <= e[i - 1].vcap) {
		/* In place: a concurrent reader may copy half old, half new. */
		memcpy(mx_arena(m) + e[i - 1].voff, v, vl);
		e[i - 1].vlen = (uint32_t)vl;
		pthread_mutex_unlock(&m->lock);
		return 0;
	}
	uint64_t off = mx_alloc_value(m, cap);
	uint64_t stripe = m->cur;

	i = mx_find(m, k, kl);           /* the recycle may have dropped it */
	if (!i) {
		while (!m->free_head) {
			uint64_t s = (m->cur + 1) % MX_STRIPES;

			if (s == stripe)
				s = (s + 1) % MX_STRIPES;
			mx_recycle(m, s);
		}
		i = m->free_head;
		m->free_head = e[i - 1].next;
		memset(e[i - 1].key, 0, sizeof(e->key));
		memcpy(e[i - 1].key, k, kl);
		e[i - 1].klen = (uint32_t)kl;
		e[i - 1].voff = off;
		e[i - 1].vcap = (uint32_t)cap;
		e[i - 1].vlen = (uint32_t)vl;
		e[i - 1].stripe = (uint32_t)stripe;
		memcpy(mx_arena(m) + off, v, vl);
		uint32_t *b = &mx_buckets(m)[hash_bytes(k, kl) & (m->nbuckets - 1)];

		e[i - 1].next = *b;
		__atomic_store_n(b, i, __ATOMIC_RELEASE);
	} else {
		memcpy(mx_arena(m) + off, v, vl);
		e[i - 1].voff = off;
		e[i - 1].vcap = (uint32_t)cap;
		e[i - 1].vlen = (uint32_t)vl;
		e[i - 1].stripe = (uint32_t)stripe;
	}
	pthread_mutex_unlock(&m->lock);
	return 0;
}

static int mx_set(void *st, const char *k, size_t kl, const void *v, size_t vl)
{
	return mx_write(st, k, kl, v, vl, true);
}

static int mx_add(void *st, const char *k, size_t kl, const void *v, size_t vl)
{
	return mx_write(st, k, kl, v, vl, false);
}

static int mx_del(void *st, const char *k, size_t kl)
{
	struct mx_hdr *m = st;
	uint32_t i;

	mx_lock(m);
	i = mx_find(m, k, kl);
	if (i)
		mx_unlink_entry(m, i);
	pthread_mutex_unlock(&m->lock);
	return i ? 0 : 1;
}

static int mx_get(void *st, const char *k, size_t kl, void *buf, size_t cap, size_t *len)
{
	struct mx_hdr *m = st;
	uint32_t i = mx_find(m, k, kl);

	if (!i)
		return 1;
	struct mx_entry *e = &mx_entries(m)[i - 1];
	uint64_t off = __atomic_load_n(&e->voff, __ATOMIC_RELAXED);
	uint32_t vl = __atomic_load_n(&e->vlen, __ATOMIC_RELAXED);

	*len = vl;
	if (vl > cap)
		return -E2BIG;
	if (off + vl > MX_STRIPES * m->stripe_bytes)
		return -EFAULT;
	memcpy(buf, mx_arena(m) + off, vl);
	return 0;
}

static bool mx_may_drop(void)
{
	return cfg.memory != 0 || cfg.entries != 0;
}

const struct backend be_mutexshm = {
	"mutexshm", "shared memory, one process-shared mutex for writers, lock-free unsafe readers",
	OPBIT(OP_GET) | OPBIT(OP_SET) | OPBIT(OP_ADD), true,
	mx_setup, mx_teardown, mx_attach, mx_detach, mx_get, NULL, NULL,
	mx_set, mx_add, mx_del, NULL, mx_may_drop, NULL
};
