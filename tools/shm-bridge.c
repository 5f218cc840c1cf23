/* SPDX-License-Identifier: MIT */
/*
 * shm-bridge - keep the tiered key prefixes of local tickcache segments
 * coherent with Redis (issue 13; shm-bridge(8), docs/design.md "The Redis
 * tier").
 *
 *   shm-bridge --redis unix:PATH|tcp:HOST:PORT [--password-file F]
 *              --map 'PREFIX=SEGMENT[,SEGMENT...]' ...
 *              [--mode invalidate|mirror] [--max-ttl S] [--ping-ms N]
 *              [--stale-ms N] [--foreground] [--pidfile F]
 *
 * One connection ("sub") carries both Redis's invalidations and the
 * bridge's pings: CLIENT TRACKING on REDIRECT <its own id> BCAST PREFIX ...
 * NOLOOP, then SUBSCRIBE __redis__:invalidate (RESP2, hiredis 0.14).  Losing
 * it loses both at once, so a pong proves the invalidation stream is alive.
 * A second connection ("cmd") reads values in mirror mode.
 *
 * Never stale: one ping is outstanding at a time, sent ping_ms / 2 after
 * the previous one was sent; a ping unanswered for ping_ms, or any error on
 * a connection, marks the tier down in every segment and purges the mapped
 * prefixes there at once.  Redis silent from T: the first ping sent after T
 * leaves by T + ping_ms / 2 and is given up by T + 1.5 x ping_ms, so the
 * purge is done within 2 x ping_ms unless it takes more than ping_ms / 2.  Then the bridge
 * reconnects with a backoff (50 ms doubling to 2 s), re-arms tracking,
 * purges again (writes made while tracking was being armed are not lost)
 * and only then marks the tier up.
 *
 * A live pid proves nothing about a stopped or stalled bridge: each ping
 * also renews its promise (tc_tier_until, 2 x ping_ms from a time taken
 * before it checked itself), after which readers take the tier as down;
 * one that wakes past its promise goes down and re-arms.
 *
 * Single-threaded: invalidations are applied in the order Redis sent them,
 * so in mirror mode a value read for an older invalidation is overwritten
 * by the read of the newer one.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

#ifdef TC_HAVE_HIREDIS
#include <hiredis/hiredis.h>
#endif

static const char usage_text[] =
	"usage: shm-bridge --redis unix:PATH|tcp:HOST:PORT|sentinel:HOST:PORT[,...]/MASTER\n"
	"                  [--password-file F]\n"
	"                  --map 'PREFIX=SEGMENT[,SEGMENT...]' ...\n"
	"                  [--mode invalidate|mirror] [--max-ttl S] [--ping-ms N]\n"
	"                  [--stale-ms N] [--foreground] [--pidfile F] [--quiet]\n";

#define MAX_MAPS 64
#define MAX_SEGS 64

struct seg {
	char name[TC_NAME_MAX + 1];
	tc_cache *c;
};

struct map {
	char *prefix;
	size_t plen;
	int segs[MAX_SEGS]; /* indexes into g.segs */
	int nsegs;
};

static struct {
	const char *redis;       /* as given: unix:PATH, tcp:HOST:PORT or sentinel:... */
	char addr[300];          /* where the bridge connects: unix:PATH or tcp:HOST:PORT */
	char *password;
	struct map maps[MAX_MAPS];
	int nmaps;
	struct seg segs[MAX_SEGS];
	int nsegs;
	bool mirror;
	uint64_t max_ttl_ms;   /* 0 = none */
	uint64_t ping_ms;
	uint64_t stale_ms;
	bool foreground;
	bool quiet;
	const char *pidfile;
	/* counters, logged at exit */
	uint64_t invalidations, keys_deleted, keys_written, purges, downs;
} g = { .ping_ms = 100 };

static volatile sig_atomic_t stop;

static void on_term(int sig)
{
	(void)sig;
	stop = 1;
}

static void logmsg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void logmsg(const char *fmt, ...)
{
	va_list ap;
	struct timespec ts;
	struct tm tm;

	if (g.quiet)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	fprintf(stderr, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ shm-bridge[%d]: ",
		tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
		tm.tm_sec, ts.tv_nsec / 1000000, (int)getpid());
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static uint64_t now_ms(void)
{
	return mono_ns() / 1000000u;
}

static int seg_index(const char *name)
{
	for (int i = 0; i < g.nsegs; i++)
		if (strcmp(g.segs[i].name, name) == 0)
			return i;
	if (g.nsegs == MAX_SEGS)
		return -1;
	snprintf(g.segs[g.nsegs].name, sizeof(g.segs[0].name), "%s", name);
	return g.nsegs++;
}

/* --map PREFIX=SEG[,SEG...] */
static int add_map(const char *arg)
{
	const char *eq = strrchr(arg, '=');
	if (!eq || eq == arg)
		return usage_error("--map '%s': expected PREFIX=SEGMENT[,SEGMENT...] with a non-empty prefix", arg);
	if (g.nmaps == MAX_MAPS)
		return usage_error("too many --map (at most %d)", MAX_MAPS);
	struct map *m = &g.maps[g.nmaps];
	m->plen = (size_t)(eq - arg);
	m->prefix = strndup(arg, m->plen);
	char *list = strdup(eq + 1);
	if (!m->prefix || !list)
		return usage_error("out of memory");
	for (int i = 0; i < g.nmaps; i++) {
		size_t n = g.maps[i].plen < m->plen ? g.maps[i].plen : m->plen;
		if (memcmp(g.maps[i].prefix, m->prefix, n) != 0)
			continue;
		free(list);
		/* Redis refuses overlapping BCAST prefixes: the tier would
		 * never come up. */
		if (g.maps[i].plen == m->plen)
			return usage_error("--map: prefix '%s' given twice", m->prefix);
		return usage_error("--map: prefixes '%s' and '%s' overlap (Redis refuses that); "
				   "map the shorter one only", g.maps[i].prefix, m->prefix);
	}
	char *save = NULL;
	for (char *s = strtok_r(list, ",", &save); s; s = strtok_r(NULL, ",", &save)) {
		if (!tc_name_valid(s)) {
			int rc = usage_error("--map '%s': '%s' is not a valid segment name", arg, s);
			free(list); /* S points into it */
			return rc;
		}
		int k = seg_index(s);
		if (k < 0 || m->nsegs == MAX_SEGS) {
			free(list);
			return usage_error("too many segments (at most %d)", MAX_SEGS);
		}
		m->segs[m->nsegs++] = k;
	}
	free(list);
	if (m->nsegs == 0)
		return usage_error("--map '%s': no segment", arg);
	g.nmaps++;
	return 0;
}

/* The fnmatch glob of keys starting with PREFIX: its specials escaped. */
static char *prefix_glob(const char *p, size_t n)
{
	char *out = malloc(2 * n + 2), *o = out;
	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if (strchr("*?[]\\", p[i]))
			*o++ = '\\';
		*o++ = p[i];
	}
	*o++ = '*';
	*o = 0;
	return out;
}

/* Delete every key of the mapped prefixes in their segments. */
static void purge_all(void)
{
	for (int i = 0; i < g.nmaps; i++) {
		char *glob = prefix_glob(g.maps[i].prefix, g.maps[i].plen);
		for (int j = 0; j < g.maps[i].nsegs; j++) {
			struct seg *s = &g.segs[g.maps[i].segs[j]];
			uint64_t n = 0;
			int rc = glob ? tc_purge(s->c, glob, &n) : -ENOMEM;
			if (rc)
				logmsg("purge of '%s' in %s: %s", g.maps[i].prefix, s->name, tc_strerror(rc));
			g.keys_deleted += n;
		}
		free(glob);
	}
	g.purges++;
}

/* Publish STATE in every segment; false when a lease was lost. */
static bool set_state(uint32_t state)
{
	bool ok = true;
	for (int i = 0; i < g.nsegs; i++) {
		int rc = tc_tier_set(g.segs[i].c, state);
		if (rc) {
			logmsg("%s: tier lease lost (%s)", g.segs[i].name, tc_strerror(rc));
			ok = false;
		}
	}
	return ok;
}

/*
 * Vouch for the tier in every segment until RT_MS + 2 x ping_ms (RT_MS a
 * tc_now_ms taken before the caller checked itself, so that a bridge
 * stopped in between leaves a promise that has already run out), then
 * publish it up; false when a lease was lost.
 */
static bool vouch_up(int64_t rt_ms)
{
	bool ok = true;
	for (int i = 0; i < g.nsegs; i++) {
		int rc = tc_tier_until(g.segs[i].c, rt_ms + 2 * (int64_t)g.ping_ms);
		if (rc) {
			logmsg("%s: tier lease lost (%s)", g.segs[i].name, tc_strerror(rc));
			ok = false;
		}
	}
	return ok && set_state(TC_TIER_UP);
}

static void release_all(void)
{
	for (int i = 0; i < g.nsegs; i++)
		if (g.segs[i].c)
			(void)tc_tier_release(g.segs[i].c);
}

/* Attach every segment (waiting for missing ones) and take the tier lease
 * on all of them; waits, without connecting anywhere, while another live
 * bridge holds one.  False when asked to stop. */
static bool claim_all(void)
{
	bool said_wait = false, said_missing = false;

	while (!stop) {
		bool missing = false;
		for (int i = 0; i < g.nsegs; i++) {
			if (g.segs[i].c)
				continue;
			tc_opts o = { .flags = TC_TOOL | TC_LAZY };
			int rc = tc_open(&g.segs[i].c, g.segs[i].name, &o);
			if (rc) {
				if (!said_missing)
					logmsg("waiting for segment %s (%s)", g.segs[i].name, tc_strerror(rc));
				said_missing = true;
				missing = true;
			}
		}
		if (!missing) {
			int got = 0;
			uint32_t holder = 0;
			for (; got < g.nsegs; got++)
				if (tc_tier_claim(g.segs[got].c, g.stale_ms, &holder))
					break;
			if (got == g.nsegs)
				return true;
			for (int i = 0; i < got; i++)
				(void)tc_tier_release(g.segs[i].c);
			if (!said_wait)
				logmsg("segment %s is served by bridge %u: waiting", g.segs[got].name, holder);
			said_wait = true;
		}
		struct timespec ts = { 0, (long)(g.ping_ms < 500 ? g.ping_ms : 500) * 1000000L };
		nanosleep(&ts, NULL);
	}
	return false;
}

#ifdef TC_HAVE_HIREDIS

static redisContext *sub, *cmd;

/* Connect to ADDR (unix:PATH or tcp:HOST:PORT). */
static redisContext *connect_addr(const char *addr, uint64_t timeout_ms)
{
	struct timeval tv = { (time_t)(timeout_ms / 1000), (suseconds_t)(timeout_ms % 1000) * 1000 };
	redisContext *c = NULL;

	if (strncmp(addr, "unix:", 5) == 0) {
		c = redisConnectUnixWithTimeout(addr + 5, tv);
	} else {
		char host[256];
		const char *hp = addr + 4, *colon = strrchr(hp, ':');
		if (!colon || (size_t)(colon - hp) >= sizeof(host))
			return NULL;
		size_t hl = (size_t)(colon - hp);
		memcpy(host, hp, hl);
		host[hl] = 0;
		c = redisConnectWithTimeout(host, atoi(colon + 1), tv);
	}
	if (!c)
		return NULL;
	if (c->err) {
		logmsg("connect %s: %s", addr, c->errstr);
		redisFree(c);
		return NULL;
	}
	redisSetTimeout(c, tv);
	return c;
}

/*
 * --redis sentinel:HOST:PORT[,HOST:PORT...]/MASTER: the master's address as
 * the first sentinel that answers gives it (SENTINEL
 * get-master-addr-by-name), into OUT as tcp:IP:PORT.  False when none does.
 */
static bool sentinel_master(char *out, size_t cap, uint64_t timeout_ms)
{
	const char *list = g.redis + 9, *slash = strrchr(list, '/');
	char buf[256];
	size_t n = (size_t)(slash - list);
	if (n >= sizeof(buf))
		return false;
	memcpy(buf, list, n);
	buf[n] = 0;
	char *save = NULL;
	for (char *one = strtok_r(buf, ",", &save); one; one = strtok_r(NULL, ",", &save)) {
		char addr[280];
		snprintf(addr, sizeof(addr), "tcp:%s", one);
		redisContext *c = connect_addr(addr, timeout_ms);
		if (!c)
			continue;
		redisReply *r = redisCommand(c, "SENTINEL get-master-addr-by-name %s", slash + 1);
		bool ok = r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
			  r->element[0]->type == REDIS_REPLY_STRING &&
			  r->element[1]->type == REDIS_REPLY_STRING;
		if (ok)
			snprintf(out, cap, "tcp:%s:%s", r->element[0]->str, r->element[1]->str);
		if (r)
			freeReplyObject(r);
		redisFree(c);
		if (ok)
			return true;
	}
	return false;
}

static bool sentinel_mode(void)
{
	return strncmp(g.redis, "sentinel:", 9) == 0;
}

static redisContext *connect_redis(uint64_t timeout_ms)
{
	redisContext *c = connect_addr(g.addr, timeout_ms);
	if (!c)
		return NULL;
	if (g.password) {
		redisReply *r = redisCommand(c, "AUTH %s", g.password);
		bool ok = r && r->type == REDIS_REPLY_STATUS;
		if (!ok)
			logmsg("AUTH: %s", r && r->type == REDIS_REPLY_ERROR ? r->str : c->errstr);
		if (r)
			freeReplyObject(r);
		if (!ok) {
			redisFree(c);
			return NULL;
		}
	}
	return c;
}

static void disconnect(void)
{
	if (sub)
		redisFree(sub);
	if (cmd)
		redisFree(cmd);
	sub = cmd = NULL;
}

/* Connect, arm tracking on the subscribed connection, then purge: every
 * write before the subscription is answered is covered by the purge, every
 * write after it by an invalidation. */
static bool arm(void)
{
	uint64_t to = g.ping_ms * 5 < 200 ? 200 : g.ping_ms * 5;
	if (to > 1000)
		to = 1000;
	redisReply *r;

	if (sentinel_mode() && !sentinel_master(g.addr, sizeof(g.addr), to)) {
		logmsg("no sentinel of %s names the master", g.redis);
		return false;
	}
	sub = connect_redis(to);
	if (!sub)
		return false;
	/* Only a master: a replica left behind by a failover no longer sees
	 * the fleet's writes first. */
	r = redisCommand(sub, "ROLE");
	if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 1 ||
	    r->element[0]->type != REDIS_REPLY_STRING || strcmp(r->element[0]->str, "master") != 0) {
		logmsg("%s is not a master", g.addr);
		goto fail;
	}
	freeReplyObject(r);
	r = redisCommand(sub, "CLIENT ID");
	if (!r || r->type != REDIS_REPLY_INTEGER) {
		logmsg("CLIENT ID: %s", r && r->type == REDIS_REPLY_ERROR ? r->str : sub->errstr);
		goto fail;
	}
	long long id = r->integer;
	freeReplyObject(r);

	const char *argv[8 + 2 * MAX_MAPS];
	size_t lens[8 + 2 * MAX_MAPS];
	char idbuf[32];
	int n = 0;
	snprintf(idbuf, sizeof(idbuf), "%lld", id);
	argv[n] = "CLIENT"; lens[n++] = 6;
	argv[n] = "TRACKING"; lens[n++] = 8;
	argv[n] = "on"; lens[n++] = 2;
	argv[n] = "REDIRECT"; lens[n++] = 8;
	argv[n] = idbuf; lens[n++] = strlen(idbuf);
	argv[n] = "BCAST"; lens[n++] = 5;
	for (int i = 0; i < g.nmaps; i++) {
		argv[n] = "PREFIX"; lens[n++] = 6;
		argv[n] = g.maps[i].prefix; lens[n++] = g.maps[i].plen;
	}
	argv[n] = "NOLOOP"; lens[n++] = 6;
	r = redisCommandArgv(sub, n, argv, lens);
	if (!r || r->type != REDIS_REPLY_STATUS) {
		logmsg("CLIENT TRACKING: %s", r && r->type == REDIS_REPLY_ERROR ? r->str : sub->errstr);
		goto fail;
	}
	freeReplyObject(r);
	r = redisCommand(sub, "SUBSCRIBE __redis__:invalidate");
	if (!r || r->type != REDIS_REPLY_ARRAY) {
		logmsg("SUBSCRIBE: %s", r ? "unexpected reply" : sub->errstr);
		goto fail;
	}
	freeReplyObject(r);
	if (g.mirror) {
		cmd = connect_redis(to);
		if (!cmd)
			goto fail_quiet;
		/* A mirror read that Redis leaves unanswered for ping_ms takes
		 * the tier down like an unanswered ping: the bound holds while
		 * the bridge is busy mirroring. */
		struct timeval tv = { (time_t)(g.ping_ms / 1000),
				      (suseconds_t)(g.ping_ms % 1000) * 1000 };
		redisSetTimeout(cmd, tv);
	}
	purge_all();
	return true;
fail:
	if (r)
		freeReplyObject(r);
fail_quiet:
	disconnect();
	return false;
}

/* Mirror one key: GET and PTTL on the command connection; false when the
 * connection failed (the tier goes down). */
static bool mirror_key(const char *key, size_t klen, const struct map *m)
{
	redisReply *v = NULL, *t = NULL;
	if (redisAppendCommand(cmd, "GET %b", key, klen) != REDIS_OK ||
	    redisAppendCommand(cmd, "PTTL %b", key, klen) != REDIS_OK ||
	    redisGetReply(cmd, (void **)&v) != REDIS_OK ||
	    redisGetReply(cmd, (void **)&t) != REDIS_OK) {
		logmsg("mirror read: %s", cmd->errstr);
		if (v)
			freeReplyObject(v);
		return false;
	}
	bool ok = true;
	if (v->type == REDIS_REPLY_STRING && t->type == REDIS_REPLY_INTEGER && t->integer != -2) {
		uint64_t ttl = t->integer > 0 ? (uint64_t)t->integer : 0;
		if (g.max_ttl_ms && (ttl == 0 || ttl > g.max_ttl_ms))
			ttl = g.max_ttl_ms;
		for (int j = 0; j < m->nsegs; j++) {
			struct seg *s = &g.segs[m->segs[j]];
			int rc = v->len <= TC_VALUE_MAX
				 ? tc_set(s->c, key, klen, v->str, (size_t)v->len, 0, ttl)
				 : -EMSGSIZE;
			if (rc) {
				/* Not storable: the old value must not stay. */
				(void)tc_del(s->c, key, klen);
				logmsg("mirror %.*s into %s: %s", (int)klen, key, s->name, tc_strerror(rc));
			} else {
				g.keys_written++;
			}
		}
	} else if (v->type == REDIS_REPLY_NIL || v->type == REDIS_REPLY_STRING) {
		for (int j = 0; j < m->nsegs; j++)
			if (tc_del(g.segs[m->segs[j]].c, key, klen) == 0)
				g.keys_deleted++;
	} else {
		/* Another type, or an error: it cannot be mirrored; drop ours. */
		for (int j = 0; j < m->nsegs; j++)
			(void)tc_del(g.segs[m->segs[j]].c, key, klen);
	}
	freeReplyObject(v);
	freeReplyObject(t);
	return ok;
}

/* One invalidated key: delete (invalidate) or re-read (mirror) it in the
 * segments of every prefix it belongs to. */
static bool invalidate_key(const char *key, size_t klen)
{
	for (int i = 0; i < g.nmaps; i++) {
		const struct map *m = &g.maps[i];
		if (klen < m->plen || memcmp(key, m->prefix, m->plen) != 0)
			continue;
		if (klen > TC_KEY_MAX)
			continue; /* never stored locally */
		if (g.mirror) {
			if (!mirror_key(key, klen, m))
				return false;
			continue;
		}
		for (int j = 0; j < m->nsegs; j++)
			if (tc_del(g.segs[m->segs[j]].c, key, klen) == 0)
				g.keys_deleted++;
	}
	return true;
}

/* Is R the bulk string WORD (its length too: a reply is bytes, not a C string)? */
static bool is_word(const redisReply *r, const char *word)
{
	size_t n = strlen(word);
	return r->type == REDIS_REPLY_STRING && (size_t)r->len == n && memcmp(r->str, word, n) == 0;
}

/*
 * One reply on the subscribed connection.  Returns 1 for a pong, 0 for an
 * invalidation applied, -1 when the tier must go down.  The replies are
 * untrusted bytes: anything but a pong or an invalidation of the shapes
 * Redis sends (a key, an array of keys, nil for a flush) means the stream
 * is no longer understood, and a key of it may go unapplied: down (purge)
 * rather than skip it.
 */
static int handle(redisReply *r)
{
	if (r->type != REDIS_REPLY_ARRAY || r->elements < 2 ||
	    r->element[0]->type != REDIS_REPLY_STRING) {
		logmsg("unexpected reply on the subscribed connection (type %d)", r->type);
		return -1;
	}
	if (is_word(r->element[0], "pong"))
		return 1;
	if (!is_word(r->element[0], "message") || r->elements != 3) {
		logmsg("unexpected '%.*s' of %zu elements on the subscribed connection",
		       (int)(r->element[0]->len < 32 ? r->element[0]->len : 32),
		       r->element[0]->str, (size_t)r->elements);
		return -1;
	}
	redisReply *p = r->element[2];
	g.invalidations++;
	if (p->type == REDIS_REPLY_NIL) {
		/* FLUSHALL / FLUSHDB */
		purge_all();
		return 0;
	}
	if (p->type == REDIS_REPLY_STRING)
		return invalidate_key(p->str, (size_t)p->len) ? 0 : -1;
	bool ok = p->type == REDIS_REPLY_ARRAY;
	for (size_t i = 0; ok && i < p->elements; i++)
		ok = p->element[i]->type == REDIS_REPLY_STRING;
	if (!ok) {
		logmsg("unexpected invalidation (type %d) on the subscribed connection", p->type);
		return -1;
	}
	for (size_t i = 0; i < p->elements; i++)
		if (!invalidate_key(p->element[i]->str, (size_t)p->element[i]->len))
			return -1;
	return 0;
}

/* Serve until Redis goes silent or fails (returns true) or we are asked to
 * stop or lose a lease (false). */
static bool serve(void)
{
	uint64_t ping_sent = 0;   /* 0 = none outstanding */
	uint64_t next_ping = now_ms() + g.ping_ms / 2;
	uint64_t next_sentinel = now_ms() + 1000;
	uint64_t vouched = now_ms(); /* run() vouched just before */

	for (;;) {
		if (stop)
			return false;
		int64_t rt = tc_now_ms();
		uint64_t now = now_ms();
		/* Stopped or stalled past the promise: readers took the tier
		 * down and invalidations may wait unread; purge and re-arm
		 * rather than vouch again over them. */
		if (now - vouched > 2 * g.ping_ms) {
			logmsg("stalled for %" PRIu64 " ms: the tier lapsed", now - vouched);
			return true;
		}
		if (ping_sent && now - ping_sent >= g.ping_ms) {
			logmsg("no pong for %" PRIu64 " ms: Redis is silent", now - ping_sent);
			return true;
		}
		if (sentinel_mode() && now >= next_sentinel) {
			/* A failover moves the master: follow it.  A sentinel that
			 * does not answer changes nothing (the pings judge Redis). */
			char addr[sizeof(g.addr)];
			uint64_t to = g.ping_ms / 2 ? g.ping_ms / 2 : 1;
			if (sentinel_master(addr, sizeof(addr), to) && strcmp(addr, g.addr) != 0) {
				logmsg("failover: the master is now %s (was %s)", addr, g.addr);
				return true;
			}
			next_sentinel = now_ms() + 1000;
			continue;
		}
		if (!ping_sent && now >= next_ping) {
			int done = 0;
			if (redisAppendCommand(sub, "PING") != REDIS_OK)
				return true;
			while (!done)
				if (redisBufferWrite(sub, &done) != REDIS_OK) {
					logmsg("write: %s", sub->errstr);
					return true;
				}
			ping_sent = now;
			next_ping = now + g.ping_ms / 2;
			/* The heartbeat of the leases and the promise renewed; a
			 * lost lease ends the bridge. */
			if (!vouch_up(rt))
				return false;
			vouched = now;
		}
		uint64_t until = ping_sent ? ping_sent + g.ping_ms : next_ping;
		int wait = until > now ? (int)(until - now) : 0;
		struct pollfd pfd = { .fd = sub->fd, .events = POLLIN };
		int pr = poll(&pfd, 1, wait);
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr <= 0)
			continue;
		if (redisBufferRead(sub) != REDIS_OK) {
			logmsg("connection lost: %s", sub->errstr);
			return true;
		}
		for (;;) {
			void *rp = NULL;
			/* From the buffer only: redisGetReply would block reading. */
			if (redisReaderGetReply(sub->reader, &rp) != REDIS_OK) {
				logmsg("protocol error: %s", sub->reader->errstr);
				return true;
			}
			if (!rp)
				break;
			int h = handle(rp);
			freeReplyObject(rp);
			if (h < 0)
				return true;
			if (h == 1)
				ping_sent = 0;
		}
	}
}

static int run(void)
{
	uint64_t backoff = 50;

	if (!claim_all())
		return 0;
	logmsg("serving %d prefix(es) in %d segment(s), %s mode, ping %" PRIu64 " ms",
	       g.nmaps, g.nsegs, g.mirror ? "mirror" : "invalidate", g.ping_ms);
	/* Whatever the segments hold was never tracked by us. */
	purge_all();
	while (!stop) {
		if (arm()) {
			if (!vouch_up(tc_now_ms()))
				break;
			logmsg("tier up: tracking armed on %s", g.addr);
			backoff = 50;
			bool down = serve();
			/* Down first, so that a strategy stops trusting the tier at
			 * once, then the purge. */
			(void)set_state(TC_TIER_DOWN);
			purge_all();
			disconnect();
			g.downs++;
			if (!down)
				break;
			logmsg("tier down: mapped prefixes purged, reconnecting");
		} else if (!set_state(TC_TIER_DOWN)) {
			break;
		}
		/* Backoff, in slices so that SIGTERM is served within one. */
		for (uint64_t slept = 0; slept < backoff && !stop; slept += 50) {
			struct timespec ts = { 0, 50 * 1000000L };
			nanosleep(&ts, NULL);
			/* heartbeat while down */
			if (!set_state(TC_TIER_DOWN)) {
				stop = 1;
				break;
			}
		}
		backoff = backoff * 2 > 2000 ? 2000 : backoff * 2;
	}
	/* Exiting: nobody keeps the tiered keys coherent any more. */
	(void)set_state(TC_TIER_DOWN);
	purge_all();
	release_all();
	logmsg("exit: %" PRIu64 " invalidations, %" PRIu64 " keys deleted, %" PRIu64
	       " written, %" PRIu64 " purges, %" PRIu64 " downs",
	       g.invalidations, g.keys_deleted, g.keys_written, g.purges, g.downs);
	return 0;
}

#else

static int run(void)
{
	fprintf(stderr, "shm-bridge: built without hiredis (install libhiredis-dev and rebuild)\n");
	return EX_TC_USAGE;
}

#endif

static int read_password(const char *path)
{
	FILE *f = fopen(path, "r");
	char buf[1024];
	if (!f) {
		fprintf(stderr, "shm-bridge: --password-file %s: %s\n", path, strerror(errno));
		return EX_TC_USAGE;
	}
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	buf[strcspn(buf, "\r\n")] = 0;
	g.password = strdup(buf);
	return 0;
}

/* The options into g; -1 to go on, else the exit code (--help: 0). */
static int parse_args(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "redis", required_argument, NULL, 'r' },
		{ "password-file", required_argument, NULL, 'P' },
		{ "map", required_argument, NULL, 'm' },
		{ "mode", required_argument, NULL, 'M' },
		{ "max-ttl", required_argument, NULL, 't' },
		{ "ping-ms", required_argument, NULL, 'p' },
		{ "stale-ms", required_argument, NULL, 's' },
		{ "foreground", no_argument, NULL, 'f' },
		{ "pidfile", required_argument, NULL, 'i' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int o, rc;
	uint64_t v;

	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (o) {
		case 'r':
			if (strncmp(optarg, "unix:", 5) != 0 &&
			    !(strncmp(optarg, "tcp:", 4) == 0 && strrchr(optarg + 4, ':')) &&
			    !(strncmp(optarg, "sentinel:", 9) == 0 && strchr(optarg + 9, ':') &&
			      strrchr(optarg, '/') && strrchr(optarg, '/')[1]))
				return usage_error("--redis '%s': expected unix:PATH, tcp:HOST:PORT or "
						   "sentinel:HOST:PORT[,HOST:PORT...]/MASTER", optarg);
			if (strlen(optarg) >= sizeof(g.addr))
				return usage_error("--redis '%s': too long", optarg);
			g.redis = optarg;
			snprintf(g.addr, sizeof(g.addr), "%s", optarg);
			break;
		case 'P':
			if ((rc = read_password(optarg)))
				return rc;
			break;
		case 'm':
			if ((rc = add_map(optarg)))
				return rc;
			break;
		case 'M':
			if (strcmp(optarg, "mirror") == 0)
				g.mirror = true;
			else if (strcmp(optarg, "invalidate") == 0)
				g.mirror = false;
			else
				return usage_error("--mode '%s': expected invalidate or mirror", optarg);
			break;
		case 't':
			if (!parse_u64(optarg, &v) || v == 0 || v > TC_TTL_MAX / 1000)
				return usage_error("--max-ttl '%s': expected seconds, 1 or more", optarg);
			g.max_ttl_ms = v * 1000;
			break;
		case 'p':
			if (!parse_u64(optarg, &v) || v < 5 || v > 60000)
				return usage_error("--ping-ms '%s': expected 5..60000", optarg);
			g.ping_ms = v;
			break;
		case 's':
			if (!parse_u64(optarg, &v) || v > 3600000)
				return usage_error("--stale-ms '%s': expected 0..3600000", optarg);
			g.stale_ms = v;
			break;
		case 'f':
			g.foreground = true;
			break;
		case 'i':
			g.pidfile = optarg;
			break;
		case 'q':
			g.quiet = true;
			break;
		case 'h':
			fputs(usage_text, stdout);
#ifdef TC_HAVE_HIREDIS
			puts("Redis client: hiredis");
#else
			puts("Redis client: none (built without hiredis: it cannot run)");
#endif
			return 0;
		default:
			return usage_error("unknown option");
		}
	}
	if (optind < argc)
		return usage_error("unexpected argument '%s'", argv[optind]);
	if (!g.redis)
		return usage_error("--redis is required");
	if (g.nmaps == 0)
		return usage_error("at least one --map is required");
	if (!g.stale_ms)
		g.stale_ms = g.ping_ms * 10 < 1000 ? 1000 : g.ping_ms * 10;
	return -1;
}

int main(int argc, char **argv)
{
	int rc;

	tool_name = "shm-bridge";
	rc = parse_args(argc, argv);
	if (rc >= 0)
		return rc;
	struct sigaction sa = { .sa_handler = on_term };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (!g.foreground && daemon(0, 1) != 0) {
		fprintf(stderr, "shm-bridge: daemon: %s\n", strerror(errno));
		return EX_TC_SEGMENT;
	}
	if (g.pidfile) {
		FILE *f = fopen(g.pidfile, "w");
		if (!f) {
			fprintf(stderr, "shm-bridge: --pidfile %s: %s\n", g.pidfile, strerror(errno));
			return EX_TC_USAGE;
		}
		fprintf(f, "%d\n", (int)getpid());
		fclose(f);
	}
	rc = run();
	for (int i = 0; i < g.nsegs; i++)
		tc_close(g.segs[i].c);
	for (int i = 0; i < g.nmaps; i++)
		free(g.maps[i].prefix);
	free(g.password);
	if (g.pidfile)
		unlink(g.pidfile);
	return rc;
}
