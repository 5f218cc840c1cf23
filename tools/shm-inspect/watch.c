/* SPDX-License-Identifier: MIT */
/*
 * watch.c - the watch command: a live view of one segment, like top.
 */
#include "inspect.h"

static volatile sig_atomic_t g_stop;

static void on_stop(int sig)
{
	(void)sig;
	g_stop = 1;
}

static bool seg_exists(const char *name)
{
	char path[TC_SEG_PATH_MAX];
	struct stat sb;

	return stat(seg_path(path, sizeof path, name), &sb) == 0;
}

static double per_s(uint64_t now, uint64_t before, double secs)
{
	return secs > 0 && now >= before ? (double)(now - before) / secs : 0.0;
}

/* One frame of watch: this interval's counters against the last one's. */
struct frame {
	const char *name;
	uint64_t interval;              /* ms, as asked */
	const tc_stats *prev, *st;
	double secs;                    /* the interval measured */
	double ilat;                    /* mean latency of its samples, ns; < 0: none */
	struct counts att;
	uint32_t lpid;                  /* the sweeper, 0 = none */
	uint64_t lage;
	bool lalive;
};

static void frame_json(const struct frame *f)
{
	const tc_stats *st = f->st, *prev = f->prev;
	double secs = f->secs;

	jobj(NULL);
	jstr("name", f->name);
	ji64("ts_ms", tc_now_ms());
	ju64("interval_ms", (uint64_t)(secs * 1000.0 + 0.5));
	jdbl("ops_per_s", per_s(st->ops, prev->ops, secs));
	jdbl("hits_per_s", per_s(st->hits, prev->hits, secs));
	jdbl("misses_per_s", per_s(st->misses, prev->misses, secs));
	jdbl("sets_per_s", per_s(st->sets + st->adds, prev->sets + prev->adds, secs));
	jdbl("deletes_per_s", per_s(st->deletes, prev->deletes, secs));
	jdbl("expirations_per_s", per_s(st->expirations, prev->expirations, secs));
	jdbl("evictions_per_s", per_s(st->evictions, prev->evictions, secs));
	jdbl("hit_rate", hit_rate(st->hits, st->misses));
	if (f->ilat < 0)
		jnull("lat_mean_ns");
	else
		jdbl("lat_mean_ns", f->ilat);
	ju64("slow_ops", st->slow_ops);
	ju64("entries", st->entries);
	ju64("max_entries", st->max_entries);
	ju64("memory_used", st->memory_used);
	ju64("memory_bytes", st->memory_bytes);
	ju64("readers", st->readers);
	ju64("attached", f->att.n);
	ju64("epoch_lag", st->epoch_lag);
	if (f->lpid)
		ju64("sweeper_pid", f->lpid);
	else
		jnull("sweeper_pid");
	jbool("sweeper_alive", f->lpid && f->lalive);
	jobj_end();
}

static void frame_human(const struct frame *f)
{
	const tc_stats *st = f->st, *prev = f->prev;
	double secs = f->secs;
	char b1[32], b2[32], b3[32], b4[32];

	printf("tickcache %s   every %" PRIu64 " ms   %s   up %s\n", f->name, f->interval,
	       fmt_time(b1, sizeof b1, tc_now_ms()), fmt_duration(b2, sizeof b2, st->uptime_ms));
	printf("ops/s %12.0f   hits/s %10.0f   misses/s %10.0f   hit rate %6.2f%%\n",
	       per_s(st->ops, prev->ops, secs), per_s(st->hits, prev->hits, secs),
	       per_s(st->misses, prev->misses, secs), hit_rate(st->hits, st->misses) * 100.0);
	printf("sets/s %11.0f   deletes/s %7.0f   expired/s %9.0f   evicted/s %8.0f\n",
	       per_s(st->sets + st->adds, prev->sets + prev->adds, secs),
	       per_s(st->deletes, prev->deletes, secs),
	       per_s(st->expirations, prev->expirations, secs),
	       per_s(st->evictions, prev->evictions, secs));
	if (f->ilat < 0)
		snprintf(b2, sizeof b2, "-");
	else
		snprintf(b2, sizeof b2, "%.0f ns", f->ilat);
	printf("latency  mean %s (sampled, this interval)   slow ops %" PRIu64 " (+%" PRIu64
	       ", > %" PRIu64 " ns)\n", b2, st->slow_ops, st->slow_ops - prev->slow_ops,
	       st->slow_threshold_ns);
	printf("entries  %" PRIu64 " / %" PRIu64 " (%.1f%%)\n", st->entries, st->max_entries,
	       st->max_entries ? 100.0 * (double)st->entries / (double)st->max_entries : 0.0);
	printf("memory   %s / %s used, %s retired\n", fmt_size(b3, sizeof b3, st->memory_used),
	       fmt_size(b4, sizeof b4, st->memory_bytes),
	       fmt_size(b1, sizeof b1, st->memory_retired));
	printf("readers  %" PRIu32 " / %" PRIu32 " slots, %" PRIu32
	       " other processes, epoch %" PRIu64 " lag %" PRIu64 "\n", st->readers,
	       st->max_readers, f->att.n, st->epoch, st->epoch_lag);
	if (f->lpid)
		printf("sweeper  pid %" PRIu32 " %s, heartbeat %" PRIu64 " ms ago\n", f->lpid,
		       f->lalive ? "alive" : "DEAD", f->lage);
	else
		printf("sweeper  none\n");
}

/* Sleep INTERVAL ms in steps of at most 100 ms; false when told to stop. */
static bool wait_interval(uint64_t interval)
{
	uint64_t end = mono_ns() + interval * 1000000ull;

	while (!g_stop) {
		uint64_t now = mono_ns();

		if (now >= end)
			break;
		sleep_ms((end - now) / 1000000ull + 1 > 100 ? 100 : (end - now) / 1000000ull + 1);
	}
	return !g_stop;
}

/* The mean latency of the samples taken between PREV and ST; -1 for none. */
static double interval_latency(const tc_stats *prev, const tc_stats *st)
{
	double ilat;

	if (st->lat_samples <= prev->lat_samples)
		return -1;
	ilat = ((double)st->lat_mean_ns * (double)st->lat_samples -
		(double)prev->lat_mean_ns * (double)prev->lat_samples) /
	       (double)(st->lat_samples - prev->lat_samples);
	return ilat < 0 ? 0 : ilat;
}

int cmd_watch(const char *name, uint64_t interval, uint64_t count)
{
	tc_cache *c;
	tc_stats prev, st;
	uint64_t tprev, t, frames = 0;
	bool tty = isatty(STDOUT_FILENO) && !g_json;
	struct sigaction sa;
	int rc, ex;

	if ((ex = open_seg(name, &c)))
		return ex;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_stop;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);

	rc = tc_get_stats(c, &prev);
	tprev = mono_ns();
	if (rc) {
		ex = fail(rc, "cannot read segment '%s'", name);
		goto out;
	}
	while (!g_stop && (!count || frames < count)) {
		struct frame f = { .name = name, .interval = interval, .prev = &prev, .st = &st };

		/* The first frame comes at once; later ones after the interval. */
		if (frames && !wait_interval(interval))
			break;
		if (!seg_exists(name)) {
			ex = fail(-ENOENT, "segment '%s' was removed", name);
			goto out;
		}
		rc = tc_get_stats(c, &st);
		t = mono_ns();
		if (rc == -ESTALE) {
			ex = fail(-ENOENT, "segment '%s' was removed", name);
			goto out;
		}
		if (rc) {
			ex = fail(rc, "cannot read segment '%s'", name);
			goto out;
		}
		if (tc_lease_holder(c, &f.lpid, &f.lage, &f.lalive))
			f.lpid = 0;
		f.secs = (double)(t - tprev) / 1e9;
		f.ilat = interval_latency(&prev, &st);
		other_attached(c, 0, &f.att);
		if (g_json) {
			frame_json(&f);
		} else {
			if (tty)
				fputs("\033[H\033[2J", stdout);
			else if (frames)
				putchar('\n');
			frame_human(&f);
		}
		if (fflush(stdout) == EOF)
			break; /* the reader of our output went away */
		prev = st;
		tprev = t;
		frames++;
	}
out:
	tc_close(c);
	return ex;
}
