/* SPDX-License-Identifier: MIT */
/*
 * internal.h - the process-local handle, the atomic wrappers and the tc__
 * prototypes shared by the files of shm/.
 */
#ifndef TC_INTERNAL_H
#define TC_INTERNAL_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <urcu/arch.h>
#include <urcu/system.h>
#include <urcu/uatomic.h>
#include "tickcache.h"
#include "layout.h"

/*
 * Atomics.  liburcu's uatomic_* and CMM_*_SHARED everywhere; under
 * ThreadSanitizer (which cannot see liburcu's inline assembly) the same
 * operations map to the compiler's __atomic builtins so that the
 * happens-before edges are visible to it.  Every CAS is a full barrier.
 */
#if defined(__SANITIZE_THREAD__)
#define TC_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define TC_TSAN 1
#endif
#endif

#ifdef TC_TSAN
#define tc__ld(p)        __atomic_load_n((p), __ATOMIC_SEQ_CST)
#define tc__st(p, v)     __atomic_store_n((p), (v), __ATOMIC_SEQ_CST)
#define tc__cas(p, o, n) __extension__({ __typeof__(*(p)) _o = (o); \
	__atomic_compare_exchange_n((p), &_o, (n), 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST); _o; })
#define tc__add(p, v)    ((void)__atomic_add_fetch((p), (v), __ATOMIC_SEQ_CST))
#define tc__add_ret(p, v) __atomic_add_fetch((p), (v), __ATOMIC_SEQ_CST)
#define tc__mb()         __atomic_thread_fence(__ATOMIC_SEQ_CST)
#define tc__rmb()        __atomic_thread_fence(__ATOMIC_SEQ_CST)
#define tc__wmb()        __atomic_thread_fence(__ATOMIC_SEQ_CST)
#define tc__barrier()    __atomic_signal_fence(__ATOMIC_SEQ_CST)
#else
#define tc__ld(p)        CMM_LOAD_SHARED(*(p))
#define tc__st(p, v)     CMM_STORE_SHARED(*(p), (v))
#define tc__cas(p, o, n) uatomic_cmpxchg((p), (o), (n))
#define tc__add(p, v)    uatomic_add((p), (v))
#define tc__add_ret(p, v) uatomic_add_return((p), (v))
#define tc__mb()         cmm_smp_mb()
#define tc__rmb()        cmm_smp_rmb()
#define tc__wmb()        cmm_smp_wmb()   /* a compiler barrier on x86 */
#define tc__barrier()    cmm_barrier()
#endif

/*
 * tc__ld(P) != V, with *P loaded once, as tc__ld loads it.  On x86-64 the
 * compare reads the memory itself (one cmp with a memory operand, whose
 * flag the branch takes): gcc folds no volatile load into a compare, so
 * the load and the compare would be two instructions (and for a
 * process-local field it chose a load and a test too: the read path's
 * depth).  V must fit *P's type (it is converted to it).  gcc only: clang
 * 14 (the fuzz build) has no %z operand modifier, and takes the plain form.
 */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(TC_TSAN)
#define tc__ld_ne(p, v) __extension__({					\
	bool _ne;							\
	__typeof__(*(p)) _v = (v);					\
	__asm__ volatile("cmp%z1 %2, %1" : "=@ccne"(_ne) : "m"(*(p)), "er"(_v)); \
	_ne; })
#else
#define tc__ld_ne(p, v) (tc__ld(p) != (v))
#endif

/*
 * Crash points (docs/design.md, "Crash points").  TC_CRASH_POINT(name) marks
 * a place between two shared writes where a process killed leaves the
 * segment in a state of its own; NAME is a bare identifier, unique in shm/.
 * Only a library compiled with -DTC_CRASHPOINTS (the crash-point test build,
 * build/crash/) calls tc__crash_point() there, which kills the process with
 * SIGKILL when TICKCACHE_CRASH_AT=NAME[:NTH] selects the NTH pass (default
 * 1).  Everywhere else it expands to nothing.  tests/crash/test_crashpoints.c
 * takes the list of points from the sources (tools/crashpoints.sh), kills a
 * writer at each in turn and checks what design.md's table says of it.
 */
#ifdef TC_CRASHPOINTS
void tc__crash_point(const char *name);
#define TC_CRASH_POINT(name) tc__crash_point(#name)
void tc__entered(void); /* epoch.c: the point read_section */
#define TC_ENTERED() tc__entered()
#else
#define TC_CRASH_POINT(name) ((void)0)
#define TC_ENTERED() ((void)0)
#endif

#define TC_LIKELY(x)   __builtin_expect(!!(x), 1)
#define TC_UNLIKELY(x) __builtin_expect(!!(x), 0)

/* Number of size classes actually used: 64 B .. 1.25 MiB, four per doubling. */
#define TC_CLASSES_USED 58

/* Process-local view of one attached segment.  Geometry is copied here at
 * attach, after validation, and never re-read from shared memory. */
struct tc_cache {
	uint8_t            *base;      /* mapping */
	size_t              size;      /* mapping length = total_bytes */
	struct tc_hdr      *h;
	struct tc_rslot    *slots;
	struct tc_attach_rec *attach;
	struct tc_bucket   *index;
	uint8_t            *arena;
	uint64_t            arena_bytes;
	uint64_t            arena_units; /* arena_bytes / 16 */
	uint64_t            nbuckets;
	uint64_t            bmask;
	uint64_t            max_entries;
	uint64_t            seed;
	uint64_t            kbf[2];      /* XXH3's 9..16-byte secret words under the seed of
					  * ordinary keys (index.h, tc__hash_init) */
	uint64_t            kmid[4];     /* the same for 17..32 bytes */
	uint64_t            ref_lim;     /* arena_units - 3: match()'s bound of a slot's ref */
	uintptr_t           arena_end;   /* arena + arena_bytes */
	uint64_t            bump_seen;   /* the last bump word that passed its seal (tc__carved);
					  * relaxed atomic, any thread of the process */
	uint64_t            default_ttl_ms;
	uint64_t            slow_ns;     /* slow-operation threshold (TICKCACHE_SLOW_US) */
	uint32_t            max_readers; /* slots for ordinary handles: [0, max_readers) */
	uint32_t            nslots;      /* all slots: max_readers + TC_TOOL_READERS */
	bool                tool;        /* TC_TOOL: claims from [max_readers, nslots) */
	uint32_t            max_attach;
	int                 eviction;
	bool                csum;        /* TC_OPT_CHECKSUM: values carry checksums */
	uint8_t             rslow;       /* work a read does after its copy: TC_RS_* */
	uint32_t            attach_idx;  /* our record in the attach table, UINT32_MAX = none */
	uint64_t            cid;         /* process-unique handle id, never reused */
	uint64_t            tkey;        /* cid << 7: the handle's key in tc__tls_key (epoch.c) */
	uint64_t            tfast;       /* tkey, or tkey | 1 << 63 unless plain (epoch.h) */
	bool                rfast;       /* tc__membarrier_reader_fast(): readers need no fence */
	uint64_t            shm_ino;     /* the shm object's inode and device, to find */
	uint32_t            shm_major;   /* the mapping in /proc/PID/maps */
	uint32_t            shm_minor;
	struct tc_cache    *next;        /* process registry (tc__registry_lock) */
	const struct tc__evict_ops *evict; /* the eviction policy (evict.c), set by tc_open */
	/* The last census that found no room (coalesce.c, tc__room_census):
	 * its class, the arena's signature when it began, until when its
	 * answer holds (CLOCK_REALTIME ms), and a hash of the three, so that
	 * threads storing at once never leave a mixed record.  Process-local,
	 * relaxed atomics, any thread. */
	struct { uint64_t cls, sig, until, check; } nofit_memo;
	/* tc__clean_dead (recover.c), wired by tc_open (segment.c): epoch.c
	 * clears dead readers' slots when every slot is taken, and recover.c
	 * is above it (it retires through epoch.c). */
	int               (*clean_dead)(tc_cache *c, struct tc_rslot *self,
					tc_sweep_report *rep);
	/* Where this process last wrote each key, by hash: the ref of the
	 * block its last write here published (0: none), a hint that a write
	 * prefetches while it waits for the key's bucket (kv.c,
	 * prefetch_hinted).  Process-local, never trusted: relaxed loads and
	 * stores from any thread; a stale or wild ref costs a useless
	 * prefetch, never a wrong result (design.md section 10).  hint_mask
	 * + 1 words, a power of two; without the mapping, one static word. */
	uint32_t           *hints;
	uint64_t            hint_mask;
	size_t              hint_map;    /* bytes mapped at hints, 0: the static word */
	char                name[TC_NAME_MAX + 1];
};

/* The hint word of HASH in C (tc_cache.hints). */
static inline uint32_t *tc__hint(tc_cache *c, uint64_t hash)
{
	return &c->hints[(hash >> 16) & c->hint_mask];
}

/*
 * An eviction policy (tc_opts.eviction), as liburcu's cds_lfht_mm_type is
 * for memory management: what the code that makes room (room.c, room.h)
 * and the coalescer ask of the policy, so that none tests a policy by name.
 * evict.c defines tc__evict_none and tc__evict_lru.  (The read path's
 * reference bit is tc_cache.rslow's TC_RS_LRU: one test there covers it
 * and checksums.)
 */
struct tc__evict_ops {
	int      policy;            /* the TC_EVICT_* it implements */
	/* Revolutions of the clock that may pass before a cold entry comes
	 * free (every entry may carry its reference bit); 0: the clock
	 * removes expired entries only. */
	uint32_t clock_revolutions;
	/* tc__alloc coalesces an empty class at once; else tc__make_room
	 * coalesces once the clock found nothing cold. */
	bool     coalesce_in_alloc;
	/* Remove the live ordinary key whose entry is block E, found by its
	 * address (the coalescer's windows); NULL: live keys are never
	 * evicted, the coalescer takes free windows only. */
	int    (*evict_block)(tc_cache *c, struct tc_rslot *s, struct tc_entry *e);
	/* After each write of class CLS, outside its read section; NULL:
	 * nothing. */
	void   (*ahead)(tc_cache *c, struct tc_rslot *s, uint32_t cls);
};
extern const struct tc__evict_ops tc__evict_none, tc__evict_lru;

/* tc_cache.rslow: one test on the read path covers both. */
#define TC_RS_LRU   0x1u /* set the reference bit (TC_EVICT_LRU) */
#define TC_RS_CSUM  0x2u /* verify the value's checksum (TC_OPT_CHECKSUM) */

/* A handle's tfast (epoch.h, tc__tent_tick_plain) from its tkey, rfast and
 * rslow: tkey when its reads are plain, else a key no thread's matches. */
static inline uint64_t tc__tfast_of(const tc_cache *c)
{
#ifdef TC_TSAN
	bool fenceless = true; /* the fast path fences itself under TSan */
#else
	bool fenceless = c->rfast;
#endif
	return c->tkey | (fenceless && c->rslow == 0 ? 0 : 1ull << 63);
}

/* The key check of every call (error.c has the codes' strings) */
static inline int tc__valid_key(const void *key, size_t klen)
{
	return key != NULL && klen >= 1 && klen <= TC_KEY_MAX;
}

/* process.c: identity, liveness, the registry of handles, fork hooks */
#define TC_PID_MAX_LIMIT (1u << 22) /* the kernel's PID_MAX_LIMIT on 64-bit: no pid is larger */
bool tc__pid_alive(uint32_t pid, uint64_t start);
uint64_t tc__proc_start(uint32_t pid);
uint64_t tc__self_start(void);
uint64_t tc__thread_start(uint32_t tid);
bool tc__thread_gone(uint32_t pid, uint32_t tid, uint64_t tstart);
bool tc__maps_segment(tc_cache *c, uint32_t pid, uint64_t base);
bool tc__maps_segment_shown(tc_cache *c, uint32_t pid); /* readable maps show it */
int  tc__lock_bounded(int fd);
#define TC_LOCK_WAIT_MS 5000 /* tc__lock_bounded's default bound */
uint32_t tc__self_pid(void);
void tc__registry_lock(void);
void tc__registry_unlock(void);
bool tc__registry_has(uint64_t cid);
void tc__registry_add(tc_cache *c);
void tc__registry_remove(tc_cache *c);
/*
 * A lease in the segment (the sweeper's, sweep.c; the bridge's, tier.c):
 * a word pid << 32 | claiming bit 31 | 31 bits of the lease's own (a
 * generation; the bridge's state), changed only by CAS, and the holder's
 * start time and heartbeat.  A claim sets the word with the claiming bit,
 * stores start time and heartbeat, then clears the bit, so a racing
 * claimer never judges a new holder by the start time of the old one.
 */
#define TC_LEASE_CLAIMING 0x80000000ull
/* The offsets of lease P's fields in the header: P_word, P_start, P_beat_ms. */
#define TC_LEASE_FIELDS(p)                                                      \
	.word = offsetof(struct tc_hdr, p##_word),                              \
	.start = offsetof(struct tc_hdr, p##_start),                            \
	.beat_ms = offsetof(struct tc_hdr, p##_beat_ms)
struct tc__lease {
	size_t word, start, beat_ms; /* offsets in the header (struct tc_hdr) */
	uint64_t (*next)(uint64_t w); /* the low half a claim of word W sets, bit 31 clear */
	/* NULL, or called once a claim of word W won its CAS, before the
	 * start time and heartbeat are stored. */
	void (*claimed)(tc_cache *c, uint64_t w);
	bool mine_while_claiming; /* a claim by our own process counts as held */
};
/* Claim lease L of C unless a live holder has beaten within STALE_MS (0:
 * any heartbeat will do), or renew it when we hold it: 0, or -EBUSY;
 * *HOLDER (may be NULL) the pid that holds it after the call, or that
 * refused us. */
int  tc__lease_claim(tc_cache *c, const struct tc__lease *l, uint64_t stale_ms,
		     uint32_t *holder);

/* segment.c */
#define TC_SHM_PATH_MAX (TC_NAME_MAX + 16)
void tc__shm_path(char *dst, size_t cap, const char *name); /* "/tickcache.NAME" */
int  tc__layout(uint64_t max_entries, uint64_t memory, uint32_t max_readers,
		uint64_t *nbuckets, uint32_t *max_attach, uint64_t *slots_off,
		uint64_t *attach_off, uint64_t *index_off, uint64_t *arena_off,
		uint64_t *total);
extern void (*tc__open_test_hook)(uint8_t *base); /* tests: after validation */

/* epoch.c: reader slots and grace periods */
struct tc_rslot *tc__slot(tc_cache *c);           /* this thread's slot or NULL (-EUSERS) */
int  tc__enter(tc_cache *c, struct tc_rslot **s); /* outermost/inner read section enter */
void tc__exit(tc_cache *c);

bool tc__in_section(tc_cache *c);
struct tc_rslot *tc__section_slot(tc_cache *c);
void tc__retire(tc_cache *c, struct tc_rslot *s, struct tc_entry *e);
int64_t tc__retired_sum(tc_cache *c, int idx);
int  tc__reclaim(tc_cache *c, struct tc_rslot *s, uint64_t *freed);
int  tc__reclaim_budget(tc_cache *c, struct tc_rslot *s, uint64_t *freed, uint64_t budget);
uint64_t tc__reclaim_step(tc_cache *c, struct tc_rslot *s, uint64_t budget);
void tc__release_handle_slots(tc_cache *c);
void tc__empty_slot(tc_cache *c, struct tc_rslot *s); /* all but the owner word */
/* The slot of a maintenance call (tc_reclaim, tc_sweep, tc_audit) into *SP:
 * 0, -EUSERS (no slot), or -EDEADLK (inside a read section of ours, which
 * would block its grace period). */
int  tc__maint_slot(tc_cache *c, struct tc_rslot **sp);
uint64_t tc__min_active_epoch(tc_cache *c);
bool tc__others_reading(tc_cache *c); /* a thread not the caller in a section */
void tc__membarrier_init(void);
uint64_t tc__membarrier_issued(void); /* global barriers issued by this process (tests) */
bool tc__membarrier_reader_fast(void); /* this process's readers use a compiler barrier only */
bool tc__slot_dead(tc_cache *c, struct tc_rslot *s, uint64_t owner);

/*
 * The tid half of an owner word being cleaned (recover.c): bit 31, which no
 * tid has.  The claim of a dead owner's slot adds the cleaner's tid << 1
 * (a tid is below 2^22), so that a cleaner thread that vanishes (a raw
 * SYS_exit, a seccomp kill) is judged by its thread like any owner; that of
 * a free slot is bit 0 alone.  The cleaner's thread, or 0 when the word
 * does not name one (a free slot's, or one of layout 14 before it did).
 */
#define TC_OWNER_CLEANING 0x80000000ull
static inline uint32_t tc__cleaner_tid(uint64_t owner)
{
	if (!(owner & TC_OWNER_CLEANING) || (owner & 1))
		return 0;
	return (uint32_t)(owner & 0x7fffffffu) >> 1;
}

/*
 * Does slot S carry an owner's record (start times, address, handle)?  A
 * claimer writes it right after its claim, and every owner and cleaner
 * clears it before giving the slot back: a free slot has none, and an
 * owner word without one is a claimer of a moment ago or a scribble
 * (recover.c, audit.c).
 */
static inline bool tc__owner_record(struct tc_rslot *s)
{
	return tc__ld(&s->start) || tc__ld(&s->tstart) || tc__ld(&s->base) ||
	       tc__ld(&s->cookie);
}
uint32_t tc__self_tid(void);
void tc__push_back_chain(tc_cache *c, struct tc_rslot *s); /* a slot's detached chain */
bool tc__audit_orphaned(tc_cache *c); /* state AUDITING and its auditor dead */

/* alloc.c */
uint32_t tc__class_of(uint64_t bytes);
struct tc_entry *tc__alloc_block(tc_cache *c, struct tc_rslot *s, uint64_t bytes, int *rc);
void tc__push_free(tc_cache *c, struct tc_entry *e, uint32_t cls);
/*
 * The bump word (tc_hdr.bump): the carved units in the low 32 bits, sealed
 * with a tag of them keyed with the segment's seed in the high 32
 * (alloc.c).  tc__bump_seal makes
 * the word for UNITS under the segment's SEED; tc__carved reads the word
 * once and gives its units (0 .. arena_units), or TC_BUMP_BAD when it fails
 * its seal (a scribble).  Every reader of the carved end goes through
 * tc__carved.  A word equal to the last one this process validated
 * (bump_seen) passes without hashing again: the seal depends on the word
 * alone.
 */
#define TC_BUMP_BAD UINT64_MAX
static inline uint64_t tc__bump_seal(uint64_t seed, uint64_t units)
{
	/* The units xor the seed (and a constant of this word's own), through
	 * splitmix64's finalizer (a bijection that avalanches): one flipped
	 * bit of the units changes about half the tag.  Not a MAC: anyone with
	 * the seed (it is in the segment) can seal; a scribble cannot. */
	uint64_t x = (units & 0xffffffffu) ^ seed ^ 0x62756d7077726431ull; /* "bumpwrd1" */
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	x ^= x >> 31;
	return (x & ~0xffffffffull) | (units & 0xffffffffu);
}
static inline uint64_t tc__bump_units(tc_cache *c, uint64_t word)
{
	uint64_t units = word & 0xffffffffu;
	if (word == __atomic_load_n(&c->bump_seen, __ATOMIC_RELAXED))
		return units;
	if (units > c->arena_units || word != tc__bump_seal(c->seed, units))
		return TC_BUMP_BAD;
	/* Stored only when the word changed since: once the arena is carved
	 * out, the handle's line is never written here again. */
	__atomic_store_n(&c->bump_seen, word, __ATOMIC_RELAXED);
	return units;
}

struct tc_entry *tc__pop_free(tc_cache *c, uint32_t cls);
uint64_t tc__listed_head(tc_cache *c, uint32_t cls); /* 0 unless a pop would take its block */
bool tc__free_block(tc_cache *c, struct tc_entry *e);

/* coalesce.c */
struct tc_entry *tc__coalesce(tc_cache *c, struct tc_rslot *s, uint32_t cls);
void tc__coalesce_recover(tc_cache *c, struct tc_rslot *s); /* S: the turn's slot */
uint64_t tc__merges(tc_cache *c);
bool tc__coalescing(tc_cache *c);
/* Could turning the clock ever make room for class CLS?  1, 0 never, -1 unknown */
int tc__room_census(tc_cache *c, struct tc_rslot *s, uint32_t cls, uint64_t budget);
uint64_t tc__census_reads(void); /* headers read by this process's censuses (tests) */
uint64_t tc__free_bytes(tc_cache *c); /* bytes on every free list (the nfree gauges) */
uint32_t tc__tile_class(uint64_t units); /* class of the next block cutting UNITS (0 or >= 4) */
extern void (*tc__df_test_hook)(int point);
enum { TC_DF_HOOK_CLAIMED = 1, TC_DF_HOOK_HELD, TC_DF_HOOK_REWRITE, TC_DF_HOOK_PUSH,
       TC_DF_HOOK_LIVE, TC_DF_HOOK_DRAIN_WAIT, TC_DF_HOOK_DRAIN_EMPTY };

/* index.c: the lock-free index (its read half is index.h, inline) */
int  tc__lookup(tc_cache *c, uint64_t hash, const void *key, size_t klen, uint32_t kind,
		uint64_t **slotp, uint64_t *word, struct tc_entry **ent);
int  tc__insert_new(tc_cache *c, uint64_t hash, const void *key, size_t klen,
		    uint32_t kind, struct tc_entry *e, uint64_t ref, bool stamp, bool *seen);
int  tc__insert(tc_cache *c, uint64_t hash, const void *key, size_t klen, uint32_t kind,
		struct tc_entry *e, bool *seen);
int  tc__remove_slot(tc_cache *c, struct tc_rslot *s, uint64_t *slotp, uint64_t w,
		     int ctr);
/* Does the block H, which an index word names, reach the block E (E not
 * named by an index word itself)?  tc__dto_reaches. */
typedef bool (*tc__reach_fn)(tc_cache *c, struct tc_entry *h, struct tc_entry *e);
bool tc__inflight_published(tc_cache *c, struct tc_entry *e, tc__reach_fn reaches);
int  tc__evict_block(tc_cache *c, struct tc_rslot *s, struct tc_entry *e);
struct tc_entry *tc__block_of(tc_cache *c, uint64_t ref, uint32_t kind, uint32_t *vlen);
struct tc_entry *tc__block_kv(tc_cache *c, uint64_t ref, uint32_t kind, uint32_t *klen,
			      uint32_t *vlen, uint32_t *cls);
/* An index entry as checked by tc__slot_entry(): each field loaded once. */
struct tc__sview {
	struct tc_entry *e;
	uint64_t hash;
	uint32_t klen, vlen, kind, cls;
};
int  tc__slot_entry(tc_cache *c, uint64_t bi, uint64_t w, struct tc__sview *v);
/* A pass over the index from a shared cursor (tc__walk_buckets); the
 * caller's state follows it in a struct of its own. */
struct tc__walk {
	uint64_t *cursor;    /* shared hand in the header; atomic add */
	uint64_t budget;     /* buckets */
	void (*fn)(tc_cache *c, struct tc__walk *w, struct tc_rslot *rs, uint64_t *slotp,
		   uint64_t word, const struct tc__sview *v);
	bool stop;           /* set by FN: no further bucket */
	uint64_t scanned;    /* words looked at */
};
int  tc__walk_buckets(tc_cache *c, struct tc__walk *w);
bool tc__walk_bucket(tc_cache *c, struct tc__walk *w, uint64_t bi, struct tc_rslot *rs);

/* kv.c: the get/set family and the write engine */
/* One write of tc__write: positional zeros are the defaults. */
struct tc__wreq {
	uint32_t kind;       /* TC_KIND_* */
	const void *key;
	size_t klen;
	const void *val;     /* the new value (SET, ADD, CAS) */
	size_t vlen;
	uint32_t type;
	uint64_t ttl_ms;     /* TC_TTL_DEFAULT: the TTL policy's */
	int op;              /* TC_OP_* */
	uint64_t expect;     /* TC_OP_CAS: the version replaced */
	int64_t delta;       /* TC_OP_INCR */
	int64_t *out;        /* TC_OP_INCR: the new count, on success */
	uint32_t aux;        /* tc_entry.aux */
	uint64_t *version;   /* the version published, on success (may be NULL) */
};
int  tc__write(tc_cache *c, const struct tc__wreq *q);
int  tc__get_quiet(tc_cache *c, const void *key, size_t klen, void *buf, size_t cap,
		   tc_meta *meta);
int  tc__del_version(tc_cache *c, uint32_t kind, const void *key, size_t klen,
		     uint64_t version);
int  tc__read_kind(tc_cache *c, uint32_t kind, const void *key, size_t klen, void *buf,
		   size_t len, uint32_t type, uint64_t *version);

/* evict.c: the eviction policies (room.c and room.h: memory is full) */
int  tc__evict(tc_cache *c, struct tc_rslot *s, uint32_t want_cls, bool need_slot);
/* What one call of the clock saw, for a writer short of a slot (room.c). */
struct tc__clock_note {
	uint64_t buckets; /* buckets visited */
	uint64_t keys;    /* ordinary keys passed, whatever their reference bits */
};
int  tc__evict_note(tc_cache *c, struct tc_rslot *s, uint32_t want_cls, bool need_slot,
		    struct tc__clock_note *note);
int  tc__evict_behind(tc_cache *c, struct tc_rslot *s, uint64_t spread);
int  tc__expire_pass(tc_cache *c, struct tc_rslot *s, uint64_t budget, tc_sweep_report *rep);

/* recover.c: a process died */
int  tc__clean_dead(tc_cache *c, struct tc_rslot *self, tc_sweep_report *rep);

/* runsweep.c (entries) and run.c (roots), for audit.c: run code marks what
 * it hangs off index entries and header roots */
typedef void (*tc__mark_fn)(void *ctx, uint64_t ref);
void tc__audit_entry(tc_cache *c, struct tc_entry *e, tc__mark_fn mark, void *ctx);
void tc__audit_roots(tc_cache *c, tc__mark_fn mark, void *ctx);

/* audit.c: the tests' hooks */
extern void (*tc__audit_test_hook)(uint64_t blocks_relinked);
extern void *(*tc__audit_calloc)(size_t n, size_t size);

/* csum.c: value checksums (TC_OPT_CHECKSUM; layout.h at tc_entry) */
uint64_t tc__csum(tc_cache *c, uint64_t hash, uint64_t version, int64_t expires,
		  uint32_t vlen, uint32_t type, uint32_t aux, const void *val);
void tc__csum_seal(tc_cache *c, struct tc_entry *e, size_t klen);
int  tc__csum_check(tc_cache *c, const struct tc_entry *e, uint64_t hash, size_t klen,
		    uint32_t cls, uint64_t version, int64_t expires, uint32_t vlen,
		    uint32_t type, uint32_t aux, const void *val);

/* runsweep.c: the memory of ended runs (run.c has runs and DTO lists) */
#define RUN_GEN(w) ((uint32_t)((w) >> 32)) /* tc_hdr.run_word: generation */
#define RUN_REF(w) ((w) & 0xffffffffu)     /* tc_hdr.run_word: anchor ref */
static inline uint64_t tc__run_word(tc_cache *c)
{
	return tc__ld(&c->h->run_word);
}
int  tc__sweep_runs(tc_cache *c, uint64_t budget); /* lists of ended runs removed */
void tc__dto_retire_chain(tc_cache *c, struct tc_rslot *s, struct tc_entry *head);
bool tc__dto_reaches(tc_cache *c, struct tc_entry *h, struct tc_entry *e);
struct tc_entry *tc__dto_elem(tc_cache *c, uint64_t ref, uint64_t hash, uint32_t klen,
			      uint32_t *vlen, uint32_t *cls);

/* policy.c: TTL policies */
uint64_t tc__policy_ttl(tc_cache *c, const void *key, size_t klen);
uint32_t tc__policy_count(tc_cache *c);

/* kv.c: the write ops of tc__write */
enum { TC_OP_SET, TC_OP_ADD, TC_OP_CAS, TC_OP_EXPIRE, TC_OP_INCR, TC_OP_APPEND };

#define EVICT_SCAN_MAX 1024 /* buckets per eviction or run sweep from tc__make_room */
#define RECLAIM_BATCH (1024 * 1024ull) /* bytes retired before an early reclaim (room.h) */

/* Bound of every retry loop over shared memory (a scribbled segment must
 * not make one spin for ever). */
#define TC_MAX_ATTEMPTS 10000

/* Little-endian 64-bit codec (counters, rate windows, snapshots). */
static inline void tc__le64_put(uint8_t *p, int64_t v)
{
	uint64_t u = (uint64_t)v;
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(u >> (8 * i));
}

static inline int64_t tc__le64_get(const uint8_t *p)
{
	uint64_t u = 0;
	for (int i = 0; i < 8; i++)
		u |= (uint64_t)p[i] << (8 * i);
	return (int64_t)u;
}

/* Clock: CLOCK_REALTIME through the vDSO; see docs/design.md "Clock". */
static inline int64_t tc__now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* NOW - THEN in ms, THEN a time read from the segment (untrusted): a THEN
 * so far back that the difference overflows is the oldest there is
 * (INT64_MAX), one so far ahead the newest (INT64_MIN), never a signed
 * overflow. */
static inline int64_t tc__age_ms(int64_t now, int64_t then)
{
	int64_t d;
	if (__builtin_sub_overflow(now, then, &d))
		return then < 0 ? INT64_MAX : INT64_MIN;
	return d;
}

/* Cheaper clock for the read path's expiry check: CLOCK_REALTIME_COARSE. */
static inline int64_t tc__now_ms_coarse(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME_COARSE, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline uint64_t tc__mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Block size of size class CLS: 64, then four steps per power of two. */
static inline uint64_t tc__class_size_calc(uint32_t cls)
{
	if (cls == 0)
		return 64;
	uint32_t lg = 6 + (cls - 1) / 4, sub = (cls - 1) % 4;
	return (1ull << lg) + (uint64_t)(sub + 1) * (1ull << (lg - 2));
}

/* tc__class_size_calc of the classes in use, as a table: a write asks for
 * the size of a class four times (its pop, the retire of the old block,
 * the walk that frees one, the free), and one load is cheaper than the
 * arithmetic (36 of the 968 instructions of an overwrite, callgrind).
 * tests/test_alloc.c checks the two agree. */
#define TC_CSZ(k)   ((k) == 0 ? 64u : (1u << (6 + ((k) - 1) / 4)) + \
		     ((k) - 1) % 4 * (1u << (4 + ((k) - 1) / 4)) + (1u << (4 + ((k) - 1) / 4)))
#define TC_CSZ4(k)  TC_CSZ(k), TC_CSZ((k) + 1), TC_CSZ((k) + 2), TC_CSZ((k) + 3)
#define TC_CSZ16(k) TC_CSZ4(k), TC_CSZ4((k) + 4), TC_CSZ4((k) + 8), TC_CSZ4((k) + 12)
static const uint32_t tc__class_sizes[TC_CLASSES_USED] = {
	TC_CSZ16(0), TC_CSZ16(16), TC_CSZ16(32), TC_CSZ4(48), TC_CSZ4(52), TC_CSZ(56), TC_CSZ(57)
};
_Static_assert(TC_CLASSES_USED == 58 && TC_CSZ(TC_CLASSES_USED - 1) == 1310720u,
	       "tc__class_sizes covers the classes in use");

static inline uint64_t tc__class_size(uint32_t cls)
{
	if (TC_LIKELY(cls < TC_CLASSES_USED))
		return tc__class_sizes[cls];
	return tc__class_size_calc(cls);
}

/*
 * Ask for the lines of the first min(BYTES, 256) bytes at P, for writing:
 * a new block's header, key and the start of its value (the allocator's
 * and the write's hints).  Straight-line: as a loop it cost twice the
 * instructions.  Always inline: a function that only prefetches has no
 * effect GCC must keep.
 */
static inline __attribute__((always_inline)) void tc__prefetch_w(const void *p, uint64_t bytes)
{
	const uint8_t *b = p;
	__builtin_prefetch(b, 1);
	if (bytes > 64)
		__builtin_prefetch(b + 64, 1);
	if (bytes > 128)
		__builtin_prefetch(b + 128, 1);
	if (bytes > 192)
		__builtin_prefetch(b + 192, 1);
}

/* The block named by REF, bounds-checked against the arena, or NULL. */
static inline struct tc_entry *tc__block(tc_cache *c, uint64_t ref)
{
	if (TC_UNLIKELY(ref == 0 || ref > c->arena_units))
		return NULL;
	uint64_t off = (ref - 1) * TC_BLOCK_UNIT;
	if (TC_UNLIKELY(off + TC_ENTRY_HDR > c->arena_bytes))
		return NULL;
	return (struct tc_entry *)(c->arena + off);
}

static inline uint64_t tc__ref_of(tc_cache *c, const struct tc_entry *e)
{
	return (uint64_t)((const uint8_t *)e - c->arena) / TC_BLOCK_UNIT + 1;
}

/* One more in the counter at P, which has a single writer (the slot's
 * owner): one add to memory on x86-64, a plain load and store elsewhere and
 * under TSan.  Not a locked add: no other writer, and a reader of another
 * process sees the old or the new value of the aligned word. */
static inline void tc__bump(uint64_t *p)
{
#if defined(__x86_64__) && !defined(TC_TSAN)
	__asm__("addq $1, %0" : "+m"(*p));
#else
	tc__st(p, tc__ld(p) + 1);
#endif
}

/* Owner-only counter bump: the slot's counters have a single writer. */
static inline void tc__count(struct tc_rslot *s, int i)
{
	if (s)
		tc__st(&s->ctr[i], tc__ld(&s->ctr[i]) + 1);
}

static inline void tc__count_n(struct tc_rslot *s, int i, uint64_t n)
{
	if (s)
		tc__st(&s->ctr[i], tc__ld(&s->ctr[i]) + n);
}

/* Account N to counter I of slot S, or straight to the totals without a slot. */
static inline void tc__acct(tc_cache *c, struct tc_rslot *s, int i, uint64_t n)
{
	if (s)
		tc__count_n(s, i, n);
	else
		tc__add(&c->h->tot[i], n);
}

/* Is KIND one of the kinds the index names (ordinary keys, DTO list heads,
 * load claims, rate windows)?  Run anchors and policy tables hang off the
 * header. */
static inline bool tc__index_kind(uint32_t kind)
{
	return kind == TC_KIND_KEY || kind == TC_KIND_DTO || kind == TC_KIND_LOAD ||
	       kind == TC_KIND_RATE;
}

/* Does a block of KIND carry a checksum in a segment with checksums?  The
 * kinds the index names and the run anchor; not the TTL policy table
 * (docs/design.md, "Value checksums"). */
static inline bool tc__csum_kind(uint32_t kind)
{
	return tc__index_kind(kind) || kind == TC_KIND_RUN;
}

static inline const uint8_t *tc__ekey(const struct tc_entry *e)
{
	return (const uint8_t *)e + TC_ENTRY_HDR;
}

static inline const uint8_t *tc__eval(const struct tc_entry *e, uint32_t klen)
{
	return (const uint8_t *)e + TC_ENTRY_HDR + TC_ALIGN8(klen);
}

static inline uint64_t tc__entry_bytes(size_t klen, size_t vlen)
{
	return TC_ENTRY_HDR + TC_ALIGN8(klen) + vlen;
}

/* Block bytes of an entry of KLEN and VLEN in a segment with checksums. */
static inline uint64_t tc__entry_bytes_cs(size_t klen, size_t vlen)
{
	return TC_ENTRY_HDR + TC_ALIGN8(klen) + TC_ALIGN8(vlen) + 8;
}

/* Block bytes a writer of C allocates for an entry of KLEN and VLEN. */
static inline uint64_t tc__entry_need(tc_cache *c, size_t klen, size_t vlen)
{
	return c->csum ? tc__entry_bytes_cs(klen, vlen) : tc__entry_bytes(klen, vlen);
}

/*
 * Push block E, named REF, on a tagged lock-free stack (Treiber) whose head
 * word *HEADP has the first block's ref in its low 32 bits: E's link takes
 * that ref, then one CAS swings the head to NEXT(head, REF) (a new tag
 * above the ref, so that a pop that lost E to a pop and push in between
 * fails its CAS), again until the CAS wins.  SETTLE, when not NULL, is
 * given each head read before E's link is written (the retire list's
 * hand-over, epoch.c).  The free lists (alloc.c) and the retire list
 * (epoch.c) push through here; NEXT and SETTLE are constants at each call.
 */
static inline __attribute__((always_inline)) void
tc__stack_push(tc_cache *c, uint64_t *headp, struct tc_entry *e, uint64_t ref,
	       uint64_t (*next)(uint64_t head, uint64_t ref),
	       void (*settle)(tc_cache *c, uint64_t head))
{
	for (;;) {
		uint64_t head = tc__ld(headp);
		if (settle)
			settle(c, head);
		tc__st(&e->link, head & 0xffffffffu);
		if (tc__cas(headp, head, next(head, ref)) == head)
			return;
	}
}

/*
 * What tc_rslot.ret_hash records of the entry E, which a cleaner compares
 * with the block it finds at ret_ref: its hash, which the kind seeds, or,
 * for the blocks without a key (a run anchor, a TTL policy table: hash 0),
 * their kind.  Recorded as hash 0, an old policy table's record matched
 * its block reused as a run anchor of the same generation, which a live
 * starter had not published yet (test_a_ret_record_never_names_a_block_
 * of_another_kind).
 */
static inline uint64_t tc__ret_ident(const struct tc_entry *e)
{
	uint64_t h = tc__ld(&e->hash);
	return h ? h : ~(uint64_t)tc__ld(&e->kind);
}

/* Name the published entry E that slot S is about to unlink (see
 * tc_rslot.ret_ref); the full barrier of the unlinking CAS orders it. */
static inline void tc__note_unlink(struct tc_rslot *s, uint64_t ref, const struct tc_entry *e)
{
	tc__st(&s->ret_hash, tc__ret_ident(e));
	tc__st(&s->ret_version, tc__ld(&e->version));
	tc__st(&s->ret_ref, ref);
}

/* The carved end in units, or TC_BUMP_BAD (see tc__bump_seal). */
static inline uint64_t tc__carved(tc_cache *c)
{
	uint64_t w = tc__ld(&c->h->bump);
	if (TC_LIKELY(w == __atomic_load_n(&c->bump_seen, __ATOMIC_RELAXED)))
		return w & 0xffffffffu;
	return tc__bump_units(c, w);
}

#endif /* TC_INTERNAL_H */
