/* SPDX-License-Identifier: MIT */
/*
 * fixture.c - the fixture of the C tests (see fixture.h), linked into every
 * test program.  Public API only.
 */
#include "fixture.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>

/* ------------------------------------------------------------------ */
/* Segment names and cleanup                                            */
/* ------------------------------------------------------------------ */

/* The names this process registered (owner: the pid that did). */
static pid_t owner;
static char (*names)[TC_NAME_MAX + 1];
static size_t nnames, capnames;
static unsigned seq;
static int hooked;

/* The segments of fx_make() not yet freed. */
static struct fx_seg *segs[64];
static size_t nsegs;

static void unlink_at_exit(void)
{
	fx_unlink_all();
	free(names);
	names = NULL;
	capnames = 0;
}

/* A child that names segments starts a list of its own. */
static void own(void)
{
	if (owner == getpid())
		return;
	owner = getpid();
	nnames = 0;
	nsegs = 0;
	if (!hooked) {
		hooked = 1;
		atexit(unlink_at_exit);
	}
}

static void remember(const char *name)
{
	own();
	if (nnames == capnames) {
		size_t cap = capnames ? 2 * capnames : 64;
		void *p = realloc(names, cap * sizeof(*names));

		if (p == NULL) {
			fail_msg("fixture: out of memory for %zu segment names", cap);
			return;
		}
		names = p;
		capnames = cap;
	}
	snprintf(names[nnames++], TC_NAME_MAX + 1, "%s", name);
}

const char *fx_name_at(char *out, size_t cap, const char *who)
{
	char tail[TC_NAME_MAX + 1];
	size_t i, n;

	if (cap > TC_NAME_MAX + 1)
		cap = TC_NAME_MAX + 1;
	/* The function name, without "test_", in the characters a name may hold. */
	if (strncmp(who, "test_", 5) == 0)
		who += 5;
	snprintf(tail, sizeof(tail), "%s", who);
	for (i = 0; tail[i]; i++)
		if (!((tail[i] >= 'a' && tail[i] <= 'z') || (tail[i] >= 'A' && tail[i] <= 'Z') ||
		      (tail[i] >= '0' && tail[i] <= '9') || tail[i] == '_' || tail[i] == '-'))
			tail[i] = '_';
	n = (size_t)snprintf(out, cap, "t%d-%u-%s", (int)getpid(), ++seq, tail);
	if (n >= cap)
		out[cap - 1] = '\0';
	/* pid and counter come first: a cut name stays unique. */
	remember(out);
	(void)tc_unlink(out); /* a stale one of a recycled pid */
	return out;
}

void fx_track(const char *name)
{
	remember(name);
}

void fx_shm_path(char *out, size_t n, const char *name)
{
	snprintf(out, n, "/dev/shm/tickcache.%s", name);
}

void fx_unlink_all(void)
{
	size_t i;

	/* Children inherit the list but must not remove the parent's segments. */
	if (owner != getpid())
		return;
	for (i = 0; i < nsegs; i++) {
		tc_close(segs[i]->c);
		free(segs[i]);
	}
	nsegs = 0;
	for (i = 0; i < nnames; i++)
		(void)tc_unlink(names[i]);
	nnames = 0;
}

int fx_teardown(void **state)
{
	size_t i;

	for (i = 0; i < nsegs && state; i++)
		if (*state == segs[i])
			*state = NULL;
	fx_unlink_all();
	return 0;
}

void fx_filter_from_env(void)
{
	const char *glob = getenv("TC_TEST_FILTER");

	if (glob && *glob)
		cmocka_set_test_filter(glob);
}

/* ------------------------------------------------------------------ */
/* Segments                                                             */
/* ------------------------------------------------------------------ */

tc_opts fx_opts(uint64_t entries, uint64_t memory, uint32_t readers)
{
	tc_opts o;

	memset(&o, 0, sizeof(o));
	o.max_entries = entries;
	o.memory_bytes = memory;
	o.max_readers = readers;
	o.flags = TC_CREATE;
	return o;
}

tc_cache *fx_open_at(char *name, uint64_t entries, uint64_t memory, uint32_t readers,
		     const char *who)
{
	tc_opts o = fx_opts(entries, memory, readers);
	tc_cache *c = NULL;

	fx_name_at(name, TC_NAME_MAX + 1, who);
	ASSERT_RC(0, tc_open(&c, name, &o));
	assert_non_null(c);
	return c;
}

struct fx_seg *fx_make(uint64_t entries, uint64_t memory, uint64_t default_ttl_ms)
{
	struct fx_seg *f = calloc(1, sizeof(*f));
	tc_opts o = fx_opts(entries, memory, 64);

	assert_non_null(f);
	if (nsegs == FX_ARRAY_SIZE(segs)) {
		free(f);
		fail_msg("fixture: more than %zu segments of fx_make", FX_ARRAY_SIZE(segs));
	}
	fx_name(f->name);
	o.default_ttl_ms = default_ttl_ms;
	segs[nsegs++] = f;
	ASSERT_RC(0, tc_open(&f->c, f->name, &o));
	return f;
}

void fx_free(struct fx_seg *f)
{
	size_t i;

	for (i = 0; i < nsegs; i++)
		if (segs[i] == f) {
			segs[i] = segs[--nsegs];
			break;
		}
	tc_close(f->c);
	(void)tc_unlink(f->name);
	free(f);
}

int fx_setup(void **state)
{
	*state = fx_make(16384, 16u << 20, 0);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Time                                                                 */
/* ------------------------------------------------------------------ */

int64_t fx_realtime_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

double fx_mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void fx_sleep_us(long us)
{
	struct timespec ts = { us / 1000000, (us % 1000000) * 1000 };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

void fx_sleep_ms(long ms)
{
	fx_sleep_us(ms * 1000);
}

long fx_status_kib(const char *field)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	size_t n = strlen(field);
	long kib = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, field, n) == 0 && line[n] == ':' &&
		    sscanf(line + n + 1, " %ld kB", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

/* ------------------------------------------------------------------ */
/* Children                                                             */
/* ------------------------------------------------------------------ */

int fx_wait(pid_t pid)
{
	int st;

	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	if (WIFSIGNALED(st))
		return 128 + WTERMSIG(st);
	return -1;
}

void fx_wait_all(const pid_t *pids, int n)
{
	int bad = 0;

	for (int i = 0; i < n; i++) {
		int st = fx_wait(pids[i]);

		if (st != 0) {
			fprintf(stderr, "child %d: status %d (128 + signal when killed)\n",
				(int)pids[i], st);
			bad++;
		}
	}
	assert_int_equal(0, bad);
}

tc_cache *fx_attach(const char *name)
{
	tc_cache *c = NULL;

	if (tc_open(&c, name, NULL) != 0)
		_exit(100);
	return c;
}
