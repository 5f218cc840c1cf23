/* SPDX-License-Identifier: MIT */
/*
 * run.c - point-in-time runs and typed DTO lists (needs.md section 1).
 *
 * The run.  tc_hdr.run_word = generation << 32 | anchor ref.  The anchor is
 * an immutable block of kind TC_KIND_RUN holding (ts_ns, run_id,
 * generation); it is never in the index.  The generation is odd exactly
 * while a run is active (ref != 0) and grows by one on every start and end:
 *   start: CAS (g, 0) -> (g + 1, new anchor), else -EBUSY;
 *   end:   CAS (g, anchor) -> (g + 1, 0), then retire the anchor.
 * A reader loads run_word inside a read section and then the anchor: an
 * anchor retired after that load is not freed before the section ends.
 *
 * DTO lists.  A list is a chain of immutable blocks of kind TC_KIND_DTO
 * keyed by the user's key; the index names the newest one, the head.  Each
 * element carries (layout.h) the run generation in aux and, in version,
 * the list's count up to itself and the ref of the element before it.
 * Append builds one block (count + 1, prev = the current head) and swings
 * the head's slot with one CAS, inside one read section, so the old head
 * cannot be freed and reused under the CAS (no ABA): the CAS order is the
 * insertion order, across processes.  The old head is not retired: it is
 * the new head's predecessor.  A first append inserts with the index's
 * TENT/FINAL protocol (tc__insert), so two processes never create two lists
 * of one key.
 *
 * Ending a run is O(1): a list whose generation is not the active run's is
 * invisible (count 0).  Its memory comes back through three paths, each of
 * which unlinks the head with a CAS (the winner alone retires the chain,
 * walking prev links bounded by the strictly decreasing counts):
 *  - the next append of that key replaces the dead head in place;
 *  - tc__sweep_runs(), called by tc_sweep() (shm-sweeper);
 *  - writers short of memory: appends here, and the generic writers once
 *    tc__make_room() (room.c) calls tc__sweep_runs() (runsweep.c), and the
 *    writers of this file sweep every list first (tc__room_for).
 * So thousands of runs in a row never fill the segment, sweeper or not.
 *
 * Staleness is decided by loading the head's generation, then (after a read
 * barrier) run_word.  An appender loads run_word before its CAS and again
 * after it (the CAS is a full barrier): when the word changed in between,
 * the DTO went into a run that has ended and the call returns TC_ENORUN; a
 * 0 means the run was active at the CAS.  So a list is never removed while
 * its run is active, and an acknowledged append is never lost while its run
 * is active.
 *
 * Crash windows.  A block being built is named in the builder's reader slot
 * (alloc.c) so that a builder killed before publishing does not leak it.
 * Blocks published here stay LIVE after they stop being the head (they are
 * list elements, or the anchor, not in the index), which the generic
 * in-flight check cannot tell from "never published"; so the in-flight
 * record is cleared just before the publishing CAS.  Dying between the two
 * leaks one block.  A dead list being unlinked is named in the slot's
 * ret_ref (as tc__remove_slot does), so a cleaner retires it if the remover
 * dies between its CAS and its retire walk; the cleaner retires the head
 * only, unless it dispatches DTO heads to tc__dto_retire_chain(), which
 * takes the whole chain.  The anchor is not named there (run_word, not the
 * index, names it): dying between the end's CAS and its retire leaks it.
 */
#include "index.h"
#include "futex.h"
#include "room.h"

#include <stdlib.h>

#define READ_RETRIES 64

static inline uint64_t run_word(tc_cache *c)
{
	return tc__ld(&c->h->run_word);
}

static void count_rc(struct tc_rslot *s, int rc)
{
	if (!s)
		return;
	if (rc && rc != TC_ENORUN && rc != -EBUSY && rc != TC_ETYPE && rc != TC_ECONFLICT)
		tc__count(s, TC_C_ERRORS);
	tc__count(s, TC_C_OPS);
}

/* ---- the run ------------------------------------------------------------ */

int tc_run_start(tc_cache *c, int64_t ts_ns, uint64_t run_id)
{
	if (!c)
		return -EINVAL;
	struct tc_rslot *s = NULL;
	uint64_t need = tc__entry_bytes(0, sizeof(struct tc_anchor_rec));
	struct tc__room r = { .sweep_runs = true };
	int rc = -EAGAIN;
	for (int attempt = 0; attempt < TC_MAX_ATTEMPTS; attempt++) {
		rc = tc__enter(c, &s);
		if (rc)
			return rc;
		uint64_t w = tc__run_word(c);
		if (RUN_REF(w)) {
			rc = -EBUSY;
			tc__exit(c);
			break;
		}
		bool again;
		struct tc_entry *e = tc__alloc_or_room(c, s, need, &r, &rc, &again);
		if (!e) {
			if (again)
				continue;
			break;
		}
		/* Odd, and above the word's even if a scribble made it odd. */
		uint32_t gen = (RUN_GEN(w) + 1) | 1;
		struct tc_anchor_rec a = { ts_ns, run_id, gen, tc__now_ms(), tc__self_pid() };
		tc__fill_block(e, &(struct tc__bhdr){ .version = gen, .vlen = sizeof(a),
						      .kind = TC_KIND_RUN, .aux = gen },
			       NULL, &a);
		uint64_t ref = tc__ref_of(c, e);
		tc__st(&s->inflight, 0); /* see "Crash windows" above */
		TC_CRASH_POINT(run_start_unnamed);
		/* Full barrier: the anchor's bytes before the word that names it. */
		if (tc__cas(&c->h->run_word, w, (uint64_t)gen << 32 | ref) == w) {
			tc__notify_any(c);
			rc = 0;
			tc__exit(c);
			break;
		}
		tc__free_block(c, e); /* never visible to anyone */
		tc__exit(c);
	}
	count_rc(s, rc);
	return rc;
}

int tc_run_anchor(tc_cache *c, tc_anchor *out)
{
	if (!c || !out)
		return -EINVAL;
	struct tc_rslot *s;
	int rc = tc__enter(c, &s);
	if (rc)
		return rc;
	uint64_t w = tc__run_word(c);
	if (!RUN_REF(w)) {
		rc = TC_ENORUN;
	} else {
		uint32_t vlen;
		struct tc_entry *e = tc__block_of(c, RUN_REF(w), TC_KIND_RUN, &vlen);
		struct tc_anchor_rec a;
		if (e && vlen == sizeof(a))
			memcpy(&a, tc__eval(e, 0), sizeof(a));
		/* The anchor records its generation: a word that disagrees
		 * with it, or an even one, was scribbled. */
		if (!e || vlen != sizeof(a) || a.generation != RUN_GEN(w) || !(RUN_GEN(w) & 1)) {
			rc = TC_ECORRUPT;
		} else {
			out->ts_ns = a.ts_ns;
			out->run_id = a.run_id;
			out->generation = RUN_GEN(w);
			out->started_ms = a.started_ms;
			out->starter_pid = (uint32_t)a.starter_pid;
		}
	}
	tc__exit(c);
	count_rc(s, rc);
	return rc;
}

/* End the active run; with ONLY_GEN (non-zero), only the run of that generation. */
static int run_end(tc_cache *c, uint64_t only_gen)
{
	struct tc_rslot *s;
	int rc = tc__enter(c, &s);
	if (rc)
		return rc;
	rc = -EAGAIN;
	for (int attempt = 0; attempt < TC_MAX_ATTEMPTS; attempt++) {
		uint64_t w = tc__run_word(c);
		if (!RUN_REF(w)) {
			rc = TC_ENORUN;
			break;
		}
		if (only_gen && RUN_GEN(w) != only_gen) {
			rc = TC_ECONFLICT;
			break;
		}
		uint64_t nw = (uint64_t)(RUN_GEN(w) + 1) << 32;
		if (tc__cas(&c->h->run_word, w, nw) != w)
			continue;
		tc__notify_any(c);
		TC_CRASH_POINT(run_ended);
		uint32_t vlen;
		struct tc_entry *e = tc__block_of(c, RUN_REF(w), TC_KIND_RUN, &vlen);
		if (e)
			tc__retire(c, s, e);
		tc__count(s, TC_C_CLEARS);
		rc = 0;
		break;
	}
	tc__exit(c);
	if (rc == 0)
		tc__maybe_reclaim(c, s);
	count_rc(s, rc);
	return rc;
}

int tc_run_end(tc_cache *c)
{
	if (!c)
		return -EINVAL;
	return run_end(c, 0);
}

int tc_run_end_gen(tc_cache *c, uint64_t generation)
{
	if (!c || generation == 0 || generation > UINT32_MAX)
		return -EINVAL;
	return run_end(c, generation);
}

/* ---- DTO lists ------------------------------------------------------------ */

/* An append as decided inside its read section (append_find). */
struct append {
	uint64_t w;          /* run_word as read */
	uint32_t gen;        /* its generation */
	uint64_t *slotp, sw; /* the list's index word, when found */
	struct tc_entry *head;
	uint64_t prev, count; /* what the new element follows, and its count */
	bool found, replace; /* a list of this key; of an ended run */
};

enum { A_GO, A_AGAIN, A_FAIL, A_ROOM_SLOT };

/* Find the list of HASH and KEY and decide what the new element follows.
 * A_GO; A_AGAIN: a run began meanwhile; A_FAIL with *RC. */
static int append_find(tc_cache *c, uint64_t hash, const void *key, size_t klen,
		       struct append *a, int *rc)
{
	*a = (struct append){ .w = tc__run_word(c), .count = 1 };
	if (!RUN_REF(a->w)) {
		*rc = TC_ENORUN;
		return A_FAIL;
	}
	a->gen = RUN_GEN(a->w);
	int lr = tc__lookup(c, hash, key, klen, TC_KIND_DTO, &a->slotp, &a->sw, &a->head);
	if (lr && lr != -ENOENT) {
		*rc = lr;
		return A_FAIL;
	}
	a->found = lr == 0;
	if (!a->found)
		return A_GO;
	if (tc__ld(&a->head->aux) == a->gen) {
		a->prev = TC_SW_REF(a->sw);
		a->count = TC_DTO_COUNT(tc__ld(&a->head->version)) + 1;
		if (a->count > 0xffffffffu) {
			*rc = -EOVERFLOW;
			return A_FAIL;
		}
		return A_GO;
	}
	/* A list of an earlier run, unless a new run began after we read
	 * run_word: then start over. */
	tc__rmb();
	if (tc__run_word(c) != a->w)
		return A_AGAIN;
	a->replace = true;
	return A_GO;
}

/* Fill the private block E with the element (count, prev, generation). */
static void build_elem(tc_cache *c, struct tc_entry *e, uint64_t hash, const void *key,
		       size_t klen, uint32_t type, const void *dto, size_t len,
		       const struct append *a)
{
	tc__fill_block(e, &(struct tc__bhdr){ .hash = hash, .version = a->count << 32 | a->prev,
					      .klen = (uint32_t)klen, .vlen = (uint32_t)len,
					      .type = type, .kind = TC_KIND_DTO, .aux = a->gen },
		       key, dto);
	if (c->csum)
		tc__csum_seal(c, e, klen);
}

/* Publish the built element E as the list's head: swing the head's word,
 * or insert a new list.  A_GO: published; A_AGAIN: the word changed or the
 * insert lost (*RC its code); A_ROOM_SLOT: no index word (*RC -ENOSPC). */
static int append_publish(tc_cache *c, struct tc_rslot *s, struct tc_entry *e, uint64_t hash,
			  const void *key, size_t klen, const struct append *a, int *rc)
{
	uint64_t ref = tc__ref_of(c, e);
	if (a->found) {
		/* A dead list we replace is named in our slot, so that a
		 * cleaner retires it if we die after the CAS.  (A live head
		 * is not: it stays in the list, as the new head's prev.) */
		if (a->replace)
			tc__note_unlink(s, TC_SW_REF(a->sw), a->head);
		/* Full barrier: the element's bytes before the slot names it. */
		if (tc__cas(a->slotp, a->sw, TC_SW_FINAL | TC_TAG_OF(hash) << 48 | ref) != a->sw) {
			tc__st(&s->ret_ref, 0);
			tc__free_block(c, e);
			return A_AGAIN;
		}
		tc__notify(c, hash);
		if (a->replace) {
			TC_CRASH_POINT(dto_replaced);
			tc__dto_retire_chain(c, s, a->head);
			tc__st(&s->ret_ref, 0);
		}
		return A_GO;
	}
	bool seen;
	tc__add(&c->h->dto_heads, 1);
	int ir = tc__insert(c, hash, key, klen, TC_KIND_DTO, e, &seen);
	if (ir == 0)
		return A_GO;
	tc__add(&c->h->dto_heads, (uint64_t)-1);
	if (seen)
		tc__retire(c, s, e);
	else
		tc__free_block(c, e);
	*rc = ir;
	return ir == -ENOSPC ? A_ROOM_SLOT : A_AGAIN;
}

int tc_dto_append(tc_cache *c, const void *key, size_t klen, uint32_t type, const void *dto,
		  size_t len)
{
	if (!c || !tc__valid_key(key, klen) || (!dto && len))
		return -EINVAL;
	if (len > TC_VALUE_MAX)
		return -EMSGSIZE;
	uint64_t hash = tc__hash(c, key, klen, TC_KIND_DTO);
	uint64_t need = tc__entry_need(c, klen, len);
	struct tc__room r = { .sweep_runs = true };
	int rc = -EAGAIN;
	struct tc_rslot *s = NULL;
	for (int attempt = 0; attempt < TC_MAX_ATTEMPTS; attempt++) {
		rc = tc__enter(c, &s);
		if (rc)
			return rc;
		struct append a;
		int next = append_find(c, hash, key, klen, &a, &rc);
		if (next != A_GO) {
			tc__exit(c);
			if (next == A_FAIL)
				break;
			continue;
		}
		bool again;
		struct tc_entry *e = tc__alloc_or_room(c, s, need, &r, &rc, &again);
		if (!e) {
			if (again)
				continue;
			break;
		}
		build_elem(c, e, hash, key, klen, type, dto, len, &a);
		tc__st(&s->inflight, 0); /* see "Crash windows" above */
		TC_CRASH_POINT(dto_append_unnamed);
		next = append_publish(c, s, e, hash, key, klen, &a, &rc);
		if (next != A_GO) {
			tc__exit(c);
			if (next == A_ROOM_SLOT && !tc__room_for(c, s, need, true, &r))
				break;
			continue;
		}
		/* The run must still be the one we appended to (the CAS above was
		 * a full barrier); else the DTO went into an ended run. */
		rc = tc__run_word(c) == a.w ? 0 : TC_ENORUN;
		if (rc == 0)
			tc__count(s, TC_C_SETS);
		tc__exit(c);
		if (a.replace)
			tc__maybe_reclaim(c, s);
		break;
	}
	count_rc(s, rc);
	return rc;
}

/*
 * Find the list of KEY in the active run, inside the caller's read section.
 * 0 with *head (NULL: no DTOs) and *wp = the run_word read, TC_ENORUN, or
 * an error.  The caller validates *wp again after using the list.
 */
static int find_list(tc_cache *c, uint64_t hash, const void *key, size_t klen,
		     struct tc_entry **head, uint64_t *hw, uint64_t *wp)
{
	uint64_t w = tc__run_word(c);
	*head = NULL;
	*wp = w;
	if (!RUN_REF(w))
		return TC_ENORUN;
	uint64_t *slotp;
	struct tc_entry *e;
	int rc = tc__lookup(c, hash, key, klen, TC_KIND_DTO, &slotp, hw, &e);
	if (rc == -ENOENT)
		return 0;
	if (rc)
		return rc;
	if (tc__ld(&e->aux) == RUN_GEN(w))
		*head = e;
	return 0;
}

/* Did the run change since W was read?  Loads before this stay before it. */
static inline bool run_moved(tc_cache *c, uint64_t w)
{
	tc__rmb();
	return tc__run_word(c) != w;
}

int tc_dto_count(tc_cache *c, const void *key, size_t klen, size_t *n)
{
	if (!c || !n || !tc__valid_key(key, klen))
		return -EINVAL;
	*n = 0;
	uint64_t hash = tc__hash(c, key, klen, TC_KIND_DTO);
	struct tc_rslot *s;
	int rc = tc__enter(c, &s);
	if (rc)
		return rc;
	for (int i = 0; i < READ_RETRIES; i++) {
		struct tc_entry *head;
		uint64_t hw, w;
		rc = find_list(c, hash, key, klen, &head, &hw, &w);
		if (rc)
			break;
		size_t cnt = head ? (size_t)TC_DTO_COUNT(tc__ld(&head->version)) : 0;
		if (!run_moved(c, w)) {
			*n = cnt;
			break;
		}
		rc = -EAGAIN;
	}
	tc__exit(c);
	count_rc(s, rc);
	return rc;
}

/* One element of a list as tc_dto_each hands it out: checked, loaded once. */
struct item {
	const uint8_t *val;
	uint32_t vlen;
};

/*
 * Collect the elements of the list headed by HEAD (word HW, N elements,
 * key length KLEN) into *ITEMS, newest first, checking every element (and,
 * with checksums, its value).  The array grows (doubling) with the elements
 * the walk has proved to exist, so a scribbled count allocates no more than
 * twice the real list.  0, TC_ETYPE (some element has another type),
 * TC_ECORRUPT, -ENOMEM.
 */
static int collect(tc_cache *c, struct tc_entry *head, uint64_t hw, uint64_t n, uint32_t klen,
		   uint32_t type, struct item **items, uint64_t *cap)
{
	uint64_t hash = tc__ld(&head->hash), ref = TC_SW_REF(hw);
	uint32_t gen = tc__ld(&head->aux), vlen, cls;
	int rc = 0;
	for (uint64_t i = n, k = 0; i >= 1; i--, k++) {
		struct tc_entry *e = tc__dto_elem(c, ref, hash, klen, &vlen, &cls);
		if (!e)
			return TC_ECORRUPT;
		uint64_t ver = tc__ld(&e->version);
		uint32_t ty = tc__ld(&e->type);
		if (tc__ld(&e->aux) != gen || TC_DTO_COUNT(ver) != i)
			return TC_ECORRUPT;
		if (c->csum && tc__csum_check(c, e, hash, klen, cls, ver, tc__ld(&e->expires_ms),
					      vlen, ty, tc__eval(e, klen)))
			return TC_ECORRUPT;
		if (ty != type)
			rc = TC_ETYPE;
		if (k == *cap) {
			uint64_t nc = *cap ? 2 * *cap : 64;
			nc = nc < n ? nc : n;
			struct item *r = realloc(*items, nc * sizeof(*r));
			if (!r)
				return -ENOMEM;
			*items = r;
			*cap = nc;
		}
		(*items)[k] = (struct item){ tc__eval(e, klen), vlen };
		ref = TC_DTO_PREV(ver);
	}
	return ref == 0 ? rc : TC_ECORRUPT;
}

int tc_dto_each(tc_cache *c, const void *key, size_t klen, uint32_t type, tc_dto_fn fn,
		void *arg)
{
	if (!c || !fn || !tc__valid_key(key, klen))
		return -EINVAL;
	uint64_t hash = tc__hash(c, key, klen, TC_KIND_DTO);
	struct item *items = NULL;
	uint64_t cap = 0, n = 0;
	/* Every element takes at least its header and its key. */
	uint64_t most = c->arena_bytes / tc__entry_bytes(klen, 0);
	struct tc_rslot *s;
	int rc = tc__enter(c, &s);
	if (rc)
		return rc;
	for (int i = 0; i < READ_RETRIES; i++) {
		struct tc_entry *head;
		uint64_t hw, w;
		rc = find_list(c, hash, key, klen, &head, &hw, &w);
		if (rc)
			break;
		if (!head) {
			if (!run_moved(c, w))
				break; /* no DTOs in this run */
			rc = -EAGAIN;
			continue;
		}
		n = TC_DTO_COUNT(tc__ld(&head->version));
		if (n == 0 || n > most) {
			rc = TC_ECORRUPT;
			break;
		}
		rc = collect(c, head, hw, n, (uint32_t)klen, type, &items, &cap);
		/* The run must have stayed active across the walk, so that the
		 * snapshot is one of this run (not of appends after its end). */
		if (run_moved(c, w)) {
			rc = -EAGAIN;
			continue;
		}
		if (rc)
			break;
		/* Zero copy: every element stays valid until our section ends,
		 * even when the run ends meanwhile.  Oldest first, each as the
		 * walk checked it (nothing is loaded again). */
		for (uint64_t k = n; k-- > 0 && rc == 0;)
			rc = fn(items[k].val, items[k].vlen, arg);
		break;
	}
	tc__exit(c);
	free(items);
	count_rc(s, rc < 0 ? rc : 0);
	return rc;
}

struct dkey {
	uint8_t key[TC_KEY_MAX];
	size_t klen;
	size_t count;
};

int tc_dto_keys(tc_cache *c, tc_dto_key_fn fn, void *arg)
{
	if (!c || !fn)
		return -EINVAL;
	uint64_t w = tc__run_word(c);
	if (!RUN_REF(w))
		return TC_ENORUN;
	struct dkey *f = malloc(sizeof(*f) * TC_BUCKET_SLOTS);
	if (!f)
		return -ENOMEM;
	int rc = 0, bad = 0;
	for (uint64_t bi = 0; bi < c->nbuckets && rc == 0; bi++) {
		struct tc_bucket *b = &c->index[bi];
		struct tc_rslot *s;
		int n = 0;
		rc = tc__enter(c, &s);
		if (rc)
			break;
		for (int i = 0; i < TC_BUCKET_SLOTS; i++) {
			uint64_t sw = tc__ld(&b->w[i]);
			if (TC_SW_STATE(sw) != TC_SW_FINAL)
				continue;
			/* The key length is loaded once, checked (1..TC_KEY_MAX),
			 * and that copy alone sizes the copy and the callback. */
			struct tc__sview v;
			if (tc__slot_entry(c, bi, sw, &v) != 1) {
				bad = TC_ECORRUPT; /* skipped, reported at the end */
				continue;
			}
			if (v.kind != TC_KIND_DTO || tc__ld(&v.e->aux) != RUN_GEN(w))
				continue;
			f[n].klen = v.klen;
			f[n].count = (size_t)TC_DTO_COUNT(tc__ld(&v.e->version));
			memcpy(f[n].key, tc__ekey(v.e), v.klen);
			n++;
		}
		if (run_moved(c, w))
			rc = TC_ENORUN; /* the run ended: its keys are gone */
		tc__exit(c);
		for (int i = 0; i < n && rc == 0; i++)
			rc = fn(f[i].key, f[i].klen, f[i].count, arg);
	}
	free(f);
	return rc ? rc : bad;
}

/* ---- tc_audit hooks ------------------------------------------------------ */

/* The elements of the list whose head is E (E itself is marked by the
 * caller), bounded by the strictly decreasing counts. */
void tc__audit_entry(tc_cache *c, struct tc_entry *e, tc__mark_fn mark, void *ctx)
{
	if (tc__ld(&e->kind) != TC_KIND_DTO)
		return;
	uint64_t ver = tc__ld(&e->version);
	uint64_t n = TC_DTO_COUNT(ver);
	for (uint64_t i = n; i > 1; i--) {
		uint64_t prev = TC_DTO_PREV(ver);
		struct tc_entry *p = tc__block(c, prev);
		if (!p || tc__ld(&p->kind) != TC_KIND_DTO)
			return;
		mark(ctx, prev);
		ver = tc__ld(&p->version);
		if (TC_DTO_COUNT(ver) != i - 1)
			return;
	}
}

/* The run anchor and the TTL policy table hang off the header. */
void tc__audit_roots(tc_cache *c, tc__mark_fn mark, void *ctx)
{
	uint64_t ref = RUN_REF(tc__ld(&c->h->run_word));
	if (ref)
		mark(ctx, ref);
	ref = tc__ld(&c->h->policy_gen) & 0xffffffffu;
	if (ref)
		mark(ctx, ref);
}
