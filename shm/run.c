/* SPDX-License-Identifier: MIT */
/*
 * run.c - point-in-time runs and typed DTO lists (README.md, "Point-in-time
 * runs and typed DTO lists").
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
 * The anchor is asked of run_word, which names it exactly while it is
 * published (recover.c, still_published), as policy.c's table is asked of
 * policy_gen: a start keeps its anchor in inflight across the CAS, an end
 * names the anchor in ret_ref across the CAS until it has retired it, and
 * the cleaner retires the one run_word does not name; no kill leaks it.
 * A list element is named in inflight across its publishing CAS too: a
 * cleaner takes it for published while an index word names it, or names
 * a head (of its tag, in its probe chain) that reaches it (recover.c,
 * still_published; runsweep.c, tc__dto_reaches: tc_audit's own rule, down
 * to the element's own count), so
 * no kill leaks it, and the TENT word of a first element whose inserter
 * died is aborted as an ordinary key's is.  A dead list being unlinked is
 * named in the slot's ret_ref (as tc__remove_slot does), so a cleaner
 * retires it if the remover dies between its CAS and its retire walk; the
 * cleaner dispatches DTO heads to tc__dto_retire_chain(), which takes the
 * whole chain.
 */
#include "index.h"
#include "futex.h"
#include "room.h"

#include <stdlib.h>

#define READ_RETRIES 64

static void count_rc(struct tc_rslot *s, int rc)
{
	if (!s)
		return;
	if (rc && rc != TC_ENORUN && rc != -EBUSY && rc != TC_ETYPE && rc != TC_ECONFLICT)
		tc__count(s, TC_C_ERRORS);
	tc__count(s, TC_C_OPS);
}

/* ---- the run ------------------------------------------------------------ */

/* What tc_run_start's attempts start. */
struct start {
	int64_t ts_ns;
	uint64_t run_id;
};

/*
 * One attempt of tc_run_start, inside a read section of slot S that it
 * leaves: publish an anchor for a new run unless one is active.  True when
 * done (*RC: 0, -EBUSY, or why no block was had), false to try again
 * (room was made, or another starter won the word).
 */
static bool start_once(tc_cache *c, struct tc_rslot *s, struct tc__room *r, void *ctx, int *rc)
{
	const struct start *st = ctx;
	uint64_t w = tc__run_word(c);
	if (RUN_REF(w)) {
		*rc = -EBUSY;
		tc__exit(c);
		return true;
	}
	bool again;
	uint64_t need = tc__entry_need(c, 0, sizeof(struct tc_anchor_rec));
	struct tc_entry *e = tc__alloc_or_room(c, s, need, r, rc, &again);
	if (!e)
		return !again;
	/* Odd, and above the word's even if a scribble made it odd. */
	uint32_t gen = (RUN_GEN(w) + 1) | 1;
	struct tc_anchor_rec a = { st->ts_ns, st->run_id, gen, tc__now_ms(), tc__self_pid() };
	/* No key: "" rather than NULL, which gcc -O1 (make asan) takes for
	 * memcpy's source without seeing that no byte is copied. */
	tc__fill_block(e, &(struct tc__bhdr){ .version = gen, .vlen = sizeof(a),
					      .kind = TC_KIND_RUN, .aux = gen },
		       "", &a);
	if (c->csum) /* a value tc_run_anchor hands out, shm-sweeper acts on */
		tc__csum_seal(c, e, 0);
	uint64_t ref = tc__ref_of(c, e);
	/* Still named in inflight across the CAS: a cleaner asks run_word
	 * whether it was published (see "Crash windows" above). */
	TC_CRASH_POINT(run_start_built);
	/* Full barrier: the anchor's bytes before the word that names it. */
	bool won = tc__cas(&c->h->run_word, w, (uint64_t)gen << 32 | ref) == w;
	if (won) {
		TC_CRASH_POINT(run_started);
		tc__st(&s->inflight, 0);
		tc__notify_any(c);
		*rc = 0;
	} else {
		tc__drop_private(c, s, e); /* never visible to anyone */
	}
	tc__exit(c);
	return won;
}

int tc_run_start(tc_cache *c, int64_t ts_ns, uint64_t run_id)
{
	if (!c)
		return -EINVAL;
	struct tc_rslot *s;
	struct tc__room r = { .sweep_runs = true };
	int rc = tc__attempts(c, &r, start_once, &(struct start){ ts_ns, run_id }, &s);
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
		uint32_t klen, vlen, cls;
		struct tc_entry *e = tc__block_kv(c, RUN_REF(w), TC_KIND_RUN, &klen, &vlen, &cls);
		struct tc_anchor_rec a;
		if (e && klen == 0 && vlen == sizeof(a))
			memcpy(&a, tc__eval(e, 0), sizeof(a));
		/* The anchor records its generation: a word that disagrees
		 * with it, or an even one, was scribbled.  With checksums the
		 * copy is verified (it has no key: hash 0). */
		if (!e || klen != 0 || vlen != sizeof(a) || a.generation != RUN_GEN(w) ||
		    !(RUN_GEN(w) & 1) ||
		    (c->csum && tc__csum_check(c, e, 0, 0, cls, tc__ld(&e->version),
					       tc__ld(&e->expires_ms), vlen, tc__ld(&e->type),
					       tc__ld(&e->aux), &a))) {
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

/* The anchor that run word W names, when it is one of W's generation. */
static struct tc_entry *run_anchor_of(tc_cache *c, uint64_t w)
{
	uint32_t vlen;
	struct tc_entry *e = tc__block_of(c, RUN_REF(w), TC_KIND_RUN, &vlen);
	return e && tc__ld(&e->version) == RUN_GEN(w) ? e : NULL;
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
		/* The anchor is named in ret_ref across the CAS, so that a
		 * cleaner retires it if we die before we do (it asks run_word
		 * whether the CAS happened).  Only an anchor of the word's
		 * generation: a word scribbled to name another block leaks
		 * that block rather than retire it. */
		uint64_t nw = (uint64_t)(RUN_GEN(w) + 1) << 32;
		struct tc_entry *e = run_anchor_of(c, w);
		if (e)
			tc__note_unlink(s, RUN_REF(w), e);
		TC_CRASH_POINT(run_end_noted);
		if (tc__cas(&c->h->run_word, w, nw) != w) {
			tc__st(&s->ret_ref, 0);
			continue;
		}
		tc__notify_any(c);
		TC_CRASH_POINT(run_ended);
		if (e)
			tc__retire(c, s, e);
		tc__st(&s->ret_ref, 0);
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

/*
 * With checksums, is the list head E of (HASH, KLEN) sound, with its
 * version VER (count << 32 | prev) and generation GEN as the caller loaded
 * them and acts on them?  Both are sealed with the head's value, which
 * the callers of this (tc_dto_count, tc_dto_keys, a list that reads as an
 * earlier run's) never read otherwise.  0 or TC_ECORRUPT.
 */
static int head_check(tc_cache *c, struct tc_entry *e, uint64_t hash, uint32_t klen,
		      uint32_t vlen, uint32_t cls, uint64_t ver, uint32_t gen)
{
	return tc__csum_check(c, e, hash, klen, cls, ver, tc__ld(&e->expires_ms), vlen,
			      tc__ld(&e->type), gen, tc__eval(e, klen));
}

/* head_check() of the head E, named by word W, of the list of (HASH, KLEN),
 * its lengths and class taken (checked) from the block. */
static int head_check_at(tc_cache *c, struct tc_entry *e, uint64_t w, uint64_t hash,
			 uint32_t klen, uint64_t ver, uint32_t gen)
{
	uint32_t vlen, cls;
	if (tc__dto_elem(c, TC_SW_REF(w), hash, klen, &vlen, &cls) != e)
		return TC_ECORRUPT;
	return head_check(c, e, hash, klen, vlen, cls, ver, gen);
}

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
	uint32_t hgen = tc__ld(&a->head->aux);
	if (hgen == a->gen) {
		a->prev = TC_SW_REF(a->sw);
		a->count = TC_DTO_COUNT(tc__ld(&a->head->version)) + 1;
		if (a->count > 0xffffffffu) {
			*rc = -EOVERFLOW;
			return A_FAIL;
		}
		return A_GO;
	}
	/* A list of an earlier run, unless a new run began after we read
	 * run_word: then start over.  With checksums, unless its generation
	 * was scribbled: this run's list is not replaced (the run sweep
	 * removes it). */
	tc__rmb();
	if (tc__run_word(c) != a->w)
		return A_AGAIN;
	if (c->csum && (*rc = head_check_at(c, a->head, a->sw, hash, (uint32_t)klen,
					    tc__ld(&a->head->version), hgen)) != 0)
		return A_FAIL;
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

/* Publish the built element E, named in S's inflight, as the list's head:
 * swing the head's word, or insert a new list; either way S names E no
 * more.  A_GO: published; A_AGAIN: the word changed or the insert lost
 * (*RC its code); A_ROOM_SLOT: no index word (*RC -ENOSPC). */
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
			tc__drop_private(c, s, e);
			return A_AGAIN;
		}
		TC_CRASH_POINT(dto_appended);
		tc__st(&s->inflight, 0);
		tc__notify(c, hash);
		if (a->replace) {
			TC_CRASH_POINT(dto_replaced);
			tc__dto_retire_chain(c, s, a->head);
			tc__st(&s->ret_ref, 0);
		}
		return A_GO;
	}
	bool seen;
	/* Counted before the insert, so that a sweep never finds the count
	 * below the heads it would walk for: a kill here leaves it one high
	 * (the cleaner retires the element, which no word names). */
	tc__add(&c->h->dto_heads, 1);
	TC_CRASH_POINT(dto_head_counted);
	int ir = tc__insert(c, hash, key, klen, TC_KIND_DTO, e, &seen);
	if (ir == 0) {
		tc__st(&s->inflight, 0);
		return A_GO;
	}
	tc__add(&c->h->dto_heads, (uint64_t)-1);
	if (seen) {
		tc__retire(c, s, e);
		tc__st(&s->inflight, 0);
	} else {
		tc__drop_private(c, s, e);
	}
	*rc = ir;
	return ir == -ENOSPC ? A_ROOM_SLOT : A_AGAIN;
}

/* An append as its caller asked for it. */
struct append_req {
	uint64_t hash, need;
	const void *key, *dto;
	size_t klen, len;
	uint32_t type;
};

/* One attempt of tc_dto_append (a tc__attempt_fn). */
static bool append_once(tc_cache *c, struct tc_rslot *s, struct tc__room *r, void *ctx, int *rc)
{
	const struct append_req *q = ctx;
	struct append a;
	int next = append_find(c, q->hash, q->key, q->klen, &a, rc);
	if (next != A_GO) {
		tc__exit(c);
		return next == A_FAIL;
	}
	bool again;
	struct tc_entry *e = tc__alloc_or_room(c, s, q->need, r, rc, &again);
	if (!e)
		return !again;
	build_elem(c, e, q->hash, q->key, q->klen, q->type, q->dto, q->len, &a);
	/* Named in inflight until published (see "Crash windows" above). */
	TC_CRASH_POINT(dto_append_built);
	next = append_publish(c, s, e, q->hash, q->key, q->klen, &a, rc);
	if (next != A_GO) {
		tc__exit(c);
		return next == A_ROOM_SLOT && !tc__room_for(c, s, q->need, true, r);
	}
	/* The run must still be the one we appended to (the CAS above was a
	 * full barrier); else the DTO went into an ended run. */
	*rc = tc__run_word(c) == a.w ? 0 : TC_ENORUN;
	if (*rc == 0)
		tc__count(s, TC_C_SETS);
	tc__exit(c);
	if (a.replace)
		tc__maybe_reclaim(c, s);
	return true;
}

int tc_dto_append(tc_cache *c, const void *key, size_t klen, uint32_t type, const void *dto,
		  size_t len)
{
	if (!c || !tc__valid_key(key, klen) || (!dto && len))
		return -EINVAL;
	if (len > TC_VALUE_MAX)
		return -EMSGSIZE;
	struct append_req q = { .hash = tc__hash(c, key, klen, TC_KIND_DTO),
				.need = tc__entry_need(c, klen, len),
				.key = key, .dto = dto, .klen = klen, .len = len, .type = type };
	struct tc__room r = { .sweep_runs = true };
	struct tc_rslot *s;
	int rc = tc__attempts(c, &r, append_once, &q, &s);
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
	uint32_t gen = tc__ld(&e->aux);
	if (gen == RUN_GEN(w))
		*head = e;
	else if (c->csum) /* an earlier run's list, or a scribbled generation? */
		return head_check_at(c, e, *hw, hash, (uint32_t)klen, tc__ld(&e->version), gen);
	return 0;
}

/* Did the run change since W was read?  Loads before this stay before it. */
static inline bool run_moved(tc_cache *c, uint64_t w)
{
	tc__rmb();
	return tc__run_word(c) != w;
}

/* What read_list hands a list to: HEAD (NULL: no DTOs in this run), its
 * slot word HW. */
typedef int (*list_step)(tc_cache *c, struct tc_entry *head, uint64_t hw, void *ctx);

/*
 * Find the list of KEY in the active run and hand it to STEP, inside the
 * caller's read section; again while the run moved meanwhile, so that what
 * STEP saw is of one run.  STEP's result, an error of find_list
 * (TC_ENORUN), or -EAGAIN when the run moved READ_RETRIES times.
 */
static int read_list(tc_cache *c, uint64_t hash, const void *key, size_t klen, list_step step,
		     void *ctx)
{
	int rc = -EAGAIN;
	for (int i = 0; i < READ_RETRIES; i++) {
		struct tc_entry *head;
		uint64_t hw, w;
		rc = find_list(c, hash, key, klen, &head, &hw, &w);
		if (rc)
			return rc;
		rc = step(c, head, hw, ctx);
		if (!run_moved(c, w))
			return rc;
		rc = -EAGAIN;
	}
	return rc;
}

/* A count of tc_dto_count: the list's key, and its count found. */
struct count {
	uint64_t hash;
	uint32_t klen;
	size_t n;
};

static int count_step(tc_cache *c, struct tc_entry *head, uint64_t hw, void *ctx)
{
	struct count *k = ctx;
	k->n = 0;
	if (!head)
		return 0;
	uint64_t ver = tc__ld(&head->version);
	if (c->csum && head_check_at(c, head, hw, k->hash, k->klen, ver, tc__ld(&head->aux)))
		return TC_ECORRUPT;
	k->n = (size_t)TC_DTO_COUNT(ver);
	return 0;
}

int tc_dto_count(tc_cache *c, const void *key, size_t klen, size_t *n)
{
	if (!c || !n || !tc__valid_key(key, klen))
		return -EINVAL;
	*n = 0;
	uint64_t hash = tc__hash(c, key, klen, TC_KIND_DTO);
	struct count cnt = { hash, (uint32_t)klen, 0 };
	struct tc_rslot *s;
	int rc = tc__enter(c, &s);
	if (rc)
		return rc;
	rc = read_list(c, hash, key, klen, count_step, &cnt);
	if (rc == 0)
		*n = cnt.n;
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
					      vlen, ty, gen, tc__eval(e, klen)))
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

/* A walk of tc_dto_each: the list's elements, checked, into ITEMS. */
struct each {
	uint64_t most;     /* elements the arena could hold at all */
	uint32_t klen, type;
	struct item *items;
	uint64_t cap, n;
};

static int each_step(tc_cache *c, struct tc_entry *head, uint64_t hw, void *ctx)
{
	struct each *e = ctx;
	e->n = 0;
	if (!head)
		return 0;
	uint64_t n = TC_DTO_COUNT(tc__ld(&head->version));
	if (n == 0 || n > e->most)
		return TC_ECORRUPT;
	e->n = n;
	return collect(c, head, hw, n, e->klen, e->type, &e->items, &e->cap);
}

int tc_dto_each(tc_cache *c, const void *key, size_t klen, uint32_t type, tc_dto_fn fn,
		void *arg)
{
	if (!c || !fn || !tc__valid_key(key, klen))
		return -EINVAL;
	uint64_t hash = tc__hash(c, key, klen, TC_KIND_DTO);
	/* Every element takes at least its header and its key. */
	struct each e = { .most = c->arena_bytes / tc__entry_bytes(klen, 0),
			  .klen = (uint32_t)klen, .type = type };
	struct tc_rslot *s;
	int rc = tc__enter(c, &s);
	if (rc)
		return rc;
	/* The run stayed active across the walk: the snapshot is one of this
	 * run (not of appends after its end). */
	rc = read_list(c, hash, key, klen, each_step, &e);
	/* Zero copy: every element stays valid until our section ends, even
	 * when the run ends meanwhile.  Oldest first, each as the walk
	 * checked it (nothing is loaded again). */
	for (uint64_t k = e.n; rc == 0 && k-- > 0;)
		rc = fn(e.items[k].val, e.items[k].vlen, arg);
	tc__exit(c);
	free(e.items);
	count_rc(s, rc < 0 ? rc : 0);
	return rc;
}

struct dkey {
	uint8_t key[TC_KEY_MAX];
	size_t klen;
	size_t count;
};

/* The lists of one bucket as tc_dto_keys collects them. */
struct dkeys {
	struct tc__walk walk; /* first: the walk's callback finds the rest */
	uint32_t gen;         /* the run's */
	struct dkey *f;
	int n;
	bool bad;             /* a head failed its checksum: skipped */
};

static void dkey_visit(tc_cache *c, struct tc__walk *w, struct tc_rslot *rs, uint64_t *slotp,
		       uint64_t word, const struct tc__sview *v)
{
	(void)rs;
	(void)slotp;
	(void)word;
	struct dkeys *k = (struct dkeys *)w;
	if (v->kind != TC_KIND_DTO)
		return;
	uint32_t gen = tc__ld(&v->e->aux);
	if (gen != k->gen && !c->csum)
		return;
	/* The key length was loaded once and checked (1..TC_KEY_MAX): that
	 * copy alone sizes the copy and the callback.  With checksums the
	 * head is verified under the hash of the key bytes copied (a walk
	 * has no caller's key to compare) with the count handed out. */
	struct dkey *f = &k->f[k->n];
	uint64_t ver = tc__ld(&v->e->version);
	memcpy(f->key, tc__ekey(v->e), v->klen);
	if (c->csum && head_check(c, v->e, tc__hash(c, f->key, v->klen, TC_KIND_DTO), v->klen,
				  v->vlen, v->cls, ver, gen)) {
		k->bad = true;
		return;
	}
	if (gen != k->gen)
		return; /* an earlier run's list */
	f->klen = v->klen;
	f->count = (size_t)TC_DTO_COUNT(ver);
	k->n++;
}

int tc_dto_keys(tc_cache *c, tc_dto_key_fn fn, void *arg)
{
	if (!c || !fn)
		return -EINVAL;
	uint64_t w = tc__run_word(c);
	if (!RUN_REF(w))
		return TC_ENORUN;
	struct dkeys k = { .walk.fn = dkey_visit, .gen = RUN_GEN(w),
			   .f = malloc(sizeof(struct dkey) * TC_BUCKET_SLOTS) };
	if (!k.f)
		return -ENOMEM;
	int rc = 0, bad = 0;
	for (uint64_t bi = 0; bi < c->nbuckets && rc == 0; bi++) {
		struct tc_rslot *s;
		rc = tc__enter(c, &s);
		if (rc)
			break;
		k.n = 0;
		if (!tc__walk_bucket(c, &k.walk, bi, s) || k.bad)
			bad = TC_ECORRUPT; /* skipped, reported at the end */
		if (run_moved(c, w))
			rc = TC_ENORUN; /* the run ended: its keys are gone */
		tc__exit(c);
		for (int i = 0; i < k.n && rc == 0; i++)
			rc = fn(k.f[i].key, k.f[i].klen, k.f[i].count, arg);
	}
	free(k.f);
	return rc ? rc : bad;
}

/* ---- tc_audit hooks ------------------------------------------------------ */

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
