/* SPDX-License-Identifier: MIT */
/*
 * layout.h - the bytes of a tickcache segment.  Structs only: offsets, never
 * pointers, because every process maps the segment at its own address.
 *
 *   +--------------+----------------+--------------+-------------+------------+
 *   | tc_hdr       | reader slots   | attach table | index       | arena      |
 *   | (fixed size) | max_readers +  | max_attach   | nbuckets    | memory     |
 *   |              | TC_TOOL_READERS| x 16 B       | x 64 B      | bytes      |
 *   |              | x 256 B        |              |             |            |
 *   +--------------+----------------+--------------+-------------+------------+
 *
 * Every region starts on a page boundary.  The geometry is fixed at
 * creation; tc__layout() derives all offsets from (max_entries,
 * memory_bytes, max_readers) so an attacher can recompute and compare them.
 *
 * Who writes what, and with which operations, is stated at each field.  All
 * shared fields are accessed through the tc__ld/tc__st/tc__cas wrappers of
 * internal.h (liburcu's CMM_*_SHARED and uatomic_*); nothing read from here
 * is trusted without a bounds check.
 */
#ifndef TC_LAYOUT_H
#define TC_LAYOUT_H

#include <stddef.h>
#include <stdint.h>
#include <assert.h>
#include "tickcache.h"

#define TC_MAGIC          0x3145484341434B54ull /* "TKCACHE1" little-endian */
#define TC_LAYOUT_VERSION 14u /* bump on every change of this file's structs (8: a slot's
				 * TC_C_OPS no longer counts hits and misses; 9: the futex
				 * words of tc_wait / tc_wait_any; 10: tc_entry.cls_check;
				 * 11: a slot's reclaim word keeps its detach's counter;
				 * 12: the checksum seals aux, and run anchors carry one;
				 * 13: a free slot keeps its counters, never folded into tot;
				 * 14: a slot's inflight names a run anchor or a list element
				 * across its publishing CAS, and ret_hash a keyless block's
				 * kind: a cleaner of 13 retired them published) */
#define TC_CACHELINE      64
#define TC_PAGE           4096

/* tc_hdr.state */
#define TC_STATE_BUILDING 1u  /* creator is initialising (stored first): not usable */
#define TC_STATE_READY    2u  /* published with a release store, last */
#define TC_STATE_UNLINKED 3u  /* removed by tc_unlink: attached handles get -ESTALE */
#define TC_STATE_AUDITING 4u  /* tc_audit at work (or died at work): calls get -EBUSY */

#define TC_VER_SHARDS     64  /* version counters, key hash picks one */

/* Futex words of tc_hdr (futex.c): flags in the low bits, a generation above. */
#define TC_WAKE_SHARDS    64          /* key_wake words; the key hash picks one */
#define TC_WAKE_SHARD(h)  (((h) >> 32) & (TC_WAKE_SHARDS - 1))
#define TC_WAKE_SLEEP     0x1u        /* a waiter may sleep on this value: wake */
#define TC_WAKE_ARMED     0x2u        /* any_wake: a tc_wait_any caller wants the
				       * next change counted: bump the generation */
#define TC_WAKE_FLAGS     (TC_WAKE_SLEEP | TC_WAKE_ARMED)
#define TC_WAKE_GEN_SHIFT 2
#define TC_WAKE_GEN       (1u << TC_WAKE_GEN_SHIFT) /* one generation step */

/* tc_hdr.options: fixed at creation (tc_opts.flags), read once at attach. */
#define TC_OPT_CHECKSUM   0x1u /* values carry an XXH3 checksum (see tc_entry) */
#define TC_OPT_ALL        TC_OPT_CHECKSUM

/* Per-slot operation counters: a slot keeps them from owner to owner (never
 * folded: see tc__empty_slot); tc_hdr.tot holds what is counted without a slot. */
enum {
	TC_C_HITS, TC_C_MISSES, TC_C_SETS, TC_C_ADDS, TC_C_DELETES,
	TC_C_EXPIRATIONS, TC_C_EVICTIONS, TC_C_ERRORS, TC_C_OPS, TC_C_CLEARS,
	TC_C_KEYS_DELETED, TC_C_LAT_SAMPLES, TC_C_LAT_SUM, TC_C_SLOW_OPS,
	TC_C_RETIRED_BYTES, TC_C_RETIRED_BLOCKS, /* signed deltas: retired minus freed */
	TC_NCOUNTERS
};

/* One size class: its free-list head on a line of its own. */
struct tc_class {
	uint64_t head;      /* tagged free-list head: generation << 32 | block ref (0 = empty); CAS */
	uint64_t used;      /* blocks handed out and not yet freed; uatomic_add */
	uint64_t nfree;     /* blocks on the free list (approximate gauge); uatomic_add */
	uint64_t pad[5];
};

struct tc_hdr {
	/* line 0-1: identity and geometry, written once by the creator under
	 * flock before state becomes READY; read-only afterwards. */
	uint64_t magic;           /* TC_MAGIC */
	uint32_t layout_version;  /* TC_LAYOUT_VERSION */
	uint32_t state;           /* TC_STATE_*; release store of READY publishes the header */
	uint64_t total_bytes;     /* size of the shm object */
	uint64_t seed;            /* XXH3 seed, from getrandom() */
	uint64_t max_entries;
	uint64_t memory_bytes;    /* arena size */
	uint32_t max_readers;
	uint32_t max_attach;
	uint64_t nbuckets;        /* power of two */
	uint64_t slots_off;       /* byte offsets from the segment start */
	uint64_t attach_off;
	uint64_t index_off;
	uint64_t arena_off;
	uint64_t default_ttl_ms;
	int32_t  eviction;        /* TC_EVICT_* */
	uint32_t mode;            /* permission bits at creation */
	int64_t  created_ms;      /* CLOCK_REALTIME */
	uint32_t creator_pid;
	uint32_t options;         /* TC_OPT_* */

	/* line 2: the global reclamation epoch.  Starts at 1.  Read by every
	 * reader entering a section; advanced (uatomic_add_return) by
	 * reclaimers only, so it is read-mostly. */
	uint64_t epoch __attribute__((aligned(TC_CACHELINE)));

	/* line 3: live keys; uatomic_add by inserts and removals only. */
	uint64_t live __attribute__((aligned(TC_CACHELINE)));

	/* line 4: arena carve pointer: tag << 32 | units carved from the arena
	 * start (16-byte units), the tag a hash of the units keyed with the
	 * seed, so that a scribbled word fails its seal (alloc.c,
	 * tc__bump_seal).  Written by the creator, by carve() (CAS) and by
	 * tc_audit (rebuilt from its walk when the seal fails). */
	uint64_t bump __attribute__((aligned(TC_CACHELINE)));

	/* line 5: retired blocks waiting for a grace period. */
	uint64_t retire_head __attribute__((aligned(TC_CACHELINE))); /* TC_RH_*, below; CAS */
	/* (the retired gauges are per-slot deltas, TC_C_RETIRED_*) */

	/* line 6: cursors of the eviction clock and of the expiry sweep, in buckets; uatomic_add */
	uint64_t clock_hand __attribute__((aligned(TC_CACHELINE)));
	uint64_t sweep_cursor;

	/* line 7: sweeper lease (pid << 32 | generation), its holder's start time
	 * and heartbeat (CLOCK_REALTIME ms).  CAS on lease_word. */
	uint64_t lease_word __attribute__((aligned(TC_CACHELINE)));
	uint64_t lease_start;
	int64_t  lease_beat_ms;

	/* line 8: the active run (run.c).  run_word = generation << 32 | anchor
	 * block ref; ref 0 = no run.  The generation is odd exactly while a run
	 * is active and grows by one on every start and end; changed only by
	 * CAS.  The anchor block holds the run's data, immutable. */
	uint64_t run_word __attribute__((aligned(TC_CACHELINE)));

	/* lines 9-10: counters of work done without a reader slot (tc__acct);
	 * uatomic_add */
	uint64_t tot[TC_NCOUNTERS] __attribute__((aligned(TC_CACHELINE)));

	/* the size classes, one line each */
	struct tc_class cls[TC_NCLASSES] __attribute__((aligned(TC_CACHELINE)));

	/* version counters, one line each: a key's versions come from
	 * ver[hash % TC_VER_SHARDS] so they grow across delete + re-insert. */
	struct { uint64_t v; uint64_t pad[7]; } ver[TC_VER_SHARDS];

	/* TTL policies by key prefix: the table lives in an immutable
	 * TC_KIND_POLICY block (policy.c), published by CAS of policy_gen =
	 * generation << 32 | block ref (ref 0 = no policy); the generation
	 * grows on every change. */
	uint64_t policy_gen __attribute__((aligned(TC_CACHELINE)));

	/* run.c: DTO list heads in the index, of any run (uatomic_add by the
	 * inserter and the remover of a head); the bucket cursor of
	 * tc__sweep_runs (uatomic_add). */
	uint64_t dto_heads;
	uint64_t run_cursor;
	/* tier.c: the Redis tier (shm-bridge).  tier_word = bridge pid << 32 |
	 * claiming bit 31 | TC_TIER_* state << 24 | generation (24 bits),
	 * changed only by CAS; the holder's start time, heartbeat and the
	 * time of the last change of state (CLOCK_REALTIME ms) are stored by
	 * the holder only, as is tier_until_ms: the time (CLOCK_REALTIME ms)
	 * after which its "up" is not believed, 0 = no limit (reset by a
	 * claim). */
	uint64_t tier_word;
	uint64_t tier_start;
	int64_t  tier_beat_ms;
	int64_t  tier_since_ms;
	int64_t  tier_until_ms;

	/* coalesce.c: merging free blocks into blocks of another class.  One
	 * coalescer at a time holds df_turn (pid << 32 | slot index << 16 |
	 * generation & 0xffff; CAS); the rest is written by the holder only and
	 * describes its work, so that whoever takes over a dead holder's turn
	 * can finish or undo it. */
	uint64_t df_turn __attribute__((aligned(TC_CACHELINE)));
	uint64_t df_start;        /* window: first unit, units and target class */
	uint64_t df_units;
	uint64_t df_cls;
	uint64_t df_phase;        /* TC_DF_* << 56 | a seal of (start, units, class,
				   * phase): a scribbled field never passes for work
				   * to finish (coalesce.c, phase_word) */
	uint64_t df_pending;      /* claimed blocks still on a free list; uatomic_add by
				   * the coalescer and by any popper that unlinks one */
	uint64_t df_held;         /* chain of ordinary free blocks the holder popped
				   * while draining (state OUT, linked by link), to push back */
	uint64_t df_hand;         /* where the next window search starts (a block start) */
	uint64_t df_nofit __attribute__((aligned(TC_CACHELINE))); /* free bytes when the last
				   * full search found nothing */
	uint64_t df_merges;       /* windows merged; uatomic_add */
	uint64_t df_gen;          /* turn generations; uatomic_add */
	uint64_t df_skips;        /* searches skipped for df_nofit; uatomic_add */

	/* audit.c: the process running tc_audit (pid and start time), written
	 * before the state becomes AUDITING.  When it is dead, AUDITING is
	 * over: see tc__audit_orphaned(). */
	uint64_t audit_pid __attribute__((aligned(TC_CACHELINE)));
	uint64_t audit_start;

	/* Checksum mismatches met by any reader (TC_OPT_CHECKSUM); uatomic_add,
	 * only on a mismatch, so no read of an intact value writes here. */
	uint64_t csum_bad;

	uint64_t reserved[5];     /* room for later fields without a layout change */

	/* futex.c: waiting for changes (tc_wait, tc_wait_any).  Futex words,
	 * each TC_WAKE_GEN_SHIFT bits of flags under a generation; changed
	 * only by CAS.  A waiter sets its flags (CAS) before it checks what it
	 * waits for; a writer loads the word after its publishing CAS and,
	 * only when a flag is set, CASes the word to the next generation with
	 * the flags clear, then calls FUTEX_WAKE if TC_WAKE_SLEEP was among
	 * them (docs/design.md, "Waiting for a change").  Read-mostly: written
	 * only while someone waits.
	 * any_wake: the segment-wide word (TC_WAKE_ARMED | TC_WAKE_SLEEP),
	 * alone on its line. */
	uint32_t any_wake __attribute__((aligned(TC_CACHELINE)));
	uint32_t any_pad[15];
	/* key_wake[i]: the word of the keys whose hash picks shard i
	 * (TC_WAKE_SHARD); TC_WAKE_SLEEP only.  16 words a line. */
	uint32_t key_wake[TC_WAKE_SHARDS] __attribute__((aligned(TC_CACHELINE)));

	uint64_t reserved2[16];   /* room for later fields without a layout change */
} __attribute__((aligned(TC_PAGE)));

/*
 * A reader slot: one per thread that uses the segment (LMDB's reader table,
 * with liburcu memb's per-thread counter).  Line 0 is written by its owner on
 * every read section and read by reclaimers; line 1-2 are the owner's
 * counters, written only by the owner (plain stores), read by tc_get_stats.
 */
struct tc_rslot {
	uint64_t epoch;     /* epoch entered with, 0 = quiescent; owner stores */
	uint64_t owner;     /* pid << 32 | tid, 0 = free; claimed by CAS, cleared by owner or cleaner */
	uint64_t start;     /* owner process start time (clock ticks since boot, /proc/PID/stat) */
	uint64_t cookie;    /* owner's process-local handle id */
	uint64_t inflight;  /* block ref being built and not yet published, 0 = none */
	uint64_t reclaim;   /* counter << 32 | first block of a retire chain this slot
			     * is processing (0: none; the counter is the detach's,
			     * TC_RECLAIM_REF), or TC_RECLAIM_PEND | counter << 32 |
			     * ref while the owner detaches the retire list (epoch.c,
			     * "hand-over"); CAS by the owner, by a helper, by
			     * stealers and by cleaners */
	uint64_t since;     /* bytes retired by the owner since its last reclaim (owner only) */
	uint64_t rmin;      /* the grace-period bound of the chain at reclaim (owner only) */
	uint64_t ctr[TC_NCOUNTERS]; /* TC_C_*; owner only.  A read's hit or miss is
				     * counted once, not again in TC_C_OPS (stats.c
				     * adds them up) */
	/* line 3: the published entry the owner is about to unlink (replace or
	 * remove), so that a cleaner can retire it if the owner dies between
	 * its CAS and its retire (a run anchor or a TTL policy table: between
	 * the CAS of its header word and its retire).  hash (tc__ret_ident:
	 * the kind for a block without a key) and version tell the block from
	 * a reuse of it.  Owner only; ref 0 = none. */
	uint64_t ret_ref;
	uint64_t ret_hash;
	uint64_t ret_version;
	/* The owner thread's identity beyond pid and tid, written by the owner
	 * at claim, before it enters a section: its start time (clock ticks
	 * since boot, /proc/PID/task/TID/stat; 0 = unknown) and the address
	 * at which its process mapped the segment.  A slot is dead when its
	 * thread is gone or reused, or when its process no longer maps the
	 * segment there (an execve by another thread keeps pid, tid and start
	 * time of the leader; epoch.c, slot_dead). */
	uint64_t tstart;
	uint64_t base;
	uint64_t pad2[3];
} __attribute__((aligned(TC_CACHELINE)));

/* tc_rslot.reclaim while its owner detaches the retire list: the head's
 * counter and first block it read.  The list's head word names the slot
 * that detached it (TC_RH_SLOT) until the next change, and whoever makes
 * that change first turns the word into the plain ref (epoch.c). */
#define TC_RECLAIM_PEND (1ull << 63)
/* The block a reclaim word names, in either form.  The plain form keeps
 * the counter of the detach that made its chain, so that a stealer's CAS
 * from a stale load never lands in a later chain of the slot that starts
 * with the same block (epoch.c, walk_chain). */
#define TC_RECLAIM_REF(w) ((w) & 0xffffffffull)

/* tc_hdr.retire_head = generation << 32 | first block ref; the generation
 * is slot << 19 | counter: counter (19 bits) grows on every change, slot
 * is 0 after a push and the detaching reader slot's index + 1 after a
 * detach (the ref is then 0). */
#define TC_RH_COUNTER_BITS 19
#define TC_RH_COUNTER(h)   (((h) >> 32) & ((1ull << TC_RH_COUNTER_BITS) - 1))
#define TC_RH_SLOT(h)      ((h) >> (32 + TC_RH_COUNTER_BITS))
#define TC_RH_REF(h)       ((h) & 0xffffffffull)
#define TC_RH_MAKE(slot, counter, ref) \
	((uint64_t)(slot) << (32 + TC_RH_COUNTER_BITS) | \
	 ((uint64_t)(counter) & ((1ull << TC_RH_COUNTER_BITS) - 1)) << 32 | (uint64_t)(ref))
_Static_assert(TC_MAX_READERS + TC_TOOL_READERS < (1u << (32 - TC_RH_COUNTER_BITS)),
	       "a slot index + 1 fits the retire head's slot bits");

/* An attach record: one per open handle of any process. */
struct tc_attach_rec {
	uint64_t pid;       /* 0 = free; claimed by CAS */
	uint64_t start;     /* process start time */
};

/*
 * An index bucket: one cache line, a meta word and seven slot words.
 * meta: bits 0-31 = the largest displacement (in buckets) of any key whose
 * home is this bucket; it only grows (CAS max).  A lookup scans buckets
 * home .. home + maxdisp.
 * Slot word: 0 = free; else state (2 bits) | tag (14 bits) | entry ref (48 bits).
 */
#define TC_BUCKET_SLOTS 7
struct tc_bucket {
	uint64_t meta;
	uint64_t w[TC_BUCKET_SLOTS];
};

#define TC_SW_TENT   (1ull << 62)  /* claimed by an inserter, not yet visible to readers */
#define TC_SW_FINAL  (2ull << 62)  /* published */
#define TC_SW_STATE(w) ((w) & (3ull << 62))
#define TC_SW_TAG(w)   (((w) >> 48) & 0x3fffu)
#define TC_SW_REF(w)   ((w) & 0xffffffffffffull)
#define TC_TAG_OF(h)   ((uint64_t)((h) >> 50))

/*
 * An entry: one block of the arena, immutable from publication until it is
 * freed after a grace period, except the fields marked "mutable".
 * Key bytes follow at +64, the value at +64 + align8(klen).
 * Blocks are referred to by "ref" = (byte offset from arena start) / 16 + 1.
 */
#define TC_BLK_FREE    0x46524545u /* on a free list */
#define TC_BLK_LIVE    0x4c495645u /* being built or published */
#define TC_BLK_RETIRED 0x52455449u /* unlinked, waiting for a grace period */
#define TC_BLK_CLAIMED 0x434c414du /* on a free list, claimed by the coalescer */
#define TC_BLK_OUT     0x4f555421u /* claimed and off every list: the coalescer's */
#define TC_BLK_MOVING  0x4d4f5645u /* claimed by CAS to be put on or taken off the retire
				    * list: by its retirer (from LIVE), being stamped, or by a
				    * reclaimer's walk (from RETIRED), being freed or pushed
				    * back (epoch.c) */

/* tc_hdr.df_phase */
#define TC_DF_IDLE    0u
#define TC_DF_CLAIM   1u /* claiming and draining the window (old headers intact) */
#define TC_DF_REWRITE 2u /* every block of the window is OUT; headers being rewritten */
#define TC_DF_PUSH    3u /* new blocks written (OUT), being pushed */

#define TC_KIND_KEY 0u   /* an ordinary key */
#define TC_KIND_DTO 1u   /* a run-scoped DTO list element (run.c) */
#define TC_KIND_LOAD 2u  /* a single-flight load claim (load.c) */
#define TC_KIND_RUN 3u   /* a run anchor, named by tc_hdr.run_word, never indexed */
#define TC_KIND_RATE 4u  /* a rate-limit window (ratelimit.c) */
#define TC_KIND_POLICY 5u /* the TTL policy table, named by tc_hdr.policy_gen */

/*
 * DTO elements (TC_KIND_DTO) reuse two header fields, since they need no
 * version and must not grow the value: version = count << 32 | prev, where
 * count is the number of elements up to and including this one and prev the
 * ref of the element before it (0 for the first); aux = the generation of
 * the run it belongs to.  The index names the newest element (the head).
 */
#define TC_DTO_COUNT(v) ((v) >> 32)
#define TC_DTO_PREV(v)  ((v) & 0xffffffffu)

struct tc_entry {
	uint64_t hash;       /* XXH3-64 of the key with the segment seed */
	uint64_t version;    /* see tc_meta.version */
	int64_t  expires_ms; /* absolute CLOCK_REALTIME ms, 0 = never */
	uint32_t vlen;       /* value bytes */
	uint32_t type;       /* application type */
	uint16_t klen;       /* key bytes, 1..TC_KEY_MAX */
	uint8_t  cls;        /* size class of the block */
	uint8_t  kind;       /* TC_KIND_* (namespace) */
	uint8_t  refbit;     /* mutable: LRU reference bit, set by readers when 0, cleared by the clock */
	uint8_t  cls_check;  /* TC_CLS_CHECK(cls), written with the class by whoever cuts or
			      * lists the block afresh (carve, re-cut, tc_audit); a block is
			      * freed, and popped, only when the two agree */
	uint16_t builder;    /* reader slot index + 1 of the thread that allocated the block */
	uint64_t link;       /* mutable: next block ref on a free or retire list */
	uint64_t retire_epoch; /* mutable: epoch stamp when retired */
	uint32_t state;      /* mutable: TC_BLK_*; LIVE->MOVING by CAS decides who retires */
	uint32_t aux;        /* kind-specific (DTO: run generation low bits) */
};

/*
 * With TC_OPT_CHECKSUM, every block written by tc__write (keys, rate
 * windows, load claims), every DTO element and the run anchor carry 8 more
 * bytes at +64 + align8(klen) + align8(vlen): an XXH3-64 of the value,
 * seeded with an XXH3-64 of (version, expires_ms, vlen << 32 | type, aux)
 * under the segment seed xor the key's hash (0 for the anchor; csum.c,
 * tc__csum).  Written by the builder before the block is published;
 * immutable afterwards.
 */
#define TC_ENTRY_HDR 64u

/*
 * The second record of a block's class (tc_entry.cls_check).  A live
 * block's class byte is read only when the block is freed, and a class
 * scribbled larger would list the block at a size that covers its
 * neighbour: the next write of that class would overwrite the neighbour.
 * The reclaimer frees a block only when its class byte and this copy
 * agree (alloc.c, tc__free_block); one scribbled byte cannot change both,
 * and a run of equal bytes never agrees (x ^ 0xa5 is never x).
 */
#define TC_CLS_CHECK(cls) ((uint8_t)((cls) ^ 0xa5u))
#define TC_ALIGN8(x) (((x) + 7u) & ~(uint64_t)7u)
#define TC_BLOCK_UNIT 16u

/*
 * Values of the blocks of the other kinds.  Each is written whole by its
 * builder before the block is published and never changed afterwards;
 * readers copy it out (and check it) before use.
 */

/* TC_KIND_RUN: the anchor of a run (run.c), named by tc_hdr.run_word. */
struct tc_anchor_rec {
	int64_t  ts_ns;       /* the caller's timestamp of the run */
	uint64_t run_id;      /* the caller's id of the run */
	uint64_t generation;  /* odd: the run_word generation it was published with */
	int64_t  started_ms;  /* CLOCK_REALTIME ms at tc_run_start */
	uint64_t starter_pid; /* the starting process */
};

/* TC_KIND_POLICY: one record of the TTL policy table (policy.c); the
 * block's value is up to TC_POLICY_MAX_ENTRIES of them. */
struct tc_policy_rec {
	uint64_t ttl_ms;                       /* TTL of the keys with this prefix */
	uint8_t  len;                          /* prefix bytes, 1..TC_POLICY_PREFIX_MAX */
	char     prefix[TC_POLICY_PREFIX_MAX]; /* not NUL-terminated */
};

/* TC_KIND_RATE, type TC_RATE_TYPE: a rate limiter's window (ratelimit.c). */
#define TC_RATE_TYPE 0x7A7E0001u
struct tc_rate_window {
	int64_t  window_ms; /* window start, CLOCK_REALTIME ms */
	uint64_t count;     /* calls counted in that window */
};

/* TC_KIND_LOAD, type TC_LOAD_CLAIM_TYPE: the claim of the one caller that
 * runs a loader (load.c). */
#define TC_LOAD_CLAIM_TYPE 0x1EA5E001u
struct tc_load_claim {
	uint32_t pid;        /* holder */
	uint32_t pad;
	uint64_t start;      /* holder's process start time (/proc/PID/stat) */
	int64_t  deadline_ms;/* CLOCK_REALTIME ms; after it, the claim may be taken over */
	uint64_t token;      /* unique per acquisition */
};

_Static_assert(sizeof(struct tc_entry) == TC_ENTRY_HDR, "entry header is 64 bytes");
_Static_assert(sizeof(struct tc_bucket) == TC_CACHELINE, "bucket is one cache line");
_Static_assert(sizeof(struct tc_rslot) == 4 * TC_CACHELINE, "reader slot is four lines");
_Static_assert(sizeof(struct tc_class) == TC_CACHELINE, "class is one line");
_Static_assert(sizeof(struct tc_attach_rec) == 16, "attach record is 16 bytes");
_Static_assert(sizeof(struct tc_hdr) % TC_PAGE == 0, "header is whole pages");
_Static_assert(sizeof(struct tc_hdr) == 3 * TC_PAGE, "header is 12 KiB");
_Static_assert(TC_NCOUNTERS == 16, "counters fill two lines");
_Static_assert(sizeof(struct tc_anchor_rec) == 40, "run anchor is 40 bytes");
_Static_assert(offsetof(struct tc_anchor_rec, starter_pid) == 32, "run anchor fields");
_Static_assert(sizeof(struct tc_policy_rec) == 120, "policy record is 120 bytes");
_Static_assert(offsetof(struct tc_policy_rec, prefix) == 9, "policy record fields");
_Static_assert(sizeof(struct tc_rate_window) == 16, "rate window is 16 bytes");
_Static_assert(offsetof(struct tc_rate_window, count) == 8, "rate window fields");
_Static_assert(sizeof(struct tc_load_claim) == 32, "load claim is 32 bytes");
_Static_assert(offsetof(struct tc_load_claim, deadline_ms) == 16 &&
	       offsetof(struct tc_load_claim, token) == 24, "load claim fields");
_Static_assert(offsetof(struct tc_hdr, key_wake) % TC_CACHELINE == 0 &&
	       offsetof(struct tc_hdr, any_wake) % TC_CACHELINE == 0,
	       "the futex words start lines of their own");

#endif /* TC_LAYOUT_H */
