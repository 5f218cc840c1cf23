/* SPDX-License-Identifier: MIT */
/*
 * report.c - shm-bench's results: the human table, CSV, JSON and the
 * percentile file for plotting, from the histograms the processes left in
 * the shared mapping.
 */
#include "bench.h"
#include "common.h"

struct row {
	char scope[16];
	const char *role;
	enum op_kind op;
	const struct hist *h;
	double ops_per_s, cpu_ops_per_s;
	uint64_t reads, hits, misses, torn, foreign, false_missing, errors;
	int cpu;
};

const char *role_name(int role)
{
	return role == ROLE_READER ? "reader" : "writer";
}

static void print_num(char *out, size_t n, double v)
{
	if (v >= 1e9)
		snprintf(out, n, "%.2fG", v / 1e9);
	else if (v >= 1e6)
		snprintf(out, n, "%.2fM", v / 1e6);
	else if (v >= 1e3)
		snprintf(out, n, "%.1fk", v / 1e3);
	else
		snprintf(out, n, "%.0f", v);
}

static void print_ns(char *out, size_t n, double ns)
{
	if (ns >= 1e6)
		snprintf(out, n, "%.2fms", ns / 1e6);
	else if (ns >= 1e4)
		snprintf(out, n, "%.1fus", ns / 1e3);
	else
		snprintf(out, n, "%.0f", ns);
}

static const double qs[] = { 0.5, 0.9, 0.99, 0.999, 0.9999 };

static void human_row(const struct row *w)
{
	char c[8][24];

	print_num(c[0], sizeof(c[0]), (double)w->h->count);
	print_num(c[1], sizeof(c[1]), w->ops_per_s);
	for (int i = 0; i < 5; i++)
		print_ns(c[2 + i], sizeof(c[2]), rep_ns(hist_quantile(w->h, qs[i])));
	print_ns(c[7], sizeof(c[7]), rep_ns((double)w->h->max));
	printf("%-6s %-6s %-4s %8s %9s %8.0f %8s %8s %8s %8s %8s %8s\n", w->scope, w->role,
	       op_names[w->op], c[0], c[1],
	       w->h->count ? rep_ns(w->h->sum / (double)w->h->count) : 0.0,
	       c[2], c[3], c[4], c[5], c[6], c[7]);
}

static void csv_header(void)
{
	printf("label,backend,op,dist,keys,vsize,readers,writers,write_pct,rate,validate,pinned,"
	       "scope,role,cpu,count,ops_per_s,mean_ns,p50_ns,p90_ns,p99_ns,p999_ns,p9999_ns,"
	       "max_ns,min_ns,reads,hits,misses,torn,foreign,false_missing,errors,"
	       "timer,timer_ovh_ns,subtracted,cpu_ops_per_s\n");
}

static void csv_row(const struct row *w)
{
	const struct hist *h = w->h;

	printf("%s,%s,%s,%s,%" PRIu64 ",%zu,%d,%d,%u,%.0f,%d,%d,%s,%s,%d,%" PRIu64 ",%.0f,%.1f",
	       cfg.label, cfg.backend, op_names[w->op], dist_names[cfg.dist], cfg.keys, cfg.vsize,
	       cfg.readers, cfg.writers, cfg.write_pct, cfg.rate, cfg.validate, cfg.pin, w->scope,
	       w->role, w->cpu, h->count, w->ops_per_s,
	       h->count ? rep_ns(h->sum / (double)h->count) : 0.0);
	for (int i = 0; i < 5; i++)
		printf(",%.1f", rep_ns(hist_quantile(h, qs[i])));
	printf(",%.1f,%.1f,%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64
	       ",%" PRIu64 ",%s,%.2f,%d,%.0f\n",
	       rep_ns((double)h->max), rep_ns((double)h->min), w->reads, w->hits, w->misses, w->torn,
	       w->foreign, w->false_missing, w->errors, use_tsc ? "rdtscp" : "clock_gettime",
	       timer_ovh_ticks * ns_per_tick, cfg.subtract, w->cpu_ops_per_s);
}

static void json_row(const struct row *w, bool first)
{
	const struct hist *h = w->h;

	printf("%s\n    {\"scope\": \"%s\", \"role\": \"%s\", \"op\": \"%s\", \"cpu\": %d, "
	       "\"count\": %" PRIu64 ", \"ops_per_s\": %.0f, \"cpu_ops_per_s\": %.0f, \"mean_ns\": %.1f",
	       first ? "" : ",", w->scope, w->role, op_names[w->op], w->cpu, h->count,
	       w->ops_per_s, w->cpu_ops_per_s, h->count ? rep_ns(h->sum / (double)h->count) : 0.0);
	static const char *const qn[] = { "p50", "p90", "p99", "p999", "p9999" };

	for (int i = 0; i < 5; i++)
		printf(", \"%s_ns\": %.1f", qn[i], rep_ns(hist_quantile(h, qs[i])));
	printf(", \"max_ns\": %.1f, \"min_ns\": %.1f, \"reads\": %" PRIu64 ", \"hits\": %" PRIu64
	       ", \"misses\": %" PRIu64 ", \"torn\": %" PRIu64 ", \"foreign\": %" PRIu64
	       ", \"false_missing\": %" PRIu64 ", \"errors\": %" PRIu64 "}",
	       rep_ns((double)h->max), rep_ns((double)h->min), w->reads, w->hits, w->misses,
	       w->torn, w->foreign, w->false_missing, w->errors);
}

/* Percentile distribution of H for plotting: value_ns, percentile, 1/(1-p). */
static void write_percentiles(const char *path, const struct hist *h, enum op_kind op)
{
	FILE *f = fopen(path, "w");
	uint64_t seen = 0;

	if (!f)
		die("cannot write %s: %s", path, strerror(errno));
	fprintf(f, "# value_ns percentile inverse_tail (label %s, backend %s, op %s)\n", cfg.label,
		cfg.backend, op_names[op]);
	for (unsigned i = 0; i < HB_N && h->count; i++) {
		if (!h->b[i])
			continue;
		seen += h->b[i];
		uint64_t lo, w;

		hb_bounds(i, &lo, &w);
		double p = (double)seen / (double)h->count;
		double v = (double)(lo + w - 1);

		if (v > (double)h->max)
			v = (double)h->max;
		if (p >= 1.0)
			p = 1.0 - 1.0 / (double)h->count;
		fprintf(f, "%.1f %.6f %.1f\n", rep_ns(v), p * 100.0, 1.0 / (1.0 - p));
		if (seen == h->count)
			break;
	}
	fclose(f);
}

enum pct_which pct_which = PCT_AUTO;

/* The results of a run: a row per process and op, then one per op for all. */
struct rows {
	struct row row[MAX_PROCS * OP_NKIND + OP_NKIND];
	int n, first_all;
	struct row tot;                  /* the counters summed over every process */
	struct hist merged[OP_NKIND];
};

/* Fill a row of process P's results R for OP. */
static void proc_row(struct row *w, const struct proc_res *r, int p, int o)
{
	double s = r->elapsed_ns ? (double)r->elapsed_ns / 1e9 : 1e-9;

	memset(w, 0, sizeof(*w));
	snprintf(w->scope, sizeof(w->scope), "p%d", p);
	w->role = role_name(r->role);
	w->op = (enum op_kind)o;
	w->h = &r->h[o];
	w->ops_per_s = (double)r->h[o].count / s;
	w->cpu_ops_per_s = r->cpu_ns ? (double)r->h[o].count / ((double)r->cpu_ns / 1e9) : 0;
	w->cpu = r->cpu;
	w->reads = r->reads;
	w->hits = r->hits;
	w->misses = r->misses;
	w->torn = r->torn;
	w->foreign = r->foreign;
	w->false_missing = r->false_missing;
	w->errors = r->errors;
}

static void collect(struct rows *t, struct shared *sh, int nprocs)
{
	double tput[OP_NKIND] = { 0 }, cput[OP_NKIND] = { 0 };
	struct row *tot = &t->tot;

	*tot = (struct row){ .scope = "all", .role = "all" };
	for (int p = 0; p < nprocs; p++) {
		struct proc_res *r = &sh->r[p];

		tot->reads += r->reads;
		tot->hits += r->hits;
		tot->misses += r->misses;
		tot->torn += r->torn;
		tot->foreign += r->foreign;
		tot->false_missing += r->false_missing;
		tot->errors += r->errors;
		for (int o = 0; o < OP_NKIND; o++) {
			if (!r->h[o].count)
				continue;
			struct row *w = &t->row[t->n++];

			proc_row(w, r, p, o);
			cput[o] += w->cpu_ops_per_s;
			tput[o] += w->ops_per_s;
			hist_merge(&t->merged[o], &r->h[o]);
		}
	}
	t->first_all = t->n;
	for (int o = 0; o < OP_NKIND; o++) {
		if (!t->merged[o].count)
			continue;
		struct row *w = &t->row[t->n++];

		*w = *tot;
		w->op = (enum op_kind)o;
		w->h = &t->merged[o];
		w->ops_per_s = tput[o];
		w->cpu_ops_per_s = cput[o];
		w->cpu = -1;
	}
}

static void print_json(const struct rows *t)
{
	const struct row tot = t->tot;
	const int nrows = t->n;
	const struct row *rows = t->row;

	printf("{\n  \"label\": ");
	json_cstr(stdout, cfg.label);
	printf(",\n  \"config\": {\"backend\": \"%s\", \"read_op\": \"%s\", \"write_op\": \"%s\", "
	       "\"keys\": %" PRIu64 ", \"value_size\": %zu, \"dist\": \"%s\", \"zipf_s\": %.2f, "
	       "\"hot_keys\": %" PRIu64 ", \"readers\": %d, \"writers\": %d, \"write_pct\": %u, "
	       "\"rate\": %.0f, \"ops\": %" PRIu64 ", \"duration_s\": %.3f, \"pinned\": %s, "
	       "\"validate\": %s, \"evict\": %s, \"checksum\": %s, \"memory\": %" PRIu64
	       "},\n",
	       cfg.backend, op_names[cfg.read_op], op_names[cfg.write_op], cfg.keys, cfg.vsize,
	       dist_names[cfg.dist], cfg.zipf_s, cfg.hot_keys, cfg.readers, cfg.writers,
	       cfg.write_pct, cfg.rate, cfg.ops, cfg.duration, cfg.pin ? "true" : "false",
	       cfg.validate ? "true" : "false", cfg.evict ? "true" : "false",
	       cfg.checksum ? "true" : "false", cfg.memory);
	printf("  \"timer\": {\"source\": \"%s\", \"ghz\": %.4f, \"overhead_ns\": %.2f, "
	       "\"overhead_min_ns\": %.2f, \"step_ns\": %.2f, \"subtracted\": %s},\n",
	       use_tsc ? "rdtscp" : "clock_gettime", 1.0 / ns_per_tick,
	       timer_ovh_ticks * ns_per_tick, timer_ovh_min_ticks * ns_per_tick,
	       (double)timer_res_ticks * ns_per_tick, cfg.subtract ? "true" : "false");
	printf("  \"validation\": {\"reads\": %" PRIu64 ", \"hits\": %" PRIu64
	       ", \"misses\": %" PRIu64 ", \"torn\": %" PRIu64 ", \"foreign\": %" PRIu64
	       ", \"false_missing\": %" PRIu64 ", \"errors\": %" PRIu64 ", \"checked\": %s},\n",
	       tot.reads, tot.hits, tot.misses, tot.torn, tot.foreign, tot.false_missing,
	       tot.errors, cfg.validate ? "true" : "false");
	printf("  \"results\": [");
	for (int i = 0; i < nrows; i++)
		json_row(&rows[i], i == 0);
	printf("\n  ]\n}\n");
}

static void print_human(const struct rows *t, int nprocs)
{
	const struct row tot = t->tot;
	const int nrows = t->n, first_all = t->first_all;
	const struct row *rows = t->row;

	printf("shm-bench %s  backend %s  keys %" PRIu64 "  value %zu B  dist %s", cfg.label,
	       cfg.backend, cfg.keys, cfg.vsize, dist_names[cfg.dist]);
	if (cfg.dist == DIST_ZIPF)
		printf(" (s=%.2f)", cfg.zipf_s);
	printf("  readers %d (%s%s%s)  writers %d (%s", cfg.readers, op_names[cfg.read_op],
	       cfg.write_pct ? ", writes " : "", cfg.write_pct ? op_names[cfg.write_op] : "",
	       cfg.writers, op_names[cfg.write_op]);
	if (cfg.rate > 0)
		printf(" at %.0f/s", cfg.rate);
	printf(")%s%s%s\n", cfg.pin ? "  pinned" : "", cfg.evict ? "  evicting" : "",
	       cfg.checksum ? "  checksums" : "");
	printf("timer: %s, %.3f GHz, step %.1f ns, overhead %.1f ns median (min %.1f), %s\n",
	       use_tsc ? "rdtscp" : "clock_gettime", 1.0 / ns_per_tick,
	       (double)timer_res_ticks * ns_per_tick,
	       timer_ovh_ticks * ns_per_tick, timer_ovh_min_ticks * ns_per_tick,
	       cfg.subtract ? "subtracted from every latency below" : "NOT subtracted");
	printf("%-6s %-6s %-4s %8s %9s %8s %8s %8s %8s %8s %8s %8s   (ns unless marked)\n",
	       "scope", "role", "op", "count", "ops/s", "mean", "p50", "p90", "p99", "p99.9",
	       "p99.99", "max");
	for (int i = 0; i < nrows; i++)
		if (cfg.per_proc || nprocs > 1 || i >= first_all)
			human_row(&rows[i]);
	printf("validation%s: reads %" PRIu64 "  hits %" PRIu64 "  misses %" PRIu64
	       "  torn %" PRIu64 "  foreign %" PRIu64 "  falsely-missing %" PRIu64
	       "  errors %" PRIu64 "\n",
	       cfg.validate ? "" : " (values not checked; --validate)", tot.reads, tot.hits,
	       tot.misses, tot.torn, tot.foreign, tot.false_missing, tot.errors);
}

void report(struct shared *sh, int nprocs, const char *pct_path)
{
	static struct rows t;
	const struct hist *merged = t.merged;

	collect(&t, sh, nprocs);
	if (pct_path) {
		/* The reads' distribution when there are reads, else the writes',
		 * unless --percentiles-op says which: a plot of sets must never
		 * show the reads of a reader that ran beside the writer. */
		enum op_kind o = pct_which == PCT_READS ? cfg.read_op
			: pct_which == PCT_WRITES ? cfg.write_op
			: merged[cfg.read_op].count && cfg.readers ? cfg.read_op : cfg.write_op;

		if (!merged[o].count)
			die("--percentiles: no %s was timed", op_names[o]);
		write_percentiles(pct_path, &merged[o], o);
	}

	if (cfg.out == OUT_CSV) {
		if (cfg.csv_header)
			csv_header();
		for (int i = 0; i < t.n; i++)
			csv_row(&t.row[i]);
	} else if (cfg.out == OUT_JSON) {
		print_json(&t);
	} else {
		print_human(&t, nprocs);
	}
	fflush(stdout);
}
