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
	uint64_t word;
	uint64_t *slotp;
};

/*
 * Copy the live, matching keys of bucket BI out under a read section of
 * one bucket.  Returns how many were copied into F, or the error of
 * entering the section (-EUSERS, -ESTALE, -EBUSY).  An impossible entry is
 * skipped and reported in *BAD.
 */
static int bucket_keys(tc_cache *c, uint64_t bi, const char *glob, int64_t now,
		       struct found *f, int *bad, struct tc_rslot *purger, uint64_t *npurged)
{
	struct tc_bucket *b = &c->index[bi];
	struct tc_rslot *s;
	int n = 0;
	int rc = tc__enter(c, &s);
	if (rc)
		return rc;
	for (int i = 0; i < TC_BUCKET_SLOTS; i++) {
		uint64_t w = tc__ld(&b->w[i]);
		if (TC_SW_STATE(w) != TC_SW_FINAL)
			continue;
		struct tc__sview v;
		if (tc__slot_entry(c, bi, w, &v) != 1) {
			*bad = TC_ECORRUPT;
			continue;
		}
		struct tc_entry *e = v.e;
		int64_t exp = tc__ld(&e->expires_ms);
		if (v.kind != TC_KIND_KEY || expired(exp, now))
			continue;
		memcpy(f[n].key, tc__ekey(e), v.klen);
		f[n].key[v.klen] = '\0';
		if (glob && fnmatch(glob, (const char *)f[n].key, 0) != 0)
			continue;
		f[n].klen = v.klen;
		f[n].meta = (tc_meta){ .len = v.vlen, .type = tc__ld(&e->type),
				       .version = tc__ld(&e->version), .expires_ms = exp };
		f[n].word = w;
		f[n].slotp = &b->w[i];
		/* Purge removes under the same section that matched the key, so
		 * the slot word cannot have been recycled in between. */
		if (purger) {
			if (tc__remove_slot(c, purger, &b->w[i], w, TC_C_KEYS_DELETED) == 0)
				(*npurged)++;
			continue;
		}
		n++;
	}
	tc__exit(c);
	return n;
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
	if (rc == 0)
		tc__count(s, TC_C_CLEARS);
	else
		tc__count(s, TC_C_ERRORS);
	tc__count(s, TC_C_OPS);
	if (deleted)
		*deleted = n;
	return rc;
}
