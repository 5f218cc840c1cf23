/* SPDX-License-Identifier: MIT */
/*
 * main.c - shm-bench's command line: options, their checks, and the run
 * (create and preload the store, run the processes, report).
 */
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/mman.h>

#include "bench.h"
#include "common.h"

const char *const op_names[OP_NKIND] = { "get", "peek", "set", "add", "mget" };
const char *const dist_names[] = { "uniform", "zipf", "hot" };

struct cfg cfg = {
	.backend = "tickcache", .label = "", .read_op = OP_GET, .write_op = OP_SET,
	.keys = 100000, .vsize = 64, .dist = DIST_ZIPF, .zipf_s = 0.99, .hot_keys = 1,
	.readers = 1, .writers = 0, .ops = 1000000, .warmup = 20000, .batch = 1, .subtract = true,
	.out = OUT_HUMAN,
	.rounds = 5,
	.redis_sock = "/tmp/shm-bench-redis.sock", .redis_host = "127.0.0.1", .redis_port = 6379,
	.mc_host = "127.0.0.1", .mc_port = 11211,
};

void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("shm-bench: ", stderr);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

static void usage(FILE *f)
{
	fprintf(f,
"usage: shm-bench [options]\n"
"  -b, --backend NAME     tickcache (default), array, rculfhash, mutexshm, redis-unix,\n"
"                         redis-tcp, memcached (--list shows the ones built in)\n"
"  -o, --op OP            readers' op: get (default), peek, or mget (the --batch\n"
"                         keys in one call, default 16); or set/add for a\n"
"                         write-only run (then -r 0 -w M is implied when -w is 0)\n"
"      --write-op OP      writers' op: set (default) or add (fresh key, deleted after)\n"
"  -k, --keys N           key count (default 100000)\n"
"  -s, --value-size N     bytes (default 64; 1024, 16384 ...)\n"
"  -d, --dist D           uniform, zipf (default, s=0.99), hot\n"
"      --zipf-s S         Zipf exponent (default 0.99)\n"
"      --hot-keys N       keys of the hot set (default 1)\n"
"  -m, --mix PCT          percent of writes inside reader processes (default 0)\n"
"  -r, --readers N        reader processes (default 1)\n"
"  -w, --writers M        writer processes (default 0); they run until the readers end\n"
"      --rate R           ops/s of each writer (default: as fast as it can)\n"
"  -n, --ops N            ops per reader (default 1000000)\n"
"  -t, --duration SEC     run for SEC seconds instead of --ops\n"
"      --warmup N         untimed reads before the run (default 20000)\n"
"      --batch N          readers time N reads at once and record their mean\n"
"                         (resolves costs below the timer's step; no --validate,\n"
"                         no --mix)\n"
"      --pin              pin process i to the i-th allowed CPU\n"
"  -V, --validate         values carry key/version/checksum; count torn, foreign,\n"
"                         falsely-missing reads\n"
"      --memory BYTES     tickcache/mutexshm arena (K/M/G suffix; default: all keys fit)\n"
"      --entries N        tickcache/mutexshm entry capacity (default keys*1.25+4096)\n"
"      --evict            tickcache: TC_EVICT_LRU (misses are then not 'false')\n"
"      --checksum         tickcache: TC_CHECKSUM (every value checksummed, verified\n"
"                         on every read)\n"
"      --no-preload       start from an empty store\n"
"      --clock            use clock_gettime(CLOCK_MONOTONIC) instead of rdtscp\n"
"      --raw              do not subtract the timer's overhead\n"
"      --csv              CSV (with --csv-header: the header line first)\n"
"      --json             JSON\n"
"      --per-proc         per-process rows in the human table also for one process\n"
"      --percentiles FILE the merged read (or write) distribution, for gnuplot\n"
"      --percentiles-op read|write   which one (default: the reads when readers run)\n"
"      --label TEXT       name of the run in the output\n"
"      --redis-socket P   (default /tmp/shm-bench-redis.sock)\n"
"      --redis-host H / --redis-port N     (default 127.0.0.1:6379)\n"
"      --memcached-host H / --memcached-port N (default 127.0.0.1:11211)\n"
"      --list             list the backends built in\n"
"      --wake             instead: wake-up latency, a writer in one process and a\n"
"                         waiter in another: tc_wait, tc_wait_any, a bare futex\n"
"                         (the floor) and Redis pub/sub (on --redis-socket);\n"
"                         -n rounds (default 20000), --warmup (default 200)\n"
"      --gap-us N         --wake: microseconds between rounds (default 200)\n"
"      --back-to-back     instead: in one process, gets back to back (no timer per\n"
"                         get; pass time / keys) on tickcache, array and rculfhash,\n"
"                         their passes alternating; sets timed each on the three;\n"
"                         tc_get_many of N keys against N tc_get, N = 1..64.\n"
"                         -n keys per pass (default 200000, uniform unless -d)\n"
"      --rounds R         --back-to-back: rounds, medians over them (default 5)\n"
"Exit status: 0 ok; 1 a process failed or a validating run saw torn, foreign or\n"
"falsely-missing reads; 2 bad usage.\n");
}

/* A count or a size: decimal, with an optional K, M, G or T suffix (powers of
 * 1024; common.h's parse_size). */
static uint64_t parse_num(const char *s, const char *what)
{
	uint64_t v;

	if (!parse_size(s, &v))
		die("bad %s '%s'", what, s);
	return v;
}

static double parse_dbl(const char *s, const char *what)
{
	char *end;
	double v = strtod(s, &end);

	if (end == s || *end || !(v >= 0))
		die("bad %s '%s'", what, s);
	return v;
}

static enum op_kind parse_op(const char *s)
{
	for (int i = 0; i < OP_NKIND; i++)
		if (strcmp(s, op_names[i]) == 0)
			return (enum op_kind)i;
	die("unknown op '%s' (get, peek, mget, set, add)", s);
}

enum {
	O_ZIPF = 256, O_HOT, O_RATE, O_WARMUP, O_PIN, O_MEMORY, O_ENTRIES, O_EVICT, O_NOPRE,
	O_CLOCK, O_RAW, O_CSV, O_CSVH, O_JSON, O_PCT, O_PCTOP, O_LABEL, O_RSOCK, O_RHOST, O_RPORT,
	O_MHOST, O_MPORT, O_LIST, O_WOP, O_PERPROC, O_BATCH, O_CSUM, O_WAKE, O_GAP,
	O_B2B, O_ROUNDS,
};

static const struct option longopts[] = {
	{ "backend", 1, 0, 'b' }, { "op", 1, 0, 'o' }, { "write-op", 1, 0, O_WOP },
	{ "keys", 1, 0, 'k' }, { "value-size", 1, 0, 's' }, { "dist", 1, 0, 'd' },
	{ "zipf-s", 1, 0, O_ZIPF }, { "hot-keys", 1, 0, O_HOT }, { "mix", 1, 0, 'm' },
	{ "readers", 1, 0, 'r' }, { "writers", 1, 0, 'w' }, { "rate", 1, 0, O_RATE },
	{ "ops", 1, 0, 'n' }, { "duration", 1, 0, 't' }, { "warmup", 1, 0, O_WARMUP },
	{ "pin", 0, 0, O_PIN }, { "validate", 0, 0, 'V' }, { "memory", 1, 0, O_MEMORY },
	{ "entries", 1, 0, O_ENTRIES }, { "evict", 0, 0, O_EVICT }, { "no-preload", 0, 0, O_NOPRE },
	{ "checksum", 0, 0, O_CSUM }, { "wake", 0, 0, O_WAKE }, { "gap-us", 1, 0, O_GAP },
	{ "back-to-back", 0, 0, O_B2B }, { "rounds", 1, 0, O_ROUNDS },
	{ "clock", 0, 0, O_CLOCK }, { "raw", 0, 0, O_RAW }, { "csv", 0, 0, O_CSV },
	{ "csv-header", 0, 0, O_CSVH }, { "json", 0, 0, O_JSON }, { "percentiles", 1, 0, O_PCT },
	{ "percentiles-op", 1, 0, O_PCTOP },
	{ "label", 1, 0, O_LABEL }, { "redis-socket", 1, 0, O_RSOCK },
	{ "redis-host", 1, 0, O_RHOST }, { "redis-port", 1, 0, O_RPORT },
	{ "memcached-host", 1, 0, O_MHOST }, { "memcached-port", 1, 0, O_MPORT },
	{ "list", 0, 0, O_LIST }, { "batch", 1, 0, O_BATCH }, { "per-proc", 0, 0, O_PERPROC }, { "help", 0, 0, 'h' },
	{ 0, 0, 0, 0 },
};

/* -n, --warmup and -d given (--wake and --back-to-back have defaults of
 * their own). */
static bool ops_given, warmup_given, dist_given;

/* Parse the options into cfg; -1 to go on, else the exit code (--help,
 * --list: 0; an unknown option: 2). */
static int parse_args(int argc, char **argv, const char **pct_path, bool *op_given_write)
{
	int c;

	while ((c = getopt_long(argc, argv, "b:o:k:s:d:m:r:w:n:t:Vh", longopts, NULL)) != -1) {
		switch (c) {
		case 'b': cfg.backend = optarg; break;
		case 'o': {
			enum op_kind o = parse_op(optarg);

			if (o == OP_GET || o == OP_PEEK || o == OP_MGET) {
				cfg.read_op = o;
			} else {
				cfg.write_op = o;
				*op_given_write = true;
			}
			break;
		}
		case O_WOP:
			cfg.write_op = parse_op(optarg);
			if (cfg.write_op != OP_SET && cfg.write_op != OP_ADD)
				die("--write-op is set or add");
			break;
		case 'k': cfg.keys = parse_num(optarg, "key count"); break;
		case 's': cfg.vsize = parse_num(optarg, "value size"); break;
		case 'd':
			dist_given = true;
			if (!strcmp(optarg, "uniform"))
				cfg.dist = DIST_UNIFORM;
			else if (!strcmp(optarg, "zipf"))
				cfg.dist = DIST_ZIPF;
			else if (!strcmp(optarg, "hot") || !strcmp(optarg, "hot-key"))
				cfg.dist = DIST_HOT;
			else
				die("unknown distribution '%s' (uniform, zipf, hot)", optarg);
			break;
		case O_ZIPF: cfg.zipf_s = parse_dbl(optarg, "zipf exponent"); break;
		case O_HOT: cfg.hot_keys = parse_num(optarg, "hot key count"); break;
		case 'm': cfg.write_pct = (unsigned)parse_num(optarg, "write percent"); break;
		case 'r': cfg.readers = (int)parse_num(optarg, "reader count"); break;
		case 'w': cfg.writers = (int)parse_num(optarg, "writer count"); break;
		case O_RATE: cfg.rate = parse_dbl(optarg, "rate"); break;
		case 'n': cfg.ops = parse_num(optarg, "op count"); ops_given = true; break;
		case 't': cfg.duration = parse_dbl(optarg, "duration"); break;
		case O_WARMUP:
			cfg.warmup = parse_num(optarg, "warm-up count");
			warmup_given = true;
			break;
		case O_WAKE: cfg.wake = true; break;
		case O_GAP: cfg.gap_us = (unsigned)parse_num(optarg, "gap"); break;
		case O_B2B: cfg.back_to_back = true; break;
		case O_ROUNDS: cfg.rounds = (unsigned)parse_num(optarg, "round count"); break;
		case O_BATCH: cfg.batch = (unsigned)parse_num(optarg, "batch size"); break;
		case O_PIN: cfg.pin = true; break;
		case 'V': cfg.validate = true; break;
		case O_MEMORY: cfg.memory = parse_num(optarg, "memory"); break;
		case O_ENTRIES: cfg.entries = parse_num(optarg, "entries"); break;
		case O_EVICT: cfg.evict = true; break;
		case O_CSUM: cfg.checksum = true; break;
		case O_NOPRE: cfg.no_preload = true; break;
		case O_CLOCK: cfg.force_clock = true; break;
		case O_RAW: cfg.subtract = false; break;
		case O_CSV: cfg.out = OUT_CSV; break;
		case O_CSVH: cfg.out = OUT_CSV; cfg.csv_header = true; break;
		case O_JSON: cfg.out = OUT_JSON; break;
		case O_PCT: *pct_path = optarg; break;
		case O_PCTOP:
			if (!strcmp(optarg, "read"))
				pct_which = PCT_READS;
			else if (!strcmp(optarg, "write"))
				pct_which = PCT_WRITES;
			else
				die("--percentiles-op wants read or write, not '%s'", optarg);
			break;
		case O_LABEL: cfg.label = optarg; break;
		case O_RSOCK: cfg.redis_sock = optarg; break;
		case O_RHOST: cfg.redis_host = optarg; break;
		case O_RPORT: cfg.redis_port = (int)parse_num(optarg, "port"); break;
		case O_MHOST: cfg.mc_host = optarg; break;
		case O_MPORT: cfg.mc_port = (int)parse_num(optarg, "port"); break;
		case O_PERPROC: cfg.per_proc = true; break;
		case O_LIST:
			for (size_t i = 0; i < nbackends; i++)
				printf("%-11s %s\n", backends[i]->name, backends[i]->about);
			return 0;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc)
		die("unexpected argument '%s'", argv[optind]);
	return -1;
}

/* Pick the backend and check the options against it and each other. */
static void check_args(bool op_given_write)
{
	for (size_t i = 0; i < nbackends; i++)
		if (!strcmp(cfg.backend, backends[i]->name))
			active = backends[i];
	if (!active)
		die("backend '%s' is not built in (--list)", cfg.backend);
	if (op_given_write && cfg.writers == 0) {
		cfg.writers = cfg.readers ? cfg.readers : 1;
		cfg.readers = 0;
	}
	if (!(active->ops & OPBIT(cfg.read_op)) && cfg.readers)
		die("backend %s has no %s", active->name, op_names[cfg.read_op]);
	if (!(active->ops & OPBIT(cfg.write_op)) && (cfg.writers || cfg.write_pct))
		die("backend %s has no %s", active->name, op_names[cfg.write_op]);
	if (cfg.keys < 1 || cfg.keys > (1ull << 32))
		die("--keys must be 1..2^32");
	if (cfg.vsize > TC_VALUE_MAX)
		die("--value-size above %u", TC_VALUE_MAX);
	if (cfg.validate && cfg.vsize < VHDR_SIZE)
		die("--validate needs values of at least %d bytes", VHDR_SIZE);
	if (cfg.readers + cfg.writers < 1 || cfg.readers + cfg.writers > MAX_PROCS)
		die("1..%d processes in all", MAX_PROCS);
	if (cfg.batch < 1 || cfg.batch > 4096)
		die("--batch must be 1..4096");
	if (cfg.read_op == OP_MGET && cfg.batch == 1)
		cfg.batch = 16; /* mget reads its batch in one call */
	if (cfg.batch > 1 && (cfg.validate || cfg.write_pct))
		die("--batch does not combine with --validate or --mix");
	if (cfg.write_pct > 100)
		die("--mix is a percentage");
	if (cfg.hot_keys < 1 || cfg.hot_keys > cfg.keys)
		die("--hot-keys must be 1..keys");
	if (cfg.readers == 0 && cfg.duration <= 0 && cfg.ops == 0)
		die("writers alone need --ops or --duration");
	if (cfg.dist == DIST_ZIPF) {
		if (cfg.zipf_s <= 0 || cfg.zipf_s == 1.0)
			die("--zipf-s must be > 0 and != 1");
		zipf_init(cfg.keys, cfg.zipf_s);
	}
}

/* A store shared by every process is created and preloaded by the parent. */
static void setup_shared(void)
{
	char err[256] = "";
	void *st;
	int rc;

	if (!active->shared)
		return;
	if (active->setup && active->setup(err, sizeof(err)) != 0)
		die("%s", err);
	st = active->attach(err, sizeof(err));
	if (!st) {
		if (active->teardown)
			active->teardown();
		die("%s", err);
	}
	rc = preload(active, st, err, sizeof(err));
	active->detach(st);
	if (rc) {
		if (active->teardown)
			active->teardown();
		die("%s", err);
	}
}

int main(int argc, char **argv)
{
	const char *pct_path = NULL;
	bool op_given_write = false;
	int rc, failed;

	rc = parse_args(argc, argv, &pct_path, &op_given_write);
	if (rc >= 0)
		return rc;
	if (cfg.wake) {
		if (!ops_given)
			cfg.ops = 20000;
		if (!warmup_given)
			cfg.warmup = 200;
		if (!cfg.gap_us)
			cfg.gap_us = 200;
		if (cfg.gap_us > 1000000)
			die("--gap-us above 1000000");
		return wake_main();
	}
	if (cfg.back_to_back) {
		if (!ops_given)
			cfg.ops = 200000;
		if (!dist_given)
			cfg.dist = DIST_UNIFORM;
		cfg.backend = "tickcache";
		cfg.readers = 1;
		check_args(false);
		timer_init();
		return b2b_main();
	}
	check_args(op_given_write);
	timer_init();
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGPIPE, SIG_IGN);
	setup_shared();

	int nprocs = cfg.readers + cfg.writers;
	size_t shbytes = sizeof(struct shared) + (size_t)nprocs * sizeof(struct proc_res);
	struct shared *sh = mmap(NULL, shbytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
				 -1, 0);

	if (sh == MAP_FAILED)
		die("mmap: %s", strerror(errno));
	failed = run_procs(active, sh, nprocs);
	if (active->teardown)
		active->teardown();
	report(sh, nprocs, pct_path);

	uint64_t bad = 0;

	for (int i = 0; i < nprocs; i++)
		bad += sh->r[i].torn + sh->r[i].foreign + sh->r[i].false_missing;
	if (failed || (cfg.validate && bad))
		return 1;
	return 0;
}
