/* SPDX-License-Identifier: MIT */
/*
 * keys.c - the commands that walk the keys: keys, prefixes, purge.
 */
#include "inspect.h"

int collect_key(const void *key, size_t klen, const tc_meta *meta, void *arg)
{
	struct keyset *ks = arg;

	if (ks->n == ks->cap) {
		size_t ncap = ks->cap ? ks->cap * 2 : 256;
		struct keyrec *nv = realloc(ks->v, ncap * sizeof *nv);

		if (!nv) {
			ks->oom = true;
			return 1;
		}
		ks->v = nv;
		ks->cap = ncap;
	}
	ks->v[ks->n].key = malloc(klen ? klen : 1);
	if (!ks->v[ks->n].key) {
		ks->oom = true;
		return 1;
	}
	memcpy(ks->v[ks->n].key, key, klen);
	ks->v[ks->n].klen = klen;
	ks->v[ks->n].meta = *meta;
	ks->n++;
	return ks->limit && ks->n >= ks->limit ? 1 : 0;
}

int keyrec_cmp(const void *a, const void *b)
{
	const struct keyrec *x = a, *y = b;
	size_t m = x->klen < y->klen ? x->klen : y->klen;
	int d = memcmp(x->key, y->key, m);

	return d ? d : (x->klen > y->klen) - (x->klen < y->klen);
}

void keyset_free(struct keyset *ks)
{
	for (size_t i = 0; i < ks->n; i++)
		free(ks->v[i].key);
	free(ks->v);
}


/*
 * cmd_keys - the live keys matching GLOB, sorted bytewise.  All matching
 * keys are collected and sorted before --limit cuts the list, so the first
 * LIMIT keys in order are shown, and a note on stderr says how many more
 * there are.  With VALUES each key's value is read too (a key deleted
 * meanwhile shows no value).
 */
int cmd_keys(const char *name, const char *glob, uint64_t limit, bool values)
{
	tc_cache *c;
	struct keyset ks = { .limit = 0 };
	unsigned char *vbuf = NULL;
	size_t shown;
	int rc, ex = open_seg(name, &c);

	if (ex)
		return ex;
	if (values && !(vbuf = malloc(TC_VALUE_MAX + 1))) {
		ex = fail(-ENOMEM, "keys of '%s'", name);
		goto out;
	}
	rc = tc_scan(c, glob ? glob : "*", collect_key, &ks);
	if (ks.oom) {
		ex = fail(-ENOMEM, "keys of '%s'", name);
		goto out;
	}
	if (rc < 0) {
		ex = fail(rc, "cannot scan segment '%s'", name);
		goto out;
	}
	if (ks.n)
		qsort(ks.v, ks.n, sizeof *ks.v, keyrec_cmp);
	shown = limit && limit < ks.n ? (size_t)limit : ks.n;
	if (g_json)
		jarr(NULL);
	else if (values)
		printf("%-40s %8s %10s %10s  %s\n", "KEY", "LEN", "TYPE", "TTL", "VALUE");
	else
		printf("%-40s %8s %10s %12s %10s\n", "KEY", "LEN", "TYPE", "VERSION", "TTL");
	for (size_t i = 0; i < shown; i++) {
		tc_meta *m = &ks.v[i].meta;
		int vrc = 0;
		int64_t left;
		char ttl[32];
		int w;

		if (values) {
			vrc = tc_get(c, ks.v[i].key, ks.v[i].klen, vbuf, TC_VALUE_MAX, m);
			if (vrc && vrc != -ENOENT) {
				/* The list stops there; the error document follows on a line of its own. */
				if (g_json)
					putchar('\n');
				ex = fail(vrc, "cannot read a value of '%s'", name);
				goto out;
			}
		}
		left = ttl_left(m->expires_ms);
		if (g_json) {
			jobj(NULL);
			jbytes("key", ks.v[i].key, ks.v[i].klen);
			jkey_hex(ks.v[i].key, ks.v[i].klen);
			ju64("len", m->len);
			ju64("type", m->type);
			ju64("version", m->version);
			ji64("expires_ms", m->expires_ms);
			if (left < 0)
				jnull("ttl_ms");
			else
				ji64("ttl_ms", left);
			if (values && vrc) {
				jnull("encoding");
				jnull("value");
			} else if (values) {
				jvalue(vbuf, m, false);
			}
			jobj_end();
			continue;
		}
		if (left < 0)
			snprintf(ttl, sizeof ttl, "-");
		else
			fmt_duration(ttl, sizeof ttl, (uint64_t)left);
		w = print_key(stdout, ks.v[i].key, ks.v[i].klen);
		if (!values) {
			printf("%*s %8zu %10" PRIu32 " %12" PRIu64 " %10s\n", w < 40 ? 40 - w : 0, "",
			       m->len, m->type, m->version, ttl);
			continue;
		}
		printf("%*s %8zu %10" PRIu32 " %10s  ", w < 40 ? 40 - w : 0, "", m->len, m->type, ttl);
		if (vrc)
			printf("(deleted meanwhile)");
		else if (m->type == TC_TYPE_COUNTER && m->len == 8)
			printf("%" PRId64, counter_value(vbuf));
		else if (utf8_text(vbuf, m->len))
			print_key(stdout, vbuf, m->len > 200 ? 200 : m->len);
		else
			print_hex(stdout, vbuf, m->len > 100 ? 100 : m->len);
		if ((m->len > 200 || (!utf8_text(vbuf, m->len) && m->len > 100)) && !vrc)
			printf("...");
		putchar('\n');
	}
	if (g_json)
		jarr_end();
	if (shown < ks.n)
		fprintf(stderr, "%s: %zu of %zu matching keys shown (--limit %" PRIu64 "); %zu more\n",
			prog, shown, ks.n, limit, ks.n - shown);
out:
	free(vbuf);
	keyset_free(&ks);
	tc_close(c);
	return ex;
}

struct prefix {
	unsigned char *p;
	size_t len;
	uint64_t keys;
	uint64_t bytes;   /* key + value bytes */
};

struct prefixes {
	struct prefix *v;
	size_t n, cap;
	unsigned depth;
	bool oom;
};

/* The prefix of KEY: up to and including its DEPTH-th ':', or its last ':'
 * when it has fewer, or "" when it has none. */
static size_t prefix_len(const unsigned char *key, size_t klen, unsigned depth)
{
	size_t last = 0;
	unsigned seen = 0;

	for (size_t i = 0; i < klen; i++) {
		if (key[i] != ':')
			continue;
		last = i + 1;
		if (++seen == depth)
			break;
	}
	return last;
}

static int add_prefix(const void *key, size_t klen, const tc_meta *meta, void *arg)
{
	struct prefixes *px = arg;
	size_t pl = prefix_len(key, klen, px->depth);
	size_t i;

	/* Linear search: prefixes are few (that is the point of grouping). */
	for (i = 0; i < px->n; i++)
		if (px->v[i].len == pl && !memcmp(px->v[i].p, key, pl))
			break;
	if (i == px->n) {
		if (px->n == px->cap) {
			size_t ncap = px->cap ? px->cap * 2 : 64;
			struct prefix *nv = realloc(px->v, ncap * sizeof *nv);

			if (!nv) {
				px->oom = true;
				return 1;
			}
			px->v = nv;
			px->cap = ncap;
		}
		px->v[i].p = malloc(pl ? pl : 1);
		if (!px->v[i].p) {
			px->oom = true;
			return 1;
		}
		memcpy(px->v[i].p, key, pl);
		px->v[i].len = pl;
		px->v[i].keys = 0;
		px->v[i].bytes = 0;
		px->n++;
	}
	px->v[i].keys++;
	px->v[i].bytes += klen + meta->len;
	return 0;
}

static int prefix_cmp(const void *a, const void *b)
{
	const struct prefix *x = a, *y = b;
	size_t m = x->len < y->len ? x->len : y->len;
	int d;

	if (x->bytes != y->bytes)
		return x->bytes < y->bytes ? 1 : -1;
	d = memcmp(x->p, y->p, m);
	return d ? d : (x->len > y->len) - (x->len < y->len);
}

/*
 * cmd_prefixes - key counts and key + value bytes by key prefix (the key
 * up to its DEPTH-th ':'), largest first.  Bytes are the payload; the
 * arena rounds each entry up to its size class and adds a header.
 */
int cmd_prefixes(const char *name, const char *glob, unsigned depth)
{
	tc_cache *c;
	struct prefixes px = { .depth = depth };
	uint64_t keys = 0, bytes = 0;
	int rc, ex = open_seg(name, &c);

	if (ex)
		return ex;
	rc = tc_scan(c, glob ? glob : "*", add_prefix, &px);
	if (px.oom) {
		ex = fail(-ENOMEM, "prefixes of '%s'", name);
		goto out;
	}
	if (rc < 0) {
		ex = fail(rc, "cannot scan segment '%s'", name);
		goto out;
	}
	if (px.n)
		qsort(px.v, px.n, sizeof *px.v, prefix_cmp);
	for (size_t i = 0; i < px.n; i++) {
		keys += px.v[i].keys;
		bytes += px.v[i].bytes;
	}
	if (g_json) {
		jobj(NULL);
		ju64("depth", depth);
		ju64("keys", keys);
		ju64("bytes", bytes);
		jarr("prefixes");
		for (size_t i = 0; i < px.n; i++) {
			jobj(NULL);
			jbytes("prefix", px.v[i].p, px.v[i].len);
			ju64("keys", px.v[i].keys);
			ju64("bytes", px.v[i].bytes);
			jobj_end();
		}
		jarr_end();
		jobj_end();
	} else {
		char b1[32];

		printf("%-40s %10s %10s %6s\n", "PREFIX", "KEYS", "BYTES", "SHARE");
		for (size_t i = 0; i < px.n; i++) {
			int w = px.v[i].len ? print_key(stdout, px.v[i].p, px.v[i].len)
					    : printf("(none)");

			printf("%*s %10" PRIu64 " %10s %5.1f%%\n", w < 40 ? 40 - w : 0, "", px.v[i].keys,
			       fmt_size(b1, sizeof b1, px.v[i].bytes),
			       bytes ? 100.0 * (double)px.v[i].bytes / (double)bytes : 0.0);
		}
		printf("%-40s %10" PRIu64 " %10s  (key + value bytes)\n", "(total)", keys,
		       fmt_size(b1, sizeof b1, bytes));
	}
out:
	for (size_t i = 0; i < px.n; i++)
		free(px.v[i].p);
	free(px.v);
	tc_close(c);
	return ex;
}


int cmd_purge(const char *name, const char *glob, bool expired, bool all)
{
	tc_cache *c;
	uint64_t deleted = 0;
	int rc, ex;

	if (!!glob + expired + all != 1)
		return usage_error("purge needs exactly one of GLOB, --expired, --all");
	if ((ex = open_seg(name, &c)))
		return ex;
	if (expired) {
		tc_sweep_report rep;

		memset(&rep, 0, sizeof rep);
		rc = tc_sweep(c, 0, &rep);
		deleted = rep.expired;
	} else {
		rc = tc_purge(c, all ? "*" : glob, &deleted);
	}
	if (rc)
		ex = fail(rc, "cannot purge '%s'", name);
	else if (g_json) {
		jobj(NULL);
		ju64("deleted", deleted);
		jobj_end();
	} else {
		printf("deleted %" PRIu64 "\n", deleted);
	}
	tc_close(c);
	return ex;
}
