/* SPDX-License-Identifier: MIT */
/*
 * fuzz_common.h - what every libFuzzer harness of tests/fuzz/ shares.
 *
 * Guard pages.  The harnesses are linked with -Wl,--wrap=mmap,--wrap=munmap
 * (Makefile, "Fuzzing"): every shared file mapping the library makes is
 * placed between two PROT_NONE pages, so a read or a write one byte past the
 * end of a segment (or before its start) is a SIGSEGV that libFuzzer reports,
 * instead of a silent access to whatever mapping the kernel put next to it.
 * ASan does not watch mmap'd memory; these pages do.
 *
 * Oracles.  fz_rc() aborts on a return code that no function of the library
 * may return (positive, or neither an errno nor a TC_E* code); the harnesses
 * call fz_fail() when a documented promise of include/tickcache.h breaks
 * (a key length out of 1..TC_KEY_MAX in a callback, a length past the
 * caller's buffer, ...); the callbacks of tests/promises.h (shared with
 * test_scribble_load) check what the iteration calls hand them.  Both end in abort(), which libFuzzer reports as a
 * crash with the input that caused it.
 *
 * Segment names: "fz<tag><pid>", so concurrent fuzzers and test runs never
 * meet; each harness unlinks its segments at exit.
 */
#ifndef TC_FUZZ_COMMON_H
#define TC_FUZZ_COMMON_H

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "tickcache.h"

#define FZ_PAGE 4096u
#define FZ_UNUSED __attribute__((unused))

/* ---- guard pages around shared mappings ------------------------------- */

void *__real_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off);
int __real_munmap(void *addr, size_t len);
void *__wrap_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off);
int __wrap_munmap(void *addr, size_t len);

#define FZ_GUARDS 64
static struct { uint8_t *user; size_t whole; } fz_guard[FZ_GUARDS];

void *__wrap_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	if (addr || fd < 0 || !(flags & MAP_SHARED) || len == 0)
		return __real_mmap(addr, len, prot, flags, fd, off);
	int free_i = -1;
	for (int i = 0; i < FZ_GUARDS && free_i < 0; i++)
		if (!fz_guard[i].user)
			free_i = i;
	if (free_i < 0)
		return __real_mmap(addr, len, prot, flags, fd, off);
	size_t whole = ((len + FZ_PAGE - 1) & ~(size_t)(FZ_PAGE - 1)) + 2 * FZ_PAGE;
	uint8_t *r = __real_mmap(NULL, whole, PROT_NONE,
				 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (r == MAP_FAILED)
		return r;
	void *p = __real_mmap(r + FZ_PAGE, len, prot, flags | MAP_FIXED, fd, off);
	if (p == MAP_FAILED) {
		int e = errno;
		__real_munmap(r, whole);
		errno = e;
		return MAP_FAILED;
	}
	fz_guard[free_i].user = p;
	fz_guard[free_i].whole = whole;
	return p;
}

int __wrap_munmap(void *addr, size_t len)
{
	for (int i = 0; i < FZ_GUARDS; i++) {
		if (fz_guard[i].user == addr) {
			size_t whole = fz_guard[i].whole;
			fz_guard[i].user = NULL;
			return __real_munmap((uint8_t *)addr - FZ_PAGE, whole);
		}
	}
	return __real_munmap(addr, len);
}

/* ---- oracles ------------------------------------------------------------- */

static FZ_UNUSED void fz_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static FZ_UNUSED void fz_fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("fuzz: broken promise: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	abort();
}

/* The header's promises and their checks (tests/promises.h): a broken
 * one is fz_fail. */
#define PROMISE_FAIL(...) fz_fail(__VA_ARGS__)
#include "../promises.h"

/* RC, when it is a code some function of the library may return. */
static FZ_UNUSED int fz_rc_check(int rc, const char *call)
{
	if (pr_is_code(rc))
		return rc;
	fz_fail("%s returned %d, which is no code of the library", call, rc);
}
#define fz_rc(call) fz_rc_check((call), #call)

/* ---- input reader ---------------------------------------------------------- */

struct fz_in {
	const uint8_t *p;
	size_t n, i;
};

static FZ_UNUSED uint8_t fz_u8(struct fz_in *in)
{
	return in->i < in->n ? in->p[in->i++] : 0;
}

static FZ_UNUSED uint16_t fz_u16(struct fz_in *in)
{
	uint16_t v = fz_u8(in);
	return (uint16_t)(v | (uint16_t)fz_u8(in) << 8);
}

static FZ_UNUSED uint32_t fz_u24(struct fz_in *in)
{
	uint32_t v = fz_u16(in);
	return v | (uint32_t)fz_u8(in) << 16;
}

static FZ_UNUSED uint64_t fz_u64(struct fz_in *in)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v |= (uint64_t)fz_u8(in) << (8 * i);
	return v;
}

/* ---- files ------------------------------------------------------------------ */

/* Write N bytes to PATH (truncated first); 0 or -1. */
static FZ_UNUSED int fz_write_file(const char *path, const void *p, size_t n)
{
	FILE *f = fopen(path, "wb");
	if (!f)
		return -1;
	size_t w = n ? fwrite(p, 1, n, f) : 0;
	int rc = fclose(f);
	return w == n && rc == 0 ? 0 : -1;
}

/* The directory for the harnesses' scratch files: tmpfs, so no disk I/O. */
static FZ_UNUSED const char *fz_tmpdir(void)
{
	const char *d = getenv("TC_FUZZ_TMPDIR");
	return d && *d ? d : "/dev/shm";
}

#endif /* TC_FUZZ_COMMON_H */
