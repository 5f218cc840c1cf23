/* SPDX-License-Identifier: MIT */
/*
 * be_tickcache.c - shm-bench's tickcache backend: tc_get copy-out, tc_peek
 * zero-copy inside a read section, tc_set, tc_add, on a segment the parent
 * creates and every process opens.  tools/callgrind.sh collects inside
 * tcb_get, tcb_peek, tcb_peek_end and tcb_set: keep those names, and keep
 * them out of line (they are reached only through the backend table).
 */
#include "bench.h"

static uint64_t tcb_entries(void)
{
	return cfg.entries ? cfg.entries : cfg.keys + cfg.keys / 4 + 4096;
}

static uint64_t tcb_memory(void)
{
	if (cfg.memory)
		return cfg.memory;
	/* Room for every key twice over (entry header, key, size-class slack),
	 * so the preloaded set always fits and overwrites never evict. */
	uint64_t per = round_up(cfg.vsize + KEY_LEN + 96, 64);
	uint64_t m = 2 * (cfg.keys + 4096) * per + (16u << 20);

	return round_up(m, 1u << 20);
}

static int tcb_setup(char *err, size_t len)
{
	tc_opts o = {
		.max_entries = tcb_entries(),
		.memory_bytes = tcb_memory(),
		.max_readers = 0,
		.eviction = cfg.evict ? TC_EVICT_LRU : TC_EVICT_NONE,
		.flags = TC_CREATE | TC_EXCL | (cfg.checksum ? TC_CHECKSUM : 0),
	};
	tc_cache *c;
	int rc;

	snprintf(cfg.seg, sizeof(cfg.seg), "shm-bench.%d", (int)getpid());
	rc = tc_open(&c, cfg.seg, &o);
	if (rc) {
		snprintf(err, len, "tc_open(%s, entries %" PRIu64 ", memory %" PRIu64 "): %s",
			 cfg.seg, o.max_entries, o.memory_bytes, tc_strerror(rc));
		cfg.seg[0] = 0;
		return rc;
	}
	tc_close(c);
	return 0;
}

static void tcb_teardown(void)
{
	if (cfg.seg[0])
		tc_unlink(cfg.seg);
	cfg.seg[0] = 0;
}

static void *tcb_attach(char *err, size_t len)
{
	tc_cache *c;
	int rc = tc_open(&c, cfg.seg, NULL);

	if (rc) {
		snprintf(err, len, "tc_open(%s): %s", cfg.seg, tc_strerror(rc));
		return NULL;
	}
	return c;
}

static void tcb_detach(void *st)
{
	tc_close(st);
}

static inline int tc_rc(int rc)
{
	return rc == 0 ? 0 : rc == -ENOENT ? 1 : rc;
}

static int tcb_get(void *st, const char *k, size_t kl, void *buf, size_t cap, size_t *len)
{
	tc_meta m;
	int rc = tc_get(st, k, kl, buf, cap, &m);

	*len = m.len;
	return tc_rc(rc);
}

static int tcb_peek(void *st, const char *k, size_t kl, const void **val, size_t *len)
{
	tc_meta m;
	int rc = tc_read_lock(st);

	if (rc)
		return rc;
	rc = tc_peek(st, k, kl, val, &m);
	if (rc && rc != -ENOENT) {
		tc_read_unlock(st);
		return rc;
	}
	*len = rc ? 0 : m.len;
	return tc_rc(rc);
}

static void tcb_peek_end(void *st)
{
	tc_read_unlock(st);
}

static int tcb_set(void *st, const char *k, size_t kl, const void *v, size_t vl)
{
	return tc_set(st, k, kl, v, vl, 0, 0);
}

static int tcb_add(void *st, const char *k, size_t kl, const void *v, size_t vl)
{
	int rc = tc_add(st, k, kl, v, vl, 0, 0);

	return rc == -EEXIST ? 1 : rc;
}

static int tcb_del(void *st, const char *k, size_t kl)
{
	return tc_rc(tc_del(st, k, kl));
}

static bool tcb_may_drop(void)
{
	return cfg.evict;
}

/* One tc_get_many of the N keys (--batch). */
static int tcb_get_many(void *st, const char (*keys)[KEY_LEN + 1], size_t kl, unsigned n,
			unsigned char *buf, size_t cap, unsigned *hits, unsigned *misses)
{
	static tc_req r[4096];
	int rc;

	for (unsigned j = 0; j < n; j++)
		r[j] = (tc_req){ .key = keys[j], .klen = kl, .buf = buf + (size_t)j * cap,
				 .cap = cap };
	rc = tc_get_many(st, r, n);
	if (rc < 0)
		return rc;
	*hits = (unsigned)rc;
	*misses = 0;
	for (unsigned j = 0; j < n; j++) {
		if (r[j].rc == -ENOENT)
			(*misses)++;
		else if (r[j].rc != 0)
			return r[j].rc;
	}
	return 0;
}

const struct backend be_tickcache = {
	"tickcache", "libtickcache in a POSIX shm segment (tc_get/tc_peek/tc_set/tc_add, "
	"tc_get_many)",
	OPBIT(OP_GET) | OPBIT(OP_PEEK) | OPBIT(OP_SET) | OPBIT(OP_ADD) | OPBIT(OP_MGET), true,
	tcb_setup, tcb_teardown, tcb_attach, tcb_detach, tcb_get, tcb_peek, tcb_peek_end,
	tcb_set, tcb_add, tcb_del, NULL, tcb_may_drop, tcb_get_many
};
