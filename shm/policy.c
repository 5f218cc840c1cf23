/* SPDX-License-Identifier: MIT */
/*
 * policy.c - TTL policies by key prefix (README.md, "TTL policies by key
 * prefix").
 *
 * The table is one immutable block of kind TC_KIND_POLICY: up to
 * TC_POLICY_MAX_ENTRIES records (ttl, prefix).  tc_hdr.policy_gen =
 * generation << 32 | block ref names it; ref 0 means no policy.  A change
 * copies the table, edits the copy, and publishes it with one CAS of
 * policy_gen (full barrier: the block's bytes before the word), then
 * retires the old block.  So a change is seen at once by every process,
 * a whole file loads atomically (a reader sees all of it or none), and a
 * writer killed at any point leaves the old table or the new one: no
 * lock, no half-written entry (a per-entry seqlock would leave an
 * entry unusable behind a writer killed inside its odd phase).
 *
 * Readers (tc__policy_ttl, on every write with TC_TTL_DEFAULT): when no
 * table exists one load of policy_gen and nothing else, so TC_TTL_DEFAULT
 * costs nothing then.  Otherwise a read section (nested inside the
 * writer's if any), the word, then the block: retired blocks outlive the
 * section.  The longest matching prefix wins, computed over the whole
 * table rather than trusting its order.
 *
 * The generation half of the word makes each publication unique, so a
 * writer's CAS cannot succeed against a table that was replaced and
 * replaced back (no ABA), and lets tools tell that the table changed.
 */
#include "index.h"
#include "room.h"

#include <stdio.h>
#include <stdlib.h>

#define POL_REF(w) ((w) & 0xffffffffu)
#define POL_GEN(w) ((w) >> 32)

struct table {
	uint32_t n;
	struct tc_policy_rec p[TC_POLICY_MAX_ENTRIES];
};

/*
 * Copy the published table named by W into T, inside a read section.
 * 0 or TC_ECORRUPT.
 */
static int load_table(tc_cache *c, uint64_t w, struct table *t)
{
	t->n = 0;
	if (!POL_REF(w))
		return 0;
	uint32_t vlen;
	struct tc_entry *e = tc__block_of(c, POL_REF(w), TC_KIND_POLICY, &vlen);
	if (!e || vlen % sizeof(struct tc_policy_rec) || vlen / sizeof(struct tc_policy_rec) > TC_POLICY_MAX_ENTRIES)
		return TC_ECORRUPT;
	t->n = vlen / sizeof(struct tc_policy_rec);
	memcpy(t->p, tc__eval(e, 0), vlen);
	/* A prefix is 1..TC_POLICY_PREFIX_MAX bytes without a NUL (it came
	 * from a C string): anything else was scribbled. */
	for (uint32_t i = 0; i < t->n; i++)
		if (t->p[i].len == 0 || t->p[i].len > TC_POLICY_PREFIX_MAX ||
		    memchr(t->p[i].prefix, '\0', t->p[i].len))
			return TC_ECORRUPT;
	return 0;
}

uint64_t tc__policy_ttl(tc_cache *c, const void *key, size_t klen)
{
	if (TC_LIKELY(POL_REF(tc__ld(&c->h->policy_gen)) == 0))
		return c->default_ttl_ms;
	struct tc_rslot *s;
	if (tc__enter(c, &s))
		return c->default_ttl_ms; /* the write itself will fail the same way */
	uint64_t ttl = c->default_ttl_ms, w = tc__ld(&c->h->policy_gen);
	uint32_t vlen, best = 0;
	struct tc_entry *e = POL_REF(w) ? tc__block_of(c, POL_REF(w), TC_KIND_POLICY, &vlen) : NULL;
	if (e) {
		const struct tc_policy_rec *p = (const struct tc_policy_rec *)tc__eval(e, 0);
		uint32_t n = vlen / sizeof(*p);
		if (n > TC_POLICY_MAX_ENTRIES)
			n = 0;
		for (uint32_t i = 0; i < n; i++) {
			uint32_t len = tc__ld(&p[i].len);
			if (len > best && len <= klen && len <= TC_POLICY_PREFIX_MAX &&
			    memcmp(p[i].prefix, key, len) == 0) {
				best = len;
				ttl = tc__ld(&p[i].ttl_ms);
			}
		}
	}
	tc__exit(c);
	return ttl;
}

/* Prefixes in the table, for tc_get_stats (0 when it cannot be read). */
uint32_t tc__policy_count(tc_cache *c)
{
	uint64_t w = tc__ld(&c->h->policy_gen);
	if (!POL_REF(w))
		return 0;
	struct tc_rslot *s;
	if (tc__enter(c, &s))
		return 0;
	uint32_t vlen, n = 0;
	w = tc__ld(&c->h->policy_gen);
	if (POL_REF(w) && tc__block_of(c, POL_REF(w), TC_KIND_POLICY, &vlen))
		n = vlen / sizeof(struct tc_policy_rec);
	tc__exit(c);
	return n > TC_POLICY_MAX_ENTRIES ? 0 : n;
}

/* ---- writers -------------------------------------------------------------- */

typedef int (*edit_fn)(struct table *t, void *arg);

/* An edit as its caller asked for it, and the table it edits. */
struct edit {
	edit_fn fn;
	void *arg;
	struct table *t;
};

/* One attempt of edit (a tc__attempt_fn): copy the published table, edit
 * it, publish the copy by a CAS on policy_gen. */
static bool edit_once(tc_cache *c, struct tc_rslot *s, struct tc__room *r, void *ctx, int *rc)
{
	struct edit *ed = ctx;
	struct table *t = ed->t;
	uint64_t w = tc__ld(&c->h->policy_gen);
	*rc = load_table(c, w, t);
	if (*rc == 0)
		*rc = ed->fn(t, ed->arg);
	if (*rc) {
		tc__exit(c);
		return true;
	}
	struct tc_entry *e = NULL;
	uint64_t ref = 0, vlen = t->n * sizeof(struct tc_policy_rec);
	if (t->n) {
		bool again;
		e = tc__alloc_or_room(c, s, tc__entry_bytes(0, vlen), r, rc, &again);
		if (!e)
			return !again;
		/* No key: "", as start_once in run.c says why. */
		tc__fill_block(e, &(struct tc__bhdr){ .version = POL_GEN(w) + 1,
						      .vlen = (uint32_t)vlen,
						      .kind = TC_KIND_POLICY },
			       "", t->p);
		ref = tc__ref_of(c, e);
	}
	/* Both blocks are named in the slot across the publishing CAS: the
	 * new one in inflight, the old one in ret_ref.  A cleaner of a dead
	 * writer asks policy_gen which of them is published (recover.c,
	 * still_published) and retires the other: a kill between the CAS and
	 * the retire leaks neither. */
	uint32_t ol;
	struct tc_entry *old = POL_REF(w) ? tc__block_of(c, POL_REF(w), TC_KIND_POLICY, &ol) : NULL;
	if (old)
		tc__note_unlink(s, POL_REF(w), old);
	uint64_t nw = ((POL_GEN(w) + 1) & 0xffffffffu) << 32 | ref;
	TC_CRASH_POINT(policy_built);
	if (tc__cas(&c->h->policy_gen, w, nw) == w) {
		tc__st(&s->inflight, 0);
		TC_CRASH_POINT(policy_swapped);
		if (old)
			tc__retire(c, s, old);
		tc__st(&s->ret_ref, 0);
		tc__count(s, TC_C_SETS);
		tc__exit(c);
		tc__maybe_reclaim(c, s);
		*rc = 0;
		return true;
	}
	tc__st(&s->ret_ref, 0);
	/* Never visible to anyone: freed, then unnamed (a kill between the
	 * two leaves a FREE block in inflight, which the cleaner leaves;
	 * unnamed first, it leaked until tc_audit). */
	if (e)
		tc__drop_private(c, s, e);
	tc__exit(c);
	*rc = -EAGAIN;
	return false;
}

/*
 * Copy, edit with FN, publish.  FN returns 0 to publish its edit or a
 * negative code to give up (nothing changes).  Lock-free: a lost CAS
 * starts over from the newer table.
 */
static int edit(tc_cache *c, edit_fn fn, void *arg)
{
	struct edit ed = { fn, arg, malloc(sizeof(struct table)) };
	if (!ed.t)
		return -ENOMEM;
	struct tc_rslot *s;
	struct tc__room r = { .sweep_runs = false };
	int rc = tc__attempts(c, &r, edit_once, &ed, &s);
	if (s)
		tc__count(s, TC_C_OPS);
	free(ed.t);
	return rc;
}

static int find(const struct table *t, const char *prefix, size_t len)
{
	for (uint32_t i = 0; i < t->n; i++)
		if (t->p[i].len == len && memcmp(t->p[i].prefix, prefix, len) == 0)
			return (int)i;
	return -1;
}

/* Set-or-replace one policy in T. */
static int put(struct table *t, const char *prefix, size_t len, uint64_t ttl_ms)
{
	int i = find(t, prefix, len);
	if (i < 0) {
		if (t->n == TC_POLICY_MAX_ENTRIES)
			return -ENOSPC;
		i = (int)t->n++;
		memset(&t->p[i], 0, sizeof(t->p[i]));
		t->p[i].len = (uint8_t)len;
		memcpy(t->p[i].prefix, prefix, len);
	}
	t->p[i].ttl_ms = ttl_ms;
	return 0;
}

struct one {
	const char *prefix;
	size_t len;
	uint64_t ttl_ms;
};

static int edit_set(struct table *t, void *arg)
{
	struct one *o = arg;
	return put(t, o->prefix, o->len, o->ttl_ms);
}

static int edit_del(struct table *t, void *arg)
{
	struct one *o = arg;
	int i = find(t, o->prefix, o->len);
	if (i < 0)
		return -ENOENT;
	t->p[i] = t->p[--t->n];
	return 0;
}

static int prefix_len(const char *prefix, size_t *len)
{
	if (!prefix)
		return -EINVAL;
	*len = strnlen(prefix, TC_POLICY_PREFIX_MAX + 1);
	return *len == 0 || *len > TC_POLICY_PREFIX_MAX ? -EINVAL : 0;
}

int tc_ttl_policy_set(tc_cache *c, const char *prefix, uint64_t ttl_ms)
{
	struct one o = { prefix, 0, ttl_ms };
	if (!c || prefix_len(prefix, &o.len) || ttl_ms > TC_TTL_MAX)
		return -EINVAL;
	return edit(c, edit_set, &o);
}

int tc_ttl_policy_del(tc_cache *c, const char *prefix)
{
	struct one o = { prefix, 0, 0 };
	if (!c || prefix_len(prefix, &o.len))
		return -EINVAL;
	return edit(c, edit_del, &o);
}

int tc_ttl_policy_list(tc_cache *c, tc_policy_fn fn, void *arg)
{
	if (!c || !fn)
		return -EINVAL;
	struct table *t = malloc(sizeof(*t));
	if (!t)
		return -ENOMEM;
	struct tc_rslot *s;
	int rc = tc__enter(c, &s);
	if (rc == 0) {
		rc = load_table(c, tc__ld(&c->h->policy_gen), t);
		tc__exit(c);
	}
	/* The callbacks run outside the read section, on the copy. */
	for (uint32_t i = 0; rc == 0 && i < t->n; i++) {
		char p[TC_POLICY_PREFIX_MAX + 1];
		memcpy(p, t->p[i].prefix, t->p[i].len);
		p[t->p[i].len] = '\0';
		rc = fn(p, t->p[i].ttl_ms, arg);
	}
	free(t);
	return rc;
}

/* ---- policy files ---------------------------------------------------------- */

struct file_set {
	uint32_t n;
	struct one v[]; /* prefixes point into the parsed lines */
};

static bool is_blank(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\v' || ch == '\f';
}

/*
 * Parse one line: blank, "# comment", or "prefix = ttl_ms [# comment]".
 * The prefix is everything before the first '=', without surrounding
 * blanks; ttl_ms is decimal.  Returns 1 with *o filled, 0 for a line
 * without a policy, -EINVAL for a bad line.  LINE is edited in place.
 */
static int parse_line(char *line, size_t n, struct one *o)
{
	if (memchr(line, '\0', n))
		return -EINVAL;
	while (n && (line[n - 1] == '\n' || is_blank(line[n - 1])))
		line[--n] = '\0';
	char *p = line;
	while (is_blank(*p))
		p++;
	if (*p == '\0' || *p == '#')
		return 0;
	char *eq = strchr(p, '=');
	if (!eq)
		return -EINVAL;
	char *end = eq;
	while (end > p && is_blank(end[-1]))
		end--;
	size_t len = (size_t)(end - p);
	if (len == 0 || len > TC_POLICY_PREFIX_MAX)
		return -EINVAL;
	char *v = eq + 1;
	while (is_blank(*v))
		v++;
	if (*v < '0' || *v > '9')
		return -EINVAL;
	uint64_t ttl = 0;
	for (; *v >= '0' && *v <= '9'; v++) {
		uint64_t d = (uint64_t)(*v - '0');
		if (ttl > (TC_TTL_MAX - d) / 10)
			return -EINVAL; /* over TC_TTL_MAX (TC_TTL_DEFAULT is not a TTL) */
		ttl = ttl * 10 + d;
	}
	while (is_blank(*v))
		v++;
	if (*v != '\0' && *v != '#')
		return -EINVAL;
	*end = '\0';
	o->prefix = p;
	o->len = len;
	o->ttl_ms = ttl;
	return 1;
}

static int edit_file(struct table *t, void *arg)
{
	struct file_set *f = arg;
	for (uint32_t i = 0; i < f->n; i++) {
		int rc = put(t, f->v[i].prefix, f->v[i].len, f->v[i].ttl_ms);
		if (rc)
			return rc;
	}
	return 0;
}

int tc_ttl_policy_load_ex(tc_cache *c, const char *path, unsigned *bad_line)
{
	if (bad_line)
		*bad_line = 0;
	if (!c || !path)
		return -EINVAL;
	FILE *fp = fopen(path, "re");
	if (!fp)
		return -errno;
	/* Parse the whole file before touching the segment. */
	char **lines = NULL;
	struct file_set *f = NULL;
	size_t nlines = 0, cap = 0;
	int rc = 0;
	unsigned lineno = 0;
	for (;;) {
		char *line = NULL;
		size_t lcap = 0;
		ssize_t got = getline(&line, &lcap, fp);
		if (got < 0) {
			free(line);
			if (ferror(fp))
				rc = -EIO;
			break;
		}
		lineno++;
		if (nlines == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			char **nl = realloc(lines, ncap * sizeof(*nl));
			struct file_set *nf = realloc(f, sizeof(*f) + ncap * sizeof(struct one));
			if (nl)
				lines = nl;
			if (nf)
				f = nf;
			if (!nl || !nf) {
				free(line);
				rc = -ENOMEM;
				break;
			}
			if (cap == 0)
				f->n = 0;
			cap = ncap;
		}
		lines[nlines++] = line;
		int pr = parse_line(line, (size_t)got, &f->v[f->n]);
		if (pr < 0) {
			rc = pr;
			if (bad_line)
				*bad_line = lineno;
			break;
		}
		f->n += (uint32_t)pr;
	}
	fclose(fp);
	if (rc == 0 && f && f->n)
		rc = edit(c, edit_file, f);
	for (size_t i = 0; i < nlines; i++)
		free(lines[i]);
	free(lines);
	free(f);
	return rc;
}

int tc_ttl_policy_load(tc_cache *c, const char *path)
{
	return tc_ttl_policy_load_ex(c, path, NULL);
}
