/* SPDX-License-Identifier: MIT */
/*
 * tickcache.h - a lock-free shared-memory cache for the processes of one host.
 *
 * One POSIX shared-memory segment per strategy ("/tickcache.<name>") holds a
 * lock-free hash index, an arena of immutable entries and a table of reader
 * slots.  Readers never lock and never write a shared line on a hit; writers
 * publish a new entry with one 64-bit compare-and-swap.  See docs/design.md.
 *
 * Conventions: every action returns 0 on success or a negative code: a
 * negated errno (-ENOENT, -EEXIST, ...) or one of the TC_E* codes below,
 * which lie below the errno range.  tc_strerror() names both.  Predicates
 * return bool.  The library never prints and never exits.
 *
 * Threads: a tc_cache handle may be shared by any number of threads of one
 * process.  Each thread that uses a handle takes a reader slot in the segment
 * on its first call and gives it back when it exits or the handle is closed.
 * fork(): the child must open its own handles; an inherited handle may only
 * be passed to tc_close().
 */
#ifndef TICKCACHE_H
#define TICKCACHE_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TC_VERSION_MAJOR 0
#define TC_VERSION_MINOR 1
#define TC_VERSION_PATCH 0
#define TC_VERSION_STRING "0.1.0"

/* ------------------------------------------------------------------ */
/* Error codes                                                          */
/* ------------------------------------------------------------------ */

/*
 * Library codes, below any errno.  The X-macro keeps codes and messages in
 * one place; tc_strerror() is generated from it.
 */
#define TC_ERRNO_MAP(XX)                                                     \
	XX(ECONFLICT, -30800, "version mismatch (compare-and-set lost)")     \
	XX(ETYPE,     -30801, "stored value has another type")               \
	XX(EGEOMETRY, -30802, "segment geometry differs from the one asked") \
	XX(EVERSION,  -30803, "incompatible segment layout version")         \
	XX(ECORRUPT,  -30804, "segment failed validation (corrupt)")         \
	XX(ENORUN,    -30805, "no run is active")

enum {
#define TC__ERR_ENUM(name, val, msg) TC_##name = (val),
	TC_ERRNO_MAP(TC__ERR_ENUM)
#undef TC__ERR_ENUM
	TC_ERRNO_LAST = -30805
};

/* ------------------------------------------------------------------ */
/* Limits, flags and constants                                          */
/* ------------------------------------------------------------------ */

#define TC_NAME_MAX      64              /* segment name, without "tickcache." */
#define TC_KEY_MAX       512             /* bytes; keys are 1..TC_KEY_MAX */
#define TC_VALUE_MAX     (1024u * 1024u) /* bytes; values are 0..TC_VALUE_MAX */

/* Minimum geometry accepted by tc_open (a smaller non-zero value: -EINVAL). */
#define TC_MIN_ENTRIES   64
#define TC_MIN_MEMORY    (64u * 1024u)
#define TC_MIN_READERS   1
/* Maximum geometry. */
#define TC_MAX_ENTRIES   (1ull << 30)
#define TC_MAX_MEMORY    (32ull << 30)
#define TC_MAX_READERS   4096
/* Defaults for zero fields of tc_opts. */
#define TC_DEFAULT_ENTRIES 65536
#define TC_DEFAULT_MEMORY  (64ull << 20)
#define TC_DEFAULT_READERS 128
#define TC_DEFAULT_MODE    0600

/* tc_opts.flags */
#define TC_CREATE 0x1u   /* create the segment when it does not exist */
#define TC_EXCL   0x2u   /* with TC_CREATE: fail with -EEXIST if it exists */
#define TC_LAZY   0x4u   /* do not prefault the mapping at attach (tools: fast
			  * attach, first touches fault pages in instead) */
#define TC_TOOL   0x8u   /* a maintenance handle (sweeper, CLI, monitoring): its
			  * threads read through the TC_TOOL_READERS slots kept
			  * beyond max_readers, never through a strategy's */
#define TC_WAIT   0x10u  /* without TC_CREATE: a missing segment is waited for,
			  * up to tc_opts.wait_ms, instead of -ENOENT (a strategy
			  * started before the feed that creates its segment) */
#define TC_CHECKSUM 0x20u /* create: every value (DTOs and the run anchor too, not
			  * the TTL policy table) carries an XXH3 checksum, written
			  * with it and verified by every read that returns it
			  * (TC_ECORRUPT on a mismatch).  Recorded in the segment:
			  * every handle of every process then uses it.  Costs 8
			  * bytes per value (more when it crosses a size class) and
			  * a hash of the value per read and per write.  Asked of
			  * a segment created without it: TC_EGEOMETRY. */

/* Reader slots every segment keeps for TC_TOOL handles, beyond max_readers. */
#define TC_TOOL_READERS 4

/* tc_opts.eviction */
#define TC_EVICT_NONE 0  /* full means -ENOSPC; nothing is dropped, ever */
#define TC_EVICT_LRU  1  /* approximate LRU (CLOCK) of ordinary keys when memory or
			  * entries run out (never rate windows, load claims, DTO lists) */

/* ttl_ms on writes: 0 = never expires, TC_TTL_DEFAULT = segment policy.
 * A TTL above TC_TTL_MAX (100 years) is -EINVAL: it is almost always a
 * negative number that wrapped around ((uint64_t)-5), not a wish. */
#define TC_TTL_DEFAULT UINT64_MAX
#define TC_TTL_MAX     3155760000000ull  /* ms: 100 years of 365.25 days */

/* Types: 0 = untyped; TC_TYPE_COUNTER = 8-byte little-endian int64 counter. */
#define TC_TYPE_NONE    0u
#define TC_TYPE_COUNTER 0xC0117E40u

/* ------------------------------------------------------------------ */
/* Types                                                                */
/* ------------------------------------------------------------------ */

typedef struct tc_cache tc_cache;   /* one attached segment, opaque */

typedef struct tc_opts {
	uint64_t max_entries;    /* index capacity (live keys); 0 = TC_DEFAULT_ENTRIES */
	uint64_t memory_bytes;   /* arena for keys and values; 0 = TC_DEFAULT_MEMORY */
	uint32_t max_readers;    /* reader slots = threads that may use it at once; 0 = default */
	uint32_t mode;           /* permission bits on create; 0 means 0600; applied exactly */
	uint64_t default_ttl_ms; /* used when a write passes TC_TTL_DEFAULT; 0 = never expires */
	int      eviction;       /* TC_EVICT_NONE or TC_EVICT_LRU */
	unsigned flags;          /* TC_CREATE, TC_EXCL, TC_LAZY, TC_TOOL, TC_WAIT,
				  * TC_CHECKSUM */
	uint64_t wait_ms;        /* with TC_WAIT: longest wait for the segment to
				  * appear; read only when TC_WAIT is set */
} tc_opts;

typedef struct tc_meta {
	size_t   len;        /* value length in bytes */
	uint32_t type;       /* application type id, 0 = untyped */
	uint64_t version;    /* grows on every change of the key, never reused */
	int64_t  expires_ms; /* absolute CLOCK_REALTIME milliseconds, 0 = never */
} tc_meta;

/* One read of tc_get_many / tc_peek_many: the caller fills key, klen, buf
 * and cap; the call fills meta and rc. */
typedef struct tc_req {
	const void *key;     /* 1..TC_KEY_MAX bytes */
	size_t      klen;
	void       *buf;     /* tc_get_many: where the value goes (ignored by tc_peek_many) */
	size_t      cap;     /* bytes at buf */
	tc_meta     meta;    /* filled as tc_get fills META, when rc is 0 or -E2BIG */
	int         rc;      /* what tc_get (tc_peek) would return for this key */
} tc_req;

/* Number of allocator size classes reported in tc_stats. */
#define TC_NCLASSES 64

/*
 * Counters count for the whole life of the segment, including the work of
 * processes that have exited (killed ones too, exactly).  They are kept per
 * reader slot (no shared line on the hot path), and a slot keeps them from
 * owner to owner: tc_get_stats sums every slot's.
 */
typedef struct tc_stats {
	/* operation counters */
	uint64_t hits;          /* tc_get/tc_peek that found a live value */
	uint64_t misses;        /* tc_get/tc_peek that found nothing live */
	uint64_t sets;          /* successful tc_set, tc_cas, tc_incr, tc_expire,
				 * tc_dto_append, policy changes, and the writes
				 * inside tc_rate_limit and tc_get_or_load */
	uint64_t adds;          /* successful tc_add */
	uint64_t deletes;       /* successful tc_del */
	uint64_t expirations;   /* entries removed because their TTL passed */
	uint64_t evictions;     /* entries dropped by the LRU policy */
	uint64_t errors;        /* calls that failed other than by miss/exists/conflict */
	uint64_t ops;           /* all of the above calls */
	uint64_t clears;        /* tc_purge calls and ended runs */
	uint64_t keys_deleted;  /* keys removed by tc_purge */
	double   hit_rate;      /* hits / (hits + misses), 0 when none */
	/* sampled latency: one call in 64 is timed (of a thread's tc_get calls
	 * on one handle, and of the writes through one reader slot) */
	uint64_t lat_samples;   /* timed calls */
	uint64_t lat_mean_ns;   /* mean of the timed calls */
	uint64_t slow_ops;      /* timed calls slower than slow_threshold_ns */
	uint64_t slow_threshold_ns;
	/* gauges */
	uint64_t entries;       /* live keys (expired ones not yet swept count) */
	uint64_t max_entries;   /* index capacity */
	uint64_t index_slots;   /* slots in the index (>= max_entries) */
	uint64_t memory_bytes;  /* arena size */
	uint64_t memory_used;   /* bytes in allocated blocks (live, retired, in flight) */
	uint64_t memory_retired;/* bytes waiting for a grace period */
	uint64_t memory_carved; /* bytes of the arena ever handed to a size class (all of
				 * it while a scribbled carve pointer awaits tc_audit) */
	uint64_t merges;        /* runs of free blocks re-cut for a class that had
				 * none (memory moving between size classes) */
	uint32_t max_readers;
	uint32_t readers;       /* reader slots in use (of max_readers) */
	uint32_t tool_readers;  /* of the TC_TOOL_READERS slots, those in use */
	uint32_t attached;      /* processes attached */
	uint32_t nclasses;      /* size classes in use below */
	uint64_t epoch;         /* global reclamation epoch */
	uint64_t epoch_lag;     /* epoch minus the oldest active reader's, 0 if none */
	int64_t  created_ms;    /* CLOCK_REALTIME ms at creation */
	uint64_t uptime_ms;     /* since creation */
	struct {
		uint32_t size;      /* block size of the class */
		uint64_t used;      /* blocks allocated */
		uint64_t free;      /* blocks on the class free list */
	} classes[TC_NCLASSES];
	/* runs and TTL policies */
	uint64_t run_generation;/* the run generation: odd while a run is active */
	uint64_t dto_lists;     /* DTO lists in the index, ended runs' included
				 * until reclaimed (each also counts in entries);
				 * one high per process killed inside a list's
				 * insert or unlink, until tc_audit */
	uint32_t run_active;    /* 1 while a run is active, else 0 */
	uint32_t ttl_policies;  /* prefixes in the TTL policy table */
	/* TC_CHECKSUM segments: reads whose value failed its checksum (each
	 * returned TC_ECORRUPT); always 0 without checksums */
	uint64_t checksum_failures;
} tc_stats;

/* Static description of an attached segment. */
typedef struct tc_info {
	char     name[TC_NAME_MAX + 1];
	uint32_t layout_version;
	uint64_t max_entries;
	uint64_t memory_bytes;
	uint32_t max_readers;
	uint32_t mode;
	uint64_t default_ttl_ms;
	int      eviction;
	uint64_t segment_bytes;   /* size of the shm object */
	int64_t  created_ms;
	uint32_t creator_pid;
	unsigned flags;           /* TC_CHECKSUM when the segment was created with it */
} tc_info;

/* ------------------------------------------------------------------ */
/* Lifecycle                                                            */
/* ------------------------------------------------------------------ */

/*
 * tc_open - attach to (and with TC_CREATE, create) segment NAME.
 * @out:  receives the handle on success, NULL on failure.
 * @name: [A-Za-z0-9][A-Za-z0-9_.-]{0,63}; maps to POSIX object /tickcache.NAME.
 * @opts: NULL attaches only.  With opts, non-zero geometry fields must equal
 *        the segment's (TC_EGEOMETRY otherwise); TC_CREATE creates a missing
 *        segment, TC_EXCL fails with -EEXIST when it exists.
 *
 * TC_WAIT (not with TC_CREATE): while the segment does not exist, wait for
 * it, polling with a growing sleep (1 ms doubling to 50 ms), up to
 * opts->wait_ms; -ETIMEDOUT when it does not appear in time.  A segment
 * that appears half built is attached once its creator finishes (the
 * attach waits on the creator's flock).  The other flags apply as usual.
 *
 * Create-or-attach is serialised by flock() on the segment; the header is
 * published last.  The memory is reserved with posix_fallocate(), so a full
 * /dev/shm gives -ENOSPC here and leaves nothing behind.  A segment whose
 * creator died half way gives TC_ECORRUPT (remove it with tc_unlink).
 * An empty object (a creator that died before sizing it) is TC_ECORRUPT to
 * an attach and is built anew by TC_CREATE (without TC_EXCL).
 * An object of another size than its header records (truncated, extended)
 * is TC_ECORRUPT.  The size is checked only here: truncating the object of
 * an attached segment raises SIGBUS in the processes that touch the part
 * cut off, which the library does not catch (docs/design.md, "What a
 * scribble can do").
 * The flock is waited for at most TICKCACHE_LOCK_WAIT_MS milliseconds
 * (environment, default 5000): a holder stopped inside tc_open or tc_audit
 * (SIGSTOP, a debugger) gives -ETIMEDOUT instead of blocking every opener.
 * Returns 0, -EINVAL, -ENOENT, -EEXIST, -ENOSPC, -EACCES, -EUSERS (attach
 * table full), -ETIMEDOUT (TC_WAIT: the segment did not come; or the flock
 * was held longer than TICKCACHE_LOCK_WAIT_MS), TC_EGEOMETRY, TC_EVERSION,
 * TC_ECORRUPT, -ENOMEM.
 */
int tc_open(tc_cache **out, const char *name, const tc_opts *opts);

/*
 * tc_close - detach.  Gives back every reader slot this process holds on the
 * handle.  No thread may use the handle during or after the call; NULL is
 * ignored.  The segment itself stays (see tc_unlink).
 */
void tc_close(tc_cache *c);

/*
 * tc_unlink - remove segment NAME.  The segment is marked removed first:
 * every handle still attached, in any process, gets -ESTALE from every data
 * call from then on, also inside a read section entered before (reopen to
 * reach a segment created anew under the same name), though its memory
 * stays mapped until tc_close; tc_peek pointers taken before stay valid
 * until the outermost tc_read_unlock.  The segment's flock is held (waited
 * for as tc_open does, then done without) from the mark to the removal of
 * the name: an unlinker killed in between leaves the name to the next
 * tc_open, which finishes the removal (an attach gets -ENOENT, a creator a
 * new segment).  shm-inspect unlink
 * refuses while live processes are attached unless forced.
 * Returns 0, -ENOENT, -EINVAL, -EACCES.
 */
int tc_unlink(const char *name);

/* tc_strerror - a static message for any return code of this library. */
const char *tc_strerror(int rc);

/* tc_name_valid - true when NAME is a valid segment name. */
bool tc_name_valid(const char *name);

/* ------------------------------------------------------------------ */
/* Reads                                                                */
/* ------------------------------------------------------------------ */

/*
 * tc_get - copy the live value of KEY into BUF.
 * Lock-free; never writes shared memory but the caller's own reader slot (and
 * an LRU reference bit when it is clear).  The copy is of one immutable
 * version: never torn, never mixed.  Races with any writer: the result is a
 * value that was current at some instant during the call.
 * @meta: may be NULL; on success and on -E2BIG it receives the value's
 *        length, type, version and expiry.
 * With TC_CHECKSUM the copy in BUF is verified before the call returns 0;
 * a mismatch is TC_ECORRUPT (BUF and META then hold the damaged bytes and
 * metadata: do not use them).  The answers that rest on the entry without
 * copying it are verified too, in place: -E2BIG (and the META it fills)
 * and -ENOENT for an expired entry (an expiry scribbled into the past is
 * TC_ECORRUPT, not a miss).  A damaged entry answers TC_ECORRUPT until a
 * tc_set or tc_del of its key, or the expiry pass once its expiry is past,
 * removes it.  Without TC_CHECKSUM, a scribble into the value's bytes is
 * returned as the value (docs/design.md, "What a scribble can do").
 * Returns 0, -ENOENT (absent or expired), -E2BIG (cap < length), -EINVAL,
 * -EUSERS (no reader slot), -ESTALE (the segment was unlinked), -EBUSY (an
 * audit at work), TC_ECORRUPT.
 */
int tc_get(tc_cache *c, const void *key, size_t klen, void *buf, size_t cap, tc_meta *meta);

/*
 * tc_get_with - tc_get, except that a value longer than CAP is not -E2BIG:
 * it goes, in the same lookup, into a buffer that FN hands out once the
 * length is known.  One lookup and one copy for a value of any size, and a
 * value that fits in BUF costs what tc_get costs (FN is not called).  For a
 * value that does not fit, the call (inside its read section) calls FN(M,
 * ARG) with a private copy of the metadata (M->len is the length as the
 * lookup read and checked it, once), copies the value into the buffer FN
 * returns (at least M->len bytes) and checks that copy as tc_get checks
 * BUF (TC_CHECKSUM: the buffer then holds the damaged bytes, do not use
 * them; and M, given before the copy, is not verified yet: size the buffer
 * by M->len, trust the rest only when the call returns 0).  FN never sees a pointer into the segment.  FN returning NULL (it
 * could not allocate, or does not want the value) makes the call return
 * -ENOMEM with nothing copied.  FN runs inside the read section: keep it
 * short; it may allocate and read (tc_get, tc_peek: sections nest) but must
 * not write, wait (tc_wait, tc_get_or_load) or close a handle.  FN NULL:
 * exactly tc_get.  BUF NULL with CAP 0: every non-empty value goes to FN.
 * @meta: may be NULL; filled (before FN is called) as tc_get fills it.
 * Counted as tc_get (a hit, a miss, or an error for -ENOMEM).
 * Returns 0, -ENOENT, -E2BIG (only with FN NULL), -ENOMEM (FN returned
 * NULL), -EINVAL, -EUSERS, -ESTALE, -EBUSY, TC_ECORRUPT.
 */
typedef void *(*tc_buf_fn)(const tc_meta *meta, void *arg);
int tc_get_with(tc_cache *c, const void *key, size_t klen, void *buf, size_t cap,
		tc_meta *meta, tc_buf_fn fn, void *arg);

/*
 * tc_key_hash - the hash that tc_get computes first for KEY under C's
 * segment (XXH3-64 with the segment's seed): a number to keep for
 * tc_get_hashed, meaningful with C's segment only.  0 for bad arguments
 * (C or KEY NULL, KLEN not 1..TC_KEY_MAX).
 *
 * tc_get_hashed - tc_get_with for a KEY whose hash HASH the caller got from
 * tc_key_hash on the same handle, once, and keeps: a caller that reads the
 * same keys again and again (the quotes of its symbols every tick) saves
 * the hash on each read (about 20 instructions of a hot get of a 27-byte
 * key).  The key is still compared byte for byte, so a HASH that is not
 * KEY's (another key's, another segment's) finds nothing: -ENOENT, never
 * another key's value.  Arguments, counters and returns as tc_get_with.
 */
uint64_t tc_key_hash(tc_cache *c, const void *key, size_t klen);
int tc_get_hashed(tc_cache *c, uint64_t hash, const void *key, size_t klen, void *buf,
		  size_t cap, tc_meta *meta, tc_buf_fn fn, void *arg);

/*
 * tc_read_lock - enter a read section (nestable, per thread).  Memory
 * returned by tc_peek stays valid and unchanged until the outermost
 * tc_read_unlock of this thread.  Entering costs a store to the thread's own
 * reader slot and a compiler barrier (a full fence where membarrier(2) is
 * unavailable).  Keep sections short: a stuck section delays reclamation in
 * every process.  Returns 0, -EUSERS (no reader slot free), -EINVAL,
 * -ESTALE (the segment was unlinked; the section is not entered), -EBUSY
 * (an audit at work).
 */
int tc_read_lock(tc_cache *c);
void tc_read_unlock(tc_cache *c);

/*
 * tc_peek - zero-copy read, only inside a read section of this thread.
 * *val points into the segment and stays valid until the outermost
 * tc_read_unlock.  With TC_CHECKSUM the value is verified before *val is
 * set (a scribble after that, while the caller reads it, is not seen),
 * and an expired entry before -ENOENT, as tc_get's; on a mismatch *val is
 * NULL and the call returns TC_ECORRUPT.
 * Returns 0, -ENOENT, -EINVAL (also outside a section), -ESTALE (the
 * segment was unlinked, also since the section was entered: pointers
 * peeked before stay valid), -EBUSY (an audit at work), TC_ECORRUPT.
 */
int tc_peek(tc_cache *c, const void *key, size_t klen, const void **val, tc_meta *meta);

/* tc_exists - true when KEY holds a live value (with TC_CHECKSUM, one that
 * passes its checksum: a damaged value, for which tc_get answers
 * TC_ECORRUPT, is false). */
bool tc_exists(tc_cache *c, const void *key, size_t klen);

/*
 * tc_get_many - N reads in one call: REQS[i].rc and .meta as tc_get would
 * return and fill them for REQS[i].key into .buf (.cap bytes).  The reads
 * overlap their cache misses (every key is hashed and its bucket and entry
 * fetched before the first copy), so N keys cost far less than N calls.
 * All of them run in one read section of the calling thread: each value is
 * one immutable version current at some instant during the call, but the
 * values of different keys are not one snapshot (a write may land between
 * two of them).  The requests are read in their order, as the same tc_get
 * calls in a row would be: once a request has seen a write, the requests
 * after it see that write and every write made before it (or newer ones),
 * and a key requested twice never answers a newer version, then an older.
 * Requests are independent: one with a bad key or a NULL buf with cap > 0
 * gets -EINVAL, one whose value exceeds cap gets -E2BIG (its meta filled),
 * and the others are read.  Each request's key and klen are read once,
 * together: a request changed by another thread during the call is
 * answered for the key and length read, never with bytes of another layout,
 * and no key is read past the length read with it; the copy reads buf and
 * cap once each and checks them again (a NULL buf with cap > 0 then gets
 * -EINVAL, never a copy into NULL).  Counted as N reads in tc_stats.
 * Lock-free; shared writes as tc_get.  N may be 0 (REQS may then be NULL).
 * Returns the number of requests whose rc is 0, or, with no request read,
 * -EINVAL (NULL c; NULL reqs with N > 0; N > INT_MAX), -EUSERS, -ESTALE or
 * -EBUSY (each request's rc is then that code too, but with N > INT_MAX,
 * when nothing is written).
 */
int tc_get_many(tc_cache *c, tc_req *reqs, size_t n);

/*
 * tc_peek_many - tc_get_many without the copies, only inside a read section
 * of this thread: VALS[i] receives tc_peek's pointer for REQS[i] (NULL
 * unless its rc is 0), valid until the outermost tc_read_unlock.  .buf and
 * .cap are ignored.  Returns as tc_get_many; -EINVAL also outside a section
 * and with NULL vals for N > 0 (each rc then -EINVAL too).
 */
int tc_peek_many(tc_cache *c, tc_req *reqs, size_t n, const void **vals);

/* ------------------------------------------------------------------ */
/* Writes                                                               */
/* ------------------------------------------------------------------ */

/*
 * All writes are lock-free: each builds a new immutable entry and publishes
 * it with one compare-and-swap on the key's index slot (full barrier), so a
 * reader sees the old or the new value whole.  Two writers inserting the same
 * key never create two entries, and a set racing a delete of the same key is
 * never lost (docs/design.md, "Duplicates and lost updates").  Every change
 * gives the key a version larger than any it had, also across delete and
 * re-insert.  ttl_ms: 0 = never expires, TC_TTL_DEFAULT = the segment's
 * policy (TTL prefix table, else default_ttl_ms), else ms from now.
 * Common returns: -EINVAL (NULL key, klen 0 or > TC_KEY_MAX, ttl_ms over
 * TC_TTL_MAX and not TC_TTL_DEFAULT), -EMSGSIZE
 * (vlen > TC_VALUE_MAX), -ENOSPC (full under TC_EVICT_NONE; under
 * TC_EVICT_LRU, nothing evictable can give room: memory held by rate
 * windows, load claims, the active run's DTO lists, or retired blocks that
 * another thread's read section holds back for over 20 ms), -EUSERS,
 * TC_ECORRUPT.
 */
int tc_set(tc_cache *c, const void *key, size_t klen, const void *val, size_t vlen,
	   uint32_t type, uint64_t ttl_ms);

/* tc_set_v - tc_set that also stores the version it published in *VERSION
 * (may be NULL; written only when the call returns 0): the version tc_get
 * reports for KEY until its next change, and the one tc_cas expects. */
int tc_set_v(tc_cache *c, const void *key, size_t klen, const void *val, size_t vlen,
	     uint32_t type, uint64_t ttl_ms, uint64_t *version);

/* tc_add - set only when KEY has no live value; else -EEXIST.  Atomic
 * across processes: of N racing adds exactly one returns 0. */
int tc_add(tc_cache *c, const void *key, size_t klen, const void *val, size_t vlen,
	   uint32_t type, uint64_t ttl_ms);

/* tc_cas - set only when the live version equals EXPECT_VERSION; else
 * TC_ECONFLICT (-ENOENT when absent or expired).  It compares versions and
 * never reads the value: with TC_CHECKSUM a damaged value whose version is
 * intact is replaced, as tc_set replaces it. */
int tc_cas(tc_cache *c, const void *key, size_t klen, uint64_t expect_version,
	   const void *val, size_t vlen, uint32_t type, uint64_t ttl_ms);

/* tc_del - remove KEY.  Returns 0 or -ENOENT (absent or expired). */
int tc_del(tc_cache *c, const void *key, size_t klen);

/* tc_expire - change the TTL of a live KEY (0 removes the expiry).  The
 * value is kept and the version grows.  With TC_CHECKSUM the value carried
 * over is verified first (TC_ECORRUPT, nothing changed, when it fails), as
 * is the counter tc_incr adds to; and tc_add, tc_cas, tc_incr and
 * tc_expire verify a key they find expired before they take it for absent
 * (an expiry scribbled into the past: TC_ECORRUPT, nothing changed).
 * Returns 0 or -ENOENT. */
int tc_expire(tc_cache *c, const void *key, size_t klen, uint64_t ttl_ms);

/*
 * tc_incr - add DELTA to the counter at KEY and return the new value in *out
 * (may be NULL).  A missing key starts from 0 and gets TTL_MS; an existing
 * counter keeps its expiry.  A counter is a value of type TC_TYPE_COUNTER and
 * 8 bytes (little-endian int64); anything else gives TC_ETYPE (with
 * TC_CHECKSUM only when it passes its checksum: a counter whose type or
 * length was scribbled is TC_ECORRUPT).  Wraps on overflow (two's
 * complement).
 */
int tc_incr(tc_cache *c, const void *key, size_t klen, int64_t delta, uint64_t ttl_ms,
	    int64_t *out);

/* ------------------------------------------------------------------ */
/* Waiting for a change                                                 */
/* ------------------------------------------------------------------ */

/* timeout_ms of tc_wait / tc_wait_any: no deadline (so is any value above
 * 100 years). */
#define TC_FOREVER UINT64_MAX

/*
 * tc_wait - wait until KEY's version is greater than VERSION (VERSION 0:
 * until KEY exists), at most TIMEOUT_MS (0: check once, never sleep;
 * TC_FOREVER: no deadline); then fill META (may be NULL) as tc_get would.
 * The caller sleeps in the kernel (a futex in the segment, shared across
 * processes) and is woken by the publish of any writer of any process:
 * tc_set, tc_add, tc_cas, tc_incr, tc_expire, tc_del, expiry and eviction
 * removals, tc_purge, tc_snapshot_load, tc_get_or_load.  A writer pays
 * nothing while nobody waits (no syscall, no shared write).  A version
 * that expires is seen gone at its expiry, without a writer.
 * Concurrency: races with every writer; no wake-up is lost (a write
 * published before the waiter's check is seen by the check, a later one
 * wakes it), and spurious wake-ups are never returned (the key is checked
 * again, with what is left of the timeout).  A waiter killed or stopped
 * blocks nobody and holds no resource (it costs the next writer of its
 * key's shard one wake syscall).  Do not call it inside a read section.
 * Returns 0 (META: the newer version), -ETIMEDOUT (nothing newer in time),
 * -EINTR (a signal handler ran while it slept; call again), -ENOENT
 * (VERSION > 0 and the key is absent: deleted or expired), -EDEADLK (inside
 * a read section of this thread), -EINVAL, the codes of tc_get (-EUSERS,
 * -ESTALE: the segment was unlinked, also while waiting; -EBUSY,
 * TC_ECORRUPT), and the -errno of a futex call that fails otherwise (a
 * seccomp filter that refuses it: an error, never a busy loop).  A writer
 * killed between its publish and its wake leaves the waiter asleep until
 * the dead writer's slot is cleared (the sweeper's next pass, a writer
 * short of memory, tc_readers_clean: the cleaner wakes every flagged
 * word), the next write of a key of its shard, or its timeout.
 */
int tc_wait(tc_cache *c, const void *key, size_t klen, uint64_t version,
	    uint64_t timeout_ms, tc_meta *meta);

/*
 * tc_wait_any - wait until anything was published in the segment since
 * *SEQ, at most TIMEOUT_MS (0: check once; TC_FOREVER: no deadline), then
 * store the new sequence in *SEQ.  Start with *SEQ = 0: the call returns 0
 * at once with the current sequence.  The loop
 *     uint64_t seq = 0;
 *     while (tc_wait_any(c, &seq, TC_FOREVER) == 0)
 *             react();   // read what matters: tc_get, tc_get_many, ...
 * reacts once at start and then after every batch of changes, and never
 * misses one: a publish that the reads of react() did not see makes the
 * next call return at once.  A change may be reported once more than
 * needed (a publish already seen), never less.  What counts as published:
 * everything tc_wait names, of any key, plus DTO appends and run starts and
 * ends (not TTL policy changes).  While a caller is between two calls,
 * the first publish after its last return pays one shared CAS (no
 * syscall); while it sleeps, one FUTEX_WAKE.  Killed or stopped, it costs
 * at most the next writer one of each.  Do not call it inside a read
 * section.  Returns 0, -ETIMEDOUT (*SEQ unchanged), -EINTR, -EDEADLK,
 * -EINVAL, -EUSERS, -ESTALE (the segment was unlinked), -EBUSY, or the
 * -errno of a failed futex call (as tc_wait).
 */
int tc_wait_any(tc_cache *c, uint64_t *seq, uint64_t timeout_ms);

/* ------------------------------------------------------------------ */
/* Runs: point-in-time windows with typed DTO lists                     */
/* ------------------------------------------------------------------ */

/*
 * A run is a point-in-time window shared by every process of the segment:
 * at most one is active.  During a run, DTO lists (application objects of a
 * uint32_t type id) are appended under keys of a namespace of their own
 * (tc_set/tc_get/tc_scan/tc_purge never see them, and a DTO key may equal an
 * ordinary key).  Ending the run makes all of its lists invisible at once,
 * in O(1); their memory comes back through later appends of the same keys,
 * tc_sweep (shm-sweeper), and any writer short of entries or memory, so
 * runs in a row never fill the segment, with or without a sweeper.
 * Every run-scoped call outside a run returns TC_ENORUN.  All calls are
 * lock-free: the run is one 64-bit word and each append one CAS; a process
 * killed at any point blocks nobody, and what it was building or retiring
 * is taken back by the next cleaner of dead processes (tc_sweep, or a writer
 * short of memory), but for the windows of every write: a kill inside the
 * few instructions of an allocation or a retire may leak one block, one
 * inside a dead list's retire walk the rest of that list, until tc_audit.
 */
typedef struct tc_anchor {
	int64_t  ts_ns;      /* the run's timestamp, UTC nanoseconds */
	uint64_t run_id;     /* application id of the run */
	uint64_t generation; /* odd; grows by one on every start and end, so two
			      * runs never share one (wraps after 2^31 runs) */
	int64_t  started_ms; /* CLOCK_REALTIME ms when tc_run_start published it */
	uint32_t starter_pid;/* the process that started it (it may have exited) */
} tc_anchor;

/* Called by tc_dto_each with one DTO; non-zero stops the walk. */
typedef int (*tc_dto_fn)(const void *dto, size_t len, void *arg);

/*
 * tc_run_start - begin a run with anchor (TS_NS, RUN_ID).  Of racing starts
 * exactly one succeeds; the others get -EBUSY, as does a start while a run
 * is active ("clear first").  Returns 0, -EBUSY, -EINVAL, -ENOSPC, -EUSERS,
 * TC_ECORRUPT (the arena's carve pointer scribbled: run tc_audit).
 */
int tc_run_start(tc_cache *c, int64_t ts_ns, uint64_t run_id);

/*
 * tc_run_anchor - copy the active run's anchor into *OUT (read inside a
 * read section: never torn, even while the run ends).  With TC_CHECKSUM the
 * copy is verified (a scribbled anchor is TC_ECORRUPT, *OUT untouched).
 * Returns 0, TC_ENORUN, -EINVAL, -EUSERS, TC_ECORRUPT.
 */
int tc_run_anchor(tc_cache *c, tc_anchor *out);

/*
 * tc_run_end - end the active run: one CAS, O(1); every DTO of the run
 * vanishes at that instant for every process.  Counts as a clear in
 * tc_stats.  Of racing ends one succeeds, the others get TC_ENORUN.
 * Returns 0, TC_ENORUN, -EINVAL, -EUSERS.
 */
int tc_run_end(tc_cache *c);

/*
 * tc_run_end_gen - end the active run only if it is the run of GENERATION
 * (tc_anchor.generation): an operator or the sweeper ending a stale run
 * never ends a newer one started meanwhile.  Returns 0, TC_ENORUN (no
 * run), TC_ECONFLICT (another run is active), -EINVAL, -EUSERS.
 */
int tc_run_end_gen(tc_cache *c, uint64_t generation);

/*
 * tc_dto_append - append a DTO of TYPE (LEN bytes, 0..TC_VALUE_MAX, copied)
 * to the list at KEY in the active run.  Appends are linearizable: the
 * order of their publishing CAS is the order tc_dto_each visits, across
 * processes, and an append that returned 0 is seen by every later call.
 * An append racing tc_run_end returns 0 (it went into the run, and vanished
 * with it) or TC_ENORUN (the run had ended first).  The first append of a
 * key takes an index entry (the list), later ones only memory.
 * Returns 0, TC_ENORUN, -EINVAL, -EMSGSIZE, -ENOSPC, -EOVERFLOW (2^32 - 1
 * DTOs in one list), -EUSERS, TC_ECORRUPT (also, with TC_CHECKSUM, for a
 * list whose head says an earlier run but fails its checksum: it is not
 * replaced, and reads of it are TC_ECORRUPT too, until the run sweep
 * removes it).
 */
int tc_dto_append(tc_cache *c, const void *key, size_t klen, uint32_t type,
		  const void *dto, size_t len);

/*
 * tc_dto_count - *N = number of DTOs at KEY in the active run (0 when the
 * key has none).  One consistent snapshot.  The count is the list head's,
 * sealed with its value: with TC_CHECKSUM the head is verified first
 * (TC_ECORRUPT, *N 0).  Returns 0, TC_ENORUN, -EINVAL, -EUSERS, TC_ECORRUPT.
 */
int tc_dto_count(tc_cache *c, const void *key, size_t klen, size_t *n);

/*
 * tc_dto_each - call FN(dto, len, ARG) for each DTO at KEY in insertion
 * order, on a snapshot taken at the start (appends made meanwhile are not
 * visited).  First every element's type is checked: if any is not TYPE the
 * call returns TC_ETYPE without calling FN at all.  A key without DTOs
 * visits nothing and returns 0.  When FN returns non-zero the walk stops
 * and that value is returned.
 * Zero copy: FN runs inside a read section of this thread and DTO points
 * into the segment, valid only until FN returns (copy what you keep).  FN
 * may call any tickcache function, also writes and tc_run_end (the DTOs
 * stay valid until the walk ends), but while it runs retired memory cannot
 * be reclaimed by anyone, so a write that needs reclaimed memory fails with
 * -ENOSPC sooner: keep FN short.
 * Every element is checked before FN is called at all: its kind, hash,
 * key length (the list's), generation, count and, with TC_CHECKSUM, its
 * value's checksum (TC_ECORRUPT before any FN call); a list whose count says
 * more elements than the walk finds is TC_ECORRUPT, and memory is taken for
 * the elements found, never for the count.
 * Returns 0, FN's value, TC_ETYPE, TC_ENORUN, -EINVAL, -ENOMEM, -EUSERS,
 * -ESTALE, -EBUSY, TC_ECORRUPT.
 */
int tc_dto_each(tc_cache *c, const void *key, size_t klen, uint32_t type,
		tc_dto_fn fn, void *arg);

typedef int (*tc_dto_key_fn)(const void *key, size_t klen, size_t count, void *arg);
/*
 * tc_dto_keys - visit the DTO keys of the active run with their counts
 * (order unspecified).  Like tc_scan: a read section per index bucket,
 * never across a call of FN.  KLEN is always 1..TC_KEY_MAX: a slot that
 * names no valid entry is skipped and reported as TC_ECORRUPT after the
 * walk, and so is, with TC_CHECKSUM, a list whose head fails its checksum
 * under the hash of the key bytes read (its count and key are sealed).  Returns 0, FN's non-zero value, TC_ENORUN (also when the run ends
 * during the walk), -EINVAL, -ENOMEM, -EUSERS, -ESTALE, -EBUSY,
 * TC_ECORRUPT.
 */
int tc_dto_keys(tc_cache *c, tc_dto_key_fn fn, void *arg);

/* ------------------------------------------------------------------ */
/* Counters, rate limits, read-through                                  */
/* ------------------------------------------------------------------ */

/*
 * tc_rate_limit - count one call against the fixed-window limiter KEY
 * (LIMIT calls per WINDOW_MS).  Windows are aligned to multiples of
 * WINDOW_MS of CLOCK_REALTIME (since the epoch); *COUNT (may be NULL)
 * receives the calls counted in the current window including this one, so
 * the allowed calls of a window see 1..LIMIT and *ALLOWED = count <= LIMIT.
 * Denied calls are counted too.  Exact under concurrency: every call is one
 * compare-and-set increment of one window's counter, so processes together
 * never get more than LIMIT allowed in one window (a call racing a window
 * boundary may be counted in the newer window).  Limiters are a namespace
 * of their own (tc_get/tc_purge do not see them); one lives two windows
 * after its last call.  TC_EVICT_LRU never evicts a limiter (it would
 * restart from 0 inside its window): it stays until it expires, and a
 * segment full of limiters and load claims refuses new ones with -ENOSPC.
 * With TC_CHECKSUM a window that fails
 * its checksum, its expiry included, gives TC_ECORRUPT (until the expiry
 * pass removes it once it expired), never a count nor a new window.
 * Returns 0, -EINVAL (NULL c, key or allowed; LIMIT or WINDOW_MS 0;
 * WINDOW_MS over 2^61), -ENOSPC, -EUSERS, TC_ECORRUPT.
 */
int tc_rate_limit(tc_cache *c, const void *key, size_t klen, uint64_t limit,
		  uint64_t window_ms, bool *allowed, uint64_t *count);

/*
 * A loader fills BUF (CAP bytes) with the value of KEY, sets *LEN and
 * returns 0, or returns a negative errno.
 */
typedef int (*tc_loader_fn)(const void *key, size_t klen, void *buf, size_t cap,
			    size_t *len, void *arg);

/*
 * tc_get_or_load - read-through with single flight across processes.
 * A hit is tc_get.  On a miss exactly one caller (of any process) takes a
 * load lease on KEY and runs LOAD(key, klen, buf, cap, &len, ARG), then
 * stores the value with TYPE and TTL_MS (as tc_set) and returns it; the
 * other callers wait, polling with a growing sleep (50 us doubling to
 * 10 ms), up to WAIT_MS for that value (-ETIMEDOUT when it does not come;
 * WAIT_MS 0 does not wait).  The lease lasts WAIT_MS, at least 1 s: when
 * its holder dies or it runs out, a waiter takes it over (compare-and-set
 * on the lease, so one waiter does) and loads; a loader slower than its
 * lease may therefore run twice.  The lease holder checks the cache again
 * before loading, so a value stored meanwhile is not loaded twice.
 * LOAD runs in the calling thread outside any read section.  A loader
 * error is returned to its own caller unchanged and nothing is cached; the
 * lease is dropped at once so that a waiter takes over the load.  If the
 * value cannot be stored (-ENOSPC) the call still returns it, with
 * meta->version 0.  META (may be NULL) as tc_get.
 * Returns 0, the loader's error, -ETIMEDOUT, -E2BIG (CAP below the cached
 * value, or a loader reporting more than CAP), -EINVAL, -EUSERS,
 * TC_ECORRUPT.
 */
int tc_get_or_load(tc_cache *c, const void *key, size_t klen, void *buf, size_t cap,
		   tc_meta *meta, uint32_t type, uint64_t ttl_ms, uint64_t wait_ms,
		   tc_loader_fn load, void *arg);

/* ------------------------------------------------------------------ */
/* Iteration, TTL policies, statistics                                  */
/* ------------------------------------------------------------------ */

typedef int (*tc_scan_fn)(const void *key, size_t klen, const tc_meta *meta, void *arg);

/*
 * tc_scan - visit the live keys matching GLOB (fnmatch rules; NULL or "*"
 * matches all).  Never blocks writers; holds a read section for one bucket at
 * a time, never across a call of FN.  Keys present for the whole scan are
 * visited exactly once; keys written during it may or may not be.  An
 * index slot that names no valid entry is skipped (nothing is read from or
 * written to what it names) and reported as TC_ECORRUPT once the walk is
 * done; so is, with TC_CHECKSUM, a key that fails its checksum, checked
 * under the hash of the key bytes read (a scribbled key or key length
 * fails too) with the META handed to FN.  Returns 0, FN's non-zero value, -EINVAL, -ENOMEM, -EUSERS,
 * -ESTALE (the segment was unlinked), -EBUSY (an audit at work; the walk
 * stops at the first bucket it cannot enter), TC_ECORRUPT.
 */
int tc_scan(tc_cache *c, const char *glob, tc_scan_fn fn, void *arg);

/*
 * tc_purge - delete the live keys matching GLOB (as tc_scan; NULL or "*"
 * deletes every key) bucket by bucket, each key with the CAS a tc_del
 * would use, so it never blocks writers; *deleted (may be NULL) receives
 * the count.  Keys present throughout are deleted; keys written during the
 * purge may survive it.  DTO lists, rate limiters and load leases are not
 * keys and are never purged.  A slot that names no valid entry is skipped,
 * never removed.  The purged blocks are then freed in one grace period,
 * as tc_reclaim frees them (those a reader still holds stay retired; none
 * when called inside this thread's read section), so that the writes that
 * follow do not pay for them.  Counts one clear and DELETED keys_deleted in
 * tc_stats.
 * Returns 0, -EINVAL, -ENOMEM, -EUSERS, -ESTALE (the segment was unlinked),
 * -EBUSY (an audit at work): on those two the purge stops at the first
 * bucket it cannot enter, and *deleted counts what it removed before.
 */
int tc_purge(tc_cache *c, const char *glob, uint64_t *deleted);

/*
 * TTL policies by key prefix, kept in the segment: a change is seen at once
 * by every handle of every process.  A write with TC_TTL_DEFAULT gets the
 * ttl of the longest prefix of its key in the table, else the segment's
 * default_ttl_ms; explicit TTLs are never changed.  With no policy this
 * costs one load on the write path.
 * The table is one immutable block replaced with one CAS (copy on write):
 * changes are lock-free, a reader sees the whole old table or the whole new
 * one, and racing changes are applied one after the other (none is lost).
 * tc_ttl_policy_set - set or replace PREFIX (1..TC_POLICY_PREFIX_MAX bytes)
 *   -> TTL_MS (0 = never expires; over TC_TTL_MAX is -EINVAL).  -ENOSPC when
 *   TC_POLICY_MAX_ENTRIES prefixes exist, or no memory; TC_ECORRUPT when
 *   the table or the arena's carve pointer is scribbled (run tc_audit).
 * tc_ttl_policy_del - remove PREFIX: 0 or -ENOENT.
 * tc_ttl_policy_load - apply a file of lines "prefix = ttl_ms": blank lines
 *   and lines starting with # are skipped, a # comment may follow the ttl,
 *   blanks around prefix and ttl are dropped (a prefix cannot contain '='),
 *   ttl_ms is decimal.  Each line acts as tc_ttl_policy_set (a later line
 *   wins) and the file is applied as one change: a bad line is -EINVAL and
 *   nothing of the file is applied, nor when the table would overflow
 *   (-ENOSPC).  Errors opening or reading the file: its -errno.
 * tc_ttl_policy_load_ex - the same, and *BAD_LINE (may be NULL) receives the
 *   1-based number of the bad line, 0 when the error is not a bad line.
 */
#define TC_POLICY_MAX_ENTRIES 32
#define TC_POLICY_PREFIX_MAX  111
int tc_ttl_policy_set(tc_cache *c, const char *prefix, uint64_t ttl_ms);
int tc_ttl_policy_del(tc_cache *c, const char *prefix);
int tc_ttl_policy_load(tc_cache *c, const char *path);
int tc_ttl_policy_load_ex(tc_cache *c, const char *path, unsigned *bad_line);
typedef int (*tc_policy_fn)(const char *prefix, uint64_t ttl_ms, void *arg);
/* tc_ttl_policy_list - visit the policies (order unspecified) on a copy
 * taken at the start; FN runs outside any read section. */
int tc_ttl_policy_list(tc_cache *c, tc_policy_fn fn, void *arg);

/* tc_get_stats - counters and gauges, see tc_stats.  Returns 0 or -EINVAL. */
int tc_get_stats(tc_cache *c, tc_stats *out);

/* ------------------------------------------------------------------ */
/* Snapshots                                                            */
/* ------------------------------------------------------------------ */

/*
 * A snapshot file holds a segment's geometry and settings and its live
 * ordinary keys (value, type, absolute expiry), so that marks and cached
 * values survive a host restart.  Runs, DTO lists, rate windows, load
 * leases and TTL policies are not saved (policies are configuration: load
 * them again with tc_ttl_policy_load).  The format is in docs/design.md,
 * "Snapshots".
 */
typedef struct tc_snapshot_report {
	uint64_t keys;     /* keys saved, or loaded (written) */
	uint64_t bytes;    /* file bytes written, or key + value bytes loaded */
	uint64_t expired;  /* load: records whose expiry has passed, skipped */
	uint64_t kept;     /* load: keys already present, left as they were */
} tc_snapshot_report;

typedef struct tc_snapshot_info {
	uint64_t max_entries;
	uint64_t memory_bytes;
	uint32_t max_readers;
	uint32_t mode;
	uint64_t default_ttl_ms;
	int      eviction;
	int64_t  saved_ms;   /* CLOCK_REALTIME ms when the save began */
	uint64_t keys;       /* records in the file */
	unsigned flags;      /* TC_CHECKSUM when saved from a segment with checksums */
} tc_snapshot_info;

/* tc_snapshot_load flags */
#define TC_SNAP_REPLACE 0x1u /* overwrite keys that exist (default: keep them) */

/*
 * tc_snapshot_save - write every live key of C to PATH: to a file beside it
 * (PATH.tmp.PID.XXXXXX), synced, then renamed over PATH, so PATH always
 * holds a whole snapshot.  The file of a saver killed on the way is
 * removed by the next save to PATH once its pid names no process.
 * Each key is saved as one version of it; keys written during the save may
 * or may not be in it (as tc_scan).  Never blocks writers, and reads
 * quietly (no reference bits set, no hits counted).  With TC_CHECKSUM every
 * value is verified as it is copied: one that fails stops the save with
 * TC_ECORRUPT, and PATH is left as it was.  Returns 0, -EINVAL,
 * -errno of the file system (-ENOSPC when the disk is full, -ENOENT,
 * -EACCES, ...), -ENOMEM, -EUSERS, -ESTALE, -EBUSY (an audit at work),
 * TC_ECORRUPT.
 *
 * tc_snapshot_load - write the keys of the snapshot PATH into C with their
 * remaining TTL (expired records are skipped); a key already present is
 * kept unless TC_SNAP_REPLACE.  The whole file is checked (lengths, record
 * count, XXH3 checksum) before any key is written: TC_ECORRUPT (nothing
 * written) for a damaged file or anything but a regular file, TC_EVERSION
 * for a whole file of another format.  A write
 * that fails (-ENOSPC under TC_EVICT_NONE, say) stops the load with its
 * code; *report says how far it got.
 *
 * tc_snapshot_stat - check PATH as a load would and describe it (the
 * geometry to create a missing segment with).  Returns 0, -EINVAL, -errno
 * of the file system, -ENOMEM, TC_ECORRUPT (damaged, not a regular file,
 * or larger than any snapshot can be), TC_EVERSION (a whole file of
 * another format).
 */
int tc_snapshot_save(tc_cache *c, const char *path, tc_snapshot_report *report);
int tc_snapshot_load(tc_cache *c, const char *path, unsigned flags, tc_snapshot_report *report);
int tc_snapshot_stat(const char *path, tc_snapshot_info *info);

/* tc_get_info - geometry and settings of the segment. */
int tc_get_info(tc_cache *c, tc_info *out);

/* ------------------------------------------------------------------ */
/* Maintenance (shm-sweeper, shm-inspect)                               */
/* ------------------------------------------------------------------ */

typedef struct tc_sweep_report {
	uint64_t scanned;        /* index slots looked at */
	uint64_t expired;        /* entries removed because their TTL passed */
	uint64_t reclaimed;      /* retired blocks returned to the free lists */
	uint64_t reclaimed_bytes;
	uint64_t retired_left;   /* blocks still waiting for a grace period */
	uint32_t readers_cleared;/* slots of dead processes cleared */
	uint32_t inflight_freed; /* allocations of dead writers returned */
	uint32_t tentative_cleared; /* abandoned half-inserts cleared */
	uint32_t attach_cleared; /* attach records of dead processes cleared */
	uint64_t dto_lists_freed;/* DTO lists of ended runs removed */
} tc_sweep_report;

/*
 * tc_sweep - one maintenance pass: clear dead reader slots (returning their
 * in-flight allocations), expire entries in up to BUDGET index buckets
 * (seven slots each; 0 = the whole index) continuing where the last pass
 * stopped, remove the DTO lists of ended runs in as many buckets, and
 * reclaim retired memory whose grace period has passed.  Lock-free like any
 * writer; safe to run from several processes, though one sweeper per
 * segment is the intended use (see tc_lease_*).  REPORT may be NULL.
 * Entries are expired only when their index slot names a valid entry (the
 * checks of tc_scan), so a scribbled slot never makes the pass retire a
 * block inside another key's value.
 * Returns 0, -EINVAL, -EUSERS, -EDEADLK (called inside a read section of
 * this thread, whose own slot would hold the grace period back), -ESTALE
 * (the segment was unlinked), -EBUSY (an audit at work); on the last two
 * the dead slots are cleared and the pass stops there.
 */
int tc_sweep(tc_cache *c, uint64_t budget, tc_sweep_report *report);

/*
 * tc_audit - exact mark-and-sweep of a quiescent segment.  A process killed
 * inside one of a write's few-instruction windows can leave one block that
 * no list names, or the live-key count one off (docs/design.md, "Crash
 * points"); online nothing can tell such a block from one a stopped
 * process is about to publish.  tc_audit runs only when no other live
 * process is attached and no other thread of the caller holds a reader slot
 * (-EBUSY otherwise; dead processes are cleared first, and so are owner
 * words that name no attached process: docs/design.md section 8), holds the segment's
 * flock so that nobody attaches meanwhile, marks every block reachable from
 * the index and the header, rebuilds the free lists from everything else
 * (free bytes without a header that reads and fits, such as a carve a killed
 * writer never finished, are cut into free blocks), clears abandoned
 * half-inserts and recounts live keys and gauges.  An index word that names
 * no entry (scribbled, or its entry's header damaged beyond what its class's
 * check copy repairs; its key was unreadable already) is dropped, and the
 * key leaves live_after, as is a copy of a word (two words naming one
 * entry); a key that lies past its home bucket's probe range (a scribbled
 * bucket) has the range raised to cover it.  TC_ECORRUPT when the arena cannot be walked (two
 * reachable blocks overlap by their headers' sizes): the
 * index, block headers, free and retire lists, gauges and key count are
 * then as they were; only what any call does online has happened (dead
 * processes' slots cleared, a dead coalescer's work finished or undone).
 * -EDEADLK inside a read section; -ETIMEDOUT when the segment's flock stays
 * held longer than TICKCACHE_LOCK_WAIT_MS (see tc_open).  While it runs,
 * data calls of the caller's other threads get -EBUSY.  An audit that is killed leaves the
 * segment usable: the next data call of any process sees the auditor dead
 * and goes on (blocks the audit had not yet relinked stay lost until the
 * next audit, which rebuilds everything from the index).
 */
typedef struct tc_audit_report {
	uint64_t blocks;            /* blocks walked */
	uint64_t live_blocks;       /* reachable blocks */
	uint64_t recovered;         /* unreachable blocks that were not free: returned */
	uint64_t recovered_bytes;
	uint64_t tentative_cleared; /* abandoned claims cleared */
	uint64_t skipped_bytes;     /* free bytes without a header that reads and fits
				     * (a writer killed between carving and writing the
				     * header, a scribble): cut into free blocks */
	int64_t  live_before;       /* live-key count before, and as recounted */
	int64_t  live_after;
} tc_audit_report;
int tc_audit(tc_cache *c, tc_audit_report *report);

/* tc_reclaim - run one grace period and free what it allows.  -EDEADLK
 * inside a read section of this thread; -EBUSY while tc_audit runs in
 * another thread of this process (it rebuilds the free lists). */
int tc_reclaim(tc_cache *c, uint64_t *freed_blocks);

/* Reader slots, for shm-inspect readers. */
typedef enum tc_reader_state {
	TC_READER_IDLE = 0,   /* alive, outside a read section */
	TC_READER_ACTIVE = 1, /* alive, inside a read section */
	TC_READER_DEAD = 2,   /* process gone or pid reused; or thread gone (raw SYS_exit,
			       * seccomp, another thread's execve) or tid reused */
} tc_reader_state;

typedef struct tc_reader {
	uint32_t slot;        /* >= max_readers: one of the TC_TOOL_READERS slots */
	bool     tool;        /* held by a TC_TOOL handle */
	uint32_t pid;
	uint32_t tid;
	tc_reader_state state;
	uint64_t epoch;       /* epoch entered with, 0 when idle */
	uint64_t epoch_lag;   /* global epoch minus epoch, 0 when idle */
} tc_reader;
typedef int (*tc_reader_fn)(const tc_reader *r, void *arg);

/* tc_readers - visit the reader slots in use.  A slot is judged by its
 * thread: pid and process start time, tid and thread start time
 * (/proc/PID/task/TID/stat), and for a leader thread whether its process
 * still maps the segment where the slot's owner mapped it (an execve keeps
 * the leader's pid, tid and start time).  What /proc cannot show (hidepid,
 * another user) counts as alive. */
int tc_readers(tc_cache *c, tc_reader_fn fn, void *arg);
/* tc_readers_clean - clear the slots of dead threads and processes (the
 * caller's own process included), and finish or undo a dead coalescer's
 * work (with the calling thread's reader slot, claimed then if it has none;
 * when none is free that is left to the next writer); *cleared may be NULL. */
int tc_readers_clean(tc_cache *c, uint32_t *cleared);

/* Attached processes (any process that opened the segment and has not closed it). */
typedef struct tc_attach {
	uint32_t pid;
	uint32_t handles;     /* open handles of that process */
	bool     alive;
} tc_attach;
typedef int (*tc_attach_fn)(const tc_attach *a, void *arg);
int tc_attached(tc_cache *c, tc_attach_fn fn, void *arg);

/*
 * Sweeper lease: one sweeper per segment.  tc_lease_acquire takes the lease
 * for the calling process when it is free, held by a dead process, or its
 * heartbeat is older than STALE_MS; -EBUSY (and *holder) otherwise.
 * tc_lease_renew refreshes the heartbeat (-EBUSY if lost);
 * tc_lease_release gives it up.
 */
int tc_lease_acquire(tc_cache *c, uint64_t stale_ms, uint32_t *holder);
int tc_lease_renew(tc_cache *c);
int tc_lease_release(tc_cache *c);
/* tc_lease_holder - pid holding the lease and its heartbeat age (ms); 0 if none. */
int tc_lease_holder(tc_cache *c, uint32_t *pid, uint64_t *age_ms, bool *alive);

/*
 * Redis tier state (shm-bridge(8), docs/design.md "The Redis tier").  The
 * bridge that keeps a segment's tiered prefixes coherent with Redis holds
 * a lease of its own in the segment and publishes there whether its
 * invalidation stream is armed.  A strategy that must never serve a value
 * older than Redis's reads tc_tier_get: TC_TIER_UP means a live bridge has
 * tracking armed; anything else means the tiered keys are not kept
 * coherent (the bridge purged them when it lost Redis, or it died).
 * tc_tier_claim - take the bridge lease when it is free, held by a dead
 *   process, or its heartbeat is older than STALE_MS (0 = never stale);
 *   the state becomes TC_TIER_DOWN.  0, or -EBUSY and *holder (may be NULL).
 * tc_tier_set - the holder publishes STATE (TC_TIER_UP or TC_TIER_DOWN) and
 *   renews its heartbeat.  0, -EINVAL (another state), -EBUSY (not the holder).
 * tc_tier_release - the holder gives the lease up; the state stays
 *   TC_TIER_DOWN.  0 or -EBUSY.
 * tc_tier_until - the holder vouches for its TC_TIER_UP until UNTIL_MS
 *   (tc_now_ms clock; 0 = no limit, the default after a claim): a bridge
 *   stopped or stalled stops renewing it and reads down.  0, -EINVAL
 *   (negative), -EBUSY (not the holder; also when the lease changed hands
 *   during the call: the promise is withdrawn, never the new holder's).
 * tc_tier_get - the state as a strategy must take it: TC_TIER_DOWN when
 *   the holder is dead, or UNTIL_MS has passed, whatever it published
 *   last.  0 or -EINVAL.
 */
#define TC_TIER_NONE 0u  /* no bridge ever served the segment */
#define TC_TIER_UP   1u  /* a live bridge has Redis's invalidations armed */
#define TC_TIER_DOWN 2u  /* no coherent tier: Redis lost, bridge gone or starting */

typedef struct tc_tier {
	uint32_t state;        /* TC_TIER_* */
	uint32_t pid;          /* the bridge holding the lease, 0 = none */
	bool     alive;        /* that bridge is alive */
	uint64_t beat_age_ms;  /* since its last heartbeat (0 when none) */
	int64_t  since_ms;     /* CLOCK_REALTIME ms of the last change of state, 0 = never */
} tc_tier;

int tc_tier_claim(tc_cache *c, uint64_t stale_ms, uint32_t *holder);
int tc_tier_set(tc_cache *c, uint32_t state);
int tc_tier_until(tc_cache *c, int64_t until_ms);
int tc_tier_release(tc_cache *c);
int tc_tier_get(tc_cache *c, tc_tier *out);

/* ------------------------------------------------------------------ */
/* Utilities                                                            */
/* ------------------------------------------------------------------ */

/* tc_now_ms - the clock expiry uses: CLOCK_REALTIME milliseconds. */
int64_t tc_now_ms(void);

/* tc_version - TC_VERSION_STRING of the linked library. */
const char *tc_version(void);

#ifdef __cplusplus
}
#endif
#endif /* TICKCACHE_H */
