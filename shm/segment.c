/* SPDX-License-Identifier: MIT */
/*
 * segment.c - create, attach, validate and remove segments; the process
 * registry of open handles; the attach table; process identity.
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

/* ---- process identity ------------------------------------------------ */

/*
 * Fields of /proc/PATH/stat: the state letter (field 3) and the start time
 * (field 22), 0 when unreadable.
 */
static uint64_t proc_stat(const char *path, char *state)
{
	char buf[1024];
	*state = '?';
	FILE *f = fopen(path, "re");
	if (!f)
		return 0;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	char *p = strrchr(buf, ')');
	if (!p || p[1] != ' ' || !p[2])
		return 0;
	*state = p[2];
	/* Field 22 (starttime) is the 20th field after the command name. */
	for (int field = 2; field < 22 && p; field++)
		p = strchr(p + 1, ' ');
	return p ? strtoull(p + 1, NULL, 10) : 0;
}

uint64_t tc__proc_start(uint32_t pid)
{
	char path[64], state;
	snprintf(path, sizeof(path), "/proc/%u/stat", pid);
	return proc_stat(path, &state);
}

/*
 * A zombie: every thread of PID has exited (its memory is gone; only its
 * exit status waits for a parent that may never collect it, as under a
 * container's PID 1 that does not reap).  A leader that called
 * pthread_exit() also shows Z while other threads run: those make it alive.
 */
static bool all_threads_dead(uint32_t pid)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%u/task", pid);
	DIR *d = opendir(path);
	if (!d)
		return false; /* cannot tell: alive */
	bool dead = true;
	struct dirent *de;
	while (dead && (de = readdir(d)) != NULL) {
		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		char tp[96], st;
		snprintf(tp, sizeof(tp), "/proc/%u/task/%.20s/stat", pid, de->d_name);
		proc_stat(tp, &st);
		if (st != 'Z' && st != 'X' && st != '?')
			dead = false;
	}
	closedir(d);
	return dead;
}

/* Filled on first use by whichever thread comes first (several may, with
 * the same values): the start time is stored before the pid that marks
 * both valid, and both are read after the pid. */
static uint32_t self_pid;
static uint64_t self_start;

static void refresh_self(void)
{
	uint32_t pid = (uint32_t)getpid();
	tc__st(&self_start, tc__proc_start(pid));
	tc__mb();
	tc__st(&self_pid, pid);
}

uint32_t tc__self_pid(void)
{
	uint32_t pid = tc__ld(&self_pid);
	if (!pid) {
		refresh_self();
		pid = tc__ld(&self_pid);
	}
	return pid;
}

uint64_t tc__self_start(void)
{
	if (!tc__ld(&self_pid))
		refresh_self();
	tc__rmb();
	return tc__ld(&self_start);
}

/*
 * A process is alive when kill(pid, 0) does not say ESRCH, it is not a
 * zombie, and, if we know the start time it had, /proc still shows that
 * start time (else the pid was reused by another process).
 */
bool tc__pid_alive(uint32_t pid, uint64_t start)
{
	if (pid == 0)
		return false;
	if (kill((pid_t)pid, 0) == -1 && errno == ESRCH)
		return false;
	char path[64], state;
	snprintf(path, sizeof(path), "/proc/%u/stat", pid);
	uint64_t now = proc_stat(path, &state);
	/* An unreadable /proc/PID (hidepid, another user) proves nothing:
	 * only a start time that can be read and differs means reuse. */
	if (start != 0 && now != 0 && now != start)
		return false;
	if ((state == 'Z' || state == 'X') && all_threads_dead(pid))
		return false;
	return true;
}

/*
 * Start time of thread TID of this process (clock ticks since boot), 0 when
 * /proc cannot tell.
 */
uint64_t tc__thread_start(uint32_t tid)
{
	char path[64], state;
	snprintf(path, sizeof(path), "/proc/self/task/%u/stat", tid);
	return proc_stat(path, &state);
}

/*
 * Is thread TID of the live process PID provably gone?  Only when /proc
 * shows the process (its stat can be read) but not the thread, shows the
 * thread exited (Z or X: a leader that exited stays a zombie while other
 * threads run), or shows it with another start time than TSTART (the tid
 * was reused).  A /proc that cannot be read proves nothing.
 */
bool tc__thread_gone(uint32_t pid, uint32_t tid, uint64_t tstart)
{
	char path[96], state;
	snprintf(path, sizeof(path), "/proc/%u/stat", pid);
	if (proc_stat(path, &state) == 0)
		return false;
	snprintf(path, sizeof(path), "/proc/%u/task/%u/stat", pid, tid);
	errno = 0;
	uint64_t now = proc_stat(path, &state);
	if (state == '?')
		return errno == ENOENT || errno == ESRCH;
	if (state == 'Z' || state == 'X')
		return true;
	return tstart != 0 && now != 0 && now != tstart;
}

/*
 * Does process PID still map segment C (at address BASE, when not 0)?
 * False only when its /proc/PID/maps can be read and shows no such mapping:
 * after an execve, the process keeps its pid and start time but not its
 * mappings.  (Reading maps takes the target's mmap lock for reading: this
 * runs in cleaners only, never on a data path.)
 */
bool tc__maps_segment(tc_cache *c, uint32_t pid, uint64_t base)
{
	char path[64], line[512];
	snprintf(path, sizeof(path), "/proc/%u/maps", pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return true;
	bool found = false, readable = false;
	while (!found && fgets(line, sizeof(line), f)) {
		unsigned long long lo, hi, off, ino;
		unsigned maj, mnr;
		readable = true;
		if (sscanf(line, "%llx-%llx %*s %llx %x:%x %llu", &lo, &hi, &off, &maj, &mnr,
			   &ino) != 6)
			continue;
		if (ino == c->shm_ino && maj == c->shm_major && mnr == c->shm_minor &&
		    (base == 0 || (lo == base && off == 0)))
			found = true;
		/* A line longer than the buffer continues on the next read;
		 * its rest never parses as a mapping of our inode. */
	}
	fclose(f);
	return found || !readable;
}

/* ---- the process registry of open handles ---------------------------- */

static pthread_mutex_t registry_mu = PTHREAD_MUTEX_INITIALIZER;
static tc_cache *registry;
static uint64_t next_cid = 1;

void tc__registry_lock(void)
{
	pthread_mutex_lock(&registry_mu);
}

void tc__registry_unlock(void)
{
	pthread_mutex_unlock(&registry_mu);
}

/* Caller holds the registry lock. */
bool tc__registry_has(uint64_t cid)
{
	for (tc_cache *c = registry; c; c = c->next)
		if (c->cid == cid)
			return true;
	return false;
}

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

static void shm_path(char *dst, size_t cap, const char *name)
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
	c->csum = g->options & TC_OPT_CHECKSUM;
	c->rslow = (g->eviction == TC_EVICT_LRU ? TC_RS_LRU : 0) | (c->csum ? TC_RS_CSUM : 0);
	c->attach_idx = UINT32_MAX;
	const char *slow = getenv("TICKCACHE_SLOW_US");
	c->slow_ns = (slow && *slow ? strtoull(slow, NULL, 10) : 100) * 1000;
	snprintf(c->name, sizeof(c->name), "%s", name);
}

/*
 * Take the segment's flock, waiting at most TICKCACHE_LOCK_WAIT_MS
 * (default TC_LOCK_WAIT_MS): a holder stopped inside tc_open or tc_audit
 * (SIGSTOP, a debugger) must not block every other opener for ever.
 * -ETIMEDOUT when the wait runs out.
 */
int tc__lock_bounded(int fd)
{
	const char *env = getenv("TICKCACHE_LOCK_WAIT_MS");
	uint64_t limit_ns = (env && *env ? strtoull(env, NULL, 10) : TC_LOCK_WAIT_MS) * 1000000ull;
	uint64_t t0 = tc__mono_ns();
	long sleep_ns = 100000;
	for (;;) {
		if (flock(fd, LOCK_EX | LOCK_NB) == 0)
			return 0;
		if (errno != EWOULDBLOCK && errno != EINTR)
			return -errno;
		uint64_t waited = tc__mono_ns() - t0;
		if (waited >= limit_ns)
			return -ETIMEDOUT;
		struct timespec ts = { 0, sleep_ns };
		if ((uint64_t)sleep_ns > limit_ns - waited)
			ts.tv_nsec = (long)(limit_ns - waited);
		nanosleep(&ts, NULL);
		if (sleep_ns < 20000000)
			sleep_ns *= 2;
	}
}

int tc_open(tc_cache **out, const char *name, const tc_opts *opts)
{
	if (!out)
		return -EINVAL;
	*out = NULL;
	if (!tc_name_valid(name))
		return -EINVAL;
	if (opts && (opts->flags & TC_WAIT))
		return tc__open_wait(out, name, opts); /* calls us without TC_WAIT */
	uint64_t entries = TC_DEFAULT_ENTRIES, memory = TC_DEFAULT_MEMORY;
	uint32_t readers = TC_DEFAULT_READERS, mode = TC_DEFAULT_MODE;
	bool create = false, excl = false;
	if (opts) {
		if (opts->max_entries)
			entries = opts->max_entries;
		if (opts->memory_bytes)
			memory = opts->memory_bytes;
		if (opts->max_readers)
			readers = opts->max_readers;
		if (opts->mode)
			mode = opts->mode;
		if ((mode & ~07777u) || (opts->eviction != TC_EVICT_NONE &&
					 opts->eviction != TC_EVICT_LRU) ||
		    (opts->flags & ~(TC_CREATE | TC_EXCL | TC_LAZY | TC_TOOL | TC_CHECKSUM)))
			return -EINVAL;
		if ((opts->max_entries && (opts->max_entries < TC_MIN_ENTRIES ||
					   opts->max_entries > TC_MAX_ENTRIES)) ||
		    (opts->memory_bytes && (opts->memory_bytes < TC_MIN_MEMORY ||
					    opts->memory_bytes > TC_MAX_MEMORY)) ||
		    (opts->max_readers && opts->max_readers > TC_MAX_READERS))
			return -EINVAL;
		create = opts->flags & TC_CREATE;
		excl = create && (opts->flags & TC_EXCL);
	}
	tc__membarrier_init();

	char path[TC_NAME_MAX + 16];
	shm_path(path, sizeof(path), name);
	int oflags = O_RDWR | (create ? O_CREAT : 0) | (excl ? O_EXCL : 0);
	int fd = shm_open(path, oflags, mode);
	if (fd == -1)
		return -errno;
	int rc = tc__lock_bounded(fd);
	if (rc)
		goto out_close;
	struct stat st;
	if (fstat(fd, &st) == -1) {
		rc = -errno;
		goto out_close;
	}
	if (st.st_size == 0) {
		if (!create) {
			rc = TC_ECORRUPT;
			goto out_close;
		}
		tc_opts o = opts ? *opts : (tc_opts){ 0 };
		rc = build(fd, name, entries, memory, readers, &o, mode);
		if (rc) {
			/* Nothing is left behind: the object is still empty. */
			if (ftruncate(fd, 0) == 0)
				shm_unlink(path);
			goto out_close;
		}
		if (fstat(fd, &st) == -1) {
			rc = -errno;
			goto out_close;
		}
	}
	if ((uint64_t)st.st_size < sizeof(struct tc_hdr)) {
		rc = TC_ECORRUPT;
		goto out_close;
	}
	bool lazy = opts && (opts->flags & TC_LAZY);
	uint8_t *base = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE,
			     MAP_SHARED | (lazy ? 0 : MAP_POPULATE), fd, 0);
	if (base == MAP_FAILED) {
		rc = -errno;
		goto out_close;
	}
	struct geo g;
	rc = validate((struct tc_hdr *)base, (uint64_t)st.st_size, &g);
	if (rc)
		goto out_unmap;
	if (tc__open_test_hook)
		tc__open_test_hook(base);
	if (opts && ((opts->max_entries && opts->max_entries != g.max_entries) ||
		     (opts->memory_bytes && opts->memory_bytes != g.memory_bytes) ||
		     (opts->max_readers && opts->max_readers != g.max_readers) ||
		     ((opts->flags & TC_CHECKSUM) && !(g.options & TC_OPT_CHECKSUM)))) {
		rc = TC_EGEOMETRY;
		goto out_unmap;
	}
	tc_cache *c = calloc(1, sizeof(*c));
	if (!c) {
		rc = -ENOMEM;
		goto out_unmap;
	}
	fill_handle(c, base, (uint64_t)st.st_size, &g, name);
	c->shm_ino = (uint64_t)st.st_ino;
	c->shm_major = major(st.st_dev);
	c->shm_minor = minor(st.st_dev);
	c->tool = opts && (opts->flags & TC_TOOL);
	rc = attach_claim(c);
	if (rc) {
		free(c);
		goto out_unmap;
	}
	flock(fd, LOCK_UN);
	close(fd);
	tc__registry_lock();
	c->cid = next_cid++;
	c->next = registry;
	registry = c;
	tc__registry_unlock();
	*out = c;
	return 0;

out_unmap:
	munmap(base, (size_t)st.st_size);
out_close:
	flock(fd, LOCK_UN);
	close(fd);
	return rc;
}

void tc_close(tc_cache *c)
{
	if (!c)
		return;
	tc__registry_lock();
	for (tc_cache **pp = &registry; *pp; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	}
	tc__release_handle_slots(c);
	tc__registry_unlock();
	if (c->attach_idx < c->max_attach) {
		struct tc_attach_rec *r = &c->attach[c->attach_idx];
		tc__st(&r->start, 0); /* never paired with the next claimer's pid */
		tc__cas(&r->pid, (uint64_t)tc__self_pid(), 0);
	}
	munmap(c->base, c->size);
	free(c);
}

int tc_unlink(const char *name)
{
	if (!tc_name_valid(name))
		return -EINVAL;
	char path[TC_NAME_MAX + 16];
	shm_path(path, sizeof(path), name);
	/* Mark the segment first, so that every handle still attached learns
	 * that it is gone (-ESTALE) instead of diverging from a segment that a
	 * restarted process may create under the same name. */
	int fd = shm_open(path, O_RDWR, 0);
	if (fd >= 0) {
		struct stat st;
		if (fstat(fd, &st) == 0 && (uint64_t)st.st_size >= sizeof(struct tc_hdr)) {
			struct tc_hdr *h = mmap(NULL, TC_PAGE, PROT_READ | PROT_WRITE, MAP_SHARED,
						fd, 0);
			if (h != MAP_FAILED) {
				/* From READY, or from AUDITING (an audit at work or a
				 * dead one): the audit's end never undoes it. */
				for (int i = 0; h->magic == TC_MAGIC && i < 100; i++) {
					uint32_t was = tc__ld(&h->state);
					if ((was != TC_STATE_READY && was != TC_STATE_AUDITING) ||
					    tc__cas(&h->state, was, TC_STATE_UNLINKED) == was)
						break;
				}
				munmap(h, TC_PAGE);
			}
		}
		close(fd);
	}
	if (shm_unlink(path) == -1)
		return -errno;
	return 0;
}

int tc_get_info(tc_cache *c, tc_info *out)
{
	if (!c || !out)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	snprintf(out->name, sizeof(out->name), "%s", c->name);
	out->layout_version = TC_LAYOUT_VERSION;
	out->max_entries = c->max_entries;
	out->memory_bytes = c->h->memory_bytes;
	out->max_readers = c->max_readers;
	out->mode = tc__ld(&c->h->mode);
	out->default_ttl_ms = c->default_ttl_ms;
	out->eviction = c->eviction;
	out->flags = c->csum ? TC_CHECKSUM : 0;
	out->segment_bytes = c->size;
	out->created_ms = tc__ld(&c->h->created_ms);
	out->creator_pid = tc__ld(&c->h->creator_pid);
	return 0;
}

/* ---- fork -------------------------------------------------------------- */

/* The registry lock is held across fork() so that the child's copy is never
 * taken mid-update by another thread (and never locked forever). */
static void atfork_prepare(void)
{
	pthread_mutex_lock(&registry_mu);
}

static void atfork_parent(void)
{
	pthread_mutex_unlock(&registry_mu);
}

static void atfork_child(void)
{
	pthread_mutex_unlock(&registry_mu);
	refresh_self();
}

static void __attribute__((constructor)) segment_init(void)
{
	pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
}
