/* SPDX-License-Identifier: MIT */
/*
 * test_crashpoints.c - a writer killed at every crash point of the code.
 *
 * The library under test is the crash-point build (build/crash/, compiled
 * with -DTC_CRASHPOINTS): at each TC_CRASH_POINT(name) of shm/ it kills the
 * process with SIGKILL when TICKCACHE_CRASH_AT=name:nth selects that pass.
 * The list of points, crashpoints.h, is generated from the sources at build
 * time (tools/crashpoints.sh), so a point added to the code without an
 * entry in specs[] below fails test_every_point_has_a_workload, and one
 * without a row in docs/design.md's crash-point table fails
 * test_design_table_lists_every_point.
 *
 * For each point in turn: create a segment, fill it (so that the arena is
 * carved out and later writes move memory between classes), fork a child
 * that runs the point's workload with the point armed, and check that the
 * child was killed there (a child that finishes never reached the point:
 * a failure).  Then, as the survivor:
 *  1. no survivor blocks: 16 set/get/del of its own keys return exactly 0;
 *  2. online recovery: tc_sweep (which clears dead slots and finishes a dead
 *     coalescer's work), then a census of the arena: the blocks that no
 *     index word, header root, free list, retire list or pending chain
 *     names, plus runs of carved units without a header, must be exactly
 *     the leak the spec expects, never more than design.md's bound, and the
 *     live-key count and the DTO list heads count exactly as far off as the
 *     spec says;
 *  3. tc_audit of the idle segment returns 0, leaves nothing unnamed and
 *     both counts exact; deleting every key (and run, list and policy), the
 *     arena is empty (tc_stats.dto_lists 0 too):
 *     no block in use, every carved block free; filled again to -ENOSPC and
 *     emptied again, still empty;
 *  4. a value of the largest size class the arena can hold is stored, read
 *     back and deleted: coalescing works over the whole arena.
 * test_write_paths_pass_every_point also checks at which step of a script
 * each pass of a write's read_section and alloc_* points happens, on every
 * path a write takes to them.
 */
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "whitebox.h"

/* ---- the points, from the code ------------------------------------------ */

struct point {
	const char *name;
	const char *file;
};

static const struct point points[] = {
#define TC_CP(n, f) { #n, f },
#include "crashpoints.h"
#undef TC_CP
};
#define NPOINTS (sizeof(points) / sizeof(points[0]))

/* ---- what each point's workload is and what a kill there leaves ---------- */

enum workload {
	W_WRITES,   /* sets, adds, deletes, cas, incr, expire of 8-900 B values, reclaims, sweeps */
	W_RETIRE,   /* 40 inserts, 40 updates (40 retired blocks), one reclaim, 40 deletes */
	W_CARVE,    /* inserts into a fresh arena: every block carved */
	W_ENTRIES,  /* inserts beyond max_entries */
	W_COALESCE, /* 2 KiB values into an arena carved into 256 B blocks, all free */
	W_LRU,      /* the same under LRU, over an arena full of live 256 B keys */
	W_RUNS,     /* six runs of four DTO lists of three; ended lists replaced or swept */
	W_POLICY,   /* six TTL policy changes */
	W_CLEAN,    /* tc_readers_clean of a slot left by the pre-stage */
	W_STEAL,    /* tc_reclaim taking over a dead slot's pending chain */
	W_AUDIT,    /* tc_audit, alone on the segment */
	W_LEASE,    /* tc_lease_acquire */
	W_SNAPSHOT, /* tc_snapshot_load of ten keys */
	W_SAVE,     /* tc_snapshot_save of ten keys over an earlier snapshot */
	W_CREATE,   /* tc_open creating another segment */
	W_WAKE,     /* one set of the key a waiter (another child) sleeps on */
	W_FOLD,     /* FOLD_SETS sets, then tc_close gives the slot back (its counters) */
	W_UNLINK,   /* tc_unlink of another segment, which the parent holds open */
	W_DELFULL,  /* a delete in a segment that holds max_entries keys */
};

/* Leak bounds that are not a number of blocks (design.md's wording). */
enum { LEAK_LIST = -1, LEAK_ANY = -2 };

struct spec {
	const char *point;
	enum workload wl;
	int nth;        /* the pass of the point the child dies at */
	int leak;       /* exact blocks unnamed after online recovery (LEAK_ANY: not exact) */
	int bound;      /* design.md's bound for the point: blocks, LEAK_LIST or LEAK_ANY */
	int live_off;   /* live-key count minus the index's FINAL words, before the audit */
	const char *pre;/* a point a first child dies at before this one runs (same table) */
	int sv;         /* the survivor's new keys: SV_OK (0), or the code design.md allows */
	int dto_off;    /* dto_heads minus the index's DTO list heads, before the audit */
	int tent;       /* TENT words left after online recovery (until the audit) */
};

/* A killed audit leaves the free blocks it had not relinked yet named by
 * no list until the next audit (design.md section 8): a survivor's write
 * that needs them gets -ENOSPC, at once. */
#define SV_OK 0

static const struct spec specs[] = {
	/* alloc.c */
	{ "alloc_popped",      W_WRITES,   3, 1, 1, 0, NULL, SV_OK, 0, 0 },
	{ "alloc_taken",       W_WRITES,   3, 1, 1, 0, NULL, SV_OK, 0, 0 },
	{ "alloc_carved",      W_CARVE,    3, 1, 1, 0, NULL, SV_OK, 0, 0 },
	{ "alloc_class_copy",  W_CARVE,    3, 1, 1, 0, NULL, SV_OK, 0, 0 },
	{ "alloc_ready",       W_WRITES,   3, 0, 0, 0, NULL, SV_OK, 0, 0 },
	/* audit.c */
	{ "audit_relink",      W_AUDIT,    3, LEAK_ANY, LEAK_ANY, 0, NULL, -ENOSPC, 0, 0 },
	{ "audit_state",       W_AUDIT,    1, 0, 0, 0, NULL, SV_OK, 0, 0 },
	/* coalesce.c */
	{ "free_unlisted",     W_RETIRE,   1, 1, 1, 0, NULL, SV_OK, 0, 0 },
	{ "coalesce_rewrite",  W_COALESCE, 2, 0, 0, 0, NULL, SV_OK, 0, 0 },
	{ "coalesce_push",     W_COALESCE, 2, 0, 0, 0, NULL, SV_OK, 0, 0 },
	{ "coalesce_claiming", W_COALESCE, 2, 0, 0, 0, NULL, SV_OK, 0, 0 },
	{ "coalesce_popped",   W_COALESCE, 1, 1, 1, 0, NULL, SV_OK, 0, 0 },
	{ "coalesce_held",     W_COALESCE, 1, 0, 0, 0, NULL, SV_OK, 0, 0 },
	{ "coalesce_leased",   W_COALESCE, 1, 0, 0, 0, NULL, SV_OK, 0, 0 },
	{ "coalesce_claimed",  W_COALESCE, 1, 0, 0, 0, NULL, SV_OK, 0, 0 },
	{ "coalesce_drained",  W_COALESCE, 1, 0, 0, 0, NULL, SV_OK, 0, 0 },
	{ "coalesce_live",     W_COALESCE, 1, 0, 0, 0, NULL, SV_OK, 0, 0 },
	/* epoch.c */
	{ "slot_claimed",      W_WRITES,   1, 0, 0, 0, NULL, SV_OK, 0, 0 },
	{ "read_section",      W_WRITES,  50, 0, 0, 0, NULL, SV_OK, 0, 0 },
	{ "retire_marked",     W_RETIRE,   1, 1, 1, 0, NULL, SV_OK, 0, 0 },
	{ "retire_pushed",     W_RETIRE,   1, 0, 0, 0, NULL, SV_OK, 0, 0 },
	{ "reclaim_walk",      W_RETIRE,   1, 1, 1, 0, NULL, SV_OK, 0, 0 },
	{ "reclaim_stolen",    W_STEAL,    1, 0, 0, 0, "reclaim_walk", SV_OK, 0, 0 },
	{ "reclaim_detached",  W_RETIRE,   1, 0, 0, 0, NULL, SV_OK, 0, 0 },
	{ "clean_claimed",     W_CLEAN,    1, 0, 0, 0, "write_built", SV_OK, 0, 0 },
	{ "clean_inflight",    W_CLEAN,    1, 0, 0, 0, "write_built", SV_OK, 0, 0 },
	{ "clean_unlinked",    W_CLEAN,    1, 0, 0, 0, "update_unlinked", SV_OK, 0, 0 },
	{ "clean_released",    W_CLEAN,    1, 0, 0, 0, "write_built", SV_OK, 0, 0 },
	/* policy.c */
	{ "policy_built",      W_POLICY,   2, 0, 0, 0, NULL, SV_OK, 0, 0 },
	{ "policy_swapped",    W_POLICY,   2, 0, 0, 0, NULL, SV_OK, 0, 0 },
	/* run.c */
	{ "run_start_built",   W_RUNS,     2, 0, 0, 0, NULL, SV_OK, 0, 0 },
	{ "run_started",       W_RUNS,     2, 0, 0, 0, NULL, SV_OK, 0, 0 },
	{ "run_end_noted",     W_RUNS,     1, 0, 0, 0, NULL, SV_OK, 0, 0 },
	{ "run_ended",         W_RUNS,     1, 0, 0, 0, NULL, SV_OK, 0, 0 },
	{ "dto_chain_walk",    W_RUNS,     1, 2, LEAK_LIST, 0, NULL, SV_OK, 0, 0 },
	{ "dto_list_reserved", W_RUNS,     1, 0, 0, -1, NULL, SV_OK, 0, 0 },
	{ "dto_list_unlinked", W_RUNS,     1, 0, 0, 0, NULL, SV_OK, 1, 0 },
	{ "dto_append_built",  W_RUNS,     5, 0, 0, 0, NULL, SV_OK, 0, 0 },
	{ "dto_appended",      W_RUNS,     5, 0, 0, 0, NULL, SV_OK, 0, 0 },
	{ "dto_head_counted",  W_RUNS,     1, 0, 0, 0, NULL, SV_OK, 1, 0 },
	{ "dto_replaced",      W_RUNS,     1, 0, 0, 0, NULL, SV_OK, 0, 0 },
	/* segment.c */
	{ "unlink_marked",     W_UNLINK,   1, 0, 0, 0, NULL, SV_OK, 0, 0 },
	{ "create_building",   W_CREATE,   1, 0, 0, 0, NULL, SV_OK, 0, 0 },
	/* snapshot.c */
	{ "snapshot_record",   W_SNAPSHOT, 4, 0, 0, 0, NULL, SV_OK, 0, 0 },
	{ "snapshot_saving",   W_SAVE,     4, 0, 0, 0, NULL, SV_OK, 0, 0 },
	/* sweep.c */
	{ "lease_claiming",    W_LEASE,    1, 0, 0, 0, NULL, SV_OK, 0, 0 },
	/* table.c */
	{ "insert_claimed",    W_WRITES,   2, 0, 0, 0, NULL, SV_OK, 0, 0 },
	{ "insert_rescanned",  W_WRITES,   2, 0, 0, 0, NULL, SV_OK, 0, 0 },
	{ "remove_reserved",   W_WRITES,   2, 0, 0, -1, NULL, SV_OK, 0, 0 },
	{ "remove_unlinked",   W_WRITES,   2, 0, 0, 0, NULL, SV_OK, 0, 0 },
	{ "remove_woken",      W_WRITES,   2, 0, 0, 0, NULL, SV_OK, 0, 0 },
	{ "drop_private_freed", W_LRU,     1, 0, 0, 0, NULL, SV_OK, 0, 0 },
	{ "write_early_block", W_WRITES,   3, 0, 0, 0, NULL, SV_OK, 0, 0 },
	{ "write_built",       W_WRITES,   3, 0, 0, 0, NULL, SV_OK, 0, 0 },
	{ "update_noted",      W_WRITES,   2, 0, 0, 0, NULL, SV_OK, 0, 0 },
	{ "update_swapped",    W_WRITES,   2, 0, 0, 0, NULL, SV_OK, 0, 0 },
	{ "update_unlinked",   W_WRITES,   2, 0, 0, 0, NULL, SV_OK, 0, 0 },
	{ "update_retired",    W_WRITES,   2, 0, 0, 0, NULL, SV_OK, 0, 0 },
	{ "slot_emptied",      W_FOLD,     1, 0, 0, 0, NULL, SV_OK, 0, 0 },
	{ "publish_unwoken",   W_WAKE,     1, 0, 0, 0, NULL, SV_OK, 0, 0 },
	{ "wake_bumped",       W_WAKE,     1, 0, 0, 0, NULL, SV_OK, 0, 0 },
	{ "insert_published",  W_WRITES,   2, 0, 0, -1, NULL, SV_OK, 0, 0 },
	{ "insert_first_published", W_RUNS, 1, 0, 0, -1, NULL, SV_OK, 0, 0 },
};
#define NSPECS (sizeof(specs) / sizeof(specs[0]))

/*
 * A recoverer killed while it holds the coalescer's turn with its own slot
 * (9428afd): the pre-stage kills a coalescer in the phase whose point the
 * recoverer (tc_readers_clean, which finishes the dead coalescer's work)
 * then dies at, so that the turn word names the recoverer's slot.  The
 * survivor's sweep must take the turn over from it and finish the work.
 */
static const struct spec recoverer_specs[] = {
	{ "coalesce_rewrite",  W_CLEAN,    1, 0, 0, 0, "coalesce_rewrite", SV_OK, 0, 0 },
	{ "coalesce_push",     W_CLEAN,    1, 0, 0, 0, "coalesce_push", SV_OK, 0, 0 },
};
#define NRSPECS (sizeof(recoverer_specs) / sizeof(recoverer_specs[0]))

/*
 * The first element of a DTO list killed inside its insert: as an ordinary
 * key's block it is named in its builder's slot until it is published
 * (dto_append_built), so the cleaner aborts its TENT word and retires it;
 * dto_heads was raised before the insert (dto_head_counted) and stays one
 * high until the audit.  design.md's rows of these points give this bound.
 */
static const struct spec dto_insert_specs[] = {
	{ "insert_claimed",    W_RUNS,     1, 0, 0, 0, NULL, SV_OK, 1, 0 },
	{ "insert_rescanned",  W_RUNS,     1, 0, 0, 0, NULL, SV_OK, 1, 0 },
};
#define NDSPECS (sizeof(dto_insert_specs) / sizeof(dto_insert_specs[0]))

/*
 * A deleter killed in a segment that holds max_entries keys: the survivor
 * must be able to store the key whose place the delete freed (README:
 * max_entries live keys), before any audit.
 */
static const struct spec full_specs[] = {
	{ "remove_unlinked",   W_DELFULL,  1, 0, 0, 0, NULL, SV_OK, 0, 0 },
};
#define NFSPECS (sizeof(full_specs) / sizeof(full_specs[0]))

static const struct spec *spec_of(const char *point)
{
	for (size_t i = 0; i < NSPECS; i++)
		if (strcmp(specs[i].point, point) == 0)
			return &specs[i];
	return NULL;
}

static const struct point *point_of(const char *name)
{
	for (size_t i = 0; i < NPOINTS; i++)
		if (strcmp(points[i].name, name) == 0)
			return &points[i];
	return NULL;
}

struct verdict {
	char why[1024];
};

/* Pass or fail. */
static void conclude(const char *test, const struct verdict *v)
{
	if (v->why[0])
		fail_msg("%s: %s", test, v->why);
}

/* design.md's wording of a bound, exactly. */
static const char *bound_text(int bound, char *buf, size_t cap)
{
	if (bound == LEAK_LIST)
		return "the rest of the list";
	if (bound == LEAK_ANY)
		return "free blocks, until the next audit";
	if (bound == 0)
		return "0";
	snprintf(buf, cap, "%d block%s", bound, bound == 1 ? "" : "s");
	return buf;
}

/* ---- geometry and the segment's life ------------------------------------- */

#define ARENA     (256u * 1024u)
#define KEYS      64
#define SNAP_KEYS 10

static uint64_t entries_of(enum workload w)
{
	return w == W_ENTRIES || w == W_DELFULL ? 64 : 4096;
}

static int eviction_of(enum workload w)
{
	return w == W_LRU ? TC_EVICT_LRU : TC_EVICT_NONE;
}

/*
 * The block size the fills use: a power of two (so that blocks tile the
 * arena exactly and a fill carves all of it) large enough that the fill
 * reaches the end of the arena before max_entries.
 */
static uint64_t fill_block(tc_cache *c)
{
	uint64_t b = 256;
	while (c->arena_bytes / b > c->max_entries / 2)
		b *= 2;
	return b;
}

/* Fill the arena with keys of one power-of-two class: to -ENOSPC (or, under
 * LRU, twice over).  Returns the keys written, or -1 on another code. */
static int fill(tc_cache *c, char *why, size_t cap)
{
	uint64_t b = fill_block(c), len = b - TC_ENTRY_HDR - 8; /* key "fNNNNNN": 8 bytes */
	uint64_t most = 2 * c->arena_bytes / b;
	static uint8_t val[64 * 1024];
	memset(val, 0x5a, sizeof(val));
	for (uint64_t i = 0; i < most; i++) {
		char key[16];
		snprintf(key, sizeof(key), "f%06u", (unsigned)i);
		int rc = tc_set(c, key, strlen(key), val, len, 7, 0);
		if (rc == -ENOSPC && c->eviction == TC_EVICT_NONE)
			return (int)i;
		if (rc != 0) {
			snprintf(why, cap, "fill: tc_set(%s) = %s", key, tc_strerror(rc));
			return -1;
		}
	}
	if (c->eviction == TC_EVICT_NONE) {
		snprintf(why, cap, "fill: %llu keys and no -ENOSPC", (unsigned long long)most);
		return -1;
	}
	return (int)most;
}

static const char *const policy_prefixes[] = { "p0:", "p1:", "p2:", "p3:", "p4:", "p5:" };

/* Delete every key, list, run and policy; reclaim. 0 or the first bad code. */
static int delete_all(tc_cache *c)
{
	int rc = tc_run_end(c);
	if (rc != 0 && rc != TC_ENORUN)
		return rc;
	for (size_t i = 0; i < sizeof(policy_prefixes) / sizeof(policy_prefixes[0]); i++) {
		rc = tc_ttl_policy_del(c, policy_prefixes[i]);
		if (rc != 0 && rc != -ENOENT)
			return rc;
	}
	uint64_t n;
	if ((rc = tc_purge(c, NULL, &n)) != 0)
		return rc;
	tc_sweep_report sr;
	if ((rc = tc_sweep(c, 0, &sr)) != 0)
		return rc;
	return tc_reclaim(c, NULL);
}

/* ---- the census: what names every block ---------------------------------- */

struct census {
	uint64_t blocks;     /* blocks with a header in the carved arena */
	uint64_t reachable;  /* named by the index (and its lists) or a header root */
	uint64_t unnamed;    /* named by nothing: neither reachable nor on any list */
	uint64_t headerless; /* runs of carved units without a header */
	uint64_t tent;       /* TENT words in the index */
	uint64_t final;      /* FINAL words in the index */
	uint64_t dto;        /* of which DTO list heads */
	bool bad;            /* a ref out of bounds or an unwalkable arena */
};

struct marks {
	tc_cache *c;
	uint64_t *bits;
	bool bad;
};

static void mark(void *ctx, uint64_t ref)
{
	struct marks *m = ctx;
	if (ref == 0 || ref > m->c->arena_units) {
		m->bad = true;
		return;
	}
	m->bits[(ref - 1) / 64] |= 1ull << ((ref - 1) % 64);
}

static bool is_marked(const struct marks *m, uint64_t ref)
{
	return (m->bits[(ref - 1) / 64] >> ((ref - 1) % 64)) & 1;
}

static void mark_chain(struct marks *m, uint64_t ref)
{
	for (uint64_t n = 0; ref && n <= m->c->arena_units; n++) {
		struct tc_entry *e = tc__block(m->c, ref);
		if (!e) {
			m->bad = true;
			return;
		}
		mark(m, ref);
		ref = tc__ld(&e->link);
	}
}

static bool header_ok(uint32_t st)
{
	return st == TC_BLK_FREE || st == TC_BLK_LIVE || st == TC_BLK_RETIRED ||
	       st == TC_BLK_CLAIMED || st == TC_BLK_OUT;
}

/* Count over the arena of a quiescent segment; *out filled. */
static void take_census(tc_cache *c, struct census *out)
{
	struct marks m = { c, calloc((c->arena_units + 63) / 64, 8), false };
	memset(out, 0, sizeof(*out));
	assert_non_null(m.bits);
	WB_EACH_SLOT(c, w) {
		if (TC_SW_STATE(w) != TC_SW_FINAL) {
			out->tent++;
			continue;
		}
		out->final++;
		struct tc_entry *e = tc__block(c, TC_SW_REF(w));
		if (!e) {
			m.bad = true;
			continue;
		}
		if (tc__ld(&e->kind) == TC_KIND_DTO)
			out->dto++;
		mark(&m, TC_SW_REF(w));
		tc__audit_entry(c, e, mark, &m);
	}
	tc__audit_roots(c, mark, &m);
	for (uint64_t w = 0; w < (c->arena_units + 63) / 64; w++)
		out->reachable += (uint64_t)__builtin_popcountll(m.bits[w]);
	for (uint32_t k = 0; k < TC_CLASSES_USED; k++)
		mark_chain(&m, tc__ld(&c->h->cls[k].head) & 0xffffffffu);
	mark_chain(&m, tc__ld(&c->h->retire_head) & 0xffffffffu);
	for (uint32_t i = 0; i < c->nslots; i++)
		mark_chain(&m, TC_RECLAIM_REF(tc__ld(&c->slots[i].reclaim)));
	mark_chain(&m, tc__ld(&c->h->df_held));
	uint64_t end = tc__carved(c);
	bool in_gap = false;
	if (end == TC_BUMP_BAD)
		m.bad = true;
	for (uint64_t u = 0; u < end && u < c->arena_units;) {
		struct tc_entry *e = (struct tc_entry *)(c->arena + u * TC_BLOCK_UNIT);
		if (!header_ok(tc__ld(&e->state))) {
			if (!in_gap)
				out->headerless++;
			in_gap = true;
			u++;
			continue;
		}
		in_gap = false;
		uint32_t cls = tc__ld(&e->cls);
		uint64_t units = cls < TC_CLASSES_USED ? tc__class_size(cls) / TC_BLOCK_UNIT : 0;
		if (!units || u + units > end) {
			m.bad = true;
			break;
		}
		out->blocks++;
		if (!is_marked(&m, u + 1))
			out->unnamed++;
		u += units;
	}
	out->bad = m.bad;
	free(m.bits);
}

/* ---- verdicts: every failed check is collected ---------------------------- */

static void note(struct verdict *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(struct verdict *v, const char *fmt, ...)
{
	size_t n = strlen(v->why);
	if (n + 4 >= sizeof(v->why))
		return;
	if (n)
		n += (size_t)snprintf(v->why + n, sizeof(v->why) - n, "; ");
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(v->why + n, sizeof(v->why) - n, fmt, ap);
	va_end(ap);
}

#define EXPECT_RC(v, exp, call)                                                       \
	do {                                                                          \
		int e_ = (exp), g_ = (call);                                          \
		if (e_ != g_)                                                         \
			note((v), "%s = %s, expected %s", #call, tc_strerror(g_),     \
			     tc_strerror(e_));                                        \
	} while (0)

/* ---- the children's workloads --------------------------------------------- */

/* A code the workload did not expect: the child reports it and exits 3. */
static void child_want(int rc, int a, int b, const char *what)
{
	if (rc == a || rc == b)
		return;
	fprintf(stderr, "child %d: %s = %s\n", (int)getpid(), what, tc_strerror(rc));
	_exit(3);
}

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void wl_writes(tc_cache *c)
{
	static uint8_t val[1024], buf[1024];
	uint64_t rng = 0x9e3779b97f4a7c15ull;
	memset(val, 0x33, sizeof(val));
	for (int n = 0; n < 3000; n++) {
		unsigned i = (unsigned)(rnd(&rng) % KEYS), op = (unsigned)(rnd(&rng) % 100);
		size_t len = 8 + (size_t)(rnd(&rng) % 900);
		char key[16];
		tc_meta m;
		snprintf(key, sizeof(key), "w%u", i);
		size_t kl = strlen(key);
		if (op < 40) {
			child_want(tc_set(c, key, kl, val, len, 1, 0), 0, 0, "set");
		} else if (op < 50) {
			child_want(tc_add(c, key, kl, val, len, 1, 0), 0, -EEXIST, "add");
		} else if (op < 65) {
			child_want(tc_del(c, key, kl), 0, -ENOENT, "del");
		} else if (op < 75) {
			int rc = tc_get(c, key, kl, buf, sizeof(buf), &m);
			child_want(rc, 0, -ENOENT, "get");
			if (rc == 0)
				child_want(tc_cas(c, key, kl, m.version, val, len / 2, 1, 0), 0, 0,
					   "cas");
		} else if (op < 85) {
			snprintf(key, sizeof(key), "ctr%u", i % 4);
			child_want(tc_incr(c, key, strlen(key), 1, 0, NULL), 0, 0, "incr");
		} else if (op < 92) {
			child_want(tc_expire(c, key, kl, 3600 * 1000), 0, -ENOENT, "expire");
		} else if (op < 97) {
			child_want(tc_get(c, key, kl, buf, sizeof(buf), &m), 0, -ENOENT, "get");
		} else {
			child_want(tc_reclaim(c, NULL), 0, 0, "reclaim");
		}
		if (n % 500 == 499)
			child_want(tc_sweep(c, 0, NULL), 0, 0, "sweep");
	}
}

static void wl_retire(tc_cache *c)
{
	uint8_t val[64];
	memset(val, 0x44, sizeof(val));
	for (int pass = 0; pass < 2; pass++) {
		for (int i = 0; i < 40; i++) {
			char key[16];
			snprintf(key, sizeof(key), "r%d", i);
			child_want(tc_set(c, key, strlen(key), val, sizeof(val), 2, 0), 0, 0, "set");
		}
	}
	child_want(tc_reclaim(c, NULL), 0, 0, "reclaim");
	for (int i = 0; i < 40; i++) {
		char key[16];
		snprintf(key, sizeof(key), "r%d", i);
		child_want(tc_del(c, key, strlen(key)), 0, 0, "del");
	}
	child_want(tc_reclaim(c, NULL), 0, 0, "reclaim");
}

/* Values sized like the fills' (256 B blocks), so carving keeps the arena
 * tiled by them. */
static void wl_carve(tc_cache *c)
{
	uint8_t val[256 - TC_ENTRY_HDR - 8];
	memset(val, 0x55, sizeof(val));
	for (int i = 0; i < 20; i++) {
		char key[16];
		snprintf(key, sizeof(key), "c%06d", i);
		child_want(tc_set(c, key, strlen(key), val, sizeof(val), 3, 0), 0, 0, "set");
	}
}

static void wl_entries(tc_cache *c)
{
	uint8_t val[100];
	memset(val, 0x66, sizeof(val));
	for (int i = 0; i < 80; i++) {
		char key[16];
		snprintf(key, sizeof(key), "e%d", i);
		child_want(tc_set(c, key, strlen(key), val, sizeof(val), 4, 0), 0, -ENOSPC, "set");
	}
}

static void wl_coalesce(tc_cache *c)
{
	static uint8_t val[2000];
	memset(val, 0x77, sizeof(val));
	for (int i = 0; i < 30; i++) {
		char key[16];
		snprintf(key, sizeof(key), "g%d", i);
		child_want(tc_set(c, key, strlen(key), val, sizeof(val), 5, 0), 0, 0, "set");
	}
}

static void wl_runs(tc_cache *c)
{
	uint8_t dto[128];
	memset(dto, 0x88, sizeof(dto));
	for (int r = 0; r < 6; r++) {
		child_want(tc_run_start(c, (int64_t)r * 1000, (uint64_t)r), 0, 0, "run_start");
		for (int k = 0; k < 4; k++) {
			char key[16];
			snprintf(key, sizeof(key), "d%d", k);
			for (int j = 0; j < 3; j++)
				child_want(tc_dto_append(c, key, strlen(key), (uint32_t)j, dto,
							 40 + 30 * (size_t)j),
					   0, 0, "dto_append");
		}
		child_want(tc_run_end(c), 0, 0, "run_end");
		if (r % 2 == 1)
			child_want(tc_sweep(c, 0, NULL), 0, 0, "sweep");
	}
}

static void wl_policy(tc_cache *c)
{
	for (size_t i = 0; i < sizeof(policy_prefixes) / sizeof(policy_prefixes[0]); i++)
		child_want(tc_ttl_policy_set(c, policy_prefixes[i], 60000 + i), 0, 0, "policy_set");
}

static char snap_path[128];
#define WAKE_KEY "wk"
#define FOLD_SETS 10

static char create_name[TC_NAME_MAX + 1];

static void run_workload(const char *seg, enum workload w)
{
	tc_cache *c = NULL;
	if (w == W_CREATE) {
		tc_opts o = wb_opts(64, 64 * 1024, 4, TC_EVICT_NONE);
		child_want(tc_open(&c, create_name, &o), 0, 0, "create");
		return;
	}
	if (w == W_UNLINK) {
		child_want(tc_unlink(create_name), 0, 0, "unlink");
		return;
	}
	child_want(tc_open(&c, seg, NULL), 0, 0, "open");
	switch (w) {
	case W_WRITES:   wl_writes(c); break;
	case W_RETIRE:   wl_retire(c); break;
	case W_CARVE:    wl_carve(c); break;
	case W_ENTRIES:  wl_entries(c); break;
	case W_COALESCE:
	case W_LRU:      wl_coalesce(c); break;
	case W_RUNS:     wl_runs(c); break;
	case W_POLICY:   wl_policy(c); break;
	case W_CLEAN: {
		uint32_t n;
		child_want(tc_readers_clean(c, &n), 0, 0, "readers_clean");
		break;
	}
	case W_STEAL:    child_want(tc_reclaim(c, NULL), 0, 0, "reclaim"); break;
	case W_AUDIT: {
		tc_audit_report r;
		child_want(tc_audit(c, &r), 0, 0, "audit");
		break;
	}
	case W_LEASE: {
		uint32_t h;
		child_want(tc_lease_acquire(c, 0, &h), 0, 0, "lease_acquire");
		break;
	}
	case W_SNAPSHOT: {
		tc_snapshot_report r;
		child_want(tc_snapshot_load(c, snap_path, 0, &r), 0, 0, "snapshot_load");
		break;
	}
	case W_SAVE: {
		tc_snapshot_report r;
		child_want(tc_snapshot_save(c, snap_path, &r), 0, 0, "snapshot_save");
		break;
	}
	case W_WAKE: {
		uint8_t val[50];
		memset(val, 0xaa, sizeof(val));
		child_want(tc_set(c, WAKE_KEY, strlen(WAKE_KEY), val, sizeof(val), 1, 0), 0, 0,
			   "set");
		break;
	}
	case W_FOLD: {
		uint8_t val[50];
		memset(val, 0xab, sizeof(val));
		for (int i = 0; i < FOLD_SETS; i++) {
			char key[16];
			snprintf(key, sizeof(key), "o%d", i);
			child_want(tc_set(c, key, strlen(key), val, sizeof(val), 1, 0), 0, 0, "set");
		}
		break;
	}
	case W_DELFULL:  child_want(tc_del(c, "e0", 2), 0, 0, "del"); break;
	case W_CREATE:
	case W_UNLINK:   break;
	}
	tc_close(c);
}

/*
 * Run workload W in a child armed to die at POINT's NTH pass.  0 when it
 * died there (SIGKILL); else a note in V.
 */
static int kill_child_at(struct verdict *v, const char *seg, enum workload w, const char *point,
			 int nth)
{
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char at[96];
		alarm(60);
		snprintf(at, sizeof(at), "%s:%d", point, nth);
		setenv("TICKCACHE_CRASH_AT", at, 1);
		run_workload(seg, w);
		_exit(0);
	}
	int st = fx_wait(pid);
	if (st == 128 + SIGKILL)
		return 0;
	if (st == 0)
		note(v, "point %s (pass %d) not reached by its workload", point, nth);
	else if (st == 128 + SIGALRM)
		note(v, "the workload of %s hung", point);
	else
		note(v, "the workload of %s failed (status %d)", point, st);
	return -1;
}

/* ---- the checks ------------------------------------------------------------ */

/* 1. No survivor blocks: its own keys, exact codes and bytes. */
static void check_survivor(struct verdict *v, tc_cache *c, bool full, int sv)
{
	uint8_t val[100], buf[128];
	tc_meta m;
	alarm(60);
	if (full) {
		/* The index holds max_entries keys: a new key gets -ENOSPC at once. */
		EXPECT_RC(v, -ENOSPC, tc_set(c, "sv", 2, val, sizeof(val), 9, 0));
		EXPECT_RC(v, 0, tc_get(c, "e0", 2, buf, sizeof(buf), &m));
		alarm(0);
		return;
	}
	for (int i = 0; i < 16; i++) {
		char key[16];
		snprintf(key, sizeof(key), "sv%d", i);
		memset(val, i, sizeof(val));
		if (sv != SV_OK) {
			EXPECT_RC(v, sv, tc_set(c, key, strlen(key), val, sizeof(val), 9, 0));
			EXPECT_RC(v, -ENOENT, tc_get(c, key, strlen(key), buf, sizeof(buf), &m));
			continue;
		}
		EXPECT_RC(v, 0, tc_set(c, key, strlen(key), val, sizeof(val), 9, 0));
		int rc = tc_get(c, key, strlen(key), buf, sizeof(buf), &m);
		if (rc != 0 || m.len != sizeof(val) || memcmp(buf, val, sizeof(val)) != 0)
			note(v, "survivor read %s: %s, %zu bytes", key, tc_strerror(rc), m.len);
		EXPECT_RC(v, 0, tc_del(c, key, strlen(key)));
	}
	alarm(0);
}

static void census_or_note(struct verdict *v, tc_cache *c, struct census *k, const char *when)
{
	take_census(c, k);
	if (k->bad)
		note(v, "%s: the census met a bad ref or an unwalkable arena", when);
}

/* 4. The largest class the arena holds, stored, read back, deleted. */
static void check_largest(struct verdict *v, tc_cache *c)
{
	uint32_t k = 0;
	while (k + 1 < TC_CLASSES_USED && tc__class_size(k + 1) <= c->arena_bytes)
		k++;
	size_t len = tc__class_size(k) - TC_ENTRY_HDR - 8;
	uint8_t *val = malloc(len), *buf = malloc(len);
	assert_non_null(val);
	assert_non_null(buf);
	memset(val, 0xbb, len);
	tc_meta m;
	/* At the first call, wherever the last search left df_hand
	 * (test_largest_value_fits_at_once). */
	int rc = tc_set(c, "largest", 7, val, len, 8, 0);
	if (rc != 0) {
		note(v, "a value of the largest class (%llu B block) = %s",
		     (unsigned long long)tc__class_size(k), tc_strerror(rc));
	} else {
		rc = tc_get(c, "largest", 7, buf, len, &m);
		if (rc != 0 || m.len != len || memcmp(val, buf, len) != 0)
			note(v, "the largest value read back: %s", tc_strerror(rc));
		EXPECT_RC(v, 0, tc_del(c, "largest", 7));
		EXPECT_RC(v, 0, tc_reclaim(c, NULL));
	}
	free(val);
	free(buf);
}

/* 3. Empty: no key, nothing in use, every carved block free and listed. */
static void check_empty(struct verdict *v, tc_cache *c, const char *when)
{
	struct census k;
	tc_stats st;
	census_or_note(v, c, &k, when);
	EXPECT_RC(v, 0, tc_get_stats(c, &st));
	if (st.entries != 0 || st.memory_used != 0 || st.dto_lists != 0 || k.final != 0 ||
	    k.tent != 0 || k.reachable != 0 || k.unnamed != 0 || k.headerless != 0)
		note(v, "%s: not empty: entries %llu, dto_lists %llu, memory_used %llu, "
			"index words %llu+%llu, reachable %llu, unnamed %llu, header-less runs %llu",
		     when, (unsigned long long)st.entries, (unsigned long long)st.dto_lists,
		     (unsigned long long)st.memory_used,
		     (unsigned long long)k.final, (unsigned long long)k.tent,
		     (unsigned long long)k.reachable, (unsigned long long)k.unnamed,
		     (unsigned long long)k.headerless);
}

/* W_DELFULL's segment: max_entries keys e0, e1, ... */
static void fill_index(struct verdict *v, tc_cache *c)
{
	uint8_t val[100];
	memset(val, 0x5b, sizeof(val));
	for (uint64_t i = 0; i < c->max_entries; i++) {
		char key[16];
		snprintf(key, sizeof(key), "e%u", (unsigned)i);
		EXPECT_RC(v, 0, tc_set(c, key, strlen(key), val, sizeof(val), 4, 0));
	}
	EXPECT_RC(v, -ENOSPC, tc_set(c, "over", 4, val, sizeof(val), 4, 0));
}

/* W_DELFULL's survivor: e0 is gone, so exactly one new key fits. */
static void check_full_after_delete(struct verdict *v, tc_cache *c)
{
	uint8_t val[100], buf[128];
	memset(val, 0x5c, sizeof(val));
	EXPECT_RC(v, -ENOENT, tc_get(c, "e0", 2, buf, sizeof(buf), NULL));
	EXPECT_RC(v, 0, tc_set(c, "sv", 2, val, sizeof(val), 9, 0));
	EXPECT_RC(v, -ENOSPC, tc_set(c, "sv2", 3, val, sizeof(val), 9, 0));
	EXPECT_RC(v, 0, tc_del(c, "sv", 2));
}

static void segment_setup(struct verdict *v, tc_cache *c, enum workload w)
{
	char why[256] = "";
	if (w != W_CARVE) {
		int n = fill(c, why, sizeof(why));
		if (n < 0) {
			note(v, "%s", why);
			return;
		}
		/* Under LRU the fill stays: the workload evicts it. */
		if (w != W_LRU)
			EXPECT_RC(v, 0, delete_all(c));
	}
	if (w == W_DELFULL)
		fill_index(v, c);
	if (w == W_SNAPSHOT || w == W_SAVE) {
		uint8_t val[50];
		memset(val, 0x99, sizeof(val));
		for (int i = 0; i < SNAP_KEYS; i++) {
			char key[16];
			snprintf(key, sizeof(key), "s%d", i);
			EXPECT_RC(v, 0, tc_set(c, key, strlen(key), val, sizeof(val), 6, 0));
		}
		tc_snapshot_report r;
		EXPECT_RC(v, 0, tc_snapshot_save(c, snap_path, &r));
		/* W_SAVE saves the keys again, over this snapshot. */
		uint64_t n;
		if (w == W_SNAPSHOT) {
			EXPECT_RC(v, 0, tc_purge(c, NULL, &n));
			EXPECT_RC(v, 0, tc_reclaim(c, NULL));
		}
	}
}

/*
 * W_WAKE's waiter: a child asleep in tc_wait for WAKE_KEY to exist, with a
 * deadline the checks never reach.  Exits 0 when it saw the key, 1 on any
 * other return.  The parent returns once the waiter has flagged the key's
 * word (it sleeps right after one more check), and has closed its handle.
 */
static pid_t start_waiter(struct verdict *v, const char *seg)
{
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		tc_cache *c = NULL;
		tc_meta m;
		alarm(60);
		if (tc_open(&c, seg, NULL) != 0)
			_exit(2);
		int rc = tc_wait(c, WAKE_KEY, strlen(WAKE_KEY), 0, 30000, &m);
		tc_close(c);
		_exit(rc == 0 && m.version > 0 ? 0 : 1);
	}
	tc_cache *c = NULL;
	ASSERT_RC(0, tc_open(&c, seg, NULL));
	uint64_t hash = tc__hash(c, WAKE_KEY, strlen(WAKE_KEY), TC_KIND_KEY);
	uint32_t *word = &c->h->key_wake[TC_WAKE_SHARD(hash)];
	int i;
	for (i = 0; i < 2000 && !(tc__ld(word) & TC_WAKE_SLEEP); i++)
		usleep(1000);
	if (i == 2000)
		note(v, "the waiter never flagged its word");
	/* Its last check, then FUTEX_WAIT: blocked in the futex call, by
	 * /proc/PID/syscall (202 on x86-64), or after a while if unreadable. */
	char path[64], line[64];
	snprintf(path, sizeof(path), "/proc/%d/syscall", (int)pid);
	for (i = 0; i < 2000; i++) {
		FILE *f = fopen(path, "r");
		bool in_futex = false;
		if (!f) {
			usleep(200 * 1000);
			break;
		}
		if (fgets(line, sizeof(line), f))
			in_futex = strncmp(line, "202 ", 4) == 0;
		fclose(f);
		if (in_futex)
			break;
		usleep(1000);
	}
	tc_close(c);
	return pid;
}

/* Exit status of PID within MS milliseconds, or -1 (still running). */
static int wait_ms(pid_t pid, int ms)
{
	for (int i = 0; i <= ms; i += 10) {
		int st;
		if (waitpid(pid, &st, WNOHANG) == pid)
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		usleep(10 * 1000);
	}
	return -1;
}

/*
 * The writer died between its publish and its wake-up (publish_unwoken):
 * the waiter sleeps on, as nobody bumped its word.  The dead writer's
 * slot is cleared by the next cleaner (the survivor's tc_sweep), which
 * must wake it: it then sees the key, and returns 0.
 */
static void check_waiter(struct verdict *v, tc_cache *c, pid_t waiter)
{
	if (wait_ms(waiter, 200) != -1) {
		note(v, "the waiter returned before any cleaner ran");
		return;
	}
	tc_sweep_report sr;
	EXPECT_RC(v, 0, tc_sweep(c, 0, &sr));
	if (sr.readers_cleared != 1)
		note(v, "the sweep cleared %llu reader slots, expected the dead writer's",
		     (unsigned long long)sr.readers_cleared);
	int st = wait_ms(waiter, 3000);
	if (st == -1) {
		note(v, "the waiter still sleeps 3 s after the dead writer's slot was cleared");
		kill(waiter, SIGKILL);
		(void)fx_wait(waiter);
	} else if (st != 0) {
		note(v, "the waiter returned without the key (status %d)", st);
	}
}

/*
 * W_FOLD: the writer's FOLD_SETS sets count once in tc_get_stats, however
 * far it got in giving its slot back before it was killed, and after the
 * cleaner cleared the slot (BASE: the counters before the writer ran).
 */
static void check_counters(struct verdict *v, tc_cache *c, const tc_stats *base)
{
	tc_sweep_report sr;
	tc_stats st;
	EXPECT_RC(v, 0, tc_sweep(c, 0, &sr));
	EXPECT_RC(v, 0, tc_get_stats(c, &st));
	if (st.sets != base->sets + FOLD_SETS || st.hits != base->hits ||
	    st.misses != base->misses || st.deletes != base->deletes)
		note(v, "counters after the cleaner: sets %llu, hits %llu, misses %llu, deletes %llu; "
			"expected %llu, %llu, %llu, %llu",
		     (unsigned long long)st.sets, (unsigned long long)st.hits,
		     (unsigned long long)st.misses, (unsigned long long)st.deletes,
		     (unsigned long long)(base->sets + FOLD_SETS), (unsigned long long)base->hits,
		     (unsigned long long)base->misses, (unsigned long long)base->deletes);
}

/*
 * W_UNLINK: the unlinker died after marking the segment it removes, before
 * removing its name.  The handle D opened before sees it gone (-ESTALE);
 * a creator of that name must get a new segment, not the marked one
 * (TC_ECORRUPT for ever, until someone unlinked it by hand).
 */
static void check_unlinked(struct verdict *v, tc_cache *d)
{
	uint8_t buf[8];
	tc_opts o = wb_opts(64, 64 * 1024, 4, TC_EVICT_NONE);
	tc_cache *n = NULL;
	o.flags &= ~TC_EXCL; /* a restarting creator: the name may exist */
	EXPECT_RC(v, -ESTALE, tc_get(d, "u", 1, buf, sizeof(buf), NULL));
	EXPECT_RC(v, 0, tc_open(&n, create_name, &o));
	if (n) {
		EXPECT_RC(v, 0, tc_set(n, "n", 1, "new", 3, 1, 0));
		EXPECT_RC(v, 0, tc_get(n, "n", 1, buf, sizeof(buf), NULL));
		EXPECT_RC(v, -ENOENT, tc_get(n, "u", 1, buf, sizeof(buf), NULL));
		tc_close(n);
	}
	EXPECT_RC(v, -ESTALE, tc_get(d, "u", 1, buf, sizeof(buf), NULL));
}

/* Files beside snap_path whose names start with its name and ".tmp.":
 * the temporary files of snapshot saves.  REMOVE: unlink them too. */
static int save_temps(bool remove)
{
	char dir[sizeof(snap_path)], *slash;
	snprintf(dir, sizeof(dir), "%s", snap_path);
	slash = strrchr(dir, '/');
	assert_non_null(slash);
	*slash = 0;
	const char *base = slash + 1;
	size_t blen = strlen(base);
	DIR *d = opendir(dir);
	assert_non_null(d);
	int n = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, base, blen) != 0 || strncmp(de->d_name + blen, ".tmp.", 5))
			continue;
		n++;
		if (remove)
			(void)unlinkat(dirfd(d), de->d_name, 0);
	}
	closedir(d);
	return n;
}

/*
 * W_SAVE: the saver died while writing its temporary file.  The earlier
 * snapshot is whole (the rename never happened); the temporary file is
 * left (nobody can tell it from a live saver's until its pid is gone),
 * and the next save to that path removes it: a saver killed again and
 * again (a sweeper in a crash loop) never fills the disk.
 */
static void check_saved(struct verdict *v, tc_cache *c)
{
	int left = save_temps(false);
	if (left != 1)
		note(v, "%d temporary file(s) beside the snapshot after the saver died, expected 1",
		     left);
	tc_snapshot_report r;
	EXPECT_RC(v, 0, tc_snapshot_load(c, snap_path, 0, &r));
	if (r.keys + r.kept != SNAP_KEYS) /* the segment still holds them: kept */
		note(v, "the earlier snapshot holds %llu keys, expected %d",
		     (unsigned long long)(r.keys + r.kept), SNAP_KEYS);
	EXPECT_RC(v, 0, tc_snapshot_save(c, snap_path, &r));
	left = save_temps(false);
	if (left != 0)
		note(v, "%d temporary file(s) beside the snapshot after the next save, expected 0",
		     left);
}

static void run_point(const struct spec *sp, struct verdict *v)
{
	tc_cache *d = NULL; /* W_UNLINK: a handle of the segment the child removes */
	char seg[48];
	const struct spec *pre = sp->pre ? spec_of(sp->pre) : NULL;
	fx_name(seg);
	snprintf(snap_path, sizeof(snap_path), "/tmp/tc-crashpt-%d.snap", (int)getpid());
	snprintf(create_name, sizeof(create_name), "%s-new", seg);
	(void)tc_unlink(create_name);
	fx_track(create_name);

	tc_cache *c = wb_create(seg, entries_of(sp->wl), ARENA, 8, eviction_of(sp->wl));
	segment_setup(v, c, sp->wl);
	tc_stats base;
	EXPECT_RC(v, 0, tc_get_stats(c, &base));
	/* Nobody else attached while the children work (tc_audit needs it). */
	tc_close(c);
	c = NULL;
	if (v->why[0])
		goto out;
	if (sp->pre && !pre) {
		note(v, "pre-stage %s has no spec", sp->pre);
		goto out;
	}
	if (pre && kill_child_at(v, seg, pre->wl, pre->point, pre->nth) != 0)
		goto out;
	pid_t waiter = sp->wl == W_WAKE ? start_waiter(v, seg) : 0;
	if (sp->wl == W_UNLINK) {
		tc_opts o = wb_opts(64, 64 * 1024, 4, TC_EVICT_NONE);
		ASSERT_RC(0, tc_open(&d, create_name, &o));
		ASSERT_RC(0, tc_set(d, "u", 1, "old", 3, 1, 0));
	}
	if (kill_child_at(v, seg, sp->wl, sp->point, sp->nth) != 0) {
		if (waiter) {
			kill(waiter, SIGKILL);
			(void)fx_wait(waiter);
		}
		goto out;
	}
	ASSERT_RC(0, tc_open(&c, seg, NULL));
	if (waiter)
		check_waiter(v, c, waiter);
	if (sp->wl == W_FOLD)
		check_counters(v, c, &base);
	if (sp->wl == W_SAVE)
		check_saved(v, c);
	if (d)
		check_unlinked(v, d);

	if (sp->wl == W_DELFULL)
		check_full_after_delete(v, c);
	else
		check_survivor(v, c, sp->wl == W_ENTRIES, sp->sv);
	if (sp->wl == W_CREATE) {
		tc_cache *e = NULL;
		EXPECT_RC(v, TC_ECORRUPT, tc_open(&e, create_name, NULL));
		EXPECT_RC(v, 0, tc_unlink(create_name));
	}
	if (sp->wl == W_LEASE) {
		uint32_t holder = 0;
		EXPECT_RC(v, 0, tc_lease_acquire(c, 0, &holder));
		if (holder != (uint32_t)getpid())
			note(v, "lease holder %u after the claimer died", holder);
		EXPECT_RC(v, 0, tc_lease_release(c));
	}

	/* 2. Online recovery, then what only the audit can recover. */
	tc_sweep_report sr;
	EXPECT_RC(v, 0, tc_sweep(c, 0, &sr));
	struct census k;
	census_or_note(v, c, &k, "before the audit");
	int64_t leak = (int64_t)(k.unnamed + k.headerless);
	int64_t want = sp->leak + (pre ? pre->leak : 0);
	int64_t live_off = (int64_t)tc__ld(&c->h->live) - (int64_t)k.final;
	int64_t want_off = sp->live_off + (pre ? pre->live_off : 0);
	int64_t dto_off = (int64_t)tc__ld(&c->h->dto_heads) - (int64_t)k.dto;
	int64_t want_dto = sp->dto_off + (pre ? pre->dto_off : 0);
	print_message("  %-24s leak before tc_audit: %lld block(s) (%llu unnamed, %llu header-less), "
		      "live count off by %lld, DTO head count by %lld\n", sp->point, (long long)leak,
		      (unsigned long long)k.unnamed, (unsigned long long)k.headerless,
		      (long long)live_off, (long long)dto_off);
	if (sp->leak != LEAK_ANY && leak != want)
		note(v, "leak before tc_audit: %lld block(s), expected exactly %lld", (long long)leak,
		     (long long)want);
	if (k.tent != (uint64_t)(sp->tent + (pre ? pre->tent : 0)))
		note(v, "%llu TENT word(s) left after online recovery, expected %d",
		     (unsigned long long)k.tent, sp->tent + (pre ? pre->tent : 0));
	if (live_off != want_off)
		note(v, "live count off by %lld, expected %lld", (long long)live_off,
		     (long long)want_off);
	if (dto_off != want_dto)
		note(v, "DTO head count (dto_heads) off by %lld, expected %lld", (long long)dto_off,
		     (long long)want_dto);

	/* 3. The audit, then every key deleted: the arena is empty. */
	tc_audit_report ar;
	EXPECT_RC(v, 0, tc_audit(c, &ar));
	census_or_note(v, c, &k, "after the audit");
	if (k.unnamed || k.headerless || k.tent || (int64_t)tc__ld(&c->h->live) != (int64_t)k.final ||
	    tc__ld(&c->h->dto_heads) != k.dto)
		note(v, "after the audit: %llu unnamed, %llu header-less, %llu TENT, live %lld of %llu, "
			"dto_heads %lld of %llu",
		     (unsigned long long)k.unnamed, (unsigned long long)k.headerless,
		     (unsigned long long)k.tent, (long long)tc__ld(&c->h->live),
		     (unsigned long long)k.final, (long long)tc__ld(&c->h->dto_heads),
		     (unsigned long long)k.dto);
	EXPECT_RC(v, 0, delete_all(c));
	check_empty(v, c, "every key deleted");
	char why[256] = "";
	if (fill(c, why, sizeof(why)) < 0)
		note(v, "after the audit: %s", why);
	EXPECT_RC(v, 0, delete_all(c));
	check_empty(v, c, "filled and emptied again");

	/* 4. Coalescing over the whole arena. */
	check_largest(v, c);
out:
	if (d)
		tc_close(d);
	if (c)
		tc_close(c);
	(void)tc_unlink(seg);
	(void)tc_unlink(create_name);
	(void)unlink(snap_path);
	(void)save_temps(true);
}

static void test_point(void **state)
{
	const struct spec *sp = *state;
	struct verdict v = { "" };
	run_point(sp, &v);
	/* Never excused: every point must be reached by its workload. */
	if (strstr(v.why, "not reached") || strstr(v.why, "hung") || strstr(v.why, "failed (status"))
		fail_msg("%s: %s", sp->point, v.why);
	conclude(sp->point, &v);
}

/*
 * Not a crash point: check 4 above found it.  A fully free arena whose
 * coalescer last left df_hand inside it must take a value of the arena's
 * size at the first call.
 */
static void test_largest_value_fits_at_once(void **state)
{
	(void)state;
	char seg[48], why[256] = "";
	struct verdict v = { "" };
	fx_name(seg);
	tc_cache *c = wb_create(seg, 4096, ARENA, 8, TC_EVICT_NONE);
	if (fill(c, why, sizeof(why)) < 0)
		fail_msg("%s", why);
	ASSERT_RC(0, delete_all(c));
	uint8_t val[100];
	memset(val, 1, sizeof(val));
	/* A 128 B block: the coalescer re-cuts a window at the arena's start
	 * and leaves df_hand after it. */
	ASSERT_RC(0, tc_set(c, "small", 5, val, sizeof(val), 1, 0));
	ASSERT_RC(0, tc_del(c, "small", 5));
	ASSERT_RC(0, tc_reclaim(c, NULL));
	assert_int_not_equal(tc__ld(&c->h->df_hand), 0);
	check_empty(&v, c, "before the largest value");
	uint32_t k = 0;
	while (k + 1 < TC_CLASSES_USED && tc__class_size(k + 1) <= c->arena_bytes)
		k++;
	size_t len = tc__class_size(k) - TC_ENTRY_HDR - 8;
	uint8_t *big = calloc(1, len);
	assert_non_null(big);
	EXPECT_RC(&v, 0, tc_set(c, "largest", 7, big, len, 8, 0));
	free(big);
	tc_close(c);
	(void)tc_unlink(seg);
	conclude("test_largest_value_fits_at_once", &v);
}

/* ---- every path of a write passes its points, once -------------------------- */

/*
 * A write enters its read section and allocates along several paths: the
 * thread's first call (its entry claimed), its handle's entry current (the
 * enter inlined in kv.c) or another handle's (the call), nested in a read
 * section of its own, from a second thread; a block popped or carved.  A
 * point that one of them skips is a crash window the table promises and no
 * kill tests.  A scripted child stores the number of each step in a shared
 * page before running it; killed at a point's NTH pass it tells which step
 * made that pass.  The script lists, for each point, the step of every
 * pass in order, and a child armed one pass further runs to its end.  At
 * the kill the shared state is the table's: the slot's epoch announced
 * (read_section), the block named in inflight LIVE with its class, copy and
 * builder written and not yet counted used (alloc_ready).
 */
struct progress {
	uint32_t step;     /* the step running */
	uint32_t cls;      /* the class of the step's block */
	uint64_t used;     /* that class's used gauge before the step */
};

#define S_END 99u
#define PASS_VAL 100   /* bytes of every script value: one class */

static struct progress *prog;

static void script_set(tc_cache *c, uint32_t step, const char *key)
{
	static const uint8_t val[PASS_VAL];
	uint32_t cls = tc__class_of(tc__entry_need(c, strlen(key), sizeof(val)));
	prog->cls = cls;
	prog->used = tc__ld(&c->h->cls[cls].used);
	prog->step = step;
	child_want(tc_set(c, key, strlen(key), val, sizeof(val), 1, 0), 0, 0, "set");
}

static void *script_thread(void *arg)
{
	script_set(arg, 11, "k8");
	return NULL;
}

/* read_section's passes: steps 1, 2, 3, 6, 9, 10, 11. */
static void script_sections(tc_cache *a, tc_cache *b)
{
	script_set(a, 1, "k1"); /* the thread's first call: its entry claimed */
	script_set(a, 2, "k2"); /* A's entry current: the enter inlined in kv.c */
	script_set(b, 3, "k3"); /* A's entry current, not B's: the call */
	prog->step = 4;
	child_want(tc_read_lock(a), 0, 0, "read_lock"); /* no pass: a read section */
	script_set(a, 5, "k4"); /* nested in A's section: no pass */
	script_set(b, 6, "k5"); /* B's outermost, inside A's section */
	script_set(a, 7, "k6"); /* nested again, B's entry current */
	prog->step = 8;
	tc_read_unlock(a);
	script_set(a, 9, "k7");
	prog->step = 10;
	child_want(tc_incr(a, "n", 1, 1, 0, NULL), 0, 0, "incr");
	pthread_t t;
	if (pthread_create(&t, NULL, script_thread, a) != 0 || pthread_join(t, NULL) != 0)
		child_want(-1, 0, 0, "thread");
}

/* The allocator's: steps 1, 2, 3, 8, 9 carve; step 5 pops a freed block
 * (tc__alloc_block's inline pop); step 7 pops a head the coalescer claimed
 * (as its drain does: CLAIMED, df_pending counted), leaves it OUT and pops
 * the next block (alloc_again). */
static void script_allocs(tc_cache *a, tc_cache *b)
{
	script_set(a, 1, "k1");
	script_set(a, 2, "k2");
	script_set(a, 3, "k3");
	prog->step = 4;
	child_want(tc_del(a, "k1", 2), 0, 0, "del");
	child_want(tc_del(a, "k2", 2), 0, 0, "del");
	child_want(tc_del(a, "k3", 2), 0, 0, "del");
	child_want(tc_reclaim(a, NULL), 0, 0, "reclaim");
	script_set(a, 5, "k4");
	prog->step = 6;
	uint32_t cls = prog->cls;
	struct tc_entry *head = tc__block(a, tc__ld(&a->h->cls[cls].head) & 0xffffffffu);
	if (!head || tc__ld(&a->h->cls[cls].nfree) != 2)
		child_want(-1, 0, 0, "two free blocks");
	tc__st(&head->state, TC_BLK_CLAIMED);
	tc__add(&a->h->df_pending, 1);
	script_set(a, 7, "k5");
	if (tc__ld(&head->state) != TC_BLK_OUT || tc__ld(&a->h->df_pending) != 0)
		child_want(-1, 0, 0, "the claimed head left OUT");
	script_set(b, 8, "k6");
	script_set(a, 9, "k7");
}

struct pass_script {
	const char *point;
	void (*run)(tc_cache *a, tc_cache *b);
	uint32_t steps[8]; /* the step of each pass, 0 after the last */
	uint32_t in[8];    /* read_section: the slots in a section at that pass */
};

static const struct pass_script pass_scripts[] = {
	{ "read_section",     script_sections, { 1, 2, 3, 6, 9, 10, 11 }, { 1, 1, 1, 2, 1, 1, 1 } },
	{ "alloc_popped",     script_allocs,   { 5, 7, 7 }, { 0 } },
	{ "alloc_taken",      script_allocs,   { 5, 7 }, { 0 } },
	{ "alloc_carved",     script_allocs,   { 1, 2, 3, 8, 9 }, { 0 } },
	{ "alloc_class_copy", script_allocs,   { 1, 2, 3, 8, 9 }, { 0 } },
	{ "alloc_ready",      script_allocs,   { 1, 2, 3, 5, 7, 8, 9 }, { 0 } },
};

/* The shared state a kill at POINT leaves (table above), checked in C:
 * ANNOUNCED slots of process PID show the segment's epoch (read_section;
 * the process holds a slot per handle and thread) and no other is in a
 * section; the one slot of PID that names a block in inflight names it
 * LIVE, its header written and not yet counted (alloc_ready). */
static void check_pass_state(struct verdict *v, tc_cache *c, pid_t pid, const char *point, int nth,
			     uint32_t announced)
{
	uint64_t now = tc__ld(&c->h->epoch);
	uint32_t in = 0, other = 0, named = 0;
	struct tc_rslot *s = NULL;
	for (uint32_t i = 0; i < c->nslots; i++) {
		struct tc_rslot *r = &c->slots[i];
		if (tc__ld(&r->owner) >> 32 != (uint64_t)pid)
			continue;
		uint64_t e = tc__ld(&r->epoch);
		in += e != 0 && e == now;
		other += e != 0 && e != now;
		if (tc__ld(&r->inflight)) {
			named++;
			s = r;
		}
	}
	if (strcmp(point, "read_section") == 0) {
		if (in != announced || other)
			note(v, "%s:%d (step %u): %u slot(s) in a section at epoch %llu and %u at "
				"another, expected %u", point, nth, prog->step, in,
			     (unsigned long long)now, other, announced);
		return;
	}
	if (strcmp(point, "alloc_ready") != 0)
		return;
	struct tc_entry *e = s ? tc__block(c, tc__ld(&s->inflight)) : NULL;
	uint32_t cls = prog->cls;
	if (named != 1 || !e) {
		note(v, "%s:%d (step %u): %u slot(s) name a block in inflight, expected 1", point,
		     nth, prog->step, named);
		return;
	}
	uint64_t used = tc__ld(&c->h->cls[cls].used);
	if (tc__ld(&e->state) != TC_BLK_LIVE || tc__ld(&e->cls) != cls ||
	    tc__ld(&e->cls_check) != TC_CLS_CHECK(cls) ||
	    tc__ld(&e->builder) != (uint16_t)(s - c->slots + 1) || used != prog->used)
		note(v, "%s:%d (step %u): block state %u class %u copy %u builder %u, used %llu, "
			"expected LIVE, %u, %u, %u, %llu", point, nth, prog->step,
		     tc__ld(&e->state), tc__ld(&e->cls), tc__ld(&e->cls_check),
		     tc__ld(&e->builder), (unsigned long long)used, cls, TC_CLS_CHECK(cls),
		     (unsigned)(s - c->slots + 1), (unsigned long long)prog->used);
}

/* Run SC's script in a child armed at its point's NTH pass: its status. */
static int run_script_at(const char *seg, const struct pass_script *sc, int nth)
{
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char at[96];
		tc_cache *a = NULL, *b = NULL;
		alarm(60);
		snprintf(at, sizeof(at), "%s:%d", sc->point, nth);
		setenv("TICKCACHE_CRASH_AT", at, 1);
		child_want(tc_open(&a, seg, NULL), 0, 0, "open");
		child_want(tc_open(&b, seg, NULL), 0, 0, "open");
		sc->run(a, b);
		prog->step = S_END;
		_exit(0);
	}
	int st = fx_wait(pid);
	return st == 128 + SIGKILL ? -(int)pid : st;
}

static void test_write_paths_pass_every_point(void **state)
{
	(void)state;
	struct verdict v = { "" };
	prog = mmap(NULL, sizeof(*prog), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	assert_true(prog != MAP_FAILED);
	for (size_t i = 0; i < sizeof(pass_scripts) / sizeof(pass_scripts[0]); i++) {
		const struct pass_script *sc = &pass_scripts[i];
		for (int nth = 1; nth <= 8; nth++) {
			char seg[48];
			fx_name(seg);
			tc_cache *c = wb_create(seg, 1024, ARENA, 8, TC_EVICT_NONE);
			memset(prog, 0, sizeof(*prog));
			uint32_t want = sc->steps[nth - 1];
			int st = run_script_at(seg, sc, nth);
			if (want && st >= 0)
				note(&v, "%s:%d: expected a kill in step %u; child status %d, at step %u",
				     sc->point, nth, want, st, prog->step);
			else if (want && prog->step != want)
				note(&v, "%s:%d: killed in step %u, expected step %u", sc->point, nth,
				     prog->step, want);
			else if (want)
				check_pass_state(&v, c, -st, sc->point, nth, sc->in[nth - 1]);
			else if (st != 0 || prog->step != S_END)
				note(&v, "%s:%d: one pass past the last expected, child status %d at "
					 "step %u, expected to finish", sc->point, nth, st, prog->step);
			tc_close(c);
			(void)tc_unlink(seg);
			if (!want)
				break;
		}
	}
	munmap(prog, sizeof(*prog));
	conclude("test_write_paths_pass_every_point", &v);
}

/* ---- the list, the specs and design.md agree -------------------------------- */

static void test_every_point_has_a_workload(void **state)
{
	(void)state;
	int bad = 0;
	assert_true(NPOINTS > 0);
	for (size_t i = 0; i < NPOINTS; i++) {
		if (!spec_of(points[i].name)) {
			print_error("%s (%s): a crash point without a workload in specs[]\n",
				    points[i].name, points[i].file);
			bad++;
		}
	}
	for (size_t i = 0; i < NSPECS; i++) {
		if (!point_of(specs[i].point)) {
			print_error("specs[] names %s, which is not in the code\n", specs[i].point);
			bad++;
		}
		if (specs[i].pre && !spec_of(specs[i].pre)) {
			print_error("%s: pre-stage %s has no spec\n", specs[i].point, specs[i].pre);
			bad++;
		}
		if (specs[i].leak != LEAK_ANY && specs[i].bound >= 0 && specs[i].leak > specs[i].bound) {
			print_error("%s: expected leak %d above its bound %d\n", specs[i].point,
				    specs[i].leak, specs[i].bound);
			bad++;
		}
		for (size_t j = 0; j < i; j++)
			if (strcmp(specs[i].point, specs[j].point) == 0) {
				print_error("specs[] names %s twice\n", specs[i].point);
				bad++;
			}
	}
	assert_int_equal(bad, 0);
}

/* Trim spaces and one pair of backticks. */
static char *cell(char *s)
{
	while (*s == ' ')
		s++;
	char *e = s + strlen(s);
	while (e > s && e[-1] == ' ')
		*--e = '\0';
	if (e - s >= 2 && s[0] == '`' && e[-1] == '`') {
		e[-1] = '\0';
		s++;
	}
	return s;
}

/*
 * docs/design.md, section "Crash points": one row per point, exactly the
 * points of the code, each with its file and the bound specs[] checks.
 * Rows: | `point` | file.c | killed after | leak until `tc_audit` | recovery |
 */
static void test_design_table_lists_every_point(void **state)
{
	(void)state;
	FILE *f = fopen("docs/design.md", "r");
	assert_non_null(f);
	char line[2048];
	bool in = false;
	int rows = 0, bad = 0;
	bool seen[NPOINTS];
	memset(seen, 0, sizeof(seen));
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		if (strncmp(line, "### ", 4) == 0) {
			in = strcmp(line, "### Crash points") == 0;
			continue;
		}
		if (strncmp(line, "## ", 3) == 0)
			in = false;
		if (!in || strncmp(line, "| `", 3) != 0)
			continue;
		char *col[6] = { 0 };
		int n = 0;
		for (char *p = line + 1, *q; n < 6 && (q = strchr(p, '|')) != NULL; p = q + 1) {
			*q = '\0';
			col[n++] = cell(p);
		}
		if (n != 5) {
			print_error("design.md: a crash-point row with %d columns, not 5\n", n);
			bad++;
			continue;
		}
		rows++;
		const struct point *pt = point_of(col[0]);
		const struct spec *sp = spec_of(col[0]);
		if (!pt) {
			print_error("design.md lists %s, which is not a point of the code\n", col[0]);
			bad++;
			continue;
		}
		size_t idx = (size_t)(pt - points);
		if (seen[idx]) {
			print_error("design.md lists %s twice\n", col[0]);
			bad++;
		}
		seen[idx] = true;
		if (strcmp(col[1], pt->file) != 0) {
			print_error("design.md: %s is in %s, not %s\n", col[0], pt->file, col[1]);
			bad++;
		}
		char buf[32];
		const char *b = sp ? bound_text(sp->bound, buf, sizeof(buf)) : "?";
		if (strcmp(col[3], b) != 0) {
			print_error("design.md: %s leaks \"%s\", the test checks \"%s\"\n", col[0],
				    col[3], b);
			bad++;
		}
	}
	fclose(f);
	for (size_t i = 0; i < NPOINTS; i++)
		if (!seen[i]) {
			print_error("design.md's crash-point table lacks %s (%s)\n", points[i].name,
				    points[i].file);
			bad++;
		}
	assert_int_equal(rows, (int)NPOINTS);
	assert_int_equal(bad, 0);
}

int main(int argc, char **argv)
{
	/* Optional: run only the points named on the command line. */
	static char names[NSPECS][64];
	static char rnames[NRSPECS][64];
	static char dnames[NDSPECS][64];
	static char fnames[NFSPECS][64];
	struct CMUnitTest *t = calloc(NSPECS + NRSPECS + NDSPECS + NFSPECS + 4, sizeof(*t));
	size_t n = 0;
	assert_non_null(t);
	t[n++] = (struct CMUnitTest)FX_TEST(test_every_point_has_a_workload);
	t[n++] = (struct CMUnitTest)FX_TEST(test_design_table_lists_every_point);
	t[n++] = (struct CMUnitTest)FX_TEST(test_largest_value_fits_at_once);
	t[n++] = (struct CMUnitTest)FX_TEST(test_write_paths_pass_every_point);
	for (size_t i = 0; i < NSPECS; i++) {
		bool want = argc < 2;
		for (int a = 1; a < argc; a++)
			want |= strcmp(argv[a], specs[i].point) == 0;
		if (!want)
			continue;
		snprintf(names[i], sizeof(names[i]), "crash_at_%s", specs[i].point);
		t[n++] = (struct CMUnitTest){ .name = names[i], .test_func = test_point, .teardown_func = fx_teardown,
					      .initial_state = (void *)&specs[i] };
	}
	for (size_t i = 0; i < NRSPECS; i++) {
		bool want = argc < 2;
		for (int a = 1; a < argc; a++)
			want |= strcmp(argv[a], "recoverer") == 0;
		if (!want)
			continue;
		snprintf(rnames[i], sizeof(rnames[i]), "recoverer_killed_at_%s",
			 recoverer_specs[i].point);
		t[n++] = (struct CMUnitTest){ .name = rnames[i], .test_func = test_point,
					      .teardown_func = fx_teardown,
					      .initial_state = (void *)&recoverer_specs[i] };
	}
	for (size_t i = 0; i < NDSPECS; i++) {
		bool want = argc < 2;
		for (int a = 1; a < argc; a++)
			want |= strcmp(argv[a], "dto_insert") == 0;
		if (!want)
			continue;
		snprintf(dnames[i], sizeof(dnames[i]), "dto_first_element_killed_at_%s",
			 dto_insert_specs[i].point);
		t[n++] = (struct CMUnitTest){ .name = dnames[i], .test_func = test_point,
					      .teardown_func = fx_teardown,
					      .initial_state = (void *)&dto_insert_specs[i] };
	}
	for (size_t i = 0; i < NFSPECS; i++) {
		bool want = argc < 2;
		for (int a = 1; a < argc; a++)
			want |= strcmp(argv[a], "full") == 0;
		if (!want)
			continue;
		snprintf(fnames[i], sizeof(fnames[i]), "full_index_killed_at_%s", full_specs[i].point);
		t[n++] = (struct CMUnitTest){ .name = fnames[i], .test_func = test_point,
					      .teardown_func = fx_teardown,
					      .initial_state = (void *)&full_specs[i] };
	}
	int rc = _cmocka_run_group_tests("crashpoints", t, n, NULL, NULL);
	free(t);
	return rc;
}
