/* SPDX-License-Identifier: MIT */
/*
 * shm-sweeper - the maintenance daemon of tickcache segments.
 *
 * Every pass it takes each segment (all /dev/shm/tickcache.* rescanned each
 * pass and on SIGHUP, or the names given), and for each one:
 *   1. attaches (tc_open with TC_TOOL), and keeps the handle across passes
 *      while it holds the segment's lease (attaching maps and populates the
 *      whole segment, which is not free).  A handle is dropped as soon as
 *      the segment's file is gone or replaced (another inode), and when
 *      another sweeper holds the lease, so a removed segment is never kept
 *      alive by the sweeper for more than a pass; `shm-inspect unlink`
 *      does not count the lease holder as a user.  The handle is a TC_TOOL
 *      one: its reader slot is one of the few every segment keeps for
 *      tools, so keeping it costs the strategies nothing;
 *   2. takes the segment's sweeper lease (tc_lease_acquire): one sweeper
 *      per segment.  A segment whose lease a live sweeper holds is skipped
 *      and retried every pass, so a second sweeper waits and takes over
 *      when the first dies (a dead holder's lease is free at once) or stops
 *      renewing it for --stale ms;
 *   3. calls tc_sweep in chunks of --budget index slots until the whole
 *      index was covered, yielding the CPU and renewing the lease between
 *      chunks, so a pass never monopolises a core nor holds anything a
 *      strategy's hot path waits for (tc_sweep is lock-free anyway);
 *   4. runs one grace period (tc_reclaim) when retired memory is left;
 *   5. once per idle period (no other live process attached), runs
 *      tc_audit, the exact mark-and-sweep that recovers what a process
 *      killed in a write's few-instruction window left behind.
 * The cache stays correct without a sweeper: it only keeps memory, reader
 * slots and gauges in shape.
 *
 * Metrics: --metrics-textfile DIR writes DIR/tickcache.prom after every
 * pass (a temporary file renamed over it, for node_exporter's textfile
 * collector); --metrics-listen [ADDR:]PORT serves GET /metrics over HTTP
 * (libmicrohttpd, one internal thread, 127.0.0.1 unless ADDR says
 * otherwise).  Both use tools/common_metrics.c, as `shm-inspect metrics`.
 *
 * Exit codes: 0 ok (also after SIGTERM/SIGINT, once the pass ends), 1 a
 * named segment was not found (--once), 2 usage, 3 a segment error
 * (--once) or a startup failure, 4 --once skipped a segment because another
 * live sweeper holds its lease, or the pidfile is locked by a running one.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>
#ifdef TC_HAVE_MHD
#include <microhttpd.h>
#endif

#include "tickcache.h"
#include "common.h"

/* The sweeper reads through the slots kept for tools, never a strategy's. */
static const tc_opts tool_attach = { .flags = TC_TOOL };

enum { L_ERROR, L_WARN, L_INFO, L_DEBUG };

static const char *prog = "shm-sweeper";
static int log_level = L_INFO;
static bool use_syslog;
static FILE *log_fp;        /* --log-file, NULL = stderr (or syslog as a daemon) */
static volatile sig_atomic_t g_stop, g_rescan;

static const char usage_text[] =
	"usage: shm-sweeper [OPTIONS] [NAME...]\n"
	"  -i, --interval MS     pause between passes (default 1000; s/m suffixes)\n"
	"  -1, --once            one pass over every segment, then exit\n"
	"  -f, --foreground      do not daemonise; log to stderr\n"
	"  -p, --pidfile PATH    write (and lock) a pidfile\n"
	"  -l, --log-level L     error, warn, info (default) or debug\n"
	"  -b, --budget N        index buckets (of 7 slots) per tc_sweep call (default 4096,\n"
	"                        0 = the whole index)\n"
	"  -s, --stale MS        take over a lease whose heartbeat is older (default\n"
	"                        max(5000, 3 x interval))\n"
	"      --no-audit        never run tc_audit on idle segments\n"
	"      --run-timeout MS  end a point-in-time run active for longer (left by a\n"
	"                        strategy that died mid-run); default: never\n"
	"  -d, --snapshot-dir D  save each swept segment to D/NAME.snap (tc_snapshot_save)\n"
	"                        every --snapshot-interval and when stopping\n"
	"      --snapshot-interval MS   (default 60s)\n"
	"      --restore         at start, load each D/NAME.snap into its segment when the\n"
	"                        segment is missing (created with the snapshot's mode and,\n"
	"                        as root, the owner of the snapshot file) or newer than it\n"
	"      --log-file PATH   log lines to PATH (appended; '-' = stderr), also as a daemon\n"
	"      --metrics-textfile DIR   write DIR/tickcache.prom after every pass\n"
	"      --metrics-listen [ADDR:]PORT   serve GET /metrics (default ADDR 127.0.0.1)\n"
	"  -h, --help, -V, --version\n"
	"Without NAME, every /dev/shm/tickcache.* segment (rescanned each pass and on SIGHUP).\n";

static void logm(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void logm(int level, const char *fmt, ...)
{
	static const char *const names[] = { "error", "warn", "info", "debug" };
	static const int prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };
	char msg[1024];
	va_list ap;

	if (level > log_level)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (use_syslog && !log_fp) {
		syslog(prio[level], "%s", msg);
	} else {
		struct timespec ts;
		struct tm tm;
		char tbuf[32];

		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		strftime(tbuf, sizeof tbuf, "%H:%M:%S", &tm);
		fprintf(log_fp ? log_fp : stderr, "%s.%03ld %s[%ld] %s: %s\n", tbuf,
			ts.tv_nsec / 1000000L, prog, (long)getpid(), names[level], msg);
	}
}

static void on_stop(int sig)
{
	(void)sig;
	g_stop = 1;
}

static void on_hup(int sig)
{
	(void)sig;
	g_rescan = 1;
}

/* ------------------------------------------------------------------ */
/* Per-segment state kept across passes (the handle is not: see above)  */
/* ------------------------------------------------------------------ */

struct seg {
	char name[TC_NAME_MAX + 1];
	tc_cache *c;        /* open handle, kept while we hold the lease */
	dev_t dev;          /* identity of the file the handle maps */
	ino_t ino;
	bool held;          /* we hold its lease */
	bool present;       /* found by the latest scan */
	uint32_t busy_by;   /* pid of the other sweeper we last deferred to */
	bool audited;       /* audited since the segment last became idle */
	int last_err;       /* last error logged, to log changes only */
	uint64_t passes;
	uint64_t snap_ns;   /* monotonic time of our last snapshot of it, 0 = none */
	bool restored;      /* --restore loaded its snapshot into it */
};

static struct seg *segs;
static size_t nsegs, capsegs;

static struct seg *seg_find(const char *name, bool add)
{
	for (size_t i = 0; i < nsegs; i++)
		if (!strcmp(segs[i].name, name))
			return &segs[i];
	if (!add)
		return NULL;
	if (nsegs == capsegs) {
		size_t ncap = capsegs ? capsegs * 2 : 16;
		struct seg *nv = realloc(segs, ncap * sizeof *nv);

		if (!nv)
			return NULL;
		segs = nv;
		capsegs = ncap;
	}
	memset(&segs[nsegs], 0, sizeof segs[nsegs]);
	snprintf(segs[nsegs].name, sizeof segs[nsegs].name, "%s", name);
	return &segs[nsegs++];
}

static void retire_snapshot(struct seg *s, const char *snap_dir);

/* scan_dir - mark every segment found in /dev/shm present (adding new ones). */
static void scan_dir(const char *snap_dir)
{
	size_t n;
	char **names = seg_names(NULL, &n);

	for (size_t i = 0; i < nsegs; i++)
		segs[i].present = false;
	if (!names) {
		logm(L_ERROR, "cannot read %s: %s", TC_SHM_DIR, strerror(errno));
		return;
	}
	for (size_t i = 0; i < n; i++) {
		struct seg *s = seg_find(names[i], true);

		if (s) {
			if (!s->passes && !s->present)
				logm(L_DEBUG, "%s: found", s->name);
			s->present = true;
		}
	}
	seg_names_free(names);
	/* Forget segments that are gone: their leases went with them. */
	for (size_t i = 0; i < nsegs;) {
		if (!segs[i].present) {
			logm(L_DEBUG, "%s: gone", segs[i].name);
			retire_snapshot(&segs[i], snap_dir);
			tc_close(segs[i].c);
			segs[i] = segs[--nsegs];
		} else {
			i++;
		}
	}
}

/* ------------------------------------------------------------------ */
/* One pass over one segment                                            */
/* ------------------------------------------------------------------ */

enum outcome { SWEPT, SKIPPED, MISSING, FAILED };

struct cfg {
	uint64_t interval_ms;
	uint64_t budget;
	uint64_t stale_ms;
	bool once;
	bool named;
	bool audit;
	uint64_t run_timeout_ms; /* --run-timeout, 0 = never end a run */
	const char *snap_dir;   /* --snapshot-dir, NULL = no snapshots */
	uint64_t snap_every_ms; /* --snapshot-interval */
	bool restore;           /* --restore */
};

static void log_err_once(struct seg *s, int rc, const char *what)
{
	if (s->last_err == rc)
		return;
	s->last_err = rc;
	if (rc == -ESTALE) /* removed while we held it: the next pass forgets it */
		logm(L_DEBUG, "%s: %s: segment was removed", s->name, what);
	else
		logm(rc == -ENOENT ? L_WARN : L_ERROR, "%s: %s: %s", s->name, what,
		     tc_strerror(rc));
}

/* take_lease - 0 when this process holds S's lease after the call. */
static int take_lease(tc_cache *c, struct seg *s, const struct cfg *cf)
{
	uint32_t holder = 0;
	int rc;

	if (s->held) {
		rc = tc_lease_renew(c);
		if (!rc || rc == -ESTALE)
			return rc;
		s->held = false;
		logm(L_WARN, "%s: lost the sweeper lease (%s), trying to take it back", s->name,
		     tc_strerror(rc));
	}
	rc = tc_lease_acquire(c, cf->stale_ms, &holder);
	if (rc == -EBUSY && holder == (uint32_t)getpid())
		rc = 0;
	if (rc == -EBUSY) {
		if (s->busy_by != holder)
			logm(cf->once ? L_WARN : L_INFO,
			     "%s: another sweeper (pid %" PRIu32 ") holds the lease; %s", s->name,
			     holder, cf->once ? "skipping it" : "waiting for it to stop");
		s->busy_by = holder;
		return rc;
	}
	if (rc == -ENOSYS) {
		if (s->last_err != rc)
			logm(L_WARN, "%s: this libtickcache has no sweeper lease; sweeping without",
			     s->name);
		s->last_err = rc;
		return 0;
	}
	if (rc) {
		log_err_once(s, rc, "cannot take the sweeper lease");
		return rc;
	}
	if (s->busy_by)
		logm(L_INFO, "%s: took over the sweeper lease from pid %" PRIu32, s->name, s->busy_by);
	else
		logm(L_DEBUG, "%s: took the sweeper lease", s->name);
	s->busy_by = 0;
	s->held = true;
	return 0;
}

static void seg_drop(struct seg *s)
{
	tc_close(s->c);
	s->c = NULL;
	s->held = false;
}

/* seg_attach - make s->c a handle on the segment file that exists now. */
static int seg_attach(struct seg *s)
{
	char path[TC_SEG_PATH_MAX];
	struct stat sb;
	int rc;

	if (stat(seg_path(path, sizeof path, s->name), &sb)) {
		if (s->c)
			logm(L_DEBUG, "%s: removed; detaching", s->name);
		seg_drop(s);
		return -ENOENT;
	}
	if (s->c && (sb.st_ino != s->ino || sb.st_dev != s->dev)) {
		logm(L_INFO, "%s: segment was recreated; re-attaching", s->name);
		seg_drop(s);
	}
	if (s->c)
		return 0;
	rc = tc_open(&s->c, s->name, &tool_attach);
	if (rc) {
		s->c = NULL;
		return rc;
	}
	/* If it was replaced between stat and open, the next pass notices. */
	s->dev = sb.st_dev;
	s->ino = sb.st_ino;
	return 0;
}

static int count_others(const tc_attach *a, void *arg)
{
	if (a->alive && a->pid != (uint32_t)getpid())
		(*(uint32_t *)arg)++;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Snapshots (--snapshot-dir, --restore)                                */
/* ------------------------------------------------------------------ */

/* DIR/NAME.snap plus SUFFIX; false (logged) when it does not fit. */
static bool snap_path(char *buf, size_t cap, const char *dir, const char *name,
		      const char *suffix)
{
	if ((size_t)snprintf(buf, cap, "%s/%s.snap%s", dir, name, suffix) < cap)
		return true;
	logm(L_ERROR, "%s: snapshot path in %s too long", name, dir);
	return false;
}

/*
 * A segment removed while we swept it was removed on purpose (a reboot
 * stops the sweeper first): its snapshot becomes NAME.snap.removed, so that
 * --restore never brings it back.
 */
static void retire_snapshot(struct seg *s, const char *snap_dir)
{
	char from[PATH_MAX], to[PATH_MAX];

	if (!snap_dir || !s->snap_ns)
		return;
	s->snap_ns = 0;
	if (!snap_path(from, sizeof from, snap_dir, s->name, "") ||
	    !snap_path(to, sizeof to, snap_dir, s->name, ".removed"))
		return;
	if (rename(from, to) == 0)
		logm(L_INFO, "%s: removed; its snapshot is now %s", s->name, to);
}

/*
 * Before the first save of a segment: a snapshot taken of an earlier
 * segment of that name (saved before this one was created) that was not
 * restored into it is kept as NAME.snap.prev, never overwritten.
 */
static void keep_earlier_snapshot(struct seg *s, const char *path, const char *snap_dir)
{
	tc_snapshot_info si;
	tc_info ti;
	char prev[PATH_MAX];

	if (s->restored || tc_snapshot_stat(path, &si) || tc_get_info(s->c, &ti) ||
	    si.saved_ms >= ti.created_ms || !snap_path(prev, sizeof prev, snap_dir, s->name, ".prev"))
		return;
	if (rename(path, prev) == 0)
		logm(L_WARN, "%s: a snapshot of an earlier %s was not restored: kept as %s",
		     s->name, s->name, prev);
}

/*
 * The snapshot records the segment's permission bits itself; its owner is
 * recorded as the owner of the snapshot file: as root, the sweeper gives
 * the file the segment's uid and gid after each save, and --restore gives
 * them back to the segment it creates.  (Not root, the sweeper can only
 * create segments of its own user; the mode then decides who shares them.)
 */
static void record_owner(const char *name, const char *snap)
{
	char seg[TC_SEG_PATH_MAX];
	struct stat sb;

	if (geteuid() != 0)
		return;
	if (stat(seg_path(seg, sizeof seg, name), &sb) != 0)
		return;
	if (chown(snap, sb.st_uid, sb.st_gid) != 0)
		logm(L_WARN, "%s: cannot record the owner in %s: %s", name, snap, strerror(errno));
}

/* restore_owner - give segment NAME, just created from SNAP, SNAP's owner. */
static void restore_owner(const char *name, const char *snap)
{
	char seg[TC_SEG_PATH_MAX];
	struct stat sb;
	int fd;

	if (geteuid() != 0 || stat(snap, &sb) != 0 || (sb.st_uid == 0 && sb.st_gid == 0))
		return;
	fd = open(seg_path(seg, sizeof seg, name), O_RDWR | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 || fchown(fd, sb.st_uid, sb.st_gid) != 0)
		logm(L_WARN, "%s: cannot give it the owner of %s (uid %ld, gid %ld): %s", name, snap,
		     (long)sb.st_uid, (long)sb.st_gid, strerror(errno));
	else
		logm(L_DEBUG, "%s: owner uid %ld, gid %ld, as recorded", name, (long)sb.st_uid,
		     (long)sb.st_gid);
	if (fd >= 0)
		close(fd);
}

/* Save S (whose lease we hold) when its snapshot is due, or always with FORCE. */
static void snapshot_seg(struct seg *s, const struct cfg *cf, bool force)
{
	char path[PATH_MAX];
	tc_snapshot_report rep;
	uint64_t now = mono_ns();
	int rc;

	if (!cf->snap_dir || !s->c || !s->held)
		return;
	if (!force && s->snap_ns && now - s->snap_ns < cf->snap_every_ms * 1000000ull)
		return;
	if (!snap_path(path, sizeof path, cf->snap_dir, s->name, ""))
		return;
	if (!s->snap_ns)
		keep_earlier_snapshot(s, path, cf->snap_dir);
	rc = tc_snapshot_save(s->c, path, &rep);
	s->snap_ns = now ? now : 1;
	if (rc)
		logm(L_ERROR, "%s: snapshot to %s: %s", s->name, path, tc_strerror(rc));
	else
		logm(L_DEBUG, "%s: saved %" PRIu64 " keys to %s", s->name, rep.keys, path);
	if (!rc)
		record_owner(s->name, path);
}

/* Is NAME one the sweeper works on (all, or among the names given)? */
static bool wanted(const struct cfg *cf, const char *name)
{
	return !cf->named || seg_find(name, false) != NULL;
}

/*
 * Is T (".snap.tmp." and what follows, in a file name) a save's temporary
 * file: "XXXXXX" after it (earlier versions) or "PID.XXXXXX" (snapshot.c)?
 */
static bool tmp_suffix(const char *t)
{
	const char *p = t + strlen(".snap.tmp.");
	size_t digits = strspn(p, "0123456789");
	if (digits && p[digits] == '.')
		p += digits + 1;
	return strlen(p) == 6 && !strchr(p, '.');
}

/*
 * Remove temporary files of saves killed half way (an hour old or more):
 * a later save to the same name removes those of dead pids itself; this
 * catches the ones of segments no longer saved.
 */
static void clean_tmp(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	time_t now = time(NULL);

	while (d && (de = readdir(d)) != NULL) {
		char path[PATH_MAX];
		struct stat st;
		const char *t = strstr(de->d_name, ".snap.tmp.");

		if (!t || !tmp_suffix(t) ||
		    (size_t)snprintf(path, sizeof path, "%s/%s", dir, de->d_name) >= sizeof path ||
		    lstat(path, &st) != 0 || !S_ISREG(st.st_mode) || now - st.st_mtime < 3600)
			continue;
		if (unlink(path) == 0)
			logm(L_INFO, "removed %s, left by a save that was killed", path);
	}
	if (d)
		closedir(d);
}

/*
 * --restore: load every snapshot of the directory into its segment: a
 * missing segment is created from the snapshot's geometry; an existing one
 * created after the snapshot was saved (after a reboot, a strategy may
 * create its segment before we run) gets the snapshot's keys that it does
 * not have.  A segment older than its snapshot is the one saved: left alone.
 */
static int restore_all(const struct cfg *cf)
{
	DIR *d = opendir(cf->snap_dir);
	struct dirent *de;
	int failed = 0;

	if (!d) {
		logm(L_ERROR, "--restore: %s: %s", cf->snap_dir, strerror(errno));
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		char name[TC_NAME_MAX + 1], path[PATH_MAX];
		size_t n = strlen(de->d_name);
		tc_snapshot_info info;
		tc_snapshot_report rep;
		tc_cache *c = NULL;
		int rc;

		if (n <= 5 || n - 5 > TC_NAME_MAX || strcmp(de->d_name + n - 5, ".snap"))
			continue;
		memcpy(name, de->d_name, n - 5);
		name[n - 5] = '\0';
		if (!tc_name_valid(name) || !wanted(cf, name) ||
		    !snap_path(path, sizeof path, cf->snap_dir, name, ""))
			continue;
		rc = tc_snapshot_stat(path, &info);
		if (rc) {
			char why[200];

			logm(L_ERROR, "%s: snapshot %s: %s", name, path, rc == TC_ECORRUPT
			     ? snap_damage(path, why, sizeof why) : tc_strerror(rc));
			failed++;
			continue;
		}
		rc = create_like_snapshot(&c, name, &info);
		if (rc == 0)
			restore_owner(name, path);
		if (rc == -EEXIST) {
			tc_info ti;

			rc = tc_open(&c, name, &tool_attach);
			if (!rc && !(rc = tc_get_info(c, &ti)) && ti.created_ms <= info.saved_ms) {
				logm(L_DEBUG, "%s: exists and is older than its snapshot: left alone",
				     name);
				tc_close(c);
				continue;
			}
		}
		if (rc) {
			logm(L_ERROR, "%s: cannot create it to restore %s: %s", name, path,
			     tc_strerror(rc));
			failed++;
			continue;
		}
		rc = tc_snapshot_load(c, path, 0, &rep);
		if (rc) {
			logm(L_ERROR, "%s: restoring %s: %s (%" PRIu64 " keys loaded)", name, path,
			     tc_strerror(rc), rep.keys);
			failed++;
		} else {
			struct seg *s = seg_find(name, true);

			if (s)
				s->restored = true;
			logm(L_INFO, "%s: restored %" PRIu64 " keys from %s (%" PRIu64 " expired, %"
			     PRIu64 " present kept)", name, rep.keys, path, rep.expired, rep.kept);
		}
		tc_close(c);
	}
	closedir(d);
	return failed ? -1 : 0;
}

/*
 * audit_if_idle - once per idle period (no other live process attached),
 * run tc_audit: it returns the rare block that a process killed inside a
 * write's few-instruction window leaves unnamed, which no online pass can
 * tell from a block about to be published.  tc_audit itself refuses
 * (-EBUSY) if someone attached meanwhile.
 */
static void audit_if_idle(tc_cache *c, struct seg *s)
{
	tc_audit_report r;
	uint32_t others = 0;
	int rc;

	if (tc_attached(c, count_others, &others))
		return;
	if (others) {
		s->audited = false;
		return;
	}
	if (s->audited)
		return;
	memset(&r, 0, sizeof r);
	rc = tc_audit(c, &r);
	if (rc == -EBUSY)
		return;
	s->audited = true;
	if (rc) {
		if (rc != -ENOSYS)
			log_err_once(s, rc, "audit failed");
		return;
	}
	if (r.recovered || r.tentative_cleared || r.live_before != r.live_after)
		logm(L_INFO, "%s: idle audit recovered %" PRIu64 " blocks (%" PRIu64 " bytes), "
		     "cleared %" PRIu64 " half-inserts, live keys %" PRId64 " -> %" PRId64, s->name,
		     r.recovered, r.recovered_bytes, r.tentative_cleared, r.live_before,
		     r.live_after);
	else
		logm(L_DEBUG, "%s: idle audit: %" PRIu64 " blocks, all accounted for", s->name,
		     r.blocks);
}

/*
 * --run-timeout: a run active for longer than the timeout was left by a
 * strategy that died mid-tick (its next tc_run_start would get -EBUSY):
 * end it, that run only (tc_run_end_gen), so its memory comes back too.
 */
static void end_stale_run(tc_cache *c, struct seg *s, const struct cfg *cf)
{
	tc_anchor a;
	int64_t age;
	int rc;

	if (!cf->run_timeout_ms || tc_run_anchor(c, &a) != 0)
		return;
	age = tc_now_ms() - a.started_ms;
	if (age < 0 || (uint64_t)age < cf->run_timeout_ms)
		return;
	rc = tc_run_end_gen(c, a.generation);
	if (rc == 0)
		logm(L_WARN, "%s: ended run %" PRIu64 " (generation %" PRIu64 "), active for %" PRId64
		     " ms, started by pid %" PRIu32, s->name, a.run_id, a.generation, age,
		     a.starter_pid);
	else if (rc != TC_ENORUN && rc != TC_ECONFLICT)
		log_err_once(s, rc, "cannot end a stale run");
}

static enum outcome sweep_segment(struct seg *s, const struct cfg *cf)
{
	tc_cache *c;
	tc_stats st;
	tc_sweep_report tot, rep;
	uint64_t slots, chunks = 0, max_chunks, freed = 0, t0 = mono_ns();
	enum outcome out = SWEPT;
	int rc;

	rc = seg_attach(s);
	if (rc == -ENOENT)
		retire_snapshot(s, cf->snap_dir);
	if (rc) {
		log_err_once(s, rc, "cannot attach");
		return rc == -ENOENT ? MISSING : FAILED;
	}
	c = s->c;
	rc = take_lease(c, s, cf);
	if (rc == -EBUSY) {
		out = SKIPPED;
		goto out_close;
	}
	if (rc) {
		out = rc == -ESTALE ? MISSING : FAILED;
		goto out_close;
	}
	rc = tc_get_stats(c, &st);
	if (rc) {
		log_err_once(s, rc, "cannot read stats");
		out = rc == -ESTALE ? MISSING : FAILED;
		goto out_close;
	}
	slots = st.index_slots ? st.index_slots : st.max_entries;
	max_chunks = cf->budget ? slots / cf->budget + 2 : 1;
	memset(&tot, 0, sizeof tot);
	do {
		memset(&rep, 0, sizeof rep);
		rc = tc_sweep(c, cf->budget, &rep);
		if (rc) {
			log_err_once(s, rc, "sweep failed");
			out = rc == -ESTALE ? MISSING : FAILED;
			goto out_close;
		}
		tot.scanned += rep.scanned;
		tot.expired += rep.expired;
		tot.reclaimed += rep.reclaimed;
		tot.reclaimed_bytes += rep.reclaimed_bytes;
		tot.retired_left = rep.retired_left;
		tot.readers_cleared += rep.readers_cleared;
		tot.inflight_freed += rep.inflight_freed;
		tot.tentative_cleared += rep.tentative_cleared;
		tot.attach_cleared += rep.attach_cleared;
		chunks++;
		if (!cf->budget || !rep.scanned || tot.scanned >= slots || chunks >= max_chunks)
			break;
		/* Between chunks: let the strategies run, and show we are alive. */
		sched_yield();
		if (s->held && tc_lease_renew(c)) {
			s->held = false;
			logm(L_WARN, "%s: lost the sweeper lease mid-pass; stopping", s->name);
			out = SKIPPED;
			break;
		}
	} while (true);
	if (tot.retired_left && out == SWEPT) {
		rc = tc_reclaim(c, &freed);
		if (rc && rc != -ENOSYS)
			log_err_once(s, rc, "reclaim failed");
	}
	if (cf->audit && out == SWEPT)
		audit_if_idle(c, s);
	if (s->held && out == SWEPT) {
		end_stale_run(c, s, cf);
		tc_lease_renew(c);
		if (cf->snap_dir) {
			snapshot_seg(s, cf, cf->once);
			tc_lease_renew(c);
		}
	}
	s->last_err = 0;
	s->passes++;
	if (tot.expired || tot.reclaimed || freed || tot.readers_cleared || tot.inflight_freed ||
	    tot.tentative_cleared || tot.attach_cleared)
		logm(L_INFO, "%s: expired %" PRIu64 ", reclaimed %" PRIu64 " blocks (%" PRIu64
		     " bytes) + %" PRIu64 " after grace, cleared %" PRIu32 " dead reader slots, %"
		     PRIu32 " in-flight allocations, %" PRIu32 " half-inserts, %" PRIu32
		     " attach records", s->name, tot.expired, tot.reclaimed, tot.reclaimed_bytes,
		     freed, tot.readers_cleared, tot.inflight_freed, tot.tentative_cleared,
		     tot.attach_cleared);
	logm(L_DEBUG, "%s: pass %" PRIu64 ": %" PRIu64 " slots in %" PRIu64 " chunks, %" PRIu64
	     " retired left, %.3f ms", s->name, s->passes, tot.scanned, chunks, tot.retired_left,
	     (double)(mono_ns() - t0) / 1e6);
out_close:
	/* Keep the handle only while we are this segment's sweeper. */
	if (out != SWEPT || !s->held)
		seg_drop(s);
	return out;
}

/* ------------------------------------------------------------------ */
/* Metrics (--metrics-textfile, --metrics-listen)                       */
/* ------------------------------------------------------------------ */

/* The names given on the command line (never changed after start), for the
 * HTTP thread; NULL when the sweeper works on every segment. */
static char **fixed_names;
static size_t nfixed;

/* metric_names - the segments to export, sorted: the names given, or every
 * segment in /dev/shm now.  Free with seg_names_free.  Thread-safe. */
static char **metric_names(size_t *n)
{
	char **v;

	if (!fixed_names)
		return seg_names(NULL, n);
	*n = 0;
	v = calloc(nfixed + 1, sizeof *v);
	for (size_t i = 0; v && i < nfixed; i++)
		if ((v[*n] = strdup(fixed_names[i])))
			(*n)++;
	return v;
}

/* write_textfile - DIR/tickcache.prom, whole or not at all (temp + rename). */
static void write_textfile(const char *dir)
{
	char tmp[PATH_MAX], path[PATH_MAX];
	size_t n;
	char **names;
	FILE *f;
	int fd, rc;

	if ((size_t)snprintf(path, sizeof path, "%s/tickcache.prom", dir) >= sizeof path ||
	    (size_t)snprintf(tmp, sizeof tmp, "%s/.tickcache.prom.XXXXXX", dir) >= sizeof tmp)
		return;
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		logm(L_ERROR, "--metrics-textfile: %s: %s", tmp, strerror(errno));
		return;
	}
	/* node_exporter reads it as another user, most likely. */
	if (fchmod(fd, 0644) != 0 || !(f = fdopen(fd, "w"))) {
		logm(L_ERROR, "--metrics-textfile: %s: %s", tmp, strerror(errno));
		close(fd);
		unlink(tmp);
		return;
	}
	names = metric_names(&n);
	rc = metrics_write(f, names, n);
	seg_names_free(names);
	if (fclose(f) != 0 && !rc)
		rc = -errno;
	if (!rc && rename(tmp, path) != 0)
		rc = -errno;
	if (rc) {
		logm(L_ERROR, "--metrics-textfile: writing %s: %s", path, strerror(-rc));
		unlink(tmp);
	}
}

#ifdef TC_HAVE_MHD
static enum MHD_Result serve(void *cls, struct MHD_Connection *conn, const char *url,
			     const char *method, const char *version, const char *upload,
			     size_t *upload_len, void **state)
{
	static const char not_found[] = "not found: try /metrics\n";
	static const char bad_method[] = "only GET and HEAD\n";
	struct MHD_Response *resp;
	enum MHD_Result ret;
	unsigned status = MHD_HTTP_OK;
	char *body = NULL, **names;
	size_t len = 0, n;
	FILE *f;

	(void)cls;
	(void)version;
	(void)upload;
	(void)upload_len;
	(void)state;
	if (strcmp(method, "GET") && strcmp(method, "HEAD")) {
		status = MHD_HTTP_METHOD_NOT_ALLOWED;
		resp = MHD_create_response_from_buffer(sizeof bad_method - 1, (void *)bad_method,
						       MHD_RESPMEM_PERSISTENT);
	} else if (strcmp(url, "/metrics")) {
		status = MHD_HTTP_NOT_FOUND;
		resp = MHD_create_response_from_buffer(sizeof not_found - 1, (void *)not_found,
						       MHD_RESPMEM_PERSISTENT);
	} else {
		f = open_memstream(&body, &len);
		if (!f)
			return MHD_NO;
		names = metric_names(&n);
		metrics_write(f, names, n);
		seg_names_free(names);
		if (fclose(f) != 0) {
			free(body);
			return MHD_NO;
		}
		resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
		if (resp)
			MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
						"text/plain; version=0.0.4; charset=utf-8");
		else
			free(body);
	}
	if (!resp)
		return MHD_NO;
	ret = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return ret;
}
#endif

/*
 * parse_listen - "[ADDR:]PORT" (ADDR an IPv4 address or [IPv6]) into SA;
 * the address defaults to 127.0.0.1: metrics are not for the whole network
 * unless asked.
 */
static bool parse_listen(const char *arg, struct sockaddr_storage *sa, socklen_t *salen)
{
	char host[128] = "127.0.0.1";
	const char *colon = strrchr(arg, ':'), *port = colon ? colon + 1 : arg;
	uint64_t p;

	memset(sa, 0, sizeof *sa);
	if (!parse_u64(port, &p) || p > 65535 || (colon && (size_t)(colon - arg) >= sizeof host))
		return false;
	if (colon) {
		memcpy(host, arg, (size_t)(colon - arg));
		host[colon - arg] = '\0';
	}
	if (host[0] == '[' && host[strlen(host) - 1] == ']') {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)sa;

		host[strlen(host) - 1] = '\0';
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)p);
		*salen = sizeof *s6;
		return inet_pton(AF_INET6, host + 1, &s6->sin6_addr) == 1;
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)sa;

		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)p);
		*salen = sizeof *s4;
		return inet_pton(AF_INET, host, &s4->sin_addr) == 1;
	}
}

/* release_all - give back every lease we hold (at exit). */
static void release_all(void)
{
	for (size_t i = 0; i < nsegs; i++) {
		if (segs[i].held && segs[i].c)
			tc_lease_release(segs[i].c);
		seg_drop(&segs[i]);
	}
}

/* ------------------------------------------------------------------ */
/* Process setup                                                        */
/* ------------------------------------------------------------------ */

static int pidfile_fd = -1;
static const char *pidfile_path;

static int pidfile_lock(const char *path)
{
	char buf[32];
	ssize_t n;
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);

	if (fd < 0) {
		fprintf(stderr, "%s: cannot open pidfile %s: %s\n", prog, path, strerror(errno));
		return EX_TC_SEGMENT;
	}
	if (flock(fd, LOCK_EX | LOCK_NB)) {
		n = read(fd, buf, sizeof buf - 1);
		buf[n > 0 ? n : 0] = 0;
		buf[strcspn(buf, "\n")] = 0;
		fprintf(stderr, "%s: already running (pid %s, pidfile %s)\n", prog,
			*buf ? buf : "?", path);
		close(fd);
		return EX_TC_INUSE;
	}
	pidfile_fd = fd;
	pidfile_path = path;
	return 0;
}

static void pidfile_write(void)
{
	char buf[32];
	int n;

	if (pidfile_fd < 0)
		return;
	n = snprintf(buf, sizeof buf, "%ld\n", (long)getpid());
	if (ftruncate(pidfile_fd, 0) || pwrite(pidfile_fd, buf, (size_t)n, 0) != n)
		logm(L_WARN, "cannot write pidfile %s: %s", pidfile_path, strerror(errno));
}

static void pidfile_remove(void)
{
	if (pidfile_fd < 0)
		return;
	unlink(pidfile_path);
	close(pidfile_fd);
	pidfile_fd = -1;
}

static int daemonise(void)
{
	pid_t pid = fork();
	int fd;

	if (pid < 0)
		return -errno;
	if (pid > 0)
		_exit(0);
	if (setsid() < 0)
		return -errno;
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid > 0)
		_exit(0);
	if (chdir("/"))
		return -errno;
	/* Drop every descriptor inherited from the caller but the pidfile's
	 * and the log file's. */
	for (int i = STDERR_FILENO + 1; i < 1024; i++)
		if (i != pidfile_fd && (!log_fp || i != fileno(log_fp)))
			close(i);
	fd = open("/dev/null", O_RDWR);
	if (fd >= 0) {
		dup2(fd, STDIN_FILENO);
		dup2(fd, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
		if (fd > STDERR_FILENO)
			close(fd);
	}
	openlog(prog, LOG_PID, LOG_DAEMON);
	use_syslog = true;
	return 0;
}

static const struct option longopts[] = {
	{ "interval", required_argument, NULL, 'i' },
	{ "once", no_argument, NULL, '1' },
	{ "foreground", no_argument, NULL, 'f' },
	{ "pidfile", required_argument, NULL, 'p' },
	{ "log-level", required_argument, NULL, 'l' },
	{ "budget", required_argument, NULL, 'b' },
	{ "stale", required_argument, NULL, 's' },
	{ "no-audit", no_argument, NULL, 'A' },
	{ "snapshot-dir", required_argument, NULL, 'd' },
	{ "snapshot-interval", required_argument, NULL, 'S' },
	{ "restore", no_argument, NULL, 'R' },
	{ "run-timeout", required_argument, NULL, 'T' },
	{ "log-file", required_argument, NULL, 'L' },
	{ "metrics-textfile", required_argument, NULL, 'M' },
	{ "metrics-listen", required_argument, NULL, 'H' },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 },
};

/* The command line's settings that are not the sweep's (struct cfg). */
struct opts {
	bool foreground, stale_set;
	const char *pidfile, *log_path, *listen_arg;
	char *textfile_dir;
	struct sockaddr_storage listen_sa;
	socklen_t listen_len;
};

/* The options into CF and O; -1 to go on, else the exit code (--help and
 * --version: 0). */
static int parse_opts(int argc, char **argv, struct cfg *cf, struct opts *o)
{
	int opt;

	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":i:1fp:l:b:s:d:AhV", longopts, NULL)) != -1) {
		switch (opt) {
		case 'i':
			if (!parse_ms(optarg, &cf->interval_ms) || !cf->interval_ms)
				return usage_error("--interval wants milliseconds > 0, not '%s'", optarg);
			break;
		case '1':
			cf->once = true;
			break;
		case 'f':
			o->foreground = true;
			break;
		case 'p':
			o->pidfile = optarg;
			break;
		case 'l':
			if (!strcmp(optarg, "error"))
				log_level = L_ERROR;
			else if (!strcmp(optarg, "warn") || !strcmp(optarg, "warning"))
				log_level = L_WARN;
			else if (!strcmp(optarg, "info"))
				log_level = L_INFO;
			else if (!strcmp(optarg, "debug"))
				log_level = L_DEBUG;
			else
				return usage_error("--log-level wants error, warn, info or debug, not '%s'",
						   optarg);
			break;
		case 'b':
			if (!parse_size(optarg, &cf->budget))
				return usage_error("--budget wants a number of index slots, not '%s'",
						   optarg);
			break;
		case 's':
			if (!parse_ms(optarg, &cf->stale_ms) || !cf->stale_ms)
				return usage_error("--stale wants milliseconds > 0, not '%s'", optarg);
			o->stale_set = true;
			break;
		case 'A':
			cf->audit = false;
			break;
		case 'd':
			/* Absolute: a daemon works from "/". */
			free((void *)cf->snap_dir);
			cf->snap_dir = realpath(optarg, NULL);
			if (!cf->snap_dir)
				return usage_error("--snapshot-dir %s: %s", optarg, strerror(errno));
			break;
		case 'S':
			if (!parse_ms(optarg, &cf->snap_every_ms) || !cf->snap_every_ms)
				return usage_error("--snapshot-interval wants milliseconds > 0, not '%s'",
						   optarg);
			break;
		case 'R':
			cf->restore = true;
			break;
		case 'T':
			if (!parse_ms(optarg, &cf->run_timeout_ms) || !cf->run_timeout_ms)
				return usage_error("--run-timeout wants milliseconds > 0, not '%s'",
						   optarg);
			break;
		case 'L':
			o->log_path = optarg;
			break;
		case 'M':
			free(o->textfile_dir);
			o->textfile_dir = realpath(optarg, NULL);
			if (!o->textfile_dir)
				return usage_error("--metrics-textfile %s: %s", optarg, strerror(errno));
			break;
		case 'H':
			if (!parse_listen(optarg, &o->listen_sa, &o->listen_len))
				return usage_error("--metrics-listen wants [ADDR:]PORT (ADDR IPv4 or [IPv6]), "
						   "not '%s'", optarg);
			o->listen_arg = optarg;
			break;
		case 'h':
			fputs(usage_text, stdout);
			return 0;
		case 'V':
			printf("shm-sweeper (tickcache) %s\n", tc_version());
			return 0;
		case ':':
			return usage_error("option '%s' needs a value", argv[optind - 1]);
		default:
			if (optopt && optopt != '?')
				return usage_error("unknown option '-%c'", optopt);
			return usage_error("unknown option '%s'", argv[optind - 1]);
		}
	}
	return -1;
}

/* The options checked against each other, the named segments; -1 to go on,
 * else the exit code. */
static int check_args(int argc, char **argv, struct cfg *cf, const struct opts *o)
{
#ifndef TC_HAVE_MHD
	if (o->listen_arg)
		return usage_error("--metrics-listen: this shm-sweeper was built without libmicrohttpd "
				   "(install libmicrohttpd-dev and rebuild)");
#endif
	if (!o->stale_set)
		cf->stale_ms = cf->interval_ms * 3 > 5000 ? cf->interval_ms * 3 : 5000;
	if (cf->restore && !cf->snap_dir)
		return usage_error("--restore needs --snapshot-dir");
	for (int i = optind; i < argc; i++) {
		if (!tc_name_valid(argv[i]))
			return usage_error("invalid segment name '%s'", argv[i]);
		if (!seg_find(argv[i], true))
			return EX_TC_SEGMENT;
		cf->named = true;
	}
	if (cf->named) {
		fixed_names = argv + optind;
		nfixed = (size_t)(argc - optind);
	}
	return -1;
}

/* --log-file: append to the file ("-": stderr); 0 or the exit code. */
static int open_log(const struct opts *o)
{
	if (o->log_path && strcmp(o->log_path, "-")) {
		log_fp = fopen(o->log_path, "ae");
		if (!log_fp) {
			fprintf(stderr, "%s: --log-file %s: %s\n", prog, o->log_path, strerror(errno));
			return EX_TC_SEGMENT;
		}
		setvbuf(log_fp, NULL, _IOLBF, 0);
	} else if (o->log_path) {
		log_fp = stderr;
	}
	return 0;
}

#ifdef TC_HAVE_MHD
/* --metrics-listen: serve /metrics from a thread; NULL when it cannot listen. */
static struct MHD_Daemon *start_metrics(const struct opts *o)
{
	const union MHD_DaemonInfo *di;
	struct MHD_Daemon *mhd;

	mhd = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL, serve, NULL,
			       MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&o->listen_sa,
			       MHD_OPTION_CONNECTION_LIMIT, 16u,
			       MHD_OPTION_CONNECTION_TIMEOUT, 10u, MHD_OPTION_END);
	if (!mhd) {
		logm(L_ERROR, "--metrics-listen %s: cannot listen (address in use, or not "
		     "an address of this host?)", o->listen_arg);
		return NULL;
	}
	di = MHD_get_daemon_info(mhd, MHD_DAEMON_INFO_BIND_PORT);
	logm(L_INFO, "metrics at http://%s/metrics (port %u)", o->listen_arg,
	     di ? (unsigned)di->port : 0u);
	return mhd;
}
#endif

/* Sweep until told to stop (one pass with --once); the exit code of --once. */
static int run_passes(struct cfg *cf, const char *textfile_dir, int ex)
{
	do {
		bool missing = false, failed = false, skipped = false;

		g_rescan = 0;
		if (!cf->named)
			scan_dir(cf->snap_dir);
		for (size_t i = 0; i < nsegs; i++) {
			switch (sweep_segment(&segs[i], cf)) {
			case SWEPT: break;
			case SKIPPED: skipped = true; break;
			case MISSING: missing |= cf->named; break; /* else: removed meanwhile */
			case FAILED: failed = true; break;
			}
			if (g_stop && !cf->once)
				break;
		}
		if (textfile_dir)
			write_textfile(textfile_dir);
		if (cf->once) {
			if (!ex)
				ex = failed ? EX_TC_SEGMENT : missing ? EX_TC_NOTFOUND
				     : skipped ? EX_TC_INUSE : 0;
			break;
		}
		/* Sleep until the next pass, SIGHUP (rescan now) or SIGTERM. */
		for (uint64_t end = mono_ns() + cf->interval_ms * 1000000ull;
		     !g_stop && !g_rescan && mono_ns() < end;) {
			uint64_t left = (end - mono_ns()) / 1000000ull + 1;

			sleep_ms(left > 200 ? 200 : left);
		}
		if (g_rescan)
			logm(L_INFO, "SIGHUP: rescanning segments");
	} while (!g_stop);
	return ex;
}

int main(int argc, char **argv)
{
	struct cfg cf = { .interval_ms = 1000, .budget = 4096, .audit = true,
			  .snap_every_ms = 60000 };
	struct opts o = { .foreground = false };
#ifdef TC_HAVE_MHD
	struct MHD_Daemon *mhd = NULL;
#endif
	struct sigaction sa;
	int ex;

	tool_name = prog;
	ex = parse_opts(argc, argv, &cf, &o);
	if (ex < 0)
		ex = check_args(argc, argv, &cf, &o);
	if (ex >= 0)
		return ex;
	if ((ex = open_log(&o)))
		return ex;
	if (o.pidfile && (ex = pidfile_lock(o.pidfile)))
		return ex;
	if (!o.foreground && !cf.once) {
		int rc = daemonise();

		if (rc) {
			fprintf(stderr, "%s: cannot daemonise: %s\n", prog, strerror(-rc));
			return EX_TC_SEGMENT;
		}
	}
	pidfile_write();

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_stop;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = on_hup;
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	logm(cf.once ? L_DEBUG : L_INFO, "started (%s, interval %" PRIu64 " ms, budget %" PRIu64
	     ", stale %" PRIu64 " ms, libtickcache %s)",
	     cf.named ? "named segments" : "all segments in " TC_SHM_DIR, cf.interval_ms, cf.budget,
	     cf.stale_ms, tc_version());
#ifdef TC_HAVE_MHD
	/* After daemonise: its thread would not survive the fork. */
	if (o.listen_arg && !(mhd = start_metrics(&o))) {
		release_all();
		pidfile_remove();
		return EX_TC_SEGMENT;
	}
#endif
	if (cf.snap_dir)
		clean_tmp(cf.snap_dir);
	if (cf.restore && restore_all(&cf) && cf.once)
		ex = EX_TC_SEGMENT;
	ex = run_passes(&cf, o.textfile_dir, ex);

	/* A last snapshot of every segment we sweep (--once saved already). */
	for (size_t i = 0; i < nsegs && !cf.once; i++)
		snapshot_seg(&segs[i], &cf, true);
#ifdef TC_HAVE_MHD
	if (mhd)
		MHD_stop_daemon(mhd);
#endif
	release_all();
	logm(cf.once ? L_DEBUG : L_INFO, "stopping");
	pidfile_remove();
	free(segs);
	free((void *)cf.snap_dir);
	free(o.textfile_dir);
	if (log_fp && log_fp != stderr)
		fclose(log_fp);
	return ex;
}
