/* SPDX-License-Identifier: MIT */
/*
 * fuzz_segment.c - libFuzzer harness: a segment whose bytes come from the
 * input, attached and then driven through every public call.
 *
 * Two builds of this file (Makefile, "Fuzzing"):
 *
 * fuzz_segment (patch mode, the default).  At start the harness builds a
 * few valid segments through the API (empty; filled with keys of many
 * sizes and lengths (9..16 and 17..32 bytes among them), counters, expired and deleted keys, TTL policies, rate limiters,
 * load leases and DTO lists of an active and of an ended run; one under
 * LRU eviction driven past its capacity; one whose arena was re-cut between
 * size classes until it was full; one with value checksums (TC_CHECKSUM);
 * two of them with the reader slot of a
 * process that died inside a read section) and keeps their bytes
 * ("golden" images).
 * An input is a program:
 *     byte 0          which golden image
 *     then records    an opcode byte and its arguments
 * Patch opcodes write bytes, 64-bit words, copies of other 8-byte words of
 * the image (a block reference moved where another belongs) or zeros at an
 * offset of the segment; every other opcode is one public call.  Patches
 * before the first call damage the segment before tc_open attaches it;
 * later ones scribble on it while it is attached, between two calls, as a
 * peer with a wild pointer would.  Per input the cost is one copy of a
 * 88 KiB image into the shm object, one tc_open and the calls.
 *
 * fuzz_segment_raw (-DFUZZ_RAW).  The input is the whole shm object, byte
 * for byte (its size included); a fixed program then calls every function.
 * Seeds: the golden images, written by `TC_FUZZ_SEED_DIR=dir
 * fuzz_segment_raw` (tests/fuzz/run.sh does it).
 *
 * What counts as a finding: any crash or sanitizer report, a read or write
 * past the segment (guard pages, fuzz_common.h), a hang (libFuzzer's
 * -timeout), a return code that is no code of the library, and a broken
 * promise of include/tickcache.h checked below (lengths handed to
 * callbacks, lengths returned against the caller's buffer).  A scribbled
 * value read back as that value is not a finding: the README's promise
 * does not cover a scribble into a value's own bytes.
 */
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "fuzz_common.h"
#include "internal.h" /* struct tc_cache: where the handle mapped the segment */

#define GEO_ENTRIES 64
#define GEO_MEMORY  (64u * 1024u)
#define GEO_READERS 2
#define NGOLDEN     5
#define MAX_OPS     64
#define VAL_MAX     20000
#define RAW_MAX     (256u * 1024u)
#define LONG_TTL    (86400ull * 1000u)   /* TTLs that never pass during a run */
#define WINDOW_MS   (1ull << 40)         /* a rate window that never turns */

static char seg_name[TC_NAME_MAX + 1];
static char shm_file[128];
static char snap_path[256], pol_path[256];
static uint8_t *golden[NGOLDEN];
static size_t seg_bytes;
static int shm_fd = -1;
static uint8_t *shm_map;
static uint8_t valbuf[VAL_MAX + 64];
static uint8_t outbuf[VAL_MAX + 64];

/* Keys the golden images hold, so that calls meet real entries. */
static const char *const key_names[] = {
	"k00", "k01", "k02", "k03", "k04", "k05", "k06", "k07", "k08", "k09",
	"k10", "k11", "k12", "k13", "k14", "k15", "k16", "k17", "k18", "k19",
	"ctr0", "ctr1", "d0", "d1", "d2", "d3", "L0", "r0", "p1", "px", "big0",
	"big1",
	/* Keys of 9..16 and 17..32 bytes, which the reads take in copies of
	 * their own (the hash and the key compare written out per length). */
	"md:ES:bbo", "quote:AAPL:bid", "tradecore:market:quote:AAPL",
	"tradecore:market:trade:MSFT:last",
};
#define NKEYS (sizeof(key_names) / sizeof(key_names[0]))
/* The keys before the long ones: pick_key's choice among them by a byte
 * under 224 is the one the corpus's inputs were written against. */
#define NSHORT 32
_Static_assert(NKEYS == NSHORT + 4, "four long keys after the short ones");

static const char *const globs[] = { NULL, "*", "k*", "*1", "k[0-1]?", "d*", "[", "\\" };

/* ---- building the golden images --------------------------------------------- */

static void die(const char *what, int rc)
{
	fprintf(stderr, "fuzz_segment: %s: %d (%s)\n", what, rc, tc_strerror(rc));
	exit(2);
}

static void fill(uint8_t *p, size_t n, uint32_t seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(seed * 31u + i * 7u);
}

static void populate_common(tc_cache *c)
{
	static const size_t sizes[] = { 0, 8, 40, 120, 300, 700, 1500, 3000 };
	for (unsigned i = 0; i < 20; i++) {
		size_t n = sizes[i % 8];
		fill(valbuf, n, i);
		tc_set(c, key_names[i], 3, valbuf, n, i % 3, i % 5 == 4 ? 1 : 0);
	}
	static const size_t lsizes[] = { 16, 64, 200, 0 };
	for (unsigned i = NSHORT; i < NKEYS; i++) {
		size_t n = lsizes[i - NSHORT];
		fill(valbuf, n, i);
		tc_set(c, key_names[i], strlen(key_names[i]), valbuf, n, i % 3, 0);
	}
	int64_t v;
	tc_incr(c, "ctr0", 4, 5, 0, &v);
	tc_incr(c, "ctr1", 4, -7, LONG_TTL, &v);
	tc_set(c, "p1", 2, "x", 1, 0, TC_TTL_DEFAULT);
	tc_ttl_policy_set(c, "k0", LONG_TTL);
	tc_ttl_policy_set(c, "p", LONG_TTL + 1);
	bool allowed;
	tc_rate_limit(c, "r0", 2, 10, WINDOW_MS, &allowed, NULL);
	char buf[64];
	size_t len;
	(void)len;
	tc_get_or_load(c, "L0", 2, buf, sizeof(buf), NULL, 0, 0, 0, pr_loader, NULL);
	tc_del(c, "k07", 3);
	tc_del(c, "k15", 3);
	tc_set(c, "k03", 3, "replaced", 8, 0, 0);
	struct timespec ts = { 0, 3 * 1000 * 1000 };
	nanosleep(&ts, NULL); /* the 1 ms TTLs pass: expired entries */
}

static void populate_runs(tc_cache *c, bool ended_too)
{
	if (ended_too) {
		tc_run_start(c, 1, 1);
		for (unsigned i = 0; i < 6; i++)
			tc_dto_append(c, key_names[22 + i % 4], 2, 9, valbuf, 16 + i * 8);
		tc_run_end(c);
	}
	tc_run_start(c, 2, 2);
	for (unsigned i = 0; i < 10; i++)
		tc_dto_append(c, key_names[22 + i % 4], 2, i < 8 ? 9 : 10, valbuf, 24 + i * 16);
}

static void build_golden(int which)
{
	tc_opts o = { .max_entries = GEO_ENTRIES, .memory_bytes = GEO_MEMORY,
		      .max_readers = GEO_READERS, .flags = TC_CREATE | TC_EXCL,
		      .eviction = which == 2 ? TC_EVICT_LRU : TC_EVICT_NONE };
	if (which == 4)
		o.flags |= TC_CHECKSUM;
	tc_cache *c;
	tc_unlink(seg_name);
	int rc = tc_open(&c, seg_name, &o);
	if (rc)
		die("tc_open (golden)", rc);
	/* A fixed hash seed (creation draws a random one), so that the keys
	 * lie in the same buckets in every process and an input replays. */
	tc_close(c);
	int sfd = shm_open(shm_file, O_RDWR, 0);
	uint64_t seed = 0x7469636b63616368ull;
	if (sfd < 0 || pwrite(sfd, &seed, sizeof(seed), offsetof(struct tc_hdr, seed)) != 8)
		die("seed (golden)", -errno);
	close(sfd);
	rc = tc_open(&c, seg_name, NULL);
	if (rc)
		die("tc_open (golden)", rc);
	/* The bump word is sealed under the seed (alloc.c): until tc_audit
	 * seals it again under the new one, every carve is refused and the
	 * image would hold no key at all. */
	tc_audit_report ar;
	if ((rc = tc_audit(c, &ar)) != 0)
		die("tc_audit (golden)", rc);
	switch (which) {
	case 0: /* empty */
		break;
	case 1: /* keys of every kind, an ended run and an active one */
	case 4: /* the same with value checksums */
		populate_common(c);
		populate_runs(c, true);
		break;
	case 2: /* LRU, written well past its capacity */
		populate_common(c);
		for (unsigned i = 0; i < 400; i++) {
			char k[16];
			int kl = snprintf(k, sizeof(k), "e%u", i);
			fill(valbuf, 100 + (i * 37) % 900, i);
			tc_set(c, k, (size_t)kl, valbuf, 100 + (i * 37) % 900, 0, 0);
			if (i % 3 == 0)
				tc_get(c, key_names[i % 20], 3, outbuf, sizeof(outbuf), NULL);
		}
		populate_runs(c, false);
		break;
	case 3: /* sizes shifting between classes (merges), then full */
		for (unsigned round = 0; round < 3; round++) {
			size_t n = round == 1 ? 6000 : 60;
			for (unsigned i = 0; i < 60; i++) {
				char k[16];
				int kl = snprintf(k, sizeof(k), "s%u", i);
				fill(valbuf, n, i + round);
				if (tc_set(c, k, (size_t)kl, valbuf, n, 0, 0) == -ENOSPC)
					break;
			}
			for (unsigned i = 0; i < 60; i += round + 1) {
				char k[16];
				int kl = snprintf(k, sizeof(k), "s%u", i);
				tc_del(c, k, (size_t)kl);
			}
			tc_reclaim(c, NULL);
		}
		populate_common(c);
		fill(valbuf, 9000, 77);
		tc_set(c, "big0", 4, valbuf, 9000, 0, 0);
		for (unsigned i = 0; i < 64; i++)
			if (tc_set(c, key_names[i % 20], 3, valbuf, 2000, 0, 0) == -ENOSPC)
				break;
		break;
	}
	/* The image must hold what it says: a write that failed here would
	 * leave the inputs' calls nothing but misses. */
	if (which == 2) {
		/* LRU: which keys the clock evicted is not fixed; that it kept
		 * a good part of them is. */
		unsigned kept = 0;
		for (unsigned i = 0; i < 400; i++) {
			char k[16];
			int kl = snprintf(k, sizeof(k), "e%u", i);
			kept += tc_get(c, k, (size_t)kl, outbuf, VAL_MAX, NULL) == 0;
		}
		/* Which keys go depends on the clock (the 1 ms TTLs above and
		 * the coarse clock's tick): on a loaded host a build kept 38,
		 * where 40 or 43 are usual.  Such an image is built again, at
		 * most twice; the one kept still holds 40. */
		static int rebuilt;
		if (kept < 40 && rebuilt < 2) {
			rebuilt++;
			tc_close(c);
			tc_unlink(seg_name);
			build_golden(which);
			return;
		}
		if (kept < 40)
			die("golden LRU image without its keys", (int)kept);
	} else if (which != 0) {
		int g1 = tc_get(c, "k01", 3, outbuf, VAL_MAX, NULL);
		int g2 = tc_get(c, "k03", 3, outbuf, VAL_MAX, NULL);
		if (g1 != 0 || g2 != 0)
			die("golden image without its keys", g1 ? g1 : g2);
	}
	if (which == 1 || which == 3) {
		/* A process that died inside a read section, its slot not given
		 * back: the cleaners' paths (tc_sweep, tc_readers_clean, a
		 * writer short of memory) meet it. */
		pid_t pid = fork();
		if (pid == 0) {
			tc_cache *d;
			if (tc_open(&d, seg_name, NULL) == 0) {
				tc_set(d, "k05", 3, "dead", 4, 0, 0);
				tc_del(d, "k06", 3);
				tc_read_lock(d);
			}
			_exit(0);
		}
		/* EINTR: a signal meant for libFuzzer, or a debugger attaching. */
		pid_t r;
		while (pid > 0 && (r = waitpid(pid, NULL, 0)) < 0 && errno == EINTR)
			;
		if (pid < 0 || r != pid)
			die("fork (golden)", -errno);
	}
	tc_close(c);
	int fd = shm_open(shm_file, O_RDONLY, 0);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) != 0)
		die("shm_open (golden)", -errno);
	seg_bytes = (size_t)st.st_size;
	golden[which] = malloc(seg_bytes);
	if (!golden[which] || pread(fd, golden[which], seg_bytes, 0) != (ssize_t)seg_bytes)
		die("pread (golden)", -EIO);
	close(fd);
	tc_unlink(seg_name);
}

static void at_exit(void)
{
	tc_unlink(seg_name);
	unlink(snap_path);
	unlink(pol_path);
}

/* (Re)create the shm object the inputs are copied into. */
static void make_object(void)
{
	if (shm_map)
		munmap(shm_map, seg_bytes);
	if (shm_fd >= 0)
		close(shm_fd);
	shm_unlink(shm_file);
	shm_fd = shm_open(shm_file, O_RDWR | O_CREAT | O_EXCL, 0600);
	if (shm_fd < 0 || ftruncate(shm_fd, (off_t)seg_bytes) != 0)
		die("shm_open (object)", -errno);
	shm_map = mmap(NULL, seg_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, shm_fd, 0);
	if (shm_map == MAP_FAILED)
		die("mmap (object)", -errno);
}

static void write_seeds(const char *dir);

static void write_seeds(const char *dir);
static void check_program(int g);

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	snprintf(seg_name, sizeof(seg_name), "fzseg%d", (int)getpid());
	snprintf(shm_file, sizeof(shm_file), "/tickcache.%s", seg_name);
	snprintf(snap_path, sizeof(snap_path), "%s/tcfuzz-%d.snap", fz_tmpdir(), (int)getpid());
	snprintf(pol_path, sizeof(pol_path), "%s/tcfuzz-%d.pol", fz_tmpdir(), (int)getpid());
	atexit(at_exit);
	for (int i = 0; i < NGOLDEN; i++)
		build_golden(i);
	const char *pol = "k0 = 86400000\np = 0 # never\n\n# comment\nkk=90000000\n";
	if (fz_write_file(pol_path, pol, strlen(pol)))
		die("write policy file", -errno);
	make_object();
	check_program(1);
	const char *seeds = getenv("TC_FUZZ_SEED_DIR");
	if (seeds && *seeds) {
		write_seeds(seeds);
		exit(0);
	}
	return 0;
}

/* The callbacks are tests/promises.h's (through fuzz_common.h): pr_scan_fn
 * stops at key "k19" with 7, pr_reader_fn bounds the slot number. */
static char scan_stop[] = "k19";
static uint32_t reader_slots = GEO_READERS + TC_TOOL_READERS;

/* ---- the interpreter ---------------------------------------------------------- */

enum {
	OP_PATCH, OP_WORD, OP_COPY, OP_ZERO,
	OP_GET, OP_PEEK, OP_EXISTS, OP_SET, OP_ADD, OP_CAS, OP_DEL, OP_INCR, OP_EXPIRE,
	OP_RUN_START, OP_RUN_END, OP_RUN_END_GEN, OP_RUN_ANCHOR, OP_DTO_APPEND,
	OP_DTO_COUNT, OP_DTO_EACH, OP_DTO_KEYS, OP_SCAN, OP_PURGE, OP_STATS, OP_INFO,
	OP_SNAP_SAVE, OP_SNAP_LOAD, OP_AUDIT, OP_SWEEP, OP_RECLAIM, OP_READERS,
	OP_READERS_CLEAN, OP_ATTACHED, OP_LEASE, OP_RATE, OP_LOAD, OP_POLICY,
	OP_POLICY_LIST, OP_POLICY_FILE, OP_REOPEN, OP_UNLINK, OP_NESTED, OP_SMALL_GET,
	OP_GET_MANY, OP_GET_WITH, OP_SET_V, OP_TIER,
	NOPS
};
_Static_assert(NOPS <= 64, "ops_done has a bit per op");

/* Bit OP: call() ran OP (past the handle's check) since this was zeroed. */
static uint64_t ops_done;

/*
 * The bytes each op reads after its own (the handle first), so that a
 * fixed program calls every op once: the raw harness's program and the
 * seeds of this one are made of them.  An op's bytes must be exactly what
 * call() reads for it, or the rest of the program is read out of step:
 * check_program() (at start) fails when a program misses an op.
 */
struct op_args {
	uint8_t n;
	uint8_t b[48];
};
#define A(...) { sizeof((uint8_t[]){ __VA_ARGS__ }), { __VA_ARGS__ } }
static const struct op_args op_args[NOPS] = {
	[OP_GET] = A(0, 1),                    /* handle, key k01 */
	[OP_SMALL_GET] = A(0, 2, 3),           /* a cap of 3 */
	[OP_PEEK] = A(0, 250),                 /* the key of 27 bytes */
	[OP_EXISTS] = A(0, 4, 1, 0),           /* tc_wait_any from 0; tc_wait until it exists */
	[OP_GET_MANY] = A(0, 19, 2,            /* 20 requests, copied then peeked */
			  1, 1, 3, 1, 22, 1, 30, 0, 9, 5, 1, 31, 1, 0, 1, 4, 1, 6, 1, 7, 1,
			  8, 1, 10, 1, 11, 1, 20, 1, 21, 1, 26, 1, 248, 1, 251, 1, 14, 1,
			  240, 0x78, 1),               /* caps 256, one of 9; keys of 9 and 32
							* bytes; a random key */
	[OP_GET_WITH] = A(0, 30, 4),           /* big0 with a cap of 4: the callback */
	[OP_SCAN] = A(0, 0),
	[OP_DTO_KEYS] = A(0),
	[OP_DTO_EACH] = A(0, 22, 0),
	[OP_DTO_COUNT] = A(0, 23),
	[OP_RUN_ANCHOR] = A(0),
	[OP_STATS] = A(0),
	[OP_INFO] = A(0),
	[OP_READERS] = A(0),
	[OP_ATTACHED] = A(0),
	[OP_POLICY_LIST] = A(0),
	[OP_LEASE] = A(0, 3),                  /* tc_lease_holder */
	[OP_TIER] = A(0, 0, 1),                /* tc_tier_claim, never stale */
	[OP_SET] = A(0, 5, 0x40, 0x80, 0, 0),  /* a length, type 0, TTL 0 */
	[OP_SET_V] = A(0, 7, 0x40, 0x80, 0),
	[OP_ADD] = A(0, 9, 8, 0, 0, 0),
	[OP_CAS] = A(0, 3, 8, 0, 1, 0),        /* at the last version seen */
	[OP_DEL] = A(0, 6),
	[OP_INCR] = A(0, 20, 3, 0),
	[OP_EXPIRE] = A(0, 11, 3),
	[OP_DTO_APPEND] = A(0, 24, 16, 0, 0),
	[OP_RATE] = A(0, 27, 1),
	[OP_LOAD] = A(0, 26, 64, 0),
	[OP_POLICY] = A(0, 1, 0, 5, 0),        /* tc_ttl_policy_set("p", ...) */
	[OP_POLICY_FILE] = A(0),
	[OP_SNAP_SAVE] = A(0),
	[OP_SNAP_LOAD] = A(0, 1),
	[OP_PURGE] = A(0, 2),
	[OP_SWEEP] = A(1, 0),
	[OP_RECLAIM] = A(0),
	[OP_READERS_CLEAN] = A(1),
	[OP_RUN_END] = A(0),
	[OP_RUN_START] = A(0, 1, 0, 1),
	[OP_RUN_END_GEN] = A(0, 1),            /* the last generation seen */
	[OP_NESTED] = A(0, 1),
	[OP_AUDIT] = A(0),
	[OP_REOPEN] = A(1),
	[OP_UNLINK] = A(0),
};
#undef A

/* The order of the fixed programs: reads, writes, maintenance, unlink last
 * (a call after it meets the unlinked segment). */
static const uint8_t program_order[] = {
	OP_GET, OP_SMALL_GET, OP_PEEK, OP_EXISTS, OP_GET_MANY, OP_GET_WITH, OP_SCAN,
	OP_DTO_KEYS, OP_DTO_EACH, OP_DTO_COUNT, OP_RUN_ANCHOR, OP_STATS, OP_INFO,
	OP_READERS, OP_ATTACHED, OP_POLICY_LIST, OP_LEASE, OP_TIER, OP_SET, OP_SET_V, OP_ADD,
	OP_CAS, OP_DEL, OP_INCR, OP_EXPIRE, OP_DTO_APPEND, OP_RATE, OP_LOAD, OP_POLICY,
	OP_POLICY_FILE, OP_SNAP_SAVE, OP_SNAP_LOAD, OP_PURGE, OP_SWEEP, OP_RECLAIM,
	OP_READERS_CLEAN, OP_RUN_END, OP_RUN_START, OP_RUN_END_GEN, OP_NESTED, OP_REOPEN,
	OP_AUDIT, OP_GET, OP_UNLINK, OP_GET,
};
_Static_assert(sizeof(program_order) == NOPS - OP_GET + 2, "every call once (GET thrice)");

/* Append OP with its bytes to P (N used, of CAP). */
static size_t put_op(uint8_t *p, size_t n, size_t cap, int op)
{
	if (n + 1 + op_args[op].n > cap)
		die("program buffer", -ENOSPC);
	p[n++] = (uint8_t)op;
	memcpy(p + n, op_args[op].b, op_args[op].n);
	return n + op_args[op].n;
}

/* Every call once, in program_order, into P; its length. */
static size_t every_call(uint8_t *p, size_t cap)
{
	size_t n = 0;
	for (size_t i = 0; i < sizeof(program_order); i++)
		n = put_op(p, n, cap, program_order[i]);
	return n;
}

/*
 * The silent-damage oracle.  For each key of key_names the harness writes
 * in this input it remembers the lengths it wrote (values are a function of
 * their length, see fill) and where the entry of its last successful write
 * lies in the segment.  A later successful read of that key must return
 * one of those values unless a patch since that write touched the entry's
 * bytes or the index: a key nobody scribbled must not change (defects like
 * a free-list pop of the wrong class or an LRU clock writing through an
 * unchecked slot show up here, not as crashes).  Snapshot loads and
 * read-through loads write values of their own: they end the tracking.
 */
#define HIST 16
struct track {
	bool on;
	uint32_t nhist;
	uint32_t hist[HIST];
	uint64_t off, len;  /* the entry, in segment bytes */
	int mark;           /* patches before the write */
};

struct state {
	struct fz_in in;
	int kidx;           /* key_names index of the last pick_key, or -1 */
	struct track trk[NKEYS];
	int npatch;
	struct { uint32_t off, len; } patches[MAX_OPS];
	tc_cache *c[2];   /* an ordinary handle and a TC_TOOL one */
	bool unlinked;
	uint64_t version; /* the last version seen, for tc_cas */
	uint64_t gen;     /* the last run generation seen */
	char key[16];
};

static const uint64_t interesting[] = {
	0, 1, 2, 3, 0xff, 0x100, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xffffffff,
	0x100000000ull, 0x7fffffffffffffffull, 0x8000000000000000ull, UINT64_MAX,
	0x4c495645u, 0x46524545u, 0x52455449u, 0x434c414du, 0x4f555421u, /* block states */
	4096, 4097, 65536 / 16, 65536 / 16 + 1, (2ull << 62) | 1, (1ull << 62) | 1,
};

static int open_handle(struct state *s, int which)
{
	if (s->c[which])
		return 0;
	tc_opts o = { .flags = which ? TC_TOOL : 0 };
	return fz_rc(tc_open(&s->c[which], seg_name, &o));
}

static const char *pick_key(struct state *s, size_t *kl)
{
	uint8_t b = fz_u8(&s->in);
	if (b < 224 || b >= 248) {
		s->kidx = (int)(b < 224 ? b % NSHORT : NSHORT + (b - 248u) % (NKEYS - NSHORT));
		const char *k = key_names[s->kidx];
		*kl = strlen(k);
		return k;
	}
	s->kidx = -1;
	size_t n = 1 + b % 12;
	for (size_t i = 0; i < n; i++)
		s->key[i] = (char)fz_u8(&s->in);
	*kl = n;
	return s->key;
}

static size_t pick_len(struct state *s)
{
	uint16_t v = fz_u16(&s->in);
	return (v & 0x8000) ? (size_t)(v & 0x7fff) % VAL_MAX : (size_t)(v & 0x3f) * 8;
}

static uint64_t pick_ttl(struct state *s)
{
	/* No TTL that can pass during an input: an input must behave the
	 * same when it is replayed (expired entries come with the images). */
	switch (fz_u8(&s->in) & 3) {
	case 0: return 0;
	case 1: return TC_TTL_DEFAULT;
	case 2: return LONG_TTL;
	default: return 3600u * 1000u;
	}
}

static void note_patch(struct state *s, uint32_t off, uint32_t len)
{
	if (s->npatch < MAX_OPS) {
		s->patches[s->npatch].off = off;
		s->patches[s->npatch].len = len;
	}
	s->npatch++;
}

static void patch(struct state *s, int op)
{
	uint32_t off = fz_u24(&s->in) % (uint32_t)seg_bytes;
	switch (op) {
	case OP_PATCH: {
		size_t n = 1 + fz_u8(&s->in) % 16;
		for (size_t i = 0; i < n && off + i < seg_bytes; i++)
			shm_map[off + i] = fz_u8(&s->in);
		note_patch(s, off, (uint32_t)n);
		break;
	}
	case OP_WORD: {
		uint8_t w = fz_u8(&s->in);
		uint64_t v = w < 128 ? interesting[w % (sizeof(interesting) / sizeof(interesting[0]))]
				     : fz_u64(&s->in);
		off &= ~7u;
		if (off + 8 <= seg_bytes)
			memcpy(shm_map + off, &v, 8);
		note_patch(s, off, 8);
		break;
	}
	case OP_COPY: {
		uint32_t from = (fz_u24(&s->in) % (uint32_t)seg_bytes) & ~7u;
		off &= ~7u;
		if (off + 8 <= seg_bytes && from + 8 <= seg_bytes)
			memmove(shm_map + off, shm_map + from, 8);
		note_patch(s, off, 8);
		break;
	}
	case OP_ZERO: {
		size_t n = 1 + fz_u8(&s->in);
		if (off + n > seg_bytes)
			n = seg_bytes - off;
		memset(shm_map + off, 0, n);
		note_patch(s, off, (uint32_t)n);
		break;
	}
	}
}

/* After a write of N bytes to key KIDX (RC its result): remember it. */
static void track_write(struct state *s, tc_cache *c, int kidx, const char *k, size_t kl,
			size_t n, int rc)
{
	if (kidx < 0)
		return;
	struct track *t = &s->trk[kidx];
	if (t->nhist == HIST) {
		t->on = false; /* too many values to tell: stop tracking */
		return;
	}
	t->hist[t->nhist++] = (uint32_t)n;
	if (rc != 0 || s->npatch > MAX_OPS)
		return;
	tc_meta m;
	const void *v;
	t->on = false;
	if (tc_read_lock(c))
		return;
	if (tc_peek(c, k, kl, &v, &m) == 0 && m.len == n) {
		t->off = (uint64_t)((const uint8_t *)v - c->base) - TC_ENTRY_HDR - TC_ALIGN8(kl);
		t->len = TC_ENTRY_HDR + TC_ALIGN8(kl) + n;
		t->mark = s->npatch;
		t->on = true;
	}
	tc_read_unlock(c);
}

static bool overlaps(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return a < b + blen && b < a + alen;
}

/* Was the tracked entry of T patched since it was written? */
static bool patched(const struct state *s, const struct track *t)
{
	for (int i = t->mark; i < s->npatch && i < MAX_OPS; i++)
		if (overlaps(s->patches[i].off, s->patches[i].len, t->off, t->len))
			return true;
	return false;
}

/* After tc_expire: the same value in a new entry (copied from the old
 * one, so a patch of the old one since the write ends the tracking). */
static void track_move(struct state *s, tc_cache *c, int kidx, const char *k, size_t kl)
{
	if (kidx < 0 || !s->trk[kidx].on)
		return;
	struct track *t = &s->trk[kidx];
	tc_meta m;
	const void *v;
	bool was_patched = patched(s, t) || s->npatch > MAX_OPS;
	t->on = false;
	if (was_patched || tc_read_lock(c))
		return;
	if (tc_peek(c, k, kl, &v, &m) == 0 && m.len == t->len - TC_ENTRY_HDR - TC_ALIGN8(kl)) {
		t->off = (uint64_t)((const uint8_t *)v - c->base) - TC_ENTRY_HDR - TC_ALIGN8(kl);
		t->mark = s->npatch;
		t->on = true;
	}
	tc_read_unlock(c);
}

/* After a successful read of key KIDX: a value the harness wrote, or the
 * key's entry (or the index) was patched since. */
static void track_read(struct state *s, tc_cache *c, int kidx, const void *v, size_t len)
{
	if (kidx < 0 || !s->trk[kidx].on || s->npatch > MAX_OPS)
		return;
	struct track *t = &s->trk[kidx];
	fill(valbuf, len, (uint32_t)len);
	for (uint32_t i = 0; i < t->nhist; i++)
		if (t->hist[i] == len && memcmp(v, valbuf, len) == 0)
			return;
	uint64_t io = (uint64_t)((uint8_t *)c->index - c->base), il = c->nbuckets * 64;
	if (patched(s, t))
		return;
	/* The index, and the header's first lines (the hash seed among them,
	 * read at attach): a patch there may bring back any version of any
	 * key, older ones of the images included. */
	for (int i = 0; i < s->npatch && i < MAX_OPS; i++)
		if (overlaps(s->patches[i].off, s->patches[i].len, io, il) ||
		    overlaps(s->patches[i].off, s->patches[i].len, 0, 128))
			return;
	size_t ndiff = 0, first = 0;
	for (size_t i = 0; i < len; i++)
		if (((const uint8_t *)v)[i] != valbuf[i] && ndiff++ == 0)
			first = i;
	fz_fail("key %s: a value of %zu bytes that was never written (%zu bytes differ from "
		"the one of that length, the first at %zu), and no patch touched its entry "
		"(segment bytes %llu..%llu) since it was written", key_names[kidx], len, ndiff,
		first, (unsigned long long)t->off, (unsigned long long)(t->off + t->len));
}

/* tc_get_many / tc_peek_many: up to MANY_MAX requests (more than one of
 * the library's chunks of 16), each with a cap of its own. */
#define MANY_MAX 20
#define MANY_CAP 256
static uint8_t many_buf[MANY_MAX][MANY_CAP];

/* A code that tc_get and tc_get_many both give for a key, once inside a
 * section: the answer of the lookup itself. */
static bool lookup_code(int rc)
{
	return rc == 0 || rc == -ENOENT || rc == -E2BIG || rc == TC_ECORRUPT;
}

/* Each request must answer what tc_get answers for its key (nothing
 * changes the segment between the two: no patch, no write, no TTL that can
 * pass), and obey tc_get's promises; a hit is checked by the oracle. */
static void many_check(struct state *s, tc_cache *c, tc_req *r, const int *kidx, size_t nr,
		       bool peek)
{
	const void *v[MANY_MAX];
	int hits;
	if (peek) {
		if (fz_rc(tc_read_lock(c)))
			return;
		hits = tc_peek_many(c, r, nr, v);
	} else {
		hits = tc_get_many(c, r, nr);
	}
	if (getenv("TC_FUZZ_TRACE"))
		fprintf(stderr, "fuzz: %s of %zu: %d\n", peek ? "tc_peek_many" : "tc_get_many", nr,
			hits);
	if (getenv("TC_FUZZ_TRACE"))
		for (size_t i = 0; i < nr; i++)
			fprintf(stderr, "fuzz:   %.*s %d\n", (int)r[i].klen, (const char *)r[i].key, r[i].rc);
	if (hits < 0)
		fz_rc(hits); /* a code, else a broken promise */
	else if ((size_t)hits > nr)
		fz_fail("tc_get_many: %d hits of %zu requests", hits, nr);
	int nhit = 0;
	for (size_t i = 0; i < nr; i++) {
		int rc = fz_rc(r[i].rc);
		nhit += rc == 0;
		if (hits < 0) {
			if (rc != hits)
				fz_fail("tc_get_many returned %d and request %zu %d", hits, i, rc);
			continue;
		}
		size_t len = r[i].meta.len;
		pr_request(&r[i], peek, peek ? v[i] : NULL);
		tc_meta m;
		memset(&m, 0, sizeof(m));
		int want = tc_get(c, r[i].key, r[i].klen, outbuf, peek ? VAL_MAX : r[i].cap, &m);
		if (peek && want == -E2BIG)
			want = 0; /* over VAL_MAX: tc_peek has no cap */
		if (lookup_code(want) && lookup_code(rc) && want != rc)
			fz_fail("%s: request %zu (%s) %d, tc_get %d", peek ? "tc_peek_many" :
				"tc_get_many", i, kidx[i] >= 0 ? key_names[kidx[i]] : "a random key",
				rc, want);
		if (want == rc && (rc == 0 || rc == -E2BIG) &&
		    (m.len != len || m.version != r[i].meta.version || m.type != r[i].meta.type))
			fz_fail("request %zu: length %zu version %llu, tc_get %zu %llu", i, len,
				(unsigned long long)r[i].meta.version, m.len,
				(unsigned long long)m.version);
		if (rc != 0 || len > VAL_MAX)
			continue;
		const void *got = peek ? v[i] : r[i].buf;
		if (want == 0 && memcmp(got, outbuf, len) != 0)
			fz_fail("request %zu: the bytes differ from tc_get's", i);
		memcpy(outbuf, got, len);
		track_read(s, c, kidx[i], outbuf, len);
	}
	if (peek)
		tc_read_unlock(c);
	if (hits >= 0 && hits != nhit)
		fz_fail("tc_get_many returned %d hits of %d", hits, nhit);
}

/* The requests, then tc_get_many, tc_peek_many or both by the next byte. */
static void get_many(struct state *s, tc_cache *c)
{
	tc_req r[MANY_MAX];
	char kb[MANY_MAX][32]; /* the longest of key_names, 32 bytes; a random key 12 */
	int kidx[MANY_MAX];
	size_t nr = 1 + fz_u8(&s->in) % MANY_MAX;
	unsigned mode = fz_u8(&s->in) % 3; /* copy, peek, both */
	for (size_t i = 0; i < nr; i++) {
		size_t kl;
		const char *k = pick_key(s, &kl);
		memcpy(kb[i], k, kl);
		kidx[i] = s->kidx;
		r[i] = (tc_req){ .key = kb[i], .klen = kl, .buf = many_buf[i],
				 .cap = fz_u8(&s->in) & 1 ? MANY_CAP : fz_u8(&s->in) % MANY_CAP };
	}
	if (mode != 1)
		many_check(s, c, r, kidx, nr, false);
	if (mode != 0)
		many_check(s, c, r, kidx, nr, true);
}

/* tc_get_with's buffer: the value's length must be over the caller's cap
 * and within the limit; NULL (-ENOMEM) for one the harness cannot hold. */
struct with_arg {
	size_t cap, asked;
	int calls;
};

static void *with_fn(const tc_meta *m, void *arg)
{
	struct with_arg *a = arg;
	a->calls++;
	a->asked = m->len;
	if (m->len <= a->cap || m->len > TC_VALUE_MAX)
		fz_fail("tc_get_with asked for %zu bytes with cap %zu", m->len, a->cap);
	return m->len <= VAL_MAX ? valbuf : NULL;
}

static void call(struct state *s, int op)
{
	/* One bit of the next byte picks the handle: ordinary or TC_TOOL. */
	int h = fz_u8(&s->in) & 1;
	if (op == OP_REOPEN || op == OP_UNLINK)
		ops_done |= 1ull << op;
	if (op == OP_REOPEN) {
		if (s->c[h]) {
			tc_close(s->c[h]);
			s->c[h] = NULL;
		}
		open_handle(s, h);
		return;
	}
	if (op == OP_UNLINK) {
		if (!s->unlinked) {
			fz_rc(tc_unlink(seg_name));
			s->unlinked = true;
		}
		return;
	}
	if (!s->c[h] && (s->unlinked || open_handle(s, h)))
		return;
	tc_cache *c = s->c[h];
	size_t kl, n;
	const char *k;
	tc_meta m;
	int rc;
	ops_done |= 1ull << op;
	switch (op) {
	case OP_GET:
	case OP_SMALL_GET: {
		k = pick_key(s, &kl);
		size_t cap = op == OP_GET ? VAL_MAX : fz_u8(&s->in) % 16;
		memset(&m, 0, sizeof(m));
		rc = fz_rc(tc_get(c, k, kl, outbuf, cap, &m));
		if (rc == 0 && m.len > cap)
			fz_fail("tc_get returned 0 with length %zu over cap %zu", m.len, cap);
		if (rc == -E2BIG && m.len <= cap)
			fz_fail("tc_get returned -E2BIG with length %zu within cap %zu", m.len, cap);
		if (rc == 0) {
			s->version = m.version;
			track_read(s, c, s->kidx, outbuf, m.len);
		}
		break;
	}
	case OP_PEEK: {
		k = pick_key(s, &kl);
		if (fz_rc(tc_read_lock(c)))
			break;
		const void *v = NULL;
		rc = fz_rc(tc_peek(c, k, kl, &v, &m));
		if (rc == 0) {
			if (m.len > TC_VALUE_MAX || (m.len && !v))
				fz_fail("tc_peek returned length %zu at %p", m.len, v);
			int kidx = s->kidx;
			if (m.len <= VAL_MAX) {
				memcpy(outbuf, v, m.len);
				track_read(s, c, kidx, outbuf, m.len);
			}
		}
		tc_read_unlock(c);
		break;
	}
	case OP_NESTED: {
		k = pick_key(s, &kl);
		if (fz_rc(tc_read_lock(c)))
			break;
		if (!fz_rc(tc_read_lock(c))) {
			fz_rc(tc_get(c, k, kl, outbuf, VAL_MAX, &m));
			fz_rc(tc_sweep(c, 1, NULL)); /* -EDEADLK inside a section */
			tc_read_unlock(c);
		}
		tc_read_unlock(c);
		break;
	}
	case OP_EXISTS: {
		k = pick_key(s, &kl);
		(void)tc_exists(c, k, kl);
		/* Waits that never sleep (timeout 0) over the scribbled futex
		 * words and entries: a check, and the flags they set. */
		uint64_t seq = fz_u8(&s->in) & 1 ? 0 : fz_u64(&s->in);
		fz_rc(tc_wait(c, k, kl, fz_u8(&s->in) & 1 ? s->version : 0, 0, &m));
		fz_rc(tc_wait_any(c, &seq, 0));
		break;
	}
	case OP_SET:
	case OP_ADD: {
		k = pick_key(s, &kl);
		n = pick_len(s);
		uint32_t type = fz_u8(&s->in) & 3;
		uint64_t ttl = pick_ttl(s);
		int kidx = s->kidx;
		fill(valbuf, n, (uint32_t)n);
		if (op == OP_SET)
			rc = fz_rc(tc_set(c, k, kl, valbuf, n, type, ttl));
		else
			rc = fz_rc(tc_add(c, k, kl, valbuf, n, type, ttl));
		track_write(s, c, kidx, k, kl, n, rc);
		break;
	}
	case OP_CAS: {
		k = pick_key(s, &kl);
		int kidx = s->kidx;
		n = pick_len(s);
		uint64_t ver = (fz_u8(&s->in) & 1) ? s->version : fz_u64(&s->in);
		uint64_t ttl = pick_ttl(s);
		fill(valbuf, n, (uint32_t)n);
		rc = fz_rc(tc_cas(c, k, kl, ver, valbuf, n, 0, ttl));
		track_write(s, c, kidx, k, kl, n, rc);
		break;
	}
	case OP_DEL:
		k = pick_key(s, &kl);
		fz_rc(tc_del(c, k, kl));
		break;
	case OP_INCR: {
		k = pick_key(s, &kl);
		int64_t out;
		if (s->kidx >= 0)
			s->trk[s->kidx].on = false;
		fz_rc(tc_incr(c, k, kl, (int8_t)fz_u8(&s->in), pick_ttl(s), &out));
		break;
	}
	case OP_EXPIRE: {
		k = pick_key(s, &kl);
		int kidx = s->kidx;
		if (fz_rc(tc_expire(c, k, kl, pick_ttl(s))) == 0)
			track_move(s, c, kidx, k, kl);
		break;
	}
	case OP_RUN_START:
		fz_rc(tc_run_start(c, (int64_t)fz_u16(&s->in), fz_u8(&s->in)));
		break;
	case OP_RUN_END:
		fz_rc(tc_run_end(c));
		break;
	case OP_RUN_END_GEN:
		fz_rc(tc_run_end_gen(c, (fz_u8(&s->in) & 1) ? s->gen : fz_u64(&s->in)));
		break;
	case OP_RUN_ANCHOR: {
		tc_anchor a;
		if (fz_rc(tc_run_anchor(c, &a)) == 0) {
			if (!(a.generation & 1))
				fz_fail("tc_run_anchor: even generation %llu",
					(unsigned long long)a.generation);
			s->gen = a.generation;
		}
		break;
	}
	case OP_DTO_APPEND: {
		k = pick_key(s, &kl);
		n = pick_len(s);
		fill(valbuf, n, 5);
		fz_rc(tc_dto_append(c, k, kl, 9 + (fz_u8(&s->in) & 1), valbuf, n));
		break;
	}
	case OP_DTO_COUNT: {
		k = pick_key(s, &kl);
		size_t cnt;
		fz_rc(tc_dto_count(c, k, kl, &cnt));
		break;
	}
	case OP_DTO_EACH:
		k = pick_key(s, &kl);
		fz_rc(tc_dto_each(c, k, kl, 9 + (fz_u8(&s->in) & 1), pr_dto_fn, NULL));
		break;
	case OP_DTO_KEYS:
		fz_rc(tc_dto_keys(c, pr_dto_key_fn, NULL));
		break;
	case OP_SCAN:
		rc = tc_scan(c, globs[fz_u8(&s->in) % 8], pr_scan_fn, scan_stop);
		if (rc != 7)
			fz_rc(rc);
		break;
	case OP_PURGE: {
		uint64_t d;
		fz_rc(tc_purge(c, globs[fz_u8(&s->in) % 8], &d));
		break;
	}
	case OP_STATS: {
		tc_stats st;
		fz_rc(tc_get_stats(c, &st));
		if (st.nclasses > TC_NCLASSES)
			fz_fail("tc_get_stats: nclasses %u", st.nclasses);
		break;
	}
	case OP_INFO: {
		tc_info in;
		fz_rc(tc_get_info(c, &in));
		break;
	}
	case OP_SNAP_SAVE: {
		tc_snapshot_report r;
		fz_rc(tc_snapshot_save(c, snap_path, &r));
		break;
	}
	case OP_SNAP_LOAD: {
		tc_snapshot_report r;
		for (size_t i = 0; i < NKEYS; i++)
			s->trk[i].on = false;
		fz_rc(tc_snapshot_load(c, snap_path, fz_u8(&s->in) & 1, &r));
		break;
	}
	case OP_AUDIT: {
		tc_audit_report r;
		fz_rc(tc_audit(c, &r));
		break;
	}
	case OP_SWEEP: {
		tc_sweep_report r;
		fz_rc(tc_sweep(c, fz_u8(&s->in) % 4, &r));
		break;
	}
	case OP_RECLAIM: {
		uint64_t fr;
		fz_rc(tc_reclaim(c, &fr));
		break;
	}
	case OP_READERS:
		fz_rc(tc_readers(c, pr_reader_fn, &reader_slots));
		break;
	case OP_READERS_CLEAN: {
		uint32_t cl;
		fz_rc(tc_readers_clean(c, &cl));
		break;
	}
	case OP_ATTACHED:
		fz_rc(tc_attached(c, pr_attach_fn, NULL));
		break;
	case OP_LEASE: {
		uint32_t pid;
		uint64_t age;
		bool alive;
		switch (fz_u8(&s->in) & 3) {
		case 0: fz_rc(tc_lease_acquire(c, LONG_TTL, &pid)); break;
		case 1: fz_rc(tc_lease_renew(c)); break;
		case 2: fz_rc(tc_lease_release(c)); break;
		default: fz_rc(tc_lease_holder(c, &pid, &age, &alive)); break;
		}
		break;
	}
	case OP_RATE: {
		k = pick_key(s, &kl);
		bool allowed;
		uint64_t cnt;
		fz_rc(tc_rate_limit(c, k, kl, 1 + fz_u8(&s->in) % 4, WINDOW_MS, &allowed, &cnt));
		break;
	}
	case OP_LOAD: {
		k = pick_key(s, &kl);
		if (s->kidx >= 0)
			s->trk[s->kidx].on = false;
		size_t cap = fz_u8(&s->in);
		memset(&m, 0, sizeof(m));
		rc = fz_rc(tc_get_or_load(c, k, kl, outbuf, cap, &m, 0, pick_ttl(s), 0, pr_loader,
					  NULL));
		if (rc == 0 && m.len > cap)
			fz_fail("tc_get_or_load returned length %zu over cap %zu", m.len, cap);
		break;
	}
	case OP_POLICY: {
		static const char *const prefixes[] = { "k0", "p", "k", "kk", "d", "" };
		const char *p = prefixes[fz_u8(&s->in) % 6];
		if (fz_u8(&s->in) & 1)
			fz_rc(tc_ttl_policy_del(c, p));
		else
			fz_rc(tc_ttl_policy_set(c, p, LONG_TTL + fz_u16(&s->in)));
		break;
	}
	case OP_POLICY_LIST:
		fz_rc(tc_ttl_policy_list(c, pr_policy_fn, NULL));
		break;
	case OP_GET_MANY:
		get_many(s, c);
		break;
	case OP_GET_WITH: {
		k = pick_key(s, &kl);
		int kidx = s->kidx;
		struct with_arg a = { .cap = fz_u8(&s->in) };
		memset(&m, 0, sizeof(m));
		if (a.cap & 1) /* an odd cap: the same read through the key's hash */
			rc = fz_rc(tc_get_hashed(c, tc_key_hash(c, k, kl), k, kl, outbuf, a.cap, &m,
						 with_fn, &a));
		else
			rc = fz_rc(tc_get_with(c, k, kl, outbuf, a.cap, &m, with_fn, &a));
		if (rc == -E2BIG || (rc == -ENOMEM && a.calls != 1) || a.calls > 1)
			fz_fail("tc_get_with: %d after %d calls of its function", rc, a.calls);
		if (rc == 0 && a.calls && m.len != a.asked)
			fz_fail("tc_get_with: length %zu, %zu asked for", m.len, a.asked);
		if (rc == 0 && m.len <= VAL_MAX) {
			if (a.calls)
				memcpy(outbuf, valbuf, m.len); /* the value went to with_fn's buffer */
			track_read(s, c, kidx, outbuf, m.len);
		}
		break;
	}
	case OP_SET_V: {
		k = pick_key(s, &kl);
		n = pick_len(s);
		int kidx = s->kidx;
		uint64_t ver = 0;
		fill(valbuf, n, (uint32_t)n);
		rc = fz_rc(tc_set_v(c, k, kl, valbuf, n, 0, pick_ttl(s), &ver));
		if (rc == 0 && ver == 0)
			fz_fail("tc_set_v: 0 with version 0");
		if (rc == 0)
			s->version = ver;
		track_write(s, c, kidx, k, kl, n, rc);
		break;
	}
	case OP_TIER: {
		uint32_t pid;
		tc_tier t;
		switch (fz_u8(&s->in) & 3) {
		case 0: fz_rc(tc_tier_claim(c, fz_u8(&s->in) & 1 ? 0 : LONG_TTL, &pid)); break;
		case 1:
			fz_rc(tc_tier_set(c, fz_u8(&s->in) % 4));
			/* no input read: the corpus keeps its meaning */
			fz_rc(tc_tier_until(c, 0));
			break;
		case 2: fz_rc(tc_tier_release(c)); break;
		default:
			if (fz_rc(tc_tier_get(c, &t)) == 0)
				pr_tier(&t);
			break;
		}
		break;
	}
	case OP_POLICY_FILE: {
		unsigned bad;
		fz_rc(tc_ttl_policy_load_ex(c, pol_path, &bad));
		break;
	}
	}
}

static const char *const op_names[NOPS] = {
	"patch", "word", "copy", "zero", "get", "peek", "exists", "set", "add", "cas", "del",
	"incr", "expire", "run_start", "run_end", "run_end_gen", "run_anchor", "dto_append",
	"dto_count", "dto_each", "dto_keys", "scan", "purge", "stats", "info", "snapshot_save",
	"snapshot_load", "audit", "sweep", "reclaim", "readers", "readers_clean", "attached",
	"lease", "rate_limit", "get_or_load", "policy", "policy_list", "policy_file", "reopen",
	"unlink", "nested", "small_get", "get_many", "get_with", "set_v", "tier",
};

/* check_program(): where each op of a run began (NULL: not recorded). */
static size_t *op_starts;

static void run_program(struct state *s)
{
	/* TC_FUZZ_TRACE=1: each op on stderr, to read a reproducer. */
	static int trace = -1;
	if (trace < 0)
		trace = getenv("TC_FUZZ_TRACE") != NULL;
	for (int ops = 0; ops < MAX_OPS && s->in.i < s->in.n; ops++) {
		size_t at = s->in.i;
		int op = fz_u8(&s->in) % NOPS;
		if (op_starts && ops < MAX_OPS)
			op_starts[ops] = at;
		if (trace)
			fprintf(stderr, "fuzz: byte %zu: %s\n", at, op_names[op]);
#ifdef FUZZ_RAW
		/* The object has the input's size, not the view's: no patches
		 * (a call that cannot attach leaves its arguments to be read
		 * as opcodes). */
		if (op <= OP_ZERO)
			continue;
#endif
		if (op <= OP_ZERO)
			patch(s, op);
		else
			call(s, op);
	}
}

/*
 * After each input: the object is made again when its name is gone, by the
 * program's unlink or by the library (tc_open finishes the removal of a
 * segment marked UNLINKED whose unlinker is gone: an image of that state
 * removes the name).  Without it, every later input of the process wrote
 * into an object nobody could open, and ran no call past tc_open.
 */
static void end_input(struct state *s)
{
	for (int h = 0; h < 2; h++)
		if (s->c[h])
			tc_close(s->c[h]);
	struct stat st;
	if (s->unlinked || fstat(shm_fd, &st) != 0 || st.st_nlink == 0) {
		make_object();
		s->unlinked = true; /* the raw harness: the new object has its size */
	}
	unlink(snap_path); /* no state carried from one input to the next */
}

/*
 * Run every_call()'s program on golden image G as an input would, and die
 * unless each op began at the byte its op_args put it at and ran past its
 * handle's check (nothing read out of step, nothing skipped).  At start,
 * in every run of the harness (CI's fuzz-smoke too).
 */
static void check_program(int g)
{
	static uint8_t p[4 * 1024];
	size_t n = every_call(p, sizeof(p)), want[MAX_OPS], got[MAX_OPS], nw = 0;
	for (size_t at = 0; at < n; at += 1 + op_args[p[at]].n)
		want[nw++] = at;
	memset(got, 0xff, sizeof(got));
	memcpy(shm_map, golden[g], seg_bytes);
	struct state s = { .in = { p, n, 0 } };
	ops_done = 0;
	op_starts = got;
	run_program(&s);
	op_starts = NULL;
	end_input(&s);
	for (size_t i = 0; i < nw; i++)
		if (got[i] != want[i])
			die("check_program: an op's bytes are not what call() reads (see op_args)",
			    (int)i);
	for (int op = OP_GET; op < NOPS; op++)
		if (!(ops_done >> op & 1))
			die("check_program: an op of the fixed program did not run", op);
}

#ifndef FUZZ_RAW

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	struct state s = { .in = { data, size, 1 } };
	memcpy(shm_map, golden[data[0] % NGOLDEN], seg_bytes);
	run_program(&s);
	end_input(&s);
	return 0;
}

/* A few programs as seeds: each golden image with every call once. */
static void write_seeds(const char *dir)
{
	for (int g = 0; g < NGOLDEN; g++) {
		uint8_t p[4 * 1024];
		size_t n = 0;
		p[n++] = (uint8_t)g;
		if (g == 1) { /* scribble the index, then call again */
			const uint8_t head[] = { OP_WORD, 0x00, 0x50, 0x00, 3, OP_SCAN, 0, 0,
						 OP_AUDIT, 0 };
			memcpy(p + n, head, sizeof(head));
			n += sizeof(head);
		}
		n += every_call(p + n, sizeof(p) - n);
		char path[512];
		snprintf(path, sizeof(path), "%s/program-%d", dir, g);
		if (fz_write_file(path, p, n))
			die("write seed", -errno);
	}
}

#else /* FUZZ_RAW */

/* Every call once, on the keys of the golden images (every_call()). */
static uint8_t raw_program[4 * 1024];
static size_t raw_len;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > RAW_MAX)
		return 0;
	if (ftruncate(shm_fd, 0) != 0 || ftruncate(shm_fd, (off_t)size) != 0 ||
	    pwrite(shm_fd, data, size, 0) != (ssize_t)size)
		die("write object", -errno);
	if (!raw_len)
		raw_len = every_call(raw_program, sizeof(raw_program));
	struct state s = { .in = { raw_program, raw_len, 0 } };
	/* Patches would land in the fixed-size view: the raw program has none. */
	run_program(&s);
	end_input(&s);
	if (!s.unlinked && ftruncate(shm_fd, (off_t)seg_bytes) != 0)
		die("ftruncate", -errno);
	return 0;
}

static void write_seeds(const char *dir)
{
	for (int g = 0; g < NGOLDEN; g++) {
		char path[512];
		snprintf(path, sizeof(path), "%s/image-%d", dir, g);
		if (fz_write_file(path, golden[g], seg_bytes))
			die("write seed", -errno);
	}
}

#endif /* FUZZ_RAW */
