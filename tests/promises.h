/* SPDX-License-Identifier: MIT */
/*
 * promises.h - the promises of include/tickcache.h that a caller can check
 * from the outside, whatever bytes the segment holds: the return codes, and
 * what the iteration calls hand to their callbacks.  Shared by the programs
 * that call every public function on a scribbled segment: the fuzz
 * harnesses (tests/fuzz/fuzz_common.h includes it) and test_scribble_load.
 *
 * The includer defines PROMISE_FAIL(fmt, ...) first: what a broken promise
 * does (fz_fail aborts a fuzz harness; test_scribble_load counts it and
 * fails its child).  PROMISE_FAIL may return: a callback that saw a broken
 * promise then touches nothing more.
 *
 * Callbacks, for the calls of the same name:
 *   pr_scan_fn      tc_scan: key length 1..TC_KEY_MAX, value length at most
 *                   TC_VALUE_MAX.  ARG: NULL, or a key (a C string) at which
 *                   the scan stops with 7.
 *   pr_dto_fn       tc_dto_each: at most TC_VALUE_MAX bytes, not NULL when
 *                   any; every byte is read (a length past the mapping is a
 *                   fault, not a silent pass).
 *   pr_dto_key_fn   tc_dto_keys: key length 1..TC_KEY_MAX.
 *   pr_reader_fn    tc_readers: a state of the enum.  ARG: NULL, or a
 *                   const uint32_t * bound on the slot number.
 *   pr_attach_fn    tc_attached: nothing to check.
 *   pr_policy_fn    tc_ttl_policy_list: a prefix of 1..TC_POLICY_PREFIX_MAX
 *                   bytes.
 *   pr_loader       tc_get_or_load's loader: min(klen, cap) bytes of 'L'.
 */
#ifndef TC_TESTS_PROMISES_H
#define TC_TESTS_PROMISES_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "tickcache.h"

#ifndef PROMISE_FAIL
#error "define PROMISE_FAIL(fmt, ...) before including promises.h"
#endif

#define PR_UNUSED __attribute__((unused))

/* A code some function of the library may return: 0, -errno, TC_E*. */
static PR_UNUSED bool pr_is_code(int rc)
{
	return rc == 0 || (rc < 0 && rc > -4096) || (rc <= TC_ECONFLICT && rc >= TC_ERRNO_LAST);
}

static PR_UNUSED int pr_scan_fn(const void *key, size_t klen, const tc_meta *m, void *arg)
{
	if (!key || klen < 1 || klen > TC_KEY_MAX) {
		PROMISE_FAIL("tc_scan called back with key length %zu", klen);
		return 0;
	}
	if (m->len > TC_VALUE_MAX)
		PROMISE_FAIL("tc_scan called back with value length %zu", m->len);
	const char *stop = arg;
	return (stop && klen == strlen(stop) && memcmp(key, stop, klen) == 0) ? 7 : 0;
}

static PR_UNUSED int pr_dto_fn(const void *dto, size_t len, void *arg)
{
	(void)arg;
	if (len > TC_VALUE_MAX || (len && !dto)) {
		PROMISE_FAIL("tc_dto_each called back with a DTO of %zu bytes", len);
		return 0;
	}
	volatile uint8_t sink = 0;
	for (size_t i = 0; i < len; i++)
		sink ^= ((const uint8_t *)dto)[i];
	(void)sink;
	return 0;
}

static PR_UNUSED int pr_dto_key_fn(const void *key, size_t klen, size_t count, void *arg)
{
	(void)arg;
	(void)count;
	if (!key || klen < 1 || klen > TC_KEY_MAX)
		PROMISE_FAIL("tc_dto_keys called back with key length %zu", klen);
	return 0;
}

static PR_UNUSED int pr_reader_fn(const tc_reader *r, void *arg)
{
	const uint32_t *nslots = arg;
	if ((nslots && r->slot >= *nslots) || r->state > TC_READER_DEAD)
		PROMISE_FAIL("tc_readers: slot %u state %d", r->slot, (int)r->state);
	return 0;
}

static PR_UNUSED int pr_attach_fn(const tc_attach *a, void *arg)
{
	(void)a;
	(void)arg;
	return 0;
}

static PR_UNUSED int pr_policy_fn(const char *prefix, uint64_t ttl_ms, void *arg)
{
	(void)ttl_ms;
	(void)arg;
	size_t n = strnlen(prefix, TC_POLICY_PREFIX_MAX + 1);
	if (n < 1 || n > TC_POLICY_PREFIX_MAX)
		PROMISE_FAIL("tc_ttl_policy_list called back with a prefix of %zu bytes", n);
	return 0;
}

static PR_UNUSED int pr_loader(const void *key, size_t klen, void *buf, size_t cap, size_t *len,
			       void *arg)
{
	(void)key;
	(void)arg;
	size_t n = klen < cap ? klen : cap;
	memset(buf, 'L', n);
	*len = n;
	return 0;
}

/* tc_tier_get's answer: a known state, never UP without a holder. */
static PR_UNUSED void pr_tier(const tc_tier *t)
{
	if (t->state > TC_TIER_DOWN || (!t->pid && t->state == TC_TIER_UP))
		PROMISE_FAIL("tc_tier_get: state %u, pid %u", t->state, t->pid);
}

/* One request R of tc_get_many (V NULL) or tc_peek_many (V its pointer)
 * after a call that entered its section: tc_get's promises for a copy, a
 * pointer to the whole value for a peek. */
static PR_UNUSED void pr_request(const tc_req *r, bool peek, const void *v)
{
	size_t len = r->meta.len;
	if (!pr_is_code(r->rc))
		PROMISE_FAIL("a request's code %d", r->rc);
	else if (peek && r->rc == -E2BIG)
		PROMISE_FAIL("tc_peek_many: -E2BIG");
	else if (peek && r->rc == 0 && (len > TC_VALUE_MAX || (len && !v)))
		PROMISE_FAIL("tc_peek_many: length %zu at %p", len, v);
	else if (peek && r->rc != 0 && v)
		PROMISE_FAIL("tc_peek_many: code %d with a pointer", r->rc);
	else if (!peek && r->rc == 0 && len > r->cap)
		PROMISE_FAIL("tc_get_many: 0 with length %zu over cap %zu", len, r->cap);
	else if (!peek && r->rc == -E2BIG && len <= r->cap)
		PROMISE_FAIL("tc_get_many: -E2BIG with length %zu within cap %zu", len, r->cap);
}

#endif /* TC_TESTS_PROMISES_H */
