/* SPDX-License-Identifier: MIT */
/*
 * main.c - shm-inspect's command line.
 */
#include <getopt.h>

#include "inspect.h"

const tc_opts lazy_attach = { .flags = TC_LAZY | TC_TOOL };
const char *const prog = "shm-inspect";
bool g_json;

static const char usage_text[] =
	"usage: shm-inspect [--json] COMMAND [ARGS] [OPTIONS]\n"
	"  list [GLOB]                            segments in /dev/shm (names matching GLOB)\n"
	"  summary                                INFO-like totals over every segment\n"
	"  metrics [GLOB]                         Prometheus text format\n"
	"  stat NAME                              counters and gauges\n"
	"  keys NAME [GLOB] [--limit N] [--values] live keys (fnmatch glob), sorted\n"
	"  prefixes NAME [GLOB] [--depth N]       keys and bytes by prefix (up to the Nth ':')\n"
	"  get NAME KEY [--hex|--raw]             print a value\n"
	"  mget NAME KEY...                       print several values\n"
	"  set NAME KEY VALUE|--file F [--ttl MS] [--type N] [--hex]   (F '-' = stdin)\n"
	"  del NAME KEY                           delete a key\n"
	"  exists NAME KEY                        exit 0 when present, 1 when not\n"
	"  incr NAME KEY [DELTA] [--ttl MS]       add to a counter, print the new value\n"
	"  expire NAME KEY TTL                    change a key's TTL (0 = never expires)\n"
	"  ttl NAME KEY                           a key's remaining TTL in ms (-1 = none)\n"
	"  wait NAME KEY [--since V] [--timeout MS]  until KEY's version > V (default: the\n"
	"         current one; 0: until KEY exists), then print it as get does\n"
	"  wait NAME [--since SEQ] [--timeout MS] until anything changes; prints the new SEQ\n"
	"  purge NAME GLOB | --expired | --all    delete keys, prints 'deleted N'\n"
	"  readers NAME [--clean]                 reader slots (alive/dead/stuck)\n"
	"  health NAME [--write]                  checks; --write adds a set/get/del round trip\n"
	"  create NAME [--entries N] [--memory SIZE] [--readers N] [--mode 0660]\n"
	"         [--ttl MS] [--eviction lru|none] [--checksum]   (defaults 65536 entries, 64M)\n"
	"  unlink NAME [--force]                  remove (refused while attached)\n"
	"  watch NAME [--interval MS] [--count N] live view, like top\n"
	"  ttl NAME [PREFIX MS | PREFIX --del | --load FILE]   TTL policies\n"
	"  runs NAME [--end]                      the active point-in-time run\n"
	"  audit NAME                             exact mark-and-sweep (segment idle)\n"
	"  save NAME FILE                         snapshot the keys to FILE\n"
	"  load NAME FILE [--replace]             load a snapshot (creates NAME if missing)\n"
	"Sizes take K/M/G suffixes; durations ms (or s/m/h suffixes), at most 100 years.\n"
	"A value that starts with '-' goes after '--': set NAME KEY -- -12.5\n"
	"Exit: 0 ok, 1 not found, 2 usage, 3 segment error, 4 in use, 5 timed out (wait).\n";

static const struct option longopts[] = {
	{ "json", no_argument, NULL, O_JSON },
	{ "limit", required_argument, NULL, O_LIMIT },
	{ "hex", no_argument, NULL, O_HEX },
	{ "raw", no_argument, NULL, O_RAW },
	{ "ttl", required_argument, NULL, O_TTL },
	{ "type", required_argument, NULL, O_TYPE },
	{ "expired", no_argument, NULL, O_EXPIRED },
	{ "all", no_argument, NULL, O_ALL },
	{ "clean", no_argument, NULL, O_CLEAN },
	{ "entries", required_argument, NULL, O_ENTRIES },
	{ "memory", required_argument, NULL, O_MEMORY },
	{ "mode", required_argument, NULL, O_MODE },
	{ "eviction", required_argument, NULL, O_EVICTION },
	{ "checksum", no_argument, NULL, O_CHECKSUM },
	{ "readers", required_argument, NULL, O_READERS },
	{ "force", no_argument, NULL, O_FORCE },
	{ "interval", required_argument, NULL, O_INTERVAL },
	{ "count", required_argument, NULL, O_COUNT },
	{ "load", required_argument, NULL, O_LOAD },
	{ "del", no_argument, NULL, O_DEL },
	{ "end", no_argument, NULL, O_END },
	{ "replace", no_argument, NULL, O_REPLACE },
	{ "values", no_argument, NULL, O_VALUES },
	{ "depth", required_argument, NULL, O_DEPTH },
	{ "file", required_argument, NULL, O_FILE },
	{ "write", no_argument, NULL, O_WRITE },
	{ "since", required_argument, NULL, O_SINCE },
	{ "timeout", required_argument, NULL, O_TIMEOUT },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 },
};

static const char *opt_name(unsigned bit)
{
	for (const struct option *o = longopts; o->name; o++)
		if ((unsigned)o->val == bit)
			return o->name;
	return "?";
}

/* The value of option OPT into A; 0, or the exit code of a usage error. */
static int opt_value(int opt, const char *val, struct args *a)
{
	char *end;

	switch (opt) {
	case O_LOAD:
		a->load = val;
		break;
	case O_FILE:
		a->file = val;
		break;
	case O_LIMIT:
		if (!parse_u64(val, &a->limit) || !a->limit)
			return usage_error("--limit wants a positive number, not '%s'", val);
		break;
	case O_DEPTH:
		if (!parse_u64(val, &a->depth) || !a->depth || a->depth > 64)
			return usage_error("--depth wants 1..64, not '%s'", val);
		break;
	case O_TTL:
		if (!parse_ms(val, &a->dttl))
			return usage_error("--ttl wants a duration (ms, or s/m/h suffixes) of at "
					   "most 100 years, not '%s'", val);
		a->ttl = a->dttl;
		break;
	case O_TYPE:
		if (!parse_u64(val, &a->type) || a->type > UINT32_MAX)
			return usage_error("--type wants a 32-bit number, not '%s'", val);
		break;
	case O_ENTRIES:
		if (!parse_size(val, &a->entries) || !a->entries)
			return usage_error("--entries wants a positive count, not '%s'", val);
		break;
	case O_MEMORY:
		if (!parse_size(val, &a->memory) || !a->memory)
			return usage_error("--memory wants a size (K/M/G suffixes), not '%s'", val);
		break;
	case O_READERS:
		if (!parse_u64(val, &a->readers) || !a->readers || a->readers > UINT32_MAX)
			return usage_error("--readers wants a positive count, not '%s'", val);
		break;
	case O_MODE:
		errno = 0;
		a->mode = strtoull(val, &end, 8);
		if (errno || *end || !*val || a->mode > 07777)
			return usage_error("--mode wants octal permission bits, not '%s'", val);
		break;
	case O_EVICTION:
		if (!strcmp(val, "lru"))
			a->eviction = TC_EVICT_LRU;
		else if (!strcmp(val, "none"))
			a->eviction = TC_EVICT_NONE;
		else
			return usage_error("--eviction wants lru or none, not '%s'", val);
		break;
	case O_INTERVAL:
		if (!parse_ms(val, &a->interval) || !a->interval)
			return usage_error("--interval wants milliseconds > 0, not '%s'", val);
		break;
	case O_COUNT:
		if (!parse_u64(val, &a->count) || !a->count)
			return usage_error("--count wants a positive number, not '%s'", val);
		break;
	case O_SINCE:
		if (!parse_u64(val, &a->since))
			return usage_error("--since wants a number, not '%s'", val);
		break;
	case O_TIMEOUT:
		if (!parse_ms(val, &a->timeout))
			return usage_error("--timeout wants a duration (ms, or s/m/h suffixes) of at "
					   "most 100 years, not '%s'", val);
		break;
	default:
		break;
	}
	return 0;
}

/* The options into A; -1 to go on, else the exit code (--help and
 * --version: 0). */
static int parse_opts(int argc, char **argv, struct args *a)
{
	int opt, rc;

	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":hV", longopts, NULL)) != -1) {
		switch (opt) {
		case 'h':
			fputs(usage_text, stdout);
			return 0;
		case 'V':
			printf("shm-inspect (tickcache) %s\n", tc_version());
			return 0;
		case ':':
			return usage_error("option '%s' needs a value", argv[optind - 1]);
		case '?':
			/* A short option: name it alone (argv[optind - 1] may be the
			 * word before it); a long one is the whole argument. */
			if (optopt)
				return usage_error("unknown option '-%c'; a value that starts with '-' "
						   "goes after '--' (set NAME KEY -- -12.5)", optopt);
			return usage_error("unknown option '%s'; a value that starts with '-' goes "
					   "after '--'", argv[optind - 1]);
		default:
			break;
		}
		a->seen |= (unsigned)opt;
		rc = opt_value(opt, optarg, a);
		if (rc)
			return rc;
	}
	return -1;
}

/* The command named after the options, its arguments counted and its
 * options checked; NULL with *EX the exit code when they do not fit. */
static const struct cmd *find_cmd(int argc, char **argv, struct args *a, int *ex)
{
	const struct cmd *cmd = NULL;

	if (optind >= argc) {
		*ex = usage_error("no command given");
		return NULL;
	}
	for (size_t i = 0; i < ncmds; i++)
		if (!strcmp(argv[optind], cmds[i].name))
			cmd = &cmds[i];
	if (!cmd) {
		*ex = usage_error("unknown command '%s'", argv[optind]);
		return NULL;
	}
	a->pos = (const char **)argv + optind + 1;
	a->npos = argc - optind - 1;
	if (a->npos < cmd->min_args) {
		*ex = usage_error("%s: missing argument%s", cmd->name,
				  cmd->min_args - a->npos > 1 ? "s" : "");
		return NULL;
	}
	if (a->npos > cmd->max_args) {
		*ex = usage_error("%s: unexpected argument '%s'", cmd->name, a->pos[cmd->max_args]);
		return NULL;
	}
	for (unsigned b = O_LIMIT; b <= O_LAST; b <<= 1) {
		if ((a->seen & b) && !(cmd->allowed & b)) {
			*ex = usage_error("%s: option --%s does not apply", cmd->name, opt_name(b));
			return NULL;
		}
	}
	return cmd;
}

int main(int argc, char **argv)
{
	struct args a = { .ttl = TC_TTL_DEFAULT, .interval = 1000, .depth = 1, .timeout = TC_FOREVER,
			  .eviction = TC_EVICT_NONE };
	const struct cmd *cmd;
	int ex;

	tool_name = prog;
	setvbuf(stdout, NULL, _IOFBF, 1 << 16);
	/* A closed pipe must not kill us before tc_close: fail the write instead. */
	signal(SIGPIPE, SIG_IGN);
	ex = parse_opts(argc, argv, &a);
	if (ex >= 0)
		return ex;
	g_json = a.seen & O_JSON;
	cmd = find_cmd(argc, argv, &a, &ex);
	if (!cmd)
		return ex;
	return run_guarded(cmd->run, &a);
}
