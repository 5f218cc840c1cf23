/* SPDX-License-Identifier: MIT */
/*
 * be_redis.c - shm-bench's "redis-unix" and "redis-tcp" backends, Redis
 * through hiredis (compiled when TC_HAVE_HIREDIS is defined).
 */
#include "bench.h"

#ifdef TC_HAVE_HIREDIS
#include <hiredis/hiredis.h>

static bool redis_unix;

static void *redis_attach(char *err, size_t len)
{
	redisContext *c = redis_unix ? redisConnectUnix(cfg.redis_sock)
				     : redisConnect(cfg.redis_host, cfg.redis_port);

	if (!c || c->err) {
		if (redis_unix)
			snprintf(err, len, "redis unix:%s: %s", cfg.redis_sock,
				 c ? c->errstr : "out of memory");
		else
			snprintf(err, len, "redis %s:%d: %s", cfg.redis_host, cfg.redis_port,
				 c ? c->errstr : "out of memory");
		if (c)
			redisFree(c);
		return NULL;
	}
	return c;
}

static void redis_detach(void *st)
{
	redisFree(st);
}

static int redis_get(void *st, const char *k, size_t kl, void *buf, size_t cap, size_t *len)
{
	redisReply *r = redisCommand(st, "GET %b", k, kl);
	int rc;

	if (!r)
		return -EIO;
	if (r->type == REDIS_REPLY_STRING) {
		*len = r->len;
		rc = r->len > cap ? -E2BIG : 0;
		if (!rc)
			memcpy(buf, r->str, r->len);
	} else {
		rc = r->type == REDIS_REPLY_NIL ? 1 : -EPROTO;
	}
	freeReplyObject(r);
	return rc;
}

static int redis_status(redisReply *r, int nil_rc)
{
	int rc;

	if (!r)
		return -EIO;
	if (r->type == REDIS_REPLY_NIL)
		rc = nil_rc;
	else if (r->type == REDIS_REPLY_STATUS || r->type == REDIS_REPLY_INTEGER)
		rc = r->type == REDIS_REPLY_INTEGER && r->integer == 0 ? 1 : 0;
	else
		rc = -EPROTO;
	freeReplyObject(r);
	return rc;
}

static int redis_set(void *st, const char *k, size_t kl, const void *v, size_t vl)
{
	return redis_status(redisCommand(st, "SET %b %b", k, kl, v, vl), -EPROTO);
}

static int redis_add(void *st, const char *k, size_t kl, const void *v, size_t vl)
{
	return redis_status(redisCommand(st, "SET %b %b NX", k, kl, v, vl), 1);
}

static int redis_del(void *st, const char *k, size_t kl)
{
	return redis_status(redisCommand(st, "DEL %b", k, kl), -EPROTO);
}

/* Pipelined preload: batches of appends, then their replies. */
static int redis_load(void *st, char *err, size_t len)
{
	unsigned char *v = malloc(cfg.vsize);
	char k[KEY_LEN + 1];
	enum { BATCH = 512 };

	if (!v)
		return -ENOMEM;
	for (uint64_t i = 0; i < cfg.keys; i += BATCH) {
		uint64_t n = cfg.keys - i < BATCH ? cfg.keys - i : BATCH;

		for (uint64_t j = 0; j < n; j++) {
			fmt_key(k, 'k', i + j);
			make_value(v, i + j, 1u << 8, true);
			redisAppendCommand(st, "SET %b %b", k, (size_t)KEY_LEN, v, cfg.vsize);
		}
		for (uint64_t j = 0; j < n; j++) {
			void *r;

			if (redisGetReply(st, &r) != REDIS_OK) {
				snprintf(err, len, "redis preload: %s", ((redisContext *)st)->errstr);
				free(v);
				return -EIO;
			}
			freeReplyObject(r);
		}
	}
	free(v);
	return 0;
}

static int redis_unix_setup(char *err, size_t len)
{
	(void)err;
	(void)len;
	redis_unix = true;
	return 0;
}

static int redis_tcp_setup(char *err, size_t len)
{
	(void)err;
	(void)len;
	redis_unix = false;
	return 0;
}

static void nothing(void)
{
}
const struct backend be_redis_unix = {
	"redis-unix", "Redis through hiredis over a unix socket (--redis-socket)",
	OPBIT(OP_GET) | OPBIT(OP_SET) | OPBIT(OP_ADD), true,
	redis_unix_setup, nothing, redis_attach, redis_detach, redis_get, NULL, NULL,
	redis_set, redis_add, redis_del, redis_load, never_drops, NULL
};

const struct backend be_redis_tcp = {
	"redis-tcp", "Redis through hiredis over TCP loopback (--redis-host/--redis-port)",
	OPBIT(OP_GET) | OPBIT(OP_SET) | OPBIT(OP_ADD), true,
	redis_tcp_setup, nothing, redis_attach, redis_detach, redis_get, NULL, NULL,
	redis_set, redis_add, redis_del, redis_load, never_drops, NULL
};

#endif /* TC_HAVE_HIREDIS */
