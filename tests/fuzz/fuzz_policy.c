/* SPDX-License-Identifier: MIT */
/*
 * fuzz_policy.c - libFuzzer harness: the TTL policy file parser
 * (tc_ttl_policy_load_ex).
 *
 * The input is the file.  After the load the harness checks it against
 * its own reading of the format of include/tickcache.h: a file the
 * reference reading accepts loads (or fails with -ENOSPC for more than
 * TC_POLICY_MAX_ENTRIES distinct prefixes), a file it rejects gives
 * -EINVAL and the number of its first bad line, nothing of a rejected file
 * is applied, and after a load the table holds exactly the prefixes and
 * TTLs of the file (a later line wins).  Then every policy is removed.
 */
#include <ctype.h>

#include "fuzz_common.h"

static char seg_name[TC_NAME_MAX + 1];
static char path[256];
static tc_cache *c;

static void at_exit(void)
{
	if (c)
		tc_close(c);
	tc_unlink(seg_name);
	unlink(path);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	snprintf(seg_name, sizeof(seg_name), "fzpol%d", (int)getpid());
	snprintf(path, sizeof(path), "%s/tcfuzz-%d.policy", fz_tmpdir(), (int)getpid());
	atexit(at_exit);
	tc_unlink(seg_name);
	tc_opts o = { .max_entries = 64, .memory_bytes = 64 * 1024, .max_readers = 2,
		      .flags = TC_CREATE | TC_EXCL };
	int rc = tc_open(&c, seg_name, &o);
	if (rc) {
		fprintf(stderr, "fuzz_policy: tc_open: %s\n", tc_strerror(rc));
		exit(2);
	}
	return 0;
}

/* ---- the reference reading ------------------------------------------------- */

struct ref {
	uint32_t n;
	struct { char p[TC_POLICY_PREFIX_MAX + 1]; uint64_t ttl; } v[TC_POLICY_MAX_ENTRIES + 1];
	bool overflow;
};

static bool blank(int ch)
{
	return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\v' || ch == '\f';
}

/* 1 = a policy, 0 = nothing, -1 = a bad line.  [s, e) excludes the '\n'. */
static int ref_line(const uint8_t *s, const uint8_t *e, struct ref *r)
{
	if (memchr(s, 0, (size_t)(e - s)))
		return -1;
	while (e > s && blank(e[-1]))
		e--;
	while (s < e && blank(*s))
		s++;
	if (s == e || *s == '#')
		return 0;
	const uint8_t *eq = memchr(s, '=', (size_t)(e - s));
	if (!eq)
		return -1;
	const uint8_t *pe = eq;
	while (pe > s && blank(pe[-1]))
		pe--;
	size_t len = (size_t)(pe - s);
	if (len == 0 || len > TC_POLICY_PREFIX_MAX)
		return -1;
	const uint8_t *v = eq + 1;
	while (v < e && blank(*v))
		v++;
	if (v == e || !isdigit(*v))
		return -1;
	uint64_t ttl = 0;
	for (; v < e && isdigit(*v); v++) {
		uint64_t d = (uint64_t)(*v - '0');
		if (ttl > (TC_TTL_MAX - d) / 10)
			return -1;
		ttl = ttl * 10 + d;
	}
	while (v < e && blank(*v))
		v++;
	if (v != e && *v != '#')
		return -1;
	char p[TC_POLICY_PREFIX_MAX + 1];
	memcpy(p, s, len);
	p[len] = '\0';
	for (uint32_t i = 0; i < r->n; i++) {
		if (strcmp(r->v[i].p, p) == 0) {
			r->v[i].ttl = ttl;
			return 1;
		}
	}
	if (r->n == TC_POLICY_MAX_ENTRIES) {
		r->overflow = true;
		return 1;
	}
	memcpy(r->v[r->n].p, p, len + 1);
	r->v[r->n++].ttl = ttl;
	return 1;
}

/* 0, or the 1-based number of the first bad line. */
static unsigned ref_file(const uint8_t *d, size_t n, struct ref *r)
{
	unsigned line = 0;
	size_t i = 0;
	while (i < n) {
		const uint8_t *nl = memchr(d + i, '\n', n - i);
		size_t end = nl ? (size_t)(nl - d) : n;
		line++;
		if (ref_line(d + i, d + end, r) < 0)
			return line;
		i = nl ? end + 1 : n;
	}
	return 0;
}

/* ---- the harness ------------------------------------------------------------- */

struct seen {
	struct ref *want;
	uint32_t n;
};

static int check_fn(const char *prefix, uint64_t ttl, void *arg)
{
	struct seen *s = arg;
	s->n++;
	for (uint32_t i = 0; i < s->want->n; i++)
		if (strcmp(s->want->v[i].p, prefix) == 0) {
			if (s->want->v[i].ttl != ttl)
				fz_fail("policy '%s': ttl %llu, the file says %llu", prefix,
					(unsigned long long)ttl,
					(unsigned long long)s->want->v[i].ttl);
			return 0;
		}
	fz_fail("policy '%s' is not in the file", prefix);
}

static int collect_fn(const char *prefix, uint64_t ttl, void *arg)
{
	(void)ttl;
	struct ref *r = arg;
	if (r->n < TC_POLICY_MAX_ENTRIES + 1)
		snprintf(r->v[r->n++].p, sizeof(r->v[0].p), "%s", prefix);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 64 * 1024)
		return 0;
	if (fz_write_file(path, data, size)) {
		fprintf(stderr, "fuzz_policy: cannot write %s\n", path);
		exit(2);
	}
	static struct ref want;
	memset(&want, 0, sizeof(want));
	unsigned ref_bad = ref_file(data, size, &want);
	unsigned bad = 12345;
	int rc = fz_rc(tc_ttl_policy_load_ex(c, path, &bad));
	if (ref_bad) {
		if (rc != -EINVAL || bad != ref_bad)
			fz_fail("bad line %u: the load returned %d, bad line %u", ref_bad, rc, bad);
	} else if (want.overflow) {
		if (rc != -ENOSPC || bad != 0)
			fz_fail("%u+ prefixes: the load returned %d, bad line %u",
				TC_POLICY_MAX_ENTRIES + 1, rc, bad);
	} else if (rc != 0 || bad != 0) {
		fz_fail("a good file: the load returned %d, bad line %u", rc, bad);
	}
	struct seen s = { .want = &want };
	if (rc != 0)
		want.n = 0; /* nothing of the file may be applied */
	fz_rc(tc_ttl_policy_list(c, check_fn, &s));
	if (s.n != want.n)
		fz_fail("%u policies in the table, %u in the file", s.n, want.n);
	/* Reset: remove every policy. */
	static struct ref all;
	memset(&all, 0, sizeof(all));
	fz_rc(tc_ttl_policy_list(c, collect_fn, &all));
	for (uint32_t i = 0; i < all.n; i++)
		if (fz_rc(tc_ttl_policy_del(c, all.v[i].p)) != 0)
			fz_fail("tc_ttl_policy_del('%s') failed", all.v[i].p);
	return 0;
}
