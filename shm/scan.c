/* SPDX-License-Identifier: MIT */
/*
 * scan.c - tc_scan and tc_purge: walk the index a bucket at a time, each
 * under a read section of its own, and copy out (or remove) the live keys
 * that match a glob(7) pattern.
 */
#include "index.h"

#include <fnmatch.h>

struct found {
	uint8_t key[TC_KEY_MAX + 1];
	size_t klen;
	tc_meta meta;
};

/* The keys of one bucket as bucket_keys collects them. */
struct keys {
	struct tc__walk walk; /* first: the walk's callback finds the rest */
	const char *glob;
	int64_t now;
	struct found *f;
	int n;
	struct tc_rslot *purger;
	uint64_t *npurged;
	bool bad;             /* an entry failed its checksum: skipped */
};

/*
 * With checksums, a key that tc_scan would hand out (or skip as expired) is
 * verified first, as a read of it would be: its checksum under the hash of
 * the key bytes as copied (so that a scribbled key, or key length, which a
 * walk has no caller's key to compare with, fails too) and the metadata
 * as loaded once (TYPE, VERSION, EXP: the caller hands out exactly these).
 */
static bool key_sound(tc_cache *c, const struct tc__sview *v, const uint8_t *key,
		      uint32_t type, uint64_t version, int64_t exp)
{
	uint64_t hash = tc__hash(c, key, v->klen, TC_KIND_KEY);
	return tc__csum_check(c, v->e, hash, v->klen, v->cls, version, exp, v->vlen, type, 0,
			      tc__eval(v->e, v->klen)) == 0;
}

static void key_visit(tc_cache *c, struct tc__walk *w, struct tc_rslot *rs, uint64_t *slotp,
		      uint64_t word, const struct tc__sview *v)
{
	(void)rs;
	struct keys *k = (struct keys *)w;
	struct found *f = &k->f[k->n];
	struct tc_entry *e = v->e;
	if (v->kind != TC_KIND_KEY)
		return;
	int64_t exp = tc__ld(&e->expires_ms);
	/* A purge removes, damaged or not: it judges expiry alone. */
	if (k->purger && expired(exp, k->now))
		return;
	memcpy(f->key, tc__ekey(e), v->klen);
	f->key[v->klen] = '\0';
	if (k->glob && fnmatch(k->glob, (const char *)f->key, 0) != 0)
		return;
	uint32_t type = tc__ld(&e->type);
	uint64_t version = tc__ld(&e->version);
	if (!k->purger && c->csum && !key_sound(c, v, f->key, type, version, exp)) {
		k->bad = true;
		return;
	}
	if (expired(exp, k->now))
		return;
	f->klen = v->klen;
	f->meta = (tc_meta){ .len = v->vlen, .type = type, .version = version,
			     .expires_ms = exp };
	/* Purge removes under the same section that matched the key, so the
	 * slot word cannot have been recycled in between. */
	if (k->purger) {
		if (tc__remove_slot(c, k->purger, slotp, word, TC_C_KEYS_DELETED) == 0)
			(*k->npurged)++;
		return;
	}
	k->n++;
}

/*
 * Copy the live, matching keys of bucket BI out under a read section of
 * one bucket.  Returns how many were copied into F, or the error of
 * entering the section (-EUSERS, -ESTALE, -EBUSY).  An impossible entry is
 * skipped and reported in *BAD, and so is, with checksums, a key that fails
 * its checksum (key_sound).
 */
static int bucket_keys(tc_cache *c, uint64_t bi, const char *glob, int64_t now,
		       struct found *f, int *bad, struct tc_rslot *purger, uint64_t *npurged)
{
	struct keys k = { .walk.fn = key_visit, .glob = glob, .now = now, .f = f,
			  .purger = purger, .npurged = npurged };
	struct tc_rslot *s;
	int rc = tc__enter(c, &s);
	if (rc)
		return rc;
	if (!tc__walk_bucket(c, &k.walk, bi, s) || k.bad)
		*bad = TC_ECORRUPT;
	tc__exit(c);
	return k.n;
}

int tc_scan(tc_cache *c, const char *glob, tc_scan_fn fn, void *arg)
{
	if (!c || !fn)
		return -EINVAL;
	if (glob && strcmp(glob, "*") == 0)
		glob = NULL;
	struct found *f = malloc(sizeof(*f) * TC_BUCKET_SLOTS);
	if (!f)
		return -ENOMEM;
	int bad = 0, rc = 0;
	for (uint64_t bi = 0; bi < c->nbuckets && rc == 0; bi++) {
		int n = bucket_keys(c, bi, glob, tc__now_ms(), f, &bad, NULL, NULL);
		if (n < 0)
			rc = n;
		for (int i = 0; i < n && rc == 0; i++)
			rc = fn(f[i].key, f[i].klen, &f[i].meta, arg);
	}
	free(f);
	if (rc)
		return rc;
	return bad;
}

int tc_purge(tc_cache *c, const char *glob, uint64_t *deleted)
{
	if (deleted)
		*deleted = 0;
	if (!c)
		return -EINVAL;
	if (glob && strcmp(glob, "*") == 0)
		glob = NULL;
	struct tc_rslot *s = tc__slot(c);
	if (!s)
		return -EUSERS;
	struct found *f = malloc(sizeof(*f) * TC_BUCKET_SLOTS);
	if (!f)
		return -ENOMEM;
	uint64_t n = 0;
	int bad = 0, rc = 0;
	for (uint64_t bi = 0; bi < c->nbuckets && rc == 0; bi++) {
		int k = bucket_keys(c, bi, glob, tc__now_ms(), f, &bad, s, &n);
		if (k < 0)
			rc = k;
	}
	free(f);
	/*
	 * The purge's garbage is freed here, by the purger, in one grace
	 * period (tc_reclaim's): left on the retire list it would be walked
	 * RECLAIM_STEP blocks at a time by the writes that follow, each block
	 * a cache miss, which is what a write's tail latency would pay after
	 * every large purge.  What a reader still holds stays retired; never
	 * inside this thread's own read section, whose grace period this
	 * call would be waiting for.
	 */
	if (n && !tc__in_section(c))
		(void)tc__reclaim(c, s, NULL);
	if (rc == 0)
		tc__count(s, TC_C_CLEARS);
	else
		tc__count(s, TC_C_ERRORS);
	tc__count(s, TC_C_OPS);
	if (deleted)
		*deleted = n;
	return rc;
}
