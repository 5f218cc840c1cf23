/* SPDX-License-Identifier: MIT */
/*
 * be_rculfhash.c - shm-bench's "rculfhash" backend: liburcu's RCU
 * lock-free hash table (memb flavour), one private table per process.
 */
#include <urcu/urcu-memb.h>
#include <urcu/rculfhash.h>

#include "bench.h"

struct lf_node {
	struct cds_lfht_node node;
	struct rcu_head rcu;
	uint32_t klen, vlen;
	char key[16];
	unsigned char val[];
};

struct lf_key {
	const char *p;
	size_t len;
};

static int lf_match(struct cds_lfht_node *n, const void *key)
{
	const struct lf_key *k = key;
	const struct lf_node *e = caa_container_of(n, struct lf_node, node);

	return e->klen == k->len && memcmp(e->key, k->p, k->len) == 0;
}

static void lf_free(struct rcu_head *h)
{
	free(caa_container_of(h, struct lf_node, rcu));
}

static void *lf_attach(char *err, size_t len)
{
	uint64_t n = pow2_at_least(cfg.keys + 4096);
	struct cds_lfht *ht;

	urcu_memb_register_thread();
	ht = cds_lfht_new_flavor(n, n, 0, 0, &urcu_memb_flavor, NULL);
	if (!ht)
		snprintf(err, len, "cds_lfht_new failed");
	return ht;
}

/* Empty and destroy the table (--back-to-back detaches in a process that
 * goes on): every node is unlinked and handed to call_rcu, as lf_del does,
 * and rcu_barrier waits for all those callbacks (and those of the nodes
 * that sets replaced) before the table goes. */
static void lf_detach(void *st)
{
	struct cds_lfht *ht = st;
	struct cds_lfht_iter it;
	struct lf_node *e;

	urcu_memb_read_lock();
	cds_lfht_for_each_entry(ht, &it, e, node)
		if (cds_lfht_del(ht, &e->node) == 0)
			urcu_memb_call_rcu(&e->rcu, lf_free);
	urcu_memb_read_unlock();
	urcu_memb_barrier();
	cds_lfht_destroy(ht, NULL);
	urcu_memb_unregister_thread();
}

static inline struct lf_node *lf_lookup(struct cds_lfht *ht, const char *k, size_t kl)
{
	struct lf_key key = { k, kl };
	struct cds_lfht_iter it;
	struct cds_lfht_node *n;

	cds_lfht_lookup(ht, hash_bytes(k, kl), lf_match, &key, &it);
	n = cds_lfht_iter_get_node(&it);
	return n ? caa_container_of(n, struct lf_node, node) : NULL;
}

static int lf_get(void *st, const char *k, size_t kl, void *buf, size_t cap, size_t *len)
{
	struct lf_node *e;
	int rc = 1;

	urcu_memb_read_lock();
	e = lf_lookup(st, k, kl);
	if (e) {
		*len = e->vlen;
		rc = e->vlen > cap ? -E2BIG : 0;
		if (!rc)
			memcpy(buf, e->val, e->vlen);
	}
	urcu_memb_read_unlock();
	return rc;
}

static int lf_peek(void *st, const char *k, size_t kl, const void **val, size_t *len)
{
	struct lf_node *e;

	urcu_memb_read_lock();
	e = lf_lookup(st, k, kl);
	if (!e)
		return 1;
	*val = e->val;
	*len = e->vlen;
	return 0;
}

static void lf_peek_end(void *st)
{
	(void)st;
	urcu_memb_read_unlock();
}

static struct lf_node *lf_node_new(const char *k, size_t kl, const void *v, size_t vl)
{
	struct lf_node *e;

	if (kl > sizeof(e->key))
		return NULL;
	e = malloc(sizeof(*e) + vl);
	if (!e)
		return NULL;
	cds_lfht_node_init(&e->node);
	e->klen = (uint32_t)kl;
	e->vlen = (uint32_t)vl;
	memcpy(e->key, k, kl);
	memcpy(e->val, v, vl);
	return e;
}

static int lf_set(void *st, const char *k, size_t kl, const void *v, size_t vl)
{
	struct lf_node *e = lf_node_new(k, kl, v, vl);
	struct lf_key key = { k, kl };
	struct cds_lfht_node *old;

	if (!e)
		return -ENOMEM;
	urcu_memb_read_lock();
	old = cds_lfht_add_replace(st, hash_bytes(k, kl), lf_match, &key, &e->node);
	urcu_memb_read_unlock();
	if (old)
		urcu_memb_call_rcu(&caa_container_of(old, struct lf_node, node)->rcu, lf_free);
	return 0;
}

static int lf_add(void *st, const char *k, size_t kl, const void *v, size_t vl)
{
	struct lf_node *e = lf_node_new(k, kl, v, vl);
	struct lf_key key = { k, kl };
	struct cds_lfht_node *got;

	if (!e)
		return -ENOMEM;
	urcu_memb_read_lock();
	got = cds_lfht_add_unique(st, hash_bytes(k, kl), lf_match, &key, &e->node);
	urcu_memb_read_unlock();
	if (got != &e->node) {
		free(e);
		return 1;
	}
	return 0;
}

static int lf_del(void *st, const char *k, size_t kl)
{
	struct lf_node *e;
	int rc = 1;

	urcu_memb_read_lock();
	e = lf_lookup(st, k, kl);
	if (e && cds_lfht_del(st, &e->node) == 0) {
		urcu_memb_call_rcu(&e->rcu, lf_free);
		rc = 0;
	}
	urcu_memb_read_unlock();
	return rc;
}

const struct backend be_rculfhash = {
	"rculfhash", "liburcu cds_lfht, memb flavour, per process",
	OPBIT(OP_GET) | OPBIT(OP_PEEK) | OPBIT(OP_SET) | OPBIT(OP_ADD), false,
	NULL, NULL, lf_attach, lf_detach, lf_get, lf_peek, lf_peek_end,
	lf_set, lf_add, lf_del, NULL, never_drops, NULL
};
