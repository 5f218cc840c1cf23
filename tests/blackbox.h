/* SPDX-License-Identifier: MIT */
/*
 * blackbox.h - helpers of the black-box tests (test_api, test_stress,
 * test_crash, test_badinput, ...) on top of fixture.h (segment names,
 * cleanup, ASSERT_RC, time, children).  Uses the public header only.
 *
 * Values: bb_fill()/bb_check() build and verify self-checking values that
 * carry their key index, writer id, sequence number and a checksum over the
 * rest, so a torn, mixed or foreign value is detected by any reader.
 */
#ifndef TC_TESTS_BLACKBOX_H
#define TC_TESTS_BLACKBOX_H

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/types.h>
#include <sys/wait.h>

#include "tickcache.h"
#include "fixture.h"

#define BB_UNUSED __attribute__((unused))

/* ------------------------------------------------------------------ */
/* Strings                                                              */
/* ------------------------------------------------------------------ */

/* bb_open_small - a fresh segment of 1,024 entries, 4 MiB and 16 reader
 * slots, named by the calling test into NAME. */
#define bb_open_small(name) fx_open((name), 1024, 4u << 20, 16)

/* bb_set_str - set K to the string V (no type) with TTL; must succeed. */
static BB_UNUSED void bb_set_str(tc_cache *c, const char *k, const char *v, uint64_t ttl)
{
	ASSERT_RC(0, tc_set(c, KS(k), KS(v), TC_TYPE_NONE, ttl));
}

/* bb_expect_str - the value at K must be exactly V. */
static BB_UNUSED void bb_expect_str(tc_cache *c, const char *k, const char *v)
{
	char buf[4096];
	tc_meta m;

	memset(&m, 0, sizeof(m));
	ASSERT_RC(0, tc_get(c, KS(k), buf, sizeof(buf), &m));
	assert_int_equal(m.len, strlen(v));
	assert_memory_equal(buf, v, strlen(v));
}

/* ------------------------------------------------------------------ */
/* Random numbers (xorshift64*, per caller state)                       */
/* ------------------------------------------------------------------ */

static BB_UNUSED uint64_t bb_rand(uint64_t *s)
{
	uint64_t x = *s ? *s : 0x9E3779B97F4A7C15ull;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1Dull;
}

/* ------------------------------------------------------------------ */
/* Self-checking values                                                 */
/* ------------------------------------------------------------------ */

/*
 * Layout (little-endian host, packed by hand):
 *   0  u64 checksum of bytes 8..len
 *   8  u32 magic BB_MAGIC
 *  12  u32 key index
 *  16  u32 writer id
 *  20  u32 total length
 *  24  u64 sequence
 *  32  payload: byte i = (uint8_t)(seed64 >> (8 * (i % 8))) + i, seed from
 *      writer and sequence, so the payload itself is checked too.
 */
#define BB_MAGIC   0x7C5E1F0Du
#define BB_HDR     32u
#define BB_TYPE    0x5EED0001u

static BB_UNUSED uint64_t bb_fnv(const unsigned char *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ull;
	size_t i;

	for (i = 0; i < n; i++) {
		h ^= p[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

static BB_UNUSED uint64_t bb_payload_seed(uint32_t writer, uint64_t seq)
{
	return (seq * 0x9E3779B97F4A7C15ull) ^ ((uint64_t)writer << 40) ^ 0xA5A5A5A5ull;
}

/* bb_fill - write a self-checking value of LEN (>= BB_HDR) bytes into BUF. */
static BB_UNUSED void bb_fill(unsigned char *buf, size_t len, uint32_t key,
			      uint32_t writer, uint64_t seq)
{
	uint32_t magic = BB_MAGIC, l = (uint32_t)len;
	uint64_t seed = bb_payload_seed(writer, seq), sum;
	size_t i;

	memcpy(buf + 8, &magic, 4);
	memcpy(buf + 12, &key, 4);
	memcpy(buf + 16, &writer, 4);
	memcpy(buf + 20, &l, 4);
	memcpy(buf + 24, &seq, 8);
	for (i = BB_HDR; i < len; i++)
		buf[i] = (unsigned char)((unsigned char)(seed >> (8 * (i % 8))) + i);
	sum = bb_fnv(buf + 8, len - 8);
	memcpy(buf, &sum, 8);
}

/*
 * bb_check - verify a value read for key index KEY: 0 when valid, else a
 * short reason.  NWRITERS bounds the writer id.
 */
static BB_UNUSED const char *bb_check(const void *val, size_t len, uint32_t key,
				      uint32_t nwriters)
{
	const unsigned char *p = val;
	uint32_t magic, k, w, l;
	uint64_t sum, seq, seed;
	size_t i;

	if (len < BB_HDR)
		return "short value";
	memcpy(&sum, p, 8);
	memcpy(&magic, p + 8, 4);
	memcpy(&k, p + 12, 4);
	memcpy(&w, p + 16, 4);
	memcpy(&l, p + 20, 4);
	memcpy(&seq, p + 24, 8);
	if (magic != BB_MAGIC)
		return "bad magic";
	if (l != len)
		return "length field differs from stored length";
	if (k != key)
		return "foreign value (other key)";
	if (w >= nwriters)
		return "bad writer id";
	if (bb_fnv(p + 8, len - 8) != sum)
		return "checksum mismatch (torn value)";
	seed = bb_payload_seed(w, seq);
	for (i = BB_HDR; i < len; i++)
		if (p[i] != (unsigned char)((unsigned char)(seed >> (8 * (i % 8))) + i))
			return "payload mismatch";
	return NULL;
}

/* bb_key - "k<i>" into OUT; returns its length. */
static BB_UNUSED size_t bb_key(char *out, size_t n, const char *prefix, unsigned i)
{
	return (size_t)snprintf(out, n, "%s%u", prefix, i);
}

/* ------------------------------------------------------------------ */
/* Children                                                             */
/* ------------------------------------------------------------------ */

/* Exit statuses of children; 0 = all checks passed. */
#define BB_EXIT_OK     0
#define BB_EXIT_FAIL   1   /* a check failed (details on stderr) */
#define BB_EXIT_SETUP  2   /* could not open the segment */

static BB_UNUSED __attribute__((format(printf, 1, 2)))
void bb_child_fail(const char *fmt, ...)
{
	va_list ap;
	char msg[512];

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "[child %d] %s\n", (int)getpid(), msg);
}

#endif /* TC_TESTS_BLACKBOX_H */
