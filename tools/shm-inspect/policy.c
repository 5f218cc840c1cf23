/* SPDX-License-Identifier: MIT */
/*
 * policy.c - TTL policies (ttl NAME [PREFIX ...]) and point-in-time runs
 * (runs).
 */
#include "inspect.h"

struct policy {
	char prefix[TC_POLICY_PREFIX_MAX + 1];
	uint64_t ttl_ms;
};

struct policies {
	struct policy v[TC_POLICY_MAX_ENTRIES];
	int n;
};

static int collect_policy(const char *prefix, uint64_t ttl_ms, void *arg)
{
	struct policies *p = arg;

	if (p->n >= TC_POLICY_MAX_ENTRIES)
		return 1;
	snprintf(p->v[p->n].prefix, sizeof p->v[p->n].prefix, "%s", prefix);
	p->v[p->n].ttl_ms = ttl_ms;
	p->n++;
	return 0;
}

static int policy_cmp(const void *a, const void *b)
{
	return strcmp(((const struct policy *)a)->prefix, ((const struct policy *)b)->prefix);
}

int cmd_ttl(const char *name, const char *prefix, const char *ms_arg, bool del,
	    const char *load)
{
	tc_cache *c;
	tc_info info;
	uint64_t ms = 0;
	int rc, ex;

	if (load && (prefix || del))
		return usage_error("ttl: --load takes no PREFIX");
	if (del && (!prefix || ms_arg))
		return usage_error("ttl: --del needs PREFIX and no MS");
	if (prefix && !del && !ms_arg)
		return usage_error("ttl: PREFIX needs MS (or --del)");
	if (ms_arg && !parse_ms(ms_arg, &ms))
		return usage_error("ttl: bad duration '%s'", ms_arg);
	if ((ex = open_seg(name, &c)))
		return ex;
	if (load) {
		unsigned bad = 0;

		rc = tc_ttl_policy_load_ex(c, load, &bad);
		if (rc && bad) {
			ex = fail(rc, "%s:%u: bad line (want 'prefix = ttl_ms'), nothing applied",
				  load, bad);
		} else if (rc == -ENOENT) {
			ex = fail(rc, "%s: no such file", load);
		} else if (rc) {
			ex = fail(rc, "cannot load TTL policies from %s", load);
		} else if (g_json) {
			jobj(NULL);
			jbool("ok", true);
			jstr("loaded", load);
			jobj_end();
		} else {
			printf("loaded %s\n", load);
		}
	} else if (del) {
		rc = tc_ttl_policy_del(c, prefix);
		if (rc == -ENOENT)
			ex = fail(rc, "no TTL policy for prefix '%s'", prefix);
		else if (rc)
			ex = fail(rc, "cannot delete TTL policy '%s'", prefix);
		else if (g_json) {
			jobj(NULL);
			jbool("ok", true);
			jstr("deleted", prefix);
			jobj_end();
		} else {
			printf("deleted %s\n", prefix);
		}
	} else if (prefix) {
		rc = tc_ttl_policy_set(c, prefix, ms);
		if (rc)
			ex = fail(rc, "cannot set TTL policy '%s'", prefix);
		else if (g_json) {
			jobj(NULL);
			jbool("ok", true);
			jstr("prefix", prefix);
			ju64("ttl_ms", ms);
			jobj_end();
		} else {
			printf("OK\n");
		}
	} else {
		static struct policies pol;

		pol.n = 0;
		rc = tc_get_info(c, &info);
		if (!rc)
			rc = tc_ttl_policy_list(c, collect_policy, &pol);
		if (rc) {
			ex = fail(rc, "cannot read the TTL policies of '%s'", name);
			goto out;
		}
		qsort(pol.v, (size_t)pol.n, sizeof pol.v[0], policy_cmp);
		if (g_json) {
			jobj(NULL);
			ju64("default_ttl_ms", info.default_ttl_ms);
			jarr("policies");
			for (int i = 0; i < pol.n; i++) {
				jobj(NULL);
				jstr("prefix", pol.v[i].prefix);
				ju64("ttl_ms", pol.v[i].ttl_ms);
				jobj_end();
			}
			jarr_end();
			jobj_end();
		} else {
			printf("%-40s %12s\n", "PREFIX", "TTL_MS");
			for (int i = 0; i < pol.n; i++)
				printf("%-40s %12" PRIu64 "%s\n", pol.v[i].prefix, pol.v[i].ttl_ms,
				       pol.v[i].ttl_ms ? "" : " (never)");
			printf("%-40s %12" PRIu64 "%s\n", "(default)", info.default_ttl_ms,
			       info.default_ttl_ms ? "" : " (never)");
		}
	}
out:
	tc_close(c);
	return ex;
}

struct dtokeys {
	struct keyset ks;
};

static int collect_dto_key(const void *key, size_t klen, size_t count, void *arg)
{
	struct dtokeys *d = arg;
	tc_meta m;

	if (d->ks.n >= 4096)
		return 1;
	memset(&m, 0, sizeof m);
	m.len = count;
	return collect_key(key, klen, &m, &d->ks);
}

int cmd_runs(const char *name, bool end)
{
	static struct dtokeys dk;
	tc_cache *c;
	tc_anchor a;
	char b1[40], b2[32];
	int64_t age = 0;
	bool alive = false;
	int rc, ex;

	if ((ex = open_seg(name, &c)))
		return ex;
	rc = tc_run_anchor(c, &a);
	if (rc == 0) {
		/* Both read from the segment, so either may be a scribble: an
		 * age that does not fit saturates (never a signed overflow), and
		 * a pid past the kernel's PID_MAX_LIMIT (2^22) is no process
		 * (kill() would take 0xffffffff as -1: "every process"). */
		if (__builtin_sub_overflow(tc_now_ms(), a.started_ms, &age))
			age = a.started_ms < 0 ? INT64_MAX : INT64_MIN;
		alive = a.starter_pid && a.starter_pid <= (1u << 22) &&
			(kill((pid_t)a.starter_pid, 0) == 0 || errno == EPERM);
	}
	if (rc && rc != TC_ENORUN) {
		ex = fail(rc, "cannot read the run of '%s'", name);
		goto out;
	}
	if (end) {
		if (rc == TC_ENORUN) {
			ex = fail(rc, "no active run in '%s'", name);
			goto out;
		}
		/* This run only: never a newer one started since we looked. */
		rc = tc_run_end_gen(c, a.generation);
		if (rc) {
			ex = fail(rc, "cannot end run %" PRIu64 " of '%s'", a.run_id, name);
			goto out;
		}
	}
	if (rc != TC_ENORUN && !end) {
		int krc = tc_dto_keys(c, collect_dto_key, &dk);

		if (krc && krc != TC_ENORUN && krc != 1) {
			ex = fail(krc, "cannot list the DTO keys of '%s'", name);
			goto out;
		}
		if (dk.ks.n)
			qsort(dk.ks.v, dk.ks.n, sizeof *dk.ks.v, keyrec_cmp);
	}
	if (g_json) {
		jobj(NULL);
		jbool("active", rc != TC_ENORUN && !end);
		if (rc == TC_ENORUN) {
			jnull("run_id");
			jnull("ts_ns");
			jnull("generation");
			jnull("started_ms");
			jnull("age_ms");
			jnull("starter_pid");
			jnull("starter_alive");
		} else {
			ju64("run_id", a.run_id);
			ji64("ts_ns", a.ts_ns);
			ju64("generation", a.generation);
			ji64("started_ms", a.started_ms);
			ji64("age_ms", age);
			ju64("starter_pid", a.starter_pid);
			jbool("starter_alive", alive);
		}
		jbool("ended", end);
		jarr("dto_keys");
		for (size_t i = 0; i < dk.ks.n; i++) {
			jobj(NULL);
			jbytes("key", dk.ks.v[i].key, dk.ks.v[i].klen);
			ju64("count", dk.ks.v[i].meta.len);
			jobj_end();
		}
		jarr_end();
		jobj_end();
	} else if (rc == TC_ENORUN) {
		printf("no active run\n");
	} else {
		printf("%s run %" PRIu64 " at %s (ts_ns %" PRId64 "), generation %" PRIu64 "\n",
		       end ? "ended" : "active", a.run_id, fmt_time(b1, sizeof b1, a.ts_ns / 1000000),
		       a.ts_ns, a.generation);
		printf("  started %s ago by pid %" PRIu32 " (%s)\n",
		       fmt_duration(b2, sizeof b2, age > 0 ? (uint64_t)age : 0), a.starter_pid,
		       alive ? "alive" : "exited");
		for (size_t i = 0; i < dk.ks.n; i++) {
			printf("  ");
			print_key(stdout, dk.ks.v[i].key, dk.ks.v[i].klen);
			printf("  %zu DTO%s\n", dk.ks.v[i].meta.len, dk.ks.v[i].meta.len == 1 ? "" : "s");
		}
	}
out:
	keyset_free(&dk.ks);
	tc_close(c);
	return ex;
}
