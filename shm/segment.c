/* SPDX-License-Identifier: MIT */
/*
 * segment.c - create, attach (TC_WAIT included), validate and remove
 * segments; the attach table.  Process identity, the registry of open
 * handles and the fork hooks are process.c's.
 *
 * Create-or-attach is serialised by flock(2) on the shm object: the first
 * process to find it empty (size 0) under the lock builds it, reserving its
 * memory with posix_fallocate(3) so that a full /dev/shm fails here with
 * -ENOSPC instead of raising SIGBUS at some later store; it publishes the
 * header last, with a release store of TC_STATE_READY.  An attacher that
 * finds any other state gets TC_ECORRUPT: the creator died half way (the
 * kernel dropped its lock), and the object must be removed with tc_unlink.
 * Every geometry field of an attached header is checked by recomputing the
 * whole layout from (max_entries, memory_bytes, max_readers) and comparing.
 */
#include "internal.h"
#include "futex.h"
#include "index.h" /* tc__hash_init */

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

/* ---- names and layout ------------------------------------------------- */

bool tc_name_valid(const char *name)
{
	if (!name || !name[0])
		return false;
	size_t n = strlen(name);
	if (n > TC_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = name[i];
		bool alnum = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
			     (ch >= '0' && ch <= '9');
		if (i == 0 && !alnum)
			return false;
		if (!alnum && ch != '_' && ch != '.' && ch != '-')
			return false;
	}
	return true;
}

/* The shm_open(3) name of segment NAME: "/tickcache.NAME". */
void tc__shm_path(char *dst, size_t cap, const char *name)
{
	snprintf(dst, cap, "/tickcache.%s", name);
}

static uint64_t page_up(uint64_t x)
{
	return (x + TC_PAGE - 1) & ~(uint64_t)(TC_PAGE - 1);
}

int tc__layout(uint64_t max_entries, uint64_t memory, uint32_t max_readers,
	       uint64_t *nbuckets, uint32_t *max_attach, uint64_t *slots_off,
	       uint64_t *attach_off, uint64_t *index_off, uint64_t *arena_off,
	       uint64_t *total)
{
	if (max_entries < TC_MIN_ENTRIES || max_entries > TC_MAX_ENTRIES ||
	    memory < TC_MIN_MEMORY || memory > TC_MAX_MEMORY ||
	    max_readers < TC_MIN_READERS || max_readers > TC_MAX_READERS)
		return -EINVAL;
	/* At most 70 % of the index slots hold live keys. */
	uint64_t want = (max_entries * 10 + 6) / 7;
	uint64_t nb = 1;
	while (nb * TC_BUCKET_SLOTS < want)
		nb <<= 1;
	*nbuckets = nb;
	*max_attach = max_readers + 64;
	uint64_t off = page_up(sizeof(struct tc_hdr));
	*slots_off = off;
	off = page_up(off + ((uint64_t)max_readers + TC_TOOL_READERS) * sizeof(struct tc_rslot));
	*attach_off = off;
	off = page_up(off + (uint64_t)*max_attach * sizeof(struct tc_attach_rec));
	*index_off = off;
	off = page_up(off + nb * sizeof(struct tc_bucket));
	*arena_off = off;
	off = page_up(off + (memory & ~(uint64_t)(TC_BLOCK_UNIT - 1)));
	*total = off;
	return 0;
}

/* ---- attach table ------------------------------------------------------ */

static int attach_claim(tc_cache *c)
{
	uint32_t pid = tc__self_pid();
	for (int round = 0; round < 2; round++) {
		for (uint32_t i = 0; i < c->max_attach; i++) {
			struct tc_attach_rec *r = &c->attach[i];
			if (tc__ld(&r->pid) == 0 && tc__cas(&r->pid, 0, (uint64_t)pid) == 0) {
				tc__st(&r->start, tc__self_start());
				c->attach_idx = i;
				return 0;
			}
		}
		/* Full: clear the records of dead processes once, then retry. */
		for (uint32_t i = 0; i < c->max_attach; i++) {
			struct tc_attach_rec *r = &c->attach[i];
			uint64_t p = tc__ld(&r->pid);
			if (p && p <= UINT32_MAX &&
			    (!tc__pid_alive((uint32_t)p, tc__ld(&r->start)) ||
			     (p != pid && !tc__maps_segment(c, (uint32_t)p, 0))))
				tc__cas(&r->pid, p, 0);
		}
	}
	return -EUSERS;
}

int tc_attached(tc_cache *c, tc_attach_fn fn, void *arg)
{
	if (!c || !fn)
		return -EINVAL;
	/* Aggregate records per pid; a bounded table, quadratic is fine. */
	for (uint32_t i = 0; i < c->max_attach; i++) {
		uint64_t p = tc__ld(&c->attach[i].pid);
		if (!p || p > UINT32_MAX)
			continue;
		bool first = true;
		uint32_t n = 0;
		for (uint32_t j = 0; j < c->max_attach; j++) {
			if (tc__ld(&c->attach[j].pid) == p) {
				if (j < i) {
					first = false;
					break;
				}
				n++;
			}
		}
		if (!first)
			continue;
		tc_attach a = { .pid = (uint32_t)p, .handles = n,
				.alive = tc__pid_alive((uint32_t)p, tc__ld(&c->attach[i].start)) &&
					 ((uint32_t)p == tc__self_pid() ||
					  tc__maps_segment(c, (uint32_t)p, 0)) };
		int rc = fn(&a, arg);
		if (rc)
			return rc;
	}
	return 0;
}

/* ---- open / close ------------------------------------------------------ */

static int build(int fd, const char *name, uint64_t entries, uint64_t memory,
		 uint32_t readers, const tc_opts *o, uint32_t mode)
{
	uint64_t nb, so, ao, io, ro, total;
	uint32_t ma;
	int rc = tc__layout(entries, memory, readers, &nb, &ma, &so, &ao, &io, &ro, &total);
	if (rc)
		return rc;
	/* The mode is applied exactly, whatever the umask. */
	if (fchmod(fd, mode) == -1)
		return -errno;
	rc = posix_fallocate(fd, 0, (off_t)total);
	if (rc)
		return rc == ENOSPC || rc == EFBIG || rc == ENOMEM ? -ENOSPC : -rc;
	void *p = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		return -errno;
	struct tc_hdr *h = p;
	tc__st(&h->state, TC_STATE_BUILDING);
	TC_CRASH_POINT(create_building);
	uint64_t seed = 0;
	if (getrandom(&seed, sizeof(seed), 0) != sizeof(seed))
		seed = (uint64_t)tc__mono_ns() ^ ((uint64_t)getpid() << 32);
	h->magic = TC_MAGIC;
	h->layout_version = TC_LAYOUT_VERSION;
	h->total_bytes = total;
	h->seed = seed;
	h->max_entries = entries;
	h->memory_bytes = memory;
	h->max_readers = readers;
	h->max_attach = ma;
	h->nbuckets = nb;
	h->slots_off = so;
	h->attach_off = ao;
	h->index_off = io;
	h->arena_off = ro;
	h->default_ttl_ms = o->default_ttl_ms;
	h->eviction = o->eviction;
	h->mode = mode;
	h->created_ms = tc__now_ms();
	h->creator_pid = tc__self_pid();
	h->options = (o->flags & TC_CHECKSUM) ? TC_OPT_CHECKSUM : 0;
	h->epoch = 1;
	h->bump = tc__bump_seal(seed, 0);
	(void)name;
	/* Publish: every field above before the state word (pairs with the
	 * acquire in validate()). */
	tc__mb();
	tc__st(&h->state, TC_STATE_READY);
	tc__mb();
	munmap(p, total);
	return 0;
}

/*
 * The identity and geometry of a header, loaded once by validate(): the
 * handle is filled from this copy, never from the header again, so a
 * scribble between the check and the use cannot give the handle a geometry
 * that was never checked.
 */
struct geo {
	uint64_t seed, max_entries, memory_bytes, nbuckets, default_ttl_ms;
	uint64_t slots_off, attach_off, index_off, arena_off, total_bytes;
	uint32_t max_readers, max_attach, options;
	int32_t  eviction;
};

void (*tc__open_test_hook)(uint8_t *base);

static int validate(const struct tc_hdr *h, uint64_t size, struct geo *g)
{
	if (size < sizeof(struct tc_hdr))
		return TC_ECORRUPT;
	if (tc__ld(&h->magic) != TC_MAGIC)
		return TC_ECORRUPT;
	if (tc__ld(&h->layout_version) != TC_LAYOUT_VERSION)
		return TC_EVERSION;
	uint32_t state = tc__ld(&h->state);
	/* AUDITING under our flock means the auditor died: attach; the first
	 * data call that sees its auditor dead moves it back to READY
	 * (tc__audit_orphaned). */
	if (state != TC_STATE_READY && state != TC_STATE_AUDITING)
		return TC_ECORRUPT;
	tc__rmb();
	g->seed = tc__ld(&h->seed);
	g->max_entries = tc__ld(&h->max_entries);
	g->memory_bytes = tc__ld(&h->memory_bytes);
	g->max_readers = tc__ld(&h->max_readers);
	g->max_attach = tc__ld(&h->max_attach);
	g->nbuckets = tc__ld(&h->nbuckets);
	g->slots_off = tc__ld(&h->slots_off);
	g->attach_off = tc__ld(&h->attach_off);
	g->index_off = tc__ld(&h->index_off);
	g->arena_off = tc__ld(&h->arena_off);
	g->total_bytes = tc__ld(&h->total_bytes);
	g->default_ttl_ms = tc__ld(&h->default_ttl_ms);
	g->eviction = tc__ld(&h->eviction);
	g->options = tc__ld(&h->options);
	uint64_t nb, so, ao, io, ro, total;
	uint32_t ma;
	if (tc__layout(g->max_entries, g->memory_bytes, g->max_readers, &nb, &ma, &so, &ao,
		       &io, &ro, &total))
		return TC_ECORRUPT;
	if (nb != g->nbuckets || ma != g->max_attach || so != g->slots_off ||
	    ao != g->attach_off || io != g->index_off || ro != g->arena_off ||
	    total != g->total_bytes || total != size)
		return TC_ECORRUPT;
	if (g->eviction != TC_EVICT_NONE && g->eviction != TC_EVICT_LRU)
		return TC_ECORRUPT;
	if (g->options & ~TC_OPT_ALL)
		return TC_ECORRUPT;
	return 0;
}

/*
 * The write hints of handle C (tc_cache.hints): two words per key of the
 * segment's capacity rounded up to a power of two, from 2^10 words to
 * TC_HINTS_MAX (fewer than two a key past 2^20 keys), in address
 * space reserved here and backed only as writes touch it: a process that
 * only reads costs no memory for them.  Without the mapping every hash
 * shares one static word: the hints only miss more.
 */
#define TC_HINTS_MAX (1u << 21) /* words: 8 MiB */

static uint32_t no_hints[1];

static void map_hints(tc_cache *c)
{
	uint64_t n = 1024;
	while (n < TC_HINTS_MAX && n < c->max_entries * 2)
		n <<= 1;
	size_t len = n * sizeof(uint32_t);
	void *m = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	c->hints = m == MAP_FAILED ? no_hints : m;
	c->hint_mask = m == MAP_FAILED ? 0 : n - 1;
	c->hint_map = m == MAP_FAILED ? 0 : len;
}

static void unmap_hints(tc_cache *c)
{
	if (c->hint_map)
		munmap(c->hints, c->hint_map);
	c->hints = no_hints;
	c->hint_map = 0;
}

static void fill_handle(tc_cache *c, uint8_t *base, uint64_t size, const struct geo *g,
			const char *name)
{
	c->base = base;
	c->size = size;
	c->h = (struct tc_hdr *)base;
	c->slots = (struct tc_rslot *)(base + g->slots_off);
	c->attach = (struct tc_attach_rec *)(base + g->attach_off);
	c->index = (struct tc_bucket *)(base + g->index_off);
	c->arena = base + g->arena_off;
	c->arena_bytes = g->memory_bytes & ~(uint64_t)(TC_BLOCK_UNIT - 1);
	c->arena_units = c->arena_bytes / TC_BLOCK_UNIT;
	c->nbuckets = g->nbuckets;
	c->bmask = g->nbuckets - 1;
	c->max_entries = g->max_entries;
	c->seed = g->seed;
	tc__hash_init(c);
	/* The word of an empty arena, sealed: a word equal to it is a valid
	 * word (0 units).  No sentinel: a word that matches bump_seen skips
	 * the seal check, so a sentinel a scribble can write (all ones, say)
	 * would pass as units past the arena's end. */
	c->bump_seen = tc__bump_seal(c->seed, 0);
	c->default_ttl_ms = g->default_ttl_ms;
	c->max_readers = g->max_readers;
	c->nslots = g->max_readers + TC_TOOL_READERS;
	c->max_attach = g->max_attach;
	c->eviction = g->eviction;
	c->clean_dead = tc__clean_dead;
	c->evict = g->eviction == TC_EVICT_LRU ? &tc__evict_lru : &tc__evict_none;
	c->csum = g->options & TC_OPT_CHECKSUM;
	c->rslow = (g->eviction == TC_EVICT_LRU ? TC_RS_LRU : 0) | (c->csum ? TC_RS_CSUM : 0);
	c->attach_idx = UINT32_MAX;
	const char *slow = getenv("TICKCACHE_SLOW_US");
	c->slow_ns = (slow && *slow ? strtoull(slow, NULL, 10) : 100) * 1000;
	snprintf(c->name, sizeof(c->name), "%s", name);
	map_hints(c);
}

/*
 * tc_open with TC_WAIT: attach to a segment that does not exist yet, once
 * its creator (a feed process, say) has made it.  The wait polls tc_open
 * with a sleep that doubles from 1 ms to 50 ms: a segment is created once
 * per process start, so the cost is a few shm_open calls per second of
 * waiting, and nothing is left to clean up when the caller gives up (no
 * watch, no thread).  A creator that is still building the segment holds
 * its flock; tc_open waits for that lock, then attaches the finished
 * segment.  (Part of segment.c, not a file of its own, because it calls
 * tc_open, which calls it: one concern, "attach".)
 */
static int open_wait(tc_cache **out, const char *name, const tc_opts *opts)
{
	tc_opts o = *opts;

	if (o.flags & TC_CREATE)
		return -EINVAL; /* a creator has nothing to wait for */
	o.flags &= ~TC_WAIT;
	uint64_t wait_ms = o.wait_ms > 365ull * 24 * 3600 * 1000 ? 365ull * 24 * 3600 * 1000
								  : o.wait_ms;
	uint64_t t_end = tc__mono_ns() + wait_ms * 1000000ull;
	long nap_ns = 1000000;
	for (;;) {
		int rc = tc_open(out, name, &o);
		if (rc != -ENOENT)
			return rc;
		uint64_t now = tc__mono_ns();
		if (now >= t_end)
			return -ETIMEDOUT;
		if ((uint64_t)nap_ns > t_end - now)
			nap_ns = (long)(t_end - now);
		struct timespec ts = { 0, nap_ns };
		nanosleep(&ts, NULL);
		if (nap_ns < 50000000)
			nap_ns *= 2;
	}
}

/* What tc_open was asked for, its options checked. */
struct want {
	uint64_t entries, memory;
	uint32_t readers, mode;
	bool create, excl;
};

static int open_opts(const tc_opts *opts, struct want *w)
{
	*w = (struct want){ TC_DEFAULT_ENTRIES, TC_DEFAULT_MEMORY, TC_DEFAULT_READERS,
			    TC_DEFAULT_MODE, false, false };
	if (!opts)
		return 0;
	if (opts->max_entries)
		w->entries = opts->max_entries;
	if (opts->memory_bytes)
		w->memory = opts->memory_bytes;
	if (opts->max_readers)
		w->readers = opts->max_readers;
	if (opts->mode)
		w->mode = opts->mode;
	if ((w->mode & ~07777u) || (opts->eviction != TC_EVICT_NONE &&
				    opts->eviction != TC_EVICT_LRU) ||
	    (opts->flags & ~(TC_CREATE | TC_EXCL | TC_LAZY | TC_TOOL | TC_CHECKSUM)))
		return -EINVAL;
	if ((opts->max_entries && (opts->max_entries < TC_MIN_ENTRIES ||
				   opts->max_entries > TC_MAX_ENTRIES)) ||
	    (opts->memory_bytes && (opts->memory_bytes < TC_MIN_MEMORY ||
				    opts->memory_bytes > TC_MAX_MEMORY)) ||
	    (opts->max_readers && opts->max_readers > TC_MAX_READERS))
		return -EINVAL;
	w->create = opts->flags & TC_CREATE;
	w->excl = w->create && (opts->flags & TC_EXCL);
	return 0;
}

/* Under the flock of FD (object PATH): build the segment when the object
 * is empty and we create, then check that it can hold a header.  *ST is
 * the object's size after. */
static int build_if_empty(int fd, const char *path, const char *name, const struct want *w,
			  const tc_opts *opts, struct stat *st)
{
	if (fstat(fd, st) == -1)
		return -errno;
	if (st->st_size == 0) {
		if (!w->create)
			return TC_ECORRUPT;
		tc_opts o = opts ? *opts : (tc_opts){ 0 };
		int rc = build(fd, name, w->entries, w->memory, w->readers, &o, w->mode);
		if (rc) {
			/* Nothing is left behind: the object is still empty. */
			if (ftruncate(fd, 0) == 0)
				shm_unlink(path);
			return rc;
		}
		if (fstat(fd, st) == -1)
			return -errno;
	}
	if ((uint64_t)st->st_size < sizeof(struct tc_hdr))
		return TC_ECORRUPT;
	return 0;
}

/* Validate the mapping BASE of the object ST and make the handle *OUT:
 * the geometry asked for must be the segment's, and a record of the
 * attach table ours. */
static int attach_mapped(uint8_t *base, const struct stat *st, const char *name,
			 const tc_opts *opts, tc_cache **out)
{
	struct geo g;
	int rc = validate((struct tc_hdr *)base, (uint64_t)st->st_size, &g);
	if (rc)
		return rc;
	if (tc__open_test_hook)
		tc__open_test_hook(base);
	if (opts && ((opts->max_entries && opts->max_entries != g.max_entries) ||
		     (opts->memory_bytes && opts->memory_bytes != g.memory_bytes) ||
		     (opts->max_readers && opts->max_readers != g.max_readers) ||
		     ((opts->flags & TC_CHECKSUM) && !(g.options & TC_OPT_CHECKSUM))))
		return TC_EGEOMETRY;
	tc_cache *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	fill_handle(c, base, (uint64_t)st->st_size, &g, name);
	c->shm_ino = (uint64_t)st->st_ino;
	c->shm_major = major(st->st_dev);
	c->shm_minor = minor(st->st_dev);
	c->tool = opts && (opts->flags & TC_TOOL);
	rc = attach_claim(c);
	if (rc) {
		unmap_hints(c);
		free(c);
		return rc;
	}
	*out = c;
	return 0;
}

/*
 * Is the mapped object BASE of SIZE bytes a segment that tc_unlink marked
 * removed?  Found under the flock, its unlinker is done (the name is gone
 * or names another object by now) or died before removing the name: it
 * holds the flock from its mark to the removal (tc_unlink).
 */
static bool marked_unlinked(const uint8_t *base, uint64_t size)
{
	const struct tc_hdr *h = (const struct tc_hdr *)base;
	return size >= sizeof(*h) && tc__ld(&h->magic) == TC_MAGIC &&
	       tc__ld(&h->state) == TC_STATE_UNLINKED;
}

/* Finish the removal of a marked segment (FD, under its flock): its name
 * only, if PATH still names this object; another object created under the
 * name since (possible only once the name is gone) is not ours to remove. */
static void finish_unlink(int fd, const char *path)
{
	struct stat mine, now;
	int fd2 = shm_open(path, O_RDONLY, 0);
	if (fd2 == -1)
		return;
	bool same = fstat(fd, &mine) == 0 && fstat(fd2, &now) == 0 &&
		    mine.st_ino == now.st_ino && mine.st_dev == now.st_dev;
	close(fd2);
	if (same)
		shm_unlink(path);
}

/* tc_open's result when it found a marked segment and removed its name. */
#define OPEN_GONE 1

/* One attempt of tc_open (W: its checked options).  0, a code, or OPEN_GONE. */
static int open_once(tc_cache **out, const char *name, const tc_opts *opts,
		     const struct want *w)
{
	char path[TC_SHM_PATH_MAX];
	tc__shm_path(path, sizeof(path), name);
	int oflags = O_RDWR | (w->create ? O_CREAT : 0) | (w->excl ? O_EXCL : 0);
	int fd = shm_open(path, oflags, w->mode);
	if (fd == -1)
		return -errno;
	int rc = tc__lock_bounded(fd);
	if (rc)
		goto out_close;
	struct stat st;
	rc = build_if_empty(fd, path, name, w, opts, &st);
	if (rc)
		goto out_close;
	bool lazy = opts && (opts->flags & TC_LAZY);
	uint8_t *base = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE,
			     MAP_SHARED | (lazy ? 0 : MAP_POPULATE), fd, 0);
	if (base == MAP_FAILED) {
		rc = -errno;
		goto out_close;
	}
	if (marked_unlinked(base, (uint64_t)st.st_size)) {
		/* An unlinker killed between its mark and the removal of the
		 * name (unlink_marked) left a name nobody could open or create
		 * again: finish its work. */
		munmap(base, (size_t)st.st_size);
		finish_unlink(fd, path);
		rc = OPEN_GONE;
		goto out_close;
	}
	rc = attach_mapped(base, &st, name, opts, out);
	if (rc) {
		munmap(base, (size_t)st.st_size);
		goto out_close;
	}
	flock(fd, LOCK_UN);
	close(fd);
	(*out)->rfast = tc__membarrier_reader_fast();
	tc__registry_add(*out);
	return 0;

out_close:
	flock(fd, LOCK_UN);
	close(fd);
	return rc;
}

int tc_open(tc_cache **out, const char *name, const tc_opts *opts)
{
	if (!out)
		return -EINVAL;
	*out = NULL;
	if (!tc_name_valid(name))
		return -EINVAL;
	if (opts && (opts->flags & TC_WAIT))
		return open_wait(out, name, opts); /* calls us without TC_WAIT */
	struct want w;
	int rc = open_opts(opts, &w);
	if (rc)
		return rc;
	tc__membarrier_init();
	/* A marked segment's name removed: it does not exist, and a creator
	 * makes it anew (a few times: others may unlink it meanwhile). */
	for (int round = 0; round < 4; round++) {
		rc = open_once(out, name, opts, &w);
		if (rc != OPEN_GONE)
			return rc;
		if (!w.create)
			return -ENOENT;
	}
	return TC_ECORRUPT;
}

void tc_close(tc_cache *c)
{
	if (!c)
		return;
	tc__registry_lock();
	tc__registry_remove(c);
	tc__release_handle_slots(c);
	tc__registry_unlock();
	if (c->attach_idx < c->max_attach) {
		struct tc_attach_rec *r = &c->attach[c->attach_idx];
		tc__st(&r->start, 0); /* never paired with the next claimer's pid */
		tc__cas(&r->pid, (uint64_t)tc__self_pid(), 0);
	}
	munmap(c->base, c->size);
	unmap_hints(c);
	free(c);
}

int tc_unlink(const char *name)
{
	if (!tc_name_valid(name))
		return -EINVAL;
	char path[TC_SHM_PATH_MAX];
	tc__shm_path(path, sizeof(path), name);
	/* Mark the segment first, so that every handle still attached learns
	 * that it is gone (-ESTALE) instead of diverging from a segment that a
	 * restarted process may create under the same name.  The flock is held
	 * from the mark to the removal of the name, so that an opener that
	 * finds the mark under it knows that we are done or dead, and finishes
	 * the removal (tc_open, marked_unlinked); when a holder stopped inside
	 * tc_open or tc_audit makes the wait run out, without it. */
	int fd = shm_open(path, O_RDWR, 0);
	bool locked = fd >= 0 && tc__lock_bounded(fd) == 0;
	if (fd >= 0) {
		struct stat st;
		if (fstat(fd, &st) == 0 && (uint64_t)st.st_size >= sizeof(struct tc_hdr)) {
			struct tc_hdr *h = mmap(NULL, sizeof(*h), PROT_READ | PROT_WRITE,
						MAP_SHARED, fd, 0);
			if (h != MAP_FAILED) {
				/* From READY, or from AUDITING (an audit at work or a
				 * dead one): the audit's end never undoes it. */
				for (int i = 0; h->magic == TC_MAGIC && i < 100; i++) {
					uint32_t was = tc__ld(&h->state);
					if (was != TC_STATE_READY && was != TC_STATE_AUDITING)
						break;
					if (tc__cas(&h->state, was, TC_STATE_UNLINKED) == was) {
						/* Waiters (tc_wait) check the state
						 * after their flags: wake them to
						 * -ESTALE (the CAS was the barrier). */
						if (tc__ld(&h->layout_version) == TC_LAYOUT_VERSION)
							tc__notify_all(h);
						TC_CRASH_POINT(unlink_marked);
						break;
					}
				}
				munmap(h, sizeof(*h));
			}
		}
	}
	int rc = shm_unlink(path) == -1 ? -errno : 0;
	if (fd >= 0) {
		if (locked)
			flock(fd, LOCK_UN);
		close(fd);
	}
	return rc;
}

int tc_get_info(tc_cache *c, tc_info *out)
{
	if (!c || !out)
		return -EINVAL;
	/* The geometry from the handle (copied at attach); the shared fields
	 * loaded once each. */
	*out = (tc_info){ .layout_version = TC_LAYOUT_VERSION, .max_entries = c->max_entries,
			  .memory_bytes = c->h->memory_bytes, .max_readers = c->max_readers,
			  .mode = tc__ld(&c->h->mode), .default_ttl_ms = c->default_ttl_ms,
			  .eviction = c->eviction, .flags = c->csum ? TC_CHECKSUM : 0,
			  .segment_bytes = c->size, .created_ms = tc__ld(&c->h->created_ms),
			  .creator_pid = tc__ld(&c->h->creator_pid) };
	snprintf(out->name, sizeof(out->name), "%s", c->name);
	return 0;
}
