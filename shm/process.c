/* SPDX-License-Identifier: MIT */
/*
 * process.c - who this process is and whether another one is alive: pids
 * and threads with their start times (a reused pid is another process),
 * whether a process still maps a segment, the registry of this process's
 * open handles, the fork hooks that keep both true in a child, and the
 * bounded wait for a segment's flock.
 *
 * The lowest file of shm/: it calls no other (docs/design.md, "Map of
 * shm/").  Every "is the holder of X dead?" of the other files asks here.
 */
#include "internal.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
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
	/* No pid the kernel gives is past PID_MAX_LIMIT (2^22); kill() would
	 * take a larger u32 read from the segment as a negative pid_t: a
	 * process group, or -1, "every process we may signal". */
	if (pid == 0 || pid > TC_PID_MAX_LIMIT)
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
 * May a lease word naming PID (0: nobody) be taken?  CLAIMING: it is being
 * taken, its start time and heartbeat are not written yet, so only the
 * claimer's death frees it, or a claimer that cannot be one: a claimer
 * calls through a handle, so it maps the segment (a forked child through
 * its parent's handle too); a live process that does not is a scribble,
 * which would otherwise hold the lease for as long as it lives (an
 * unreadable /proc/PID/maps proves nothing).  Else when its holder is dead
 * (by the start time at START, loaded only then) or, with STALE_MS, has
 * not beaten since BEAT_MS for longer.
 */
static bool lease_free(tc_cache *c, uint32_t pid, bool claiming, const uint64_t *start,
		       int64_t beat_ms, uint64_t stale_ms)
{
	int64_t age = tc__age_ms(tc__now_ms(), beat_ms);
	if (claiming)
		return !tc__pid_alive(pid, 0) || !tc__maps_segment(c, pid, 0);
	return pid == 0 || !tc__pid_alive(pid, tc__ld(start)) ||
	       (stale_ms && age > (int64_t)stale_ms);
}

int tc__lease_claim(tc_cache *c, const struct tc__lease *l, uint64_t stale_ms, uint32_t *holder)
{
	uint64_t *word = (uint64_t *)((uint8_t *)c->h + l->word);
	uint64_t *start = (uint64_t *)((uint8_t *)c->h + l->start);
	int64_t *beat = (int64_t *)((uint8_t *)c->h + l->beat_ms);
	uint32_t me = tc__self_pid();
	for (int tries = 0; tries < 100; tries++) {
		uint64_t w = tc__ld(word);
		uint32_t pid = (uint32_t)(w >> 32);
		bool claiming = w & TC_LEASE_CLAIMING;
		if (holder)
			*holder = pid;
		if (pid == me && (!claiming || l->mine_while_claiming)) {
			tc__st(beat, tc__now_ms());
			return 0;
		}
		if (!lease_free(c, pid, claiming, start, tc__ld(beat), stale_ms))
			return -EBUSY;
		uint64_t held = (uint64_t)me << 32 | l->next(w);
		if (tc__cas(word, w, held | TC_LEASE_CLAIMING) == w) {
			if (l->claimed)
				l->claimed(c, w);
			tc__st(start, tc__self_start());
			tc__st(beat, tc__now_ms());
			/* Start time and heartbeat before the word says "held". */
			tc__cas(word, held | TC_LEASE_CLAIMING, held);
			if (holder)
				*holder = me;
			return 0;
		}
	}
	return -EBUSY;
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
 * Does /proc/PID/maps show segment C (at address BASE, when not 0)?  The
 * answer, and in *READABLE whether the file could be read at all (opened
 * and read to its end: an empty one is read, a kernel thread's).
 * (Reading maps takes the target's mmap lock for reading: this runs in
 * cleaners and tc_audit only, never on a data path.)
 */
static bool maps_show(tc_cache *c, uint32_t pid, uint64_t base, bool *readable_out)
{
	char path[64], line[512];
	snprintf(path, sizeof(path), "/proc/%u/maps", pid);
	*readable_out = false;
	FILE *f = fopen(path, "re");
	if (!f)
		return false;
	bool found = false, cont = false;
	while (!found && fgets(line, sizeof(line), f)) {
		unsigned long long lo, hi, off, ino;
		unsigned maj, mnr;
		/* A line longer than the buffer comes in pieces: only the
		 * first is parsed.  The rest is a path, anybody's bytes,
		 * which may read as a mapping of our inode. */
		bool first = !cont;
		size_t n = strlen(line); /* 0 only after a NUL byte, which no path holds */
		cont = n == 0 || line[n - 1] != '\n';
		if (!first || sscanf(line, "%llx-%llx %*s %llx %x:%x %llu", &lo, &hi, &off, &maj,
				     &mnr, &ino) != 6)
			continue;
		if (ino == c->shm_ino && maj == c->shm_major && mnr == c->shm_minor &&
		    (base == 0 || (lo == base && off == 0)))
			found = true;
	}
	/* Read to its end without an error: readable, also when empty (a
	 * kernel thread, which has no memory map: it never attached).  A
	 * kernel that checks access at read time fails the read instead. */
	*readable_out = found || !ferror(f);
	fclose(f);
	return found;
}

/*
 * Does process PID still map segment C (at address BASE, when not 0)?
 * False only when its /proc/PID/maps can be read and shows no such mapping:
 * after an execve, the process keeps its pid and start time but not its
 * mappings.
 */
bool tc__maps_segment(tc_cache *c, uint32_t pid, uint64_t base)
{
	bool readable;
	return maps_show(c, pid, base, &readable) || !readable;
}

/* Does PID's /proc/PID/maps show a mapping of segment C?  False also when
 * it cannot be read (tc_audit, audit.c: an attach record with start time 0). */
bool tc__maps_segment_shown(tc_cache *c, uint32_t pid)
{
	bool readable;
	return maps_show(c, pid, 0, &readable);
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

/* Give handle C its process-unique id and list it. */
void tc__registry_add(tc_cache *c)
{
	tc__registry_lock();
	c->cid = next_cid++;
	c->tkey = c->cid << 7;
	c->tfast = tc__tfast_of(c); /* rfast and rslow are set before */
	c->next = registry;
	registry = c;
	tc__registry_unlock();
}

/* Unlist handle C.  Caller holds the registry lock. */
void tc__registry_remove(tc_cache *c)
{
	for (tc_cache **pp = &registry; *pp; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	}
}

/* Caller holds the registry lock. */
bool tc__registry_has(uint64_t cid)
{
	for (tc_cache *c = registry; c; c = c->next)
		if (c->cid == cid)
			return true;
	return false;
}

/* ---- bounded flock ----------------------------------------------------- */

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

static void __attribute__((constructor)) process_init(void)
{
	pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
}
