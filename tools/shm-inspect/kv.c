/* SPDX-License-Identifier: MIT */
/*
 * kv.c - the commands on one key or a few: get, set, del, mget, incr,
 * expire, exists, ttl NAME KEY.
 */
#include "inspect.h"

int cmd_get(const char *name, const char *key, enum vmode mode)
{
	tc_cache *c;
	tc_meta m;
	unsigned char *buf = NULL;
	size_t cap = TC_VALUE_MAX;
	int rc, ex;

	if ((ex = check_key(key)))
		return ex;
	if ((ex = open_seg(name, &c)))
		return ex;
	buf = malloc(cap + 1);
	if (!buf) {
		ex = fail(-ENOMEM, "get");
		goto out;
	}
	rc = tc_get(c, key, strlen(key), buf, cap, &m);
	if (rc == -ENOENT) {
		ex = fail(rc, "key '%s' not found in '%s'", key, name);
		goto out;
	}
	if (rc) {
		ex = fail(rc, "cannot get '%s' from '%s'", key, name);
		goto out;
	}
	if (mode == V_RAW) {
		fwrite(buf, 1, m.len, stdout);
		goto out;
	}
	{
		bool counter = mode != V_HEX && m.type == TC_TYPE_COUNTER && m.len == 8;
		bool text = mode == V_AUTO && !counter && utf8_text(buf, m.len);
		int64_t left = ttl_left(m.expires_ms);

		if (g_json) {
			jobj(NULL);
			jstr("key", key);
			ju64("len", m.len);
			ju64("type", m.type);
			ju64("version", m.version);
			ji64("expires_ms", m.expires_ms);
			if (left < 0)
				jnull("ttl_ms");
			else
				ji64("ttl_ms", left);
			jvalue(buf, &m, mode == V_HEX);
			jobj_end();
		} else if (counter) {
			printf("%" PRId64 "\n", counter_value(buf));
		} else if (text) {
			fwrite(buf, 1, m.len, stdout);
			putchar('\n');
		} else {
			print_hex(stdout, buf, m.len);
			putchar('\n');
		}
	}
out:
	free(buf);
	tc_close(c);
	return ex;
}

/*
 * read_value_file - the whole of PATH ("-" = stdin) into a malloc'd buffer,
 * at most TC_VALUE_MAX bytes (one more is read to tell a longer file).
 */
static int read_value_file(const char *path, unsigned char **out, size_t *len)
{
	FILE *f = strcmp(path, "-") ? fopen(path, "rbe") : stdin;
	unsigned char *b;
	size_t n = 0;

	if (!f)
		return -errno;
	b = malloc(TC_VALUE_MAX + 1);
	if (!b) {
		if (f != stdin)
			fclose(f);
		return -ENOMEM;
	}
	while (n <= TC_VALUE_MAX) {
		size_t k = fread(b + n, 1, TC_VALUE_MAX + 1 - n, f);

		if (!k)
			break;
		n += k;
	}
	if (ferror(f)) {
		int e = errno ? -errno : -EIO;

		free(b);
		if (f != stdin)
			fclose(f);
		return e;
	}
	if (f != stdin)
		fclose(f);
	if (n > TC_VALUE_MAX) {
		free(b);
		return -EMSGSIZE;
	}
	*out = b;
	*len = n;
	return 0;
}

int cmd_set(const char *name, const char *key, const char *val, const char *file,
	    bool hex, uint64_t ttl, uint32_t type)
{
	tc_cache *c;
	unsigned char *bin = NULL;
	const void *v = val;
	size_t vlen = 0;
	int rc, ex;

	if ((ex = check_key(key)))
		return ex;
	if (!!val == !!file)
		return usage_error("set: give either VALUE or --file FILE ('-' reads stdin)");
	if (file) {
		if (hex)
			return usage_error("set: --hex applies to VALUE, not to --file");
		rc = read_value_file(file, &bin, &vlen);
		if (rc == -EMSGSIZE)
			return usage_error("set: %s holds more than %u bytes (TC_VALUE_MAX)",
					   strcmp(file, "-") ? file : "stdin", TC_VALUE_MAX);
		if (rc)
			return fail(rc, "cannot read %s", strcmp(file, "-") ? file : "stdin");
		v = bin;
	} else if (hex) {
		if (!parse_hex(val, &bin, &vlen))
			return usage_error("value '%s' is not even-length hex", val);
		v = bin;
	} else {
		vlen = strlen(val);
	}
	if (vlen > TC_VALUE_MAX) {
		free(bin);
		return usage_error("value of %zu bytes exceeds %u", vlen, TC_VALUE_MAX);
	}
	if ((ex = open_seg(name, &c))) {
		free(bin);
		return ex;
	}
	rc = tc_set(c, key, strlen(key), v, vlen, type, ttl);
	if (rc) {
		ex = fail(rc, "cannot set '%s' in '%s'", key, name);
	} else if (g_json) {
		jobj(NULL);
		jbool("ok", true);
		jstr("key", key);
		ju64("len", vlen);
		jobj_end();
	} else {
		printf("OK\n");
	}
	free(bin);
	tc_close(c);
	return ex;
}

/*
 * cmd_mget - the values of KEYS in order; a missing key is null / "(nil)".
 * One tc_peek_many in a read section, the values copied out before it ends:
 * nothing is printed (which may block on a pipe) while the section holds
 * reclamation back.
 */
int cmd_mget(const char *name, const char *const *keys, int nkeys)
{
	tc_cache *c;
	tc_req *r = NULL;
	const void **vals = NULL;
	unsigned char *copy = NULL;
	size_t total = 0, off = 0;
	int ex, rc;

	for (int i = 0; i < nkeys; i++)
		if ((ex = check_key(keys[i])))
			return ex;
	if ((ex = open_seg(name, &c)))
		return ex;
	r = calloc((size_t)nkeys, sizeof(*r));
	vals = calloc((size_t)nkeys, sizeof(*vals));
	if (!r || !vals) {
		ex = fail(-ENOMEM, "mget");
		goto out;
	}
	for (int i = 0; i < nkeys; i++)
		r[i] = (tc_req){ .key = keys[i], .klen = strlen(keys[i]) };
	if ((rc = tc_read_lock(c)) != 0) {
		ex = fail(rc, "cannot read '%s'", name);
		goto out;
	}
	rc = tc_peek_many(c, r, (size_t)nkeys, vals);
	for (int i = 0; rc >= 0 && i < nkeys; i++)
		total += r[i].rc == 0 ? r[i].meta.len : 0;
	if (rc >= 0 && !(copy = malloc(total ? total : 1)))
		rc = -ENOMEM;
	for (int i = 0; rc >= 0 && i < nkeys; i++) {
		if (r[i].rc != 0)
			continue;
		memcpy(copy + off, vals[i], r[i].meta.len);
		vals[i] = copy + off;
		off += r[i].meta.len;
	}
	tc_read_unlock(c);
	if (rc < 0) {
		ex = fail(rc, "cannot get keys from '%s'", name);
		goto out;
	}
	if (g_json)
		jarr(NULL);
	for (int i = 0; i < nkeys; i++) {
		const unsigned char *buf = vals[i];
		tc_meta *m = &r[i].meta;

		rc = r[i].rc;
		if (rc && rc != -ENOENT) {
			/* The list stops there; the error document follows on a line of its own. */
			if (g_json)
				putchar('\n');
			ex = fail(rc, "cannot get '%s' from '%s'", keys[i], name);
			goto out;
		}
		if (g_json) {
			jobj(NULL);
			jstr("key", keys[i]);
			jbool("found", rc == 0);
			if (rc) {
				jnull("encoding");
				jnull("value");
			} else {
				jvalue(buf, m, false);
			}
			jobj_end();
		} else if (rc) {
			printf("(nil)\n");
		} else if (m->type == TC_TYPE_COUNTER && m->len == 8) {
			printf("%" PRId64 "\n", counter_value(buf));
		} else if (utf8_text(buf, m->len)) {
			fwrite(buf, 1, m->len, stdout);
			putchar('\n');
		} else {
			print_hex(stdout, buf, m->len);
			putchar('\n');
		}
	}
	if (g_json)
		jarr_end();
out:
	free(copy);
	free(vals);
	free(r);
	tc_close(c);
	return ex;
}

/* cmd_incr - add DELTA (default 1) to the counter KEY, print the new value. */
int cmd_incr(const char *name, const char *key, const char *delta_arg, uint64_t ttl)
{
	tc_cache *c;
	long long delta = 1;
	int64_t v = 0;
	char *end;
	int rc, ex;

	if ((ex = check_key(key)))
		return ex;
	if (delta_arg) {
		errno = 0;
		delta = strtoll(delta_arg, &end, 10);
		if (errno || *end || !*delta_arg)
			return usage_error("incr: DELTA wants a 64-bit integer, not '%s' (a negative "
					   "one after '--')", delta_arg);
	}
	if ((ex = open_seg(name, &c)))
		return ex;
	rc = tc_incr(c, key, strlen(key), (int64_t)delta, ttl, &v);
	if (rc == TC_ETYPE)
		ex = fail(rc, "'%s' in '%s' is not a counter (an 8-byte value of type %u)", key, name,
			  TC_TYPE_COUNTER);
	else if (rc)
		ex = fail(rc, "cannot increment '%s' in '%s'", key, name);
	else if (g_json) {
		jobj(NULL);
		jstr("key", key);
		ji64("value", v);
		jobj_end();
	} else {
		printf("%" PRId64 "\n", v);
	}
	tc_close(c);
	return ex;
}

/* cmd_expire - give KEY a new TTL (0 removes its expiry). */
int cmd_expire(const char *name, const char *key, const char *ttl_arg)
{
	tc_cache *c;
	uint64_t ms;
	int rc, ex;

	if ((ex = check_key(key)))
		return ex;
	if (!parse_ms(ttl_arg, &ms))
		return usage_error("expire: TTL wants a duration (ms, or s/m/h suffixes) of at most "
				   "100 years, not '%s'", ttl_arg);
	if ((ex = open_seg(name, &c)))
		return ex;
	rc = tc_expire(c, key, strlen(key), ms);
	if (rc == -ENOENT)
		ex = fail(rc, "key '%s' not found in '%s'", key, name);
	else if (rc)
		ex = fail(rc, "cannot change the TTL of '%s' in '%s'", key, name);
	else if (g_json) {
		jobj(NULL);
		jbool("ok", true);
		jstr("key", key);
		if (ms)
			ju64("ttl_ms", ms);
		else
			jnull("ttl_ms");
		jobj_end();
	} else {
		printf("OK\n");
	}
	tc_close(c);
	return ex;
}

/* cmd_exists - exit 0 when KEY holds a live value, 1 when not. */
int cmd_exists(const char *name, const char *key)
{
	tc_cache *c;
	bool yes;
	int ex;

	if ((ex = check_key(key)))
		return ex;
	if ((ex = open_seg(name, &c)))
		return ex;
	yes = tc_exists(c, key, strlen(key));
	if (g_json) {
		jobj(NULL);
		jstr("key", key);
		jbool("exists", yes);
		jobj_end();
	} else {
		printf("%d\n", yes ? 1 : 0);
	}
	tc_close(c);
	return yes ? 0 : EX_TC_NOTFOUND;
}

/*
 * cmd_key_ttl - the remaining TTL of KEY in ms: -1 when it never expires
 * (Redis's TTL convention); exit 1 when the key is missing.
 */
int cmd_key_ttl(const char *name, const char *key)
{
	tc_cache *c;
	tc_meta m;
	char one;
	int rc, ex;

	if ((ex = check_key(key)))
		return ex;
	if ((ex = open_seg(name, &c)))
		return ex;
	/* A zero-byte buffer: only the meta data is wanted (-E2BIG brings it too). */
	rc = tc_get(c, key, strlen(key), &one, 0, &m);
	if (rc == -E2BIG)
		rc = 0;
	if (rc == -ENOENT) {
		ex = fail(rc, "key '%s' not found in '%s'", key, name);
	} else if (rc) {
		ex = fail(rc, "cannot read '%s' in '%s'", key, name);
	} else {
		int64_t left = ttl_left(m.expires_ms);

		if (g_json) {
			jobj(NULL);
			jstr("key", key);
			if (left < 0)
				jnull("ttl_ms");
			else
				ji64("ttl_ms", left);
			ji64("expires_ms", m.expires_ms);
			jobj_end();
		} else {
			printf("%" PRId64 "\n", left);
		}
	}
	tc_close(c);
	return ex;
}

int cmd_del(const char *name, const char *key)
{
	tc_cache *c;
	int rc, ex;

	if ((ex = check_key(key)))
		return ex;
	if ((ex = open_seg(name, &c)))
		return ex;
	rc = tc_del(c, key, strlen(key));
	if (rc == -ENOENT)
		ex = fail(rc, "key '%s' not found in '%s'", key, name);
	else if (rc)
		ex = fail(rc, "cannot delete '%s' from '%s'", key, name);
	else if (g_json) {
		jobj(NULL);
		ju64("deleted", 1);
		jobj_end();
	} else {
		printf("deleted 1\n");
	}
	tc_close(c);
	return ex;
}
