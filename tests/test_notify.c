/* SPDX-License-Identifier: MIT */
/*
 * test_notify.c - waiting for a change (issue 11, item 3): tc_wait and
 * tc_wait_any on the segment's futex words (shm/futex.c, shm/notify.c).
 *
 * Waiters are forked processes with handles of their own, reporting what
 * their call returned through a pipe.  A test knows that a waiter sleeps
 * from the segment (its flag is on the word) and from /proc (state S in
 * futex_do_wait); it never sleeps for a fixed time to let one get there,
 * and no test has a timing threshold: a deadline only bounds how long a
 * broken build takes to fail.  Writers' wake syscalls are counted by the
 * library (tc__wake_calls, white-box); tests/test_notify.sh counts the
 * futex syscalls of a writer with strace.
 */
#include "whitebox.h"
#include "futex.h"

#include <sys/select.h>
#include <limits.h>
#include <linux/filter.h>
#include <linux/futex.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>

#define BOUND_MS 60000 /* how long a broken build may take to fail a step */

static char cur_name[TC_NAME_MAX + 1];
static pid_t kids[16];
static int nkids;

/* Kill the waiters a failed test left; the fixture unlinks the segments. */
static int teardown(void **state)
{
	for (int i = 0; i < nkids; i++) {
		if (kids[i] > 0) {
			int st;
			kill(kids[i], SIGKILL);
			waitpid(kids[i], &st, 0);
		}
	}
	nkids = 0;
	cur_name[0] = '\0';
	return fx_teardown(state);
}

static tc_cache *make_seg(const char *tag)
{
	fx_name_at(cur_name, sizeof(cur_name), tag);
	return wb_create(cur_name, 4096, 4 << 20, 32, TC_EVICT_NONE);
}

static tc_cache *attach(void)
{
	tc_opts o;
	memset(&o, 0, sizeof(o));
	tc_cache *c = NULL;
	if (tc_open(&c, cur_name, &o) != 0)
		_exit(90);
	return c;
}

static uint64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void nap(void)
{
	struct timespec ts = { 0, 1000000 };
	nanosleep(&ts, NULL);
}

static uint32_t *key_word(tc_cache *c, const char *key)
{
	return &c->h->key_wake[TC_WAKE_SHARD(tc__hash(c, key, strlen(key), TC_KIND_KEY))];
}

/* What a waiter reports. */
struct report {
	int rc;
	tc_meta m;
	uint64_t seq;
};

struct waiter {
	pid_t pid;
	int fd; /* read end of its pipe */
};

enum { W_KEY, W_ANY };

struct wspec {
	int kind;
	const char *key;
	uint64_t version;
	uint64_t timeout_ms;
	uint64_t seq;
	bool handler; /* SIGUSR1 handler installed (EINTR) */
	bool restart; /* ... with SA_RESTART */
};

static void on_usr1(int sig)
{
	(void)sig;
}

static struct waiter spawn(const struct wspec *sp)
{
	int p[2];
	assert_int_equal(0, pipe(p));
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(p[0]);
		if (sp->handler) {
			struct sigaction sa;
			memset(&sa, 0, sizeof(sa));
			sa.sa_handler = on_usr1;
			sa.sa_flags = sp->restart ? SA_RESTART : 0;
			sigaction(SIGUSR1, &sa, NULL);
		}
		tc_cache *c = attach();
		struct report r;
		memset(&r, 0xA5, sizeof(r));
		r.seq = sp->seq;
		if (sp->kind == W_KEY)
			r.rc = tc_wait(c, sp->key, strlen(sp->key), sp->version, sp->timeout_ms,
				       &r.m);
		else
			r.rc = tc_wait_any(c, &r.seq, sp->timeout_ms);
		if (write(p[1], &r, sizeof(r)) != (ssize_t)sizeof(r))
			_exit(91);
		tc_close(c);
		_exit(0);
	}
	close(p[1]);
	kids[nkids++] = pid;
	return (struct waiter){ pid, p[0] };
}

/* The waiter's report (its call returned) and its clean exit. */
static struct report collect(struct waiter w)
{
	struct report r;
	assert_int_equal(sizeof(r), read(w.fd, &r, sizeof(r)));
	close(w.fd);
	int st;
	assert_int_equal(w.pid, waitpid(w.pid, &st, 0));
	assert_true(WIFEXITED(st));
	assert_int_equal(0, WEXITSTATUS(st));
	for (int i = 0; i < nkids; i++)
		if (kids[i] == w.pid)
			kids[i] = 0;
	return r;
}

/* Has the waiter returned?  (Its report is in the pipe.) */
static bool returned(struct waiter w)
{
	struct timespec ts = { 0, 0 };
	fd_set rd;
	FD_ZERO(&rd);
	FD_SET(w.fd, &rd);
	return pselect(w.fd + 1, &rd, NULL, NULL, &ts, NULL) > 0;
}

/* /proc/PID/stat state and /proc/PID/wchan say it sleeps on a futex. */
static bool in_futex(pid_t pid)
{
	char path[64], buf[512];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return false;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	char *rp = strrchr(buf, ')');
	if (!rp || rp[1] != ' ' || (rp[2] != 'S' && rp[2] != 'T'))
		return false;
	snprintf(path, sizeof(path), "/proc/%d/wchan", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return true;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* "0" when the kernel hides it: the state alone then. */
	return strcmp(buf, "0") == 0 || strstr(buf, "futex") != NULL;
}

/* Wait until the waiter sleeps on WORD: its flag is there and the kernel
 * shows it in a futex wait. */
static void until_asleep(struct waiter w, uint32_t *word)
{
	uint64_t t0 = mono_ms();
	while (!((tc__ld(word) & TC_WAKE_SLEEP) && in_futex(w.pid))) {
		if (returned(w) || mono_ms() - t0 > BOUND_MS)
			fail_msg("waiter %d never slept (word %#x)", (int)w.pid, tc__ld(word));
		nap();
	}
}

static tc_meta meta_of(tc_cache *c, const char *key)
{
	tc_meta m;
	char buf[256];
	ASSERT_RC(0, tc_get(c, key, strlen(key), buf, sizeof(buf), &m));
	return m;
}

static void assert_meta_eq(const tc_meta *a, const tc_meta *b)
{
	assert_int_equal(a->len, b->len);
	assert_int_equal(a->type, b->type);
	assert_int_equal(a->version, b->version);
	assert_int_equal(a->expires_ms, b->expires_ms);
}

static void set_s(tc_cache *c, const char *key, const char *val, uint32_t type, uint64_t ttl)
{
	ASSERT_RC(0, tc_set(c, key, strlen(key), val, strlen(val), type, ttl));
}

/* ---- tc_wait ---------------------------------------------------------- */

static void test_wait_wakes_on_set_from_another_process_with_exact_meta(void **state)
{
	(void)state;
	tc_cache *c = make_seg("nt-set");
	set_s(c, "quote:AAPL", "100.0", 3, 0);
	tc_meta m0 = meta_of(c, "quote:AAPL");
	struct waiter w = spawn(&(struct wspec){ .kind = W_KEY, .key = "quote:AAPL", .version = m0.version, .timeout_ms = BOUND_MS });
	until_asleep(w, key_word(c, "quote:AAPL"));
	uint64_t wakes = tc__wake_calls();
	set_s(c, "quote:AAPL", "100.25", 7, 3600 * 1000);
	/* Our set found the flag: one wake, and the flag is gone. */
	assert_int_equal(wakes + 1, tc__wake_calls());
	assert_int_equal(0, tc__ld(key_word(c, "quote:AAPL")) & TC_WAKE_FLAGS);
	tc_meta m1 = meta_of(c, "quote:AAPL");
	struct report r = collect(w);
	assert_int_equal(0, r.rc);
	assert_meta_eq(&m1, &r.m);
	assert_int_equal(6, r.m.len);
	assert_int_equal(7, r.m.type);
	assert_true(r.m.version > m0.version);
	tc_close(c);
}

static void test_wait_timeout_returns_etimedout_and_key_unchanged(void **state)
{
	(void)state;
	tc_cache *c = make_seg("nt-to");
	set_s(c, "k", "v1", 1, 0);
	tc_meta m0 = meta_of(c, "k"), m;
	memset(&m, 0x5A, sizeof(m));
	tc_meta untouched = m;
	uint64_t t0 = mono_ms();
	ASSERT_RC(-ETIMEDOUT, tc_wait(c, "k", 1, m0.version, 50, &m));
	assert_true(mono_ms() - t0 >= 50); /* never shorter than asked */
	assert_memory_equal(&untouched, &m, sizeof(m));
	tc_meta m1 = meta_of(c, "k");
	assert_meta_eq(&m0, &m1);
	char buf[8];
	ASSERT_RC(0, tc_get(c, "k", 1, buf, sizeof(buf), NULL));
	assert_memory_equal("v1", buf, 2);
	/* Timeout 0 checks once and never sleeps, nor sets a flag. */
	ASSERT_RC(-ETIMEDOUT, tc_wait(c, "k", 1, m0.version, 0, &m));
	tc_close(c);
}

static void test_wait_version_already_greater_returns_at_once(void **state)
{
	(void)state;
	tc_cache *c = make_seg("nt-now");
	set_s(c, "k", "v1", 1, 0);
	set_s(c, "k", "v2", 2, 0);
	tc_meta m0 = meta_of(c, "k"), m;
	uint32_t before = tc__ld(key_word(c, "k"));
	ASSERT_RC(0, tc_wait(c, "k", 1, m0.version - 1, TC_FOREVER, &m));
	assert_meta_eq(&m0, &m);
	ASSERT_RC(0, tc_wait(c, "k", 1, 0, 0, &m)); /* exists: at once, even with timeout 0 */
	assert_meta_eq(&m0, &m);
	ASSERT_RC(0, tc_wait(c, "k", 1, 0, TC_FOREVER, NULL));
	/* Calls that return at once, and timeout-0 calls, set no flag: the
	 * next writer pays nothing for them. */
	ASSERT_RC(-ETIMEDOUT, tc_wait(c, "k", 1, m0.version, 0, &m));
	assert_int_equal(before, tc__ld(key_word(c, "k")));
	tc_close(c);
}

static void test_wait_version_zero_waits_for_the_key_to_exist(void **state)
{
	(void)state;
	tc_cache *c = make_seg("nt-zero");
	struct waiter w = spawn(&(struct wspec){ .kind = W_KEY, .key = "signal:1", .version = 0, .timeout_ms = BOUND_MS });
	until_asleep(w, key_word(c, "signal:1"));
	ASSERT_RC(0, tc_add(c, "signal:1", 8, "x", 1, 5, 0));
	tc_meta m1 = meta_of(c, "signal:1");
	struct report r = collect(w);
	assert_int_equal(0, r.rc);
	assert_meta_eq(&m1, &r.m);
	tc_close(c);
}

/*
 * VERSION 0 waits until the key exists, whatever version it shows: a
 * present key whose version was scribbled to 0 (tc_get reports it so) is
 * returned at once.  Before, "exists" was judged as "version above 0", and
 * the waiter slept on beside the present key until a write of its shard or
 * its timeout (seen failing: -ETIMEDOUT from the call with timeout 0).
 */
static void test_wait_version_zero_returns_a_present_key_whatever_its_version(void **state)
{
	(void)state;
	tc_cache *c = make_seg("nt-zv");
	set_s(c, "k", "v", 4, 0);
	tc__st(&wb_entry_of(c, "k", TC_KIND_KEY)->version, 0);
	tc_meta m0 = meta_of(c, "k"), m;
	assert_int_equal(0, m0.version);
	memset(&m, 0x5A, sizeof(m));
	ASSERT_RC(0, tc_wait(c, "k", 1, 0, 0, &m));
	assert_meta_eq(&m0, &m);
	memset(&m, 0x5A, sizeof(m));
	ASSERT_RC(0, tc_wait(c, "k", 1, 0, 200, &m));
	assert_meta_eq(&m0, &m);
	/* Any VERSION above it still waits for a newer one. */
	ASSERT_RC(-ETIMEDOUT, tc_wait(c, "k", 1, 1, 0, &m));
	tc_close(c);
}

static void test_wait_on_a_deleted_or_absent_key_returns_enoent(void **state)
{
	(void)state;
	tc_cache *c = make_seg("nt-del");
	tc_meta m;
	ASSERT_RC(-ENOENT, tc_wait(c, "gone", 4, 5, TC_FOREVER, &m)); /* absent, VERSION > 0 */
	set_s(c, "k", "v", 1, 0);
	tc_meta m0 = meta_of(c, "k");
	struct waiter w = spawn(&(struct wspec){ .kind = W_KEY, .key = "k", .version = m0.version, .timeout_ms = BOUND_MS });
	until_asleep(w, key_word(c, "k"));
	ASSERT_RC(0, tc_del(c, "k", 1));
	assert_int_equal(-ENOENT, collect(w).rc);
	/* An expiry without any writer: the waiter wakes at the expiry. */
	set_s(c, "k", "v", 1, 150);
	m0 = meta_of(c, "k");
	uint64_t wakes = tc__wake_calls();
	ASSERT_RC(-ENOENT, tc_wait(c, "k", 1, m0.version, BOUND_MS, &m));
	assert_true(tc_now_ms() >= m0.expires_ms);
	assert_int_equal(wakes, tc__wake_calls());
	tc_close(c);
}

static void test_wait_inside_a_read_section_is_edeadlk(void **state)
{
	(void)state;
	tc_cache *c = make_seg("nt-dl");
	uint64_t seq = 0;
	ASSERT_RC(0, tc_read_lock(c));
	ASSERT_RC(-EDEADLK, tc_wait(c, "k", 1, 0, 10, NULL));
	ASSERT_RC(-EDEADLK, tc_wait_any(c, &seq, 10));
	tc_read_unlock(c);
	ASSERT_RC(-EINVAL, tc_wait(c, NULL, 1, 0, 10, NULL));
	ASSERT_RC(-EINVAL, tc_wait(c, "k", 0, 0, 10, NULL));
	ASSERT_RC(-EINVAL, tc_wait(NULL, "k", 1, 0, 10, NULL));
	ASSERT_RC(-EINVAL, tc_wait_any(c, NULL, 10));
	ASSERT_RC(-EINVAL, tc_wait_any(NULL, &seq, 10));
	tc_close(c);
}

/* A killed waiter leaves its flag; one writer clears it with one wake,
 * and after that writers make no wake call.  A new waiter works. */
static void test_killed_waiter_costs_one_wake_then_nothing(void **state)
{
	(void)state;
	tc_cache *c = make_seg("nt-kill");
	set_s(c, "k", "v0", 1, 0);
	tc_meta m0 = meta_of(c, "k");
	struct waiter w = spawn(&(struct wspec){ .kind = W_KEY, .key = "k", .version = m0.version, .timeout_ms = TC_FOREVER });
	until_asleep(w, key_word(c, "k"));
	kill(w.pid, SIGKILL);
	int st;
	assert_int_equal(w.pid, waitpid(w.pid, &st, 0));
	assert_true(WIFSIGNALED(st));
	kids[0] = 0;
	close(w.fd);
	assert_int_equal(TC_WAKE_SLEEP, tc__ld(key_word(c, "k")) & TC_WAKE_FLAGS);
	uint64_t wakes = tc__wake_calls();
	set_s(c, "k", "v1", 1, 0);
	assert_int_equal(wakes + 1, tc__wake_calls());
	char key[32];
	for (int i = 0; i < 2000; i++) {
		snprintf(key, sizeof(key), "k%d", i % 200);
		set_s(c, key, "x", 1, 0);
		set_s(c, "k", "v", 1, 0);
	}
	assert_int_equal(wakes + 1, tc__wake_calls());
	/* A new waiter is woken as the first was meant to be. */
	m0 = meta_of(c, "k");
	w = spawn(&(struct wspec){ .kind = W_KEY, .key = "k", .version = m0.version, .timeout_ms = BOUND_MS });
	until_asleep(w, key_word(c, "k"));
	set_s(c, "k", "v2", 1, 0);
	tc_meta m1 = meta_of(c, "k");
	struct report r = collect(w);
	assert_int_equal(0, r.rc);
	assert_meta_eq(&m1, &r.m);
	wakes = tc__wake_calls();
	for (int i = 0; i < 1000; i++)
		set_s(c, "k", "v", 1, 0);
	assert_int_equal(wakes, tc__wake_calls());
	tc_close(c);
}

/*
 * A writer killed between its publish and its bump (design.md, "Waiting for
 * a change", crash windows): the key changed, the flag is still on the
 * word, nobody was woken.  The test leaves the segment exactly so: it takes
 * the flag off for its own publish (whose check then wakes no one) and puts
 * the word back as it was.  The sleeper sleeps on, wakes at the next publish
 * on its word and reports the newest version; a sleeper nobody wakes
 * returns at its timeout with the version the dead writer published.
 */
static void test_writer_killed_before_its_wake_leaves_sleepers_to_next_publish_or_timeout(void **state)
{
	(void)state;
	tc_cache *c = make_seg("nt-dead");
	uint32_t *word = key_word(c, "k");
	set_s(c, "k", "v0", 1, 0);
	tc_meta m0 = meta_of(c, "k");
	struct waiter w = spawn(&(struct wspec){ .kind = W_KEY, .key = "k", .version = m0.version, .timeout_ms = BOUND_MS });
	until_asleep(w, word);
	uint64_t wakes = tc__wake_calls();
	uint32_t x = tc__ld(word);
	tc__st(word, x & ~(uint32_t)TC_WAKE_FLAGS);
	set_s(c, "k", "v1", 1, 0);
	tc__st(word, x);
	assert_int_equal(wakes, tc__wake_calls());
	/* Nothing wakes it: still asleep, no report. */
	for (int i = 0; i < 20; i++)
		nap();
	assert_true(in_futex(w.pid));
	assert_false(returned(w));
	/* The next publish on the word finds the flag and wakes it. */
	set_s(c, "k", "v2", 1, 0);
	assert_int_equal(wakes + 1, tc__wake_calls());
	tc_meta m2 = meta_of(c, "k");
	struct report r = collect(w);
	assert_int_equal(0, r.rc);
	assert_meta_eq(&m2, &r.m);
	assert_int_equal(0, tc__ld(word) & TC_WAKE_FLAGS);

	/* No next publish: the sleeper returns at its timeout, with the
	 * version the dead writer published. */
	w = spawn(&(struct wspec){ .kind = W_KEY, .key = "k", .version = m2.version, .timeout_ms = 3000 });
	until_asleep(w, word);
	x = tc__ld(word);
	tc__st(word, x & ~(uint32_t)TC_WAKE_FLAGS);
	set_s(c, "k", "v3", 1, 0);
	tc__st(word, x);
	assert_int_equal(wakes + 1, tc__wake_calls());
	tc_meta m3 = meta_of(c, "k");
	assert_true(m3.version > m2.version);
	r = collect(w);
	assert_int_equal(0, r.rc);
	assert_meta_eq(&m3, &r.m);
	tc_close(c);
}

/* A stopped waiter blocks no writer, costs one wake, and on SIGCONT goes
 * on to report the newest version. */
static void test_stopped_waiter_blocks_nobody(void **state)
{
	(void)state;
	tc_cache *c = make_seg("nt-stop");
	set_s(c, "k", "v0", 1, 0);
	tc_meta m0 = meta_of(c, "k");
	struct waiter w = spawn(&(struct wspec){ .kind = W_KEY, .key = "k", .version = m0.version, .timeout_ms = BOUND_MS });
	until_asleep(w, key_word(c, "k"));
	kill(w.pid, SIGSTOP);
	uint64_t wakes = tc__wake_calls();
	for (int i = 0; i < 500; i++)
		set_s(c, "k", "v", 1, 0);
	assert_int_equal(wakes + 1, tc__wake_calls());
	ASSERT_RC(0, tc_del(c, "k", 1));
	set_s(c, "k", "last", 9, 0);
	tc_meta m1 = meta_of(c, "k");
	assert_false(returned(w));
	kill(w.pid, SIGCONT);
	struct report r = collect(w);
	assert_int_equal(0, r.rc);
	assert_meta_eq(&m1, &r.m);
	tc_close(c);
}

static void eintr_case(bool restart)
{
	tc_cache *c = make_seg(restart ? "nt-intr-r" : "nt-intr");
	set_s(c, "k", "v0", 1, 0);
	tc_meta m0 = meta_of(c, "k");
	struct wspec sp = { .kind = W_KEY, .key = "k", .version = m0.version,
			   .timeout_ms = TC_FOREVER, .handler = true, .restart = restart };
	struct waiter w = spawn(&sp);
	until_asleep(w, key_word(c, "k"));
	kill(w.pid, SIGUSR1);
	assert_int_equal(-EINTR, collect(w).rc);
	tc_meta m1 = meta_of(c, "k");
	assert_meta_eq(&m0, &m1);
	/* The same for tc_wait_any. */
	uint64_t seq = 0;
	ASSERT_RC(0, tc_wait_any(c, &seq, 0));
	sp = (struct wspec){ .kind = W_ANY, .timeout_ms = TC_FOREVER, .seq = seq, .handler = true,
			    .restart = restart };
	w = spawn(&sp);
	until_asleep(w, &c->h->any_wake);
	kill(w.pid, SIGUSR1);
	struct report r = collect(w);
	assert_int_equal(-EINTR, r.rc);
	assert_int_equal(seq, r.seq);
	tc_close(c);
}

static void test_signal_handler_gives_eintr(void **state)
{
	(void)state;
	eintr_case(false);
	eintr_case(true); /* SA_RESTART too: every sleep has a deadline */
}

/* Wake-ups that are not for the waiter's key (another key of its shard,
 * and bare FUTEX_WAKE calls on its word) are never returned. */
static void test_spurious_wakeups_are_invisible(void **state)
{
	(void)state;
	tc_cache *c = make_seg("nt-spur");
	set_s(c, "k", "v0", 1, 0);
	tc_meta m0 = meta_of(c, "k");
	/* Another key of the same shard. */
	char other[32];
	uint32_t shard = TC_WAKE_SHARD(tc__hash(c, "k", 1, TC_KIND_KEY));
	for (int i = 0;; i++) {
		snprintf(other, sizeof(other), "o%d", i);
		if (TC_WAKE_SHARD(tc__hash(c, other, strlen(other), TC_KIND_KEY)) == shard)
			break;
	}
	uint32_t *word = key_word(c, "k");
	struct waiter w = spawn(&(struct wspec){ .kind = W_KEY, .key = "k", .version = m0.version, .timeout_ms = BOUND_MS });
	for (int round = 0; round < 20; round++) {
		until_asleep(w, word);
		uint64_t wakes = tc__wake_calls();
		set_s(c, other, "x", 1, 0);
		assert_int_equal(wakes + 1, tc__wake_calls()); /* it was woken */
	}
	for (int round = 0; round < 20; round++) {
		until_asleep(w, word);
		syscall(SYS_futex, word, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
	}
	until_asleep(w, word);
	assert_false(returned(w));
	set_s(c, "k", "v1", 2, 0);
	tc_meta m1 = meta_of(c, "k");
	struct report r = collect(w);
	assert_int_equal(0, r.rc);
	assert_meta_eq(&m1, &r.m);
	tc_close(c);
}

static void test_unlink_wakes_waiters_with_estale(void **state)
{
	(void)state;
	tc_cache *c = make_seg("nt-unl");
	set_s(c, "k", "v0", 1, 0);
	tc_meta m0 = meta_of(c, "k");
	struct waiter w = spawn(&(struct wspec){ .kind = W_KEY, .key = "k", .version = m0.version, .timeout_ms = BOUND_MS });
	uint64_t seq = 0;
	ASSERT_RC(0, tc_wait_any(c, &seq, 0));
	struct waiter wa = spawn(&(struct wspec){ .kind = W_ANY, .timeout_ms = BOUND_MS, .seq = seq });
	until_asleep(w, key_word(c, "k"));
	until_asleep(wa, &c->h->any_wake);
	ASSERT_RC(0, tc_unlink(cur_name));
	assert_int_equal(-ESTALE, collect(w).rc);
	assert_int_equal(-ESTALE, collect(wa).rc);
	tc_close(c);
}

/* From here on every futex call of this process fails with EPERM (a
 * sandbox that refuses it).  0, or -1 when the kernel refused the filter. */
static int refuse_futex(void)
{
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_futex, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { .len = sizeof(f) / sizeof(f[0]), .filter = f };
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
		return -1;
	return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) == 0 ? 0 : -1;
}

/*
 * A futex call that fails for another reason than the word's change, the
 * deadline or a signal (here a seccomp filter's EPERM) is the caller's
 * error: before, tc__wake_sleep took every other errno for "the word
 * changed" and the loop checked, armed and called again at once, a busy
 * loop to the deadline (seen failing: -ETIMEDOUT after 2 s of CPU from
 * tc_wait, the same from tc_wait_any).
 */
static void test_a_futex_that_fails_is_an_error_not_a_busy_loop(void **state)
{
	(void)state;
	tc_cache *c = make_seg("nt-sec");
	set_s(c, "k", "v0", 1, 0);
	tc_meta m0 = meta_of(c, "k");
	int p[2];
	assert_int_equal(0, pipe(p));
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(p[0]);
		tc_cache *cc = attach();
		uint64_t seq = 0;
		int r[3] = { 0, 0, 0 };
		r[0] = tc_wait_any(cc, &seq, 0); /* the sequence now, before the filter */
		if (refuse_futex() != 0)
			_exit(77);
		tc_meta m;
		r[1] = tc_wait(cc, "k", 1, m0.version, 2000, &m);
		r[2] = tc_wait_any(cc, &seq, 2000);
		if (write(p[1], r, sizeof(r)) != (ssize_t)sizeof(r))
			_exit(91);
		_exit(0);
	}
	close(p[1]);
	kids[nkids++] = pid;
	int r[3];
	ssize_t n = read(p[0], r, sizeof(r));
	close(p[0]);
	int st;
	assert_int_equal(pid, waitpid(pid, &st, 0));
	kids[nkids - 1] = 0;
	assert_true(WIFEXITED(st));
	if (WEXITSTATUS(st) == 77) {
		tc_close(c);
		skip(); /* no seccomp here */
	}
	assert_int_equal(0, WEXITSTATUS(st));
	assert_int_equal(sizeof(r), n);
	assert_int_equal(0, r[0]);
	assert_int_equal(-EPERM, r[1]);
	assert_int_equal(-EPERM, r[2]);
	tc_close(c);
}

/* ---- every publish wakes ------------------------------------------------ */

/* Set the sleep flag on KEY's word and ARMED on the segment word, as a
 * waiter would; after OP both must be clear with their generations moved
 * on (a bump, so a sleeper would have been woken). */
struct armed {
	uint32_t kw, aw;
	uint32_t *kp;
};

static struct armed arm(tc_cache *c, const char *key)
{
	struct armed a;
	a.kp = key ? key_word(c, key) : NULL;
	a.kw = a.kp ? tc__wake_arm(a.kp, TC_WAKE_SLEEP) : 0;
	a.aw = tc__wake_arm(&c->h->any_wake, TC_WAKE_ARMED);
	return a;
}

static void assert_bumped(tc_cache *c, struct armed a, const char *what)
{
	uint32_t aw = tc__ld(&c->h->any_wake);
	if (aw >> TC_WAKE_GEN_SHIFT != (a.aw >> TC_WAKE_GEN_SHIFT) + 1 || (aw & TC_WAKE_FLAGS))
		fail_msg("%s: segment word %#x -> %#x, not bumped", what, a.aw, aw);
	if (a.kp) {
		uint32_t kw = tc__ld(a.kp);
		if (kw >> TC_WAKE_GEN_SHIFT != (a.kw >> TC_WAKE_GEN_SHIFT) + 1 ||
		    (kw & TC_WAKE_FLAGS))
			fail_msg("%s: key word %#x -> %#x, not bumped", what, a.kw, kw);
	}
}

static int loader(const void *key, size_t klen, void *buf, size_t cap, size_t *len, void *arg)
{
	(void)arg, (void)key, (void)klen, (void)cap;
	memcpy(buf, "loaded", 6);
	*len = 6;
	return 0;
}

static void test_every_publish_wakes(void **state)
{
	(void)state;
	tc_cache *c = make_seg("nt-all");
	struct armed a;
	int64_t n;
	uint64_t del;
	char buf[64];
	tc_meta m;

	a = arm(c, "k");
	set_s(c, "k", "v", 1, 0);
	assert_bumped(c, a, "set");
	a = arm(c, "a");
	ASSERT_RC(0, tc_add(c, "a", 1, "v", 1, 1, 0));
	assert_bumped(c, a, "add");
	m = meta_of(c, "k");
	a = arm(c, "k");
	ASSERT_RC(0, tc_cas(c, "k", 1, m.version, "w", 1, 1, 0));
	assert_bumped(c, a, "cas");
	a = arm(c, "n");
	ASSERT_RC(0, tc_incr(c, "n", 1, 5, 0, &n));
	assert_bumped(c, a, "incr (create)");
	a = arm(c, "n");
	ASSERT_RC(0, tc_incr(c, "n", 1, 5, 0, &n));
	assert_bumped(c, a, "incr");
	a = arm(c, "k");
	ASSERT_RC(0, tc_expire(c, "k", 1, 100000));
	assert_bumped(c, a, "expire");
	a = arm(c, "k");
	ASSERT_RC(0, tc_del(c, "k", 1));
	assert_bumped(c, a, "del");
	set_s(c, "p:1", "v", 1, 0);
	a = arm(c, "p:1");
	ASSERT_RC(0, tc_purge(c, "p:*", &del));
	assert_int_equal(1, del);
	assert_bumped(c, a, "purge");
	/* Expiry removed by a sweep. */
	set_s(c, "e", "v", 1, 1);
	while (tc_exists(c, "e", 1))
		nap();
	a = arm(c, "e");
	tc_sweep_report rep;
	ASSERT_RC(0, tc_sweep(c, 0, &rep));
	assert_bumped(c, a, "sweep");
	/* Single flight: the lease and the value. */
	a = arm(c, "L");
	ASSERT_RC(0, tc_get_or_load(c, "L", 1, buf, sizeof(buf), &m, 4, 0, 1000, loader, NULL));
	assert_int_equal(6, m.len);
	assert_bumped(c, a, "get_or_load");
	/* Runs and DTO lists: the segment word. */
	a = arm(c, NULL);
	ASSERT_RC(0, tc_run_start(c, 1, 1));
	assert_bumped(c, a, "run start");
	a = arm(c, NULL);
	ASSERT_RC(0, tc_dto_append(c, "sig", 3, 1, "d1", 2));
	assert_bumped(c, a, "dto append (first)");
	a = arm(c, NULL);
	ASSERT_RC(0, tc_dto_append(c, "sig", 3, 1, "d2", 2));
	assert_bumped(c, a, "dto append");
	a = arm(c, NULL);
	ASSERT_RC(0, tc_run_end(c));
	assert_bumped(c, a, "run end");
	/* Snapshot load: ordinary writes. */
	char path[128];
	snprintf(path, sizeof(path), "/tmp/%s.snap", cur_name);
	set_s(c, "s", "v", 1, 0);
	ASSERT_RC(0, tc_snapshot_save(c, path, NULL));
	ASSERT_RC(0, tc_del(c, "s", 1));
	a = arm(c, "s");
	ASSERT_RC(0, tc_snapshot_load(c, path, 0, NULL));
	unlink(path);
	assert_bumped(c, a, "snapshot load");
	/* Eviction and the expiry removals of writers go through the removal
	 * of tc_del, tc_purge and tc_sweep (tc__remove_slot). */
	tc_close(c);
}

/* Eviction removes a key as tc_del does, and bumps its word: the writes
 * that make room are all of other shards, so only the victim's removal
 * can have moved its word (test_every_publish_wakes only says so). */
static void test_eviction_wakes_the_victims_word(void **state)
{
	(void)state;
	fx_name_at(cur_name, sizeof(cur_name), "nt-evict");
	tc_cache *c = wb_create(cur_name, 256, 1 << 20, 8, TC_EVICT_LRU);
	set_s(c, "victim", "v", 1, 0);
	uint32_t shard = TC_WAKE_SHARD(tc__hash(c, "victim", 6, TC_KIND_KEY));
	uint32_t *word = key_word(c, "victim");
	uint32_t w0 = tc__wake_arm(word, TC_WAKE_SLEEP);
	char k[32];
	int sets = 0;
	for (int i = 0; sets < 20000 && tc_exists(c, "victim", 6); i++) {
		int kl = snprintf(k, sizeof(k), "f%d", i);
		if (TC_WAKE_SHARD(tc__hash(c, k, (size_t)kl, TC_KIND_KEY)) == shard)
			continue;
		ASSERT_RC(0, tc_set(c, k, (size_t)kl, "x", 1, 1, 0));
		sets++;
	}
	assert_false(tc_exists(c, "victim", 6));
	assert_int_equal((w0 & ~(uint32_t)TC_WAKE_FLAGS) + TC_WAKE_GEN, tc__ld(word));
	tc_close(c);
}

/* Nobody waits: no wake call and no flag, whatever the writes. */
static void test_writer_with_no_waiter_never_wakes(void **state)
{
	(void)state;
	tc_cache *c = make_seg("nt-none");
	uint64_t wakes = tc__wake_calls();
	uint32_t any0 = tc__ld(&c->h->any_wake);
	char key[32];
	int64_t n;
	uint64_t del;
	for (int i = 0; i < 3000; i++) {
		snprintf(key, sizeof(key), "k%d", i % 300);
		set_s(c, key, "v", 1, i % 3 ? 0 : 100000);
		ASSERT_RC(0, tc_incr(c, "ctr", 3, 1, 0, &n));
		if (i % 7 == 0)
			ASSERT_RC(0, tc_del(c, key, strlen(key)));
		if (i % 11 == 0)
			(void)tc_expire(c, key, strlen(key), 5000);
	}
	ASSERT_RC(0, tc_run_start(c, 1, 1));
	ASSERT_RC(0, tc_dto_append(c, "sig", 3, 1, "d1", 2));
	ASSERT_RC(0, tc_run_end(c));
	ASSERT_RC(0, tc_purge(c, "k1*", &del));
	ASSERT_RC(0, tc_sweep(c, 0, NULL));
	assert_int_equal(wakes, tc__wake_calls());
	assert_int_equal(any0, tc__ld(&c->h->any_wake));
	for (int i = 0; i < TC_WAKE_SHARDS; i++)
		assert_int_equal(0, tc__ld(&c->h->key_wake[i]));
	tc_close(c);
}

/* ---- tc_wait_any -------------------------------------------------------- */

static void test_wait_any_reports_every_change_once_armed(void **state)
{
	(void)state;
	tc_cache *c = make_seg("nt-any");
	uint64_t seq = 0, s0;
	ASSERT_RC(0, tc_wait_any(c, &seq, TC_FOREVER)); /* no sequence yet: at once */
	assert_int_not_equal(0, seq);
	s0 = seq;
	ASSERT_RC(-ETIMEDOUT, tc_wait_any(c, &seq, 0));
	ASSERT_RC(-ETIMEDOUT, tc_wait_any(c, &seq, 30));
	assert_int_equal(s0, seq);
	/* That call slept: its flag costs the next writer one wake. */
	uint64_t wakes = tc__wake_calls();
	set_s(c, "k", "v", 1, 0);
	assert_int_equal(wakes + 1, tc__wake_calls());
	ASSERT_RC(0, tc_wait_any(c, &seq, 0));
	assert_int_not_equal(s0, seq);
	s0 = seq;
	/* A change between two calls (nobody asleep) is not lost: no wake
	 * syscall, one bump. */
	wakes = tc__wake_calls();
	set_s(c, "k", "v", 1, 0);
	set_s(c, "k", "v", 1, 0); /* the second finds nothing armed */
	assert_int_equal(wakes, tc__wake_calls());
	ASSERT_RC(0, tc_wait_any(c, &seq, 0));
	assert_int_not_equal(s0, seq);
	s0 = seq;
	/* From another process, asleep. */
	struct waiter w = spawn(&(struct wspec){ .kind = W_ANY, .timeout_ms = BOUND_MS, .seq = seq });
	until_asleep(w, &c->h->any_wake);
	set_s(c, "q", "v", 1, 0);
	assert_int_equal(wakes + 1, tc__wake_calls());
	struct report r = collect(w);
	assert_int_equal(0, r.rc);
	assert_int_not_equal(s0, r.seq);
	assert_int_not_equal(0, r.seq);
	/* Ours too saw it. */
	ASSERT_RC(0, tc_wait_any(c, &seq, 0));
	assert_int_equal(r.seq, seq);
	tc_close(c);
}

/* ---- stress --------------------------------------------------------------- */

#define ST_WRITERS 3
#define ST_WAITERS 3
#define ST_ANY 2
#define ST_WRITES 1500

/* Values: "w<writer>:<seq>:<sum>" with sum = writer * 1000003 + seq. */
static bool value_ok(const char *buf, size_t len)
{
	char tmp[64];
	if (len == 4 && memcmp(buf, "DONE", 4) == 0)
		return true;
	if (len >= sizeof(tmp))
		return false;
	memcpy(tmp, buf, len);
	tmp[len] = '\0';
	unsigned wr, sq;
	unsigned long long sum;
	if (sscanf(tmp, "w%u:%u:%llu", &wr, &sq, &sum) != 3)
		return false;
	return sum == (unsigned long long)wr * 1000003ull + sq;
}

static void st_writer(int id)
{
	tc_cache *c = attach();
	char v[64];
	for (int i = 1; i <= ST_WRITES; i++) {
		int n = snprintf(v, sizeof(v), "w%d:%d:%llu", id, i,
				 (unsigned long long)id * 1000003ull + (unsigned)i);
		if (tc_set(c, "hot", 3, v, (size_t)n, 1, 0) != 0)
			_exit(10);
		if (i % 50 == 0 && tc_set(c, "other", 5, v, (size_t)n, 1, 0) != 0)
			_exit(11);
	}
	tc_close(c);
	_exit(0);
}

/* Follow "hot" with tc_wait until DONE: versions only grow, values check. */
static void st_key_waiter(void)
{
	tc_cache *c = attach();
	uint64_t v = 0;
	char buf[64];
	for (;;) {
		tc_meta m;
		int rc = tc_wait(c, "hot", 3, v, BOUND_MS, &m);
		if (rc != 0)
			_exit(20);
		if (m.version <= v)
			_exit(21);
		tc_meta g;
		rc = tc_get(c, "hot", 3, buf, sizeof(buf), &g);
		if (rc != 0 || g.version < m.version)
			_exit(22);
		if (!value_ok(buf, g.len))
			_exit(23);
		v = g.version;
		if (g.len == 4 && memcmp(buf, "DONE", 4) == 0)
			break;
	}
	tc_close(c);
	_exit(0);
}

/* Follow the segment with tc_wait_any until "hot" reads DONE. */
static void st_any_waiter(void)
{
	tc_cache *c = attach();
	uint64_t seq = 0, last = 0;
	char buf[64];
	for (;;) {
		int rc = tc_wait_any(c, &seq, BOUND_MS);
		if (rc != 0)
			_exit(30);
		tc_meta g;
		rc = tc_get(c, "hot", 3, buf, sizeof(buf), &g);
		if (rc == -ENOENT)
			continue;
		if (rc != 0 || g.version < last || !value_ok(buf, g.len))
			_exit(31);
		last = g.version;
		if (g.len == 4 && memcmp(buf, "DONE", 4) == 0)
			break;
	}
	tc_close(c);
	_exit(0);
}

static void test_stress_writers_and_waiters_across_processes(void **state)
{
	(void)state;
	tc_cache *c = make_seg("nt-stress");
	pid_t pw[ST_WRITERS], pv[ST_WAITERS + ST_ANY];
	for (int i = 0; i < ST_WAITERS + ST_ANY; i++) {
		pv[i] = fork();
		assert_true(pv[i] >= 0);
		if (pv[i] == 0) {
			if (i < ST_WAITERS)
				st_key_waiter();
			st_any_waiter();
		}
		kids[nkids++] = pv[i];
	}
	for (int i = 0; i < ST_WRITERS; i++) {
		pw[i] = fork();
		assert_true(pw[i] >= 0);
		if (pw[i] == 0)
			st_writer(i + 1);
		kids[nkids++] = pw[i];
	}
	int st;
	for (int i = 0; i < ST_WRITERS; i++) {
		assert_int_equal(pw[i], waitpid(pw[i], &st, 0));
		assert_true(WIFEXITED(st));
		assert_int_equal(0, WEXITSTATUS(st));
	}
	/* The final value, after every writer: each waiter must see it. */
	set_s(c, "hot", "DONE", 1, 0);
	for (int i = 0; i < ST_WAITERS + ST_ANY; i++) {
		assert_int_equal(pv[i], waitpid(pv[i], &st, 0));
		assert_true(WIFEXITED(st));
		if (WEXITSTATUS(st) != 0)
			fail_msg("waiter %d exited %d", i, WEXITSTATUS(st));
	}
	nkids = 0;
	tc_close(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_wait_wakes_on_set_from_another_process_with_exact_meta, teardown),
		cmocka_unit_test_teardown(test_wait_timeout_returns_etimedout_and_key_unchanged, teardown),
		cmocka_unit_test_teardown(test_wait_version_already_greater_returns_at_once, teardown),
		cmocka_unit_test_teardown(test_wait_version_zero_waits_for_the_key_to_exist, teardown),
		cmocka_unit_test_teardown(test_wait_version_zero_returns_a_present_key_whatever_its_version, teardown),
		cmocka_unit_test_teardown(test_wait_on_a_deleted_or_absent_key_returns_enoent, teardown),
		cmocka_unit_test_teardown(test_wait_inside_a_read_section_is_edeadlk, teardown),
		cmocka_unit_test_teardown(test_killed_waiter_costs_one_wake_then_nothing, teardown),
		cmocka_unit_test_teardown(test_writer_killed_before_its_wake_leaves_sleepers_to_next_publish_or_timeout, teardown),
		cmocka_unit_test_teardown(test_stopped_waiter_blocks_nobody, teardown),
		cmocka_unit_test_teardown(test_signal_handler_gives_eintr, teardown),
		cmocka_unit_test_teardown(test_spurious_wakeups_are_invisible, teardown),
		cmocka_unit_test_teardown(test_unlink_wakes_waiters_with_estale, teardown),
		cmocka_unit_test_teardown(test_a_futex_that_fails_is_an_error_not_a_busy_loop, teardown),
		cmocka_unit_test_teardown(test_every_publish_wakes, teardown),
		cmocka_unit_test_teardown(test_eviction_wakes_the_victims_word, teardown),
		cmocka_unit_test_teardown(test_writer_with_no_waiter_never_wakes, teardown),
		cmocka_unit_test_teardown(test_wait_any_reports_every_change_once_armed, teardown),
		cmocka_unit_test_teardown(test_stress_writers_and_waiters_across_processes, teardown),
	};
	return fx_run(tests);
}
