/* SPDX-License-Identifier: MIT */
/*
 * common.c - the helpers the tickcache tools share (declared, with their
 * contracts, in tools/common.h): usage errors, the segments in /dev/shm,
 * parsing, the compact JSON writer of --json, printing.  Nothing here keeps
 * state across calls but the JSON writer's nesting and the tool's name.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <fnmatch.h>
#include <math.h>

#include "common.h"

/* ---- Usage errors ------------------------------------------------- */

const char *tool_name = "tickcache";

int usage_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", tool_name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	fprintf(stderr, "Try '%s --help' for the usage.\n", tool_name);
	return EX_TC_USAGE;
}

/* ---- Segments in /dev/shm ----------------------------------------- */

const char *seg_path(char *buf, size_t cap, const char *name)
{
	snprintf(buf, cap, "%s/%s%s", TC_SHM_DIR, TC_SHM_PREFIX, name);
	return buf;
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

char **seg_names(const char *glob, size_t *count)
{
	const size_t plen = strlen(TC_SHM_PREFIX);
	DIR *d = opendir(TC_SHM_DIR);
	struct dirent *e;
	char **v, **nv;
	size_t n = 0, cap = 16;

	*count = 0;
	if (!d)
		return NULL;
	v = malloc(cap * sizeof *v);
	if (!v) {
		closedir(d);
		return NULL;
	}
	while ((e = readdir(d))) {
		const char *nm = e->d_name + plen;

		if (strncmp(e->d_name, TC_SHM_PREFIX, plen) || !tc_name_valid(nm) ||
		    (glob && fnmatch(glob, nm, 0)))
			continue;
		if (n + 1 >= cap) {
			nv = realloc(v, (cap *= 2) * sizeof *v);
			if (!nv)
				break;  /* out of memory: the names found so far */
			v = nv;
		}
		v[n] = strdup(nm);
		if (v[n])
			n++;
	}
	closedir(d);
	qsort(v, n, sizeof *v, name_cmp);
	v[n] = NULL;
	*count = n;
	return v;
}

void seg_names_free(char **names)
{
	for (size_t i = 0; names && names[i]; i++)
		free(names[i]);
	free(names);
}

/* ---- Numbers, strings, time -------------------------------------- */

int exit_for_rc(int rc)
{
	switch (rc) {
	case 0:
		return EX_TC_OK;
	case -ENOENT:
	case -ESTALE:   /* the segment was unlinked under an open handle */
	case TC_ENORUN:
		return EX_TC_NOTFOUND;
	case -EINVAL:
	case -EMSGSIZE:
		return EX_TC_USAGE;
	case -EBUSY:
	case -EEXIST:
		return EX_TC_INUSE;
	default:
		return EX_TC_SEGMENT;
	}
}

int create_like_snapshot(tc_cache **c, const char *name, const tc_snapshot_info *info)
{
	tc_opts o;

	memset(&o, 0, sizeof o);
	o.max_entries = info->max_entries;
	o.memory_bytes = info->memory_bytes;
	o.max_readers = info->max_readers;
	o.mode = info->mode & 0777; /* permission bits only, whatever the file says */
	o.default_ttl_ms = info->default_ttl_ms;
	o.eviction = info->eviction;
	o.flags = TC_CREATE | TC_EXCL | TC_TOOL | (info->flags & TC_CHECKSUM);
	return tc_open(c, name, &o);
}

bool parse_u64(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (!s || !*s || *s == '-' || isspace((unsigned char)*s))
		return false;
	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || *end)
		return false;
	*out = v;
	return true;
}

/* The decimal number S starts with (its first character a digit) into *V,
 * what follows it in *END; false when there is none or it overflows. */
static bool leading_u64(const char *s, unsigned long long *v, char **end)
{
	if (!s || !isdigit((unsigned char)*s))
		return false;
	errno = 0;
	*v = strtoull(s, end, 10);
	return errno == 0;
}

bool parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;
	uint64_t mul = 1;

	if (!leading_u64(s, &v, &end))
		return false;
	switch (toupper((unsigned char)*end)) {
	case 'K': mul = 1ull << 10; end++; break;
	case 'M': mul = 1ull << 20; end++; break;
	case 'G': mul = 1ull << 30; end++; break;
	case 'T': mul = 1ull << 40; end++; break;
	default: break;
	}
	if (mul > 1 && (*end == 'i' || *end == 'I'))
		end++;
	if (*end == 'B' || *end == 'b')
		end++;
	if (*end)
		return false;
	if (v > UINT64_MAX / mul)
		return false;
	*out = v * mul;
	return true;
}

bool parse_ms(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;
	uint64_t mul = 1;

	if (!leading_u64(s, &v, &end))
		return false;
	if (!strcmp(end, "") || !strcmp(end, "ms"))
		mul = 1;
	else if (!strcmp(end, "s"))
		mul = 1000;
	else if (!strcmp(end, "m"))
		mul = 60000;
	else if (!strcmp(end, "h"))
		mul = 3600000;
	else
		return false;
	if (v > TOOL_MS_MAX / mul)
		return false;
	*out = v * mul;
	return true;
}

double hit_rate(uint64_t hits, uint64_t misses)
{
	double l = (double)hits + (double)misses;

	return l > 0 ? (double)hits / l : 0.0;
}

const char *proc_comm(uint32_t pid, char *buf, size_t cap)
{
	char path[64];
	FILE *f;

	snprintf(buf, cap, "?");
	snprintf(path, sizeof path, "/proc/%" PRIu32 "/comm", pid);
	f = fopen(path, "re");
	if (!f)
		return buf;
	if (fgets(buf, (int)cap, f))
		buf[strcspn(buf, "\n")] = '\0';
	else
		snprintf(buf, cap, "?");
	fclose(f);
	return buf;
}

const char *fmt_size(char *buf, size_t cap, uint64_t v)
{
	static const char units[] = "KMGTP";
	double d = (double)v;
	int u = -1;

	if (v < 1024) {
		snprintf(buf, cap, "%" PRIu64 "B", v);
		return buf;
	}
	while (d >= 1024.0 && u < 4) {
		d /= 1024.0;
		u++;
	}
	snprintf(buf, cap, "%.1f%c", d, units[u]);
	return buf;
}

const char *fmt_duration(char *buf, size_t cap, uint64_t ms)
{
	uint64_t s = ms / 1000;

	if (s < 60)
		snprintf(buf, cap, "%" PRIu64 ".%01" PRIu64 "s", s, (ms % 1000) / 100);
	else if (s < 3600)
		snprintf(buf, cap, "%" PRIu64 "m%02" PRIu64 "s", s / 60, s % 60);
	else if (s < 86400)
		snprintf(buf, cap, "%" PRIu64 "h%02" PRIu64 "m", s / 3600, (s % 3600) / 60);
	else
		snprintf(buf, cap, "%" PRIu64 "d%02" PRIu64 "h", s / 86400, (s % 86400) / 3600);
	return buf;
}

size_t utf8_seq(const unsigned char *p, size_t n)
{
	size_t k;
	uint32_t cp;

	if ((p[0] & 0xe0) == 0xc0) {
		k = 1; cp = p[0] & 0x1f;
	} else if ((p[0] & 0xf0) == 0xe0) {
		k = 2; cp = p[0] & 0x0f;
	} else if ((p[0] & 0xf8) == 0xf0) {
		k = 3; cp = p[0] & 0x07;
	} else {
		return 0;
	}
	if (k >= n)
		return 0;
	for (size_t j = 1; j <= k; j++) {
		if ((p[j] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[j] & 0x3f);
	}
	if ((k == 1 && cp < 0x80) || (k == 2 && cp < 0x800) || (k == 3 && cp < 0x10000) ||
	    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) || (cp >= 0x80 && cp < 0xa0))
		return 0;
	return k + 1;
}

bool utf8_text(const unsigned char *p, size_t n)
{
	size_t i = 0;

	while (i < n) {
		unsigned char c = p[i];
		size_t k;

		if (c < 0x80) {
			if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7f)
				return false;
			i++;
			continue;
		}
		k = utf8_seq(p + i, n - i);
		if (!k)
			return false;
		i += k;
	}
	return true;
}

void print_hex(FILE *f, const void *buf, size_t n)
{
	const unsigned char *p = buf;

	for (size_t i = 0; i < n; i++)
		fprintf(f, "%02x", p[i]);
}

bool parse_hex(const char *s, unsigned char **out, size_t *len)
{
	size_t n = strlen(s);
	unsigned char *b;

	if (n >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		s += 2;
		n -= 2;
	}
	if (n % 2)
		return false;
	b = malloc(n / 2 + 1);
	if (!b)
		return false;
	for (size_t i = 0; i < n / 2; i++) {
		unsigned int v;
		char two[3] = { s[2 * i], s[2 * i + 1], 0 };

		if (!isxdigit((unsigned char)two[0]) || !isxdigit((unsigned char)two[1]) ||
		    sscanf(two, "%2x", &v) != 1) {
			free(b);
			return false;
		}
		b[i] = (unsigned char)v;
	}
	*out = b;
	*len = n / 2;
	return true;
}

void json_str(FILE *f, const void *buf, size_t n)
{
	const unsigned char *p = buf;

	fputc('"', f);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = p[i];
		size_t k;

		switch (c) {
		case '"':  fputs("\\\"", f); break;
		case '\\': fputs("\\\\", f); break;
		case '\n': fputs("\\n", f); break;
		case '\r': fputs("\\r", f); break;
		case '\t': fputs("\\t", f); break;
		default:
			if (c >= 0x80 && (k = utf8_seq(p + i, n - i))) {
				fwrite(p + i, 1, k, f);
				i += k - 1;
			} else if (c < 0x20 || c >= 0x7f) {
				fprintf(f, "\\u%04x", c);
			} else {
				fputc(c, f);
			}
		}
	}
	fputc('"', f);
}

void json_cstr(FILE *f, const char *s)
{
	json_str(f, s, strlen(s));
}

int print_key(FILE *f, const void *key, size_t n)
{
	const unsigned char *p = key;
	int cols = 0;

	for (size_t i = 0; i < n; i++) {
		size_t k;

		if (p[i] >= 0x80 && (k = utf8_seq(p + i, n - i))) {
			fwrite(p + i, 1, k, f);
			i += k - 1;
			cols++;
		} else if (p[i] < 0x21 || p[i] >= 0x7f || p[i] == '\\') {
			fprintf(f, "\\x%02x", p[i]);
			cols += 4;
		} else {
			fputc(p[i], f);
			cols++;
		}
	}
	return cols;
}

uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void sleep_ms(uint64_t ms)
{
	struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

const char *snap_damage(const char *path, char *buf, size_t cap)
{
	unsigned char head[8], tail[8];
	struct stat sb;
	FILE *f;

	if (stat(path, &sb) != 0) {
		snprintf(buf, cap, "%s", strerror(errno));
		return buf;
	}
	if (!S_ISREG(sb.st_mode)) {
		snprintf(buf, cap, "not a regular file (%s)", S_ISDIR(sb.st_mode) ? "a directory" :
			 S_ISFIFO(sb.st_mode) ? "a FIFO" : S_ISCHR(sb.st_mode) || S_ISBLK(sb.st_mode)
			 ? "a device" : S_ISSOCK(sb.st_mode) ? "a socket" : "not a file");
		return buf;
	}
	if (sb.st_size == 0) {
		snprintf(buf, cap, "empty file");
		return buf;
	}
	if (sb.st_size < 64 + 24) {
		snprintf(buf, cap, "truncated: %lld bytes, a snapshot has at least 88",
			 (long long)sb.st_size);
		return buf;
	}
	f = fopen(path, "rbe");
	if (!f || fread(head, 1, 8, f) != 8 || fseeko(f, sb.st_size - 24, SEEK_SET) != 0 ||
	    fread(tail, 1, 8, f) != 8) {
		snprintf(buf, cap, "unreadable: %s", strerror(errno ? errno : EIO));
		if (f)
			fclose(f);
		return buf;
	}
	fclose(f);
	if (memcmp(head, "TCSNAP01", 8))
		snprintf(buf, cap, "not a tickcache snapshot (no TCSNAP01 header)");
	else if (memcmp(tail, "TCSNAPND", 8))
		snprintf(buf, cap, "truncated or appended to: no end marker at the end of its %lld "
			 "bytes", (long long)sb.st_size);
	else
		snprintf(buf, cap, "damaged contents: the checksum or the records do not add up");
	return buf;
}

/* ---- The JSON writer ---------------------------------------------- */

/* Nesting depth, and per depth whether no member has been written yet. */
static int jdepth;
static bool jfirst[32] = { true };

void jreset(void)
{
	jdepth = 0;
	jfirst[0] = true;
}

void jkey(const char *k)
{
	if (!jfirst[jdepth])
		fputc(',', stdout);
	jfirst[jdepth] = false;
	if (k) {
		json_cstr(stdout, k);
		fputc(':', stdout);
	}
}

static void jopen(const char *k, int ch)
{
	jkey(k);
	fputc(ch, stdout);
	jdepth++;
	jfirst[jdepth] = true;
}

static void jclose(int ch)
{
	fputc(ch, stdout);
	jdepth--;
	if (jdepth == 0) {
		fputc('\n', stdout);
		jfirst[0] = true;
	}
}

void jobj(const char *k) { jopen(k, '{'); }
void jobj_end(void) { jclose('}'); }
void jarr(const char *k) { jopen(k, '['); }
void jarr_end(void) { jclose(']'); }

void ju64(const char *k, uint64_t v)
{
	jkey(k);
	printf("%" PRIu64, v);
}

void ji64(const char *k, int64_t v)
{
	jkey(k);
	printf("%" PRId64, v);
}

void jdbl(const char *k, double v)
{
	jkey(k);
	if (isfinite(v))
		printf("%.6g", v);
	else
		fputs("null", stdout);
}

void jbool(const char *k, bool v)
{
	jkey(k);
	fputs(v ? "true" : "false", stdout);
}

void jnull(const char *k)
{
	jkey(k);
	fputs("null", stdout);
}

void jstr(const char *k, const char *s)
{
	jkey(k);
	if (s)
		json_cstr(stdout, s);
	else
		fputs("null", stdout);
}

void jbytes(const char *k, const void *p, size_t n)
{
	jkey(k);
	json_str(stdout, p, n);
}
