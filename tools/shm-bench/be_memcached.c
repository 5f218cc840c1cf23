/* SPDX-License-Identifier: MIT */
/*
 * be_memcached.c - shm-bench's "memcached" backend, libmemcached over TCP
 * loopback (compiled when TC_HAVE_MEMCACHED is defined).
 */
#include "bench.h"

#ifdef TC_HAVE_MEMCACHED
#include <libmemcached/memcached.h>


static void *mc_attach(char *err, size_t len)
{
	memcached_st *m = memcached_create(NULL);
	memcached_return_t rc;

	if (!m) {
		snprintf(err, len, "memcached_create failed");
		return NULL;
	}
	memcached_behavior_set(m, MEMCACHED_BEHAVIOR_TCP_NODELAY, 1);
	rc = memcached_server_add(m, cfg.mc_host, (in_port_t)cfg.mc_port);
	if (rc == MEMCACHED_SUCCESS)
		rc = memcached_version(m);
	if (rc != MEMCACHED_SUCCESS) {
		const char *why = memcached_last_error_message(m);

		snprintf(err, len, "memcached %s:%d: %s", cfg.mc_host, cfg.mc_port,
			 why ? why : memcached_strerror(m, rc));
		memcached_free(m);
		return NULL;
	}
	return m;
}

static void mc_detach(void *st)
{
	memcached_free(st);
}

static int mc_get(void *st, const char *k, size_t kl, void *buf, size_t cap, size_t *len)
{
	memcached_return_t rc;
	uint32_t flags;
	size_t vl;
	char *v = memcached_get(st, k, kl, &vl, &flags, &rc);

	if (!v)
		return rc == MEMCACHED_NOTFOUND ? 1 : rc == MEMCACHED_SUCCESS ? 0 : -EIO;
	*len = vl;
	int r = vl > cap ? -E2BIG : 0;

	if (!r)
		memcpy(buf, v, vl);
	free(v);
	return r;
}

static int mc_set(void *st, const char *k, size_t kl, const void *v, size_t vl)
{
	memcached_return_t rc = memcached_set(st, k, kl, v, vl, 0, 0);

	return rc == MEMCACHED_SUCCESS || rc == MEMCACHED_BUFFERED ? 0 : -EIO;
}

static int mc_add(void *st, const char *k, size_t kl, const void *v, size_t vl)
{
	memcached_return_t rc = memcached_add(st, k, kl, v, vl, 0, 0);

	if (rc == MEMCACHED_SUCCESS)
		return 0;
	return rc == MEMCACHED_NOTSTORED || rc == MEMCACHED_DATA_EXISTS ? 1 : -EIO;
}

static int mc_del(void *st, const char *k, size_t kl)
{
	memcached_return_t rc = memcached_delete(st, k, kl, 0);

	return rc == MEMCACHED_SUCCESS ? 0 : rc == MEMCACHED_NOTFOUND ? 1 : -EIO;
}

/*
 * Preload through a second connection with NOREPLY and buffered requests
 * (no round trip per key), then wait on the main one until the last key has
 * arrived: the server handles one connection's requests in order.
 */
static int mc_load(void *st, char *err, size_t len)
{
	char k[KEY_LEN + 1];
	memcached_return_t rc = MEMCACHED_SUCCESS;
	unsigned char *v = malloc(cfg.vsize);
	memcached_st *p = mc_attach(err, len);

	if (!v || !p) {
		free(v);
		if (p)
			memcached_free(p);
		return -ENOMEM;
	}
	memcached_behavior_set(p, MEMCACHED_BEHAVIOR_NOREPLY, 1);
	memcached_behavior_set(p, MEMCACHED_BEHAVIOR_BUFFER_REQUESTS, 1);
	for (uint64_t i = 0; i < cfg.keys; i++) {
		fmt_key(k, 'k', i);
		make_value(v, i, 1u << 8, true);
		rc = memcached_set(p, k, KEY_LEN, (const char *)v, cfg.vsize, 0, 0);
		if (rc != MEMCACHED_SUCCESS && rc != MEMCACHED_BUFFERED)
			break;
	}
	if (rc == MEMCACHED_SUCCESS || rc == MEMCACHED_BUFFERED)
		rc = memcached_flush_buffers(p);
	free(v);
	if (rc != MEMCACHED_SUCCESS) {
		snprintf(err, len, "memcached preload: %s", memcached_strerror(p, rc));
		memcached_free(p);
		return -EIO;
	}
	fmt_key(k, 'k', cfg.keys - 1);
	for (int t = 0; t < 5000; t++) {
		size_t vl;
		uint32_t fl;
		char *g = memcached_get(p, k, KEY_LEN, &vl, &fl, &rc);

		if (g) {
			free(g);
			memcached_free(p);
			return 0;
		}
		usleep(1000);
	}
	memcached_free(p);
	(void)st;
	snprintf(err, len, "memcached preload: the last key never arrived");
	return -EIO;
}

static int mc_setup(char *err, size_t len)
{
	(void)err;
	(void)len;
	return 0;
}

static void mc_teardown(void)
{
}
const struct backend be_memcached = {
	"memcached", "memcached through libmemcached over TCP loopback (--memcached-host/-port)",
	OPBIT(OP_GET) | OPBIT(OP_SET) | OPBIT(OP_ADD), true,
	mc_setup, mc_teardown, mc_attach, mc_detach, mc_get, NULL, NULL,
	mc_set, mc_add, mc_del, mc_load, never_drops, NULL
};

#endif /* TC_HAVE_MEMCACHED */
